//! S3 in pipeline files, against a real S3 server (SeaweedFS), the client configured from the
//! standard AWS environment variables: `storage = "s3://bucket/prefix"` in `[checkpointing]`
//! puts the checkpoints in a bucket, and `files` sinks write `s3://` paths (exactly-once part
//! files); a bad S3 URI is a validation error.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::fs;

use common::{run, weir};
use weir_connector_files::fs::FileSystem;
use weir_testkit::servers::SeaweedS3;

const PIPELINE: &str = r#"
[pipeline]
name = "s3-checkpoints"
parallelism = 2

[checkpointing]
interval = "100ms"
mode = "exactly-once"
storage = "s3://checkpoints/jobs/s3-checkpoints"

[[sources]]
name = "numbers"
connector = "datagen"
schema = [{ name = "id", type = "int64", nullable = false }]
options = { number-of-rows = 20000, rows-per-second = 20000, fields.id.kind = "sequence" }

[[sinks]]
name = "out"
input = "numbers"
connector = "files"
options = { path = "s3://checkpoints/data/numbers", format = "json" }
"#;

#[test]
fn checkpoints_and_part_files_go_to_an_s3_bucket() {
    let server = SeaweedS3::start().unwrap();
    server.create_bucket("checkpoints").unwrap();
    let c = server.credentials();
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("p.toml"), PIPELINE).unwrap();
    let (code, out, err) = run(weir()
        .current_dir(dir.path())
        .env("AWS_ENDPOINT_URL", server.endpoint())
        .env("AWS_REGION", &c.region)
        .env("AWS_ACCESS_KEY_ID", &c.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &c.secret_access_key)
        .args(["run", "p.toml"]));
    assert_eq!(code, 0, "{out}\n{err}");

    let s3 = weir_connector_s3::S3Options::new(
        Some(&server.endpoint()),
        &c.region,
        &c.access_key_id,
        &c.secret_access_key,
    )
    .filesystem("checkpoints")
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let files = rt.block_on(s3.list_files("jobs/s3-checkpoints")).unwrap();
    let metadata: Vec<&str> = files
        .iter()
        .map(|f| f.path.as_str())
        .filter(|p| p.ends_with("/_metadata"))
        .collect();
    assert!(
        !metadata.is_empty(),
        "no checkpoint metadata in the bucket: {:?}",
        files.iter().map(|f| &f.path).collect::<Vec<_>>()
    );
    assert!(metadata.iter().all(|p| p.contains("/chk-")), "{metadata:?}");
    // The rows went to part files in the bucket: each id exactly once, nothing hidden left.
    let parts = rt.block_on(s3.list_files("data/numbers")).unwrap();
    assert!(!parts.is_empty());
    let mut ids = Vec::new();
    for part in &parts {
        let name = part.path.rsplit('/').next().unwrap();
        assert!(
            !name.starts_with('.'),
            "an in-progress file is visible: {}",
            part.path
        );
        let text = rt.block_on(s3.read_all(&part.path)).unwrap();
        for line in std::str::from_utf8(&text).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            ids.push(v["id"].as_i64().unwrap());
        }
    }
    ids.sort_unstable();
    assert_eq!(ids, (0..20_000).collect::<Vec<i64>>());
}

#[test]
fn a_bad_s3_uri_is_a_validation_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.toml");
    fs::write(
        &file,
        PIPELINE.replace("s3://checkpoints/jobs/s3-checkpoints", "s3:///no-bucket"),
    )
    .unwrap();
    let (code, _, err) = run(weir().args(["validate", file.to_str().unwrap()]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("checkpoint storage `s3:///no-bucket`"),
        "{err}"
    );
}

//! S3 upload throughput against a local SeaweedFS (`weed mini`), per connection:
//!
//! - the bare AWS SDK: one multipart upload, parts uploaded one after another (1 connection);
//! - the recoverable writer with 1 part in flight (1 connection) and with 4;
//! - the recoverable writer with a persist (a checkpoint) every 32 MiB.
//!
//! Every run writes the same bytes; runs are interleaved and the median is reported.
//! `cargo bench -p weir-connector-s3 --bench s3` (`WEIR_BENCH_MB`, default 256; needs
//! `cargo xtask deps`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a benchmark binary

use std::future::poll_fn;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use weir_connector_files::fs::FileSystem;
use weir_connector_s3::S3Options;
use weir_connector_s3::UploadSettings;
use weir_testkit::servers::SeaweedS3;

const PART: usize = 8 * 1024 * 1024;
const RUNS: usize = 3;

async fn bare(client: &aws_sdk_s3::Client, key: &str, data: &[u8]) -> Duration {
    let start = Instant::now();
    let id = client
        .create_multipart_upload()
        .bucket("bench")
        .key(key)
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_owned();
    let mut parts = Vec::new();
    for (i, chunk) in data.chunks(PART).enumerate() {
        let n = i as i32 + 1;
        let out = client
            .upload_part()
            .bucket("bench")
            .key(key)
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(chunk.to_vec()))
            .send()
            .await
            .unwrap();
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(out.e_tag().unwrap())
                .build(),
        );
    }
    client
        .complete_multipart_upload()
        .bucket("bench")
        .key(key)
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    start.elapsed()
}

async fn ours(
    options: &S3Options,
    in_flight: usize,
    persist_every: Option<usize>,
    key: &str,
    data: &[u8],
) -> Duration {
    let mut o = options.clone();
    o.upload = UploadSettings {
        part_size: PART,
        max_in_flight: in_flight,
    };
    let fs = o.filesystem("bench").unwrap();
    let rw = fs.recoverable_writer();
    let start = Instant::now();
    let mut stream = rw.open(key).unwrap();
    let mut since = 0;
    for chunk in data.chunks(64 * 1024) {
        poll_fn(|cx| stream.poll_ready(cx)).await.unwrap();
        stream.write(chunk).unwrap();
        since += chunk.len();
        if persist_every.is_some_and(|p| since >= p) {
            since = 0;
            stream.persist().await.unwrap();
        }
    }
    let pending = stream.close_for_commit().await.unwrap();
    rw.commit(&pending).await.unwrap();
    start.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let mb: usize = std::env::var("WEIR_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let data: Vec<u8> = (0..mb * 1024 * 1024)
        .map(|i| (i as u8).wrapping_mul(31) ^ (i >> 13) as u8)
        .collect();
    let server = SeaweedS3::start().expect("SeaweedFS (run `cargo xtask deps`)");
    server.create_bucket("bench").unwrap();
    let c = server.credentials();
    let options = S3Options::new(
        Some(&server.endpoint()),
        &c.region,
        &c.access_key_id,
        &c.secret_access_key,
    );
    let client = options.client().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut results: Vec<(&str, Vec<Duration>)> = vec![
        ("bare SDK multipart, 1 connection", Vec::new()),
        ("recoverable writer, 1 part in flight", Vec::new()),
        ("recoverable writer, 4 parts in flight", Vec::new()),
        (
            "recoverable writer, 1 in flight, persist every 32 MiB",
            Vec::new(),
        ),
    ];
    rt.block_on(async {
        for run in 0..RUNS {
            results[0]
                .1
                .push(bare(&client, &format!("bare-{run}"), &data).await);
            results[1]
                .1
                .push(ours(&options, 1, None, &format!("ours1-{run}"), &data).await);
            results[2]
                .1
                .push(ours(&options, 4, None, &format!("ours4-{run}"), &data).await);
            results[3]
                .1
                .push(ours(&options, 1, Some(32 << 20), &format!("oursp-{run}"), &data).await);
        }
    });
    println!(
        "{mb} MiB per upload, {} MiB parts, median of {RUNS}",
        PART >> 20
    );
    for (name, runs) in results {
        let d = median(runs);
        println!(
            "{name}: {:.1} MB/s ({d:?})",
            mb as f64 * 1.048_576 / d.as_secs_f64()
        );
    }
}

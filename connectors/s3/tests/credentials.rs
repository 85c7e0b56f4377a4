//! Credentials from the standard AWS chain, against SeaweedFS: a named profile of a shared
//! credentials file, environment variables before a profile, explicit keys before the chain,
//! and the error when there are none.
//!
//! The chain reads the process environment, so each test runs its checks in a child process
//! (this test binary again, the one test selected) with an environment of its own: every `AWS_*`
//! variable of the parent removed, `HOME` an empty temporary directory, instance metadata off.
//! The parent's environment is never changed (tests run in parallel threads).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::server;

use std::path::Path;
use std::process::Command;

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream;
use weir_connector_api::error::ErrorClass;
use weir_connector_files::fs::FileSystem;
use weir_connector_s3::S3Options;

/// Set in a child process to the name of the test whose child part it runs.
const CHILD: &str = "WEIR_S3_CREDENTIALS_CHILD";

/// Whether this process is the child of test `name`.
fn is_child(name: &str) -> bool {
    std::env::var(CHILD).is_ok_and(|v| v == name)
}

/// The libtest name of test `name` of this file: its module path in the test binary (the
/// files of `tests/` are modules of `tests/integration.rs`).
fn test_path(name: &str) -> String {
    match module_path!().split_once("::") {
        Some((_, module)) => format!("{module}::{name}"),
        None => name.to_owned(),
    }
}

/// Runs test `name` of this binary in a child process: no `AWS_*` variable but `vars`, `HOME`
/// = `home` (no `~/.aws` files), instance metadata disabled. Fails unless the child ran the
/// test and it passed.
fn run_child(name: &str, home: &Path, vars: &[(&str, &str)]) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        &test_path(name),
        "--exact",
        "--nocapture",
        "--test-threads=1",
    ]);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("HOME", home)
        .env("USERPROFILE", home)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env(CHILD, name);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the child process of `{name}` failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Writes a shared credentials file into `dir`: profile `default` with wrong keys, profile
/// `weir-test` with the server's.
fn write_credentials_file(dir: &Path, server: &weir_testkit::servers::SeaweedS3) -> String {
    let c = server.credentials();
    let path = dir.join("weir-credentials");
    std::fs::write(
        &path,
        format!(
            "[default]\naws_access_key_id = not-the-key\naws_secret_access_key = not-the-secret\n\n\
             [weir-test]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            c.access_key_id, c.secret_access_key
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

/// In a child: a client built from the environment, as `weir` builds it (no keys in the
/// options), puts and gets an object.
fn put_and_get_with_the_chain(key: &str) -> S3Options {
    let options = S3Options::from_env().unwrap();
    assert!(options.access_key.is_none() && options.secret_key.is_none());
    let client = options.client().unwrap();
    runtime().block_on(async {
        let body = format!("signed for {key}");
        client
            .put_object()
            .bucket(server::BUCKET)
            .key(key)
            .body(ByteStream::from(body.clone().into_bytes()))
            .send()
            .await
            .unwrap();
        let got = client
            .get_object()
            .bucket(server::BUCKET)
            .key(key)
            .send()
            .await
            .unwrap();
        let got = got.body.collect().await.unwrap().into_bytes();
        assert_eq!(got.as_ref(), body.as_bytes());
    });
    options
}

const PROFILE_TEST: &str = "credentials_come_from_a_named_profile_of_a_shared_credentials_file";

/// `AWS_PROFILE` + `AWS_SHARED_CREDENTIALS_FILE`, no credential variables: the client signs
/// with the named profile's keys — not the file's `default` profile, whose keys are wrong — and
/// a put and a get work; explicit keys in the options (wrong ones here) are used instead of the
/// chain.
#[test]
fn credentials_come_from_a_named_profile_of_a_shared_credentials_file() {
    if is_child(PROFILE_TEST) {
        return profile_child();
    }
    let s = server::server();
    let home = tempfile::tempdir().unwrap();
    let credentials = write_credentials_file(home.path(), &s);
    let config = home.path().join("weir-config");
    std::fs::write(&config, "[profile weir-test]\n").unwrap();
    run_child(
        PROFILE_TEST,
        home.path(),
        &[
            ("AWS_PROFILE", "weir-test"),
            ("AWS_SHARED_CREDENTIALS_FILE", &credentials),
            ("AWS_CONFIG_FILE", config.to_str().unwrap()),
            ("AWS_ENDPOINT_URL", &s.endpoint()),
            ("AWS_REGION", &s.credentials().region),
        ],
    );
}

fn profile_child() {
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ] {
        assert!(std::env::var_os(var).is_none(), "{var} is set");
    }
    let options = put_and_get_with_the_chain("credentials-test/profile.txt");

    // Explicit keys come first: these wrong ones are refused, although the chain has the right
    // ones.
    let mut explicit = options;
    explicit.access_key = Some("weirtest-explicit".to_owned());
    explicit.secret_key = Some("not-the-secret".to_owned());
    let client = explicit.client().unwrap();
    let e = runtime()
        .block_on(
            client
                .get_object()
                .bucket(server::BUCKET)
                .key("credentials-test/profile.txt")
                .send(),
        )
        .unwrap_err();
    assert!(
        matches!(e, SdkError::ServiceError(_)),
        "the server refuses the explicit keys: {}",
        aws_sdk_s3::error::DisplayErrorContext(&e)
    );
}

const ENV_TEST: &str = "credentials_come_from_the_environment_before_a_profile";

/// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` with the server's keys, and a shared
/// credentials file whose `default` profile has wrong ones: the variables come first in the
/// chain, so a put and a get work.
#[test]
fn credentials_come_from_the_environment_before_a_profile() {
    if is_child(ENV_TEST) {
        put_and_get_with_the_chain("credentials-test/environment.txt");
        return;
    }
    let s = server::server();
    let c = s.credentials();
    let home = tempfile::tempdir().unwrap();
    let credentials = write_credentials_file(home.path(), &s);
    run_child(
        ENV_TEST,
        home.path(),
        &[
            ("AWS_ACCESS_KEY_ID", &c.access_key_id),
            ("AWS_SECRET_ACCESS_KEY", &c.secret_access_key),
            ("AWS_SHARED_CREDENTIALS_FILE", &credentials),
            (
                "AWS_CONFIG_FILE",
                home.path().join("missing-config").to_str().unwrap(),
            ),
            ("AWS_ENDPOINT_URL", &s.endpoint()),
            ("AWS_REGION", &c.region),
        ],
    );
}

const NONE_TEST: &str = "without_credentials_anywhere_requests_fail_saying_what_to_set";

/// No credential variables, no profile files, no web identity, no container credentials,
/// instance metadata off: building the client works (credentials are resolved at the first
/// request), the first request fails with a fatal error that names the options, the variables
/// and the profile to set.
#[test]
fn without_credentials_anywhere_requests_fail_saying_what_to_set() {
    if is_child(NONE_TEST) {
        return none_child();
    }
    let home = tempfile::tempdir().unwrap();
    let missing = home.path().join("missing");
    run_child(
        NONE_TEST,
        home.path(),
        &[
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                missing.join("credentials").to_str().unwrap(),
            ),
            ("AWS_CONFIG_FILE", missing.join("config").to_str().unwrap()),
            // Never contacted: credentials are resolved before a request is sent.
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ],
    );
}

fn none_child() {
    let options = S3Options::from_env().unwrap();
    let fs = options.filesystem("weir-tests").unwrap();
    let e = runtime()
        .block_on(fs.status("credentials-test/none.txt"))
        .unwrap_err();
    let text = e.to_string();
    println!("{text}");
    assert_eq!(e.class(), ErrorClass::Fatal, "{text}");
    for needle in [
        "no AWS credentials found",
        "s3.access-key",
        "s3.secret-key",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_PROFILE",
        "AWS_SHARED_CREDENTIALS_FILE",
    ] {
        assert!(text.contains(needle), "`{needle}` missing from: {text}");
    }
}

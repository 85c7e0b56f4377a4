//! Options and the README table.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use weir_connector_s3::config::{file_sink, s3_options, sink_options, source_options};
use weir_connector_s3::S3Options;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn options_are_read_and_checked() {
    let o = S3Options::from_map(&map(&[
        ("s3.endpoint", "http://127.0.0.1:9000"),
        ("s3.access-key", "a"),
        ("s3.secret-key", "b"),
        ("s3.upload.part-size", "16mb"),
    ]))
    .unwrap();
    assert_eq!(o.upload.part_size, 16 << 20);
    assert!(!format!("{o:?}").contains("\"b\""), "the secret is masked");
    let e = S3Options::from_map(&map(&[("s3.upload.part-size", "1mb"), ("s3.endpont", "x")]))
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("5 mb") && text.contains("s3.endpoint"),
        "{text}"
    );
    // Sinks need an s3:// path.
    let err = file_sink::<u64>(&map(&[
        ("path", "/local"),
        ("format", "json"),
        ("s3.access-key", "a"),
        ("s3.secret-key", "b"),
    ]))
    .unwrap_err();
    assert!(err.to_string().contains("s3://"), "{err}");
    assert!(sink_options().keys().any(|k| k == "compaction.enabled"));
    assert!(source_options()
        .keys()
        .any(|k| k == "source.monitor-interval"));
}

#[test]
fn readme_contains_exactly_the_generated_options_table() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let start = "<!-- s3-options:start -->\n";
    let end = "<!-- s3-options:end -->";
    let from = readme.find(start).unwrap() + start.len();
    let to = readme.find(end).unwrap();
    let table = s3_options().to_markdown();
    if readme[from..to] != table {
        if std::env::var_os("WEIR_REGENERATE_README").is_some() {
            std::fs::write(path, format!("{}{table}{}", &readme[..from], &readme[to..])).unwrap();
        } else {
            panic!("the README's options table is out of date: run with WEIR_REGENERATE_README=1");
        }
    }
}

/// A store that accepts connections and never answers (a fake listener): every request attempt
/// ends after `s3.request-timeout` and the call fails with a retryable error, instead of
/// hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_never_answers_fails_the_call_after_the_request_timeout() {
    use weir_connector_files::fs::FileSystem;

    // Accepts and holds every connection without a byte of answer. (Not the testkit's
    // `silent_listener`: these tests also run on API line 1.0, whose testkit has none.)
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            match stream {
                Ok(s) => held.push(s),
                Err(_) => break,
            }
        }
    });
    let o = S3Options::from_map(&map(&[
        ("s3.endpoint", &format!("http://{addr}")),
        ("s3.access-key", "a"),
        ("s3.secret-key", "b"),
        ("s3.request-timeout", "300ms"),
    ]))
    .unwrap();
    assert_eq!(o.request_timeout, std::time::Duration::from_millis(300));
    let fs = o.filesystem("bucket").unwrap();
    let started = std::time::Instant::now();
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(30), fs.status("some/key"))
        .await
        .expect("the call must end on its own, well before the test's 30 s");
    let e = outcome.unwrap_err();
    assert_eq!(
        e.class(),
        weir_connector_api::error::ErrorClass::Retryable,
        "a timeout is retryable: {e}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "three attempts of 300 ms and their backoff took {:?}",
        started.elapsed()
    );
}

//! State compatibility: the reference connectors restore the golden savepoints checked into
//! `tests/golden/` (regenerate them with `WEIR_REGENERATE_GOLDEN=1`), and damaged or missing
//! goldens are reported, not passed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use weir_testkit::golden::{self, MANIFEST_FILE, SAVEPOINT_DIR};
use weir_testkit::reference::{DatagenContext, ReferenceSinkContext};
use weir_testkit::{FindingKind, SuiteConfig};

weir_testkit::source_state_compat!(
    datagen_restores_its_golden_savepoint,
    DatagenContext::new,
    "tests/golden/datagen-source-v1"
);

weir_testkit::sink_state_compat!(
    reference_sink_restores_its_golden_savepoint,
    ReferenceSinkContext::new,
    "tests/golden/reference-sink-v1"
);

/// A fresh datagen golden in a temporary directory (independent of the checked-in ones, which
/// may be being rewritten while these tests run).
async fn fresh_golden(dir: &Path) -> std::path::PathBuf {
    let golden = dir.join("datagen-source-v1");
    let config = SuiteConfig::default().write_reports(false);
    golden::write_source_golden(&mut DatagenContext::new(), &golden, &config, None)
        .await
        .unwrap();
    golden
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_golden_fails_and_says_how_to_write_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = SuiteConfig::default().write_reports(false);
    let report = golden::check_source_golden(
        &mut DatagenContext::new(),
        &dir.path().join("none"),
        &config,
    )
    .await;
    assert!(report.failed(), "{report}");
    assert!(report.has(FindingKind::StateCompat), "{report}");
    assert!(
        report.findings[0]
            .message
            .contains("WEIR_REGENERATE_GOLDEN=1"),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_golden_savepoint_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let copy = fresh_golden(dir.path()).await;
    let metadata = copy.join(SAVEPOINT_DIR).join("_metadata");
    let bytes = std::fs::read(&metadata).unwrap();
    std::fs::write(&metadata, &bytes[..bytes.len() / 2]).unwrap();
    let config = SuiteConfig::default().write_reports(false);
    let report = golden::check_source_golden(&mut DatagenContext::new(), &copy, &config).await;
    println!("{report}");
    assert!(report.failed(), "{report}");
    assert!(report.has(FindingKind::StateCompat), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_golden_claiming_less_progress_than_its_savepoint_is_caught() {
    // The manifest says the savepoint covers nothing: the restored job then "misses" the
    // records the savepoint really covers — exactly what a release that lost state would do.
    let dir = tempfile::tempdir().unwrap();
    let copy = fresh_golden(dir.path()).await;
    let path = copy.join(MANIFEST_FILE);
    let mut manifest: golden::GoldenManifest =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert!(manifest.covered.iter().any(|c| *c > 0), "{manifest:?}");
    manifest.covered = vec![0; manifest.splits];
    std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let config = SuiteConfig::default().write_reports(false);
    let report = golden::check_source_golden(&mut DatagenContext::new(), &copy, &config).await;
    println!("{report}");
    assert!(report.has(FindingKind::Missing), "{report}");
}

//! A golden directory: its manifest, its savepoint, and the helpers that write and read them.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use weir_runtime::storage::METADATA_FILE_NAME;

use crate::check::{Finding, FindingKind};
use crate::harness::slug;

/// Set to `1` to (re)generate golden savepoints with the current code.
pub const REGENERATE_ENV: &str = "WEIR_REGENERATE_GOLDEN";
/// The manifest's file name inside a golden directory.
pub const MANIFEST_FILE: &str = "golden.json";
/// The savepoint's directory name inside a golden directory.
pub const SAVEPOINT_DIR: &str = "savepoint";

/// The parallelism a golden's savepoint is taken at.
pub(super) const PARALLELISM: usize = 2;
/// The splits of a golden's data.
pub(super) const SPLITS: usize = 2;
/// The seed of a golden's records.
pub(super) const GOLDEN_SEED: u64 = 0x0060_1DE7;

/// What a golden savepoint holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoldenManifest {
    /// The manifest format (1).
    pub format: u32,
    /// `source` or `sink`.
    pub kind: String,
    /// The connector's name.
    pub connector: String,
    /// The crate and version that wrote it, if known.
    pub written_by: Option<String>,
    /// The test id the data was written under (external resources are named after it).
    pub test_id: String,
    /// The seed of the records.
    pub seed: u64,
    /// `bounded` or `unbounded` (sources).
    pub boundedness: String,
    /// The number of splits.
    pub splits: usize,
    /// Records per split.
    pub records_per_split: u64,
    /// The parallelism the savepoint was taken at.
    pub parallelism: usize,
    /// Per split, how many of its first records the savepoint covers.
    pub covered: Vec<u64>,
    /// When it was written (milliseconds since the Unix epoch).
    pub created_at_ms: u64,
}

/// Whether `WEIR_REGENERATE_GOLDEN` asks for new goldens.
pub fn regenerate_requested() -> bool {
    std::env::var(REGENERATE_ENV).is_ok_and(|v| !v.is_empty() && v != "0")
}

pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub(super) fn golden_test_id(dir: &Path) -> String {
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("golden");
    format!("weir-golden-{}", slug(name, 28))
}

pub(super) fn finding(kind: FindingKind, message: impl Into<String>) -> Finding {
    Finding::new(kind, message)
}

pub(super) fn read_manifest(dir: &Path) -> Result<GoldenManifest, Finding> {
    let path = dir.join(MANIFEST_FILE);
    let bytes = fs::read(&path).map_err(|e| {
        finding(
            FindingKind::StateCompat,
            format!(
                "no golden at {} ({e}): run the test with {REGENERATE_ENV}=1 to write one, and commit it",
                path.display()
            ),
        )
    })?;
    let manifest: GoldenManifest = serde_json::from_slice(&bytes).map_err(|e| {
        finding(
            FindingKind::StateCompat,
            format!("{} is not a golden manifest: {e}", path.display()),
        )
    })?;
    if manifest.format != 1 {
        return Err(finding(
            FindingKind::StateCompat,
            format!(
                "{}: unknown manifest format {}",
                path.display(),
                manifest.format
            ),
        ));
    }
    if !dir.join(SAVEPOINT_DIR).join(METADATA_FILE_NAME).is_file() {
        return Err(finding(
            FindingKind::StateCompat,
            format!(
                "{} has no {SAVEPOINT_DIR}/{METADATA_FILE_NAME}",
                dir.display()
            ),
        ));
    }
    Ok(manifest)
}

pub(super) fn write_manifest(dir: &Path, manifest: &GoldenManifest) -> Result<(), Finding> {
    let json = serde_json::to_vec_pretty(manifest)
        .map_err(|e| finding(FindingKind::Context, format!("encoding the manifest: {e}")))?;
    fs::write(dir.join(MANIFEST_FILE), json)
        .map_err(|e| finding(FindingKind::Context, format!("writing the manifest: {e}")))
}

/// Moves the savepoint that a stop wrote into its own `savepoint-<id>-<time>` directory under
/// `savepoint` up into `savepoint` itself, the layout golden directories keep.
pub(super) fn flatten_savepoint(savepoint: &Path) -> Result<(), Finding> {
    let context = |what: &str, e: std::io::Error| {
        finding(
            FindingKind::Context,
            format!("{what} {}: {e}", savepoint.display()),
        )
    };
    let entries = fs::read_dir(savepoint).map_err(|e| context("listing", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| context("listing", e))?;
        let inner = entry.path().join(METADATA_FILE_NAME);
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with("savepoint-")
            && inner.is_file()
        {
            fs::rename(&inner, savepoint.join(METADATA_FILE_NAME))
                .map_err(|e| context("moving the savepoint into", e))?;
            fs::remove_dir(entry.path()).map_err(|e| context("cleaning up", e))?;
        }
    }
    Ok(())
}

pub(super) fn fresh_dir(dir: &Path) -> Result<PathBuf, Finding> {
    let savepoint = dir.join(SAVEPOINT_DIR);
    if savepoint.exists() {
        fs::remove_dir_all(&savepoint).map_err(|e| {
            finding(
                FindingKind::Context,
                format!("removing {}: {e}", savepoint.display()),
            )
        })?;
    }
    fs::create_dir_all(dir).map_err(|e| {
        finding(
            FindingKind::Context,
            format!("creating {}: {e}", dir.display()),
        )
    })?;
    Ok(savepoint)
}

pub(super) fn as_state_compat(f: Finding, savepoint: &Path) -> Finding {
    if matches!(f.kind, FindingKind::JobFailed | FindingKind::Timeout) {
        Finding::new(
            FindingKind::StateCompat,
            format!("restoring {}: {}", savepoint.display(), f.message),
        )
    } else {
        f
    }
}

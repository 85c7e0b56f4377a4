//! Where things are: the workspace root of the crate under test, its manifest directory and
//! the report directory.

use std::fs;
use std::path::{Path, PathBuf};

/// The variable that overrides the report directory.
pub const REPORT_DIR_ENV: &str = "WEIR_TESTKIT_REPORT_DIR";

/// The workspace root of the crate in `manifest_dir`: the nearest directory at or above it whose
/// `Cargo.toml` has a `[workspace]` table, or `manifest_dir` itself.
pub fn workspace_root(manifest_dir: &Path) -> PathBuf {
    manifest_dir
        .ancestors()
        .find(|dir| {
            fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|text| text.lines().any(|l| l.trim() == "[workspace]"))
        })
        .map_or_else(|| manifest_dir.to_path_buf(), Path::to_path_buf)
}

/// The manifest directory of the crate under test: the given one, else `$CARGO_MANIFEST_DIR`
/// (set by `cargo test`), else the testkit's own.
pub(crate) fn manifest_dir(given: Option<&Path>) -> PathBuf {
    given
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// Where reports go (see the [report module docs](mod@crate::report)).
pub fn report_dir(manifest_dir: Option<&Path>) -> PathBuf {
    if let Some(dir) = std::env::var_os(REPORT_DIR_ENV) {
        return PathBuf::from(dir);
    }
    let root = workspace_root(&self::manifest_dir(manifest_dir));
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) => root.join(t),
        None => root.join("target"),
    };
    target.join("weir-testkit")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_root_is_found_from_a_member() {
        let root = workspace_root(Path::new(env!("CARGO_MANIFEST_DIR")));
        assert!(root.join("testkit").is_dir(), "{}", root.display());
    }
}

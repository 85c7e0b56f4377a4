//! Weir's project tasks, run as `cargo xtask <task>` (see `.cargo/config.toml`):
//!
//! - `compat`: the versioning and compat-matrix checker ([`compat::check`], from the
//!   `weir-compat` crate that `weir compat check` shares);
//! - `deps`: installs the pinned test servers ([`deps::install`]) and the Debian packages the
//!   tests need ([`system::install`]: headless Chromium);
//! - `test`: everything CI runs ([`ci::run`]);
//! - `bench-peers`: Weir side by side with Apache Flink ([`bench_peers::run`]), not part of `test`.
//!
//! The library half exists so the tasks can be tested without running the binary.

pub mod bench_peers;
pub mod ci;
pub use weir_compat as compat;
pub mod deps;
pub mod system;

use std::path::{Path, PathBuf};

/// The workspace root: the parent of this crate's manifest directory.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

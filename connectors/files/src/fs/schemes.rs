//! Filesystems by URL scheme, registered at compile time: the `files` pipeline factory opens
//! `<scheme>://…` paths through them. The S3 crate registers `s3` (and `s3a`); another crate
//! adds a scheme with [`register_file_system!`](crate::register_file_system).
//!
//! ```
//! use std::sync::Arc;
//! use weir_connector_files::fs::{find_scheme, FileSystemScheme, OpenedPath};
//! use weir_connector_files::LocalFileSystem;
//!
//! fn open_mem(url: &str) -> Result<OpenedPath, String> {
//!     let path = url.strip_prefix("mem-test://").ok_or("not a mem-test URL")?;
//!     Ok(OpenedPath { fs: Arc::new(LocalFileSystem::new()), root: "mem-test".into(), path: path.into() })
//! }
//! static MEM: FileSystemScheme = FileSystemScheme { schemes: &["mem-test"], open: open_mem };
//! weir_connector_files::register_file_system!(MEM);
//!
//! let opened = (find_scheme("mem-test").unwrap().open)("mem-test://tmp/x").unwrap();
//! assert_eq!(opened.path, "tmp/x");
//! ```

use std::sync::Arc;

use super::FileSystem;

/// A path opened through a registered scheme.
pub struct OpenedPath {
    /// The filesystem that holds it.
    pub fs: Arc<dyn FileSystem>,
    /// Which filesystem instance (e.g. `s3://bucket`): paths of one source or sink must share it.
    pub root: String,
    /// The path inside that filesystem.
    pub path: String,
}

/// A filesystem for URLs of some schemes.
pub struct FileSystemScheme {
    /// The schemes it serves, lowercase, without `://`.
    pub schemes: &'static [&'static str],
    /// Opens a URL of one of them; `Err` says what is wrong with it or its configuration.
    pub open: fn(&str) -> Result<OpenedPath, String>,
}

/// A registered scheme (see [`register_file_system!`](crate::register_file_system)).
pub struct FileSystemRegistration(pub &'static FileSystemScheme);

weir_connector_api::inventory::collect!(FileSystemRegistration);

/// The registered filesystem for `scheme`, if one is linked in.
pub fn find_scheme(scheme: &str) -> Option<&'static FileSystemScheme> {
    let scheme = scheme.to_ascii_lowercase();
    weir_connector_api::inventory::iter::<FileSystemRegistration>
        .into_iter()
        .map(|r| r.0)
        .find(|s| s.schemes.contains(&scheme.as_str()))
}

/// Registers a [`FileSystemScheme`] (a `static`) at compile time.
#[macro_export]
macro_rules! register_file_system {
    ($scheme:expr) => {
        $crate::__inventory::submit! { $crate::fs::FileSystemRegistration(&$scheme) }
    };
}

//! The testkit's source and sink suites on the local filesystem.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::{FileSinkContext, FileSourceContext, SinkKind};
use weir_connector_files::LocalFileSystem;

fn sink(kind: SinkKind, name: &str) -> FileSinkContext {
    common::init_logs();
    let dir = Arc::new(tempfile::tempdir().expect("a temporary directory"));
    FileSinkContext {
        fs: Arc::new(LocalFileSystem::new()),
        root: dir.path().to_string_lossy().into_owned(),
        kind,
        name: name.into(),
        _dir: Some(dir),
    }
}

fn source() -> FileSourceContext {
    common::init_logs();
    let dir = Arc::new(tempfile::tempdir().expect("a temporary directory"));
    FileSourceContext {
        fs: Arc::new(LocalFileSystem::new()),
        root: dir.path().to_string_lossy().into_owned(),
        name: "files-local".into(),
        _dir: Some(dir),
    }
}

weir_testkit::sink_suite!(local_json_sink, || sink(SinkKind::Json, "files-local-json"));
weir_testkit::sink_suite!(local_parquet_compacted_sink, || sink(
    SinkKind::CompactedParquet,
    "files-local-parquet-compacted"
));
weir_testkit::source_suite!(local_json_source, source);

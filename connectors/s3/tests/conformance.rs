//! The testkit's source and sink suites on a real S3 server (SeaweedFS): file sink with JSON
//! lines and with compacted Parquet, file source with JSON lines. Every read-back also checks
//! that no multipart upload is left open and no hidden object is visible. And the golden state
//! file of the multipart upload state.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::server;

use std::sync::Arc;

use common::{FileSinkContext, FileSourceContext, SinkKind};
use weir_connector_s3::{S3UploadState, S3UploadStateSerializer, S3UploadedPart};

fn sink(kind: SinkKind, name: &str) -> (FileSinkContext, Arc<weir_testkit::servers::SeaweedS3>) {
    common::init_logs();
    let s = server::server();
    (
        FileSinkContext {
            fs: Arc::new(server::filesystem(&s)),
            root: name.to_owned(),
            kind,
            name: name.into(),
            _dir: None,
        },
        s,
    )
}

/// A context that keeps the server alive as long as it lives.
struct Held<C>(C, #[allow(dead_code)] Arc<weir_testkit::servers::SeaweedS3>);

#[weir_testkit::async_trait]
impl weir_testkit::SinkContext for Held<FileSinkContext> {
    type Record = weir_testkit::SplitRecord;
    type Sink = <FileSinkContext as weir_testkit::SinkContext>::Sink;
    fn name(&self) -> String {
        self.0.name()
    }
    fn support(&self) -> weir_testkit::SinkSupport {
        self.0.support()
    }
    fn create_sink(
        &self,
        s: &weir_testkit::SinkSettings,
    ) -> Result<Self::Sink, weir_testkit::ContextError> {
        self.0.create_sink(s)
    }
    async fn read_back(
        &self,
        s: &weir_testkit::SinkSettings,
    ) -> Result<Vec<Self::Record>, weir_testkit::ContextError> {
        self.0.read_back(s).await
    }
    fn records(
        &self,
        s: &weir_testkit::SinkSettings,
        split: usize,
        p: std::ops::Range<u64>,
    ) -> Vec<Self::Record> {
        self.0.records(s, split, p)
    }
}

#[weir_testkit::async_trait]
impl weir_testkit::SourceContext for Held<FileSourceContext> {
    type Record = weir_testkit::SplitRecord;
    type Source = <FileSourceContext as weir_testkit::SourceContext>::Source;
    fn name(&self) -> String {
        self.0.name()
    }
    fn support(&self) -> weir_testkit::SourceSupport {
        self.0.support()
    }
    fn create_source(
        &self,
        s: &weir_testkit::SourceSettings,
    ) -> Result<Self::Source, weir_testkit::ContextError> {
        self.0.create_source(s)
    }
    async fn create_split_writer(
        &mut self,
        s: &weir_testkit::SourceSettings,
        split: usize,
    ) -> Result<Box<dyn weir_testkit::SplitWriter<Self::Record>>, weir_testkit::ContextError> {
        self.0.create_split_writer(s, split).await
    }
    fn records(
        &self,
        s: &weir_testkit::SourceSettings,
        split: usize,
        p: std::ops::Range<u64>,
    ) -> Vec<Self::Record> {
        self.0.records(s, split, p)
    }
}

fn held_sink(kind: SinkKind, name: &str) -> Held<FileSinkContext> {
    let (c, s) = sink(kind, name);
    Held(c, s)
}

fn held_source() -> Held<FileSourceContext> {
    common::init_logs();
    let s = server::server();
    Held(
        FileSourceContext {
            fs: Arc::new(server::filesystem(&s)),
            root: "files-s3-source".into(),
            name: "files-s3".into(),
            _dir: None,
        },
        s,
    )
}

weir_testkit::sink_suite!(s3_json_sink, || held_sink(SinkKind::Json, "files-s3-json"));
weir_testkit::sink_suite!(s3_parquet_compacted_sink, || held_sink(
    SinkKind::CompactedParquet,
    "files-s3-parquet-compacted"
));
weir_testkit::source_suite!(s3_json_source, held_source);

// The golden state files are checked on API line 1.1 and newer: their checks
// (`state_compat!`) came with the 1.1 testkit, and a serializer is the same code on every
// line, so one line proves it. (`build.rs` sets `weir_api_1_1`.)
#[cfg(weir_api_1_1)]
mod state_files {
    #[allow(unused_imports)]
    use super::*;

    // The golden state file (`tests/golden/<stem>-v<version>.bin`) of the upload state in each part
    // file's recoverable: every version stays readable, and a serializer whose bytes change
    // without a new version fails. Version 1 was written by release 1.0.0.
    weir_testkit::state_compat!(
        upload_state_files_stay_readable,
        "s3-upload-state",
        S3UploadStateSerializer,
        S3UploadState {
            upload_id: Some("2~upload-7f3a".into()),
            parts: vec![
                S3UploadedPart {
                    number: 1,
                    etag: "\"9b2cf535f27731c974343645a3985328\"".into(),
                    len: 8 << 20,
                },
                S3UploadedPart {
                    number: 2,
                    etag: "\"6d0bb00954ceb7fbee436bb55a8397a9\"".into(),
                    len: 8 << 20,
                },
            ],
            tail: b"{\"id\":7}\n".to_vec(),
        }
    );
}

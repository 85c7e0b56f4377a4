//! The testkit's source and sink suites on the local filesystem, and the golden state files of
//! every serializer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use common::{FileSinkContext, FileSourceContext, SinkKind};
use weir_connector_api::state::VersionedSerializer;
use weir_connector_files::fs::{LocalInProgressFile, LocalInProgressFileSerializer, Recoverable};
use weir_connector_files::sink::{
    CompactCoordinatorState, CompactCoordinatorStateSerializer, CompactorRequest, CompactorState,
    CompactorStateSerializer, FileSinkCommittable, FileSinkCommittableSerializer, FileWriterState,
    FileWriterStateSerializer, HeldCompaction, InProgressState,
};
use weir_connector_files::source::{
    FileEnumeratorState, FileEnumeratorStateSerializer, FilePosition, FileSourceSplit,
    FileSourceSplitSerializer,
};
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

// The golden state files are checked on API line 1.1 and newer: their checks
// (`state_compat!`) came with the 1.1 testkit, and a serializer is the same code on every
// line, so one line proves it. (`build.rs` sets `weir_api_1_1`.)
#[cfg(weir_api_1_1)]
mod state_files {
    #[allow(unused_imports)]
    use super::*;
    use weir_testkit::state_files::{
        check_state_goldens, ChangedWithoutVersionBump, GoldenProblem, Regenerate, GOLDEN_DIR,
    };

    // Golden state files (`tests/golden/<stem>-v<version>.bin`) of every persisted type: every
    // version stays readable, and a serializer whose bytes change without a new version fails.
    // Version 1 was written by release 1.0.0.

    fn split() -> FileSourceSplit {
        let mut split = FileSourceSplit::row_group(
            "/data/orders/2024-01-01.parquet",
            4096,
            1_700_000_000_000,
            2,
        );
        split.position = FilePosition {
            offset: 0,
            records: 17,
        };
        split
    }

    /// A local part file `name` of bucket `2024-01-01--10`: its hidden temporary file is in the
    /// recoverable's data (the version byte, then a `LocalInProgressFile`).
    fn part_file(name: &str, len: u64) -> Recoverable {
        let temp = LocalInProgressFile {
            temp_path: format!("/out/2024-01-01--10/.{name}.inprogress.7f3a"),
        };
        let mut data = vec![1];
        data.extend(LocalInProgressFileSerializer.serialize(&temp).unwrap());
        Recoverable {
            target: format!("/out/2024-01-01--10/{name}"),
            len,
            data,
        }
    }

    fn pending() -> Recoverable {
        part_file("part-0c1d-3", 2048)
    }

    weir_testkit::state_compat!(
        split_state_files_stay_readable,
        "file-source-split",
        FileSourceSplitSerializer,
        split()
    );

    weir_testkit::state_compat!(
        enumerator_state_files_stay_readable,
        "file-enumerator-state",
        FileEnumeratorStateSerializer,
        FileEnumeratorState {
            pending: vec![
                split(),
                FileSourceSplit::file("/data/orders/2024-01-02.csv", 100, 1_700_000_100_000)
            ],
            seen: BTreeMap::from([(
                "/data/orders/2024-01-01.parquet".to_owned(),
                1_700_000_000_000
            )]),
            watermark: 1_699_000_000_000,
            discovered: true,
            in_flight: BTreeSet::from(["/data/orders".to_owned()]),
        }
    );

    weir_testkit::state_compat!(
        in_progress_file_state_files_stay_readable,
        "local-in-progress-file",
        LocalInProgressFileSerializer,
        LocalInProgressFile {
            temp_path: "/out/2024-01-01--10/.part-0c1d-4.inprogress.7f3a".into(),
        }
    );

    fn writer_state() -> FileWriterState {
        FileWriterState {
            bucket_id: "2024-01-01--10".into(),
            in_progress: Some(InProgressState {
                file: part_file("part-0c1d-4", 512),
                created_at_millis: 1_700_000_000_000,
            }),
            counter: 5,
        }
    }

    weir_testkit::state_compat!(
        writer_state_files_stay_readable,
        "file-writer-state",
        FileWriterStateSerializer,
        writer_state()
    );

    /// A release that changed the writer state's bytes (one more byte) and forgot the version bump
    /// fails the golden check of release 1.0.0's file; the released serializer passes it.
    #[test]
    fn a_serializer_changed_without_a_version_bump_fails_the_golden_check() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN_DIR);
        let expected = |_version: u32| writer_state();
        let report = check_state_goldens(
            &dir,
            "file-writer-state",
            &ChangedWithoutVersionBump(FileWriterStateSerializer),
            &expected,
            Regenerate::No,
        );
        assert!(
            report.has(|p| matches!(p, GoldenProblem::BytesChanged { version: 1, .. })),
            "{report}"
        );
        let report = check_state_goldens(
            &dir,
            "file-writer-state",
            &FileWriterStateSerializer,
            &expected,
            Regenerate::No,
        );
        assert!(report.passed(), "{report}");
    }

    weir_testkit::state_compat!(
        pending_committable_files_stay_readable,
        "file-sink-committable-pending",
        FileSinkCommittableSerializer,
        FileSinkCommittable::Pending {
            bucket_id: "2024-01-01--10".into(),
            file: pending(),
        }
    );

    weir_testkit::state_compat!(
        cleanup_committable_files_stay_readable,
        "file-sink-committable-cleanup",
        FileSinkCommittableSerializer,
        FileSinkCommittable::Cleanup { file: pending() }
    );

    weir_testkit::state_compat!(
        move_committable_files_stay_readable,
        "file-sink-committable-move",
        FileSinkCommittableSerializer,
        FileSinkCommittable::Move {
            bucket_id: "2024-01-01--10".into(),
            from: "/out/2024-01-01--10/.part-0c1d-3".into(),
            to: "/out/2024-01-01--10/part-0c1d-3".into(),
            len: 2048,
        }
    );

    weir_testkit::state_compat!(
        compact_coordinator_state_files_stay_readable,
        "compact-coordinator-state",
        CompactCoordinatorStateSerializer,
        CompactCoordinatorState {
            ended: false,
            checkpoints: 2,
            held: BTreeMap::from([("2024-01-01--10".to_owned(), vec![pending()])]),
        }
    );

    weir_testkit::state_compat!(
        compactor_state_files_stay_readable,
        "compactor-state",
        CompactorStateSerializer,
        CompactorState {
            ended: true,
            held: vec![HeldCompaction {
                checkpoint: 9,
                request: CompactorRequest {
                    bucket_id: "2024-01-01--10".into(),
                    to_compact: vec![pending()],
                    pass_through: vec![FileSinkCommittable::Cleanup { file: pending() }],
                    compact: true,
                },
            }],
        }
    );
}

//! Tests of the local storage, savepoints, `latest_readable` and `retain` on real directories.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use weir_connector_api::checkpoint::VersionedBytes;
use weir_connector_api::state::{frame, StateError};

use super::metadata::METADATA_MAGIC;
use super::*;

fn metadata(id: u64) -> CheckpointMetadata {
    let subtask = SubtaskSnapshot {
        finished: false,
        state: BTreeMap::from([(
            "splits".to_owned(),
            vec![VersionedBytes {
                version: 1,
                bytes: id.to_be_bytes().to_vec(),
            }],
        )]),
    };
    CheckpointMetadata {
        checkpoint_id: id,
        kind: SnapshotKind::Checkpoint,
        job_name: "orders".to_owned(),
        created_at_millis: 1_700_000_000_000 + id,
        operators: BTreeMap::from([(
            "source".to_owned(),
            OperatorSnapshot {
                parallelism: 1,
                finished: false,
                coordinator: Some(VersionedBytes {
                    version: 3,
                    bytes: b"enumerator".to_vec(),
                }),
                subtasks: vec![subtask],
                schema: Vec::new(),
            },
        )]),
    }
}

fn ids(listed: &[(u64, CheckpointLocation)]) -> Vec<u64> {
    listed.iter().map(|(id, _)| *id).collect()
}

fn metadata_file(storage: &LocalCheckpointStorage, id: u64) -> std::path::PathBuf {
    Path::new(storage.location_of(id).as_str()).join(METADATA_FILE_NAME)
}

#[tokio::test]
async fn write_and_read_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let storage = LocalCheckpointStorage::new(dir.path().join("checkpoints"));
    let location = storage.write_checkpoint(&metadata(4)).await.unwrap();
    assert_eq!(location, storage.location_of(4));
    assert!(dir.path().join("checkpoints/chk-4/_metadata").is_file());
    assert_eq!(storage.read(&location).await.unwrap(), metadata(4));
    // The `_metadata` file itself is accepted too.
    let file = CheckpointLocation::from_path(&metadata_file(&storage, 4));
    assert_eq!(storage.read(&file).await.unwrap(), metadata(4));
    // No temporary file is left behind.
    let names: Vec<_> = fs::read_dir(dir.path().join("checkpoints/chk-4"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![METADATA_FILE_NAME]);
}

#[tokio::test]
async fn listing_is_numeric_and_ignores_unrelated_entries() {
    let dir = tempfile::tempdir().unwrap();
    let storage = LocalCheckpointStorage::new(dir.path());
    for id in [2, 10, 9] {
        storage.write_checkpoint(&metadata(id)).await.unwrap();
    }
    fs::write(dir.path().join("README"), "hello").unwrap();
    fs::write(dir.path().join("chk-7"), "a file, not a directory").unwrap();
    fs::create_dir(dir.path().join("chk-abc")).unwrap();
    fs::create_dir(dir.path().join("chk-012")).unwrap();
    fs::write(dir.path().join("chk-012/_metadata"), "not canonical").unwrap();
    fs::create_dir(dir.path().join("chk-5")).unwrap(); // no _metadata: incomplete
    fs::create_dir(dir.path().join("savepoints")).unwrap();

    let listed = storage.list_checkpoints().await.unwrap();
    assert_eq!(ids(&listed), vec![2, 9, 10]);
    assert_eq!(listed[2].1, storage.location_of(10));
}

#[tokio::test]
async fn listing_a_missing_directory_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let storage = LocalCheckpointStorage::new(dir.path().join("not-yet"));
    assert!(storage.list_checkpoints().await.unwrap().is_empty());
    assert!(latest_readable(&storage).await.unwrap().is_none());
}

#[tokio::test]
async fn retain_discards_all_but_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let storage = LocalCheckpointStorage::new(dir.path());
    for id in 1..=5 {
        storage.write_checkpoint(&metadata(id)).await.unwrap();
    }
    let discarded = retain(&storage, 2).await.unwrap();
    assert_eq!(
        discarded,
        vec![
            storage.location_of(1),
            storage.location_of(2),
            storage.location_of(3)
        ]
    );
    assert_eq!(ids(&storage.list_checkpoints().await.unwrap()), vec![4, 5]);
    assert!(!dir.path().join("chk-1").exists());
    assert!(retain(&storage, 2).await.unwrap().is_empty());
    assert!(retain(&storage, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn discard_is_idempotent_and_refuses_foreign_locations() {
    let dir = tempfile::tempdir().unwrap();
    let storage = LocalCheckpointStorage::new(dir.path().join("checkpoints"));
    let location = storage.write_checkpoint(&metadata(1)).await.unwrap();
    storage.discard(&location).await.unwrap();
    storage.discard(&location).await.unwrap();
    assert!(storage.list_checkpoints().await.unwrap().is_empty());

    let foreign = CheckpointLocation::from_path(dir.path());
    let err = storage.discard(&foreign).await.unwrap_err();
    assert!(matches!(err, StorageError::InvalidLocation { .. }), "{err}");
    assert!(dir.path().exists());
}

#[tokio::test]
async fn writing_an_existing_checkpoint_id_fails() {
    let dir = tempfile::tempdir().unwrap();
    let storage = LocalCheckpointStorage::new(dir.path());
    storage.write_checkpoint(&metadata(3)).await.unwrap();
    let err = storage.write_checkpoint(&metadata(3)).await.unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::AlreadyExists {
                kind: SnapshotKind::Checkpoint,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("another job"), "{err}");
}

#[tokio::test]
async fn leftover_temp_files_are_ignored_and_cleaned_up_by_the_next_write() {
    let dir = tempfile::tempdir().unwrap();
    let storage = LocalCheckpointStorage::new(dir.path());
    storage.write_checkpoint(&metadata(1)).await.unwrap();
    // A crash while writing checkpoint 2 left its temporary file behind.
    fs::create_dir(dir.path().join("chk-2")).unwrap();
    fs::write(
        dir.path().join("chk-2/_metadata.inprogress-99-0"),
        b"half of it",
    )
    .unwrap();
    assert_eq!(ids(&storage.list_checkpoints().await.unwrap()), vec![1]);
    let restored = latest_readable(&storage).await.unwrap().unwrap();
    assert_eq!(restored.metadata.checkpoint_id, 1);
    assert!(restored.skipped.is_empty());

    storage.write_checkpoint(&metadata(3)).await.unwrap();
    assert!(!dir.path().join("chk-2").exists());
    assert_eq!(ids(&storage.list_checkpoints().await.unwrap()), vec![1, 3]);

    // A retry of the same id cleans its own leftovers and succeeds.
    fs::create_dir(dir.path().join("chk-4")).unwrap();
    fs::write(dir.path().join("chk-4/_metadata.inprogress-1-1"), b"x").unwrap();
    storage.write_checkpoint(&metadata(4)).await.unwrap();
    let names: Vec<_> = fs::read_dir(dir.path().join("chk-4"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![METADATA_FILE_NAME]);
}

#[tokio::test]
async fn latest_readable_skips_truncated_and_bit_flipped_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let storage = LocalCheckpointStorage::new(dir.path());
    for id in 1..=3 {
        storage.write_checkpoint(&metadata(id)).await.unwrap();
    }
    // Newest: truncated.
    let newest = metadata_file(&storage, 3);
    let bytes = fs::read(&newest).unwrap();
    fs::write(&newest, &bytes[..bytes.len() / 2]).unwrap();
    // Second newest: one bit flipped in the payload.
    let second = metadata_file(&storage, 2);
    let mut bytes = fs::read(&second).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x10;
    fs::write(&second, &bytes).unwrap();

    let restored = latest_readable(&storage).await.unwrap().unwrap();
    assert_eq!(restored.metadata, metadata(1));
    assert_eq!(restored.location, storage.location_of(1));
    let skipped: Vec<_> = restored.skipped.iter().map(|(l, _)| l.clone()).collect();
    assert_eq!(
        skipped,
        vec![storage.location_of(3), storage.location_of(2)]
    );
    assert!(matches!(
        restored.skipped[0].1,
        StorageError::Corrupt {
            source: StateError::Truncated { .. },
            ..
        }
    ));
    assert!(matches!(
        restored.skipped[1].1,
        StorageError::Corrupt {
            source: StateError::ChecksumMismatch { .. },
            ..
        }
    ));
    let message = restored.skipped[0].1.to_string();
    assert!(
        message.contains(storage.location_of(3).as_str())
            && message.contains("corrupt or truncated")
            && message.contains("an earlier retained checkpoint used"),
        "{message}"
    );
}

#[tokio::test]
async fn latest_readable_reports_why_when_no_checkpoint_is_readable() {
    let dir = tempfile::tempdir().unwrap();
    let storage = LocalCheckpointStorage::new(dir.path());
    for id in 1..=2 {
        storage.write_checkpoint(&metadata(id)).await.unwrap();
        fs::write(metadata_file(&storage, id), b"garbage").unwrap();
    }
    let err = latest_readable(&storage).await.unwrap_err();
    let StorageError::NoReadableCheckpoint { skipped } = &err else {
        panic!("unexpected error: {err}");
    };
    let locations: Vec<_> = skipped.iter().map(|(l, _)| l.clone()).collect();
    assert_eq!(
        locations,
        vec![storage.location_of(2), storage.location_of(1)]
    );
    assert!(skipped.iter().all(|(_, e)| e.is_corrupt()));
    let message = err.to_string();
    assert!(
        message.contains("none of the 2 retained checkpoints") && message.contains("savepoint"),
        "{message}"
    );
}

#[tokio::test]
async fn unknown_format_version_is_rejected_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let storage = LocalCheckpointStorage::new(dir.path());
    storage.write_checkpoint(&metadata(1)).await.unwrap();
    storage.write_checkpoint(&metadata(2)).await.unwrap();
    let file = metadata_file(&storage, 2);
    let bytes = fs::read(&file).unwrap();
    let payload = frame::decode(METADATA_MAGIC, &bytes)
        .unwrap()
        .payload
        .to_vec();
    fs::write(&file, frame::encode(METADATA_MAGIC, 3, &payload).unwrap()).unwrap();

    let err = storage.read(&storage.location_of(2)).await.unwrap_err();
    assert!(
        matches!(err, StorageError::UnsupportedVersion { version: 3, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade"), "{err}");
    let err = latest_readable(&storage).await.unwrap_err();
    assert!(
        matches!(err, StorageError::UnsupportedVersion { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn savepoint_is_relocatable() {
    let dir = tempfile::tempdir().unwrap();
    let mut savepoint = metadata(8);
    savepoint.kind = SnapshotKind::Savepoint;
    let original = dir.path().join("savepoints/sp-8");
    let location = write_savepoint(&original, &savepoint).await.unwrap();
    assert_eq!(location, CheckpointLocation::from_path(&original));
    assert!(original.join(METADATA_FILE_NAME).is_file());

    let moved = dir.path().join("elsewhere");
    fs::rename(&original, &moved).unwrap();
    assert_eq!(read_savepoint(&moved).await.unwrap(), savepoint);
    assert_eq!(
        read_savepoint(&moved.join(METADATA_FILE_NAME))
            .await
            .unwrap(),
        savepoint
    );
    // A checkpoint storage reads a savepoint location too.
    let storage = LocalCheckpointStorage::new(dir.path().join("checkpoints"));
    let moved_location = CheckpointLocation::from_path(&moved);
    assert_eq!(storage.read(&moved_location).await.unwrap(), savepoint);
}

#[tokio::test]
async fn savepoint_into_an_occupied_directory_fails() {
    let dir = tempfile::tempdir().unwrap();
    write_savepoint(dir.path(), &metadata(1)).await.unwrap();
    let err = write_savepoint(dir.path(), &metadata(2)).await.unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::AlreadyExists {
                kind: SnapshotKind::Savepoint,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("already holds a savepoint"),
        "{err}"
    );
    assert_eq!(read_savepoint(dir.path()).await.unwrap(), metadata(1));
}

#[tokio::test]
async fn savepoint_errors_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let err = read_savepoint(&dir.path().join("missing"))
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::NotFound { .. }), "{err}");

    fs::write(dir.path().join(METADATA_FILE_NAME), b"WCKP").unwrap();
    let err = read_savepoint(dir.path()).await.unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::Corrupt {
                kind: SnapshotKind::Savepoint,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("restore from another savepoint"),
        "{err}"
    );
}

#[tokio::test]
async fn works_through_a_trait_object() {
    let dir = tempfile::tempdir().unwrap();
    let storage: std::sync::Arc<dyn CheckpointStorage> =
        std::sync::Arc::new(LocalCheckpointStorage::new(dir.path()));
    storage.write_checkpoint(&metadata(1)).await.unwrap();
    storage.write_checkpoint(&metadata(2)).await.unwrap();
    assert_eq!(retain(&storage, 1).await.unwrap().len(), 1);
    let restored = latest_readable(storage.as_ref()).await.unwrap().unwrap();
    assert_eq!(restored.metadata, metadata(2));
}

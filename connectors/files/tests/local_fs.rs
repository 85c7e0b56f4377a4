//! The local filesystem's recoverable writer: hidden in-progress files, persist / recover with
//! truncation, idempotent commits, taking back a hidden file a failed compaction published, and
//! the orphan sweep.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use weir_connector_files::fs::file_name;
use weir_connector_files::fs::{CommitStatus, FileSystem};
use weir_connector_files::sink::{label_uuid, part_name, Label, OutputFileConfig};
use weir_connector_files::sink::{sweep_orphans, SweepScope};

fn scope(subtask: u32) -> SweepScope {
    SweepScope {
        compacted: false,
        subtask,
        parallelism: 2,
        above: 3,
        attempts_below: None,
    }
}
use weir_connector_files::LocalFileSystem;

#[tokio::test]
async fn in_progress_files_are_hidden_resumable_and_commit_once() {
    let dir = tempfile::tempdir().unwrap();
    let fs: Arc<dyn FileSystem> = Arc::new(LocalFileSystem::new());
    let rw = fs.recoverable_writer();
    let target = format!("{}/b/part-1.txt", dir.path().display());
    let mut s = rw.open(&target).unwrap();
    s.write(b"hello ").unwrap();
    let checkpoint = s.persist().await.unwrap();
    s.write(b"lost after the checkpoint").unwrap();
    s.persist().await.unwrap();
    drop(s);
    let listed = fs
        .list_files(&format!("{}/b", dir.path().display()))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert!(file_name(&listed[0].path).starts_with(".part-1.txt.inprogress."));
    let mut s = rw.recover(&checkpoint).await.unwrap();
    s.write(b"world").unwrap();
    let pending = s.close_for_commit().await.unwrap();
    assert_eq!(
        rw.read_pending(&pending).await.unwrap().unwrap().as_ref(),
        b"hello world"
    );
    assert_eq!(rw.commit(&pending).await.unwrap(), CommitStatus::Committed);
    assert_eq!(
        rw.commit(&pending).await.unwrap(),
        CommitStatus::AlreadyCommitted
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"hello world");
    // A hidden file published by a failed attempt is taken back on recovery.
    let hidden = format!("{}/b/.part-2.txt", dir.path().display());
    let mut s = rw.open(&hidden).unwrap();
    s.write(b"abc").unwrap();
    let checkpoint = s.persist().await.unwrap();
    s.write(b"def").unwrap();
    rw.commit(&s.close_for_commit().await.unwrap())
        .await
        .unwrap();
    let mut s = rw.recover(&checkpoint).await.unwrap();
    s.write(b"xyz").unwrap();
    rw.commit(&s.close_for_commit().await.unwrap())
        .await
        .unwrap();
    assert_eq!(std::fs::read(&hidden).unwrap(), b"abcxyz");
    // A visible file is never taken back.
    let mut s = rw
        .open(&format!("{}/b/part-3.txt", dir.path().display()))
        .unwrap();
    s.write(b"abc").unwrap();
    let checkpoint = s.persist().await.unwrap();
    rw.commit(&s.close_for_commit().await.unwrap())
        .await
        .unwrap();
    assert!(rw.recover(&checkpoint).await.is_err());
}

#[tokio::test]
async fn the_sweep_removes_only_unreferenced_files_of_its_subtasks() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().to_string_lossy().into_owned();
    let fs: Arc<dyn FileSystem> = Arc::new(LocalFileSystem::new());
    let rw = fs.recoverable_writer();
    let output = OutputFileConfig::new("part", ".txt");
    let mut open = Vec::new();
    for (subtask, epoch) in [(0, 3), (0, 4), (1, 4), (2, 9)] {
        let name = part_name(
            &output,
            &label_uuid(Label {
                subtask,
                attempt: 0,
                epoch,
            }),
            0,
        );
        let mut s = rw.open(&format!("{base}/x/{name}")).unwrap();
        s.write(b"data").unwrap();
        s.persist().await.unwrap();
        open.push(s);
    }
    // An unrelated hidden file and another sink's part file stay.
    std::fs::write(format!("{base}/x/.keep"), b"").unwrap();
    // Restored from checkpoint 3 at parallelism 2: subtask 0 owns old subtasks 0 and 2.
    assert_eq!(
        sweep_orphans(&fs, &base, &output, scope(0)).await.unwrap(),
        2
    );
    assert_eq!(
        sweep_orphans(&fs, &base, &output, scope(1)).await.unwrap(),
        1
    );
    let left = rw.list_in_progress(&base).await.unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(std::path::Path::new(&format!("{base}/x/.keep")).exists());
}

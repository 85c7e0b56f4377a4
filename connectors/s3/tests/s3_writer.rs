//! The S3 recoverable writer against a real server (SeaweedFS): uploads spanning checkpoints,
//! resuming after failures, idempotent commits, taking back a hidden file a failed compaction
//! published, and the orphan sweep.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::server;

use std::sync::Arc;

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

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

const MIB: usize = 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_spans_checkpoints_resumes_after_a_failure_and_commits_once() {
    let s = server::server();
    let fs: Arc<dyn FileSystem> = Arc::new(server::filesystem(&s));
    let rw = fs.recoverable_writer();
    let key = "writer-test/span/part-1.bin";
    let first = data(6 * MIB + 100, 1);
    let mut stream = rw.open(key).unwrap();
    stream.write(&first).unwrap();
    // The checkpoint: one 5 MiB part uploaded, the rest in the state.
    let checkpoint = stream.persist().await.unwrap();
    assert_eq!(checkpoint.len, first.len() as u64);
    assert!(
        checkpoint.data.len() < 2 * MIB,
        "the state holds only the tail"
    );
    // Written after the checkpoint, then the process dies.
    stream.write(&data(6 * MIB, 2)).unwrap();
    let _ = stream.persist().await.unwrap();
    drop(stream);
    // Restore: resume from the checkpoint and finish the file.
    let mut resumed = rw.recover(&checkpoint).await.unwrap();
    assert_eq!(resumed.len(), first.len() as u64);
    let second = data(5 * MIB + 7, 3);
    resumed.write(&second).unwrap();
    let pending = resumed.close_for_commit().await.unwrap();
    assert!(
        fs.status(key).await.unwrap().is_none(),
        "invisible before the commit"
    );
    assert_eq!(rw.commit(&pending).await.unwrap(), CommitStatus::Committed);
    // Committing again changes nothing (S3 accepts a repeated complete; once the upload is
    // gone the object's size tells that it was committed).
    assert!(matches!(
        rw.commit(&pending).await.unwrap(),
        CommitStatus::Committed | CommitStatus::AlreadyCommitted
    ));
    let mut expected = first;
    expected.extend_from_slice(&second);
    assert_eq!(
        fs.read_all(key).await.unwrap().as_ref(),
        expected.as_slice()
    );
    // Reading a range and streaming from an offset.
    let range = fs.read_range(key, 10..20).await.unwrap();
    assert_eq!(range.as_ref(), &expected[10..20]);
    assert!(rw
        .list_in_progress("writer-test/span")
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hidden_file_published_by_a_failed_attempt_is_taken_back() {
    let s = server::server();
    let fs: Arc<dyn FileSystem> = Arc::new(server::filesystem(&s));
    let rw = fs.recoverable_writer();
    for (case, size) in [("big", 6 * MIB + 11), ("small", 1000)] {
        let key = format!("writer-test/take-back-{case}/.part-1.bin");
        let first = data(size, 4);
        let mut stream = rw.open(&key).unwrap();
        stream.write(&first).unwrap();
        let checkpoint = stream.persist().await.unwrap();
        stream.write(b"after the checkpoint").unwrap();
        // A compactor of the failed attempt published it under its hidden name.
        let pending = stream.close_for_commit().await.unwrap();
        rw.commit(&pending).await.unwrap();
        let mut resumed = rw.recover(&checkpoint).await.unwrap();
        resumed.write(b"tail").unwrap();
        let pending = resumed.close_for_commit().await.unwrap();
        rw.commit(&pending).await.unwrap();
        let mut expected = first;
        expected.extend_from_slice(b"tail");
        assert_eq!(
            fs.read_all(&key).await.unwrap().as_ref(),
            expected.as_slice(),
            "{case}"
        );
        fs.delete(&key).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_aborts_uploads_no_checkpoint_references() {
    let s = server::server();
    let fs: Arc<dyn FileSystem> = Arc::new(server::filesystem(&s));
    let rw = fs.recoverable_writer();
    let base = "writer-test/sweep";
    let output = OutputFileConfig::new("part", ".bin");
    let open = |subtask: u32, epoch: u64| {
        let name = part_name(
            &output,
            &label_uuid(Label {
                subtask,
                attempt: 0,
                epoch,
            }),
            0,
        );
        let mut stream = rw.open(&format!("{base}/b/{name}")).unwrap();
        stream.write(&data(5 * MIB + 1, 5)).unwrap();
        stream
    };
    // Subtask 0: epoch 3 (referenced by checkpoint 3) and epoch 4 (after it).
    let mut kept = open(0, 3);
    let mut orphan = open(0, 4);
    // Subtask 1's orphan is not subtask 0's to sweep.
    let mut other = open(1, 4);
    for s in [&mut kept, &mut orphan, &mut other] {
        s.persist().await.unwrap(); // makes sure the uploads exist
    }
    assert_eq!(rw.list_in_progress(base).await.unwrap().len(), 3);
    let swept = sweep_orphans(&fs, base, &output, scope(0)).await.unwrap();
    assert_eq!(swept, 1);
    let left: Vec<String> = rw
        .list_in_progress(base)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.target)
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.iter().all(|t| t != orphan.target()));
    let swept = sweep_orphans(&fs, base, &output, scope(1)).await.unwrap();
    assert_eq!(swept, 1);
    kept.abort().await.unwrap();
    assert!(rw.list_in_progress(base).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rename_beyond_the_single_copy_limit_copies_in_parts() {
    let s = server::server();
    // S3 copies at most 5 GiB at once; with the limit lowered to 5 MiB, a 12 MiB object takes
    // the multipart path a 6 GiB one takes on real S3.
    let fs = server::filesystem(&s).with_max_single_copy(5 * MIB as u64);
    let body = data(12 * MIB + 3, 9);
    fs.write_atomic("copy-test/big.bin", body.clone().into())
        .await
        .unwrap();
    fs.rename("copy-test/big.bin", "copy-test/moved.bin")
        .await
        .unwrap();
    assert_eq!(
        fs.read_all("copy-test/moved.bin").await.unwrap().as_ref(),
        body.as_slice()
    );
    assert!(fs.status("copy-test/big.bin").await.unwrap().is_none());
    // A small object still takes the single copy.
    fs.write_atomic("copy-test/small.bin", data(1000, 4).into())
        .await
        .unwrap();
    fs.rename("copy-test/small.bin", "copy-test/small-moved.bin")
        .await
        .unwrap();
    assert_eq!(
        fs.read_all("copy-test/small-moved.bin")
            .await
            .unwrap()
            .as_ref(),
        data(1000, 4).as_slice()
    );
    // No multipart upload is left open.
    let open = fs
        .client()
        .list_multipart_uploads()
        .bucket(fs.bucket())
        .prefix("copy-test/")
        .send()
        .await
        .unwrap();
    assert!(open.uploads().is_empty(), "{:?}", open.uploads());
}

//! Split pause/resume (for split-level watermark alignment).

// Test helpers outside #[test] functions may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use common::TestReaderContext;
use futures::task::{waker, ArcWake};
use weir_connector_api::source::{
    CollectingOutput, InputStatus, Source, SourceReader, SourceReaderExt,
};
use weir_connector_datagen::{DataGeneratorSource, NumberSequenceSplit, RateLimiterStrategy};

struct CountingWaker(AtomicUsize);

impl ArcWake for CountingWaker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn reader_with_two_splits() -> <DataGeneratorSource<u64> as Source>::Reader {
    let source =
        DataGeneratorSource::new(|n| n, Some(20), RateLimiterStrategy::no_op()).with_batch_size(4);
    let mut reader = source.create_reader(TestReaderContext::new(0, 1)).unwrap();
    reader
        .add_splits(vec![
            NumberSequenceSplit::new("seq-0", 0, 10),
            NumberSequenceSplit::new("seq-1", 10, 20),
        ])
        .unwrap();
    reader
}

fn records_of(out: &CollectingOutput<u64>, split: &str) -> Vec<u64> {
    out.records()
        .filter(|(s, _)| *s == Some(split))
        .map(|(_, r)| *r)
        .collect()
}

#[test]
fn the_reader_declares_the_pause_capability() {
    let mut reader = reader_with_two_splits();
    assert!(reader.as_pausable().is_some());
}

#[test]
fn paused_splits_emit_nothing_and_resume_where_they_stopped() {
    let mut reader = reader_with_two_splits();
    let mut out = CollectingOutput::new();
    reader.poll_next(&mut out).unwrap();
    reader.poll_next(&mut out).unwrap();
    let seq0_before = records_of(&out, "seq-0");
    assert!(!seq0_before.is_empty());

    reader
        .as_pausable()
        .unwrap()
        .pause_or_resume_splits(&["seq-0".into()], &[])
        .unwrap();
    for _ in 0..3 {
        reader.poll_next(&mut out).unwrap();
    }
    assert_eq!(
        records_of(&out, "seq-0"),
        seq0_before,
        "a paused split emitted"
    );
    assert_eq!(records_of(&out, "seq-1"), (10..20).collect::<Vec<_>>());

    // Only the paused split is left: nothing available, and the reader is not ready.
    assert_eq!(
        reader.poll_next(&mut out).unwrap(),
        InputStatus::NothingAvailable
    );
    let wakes = Arc::new(CountingWaker(AtomicUsize::new(0)));
    let waker = waker(wakes.clone());
    let mut cx = Context::from_waker(&waker);
    assert_eq!(pin!(reader.available()).poll(&mut cx), Poll::Pending);

    // Resuming wakes the task; reading continues with the next number of the split.
    reader
        .as_pausable()
        .unwrap()
        .pause_or_resume_splits(&[], &["seq-0".into(), "unknown".into()])
        .unwrap();
    assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
    assert_eq!(pin!(reader.available()).poll(&mut cx), Poll::Ready(()));
    reader.notify_no_more_splits();
    while reader.poll_next(&mut out).unwrap() != InputStatus::EndOfInput {}
    assert_eq!(records_of(&out, "seq-0"), (0..10).collect::<Vec<_>>());
}

#[test]
fn paused_splits_keep_their_position_in_checkpoints() {
    let mut reader = reader_with_two_splits();
    let mut out = CollectingOutput::new();
    reader.poll_next(&mut out).unwrap();
    reader
        .as_pausable()
        .unwrap()
        .pause_or_resume_splits(&["seq-0".into(), "seq-1".into()], &[])
        .unwrap();
    let state = reader
        .snapshot_state(weir_connector_api::checkpoint::CheckpointId(1))
        .unwrap();
    assert_eq!(
        state,
        [
            NumberSequenceSplit::new("seq-0", 4, 10),
            NumberSequenceSplit::new("seq-1", 10, 20),
        ]
    );
    // All paused and no more splits: not the end, the splits still have numbers.
    reader.notify_no_more_splits();
    assert_eq!(
        reader.poll_next(&mut out).unwrap(),
        InputStatus::NothingAvailable
    );
}

//! Unbounded datagen sources: interleaved splits produce distinct numbers, forever.

// Test helpers outside #[test] functions may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::BTreeSet;

use common::{Harness, TestReaderContext};
use weir_connector_api::source::{
    Boundedness, CollectingOutput, InputStatus, Source, SourceReader,
};
use weir_connector_datagen::{DataGeneratorSource, NumberSequenceSplit, RateLimiterStrategy};

fn source() -> DataGeneratorSource<u64> {
    DataGeneratorSource::new(|n| n, None, RateLimiterStrategy::no_op()).with_batch_size(250)
}

#[test]
fn unbounded_source_is_continuous() {
    assert_eq!(source().boundedness(), Boundedness::ContinuousUnbounded);
    assert_eq!(source().count(), None);
}

#[test]
fn readers_produce_distinct_interleaved_numbers() {
    let mut h = Harness::start(source(), 3);
    h.run_rounds(40);
    assert!(
        h.finished.iter().all(|f| !f),
        "an unbounded reader never ends"
    );
    let records = h.records();
    let distinct: BTreeSet<u64> = records.iter().copied().collect();
    assert_eq!(distinct.len(), records.len(), "a number was emitted twice");
    assert_eq!(records.len(), 3 * 40 * 250);
    // Split i holds i, i + 3, i + 6, ...: together the readers cover a prefix of the numbers.
    for (split, numbers) in h.records_by_split() {
        let index: u64 = split.trim_start_matches("seq-").parse().unwrap();
        let expected: Vec<u64> = (0..numbers.len() as u64).map(|k| index + 3 * k).collect();
        assert_eq!(numbers, expected, "{split}");
    }
    assert_eq!(distinct, (0..30_000).collect());
}

#[test]
fn unbounded_snapshot_and_restore_resume_without_gap_or_duplicate() {
    let mut h = Harness::start(source(), 2);
    h.run_rounds(5);
    let before = h.records();
    let snapshot = h.snapshot(7);
    h.run_rounds(5); // discarded: the job fails after this

    // Restore at a higher parallelism: the third reader gets no split and finishes.
    let mut restored = Harness::restore(source(), 3, &snapshot);
    restored.run_rounds(5);
    assert!(restored.finished[2]);
    assert!(!restored.finished[0] && !restored.finished[1]);
    let mut all = before;
    all.extend(restored.records());
    let distinct: BTreeSet<u64> = all.iter().copied().collect();
    assert_eq!(distinct.len(), all.len());
    assert_eq!(distinct, (0..all.len() as u64).collect());
}

#[test]
fn a_split_near_the_top_of_the_range_ends_cleanly() {
    let ctx = TestReaderContext::new(0, 1);
    let mut reader = source().create_reader(ctx).unwrap();
    reader
        .add_splits(vec![NumberSequenceSplit::strided(
            "seq-0",
            u64::MAX - 7,
            u64::MAX,
            3,
        )])
        .unwrap();
    reader.notify_no_more_splits();
    let mut out = CollectingOutput::new();
    while reader.poll_next(&mut out).unwrap() != InputStatus::EndOfInput {}
    let records: Vec<u64> = out.records().map(|(_, r)| *r).collect();
    assert_eq!(records, [u64::MAX - 7, u64::MAX - 4, u64::MAX - 1]);
}

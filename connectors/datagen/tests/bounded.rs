//! Bounded datagen sources driven by hand: exactly once, per-split order, checkpoints,
//! failures, metrics.

// Test helpers outside #[test] functions may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{assert_exactly_once, Harness, Snapshot, TestReaderContext};
use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::metrics::{NUM_RECORDS_IN, PENDING_RECORDS};
use weir_connector_api::source::{
    Boundedness, CollectedEvent, CollectingOutput, InputStatus, Source, SourceReader,
    SplitEnumerator,
};
use weir_connector_api::state::VersionedSerializer;
use weir_connector_datagen::{DataGeneratorSource, NumberSequenceSplit, RateLimiterStrategy};

fn source(count: u64) -> DataGeneratorSource<u64> {
    DataGeneratorSource::new(|n| n, Some(count), RateLimiterStrategy::no_op())
}

#[test]
fn bounded_source_is_bounded() {
    assert_eq!(source(3).boundedness(), Boundedness::Bounded);
    assert_eq!(source(3).count(), Some(3));
}

#[test]
fn parallelism_1_emits_every_number_once_in_order() {
    let mut h = Harness::start(source(10_000), 1);
    h.run_to_end();
    let records = h.records();
    assert_eq!(records, (0..10_000).collect::<Vec<_>>());
    // One split, then "no more splits" on the second request.
    let assignments = h.record.assignments.lock().unwrap().clone();
    assert_eq!(
        assignments,
        [(0, NumberSequenceSplit::new("seq-0", 0, 10_000))]
    );
}

#[test]
fn parallelism_3_emits_every_number_once() {
    let mut h = Harness::start(source(10_000), 3);
    h.run_to_end();
    assert_exactly_once(h.records(), 10_000);
    // Every reader got its own contiguous split, read in ascending order.
    let assignments = h.record.assignments.lock().unwrap().clone();
    assert_eq!(
        assignments,
        [
            (0, NumberSequenceSplit::new("seq-0", 0, 3334)),
            (1, NumberSequenceSplit::new("seq-1", 3334, 6667)),
            (2, NumberSequenceSplit::new("seq-2", 6667, 10_000)),
        ]
    );
    for (split, records) in h.records_by_split() {
        assert!(records.windows(2).all(|w| w[1] == w[0] + 1), "{split}");
    }
}

#[test]
fn the_generator_maps_every_number() {
    let source = DataGeneratorSource::new(
        |n| format!("row-{n}"),
        Some(3),
        RateLimiterStrategy::no_op(),
    );
    let ctx = TestReaderContext::new(0, 1);
    let mut reader = source.create_reader(ctx).unwrap();
    reader
        .add_splits(vec![NumberSequenceSplit::new("seq-0", 0, 3)])
        .unwrap();
    reader.notify_no_more_splits();
    let mut out = CollectingOutput::new();
    while reader.poll_next(&mut out).unwrap() != InputStatus::EndOfInput {}
    let records: Vec<&String> = out.records().map(|(_, r)| r).collect();
    assert_eq!(records, ["row-0", "row-1", "row-2"]);
}

#[test]
fn fewer_numbers_than_readers_and_empty_sources_finish() {
    let mut h = Harness::start(source(2), 4);
    h.run_to_end();
    assert_exactly_once(h.records(), 2);

    let mut h = Harness::start(source(0), 3);
    h.run_to_end();
    assert!(h.records().is_empty());
}

#[test]
fn polls_emit_bounded_batches() {
    let mut h = Harness::start(source(5000).with_batch_size(100), 1);
    assert_eq!(h.poll(0), InputStatus::MoreAvailable);
    assert_eq!(h.records().len(), 100);

    let mut h = Harness::start(source(5000), 1);
    h.poll(0);
    assert_eq!(h.records().len(), 1024);
}

#[test]
fn split_outputs_are_released_when_a_split_ends() {
    let mut h = Harness::start(source(5), 1);
    h.run_to_end();
    let events = h.outputs[0].events();
    assert_eq!(
        events.last(),
        Some(&CollectedEvent::Released("seq-0".into()))
    );
}

#[test]
fn a_split_is_requested_at_start_and_when_the_reader_runs_dry() {
    let ctx = TestReaderContext::new(0, 1);
    let mut reader = source(4).create_reader(ctx.clone()).unwrap();
    reader.start().unwrap();
    assert_eq!(ctx.take_split_requests(), 1);
    let mut out = CollectingOutput::new();
    // Waiting for the answer: no second request.
    assert_eq!(
        reader.poll_next(&mut out).unwrap(),
        InputStatus::NothingAvailable
    );
    assert_eq!(ctx.take_split_requests(), 0);
    reader
        .add_splits(vec![NumberSequenceSplit::new("seq-0", 0, 4)])
        .unwrap();
    assert_eq!(
        reader.poll_next(&mut out).unwrap(),
        InputStatus::MoreAvailable
    );
    assert_eq!(ctx.take_split_requests(), 1);
    assert_eq!(
        reader.poll_next(&mut out).unwrap(),
        InputStatus::NothingAvailable
    );
    reader.notify_no_more_splits();
    assert_eq!(reader.poll_next(&mut out).unwrap(), InputStatus::EndOfInput);
}

#[test]
fn a_reader_with_restored_splits_does_not_request_at_start() {
    let ctx = TestReaderContext::new(0, 1);
    let mut reader = source(4).create_reader(ctx.clone()).unwrap();
    reader
        .add_splits(vec![NumberSequenceSplit::new("seq-0", 2, 4)])
        .unwrap();
    reader.start().unwrap();
    assert_eq!(ctx.take_split_requests(), 0);
}

#[test]
fn snapshot_and_restore_midway_resume_exactly() {
    for (before, after) in [(3, 3), (3, 1), (2, 5)] {
        let count = 50_000;
        let mut h = Harness::start(source(count).with_batch_size(700), before);
        h.run_rounds(7);
        let snapshot = h.snapshot(1);
        let emitted_before = h.records();
        assert!(!emitted_before.is_empty());
        assert!(emitted_before.len() < count as usize);

        // The original job keeps going after the checkpoint and then fails; its later output
        // is discarded. The restored job must produce exactly the rest.
        h.run_rounds(3);
        let mut restored = Harness::restore(source(count).with_batch_size(700), after, &snapshot);
        restored.run_to_end();
        let mut all = emitted_before;
        all.extend(restored.records());
        assert_exactly_once(all, count);
    }
}

#[test]
fn snapshot_before_any_assignment_restores_every_split() {
    let mut h = Harness::start(source(1000), 2);
    // Checkpoint before the split requests reach the enumerator: it still holds both splits.
    let state = h.enumerator.snapshot_state(CheckpointId(1)).unwrap();
    assert_eq!(state.len(), 2);
    let serializer = h.source.enumerator_state_serializer();
    let snapshot = Snapshot {
        enumerator: (serializer.version(), serializer.serialize(&state).unwrap()),
        readers: vec![Vec::new(), Vec::new()],
    };
    let mut restored = Harness::restore(source(1000), 2, &snapshot);
    restored.run_to_end();
    assert_exactly_once(restored.records(), 1000);
}

#[test]
fn splits_of_a_failed_reader_go_back_and_are_read_again() {
    let count = 30_000;
    let mut h = Harness::start(source(count).with_batch_size(500), 3);
    h.run_rounds(4);
    // Reader 1 fails before any checkpoint: its split returns to the enumerator as assigned.
    let assigned: Vec<NumberSequenceSplit> = h
        .record
        .assignments
        .lock()
        .unwrap()
        .iter()
        .filter(|(subtask, _)| *subtask == 1)
        .map(|(_, split)| split.clone())
        .collect();
    assert_eq!(assigned.len(), 1);
    h.outputs[1].take_events();
    h.enumerator.add_splits_back(assigned, 1).unwrap();
    let ctx = TestReaderContext::new(1, 3);
    let mut replacement = h.source.create_reader(ctx.clone()).unwrap();
    replacement.start().unwrap();
    h.readers[1] = replacement;
    h.contexts[1] = ctx;
    h.run_to_end();
    assert_exactly_once(h.records(), count);
}

#[test]
fn records_in_and_pending_records_are_reported() {
    let mut h = Harness::start(source(5000).with_batch_size(1000), 2);
    h.poll(0);
    assert_eq!(h.contexts[0].counter(NUM_RECORDS_IN), 1000);
    assert_eq!(h.contexts[0].gauge(PENDING_RECORDS), 1500);
    h.run_to_end();
    let total: u64 = h.contexts.iter().map(|c| c.counter(NUM_RECORDS_IN)).sum();
    assert_eq!(total, 5000);
    assert_eq!(h.contexts[0].gauge(PENDING_RECORDS), 0);
}

#[test]
fn enumerator_hands_out_one_split_per_request_then_no_more() {
    let mut h = Harness::start(source(9), 3);
    h.enumerator.handle_split_request(2).unwrap();
    h.enumerator.handle_split_request(2).unwrap();
    h.enumerator.handle_split_request(2).unwrap();
    h.enumerator.handle_split_request(2).unwrap();
    let ids: Vec<String> = h
        .record
        .assignments
        .lock()
        .unwrap()
        .iter()
        .map(|(_, s)| s.id.clone())
        .collect();
    assert_eq!(ids, ["seq-0", "seq-1", "seq-2"]);
    assert_eq!(*h.record.no_more.lock().unwrap(), [2]);
    assert_eq!(h.enumerator.pending().count(), 0);
    // Splits put back are handed out again.
    h.enumerator
        .add_splits_back(vec![NumberSequenceSplit::new("seq-1", 5, 6)], 2)
        .unwrap();
    assert_eq!(
        h.enumerator.snapshot_state(CheckpointId(3)).unwrap(),
        [NumberSequenceSplit::new("seq-1", 5, 6)]
    );
}

#[test]
fn invalid_or_duplicate_splits_are_refused() {
    let ctx = TestReaderContext::new(0, 1);
    let mut reader = source(4).create_reader(ctx).unwrap();
    let zero_stride = NumberSequenceSplit::strided("seq-9", 0, 4, 0);
    assert!(reader.add_splits(vec![zero_stride]).is_err());
    reader
        .add_splits(vec![NumberSequenceSplit::new("seq-0", 0, 4)])
        .unwrap();
    let err = reader
        .add_splits(vec![NumberSequenceSplit::new("seq-0", 0, 4)])
        .unwrap_err();
    assert!(err.to_string().contains("assigned twice"), "{err}");
}

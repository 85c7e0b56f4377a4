//! Rate limiting: per second (on tokio's paused clock), per checkpoint, no-op; the wrapper
//! forwards every reader method.

// Test helpers outside #[test] functions may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use common::TestReaderContext;
use futures::task::{noop_waker_ref, waker, ArcWake};
use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::error::Result;
use weir_connector_api::source::{
    CollectingOutput, InputStatus, PausableSourceReader, ReaderOutput, Source, SourceEvent,
    SourceReader, SourceReaderExt,
};
use weir_connector_datagen::source::create_splits;
use weir_connector_datagen::{
    DataGeneratorSource, NumberSequenceSplit, RateLimitedSourceReader, RateLimiterStrategy,
};

type Reader = <DataGeneratorSource<u64> as Source>::Reader;

/// Reader `subtask` of `parallelism` of an unbounded source, holding its split.
fn unbounded_reader(rate: RateLimiterStrategy, subtask: usize, parallelism: usize) -> Reader {
    let source = DataGeneratorSource::new(|n| n, None, rate);
    let ctx = TestReaderContext::new(subtask, parallelism);
    let mut reader = source.create_reader(ctx).unwrap();
    let split = create_splits(None, parallelism).swap_remove(subtask);
    reader.add_splits(vec![split]).unwrap();
    reader.start().unwrap();
    reader
}

/// Drives `reader` for `duration` of (paused) tokio time; checks after every poll that the
/// reader never got ahead of `1 + rate × elapsed` records. Returns the number of records.
async fn drive_for(reader: &mut Reader, duration: Duration, rate: f64) -> usize {
    let mut out = CollectingOutput::new();
    let start = tokio::time::Instant::now();
    let mut emitted = 0usize;
    let _ = tokio::time::timeout(duration, async {
        loop {
            let status = reader.poll_next(&mut out).unwrap();
            emitted += out.take_events().len();
            let allowed = 1.0 + rate * start.elapsed().as_secs_f64();
            assert!(
                emitted as f64 <= allowed + 1e-6,
                "{emitted} records after {:?}",
                start.elapsed()
            );
            match status {
                InputStatus::MoreAvailable => {}
                InputStatus::NothingAvailable => reader.available().await,
                InputStatus::EndOfInput => break,
            }
        }
    })
    .await;
    emitted
}

#[tokio::test(start_paused = true)]
async fn per_second_emits_the_rate_over_virtual_time() {
    let mut reader = unbounded_reader(RateLimiterStrategy::per_second(100.0), 0, 1);
    let n = drive_for(&mut reader, Duration::from_secs(2), 100.0).await;
    assert!((199..=201).contains(&n), "{n} records in 2 s at 100/s");
}

#[tokio::test(start_paused = true)]
async fn per_second_is_divided_by_the_parallelism() {
    let mut reader = unbounded_reader(RateLimiterStrategy::per_second(400.0), 2, 4);
    let n = drive_for(&mut reader, Duration::from_secs(2), 100.0).await;
    assert!(
        (199..=201).contains(&n),
        "{n} records in 2 s at 400/s over 4 readers"
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_consumer_gets_the_accumulated_permits_in_batches() {
    let mut reader = unbounded_reader(RateLimiterStrategy::per_second(10_000.0), 0, 1);
    let mut out = CollectingOutput::new();
    let start = tokio::time::Instant::now();
    let mut batches = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            let status = reader.poll_next(&mut out).unwrap();
            batches.push(out.take_events().len());
            let emitted: usize = batches.iter().sum();
            assert!(emitted as f64 <= 1.0 + 10_000.0 * start.elapsed().as_secs_f64() + 1e-6);
            if status == InputStatus::NothingAvailable {
                // The task is busy elsewhere for 50 ms.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    })
    .await;
    let emitted: usize = batches.iter().sum();
    assert!((10_000..=10_001).contains(&emitted), "{emitted}");
    assert!(batches.contains(&500), "{batches:?}");
}

#[tokio::test(start_paused = true)]
async fn high_rates_are_met() {
    let mut reader = unbounded_reader(RateLimiterStrategy::per_second(50_000.0), 0, 1);
    let n = drive_for(&mut reader, Duration::from_secs(1), 50_000.0).await;
    assert!(
        (49_999..=50_001).contains(&n),
        "{n} records in 1 s at 50000/s"
    );
}

#[tokio::test(start_paused = true)]
async fn a_bounded_rate_limited_source_ends_without_waiting_for_a_permit() {
    let source = DataGeneratorSource::new(|n| n, Some(10), RateLimiterStrategy::per_second(10.0));
    let mut reader = source.create_reader(TestReaderContext::new(0, 1)).unwrap();
    reader
        .add_splits(vec![NumberSequenceSplit::new("seq-0", 0, 10)])
        .unwrap();
    reader.notify_no_more_splits();
    let start = tokio::time::Instant::now();
    let mut out = CollectingOutput::new();
    loop {
        match reader.poll_next(&mut out).unwrap() {
            InputStatus::MoreAvailable => {}
            InputStatus::NothingAvailable => reader.available().await,
            InputStatus::EndOfInput => break,
        }
    }
    assert_eq!(out.records().count(), 10);
    // The first record is free, the other nine take 100 ms each; the end needs no permit.
    assert_eq!(start.elapsed(), Duration::from_millis(900));
}

struct CountingWaker(AtomicUsize);

impl ArcWake for CountingWaker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn per_checkpoint_emits_its_share_between_completed_checkpoints() {
    let source = DataGeneratorSource::new(|n| n, Some(25), RateLimiterStrategy::per_checkpoint(10));
    let mut reader = source.create_reader(TestReaderContext::new(0, 1)).unwrap();
    reader
        .add_splits(vec![NumberSequenceSplit::new("seq-0", 0, 25)])
        .unwrap();
    reader.notify_no_more_splits();
    let mut out = CollectingOutput::new();
    let wakes = Arc::new(CountingWaker(AtomicUsize::new(0)));
    let waker = waker(wakes.clone());
    let mut cx = Context::from_waker(&waker);

    let drain = |reader: &mut Reader, out: &mut CollectingOutput<u64>| loop {
        match reader.poll_next(out).unwrap() {
            InputStatus::MoreAvailable => {}
            status => return status,
        }
    };

    assert_eq!(drain(&mut reader, &mut out), InputStatus::NothingAvailable);
    assert_eq!(out.records().count(), 10);
    assert_eq!(pin!(reader.available()).poll(&mut cx), Poll::Pending);
    // An aborted checkpoint gives nothing.
    reader.notify_checkpoint_aborted(CheckpointId(1)).unwrap();
    assert_eq!(drain(&mut reader, &mut out), InputStatus::NothingAvailable);
    assert_eq!(out.records().count(), 10);
    assert_eq!(wakes.0.load(Ordering::SeqCst), 0);

    reader.notify_checkpoint_complete(CheckpointId(2)).unwrap();
    assert_eq!(
        wakes.0.load(Ordering::SeqCst),
        1,
        "the checkpoint wakes the task"
    );
    assert_eq!(pin!(reader.available()).poll(&mut cx), Poll::Ready(()));
    assert_eq!(drain(&mut reader, &mut out), InputStatus::NothingAvailable);
    assert_eq!(out.records().count(), 20);

    reader.notify_checkpoint_complete(CheckpointId(3)).unwrap();
    assert_eq!(drain(&mut reader, &mut out), InputStatus::EndOfInput);
    let records: Vec<u64> = out.records().map(|(_, r)| *r).collect();
    assert_eq!(records, (0..25).collect::<Vec<_>>());
}

#[test]
fn per_checkpoint_ends_without_another_checkpoint_when_the_input_ends_on_the_limit() {
    let source = DataGeneratorSource::new(|n| n, Some(10), RateLimiterStrategy::per_checkpoint(10));
    let mut reader = source.create_reader(TestReaderContext::new(0, 1)).unwrap();
    reader
        .add_splits(vec![NumberSequenceSplit::new("seq-0", 0, 10)])
        .unwrap();
    reader.notify_no_more_splits();
    let mut out = CollectingOutput::new();
    assert_eq!(
        reader.poll_next(&mut out).unwrap(),
        InputStatus::MoreAvailable
    );
    assert_eq!(out.records().count(), 10);
    assert_eq!(reader.poll_next(&mut out).unwrap(), InputStatus::EndOfInput);
}

#[test]
fn no_op_does_not_limit() {
    let source = DataGeneratorSource::new(|n| n, Some(5000), RateLimiterStrategy::no_op());
    let mut reader = source.create_reader(TestReaderContext::new(0, 1)).unwrap();
    assert!(reader.limiter().is_unlimited());
    reader
        .add_splits(vec![NumberSequenceSplit::new("seq-0", 0, 5000)])
        .unwrap();
    let mut out = CollectingOutput::new();
    for _ in 0..4 {
        assert_eq!(
            reader.poll_next(&mut out).unwrap(),
            InputStatus::MoreAvailable
        );
    }
    assert_eq!(out.records().count(), 4096);
}

#[test]
fn invalid_rates_fail_reader_creation() {
    for rate in [
        RateLimiterStrategy::per_second(0.0),
        RateLimiterStrategy::per_second(f64::NAN),
        RateLimiterStrategy::per_checkpoint(0),
    ] {
        let source = DataGeneratorSource::new(|n| n, None, rate);
        let err = source
            .create_reader(TestReaderContext::new(0, 1))
            .unwrap_err();
        assert!(err.to_string().contains("datagen source options"), "{err}");
    }
}

#[test]
fn waiting_for_a_permit_outside_a_tokio_runtime_does_not_panic() {
    let mut reader = unbounded_reader(RateLimiterStrategy::per_second(1.0), 0, 1);
    let mut out = CollectingOutput::new();
    reader.poll_next(&mut out).unwrap();
    assert_eq!(
        reader.poll_next(&mut out).unwrap(),
        InputStatus::NothingAvailable
    );
    let mut cx = Context::from_waker(noop_waker_ref());
    assert_eq!(reader.poll_available(&mut cx), Poll::Pending);
}

// ------------------------------------------------------------------ forwarding

/// A reader that logs every call and emits `batch` records per poll.
struct RecordingReader {
    log: Arc<Mutex<Vec<String>>>,
    batch: u64,
    next: u64,
}

impl RecordingReader {
    fn new(batch: u64) -> (Self, Arc<Mutex<Vec<String>>>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let reader = RecordingReader {
            log: Arc::clone(&log),
            batch,
            next: 0,
        };
        (reader, log)
    }

    fn record(&self, call: impl Into<String>) {
        self.log.lock().unwrap().push(call.into());
    }
}

#[async_trait::async_trait]
impl SourceReader for RecordingReader {
    type Output = u64;
    type Split = NumberSequenceSplit;

    fn start(&mut self) -> Result<()> {
        self.record("start");
        Ok(())
    }
    fn poll_next<O: ReaderOutput<u64>>(&mut self, output: &mut O) -> Result<InputStatus> {
        self.record("poll_next");
        for _ in 0..self.batch {
            output.collect(self.next);
            self.next += 1;
        }
        Ok(InputStatus::MoreAvailable)
    }
    fn poll_available(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
        self.record("poll_available");
        Poll::Ready(())
    }
    fn snapshot_state(&mut self, checkpoint_id: CheckpointId) -> Result<Vec<NumberSequenceSplit>> {
        self.record(format!("snapshot_state({checkpoint_id})"));
        Ok(vec![NumberSequenceSplit::new("inner", self.next, 100)])
    }
    fn add_splits(&mut self, splits: Vec<NumberSequenceSplit>) -> Result<()> {
        let ids: Vec<String> = splits.into_iter().map(|s| s.id).collect();
        self.record(format!("add_splits({})", ids.join(",")));
        Ok(())
    }
    fn notify_no_more_splits(&mut self) {
        self.record("notify_no_more_splits");
    }
    fn handle_source_event(&mut self, event: SourceEvent) -> Result<()> {
        let text = event.downcast::<&str>().unwrap_or("?");
        self.record(format!("handle_source_event({text})"));
        Ok(())
    }
    fn notify_checkpoint_complete(&mut self, checkpoint_id: CheckpointId) -> Result<()> {
        self.record(format!("notify_checkpoint_complete({checkpoint_id})"));
        Ok(())
    }
    fn notify_checkpoint_aborted(&mut self, checkpoint_id: CheckpointId) -> Result<()> {
        self.record(format!("notify_checkpoint_aborted({checkpoint_id})"));
        Ok(())
    }
    fn as_pausable(&mut self) -> Option<&mut dyn PausableSourceReader> {
        self.record("as_pausable");
        Some(self)
    }
    async fn close(&mut self) -> Result<()> {
        self.record("close");
        Ok(())
    }
}

impl PausableSourceReader for RecordingReader {
    fn pause_or_resume_splits(&mut self, pause: &[String], resume: &[String]) -> Result<()> {
        self.record(format!(
            "pause_or_resume_splits({};{})",
            pause.join(","),
            resume.join(",")
        ));
        Ok(())
    }
}

#[tokio::test]
async fn the_wrapper_forwards_every_method_for_every_strategy() {
    for strategy in [
        RateLimiterStrategy::no_op(),
        RateLimiterStrategy::per_second(1000.0),
        RateLimiterStrategy::per_checkpoint(1000),
    ] {
        let (inner, log) = RecordingReader::new(1);
        let limiter = strategy.create_rate_limiter(0, 1).unwrap();
        let mut reader = RateLimitedSourceReader::new(inner, limiter);
        let mut out = CollectingOutput::new();

        reader.start().unwrap();
        reader
            .add_splits(vec![NumberSequenceSplit::new("s1", 0, 1)])
            .unwrap();
        // Availability first: a fresh limiter has a permit, so the inner reader is asked.
        let mut cx = Context::from_waker(noop_waker_ref());
        assert_eq!(reader.poll_available(&mut cx), Poll::Ready(()));
        reader.poll_next(&mut out).unwrap();
        assert_eq!(out.records().count(), 1);
        let state = reader.snapshot_state(CheckpointId(4)).unwrap();
        assert_eq!(state, [NumberSequenceSplit::new("inner", 1, 100)]);
        reader.notify_no_more_splits();
        reader
            .handle_source_event(SourceEvent::new("hello"))
            .unwrap();
        reader.notify_checkpoint_complete(CheckpointId(4)).unwrap();
        reader.notify_checkpoint_aborted(CheckpointId(5)).unwrap();
        reader
            .as_pausable()
            .expect("the inner reader's capability is forwarded")
            .pause_or_resume_splits(&["s1".into()], &["s2".into()])
            .unwrap();
        reader.close().await.unwrap();

        assert_eq!(
            *log.lock().unwrap(),
            [
                "start",
                "add_splits(s1)",
                "poll_available",
                "poll_next",
                "snapshot_state(4)",
                "notify_no_more_splits",
                "handle_source_event(hello)",
                "notify_checkpoint_complete(4)",
                "notify_checkpoint_aborted(5)",
                "as_pausable",
                "pause_or_resume_splits(s1;s2)",
                "close",
            ],
            "{strategy:?}"
        );
    }
}

#[test]
fn a_reader_without_pause_capability_stays_without_it() {
    struct Plain;
    #[async_trait::async_trait]
    impl SourceReader for Plain {
        type Output = u64;
        type Split = NumberSequenceSplit;
        fn poll_next<O: ReaderOutput<u64>>(&mut self, _output: &mut O) -> Result<InputStatus> {
            Ok(InputStatus::EndOfInput)
        }
        fn poll_available(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
            Poll::Ready(())
        }
        fn snapshot_state(&mut self, _id: CheckpointId) -> Result<Vec<NumberSequenceSplit>> {
            Ok(Vec::new())
        }
        fn add_splits(&mut self, _splits: Vec<NumberSequenceSplit>) -> Result<()> {
            Ok(())
        }
        fn notify_no_more_splits(&mut self) {}
    }
    let limiter = RateLimiterStrategy::per_second(5.0)
        .create_rate_limiter(0, 1)
        .unwrap();
    let mut reader = RateLimitedSourceReader::new(Plain, limiter);
    assert!(reader.as_pausable().is_none());
}

#[test]
fn a_batching_reader_overshoots_by_less_than_a_batch_and_pays_it_back() {
    let (inner, _log) = RecordingReader::new(10);
    let limiter = RateLimiterStrategy::per_checkpoint(25)
        .create_rate_limiter(0, 1)
        .unwrap();
    let mut reader = RateLimitedSourceReader::new(inner, limiter);
    let mut out = CollectingOutput::new();
    let mut cycle = |reader: &mut RateLimitedSourceReader<RecordingReader>| {
        out.take_events();
        while reader.poll_next(&mut out).unwrap() == InputStatus::MoreAvailable {}
        // Without permits the inner reader is not polled at all.
        assert_eq!(
            reader.poll_next(&mut out).unwrap(),
            InputStatus::NothingAvailable
        );
        out.records().count()
    };
    // 25 permits: polls of 10, 10 and 10 (5 permits were left before the last one).
    assert_eq!(cycle(&mut reader), 30);
    reader.notify_checkpoint_complete(CheckpointId(1)).unwrap();
    // The debt of 5 is paid first: 20 permits, two polls.
    assert_eq!(cycle(&mut reader), 20);
    reader.notify_checkpoint_complete(CheckpointId(2)).unwrap();
    assert_eq!(cycle(&mut reader), 30);
}

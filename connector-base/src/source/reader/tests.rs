//! Tests of the reader base over an in-memory fake split reader.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use super::*;
use weir_connector_api::metrics::{InMemoryMetricGroup, MetricGroup, MetricValue};
use weir_connector_api::source::{CollectedEvent, CollectingOutput, SourceEvent, SourceReaderExt};

#[derive(Debug, Clone, PartialEq)]
struct FakeSplit {
    id: String,
    next: u64,
    end: u64,
}

fn split(id: &str, start: u64, end: u64) -> FakeSplit {
    FakeSplit {
        id: id.into(),
        next: start,
        end,
    }
}

impl SourceSplit for FakeSplit {
    fn split_id(&self) -> &str {
        &self.id
    }
}

/// A fake split reader over number ranges: each fetch returns up to `batch` numbers per
/// unpaused split, and can be told to fail after a number of records.
struct FakeSplitReader {
    splits: Vec<FakeSplit>,
    paused: Vec<String>,
    batch: u64,
    fail_after: Option<u64>,
    fetched: u64,
    closed: Arc<AtomicBool>,
}

impl FakeSplitReader {
    fn new(batch: u64) -> Self {
        FakeSplitReader {
            splits: Vec::new(),
            paused: Vec::new(),
            batch,
            fail_after: None,
            fetched: 0,
            closed: Arc::new(AtomicBool::new(false)),
        }
    }
}

#[async_trait::async_trait]
impl SplitReader for FakeSplitReader {
    type Split = FakeSplit;
    type Records = RecordsBySplits<u64>;

    async fn fetch(&mut self) -> Result<RecordsBySplits<u64>> {
        if let Some(limit) = self.fail_after {
            if self.fetched >= limit {
                return Err(ConnectorError::fatal(
                    "fetching fake split",
                    "the fake server went away",
                ));
            }
        }
        tokio::task::yield_now().await;
        let mut batch = RecordsBySplits::new();
        for s in &mut self.splits {
            if self.paused.contains(&s.id) {
                continue;
            }
            let end = s.end.min(s.next + self.batch);
            batch.add_all(s.id.clone(), (s.next..end).collect());
            self.fetched += end - s.next;
            s.next = end;
            if s.next == s.end {
                batch.add_finished_split(s.id.clone());
            }
        }
        self.splits.retain(|s| s.next < s.end);
        Ok(batch)
    }

    fn handle_splits_change(&mut self, change: SplitsChange<FakeSplit>) -> Result<()> {
        match change {
            SplitsChange::Add(new) => {
                // An empty split finishes right away, reported by the next fetch.
                self.splits.extend(new);
            }
            SplitsChange::Remove(ids) => self.splits.retain(|s| !ids.contains(&s.id)),
        }
        Ok(())
    }

    async fn close(&mut self) -> Result<()> {
        self.closed.store(true, Ordering::SeqCst);
        Ok(())
    }
}

impl PausableSplitReader for FakeSplitReader {
    fn pause_or_resume_splits(&mut self, pause: &[String], resume: &[String]) -> Result<()> {
        self.paused.extend(pause.iter().cloned());
        self.paused.retain(|p| !resume.contains(p));
        Ok(())
    }
}

struct Emit;
impl RecordEmitter<u64, u64, FakeSplit> for Emit {
    fn emit_record<O: SourceOutput<u64>>(
        &mut self,
        n: u64,
        output: &mut O,
        state: &mut FakeSplit,
    ) -> Result<()> {
        output.collect(n);
        state.next = n + 1;
        Ok(())
    }
}

struct TestContext {
    metrics: Arc<InMemoryMetricGroup>,
}

impl SourceReaderContext for TestContext {
    fn subtask_index(&self) -> usize {
        0
    }
    fn parallelism(&self) -> usize {
        1
    }
    fn metric_group(&self) -> Arc<dyn MetricGroup> {
        self.metrics.clone()
    }
    fn send_split_request(&self) -> Result<()> {
        Ok(())
    }
    fn send_source_event(&self, _event: SourceEvent) -> Result<()> {
        Ok(())
    }
    fn spawn(&self, _name: &str, task: BoxFuture<'static, ()>) {
        tokio::spawn(task);
    }
}

type Reader = SourceReaderBase<FakeSplitReader, Emit, FakeSplit, u64>;

fn context() -> (Arc<dyn SourceReaderContext>, Arc<InMemoryMetricGroup>) {
    let metrics = Arc::new(InMemoryMetricGroup::new("test"));
    (
        Arc::new(TestContext {
            metrics: Arc::clone(&metrics),
        }),
        metrics,
    )
}

/// Polls until end of input (or `stop` says so), waiting on availability in between.
async fn drain_until(
    reader: &mut Reader,
    out: &mut CollectingOutput<u64>,
    mut stop: impl FnMut(&CollectingOutput<u64>) -> bool,
) -> Result<InputStatus> {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if stop(out) {
                return Ok(InputStatus::MoreAvailable);
            }
            match reader.poll_next(out)? {
                InputStatus::MoreAvailable => {}
                InputStatus::NothingAvailable => {
                    // Bounded wait: availability may legitimately never fire (e.g. all splits
                    // finished but no-more-splits not yet signalled).
                    let _ =
                        tokio::time::timeout(Duration::from_millis(50), reader.available()).await;
                    if stop(out) {
                        return Ok(InputStatus::NothingAvailable);
                    }
                }
                InputStatus::EndOfInput => return Ok(InputStatus::EndOfInput),
            }
        }
    })
    .await
    .map_err(|_| ConnectorError::Contract("test timed out".into()))?
}

async fn drain(reader: &mut Reader, out: &mut CollectingOutput<u64>) -> Result<InputStatus> {
    drain_until(reader, out, |_| false).await
}

fn records_of(out: &CollectingOutput<u64>, split: &str) -> Vec<u64> {
    out.records()
        .filter(|(s, _)| *s == Some(split))
        .map(|(_, r)| *r)
        .collect()
}

fn counter(metrics: &InMemoryMetricGroup, name: &str) -> u64 {
    match metrics.value(&format!("test.{name}")) {
        Some(MetricValue::Counter(n)) => n,
        other => panic!("no counter {name}: {other:?}"),
    }
}

#[tokio::test]
async fn single_fetcher_reads_every_split_in_order_then_ends() -> Result<()> {
    let (ctx, metrics) = context();
    let mut reader: Reader = SourceReaderBase::single_fetcher(ctx, FakeSplitReader::new(7), Emit);
    reader.add_splits(vec![
        split("a", 0, 100),
        split("b", 1000, 1050),
        split("empty", 5, 5),
    ])?;
    reader.notify_no_more_splits();
    let mut out = CollectingOutput::new();
    assert_eq!(drain(&mut reader, &mut out).await?, InputStatus::EndOfInput);
    assert_eq!(records_of(&out, "a"), (0..100).collect::<Vec<_>>());
    assert_eq!(records_of(&out, "b"), (1000..1050).collect::<Vec<_>>());
    assert_eq!(out.records().count(), 150);
    assert_eq!(counter(&metrics, "numRecordsIn"), 150);
    let released: Vec<&CollectedEvent<u64>> = out
        .events()
        .iter()
        .filter(|e| matches!(e, CollectedEvent::Released(_)))
        .collect();
    assert_eq!(
        released.len(),
        2,
        "a and b release their outputs; empty never had one"
    );
    assert!(reader.snapshot_state(CheckpointId(1))?.is_empty());
    reader.close().await
}

#[tokio::test]
async fn fetcher_per_split_reads_every_split() -> Result<()> {
    let (ctx, _) = context();
    let mut reader: Reader =
        SourceReaderBase::fetcher_per_split(ctx, || Ok(FakeSplitReader::new(3)), Emit);
    reader.add_splits(vec![split("a", 0, 20)])?;
    reader.add_splits(vec![split("b", 50, 60), split("c", 70, 71)])?;
    reader.notify_no_more_splits();
    let mut out = CollectingOutput::new();
    assert_eq!(drain(&mut reader, &mut out).await?, InputStatus::EndOfInput);
    assert_eq!(records_of(&out, "a"), (0..20).collect::<Vec<_>>());
    assert_eq!(records_of(&out, "b"), (50..60).collect::<Vec<_>>());
    assert_eq!(records_of(&out, "c"), vec![70]);
    reader.close().await
}

#[tokio::test]
async fn snapshot_holds_progress_of_unfinished_splits() -> Result<()> {
    let (ctx, _) = context();
    let mut reader: Reader = SourceReaderBase::single_fetcher(ctx, FakeSplitReader::new(5), Emit)
        .with_max_records_per_poll(4);
    reader.add_splits(vec![split("a", 0, 1000)])?;
    let mut out = CollectingOutput::new();
    drain_until(&mut reader, &mut out, |o| o.records().count() >= 12).await?;
    let emitted = out.records().count() as u64;
    let snapshot = reader.snapshot_state(CheckpointId(3))?;
    assert_eq!(snapshot, vec![split("a", emitted, 1000)]);
    // Restoring from the snapshot continues exactly after the last emitted record.
    let (ctx2, _) = context();
    let mut restored: Reader =
        SourceReaderBase::single_fetcher(ctx2, FakeSplitReader::new(50), Emit);
    restored.add_splits(snapshot)?;
    restored.notify_no_more_splits();
    let mut rest = CollectingOutput::new();
    assert_eq!(
        drain(&mut restored, &mut rest).await?,
        InputStatus::EndOfInput
    );
    let mut all = records_of(&out, "a");
    all.extend(records_of(&rest, "a"));
    assert_eq!(all, (0..1000).collect::<Vec<_>>());
    reader.close().await?;
    restored.close().await
}

#[tokio::test]
async fn fetch_errors_surface_on_the_reader() -> Result<()> {
    let (ctx, _) = context();
    let mut fake = FakeSplitReader::new(10);
    fake.fail_after = Some(30);
    let mut reader: Reader = SourceReaderBase::single_fetcher(ctx, fake, Emit);
    reader.add_splits(vec![split("a", 0, 1000)])?;
    reader.notify_no_more_splits();
    let mut out = CollectingOutput::new();
    let error = drain(&mut reader, &mut out)
        .await
        .expect_err("the fetch error must reach poll_next");
    assert!(
        error.to_string().contains("the fake server went away"),
        "{error}"
    );
    assert_eq!(records_of(&out, "a"), (0..30).collect::<Vec<_>>());
    Ok(())
}

#[tokio::test]
async fn end_of_input_only_after_no_more_splits() -> Result<()> {
    let (ctx, _) = context();
    let mut reader: Reader = SourceReaderBase::single_fetcher(ctx, FakeSplitReader::new(10), Emit);
    reader.add_splits(vec![split("a", 0, 10)])?;
    let mut out = CollectingOutput::new();
    let status = drain_until(&mut reader, &mut out, |o| o.records().count() == 10).await?;
    assert_ne!(status, InputStatus::EndOfInput);
    // The split finished, but more splits may still come.
    for _ in 0..5 {
        let status = reader.poll_next(&mut out)?;
        assert_eq!(status, InputStatus::NothingAvailable);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    reader.notify_no_more_splits();
    assert_eq!(reader.poll_next(&mut out)?, InputStatus::EndOfInput);
    reader.close().await
}

#[tokio::test]
async fn record_evaluator_ends_only_its_split_and_drops_the_marker() -> Result<()> {
    let (ctx, _) = context();
    let mut reader: Reader = SourceReaderBase::single_fetcher(ctx, FakeSplitReader::new(8), Emit)
        .with_record_evaluator(|n: &u64| *n == 42);
    reader.add_splits(vec![split("a", 0, 100), split("b", 1000, 1100)])?;
    reader.notify_no_more_splits();
    let mut out = CollectingOutput::new();
    assert_eq!(drain(&mut reader, &mut out).await?, InputStatus::EndOfInput);
    assert_eq!(records_of(&out, "a"), (0..42).collect::<Vec<_>>());
    assert_eq!(records_of(&out, "b"), (1000..1100).collect::<Vec<_>>());
    reader.close().await
}

#[tokio::test]
async fn split_finished_hook_sees_final_states() -> Result<()> {
    let (ctx, _) = context();
    let finished = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&finished);
    let mut reader: Reader = SourceReaderBase::single_fetcher(ctx, FakeSplitReader::new(8), Emit)
        .with_split_finished_hook(move |states| {
            seen.lock()
                .map_err(|_| ConnectorError::Contract("poisoned".into()))?
                .extend(states);
            Ok(())
        });
    reader.add_splits(vec![split("a", 0, 10)])?;
    reader.notify_no_more_splits();
    let mut out = CollectingOutput::new();
    drain(&mut reader, &mut out).await?;
    let finished = finished
        .lock()
        .map_err(|_| ConnectorError::Contract("poisoned".into()))?;
    assert_eq!(
        finished.as_slice(),
        &[("a".to_string(), split("a", 10, 10))]
    );
    Ok(())
}

#[tokio::test]
async fn paused_split_stops_and_resumes_in_order() -> Result<()> {
    let (ctx, _) = context();
    let mut reader: Reader =
        SourceReaderBase::single_fetcher(ctx, FakeSplitReader::new(10), Emit).with_split_pausing();
    reader.add_splits(vec![split("a", 0, 100_000), split("b", 0, 200)])?;
    reader.notify_no_more_splits();
    reader
        .as_pausable()
        .ok_or_else(|| ConnectorError::Contract("declared pausable".into()))?
        .pause_or_resume_splits(&["a".into()], &[])?;
    let mut out = CollectingOutput::new();
    drain_until(&mut reader, &mut out, |o| records_of(o, "b").len() == 200).await?;
    let a_while_paused = records_of(&out, "a").len();
    // Only batches fetched before the pause took effect may have arrived.
    assert!(
        a_while_paused <= 30,
        "split a kept flowing while paused: {a_while_paused}"
    );
    reader
        .as_pausable()
        .ok_or_else(|| ConnectorError::Contract("declared pausable".into()))?
        .pause_or_resume_splits(&[], &["a".into()])?;
    assert_eq!(drain(&mut reader, &mut out).await?, InputStatus::EndOfInput);
    assert_eq!(records_of(&out, "a"), (0..100_000).collect::<Vec<_>>());
    reader.close().await
}

#[tokio::test]
async fn pausing_is_a_declared_capability() -> Result<()> {
    let (ctx, _) = context();
    let mut reader: Reader = SourceReaderBase::single_fetcher(ctx, FakeSplitReader::new(10), Emit);
    assert!(reader.as_pausable().is_none());
    Ok(())
}

#[tokio::test]
async fn close_stops_the_fetcher_and_closes_its_reader() -> Result<()> {
    let (ctx, _) = context();
    let fake = FakeSplitReader::new(1);
    let closed = Arc::clone(&fake.closed);
    let mut reader: Reader = SourceReaderBase::single_fetcher(ctx, fake, Emit);
    reader.add_splits(vec![split("a", 0, u64::MAX)])?;
    let mut out = CollectingOutput::new();
    drain_until(&mut reader, &mut out, |o| o.records().count() > 20).await?;
    reader.close().await?;
    assert!(closed.load(Ordering::SeqCst));
    Ok(())
}

#[tokio::test]
async fn adding_a_split_twice_is_an_error() -> Result<()> {
    let (ctx, _) = context();
    let mut reader: Reader = SourceReaderBase::single_fetcher(ctx, FakeSplitReader::new(1), Emit);
    reader.add_splits(vec![split("a", 0, 10)])?;
    let err = reader
        .add_splits(vec![split("a", 0, 10)])
        .expect_err("duplicate split");
    assert!(matches!(err, ConnectorError::Contract(_)), "{err}");
    reader.close().await
}

#[tokio::test]
async fn splits_fetched_by_many_readers_count_once() -> Result<()> {
    // Fetcher-per-split with many splits: every split's records arrive exactly once.
    let (ctx, metrics) = context();
    let created = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&created);
    let mut reader: Reader = SourceReaderBase::fetcher_per_split(
        ctx,
        move || {
            c.fetch_add(1, Ordering::SeqCst);
            Ok(FakeSplitReader::new(4))
        },
        Emit,
    );
    let splits: Vec<FakeSplit> = (0..16)
        .map(|i| split(&format!("s{i}"), i * 1000, i * 1000 + 37))
        .collect();
    reader.add_splits(splits)?;
    reader.notify_no_more_splits();
    let mut out = CollectingOutput::new();
    assert_eq!(drain(&mut reader, &mut out).await?, InputStatus::EndOfInput);
    assert_eq!(created.load(Ordering::SeqCst), 16);
    for i in 0..16 {
        assert_eq!(
            records_of(&out, &format!("s{i}")),
            (i * 1000..i * 1000 + 37).collect::<Vec<_>>()
        );
    }
    assert_eq!(counter(&metrics, "numRecordsIn"), 16 * 37);
    reader.close().await
}

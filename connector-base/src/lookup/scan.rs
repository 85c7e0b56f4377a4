//! [`read_bounded`]: runs a bounded FLIP-27 source to its end in-process (its enumerator and
//! readers, no job), handing every record to a closure. Full caching loads its table with it
//! (FLIP-221 reuses the scan source of a table for its lookups).

use std::collections::VecDeque;
use std::future::poll_fn;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::metrics::MetricGroup;
use weir_connector_api::source::{
    Boundedness, InputStatus, ReaderOutput, Source, SourceEvent, SourceOutput, SourceReader,
    SourceReaderContext, SplitEnumerator, SplitEnumeratorContext, SplitOutputId, SplitsAssignment,
};
use weir_connector_api::watermark::Watermark;

/// Polls of one reader in a row before the driver yields to other tasks.
const POLLS_BEFORE_YIELD: u32 = 64;

/// What the enumerator's and readers' contexts ask of the driver; applied between calls, as
/// the runtime's coordinator does.
enum Message<Sp, R> {
    Assign(SplitsAssignment<Sp>),
    NoMoreSplits(usize),
    EventToReader(usize, SourceEvent),
    AsyncResult(R),
    SplitRequest(usize),
    EventToEnumerator(usize, SourceEvent),
}

/// Background tasks started for the scan (async enumerator calls, reader fetchers); aborted
/// when the scan ends.
#[derive(Default)]
struct Tasks(Mutex<Vec<JoinHandle<()>>>);

impl Tasks {
    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task);
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(handle);
    }

    fn abort_all(&self) {
        for handle in self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            handle.abort();
        }
    }
}

struct EnumeratorCx<Sp, R> {
    tx: mpsc::UnboundedSender<Message<Sp, R>>,
    readers: usize,
    metrics: Arc<dyn MetricGroup>,
    tasks: Arc<Tasks>,
}

impl<Sp, R> EnumeratorCx<Sp, R> {
    fn send(&self, message: Message<Sp, R>) -> Result<()> {
        self.tx
            .send(message)
            .map_err(|_| ConnectorError::Closed("the lookup table's scan".to_owned()))
    }
}

impl<Sp, R> SplitEnumeratorContext<Sp, R> for EnumeratorCx<Sp, R>
where
    Sp: weir_connector_api::source::SourceSplit,
    R: Send + 'static,
{
    fn metric_group(&self) -> Arc<dyn MetricGroup> {
        Arc::clone(&self.metrics)
    }
    fn current_parallelism(&self) -> usize {
        self.readers
    }
    fn registered_readers(&self) -> Vec<usize> {
        (0..self.readers).collect()
    }
    fn assign_splits(&self, assignment: SplitsAssignment<Sp>) -> Result<()> {
        if let Some(subtask) = assignment.assignment.keys().find(|s| **s >= self.readers) {
            return Err(ConnectorError::Contract(format!(
                "splits assigned to reader {subtask} of a scan with {} readers",
                self.readers
            )));
        }
        self.send(Message::Assign(assignment))
    }
    fn signal_no_more_splits(&self, subtask: usize) -> Result<()> {
        self.send(Message::NoMoreSplits(subtask))
    }
    fn send_event_to_reader(&self, subtask: usize, event: SourceEvent) -> Result<()> {
        self.send(Message::EventToReader(subtask, event))
    }
    fn call_async(&self, task: BoxFuture<'static, R>) {
        let tx = self.tx.clone();
        self.tasks.spawn(async move {
            let _ = tx.send(Message::AsyncResult(task.await));
        });
    }
    fn call_async_periodic(
        &self,
        mut task: Box<dyn FnMut() -> BoxFuture<'static, R> + Send>,
        initial_delay: Duration,
        period: Duration,
    ) {
        let tx = self.tx.clone();
        self.tasks.spawn(async move {
            tokio::time::sleep(initial_delay).await;
            loop {
                if tx.send(Message::AsyncResult(task().await)).is_err() {
                    return;
                }
                tokio::time::sleep(period).await;
            }
        });
    }
}

struct ReaderCx<Sp, R> {
    subtask: usize,
    readers: usize,
    tx: mpsc::UnboundedSender<Message<Sp, R>>,
    metrics: Arc<dyn MetricGroup>,
    tasks: Arc<Tasks>,
}

impl<Sp: Send + 'static, R: Send + 'static> SourceReaderContext for ReaderCx<Sp, R> {
    fn subtask_index(&self) -> usize {
        self.subtask
    }
    fn parallelism(&self) -> usize {
        self.readers
    }
    fn metric_group(&self) -> Arc<dyn MetricGroup> {
        Arc::clone(&self.metrics)
    }
    fn send_split_request(&self) -> Result<()> {
        self.tx
            .send(Message::SplitRequest(self.subtask))
            .map_err(|_| ConnectorError::Closed("the lookup table's scan".to_owned()))
    }
    fn send_source_event(&self, event: SourceEvent) -> Result<()> {
        self.tx
            .send(Message::EventToEnumerator(self.subtask, event))
            .map_err(|_| ConnectorError::Closed("the lookup table's scan".to_owned()))
    }
    fn spawn(&self, _name: &str, task: BoxFuture<'static, ()>) {
        self.tasks.spawn(task);
    }
}

/// Hands every record to a closure; watermarks and idleness mean nothing to a table load.
struct Collect<F>(F);

impl<T, F: FnMut(T)> SourceOutput<T> for Collect<F> {
    fn collect(&mut self, record: T) {
        (self.0)(record);
    }
    fn collect_with_timestamp(&mut self, record: T, _timestamp: i64) {
        (self.0)(record);
    }
    fn emit_watermark(&mut self, _watermark: Watermark) {}
    fn mark_idle(&mut self) {}
    fn mark_active(&mut self) {}
}

impl<T, F: FnMut(T)> ReaderOutput<T> for Collect<F> {
    fn create_split_output(&mut self, _split_id: &str) -> SplitOutputId {
        SplitOutputId(0)
    }
    fn collect_for_split(&mut self, _split: SplitOutputId, record: T, _timestamp: Option<i64>) {
        (self.0)(record);
    }
    fn emit_split_watermark(&mut self, _split: SplitOutputId, _watermark: Watermark) {}
    fn mark_split_idle(&mut self, _split: SplitOutputId) {}
    fn mark_split_active(&mut self, _split: SplitOutputId) {}
    fn release_split_output(&mut self, _split: SplitOutputId) {}
}

/// A reader of the scan and whether it has ended.
struct Reader<R> {
    reader: R,
    status: InputStatus,
}

/// Reads a bounded `source` to its end with `readers` readers, in-process: runs its enumerator
/// and readers as the runtime would (split requests, assignments, async enumerator calls,
/// source events) and hands every record to `collect`. Returns the number of records.
///
/// Must run inside a tokio runtime (async enumerator calls and reader fetchers are spawned on
/// it and aborted when the scan ends). An unbounded source is refused; any error of the
/// enumerator or a reader ends the scan with that error.
///
/// ```
/// use std::num::NonZeroUsize;
/// use std::sync::Arc;
/// use weir_connector_api::metrics::InMemoryMetricGroup;
/// use weir_connector_base::lookup::read_bounded;
/// use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> weir_connector_api::error::Result<()> {
/// let source = DataGeneratorSource::new(|n| n * 10, Some(1_000), RateLimiterStrategy::no_op());
/// let mut sum = 0;
/// let records = read_bounded(
///     &source,
///     NonZeroUsize::new(2).unwrap_or(NonZeroUsize::MIN),
///     Arc::new(InMemoryMetricGroup::new("scan")),
///     |n| sum += n,
/// )
/// .await?;
/// assert_eq!((records, sum), (1_000, 10 * 999 * 1_000 / 2));
/// # Ok(())
/// # }
/// ```
pub async fn read_bounded<S: Source>(
    source: &S,
    readers: NonZeroUsize,
    metrics: Arc<dyn MetricGroup>,
    collect: impl FnMut(S::Output),
) -> Result<u64> {
    if source.boundedness() != Boundedness::Bounded {
        return Err(ConnectorError::Contract(
            "a lookup table is loaded from a bounded scan, and this source is unbounded \
             (configure the source to end, e.g. without continuous discovery)"
                .to_owned(),
        ));
    }
    let tasks = Arc::new(Tasks::default());
    let result = scan(source, readers.get(), metrics, collect, &tasks).await;
    tasks.abort_all();
    result
}

type MessageOf<S> =
    Message<<S as Source>::Split, <<S as Source>::Enumerator as SplitEnumerator>::AsyncResult>;

async fn scan<S: Source>(
    source: &S,
    reader_count: usize,
    metrics: Arc<dyn MetricGroup>,
    mut collect: impl FnMut(S::Output),
    tasks: &Arc<Tasks>,
) -> Result<u64> {
    let (tx, mut rx) = mpsc::unbounded_channel::<MessageOf<S>>();
    let mut enumerator = source.create_enumerator(Box::new(EnumeratorCx {
        tx: tx.clone(),
        readers: reader_count,
        metrics: Arc::clone(&metrics),
        tasks: Arc::clone(tasks),
    }))?;
    enumerator.start()?;
    let mut readers = Vec::with_capacity(reader_count);
    for subtask in 0..reader_count {
        let reader = source.create_reader(Arc::new(ReaderCx {
            subtask,
            readers: reader_count,
            tx: tx.clone(),
            metrics: Arc::clone(&metrics),
            tasks: Arc::clone(tasks),
        }))?;
        readers.push(Reader {
            reader,
            status: InputStatus::MoreAvailable,
        });
        enumerator.add_reader(subtask)?;
    }
    for reader in &mut readers {
        reader.reader.start()?;
    }
    drop(tx);
    let mut records = 0_u64;
    let mut output = Collect(|record| {
        records += 1;
        collect(record);
    });
    let mut pending: VecDeque<MessageOf<S>> = VecDeque::new();
    let result = loop {
        while let Ok(message) = rx.try_recv() {
            pending.push_back(message);
        }
        for message in pending.drain(..) {
            apply::<S>(message, &mut enumerator, &mut readers)?;
        }
        for reader in &mut readers {
            let mut polls = 0;
            while reader.status == InputStatus::MoreAvailable {
                reader.status = reader.reader.poll_next(&mut output)?;
                polls += 1;
                if polls % POLLS_BEFORE_YIELD == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }
        if readers.iter().all(|r| r.status == InputStatus::EndOfInput) {
            break Ok(());
        }
        // Wait for a message or for any waiting reader to have data.
        let readers_ready = poll_fn(|cx| {
            let mut ready = false;
            for reader in &mut readers {
                if reader.status == InputStatus::NothingAvailable
                    && reader.reader.poll_available(cx).is_ready()
                {
                    reader.status = InputStatus::MoreAvailable;
                    ready = true;
                }
            }
            if ready {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        });
        tokio::select! {
            message = rx.recv() => match message {
                Some(message) => pending.push_back(message),
                // Every context is gone, so nothing can wake a waiting reader.
                None => break Err(ConnectorError::Contract(
                    "the scan's readers wait for data, but nothing can give them any".to_owned(),
                )),
            },
            () = readers_ready => {}
        }
    };
    for reader in &mut readers {
        if let Err(error) = reader.reader.close().await {
            tracing::debug!("closing a lookup scan reader: {error}");
        }
    }
    if let Err(error) = enumerator.close() {
        tracing::debug!("closing a lookup scan enumerator: {error}");
    }
    result.map(|()| records)
}

fn apply<S: Source>(
    message: MessageOf<S>,
    enumerator: &mut S::Enumerator,
    readers: &mut [Reader<S::Reader>],
) -> Result<()> {
    match message {
        Message::Assign(assignment) => {
            for (subtask, splits) in assignment.assignment {
                let target = reader_mut(readers, subtask)?;
                target.reader.add_splits(splits)?;
                wake(target);
            }
        }
        Message::NoMoreSplits(subtask) => {
            let target = reader_mut(readers, subtask)?;
            target.reader.notify_no_more_splits();
            wake(target);
        }
        Message::EventToReader(subtask, event) => {
            let target = reader_mut(readers, subtask)?;
            target.reader.handle_source_event(event)?;
            wake(target);
        }
        Message::AsyncResult(result) => enumerator.handle_async_result(result)?,
        Message::SplitRequest(subtask) => enumerator.handle_split_request(subtask)?,
        Message::EventToEnumerator(subtask, event) => {
            enumerator.handle_source_event(subtask, event)?;
        }
    }
    Ok(())
}

/// A reader that got splits or an event is polled again (unless it ended).
fn wake<R>(reader: &mut Reader<R>) {
    if reader.status == InputStatus::NothingAvailable {
        reader.status = InputStatus::MoreAvailable;
    }
}

fn reader_mut<R>(readers: &mut [Reader<R>], subtask: usize) -> Result<&mut Reader<R>> {
    readers
        .get_mut(subtask)
        .ok_or_else(|| ConnectorError::Contract(format!("no reader {subtask} in the scan")))
}

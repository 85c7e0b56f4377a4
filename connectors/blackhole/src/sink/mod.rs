//! [`BlackholeSink`] and its [`BlackholeWriter`].

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use weir_connector_api::config::ConfigErrors;
use weir_connector_api::error::Result;
use weir_connector_api::metrics::{Counter, SinkWriterMetrics, NUM_RECORDS_IN};
use weir_connector_api::sink::{
    FlushMode, InitContext, Sink, SinkCapabilities, SinkWriter, WriteContext,
};
use weir_connector_api::watermark::Watermark;

/// A writer publishes its count to the shared counter at least every this many records.
pub const PUBLISH_INTERVAL: u64 = 1024;

/// How many rows a record stands for ([`BlackholeSink::of_rows`]).
pub type RowsOf<T> = fn(&T) -> u64;

/// A sink that discards every record and counts them: for benchmarks and tests.
///
/// Stateless, without committer: it declares no capability. Every writer reports
/// `numRecordsSend` in its metric group and adds to one counter shared by the sink and all of its
/// clones and writers ([`counter`](Self::counter)).
///
/// The counter is exact whenever the writers are between batches (the runtime calls
/// [`SinkWriter::poll_ready`] before each batch), after every flush, and after a writer is closed
/// or dropped. Within a batch it trails by fewer than [`PUBLISH_INTERVAL`] records per writer,
/// so that parallel writers do not contend on one atomic for every record.
pub struct BlackholeSink<T> {
    counter: Arc<AtomicU64>,
    /// How many rows a record stands for (`None`: one).
    rows: Option<RowsOf<T>>,
    _records: PhantomData<fn(T)>,
}

impl<T> BlackholeSink<T> {
    /// A sink with a new counter at zero.
    pub fn new() -> Self {
        BlackholeSink {
            counter: Arc::new(AtomicU64::new(0)),
            rows: None,
            _records: PhantomData,
        }
    }

    /// A sink of records that each stand for `rows(record)` rows (e.g. columnar chunks): the
    /// counter, `numRecordsSend` and `numRecordsIn` count rows.
    pub fn of_rows(rows: fn(&T) -> u64) -> Self {
        BlackholeSink {
            rows: Some(rows),
            ..Self::new()
        }
    }

    /// A sink configured by pipeline-file options: there are none, so any key is an error.
    pub fn from_options(options: &BTreeMap<String, String>) -> Result<Self, ConfigErrors> {
        crate::config::options().validate(options)?;
        Ok(Self::new())
    }

    /// The shared count of discarded records (see the type docs for when it is exact).
    pub fn counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.counter)
    }

    /// The current value of [`counter`](Self::counter).
    pub fn count(&self) -> u64 {
        self.counter.load(Ordering::Relaxed)
    }
}

impl<T> Default for BlackholeSink<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for BlackholeSink<T> {
    /// A handle to the same sink: clones share the counter.
    fn clone(&self) -> Self {
        BlackholeSink {
            counter: Arc::clone(&self.counter),
            rows: self.rows,
            _records: PhantomData,
        }
    }
}

impl<T> fmt::Debug for BlackholeSink<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlackholeSink")
            .field("count", &self.count())
            .finish()
    }
}

impl<T: Send + 'static> Sink<T> for BlackholeSink<T> {
    type Writer = BlackholeWriter<T>;

    fn create_writer(&self, ctx: &dyn InitContext) -> Result<BlackholeWriter<T>> {
        let group = ctx.metric_group();
        Ok(BlackholeWriter {
            metrics: SinkWriterMetrics::new(&*group),
            counter: Arc::clone(&self.counter),
            unpublished: 0,
            rows: self.rows.map(|rows| (rows, group.counter(NUM_RECORDS_IN))),
            _records: PhantomData,
        })
    }

    fn capabilities(self: Arc<Self>) -> SinkCapabilities<T, BlackholeWriter<T>> {
        SinkCapabilities::none()
    }
}

/// The writer of a [`BlackholeSink`]: drops each record and counts it, without allocating or
/// locking.
pub struct BlackholeWriter<T> {
    metrics: SinkWriterMetrics,
    counter: Arc<AtomicU64>,
    /// Records discarded but not yet added to the metric and the shared counter.
    unpublished: u64,
    /// For records of several rows: their rows, and the operator's `numRecordsIn` (the runtime
    /// counts one per record, the writer adds the other rows).
    rows: Option<(RowsOf<T>, Counter)>,
    _records: PhantomData<fn(T)>,
}

impl<T> BlackholeWriter<T> {
    /// Adds the records counted since the last publication to `numRecordsSend` and the shared
    /// counter.
    fn publish(&mut self) {
        if self.unpublished > 0 {
            self.metrics.add_records_send(self.unpublished);
            self.counter.fetch_add(self.unpublished, Ordering::Relaxed);
            self.unpublished = 0;
        }
    }

    /// Records discarded by this writer and not yet published to the counter.
    pub fn unpublished(&self) -> u64 {
        self.unpublished
    }
}

impl<T> fmt::Debug for BlackholeWriter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlackholeWriter")
            .field("unpublished", &self.unpublished)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl<T: Send + 'static> SinkWriter<T> for BlackholeWriter<T> {
    #[inline]
    fn write(&mut self, element: T, _ctx: &WriteContext) -> Result<()> {
        match &self.rows {
            None => self.unpublished += 1,
            Some((rows, records_in)) => {
                let rows = rows(&element);
                records_in.add(rows.saturating_sub(1));
                self.unpublished += rows;
            }
        }
        drop(element);
        if self.unpublished >= PUBLISH_INTERVAL {
            self.publish();
        }
        Ok(())
    }

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.publish();
        Poll::Ready(Ok(()))
    }

    async fn flush(&mut self, _mode: FlushMode) -> Result<()> {
        self.publish();
        Ok(())
    }

    fn write_watermark(&mut self, _watermark: Watermark) -> Result<()> {
        Ok(())
    }

    async fn close(&mut self) -> Result<()> {
        self.publish();
        Ok(())
    }
}

impl<T> Drop for BlackholeWriter<T> {
    fn drop(&mut self) {
        self.publish();
    }
}

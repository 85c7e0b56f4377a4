//! Helpers of the writer tests: a writer over the fake destination, fed as the runtime feeds it.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::sink::{FlushMode, SinkWriter, WriteContext};
use weir_connector_base::sink::{
    AsyncSinkConfig, AsyncSinkConfigBuilder, AsyncSinkWriter, RetryPolicy,
};

use super::{FakeBulkDestination, FakeSubmitter, Faults, Storage, TestInitContext};

pub type Identity = fn(u64, &WriteContext) -> Result<u64>;
pub type FakeWriter = AsyncSinkWriter<u64, u64, Identity, FakeSubmitter<u64>>;

pub const ENTRY_BYTES: u64 = 10;

pub fn identity() -> Identity {
    |n, _ctx| Ok(n)
}

pub fn fake(faults: Faults) -> Arc<FakeBulkDestination<u64>> {
    FakeBulkDestination::new(Storage::Append, faults)
}

pub fn latency(ms: u64) -> Faults {
    Faults {
        latency: Duration::from_millis(ms),
        ..Faults::none()
    }
}

pub fn writer(
    ctx: &TestInitContext,
    destination: &Arc<FakeBulkDestination<u64>>,
    config: AsyncSinkConfig,
) -> FakeWriter {
    AsyncSinkWriter::new(
        ctx,
        identity(),
        FakeSubmitter {
            destination: Arc::clone(destination),
            entry_bytes: ENTRY_BYTES,
        },
        config,
    )
    .unwrap()
}

pub fn config() -> AsyncSinkConfig {
    small().build().unwrap()
}

pub fn small() -> AsyncSinkConfigBuilder {
    AsyncSinkConfig::builder()
        .max_batch_size(10)
        .max_buffered_entries(30)
        .max_in_flight_requests(2)
        .max_time_in_buffer(Duration::from_millis(100))
        .retry(RetryPolicy {
            max_retries: 5,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(100),
        })
}

/// Writes `records` as the runtime does: readiness first, then an input batch of `batch`.
pub async fn try_feed<W: SinkWriter<u64>>(
    writer: &mut W,
    records: std::ops::Range<u64>,
    batch: u64,
) -> Result<()> {
    let mut next = records.start;
    while next < records.end {
        poll_fn(|cx| writer.poll_ready(cx)).await?;
        let end = (next + batch).min(records.end);
        for n in next..end {
            writer.write(n, &WriteContext::default())?;
        }
        next = end;
    }
    Ok(())
}

pub async fn feed<W: SinkWriter<u64>>(writer: &mut W, records: std::ops::Range<u64>, batch: u64) {
    try_feed(writer, records, batch).await.unwrap();
}

/// Feeds `records` and flushes at the end of input, expecting the writer to fail somewhere.
pub async fn feed_until_error<W: SinkWriter<u64>>(
    writer: &mut W,
    records: std::ops::Range<u64>,
) -> ConnectorError {
    match try_feed(writer, records, 10).await {
        Err(error) => error,
        Ok(()) => writer.flush(FlushMode::EndOfInput).await.unwrap_err(),
    }
}

pub fn poll_ready_now<W: SinkWriter<u64>>(writer: &mut W) -> Poll<Result<()>> {
    writer.poll_ready(&mut Context::from_waker(Waker::noop()))
}

pub fn sorted(mut v: Vec<u64>) -> Vec<u64> {
    v.sort_unstable();
    v
}

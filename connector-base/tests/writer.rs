//! The AsyncSink writer on its own, on tokio's paused clock: batching, backpressure, retries,
//! failure classification, checkpoints and restore, AIMD, metrics.

// Test helpers may fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::future::poll_fn;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::writer_harness::{
    config, fake, feed, feed_until_error, identity, latency, poll_ready_now, small, sorted, writer,
    FakeWriter, Identity, ENTRY_BYTES,
};
use common::{FakeStats, FakeSubmitter, Faults, TestInitContext};
use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::metrics::{
    CURRENT_SEND_TIME, NUM_BYTES_SEND, NUM_RECORDS_SEND, NUM_RECORDS_SEND_ERRORS,
};
use weir_connector_api::sink::{FlushMode, SinkWriter, StatefulSinkWriter, WriteContext};
use weir_connector_api::state::{U64Serializer, VersionedSerializer};
use weir_connector_base::sink::{
    AsyncSinkConfig, AsyncSinkWriter, BufferedRequestStateSerializer, CheckpointFlush,
    EntryOutcome, RequestBatch, RequestSubmitter, RetryPolicy, TimeoutPolicy, BUFFERED_ENTRIES,
    IN_FLIGHT_REQUESTS,
};

#[tokio::test(start_paused = true)]
async fn batches_by_count_then_by_time() {
    let ctx = TestInitContext::new();
    let d = fake(Faults::none());
    let mut w = writer(&ctx, &d, config());
    for n in 0..25 {
        w.write(n, &WriteContext::default()).unwrap();
    }
    // Two full batches went at once; five entries wait for more.
    assert_eq!(FakeStats::get(&d.stats.requests), 2);
    assert_eq!(w.buffered_entries(), 5);
    tokio::time::advance(Duration::from_millis(99)).await;
    assert!(poll_ready_now(&mut w).is_ready());
    assert_eq!(FakeStats::get(&d.stats.requests), 2, "sent before its time");
    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(poll_ready_now(&mut w).is_ready());
    assert_eq!(
        FakeStats::get(&d.stats.requests),
        3,
        "not sent when its time was up"
    );
    assert_eq!(sorted(d.stored()), (0..25).collect::<Vec<_>>());
}

/// When input stops, the runtime polls `poll_progress` (API 1.1) while the writer waits: the
/// batch goes when its time is up, woken by the writer's own timer, with no further write or
/// readiness check, and its completion is collected the same way.
#[tokio::test(start_paused = true)]
async fn a_waiting_batch_goes_when_its_time_is_up_with_no_more_input() {
    let ctx = TestInitContext::new();
    let d = fake(Faults::none());
    let mut w = writer(&ctx, &d, config());
    for n in 0..5 {
        w.write(n, &WriteContext::default()).unwrap();
    }
    assert_eq!(FakeStats::get(&d.stats.requests), 0);
    let start = tokio::time::Instant::now();
    // What the runtime does while no input arrives: poll until woken, again and again.
    let waited = tokio::time::timeout(
        Duration::from_secs(5),
        poll_fn(|cx| match w.poll_progress(cx) {
            std::task::Poll::Ready(Err(e)) => std::task::Poll::Ready(Err(e)),
            _ if w.buffered_entries() == 0 && w.in_flight_requests() == 0 => {
                std::task::Poll::Ready(Ok(()))
            }
            _ => std::task::Poll::Pending,
        }),
    )
    .await;
    assert!(matches!(waited, Ok(Ok(()))), "never woken: {waited:?}");
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(100),
        "sent at its time, not later"
    );
    assert_eq!(FakeStats::get(&d.stats.requests), 1);
    assert_eq!(sorted(d.stored()), (0..5).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn batches_by_bytes() {
    let ctx = TestInitContext::new();
    let d = fake(Faults::none());
    let config = small()
        .max_batch_size(100)
        .max_buffered_entries(200)
        .max_batch_size_bytes(3 * ENTRY_BYTES)
        .max_record_size_bytes(ENTRY_BYTES)
        .build()
        .unwrap();
    let mut w = writer(&ctx, &d, config);
    feed(&mut w, 0..10, 10).await;
    assert_eq!(
        FakeStats::get(&d.stats.requests),
        3,
        "three requests of 3 entries"
    );
    assert_eq!(w.buffered_entries(), 1);
    w.flush(FlushMode::EndOfInput).await.unwrap();
    assert_eq!(sorted(d.stored()), (0..10).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn a_full_buffer_is_backpressure_not_a_queue() {
    let ctx = TestInitContext::new();
    let d = fake(latency(50));
    let mut w = writer(&ctx, &d, config());
    let mut written = 0;
    // Feed input batches of 10 while the writer says it is ready.
    while poll_ready_now(&mut w).is_ready() {
        for _ in 0..10 {
            w.write(written, &WriteContext::default()).unwrap();
            written += 1;
        }
        assert!(written < 1_000, "the writer never applied backpressure");
    }
    assert_eq!(w.in_flight_requests(), 2, "the in-flight limit holds");
    assert!(
        w.buffered_entries() >= 30,
        "pending before the buffer was full"
    );
    assert!(
        w.buffered_entries() <= 30 + 10,
        "more than one input batch over the limit"
    );
    assert_eq!(ctx.gauge(IN_FLIGHT_REQUESTS), 2);
    // The pending readiness resolves when requests complete (time moves on by itself).
    poll_fn(|cx| w.poll_ready(cx)).await.unwrap();
    w.flush(FlushMode::EndOfInput).await.unwrap();
    assert_eq!(sorted(d.stored()), (0..written).collect::<Vec<_>>());
    assert_eq!(ctx.gauge(BUFFERED_ENTRIES), 0);
}

#[tokio::test(start_paused = true)]
async fn retryable_entries_are_retried_after_a_backoff() {
    let ctx = TestInitContext::new();
    let d = fake(Faults {
        entry_failure_rate: 1.0,
        max_failures_per_entry: 2,
        ..Faults::none()
    });
    let mut w = writer(&ctx, &d, config());
    let start = tokio::time::Instant::now();
    feed(&mut w, 0..20, 10).await;
    w.flush(FlushMode::EndOfInput).await.unwrap();
    assert_eq!(sorted(d.stored()), (0..20).collect::<Vec<_>>());
    assert_eq!(FakeStats::get(&d.stats.entry_failures), 40);
    // Backoffs of 10 ms and 20 ms before the second and third attempts.
    assert!(
        start.elapsed() >= Duration::from_millis(30),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(
        ctx.counter(NUM_RECORDS_SEND),
        20,
        "an entry counts once when delivered"
    );
    assert_eq!(
        ctx.counter(NUM_RECORDS_SEND_ERRORS),
        40,
        "one error per failed attempt"
    );
    assert_eq!(ctx.counter(NUM_BYTES_SEND), 20 * ENTRY_BYTES);
}

#[tokio::test(start_paused = true)]
async fn retries_are_bounded() {
    let ctx = TestInitContext::new();
    let d = fake(Faults {
        entry_failure_rate: 1.0,
        max_failures_per_entry: 1_000,
        ..Faults::none()
    });
    let mut w = writer(&ctx, &d, config());
    let error = feed_until_error(&mut w, 0..5).await;
    let message = error.to_string();
    assert!(message.contains("failed 6 times"), "{message}");
    assert!(message.contains("sink.retry.max-retries"), "{message}");
    assert!(message.contains("shard not available"), "{message}");
    // The first entry to fail a sixth time stopped the writer (AIMD shrinks batches meanwhile,
    // so the others may have had fewer attempts).
    let failures = FakeStats::get(&d.stats.entry_failures);
    assert!((6..=30).contains(&failures), "{failures} failed attempts");
    assert_eq!(ctx.counter(NUM_RECORDS_SEND), 0);
}

/// Answers from a script: `(delay, answer)` for call number `call` and its batch.
type Script = dyn Fn(u32, &[u64]) -> (Duration, Result<Vec<EntryOutcome>>) + Send + Sync;

struct ScriptedSubmitter {
    calls: AtomicU32,
    script: Box<Script>,
    delivered: Mutex<Vec<u64>>,
}

impl ScriptedSubmitter {
    fn new(
        script: impl Fn(u32, &[u64]) -> (Duration, Result<Vec<EntryOutcome>>) + Send + Sync + 'static,
    ) -> Self {
        ScriptedSubmitter {
            calls: AtomicU32::new(0),
            script: Box::new(script),
            delivered: Mutex::new(Vec::new()),
        }
    }
}

#[async_trait::async_trait]
impl RequestSubmitter<u64> for ScriptedSubmitter {
    fn entry_size(&self, _entry: &u64) -> u64 {
        ENTRY_BYTES
    }

    async fn submit(&self, batch: RequestBatch<u64>) -> Result<Vec<EntryOutcome>> {
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        let (delay, answer) = (self.script)(call, &batch);
        tokio::time::sleep(delay).await;
        if let Ok(outcomes) = &answer {
            let mut delivered = self.delivered.lock().unwrap();
            for (entry, outcome) in batch.iter().zip(outcomes) {
                if outcome.is_delivered() {
                    delivered.push(*entry);
                }
            }
        }
        answer
    }
}

fn scripted_writer(
    ctx: &TestInitContext,
    config: AsyncSinkConfig,
    script: impl Fn(u32, &[u64]) -> (Duration, Result<Vec<EntryOutcome>>) + Send + Sync + 'static,
) -> AsyncSinkWriter<u64, u64, Identity, ScriptedSubmitter> {
    AsyncSinkWriter::new(ctx, identity(), ScriptedSubmitter::new(script), config).unwrap()
}

fn all_delivered(batch: &[u64]) -> Vec<EntryOutcome> {
    vec![EntryOutcome::Delivered; batch.len()]
}

#[tokio::test(start_paused = true)]
async fn a_fatal_entry_fails_the_writer() {
    let ctx = TestInitContext::new();
    let mut w = scripted_writer(&ctx, config(), |_, batch| {
        let outcomes = batch
            .iter()
            .map(|&n| {
                if n == 13 {
                    EntryOutcome::fatal("mapper_parsing_exception")
                } else {
                    EntryOutcome::Delivered
                }
            })
            .collect();
        (Duration::ZERO, Ok(outcomes))
    });
    let error = feed_until_error(&mut w, 0..20).await;
    assert!(
        error.to_string().contains("mapper_parsing_exception"),
        "{error}"
    );
    assert_eq!(error.class(), weir_connector_api::ErrorClass::Fatal);
}

#[tokio::test(start_paused = true)]
async fn whole_requests_retry_or_fail_by_their_error_class() {
    let ctx = TestInitContext::new();
    let mut w = scripted_writer(&ctx, config(), |call, batch| match call {
        0 => (
            Duration::ZERO,
            Err(ConnectorError::retryable("bulk", "503 unavailable")),
        ),
        _ => (Duration::ZERO, Ok(all_delivered(batch))),
    });
    feed(&mut w, 0..10, 10).await;
    w.flush(FlushMode::EndOfInput).await.unwrap();
    assert_eq!(
        sorted(w.submitter().delivered.lock().unwrap().clone()),
        (0..10).collect::<Vec<_>>()
    );

    let mut w = scripted_writer(&ctx, config(), |_, _| {
        (
            Duration::ZERO,
            Err(ConnectorError::fatal("bulk", "403 forbidden")),
        )
    });
    let error = feed_until_error(&mut w, 0..10).await;
    assert!(error.to_string().contains("403 forbidden"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn a_submitter_must_answer_once_per_entry() {
    let ctx = TestInitContext::new();
    let mut w = scripted_writer(&ctx, config(), |_, _| {
        (Duration::ZERO, Ok(vec![EntryOutcome::Delivered]))
    });
    let error = feed_until_error(&mut w, 0..3).await;
    assert!(
        error.to_string().contains("1 outcomes for a batch of 3"),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn request_timeouts_retry_or_fail() {
    let ctx = TestInitContext::new();
    let slow_first = |call: u32, batch: &[u64]| {
        let delay = if call == 0 {
            Duration::from_secs(10)
        } else {
            Duration::ZERO
        };
        (delay, Ok(all_delivered(batch)))
    };
    let retry = small()
        .request_timeout(Duration::from_millis(100), TimeoutPolicy::Retry)
        .build()
        .unwrap();
    let mut w = scripted_writer(&ctx, retry, slow_first);
    feed(&mut w, 0..10, 10).await;
    w.flush(FlushMode::EndOfInput).await.unwrap();
    assert_eq!(
        sorted(w.submitter().delivered.lock().unwrap().clone()),
        (0..10).collect::<Vec<_>>()
    );
    assert_eq!(w.submitter().calls.load(Ordering::Relaxed), 2);

    let fail = small()
        .request_timeout(Duration::from_millis(100), TimeoutPolicy::Fail)
        .build()
        .unwrap();
    let mut w = scripted_writer(&ctx, fail, slow_first);
    let error = feed_until_error(&mut w, 0..10).await;
    assert!(
        error.to_string().contains("sink.request.timeout"),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_entry_above_the_record_size_limit_is_an_error() {
    let ctx = TestInitContext::new();
    let d = fake(Faults::none());
    let config = small()
        .max_record_size_bytes(ENTRY_BYTES - 1)
        .build()
        .unwrap();
    let mut w = writer(&ctx, &d, config);
    let error = w.write(1, &WriteContext::default()).unwrap_err();
    assert!(
        error.to_string().contains("sink.record.max-size"),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_checkpoint_waits_for_requests_in_flight_and_keeps_the_buffer_in_state() {
    let ctx = TestInitContext::new();
    let d = fake(latency(50));
    let mut w = writer(&ctx, &d, config());
    feed(&mut w, 0..25, 25).await;
    assert_eq!(w.in_flight_requests(), 2);
    w.flush(FlushMode::Checkpoint).await.unwrap();
    assert_eq!(
        w.in_flight_requests(),
        0,
        "the checkpoint flush left requests in flight"
    );
    assert_eq!(d.stored().len(), 20);
    let states = w.snapshot_state(CheckpointId(1)).unwrap();
    assert_eq!(states.len(), 1);
    assert_eq!(
        sorted(states[0].entries.clone()),
        (20..25).collect::<Vec<_>>()
    );

    // Through the versioned serializer, as the runtime stores it.
    let serializer = BufferedRequestStateSerializer::new(Arc::new(U64Serializer));
    let bytes = serializer.serialize(&states[0]).unwrap();
    let restored = serializer
        .deserialize(serializer.version(), &bytes)
        .unwrap();

    // The old writer dies unflushed; a restored one sends what was not acknowledged.
    drop(w);
    let after = fake(Faults::none());
    let mut w = AsyncSinkWriter::restore(
        &ctx,
        identity(),
        FakeSubmitter {
            destination: Arc::clone(&after),
            entry_bytes: ENTRY_BYTES,
        },
        config(),
        vec![restored],
    )
    .unwrap();
    assert_eq!(w.buffered_entries(), 5);
    w.flush(FlushMode::EndOfInput).await.unwrap();
    let mut all = d.stored();
    all.extend(after.stored());
    assert_eq!(
        sorted(all),
        (0..25).collect::<Vec<_>>(),
        "lost or duplicated entries"
    );
}

#[tokio::test(start_paused = true)]
async fn send_all_checkpoints_leave_nothing_buffered() {
    let ctx = TestInitContext::new();
    let d = fake(latency(5));
    let config = small()
        .checkpoint_flush(CheckpointFlush::SendAll)
        .build()
        .unwrap();
    let mut w = writer(&ctx, &d, config);
    feed(&mut w, 0..25, 25).await;
    w.flush(FlushMode::Checkpoint).await.unwrap();
    assert_eq!(sorted(d.stored()), (0..25).collect::<Vec<_>>());
    assert!(w.snapshot_state(CheckpointId(1)).unwrap()[0]
        .entries
        .is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_snapshot_with_requests_in_flight_is_refused() {
    let ctx = TestInitContext::new();
    let d = fake(latency(50));
    let mut w = writer(&ctx, &d, config());
    feed(&mut w, 0..10, 10).await;
    assert_eq!(w.in_flight_requests(), 1);
    let error = w.snapshot_state(CheckpointId(3)).unwrap_err();
    assert!(error.to_string().contains("must be flushed"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn metrics_use_flinks_names() {
    let ctx = TestInitContext::new();
    let d = fake(latency(7));
    let mut w = writer(&ctx, &d, config());
    feed(&mut w, 0..10, 10).await;
    assert_eq!(ctx.gauge(IN_FLIGHT_REQUESTS), 1);
    w.flush(FlushMode::EndOfInput).await.unwrap();
    assert_eq!(ctx.counter(NUM_RECORDS_SEND), 10);
    assert_eq!(ctx.counter(NUM_BYTES_SEND), 10 * ENTRY_BYTES);
    assert_eq!(ctx.counter(NUM_RECORDS_SEND_ERRORS), 0);
    assert_eq!(ctx.gauge(CURRENT_SEND_TIME), 7);
    assert_eq!(ctx.gauge(IN_FLIGHT_REQUESTS), 0);
}

/// Feeds `records` and returns the smallest AIMD limit seen after an input batch.
async fn feed_watching_limit(w: &mut FakeWriter, records: std::ops::Range<u64>) -> usize {
    let mut lowest = usize::MAX;
    let mut next = records.start;
    while next < records.end {
        poll_fn(|cx| w.poll_ready(cx)).await.unwrap();
        for n in next..(next + 50).min(records.end) {
            w.write(n, &WriteContext::default()).unwrap();
        }
        next += 50;
        lowest = lowest.min(w.max_in_flight_entries().unwrap());
    }
    lowest
}

#[tokio::test(start_paused = true)]
async fn aimd_lowers_the_in_flight_limit_under_throttling_and_recovers() {
    let ctx = TestInitContext::new();
    let healthy = latency(10);
    let d = fake(healthy);
    let config = AsyncSinkConfig::builder()
        .max_batch_size(50)
        .max_buffered_entries(400)
        .max_in_flight_requests(4)
        .retry(RetryPolicy {
            max_retries: 50,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(10),
        })
        .build()
        .unwrap();
    let mut w = writer(&ctx, &d, config);
    let threshold = 200; // 4 requests × 50 entries
    assert_eq!(w.max_in_flight_entries(), Some(threshold));

    feed_watching_limit(&mut w, 0..4_000).await;
    let healthy_peak = d.reset_peak();
    assert_eq!(w.max_in_flight_entries(), Some(threshold));

    // The destination takes at most 40 entries at once; more are refused with 429.
    d.set_faults(Faults {
        throttle_capacity: Some(40),
        ..healthy
    });
    let throttled_low = feed_watching_limit(&mut w, 4_000..8_000).await;
    d.reset_peak(); // the first requests of the phase still carried the old limit
    feed_watching_limit(&mut w, 8_000..12_000).await;
    let throttled_peak = d.reset_peak();
    let throttled = FakeStats::get(&d.stats.throttled_entries);

    d.set_faults(healthy);
    feed_watching_limit(&mut w, 12_000..16_000).await;
    let recovered_peak = d.reset_peak();
    let recovered = w.max_in_flight_entries().unwrap();
    w.flush(FlushMode::EndOfInput).await.unwrap();

    println!(
        "limit: healthy {threshold}, lowest throttled {throttled_low}, recovered {recovered}; \
         peak entries in flight at the destination: healthy {healthy_peak}, throttled \
         {throttled_peak}, recovered {recovered_peak}; {throttled} entries throttled"
    );
    assert!(throttled > 0);
    assert!(healthy_peak >= 150, "healthy peak {healthy_peak}");
    assert!(
        throttled_low <= 40,
        "the limit did not fall: {throttled_low}"
    );
    assert!(
        throttled_peak <= 80,
        "in flight did not fall: {throttled_peak}"
    );
    assert_eq!(recovered, threshold, "the limit did not recover");
    assert!(
        recovered_peak >= 150,
        "in flight did not recover: {recovered_peak}"
    );
    let stored = d.stored();
    assert_eq!(
        sorted(stored),
        (0..16_000).collect::<Vec<_>>(),
        "lost or duplicated entries"
    );
}

#[test]
fn the_writer_needs_a_tokio_runtime() {
    let ctx = TestInitContext::new();
    let d = fake(Faults::none());
    let error = AsyncSinkWriter::new(
        &ctx,
        identity(),
        FakeSubmitter {
            destination: d,
            entry_bytes: ENTRY_BYTES,
        },
        config(),
    )
    .unwrap_err();
    assert!(error.to_string().contains("tokio runtime"), "{error}");
}

#[test]
fn invalid_settings_are_reported_together() {
    let errors = AsyncSinkConfig::builder()
        .max_batch_size(100)
        .max_buffered_entries(100)
        .max_in_flight_requests(0)
        .max_record_size_bytes(10)
        .max_batch_size_bytes(5)
        .max_time_in_buffer(Duration::ZERO)
        .build()
        .unwrap_err();
    let message = errors.to_string();
    assert_eq!(errors.len(), 4, "{message}");
    for key in [
        "sink.requests.max-buffered",
        "sink.requests.max-inflight",
        "sink.record.max-size",
        "sink.flush-buffer.timeout",
    ] {
        assert!(message.contains(key), "{key} missing from: {message}");
    }
}

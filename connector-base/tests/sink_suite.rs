//! The testkit sink suite over an AsyncSink whose fake destination injects per-entry failures,
//! throttling, slow requests and failed requests; the suite's fault trials add restarts.
//!
//! - `async_sink_at_least_once`: an append-only destination, Flink's checkpoint flush (buffered
//!   entries go into the checkpoint and a restore resends them): at-least-once.
//! - `async_sink_idempotent`: a destination that upserts by id, every entry sent at each
//!   checkpoint: the effect is exactly-once.
//! - `nothing_lost_under_injected_faults`: counts that the faults happened and nothing was lost.

// Test helpers may fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use common::{AsyncSinkContext, Faults, Storage, Totals};
use weir_connector_base::sink::{AsyncSinkConfig, CheckpointFlush, RetryPolicy};
use weir_testkit::prelude::*;
use weir_testkit::{run_sink_case, SinkCase, SuiteConfig};

/// Faults on every request: 5 % of entry attempts fail (at most 3 times per entry), 3 % of
/// requests fail whole, 5 % are slow (+15 ms), and more than 60 entries in flight are throttled.
fn faults() -> Faults {
    Faults {
        entry_failure_rate: 0.05,
        max_failures_per_entry: 3,
        throttle_capacity: Some(60),
        request_failure_rate: 0.03,
        slow_request_rate: 0.05,
        latency: Duration::from_millis(1),
        slow_latency: Duration::from_millis(15),
        seed: 0xA5A5,
    }
}

/// Batches of 50; an entry waits up to 200 ms for its batch, so with checkpoints every 5-10 ms
/// the checkpoints of `AwaitInFlight` hold buffered entries and restores resend them.
fn config(flush: CheckpointFlush) -> AsyncSinkConfig {
    AsyncSinkConfig::builder()
        .max_batch_size(50)
        .max_buffered_entries(200)
        .max_in_flight_requests(4)
        .max_time_in_buffer(Duration::from_millis(200))
        .retry(RetryPolicy {
            max_retries: 10,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(20),
        })
        .checkpoint_flush(flush)
        .build()
        .expect("a valid configuration")
}

fn at_least_once() -> AsyncSinkContext {
    AsyncSinkContext::new(
        "async-sink-fake-append",
        SinkSupport::at_least_once(),
        Storage::Append,
        faults(),
        config(CheckpointFlush::AwaitInFlight),
    )
}

fn idempotent() -> AsyncSinkContext {
    AsyncSinkContext::new(
        "async-sink-fake-upsert",
        SinkSupport::exactly_once(),
        Storage::UpsertById,
        faults(),
        config(CheckpointFlush::SendAll),
    )
}

weir_testkit::sink_suite!(async_sink_at_least_once, at_least_once);
weir_testkit::sink_suite!(
    async_sink_idempotent,
    idempotent,
    SuiteConfig::from_env().fault_trials(15)
);

#[test]
fn nothing_lost_under_injected_faults() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut ctx = at_least_once();
    let config = SuiteConfig::from_env().at_least_once_trials(10);
    let cases = [
        SinkCase::Basic,
        SinkCase::StartFromSavepoint,
        SinkCase::AtLeastOnceUnderFaults,
    ];
    for case in cases {
        let report = runtime.block_on(run_sink_case(
            &mut ctx,
            case,
            Semantic::AtLeastOnce,
            &config,
        ));
        println!("{report}");
        assert!(!report.failed(), "{report}");
    }
    let t = &ctx.totals;
    let get = |f: fn(&Totals) -> &AtomicU64| t.get(f);
    println!("{t:#?}");
    // Every case and trial read back what it generated: 2 cases + 10 trials.
    assert_eq!(get(|t| &t.tests), 12);
    assert!(get(|t| &t.generated) > 0);
    assert_eq!(get(|t| &t.missing), 0, "records were lost");
    assert_eq!(get(|t| &t.distinct), get(|t| &t.generated));
    assert!(get(|t| &t.received) >= get(|t| &t.distinct));
    // Restores (the savepoint case, the trials' restarts) sent entries from writer state.
    assert!(
        t.restored_entries
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0,
        "no restore carried buffered entries"
    );
    // The faults really happened.
    assert!(
        get(|t| &t.entry_failures) > 0,
        "no per-entry failure injected"
    );
    assert!(get(|t| &t.throttled_entries) > 0, "no throttling injected");
    assert!(
        get(|t| &t.failed_requests) > 0,
        "no failed request injected"
    );
    assert!(get(|t| &t.slow_requests) > 0, "no slow request injected");
}

//! The testkit's sink suite against a real broker (noida-db), including exactly-once under
//! randomized failures, verified with read_committed.
//!
//! Paced runs are longer than the testkit's defaults: the at-least-once producer is idempotent,
//! and librdkafka acquires its producer id about half a second after start, so the first
//! checkpoint's flush waits that long.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

weir_testkit::sink_suite!(
    kafka_sink,
    common::SinkCtx::new,
    weir_testkit::SuiteConfig::from_env()
        .paced_run(Duration::from_secs(2))
        .trial_run(Duration::from_millis(1200))
);

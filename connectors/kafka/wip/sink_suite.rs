//! The testkit's sink suite against a real broker (noida-db), including exactly-once under
//! randomized failures, verified with read_committed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

weir_testkit::sink_suite!(kafka_sink, common::SinkCtx::new);

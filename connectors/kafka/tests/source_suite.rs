//! The testkit's source suite against a real broker (noida-db).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

weir_testkit::source_suite!(kafka_source, common::SourceCtx::new);

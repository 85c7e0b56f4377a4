//! Every integration test of the crate in one test binary: one link and one executable on
//! disk instead of one per file (CI builds them all on 2 cores). Each file below is a module;
//! run one with `cargo test --test integration <file>::`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

mod abort_notifications;
mod checkpoint_options;
mod erased;
mod event_time;
mod exactly_once;
mod flip147;
mod lifecycle;
mod lookup_join;
mod lookup_join_exactly_once;
mod metrics_and_restarts;
mod observability;
mod record_timestamps;
mod smoke;
mod spread;
mod topologies;
mod unaligned;

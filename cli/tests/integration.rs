//! Every integration test of the crate in one test binary: one link and one executable on
//! disk instead of one per file (CI builds them all on 2 cores). Each file below is a module;
//! run one with `cargo test --test integration <file>::`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod dashboard_support;

mod check;
mod cluster;
mod cluster_servers;
mod columnar;
mod columnar_elasticsearch;
mod columnar_files;
mod columnar_kafka;
mod dashboard;
mod dashboard_browser;
mod ecosystem;
mod examples;
mod examples_elasticsearch;
mod hardened;
mod lookup;
mod operator;
mod publish_registry;
mod run;
mod s3_checkpoints;
mod scaffold;
mod soak;
mod soak_kafka;
mod types;
mod validate;

//! Every integration test of the crate in one test binary: one link and one executable on
//! disk instead of one per file (CI builds them all on 2 cores). Each file below is a module;
//! run one with `cargo test --test integration <file>::`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

mod columnar;
mod config;
mod conformance;
mod exactly_once;
mod factory;
mod pause;
mod recovery;
mod source;

//! # Weir Elasticsearch connector
//!
//! Elasticsearch (and OpenSearch) for Weir, on the official `elasticsearch` client over
//! rustls:
//!
//! | part | what |
//! |---|---|
//! | [`sink::ElasticsearchSink`] | bulk sink on the connector base's AsyncSink: batches by actions, bytes and time; index, create, update, upsert and delete actions; **per-item** results (429 / 502 / 503 / 504 and update conflicts retried alone, with backoff, under AIMD congestion control; permanent refusals by [`sink::FailurePolicy`]: fail, skip and count, or dead-letter); buffered actions in checkpoints |
//! | [`RowEmitter`] | pipeline rows as actions: `+I`/`+U` write, `-D` delete, `-U` skipped, ids from key fields, index names from fields ([`IndexRouting`]: `orders-{at\|%Y-%m-%d}`) |
//! | `ChunkEmitter` | columnar pipelines (API line 1.1): every row of an Arrow chunk as the action `RowEmitter` makes of it, read straight from the columns (same bytes, same writer and checkpoint state) |
//! | [`lookup::ElasticsearchLookup`] | an asynchronous lookup function (by id, or by `term` queries) through the base's partial cache |
//! | [`factory`] | the `elasticsearch` connector of pipeline files: sink, lookup table, connection check |
//! | [`ConnectionConfig`] | several hosts (round-robin), basic authentication or API keys, TLS (rustls) with an extra CA or none, timeouts |
//!
//! ## Guarantees
//!
//! Delivery is **at-least-once**: every record a checkpoint covers was acknowledged by the
//! cluster or is in the checkpoint and sent again after a restore; a failed request is retried
//! and never drops what it carried. With document ids (`document-id.fields`, or ids set by your
//! emitter) and the `index`, `upsert` or `delete` actions, a record written twice leaves one
//! document: the **effect is exactly-once**. The sink suite of the testkit proves it against
//! two servers (noida-db, an Elasticsearch 8 API, and osmem-server, an OpenSearch 3 API) by
//! counting documents by id after randomized failures.
//!
//! ## Example: a pipeline sink
//!
//! ```toml
//! [[sinks]]
//! name = "search"
//! input = "orders"
//! connector = "elasticsearch"
//!
//! [sinks.options]
//! hosts = "http://localhost:9200"
//! index = "orders-{at|%Y-%m-%d}"
//! document-id.fields = "id"
//! ```
//!
//! From Rust, see [`sink::ElasticsearchSink`] and [`lookup::ElasticsearchLookup`].

mod check;
#[cfg(weir_api_1_1)]
mod chunk;
mod client;
pub mod config;
pub mod factory;
mod index;
pub mod lookup;
mod row;
mod row_types;
pub mod sink;

pub use client::{Auth, ConnectionConfig, TlsVerification};
pub use index::{IndexPattern, IndexRouting};
pub use row::RowEmitter;

#[cfg(weir_api_1_1)]
pub use chunk::ChunkEmitter;

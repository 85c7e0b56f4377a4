//! # Weir connector base
//!
//! Implementations that connectors reuse, beside the contracts of `weir-connector-api`
//! (Flink's `flink-connector-base`). Unlike the API, this crate can change without a new API
//! line: connectors depend on it by version like on any library.
//!
//! | module | what it holds |
//! |---|---|
//! | [`sink`] | the AsyncSink (FLIP-171): [`sink::AsyncSinkWriter`] over an [`sink::ElementConverter`] and a [`sink::RequestSubmitter`], batching by count, bytes and time, bounded buffer with backpressure, in-flight limits, AIMD congestion control ([`sink::CongestionControlRateLimiting`]), per-entry retry / fatal classification with bounded backoff, buffered entries in versioned writer state; [`sink::AsyncSink`] makes a complete stateful sink of it |
//!
//! | [`lookup`] | FLIP-221 lookup caching: [`lookup::LookupCache`], [`lookup::DefaultLookupCache`] on moka (max rows, expire after write / access, missing keys cached or not) with Flink's cache metrics, and [`lookup::PartialCachingLookupFunction`] in front of any lookup function |
//!
//! Not here yet (issue 14): the full lookup cache with reload triggers, async caching, the
//! lookup join's retries (FLIP-234), and the `SourceReaderBase` (still in
//! `weir_connector_api::base` for API line 1.0).
//!
//! The hot-path rules of the design hold: `write` is synchronous and, once the buffer has grown
//! to its working size, allocates nothing beyond what the converter allocates; requests, timers
//! and the rate limiter work per batch; nothing blocks a runtime thread. A lookup hit costs a
//! reference count on the cached rows.

pub mod lookup;
pub mod sink;

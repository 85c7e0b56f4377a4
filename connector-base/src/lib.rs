//! # Weir connector base
//!
//! Implementations that connectors reuse, beside the contracts of `weir-connector-api`
//! (Flink's `flink-connector-base`). Unlike the API, this crate can change without a new API
//! line: connectors depend on it by version like on any library.
//!
//! | module | what it holds |
//! |---|---|
//! | [`source`] | the FLIP-27 reader base ([`source::reader::SourceReaderBase`] with async split readers on fetcher tasks), [`source::ForwardingSourceReader`] for reader wrappers, FLIP-238 rate limiting ([`source::RateLimiterStrategy`], [`source::RateLimitedSourceReader`]) and [`source::FlattenSource`] |
//! | [`sink`] | the AsyncSink (FLIP-171): [`sink::AsyncSinkWriter`] over an [`sink::ElementConverter`] and a [`sink::RequestSubmitter`], batching by count, bytes and time, bounded buffer with backpressure, in-flight limits, AIMD congestion control ([`sink::CongestionControlRateLimiting`]), per-entry retry / fatal classification with bounded backoff, buffered entries in versioned writer state; [`sink::AsyncSink`] makes a complete stateful sink of it |
//! | [`lookup`] | FLIP-221 lookup caching: [`lookup::LookupCache`], [`lookup::DefaultLookupCache`] on moka (max rows, expire after write / access, missing keys cached or not) with Flink's cache metrics, [`lookup::PartialCachingLookupFunction`] and [`lookup::PartialCachingAsyncLookupFunction`] in front of any lookup function, and the full cache [`lookup::FullCachingLookupFunction`]: the whole table loaded through a bounded scan source ([`lookup::read_bounded`]) and reloaded on a [`lookup::ReloadTrigger`] (fixed delay, fixed rate, time of day) |
//!
//! The lookup join itself, with its FLIP-234 retries, is the runtime's (`DataStream::lookup_join`).
//!
//! ## API lines
//!
//! The crate builds on every line of `weir-connector-api` from 1.0 on. [`source`] needs only
//! 1.0; [`sink`] (AsyncSink) and [`lookup`] need line 1.1 (the writer's
//! `poll_progress`, lookup factories) and exist only when the API in the build is 1.1 or newer
//! (the API's build script says which; see `build.rs`). A connector that uses them is released
//! for line 1.1 and newer only.
//!
//! The hot-path rules of the design hold: `write` is synchronous and, once the buffer has grown
//! to its working size, allocates nothing beyond what the converter allocates; requests, timers
//! and the rate limiter work per batch; nothing blocks a runtime thread. A lookup hit costs a
//! reference count on the cached rows.

#[cfg(weir_api_1_1)]
pub mod lookup;
#[cfg(weir_api_1_1)]
pub mod sink;
pub mod source;

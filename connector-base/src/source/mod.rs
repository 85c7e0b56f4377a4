//! Reusable source implementations (FLIP-27): the reader base and the reader wrappers.
//!
//! | item | what |
//! |---|---|
//! | [`reader`] | [`reader::SourceReaderBase`]: async [`reader::SplitReader`]s on fetcher tasks, a bounded element queue, [`reader::RecordEmitter`]s, split state for checkpoints, the FLIP-208 record evaluator, split pausing |
//! | [`ForwardingSourceReader`], [`Forwarding`] | write a reader wrapper by overriding only what it changes; every other method forwards |
//! | [`RateLimiterStrategy`], [`RateLimitedSourceReader`] | FLIP-238 rate limiting: per second, per checkpoint, or none, exact for [`PollBudget`] readers |
//! | [`FlattenSource`] | a source of `Vec<T>` seen as a source of `T`, each batch emitted in one step |
//!
//! These moved here from `weir_connector_api::base::reader` and `weir_connector_api::source`
//! (API line 1.1). The API crate keeps frozen, deprecated copies at the 1.0 paths so a 1.0
//! connector builds unchanged; fixes and changes go here only, and need no new API line.

mod flatten;
mod forwarding;
mod rate_limit;
pub mod reader;

pub use flatten::{FlattenOutput, FlattenReader, FlattenSource};
pub use forwarding::{ForwardedSplit, Forwarding, ForwardingSourceReader};
pub use rate_limit::{
    CountingOutput, NextPermit, PollBudget, RateLimitOptionKeys, RateLimited,
    RateLimitedSourceReader, RateLimiter, RateLimiterStrategy,
};

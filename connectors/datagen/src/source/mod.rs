//! The datagen source: [`DataGeneratorSource`], its split, enumerator, reader and rate limiting.

mod enumerator;
mod reader;
mod split;

/// The rate limiters, at their API 1.0 path.
#[deprecated(note = "moved to weir_connector_base::source (also re-exported at this crate's root)")]
pub mod rate_limit {
    pub use weir_connector_base::source::{
        NextPermit, PollBudget, RateLimitedSourceReader, RateLimiter, RateLimiterStrategy,
    };
}

use std::fmt;
use std::sync::Arc;

use weir_connector_api::error::Result;
use weir_connector_api::source::{
    Boundedness, EnumeratorContextOf, EnumeratorState, Source, SourceReaderContext,
};
use weir_connector_api::state::{VecSerializer, VersionedSerializer};

pub use enumerator::SequenceEnumerator;
pub use reader::{Generator, RunGenerator, SequenceReader, DEFAULT_BATCH_SIZE};
pub use split::{create_splits, NumberSequenceSplit, NumberSequenceSplitSerializer};
pub use weir_connector_base::source::{
    NextPermit, PollBudget, RateLimitedSourceReader, RateLimiter, RateLimiterStrategy,
};

use crate::config::DatagenOptions;

/// A source that emits `generator(n)` for the numbers `n` of `0..count` (or of every `u64`
/// below [`u64::MAX`] when unbounded), each exactly once, optionally rate limited (FLIP-238).
///
/// Bounded when `count` is `Some`, continuous otherwise. The numbers are cut into one split per
/// reader (see [`create_splits`]); within a split they come in ascending order, across splits
/// they interleave. Records carry no timestamp; attach one with a watermark strategy's timestamp
/// assigner if needed.
///
/// See the [crate docs](crate) for an example.
pub struct DataGeneratorSource<T> {
    generator: SourceGenerator<T>,
    count: Option<u64>,
    rate: RateLimiterStrategy,
    batch_size: usize,
}

/// What a [`DataGeneratorSource`]'s readers emit: a record per number or per run.
enum SourceGenerator<T> {
    PerNumber(Generator<T>),
    PerRun(RunGenerator<T>),
}

impl<T: Send + 'static> DataGeneratorSource<T> {
    /// A source emitting `generator(n)` for `n` in `0..count` (`None`: unbounded), limited by
    /// `rate`.
    pub fn new(
        generator: impl Fn(u64) -> T + Send + Sync + 'static,
        count: Option<u64>,
        rate: RateLimiterStrategy,
    ) -> Self {
        DataGeneratorSource {
            generator: SourceGenerator::PerNumber(Arc::new(generator)),
            count,
            rate,
            batch_size: DEFAULT_BATCH_SIZE,
        }
    }

    /// A source emitting one record `generator(run)` per run of consecutive numbers of one
    /// split (at most the [batch size](Self::with_batch_size) numbers): a columnar batch
    /// standing for those numbers. Splits, their state and the enumerator are those of
    /// [`new`](Self::new), so a checkpoint of one restores on the other; `rate` counts
    /// records, i.e. runs, so columnar sources are meant to run unlimited.
    pub fn per_run(
        generator: impl Fn(&[u64]) -> T + Send + Sync + 'static,
        count: Option<u64>,
        rate: RateLimiterStrategy,
    ) -> Self {
        DataGeneratorSource {
            generator: SourceGenerator::PerRun(Arc::new(generator)),
            count,
            rate,
            batch_size: DEFAULT_BATCH_SIZE,
        }
    }

    /// A source configured by validated [`DatagenOptions`] (e.g. from a pipeline file).
    pub fn from_options(
        generator: impl Fn(u64) -> T + Send + Sync + 'static,
        options: &DatagenOptions,
    ) -> Self {
        Self::new(generator, options.number_of_rows, options.rate_limiter)
    }

    /// Sets the maximum number of records a reader emits per poll (default
    /// [`DEFAULT_BATCH_SIZE`], at least 1).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// How many records the source emits (`None`: unbounded).
    pub fn count(&self) -> Option<u64> {
        self.count
    }

    /// The rate limit.
    pub fn rate_limiter(&self) -> RateLimiterStrategy {
        self.rate
    }
}

impl<T> fmt::Debug for DataGeneratorSource<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataGeneratorSource")
            .field("count", &self.count)
            .field("rate", &self.rate)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Source for DataGeneratorSource<T> {
    type Output = T;
    type Split = NumberSequenceSplit;
    type Reader = RateLimitedSourceReader<SequenceReader<T>>;
    type Enumerator = SequenceEnumerator;

    fn boundedness(&self) -> Boundedness {
        if self.count.is_some() {
            Boundedness::Bounded
        } else {
            Boundedness::ContinuousUnbounded
        }
    }

    /// Creates the (rate limited) reader of one subtask; fails if the rate limit is invalid.
    fn create_reader(&self, ctx: Arc<dyn SourceReaderContext>) -> Result<Self::Reader> {
        self.rate.validate_with(&crate::config::RATE_LIMIT_KEYS)?;
        let limiter = self
            .rate
            .create_rate_limiter(ctx.subtask_index(), ctx.parallelism())?;
        let reader = match &self.generator {
            SourceGenerator::PerNumber(g) => SequenceReader::new(Arc::clone(g), ctx),
            SourceGenerator::PerRun(g) => SequenceReader::per_run(Arc::clone(g), ctx),
        }
        .with_batch_size(self.batch_size);
        Ok(RateLimitedSourceReader::with_poll_budget(reader, limiter))
    }

    fn create_enumerator(&self, ctx: EnumeratorContextOf<Self>) -> Result<SequenceEnumerator> {
        Ok(SequenceEnumerator::new(ctx, self.count))
    }

    fn restore_enumerator(
        &self,
        ctx: EnumeratorContextOf<Self>,
        state: EnumeratorState<Self>,
    ) -> Result<SequenceEnumerator> {
        Ok(SequenceEnumerator::restore(ctx, state))
    }

    fn split_serializer(&self) -> Arc<dyn VersionedSerializer<NumberSequenceSplit>> {
        Arc::new(NumberSequenceSplitSerializer)
    }

    fn enumerator_state_serializer(
        &self,
    ) -> Arc<dyn VersionedSerializer<Vec<NumberSequenceSplit>>> {
        Arc::new(VecSerializer::new(NumberSequenceSplitSerializer))
    }
}

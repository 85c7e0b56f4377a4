//! The typed options of the datagen source, for pipeline files.
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `number-of-rows` | `u64` | rows to emit; absent = unbounded |
//! | `rows-per-second` | `f64` | total rate over all readers |
//! | `rows-per-checkpoint` | `u64` | total rows over all readers between two checkpoints |
//!
//! `rows-per-second` and `rows-per-checkpoint` exclude each other. The README's table is
//! generated from [`options`].
//!
//! ```
//! use std::collections::BTreeMap;
//! use weir_connector_datagen::config::DatagenOptions;
//! use weir_connector_datagen::RateLimiterStrategy;
//!
//! let input: BTreeMap<String, String> =
//!     [("number-of-rows", "1000"), ("rows-per-second", "50")]
//!         .into_iter()
//!         .map(|(k, v)| (k.to_owned(), v.to_owned()))
//!         .collect();
//! let options = DatagenOptions::from_map(&input)?;
//! assert_eq!(options.number_of_rows, Some(1000));
//! assert_eq!(options.rate_limiter, RateLimiterStrategy::per_second(50.0));
//! # Ok::<(), weir_connector_api::config::ConfigErrors>(())
//! ```

use std::collections::BTreeMap;
use std::sync::LazyLock;

use weir_connector_api::config::{
    min, ConfigError, ConfigErrors, ConfigOption, OptionSet, ValidatedConfig,
};

use weir_connector_base::source::{RateLimitOptionKeys, RateLimiterStrategy};

/// The name of the option set, used in error messages.
pub const SET_NAME: &str = "datagen source";

/// The key of [`NUMBER_OF_ROWS`].
pub const NUMBER_OF_ROWS_KEY: &str = "number-of-rows";
/// The key of [`ROWS_PER_SECOND`].
pub const ROWS_PER_SECOND_KEY: &str = "rows-per-second";
/// The key of [`ROWS_PER_CHECKPOINT`].
pub const ROWS_PER_CHECKPOINT_KEY: &str = "rows-per-checkpoint";
/// The keys an invalid [`RateLimiterStrategy`] of a datagen source is reported with.
pub const RATE_LIMIT_KEYS: RateLimitOptionKeys = RateLimitOptionKeys {
    set_name: SET_NAME,
    per_second: ROWS_PER_SECOND_KEY,
    per_checkpoint: ROWS_PER_CHECKPOINT_KEY,
};

/// `number-of-rows`: how many rows to emit; absent means unbounded.
pub static NUMBER_OF_ROWS: LazyLock<ConfigOption<u64>> = LazyLock::new(|| {
    ConfigOption::new(NUMBER_OF_ROWS_KEY)
        .optional()
        .description(
            "Number of rows to emit, numbered 0 to n-1; the source is bounded. \
             Leave it out for an unbounded source.",
        )
});

/// `rows-per-second`: the total rate limit over all readers.
pub static ROWS_PER_SECOND: LazyLock<ConfigOption<f64>> = LazyLock::new(|| {
    ConfigOption::new(ROWS_PER_SECOND_KEY)
        .optional()
        .description(
            "Maximum rows per second over all readers; each of p readers gets 1/p of it. \
             Unlimited when absent. Excludes `rows-per-checkpoint`.",
        )
        .validator(|rate: &f64| {
            if *rate > 0.0 {
                Ok(())
            } else {
                Err("must be greater than 0".to_owned())
            }
        })
});

/// `rows-per-checkpoint`: the total number of rows between two completed checkpoints.
pub static ROWS_PER_CHECKPOINT: LazyLock<ConfigOption<u64>> = LazyLock::new(|| {
    ConfigOption::new(ROWS_PER_CHECKPOINT_KEY)
        .optional()
        .description(
            "Maximum rows over all readers between two completed checkpoints, split evenly \
             (each reader gets at least one). Excludes `rows-per-second`.",
        )
        .validator(min(1))
});

/// The datagen source's options: `number-of-rows`, `rows-per-second` and
/// `rows-per-checkpoint`, the last two mutually exclusive. Unknown keys are rejected.
pub fn options() -> OptionSet {
    OptionSet::new(SET_NAME)
        .option(&NUMBER_OF_ROWS)
        .option(&ROWS_PER_SECOND)
        .option(&ROWS_PER_CHECKPOINT)
        .cross_validator(|config| {
            if config.is_set(&ROWS_PER_SECOND) && config.is_set(&ROWS_PER_CHECKPOINT) {
                vec![ConfigError::conflict(
                    [ROWS_PER_CHECKPOINT_KEY, ROWS_PER_SECOND_KEY],
                    "a source is limited either per second or per checkpoint; remove one of them",
                )]
            } else {
                Vec::new()
            }
        })
}

/// The datagen settings read from validated options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DatagenOptions {
    /// How many rows to emit (`None`: unbounded).
    pub number_of_rows: Option<u64>,
    /// The rate limit (no limit unless `rows-per-second` or `rows-per-checkpoint` is set).
    pub rate_limiter: RateLimiterStrategy,
}

impl DatagenOptions {
    /// Validates `input` against [`options`] and reads the settings; every problem is reported
    /// at once.
    pub fn from_map(input: &BTreeMap<String, String>) -> Result<Self, ConfigErrors> {
        options()
            .validate(input)
            .map(|config| Self::from_config(&config))
    }

    /// Reads the settings from a configuration validated by [`options`].
    pub fn from_config(config: &ValidatedConfig) -> Self {
        let rate_limiter = if let Some(rate) = config.get_optional(&ROWS_PER_SECOND) {
            RateLimiterStrategy::per_second(rate)
        } else if let Some(records) = config.get_optional(&ROWS_PER_CHECKPOINT) {
            RateLimiterStrategy::per_checkpoint(records)
        } else {
            RateLimiterStrategy::no_op()
        };
        DatagenOptions {
            number_of_rows: config.get_optional(&NUMBER_OF_ROWS),
            rate_limiter,
        }
    }
}

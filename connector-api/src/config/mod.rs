//! Typed connector configuration with FLIP-122 style keys (`scan.startup.mode`,
//! `properties.bootstrap.servers`, `sink.delivery-guarantee`).
//!
//! A connector declares each [`ConfigOption`] once and groups them in an [`OptionSet`]. The
//! same set validates a user's `BTreeMap<String, String>` — reporting every problem at once in
//! [`ConfigErrors`] — and renders the Markdown documentation table
//! ([`OptionSet::to_markdown`]). Values are typed through [`OptionValue`]: strings, booleans,
//! integers, `f64`, [`Duration`](std::time::Duration) (`500ms`, `2 min`), [`MemorySize`]
//! (`64kb`), lists (`a,b;c`) and enums ([`ConfigEnum`], implemented with
//! [`config_enum!`](crate::config_enum)).
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::sync::LazyLock;
//! use std::time::Duration;
//! use weir_connector_api::config::{range, non_empty, ConfigError, ConfigOption, OptionSet};
//! use weir_connector_api::config_enum;
//!
//! #[derive(Debug, Clone, Copy, PartialEq, Eq)]
//! enum StartupMode { EarliestOffset, LatestOffset }
//! config_enum!(StartupMode {
//!     "earliest-offset" => EarliestOffset,
//!     "latest-offset" => LatestOffset,
//! });
//!
//! static TOPIC: LazyLock<ConfigOption<String>> = LazyLock::new(|| {
//!     ConfigOption::new("topic").description("Topic to read from.").validator(non_empty())
//! });
//! static STARTUP_MODE: LazyLock<ConfigOption<StartupMode>> = LazyLock::new(|| {
//!     ConfigOption::new("scan.startup.mode")
//!         .default_value(StartupMode::EarliestOffset)
//!         .description("Where to start reading.")
//! });
//! fn max_rows() -> ConfigOption<u64> {
//!     ConfigOption::new("sink.buffer-flush.max-rows")
//!         .default_value(1000)
//!         .validator(range(1..=1_000_000))
//!         .deprecated_key("sink.max-rows")
//! }
//! fn flush_interval() -> ConfigOption<Duration> {
//!     ConfigOption::new("sink.buffer-flush.interval").default_value(Duration::from_secs(1))
//! }
//!
//! let set = OptionSet::new("kafka source")
//!     .option(&TOPIC)
//!     .option(&STARTUP_MODE)
//!     .option(&max_rows())
//!     .option(&flush_interval())
//!     .prefix("properties.", "Passed to the Kafka client.");
//!
//! let input: BTreeMap<String, String> = [
//!     ("topic", "orders"),
//!     ("scan.startup.mode", "LATEST-OFFSET"),
//!     ("sink.max-rows", "500"),
//!     ("properties.group.id", "weir"),
//! ]
//! .into_iter()
//! .map(|(k, v)| (k.to_owned(), v.to_owned()))
//! .collect();
//!
//! let config = set.validate(&input)?;
//! assert_eq!(config.get(&TOPIC), "orders");
//! assert_eq!(config.get(&STARTUP_MODE), StartupMode::LatestOffset);
//! assert_eq!(config.get(&max_rows()), 500);
//! assert_eq!(config.get(&flush_interval()), Duration::from_secs(1));
//! assert_eq!(config.prefixed("properties.")["group.id"], "weir");
//! assert_eq!(
//!     config.warnings()[0].to_string(),
//!     "option `sink.max-rows` is deprecated: use `sink.buffer-flush.max-rows` instead"
//! );
//!
//! // Every mistake is reported at once.
//! let bad: BTreeMap<String, String> = [("scan.startup.mod", "latest"), ("sink.max-rows", "0")]
//!     .into_iter()
//!     .map(|(k, v)| (k.to_owned(), v.to_owned()))
//!     .collect();
//! let errors = set.validate(&bad).unwrap_err();
//! assert_eq!(
//!     errors.to_string(),
//!     "3 problems in kafka source options:\n  \
//!      - unknown option `scan.startup.mod`: did you mean `scan.startup.mode`?\n  \
//!      - invalid value `0` for option `sink.max-rows`: must be between 1 and 1000000 (inclusive)\n  \
//!      - missing required option `topic`: add it to the options"
//! );
//! # Ok::<(), weir_connector_api::config::ConfigErrors>(())
//! ```

mod error;
mod option;
mod set;
mod value;

#[cfg(test)]
mod tests;

pub use crate::config_enum;
pub use error::{ConfigError, ConfigErrors, ConfigWarning};
pub use option::{max, min, non_empty, one_of, range, ConfigOption, EmptyCheck, Validator};
pub use set::{CrossValidator, OptionSet, ValidatedConfig};
pub use value::{format_duration, parse_duration, ConfigEnum, MemorySize, OptionValue};

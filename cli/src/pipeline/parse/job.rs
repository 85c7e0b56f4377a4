//! The job's settings: `[pipeline]`, `[checkpointing]` (with its storage) and `[restart]`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use weir_runtime::restart::RestartStrategy;
use weir_runtime::{BarrierAlignment, CheckpointConfig, CheckpointingMode};

use super::super::diag::hint;
use super::super::{Checkpointing, Storage};
use super::{key_span, unpair, Parser, Section, Span};

const PIPELINE_KEYS: [&str; 4] = [
    "name",
    "parallelism",
    "watermark-interval",
    "allow-unaligned-source-splits",
];
const CHECKPOINT_KEYS: [&str; 10] = [
    "interval",
    "mode",
    "alignment",
    "alignment-timeout",
    "storage",
    "timeout",
    "min-pause",
    "max-concurrent",
    "retained",
    "tolerable-failures",
];
/// The restart strategies and the keys of each.
const STRATEGY_KEYS: [(&str, &[&str]); 4] = [
    ("none", &["strategy"]),
    ("fixed-delay", &["strategy", "attempts", "delay"]),
    (
        "exponential-delay",
        &[
            "strategy",
            "initial-backoff",
            "max-backoff",
            "multiplier",
            "jitter",
            "reset-after",
            "max-attempts",
        ],
    ),
    (
        "failure-rate",
        &["strategy", "max-failures", "interval", "delay"],
    ),
];

/// The settings of `[pipeline]`, with their defaults where the file leaves them out.
pub(super) struct Settings {
    /// The job's name: the file's `name`, else the name the caller gave.
    pub(super) name: String,
    /// The default parallelism.
    pub(super) parallelism: usize,
    /// How often watermarks are generated.
    pub(super) watermark_interval: Option<Duration>,
    /// Whether aligned sources that cannot pause splits fall back to task-level alignment.
    pub(super) allow_unaligned_source_splits: bool,
}

impl Parser {
    /// The `[pipeline]` section.
    pub(super) fn settings(&mut self, root: Section<'_>, default_name: &str) -> Settings {
        let mut settings = Settings {
            name: default_name.to_owned(),
            parallelism: 1,
            watermark_interval: None,
            allow_unaligned_source_splits: false,
        };
        if let Some(s) = self.section(root, "pipeline", "[pipeline]") {
            self.unknown_keys(s, &PIPELINE_KEYS);
            if let Some((n, span)) = self.string(s, "name") {
                if n.trim().is_empty() {
                    self.d.error(span, "`name` in [pipeline] must not be empty");
                } else {
                    settings.name = n;
                }
            }
            if let Some(p) = self.integer(s, "parallelism", 1, 1024) {
                settings.parallelism = p as usize;
            }
            settings.watermark_interval = self.duration(s, "watermark-interval", true);
            settings.allow_unaligned_source_splits = self
                .boolean(s, "allow-unaligned-source-splits")
                .unwrap_or(false);
        }
        settings
    }

    pub(super) fn checkpointing(&mut self, root: Section<'_>) -> Option<Checkpointing> {
        let s = self.section(root, "checkpointing", "[checkpointing]")?;
        self.unknown_keys(s, &CHECKPOINT_KEYS);
        let interval = self.duration(s, "interval", true);
        if Self::item(s, "interval").is_none() {
            self.missing(s, "interval", "interval = \"1s\"");
        }
        let mut config = CheckpointConfig::every(interval.unwrap_or(Duration::from_secs(1)));
        if let Some((mode, span)) = self.string(s, "mode") {
            match mode.as_str() {
                "exactly-once" => config.mode = CheckpointingMode::ExactlyOnce,
                "at-least-once" => config.mode = CheckpointingMode::AtLeastOnce,
                other => self.d.error(
                    span,
                    format!(
                        "`mode` in [checkpointing] must be \"exactly-once\" or \"at-least-once\", \
                         not \"{other}\"{}",
                        hint(other, ["exactly-once", "at-least-once"])
                    ),
                ),
            }
        }
        config.alignment = self.alignment(s, &config);
        if let Some(d) = self.duration(s, "timeout", true) {
            config.timeout = d;
        }
        if let Some(d) = self.duration(s, "min-pause", false) {
            config.min_pause = d;
        }
        if let Some(n) = self.integer(s, "max-concurrent", 1, 64) {
            config.max_concurrent = n as usize;
        }
        if let Some(n) = self.integer(s, "retained", 1, 1000) {
            config.retained = n as usize;
        }
        if let Some(n) = self.integer(s, "tolerable-failures", 0, i64::from(u32::MAX)) {
            config.tolerable_failures = n as u32;
        }
        if config.alignment.overtakes() && config.max_concurrent > 1 {
            if let Some((span, _)) = Self::item(s, "max-concurrent").map(|(k, v)| (v.span(), k)) {
                self.d.error(
                    span,
                    "unaligned barriers (and an alignment timeout) allow one checkpoint in \
                     progress at a time: set max-concurrent = 1",
                );
            }
        }
        let storage = match self.string(s, "storage") {
            None => Storage::Memory,
            Some((text, span)) => self.storage(&text, span),
        };
        Some(Checkpointing { config, storage })
    }

    /// `alignment` and `alignment-timeout`: aligned barriers (the default), unaligned ones, or
    /// aligned ones that go unaligned once alignment takes longer than the timeout.
    fn alignment(&mut self, s: Section<'_>, config: &CheckpointConfig) -> BarrierAlignment {
        let mut alignment = BarrierAlignment::Aligned;
        let mut unaligned_at = None;
        if let Some((text, span)) = self.string(s, "alignment") {
            match text.as_str() {
                "aligned" => {}
                "unaligned" => {
                    alignment = BarrierAlignment::Unaligned;
                    unaligned_at = Some(span);
                }
                other => self.d.error(
                    span,
                    format!(
                        "`alignment` in [checkpointing] must be \"aligned\" or \"unaligned\", \
                         not \"{other}\"{}",
                        hint(other, ["aligned", "unaligned"])
                    ),
                ),
            }
        }
        let timeout_span = Self::item(s, "alignment-timeout").map(|(_, v)| v.span());
        if let Some(timeout) = self.duration(s, "alignment-timeout", false) {
            match &unaligned_at {
                Some(span) => self.d.error(
                    span.clone(),
                    "`alignment-timeout` makes aligned barriers go unaligned when alignment \
                     takes longer; with alignment = \"unaligned\" barriers never align: remove \
                     one of the two",
                ),
                None => alignment = BarrierAlignment::AlignedWithTimeout(timeout),
            }
        }
        if alignment.overtakes() && config.mode == CheckpointingMode::AtLeastOnce {
            if let Some(span) = unaligned_at.or(timeout_span) {
                self.d.error(
                    span,
                    "unaligned barriers (and an alignment timeout) need mode = \"exactly-once\"; \
                     at-least-once checkpoints never align barriers",
                );
            }
        }
        alignment
    }

    fn storage(&mut self, text: &str, span: Span) -> Storage {
        let text = text.trim();
        if text == "memory" {
            return Storage::Memory;
        }
        if text.is_empty() {
            self.d.error(
                span,
                "`storage` in [checkpointing] is empty: give a directory, or \"memory\"",
            );
            return Storage::Memory;
        }
        if let Some((scheme, _)) = text.split_once("://") {
            match scheme {
                "file" => return Storage::Local(PathBuf::from(&text["file://".len()..])),
                "s3" => match weir_connector_s3::S3Location::parse(text) {
                    Ok(l) => {
                        return Storage::S3 {
                            bucket: l.bucket,
                            prefix: l.prefix,
                        }
                    }
                    Err(e) => self
                        .d
                        .error(span, format!("checkpoint storage `{text}`: {e}")),
                },
                other => self.d.error(
                    span,
                    format!(
                        "checkpoint storage scheme `{other}://` is not supported: use a local \
                         directory, `file://…`, `s3://bucket/prefix`, or \"memory\""
                    ),
                ),
            }
            return Storage::Memory;
        }
        Storage::Local(PathBuf::from(text))
    }

    pub(super) fn restart(&mut self, root: Section<'_>) -> RestartStrategy {
        let Some(s) = self.section(root, "restart", "[restart]") else {
            return RestartStrategy::None;
        };
        let Some((strategy, span)) = self.string(s, "strategy") else {
            if Self::item(s, "strategy").is_none() {
                self.missing(
                    s,
                    "strategy",
                    "strategy = \"fixed-delay\" (or none, exponential-delay, failure-rate)",
                );
            }
            return RestartStrategy::None;
        };
        let Some((_, allowed)) = STRATEGY_KEYS.iter().find(|(name, _)| *name == strategy) else {
            self.d.error(
                span,
                format!(
                    "unknown restart strategy \"{strategy}\"{}; the strategies are none, \
                     fixed-delay, exponential-delay and failure-rate",
                    hint(&strategy, STRATEGY_KEYS.iter().map(|(name, _)| *name))
                ),
            );
            return RestartStrategy::None;
        };
        let all: BTreeSet<&str> = STRATEGY_KEYS
            .iter()
            .flat_map(|(_, keys)| keys.iter().copied())
            .collect();
        for (key, _) in s.table.iter() {
            if allowed.contains(&key) {
                continue;
            }
            let message = if all.contains(key) {
                format!("`{key}` does not apply to the {strategy} restart strategy")
            } else {
                format!(
                    "unknown key `{key}` in [restart]{}",
                    hint(key, allowed.iter().copied())
                )
            };
            self.d.error(key_span(s.table, key), message);
        }
        let secs = Duration::from_secs;
        let strategy = match strategy.as_str() {
            "fixed-delay" => RestartStrategy::FixedDelay {
                attempts: self
                    .integer(s, "attempts", 0, i64::from(u32::MAX))
                    .map_or(3, |n| n as u32),
                delay: self.duration(s, "delay", false).unwrap_or(secs(1)),
            },
            "exponential-delay" => {
                let RestartStrategy::ExponentialBackoff {
                    initial,
                    max,
                    multiplier,
                    jitter,
                    reset_after,
                    max_attempts,
                } = RestartStrategy::default()
                else {
                    return RestartStrategy::None;
                };
                RestartStrategy::ExponentialBackoff {
                    initial: self.duration(s, "initial-backoff", true).unwrap_or(initial),
                    max: self.duration(s, "max-backoff", true).unwrap_or(max),
                    multiplier: self
                        .float(s, "multiplier", 1.0, 1000.0)
                        .unwrap_or(multiplier),
                    jitter: self.float(s, "jitter", 0.0, 1.0).unwrap_or(jitter),
                    reset_after: self.duration(s, "reset-after", true).unwrap_or(reset_after),
                    max_attempts: self
                        .integer(s, "max-attempts", 0, i64::from(u32::MAX))
                        .map(|n| n as u32)
                        .or(max_attempts),
                }
            }
            "failure-rate" => RestartStrategy::FailureRate {
                max_failures: self
                    .integer(s, "max-failures", 1, i64::from(u32::MAX))
                    .map_or(3, |n| n as u32),
                interval: self.duration(s, "interval", true).unwrap_or(secs(60)),
                delay: self.duration(s, "delay", false).unwrap_or(secs(1)),
            },
            _ => RestartStrategy::None,
        };
        if let Err(problems) = strategy.validate() {
            self.d.error(unpair(s.span), problems);
        }
        strategy
    }
}

//! The settings of a lookup that depend on its table's kind: the `cache` (none, partial or
//! full with its reload trigger), the asynchronous settings (`capacity`, `order`, `timeout`,
//! `on-timeout`, `retry`), and the full cache of a table read whole through its source.

use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use weir_connector_api::row::Row;
use weir_connector_api::source::{Boundedness, Source};
use weir_connector_base::lookup::{
    FullCachingLookupFunction, MissingKeys, ReloadTrigger, RowKey, TimeOfDay,
};
use weir_runtime::lookup::{
    AsyncLookupOptions, OutputOrder, RetryStrategy, RetryWhen, TimeoutAction,
};

use super::super::lookup::{cached_bytes, Answers, LookupTable, PartialCache};
use super::{key_span, pair, Parser, Section, Span};

const ASYNC_KEYS: [&str; 5] = ["capacity", "order", "timeout", "on-timeout", "retry"];
const PARTIAL_KEYS: [&str; 5] = [
    "type",
    "max-rows",
    "expire-after-write",
    "expire-after-access",
    "cache-missing-key",
];
const FULL_KEYS: [&str; 5] = [
    "type",
    "reload-interval",
    "reload-schedule",
    "reload-at",
    "reload-every-days",
];
const RETRY_KEYS: [&str; 3] = ["when", "max-attempts", "delay"];

/// A full cache reloads every hour unless told otherwise.
const DEFAULT_RELOAD: Duration = Duration::from_hours(1);

/// The `cache` of a lookup.
#[derive(Clone, Copy)]
pub(super) enum Cache {
    /// No `cache` key.
    Unset,
    None,
    Partial(PartialCache),
    Full(ReloadTrigger),
}

impl Parser {
    /// `cache = "none" | "partial" | "full"` or a table with `type` and its settings.
    pub(super) fn cache(&mut self, l: Section<'_>) -> Option<Cache> {
        let Some((k, item)) = Self::item(l, "cache") else {
            return Some(Cache::Unset);
        };
        let span = item.span().or_else(|| k.span());
        if let Some(text) = item.as_str() {
            return match text {
                "none" => Some(Cache::None),
                "partial" => Some(Cache::Partial(PartialCache::default())),
                "full" => Some(Cache::Full(ReloadTrigger::FixedDelay(DEFAULT_RELOAD))),
                other => {
                    self.d.error(span, cache_type_error(l.what, other));
                    None
                }
            };
        }
        let Some(table) = item.as_table_like() else {
            self.wrong_type(
                l,
                "cache",
                item,
                "\"none\", \"partial\", \"full\" or a table",
            );
            return None;
        };
        let what = format!("the cache of {}", l.what);
        let c = Section {
            table,
            span: pair(span.clone()),
            what: &what,
        };
        let Some((kind, kind_span)) = self.string(c, "type") else {
            if Self::item(c, "type").is_none() {
                self.missing(c, "type", "type = \"partial\" or type = \"full\"");
            }
            return None;
        };
        match kind.as_str() {
            "none" => {
                self.unknown_keys(c, &["type"]);
                Some(Cache::None)
            }
            "partial" => {
                self.unknown_keys(c, &PARTIAL_KEYS);
                let partial = PartialCache {
                    max_rows: self
                        .integer(c, "max-rows", 1, i64::MAX)
                        .and_then(|n| u64::try_from(n).ok()),
                    expire_after_write: self.duration(c, "expire-after-write", true),
                    expire_after_access: self.duration(c, "expire-after-access", true),
                    missing_keys: match self.boolean(c, "cache-missing-key") {
                        Some(false) => MissingKeys::DoNotCache,
                        _ => MissingKeys::Cache,
                    },
                };
                Some(Cache::Partial(partial))
            }
            "full" => {
                self.unknown_keys(c, &FULL_KEYS);
                self.reload_trigger(c).map(Cache::Full)
            }
            other => {
                self.d.error(kind_span, cache_type_error(l.what, other));
                None
            }
        }
    }

    /// `reload-interval` (with `reload-schedule`) or `reload-at` (with `reload-every-days`).
    pub(super) fn reload_trigger(&mut self, c: Section<'_>) -> Option<ReloadTrigger> {
        let interval = self.duration(c, "reload-interval", true);
        let at = self.string(c, "reload-at");
        let days = self
            .integer(c, "reload-every-days", 1, 3650)
            .and_then(|d| NonZeroU32::new(u32::try_from(d).ok()?));
        let schedule = self.string(c, "reload-schedule");
        if interval.is_some() && at.is_some() {
            self.d.error(
                key_span(c.table, "reload-at"),
                format!(
                    "{} has both `reload-interval` and `reload-at`: reload periodically or at \
                     a time of day, not both",
                    c.what
                ),
            );
            return None;
        }
        if let Some((text, span)) = at {
            if let Some((_, span)) = &schedule {
                self.d.error(
                    span.clone(),
                    format!(
                        "`reload-schedule` of {} goes with `reload-interval`",
                        c.what
                    ),
                );
            }
            return match TimeOfDay::parse(&text) {
                Ok(at) => Some(ReloadTrigger::TimeOfDay(match days {
                    Some(days) => at.every_days(days),
                    None => at,
                })),
                Err(_) => {
                    self.d.error(
                        span,
                        format!(
                            "`reload-at` of {}: `{text}` is not a time of day; write it like \
                             02:30, 02:30:15, 02:30Z or 02:30+01:00 (without an offset: UTC)",
                            c.what
                        ),
                    );
                    None
                }
            };
        }
        if days.is_some() {
            self.d.error(
                key_span(c.table, "reload-every-days"),
                format!("`reload-every-days` of {} goes with `reload-at`", c.what),
            );
        }
        let interval = interval.unwrap_or(DEFAULT_RELOAD);
        match schedule {
            None => Some(ReloadTrigger::FixedDelay(interval)),
            Some((s, _)) if s == "fixed-delay" => Some(ReloadTrigger::FixedDelay(interval)),
            Some((s, _)) if s == "fixed-rate" => Some(ReloadTrigger::FixedRate(interval)),
            Some((other, span)) => {
                self.d.error(
                    span,
                    format!(
                        "`reload-schedule` of {} must be \"fixed-delay\" (the interval counts \
                         from the end of a load) or \"fixed-rate\" (loads start every \
                         interval), not `{other}`",
                        c.what
                    ),
                );
                None
            }
        }
    }

    /// `capacity`, `order`, `timeout`, `on-timeout` and `retry` (asynchronous tables).
    pub(super) fn async_options(&mut self, l: Section<'_>) -> AsyncLookupOptions {
        let mut options = AsyncLookupOptions::default();
        if let Some(n) = self.integer(l, "capacity", 1, 100_000) {
            options = options.capacity(usize::try_from(n).unwrap_or(1));
        }
        if let Some((text, span)) = self.string(l, "order") {
            match text.as_str() {
                "ordered" => options = options.order(OutputOrder::Ordered),
                "unordered" => options = options.order(OutputOrder::Unordered),
                other => self.d.error(
                    span,
                    format!(
                        "`order` of {} must be \"ordered\" (rows leave in arrival order) or \
                         \"unordered\" (as their lookups finish), not `{other}`",
                        l.what
                    ),
                ),
            }
        }
        if let Some(timeout) = self.duration(l, "timeout", true) {
            options = options.timeout(timeout);
        }
        if let Some((text, span)) = self.string(l, "on-timeout") {
            match text.as_str() {
                "fail" => options = options.on_timeout(TimeoutAction::Fail),
                "empty" => options = options.on_timeout(TimeoutAction::EmptyResult),
                other => self.d.error(
                    span,
                    format!(
                        "`on-timeout` of {} must be \"fail\" (the job restarts) or \"empty\" \
                         (no rows for that record), not `{other}`",
                        l.what
                    ),
                ),
            }
        }
        if let Some(retry) = self.retry(l) {
            options = options.retry(retry);
        }
        options
    }

    /// `retry = { when = "empty" | "error" | "empty-or-error", max-attempts = 3, delay = "1s" }`.
    pub(super) fn retry(&mut self, l: Section<'_>) -> Option<RetryStrategy> {
        let what = format!("`retry` of {}", l.what);
        let r = self.section(l, "retry", &what)?;
        self.unknown_keys(r, &RETRY_KEYS);
        let when = match self.string(r, "when") {
            Some((text, span)) => match text.as_str() {
                "empty" => Some(RetryWhen::EmptyResult),
                "error" => Some(RetryWhen::Error),
                "empty-or-error" => Some(RetryWhen::EmptyResultOrError),
                other => {
                    self.d.error(
                        span,
                        format!(
                            "`when` of {what} must be \"empty\", \"error\" or \
                             \"empty-or-error\", not `{other}`"
                        ),
                    );
                    None
                }
            },
            None => {
                if Self::item(r, "when").is_none() {
                    self.missing(r, "when", "when = \"empty-or-error\"");
                }
                None
            }
        };
        let attempts = self
            .integer(r, "max-attempts", 2, 100)
            .and_then(|n| NonZeroU32::new(u32::try_from(n).ok()?));
        if attempts.is_none() && Self::item(r, "max-attempts").is_none() {
            self.missing(
                r,
                "max-attempts",
                "max-attempts = 3 (the first attempt included)",
            );
        }
        let delay = self.duration(r, "delay", false);
        if delay.is_none() && Self::item(r, "delay").is_none() {
            self.missing(r, "delay", "delay = \"1s\"");
        }
        Some(RetryStrategy::FixedDelay {
            max_attempts: attempts?,
            delay: delay?,
            when: when?,
        })
    }

    /// The partial cache (or none) of a table answered by the connector's lookup function.
    #[allow(clippy::option_option)] // None: invalid; Some(None): no cache
    pub(super) fn function_cache(
        &mut self,
        l: Section<'_>,
        answers: Answers,
        cache: Cache,
        what: &str,
    ) -> Option<Option<PartialCache>> {
        if answers == Answers::Synchronously {
            self.no_async_keys(l, what, "answers lookups synchronously");
        }
        let cache_span = Self::item(l, "cache").and_then(|(k, i)| i.span().or(k.span()));
        match cache {
            Cache::Unset | Cache::None => Some(None),
            Cache::Partial(partial) => match partial.build() {
                Ok(_) => Some(Some(partial)),
                Err(e) => {
                    for error in &e {
                        self.d
                            .error(cache_span.clone(), format!("the cache of {what}: {error}"));
                    }
                    None
                }
            },
            Cache::Full(_) => {
                self.d.error(
                    cache_span,
                    format!(
                        "{what}: the connector answers key by key and offers no scan of the \
                         whole table, so it cannot be cached in full: use cache = \"none\" or a \
                         partial cache"
                    ),
                );
                None
            }
        }
    }

    /// The reload trigger of a table read whole through a source (a full cache).
    pub(super) fn full_trigger(
        &mut self,
        l: Section<'_>,
        cache: &Cache,
        what: &str,
    ) -> Option<ReloadTrigger> {
        self.no_async_keys(l, what, "is read whole into memory and answers from there");
        match cache {
            Cache::Unset => Some(ReloadTrigger::FixedDelay(DEFAULT_RELOAD)),
            Cache::Full(trigger) => Some(*trigger),
            Cache::None | Cache::Partial(_) => {
                self.d.error(
                    Self::item(l, "cache").and_then(|(k, i)| i.span().or(k.span())),
                    format!(
                        "{what}: the table is read whole through its source, so it is cached \
                         in full: use cache = \"full\" (or a table with type = \"full\" and \
                         its reload settings)"
                    ),
                );
                None
            }
        }
    }

    /// A table read whole through a bounded source into a full cache.
    pub(super) fn full_table(
        &mut self,
        source: weir_connector_api::erased::BoxedSource<Row>,
        table_keys: Vec<usize>,
        trigger: ReloadTrigger,
        id_span: Span,
        what: &str,
    ) -> Option<LookupTable> {
        if source.boundedness() != Boundedness::Bounded {
            self.d.error(
                id_span,
                format!(
                    "{what}: the table's source does not end (it is continuous), so it cannot be \
                     loaded whole: configure it to read once (e.g. without \
                     `source.monitor-interval`)"
                ),
            );
            return None;
        }
        let built = FullCachingLookupFunction::builder(
            source,
            move |row: &Row| RowKey::project(row, &table_keys),
            trigger,
        )
        .readers(NonZeroUsize::MIN)
        .size_of(cached_bytes)
        .build();
        match built {
            Ok(function) => Some(LookupTable::Full(function)),
            Err(e) => {
                for error in &e {
                    self.d
                        .error(id_span.clone(), format!("the cache of {what}: {error}"));
                }
                None
            }
        }
    }

    /// Reports the asynchronous settings on a table that does not run asynchronously.
    pub(super) fn no_async_keys(&mut self, l: Section<'_>, what: &str, because: &str) {
        for key in ASYNC_KEYS {
            if Self::item(l, key).is_some() {
                self.d.error(
                    key_span(l.table, key),
                    format!(
                        "`{key}` of {what} applies to asynchronous lookup tables, but this \
                         table {because}"
                    ),
                );
            }
        }
    }
}

fn cache_type_error(what: &str, other: &str) -> String {
    format!("the cache of {what} must be \"none\", \"partial\" or \"full\", not `{other}`")
}

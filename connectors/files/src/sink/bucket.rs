//! Bucket assigners: which directory (relative to the sink's base path) a record goes to.

use std::fmt::Write as _;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

/// What an assigner may look at besides the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketContext {
    /// The writer's processing time, milliseconds since the epoch (refreshed every few records).
    pub processing_time_millis: i64,
    /// The record's event time, if it has one.
    pub timestamp: Option<i64>,
    /// The writer's current watermark.
    pub watermark: i64,
}

/// Assigns records to buckets (sub-directories of the base path; `""` is the base path).
pub trait BucketAssigner<T>: Send + Sync + 'static {
    /// The bucket of `element`.
    fn bucket_id(&self, element: &T, ctx: &BucketContext) -> String;
}

impl<T, F> BucketAssigner<T> for F
where
    F: Fn(&T, &BucketContext) -> String + Send + Sync + 'static,
{
    fn bucket_id(&self, element: &T, ctx: &BucketContext) -> String {
        self(element, ctx)
    }
}

/// Every record goes to the base path.
#[derive(Debug, Clone, Copy, Default)]
pub struct BasePathBucketAssigner;

impl<T> BucketAssigner<T> for BasePathBucketAssigner {
    fn bucket_id(&self, _element: &T, _ctx: &BucketContext) -> String {
        String::new()
    }
}

/// Which clock a [`DateTimeBucketAssigner`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeSource {
    /// The writer's processing time (Flink's default).
    ProcessingTime,
    /// The record's event time (processing time for records without one).
    EventTime,
}

weir_connector_api::config_enum!(TimeSource {
    "processing-time" => ProcessingTime,
    "event-time" => EventTime,
});

/// Buckets named by formatting a time in UTC with a `chrono` format string, default
/// `%Y-%m-%d--%H` (Flink's `yyyy-MM-dd--HH`): one directory per hour.
#[derive(Debug)]
pub struct DateTimeBucketAssigner {
    format: String,
    source: TimeSource,
    /// The seconds over which the format's names stay the same (a day, an hour, a minute or
    /// one second), so a name is formatted once per such span rather than per record.
    unit: i64,
    /// The last formatted span (`time / unit`) and its name.
    cache: Mutex<(i64, String)>,
}

impl Default for DateTimeBucketAssigner {
    fn default() -> Self {
        Self::new("%Y-%m-%d--%H")
    }
}

impl Clone for DateTimeBucketAssigner {
    fn clone(&self) -> Self {
        DateTimeBucketAssigner::new(&self.format).time_source(self.source)
    }
}

impl DateTimeBucketAssigner {
    /// An assigner with a `chrono` format string (processing time).
    pub fn new(format: &str) -> Self {
        DateTimeBucketAssigner {
            format: format.to_owned(),
            source: TimeSource::ProcessingTime,
            unit: name_unit(format),
            cache: Mutex::new((i64::MIN, String::new())),
        }
    }

    /// Sets the clock.
    pub fn time_source(mut self, source: TimeSource) -> Self {
        self.source = source;
        self
    }

    /// Checks the format string: an invalid one is reported rather than producing garbage, and
    /// one whose buckets would not be plain sub-directories of the base path (`..`, `.`, a
    /// leading `/`, empty parts, `\\` or control characters) is refused, so no bucket can leave
    /// the sink's path.
    ///
    /// What a format renders differs between times only in digits, letters, signs and spaces,
    /// never in `/` or in whether a part is `.` or `..` (buckets are named per whole second,
    /// so `%.f` is always empty): checking a few times checks them all.
    pub fn validate(format: &str) -> Result<(), String> {
        use chrono::format::{Item, StrftimeItems};
        if StrftimeItems::new(format).any(|i| matches!(i, Item::Error)) {
            return Err(format!("`{format}` is not a valid chrono format string"));
        }
        // 1970, 2024, the last second of 9999 and the first of 10000 (`+10000`).
        for second in [0, 1_709_210_096, 253_402_300_799, 253_402_300_800] {
            let time: DateTime<Utc> = DateTime::from_timestamp(second, 0).unwrap_or_default();
            let mut bucket = String::new();
            if write!(bucket, "{}", time.format(format)).is_err() {
                return Err(format!("`{format}` cannot format the time {time}"));
            }
            if let Some(problem) = relative_dir_problem(&bucket) {
                return Err(format!(
                    "`{format}` makes bucket directories like `{bucket}`, which {problem}: \
                     buckets must stay inside the sink's path; use `/`-separated names without \
                     `.`, `..` or empty parts"
                ));
            }
        }
        Ok(())
    }

    /// The span of `millis` (see `name_unit`): times of one span have one name.
    pub(crate) fn span_of(&self, millis: i64) -> i64 {
        millis.div_euclid(1000).div_euclid(self.unit)
    }

    pub(crate) fn format_millis(&self, millis: i64) -> String {
        let second = millis.div_euclid(1000);
        let span = second.div_euclid(self.unit);
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.0 != span {
            let time: DateTime<Utc> = DateTime::from_timestamp(second, 0).unwrap_or_default();
            let mut text = String::new();
            if write!(text, "{}", time.format(&self.format)).is_err() {
                text = time.format("%Y-%m-%d--%H").to_string();
            }
            *cache = (span, text);
        }
        cache.1.clone()
    }
}

/// The longest span — a day, an hour, a minute, else a second, each starting at a multiple of
/// itself since the epoch (UTC has no leap seconds here) — over which `format` gives every
/// second the same name, found by formatting sample seconds of such spans on a few days:
/// every hour, minute and second position that a format item can show is varied (`%S` and
/// `%s` change within a minute, `%M` within an hour, `%H`, `%I` and `%p` within a day).
fn name_unit(format: &str) -> i64 {
    use chrono::format::{Item, StrftimeItems};
    if StrftimeItems::new(format).any(|i| matches!(i, Item::Error)) {
        return 1;
    }
    let name = |second: i64| {
        let time: DateTime<Utc> = DateTime::from_timestamp(second, 0).unwrap_or_default();
        let mut text = String::new();
        let _ = write!(text, "{}", time.format(format));
        text
    };
    // 2024-02-29 (a leap day) and 2025-12-31 (a year's last day), at midnight UTC.
    let days = [1_709_164_800_i64, 1_767_139_200];
    let same_over = |unit: i64, offsets: &[i64]| {
        days.iter().all(|day| {
            let start = day - day.rem_euclid(unit);
            let first = name(start);
            offsets.iter().all(|o| name(start + o) == first)
        })
    };
    let seconds = [0, 1, 29, 30, 58, 59];
    let mut in_day = Vec::new();
    let mut in_hour = Vec::new();
    for m in 0..60 {
        for s in seconds {
            in_hour.push(m * 60 + s);
            if [0, 1, 29, 30, 59].contains(&m) {
                in_day.extend((0..24).map(|h| h * 3_600 + m * 60 + s));
            }
        }
    }
    let in_minute: Vec<i64> = (0..60).collect();
    if same_over(86_400, &in_day) {
        86_400
    } else if same_over(3_600, &in_hour) {
        3_600
    } else if same_over(60, &in_minute) {
        60
    } else {
        1
    }
}

/// Why `dir` is not a plain relative directory (`""` is: the base path itself), if it is not.
pub(crate) fn relative_dir_problem(dir: &str) -> Option<&'static str> {
    if dir.is_empty() {
        return None;
    }
    if dir.starts_with('/') {
        return Some("start with `/`");
    }
    if dir.chars().any(|c| c == '\\' || c.is_control()) {
        return Some("contain `\\` or control characters");
    }
    for part in dir.split('/') {
        match part {
            "" => return Some("have an empty part (`//` or a trailing `/`)"),
            "." | ".." => return Some("have a `.` or `..` part"),
            _ => {}
        }
    }
    None
}

impl<T> BucketAssigner<T> for DateTimeBucketAssigner {
    fn bucket_id(&self, _element: &T, ctx: &BucketContext) -> String {
        let millis = match self.source {
            TimeSource::ProcessingTime => ctx.processing_time_millis,
            TimeSource::EventTime => ctx.timestamp.unwrap_or(ctx.processing_time_millis),
        };
        self.format_millis(millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_time_buckets_format_utc() {
        let a = DateTimeBucketAssigner::default();
        let ctx = BucketContext {
            processing_time_millis: 1_709_210_096_000,
            timestamp: Some(0),
            watermark: 0,
        };
        assert_eq!(
            BucketAssigner::<u8>::bucket_id(&a, &0, &ctx),
            "2024-02-29--12"
        );
        let e = DateTimeBucketAssigner::new("%Y/%m/%d").time_source(TimeSource::EventTime);
        assert_eq!(BucketAssigner::<u8>::bucket_id(&e, &0, &ctx), "1970/01/01");
        assert!(DateTimeBucketAssigner::validate("%Y-%Q").is_err());
        assert!(DateTimeBucketAssigner::validate("%Y-%m").is_ok());
    }

    #[test]
    fn formats_whose_buckets_leave_the_base_path_are_refused() {
        for ok in [
            "%Y/%m/%d",
            "%Y-%m-%d--%H",
            "dt=%F/hour=%H",
            "%D",
            "a.b/%Y..%m",
            "",
        ] {
            assert_eq!(DateTimeBucketAssigner::validate(ok), Ok(()), "{ok}");
        }
        let refused = |f: &str| DateTimeBucketAssigner::validate(f).unwrap_err();
        assert_eq!(
            refused("../../escape-%Y"),
            "`../../escape-%Y` makes bucket directories like `../../escape-1970`, which have \
             a `.` or `..` part: buckets must stay inside the sink's path; use `/`-separated \
             names without `.`, `..` or empty parts"
        );
        for bad in [
            "%Y/../../x",
            "%Y/..",
            "..%.f",
            ".%.f.",
            "./%Y",
            "/etc/%Y",
            "%Y//%m",
            "%Y/",
            "..\\%Y",
            "%Y\u{0}",
        ] {
            assert!(DateTimeBucketAssigner::validate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_formatted_once_per_span_and_equal_formatting_each_time() {
        for (format, unit) in [
            ("%Y-%m-%d", 86_400),
            ("%F/%j", 86_400),
            ("", 86_400),
            ("%Y-%m-%d--%H", 3_600),
            ("%p", 3_600),
            ("%I", 3_600),
            ("%H-%M", 60),
            ("%H-%M-%S", 1),
            ("%s", 1),
            ("%T", 1),
        ] {
            assert_eq!(name_unit(format), unit, "{format}");
            let cached = DateTimeBucketAssigner::new(format);
            // Times in order and out of order, across seconds, minutes, hours and days.
            let mut t: i64 = 1_700_000_000_123;
            for step in 0..20_000_i64 {
                t += (step * 7_919) % 250_000_000 - 90_000_000;
                let time: DateTime<Utc> =
                    DateTime::from_timestamp(t.div_euclid(1000), 0).unwrap_or_default();
                let direct = time.format(format).to_string();
                assert_eq!(cached.format_millis(t), direct, "{format} at {t}");
            }
        }
    }
}

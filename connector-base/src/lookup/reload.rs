//! When a full cache reloads its table (Flink's `CacheReloadTrigger`s): periodically with a
//! fixed delay or at a fixed rate, or at a time of day.

use std::fmt;
use std::num::NonZeroU32;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;
use weir_connector_api::config::{ConfigError, ConfigErrors};

/// Option keys the configuration errors name (Flink's `lookup.full-cache.*` keys).
pub mod keys {
    /// `PERIODIC` or `TIMED`.
    pub const RELOAD_STRATEGY: &str = "lookup.full-cache.reload-strategy";
    /// The period of a periodic reload.
    pub const PERIODIC_INTERVAL: &str = "lookup.full-cache.periodic-reload.interval";
    /// `FIXED_DELAY` or `FIXED_RATE`.
    pub const PERIODIC_SCHEDULE_MODE: &str = "lookup.full-cache.periodic-reload.schedule-mode";
    /// The time of day of a timed reload.
    pub const TIMED_ISO_TIME: &str = "lookup.full-cache.timed-reload.iso-time";
    /// Days between two timed reloads.
    pub const TIMED_INTERVAL_DAYS: &str = "lookup.full-cache.timed-reload.interval-in-days";
}

const DAY: Duration = Duration::from_secs(24 * 3600);
const SECONDS_PER_DAY: i64 = 24 * 3600;

/// When the table is loaded again after a load (the first load happens when the cache opens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadTrigger {
    /// The next load starts this long after the previous one **finished** (Flink's periodic
    /// reload with schedule mode `FIXED_DELAY`).
    FixedDelay(Duration),
    /// Loads start on a fixed grid: the first load's start, then every period (Flink's
    /// `FIXED_RATE`). A load that runs past one or more grid points is followed by the next
    /// point after it ends; missed points are skipped, never run back to back.
    FixedRate(Duration),
    /// At a time of day, every [`TimeOfDay::interval_days`] days (Flink's timed reload).
    TimeOfDay(TimeOfDay),
}

impl ReloadTrigger {
    /// Every problem with the trigger's settings.
    pub(crate) fn validate(&self) -> Result<(), ConfigErrors> {
        match self {
            ReloadTrigger::FixedDelay(d) | ReloadTrigger::FixedRate(d) if d.is_zero() => {
                Err(ConfigErrors::new(
                    "lookup full cache",
                    vec![ConfigError::Rejected {
                        key: keys::PERIODIC_INTERVAL.to_owned(),
                        value: format!("{d:?}"),
                        reason: "must be longer than zero".to_owned(),
                    }],
                ))
            }
            _ => Ok(()),
        }
    }
}

/// A time of day with a fixed UTC offset, for [`ReloadTrigger::TimeOfDay`].
///
/// ```
/// use weir_connector_base::lookup::TimeOfDay;
///
/// let at = TimeOfDay::parse("02:30+01:00")?;
/// assert_eq!(at.seconds_after_midnight(), 2 * 3600 + 30 * 60);
/// assert_eq!(at.utc_offset_seconds(), 3600);
/// assert_eq!(at.to_string(), "02:30:00+01:00");
/// assert!(TimeOfDay::parse("25:00").is_err());
/// # Ok::<(), weir_connector_api::config::ConfigErrors>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeOfDay {
    seconds: u32,
    offset: i32,
    interval_days: NonZeroU32,
}

impl TimeOfDay {
    /// `hour:minute[:second]` with an optional `Z` or `±hh:mm` UTC offset (ISO-8601, as
    /// Flink's `lookup.full-cache.timed-reload.iso-time`); without an offset the time is UTC
    /// (not the machine's local time: the reload time should not move with its time zone).
    /// Every day; see [`TimeOfDay::every_days`].
    pub fn parse(text: &str) -> Result<Self, ConfigErrors> {
        parse_iso_time(text.trim()).ok_or_else(|| {
            ConfigErrors::new(
                "lookup full cache",
                vec![ConfigError::Rejected {
                    key: keys::TIMED_ISO_TIME.to_owned(),
                    value: text.to_owned(),
                    reason: "expected an ISO-8601 time of day such as 02:30, 02:30:15, \
                             02:30Z or 02:30+01:00"
                        .to_owned(),
                }],
            )
        })
    }

    /// Reload every `days` days instead of every day
    /// (`lookup.full-cache.timed-reload.interval-in-days`).
    #[must_use]
    pub fn every_days(mut self, days: NonZeroU32) -> Self {
        self.interval_days = days;
        self
    }

    /// Seconds after midnight in the time's own offset.
    pub fn seconds_after_midnight(&self) -> u32 {
        self.seconds
    }

    /// The UTC offset in seconds (east positive).
    pub fn utc_offset_seconds(&self) -> i32 {
        self.offset
    }

    /// Days between two reloads.
    pub fn interval_days(&self) -> NonZeroU32 {
        self.interval_days
    }

    /// How long from `unix_millis` (wall-clock time) until the next time this time of day is
    /// reached (never zero: a time reached right now is a day away).
    pub fn delay_from(&self, unix_millis: i64) -> Duration {
        // The target in UTC seconds after midnight.
        let target = (i64::from(self.seconds) - i64::from(self.offset)).rem_euclid(SECONDS_PER_DAY);
        let now_ms_of_day = unix_millis.rem_euclid(SECONDS_PER_DAY * 1000);
        let mut delay_ms = target * 1000 - now_ms_of_day;
        if delay_ms <= 0 {
            delay_ms += SECONDS_PER_DAY * 1000;
        }
        Duration::from_millis(u64::try_from(delay_ms).unwrap_or(0))
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (h, m, s) = (
            self.seconds / 3600,
            self.seconds / 60 % 60,
            self.seconds % 60,
        );
        write!(f, "{h:02}:{m:02}:{s:02}")?;
        if self.offset == 0 {
            return f.write_str("Z");
        }
        let sign = if self.offset < 0 { '-' } else { '+' };
        let abs = self.offset.unsigned_abs();
        write!(f, "{sign}{:02}:{:02}", abs / 3600, abs / 60 % 60)
    }
}

fn two_digits(text: &str, max: u32) -> Option<u32> {
    if text.len() != 2 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|v| *v <= max)
}

fn parse_iso_time(text: &str) -> Option<TimeOfDay> {
    let (time, offset) = if let Some(time) = text.strip_suffix('Z') {
        (time, 0)
    } else if let Some(at) = text.rfind(['+', '-']) {
        let (time, zone) = text.split_at(at);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let (h, m) = zone.get(1..)?.split_once(':')?;
        let seconds = two_digits(h, 18)? * 3600 + two_digits(m, 59)? * 60;
        (time, sign * i32::try_from(seconds).ok()?)
    } else {
        (text, 0)
    };
    let mut parts = time.split(':');
    let h = two_digits(parts.next()?, 23)?;
    let m = two_digits(parts.next()?, 59)?;
    let s = match parts.next() {
        Some(s) => two_digits(s, 59)?,
        None => 0,
    };
    if parts.next().is_some() {
        return None;
    }
    Some(TimeOfDay {
        seconds: h * 3600 + m * 60 + s,
        offset,
        interval_days: NonZeroU32::MIN,
    })
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn unix_millis_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The reload schedule of one loader: when the next load starts.
#[derive(Debug)]
pub(crate) struct Schedule {
    trigger: ReloadTrigger,
    /// The last grid point or time-of-day slot used.
    slot: Option<Instant>,
}

impl Schedule {
    pub(crate) fn new(trigger: ReloadTrigger) -> Self {
        Schedule {
            trigger,
            slot: None,
        }
    }

    /// The start of the next load, after a load that ran from `started` to `finished`;
    /// `unix_millis` is the wall-clock time at `finished` (for the time of day).
    pub(crate) fn next(
        &mut self,
        started: Instant,
        finished: Instant,
        unix_millis: i64,
    ) -> Instant {
        match self.trigger {
            ReloadTrigger::FixedDelay(delay) => finished + delay,
            ReloadTrigger::FixedRate(period) => {
                let base = *self.slot.get_or_insert(started);
                let next = first_point_after(base, period, finished);
                self.slot = Some(next);
                next
            }
            ReloadTrigger::TimeOfDay(at) => {
                let period = DAY * at.interval_days.get();
                let next = match self.slot {
                    // The first reload: the next time the wall clock shows the time of day.
                    None => finished + at.delay_from(unix_millis),
                    Some(slot) => first_point_after(slot, period, finished),
                };
                self.slot = Some(next);
                next
            }
        }
    }
}

/// The first `base + k * period` (k ≥ 1) at or after `not_before`.
fn first_point_after(base: Instant, period: Duration, not_before: Instant) -> Instant {
    let next = base + period;
    if next >= not_before {
        return next;
    }
    let behind = not_before.duration_since(base).as_nanos();
    let steps = behind.div_ceil(period.as_nanos().max(1));
    let steps = u32::try_from(steps).unwrap_or(u32::MAX);
    base + period.saturating_mul(steps)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn fixed_delay_counts_from_the_end_of_a_load() {
        let t0 = Instant::now();
        let mut s = Schedule::new(ReloadTrigger::FixedDelay(100 * MS));
        assert_eq!(s.next(t0, t0 + 30 * MS, 0), t0 + 130 * MS);
        assert_eq!(s.next(t0 + 130 * MS, t0 + 300 * MS, 0), t0 + 400 * MS);
    }

    #[test]
    fn fixed_rate_keeps_the_grid_and_skips_missed_points() {
        let t0 = Instant::now();
        let mut s = Schedule::new(ReloadTrigger::FixedRate(100 * MS));
        assert_eq!(s.next(t0, t0 + 30 * MS, 0), t0 + 100 * MS);
        // A load of 250 ms from 100: points 200 and 300 are missed, 400 is next.
        assert_eq!(s.next(t0 + 100 * MS, t0 + 350 * MS, 0), t0 + 400 * MS);
        // A load ending exactly on a point starts the next one right away.
        assert_eq!(s.next(t0 + 400 * MS, t0 + 500 * MS, 0), t0 + 500 * MS);
    }

    #[test]
    fn time_of_day_waits_for_the_wall_clock_then_keeps_whole_days() {
        let at = TimeOfDay::parse("02:00").unwrap();
        let one_am = 3600 * 1000;
        assert_eq!(at.delay_from(one_am), Duration::from_secs(3600));
        // At 02:00 exactly, the next is tomorrow.
        assert_eq!(at.delay_from(2 * 3600 * 1000), DAY);
        // Past it: tomorrow, also across a year boundary.
        let day_ms = SECONDS_PER_DAY * 1000;
        assert_eq!(
            at.delay_from(400 * day_ms + 3 * 3600 * 1000),
            Duration::from_secs(23 * 3600)
        );
        let t0 = Instant::now();
        let mut s = Schedule::new(ReloadTrigger::TimeOfDay(
            at.every_days(NonZeroU32::new(2).unwrap()),
        ));
        let first = s.next(t0, t0 + MS, one_am);
        assert_eq!(first, t0 + MS + Duration::from_secs(3600));
        assert_eq!(s.next(first, first + 5 * MS, 0), first + 2 * DAY);
    }

    #[test]
    fn offsets_move_the_time_of_day_in_utc() {
        // 02:00 at +01:00 is 01:00 UTC; at -03:30 it is 05:30 UTC.
        let plus = TimeOfDay::parse("02:00+01:00").unwrap();
        assert_eq!(plus.delay_from(0), Duration::from_secs(3600));
        let minus = TimeOfDay::parse("02:00:00-03:30").unwrap();
        assert_eq!(minus.delay_from(0), Duration::from_secs(5 * 3600 + 1800));
        // 00:30 at +01:00 is 23:30 UTC the day before.
        let wrap = TimeOfDay::parse("00:30+01:00").unwrap();
        assert_eq!(wrap.delay_from(0), Duration::from_secs(23 * 3600 + 1800));
        assert_eq!(TimeOfDay::parse("00:30Z").unwrap().to_string(), "00:30:00Z");
        assert_eq!(wrap.to_string(), "00:30:00+01:00");
    }

    #[test]
    fn malformed_times_are_refused_with_the_key() {
        for bad in [
            "",
            "2:00",
            "24:00",
            "12:60",
            "12:00:00:00",
            "12:00+1",
            "noon",
            "12:00+19:00",
        ] {
            let error = TimeOfDay::parse(bad).unwrap_err();
            assert!(
                error.to_string().contains(keys::TIMED_ISO_TIME),
                "{bad}: {error}"
            );
        }
        assert!(ReloadTrigger::FixedDelay(Duration::ZERO)
            .validate()
            .is_err());
        assert!(ReloadTrigger::FixedRate(MS).validate().is_ok());
    }
}

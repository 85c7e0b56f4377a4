//! Value types an option can hold: the [`OptionValue`] trait, its implementations, durations,
//! [`MemorySize`] and enums through [`ConfigEnum`].

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A type an option value can be parsed into, rendered from, and documented as.
///
/// Implemented for `String`, `bool`, `u16`, `u32`, `u64`, `usize`, `i32`, `i64`, `f64`,
/// [`Duration`], [`MemorySize`], `Vec<String>` and every [`ConfigEnum`].
pub trait OptionValue: Clone + Send + Sync + 'static {
    /// Parses a user-supplied value. On failure, returns what was expected, phrased to follow
    /// "expected", e.g. `an integer between 0 and 65535`.
    fn parse_value(raw: &str) -> Result<Self, String>;

    /// Renders the value so that [`OptionValue::parse_value`] reads it back unchanged.
    fn render_value(&self) -> String;

    /// The type name shown in generated documentation, e.g. `Duration`.
    fn type_name() -> Cow<'static, str>;

    /// The accepted values, for types with a closed set of values (enums); `None` otherwise.
    fn allowed_values() -> Option<Vec<&'static str>> {
        None
    }

    /// Last-resort value returned by [`ValidatedConfig::get`](super::ValidatedConfig::get) for
    /// an option that has neither a validated value nor a default. This only happens when an
    /// option is read from a configuration validated by a set that does not declare it.
    fn fallback() -> Self;
}

impl OptionValue for String {
    fn parse_value(raw: &str) -> Result<Self, String> {
        Ok(raw.to_owned())
    }
    fn render_value(&self) -> String {
        self.clone()
    }
    fn type_name() -> Cow<'static, str> {
        Cow::Borrowed("String")
    }
    fn fallback() -> Self {
        String::new()
    }
}

impl OptionValue for bool {
    fn parse_value(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.eq_ignore_ascii_case("true") {
            Ok(true)
        } else if raw.eq_ignore_ascii_case("false") {
            Ok(false)
        } else {
            Err("`true` or `false`".to_owned())
        }
    }
    fn render_value(&self) -> String {
        self.to_string()
    }
    fn type_name() -> Cow<'static, str> {
        Cow::Borrowed("bool")
    }
    fn fallback() -> Self {
        false
    }
}

macro_rules! integer_value {
    ($($t:ty),*) => {$(
        impl OptionValue for $t {
            fn parse_value(raw: &str) -> Result<Self, String> {
                raw.trim().parse::<$t>().map_err(|_| {
                    format!("an integer between {} and {}", <$t>::MIN, <$t>::MAX)
                })
            }
            fn render_value(&self) -> String {
                self.to_string()
            }
            fn type_name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($t))
            }
            fn fallback() -> Self {
                0
            }
        }
    )*};
}

integer_value!(u16, u32, u64, usize, i32, i64);

impl OptionValue for f64 {
    fn parse_value(raw: &str) -> Result<Self, String> {
        match raw.trim().parse::<f64>() {
            Ok(value) if value.is_finite() => Ok(value),
            _ => Err("a finite number such as `0.75`".to_owned()),
        }
    }
    fn render_value(&self) -> String {
        self.to_string()
    }
    fn type_name() -> Cow<'static, str> {
        Cow::Borrowed("f64")
    }
    fn fallback() -> Self {
        0.0
    }
}

impl OptionValue for Vec<String> {
    /// Splits on `,` and `;`, trims every item and drops empty items. Never fails.
    fn parse_value(raw: &str) -> Result<Self, String> {
        Ok(raw
            .split([',', ';'])
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_owned)
            .collect())
    }
    fn render_value(&self) -> String {
        self.join(",")
    }
    fn type_name() -> Cow<'static, str> {
        Cow::Borrowed("List<String>")
    }
    fn fallback() -> Self {
        Vec::new()
    }
}

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Duration units, largest first: (rendered name, accepted spellings, length in nanoseconds).
const DURATION_UNITS: &[(&str, &[&str], u128)] = &[
    ("d", &["d", "day", "days"], 86_400 * NANOS_PER_SEC),
    ("h", &["h", "hour", "hours"], 3_600 * NANOS_PER_SEC),
    (
        "min",
        &["m", "min", "mins", "minute", "minutes"],
        60 * NANOS_PER_SEC,
    ),
    (
        "s",
        &["s", "sec", "secs", "second", "seconds"],
        NANOS_PER_SEC,
    ),
    (
        "ms",
        &["ms", "milli", "millis", "millisecond", "milliseconds"],
        1_000_000,
    ),
    (
        "us",
        &["us", "µs", "micro", "micros", "microsecond", "microseconds"],
        1_000,
    ),
    (
        "ns",
        &["ns", "nano", "nanos", "nanosecond", "nanoseconds"],
        1,
    ),
];

const DURATION_EXPECTED: &str =
    "a duration such as `500ms`, `10 s`, `2 min`, `1h` or `1d` (a plain number means milliseconds)";

/// Splits `raw` into a non-negative integer and a lower-cased unit (possibly empty).
fn split_number_unit(raw: &str) -> Option<(u128, String)> {
    let raw = raw.trim();
    let digits_end = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (digits, unit) = raw.split_at(digits_end);
    let number = digits.parse::<u128>().ok()?;
    Some((number, unit.trim().to_lowercase()))
}

/// Parses a duration: an integer followed by an optional unit (`ns`, `us`, `ms`, `s`, `min`/`m`,
/// `h`, `d`, or their long forms such as `seconds`), case-insensitive, with or without a space.
/// A plain number means milliseconds. On failure, returns what was expected.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let expected = || DURATION_EXPECTED.to_owned();
    let (number, unit) = split_number_unit(raw).ok_or_else(expected)?;
    let unit_nanos = if unit.is_empty() {
        1_000_000
    } else {
        DURATION_UNITS
            .iter()
            .find(|(_, spellings, _)| spellings.contains(&unit.as_str()))
            .map(|(_, _, nanos)| *nanos)
            .ok_or_else(expected)?
    };
    let total = number.checked_mul(unit_nanos).ok_or_else(expected)?;
    let secs = u64::try_from(total / NANOS_PER_SEC).map_err(|_| expected())?;
    let nanos = u32::try_from(total % NANOS_PER_SEC).map_err(|_| expected())?;
    Ok(Duration::new(secs, nanos))
}

/// Renders a duration in the largest unit that represents it exactly, e.g. `500 ms`, `2 min`,
/// `1 h`; zero renders as `0 ms`. [`parse_duration`] reads the result back unchanged.
pub fn format_duration(duration: Duration) -> String {
    let total = duration.as_nanos();
    if total == 0 {
        return "0 ms".to_owned();
    }
    for (name, _, nanos) in DURATION_UNITS {
        if total % nanos == 0 {
            return format!("{} {name}", total / nanos);
        }
    }
    format!("{total} ns")
}

impl OptionValue for Duration {
    fn parse_value(raw: &str) -> Result<Self, String> {
        parse_duration(raw)
    }
    fn render_value(&self) -> String {
        format_duration(*self)
    }
    fn type_name() -> Cow<'static, str> {
        Cow::Borrowed("Duration")
    }
    fn fallback() -> Self {
        Duration::ZERO
    }
}

/// An amount of memory in bytes. Units are binary: `1 kb` is 1024 bytes.
///
/// Parses `1024`, `64kb`, `10 mb`, `1gb`, `2 tb` (also `k`, `kib`, `b`, `bytes`, …,
/// case-insensitive) and renders in the largest exact unit, e.g. `64 kb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MemorySize(u64);

/// Memory units, largest first: (rendered name, accepted spellings, length in bytes).
const MEMORY_UNITS: &[(&str, &[&str], u64)] = &[
    ("tb", &["t", "tb", "tib", "tebibyte", "tebibytes"], 1 << 40),
    ("gb", &["g", "gb", "gib", "gibibyte", "gibibytes"], 1 << 30),
    ("mb", &["m", "mb", "mib", "mebibyte", "mebibytes"], 1 << 20),
    ("kb", &["k", "kb", "kib", "kibibyte", "kibibytes"], 1 << 10),
    ("bytes", &["b", "byte", "bytes"], 1),
];

const MEMORY_EXPECTED: &str =
    "a memory size such as `1024`, `64kb`, `10 mb` or `1gb` (a plain number means bytes)";

impl MemorySize {
    /// Zero bytes.
    pub const ZERO: MemorySize = MemorySize(0);

    /// A size of `bytes` bytes.
    pub const fn from_bytes(bytes: u64) -> Self {
        MemorySize(bytes)
    }

    /// A size of `kib` kibibytes (saturating at `u64::MAX` bytes).
    pub const fn from_kibibytes(kib: u64) -> Self {
        MemorySize(kib.saturating_mul(1 << 10))
    }

    /// A size of `mib` mebibytes (saturating at `u64::MAX` bytes).
    pub const fn from_mebibytes(mib: u64) -> Self {
        MemorySize(mib.saturating_mul(1 << 20))
    }

    /// A size of `gib` gibibytes (saturating at `u64::MAX` bytes).
    pub const fn from_gibibytes(gib: u64) -> Self {
        MemorySize(gib.saturating_mul(1 << 30))
    }

    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }
}

impl fmt::Display for MemorySize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0 bytes");
        }
        for (name, _, unit) in MEMORY_UNITS {
            if self.0 % unit == 0 {
                return write!(f, "{} {name}", self.0 / unit);
            }
        }
        write!(f, "{} bytes", self.0)
    }
}

impl FromStr for MemorySize {
    type Err = String;

    /// Parses a memory size; on failure, returns what was expected.
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let expected = || MEMORY_EXPECTED.to_owned();
        let (number, unit) = split_number_unit(raw).ok_or_else(expected)?;
        let number = u64::try_from(number).map_err(|_| expected())?;
        let unit_bytes = if unit.is_empty() {
            1
        } else {
            MEMORY_UNITS
                .iter()
                .find(|(_, spellings, _)| spellings.contains(&unit.as_str()))
                .map(|(_, _, bytes)| *bytes)
                .ok_or_else(expected)?
        };
        number
            .checked_mul(unit_bytes)
            .map(MemorySize)
            .ok_or_else(expected)
    }
}

impl OptionValue for MemorySize {
    fn parse_value(raw: &str) -> Result<Self, String> {
        raw.parse()
    }
    fn render_value(&self) -> String {
        self.to_string()
    }
    fn type_name() -> Cow<'static, str> {
        Cow::Borrowed("MemorySize")
    }
    fn fallback() -> Self {
        MemorySize::ZERO
    }
}

/// An enum usable as an option value: every variant has a configuration name, parsed
/// case-insensitively. Implement it with [`config_enum!`](crate::config_enum).
pub trait ConfigEnum: Clone + Send + Sync + 'static {
    /// Every variant, in the order shown in documentation and error messages.
    const VARIANTS: &'static [Self];

    /// The configuration name of this variant, e.g. `earliest-offset`.
    fn config_name(&self) -> &'static str;

    /// The value [`OptionValue::fallback`] returns; `config_enum!` uses the first variant listed.
    fn fallback() -> Self;
}

impl<E: ConfigEnum> OptionValue for E {
    fn parse_value(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        E::VARIANTS
            .iter()
            .find(|variant| variant.config_name().eq_ignore_ascii_case(raw))
            .cloned()
            .ok_or_else(|| {
                let names: Vec<String> = E::VARIANTS
                    .iter()
                    .map(|variant| format!("`{}`", variant.config_name()))
                    .collect();
                format!("one of {}", names.join(", "))
            })
    }
    fn render_value(&self) -> String {
        self.config_name().to_owned()
    }
    fn type_name() -> Cow<'static, str> {
        Cow::Borrowed("Enum")
    }
    fn allowed_values() -> Option<Vec<&'static str>> {
        Some(E::VARIANTS.iter().map(ConfigEnum::config_name).collect())
    }
    fn fallback() -> Self {
        <E as ConfigEnum>::fallback()
    }
}

/// Implements [`ConfigEnum`](crate::config::ConfigEnum) for an enum of unit variants, mapping
/// each configuration name to a variant. Every variant must be listed (the generated `match` is
/// exhaustive); the first one is the fallback value.
///
/// ```
/// use weir_connector_api::config::ConfigEnum;
/// use weir_connector_api::config_enum;
///
/// #[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// enum StartupMode { EarliestOffset, LatestOffset }
///
/// config_enum!(StartupMode {
///     "earliest-offset" => EarliestOffset,
///     "latest-offset" => LatestOffset,
/// });
///
/// assert_eq!(StartupMode::LatestOffset.config_name(), "latest-offset");
/// assert_eq!(StartupMode::VARIANTS.len(), 2);
/// ```
#[macro_export]
macro_rules! config_enum {
    ($ty:ty {
        $first_name:literal => $first:ident
        $(, $name:literal => $variant:ident)* $(,)?
    }) => {
        impl $crate::config::ConfigEnum for $ty {
            const VARIANTS: &'static [Self] = &[Self::$first $(, Self::$variant)*];

            fn config_name(&self) -> &'static str {
                match self {
                    Self::$first => $first_name,
                    $(Self::$variant => $name,)*
                }
            }

            fn fallback() -> Self {
                Self::$first
            }
        }
    };
}

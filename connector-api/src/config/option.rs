//! [`ConfigOption`]: one typed, documented option, and the validator helpers.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use super::error::ConfigError;
use super::value::OptionValue;

/// A check on a parsed value: `Err` holds the reason, e.g. "must be at least 1".
pub type Validator<T> = Arc<dyn Fn(&T) -> Result<(), String> + Send + Sync>;

/// Replaces the values of sensitive options in errors and debug output.
pub(super) const MASK: &str = "******";

/// A typed option: key, description, default, deprecated names and validators.
///
/// An option without a default is required unless marked [`optional`](Self::optional).
/// Cloning is cheap (validators are shared); keep options in a `static LazyLock` or return them
/// from a function.
///
/// ```
/// use weir_connector_api::config::{range, ConfigOption};
///
/// let max_rows = ConfigOption::<u64>::new("sink.buffer-flush.max-rows")
///     .default_value(1000)
///     .description("Maximum number of buffered rows before a flush.")
///     .validator(range(1..=1_000_000))
///     .deprecated_key("sink.max-rows");
/// assert!(!max_rows.is_required());
/// assert_eq!(max_rows.parse(" 500 "), Ok(500));
/// assert!(max_rows.parse("0").is_err());
/// ```
#[derive(Clone)]
pub struct ConfigOption<T> {
    key: Cow<'static, str>,
    description: Cow<'static, str>,
    default: Option<T>,
    optional: bool,
    sensitive: bool,
    deprecated_keys: Vec<Cow<'static, str>>,
    validators: Vec<Validator<T>>,
}

impl<T> ConfigOption<T> {
    /// A required option named `key`, without description, default or validators.
    pub fn new(key: impl Into<Cow<'static, str>>) -> Self {
        ConfigOption {
            key: key.into(),
            description: Cow::Borrowed(""),
            default: None,
            optional: false,
            sensitive: false,
            deprecated_keys: Vec::new(),
            validators: Vec::new(),
        }
    }

    /// Sets the default value (which also makes the option not required).
    pub fn default_value(mut self, default: T) -> Self {
        self.default = Some(default);
        self
    }

    /// Sets the description shown in documentation.
    pub fn description(mut self, description: impl Into<Cow<'static, str>>) -> Self {
        self.description = description.into();
        self
    }

    /// Marks an option without default as not required: read it with
    /// [`ValidatedConfig::get_optional`](super::ValidatedConfig::get_optional).
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    /// Marks the value as secret (passwords, tokens): it is masked in errors and debug output.
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    /// Adds an old name that is still accepted, with a warning.
    pub fn deprecated_key(mut self, key: impl Into<Cow<'static, str>>) -> Self {
        self.deprecated_keys.push(key.into());
        self
    }

    /// Adds a validator, run on every parsed value in the order added.
    pub fn validator<F>(mut self, validator: F) -> Self
    where
        F: Fn(&T) -> Result<(), String> + Send + Sync + 'static,
    {
        self.validators.push(Arc::new(validator));
        self
    }

    /// The option's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The description shown in documentation.
    pub fn doc(&self) -> &str {
        &self.description
    }

    /// The default value, if any.
    pub fn default(&self) -> Option<&T> {
        self.default.as_ref()
    }

    /// Whether validation fails when the option is absent: no default and not optional.
    pub fn is_required(&self) -> bool {
        self.default.is_none() && !self.optional
    }

    /// Whether the value is masked in errors and debug output.
    pub fn is_sensitive(&self) -> bool {
        self.sensitive
    }

    /// The deprecated names still accepted for this option.
    pub fn deprecated_keys(&self) -> impl Iterator<Item = &str> {
        self.deprecated_keys.iter().map(|key| &**key)
    }

    /// The validators, in the order they run.
    pub fn validators(&self) -> &[Validator<T>] {
        &self.validators
    }
}

impl<T: OptionValue> ConfigOption<T> {
    /// Parses and validates `raw` as this option's value.
    pub fn parse(&self, raw: &str) -> Result<T, ConfigError> {
        self.parse_as(&self.key, raw)
    }

    /// Parses and validates `raw`, reporting errors under `used_key`.
    pub(super) fn parse_as(&self, used_key: &str, raw: &str) -> Result<T, ConfigError> {
        let shown = || {
            if self.sensitive {
                MASK.to_owned()
            } else {
                raw.to_owned()
            }
        };
        let value = T::parse_value(raw).map_err(|expected| ConfigError::InvalidValue {
            key: used_key.to_owned(),
            value: shown(),
            expected,
        })?;
        for validator in &self.validators {
            validator(&value).map_err(|reason| ConfigError::Rejected {
                key: used_key.to_owned(),
                value: shown(),
                reason,
            })?;
        }
        Ok(value)
    }
}

impl<T: OptionValue> fmt::Debug for ConfigOption<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigOption")
            .field("key", &self.key)
            .field("type", &T::type_name())
            .field(
                "default",
                &self.default.as_ref().map(OptionValue::render_value),
            )
            .field("required", &self.is_required())
            .field("sensitive", &self.sensitive)
            .field("deprecated_keys", &self.deprecated_keys)
            .field("validators", &self.validators.len())
            .finish_non_exhaustive()
    }
}

fn describe_bounds<T: OptionValue>(start: &Bound<T>, end: &Bound<T>) -> String {
    match (start, end) {
        (Bound::Included(low), Bound::Included(high)) => format!(
            "must be between {} and {} (inclusive)",
            low.render_value(),
            high.render_value()
        ),
        (Bound::Unbounded, Bound::Unbounded) => "any value is accepted".to_owned(),
        _ => {
            let low = match start {
                Bound::Included(low) => Some(format!("at least {}", low.render_value())),
                Bound::Excluded(low) => Some(format!("greater than {}", low.render_value())),
                Bound::Unbounded => None,
            };
            let high = match end {
                Bound::Included(high) => Some(format!("at most {}", high.render_value())),
                Bound::Excluded(high) => Some(format!("less than {}", high.render_value())),
                Bound::Unbounded => None,
            };
            let parts: Vec<String> = low.into_iter().chain(high).collect();
            format!("must be {}", parts.join(" and "))
        }
    }
}

/// A validator accepting values inside `bounds`, e.g. `range(1..=100)` or
/// `range(Duration::from_millis(1)..)`. Bounds are shown in the option's own format.
pub fn range<T, R>(bounds: R) -> impl Fn(&T) -> Result<(), String> + Send + Sync + Clone + 'static
where
    T: OptionValue + PartialOrd,
    R: RangeBounds<T>,
{
    let start = bounds.start_bound().cloned();
    let end = bounds.end_bound().cloned();
    let reason = describe_bounds(&start, &end);
    move |value: &T| {
        let above = match &start {
            Bound::Included(low) => value >= low,
            Bound::Excluded(low) => value > low,
            Bound::Unbounded => true,
        };
        let below = match &end {
            Bound::Included(high) => value <= high,
            Bound::Excluded(high) => value < high,
            Bound::Unbounded => true,
        };
        if above && below {
            Ok(())
        } else {
            Err(reason.clone())
        }
    }
}

/// A validator accepting values of at least `minimum`.
pub fn min<T>(minimum: T) -> impl Fn(&T) -> Result<(), String> + Send + Sync + Clone + 'static
where
    T: OptionValue + PartialOrd,
{
    range(minimum..)
}

/// A validator accepting values of at most `maximum`.
pub fn max<T>(maximum: T) -> impl Fn(&T) -> Result<(), String> + Send + Sync + Clone + 'static
where
    T: OptionValue + PartialOrd,
{
    range(..=maximum)
}

/// A validator accepting only the listed values, e.g. `one_of(["gzip", "lz4"])` for a `String`
/// option. Comparison is exact; use a [`ConfigEnum`](super::ConfigEnum) for case-insensitive
/// names.
pub fn one_of<T, A>(
    allowed: impl IntoIterator<Item = A>,
) -> impl Fn(&T) -> Result<(), String> + Send + Sync + Clone + 'static
where
    T: OptionValue + PartialEq,
    A: Into<T>,
{
    let allowed: Vec<T> = allowed.into_iter().map(Into::into).collect();
    let names: Vec<String> = allowed
        .iter()
        .map(|value| format!("`{}`", value.render_value()))
        .collect();
    let reason = format!("must be one of {}", names.join(", "));
    move |value: &T| {
        if allowed.contains(value) {
            Ok(())
        } else {
            Err(reason.clone())
        }
    }
}

/// Values that can be empty, for [`non_empty`].
pub trait EmptyCheck {
    /// Whether the value is empty (for strings: empty or only whitespace).
    fn is_empty_value(&self) -> bool;
}

impl EmptyCheck for String {
    fn is_empty_value(&self) -> bool {
        self.trim().is_empty()
    }
}

impl<T> EmptyCheck for Vec<T> {
    fn is_empty_value(&self) -> bool {
        self.is_empty()
    }
}

impl<K, V> EmptyCheck for BTreeMap<K, V> {
    fn is_empty_value(&self) -> bool {
        self.is_empty()
    }
}

/// A validator rejecting empty (or blank) strings and empty lists.
pub fn non_empty<T: EmptyCheck>(
) -> impl Fn(&T) -> Result<(), String> + Send + Sync + Clone + 'static {
    |value: &T| {
        if value.is_empty_value() {
            Err("must not be empty".to_owned())
        } else {
            Ok(())
        }
    }
}

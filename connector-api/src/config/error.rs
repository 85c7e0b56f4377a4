//! Validation problems ([`ConfigError`], collected in [`ConfigErrors`]) and non-fatal
//! [`ConfigWarning`]s.

use std::fmt;

/// One problem found while validating user options. Messages say what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A key that is neither a declared option, a deprecated name, nor under a declared prefix.
    #[error("unknown option `{key}`: {}", unknown_hint(.suggestion.as_deref()))]
    UnknownKey {
        /// The key as given.
        key: String,
        /// The closest known key, if one is close enough.
        suggestion: Option<String>,
    },
    /// A required option (no default, not optional) was not given.
    #[error("missing required option `{key}`: add it to the options")]
    Missing {
        /// The option's key.
        key: String,
    },
    /// A value that does not parse as the option's type.
    #[error("invalid value `{value}` for option `{key}`: expected {expected}")]
    InvalidValue {
        /// The key as given (a deprecated name if that was used).
        key: String,
        /// The value as given (masked for sensitive options).
        value: String,
        /// What was expected, e.g. "an integer between 0 and 65535" or "one of `a`, `b`".
        expected: String,
    },
    /// A value that parses but fails one of the option's validators.
    #[error("invalid value `{value}` for option `{key}`: {reason}")]
    Rejected {
        /// The key as given (a deprecated name if that was used).
        key: String,
        /// The value as given (masked for sensitive options).
        value: String,
        /// Why the value was rejected, e.g. "must be at least 1".
        reason: String,
    },
    /// Options that are individually valid but do not fit together.
    #[error("conflicting options {}: {reason}", quote_keys(.keys))]
    Conflict {
        /// The keys involved; the first one determines the error's sort position.
        keys: Vec<String>,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// An option given both under its key and a deprecated name (or two deprecated names).
    #[error(
        "option `{key}` is set more than once: `{alias}` is a deprecated name for it; \
         keep only `{key}`"
    )]
    DuplicateAlias {
        /// The option's current key.
        key: String,
        /// The deprecated name that was also given.
        alias: String,
    },
}

fn unknown_hint(suggestion: Option<&str>) -> String {
    match suggestion {
        Some(suggestion) => format!("did you mean `{suggestion}`?"),
        None => {
            "remove it, or check the connector's documentation for the supported options".to_owned()
        }
    }
}

fn quote_keys(keys: &[String]) -> String {
    keys.iter()
        .map(|key| format!("`{key}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl ConfigError {
    /// A [`ConfigError::Conflict`] between `keys`, for cross-option validators.
    pub fn conflict<K: Into<String>>(
        keys: impl IntoIterator<Item = K>,
        reason: impl Into<String>,
    ) -> Self {
        ConfigError::Conflict {
            keys: keys.into_iter().map(Into::into).collect(),
            reason: reason.into(),
        }
    }

    /// The key this error is about (the first key of a conflict; empty for a conflict
    /// without keys). Errors are sorted by it.
    pub fn key(&self) -> &str {
        match self {
            ConfigError::UnknownKey { key, .. }
            | ConfigError::Missing { key }
            | ConfigError::InvalidValue { key, .. }
            | ConfigError::Rejected { key, .. }
            | ConfigError::DuplicateAlias { key, .. } => key,
            ConfigError::Conflict { keys, .. } => keys.first().map_or("", String::as_str),
        }
    }

    /// Every key this error mentions.
    pub fn keys(&self) -> Vec<&str> {
        match self {
            ConfigError::Conflict { keys, .. } => keys.iter().map(String::as_str).collect(),
            ConfigError::DuplicateAlias { key, alias } => vec![key, alias],
            other => vec![other.key()],
        }
    }

    fn rank(&self) -> u8 {
        match self {
            ConfigError::UnknownKey { .. } => 0,
            ConfigError::Missing { .. } => 1,
            ConfigError::DuplicateAlias { .. } => 2,
            ConfigError::InvalidValue { .. } => 3,
            ConfigError::Rejected { .. } => 4,
            ConfigError::Conflict { .. } => 5,
        }
    }

    /// Sort key: by key, then by kind, then by message.
    pub(super) fn sort_key(&self) -> (String, u8, String) {
        (self.key().to_owned(), self.rank(), self.to_string())
    }
}

/// Every problem found validating one option set's input, sorted by key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors {
    set_name: String,
    errors: Vec<ConfigError>,
}

impl ConfigErrors {
    /// Wraps `errors` (sorted by key, duplicates removed) for the set named `set_name`.
    pub fn new(set_name: impl Into<String>, mut errors: Vec<ConfigError>) -> Self {
        errors.sort_by_cached_key(ConfigError::sort_key);
        errors.dedup();
        ConfigErrors {
            set_name: set_name.into(),
            errors,
        }
    }

    /// The name of the option set that was validated.
    pub fn set_name(&self) -> &str {
        &self.set_name
    }

    /// The errors, sorted by key.
    pub fn errors(&self) -> &[ConfigError] {
        &self.errors
    }

    /// Takes the errors out.
    pub fn into_errors(self) -> Vec<ConfigError> {
        self.errors
    }

    /// The number of errors.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Iterates over the errors, sorted by key.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.errors.iter()
    }

    /// Whether there are no errors.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
}

impl fmt::Display for ConfigErrors {
    /// `2 problems in kafka source options:` followed by one `  - error` line per error.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.errors.len();
        let noun = if count == 1 { "problem" } else { "problems" };
        write!(f, "{count} {noun} in {} options:", self.set_name)?;
        for error in &self.errors {
            write!(f, "\n  - {error}")?;
        }
        Ok(())
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.iter()
    }
}

/// A non-fatal remark about accepted options.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigWarning {
    /// An option was set through a deprecated name.
    DeprecatedKey {
        /// The deprecated name that was used.
        key: String,
        /// The option's current key.
        replacement: String,
    },
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigWarning::DeprecatedKey { key, replacement } => {
                write!(
                    f,
                    "option `{key}` is deprecated: use `{replacement}` instead"
                )
            }
        }
    }
}

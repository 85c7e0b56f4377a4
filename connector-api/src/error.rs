//! Errors shared by every connector: one error type with a class that tells the runtime whether
//! retrying can help.

use std::fmt;

use crate::config::ConfigErrors;
use crate::state::StateError;

/// Whether an operation that failed may succeed when retried.
///
/// An explicit enum rather than Flink's inverted `isFatal` boolean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// A transient failure (timeout, throttling, a broker or server restarting): retry may help.
    Retryable,
    /// A permanent failure (bad credentials, malformed data, a bug): retrying will fail again.
    Fatal,
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorClass::Retryable => "retryable",
            ErrorClass::Fatal => "fatal",
        })
    }
}

/// A boxed error from a client library or the standard library.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The error type of every connector-facing call.
///
/// Each variant carries enough context to act on: which option, which split, which record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectorError {
    /// The connector's options are invalid; every problem is listed.
    #[error(transparent)]
    Config(#[from] ConfigErrors),
    /// Persisted state could not be read or written.
    #[error(transparent)]
    State(#[from] StateError),
    /// The external system failed or could not be reached.
    #[error("{context}: {source} ({class})")]
    External {
        /// What the connector was doing, e.g. `fetching from partition orders-3`.
        context: String,
        /// Whether retrying may help.
        class: ErrorClass,
        /// The underlying client error.
        #[source]
        source: BoxError,
    },
    /// A record could not be decoded or encoded.
    #[error("malformed record at {location}: {reason}")]
    Malformed {
        /// Where the record came from, e.g. `orders-3 offset 1041`.
        location: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The caller used the API in a way its contract forbids (a bug in the connector or runtime).
    #[error("API contract violated: {0}")]
    Contract(String),
    /// The component was closed or cancelled while the call was in progress.
    #[error("{0} was closed")]
    Closed(String),
}

impl ConnectorError {
    /// An external-system error with its class.
    pub fn external(
        context: impl Into<String>,
        class: ErrorClass,
        source: impl Into<BoxError>,
    ) -> Self {
        ConnectorError::External {
            context: context.into(),
            class,
            source: source.into(),
        }
    }

    /// A retryable external-system error.
    pub fn retryable(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::external(context, ErrorClass::Retryable, source)
    }

    /// A fatal external-system error.
    pub fn fatal(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::external(context, ErrorClass::Fatal, source)
    }

    /// A malformed-record error.
    pub fn malformed(location: impl Into<String>, reason: impl Into<String>) -> Self {
        ConnectorError::Malformed {
            location: location.into(),
            reason: reason.into(),
        }
    }

    /// Whether retrying the failed operation may help.
    pub fn class(&self) -> ErrorClass {
        match self {
            ConnectorError::External { class, .. } => *class,
            _ => ErrorClass::Fatal,
        }
    }
}

/// Shorthand for results of connector calls.
pub type Result<T, E = ConnectorError> = std::result::Result<T, E>;

//! Connection checks (API line 1.1): `weir check pipeline.toml` asks every source, sink and
//! lookup table of a pipeline to reach its external system with the given options and report,
//! one line per item, what works and what does not — before any job starts.
//!
//! A connector declares the ability through
//! [`ConnectorFactory::as_connection_check`](crate::factory::ConnectorFactory::as_connection_check).
//!
//! ```
//! use weir_connector_api::check::{CheckItem, CheckOutcome, ConnectionCheck, ConnectorRole};
//! use weir_connector_api::config::ValidatedConfig;
//! use weir_connector_api::factory::FactoryContext;
//!
//! /// Checks that a directory option points at a writable directory.
//! struct DirCheck;
//!
//! #[async_trait::async_trait]
//! impl ConnectionCheck for DirCheck {
//!     async fn check(&self, role: ConnectorRole, _config: &ValidatedConfig,
//!                    _ctx: &FactoryContext<'_>) -> Vec<CheckItem> {
//!         let dir = std::env::temp_dir();
//!         let outcome = match std::fs::metadata(&dir) {
//!             Ok(m) if m.is_dir() => CheckOutcome::Ok(format!("{} is a directory", dir.display())),
//!             Ok(_) => CheckOutcome::Failed(format!("{} is not a directory", dir.display())),
//!             Err(e) => CheckOutcome::Failed(format!("cannot read {}: {e}", dir.display())),
//!         };
//!         vec![CheckItem::new(format!("{role} path"), outcome)]
//!     }
//! }
//! # let item = CheckItem::new("x", CheckOutcome::Ok("fine".into()));
//! # assert!(item.outcome.is_ok());
//! ```

use std::fmt;

use crate::config::ValidatedConfig;
use crate::factory::FactoryContext;

/// Which part of a pipeline a check is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectorRole {
    /// A source.
    Source,
    /// A sink.
    Sink,
    /// A lookup table.
    Lookup,
}

impl fmt::Display for ConnectorRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnectorRole::Source => "source",
            ConnectorRole::Sink => "sink",
            ConnectorRole::Lookup => "lookup",
        })
    }
}

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckOutcome {
    /// It works; the text says what was seen (e.g. "3 brokers, topic has 4 partitions").
    Ok(String),
    /// It does not work; the text says why and what to do.
    Failed(String),
    /// The system answered but refused the credentials; the text names which.
    CredentialsRejected(String),
}

impl CheckOutcome {
    /// Whether the check passed.
    pub fn is_ok(&self) -> bool {
        matches!(self, CheckOutcome::Ok(_))
    }
}

/// One line of a connection check: what was checked, and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckItem {
    /// What was checked ("broker metadata", "topic orders exists", "bucket writable").
    pub what: String,
    /// What was found.
    pub outcome: CheckOutcome,
}

impl CheckItem {
    /// A check result.
    pub fn new(what: impl Into<String>, outcome: CheckOutcome) -> Self {
        CheckItem {
            what: what.into(),
            outcome,
        }
    }
}

/// Reaches the external system with a source's, sink's or lookup's options and reports what
/// works. Checks must be quick (a few seconds at most), must not change data the job would read
/// (a write probe cleans up after itself), and report problems as items rather than errors.
#[async_trait::async_trait]
pub trait ConnectionCheck: Send + Sync {
    /// Checks the connector in `role` with these options.
    async fn check(
        &self,
        role: ConnectorRole,
        config: &ValidatedConfig,
        ctx: &FactoryContext<'_>,
    ) -> Vec<CheckItem>;
}

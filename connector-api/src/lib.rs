//! Weir connector API (line 1.0).
pub mod config;
pub mod error;
pub mod metrics;
pub mod state;
pub mod base;
pub mod checkpoint;
pub mod sink;
pub mod source;
pub mod watermark;
pub use error::{ConnectorError, ErrorClass};

//! Formats turn [`Row`]s into bytes and back (json, csv, raw, debezium-json, canal-json...).
//! Format crates register a [`FormatFactory`] with [`crate::register_format!`]; connectors that
//! carry bytes (Kafka values, text files) look formats up by identifier with [`find_format`].
//!
//! ```
//! use weir_connector_api::config::{OptionSet, ValidatedConfig};
//! use weir_connector_api::error::Result;
//! use weir_connector_api::format::{FormatFactory, RowDecoder, RowEncoder};
//! use weir_connector_api::row::{Row, Schema, Value};
//!
//! /// One UTF-8 string column per message.
//! struct Text;
//! impl RowDecoder for Text {
//!     fn decode(&self, bytes: &[u8], out: &mut Vec<Row>) -> Result<()> {
//!         out.push(Row::insert(vec![Value::String(String::from_utf8_lossy(bytes).into_owned())]));
//!         Ok(())
//!     }
//! }
//! let mut rows = Vec::new();
//! Text.decode(b"hello", &mut rows).unwrap();
//! assert_eq!(rows[0].values[0], Value::String("hello".into()));
//! ```

use crate::config::{OptionSet, ValidatedConfig};
use crate::error::Result;
use crate::row::{Row, Schema};

/// Decodes one message into zero or more rows (a changelog update may become two).
pub trait RowDecoder: Send + Sync {
    /// Appends the rows of `bytes` to `out`; malformed input is a
    /// [`crate::ConnectorError::Malformed`].
    fn decode(&self, bytes: &[u8], out: &mut Vec<Row>) -> Result<()>;
}

/// Encodes one row into a message.
pub trait RowEncoder: Send + Sync {
    /// Appends the encoding of `row` to `out`.
    fn encode(&self, row: &Row, out: &mut Vec<u8>) -> Result<()>;
}

/// A named format with its options.
pub trait FormatFactory: Send + Sync + 'static {
    /// The identifier used in pipeline files (`format = "json"`).
    fn identifier(&self) -> &'static str;
    /// A one-line description.
    fn description(&self) -> &'static str;
    /// The format's options (keys without the `format.` prefix pipeline files use).
    fn options(&self) -> OptionSet;
    /// A decoder for rows of `schema`.
    fn decoder(&self, schema: &Schema, config: &ValidatedConfig) -> Result<Box<dyn RowDecoder>>;
    /// An encoder for rows of `schema`.
    fn encoder(&self, schema: &Schema, config: &ValidatedConfig) -> Result<Box<dyn RowEncoder>>;
}

/// A registered format (see [`crate::register_format!`]).
pub struct FormatRegistration(pub &'static dyn FormatFactory);

inventory::collect!(FormatRegistration);

/// Every format linked into this program.
pub fn formats() -> impl Iterator<Item = &'static dyn FormatFactory> {
    inventory::iter::<FormatRegistration>
        .into_iter()
        .map(|r| r.0)
}

/// The format with this identifier.
pub fn find_format(identifier: &str) -> Option<&'static dyn FormatFactory> {
    formats().find(|f| f.identifier() == identifier)
}

/// Registers a format factory (a `static` implementing [`FormatFactory`]) at compile time.
#[macro_export]
macro_rules! register_format {
    ($factory:expr) => {
        $crate::inventory::submit! { $crate::format::FormatRegistration(&$factory) }
    };
}

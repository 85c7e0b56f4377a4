//! The part the JSON formats share: their settings, and the reading of a message as one JSON
//! value whose rows the format picks out (a plain object, a Debezium event, a Canal event). Blank messages
//! (tombstones) give no row, `ignore-parse-errors` skips what cannot be read, and the changelog
//! formats write a row's values as one object wrapped in their event.

use std::sync::LazyLock;

use serde_json::Value as Json;
use weir_connector_api::config::{ConfigOption, OptionSet, ValidatedConfig};
use weir_connector_api::error::Result;
use weir_connector_api::row::{Row, RowKind, Schema};

use crate::convert::{
    malformed, unencodable, write_object, TimestampFormat, IGNORE_PARSE_ERRORS, TIMESTAMP_FORMAT,
};

/// `fail-on-missing-field`: a missing field is an error instead of null.
pub(crate) static FAIL_ON_MISSING_FIELD: LazyLock<ConfigOption<bool>> = LazyLock::new(|| {
    ConfigOption::new("fail-on-missing-field")
        .default_value(false)
        .description("Fail on a message that lacks a field of the schema (otherwise it is null).")
});

/// Settings shared by the JSON-based formats.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JsonSettings {
    pub(crate) fail_on_missing: bool,
    pub(crate) ignore_errors: bool,
    pub(crate) timestamps: TimestampFormat,
}

impl JsonSettings {
    pub(crate) fn from_config(config: &ValidatedConfig) -> Self {
        JsonSettings {
            fail_on_missing: config.get(&FAIL_ON_MISSING_FIELD),
            ignore_errors: config.get(&IGNORE_PARSE_ERRORS),
            timestamps: config.get(&TIMESTAMP_FORMAT),
        }
    }
}

/// A format whose messages are JSON values.
pub(crate) trait JsonMessages {
    /// The format's identifier, for messages about it.
    const FORMAT: &'static str;

    /// The schema rows are read as and written from.
    fn schema(&self) -> &Schema;

    /// The format's settings.
    fn settings(&self) -> &JsonSettings;

    /// The rows of one message, or why it is not one this format reads.
    fn rows(&self, json: Json) -> Result<Vec<Row>, String>;
}

/// Decodes one message of `codec`'s format into `out`.
pub(crate) fn decode<C: JsonMessages>(codec: &C, bytes: &[u8], out: &mut Vec<Row>) -> Result<()> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(()); // a tombstone
    }
    let rows = serde_json::from_slice(bytes)
        .map_err(|e| format!("not valid JSON: {e}"))
        .and_then(|json| codec.rows(json));
    match rows {
        Ok(rows) => {
            out.extend(rows);
            Ok(())
        }
        Err(_) if codec.settings().ignore_errors => Ok(()),
        Err(reason) => Err(malformed(C::FORMAT, bytes, reason)),
    }
}

/// What an encoded changelog event does with the row's values (as Flink writes changelogs:
/// an update is a delete of the old values and an insert of the new).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// Inserts and update-afters.
    Insert,
    /// Deletes and update-befores.
    Delete,
}

/// A changelog format: each row is written as an event around the row's values.
pub(crate) trait Envelope: JsonMessages {
    /// Writes the event that makes `change` with `image`, the row's values as a JSON object.
    fn wrap(change: Change, image: &[u8], out: &mut Vec<u8>);
}

/// Encodes `row` as an event of `codec`'s format into `out`.
pub(crate) fn encode<C: Envelope>(codec: &C, row: &Row, out: &mut Vec<u8>) -> Result<()> {
    let mut image = Vec::new();
    write_object(
        &mut image,
        codec.schema(),
        &row.values,
        codec.settings().timestamps,
    )
    .map_err(|reason| unencodable(C::FORMAT, reason))?;
    let change = match row.kind {
        RowKind::Insert | RowKind::UpdateAfter => Change::Insert,
        RowKind::UpdateBefore | RowKind::Delete => Change::Delete,
    };
    C::wrap(change, &image, out);
    Ok(())
}

/// `set` with the options every changelog format has after its own.
pub(crate) fn changelog_options(set: OptionSet) -> OptionSet {
    set.option(&IGNORE_PARSE_ERRORS).option(&TIMESTAMP_FORMAT)
}

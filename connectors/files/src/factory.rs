//! The `files` connector factory for pipeline files: a bounded or continuous file source and an
//! exactly-once file sink of pipeline rows on the local disk, with the options of [`crate::config`]
//! (see the README's "Pipeline files" section for the table, generated from
//! [`row_sink_options`] and [`row_source_options`]).
//!
//! Formats (`format` in the options):
//!
//! | `format` | rows in files |
//! |---|---|
//! | `parquet`, `orc` | columns through Arrow ([`RowBatches`]: int64, float64, boolean, string, binary, timestamp in ms UTC, and on API line 1.1 every type of the columnar mapping — nested ones in Parquet only, ORC refuses decimal, list, struct and map columns by name); `codec`, `parquet.row-group-rows`, `orc.stripe-size` |
//! | `csv` | the registered `csv` row format, one record per line, with a header line unless `csv.header = false`; `csv.delimiter` |
//! | `json` | the registered `json` row format, one object per line |
//! | `text` | one string (or bytes) field per line |
//!
//! Instead of `options.format`, the pipeline's own `format = ...` (any registered row format
//! with its options, e.g. `{ type = "debezium-json" }` or `"raw"`) writes and reads one message
//! per line. The registered formats come from `weir-formats`, which the `weir` binary links.
//!
//! Date-time buckets by event time read the time from a row field (`bucket.time-field`): the
//! factory cannot see whether the pipeline's source assigns event times (only a source with a
//! watermark does), so it does not rely on the record timestamps the runtime carries.
//!
//! Paths are local (absolute, relative to the working directory, or `file://` URLs) or URLs of
//! a filesystem registered for their scheme ([`crate::fs::schemes`]): linking
//! `weir-connector-s3` (as `weir` does) adds `s3://bucket/prefix`, with the client configured
//! from the AWS environment variables. All paths of one source share one filesystem.
//!
//! Columnar pipelines (API line 1.1) read and write `weir-formats` chunks instead of rows with
//! `create_chunk_source` and `create_chunk_sink`: the same options, files and split state.
//!
//! The factory only builds objects: it neither touches the disk nor checks that paths exist.

use std::sync::{Arc, LazyLock};

#[cfg(weir_api_1_1)]
use weir_connector_api::check::ConnectionCheck;
use weir_connector_api::config::{
    non_empty, ConfigEnum, ConfigError, ConfigErrors, ConfigOption, OptionSet, ValidatedConfig,
};
use weir_connector_api::erased::BoxedSink;
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::factory::{
    ConnectorFactory, ConnectorInfo, FactoryContext, SinkFactory, SourceFactory,
};
use weir_connector_api::format::{find_format, FormatFactory};
use weir_connector_api::row::{DataType, Field, Row, Schema, Value};

#[cfg(weir_api_1_1)]
use crate::check::FilesCheck;
use crate::config::{
    sink_options, source_options, BucketAssignerKind, CompactorKind, FileFormatKind,
    FileSinkOptions, FormatOptions, BUCKET_ASSIGNER, BUCKET_TIME, COMPACTION_COMPACTOR, CSV_HEADER,
    PATH,
};
use crate::format::{Framing, MessageRows, RowBatches, TextRows};
use crate::sink::{BucketAssigner, BucketContext, DateTimeBucketAssigner, TimeSource};
use crate::{FileSink, FileSystem, LocalFileSystem, OrcFormat, ParquetFormat};

/// The name of the sink's option set (in error headers).
pub const SINK_SET_NAME: &str = "file sink";
/// The name of the source's option set (in error headers).
pub const SOURCE_SET_NAME: &str = "file source";

/// `format` for pipeline files: optional, because the pipeline's own `format` may name a row
/// format instead.
pub static FORMAT: LazyLock<ConfigOption<FileFormatKind>> = LazyLock::new(|| {
    ConfigOption::new("format").optional().description(
        "The file format: `parquet` and `orc` (columns through Arrow), `csv` (with a header \
         line unless `csv.header = false`) and `json` (the pipeline formats of the same name, \
         one row per line), `text` (one string or bytes field per line). Leave it out to use \
         the pipeline's own `format` (any row format, one message per line).",
    )
});

/// `bucket.time-field`: the row field whose time names date-time buckets.
pub static BUCKET_TIME_FIELD: LazyLock<ConfigOption<String>> = LazyLock::new(|| {
    ConfigOption::new("bucket.time-field")
        .optional()
        .description(
            "Date-time buckets by event time: the `timestamp` (or `int64`, epoch milliseconds) \
             field of the rows whose value names the bucket (a null value uses processing time). \
             Pipeline sinks get the event time from this field only, so `bucket.time-source = \
             \"event-time\"` needs it.",
        )
        .validator(non_empty())
});

/// The options of the `files` sink in pipeline files: [`crate::config::sink_options`] with
/// [`FORMAT`] and [`BUCKET_TIME_FIELD`].
pub fn row_sink_options() -> OptionSet {
    sink_options().option(&FORMAT).option(&BUCKET_TIME_FIELD)
}

/// The options of the `files` source in pipeline files: [`crate::config::source_options`] with
/// [`FORMAT`].
pub fn row_source_options() -> OptionSet {
    source_options().option(&FORMAT)
}

/// The `files` connector factory.
#[derive(Debug, Clone, Copy, Default)]
pub struct FilesFactory;

/// The registered instance.
pub static FILES: FilesFactory = FilesFactory;
weir_connector_api::register_connector!(FILES);

impl ConnectorFactory for FilesFactory {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo {
            identifier: "files",
            crate_name: env!("CARGO_PKG_NAME"),
            version: env!("CARGO_PKG_VERSION"),
            description: "local files: Parquet, ORC, CSV, JSON lines, text; exactly-once part \
                          files with compaction",
        }
    }
    fn as_source(&self) -> Option<&dyn SourceFactory> {
        Some(self)
    }
    fn as_sink(&self) -> Option<&dyn SinkFactory> {
        Some(self)
    }
    #[cfg(weir_api_1_1)]
    fn as_connection_check(&self) -> Option<&dyn ConnectionCheck> {
        Some(&FilesCheck)
    }
    #[cfg(weir_api_1_1)]
    fn as_chunk_source(&self) -> Option<&dyn weir_connector_api::columnar::ChunkSourceFactory> {
        Some(self)
    }
    #[cfg(weir_api_1_1)]
    fn as_chunk_sink(&self) -> Option<&dyn weir_connector_api::columnar::ChunkSinkFactory> {
        Some(self)
    }
}

/// A path on local disk (`file://` URLs too; relative paths are resolved against the working
/// directory, so state holds absolute paths), or a `<scheme>://` URL on a registered filesystem
/// (see [`crate::fs::schemes`]): the filesystem, which instance it is, and the path in it.
fn resolve_path(
    key: &str,
    raw: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<(Arc<dyn FileSystem>, String, String)> {
    let trimmed = raw.trim();
    let reject = |reason: &str| ConfigError::Rejected {
        key: key.to_owned(),
        value: raw.to_owned(),
        reason: reason.to_owned(),
    };
    let path = match trimmed.split_once("://") {
        Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
            "file" => rest,
            other => {
                let Some(fs) = crate::fs::find_scheme(other) else {
                    let hint = if matches!(other, "s3" | "s3a" | "s3n") {
                        " (link `weir-connector-s3`: it registers `s3://`)"
                    } else {
                        ""
                    };
                    errors.push(reject(&format!(
                        "no filesystem for `{other}://` is linked into this program{hint}; \
                         local paths and `file://` URLs always work"
                    )));
                    return None;
                };
                return match (fs.open)(trimmed) {
                    Ok(opened) => Some((opened.fs, opened.root, opened.path)),
                    Err(reason) => {
                        errors.push(reject(&reason));
                        None
                    }
                };
            }
        },
        None => trimmed,
    };
    if path.is_empty() {
        errors.push(reject("must not be empty"));
        return None;
    }
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.into());
    let Some(text) = absolute.to_str() else {
        errors.push(reject("must be valid UTF-8"));
        return None;
    };
    let text = text.trim_end_matches('/');
    Some((
        local_fs(),
        "local".to_owned(),
        if text.is_empty() { "/" } else { text }.to_owned(),
    ))
}

/// The resolved format of a sink or source of rows.
#[cfg_attr(not(weir_api_1_1), allow(dead_code))]
enum RowsFormat {
    Parquet,
    Orc,
    Text(TextRows),
    Messages(MessageRows, MessageFormat),
}

/// The registered row format of [`RowsFormat::Messages`] and its options (for its columnar
/// decoder).
// Read by the columnar source of API line 1.1 only.
#[cfg_attr(not(weir_api_1_1), allow(dead_code))]
pub(crate) struct MessageFormat {
    id: &'static str,
    config: ValidatedConfig,
}

fn format_conflict(reason: impl Into<String>) -> ConfigError {
    ConfigError::conflict(["format"], reason)
}

/// The errors of a format factory, reported on `format`.
fn format_errors(id: &str, error: ConnectorError, errors: &mut Vec<ConfigError>) {
    match error {
        ConnectorError::Config(found) => {
            for e in found.into_errors() {
                errors.push(match e {
                    ConfigError::Conflict { reason, .. } => format_conflict(reason),
                    other => format_conflict(format!("format `{id}`: {other}")),
                });
            }
        }
        other => errors.push(format_conflict(format!("format `{id}`: {other}"))),
    }
}

/// A registered row format, or an error saying how to link it.
fn registered(id: &str, errors: &mut Vec<ConfigError>) -> Option<&'static dyn FormatFactory> {
    let found = find_format(id);
    if found.is_none() {
        errors.push(format_conflict(format!(
            "the `{id}` row format is not linked into this program: depend on `weir-formats` \
             (and call `weir_formats::link()`)"
        )));
    }
    found
}

/// Rows of `schema` as messages of a registered format, one per line (CSV: one record each).
fn messages(
    format: &'static dyn FormatFactory,
    config: &ValidatedConfig,
    schema: &Schema,
    header: bool,
    errors: &mut Vec<ConfigError>,
) -> Option<MessageRows> {
    let id = format.identifier();
    let (encoder, decoder) = match (
        format.encoder(schema, config),
        format.decoder(schema, config),
    ) {
        (Ok(e), Ok(d)) => (e, d),
        (Err(e), _) | (_, Err(e)) => {
            format_errors(id, e, errors);
            return None;
        }
    };
    let framing = if id == "csv" {
        let given = config.to_map();
        let byte = |key: &str, default: u8| match given.get(key).map(String::as_str) {
            Some("\\t") => b'\t',
            Some(v) => v.bytes().next().unwrap_or(default),
            None => default,
        };
        Framing::Csv {
            delimiter: byte("field-delimiter", b','),
            quote: byte("quote-character", b'"'),
        }
    } else {
        Framing::Lines
    };
    let mut rows = MessageRows::new(id, encoder, decoder, framing);
    if header {
        // The header is the field names, quoted like any cell: a row of an all-string schema.
        let names = Schema::new(
            schema
                .fields
                .iter()
                .map(|f| Field::new(f.name.clone(), DataType::String, false))
                .collect(),
        );
        let row = Row::insert(
            schema
                .fields
                .iter()
                .map(|f| Value::String(f.name.clone()))
                .collect(),
        );
        let mut line = Vec::new();
        match format
            .encoder(&names, config)
            .and_then(|e| e.encode(&row, &mut line))
        {
            Ok(()) => rows = rows.with_header(line),
            Err(e) => {
                format_errors(id, e, errors);
                return None;
            }
        }
    }
    Some(rows)
}

/// The format of rows from `options.format` or the pipeline's `format`; problems go to `errors`.
fn rows_format(
    config: &ValidatedConfig,
    ctx: &FactoryContext<'_>,
    f: &FormatOptions,
    errors: &mut Vec<ConfigError>,
) -> Option<RowsFormat> {
    match (config.get_optional(&FORMAT), ctx.format) {
        (Some(kind), Some((id, _))) => {
            errors.push(format_conflict(format!(
                "the file format is set twice, as `format = \"{}\"` in the options and as the \
                 pipeline's `format = \"{id}\"`: keep one",
                kind.config_name()
            )));
            None
        }
        (None, None) => {
            errors.push(format_conflict(
                "no file format: set `format` in the options (`parquet`, `orc`, `csv`, `json`, \
                 `text`) or the pipeline's `format` (a row format)",
            ));
            None
        }
        (None, Some((id, format_config))) => {
            let format = registered(id, errors)?;
            let rows = messages(format, format_config, ctx.schema, false, errors)?;
            let id = format.identifier();
            let config = format_config.clone();
            Some(RowsFormat::Messages(rows, MessageFormat { id, config }))
        }
        (Some(FileFormatKind::Parquet), None) => Some(RowsFormat::Parquet),
        (Some(FileFormatKind::Orc), None) => Some(RowsFormat::Orc),
        (Some(FileFormatKind::Text), None) => match TextRows::new(ctx.schema) {
            Ok(text) => Some(RowsFormat::Text(text)),
            Err(reason) => {
                errors.push(format_conflict(reason));
                None
            }
        },
        (Some(FileFormatKind::Json), None) => {
            let format = registered("json", errors)?;
            let config = default_config(format, &[], errors)?;
            let rows = messages(format, &config, ctx.schema, false, errors)?;
            Some(RowsFormat::Messages(
                rows,
                MessageFormat { id: "json", config },
            ))
        }
        (Some(FileFormatKind::Csv), None) => {
            let format = registered("csv", errors)?;
            let delimiter = char::from(f.csv_delimiter).to_string();
            let config = default_config(format, &[("field-delimiter", &delimiter)], errors)?;
            let rows = messages(format, &config, ctx.schema, f.csv_header, errors)?;
            Some(RowsFormat::Messages(
                rows,
                MessageFormat { id: "csv", config },
            ))
        }
    }
}

/// A registered format's configuration from a few options.
fn default_config(
    format: &'static dyn FormatFactory,
    given: &[(&str, &str)],
    errors: &mut Vec<ConfigError>,
) -> Option<ValidatedConfig> {
    let input = given
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    match format.options().validate(&input) {
        Ok(config) => Some(config),
        Err(e) => {
            format_errors(format.identifier(), ConnectorError::Config(e), errors);
            None
        }
    }
}

fn local_fs() -> Arc<dyn FileSystem> {
    Arc::new(LocalFileSystem::new())
}

impl SinkFactory for FilesFactory {
    fn sink_options(&self) -> OptionSet {
        row_sink_options()
    }

    fn create_sink(
        &self,
        config: &ValidatedConfig,
        ctx: &FactoryContext<'_>,
    ) -> Result<BoxedSink<Row>> {
        let SinkParts {
            fs,
            path,
            format,
            rows,
            options: o,
            time_field,
        } = sink_parts(config, ctx)?;
        let f = &o.format_options;
        let builder = match format {
            RowsFormat::Parquet | RowsFormat::Orc => {
                bulk_sink(&format, fs, path, rows.to_batches(), rows.arrow_schema(), f)
            }
            RowsFormat::Text(text) => FileSink::row(fs, path, text),
            RowsFormat::Messages(messages, _) => FileSink::row(fs, path, messages),
        };
        let mut builder = builder.with_options(&o);
        if let Some(index) = time_field {
            builder = builder.bucket_assigner(RowTimeBuckets {
                inner: DateTimeBucketAssigner::new(&o.bucket_format)
                    .time_source(TimeSource::EventTime),
                index,
            });
        }
        Ok(BoxedSink::new(builder.build()?))
    }
}

/// A Parquet sink (for `RowsFormat::Parquet`) or an ORC sink (otherwise) of records that
/// `to_batches` turns into batches of `schema`, with the format options `f`.
fn bulk_sink<T: Send + 'static>(
    format: &RowsFormat,
    fs: Arc<dyn FileSystem>,
    path: String,
    to_batches: crate::format::ToBatchesFactory<T>,
    schema: arrow_schema::SchemaRef,
    f: &FormatOptions,
) -> crate::FileSinkBuilder<T> {
    match format {
        RowsFormat::Parquet => FileSink::bulk(
            fs,
            path,
            ParquetFormat::new(to_batches)
                .with_schema(schema)
                .codec(f.codec)
                .row_group_rows(f.row_group_rows),
        ),
        _ => FileSink::bulk(
            fs,
            path,
            OrcFormat::new(to_batches)
                .with_schema(schema)
                .codec(f.codec)
                .stripe_bytes(f.stripe_size.bytes() as usize),
        ),
    }
}

/// A validated pipeline sink, before its rows' type is chosen.
struct SinkParts {
    fs: Arc<dyn FileSystem>,
    path: String,
    format: RowsFormat,
    rows: RowBatches,
    options: FileSinkOptions,
    time_field: Option<usize>,
}

#[cfg(weir_api_1_1)]
mod chunks;
#[cfg(weir_api_1_1)]
pub use chunks::{create_chunk_sink, create_chunk_source, ChunkSink};

/// Validates a pipeline sink's options against its schema: every problem, or the parts.
fn sink_parts(config: &ValidatedConfig, ctx: &FactoryContext<'_>) -> Result<SinkParts> {
    let mut errors = Vec::new();
    let o = FileSinkOptions::from_config(config);
    let resolved = resolve_path(PATH.key(), &o.path, &mut errors);
    let format = rows_format(config, ctx, &o.format_options, &mut errors);
    if let (Some(c), Some(format)) = (&o.compaction, &format) {
        if c.compactor == CompactorKind::Concat {
            match format {
                RowsFormat::Parquet | RowsFormat::Orc => errors.push(ConfigError::conflict(
                    [COMPACTION_COMPACTOR.key(), "format"],
                    "Parquet and ORC files cannot be concatenated: use the `record-wise` \
                     compactor",
                )),
                RowsFormat::Messages(..)
                    if config.get_optional(&FORMAT) == Some(FileFormatKind::Csv)
                        && o.format_options.csv_header =>
                {
                    errors.push(ConfigError::conflict(
                        [COMPACTION_COMPACTOR.key(), CSV_HEADER.key()],
                        "concatenating CSV files with header lines repeats the header: use \
                         the `record-wise` compactor or `csv.header = false`",
                    ));
                }
                _ => {}
            }
        }
    }
    let rows = match RowBatches::try_new(ctx.schema) {
        Ok(rows) => Some(rows),
        Err(e) => {
            if matches!(format, Some(RowsFormat::Parquet | RowsFormat::Orc)) {
                errors.push(format_conflict(e.to_string()));
            }
            None
        }
    };
    #[cfg(weir_api_1_1)]
    if matches!(format, Some(RowsFormat::Orc)) {
        if let Some(reason) = crate::format::orc_refusal(ctx.schema) {
            errors.push(format_conflict(reason));
        }
    }
    let time_field = time_field(config, &o, ctx.schema, &mut errors);
    let (Some((fs, _, path)), Some(format), true) = (resolved, format, errors.is_empty()) else {
        return Err(ConnectorError::Config(ConfigErrors::new(
            SINK_SET_NAME,
            errors,
        )));
    };
    let rows = rows.unwrap_or_else(|| RowBatches::new(ctx.schema));
    Ok(SinkParts {
        fs,
        path,
        format,
        rows,
        options: o,
        time_field,
    })
}

/// The position of `bucket.time-field` in the schema, checked against the bucket options.
fn time_field(
    config: &ValidatedConfig,
    o: &FileSinkOptions,
    schema: &Schema,
    errors: &mut Vec<ConfigError>,
) -> Option<usize> {
    let date_time = o.assigner == BucketAssignerKind::DateTime;
    let Some(name) = config.get_optional(&BUCKET_TIME_FIELD) else {
        if date_time && o.bucket_time == TimeSource::EventTime {
            errors.push(ConfigError::conflict(
                [BUCKET_TIME.key(), BUCKET_TIME_FIELD.key()],
                "a pipeline sink gets no event time with its rows: name the row's time field \
                 with `bucket.time-field`",
            ));
        }
        return None;
    };
    if !date_time {
        errors.push(ConfigError::conflict(
            [BUCKET_TIME_FIELD.key(), BUCKET_ASSIGNER.key()],
            "only date-time buckets have a time field: set `bucket.assigner = \"date-time\"` or \
             remove `bucket.time-field`",
        ));
        return None;
    }
    let found = schema.index_of(&name).filter(|i| {
        schema
            .fields
            .get(*i)
            .is_some_and(|f| holds_time(&f.data_type))
    });
    if found.is_none() {
        let candidates: Vec<String> = schema
            .fields
            .iter()
            .filter(|f| holds_time(&f.data_type))
            .map(|f| format!("`{}`", f.name))
            .collect();
        errors.push(ConfigError::Rejected {
            key: BUCKET_TIME_FIELD.key().to_owned(),
            value: name,
            reason: if candidates.is_empty() {
                "the schema has no timestamp or int64 field".to_owned()
            } else {
                format!(
                    "not a timestamp or int64 field of the schema; those are {}",
                    candidates.join(", ")
                )
            },
        });
    }
    found
}

/// Whether a field of type `t` holds a time for buckets: a timestamp (of any unit and zone on
/// line 1.1) or an int64 of epoch milliseconds.
fn holds_time(t: &DataType) -> bool {
    #[cfg(weir_api_1_1)]
    return t.holds_event_time();
    #[cfg(not(weir_api_1_1))]
    return matches!(t, DataType::TimestampMillis | DataType::Int64);
}

/// The time of a bucket field's value in epoch milliseconds (`None` for a null).
fn time_of(value: Option<&Value>) -> Option<i64> {
    #[cfg(weir_api_1_1)]
    return value.and_then(Value::event_time_millis);
    #[cfg(not(weir_api_1_1))]
    return match value {
        Some(Value::TimestampMillis(t) | Value::Int64(t)) => Some(*t),
        _ => None,
    };
}

/// Date-time buckets named by a row field's time.
struct RowTimeBuckets {
    inner: DateTimeBucketAssigner,
    index: usize,
}

impl BucketAssigner<Row> for RowTimeBuckets {
    fn bucket_id(&self, element: &Row, ctx: &BucketContext) -> String {
        let timestamp = time_of(element.values.get(self.index));
        self.inner
            .bucket_id(element, &BucketContext { timestamp, ..*ctx })
    }
}

mod source;
use source::{source_parts, SourceParts};

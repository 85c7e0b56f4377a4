//! The `kafka` connector factory for pipeline files: a source and a sink of rows, with the
//! Flink keys of [`source_options`](crate::config::source_options) and
//! [`sink_options`](crate::config::sink_options) plus `key.fields`.
//!
//! The record value is the row in the pipeline's `format` (required: `json`, `csv`, `raw`,
//! `debezium-json`, `canal-json`, ... — any registered format). The source decodes each
//! record's value into zero or more rows (a changelog update becomes `-U` and `+U`, a
//! tombstone becomes nothing); the rows of one record are emitted together, never split by a
//! checkpoint. The sink encodes each row as a record value; with `key.fields` the key is the
//! same format over just those fields (Flink's `key.fields` with the value format as key
//! format), so records of one key go to one partition.
//!
//! On API line 1.1 the factory also reads and writes Arrow chunks for columnar pipelines, with
//! the same options, split state and writer state (the crate's `columnar` module).

use std::sync::LazyLock;
use std::time::Duration;

#[cfg(weir_api_1_1)]
use weir_connector_api::check::ConnectionCheck;
use weir_connector_api::config::{
    ConfigError, ConfigErrors, ConfigOption, OptionSet, ValidatedConfig,
};
use weir_connector_api::erased::{BoxedSink, BoxedSource};
use weir_connector_api::error::{ConnectorError, Result};
#[cfg(weir_api_1_1)]
use weir_connector_api::factory::JobContext;
use weir_connector_api::factory::{
    ConnectorFactory, ConnectorInfo, FactoryContext, SinkFactory, SourceFactory,
};
use weir_connector_api::format::{find_format, RowDecoder, RowEncoder};
use weir_connector_api::row::{Row, Schema};
use weir_connector_base::source::FlattenSource;

#[cfg(weir_api_1_1)]
use crate::check::KafkaCheck;
use crate::config::{sink_options, source_options, KafkaSinkOptions};
use crate::sink::{KafkaRecordBuf, KafkaRecordSerializer, SerializeContext};
use crate::source::{HeaderAccess, KafkaDeserializer, KafkaRecord};
use crate::KafkaSource;

/// `key.fields`: the fields that make the record key (sink).
pub static KEY_FIELDS: LazyLock<ConfigOption<Vec<String>>> = LazyLock::new(|| {
    ConfigOption::new("key.fields").optional().description(
        "Fields that form the record key, separated by `;`, encoded with the value's format \
         (records of one key go to one partition). No key when unset.",
    )
});

/// The options of the `kafka` sink in pipeline files.
pub fn row_sink_options() -> OptionSet {
    sink_options().option(&KEY_FIELDS)
}

/// The `kafka` connector factory.
#[derive(Debug, Clone, Copy, Default)]
pub struct KafkaFactory;

/// The registered instance.
pub static KAFKA: KafkaFactory = KafkaFactory;
weir_connector_api::register_connector!(KAFKA);

impl ConnectorFactory for KafkaFactory {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo {
            identifier: "kafka",
            crate_name: env!("CARGO_PKG_NAME"),
            version: env!("CARGO_PKG_VERSION"),
            description: "reads and writes Kafka topics; exactly-once with transactions",
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
        Some(&KafkaCheck)
    }
    /// Columns natively (API line 1.1): see [`crate::columnar`].
    #[cfg(weir_api_1_1)]
    fn as_chunk_source(&self) -> Option<&dyn weir_connector_api::columnar::ChunkSourceFactory> {
        Some(self)
    }
    /// Columns natively (API line 1.1): see [`crate::columnar`].
    #[cfg(weir_api_1_1)]
    fn as_chunk_sink(&self) -> Option<&dyn weir_connector_api::columnar::ChunkSinkFactory> {
        Some(self)
    }
}

pub(crate) fn missing_format(set: &str) -> ConnectorError {
    ConnectorError::Config(ConfigErrors::new(
        set,
        vec![ConfigError::conflict(
            ["format"],
            "Kafka records are bytes: set the row format of the values, e.g. `format = \"json\"`",
        )],
    ))
}

pub(crate) fn unknown_format(id: &str) -> ConnectorError {
    ConnectorError::fatal(
        "building the Kafka connector",
        format!("format `{id}` is not linked into this program"),
    )
}

/// Record values decoded into rows by a pipeline format.
struct RowsDeserializer(Box<dyn RowDecoder>);

impl KafkaDeserializer<Vec<Row>> for RowsDeserializer {
    fn deserialize(&self, record: &KafkaRecord<'_>) -> std::result::Result<Vec<Row>, String> {
        let mut rows = Vec::new();
        if let Some(value) = record.value() {
            self.0.decode(value, &mut rows).map_err(|e| e.to_string())?;
        }
        Ok(rows)
    }
    fn header_access(&self) -> HeaderAccess {
        HeaderAccess::Ignore
    }
}

impl SourceFactory for KafkaFactory {
    fn source_options(&self) -> OptionSet {
        source_options()
    }

    fn create_source(
        &self,
        config: &ValidatedConfig,
        ctx: &FactoryContext<'_>,
    ) -> Result<BoxedSource<Row>> {
        let (id, format_config) = ctx.format.ok_or_else(|| missing_format("kafka source"))?;
        let format = find_format(id).ok_or_else(|| unknown_format(id))?;
        let decoder = format.decoder(ctx.schema, format_config)?;
        let source = KafkaSource::from_config(config, RowsDeserializer(decoder))?;
        Ok(BoxedSource::new(FlattenSource::new(source)))
    }
}

/// Rows encoded into record values (and keys) by a pipeline format.
pub(crate) struct RowSerializer {
    value: Box<dyn RowEncoder>,
    /// The key's encoder and the positions of its fields.
    pub(crate) key: Option<(Box<dyn RowEncoder>, Vec<usize>)>,
}

impl KafkaRecordSerializer<Row> for RowSerializer {
    fn serialize(
        &self,
        row: &Row,
        _ctx: &SerializeContext,
        out: &mut KafkaRecordBuf,
    ) -> std::result::Result<(), String> {
        self.value
            .encode(row, out.value_mut())
            .map_err(|e| e.to_string())?;
        if let Some((encoder, fields)) = &self.key {
            let projected = Row::with_kind(
                row.kind,
                fields.iter().filter_map(|&i| row.get(i).cloned()).collect(),
            );
            encoder
                .encode(&projected, out.key_mut())
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

impl SinkFactory for KafkaFactory {
    fn sink_options(&self) -> OptionSet {
        row_sink_options()
    }

    fn create_sink(
        &self,
        config: &ValidatedConfig,
        ctx: &FactoryContext<'_>,
    ) -> Result<BoxedSink<Row>> {
        row_sink(config, ctx, None)
    }

    /// With the job's checkpoint interval, an exactly-once sink checks
    /// `properties.transaction.timeout.ms` against it up front (API line 1.1).
    #[cfg(weir_api_1_1)]
    fn create_sink_in_job(
        &self,
        config: &ValidatedConfig,
        ctx: &FactoryContext<'_>,
        job: &JobContext,
    ) -> Result<BoxedSink<Row>> {
        row_sink(config, ctx, job.checkpoint_interval())
    }
}

/// The pipeline's `kafka` sink; `interval` is the job's checkpoint interval when known.
fn row_sink(
    config: &ValidatedConfig,
    ctx: &FactoryContext<'_>,
    interval: Option<Duration>,
) -> Result<BoxedSink<Row>> {
    let serializer = row_serializer(config, ctx)?;
    let mut builder = KafkaSinkOptions::from_config(config).builder(serializer);
    if let Some(interval) = interval {
        builder = builder.checkpoint_interval(interval);
    }
    Ok(BoxedSink::new(builder.build()?))
}

/// The row sink's serializer: the pipeline format's encoder of values, and of keys with
/// `key.fields` (checked: every field is one of the input's).
pub(crate) fn row_serializer(
    config: &ValidatedConfig,
    ctx: &FactoryContext<'_>,
) -> Result<RowSerializer> {
    let (id, format_config) = ctx.format.ok_or_else(|| missing_format("kafka sink"))?;
    let format = find_format(id).ok_or_else(|| unknown_format(id))?;
    let value = format.encoder(ctx.schema, format_config)?;
    let key = match config.get_optional(&KEY_FIELDS) {
        None => None,
        Some(names) => {
            let mut positions = Vec::new();
            let mut unknown = Vec::new();
            for name in &names {
                match ctx.schema.index_of(name) {
                    Some(i) => positions.push(i),
                    None => unknown.push(ConfigError::conflict(
                        ["key.fields"],
                        format!(
                            "`{name}` is not a field of the sink's input (fields: {})",
                            ctx.schema
                                .fields
                                .iter()
                                .map(|f| f.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )),
                }
            }
            if !unknown.is_empty() {
                return Err(ConnectorError::Config(ConfigErrors::new(
                    "kafka sink",
                    unknown,
                )));
            }
            let schema = Schema::new(
                positions
                    .iter()
                    .filter_map(|&i| ctx.schema.fields.get(i).cloned())
                    .collect(),
            );
            Some((format.encoder(&schema, format_config)?, positions))
        }
    };
    Ok(RowSerializer { value, key })
}

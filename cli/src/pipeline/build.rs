//! Turns a validated [`Pipeline`] into a runtime [`Job`].

use std::collections::BTreeMap;

use weir_connector_api::erased::BoxedSource;
use weir_connector_api::row::{Row, Value};
use weir_connector_api::watermark::{BoundedOutOfOrderness, WatermarkStrategy};
use weir_runtime::job::UnalignedSplits;
use weir_runtime::{
    DataStream, Job, JobConfig, NonRestoredState, RestoreFrom, RuntimeError, SinkOptions,
    SnapshotOfOtherJob, StorageConfig, StreamEnvironment,
};

use super::columnar::{self, AdaptRows, Engine, ENGINE_ENV};
use super::lookup::RowSerializer;
use super::{Pipeline, SourceNode, Storage, WatermarkSpec};

/// What the progress display needs to know about a built job.
#[derive(Debug, Clone, Default)]
pub struct JobLayout {
    /// The operator uids of the sources.
    pub sources: Vec<String>,
    /// The operator uids of the sink writers.
    pub sinks: Vec<String>,
    /// The sources with event time (the others report no watermark).
    pub watermarked: Vec<String>,
}

pub(super) fn timestamp_of(row: &Row, index: usize) -> i64 {
    match row.get(index) {
        Some(Value::TimestampMillis(t) | Value::Int64(t)) => *t,
        _ => i64::MIN,
    }
}

/// Adds `source` to `env` reading with `reader` (its rows, or its chunks), with its uid, state
/// schema, parallelism and event time (`timestamp_of` a record's time in a field); records it
/// in `layout`.
pub(super) fn add_source<T: Send + 'static>(
    env: &StreamEnvironment,
    source: &SourceNode,
    reader: BoxedSource<T>,
    timestamp_of: fn(&T, usize) -> i64,
    layout: &mut JobLayout,
) -> DataStream<T> {
    let mut stream = env
        .from_source(
            reader,
            event_time(source.watermark.as_ref(), timestamp_of),
            &source.name,
        )
        .uid(&source.name)
        .state_schema(schema_lines(&source.schema));
    if let Some(p) = source.parallelism {
        stream = stream.parallelism(p);
    }
    layout.sources.push(source.name.clone());
    if source.watermark.is_some() {
        layout.watermarked.push(source.name.clone());
    }
    stream
}

/// The watermark strategy of a source with event time `spec` (none without), reading a
/// record's time with `timestamp_of(record, field index)`.
pub(super) fn event_time<T: 'static>(
    spec: Option<&WatermarkSpec>,
    timestamp_of: fn(&T, usize) -> i64,
) -> WatermarkStrategy<T> {
    let Some(spec) = spec else {
        return WatermarkStrategy::no_watermarks();
    };
    let bound = spec.out_of_orderness;
    let index = spec.timestamp_field;
    let mut strategy = WatermarkStrategy::for_generator(move || BoundedOutOfOrderness::new(bound))
        .with_timestamp_assigner(move |record: &T, _source: Option<i64>| {
            timestamp_of(record, index)
        });
    if let Some(idleness) = spec.idleness {
        strategy = strategy.with_idleness(idleness);
    }
    if let Some((group, drift, update)) = &spec.alignment {
        strategy = strategy.with_watermark_alignment(group.clone(), *drift, *update);
    }
    strategy
}

/// Checkpoint storage in S3, the client configured from the environment: `AWS_ENDPOINT_URL`
/// (for S3-compatible stores), `AWS_REGION` (default `us-east-1`), and credentials from the
/// standard AWS chain (environment, profile files, web identity, ECS, instance profile; see
/// weir-connector-s3's "Credentials").
fn s3_storage(bucket: &str, prefix: &str) -> Result<StorageConfig, RuntimeError> {
    let invalid = |what: String| {
        RuntimeError::InvalidJob(vec![format!(
            "checkpoint storage s3://{bucket}/{prefix}: {what}"
        )])
    };
    let client = weir_connector_s3::S3Options::from_env()
        .map_err(|e| invalid(e.to_string()))?
        .client()
        .map_err(|e| invalid(e.to_string()))?;
    Ok(StorageConfig::Custom(std::sync::Arc::new(
        weir_connector_s3::S3CheckpointStorage::new(client, bucket, prefix),
    )))
}

/// What the job starts from, and what its restore lets through.
#[derive(Debug, Clone, Default)]
pub struct RestoreSettings {
    /// What the job starts from.
    pub restore: RestoreFrom,
    /// State that maps to no operator: refused (default) or dropped.
    pub non_restored_state: NonRestoredState,
    /// A snapshot taken by a job of another name: refused (default) or used.
    pub snapshot_of_other_job: SnapshotOfOtherJob,
}

/// One line per field (`id int64 not null`), as a source's schema is recorded with its state.
pub(super) fn schema_lines(schema: &weir_connector_api::row::Schema) -> Vec<String> {
    schema
        .fields
        .iter()
        .map(|f| {
            let null = if f.nullable { "" } else { " not null" };
            format!("{} {}{null}", f.name, f.data_type)
        })
        .collect()
}

/// Builds the job.
pub fn build(
    pipeline: &Pipeline,
    settings: RestoreSettings,
) -> Result<(Job, JobLayout), RuntimeError> {
    let mut config = JobConfig::new(&pipeline.name)
        .parallelism(pipeline.parallelism)
        .restart(pipeline.restart.clone())
        .restore(settings.restore)
        .non_restored_state(settings.non_restored_state)
        .snapshot_of_other_job(settings.snapshot_of_other_job);
    if let Some(c) = &pipeline.checkpointing {
        config = config.checkpointing(c.config.clone());
        config = config.storage(match &c.storage {
            Storage::Memory => StorageConfig::Memory,
            Storage::Local(dir) => StorageConfig::Local(dir.clone()),
            Storage::S3 { bucket, prefix } => s3_storage(bucket, prefix)?,
        });
    }
    if let Some(interval) = pipeline.watermark_interval {
        config.watermark_interval = interval;
    }
    if pipeline.allow_unaligned_source_splits {
        config.unaligned_source_splits = UnalignedSplits::TaskLevel;
    }
    let chunk_sources = match Engine::from_env()? {
        Engine::Rows => None,
        Engine::Auto => match columnar::sources(pipeline, AdaptRows::WhenASinkTakesColumns) {
            Ok(sources) => Some(sources),
            Err(why) => {
                tracing::info!("the pipeline runs on rows: {why}");
                None
            }
        },
        Engine::Columns => Some(
            columnar::sources(pipeline, AdaptRows::Always).map_err(|why| {
                RuntimeError::InvalidJob(vec![format!(
                    "{ENGINE_ENV}=columns, but the pipeline cannot run on columns: {why}"
                )])
            })?,
        ),
    };
    if let Some(chunk_sources) = chunk_sources {
        let adapted = chunk_sources
            .iter()
            .filter(|s| matches!(s, columnar::ColumnarSource::Rows))
            .count();
        tracing::info!(
            "the pipeline runs on columns ({} of {} sources read rows through the adapter)",
            adapted,
            chunk_sources.len()
        );
        // A runtime batch of a few chunks (of up to CHUNK_ROWS rows each).
        config = config.batch_size(columnar::CHUNKS_PER_BATCH);
        let env = StreamEnvironment::new(config);
        let layout = columnar::build(pipeline, &env, chunk_sources)?;
        return Ok((env.build()?, layout));
    }
    let env = StreamEnvironment::new(config);
    let mut layout = JobLayout::default();
    let mut streams: BTreeMap<String, DataStream<Row>> = BTreeMap::new();
    for source in &pipeline.sources {
        let stream = add_source(
            &env,
            source,
            source.source.clone(),
            timestamp_of,
            &mut layout,
        );
        streams.insert(source.name.clone(), stream);
    }
    let missing = |name: &str| RuntimeError::InvalidJob(vec![format!("no stream `{name}`")]);
    for transform in &pipeline.transforms {
        let mut stream = union(&mut streams, &transform.inputs)
            .ok_or_else(|| missing(transform.inputs.first().map_or("", String::as_str)))?;
        if let Some(filter) = transform.filter.clone() {
            stream = stream.filter(move |row| filter.matches(row));
        }
        if let Some(lookup) = &transform.lookup {
            stream = lookup.join(stream, &transform.name).map_err(|e| {
                RuntimeError::InvalidJob(vec![format!("transform `{}`: {e}", transform.name)])
            })?;
        }
        if let Some(indices) = transform.select.clone() {
            stream = stream.map(move |row: Row| Row {
                kind: row.kind,
                values: indices
                    .iter()
                    .map(|i| row.values.get(*i).cloned().unwrap_or(Value::Null))
                    .collect(),
            });
        }
        streams.insert(transform.name.clone(), stream);
    }
    for sink in &pipeline.sinks {
        let mut stream = union(&mut streams, &sink.inputs)
            .ok_or_else(|| missing(sink.inputs.first().map_or("", String::as_str)))?;
        if let Some(p) = sink.parallelism {
            stream = stream
                .channel_state_serializer(RowSerializer)
                .rebalance()
                .parallelism(p);
        }
        let options = SinkOptions {
            uid: Some(sink.name.clone()),
            committer_parallelism: sink.committer_parallelism,
        };
        stream.sink_to_with(sink.sink.clone(), &options);
        layout.sinks.push(sink.name.clone());
    }
    Ok((env.build()?, layout))
}

fn union(
    streams: &mut BTreeMap<String, DataStream<Row>>,
    inputs: &[String],
) -> Option<DataStream<Row>> {
    let mut result: Option<DataStream<Row>> = None;
    for name in inputs {
        // Rows in flight through an exchange, for unaligned checkpoints.
        let stream = streams
            .remove(name)?
            .channel_state_serializer(RowSerializer);
        result = Some(match result {
            Some(acc) => acc.union(stream),
            None => stream,
        });
    }
    result
}

//! Columnar pipeline jobs: a pipeline whose parts all work on columns runs as a
//! `DataStream<Chunk>` — one runtime record is one Arrow record batch of up to
//! [`CHUNK_ROWS`] rows — instead of a `DataStream<Row>`.
//!
//! Which parts work on columns is the connectors' to say, through API line 1.1's Arrow
//! factory contract (`weir_connector_api::columnar`): a source runs on columns when its
//! connector declares `as_chunk_source` and takes its options on columns (`datagen` without a
//! rate limit, generated straight into columns; `files` of Parquet and ORC — the files' record
//! batches — and of `csv`, `json` and `debezium-json`, decoded many lines at once into columns,
//! see `weir_formats::columnar`), with or without event time (a chunk's event time is its
//! latest row's, see the `time` module); a sink when its connector declares
//! `as_chunk_sink` (`blackhole`, `files` in Parquet, ORC — the chunks' columns as they
//! are — and CSV, column by column, and `elasticsearch`, each row's bulk action made from the
//! columns). Filters (Arrow compute kernels, see
//! [`super::Expr::evaluate`]) and selects (a zero-copy projection) work on
//! columns; a lookup join takes the chunks' rows and its output becomes chunks
//! again. Every other sink — a connector with only the Row factories of line
//! 1.0 — consumes the chunk's rows through an adapter (`print` prints, and `kafka` writes,
//! exactly what they do on the row path, each row with its own event time). Any other source
//! reads through the adapter for Row sources ([`ColumnarSource::Rows`]): with `auto`, only when
//! a sink takes columns, else the whole pipeline runs on rows.
//!
//! `WEIR_PIPELINE_ENGINE` chooses: `auto` (the default: columns when possible), `rows`
//! (always the row path) or `columns` (refuse to run, saying why, when the pipeline cannot run
//! on columns).
//!
//! Checkpoints: sources keep their uids and split state, so a checkpoint taken on one path
//! restores on the other — except the channel state of unaligned checkpoints, which holds
//! rows or chunks as the path that took it.

use std::sync::Arc;

use weir_connector_api::columnar::{ChunkSinkParts, Columnar};
use weir_connector_api::erased::BoxedSource;
use weir_connector_api::error::ConnectorError;
use weir_connector_api::factory::find_connector;
use weir_connector_api::row::{Row, Schema};
use weir_formats::chunk::{arrow_schema, Chunk, ChunkSerializer};
use weir_runtime::{DataStream, RuntimeError, SinkOptions, StreamEnvironment};

use super::build::{add_source, timestamp_of, JobLayout};
use super::lookup::RowSerializer;
use super::Pipeline;
use time::{TimeColumn, TimeColumns};

mod time;

pub use weir_connector_datagen::factory::CHUNK_ROWS;

/// The environment variable that chooses the engine.
pub const ENGINE_ENV: &str = "WEIR_PIPELINE_ENGINE";

/// Chunks per runtime batch: a few chunks, not a thousand.
pub const CHUNKS_PER_BATCH: usize = 4;

/// Which representation a pipeline job carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Engine {
    /// Columns when every part can, rows otherwise.
    #[default]
    Auto,
    /// Rows, always.
    Rows,
    /// Columns, or an error saying what keeps the pipeline on rows.
    Columns,
}

impl Engine {
    /// The engine [`ENGINE_ENV`] asks for (`auto` when unset).
    pub fn from_env() -> Result<Engine, RuntimeError> {
        match std::env::var(ENGINE_ENV) {
            Err(_) => Ok(Engine::Auto),
            Ok(value) => match value.trim() {
                "" | "auto" => Ok(Engine::Auto),
                "rows" => Ok(Engine::Rows),
                "columns" => Ok(Engine::Columns),
                other => Err(RuntimeError::InvalidJob(vec![format!(
                    "{ENGINE_ENV}={other}: expected `auto`, `rows` or `columns`"
                )])),
            },
        }
    }
}

/// How a source of a columnar pipeline reads.
pub enum ColumnarSource {
    /// Natively, in chunks.
    Chunks(BoxedSource<Chunk>),
    /// In rows, through the adapter for Row sources: the rows its task hands on at once (up to
    /// [`CHUNK_ROWS`]) become one chunk.
    Rows,
}

/// Whether a columnar pipeline may read a Row source through the adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdaptRows {
    /// When a sink takes columns natively (there is something to gain from turning the rows
    /// into columns); otherwise the pipeline stays on rows.
    WhenASinkTakesColumns,
    /// Always (`WEIR_PIPELINE_ENGINE=columns`).
    Always,
}

/// The columnar sources of `pipeline`, one per source in file order, or why the pipeline
/// cannot run on columns. A source runs on columns natively when its connector declares the
/// ability
/// ([`ConnectorFactory::as_chunk_source`](weir_connector_api::factory::ConnectorFactory::as_chunk_source))
/// and takes these options on columns; any other source through the adapter, as `adapt` allows.
pub fn sources(pipeline: &Pipeline, adapt: AdaptRows) -> Result<Vec<ColumnarSource>, String> {
    let mut sources = Vec::with_capacity(pipeline.sources.len());
    let mut on_rows = None;
    for source in &pipeline.sources {
        let name = &source.name;
        let ctx = source.settings.context(name);
        let native = find_connector(&source.connector).and_then(|f| f.as_chunk_source());
        let why = match native
            .map(|f| f.create_chunk_source(&source.settings.options, &ctx, &source.settings.job))
        {
            Some(Ok(Columnar::Chunks(chunks))) => {
                sources.push(ColumnarSource::Chunks(chunks));
                continue;
            }
            Some(Err(e)) => return Err(format!("source `{name}`: {e}")),
            Some(Ok(Columnar::RowsOnly(why))) => format!("source `{name}`: {why}"),
            Some(Ok(_)) => format!("source `{name}` works on rows"),
            None => format!(
                "source `{name}` (connector `{}`) produces rows only",
                source.connector
            ),
        };
        on_rows.get_or_insert(why);
        sources.push(ColumnarSource::Rows);
    }
    TimeColumns::of(pipeline, ignores_event_time)?;
    if let Some(why) = on_rows {
        if adapt == AdaptRows::WhenASinkTakesColumns && !takes_columns(pipeline) {
            return Err(format!("{why}, and no sink takes columns"));
        }
    }
    Ok(sources)
}

/// Whether a sink of `pipeline` takes columns natively.
fn takes_columns(pipeline: &Pipeline) -> bool {
    pipeline
        .sinks
        .iter()
        .any(|sink| matches!(chunk_sink(sink), Ok(Some(_))))
}

/// The columnar sink of `sink`, when its connector declares the ability and takes its options
/// on columns (`None`: the sink takes the rows of each chunk).
fn chunk_sink(sink: &super::SinkNode) -> Result<Option<ChunkSinkParts>, RuntimeError> {
    let Some(factory) = find_connector(&sink.connector).and_then(|f| f.as_chunk_sink()) else {
        return Ok(None);
    };
    let ctx = sink.settings.context(&sink.name);
    match factory.create_chunk_sink(&sink.settings.options, &ctx, &sink.settings.job) {
        Ok(Columnar::Chunks(parts)) => Ok(Some(parts)),
        Ok(_) => Ok(None),
        Err(e) => Err(RuntimeError::InvalidJob(vec![format!(
            "sink `{}`: {e}",
            sink.name
        )])),
    }
}

/// Builds the columnar job's graph in `env` from the sources [`sources`] made.
pub fn build(
    pipeline: &Pipeline,
    env: &StreamEnvironment,
    chunk_sources: Vec<ColumnarSource>,
) -> Result<JobLayout, RuntimeError> {
    let times = TimeColumns::of(pipeline, ignores_event_time)
        .map_err(|e| RuntimeError::InvalidJob(vec![e]))?;
    let mut layout = JobLayout::default();
    let mut streams: Vec<(String, DataStream<Chunk>)> = Vec::new();
    for (source, columnar) in pipeline.sources.iter().zip(chunk_sources) {
        let stream = match columnar {
            ColumnarSource::Chunks(chunks) => {
                add_source(env, source, chunks, time::chunk_time, &mut layout)
            }
            ColumnarSource::Rows => {
                let rows = add_source(
                    env,
                    source,
                    source.source.clone(),
                    timestamp_of,
                    &mut layout,
                );
                // A source's rows: up to a chunk's worth handed on at once.
                rows_into_chunks(
                    rows.source_batch_size(CHUNK_ROWS),
                    &source.name,
                    &source.schema,
                )
            }
        };
        streams.push((source.name.clone(), stream));
    }
    let missing = |name: &str| RuntimeError::InvalidJob(vec![format!("no stream `{name}`")]);
    for transform in &pipeline.transforms {
        let mut stream = union(&mut streams, &transform.inputs)
            .ok_or_else(|| missing(transform.inputs.first().map_or("", String::as_str)))?;
        if let Some(filter) = transform.filter.clone() {
            stream = stream.flat_map(move |chunk| filter.filter_chunk(&chunk));
        }
        if let Some(lookup) = &transform.lookup {
            // The join looks rows up one by one: it takes the chunks' rows (each with its own
            // time) and its output becomes chunks again.
            let rows = match times.of_inputs(&transform.inputs) {
                TimeColumn::At(index) => {
                    stream.flat_map_timestamped(move |chunk| time::timed_rows(&chunk, index))
                }
                _ => stream.flat_map(|chunk| rows_of(&chunk)),
            };
            let joined = lookup.join(rows, &transform.name).map_err(|e| {
                RuntimeError::InvalidJob(vec![format!("transform `{}`: {e}", transform.name)])
            })?;
            stream = rows_into_chunks(joined, &transform.name, &lookup.joined);
        }
        if let Some(indices) = transform.select.clone() {
            stream = stream.map(move |chunk| select(&chunk, &indices));
        }
        streams.push((transform.name.clone(), stream));
    }
    let mut adapted_sinks = 0;
    for sink in &pipeline.sinks {
        let mut stream = union(&mut streams, &sink.inputs)
            .ok_or_else(|| missing(sink.inputs.first().map_or("", String::as_str)))?;
        let options = SinkOptions {
            uid: Some(sink.name.clone()),
            committer_parallelism: sink.committer_parallelism,
        };
        let native = match chunk_sink(sink)? {
            Some(parts) => {
                if let Some(split) = parts.split {
                    stream = stream.flat_map(move |chunk| split(chunk));
                }
                Some(parts.sink)
            }
            None => None,
        };
        if let Some(chunk_sink) = native {
            if let Some(p) = sink.parallelism {
                stream = stream
                    .channel_state_serializer(ChunkSerializer)
                    .rebalance()
                    .parallelism(p);
            }
            stream.sink_to_with(chunk_sink, &options);
        } else {
            adapted_sinks += 1;
            // The sink's rows, exactly as the row path hands them over: with event time, each
            // with its own row's time.
            let mut rows: DataStream<Row> = match times.of_inputs(&sink.inputs) {
                TimeColumn::At(index) => {
                    stream.flat_map_timestamped(move |chunk| time::timed_rows(&chunk, index))
                }
                _ => stream.flat_map(|chunk| rows_of(&chunk)),
            };
            if let Some(p) = sink.parallelism {
                rows = rows
                    .channel_state_serializer(RowSerializer)
                    .rebalance()
                    .parallelism(p);
            }
            rows.sink_to_with(sink.sink.clone(), &options);
        }
        layout.sinks.push(sink.name.clone());
    }
    tracing::info!(
        "{adapted_sinks} of {} sinks take rows through the adapter",
        pipeline.sinks.len()
    );
    Ok(layout)
}

/// The adapter from rows to chunks (of `schema`), for a Row source and after a lookup join:
/// the rows handed on at once (for a source, up to [`CHUNK_ROWS`]: a poll's worth, or what a
/// slower source has) become one chunk, with the latest time of its rows on a stream with
/// event time. `name` names the stream in errors.
fn rows_into_chunks(rows: DataStream<Row>, name: &str, schema: &Schema) -> DataStream<Chunk> {
    let schema = arrow_schema(schema);
    let name = format!("{name} (rows into columns)");
    rows.try_map_batches(&name, move |rows: Vec<Row>| {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        // The source's rows have its schema's types (its format decoded them to it); a
        // connector that breaks that fails the job here, as a Row sink would.
        Chunk::from_rows(&schema, &rows)
            .map(|chunk| vec![chunk])
            .map_err(|e| ConnectorError::fatal("cannot turn the source's rows into columns", e))
    })
}

/// Whether a sink of `connector` never reads its records' event time (the `files` sink of a
/// pipeline buckets by a row field, never by event time; `blackhole` drops everything).
fn ignores_event_time(connector: &str) -> bool {
    matches!(connector, "blackhole" | "files")
}

fn union(
    streams: &mut Vec<(String, DataStream<Chunk>)>,
    inputs: &[String],
) -> Option<DataStream<Chunk>> {
    let mut result: Option<DataStream<Chunk>> = None;
    for name in inputs {
        let at = streams.iter().position(|(n, _)| n == name)?;
        // Chunks in flight through an exchange, for unaligned checkpoints.
        let stream = streams
            .swap_remove(at)
            .1
            .channel_state_serializer(ChunkSerializer);
        result = Some(match result {
            Some(acc) => acc.union(stream),
            None => stream,
        });
    }
    result
}

/// The selected columns (a projection: the arrays are shared, not copied).
fn select(chunk: &Chunk, indices: &[usize]) -> Chunk {
    // The indices were checked against the input's schema when the pipeline was validated.
    #[allow(clippy::expect_used)]
    let batch = chunk
        .batch()
        .project(indices)
        .expect("select indices are positions of the input's fields");
    let kinds = chunk.kinds().map(Arc::from);
    #[allow(clippy::expect_used)]
    Chunk::new(batch, kinds).expect("a projection keeps the rows and their kinds")
}

/// The rows of a chunk, for a Row sink.
pub(super) fn rows_of(chunk: &Chunk) -> Vec<Row> {
    // Columnar jobs only carry chunks of pipeline types (made by `arrow_schema`), which
    // always convert.
    #[allow(clippy::expect_used)]
    chunk
        .to_rows()
        .expect("chunks of pipeline types convert to rows")
}

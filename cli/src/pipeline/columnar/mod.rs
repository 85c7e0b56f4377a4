//! Columnar pipeline jobs: a pipeline whose parts all work on columns runs as a
//! `DataStream<Chunk>` — one runtime record is one Arrow record batch of up to
//! [`CHUNK_ROWS`] rows — instead of a `DataStream<Row>`.
//!
//! Columnar today: `datagen` sources without a rate limit (generated straight into columns),
//! `files` sources of Parquet and ORC (the files' record batches) and of `csv`, `json` and
//! `debezium-json` (decoded many lines at once into columns, see `weir_formats::columnar`),
//! with or without event time (a chunk's event time is its latest row's, see the `time` module),
//! filters (Arrow compute kernels, see [`super::Expr::evaluate`]) and selects (a zero-copy
//! projection) of transforms without a lookup, `blackhole` sinks, and `files` sinks in
//! Parquet, ORC (the chunks' columns as they are) and CSV (column by column; see
//! `weir_connector_files::factory::create_chunk_sink`). Every other sink consumes the chunk's
//! rows through an adapter (`print` prints, and `kafka` writes, exactly what they do on the row
//! path, each row with its own event time). Any other source or a lookup keeps the whole
//! pipeline on rows, as before.
//!
//! `WEIR_PIPELINE_ENGINE` chooses: `auto` (the default: columns when possible), `rows`
//! (always the row path) or `columns` (refuse to run, saying why, when the pipeline cannot run
//! on columns).
//!
//! Checkpoints: sources keep their uids and split state, so a checkpoint taken on one path
//! restores on the other — except the channel state of unaligned checkpoints, which holds
//! rows or chunks as the path that took it.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use weir_connector_api::erased::{BoxedSink, BoxedSource};
use weir_connector_api::error::Result as ConnectorResult;
use weir_connector_api::metrics::{Counter, SinkWriterMetrics, NUM_RECORDS_IN};
use weir_connector_api::row::Row;
use weir_connector_api::sink::{
    FlushMode, InitContext, Sink, SinkCapabilities, SinkWriter, WriteContext,
};
use weir_connector_datagen::factory::create_chunk_source;
use weir_connector_files::factory::{
    create_chunk_sink, create_chunk_source as create_chunk_files_source,
};
use weir_formats::chunk::{Chunk, ChunkSerializer};
use weir_runtime::{DataStream, RuntimeError, SinkOptions, StreamEnvironment};

use super::build::{add_source, JobLayout};
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

/// The columnar sources of `pipeline`, one per source in file order, or why the pipeline
/// cannot run on columns.
pub fn sources(pipeline: &Pipeline) -> Result<Vec<BoxedSource<Chunk>>, String> {
    let mut sources = Vec::with_capacity(pipeline.sources.len());
    for source in &pipeline.sources {
        let name = &source.name;
        let ctx = source.settings.context(name);
        let options = &source.settings.options;
        let made = match source.connector.as_str() {
            "datagen" => create_chunk_source(options, &ctx).map(|made| {
                made.ok_or_else(|| {
                    format!(
                        "source `{name}` is rate limited (`rows-per-second` or \
                         `rows-per-checkpoint`), which counts rows one by one"
                    )
                })
            }),
            "files" => create_chunk_files_source(options, &ctx).map(|made| {
                made.ok_or_else(|| {
                    format!(
                        "source `{name}` reads its format row by row (`text`, or a row format \
                         without a columnar decoder; `parquet`, `orc`, `csv`, `json` and \
                         `debezium-json` have one)"
                    )
                })
            }),
            other => {
                return Err(format!(
                    "source `{name}` (connector `{other}`) produces rows only"
                ))
            }
        };
        match made {
            Ok(Ok(chunks)) => sources.push(chunks),
            Ok(Err(reason)) => return Err(reason),
            Err(e) => return Err(format!("source `{name}`: {e}")),
        }
    }
    if let Some(t) = pipeline.transforms.iter().find(|t| t.lookup.is_some()) {
        return Err(format!(
            "transform `{}` has a lookup join, which works on rows",
            t.name
        ));
    }
    TimeColumns::of(pipeline, ignores_event_time)?;
    Ok(sources)
}

/// Builds the columnar job's graph in `env` from the sources [`sources`] made.
pub fn build(
    pipeline: &Pipeline,
    env: &StreamEnvironment,
    chunk_sources: Vec<BoxedSource<Chunk>>,
) -> Result<JobLayout, RuntimeError> {
    let times = TimeColumns::of(pipeline, ignores_event_time)
        .map_err(|e| RuntimeError::InvalidJob(vec![e]))?;
    let mut layout = JobLayout::default();
    let mut streams: Vec<(String, DataStream<Chunk>)> = Vec::new();
    for (source, chunks) in pipeline.sources.iter().zip(chunk_sources) {
        let stream = add_source(env, source, chunks, time::chunk_time, &mut layout);
        streams.push((source.name.clone(), stream));
    }
    let missing = |name: &str| RuntimeError::InvalidJob(vec![format!("no stream `{name}`")]);
    for transform in &pipeline.transforms {
        let mut stream = union(&mut streams, &transform.inputs)
            .ok_or_else(|| missing(transform.inputs.first().map_or("", String::as_str)))?;
        if let Some(filter) = transform.filter.clone() {
            stream = stream.flat_map(move |chunk| filter.filter_chunk(&chunk));
        }
        if let Some(indices) = transform.select.clone() {
            stream = stream.map(move |chunk| select(&chunk, &indices));
        }
        streams.push((transform.name.clone(), stream));
    }
    for sink in &pipeline.sinks {
        let mut stream = union(&mut streams, &sink.inputs)
            .ok_or_else(|| missing(sink.inputs.first().map_or("", String::as_str)))?;
        let options = SinkOptions {
            uid: Some(sink.name.clone()),
            committer_parallelism: sink.committer_parallelism,
        };
        let native = match sink.connector.as_str() {
            "blackhole" => Some(BoxedSink::new(ChunkBlackhole)),
            "files" => {
                let ctx = sink.settings.context(&sink.name);
                match create_chunk_sink(&sink.settings.options, &ctx) {
                    Ok(Some(files)) => {
                        if let Some(buckets) = files.buckets {
                            stream = stream.flat_map(move |chunk| buckets.split(chunk));
                        }
                        Some(files.sink)
                    }
                    Ok(None) => None,
                    Err(e) => {
                        return Err(RuntimeError::InvalidJob(vec![format!(
                            "sink `{}`: {e}",
                            sink.name
                        )]))
                    }
                }
            }
            _ => None,
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
    Ok(layout)
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

/// The `blackhole` sink on chunks: drops them, counting their rows.
#[derive(Debug, Clone, Copy)]
struct ChunkBlackhole;

impl Sink<Chunk> for ChunkBlackhole {
    type Writer = ChunkBlackholeWriter;

    fn create_writer(&self, ctx: &dyn InitContext) -> ConnectorResult<ChunkBlackholeWriter> {
        let group = ctx.metric_group();
        Ok(ChunkBlackholeWriter {
            metrics: SinkWriterMetrics::new(&*group),
            records_in: group.counter(NUM_RECORDS_IN),
        })
    }

    fn capabilities(self: Arc<Self>) -> SinkCapabilities<Chunk, ChunkBlackholeWriter> {
        SinkCapabilities::none()
    }
}

/// The writer of [`ChunkBlackhole`].
struct ChunkBlackholeWriter {
    metrics: SinkWriterMetrics,
    /// The writer operator's `numRecordsIn`: the runtime counts one per chunk, the writer adds
    /// the chunk's other rows, so it counts rows as on the row path.
    records_in: Counter,
}

impl fmt::Debug for ChunkBlackholeWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkBlackholeWriter")
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl SinkWriter<Chunk> for ChunkBlackholeWriter {
    fn write(&mut self, chunk: Chunk, _ctx: &WriteContext) -> ConnectorResult<()> {
        let rows = chunk.num_rows() as u64;
        self.metrics.add_records_send(rows);
        self.records_in.add(rows.saturating_sub(1));
        Ok(())
    }

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<ConnectorResult<()>> {
        Poll::Ready(Ok(()))
    }

    async fn flush(&mut self, _mode: FlushMode) -> ConnectorResult<()> {
        Ok(())
    }
}

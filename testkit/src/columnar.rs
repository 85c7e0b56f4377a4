//! Conformance of the Arrow factory contract (API line 1.1): a connector that declares a
//! columnar source or sink must read and write exactly what its Row factories do.
//!
//! - [`check_chunk_source`] runs a connector's columnar source and its Row source with the same
//!   options, each to its end in a job of its own, and compares the rows (kinds included).
//! - [`check_chunk_sink`] writes the same rows through the connector's Row sink and, as chunks,
//!   through its columnar sink, each to its own place, then reads both back with the
//!   connector's own Row source and compares.
//!
//! Both need bounded reads, and compare rows as multisets (the order across splits and
//! parallel subtasks is not defined). A connector without the ability, or options it refuses to
//! run on columns, is a finding, not a pass.
//!
//! ```no_run
//! use std::collections::BTreeMap;
//! use weir_connector_api::row::{DataType, Field, Schema};
//! use weir_testkit::columnar::{check_chunk_source, Node};
//!
//! # async fn run() -> Result<(), String> {
//! let schema = Schema::new(vec![Field::new("id", DataType::Int64, false)]);
//! let options = BTreeMap::from([("number-of-rows".to_owned(), "5000".to_owned())]);
//! let rows = check_chunk_source(&Node::new("datagen", options, schema)).await?;
//! assert_eq!(rows, 5000);
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use weir_connector_api::columnar::{arrow_schema, Chunk, ChunkSinkParts, Columnar};
use weir_connector_api::config::ValidatedConfig;
use weir_connector_api::erased::{BoxedSink, BoxedSource};
use weir_connector_api::error::Result as ConnectorResult;
use weir_connector_api::factory::{find_connector, ConnectorFactory, FactoryContext, JobContext};
use weir_connector_api::row::{Row, Schema};
use weir_connector_api::sink::{FlushMode, InitContext, Sink, SinkWriter, WriteContext};
use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_runtime::{CheckpointConfig, JobConfig, JobStatus, StreamEnvironment};

/// How long one job of a check may run.
const JOB_TIMEOUT: Duration = Duration::from_secs(120);

/// Rows per chunk that [`check_chunk_sink`] hands the columnar sink.
pub const SINK_CHUNK_ROWS: usize = 500;

/// A pipeline node: a connector, its options, its schema and its format (as a pipeline file
/// would give them).
#[derive(Debug, Clone)]
pub struct Node {
    /// The connector's identifier.
    pub connector: String,
    /// Its options.
    pub options: BTreeMap<String, String>,
    /// The rows' schema.
    pub schema: Schema,
    /// The format's identifier and options, if any.
    pub format: Option<(String, BTreeMap<String, String>)>,
}

impl Node {
    /// A node without a format.
    pub fn new(connector: &str, options: BTreeMap<String, String>, schema: Schema) -> Self {
        Node {
            connector: connector.to_owned(),
            options,
            schema,
            format: None,
        }
    }

    /// With a format.
    #[must_use]
    pub fn format(mut self, id: &str, options: BTreeMap<String, String>) -> Self {
        self.format = Some((id.to_owned(), options));
        self
    }

    /// The same node with other options (e.g. another path).
    #[must_use]
    pub fn with_options(&self, options: BTreeMap<String, String>) -> Self {
        Node {
            options,
            ..self.clone()
        }
    }

    fn factory(&self) -> Result<&'static dyn ConnectorFactory, String> {
        find_connector(&self.connector)
            .ok_or_else(|| format!("no connector `{}` is registered", self.connector))
    }

    /// The options and format, validated as `role` by the connector's option set.
    fn validated(
        &self,
        options: &weir_connector_api::config::OptionSet,
    ) -> Result<(ValidatedConfig, Option<(String, ValidatedConfig)>), String> {
        let config = options
            .validate(&self.options)
            .map_err(|e| format!("{}: {e}", self.connector))?;
        let format = match &self.format {
            None => None,
            Some((id, options)) => {
                let format = weir_connector_api::format::find_format(id)
                    .ok_or_else(|| format!("no format `{id}` is registered"))?;
                let config = format
                    .options()
                    .validate(options)
                    .map_err(|e| format!("format `{id}`: {e}"))?;
                Some((id.clone(), config))
            }
        };
        Ok((config, format))
    }
}

fn context<'a>(
    node: &'a Node,
    format: Option<&'a (String, ValidatedConfig)>,
) -> FactoryContext<'a> {
    FactoryContext {
        name: "check",
        schema: &node.schema,
        format: format.map(|(id, config)| (id.as_str(), config)),
    }
}

/// Runs `node`'s columnar source and its Row source to their ends and compares their rows.
/// Returns how many rows each read.
///
/// # Errors
/// What differs or failed, in words.
pub async fn check_chunk_source(node: &Node) -> Result<usize, String> {
    let factory = node.factory()?;
    let rows_factory = factory
        .as_source()
        .ok_or_else(|| format!("`{}` has no source", node.connector))?;
    let chunk_factory = factory.as_chunk_source().ok_or_else(|| {
        format!(
            "`{}` declares no columnar source (ConnectorFactory::as_chunk_source)",
            node.connector
        )
    })?;
    let (config, format) = node.validated(&rows_factory.source_options())?;
    let ctx = context(node, format.as_ref());
    let job = JobContext::new();
    let rows_source = rows_factory
        .create_source_in_job(&config, &ctx, &job)
        .map_err(|e| format!("the Row source: {e}"))?;
    let chunk_source = match chunk_factory
        .create_chunk_source(&config, &ctx, &job)
        .map_err(|e| format!("the columnar source: {e}"))?
    {
        Columnar::Chunks(source) => source,
        Columnar::RowsOnly(why) => return Err(format!("these options need rows: {why}")),
        _ => return Err("the columnar source answered neither chunks nor rows".to_owned()),
    };
    let rows = read_to_end("rows", rows_source).await?;
    let chunks = read_to_end("chunks", chunk_source).await?;
    let mut chunk_rows = Vec::with_capacity(rows.len());
    let schema = arrow_schema(&node.schema);
    for chunk in &chunks {
        if chunk.batch().schema_ref().fields() != schema.fields() {
            return Err(format!(
                "a chunk's schema is {:?}, not the pipeline schema's Arrow schema {:?}",
                chunk.batch().schema(),
                schema
            ));
        }
        chunk
            .for_each_row(|row| chunk_rows.push(row))
            .map_err(|e| format!("a chunk does not convert to rows: {e}"))?;
    }
    same_rows(rows, chunk_rows, "the Row source", "the columnar source")
}

/// Writes `rows` through `node`'s Row sink (with `row_options`) and, as chunks of
/// [`SINK_CHUNK_ROWS`], through its columnar sink (with `chunk_options`), then reads both
/// outputs back with the connector's Row source (`read_back` gives its node for each sink's
/// options) and compares them: equal rows, as many as `rows`. Returns how many rows each
/// wrote.
///
/// # Errors
/// What differs or failed, in words.
pub async fn check_chunk_sink(
    row_node: &Node,
    chunk_node: &Node,
    rows: &[Row],
    read_back: impl Fn(&Node) -> Node,
) -> Result<usize, String> {
    let factory = row_node.factory()?;
    let rows_factory = factory
        .as_sink()
        .ok_or_else(|| format!("`{}` has no sink", row_node.connector))?;
    let chunk_factory = factory.as_chunk_sink().ok_or_else(|| {
        format!(
            "`{}` declares no columnar sink (ConnectorFactory::as_chunk_sink)",
            row_node.connector
        )
    })?;
    let job = JobContext::new();
    let (config, format) = row_node.validated(&rows_factory.sink_options())?;
    let row_sink = rows_factory
        .create_sink_in_job(&config, &context(row_node, format.as_ref()), &job)
        .map_err(|e| format!("the Row sink: {e}"))?;
    let (config, format) = chunk_node.validated(&rows_factory.sink_options())?;
    let parts = match chunk_factory
        .create_chunk_sink(&config, &context(chunk_node, format.as_ref()), &job)
        .map_err(|e| format!("the columnar sink: {e}"))?
    {
        Columnar::Chunks(parts) => parts,
        Columnar::RowsOnly(why) => return Err(format!("these options need rows: {why}")),
        _ => return Err("the columnar sink answered neither chunks nor rows".to_owned()),
    };
    let schema = arrow_schema(&row_node.schema);
    let chunks = rows
        .chunks(SINK_CHUNK_ROWS)
        .map(|part| Chunk::from_rows(&schema, part))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the rows do not fit the schema: {e}"))?;
    write_all("rows", rows.to_vec(), row_sink).await?;
    write_chunks(chunks, parts).await?;
    let mut read = Vec::new();
    for node in [row_node, chunk_node] {
        let back = read_back(node);
        let factory = back.factory()?;
        let source = factory
            .as_source()
            .ok_or_else(|| format!("`{}` has no source to read back with", back.connector))?;
        let (config, format) = back.validated(&source.source_options())?;
        let reader = source
            .create_source_in_job(&config, &context(&back, format.as_ref()), &job)
            .map_err(|e| format!("reading back: {e}"))?;
        read.push(read_to_end("read back", reader).await?);
    }
    let from_chunks = read.pop().unwrap_or_default();
    let from_rows = read.pop().unwrap_or_default();
    // Not compared with the input row for row: a format may not hold every value as it was
    // (CSV reads a null text back as an empty one); both sinks must write the same, and all of
    // it.
    if from_rows.len() != rows.len() {
        return Err(format!(
            "{} rows were written, {} read back from the Row sink's output",
            rows.len(),
            from_rows.len()
        ));
    }
    same_rows(
        from_rows,
        from_chunks,
        "the Row sink's output",
        "the columnar sink's output",
    )
}

/// Compares two multisets of rows; their size when equal.
fn same_rows(a: Vec<Row>, b: Vec<Row>, a_name: &str, b_name: &str) -> Result<usize, String> {
    let key = |rows: Vec<Row>| {
        let mut keys: Vec<String> = rows.iter().map(|r| format!("{r:?}")).collect();
        keys.sort_unstable();
        keys
    };
    let (len_a, len_b) = (a.len(), b.len());
    let (a, b) = (key(a), key(b));
    if a == b {
        return Ok(len_a);
    }
    let first = a
        .iter()
        .zip(&b)
        .position(|(x, y)| x != y)
        .unwrap_or(len_a.min(len_b));
    Err(format!(
        "{a_name} has {len_a} rows, {b_name} {len_b}; in sorted order they first differ at \
         row {first}: {:?} vs {:?}",
        a.get(first),
        b.get(first)
    ))
}

/// Runs a job reading `source` to its end; its records.
async fn read_to_end<T: Clone + Send + 'static>(
    name: &str,
    source: BoxedSource<T>,
) -> Result<Vec<T>, String> {
    let env = StreamEnvironment::new(config(name));
    let collected = Collect::default();
    env.from_source(source, WatermarkStrategy::no_watermarks(), name)
        .sink_to(collected.clone());
    run(name, env).await?;
    Ok(collected.take())
}

/// Runs a job writing `records` into `sink`.
async fn write_all<T: Clone + Send + Sync + 'static>(
    name: &str,
    records: Vec<T>,
    sink: BoxedSink<T>,
) -> Result<(), String> {
    let env = StreamEnvironment::new(config(name));
    from_records(&env, records).sink_to(sink);
    run(name, env).await
}

/// Runs a job writing `chunks` into a columnar sink, cut by its splitter first.
async fn write_chunks(chunks: Vec<Chunk>, parts: ChunkSinkParts) -> Result<(), String> {
    let env = StreamEnvironment::new(config("chunks"));
    let mut stream = from_records(&env, chunks);
    if let Some(split) = parts.split {
        stream = stream.flat_map(move |chunk| split(chunk));
    }
    stream.sink_to(parts.sink);
    run("chunks", env).await
}

/// A bounded stream of `records` (a generator source over them).
fn from_records<T: Clone + Send + Sync + 'static>(
    env: &StreamEnvironment,
    records: Vec<T>,
) -> weir_runtime::DataStream<T> {
    let count = records.len() as u64;
    let records = Arc::new(records);
    let source = DataGeneratorSource::new(
        move |n: u64| {
            records[usize::try_from(n)
                .unwrap_or(usize::MAX)
                .min(records.len() - 1)]
            .clone()
        },
        Some(count),
        RateLimiterStrategy::no_op(),
    );
    env.from_source(source, WatermarkStrategy::no_watermarks(), "records")
}

fn config(name: &str) -> JobConfig {
    JobConfig::new(&format!("columnar-check-{name}"))
        .parallelism(1)
        .checkpointing(CheckpointConfig::every(Duration::from_millis(100)))
}

async fn run(name: &str, env: StreamEnvironment) -> Result<(), String> {
    let job = env.build().map_err(|e| format!("{name}: {e}"))?;
    let result = tokio::time::timeout(JOB_TIMEOUT, job.start().wait())
        .await
        .map_err(|_| format!("{name}: the job did not finish in {JOB_TIMEOUT:?}"))?;
    match result.status {
        JobStatus::Finished => Ok(()),
        other => Err(format!("{name}: the job ended {other:?}")),
    }
}

/// A sink that keeps every record, in arrival order.
struct Collect<T>(Arc<Mutex<Vec<T>>>);

impl<T> Default for Collect<T> {
    fn default() -> Self {
        Collect(Arc::default())
    }
}

impl<T> Clone for Collect<T> {
    fn clone(&self) -> Self {
        Collect(Arc::clone(&self.0))
    }
}

impl<T> fmt::Debug for Collect<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Collect").finish_non_exhaustive()
    }
}

impl<T> Collect<T> {
    fn take(&self) -> Vec<T> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The writer of [`Collect`].
struct CollectWriter<T>(Arc<Mutex<Vec<T>>>);

#[async_trait::async_trait]
impl<T: Send + 'static> SinkWriter<T> for CollectWriter<T> {
    fn write(&mut self, element: T, _ctx: &WriteContext) -> ConnectorResult<()> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(element);
        Ok(())
    }
    async fn flush(&mut self, _mode: FlushMode) -> ConnectorResult<()> {
        Ok(())
    }
}

impl<T: Send + 'static> Sink<T> for Collect<T> {
    type Writer = CollectWriter<T>;
    fn create_writer(&self, _ctx: &dyn InitContext) -> ConnectorResult<CollectWriter<T>> {
        Ok(CollectWriter(Arc::clone(&self.0)))
    }
}

//! Test contexts shared by the files connector's tests: the testkit source and sink contexts
//! over any filesystem, and output checks.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use weir_connector_api::source::Boundedness;
use weir_connector_files::format::SerdeRecords;
use weir_connector_files::fs::FileSystem;
use weir_connector_files::fs::{file_name, is_hidden_name, join};
use weir_connector_files::sink::BasePathBucketAssigner;
use weir_connector_files::sink::RollingPolicy;
use weir_connector_files::sink::{FileCompactStrategy, FileCompactor};
use weir_connector_files::{FileSink, FileSource, JsonLinesFormat, ParquetFormat};
use weir_testkit::prelude::*;

/// What the sink under test writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkKind {
    /// JSON lines, rolling by size (in-progress files span checkpoints).
    Json,
    /// Parquet (rolls at every checkpoint).
    Parquet,
    /// Parquet with compaction every 2 checkpoints.
    CompactedParquet,
    /// JSON lines with size-triggered concat compaction.
    CompactedJson,
}

/// Lists every file under `dir` and fails if any hidden or in-progress one is left, or if an
/// in-progress file (multipart upload) is still open.
pub async fn visible_files(
    fs: &Arc<dyn FileSystem>,
    dir: &str,
) -> Result<Vec<String>, ContextError> {
    let files = fs.list_files(dir).await?;
    let hidden: Vec<&str> = files
        .iter()
        .map(|f| f.path.as_str())
        .filter(|p| is_hidden_name(file_name(p)))
        .collect();
    if !hidden.is_empty() {
        return Err(ContextError::external(format!(
            "hidden or in-progress files are left in {dir}: {hidden:?}"
        )));
    }
    let open = fs.recoverable_writer().list_in_progress(dir).await?;
    if !open.is_empty() {
        return Err(ContextError::external(format!(
            "in-progress files are left open under {dir}: {open:?}"
        )));
    }
    Ok(files.into_iter().map(|f| f.path).collect())
}

/// Decodes JSON lines.
pub fn parse_json(bytes: &[u8]) -> Result<Vec<SplitRecord>, ContextError> {
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).map_err(ContextError::external))
        .collect()
}

/// Decodes a Parquet file with our own reader.
pub fn parse_parquet(bytes: Bytes) -> Result<Vec<SplitRecord>, ContextError> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(ParquetRecordBatchReaderBuilder::build)
        .map_err(ContextError::external)?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(ContextError::external)?;
        let records: Vec<SplitRecord> =
            serde_arrow::from_record_batch(&batch).map_err(ContextError::external)?;
        out.extend(records);
    }
    Ok(out)
}

/// The sink suite's context over a filesystem.
pub struct FileSinkContext {
    pub fs: Arc<dyn FileSystem>,
    pub root: String,
    pub kind: SinkKind,
    pub name: String,
    /// Keeps a local root alive.
    pub _dir: Option<Arc<tempfile::TempDir>>,
}

impl FileSinkContext {
    pub fn base(&self, test_id: &str) -> String {
        join(&self.root, test_id)
    }
}

#[async_trait]
impl SinkContext for FileSinkContext {
    type Record = SplitRecord;
    type Sink = FileSink<SplitRecord>;

    fn name(&self) -> String {
        self.name.clone()
    }

    fn support(&self) -> SinkSupport {
        SinkSupport::exactly_once()
    }

    fn create_sink(&self, settings: &SinkSettings) -> Result<Self::Sink, ContextError> {
        let base = self.base(&settings.test_id);
        let fs = Arc::clone(&self.fs);
        let json_rolling = RollingPolicy::default_policy()
            .with_part_size(3000)
            .with_rollover_interval(Duration::from_millis(50));
        let sink = match self.kind {
            SinkKind::Json => FileSink::row(fs, base, JsonLinesFormat::<SplitRecord>::new())
                .bucket_assigner(BasePathBucketAssigner)
                .rolling_policy(json_rolling)
                .suffix(".jsonl")
                .build()?,
            SinkKind::CompactedJson => {
                FileSink::row(fs, base, JsonLinesFormat::<SplitRecord>::new())
                    .bucket_assigner(BasePathBucketAssigner)
                    .rolling_policy(json_rolling)
                    .suffix(".jsonl")
                    .enable_compaction(
                        FileCompactStrategy::builder()
                            .size_threshold(20_000)
                            .enable_compaction_on_checkpoint(3)
                            .num_compact_threads(2)
                            .build()?,
                        FileCompactor::Concat,
                    )
                    .build()?
            }
            SinkKind::Parquet | SinkKind::CompactedParquet => {
                let records = SerdeRecords::<SplitRecord>::traced()?.batch_size(128);
                let mut b = FileSink::bulk(fs, base, ParquetFormat::new(records.to_batches()))
                    .bucket_assigner(|r: &SplitRecord, _: &_| format!("split-{}", r.split))
                    .suffix(".parquet");
                if self.kind == SinkKind::CompactedParquet {
                    b = b.enable_compaction(
                        FileCompactStrategy::builder()
                            .enable_compaction_on_checkpoint(2)
                            .build()?,
                        FileCompactor::RecordWise,
                    );
                }
                b.build()?
            }
        };
        Ok(sink)
    }

    async fn read_back(&self, settings: &SinkSettings) -> Result<Vec<SplitRecord>, ContextError> {
        let base = self.base(&settings.test_id);
        let mut out = Vec::new();
        for path in visible_files(&self.fs, &base).await? {
            let bytes = self.fs.read_all(&path).await?;
            match self.kind {
                SinkKind::Json | SinkKind::CompactedJson => out.extend(parse_json(&bytes)?),
                SinkKind::Parquet | SinkKind::CompactedParquet => out.extend(parse_parquet(bytes)?),
            }
        }
        Ok(out)
    }

    fn records(
        &self,
        settings: &SinkSettings,
        split: usize,
        positions: Range<u64>,
    ) -> Vec<SplitRecord> {
        positions
            .map(|i| SplitRecord::new(split as u32, i, settings.seed))
            .collect()
    }
}

/// The source suite's context over a filesystem: split `k` is the directory `split-k/`, each
/// write a new JSON-lines file in it, published atomically.
pub struct FileSourceContext {
    pub fs: Arc<dyn FileSystem>,
    pub root: String,
    pub name: String,
    pub _dir: Option<Arc<tempfile::TempDir>>,
}

struct DirWriter {
    fs: Arc<dyn FileSystem>,
    dir: String,
    files: u32,
}

#[async_trait]
impl SplitWriter<SplitRecord> for DirWriter {
    async fn write(&mut self, records: &[SplitRecord]) -> Result<(), ContextError> {
        let mut bytes = Vec::new();
        for r in records {
            serde_json::to_writer(&mut bytes, r).map_err(ContextError::external)?;
            bytes.push(b'\n');
        }
        let path = join(&self.dir, &format!("part-{:05}.jsonl", self.files));
        self.files += 1;
        self.fs.write_atomic(&path, Bytes::from(bytes)).await?;
        Ok(())
    }
}

#[async_trait]
impl SourceContext for FileSourceContext {
    type Record = SplitRecord;
    type Source = PacedSource;

    fn name(&self) -> String {
        self.name.clone()
    }

    fn support(&self) -> SourceSupport {
        SourceSupport::written().bounded().unbounded()
    }

    fn create_source(&self, settings: &SourceSettings) -> Result<Self::Source, ContextError> {
        let mut b = FileSource::row(
            Arc::clone(&self.fs),
            [join(&self.root, &settings.test_id)],
            JsonLinesFormat::<SplitRecord>::new(),
        )
        .include("**/*.jsonl")?
        .ordered_per_directory(true)
        .max_records_per_poll(8);
        if settings.boundedness == Boundedness::ContinuousUnbounded {
            // One hour; `from_hours` is newer than this crate's MSRV (this file is shared with
            // the S3 crate's tests, whose MSRV has it).
            #[allow(clippy::duration_suboptimal_units)]
            let retention = Duration::from_secs(3600);
            b = b
                .monitor_continuously(Duration::from_millis(20))
                .retention(retention);
        }
        Ok(PacedSource {
            inner: b.build()?,
            rate: settings.rate,
        })
    }

    async fn create_split_writer(
        &mut self,
        settings: &SourceSettings,
        split: usize,
    ) -> Result<Box<dyn SplitWriter<SplitRecord>>, ContextError> {
        Ok(Box::new(DirWriter {
            fs: Arc::clone(&self.fs),
            dir: join(
                &join(&self.root, &settings.test_id),
                &format!("split-{split}"),
            ),
            files: 0,
        }))
    }

    fn records(
        &self,
        settings: &SourceSettings,
        split: usize,
        positions: Range<u64>,
    ) -> Vec<SplitRecord> {
        positions
            .map(|i| SplitRecord::new(split as u32, i, settings.seed))
            .collect()
    }
}

/// Logs to stderr when `RUST_LOG` is set.
pub fn init_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("RUST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_test_writer()
                .try_init();
        }
    });
}

/// A file source paced by datagen's rate limiter (the suites' `SourceSettings::rate` hint).
pub struct PacedSource {
    pub inner: FileSource<SplitRecord>,
    pub rate: Option<f64>,
}

impl weir_connector_api::source::Source for PacedSource {
    type Output = SplitRecord;
    type Split = weir_connector_files::source::FileSourceSplit;
    type Reader = weir_connector_datagen::RateLimitedSourceReader<
        weir_connector_files::source::FileSourceReader<SplitRecord>,
    >;
    type Enumerator = weir_connector_files::source::FileEnumerator;

    fn boundedness(&self) -> Boundedness {
        self.inner.boundedness()
    }
    fn create_reader(
        &self,
        ctx: Arc<dyn weir_connector_api::source::SourceReaderContext>,
    ) -> weir_connector_api::error::Result<Self::Reader> {
        let strategy = self.rate.map_or(
            weir_connector_datagen::RateLimiterStrategy::no_op(),
            weir_connector_datagen::RateLimiterStrategy::per_second,
        );
        let limiter = strategy.create_rate_limiter(ctx.subtask_index(), ctx.parallelism())?;
        Ok(weir_connector_datagen::RateLimitedSourceReader::new(
            self.inner.create_reader(ctx)?,
            limiter,
        ))
    }
    fn create_enumerator(
        &self,
        ctx: weir_connector_api::source::EnumeratorContextOf<Self>,
    ) -> weir_connector_api::error::Result<Self::Enumerator> {
        self.inner.create_enumerator(ctx)
    }
    fn restore_enumerator(
        &self,
        ctx: weir_connector_api::source::EnumeratorContextOf<Self>,
        state: weir_connector_files::source::FileEnumeratorState,
    ) -> weir_connector_api::error::Result<Self::Enumerator> {
        self.inner.restore_enumerator(ctx, state)
    }
    fn split_serializer(
        &self,
    ) -> Arc<dyn weir_connector_api::state::VersionedSerializer<Self::Split>> {
        self.inner.split_serializer()
    }
    fn enumerator_state_serializer(
        &self,
    ) -> Arc<
        dyn weir_connector_api::state::VersionedSerializer<
            weir_connector_files::source::FileEnumeratorState,
        >,
    > {
        self.inner.enumerator_state_serializer()
    }
}

/// A typed record for format tests.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Order {
    pub id: u64,
    pub customer: String,
    pub amount: f64,
    pub note: Option<String>,
}

impl Order {
    pub fn new(id: u64) -> Self {
        Order {
            id,
            customer: format!("customer-{}", id % 17),
            amount: id as f64 * 0.5,
            note: id.is_multiple_of(3).then(|| format!("note {id}")),
        }
    }
}

/// A sink that collects what it is given (for reading a bounded source in a job).
pub struct Collect<T>(pub Arc<std::sync::Mutex<Vec<T>>>);

impl<T> Clone for Collect<T> {
    fn clone(&self) -> Self {
        Collect(Arc::clone(&self.0))
    }
}

impl<T> Default for Collect<T> {
    fn default() -> Self {
        Collect(Arc::new(std::sync::Mutex::new(Vec::new())))
    }
}

pub struct CollectWriter<T>(Arc<std::sync::Mutex<Vec<T>>>, Vec<T>);

#[async_trait]
impl<T: Send + 'static> weir_connector_api::sink::SinkWriter<T> for CollectWriter<T> {
    fn write(
        &mut self,
        element: T,
        _ctx: &weir_connector_api::sink::WriteContext,
    ) -> weir_connector_api::error::Result<()> {
        self.1.push(element);
        Ok(())
    }
    async fn flush(
        &mut self,
        _mode: weir_connector_api::sink::FlushMode,
    ) -> weir_connector_api::error::Result<()> {
        self.0.lock().unwrap().append(&mut self.1);
        Ok(())
    }
}

impl<T: Send + 'static> weir_connector_api::sink::Sink<T> for Collect<T> {
    type Writer = CollectWriter<T>;
    fn create_writer(
        &self,
        _ctx: &dyn weir_connector_api::sink::InitContext,
    ) -> weir_connector_api::error::Result<CollectWriter<T>> {
        Ok(CollectWriter(Arc::clone(&self.0), Vec::new()))
    }
}

/// Reads a bounded source to the end in a job at parallelism `p`.
pub async fn read_all<S>(source: S, p: usize) -> Vec<S::Output>
where
    S: weir_connector_api::source::Source,
{
    let out = Collect::<S::Output>::default();
    let env = weir_runtime::StreamEnvironment::new(
        weir_runtime::JobConfig::new("read-all")
            .parallelism(p)
            .checkpointing(weir_runtime::CheckpointConfig::every(
                Duration::from_millis(20),
            )),
    );
    env.from_source(
        source,
        weir_connector_api::watermark::WatermarkStrategy::no_watermarks(),
        "files",
    )
    .sink_to(out.clone());
    let result = env.build().unwrap().execute().await;
    assert!(result.is_finished(), "{:?}", result.status);
    let v = std::mem::take(&mut *out.0.lock().unwrap());
    v
}

/// Writes `records` through `sink` in a job at parallelism `p` (datagen feeder, checkpoints
/// every `interval`), returning the completed checkpoints.
pub async fn write_all<T, K>(
    records: Vec<T>,
    sink: K,
    p: usize,
    interval: Duration,
    rate: Option<f64>,
) -> u64
where
    T: Clone + Send + Sync + 'static,
    K: weir_connector_api::sink::Sink<T>,
{
    let data = Arc::new(records);
    let n = data.len() as u64;
    let rate = rate.map_or(
        weir_connector_datagen::RateLimiterStrategy::no_op(),
        weir_connector_datagen::RateLimiterStrategy::per_second,
    );
    let feeder = weir_connector_datagen::DataGeneratorSource::new(
        move |i| data.get(i as usize).cloned(),
        Some(n),
        rate,
    );
    let env = weir_runtime::StreamEnvironment::new(
        weir_runtime::JobConfig::new("write-all")
            .parallelism(p)
            .checkpointing(weir_runtime::CheckpointConfig::every(interval)),
    );
    env.from_source(
        feeder,
        weir_connector_api::watermark::WatermarkStrategy::no_watermarks(),
        "feeder",
    )
    .flat_map(|r: Option<T>| r)
    .sink_to(sink);
    let result = env.build().unwrap().execute().await;
    assert!(result.is_finished(), "{:?}", result.status);
    result.completed_checkpoints
}

/// The Python of the test venv with pyarrow, or a panic that says how to install it.
pub fn pyarrow_python() -> std::path::PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest
        .ancestors()
        .find(|p| p.join("Cargo.lock").exists())
        .unwrap_or(manifest);
    let python = root.join("target/test-servers/venv/bin/python");
    let ok = std::process::Command::new(&python)
        .args(["-c", "import pyarrow, pyarrow.parquet, pyarrow.orc"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "pyarrow is not installed in {}: run `cargo xtask deps` (it installs pyarrow==26.0.1 \
         into target/test-servers/venv)",
        python.display()
    );
    python
}

/// Reads Parquet or ORC files with pyarrow (an independent reader) and returns the rows as JSON
/// objects, sorted by `id`.
pub fn pyarrow_read(files: &[String], orc: bool) -> Vec<serde_json::Value> {
    let python = pyarrow_python();
    let script = r#"
import json, sys
import pyarrow.parquet as pq
import pyarrow.orc as orc
import pyarrow as pa
kind = sys.argv[1]
rows = []
for path in sys.argv[2:]:
    table = orc.read_table(path) if kind == "orc" else pq.read_table(path)
    rows.extend(table.to_pylist())
rows.sort(key=lambda r: r["id"])
print(json.dumps(rows))
"#;
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(if orc { "orc" } else { "parquet" })
        .args(files)
        .output()
        .expect("running python");
    assert!(
        out.status.success(),
        "pyarrow could not read the files: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("pyarrow's JSON")
}

/// Decodes a Parquet file of [`Order`]s.
pub fn parse_parquet_orders(bytes: Bytes) -> Vec<Order> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(ParquetRecordBatchReaderBuilder::build)
        .unwrap();
    let mut out = Vec::new();
    for batch in reader {
        let records: Vec<Order> = serde_arrow::from_record_batch(&batch.unwrap()).unwrap();
        out.extend(records);
    }
    out
}

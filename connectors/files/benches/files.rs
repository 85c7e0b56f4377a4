//! Files connector benchmarks, each against the bare library in the same run (interleaved,
//! repeated, median reported):
//!
//! 1. Parquet sink (datagen of `RecordBatch`es → `FileSink` with Parquet, p = 1, checkpoints
//!    every second so part files roll and commit) vs a bare `ArrowWriter` writing the same
//!    batches into one local file, both with and both without `fsync` (the sink's at commit, the
//!    bare file's at the end). Target: sink throughput ≥ 0.85 × bare.
//! 2. File source reading those Parquet files as batches vs a bare
//!    `ParquetRecordBatchReader`; and typed JSON lines (`FileSource` + serde) vs a bare
//!    `BufRead` + `serde_json` loop over the same files.
//!
//! `cargo bench -p weir-connector-files --bench files` (`WEIR_BENCH_ROWS`, default 4 194 304).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a benchmark binary

use std::io::BufRead;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_blackhole::BlackholeSink;
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_connector_files::fs::FileSystem;
use weir_connector_files::sink::BasePathBucketAssigner;
use weir_connector_files::sink::RollingPolicy;
use weir_connector_files::{
    Batches, Codec, FileSink, FileSource, JsonLinesFormat, LocalFileSystem, ParquetFormat,
};
use weir_runtime::{CheckpointConfig, JobConfig, StreamEnvironment};

const BATCH: usize = 8192;
const RUNS: usize = 7;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Order {
    id: i64,
    customer: String,
    amount: f64,
}

fn batches(rows: usize) -> Arc<Vec<RecordBatch>> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("customer", DataType::Utf8, false),
        Field::new("amount", DataType::Float64, false),
    ]));
    let mut out = Vec::new();
    let mut start = 0;
    while start < rows {
        let n = BATCH.min(rows - start);
        let ids: Vec<i64> = (start..start + n).map(|i| i as i64).collect();
        let customers: Vec<String> = ids
            .iter()
            .map(|i| format!("customer-{}", i % 1000))
            .collect();
        let amounts: Vec<f64> = ids.iter().map(|i| *i as f64 * 0.25).collect();
        out.push(
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(Int64Array::from(ids)),
                    Arc::new(StringArray::from(customers)),
                    Arc::new(Float64Array::from(amounts)),
                ],
            )
            .unwrap(),
        );
        start += n;
    }
    Arc::new(out)
}

fn props() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(1024 * 1024))
        .build()
}

/// The bare side; with `fsync`, it makes the file and its directory durable at the end, as the
/// sink does at commit, so each comparison is like for like.
fn bare_write(batches: &[RecordBatch], path: &std::path::Path, fsync: bool) -> Duration {
    let start = Instant::now();
    let file = std::fs::File::create(path).unwrap();
    let mut w = ArrowWriter::try_new(file, batches[0].schema(), Some(props())).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    let file = w.into_inner().unwrap();
    if fsync {
        file.sync_all().unwrap();
        std::fs::File::open(path.parent().unwrap())
            .unwrap()
            .sync_all()
            .unwrap();
    }
    start.elapsed()
}

fn sink_write(
    rt: &tokio::runtime::Runtime,
    batches: &Arc<Vec<RecordBatch>>,
    dir: &str,
    fsync: bool,
) -> Duration {
    let fs: Arc<dyn FileSystem> = Arc::new(LocalFileSystem::with_fsync(fsync));
    let sink = FileSink::bulk(
        fs,
        dir.to_owned(),
        ParquetFormat::new(Batches::to_batches())
            .codec(Codec::Snappy)
            .row_group_rows(1024 * 1024),
    )
    .bucket_assigner(BasePathBucketAssigner)
    .suffix(".parquet")
    .build()
    .unwrap();
    let data = Arc::clone(batches);
    let n = data.len() as u64;
    let mut config = JobConfig::new("parquet-sink").parallelism(1);
    if std::env::var_os("WEIR_BENCH_NO_CHECKPOINTS").is_none() {
        config = config.checkpointing(CheckpointConfig::every(Duration::from_secs(1)));
    }
    let env = StreamEnvironment::new(config);
    env.from_source(
        DataGeneratorSource::new(
            move |i| data[i as usize].clone(),
            Some(n),
            RateLimiterStrategy::no_op(),
        ),
        WatermarkStrategy::no_watermarks(),
        "batches",
    )
    .sink_to(sink);
    let job = env.build().unwrap();
    let start = Instant::now();
    let result = rt.block_on(job.execute());
    let elapsed = start.elapsed();
    assert!(result.is_finished(), "{:?}", result.status);
    elapsed
}

fn bare_read(files: &[String]) -> (Duration, usize) {
    let start = Instant::now();
    let mut rows = 0;
    for f in files {
        let file = std::fs::File::open(f).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .with_batch_size(BATCH)
            .build()
            .unwrap();
        for b in reader {
            rows += b.unwrap().num_rows();
        }
    }
    (start.elapsed(), rows)
}

fn source_read<S: weir_connector_api::source::Source>(
    rt: &tokio::runtime::Runtime,
    source: S,
) -> (Duration, u64)
where
    S::Output: Send,
{
    let sink = BlackholeSink::<S::Output>::new();
    let counter = sink.counter();
    let env = StreamEnvironment::new(JobConfig::new("read").parallelism(1));
    env.from_source(source, WatermarkStrategy::no_watermarks(), "files")
        .sink_to(sink);
    let job = env.build().unwrap();
    let start = Instant::now();
    let result = rt.block_on(job.execute());
    let elapsed = start.elapsed();
    assert!(result.is_finished(), "{:?}", result.status);
    (elapsed, counter.load(std::sync::atomic::Ordering::Relaxed))
}

fn bare_json(files: &[String]) -> (Duration, usize) {
    let start = Instant::now();
    let mut rows = 0;
    for f in files {
        let reader = std::io::BufReader::with_capacity(256 * 1024, std::fs::File::open(f).unwrap());
        for line in reader.lines() {
            let order: Order = serde_json::from_str(&line.unwrap()).unwrap();
            std::hint::black_box(&order);
            rows += 1;
        }
    }
    (start.elapsed(), rows)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn files_in(dir: &str) -> Vec<String> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fs = LocalFileSystem::new();
    rt.block_on(fs.list_files(dir))
        .unwrap()
        .into_iter()
        .map(|f| f.path)
        .collect()
}

fn main() {
    let rows: usize = std::env::var("WEIR_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4 * 1024 * 1024);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let data = batches(rows);
    let dir = tempfile::tempdir().unwrap();
    let bytes = {
        let p = dir.path().join("probe.parquet");
        bare_write(&data, &p, false);
        std::fs::metadata(&p).unwrap().len()
    };
    println!(
        "rows: {rows} in {} batches; Parquet file: {:.1} MiB",
        data.len(),
        bytes as f64 / 1_048_576.0
    );

    // 1. Parquet sink vs bare ArrowWriter (the sink with and without fsync at commit).
    let rate = |d: Duration| rows as f64 / d.as_secs_f64() / 1e6;
    for fsync in [false, true] {
        let (mut bare, mut sink) = (Vec::new(), Vec::new());
        for run in 0..RUNS {
            let bare_path = dir.path().join(format!("bare-{fsync}-{run}.parquet"));
            let out = dir.path().join(format!("sink-{fsync}-{run}"));
            // Alternate which side goes first (page cache and writeback of the previous run).
            if run % 2 == 0 {
                bare.push(bare_write(&data, &bare_path, fsync));
                sink.push(sink_write(&rt, &data, &out.to_string_lossy(), fsync));
            } else {
                sink.push(sink_write(&rt, &data, &out.to_string_lossy(), fsync));
                bare.push(bare_write(&data, &bare_path, fsync));
            }
            std::fs::remove_file(&bare_path).unwrap();
        }
        let (b, s) = (median(bare), median(sink));
        println!(
            "parquet write (sink fsync {fsync}): bare ArrowWriter {:.2} M rows/s ({:?}), FileSink {:.2} M rows/s ({:?}), ratio {:.3}",
            rate(b), b, rate(s), s, b.as_secs_f64() / s.as_secs_f64()
        );
    }

    // 2a. Parquet read: FileSource (batches) vs bare reader, over the sink's files of run 0.
    let sink_dir = dir
        .path()
        .join("sink-true-0")
        .to_string_lossy()
        .into_owned();
    let files = files_in(&sink_dir);
    let (mut bare, mut ours) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let (d, n) = bare_read(&files);
        assert_eq!(n, rows);
        bare.push(d);
        let source = FileSource::parquet(
            Arc::new(LocalFileSystem::new()),
            [sink_dir.clone()],
            Batches,
        )
        .build()
        .unwrap();
        let (d, _) = source_read(&rt, source);
        ours.push(d);
    }
    let (b, o) = (median(bare), median(ours));
    println!(
        "parquet read: bare reader {:.2} M rows/s ({:?}), FileSource {:.2} M rows/s ({:?}), ratio {:.3}",
        rate(b), b, rate(o), o, b.as_secs_f64() / o.as_secs_f64()
    );

    // 2b. JSON lines, typed: FileSource + serde vs BufRead + serde_json.
    let json_rows = rows / 4;
    let json_dir = dir.path().join("json").to_string_lossy().into_owned();
    let orders: Arc<Vec<Order>> = Arc::new(
        (0..json_rows)
            .map(|i| Order {
                id: i as i64,
                customer: format!("customer-{}", i % 1000),
                amount: i as f64 * 0.25,
            })
            .collect(),
    );
    {
        let sink = FileSink::row(
            Arc::new(LocalFileSystem::new()),
            json_dir.clone(),
            JsonLinesFormat::<Order>::new(),
        )
        .bucket_assigner(BasePathBucketAssigner)
        .rolling_policy(RollingPolicy::default_policy().with_part_size(64 << 20))
        .build()
        .unwrap();
        let n = orders.len() as u64;
        let env = StreamEnvironment::new(
            JobConfig::new("json")
                .parallelism(1)
                .checkpointing(CheckpointConfig::every(Duration::from_secs(1))),
        );
        let o = Arc::clone(&orders);
        env.from_source(
            DataGeneratorSource::new(
                move |i| o[i as usize].clone(),
                Some(n),
                RateLimiterStrategy::no_op(),
            ),
            WatermarkStrategy::no_watermarks(),
            "orders",
        )
        .sink_to(sink);
        assert!(rt.block_on(env.build().unwrap().execute()).is_finished());
    }
    let files = files_in(&json_dir);
    let (mut bare, mut ours) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let (d, n) = bare_json(&files);
        assert_eq!(n, json_rows);
        bare.push(d);
        let source = FileSource::row(
            Arc::new(LocalFileSystem::new()),
            [json_dir.clone()],
            JsonLinesFormat::<Order>::new(),
        )
        .build()
        .unwrap();
        let (d, n) = source_read(&rt, source);
        assert_eq!(n as usize, json_rows);
        ours.push(d);
    }
    let (b, o) = (median(bare), median(ours));
    let jrate = |d: Duration| json_rows as f64 / d.as_secs_f64() / 1e6;
    println!(
        "json read: bare BufRead+serde_json {:.2} M rows/s ({:?}), FileSource {:.2} M rows/s ({:?}), ratio {:.3}",
        jrate(b), b, jrate(o), o, b.as_secs_f64() / o.as_secs_f64()
    );
}

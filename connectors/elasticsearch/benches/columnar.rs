//! The Elasticsearch sink on columns against rows: CPU seconds of this process per million rows
//! for datagen → `elasticsearch` sink jobs built from the connectors' pipeline factories (the
//! parts `weir run` builds), interleaved rounds, against one noida-db on loopback:
//!
//! - **rows**: datagen's Row source → the Row sink (`WEIR_PIPELINE_ENGINE=rows`);
//! - **adapter**: datagen's columnar source → each chunk's rows (`Chunk::to_rows`, what the
//!   pipeline's adapter hands a Row sink) → the Row sink: the columnar engine before the
//!   connector wrote chunks;
//! - **chunks**: datagen's columnar source → the columnar sink (`ChunkEmitter`).
//!
//! Jobs of parallelism 1, checkpoints every 1 s, runtime batches of 1024 rows or 4 chunks (as
//! `weir run`). CPU = user + system time of this process (`/proc/self/stat`, 100 ticks a
//! second) from building the job to its end; the server's CPU is not counted. Each run writes
//! its own index (ids from a sequence), counted (every document present) and deleted.
//!
//! `cargo bench -p weir-connector-elasticsearch --bench columnar` (`WEIR_BENCH_ROWS`, default
//! 200 000; `WEIR_BENCH_ROUNDS`, default 5; `WEIR_BENCH_ONLY=rows|adapter|chunks` for one mode,
//! e.g. under `perf`). Prints one line per run and the medians.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use weir_connector_api::columnar::{Chunk, Columnar};
use weir_connector_api::config::ValidatedConfig;
use weir_connector_api::erased::BoxedSink;
use weir_connector_api::factory::{find_connector, FactoryContext, JobContext};
use weir_connector_api::row::{DataType, Field, Row, Schema};
use weir_connector_api::watermark::WatermarkStrategy;
use weir_runtime::{CheckpointConfig, JobConfig, StreamEnvironment};
use weir_testkit::servers::{http, NoidaDb};

const MODES: [&str; 3] = ["rows", "adapter", "chunks"];

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// The CPU seconds this process used (Linux: /proc/self/stat, 100 ticks a second).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    // After the command: state is field 3; utime and stime are fields 14 and 15.
    let tick = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<f64>().ok());
    tick(14)
        .zip(tick(15))
        .map_or(f64::NAN, |(u, s)| (u + s) / 100.0)
}

/// Job a's five fields (benches/columnar/job-a.toml), with a sequence id.
fn schema() -> Schema {
    Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("customer", DataType::String, false),
        Field::new("status", DataType::String, false),
        Field::new("amount", DataType::Float64, false),
        Field::new("at", DataType::TimestampMillis, false),
    ])
}

fn map(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn datagen_config(rows: usize) -> ValidatedConfig {
    let datagen = find_connector("datagen").expect("datagen is linked");
    let options = datagen.as_source().unwrap().source_options();
    options
        .validate(&map(&[
            ("number-of-rows", rows.to_string()),
            ("seed", "42".to_owned()),
            ("fields.id.kind", "sequence".to_owned()),
            ("fields.customer.length", "8".to_owned()),
            (
                "fields.status.values",
                "new,paid,shipped,cancelled".to_owned(),
            ),
            ("fields.amount.min", "1".to_owned()),
            ("fields.amount.max", "500".to_owned()),
        ]))
        .unwrap()
}

fn sink_config(url: &str, index: &str) -> ValidatedConfig {
    let es = find_connector("elasticsearch").unwrap();
    let options = es.as_sink().unwrap().sink_options();
    options
        .validate(&map(&[
            ("hosts", url.to_owned()),
            ("index", index.to_owned()),
            ("document-id.fields", "id".to_owned()),
        ]))
        .unwrap()
}

/// Runs one job of `mode`; its CPU seconds.
async fn run(mode: &str, rows: usize, url: &str, index: &str) -> f64 {
    let schema = schema();
    let ctx = FactoryContext {
        name: "orders",
        schema: &schema,
        format: None,
    };
    let job = JobContext::new();
    let datagen = find_connector("datagen").unwrap();
    let es = find_connector("elasticsearch").unwrap();
    let source_config = datagen_config(rows);
    let sink_config = sink_config(url, index);
    let checkpoints = CheckpointConfig::every(Duration::from_secs(1));
    let start = cpu_seconds();
    let env = if mode == "rows" {
        let env = StreamEnvironment::new(JobConfig::new("es-rows").checkpointing(checkpoints));
        let source = datagen
            .as_source()
            .unwrap()
            .create_source(&source_config, &ctx)
            .unwrap();
        let sink: BoxedSink<Row> = es
            .as_sink()
            .unwrap()
            .create_sink(&sink_config, &ctx)
            .unwrap();
        env.from_source(source, WatermarkStrategy::no_watermarks(), "orders")
            .sink_to(sink);
        env
    } else {
        let env = StreamEnvironment::new(
            JobConfig::new("es-chunks")
                .checkpointing(checkpoints)
                .batch_size(4),
        );
        let Columnar::Chunks(source) = datagen
            .as_chunk_source()
            .unwrap()
            .create_chunk_source(&source_config, &ctx, &job)
            .unwrap()
        else {
            panic!("datagen reads rows with these options");
        };
        let stream = env.from_source(source, WatermarkStrategy::no_watermarks(), "orders");
        if mode == "chunks" {
            let Columnar::Chunks(parts) = es
                .as_chunk_sink()
                .unwrap()
                .create_chunk_sink(&sink_config, &ctx, &job)
                .unwrap()
            else {
                panic!("the sink takes rows with these options");
            };
            stream.sink_to(parts.sink);
        } else {
            let sink: BoxedSink<Row> = es
                .as_sink()
                .unwrap()
                .create_sink(&sink_config, &ctx)
                .unwrap();
            stream
                .flat_map(|chunk: Chunk| chunk.to_rows().unwrap())
                .sink_to(sink);
        }
        env
    };
    let result = env.build().unwrap().start().wait().await;
    assert!(result.is_finished(), "{mode}: {:?}", result.status);
    cpu_seconds() - start
}

fn count(addr: std::net::SocketAddr, index: &str) -> u64 {
    let call = |method: &str, path: String| {
        http::request(addr, method, &path, &[], b"", Duration::from_secs(60)).unwrap()
    };
    call("POST", format!("/{index}/_refresh"));
    let r = call("GET", format!("/{index}/_count"));
    let answer: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    answer["count"].as_u64().unwrap_or(0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // Linked for their registered factories.
    let _ = weir_connector_datagen::factory::CHUNK_ROWS;
    let _ = &weir_connector_elasticsearch::factory::ELASTICSEARCH;
    let rows = env_usize("WEIR_BENCH_ROWS", 200_000);
    let rounds = env_usize("WEIR_BENCH_ROUNDS", 5);
    let only = std::env::var("WEIR_BENCH_ONLY").ok();
    let server = NoidaDb::start().expect("noida-db starts (run `cargo xtask deps`)");
    let url = server.elasticsearch_url();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut per_million: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    println!("# rows={rows} rounds={rounds}; CPU seconds per million rows");
    for round in 0..rounds {
        // Rotate the order so that no mode always runs first.
        for k in 0..MODES.len() {
            let mode = MODES[(round + k) % MODES.len()];
            if only.as_deref().is_some_and(|only| only != mode) {
                continue;
            }
            let index = format!("bench-columnar-{mode}-{round}");
            let t = Instant::now();
            let cpu = runtime.block_on(run(mode, rows, &url, &index));
            let wall = t.elapsed().as_secs_f64();
            let n = count(server.elasticsearch_addr(), &index);
            assert_eq!(n, rows as u64, "{mode}: documents in {index}");
            let _ = http::request(
                server.elasticsearch_addr(),
                "DELETE",
                &format!("/{index}"),
                &[],
                b"",
                Duration::from_secs(60),
            );
            let per = cpu / (rows as f64 / 1e6);
            println!("{mode} round {round}: {cpu:.2} CPU s, {per:.3} s/M rows, {wall:.1} s wall");
            per_million.entry(mode).or_default().push(per);
        }
    }
    for mode in MODES {
        let Some(v) = per_million.remove(mode) else {
            continue;
        };
        let (lo, hi) = v
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
                (a.min(*x), b.max(*x))
            });
        println!(
            "{mode}: median {:.3} CPU s / M rows ({lo:.3}–{hi:.3})",
            median(v)
        );
    }
}

//! Elasticsearch connector benchmarks against one noida-db (its Elasticsearch API) on loopback,
//! interleaved in one run:
//!
//! - **sink vs raw bulk loop**: the same documents, the same client crate (`elasticsearch`
//!   8.19), the same bulk size and the same number of requests in flight; the raw loop builds
//!   each NDJSON body from pre-serialized documents and keeps `in-flight` requests going with
//!   `buffer_unordered`; the sink runs as a job (datagen → sink, parallelism 1, 1 s
//!   checkpoints) whose emitter serializes each document. Documents per second, start to end
//!   (the job's time includes building and starting it); the raw loop goes first in even rounds.
//! - **bulk size and in-flight choices** for the sink alone (`WEIR_BENCH_ONLY=sizes`).
//! - **lookup** by id, 16 lookups in flight, with the partial cache (after one pass that loads
//!   every key) and without it, and a raw `GET` loop with the same client.
//!
//! `cargo bench -p weir-connector-elasticsearch --bench elasticsearch` (`WEIR_BENCH_DOCS`,
//! default 200 000; `WEIR_BENCH_ROUNDS`, default 5; `WEIR_BENCH_BULK`, default 1000;
//! `WEIR_BENCH_IN_FLIGHT`, default 4; `WEIR_BENCH_ONLY=sink|sizes|lookup`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use elasticsearch::http::headers::{HeaderMap, HeaderValue, CONTENT_TYPE};
use elasticsearch::http::Method;
use elasticsearch::Elasticsearch;
use futures::stream::{self, StreamExt};
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::lookup::AsyncLookupFunction;
use weir_connector_api::row::{DataType, Field, Row, Schema, Value};
use weir_connector_api::sink::WriteContext;
use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_base::lookup::DefaultLookupCache;
use weir_connector_base::sink::{AsyncSinkConfig, RetryPolicy};
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_connector_elasticsearch::lookup::{ElasticsearchLookup, LookupBy};
use weir_connector_elasticsearch::sink::{BulkAction, ElasticsearchSink};
use weir_connector_elasticsearch::ConnectionConfig;
use weir_runtime::{CheckpointConfig, JobConfig, StreamEnvironment};
use weir_testkit::servers::{http, NoidaDb};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// The document of number `n` (about 110 bytes).
fn document(n: u64) -> Vec<u8> {
    format!(
        r#"{{"id":{n},"customer":"customer-{}","amount":{}.25,"at":"2026-01-01T00:00:{:02}.000Z","status":"shipped"}}"#,
        n % 1000,
        n % 500,
        n % 60
    )
    .into_bytes()
}

fn delete_index(addr: std::net::SocketAddr, index: &str) {
    let _ = http::request(
        addr,
        "DELETE",
        &format!("/{index}"),
        &[],
        b"",
        Duration::from_secs(30),
    );
}

fn count(addr: std::net::SocketAddr, index: &str) -> u64 {
    let _ = http::request(
        addr,
        "POST",
        &format!("/{index}/_refresh"),
        &[],
        b"",
        Duration::from_secs(30),
    );
    let r = http::request(
        addr,
        "GET",
        &format!("/{index}/_count"),
        &[],
        b"",
        Duration::from_secs(30),
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    v["count"].as_u64().unwrap_or(0)
}

#[derive(serde::Deserialize)]
struct Head {
    errors: bool,
}

/// The raw loop: bodies of `bulk` documents (serialized as the sink's emitter does),
/// `in_flight` requests at a time.
async fn raw_bulk(
    client: &Elasticsearch,
    index: &str,
    n: usize,
    bulk: usize,
    in_flight: usize,
) -> Duration {
    let started = Instant::now();
    let chunks: Vec<std::ops::Range<usize>> =
        (0..n).step_by(bulk).map(|s| s..(s + bulk).min(n)).collect();
    let results: Vec<bool> = stream::iter(chunks)
        .map(|range| async move {
            let mut body = Vec::with_capacity(range.len() * 160);
            for i in range {
                body.extend_from_slice(br#"{"index":{"_index":""#);
                body.extend_from_slice(index.as_bytes());
                body.extend_from_slice(br#"","_id":""#);
                body.extend_from_slice(i.to_string().as_bytes());
                body.extend_from_slice(b"\"}}\n");
                body.extend_from_slice(&document(i as u64));
                body.push(b'\n');
            }
            let mut headers = HeaderMap::new();
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-ndjson"),
            );
            let response = client
                .send(
                    Method::Post,
                    "/_bulk",
                    headers,
                    Some(&[("filter_path", "errors,items.*.status,items.*.error")]),
                    Some(body),
                    None,
                )
                .await
                .unwrap();
            let bytes = response.bytes().await.unwrap();
            !serde_json::from_slice::<Head>(&bytes).unwrap().errors
        })
        .buffer_unordered(in_flight)
        .collect()
        .await;
    assert!(
        results.iter().all(|ok| *ok),
        "a raw bulk request had errors"
    );
    started.elapsed()
}

fn sink_config(bulk: usize, in_flight: usize) -> AsyncSinkConfig {
    AsyncSinkConfig::builder()
        .max_batch_size(bulk)
        .max_batch_size_bytes(64 * 1024 * 1024)
        .max_record_size_bytes(1024 * 1024)
        .max_buffered_entries(bulk * (in_flight + 2))
        .max_in_flight_requests(in_flight)
        .max_time_in_buffer(Duration::from_secs(1))
        .retry(RetryPolicy {
            max_retries: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
        })
        .build()
        .unwrap()
}

async fn sink_job(url: &str, index: &str, n: u64, bulk: usize, in_flight: usize) -> Duration {
    let target: Arc<str> = Arc::from(index);
    let emitter = move |n: u64, _ctx: &WriteContext| -> Result<Option<BulkAction>> {
        BulkAction::index(Arc::clone(&target), Some(n.to_string()), document(n))
            .map(Some)
            .map_err(|e| ConnectorError::malformed("bench", e.to_string()))
    };
    let sink = ElasticsearchSink::builder(ConnectionConfig::new([url]), emitter)
        .async_sink_config(sink_config(bulk, in_flight))
        .build()
        .unwrap();
    let started = Instant::now();
    let checkpoint_ms = env_usize("WEIR_BENCH_CHECKPOINT_MS", 1000);
    let mut job = JobConfig::new("bench").parallelism(1);
    if checkpoint_ms > 0 {
        job = job.checkpointing(CheckpointConfig::every(Duration::from_millis(
            checkpoint_ms as u64,
        )));
    }
    let env = StreamEnvironment::new(job);
    env.from_source(
        DataGeneratorSource::new(|n| n, Some(n), RateLimiterStrategy::no_op()),
        WatermarkStrategy::no_watermarks(),
        "docs",
    )
    .sink_to(sink);
    let result = env.build().unwrap().start().wait().await;
    assert!(result.is_finished(), "{:?}", result.status);
    started.elapsed()
}

/// User + system CPU time of a process so far, in milliseconds (Linux `/proc`; 0 elsewhere).
fn cpu_ms(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    let Some(close) = stat.rfind(')') else {
        return 0;
    };
    let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) * 10
}

/// CPU milliseconds of this process and of the server while `f` runs.
async fn with_cpu<F: std::future::Future<Output = Duration>>(
    server: u32,
    f: F,
) -> (Duration, u64, u64) {
    let (me0, sv0) = (cpu_ms(std::process::id()), cpu_ms(server));
    let d = f.await;
    (d, cpu_ms(std::process::id()) - me0, cpu_ms(server) - sv0)
}

fn per_second(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn bench_sink(
    server: &NoidaDb,
    client: &Elasticsearch,
    n: u64,
    rounds: usize,
    bulk: usize,
    in_flight: usize,
) {
    let (mut raw, mut weir, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let mut cpu: Vec<(f64, f64)> = Vec::new();
    for round in 0..rounds {
        let raw_index = format!("bench-raw-{round}");
        let sink_index = format!("bench-sink-{round}");
        let url = server.elasticsearch_url();
        let pid = server.pid();
        // Each phase's index is counted and deleted before the next phase starts: noida-db
        // slows down while it holds more documents, which would favour whichever goes first.
        let addr = server.elasticsearch_addr();
        let raw_phase = || async {
            let r = with_cpu(
                pid,
                raw_bulk(client, &raw_index, n as usize, bulk, in_flight),
            )
            .await;
            assert_eq!(count(addr, &raw_index), n, "raw loop documents");
            delete_index(addr, &raw_index);
            tokio::time::sleep(Duration::from_secs(1)).await;
            r
        };
        let sink_phase = || async {
            let w = with_cpu(pid, sink_job(&url, &sink_index, n, bulk, in_flight)).await;
            assert_eq!(count(addr, &sink_index), n, "sink documents");
            delete_index(addr, &sink_index);
            tokio::time::sleep(Duration::from_secs(1)).await;
            w
        };
        let ((r, r_cpu, r_srv), (w, w_cpu, w_srv)) = if round % 2 == 0 {
            let r = raw_phase().await;
            (r, sink_phase().await)
        } else {
            let w = sink_phase().await;
            (raw_phase().await, w)
        };
        let us = |ms: u64| ms as f64 * 1000.0 / n as f64;
        println!(
            "round {round}: cpu per doc: raw client {:.2} us, sink client {:.2} us; server {:.1} us (raw) / {:.1} us (sink)",
            us(r_cpu),
            us(w_cpu),
            us(r_srv),
            us(w_srv)
        );
        cpu.push((us(r_cpu), us(w_cpu)));
        let (rr, ww) = (per_second(n, r), per_second(n, w));
        println!(
            "round {round}: raw {:.0} docs/s ({} ms), sink {:.0} docs/s ({} ms), ratio {:.3}",
            rr,
            r.as_millis(),
            ww,
            w.as_millis(),
            ww / rr
        );
        raw.push(rr);
        weir.push(ww);
        ratios.push(ww / rr);
    }
    let (lo, hi) = ratios
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), r| (a.min(*r), b.max(*r)));
    println!(
        "sink vs raw bulk loop, {n} docs, bulk {bulk}, {in_flight} in flight, {rounds} rounds: raw median {:.0} docs/s, sink median {:.0} docs/s, median ratio {:.3} (rounds {lo:.3}-{hi:.3})",
        median(raw),
        median(weir),
        median(ratios.clone())
    );
    println!(
        "client cpu per doc: raw median {:.2} us, sink median {:.2} us",
        median(cpu.iter().map(|c| c.0).collect()),
        median(cpu.iter().map(|c| c.1).collect())
    );
}

async fn bench_sizes(server: &NoidaDb, n: u64, rounds: usize) {
    let choices = [
        (100, 4),
        (500, 4),
        (1000, 1),
        (1000, 2),
        (1000, 4),
        (2000, 4),
        (5000, 4),
    ];
    let mut results: Vec<Vec<f64>> = vec![Vec::new(); choices.len()];
    for round in 0..rounds {
        for (i, (bulk, in_flight)) in choices.iter().enumerate() {
            let index = format!("bench-size-{round}-{i}");
            let d = sink_job(&server.elasticsearch_url(), &index, n, *bulk, *in_flight).await;
            assert_eq!(count(server.elasticsearch_addr(), &index), n);
            delete_index(server.elasticsearch_addr(), &index);
            tokio::time::sleep(Duration::from_secs(1)).await;
            results[i].push(per_second(n, d));
        }
    }
    for ((bulk, in_flight), r) in choices.iter().zip(results) {
        let (lo, hi) = r
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(*x), b.max(*x)));
        println!(
            "sink, bulk {bulk:>5}, {in_flight} in flight: median {:.0} docs/s ({lo:.0}-{hi:.0}, {rounds} rounds)",
            median(r)
        );
    }
}

/// Runs `n` lookups, 16 in flight; every key must have one row.
async fn run_lookups(
    l: &ElasticsearchLookup,
    n: u64,
    key: &(dyn Fn(u64) -> Row + Sync),
) -> Duration {
    let started = Instant::now();
    let found: usize = stream::iter(0..n)
        .map(|i| async move { l.lookup(&key(i)).await.unwrap().len() })
        .buffer_unordered(16)
        .fold(0, |a, b| async move { a + b })
        .await;
    assert_eq!(found as u64, n);
    started.elapsed()
}

async fn bench_lookup(server: &NoidaDb, client: &Elasticsearch, rounds: usize) {
    let index = "bench-lookup";
    let keys = 2000_u64;
    raw_bulk(client, index, keys as usize, 1000, 2).await;
    assert_eq!(count(server.elasticsearch_addr(), index), keys);
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("customer", DataType::String, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("at", DataType::TimestampMillis, true),
    ]);
    let lookups = 20_000_u64;
    let key = |i: u64| Row::insert(vec![Value::Int64(i64::try_from(i * 7919 % keys).unwrap())]);
    let lookup = |cached: bool| {
        let l = ElasticsearchLookup::new(
            ConnectionConfig::new([server.elasticsearch_url()]),
            index,
            schema.clone(),
            LookupBy::Id {
                delimiter: "_".into(),
            },
        )
        .unwrap();
        if cached {
            l.with_cache(Arc::new(
                DefaultLookupCache::builder()
                    .maximum_size(100_000)
                    .build()
                    .unwrap(),
            ))
        } else {
            l
        }
    };
    let (mut with, mut without, mut raw) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let cached = lookup(true);
        run_lookups(&cached, keys, &key).await; // loads every key once
        let d = run_lookups(&cached, lookups, &key).await;
        with.push(per_second(lookups, d));
        let plain = lookup(false);
        let n = lookups / 4;
        without.push(per_second(n, run_lookups(&plain, n, &key).await));
        let started = Instant::now();
        stream::iter(0..n)
            .map(|i| async move {
                let r = client
                    .send(
                        Method::Get,
                        &format!("/{index}/_doc/{}", i * 7919 % keys),
                        HeaderMap::new(),
                        None::<&()>,
                        None::<Vec<u8>>,
                        None,
                    )
                    .await
                    .unwrap();
                let bytes = r.bytes().await.unwrap();
                assert!(bytes.len() > 20);
            })
            .buffer_unordered(16)
            .collect::<Vec<()>>()
            .await;
        raw.push(per_second(n, started.elapsed()));
    }
    println!(
        "lookup by id, 16 in flight, {rounds} rounds: cached (all hits) median {:.0} lookups/s; uncached median {:.0} lookups/s; raw GET loop median {:.0} requests/s",
        median(with),
        median(without),
        median(raw)
    );
    delete_index(server.elasticsearch_addr(), index);
}

fn main() {
    let n = env_usize("WEIR_BENCH_DOCS", 200_000) as u64;
    let rounds = env_usize("WEIR_BENCH_ROUNDS", 5);
    let bulk = env_usize("WEIR_BENCH_BULK", 1000);
    let in_flight = env_usize("WEIR_BENCH_IN_FLIGHT", 4);
    let only = std::env::var("WEIR_BENCH_ONLY").unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = NoidaDb::start().expect("noida-db (run `cargo xtask deps`)");
    let client = ConnectionConfig::new([server.elasticsearch_url()])
        .client()
        .unwrap();
    runtime.block_on(async {
        if only.is_empty() || only == "sink" {
            bench_sink(&server, &client, n, rounds, bulk, in_flight).await;
        }
        if only.is_empty() || only == "sizes" {
            bench_sizes(&server, n / 2, rounds.min(3)).await;
        }
        if only.is_empty() || only == "lookup" {
            bench_lookup(&server, &client, rounds).await;
        }
    });
}

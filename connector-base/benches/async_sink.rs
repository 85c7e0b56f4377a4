//! The AsyncSink writer's overhead per entry against a hand-written batching loop over the same
//! fake destination, in the same process, interleaved, median reported.
//!
//! Both sides convert each record (a `u64`) into the same ~70-byte document (`Vec<u8>`), batch
//! 500 entries, and hand each batch to the same `FakeBulkApi`, which copies every entry into a
//! request body and answers one outcome per entry (all delivered), as a bulk API client would
//! build its request. The writer is driven as the runtime drives it: `poll_ready`, then an input
//! batch of 1024 `write`s, and `flush(EndOfInput)` at the end. The loop is what a connector
//! author would write by hand: push, and at 500 entries `await` the request and check the
//! outcomes. Both run on one thread (a current-thread tokio runtime); time is that thread's CPU
//! time (`/proc/thread-self/schedstat`, Linux).
//!
//! `cargo bench -p weir-connector-base --bench async_sink` (`WEIR_BENCH_ENTRIES`, default
//! 5 000 000; `WEIR_BENCH_ROUNDS`, default 7; `WEIR_BENCH_ONLY=writer|loop` runs one side, for
//! `valgrind --tool=callgrind`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a benchmark binary

use std::future::poll_fn;
use std::hint::black_box;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::error::Result;
use weir_connector_api::metrics::{InMemoryMetricGroup, MetricGroup};
use weir_connector_api::sink::{FlushMode, InitContext, SinkWriter, WriteContext};
use weir_connector_base::sink::{
    AsyncSinkConfig, AsyncSinkWriter, ElementConverter, EntryOutcome, RequestBatch,
    RequestSubmitter,
};

const BATCH: usize = 500;
const INPUT_BATCH: u64 = 1024;
const MAX_BATCH_BYTES: u64 = 5 * 1024 * 1024;

/// The record → document conversion both sides use.
fn convert(id: u64) -> Vec<u8> {
    let mut doc = Vec::with_capacity(80);
    write!(
        doc,
        r#"{{"id":{id},"customer":"customer-{}","amount":{}.{:02}}}"#,
        id % 1000,
        id % 997,
        id % 100
    )
    .unwrap();
    doc
}

/// The same conversion as the writer's converter.
struct Convert;

impl ElementConverter<u64, Vec<u8>> for Convert {
    #[inline]
    fn convert(&mut self, id: u64, _ctx: &WriteContext) -> Result<Vec<u8>> {
        Ok(convert(id))
    }
}

/// A fake bulk API (in memory): copies each entry into a request body, answers per entry.
#[derive(Default)]
struct FakeBulkApi {
    delivered: AtomicU64,
    body_bytes: AtomicU64,
}

impl FakeBulkApi {
    #[allow(clippy::unused_async)] // stands for an async client call on both sides
    async fn send(&self, entries: &[Vec<u8>]) -> Vec<EntryOutcome> {
        let mut body = Vec::with_capacity(entries.iter().map(|e| e.len() + 1).sum());
        for entry in entries {
            body.extend_from_slice(entry);
            body.push(b'\n');
        }
        black_box(&body);
        self.body_bytes
            .fetch_add(body.len() as u64, Ordering::Relaxed);
        self.delivered
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        vec![EntryOutcome::Delivered; entries.len()]
    }
}

struct Submitter(Arc<FakeBulkApi>);

#[async_trait::async_trait]
impl RequestSubmitter<Vec<u8>> for Submitter {
    fn entry_size(&self, entry: &Vec<u8>) -> u64 {
        entry.len() as u64
    }

    async fn submit(&self, batch: RequestBatch<Vec<u8>>) -> Result<Vec<EntryOutcome>> {
        Ok(self.0.send(&batch).await)
    }
}

struct BenchContext(InMemoryMetricGroup);

impl InitContext for BenchContext {
    fn subtask_index(&self) -> usize {
        0
    }
    fn parallelism(&self) -> usize {
        1
    }
    fn attempt(&self) -> u32 {
        0
    }
    fn restored_checkpoint_id(&self) -> Option<CheckpointId> {
        None
    }
    fn metric_group(&self) -> Arc<dyn MetricGroup> {
        Arc::new(self.0.clone())
    }
    fn operator_id(&self) -> &'static str {
        "bench"
    }
}

/// The hand-written loop: batch by count and bytes, send, check every outcome.
async fn hand_loop(api: &FakeBulkApi, entries: u64) {
    let mut batch: Vec<Vec<u8>> = Vec::with_capacity(BATCH);
    let mut bytes = 0_u64;
    let mut failed = 0_u64;
    for id in 0..entries {
        let doc = convert(id);
        bytes += doc.len() as u64;
        batch.push(doc);
        if batch.len() >= BATCH || bytes >= MAX_BATCH_BYTES {
            let outcomes = api.send(&batch).await;
            failed += outcomes.iter().filter(|o| !o.is_delivered()).count() as u64;
            // Free the outcomes before the entries, as the writer does (glibc consolidates
            // its fastbins when a large block is freed after many small ones).
            drop(outcomes);
            batch.clear();
            bytes = 0;
        }
    }
    if !batch.is_empty() {
        let outcomes = api.send(&batch).await;
        failed += outcomes.iter().filter(|o| !o.is_delivered()).count() as u64;
    }
    assert_eq!(failed, 0);
}

/// The AsyncSink writer, driven as the runtime's writer operator drives it.
async fn writer(api: &Arc<FakeBulkApi>, entries: u64) {
    let ctx = BenchContext(InMemoryMetricGroup::new("bench"));
    let config = AsyncSinkConfig::builder()
        .max_batch_size(BATCH)
        .max_batch_size_bytes(MAX_BATCH_BYTES)
        .max_buffered_entries(10 * BATCH)
        .build()
        .unwrap();
    let mut w = AsyncSinkWriter::new(&ctx, Convert, Submitter(Arc::clone(api)), config).unwrap();
    let wctx = WriteContext::default();
    let mut id = 0;
    while id < entries {
        poll_fn(|cx| w.poll_ready(cx)).await.unwrap();
        let end = (id + INPUT_BATCH).min(entries);
        for n in id..end {
            w.write(n, &wctx).unwrap();
        }
        id = end;
    }
    w.flush(FlushMode::EndOfInput).await.unwrap();
}

/// This thread's CPU time so far.
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns = stat
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

#[derive(Clone, Copy, PartialEq)]
enum Side {
    Loop,
    Writer,
}

fn run(runtime: &tokio::runtime::Runtime, side: Side, entries: u64) -> f64 {
    let api = Arc::new(FakeBulkApi::default());
    let start = thread_cpu();
    match side {
        Side::Loop => runtime.block_on(hand_loop(&api, entries)),
        Side::Writer => runtime.block_on(writer(&api, entries)),
    }
    let cpu = thread_cpu().saturating_sub(start);
    assert_eq!(
        api.delivered.load(Ordering::Relaxed),
        entries,
        "every entry delivered"
    );
    cpu.as_nanos() as f64 / entries as f64
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let entries = env("WEIR_BENCH_ENTRIES").unwrap_or(5_000_000);
    let rounds = env("WEIR_BENCH_ROUNDS").unwrap_or(7) as usize;
    let only = std::env::var("WEIR_BENCH_ONLY").ok();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    match only.as_deref() {
        Some("writer") => {
            println!(
                "writer: {:.2} ns/entry",
                run(&runtime, Side::Writer, entries)
            );
            return;
        }
        Some("loop") => {
            println!("loop: {:.2} ns/entry", run(&runtime, Side::Loop, entries));
            return;
        }
        _ => {}
    }
    // Warm up both (allocator, page faults).
    run(&runtime, Side::Loop, entries / 10);
    run(&runtime, Side::Writer, entries / 10);
    let (mut loops, mut writers, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let order = if round % 2 == 0 {
            [Side::Loop, Side::Writer]
        } else {
            [Side::Writer, Side::Loop]
        };
        let mut pair = [0.0; 2];
        for side in order {
            let ns = run(&runtime, side, entries);
            pair[usize::from(side == Side::Writer)] = ns;
        }
        println!(
            "round {round}: loop {:.2} ns/entry, writer {:.2} ns/entry, writer/loop {:.4}",
            pair[0],
            pair[1],
            pair[1] / pair[0]
        );
        loops.push(pair[0]);
        writers.push(pair[1]);
        ratios.push(pair[1] / pair[0]);
    }
    let (l, w, r) = (
        median(&mut loops),
        median(&mut writers),
        median(&mut ratios),
    );
    println!(
        "median over {rounds} rounds of {entries} entries: loop {l:.2} ns/entry, writer {w:.2} \
         ns/entry, overhead {:.2} ns/entry, writer/loop {r:.4} (target <= 1.05)",
        w - l
    );
}

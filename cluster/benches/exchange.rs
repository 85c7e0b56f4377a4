//! The cross-process channel against a bare timely exchange of the same batches: 2 processes on
//! loopback (this binary started again as each), process 0 sending `WEIR_BENCH_BATCHES`
//! (default 20 000) batches of 1024 `u64` records to process 1, which times them from the first
//! arrival to the last.
//!
//! - `timely`: timely_communication alone, each batch one message whose bytes are the records
//!   (what timely's own exchange does underneath: no framing, no checksum, no credits);
//! - `weir frames`: Weir's transport with pre-encoded frames (the routing, the communication
//!   thread's hand-offs and the credits, without the record codec);
//! - `weir channel`: `RemoteSender` / `RemoteReceiver` with the `u64` record codec, channel
//!   capacity 8 (the runtime's default): everything a job's channel between processes costs.
//!
//! Run: `cargo bench -p weir-cluster --bench exchange` (`WEIR_BENCH_ROUNDS`, default 5, the
//! variants interleaved; the median is reported).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::task::{Context, Poll};
use timely_bytes::arc::Bytes;
use timely_communication::{Bytesable, Config};
use weir_cluster::{Cluster, ClusterConfig};
use weir_connector_api::state::U64Serializer;
use weir_runtime::cluster::{
    ChannelKey, ChannelReceiver, ChannelSender, FrameSender, FrameTransport, Received,
    RemoteReceiver, RemoteSender, TransportError,
};
use weir_runtime::element::{Batch, Event, StreamElement};

const RECORDS: usize = 1024;
const CAPACITY: usize = 8;
const KEY: ChannelKey = ChannelKey {
    attempt: 0,
    edge: 0,
    upstream: 0,
    downstream: 0,
};

type Outcome<T = ()> = Result<T, String>;

fn main() {
    let result = match std::env::var("WEIR_BENCH_CHILD") {
        Ok(variant) => child(&variant),
        Err(_) => parent(),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn batches() -> usize {
    std::env::var("WEIR_BENCH_BATCHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

fn batch(i: usize) -> Vec<u64> {
    let start = (i * RECORDS) as u64;
    (start..start + RECORDS as u64).collect()
}

/// One run of `variant`: seconds and bytes that crossed as process 1 measured them, and the
/// CPU seconds both processes used.
fn run(variant: &str) -> Outcome<(f64, u64, f64)> {
    let listeners: Vec<TcpListener> = (0..2)
        .filter_map(|_| TcpListener::bind("127.0.0.1:0").ok())
        .collect();
    let addresses: Vec<String> = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.to_string())
        .collect();
    drop(listeners);
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut children = Vec::new();
    for process in 0..2 {
        children.push(
            Command::new(&exe)
                .env("WEIR_BENCH_CHILD", variant)
                .env("WEIR_BENCH_PROCESS", process.to_string())
                .env("WEIR_BENCH_ADDRESSES", addresses.join(","))
                .stdout(Stdio::piped())
                .spawn()
                .map_err(|e| e.to_string())?,
        );
    }
    let mut result = None;
    let mut cpu = 0.0;
    for child in &mut children {
        if let Some(out) = child.stdout.take() {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some((_, rest)) = line.split_once("CPU: ") {
                    cpu += rest.parse::<f64>().unwrap_or(f64::NAN);
                }
                if let Some((_, rest)) = line.split_once("BENCH: ") {
                    let mut parts = rest.split(' ');
                    let secs = parts.next().and_then(|s| s.parse().ok());
                    let bytes = parts.next().and_then(|s| s.parse().ok());
                    if let (Some(secs), Some(bytes)) = (secs, bytes) {
                        result = Some((secs, bytes));
                    }
                }
            }
        }
    }
    for mut child in children {
        let status = child.wait().map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("a {variant} process failed: {status}"));
        }
    }
    let (secs, bytes) = result.ok_or_else(|| format!("{variant}: no result"))?;
    Ok((secs, bytes, cpu))
}

fn parent() -> Outcome {
    let rounds: usize = std::env::var("WEIR_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let variants = ["timely", "weir frames", "weir channel"];
    let mut runs = vec![Vec::new(); variants.len()];
    for round in 0..rounds {
        for (i, variant) in variants.iter().enumerate() {
            let (secs, bytes, cpu) = run(variant)?;
            println!("round {round} {variant}: {secs:.3} s, {cpu:.2} CPU s");
            runs[i].push((secs, bytes, cpu));
        }
    }
    let median = runs.into_iter().map(|mut r| {
        r.sort_by(|a, b| a.0.total_cmp(&b.0));
        r.get(r.len() / 2)
            .copied()
            .unwrap_or((f64::NAN, 0, f64::NAN))
    });
    let records = (batches() * RECORDS) as f64;
    println!(
        "\n{} batches of {RECORDS} u64 records, 2 processes on loopback, median of {rounds}:",
        batches()
    );
    println!(
        "| variant | records/s | ns/record | MB/s (bytes that crossed) | CPU ns/record (both processes) |"
    );
    println!("|---|---|---|---|---|");
    for (variant, (secs, bytes, cpu)) in variants.iter().zip(median) {
        println!(
            "| {variant} | {:.1} M | {:.1} | {:.0} | {:.1} |",
            records / secs / 1e6,
            secs * 1e9 / records,
            bytes as f64 / secs / 1e6,
            cpu * 1e9 / records
        );
    }
    Ok(())
}

fn config() -> Outcome<(usize, Vec<String>)> {
    let process = std::env::var("WEIR_BENCH_PROCESS")
        .map_err(|e| e.to_string())?
        .parse()
        .map_err(|e| format!("{e}"))?;
    let addresses = std::env::var("WEIR_BENCH_ADDRESSES")
        .map_err(|e| e.to_string())?
        .split(',')
        .map(str::to_owned)
        .collect();
    Ok((process, addresses))
}

fn report(started: Option<Instant>, bytes: u64) {
    let secs = started.map_or(0.0, |s| s.elapsed().as_secs_f64());
    println!("BENCH: {secs} {bytes}");
    let _ = std::io::stdout().flush();
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

fn child(variant: &str) -> Outcome {
    let outcome = child_run(variant);
    println!("CPU: {}", cpu_seconds());
    outcome
}

fn child_run(variant: &str) -> Outcome {
    let (process, addresses) = config()?;
    if variant == "timely" {
        return bare_timely(process, addresses);
    }
    let cluster =
        Cluster::start(&ClusterConfig::new(process, addresses)).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let transport = cluster.transport();
    let n = batches();
    if process == 0 {
        if variant == "weir channel" {
            let frames = transport.open_sender(KEY, 1).map_err(|e| e.to_string())?;
            let mut tx = RemoteSender::new(frames, Arc::new(U64Serializer), KEY.to_string());
            runtime.block_on(async {
                for i in 0..n {
                    let element = StreamElement::Batch(Batch::untimed(batch(i)));
                    tx.send(element).await.map_err(|e| e.to_string())?;
                }
                tx.send(StreamElement::Event(Event::EndOfData))
                    .await
                    .map_err(|e| e.to_string())
            })?;
        } else {
            let mut frames = transport
                .open_sender(ChannelKey { edge: 1, ..KEY }, 1)
                .map_err(|e| e.to_string())?;
            // One frame as the channel writes it, sent again and again.
            let frame = encoded_batch();
            runtime.block_on(async {
                for _ in 0..=n {
                    std::future::poll_fn(|cx| frames.poll_credit(cx))
                        .await
                        .map_err(|e| e.to_string())?;
                    frames.send_data(frame.clone()).map_err(|e| e.to_string())?;
                }
                Ok::<_, String>(())
            })?;
        }
    } else if variant == "weir channel" {
        let frames = transport
            .open_receiver(KEY, 0, CAPACITY)
            .map_err(|e| e.to_string())?;
        let mut rx = RemoteReceiver::new(frames, Arc::new(U64Serializer), KEY.to_string());
        let mut started = None;
        let mut records = 0;
        runtime.block_on(async {
            loop {
                match std::future::poll_fn(|cx| rx.poll_recv(cx)).await {
                    Some(Received::Element(StreamElement::Batch(b))) => {
                        started.get_or_insert_with(Instant::now);
                        records += b.len();
                    }
                    Some(Received::Element(StreamElement::Event(Event::EndOfData))) | None => break,
                    Some(other) => return Err(format!("unexpected {other:?}")),
                }
            }
            Ok(())
        })?;
        if records != n * RECORDS {
            return Err(format!("{records} records arrived, {} sent", n * RECORDS));
        }
        report(started, cluster.stats().bytes_received);
    } else {
        let mut frames = transport
            .open_receiver(ChannelKey { edge: 1, ..KEY }, 0, CAPACITY)
            .map_err(|e| e.to_string())?;
        let mut started = None;
        runtime.block_on(async {
            for _ in 0..=n {
                std::future::poll_fn(|cx| frames.poll_frame(cx))
                    .await
                    .ok_or("closed")?
                    .map_err(|e| e.to_string())?;
                started.get_or_insert_with(Instant::now);
                frames.grant(1);
            }
            Ok::<_, String>(())
        })?;
        report(started, cluster.stats().bytes_received);
    }
    cluster
        .shutdown(Duration::from_secs(30))
        .map_err(|e| e.to_string())
}

/// Captures the frames a `RemoteSender` writes (always has credit).
struct Capture(Arc<std::sync::Mutex<Vec<Vec<u8>>>>);

impl FrameSender for Capture {
    fn poll_credit(&mut self, _: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Poll::Ready(Ok(()))
    }
    fn send_data(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        if let Ok(mut frames) = self.0.lock() {
            frames.push(frame);
        }
        Ok(())
    }
    fn send_priority(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        self.send_data(frame)
    }
}

/// A batch as the channel's frame.
fn encoded_batch() -> Vec<u8> {
    let frames = Arc::new(std::sync::Mutex::new(Vec::new()));
    let capture = Box::new(Capture(Arc::clone(&frames)));
    let mut tx = RemoteSender::new(capture, Arc::new(U64Serializer), "capture");
    let _ = tx.try_send(StreamElement::Batch(Batch::untimed(batch(0))));
    let frame = frames.lock().ok().and_then(|mut v| v.pop());
    frame.unwrap_or_default()
}

/// A batch for bare timely: its records' bytes.
struct RawBatch(Vec<u64>);

impl Bytesable for RawBatch {
    fn from_bytes(bytes: Bytes) -> Self {
        RawBatch(
            bytes
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
                .collect(),
        )
    }
    fn length_in_bytes(&self) -> usize {
        // An empty batch (the end) still needs a byte: timely refuses empty messages.
        (self.0.len() * 8).max(1)
    }
    fn into_bytes<W: Write>(&self, writer: &mut W) {
        if self.0.is_empty() {
            let _ = writer.write_all(&[0]);
        }
        for r in &self.0 {
            let _ = writer.write_all(&r.to_le_bytes());
        }
    }
}

fn bare_timely(process: usize, addresses: Vec<String>) -> Outcome {
    let config = Config::Cluster {
        threads: 1,
        process,
        addresses,
        report: false,
        zerocopy: false,
    };
    let n = batches();
    let guards = timely_communication::initialize(config, move |mut allocator| {
        let (mut pushers, mut puller) = allocator.allocate::<RawBatch>(0);
        if allocator.index() == 0 {
            for i in 0..n {
                if let Some(p) = pushers.get_mut(1) {
                    timely_communication::Push::send(p, RawBatch(batch(i)));
                }
                allocator.release();
            }
            if let Some(p) = pushers.get_mut(1) {
                timely_communication::Push::send(p, RawBatch(Vec::new()));
                timely_communication::Push::done(p);
            }
            allocator.release();
            return None;
        }
        let mut started = None;
        let mut records = 0;
        loop {
            allocator.receive();
            while let Some(RawBatch(b)) = timely_communication::Pull::recv(&mut puller) {
                started.get_or_insert_with(Instant::now);
                if b.is_empty() {
                    return Some((started, records));
                }
                records += b.len();
            }
            allocator.release();
            allocator.await_events(Some(Duration::from_millis(10)));
        }
    })?;
    for result in guards.join() {
        if let Some((started, records)) = result? {
            if records != n * RECORDS {
                return Err(format!("{records} records arrived"));
            }
            report(started, (records * 8) as u64);
        }
    }
    Ok(())
}

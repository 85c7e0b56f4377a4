//! Kafka connector benchmarks against one noida-db broker, interleaved in one run:
//! source vs a raw `BaseConsumer` poll loop, at-least-once sink vs a raw producer, and the cost
//! of exactly-once vs at-least-once at 1 s checkpoints.
//!
//! `cargo bench -p weir-connector-kafka --bench kafka` (`WEIR_BENCH_RECORDS`, default 750000;
//! `WEIR_BENCH_ROUNDS`, default 5; `WEIR_BENCH_ONLY=source` runs only the source comparison;
//! `WEIR_BENCH_THREADS=1` prints the CPU time each thread of this process used per source run,
//! from `/proc/self/task`, Linux only).
//!
//! noida-db 0.2.3 fails fetches once a topic holds more than roughly 100 MB (1M records of 100
//! bytes, in one partition or spread over four: `Bad message format`, then dropped connections,
//! for a bare librdkafka consumer too), so runs stay below that and sink topics are fresh each
//! round. Source and sink run at parallelism 1, like the single-threaded raw loops. The raw
//! consumer reads first in even rounds, the Weir source in odd rounds.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_blackhole::BlackholeSink;
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_connector_kafka::sink::RecordSerializer;
use weir_connector_kafka::source::{RawBytesDeserializer, StartingOffsets, StoppingOffsets};
use weir_connector_kafka::{DeliveryGuarantee, KafkaSink, KafkaSource};
use weir_runtime::{CheckpointConfig, JobConfig, StreamEnvironment};

const PAYLOAD: [u8; 100] = [b'x'; 100];

/// CPU time per thread of this process, and of the broker process, while it runs (Linux
/// `/proc`), sampled every 20 ms so threads that exit before the end count up to their last
/// sample.
struct ThreadCpu {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<BTreeMap<String, (u64, u64)>>,
}

/// The name (digits masked) and user + system clock ticks in a `/proc/.../stat` line.
fn stat_ticks(path: &std::path::Path) -> Option<(String, u64)> {
    let stat = std::fs::read_to_string(path).ok()?;
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let name = stat[open + 1..close]
        .chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .collect();
    let fields: Vec<&str> = stat.get(close + 2..)?.split(' ').collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((name, utime + stime))
}

impl ThreadCpu {
    fn start() -> Option<Self> {
        if std::env::var("WEIR_BENCH_THREADS").map_or(true, |v| v != "1") {
            return None;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            // key -> (name, ticks at first sight, ticks at last sight)
            let mut seen: BTreeMap<String, (String, u64, u64)> = BTreeMap::new();
            let me = std::fs::read_link("/proc/thread-self").unwrap_or_default();
            let numbered = |dir: &str| -> Vec<std::path::PathBuf> {
                std::fs::read_dir(dir)
                    .map(|d| {
                        d.flatten()
                            .filter(|e| {
                                e.file_name()
                                    .to_str()
                                    .is_some_and(|n| n.parse::<u64>().is_ok())
                            })
                            .map(|e| e.path())
                            .collect()
                    })
                    .unwrap_or_default()
            };
            loop {
                let done = flag.load(Ordering::Relaxed);
                for task in numbered("/proc/self/task") {
                    if me.file_name() == task.file_name() {
                        continue;
                    }
                    if let Some((name, ticks)) = stat_ticks(&task.join("stat")) {
                        let key = task.display().to_string();
                        seen.entry(key).or_insert((name, ticks, ticks)).2 = ticks;
                    }
                }
                for process in numbered("/proc") {
                    if let Some((name, ticks)) = stat_ticks(&process.join("stat")) {
                        if name.contains("noida") {
                            let key = process.display().to_string();
                            seen.entry(key)
                                .or_insert(("broker process".to_owned(), ticks, ticks))
                                .2 = ticks;
                        }
                    }
                }
                if done {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let mut by_name: BTreeMap<String, (u64, u64)> = BTreeMap::new();
            for (name, first, last) in seen.into_values() {
                let e = by_name.entry(name).or_default();
                e.0 += 1;
                e.1 += last - first;
            }
            by_name
        });
        Some(ThreadCpu { stop, handle })
    }

    /// Prints `label: name xN ms, ...` (clock ticks of 10 ms).
    fn report(self, label: &str) {
        self.stop.store(true, Ordering::Relaxed);
        let by_name = self.handle.join().unwrap();
        let total: u64 = by_name.values().map(|v| v.1).sum();
        let parts: Vec<String> = by_name
            .iter()
            .filter(|(_, v)| v.1 > 0)
            .map(|(name, (n, ticks))| format!("{name} x{n} {} ms", ticks * 10))
            .collect();
        println!("cpu {label}: total {} ms: {}", total * 10, parts.join(", "));
    }
}
/// Partitions per topic.
const PARTITIONS: i32 = 4;

fn raw_produce(bootstrap: &str, topic: &str, n: u64) -> Duration {
    let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    let start = Instant::now();
    for _ in 0..n {
        let mut r = BaseRecord::<(), [u8]>::to(topic).payload(&PAYLOAD[..]);
        loop {
            match p.send(r) {
                Ok(()) => break,
                Err((_, back)) => {
                    r = back;
                    p.poll(Duration::from_millis(1));
                }
            }
        }
    }
    p.flush(Duration::from_secs(120)).unwrap();
    start.elapsed()
}

/// Times of a consuming run: start to end, and first record to last record (steady state).
struct Timing {
    total: Duration,
    steady: Duration,
}

/// `WEIR_BENCH_PROPS=k=v,k=v`: librdkafka properties for both consumers (experiments).
fn bench_props() -> Vec<(String, String)> {
    std::env::var("WEIR_BENCH_PROPS")
        .unwrap_or_default()
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn raw_consume(bootstrap: &str, topic: &str, n: u64) -> Timing {
    let start = Instant::now();
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "bench-raw")
        .set("enable.auto.commit", "false")
        .set("queued.min.messages", "1000000")
        .set("fetch.max.bytes", "104857600")
        .set("max.partition.fetch.bytes", "8388608");
    for (k, v) in bench_props() {
        config.set(k, v);
    }
    let c: BaseConsumer = config.create().unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut got = 0_u64;
    let mut bytes = 0_usize;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut first = None;
    while got < n {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                first.get_or_insert_with(Instant::now);
                bytes += m.payload().map_or(0, |p| p.to_vec().len());
                got += 1;
            }
            Some(Err(e)) => eprintln!("raw consumer: {e}"),
            None => {}
        }
        assert!(
            Instant::now() < deadline,
            "the raw consumer read {got} of {n} records in 120 s"
        );
    }
    assert!(bytes > 0);
    let end = Instant::now();
    Timing {
        total: end - start,
        steady: end - first.unwrap_or(end),
    }
}

async fn weir_consume(bootstrap: &str, topic: &str, n: u64) -> Timing {
    let mut builder = KafkaSource::builder()
        .bootstrap_servers(bootstrap)
        .topics([topic])
        .starting_offsets(StartingOffsets::Earliest)
        .bounded(StoppingOffsets::Latest)
        .deserializer(RawBytesDeserializer);
    for (k, v) in bench_props() {
        builder = builder.property(k, v);
    }
    let source = builder.build().unwrap();
    let env = StreamEnvironment::new(JobConfig::new("bench-source"));
    let sink = BlackholeSink::new();
    let seen = sink.counter();
    // First and last (n-th) record times, in ns after `start`: the clock is read for those two
    // records only, as the raw loop reads it once per run (reading it per record cost the
    // source's side ~100 instructions per record).
    let start = Instant::now();
    let marks = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let m = Arc::clone(&marks);
    let counted = AtomicU64::new(0);
    env.from_source(source, WatermarkStrategy::no_watermarks(), "kafka")
        .uid("kafka")
        .map(move |r: Vec<u8>| {
            let i = counted.fetch_add(1, Ordering::Relaxed) + 1;
            if i == 1 || i == n {
                let now = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                m[usize::from(i == n)].store(now, Ordering::Relaxed);
            }
            r
        })
        .sink_to(sink);
    let r = env.build().unwrap().execute().await;
    assert!(r.is_finished(), "{:?}", r.status);
    assert_eq!(seen.load(Ordering::Relaxed), n);
    let total = start.elapsed();
    let (first, last) = (
        marks[0].load(Ordering::Relaxed),
        marks[1].load(Ordering::Relaxed),
    );
    Timing {
        total,
        steady: Duration::from_nanos(last.saturating_sub(first)),
    }
}

async fn weir_produce(
    bootstrap: &str,
    topic: &str,
    n: u64,
    g: DeliveryGuarantee,
    cp: Duration,
) -> Duration {
    let sink = KafkaSink::builder()
        .bootstrap_servers(bootstrap)
        .topic(topic)
        .delivery_guarantee(g)
        .transactional_id_prefix(format!("bench-{topic}"))
        .serializer(RecordSerializer::<Vec<u8>>::bytes())
        .build()
        .unwrap();
    let env = StreamEnvironment::new(
        JobConfig::new("bench-sink").checkpointing(CheckpointConfig::every(cp)),
    );
    env.from_source(
        DataGeneratorSource::new(|_| PAYLOAD.to_vec(), Some(n), RateLimiterStrategy::no_op()),
        WatermarkStrategy::no_watermarks(),
        "gen",
    )
    .uid("gen")
    .sink_to(sink);
    let start = Instant::now();
    let r = env.build().unwrap().execute().await;
    assert!(r.is_finished(), "{:?}", r.status);
    start.elapsed()
}

/// A result: comparison, round, baseline records/s, Weir records/s.
type Row = (&'static str, usize, f64, f64);

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn main() {
    let n: u64 = std::env::var("WEIR_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(750_000);
    let rounds: usize = std::env::var("WEIR_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let server = weir_testkit::servers::NoidaDb::start().unwrap();
    let bs = server.kafka_bootstrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &bs)
        .create()
        .unwrap();
    let create = |names: &[String]| {
        rt.block_on(async {
            for t in names {
                admin
                    .create_topics(
                        &[NewTopic::new(t, PARTITIONS, TopicReplication::Fixed(1))],
                        &AdminOptions::new(),
                    )
                    .await
                    .unwrap();
            }
        });
    };
    let delete = |names: &[String]| {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        rt.block_on(admin.delete_topics(&names, &AdminOptions::new()))
            .unwrap();
    };
    create(&["src".to_owned()]);
    let fill = raw_produce(&bs, "src", n);
    println!("filled {n} records of 100 bytes in {fill:?}");
    let mut rows: Vec<Row> = Vec::new();
    // `WEIR_BENCH_ONLY=source`: only the source comparison (for profiling).
    let source_only = std::env::var("WEIR_BENCH_ONLY").is_ok_and(|v| v == "source");
    for round in 0..rounds {
        let outs: Vec<String> = ["raw-out", "alo-out", "eo-out", "alo2-out"]
            .iter()
            .map(|t| format!("{t}-{round}"))
            .collect();
        create(&outs);
        // Alternate which side reads first: the broker may still be busy with the previous
        // round's sink output, and that should not always fall on the same side.
        let raw_run = || {
            let cpu = ThreadCpu::start();
            let raw = raw_consume(&bs, "src", n);
            if let Some(cpu) = cpu {
                cpu.report(&format!("raw consumer, round {round}"));
            }
            raw
        };
        let weir_run = || {
            let cpu = ThreadCpu::start();
            let weir = rt.block_on(weir_consume(&bs, "src", n));
            if let Some(cpu) = cpu {
                cpu.report(&format!("weir source, round {round}"));
            }
            weir
        };
        let (raw, weir) = if round % 2 == 0 {
            let raw = raw_run();
            (raw, weir_run())
        } else {
            let weir = weir_run();
            (raw_run(), weir)
        };
        rows.push(("source", round, rate(n, raw.total), rate(n, weir.total)));
        rows.push((
            "source, first to last record (steady state)",
            round,
            rate(n, raw.steady),
            rate(n, weir.steady),
        ));
        if source_only {
            delete(&outs);
            continue;
        }
        let raw_p = raw_produce(&bs, &outs[0], n);
        let alo = rt.block_on(weir_produce(
            &bs,
            &outs[1],
            n,
            DeliveryGuarantee::AtLeastOnce,
            Duration::from_secs(1),
        ));
        rows.push((
            "sink at-least-once vs raw producer",
            round,
            rate(n, raw_p),
            rate(n, alo),
        ));
        let alo2 = rt.block_on(weir_produce(
            &bs,
            &outs[3],
            n,
            DeliveryGuarantee::AtLeastOnce,
            Duration::from_secs(1),
        ));
        let eo = rt.block_on(weir_produce(
            &bs,
            &outs[2],
            n,
            DeliveryGuarantee::ExactlyOnce,
            Duration::from_secs(1),
        ));
        rows.push((
            "sink exactly-once vs at-least-once (1 s checkpoints)",
            round,
            rate(n, alo2),
            rate(n, eo),
        ));
        delete(&outs);
    }
    println!("| comparison | round | baseline rec/s | weir rec/s | ratio |");
    println!("|---|---|---|---|---|");
    for (what, round, base, weir) in &rows {
        println!(
            "| {what} | {round} | {base:.0} | {weir:.0} | {:.3} |",
            weir / base
        );
    }
    println!();
    println!("| comparison | median baseline ns/record | median weir ns/record | median ratio |");
    println!("|---|---|---|---|");
    let mut names: Vec<&str> = rows.iter().map(|r| r.0).collect();
    names.dedup();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let of = |f: &dyn Fn(&Row) -> f64| {
            let mut v: Vec<f64> = rows.iter().filter(|r| r.0 == name).map(f).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        println!(
            "| {name} | {:.0} | {:.0} | {:.3} |",
            of(&|r| 1e9 / r.2),
            of(&|r| 1e9 / r.3),
            of(&|r| r.3 / r.2)
        );
    }
}

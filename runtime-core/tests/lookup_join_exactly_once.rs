//! Exactly-once through the asynchronous lookup join: randomized trials fail the job at every
//! checkpoint and commit boundary, or inside a lookup, while lookups are in flight; the inputs
//! of queued lookups are in the checkpoints and are looked up again after the restore. Every
//! output is counted against the expected set.
//!
//! `WEIR_LOOKUP_FAULT_TRIALS` (default 30) sets the number of trials, `WEIR_LOOKUP_FAULT_SEED`
//! runs one seed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the point

use crate::common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{FakeTransactionStore, TwoPhaseSink};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::lookup::AsyncLookupFunction;
use weir_connector_api::state::U64Serializer;
use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_runtime::fault::{FailOnce, FaultInjector, FaultPoint, NoFaults};
use weir_runtime::lookup::{
    AsyncLookupOptions, JoinType, LookupJoin, OutputOrder, NUM_RESTORED_LOOKUPS,
};
use weir_runtime::restart::RestartStrategy;
use weir_runtime::{CheckpointConfig, JobConfig, JobResult, SinkOptions, StreamEnvironment};

const POINTS: [FaultPoint; 5] = [
    FaultPoint::BeforeSnapshot,
    FaultPoint::AfterSnapshotBeforeNotify,
    FaultPoint::BetweenPreCommitAndCommit,
    FaultPoint::DuringCommit,
    FaultPoint::AtEndOfInput,
];

/// Where a trial fails.
#[derive(Debug, Clone, Copy)]
enum Failure {
    /// At a checkpoint or commit boundary.
    At(FaultPoint),
    /// Inside the lookup of one key (the first time it is looked up).
    InLookup(u64),
}

/// The fake table: key `k` has no rows when `k % 3 == 0`, one when 1, two when 2; each
/// lookup takes 0 to 2 ms, by key.
fn rows_of(key: u64) -> Vec<u64> {
    match key % 3 {
        0 => vec![],
        1 => vec![0],
        _ => vec![0, 1],
    }
}

fn delay_of(key: u64) -> Duration {
    Duration::from_micros(key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 61 << 8)
}

/// Joined outputs as numbers: `4n + row` for each row, `4n + 3` for a record without rows.
fn joined(n: u64, row: Option<&u64>) -> u64 {
    n * 4 + row.copied().unwrap_or(3)
}

struct Table {
    fail_on: Option<(u64, Arc<AtomicBool>)>,
}

#[async_trait::async_trait]
impl AsyncLookupFunction<u64, u64> for Table {
    async fn lookup(&self, key: &u64) -> Result<Vec<u64>> {
        tokio::time::sleep(delay_of(*key)).await;
        if let Some((bad, fired)) = &self.fail_on {
            if bad == key && !fired.swap(true, Ordering::SeqCst) {
                return Err(ConnectorError::retryable(
                    format!("looking up {key}"),
                    "the fake table dropped the connection",
                ));
            }
        }
        Ok(rows_of(*key))
    }
}

struct Trial {
    count: u64,
    parallelism: usize,
    keyed: bool,
    capacity: usize,
    order: OutputOrder,
    failure: Failure,
}

async fn run(
    trial: &Trial,
    faults: Arc<dyn FaultInjector>,
    store: &Arc<FakeTransactionStore>,
) -> JobResult {
    let env = StreamEnvironment::new(
        JobConfig::new("lookup-exactly-once")
            .parallelism(trial.parallelism)
            .checkpointing(CheckpointConfig::every(Duration::from_millis(2)))
            .buffer_timeout(Duration::from_millis(2))
            .restart(RestartStrategy::FixedDelay {
                attempts: 3,
                delay: Duration::ZERO,
            })
            .faults(faults),
    );
    let numbers = env
        .from_source(
            // Paced to take about 60 ms, so every trial spans many checkpoints.
            DataGeneratorSource::new(
                |n| n,
                Some(trial.count),
                RateLimiterStrategy::per_second(trial.count as f64 * 16.0),
            ),
            WatermarkStrategy::no_watermarks(),
            "numbers",
        )
        .uid("numbers");
    let numbers = if trial.keyed {
        numbers.key_by(|n| *n)
    } else {
        numbers
    };
    let fail_on = match trial.failure {
        Failure::InLookup(key) => Some((key, Arc::new(AtomicBool::new(false)))),
        Failure::At(_) => None,
    };
    numbers
        .lookup_join(
            "lookup",
            LookupJoin::asynchronous(
                |n: &u64| Some(*n),
                move || {
                    Ok(Box::new(Table {
                        fail_on: fail_on.clone(),
                    })
                        as Box<dyn AsyncLookupFunction<u64, u64>>)
                },
                |n: &u64, row: Option<&u64>| joined(*n, row),
                U64Serializer,
                AsyncLookupOptions::default()
                    .capacity(trial.capacity)
                    .order(trial.order),
            )
            .join_type(JoinType::LeftOuter),
        )
        .sink_to_with(
            TwoPhaseSink {
                store: Arc::clone(store),
            },
            &SinkOptions {
                uid: Some("sink".into()),
                committer_parallelism: None,
            },
        );
    let job = env.build().expect("valid job");
    tokio::time::timeout(Duration::from_secs(60), job.execute())
        .await
        .expect("the job ends within a minute")
}

fn expected(count: u64) -> Vec<u64> {
    let mut out: Vec<u64> = (0..count)
        .flat_map(|n| {
            let rows = rows_of(n);
            if rows.is_empty() {
                vec![joined(n, None)]
            } else {
                rows.iter().map(|r| joined(n, Some(r))).collect()
            }
        })
        .collect();
    out.sort_unstable();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_with_lookups_in_flight_under_randomized_failures() {
    let trials: u64 = std::env::var("WEIR_LOOKUP_FAULT_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let seeds: Vec<u64> = match std::env::var("WEIR_LOOKUP_FAULT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(seed) => vec![seed],
        None => (0..trials).collect(),
    };
    let single = seeds.len() == 1;
    let (mut failed_over, mut restored_trials, mut restored_lookups) = (0, 0, 0);
    for seed in seeds {
        let mut rng = SmallRng::seed_from_u64(seed);
        let count = rng.gen_range(1_000..5_000);
        // Six kinds of failure: the five boundaries and a failed lookup.
        let failure = match seed % 6 {
            5 => Failure::InLookup(rng.gen_range(count / 4..count)),
            i => Failure::At(POINTS[usize::try_from(i).unwrap()]),
        };
        let trial = Trial {
            count,
            parallelism: rng.gen_range(1..=3),
            keyed: rng.gen_bool(0.5),
            capacity: rng.gen_range(1..=64),
            order: if rng.gen_bool(0.5) {
                OutputOrder::Ordered
            } else {
                OutputOrder::Unordered
            },
            failure,
        };
        let fail_once = match failure {
            Failure::At(point) => Some(Arc::new(FailOnce::new(
                point,
                CheckpointId(rng.gen_range(1..=4)),
            ))),
            Failure::InLookup(_) => None,
        };
        let faults: Arc<dyn FaultInjector> = match &fail_once {
            Some(f) => Arc::clone(f) as Arc<dyn FaultInjector>,
            None => Arc::new(NoFaults),
        };
        let store = Arc::new(FakeTransactionStore::default());
        let result = run(&trial, faults, &store).await;
        let restored = result.counter("lookup", NUM_RESTORED_LOOKUPS);
        let context = format!(
            "seed {seed}: {:?} p={} keyed={} capacity={} {:?} count={} fired at {:?}; \
             attempts {}, restored lookups {restored}; result {:?}",
            trial.failure,
            trial.parallelism,
            trial.keyed,
            trial.capacity,
            trial.order,
            trial.count,
            fail_once.as_ref().and_then(|f| f.fired_at()),
            result.attempts,
            result.status
        );
        assert!(result.is_finished(), "{context}");
        let want = expected(trial.count);
        let got = store.records();
        if got != want {
            let got_set: BTreeSet<u64> = got.iter().copied().collect();
            let missing: Vec<u64> = want
                .iter()
                .filter(|n| !got_set.contains(n))
                .take(10)
                .copied()
                .collect();
            panic!(
                "{context}\nexactly-once violated: {} outputs committed, {} expected; {} \
                 duplicates; first missing {missing:?}",
                got.len(),
                want.len(),
                got.len() - got_set.len(),
            );
        }
        if result.attempts > 1 {
            failed_over += 1;
        }
        if restored > 0 {
            restored_trials += 1;
            restored_lookups += restored;
        }
    }
    eprintln!(
        "{trials} trials: {failed_over} failed over, {restored_trials} restored {restored_lookups} \
         in-flight lookups"
    );
    if !single {
        assert!(
            failed_over * 10 >= trials * 7,
            "only {failed_over} of {trials} trials failed over"
        );
        // The point of the test: restores that had lookups in flight at their checkpoint.
        assert!(
            restored_trials * 4 >= failed_over,
            "only {restored_trials} of {failed_over} failovers restored in-flight lookups"
        );
    }
}

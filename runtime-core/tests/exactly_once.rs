//! Exactly-once (and at-least-once) under failures injected at every checkpoint and commit
//! boundary, across randomized trials, with aligned barriers, unaligned ones (records in
//! flight stored and replayed) and an alignment timeout. Every record is counted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the point

use crate::common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::{FakeTransactionStore, TwoPhaseSink};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::state::U64Serializer;
use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_runtime::fault::{FailOnce, FaultPoint};
use weir_runtime::restart::RestartStrategy;
use weir_runtime::{
    BarrierAlignment, CheckpointConfig, CheckpointStatus, CheckpointingMode, JobConfig, JobResult,
    SinkOptions, StreamEnvironment,
};

const POINTS: [FaultPoint; 5] = [
    FaultPoint::BeforeSnapshot,
    FaultPoint::AfterSnapshotBeforeNotify,
    FaultPoint::BetweenPreCommitAndCommit,
    FaultPoint::DuringCommit,
    FaultPoint::AtEndOfInput,
];

#[derive(Debug, Clone, Copy)]
enum Shape {
    /// source → map → writer in one task.
    Chained,
    /// source → key_by → writer: writers have several input channels to align.
    Keyed,
}

struct Trial {
    count: u64,
    parallelism: usize,
    sink_parallelism: usize,
    committer_parallelism: usize,
    shape: Shape,
    mode: CheckpointingMode,
    alignment: BarrierAlignment,
    fault: Arc<FailOnce>,
}

async fn run(trial: &Trial, store: &Arc<FakeTransactionStore>) -> JobResult {
    let env = StreamEnvironment::new(
        JobConfig::new("exactly-once")
            .parallelism(trial.parallelism)
            .checkpointing(
                CheckpointConfig::every(Duration::from_millis(2))
                    .mode(trial.mode)
                    .alignment(trial.alignment),
            )
            .restart(RestartStrategy::FixedDelay {
                attempts: 3,
                delay: Duration::ZERO,
            })
            .faults(trial.fault.clone()),
    );
    let numbers = env
        .from_source(
            // Paced to take about 60 ms, so every trial spans many 2 ms checkpoints.
            DataGeneratorSource::new(
                |n| n,
                Some(trial.count),
                RateLimiterStrategy::per_second(trial.count as f64 * 16.0),
            ),
            WatermarkStrategy::no_watermarks(),
            "numbers",
        )
        .uid("numbers")
        .map(|n| n + 1)
        // How records in flight are stored when an unaligned checkpoint holds them.
        .channel_state_serializer(U64Serializer);
    let numbers = match trial.shape {
        Shape::Chained => numbers,
        Shape::Keyed => numbers.key_by(|n| *n).parallelism(trial.sink_parallelism),
    };
    numbers.sink_to_with(
        TwoPhaseSink {
            store: Arc::clone(store),
        },
        &SinkOptions {
            uid: Some("sink".into()),
            committer_parallelism: std::num::NonZeroUsize::new(trial.committer_parallelism),
        },
    );
    let job = env.build().expect("valid job");
    tokio::time::timeout(Duration::from_secs(60), job.execute())
        .await
        .expect("the job ends within a minute")
}

/// What the trials of one barrier alignment saw.
struct Trials {
    /// Trials run.
    count: u64,
    /// Trials with a completed checkpoint that stored records in flight (unaligned).
    with_channel_state: u64,
    /// Trials restored from a checkpoint that stored records in flight.
    restored_channel_state: u64,
}

/// Runs the randomized trials (`WEIR_FAULT_TRIALS`, default 60; `WEIR_FAULT_SEED` runs one)
/// with `alignment`: every record committed exactly once, every fault point exercised.
async fn randomized_trials(alignment: BarrierAlignment) -> Trials {
    common::init_logs();
    let mut with_channel_state = 0;
    let mut restored_channel_state = 0;
    let trials: u64 = std::env::var("WEIR_FAULT_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let mut fired = 0;
    let mut per_point = [0_u32; POINTS.len()];
    let seeds: Vec<u64> = match std::env::var("WEIR_FAULT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(seed) => vec![seed],
        None => (0..trials).collect(),
    };
    let single = seeds.len() == 1;
    for seed in seeds {
        let mut rng = SmallRng::seed_from_u64(seed);
        let point_index = (seed as usize) % POINTS.len();
        let parallelism = rng.gen_range(1..=3);
        let sink_parallelism = rng.gen_range(1..=3);
        let shape = if rng.gen_bool(0.5) {
            Shape::Keyed
        } else {
            Shape::Chained
        };
        let writer_parallelism = match shape {
            Shape::Chained => parallelism,
            Shape::Keyed => sink_parallelism,
        };
        let trial = Trial {
            count: rng.gen_range(5_000..40_000),
            parallelism,
            sink_parallelism,
            committer_parallelism: rng.gen_range(1..=writer_parallelism),
            shape,
            mode: CheckpointingMode::ExactlyOnce,
            alignment,
            fault: Arc::new(FailOnce::new(
                POINTS[point_index],
                CheckpointId(rng.gen_range(1..=4)),
            )),
        };
        let store = Arc::new(FakeTransactionStore::default());
        let result = run(&trial, &store).await;
        let context = format!(
            "seed {seed} ({alignment:?}): {:?} p={} sink p={} committers={} {:?} count={} fired at {:?}; result {:?}",
            POINTS[point_index],
            trial.parallelism,
            trial.sink_parallelism,
            trial.committer_parallelism,
            trial.shape,
            trial.count,
            trial.fault.fired_at(),
            result.status
        );
        assert!(result.is_finished(), "{context}");
        let expected: Vec<u64> = (1..=trial.count).collect();
        let got = store.records();
        if got != expected {
            let got_set: BTreeSet<u64> = got.iter().copied().collect();
            let missing: Vec<u64> = expected
                .iter()
                .filter(|n| !got_set.contains(n))
                .take(10)
                .copied()
                .collect();
            let duplicates = got.len() as i64 - got_set.len() as i64;
            panic!(
                "{context}\nexactly-once violated: {} records committed, {} expected; {} duplicates; first missing {:?}",
                got.len(),
                expected.len(),
                duplicates,
                missing
            );
        }
        let stored: BTreeSet<u64> = result
            .checkpoint_history
            .iter()
            .filter(|c| c.status == CheckpointStatus::Completed && c.unaligned().1 > 0)
            .map(|c| c.id)
            .collect();
        if !stored.is_empty() {
            with_channel_state += 1;
        }
        if result.restored_from.is_some_and(|id| stored.contains(&id)) {
            restored_channel_state += 1;
        }
        if trial.fault.fired_at().is_some() {
            fired += 1;
            per_point[point_index] += 1;
            assert_eq!(result.attempts, 2, "{context}");
        }
    }
    eprintln!(
        "{alignment:?}: {trials} trials, failures injected in {fired}: {per_point:?} per point \
         {POINTS:?}; records in flight stored in {with_channel_state}, restored in \
         {restored_channel_state}"
    );
    let seen = Trials {
        count: trials,
        with_channel_state,
        restored_channel_state,
    };
    if single {
        return seen;
    }
    // Every point must actually have been exercised, not just configured.
    for (i, n) in per_point.iter().enumerate() {
        assert!(*n > 0, "fault point {:?} never fired", POINTS[i]);
    }
    assert!(
        fired * 10 >= trials * 8,
        "only {fired} of {trials} trials injected a failure"
    );
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_under_randomized_failures_at_every_boundary() {
    let seen = randomized_trials(BarrierAlignment::Aligned).await;
    assert_eq!(
        seen.with_channel_state, 0,
        "aligned checkpoints hold no records in flight"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_with_unaligned_barriers_under_randomized_failures() {
    let seen = randomized_trials(BarrierAlignment::Unaligned).await;
    if seen.count > 1 {
        // The mode was exercised: checkpoints stored records in flight, and attempts restored
        // them.
        assert!(
            seen.with_channel_state > 0,
            "no trial stored records in flight"
        );
        assert!(
            seen.restored_channel_state > 0,
            "no trial restored records in flight"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_with_an_alignment_timeout_under_randomized_failures() {
    randomized_trials(BarrierAlignment::AlignedWithTimeout(Duration::from_micros(
        500,
    )))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_least_once_mode_produces_every_record_and_only_real_duplicates() {
    for seed in 0..10_u64 {
        let mut rng = SmallRng::seed_from_u64(1000 + seed);
        let trial = Trial {
            count: rng.gen_range(10_000..30_000),
            parallelism: 2,
            sink_parallelism: 3,
            committer_parallelism: 1,
            shape: Shape::Keyed,
            mode: CheckpointingMode::AtLeastOnce,
            alignment: BarrierAlignment::Aligned,
            fault: Arc::new(FailOnce::new(
                POINTS[(seed as usize) % 2],
                CheckpointId(rng.gen_range(1..=3)),
            )),
        };
        let store = Arc::new(FakeTransactionStore::default());
        let result = run(&trial, &store).await;
        assert!(result.is_finished(), "seed {seed}: {:?}", result.status);
        let got = store.records();
        let distinct: BTreeSet<u64> = got.iter().copied().collect();
        let expected: BTreeSet<u64> = (1..=trial.count).collect();
        assert_eq!(
            distinct, expected,
            "seed {seed}: every record must be present"
        );
        assert!(got.len() as u64 >= trial.count);
    }
}

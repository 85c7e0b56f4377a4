//! The testkit's conformance suites against a real broker (noida-db): the source suite, and the
//! sink suite including exactly-once under randomized failures, verified with read_committed;
//! and the golden state files of every serializer (no server needed).
//!
//! Paced sink runs are longer than the testkit's defaults: the at-least-once producer is
//! idempotent, and librdkafka acquires its producer id about half a second after start, so the
//! first checkpoint's flush waits that long.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::time::Duration;

use weir_connector_kafka::sink::{
    KafkaCommittable, KafkaCommittableSerializer, KafkaWriterState, KafkaWriterStateSerializer,
};
use weir_connector_kafka::source::{
    KafkaEnumeratorState, KafkaEnumeratorStateSerializer, KafkaPartitionSplit,
    KafkaPartitionSplitSerializer, EARLIEST_OFFSET,
};

weir_testkit::source_suite!(kafka_source, common::SourceCtx::new);

weir_testkit::sink_suite!(
    kafka_sink,
    common::SinkCtx::new,
    weir_testkit::SuiteConfig::from_env()
        .paced_run(Duration::from_secs(2))
        .trial_run(Duration::from_millis(1200))
);

// The golden state files are checked on API line 1.1 and newer: their checks
// (`state_compat!`) came with the 1.1 testkit, and a serializer is the same code on every
// line, so one line proves it. (`build.rs` sets `weir_api_1_1`.)
#[cfg(weir_api_1_1)]
mod state_files {
    #[allow(unused_imports)]
    use super::*;

    // Golden state files (`tests/golden/<stem>-v<version>.bin`) of every persisted type: every
    // version stays readable, and a serializer whose bytes change without a new version fails.
    // Version 1 was written by release 1.0.0.

    weir_testkit::state_compat!(
        split_state_files_stay_readable,
        "kafka-partition-split",
        KafkaPartitionSplitSerializer,
        KafkaPartitionSplit::new("orders", 3, 42, Some(100))
    );

    weir_testkit::state_compat!(
        enumerator_state_files_stay_readable,
        "kafka-enumerator-state",
        KafkaEnumeratorStateSerializer,
        KafkaEnumeratorState {
            assigned: vec![("orders".into(), 0), ("orders".into(), 1)],
            unassigned: vec![KafkaPartitionSplit::new("orders", 2, EARLIEST_OFFSET, None)],
            initial_discovery_done: true,
        }
    );

    weir_testkit::state_compat!(
        writer_state_files_stay_readable,
        "kafka-writer-state",
        KafkaWriterStateSerializer,
        KafkaWriterState {
            transactional_id_prefix: "orders-job".into(),
        }
    );

    weir_testkit::state_compat!(
        committable_files_stay_readable,
        "kafka-committable",
        KafkaCommittableSerializer,
        KafkaCommittable {
            transactional_id: "orders-job-0-7".into(),
            producer_id: 4711,
            epoch: 3,
        }
    );
}

use std::time::Instant;

use super::*;
use crate::error::RuntimeError;
use crate::load::BarrierTiming;
use crate::storage::SubtaskSnapshot;

fn task() -> TaskKey {
    TaskKey {
        group: 2,
        subtask: 5,
    }
}

/// A command as text (`TaskCommand` has no `Debug`: its splits are erased).
fn describe(command: &TaskCommand) -> String {
    match command {
        TaskCommand::TriggerBarrier(b) => format!("barrier {b:?}"),
        TaskCommand::Notify(n) => format!("notify {n:?}"),
        TaskCommand::AddSplits(_) => "splits".into(),
        TaskCommand::AlignWatermark(w) => format!("align {w:?}"),
        TaskCommand::NoMoreSplits => "no more splits".into(),
        TaskCommand::SourceEvent(_) => "event".into(),
        TaskCommand::StopSource { drain } => format!("stop {drain}"),
        TaskCommand::Cancel => "cancel".into(),
    }
}

#[test]
fn task_commands_round_trip() -> Result<(), ControlError> {
    let codecs = SplitCodecs::new();
    let commands = [
        TaskCommand::TriggerBarrier(Barrier {
            checkpoint_id: CheckpointId(9),
            kind: SnapshotType::Savepoint,
        }),
        TaskCommand::Notify(Notification::CheckpointAborted(CheckpointId(3))),
        TaskCommand::AlignWatermark(Watermark(-4)),
        TaskCommand::NoMoreSplits,
        TaskCommand::StopSource { drain: true },
        TaskCommand::Cancel,
    ];
    for command in commands {
        let before = describe(&command);
        let bytes = ToWorker::Command {
            attempt: 7,
            task: task(),
            command,
        }
        .encode(&codecs)?;
        match ToWorker::decode(&bytes, 0, &codecs)? {
            ToWorker::Command {
                attempt: 7,
                task: t,
                command,
            } if t == task() => assert_eq!(describe(&command), before),
            _ => panic!("{before} did not come back as a command"),
        }
    }
    Ok(())
}

#[test]
fn an_ack_keeps_its_snapshot_bytes_and_a_failure_its_text() -> Result<(), ControlError> {
    let snapshot = SubtaskSnapshot {
        finished: true,
        state: BTreeMap::from([(
            "splits".to_owned(),
            vec![VersionedBytes {
                version: 3,
                bytes: vec![1, 2, 3],
            }],
        )]),
    };
    let ack = ToMaster::Task {
        attempt: 1,
        message: MasterMsg::Ack {
            task: task(),
            checkpoint: CheckpointId(4),
            snapshots: BTreeMap::from([("source-1".to_owned(), snapshot.clone())]),
            timing: BarrierTiming {
                first_barrier: Instant::now(),
                alignment: Duration::from_millis(3),
                in_flight_bytes: Some(10),
            },
        },
    };
    match ToMaster::decode(&ack.encode()?, 2)? {
        ToMaster::Task {
            attempt: 1,
            message:
                MasterMsg::Ack {
                    checkpoint,
                    snapshots,
                    timing,
                    ..
                },
        } => {
            assert_eq!(checkpoint, CheckpointId(4));
            assert_eq!(snapshots.get("source-1"), Some(&snapshot));
            assert_eq!(timing.alignment, Duration::from_millis(3));
            assert_eq!(timing.in_flight_bytes, Some(10));
        }
        _ => panic!("the ack did not come back"),
    }
    let failed = ToMaster::Task {
        attempt: 1,
        message: MasterMsg::Failed {
            task: task(),
            error: RuntimeError::Injected("write".into()),
        },
    };
    match ToMaster::decode(&failed.encode()?, 2)? {
        ToMaster::Task {
            message:
                MasterMsg::Failed {
                    error: RuntimeError::Remote { process, message },
                    ..
                },
            ..
        } => {
            assert_eq!(process, 2);
            assert_eq!(message, "injected failure at write");
        }
        _ => panic!("the failure did not come back"),
    }
    Ok(())
}

#[test]
fn reader_requests_and_attempt_messages_round_trip() -> Result<(), ControlError> {
    let request = ToMaster::Reader {
        attempt: 2,
        source: "numbers".into(),
        request: ReaderRequest::Watermark {
            subtask: 1,
            watermark: Watermark(77),
        },
    };
    assert!(matches!(
        ToMaster::decode(&request.encode()?, 1)?,
        ToMaster::Reader { attempt: 2, source, request: ReaderRequest::Watermark { subtask: 1, watermark: Watermark(77) } }
            if source == "numbers"
    ));
    let codecs = SplitCodecs::new();
    let end = ToWorker::JobEnded {
        outcome: Outcome::Failed("boom".into()),
    };
    assert!(matches!(
        ToWorker::decode(&end.encode(&codecs)?, 0, &codecs)?,
        ToWorker::JobEnded { outcome: Outcome::Failed(t) } if t == "boom"
    ));
    let start = ToWorker::StartAttempt {
        attempt: 3,
        restore: Some(CheckpointMetadata {
            checkpoint_id: 12,
            job_name: "j".into(),
            ..CheckpointMetadata::default()
        }),
    };
    assert!(matches!(
        ToWorker::decode(&start.encode(&codecs)?, 0, &codecs)?,
        ToWorker::StartAttempt { attempt: 3, restore: Some(m) } if m.checkpoint_id == 12
    ));
    Ok(())
}

#[test]
fn metrics_and_loads_round_trip() -> Result<(), ControlError> {
    use weir_connector_api::metrics::{HistogramSnapshot, MetricValue};
    let metrics = BTreeMap::from([
        (
            "job.files.1.numRecordsIn".to_owned(),
            MetricValue::Counter(7),
        ),
        ("job.files.1.lag".to_owned(), MetricValue::Gauge(-3)),
        (
            "job.files.1.sizes".to_owned(),
            MetricValue::Histogram(HistogramSnapshot {
                count: 2,
                sum: 10,
                min: Some(4),
                max: Some(6),
            }),
        ),
    ]);
    match ToMaster::decode(&ToMaster::Metrics(metrics.clone()).encode()?, 1)? {
        ToMaster::Metrics(back) => assert_eq!(back, metrics),
        _ => panic!("the metrics did not come back"),
    }
    let measured = crate::load::Mirrored {
        idle_ns: 1,
        backpressured_ns: 2,
        records_in: 3,
        records_out: 4,
        watermark: -5,
        alignment_paused_ms: 6,
        paused_splits: 7,
    };
    let loads = ToMaster::Loads {
        attempt: 2,
        loads: vec![(task(), measured)],
    };
    match ToMaster::decode(&loads.encode()?, 1)? {
        ToMaster::Loads { attempt: 2, loads } => assert_eq!(loads, [(task(), measured)]),
        _ => panic!("the loads did not come back"),
    }
    Ok(())
}

#[test]
fn damaged_or_foreign_bytes_are_typed_errors_never_panics() -> Result<(), ControlError> {
    let codecs = SplitCodecs::new();
    let good = ToMaster::AttemptEnded { attempt: 1 }.encode()?;
    // Every truncation and every flipped byte is refused.
    for cut in 0..good.len() {
        assert!(ToMaster::decode(&good[..cut], 1).is_err());
    }
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x40;
        assert!(ToMaster::decode(&bad, 1).is_err(), "byte {i} flipped");
    }
    // A master message is no worker message, and the error names the peer.
    let e = match ToWorker::decode(&good, 3, &codecs) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a master message was read as a worker message"),
    };
    assert!(e.contains("process 3"), "{e}");
    // Splits of a source this process does not know, and source events, are refused.
    let splits = ToWorker::Command {
        attempt: 0,
        task: task(),
        command: TaskCommand::AddSplits(Box::new(vec![1_u32])),
    };
    assert!(splits.encode(&codecs).is_err());
    let event = ToWorker::Command {
        attempt: 0,
        task: task(),
        command: TaskCommand::SourceEvent(weir_connector_api::source::SourceEvent::new(1_u8)),
    };
    assert!(matches!(
        event.encode(&codecs),
        Err(ControlError::Unsupported(_))
    ));
    Ok(())
}

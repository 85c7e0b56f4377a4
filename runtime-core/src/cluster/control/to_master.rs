//! The messages of the other processes to the master: their subtasks' messages (acks with
//! snapshot bytes, failures as text), their readers' requests, and their attempts' ends.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::metrics::{HistogramSnapshot, MetricValue};
use weir_connector_api::state::{StateError, StateReader, StateWriter};
use weir_connector_api::watermark::Watermark;

use super::{
    finish, get_task, get_usize, get_versioned, malformed, open, put_task, put_versioned,
    ControlError, ReaderRequest, ToMaster, ATTEMPT_ENDED, LOADS, METRICS, READER_REQUEST,
    TASK_MESSAGE, WORKER_FAILED,
};
use crate::error::RuntimeError;
use crate::load::{BarrierTiming, Mirrored};
use crate::storage::SubtaskSnapshot;
use crate::task::MasterMsg;

impl ToMaster {
    /// Writes the message.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, ControlError> {
        let mut w = StateWriter::new();
        match self {
            ToMaster::Task { attempt, message } => {
                w.put_u8(TASK_MESSAGE).put_u32(*attempt);
                put_message(&mut w, message)?;
            }
            ToMaster::Reader {
                attempt,
                source,
                request,
            } => {
                w.put_u8(READER_REQUEST).put_u32(*attempt).put_str(source);
                match request {
                    ReaderRequest::Registered { subtask } => {
                        w.put_u8(0).put_u64(*subtask as u64);
                    }
                    ReaderRequest::SplitRequest { subtask } => {
                        w.put_u8(1).put_u64(*subtask as u64);
                    }
                    ReaderRequest::Watermark { subtask, watermark } => {
                        w.put_u8(2).put_u64(*subtask as u64).put_i64(watermark.0);
                    }
                }
            }
            ToMaster::AttemptEnded { attempt } => {
                w.put_u8(ATTEMPT_ENDED).put_u32(*attempt);
            }
            ToMaster::WorkerFailed { attempt, reason } => {
                w.put_u8(WORKER_FAILED).put_u32(*attempt).put_str(reason);
            }
            ToMaster::Loads { attempt, loads } => {
                w.put_u8(LOADS).put_u32(*attempt).put_len(loads.len());
                for (task, m) in loads {
                    put_task(&mut w, *task);
                    w.put_u64(m.idle_ns)
                        .put_u64(m.backpressured_ns)
                        .put_u64(m.records_in)
                        .put_u64(m.records_out)
                        .put_i64(m.watermark)
                        .put_u64(m.alignment_paused_ms)
                        .put_u64(m.paused_splits);
                }
            }
            ToMaster::Metrics(metrics) => {
                // Kinds of metric this format does not know stay in their process.
                let known: Vec<(&String, &MetricValue)> = metrics
                    .iter()
                    .filter(|(_, v)| {
                        matches!(
                            v,
                            MetricValue::Counter(_)
                                | MetricValue::Gauge(_)
                                | MetricValue::Histogram(_)
                        )
                    })
                    .collect();
                w.put_u8(METRICS).put_len(known.len());
                for (name, value) in known {
                    w.put_str(name);
                    match value {
                        MetricValue::Counter(c) => w.put_u8(0).put_u64(*c),
                        MetricValue::Gauge(g) => w.put_u8(1).put_i64(*g),
                        MetricValue::Histogram(h) => w
                            .put_u8(2)
                            .put_u64(h.count)
                            .put_u64(h.sum)
                            .put_opt_u64(h.min)
                            .put_opt_u64(h.max),
                        _ => &mut w,
                    };
                }
            }
        }
        finish(w)
    }

    /// Reads a message from process `peer`.
    pub(crate) fn decode(bytes: &[u8], peer: usize) -> Result<ToMaster, ControlError> {
        let mut r = open(bytes, peer)?;
        let message = read_to_master(&mut r, peer).and_then(|m| {
            r.finish()?;
            Ok(m)
        });
        message.map_err(ControlError::damaged(peer))
    }
}

fn read_to_master(r: &mut StateReader<'_>, peer: usize) -> Result<ToMaster, StateError> {
    Ok(match r.get_u8()? {
        TASK_MESSAGE => ToMaster::Task {
            attempt: r.get_u32()?,
            message: get_message(r, peer)?,
        },
        READER_REQUEST => {
            let attempt = r.get_u32()?;
            let source = r.get_str()?.to_owned();
            let tag = r.get_u8()?;
            let subtask = get_usize(r)?;
            let request = match tag {
                0 => ReaderRequest::Registered { subtask },
                1 => ReaderRequest::SplitRequest { subtask },
                2 => ReaderRequest::Watermark {
                    subtask,
                    watermark: Watermark(r.get_i64()?),
                },
                other => return Err(malformed(format!("reader request {other}"))),
            };
            ToMaster::Reader {
                attempt,
                source,
                request,
            }
        }
        ATTEMPT_ENDED => ToMaster::AttemptEnded {
            attempt: r.get_u32()?,
        },
        WORKER_FAILED => ToMaster::WorkerFailed {
            attempt: r.get_u32()?,
            reason: r.get_str()?.to_owned(),
        },
        LOADS => {
            let attempt = r.get_u32()?;
            let n = r.get_len()?;
            let mut loads = Vec::with_capacity(n.min(4096));
            for _ in 0..n {
                let task = get_task(r)?;
                loads.push((
                    task,
                    Mirrored {
                        idle_ns: r.get_u64()?,
                        backpressured_ns: r.get_u64()?,
                        records_in: r.get_u64()?,
                        records_out: r.get_u64()?,
                        watermark: r.get_i64()?,
                        alignment_paused_ms: r.get_u64()?,
                        paused_splits: r.get_u64()?,
                    },
                ));
            }
            ToMaster::Loads { attempt, loads }
        }
        METRICS => {
            let n = r.get_len()?;
            let mut metrics = BTreeMap::new();
            for _ in 0..n {
                let name = r.get_str()?.to_owned();
                let value = match r.get_u8()? {
                    0 => MetricValue::Counter(r.get_u64()?),
                    1 => MetricValue::Gauge(r.get_i64()?),
                    2 => MetricValue::Histogram(HistogramSnapshot {
                        count: r.get_u64()?,
                        sum: r.get_u64()?,
                        min: r.get_opt_u64()?,
                        max: r.get_opt_u64()?,
                    }),
                    other => return Err(malformed(format!("metric kind {other}"))),
                };
                metrics.insert(name, value);
            }
            ToMaster::Metrics(metrics)
        }
        other => return Err(malformed(format!("kind {other} to the master"))),
    })
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn put_message(w: &mut StateWriter, message: &MasterMsg) -> Result<(), ControlError> {
    match message {
        MasterMsg::Ack {
            task,
            checkpoint,
            snapshots,
            timing,
        } => {
            w.put_u8(1);
            put_task(w, *task);
            w.put_u64(checkpoint.0).put_len(snapshots.len());
            for (uid, snapshot) in snapshots {
                w.put_str(uid)
                    .put_bool(snapshot.finished)
                    .put_len(snapshot.state.len());
                for (name, entries) in &snapshot.state {
                    w.put_str(name).put_len(entries.len());
                    for v in entries {
                        put_versioned(w, v);
                    }
                }
            }
            w.put_u64(micros(timing.first_barrier.elapsed()))
                .put_u64(micros(timing.alignment))
                .put_opt_u64(timing.in_flight_bytes);
        }
        MasterMsg::Declined {
            task,
            checkpoint,
            reason,
        } => {
            w.put_u8(2);
            put_task(w, *task);
            w.put_u64(checkpoint.0).put_str(reason);
        }
        MasterMsg::Finished { task } => {
            w.put_u8(3);
            put_task(w, *task);
        }
        MasterMsg::Closed { task } => {
            w.put_u8(4);
            put_task(w, *task);
        }
        MasterMsg::Failed { task, error } => {
            w.put_u8(5);
            put_task(w, *task);
            w.put_bool(matches!(error, RuntimeError::Lost(_)))
                .put_str(&error.to_string());
        }
        MasterMsg::CoordinatorFailed { .. } => {
            return Err(ControlError::Unsupported(
                "a coordinator failure (coordinators run in process 0)".into(),
            ))
        }
    }
    Ok(())
}

fn get_message(r: &mut StateReader<'_>, peer: usize) -> Result<MasterMsg, StateError> {
    let tag = r.get_u8()?;
    let task = get_task(r)?;
    Ok(match tag {
        1 => {
            let checkpoint = CheckpointId(r.get_u64()?);
            let n = r.get_len()?;
            let mut snapshots = BTreeMap::new();
            for _ in 0..n {
                let uid = r.get_str()?.to_owned();
                let finished = r.get_bool()?;
                let states = r.get_len()?;
                let mut state = BTreeMap::new();
                for _ in 0..states {
                    let name = r.get_str()?.to_owned();
                    let entries = r.get_len()?;
                    let mut list = Vec::with_capacity(entries.min(1024));
                    for _ in 0..entries {
                        list.push(get_versioned(r)?);
                    }
                    state.insert(name, list);
                }
                snapshots.insert(uid, SubtaskSnapshot { finished, state });
            }
            let since_first = Duration::from_micros(r.get_u64()?);
            let now = Instant::now();
            let timing = BarrierTiming {
                first_barrier: now.checked_sub(since_first).unwrap_or(now),
                alignment: Duration::from_micros(r.get_u64()?),
                in_flight_bytes: r.get_opt_u64()?,
            };
            MasterMsg::Ack {
                task,
                checkpoint,
                snapshots,
                timing,
            }
        }
        2 => MasterMsg::Declined {
            task,
            checkpoint: CheckpointId(r.get_u64()?),
            reason: r.get_str()?.to_owned(),
        },
        3 => MasterMsg::Finished { task },
        4 => MasterMsg::Closed { task },
        5 => {
            let lost = r.get_bool()?;
            let text = r.get_str()?.to_owned();
            MasterMsg::Failed {
                task,
                error: if lost {
                    RuntimeError::Lost(format!("{text} (in process {peer})"))
                } else {
                    RuntimeError::Remote {
                        process: peer,
                        message: text,
                    }
                },
            }
        }
        other => return Err(malformed(format!("task message {other}"))),
    })
}

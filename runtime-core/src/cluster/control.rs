//! Control messages between the job master (process 0) and the other processes of a cluster,
//! as versioned, checksummed frames on one control channel per direction and pair of processes.
//!
//! A control frame is a state frame (marker `WCTL`, format version, length, CRC-32; see
//! `weir_connector_api::state::frame`) around a payload written with `StateWriter` (big-endian
//! integers, `u32`-length-prefixed strings and byte strings, `u32` counts):
//!
//! ```text
//! u8 kind, then by kind:
//! to a worker:  1 start attempt  u32 attempt, opt bytes restore (checkpoint metadata, encoded)
//!               2 task command   u32 attempt, task, command
//!               3 end attempt    u32 attempt, opt u64 grace millis (none: abort)
//!               4 job ended      u8 status (0 finished, 1 cancelled, 2 stopped, 3 failed), str
//! to the master: 10 task message u32 attempt, task, message
//!               11 reader request u32 attempt, str source uid, u8 request (0 registered,
//!                                 1 split request, 2 watermark), u64 subtask, [i64 watermark]
//!               12 attempt ended  u32 attempt
//!               13 worker failed  u32 attempt, str reason
//!               14 metrics        len, each: str name, u8 0 counter u64 / 1 gauge i64 /
//!                                 2 histogram (u64 count, u64 sum, opt u64 min, opt u64 max)
//!               15 loads          u32 attempt, len, each: task, u64 idle ns, u64
//!                                 back-pressured ns, u64 records in, u64 records out, i64
//!                                 watermark, u64 alignment-paused ms, u64 paused splits
//! task = u64 group, u64 subtask
//! command = u8 tag: 1 trigger barrier (u64 id, u8 kind), 2 notify (u8 0 complete / 1 aborted,
//!           u64 id), 3 add splits (len, each u32 version + bytes), 4 align watermark (i64),
//!           5 no more splits, 6 stop source (bool drain), 7 cancel
//! message = u8 tag: 1 ack (u64 checkpoint, snapshots, u64 µs since the first barrier, u64 µs
//!           aligned, opt u64 in-flight bytes), 2 declined (u64 checkpoint, str reason),
//!           3 finished, 4 closed, 5 failed (bool lost, str error)
//! snapshots = len, each: str uid, bool finished, len states, each: str name, len, each:
//!           u32 version, bytes
//! ```
//!
//! Split assignments are written with the source's split serializer. A source event cannot
//! cross processes (it is an opaque value); errors travel as text.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use weir_connector_api::checkpoint::{CheckpointId, VersionedBytes};
use weir_connector_api::metrics::MetricValue;
use weir_connector_api::source::Source;
use weir_connector_api::state::{frame, Magic, StateError, StateReader, StateWriter};
use weir_connector_api::watermark::Watermark;

use crate::element::{Barrier, Notification, SnapshotType};
use crate::load::Mirrored;
use crate::storage::CheckpointMetadata;
use crate::task::{MasterMsg, TaskCommand, TaskKey};

/// The marker of every control frame.
const CONTROL_MAGIC: Magic = Magic::new(*b"WCTL");
/// The control format version this build writes and reads.
pub(crate) const CONTROL_VERSION: u32 = 1;

const START_ATTEMPT: u8 = 1;
const TASK_COMMAND: u8 = 2;
const END_ATTEMPT: u8 = 3;
const JOB_ENDED: u8 = 4;
const TASK_MESSAGE: u8 = 10;
const READER_REQUEST: u8 = 11;
const ATTEMPT_ENDED: u8 = 12;
const WORKER_FAILED: u8 = 13;
const METRICS: u8 = 14;
const LOADS: u8 = 15;

/// Why a control message could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// The bytes are not a control message of this build.
    #[error(
        "a control message from process {peer} is damaged or of another Weir build ({reason}); \
         every process of a cluster must run the same build, and the job restarts from its \
         latest checkpoint"
    )]
    Damaged {
        /// The process it came from.
        peer: usize,
        /// What is wrong.
        reason: String,
    },
    /// The message cannot cross processes.
    #[error("{0} cannot be sent to another process in cluster mode")]
    Unsupported(String),
    /// A value could not be written (too large, or refused by its serializer).
    #[error("a control message could not be written: {0}")]
    Encode(String),
}

impl ControlError {
    fn damaged(peer: usize) -> impl Fn(StateError) -> ControlError {
        move |e| ControlError::Damaged {
            peer,
            reason: e.to_string(),
        }
    }
}

/// Writes and reads a source's split assignments (a `Vec` of its split type, erased).
pub(crate) trait SplitCodec: Send + Sync {
    /// Writes the splits of an `AddSplits` command.
    fn encode(&self, splits: &(dyn Any + Send)) -> Result<Vec<VersionedBytes>, ControlError>;
    /// Reads them back.
    fn decode(&self, splits: Vec<VersionedBytes>) -> Result<Box<dyn Any + Send>, StateError>;
}

/// The [`SplitCodec`] of source `S`, with its split serializer.
pub(crate) struct SplitsOf<S>(pub(crate) Arc<S>);

impl<S: Source> SplitCodec for SplitsOf<S> {
    fn encode(&self, splits: &(dyn Any + Send)) -> Result<Vec<VersionedBytes>, ControlError> {
        let splits = splits.downcast_ref::<Vec<S::Split>>().ok_or_else(|| {
            ControlError::Encode("a split assignment of another source's split type".into())
        })?;
        let serializer = self.0.split_serializer();
        splits
            .iter()
            .map(|s| {
                Ok(VersionedBytes {
                    version: serializer.version(),
                    bytes: serializer
                        .serialize(s)
                        .map_err(|e| ControlError::Encode(format!("a split: {e}")))?,
                })
            })
            .collect()
    }

    fn decode(&self, splits: Vec<VersionedBytes>) -> Result<Box<dyn Any + Send>, StateError> {
        let serializer = self.0.split_serializer();
        let splits: Vec<S::Split> = splits
            .iter()
            .map(|v| serializer.deserialize(v.version, &v.bytes))
            .collect::<Result<_, _>>()?;
        Ok(Box::new(splits))
    }
}

/// The split codecs of a job's sources, by the task group of their readers.
pub(crate) type SplitCodecs = BTreeMap<usize, Arc<dyn SplitCodec>>;

/// What the master tells another process.
pub(crate) enum ToWorker {
    /// Start this process's subtasks of an attempt, restoring `restore`.
    StartAttempt {
        attempt: u32,
        restore: Option<CheckpointMetadata>,
    },
    /// A command to one of this process's subtasks.
    Command {
        attempt: u32,
        task: TaskKey,
        command: TaskCommand,
    },
    /// Stop the attempt's subtasks: with a grace period, or at once (`None`).
    EndAttempt {
        attempt: u32,
        grace: Option<Duration>,
    },
    /// The job ended; the text says how.
    JobEnded { outcome: Outcome },
}

/// How a job ended, as the other processes learn it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Finished,
    Cancelled,
    Stopped(String),
    Failed(String),
}

/// What a reader in another process asks of its source's coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReaderRequest {
    Registered {
        subtask: usize,
    },
    SplitRequest {
        subtask: usize,
    },
    Watermark {
        subtask: usize,
        watermark: Watermark,
    },
}

/// What another process tells the master.
pub(crate) enum ToMaster {
    /// A message of one of its subtasks.
    Task { attempt: u32, message: MasterMsg },
    /// A reader's request to its source's coordinator.
    Reader {
        attempt: u32,
        source: String,
        request: ReaderRequest,
    },
    /// Its subtasks of the attempt are gone.
    AttemptEnded { attempt: u32 },
    /// It could not start its subtasks of the attempt.
    WorkerFailed { attempt: u32, reason: String },
    /// The metrics of its subtasks, once the job ended.
    Metrics(BTreeMap<String, MetricValue>),
    /// What its subtasks of the attempt measured so far (for the master's monitor).
    Loads {
        attempt: u32,
        loads: Vec<(TaskKey, Mirrored)>,
    },
}

fn finish(w: StateWriter) -> Result<Vec<u8>, ControlError> {
    let payload = w
        .finish()
        .map_err(|e| ControlError::Encode(e.to_string()))?;
    frame::encode(CONTROL_MAGIC, CONTROL_VERSION, &payload)
        .map_err(|e| ControlError::Encode(e.to_string()))
}

fn open(bytes: &[u8], peer: usize) -> Result<StateReader<'_>, ControlError> {
    let frame = frame::decode(CONTROL_MAGIC, bytes).map_err(ControlError::damaged(peer))?;
    if frame.version != CONTROL_VERSION {
        return Err(ControlError::Damaged {
            peer,
            reason: format!(
                "control format version {} (this build reads {CONTROL_VERSION})",
                frame.version
            ),
        });
    }
    Ok(StateReader::new(frame.payload))
}

fn put_task(w: &mut StateWriter, task: TaskKey) {
    w.put_u64(task.group as u64).put_u64(task.subtask as u64);
}

fn get_usize(r: &mut StateReader<'_>) -> Result<usize, StateError> {
    let v = r.get_u64()?;
    usize::try_from(v).map_err(|_| StateError::malformed("control message", "index too large"))
}

fn get_task(r: &mut StateReader<'_>) -> Result<TaskKey, StateError> {
    Ok(TaskKey {
        group: get_usize(r)?,
        subtask: get_usize(r)?,
    })
}

fn put_versioned(w: &mut StateWriter, v: &VersionedBytes) {
    w.put_u32(v.version).put_bytes(&v.bytes);
}

fn get_versioned(r: &mut StateReader<'_>) -> Result<VersionedBytes, StateError> {
    Ok(VersionedBytes {
        version: r.get_u32()?,
        bytes: r.get_bytes()?.to_vec(),
    })
}

fn malformed(what: String) -> StateError {
    StateError::malformed("control message", what)
}

impl ToWorker {
    /// Writes the message; `codecs` write split assignments.
    pub(crate) fn encode(&self, codecs: &SplitCodecs) -> Result<Vec<u8>, ControlError> {
        let mut w = StateWriter::new();
        match self {
            ToWorker::StartAttempt { attempt, restore } => {
                let restore = restore
                    .as_ref()
                    .map(CheckpointMetadata::encode)
                    .transpose()
                    .map_err(|e| ControlError::Encode(e.to_string()))?;
                w.put_u8(START_ATTEMPT)
                    .put_u32(*attempt)
                    .put_opt_bytes(restore.as_deref());
            }
            ToWorker::Command {
                attempt,
                task,
                command,
            } => {
                w.put_u8(TASK_COMMAND).put_u32(*attempt);
                put_task(&mut w, *task);
                put_command(&mut w, *task, command, codecs)?;
            }
            ToWorker::EndAttempt { attempt, grace } => {
                w.put_u8(END_ATTEMPT)
                    .put_u32(*attempt)
                    .put_opt_u64(grace.map(|g| g.as_millis() as u64));
            }
            ToWorker::JobEnded { outcome } => {
                let (tag, text) = match outcome {
                    Outcome::Finished => (0, ""),
                    Outcome::Cancelled => (1, ""),
                    Outcome::Stopped(s) => (2, s.as_str()),
                    Outcome::Failed(s) => (3, s.as_str()),
                };
                w.put_u8(JOB_ENDED).put_u8(tag).put_str(text);
            }
        }
        finish(w)
    }

    /// Reads a message from process `peer`.
    pub(crate) fn decode(
        bytes: &[u8],
        peer: usize,
        codecs: &SplitCodecs,
    ) -> Result<ToWorker, ControlError> {
        let mut r = open(bytes, peer)?;
        let message = read_to_worker(&mut r, codecs).and_then(|m| {
            r.finish()?;
            Ok(m)
        });
        message.map_err(ControlError::damaged(peer))
    }
}

fn read_to_worker(r: &mut StateReader<'_>, codecs: &SplitCodecs) -> Result<ToWorker, StateError> {
    Ok(match r.get_u8()? {
        START_ATTEMPT => ToWorker::StartAttempt {
            attempt: r.get_u32()?,
            restore: r
                .get_opt_bytes()?
                .map(CheckpointMetadata::decode)
                .transpose()?,
        },
        TASK_COMMAND => {
            let attempt = r.get_u32()?;
            let task = get_task(r)?;
            let command = get_command(r, task, codecs)?;
            ToWorker::Command {
                attempt,
                task,
                command,
            }
        }
        END_ATTEMPT => ToWorker::EndAttempt {
            attempt: r.get_u32()?,
            grace: r.get_opt_u64()?.map(Duration::from_millis),
        },
        JOB_ENDED => {
            let tag = r.get_u8()?;
            let text = r.get_str()?.to_owned();
            let outcome = match tag {
                0 => Outcome::Finished,
                1 => Outcome::Cancelled,
                2 => Outcome::Stopped(text),
                3 => Outcome::Failed(text),
                other => return Err(malformed(format!("job outcome {other}"))),
            };
            ToWorker::JobEnded { outcome }
        }
        other => return Err(malformed(format!("kind {other} to a worker"))),
    })
}

fn put_command(
    w: &mut StateWriter,
    task: TaskKey,
    command: &TaskCommand,
    codecs: &SplitCodecs,
) -> Result<(), ControlError> {
    match command {
        TaskCommand::TriggerBarrier(b) => {
            w.put_u8(1).put_u64(b.checkpoint_id.0).put_u8(match b.kind {
                SnapshotType::Checkpoint => 0,
                SnapshotType::Savepoint => 1,
            });
        }
        TaskCommand::Notify(n) => {
            let (tag, id) = match n {
                Notification::CheckpointComplete(c) => (0, c.0),
                Notification::CheckpointAborted(c) => (1, c.0),
            };
            w.put_u8(2).put_u8(tag).put_u64(id);
        }
        TaskCommand::AddSplits(splits) => {
            let codec = codecs.get(&task.group).ok_or_else(|| {
                ControlError::Encode(format!("splits for task group {} (no source)", task.group))
            })?;
            let splits = codec.encode(splits.as_ref())?;
            w.put_u8(3).put_len(splits.len());
            for s in &splits {
                put_versioned(w, s);
            }
        }
        TaskCommand::AlignWatermark(wm) => {
            w.put_u8(4).put_i64(wm.0);
        }
        TaskCommand::NoMoreSplits => {
            w.put_u8(5);
        }
        TaskCommand::SourceEvent(_) => {
            return Err(ControlError::Unsupported(
                "a custom source event from the split enumerator".into(),
            ))
        }
        TaskCommand::StopSource { drain } => {
            w.put_u8(6).put_bool(*drain);
        }
        TaskCommand::Cancel => {
            w.put_u8(7);
        }
    }
    Ok(())
}

fn get_command(
    r: &mut StateReader<'_>,
    task: TaskKey,
    codecs: &SplitCodecs,
) -> Result<TaskCommand, StateError> {
    Ok(match r.get_u8()? {
        1 => TaskCommand::TriggerBarrier(Barrier {
            checkpoint_id: CheckpointId(r.get_u64()?),
            kind: match r.get_u8()? {
                0 => SnapshotType::Checkpoint,
                1 => SnapshotType::Savepoint,
                other => return Err(malformed(format!("barrier kind {other}"))),
            },
        }),
        2 => {
            let tag = r.get_u8()?;
            let id = CheckpointId(r.get_u64()?);
            TaskCommand::Notify(match tag {
                0 => Notification::CheckpointComplete(id),
                1 => Notification::CheckpointAborted(id),
                other => return Err(malformed(format!("notification {other}"))),
            })
        }
        3 => {
            let n = r.get_len()?;
            let mut splits = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                splits.push(get_versioned(r)?);
            }
            let codec = codecs
                .get(&task.group)
                .ok_or_else(|| malformed(format!("splits for task group {}", task.group)))?;
            TaskCommand::AddSplits(codec.decode(splits)?)
        }
        4 => TaskCommand::AlignWatermark(Watermark(r.get_i64()?)),
        5 => TaskCommand::NoMoreSplits,
        6 => TaskCommand::StopSource {
            drain: r.get_bool()?,
        },
        7 => TaskCommand::Cancel,
        other => return Err(malformed(format!("task command {other}"))),
    })
}

mod to_master;

#[cfg(test)]
#[path = "control_tests.rs"]
mod tests;

//! Small-file compaction (FLIP-191) through the sink's pre-commit topology:
//!
//! ```text
//! writers ──▶ compact-coordinator (1 subtask) ──▶ compactor (n subtasks) ──▶ committer
//! ```
//!
//! - With compaction enabled, writers name their part files hidden (`.part-…`).
//! - The **coordinator** collects the pending files per bucket and, at a checkpoint barrier,
//!   packs them into [`CompactorRequest`]s: as soon as a bucket holds `size_threshold` bytes, or
//!   every `n` checkpoints. Files not yet packed are in its state. Requests are routed
//!   round-robin ([`Routing::Rebalance`]): the runtime spreads them over the compactor subtasks.
//! - A **compactor** holds requests until their checkpoint completes, then compacts each into
//!   one `compacted-<prefix>-<uuid>-<n><suffix>` file ([`FileCompactor::Concat`] for row formats,
//!   [`FileCompactor::RecordWise`] re-encodes records or Arrow batches), and emits at the next
//!   barrier the compacted pending file plus a cleanup of each input, with one consistent
//!   summary. A request of one file that already reaches the threshold is published as it is.
//!   Requests in flight are in its state and resumed after a restore.
//! - [`FileSinkBuilder::disable_compaction`](super::FileSinkBuilder::disable_compaction) keeps
//!   both stages, with the same uids, as pass-through: a job restored from a savepoint taken with
//!   compaction enabled publishes the files left in their state (under visible names) instead of
//!   losing them.

use std::collections::BTreeMap;
use std::io::Write;
use std::num::NonZeroUsize;
use std::sync::Arc;

use futures::StreamExt;
use weir_connector_api::checkpoint::{CheckpointId, VersionedBytes};
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::sink::{
    CommittableMessage, CommittableOperator, CommittableStage, CommittableSummary,
    CommittableTopology, CommittableWithLineage, InitContext, Routing, StageParallelism,
};
use weir_connector_api::state::VersionedSerializer;

use super::compact_io::{open_inputs, StreamOut};
use super::naming::{label_uuid, part_name, Label, OutputFileConfig, COMPACTED_PREFIX};
use super::state::{
    CompactCoordinatorState, CompactCoordinatorStateSerializer, CompactorRequest, CompactorState,
    CompactorStateSerializer, FileSinkCommittable, HeldCompaction,
};
use super::sweep::{sweep_at_start, PartKind, StartKind, StartSweep};
use super::{sweep_orphans, SweepScope};
use crate::format::CompactInput;
use crate::fs::{file_name, join, parent};
use crate::fs::{io_error, FileSystem, Recoverable, RecoverableWriter};

/// The name of the coordinator stage (part of its uid: keep it stable).
pub const COORDINATOR_STAGE: &str = "compact-coordinator";
/// The name of the compactor stage (part of its uid: keep it stable).
pub const COMPACTOR_STAGE: &str = "compactor";

/// When to compact and with how much concurrency (Flink's `FileCompactStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileCompactStrategy {
    /// Compact a bucket once its pending files add up to this many bytes.
    pub size_threshold: Option<u64>,
    /// Compact every bucket every this many checkpoints.
    pub every_n_checkpoints: Option<u64>,
    /// Requests a compactor subtask compacts at once.
    pub threads: usize,
    /// Compactor subtasks.
    pub parallelism: usize,
}

impl FileCompactStrategy {
    /// A builder; at least one trigger must be set.
    pub fn builder() -> FileCompactStrategyBuilder {
        FileCompactStrategyBuilder {
            strategy: FileCompactStrategy {
                size_threshold: None,
                every_n_checkpoints: None,
                threads: 1,
                parallelism: 1,
            },
        }
    }
}

/// Builds a [`FileCompactStrategy`].
#[derive(Debug, Clone)]
pub struct FileCompactStrategyBuilder {
    strategy: FileCompactStrategy,
}

impl FileCompactStrategyBuilder {
    /// Compacts every bucket every `n` checkpoints.
    pub fn enable_compaction_on_checkpoint(mut self, n: u64) -> Self {
        self.strategy.every_n_checkpoints = Some(n.max(1));
        self
    }

    /// Compacts a bucket once its pending files reach `bytes`.
    pub fn size_threshold(mut self, bytes: u64) -> Self {
        self.strategy.size_threshold = Some(bytes.max(1));
        self
    }

    /// Requests compacted at once by each compactor subtask (at least 1).
    pub fn num_compact_threads(mut self, threads: usize) -> Self {
        self.strategy.threads = threads.max(1);
        self
    }

    /// Compactor subtasks (at least 1).
    pub fn parallelism(mut self, parallelism: usize) -> Self {
        self.strategy.parallelism = parallelism.max(1);
        self
    }

    /// The strategy, or an error if no trigger is set.
    pub fn build(self) -> Result<FileCompactStrategy> {
        if self.strategy.size_threshold.is_none() && self.strategy.every_n_checkpoints.is_none() {
            return Err(ConnectorError::Contract(
                "a compaction strategy needs a trigger: set size_threshold and/or \
                 enable_compaction_on_checkpoint"
                    .into(),
            ));
        }
        Ok(self.strategy)
    }
}

/// How files are compacted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FileCompactor {
    /// Concatenates the bytes of the inputs (row formats without headers).
    Concat,
    /// Reads the inputs with the sink's format and writes their records (or Arrow batches) into
    /// one file of the same format (any format; needed for Parquet, ORC and CSV with headers).
    RecordWise,
}

/// Compacts files into one, written to the output as it is made (nothing written: nothing to
/// compact).
pub(crate) type CompactFn =
    Arc<dyn Fn(&[CompactInput], &mut (dyn Write + Send)) -> Result<()> + Send + Sync>;

/// The concatenating compactor: copies each input to the output, a range at a time.
pub(crate) fn concat() -> CompactFn {
    Arc::new(|inputs: &[CompactInput], out: &mut (dyn Write + Send)| {
        for input in inputs {
            std::io::copy(&mut input.reader_at(0), out)
                .map_err(|e| io_error("concatenating part files", e))?;
        }
        Ok(())
    })
}

/// Everything the compaction stages need of the sink.
pub(crate) struct CompactionContext {
    pub(crate) fs: Arc<dyn FileSystem>,
    pub(crate) base_path: String,
    pub(crate) output: OutputFileConfig,
    pub(crate) strategy: FileCompactStrategy,
    /// `None`: compaction disabled (pass-through placeholders that drain leftover state).
    pub(crate) compact: Option<CompactFn>,
    pub(crate) sweep_orphans: bool,
}

/// The compaction stages (enabled or placeholders, with the same names).
pub(crate) fn topology(
    ctx: &Arc<CompactionContext>,
) -> CommittableTopology<FileSinkCommittable, FileSinkCommittable> {
    let coordinator_ctx = Arc::clone(ctx);
    let compactor_ctx = Arc::clone(ctx);
    let parallelism = NonZeroUsize::new(ctx.strategy.parallelism)
        .map_or(StageParallelism::One, StageParallelism::Fixed);
    CommittableTopology::new(CommittableStage {
        name: COORDINATOR_STAGE.into(),
        parallelism: StageParallelism::One,
        routing: Routing::Global,
        factory: Arc::new(
            move |_init: &dyn InitContext, restored: Vec<VersionedBytes>| {
                Ok(Box::new(CompactCoordinator::restore(
                    Arc::clone(&coordinator_ctx),
                    &restored,
                )?)
                    as Box<
                        dyn CommittableOperator<FileSinkCommittable, CompactorRequest>,
                    >)
            },
        ),
    })
    .then(CommittableStage {
        name: COMPACTOR_STAGE.into(),
        parallelism,
        routing: Routing::Rebalance,
        factory: Arc::new(
            move |init: &dyn InitContext, restored: Vec<VersionedBytes>| {
                Ok(Box::new(CompactorOperator::restore(
                    Arc::clone(&compactor_ctx),
                    init,
                    &restored,
                )?)
                    as Box<
                        dyn CommittableOperator<CompactorRequest, FileSinkCommittable>,
                    >)
            },
        ),
    })
}

fn to_state<T>(
    serializer: &impl VersionedSerializer<T>,
    value: &T,
) -> Result<Option<VersionedBytes>> {
    Ok(Some(VersionedBytes {
        version: serializer.version(),
        bytes: serializer.serialize(value)?,
    }))
}

/// Packs pending files into compaction requests (one subtask).
struct CompactCoordinator {
    ctx: Arc<CompactionContext>,
    /// Pending files not yet packed, per bucket.
    held: BTreeMap<String, Vec<Recoverable>>,
    /// Checkpoints since the last "every n checkpoints" trigger.
    checkpoints: u64,
    /// Requests packed since the last barrier.
    fired: Vec<CompactorRequest>,
    /// Committables passed through since the last barrier.
    pass: Vec<FileSinkCommittable>,
    /// The input ended: downstream reads nothing more, so nothing more is emitted.
    ended: bool,
}

impl CompactCoordinator {
    fn restore(ctx: Arc<CompactionContext>, restored: &[VersionedBytes]) -> Result<Self> {
        let mut held: BTreeMap<String, Vec<Recoverable>> = BTreeMap::new();
        let mut checkpoints = 0;
        let mut ended = false;
        for v in restored {
            let state = CompactCoordinatorStateSerializer.deserialize(v.version, &v.bytes)?;
            ended |= state.ended;
            checkpoints = checkpoints.max(state.checkpoints);
            for (bucket, files) in state.held {
                held.entry(bucket).or_default().extend(files);
            }
        }
        let mut c = CompactCoordinator {
            ctx,
            held,
            checkpoints,
            fired: Vec::new(),
            pass: Vec::new(),
            ended,
        };
        if c.ctx.compact.is_none() {
            // Disabled: what an enabled run left is published as it is at the first barrier.
            c.fire_all(false);
        }
        Ok(c)
    }

    fn fire(&mut self, bucket: &str, compact: bool) {
        if let Some(files) = self.held.remove(bucket) {
            if !files.is_empty() {
                self.fired.push(CompactorRequest {
                    bucket_id: bucket.to_owned(),
                    to_compact: files,
                    pass_through: Vec::new(),
                    compact,
                });
            }
        }
    }

    fn fire_all(&mut self, compact: bool) {
        let buckets: Vec<String> = self.held.keys().cloned().collect();
        for b in buckets {
            self.fire(&b, compact);
        }
    }

    fn emit(
        &mut self,
        checkpoint_id: CheckpointId,
        output: &mut Vec<CommittableMessage<CompactorRequest>>,
    ) {
        let mut requests = std::mem::take(&mut self.fired);
        if !self.pass.is_empty() {
            requests.push(CompactorRequest {
                bucket_id: String::new(),
                to_compact: Vec::new(),
                pass_through: std::mem::take(&mut self.pass),
                compact: false,
            });
        }
        output.push(CommittableMessage::Summary(CommittableSummary {
            subtask_id: 0,
            number_of_subtasks: 1,
            checkpoint_id,
            number_of_committables: requests.len(),
            number_of_failed: 0,
        }));
        output.extend(requests.into_iter().map(|committable| {
            CommittableMessage::WithLineage(CommittableWithLineage {
                committable,
                checkpoint_id,
                subtask_id: 0,
            })
        }));
    }
}

#[async_trait::async_trait]
impl CommittableOperator<FileSinkCommittable, CompactorRequest> for CompactCoordinator {
    async fn process(
        &mut self,
        message: CommittableMessage<FileSinkCommittable>,
        _output: &mut Vec<CommittableMessage<CompactorRequest>>,
    ) -> Result<()> {
        let CommittableMessage::WithLineage(c) = message else {
            return Ok(()); // summaries are re-made per barrier
        };
        tracing::trace!(checkpoint = %c.checkpoint_id, subtask = c.subtask_id, committable = ?c.committable, "coordinator received");
        match c.committable {
            // Disabled: a file still named hidden (resumed from a run with compaction) is
            // published under its visible name by the compactor stage.
            FileSinkCommittable::Pending { bucket_id, file }
                if self.ctx.compact.is_none() && file_name(&file.target).starts_with('.') =>
            {
                self.held.entry(bucket_id).or_default().push(file);
            }
            FileSinkCommittable::Pending { bucket_id, file } if self.ctx.compact.is_some() => {
                let files = self.held.entry(bucket_id.clone()).or_default();
                files.push(file);
                let size: u64 = files.iter().map(|f| f.len).sum();
                if self.ctx.strategy.size_threshold.is_some_and(|t| size >= t) {
                    self.fire(&bucket_id, true);
                }
            }
            other => self.pass.push(other),
        }
        Ok(())
    }

    async fn prepare_snapshot_pre_barrier(
        &mut self,
        checkpoint_id: CheckpointId,
        output: &mut Vec<CommittableMessage<CompactorRequest>>,
    ) -> Result<()> {
        if self.ended {
            return Ok(());
        }
        if self.ctx.compact.is_some() {
            self.checkpoints += 1;
            if let Some(n) = self.ctx.strategy.every_n_checkpoints {
                if self.checkpoints >= n {
                    self.checkpoints = 0;
                    self.fire_all(true);
                }
            }
        } else {
            self.fire_all(false);
        }
        self.emit(checkpoint_id, output);
        Ok(())
    }

    fn snapshot_state(&mut self, checkpoint_id: CheckpointId) -> Result<Option<VersionedBytes>> {
        tracing::trace!(checkpoint = %checkpoint_id, ended = self.ended, held = ?self.held.values().flatten().map(|f| f.target.as_str()).collect::<Vec<_>>(), "coordinator snapshot");
        let state = CompactCoordinatorState {
            ended: self.ended,
            checkpoints: self.checkpoints,
            held: self.held.clone(),
        };
        to_state(&CompactCoordinatorStateSerializer, &state)
    }

    async fn end_input(
        &mut self,
        output: &mut Vec<CommittableMessage<CompactorRequest>>,
    ) -> Result<()> {
        if self.ended {
            return Ok(());
        }
        let compact = self.ctx.compact.is_some();
        self.fire_all(compact);
        self.emit(CheckpointId::END_OF_INPUT, output);
        self.ended = true;
        Ok(())
    }
}

/// Compacts requests after their checkpoint completed.
struct CompactorOperator {
    ctx: Arc<CompactionContext>,
    rw: Arc<dyn RecoverableWriter>,
    subtask: u32,
    parallelism: u32,
    attempt: u32,
    epoch: u64,
    uuid: uuid::Uuid,
    counter: u64,
    /// Requests by the checkpoint they came with.
    waiting: BTreeMap<CheckpointId, Vec<CompactorRequest>>,
    /// Requests restored from a completed checkpoint: compacted at the first barrier.
    restored: Vec<CompactorRequest>,
    /// Results to emit at the next barrier.
    ready: Vec<FileSinkCommittable>,
    /// How it started, until the start-up sweep ran (before the first compaction).
    start_sweep: Option<StartKind>,
    /// The restored checkpoint (0 for a restart without one), for the sweep of earlier
    /// attempts' leftovers at end of input.
    late_sweep: Option<u64>,
    /// The input ended: downstream reads nothing more, so nothing more is emitted.
    ended: bool,
}

impl CompactorOperator {
    fn restore(
        ctx: Arc<CompactionContext>,
        init: &dyn InitContext,
        restored_states: &[VersionedBytes],
    ) -> Result<Self> {
        let mut restored = Vec::new();
        let mut ended = false;
        for v in restored_states {
            let state = CompactorStateSerializer.deserialize(v.version, &v.bytes)?;
            ended |= state.ended;
            restored.extend(state.held.into_iter().map(|h| h.request));
        }
        let checkpoint = init.restored_checkpoint_id().map(|c| c.0);
        let sweep_above = match checkpoint {
            Some(n) => Some(n),
            None if init.attempt() > 0 => Some(0),
            None => None,
        };
        let subtask = init.subtask_index() as u32;
        let epoch = checkpoint.unwrap_or(0).saturating_add(1);
        let attempt = init.attempt();
        Ok(CompactorOperator {
            rw: ctx.fs.recoverable_writer(),
            ctx,
            subtask,
            parallelism: init.parallelism().max(1) as u32,
            attempt,
            epoch,
            uuid: label_uuid(Label {
                subtask,
                attempt,
                epoch,
            }),
            counter: 0,
            waiting: BTreeMap::new(),
            restored,
            ready: Vec::new(),
            start_sweep: Some(sweep_above.map_or(StartKind::Fresh, StartKind::Restored)),
            late_sweep: sweep_above,
            ended,
        })
    }

    async fn sweep(&mut self) -> Result<()> {
        if let Some(start) = self.start_sweep.take() {
            if self.ctx.sweep_orphans {
                let scope = StartSweep {
                    parts: PartKind::Compacted,
                    subtask: self.subtask,
                    parallelism: self.parallelism,
                    start,
                };
                sweep_at_start(&self.ctx.fs, &self.ctx.base_path, &self.ctx.output, scope).await?;
            }
        }
        Ok(())
    }

    async fn compact_all(&mut self, requests: Vec<CompactorRequest>) -> Result<()> {
        if requests.is_empty() {
            return Ok(());
        }
        self.sweep().await?;
        let mut jobs = Vec::with_capacity(requests.len());
        for request in requests {
            let name = format!(
                "{COMPACTED_PREFIX}{}",
                part_name(&self.ctx.output, &self.uuid, self.counter)
            );
            self.counter += 1;
            let target = join(&join(&self.ctx.base_path, &request.bucket_id), &name);
            jobs.push((request, target));
        }
        let ctx = Arc::clone(&self.ctx);
        let rw = Arc::clone(&self.rw);
        let results: Vec<Result<Vec<FileSinkCommittable>>> = futures::stream::iter(jobs)
            .map(|(request, target)| compact_request(&ctx, &rw, request, target))
            .buffer_unordered(self.ctx.strategy.threads.max(1))
            .collect()
            .await;
        for r in results {
            self.ready.extend(r?);
        }
        Ok(())
    }

    fn emit(
        &mut self,
        checkpoint_id: CheckpointId,
        output: &mut Vec<CommittableMessage<FileSinkCommittable>>,
    ) {
        let ready = std::mem::take(&mut self.ready);
        output.push(CommittableMessage::Summary(CommittableSummary {
            subtask_id: self.subtask as usize,
            number_of_subtasks: self.parallelism as usize,
            checkpoint_id,
            number_of_committables: ready.len(),
            number_of_failed: 0,
        }));
        let subtask = self.subtask as usize;
        output.extend(ready.into_iter().map(|committable| {
            CommittableMessage::WithLineage(CommittableWithLineage {
                committable,
                checkpoint_id,
                subtask_id: subtask,
            })
        }));
    }
}

/// The visible name of a hidden part file (`dir/.name` → `dir/name`).
fn visible(target: &str) -> String {
    let name = file_name(target);
    join(parent(target), name.strip_prefix('.').unwrap_or(name))
}

/// Publishes a pending file as it is, under its visible name.
async fn publish_as_is(
    rw: &Arc<dyn RecoverableWriter>,
    bucket_id: &str,
    file: Recoverable,
    out: &mut Vec<FileSinkCommittable>,
) -> Result<()> {
    let to = visible(&file.target);
    if to == file.target {
        out.push(FileSinkCommittable::Pending {
            bucket_id: bucket_id.to_owned(),
            file,
        });
    } else if let Some(retargeted) = rw.retarget(&file, &to) {
        out.push(FileSinkCommittable::Pending {
            bucket_id: bucket_id.to_owned(),
            file: retargeted,
        });
    } else {
        rw.commit(&file).await?;
        out.push(FileSinkCommittable::Move {
            bucket_id: bucket_id.to_owned(),
            from: file.target,
            to,
            len: file.len,
        });
    }
    Ok(())
}

async fn compact_request(
    ctx: &Arc<CompactionContext>,
    rw: &Arc<dyn RecoverableWriter>,
    request: CompactorRequest,
    target: String,
) -> Result<Vec<FileSinkCommittable>> {
    tracing::debug!(
        bucket = %request.bucket_id,
        inputs = ?request.to_compact.iter().map(|f| f.target.as_str()).collect::<Vec<_>>(),
        compact = request.compact,
        "compaction request"
    );
    let mut out = request.pass_through;
    let bucket = request.bucket_id;
    let single_big = request.to_compact.len() == 1
        && ctx
            .strategy
            .size_threshold
            .is_some_and(|t| request.to_compact.iter().all(|f| f.len >= t));
    let compact = match (&ctx.compact, request.compact, single_big) {
        (Some(c), true, false) => Arc::clone(c),
        _ => {
            for file in request.to_compact {
                publish_as_is(rw, &bucket, file, &mut out).await?;
            }
            return Ok(out);
        }
    };
    let inputs = open_inputs(&ctx.fs, rw, &request.to_compact).await?;
    let stream = rw.open(&target)?;
    let (stream, result) = tokio::task::spawn_blocking(move || {
        let mut out = StreamOut::new(stream);
        let result = compact(&inputs, &mut out);
        out.finish(result)
    })
    .await
    .map_err(|e| ConnectorError::Contract(format!("the compaction task failed: {e}")))?;
    if let Err(e) = result {
        if let Err(abort) = stream.abort().await {
            tracing::warn!(target = %target, error = %abort, "dropping a failed compacted file");
        }
        return Err(e);
    }
    if stream.is_empty() {
        // No empty file is ever published (the start-up sweep takes empty in-progress files
        // for leftovers of kills): keep the inputs as they are.
        stream.abort().await?;
        for file in request.to_compact {
            publish_as_is(rw, &bucket, file, &mut out).await?;
        }
        return Ok(out);
    }
    let file = stream.close_for_commit().await?;
    out.push(FileSinkCommittable::Pending {
        bucket_id: bucket,
        file,
    });
    out.extend(
        request
            .to_compact
            .into_iter()
            .map(|file| FileSinkCommittable::Cleanup { file }),
    );
    Ok(out)
}

#[async_trait::async_trait]
impl CommittableOperator<CompactorRequest, FileSinkCommittable> for CompactorOperator {
    async fn process(
        &mut self,
        message: CommittableMessage<CompactorRequest>,
        _output: &mut Vec<CommittableMessage<FileSinkCommittable>>,
    ) -> Result<()> {
        let CommittableMessage::WithLineage(c) = message else {
            return Ok(());
        };
        let mut request = c.committable;
        // Committables passed through travel on at the next barrier.
        self.ready.append(&mut request.pass_through);
        if !request.to_compact.is_empty() {
            self.waiting
                .entry(c.checkpoint_id)
                .or_default()
                .push(request);
        }
        Ok(())
    }

    async fn prepare_snapshot_pre_barrier(
        &mut self,
        checkpoint_id: CheckpointId,
        output: &mut Vec<CommittableMessage<FileSinkCommittable>>,
    ) -> Result<()> {
        if self.ended {
            return Ok(());
        }
        let restored = std::mem::take(&mut self.restored);
        self.compact_all(restored).await?;
        self.emit(checkpoint_id, output);
        Ok(())
    }

    fn snapshot_state(&mut self, checkpoint_id: CheckpointId) -> Result<Option<VersionedBytes>> {
        let held = self
            .waiting
            .iter()
            .flat_map(|(cp, requests)| requests.iter().map(|r| (cp.0, r)))
            .chain(self.restored.iter().map(|r| (0, r)))
            .map(|(checkpoint, request)| HeldCompaction {
                checkpoint,
                request: request.clone(),
            })
            .collect();
        let state = CompactorState {
            ended: self.ended,
            held,
        };
        if !checkpoint_id.is_end_of_input() {
            self.epoch = checkpoint_id.0.saturating_add(1);
            self.uuid = label_uuid(Label {
                subtask: self.subtask,
                attempt: self.attempt,
                epoch: self.epoch,
            });
        }
        to_state(&CompactorStateSerializer, &state)
    }

    async fn notify_checkpoint_complete(
        &mut self,
        checkpoint_id: CheckpointId,
        _output: &mut Vec<CommittableMessage<FileSinkCommittable>>,
    ) -> Result<()> {
        let later = self
            .waiting
            .split_off(&CheckpointId(checkpoint_id.0.saturating_add(1)));
        let due = std::mem::replace(&mut self.waiting, later);
        let requests: Vec<CompactorRequest> = due.into_values().flatten().collect();
        self.compact_all(requests).await
    }

    async fn end_input(
        &mut self,
        output: &mut Vec<CommittableMessage<FileSinkCommittable>>,
    ) -> Result<()> {
        if self.ended {
            return Ok(());
        }
        let mut requests = std::mem::take(&mut self.restored);
        requests.extend(std::mem::take(&mut self.waiting).into_values().flatten());
        self.compact_all(requests).await?;
        self.emit(CheckpointId::END_OF_INPUT, output);
        self.ended = true;
        if let (Some(n), true, true) = (self.late_sweep, self.attempt > 0, self.ctx.sweep_orphans) {
            let scope = SweepScope {
                compacted: true,
                subtask: self.subtask,
                parallelism: self.parallelism,
                above: n,
                attempts_below: Some(self.attempt),
            };
            sweep_orphans(&self.ctx.fs, &self.ctx.base_path, &self.ctx.output, scope).await?;
        }
        Ok(())
    }
}

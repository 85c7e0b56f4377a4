//! The file sink: exactly-once part files in buckets, over any [`FileSystem`].
//!
//! ```no_run
//! use std::sync::Arc;
//! use weir_connector_files::sink::BasePathBucketAssigner;
//! use weir_connector_files::{FileSink, JsonLinesFormat, LocalFileSystem};
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Order { id: u64, amount: f64 }
//!
//! let sink = FileSink::row(Arc::new(LocalFileSystem::new()), "/data/orders", JsonLinesFormat::<Order>::new())
//!     .bucket_assigner(BasePathBucketAssigner)
//!     .suffix(".jsonl")
//!     .build()?;
//! # Ok::<(), weir_connector_api::error::ConnectorError>(())
//! ```
//!
//! ## Life of a part file
//!
//! 1. **In-progress**: the first record of a bucket opens `<prefix>-<uuid>-<counter><suffix>`
//!    through the filesystem's [`RecoverableWriter`](crate::fs::RecoverableWriter) (invisible
//!    until committed). Row formats keep it open across checkpoints (persisted and resumed after
//!    a failure); bulk formats close it at every checkpoint.
//! 2. **Pending**: the rolling policy (size, open time, inactivity; always at a checkpoint for
//!    bulk formats) closes it; at the next checkpoint barrier it goes to the committer.
//! 3. **Finished**: the committer publishes it once that checkpoint completes.
//!
//! At every start, each writer subtask first removes what killed or failed attempts left that
//! nothing can need — after a restore the in-progress files of epochs no restored checkpoint
//! reaches, and always empty in-progress files (their uuid carries subtask and epoch, see
//! [`Label`] and [`sweep_at_start`]) — then resumes its own.

mod bucket;
#[cfg(weir_api_1_1)]
mod chunks;
mod committer;
mod compact_io;
mod compaction;
mod naming;
mod rolling;
mod state;
mod sweep;
mod writer;

use std::io::Write;
use std::sync::Arc;

use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::sink::{
    CommittableTopology, InitContext, Sink, SinkCapabilities, SupportsCommitter,
    SupportsPreCommitTopology, SupportsWriterState,
};
use weir_connector_api::state::VersionedSerializer;

pub use self::bucket::{
    BasePathBucketAssigner, BucketAssigner, BucketContext, DateTimeBucketAssigner, TimeSource,
};
#[cfg(weir_api_1_1)]
pub use self::chunks::ChunkBuckets;
pub use self::committer::FileCommitter;
use self::compaction::{CompactFn, CompactionContext};
pub use self::compaction::{
    FileCompactStrategy, FileCompactStrategyBuilder, FileCompactor, COMPACTOR_STAGE,
    COORDINATOR_STAGE,
};
pub use self::naming::{
    label_uuid, parse_label, parse_part_name, part_name, Label, OutputFileConfig, COMPACTED_PREFIX,
};
pub use self::rolling::RollingPolicy;
pub use self::state::{
    CompactCoordinatorState, CompactCoordinatorStateSerializer, CompactorRequest, CompactorState,
    CompactorStateSerializer, FileSinkCommittable, FileSinkCommittableSerializer, FileWriterState,
    FileWriterStateSerializer, HeldCompaction, InProgressState,
};
pub use self::sweep::{sweep_at_start, sweep_orphans, PartKind, StartKind, StartSweep, SweepScope};
pub use self::writer::FileWriter;
use crate::format::{BulkWriterFactory, CompactInput, Decoded, RowFormat, SinkFormat};
use crate::fs::{io_error, FileSystem};

/// The sink's configuration shared by its writers.
pub(crate) struct SinkConfig<T> {
    pub(crate) fs: Arc<dyn FileSystem>,
    pub(crate) base_path: String,
    pub(crate) format: SinkFormat<T>,
    pub(crate) assigner: Arc<dyn BucketAssigner<T>>,
    pub(crate) rolling: RollingPolicy,
    pub(crate) output: OutputFileConfig,
    /// Part files are named hidden (`.` prefix) because a compactor reads them first.
    pub(crate) hidden_parts: bool,
    pub(crate) sweep_orphans: bool,
    /// Rows per record, for records that hold many (see [`FileSinkBuilder::rows_per_record`]).
    pub(crate) rows_per_record: Option<fn(&T) -> u64>,
}

enum Compaction {
    None,
    Enabled(FileCompactStrategy, FileCompactor),
    Disabled,
}

/// The file sink. Build it with [`FileSink::row`] or [`FileSink::bulk`].
pub struct FileSink<T> {
    cfg: Arc<SinkConfig<T>>,
    compaction: Option<Arc<CompactionContext>>,
}

impl<T> std::fmt::Debug for FileSink<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSink")
            .field("fs", &self.cfg.fs)
            .field("base_path", &self.cfg.base_path)
            .field("rolling", &self.cfg.rolling)
            .field("output", &self.cfg.output)
            .field("compaction", &self.compaction.is_some())
            .finish_non_exhaustive()
    }
}

/// Builds a [`FileSink`].
pub struct FileSinkBuilder<T> {
    fs: Arc<dyn FileSystem>,
    base_path: String,
    format: SinkFormat<T>,
    assigner: Arc<dyn BucketAssigner<T>>,
    rolling: RollingPolicy,
    output: OutputFileConfig,
    compaction: Compaction,
    sweep_orphans: bool,
    rows_per_record: Option<fn(&T) -> u64>,
}

impl<T: Send + 'static> FileSink<T> {
    /// A sink writing a row format (text, CSV, JSON lines) under `base_path`.
    pub fn row(
        fs: Arc<dyn FileSystem>,
        base_path: impl Into<String>,
        format: impl RowFormat<T>,
    ) -> FileSinkBuilder<T> {
        FileSinkBuilder::new(fs, &base_path.into(), SinkFormat::Row(Arc::new(format)))
    }

    /// A sink writing a bulk format (Parquet, ORC) under `base_path`.
    pub fn bulk(
        fs: Arc<dyn FileSystem>,
        base_path: impl Into<String>,
        format: impl BulkWriterFactory<T>,
    ) -> FileSinkBuilder<T> {
        FileSinkBuilder::new(fs, &base_path.into(), SinkFormat::Bulk(Arc::new(format)))
    }

    /// The base path.
    pub fn base_path(&self) -> &str {
        &self.cfg.base_path
    }

    /// The filesystem.
    pub fn filesystem(&self) -> &Arc<dyn FileSystem> {
        &self.cfg.fs
    }
}

impl<T: Send + 'static> FileSinkBuilder<T> {
    fn new(fs: Arc<dyn FileSystem>, base_path: &str, format: SinkFormat<T>) -> Self {
        let rolling = match format {
            SinkFormat::Row(_) => RollingPolicy::default_policy(),
            SinkFormat::Bulk(_) => RollingPolicy::on_checkpoint(),
        };
        FileSinkBuilder {
            fs,
            base_path: base_path.trim_end_matches('/').to_owned(),
            format,
            assigner: Arc::new(DateTimeBucketAssigner::default()),
            rolling,
            output: OutputFileConfig::new("part", ""),
            compaction: Compaction::None,
            sweep_orphans: true,
            rows_per_record: None,
        }
    }

    /// Sets the bucket assigner (default: [`DateTimeBucketAssigner`], hourly directories).
    pub fn bucket_assigner(mut self, assigner: impl BucketAssigner<T>) -> Self {
        self.assigner = Arc::new(assigner);
        self
    }

    /// For records that hold many rows (e.g. a columnar batch): the writer's records in and
    /// records sent count `rows(record)` per record instead of one, so a job's counts are the
    /// same whether it writes rows or batches of them.
    pub fn rows_per_record(mut self, rows: fn(&T) -> u64) -> Self {
        self.rows_per_record = Some(rows);
        self
    }

    /// Sets the rolling policy (bulk formats always roll at checkpoints as well).
    pub fn rolling_policy(mut self, policy: RollingPolicy) -> Self {
        self.rolling = policy;
        self
    }

    /// Sets the part file prefix and suffix.
    pub fn output_file_config(mut self, output: OutputFileConfig) -> Self {
        self.output = output;
        self
    }

    /// Sets the part file prefix (default `part`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.output.prefix = prefix.into();
        self
    }

    /// Sets the part file suffix, e.g. `.parquet` (default none).
    pub fn suffix(mut self, suffix: impl Into<String>) -> Self {
        self.output.suffix = suffix.into();
        self
    }

    /// Compacts small files (FLIP-191) with `strategy` and `compactor`.
    pub fn enable_compaction(
        mut self,
        strategy: FileCompactStrategy,
        compactor: FileCompactor,
    ) -> Self {
        self.compaction = Compaction::Enabled(strategy, compactor);
        self
    }

    /// Turns compaction off but keeps its stages as pass-through placeholders with the same
    /// uids, so a job restored from a savepoint taken with compaction enabled loses nothing.
    pub fn disable_compaction(mut self) -> Self {
        self.compaction = Compaction::Disabled;
        self
    }

    /// Whether restored writers remove orphaned in-progress files of failed attempts (default
    /// true; turn off only if several sinks share the prefix in one directory).
    pub fn sweep_orphans(mut self, sweep: bool) -> Self {
        self.sweep_orphans = sweep;
        self
    }

    /// The sink.
    pub fn build(self) -> Result<FileSink<T>> {
        let mut rolling = self.rolling;
        if matches!(self.format, SinkFormat::Bulk(_)) {
            rolling.on_checkpoint = true;
        }
        if self.output.prefix.is_empty() || self.output.prefix.contains('/') {
            return Err(ConnectorError::Contract(format!(
                "the part file prefix `{}` must be non-empty and contain no `/`",
                self.output.prefix
            )));
        }
        let (hidden_parts, compaction) = match self.compaction {
            Compaction::None => (false, None),
            Compaction::Enabled(strategy, compactor) => {
                let compact: CompactFn = match (compactor, &self.format) {
                    (FileCompactor::Concat, _) => compaction::concat(),
                    (FileCompactor::RecordWise, SinkFormat::Bulk(f)) => {
                        let f = Arc::clone(f);
                        Arc::new(
                            move |inputs: &[CompactInput], out: &mut (dyn Write + Send)| {
                                f.compact_into(inputs, out)
                            },
                        )
                    }
                    (FileCompactor::RecordWise, SinkFormat::Row(f)) => {
                        let f = Arc::clone(f);
                        Arc::new(
                            move |inputs: &[CompactInput], out: &mut (dyn Write + Send)| {
                                let inputs = inputs
                                    .iter()
                                    .map(CompactInput::to_bytes)
                                    .collect::<Result<Vec<_>>>()?;
                                let recoded = recode_rows(f.as_ref(), &inputs)?;
                                out.write_all(&recoded)
                                    .map_err(|e| io_error("writing a compacted file", e))
                            },
                        )
                    }
                };
                (true, Some((strategy, Some(compact))))
            }
            Compaction::Disabled => (
                false,
                Some((
                    FileCompactStrategy {
                        size_threshold: None,
                        every_n_checkpoints: Some(1),
                        threads: 1,
                        parallelism: 1,
                    },
                    None,
                )),
            ),
        };
        let compaction = compaction.map(|(strategy, compact)| {
            Arc::new(CompactionContext {
                fs: Arc::clone(&self.fs),
                base_path: self.base_path.clone(),
                output: self.output.clone(),
                strategy,
                compact,
                sweep_orphans: self.sweep_orphans,
            })
        });
        Ok(FileSink {
            cfg: Arc::new(SinkConfig {
                fs: self.fs,
                base_path: self.base_path,
                format: self.format,
                assigner: self.assigner,
                rolling,
                output: self.output,
                hidden_parts,
                sweep_orphans: self.sweep_orphans,
                rows_per_record: self.rows_per_record,
            }),
            compaction,
        })
    }
}

/// Record-wise compaction of a row format: decode every input, encode into one file.
fn recode_rows<T: 'static>(format: &dyn RowFormat<T>, inputs: &[bytes::Bytes]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut encoder = format.create_encoder(true)?;
    encoder.begin(&mut out)?;
    for input in inputs {
        let mut decoder = format.create_decoder(true)?;
        let mut at = 0;
        loop {
            let rest = input.get(at..).unwrap_or_default();
            match decoder.decode(rest, true)? {
                Decoded::Record(r, n) => {
                    encoder.encode(&r, &mut out)?;
                    at += n; // 0: more records of the same message follow
                }
                Decoded::Skip(n) => at += n.max(1),
                Decoded::NeedMore => break,
            }
        }
    }
    Ok(out)
}

impl<T: Send + 'static> Sink<T> for FileSink<T> {
    type Writer = FileWriter<T>;

    fn create_writer(&self, ctx: &dyn InitContext) -> Result<FileWriter<T>> {
        Ok(FileWriter::new(Arc::clone(&self.cfg), ctx, Vec::new()))
    }

    fn capabilities(self: Arc<Self>) -> SinkCapabilities<T, FileWriter<T>> {
        let caps = SinkCapabilities::none().with_writer_state(Arc::clone(&self));
        if self.compaction.is_some() {
            caps.with_pre_commit_topology(self)
        } else {
            caps.with_committer(self)
        }
    }
}

impl<T: Send + 'static> SupportsWriterState<T> for FileSink<T> {
    fn restore_writer(
        &self,
        ctx: &dyn InitContext,
        states: Vec<FileWriterState>,
    ) -> Result<FileWriter<T>> {
        Ok(FileWriter::new(Arc::clone(&self.cfg), ctx, states))
    }

    fn writer_state_serializer(&self) -> Arc<dyn VersionedSerializer<FileWriterState>> {
        Arc::new(FileWriterStateSerializer)
    }
}

impl<T: Send + 'static> SupportsCommitter<T> for FileSink<T> {
    type Committable = FileSinkCommittable;
    type Committer = FileCommitter;

    fn create_committer(&self, _ctx: &dyn InitContext) -> Result<FileCommitter> {
        Ok(FileCommitter::new(Arc::clone(&self.cfg.fs)))
    }

    fn committable_serializer(&self) -> Arc<dyn VersionedSerializer<FileSinkCommittable>> {
        Arc::new(FileSinkCommittableSerializer)
    }
}

impl<T: Send + 'static> SupportsPreCommitTopology<T> for FileSink<T> {
    type WriteResult = FileSinkCommittable;

    fn pre_commit_topology(&self) -> CommittableTopology<FileSinkCommittable, FileSinkCommittable> {
        let ctx = self.compaction.clone().unwrap_or_else(|| {
            Arc::new(CompactionContext {
                fs: Arc::clone(&self.cfg.fs),
                base_path: self.cfg.base_path.clone(),
                output: self.cfg.output.clone(),
                strategy: FileCompactStrategy {
                    size_threshold: None,
                    every_n_checkpoints: Some(1),
                    threads: 1,
                    parallelism: 1,
                },
                compact: None,
                sweep_orphans: self.cfg.sweep_orphans,
            })
        });
        compaction::topology(&ctx)
    }
}

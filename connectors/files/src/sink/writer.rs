//! The file writer: routes records to buckets, writes each bucket's in-progress part file, rolls
//! part files into pending ones, and hands them to the committer at checkpoints.

use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use futures::FutureExt;
use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::metrics::{Counter, NUM_BYTES_SEND, NUM_RECORDS_IN, NUM_RECORDS_SEND};
use weir_connector_api::sink::{
    CommittingSinkWriter, FlushMode, InitContext, SinkWriter, StatefulSinkWriter, WriteContext,
};

use super::bucket::BucketContext;
use super::naming::{label_uuid, part_name, Label};
use super::state::{FileSinkCommittable, FileWriterState, InProgressState};
use super::sweep::{sweep_at_start, PartKind, StartKind, StartSweep};
use super::{sweep_orphans, SinkConfig, SweepScope};
use crate::format::{BulkWriter, RecordEncoder, SinkFormat};
use crate::fs::join;
use crate::fs::{RecoverableStream, RecoverableWriter};

/// Bytes encoded in memory before they are handed to the part file's stream.
const CHUNK: usize = 64 * 1024;
/// Records between two refreshes of the cached clock and checks of time-based rolling.
const CLOCK_EVERY: u32 = 256;

pub(crate) fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

enum Encoder<T> {
    Row(Box<dyn RecordEncoder<T>>),
    Bulk(Box<dyn BulkWriter<T>>),
}

struct Part<T> {
    stream: Box<dyn RecoverableStream>,
    encoder: Encoder<T>,
    buf: Vec<u8>,
    opened_at: i64,
    last_write: i64,
}

impl<T> Part<T> {
    fn size(&self) -> u64 {
        let buffered = match &self.encoder {
            Encoder::Row(_) => 0,
            Encoder::Bulk(w) => w.buffered_bytes(),
        };
        self.stream.len() + self.buf.len() as u64 + buffered
    }

    fn drain_buf(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            self.stream.write(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Completes the encoding (bulk footers) and returns the stream to close.
    fn finish(mut self) -> Result<Box<dyn RecoverableStream>> {
        if let Encoder::Bulk(w) = self.encoder {
            w.finish(&mut self.buf)?;
        }
        if !self.buf.is_empty() {
            self.stream.write(&self.buf)?;
        }
        Ok(self.stream)
    }
}

/// A restored in-progress file, resumed before the first write.
pub(crate) struct Resumed {
    bucket_id: String,
    stream: Box<dyn RecoverableStream>,
    created_at: i64,
    /// A second in-progress file of the same bucket (after scaling down): closed at once.
    extra: bool,
}

type InitFuture = BoxFuture<'static, Result<Vec<Resumed>>>;

/// The writer of one sink subtask. See the [module docs](self).
pub struct FileWriter<T> {
    cfg: Arc<SinkConfig<T>>,
    rw: Arc<dyn RecoverableWriter>,
    subtask: u32,
    parallelism: u32,
    attempt: u32,
    /// The restored checkpoint (0 after a restart without one); `None` on a fresh start.
    sweep_above: Option<u64>,
    /// The input ended (the final sweep at close is due).
    ended: bool,
    epoch: u64,
    uuid: uuid::Uuid,
    counter: u64,
    buckets: HashMap<String, Part<T>>,
    closing: Vec<(String, Box<dyn RecoverableStream>)>,
    pending: Vec<FileSinkCommittable>,
    snapshot: Option<Vec<FileWriterState>>,
    init: Option<InitFuture>,
    clock: i64,
    ticks: u32,
    records_out: Counter,
    /// The writer operator's `numRecordsIn`, which the runtime counts per record: topped up
    /// to rows for records of many rows.
    records_in: Counter,
    bytes_out: Counter,
}

impl<T: Send + 'static> FileWriter<T> {
    pub(crate) fn new(
        cfg: Arc<SinkConfig<T>>,
        ctx: &dyn InitContext,
        states: Vec<FileWriterState>,
    ) -> Self {
        let rw = cfg.fs.recoverable_writer();
        let subtask = ctx.subtask_index() as u32;
        let parallelism = ctx.parallelism().max(1) as u32;
        let restored = ctx.restored_checkpoint_id().map(|c| c.0);
        // Orphans of failed attempts: files of epochs above the restored checkpoint.
        let sweep_above = match restored {
            Some(n) => Some(n),
            None if ctx.attempt() > 0 => Some(0),
            None => None,
        };
        let epoch = restored.unwrap_or(0).saturating_add(1);
        let attempt = ctx.attempt();
        let counter = states.iter().map(|s| s.counter).max().unwrap_or(0);
        let mut to_resume = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for state in states {
            if let Some(p) = state.in_progress {
                let extra = !seen.insert(state.bucket_id.clone());
                to_resume.push((state.bucket_id, p, extra));
            }
        }
        let init = {
            let rw = Arc::clone(&rw);
            let fs = Arc::clone(&cfg.fs);
            let fs_base = cfg.base_path.clone();
            let output = cfg.output.clone();
            let sweep = cfg.sweep_orphans;
            async move {
                if sweep {
                    let start = sweep_above.map_or(StartKind::Fresh, StartKind::Restored);
                    let scope = StartSweep {
                        parts: PartKind::Written,
                        subtask,
                        parallelism,
                        start,
                    };
                    sweep_at_start(&fs, &fs_base, &output, scope).await?;
                }
                let mut resumed = Vec::with_capacity(to_resume.len());
                for (bucket_id, p, extra) in to_resume {
                    let stream = rw.recover(&p.file).await?;
                    resumed.push(Resumed {
                        bucket_id,
                        stream,
                        created_at: p.created_at_millis,
                        extra,
                    });
                }
                Ok(resumed)
            }
            .boxed()
        };
        let metrics = ctx.metric_group();
        FileWriter {
            records_out: metrics.counter(NUM_RECORDS_SEND),
            records_in: metrics.counter(NUM_RECORDS_IN),
            bytes_out: metrics.counter(NUM_BYTES_SEND),
            cfg,
            rw,
            subtask,
            parallelism,
            attempt,
            sweep_above,
            ended: false,
            epoch,
            uuid: label_uuid(Label {
                subtask,
                attempt,
                epoch,
            }),
            counter,
            buckets: HashMap::new(),
            closing: Vec::new(),
            pending: Vec::new(),
            snapshot: None,
            init: Some(init),
            clock: now_millis(),
            ticks: 0,
        }
    }

    fn install(&mut self, resumed: Vec<Resumed>) -> Result<()> {
        for r in resumed {
            if r.extra || self.buckets.contains_key(&r.bucket_id) {
                self.closing.push((r.bucket_id, r.stream));
                continue;
            }
            let encoder = match &self.cfg.format {
                SinkFormat::Row(f) => Encoder::Row(f.create_encoder(false)?),
                SinkFormat::Bulk(_) => {
                    // Bulk files are never in-progress at a checkpoint; close defensively.
                    self.closing.push((r.bucket_id, r.stream));
                    continue;
                }
            };
            self.buckets.insert(
                r.bucket_id,
                Part {
                    stream: r.stream,
                    encoder,
                    buf: Vec::new(),
                    opened_at: r.created_at,
                    last_write: self.clock,
                },
            );
        }
        Ok(())
    }

    async fn ensure_init(&mut self) -> Result<()> {
        if let Some(init) = self.init.take() {
            let resumed = init.await?;
            self.install(resumed)?;
        }
        Ok(())
    }

    fn open_part(&mut self, bucket_id: &str) -> Result<Part<T>> {
        let name = part_name(&self.cfg.output, &self.uuid, self.counter);
        self.counter += 1;
        let name = if self.cfg.hidden_parts {
            format!(".{name}")
        } else {
            name
        };
        let dir = join(&self.cfg.base_path, bucket_id);
        let stream = self.rw.open(&join(&dir, &name))?;
        let mut buf = Vec::with_capacity(CHUNK);
        let encoder = match &self.cfg.format {
            SinkFormat::Row(f) => {
                let mut e = f.create_encoder(true)?;
                e.begin(&mut buf)?;
                Encoder::Row(e)
            }
            SinkFormat::Bulk(f) => Encoder::Bulk(f.create_writer()?),
        };
        Ok(Part {
            stream,
            encoder,
            buf,
            opened_at: self.clock,
            last_write: self.clock,
        })
    }

    fn roll(&mut self, bucket_id: &str) -> Result<()> {
        if let Some(part) = self.buckets.remove(bucket_id) {
            let stream = part.finish()?;
            self.closing.push((bucket_id.to_owned(), stream));
        }
        Ok(())
    }

    fn roll_timed_out(&mut self) -> Result<()> {
        let now = self.clock;
        let policy = self.cfg.rolling;
        if policy.rollover_interval.is_none() && policy.inactivity_interval.is_none() {
            return Ok(());
        }
        let due: Vec<String> = self
            .buckets
            .iter()
            .filter(|(_, p)| {
                let open = Duration::from_millis(now.saturating_sub(p.opened_at).max(0) as u64);
                let idle = Duration::from_millis(now.saturating_sub(p.last_write).max(0) as u64);
                policy.should_roll_on_time(open, idle)
            })
            .map(|(b, _)| b.clone())
            .collect();
        for b in due {
            self.roll(&b)?;
        }
        Ok(())
    }

    async fn close_rolled(&mut self) -> Result<()> {
        for (bucket_id, stream) in std::mem::take(&mut self.closing) {
            let file = stream.close_for_commit().await?;
            if file.len == 0 {
                // Nothing to publish, and nothing any checkpoint references may be empty: the
                // start-up sweep takes empty in-progress files for leftovers of kills.
                self.rw.discard(&file).await?;
                continue;
            }
            tracing::debug!(subtask = self.subtask, target = %file.target, "part file pending");
            self.bytes_out.add(file.len);
            self.pending
                .push(FileSinkCommittable::Pending { bucket_id, file });
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl<T: Send + 'static> SinkWriter<T> for FileWriter<T> {
    fn write(&mut self, element: T, ctx: &WriteContext) -> Result<()> {
        if self.init.is_some() {
            return Err(ConnectorError::Contract(
                "FileWriter::write was called before poll_ready reported the writer ready".into(),
            ));
        }
        self.ticks += 1;
        if self.ticks >= CLOCK_EVERY {
            self.ticks = 0;
            self.clock = now_millis();
            self.roll_timed_out()?;
        }
        let bctx = BucketContext {
            processing_time_millis: self.clock,
            timestamp: ctx.timestamp,
            watermark: ctx.current_watermark.0,
        };
        let bucket_id = self.cfg.assigner.bucket_id(&element, &bctx);
        let rows = self.cfg.rows_per_record.map_or(1, |rows| rows(&element));
        if !self.buckets.contains_key(&bucket_id) {
            let part = self.open_part(&bucket_id)?;
            self.buckets.insert(bucket_id.clone(), part);
        }
        let roll = {
            let Some(part) = self.buckets.get_mut(&bucket_id) else {
                return Err(ConnectorError::Contract("bucket vanished".into()));
            };
            match &mut part.encoder {
                Encoder::Row(e) => e.encode(&element, &mut part.buf)?,
                Encoder::Bulk(w) => w.add(element, &mut part.buf)?,
            }
            part.last_write = self.clock;
            // Row formats hand bytes over in chunks; bulk formats as soon as a row group or
            // stripe is encoded (their buffers keep their capacity, no regrowth per group).
            if part.buf.len() >= CHUNK
                || (!part.buf.is_empty() && matches!(part.encoder, Encoder::Bulk(_)))
            {
                part.drain_buf()?;
            }
            // Only measure when a size limit is set (a bulk writer's estimate is not free).
            self.cfg.rolling.part_size.is_some()
                && self.cfg.rolling.should_roll_on_size(part.size())
        };
        self.records_out.add(rows);
        if rows > 1 {
            // The runtime counted one.
            self.records_in.add(rows - 1);
        }
        if roll {
            self.roll(&bucket_id)?;
        }
        Ok(())
    }

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if let Some(init) = self.init.as_mut() {
            match init.poll_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => {
                    self.init = None;
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(Ok(resumed)) => {
                    self.init = None;
                    if let Err(e) = self.install(resumed) {
                        return Poll::Ready(Err(e));
                    }
                }
            }
        }
        for part in self.buckets.values_mut() {
            match part.stream.poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                other => return other,
            }
        }
        for (_, stream) in &mut self.closing {
            match stream.poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                other => return other,
            }
        }
        Poll::Ready(Ok(()))
    }

    async fn flush(&mut self, mode: FlushMode) -> Result<()> {
        self.ensure_init().await?;
        self.clock = now_millis();
        self.ended |= mode == FlushMode::EndOfInput;
        let roll_all = mode == FlushMode::EndOfInput
            || self.cfg.rolling.on_checkpoint
            || matches!(self.cfg.format, SinkFormat::Bulk(_));
        if roll_all {
            let buckets: Vec<String> = self.buckets.keys().cloned().collect();
            for b in buckets {
                self.roll(&b)?;
            }
        } else {
            self.roll_timed_out()?;
        }
        self.close_rolled().await?;
        // A part file whose records encoded to no bytes is not kept in the state (see
        // `close_rolled`): it is dropped, losing nothing.
        let empty: Vec<String> = self
            .buckets
            .iter()
            .filter(|(_, part)| part.size() == 0)
            .map(|(b, _)| b.clone())
            .collect();
        for b in empty {
            if let Some(part) = self.buckets.remove(&b) {
                part.stream.abort().await?;
            }
        }
        let mut states = Vec::with_capacity(self.buckets.len() + 1);
        for (bucket_id, part) in &mut self.buckets {
            part.drain_buf()?;
            let file = part.stream.persist().await?;
            states.push(FileWriterState {
                bucket_id: bucket_id.clone(),
                in_progress: Some(InProgressState {
                    file,
                    created_at_millis: part.opened_at,
                }),
                counter: self.counter,
            });
        }
        self.snapshot = Some(states);
        Ok(())
    }

    async fn close(&mut self) -> Result<()> {
        // Open part files are referenced by the last checkpoint (or will be swept after a
        // restore). At the end of a restarted job, once more remove what earlier attempts left
        // after the restore's sweep (uploads a failed attempt's requests created late).
        if let (true, true, Some(n)) = (self.ended, self.cfg.sweep_orphans, self.sweep_above) {
            if self.attempt > 0 {
                let scope = SweepScope {
                    compacted: false,
                    subtask: self.subtask,
                    parallelism: self.parallelism,
                    above: n,
                    attempts_below: Some(self.attempt),
                };
                sweep_orphans(&self.cfg.fs, &self.cfg.base_path, &self.cfg.output, scope).await?;
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl<T: Send + 'static> CommittingSinkWriter<T> for FileWriter<T> {
    type Committable = FileSinkCommittable;

    async fn prepare_commit(&mut self) -> Result<Vec<FileSinkCommittable>> {
        self.ensure_init().await?;
        self.close_rolled().await?;
        Ok(std::mem::take(&mut self.pending))
    }
}

impl<T: Send + 'static> StatefulSinkWriter<T> for FileWriter<T> {
    type State = FileWriterState;

    fn snapshot_state(&mut self, checkpoint_id: CheckpointId) -> Result<Vec<FileWriterState>> {
        let mut states = self.snapshot.take().unwrap_or_default();
        if states.is_empty() {
            states.push(FileWriterState {
                bucket_id: String::new(),
                in_progress: None,
                counter: self.counter,
            });
        }
        for s in &mut states {
            s.counter = self.counter;
        }
        tracing::debug!(
            checkpoint = %checkpoint_id,
            subtask = self.subtask,
            in_progress = ?states.iter().filter_map(|s| s.in_progress.as_ref().map(|p| p.file.target.as_str())).collect::<Vec<_>>(),
            "writer snapshot"
        );
        if !checkpoint_id.is_end_of_input() {
            self.epoch = checkpoint_id.0.saturating_add(1);
            self.uuid = label_uuid(Label {
                subtask: self.subtask,
                attempt: self.attempt,
                epoch: self.epoch,
            });
        }
        Ok(states)
    }
}

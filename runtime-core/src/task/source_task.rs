//! The source task: drives a reader, hands its records to the chain in batches, injects
//! barriers, and follows FLIP-147 at end of input.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::time::Instant;
use weir_connector_api::checkpoint::VersionedBytes;
use weir_connector_api::error::{ConnectorError, Result as ConnectorResult};
use weir_connector_api::metrics::{
    Counter, Gauge, MetricGroup, CURRENT_EMIT_EVENT_TIME_LAG, SOURCE_IDLE_TIME, WATERMARK_LAG,
};
use weir_connector_api::source::{
    InputStatus, Source, SourceEvent, SourceReader, SourceReaderContext, SourceReaderExt,
};
use weir_connector_api::state::VersionedSerializer;
use weir_connector_api::watermark::{Watermark, WatermarkAlignment};

use super::lifecycle::{Flow, Lifecycle};
use super::{TaskCommand, TaskControl, TaskKey};
use crate::config::UnalignedSplits;
use crate::element::{Barrier, Event, Notification};
use crate::error::{Result, RuntimeError};
use crate::load::{self, BarrierTiming, TaskLoad, Wait};
use crate::operator::{BoxOutput, TaskCx};
use crate::source::coordinator::{CoordinatorCommand, CoordinatorHandle};
use crate::source::output::RuntimeReaderOutput;

/// The reader's view of the runtime.
pub(crate) struct ReaderContext {
    pub(crate) subtask: usize,
    pub(crate) parallelism: usize,
    pub(crate) metrics: Arc<dyn MetricGroup>,
    pub(crate) coordinator: CoordinatorHandle,
}

impl SourceReaderContext for ReaderContext {
    fn subtask_index(&self) -> usize {
        self.subtask
    }
    fn parallelism(&self) -> usize {
        self.parallelism
    }
    fn metric_group(&self) -> Arc<dyn MetricGroup> {
        Arc::clone(&self.metrics)
    }
    fn send_split_request(&self) -> ConnectorResult<()> {
        if self.coordinator.send(CoordinatorCommand::SplitRequest {
            subtask: self.subtask,
        }) {
            Ok(())
        } else {
            Err(ConnectorError::Closed("the source coordinator".into()))
        }
    }
    fn send_source_event(&self, event: SourceEvent) -> ConnectorResult<()> {
        if self.coordinator.send(CoordinatorCommand::SourceEvent {
            subtask: self.subtask,
            event,
        }) {
            Ok(())
        } else {
            Err(ConnectorError::Closed("the source coordinator".into()))
        }
    }
    fn spawn(&self, _name: &str, task: BoxFuture<'static, ()>) {
        tokio::spawn(task);
    }
}

/// What ended a wait of the source task.
enum Waited {
    /// A command (or `None`: the job master is gone).
    Command(Option<TaskCommand>),
    /// A chained operator did its own work (see `Output::poll_progress`).
    Progress(Result<()>),
    /// The reader has data, or the deadline passed.
    Woken,
}

/// Whether a wait ends when the reader has data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wake {
    OnData,
    NotOnData,
}

/// Tunables of a source task.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SourceTaskOptions {
    pub(crate) batch_size: usize,
    pub(crate) watermark_interval: Duration,
}

/// A running source subtask.
pub(crate) struct SourceTask<S: Source> {
    pub(crate) uid: String,
    pub(crate) key: TaskKey,
    pub(crate) reader: Option<S::Reader>,
    pub(crate) restored_splits: Vec<S::Split>,
    pub(crate) output: RuntimeReaderOutput<S::Output>,
    pub(crate) chain: BoxOutput<S::Output>,
    pub(crate) control: mpsc::UnboundedReceiver<TaskCommand>,
    pub(crate) control_tx: TaskControl,
    pub(crate) life: Lifecycle,
    pub(crate) coordinator: CoordinatorHandle,
    pub(crate) cx: TaskCx,
    pub(crate) split_serializer: Arc<dyn VersionedSerializer<S::Split>>,
    pub(crate) options: SourceTaskOptions,
    pub(crate) records_out: Counter,
    pub(crate) watermark_gauge: weir_connector_api::metrics::Gauge,
    pub(crate) event_time: EventTime,
}

/// Watermark alignment and event-time metrics of a source subtask.
pub(crate) struct EventTime {
    pub(crate) alignment: Option<WatermarkAlignment>,
    pub(crate) unaligned: UnalignedSplits,
    /// The highest watermark the coordinator allows for now.
    pub(crate) max_allowed: Watermark,
    pub(crate) next_report: Instant,
    pub(crate) idle_since: Option<Instant>,
    pub(crate) watermark_lag: Gauge,
    pub(crate) emit_lag: Gauge,
    pub(crate) idle_time: Gauge,
    pub(crate) paused_ms: Counter,
    /// The task's time and records (see `load`), set when the task starts.
    pub(crate) load: Arc<TaskLoad>,
}

impl EventTime {
    pub(crate) fn new(
        alignment: Option<WatermarkAlignment>,
        unaligned: UnalignedSplits,
        metrics: &dyn MetricGroup,
    ) -> Self {
        EventTime {
            alignment,
            unaligned,
            max_allowed: Watermark::MAX,
            next_report: Instant::now(),
            idle_since: None,
            watermark_lag: metrics.gauge(WATERMARK_LAG),
            emit_lag: metrics.gauge(CURRENT_EMIT_EVENT_TIME_LAG),
            idle_time: metrics.gauge(SOURCE_IDLE_TIME),
            paused_ms: metrics.counter("watermarkAlignmentPausedTimeMs"),
            load: Arc::default(),
        }
    }
}

fn epoch_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl<S: Source> SourceTask<S> {
    pub(crate) async fn run(mut self) {
        let result = self.run_inner().await;
        self.life.report(result);
    }

    fn fail(&self, e: ConnectorError) -> RuntimeError {
        RuntimeError::connector(&self.uid, self.key.subtask, e)
    }

    async fn run_inner(&mut self) -> Result<()> {
        if let Some(load) = load::current() {
            self.event_time.load = load;
        }
        self.chain.open(&mut self.cx).await?;
        match self.reader.as_mut() {
            Some(reader) => {
                // Register before `start`: a reader's first split request must find it registered.
                self.coordinator.send(CoordinatorCommand::ReaderRegistered {
                    subtask: self.key.subtask,
                    control: self.control_tx.clone(),
                });
                if self.event_time.alignment.is_some()
                    && self.event_time.unaligned == UnalignedSplits::Fail
                    && reader.as_pausable().is_none()
                {
                    return Err(RuntimeError::InvalidJob(vec![format!(
                        "source {}: its watermark strategy aligns watermarks, but its reader cannot \
                         pause splits (FLIP-217), so split-level alignment is impossible; let the \
                         reader declare the capability, or accept task-level alignment with \
                         pipeline.watermark-alignment.allow-unaligned-source-splits = true \
                         (JobConfig::unaligned_source_splits)",
                        self.uid
                    )]));
                }
                let restored = std::mem::take(&mut self.restored_splits);
                let r = reader.add_splits(restored).and_then(|()| reader.start());
                r.map_err(|e| self.fail(e))?;
            }
            None => self.finish_input().await?,
        }
        let mut next_tick = Instant::now() + self.options.watermark_interval;
        let mut polls: u32 = 0;
        loop {
            // Commands first: barriers, splits and notifications go between two polls.
            loop {
                match self.control.try_recv() {
                    Ok(command) => {
                        if let Flow::Exit = self.handle(command).await? {
                            return Ok(());
                        }
                    }
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => return Ok(()),
                }
            }
            if !self.life.is_running() {
                if let Flow::Exit = self.wait(None, Wake::NotOnData).await? {
                    return Ok(());
                }
                continue;
            }
            let now = Instant::now();
            if now >= next_tick {
                next_tick = now + self.options.watermark_interval;
                self.on_tick(now).await?;
            }
            if self.event_time.alignment.is_some() {
                // Aligned sources refresh their watermark at every poll, so a burst cannot
                // overshoot the allowed maximum by more than one poll's records.
                self.output.on_periodic_emit(now);
            }
            if self.blocked_by_alignment() {
                // Task-level alignment: ahead of the group, so stop polling until allowed.
                self.push_buffer().await?;
                self.chain.flush_buffers().await?;
                let flow = self.wait(Some(next_tick), Wake::NotOnData).await?;
                let paused = now.elapsed().as_millis() as u64;
                self.event_time.paused_ms.add(paused);
                self.event_time.load.alignment_paused(paused);
                if let Flow::Exit = flow {
                    return Ok(());
                }
                continue;
            }
            let Some(reader) = self.reader.as_mut() else {
                return Err(RuntimeError::Lost("the source reader".into()));
            };
            let status = match reader.poll_next(&mut self.output) {
                Ok(status) => status,
                Err(e) => return Err(self.fail(e)),
            };
            if self.output.buffer.len() >= self.options.batch_size {
                self.push_buffer().await?;
            }
            match status {
                InputStatus::MoreAvailable => {
                    polls = polls.wrapping_add(1);
                    if polls % 32 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                InputStatus::NothingAvailable => {
                    self.push_buffer().await?;
                    self.chain.flush_buffers().await?;
                    if let Flow::Exit = self.wait(Some(next_tick), Wake::OnData).await? {
                        return Ok(());
                    }
                }
                InputStatus::EndOfInput => self.finish_input().await?,
            }
        }
    }

    /// Waits for a command (and handles it), for the reader to have data (with
    /// [`Wake::OnData`]), or for `deadline`.
    async fn wait(&mut self, deadline: Option<Instant>, wake: Wake) -> Result<Flow> {
        let wait = self.event_time.load.begin(Wait::Input);
        let subtask = self.cx.subtask;
        let waited = {
            let reader = self.reader.as_mut().filter(|_| wake == Wake::OnData);
            let chain = &mut self.chain;
            tokio::select! {
                biased;
                command = self.control.recv() => Waited::Command(command),
                // An operator's own work while the source waits (a chained sink writer's
                // timers and requests in flight); an error fails the task.
                progress = std::future::poll_fn(|c| chain.poll_progress(c, subtask)) => {
                    Waited::Progress(progress)
                }
                () = async {
                    match reader {
                        Some(reader) => reader.available().await,
                        None => std::future::pending().await,
                    }
                } => Waited::Woken,
                () = async {
                    match deadline {
                        Some(deadline) => tokio::time::sleep_until(deadline).await,
                        None => std::future::pending().await,
                    }
                } => Waited::Woken,
            }
        };
        self.event_time.load.end(wait);
        match waited {
            Waited::Command(Some(command)) => self.handle(command).await,
            Waited::Command(None) => Ok(Flow::Exit), // the job master is gone
            Waited::Progress(result) => result.map(|()| Flow::Continue),
            Waited::Woken => Ok(Flow::Continue),
        }
    }

    /// Periodic work: watermarks and idleness, the linger flush, alignment reports, metrics.
    async fn on_tick(&mut self, now: Instant) -> Result<()> {
        self.output.on_periodic_emit(now);
        self.push_buffer().await?;
        self.chain.flush_buffers().await?;
        let et = &mut self.event_time;
        let wall = epoch_millis();
        let watermark = self.output.current_watermark();
        if watermark > Watermark::MIN && watermark < Watermark::MAX {
            et.watermark_lag.set(wall.saturating_sub(watermark.0));
        }
        if self.output.max_timestamp() > i64::MIN {
            et.emit_lag
                .set(wall.saturating_sub(self.output.max_timestamp()));
        }
        if self.output.is_idle() {
            let since = *et.idle_since.get_or_insert(now);
            et.idle_time
                .set(now.duration_since(since).as_millis() as i64);
        } else {
            et.idle_since = None;
            et.idle_time.set(0);
        }
        if let Some(interval) = et
            .alignment
            .as_ref()
            .map(WatermarkAlignment::update_interval)
        {
            if now >= et.next_report {
                et.next_report = now + interval;
                self.report_watermark(false);
            }
        }
        Ok(())
    }

    /// Reports this reader's watermark for alignment: `MAX` when idle or finished (so it does
    /// not hold the group back), nothing before its first watermark.
    fn report_watermark(&self, finished: bool) {
        if self.event_time.alignment.is_none() {
            return;
        }
        let watermark = if finished || self.output.is_idle() {
            Watermark::MAX
        } else {
            self.output.current_watermark()
        };
        if watermark > Watermark::MIN {
            self.coordinator.send(CoordinatorCommand::ReportWatermark {
                subtask: self.key.subtask,
                watermark,
            });
        }
    }

    fn blocked_by_alignment(&self) -> bool {
        self.event_time.alignment.is_some()
            && self.output.current_watermark() > self.event_time.max_allowed
    }

    /// Applies a new allowed maximum: pauses splits ahead of it and resumes the others
    /// (split-level alignment), when the reader can.
    fn align(&mut self, max_allowed: Watermark) -> Result<()> {
        self.event_time.max_allowed = max_allowed;
        let Some(reader) = self.reader.as_mut() else {
            return Ok(());
        };
        let Some(pausable) = reader.as_pausable() else {
            return Ok(()); // task-level alignment only
        };
        let (pause, resume) = self.output.align_splits(max_allowed, Instant::now());
        if pause.is_empty() && resume.is_empty() {
            return Ok(());
        }
        self.event_time
            .load
            .paused_splits(self.output.paused_splits());
        pausable
            .pause_or_resume_splits(&pause, &resume)
            .map_err(|e| RuntimeError::connector(&self.uid, self.key.subtask, e))
    }

    /// Hands buffered records, then queued watermark events, to the chain.
    async fn push_buffer(&mut self) -> Result<()> {
        if !self.output.buffer.is_empty() {
            self.records_out.add(self.output.buffer.len() as u64);
            self.event_time.load.records_in(self.output.buffer.len());
            match self.output.batch() {
                (records, None) => self.chain.push(records, &mut self.cx).await?,
                (records, Some(timestamps)) => {
                    self.chain
                        .push_timestamped(records, timestamps, &mut self.cx)
                        .await?;
                    timestamps.clear();
                }
            }
            self.output.buffer.clear();
        }
        for event in self.output.take_events() {
            if let Event::Watermark(w) = event {
                self.watermark_gauge.set(w.0);
                self.event_time.load.watermark(w.0);
            }
            self.chain.event(event, &mut self.cx).await?;
        }
        Ok(())
    }

    /// FLIP-147: the input ended (or was drained): emit the max watermark and end of data.
    async fn finish_input(&mut self) -> Result<()> {
        self.push_buffer().await?;
        if self.output.current_watermark() < Watermark::MAX {
            self.watermark_gauge.set(i64::MAX);
            self.event_time.load.watermark(i64::MAX);
            self.chain
                .event(Event::Watermark(Watermark::MAX), &mut self.cx)
                .await?;
        }
        self.chain.event(Event::EndOfData, &mut self.cx).await?;
        self.life.end_input();
        self.report_watermark(true);
        Ok(())
    }

    async fn snapshot(&mut self, barrier: Barrier) -> Result<()> {
        let timing = BarrierTiming::now();
        let id = barrier.checkpoint_id;
        let running = self.life.is_running();
        if !self.life.begin_snapshot(id) {
            return Ok(());
        }
        if running {
            self.push_buffer().await?;
            let Some(reader) = self.reader.as_mut() else {
                return Err(RuntimeError::Lost("the source reader".into()));
            };
            let splits = reader.snapshot_state(id).map_err(|e| self.fail(e))?;
            let version = self.split_serializer.version();
            let mut values = Vec::with_capacity(splits.len());
            for split in &splits {
                let bytes = self
                    .split_serializer
                    .serialize(split)
                    .map_err(|e| self.fail(e.into()))?;
                values.push(VersionedBytes { version, bytes });
            }
            self.cx.add_state(&self.uid, "splits", values);
            self.cx.touch(&self.uid, false);
        } else {
            self.cx.touch(&self.uid, true);
        }
        self.chain
            .event(Event::Barrier(barrier), &mut self.cx)
            .await?;
        self.life.ack(id, &mut self.cx, timing);
        Ok(())
    }

    async fn close(&mut self) -> Result<()> {
        self.chain.close().await?;
        if let Some(reader) = self.reader.as_mut() {
            reader.close().await.map_err(|e| self.fail(e))?;
        }
        Ok(())
    }

    async fn handle(&mut self, command: TaskCommand) -> Result<Flow> {
        match command {
            TaskCommand::TriggerBarrier(barrier) => self.snapshot(barrier).await?,
            TaskCommand::Notify(n) => {
                self.chain.notify(n, &mut self.cx).await?;
                // Finished readers too (FLIP-147): the checkpoint after their end of input is
                // what makes their final positions durable (e.g. Kafka commits them then).
                if let Some(reader) = self.reader.as_mut() {
                    let r = match n {
                        Notification::CheckpointComplete(id) => {
                            reader.notify_checkpoint_complete(id)
                        }
                        Notification::CheckpointAborted(id) => reader.notify_checkpoint_aborted(id),
                    };
                    r.map_err(|e| self.fail(e))?;
                }
                if self.life.may_close_after(n) {
                    self.close().await?;
                    return Ok(Flow::Exit);
                }
            }
            TaskCommand::AddSplits(splits) => {
                let splits = splits
                    .downcast::<Vec<S::Split>>()
                    .map_err(|_| RuntimeError::Lost("splits of an unexpected type".into()))?;
                // Finished readers too (FLIP-147): the checkpoint after their end of input is
                // what makes their final positions durable (e.g. Kafka commits them then).
                if let Some(reader) = self.reader.as_mut() {
                    reader.add_splits(*splits).map_err(|e| self.fail(e))?;
                }
            }
            TaskCommand::NoMoreSplits => {
                if let Some(reader) = self.reader.as_mut() {
                    reader.notify_no_more_splits();
                }
            }
            TaskCommand::SourceEvent(event) => {
                if let Some(reader) = self.reader.as_mut() {
                    reader
                        .handle_source_event(event)
                        .map_err(|e| self.fail(e))?;
                }
            }
            TaskCommand::AlignWatermark(max_allowed) => {
                if self.life.is_running() {
                    self.align(max_allowed)?;
                }
            }
            TaskCommand::StopSource { drain } => {
                if drain && self.life.is_running() {
                    self.finish_input().await?;
                }
            }
            TaskCommand::Cancel => {
                if let Err(e) = self.close().await {
                    tracing::debug!(task = %self.uid, "closing after cancel: {e}");
                }
                return Ok(Flow::Exit);
            }
        }
        Ok(Flow::Continue)
    }
}

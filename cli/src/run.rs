//! `weir run`: runs a pipeline file on the embedded runtime, with a progress display, Ctrl-C
//! and SIGTERM handling (savepoint and stop) and a final summary.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use weir_runtime::dashboard::DashboardServer;
use weir_runtime::{
    ExternalizedCheckpointRetention, JobHandle, JobResult, JobStatus, NonRestoredState,
    RestoreFrom, RestoreProblem, RuntimeError, SnapshotOfOtherJob, StopMode,
};

use crate::cluster::Started;
use crate::live::{LiveMetrics, LiveRecorder};
use crate::pipeline::{self, JobLayout, Pipeline, Storage};
use crate::{read_pipeline, Exit};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// A live progress line on a terminal, log lines otherwise.
    Auto,
    /// Always the live progress line.
    Bar,
    /// Always log lines.
    Log,
    /// Nothing but the summary.
    Quiet,
}

/// What SIGTERM does to a running job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SigtermAction {
    /// As Ctrl-C: a savepoint (drained with `--drain`), then stop; a second signal cancels.
    Stop,
    /// Cancel at once, without a savepoint (the latest checkpoint stays for a resume).
    Cancel,
}

/// A signal that asks the job to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    /// Ctrl-C (SIGINT).
    Interrupt,
    /// SIGTERM.
    Terminate,
}

/// Options of `weir run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The pipeline file.
    pub file: PathBuf,
    /// Start from this savepoint.
    pub from_savepoint: Option<PathBuf>,
    /// Whether to start from the newest checkpoint in the checkpoint storage.
    pub latest_checkpoint: LatestCheckpoint,
    /// Where Ctrl-C writes its savepoint.
    pub savepoint_dir: Option<PathBuf>,
    /// Ctrl-C drains before the savepoint (sources end where they are).
    pub drain: bool,
    /// What a restore does with state that maps to no operator.
    pub non_restored_state: NonRestoredState,
    /// What a restore does with a snapshot of a job of another name.
    pub snapshot_of_other_job: SnapshotOfOtherJob,
    /// What SIGTERM does.
    pub on_sigterm: SigtermAction,
    /// Serve Prometheus metrics (at `/metrics`) and the dashboard here.
    pub metrics_addr: Option<SocketAddr>,
    /// Serve the dashboard even without `metrics_addr` (at [`DEFAULT_UI_ADDR`]).
    pub ui: bool,
    /// Whether a cancelled job keeps its checkpoints.
    pub checkpoints_on_cancel: ExternalizedCheckpointRetention,
    /// How progress is shown.
    pub progress: ProgressMode,
    /// How often log lines are written.
    pub log_interval: Duration,
    /// Run this process's share of the job in a cluster (`--cluster-process`).
    pub cluster: Option<crate::cluster::Membership>,
}

/// Whether a run starts from the newest checkpoint of its checkpoint storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LatestCheckpoint {
    /// No (from a savepoint, or empty).
    #[default]
    No,
    /// Yes; none is an error (`--from-latest-checkpoint`).
    Required,
    /// If there is one, else as the savepoint says, or empty (`--restart-from-latest-checkpoint`,
    /// what `weir cluster run` restarts processes with).
    IfAny,
}

/// Runs the pipeline; the exit code says how it ended.
pub fn run(options: &RunOptions) -> Exit {
    if let Some(Err(e)) = options
        .cluster
        .as_ref()
        .map(crate::cluster::Membership::validate)
    {
        eprintln!("weir: {e}");
        return Exit::Invalid;
    }
    let (text, name) = match read_pipeline(&options.file) {
        Ok(read) => read,
        Err(exit) => return exit,
    };
    let file = options.file.display().to_string();
    let (pipeline, diagnostics) = pipeline::validate(&text, &name);
    if !diagnostics.sorted().is_empty() {
        eprintln!("{}", diagnostics.render(&file));
    }
    let Some(pipeline) = pipeline else {
        let n = diagnostics.error_count();
        eprintln!(
            "weir: {file} is not a valid pipeline ({n} error{}); nothing was run",
            if n == 1 { "" } else { "s" }
        );
        return Exit::Invalid;
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("weir: cannot start the runtime: {e}");
            return Exit::Failed;
        }
    };
    runtime.block_on(run_async(pipeline, options))
}

/// Where `--ui` serves the dashboard without `--metrics-addr` (Flink's web UI port, loopback).
pub const DEFAULT_UI_ADDR: &str = "127.0.0.1:8081";

/// Installs the metrics recorder; with an address, serves the Prometheus text at `/metrics`
/// and the dashboard there (the job is attached once it starts).
async fn install_metrics(
    addr: Option<SocketAddr>,
) -> Result<(LiveMetrics, Option<DashboardServer>), String> {
    let live = LiveMetrics::default();
    let (inner, server) = match addr {
        Some(addr) => {
            let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            let render: weir_runtime::dashboard::MetricsText = std::sync::Arc::new(move || {
                handle.run_upkeep();
                handle.render()
            });
            let server = DashboardServer::bind(addr, Some(render))
                .await
                .map_err(|e| e.to_string())?;
            (Some(recorder), Some(server))
        }
        None => (None, None),
    };
    metrics::set_global_recorder(LiveRecorder::new(live.clone(), inner))
        .map_err(|_| "a metrics recorder is already installed".to_owned())?;
    Ok((live, server))
}

async fn run_async(pipeline: Pipeline, options: &RunOptions) -> Exit {
    let addr = match (options.metrics_addr, options.ui) {
        (Some(addr), _) => Some(addr),
        (None, true) => DEFAULT_UI_ADDR.parse().ok(),
        (None, false) => None,
    };
    let (live, dashboard) = match install_metrics(addr).await {
        Ok(installed) => installed,
        Err(e) => {
            eprintln!("weir: {e}");
            return Exit::Failed;
        }
    };
    if let Some(server) = &dashboard {
        let addr = server.local_addr();
        eprintln!("weir: serving Prometheus metrics at http://{addr}/metrics");
        eprintln!("weir: dashboard at http://{addr}/ (JSON at http://{addr}/api/v1/job)");
    }
    let restore = match (&options.from_savepoint, options.latest_checkpoint) {
        (savepoint, LatestCheckpoint::IfAny) => crate::cluster::restart_restore(savepoint.clone()),
        (Some(path), _) => RestoreFrom::Savepoint(path.clone()),
        (None, LatestCheckpoint::Required) => RestoreFrom::LatestCheckpoint,
        (None, LatestCheckpoint::No) => RestoreFrom::Nothing,
    };
    let settings = pipeline::RestoreSettings {
        restore,
        non_restored_state: options.non_restored_state,
        snapshot_of_other_job: options.snapshot_of_other_job,
    };
    let built = pipeline::build(&pipeline, settings);
    let (job, layout) = match built {
        Ok((job, layout)) => (
            job.checkpoint_retention(options.checkpoints_on_cancel),
            layout,
        ),
        Err(e) => {
            eprintln!("weir: cannot build the job: {e}");
            return Exit::Failed;
        }
    };
    let savepoint_dir = options
        .savepoint_dir
        .clone()
        .unwrap_or_else(|| default_savepoint_dir(&pipeline));
    let mut signals = match listen_for_signals() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("weir: cannot listen for signals: {e}");
            return Exit::Failed;
        }
    };
    let cluster = match crate::cluster::join_if_asked(options.cluster.as_ref()).await {
        Ok(cluster) => cluster,
        Err(exit) => return exit,
    };
    let started = Instant::now();
    let job = match &cluster {
        None => Started::Local(job.start()),
        Some(cluster) => Started::Cluster(job.start_in_cluster(cluster.member())),
    };
    if let (Some(server), Some(handle)) = (&dashboard, job.handle()) {
        server.attach(handle.monitor());
    }
    let mut display = Display::new(options, &layout, live, started);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let signal = loop {
        tokio::select! {
            Some(signal) = signals.recv() => {
                if job.handle().is_some() {
                    break Some(signal);
                }
                eprintln!(
                    "weir: this process runs part of a cluster job: process 0 stops it (with \
                     a savepoint)"
                );
            }
            _ = tick.tick() => {
                if job.is_finished() {
                    break None;
                }
                display.update();
            }
        }
    };
    if let (Some(signal), Some(handle)) = (signal, job.handle()) {
        if signal == Signal::Terminate && options.on_sigterm == SigtermAction::Cancel {
            display.suspend();
            eprintln!(
                "weir: SIGTERM: cancelling without a savepoint (--on-sigterm cancel){}",
                match options.checkpoints_on_cancel {
                    ExternalizedCheckpointRetention::DeleteOnCancellation => {
                        "; its checkpoints are deleted (--checkpoints-on-cancel delete)"
                    }
                    ExternalizedCheckpointRetention::RetainOnCancellation => "",
                }
            );
            handle.cancel();
        } else {
            display.suspend();
            if let Err(e) = stop(handle, &savepoint_dir, options.drain, signal, &mut signals).await
            {
                give_up_stopping(handle, &e, options, &pipeline);
            }
        }
    }
    let result = job.wait().await;
    display.finish();
    let exit = summary(&pipeline, &layout, &result, started.elapsed(), options);
    match cluster {
        None => exit,
        Some(cluster) => crate::cluster::leave(cluster, &result, exit).await,
    }
}

fn default_savepoint_dir(pipeline: &Pipeline) -> PathBuf {
    match pipeline.checkpointing.as_ref().map(|c| &c.storage) {
        Some(Storage::Local(dir)) => dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("savepoints"), |p| p.join("savepoints")),
        _ => PathBuf::from("savepoints"),
    }
}

/// Ctrl-C and (on Unix) SIGTERM, as they arrive.
fn listen_for_signals() -> std::io::Result<tokio::sync::mpsc::UnboundedReceiver<Signal>> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while terminate.recv().await.is_some() {
                if tx.send(Signal::Terminate).is_err() {
                    break;
                }
            }
        });
    }
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if tx.send(Signal::Interrupt).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

/// Why stopping with a savepoint did not happen.
#[derive(Debug)]
enum StopFailure {
    /// A second signal cancelled the job.
    Cancelled,
    /// The savepoint failed.
    Savepoint(String),
}

/// Stops the job with a savepoint in a new directory under `dir`; a second signal cancels.
async fn stop(
    handle: &JobHandle,
    dir: &Path,
    drain: bool,
    signal: Signal,
    signals: &mut tokio::sync::mpsc::UnboundedReceiver<Signal>,
) -> Result<String, StopFailure> {
    let mode = if drain {
        StopMode::Drain
    } else {
        StopMode::NoDrain
    };
    eprintln!(
        "weir: {}: stopping with a savepoint under {}{} (Ctrl-C again to cancel without one)",
        match signal {
            Signal::Interrupt => "Ctrl-C",
            Signal::Terminate => "SIGTERM",
        },
        dir.display(),
        if drain {
            ", after draining: the sources end where they are"
        } else {
            ""
        }
    );
    tokio::select! {
        result = handle.stop_with_savepoint(dir.to_path_buf(), mode) => result
            .map(|location| location.as_str().to_owned())
            .map_err(|e| StopFailure::Savepoint(e.to_string())),
        Some(_) = signals.recv() => {
            handle.cancel();
            Err(StopFailure::Cancelled)
        }
    }
}

/// The savepoint failed: a stop must still stop. Without `--drain` the job is cancelled (its
/// checkpoints stay); a drain whose savepoint failed ends with a final checkpoint instead.
fn give_up_stopping(
    handle: &JobHandle,
    failure: &StopFailure,
    options: &RunOptions,
    pipeline: &Pipeline,
) {
    let StopFailure::Savepoint(e) = failure else {
        eprintln!("weir: cancelled by a second signal, without a savepoint");
        return;
    };
    if options.drain {
        eprintln!(
            "weir: could not take the drained savepoint ({e}); the job commits what it read \
             with a final checkpoint and ends"
        );
        return;
    }
    let resume = match (&pipeline.checkpointing, options.checkpoints_on_cancel) {
        (None, _) => "",
        (Some(_), ExternalizedCheckpointRetention::RetainOnCancellation) => {
            "; resume from its latest checkpoint with --from-latest-checkpoint"
        }
        (Some(_), ExternalizedCheckpointRetention::DeleteOnCancellation) => {
            "; its checkpoints are deleted (--checkpoints-on-cancel delete), so it cannot resume"
        }
    };
    eprintln!(
        "weir: could not stop with a savepoint ({e}); cancelling the job without one{resume}"
    );
    handle.cancel();
}

struct Display {
    bar: Option<ProgressBar>,
    log: bool,
    log_interval: Duration,
    last_log: Instant,
    layout: JobLayout,
    live: LiveMetrics,
    started: Instant,
    checkpoints: u64,
    last_checkpoint: Option<Instant>,
}

impl Display {
    fn new(options: &RunOptions, layout: &JobLayout, live: LiveMetrics, started: Instant) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let (bar, log) = match options.progress {
            ProgressMode::Auto if terminal => (true, false),
            ProgressMode::Auto | ProgressMode::Log => (false, true),
            ProgressMode::Bar => (true, false),
            ProgressMode::Quiet => (false, false),
        };
        let bar = bar.then(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            crate::logging::set_progress(Some(bar.clone()));
            bar
        });
        Display {
            bar,
            log,
            log_interval: options.log_interval,
            last_log: started,
            layout: layout.clone(),
            live,
            started,
            checkpoints: 0,
            last_checkpoint: None,
        }
    }

    fn line(&mut self) -> String {
        let records_in = self.live.sum("numRecordsOut", &self.layout.sources) as u64;
        let records_out = self.live.sum("numRecordsIn", &self.layout.sinks) as u64;
        let checkpoints = self.live.sum("completed", &["checkpoints".to_owned()]) as u64;
        if checkpoints != self.checkpoints {
            self.checkpoints = checkpoints;
            self.last_checkpoint = Some(Instant::now());
        }
        let elapsed = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = records_in as f64 / elapsed;
        let last = self.last_checkpoint.map_or_else(
            || "none yet".to_owned(),
            |t| format!("{:.1} s ago", t.elapsed().as_secs_f64()),
        );
        let watermark = self
            .live
            .min("currentOutputWatermark", &self.layout.watermarked)
            .map_or_else(|| "none".to_owned(), |w| show_watermark(w as i64));
        format!(
            "records in {records_in} ({}/s) · out {records_out} · checkpoints {checkpoints} \
             (last {last}) · watermark {watermark}",
            human(rate)
        )
    }

    fn update(&mut self) {
        if let Some(bar) = self.bar.clone() {
            bar.set_message(self.line());
        } else if self.log && self.last_log.elapsed() >= self.log_interval {
            self.last_log = Instant::now();
            let line = self.line();
            eprintln!(
                "weir: [{:.1} s] {line}",
                self.started.elapsed().as_secs_f64()
            );
        }
    }

    fn suspend(&mut self) {
        if let Some(bar) = self.bar.take() {
            crate::logging::set_progress(None);
            bar.finish_and_clear();
        }
    }

    fn finish(&mut self) {
        self.suspend();
    }
}

/// How a refused restore is explained, with what the user can do about it.
fn explain_refused_restore(snapshot: &str, problems: &[RestoreProblem]) -> String {
    let mut lines = vec![format!("weir: cannot restore from {snapshot}:")];
    let mut hints = Vec::new();
    for problem in problems {
        lines.push(format!("  - {problem}"));
        let hint = match problem {
            RestoreProblem::OtherJob { .. } => {
                "a snapshot of another job: if you renamed the pipeline, pass --allow-other-job"
            }
            RestoreProblem::UnmatchedState { .. } => {
                "state is matched to operators by name: rename the operator back, or pass \
                 --allow-non-restored-state to drop that state (a renamed source then re-reads \
                 its input; a renamed sink's pending output is never committed)"
            }
            RestoreProblem::SchemaChanged { .. } => {
                "a source's fields may be added, not removed or changed: put the fields back, or \
                 start without restoring"
            }
            RestoreProblem::UpstreamOfFinished { .. } => {
                "an operator whose input had ended takes no more input: restore the pipeline \
                 without the new input, or run the changed pipeline without restoring (into a \
                 new sink, or after clearing what the old one wrote)"
            }
            _ => "",
        };
        if !hint.is_empty() && !hints.contains(&hint) {
            hints.push(hint);
        }
    }
    for hint in hints {
        lines.push(format!("  hint: {hint}"));
    }
    lines.push("  nothing was run".to_owned());
    lines.join("\n")
}

/// `1.2k`, `3.4M`.
fn human(x: f64) -> String {
    if x >= 1e9 {
        format!("{:.1}G", x / 1e9)
    } else if x >= 1e6 {
        format!("{:.1}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

/// A watermark as UTC date-time (or `none` / `end of input`).
fn show_watermark(millis: i64) -> String {
    if millis <= i64::MIN / 2 {
        return "none".to_owned();
    }
    if millis >= i64::MAX / 2 {
        return "end of input".to_owned();
    }
    let days = millis.div_euclid(86_400_000);
    let ms = millis.rem_euclid(86_400_000);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

fn summary(
    pipeline: &Pipeline,
    layout: &JobLayout,
    result: &JobResult,
    elapsed: Duration,
    options: &RunOptions,
) -> Exit {
    match &result.status {
        JobStatus::Failed(RuntimeError::RestoreRefused { snapshot, problems }) => {
            eprintln!("{}", explain_refused_restore(snapshot, problems));
            return Exit::Invalid;
        }
        JobStatus::Failed(e @ RuntimeError::NoCheckpoint { .. }) => {
            eprintln!("weir: --from-latest-checkpoint: {e}; nothing was run");
            return Exit::Invalid;
        }
        _ => {}
    }
    let records_in: u64 = layout
        .sources
        .iter()
        .map(|s| result.counter(s, "numRecordsOut"))
        .sum();
    let records_out: u64 = layout
        .sinks
        .iter()
        .map(|s| result.counter(s, "numRecordsIn"))
        .sum();
    let secs = elapsed.as_secs_f64();
    let (headline, exit) = match &result.status {
        JobStatus::Finished => (format!("finished in {secs:.1} s"), Exit::Ok),
        JobStatus::Stopped { savepoint } if options.drain => (
            format!(
                "stopped after draining, with a savepoint after {secs:.1} s\n  savepoint    {}\n  \
                 drained      the sources ended where they were and everything read was \
                 committed; the rest of the input was not read, and a job resumed from this \
                 savepoint reads no more of it (stop without --drain to continue later)",
                savepoint.as_str()
            ),
            Exit::Ok,
        ),
        JobStatus::Stopped { savepoint } => (
            format!(
                "stopped with a savepoint after {secs:.1} s\n  savepoint    {}\n  resume with  weir run {} --from-savepoint {}",
                savepoint.as_str(),
                options.file.display(),
                savepoint.as_str()
            ),
            Exit::Ok,
        ),
        JobStatus::Cancelled => (format!("was cancelled after {secs:.1} s"), Exit::Interrupted),
        JobStatus::Failed(e) => (format!("failed after {secs:.1} s: {e}"), Exit::Failed),
        _ => (format!("ended after {secs:.1} s"), Exit::Failed),
    };
    let mut lines = vec![format!("weir: job `{}` {headline}", pipeline.name)];
    lines.push(format!(
        "  records in   {records_in} ({}/s)",
        human(records_in as f64 / secs.max(0.001))
    ));
    lines.push(format!("  records out  {records_out}"));
    lines.push(format!(
        "  checkpoints  {} completed{}",
        result.completed_checkpoints,
        result
            .restored_from
            .map_or_else(String::new, |id| format!(", restored from {id}"))
    ));
    lines.push(format!("  attempts     {}", result.attempts));
    for failover in &result.failover_history {
        lines.push(format!(
            "  failure      attempt {} at {}{}: {}",
            failover.attempt + 1,
            show_watermark(failover.at_millis as i64),
            failover
                .task
                .as_ref()
                .map_or_else(String::new, |t| format!(" in {t}")),
            failover.root_cause
        ));
    }
    for skipped in &result.skipped_checkpoints {
        lines.push(format!("  skipped      {skipped}"));
    }
    eprintln!("{}", lines.join("\n"));
    exit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermarks_render_as_utc() {
        assert_eq!(
            show_watermark(1_704_067_200_123),
            "2024-01-01T00:00:00.123Z"
        );
        assert_eq!(show_watermark(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(show_watermark(i64::MIN), "none");
        assert_eq!(show_watermark(i64::MAX), "end of input");
        assert_eq!(human(1234.0), "1.2k");
        assert_eq!(human(12.0), "12");
    }
}

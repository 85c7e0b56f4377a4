//! `weir run`: runs a pipeline file on the embedded runtime, with a progress display, Ctrl-C
//! handling (savepoint and stop) and a final summary.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use weir_runtime::{JobHandle, JobResult, JobStatus, RestoreFrom, StopMode};

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

/// Options of `weir run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The pipeline file.
    pub file: PathBuf,
    /// Start from this savepoint.
    pub from_savepoint: Option<PathBuf>,
    /// Start from the newest checkpoint in the checkpoint storage.
    pub from_latest_checkpoint: bool,
    /// Where Ctrl-C writes its savepoint.
    pub savepoint_dir: Option<PathBuf>,
    /// Ctrl-C finishes the input before the savepoint.
    pub drain: bool,
    /// Serve Prometheus metrics here.
    pub metrics_addr: Option<SocketAddr>,
    /// How progress is shown.
    pub progress: ProgressMode,
    /// How often log lines are written.
    pub log_interval: Duration,
}

/// Runs the pipeline; the exit code says how it ended.
pub fn run(options: &RunOptions) -> Exit {
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

fn install_metrics(addr: Option<SocketAddr>) -> Result<LiveMetrics, String> {
    let live = LiveMetrics::default();
    let inner = match addr {
        Some(addr) => {
            let (recorder, exporter) = metrics_exporter_prometheus::PrometheusBuilder::new()
                .with_http_listener(addr)
                .build()
                .map_err(|e| format!("cannot serve metrics on {addr}: {e}"))?;
            tokio::spawn(async move {
                if let Err(e) = exporter.await {
                    eprintln!("weir: the metrics endpoint stopped: {e:?}");
                }
            });
            Some(recorder)
        }
        None => None,
    };
    metrics::set_global_recorder(LiveRecorder::new(live.clone(), inner))
        .map_err(|_| "a metrics recorder is already installed".to_owned())?;
    Ok(live)
}

async fn run_async(pipeline: Pipeline, options: &RunOptions) -> Exit {
    let live = match install_metrics(options.metrics_addr) {
        Ok(live) => live,
        Err(e) => {
            eprintln!("weir: {e}");
            return Exit::Failed;
        }
    };
    if let Some(addr) = options.metrics_addr {
        eprintln!("weir: serving Prometheus metrics at http://{addr}/metrics");
    }
    let restore = match (&options.from_savepoint, options.from_latest_checkpoint) {
        (Some(path), _) => RestoreFrom::Savepoint(path.clone()),
        (None, true) => RestoreFrom::LatestCheckpoint,
        (None, false) => RestoreFrom::Nothing,
    };
    let built = pipeline::build(&pipeline, restore);
    let (job, layout) = match built {
        Ok(built) => built,
        Err(e) => {
            eprintln!("weir: cannot build the job: {e}");
            return Exit::Failed;
        }
    };
    let savepoint_dir = options
        .savepoint_dir
        .clone()
        .unwrap_or_else(|| default_savepoint_dir(&pipeline));
    let (sig_tx, mut interrupts) = tokio::sync::mpsc::unbounded_channel::<()>();
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if sig_tx.send(()).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let handle = job.start();
    let mut display = Display::new(options, &layout, live, started);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let interrupted = loop {
        tokio::select! {
            Some(()) = interrupts.recv() => break true,
            _ = tick.tick() => {
                if handle.is_finished() {
                    break false;
                }
                display.update();
            }
        }
    };
    let stopped = if interrupted {
        display.suspend();
        Some(stop(&handle, &savepoint_dir, options.drain, &mut interrupts).await)
    } else {
        None
    };
    let result = handle.wait().await;
    display.finish();
    summary(
        &pipeline,
        &layout,
        &result,
        started.elapsed(),
        stopped.as_ref(),
        options,
    )
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

/// Stops the job with a savepoint; a second Ctrl-C cancels instead.
async fn stop(
    handle: &JobHandle,
    dir: &Path,
    drain: bool,
    interrupts: &mut tokio::sync::mpsc::UnboundedReceiver<()>,
) -> Result<String, String> {
    let mode = if drain {
        StopMode::Drain
    } else {
        StopMode::NoDrain
    };
    eprintln!(
        "weir: stopping with a savepoint into {}{} (Ctrl-C again to cancel without one)",
        dir.display(),
        if drain {
            ", after draining the input"
        } else {
            ""
        }
    );
    tokio::select! {
        result = handle.stop_with_savepoint(dir.to_path_buf(), mode) => {
            result.map(|location| location.as_str().to_owned()).map_err(|e| e.to_string())
        }
        Some(()) = interrupts.recv() => {
            handle.cancel();
            Err("cancelled by a second Ctrl-C".to_owned())
        }
    }
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
            bar.finish_and_clear();
        }
    }

    fn finish(&mut self) {
        self.suspend();
    }
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
    stopped: Option<&Result<String, String>>,
    options: &RunOptions,
) -> Exit {
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
    if let Some(Err(e)) = stopped {
        eprintln!("weir: could not stop with a savepoint: {e}");
    }
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
    for failure in &result.failures {
        lines.push(format!("  failure      {failure}"));
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

//! Log lines on standard error: the runtime's and the connectors' `tracing` events (commit
//! retries, skipped checkpoints, what a restore used), filtered by `--log-level` or `RUST_LOG`.
//!
//! While `weir run` draws its progress line, log lines are written above it, not through it.

use std::io::{self, Write};
use std::sync::{Mutex, PoisonError};

use indicatif::ProgressBar;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// The progress line being drawn, if any: log lines suspend it while they are written.
static PROGRESS: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Installs the subscriber. `level` is `--log-level` (a level or filter directives); without it
/// `RUST_LOG` decides, and without that the level is `info`.
pub fn init(level: Option<&str>) -> Result<(), String> {
    let filter = match level {
        Some(level) => {
            let bad = |why: String| {
                format!(
                    "--log-level {level:?} is not a level or filter ({why}); use error, warn, \
                     info, debug, trace or off, or directives such as warn,weir_runtime=debug"
                )
            };
            // A single word must be a level: `verbose` is a mistake, not a target name.
            if !level.contains(['=', ',']) {
                level
                    .parse::<tracing_subscriber::filter::LevelFilter>()
                    .map_err(|e| bad(e.to_string()))?;
            }
            EnvFilter::try_new(level).map_err(|e| bad(e.to_string()))?
        }
        None => match std::env::var("RUST_LOG") {
            Ok(directives) if !directives.trim().is_empty() => EnvFilter::try_new(&directives)
                .map_err(|e| format!("RUST_LOG={directives:?} is not a valid filter ({e})"))?,
            _ => EnvFilter::new("info"),
        },
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(StderrAboveProgress)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&io::stderr()))
        .try_init()
        .map_err(|e| format!("cannot install the logger: {e}"))
}

/// Registers the progress line that log lines must not break (`None` when it is gone).
pub fn set_progress(bar: Option<ProgressBar>) {
    *PROGRESS.lock().unwrap_or_else(PoisonError::into_inner) = bar;
}

/// Writes to standard error, above the progress line when one is drawn.
struct StderrAboveProgress;

impl<'a> MakeWriter<'a> for StderrAboveProgress {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(Vec::new())
    }
}

/// Collects one event's bytes and writes them at once when dropped.
struct LineWriter(Vec<u8>);

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        let bytes = std::mem::take(&mut self.0);
        let write = || {
            let _ = io::stderr().lock().write_all(&bytes);
        };
        let bar = PROGRESS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}

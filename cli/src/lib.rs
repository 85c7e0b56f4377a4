//! # weir-cli
//!
//! The `weir` command line of the Weir connector kit (the binary is in `main.rs`; this library
//! holds the commands so they can be tested):
//!
//! | command | what it does |
//! |---|---|
//! | `weir run <file>` | runs a pipeline file on the embedded runtime ([`run`]) |
//! | `weir validate <file>` | reports every mistake of a pipeline file at once, with lines ([`pipeline`]) |
//! | `weir connectors [<name>]` | lists connectors and formats, or shows one's options ([`catalog`]) |
//! | `weir new <name>` | scaffolds a connector crate that passes the conformance suites ([`scaffold`]) |
//! | `weir test [<connector>]` | runs a connector's conformance suites and prints the report ([`testing`]) |
//! | `weir compat check` | checks versions and `compat-matrix.toml` ([`compat`]) |
//! | `weir publish <connector>` | checks a connector for release, then `cargo publish` ([`publish`]) |
//!
//! Connectors are found through compile-time registration: a connector crate calls
//! `register_connector!`, `weir` depends on it and links it in [`catalog::link`].

pub mod catalog;
pub mod check;
pub mod cluster;
pub mod compat;
pub mod compat_line;
pub mod live;
pub mod logging;
pub mod pipeline;
pub mod print;
pub mod publish;
mod publish_cache;
pub mod publish_lines;
pub mod run;
pub mod scaffold;
pub mod testing;
pub mod workspace;

use std::path::Path;

/// How a command ended; the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success (0).
    Ok,
    /// A job, a test or a check failed (1).
    Failed,
    /// The input was invalid: a pipeline file, a name, an argument (2).
    Invalid,
    /// Interrupted (130).
    Interrupted,
    /// This process's cluster broke: another process died or was cut off (75, for
    /// `weir cluster run`, which restarts every process).
    ClusterBroken,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failed => 1,
            Exit::Invalid => 2,
            Exit::Interrupted => 130,
            Exit::ClusterBroken => crate::cluster::CLUSTER_BROKEN,
        }
    }
}

/// Reads a pipeline file: its text and its default job name (the file stem).
pub fn read_pipeline(path: &Path) -> Result<(String, String), Exit> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("pipeline")
                .to_owned();
            Ok((text, name))
        }
        Err(e) => {
            eprintln!("weir: cannot read {}: {e}", path.display());
            Err(Exit::Invalid)
        }
    }
}

/// `weir validate <file>...`: every mistake of every file; exit 2 if any file is invalid.
pub fn validate(files: &[std::path::PathBuf]) -> Exit {
    let mut exit = Exit::Ok;
    for path in files {
        let (text, name) = match read_pipeline(path) {
            Ok(read) => read,
            Err(e) => {
                exit = e;
                continue;
            }
        };
        let file = path.display().to_string();
        let (pipeline, diagnostics) = pipeline::validate(&text, &name);
        if !diagnostics.sorted().is_empty() {
            eprintln!("{}", diagnostics.render(&file));
        }
        match pipeline {
            Some(p) => println!(
                "{file}: valid pipeline `{}`: {} source{}, {} transform{}, {} sink{}{}",
                p.name,
                p.sources.len(),
                plural(p.sources.len()),
                p.transforms.len(),
                plural(p.transforms.len()),
                p.sinks.len(),
                plural(p.sinks.len()),
                p.checkpointing.as_ref().map_or_else(
                    || ", no checkpointing".to_owned(),
                    |c| format!(
                        ", {} checkpoints every {}{}",
                        if c.config.mode == weir_runtime::CheckpointingMode::AtLeastOnce {
                            "at-least-once"
                        } else {
                            "exactly-once"
                        },
                        weir_connector_api::config::format_duration(c.config.interval),
                        match c.config.alignment {
                            weir_runtime::BarrierAlignment::Aligned => String::new(),
                            weir_runtime::BarrierAlignment::Unaligned => " (unaligned)".into(),
                            weir_runtime::BarrierAlignment::AlignedWithTimeout(d) => format!(
                                " (aligned, unaligned after {})",
                                weir_connector_api::config::format_duration(d)
                            ),
                        }
                    )
                )
            ),
            None => {
                let n = diagnostics.error_count();
                eprintln!("{file}: {n} error{}", plural(n));
                exit = Exit::Invalid;
            }
        }
    }
    exit
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

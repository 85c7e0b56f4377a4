//! `weir`, the command line of the Weir connector kit; see the `weir_cli` library for the
//! commands.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::ValueEnum;
use clap::{Parser, Subcommand};
use weir_cli::cluster::{Membership, SuperviseOptions};
use weir_cli::run::{LatestCheckpoint, ProgressMode, RunOptions, SigtermAction};
use weir_runtime::{ExternalizedCheckpointRetention, NonRestoredState, SnapshotOfOtherJob};

/// `weir cluster ...`.
#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Start N processes of this program on loopback running the pipeline together (each
    /// `weir run --cluster-process I`); when one dies, stop the rest and start all N again
    /// from the latest checkpoint, with the next generation.
    Run {
        /// The pipeline file (TOML); its checkpoint storage is shared by the processes.
        file: PathBuf,
        /// How many processes.
        #[arg(short = 'n', long = "processes", value_name = "N", default_value_t = 2)]
        processes: usize,
        /// Start from this savepoint (any process count may restore it: rescale N -> M).
        #[arg(long, value_name = "PATH", conflicts_with = "from_latest_checkpoint")]
        from_savepoint: Option<PathBuf>,
        /// Start from the newest checkpoint in the pipeline's checkpoint storage.
        #[arg(long)]
        from_latest_checkpoint: bool,
        /// How many times all processes are restarted after one died.
        #[arg(long, value_name = "N", default_value_t = 3)]
        max_restarts: u32,
        /// How each process shows progress.
        #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
        progress: ProgressMode,
    },
}

/// What `--checkpoints-on-cancel` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CheckpointsOnCancel {
    /// Keep them, for `--from-latest-checkpoint`.
    Retain,
    /// Delete the checkpoints this run wrote.
    Delete,
}

/// The Weir connector kit: run pipelines, build and publish connectors.
#[derive(Debug, Parser)]
#[command(name = "weir", version, about, long_about = None)]
struct Cli {
    /// What is logged to standard error: a level (error, warn, info, debug, trace) or
    /// directives such as `warn,weir_runtime=debug` [default: $RUST_LOG, else info].
    #[arg(long, global = true, value_name = "LEVEL")]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a pipeline file on the embedded runtime (Ctrl-C: savepoint and stop).
    Run {
        /// The pipeline file (TOML).
        file: PathBuf,
        /// Start from this savepoint (a directory written by a stop, or its _metadata file).
        #[arg(long, value_name = "PATH", conflicts_with = "from_latest_checkpoint")]
        from_savepoint: Option<PathBuf>,
        /// Start from the newest checkpoint in the pipeline's checkpoint storage.
        #[arg(long)]
        from_latest_checkpoint: bool,
        /// Where Ctrl-C writes the savepoint [default: next to the checkpoints, or ./savepoints].
        #[arg(long, value_name = "DIR")]
        savepoint_dir: Option<PathBuf>,
        /// On Ctrl-C, drain before the savepoint: the sources end where they are (unread input
        /// stays unread), event-time windows fire, everything commits. A drained savepoint
        /// reads no more input when resumed; stop without --drain to continue later.
        #[arg(long)]
        drain: bool,
        /// Restore even if state in the snapshot maps to no operator (a renamed or removed
        /// source or sink); that state is dropped.
        #[arg(long)]
        allow_non_restored_state: bool,
        /// Restore a snapshot taken by a job of another name (after renaming the pipeline).
        #[arg(long)]
        allow_other_job: bool,
        /// What SIGTERM (sent by containers and Kubernetes) does.
        #[arg(long, value_enum, default_value_t = SigtermAction::Stop)]
        on_sigterm: SigtermAction,
        /// Serve Prometheus metrics (/metrics) and the job dashboard (/, JSON under /api/v1/)
        /// at this address, e.g. 127.0.0.1:9249 (port 0: any free port, printed at start).
        #[arg(long, value_name = "ADDR")]
        metrics_addr: Option<SocketAddr>,
        /// Serve the job dashboard: at --metrics-addr if given, else at 127.0.0.1:8081.
        #[arg(long)]
        ui: bool,
        /// What a cancel does with the job's checkpoints: keep them for a resume, or delete
        /// the ones this run wrote (savepoints are always kept).
        #[arg(long, value_enum, default_value_t = CheckpointsOnCancel::Retain)]
        checkpoints_on_cancel: CheckpointsOnCancel,
        /// How to show progress.
        #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
        progress: ProgressMode,
        /// Seconds between progress log lines (when not on a terminal).
        #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
        log_interval: f64,
        /// Start from the newest checkpoint if the checkpoint storage holds one, else as
        /// --from-savepoint says (or empty): what `weir cluster run` restarts processes with.
        #[arg(long, conflicts_with = "from_latest_checkpoint")]
        restart_from_latest_checkpoint: bool,
        /// Cluster mode: this process's index among --cluster-addresses (process 0 runs the
        /// job master; every process runs the same pipeline file).
        #[arg(long, value_name = "I", requires = "cluster_addresses")]
        cluster_process: Option<usize>,
        /// Cluster mode: every process's host:port, in process order, comma-separated.
        #[arg(
            long,
            value_name = "ADDRS",
            value_delimiter = ',',
            requires = "cluster_process"
        )]
        cluster_addresses: Vec<String>,
        /// Cluster mode: the generation of this start (a supervisor counts restarts); a
        /// process of another generation is refused at the handshake.
        #[arg(long, value_name = "N", default_value_t = 0)]
        cluster_generation: u64,
        /// Exit when the parent process is gone (set by `weir cluster run` for its processes).
        #[arg(long, hide = true, requires = "cluster_process")]
        exit_with_parent: bool,
    },
    /// Run one pipeline across several local processes (cluster mode), restarting them all
    /// from the latest checkpoint when one dies.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Check pipeline files: every mistake at once, with file:line:column (exit 2 if invalid).
    Validate {
        /// The pipeline files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Reach every source's, sink's and lookup's external system with the pipeline's options
    /// and say what works (exit 1 if a check failed, 2 if the file is invalid).
    Check(weir_cli::check::CheckArgs),
    /// List the connectors and formats of this build, or show one's options.
    Connectors {
        /// A connector or format identifier.
        name: Option<String>,
    },
    /// Scaffold a connector crate that passes the conformance suites out of the box.
    New(weir_cli::scaffold::NewArgs),
    /// Run a connector's conformance suites and print the per-case report.
    Test(weir_cli::testing::TestArgs),
    /// Check connector versions and compat-matrix.toml.
    Compat {
        #[command(subcommand)]
        command: weir_cli::compat::CompatCommand,
    },
    /// Check a connector for release (version, matrix, docs, fresh conformance report,
    /// packaging), then cargo publish.
    Publish(weir_cli::publish::PublishArgs),
}

fn main() -> ExitCode {
    weir_cli::catalog::link();
    let cli = Cli::parse();
    if let Err(e) = weir_cli::logging::init(cli.log_level.as_deref()) {
        eprintln!("weir: {e}");
        return ExitCode::from(weir_cli::Exit::Invalid.code());
    }
    let exit = match cli.command {
        Command::Run {
            file,
            from_savepoint,
            from_latest_checkpoint,
            savepoint_dir,
            drain,
            allow_non_restored_state,
            allow_other_job,
            on_sigterm,
            metrics_addr,
            ui,
            checkpoints_on_cancel,
            progress,
            log_interval,
            restart_from_latest_checkpoint,
            cluster_process,
            cluster_addresses,
            cluster_generation,
            exit_with_parent,
        } => {
            if let (true, Some(process)) = (exit_with_parent, cluster_process) {
                weir_cli::cluster::exit_with_parent(process);
            }
            weir_cli::run::run(&RunOptions {
                file,
                from_savepoint,
                latest_checkpoint: match (from_latest_checkpoint, restart_from_latest_checkpoint) {
                    (_, true) => LatestCheckpoint::IfAny,
                    (true, false) => LatestCheckpoint::Required,
                    (false, false) => LatestCheckpoint::No,
                },
                savepoint_dir,
                drain,
                non_restored_state: if allow_non_restored_state {
                    NonRestoredState::Allow
                } else {
                    NonRestoredState::Refuse
                },
                snapshot_of_other_job: if allow_other_job {
                    SnapshotOfOtherJob::Allow
                } else {
                    SnapshotOfOtherJob::Refuse
                },
                on_sigterm,
                metrics_addr,
                ui,
                checkpoints_on_cancel: match checkpoints_on_cancel {
                    CheckpointsOnCancel::Retain => {
                        ExternalizedCheckpointRetention::RetainOnCancellation
                    }
                    CheckpointsOnCancel::Delete => {
                        ExternalizedCheckpointRetention::DeleteOnCancellation
                    }
                },
                progress,
                log_interval: Duration::from_secs_f64(log_interval.clamp(0.1, 3600.0)),
                cluster: cluster_process.map(|process| Membership {
                    process,
                    addresses: cluster_addresses,
                    generation: cluster_generation,
                }),
            })
        }
        Command::Cluster(ClusterCommand::Run {
            file,
            processes,
            from_savepoint,
            from_latest_checkpoint,
            max_restarts,
            progress,
        }) => weir_cli::cluster::supervise(&SuperviseOptions {
            file,
            processes,
            from_savepoint,
            from_latest_checkpoint,
            max_restarts,
            run_args: vec![
                "--progress".to_owned(),
                progress
                    .to_possible_value()
                    .map_or_else(|| "auto".to_owned(), |v| v.get_name().to_owned()),
            ],
        }),
        Command::Validate { files } => weir_cli::validate(&files),
        Command::Check(args) => weir_cli::check::command(&args),
        Command::Connectors { name } => weir_cli::catalog::command(name.as_deref()),
        Command::New(args) => weir_cli::scaffold::command(&args),
        Command::Test(args) => weir_cli::testing::command(&args),
        Command::Compat { command } => weir_cli::compat::command(&command),
        Command::Publish(args) => weir_cli::publish::command(&args),
    };
    ExitCode::from(exit.code())
}

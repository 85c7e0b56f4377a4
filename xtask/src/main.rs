//! `cargo xtask`: Weir's project tasks (`compat`, `deps`, `test`, `bench-peers`); see the `xtask`
//! library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use xtask::{bench_peers, ci, deps, workspace_root};

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Weir's project tasks"
)]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Check connector crate versions against compat-matrix.toml (every error at once).
    Compat {
        /// The matrix file [default: <root>/compat-matrix.toml].
        #[arg(long, value_name = "PATH")]
        matrix: Option<PathBuf>,
        /// The workspace root holding connectors/ [default: this workspace].
        #[arg(long, value_name = "PATH")]
        root: Option<PathBuf>,
    },
    /// Install the pinned test servers and cargo tools into target/test-servers, write servers.env.
    Deps,
    /// Run what CI runs: deps, fmt, clippy, compat, and every test of the workspace.
    Test {
        /// Skip the fmt and clippy steps.
        #[arg(long)]
        quick: bool,
    },
    /// Weir side by side with Apache Flink 2.3 (PyPI, Java 17) on jobs a, b, c at parallelism 1
    /// and 2: CPU s per million rows and peak memory (benches/peers/flink; not part of `test`).
    BenchPeers(bench_peers::Options),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Task::Compat { matrix, root } => {
            let root = root.unwrap_or_else(workspace_root);
            let matrix = matrix.unwrap_or_else(|| root.join("compat-matrix.toml"));
            ci::compat_report(&root, &matrix).map(|_| ())
        }
        Task::Deps => deps::install(&workspace_root()).map(|_| ()),
        Task::Test { quick } => ci::run(&workspace_root(), ci::Options { quick }),
        Task::BenchPeers(options) => bench_peers::run(&workspace_root(), &options).map(|_| ()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

//! `cargo xtask`: Weir's project tasks (`compat`, `deps`, `test`); see the `xtask` library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use xtask::{ci, deps, workspace_root};

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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

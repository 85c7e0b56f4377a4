//! `weir compat check`: the compat-matrix checks of `weir-compat`, and with `--run`, building
//! and testing every connector against every API line it claims.

use std::path::PathBuf;

use crate::workspace::{cargo_command, current_dir, weir_repo};
use crate::Exit;

/// `weir compat ...`.
#[derive(Debug, clap::Subcommand)]
pub enum CompatCommand {
    /// Check versions and the matrix (every problem at once); `--run` also builds and tests.
    Check(CheckArgs),
}

/// Options of `weir compat check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The matrix file [default: <root>/compat-matrix.toml].
    #[arg(long, value_name = "PATH")]
    pub matrix: Option<PathBuf>,
    /// The Weir repository [default: the one around the current directory].
    #[arg(long, value_name = "PATH")]
    pub root: Option<PathBuf>,
    /// Build and test each connector on each API line its current release claims.
    #[arg(long)]
    pub run: bool,
    /// With --run: print the builds and tests instead of running them.
    #[arg(long)]
    pub dry_run: bool,
    /// With --run: only these connectors.
    #[arg(long = "connector", value_name = "NAME")]
    pub connectors: Vec<String>,
}

/// Runs a compat command.
pub fn command(command: &CompatCommand) -> Exit {
    match command {
        CompatCommand::Check(args) => check(args),
    }
}

fn check(args: &CheckArgs) -> Exit {
    let Some(root) = args.root.clone().or_else(|| weir_repo(&current_dir())) else {
        eprintln!(
            "weir: not inside the Weir repository (no compat-matrix.toml around {}): pass --root",
            current_dir().display()
        );
        return Exit::Invalid;
    };
    let matrix = args
        .matrix
        .clone()
        .unwrap_or_else(|| root.join("compat-matrix.toml"));
    let summary = match weir_compat::check(&root, &matrix) {
        Ok(summary) => {
            println!("{summary}");
            summary
        }
        Err(errors) => {
            for error in &errors {
                eprintln!("compat: error: {error}");
            }
            eprintln!(
                "compat: {} error{} in {} and the connector crates",
                errors.len(),
                if errors.len() == 1 { "" } else { "s" },
                matrix.display()
            );
            return Exit::Failed;
        }
    };
    let _ = summary;
    if !args.run {
        return Exit::Ok;
    }
    run(&root, &matrix, args)
}

/// Builds and tests every connector's current release on each API line it claims. Only the
/// API line of the `connector-api/` in this tree can be built here; other lines are reported
/// as not buildable from this tree (they need that line's checkout).
fn run(root: &std::path::Path, matrix: &std::path::Path, args: &CheckArgs) -> Exit {
    let text = std::fs::read_to_string(matrix).unwrap_or_default();
    let Ok(parsed) = toml::from_str::<weir_compat::Matrix>(&text) else {
        eprintln!("weir: cannot read {}", matrix.display());
        return Exit::Failed;
    };
    let api_line = crate::workspace::package(&root.join("connector-api"))
        .ok()
        .and_then(|p| {
            let mut parts = p.version.split('.');
            Some(format!("{}.{}", parts.next()?, parts.next()?))
        })
        .unwrap_or_else(|| weir_connector_api::API_LINE.to_owned());
    let mut failed = Vec::new();
    for (name, entry) in &parsed.connectors {
        if !args.connectors.is_empty() && !args.connectors.contains(name) {
            continue;
        }
        let Ok(package) = crate::workspace::package(&root.join("connectors").join(name)) else {
            continue;
        };
        let Some(release) = entry.releases.iter().find(|r| r.version == package.version) else {
            continue;
        };
        for line in &release.api_lines {
            if *line != api_line {
                println!(
                    "compat: {} {} on API line {line}: not buildable from this tree (it holds \
                     line {api_line}); run this check on a checkout of line {line}",
                    entry.crate_name, package.version
                );
                continue;
            }
            let command = format!("cargo test -p {} --all-features", entry.crate_name);
            if args.dry_run {
                println!(
                    "compat: {} {} on API line {line}: would run `{command}`",
                    entry.crate_name, package.version
                );
                continue;
            }
            println!(
                "compat: {} {} on API line {line}: `{command}`",
                entry.crate_name, package.version
            );
            let status = cargo_command(root)
                .args(["test", "-p", &entry.crate_name, "--all-features"])
                .status();
            match status {
                Ok(s) if s.success() => println!("compat: {} on {line}: OK", entry.crate_name),
                _ => {
                    println!("compat: {} on {line}: FAILED", entry.crate_name);
                    failed.push(format!("{} on {line}", entry.crate_name));
                }
            }
        }
    }
    if failed.is_empty() {
        Exit::Ok
    } else {
        eprintln!("compat: failed: {}", failed.join(", "));
        Exit::Failed
    }
}

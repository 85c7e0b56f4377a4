//! `cargo xtask test`: everything CI runs, in order, stopping at the first failing step.
//!
//! 1. deps — install the pinned test servers ([`crate::deps::install`]);
//! 2. fmt — `cargo fmt --all -- --check`;
//! 3. clippy — `cargo clippy --workspace --all-targets --all-features -- -D warnings`;
//! 4. compat — the compat-matrix check ([`crate::compat::check`]);
//! 5. test — `cargo test --workspace --all-features` (doc tests included), with `WEIR_TEST_SERVERS_ENV` set to
//!    the absolute path of `servers.env`;
//! 6. lines — every connector on every supported API line other than the tree's, built against
//!    that line's released platform: `weir compat check --run --api-line <L>` (see the CLI's
//!    `compat_line` module).
//!
//! `--quick` skips fmt and clippy.

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::{compat, deps};

/// The variable through which test fixtures find `servers.env`.
pub const SERVERS_ENV_VAR: &str = "WEIR_TEST_SERVERS_ENV";

/// Options of `cargo xtask test`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Skip the fmt and clippy steps.
    pub quick: bool,
}

/// Runs every CI step under the workspace `root`.
pub fn run(root: &Path, options: Options) -> Result<()> {
    let total = if options.quick { 4 } else { 6 };
    let mut steps = Steps {
        total,
        done: Vec::new(),
        disk: root.to_path_buf(),
    };
    println!("{}", free_disk(root));
    let started = Instant::now();

    let installed = steps.run("deps", || deps::install(root))?;
    if options.quick {
        println!("\n(--quick: skipping fmt and clippy)");
    } else {
        steps.run("fmt", || {
            cargo(root, &["fmt", "--all", "--", "--check"], None)
        })?;
        steps.run("clippy", || {
            cargo(
                root,
                &[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--all-features",
                    "--",
                    "-D",
                    "warnings",
                ],
                None,
            )
        })?;
    }
    steps.run("compat", || {
        compat_report(root, &root.join("compat-matrix.toml")).map(|_| ())
    })?;
    steps.run("test", || {
        // Every test binary runs even after one fails, so one run shows every failure.
        cargo(
            root,
            &["test", "--workspace", "--all-features", "--no-fail-fast"],
            Some((SERVERS_ENV_VAR, installed.env_file.clone().into_os_string())),
        )
    })?;

    steps.run("lines", || {
        let older = older_api_lines(root)?;
        if older.is_empty() {
            println!("no supported API line besides the tree's");
            return Ok(());
        }
        let mut args = vec![
            "run", "-q", "-p", "weir-cli", "--bin", "weir", "--", "compat", "check", "--run",
        ];
        for line in &older {
            args.push("--api-line");
            args.push(line);
        }
        cargo(
            root,
            &args,
            Some((SERVERS_ENV_VAR, installed.env_file.clone().into_os_string())),
        )
    })?;

    println!("\nxtask test: every step passed");
    for (name, elapsed) in &steps.done {
        println!("  {name:<8} {}", seconds(*elapsed));
    }
    println!("  {:<8} {}", "total", seconds(started.elapsed()));
    Ok(())
}

/// The supported API lines of the matrix other than the line of the tree's `connector-api`.
fn older_api_lines(root: &Path) -> Result<Vec<String>> {
    let matrix = std::fs::read_to_string(root.join("compat-matrix.toml"))
        .context("cannot read compat-matrix.toml")?;
    let matrix: compat::Matrix =
        toml::from_str(&matrix).context("cannot parse compat-matrix.toml")?;
    let api = std::fs::read_to_string(root.join("connector-api/Cargo.toml"))
        .context("cannot read connector-api/Cargo.toml")?;
    let api: toml::Table = toml::from_str(&api).context("cannot parse connector-api/Cargo.toml")?;
    let version = api
        .get("package")
        .and_then(|p| p.get("version"))
        .and_then(toml::Value::as_str)
        .context("connector-api/Cargo.toml has no package.version")?;
    let tree_line = version.split('.').take(2).collect::<Vec<_>>().join(".");
    Ok(matrix
        .api_lines
        .into_iter()
        .filter(|line| *line != tree_line)
        .collect())
}

/// Runs the compat check and prints its outcome: the summary, or every error.
pub fn compat_report(root: &Path, matrix: &Path) -> Result<compat::Summary> {
    match compat::check(root, matrix) {
        Ok(summary) => {
            println!("{summary}");
            Ok(summary)
        }
        Err(errors) => {
            for error in &errors {
                eprintln!("compat: error: {error}");
            }
            bail!(
                "compat: {} error{} in {} and the connector crates",
                errors.len(),
                if errors.len() == 1 { "" } else { "s" },
                matrix.display()
            )
        }
    }
}

struct Steps {
    total: usize,
    done: Vec<(&'static str, Duration)>,
    /// Where free disk space is measured after each step (the workspace, beside `target/`).
    disk: std::path::PathBuf,
}

/// The free space of the filesystem holding `path` and of the temporary directory, as `df`
/// tells them: a test server that needs disk (SeaweedFS takes no writes while less than 1% of
/// its disk is free) fails on a machine that a build has filled, and the log should say so.
fn free_disk(path: &Path) -> String {
    let tmp = std::env::temp_dir();
    let mut parts = Vec::new();
    for (what, p) in [("workspace", path), ("temp", tmp.as_path())] {
        let output = Command::new("df")
            .args(["-Pk", "--"])
            .arg(p)
            .stderr(Stdio::null())
            .output();
        let free = output.ok().and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .nth(1)
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_owned))
                .and_then(|v| v.parse::<u64>().ok())
        });
        parts.push(match free {
            Some(kib) => format!("{what} {:.1} GiB", kib as f64 / (1024.0 * 1024.0)),
            None => format!("{what} unknown"),
        });
    }
    format!("free disk: {}", parts.join(", "))
}

impl Steps {
    fn run<T>(&mut self, name: &'static str, step: impl FnOnce() -> Result<T>) -> Result<T> {
        println!("\n==> [{}/{}] {name}", self.done.len() + 1, self.total);
        let start = Instant::now();
        let result = step();
        let elapsed = start.elapsed();
        match result {
            Ok(value) => {
                println!(
                    "<== {name}: ok in {} ({})",
                    seconds(elapsed),
                    free_disk(&self.disk)
                );
                self.done.push((name, elapsed));
                Ok(value)
            }
            Err(error) => {
                eprintln!(
                    "<== {name}: FAILED after {} ({})",
                    seconds(elapsed),
                    free_disk(&self.disk)
                );
                Err(error.context(format!("step `{name}` failed")))
            }
        }
    }
}

/// A variable that `cargo run` sets for the xtask package itself.
pub(crate) fn is_xtask_package_var(key: &str) -> bool {
    key.starts_with("CARGO_PKG_")
        || matches!(
            key,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_MANIFEST_LINKS"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
        )
}

fn seconds(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// Runs `cargo <args>` in `root` (the cargo that runs xtask, when known), streaming its output.
fn cargo(root: &Path, args: &[&str], env: Option<(&str, OsString)>) -> Result<()> {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    println!("$ cargo {}", args.join(" "));
    let mut cmd = Command::new(&program);
    cmd.args(args).current_dir(root).stdin(Stdio::null());
    // `cargo run` hands xtask its own package's variables; the nested cargo must not see them.
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(is_xtask_package_var) {
            cmd.env_remove(key);
        }
    }
    if let Some((key, value)) = env {
        println!("  ({key}={})", Path::new(&value).display());
        cmd.env(key, value);
    }
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {}", Path::new(&program).display()))?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

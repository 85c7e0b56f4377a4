//! `cargo xtask test`: everything CI runs, in order, stopping at the first failing step.
//!
//! 1. deps — install the pinned test servers ([`crate::deps::install`]);
//! 2. fmt — `cargo fmt --all -- --check`;
//! 3. clippy — `cargo clippy --workspace --all-targets --all-features -- -D warnings`;
//! 4. compat — the compat-matrix check ([`crate::compat::check`]);
//! 5. test — `cargo test --workspace --all-features` (doc tests included), with `WEIR_TEST_SERVERS_ENV` set to
//!    the absolute path of `servers.env`.
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
    let total = if options.quick { 3 } else { 5 };
    let mut steps = Steps {
        total,
        done: Vec::new(),
    };
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
        cargo(
            root,
            &["test", "--workspace", "--all-features"],
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
}

impl Steps {
    fn run<T>(&mut self, name: &'static str, step: impl FnOnce() -> Result<T>) -> Result<T> {
        println!("\n==> [{}/{}] {name}", self.done.len() + 1, self.total);
        let start = Instant::now();
        let result = step();
        let elapsed = start.elapsed();
        match result {
            Ok(value) => {
                println!("<== {name}: ok in {}", seconds(elapsed));
                self.done.push((name, elapsed));
                Ok(value)
            }
            Err(error) => {
                eprintln!("<== {name}: FAILED after {}", seconds(elapsed));
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

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
    if let Some(warning) = low_disk_warning(root) {
        eprintln!("{warning}");
    }
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
    let parts: Vec<String> = [("workspace", path), ("temp", tmp.as_path())]
        .into_iter()
        .map(|(what, p)| match free_kib(p) {
            Some(kib) => format!("{what} {:.1} GiB", kib as f64 / (1024.0 * 1024.0)),
            None => format!("{what} unknown"),
        })
        .collect();
    format!("free disk: {}", parts.join(", "))
}

/// The free KiB of the filesystem holding `path` (`df -Pk`), `None` when `df` cannot tell.
fn free_kib(path: &Path) -> Option<u64> {
    let output = Command::new("df")
        .args(["-Pk", "--"])
        .arg(path)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
}

/// What a full run needs free: about 8 GiB of `target/` from a cold start, the test
/// servers' and the tests' files, and the 1% of the disk SeaweedFS keeps free, with room.
const DISK_NEEDED_KIB: u64 = 12 * 1024 * 1024;

/// A warning when the workspace's or the temp directory's disk has less free space than a
/// full run needs.
fn low_disk_warning(root: &Path) -> Option<String> {
    let tmp = std::env::temp_dir();
    let low: Vec<String> = [("workspace", root), ("temp", tmp.as_path())]
        .into_iter()
        .filter_map(|(what, p)| {
            let kib = free_kib(p)?;
            (kib < DISK_NEEDED_KIB).then(|| format!("{what} ({} GiB)", kib / (1024 * 1024)))
        })
        .collect();
    (!low.is_empty()).then(|| {
        format!(
            "warning: little free disk for a full run: {}; it needs about {} GiB (a cold \
             `target/`, the tests' files, and SeaweedFS takes no writes below 1% free). Free \
             some (`cargo clean` elsewhere, old `target/` directories) if the S3 tests time out.",
            low.join(", "),
            DISK_NEEDED_KIB / (1024 * 1024)
        )
    })
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{free_disk, free_kib, low_disk_warning, DISK_NEEDED_KIB};

    #[test]
    fn free_disk_is_read_from_df_and_unknown_for_a_missing_path() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        assert!(free_kib(root).is_some_and(|kib| kib > 0));
        assert_eq!(free_kib(&root.join("no such directory")), None);
        let line = free_disk(root);
        assert!(line.starts_with("free disk: workspace "), "{line}");
        assert!(line.contains(" GiB, temp "), "{line}");
    }

    #[test]
    fn the_warning_names_each_disk_below_what_a_run_needs() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let free = free_kib(root).unwrap_or(0);
        let tmp = free_kib(&std::env::temp_dir()).unwrap_or(0);
        let warning = low_disk_warning(root);
        assert_eq!(
            warning.is_some(),
            free < DISK_NEEDED_KIB || tmp < DISK_NEEDED_KIB,
            "{warning:?}"
        );
        if let Some(w) = warning {
            assert!(w.contains("SeaweedFS"), "{w}");
        }
    }
}

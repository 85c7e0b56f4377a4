//! `weir test [<connector>]`: runs a connector crate's tests (its conformance suites, wired
//! with `weir_testkit::source_suite!` / `sink_suite!`) into a fresh report directory, prints
//! the per-case table and the path of the JSON report, and copies the reports to
//! `<target>/weir-testkit/` where `weir publish` looks for them.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;

use crate::workspace::{cargo_command, connector, target_dir, Package};
use crate::Exit;

/// Options of `weir test`.
#[derive(Debug, Clone, clap::Args)]
pub struct TestArgs {
    /// The connector (`kafka` or `weir-connector-kafka`) [default: the crate in the current
    /// directory].
    pub connector: Option<String>,
    /// Exactly-once fault-injection trials of the sink suite (WEIR_TESTKIT_FAULT_TRIALS).
    #[arg(long, value_name = "N")]
    pub fault_trials: Option<u32>,
    /// Show cargo's output as it runs instead of keeping it in a log file.
    #[arg(long)]
    pub verbose: bool,
}

/// The reports of one run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The aggregate JSON reports written (one per connector context).
    pub reports: Vec<PathBuf>,
    /// Whether `cargo test` succeeded.
    pub cargo_ok: bool,
    /// Failed cases over all reports.
    pub failed_cases: u64,
}

/// Runs `weir test`.
pub fn command(args: &TestArgs) -> Exit {
    let (package, repo) = match connector(args.connector.as_deref()) {
        Ok(found) => found,
        Err(e) => {
            eprintln!("weir: {e}");
            return Exit::Invalid;
        }
    };
    match run_tests(&package, repo.as_deref(), args) {
        Ok(outcome) if outcome.cargo_ok && outcome.failed_cases == 0 => Exit::Ok,
        Ok(_) => Exit::Failed,
        Err(e) => {
            eprintln!("weir: {e}");
            Exit::Failed
        }
    }
}

/// Runs the tests of `package` and prints the reports.
pub fn run_tests(
    package: &Package,
    repo: Option<&Path>,
    args: &TestArgs,
) -> Result<Outcome, String> {
    let target = target_dir(&package.dir);
    let runs = target.join("weir-testkit").join("runs").join(&package.name);
    let _ = fs::remove_dir_all(&runs);
    fs::create_dir_all(&runs).map_err(|e| format!("cannot create {}: {e}", runs.display()))?;
    let log_path = runs.join("cargo-test.log");
    let (dir, mut cargo_args) = match repo {
        Some(root) if package.dir.starts_with(root) => (
            root.to_path_buf(),
            vec!["test".to_owned(), "-p".to_owned(), package.name.clone()],
        ),
        _ => (package.dir.clone(), vec!["test".to_owned()]),
    };
    cargo_args.push("--all-features".to_owned());
    eprintln!(
        "weir: testing {} {}: cargo {} (in {})",
        package.name,
        package.version,
        cargo_args.join(" "),
        dir.display()
    );
    let mut cmd = cargo_command(&dir);
    cmd.args(&cargo_args)
        .env("WEIR_TESTKIT_REPORT_DIR", &runs)
        .stdin(Stdio::null());
    if let Some(n) = args.fault_trials {
        cmd.env("WEIR_TESTKIT_FAULT_TRIALS", n.to_string());
    }
    let status = if args.verbose {
        cmd.status()
    } else {
        let log = fs::File::create(&log_path)
            .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
        let log2 = log
            .try_clone()
            .map_err(|e| format!("cannot write {}: {e}", log_path.display()))?;
        cmd.stdout(log).stderr(log2).status()
    }
    .map_err(|e| format!("cannot run cargo: {e}"))?;
    let cargo_ok = status.success();
    if !cargo_ok && !args.verbose {
        let log = fs::read_to_string(&log_path).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines.len().saturating_sub(40);
        eprintln!(
            "weir: cargo test failed ({status}); the end of {}:",
            log_path.display()
        );
        for line in lines.get(tail..).unwrap_or_default() {
            eprintln!("  {line}");
        }
    }
    let mut reports = Vec::new();
    let mut failed_cases = 0;
    let canonical = target.join("weir-testkit");
    forget_reports(&canonical, &package.name);
    let mut entries: Vec<PathBuf> = fs::read_dir(&runs)
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    entries.sort();
    for path in entries {
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let Ok(report) = fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<Value>(&b).map_err(|e| e.to_string()))
        else {
            continue;
        };
        let (table, failed) = render(&report);
        print!("{table}");
        failed_cases += failed;
        if let Some(name) = path.file_name() {
            let _ = fs::create_dir_all(&canonical);
            let _ = fs::copy(&path, canonical.join(name));
            let md = path.with_extension("md");
            if let Some(md_name) = md.file_name() {
                let _ = fs::copy(&md, canonical.join(md_name));
            }
        }
        println!("report: {}\n", path.display());
        reports.push(path);
    }
    if reports.is_empty() {
        eprintln!(
            "weir: no conformance report was written for {}: wire the suites in its tests/ \
             (weir_testkit::source_suite! / sink_suite!, see CONTRIBUTING.md)",
            package.name
        );
        return Ok(Outcome {
            reports,
            cargo_ok: false,
            failed_cases,
        });
    }
    println!(
        "weir: {} {}: cargo test {}, {failed_cases} failed case{}",
        package.name,
        package.version,
        if cargo_ok { "passed" } else { "FAILED" },
        if failed_cases == 1 { "" } else { "s" }
    );
    Ok(Outcome {
        reports,
        cargo_ok,
        failed_cases,
    })
}

/// Removes the aggregate reports of `crate_name` from `dir` (they are replaced by this run's).
fn forget_reports(dir: &Path, crate_name: &str) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let ours = fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .is_some_and(|r| {
                r.pointer("/crate_info/name").and_then(Value::as_str) == Some(crate_name)
            });
        if ours {
            let _ = fs::remove_file(&path);
            let _ = fs::remove_file(path.with_extension("md"));
        }
    }
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn number(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// The table of one aggregate report, and its number of failed cases.
pub fn render(report: &Value) -> (String, u64) {
    let mut out = String::new();
    let totals = report.get("totals").cloned().unwrap_or(Value::Null);
    let info = report.get("crate_info").cloned().unwrap_or(Value::Null);
    let _ = writeln!(
        out,
        "{} ({} {}, API line {}): {} passed, {} failed, {} not applicable",
        text(report, "connector"),
        text(&info, "name"),
        text(&info, "version"),
        text(report, "api_line"),
        number(&totals, "passed"),
        number(&totals, "failed"),
        number(&totals, "not_applicable"),
    );
    let cases = report
        .get("cases")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let width = cases
        .iter()
        .map(|c| text(c, "case").len())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(
        out,
        "  {:<12} {:<width$} {:<13} {:<14} {:>7}",
        "SUITE", "CASE", "MODE", "RESULT", "TIME"
    );
    for c in &cases {
        let status = match text(c, "status") {
            "passed" => "passed",
            "failed" => "FAILED",
            "not-applicable" => "not applicable",
            other => other,
        };
        let _ = writeln!(
            out,
            "  {:<12} {:<width$} {:<13} {:<14} {:>6.1}s",
            text(c, "suite"),
            text(c, "case"),
            c.get("mode").and_then(Value::as_str).unwrap_or("-"),
            status,
            number(c, "duration_ms") as f64 / 1000.0
        );
        for finding in c
            .get("findings")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let _ = writeln!(
                out,
                "      - {}: {}",
                text(finding, "kind"),
                text(finding, "message")
            );
        }
    }
    (out, number(&totals, "failed"))
}

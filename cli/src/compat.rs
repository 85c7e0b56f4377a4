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
    /// With --run: only these API lines (e.g. `1.0`).
    #[arg(long = "api-line", value_name = "LINE")]
    pub api_lines: Vec<String>,
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

/// Builds and tests every connector's current release on each API line it claims: the line of
/// this tree's `connector-api/` in the workspace itself, every other line in a workspace of its
/// own that takes that line's platform from `compat/platform/<line>/` (see
/// [`crate::compat_line`]).
fn run(root: &std::path::Path, matrix: &std::path::Path, args: &CheckArgs) -> Exit {
    let text = std::fs::read_to_string(matrix).unwrap_or_default();
    let Ok(parsed) = toml::from_str::<weir_compat::Matrix>(&text) else {
        eprintln!("weir: cannot read {}", matrix.display());
        return Exit::Failed;
    };
    let tree_line = crate::workspace::package(&root.join("connector-api"))
        .ok()
        .and_then(|p| {
            let mut parts = p.version.split('.');
            Some(format!("{}.{}", parts.next()?, parts.next()?))
        })
        .unwrap_or_else(|| weir_connector_api::API_LINE.to_owned());
    // Line → the crates to build on it. A source release built for several lines has one
    // entry per line (`1.0.0-1.0`, `1.0.0-1.1`): every line of every entry of the crate's source
    // version counts.
    let mut by_line: std::collections::BTreeMap<String, Vec<(String, String)>> =
        std::collections::BTreeMap::new();
    let mut claimed = std::collections::BTreeSet::new();
    // A filter that matches nothing is a mistake, not an empty run that passes.
    let unknown: Vec<&String> = args
        .connectors
        .iter()
        .filter(|f| {
            !parsed
                .connectors
                .iter()
                .any(|(name, entry)| *f == name || **f == entry.crate_name)
        })
        .collect();
    if !unknown.is_empty() {
        let known: Vec<&String> = parsed.connectors.keys().collect();
        eprintln!(
            "weir: no connector {unknown:?} in {}: name one of {known:?} (or its crate name)",
            matrix.display()
        );
        return Exit::Failed;
    }
    for (name, entry) in &parsed.connectors {
        if !args.connectors.is_empty()
            && !args
                .connectors
                .iter()
                .any(|f| f == name || *f == entry.crate_name)
        {
            continue;
        }
        let Ok(package) = crate::workspace::package(&root.join("connectors").join(name)) else {
            continue;
        };
        let source = package
            .version
            .split('-')
            .next()
            .unwrap_or_default()
            .to_owned();
        for release in entry.releases.iter().filter(|r| {
            r.version.split('-').next() == Some(source.as_str()) && r.status == "supported"
        }) {
            for line in &release.api_lines {
                claimed.insert(line.clone());
                if args.api_lines.is_empty() || args.api_lines.contains(line) {
                    let crates = by_line.entry(line.clone()).or_default();
                    if !crates.iter().any(|(c, _)| *c == entry.crate_name) {
                        crates.push((entry.crate_name.clone(), release.version.clone()));
                    }
                }
            }
        }
    }
    if let Some(line) = args.api_lines.iter().find(|l| !by_line.contains_key(*l)) {
        eprintln!(
            "weir: no supported release of the chosen connectors claims API line {line}: \
             the lines claimed are {claimed:?}"
        );
        return Exit::Failed;
    }
    let mut failed = Vec::new();
    for (line, crates) in &by_line {
        let (dir, target) = if *line == tree_line {
            (root.to_path_buf(), None)
        } else if args.dry_run {
            (
                root.join("target/compat").join(format!("line-{line}")),
                None,
            )
        } else {
            let names: Vec<String> = crates.iter().map(|(c, _)| c.clone()).collect();
            match crate::compat_line::prepare(root, line, &names) {
                Ok(ws) => {
                    println!(
                        "compat: API line {line}: a workspace with the line's platform at {}",
                        ws.root.display()
                    );
                    (ws.root, Some(ws.target_dir))
                }
                Err(e) => {
                    println!("compat: API line {line}: cannot prepare its workspace: {e}");
                    failed.extend(crates.iter().map(|(c, _)| format!("{c} on {line}")));
                    continue;
                }
            }
        };
        for (crate_name, version) in crates {
            let command = format!("cargo test -p {crate_name} --all-features");
            if args.dry_run {
                println!(
                    "compat: {crate_name} {version} on API line {line}: would run `{command}` in {}",
                    dir.display()
                );
                continue;
            }
            println!("compat: {crate_name} {version} on API line {line}: `{command}`");
            let run = || {
                let mut cargo = cargo_command(&dir);
                cargo.args(["test", "-p", crate_name, "--all-features"]);
                if let Some(target) = &target {
                    cargo.env("CARGO_TARGET_DIR", target);
                }
                run_tests(cargo)
            };
            let mut outcome = run();
            if outcome == TestOutcome::OnlyInconclusive {
                // A conformance case that could not judge (the job ended before the stop it
                // wanted to test) is not a failure of the connector; a loaded machine makes
                // that likelier for the older testkits. One more run decides.
                println!(
                    "compat: {crate_name} on {line}: every failure was inconclusive (the runs \
                     were too fast to judge); running its tests once more"
                );
                outcome = run();
            }
            if outcome == TestOutcome::Passed {
                println!("compat: {crate_name} on {line}: OK");
            } else {
                println!("compat: {crate_name} on {line}: FAILED");
                failed.push(format!("{crate_name} on {line}"));
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

/// How a connector's tests ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TestOutcome {
    Passed,
    /// Every failing test said its result was inconclusive (the conformance testkit's
    /// "inconclusive: ..." finding), and nothing else failed.
    OnlyInconclusive,
    Failed,
}

/// Runs `cargo` (a `cargo test`), passing its standard output through while reading each
/// failing test's report.
fn run_tests(mut cargo: std::process::Command) -> TestOutcome {
    use std::io::{BufRead, BufReader};
    cargo.stdout(std::process::Stdio::piped());
    let Ok(mut child) = cargo.spawn() else {
        return TestOutcome::Failed;
    };
    let mut reports = FailureReports::default();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("{line}");
            reports.read(&line);
        }
    }
    match child.wait() {
        Ok(status) if status.success() => TestOutcome::Passed,
        _ if reports.only_inconclusive() => TestOutcome::OnlyInconclusive,
        _ => TestOutcome::Failed,
    }
}

/// The failing tests' reports in libtest's output (`---- name stdout ----` blocks): whether
/// each says it was inconclusive.
#[derive(Debug, Default)]
struct FailureReports {
    /// Per report: whether it said "inconclusive:".
    inconclusive: Vec<bool>,
    in_report: bool,
}

impl FailureReports {
    fn read(&mut self, line: &str) {
        if line.starts_with("---- ") && line.ends_with(" stdout ----") {
            self.inconclusive.push(false);
            self.in_report = true;
        } else if line == "failures:" || line.starts_with("test result:") {
            self.in_report = false;
        } else if self.in_report && line.trim_start().starts_with("- inconclusive:") {
            if let Some(last) = self.inconclusive.last_mut() {
                *last = true;
            }
        }
    }

    fn only_inconclusive(&self) -> bool {
        !self.inconclusive.is_empty() && self.inconclusive.iter().all(|i| *i)
    }
}

#[cfg(test)]
mod tests {
    use super::FailureReports;

    fn read(output: &str) -> FailureReports {
        let mut reports = FailureReports::default();
        for line in output.lines() {
            reports.read(line);
        }
        reports
    }

    #[test]
    fn only_reports_that_all_say_inconclusive_count_as_inconclusive() {
        let inconclusive =
            "failures:\n\n---- a stdout ----\nx: FAILED in 0.9 s\n  - inconclusive: \
                            the job finished before it could be stopped\n\n---- b stdout ----\n  \
                            - inconclusive: too fast\n\nfailures:\n    a\n    b\n";
        assert!(read(inconclusive).only_inconclusive());
        let mixed = "---- a stdout ----\n  - inconclusive: too fast\n---- b stdout ----\n\
                     thread 'b' panicked at src/lib.rs:1:1:\nassertion failed\nfailures:\n";
        assert!(!read(mixed).only_inconclusive());
        // A compile error or a crash prints no report: not inconclusive.
        assert!(!read("error[E0425]: cannot find value\n").only_inconclusive());
        // "inconclusive:" outside a failure report does not count.
        let outside = "- inconclusive: printed by a passing test\n---- a stdout ----\nboom\n";
        assert!(!read(outside).only_inconclusive());
    }
}

//! `cargo xtask bench-peers`: Weir side by side with Apache Flink 2.3 on the same jobs, same
//! machine, same run (issue 18). The harness lives in `benches/peers/flink/` (see its README);
//! this task sets it up and runs it:
//!
//! 1. java — a JDK 17 (`$JAVA_HOME`, else `java`/`javac` on `PATH`, else `/usr/lib/jvm/*17*`);
//! 2. flink — a Python 3.9–3.12 venv in `target/bench-peers/venv` holding `apache-flink==2.3.0`
//!    from PyPI (its jars; reused when present);
//! 3. runner — `RunSql.java` and its row-count reporter compiled against those jars;
//! 4. weir — `cargo build --release -p weir-cli` (or `--weir-bin`);
//! 5. rounds — `run_rounds.py`: Weir and Flink interleaved, each under `/usr/bin/time -v`, every
//!    run's row count checked (a wrong count stops the benchmark);
//! 6. results — `parse_results.py`: `target/bench-peers/<tag>/results.md`, the table printed.
//!
//! It is not part of `cargo xtask test`: a full run takes about an hour.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};

/// The PyPI release of Flink the benchmark runs (its `apache-flink-libraries` holds the jars).
pub const FLINK_VERSION: &str = "2.3.0";
/// The Java feature release Flink runs on.
pub const JAVA_FEATURE: u32 = 17;
/// The Python minor versions `apache-flink` publishes wheels for.
pub const PYTHON_MINORS: std::ops::RangeInclusive<u32> = 9..=12;
/// The row-count factor of `--quick` (a, b: 1 M rows; c: 400 k).
pub const QUICK_SCALE: f64 = 0.02;

/// Options of `cargo xtask bench-peers`.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Interleaved rounds per job and parallelism.
    #[arg(long, default_value_t = 7)]
    pub rounds: u32,
    /// The first round to run: adds rounds to an earlier run of the same --tag.
    #[arg(long, default_value_t = 1)]
    pub start: u32,
    /// The jobs, comma-separated (a, b, c: see benches/peers/flink/README.md).
    #[arg(long, default_value = "a,b,c")]
    pub jobs: String,
    /// The parallelisms, comma-separated.
    #[arg(long, default_value = "1,2")]
    pub parallelism: String,
    /// Multiplies every job's row count (a and b: 50 M rows, c: 20 M).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// A smoke run: one round at 1/50 of the rows. Its numbers mean nothing (Flink's JIT warm-up
    /// dominates); it proves the harness works end to end.
    #[arg(long)]
    pub quick: bool,
    /// Results go to target/bench-peers/<TAG> [default: the commit, or `quick`].
    #[arg(long)]
    pub tag: Option<String>,
    /// Run this weir binary instead of building target/release/weir.
    #[arg(long, value_name = "PATH")]
    pub weir_bin: Option<PathBuf>,
    /// With --weir-bin: the commit it was built from (recorded with the results).
    #[arg(long, value_name = "REV")]
    pub weir_commit: Option<String>,
    /// Keep every run's CSV output and checkpoints (deleted after the row check by default).
    #[arg(long)]
    pub keep_output: bool,
}

impl Options {
    /// The rounds and row scale after `--quick`.
    pub fn effective_rounds_and_scale(&self) -> (u32, f64) {
        if self.quick {
            (1, QUICK_SCALE)
        } else {
            (self.rounds, self.scale)
        }
    }
}

/// Runs the benchmark under the workspace `root`; returns the results directory.
pub fn run(root: &Path, options: &Options) -> Result<PathBuf> {
    let (rounds, scale) = options.effective_rounds_and_scale();
    if rounds < options.start || !scale.is_finite() || scale <= 0.0 {
        bail!(
            "nothing to run: --rounds {rounds}, --start {}, --scale {scale}",
            options.start
        );
    }
    let harness = root.join("benches/peers/flink");
    let work = root.join("target/bench-peers");
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;

    step(1, "java");
    let jdk = find_jdk()?;
    println!("{} ({})", jdk.java.display(), jdk.version);

    step(2, "flink");
    let venv = work.join("venv");
    let python = flink_venv(&venv)?;
    let pyflink = probe(
        Command::new(&python).args([
            "-c",
            "import importlib.util; print(importlib.util.find_spec('pyflink').submodule_search_locations[0])",
        ]),
    )
    .context("apache-flink is installed but its pyflink package cannot be found")?;
    let pyflink = PathBuf::from(pyflink);
    println!("{}", pyflink.display());

    step(3, "runner");
    let classes = work.join("flink-classes");
    compile_runner(&jdk, &harness.join("java"), &pyflink, &classes)?;

    step(4, "weir");
    let (weir, commit) = if let Some(bin) = &options.weir_bin {
        let commit = options
            .weir_commit
            .clone()
            .unwrap_or_else(|| format!("unknown (--weir-bin {})", bin.display()));
        (bin.clone(), commit)
    } else {
        let commit = tree_commit(root);
        run_cmd(
            Command::new(std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo")))
                .args(["build", "--release", "-p", "weir-cli"])
                .current_dir(root),
            "cargo build --release -p weir-cli",
        )?;
        (root.join("target/release/weir"), commit)
    };
    if !weir.is_file() {
        bail!("the weir binary {} does not exist", weir.display());
    }
    println!("{} (commit {commit})", weir.display());

    step(5, "rounds");
    let tag = options.tag.clone().unwrap_or_else(|| {
        if options.quick {
            "quick".to_owned()
        } else {
            commit.split_whitespace().next().unwrap_or("run").to_owned()
        }
    });
    let out = work.join(&tag);
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    // A copy: a later `cargo build` must not swap the binary between rounds.
    let weir_copy = out.join("weir");
    std::fs::copy(&weir, &weir_copy)
        .with_context(|| format!("cannot copy {} to {}", weir.display(), weir_copy.display()))?;
    let weir = weir_copy;
    let mut rounds_cmd = Command::new(&python);
    rounds_cmd
        .arg(harness.join("run_rounds.py"))
        .arg("--out")
        .arg(&out)
        .arg("--weir")
        .arg(&weir)
        .arg("--java")
        .arg(&jdk.java)
        .arg("--flink-classes")
        .arg(&classes)
        .arg("--pyflink")
        .arg(&pyflink)
        .args([
            "--rounds",
            &rounds.to_string(),
            "--start",
            &options.start.to_string(),
        ])
        .args([
            "--jobs",
            &options.jobs,
            "--parallelism",
            &options.parallelism,
        ])
        .args(["--scale", &scale.to_string()])
        .arg("--meta")
        .arg(format!("weir_commit={commit}"));
    if options.quick {
        rounds_cmd
            .arg("--meta")
            .arg("mode=quick (smoke run: the numbers mean nothing)");
    }
    if options.keep_output {
        rounds_cmd.arg("--keep-output");
    }
    run_cmd(&mut rounds_cmd, "run_rounds.py")?;

    step(6, "results");
    let parse = |details: bool| {
        let mut cmd = Command::new(&python);
        cmd.arg(harness.join("parse_results.py")).arg(&out);
        if details {
            cmd.arg("--details");
        }
        cmd.stdin(Stdio::null())
            .output()
            .context("cannot run parse_results.py")
    };
    let full = parse(true)?;
    let results = out.join("results.md");
    std::fs::write(&results, &full.stdout)
        .with_context(|| format!("cannot write {}", results.display()))?;
    let summary = parse(false)?;
    print!("{}", String::from_utf8_lossy(&summary.stdout));
    eprint!("{}", String::from_utf8_lossy(&summary.stderr));
    if !summary.status.success() {
        bail!(
            "some runs failed their row-count check (see above and {})",
            results.display()
        );
    }
    println!("\nper-run tables: {}", results.display());
    Ok(out)
}

fn step(n: u32, name: &str) {
    println!("\n==> [{n}/6] {name}");
}

/// A JDK: `java` and `javac` of one installation.
#[derive(Debug, Clone)]
pub struct Jdk {
    /// The `java` launcher.
    pub java: PathBuf,
    /// The `javac` compiler next to it.
    pub javac: PathBuf,
    /// What `java -version` printed first.
    pub version: String,
}

/// The first JDK 17 among `$JAVA_HOME` (only it, if set), `PATH`, and `/usr/lib/jvm/*17*`.
pub fn find_jdk() -> Result<Jdk> {
    let mut homes: Vec<Option<PathBuf>> = Vec::new();
    if let Some(home) = std::env::var_os("JAVA_HOME") {
        homes.push(Some(PathBuf::from(home)));
    } else {
        homes.push(None); // PATH
        if let Ok(dirs) = std::fs::read_dir("/usr/lib/jvm") {
            let mut found: Vec<PathBuf> = dirs
                .filter_map(|d| d.ok().map(|d| d.path()))
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().contains("17"))
                })
                .collect();
            found.sort();
            homes.extend(found.into_iter().map(Some));
        }
    }
    let mut seen = Vec::new();
    for home in homes {
        let bin = |name: &str| {
            home.as_ref()
                .map_or_else(|| PathBuf::from(name), |h| h.join("bin").join(name))
        };
        let (java, javac) = (bin("java"), bin("javac"));
        let Ok(out) = Command::new(&java)
            .arg("-version")
            .stdin(Stdio::null())
            .output()
        else {
            seen.push(format!("{}: does not run", java.display()));
            continue;
        };
        let text = String::from_utf8_lossy(&out.stderr).into_owned();
        let first = text.lines().next().unwrap_or_default().trim().to_owned();
        let javac_ok = Command::new(&javac)
            .arg("-version")
            .stdin(Stdio::null())
            .output()
            .ok()
            .map(|o| {
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                )
            })
            .and_then(|v| java_feature(&v))
            == Some(JAVA_FEATURE);
        match java_feature(&text) {
            Some(JAVA_FEATURE) if javac_ok => {
                return Ok(Jdk {
                    java,
                    javac,
                    version: first,
                })
            }
            Some(JAVA_FEATURE) => seen.push(format!("{}: a JRE 17 without javac", java.display())),
            _ => seen.push(format!("{}: {first}", java.display())),
        }
    }
    Err(anyhow!(
        "no JDK {JAVA_FEATURE} found ({}): Flink {FLINK_VERSION} runs here on Java {JAVA_FEATURE}; \
         install a JDK 17 (Debian: apt-get install openjdk-17-jdk-headless) or set JAVA_HOME to one",
        if seen.is_empty() { "nothing to try".to_owned() } else { seen.join("; ") }
    ))
}

/// The feature release in `java -version` / `javac -version` output: `openjdk version
/// "17.0.15"` → 17, `java version "1.8.0_412"` → 8, `javac 17.0.15` → 17.
pub fn java_feature(version_output: &str) -> Option<u32> {
    let line = version_output
        .lines()
        .find(|l| l.contains("version \"") || l.starts_with("javac "))?;
    let version = match line.split_once('"') {
        Some((_, rest)) => rest.split('"').next()?,
        None => line.strip_prefix("javac ")?.trim(),
    };
    let mut parts = version.split(['.', '-', '+', '_']);
    let first: u32 = parts.next()?.parse().ok()?;
    if first == 1 {
        parts.next()?.parse().ok()
    } else {
        Some(first)
    }
}

/// The venv's python, with `apache-flink==FLINK_VERSION` installed (created or reused).
fn flink_venv(venv: &Path) -> Result<PathBuf> {
    let python = venv.join("bin/python");
    let installed = |python: &Path| {
        probe(Command::new(python).args([
            "-c",
            "import importlib.metadata as m; print(m.version('apache-flink'), m.version('apache-flink-libraries'))",
        ]))
        .ok()
    };
    let want = format!("{FLINK_VERSION} {FLINK_VERSION}");
    if python.is_file() && installed(&python).as_deref() == Some(want.as_str()) {
        println!("reusing {} (apache-flink {FLINK_VERSION})", venv.display());
        return Ok(python);
    }
    if !python.is_file() {
        let base = find_python()?;
        println!("creating {} with {}", venv.display(), base.display());
        run_cmd(
            Command::new(&base).args(["-m", "venv", "--clear"]).arg(venv),
            "python -m venv (is Python's venv module installed? Debian: apt-get install python3-venv)",
        )?;
    }
    // Only the jars are used (RunSql runs Flink in a JVM; no PyFlink job), so the Python
    // dependencies of apache-flink (apache-beam, pandas, …) are left out.
    let pins = [
        format!("apache-flink=={FLINK_VERSION}"),
        format!("apache-flink-libraries=={FLINK_VERSION}"),
    ];
    run_cmd(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "--no-deps",
            ])
            .args(&pins),
        &format!(
            "pip install --no-deps {} (PyPI must be reachable)",
            pins.join(" ")
        ),
    )?;
    match installed(&python) {
        Some(v) if v == want => Ok(python),
        other => bail!(
            "after pip install, {} reports apache-flink {other:?}, want {FLINK_VERSION}",
            venv.display()
        ),
    }
}

/// A Python that apache-flink has wheels for: `$WEIR_BENCH_PYTHON`, else the first of
/// python3, python3.12 … python3.9 on `PATH` with a version in [`PYTHON_MINORS`].
fn find_python() -> Result<PathBuf> {
    let candidates: Vec<OsString> = match std::env::var_os("WEIR_BENCH_PYTHON") {
        Some(p) => vec![p],
        None => std::iter::once("python3".to_owned())
            .chain(PYTHON_MINORS.rev().map(|m| format!("python3.{m}")))
            .map(OsString::from)
            .collect(),
    };
    let mut seen = Vec::new();
    for candidate in candidates {
        let Ok(v) = probe(Command::new(&candidate).args([
            "-c",
            "import sys; print(sys.version_info[0], sys.version_info[1])",
        ])) else {
            continue;
        };
        if python_fits(&v) {
            return Ok(PathBuf::from(candidate));
        }
        seen.push(format!(
            "{} is {}",
            Path::new(&candidate).display(),
            v.replace(' ', ".")
        ));
    }
    bail!(
        "no Python 3.{}–3.{} found{}: apache-flink {FLINK_VERSION} publishes wheels for those \
         only; install one with its venv module (Debian: apt-get install python3 python3-venv) or \
         set WEIR_BENCH_PYTHON to one",
        PYTHON_MINORS.start(),
        PYTHON_MINORS.end(),
        if seen.is_empty() {
            String::new()
        } else {
            format!(" ({})", seen.join(", "))
        }
    )
}

/// Whether `major minor` (as printed by the probe) is a Python apache-flink supports.
pub fn python_fits(major_minor: &str) -> bool {
    let mut it = major_minor.split_whitespace().map(str::parse::<u32>);
    matches!((it.next(), it.next()), (Some(Ok(3)), Some(Ok(minor))) if PYTHON_MINORS.contains(&minor))
}

/// Compiles the Java sources of `src` into `classes` with the reporter's service file.
fn compile_runner(jdk: &Jdk, src: &Path, pyflink: &Path, classes: &Path) -> Result<()> {
    let mut sources: Vec<PathBuf> = std::fs::read_dir(src)
        .with_context(|| format!("cannot read {}", src.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "java"))
        .collect();
    sources.sort();
    std::fs::create_dir_all(classes)
        .with_context(|| format!("cannot create {}", classes.display()))?;
    run_cmd(
        Command::new(&jdk.javac)
            .arg("-d")
            .arg(classes)
            .arg("-cp")
            .arg(format!("{}/lib/*", pyflink.display()))
            .args(&sources),
        "javac RunSql.java",
    )?;
    let service = "META-INF/services/org.apache.flink.metrics.reporter.MetricReporterFactory";
    std::fs::create_dir_all(classes.join("META-INF/services"))?;
    std::fs::copy(src.join(service), classes.join(service))
        .with_context(|| format!("cannot copy {service} into {}", classes.display()))?;
    println!("{}", classes.display());
    Ok(())
}

/// `HEAD`'s short hash, with a note when tracked files have uncommitted changes.
fn tree_commit(root: &Path) -> String {
    let head = probe(
        Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .current_dir(root),
    );
    let dirty = probe(
        Command::new("git")
            .args(["status", "--porcelain", "--untracked-files=no"])
            .current_dir(root),
    );
    match (head, dirty) {
        (Ok(h), Ok(d)) if d.is_empty() => h,
        (Ok(h), Ok(_)) => format!("{h} (with uncommitted changes)"),
        _ => "unknown (not a git checkout)".to_owned(),
    }
}

/// Runs a command, streaming its output; fails with `what` if it does not succeed.
fn run_cmd(cmd: &mut Command, what: &str) -> Result<()> {
    let status = cmd.stdin(Stdio::null()).status().with_context(|| {
        format!(
            "cannot run {what}: {}",
            Path::new(cmd.get_program()).display()
        )
    })?;
    if !status.success() {
        bail!("{what} failed ({status}); see its output above");
    }
    Ok(())
}

/// A command's trimmed standard output, if it ran and succeeded.
fn probe(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", Path::new(cmd.get_program()).display()))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            Path::new(cmd.get_program()).display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_java_feature_release() {
        assert_eq!(
            java_feature("openjdk version \"17.0.15\" 2025-04-15\nOpenJDK Runtime"),
            Some(17)
        );
        assert_eq!(java_feature("java version \"1.8.0_412\""), Some(8));
        assert_eq!(java_feature("openjdk version \"25\" 2025-09-16"), Some(25));
        assert_eq!(java_feature("javac 17.0.15\n"), Some(17));
        assert_eq!(java_feature("command not found"), None);
    }

    #[test]
    fn only_pythons_with_flink_wheels_fit() {
        assert!(python_fits("3 11"));
        assert!(python_fits("3 9"));
        assert!(!python_fits("3 13"));
        assert!(!python_fits("2 7"));
        assert!(!python_fits("garbage"));
    }

    #[test]
    fn quick_runs_one_small_round() {
        let options = Options {
            rounds: 7,
            start: 1,
            jobs: "a,b,c".to_owned(),
            parallelism: "1,2".to_owned(),
            scale: 1.0,
            quick: true,
            tag: None,
            weir_bin: None,
            weir_commit: None,
            keep_output: false,
        };
        assert_eq!(options.effective_rounds_and_scale(), (1, QUICK_SCALE));
        let full = Options {
            quick: false,
            ..options
        };
        assert_eq!(full.effective_rounds_and_scale(), (7, 1.0));
    }
}

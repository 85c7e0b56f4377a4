//! What every fixture runs on: finding the installed binaries through `servers.env`, free
//! loopback ports, a server process that is killed (and its directory removed) on drop,
//! readiness probes, and one shared instance per process.

use std::fs;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use super::http;
use crate::paths::workspace_root;

/// The variable that names `servers.env` (set by `cargo xtask test`).
pub const SERVERS_ENV_VAR: &str = "WEIR_TEST_SERVERS_ENV";

pub(super) const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a probe that writes data may take (a first write may allocate storage).
pub(super) const WRITE_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The free space of the filesystem that holds `path`, as `df` tells it (for error messages).
pub(super) fn free_disk(path: &Path) -> String {
    let output = Command::new("df")
        .args(["-Pk", "--"])
        .arg(path)
        .stderr(Stdio::null())
        .output();
    let kib = output.ok().and_then(|o| {
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        text.lines()
            .nth(1)
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|v| v.parse::<u64>().ok())
    });
    match kib {
        Some(kib) => format!("{} MiB", kib / 1024),
        None => "unknown (`df` failed)".to_owned(),
    }
}

/// Why a server fixture failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FixtureError {
    /// `servers.env` or a binary is missing.
    #[error("{what} is missing ({detail}): run `cargo xtask deps` to install the test servers")]
    NotInstalled {
        /// What is missing.
        what: String,
        /// Where it was looked for.
        detail: String,
    },
    /// The server could not be started or exited early.
    #[error("{server} failed: {reason}\n--- last lines of {log} ---\n{tail}")]
    Start {
        /// The server.
        server: String,
        /// What happened.
        reason: String,
        /// Its log file.
        log: String,
        /// The end of its log.
        tail: String,
    },
    /// The server did not answer in time.
    #[error(
        "{server} was not ready after {waited:?}: {last}\n--- last lines of {log} ---\n{tail}"
    )]
    NotReady {
        /// The server.
        server: String,
        /// How long it was given.
        waited: Duration,
        /// The last probe's error.
        last: String,
        /// Its log file.
        log: String,
        /// The end of its log.
        tail: String,
    },
    /// A local I/O operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: io::Error,
    },
}

pub(super) fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> FixtureError {
    let what = what.into();
    move |source| FixtureError::Io { what, source }
}

/// The absolute paths of the installed server binaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerBinaries {
    /// The `servers.env` they were read from.
    pub env_file: PathBuf,
    /// `noida-db`.
    pub noida_db: PathBuf,
    /// `weed` (SeaweedFS).
    pub weed: PathBuf,
    /// `osmem-server`.
    pub osmem: PathBuf,
}

impl ServerBinaries {
    /// Finds `servers.env` (see [`servers_env_file`]) and reads it.
    pub fn locate() -> Result<Self, FixtureError> {
        Self::from_env_file(&servers_env_file())
    }

    /// Reads a `servers.env` file (`KEY=/absolute/path` lines) and checks every binary exists.
    pub fn from_env_file(path: &Path) -> Result<Self, FixtureError> {
        let text = read_env_file(path)?;
        Ok(ServerBinaries {
            env_file: path.to_path_buf(),
            noida_db: env_binary(&text, path, "NOIDA_DB_BIN")?,
            weed: env_binary(&text, path, "WEED_BIN")?,
            osmem: env_binary(&text, path, "OSMEM_BIN")?,
        })
    }
}

/// Where `servers.env` is: `WEIR_TEST_SERVERS_ENV`, else
/// `<workspace root>/target/test-servers/servers.env`.
pub fn servers_env_file() -> PathBuf {
    if let Some(path) = std::env::var_os(SERVERS_ENV_VAR) {
        return PathBuf::from(path);
    }
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    workspace_root(&manifest)
        .join("target")
        .join("test-servers")
        .join("servers.env")
}

/// The existing binary that the `servers.env` at `path` names under `key`.
pub fn binary_from_env_file(path: &Path, key: &str) -> Result<PathBuf, FixtureError> {
    env_binary(&read_env_file(path)?, path, key)
}

pub(super) fn read_env_file(path: &Path) -> Result<String, FixtureError> {
    fs::read_to_string(path).map_err(|e| FixtureError::NotInstalled {
        what: "the test servers' servers.env".into(),
        detail: format!("{}: {e}", path.display()),
    })
}

/// The binary under `key` in `text` (read from `path`), which must exist.
pub(super) fn env_binary(text: &str, path: &Path, key: &str) -> Result<PathBuf, FixtureError> {
    let found = text
        .lines()
        .filter_map(|l| l.trim().split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| PathBuf::from(v.trim()));
    match found {
        Some(p) if p.is_file() => Ok(p),
        Some(p) => Err(FixtureError::NotInstalled {
            what: format!("the binary {key}"),
            detail: format!("{} does not exist", p.display()),
        }),
        None => Err(FixtureError::NotInstalled {
            what: format!("the binary {key}"),
            detail: format!("no {key}= line in {}", path.display()),
        }),
    }
}

/// `n` distinct free loopback ports (bound at once, then released).
pub fn free_ports(n: usize) -> Result<Vec<u16>, FixtureError> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<io::Result<Vec<_>>>()
        .map_err(io_err("binding a free port"))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<io::Result<Vec<_>>>()
        .map_err(io_err("reading a free port"))
}

pub(super) fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A started server process with its temporary directory; killed on drop.
#[derive(Debug)]
pub(super) struct ServerProcess {
    name: &'static str,
    pub(super) child: Child,
    log: PathBuf,
    pub(super) dir: tempfile::TempDir,
    /// Files the server leaves outside its directory, removed after it is killed.
    pub(super) leftovers: Vec<PathBuf>,
}

impl ServerProcess {
    pub(super) fn spawn(
        name: &'static str,
        binary: &Path,
        args: &[String],
        envs: &[(&str, &str)],
        dir: tempfile::TempDir,
    ) -> Result<Self, FixtureError> {
        let log = dir.path().join(format!("{name}.log"));
        let out = fs::File::create(&log).map_err(io_err(format!("creating {}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(io_err(format!("opening {}", log.display())))?;
        let mut command = Command::new(binary);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .current_dir(dir.path());
        for (k, v) in envs {
            command.env(k, v);
        }
        let child = command.spawn().map_err(|e| FixtureError::Start {
            server: name.into(),
            reason: format!("cannot run {}: {e}", binary.display()),
            log: log.display().to_string(),
            tail: String::new(),
        })?;
        Ok(ServerProcess {
            name,
            child,
            log,
            dir,
            leftovers: Vec::new(),
        })
    }

    fn tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines
            .get(lines.len().saturating_sub(20)..)
            .unwrap_or_default()
            .join("\n")
    }

    /// Probes until `probe` succeeds, the process exits, or `timeout` passes.
    pub(super) fn wait_ready(
        &mut self,
        timeout: Duration,
        mut probe: impl FnMut() -> Result<(), String>,
    ) -> Result<(), FixtureError> {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(FixtureError::Start {
                    server: self.name.into(),
                    reason: format!("exited early with {status}"),
                    log: self.log.display().to_string(),
                    tail: self.tail(),
                });
            }
            let last = match probe() {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if started.elapsed() > timeout {
                return Err(FixtureError::NotReady {
                    server: self.name.into(),
                    waited: timeout,
                    last,
                    log: self.log.display().to_string(),
                    tail: self.tail(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        for file in self.leftovers.drain(..) {
            let _ = fs::remove_file(file);
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

pub(super) fn tcp_probe(addr: SocketAddr) -> Result<(), String> {
    TcpStream::connect_timeout(&addr, PROBE_TIMEOUT)
        .map(drop)
        .map_err(|e| format!("connect {addr}: {e}"))
}

pub(super) fn health_probe(addr: SocketAddr) -> Result<(), String> {
    tcp_probe(addr)?;
    let r = http::get(addr, "/_cluster/health", PROBE_TIMEOUT)
        .map_err(|e| format!("GET /_cluster/health: {e}"))?;
    if r.status == 200 && r.text().contains("\"status\"") {
        Ok(())
    } else {
        Err(format!("GET /_cluster/health: {} {}", r.status, r.text()))
    }
}

pub(super) fn tempdir(name: &str) -> Result<tempfile::TempDir, FixtureError> {
    tempfile::Builder::new()
        .prefix(&format!("weir-{name}-"))
        .tempdir()
        .map_err(io_err("creating a temporary directory"))
}

/// The process-wide instance in `slot` while anyone holds it, else a new one from `start`.
pub(super) fn shared<T>(
    slot: &'static Mutex<Weak<T>>,
    start: impl FnOnce() -> Result<T, FixtureError>,
) -> Result<Arc<T>, FixtureError> {
    let mut weak = slot.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(server) = weak.upgrade() {
        return Ok(server);
    }
    let server = Arc::new(start()?);
    *weak = Arc::downgrade(&server);
    Ok(server)
}

pub(super) fn port_at(ports: &[u16], i: usize) -> Result<u16, FixtureError> {
    ports.get(i).copied().ok_or_else(|| FixtureError::Io {
        what: "choosing free ports".into(),
        source: io::Error::other(format!("got {} ports, needed more than {i}", ports.len())),
    })
}

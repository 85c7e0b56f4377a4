//! Fixtures that start the pinned test servers on free loopback ports with temporary
//! directories, wait until they answer at the protocol level, and kill them (by the PID of the
//! real binary) when dropped.
//!
//! | fixture | server | protocols | readiness check |
//! |---|---|---|---|
//! | [`NoidaDb`] | `noida-db` 0.2.3 | Kafka, Elasticsearch REST | Kafka `ApiVersions`, `GET /_cluster/health` |
//! | [`SeaweedS3`] | `weed mini` (seaweedfs 4.48) | S3 | signed `ListBuckets` |
//! | [`OsmemServer`] | `osmem-server` 0.1.6 | OpenSearch REST | `GET /_cluster/health` |
//! | [`CargoRegistry`] | `cargo-http-registry` 0.1.8 | cargo registry (git index, HTTP publish and download) | `config.json` written, its `api` address accepts TCP |
//!
//! The binaries come from `cargo xtask deps` (the registry through `cargo install`), which
//! writes their absolute paths into `target/test-servers/servers.env`. Fixtures find that file
//! through `WEIR_TEST_SERVERS_ENV` (set by `cargo xtask test`), else under the workspace root
//! above `CARGO_MANIFEST_DIR`. A missing file or binary is an error that says to run `cargo
//! xtask deps` — tests that need a server fail, they are never skipped.
//!
//! ```no_run
//! use weir_testkit::servers::NoidaDb;
//!
//! let server = NoidaDb::start()?; // fails with "run `cargo xtask deps`" when not installed
//! println!("bootstrap.servers={}", server.kafka_bootstrap());
//! println!("elasticsearch at {}", server.elasticsearch_url());
//! // Dropping `server` kills the process and removes its data directory.
//! # Ok::<(), weir_testkit::servers::FixtureError>(())
//! ```

mod cargo_registry;
pub mod http;
pub mod kafka;
pub mod s3;

use std::fs;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

pub use cargo_registry::{CargoRegistry, CARGO_HTTP_REGISTRY_BIN};
pub use s3::S3Credentials;

use crate::report::workspace_root;

/// The variable that names `servers.env` (set by `cargo xtask test`).
pub const SERVERS_ENV_VAR: &str = "WEIR_TEST_SERVERS_ENV";

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

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

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> FixtureError {
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

fn read_env_file(path: &Path) -> Result<String, FixtureError> {
    fs::read_to_string(path).map_err(|e| FixtureError::NotInstalled {
        what: "the test servers' servers.env".into(),
        detail: format!("{}: {e}", path.display()),
    })
}

/// The binary under `key` in `text` (read from `path`), which must exist.
fn env_binary(text: &str, path: &Path, key: &str) -> Result<PathBuf, FixtureError> {
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

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A started server process with its temporary directory; killed on drop.
#[derive(Debug)]
struct ServerProcess {
    name: &'static str,
    child: Child,
    log: PathBuf,
    dir: tempfile::TempDir,
    /// Files the server leaves outside its directory, removed after it is killed.
    leftovers: Vec<PathBuf>,
}

impl ServerProcess {
    fn spawn(
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
    fn wait_ready(
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

fn tcp_probe(addr: SocketAddr) -> Result<(), String> {
    TcpStream::connect_timeout(&addr, PROBE_TIMEOUT)
        .map(drop)
        .map_err(|e| format!("connect {addr}: {e}"))
}

fn health_probe(addr: SocketAddr) -> Result<(), String> {
    tcp_probe(addr)?;
    let r = http::get(addr, "/_cluster/health", PROBE_TIMEOUT)
        .map_err(|e| format!("GET /_cluster/health: {e}"))?;
    if r.status == 200 && r.text().contains("\"status\"") {
        Ok(())
    } else {
        Err(format!("GET /_cluster/health: {} {}", r.status, r.text()))
    }
}

fn tempdir(name: &str) -> Result<tempfile::TempDir, FixtureError> {
    tempfile::Builder::new()
        .prefix(&format!("weir-{name}-"))
        .tempdir()
        .map_err(io_err("creating a temporary directory"))
}

/// `noida-db`: the Kafka protocol and the Elasticsearch REST API, in one process.
#[derive(Debug)]
pub struct NoidaDb {
    process: ServerProcess,
    kafka: SocketAddr,
    elasticsearch: SocketAddr,
}

impl NoidaDb {
    /// Starts it with the installed binary (see [`ServerBinaries::locate`]).
    pub fn start() -> Result<Self, FixtureError> {
        Self::start_with(&ServerBinaries::locate()?)
    }

    /// Starts it with the given binaries, on free ports, with a temporary data directory, and
    /// waits until Kafka answers `ApiVersions` and Elasticsearch its health endpoint.
    pub fn start_with(binaries: &ServerBinaries) -> Result<Self, FixtureError> {
        let dir = tempdir("noida-db")?;
        let data = dir.path().join("data");
        let ports = free_ports(2)?;
        let kafka = loopback(port_at(&ports, 0)?);
        let es = loopback(port_at(&ports, 1)?);
        let args = vec![
            "start".to_owned(),
            "--data-dir".to_owned(),
            data.display().to_string(),
            "--host".to_owned(),
            "127.0.0.1".to_owned(),
            "--only".to_owned(),
            "kafka,elasticsearch".to_owned(),
            "--kafka-port".to_owned(),
            kafka.port().to_string(),
            "--elasticsearch-port".to_owned(),
            es.port().to_string(),
        ];
        let mut process = ServerProcess::spawn("noida-db", &binaries.noida_db, &args, &[], dir)?;
        process.wait_ready(Duration::from_secs(30), || {
            kafka::api_versions(kafka, PROBE_TIMEOUT)
                .map_err(|e| format!("Kafka ApiVersions at {kafka}: {e}"))?;
            health_probe(es)
        })?;
        Ok(NoidaDb {
            process,
            kafka,
            elasticsearch: es,
        })
    }

    /// One server shared by the tests of this process that hold it at the same time: it is
    /// started on first use and killed when the last holder drops it (so no server outlives the
    /// tests, as one in a `static` would). Give each test its own topics and indices.
    pub fn shared() -> Result<Arc<Self>, FixtureError> {
        shared(&SHARED_NOIDA, Self::start)
    }

    /// The Kafka listener.
    pub fn kafka_addr(&self) -> SocketAddr {
        self.kafka
    }

    /// `bootstrap.servers` for Kafka clients.
    pub fn kafka_bootstrap(&self) -> String {
        self.kafka.to_string()
    }

    /// The Elasticsearch listener.
    pub fn elasticsearch_addr(&self) -> SocketAddr {
        self.elasticsearch
    }

    /// The Elasticsearch base URL, `http://127.0.0.1:<port>`.
    pub fn elasticsearch_url(&self) -> String {
        format!("http://{}", self.elasticsearch)
    }

    /// The PID of the server binary.
    pub fn pid(&self) -> u32 {
        self.process.child.id()
    }

    /// Its temporary directory (data and log).
    pub fn dir(&self) -> &Path {
        self.process.dir.path()
    }

    /// Kills it and removes its directory (the same as dropping it).
    pub fn stop(self) {}
}

/// `osmem-server`: a second Elasticsearch-compatible (OpenSearch 3.x API) server.
#[derive(Debug)]
pub struct OsmemServer {
    process: ServerProcess,
    addr: SocketAddr,
}

impl OsmemServer {
    /// Starts it with the installed binary (see [`ServerBinaries::locate`]).
    pub fn start() -> Result<Self, FixtureError> {
        Self::start_with(&ServerBinaries::locate()?)
    }

    /// Starts it with the given binaries on a free port (it exits by itself if this process
    /// dies) and waits until its health endpoint answers.
    pub fn start_with(binaries: &ServerBinaries) -> Result<Self, FixtureError> {
        let dir = tempdir("osmem")?;
        let addr = loopback(port_at(&free_ports(1)?, 0)?);
        let args = vec![
            "-addr".to_owned(),
            addr.to_string(),
            "-no-stdin-watch".to_owned(),
            "-parent-pid".to_owned(),
            std::process::id().to_string(),
        ];
        let mut process = ServerProcess::spawn("osmem-server", &binaries.osmem, &args, &[], dir)?;
        process.wait_ready(Duration::from_secs(30), || health_probe(addr))?;
        Ok(OsmemServer { process, addr })
    }

    /// A server shared by the tests that hold it at the same time (see [`NoidaDb::shared`]).
    pub fn shared() -> Result<Arc<Self>, FixtureError> {
        shared(&SHARED_OSMEM, Self::start)
    }

    /// The listener.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The PID of the server binary.
    pub fn pid(&self) -> u32 {
        self.process.child.id()
    }

    /// Kills it (the same as dropping it).
    pub fn stop(self) {}
}

/// SeaweedFS in `weed mini` mode: an S3 endpoint (with its master, volume and filer servers),
/// every port free and on loopback, data in a temporary directory.
#[derive(Debug)]
pub struct SeaweedS3 {
    process: ServerProcess,
    s3: SocketAddr,
    credentials: S3Credentials,
}

impl SeaweedS3 {
    /// Starts it with the installed binary (see [`ServerBinaries::locate`]).
    pub fn start() -> Result<Self, FixtureError> {
        Self::start_with(&ServerBinaries::locate()?)
    }

    /// Starts it with the given binaries and waits until a signed `ListBuckets` succeeds.
    pub fn start_with(binaries: &ServerBinaries) -> Result<Self, FixtureError> {
        let dir = tempdir("seaweedfs")?;
        let data = dir.path().join("data");
        fs::create_dir_all(&data).map_err(io_err("creating the data directory"))?;
        let ports = free_ports(11)?;
        let port = |i: usize| port_at(&ports, i);
        let s3 = loopback(port(6)?);
        let credentials = S3Credentials {
            access_key_id: "weirtest".into(),
            secret_access_key: format!("weirsecret{:08x}", rand::random::<u32>()),
            region: "us-east-1".into(),
        };
        let sock = |name: &str| dir.path().join(name).display().to_string();
        let args: Vec<String> = vec![
            "mini".into(),
            format!("-dir={}", data.display()),
            "-ip=127.0.0.1".into(),
            "-ip.bind=127.0.0.1".into(),
            "-admin.ui=false".into(),
            "-webdav=false".into(),
            "-s3.port.iceberg=0".into(),
            "-s3.port.lance=0".into(),
            "-master.telemetry=false".into(),
            format!("-master.port={}", port(0)?),
            format!("-master.port.grpc={}", port(1)?),
            format!("-filer.port={}", port(2)?),
            format!("-filer.port.grpc={}", port(3)?),
            format!("-volume.port={}", port(4)?),
            format!("-volume.port.grpc={}", port(5)?),
            format!("-s3.port={}", port(6)?),
            format!("-s3.port.grpc={}", port(7)?),
            format!("-admin.port={}", port(8)?),
            format!("-admin.port.grpc={}", port(9)?),
            format!("-webdav.port={}", port(10)?),
            format!("-filer.localSocket={}", sock("filer.sock")),
            format!("-s3.localSocket={}", sock("s3.sock")),
        ];
        // Its logs go to $TMPDIR: keep them in the fixture's directory.
        let tmp = dir.path().display().to_string();
        let envs = [
            ("AWS_ACCESS_KEY_ID", credentials.access_key_id.as_str()),
            (
                "AWS_SECRET_ACCESS_KEY",
                credentials.secret_access_key.as_str(),
            ),
            ("TMPDIR", tmp.as_str()),
        ];
        let mut process = ServerProcess::spawn("weed", &binaries.weed, &args, &envs, dir)?;
        // Its gRPC servers create unix sockets named after their ports in /tmp (whatever
        // $TMPDIR says), which only a graceful shutdown removes: remove them after the kill.
        for (kind, i) in [
            ("master", 1),
            ("filer", 3),
            ("volume", 5),
            ("s3", 7),
            ("admin", 9),
        ] {
            process.leftovers.push(PathBuf::from(format!(
                "/tmp/seaweedfs-{kind}-grpc-{}.sock",
                port(i)?
            )));
        }
        let probe_credentials = credentials.clone();
        process.wait_ready(Duration::from_secs(60), || {
            tcp_probe(s3)?;
            let r = s3::signed_request(s3, &probe_credentials, "GET", "/", "", b"", PROBE_TIMEOUT)
                .map_err(|e| format!("ListBuckets: {e}"))?;
            if r.status == 200 && r.text().contains("ListAllMyBucketsResult") {
                Ok(())
            } else {
                Err(format!("ListBuckets: {} {}", r.status, r.text()))
            }
        })?;
        Ok(SeaweedS3 {
            process,
            s3,
            credentials,
        })
    }

    /// A server shared by the tests that hold it at the same time (see [`NoidaDb::shared`]).
    pub fn shared() -> Result<Arc<Self>, FixtureError> {
        shared(&SHARED_SEAWEED, Self::start)
    }

    /// The S3 listener.
    pub fn addr(&self) -> SocketAddr {
        self.s3
    }

    /// The S3 endpoint URL, `http://127.0.0.1:<port>` (use path-style addressing).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.s3)
    }

    /// The credentials it accepts, and the region to sign for.
    pub fn credentials(&self) -> &S3Credentials {
        &self.credentials
    }

    /// Sends a signed request (see [`s3::signed_request`]).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        query: &str,
        body: &[u8],
    ) -> io::Result<http::HttpResponse> {
        s3::signed_request(
            self.s3,
            &self.credentials,
            method,
            path,
            query,
            body,
            Duration::from_secs(10),
        )
    }

    /// Creates a bucket (its name must be a valid, unreserved S3 bucket name).
    pub fn create_bucket(&self, bucket: &str) -> Result<(), FixtureError> {
        let r = self
            .request("PUT", &format!("/{bucket}"), "", b"")
            .map_err(io_err(format!("creating bucket {bucket}")))?;
        if r.status == 200 {
            Ok(())
        } else {
            Err(FixtureError::Io {
                what: format!("creating bucket {bucket}"),
                source: io::Error::other(format!("{} {}", r.status, r.text())),
            })
        }
    }

    /// The PID of the `weed` binary.
    pub fn pid(&self) -> u32 {
        self.process.child.id()
    }

    /// Its temporary directory (data and log).
    pub fn dir(&self) -> &Path {
        self.process.dir.path()
    }

    /// Kills it and removes its directory (the same as dropping it).
    pub fn stop(self) {}
}

/// The process-wide instance in `slot` while anyone holds it, else a new one from `start`.
fn shared<T>(
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

static SHARED_NOIDA: Mutex<Weak<NoidaDb>> = Mutex::new(Weak::new());
static SHARED_OSMEM: Mutex<Weak<OsmemServer>> = Mutex::new(Weak::new());
static SHARED_SEAWEED: Mutex<Weak<SeaweedS3>> = Mutex::new(Weak::new());

fn port_at(ports: &[u16], i: usize) -> Result<u16, FixtureError> {
    ports.get(i).copied().ok_or_else(|| FixtureError::Io {
        what: "choosing free ports".into(),
        source: io::Error::other(format!("got {} ports, needed more than {i}", ports.len())),
    })
}

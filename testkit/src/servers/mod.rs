//! Fixtures that start the pinned test servers on free loopback ports with temporary
//! directories, wait until they answer at the protocol level, and kill them (by the PID of the
//! real binary) when dropped.
//!
//! | fixture | server | protocols | readiness check |
//! |---|---|---|---|
//! | [`NoidaDb`] | `noida-db` 0.2.3 | Kafka, Elasticsearch REST | Kafka `ApiVersions`, `GET /_cluster/health` |
//! | [`SeaweedS3`] | `weed mini` (seaweedfs 4.48) | S3 | signed `ListBuckets`, then an object written (a disk with less than 1% free takes no writes: the error says how much is free) |
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
mod process;
pub mod s3;

use std::fs;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

pub use cargo_registry::{CargoRegistry, CARGO_HTTP_REGISTRY_BIN};
pub use process::{
    binary_from_env_file, free_ports, servers_env_file, FixtureError, ServerBinaries,
    SERVERS_ENV_VAR,
};
use process::{
    free_disk, health_probe, io_err, loopback, port_at, shared, tcp_probe, tempdir, ServerProcess,
    PROBE_TIMEOUT, WRITE_PROBE_TIMEOUT,
};
pub use s3::S3Credentials;

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

    /// Starts it with the given binaries and waits until a signed `ListBuckets` succeeds and an
    /// object can be written (in a bucket removed again).
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
        let data_dir = data.clone();
        process.wait_ready(Duration::from_secs(60), || {
            tcp_probe(s3)?;
            let request = |method: &str, path: &str, body: &[u8], timeout: Duration| {
                s3::signed_request(s3, &probe_credentials, method, path, "", body, timeout)
            };
            let r =
                request("GET", "/", b"", PROBE_TIMEOUT).map_err(|e| format!("ListBuckets: {e}"))?;
            if !(r.status == 200 && r.text().contains("ListAllMyBucketsResult")) {
                return Err(format!("ListBuckets: {} {}", r.status, r.text()));
            }
            // Listing needs only the filer; an object write needs a writable volume, which
            // SeaweedFS refuses — by never answering — when less than 1% of its disk is free.
            let r = request("PUT", "/weir-fixture-probe", b"", PROBE_TIMEOUT)
                .map_err(|e| format!("CreateBucket: {e}"))?;
            if !(r.status == 200 || r.status == 409) {
                return Err(format!("CreateBucket: {} {}", r.status, r.text()));
            }
            let r = request(
                "PUT",
                "/weir-fixture-probe/probe",
                b"probe",
                WRITE_PROBE_TIMEOUT,
            )
            .map_err(|e| {
                format!(
                    "PutObject: {e} (SeaweedFS takes no writes while less than 1% of the disk \
                         of {} is free; free there: {})",
                    data_dir.display(),
                    free_disk(&data_dir)
                )
            })?;
            if r.status != 200 {
                return Err(format!("PutObject: {} {}", r.status, r.text()));
            }
            // The bucket's volumes go with it (tests see only their own buckets).
            let _ = request("DELETE", "/weir-fixture-probe/probe", b"", PROBE_TIMEOUT);
            let _ = request("DELETE", "/weir-fixture-probe", b"", PROBE_TIMEOUT);
            Ok(())
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

/// A fake server that accepts every connection and never answers a byte (a store that hangs),
/// for tests of timeouts: its address, on loopback. The connections stay open while the test
/// process runs.
pub fn silent_listener() -> io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            match stream {
                Ok(s) => held.push(s),
                Err(_) => break,
            }
        }
    });
    Ok(addr)
}

static SHARED_NOIDA: Mutex<Weak<NoidaDb>> = Mutex::new(Weak::new());
static SHARED_OSMEM: Mutex<Weak<OsmemServer>> = Mutex::new(Weak::new());
static SHARED_SEAWEED: Mutex<Weak<SeaweedS3>> = Mutex::new(Weak::new());

//! The server fixtures start the real binaries installed by `cargo xtask deps`, which answer at
//! the protocol level, and are gone once dropped. A missing installation fails with a message
//! that says what to run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use weir_testkit::servers::{
    http, kafka, s3, FixtureError, NoidaDb, OsmemServer, S3Credentials, SeaweedS3, ServerBinaries,
};

const T: Duration = Duration::from_secs(10);

fn started<S>(server: Result<S, FixtureError>) -> S {
    server.unwrap_or_else(|e| panic!("{e}"))
}

/// The process is gone (reaped) and nothing listens on its port any more.
fn assert_stopped(pid: u32, addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "process {pid} still runs"
    );
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err(),
        "{addr} still accepts connections"
    );
}

fn is_the_binary(pid: u32, name: &str) {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(
        exe.file_name().and_then(|n| n.to_str()) == Some(name),
        "pid {pid} runs {}, not the {name} binary itself",
        exe.display()
    );
}

#[test]
fn noida_db_speaks_kafka_and_elasticsearch_and_is_killed_on_drop() {
    let server = started(NoidaDb::start());
    is_the_binary(server.pid(), "noida-db");
    let apis = kafka::api_versions(server.kafka_addr(), T).unwrap();
    assert!(apis >= 10, "the broker lists {apis} APIs");
    assert_eq!(server.kafka_bootstrap(), server.kafka_addr().to_string());
    let es = server.elasticsearch_addr();
    let health = http::get(es, "/_cluster/health", T).unwrap();
    assert_eq!(health.status, 200, "{}", health.text());
    let put = http::request(
        es,
        "PUT",
        "/weir-fixture/_doc/1?refresh=true",
        &[("Content-Type", "application/json".into())],
        br#"{"answer":42}"#,
        T,
    )
    .unwrap();
    assert!(
        matches!(put.status, 200 | 201),
        "{} {}",
        put.status,
        put.text()
    );
    let got = http::get(es, "/weir-fixture/_doc/1", T).unwrap();
    assert!(got.text().contains("42"), "{}", got.text());
    assert!(server.elasticsearch_url().starts_with("http://127.0.0.1:"));

    let (pid, dir) = (server.pid(), server.dir().to_path_buf());
    let kafka_addr = server.kafka_addr();
    drop(server);
    assert_stopped(pid, kafka_addr);
    assert!(!dir.exists(), "the temporary directory is removed");
}

#[test]
fn two_noida_db_servers_run_side_by_side() {
    let a = started(NoidaDb::start());
    let b = started(NoidaDb::start());
    assert_ne!(a.kafka_addr(), b.kafka_addr());
    kafka::api_versions(a.kafka_addr(), T).unwrap();
    kafka::api_versions(b.kafka_addr(), T).unwrap();
}

#[test]
fn osmem_server_speaks_elasticsearch_and_is_killed_on_drop() {
    let server = started(OsmemServer::start());
    is_the_binary(server.pid(), "osmem-server");
    let health = http::get(server.addr(), "/_cluster/health", T).unwrap();
    assert_eq!(health.status, 200, "{}", health.text());
    let put = http::request(
        server.addr(),
        "PUT",
        "/weir-fixture/_doc/1?refresh=true",
        &[("Content-Type", "application/json".into())],
        br#"{"answer":42}"#,
        T,
    )
    .unwrap();
    assert!(
        matches!(put.status, 200 | 201),
        "{} {}",
        put.status,
        put.text()
    );
    let (pid, addr) = (server.pid(), server.addr());
    drop(server);
    assert_stopped(pid, addr);
}

#[test]
fn seaweedfs_serves_s3_with_its_credentials_and_is_killed_on_drop() {
    let server = started(SeaweedS3::start());
    is_the_binary(server.pid(), "weed");
    server.create_bucket("weir-fixture").unwrap();
    let put = server
        .request("PUT", "/weir-fixture/hello.txt", "", b"hello, weir")
        .unwrap();
    assert_eq!(put.status, 200, "{}", put.text());
    let got = server
        .request("GET", "/weir-fixture/hello.txt", "", b"")
        .unwrap();
    assert_eq!((got.status, got.text().as_str()), (200, "hello, weir"));
    let list = server
        .request("GET", "/weir-fixture", "list-type=2", b"")
        .unwrap();
    assert!(list.text().contains("hello.txt"), "{}", list.text());
    let buckets = server.request("GET", "/", "", b"").unwrap();
    assert!(
        buckets.text().contains("weir-fixture"),
        "{}",
        buckets.text()
    );

    let wrong = S3Credentials {
        secret_access_key: "not-the-secret".into(),
        ..server.credentials().clone()
    };
    let denied = s3::signed_request(server.addr(), &wrong, "GET", "/", "", b"", T).unwrap();
    assert_eq!(
        denied.status,
        403,
        "wrong credentials are rejected: {}",
        denied.text()
    );
    assert!(server.endpoint().starts_with("http://127.0.0.1:"));

    let (pid, addr) = (server.pid(), server.addr());
    drop(server);
    assert_stopped(pid, addr);
}

#[test]
fn a_missing_servers_env_says_to_run_cargo_xtask_deps() {
    let e = ServerBinaries::from_env_file(Path::new("/nonexistent/servers.env")).unwrap_err();
    let message = e.to_string();
    assert!(message.contains("run `cargo xtask deps`"), "{message}");
    assert!(message.contains("/nonexistent/servers.env"), "{message}");
}

#[test]
fn a_missing_binary_says_to_run_cargo_xtask_deps() {
    let real = ServerBinaries::locate().unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("servers.env");
    std::fs::write(
        &env,
        format!(
            "NOIDA_DB_BIN=/nonexistent/noida-db\nWEED_BIN={}\nOSMEM_BIN={}\n",
            real.weed.display(),
            real.osmem.display()
        ),
    )
    .unwrap();
    let message = ServerBinaries::from_env_file(&env).unwrap_err().to_string();
    assert!(message.contains("NOIDA_DB_BIN"), "{message}");
    assert!(message.contains("run `cargo xtask deps`"), "{message}");
    std::fs::write(&env, "WEED_BIN=/x\n").unwrap();
    let message = ServerBinaries::from_env_file(&env).unwrap_err().to_string();
    assert!(message.contains("no NOIDA_DB_BIN= line"), "{message}");
}

#[test]
fn a_shared_server_lives_while_held_and_is_killed_after_the_last_holder() {
    let a = started(OsmemServer::shared());
    let b = started(OsmemServer::shared());
    assert_eq!(a.pid(), b.pid(), "held at once: one server");
    let (pid, addr) = (a.pid(), a.addr());
    drop(a);
    http::get(b.addr(), "/_cluster/health", T).unwrap();
    drop(b);
    assert_stopped(pid, addr);
    let c = started(OsmemServer::shared());
    assert_ne!(c.pid(), pid, "a new one after the last holder let go");
}

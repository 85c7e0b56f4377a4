//! [`CargoRegistry`]: a cargo registry on loopback (`cargo-http-registry`), for tests that
//! publish crates and depend on them for real.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::process::{
    binary_from_env_file, servers_env_file, tcp_probe, tempdir, FixtureError, ServerProcess,
};

/// The `servers.env` key of the `cargo-http-registry` binary.
pub const CARGO_HTTP_REGISTRY_BIN: &str = "CARGO_HTTP_REGISTRY_BIN";

/// A cargo registry: a git index in a temporary directory (cargo reads it as
/// [`index_url`](Self::index_url), `file:///…`) and an HTTP API on a free loopback port that
/// accepts `cargo publish` with any token and serves the `.crate` downloads. Killed, and its
/// directory removed, on drop.
///
/// It does not refuse a version that is already in the index: cargo's own check (it reads the
/// index before uploading) is what stops a second publish.
#[derive(Debug)]
pub struct CargoRegistry {
    process: ServerProcess,
    root: PathBuf,
    addr: SocketAddr,
}

impl CargoRegistry {
    /// Starts it with the installed binary (`CARGO_HTTP_REGISTRY_BIN` in `servers.env`).
    pub fn start() -> Result<Self, FixtureError> {
        Self::start_with(&binary_from_env_file(
            &servers_env_file(),
            CARGO_HTTP_REGISTRY_BIN,
        )?)
    }

    /// Starts `binary` on `127.0.0.1:0` with a new index, and waits until it has written
    /// `config.json` and its `api` address accepts connections.
    pub fn start_with(binary: &Path) -> Result<Self, FixtureError> {
        let dir = tempdir("cargo-registry")?;
        let root = dir.path().join("registry");
        let args = vec![
            root.display().to_string(),
            "--addr".to_owned(),
            "127.0.0.1:0".to_owned(),
        ];
        let mut process = ServerProcess::spawn("cargo-http-registry", binary, &args, &[], dir)?;
        let mut bound = None;
        process.wait_ready(Duration::from_secs(30), || {
            let addr = api_addr(&root)?;
            tcp_probe(addr)?;
            bound = Some(addr);
            Ok(())
        })?;
        let addr = bound.ok_or_else(|| FixtureError::Io {
            what: "reading the registry's config.json".into(),
            source: std::io::Error::other("no api address"),
        })?;
        Ok(CargoRegistry {
            process,
            root,
            addr,
        })
    }

    /// The index as cargo reads it: `file:///…/registry` (a local git repository).
    pub fn index_url(&self) -> String {
        format!("file://{}", self.root.display())
    }

    /// The registry's root directory: the git index, `config.json`, and the `.crate` files.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The HTTP API, `http://127.0.0.1:<port>` (the `api` of `config.json`).
    pub fn api(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The HTTP listener.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The index file of `crate_name` (cargo's layout: `1/a`, `2/ab`, `3/a/abc`,
    /// `we/ir/weir-…`), which holds one JSON line per published version.
    pub fn index_file(&self, crate_name: &str) -> PathBuf {
        self.root.join(index_path(crate_name))
    }

    /// The variables that make cargo know this registry as `name` (`CARGO_REGISTRIES_<NAME>_INDEX`
    /// and a `_TOKEN`, which the registry does not check), for child processes only.
    pub fn cargo_env(&self, name: &str) -> Vec<(String, String)> {
        let key = name.to_ascii_uppercase().replace('-', "_");
        vec![
            (format!("CARGO_REGISTRIES_{key}_INDEX"), self.index_url()),
            (
                format!("CARGO_REGISTRIES_{key}_TOKEN"),
                "weir-test-token".to_owned(),
            ),
        ]
    }

    /// The PID of the server binary.
    pub fn pid(&self) -> u32 {
        self.process.child.id()
    }

    /// Kills it and removes its directory (the same as dropping it).
    pub fn stop(self) {}
}

/// The `api` address the server wrote into `root/config.json`.
fn api_addr(root: &Path) -> Result<SocketAddr, String> {
    let path = root.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    // It may be half written: an error here only means "not yet".
    let config: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let api = config
        .get("api")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| format!("{}: no `api` in {text}", path.display()))?;
    api.strip_prefix("http://")
        .and_then(|a| a.trim_end_matches('/').parse().ok())
        .ok_or_else(|| format!("{}: `api` is not http://<address>: {api}", path.display()))
}

/// Cargo's index path of a crate name.
fn index_path(name: &str) -> PathBuf {
    let name = name.to_ascii_lowercase();
    let prefix = |range: std::ops::Range<usize>| name.get(range).unwrap_or_default().to_owned();
    let dirs: Vec<String> = match name.len() {
        0..=2 => vec![name.len().to_string()],
        3 => vec!["3".to_owned(), prefix(0..1)],
        _ => vec![prefix(0..2), prefix(2..4)],
    };
    dirs.iter().collect::<PathBuf>().join(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_paths_follow_cargos_layout() {
        assert_eq!(index_path("a"), Path::new("1/a"));
        assert_eq!(index_path("ab"), Path::new("2/ab"));
        assert_eq!(index_path("abc"), Path::new("3/a/abc"));
        assert_eq!(
            index_path("Weir-Connector-Datagen"),
            Path::new("we/ir/weir-connector-datagen")
        );
    }

    #[test]
    fn a_missing_binary_says_to_run_cargo_xtask_deps() {
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path().join("servers.env");
        std::fs::write(&env, "NOIDA_DB_BIN=/x\n").unwrap();
        let message = binary_from_env_file(&env, CARGO_HTTP_REGISTRY_BIN)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("no CARGO_HTTP_REGISTRY_BIN= line"),
            "{message}"
        );
        assert!(message.contains("run `cargo xtask deps`"), "{message}");
    }

    #[test]
    fn serves_its_index_and_api_and_is_killed_on_drop() {
        let registry = CargoRegistry::start().unwrap_or_else(|e| panic!("{e}"));
        let url = registry.index_url();
        assert!(
            url.starts_with("file:///") && url.ends_with("/registry"),
            "{url}"
        );
        let config = std::fs::read_to_string(registry.root().join("config.json")).unwrap();
        assert!(config.contains(&registry.api()), "{config}");
        assert!(registry.root().join(".git").is_dir(), "a git index");
        assert_eq!(
            registry.cargo_env("weir-local"),
            vec![
                ("CARGO_REGISTRIES_WEIR_LOCAL_INDEX".to_owned(), url),
                (
                    "CARGO_REGISTRIES_WEIR_LOCAL_TOKEN".to_owned(),
                    "weir-test-token".to_owned()
                ),
            ]
        );
        let (pid, addr, root) = (
            registry.pid(),
            registry.addr(),
            registry.root().to_path_buf(),
        );
        drop(registry);
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} still runs"
        );
        assert!(tcp_probe(addr).is_err(), "{addr} still accepts connections");
        assert!(!root.exists(), "its directory is removed");
    }
}

//! `weir publish` for real: a connector is uploaded to a cargo registry running on loopback
//! (`cargo-http-registry`, installed by `cargo xtask deps`), lands in its index, and a new
//! project downloads it from there; the same version cannot be published twice.
//!
//! Cargo learns about the registry only through `CARGO_REGISTRIES_<NAME>_INDEX` / `_TOKEN` in
//! the environment of the child processes. The connector is a standalone one made by `weir
//! new` (a connector author's own repository) whose `weir-connector-api` dependency names the
//! registry: a path dependency without `registry` is published as coming from crates.io,
//! whatever registry its dependent goes to, so the Weir repository's own connectors can only
//! take the API from crates.io.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use common::{repo, run, target_dir, weir};
use weir_testkit::servers::CargoRegistry;

/// The name cargo knows the test registry by.
const REGISTRY: &str = "weirlocal";

#[test]
fn a_connector_is_published_to_a_registry_and_downloaded_from_it() {
    let started = Instant::now();
    let registry = CargoRegistry::start().unwrap_or_else(|e| panic!("{e}"));
    let _cleanup = CargoHomeCleanup::new(registry.index_url());
    let env = registry.cargo_env(REGISTRY);
    let step = |what: &str| eprintln!("[{:>5.1}s] {what}", started.elapsed().as_secs_f64());

    // A connector author's crate, outside the repository, depending on the Weir checkout by
    // path.
    let work = tempfile::tempdir().unwrap();
    let (code, out, err) = run(weir()
        .args(["new", "shop", "--sink", "--dir"])
        .arg(work.path())
        .arg("--weir-path")
        .arg(repo()));
    assert_eq!(code, 0, "{out}{err}");
    let dir = work.path().join("weir-connector-shop");
    take_the_api_from_the_registry(&dir.join("Cargo.toml"));
    // In the workspace's target directory, like the scaffold test: its dependencies (the same
    // ones) are built once for both (about 50 s cold on 2 cores, then 7 s for `weir test`).
    let weir_in = |dir: &Path| {
        let mut cmd = weir();
        cmd.current_dir(dir)
            .env("CARGO_TARGET_DIR", target_dir())
            .envs(env.iter().map(|(k, v)| (k, v)));
        cmd
    };
    step("weir test");
    let (code, out, err) = run(weir_in(&dir).args(["test", "--fault-trials", "1"]));
    assert_eq!(code, 0, "weir test failed:\n{out}\n{err}");
    assert!(
        out.contains(
            "shop-sink (weir-connector-shop 0.1.0-1.0, API line 1.0): 12 passed, 0 failed"
        ),
        "{out}"
    );

    // The registry does not have the API yet: refused before anything is packaged.
    step("weir publish without the API in the registry");
    let publish = ["publish", "--registry", REGISTRY, "--allow-dirty"];
    let (code, out, err) = run(weir_in(&dir).args(publish));
    assert_eq!(code, 1, "{out}\n{err}");
    let errors: Vec<&str> = err.lines().collect();
    assert!(
        errors[0].starts_with(
            "publish: error: weir-connector-api `1.0.0` (a path dependency of \
             weir-connector-shop) does not resolve from registry `weirlocal`, where the \
             published crate will take it from ("
        ) && errors[0].ends_with(
            "): publish it there first: `cargo publish -p weir-connector-api --registry \
             weirlocal`"
        ),
        "{err}"
    );
    assert_eq!(
        *errors.last().unwrap(),
        "publish: weir-connector-shop 0.1.0-1.0 is not ready: 1 problem; nothing was packaged"
    );
    assert!(!registry.index_file("weir-connector-shop").exists());

    // What the error says to do: the API crate goes to the registry first.
    step("cargo publish -p weir-connector-api");
    let (code, out, err) = run(cargo(&env)
        .args([
            "publish",
            "-p",
            "weir-connector-api",
            "--registry",
            REGISTRY,
        ])
        .args(["--no-verify", "--allow-dirty"])
        .current_dir(repo()));
    assert_eq!(code, 0, "{out}\n{err}");

    step("weir publish");
    let (code, out, err) = run(weir_in(&dir).args(publish));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains(
            "publish: publishing: cargo publish -p weir-connector-shop --allow-dirty --registry \
             weirlocal --no-verify"
        ),
        "{out}"
    );
    assert_eq!(
        out.lines().last(),
        Some("publish: weir-connector-shop 0.1.0-1.0 is published"),
        "{out}\n{err}"
    );

    // The index has the version, with its API dependency from the same registry.
    let entries = index_entries(&registry, "weir-connector-shop");
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    assert_eq!(entry["vers"], "0.1.0-1.0");
    let api = entry["deps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "weir-connector-api")
        .unwrap_or_else(|| panic!("no weir-connector-api dependency: {entry}"));
    assert_eq!(api["req"], "^1.0.0", "{api}");
    assert_eq!(api["kind"], "normal", "{api}");
    assert!(api["registry"].is_null(), "from this registry: {api}");
    assert!(registry
        .root()
        .join("weir-connector-shop-0.1.0-1.0.crate")
        .is_file());

    // A new project resolves the connector and its API from the registry and downloads them
    // (cargo downloads through the `dl` address of config.json: the registry's HTTP server).
    step("a consumer: cargo generate-lockfile, cargo fetch");
    let consumer = tempfile::tempdir().unwrap();
    fs::create_dir_all(consumer.path().join("src")).unwrap();
    fs::write(consumer.path().join("src/lib.rs"), "").unwrap();
    fs::write(
        consumer.path().join("Cargo.toml"),
        format!(
            "[package]\nname = \"consumer\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
             publish = false\n\n[dependencies]\nweir-connector-shop = {{ version = \
             \"=0.1.0-1.0\", registry = \"{REGISTRY}\" }}\n\n[workspace]\n"
        ),
    )
    .unwrap();
    let in_consumer = |args: &[&str]| {
        run(cargo(&env)
            .args(args)
            .current_dir(consumer.path())
            .env("CARGO_TARGET_DIR", consumer.path().join("target")))
    };
    let (code, out, err) = in_consumer(&["generate-lockfile"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = in_consumer(&["fetch"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("Downloaded weir-connector-shop v0.1.0-1.0 (registry `weirlocal`)"),
        "{err}"
    );
    let lock = fs::read_to_string(consumer.path().join("Cargo.lock")).unwrap();
    let source = format!("source = \"registry+{}\"", registry.index_url());
    for (name, version) in [
        ("weir-connector-shop", "0.1.0-1.0"),
        ("weir-connector-api", "1.0.0"),
    ] {
        let entry = format!("name = \"{name}\"\nversion = \"{version}\"\n{source}\n");
        assert!(lock.contains(&entry), "{entry} is not in:\n{lock}");
    }

    // The same version again: refused, and the index is unchanged.
    step("weir publish again");
    let (code, out, err) = run(weir_in(&dir).args(publish));
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.lines().any(|l| l
            == "publish: error: weir-connector-shop 0.1.0-1.0 is already in registry \
                `weirlocal`: a published version cannot be replaced; bump the version"),
        "{err}"
    );
    assert_eq!(index_entries(&registry, "weir-connector-shop").len(), 1);
    step("done");
}

/// Adds `registry = "weirlocal"` to the scaffold's `weir-connector-api` dependency. A sink-only
/// scaffold has no other Weir dependency (datagen is for connectors with a source, and could
/// not come from the registry: the repository's datagen takes the API from crates.io).
fn take_the_api_from_the_registry(manifest: &Path) {
    let text = fs::read_to_string(manifest).unwrap();
    let mut doc = text.parse::<toml_edit::DocumentMut>().unwrap();
    let deps = doc["dependencies"].as_table_like_mut().unwrap();
    assert!(deps.get("weir-connector-datagen").is_none(), "{text}");
    let api = deps.get_mut("weir-connector-api").unwrap();
    assert!(api.get("path").is_some(), "{text}");
    api["registry"] = toml_edit::value(REGISTRY);
    fs::write(manifest, doc.to_string()).unwrap();
}

/// The JSON lines of a crate's index file.
fn index_entries(registry: &CargoRegistry, name: &str) -> Vec<serde_json::Value> {
    let path = registry.index_file(name);
    fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The cargo that runs the tests, knowing the registry through `env`.
fn cargo(env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.stdin(Stdio::null())
        .envs(env.iter().map(|(k, v)| (k, v)));
    cmd
}

/// Removes, on drop, what cargo keeps under `$CARGO_HOME/registry` for one registry (its index
/// clone, downloaded `.crate` files, unpacked sources): a new registry URL per run would
/// otherwise leave them behind every time. The index clone is recognised by its `FETCH_HEAD`,
/// which names the index URL; the cache and sources share its directory name.
struct CargoHomeCleanup {
    index_url: String,
}

impl CargoHomeCleanup {
    fn new(index_url: String) -> Self {
        Self { index_url }
    }
}

impl Drop for CargoHomeCleanup {
    fn drop(&mut self) {
        let Some(home) = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        else {
            return;
        };
        let registry = home.join("registry");
        let Ok(clones) = fs::read_dir(registry.join("index")) else {
            return;
        };
        for clone in clones.flatten() {
            let fetched = fs::read_to_string(clone.path().join(".git").join("FETCH_HEAD"))
                .unwrap_or_default();
            if fetched
                .lines()
                .any(|l| l.split_whitespace().last() == Some(self.index_url.as_str()))
            {
                for kind in ["index", "cache", "src"] {
                    let _ = fs::remove_dir_all(registry.join(kind).join(clone.file_name()));
                }
            }
        }
    }
}

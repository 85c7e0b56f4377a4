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

use crate::common;

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
    // Releasing for line 1.0 a crate that uses an item of 1.1 is refused, naming the item
    // (before `weir test`, which must see the crate as it is published).
    step("weir publish --api-line 1.0 of a crate using AsyncSink");
    let lib = dir.join("src/lib.rs");
    let original = fs::read_to_string(&lib).unwrap();
    fs::write(
        &lib,
        format!(
            "{original}\n#[allow(unused_imports)]\nuse weir_connector_base::sink::AsyncSink;\n"
        ),
    )
    .unwrap();
    let (code, out, err) = run(weir_in(&dir)
        .args(["publish", "--registry", REGISTRY, "--allow-dirty"])
        .args(["--api-line", "1.0"]));
    assert_eq!(code, 1, "{out}\n{err}");
    let uses_line = original.lines().count() + 3;
    assert!(
        err.contains(&format!(
            "publish: error: weir-connector-shop: cannot be released for API line 1.0: \
             src/lib.rs:{uses_line} uses AsyncSink (weir_connector_base::sink), an item of API \
             line 1.1: release it for line 1.1 and newer only"
        )),
        "{err}"
    );
    fs::write(&lib, &original).unwrap();

    step("weir test");
    let (code, out, err) = run(weir_in(&dir).args(["test", "--fault-trials", "1"]));
    assert_eq!(code, 0, "weir test failed:\n{out}\n{err}");
    assert!(
        out.contains(
            "shop-sink (weir-connector-shop 0.1.0-1.1, API line 1.1): 12 passed, 0 failed"
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
            "publish: error: weir-connector-api `1.1.0` (a path dependency of \
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
        "publish: weir-connector-shop 0.1.0-1.1 is not ready: 1 problem; nothing was packaged"
    );
    assert!(!registry.index_file("weir-connector-shop").exists());

    // What the error says to do: the API goes to the registry first — line 1.1 from this tree,
    // line 1.0 from its release (the packaged platform of compat/platform/1.0).
    step("cargo publish weir-connector-api 1.1.0 and 1.0.0");
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
    let api_1_0 = unpack_platform_api(work.path());
    let (code, out, err) = run(cargo(&env)
        .args([
            "publish",
            "--registry",
            REGISTRY,
            "--no-verify",
            "--allow-dirty",
        ])
        .env("CARGO_TARGET_DIR", work.path().join("api-1.0-target"))
        .current_dir(&api_1_0));
    assert_eq!(code, 0, "{out}\n{err}");

    step("weir publish --api-line 1.0 (and its own line, 1.1)");
    let (code, out, err) = run(weir_in(&dir).args(publish).args(["--api-line", "1.0"]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains(
            "publish: publishing: cargo publish -p weir-connector-shop --allow-dirty --registry \
             weirlocal --no-verify"
        ),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l == "publish: weir-connector-shop 0.1.0-1.1 is published"),
        "{out}\n{err}"
    );
    assert_eq!(
        out.lines().last(),
        Some("publish: weir-connector-shop 0.1.0-1.0 is published"),
        "{out}\n{err}"
    );

    // The index has both versions, each with the API line of its suffix, from this registry.
    let entries = index_entries(&registry, "weir-connector-shop");
    assert_eq!(entries.len(), 2, "{entries:?}");
    for (version, req) in [("0.1.0-1.1", "^1.1.0"), ("0.1.0-1.0", "^1.0")] {
        let entry = entries
            .iter()
            .find(|e| e["vers"] == version)
            .unwrap_or_else(|| panic!("no {version} in {entries:?}"));
        let api = entry["deps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == "weir-connector-api")
            .unwrap_or_else(|| panic!("no weir-connector-api dependency: {entry}"));
        assert_eq!(api["req"], req, "{api}");
        assert_eq!(api["kind"], "normal", "{api}");
        assert!(api["registry"].is_null(), "from this registry: {api}");
        assert!(registry
            .root()
            .join(format!("weir-connector-shop-{version}.crate"))
            .is_file());
    }

    // A new project takes the 1.0 release with API 1.0.0 exactly, downloads both from the
    // registry and builds them: the 1.0 package really builds on line 1.0.
    step("a consumer on line 1.0: cargo generate-lockfile, cargo fetch, cargo check");
    let consumer = tempfile::tempdir().unwrap();
    fs::create_dir_all(consumer.path().join("src")).unwrap();
    fs::write(consumer.path().join("src/lib.rs"), "").unwrap();
    fs::write(
        consumer.path().join("Cargo.toml"),
        format!(
            "[package]\nname = \"consumer\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
             publish = false\n\n[dependencies]\nweir-connector-shop = {{ version = \
             \"=0.1.0-1.0\", registry = \"{REGISTRY}\" }}\nweir-connector-api = {{ version = \
             \"=1.0.0\", registry = \"{REGISTRY}\" }}\n\n[workspace]\n"
        ),
    )
    .unwrap();
    let in_consumer = |args: &[&str]| {
        run(cargo(&env)
            .args(args)
            .current_dir(consumer.path())
            .env("CARGO_TARGET_DIR", target_dir()))
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
    let (code, out, err) = in_consumer(&["check"]);
    assert_eq!(
        code, 0,
        "the 1.0 release does not build on API 1.0.0:\n{out}\n{err}"
    );

    // The same version again: refused, and the index is unchanged.
    step("weir publish again");
    let (code, out, err) = run(weir_in(&dir).args(publish));
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.lines().any(|l| l
            == "publish: error: weir-connector-shop 0.1.0-1.1 is already in registry \
                `weirlocal`: a published version cannot be replaced; bump the version"),
        "{err}"
    );
    assert_eq!(index_entries(&registry, "weir-connector-shop").len(), 2);
    step("done");
}

/// The 1.0 release of `weir-connector-api` (compat/platform/1.0), unpacked under `work` as a
/// crate of its own, ready for `cargo publish`.
fn unpack_platform_api(work: &Path) -> PathBuf {
    let packaged = repo().join("compat/platform/1.0/weir-connector-api-1.0.0.crate");
    let file = fs::File::open(&packaged).unwrap();
    tar::Archive::new(flate2::read::GzDecoder::new(file))
        .unpack(work)
        .unwrap();
    let dir = work.join("weir-connector-api-1.0.0");
    // Files `cargo package` writes itself, and refuses to find in a source.
    for generated in ["Cargo.toml.orig", ".cargo_vcs_info.json"] {
        let _ = fs::remove_file(dir.join(generated));
    }
    let manifest = dir.join("Cargo.toml");
    let text = fs::read_to_string(&manifest).unwrap();
    fs::write(&manifest, format!("{text}\n[workspace]\n")).unwrap();
    dir
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

//! `weir new` → `weir test`: a scaffolded connector builds and passes the conformance suites
//! out of the box; inside a Weir repository it joins the workspace and the compat matrix.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::fs;

use common::{repo, run, target_dir, weir};

#[test]
fn a_new_standalone_connector_builds_and_passes_its_suites() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, err) = run(weir()
        .args(["new", "mem-store", "--both", "--dir"])
        .arg(tmp.path())
        .arg("--weir-path")
        .arg(repo()));
    assert_eq!(code, 0, "{out}{err}");
    let dir = tmp.path().join("weir-connector-mem-store");
    for file in [
        "Cargo.toml",
        "README.md",
        "CHANGELOG.md",
        "src/lib.rs",
        "src/config.rs",
        "src/external.rs",
        "src/factory.rs",
        "src/source/split.rs",
        "src/sink/committer.rs",
        "src/sink/state.rs",
        "tests/conformance.rs",
        "tests/golden/partition-split-v1.bin",
        "tests/golden/committable-v1.bin",
        "tests/golden/writer-state-v1.bin",
        "benches/throughput.rs",
    ] {
        assert!(dir.join(file).is_file(), "{file} is missing");
    }
    let manifest = fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(manifest.contains(&format!(
        "version = \"0.1.0-{}\"",
        weir_connector_api::API_LINE
    )));
    // Build in the workspace's target directory: the dependencies are already compiled.
    let (code, out, err) = run(weir()
        .args(["test", "--fault-trials", "3"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", target_dir()));
    assert_eq!(code, 0, "weir test failed:\n{out}\n{err}");
    let line = weir_connector_api::API_LINE;
    assert!(
        out.contains(&format!("mem-store-source (weir-connector-mem-store 0.1.0-{line}, API line {line}): 26 passed, 0 failed, 0 not applicable")),
        "{out}"
    );
    assert!(
        out.contains(&format!("mem-store-sink (weir-connector-mem-store 0.1.0-{line}, API line {line}): 12 passed, 0 failed, 0 not applicable")),
        "{out}"
    );
    assert!(out.contains("  source       scale_up"), "{out}");
    assert!(out.contains("report: "), "{out}");
    assert!(out.contains(&format!(
        "weir: weir-connector-mem-store 0.1.0-{line}: cargo test passed, 0 failed cases"
    )));
}

/// A minimal Weir repository: a workspace, the API crate, an empty matrix.
fn fake_repo(dir: &std::path::Path) {
    fs::write(
        dir.join("Cargo.toml"),
        "[workspace]\nresolver = \"2\"\nmembers = [\n    \"connector-api\",\n]\n\n\
         [workspace.dependencies]\nweir-connector-api = { path = \"connector-api\", version = \"1.0.0\" }\n",
    )
    .unwrap();
    fs::create_dir_all(dir.join("connector-api/src")).unwrap();
    fs::write(
        dir.join("connector-api/Cargo.toml"),
        "[package]\nname = \"weir-connector-api\"\nversion = \"1.0.0\"\n",
    )
    .unwrap();
    fs::create_dir_all(dir.join("connectors")).unwrap();
    fs::write(
        dir.join("compat-matrix.toml"),
        "# The matrix.\napi-lines = [\"1.0\"]\n",
    )
    .unwrap();
}

#[test]
fn inside_the_repository_a_new_connector_joins_the_workspace_and_the_matrix() {
    let tmp = tempfile::tempdir().unwrap();
    fake_repo(tmp.path());
    let (code, out, err) = run(weir()
        .args(["new", "lake", "--sink"])
        .current_dir(tmp.path().join("connectors")));
    assert_eq!(code, 0, "{out}{err}");
    let dir = tmp.path().join("connectors/lake");
    assert!(dir.join("src/sink/writer.rs").is_file());
    assert!(!dir.join("src/source").exists(), "a sink only");
    let manifest = fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("weir-connector-api.workspace = true"),
        "{manifest}"
    );
    assert!(manifest.contains("[lints]\nworkspace = true"), "{manifest}");
    let root = fs::read_to_string(tmp.path().join("Cargo.toml")).unwrap();
    assert!(root.contains("\"connectors/lake\""), "{root}");
    let matrix = fs::read_to_string(tmp.path().join("compat-matrix.toml")).unwrap();
    assert!(matrix.starts_with("# The matrix."), "comments are kept");
    assert!(
        matrix.contains(
            "[connectors.lake]\ncrate = \"weir-connector-lake\"\n\n[[connectors.lake.releases]]\n\
             version = \"0.1.0-1.0\"\napi-lines = [\"1.0\"]\nstatus = \"supported\"\n"
        ),
        "{matrix}"
    );
    // The new crate passes the compat checks as it is.
    let (code, out, err) = run(weir().args(["compat", "check", "--root"]).arg(tmp.path()));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out, "compat: 1 connectors, 1 releases checked, OK\n");
    // A second one of the same name is refused, and nothing changes.
    let (code, _, err) = run(weir()
        .args(["new", "lake", "--source"])
        .current_dir(tmp.path()));
    assert_eq!(code, 2);
    assert!(err.contains("connectors/lake already exists"), "{err}");
    let (code, _, err) = run(weir().args(["new", "Bad_Name", "--source"]));
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "weir: `Bad_Name` is not a connector name: use lowercase letters, digits and single `-`, \
         starting with a letter (e.g. `my-store`)\n"
    );
}

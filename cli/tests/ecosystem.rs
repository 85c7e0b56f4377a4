//! `weir connectors`, `weir compat check` and `weir publish` through the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::fs;
use std::path::Path;

use common::{repo, run, weir};

#[test]
fn connectors_are_listed_with_versions_and_api_lines() {
    let (code, out, _) = run(weir().arg("connectors"));
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    // Column widths follow the longest cell, so compare with the padding squeezed.
    let squeezed: Vec<String> = lines
        .iter()
        .map(|l| {
            l.split("  ")
                .filter(|c| !c.is_empty())
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .collect();
    assert_eq!(
        squeezed[0],
        "CONNECTOR | KIND | CRATE | VERSION | API | DESCRIPTION"
    );
    for row in [
        "datagen | source | weir-connector-datagen | 1.0.0-1.0 | 1.0 | generates rows: sequences and \
         seeded random values per field",
        "blackhole | sink | weir-connector-blackhole | 1.0.0-1.0 | 1.0 | discards every row and \
         counts it",
        "files | source, sink | weir-connector-files | 1.0.0-1.0 | 1.0 | local files: Parquet, ORC, \
         CSV, JSON lines, text; exactly-once part files with compaction",
    ] {
        assert!(squeezed.iter().any(|l| l == row), "{row} missing from:\n{out}");
    }
    for format in ["json", "csv", "raw", "debezium-json", "canal-json"] {
        assert!(
            lines.iter().any(|l| l.starts_with(&format!("{format} "))),
            "{format}"
        );
    }
}

#[test]
fn a_connectors_options_table_comes_from_its_option_set() {
    let (code, out, _) = run(weir().args(["connectors", "datagen"]));
    assert_eq!(code, 0);
    assert!(out.starts_with("# datagen (source)\n"), "{out}");
    assert!(out.contains("## Source options\n\n| Key | Type | Default | Required | Description |"));
    assert!(out.contains("| `number-of-rows` | u64 | (none) | no | Number of rows to emit"));
    assert!(out.contains("| `fields.*` | String | (none) | no | Per-field generators"));
    let (code, out, _) = run(weir().args(["connectors", "csv"]));
    assert_eq!(code, 0);
    assert!(
        out.contains("| `field-delimiter` | String | `,` | no |"),
        "{out}"
    );
    let (code, out, _) = run(weir().args(["connectors", "files"]));
    assert_eq!(code, 0);
    assert!(out.starts_with("# files (source, sink)\n"), "{out}");
    let (source, sink) = out.split_once("## Sink options").unwrap();
    assert!(
        source.contains("## Source options\n\n| Key | Type | Default | Required | Description |")
    );
    assert!(
        source.contains("| `source.monitor-interval` | Duration | (none) | no |"),
        "{out}"
    );
    for row in [
        "| `path` | String | (none) | yes |",
        "| `format` | Enum | (none) | no | The file format: `parquet` and `orc`",
        "Possible values: `json`, `csv`, `parquet`, `orc`, `text`.",
        "| `codec` | Enum | `snappy` | no |",
        "| `sink.rolling-policy.file-size` | MemorySize | `128 mb` | no |",
        "| `bucket.assigner` | Enum | `date-time` | no |",
        "| `compaction.enabled` | bool | `false` | no |",
        "| `compaction.file-size` | MemorySize | (none) | no |",
    ] {
        assert!(sink.contains(row), "{row} missing from:\n{sink}");
    }
    let (code, out, err) = run(weir().args(["connectors", "datagne"]));
    assert_eq!((code, out.as_str()), (2, ""));
    assert_eq!(
        err,
        "weir: no connector or format `datagne` in this build of weir: did you mean `datagen`?; \
         `weir connectors` lists them\n"
    );
}

#[test]
fn compat_check_passes_on_the_repository_and_says_what_run_does() {
    let (code, out, err) = run(weir().args(["compat", "check"]).current_dir(repo()));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("compat: ") && out.contains("releases checked, OK"),
        "{out}"
    );
    let (code, out, err) = compat_dry_run(&["--connector", "datagen"]);
    assert_eq!(code, 0, "{err}");
    // One source, two lines: the tree's line in the workspace, line 1.0 in a workspace that
    // takes the 1.0 platform from compat/platform/1.0.
    assert!(
        out.contains(
            "compat: weir-connector-datagen 1.0.0-1.0 on API line 1.0: would run `cargo test -p \
             weir-connector-datagen --all-features` in "
        ) && out.contains("target/compat/line-1.0"),
        "{out}"
    );
    assert!(
        out.contains(
            "compat: weir-connector-datagen 1.0.0-1.1 on API line 1.1: would run `cargo test -p \
             weir-connector-datagen --all-features` in "
        ),
        "{out}"
    );
}

/// `weir compat check --run --dry-run` with `filters`, in the repository: exit code, out, err.
fn compat_dry_run(filters: &[&str]) -> (i32, String, String) {
    run(weir()
        .args(["compat", "check", "--run", "--dry-run"])
        .args(filters)
        .current_dir(repo()))
}

#[test]
fn compat_run_refuses_a_filter_that_matches_nothing() {
    // The crate name works as well as the matrix key.
    let (code, out, err) =
        compat_dry_run(&["--connector", "weir-connector-datagen", "--api-line", "1.0"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("weir-connector-datagen 1.0.0-1.0 on API line 1.0"),
        "{out}"
    );
    // A misspelt connector or a line nothing claims fails instead of passing an empty run.
    let (code, _, err) = compat_dry_run(&["--connector", "datgen"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no connector [\"datgen\"]"), "{err}");
    let (code, _, err) = compat_dry_run(&["--api-line", "9.9"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("claims API line 9.9"), "{err}");
}

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

#[test]
fn compat_check_catches_a_broken_matrix() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    write(
        root,
        "Cargo.toml",
        "[workspace]\nmembers = []\n\n[workspace.dependencies]\n\
         weir-connector-api = { path = \"connector-api\", version = \"1.0.0\" }\n",
    );
    write(
        root,
        "connector-api/Cargo.toml",
        "[package]\nname = \"weir-connector-api\"\nversion = \"1.0.0\"\n",
    );
    write(
        root,
        "connectors/lake/Cargo.toml",
        "[package]\nname = \"weir-connector-lake\"\nversion = \"2.0.0-1.0\"\n\n\
         [dependencies]\nweir-connector-api.workspace = true\n",
    );
    write(
        root,
        "compat-matrix.toml",
        "api-lines = [\"1.0\"]\n\n[connectors.lake]\ncrate = \"weir-connector-lake\"\n\n\
         [[connectors.lake.releases]]\nversion = \"1.0.0-1.0\"\napi-lines = [\"1.0\"]\n\
         status = \"supportd\"\n",
    );
    let (code, out, err) = run(weir().args(["compat", "check", "--root"]).arg(root));
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(out, "");
    assert!(err.contains("unknown status \"supportd\""), "{err}");
    assert!(
        err.contains("2.0.0-1.0"),
        "the current version has no entry:\n{err}"
    );
    assert!(err.ends_with("and the connector crates\n"), "{err}");
    let count = err
        .lines()
        .filter(|l| l.starts_with("compat: error: "))
        .count();
    assert!(count >= 2, "every problem at once:\n{err}");
    // Outside a repository without --root: a clear refusal.
    let (code, _, err) = run(weir()
        .args(["compat", "check"])
        .current_dir(tmp.path().join("connectors")));
    assert_eq!(code, 1, "{err}");
}

#[test]
fn publish_refuses_a_bad_version_and_missing_docs() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, _, err) = run(weir()
        .args(["new", "shop", "--source", "--dir"])
        .arg(tmp.path())
        .arg("--weir-path")
        .arg(repo()));
    assert_eq!(code, 0, "{err}");
    let dir = tmp.path().join("weir-connector-shop");
    let manifest = fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    fs::write(
        dir.join("Cargo.toml"),
        manifest.replace("version = \"0.1.0-1.1\"", "version = \"0.1.0\""),
    )
    .unwrap();
    fs::remove_file(dir.join("CHANGELOG.md")).unwrap();
    let (code, out, err) = run(weir().args(["publish", "--dry-run"]).current_dir(&dir));
    assert_eq!(code, 1, "{out}{err}");
    let errors: Vec<&str> = err.lines().collect();
    assert_eq!(
        errors[0],
        "publish: error: weir-connector-shop: version `0.1.0` is not MAJOR.MINOR.PATCH-API (e.g. \
         `1.0.0-1.0`): the suffix names the weir-connector-api line it builds against"
    );
    assert!(
        errors[1].starts_with("publish: error: ")
            && errors[1].ends_with("CHANGELOG.md is missing: list the changes of every release"),
        "{err}"
    );
    assert!(
        errors[2].starts_with("publish: error: no conformance report of weir-connector-shop: run `weir test` for weir-connector-shop first"),
        "{err}"
    );
    assert_eq!(
        *errors.last().unwrap(),
        "publish: weir-connector-shop 0.1.0 is not ready: 3 problems; nothing was packaged"
    );
}

#[test]
fn publish_dry_run_passes_for_a_tested_connector() {
    // `weir test` writes the fresh conformance report that publishing requires.
    let (code, out, err) = run(weir()
        .args(["test", "datagen", "--fault-trials", "1"])
        .current_dir(repo()));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("datagen-source (weir-connector-datagen 1.0.0-1.0, API line 1.1): 24 passed, 0 failed, 2 not applicable"),
        "{out}"
    );
    let (code, out, err) = run(weir()
        .args(["publish", "datagen", "--dry-run"])
        .current_dir(repo()));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains(
        "publish: weir-connector-datagen 1.0.0-1.0: version, matrix, docs and conformance report OK"
    ));
    assert!(
        out.contains("publish: verifying the packaged crate builds: cargo package -p weir-connector-datagen -p weir-connector-api -p weir-connector-base -p weir-formats --allow-dirty"),
        "{out}"
    );
    assert!(
        out.contains("publish: weir-connector-datagen 1.0.0-1.0 is ready to publish (dry run)\n"),
        "{out}"
    );
    // The same source for the matrix's other line: the 1.1 package, made and shown.
    let last = out.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(
            "publish: weir-connector-datagen 1.0.0-1.1 (API line 1.1) is packaged in "
        ) && last.ends_with("(dry run, not uploaded)"),
        "{out}"
    );
}

//! `weir new <name> --source|--sink|--both`: scaffolds a connector crate with the standard
//! layout, an in-memory external system, a registered factory and the conformance suites
//! wired, so that it builds and passes `weir test` out of the box.
//!
//! Inside the Weir repository the crate goes to `connectors/<name>/`, joins the workspace and
//! gets a `compat-matrix.toml` entry; elsewhere (or with `--standalone`) it is a standalone
//! crate with its own `[workspace]`, depending on the Weir crates by version, or by path with
//! `--weir-path`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::workspace::{current_dir, package, weir_repo};
use crate::Exit;

/// Options of `weir new`.
#[allow(clippy::struct_excessive_bools)] // command-line flags
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("kind").required(true).args(["source", "sink", "both"])))]
pub struct NewArgs {
    /// The connector's name: lowercase letters, digits and `-` (the crate is
    /// `weir-connector-<name>`).
    pub name: String,
    /// A source connector.
    #[arg(long)]
    pub source: bool,
    /// A sink connector.
    #[arg(long)]
    pub sink: bool,
    /// A source and a sink.
    #[arg(long)]
    pub both: bool,
    /// Create a standalone crate even inside the Weir repository.
    #[arg(long)]
    pub standalone: bool,
    /// Standalone: the folder to create the crate in [default: the current directory].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Standalone: depend on the Weir crates of this checkout by path (instead of by version).
    #[arg(long, value_name = "PATH")]
    pub weir_path: Option<PathBuf>,
}

/// Which abilities the crate gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    /// A source.
    pub source: bool,
    /// A sink.
    pub sink: bool,
}

macro_rules! template {
    ($path:literal) => {
        (
            $path,
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/templates/connector/",
                $path,
                ".tmpl"
            )),
        )
    };
}

/// Every template: (path in the crate, text). Paths under `src/source/` and `src/sink/` are
/// only written for that ability. The layout is the one every connector has (CONTRIBUTING.md,
/// "Layout").
const TEMPLATES: [(&str, &str); 17] = [
    template!("Cargo.toml"),
    template!("README.md"),
    template!("CHANGELOG.md"),
    template!("src/lib.rs"),
    template!("src/config.rs"),
    template!("src/external.rs"),
    template!("src/factory.rs"),
    template!("src/source/mod.rs"),
    template!("src/source/split.rs"),
    template!("src/source/enumerator.rs"),
    template!("src/source/reader.rs"),
    template!("src/sink/mod.rs"),
    template!("src/sink/writer.rs"),
    template!("src/sink/committer.rs"),
    template!("src/sink/state.rs"),
    template!("tests/conformance.rs"),
    template!("benches/throughput.rs"),
];

/// The golden state files of the templates' serializers (version 1), for the `state_compat!`
/// tests of `tests/conformance.rs`: (path, bytes, written with a source / with a sink). The
/// samples are the ones those tests name; a template serializer that writes other bytes fails
/// them.
const GOLDENS: [(&str, &[u8], Kind); 3] = [
    (
        // PartitionSplit { partition: "p-1", index: 1, next: 42, stop: Some(100) }
        "tests/golden/partition-split-v1.bin",
        &[
            0, 0, 0, 3, b'p', b'-', b'1', 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 42, 1, 0, 0, 0, 0, 0, 0,
            0, 100,
        ],
        Kind {
            source: true,
            sink: false,
        },
    ),
    (
        // Committable { transaction_id: "txn-1" }
        "tests/golden/committable-v1.bin",
        &[0, 0, 0, 5, b't', b'x', b'n', b'-', b'1'],
        Kind {
            source: false,
            sink: true,
        },
    ),
    (
        // WriterState { records_sent: 42 }
        "tests/golden/writer-state-v1.bin",
        &[0, 0, 0, 0, 0, 0, 0, 42],
        Kind {
            source: false,
            sink: true,
        },
    ),
];

/// The version of `weir-connector-base` a standalone scaffold with a source depends on (its
/// rate limiter); a test checks it against `connector-base/Cargo.toml`.
const BASE_VERSION: &str = "0.1";

/// Keeps or drops the `{{source}}` … `{{/source}}` and `{{sink}}` … `{{/sink}}` blocks;
/// marker lines are removed.
fn sections(text: &str, kind: Kind) -> String {
    let mut out = String::new();
    let mut skipping: Vec<bool> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        let marker = |name: &str| t.ends_with(&format!("{{{{{name}}}}}"));
        if marker("source") || marker("sink") {
            skipping.push(if marker("source") {
                !kind.source
            } else {
                !kind.sink
            });
            continue;
        }
        if marker("/source") || marker("/sink") {
            skipping.pop();
            continue;
        }
        if skipping.iter().any(|s| *s) {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn camel(name: &str) -> String {
    name.split(['-', '_'])
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |c| {
                c.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

/// Checks a connector name.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && !name.contains("--");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a connector name: use lowercase letters, digits and single `-`, \
             starting with a letter (e.g. `my-store`)"
        ))
    }
}

/// What to substitute in the templates.
#[derive(Debug, Clone)]
pub struct Vars {
    /// The connector name.
    pub name: String,
    /// The abilities.
    pub kind: Kind,
    /// The crate version.
    pub version: String,
    /// Extra `[package]` lines.
    pub package_extra: String,
    /// The `[dependencies]` lines.
    pub dependencies: String,
    /// The `[dev-dependencies]` lines.
    pub dev_dependencies: String,
    /// The lints section.
    pub lints: String,
}

/// The golden state files of a crate with `kind`'s abilities: (relative path, bytes).
pub fn goldens(kind: Kind) -> Vec<(&'static str, &'static [u8])> {
    GOLDENS
        .iter()
        .filter(|(_, _, of)| (of.source && kind.source) || (of.sink && kind.sink))
        .map(|(path, bytes, _)| (*path, *bytes))
        .collect()
}

/// Renders every file of the crate: (relative path, contents).
pub fn render(vars: &Vars) -> Vec<(String, String)> {
    let what = match (vars.kind.source, vars.kind.sink) {
        (true, true) => "a source and a sink",
        (true, false) => "a source",
        _ => "a sink",
    };
    let crate_name = format!("weir-connector-{}", vars.name);
    TEMPLATES
        .iter()
        .filter(|(path, _)| {
            (vars.kind.source || !path.starts_with("src/source/"))
                && (vars.kind.sink || !path.starts_with("src/sink/"))
        })
        .map(|(path, text)| {
            let text = sections(text, vars.kind)
                .replace("__package_extra__\n", &vars.package_extra)
                .replace("__dependencies__\n", &vars.dependencies)
                .replace("__dev_dependencies__\n", &vars.dev_dependencies)
                .replace("__lints__\n", &vars.lints)
                .replace("__crate_ident__", &crate_name.replace('-', "_"))
                .replace("__crate__", &crate_name)
                .replace("__name_ident__", &vars.name.replace('-', "_"))
                .replace("__name__", &vars.name)
                .replace("__Type__", &camel(&vars.name))
                .replace("__version__", &vars.version)
                .replace("__what__", what);
            ((*path).to_owned(), text)
        })
        .collect()
}

fn api_line_of(version: &str) -> Option<String> {
    let mut parts = version.split('.');
    Some(format!("{}.{}", parts.next()?, parts.next()?))
}

/// Runs `weir new`.
pub fn command(args: &NewArgs) -> Exit {
    match scaffold(args) {
        Ok(dir) => {
            println!(
                "created {} (weir-connector-{})\nnext: cd {} && weir test",
                dir.display(),
                args.name,
                dir.display()
            );
            Exit::Ok
        }
        Err(e) => {
            eprintln!("weir: {e}");
            Exit::Invalid
        }
    }
}

/// Creates the crate; returns its folder.
pub fn scaffold(args: &NewArgs) -> Result<PathBuf, String> {
    check_name(&args.name)?;
    let kind = Kind {
        source: args.source || args.both,
        sink: args.sink || args.both,
    };
    let repo = if args.standalone || args.dir.is_some() {
        None
    } else {
        weir_repo(&current_dir())
    };
    match repo {
        Some(root) => in_repo(&root, &args.name, kind),
        None => standalone(args, kind),
    }
}

fn write_all(dir: &Path, files: &[(String, String)], kind: Kind) -> Result<(), String> {
    for (path, bytes) in goldens(kind) {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        fs::write(&path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let mut sources = Vec::new();
    for (path, text) in files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        if path.extension().is_some_and(|e| e == "rs") {
            sources.push(path);
        }
    }
    // Format with the rustfmt.toml around the crate (the repository's, inside Weir); the
    // templates are correct Rust either way, so a missing rustfmt is no error.
    let _ = std::process::Command::new("rustfmt")
        .args(["--edition", "2021"])
        .args(&sources)
        .current_dir(dir)
        .status();
    Ok(())
}

const WORKSPACE_PACKAGE: &str = "edition.workspace = true\nrust-version.workspace = true\n\
license.workspace = true\nrepository.workspace = true\n";

fn in_repo(root: &Path, name: &str, kind: Kind) -> Result<PathBuf, String> {
    let dir = root.join("connectors").join(name);
    if dir.exists() {
        return Err(format!("{} already exists", dir.display()));
    }
    let api = package(&root.join("connector-api"))?;
    let line = api_line_of(&api.version).ok_or("cannot read the connector API version")?;
    let version = format!("0.1.0-{line}");
    // Read both files before writing anything, so a broken one leaves no half-made connector.
    let manifest_path = root.join("Cargo.toml");
    let manifest = fs::read_to_string(&manifest_path)
        .map_err(|e| format!("cannot read {}: {e}", manifest_path.display()))?;
    let mut doc = manifest
        .parse::<toml_edit::DocumentMut>()
        .map_err(|e| format!("{}: {}", manifest_path.display(), e.message()))?;
    let members = doc
        .get_mut("workspace")
        .and_then(|w| w.get_mut("members"))
        .and_then(|m| m.as_array_mut())
        .ok_or_else(|| format!("{}: no [workspace] members list", manifest_path.display()))?;
    let member = format!("connectors/{name}");
    if !members.iter().any(|m| m.as_str() == Some(&member)) {
        members.push(member);
    }
    let matrix_path = root.join("compat-matrix.toml");
    let matrix_text = fs::read_to_string(&matrix_path)
        .map_err(|e| format!("cannot read {}: {e}", matrix_path.display()))?;
    let matrix: weir_compat::Matrix = toml::from_str(&matrix_text)
        .map_err(|e| format!("{}: {}", matrix_path.display(), e.message()))?;
    if matrix.connectors.contains_key(name) {
        return Err(format!(
            "{} already has a connector `{name}`",
            matrix_path.display()
        ));
    }
    let lines: Vec<String> = if matrix.api_lines.is_empty() {
        vec![line.clone()]
    } else {
        matrix.api_lines.clone()
    };
    let vars = Vars {
        name: name.to_owned(),
        kind,
        version: version.clone(),
        package_extra: WORKSPACE_PACKAGE.to_owned(),
        dependencies: format!(
            "weir-connector-api.workspace = true\n{}async-trait.workspace = true\n",
            if kind.source {
                "weir-connector-base.workspace = true\n"
            } else {
                ""
            }
        ),
        dev_dependencies: "# By path without a version: `cargo package` strips test-only dependencies.\nweir-testkit = { path = \"../../testkit\" }\n".to_owned(),
        lints: "\n[lints]\nworkspace = true\n".to_owned(),
    };
    write_all(&dir, &render(&vars), kind)?;
    fs::write(&manifest_path, doc.to_string())
        .map_err(|e| format!("cannot write {}: {e}", manifest_path.display()))?;
    let quoted: Vec<String> = lines.iter().map(|l| format!("\"{l}\"")).collect();
    let entry = format!(
        "\n[connectors.{name}]\ncrate = \"weir-connector-{name}\"\n\n[[connectors.{name}.releases]]\nversion = \"{version}\"\napi-lines = [{}]\nstatus = \"supported\"\n",
        quoted.join(", ")
    );
    let mut text = matrix_text;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&entry);
    fs::write(&matrix_path, text)
        .map_err(|e| format!("cannot write {}: {e}", matrix_path.display()))?;
    Ok(dir)
}

fn standalone(args: &NewArgs, kind: Kind) -> Result<PathBuf, String> {
    let parent = args.dir.clone().unwrap_or_else(current_dir);
    let dir = parent.join(format!("weir-connector-{}", args.name));
    if dir.exists() {
        return Err(format!("{} already exists", dir.display()));
    }
    let line = weir_connector_api::API_LINE;
    let version = format!("0.1.0-{line}");
    let (dependencies, dev_dependencies) = match &args.weir_path {
        Some(weir) => {
            let weir = weir
                .canonicalize()
                .map_err(|e| format!("--weir-path {}: {e}", weir.display()))?;
            let api = package(&weir.join("connector-api"))?;
            let base = package(&weir.join("connector-base"))?;
            let testkit = package(&weir.join("testkit"))?;
            let dep = |name: &str, p: &crate::workspace::Package| {
                format!(
                    "{name} = {{ path = \"{}\", version = \"{}\" }}\n",
                    p.dir.display().to_string().replace('\\', "/"),
                    p.version
                )
            };
            (
                dep("weir-connector-api", &api)
                    + &(if kind.source {
                        dep("weir-connector-base", &base)
                    } else {
                        String::new()
                    })
                    + "async-trait = \"0.1\"\n",
                format!(
                    "weir-testkit = {{ path = \"{}\" }}\n",
                    testkit.dir.display().to_string().replace('\\', "/")
                ),
            )
        }
        None => (
            format!(
                "weir-connector-api = \"{line}\"\n{}async-trait = \"0.1\"\n",
                if kind.source {
                    format!("weir-connector-base = \"{BASE_VERSION}\"\n")
                } else {
                    String::new()
                }
            ),
            "weir-testkit = \"0.1\"\n".to_owned(),
        ),
    };
    let vars = Vars {
        name: args.name.clone(),
        kind,
        version,
        package_extra: "edition = \"2021\"\nlicense = \"Apache-2.0\"\n".to_owned(),
        dependencies,
        dev_dependencies,
        lints: "\n# A crate of its own, not a member of an enclosing workspace.\n[workspace]\n"
            .to_owned(),
    };
    write_all(&dir, &render(&vars), kind)?;
    // Start from the Weir checkout's lock file: the same dependency versions, so a shared
    // CARGO_TARGET_DIR reuses what is already built.
    if let Some(weir) = &args.weir_path {
        let lock = weir.join("Cargo.lock");
        if lock.is_file() {
            let _ = fs::copy(&lock, dir.join("Cargo.lock"));
        }
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_keep_only_the_chosen_abilities() {
        let text = "a\n// {{source}}\nsrc\n// {{/source}}\n// {{sink}}\nsnk\n// {{/sink}}\nz\n";
        let source = Kind {
            source: true,
            sink: false,
        };
        assert_eq!(sections(text, source), "a\nsrc\nz\n");
        let both = Kind {
            source: true,
            sink: true,
        };
        assert_eq!(sections(text, both), "a\nsrc\nsnk\nz\n");
    }

    #[test]
    fn names_are_checked_and_camel_cased() {
        assert!(check_name("my-store2").is_ok());
        for bad in ["My", "1x", "a_b", "a-", "a--b", ""] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert_eq!(camel("my-store"), "MyStore");
    }

    #[test]
    fn rendering_leaves_no_placeholder() {
        let vars = Vars {
            name: "my-store".into(),
            kind: Kind {
                source: true,
                sink: true,
            },
            version: "0.1.0-1.0".into(),
            package_extra: String::new(),
            dependencies: String::new(),
            dev_dependencies: String::new(),
            lints: String::new(),
        };
        let files = render(&vars);
        assert_eq!(files.len(), 17);
        for (path, text) in &files {
            assert!(!text.contains("__"), "{path} keeps a placeholder");
            assert!(!text.contains("{{"), "{path} keeps a marker");
        }
        let sink_only = render(&Vars {
            kind: Kind {
                source: false,
                sink: true,
            },
            ..vars
        });
        assert!(sink_only.iter().all(|(p, _)| !p.starts_with("src/source/")));
    }

    #[test]
    fn goldens_follow_the_abilities() {
        let names = |source, sink| -> Vec<&str> {
            goldens(Kind { source, sink })
                .into_iter()
                .map(|(path, _)| path)
                .collect()
        };
        assert_eq!(names(true, false), ["tests/golden/partition-split-v1.bin"]);
        assert_eq!(
            names(false, true),
            [
                "tests/golden/committable-v1.bin",
                "tests/golden/writer-state-v1.bin"
            ]
        );
        assert_eq!(names(true, true).len(), 3);
    }

    #[test]
    fn the_base_version_of_standalone_scaffolds_is_the_base_crate_s() {
        let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../connector-base/Cargo.toml");
        let text = std::fs::read_to_string(manifest).unwrap_or_default();
        let version = text
            .lines()
            .find_map(|l| l.strip_prefix("version = \""))
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or_default();
        let requirement = semver_prefix(version);
        assert_eq!(BASE_VERSION, requirement, "{manifest}: version {version}");
    }

    /// `0.1` of `0.1.3`, `1` of `1.2.0`: the caret requirement a dependent writes.
    fn semver_prefix(version: &str) -> String {
        let parts: Vec<&str> = version.split('.').collect();
        match parts.as_slice() {
            ["0", minor, ..] => format!("0.{minor}"),
            [major, ..] => (*major).to_owned(),
            [] => String::new(),
        }
    }
}

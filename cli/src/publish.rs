//! `weir publish <connector>`: checks a connector crate for release, then `cargo publish`.
//!
//! The checks, all reported at once before anything is built:
//! 1. the version is `MAJOR.MINOR.PATCH-API` and `API` is the line of its
//!    `weir-connector-api` dependency;
//! 2. inside the Weir repository: `compat-matrix.toml` passes its checks for this connector
//!    and lists the version as `supported`;
//! 3. `README.md` and `CHANGELOG.md` exist, and the changelog mentions the version;
//! 4. a conformance report of this crate and version (written by `weir test`) passes, and is
//!    newer than every file of the crate;
//!
//! then `cargo package` verifies that the packaged crate builds, and `cargo publish` (with
//! `--dry-run`: without uploading) publishes it to the chosen registry.

use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use weir_compat::{api_line_of_requirement, ConnectorVersion};

use crate::workspace::{cargo_command, connector, target_dir, Package};
use crate::Exit;

/// Options of `weir publish`.
#[derive(Debug, Clone, clap::Args)]
pub struct PublishArgs {
    /// The connector (`kafka` or `weir-connector-kafka`) [default: the crate in the current
    /// directory].
    pub connector: Option<String>,
    /// Check and package, but do not upload.
    #[arg(long)]
    pub dry_run: bool,
    /// The registry to publish to (as configured for cargo) [default: crates.io].
    #[arg(long, value_name = "NAME")]
    pub registry: Option<String>,
    /// Package even with uncommitted changes (implied by --dry-run).
    #[arg(long)]
    pub allow_dirty: bool,
}

/// Runs `weir publish`.
pub fn command(args: &PublishArgs) -> Exit {
    let (package, repo) = match connector(args.connector.as_deref()) {
        Ok(found) => found,
        Err(e) => {
            eprintln!("weir: {e}");
            return Exit::Invalid;
        }
    };
    let problems = checks(&package, repo.as_deref());
    if !problems.is_empty() {
        for problem in &problems {
            eprintln!("publish: error: {problem}");
        }
        eprintln!(
            "publish: {} {} is not ready: {} problem{}; nothing was packaged",
            package.name,
            package.version,
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        );
        return Exit::Failed;
    }
    println!(
        "publish: {} {}: version, matrix, docs and conformance report OK",
        package.name, package.version
    );
    match cargo_steps(&package, repo.as_deref(), args) {
        Ok(()) => Exit::Ok,
        Err(e) => {
            eprintln!("publish: error: {e}");
            Exit::Failed
        }
    }
}

/// Every problem that stops the release (empty: ready).
pub fn checks(package: &Package, repo: Option<&Path>) -> Vec<String> {
    let mut problems = Vec::new();
    let name = &package.name;
    let version = &package.version;
    // 1. The version form and its API suffix.
    match ConnectorVersion::from_str(version) {
        Err(_) => problems.push(format!(
            "{name}: version `{version}` is not MAJOR.MINOR.PATCH-API (e.g. `1.0.0-1.0`): the \
             suffix names the weir-connector-api line it builds against"
        )),
        Ok(parsed) => {
            if let Some(required) = api_requirement(&package.dir, repo) {
                match api_line_of_requirement(&required) {
                    Ok(line) if line != parsed.api => problems.push(format!(
                        "{name}: version `{version}` claims API line {} but the crate depends \
                         on weir-connector-api `{required}` (line {line}): make them agree",
                        parsed.api
                    )),
                    _ => {}
                }
            }
        }
    }
    // 2. The matrix.
    if let Some(root) = repo {
        let short = name.strip_prefix("weir-connector-").unwrap_or(name);
        let matrix = root.join("compat-matrix.toml");
        if let Err(errors) = weir_compat::check(root, &matrix) {
            let mine = format!("connectors/{short}");
            for error in errors {
                let text = error.to_string();
                if text.contains(name.as_str())
                    || text.contains(&mine)
                    || text.contains(&format!("`{short}`"))
                    || text.contains(&format!("connectors.{short}"))
                {
                    problems.push(format!("compat: {text}"));
                }
            }
        }
        let supported = fs::read_to_string(&matrix)
            .ok()
            .and_then(|t| toml::from_str::<weir_compat::Matrix>(&t).ok())
            .and_then(|m| m.connectors.get(short).cloned())
            .is_some_and(|c| {
                c.releases
                    .iter()
                    .any(|r| r.version == *version && r.status == "supported")
            });
        if !supported {
            problems.push(format!(
                "{}: no `supported` release {version} under [connectors.{short}]: add it before \
                 publishing",
                matrix.display()
            ));
        }
    }
    // 3. Docs.
    for doc in ["README.md", "CHANGELOG.md"] {
        let path = package.dir.join(doc);
        match fs::read_to_string(&path) {
            Ok(text) if text.trim().is_empty() => {
                problems.push(format!("{} is empty", path.display()));
            }
            Ok(text) if doc == "CHANGELOG.md" && !text.contains(version.as_str()) => {
                problems.push(format!(
                    "{} does not mention {version}: add what changed in this release",
                    path.display()
                ));
            }
            Ok(_) => {}
            Err(_) => problems.push(format!(
                "{} is missing: {}",
                path.display(),
                if doc == "README.md" {
                    "document the options (`weir connectors <name>` prints the table), the \
                     guarantees and an example"
                } else {
                    "list the changes of every release"
                }
            )),
        }
    }
    // 4. A fresh, passing conformance report.
    problems.extend(report_problems(package));
    problems
}

/// The `weir-connector-api` requirement of the crate (through the workspace when inherited).
fn api_requirement(dir: &Path, repo: Option<&Path>) -> Option<String> {
    let text = fs::read_to_string(dir.join("Cargo.toml")).ok()?;
    let doc = text.parse::<toml_edit::DocumentMut>().ok()?;
    let dep = doc.get("dependencies")?.get("weir-connector-api")?;
    if let Some(v) = dep.as_str() {
        return Some(v.to_owned());
    }
    if let Some(v) = dep.get("version").and_then(|v| v.as_str()) {
        return Some(v.to_owned());
    }
    if dep.get("workspace").and_then(toml_edit::Item::as_bool) == Some(true) {
        let root = fs::read_to_string(repo?.join("Cargo.toml")).ok()?;
        let root = root.parse::<toml_edit::DocumentMut>().ok()?;
        let ws = root
            .get("workspace")?
            .get("dependencies")?
            .get("weir-connector-api")?;
        return ws
            .get("version")
            .and_then(|v| v.as_str())
            .or_else(|| ws.as_str())
            .map(str::to_owned);
    }
    None
}

fn newest_file(dir: &Path) -> Option<(SystemTime, PathBuf)> {
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                let skip = path
                    .file_name()
                    .is_some_and(|n| n == "target" || n.to_string_lossy().starts_with('.'));
                if !skip {
                    stack.push(path);
                }
            } else if let Ok(modified) = meta.modified() {
                if newest.as_ref().is_none_or(|(t, _)| *t < modified) {
                    newest = Some((modified, path));
                }
            }
        }
    }
    newest
}

fn report_problems(package: &Package) -> Vec<String> {
    let dir = target_dir(&package.dir).join("weir-testkit");
    let hint = format!(
        "run `weir test` for {} first (it writes the reports into {})",
        package.name,
        dir.display()
    );
    let mut reports = Vec::new();
    for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let Some(report) = fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        else {
            continue;
        };
        let crate_name = report
            .pointer("/crate_info/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        if crate_name == package.name {
            reports.push((path, report));
        }
    }
    if reports.is_empty() {
        return vec![format!("no conformance report of {}: {hint}", package.name)];
    }
    let newest = newest_file(&package.dir);
    let mut problems = Vec::new();
    for (path, report) in reports {
        let version = report
            .pointer("/crate_info/version")
            .and_then(Value::as_str)
            .unwrap_or("");
        if version != package.version {
            problems.push(format!(
                "{} is about version {version}, not {}: {hint}",
                path.display(),
                package.version
            ));
            continue;
        }
        let failed = report
            .pointer("/totals/failed")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let passed = report
            .pointer("/totals/passed")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if failed > 0 {
            problems.push(format!(
                "{} has {failed} failed case{}: fix them and run `weir test` again",
                path.display(),
                if failed == 1 { "" } else { "s" }
            ));
        } else if passed == 0 {
            problems.push(format!("{} has no passed case", path.display()));
        }
        let oldest_case = report
            .get("cases")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("finished_at_ms").and_then(Value::as_u64))
            .min()
            .unwrap_or(0);
        if let Some((modified, file)) = &newest {
            let modified_ms = modified
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            if modified_ms > oldest_case {
                problems.push(format!(
                    "{} is stale: {} changed after its cases ran; {hint}",
                    path.display(),
                    file.display()
                ));
            }
        }
    }
    problems
}

/// The Weir crates the connector depends on by path inside the repository (they are packaged
/// along with it so that verification can resolve them before they are published).
fn path_dependencies(package: &Package, repo: Option<&Path>) -> Vec<String> {
    let Some(root) = repo else {
        return Vec::new();
    };
    let Ok(text) = fs::read_to_string(package.dir.join("Cargo.toml")) else {
        return Vec::new();
    };
    let Ok(doc) = text.parse::<toml_edit::DocumentMut>() else {
        return Vec::new();
    };
    let root_text = fs::read_to_string(root.join("Cargo.toml")).unwrap_or_default();
    let root_doc = root_text
        .parse::<toml_edit::DocumentMut>()
        .unwrap_or_default();
    let mut crates = Vec::new();
    if let Some(deps) = doc.get("dependencies").and_then(|d| d.as_table_like()) {
        for (name, dep) in deps.iter() {
            if !name.starts_with("weir-") {
                continue;
            }
            let by_path = dep.get("path").is_some()
                || (dep.get("workspace").and_then(toml_edit::Item::as_bool) == Some(true)
                    && root_doc
                        .get("workspace")
                        .and_then(|w| w.get("dependencies"))
                        .and_then(|d| d.get(name))
                        .and_then(|d| d.get("path"))
                        .is_some());
            if by_path {
                crates.push(name.to_owned());
            }
        }
    }
    crates
}

fn cargo_steps(package: &Package, repo: Option<&Path>, args: &PublishArgs) -> Result<(), String> {
    let dir = repo.map_or_else(|| package.dir.clone(), Path::to_path_buf);
    let mut selection = vec!["-p".to_owned(), package.name.clone()];
    let deps = path_dependencies(package, repo);
    let mut package_selection = selection.clone();
    for dep in &deps {
        package_selection.push("-p".to_owned());
        package_selection.push(dep.clone());
    }
    let dirty = args.allow_dirty || args.dry_run;
    let step = |what: &str, cargo_args: Vec<String>| -> Result<(), String> {
        println!("publish: {what}: cargo {}", cargo_args.join(" "));
        let status = cargo_command(&dir)
            .args(&cargo_args)
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!(
                "`cargo {}` failed ({status})",
                cargo_args.join(" ")
            ))
        }
    };
    let mut package_args = vec!["package".to_owned()];
    package_args.extend(package_selection.iter().cloned());
    if dirty {
        package_args.push("--allow-dirty".to_owned());
    }
    step("verifying the packaged crate builds", package_args)?;
    let mut publish_args = vec!["publish".to_owned()];
    if args.dry_run {
        // Unpublished Weir path dependencies go along, so the dry run can resolve them.
        publish_args.extend(package_selection);
        publish_args.push("--dry-run".to_owned());
    } else {
        publish_args.append(&mut selection);
    }
    if dirty {
        publish_args.push("--allow-dirty".to_owned());
    }
    if let Some(registry) = &args.registry {
        publish_args.push("--registry".to_owned());
        publish_args.push(registry.clone());
    }
    publish_args.push("--no-verify".to_owned());
    step(
        if args.dry_run {
            "publishing (dry run, nothing is uploaded)"
        } else {
            "publishing"
        },
        publish_args,
    )?;
    println!(
        "publish: {} {} {}",
        package.name,
        package.version,
        if args.dry_run {
            "is ready to publish (dry run)"
        } else {
            "is published"
        }
    );
    Ok(())
}

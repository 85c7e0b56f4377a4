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
//! 5. the registry side, asked through cargo: every Weir path dependency resolves from the
//!    registry the published crate will take it from (its `registry` key, else crates.io —
//!    whatever `--registry` says), and this version is not in the target registry yet (with
//!    `--dry-run` these are warnings);
//!
//! then `cargo package` verifies that the packaged crate builds, and `cargo publish` (with
//! `--dry-run`: without uploading) publishes it to the chosen registry.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
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
    /// Release for this API line too (repeatable) [default: the lines of the matrix's entries
    /// of this source version, else the crate's own line]. Each line `L` is published as
    /// `X.Y.Z-L`, depending on `weir-connector-api` `L`.
    #[arg(long = "api-line", value_name = "LINE")]
    pub api_lines: Vec<String>,
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
    let mut problems = checks(&package, repo.as_deref());
    // A version that is not MAJOR.MINOR.PATCH-API is already a problem of `checks`.
    let lines =
        match crate::publish_lines::lines_to_release(&package, repo.as_deref(), &args.api_lines) {
            Ok(lines) => lines,
            Err(e) if ConnectorVersion::from_str(&package.version).is_ok() => {
                eprintln!("weir: {e}");
                return Exit::Invalid;
            }
            Err(_) => Vec::new(),
        };
    problems.extend(crate::publish_lines::line_problems(&package, &lines));
    if !args.dry_run {
        problems.extend(registry_problems(
            &package,
            repo.as_deref(),
            args.registry.as_deref(),
        ));
    }
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
    if args.dry_run {
        for warning in registry_problems(&package, repo.as_deref(), args.registry.as_deref()) {
            eprintln!("publish: warning: {warning} (publishing for real stops here)");
        }
    }
    match cargo_steps(&package, repo.as_deref(), args)
        .and_then(|()| other_lines(&package, &lines, args))
    {
        Ok(()) => Exit::Ok,
        Err(e) => {
            eprintln!("publish: error: {e}");
            Exit::Failed
        }
    }
}

/// Releases the package made by [`cargo_steps`] for every line in `lines` besides its own.
fn other_lines(
    package: &Package,
    lines: &[weir_compat::ApiLine],
    args: &PublishArgs,
) -> Result<(), String> {
    let own = ConnectorVersion::from_str(&package.version).map_err(|_| {
        format!(
            "{}: version `{}` is not MAJOR.MINOR.PATCH-API",
            package.name, package.version
        )
    })?;
    let packaged = target_dir(&package.dir)
        .join("package")
        .join(format!("{}-{}.crate", package.name, package.version));
    for line in lines.iter().filter(|l| **l != own.api) {
        let dir = crate::publish_lines::variant(package, &packaged, *line)?;
        let version = own.with_api(*line);
        if args.dry_run {
            // A dry run cannot resolve the other line's API from a registry that may not have
            // it yet; the package is made and shown.
            println!(
                "publish: {} {version} (API line {line}) is packaged in {} (dry run, not \
                 uploaded)",
                package.name,
                dir.display()
            );
            continue;
        }
        crate::publish_lines::publish_variant(&dir, args.registry.as_deref(), false)?;
        println!("publish: {} {version} is published", package.name);
    }
    Ok(())
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

/// The reason a crate gives for having no conformance suites (`[package.metadata.weir]
/// conformance = "none: <reason>"`), e.g. a sink that discards what it gets and so has nothing
/// the suites could read back. Any other value, or none, means it has suites.
fn no_conformance_suites(package: &Package) -> Option<String> {
    let text = fs::read_to_string(package.dir.join("Cargo.toml")).ok()?;
    let doc = text.parse::<toml_edit::DocumentMut>().ok()?;
    let value = doc
        .get("package")?
        .get("metadata")?
        .get("weir")?
        .get("conformance")?
        .as_str()?;
    let reason = value.strip_prefix("none:")?.trim();
    (!reason.is_empty()).then(|| reason.to_owned())
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
    if let Some(reason) = no_conformance_suites(package) {
        eprintln!(
            "publish: warning: {} declares no conformance suites ({reason}); no report is \
             required, its own tests are its proof",
            package.name
        );
        return Vec::new();
    }
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

/// A Weir crate that the connector depends on by path (a normal or build dependency).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathDependency {
    /// The package name.
    pub name: String,
    /// The version requirement as written (`None`: none, and `cargo package` refuses that).
    pub version: Option<String>,
    /// The registry its `registry` key names: where the published crate takes it from
    /// (`None`: crates.io, whatever registry the dependent is published to).
    pub registry: Option<String>,
}

/// The Weir crates (`weir-*`) that `package` depends on by path, with what its published
/// manifest will say about them (workspace-inherited entries read from the workspace root:
/// `repo`, else the crate's own manifest).
pub fn weir_path_dependencies(package: &Package, repo: Option<&Path>) -> Vec<PathDependency> {
    let Some(doc) = fs::read_to_string(package.dir.join("Cargo.toml"))
        .ok()
        .and_then(|t| t.parse::<toml_edit::DocumentMut>().ok())
    else {
        return Vec::new();
    };
    let root_doc = match repo {
        Some(root) => fs::read_to_string(root.join("Cargo.toml"))
            .ok()
            .and_then(|t| t.parse::<toml_edit::DocumentMut>().ok()),
        None => Some(doc.clone()),
    };
    let inherited = |name: &str| {
        root_doc
            .as_ref()
            .and_then(|d| d.get("workspace"))
            .and_then(|w| w.get("dependencies"))
            .and_then(|d| d.get(name))
            .cloned()
    };
    let text = |item: &toml_edit::Item, key: &str| {
        item.get(key).and_then(|v| v.as_str()).map(str::to_owned)
    };
    let mut found = Vec::new();
    for table in ["dependencies", "build-dependencies"] {
        let Some(deps) = doc.get(table).and_then(|d| d.as_table_like()) else {
            continue;
        };
        for (key, dep) in deps.iter() {
            let dep = if dep.get("workspace").and_then(toml_edit::Item::as_bool) == Some(true) {
                match inherited(key) {
                    Some(entry) => entry,
                    None => continue,
                }
            } else {
                dep.clone()
            };
            let name = text(&dep, "package").unwrap_or_else(|| key.to_owned());
            if !name.starts_with("weir-") || dep.get("path").is_none() {
                continue;
            }
            found.push(PathDependency {
                name,
                version: text(&dep, "version"),
                registry: text(&dep, "registry"),
            });
        }
    }
    found
}

/// The Weir crates the connector depends on by path inside the repository (they are packaged
/// along with it so that verification can resolve them before they are published).
fn path_dependencies(package: &Package, repo: Option<&Path>) -> Vec<String> {
    let Some(root) = repo else {
        return Vec::new();
    };
    // Transitively: a dependency's own unpublished Weir path dependencies must be packaged
    // along too (s3 → files → weir-connector-base).
    let dirs = workspace_member_dirs(root);
    let mut seen: Vec<String> = Vec::new();
    let mut pending = vec![package.clone()];
    while let Some(next) = pending.pop() {
        for dep in weir_path_dependencies(&next, repo) {
            if dep.name == package.name || seen.contains(&dep.name) {
                continue;
            }
            if let Some(dir) = dirs.iter().find(|(n, _)| *n == dep.name).map(|(_, d)| d) {
                if let Ok(p) = crate::workspace::package(dir) {
                    pending.push(p);
                }
            }
            seen.push(dep.name);
        }
    }
    seen
}

/// The workspace's member crates under `root` (its `[workspace] members`), by package name.
fn workspace_member_dirs(root: &Path) -> Vec<(String, PathBuf)> {
    let members: Vec<String> = fs::read_to_string(root.join("Cargo.toml"))
        .ok()
        .and_then(|t| t.parse::<toml_edit::DocumentMut>().ok())
        .and_then(|d| {
            d.get("workspace")?.get("members")?.as_array().map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default();
    members
        .iter()
        .filter_map(|m| {
            let dir = root.join(m);
            crate::workspace::package(&dir).ok().map(|p| (p.name, dir))
        })
        .collect()
}

/// `crates.io` or `registry `NAME``.
fn registry_name(registry: Option<&str>) -> String {
    match registry {
        None | Some("crates-io") => "crates.io".to_owned(),
        Some(name) => format!("registry `{name}`"),
    }
}

/// What stops an upload to `registry` (crates.io when `None`), asked through cargo: a Weir
/// path dependency that does not resolve from the registry the published crate takes it
/// from, or this version already in the target registry.
pub fn registry_problems(
    package: &Package,
    repo: Option<&Path>,
    registry: Option<&str>,
) -> Vec<String> {
    let registry = registry.filter(|r| *r != "crates-io");
    let cwd = repo.map_or_else(|| package.dir.clone(), Path::to_path_buf);
    let probes = target_dir(&package.dir).join("weir-publish");
    let mut problems = Vec::new();
    for dep in weir_path_dependencies(package, repo) {
        let Some(req) = &dep.version else { continue };
        let from = dep.registry.as_deref().filter(|r| *r != "crates-io");
        if let Err(reason) = resolves(&cwd, &probes, &dep.name, req, from) {
            problems.push(unresolved(&package.name, &dep, req, registry, &reason));
        }
    }
    let exact = format!("={}", package.version);
    if resolves(&cwd, &probes, &package.name, &exact, registry).is_ok() {
        problems.push(format!(
            "{} {} is already in {}: a published version cannot be replaced; bump the version",
            package.name,
            package.version,
            registry_name(registry)
        ));
    }
    problems
}

/// The problem of a path dependency `dep` (requirement `req`) of `package` that does not resolve
/// from where the published crate takes it, when publishing to `target` (crates.io: `None`).
fn unresolved(
    package: &str,
    dep: &PathDependency,
    req: &str,
    target: Option<&str>,
    reason: &str,
) -> String {
    let from = dep.registry.as_deref().filter(|r| *r != "crates-io");
    let publish = match from {
        Some(r) => format!("cargo publish -p {} --registry {r}", dep.name),
        None => format!("cargo publish -p {}", dep.name),
    };
    let hint = match (from, target) {
        (None, Some(target)) => format!(
            ", or add `registry = \"{target}\"` to the dependency to take it from `{target}` \
             (without `registry` a dependency comes from crates.io, whatever registry its \
             dependent is published to)"
        ),
        _ => String::new(),
    };
    format!(
        "{} `{req}` (a path dependency of {package}) does not resolve from {}, where the \
         published crate will take it from ({reason}): publish it there first: `{publish}`{hint}",
        dep.name,
        registry_name(from),
    )
}

/// Whether cargo resolves `name = { version = req, registry }` (crates.io when `None`), with
/// the cargo configuration seen from `cwd`: a throwaway crate under `probes` is resolved with
/// `cargo generate-lockfile` (nothing is downloaded or built). The error is cargo's reason.
fn resolves(
    cwd: &Path,
    probes: &Path,
    name: &str,
    req: &str,
    registry: Option<&str>,
) -> Result<(), String> {
    static PROBE: AtomicU32 = AtomicU32::new(0);
    let dir = probes.join(format!(
        "probe-{}-{}",
        std::process::id(),
        PROBE.fetch_add(1, Ordering::Relaxed)
    ));
    let mut dep = toml_edit::InlineTable::new();
    dep.insert("version", req.into());
    if let Some(registry) = registry {
        dep.insert("registry", registry.into());
    }
    let mut doc = toml_edit::DocumentMut::new();
    let mut pkg = toml_edit::Table::new();
    pkg.insert("name", toml_edit::value("weir-publish-probe"));
    pkg.insert("version", toml_edit::value("0.0.0"));
    pkg.insert("edition", toml_edit::value("2021"));
    pkg.insert("publish", toml_edit::value(false));
    doc.insert("package", toml_edit::Item::Table(pkg));
    let mut deps = toml_edit::Table::new();
    deps.insert(name, toml_edit::value(dep));
    doc.insert("dependencies", toml_edit::Item::Table(deps));
    // Its own workspace, not a member of an enclosing one.
    doc.insert("workspace", toml_edit::Item::Table(toml_edit::Table::new()));
    let manifest = dir.join("Cargo.toml");
    let written = fs::create_dir_all(dir.join("src"))
        .and_then(|()| fs::write(dir.join("src").join("lib.rs"), ""))
        .and_then(|()| fs::write(&manifest, doc.to_string()));
    if let Err(e) = written {
        let _ = fs::remove_dir_all(&dir);
        return Err(format!("cannot write {}: {e}", manifest.display()));
    }
    // Run from `cwd` so that cargo reads the same configuration (registries) as for publishing.
    let output = cargo_command(cwd)
        .arg("generate-lockfile")
        .arg("--manifest-path")
        .arg(&manifest)
        .stdin(Stdio::null())
        .output();
    let _ = fs::remove_dir_all(&dir);
    let output = output.map_err(|e| format!("cannot run cargo: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(stderr
        .lines()
        .find_map(|l| l.strip_prefix("error: "))
        .map_or_else(
            || format!("`cargo generate-lockfile` failed ({})", output.status),
            |e| format!("cargo: {}", e.trim()),
        ))
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
    let packaged: Vec<&str> = package_selection
        .iter()
        .filter(|a| *a != "-p")
        .map(String::as_str)
        .collect();
    crate::publish_cache::forget_local_packages(&packaged);
    crate::publish_cache::forget_compiled(&target_dir(&dir), &packaged);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn crate_at(dir: &Path, manifest: &str) -> Package {
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join("Cargo.toml"), manifest).unwrap();
        crate::workspace::package(dir).unwrap()
    }

    #[test]
    fn a_crate_without_suites_says_why_or_needs_a_report() {
        let tmp =
            std::env::temp_dir().join(format!("weir-publish-no-suites-{}", std::process::id()));
        let head = "[package]\nname = \"weir-connector-void\"\nversion = \"1.0.0-1.1\"\n";
        let with = |metadata: &str| crate_at(&tmp, &format!("{head}{metadata}"));
        let declared = with(
            "\n[package.metadata.weir]\nconformance = \"none: it keeps nothing to read back\"\n",
        );
        assert_eq!(
            no_conformance_suites(&declared).as_deref(),
            Some("it keeps nothing to read back")
        );
        assert!(report_problems(&declared).is_empty());
        // Without a reason, or without the declaration, a report is required.
        let bare = with("\n[package.metadata.weir]\nconformance = \"none:\"\n");
        assert_eq!(no_conformance_suites(&bare), None);
        assert!(no_conformance_suites(&with("")).is_none());
        let _ = fs::remove_dir_all(&tmp);
    }

    #[test]
    fn path_dependencies_say_where_the_published_crate_takes_them_from() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(
            tmp.path().join("Cargo.toml"),
            "[workspace]\nmembers = [\"c\"]\n\n[workspace.dependencies]\n\
             weir-connector-api = { path = \"api\", version = \"1.0.0\" }\n\
             weir-runtime = { version = \"0.1\" }\n",
        )
        .unwrap();
        let package = crate_at(
            &tmp.path().join("c"),
            "[package]\nname = \"weir-connector-c\"\nversion = \"1.0.0-1.0\"\n\n\
             [dependencies]\nweir-connector-api.workspace = true\nweir-runtime.workspace = true\n\
             tokio = { path = \"../tokio\", version = \"1\" }\n\
             wf = { package = \"weir-formats\", path = \"../f\", version = \"0.1\", registry = \"corp\" }\n\n\
             [build-dependencies]\nweir-build = { path = \"../b\" }\n\n\
             [dev-dependencies]\nweir-testkit = { path = \"../t\" }\n",
        );
        let deps = weir_path_dependencies(&package, Some(tmp.path()));
        let dep = |name: &str, version: Option<&str>, registry: Option<&str>| PathDependency {
            name: name.to_owned(),
            version: version.map(str::to_owned),
            registry: registry.map(str::to_owned),
        };
        assert_eq!(
            deps,
            vec![
                dep("weir-connector-api", Some("1.0.0"), None),
                dep("weir-formats", Some("0.1"), Some("corp")),
                dep("weir-build", None, None),
            ]
        );
        assert_eq!(
            path_dependencies(&package, Some(tmp.path())),
            ["weir-connector-api", "weir-formats", "weir-build"]
        );
        // Outside a repository nothing is packaged along.
        assert!(path_dependencies(&package, None).is_empty());
    }

    #[test]
    fn an_unresolved_dependency_says_what_to_publish_where() {
        let api = PathDependency {
            name: "weir-connector-api".into(),
            version: Some("1.0.0".into()),
            registry: None,
        };
        assert_eq!(
            unresolved("weir-connector-x", &api, "1.0.0", None, "cargo: not found"),
            "weir-connector-api `1.0.0` (a path dependency of weir-connector-x) does not resolve \
             from crates.io, where the published crate will take it from (cargo: not found): \
             publish it there first: `cargo publish -p weir-connector-api`"
        );
        // Published elsewhere, a dependency without `registry` still comes from crates.io.
        let text = unresolved("weir-connector-x", &api, "1.0.0", Some("corp"), "r");
        assert!(
            text.ends_with(
                "`cargo publish -p weir-connector-api`, or add `registry = \"corp\"` to the \
                 dependency to take it from `corp` (without `registry` a dependency comes from \
                 crates.io, whatever registry its dependent is published to)"
            ),
            "{text}"
        );
        let from_corp = PathDependency {
            registry: Some("corp".into()),
            ..api
        };
        assert!(
            unresolved("weir-connector-x", &from_corp, "1.0.0", Some("corp"), "r").ends_with(
                "from registry `corp`, where the published crate will take it from (r): publish \
                 it there first: `cargo publish -p weir-connector-api --registry corp`"
            )
        );
    }
}

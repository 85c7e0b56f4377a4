//! Building connectors against an API line other than the one in this tree (`weir compat
//! check --run`): the line's platform — `weir-connector-api`, `weir-runtime`, `weir-testkit` and
//! `weir-formats` as released with that line, packaged under `compat/platform/<line>/` — is
//! unpacked, and a workspace of its own under `target/compat/line-<line>/` holds the
//! connectors' current sources (and the in-tree crates they need, such as
//! `weir-connector-base`) with manifests that take the platform from those packages, as a
//! published connector would take them from its registry. Nothing of the in-tree API of the
//! newer line can leak in: a connector that uses a newer item fails to build there.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use toml_edit::{value, DocumentMut, InlineTable, Item, Table};

use crate::workspace::package;

/// A workspace for one older API line.
#[derive(Debug)]
pub struct LineWorkspace {
    /// Its root (holds `Cargo.toml` and `Cargo.lock`).
    pub root: PathBuf,
    /// Where cargo builds it: the repository's own `target/`. The line's workspace takes the
    /// repository's `Cargo.lock`, so every crate from crates.io is the one already built there
    /// and only the line's platform and the connectors are compiled again (their package ids
    /// differ by path, so nothing of the tree's build is replaced).
    pub target_dir: PathBuf,
}

/// The in-tree crates a member may depend on, by package name: their directories.
fn in_tree_crates(repo: &Path) -> BTreeMap<String, PathBuf> {
    let mut crates = BTreeMap::new();
    let mut dirs = vec![repo.join("connector-base")];
    if let Ok(entries) = fs::read_dir(repo.join("connectors")) {
        dirs.extend(entries.flatten().map(|e| e.path()));
    }
    for dir in dirs {
        if let Ok(p) = package(&dir) {
            crates.insert(p.name, dir);
        }
    }
    crates
}

/// The platform packages of `line`: package name → (version, `.crate` file).
fn platform_packages(
    repo: &Path,
    line: &str,
) -> Result<BTreeMap<String, (String, PathBuf)>, String> {
    let dir = repo.join("compat/platform").join(line);
    let entries = fs::read_dir(&dir).map_err(|e| {
        format!(
            "API line {line} has no platform packages in {} ({e}): package weir-connector-api, \
             weir-runtime, weir-testkit and weir-formats at that line's release there \
             (`cargo package --no-verify`)",
            dir.display()
        )
    })?;
    let mut found = BTreeMap::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(stem) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".crate"))
        else {
            continue;
        };
        // `<name>-<version>`, the version starting at the first `-<digit>`.
        let split = stem
            .char_indices()
            .find(|&(i, c)| c == '-' && stem[i + 1..].starts_with(|d: char| d.is_ascii_digit()));
        if let Some((i, _)) = split {
            found.insert(
                stem[..i].to_owned(),
                (stem[i + 1..].to_owned(), path.clone()),
            );
        }
    }
    if !found.contains_key("weir-connector-api") {
        return Err(format!(
            "{} holds no weir-connector-api package for line {line}",
            dir.display()
        ));
    }
    Ok(found)
}

fn unpack(crate_file: &Path, into: &Path) -> Result<(), String> {
    let file = fs::File::open(crate_file)
        .map_err(|e| format!("cannot open {}: {e}", crate_file.display()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    archive
        .unpack(into)
        .map_err(|e| format!("cannot unpack {}: {e}", crate_file.display()))
}

/// The dependency tables of a manifest (plain and per target).
fn dependency_tables(doc: &mut DocumentMut) -> Vec<&mut Table> {
    let mut tables = Vec::new();
    let mut targets = Vec::new();
    for (key, item) in doc.as_table_mut().iter_mut() {
        match key.get() {
            "dependencies" | "dev-dependencies" | "build-dependencies" => {
                if let Some(t) = item.as_table_mut() {
                    tables.push(t);
                }
            }
            "target" => targets.push(item),
            _ => {}
        }
    }
    for item in targets {
        if let Some(target) = item.as_table_mut() {
            for (_, platform) in target.iter_mut() {
                if let Some(platform) = platform.as_table_mut() {
                    for (key, deps) in platform.iter_mut() {
                        if matches!(
                            key.get(),
                            "dependencies" | "dev-dependencies" | "build-dependencies"
                        ) {
                            if let Some(t) = deps.as_table_mut() {
                                tables.push(t);
                            }
                        }
                    }
                }
            }
        }
    }
    tables
}

/// The package a dependency entry names (its `package` key, else the key).
fn dependency_package(key: &str, item: &Item) -> String {
    item.get("package")
        .and_then(Item::as_str)
        .unwrap_or(key)
        .to_owned()
}

/// An entry of the repository's `[workspace.dependencies]`, as an inline table.
fn workspace_entry(root_doc: &DocumentMut, key: &str) -> Option<InlineTable> {
    let item = root_doc.get("workspace")?.get("dependencies")?.get(key)?;
    if let Some(v) = item.as_str() {
        let mut t = InlineTable::new();
        t.insert("version", v.into());
        return Some(t);
    }
    item.as_inline_table()
        .cloned()
        .or_else(|| item.as_table().map(|t| t.clone().into_inline_table()))
}

/// Rewrites one member manifest: workspace dependencies spelled out, the platform taken by
/// version (from the patched registry), other in-tree crates by path to their members.
/// Returns the in-tree crates it needs.
fn rewrite_manifest(
    text: &str,
    root_doc: &DocumentMut,
    platform: &BTreeMap<String, (String, PathBuf)>,
    in_tree: &BTreeMap<String, PathBuf>,
) -> Result<(String, BTreeSet<String>), String> {
    let mut doc = text
        .parse::<DocumentMut>()
        .map_err(|e| format!("cannot parse a manifest: {e}"))?;
    let mut needs = BTreeSet::new();
    for table in dependency_tables(&mut doc) {
        let keys: Vec<String> = table.iter().map(|(k, _)| k.to_owned()).collect();
        for key in keys {
            let Some(item) = table.get(&key) else {
                continue;
            };
            let name = dependency_package(&key, item);
            let mut spec = if item.get("workspace").and_then(Item::as_bool) == Some(true) {
                let mut base = workspace_entry(root_doc, &key).ok_or_else(|| {
                    format!("`{key}` is inherited but the workspace does not define it")
                })?;
                // Keys beside `workspace = true` (features, optional) add to the inherited ones;
                // features are the union, as cargo has it.
                let local: Vec<(String, toml_edit::Value)> = if let Some(t) = item.as_inline_table()
                {
                    t.iter().map(|(k, v)| (k.to_owned(), v.clone())).collect()
                } else if let Some(t) = item.as_table() {
                    t.iter()
                        .filter_map(|(k, v)| Some((k.to_owned(), v.as_value()?.clone())))
                        .collect()
                } else {
                    Vec::new()
                };
                for (k, v) in local {
                    match (k.as_str(), base.get_mut("features"), v.as_array()) {
                        ("workspace", _, _) => {}
                        ("features", Some(toml_edit::Value::Array(have)), Some(more)) => {
                            for feature in more {
                                if !have.iter().any(|f| f.as_str() == feature.as_str()) {
                                    have.push(feature.clone());
                                }
                            }
                        }
                        _ => {
                            base.insert(&k, v);
                        }
                    }
                }
                base
            } else if let Some(t) = item.as_inline_table() {
                t.clone()
            } else if let Some(t) = item.as_table() {
                t.clone().into_inline_table()
            } else if let Some(v) = item.as_str() {
                let mut t = InlineTable::new();
                t.insert("version", v.into());
                t
            } else {
                continue;
            };
            if let Some((version, _)) = platform.get(&name) {
                // The platform of the line, from the (patched) registry. The API keeps the
                // requirement the crate states, so a connector that needs a newer line fails
                // to resolve instead of silently building.
                spec.remove("path");
                if name != "weir-connector-api" || spec.get("version").is_none() {
                    spec.insert("version", format!("={version}").into());
                }
            } else if spec.contains_key("path") {
                if in_tree.contains_key(&name) {
                    spec.insert("path", format!("../{name}").into());
                    needs.insert(name.clone());
                } else {
                    return Err(format!(
                        "`{name}` is a path dependency that is neither part of the platform nor \
                         a connector or weir-connector-base: it cannot be built against another \
                         API line"
                    ));
                }
            }
            table.insert(&key, Item::Value(spec.into()));
        }
    }
    Ok((doc.to_string(), needs))
}

/// Writes the workspace of `line` for `connectors` (package names) and everything in the tree
/// they need. Returns where it is.
pub fn prepare(repo: &Path, line: &str, connectors: &[String]) -> Result<LineWorkspace, String> {
    let platform = platform_packages(repo, line)?;
    let in_tree = in_tree_crates(repo);
    let root = repo.join("target/compat").join(format!("line-{line}"));
    let target_dir = repo.join("target");
    if root.exists() {
        fs::remove_dir_all(&root).map_err(|e| format!("cannot clear {}: {e}", root.display()))?;
    }
    let platform_dir = root.join("platform");
    fs::create_dir_all(&platform_dir)
        .map_err(|e| format!("cannot create {}: {e}", platform_dir.display()))?;
    for (_, crate_file) in platform.values() {
        unpack(crate_file, &platform_dir)?;
    }
    let root_text = fs::read_to_string(repo.join("Cargo.toml"))
        .map_err(|e| format!("cannot read the repository's Cargo.toml: {e}"))?;
    let root_doc = root_text
        .parse::<DocumentMut>()
        .map_err(|e| format!("cannot parse the repository's Cargo.toml: {e}"))?;

    let mut pending: Vec<String> = connectors.to_vec();
    let mut members = BTreeSet::new();
    while let Some(name) = pending.pop() {
        if !members.insert(name.clone()) {
            continue;
        }
        let dir = in_tree
            .get(&name)
            .ok_or_else(|| format!("`{name}` is not a crate of this tree"))?;
        let member = root.join(&name);
        fs::create_dir_all(&member)
            .map_err(|e| format!("cannot create {}: {e}", member.display()))?;
        for entry in fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))? {
            let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
            let file_name = entry.file_name();
            if matches!(
                file_name.to_str(),
                Some("Cargo.toml" | "Cargo.lock" | "target")
            ) {
                continue;
            }
            link(&entry.path(), &member.join(&file_name))?;
        }
        let text = fs::read_to_string(dir.join("Cargo.toml"))
            .map_err(|e| format!("cannot read {}: {e}", dir.join("Cargo.toml").display()))?;
        let (manifest, needs) = rewrite_manifest(&text, &root_doc, &platform, &in_tree)
            .map_err(|e| format!("{}: {e}", dir.join("Cargo.toml").display()))?;
        fs::write(member.join("Cargo.toml"), manifest)
            .map_err(|e| format!("cannot write {}: {e}", member.display()))?;
        pending.extend(needs.into_iter().filter(|n| !members.contains(n)));
    }

    let mut manifest = DocumentMut::new();
    let mut workspace = Table::new();
    workspace.insert("resolver", value("2"));
    let mut list = toml_edit::Array::new();
    for member in &members {
        list.push(member.as_str());
    }
    workspace.insert("members", value(list));
    for key in ["package", "lints"] {
        if let Some(item) = root_doc.get("workspace").and_then(|w| w.get(key)) {
            workspace.insert(key, item.clone());
        }
    }
    manifest.insert("workspace", Item::Table(workspace));
    // The platform and the members stand in for the registry: every crate that asks for one of
    // them by version gets this copy.
    let mut patch = Table::new();
    for (name, (version, _)) in &platform {
        let mut t = InlineTable::new();
        t.insert("path", format!("platform/{name}-{version}").into());
        patch.insert(name, value(t));
    }
    for member in &members {
        let mut t = InlineTable::new();
        t.insert("path", member.as_str().into());
        patch.insert(member, value(t));
    }
    let mut patches = Table::new();
    patches.set_implicit(true);
    patches.insert("crates-io", Item::Table(patch));
    manifest.insert("patch", Item::Table(patches));
    for (key, item) in root_doc.iter() {
        if key == "profile" {
            manifest.insert(key, item.clone());
        }
    }
    fs::write(root.join("Cargo.toml"), manifest.to_string())
        .map_err(|e| format!("cannot write {}: {e}", root.display()))?;
    // The tree's lock file pins the same versions of everything else.
    if let Ok(lock) = fs::read(repo.join("Cargo.lock")) {
        fs::write(root.join("Cargo.lock"), lock)
            .map_err(|e| format!("cannot write {}: {e}", root.display()))?;
    }
    // Test fixtures find the installed servers and tools under the workspace's target/.
    let servers = repo.join("target/test-servers");
    if servers.exists() {
        fs::create_dir_all(root.join("target"))
            .map_err(|e| format!("cannot create {}: {e}", root.display()))?;
        link(&servers, &root.join("target/test-servers"))?;
    }
    Ok(LineWorkspace { root, target_dir })
}

#[cfg(unix)]
fn link(from: &Path, to: &Path) -> Result<(), String> {
    std::os::unix::fs::symlink(from, to)
        .map_err(|e| format!("cannot link {} to {}: {e}", to.display(), from.display()))
}

#[cfg(not(unix))]
fn link(from: &Path, to: &Path) -> Result<(), String> {
    Err(format!(
        "building against another API line needs symbolic links (unix): cannot link {} to {}",
        to.display(),
        from.display()
    ))
}

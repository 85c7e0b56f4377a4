//! `weir publish` for several API lines from one source: the crate is packaged once (as
//! `X.Y.Z-<its line>`), and for every other line `L` it is released for, a copy of that package
//! becomes `X.Y.Z-L`, depending on `weir-connector-api` `L`. Which lines: `--api-line`, else,
//! inside the Weir repository, the lines of the matrix entries of the crate's source version,
//! else its own line only.
//!
//! A line older than an API item the crate uses is refused before anything is packaged, naming
//! the item and where it is used (the same scan as `weir compat check`).

use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use toml_edit::{value, DocumentMut, Item, Table};
use weir_compat::api_items::uses_newer_than;
use weir_compat::{ApiLine, ConnectorVersion};

use crate::workspace::{cargo_command, target_dir, Package};

/// The lines to release `package` for: `requested` if any, else the matrix's entries of its
/// source version (inside the repository), else its own line.
pub fn lines_to_release(
    package: &Package,
    repo: Option<&Path>,
    requested: &[String],
) -> Result<Vec<ApiLine>, String> {
    let version = ConnectorVersion::from_str(&package.version).map_err(|_| {
        format!(
            "{}: version `{}` is not MAJOR.MINOR.PATCH-API",
            package.name, package.version
        )
    })?;
    let mut lines: Vec<ApiLine> = Vec::new();
    if requested.is_empty() {
        if let Some(root) = repo {
            let short = package
                .name
                .strip_prefix("weir-connector-")
                .unwrap_or(&package.name);
            let matrix = fs::read_to_string(root.join("compat-matrix.toml"))
                .ok()
                .and_then(|t| toml::from_str::<weir_compat::Matrix>(&t).ok());
            if let Some(entry) = matrix.as_ref().and_then(|m| m.connectors.get(short)) {
                for release in &entry.releases {
                    let Ok(v) = ConnectorVersion::from_str(&release.version) else {
                        continue;
                    };
                    if v.source() == version.source() && release.status == "supported" {
                        lines.push(v.api);
                    }
                }
            }
        }
    } else {
        for raw in requested {
            lines.push(
                ApiLine::from_str(raw)
                    .map_err(|_| format!("--api-line `{raw}` is not an API line such as `1.0`"))?,
            );
        }
    }
    if !lines.contains(&version.api) {
        lines.push(version.api);
    }
    lines.sort();
    lines.dedup();
    Ok(lines)
}

/// Problems that stop releasing `package` for `lines`: a line older than an item it uses.
pub fn line_problems(package: &Package, lines: &[ApiLine]) -> Vec<String> {
    let Some(oldest) = lines.iter().min() else {
        return Vec::new();
    };
    let src = package.dir.join("src");
    uses_newer_than(&src, *oldest)
        .into_iter()
        .map(|found| {
            let at = found
                .path
                .strip_prefix(&package.dir)
                .unwrap_or(&found.path)
                .display()
                .to_string();
            format!(
                "{}: cannot be released for API line {oldest}: {at}:{} uses {}, an item of API \
                 line {}: release it for line {} and newer only",
                package.name, found.line_no, found.item.name, found.item.line, found.item.line
            )
        })
        .collect()
}

/// The package of `package` for another line: the packaged crate with version `X.Y.Z-line` and
/// `weir-connector-api` `line`, unpacked into a directory of its own. `packaged` is the
/// `.crate` file `cargo package` wrote for the crate's own version.
pub fn variant(package: &Package, packaged: &Path, line: ApiLine) -> Result<PathBuf, String> {
    let own = ConnectorVersion::from_str(&package.version).map_err(|_| {
        format!(
            "{}: version `{}` is not MAJOR.MINOR.PATCH-API",
            package.name, package.version
        )
    })?;
    let version = own.with_api(line);
    let into = target_dir(&package.dir)
        .join("weir-publish/lines")
        .join(format!("{}-{version}", package.name));
    if into.exists() {
        fs::remove_dir_all(&into).map_err(|e| format!("cannot clear {}: {e}", into.display()))?;
    }
    fs::create_dir_all(&into).map_err(|e| format!("cannot create {}: {e}", into.display()))?;
    let file = fs::File::open(packaged)
        .map_err(|e| format!("cannot open the package {}: {e}", packaged.display()))?;
    tar::Archive::new(flate2::read::GzDecoder::new(file))
        .unpack(&into)
        .map_err(|e| format!("cannot unpack {}: {e}", packaged.display()))?;
    // The archive unpacks as `<name>-<own version>`; the copy is the line's version.
    let unpacked = into.join(format!("{}-{}", package.name, package.version));
    let dir = into.join(format!("{}-{version}", package.name));
    fs::rename(&unpacked, &dir)
        .map_err(|e| format!("cannot rename {}: {e}", unpacked.display()))?;
    let manifest = dir.join("Cargo.toml");
    let text = fs::read_to_string(&manifest)
        .map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
    let mut doc = text
        .parse::<DocumentMut>()
        .map_err(|e| format!("cannot parse {}: {e}", manifest.display()))?;
    doc["package"]["version"] = value(version.to_string());
    let api = doc
        .get_mut("dependencies")
        .and_then(|d| d.get_mut("weir-connector-api"))
        .ok_or_else(|| {
            format!(
                "{} has no weir-connector-api dependency",
                manifest.display()
            )
        })?;
    match api {
        Item::Table(t) => {
            t.insert("version", value(line.to_string()));
        }
        Item::Value(v) if v.is_inline_table() => {
            if let Some(t) = v.as_inline_table_mut() {
                t.insert("version", line.to_string().into());
            }
        }
        other => *other = value(line.to_string()),
    }
    // Its own workspace root: the copy is not part of any workspace around it.
    doc.insert("workspace", Item::Table(Table::new()));
    fs::write(&manifest, doc.to_string())
        .map_err(|e| format!("cannot write {}: {e}", manifest.display()))?;
    // The lock file of the original names the original version; `cargo package` writes the
    // original manifest and VCS data itself and refuses a source that already has them.
    for generated in ["Cargo.lock", "Cargo.toml.orig", ".cargo_vcs_info.json"] {
        let _ = fs::remove_file(dir.join(generated));
    }
    Ok(dir)
}

/// Publishes (or, with `dry_run`, checks the publication of) the package in `dir`.
pub fn publish_variant(dir: &Path, registry: Option<&str>, dry_run: bool) -> Result<(), String> {
    let mut args = vec![
        "publish".to_owned(),
        "--no-verify".to_owned(),
        "--allow-dirty".to_owned(),
    ];
    if dry_run {
        args.push("--dry-run".to_owned());
    }
    if let Some(registry) = registry {
        args.push("--registry".to_owned());
        args.push(registry.to_owned());
    }
    println!("publish: {}: cargo {}", dir.display(), args.join(" "));
    let status = cargo_command(dir)
        .args(&args)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "`cargo {}` failed in {} ({status})",
            args.join(" "),
            dir.display()
        ))
    }
}

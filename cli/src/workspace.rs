//! Finding things on disk: the Weir repository, connector crates, cargo and its target
//! directory.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The cargo that runs us (under `cargo run`), else `cargo` from the path.
pub fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"))
}

/// A `cargo` command without the variables `cargo run` sets for the weir package itself.
pub fn cargo_command(dir: &Path) -> Command {
    let mut cmd = Command::new(cargo());
    cmd.current_dir(dir);
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if key.starts_with("CARGO_PKG_")
            || matches!(
                key,
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_BIN_EXE_weir"
            )
        {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// The root of the Weir repository containing `start`: a Cargo workspace with
/// `compat-matrix.toml` and `connector-api/`.
pub fn weir_repo(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| {
            dir.join("compat-matrix.toml").is_file()
                && dir.join("connector-api").join("Cargo.toml").is_file()
                && std::fs::read_to_string(dir.join("Cargo.toml"))
                    .is_ok_and(|t| t.lines().any(|l| l.trim() == "[workspace]"))
        })
        .map(Path::to_path_buf)
}

/// The current directory (or `.`).
pub fn current_dir() -> PathBuf {
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
}

/// A crate's package name and version, read from its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// The package name.
    pub name: String,
    /// The version as written.
    pub version: String,
    /// The directory of `Cargo.toml`.
    pub dir: PathBuf,
}

/// Reads `dir/Cargo.toml`'s name and version.
pub fn package(dir: &Path) -> Result<Package, String> {
    let path = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let doc = text
        .parse::<toml_edit::DocumentMut>()
        .map_err(|e| format!("{}: not valid TOML: {}", path.display(), e.message()))?;
    let get = |key: &str| {
        doc.get("package")
            .and_then(|p| p.get(key))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let name = get("name").ok_or_else(|| format!("{}: no [package] name", path.display()))?;
    let version = get("version")
        .ok_or_else(|| format!("{}: no literal [package] version", path.display()))?;
    Ok(Package {
        name,
        version,
        dir: dir.to_path_buf(),
    })
}

/// The connector crate named `name` (`kafka` or `weir-connector-kafka`) in the repository, or
/// the crate in the current directory when `name` is `None`.
pub fn connector(name: Option<&str>) -> Result<(Package, Option<PathBuf>), String> {
    let cwd = current_dir();
    let repo = weir_repo(&cwd);
    match name {
        None => {
            let dir = cwd
                .ancestors()
                .find(|d| {
                    std::fs::read_to_string(d.join("Cargo.toml"))
                        .is_ok_and(|t| t.lines().any(|l| l.trim() == "[package]"))
                })
                .ok_or("no connector crate here: name one, or run this inside its folder")?;
            Ok((package(dir)?, repo))
        }
        Some(name) => {
            let short = name.strip_prefix("weir-connector-").unwrap_or(name);
            let root = repo.clone().ok_or_else(|| {
                format!(
                    "`{name}`: not inside the Weir repository; run `weir test` in the \
                     connector's own folder instead"
                )
            })?;
            let dir = root.join("connectors").join(short);
            if !dir.join("Cargo.toml").is_file() {
                let known: Vec<String> = std::fs::read_dir(root.join("connectors"))
                    .map(|rd| {
                        rd.filter_map(Result::ok)
                            .filter(|e| e.path().join("Cargo.toml").is_file())
                            .map(|e| e.file_name().to_string_lossy().into_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                return Err(format!(
                    "no connector `{short}` in {}{}; connectors: {}",
                    root.join("connectors").display(),
                    crate::pipeline::diag::hint(short, known.iter().map(String::as_str)),
                    known.join(", ")
                ));
            }
            Ok((package(&dir)?, repo))
        }
    }
}

/// Cargo's target directory for the crate or workspace in `dir`.
pub fn target_dir(dir: &Path) -> PathBuf {
    let output = cargo_command(dir)
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .output();
    if let Ok(output) = output {
        if output.status.success() {
            if let Ok(json) = serde_json::from_slice::<serde_json::Value>(&output.stdout) {
                if let Some(t) = json.get("target_directory").and_then(|t| t.as_str()) {
                    return PathBuf::from(t);
                }
            }
        }
    }
    dir.join("target")
}

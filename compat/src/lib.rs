//! # weir-compat
//!
//! The versioning and compat-matrix checker behind `cargo xtask compat` and `weir compat check`.
//!
//! It depends only on `std`, `serde`, `toml`, `thiserror` and `strsim`. The entry point is the
//! pure function [`check`]: it reads a
//! workspace tree and a matrix file, and returns either a [`Summary`] or **every** problem found
//! as a [`CompatError`].
//!
//! # Rules
//! - Each directory `connectors/<name>/` holds the crate `weir-connector-<name>`, versioned
//!   `MAJOR.MINOR.PATCH-API` where `API` is the `MAJOR.MINOR` of the `weir-connector-api` it
//!   builds against (read from its `[dependencies]`, through `[workspace.dependencies]` for
//!   `workspace = true`, or from the API crate's own version for a path dependency without one).
//! - The matrix lists every connector crate and no other, with a release entry for each crate's
//!   current version.
//! - Release entries: versions of the same form, no duplicates, `status` one of `supported`,
//!   `deprecated`, `unsupported`; their `api-lines` are known API lines and include the line of
//!   their own suffix.
//! - Support policy: the newest release of each of the last two connector majors is `supported`;
//!   a `supported` release lists every supported API line; the crate's current version is
//!   `supported`.

pub mod api_items;
mod version;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;

pub use version::{api_line_of_requirement, api_line_of_version, ApiLine, ConnectorVersion};

/// The name of the API crate every connector builds against.
pub const API_CRATE: &str = "weir-connector-api";
/// The prefix of every connector crate's package name.
pub const CONNECTOR_CRATE_PREFIX: &str = "weir-connector-";
/// The folder, under the workspace root, that holds one crate per connector.
pub const CONNECTORS_DIR: &str = "connectors";

/// What a successful check covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Connectors in the matrix (each with its crate).
    pub connectors: usize,
    /// Release entries in the matrix.
    pub releases: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "compat: {} connectors, {} releases checked, OK",
            self.connectors, self.releases
        )
    }
}

/// The status of a connector release in the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Maintained: builds and passes its suites on every supported API line.
    Supported,
    /// Still works, but users should move on; gets no new features.
    Deprecated,
    /// No longer maintained.
    Unsupported,
}

impl Status {
    /// Every status, as written in the matrix.
    pub const ALL: [&'static str; 3] = ["supported", "deprecated", "unsupported"];
}

impl FromStr for Status {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "supported" => Ok(Self::Supported),
            "deprecated" => Ok(Self::Deprecated),
            "unsupported" => Ok(Self::Unsupported),
            _ => Err(()),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Supported => "supported",
            Self::Deprecated => "deprecated",
            Self::Unsupported => "unsupported",
        })
    }
}

/// `compat-matrix.toml`, as written. Unknown keys are rejected.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Matrix {
    /// Supported API lines of `weir-connector-api`, oldest first.
    pub api_lines: Vec<String>,
    /// API lines no longer supported but still named by old releases, oldest first.
    #[serde(default)]
    pub retired_api_lines: Vec<String>,
    /// Connectors by name (the `<name>` of `connectors/<name>/`).
    #[serde(default)]
    pub connectors: BTreeMap<String, ConnectorEntry>,
}

/// One `[connectors.<name>]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConnectorEntry {
    /// The crate's package name, `weir-connector-<name>`.
    #[serde(rename = "crate")]
    pub crate_name: String,
    /// Every release of the connector (`[[connectors.<name>.releases]]`).
    #[serde(default)]
    pub releases: Vec<ReleaseEntry>,
}

/// One `[[connectors.<name>.releases]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ReleaseEntry {
    /// `MAJOR.MINOR.PATCH-API`.
    pub version: String,
    /// The API lines this release builds and passes its suites on.
    pub api_lines: Vec<String>,
    /// `supported`, `deprecated` or `unsupported` (validated by [`check`], so that a wrong value
    /// is reported with every other problem instead of stopping the parse).
    pub status: String,
}

/// One problem found by [`check`]. Each message names the file, the connector and the release
/// concerned, and says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompatError {
    /// A file the check needs could not be read.
    #[error("{}: cannot read: {message}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        message: String,
    },

    /// The matrix is not valid TOML, or has unknown keys or wrongly typed values.
    #[error(
        "{}: not a valid compat matrix: {message}\n  fix: a matrix has `api-lines` (required), \
         optionally `retired-api-lines`, and `[connectors.<name>]` tables with `crate` and \
         `[[connectors.<name>.releases]]` entries of `version`, `api-lines` and `status`; no other \
         keys (see the comment at the top of compat-matrix.toml)",
        path.display()
    )]
    MatrixSyntax {
        /// The matrix file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },

    /// The matrix lists no supported API line.
    #[error(
        "{}: `api-lines` is empty: list the supported weir-connector-api lines, e.g. \
         api-lines = [\"1.0\"]",
        matrix.display()
    )]
    NoSupportedApiLines {
        /// The matrix file.
        matrix: PathBuf,
    },

    /// An entry of the top-level `api-lines` or `retired-api-lines` is not `MAJOR.MINOR`.
    #[error(
        "{}: `{list}` entry \"{value}\" is not an API line: write MAJOR.MINOR, e.g. \"1.0\"",
        matrix.display()
    )]
    InvalidApiLine {
        /// The matrix file.
        matrix: PathBuf,
        /// `api-lines` or `retired-api-lines`.
        list: &'static str,
        /// The entry as written.
        value: String,
    },

    /// A top-level list of API lines is not strictly ascending (oldest first, no duplicates).
    #[error(
        "{}: `{list}` must list API lines oldest first without duplicates, but \"{line}\" comes \
         after \"{previous}\": reorder the list",
        matrix.display()
    )]
    ApiLinesOutOfOrder {
        /// The matrix file.
        matrix: PathBuf,
        /// `api-lines` or `retired-api-lines`.
        list: &'static str,
        /// The entry out of place.
        line: ApiLine,
        /// The entry before it.
        previous: ApiLine,
    },

    /// An API line is both supported and retired.
    #[error(
        "{}: API line \"{line}\" is in both `api-lines` and `retired-api-lines`: keep it in one",
        matrix.display()
    )]
    ApiLineSupportedAndRetired {
        /// The matrix file.
        matrix: PathBuf,
        /// The line.
        line: ApiLine,
    },

    /// A directory under `connectors/` has no `Cargo.toml`.
    #[error(
        "{}: connector `{connector}` has no Cargo.toml: add the crate's manifest or remove the \
         directory",
        dir.display()
    )]
    MissingManifest {
        /// The directory.
        dir: PathBuf,
        /// Its name.
        connector: String,
    },

    /// A connector's `Cargo.toml` cannot be parsed or lacks a needed field.
    #[error("{}: connector `{connector}`: {message}", manifest.display())]
    ManifestInvalid {
        /// The crate's Cargo.toml.
        manifest: PathBuf,
        /// The connector.
        connector: String,
        /// What is wrong.
        message: String,
    },

    /// The crate in `connectors/<name>/` is not called `weir-connector-<name>`.
    #[error(
        "{}: connector `{connector}`: the package is named `{found}` but the crate in \
         connectors/{connector}/ must be named `{expected}`: rename the package or the directory",
        manifest.display()
    )]
    CrateNameMismatch {
        /// The crate's Cargo.toml.
        manifest: PathBuf,
        /// The connector (directory name).
        connector: String,
        /// `weir-connector-<name>`.
        expected: String,
        /// The package name.
        found: String,
    },

    /// The crate's version is not `MAJOR.MINOR.PATCH-API`.
    #[error(
        "{}: connector `{connector}`: package version \"{version}\" is not of the form \
         MAJOR.MINOR.PATCH-API (e.g. \"1.0.0-1.0\", where API is the MAJOR.MINOR of the \
         weir-connector-api it builds against): fix `version` in [package]",
        manifest.display()
    )]
    CrateVersionFormat {
        /// The crate's Cargo.toml.
        manifest: PathBuf,
        /// The connector.
        connector: String,
        /// The version as written.
        version: String,
    },

    /// The crate does not depend on `weir-connector-api`.
    #[error(
        "{}: connector `{connector}` has no `weir-connector-api` entry in [dependencies]: every \
         connector builds against the API; add `weir-connector-api = {{ workspace = true }}`",
        manifest.display()
    )]
    MissingApiDependency {
        /// The crate's Cargo.toml.
        manifest: PathBuf,
        /// The connector.
        connector: String,
    },

    /// The `weir-connector-api` dependency does not pin one API line.
    #[error(
        "{}: connector `{connector}`: cannot tell which weir-connector-api line it builds \
         against: {reason}",
        manifest.display()
    )]
    ApiDependencyUnresolved {
        /// The crate's Cargo.toml.
        manifest: PathBuf,
        /// The connector.
        connector: String,
        /// Why, and what to do.
        reason: String,
    },

    /// The crate's version suffix is not the API line it builds against.
    #[error(
        "{}: connector `{connector}`: version \"{version}\" says API line {suffix}, but the crate \
         builds against weir-connector-api {dependency} ({via}): set the version to \
         \"{expected}\" (or depend on API line {suffix})",
        manifest.display()
    )]
    ApiSuffixMismatch {
        /// The crate's Cargo.toml.
        manifest: PathBuf,
        /// The connector.
        connector: String,
        /// The crate version.
        version: ConnectorVersion,
        /// The API line in the version.
        suffix: ApiLine,
        /// The API line of the dependency.
        dependency: ApiLine,
        /// Where the dependency's line was read.
        via: String,
        /// The version with the right suffix.
        expected: ConnectorVersion,
    },

    /// A connector crate has no `[connectors.<name>]` table in the matrix.
    #[error(
        "{}: connector `{connector}` ({}, version \"{version}\") is missing from the matrix: add \
         a [connectors.{connector}] table with crate = \"weir-connector-{connector}\" and a \
         [[connectors.{connector}.releases]] entry for its version",
        matrix.display(),
        manifest.display()
    )]
    ConnectorNotInMatrix {
        /// The matrix file.
        matrix: PathBuf,
        /// The connector.
        connector: String,
        /// The crate's Cargo.toml.
        manifest: PathBuf,
        /// The crate's version as written.
        version: String,
    },

    /// A `[connectors.<name>]` table has no crate in `connectors/<name>/`.
    #[error(
        "{}: connector `{connector}` is in the matrix but there is no crate at \
         connectors/{connector}/Cargo.toml: add the crate or remove [connectors.{connector}]{hint}",
        matrix.display()
    )]
    ConnectorWithoutCrate {
        /// The matrix file.
        matrix: PathBuf,
        /// The connector.
        connector: String,
        /// A "did you mean" naming a crate directory, or empty.
        hint: String,
    },

    /// A `crate` value is not `weir-connector-<name>`.
    #[error(
        "{}: connector `{connector}`: crate = \"{found}\" but the connector in \
         connectors/{connector}/ is the crate \"{expected}\": fix `crate`",
        matrix.display()
    )]
    MatrixCrateNameMismatch {
        /// The matrix file.
        matrix: PathBuf,
        /// The connector.
        connector: String,
        /// `weir-connector-<name>`.
        expected: String,
        /// The value written.
        found: String,
    },

    /// A release entry's version is not `MAJOR.MINOR.PATCH-API`.
    #[error(
        "{}: connector `{connector}`: release version \"{version}\" is not of the form \
         MAJOR.MINOR.PATCH-API (e.g. \"1.0.0-1.0\"): fix the `version` of this \
         [[connectors.{connector}.releases]] entry",
        matrix.display()
    )]
    ReleaseVersionFormat {
        /// The matrix file.
        matrix: PathBuf,
        /// The connector.
        connector: String,
        /// The version as written.
        version: String,
    },

    /// Two release entries have the same version.
    #[error(
        "{}: connector `{connector}`: release \"{version}\" is listed {count} times: keep one \
         [[connectors.{connector}.releases]] entry per version",
        matrix.display()
    )]
    DuplicateRelease {
        /// The matrix file.
        matrix: PathBuf,
        /// The connector.
        connector: String,
        /// The version.
        version: String,
        /// How many entries have it.
        count: usize,
    },

    /// A release's `status` is not one of the three known values.
    #[error(
        "{}: connector `{connector}`, release \"{release}\": unknown status \"{status}\": use \
         one of \"supported\", \"deprecated\", \"unsupported\"{hint}",
        matrix.display()
    )]
    UnknownStatus {
        /// The matrix file.
        matrix: PathBuf,
        /// The connector.
        connector: String,
        /// The release's version as written.
        release: String,
        /// The status as written.
        status: String,
        /// A "did you mean", or empty.
        hint: String,
    },

    /// An entry of a release's `api-lines` is not `MAJOR.MINOR`.
    #[error(
        "{}: connector `{connector}`, release \"{release}\": api-lines entry \"{value}\" is not \
         an API line: write MAJOR.MINOR, e.g. \"1.0\"",
        matrix.display()
    )]
    InvalidReleaseApiLine {
        /// The matrix file.
        matrix: PathBuf,
        /// The connector.
        connector: String,
        /// The release's version as written.
        release: String,
        /// The entry as written.
        value: String,
    },

    /// A release names an API line the matrix does not know.
    #[error(
        "{}: connector `{connector}`, release \"{release}\": API line \"{api_line}\" is not in \
         the matrix's `api-lines` (nor `retired-api-lines`): add it there if that API line \
         exists, or remove it from this release",
        matrix.display()
    )]
    UnknownApiLine {
        /// The matrix file.
        matrix: PathBuf,
        /// The connector.
        connector: String,
        /// The release's version as written.
        release: String,
        /// The unknown line.
        api_line: ApiLine,
    },

    /// A release's `api-lines` does not include the API line of its own version suffix.
    #[error(
        "{}: connector `{connector}`, release \"{release}\": it is built against API line \
         {suffix} (its version suffix) but its api-lines does not list \"{suffix}\": add it",
        matrix.display()
    )]
    SuffixNotInReleaseApiLines {
        /// The matrix file.
        matrix: PathBuf,
        /// The connector.
        connector: String,
        /// The release's version.
        release: ConnectorVersion,
        /// Its suffix.
        suffix: ApiLine,
    },

    /// A release lists an API line older than an item its sources use.
    #[error(
        "{}: connector `{connector}`, release \"{release}\" lists API line {line}, but {at} uses \
         {item}, an item of API line {item_line}: release it for line {item_line} and newer only \
         (an entry MAJOR.MINOR.PATCH-{item_line}), or stop using the item"
    , matrix.display())]
    UsesNewerApiItem {
        /// The matrix file.
        matrix: PathBuf,
        /// The connector.
        connector: String,
        /// The release entry's version as written.
        release: String,
        /// The oldest line it lists.
        line: ApiLine,
        /// The item.
        item: &'static str,
        /// The line that added the item.
        item_line: ApiLine,
        /// Where it is used (`path:line`).
        at: String,
    },

    /// An entry lists an API line older than the one its artifact is built against.
    #[error(
        "{}: connector `{connector}`, release \"{release}\": api-lines lists \"{line}\", older \
         than the line {} the release is built against; an artifact built on a newer line \
         cannot run on an older one: remove \"{line}\" (a release for {line} has its own entry, \
         version MAJOR.MINOR.PATCH-{line})",
        matrix.display(),
        release.api
    )]
    ApiLineBelowSuffix {
        /// The matrix file.
        matrix: PathBuf,
        /// The connector.
        connector: String,
        /// The release.
        release: ConnectorVersion,
        /// The older line it lists.
        line: ApiLine,
    },

    /// Policy (b): a supported release does not cover every supported API line from the
    /// oldest one it is built for upwards.
    #[error(
        "{}: connector `{connector}`, release \"{release}\": status is \"supported\" but its \
         api-lines lacks the supported API line(s) {}: a supported release must build and pass \
         its suites on every supported line from the oldest it is built for upwards; add them \
         (an entry MAJOR.MINOR.PATCH-<line> per line it is released for, or the line in an \
         existing entry's api-lines) or change its status",
        matrix.display(),
        quoted_list(missing)
    )]
    SupportedReleaseMissingApiLines {
        /// The matrix file.
        matrix: PathBuf,
        /// The connector.
        connector: String,
        /// The release's version as written.
        release: String,
        /// The supported lines it does not list.
        missing: Vec<ApiLine>,
    },

    /// Policy (a): the newest release of one of the last two majors is not supported.
    #[error(
        "{}: connector `{connector}`, release \"{release}\": it is the newest release of \
         connector major {major}, one of the last two majors ({}), but its status is \
         \"{status}\": the newest release of each of the last two majors must be \"supported\"; \
         set its status to \"supported\" or add a newer supported release of major {major}",
        matrix.display(),
        majors.iter().map(u64::to_string).collect::<Vec<_>>().join(" and ")
    )]
    NewestOfMajorNotSupported {
        /// The matrix file.
        matrix: PathBuf,
        /// The connector.
        connector: String,
        /// The release's version.
        release: ConnectorVersion,
        /// Its major.
        major: u64,
        /// The last two majors (or one, if the connector has one).
        majors: Vec<u64>,
        /// Its status.
        status: Status,
    },

    /// The crate's current version has no release entry.
    #[error(
        "{}: connector `{connector}`: the crate's current version \"{version}\" ({}) has no \
         release entry: add a [[connectors.{connector}.releases]] entry with version = \
         \"{version}\" and status = \"supported\"",
        matrix.display(),
        manifest.display()
    )]
    CurrentVersionNotInMatrix {
        /// The matrix file.
        matrix: PathBuf,
        /// The connector.
        connector: String,
        /// The crate's version.
        version: ConnectorVersion,
        /// The crate's Cargo.toml.
        manifest: PathBuf,
    },

    /// Policy (c): the crate's current version is not supported.
    #[error(
        "{}: connector `{connector}`, release \"{version}\": it is the crate's current version \
         but its status is \"{status}\": the version in the tree must be \"supported\"; set its \
         status to \"supported\" or bump the crate's version",
        matrix.display()
    )]
    CurrentReleaseNotSupported {
        /// The matrix file.
        matrix: PathBuf,
        /// The connector.
        connector: String,
        /// The crate's version.
        version: ConnectorVersion,
        /// Its status in the matrix.
        status: Status,
    },
}

fn quoted_list(lines: &[ApiLine]) -> String {
    lines
        .iter()
        .map(|l| format!("\"{l}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The entries of one supported source release (`MAJOR.MINOR.PATCH`): the oldest API line it
/// is built for, and every line its entries list.
type SupportedGroup = (Option<ApiLine>, BTreeSet<ApiLine>);

/// A connector crate found under `connectors/`.
#[derive(Debug)]
struct CrateInfo {
    /// Its Cargo.toml, as displayed.
    manifest: PathBuf,
    /// Its version as written (empty when unreadable).
    raw_version: String,
    /// Its version, when well formed.
    version: Option<ConnectorVersion>,
}

/// Checks the connector crates under `root/connectors/` against the matrix at `matrix`.
///
/// Returns every problem found, not only the first. Paths in errors are shown relative to `root`
/// when they lie under it.
pub fn check(root: &Path, matrix: &Path) -> Result<Summary, Vec<CompatError>> {
    let mut cx = Checker {
        root,
        errors: Vec::new(),
        root_manifest: None,
    };
    let crates = cx.scan_crates();
    let summary = match cx.load_matrix(matrix) {
        Some(parsed) => cx.check_matrix(&cx.display(matrix), &parsed, &crates),
        None => Summary {
            connectors: 0,
            releases: 0,
        },
    };
    if cx.errors.is_empty() {
        Ok(summary)
    } else {
        Err(cx.errors)
    }
}

struct Checker<'a> {
    root: &'a Path,
    errors: Vec<CompatError>,
    /// The root Cargo.toml, read on first need.
    root_manifest: Option<Result<toml::Table, String>>,
}

impl Checker<'_> {
    fn display(&self, path: &Path) -> PathBuf {
        path.strip_prefix(self.root)
            .map_or_else(|_| path.to_path_buf(), Path::to_path_buf)
    }

    fn read(&mut self, path: &Path) -> Option<String> {
        match fs::read_to_string(path) {
            Ok(text) => Some(text),
            Err(e) => {
                self.errors.push(CompatError::Read {
                    path: self.display(path),
                    message: e.to_string(),
                });
                None
            }
        }
    }

    // ---- connector crates -------------------------------------------------------------------

    fn scan_crates(&mut self) -> BTreeMap<String, CrateInfo> {
        let mut crates = BTreeMap::new();
        let dir = self.root.join(CONNECTORS_DIR);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            // A workspace without connectors yet.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return crates,
            Err(e) => {
                self.errors.push(CompatError::Read {
                    path: self.display(&dir),
                    message: e.to_string(),
                });
                return crates;
            }
        };
        let mut dirs: Vec<(String, PathBuf)> = Vec::new();
        for entry in entries {
            match entry {
                Ok(entry) => {
                    let path = entry.path();
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if path.is_dir() && !name.starts_with('.') {
                        dirs.push((name, path));
                    }
                }
                Err(e) => self.errors.push(CompatError::Read {
                    path: self.display(&dir),
                    message: e.to_string(),
                }),
            }
        }
        dirs.sort();
        for (name, path) in dirs {
            if let Some(info) = self.check_crate(&name, &path) {
                crates.insert(name, info);
            }
        }
        crates
    }

    fn check_crate(&mut self, connector: &str, dir: &Path) -> Option<CrateInfo> {
        let manifest_path = dir.join("Cargo.toml");
        let manifest = self.display(&manifest_path);
        if !manifest_path.is_file() {
            self.errors.push(CompatError::MissingManifest {
                dir: self.display(dir),
                connector: connector.to_owned(),
            });
            return None;
        }
        let mut info = CrateInfo {
            manifest: manifest.clone(),
            raw_version: String::new(),
            version: None,
        };
        let text = self.read(&manifest_path)?;
        let invalid = |message: String| CompatError::ManifestInvalid {
            manifest: manifest.clone(),
            connector: connector.to_owned(),
            message,
        };
        let table: toml::Table = match text.parse() {
            Ok(table) => table,
            Err(e) => {
                self.errors
                    .push(invalid(format!("Cargo.toml is not valid TOML: {e}")));
                return Some(info);
            }
        };
        let Some(package) = table.get("package").and_then(toml::Value::as_table) else {
            self.errors
                .push(invalid("Cargo.toml has no [package] table".to_owned()));
            return Some(info);
        };

        let expected = format!("{CONNECTOR_CRATE_PREFIX}{connector}");
        match package.get("name").and_then(toml::Value::as_str) {
            Some(name) if name == expected => {}
            Some(name) => self.errors.push(CompatError::CrateNameMismatch {
                manifest: manifest.clone(),
                connector: connector.to_owned(),
                expected,
                found: name.to_owned(),
            }),
            None => self
                .errors
                .push(invalid("[package] has no `name` string".to_owned())),
        }

        match package.get("version") {
            Some(toml::Value::String(raw)) => {
                info.raw_version.clone_from(raw);
                match raw.parse::<ConnectorVersion>() {
                    Ok(v) => info.version = Some(v),
                    Err(_) => self.errors.push(CompatError::CrateVersionFormat {
                        manifest: manifest.clone(),
                        connector: connector.to_owned(),
                        version: raw.clone(),
                    }),
                }
            }
            Some(_) => self.errors.push(invalid(
                "[package] `version` must be a string \"MAJOR.MINOR.PATCH-API\" written in the \
                 crate (connectors are versioned on their own, not with version.workspace)"
                    .to_owned(),
            )),
            None => self.errors.push(invalid(
                "[package] has no `version`: add version = \"MAJOR.MINOR.PATCH-API\", e.g. \
                 \"1.0.0-1.0\""
                    .to_owned(),
            )),
        }

        match self.api_dependency(&table, dir) {
            None => self.errors.push(CompatError::MissingApiDependency {
                manifest: manifest.clone(),
                connector: connector.to_owned(),
            }),
            Some(Err(reason)) => self.errors.push(CompatError::ApiDependencyUnresolved {
                manifest: manifest.clone(),
                connector: connector.to_owned(),
                reason,
            }),
            Some(Ok((dependency, via))) => {
                if let Some(version) = info.version {
                    if version.api != dependency {
                        self.errors.push(CompatError::ApiSuffixMismatch {
                            manifest,
                            connector: connector.to_owned(),
                            version,
                            suffix: version.api,
                            dependency,
                            via,
                            expected: version.with_api(dependency),
                        });
                    }
                }
            }
        }
        Some(info)
    }

    /// The API line the crate's `weir-connector-api` dependency pins, and where it was read;
    /// `None` when there is no such dependency.
    fn api_dependency(
        &mut self,
        manifest: &toml::Table,
        crate_dir: &Path,
    ) -> Option<Result<(ApiLine, String), String>> {
        let deps = manifest.get("dependencies")?.as_table()?;
        let (key, spec) = deps.iter().find(|(key, spec)| {
            key.as_str() == API_CRATE
                || spec.get("package").and_then(toml::Value::as_str) == Some(API_CRATE)
        })?;
        let inherited = spec
            .get("workspace")
            .and_then(toml::Value::as_bool)
            .unwrap_or(false);
        if !inherited {
            return Some(self.resolve_spec(spec, crate_dir, "[dependencies]"));
        }
        let root_manifest = self
            .root_manifest
            .get_or_insert_with(|| {
                let path = self.root.join("Cargo.toml");
                fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read the workspace's Cargo.toml: {e}"))?
                    .parse::<toml::Table>()
                    .map_err(|e| format!("the workspace's Cargo.toml is not valid TOML: {e}"))
            })
            .clone();
        let root_spec = root_manifest.and_then(|root| {
            root.get("workspace")
                .and_then(|w| w.get("dependencies"))
                .and_then(|d| d.get(key))
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "it uses `{key} = {{ workspace = true }}` but the workspace's Cargo.toml \
                         has no [workspace.dependencies] entry `{key}`: add one with the API's \
                         path and version"
                    )
                })
        });
        Some(root_spec.and_then(|spec| {
            self.resolve_spec(&spec, self.root, "[workspace.dependencies] of Cargo.toml")
        }))
    }

    /// Reads the API line from one dependency specification: its version requirement, or the
    /// version of the crate at its path.
    fn resolve_spec(
        &self,
        spec: &toml::Value,
        base: &Path,
        place: &str,
    ) -> Result<(ApiLine, String), String> {
        let version = match spec {
            toml::Value::String(req) => Some(req.as_str()),
            toml::Value::Table(t) => match t.get("version") {
                None => None,
                Some(toml::Value::String(req)) => Some(req.as_str()),
                Some(_) => return Err(format!("the `version` in {place} is not a string")),
            },
            _ => {
                return Err(format!(
                    "the entry in {place} is neither a string nor a table"
                ))
            }
        };
        if let Some(req) = version {
            return api_line_of_requirement(req)
                .map(|line| (line, format!("version requirement \"{req}\" in {place}")))
                .map_err(|e| format!("{e} (in {place})"));
        }
        let Some(path) = spec.get("path").and_then(toml::Value::as_str) else {
            return Err(format!(
                "the entry in {place} has neither `version` nor `path`: give it a version \
                 requirement such as \"1.0\""
            ));
        };
        let api_manifest = base.join(path).join("Cargo.toml");
        let shown = self.display(&api_manifest);
        let text = fs::read_to_string(&api_manifest).map_err(|e| {
            format!(
                "the entry in {place} has no `version` and its path crate {} cannot be read: {e}",
                shown.display()
            )
        })?;
        let table: toml::Table = text
            .parse()
            .map_err(|e| format!("{} is not valid TOML: {e}", shown.display()))?;
        let raw = table
            .get("package")
            .and_then(|p| p.get("version"))
            .and_then(toml::Value::as_str)
            .ok_or_else(|| format!("{} has no [package] version string", shown.display()))?;
        api_line_of_version(raw)
            .map(|line| {
                (
                    line,
                    format!(
                        "{place} has no version; the path crate {} is version {raw}",
                        shown.display()
                    ),
                )
            })
            .map_err(|e| format!("{}: {e}", shown.display()))
    }

    // ---- the matrix -------------------------------------------------------------------------

    fn load_matrix(&mut self, path: &Path) -> Option<Matrix> {
        let text = self.read(path)?;
        match toml::from_str::<Matrix>(&text) {
            Ok(matrix) => Some(matrix),
            Err(e) => {
                self.errors.push(CompatError::MatrixSyntax {
                    path: self.display(path),
                    message: e.to_string().trim_end().to_owned(),
                });
                None
            }
        }
    }

    /// Parses one top-level list of API lines, checking form and order.
    fn api_line_list(&mut self, matrix: &Path, list: &'static str, raw: &[String]) -> Vec<ApiLine> {
        let mut lines: Vec<ApiLine> = Vec::new();
        for value in raw {
            match value.parse::<ApiLine>() {
                Ok(line) => {
                    if let Some(&previous) = lines.last() {
                        if line <= previous {
                            self.errors.push(CompatError::ApiLinesOutOfOrder {
                                matrix: matrix.to_path_buf(),
                                list,
                                line,
                                previous,
                            });
                        }
                    }
                    lines.push(line);
                }
                Err(_) => self.errors.push(CompatError::InvalidApiLine {
                    matrix: matrix.to_path_buf(),
                    list,
                    value: value.clone(),
                }),
            }
        }
        lines
    }

    fn check_matrix(
        &mut self,
        matrix_path: &Path,
        matrix: &Matrix,
        crates: &BTreeMap<String, CrateInfo>,
    ) -> Summary {
        let mp = || matrix_path.to_path_buf();
        if matrix.api_lines.is_empty() {
            self.errors
                .push(CompatError::NoSupportedApiLines { matrix: mp() });
        }
        let supported = self.api_line_list(matrix_path, "api-lines", &matrix.api_lines);
        let retired =
            self.api_line_list(matrix_path, "retired-api-lines", &matrix.retired_api_lines);
        for line in &retired {
            if supported.contains(line) {
                self.errors.push(CompatError::ApiLineSupportedAndRetired {
                    matrix: mp(),
                    line: *line,
                });
            }
        }
        let known: BTreeSet<ApiLine> = supported.iter().chain(&retired).copied().collect();

        for (connector, info) in crates {
            if !matrix.connectors.contains_key(connector) {
                self.errors.push(CompatError::ConnectorNotInMatrix {
                    matrix: mp(),
                    connector: connector.clone(),
                    manifest: info.manifest.clone(),
                    version: info.raw_version.clone(),
                });
            }
        }

        let mut summary = Summary {
            connectors: 0,
            releases: 0,
        };
        for (connector, entry) in &matrix.connectors {
            summary.connectors += 1;
            summary.releases += entry.releases.len();
            let expected = format!("{CONNECTOR_CRATE_PREFIX}{connector}");
            if entry.crate_name != expected {
                self.errors.push(CompatError::MatrixCrateNameMismatch {
                    matrix: mp(),
                    connector: connector.clone(),
                    expected,
                    found: entry.crate_name.clone(),
                });
            }
            let statuses = self.check_releases(matrix_path, connector, entry, &supported, &known);
            match crates.get(connector) {
                None => self.errors.push(CompatError::ConnectorWithoutCrate {
                    matrix: mp(),
                    connector: connector.clone(),
                    hint: did_you_mean(connector, crates.keys().map(String::as_str)),
                }),
                Some(info) => {
                    if let Some(version) = info.version {
                        match statuses.get(&version) {
                            None => self.errors.push(CompatError::CurrentVersionNotInMatrix {
                                matrix: mp(),
                                connector: connector.clone(),
                                version,
                                manifest: info.manifest.clone(),
                            }),
                            Some(Some(status)) if *status != Status::Supported => {
                                self.errors.push(CompatError::CurrentReleaseNotSupported {
                                    matrix: mp(),
                                    connector: connector.clone(),
                                    version,
                                    status: *status,
                                });
                            }
                            // Supported, or an unknown status already reported.
                            Some(_) => {}
                        }
                        self.check_item_uses(matrix_path, connector, entry, info, version);
                    }
                }
            }
        }
        summary
    }

    /// Every entry of the crate's current source release for a line older than an API item its
    /// sources use is an error naming the item and where it is used.
    fn check_item_uses(
        &mut self,
        matrix_path: &Path,
        connector: &str,
        entry: &ConnectorEntry,
        info: &CrateInfo,
        current: ConnectorVersion,
    ) {
        let Some(crate_dir) = self
            .root
            .join(&info.manifest)
            .parent()
            .map(Path::to_path_buf)
        else {
            return;
        };
        for release in &entry.releases {
            let Ok(version) = release.version.parse::<ConnectorVersion>() else {
                continue;
            };
            if version.source() != current.source() {
                continue;
            }
            let Some(oldest) = release
                .api_lines
                .iter()
                .filter_map(|l| l.parse::<ApiLine>().ok())
                .min()
            else {
                continue;
            };
            for found in api_items::uses_newer_than(&crate_dir.join("src"), oldest) {
                self.errors.push(CompatError::UsesNewerApiItem {
                    matrix: matrix_path.to_path_buf(),
                    connector: connector.to_owned(),
                    release: release.version.clone(),
                    line: oldest,
                    item: found.item.name,
                    item_line: found.item.line,
                    at: format!("{}:{}", self.display(&found.path).display(), found.line_no),
                });
            }
        }
    }

    /// Checks one connector's release entries; returns the well-formed versions with their status
    /// (`None` where the status is unknown).
    fn check_releases(
        &mut self,
        matrix_path: &Path,
        connector: &str,
        entry: &ConnectorEntry,
        supported: &[ApiLine],
        known: &BTreeSet<ApiLine>,
    ) -> BTreeMap<ConnectorVersion, Option<Status>> {
        let mp = || matrix_path.to_path_buf();
        let mut statuses: BTreeMap<ConnectorVersion, Option<Status>> = BTreeMap::new();
        let mut supported_groups: BTreeMap<(u64, u64, u64), SupportedGroup> = BTreeMap::new();
        let mut reported_duplicates: HashSet<&str> = HashSet::new();

        for release in &entry.releases {
            let raw = release.version.as_str();
            let version = raw.parse::<ConnectorVersion>().ok();
            if version.is_none() {
                self.errors.push(CompatError::ReleaseVersionFormat {
                    matrix: mp(),
                    connector: connector.to_owned(),
                    version: raw.to_owned(),
                });
            }
            let count = entry.releases.iter().filter(|r| r.version == raw).count();
            if count > 1 && reported_duplicates.insert(raw) {
                self.errors.push(CompatError::DuplicateRelease {
                    matrix: mp(),
                    connector: connector.to_owned(),
                    version: raw.to_owned(),
                    count,
                });
            }

            let status = release.status.parse::<Status>().ok();
            if status.is_none() {
                self.errors.push(CompatError::UnknownStatus {
                    matrix: mp(),
                    connector: connector.to_owned(),
                    release: raw.to_owned(),
                    status: release.status.clone(),
                    hint: did_you_mean(&release.status, Status::ALL),
                });
            }

            let mut lines: BTreeSet<ApiLine> = BTreeSet::new();
            for value in &release.api_lines {
                match value.parse::<ApiLine>() {
                    Ok(line) => {
                        if !known.contains(&line) {
                            self.errors.push(CompatError::UnknownApiLine {
                                matrix: mp(),
                                connector: connector.to_owned(),
                                release: raw.to_owned(),
                                api_line: line,
                            });
                        }
                        lines.insert(line);
                    }
                    Err(_) => self.errors.push(CompatError::InvalidReleaseApiLine {
                        matrix: mp(),
                        connector: connector.to_owned(),
                        release: raw.to_owned(),
                        value: value.clone(),
                    }),
                }
            }

            if let Some(version) = version {
                if !lines.contains(&version.api) {
                    self.errors.push(CompatError::SuffixNotInReleaseApiLines {
                        matrix: mp(),
                        connector: connector.to_owned(),
                        release: version,
                        suffix: version.api,
                    });
                }
            }
            if let Some(version) = version {
                if let Some(older) = lines.iter().find(|line| **line < version.api) {
                    self.errors.push(CompatError::ApiLineBelowSuffix {
                        matrix: mp(),
                        connector: connector.to_owned(),
                        release: version,
                        line: *older,
                    });
                }
                if status == Some(Status::Supported) {
                    let group = supported_groups.entry(version.source()).or_default();
                    group.0 = Some(
                        group
                            .0
                            .map_or(version.api, |min: ApiLine| min.min(version.api)),
                    );
                    group.1.extend(lines.iter().copied());
                }
                statuses.entry(version).or_insert(status);
            } else if status == Some(Status::Supported) {
                // Without a parsable version only the plain rule can be checked.
                let missing: Vec<ApiLine> = supported
                    .iter()
                    .filter(|line| !lines.contains(line))
                    .copied()
                    .collect();
                if !missing.is_empty() {
                    self.errors
                        .push(CompatError::SupportedReleaseMissingApiLines {
                            matrix: mp(),
                            connector: connector.to_owned(),
                            release: raw.to_owned(),
                            missing,
                        });
                }
            }
        }

        // Policy (b): the entries of one supported release (one MAJOR.MINOR.PATCH, built for
        // one or more API lines) together list every supported line from the oldest line the
        // release is built for upwards. A release that needs line 1.1 is not asked for 1.0.
        for ((major, minor, patch), (oldest, listed)) in &supported_groups {
            let Some(oldest) = oldest else { continue };
            let missing: Vec<ApiLine> = supported
                .iter()
                .filter(|line| *line >= oldest && !listed.contains(line))
                .copied()
                .collect();
            if !missing.is_empty() {
                self.errors
                    .push(CompatError::SupportedReleaseMissingApiLines {
                        matrix: mp(),
                        connector: connector.to_owned(),
                        release: format!("{major}.{minor}.{patch}"),
                        missing,
                    });
            }
        }

        // Policy (a): the newest release of each of the last two majors is supported. Entries of
        // the same MAJOR.MINOR.PATCH for several API lines are one source release: all of them.
        let mut majors: Vec<u64> = statuses.keys().map(|v| v.major).collect();
        majors.dedup(); // keys are sorted, so equal majors are adjacent
        let last_two: Vec<u64> = majors.iter().rev().take(2).copied().collect();
        for &major in &last_two {
            let Some(newest) = statuses
                .keys()
                .filter(|v| v.major == major)
                .map(ConnectorVersion::source)
                .max()
            else {
                continue;
            };
            for (version, status) in &statuses {
                if version.source() != newest {
                    continue;
                }
                if let Some(status) = *status {
                    if status != Status::Supported {
                        self.errors.push(CompatError::NewestOfMajorNotSupported {
                            matrix: mp(),
                            connector: connector.to_owned(),
                            release: *version,
                            major,
                            majors: last_two.clone(),
                            status,
                        });
                    }
                }
            }
        }
        statuses
    }
}

/// `" (did you mean \"x\"?)"` for the closest candidate, or an empty string.
fn did_you_mean<'a>(value: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(value, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!(" (did you mean \"{c}\"?)"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;

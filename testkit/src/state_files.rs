//! Golden state files: the bytes each version of a connector's state serializers wrote, checked
//! into the connector's `tests/golden/`, so every release reads all of them and a serializer
//! whose bytes change without a new version fails a test.
//!
//! A persisted type (a split, an enumerator state, a writer state, a committable) has one file
//! per serializer version, `tests/golden/<stem>-v<version>.bin`, holding the serialized bytes of
//! one sample value. [`state_compat!`](crate::state_compat) adds a test that checks, all at once:
//!
//! - every golden file deserializes, with its version, to the value expected for that version
//!   (the sample, unless the test says what an older version reads as);
//! - the serializer's current version has a golden, and serializing the sample gives exactly its
//!   bytes — changed bytes under the same version are reported as a change without a version
//!   bump;
//! - no golden is of a version newer than the serializer.
//!
//! With `WEIR_REGENERATE_GOLDEN=1` the check first writes the golden of the current version if
//! there is none. It never rewrites an existing golden: released bytes stay as they were.
//!
//! ```
//! use weir_connector_api::state::U64Serializer;
//! use weir_testkit::state_files::{check_state_goldens, Regenerate};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let expected = |_version: u32| 42_u64;
//! // No golden yet: the check says how to write one.
//! let report = check_state_goldens(dir.path(), "counter", &U64Serializer, &expected, Regenerate::No);
//! assert!(!report.passed(), "{report}");
//! // Written once, it passes from then on.
//! let report = check_state_goldens(dir.path(), "counter", &U64Serializer, &expected, Regenerate::MissingOnly);
//! assert!(report.passed(), "{report}");
//! assert!(dir.path().join("counter-v1.bin").is_file());
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use weir_connector_api::state::VersionedSerializer;

/// The folder of golden files, relative to a crate's manifest directory.
pub const GOLDEN_DIR: &str = "tests/golden";

/// The variable that asks for missing goldens to be written.
pub const REGENERATE_ENV: &str = "WEIR_REGENERATE_GOLDEN";

/// Whether a check may write the current version's golden.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Regenerate {
    /// Only check.
    No,
    /// Write the current version's golden when it has none (never rewrite one).
    MissingOnly,
}

impl Regenerate {
    /// [`Regenerate::MissingOnly`] when `WEIR_REGENERATE_GOLDEN=1`, else [`Regenerate::No`].
    pub fn from_env() -> Self {
        match std::env::var(REGENERATE_ENV) {
            Ok(v) if v == "1" => Regenerate::MissingOnly,
            _ => Regenerate::No,
        }
    }
}

/// Something a golden check found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GoldenProblem {
    /// The folder could not be read, or a golden could not be read or written.
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        error: String,
    },
    /// The serializer's current version has no golden file.
    MissingCurrent {
        /// The file that should exist.
        path: PathBuf,
        /// The current version.
        version: u32,
    },
    /// A golden no longer deserializes.
    Unreadable {
        /// The golden.
        path: PathBuf,
        /// Its version.
        version: u32,
        /// The deserializer's error.
        error: String,
    },
    /// A golden deserializes to another value than expected for its version.
    WrongValue {
        /// The golden.
        path: PathBuf,
        /// Its version.
        version: u32,
        /// What it read as (`Debug`).
        found: String,
        /// What was expected (`Debug`).
        expected: String,
    },
    /// The serializer writes other bytes than the golden of its own version: its format changed
    /// without a version bump.
    BytesChanged {
        /// The golden.
        path: PathBuf,
        /// The version.
        version: u32,
        /// The first byte that differs (or the shorter length).
        first_difference: usize,
        /// The golden's length.
        golden_len: usize,
        /// The length written now.
        written_len: usize,
    },
    /// A golden is of a newer version than the serializer writes.
    NewerThanSerializer {
        /// The golden.
        path: PathBuf,
        /// Its version.
        version: u32,
        /// The serializer's version.
        current: u32,
    },
    /// Serializing the sample failed.
    Serialize {
        /// The error.
        error: String,
    },
}

impl fmt::Display for GoldenProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GoldenProblem::Io { path, error } => write!(f, "{}: {error}", path.display()),
            GoldenProblem::MissingCurrent { path, version } => write!(
                f,
                "{} is missing: serializer version {version} has no golden; write it with \
                 {REGENERATE_ENV}=1 cargo test and commit it",
                path.display()
            ),
            GoldenProblem::Unreadable {
                path,
                version,
                error,
            } => write!(
                f,
                "{} (version {version}) no longer reads: {error}; every released version must \
                 stay readable",
                path.display()
            ),
            GoldenProblem::WrongValue {
                path,
                version,
                found,
                expected,
            } => write!(
                f,
                "{} (version {version}) reads as {found}, expected {expected}",
                path.display()
            ),
            GoldenProblem::BytesChanged {
                path,
                version,
                first_difference,
                golden_len,
                written_len,
            } => write!(
                f,
                "the serializer's bytes changed without a version bump: version {version} now \
                 writes {written_len} bytes that differ from {} ({golden_len} bytes) from byte \
                 {first_difference}; give the new format a new version (keep reading the old \
                 one) instead of changing version {version}",
                path.display()
            ),
            GoldenProblem::NewerThanSerializer {
                path,
                version,
                current,
            } => write!(
                f,
                "{} is of version {version}, newer than the serializer's {current}",
                path.display()
            ),
            GoldenProblem::Serialize { error } => write!(f, "serializing the sample: {error}"),
        }
    }
}

/// What a golden check of one persisted type did and found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoldenReport {
    /// The file stem (`<stem>-v<version>.bin`).
    pub stem: String,
    /// The goldens read, by version.
    pub checked: Vec<(u32, PathBuf)>,
    /// The golden written by this check ([`Regenerate::MissingOnly`]).
    pub written: Option<PathBuf>,
    /// What is wrong; empty when the check passed.
    pub problems: Vec<GoldenProblem>,
}

impl GoldenReport {
    /// Whether nothing is wrong.
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }

    /// Whether a problem of this kind was found.
    pub fn has(&self, matches: impl Fn(&GoldenProblem) -> bool) -> bool {
        self.problems.iter().any(matches)
    }
}

impl fmt::Display for GoldenReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let versions: Vec<String> = self.checked.iter().map(|(v, _)| v.to_string()).collect();
        write!(
            f,
            "golden state `{}`: versions [{}] checked",
            self.stem,
            versions.join(", ")
        )?;
        if let Some(path) = &self.written {
            write!(f, ", wrote {}", path.display())?;
        }
        for problem in &self.problems {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}

/// The golden of `stem` at `version` in `dir`.
pub fn golden_path(dir: &Path, stem: &str, version: u32) -> PathBuf {
    dir.join(format!("{stem}-v{version}.bin"))
}

/// The goldens of `stem` in `dir`, by version (ascending).
fn list_goldens(dir: &Path, stem: &str) -> Result<Vec<(u32, PathBuf)>, GoldenProblem> {
    let io = |error: std::io::Error| GoldenProblem::Io {
        path: dir.to_owned(),
        error: error.to_string(),
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let prefix = format!("{stem}-v");
    let mut found = Vec::new();
    for entry in entries {
        let path = entry.map_err(io)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let version = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".bin"))
            .and_then(|v| v.parse::<u32>().ok());
        if let Some(version) = version {
            found.push((version, path));
        }
    }
    found.sort();
    Ok(found)
}

fn first_difference(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()))
}

/// Checks the goldens of `stem` in `dir` against `serializer`; see the [module docs](self).
/// `expected(version)` is the value the golden of `version` holds (the sample the current
/// version writes, or what an older version's bytes read as).
pub fn check_state_goldens<T: PartialEq + fmt::Debug>(
    dir: &Path,
    stem: &str,
    serializer: &dyn VersionedSerializer<T>,
    expected: &dyn Fn(u32) -> T,
    regenerate: Regenerate,
) -> GoldenReport {
    let mut report = GoldenReport {
        stem: stem.to_owned(),
        checked: Vec::new(),
        written: None,
        problems: Vec::new(),
    };
    let current = serializer.version();
    let written = match serializer.serialize(&expected(current)) {
        Ok(bytes) => bytes,
        Err(e) => {
            report.problems.push(GoldenProblem::Serialize {
                error: e.to_string(),
            });
            return report;
        }
    };
    let current_path = golden_path(dir, stem, current);
    if regenerate == Regenerate::MissingOnly && !current_path.exists() {
        let wrote =
            std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&current_path, &written));
        match wrote {
            Ok(()) => report.written = Some(current_path.clone()),
            Err(e) => report.problems.push(GoldenProblem::Io {
                path: current_path.clone(),
                error: e.to_string(),
            }),
        }
    }
    let goldens = match list_goldens(dir, stem) {
        Ok(goldens) => goldens,
        Err(problem) => {
            report.problems.push(problem);
            return report;
        }
    };
    if !goldens.iter().any(|(v, _)| *v == current) {
        report.problems.push(GoldenProblem::MissingCurrent {
            path: current_path,
            version: current,
        });
    }
    for (version, path) in goldens {
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) => {
                report.problems.push(GoldenProblem::Io {
                    path,
                    error: e.to_string(),
                });
                continue;
            }
        };
        if version > current {
            report.problems.push(GoldenProblem::NewerThanSerializer {
                path,
                version,
                current,
            });
            continue;
        }
        let want = expected(version);
        match serializer.deserialize(version, &bytes) {
            Ok(found) if found == want => {}
            Ok(found) => report.problems.push(GoldenProblem::WrongValue {
                path: path.clone(),
                version,
                found: format!("{found:?}"),
                expected: format!("{want:?}"),
            }),
            Err(e) => report.problems.push(GoldenProblem::Unreadable {
                path: path.clone(),
                version,
                error: e.to_string(),
            }),
        }
        if version == current && bytes != written {
            report.problems.push(GoldenProblem::BytesChanged {
                path: path.clone(),
                version,
                first_difference: first_difference(&bytes, &written),
                golden_len: bytes.len(),
                written_len: written.len(),
            });
        }
        report.checked.push((version, path));
    }
    report
}

/// Runs [`check_state_goldens`] on `<manifest dir>/tests/golden` (regenerating as
/// `WEIR_REGENERATE_GOLDEN` says) and panics with the report if anything is wrong. The body of
/// [`state_compat!`](crate::state_compat).
#[allow(clippy::panic)] // a test assertion
pub fn assert_state_goldens<T: PartialEq + fmt::Debug>(
    manifest_dir: &str,
    stem: &str,
    serializer: &dyn VersionedSerializer<T>,
    expected: &dyn Fn(u32) -> T,
) {
    let dir = Path::new(manifest_dir).join(GOLDEN_DIR);
    let report = check_state_goldens(&dir, stem, serializer, expected, Regenerate::from_env());
    assert!(report.passed(), "{report}");
}

/// A fake of a serializer release that changed its bytes but not its version: it writes what
/// `S` writes plus one byte, under `S`'s version, and reads like `S`. For tests that show the
/// golden check catching such a change (named a fake: it is never a real serializer).
#[derive(Debug, Clone, Copy, Default)]
pub struct ChangedWithoutVersionBump<S>(pub S);

impl<T, S: VersionedSerializer<T>> VersionedSerializer<T> for ChangedWithoutVersionBump<S> {
    fn version(&self) -> u32 {
        self.0.version()
    }
    fn serialize(&self, value: &T) -> Result<Vec<u8>, weir_connector_api::state::StateError> {
        let mut bytes = self.0.serialize(value)?;
        bytes.push(0);
        Ok(bytes)
    }
    fn deserialize(
        &self,
        version: u32,
        bytes: &[u8],
    ) -> Result<T, weir_connector_api::state::StateError> {
        self.0.deserialize(version, bytes)
    }
}

/// A `#[test]` named `$test` that checks the golden state files `tests/golden/<$stem>-v<N>.bin`
/// of a serializer (see [`state_files`](crate::state_files)).
///
/// `state_compat!(test, "stem", serializer, sample)`: every golden reads as `sample`, and the
/// current version writes exactly its golden's bytes. When a newer version changed what older
/// bytes read as, say what each version holds: `state_compat!(test, "stem", serializer,
/// versions: |version| value)`.
#[macro_export]
macro_rules! state_compat {
    ($test:ident, $stem:expr, $serializer:expr, versions: $expected:expr) => {
        #[test]
        fn $test() {
            $crate::state_files::assert_state_goldens(
                env!("CARGO_MANIFEST_DIR"),
                $stem,
                &$serializer,
                &$expected,
            );
        }
    };
    ($test:ident, $stem:expr, $serializer:expr, $sample:expr) => {
        $crate::state_compat!($test, $stem, $serializer, versions: |_version: u32| $sample);
    };
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use weir_connector_api::state::StringSerializer;

    use super::*;

    fn sample(_version: u32) -> String {
        "txn-7".to_owned()
    }

    fn check(
        dir: &Path,
        serializer: &dyn VersionedSerializer<String>,
        regenerate: Regenerate,
    ) -> GoldenReport {
        check_state_goldens(dir, "txn", serializer, &sample, regenerate)
    }

    #[test]
    fn a_changed_serializer_without_a_version_bump_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let first = check(dir.path(), &StringSerializer, Regenerate::MissingOnly);
        assert!(first.passed(), "{first}");
        let report = check(
            dir.path(),
            &ChangedWithoutVersionBump(StringSerializer),
            Regenerate::MissingOnly,
        );
        assert!(
            report.has(|p| matches!(p, GoldenProblem::BytesChanged { version: 1, .. })),
            "{report}"
        );
        assert!(
            report.written.is_none(),
            "an existing golden is never rewritten"
        );
        assert!(
            report.to_string().contains("without a version bump"),
            "{report}"
        );
    }

    #[test]
    fn unreadable_wrong_and_newer_goldens_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(golden_path(dir.path(), "txn", 1), [0xff, 0xfe]).unwrap();
        std::fs::write(golden_path(dir.path(), "txn", 2), b"").unwrap();
        let report = check(dir.path(), &StringSerializer, Regenerate::No);
        assert!(
            report.has(|p| matches!(p, GoldenProblem::Unreadable { version: 1, .. })),
            "{report}"
        );
        assert!(
            report.has(|p| matches!(p, GoldenProblem::NewerThanSerializer { version: 2, .. })),
            "{report}"
        );
        let other = StringSerializer.serialize(&"txn-8".to_owned()).unwrap();
        std::fs::write(golden_path(dir.path(), "txn", 1), other).unwrap();
        let report = check(dir.path(), &StringSerializer, Regenerate::No);
        assert!(
            report.has(|p| matches!(p, GoldenProblem::WrongValue { version: 1, .. })),
            "{report}"
        );
    }
}

//! Case reports: what each case found, as JSON and as a Markdown table per connector.
//!
//! Every case run writes `<target>/weir-testkit/cases/<connector>/<suite>.<case>.<mode>.json`
//! and then rebuilds the connector's aggregate report from all of its case files:
//! `<target>/weir-testkit/<connector>.json` (machine-readable, read by `weir test` and the
//! compat matrix) and `<target>/weir-testkit/<connector>.md` (a table for people).
//!
//! `<target>` is `$WEIR_TESTKIT_REPORT_DIR/..` if that variable is set (the reports go straight
//! into it), else `$CARGO_TARGET_DIR`, else `<workspace root>/target`, where the workspace root
//! is found by walking up from the connector crate's manifest directory.

use std::fmt;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::case::SuiteKind;
use crate::check::{Finding, FindingKind, Semantic};
pub use crate::paths::{report_dir, workspace_root, REPORT_DIR_ENV};

/// How a case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CaseStatus {
    /// Everything checked out.
    Passed,
    /// At least one finding.
    Failed,
    /// The connector declared (or its capabilities imply) that the case does not apply.
    NotApplicable,
}

impl CaseStatus {
    /// `passed`, `failed` or `not applicable`.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Passed => "passed",
            CaseStatus::Failed => "FAILED",
            CaseStatus::NotApplicable => "not applicable",
        }
    }
}

/// The crate a report is about (filled in by the suite macros from Cargo's variables).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrateInfo {
    /// The crate name, e.g. `weir-connector-kafka`.
    pub name: String,
    /// Its version, e.g. `3.1.2-1.0`.
    pub version: String,
    /// Its manifest directory (where reports are found from); not serialized.
    #[serde(skip)]
    pub manifest_dir: Option<PathBuf>,
}

impl CrateInfo {
    /// Crate information.
    pub fn new(name: &str, version: &str, manifest_dir: Option<&str>) -> Self {
        CrateInfo {
            name: name.to_owned(),
            version: version.to_owned(),
            manifest_dir: manifest_dir.map(PathBuf::from),
        }
    }
}

/// The result of one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseReport {
    /// The connector's name (from its context).
    pub connector: String,
    /// The suite.
    pub suite: SuiteKind,
    /// The case, e.g. `scale_up`.
    pub case: String,
    /// The checked semantic (`None` for cases without one).
    pub mode: Option<Semantic>,
    /// How it ended.
    pub status: CaseStatus,
    /// Why it does not apply (for [`CaseStatus::NotApplicable`]).
    pub reason: Option<String>,
    /// What went wrong.
    pub findings: Vec<Finding>,
    /// What the case did (counts, parallelism, where a failure was injected).
    pub notes: Vec<String>,
    /// The seed of its records.
    pub seed: u64,
    /// How long it took.
    pub duration_ms: u64,
    /// When it finished (milliseconds since the Unix epoch).
    pub finished_at_ms: u64,
}

impl CaseReport {
    pub(crate) fn new(
        connector: &str,
        suite: SuiteKind,
        case: &str,
        mode: Option<Semantic>,
        seed: u64,
    ) -> Self {
        CaseReport {
            connector: connector.to_owned(),
            suite,
            case: case.to_owned(),
            mode,
            status: CaseStatus::Passed,
            reason: None,
            findings: Vec::new(),
            notes: Vec::new(),
            seed,
            duration_ms: 0,
            finished_at_ms: 0,
        }
    }

    pub(crate) fn not_applicable(mut self, reason: impl Into<String>) -> Self {
        self.status = CaseStatus::NotApplicable;
        self.reason = Some(reason.into());
        self
    }

    pub(crate) fn finish(mut self, started: Instant) -> Self {
        if !self.findings.is_empty() {
            self.status = CaseStatus::Failed;
        }
        self.duration_ms = duration_ms(started.elapsed());
        self.finished_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, duration_ms);
        self
    }

    /// Whether the case passed (not applicable counts as not failed, see [`Self::failed`]).
    pub fn passed(&self) -> bool {
        self.status == CaseStatus::Passed
    }

    /// Whether the case failed.
    pub fn failed(&self) -> bool {
        self.status == CaseStatus::Failed
    }

    /// Whether a finding of `kind` was made.
    pub fn has(&self, kind: FindingKind) -> bool {
        self.findings.iter().any(|f| f.kind == kind)
    }

    /// `<suite>.<case>.<mode>`: the case's identity in reports.
    pub fn key(&self) -> String {
        format!(
            "{}.{}.{}",
            self.suite,
            self.case,
            self.mode.map_or("-", Semantic::as_str)
        )
    }
}

impl fmt::Display for CaseReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.connector, self.suite, self.case)?;
        if let Some(mode) = self.mode {
            write!(f, " [{mode}]")?;
        }
        write!(
            f,
            ": {} in {:.1} s (seed {})",
            self.status.as_str(),
            self.duration_ms as f64 / 1000.0,
            self.seed
        )?;
        if let Some(reason) = &self.reason {
            write!(f, "\n  reason: {reason}")?;
        }
        for finding in &self.findings {
            write!(f, "\n  - {finding}")?;
        }
        for note in &self.notes {
            write!(f, "\n  · {note}")?;
        }
        Ok(())
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Counts of a connector report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportTotals {
    /// Cases passed.
    pub passed: usize,
    /// Cases failed.
    pub failed: usize,
    /// Cases not applicable.
    pub not_applicable: usize,
}

/// All cases of one connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectorReport {
    /// The report format version.
    pub format: u32,
    /// The connector.
    pub connector: String,
    /// The crate, if known.
    pub crate_info: Option<CrateInfo>,
    /// The connector API line the suites ran against (`weir_connector_api::API_LINE`).
    pub api_line: String,
    /// Counts.
    pub totals: ReportTotals,
    /// The cases, ordered by suite, case and mode.
    pub cases: Vec<CaseReport>,
}

impl ConnectorReport {
    /// Builds a report from case reports.
    pub fn new(connector: &str, crate_info: Option<CrateInfo>, mut cases: Vec<CaseReport>) -> Self {
        cases.sort_by(|a, b| (a.suite, &a.case, a.mode).cmp(&(b.suite, &b.case, b.mode)));
        let mut totals = ReportTotals::default();
        for c in &cases {
            match c.status {
                CaseStatus::Passed => totals.passed += 1,
                CaseStatus::Failed => totals.failed += 1,
                CaseStatus::NotApplicable => totals.not_applicable += 1,
            }
        }
        ConnectorReport {
            format: 1,
            connector: connector.to_owned(),
            crate_info,
            api_line: weir_connector_api::API_LINE.to_owned(),
            totals,
            cases,
        }
    }

    /// The Markdown table.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# Conformance report: {}\n", self.connector);
        if let Some(c) = &self.crate_info {
            let _ = write!(md, "Crate `{}` {}, ", c.name, c.version);
        }
        let _ = writeln!(md, "API line {}.\n", self.api_line);
        let _ = writeln!(
            md,
            "{} passed, {} failed, {} not applicable.\n",
            self.totals.passed, self.totals.failed, self.totals.not_applicable
        );
        md.push_str("| suite | case | mode | result | time | details |\n");
        md.push_str("|---|---|---|---|---|---|\n");
        for c in &self.cases {
            let details = match c.status {
                CaseStatus::NotApplicable => c.reason.clone().unwrap_or_default(),
                CaseStatus::Failed => c
                    .findings
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
                CaseStatus::Passed => c.notes.join("; "),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {:.1} s | {} |",
                c.suite,
                c.case,
                c.mode.map_or("—", Semantic::as_str),
                c.status.as_str(),
                c.duration_ms as f64 / 1000.0,
                md_cell(&details)
            );
        }
        md
    }
}

fn md_cell(text: &str) -> String {
    const MAX: usize = 400;
    let mut s: String = text.replace('|', "\\|").replace('\n', " ");
    if s.chars().count() > MAX {
        s = s.chars().take(MAX).collect::<String>() + "…";
    }
    s
}

fn file_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes a file atomically (temporary file, then rename).
fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("report"),
        std::process::id()
    ));
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path)
}

/// A lock file held while a connector's aggregate report is rebuilt (tests of several binaries
/// may write at once). Stale locks (older than 30 s) are broken.
struct ReportLock(PathBuf);

impl ReportLock {
    fn acquire(path: PathBuf) -> io::Result<ReportLock> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(_) => return Ok(ReportLock(path)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let stale = fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age > Duration::from_secs(30));
                    if stale || Instant::now() > deadline {
                        let _ = fs::remove_file(&path);
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for ReportLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Records a case report and rebuilds the connector's `<connector>.json` and `<connector>.md`
/// in `dir`. Returns the path of the JSON report.
pub fn record_case(
    dir: &Path,
    report: &CaseReport,
    crate_info: Option<&CrateInfo>,
) -> io::Result<PathBuf> {
    let connector = file_name(&report.connector);
    let cases_dir = dir.join("cases").join(&connector);
    let case_json = serde_json::to_vec_pretty(report).map_err(io::Error::other)?;
    write_atomic(
        &cases_dir.join(format!("{}.json", file_name(&report.key()))),
        &case_json,
    )?;
    let _lock = ReportLock::acquire(dir.join(format!(".{connector}.lock")))?;
    let mut cases = Vec::new();
    for entry in fs::read_dir(&cases_dir)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        // A file another process is replacing right now may be unreadable: skip it.
        if let Ok(bytes) = fs::read(&path) {
            if let Ok(case) = serde_json::from_slice::<CaseReport>(&bytes) {
                cases.push(case);
            }
        }
    }
    let aggregate = ConnectorReport::new(&report.connector, crate_info.cloned(), cases);
    let json_path = dir.join(format!("{connector}.json"));
    write_atomic(
        &json_path,
        &serde_json::to_vec_pretty(&aggregate).map_err(io::Error::other)?,
    )?;
    write_atomic(
        &dir.join(format!("{connector}.md")),
        aggregate.to_markdown().as_bytes(),
    )?;
    Ok(json_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(name: &str, status: CaseStatus) -> CaseReport {
        let mut c = CaseReport::new(
            "demo",
            SuiteKind::Source,
            name,
            Some(Semantic::ExactlyOnce),
            7,
        );
        c.status = status;
        if status == CaseStatus::Failed {
            c.findings
                .push(Finding::new(FindingKind::Missing, "3 missing | of 10"));
        }
        if status == CaseStatus::NotApplicable {
            c.reason = Some("no unbounded mode".into());
        }
        c
    }

    #[test]
    fn aggregate_report_is_written_as_json_and_markdown() {
        let dir = tempfile::tempdir().unwrap();
        let info = CrateInfo::new("weir-connector-demo", "1.0.0-1.0", None);
        record_case(dir.path(), &case("b_case", CaseStatus::Passed), Some(&info)).unwrap();
        record_case(dir.path(), &case("a_case", CaseStatus::Failed), Some(&info)).unwrap();
        let path = record_case(
            dir.path(),
            &case("c_case", CaseStatus::NotApplicable),
            Some(&info),
        )
        .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
        assert_eq!(report["totals"]["passed"], 1);
        assert_eq!(report["totals"]["failed"], 1);
        assert_eq!(report["totals"]["not_applicable"], 1);
        assert_eq!(report["cases"][0]["case"], "a_case");
        assert_eq!(report["cases"][0]["findings"][0]["kind"], "missing");
        assert_eq!(report["crate_info"]["version"], "1.0.0-1.0");
        assert_eq!(report["api_line"], weir_connector_api::API_LINE);
        let md = fs::read_to_string(dir.path().join("demo.md")).unwrap();
        assert!(
            md.contains("| source | a_case | exactly-once | FAILED |"),
            "{md}"
        );
        assert!(md.contains("3 missing \\| of 10"), "{md}");
        assert!(md.contains("| not applicable |"), "{md}");
        assert!(md.contains("no unbounded mode"), "{md}");
    }
}

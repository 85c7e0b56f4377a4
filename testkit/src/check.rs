//! Semantic checkers: compare what a job produced with what it should have produced.
//!
//! - **Exactly-once**: every expected record exactly once, nothing else, and (when asked) each
//!   split's records in the split's order.
//! - **At-least-once**: every expected record at least once; duplicates are allowed but only of
//!   real records — anything that was never expected is a finding.
//!
//! Findings name the problem concisely: counts plus the first few examples, never the whole
//! output.
//!
//! ```
//! use weir_testkit::check::{check_records, CheckOptions, ExpectedSplit, FindingKind};
//!
//! let expected = vec![
//!     ExpectedSplit::new("p0", vec![1, 2, 3]),
//!     ExpectedSplit::new("p1", vec![10, 11]),
//! ];
//! let ok = check_records(&expected, &[1, 10, 2, 11, 3], &CheckOptions::exactly_once());
//! assert!(ok.is_ok());
//!
//! let bad = check_records(&expected, &[1, 2, 2, 10, 11, 99], &CheckOptions::exactly_once());
//! let kinds: Vec<FindingKind> = bad.findings.iter().map(|f| f.kind).collect();
//! assert_eq!(kinds, [FindingKind::Missing, FindingKind::Duplicated, FindingKind::Unexpected]);
//! assert!(bad.findings[0].message.contains("p0 #2 (3)"), "{}", bad.findings[0].message);
//!
//! // At-least-once accepts the duplicate of a real record, not the unknown one.
//! let alo = check_records(&expected, &[1, 2, 2, 3, 10, 11, 99], &CheckOptions::at_least_once());
//! assert_eq!(alo.findings.len(), 1);
//! assert_eq!(alo.findings[0].kind, FindingKind::Unexpected);
//! ```

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use weir_runtime::CheckpointingMode;

use crate::record::{show, TestRecord};

/// How many examples a finding names.
pub const EXAMPLES: usize = 5;

/// A delivery semantic: what a job checkpoints with, and what a check expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Semantic {
    /// Every record exactly once.
    ExactlyOnce,
    /// Every record at least once.
    AtLeastOnce,
}

impl Semantic {
    /// Both, exactly-once first.
    pub const ALL: [Semantic; 2] = [Semantic::ExactlyOnce, Semantic::AtLeastOnce];

    /// The runtime's checkpointing mode for this semantic.
    pub fn checkpointing_mode(self) -> CheckpointingMode {
        match self {
            Semantic::ExactlyOnce => CheckpointingMode::ExactlyOnce,
            Semantic::AtLeastOnce => CheckpointingMode::AtLeastOnce,
        }
    }

    /// `exactly-once` or `at-least-once`.
    pub fn as_str(self) -> &'static str {
        match self {
            Semantic::ExactlyOnce => "exactly-once",
            Semantic::AtLeastOnce => "at-least-once",
        }
    }

    /// The weaker of two semantics.
    pub fn weakest(self, other: Semantic) -> Semantic {
        if self == Semantic::AtLeastOnce || other == Semantic::AtLeastOnce {
            Semantic::AtLeastOnce
        } else {
            Semantic::ExactlyOnce
        }
    }
}

impl fmt::Display for Semantic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of problem a finding reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// Expected records never arrived.
    Missing,
    /// Records arrived more than once (exactly-once only).
    Duplicated,
    /// Records arrived that were never expected.
    Unexpected,
    /// A split's records arrived out of the split's order.
    OutOfOrder,
    /// A metric has the wrong value or is not reported.
    Metric,
    /// The job failed or ended in an unexpected way.
    JobFailed,
    /// Something did not happen in time.
    Timeout,
    /// The case could not prove anything (e.g. an injected failure never fired).
    Inconclusive,
    /// The context or the external system failed.
    Context,
    /// The test data is unusable (e.g. records not distinct across splits).
    InvalidTestData,
    /// Restoring state written by an earlier release failed.
    StateCompat,
}

impl FindingKind {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Missing => "missing",
            FindingKind::Duplicated => "duplicated",
            FindingKind::Unexpected => "unexpected",
            FindingKind::OutOfOrder => "out-of-order",
            FindingKind::Metric => "metric",
            FindingKind::JobFailed => "job-failed",
            FindingKind::Timeout => "timeout",
            FindingKind::Inconclusive => "inconclusive",
            FindingKind::Context => "context",
            FindingKind::InvalidTestData => "invalid-test-data",
            FindingKind::StateCompat => "state-compat",
        }
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem a case found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// What kind of problem.
    pub kind: FindingKind,
    /// A concise description: counts and the first few examples.
    pub message: String,
}

impl Finding {
    /// A finding.
    pub fn new(kind: FindingKind, message: impl Into<String>) -> Self {
        Finding {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// The records one split should produce, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedSplit<T> {
    /// The split's name in findings.
    pub name: String,
    /// Its records, in order.
    pub records: Vec<T>,
}

impl<T> ExpectedSplit<T> {
    /// A split's expected records.
    pub fn new(name: impl Into<String>, records: Vec<T>) -> Self {
        ExpectedSplit {
            name: name.into(),
            records,
        }
    }
}

/// Whether every expected record must be there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completeness {
    /// All expected records.
    Complete,
    /// Each split's output is a prefix of its expected records (a continuous source stopped
    /// mid-way): nothing may be missing below the furthest record seen.
    Prefix,
}

/// What a check expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckOptions {
    /// Exactly-once or at-least-once.
    pub semantic: Semantic,
    /// All records, or per-split prefixes.
    pub completeness: Completeness,
    /// Check each split's order (exactly-once only: replays after failures reorder
    /// at-least-once output by design).
    pub per_split_order: bool,
}

impl CheckOptions {
    /// Exactly-once, complete, with per-split order.
    pub fn exactly_once() -> Self {
        CheckOptions {
            semantic: Semantic::ExactlyOnce,
            completeness: Completeness::Complete,
            per_split_order: true,
        }
    }

    /// At-least-once, complete.
    pub fn at_least_once() -> Self {
        CheckOptions {
            semantic: Semantic::AtLeastOnce,
            completeness: Completeness::Complete,
            per_split_order: false,
        }
    }

    /// For a semantic, complete, with per-split order for exactly-once.
    pub fn for_semantic(semantic: Semantic) -> Self {
        match semantic {
            Semantic::ExactlyOnce => Self::exactly_once(),
            Semantic::AtLeastOnce => Self::at_least_once(),
        }
    }

    /// Sets the completeness.
    pub fn completeness(mut self, completeness: Completeness) -> Self {
        self.completeness = completeness;
        self
    }

    /// Sets whether per-split order is checked.
    pub fn per_split_order(mut self, check: bool) -> Self {
        self.per_split_order = check;
        self
    }
}

/// Counts of a check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckSummary {
    /// Expected records (for a prefix check: up to the furthest seen per split).
    pub expected: usize,
    /// Records received.
    pub received: usize,
    /// Distinct expected records received.
    pub distinct: usize,
    /// Expected records not received.
    pub missing: usize,
    /// Extra copies of expected records.
    pub duplicates: usize,
    /// Received records that were never expected.
    pub unexpected: usize,
    /// Order violations within splits.
    pub out_of_order: usize,
}

/// The outcome of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// Counts.
    pub summary: CheckSummary,
    /// Problems, in the order missing, duplicated, unexpected, out of order (invalid test data
    /// first).
    pub findings: Vec<Finding>,
}

impl CheckResult {
    /// Whether nothing was found.
    pub fn is_ok(&self) -> bool {
        self.findings.is_empty()
    }

    /// Whether a finding of `kind` was made.
    pub fn has(&self, kind: FindingKind) -> bool {
        self.findings.iter().any(|f| f.kind == kind)
    }
}

fn examples(items: &[String], total: usize) -> String {
    let mut s = items.join(", ");
    if total > items.len() {
        s.push_str(", …");
    }
    s
}

/// Checks `actual` against the expected splits.
///
/// Records are matched by value, so the expected records must be distinct (a record expected
/// twice yields an [`FindingKind::InvalidTestData`] finding).
pub fn check_records<T: TestRecord>(
    expected: &[ExpectedSplit<T>],
    actual: &[T],
    options: &CheckOptions,
) -> CheckResult {
    let mut findings = Vec::new();
    let mut index: HashMap<&T, (usize, usize)> = HashMap::new();
    let mut not_distinct = Vec::new();
    let mut not_distinct_count = 0;
    for (s, split) in expected.iter().enumerate() {
        for (i, record) in split.records.iter().enumerate() {
            if let Some((s0, i0)) = index.insert(record, (s, i)) {
                not_distinct_count += 1;
                if not_distinct.len() < EXAMPLES {
                    let first = expected.get(s0).map_or("?", |e| e.name.as_str());
                    not_distinct.push(format!(
                        "{} at {first} #{i0} and {} #{i}",
                        show(record),
                        split.name
                    ));
                }
            }
        }
    }
    if not_distinct_count > 0 {
        findings.push(Finding::new(
            FindingKind::InvalidTestData,
            format!(
                "{not_distinct_count} expected records are not distinct across splits: {}",
                examples(&not_distinct, not_distinct_count)
            ),
        ));
    }

    let mut counts: Vec<Vec<u32>> = expected.iter().map(|s| vec![0; s.records.len()]).collect();
    let mut sequences: Vec<Vec<usize>> = vec![Vec::new(); expected.len()];
    let mut unexpected: Vec<(&T, usize)> = Vec::new();
    let mut unexpected_index: HashMap<&T, usize> = HashMap::new();
    let mut unexpected_total = 0;
    for record in actual {
        match index.get(record) {
            Some(&(s, i)) => {
                if let Some(c) = counts.get_mut(s).and_then(|c| c.get_mut(i)) {
                    if *c == 0 {
                        if let Some(seq) = sequences.get_mut(s) {
                            seq.push(i);
                        }
                    }
                    *c += 1;
                }
            }
            None => {
                unexpected_total += 1;
                match unexpected_index.get(record) {
                    Some(&k) => {
                        if let Some(u) = unexpected.get_mut(k) {
                            u.1 += 1;
                        }
                    }
                    None => {
                        unexpected_index.insert(record, unexpected.len());
                        unexpected.push((record, 1));
                    }
                }
            }
        }
    }

    let mut summary = CheckSummary {
        received: actual.len(),
        unexpected: unexpected_total,
        ..CheckSummary::default()
    };
    let mut missing = Vec::new();
    let mut duplicated = Vec::new();
    let mut out_of_order = Vec::new();
    for (s, split) in expected.iter().enumerate() {
        let Some(c) = counts.get(s) else { continue };
        let limit = match options.completeness {
            Completeness::Complete => c.len(),
            Completeness::Prefix => c.iter().rposition(|n| *n > 0).map_or(0, |i| i + 1),
        };
        summary.expected += limit;
        for (i, n) in c.iter().enumerate() {
            if *n > 0 {
                summary.distinct += 1;
            }
            if *n > 1 {
                summary.duplicates += (*n - 1) as usize;
                if duplicated.len() < EXAMPLES {
                    let r = split.records.get(i).map(show).unwrap_or_default();
                    duplicated.push(format!("{} #{i} ({r}) ×{n}", split.name));
                }
            }
            if *n == 0 && i < limit {
                summary.missing += 1;
                if missing.len() < EXAMPLES {
                    let r = split.records.get(i).map(show).unwrap_or_default();
                    missing.push(format!("{} #{i} ({r})", split.name));
                }
            }
        }
        if let Some(seq) = sequences.get(s) {
            for pair in seq.windows(2) {
                if let [a, b] = pair {
                    if b < a {
                        summary.out_of_order += 1;
                        if out_of_order.len() < EXAMPLES {
                            out_of_order.push(format!("{} #{b} after #{a}", split.name));
                        }
                    }
                }
            }
        }
    }

    if summary.missing > 0 {
        let what = match options.completeness {
            Completeness::Complete => format!("of {} expected records", summary.expected),
            Completeness::Prefix => format!(
                "below the furthest record seen in each split ({} expected up to there)",
                summary.expected
            ),
        };
        findings.push(Finding::new(
            FindingKind::Missing,
            format!(
                "{} missing {what}; first: {}",
                summary.missing,
                examples(&missing, summary.missing)
            ),
        ));
    }
    if summary.duplicates > 0 && options.semantic == Semantic::ExactlyOnce {
        let records = counts.iter().flatten().filter(|n| **n > 1).count();
        findings.push(Finding::new(
            FindingKind::Duplicated,
            format!(
                "{} extra copies of {records} records; first: {}",
                summary.duplicates,
                examples(&duplicated, records)
            ),
        ));
    }
    if unexpected_total > 0 {
        let shown: Vec<String> = unexpected
            .iter()
            .take(EXAMPLES)
            .map(|(r, n)| {
                if *n > 1 {
                    format!("{} ×{n}", show(*r))
                } else {
                    show(*r)
                }
            })
            .collect();
        findings.push(Finding::new(
            FindingKind::Unexpected,
            format!(
                "{unexpected_total} records that were never expected ({} distinct); first: {}",
                unexpected.len(),
                examples(&shown, unexpected.len())
            ),
        ));
    }
    if summary.out_of_order > 0
        && options.per_split_order
        && options.semantic == Semantic::ExactlyOnce
    {
        findings.push(Finding::new(
            FindingKind::OutOfOrder,
            format!(
                "{} records out of their split's order; first: {}",
                summary.out_of_order,
                examples(&out_of_order, summary.out_of_order)
            ),
        ));
    }
    CheckResult { summary, findings }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn splits() -> Vec<ExpectedSplit<u32>> {
        vec![
            ExpectedSplit::new("a", (0..100).collect()),
            ExpectedSplit::new("b", (1000..1100).collect()),
        ]
    }

    fn interleave() -> Vec<u32> {
        (0..100).flat_map(|i| [i, 1000 + i]).collect()
    }

    #[test]
    fn exact_output_passes_both_semantics() {
        let actual = interleave();
        for semantic in Semantic::ALL {
            let r = check_records(&splits(), &actual, &CheckOptions::for_semantic(semantic));
            assert!(r.is_ok(), "{:?}", r.findings);
            assert_eq!(r.summary.distinct, 200);
        }
    }

    #[test]
    fn findings_are_concise_and_counted() {
        let mut actual = interleave();
        actual.retain(|r| !(10..40).contains(r)); // 30 missing
        actual.extend(0..3); // 3 duplicates, and out of order
        actual.extend([5000, 5000, 5001]);
        let r = check_records(&splits(), &actual, &CheckOptions::exactly_once());
        let kinds: Vec<FindingKind> = r.findings.iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            [
                FindingKind::Missing,
                FindingKind::Duplicated,
                FindingKind::Unexpected
            ]
        );
        assert!(r.findings[0].message.starts_with("30 missing of 200"));
        assert!(r.findings[0].message.contains("a #10 (10), a #11 (11)"));
        assert!(r.findings[0].message.ends_with(", …"));
        assert!(r.findings[1]
            .message
            .starts_with("3 extra copies of 3 records"));
        assert!(r.findings[2]
            .message
            .starts_with("3 records that were never expected (2 distinct)"));
        assert!(r.findings[2].message.contains("5000 ×2"));
        for f in &r.findings {
            assert!(f.message.len() < 300, "{f}");
        }
    }

    #[test]
    fn order_is_checked_per_split_only() {
        // Splits interleave freely, but within a split the order must hold.
        let mut actual: Vec<u32> = (1000..1100).chain(0..100).collect();
        let r = check_records(&splits(), &actual, &CheckOptions::exactly_once());
        assert!(r.is_ok(), "{:?}", r.findings);
        actual.swap(0, 5);
        let r = check_records(&splits(), &actual, &CheckOptions::exactly_once());
        assert_eq!(r.findings.len(), 1);
        assert_eq!(r.findings[0].kind, FindingKind::OutOfOrder);
        assert!(r.findings[0].message.contains("b #"), "{}", r.findings[0]);
        let r = check_records(&splits(), &actual, &CheckOptions::at_least_once());
        assert!(r.is_ok(), "at-least-once ignores order");
    }

    #[test]
    fn at_least_once_allows_duplicates_of_real_records_only() {
        let mut actual = interleave();
        actual.extend(0..50); // a replay
        let r = check_records(&splits(), &actual, &CheckOptions::at_least_once());
        assert!(r.is_ok(), "{:?}", r.findings);
        assert_eq!(r.summary.duplicates, 50);
        actual.push(7777);
        actual.retain(|r| *r != 1099);
        let r = check_records(&splits(), &actual, &CheckOptions::at_least_once());
        let kinds: Vec<FindingKind> = r.findings.iter().map(|f| f.kind).collect();
        assert_eq!(kinds, [FindingKind::Missing, FindingKind::Unexpected]);
        assert!(r.findings[0].message.contains("b #99 (1099)"));
    }

    #[test]
    fn prefix_mode_accepts_partial_splits_but_not_gaps() {
        let actual: Vec<u32> = (0..30).chain(1000..1010).collect();
        let options = CheckOptions::exactly_once().completeness(Completeness::Prefix);
        let r = check_records(&splits(), &actual, &options);
        assert!(r.is_ok(), "{:?}", r.findings);
        assert_eq!(r.summary.expected, 40);
        let gap: Vec<u32> = (0..30).filter(|n| *n != 12).collect();
        let r = check_records(&splits(), &gap, &options);
        assert_eq!(r.findings.len(), 1);
        assert!(r.findings[0].message.starts_with("1 missing below"));
    }

    #[test]
    fn duplicated_test_data_is_reported() {
        let expected = vec![
            ExpectedSplit::new("a", vec![1, 2]),
            ExpectedSplit::new("b", vec![2, 3]),
        ];
        let r = check_records(&expected, &[1, 2, 3], &CheckOptions::exactly_once());
        assert_eq!(r.findings[0].kind, FindingKind::InvalidTestData);
    }
}

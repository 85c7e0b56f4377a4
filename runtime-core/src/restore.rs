//! What a restore checks before any task starts: that the snapshot belongs to this job, that
//! every piece of its state maps onto an operator, and that no source's schema lost or changed
//! a field since the snapshot was taken.
//!
//! Flink refuses state that maps to no operator unless `--allowNonRestoredState` is given;
//! Weir does the same, and also refuses a snapshot taken by a job of another name and a source
//! whose fields were removed or changed. Every problem is reported at once.

use std::collections::BTreeSet;
use std::fmt;

use crate::storage::CheckpointMetadata;

/// What a restore does with state in the snapshot that maps to no operator of the job (an
/// operator renamed or removed since).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NonRestoredState {
    /// The job does not start; the error lists every unmatched uid (the default, as in Flink).
    #[default]
    Refuse,
    /// The unmatched state is dropped with a warning (Flink's `--allowNonRestoredState`).
    Allow,
}

/// What a restore does with a snapshot that a job of another name took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SnapshotOfOtherJob {
    /// The job does not start (the default).
    #[default]
    Refuse,
    /// The snapshot is used as if this job had taken it (after renaming the job).
    Allow,
}

/// One reason why a snapshot does not fit the job.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RestoreProblem {
    /// The snapshot was taken by a job of another name.
    OtherJob {
        /// The name recorded in the snapshot.
        snapshot_job: String,
        /// This job's name.
        job: String,
    },
    /// State of an operator uid that no operator of this job has.
    UnmatchedState {
        /// The uid in the snapshot.
        uid: String,
        /// The job's operator uids closest to it, most similar first.
        closest: Vec<String>,
    },
    /// A source's schema lost or changed fields since the snapshot.
    SchemaChanged {
        /// The source's uid.
        uid: String,
        /// Fields of the snapshot's schema that the job's schema no longer has as they were.
        removed: Vec<String>,
        /// Fields of the job's schema that the snapshot's schema did not have.
        added: Vec<String>,
    },
}

impl fmt::Display for RestoreProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreProblem::OtherJob { snapshot_job, job } => write!(
                f,
                "it was taken by job `{snapshot_job}`, not by this job `{job}`"
            ),
            RestoreProblem::UnmatchedState { uid, closest } => {
                write!(f, "state of `{uid}` matches no operator of this job")?;
                if closest.is_empty() {
                    Ok(())
                } else {
                    let names: Vec<String> = closest.iter().map(|c| format!("`{c}`")).collect();
                    write!(f, " (closest: {})", names.join(", "))
                }
            }
            RestoreProblem::SchemaChanged {
                uid,
                removed,
                added,
            } => {
                write!(
                    f,
                    "source `{uid}` no longer has these fields of the snapshot's schema: {}",
                    removed.join(", ")
                )?;
                if !added.is_empty() {
                    write!(f, " (it has instead: {})", added.join(", "))?;
                }
                Ok(())
            }
        }
    }
}

/// The job-side facts a restore is checked against.
pub(crate) struct JobShape<'a> {
    /// The job's name.
    pub(crate) name: &'a str,
    /// Every operator uid of the job.
    pub(crate) uids: BTreeSet<&'a str>,
    /// The declared schema of each source, by uid (sources without one are not listed).
    pub(crate) schemas: Vec<(&'a str, &'a [String])>,
}

/// Every problem of restoring `snapshot` into the job, and the unmatched uids that
/// [`NonRestoredState::Allow`] lets through (to be logged).
pub(crate) fn check(
    snapshot: &CheckpointMetadata,
    job: &JobShape<'_>,
    non_restored: NonRestoredState,
    other_job: SnapshotOfOtherJob,
) -> (Vec<RestoreProblem>, Vec<RestoreProblem>) {
    let mut problems = Vec::new();
    let mut allowed = Vec::new();
    if snapshot.job_name != job.name && other_job == SnapshotOfOtherJob::Refuse {
        problems.push(RestoreProblem::OtherJob {
            snapshot_job: snapshot.job_name.clone(),
            job: job.name.to_owned(),
        });
    }
    for uid in snapshot.operators.keys() {
        if job.uids.contains(uid.as_str()) {
            continue;
        }
        let problem = RestoreProblem::UnmatchedState {
            uid: uid.clone(),
            closest: closest(uid, &job.uids),
        };
        match non_restored {
            NonRestoredState::Refuse => problems.push(problem),
            NonRestoredState::Allow => allowed.push(problem),
        }
    }
    for (uid, schema) in &job.schemas {
        let Some(old) = snapshot.operators.get(*uid).map(|op| &op.schema) else {
            continue;
        };
        if old.is_empty() {
            continue; // taken before schemas were recorded
        }
        let removed: Vec<String> = old
            .iter()
            .filter(|field| !schema.contains(field))
            .cloned()
            .collect();
        if !removed.is_empty() {
            let added = schema
                .iter()
                .filter(|field| !old.contains(field))
                .cloned()
                .collect();
            problems.push(RestoreProblem::SchemaChanged {
                uid: (*uid).to_owned(),
                removed,
                added,
            });
        }
    }
    (problems, allowed)
}

/// Up to three of `candidates` most similar to `uid` (normalised Levenshtein ≥ 0.4).
fn closest(uid: &str, candidates: &BTreeSet<&str>) -> Vec<String> {
    let mut scored: Vec<(f64, &str)> = candidates
        .iter()
        .map(|c| (strsim::normalized_levenshtein(uid, c), *c))
        .filter(|(score, _)| *score >= 0.4)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored
        .into_iter()
        .take(3)
        .map(|(_, c)| c.to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::OperatorSnapshot;

    fn snapshot(job: &str, uids: &[&str]) -> CheckpointMetadata {
        CheckpointMetadata {
            job_name: job.to_owned(),
            operators: uids
                .iter()
                .map(|u| ((*u).to_owned(), OperatorSnapshot::default()))
                .collect(),
            ..CheckpointMetadata::default()
        }
    }

    fn shape<'a>(name: &'a str, uids: &[&'a str]) -> JobShape<'a> {
        JobShape {
            name,
            uids: uids.iter().copied().collect(),
            schemas: Vec::new(),
        }
    }

    #[test]
    fn a_matching_snapshot_has_no_problems() {
        let (problems, allowed) = check(
            &snapshot("j", &["orders", "sink"]),
            &shape("j", &["orders", "sink", "sink/committer"]),
            NonRestoredState::Refuse,
            SnapshotOfOtherJob::Refuse,
        );
        assert!(problems.is_empty() && allowed.is_empty(), "{problems:?}");
    }

    #[test]
    fn unmatched_state_is_refused_with_the_closest_names_or_allowed() {
        let snap = snapshot("j", &["parquet", "orders"]);
        let job = shape("j", &["orders", "parquet-out", "parquet-out/committer"]);
        let (problems, _) = check(
            &snap,
            &job,
            NonRestoredState::Refuse,
            SnapshotOfOtherJob::Refuse,
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        let text = problems[0].to_string();
        assert!(
            text.contains("`parquet` matches no operator") && text.contains("`parquet-out`"),
            "{text}"
        );
        let (problems, allowed) = check(
            &snap,
            &job,
            NonRestoredState::Allow,
            SnapshotOfOtherJob::Refuse,
        );
        assert!(problems.is_empty());
        assert_eq!(allowed.len(), 1);
    }

    #[test]
    fn another_jobs_snapshot_is_refused_unless_allowed() {
        let snap = snapshot("other", &[]);
        let (problems, _) = check(
            &snap,
            &shape("mine", &[]),
            NonRestoredState::Refuse,
            SnapshotOfOtherJob::Refuse,
        );
        assert_eq!(
            problems,
            vec![RestoreProblem::OtherJob {
                snapshot_job: "other".into(),
                job: "mine".into()
            }]
        );
        let (problems, _) = check(
            &snap,
            &shape("mine", &[]),
            NonRestoredState::Refuse,
            SnapshotOfOtherJob::Allow,
        );
        assert!(problems.is_empty());
    }

    #[test]
    fn removed_or_changed_fields_are_refused_and_added_ones_are_not() {
        let mut snap = snapshot("j", &["src"]);
        if let Some(op) = snap.operators.get_mut("src") {
            op.schema = vec!["id int64 not null".into(), "name string".into()];
        }
        let added = vec![
            "id int64 not null".to_owned(),
            "name string".to_owned(),
            "extra float64".to_owned(),
        ];
        let mut job = shape("j", &["src"]);
        job.schemas = vec![("src", added.as_slice())];
        let (problems, _) = check(
            &snap,
            &job,
            NonRestoredState::Refuse,
            SnapshotOfOtherJob::Refuse,
        );
        assert!(problems.is_empty(), "{problems:?}");

        let changed = vec!["id int64 not null".to_owned(), "name int64".to_owned()];
        job.schemas = vec![("src", changed.as_slice())];
        let (problems, _) = check(
            &snap,
            &job,
            NonRestoredState::Allow,
            SnapshotOfOtherJob::Allow,
        );
        assert_eq!(
            problems,
            vec![RestoreProblem::SchemaChanged {
                uid: "src".into(),
                removed: vec!["name string".into()],
                added: vec!["name int64".into()],
            }]
        );
    }
}

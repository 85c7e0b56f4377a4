//! What a restore checks before any task starts: that the snapshot belongs to this job, that
//! every piece of its state maps onto an operator, that no source's schema lost or changed
//! a field since the snapshot was taken, and that no operator that had finished gets new input.
//!
//! Flink refuses state that maps to no operator unless `--allowNonRestoredState` is given;
//! Weir does the same, and also refuses a snapshot taken by a job of another name and a source
//! whose fields were removed or changed. As Flink does for jobs with finished tasks (FLIP-147),
//! it refuses to send records into an operator that had finished: a finished operator takes no
//! more input, so they would be lost. Records start at sources, so what is refused upstream of
//! a finished operator is a source without state in the snapshot (added, or renamed) and any
//! operator still running in it; a stateless operator (a map, a synchronous lookup join) only
//! passes on what its inputs send. Every problem is reported at once.

use std::collections::{BTreeSet, VecDeque};
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

/// Where an operator upstream of a finished one stands in the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamStatus {
    /// A source without state in the snapshot: added since (or renamed), it reads its input
    /// from the start.
    New,
    /// An operator that was still running when the snapshot was taken.
    Running,
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
    /// A source that is new, or an operator that was still running in the snapshot, is
    /// upstream of an operator that had finished (FLIP-147): the finished one takes no more
    /// input, so the records sent to it would be lost.
    UpstreamOfFinished {
        /// The uid of the new source or of the running operator.
        operator: String,
        /// Whether it is new or was still running.
        status: UpstreamStatus,
        /// The uid of the nearest operator downstream of it that had finished.
        finished: String,
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
            RestoreProblem::UpstreamOfFinished {
                operator,
                status,
                finished,
            } => {
                match status {
                    UpstreamStatus::New => write!(
                        f,
                        "source `{operator}` is new, but it is upstream of `{finished}`, which \
                         had finished in the snapshot"
                    )?,
                    UpstreamStatus::Running => write!(
                        f,
                        "operator `{operator}` had not finished in the snapshot, but it is now \
                         upstream of `{finished}`, which had"
                    )?,
                }
                write!(
                    f,
                    ": a finished operator takes no more input, so `{finished}` would never \
                     see the records of `{operator}`"
                )
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
    /// The operator uids of each task group, in chain order (the source first).
    pub(crate) chains: Vec<Vec<&'a str>>,
    /// The channels between task groups, `(from, to)`, as indices into `chains`.
    pub(crate) edges: Vec<(usize, usize)>,
    /// The uids of the job's sources.
    pub(crate) sources: BTreeSet<&'a str>,
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
    problems.extend(upstream_of_finished(snapshot, job));
    (problems, allowed)
}

/// Every source without state and every operator still running in the snapshot that is
/// upstream of an operator that had finished, each with the nearest such finished operator (in
/// its chain first, then along the channels, breadth first).
fn upstream_of_finished(snapshot: &CheckpointMetadata, job: &JobShape<'_>) -> Vec<RestoreProblem> {
    let finished = |uid: &str| snapshot.operators.get(uid).is_some_and(|op| op.finished);
    if !job.chains.iter().flatten().any(|uid| finished(uid)) {
        return Vec::new();
    }
    let mut problems = Vec::new();
    for (group, chain) in job.chains.iter().enumerate() {
        for (position, uid) in chain.iter().enumerate() {
            let status = match snapshot.operators.get(*uid) {
                None if job.sources.contains(uid) => UpstreamStatus::New,
                Some(op) if !op.finished => UpstreamStatus::Running,
                // Finished, or an operator without state: it sends only what reaches it.
                _ => continue,
            };
            let later_in_chain = chain.iter().skip(position + 1);
            let downstream = later_in_chain.chain(
                groups_after(group, &job.edges)
                    .into_iter()
                    .filter_map(|g| job.chains.get(g))
                    .flatten(),
            );
            if let Some(nearest) = downstream.into_iter().find(|d| finished(d)) {
                problems.push(RestoreProblem::UpstreamOfFinished {
                    operator: (*uid).to_owned(),
                    status,
                    finished: (*nearest).to_owned(),
                });
            }
        }
    }
    problems
}

/// The groups reachable from `group` along the channels, nearest first (breadth first).
fn groups_after(group: usize, edges: &[(usize, usize)]) -> Vec<usize> {
    let mut seen = BTreeSet::from([group]);
    let mut order = Vec::new();
    let mut queue = VecDeque::from([group]);
    while let Some(g) = queue.pop_front() {
        for &(_, to) in edges.iter().filter(|(from, _)| *from == g) {
            if seen.insert(to) {
                order.push(to);
                queue.push_back(to);
            }
        }
    }
    order
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
            chains: vec![uids.to_vec()],
            edges: Vec::new(),
            sources: BTreeSet::new(),
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

    /// A job of four groups: source `a` → `b` chained, source `new` (or `other`), both into
    /// `sink → sink/committer`; and source `side`, on its own.
    fn graph(second: &str) -> JobShape<'_> {
        JobShape {
            name: "j",
            uids: ["a", "b", second, "sink", "sink/committer", "side"]
                .into_iter()
                .collect(),
            schemas: Vec::new(),
            chains: vec![
                vec!["a", "b"],
                vec![second],
                vec!["sink", "sink/committer"],
                vec!["side"],
            ],
            edges: vec![(0, 2), (1, 2)],
            sources: ["a", second, "side"].into_iter().collect(),
        }
    }

    fn finished_snapshot(finished: &[&str], running: &[&str]) -> CheckpointMetadata {
        let mut snap = snapshot("j", &[]);
        for (uids, done) in [(finished, true), (running, false)] {
            for uid in uids {
                snap.operators.insert(
                    (*uid).to_owned(),
                    OperatorSnapshot {
                        finished: done,
                        ..OperatorSnapshot::default()
                    },
                );
            }
        }
        snap
    }

    fn check_graph(snap: &CheckpointMetadata, job: &JobShape<'_>) -> Vec<RestoreProblem> {
        check(
            snap,
            job,
            NonRestoredState::Refuse,
            SnapshotOfOtherJob::Refuse,
        )
        .0
    }

    #[test]
    fn an_operator_added_upstream_of_a_finished_one_is_refused_naming_both() {
        let done = ["a", "b", "sink", "sink/committer"];
        let problems = check_graph(&finished_snapshot(&done, &["side"]), &graph("new"));
        assert_eq!(
            problems,
            vec![RestoreProblem::UpstreamOfFinished {
                operator: "new".into(),
                status: UpstreamStatus::New,
                finished: "sink".into(),
            }],
            "only `new` feeds a finished operator; `side` runs on its own"
        );
        let text = problems[0].to_string();
        assert!(
            text.starts_with(
                "source `new` is new, but it is upstream of `sink`, which had finished in the \
                 snapshot"
            ),
            "{text}"
        );
        // An operator that was still running, now wired into the finished sink: refused too.
        let problems = check_graph(
            &finished_snapshot(&done, &["other", "side"]),
            &graph("other"),
        );
        assert_eq!(
            problems,
            vec![RestoreProblem::UpstreamOfFinished {
                operator: "other".into(),
                status: UpstreamStatus::Running,
                finished: "sink".into(),
            }]
        );
    }

    #[test]
    fn new_operators_beside_or_after_finished_ones_and_running_jobs_are_fine() {
        // `new` feeds a sink that is still running; `side` is new and feeds nothing finished.
        let problems = check_graph(
            &finished_snapshot(&["a", "b"], &["sink", "sink/committer"]),
            &graph("new"),
        );
        assert!(problems.is_empty(), "{problems:?}");
        // A new operator downstream of finished ones (here the committer) is no problem.
        let problems = check_graph(
            &finished_snapshot(&["a", "b", "other", "sink"], &[]),
            &graph("other"),
        );
        assert!(problems.is_empty(), "{problems:?}");
        // Nor is an operator without state (`b`: a map-like operator, added or not) between
        // finished ones: it only passes on what its finished input sends, which is nothing.
        let problems = check_graph(
            &finished_snapshot(&["a", "other", "sink", "sink/committer"], &[]),
            &graph("other"),
        );
        assert!(problems.is_empty(), "{problems:?}");
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

//! Removing what killed or failed attempts left behind, without touching what a checkpoint, a
//! savepoint or a live subtask still needs.
//!
//! A part file's name carries the writing subtask and its *epoch* (see [`naming`](super::naming)).
//! Every subtask sweeps, before it opens its first file, only files of subtasks `s` with
//! `s % parallelism == subtask`: its own earlier files and those of subtasks that no longer exist
//! after a rescale, never a file of another live subtask of the job. Within that scope it removes
//!
//! - after a restore from checkpoint `n` (or a restart without one, `n = 0`): in-progress files
//!   of epochs above `n`, and writers also hidden finished part files of those epochs (inputs a
//!   compactor published before the checkpoint completed) — no checkpoint up to `n` references
//!   them;
//! - at every start, a fresh one too: **empty** in-progress files of any epoch. Nothing a
//!   checkpoint or savepoint references is empty: writers persist and hand over only part files
//!   with at least one byte (an empty one is discarded), and compactors publish no empty
//!   compacted file. So an empty one is the leftover of a kill before that file got its first
//!   bytes — typically before the first checkpoint, after which `weir run
//!   --from-latest-checkpoint` has nothing to restore and the job starts fresh.
//!
//! A non-empty in-progress file of epoch `e ≤ n` may be a pending committable of checkpoint
//! `n` (in the committer's state, not the writer's) or the in-progress file of an older
//! checkpoint or savepoint that is restored later; it stays. Such files are hidden (`.` prefix),
//! so readers never see them.
//!
//! Empty files are recognised only where the filesystem lists in-progress files as files (the
//! local one); elsewhere (open S3 uploads) only the epoch rule applies.

use std::collections::HashSet;
use std::sync::Arc;

use weir_connector_api::error::Result;

use super::naming::{parse_part_name, Label, OutputFileConfig};
use crate::fs::file_name;
use crate::fs::FileSystem;

/// Which part files a sweep looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartKind {
    /// The writers' part files.
    Written,
    /// The compactors' outputs (`compacted-…`).
    Compacted,
}

/// How the sweeping subtask started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StartKind {
    /// Without state: a new job, or one started again after kills before any checkpoint.
    Fresh,
    /// From checkpoint `n`, or `0` for a restart of the job without a completed checkpoint.
    Restored(u64),
}

/// What [`sweep_at_start`] removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StartSweep {
    /// Writer part files or compactor outputs.
    pub parts: PartKind,
    /// The sweeping subtask: files of subtasks `s` with `s % parallelism == subtask`.
    pub subtask: u32,
    /// The sweeping operator's parallelism.
    pub parallelism: u32,
    /// How the subtask started.
    pub start: StartKind,
}

impl StartSweep {
    fn owns(&self, label: Label, compacted: bool) -> bool {
        compacted == (self.parts == PartKind::Compacted)
            && label.subtask % self.parallelism.max(1) == self.subtask
    }

    fn unreferenced(&self, label: Label) -> bool {
        match self.start {
            StartKind::Fresh => false,
            StartKind::Restored(n) => label.epoch > n,
        }
    }
}

/// Removes, under `base`, what earlier attempts left that nothing can need (see the
/// [module docs](self)); call it before the subtask opens its first file. Returns how many
/// files were removed.
pub async fn sweep_at_start(
    fs: &Arc<dyn FileSystem>,
    base: &str,
    output: &OutputFileConfig,
    sweep: StartSweep,
) -> Result<usize> {
    let rw = fs.recoverable_writer();
    let in_progress = rw.list_in_progress(base).await?;
    let hidden_parts = sweep.parts == PartKind::Written && sweep.start != StartKind::Fresh;
    // Sizes are needed only for own in-progress files the epoch rule keeps (a listing of the
    // whole output can be long on object stores).
    let sizes_needed = in_progress.iter().any(|e| {
        parse_part_name(output, file_name(&e.target))
            .is_some_and(|(label, c)| sweep.owns(label, c) && !sweep.unreferenced(label))
    });
    let files = if sizes_needed || hidden_parts {
        fs.list_files(base).await?
    } else {
        Vec::new()
    };
    let empty: HashSet<&str> = files
        .iter()
        .filter(|f| f.len == 0)
        .map(|f| f.path.as_str())
        .collect();
    let mut swept = 0;
    for entry in &in_progress {
        let Some((label, compacted)) = parse_part_name(output, file_name(&entry.target)) else {
            continue;
        };
        if !sweep.owns(label, compacted) {
            continue;
        }
        if sweep.unreferenced(label) {
            tracing::info!(target = %entry.target, "removing an in-progress file of a failed attempt that no restored checkpoint references");
        } else if empty.contains(entry.handle.as_str()) {
            tracing::info!(target = %entry.target, "removing an empty in-progress file left by a killed attempt");
        } else {
            continue;
        }
        rw.abort_in_progress(entry).await?;
        swept += 1;
    }
    if hidden_parts {
        for file in &files {
            let name = file_name(&file.path);
            if !name.starts_with('.') {
                continue;
            }
            if let Some((label, compacted)) = parse_part_name(output, name) {
                if sweep.owns(label, compacted) && sweep.unreferenced(label) {
                    tracing::info!(path = %file.path, "removing a hidden part file of a failed attempt that no restored checkpoint references");
                    fs.delete(&file.path).await?;
                    swept += 1;
                }
            }
        }
    }
    Ok(swept)
}

/// Which orphans [`sweep_orphans`] removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SweepScope {
    /// Compactor outputs instead of writer part files.
    pub compacted: bool,
    /// The sweeping subtask: files of subtasks `s` with `s % parallelism == subtask`.
    pub subtask: u32,
    /// The sweeping operator's parallelism.
    pub parallelism: u32,
    /// Only files of epochs above this (the restored checkpoint, 0 without one).
    pub above: u64,
    /// Only files of job attempts below this, if set.
    pub attempts_below: Option<u32>,
}

/// Removes what failed attempts left under `base` that no checkpoint up to `above`
/// references: in-progress files (and open uploads) and hidden finished part files (inputs a
/// compactor published before the checkpoint completed) of epochs above `above`, written by
/// sink subtasks in `scope`. With `scope.attempts_below`, only files of earlier job attempts are
/// removed (safe while the current attempt writes; catches files a failed attempt's requests
/// created late). Returns how many were removed.
pub async fn sweep_orphans(
    fs: &Arc<dyn FileSystem>,
    base: &str,
    output: &OutputFileConfig,
    scope: SweepScope,
) -> Result<usize> {
    let SweepScope {
        compacted,
        subtask,
        parallelism,
        above,
        attempts_below,
    } = scope;
    let rw = fs.recoverable_writer();
    let orphan = |name: &str| {
        parse_part_name(output, name).is_some_and(|(label, is_compacted)| {
            is_compacted == compacted
                && label.subtask % parallelism.max(1) == subtask
                && label.epoch > above
                && attempts_below.is_none_or(|a| label.attempt < a)
        })
    };
    let mut swept = 0;
    for entry in rw.list_in_progress(base).await? {
        if orphan(file_name(&entry.target)) {
            tracing::info!(target = %entry.target, "removing an orphaned in-progress file of a failed attempt");
            rw.abort_in_progress(&entry).await?;
            swept += 1;
        }
    }
    if !compacted {
        for file in fs.list_files(base).await? {
            let name = file_name(&file.path);
            if name.starts_with('.') && orphan(name) {
                tracing::info!(path = %file.path, "removing an orphaned hidden part file of a failed attempt");
                fs.delete(&file.path).await?;
                swept += 1;
            }
        }
    }
    Ok(swept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::LocalFileSystem;
    use crate::sink::naming::{label_uuid, part_name, COMPACTED_PREFIX};

    fn name(output: &OutputFileConfig, subtask: u32, epoch: u64, compacted: bool) -> String {
        let label = Label {
            subtask,
            attempt: 0,
            epoch,
        };
        let name = part_name(output, &label_uuid(label), 0);
        if compacted {
            format!("{COMPACTED_PREFIX}{name}")
        } else {
            name
        }
    }

    #[tokio::test]
    async fn a_start_removes_only_empty_or_unreferenced_files_of_its_own_subtasks() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().to_string_lossy().into_owned();
        let fs: Arc<dyn FileSystem> = Arc::new(LocalFileSystem::new());
        let rw = fs.recoverable_writer();
        let output = OutputFileConfig::new("part", ".json");
        // (subtask, epoch, compacted, bytes)
        let files = [
            (0, 1, false, 0), // empty, own: removed at any start
            (2, 1, false, 0), // empty, of a subtask gone after scaling down to 2: removed
            (1, 1, false, 0), // empty, of the other live subtask: stays
            (0, 1, true, 0),  // empty, but a compactor's: stays for the writers' sweep
            (0, 1, false, 3), // not empty, epoch 1: may be referenced, stays
            (0, 5, false, 3), // not empty, epoch 5: unreferenced after a restore from 4
        ];
        let mut open = Vec::new();
        for (subtask, epoch, compacted, bytes) in files {
            let target = format!("{base}/b/{}", name(&output, subtask, epoch, compacted));
            let mut s = rw.open(&target).unwrap();
            if bytes > 0 {
                s.write(&vec![b'x'; bytes]).unwrap();
                s.persist().await.unwrap();
            }
            open.push(s);
        }
        let left = || async { rw.list_in_progress(&base).await.unwrap().len() };
        let fresh = StartSweep {
            parts: PartKind::Written,
            subtask: 0,
            parallelism: 2,
            start: StartKind::Fresh,
        };
        assert_eq!(sweep_at_start(&fs, &base, &output, fresh).await.unwrap(), 2);
        assert_eq!(left().await, 4);
        let restored = StartSweep {
            start: StartKind::Restored(4),
            ..fresh
        };
        assert_eq!(
            sweep_at_start(&fs, &base, &output, restored).await.unwrap(),
            1
        );
        assert_eq!(left().await, 3);
        let compactor = StartSweep {
            parts: PartKind::Compacted,
            ..fresh
        };
        assert_eq!(
            sweep_at_start(&fs, &base, &output, compactor)
                .await
                .unwrap(),
            1
        );
        let other = StartSweep {
            subtask: 1,
            ..fresh
        };
        assert_eq!(sweep_at_start(&fs, &base, &output, other).await.unwrap(), 1);
        assert_eq!(left().await, 1, "the non-empty file of epoch 1 stays");
    }
}

//! The file enumerator: discovers files (once, or every monitor interval), cuts them into
//! splits and hands one split to each reader that asks.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::FutureExt;
use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::error::{ConnectorError, ErrorClass, Result};
use weir_connector_api::source::{EnumeratorContext, SplitEnumerator, SplitsAssignment};
use weir_connector_api::state::{StateError, StateReader, StateWriter, VersionedSerializer};

use super::split::{read_split, write_split, FileSourceSplit};
use super::Discovery;
use crate::fs::parent;

/// What discovery found: new splits, in reading order.
pub type DiscoveryResult = std::result::Result<Vec<FileSourceSplit>, ConnectorError>;

/// The enumerator's checkpointed state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileEnumeratorState {
    /// Splits not yet assigned, in order.
    pub pending: Vec<FileSourceSplit>,
    /// Files already turned into splits, with their modification time (continuous mode keeps
    /// only those at or above `watermark`).
    pub seen: BTreeMap<String, i64>,
    /// Files modified before this (ms since the epoch) are ignored (continuous mode).
    pub watermark: i64,
    /// Bounded mode: discovery finished.
    pub discovered: bool,
    /// Ordered reading: directories whose files were assigned (informational; after a restore
    /// the enumerator waits until the restored splits are read and committed).
    pub in_flight: BTreeSet<String>,
}

/// Serializes [`FileEnumeratorState`] (version 1).
#[derive(Debug, Clone, Copy, Default)]
pub struct FileEnumeratorStateSerializer;

impl FileEnumeratorStateSerializer {
    /// The version this serializer writes.
    pub const VERSION: u32 = 1;
}

impl VersionedSerializer<FileEnumeratorState> for FileEnumeratorStateSerializer {
    fn version(&self) -> u32 {
        Self::VERSION
    }
    fn serialize(&self, s: &FileEnumeratorState) -> std::result::Result<Vec<u8>, StateError> {
        let mut w = StateWriter::new();
        w.put_len(s.pending.len());
        for split in &s.pending {
            write_split(&mut w, split);
        }
        w.put_len(s.seen.len());
        for (path, mtime) in &s.seen {
            w.put_str(path).put_i64(*mtime);
        }
        w.put_i64(s.watermark)
            .put_bool(s.discovered)
            .put_len(s.in_flight.len());
        for g in &s.in_flight {
            w.put_str(g);
        }
        w.finish()
    }
    fn deserialize(
        &self,
        version: u32,
        bytes: &[u8],
    ) -> std::result::Result<FileEnumeratorState, StateError> {
        if version != Self::VERSION {
            return Err(StateError::unknown_version(
                "file enumerator state",
                version,
                &[Self::VERSION],
            ));
        }
        let mut r = StateReader::new(bytes);
        let n = r.get_len()?;
        let mut pending = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            pending.push(read_split(&mut r)?);
        }
        let n = r.get_len()?;
        let mut seen = BTreeMap::new();
        for _ in 0..n {
            let path = r.get_str()?.to_owned();
            seen.insert(path, r.get_i64()?);
        }
        let watermark = r.get_i64()?;
        let discovered = r.get_bool()?;
        let n = r.get_len()?;
        let mut in_flight = BTreeSet::new();
        for _ in 0..n {
            in_flight.insert(r.get_str()?.to_owned());
        }
        r.finish()?;
        Ok(FileEnumeratorState {
            pending,
            seen,
            watermark,
            discovered,
            in_flight,
        })
    }
}

/// Hands out file splits on request. See the [module docs](self).
pub struct FileEnumerator {
    ctx: EnumeratorContext<FileSourceSplit, DiscoveryResult>,
    discovery: Arc<Discovery>,
    pending: VecDeque<FileSourceSplit>,
    seen: Arc<Mutex<BTreeMap<String, i64>>>,
    watermark: Arc<Mutex<i64>>,
    discovered: bool,
    waiting: BTreeSet<usize>,
    /// Ordered reading: the reader each directory's files go to.
    affinity: HashMap<String, usize>,
    /// Ordered reading after a restore: who read the restored files is unknown.
    restore: RestorePhase,
}

/// Ordered reading after a restore: no file of a directory may be read while an earlier one
/// (restored in some reader) has records that are not committed yet.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RestorePhase {
    /// Assign freely (respecting affinity).
    Done,
    /// Waiting until every reader has asked for a split (so the restored splits are read).
    WaitReaders(HashSet<usize>),
    /// Waiting for a checkpoint to complete (so their records are committed).
    WaitCheckpoint,
}

impl FileEnumerator {
    pub(crate) fn new(
        ctx: EnumeratorContext<FileSourceSplit, DiscoveryResult>,
        discovery: Arc<Discovery>,
        state: FileEnumeratorState,
        restored: bool,
    ) -> Self {
        let ordered = discovery.ordered;
        FileEnumerator {
            ctx,
            discovery,
            pending: state.pending.into(),
            seen: Arc::new(Mutex::new(state.seen)),
            watermark: Arc::new(Mutex::new(state.watermark)),
            discovered: state.discovered,
            waiting: BTreeSet::new(),
            affinity: HashMap::new(),
            restore: if restored && ordered {
                RestorePhase::WaitReaders(HashSet::new())
            } else {
                RestorePhase::Done
            },
        }
    }

    fn group(split: &FileSourceSplit) -> String {
        parent(&split.path).to_owned()
    }

    fn next_for(&mut self, subtask: usize) -> Option<FileSourceSplit> {
        if !self.discovery.ordered {
            return self.pending.pop_front();
        }
        // Every file of a directory goes to the same reader, which reads its splits in order.
        let idx = self.pending.iter().position(|s| {
            self.affinity
                .get(&Self::group(s))
                .is_none_or(|r| *r == subtask)
        })?;
        self.pending.remove(idx)
    }

    fn serve(&mut self, subtask: usize) -> Result<bool> {
        if self.discovery.ordered {
            match &mut self.restore {
                RestorePhase::Done => {}
                RestorePhase::WaitReaders(asked) => {
                    asked.insert(subtask);
                    let p = self.ctx.current_parallelism();
                    if (0..p).all(|s| asked.contains(&s)) {
                        self.restore = RestorePhase::WaitCheckpoint;
                    }
                    return Ok(false);
                }
                RestorePhase::WaitCheckpoint => return Ok(false),
            }
        }
        if let Some(split) = self.next_for(subtask) {
            if self.discovery.ordered {
                self.affinity.insert(Self::group(&split), subtask);
            }
            self.ctx
                .assign_splits(SplitsAssignment::single(subtask, split))?;
            return Ok(true);
        }
        if self.discovery.monitor.is_none() && self.discovered && self.pending.is_empty() {
            self.ctx.signal_no_more_splits(subtask)?;
            return Ok(true);
        }
        Ok(false)
    }

    fn serve_waiting(&mut self) -> Result<()> {
        let waiting: Vec<usize> = self.waiting.iter().copied().collect();
        for subtask in waiting {
            if !self.ctx.registered_readers().contains(&subtask) {
                continue;
            }
            if self.serve(subtask)? {
                self.waiting.remove(&subtask);
            }
        }
        Ok(())
    }
}

impl SplitEnumerator for FileEnumerator {
    type Split = FileSourceSplit;
    type State = FileEnumeratorState;
    type AsyncResult = DiscoveryResult;

    fn start(&mut self) -> Result<()> {
        let discovery = Arc::clone(&self.discovery);
        let seen = Arc::clone(&self.seen);
        let watermark = Arc::clone(&self.watermark);
        match discovery.monitor {
            None => {
                if !self.discovered {
                    self.ctx.call_async(
                        async move { discovery.discover(&seen, &watermark).await }.boxed(),
                    );
                }
            }
            Some(interval) => {
                self.ctx.call_async_periodic(
                    Box::new(move || {
                        let discovery = Arc::clone(&discovery);
                        let seen = Arc::clone(&seen);
                        let watermark = Arc::clone(&watermark);
                        async move { discovery.discover(&seen, &watermark).await }.boxed()
                    }),
                    Duration::ZERO,
                    interval,
                );
            }
        }
        Ok(())
    }

    fn handle_split_request(&mut self, subtask: usize) -> Result<()> {
        if self.serve(subtask)? {
            // Others may now be told there is nothing more.
            self.serve_waiting()
        } else {
            self.waiting.insert(subtask);
            Ok(())
        }
    }

    fn notify_checkpoint_complete(&mut self, _checkpoint_id: CheckpointId) -> Result<()> {
        if self.restore == RestorePhase::WaitCheckpoint {
            self.restore = RestorePhase::Done;
            return self.serve_waiting();
        }
        Ok(())
    }

    fn add_splits_back(&mut self, splits: Vec<FileSourceSplit>, subtask: usize) -> Result<()> {
        for split in splits.into_iter().rev() {
            self.pending.push_front(split);
        }
        self.affinity.retain(|_, reader| *reader != subtask);
        self.serve_waiting()
    }

    fn add_reader(&mut self, _subtask: usize) -> Result<()> {
        Ok(())
    }

    fn snapshot_state(&mut self, _checkpoint_id: CheckpointId) -> Result<FileEnumeratorState> {
        let seen = self
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let watermark = *self
            .watermark
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(FileEnumeratorState {
            pending: self.pending.iter().cloned().collect(),
            seen,
            watermark,
            discovered: self.discovered,
            in_flight: self.affinity.keys().cloned().collect(),
        })
    }

    fn handle_async_result(&mut self, result: DiscoveryResult) -> Result<()> {
        let splits = match result {
            Ok(splits) => splits,
            Err(e) if e.class() == ErrorClass::Retryable && self.discovery.monitor.is_some() => {
                tracing::warn!("file discovery failed, retrying at the next interval: {e}");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        {
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            let mut accepted: BTreeSet<String> = BTreeSet::new();
            for split in splits {
                if seen.contains_key(&split.path) && !accepted.contains(&split.path) {
                    continue; // found twice by overlapping scans
                }
                accepted.insert(split.path.clone());
                seen.insert(split.path.clone(), split.modified_millis);
                self.pending.push_back(split);
            }
            if let Some(retention) = self.discovery.retention {
                // Keep memory bounded: forget files older than the newest minus the retention,
                // and ignore such files from now on.
                let newest = seen.values().copied().max().unwrap_or(i64::MIN);
                let mark = newest.saturating_sub(retention.as_millis() as i64);
                let mut wm = self
                    .watermark
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if mark > *wm {
                    *wm = mark;
                    seen.retain(|_, m| *m >= mark);
                }
            }
        }
        self.discovered = true;
        self.serve_waiting()
    }
}

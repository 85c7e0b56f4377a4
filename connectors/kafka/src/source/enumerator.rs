//! The enumerator: discovers topic-partitions (by list or pattern) once or periodically,
//! resolves their offsets, and assigns them to readers deterministically. Partitions found after
//! the first discovery start from the earliest offset (FLIP-288: never skip data silently). Its
//! checkpoint is [`KafkaEnumeratorState`], with its versioned serializer.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use rdkafka::consumer::{BaseConsumer, Consumer};
use regex::Regex;
use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::source::{EnumeratorContext, SplitEnumerator, SplitsAssignment};
use weir_connector_api::state::{StateError, StateReader, StateWriter, VersionedSerializer};

use super::offsets::{resolve_splits, StartingOffsets, StoppingOffsets};
use super::split::{KafkaPartitionSplit, KafkaPartitionSplitSerializer};
use crate::error::kafka_error;

/// Which topics a source reads.
#[derive(Debug, Clone)]
pub enum TopicSelection {
    /// These topics (each must exist).
    Topics(Vec<String>),
    /// Every topic whose whole name matches the pattern.
    Pattern(Regex),
}

/// Everything discovery needs, shared with its background runs.
pub(crate) struct Discovery {
    pub(crate) client: BaseConsumer,
    pub(crate) wire: crate::protocol::WireClient,
    pub(crate) topics: TopicSelection,
    pub(crate) starting: StartingOffsets,
    pub(crate) stopping: StoppingOffsets,
    pub(crate) group: Option<String>,
    pub(crate) timeout: Duration,
}

impl Discovery {
    /// The current topic-partitions, sorted. Blocking.
    fn list(&self) -> Result<Vec<(String, i32)>> {
        let mut out = Vec::new();
        match &self.topics {
            TopicSelection::Topics(topics) => {
                for topic in topics {
                    let md = self
                        .client
                        .fetch_metadata(Some(topic), self.timeout)
                        .map_err(|e| {
                            kafka_error(&format!("reading metadata of topic {topic}"), &e)
                        })?;
                    for t in md.topics() {
                        if let Some(err) = t.error() {
                            return Err(ConnectorError::fatal(
                                format!("discovering the partitions of topic {topic}"),
                                format!(
                                    "{} (does the topic exist?)",
                                    rdkafka::error::RDKafkaErrorCode::from(err)
                                ),
                            ));
                        }
                        for p in t.partitions() {
                            out.push((t.name().to_owned(), p.id()));
                        }
                    }
                }
            }
            TopicSelection::Pattern(re) => {
                let md = self
                    .client
                    .fetch_metadata(None, self.timeout)
                    .map_err(|e| kafka_error("reading the cluster's metadata", &e))?;
                for t in md.topics() {
                    if t.error().is_some() || !full_match(re, t.name()) {
                        continue;
                    }
                    for p in t.partitions() {
                        out.push((t.name().to_owned(), p.id()));
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

impl Drop for KafkaSourceEnumerator {
    fn drop(&mut self) {
        // Closing a consumer blocks briefly: never on the coordinator's task.
        let discovery = Arc::clone(&self.discovery);
        let _ = std::thread::Builder::new()
            .name("kafka-discovery-close".into())
            .spawn(move || drop(discovery));
    }
}

fn full_match(re: &Regex, name: &str) -> bool {
    re.find(name)
        .is_some_and(|m| m.start() == 0 && m.end() == name.len())
}

/// The result of background work of the enumerator.
pub enum DiscoveryResult {
    /// The topic-partitions found.
    Listed(Result<Vec<(String, i32)>>),
    /// Splits with resolved offsets for new partitions.
    Resolved {
        /// Whether they belong to the initial discovery.
        initial: bool,
        /// The partitions asked for.
        partitions: Vec<(String, i32)>,
        /// The splits.
        splits: Result<Vec<KafkaPartitionSplit>>,
    },
}

impl std::fmt::Debug for DiscoveryResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DiscoveryResult::Listed(r) => write!(f, "Listed({:?})", r.as_ref().map(Vec::len)),
            DiscoveryResult::Resolved {
                initial, splits, ..
            } => write!(
                f,
                "Resolved(initial: {initial}, {:?})",
                splits.as_ref().map(Vec::len)
            ),
        }
    }
}

/// The Kafka source's split enumerator.
pub struct KafkaSourceEnumerator {
    ctx: EnumeratorContext<KafkaPartitionSplit, DiscoveryResult>,
    discovery: Arc<Discovery>,
    interval: Option<Duration>,
    /// Every partition handed to a reader (or pending, or being resolved).
    known: BTreeSet<(String, i32)>,
    assigned: BTreeSet<(String, i32)>,
    pending: BTreeMap<usize, Vec<KafkaPartitionSplit>>,
    resolving: usize,
    initial_done: bool,
    no_more_signalled: BTreeSet<usize>,
}

impl KafkaSourceEnumerator {
    pub(crate) fn new(
        ctx: EnumeratorContext<KafkaPartitionSplit, DiscoveryResult>,
        discovery: Arc<Discovery>,
        interval: Option<Duration>,
        bounded: bool,
        state: Option<KafkaEnumeratorState>,
    ) -> Self {
        let mut e = KafkaSourceEnumerator {
            ctx,
            discovery,
            interval: if bounded { None } else { interval },
            known: BTreeSet::new(),
            assigned: BTreeSet::new(),
            pending: BTreeMap::new(),
            resolving: 0,
            initial_done: false,
            no_more_signalled: BTreeSet::new(),
        };
        if let Some(state) = state {
            e.initial_done = state.initial_discovery_done;
            for tp in state.assigned {
                e.known.insert(tp.clone());
                e.assigned.insert(tp);
            }
            for split in state.unassigned {
                e.known
                    .insert((split.topic().to_owned(), split.partition()));
                let owner = e.owner(split.topic(), split.partition());
                e.pending.entry(owner).or_default().push(split);
            }
        }
        e
    }

    /// The reader that owns a partition: stable across restarts for the same parallelism.
    fn owner(&self, topic: &str, partition: i32) -> usize {
        let readers = self.ctx.current_parallelism().max(1);
        let start = (java_hash(topic).wrapping_mul(31) & 0x7FFF_FFFF) as usize;
        (start + partition.max(0) as usize) % readers
    }

    fn list_task(&self) -> Box<dyn FnMut() -> BoxFuture<'static, DiscoveryResult> + Send> {
        let discovery = Arc::clone(&self.discovery);
        Box::new(move || {
            let d = Arc::clone(&discovery);
            async move {
                let listed = tokio::task::spawn_blocking(move || d.list())
                    .await
                    .unwrap_or_else(|e| {
                        Err(ConnectorError::retryable(
                            "discovering partitions",
                            e.to_string(),
                        ))
                    });
                DiscoveryResult::Listed(listed)
            }
            .boxed()
        })
    }

    fn assign_pending(&mut self) -> Result<()> {
        let registered: BTreeSet<usize> = self.ctx.registered_readers().into_iter().collect();
        let mut assignment = SplitsAssignment::new();
        let owners: Vec<usize> = self.pending.keys().copied().collect();
        for owner in owners {
            if !registered.contains(&owner) {
                continue;
            }
            if let Some(splits) = self.pending.remove(&owner) {
                for split in splits {
                    self.assigned
                        .insert((split.topic().to_owned(), split.partition()));
                    assignment.add(owner, split);
                }
            }
        }
        if !assignment.is_empty() {
            self.ctx.assign_splits(assignment)?;
        }
        self.maybe_signal_no_more()
    }

    fn maybe_signal_no_more(&mut self) -> Result<()> {
        // Without periodic discovery nothing new comes once the initial splits are out.
        if self.interval.is_some() || !self.initial_done || self.resolving > 0 {
            return Ok(());
        }
        for reader in self.ctx.registered_readers() {
            if self.pending.get(&reader).is_some_and(|p| !p.is_empty()) {
                continue;
            }
            if self.no_more_signalled.insert(reader) {
                self.ctx.signal_no_more_splits(reader)?;
            }
        }
        Ok(())
    }
}

/// Java's `String.hashCode`, so assignment matches Flink's for the same topics.
fn java_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0_i32, |h, c| {
        h.wrapping_mul(31).wrapping_add(i32::from(c as i16))
    })
}

impl SplitEnumerator for KafkaSourceEnumerator {
    type Split = KafkaPartitionSplit;
    type State = KafkaEnumeratorState;
    type AsyncResult = DiscoveryResult;

    fn start(&mut self) -> Result<()> {
        match self.interval {
            Some(period) => {
                self.ctx
                    .call_async_periodic(self.list_task(), Duration::ZERO, period);
            }
            None => {
                let mut task = self.list_task();
                self.ctx.call_async(task());
            }
        }
        Ok(())
    }

    fn handle_split_request(&mut self, _subtask: usize) -> Result<()> {
        // Splits are pushed to their owners; requests need no answer.
        Ok(())
    }

    fn add_splits_back(&mut self, splits: Vec<KafkaPartitionSplit>, _subtask: usize) -> Result<()> {
        for split in splits {
            let tp = (split.topic().to_owned(), split.partition());
            self.assigned.remove(&tp);
            let owner = self.owner(split.topic(), split.partition());
            self.no_more_signalled.remove(&owner);
            self.pending.entry(owner).or_default().push(split);
        }
        // Assigned when the (restarted) reader registers again.
        Ok(())
    }

    fn add_reader(&mut self, subtask: usize) -> Result<()> {
        self.no_more_signalled.remove(&subtask);
        self.assign_pending()
    }

    fn snapshot_state(&mut self, _checkpoint_id: CheckpointId) -> Result<KafkaEnumeratorState> {
        Ok(KafkaEnumeratorState {
            assigned: self.assigned.iter().cloned().collect(),
            unassigned: self.pending.values().flatten().cloned().collect(),
            initial_discovery_done: self.initial_done,
        })
    }

    fn handle_async_result(&mut self, result: DiscoveryResult) -> Result<()> {
        match result {
            DiscoveryResult::Listed(Ok(partitions)) => {
                let new: Vec<(String, i32)> = partitions
                    .into_iter()
                    .filter(|tp| !self.known.contains(tp))
                    .collect();
                if new.is_empty() {
                    if !self.initial_done && self.resolving == 0 {
                        self.initial_done = true;
                    }
                    return self.maybe_signal_no_more();
                }
                if self.initial_done {
                    tracing::info!(
                        partitions = new.len(),
                        "discovered new partitions; they start from the earliest offset"
                    );
                }
                self.known.extend(new.iter().cloned());
                self.resolving += 1;
                let initial = !self.initial_done;
                let d = Arc::clone(&self.discovery);
                let partitions = new.clone();
                self.ctx.call_async(
                    async move {
                        let splits = tokio::task::spawn_blocking(move || {
                            let starting = if initial {
                                d.starting.clone()
                            } else {
                                StartingOffsets::Earliest
                            };
                            resolve_splits(
                                &d.client,
                                &d.wire,
                                &new,
                                &starting,
                                &d.stopping,
                                d.group.as_deref(),
                                d.timeout,
                            )
                        })
                        .await
                        .unwrap_or_else(|e| {
                            Err(ConnectorError::retryable(
                                "resolving offsets",
                                e.to_string(),
                            ))
                        });
                        DiscoveryResult::Resolved {
                            initial,
                            partitions,
                            splits,
                        }
                    }
                    .boxed(),
                );
                Ok(())
            }
            DiscoveryResult::Listed(Err(e)) => {
                if self.initial_done {
                    tracing::warn!("partition discovery failed, trying again next period: {e}");
                    Ok(())
                } else {
                    Err(e)
                }
            }
            DiscoveryResult::Resolved {
                initial,
                partitions,
                splits,
            } => {
                self.resolving = self.resolving.saturating_sub(1);
                let splits = match splits {
                    Ok(s) => s,
                    Err(e) if !initial && self.interval.is_some() => {
                        tracing::warn!("resolving offsets of new partitions failed, trying again next period: {e}");
                        for tp in &partitions {
                            self.known.remove(tp);
                        }
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                };
                if initial {
                    self.initial_done = true;
                }
                for split in splits {
                    let owner = self.owner(split.topic(), split.partition());
                    self.pending.entry(owner).or_default().push(split);
                }
                self.assign_pending()
            }
        }
    }
}

/// The enumerator's checkpoint: the partitions already handed to readers, the splits not yet
/// assigned, and whether the first discovery ran (partitions found after it start from the
/// earliest offset).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KafkaEnumeratorState {
    /// Topic-partitions assigned to readers (their progress lives in the readers' state).
    pub assigned: Vec<(String, i32)>,
    /// Discovered splits waiting for their reader.
    pub unassigned: Vec<KafkaPartitionSplit>,
    /// Whether the initial discovery completed.
    pub initial_discovery_done: bool,
}

/// Serializes [`KafkaEnumeratorState`]. Version 1: assigned count + (topic, partition), unassigned
/// count + splits (as [`KafkaPartitionSplitSerializer`] v1), the flag as a byte.
#[derive(Debug, Clone, Copy, Default)]
pub struct KafkaEnumeratorStateSerializer;

impl KafkaEnumeratorStateSerializer {
    /// The version this serializer writes.
    pub const VERSION: u32 = 1;
}

impl VersionedSerializer<KafkaEnumeratorState> for KafkaEnumeratorStateSerializer {
    fn version(&self) -> u32 {
        Self::VERSION
    }

    fn serialize(&self, state: &KafkaEnumeratorState) -> Result<Vec<u8>, StateError> {
        let mut w = StateWriter::new();
        w.put_len(state.assigned.len());
        for (topic, partition) in &state.assigned {
            w.put_str(topic).put_i32(*partition);
        }
        w.put_len(state.unassigned.len());
        for split in &state.unassigned {
            KafkaPartitionSplitSerializer::write(&mut w, split);
        }
        w.put_bool(state.initial_discovery_done);
        w.finish()
    }

    fn deserialize(&self, version: u32, bytes: &[u8]) -> Result<KafkaEnumeratorState, StateError> {
        if version != Self::VERSION {
            return Err(StateError::unknown_version(
                "kafka enumerator state",
                version,
                &[Self::VERSION],
            ));
        }
        let mut r = StateReader::new(bytes);
        let n = r.get_len()?;
        let mut assigned = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            let topic = r.get_str()?.to_owned();
            assigned.push((topic, r.get_i32()?));
        }
        let n = r.get_len()?;
        let mut unassigned = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            unassigned.push(KafkaPartitionSplitSerializer::read(&mut r)?);
        }
        let initial_discovery_done = r.get_bool()?;
        r.finish()?;
        Ok(KafkaEnumeratorState {
            assigned,
            unassigned,
            initial_discovery_done,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_matches_java() {
        assert_eq!(java_hash(""), 0);
        assert_eq!(java_hash("a"), 97);
        assert_eq!(java_hash("orders"), -1_008_770_331);
    }

    #[test]
    fn patterns_match_whole_names() {
        let re = Regex::new("orders-[0-9]+")
            .unwrap_or_else(|_| Regex::new("x").unwrap_or_else(|_| unreachable!()));
        assert!(full_match(&re, "orders-1"));
        assert!(!full_match(&re, "orders-1-dlq"));
        assert!(!full_match(&re, "x-orders-1"));
    }
}

//! A test source whose splits progress at different speeds, all assigned to subtask 0 (so one
//! reader holds several splits: split-level alignment), built on `SourceReaderBase`. Records
//! are `(split index, n)` with event time `n` ms.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::error::Result;
use weir_connector_api::source::{
    Boundedness, EnumeratorContext, Source, SourceOutput, SourceReaderContext, SourceSplit,
    SplitEnumerator, SplitsAssignment,
};
use weir_connector_api::state::{
    StateError, StateReader, StateWriter, VecSerializer, VersionedSerializer,
};
use weir_connector_base::source::reader::{
    PausableSplitReader, RecordEmitter, RecordsBySplits, SourceReaderBase, SplitReader,
    SplitsChange,
};

#[derive(Debug, Clone, PartialEq)]
pub struct SpeedSplit {
    pub id: String,
    pub index: u64,
    pub next: u64,
    pub end: u64,
    /// Records per fetch (one fetch per millisecond).
    pub speed: u64,
}

impl SourceSplit for SpeedSplit {
    fn split_id(&self) -> &str {
        &self.id
    }
}

pub struct SpeedSplitSerializer;
impl VersionedSerializer<SpeedSplit> for SpeedSplitSerializer {
    fn version(&self) -> u32 {
        1
    }
    fn serialize(&self, s: &SpeedSplit) -> Result<Vec<u8>, StateError> {
        let mut w = StateWriter::new();
        w.put_str(&s.id)
            .put_u64(s.index)
            .put_u64(s.next)
            .put_u64(s.end)
            .put_u64(s.speed);
        w.finish()
    }
    fn deserialize(&self, version: u32, bytes: &[u8]) -> Result<SpeedSplit, StateError> {
        if version != 1 {
            return Err(StateError::unknown_version("speed split", version, &[1]));
        }
        let mut r = StateReader::new(bytes);
        let s = SpeedSplit {
            id: r.get_str()?.to_owned(),
            index: r.get_u64()?,
            next: r.get_u64()?,
            end: r.get_u64()?,
            speed: r.get_u64()?,
        };
        r.finish()?;
        Ok(s)
    }
}

/// Assigns every split to subtask 0 when it registers.
pub struct AllToFirst {
    pending: Vec<SpeedSplit>,
    ctx: EnumeratorContext<SpeedSplit, Infallible>,
}

impl SplitEnumerator for AllToFirst {
    type Split = SpeedSplit;
    type State = Vec<SpeedSplit>;
    type AsyncResult = Infallible;
    fn handle_split_request(&mut self, subtask: usize) -> Result<()> {
        if subtask != 0 {
            self.ctx.signal_no_more_splits(subtask)?;
        }
        Ok(())
    }
    fn add_splits_back(&mut self, splits: Vec<SpeedSplit>, _subtask: usize) -> Result<()> {
        self.pending.extend(splits);
        Ok(())
    }
    fn add_reader(&mut self, subtask: usize) -> Result<()> {
        if subtask == 0 {
            let mut a = SplitsAssignment::new();
            for s in self.pending.drain(..) {
                a.add(0, s);
            }
            if !a.is_empty() {
                self.ctx.assign_splits(a)?;
            }
        }
        self.ctx.signal_no_more_splits(subtask)
    }
    fn snapshot_state(&mut self, _checkpoint_id: CheckpointId) -> Result<Vec<SpeedSplit>> {
        Ok(self.pending.clone())
    }
    fn handle_async_result(&mut self, r: Infallible) -> Result<()> {
        match r {}
    }
}

#[derive(Default)]
pub struct SpeedReader {
    splits: Vec<SpeedSplit>,
    paused: Vec<String>,
}

#[async_trait::async_trait]
impl SplitReader for SpeedReader {
    type Split = SpeedSplit;
    type Records = RecordsBySplits<(u64, u64)>;
    async fn fetch(&mut self) -> Result<Self::Records> {
        tokio::time::sleep(Duration::from_millis(1)).await;
        let mut batch = RecordsBySplits::new();
        for s in &mut self.splits {
            if self.paused.contains(&s.id) {
                continue;
            }
            let end = s.end.min(s.next + s.speed);
            batch.add_all(s.id.clone(), (s.next..end).map(|n| (s.index, n)).collect());
            s.next = end;
            if s.next == s.end {
                batch.add_finished_split(s.id.clone());
            }
        }
        self.splits.retain(|s| s.next < s.end);
        Ok(batch)
    }
    fn handle_splits_change(&mut self, change: SplitsChange<SpeedSplit>) -> Result<()> {
        match change {
            SplitsChange::Add(new) => self.splits.extend(new),
            SplitsChange::Remove(ids) => self.splits.retain(|s| !ids.contains(&s.id)),
        }
        Ok(())
    }
}

impl PausableSplitReader for SpeedReader {
    fn pause_or_resume_splits(&mut self, pause: &[String], resume: &[String]) -> Result<()> {
        self.paused.extend(pause.iter().cloned());
        self.paused.retain(|p| !resume.contains(p));
        Ok(())
    }
}

pub struct Emit;
impl RecordEmitter<(u64, u64), (u64, u64), SpeedSplit> for Emit {
    fn emit_record<O: SourceOutput<(u64, u64)>>(
        &mut self,
        record: (u64, u64),
        output: &mut O,
        state: &mut SpeedSplit,
    ) -> Result<()> {
        state.next = record.1 + 1;
        output.collect_with_timestamp(record, record.1 as i64);
        Ok(())
    }
}

/// Splits `(end, speed)`; `pausable` declares the split pause capability.
pub struct SpeedSource {
    pub splits: Vec<(u64, u64)>,
    pub pausable: bool,
}

impl Source for SpeedSource {
    type Output = (u64, u64);
    type Split = SpeedSplit;
    type Reader = SourceReaderBase<SpeedReader, Emit, SpeedSplit, (u64, u64)>;
    type Enumerator = AllToFirst;
    fn boundedness(&self) -> Boundedness {
        Boundedness::Bounded
    }
    fn create_reader(&self, ctx: Arc<dyn SourceReaderContext>) -> Result<Self::Reader> {
        let reader = SourceReaderBase::single_fetcher(ctx, SpeedReader::default(), Emit);
        Ok(if self.pausable {
            reader.with_split_pausing()
        } else {
            reader
        })
    }
    fn create_enumerator(
        &self,
        ctx: EnumeratorContext<SpeedSplit, Infallible>,
    ) -> Result<AllToFirst> {
        let pending = self
            .splits
            .iter()
            .enumerate()
            .map(|(i, (end, speed))| SpeedSplit {
                id: format!("speed-{i}"),
                index: i as u64,
                next: 0,
                end: *end,
                speed: *speed,
            })
            .collect();
        Ok(AllToFirst { pending, ctx })
    }
    fn restore_enumerator(
        &self,
        ctx: EnumeratorContext<SpeedSplit, Infallible>,
        state: Vec<SpeedSplit>,
    ) -> Result<AllToFirst> {
        Ok(AllToFirst {
            pending: state,
            ctx,
        })
    }
    fn split_serializer(&self) -> Arc<dyn VersionedSerializer<SpeedSplit>> {
        Arc::new(SpeedSplitSerializer)
    }
    fn enumerator_state_serializer(&self) -> Arc<dyn VersionedSerializer<Vec<SpeedSplit>>> {
        Arc::new(VecSerializer::new(SpeedSplitSerializer))
    }
}

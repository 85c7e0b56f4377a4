//! Tests of the input gate: aligned, counted and unaligned barriers, the alignment timeout,
//! watermarks.

use std::sync::Arc;
use std::time::Duration;

use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::state::U64Serializer;

use super::*;
use crate::element::SnapshotType;
use crate::exchange::local::channel;
use crate::exchange::{BoxSender, ChannelReceiver, ChannelStateCodec, Rescale};

fn barrier_of(id: u64, kind: SnapshotType) -> Barrier {
    Barrier {
        checkpoint_id: CheckpointId(id),
        kind,
    }
}

fn barrier(id: u64) -> StreamElement<u32> {
    StreamElement::Event(Event::Barrier(barrier_of(id, SnapshotType::Checkpoint)))
}

fn gate(alignment: GateAlignment) -> (Vec<BoxSender<u32>>, InputGate<u32>) {
    let mut txs = Vec::new();
    let mut rxs = Vec::new();
    for _ in 0..2 {
        let (tx, rx) = channel(16);
        txs.push(tx);
        rxs.push(rx);
    }
    (txs, InputGate::new(rxs, alignment, None))
}

fn codec() -> ChannelStateCodec<u64> {
    ChannelStateCodec::new(Arc::new(U64Serializer), Rescale::RoundRobin)
}

/// A gate of `u64` records with a channel-state codec, and its two senders.
fn recording_gate(alignment: GateAlignment) -> (Vec<BoxSender<u64>>, InputGate<u64>) {
    let mut txs = Vec::new();
    let mut rxs = Vec::new();
    for _ in 0..2 {
        let (tx, rx) = channel(16);
        txs.push(tx);
        rxs.push(rx);
    }
    (txs, InputGate::new(rxs, alignment, Some(codec())))
}

/// What a gate delivered, as text; channel state decoded per channel.
fn describe(event: &GateEvent<u64>) -> String {
    match event {
        GateEvent::Batch(b) => format!("batch {:?}", b.records),
        GateEvent::Barrier(b) => format!("barrier {}", b.checkpoint_id),
        GateEvent::UnalignedBarrier(b) => format!("unaligned barrier {}", b.checkpoint_id),
        GateEvent::ChannelState(id, entries) => {
            let channels: Vec<Vec<u64>> = entries
                .iter()
                .map(|e| {
                    let state = std::collections::BTreeMap::from([(
                        "channels".to_owned(),
                        vec![e.clone()],
                    )]);
                    codec().restore(&state, 0, 1).unwrap_or_default().records
                })
                .collect();
            format!("channel state {id} {channels:?}")
        }
        other => format!("{other:?}"),
    }
}

/// Events until (and with) the channel state of a checkpoint, or `limit` events.
async fn until_channel_state(gate: &mut InputGate<u64>, limit: usize) -> Result<Vec<String>> {
    let mut seen = Vec::new();
    for _ in 0..limit {
        let event = gate.next().await?;
        let done = matches!(event, GateEvent::ChannelState(..));
        seen.push(describe(&event));
        if done {
            break;
        }
    }
    Ok(seen)
}

#[tokio::test]
async fn exactly_once_blocks_a_channel_until_the_barrier_is_aligned() -> Result<()> {
    let (mut txs, mut gate) = gate(GateAlignment::Aligned);
    txs[0].send(barrier(1)).await.ok();
    txs[0]
        .send(StreamElement::Batch(Batch::untimed(vec![99])))
        .await
        .ok(); // after the barrier
    txs[1]
        .send(StreamElement::Batch(Batch::untimed(vec![1])))
        .await
        .ok(); // before the barrier
    txs[1].send(barrier(1)).await.ok();
    let mut seen = Vec::new();
    for _ in 0..3 {
        match gate.next().await? {
            GateEvent::Batch(b) => seen.push(format!("batch {:?}", b.records)),
            GateEvent::Barrier(b) => seen.push(format!("barrier {}", b.checkpoint_id)),
            other => seen.push(format!("{other:?}")),
        }
    }
    assert_eq!(seen, ["batch [1]", "barrier 1", "batch [99]"]);
    Ok(())
}

#[tokio::test]
async fn at_least_once_lets_records_overtake_and_counts_barriers() -> Result<()> {
    let (mut txs, mut gate) = gate(GateAlignment::Counted);
    txs[0].send(barrier(1)).await.ok();
    txs[0]
        .send(StreamElement::Batch(Batch::untimed(vec![99])))
        .await
        .ok();
    let first = gate.next().await?;
    assert!(
        matches!(first, GateEvent::Batch(ref b) if b.records == [99]),
        "{first:?}"
    );
    txs[1].send(barrier(1)).await.ok();
    assert!(matches!(gate.next().await?, GateEvent::Barrier(_)));
    Ok(())
}

#[tokio::test]
async fn watermark_is_the_minimum_and_finished_channels_stop_holding_it() -> Result<()> {
    let (mut txs, mut gate) = gate(GateAlignment::Aligned);
    txs[0]
        .send(StreamElement::Event(Event::Watermark(Watermark(10))))
        .await
        .ok();
    txs[1]
        .send(StreamElement::Event(Event::Watermark(Watermark(5))))
        .await
        .ok();
    assert!(matches!(
        gate.next().await?,
        GateEvent::Watermark(Watermark(5))
    ));
    txs[1]
        .send(StreamElement::Event(Event::EndOfData))
        .await
        .ok();
    assert!(matches!(
        gate.next().await?,
        GateEvent::Watermark(Watermark(10))
    ));
    txs[0]
        .send(StreamElement::Event(Event::EndOfData))
        .await
        .ok();
    assert!(matches!(gate.next().await?, GateEvent::EndOfData));
    Ok(())
}

#[tokio::test]
async fn a_finished_channel_does_not_hold_up_alignment() -> Result<()> {
    let (mut txs, mut gate) = gate(GateAlignment::Aligned);
    txs[0].send(barrier(3)).await.ok();
    txs[1]
        .send(StreamElement::Event(Event::EndOfData))
        .await
        .ok();
    assert!(matches!(gate.next().await?, GateEvent::Barrier(_)));
    Ok(())
}

#[tokio::test]
async fn unaligned_snapshots_at_the_first_barrier_and_records_what_it_overtook() -> Result<()> {
    let (mut txs, mut gate) = recording_gate(GateAlignment::Unaligned);
    txs[0]
        .send(StreamElement::Batch(Batch::untimed(vec![1])))
        .await?;
    txs[0]
        .send(StreamElement::Batch(Batch::untimed(vec![2])))
        .await?;
    // The barrier overtakes [1] and [2]; the partly filled [3] goes behind them, before it.
    txs[0].send_overtaking(
        Batch::untimed(vec![3]),
        barrier_of(1, SnapshotType::Checkpoint),
    )?;
    txs[0]
        .send(StreamElement::Batch(Batch::untimed(vec![4])))
        .await?; // after the barrier
    let first = describe(&gate.next().await?);
    assert_eq!(first, "unaligned barrier 1");
    // Channel 1 has not sent its barrier: what it sends now is in flight too.
    txs[1]
        .send(StreamElement::Batch(Batch::untimed(vec![10])))
        .await?;
    let mut seen = until_channel_state(&mut gate, 5).await?;
    txs[1].send_overtaking(
        Batch::untimed(vec![11]),
        barrier_of(1, SnapshotType::Checkpoint),
    )?;
    txs[1]
        .send(StreamElement::Batch(Batch::untimed(vec![12])))
        .await?; // after the barrier
    seen.extend(until_channel_state(&mut gate, 8).await?);
    // The overtaken records are stored as soon as each channel's barrier is here, before the
    // task processes them.
    assert_eq!(
        seen.last().map(String::as_str),
        Some("channel state 1 [[1, 2, 3], [10, 11]]"),
        "{seen:?}"
    );
    // Every record is delivered once, the overtaken ones after the snapshot.
    while seen.iter().filter(|s| s.starts_with("batch")).count() < 7 {
        seen.push(describe(&gate.next().await?));
    }
    let mut batches: Vec<&String> = seen.iter().filter(|s| s.starts_with("batch")).collect();
    batches.sort();
    assert_eq!(
        batches,
        [
            "batch [10]",
            "batch [11]",
            "batch [12]",
            "batch [1]",
            "batch [2]",
            "batch [3]",
            "batch [4]"
        ],
        "{seen:?}"
    );
    Ok(())
}

#[tokio::test]
async fn an_alignment_timeout_switches_to_unaligned() -> Result<()> {
    let (mut txs, mut gate) =
        recording_gate(GateAlignment::AlignedWithTimeout(Duration::from_millis(30)));
    txs[0].send_overtaking(Batch::default(), barrier_of(1, SnapshotType::Checkpoint))?;
    txs[0]
        .send(StreamElement::Batch(Batch::untimed(vec![7])))
        .await?; // after the barrier: blocked
    txs[1]
        .send(StreamElement::Batch(Batch::untimed(vec![5])))
        .await?; // before it: aligned, not recorded
    assert_eq!(describe(&gate.next().await?), "batch [5]");
    // Channel 1's barrier does not come in time: the gate snapshots, unaligned.
    assert_eq!(describe(&gate.next().await?), "unaligned barrier 1");
    assert_eq!(describe(&gate.next().await?), "batch [7]");
    txs[1]
        .send(StreamElement::Batch(Batch::untimed(vec![6])))
        .await?;
    txs[1].send_overtaking(Batch::default(), barrier_of(1, SnapshotType::Checkpoint))?;
    // [6] is stored from the queue, then delivered.
    let seen = until_channel_state(&mut gate, 3).await?;
    assert_eq!(seen, ["channel state 1 [[6]]"]);
    assert_eq!(describe(&gate.next().await?), "batch [6]");
    Ok(())
}

#[tokio::test]
async fn an_alignment_within_the_timeout_stays_aligned() -> Result<()> {
    let (mut txs, mut gate) =
        recording_gate(GateAlignment::AlignedWithTimeout(Duration::from_secs(60)));
    txs[0]
        .send(StreamElement::Batch(Batch::untimed(vec![1])))
        .await?;
    txs[0].send_overtaking(Batch::default(), barrier_of(1, SnapshotType::Checkpoint))?;
    txs[0]
        .send(StreamElement::Batch(Batch::untimed(vec![9])))
        .await?; // after the barrier
    txs[1].send_overtaking(
        Batch::untimed(vec![2]),
        barrier_of(1, SnapshotType::Checkpoint),
    )?;
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(describe(&gate.next().await?));
    }
    assert_eq!(seen[3], "batch [9]", "{seen:?}");
    assert_eq!(seen[2], "barrier 1", "{seen:?}");
    Ok(())
}

#[tokio::test]
async fn savepoints_stay_aligned_in_unaligned_mode() -> Result<()> {
    let (mut txs, mut gate) = recording_gate(GateAlignment::Unaligned);
    txs[0].send_overtaking(Batch::default(), barrier_of(2, SnapshotType::Savepoint))?;
    txs[0]
        .send(StreamElement::Batch(Batch::untimed(vec![9])))
        .await?; // after the barrier: waits
    txs[1]
        .send(StreamElement::Batch(Batch::untimed(vec![1])))
        .await?;
    txs[1].send_overtaking(Batch::default(), barrier_of(2, SnapshotType::Savepoint))?;
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(describe(&gate.next().await?));
    }
    assert_eq!(seen, ["batch [1]", "barrier 2", "batch [9]"]);
    Ok(())
}

#[tokio::test]
async fn a_newer_barrier_abandons_an_unfinished_unaligned_checkpoint() -> Result<()> {
    let (mut txs, mut gate) = recording_gate(GateAlignment::Unaligned);
    txs[0].send_overtaking(Batch::default(), barrier_of(1, SnapshotType::Checkpoint))?;
    assert_eq!(describe(&gate.next().await?), "unaligned barrier 1");
    txs[1]
        .send(StreamElement::Batch(Batch::untimed(vec![3])))
        .await?;
    assert_eq!(describe(&gate.next().await?), "batch [3]");
    // Checkpoint 1 was aborted; checkpoint 2 starts before channel 1 delivered barrier 1.
    txs[0].send_overtaking(Batch::default(), barrier_of(2, SnapshotType::Checkpoint))?;
    assert_eq!(describe(&gate.next().await?), "unaligned barrier 2");
    txs[1]
        .send(StreamElement::Batch(Batch::untimed(vec![4])))
        .await?;
    txs[1].send_overtaking(Batch::default(), barrier_of(2, SnapshotType::Checkpoint))?;
    let seen = until_channel_state(&mut gate, 3).await?;
    assert_eq!(seen, ["channel state 2 [[4]]"]);
    assert_eq!(describe(&gate.next().await?), "batch [4]");
    Ok(())
}

/// A receiver that shows at most one queued element (as a channel whose elements are partly
/// still on their way would): a fake around an in-process channel.
struct ShowsOne(BoxReceiver<u64>);

impl ChannelReceiver<u64> for ShowsOne {
    fn poll_recv(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<crate::exchange::Received<u64>>> {
        self.0.poll_recv(cx)
    }
    fn visit_queued(&mut self, n: usize, visit: &mut dyn FnMut(&StreamElement<u64>)) -> usize {
        self.0.visit_queued(n.min(1), visit)
    }
}

#[tokio::test]
async fn overtaken_elements_not_yet_here_are_recorded_when_delivered() -> Result<()> {
    let (mut tx, rx) = channel::<u64>(16);
    let mut gate = InputGate::new(
        vec![Box::new(ShowsOne(rx)) as BoxReceiver<u64>],
        GateAlignment::Unaligned,
        Some(codec()),
    );
    for b in [1, 2, 3] {
        tx.send(StreamElement::Batch(Batch::untimed(vec![b])))
            .await?;
    }
    tx.send_overtaking(Batch::default(), barrier_of(1, SnapshotType::Checkpoint))?;
    tx.send(StreamElement::Batch(Batch::untimed(vec![4])))
        .await?; // after the barrier
    let seen = until_channel_state(&mut gate, 6).await?;
    assert_eq!(
        seen,
        [
            "unaligned barrier 1",
            "batch [1]",
            "batch [2]",
            "batch [3]",
            "channel state 1 [[1, 2, 3]]"
        ]
    );
    assert_eq!(describe(&gate.next().await?), "batch [4]");
    Ok(())
}

/// Whether the gate has an event within 50 ms.
async fn delivers(gate: &mut InputGate<u32>) -> Option<String> {
    match tokio::time::timeout(Duration::from_millis(50), gate.next()).await {
        Ok(Ok(GateEvent::Batch(b))) => Some(format!("batch {:?}", b.records)),
        Ok(Ok(GateEvent::Barrier(b))) => Some(format!("barrier {}", b.checkpoint_id)),
        Ok(other) => Some(format!("{other:?}")),
        Err(_) => None,
    }
}

#[tokio::test]
async fn an_aborted_checkpoint_unblocks_its_channels_and_its_late_barriers_are_ignored(
) -> Result<()> {
    let (mut txs, mut gate) = gate(GateAlignment::Aligned);
    txs[0].send(barrier(1)).await?;
    txs[0]
        .send(StreamElement::Batch(Batch::untimed(vec![99])))
        .await?; // after the barrier: blocked while checkpoint 1 aligns
    assert_eq!(delivers(&mut gate).await, None, "channel 0 is blocked");
    gate.abort(CheckpointId(1));
    assert_eq!(delivers(&mut gate).await.as_deref(), Some("batch [99]"));
    // Channel 1's barrier of the aborted checkpoint comes late: not delivered.
    txs[1]
        .send(StreamElement::Batch(Batch::untimed(vec![1])))
        .await?;
    txs[1].send(barrier(1)).await?;
    txs[1]
        .send(StreamElement::Batch(Batch::untimed(vec![2])))
        .await?;
    assert_eq!(delivers(&mut gate).await.as_deref(), Some("batch [1]"));
    assert_eq!(delivers(&mut gate).await.as_deref(), Some("batch [2]"));
    assert_eq!(delivers(&mut gate).await, None, "no barrier 1");
    // The next checkpoint aligns as usual.
    txs[0].send(barrier(2)).await?;
    txs[1].send(barrier(2)).await?;
    assert_eq!(delivers(&mut gate).await.as_deref(), Some("barrier 2"));
    Ok(())
}

#[tokio::test]
async fn an_abort_notice_before_any_barrier_makes_them_all_late() -> Result<()> {
    let (mut txs, mut gate) = gate(GateAlignment::Counted);
    gate.abort(CheckpointId(3));
    for tx in &mut txs {
        tx.send(barrier(3)).await?;
    }
    assert_eq!(
        delivers(&mut gate).await,
        None,
        "checkpoint 3 is not snapshotted"
    );
    for tx in &mut txs {
        tx.send(barrier(4)).await?;
    }
    assert_eq!(delivers(&mut gate).await.as_deref(), Some("barrier 4"));
    Ok(())
}

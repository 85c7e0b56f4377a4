//! Tests of the typed cross-process channel ends over a fake frame transport (an in-memory
//! queue with credits, not a connection), checked against the in-process channel.

use std::sync::Mutex;
use std::time::Duration;

use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::state::U64Serializer;
use weir_connector_api::watermark::Watermark;

use super::*;
use crate::element::{Event, SnapshotType};
use crate::exchange::gate::{GateAlignment, GateEvent, InputGate};
use crate::exchange::local::channel;
use crate::exchange::{
    recv_any, BoxReceiver, BoxSender, ChannelFactory, ChannelStateCodec, ChannelsOf, Rescale,
};

/// What a fake link holds: frames in order, the sender's credits, both ends' liveness.
#[derive(Default)]
struct FakeLink {
    frames: VecDeque<Vec<u8>>,
    credits: usize,
    sender_alive: bool,
    receiver_alive: bool,
    failed: Option<String>,
    sender_waker: Option<Waker>,
    receiver_waker: Option<Waker>,
}

type Link = Arc<Mutex<FakeLink>>;

fn lock(link: &Link) -> std::sync::MutexGuard<'_, FakeLink> {
    link.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn wake(waker: Option<Waker>) {
    if let Some(w) = waker {
        w.wake();
    }
}

/// The sending end of a fake link.
struct FakeFrameSender(Link);
/// The receiving end of a fake link.
struct FakeFrameReceiver(Link);

/// A fake link whose receiver granted `capacity` credits, and a handle to tamper with it.
fn fake_link(capacity: usize) -> (FakeFrameSender, FakeFrameReceiver, Link) {
    let link = Arc::new(Mutex::new(FakeLink {
        credits: capacity,
        sender_alive: true,
        receiver_alive: true,
        ..FakeLink::default()
    }));
    (
        FakeFrameSender(Arc::clone(&link)),
        FakeFrameReceiver(Arc::clone(&link)),
        link,
    )
}

impl FrameSender for FakeFrameSender {
    fn poll_credit(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        let mut link = lock(&self.0);
        if let Some(reason) = &link.failed {
            return Poll::Ready(Err(TransportError::Failed(reason.clone())));
        }
        if !link.receiver_alive {
            return Poll::Ready(Err(TransportError::Closed));
        }
        if link.credits > 0 {
            return Poll::Ready(Ok(()));
        }
        link.sender_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    fn send_data(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        let waker = {
            let mut link = lock(&self.0);
            if link.credits == 0 {
                return Err(TransportError::Failed("a data frame without credit".into()));
            }
            link.credits -= 1;
            link.frames.push_back(frame);
            link.receiver_waker.take()
        };
        wake(waker);
        Ok(())
    }

    fn send_priority(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        let waker = {
            let mut link = lock(&self.0);
            link.frames.push_back(frame);
            link.receiver_waker.take()
        };
        wake(waker);
        Ok(())
    }
}

impl Drop for FakeFrameSender {
    fn drop(&mut self) {
        let waker = {
            let mut link = lock(&self.0);
            link.sender_alive = false;
            link.receiver_waker.take()
        };
        wake(waker);
    }
}

impl FrameReceiver for FakeFrameReceiver {
    fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Vec<u8>, TransportError>>> {
        let mut link = lock(&self.0);
        if let Some(reason) = &link.failed {
            return Poll::Ready(Some(Err(TransportError::Failed(reason.clone()))));
        }
        if let Some(frame) = link.frames.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        if !link.sender_alive {
            return Poll::Ready(None);
        }
        link.receiver_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    fn grant(&mut self, credits: usize) {
        let waker = {
            let mut link = lock(&self.0);
            link.credits += credits;
            link.sender_waker.take()
        };
        wake(waker);
    }
}

impl Drop for FakeFrameReceiver {
    fn drop(&mut self) {
        let waker = {
            let mut link = lock(&self.0);
            link.receiver_alive = false;
            link.sender_waker.take()
        };
        wake(waker);
    }
}

const CHANNEL: &str = "edge 0 subtask 0 -> 1 (attempt 0)";

/// A typed remote channel of `u64` over a fake link.
fn remote(capacity: usize) -> (BoxSender<u64>, BoxReceiver<u64>, Link) {
    let (tx, rx, link) = fake_link(capacity);
    (
        Box::new(RemoteSender::new(
            Box::new(tx),
            Arc::new(U64Serializer),
            CHANNEL,
        )),
        Box::new(RemoteReceiver::new(
            Box::new(rx),
            Arc::new(U64Serializer),
            CHANNEL,
        )),
        link,
    )
}

fn barrier(id: u64, kind: SnapshotType) -> Barrier {
    Barrier {
        checkpoint_id: CheckpointId(id),
        kind,
    }
}

fn batch(records: &[u64]) -> StreamElement<u64> {
    StreamElement::Batch(Batch::untimed(records.to_vec()))
}

/// What a receiver delivered, as text.
fn describe(received: Option<Received<u64>>) -> String {
    match received {
        None => "closed".into(),
        Some(Received::Element(StreamElement::Batch(b))) if b.timestamps.is_empty() => {
            format!("batch {:?}", b.records)
        }
        Some(Received::Element(StreamElement::Batch(b))) => {
            format!("batch {:?} at {:?}", b.records, b.timestamps)
        }
        Some(Received::Element(StreamElement::Event(e))) => format!("{e:?}"),
        Some(Received::Overtaking { barrier, overtaken }) => {
            format!("overtaking {} over {overtaken}", barrier.checkpoint_id.0)
        }
        Some(Received::Failed(e)) => format!("failed: {e}"),
    }
}

/// Everything `rx` delivers until it closes or has nothing ready.
fn drain(rx: &mut BoxReceiver<u64>) -> Vec<String> {
    let mut cx = Context::from_waker(Waker::noop());
    let mut seen = Vec::new();
    loop {
        match rx.poll_recv(&mut cx) {
            Poll::Pending => return seen,
            Poll::Ready(received) => {
                let closed = received.is_none();
                seen.push(describe(received));
                if closed {
                    return seen;
                }
            }
        }
    }
}

#[tokio::test]
async fn batches_with_and_without_times_and_every_event_arrive_in_order() -> Result<()> {
    let (mut tx, mut rx, _link) = remote(64);
    let elements = vec![
        batch(&[1, 2, 3]),
        StreamElement::Batch(Batch {
            records: vec![4, 5],
            timestamps: vec![1000, crate::operator::NO_TIMESTAMP],
        }),
        StreamElement::Event(Event::Watermark(Watermark(999))),
        StreamElement::Event(Event::Watermark(Watermark::MIN)),
        StreamElement::Event(Event::Idle(true)),
        StreamElement::Event(Event::Idle(false)),
        StreamElement::Event(Event::Barrier(barrier(7, SnapshotType::Checkpoint))),
        StreamElement::Event(Event::Barrier(barrier(8, SnapshotType::Savepoint))),
        batch(&[u64::MAX]),
        StreamElement::Event(Event::EndOfData),
    ];
    for element in elements {
        tx.send(element).await?;
    }
    drop(tx);
    assert_eq!(
        drain(&mut rx),
        [
            "batch [1, 2, 3]",
            "batch [4, 5] at [1000, -9223372036854775808]",
            "Watermark(Watermark(999))",
            "Watermark(Watermark(-9223372036854775808))",
            "Idle(true)",
            "Idle(false)",
            "Barrier(Barrier { checkpoint_id: CheckpointId(7), kind: Checkpoint })",
            "Barrier(Barrier { checkpoint_id: CheckpointId(8), kind: Savepoint })",
            "batch [18446744073709551615]",
            "EndOfData",
            "closed",
        ]
    );
    Ok(())
}

/// The same sends on an in-process channel and on a remote one.
async fn script(tx: &mut BoxSender<u64>, rx: &mut BoxReceiver<u64>) -> Result<Vec<String>> {
    let mut seen = Vec::new();
    for b in [1, 2, 3] {
        tx.send(batch(&[b])).await?;
    }
    tx.send_overtaking(
        Batch::untimed(vec![4, 5]),
        barrier(1, SnapshotType::Checkpoint),
    )?;
    tx.send(batch(&[6])).await?; // after the barrier's place
    let first = recv_any(rx).await;
    let mut shown = Vec::new();
    let n = match &first {
        Some(Received::Overtaking { overtaken, .. }) => *overtaken,
        _ => 0,
    };
    let count = rx.visit_queued(n, &mut |e| {
        if let StreamElement::Batch(b) = e {
            shown.push(b.records.clone());
        }
    });
    seen.push(describe(first));
    seen.push(format!("shown {count}: {shown:?}"));
    seen.push(describe(recv_any(rx).await));
    seen.push(describe(recv_any(rx).await));
    // A second barrier, with nothing pending, after two of the overtaken were delivered.
    tx.send_overtaking(Batch::default(), barrier(2, SnapshotType::Checkpoint))?;
    for _ in 0..4 {
        seen.push(describe(recv_any(rx).await));
    }
    Ok(seen)
}

#[tokio::test]
async fn overtaking_barriers_count_what_they_overtook_as_the_local_channel_does() -> Result<()> {
    let (mut tx, mut rx) = channel::<u64>(8);
    let local = script(&mut tx, &mut rx).await?;
    let (mut tx, mut rx, _link) = remote(8);
    let remote = script(&mut tx, &mut rx).await?;
    assert_eq!(
        local,
        [
            "overtaking 1 over 4",
            "shown 4: [[1], [2], [3], [4, 5]]",
            "batch [1]",
            "batch [2]",
            "overtaking 2 over 3",
            "batch [3]",
            "batch [4, 5]",
            "batch [6]",
        ]
    );
    assert_eq!(remote, local);
    Ok(())
}

#[tokio::test]
async fn a_gate_records_the_same_channel_state_from_a_remote_channel() -> Result<()> {
    let (mut tx, rx, _link) = remote(8);
    let codec = ChannelStateCodec::new(Arc::new(U64Serializer), Rescale::RoundRobin);
    let mut gate = InputGate::new(vec![rx], GateAlignment::Unaligned, Some(codec.clone()));
    for b in [1, 2] {
        tx.send(batch(&[b])).await?;
    }
    tx.send_overtaking(
        Batch::untimed(vec![3]),
        barrier(1, SnapshotType::Checkpoint),
    )?;
    tx.send(batch(&[4])).await?;
    let mut seen = Vec::new();
    for _ in 0..6 {
        match gate.next().await? {
            GateEvent::Batch(b) => seen.push(format!("batch {:?}", b.records)),
            GateEvent::UnalignedBarrier(b) => seen.push(format!("barrier {}", b.checkpoint_id.0)),
            GateEvent::ChannelState(id, entries) => {
                let state = std::collections::BTreeMap::from([(
                    crate::exchange::CHANNEL_STATE.to_owned(),
                    entries,
                )]);
                let records = codec
                    .restore(&state, 0, 1)
                    .map_err(|e| RuntimeError::Lost(e.to_string()))?
                    .records;
                seen.push(format!("channel state {} {records:?}", id.0));
            }
            other => seen.push(format!("{other:?}")),
        }
    }
    assert_eq!(
        seen,
        [
            "barrier 1",
            "channel state 1 [1, 2, 3]",
            "batch [1]",
            "batch [2]",
            "batch [3]",
            "batch [4]"
        ]
    );
    Ok(())
}

#[tokio::test]
async fn a_full_channel_refuses_try_send_and_send_waits_for_credit() -> Result<()> {
    let (mut tx, mut rx, link) = remote(2);
    tx.try_send(batch(&[1]))
        .map_err(|_| RuntimeError::Lost("first send".into()))?;
    tx.try_send(batch(&[2]))
        .map_err(|_| RuntimeError::Lost("second send".into()))?;
    assert!(matches!(
        tx.try_send(batch(&[3])),
        Err(TrySendError::Full(_))
    ));
    // An overtaking barrier needs no credit.
    tx.send_overtaking(Batch::default(), barrier(1, SnapshotType::Checkpoint))?;
    let sender = tokio::spawn(async move {
        let sent = tx.send(batch(&[3])).await;
        (tx, sent)
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        !sender.is_finished(),
        "send must wait while the receiver grants no credit"
    );
    assert_eq!(lock(&link).frames.len(), 3, "two batches and the barrier");
    assert_eq!(
        drain(&mut rx),
        ["overtaking 1 over 2", "batch [1]", "batch [2]"]
    );
    let (tx, sent) = sender
        .await
        .map_err(|e| RuntimeError::Lost(e.to_string()))?;
    sent?;
    drop(tx);
    assert_eq!(drain(&mut rx), ["batch [3]", "closed"]);
    Ok(())
}

#[tokio::test]
async fn a_dropped_receiver_closes_the_channel_and_a_broken_transport_fails_it() -> Result<()> {
    let (mut tx, rx, link) = remote(4);
    drop(rx);
    assert!(matches!(
        tx.try_send(batch(&[1])),
        Err(TrySendError::Closed)
    ));
    assert!(tx.send(batch(&[1])).await.is_err());

    let (mut tx, mut rx, link2) = remote(4);
    tx.send(batch(&[1])).await?;
    lock(&link2).failed = Some("connection to process 2 lost".into());
    let seen = drain(&mut rx);
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen[0].contains("cluster transport failed: connection to process 2 lost")
            && seen[0].contains(CHANNEL),
        "{seen:?}"
    );
    assert_eq!(seen[1], "closed");
    assert!(matches!(
        tx.try_send(batch(&[2])),
        Err(TrySendError::Failed(RuntimeError::RemoteChannel(
            RemoteChannelError::Transport { .. }
        )))
    ));
    drop(link);
    Ok(())
}

/// Sends `element` over a fake link, lets `tamper` change its frame, and returns what the
/// receiver makes of it.
async fn tampered(element: StreamElement<u64>, tamper: impl FnOnce(&mut Vec<u8>)) -> String {
    let (mut tx, mut rx, link) = remote(4);
    if let Err(e) = tx.send(element).await {
        return format!("send: {e}");
    }
    if let Some(frame) = lock(&link).frames.front_mut() {
        tamper(frame);
    }
    drain(&mut rx).join(" / ")
}

/// A frame with a correct checksum over `body`.
fn with_crc(mut body: Vec<u8>) -> Vec<u8> {
    let crc = crc32fast::hash(&body);
    body.extend_from_slice(&crc.to_be_bytes());
    body
}

/// Changes a frame's bytes.
type Tamper = Box<dyn FnOnce(&mut Vec<u8>)>;

#[tokio::test]
async fn damaged_and_unknown_frames_are_refused_with_the_channel_named() {
    let good = tampered(batch(&[1, 2]), |_| {}).await;
    assert_eq!(good, "batch [1, 2]");
    let cases: Vec<(&str, Tamper, &str)> = vec![
        (
            "a flipped bit",
            Box::new(|f| f[9] ^= 0x10),
            "is damaged (checksum",
        ),
        (
            "a truncated frame",
            Box::new(|f| f.truncate(3)),
            "shorter than the 8 bytes",
        ),
        (
            "a frame of a newer format",
            Box::new(|f| {
                f[2] = 2;
                *f = with_crc(f[..f.len() - 4].to_vec());
            }),
            "frame format version 2 kind 1 is not known to this build",
        ),
        (
            "an unknown kind",
            Box::new(|f| {
                f[3] = 42;
                *f = with_crc(f[..f.len() - 4].to_vec());
            }),
            "kind 42 is not known",
        ),
        (
            "a wrong marker",
            Box::new(|f| {
                f[0] = b'Z';
                *f = with_crc(f[..f.len() - 4].to_vec());
            }),
            "does not start with the frame marker",
        ),
        (
            "bytes after the payload",
            Box::new(|f| {
                let mut body = f[..f.len() - 4].to_vec();
                body.push(0);
                *f = with_crc(body);
            }),
            "unexpected bytes after its end",
        ),
        (
            "a record the codec refuses",
            Box::new(|f| {
                // The first record's length: 8 -> 7 bytes, and one byte less of payload.
                let mut body = f[..f.len() - 4].to_vec();
                body[15] = 7;
                body.remove(16);
                *f = with_crc(body);
            }),
            "could not be serialized or deserialized with the stream's codec",
        ),
    ];
    for (what, tamper, expected) in cases {
        let seen = tampered(batch(&[1, 2]), tamper).await;
        assert!(
            seen.starts_with("failed: ") && seen.contains(expected) && seen.contains(CHANNEL),
            "{what}: {seen}"
        );
        assert!(seen.ends_with(" / closed"), "{what}: {seen}");
    }
}

#[tokio::test]
async fn an_overtaking_barrier_whose_count_disagrees_is_a_protocol_error() {
    let (tx, rx, _link) = fake_link(4);
    let mut raw: Box<dyn FrameSender> = Box::new(tx);
    let codec = Codec::<u64> {
        serializer: Arc::new(U64Serializer),
        channel: CHANNEL.into(),
    };
    let mut rx: BoxReceiver<u64> = Box::new(RemoteReceiver::new(
        Box::new(rx),
        Arc::new(U64Serializer),
        CHANNEL,
    ));
    let frame = codec.encode_overtaking(5, barrier(1, SnapshotType::Checkpoint), &Batch::default());
    assert!(frame.is_ok());
    if let Ok(frame) = frame {
        assert!(raw.send_priority(frame).is_ok());
    }
    let seen = drain(&mut rx);
    assert!(
        seen[0].contains("says 5 elements precede it, but 0 arrived before it"),
        "{seen:?}"
    );
}

/// A serializer that refuses every record (a fake).
struct RefusingSerializer;

impl VersionedSerializer<u64> for RefusingSerializer {
    fn version(&self) -> u32 {
        1
    }
    fn serialize(&self, _: &u64) -> Result<Vec<u8>, StateError> {
        Err(StateError::malformed("test record", "refused"))
    }
    fn deserialize(&self, _: u32, _: &[u8]) -> Result<u64, StateError> {
        Err(StateError::malformed("test record", "refused"))
    }
}

#[tokio::test]
async fn a_record_the_codec_refuses_fails_the_send() {
    let (tx, _rx, _link) = fake_link(4);
    let mut tx: BoxSender<u64> = Box::new(RemoteSender::new(
        Box::new(tx),
        Arc::new(RefusingSerializer),
        CHANNEL,
    ));
    let sent = tx.try_send(batch(&[1]));
    assert!(
        matches!(&sent, Err(TrySendError::Failed(e)) if e.to_string().contains("refused")),
        "{sent:?}"
    );
    // Events carry no records: they still go.
    assert!(tx
        .send(StreamElement::Event(Event::Watermark(Watermark(1))))
        .await
        .is_ok());
}

#[test]
fn an_edge_without_a_codec_cannot_cross_processes() {
    let (tx, rx, _link) = fake_link(1);
    let channels = ChannelsOf::<u64>::new();
    for made in [
        channels.remote_sender(CHANNEL, Box::new(tx)).map(|_| ()),
        channels.remote_receiver(CHANNEL, Box::new(rx)).map(|_| ()),
    ] {
        let message = made.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains("declare one with DataStream::channel_state_serializer")
                && message.contains("only cluster mode requires it")
                && message.contains(CHANNEL),
            "{message}"
        );
    }
    // With a codec declared (even after the edge was made), the ends are typed channel ends.
    let slot = crate::exchange::SerializerSlot::<u64>::default();
    let channels = ChannelsOf::with_codecs(vec![Arc::clone(&slot)]);
    *slot
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::new(U64Serializer));
    let (tx, rx, _link) = fake_link(1);
    let sender = channels.remote_sender(CHANNEL, Box::new(tx));
    assert!(sender.is_ok_and(|s| s.downcast::<BoxSender<u64>>().is_ok()));
    let receiver = channels.remote_receiver(CHANNEL, Box::new(rx));
    assert!(receiver.is_ok_and(|r| r.downcast::<BoxReceiver<u64>>().is_ok()));
}

#[test]
fn an_edge_without_codec_says_what_to_do() {
    let stream = RemoteChannelError::NoCodec {
        channel: "edge 1 (map -> sink)".into(),
    };
    assert!(
        stream
            .to_string()
            .contains("DataStream::channel_state_serializer"),
        "{stream}"
    );
    let stage = RemoteChannelError::NoCodec {
        channel:
            "edge 0 (out (writer) -> compact-coordinator (out/pre-commit/compact-coordinator))"
                .into(),
    };
    assert!(
        stage.to_string().contains("compaction.enabled = false"),
        "{stage}"
    );
}

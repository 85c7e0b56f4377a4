//! What one process of a test cluster does, per scenario. Errors end the process with code 1
//! and `WEIR: error: ...` on standard error; results are `WEIR: ...` lines on standard output.

use std::future::poll_fn;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use weir_cluster::{Cluster, ClusterConfig};
use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::state::U64Serializer;
use weir_connector_api::watermark::Watermark;
use weir_runtime::cluster::{
    ChannelKey, ChannelReceiver, ChannelSender, FrameTransport, Received, RemoteReceiver,
    RemoteSender, TrySendError,
};
use weir_runtime::element::{Barrier, Batch, Event, SnapshotType, StreamElement};

use super::{ADDRESSES, GENERATION, PROCESS};

/// The data channel's capacity in the backpressure scenario.
pub(crate) const CAPACITY: usize = 4;
/// Batches the backpressure scenario sends.
pub(crate) const BACKPRESSURE_BATCHES: u64 = 50;
const STREAM_BATCHES: u64 = 1500;
const RECORDS: u64 = 64;
/// Overtaking barriers' ids are this plus their place in the stream.
const OVERTAKING: u64 = 1 << 40;

type Outcome = Result<(), String>;

/// Runs `scenario` as the process the environment says; the exit code.
pub(crate) fn run(scenario: &str) -> i32 {
    let result = config().and_then(|config| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let cluster = Cluster::start(&config).map_err(|e| e.to_string())?;
        let outcome = match scenario {
            "stream" => runtime.block_on(stream(&cluster)),
            "backpressure" => runtime.block_on(backpressure(&cluster)),
            "endless" => runtime.block_on(endless(&cluster)),
            "straggler" => Ok(()),
            other => Err(format!("unknown scenario {other}")),
        };
        outcome?;
        let stats = cluster.stats();
        println!(
            "WEIR: crossed {} frames {} bytes out, {} frames {} bytes in",
            stats.frames_sent, stats.bytes_sent, stats.frames_received, stats.bytes_received
        );
        cluster
            .shutdown(Duration::from_secs(20))
            .map_err(|e| e.to_string())
    });
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("WEIR: error: {e}");
            1
        }
    }
}

fn config() -> Result<ClusterConfig, String> {
    let var = |name| std::env::var(name).map_err(|e| format!("{name}: {e}"));
    let process = var(PROCESS)?.parse().map_err(|e| format!("{e}"))?;
    let addresses = var(ADDRESSES)?.split(',').map(str::to_owned).collect();
    let generation = var(GENERATION)?.parse().map_err(|e| format!("{e}"))?;
    Ok(ClusterConfig::new(process, addresses)
        .generation(generation)
        .connect_timeout(Duration::from_secs(3)))
}

fn key(edge: u32, from: usize, to: usize) -> ChannelKey {
    ChannelKey {
        attempt: 0,
        edge,
        upstream: from as u32,
        downstream: to as u32,
    }
}

fn sender(cluster: &Cluster, edge: u32, to: usize) -> Result<RemoteSender<u64>, String> {
    let key = key(edge, cluster.process(), to);
    let frames = cluster
        .transport()
        .open_sender(key, to)
        .map_err(|e| e.to_string())?;
    Ok(RemoteSender::new(
        frames,
        Arc::new(U64Serializer),
        key.to_string(),
    ))
}

fn receiver(
    cluster: &Cluster,
    edge: u32,
    from: usize,
    capacity: usize,
) -> Result<RemoteReceiver<u64>, String> {
    let key = key(edge, from, cluster.process());
    let frames = cluster
        .transport()
        .open_receiver(key, from, capacity)
        .map_err(|e| e.to_string())?;
    Ok(RemoteReceiver::new(
        frames,
        Arc::new(U64Serializer),
        key.to_string(),
    ))
}

async fn recv(rx: &mut RemoteReceiver<u64>) -> Result<Option<Received<u64>>, String> {
    match poll_fn(|cx| rx.poll_recv(cx)).await {
        Some(Received::Failed(e)) => Err(e.to_string()),
        other => Ok(other),
    }
}

/// One step of what a sender does.
enum Step {
    Send(StreamElement<u64>),
    /// An overtaking barrier with its pending batch.
    Overtake(Batch<u64>, Barrier),
}

fn checkpoint(id: u64) -> Barrier {
    Barrier {
        checkpoint_id: CheckpointId(id),
        kind: SnapshotType::Checkpoint,
    }
}

/// What process `p` sends in the stream scenario: batches (every other one with event
/// times), watermarks, in-band barriers, overtaking barriers with a pending batch, idleness,
/// end of data.
fn script(p: usize) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut next = p as u64 * 1_000_000_000;
    let mut sent = 0;
    let send = |steps: &mut Vec<Step>, sent: &mut u64, element| {
        steps.push(Step::Send(element));
        *sent += 1;
    };
    for i in 0..STREAM_BATCHES {
        let records: Vec<u64> = (next..next + RECORDS).collect();
        next += RECORDS;
        let timestamps = if i % 2 == 1 {
            records.iter().map(|r| *r as i64).collect()
        } else {
            Vec::new()
        };
        send(
            &mut steps,
            &mut sent,
            StreamElement::Batch(Batch {
                records,
                timestamps,
            }),
        );
        if i % 100 == 99 {
            send(
                &mut steps,
                &mut sent,
                StreamElement::Event(Event::Watermark(Watermark(i as i64))),
            );
        }
        if i % 250 == 249 {
            send(
                &mut steps,
                &mut sent,
                StreamElement::Event(Event::Barrier(checkpoint(i))),
            );
        }
        if i % 400 == 399 {
            send(
                &mut steps,
                &mut sent,
                StreamElement::Event(Event::Idle(true)),
            );
            send(
                &mut steps,
                &mut sent,
                StreamElement::Event(Event::Idle(false)),
            );
        }
        if i % 170 == 169 {
            let pending = Batch::untimed((next..next + 3).collect());
            next += 3;
            sent += 1;
            steps.push(Step::Overtake(pending, checkpoint(OVERTAKING + sent)));
        }
    }
    send(
        &mut steps,
        &mut sent,
        StreamElement::Event(Event::EndOfData),
    );
    steps
}

/// What a receiver of process `p`'s stream reports.
pub(crate) fn stream_summary(p: usize) -> String {
    let (mut batches, mut records, mut events, mut overtaking) = (0, 0, 0, 0);
    for step in script(p) {
        match step {
            Step::Send(StreamElement::Batch(b)) => {
                batches += 1;
                records += b.len();
            }
            Step::Send(StreamElement::Event(_)) => events += 1,
            Step::Overtake(b, _) => {
                batches += 1;
                records += b.len();
                overtaking += 1;
            }
        }
    }
    format!("batches {batches} records {records} events {events} overtaking {overtaking}")
}

/// The stream's elements in order (pending batches at their place), and its overtaking
/// barriers.
fn expected(p: usize) -> (Vec<StreamElement<u64>>, Vec<Barrier>) {
    let mut elements = Vec::new();
    let mut barriers = Vec::new();
    for step in script(p) {
        match step {
            Step::Send(e) => elements.push(e),
            Step::Overtake(b, barrier) => {
                elements.push(StreamElement::Batch(b));
                barriers.push(barrier);
            }
        }
    }
    (elements, barriers)
}

fn same(a: &StreamElement<u64>, b: &StreamElement<u64>) -> bool {
    match (a, b) {
        (StreamElement::Batch(a), StreamElement::Batch(b)) => a == b,
        (StreamElement::Event(a), StreamElement::Event(b)) => a == b,
        _ => false,
    }
}

/// Checks every element from process `from` against its script; the summary.
async fn check_stream(from: usize, mut rx: RemoteReceiver<u64>) -> Result<String, String> {
    let (elements, barriers) = expected(from);
    let mut delivered = 0;
    let mut overtaken_seen = 0;
    loop {
        match recv(&mut rx).await? {
            Some(Received::Element(e)) => {
                let want = elements.get(delivered);
                if !want.is_some_and(|w| same(w, &e)) {
                    return Err(format!(
                        "from {from}: element {delivered} is {e:?}, expected {want:?}"
                    ));
                }
                delivered += 1;
            }
            Some(Received::Overtaking { barrier, overtaken }) => {
                let want = barriers.get(overtaken_seen);
                let place = barrier.checkpoint_id.0 - OVERTAKING;
                if want != Some(&barrier) || delivered as u64 + overtaken as u64 != place {
                    return Err(format!(
                        "from {from}: overtaking barrier {barrier:?} with {overtaken} overtaken \
                         after {delivered} delivered; expected {want:?}"
                    ));
                }
                overtaken_seen += 1;
            }
            Some(Received::Failed(e)) => return Err(e.to_string()),
            None => break,
        }
    }
    if delivered != elements.len() || overtaken_seen != barriers.len() {
        return Err(format!(
            "from {from}: {delivered} of {} elements, {overtaken_seen} of {} overtaking barriers",
            elements.len(),
            barriers.len()
        ));
    }
    let (mut batches, mut records, mut events) = (0, 0, 0);
    for e in &elements {
        match e {
            StreamElement::Batch(b) => {
                batches += 1;
                records += b.len();
            }
            StreamElement::Event(_) => events += 1,
        }
    }
    Ok(format!(
        "batches {batches} records {records} events {events} overtaking {overtaken_seen}"
    ))
}

async fn stream(cluster: &Cluster) -> Outcome {
    let me = cluster.process();
    let mut tasks: JoinSet<Result<Option<String>, String>> = JoinSet::new();
    for peer in (0..cluster.processes()).filter(|q| *q != me) {
        let mut tx = sender(cluster, 0, peer)?;
        tasks.spawn(async move {
            for step in script(me) {
                match step {
                    Step::Send(e) => tx.send(e).await.map_err(|e| e.to_string())?,
                    Step::Overtake(pending, barrier) => tx
                        .send_overtaking(pending, barrier)
                        .map_err(|e| e.to_string())?,
                }
            }
            Ok(None)
        });
        let rx = receiver(cluster, 0, peer, 8)?;
        tasks.spawn(async move {
            let summary = check_stream(peer, rx).await?;
            Ok(Some(format!("from {peer}: {summary}")))
        });
    }
    while let Some(done) = tasks.join_next().await {
        let line: Option<String> = done.map_err(|e| e.to_string())??;
        if let Some(line) = line {
            println!("WEIR: {line}");
        }
    }
    Ok(())
}

fn batch(i: u64) -> StreamElement<u64> {
    StreamElement::Batch(Batch::untimed(vec![i]))
}

async fn backpressure(cluster: &Cluster) -> Outcome {
    if cluster.process() == 0 {
        let mut data = sender(cluster, 0, 1)?;
        let mut note = sender(cluster, 1, 1)?;
        data.send(batch(0)).await.map_err(|e| e.to_string())?; // waits for the first credits
        let mut sent = 1;
        let mut waiting = loop {
            match data.try_send(batch(sent)) {
                Ok(()) => sent += 1,
                Err(TrySendError::Full(element)) => break element,
                Err(TrySendError::Closed) => return Err("closed".into()),
                Err(TrySendError::Failed(e)) => return Err(e.to_string()),
            }
        };
        println!("WEIR: sent before full: {sent}");
        note.send(batch(sent)).await.map_err(|e| e.to_string())?;
        for i in sent + 1..=BACKPRESSURE_BATCHES {
            data.send(waiting).await.map_err(|e| e.to_string())?;
            waiting = if i < BACKPRESSURE_BATCHES {
                batch(i)
            } else {
                StreamElement::Event(Event::EndOfData)
            };
        }
        data.send(waiting).await.map_err(|e| e.to_string())?;
        return Ok(());
    }
    let mut data = receiver(cluster, 0, 0, CAPACITY)?;
    let mut note = receiver(cluster, 1, 0, 1)?;
    // The sender says it is blocked; the receiver has not consumed anything yet.
    recv(&mut note).await?;
    let arrived = cluster.stats().frames_received - 1;
    println!("WEIR: arrived while blocked: {arrived}");
    let mut delivered = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(2)).await;
        match recv(&mut data).await? {
            Some(Received::Element(StreamElement::Batch(b))) => {
                if b.records != [delivered] {
                    return Err(format!("batch {:?} where {delivered} was due", b.records));
                }
                delivered += 1;
            }
            Some(Received::Element(StreamElement::Event(Event::EndOfData))) => break,
            other => return Err(format!("unexpected {other:?}")),
        }
        // Arrived but not delivered: never more than the credits the receiver granted.
        let in_flight = cluster.stats().frames_received - 1 - delivered;
        if in_flight > CAPACITY as u64 {
            return Err(format!("{in_flight} frames in flight, capacity {CAPACITY}"));
        }
    }
    println!("WEIR: received in order: {delivered}");
    Ok(())
}

async fn endless(cluster: &Cluster) -> Outcome {
    let me = cluster.process();
    let peers = cluster.processes() - 1;
    let streaming = Arc::new(AtomicUsize::new(0));
    let mut tasks: JoinSet<Outcome> = JoinSet::new();
    for peer in (0..cluster.processes()).filter(|q| *q != me) {
        let mut tx = sender(cluster, 0, peer)?;
        tasks.spawn(async move {
            for i in 0.. {
                tx.send(batch(i)).await.map_err(|e| e.to_string())?;
            }
            Ok(())
        });
        let mut rx = receiver(cluster, 0, peer, 8)?;
        let streaming = Arc::clone(&streaming);
        tasks.spawn(async move {
            for i in 0.. {
                if recv(&mut rx).await?.is_none() {
                    return Err(format!("the channel from process {peer} closed"));
                }
                if i == 200 && streaming.fetch_add(1, Ordering::AcqRel) + 1 == peers {
                    println!("WEIR: streaming");
                }
            }
            Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| e.to_string())??;
    }
    Ok(())
}

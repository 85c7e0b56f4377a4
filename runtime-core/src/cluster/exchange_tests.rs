use std::collections::BTreeMap;
use std::sync::Mutex;

use weir_connector_api::state::U64Serializer;

use super::*;
use crate::cluster::fake_transport::FakeTransport;
use crate::exchange::{ChannelsOf, SerializerSlot};

fn layout() -> Arc<JobLayout> {
    Arc::new(JobLayout {
        edge_names: vec!["edge 0 (numbers -> counts)".into()],
        edge_groups: vec![(0, 1)],
        splits: BTreeMap::new(),
        source_groups: BTreeMap::new(),
        parallelisms: vec![2, 2],
    })
}

fn edge(pointwise: bool) -> EdgeLayout {
    EdgeLayout {
        id: 0,
        upstream: 2,
        downstream: 2,
        pointwise,
        capacity: 4,
    }
}

fn with_codec() -> ChannelsOf<u64> {
    let slot: SerializerSlot<u64> = Arc::new(Mutex::new(Some(Arc::new(U64Serializer))));
    ChannelsOf::with_codecs(vec![slot])
}

#[test]
fn channels_inside_a_process_are_local_and_between_processes_remote() -> Result<()> {
    let transport = Arc::new(FakeTransport::default());
    let placement = Placement {
        process: 0,
        processes: 2,
    };
    let mut exchange = ClusterExchange::new(3, placement, transport.clone(), layout());
    exchange.connect(edge(false), &with_codec())?;
    // Subtask 0 (here) sends to subtasks 0 (here) and 1 (process 1), and reads from both.
    assert_eq!(exchange.take_senders(0, 0).map(|s| s.len()), Some(2));
    assert_eq!(exchange.take_receivers(0, 0).map(|r| r.len()), Some(2));
    // Subtask 1 runs in process 1: nothing of it here.
    assert!(exchange.take_senders(0, 1).is_none());
    assert!(exchange.take_receivers(0, 1).is_none());
    let opened = transport.opened();
    let key = |upstream, downstream| ChannelKey {
        attempt: 3,
        edge: 0,
        upstream,
        downstream,
    };
    assert_eq!(
        opened,
        [("sender", key(0, 1), 1), ("receiver", key(1, 0), 1)]
    );
    // A pointwise edge of equal parallelism stays inside each process.
    let transport = Arc::new(FakeTransport::default());
    let mut exchange = ClusterExchange::new(3, placement, transport.clone(), layout());
    exchange.connect(edge(true), &with_codec())?;
    assert_eq!(exchange.take_senders(0, 0).map(|s| s.len()), Some(1));
    assert!(transport.opened().is_empty());
    Ok(())
}

#[test]
fn a_cross_process_edge_without_codec_is_an_error_naming_the_edge() {
    let placement = Placement {
        process: 1,
        processes: 2,
    };
    let mut exchange =
        ClusterExchange::new(0, placement, Arc::new(FakeTransport::default()), layout());
    let message = exchange
        .connect(edge(false), &ChannelsOf::<u64>::new())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        message.contains("edge 0 (numbers -> counts)")
            && message.contains("crosses processes")
            && message.contains("DataStream::channel_state_serializer"),
        "{message}"
    );
    // In one process, the same edge needs no codec.
    let mut alone = ClusterExchange::new(
        0,
        Placement {
            process: 0,
            processes: 1,
        },
        Arc::new(FakeTransport::default()),
        layout(),
    );
    assert!(alone
        .connect(edge(false), &ChannelsOf::<u64>::new())
        .is_ok());
}

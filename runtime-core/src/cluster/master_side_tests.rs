use std::any::Any;
use std::sync::mpsc as std_mpsc;

use weir_connector_api::checkpoint::{CheckpointId, VersionedBytes};
use weir_connector_api::state::StateError;

use super::*;
use crate::cluster::control::{ControlError, SplitCodec};
use crate::cluster::fake_transport::FakeTransport;
use crate::cluster::link::control_key;
use crate::element::{Barrier, Notification, SnapshotType};

/// Splits of `u32` (a fake source's), one byte string each.
struct FakeSplits;

impl SplitCodec for FakeSplits {
    fn encode(&self, splits: &(dyn Any + Send)) -> Result<Vec<VersionedBytes>, ControlError> {
        let splits = splits
            .downcast_ref::<Vec<u32>>()
            .ok_or_else(|| ControlError::Encode("not u32 splits".into()))?;
        Ok(splits
            .iter()
            .map(|s| VersionedBytes {
                version: 1,
                bytes: s.to_be_bytes().to_vec(),
            })
            .collect())
    }

    fn decode(&self, splits: Vec<VersionedBytes>) -> Result<Box<dyn Any + Send>, StateError> {
        let splits: Vec<u32> = splits
            .iter()
            .map(|v| {
                v.bytes
                    .as_slice()
                    .try_into()
                    .map(u32::from_be_bytes)
                    .map_err(|_| StateError::malformed("split", "not 4 bytes"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Box::new(splits))
    }
}

fn layout() -> Arc<JobLayout> {
    Arc::new(JobLayout {
        edge_names: Vec::new(),
        edge_groups: Vec::new(),
        splits: BTreeMap::from([(0, Arc::new(FakeSplits) as Arc<dyn SplitCodec>)]),
        source_groups: BTreeMap::from([("numbers".to_owned(), 0)]),
        parallelisms: vec![2],
    })
}

/// What the control frames to process 1 say, as text, once `n` arrived.
async fn commands_to_1(transport: &FakeTransport, n: usize) -> Vec<String> {
    let codecs = layout().splits.clone();
    for _ in 0..500 {
        let frames = transport.sent(control_key(0, 1));
        if frames.len() >= n {
            return frames
                .iter()
                .map(|f| match ToWorker::decode(f, 0, &codecs) {
                    Ok(ToWorker::Command {
                        attempt,
                        task,
                        command,
                    }) => format!(
                        "{attempt}/{}/{}: {}",
                        task.group,
                        task.subtask,
                        match command {
                            TaskCommand::TriggerBarrier(b) =>
                                format!("barrier {}", b.checkpoint_id),
                            TaskCommand::AddSplits(s) => format!(
                                "splits {:?}",
                                s.downcast::<Vec<u32>>().map(|s| *s).unwrap_or_default()
                            ),
                            TaskCommand::Notify(n) => format!("{n:?}"),
                            _ => "other".into(),
                        }
                    ),
                    Ok(_) => "not a command".into(),
                    Err(e) => e.to_string(),
                })
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Vec::new()
}

#[tokio::test]
async fn every_command_to_a_remote_reader_goes_through_one_channel_in_order() -> Result<()> {
    let transport = Arc::new(FakeTransport::default());
    let placement = Placement {
        process: 0,
        processes: 2,
    };
    let deployment = MasterDeployment::start(placement, transport.clone(), layout())?;
    let shared = &deployment.shared;
    // The coordinator of `numbers` (process 0): what it is told.
    let (told, heard) = std_mpsc::channel();
    let coordinator =
        CoordinatorHandle::from_fn("numbers".into(), move |command| told.send(command).is_ok());
    let (master, mut inbox) = mpsc::unbounded_channel();
    {
        let mut state = shared.state();
        state.attempt = Some(4);
        state.master = Some(master);
        state.coordinators = BTreeMap::from([("numbers".to_owned(), coordinator)]);
    }
    let reader = TaskKey {
        group: 0,
        subtask: 1,
    };
    // The master's control channel to the reader (what the coordinator's Attach gets)...
    let attached = {
        let mut state = shared.state();
        shared.proxy(&mut state, 4, reader)
    };
    // ...and the one the coordinator gets when the reader in process 1 registers.
    shared.on_message(
        1,
        ToMaster::Reader {
            attempt: 4,
            source: "numbers".into(),
            request: ReaderRequest::Registered { subtask: 1 },
        },
    );
    let Ok(CoordinatorCommand::ReaderRegistered {
        subtask: 1,
        control: registered,
    }) = heard.try_recv()
    else {
        return Err(RuntimeError::Lost("the registration".into()));
    };
    // The coordinator's loop: the barrier after the enumerator's snapshot through the Attach
    // control, then a split assigned after the snapshot through the registered one.
    let barrier = Barrier {
        checkpoint_id: CheckpointId(7),
        kind: SnapshotType::Checkpoint,
    };
    let _ = attached.send(TaskCommand::TriggerBarrier(barrier));
    let _ = registered.send(TaskCommand::AddSplits(Box::new(vec![3_u32])));
    let _ = attached.send(TaskCommand::Notify(Notification::CheckpointComplete(
        CheckpointId(7),
    )));
    assert_eq!(
        commands_to_1(&transport, 3).await,
        [
            "4/0/1: barrier 7",
            "4/0/1: splits [3]",
            "4/0/1: CheckpointComplete(CheckpointId(7))"
        ]
    );
    // A task message of the attempt reaches the master; one of an older attempt does not.
    for attempt in [3, 4] {
        shared.on_message(
            1,
            ToMaster::Task {
                attempt,
                message: MasterMsg::Closed { task: reader },
            },
        );
    }
    assert!(matches!(inbox.try_recv(), Ok(MasterMsg::Closed { task }) if task == reader));
    assert!(inbox.try_recv().is_err());
    Ok(())
}

#[tokio::test]
async fn a_broken_control_channel_fails_the_attempt_and_ends_the_wait_for_its_processes(
) -> Result<()> {
    let transport = Arc::new(FakeTransport::default());
    let placement = Placement {
        process: 0,
        processes: 2,
    };
    let deployment = MasterDeployment::start(placement, transport, layout())?;
    let shared = &deployment.shared;
    let (master, mut inbox) = mpsc::unbounded_channel();
    {
        let mut state = shared.state();
        state.attempt = Some(0);
        state.master = Some(master);
    }
    shared.broke(1, "connection reset");
    match inbox.try_recv() {
        Ok(MasterMsg::Failed {
            error: RuntimeError::ClusterBroken(reason),
            ..
        }) => assert!(reason.contains("process 1") && reason.contains("connection reset")),
        _ => return Err(RuntimeError::Lost("the failure".into())),
    }
    // The ended attempt's wait does not hang on a broken cluster.
    tokio::time::timeout(Duration::from_secs(1), shared.wait_ended(0, END_WAIT))
        .await
        .map_err(|_| RuntimeError::Lost("the wait".into()))?;
    assert!(shared.state().broken.is_some());
    Ok(())
}

#[tokio::test]
async fn a_custom_source_event_to_another_process_fails_the_job_for_good() -> Result<()> {
    let transport = Arc::new(FakeTransport::default());
    let placement = Placement {
        process: 0,
        processes: 2,
    };
    let deployment = MasterDeployment::start(placement, transport, layout())?;
    let shared = &deployment.shared;
    let (master, mut inbox) = mpsc::unbounded_channel();
    let reader = TaskKey {
        group: 0,
        subtask: 1,
    };
    let control = {
        let mut state = shared.state();
        state.attempt = Some(0);
        state.master = Some(master);
        shared.proxy(&mut state, 0, reader)
    };
    let _ = control.send(TaskCommand::SourceEvent(
        weir_connector_api::source::SourceEvent::new("rewind"),
    ));
    let failed = tokio::time::timeout(Duration::from_secs(5), inbox.recv())
        .await
        .map_err(|_| RuntimeError::Lost("the failure".into()))?;
    match failed {
        Some(MasterMsg::Failed {
            task,
            error: RuntimeError::InvalidJob(problems),
        }) => {
            assert_eq!(task, reader);
            assert!(
                problems.iter().any(|p| p.contains("custom source event")),
                "{problems:?}"
            );
        }
        _ => return Err(RuntimeError::Lost("the InvalidJob failure".into())),
    }
    Ok(())
}

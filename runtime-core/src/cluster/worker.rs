//! A process of a cluster other than process 0: it runs its share of each attempt's subtasks
//! (see [`super::process_of`]) when the master says so, forwards their messages to the master
//! and their readers' requests to the source coordinators (both in process 0), and hands the
//! master's commands to them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::mpsc;
use weir_connector_api::metrics::InMemoryMetricGroup;

use crate::error::RuntimeError;
use crate::handle::{JobResult, JobStatus};
use crate::history::History;
use crate::job::Job;
use crate::launch::{launch_attempt, AttemptPlan, LocalLauncher, TaskLauncher};
use crate::monitor::Live;
use crate::source::coordinator::{CoordinatorCommand, CoordinatorHandle};
use crate::storage::CheckpointLocation;
use crate::task::{MasterMsg, TaskControl, TaskKey};

use super::control::{Outcome, ReaderRequest, ToMaster, ToWorker};
use super::exchange::ClusterExchange;
use super::link::{next_frame, open_inbox, ControlLink};
use super::{ClusterMember, JobLayout, Placement};

/// Runs this process's subtasks only.
struct PlacedLauncher {
    local: LocalLauncher,
    placement: Placement,
}

impl TaskLauncher for PlacedLauncher {
    fn spawn(&mut self, key: TaskKey, task: BoxFuture<'static, ()>) {
        self.local.spawn(key, task);
    }

    fn stop(&mut self, grace: Duration) -> BoxFuture<'_, ()> {
        self.local.stop(grace)
    }

    fn abort(&mut self) -> BoxFuture<'_, ()> {
        self.local.abort()
    }

    fn hosts(&self, key: TaskKey) -> bool {
        self.placement.hosts(key)
    }
}

/// The attempt this process runs.
struct Running {
    attempt: u32,
    launcher: PlacedLauncher,
    controls: BTreeMap<TaskKey, TaskControl>,
    /// Sends what the subtasks measure to the master's monitor.
    reporter: tokio::task::JoinHandle<()>,
}

/// How often a process reports its subtasks' loads to the master's monitor.
const LOAD_REPORTS: Duration = Duration::from_millis(250);

/// What this process's subtasks measured so far.
fn loads(live: &Live, attempt: u32) -> ToMaster {
    ToMaster::Loads {
        attempt,
        loads: live
            .loads()
            .into_iter()
            .map(|(group, subtask, load)| (TaskKey { group, subtask }, load.mirrored()))
            .collect(),
    }
}

/// Sends `message` to the master; a failure to send means the cluster is gone, which the
/// control channel from the master reports too.
fn send(link: &ControlLink, message: &ToMaster) {
    match message.encode() {
        Ok(bytes) => {
            if let Err(e) = link.send(bytes) {
                tracing::warn!("a control message to process 0 was not sent: {e}");
            }
        }
        Err(e) => tracing::error!("a control message to process 0 could not be written: {e}"),
    }
}

struct Worker {
    job: Job,
    member: ClusterMember,
    placement: Placement,
    layout: Arc<JobLayout>,
    link: ControlLink,
    metrics: InMemoryMetricGroup,
    live: Live,
    running: Option<Running>,
    attempts: u32,
}

impl Worker {
    /// The master's inbox for this attempt's subtasks: a forwarder writes each message to the
    /// control channel.
    fn master_proxy(&self, attempt: u32) -> mpsc::UnboundedSender<MasterMsg> {
        let (tx, mut rx) = mpsc::unbounded_channel::<MasterMsg>();
        let link = self.link.clone();
        tokio::spawn(async move {
            while let Some(message) = rx.recv().await {
                let message = ToMaster::Task { attempt, message };
                match message.encode() {
                    Ok(bytes) => {
                        if let Err(e) = link.send(bytes) {
                            tracing::warn!("a control message to process 0 was not sent: {e}");
                        }
                    }
                    // The master must not wait for what never comes (an acknowledgement too
                    // large to write): the attempt fails with why.
                    Err(e) => send(
                        &link,
                        &ToMaster::WorkerFailed {
                            attempt,
                            reason: e.to_string(),
                        },
                    ),
                }
            }
        });
        tx
    }

    /// Handles for the source coordinators (in process 0): reader requests go to the control
    /// channel; a source event cannot (it fails the reader's subtask).
    fn coordinator_proxies(
        &self,
        attempt: u32,
        master: &mpsc::UnboundedSender<MasterMsg>,
    ) -> BTreeMap<String, CoordinatorHandle> {
        let mut handles = BTreeMap::new();
        for (uid, &group) in &self.layout.source_groups {
            let link = self.link.clone();
            let master = master.clone();
            let source = uid.clone();
            let handle = CoordinatorHandle::from_fn(uid.clone(), move |command| {
                let request = match command {
                    CoordinatorCommand::ReaderRegistered { subtask, .. } => {
                        ReaderRequest::Registered { subtask }
                    }
                    CoordinatorCommand::SplitRequest { subtask } => {
                        ReaderRequest::SplitRequest { subtask }
                    }
                    CoordinatorCommand::ReportWatermark { subtask, watermark } => {
                        ReaderRequest::Watermark { subtask, watermark }
                    }
                    CoordinatorCommand::SourceEvent { subtask, .. } => {
                        let _ = master.send(MasterMsg::Failed {
                            task: TaskKey { group, subtask },
                            error: RuntimeError::InvalidJob(vec![format!(
                                "source {source}: a reader sent a custom source event to its \
                                 split enumerator, which runs in process 0; source events \
                                 cannot cross processes in cluster mode"
                            )]),
                        });
                        return true;
                    }
                    // Only the master sends the others, and it runs in process 0.
                    _ => return true,
                };
                send(
                    &link,
                    &ToMaster::Reader {
                        attempt,
                        source: source.clone(),
                        request,
                    },
                );
                true
            });
            handles.insert(uid.clone(), handle);
        }
        handles
    }

    fn start(&mut self, attempt: u32, restore: Option<&crate::storage::CheckpointMetadata>) {
        self.attempts += 1;
        let master = self.master_proxy(attempt);
        let coordinators = self.coordinator_proxies(attempt, &master);
        self.metrics = InMemoryMetricGroup::new(self.job.config.name.clone());
        self.live
            .attempt_started(attempt, None, &self.metrics, &self.metrics);
        let plan = AttemptPlan {
            groups: &self.job.groups,
            edges: &self.job.edges,
            config: &self.job.config,
            attempt,
            restore,
            coordinators: &coordinators,
            master: &master,
            metrics: &self.metrics,
            live: &self.live,
        };
        let mut exchange = ClusterExchange::new(
            attempt,
            self.placement,
            Arc::clone(&self.member.transport),
            Arc::clone(&self.layout),
        );
        let mut launcher = PlacedLauncher {
            local: LocalLauncher::default(),
            placement: self.placement,
        };
        match launch_attempt(&plan, &mut exchange, &mut launcher) {
            Ok(launched) => {
                let (live, link) = (self.live.clone(), self.link.clone());
                let reporter = tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(LOAD_REPORTS).await;
                        send(&link, &loads(&live, attempt));
                    }
                });
                self.running = Some(Running {
                    attempt,
                    launcher,
                    controls: launched.controls,
                    reporter,
                });
            }
            Err(e) => send(
                &self.link,
                &ToMaster::WorkerFailed {
                    attempt,
                    reason: e.to_string(),
                },
            ),
        }
    }

    async fn end(&mut self, attempt: u32, grace: Option<Duration>) {
        if self.running.as_ref().is_some_and(|r| r.attempt == attempt) {
            if let Some(mut running) = self.running.take() {
                match grace {
                    Some(grace) => running.launcher.stop(grace).await,
                    None => running.launcher.abort().await,
                }
                running.reporter.abort();
                send(&self.link, &loads(&self.live, attempt));
            }
        }
        send(&self.link, &ToMaster::AttemptEnded { attempt });
    }

    async fn run(mut self) -> JobResult {
        let here = self.placement.process;
        let inbox = open_inbox(self.member.transport.as_ref(), here, 0);
        let mut inbox = match inbox {
            Ok(inbox) => inbox,
            Err(e) => {
                return self.result(JobStatus::Failed(RuntimeError::ClusterBroken(
                    e.to_string(),
                )))
            }
        };
        let status = loop {
            let bytes = match next_frame(&mut inbox).await {
                Ok(Some(bytes)) => bytes,
                Ok(None) => {
                    break JobStatus::Failed(RuntimeError::ClusterBroken(
                        "process 0 (the job master) closed its control channel".into(),
                    ))
                }
                Err(e) => break JobStatus::Failed(RuntimeError::ClusterBroken(e.to_string())),
            };
            let message = match ToWorker::decode(&bytes, 0, &self.layout.splits) {
                Ok(message) => message,
                Err(e) => {
                    let attempt = self.running.as_ref().map_or(0, |r| r.attempt);
                    send(
                        &self.link,
                        &ToMaster::WorkerFailed {
                            attempt,
                            reason: e.to_string(),
                        },
                    );
                    continue;
                }
            };
            match message {
                ToWorker::StartAttempt { attempt, restore } => {
                    if let Some(previous) = self.running.as_ref().map(|r| r.attempt) {
                        self.end(previous, None).await;
                    }
                    self.start(attempt, restore.as_ref());
                }
                ToWorker::Command {
                    attempt,
                    task,
                    command,
                } => {
                    if let Some(running) = self.running.as_ref().filter(|r| r.attempt == attempt) {
                        if let Some(control) = running.controls.get(&task) {
                            let _ = control.send(command);
                        }
                    }
                }
                ToWorker::EndAttempt { attempt, grace } => self.end(attempt, grace).await,
                ToWorker::JobEnded { outcome } => {
                    if let Some(attempt) = self.running.as_ref().map(|r| r.attempt) {
                        self.end(attempt, Some(Duration::from_secs(5))).await;
                    }
                    send(&self.link, &ToMaster::Metrics(self.metrics.snapshot()));
                    break match outcome {
                        Outcome::Finished => JobStatus::Finished,
                        Outcome::Cancelled => JobStatus::Cancelled,
                        Outcome::Stopped(location) => JobStatus::Stopped {
                            savepoint: CheckpointLocation::new(location),
                        },
                        Outcome::Failed(message) => JobStatus::Failed(RuntimeError::Remote {
                            process: 0,
                            message,
                        }),
                    };
                }
            }
        };
        if let Some(mut running) = self.running.take() {
            running.reporter.abort();
            running.launcher.abort().await;
        }
        self.result(status)
    }

    fn result(&self, status: JobStatus) -> JobResult {
        JobResult {
            status,
            attempts: self.attempts,
            completed_checkpoints: 0,
            failures: Vec::new(),
            metrics: self.metrics.snapshot(),
            restored_from: None,
            skipped_checkpoints: Vec::new(),
            checkpoint_history: Vec::new(),
            failover_history: Vec::new(),
        }
    }
}

/// Runs this process's share of `job` (a process other than 0) until the master says the job
/// ended or the cluster fails.
pub(crate) async fn run(job: Job, member: ClusterMember) -> JobResult {
    let placement = Placement {
        process: member.process,
        processes: member.processes,
    };
    let layout = Arc::new(JobLayout::of(&job));
    let live = Live::new(
        &job.config,
        crate::plan::job_graph(&job.groups, &job.edges),
        History::default(),
    );
    let metrics = InMemoryMetricGroup::new(job.config.name.clone());
    let link = match ControlLink::open(member.transport.as_ref(), member.process, 0) {
        Ok(link) => link,
        Err(e) => {
            return JobResult::failed_early(RuntimeError::ClusterBroken(format!(
                "opening the control channel to process 0: {e}"
            )))
        }
    };
    Worker {
        job,
        member,
        placement,
        layout,
        link,
        metrics,
        live,
        running: None,
        attempts: 0,
    }
    .run()
    .await
}

//! Process 0 of a cluster: the job master's deployment. Its launcher starts this process's
//! subtasks, tells the other processes to start theirs, and gives the master a proxy control
//! channel for each remote subtask; a task per other process reads its control messages and
//! hands them to the attempt's master inbox and the source coordinators.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::{mpsc, Notify};
use weir_connector_api::metrics::MetricValue;

use crate::error::{Result, RuntimeError};
use crate::exchange::{Exchange, FrameTransport};
use crate::launch::{AttemptPlan, Deployment, LocalLauncher, TaskLauncher};
use crate::load::TaskLoad;
use crate::source::coordinator::{CoordinatorCommand, CoordinatorHandle};
use crate::task::{MasterMsg, TaskCommand, TaskControl, TaskKey};

use super::control::{ControlError, Outcome, ReaderRequest, ToMaster, ToWorker};
use super::exchange::ClusterExchange;
use super::link::{next_frame, open_inbox, ControlLink};
use super::{JobLayout, Placement};

/// How long the master waits for the other processes to stop an attempt's subtasks, beyond
/// the grace period it gave them.
const END_WAIT: Duration = Duration::from_secs(10);
/// How long the master waits for the other processes' metrics when the job ended.
const METRICS_WAIT: Duration = Duration::from_secs(5);

/// The current attempt, as the control messages from other processes need it.
#[derive(Default)]
struct AttemptState {
    attempt: Option<u32>,
    master: Option<mpsc::UnboundedSender<MasterMsg>>,
    coordinators: BTreeMap<String, CoordinatorHandle>,
    /// One proxy per remote subtask of the attempt: every command to a subtask goes through
    /// the same channel, so commands stay in order (a split assigned after a snapshot reaches
    /// its reader after the barrier).
    proxies: BTreeMap<TaskKey, TaskControl>,
    /// The processes that stopped each attempt's subtasks.
    ended: BTreeMap<u32, BTreeSet<usize>>,
    /// Why the cluster's transport failed, if it did.
    broken: Option<String>,
    /// The other processes' metrics of their subtasks, sent when the job ended.
    metrics: BTreeMap<usize, BTreeMap<String, MetricValue>>,
    /// What the monitor shows of each remote subtask of the attempt, as its process reports.
    mirrors: BTreeMap<TaskKey, Arc<TaskLoad>>,
}

struct Shared {
    placement: Placement,
    transport: Arc<dyn FrameTransport>,
    layout: Arc<JobLayout>,
    /// The control channel to each other process.
    links: Vec<ControlLink>,
    state: Mutex<AttemptState>,
    ended: Notify,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, AttemptState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends `message` to every other process.
    fn broadcast(&self, message: &ToWorker) -> Result<()> {
        let bytes = message
            .encode(&self.layout.splits)
            .map_err(|e| RuntimeError::ClusterBroken(e.to_string()))?;
        for link in &self.links {
            link.send(bytes.clone()).map_err(|e| {
                RuntimeError::ClusterBroken(format!("sending to process {}: {e}", link.peer))
            })?;
        }
        Ok(())
    }

    /// Fails the current attempt (if it is `attempt`) with `error`, in the name of `task`.
    fn fail(&self, attempt: Option<u32>, task: TaskKey, error: RuntimeError) {
        let state = self.state();
        if attempt.is_none() || state.attempt == attempt {
            if let Some(master) = &state.master {
                let _ = master.send(MasterMsg::Failed { task, error });
            }
        }
    }

    /// The proxy control channel of remote subtask `key` in `attempt`.
    fn proxy(
        self: &Arc<Self>,
        state: &mut AttemptState,
        attempt: u32,
        key: TaskKey,
    ) -> TaskControl {
        if let Some(control) = state.proxies.get(&key) {
            return control.clone();
        }
        let (tx, mut rx) = mpsc::unbounded_channel::<TaskCommand>();
        let peer = self.placement.process_of(key);
        let link = self.links.iter().find(|l| l.peer == peer).cloned();
        let shared = Arc::clone(self);
        tokio::spawn(async move {
            while let Some(command) = rx.recv().await {
                let sent = ToWorker::Command {
                    attempt,
                    task: key,
                    command,
                }
                .encode(&shared.layout.splits)
                .map_err(|e| match e {
                    // The job's own design (a custom source event): a restart cannot help.
                    ControlError::Unsupported(_) => RuntimeError::InvalidJob(vec![format!(
                        "a command to subtask {} in process {peer}: {e}",
                        key.subtask
                    )]),
                    e => RuntimeError::Remote {
                        process: peer,
                        message: format!(
                            "a command to subtask {} could not be sent: {e}",
                            key.subtask
                        ),
                    },
                })
                .and_then(|bytes| match &link {
                    Some(link) => link
                        .send(bytes)
                        .map_err(|e| RuntimeError::ClusterBroken(e.to_string())),
                    None => Err(RuntimeError::ClusterBroken(format!(
                        "no control channel to process {peer}"
                    ))),
                });
                if let Err(error) = sent {
                    shared.fail(Some(attempt), key, error);
                }
            }
        });
        state.proxies.insert(key, tx.clone());
        tx
    }

    /// Handles one control message from process `peer`.
    fn on_message(self: &Arc<Self>, peer: usize, message: ToMaster) {
        let mut state = self.state();
        match message {
            ToMaster::Task { attempt, message } => {
                if state.attempt == Some(attempt) {
                    if let Some(master) = &state.master {
                        let _ = master.send(message);
                    }
                }
            }
            ToMaster::Reader {
                attempt,
                source,
                request,
            } => {
                if state.attempt != Some(attempt) {
                    return;
                }
                let Some(coordinator) = state.coordinators.get(&source).cloned() else {
                    return;
                };
                let group = self.layout.source_groups.get(&source).copied();
                let command = match request {
                    ReaderRequest::Registered { subtask } => {
                        let Some(group) = group else { return };
                        let control = self.proxy(&mut state, attempt, TaskKey { group, subtask });
                        CoordinatorCommand::ReaderRegistered { subtask, control }
                    }
                    ReaderRequest::SplitRequest { subtask } => {
                        CoordinatorCommand::SplitRequest { subtask }
                    }
                    ReaderRequest::Watermark { subtask, watermark } => {
                        CoordinatorCommand::ReportWatermark { subtask, watermark }
                    }
                };
                drop(state);
                coordinator.send(command);
            }
            ToMaster::AttemptEnded { attempt } => {
                state.ended.entry(attempt).or_default().insert(peer);
                drop(state);
                self.ended.notify_waiters();
            }
            ToMaster::Loads { attempt, loads } => {
                if state.attempt == Some(attempt) {
                    for (task, measured) in &loads {
                        if let Some(load) = state.mirrors.get(task) {
                            load.mirror(measured);
                        }
                    }
                }
            }
            ToMaster::Metrics(metrics) => {
                state.metrics.insert(peer, metrics);
                drop(state);
                self.ended.notify_waiters();
            }
            ToMaster::WorkerFailed { attempt, reason } => {
                drop(state);
                self.fail(
                    Some(attempt),
                    self.layout.task_in(peer),
                    RuntimeError::Remote {
                        process: peer,
                        message: reason,
                    },
                );
            }
        }
    }

    /// The transport to `peer` failed or closed: the cluster cannot go on.
    fn broke(&self, peer: usize, reason: &str) {
        let error = format!("the control channel from process {peer}: {reason}");
        {
            let mut state = self.state();
            if state.broken.is_none() {
                state.broken = Some(error.clone());
            }
        }
        self.fail(
            None,
            self.layout.task_in(peer),
            RuntimeError::ClusterBroken(error),
        );
        self.ended.notify_waiters();
    }

    /// Waits until every other process stopped `attempt`'s subtasks, or `limit` passed.
    async fn wait_ended(&self, attempt: u32, limit: Duration) {
        let peers = self.links.len();
        let _ = tokio::time::timeout(limit, async {
            loop {
                let notified = self.ended.notified();
                {
                    let state = self.state();
                    let done = state.ended.get(&attempt).map_or(0, BTreeSet::len);
                    if done >= peers || state.broken.is_some() {
                        return;
                    }
                }
                notified.await;
            }
        })
        .await;
    }
}

/// The deployment of a job master in process 0 of a cluster.
#[derive(Clone)]
pub(crate) struct MasterDeployment {
    shared: Arc<Shared>,
}

impl MasterDeployment {
    /// Opens the control channels to and from every other process and starts reading theirs.
    pub(crate) fn start(
        placement: Placement,
        transport: Arc<dyn FrameTransport>,
        layout: Arc<JobLayout>,
    ) -> Result<Self> {
        let peers: Vec<usize> = (1..placement.processes).collect();
        let mut links = Vec::new();
        let mut inboxes = Vec::new();
        for &peer in &peers {
            let broken = |e: crate::exchange::TransportError| {
                RuntimeError::ClusterBroken(format!(
                    "opening the control channel to process {peer}: {e}"
                ))
            };
            links.push(ControlLink::open(transport.as_ref(), 0, peer).map_err(broken)?);
            inboxes.push((
                peer,
                open_inbox(transport.as_ref(), 0, peer).map_err(broken)?,
            ));
        }
        let shared = Arc::new(Shared {
            placement,
            transport,
            layout,
            links,
            state: Mutex::new(AttemptState::default()),
            ended: Notify::new(),
        });
        for (peer, mut inbox) in inboxes {
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                loop {
                    match next_frame(&mut inbox).await {
                        Ok(Some(bytes)) => match ToMaster::decode(&bytes, peer) {
                            Ok(message) => shared.on_message(peer, message),
                            Err(e) => shared.fail(
                                None,
                                shared.layout.task_in(peer),
                                RuntimeError::Remote {
                                    process: peer,
                                    message: e.to_string(),
                                },
                            ),
                        },
                        Ok(None) => {
                            // After its metrics, a process closes its channel when it ends.
                            if !shared.state().metrics.contains_key(&peer) {
                                shared.broke(peer, "the process closed it");
                            }
                            return;
                        }
                        Err(e) => return shared.broke(peer, &e.to_string()),
                    }
                }
            });
        }
        Ok(MasterDeployment { shared })
    }

    /// Tells every other process that the job ended, and collects the metrics of their
    /// subtasks (waiting up to 5 s for them; a broken cluster sends none).
    pub(crate) async fn end_job(&self, outcome: Outcome) -> BTreeMap<String, MetricValue> {
        if let Err(e) = self.shared.broadcast(&ToWorker::JobEnded { outcome }) {
            tracing::warn!("telling the other processes that the job ended: {e}");
            return BTreeMap::new();
        }
        let shared = &self.shared;
        let peers = shared.links.len();
        let _ = tokio::time::timeout(METRICS_WAIT, async {
            loop {
                let notified = shared.ended.notified();
                {
                    let state = shared.state();
                    if state.metrics.len() >= peers || state.broken.is_some() {
                        return;
                    }
                }
                notified.await;
            }
        })
        .await;
        std::mem::take(&mut shared.state().metrics)
            .into_values()
            .flatten()
            .collect()
    }
}

impl Deployment for MasterDeployment {
    fn exchange(&self, attempt: u32) -> Box<dyn Exchange> {
        Box::new(ClusterExchange::new(
            attempt,
            self.shared.placement,
            Arc::clone(&self.shared.transport),
            Arc::clone(&self.shared.layout),
        ))
    }

    fn launcher(&self) -> Box<dyn TaskLauncher> {
        Box::new(MasterLauncher {
            local: LocalLauncher::default(),
            shared: Arc::clone(&self.shared),
            attempt: None,
        })
    }
}

/// Launches an attempt across the cluster, from process 0.
struct MasterLauncher {
    local: LocalLauncher,
    shared: Arc<Shared>,
    attempt: Option<u32>,
}

impl MasterLauncher {
    /// Tells the other processes to stop the attempt, and waits for them.
    async fn end(&mut self, grace: Option<Duration>) {
        let Some(attempt) = self.attempt.take() else {
            return;
        };
        if let Err(e) = self
            .shared
            .broadcast(&ToWorker::EndAttempt { attempt, grace })
        {
            tracing::warn!("telling the other processes to stop attempt {attempt}: {e}");
        }
        self.shared
            .wait_ended(attempt, grace.unwrap_or_default() + END_WAIT)
            .await;
        let mut state = self.shared.state();
        if state.attempt == Some(attempt) {
            state.master = None;
            state.proxies.clear();
        }
        state.ended.remove(&attempt);
    }
}

impl TaskLauncher for MasterLauncher {
    fn spawn(&mut self, key: TaskKey, task: BoxFuture<'static, ()>) {
        self.local.spawn(key, task);
    }

    fn stop(&mut self, grace: Duration) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.local.stop(grace).await;
            self.end(Some(grace)).await;
        })
    }

    fn abort(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.local.abort().await;
            self.end(None).await;
        })
    }

    fn hosts(&self, key: TaskKey) -> bool {
        self.shared.placement.hosts(key)
    }

    fn begin(&mut self, plan: &AttemptPlan<'_>) -> Result<()> {
        {
            let mut state = self.shared.state();
            if let Some(broken) = &state.broken {
                return Err(RuntimeError::ClusterBroken(broken.clone()));
            }
            state.attempt = Some(plan.attempt);
            state.master = Some(plan.master.clone());
            state.coordinators = plan.coordinators.clone();
            state.proxies.clear();
            // The monitor shows the remote subtasks too, with what their processes report.
            state.mirrors = plan
                .groups
                .iter()
                .enumerate()
                .flat_map(|(group, g)| {
                    (0..g.parallelism).map(move |subtask| TaskKey { group, subtask })
                })
                .filter(|key| !self.shared.placement.hosts(*key))
                .map(|key| (key, plan.live.register(key.group, key.subtask)))
                .collect();
        }
        self.attempt = Some(plan.attempt);
        self.shared.broadcast(&ToWorker::StartAttempt {
            attempt: plan.attempt,
            restore: plan.restore.cloned(),
        })
    }

    fn remote_control(&mut self, key: TaskKey) -> Option<TaskControl> {
        let attempt = self.attempt?;
        let mut state = self.shared.state();
        Some(self.shared.proxy(&mut state, attempt, key))
    }
}

impl Drop for MasterLauncher {
    /// An attempt that ended without stop or abort (every subtask finished): the other
    /// processes let go of it.
    fn drop(&mut self) {
        if let Some(attempt) = self.attempt.take() {
            let _ = self.shared.broadcast(&ToWorker::EndAttempt {
                attempt,
                grace: Some(Duration::from_secs(5)),
            });
        }
    }
}

#[cfg(test)]
#[path = "master_side_tests.rs"]
mod tests;

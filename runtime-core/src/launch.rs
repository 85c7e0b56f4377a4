//! Task launch, behind a narrow seam: a [`Deployment`] makes each job attempt's exchange (the
//! channels, see [`crate::exchange`]) and its [`TaskLauncher`] (where subtasks run);
//! [`launch_attempt`] creates every subtask of the physical plan with them. [`InProcess`] runs
//! every subtask as a tokio task of this process; a cluster mode puts subtasks on other
//! processes behind the same traits, and the job master does not change.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::metrics::InMemoryMetricGroup;

use crate::config::JobConfig;
use crate::error::Result;
use crate::exchange::{EdgeLayout, Exchange, LocalExchange};
use crate::monitor::Live;
use crate::plan::{distribute, EdgeSpec, RestoredOperator, SubtaskSetup, TaskGroup};
use crate::source::coordinator::CoordinatorHandle;
use crate::storage::CheckpointMetadata;
use crate::task::{MasterMsg, TaskControl, TaskKey};

/// Starts the subtasks of one job attempt and stops them at its end.
pub(crate) trait TaskLauncher: Send {
    /// Starts subtask `key`, whose whole life is `task`.
    fn spawn(&mut self, key: TaskKey, task: BoxFuture<'static, ()>);

    /// Waits up to `grace` for each started subtask to end (they were told to cancel), then
    /// stops the rest.
    fn stop(&mut self, grace: Duration) -> BoxFuture<'_, ()>;

    /// Stops every started subtask now and waits until they are gone.
    fn abort(&mut self) -> BoxFuture<'_, ()>;

    /// Whether subtask `key` runs in this process: [`launch_attempt`] creates only those (a
    /// cluster runs each subtask in one process, see [`crate::cluster`]).
    fn hosts(&self, _key: TaskKey) -> bool {
        true
    }

    /// Called once per attempt before its subtasks are created (a cluster's master tells the
    /// other processes to start theirs).
    fn begin(&mut self, _plan: &AttemptPlan<'_>) -> Result<()> {
        Ok(())
    }

    /// The master's control channel to subtask `key`, which runs in another process; `None`
    /// when this process has no master (a cluster's other processes).
    fn remote_control(&mut self, _key: TaskKey) -> Option<TaskControl> {
        None
    }
}

/// Where a job's subtasks run: makes the exchange and the launcher of each attempt.
pub(crate) trait Deployment: Send + Sync {
    /// The channels of attempt `attempt`.
    fn exchange(&self, attempt: u32) -> Box<dyn Exchange>;
    /// The launcher of a new attempt.
    fn launcher(&self) -> Box<dyn TaskLauncher>;
}

/// Every subtask in this process, as a tokio task; channels in memory.
pub(crate) struct InProcess;

impl Deployment for InProcess {
    fn exchange(&self, _attempt: u32) -> Box<dyn Exchange> {
        Box::new(LocalExchange::default())
    }

    fn launcher(&self) -> Box<dyn TaskLauncher> {
        Box::new(LocalLauncher::default())
    }
}

/// Runs subtasks as tokio tasks of the current runtime.
#[derive(Default)]
pub(crate) struct LocalLauncher {
    handles: Vec<JoinHandle<()>>,
}

impl TaskLauncher for LocalLauncher {
    fn spawn(&mut self, _key: TaskKey, task: BoxFuture<'static, ()>) {
        self.handles.push(tokio::spawn(task));
    }

    fn stop(&mut self, grace: Duration) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            for handle in self.handles.drain(..) {
                let abort = handle.abort_handle();
                if tokio::time::timeout(grace, handle).await.is_err() {
                    abort.abort();
                }
            }
        })
    }

    fn abort(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            for handle in self.handles.drain(..) {
                handle.abort();
                let _ = handle.await;
            }
        })
    }
}

/// What an attempt's subtasks are made from.
pub(crate) struct AttemptPlan<'a> {
    pub(crate) groups: &'a [TaskGroup],
    pub(crate) edges: &'a [EdgeSpec],
    pub(crate) config: &'a JobConfig,
    pub(crate) attempt: u32,
    pub(crate) restore: Option<&'a CheckpointMetadata>,
    pub(crate) coordinators: &'a BTreeMap<String, CoordinatorHandle>,
    pub(crate) master: &'a mpsc::UnboundedSender<MasterMsg>,
    pub(crate) metrics: &'a InMemoryMetricGroup,
    pub(crate) live: &'a Live,
}

/// The master's lines to the subtasks it launched.
#[derive(Default)]
pub(crate) struct Launched {
    /// Every subtask's control channel.
    pub(crate) controls: BTreeMap<TaskKey, TaskControl>,
    /// The control channels of each source's readers, by source uid.
    pub(crate) source_controls: BTreeMap<String, Vec<TaskControl>>,
}

impl Launched {
    /// Records the control channel of subtask `key` of `group` (also among its source's
    /// readers when the group reads a source).
    fn add(&mut self, group: &TaskGroup, key: TaskKey, control: TaskControl) {
        if group.is_source {
            if let Some(uid) = group.uids.first() {
                self.source_controls
                    .entry(uid.clone())
                    .or_default()
                    .push(control.clone());
            }
        }
        self.controls.insert(key, control);
    }
}

/// Connects every edge of the plan in `exchange`, creates every subtask (each with its share
/// of the restored state) and starts them all with `launcher`; nothing starts unless every
/// subtask could be created. Only the subtasks the launcher hosts are created; the others are
/// reached through [`TaskLauncher::remote_control`].
pub(crate) fn launch_attempt(
    plan: &AttemptPlan<'_>,
    exchange: &mut dyn Exchange,
    launcher: &mut dyn TaskLauncher,
) -> Result<Launched> {
    launcher.begin(plan)?;
    let parallelism_of = |group: usize| plan.groups.get(group).map_or(1, |g| g.parallelism);
    for (id, edge) in plan.edges.iter().enumerate() {
        exchange.connect(
            EdgeLayout {
                id,
                upstream: parallelism_of(edge.from),
                downstream: parallelism_of(edge.to),
                pointwise: edge.pointwise,
                capacity: plan.config.channel_capacity,
            },
            edge.channels.as_ref(),
        )?;
    }
    let restored_checkpoint = plan.restore.map(|m| CheckpointId(m.checkpoint_id));
    let mut launched = Launched::default();
    let mut tasks = Vec::new();
    for (g, group) in plan.groups.iter().enumerate() {
        for subtask in 0..group.parallelism {
            let key = TaskKey { group: g, subtask };
            if !launcher.hosts(key) {
                if let Some(control) = launcher.remote_control(key) {
                    launched.add(group, key, control);
                }
                continue;
            }
            let (control_tx, control_rx) = mpsc::unbounded_channel();
            let restored: BTreeMap<String, RestoredOperator> = group
                .uids
                .iter()
                .chain(group.channel_state.iter())
                .map(|uid| {
                    let op = plan.restore.and_then(|m| m.operators.get(uid));
                    (uid.clone(), distribute(op, group.parallelism, subtask))
                })
                .collect();
            let mut setup = SubtaskSetup {
                key,
                parallelism: group.parallelism,
                attempt: plan.attempt,
                exchange: &mut *exchange,
                restored: &restored,
                channel_state: group.channel_state.as_deref(),
                restored_checkpoint,
                coordinators: plan.coordinators,
                control: Some(control_rx),
                control_tx: control_tx.clone(),
                master: plan.master.clone(),
                config: plan.config,
                faults: Arc::clone(&plan.config.faults),
                metrics: plan.metrics,
            };
            let task = (group.factory)(&mut setup)?;
            let task: BoxFuture<'static, ()> =
                Box::pin(crate::load::scope(plan.live.register(g, subtask), task));
            tasks.push((key, task));
            launched.add(group, key, control_tx);
        }
    }
    for (key, task) in tasks {
        launcher.spawn(key, task);
    }
    Ok(launched)
}

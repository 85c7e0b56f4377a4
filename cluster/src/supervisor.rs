//! The supervisor of a cluster of local processes (what `weir cluster run -n 3` needs): starts
//! N processes, and when one dies, stops the others and starts all N again with a new
//! generation, until every process ended cleanly, a process failed for good, or the restart
//! budget ran out.

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use weir_runtime::{JobResult, JobStatus, RuntimeError};

/// The exit code of a process whose cluster broke (another process died): the supervisor
/// restarts every process. (`EX_TEMPFAIL` of `sysexits.h`.)
pub const EXIT_RESTART: i32 = 75;

/// The exit code a process of a cluster should end with after its job ended with `result`: 0
/// when the job finished, stopped or was cancelled; [`EXIT_RESTART`] when the cluster broke
/// (the job can go on from its latest checkpoint after a restart of every process); 1 when the
/// job failed for good.
pub fn exit_code(result: &JobResult) -> i32 {
    match &result.status {
        JobStatus::Failed(e) if broken(e) => EXIT_RESTART,
        JobStatus::Failed(_) => 1,
        _ => 0,
    }
}

fn broken(e: &RuntimeError) -> bool {
    match e {
        RuntimeError::ClusterBroken(_) => true,
        RuntimeError::GaveUp { cause, .. } => broken(cause),
        _ => false,
    }
}

/// What a process of one generation is started with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSpec {
    /// Its index.
    pub process: usize,
    /// Every process's address.
    pub addresses: Vec<String>,
    /// The generation (0, then one more per restart); a process of another generation is
    /// refused at the handshake. From generation 1 on, the job should restore its latest
    /// checkpoint (or start empty if it completed none: then nothing was committed).
    pub generation: u64,
}

/// How a supervised cluster ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Supervised {
    /// How many generations ran (1 without restarts).
    pub generations: u64,
    /// Why each restart happened, in order.
    pub restarts: Vec<String>,
}

/// Why supervision ended without every process ending cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SupervisorError {
    /// A process could not be started.
    #[error("process {process} of generation {generation} could not be started: {source}")]
    Spawn {
        /// Its index.
        process: usize,
        /// Its generation.
        generation: u64,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A process failed for good (an exit code other than 0 and [`EXIT_RESTART`]: the job's own
    /// failure, an invalid job or a cancel, which a restart does not fix); see its output.
    #[error(
        "process {process} of generation {generation} failed ({status}); the job does not \
         restart: see that process's error"
    )]
    Failed {
        /// Its index.
        process: usize,
        /// Its generation.
        generation: u64,
        /// How it ended.
        status: String,
        /// Its exit code.
        code: Option<i32>,
    },
    /// The restart budget ran out.
    #[error("the cluster was restarted {restarts} times, the most allowed; last: {last}")]
    GaveUp {
        /// Restarts made.
        restarts: u32,
        /// Why the last generation ended.
        last: String,
    },
}

/// Supervises a cluster of local processes.
#[derive(Debug, Clone)]
pub struct Supervisor {
    addresses: Vec<String>,
    max_restarts: u32,
    grace: Duration,
    poll: Duration,
}

impl Supervisor {
    /// A supervisor of one process per address, restarting at most 3 times, giving the other
    /// processes 5 s to exit on their own after one died.
    pub fn new(addresses: Vec<String>) -> Self {
        Supervisor {
            addresses,
            max_restarts: 3,
            grace: Duration::from_secs(5),
            poll: Duration::from_millis(20),
        }
    }

    /// At most `restarts` restarts of the whole cluster.
    pub fn max_restarts(mut self, restarts: u32) -> Self {
        self.max_restarts = restarts;
        self
    }

    /// How long the other processes have to exit on their own after one died, before they are
    /// killed.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Runs the cluster: `spawn` starts process `spec.process` of generation `spec.generation`
    /// (the same binary and job in every process, told its index, the addresses and the
    /// generation). Returns when every process of a generation exited with 0. A process that
    /// exits with any other code than 0 and [`EXIT_RESTART`] (the job's own failure, an invalid
    /// job, a cancel) ends supervision ([`SupervisorError::Failed`]); one killed by a signal or
    /// ending with [`EXIT_RESTART`] makes the supervisor stop the others and start
    /// generation + 1. The supervisor only waits for the children: let them inherit
    /// standard output and error (or read their pipes), or a full pipe blocks them.
    pub fn run(
        &self,
        mut spawn: impl FnMut(&ProcessSpec) -> std::io::Result<Child>,
    ) -> Result<Supervised, SupervisorError> {
        let mut restarts = Vec::new();
        for generation in 0.. {
            let mut children = Vec::with_capacity(self.addresses.len());
            for process in 0..self.addresses.len() {
                let spec = ProcessSpec {
                    process,
                    addresses: self.addresses.clone(),
                    generation,
                };
                match spawn(&spec) {
                    Ok(child) => children.push(child),
                    Err(source) => {
                        stop(&mut children, Duration::ZERO, self.poll);
                        return Err(SupervisorError::Spawn {
                            process,
                            generation,
                            source,
                        });
                    }
                }
            }
            let ended = self.wait(&mut children);
            match ended {
                Ended::Clean => {
                    return Ok(Supervised {
                        generations: generation + 1,
                        restarts,
                    })
                }
                Ended::Failed {
                    process,
                    status,
                    code,
                } => {
                    return Err(SupervisorError::Failed {
                        process,
                        generation,
                        status,
                        code,
                    })
                }
                Ended::Died { process, status } => {
                    let why = format!("generation {generation}: process {process} {status}");
                    tracing::warn!("{why}; restarting every process");
                    if restarts.len() >= self.max_restarts as usize {
                        return Err(SupervisorError::GaveUp {
                            restarts: self.max_restarts,
                            last: why,
                        });
                    }
                    restarts.push(why);
                }
            }
        }
        Err(SupervisorError::GaveUp {
            restarts: self.max_restarts,
            last: "out of generations".into(),
        })
    }

    /// Waits until every child exited cleanly, or one failed or died (then stops the others).
    fn wait(&self, children: &mut [Child]) -> Ended {
        let mut exited: Vec<Option<Exit>> = vec![None; children.len()];
        loop {
            for (i, child) in children.iter_mut().enumerate() {
                if exited[i].is_none() {
                    exited[i] = match child.try_wait() {
                        Ok(status) => status.map(Exit::Status),
                        Err(e) => Some(Exit::Lost(e.to_string())),
                    };
                }
            }
            // The most telling end first: a failure for good, then a process that died (killed,
            // or lost), then one that exited because the cluster broke.
            let bad = exited
                .iter()
                .enumerate()
                .filter_map(|(i, e)| match e {
                    Some(Exit::Status(s)) if s.success() => None,
                    Some(e) => Some((i, e.clone())),
                    None => None,
                })
                .min_by_key(|(_, e)| match e {
                    Exit::Status(s) if s.code().is_some_and(|c| c != EXIT_RESTART) => 0,
                    Exit::Status(s) if s.code().is_none() => 1,
                    Exit::Lost(_) => 1,
                    Exit::Status(_) => 2,
                });
            if let Some((process, exit)) = bad {
                // The others exit on their own when the cluster breaks; a grace period, then
                // they are killed.
                stop(children, self.grace, self.poll);
                return match exit {
                    Exit::Status(status) if status.code().is_some_and(|c| c != EXIT_RESTART) => {
                        Ended::Failed {
                            process,
                            status: describe(status),
                            code: status.code(),
                        }
                    }
                    Exit::Status(status) => Ended::Died {
                        process,
                        status: describe(status),
                    },
                    Exit::Lost(e) => Ended::Died {
                        process,
                        status: format!("could not be waited for ({e})"),
                    },
                };
            }
            if exited.iter().all(Option::is_some) {
                return Ended::Clean;
            }
            std::thread::sleep(self.poll);
        }
    }
}

/// How one child ended.
#[derive(Clone)]
enum Exit {
    Status(ExitStatus),
    Lost(String),
}

enum Ended {
    Clean,
    Failed {
        process: usize,
        status: String,
        code: Option<i32>,
    },
    Died {
        process: usize,
        status: String,
    },
}

fn describe(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exited with code {code}"),
        None => format!("was killed ({status})"),
    }
}

/// Gives `children` up to `grace` to exit, then kills the rest and reaps all.
fn stop(children: &mut [Child], grace: Duration, poll: Duration) {
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline
        && children
            .iter_mut()
            .any(|c| matches!(c.try_wait(), Ok(None)))
    {
        std::thread::sleep(poll);
    }
    for child in children.iter_mut() {
        if matches!(child.try_wait(), Ok(None)) {
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    /// A process that exits with `code` (a shell, standing in for a cluster's process).
    fn exits(code: i32) -> std::io::Result<Child> {
        Command::new("sh")
            .args(["-c", &format!("exit {code}")])
            .spawn()
    }

    fn supervisor(n: usize) -> Supervisor {
        Supervisor::new((0..n).map(|i| format!("127.0.0.1:{}", 7000 + i)).collect())
            .grace(Duration::from_millis(200))
            .max_restarts(2)
    }

    #[test]
    fn clean_exits_end_supervision_and_a_restart_gets_a_new_generation(
    ) -> Result<(), SupervisorError> {
        assert_eq!(
            supervisor(3).run(|_| exits(0))?,
            Supervised {
                generations: 1,
                restarts: Vec::new()
            }
        );
        // Generation 0: process 1 finds its cluster broken; generation 1 finishes.
        let mut seen = Vec::new();
        let supervised = supervisor(3).run(|spec| {
            seen.push((spec.generation, spec.process));
            exits(if spec.generation == 0 && spec.process == 1 {
                EXIT_RESTART
            } else {
                0
            })
        })?;
        assert_eq!(supervised.generations, 2);
        assert_eq!(
            supervised.restarts,
            ["generation 0: process 1 exited with code 75"]
        );
        assert_eq!(seen, [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]);
        Ok(())
    }

    #[test]
    fn a_failure_for_good_is_not_restarted_and_the_budget_ends() {
        let failed = supervisor(2).run(|spec| exits(i32::from(spec.process == 1)));
        assert!(
            matches!(
                failed,
                Err(SupervisorError::Failed {
                    process: 1,
                    generation: 0,
                    ..
                })
            ),
            "{failed:?}"
        );
        let gave_up = supervisor(2).run(|_| exits(EXIT_RESTART));
        assert!(
            matches!(gave_up, Err(SupervisorError::GaveUp { restarts: 2, .. })),
            "{gave_up:?}"
        );
    }

    #[test]
    fn an_invalid_job_or_a_cancel_is_not_restarted() {
        for code in [2, 130] {
            let failed = supervisor(2).run(|spec| exits(if spec.process == 0 { code } else { 0 }));
            assert!(
                matches!(failed, Err(SupervisorError::Failed { process: 0, generation: 0, code: Some(c), .. }) if c == code),
                "{failed:?}"
            );
        }
    }

    #[test]
    fn exit_codes_follow_the_job_status() {
        let result = |status| JobResult {
            status,
            attempts: 1,
            completed_checkpoints: 0,
            failures: Vec::new(),
            metrics: std::collections::BTreeMap::default(),
            restored_from: None,
            skipped_checkpoints: Vec::new(),
            checkpoint_history: Vec::new(),
            failover_history: Vec::new(),
        };
        assert_eq!(exit_code(&result(JobStatus::Finished)), 0);
        assert_eq!(
            exit_code(&result(JobStatus::Failed(RuntimeError::ClusterBroken(
                "process 2 died".into()
            )))),
            EXIT_RESTART
        );
        assert_eq!(
            exit_code(&result(JobStatus::Failed(RuntimeError::GaveUp {
                attempts: 2,
                reason: "none".into(),
                cause: Box::new(RuntimeError::ClusterBroken("gone".into())),
            }))),
            EXIT_RESTART
        );
        assert_eq!(
            exit_code(&result(JobStatus::Failed(RuntimeError::InvalidJob(vec![
                "bad".into()
            ])))),
            1
        );
    }
}

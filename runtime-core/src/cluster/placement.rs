//! Placement: which process runs each subtask of a job in cluster mode.
//!
//! A fixed function of the plan, so every process computes the same placement without talking
//! to the others: subtask `i` of every task group runs in process `i mod N`. The readers of a
//! source of parallelism ≥ N are spread over every process, subtasks of equal index of
//! different groups share a process (so pointwise edges between groups of equal parallelism
//! stay local), and every group of parallelism 1 (committers, global aggregations) runs in
//! process 0, next to the job master and the split enumerators.

use crate::task::TaskKey;

/// The process (of `processes`) that runs subtask `subtask` of any task group:
/// `subtask mod processes` (process 0 when `processes` is 0).
pub fn process_of(subtask: usize, processes: usize) -> usize {
    subtask.checked_rem(processes).unwrap_or(0)
}

/// This process's view of the placement.
// Used by the cluster deployment (next commit).
#[cfg_attr(not(test), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placement {
    /// This process's index.
    pub(crate) process: usize,
    /// How many processes run the job.
    pub(crate) processes: usize,
}

#[cfg_attr(not(test), allow(dead_code))]
impl Placement {
    /// The process that runs `key`.
    pub(crate) fn process_of(&self, key: TaskKey) -> usize {
        process_of(key.subtask, self.processes)
    }

    /// Whether `key` runs in this process.
    pub(crate) fn hosts(&self, key: TaskKey) -> bool {
        self.process_of(key) == self.process
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtasks_spread_round_robin_and_parallelism_one_groups_live_in_process_0() {
        // A source of parallelism 3 on 3 processes: one reader in each.
        let readers: Vec<usize> = (0..3).map(|i| process_of(i, 3)).collect();
        assert_eq!(readers, [0, 1, 2]);
        // Parallelism 5 on 2 processes.
        let five: Vec<usize> = (0..5).map(|i| process_of(i, 2)).collect();
        assert_eq!(five, [0, 1, 0, 1, 0]);
        // A committer of parallelism 1, wherever its group is in the plan.
        for processes in 1..5 {
            let p = Placement {
                process: 0,
                processes,
            };
            assert!(p.hosts(TaskKey {
                group: 7,
                subtask: 0
            }));
        }
        // One process hosts everything; no process count never divides by zero.
        assert!((0..10).all(|i| process_of(i, 1) == 0));
        assert_eq!(process_of(3, 0), 0);
    }

    #[test]
    fn every_subtask_has_exactly_one_host() {
        for processes in 1..5 {
            for subtask in 0..12 {
                let key = TaskKey { group: 1, subtask };
                let hosts = (0..processes)
                    .filter(|&process| Placement { process, processes }.hosts(key))
                    .count();
                assert_eq!(hosts, 1, "subtask {subtask} on {processes} processes");
            }
        }
    }
}

//! A kill/resume soak of the real `weir` binary: start `weir run <pipeline>`, SIGKILL it at a
//! random moment, resume it with `--from-latest-checkpoint`, repeat, then let the last run
//! finish and hand the outcome to the test, which counts the output with its own reader.
//!
//! ```ignore
//! let report = Soak::new("datagen-parquet", dir, "pipeline.toml")
//!     .kill_after(Duration::from_millis(50)..Duration::from_millis(1500))
//!     .final_pipeline("pipeline-final.toml")
//!     .run();
//! report.assert_finished();
//! ```
//!
//! - `WEIR_SOAK_KILLS` sets the number of kills (default [`DEFAULT_KILLS`]);
//! - `WEIR_SOAK_SEED` replays a soak: every kill moment comes from one seeded generator, and the
//!   seed is printed at the start of every soak (and in every failure message).
//!
//! The phases: `kills` runs of the pipeline, each killed a random moment after its start; then
//! runs of the final pipeline killed a random moment after the runtime logged that a task
//! finished its input (while the other subtasks finish, during the final checkpoint, between it
//! and its commits, during and after them); then the final run, left to finish; then one more
//! resume, which must end at once (the test's check of the output then also proves it added
//! nothing).
//!
//! The first run starts fresh (no `--from-latest-checkpoint`, as a user starts a job); every
//! later one resumes, and, when `weir` refuses that because no checkpoint completed yet (a kill
//! before the first one), starts fresh again, as a user would. A killed run that ends on its own before its kill moment with exit code 0
//! means the input ran out too early: the soak stops there and [`SoakReport::assert_finished`]
//! fails, so size the input (or pace it, see [`Soak::before_run`]) for the number of kills.
//! A run that exits with another code fails the soak at once, with its log.

use std::fmt::Write as _;
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Kills per soak when `WEIR_SOAK_KILLS` is not set.
pub const DEFAULT_KILLS: u32 = 20;

/// The number of kills: `WEIR_SOAK_KILLS`, or [`DEFAULT_KILLS`].
pub fn kills_from_env() -> u32 {
    match std::env::var("WEIR_SOAK_KILLS") {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("WEIR_SOAK_KILLS={v:?} is not a whole number")),
        Err(_) => DEFAULT_KILLS,
    }
}

/// The seed: `WEIR_SOAK_SEED`, or a fresh one from the clock and the process id.
pub fn seed_from_env() -> u64 {
    match std::env::var("WEIR_SOAK_SEED") {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("WEIR_SOAK_SEED={v:?} is not a whole number")),
        Err(_) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            nanos ^ (u64::from(std::process::id()) << 32)
        }
    }
}

/// A small seeded generator (splitmix64): the same seed gives the same kill moments.
#[derive(Debug, Clone)]
pub struct SoakRng(u64);

impl SoakRng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        SoakRng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A duration drawn uniformly from `range` (its start when it is empty).
    pub fn duration(&mut self, range: &Range<Duration>) -> Duration {
        let lo = range.start.as_micros() as u64;
        let hi = range.end.as_micros() as u64;
        if hi <= lo {
            return range.start;
        }
        Duration::from_micros(lo + self.next_u64() % (hi - lo))
    }
}

/// Which kind of run of the soak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// A run started without `--from-latest-checkpoint` (the first one, or one after kills
    /// before any checkpoint completed); killed.
    Fresh,
    /// A run resumed with `--from-latest-checkpoint`; killed.
    Resumed,
    /// A run of the final pipeline killed a random moment after its first task finished its
    /// input: during the end of the input, the final checkpoint or its commits.
    EndOfInput,
    /// The last run, resumed and left to finish.
    Final,
    /// The last run, started fresh because no checkpoint completed before the last kill.
    FinalFresh,
    /// One more resume after the job finished, as a user who does not know whether the last
    /// run finished would do: it must end at once and add nothing.
    AfterFinish,
}

impl RunKind {
    fn resumes(self) -> bool {
        !matches!(self, RunKind::Fresh | RunKind::FinalFresh)
    }

    fn paced(self) -> bool {
        matches!(self, RunKind::Fresh | RunKind::Resumed)
    }

    /// Whether it is one of the `kills` runs killed a random moment after their start (the
    /// others run the final pipeline).
    pub fn paced_run(self) -> bool {
        self.paced()
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// SIGKILLed by the soak.
    Killed,
    /// Exited on its own with this code (-1: by a signal the soak did not send).
    Exited(i32),
}

/// One run of the soak.
#[derive(Debug, Clone)]
pub struct Run {
    /// 0 for the first run.
    pub index: usize,
    /// Fresh, resumed or final.
    pub kind: RunKind,
    /// How it ended.
    pub end: RunEnd,
    /// How long it ran.
    pub ran_for: Duration,
    /// When it was started (for a fresh start after a refused resume: when that started).
    pub started_at: std::time::SystemTime,
    /// Its stderr (the stdout file is beside it, `.out` instead of `.err`).
    pub log: PathBuf,
}

/// Called before every run, with its index and kind (e.g. to produce the next input chunk).
pub type BeforeRun = Box<dyn FnMut(usize, RunKind)>;

/// What the runtime logs (at debug level) when a task finished its input.
pub const END_OF_INPUT_LOG: &str = "finished task=";

/// When a run is killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kill {
    /// This long after its start.
    After(Duration),
    /// This long after the runtime logged that a task finished its input.
    AfterEndOfInput(Duration),
    /// Never: it must end on its own within the final timeout.
    Never,
}

/// A kill/resume soak of one pipeline. See the [module docs](self).
pub struct Soak {
    name: String,
    dir: PathBuf,
    pipeline: String,
    final_pipeline: Option<String>,
    kills: u32,
    end_of_input_kills: Option<u32>,
    seed: u64,
    kill_after: Range<Duration>,
    end_of_input_kill_after: Range<Duration>,
    final_timeout: Duration,
    args: Vec<String>,
    /// Environment variables of the runs of the first pipeline (not of the final one).
    paced_env: Vec<(String, String)>,
    before_run: Option<BeforeRun>,
    /// `WEIR_PIPELINE_ENGINE` of the paced runs and of the others.
    engines: Option<(String, String)>,
}

impl Soak {
    /// A soak named `name` (for messages) running `weir run <pipeline>` in `dir`, with kills and
    /// seed from the environment, kill moments 0–1.5 s after each start, a quarter as many kills
    /// at the end of the input (0–600 ms after a task finished its input), and 5 min for each
    /// run that is not killed.
    pub fn new(name: &str, dir: &Path, pipeline: &str) -> Self {
        Soak {
            name: name.to_owned(),
            dir: dir.to_path_buf(),
            pipeline: pipeline.to_owned(),
            final_pipeline: None,
            kills: kills_from_env(),
            end_of_input_kills: None,
            seed: seed_from_env(),
            kill_after: Duration::ZERO..Duration::from_millis(1500),
            end_of_input_kill_after: Duration::ZERO..Duration::from_millis(600),
            final_timeout: Duration::from_mins(5),
            args: vec!["--progress".to_owned(), "quiet".to_owned()],
            paced_env: Vec::new(),
            before_run: None,
            engines: None,
        }
    }

    /// Sets `key=value` in the environment of the runs of the first pipeline (with
    /// [`final_pipeline`](Self::final_pipeline), not of the final runs).
    pub fn paced_env(mut self, key: &str, value: &str) -> Self {
        self.paced_env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Kills each run this long after its start, drawn uniformly from `range`.
    pub fn kill_after(mut self, range: Range<Duration>) -> Self {
        self.kill_after = range;
        self
    }

    /// Runs another pipeline file for the end-of-input kills and the final run (e.g. the same
    /// job without its rate limit, so that the rest of the input goes through quickly). It must
    /// keep every operator and connector of the first, or the restore fails.
    pub fn final_pipeline(mut self, pipeline: &str) -> Self {
        self.final_pipeline = Some(pipeline.to_owned());
        self
    }

    /// The number of kills (instead of `WEIR_SOAK_KILLS`).
    pub fn kills(mut self, kills: u32) -> Self {
        self.kills = kills;
        self
    }

    /// The number of kills at the end of the input (default: a quarter of the kills, at least
    /// one when there are kills).
    pub fn end_of_input_kills(mut self, kills: u32) -> Self {
        self.end_of_input_kills = Some(kills);
        self
    }

    /// Kills the end-of-input runs this long after a task finished its input, drawn uniformly
    /// from `range` (default 0–600 ms).
    pub fn end_of_input_kill_after(mut self, range: Range<Duration>) -> Self {
        self.end_of_input_kill_after = range;
        self
    }

    /// The number of kills this soak will do before the end of the input.
    pub fn planned_kills(&self) -> u32 {
        self.kills
    }

    /// The seed (instead of `WEIR_SOAK_SEED`).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// How long a run that is not killed may take before the soak fails.
    pub fn final_timeout(mut self, timeout: Duration) -> Self {
        self.final_timeout = timeout;
        self
    }

    /// More arguments for every `weir run` (default: `--progress quiet`).
    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_owned());
        self
    }

    /// Runs the paced runs with `WEIR_PIPELINE_ENGINE=paced` and the end-of-input and final
    /// runs with `WEIR_PIPELINE_ENGINE=final_runs` (a checkpoint of one engine resumed on the
    /// other).
    pub fn engines(mut self, paced: &str, final_runs: &str) -> Self {
        self.engines = Some((paced.to_owned(), final_runs.to_owned()));
        self
    }

    /// Calls `f` before every run.
    pub fn before_run(mut self, f: impl FnMut(usize, RunKind) + 'static) -> Self {
        self.before_run = Some(Box::new(f));
        self
    }

    fn start(&self, index: usize, kind: RunKind) -> (KillOnDrop, PathBuf) {
        let logs = self.dir.join("soak-logs");
        std::fs::create_dir_all(&logs).unwrap();
        let err = logs.join(format!("run-{index:03}.err"));
        let out = logs.join(format!("run-{index:03}.out"));
        let (pipeline, env) = match &self.final_pipeline {
            Some(p) if !kind.paced() => (p.as_str(), &[][..]),
            _ => (self.pipeline.as_str(), &self.paced_env[..]),
        };
        let mut cmd = super::weir();
        cmd.current_dir(&self.dir).args(["run", pipeline]);
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        if kind.resumes() {
            cmd.arg("--from-latest-checkpoint");
        }
        if let Some((paced, final_runs)) = &self.engines {
            let engine = if kind.paced() { paced } else { final_runs };
            cmd.env("WEIR_PIPELINE_ENGINE", engine);
        }
        if kind == RunKind::EndOfInput {
            // The runtime logs each task that finished its input at debug level.
            cmd.env("RUST_LOG", "info,weir_runtime=debug");
        }
        cmd.args(&self.args)
            .stdout(Stdio::from(File::create(&out).unwrap()))
            .stderr(Stdio::from(File::create(&err).unwrap()));
        (KillOnDrop(Some(cmd.spawn().expect("weir starts"))), err)
    }

    fn context(&self) -> String {
        format!(
            "soak `{}` in {} (replay with WEIR_SOAK_SEED={} WEIR_SOAK_KILLS={})",
            self.name,
            self.dir.display(),
            self.seed,
            self.kills
        )
    }

    /// Runs once, killed as `kill` says unless it ends first. A resume that `weir` refuses
    /// because no checkpoint completed yet is started fresh at once.
    fn run_once(&self, index: usize, kind: RunKind, kill: Kill) -> Run {
        let mut started_at = std::time::SystemTime::now();
        let (mut child, mut log) = self.start(index, kind);
        let mut kind = kind;
        let started = Instant::now();
        let mut kill_at = match kill {
            Kill::After(d) => Some(d),
            Kill::AfterEndOfInput(_) | Kill::Never => None,
        };
        let end = loop {
            if let Some(status) = child.get().try_wait().unwrap() {
                let code = status.code().unwrap_or(-1);
                let fresh = match kind {
                    RunKind::Resumed => Some(RunKind::Fresh),
                    // The end-of-input kills need a checkpoint to resume: go on as the final run.
                    RunKind::EndOfInput | RunKind::Final => Some(RunKind::FinalFresh),
                    _ => None,
                };
                if let (Some(fresh), true) = (fresh, code != 0 && no_checkpoint_yet(&log)) {
                    kind = fresh;
                    if fresh == RunKind::FinalFresh {
                        kill_at = None;
                    }
                    started_at = std::time::SystemTime::now();
                    (child, log) = self.start(index, kind);
                    continue;
                }
                break RunEnd::Exited(code);
            }
            let ran = started.elapsed();
            if let (Kill::AfterEndOfInput(delay), None, true) =
                (kill, kill_at, kind == RunKind::EndOfInput)
            {
                if std::fs::read_to_string(&log).is_ok_and(|t| t.contains(END_OF_INPUT_LOG)) {
                    kill_at = Some(ran + delay);
                }
            }
            if kill_at.is_some_and(|k| ran >= k) {
                child.kill();
                break RunEnd::Killed;
            }
            if kill_at.is_none() && ran > self.final_timeout {
                child.kill();
                panic!(
                    "{}: run {index} ({kind:?}) did not finish within {:?}:\n{}",
                    self.context(),
                    self.final_timeout,
                    read_log(&log)
                );
            }
            let left = kill_at.map_or(Duration::from_millis(5), |k| k.saturating_sub(ran));
            std::thread::sleep(left.min(Duration::from_millis(5)));
        };
        let run = Run {
            index,
            kind,
            end,
            ran_for: started.elapsed(),
            started_at,
            log,
        };
        if let RunEnd::Exited(code) = end {
            assert!(
                code == 0,
                "{}: run {index} ({kind:?}) failed with exit code {code}:\n{}",
                self.context(),
                read_log(&run.log)
            );
        }
        run
    }

    /// Runs the soak: `kills` paced runs killed at random moments, then runs of the final
    /// pipeline killed during the end of the input, then the final run to its end, then one
    /// more resume (which must end at once).
    ///
    /// # Panics
    /// When a run fails (exits with a code other than 0), or a run that is not killed outlasts
    /// the final timeout.
    pub fn run(mut self) -> SoakReport {
        let end_kills = self.end_of_input_kills.unwrap_or(if self.kills == 0 {
            0
        } else {
            self.kills.div_ceil(4)
        });
        eprintln!(
            "soak `{}`: seed {} (replay with WEIR_SOAK_SEED={}), {} kills at {:?} after a start, \
             {end_kills} at {:?} after a task finished its input",
            self.name,
            self.seed,
            self.seed,
            self.kills,
            self.kill_after,
            self.end_of_input_kill_after
        );
        let started = Instant::now();
        let mut rng = SoakRng::new(self.seed);
        let mut runs: Vec<Run> = Vec::new();
        let mut before = self.before_run.take();
        let mut call = |index: usize, kind: RunKind| {
            if let Some(f) = before.as_mut() {
                f(index, kind);
            }
        };
        let mut finished_early = false;
        for index in 0..self.kills as usize {
            let kind = if index == 0 {
                RunKind::Fresh
            } else {
                RunKind::Resumed
            };
            call(index, kind);
            let run = self.run_once(index, kind, Kill::After(rng.duration(&self.kill_after)));
            let end = run.end;
            runs.push(run);
            if end != RunEnd::Killed {
                finished_early = true;
                break;
            }
        }
        let kills = runs.iter().filter(|r| r.end == RunEnd::Killed).count() as u32;
        let mut finished = finished_early;
        let mut end_of_input_killed = 0;
        for _ in 0..end_kills {
            if finished {
                break;
            }
            let index = runs.len();
            call(index, RunKind::EndOfInput);
            let delay = rng.duration(&self.end_of_input_kill_after);
            let run = self.run_once(index, RunKind::EndOfInput, Kill::AfterEndOfInput(delay));
            finished = run.end != RunEnd::Killed;
            end_of_input_killed += u32::from(!finished);
            runs.push(run);
        }
        if !finished {
            let index = runs.len();
            call(index, RunKind::Final);
            runs.push(self.run_once(index, RunKind::Final, Kill::Never));
        }
        let final_stderr = runs.last().map(|r| read_log(&r.log)).unwrap_or_default();
        // Every run that was not killed exited with 0 (`run_once` checks).
        let final_code = 0;
        let index = runs.len();
        call(index, RunKind::AfterFinish);
        runs.push(self.run_once(index, RunKind::AfterFinish, Kill::Never));
        let report = SoakReport {
            name: self.name.clone(),
            context: self.context(),
            seed: self.seed,
            planned_kills: self.kills,
            kills,
            end_of_input_kills: end_of_input_killed,
            finished_early,
            runs,
            final_code,
            final_stderr,
            elapsed: started.elapsed(),
        };
        eprintln!("{}", report.summary());
        report
    }
}

/// What a soak did; the test checks the output itself.
#[derive(Debug, Clone)]
pub struct SoakReport {
    /// The soak's name.
    pub name: String,
    /// Where it ran and how to replay it (for failure messages).
    pub context: String,
    /// The seed of the kill moments.
    pub seed: u64,
    /// The kills asked for.
    pub planned_kills: u32,
    /// The kills done before the end of the input.
    pub kills: u32,
    /// The kills done at the end of the input (after a task finished its input).
    pub end_of_input_kills: u32,
    /// A killed run ended on its own (exit code 0) before its kill: the input ran out early.
    pub finished_early: bool,
    /// Every run, in order.
    pub runs: Vec<Run>,
    /// The exit code of the run that finished the job.
    pub final_code: i32,
    /// The stderr of the run that finished the job (its summary).
    pub final_stderr: String,
    /// The whole soak's duration.
    pub elapsed: Duration,
}

impl SoakReport {
    /// One line per soak: kills, runs, durations.
    pub fn summary(&self) -> String {
        let killed: Vec<Duration> = self
            .runs
            .iter()
            .filter(|r| r.end == RunEnd::Killed && r.kind.paced())
            .map(|r| r.ran_for)
            .collect();
        let mean = if killed.is_empty() {
            Duration::ZERO
        } else {
            killed.iter().sum::<Duration>() / killed.len() as u32
        };
        let fresh = self
            .runs
            .iter()
            .filter(|r| matches!(r.kind, RunKind::Fresh | RunKind::FinalFresh))
            .count();
        let last = self
            .runs
            .iter()
            .rev()
            .find(|r| r.kind != RunKind::AfterFinish)
            .map_or(Duration::ZERO, |r| r.ran_for);
        let mut s = format!(
            "soak `{}`: {} of {} kills (mean {:.2} s into a run; {fresh} runs started fresh), \
             {} kills at the end of the input, final run {:.1} s, {} runs, {:.1} s in all, \
             seed {}",
            self.name,
            self.kills,
            self.planned_kills,
            mean.as_secs_f64(),
            self.end_of_input_kills,
            last.as_secs_f64(),
            self.runs.len(),
            self.elapsed.as_secs_f64(),
            self.seed
        );
        if self.finished_early {
            let _ = write!(s, " (the input ran out before the last kill)");
        }
        s
    }

    /// When the last run that started fresh (without `--from-latest-checkpoint`) started.
    /// Every later run resumed from a checkpoint of its lineage; earlier runs never completed
    /// one.
    pub fn last_fresh_start(&self) -> Option<std::time::SystemTime> {
        self.runs
            .iter()
            .rev()
            .find(|r| matches!(r.kind, RunKind::Fresh | RunKind::FinalFresh))
            .map(|r| r.started_at)
    }

    /// Asserts that every planned kill happened before the end of the input.
    ///
    /// # Panics
    /// When not.
    pub fn assert_finished(&self) {
        assert!(
            !self.finished_early && self.kills == self.planned_kills,
            "{}: only {} of {} kills happened before the job finished on its own: give it more \
             input or pace it",
            self.context,
            self.kills,
            self.planned_kills
        );
        assert_eq!(
            self.final_code, 0,
            "{}: the final run failed:\n{}",
            self.context, self.final_stderr
        );
    }
}

/// Checks that `ids` (read from the output) hold every id of `expected` exactly once and
/// nothing else; the message names up to 20 missing, duplicated and unexpected ids.
///
/// # Panics
/// When they do not.
pub fn assert_exactly_once(context: &str, ids: &[i64], expected: Range<i64>) {
    let mut counts = std::collections::BTreeMap::<i64, u32>::new();
    for id in ids {
        *counts.entry(*id).or_default() += 1;
    }
    let missing: Vec<i64> = expected
        .clone()
        .filter(|id| !counts.contains_key(id))
        .collect();
    let duplicated: Vec<(i64, u32)> = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, n)| (*id, *n))
        .collect();
    let unexpected: Vec<i64> = counts
        .keys()
        .filter(|id| !expected.contains(id))
        .copied()
        .collect();
    assert!(
        missing.is_empty() && duplicated.is_empty() && unexpected.is_empty(),
        "{context}: {} rows read for {} ids; {} missing {:?}, {} duplicated (id, times) {:?}, \
         {} unexpected {:?}",
        ids.len(),
        expected.end - expected.start,
        missing.len(),
        &missing[..missing.len().min(20)],
        duplicated.len(),
        &duplicated[..duplicated.len().min(20)],
        unexpected.len(),
        &unexpected[..unexpected.len().min(20)],
    );
}

/// Whether `weir run --from-latest-checkpoint` refused to start because the job's checkpoint
/// storage holds no checkpoint yet.
fn no_checkpoint_yet(log: &Path) -> bool {
    std::fs::read_to_string(log).is_ok_and(|t| t.contains("there is no checkpoint to restore from"))
}

fn read_log(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    // The tail is what matters; a debug log can be long.
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(200);
    format!("{}:\n{}", path.display(), lines[from..].join("\n"))
}

/// A child process that is SIGKILLed when dropped, so a failing soak leaves no job behind.
pub struct KillOnDrop(pub Option<Child>);

impl KillOnDrop {
    /// The running child.
    pub fn get(&mut self) -> &mut Child {
        self.0.as_mut().unwrap()
    }

    /// SIGKILL (what `Child::kill` sends on Unix) and reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.kill();
    }
}

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
    /// The last run, resumed and left to finish.
    Final,
    /// The last run, started fresh because no checkpoint completed before the last kill.
    FinalFresh,
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
    /// Its stderr (the stdout file is beside it, `.out` instead of `.err`).
    pub log: PathBuf,
}

/// Called before every run, with its index and kind (e.g. to produce the next input chunk).
pub type BeforeRun = Box<dyn FnMut(usize, RunKind)>;

/// A kill/resume soak of one pipeline. See the [module docs](self).
pub struct Soak {
    name: String,
    dir: PathBuf,
    pipeline: String,
    final_pipeline: Option<String>,
    kills: u32,
    seed: u64,
    kill_after: Range<Duration>,
    final_timeout: Duration,
    args: Vec<String>,
    before_run: Option<BeforeRun>,
}

impl Soak {
    /// A soak named `name` (for messages) running `weir run <pipeline>` in `dir`, with kills and
    /// seed from the environment, kill moments 0–1.5 s after each start, and 5 min for the
    /// final run.
    pub fn new(name: &str, dir: &Path, pipeline: &str) -> Self {
        Soak {
            name: name.to_owned(),
            dir: dir.to_path_buf(),
            pipeline: pipeline.to_owned(),
            final_pipeline: None,
            kills: kills_from_env(),
            seed: seed_from_env(),
            kill_after: Duration::ZERO..Duration::from_millis(1500),
            final_timeout: Duration::from_secs(300),
            args: vec!["--progress".to_owned(), "quiet".to_owned()],
            before_run: None,
        }
    }

    /// Kills each run this long after its start, drawn uniformly from `range`.
    pub fn kill_after(mut self, range: Range<Duration>) -> Self {
        self.kill_after = range;
        self
    }

    /// Runs another pipeline file for the final run (e.g. the same job without its rate limit,
    /// so that the rest of the input goes through quickly). It must keep every operator and
    /// connector of the first, or the restore fails.
    pub fn final_pipeline(mut self, pipeline: &str) -> Self {
        self.final_pipeline = Some(pipeline.to_owned());
        self
    }

    /// The number of kills (instead of `WEIR_SOAK_KILLS`).
    pub fn kills(mut self, kills: u32) -> Self {
        self.kills = kills;
        self
    }

    /// The number of kills this soak will do.
    pub fn planned_kills(&self) -> u32 {
        self.kills
    }

    /// The seed (instead of `WEIR_SOAK_SEED`).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// How long the final run may take before the soak fails.
    pub fn final_timeout(mut self, timeout: Duration) -> Self {
        self.final_timeout = timeout;
        self
    }

    /// More arguments for every `weir run` (default: `--progress quiet`).
    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_owned());
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
        let pipeline = match (kind, &self.final_pipeline) {
            (RunKind::Final | RunKind::FinalFresh, Some(p)) => p.as_str(),
            _ => self.pipeline.as_str(),
        };
        let mut cmd = super::weir();
        cmd.current_dir(&self.dir).args(["run", pipeline]);
        if matches!(kind, RunKind::Resumed | RunKind::Final) {
            cmd.arg("--from-latest-checkpoint");
        }
        cmd.args(&self.args)
            .stdout(Stdio::from(File::create(&out).unwrap()))
            .stderr(Stdio::from(File::create(&err).unwrap()));
        (KillOnDrop(Some(cmd.spawn().expect("weir starts"))), err)
    }

    fn start_or_fresh(&self, index: usize, kind: RunKind) -> (RunKind, KillOnDrop, PathBuf) {
        let (child, log) = self.start(index, kind);
        (kind, child, log)
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

    /// Runs the soak: `kills` killed runs, then the final one to its end.
    ///
    /// # Panics
    /// When a run fails (exits with a code other than 0), or the final run outlasts its timeout.
    pub fn run(mut self) -> SoakReport {
        eprintln!(
            "soak `{}`: seed {} (replay with WEIR_SOAK_SEED={}), {} kills, kill moments {:?}",
            self.name, self.seed, self.seed, self.kills, self.kill_after
        );
        let started = Instant::now();
        let mut rng = SoakRng::new(self.seed);
        let mut runs = Vec::new();
        let mut before = self.before_run.take();
        let mut finished_early = false;
        for index in 0..self.kills as usize {
            let kind = if index == 0 {
                RunKind::Fresh
            } else {
                RunKind::Resumed
            };
            if let Some(f) = before.as_mut() {
                f(index, kind);
            }
            let delay = rng.duration(&self.kill_after);
            let (mut kind, mut child, mut log) = self.start_or_fresh(index, kind);
            let run_start = Instant::now();
            let deadline = run_start + delay;
            let end = loop {
                if let Some(status) = child.get().try_wait().unwrap() {
                    let code = status.code().unwrap_or(-1);
                    if kind == RunKind::Resumed && no_checkpoint_yet(&log) {
                        // Refused at once: no checkpoint completed before the last kill.
                        (kind, child, log) = self.start_or_fresh(index, RunKind::Fresh);
                        continue;
                    }
                    break RunEnd::Exited(code);
                }
                let now = Instant::now();
                if now >= deadline {
                    child.kill();
                    break RunEnd::Killed;
                }
                std::thread::sleep((deadline - now).min(Duration::from_millis(5)));
            };
            let ran_for = run_start.elapsed();
            runs.push(Run {
                index,
                kind,
                end,
                ran_for,
                log: log.clone(),
            });
            match end {
                RunEnd::Killed => {}
                RunEnd::Exited(0) => {
                    finished_early = true;
                    break;
                }
                RunEnd::Exited(code) => panic!(
                    "{}: run {index} ({kind:?}) failed with exit code {code} before its kill \
                     at {delay:?}:\n{}",
                    self.context(),
                    read_log(&log)
                ),
            }
        }
        let kills = runs.iter().filter(|r| r.end == RunEnd::Killed).count() as u32;
        let (final_code, final_stderr) = if finished_early {
            let last = runs.last().map(|r| read_log(&r.log)).unwrap_or_default();
            (0, last)
        } else {
            let index = runs.len();
            if let Some(f) = before.as_mut() {
                f(index, RunKind::Final);
            }
            let (mut child, mut log) = self.start(index, RunKind::Final);
            let mut resumed = true;
            let run_start = Instant::now();
            let code = loop {
                if let Some(status) = child.get().try_wait().unwrap() {
                    if resumed && status.code() != Some(0) && no_checkpoint_yet(&log) {
                        (child, log) = self.start(index, RunKind::FinalFresh);
                        resumed = false;
                        continue;
                    }
                    break status.code().unwrap_or(-1);
                }
                if run_start.elapsed() > self.final_timeout {
                    child.kill();
                    panic!(
                        "{}: the final run did not finish within {:?}:\n{}",
                        self.context(),
                        self.final_timeout,
                        read_log(&log)
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            runs.push(Run {
                index,
                kind: if resumed {
                    RunKind::Final
                } else {
                    RunKind::FinalFresh
                },
                end: RunEnd::Exited(code),
                ran_for: run_start.elapsed(),
                log: log.clone(),
            });
            (code, read_log(&log))
        };
        let report = SoakReport {
            name: self.name.clone(),
            context: self.context(),
            seed: self.seed,
            planned_kills: self.kills,
            kills,
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
    /// The kills done.
    pub kills: u32,
    /// A killed run ended on its own (exit code 0) before its kill: the input ran out early.
    pub finished_early: bool,
    /// Every run, in order.
    pub runs: Vec<Run>,
    /// The exit code of the last run.
    pub final_code: i32,
    /// The stderr of the last run (its summary).
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
            .filter(|r| r.end == RunEnd::Killed)
            .map(|r| r.ran_for)
            .collect();
        let mean = if killed.is_empty() {
            Duration::ZERO
        } else {
            killed.iter().sum::<Duration>() / killed.len() as u32
        };
        let last = self.runs.last().map_or(Duration::ZERO, |r| r.ran_for);
        let mut s = format!(
            "soak `{}`: {} of {} kills (mean {:.2} s into a run), final run {:.1} s, exit code {}, \
             {:.1} s in all, seed {}",
            self.name,
            self.kills,
            self.planned_kills,
            mean.as_secs_f64(),
            last.as_secs_f64(),
            self.final_code,
            self.elapsed.as_secs_f64(),
            self.seed
        );
        if self.finished_early {
            let _ = write!(s, " (the input ran out before the last kill)");
        }
        s
    }

    /// Asserts that every planned kill happened and the final run exited with code 0.
    ///
    /// # Panics
    /// When either is not so.
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

/// A child process that is SIGKILLed if the soak panics while it runs.
struct KillOnDrop(Option<Child>);

impl KillOnDrop {
    fn get(&mut self) -> &mut Child {
        self.0.as_mut().unwrap()
    }

    /// SIGKILL (what `Child::kill` sends on Unix) and reap.
    fn kill(&mut self) {
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

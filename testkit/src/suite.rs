//! What the source suite, the sink suite and the golden checks share: a context seen through
//! what both context traits have ([`Subject`]), the jobs of a run and where their savepoints
//! go ([`Jobs`]), building a job, and the frame of one case (its report, setup, the case,
//! teardown).

use std::path::PathBuf;
use std::time::Instant;

use weir_runtime::{Job, StreamEnvironment};

use crate::case::SuiteKind;
use crate::check::{Finding, FindingKind, Semantic};
use crate::context::{ContextError, SinkContext, SourceContext, TestInfo};
use crate::harness::{context_finding, SuiteConfig};
use crate::report::CaseReport;

/// A step of a case: a failed step is the finding that says why.
pub(crate) type Step<T = ()> = Result<T, Finding>;

/// A source context, as the code both suites share sees it.
pub(crate) struct AsSource<'a, C>(pub(crate) &'a mut C);

/// A sink context, as the code both suites share sees it.
pub(crate) struct AsSink<'a, C>(pub(crate) &'a mut C);

/// What [`SourceContext`] and [`SinkContext`] both have.
pub(crate) trait Subject {
    /// The suite of the context's trait.
    const SUITE: SuiteKind;

    /// The connector's name in reports.
    fn name(&self) -> String;

    /// Creates the test's resources.
    async fn setup(&mut self, info: &TestInfo) -> Result<(), ContextError>;

    /// Removes the test's resources.
    async fn teardown(&mut self, info: &TestInfo) -> Result<(), ContextError>;
}

/// `Subject` for a wrapper of a context trait: the trait's own methods.
macro_rules! subject {
    ($wrapper:ident, $context:ident, $suite:ident) => {
        impl<C: $context> Subject for $wrapper<'_, C> {
            const SUITE: SuiteKind = SuiteKind::$suite;

            fn name(&self) -> String {
                self.0.name()
            }

            async fn setup(&mut self, info: &TestInfo) -> Result<(), ContextError> {
                self.0.setup(info).await
            }

            async fn teardown(&mut self, info: &TestInfo) -> Result<(), ContextError> {
                self.0.teardown(info).await
            }
        }
    };
}

subject!(AsSource, SourceContext, Source);
subject!(AsSink, SinkContext, Sink);

/// The start of a case of `subject`'s suite: when it started, its seed and its report.
pub(crate) fn open_case<S: Subject>(
    subject: &S,
    case: &str,
    semantic: Semantic,
    config: &SuiteConfig,
) -> (Instant, u64, CaseReport) {
    let started = Instant::now();
    let seed = config.case_seed(case);
    let report = CaseReport::new(&subject.name(), S::SUITE, case, Some(semantic), seed);
    (started, seed, report)
}

/// Runs one case around `body`: sets the context up for `info` (a failure ends the case),
/// runs `body` (which returns the case's findings and notes), tears the context down (a failure
/// is one more finding) and completes `report`.
pub(crate) async fn in_context<S: Subject>(
    subject: &mut S,
    info: &TestInfo,
    mut report: CaseReport,
    started: Instant,
    body: impl AsyncFnOnce(&mut S) -> (Vec<Finding>, Vec<String>),
) -> CaseReport {
    if let Err(e) = subject.setup(info).await {
        report.findings.push(context_finding("setup", &e));
        return report.finish(started);
    }
    let (mut findings, notes) = body(subject).await;
    report.notes = notes;
    if let Err(e) = subject.teardown(info).await {
        findings.push(context_finding("teardown", &e));
    }
    report.findings = findings;
    report.finish(started)
}

/// The jobs of a run: how many it started (each is named after its number) and where their
/// savepoints go.
#[derive(Default)]
pub(crate) struct Jobs {
    /// Jobs started so far.
    started: u32,
    /// Where every savepoint goes, when set (a golden's directory).
    pub(crate) savepoint_at: Option<PathBuf>,
    /// Else: a temporary directory, made on first use.
    temporary: Option<tempfile::TempDir>,
}

impl Jobs {
    /// The name of the next job of `suite`'s runs: `<suite>-suite-<number>`.
    pub(crate) fn next_name(&mut self, suite: SuiteKind) -> String {
        self.started += 1;
        format!("{suite}-suite-{}", self.started)
    }

    /// The directory for the savepoint of the latest job.
    pub(crate) fn savepoint_dir(&mut self) -> Step<PathBuf> {
        if let Some(at) = self.savepoint_at.clone() {
            return Ok(at);
        }
        if self.temporary.is_none() {
            self.temporary = Some(tempfile::tempdir().map_err(|e| {
                Finding::new(
                    FindingKind::Context,
                    format!("creating a temporary directory: {e}"),
                )
            })?);
        }
        let base = self
            .temporary
            .as_ref()
            .map_or_else(std::env::temp_dir, |d| d.path().to_path_buf());
        Ok(base.join(format!("savepoint-{}", self.started)))
    }
}

/// Builds the job of `env`; a graph the runtime refuses is a finding.
pub(crate) fn build_job(env: StreamEnvironment) -> Step<Job> {
    env.build().map_err(|e| {
        Finding::new(
            FindingKind::JobFailed,
            format!("building the job failed: {e}"),
        )
    })
}

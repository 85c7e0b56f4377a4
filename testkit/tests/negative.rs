//! Deliberately broken connectors: the suites must catch each of them, with the right finding.
//!
//! - a source reader that forgets to snapshot its progress (it checkpoints its splits as they
//!   were assigned) → duplicates after every restore;
//! - a sink whose committer is not idempotent (it publishes a transaction again when a commit
//!   is retried after a failure) → duplicates under failures during commit;
//! - a sink that loses the records written after its last prepare (it drops its buffer at end
//!   of input), and reports no `numRecordsSend` → missing records, a metric finding.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ops::Range;
use std::sync::Arc;
use std::task::{Context, Poll};

use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::error::Result;
use weir_connector_api::sink::{
    CommitRequest, Committer, CommittingSinkWriter, FlushMode, InitContext, Sink, SinkCapabilities,
    SinkWriter, SupportsCommitter, WriteContext,
};
use weir_connector_api::source::{
    Boundedness, EnumeratorContextOf, EnumeratorState, InputStatus, ReaderOutput, Source,
    SourceEvent, SourceReader, SourceReaderContext,
};
use weir_connector_api::state::{StringSerializer, VersionedSerializer};
use weir_testkit::prelude::*;
use weir_testkit::reference::{
    DatagenContext, FakeLogContext, FakeTransactionalStore, FakeTxnSink, FakeTxnWriter,
    ReferenceSinkContext,
};
use weir_testkit::{
    run_sink_case, run_source_case, CaseReport, FindingKind, SinkCase, SourceCase, SuiteConfig,
};

fn config() -> SuiteConfig {
    SuiteConfig::default().write_reports(false)
}

fn assert_caught(report: &CaseReport, kind: FindingKind) {
    println!("{report}");
    assert!(report.failed(), "the suite missed the bug:\n{report}");
    assert!(report.has(kind), "expected a {kind} finding:\n{report}");
    for f in &report.findings {
        assert!(f.message.len() < 600, "findings must stay concise: {f}");
    }
}

// ---- a source reader that forgets to snapshot its progress ----

/// Wraps any source; its reader checkpoints the splits as they were assigned, not as far as it
/// read them.
struct ForgetfulSource<S>(S);

struct ForgetfulReader<R: SourceReader> {
    inner: R,
    assigned: Vec<R::Split>,
}

#[async_trait]
impl<R: SourceReader> SourceReader for ForgetfulReader<R> {
    type Output = R::Output;
    type Split = R::Split;

    fn start(&mut self) -> Result<()> {
        self.inner.start()
    }
    fn poll_next<O: ReaderOutput<R::Output>>(&mut self, output: &mut O) -> Result<InputStatus> {
        self.inner.poll_next(output)
    }
    fn poll_available(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.inner.poll_available(cx)
    }
    fn snapshot_state(&mut self, checkpoint_id: CheckpointId) -> Result<Vec<R::Split>> {
        self.inner.snapshot_state(checkpoint_id)?;
        Ok(self.assigned.clone()) // BUG: the progress is forgotten
    }
    fn add_splits(&mut self, splits: Vec<R::Split>) -> Result<()> {
        self.assigned.extend(splits.iter().cloned());
        self.inner.add_splits(splits)
    }
    fn notify_no_more_splits(&mut self) {
        self.inner.notify_no_more_splits();
    }
    fn handle_source_event(&mut self, event: SourceEvent) -> Result<()> {
        self.inner.handle_source_event(event)
    }
    fn notify_checkpoint_complete(&mut self, checkpoint_id: CheckpointId) -> Result<()> {
        self.inner.notify_checkpoint_complete(checkpoint_id)
    }
    async fn close(&mut self) -> Result<()> {
        self.inner.close().await
    }
}

impl<S: Source> Source for ForgetfulSource<S> {
    type Output = S::Output;
    type Split = S::Split;
    type Reader = ForgetfulReader<S::Reader>;
    type Enumerator = S::Enumerator;

    fn boundedness(&self) -> Boundedness {
        self.0.boundedness()
    }
    fn create_reader(&self, ctx: Arc<dyn SourceReaderContext>) -> Result<Self::Reader> {
        Ok(ForgetfulReader {
            inner: self.0.create_reader(ctx)?,
            assigned: Vec::new(),
        })
    }
    fn create_enumerator(&self, ctx: EnumeratorContextOf<Self>) -> Result<S::Enumerator> {
        self.0.create_enumerator(ctx)
    }
    fn restore_enumerator(
        &self,
        ctx: EnumeratorContextOf<Self>,
        state: EnumeratorState<Self>,
    ) -> Result<S::Enumerator> {
        self.0.restore_enumerator(ctx, state)
    }
    fn split_serializer(&self) -> Arc<dyn VersionedSerializer<S::Split>> {
        self.0.split_serializer()
    }
    fn enumerator_state_serializer(&self) -> Arc<dyn VersionedSerializer<EnumeratorState<Self>>> {
        self.0.enumerator_state_serializer()
    }
}

/// Any source context, with its source made forgetful.
struct Forgetful<C>(C);

#[async_trait]
impl<C: SourceContext> SourceContext for Forgetful<C> {
    type Record = C::Record;
    type Source = ForgetfulSource<C::Source>;

    fn name(&self) -> String {
        format!("forgetful-{}", self.0.name())
    }
    fn support(&self) -> SourceSupport {
        self.0.support()
    }
    async fn setup(&mut self, test: &TestInfo) -> std::result::Result<(), ContextError> {
        self.0.setup(test).await
    }
    async fn teardown(&mut self, test: &TestInfo) -> std::result::Result<(), ContextError> {
        self.0.teardown(test).await
    }
    fn create_source(
        &self,
        settings: &SourceSettings,
    ) -> std::result::Result<Self::Source, ContextError> {
        Ok(ForgetfulSource(self.0.create_source(settings)?))
    }
    async fn create_split_writer(
        &mut self,
        settings: &SourceSettings,
        split: usize,
    ) -> std::result::Result<Box<dyn SplitWriter<C::Record>>, ContextError> {
        self.0.create_split_writer(settings, split).await
    }
    fn records(&self, settings: &SourceSettings, split: usize, at: Range<u64>) -> Vec<C::Record> {
        self.0.records(settings, split, at)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_forgets_its_progress_is_caught_after_failover_and_savepoints() {
    let config = config();
    let mut ctx = Forgetful(DatagenContext::new());
    // Nothing is restored here: the bug cannot show, and the suite does not invent findings.
    let clean = run_source_case(
        &mut ctx,
        SourceCase::SingleSplitBounded,
        Semantic::ExactlyOnce,
        &config,
    )
    .await;
    assert!(clean.passed(), "{clean}");
    for case in [
        SourceCase::FailoverBounded,
        SourceCase::SavepointBounded,
        SourceCase::ScaleUp,
    ] {
        let report = run_source_case(&mut ctx, case, Semantic::ExactlyOnce, &config).await;
        assert_caught(&report, FindingKind::Duplicated);
    }
    // Re-reading from the start is legal at-least-once behaviour: duplicates of real records.
    let alo = run_source_case(
        &mut ctx,
        SourceCase::FailoverBounded,
        Semantic::AtLeastOnce,
        &config,
    )
    .await;
    assert!(alo.passed(), "{alo}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgetful_reader_of_written_data_is_caught_too() {
    let mut ctx = Forgetful(FakeLogContext::new());
    let report = run_source_case(
        &mut ctx,
        SourceCase::FailoverUnbounded,
        Semantic::ExactlyOnce,
        &config(),
    )
    .await;
    assert_caught(&report, FindingKind::Duplicated);
}

// ---- a sink whose committer is not idempotent ----

/// The reference writer, with a committer that publishes every request, even a transaction that
/// was committed before a failure.
struct RepublishingSink(FakeTxnSink<SplitRecord>);

struct RepublishingCommitter(Arc<FakeTransactionalStore<SplitRecord>>);

#[async_trait]
impl Committer<String> for RepublishingCommitter {
    async fn commit(&mut self, requests: &mut [CommitRequest<String>]) -> Result<()> {
        for r in requests.iter_mut() {
            self.0.publish_unconditionally(r.committable()); // BUG: not idempotent
        }
        Ok(())
    }
}

impl Sink<SplitRecord> for RepublishingSink {
    type Writer = FakeTxnWriter<SplitRecord>;
    fn create_writer(&self, ctx: &dyn InitContext) -> Result<Self::Writer> {
        self.0.create_writer(ctx)
    }
    fn capabilities(self: Arc<Self>) -> SinkCapabilities<SplitRecord, Self::Writer> {
        SinkCapabilities::none().with_committer(self)
    }
}

impl SupportsCommitter<SplitRecord> for RepublishingSink {
    type Committable = String;
    type Committer = RepublishingCommitter;
    fn create_committer(&self, _ctx: &dyn InitContext) -> Result<RepublishingCommitter> {
        Ok(RepublishingCommitter(Arc::clone(self.0.store())))
    }
    fn committable_serializer(&self) -> Arc<dyn VersionedSerializer<String>> {
        Arc::new(StringSerializer)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committer_that_is_not_idempotent_is_caught_by_fault_injection() {
    let config = config().fault_trials(10);
    let mut ctx = ReferenceSinkContext::with_sink(
        "republishing-sink",
        SinkSupport::exactly_once().ordered(),
        |store| RepublishingSink(FakeTxnSink::new(store)),
    );
    // Without failures nothing is committed twice.
    let basic = run_sink_case(&mut ctx, SinkCase::Basic, Semantic::ExactlyOnce, &config).await;
    assert!(basic.passed(), "{basic}");
    let report = run_sink_case(
        &mut ctx,
        SinkCase::ExactlyOnceUnderFaults,
        Semantic::ExactlyOnce,
        &config,
    )
    .await;
    assert_caught(&report, FindingKind::Duplicated);
    // Any restore re-commits what its checkpoint left pending; the finding names the trial.
    let first = &report.findings[0].message;
    assert!(
        first.starts_with("trial ") && !first.contains("fired never"),
        "the finding names a trial whose failure fired: {first}"
    );
}

// ---- a sink that loses the records written after its last prepare ----

struct LossySink(Arc<FakeTransactionalStore<SplitRecord>>);

struct LossyWriter {
    store: Arc<FakeTransactionalStore<SplitRecord>>,
    prefix: String,
    seq: u64,
    buffer: Vec<SplitRecord>,
    open: bool,
}

#[async_trait]
impl SinkWriter<SplitRecord> for LossyWriter {
    fn write(&mut self, element: SplitRecord, _ctx: &WriteContext) -> Result<()> {
        self.buffer.push(element);
        Ok(())
    }
    async fn flush(&mut self, mode: FlushMode) -> Result<()> {
        if mode == FlushMode::EndOfInput {
            self.buffer.clear(); // BUG: the tail after the last checkpoint is dropped
            return Ok(());
        }
        if !self.buffer.is_empty() {
            let txn = format!("{}-{}", self.prefix, self.seq);
            self.store.write(&txn, self.buffer.drain(..))?;
            self.open = true;
        }
        Ok(())
    }
}

#[async_trait]
impl CommittingSinkWriter<SplitRecord> for LossyWriter {
    type Committable = String;
    async fn prepare_commit(&mut self) -> Result<Vec<String>> {
        if !self.open {
            return Ok(Vec::new());
        }
        let txn = format!("{}-{}", self.prefix, self.seq);
        self.store.prepare(&txn);
        self.seq += 1;
        self.open = false;
        Ok(vec![txn])
    }
}

impl Sink<SplitRecord> for LossySink {
    type Writer = LossyWriter;
    fn create_writer(&self, ctx: &dyn InitContext) -> Result<LossyWriter> {
        Ok(LossyWriter {
            store: Arc::clone(&self.0),
            prefix: format!(
                "{}-{:x}-{}-{}",
                ctx.operator_id(),
                rand::random::<u64>(),
                ctx.subtask_index(),
                ctx.attempt()
            ),
            seq: 0,
            buffer: Vec::new(),
            open: false,
        })
    }
    fn capabilities(self: Arc<Self>) -> SinkCapabilities<SplitRecord, LossyWriter> {
        SinkCapabilities::none().with_committer(self)
    }
}

impl SupportsCommitter<SplitRecord> for LossySink {
    type Committable = String;
    type Committer = weir_testkit::reference::FakeTxnCommitter<SplitRecord>;
    fn create_committer(&self, _ctx: &dyn InitContext) -> Result<Self::Committer> {
        Ok(weir_testkit::reference::FakeTxnCommitter::new(Arc::clone(
            &self.0,
        )))
    }
    fn committable_serializer(&self) -> Arc<dyn VersionedSerializer<String>> {
        Arc::new(StringSerializer)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_that_loses_its_last_records_is_caught() {
    let config = config();
    let mut ctx = ReferenceSinkContext::with_sink(
        "lossy-sink",
        SinkSupport::exactly_once().ordered(),
        LossySink,
    );
    let report = run_sink_case(
        &mut ctx,
        SinkCase::StartFromSavepoint,
        Semantic::ExactlyOnce,
        &config,
    )
    .await;
    assert_caught(&report, FindingKind::Missing);
    let basic = run_sink_case(&mut ctx, SinkCase::Basic, Semantic::AtLeastOnce, &config).await;
    assert_caught(&basic, FindingKind::Missing);
    // It also never reports numRecordsSend.
    let metrics = run_sink_case(&mut ctx, SinkCase::Metrics, Semantic::ExactlyOnce, &config).await;
    assert_caught(&metrics, FindingKind::Metric);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_and_implied_cases_are_reported_not_applicable_with_the_reason() {
    let config = config();
    let mut ctx = DatagenContext::new();
    let report = run_source_case(
        &mut ctx,
        SourceCase::SavepointWriteMore,
        Semantic::ExactlyOnce,
        &config,
    )
    .await;
    assert_eq!(report.status, weir_testkit::CaseStatus::NotApplicable);
    assert!(
        report
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("no external system"),
        "{report}"
    );

    let mut sink = ReferenceSinkContext::with_sink(
        "at-least-once-sink",
        SinkSupport::at_least_once().not_applicable(SinkCase::Metrics, "it has no writer metrics"),
        FakeTxnSink::new,
    );
    let eo = run_sink_case(
        &mut sink,
        SinkCase::ExactlyOnceUnderFaults,
        Semantic::ExactlyOnce,
        &config,
    )
    .await;
    assert_eq!(eo.status, weir_testkit::CaseStatus::NotApplicable);
    assert!(
        eo.reason.as_deref().unwrap_or("").contains("at-least-once"),
        "{eo}"
    );
    let metrics = run_sink_case(&mut sink, SinkCase::Metrics, Semantic::ExactlyOnce, &config).await;
    assert_eq!(
        metrics.reason.as_deref(),
        Some("declared by the connector: it has no writer metrics")
    );
}

#[test]
#[should_panic(expected = "duplicated: ")]
fn a_caught_bug_fails_the_generated_test_with_its_findings() {
    // What the suite macros call for each case.
    weir_testkit::__private::source_case(
        || Forgetful(DatagenContext::new()),
        SourceCase::SavepointBounded,
        Semantic::ExactlyOnce,
        &config(),
        &weir_testkit::__private::crate_info("broken", "0.0.0", env!("CARGO_MANIFEST_DIR")),
    );
}

// ---- a sink whose store never answers at the end of input ----

/// Its writer's final flush waits forever, as a writer does on a store that accepts
/// connections and never answers.
struct HangingSink;

struct HangingWriter;

#[async_trait]
impl SinkWriter<SplitRecord> for HangingWriter {
    fn write(&mut self, _element: SplitRecord, _ctx: &WriteContext) -> Result<()> {
        Ok(())
    }
    async fn flush(&mut self, mode: FlushMode) -> Result<()> {
        if mode == FlushMode::EndOfInput {
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

impl Sink<SplitRecord> for HangingSink {
    type Writer = HangingWriter;
    fn create_writer(&self, _ctx: &dyn InitContext) -> Result<HangingWriter> {
        Ok(HangingWriter)
    }
    fn capabilities(self: Arc<Self>) -> SinkCapabilities<SplitRecord, HangingWriter> {
        SinkCapabilities::none()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_hangs_is_reported_with_what_it_was_doing() {
    let config = config().wait_timeout(std::time::Duration::from_secs(2));
    let mut ctx =
        ReferenceSinkContext::with_sink("hanging-sink", SinkSupport::at_least_once(), |_store| {
            HangingSink
        });
    let report = run_sink_case(&mut ctx, SinkCase::Basic, Semantic::AtLeastOnce, &config).await;
    assert_caught(&report, FindingKind::Timeout);
    let message = &report.findings[0].message;
    // The finding says what the job was doing: running, its checkpoints, and every record
    // having reached the writer (whose final flush never returns).
    assert!(message.contains("it was: Running"), "{message}");
    assert!(message.contains("checkpoint(s) durable"), "{message}");
    let records = config.records_per_split * 2;
    assert!(
        message.contains(&format!("in {records}")),
        "the writer's task read every record: {message}"
    );
}

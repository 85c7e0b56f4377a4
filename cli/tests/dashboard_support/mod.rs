//! A real job for the dashboard tests, on the embedded runtime with its dashboard server: a
//! source whose name is markup, a sink that fails once (a failover), a checkpoint storage fake
//! that refuses one checkpoint (a failed checkpoint with its reason); and HTTP helpers.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod cdp;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::sink::{FlushMode, InitContext, Sink, SinkWriter, WriteContext};
use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_runtime::dashboard::DashboardServer;
use weir_runtime::restart::RestartStrategy;
use weir_runtime::storage::{
    CheckpointLocation, CheckpointMetadata, CheckpointStorage, MemoryCheckpointStorage,
    StorageError,
};
use weir_runtime::{CheckpointConfig, JobConfig, JobHandle, SinkOptions, StorageConfig};
use weir_testkit::servers::http::{request, HttpResponse};

/// The source's name: markup that must show as text.
pub const MARKUP_NAME: &str =
    "<script>alert(1)</script><img src=x onerror=\"document.body.dataset.pwned='yes'\">";
/// The reason the storage fake gives for the checkpoint it refuses.
pub const REFUSAL: &str = "disk full (injected by the dashboard test's storage fake)";
/// The sink's failure, the failover's root cause.
pub const SINK_FAILURE: &str = "the dashboard test's sink failed on purpose";
/// The checkpoint the storage fake refuses.
const REFUSED_CHECKPOINT: u64 = 3;

/// A checkpoint storage fake: memory, but refuses to write one checkpoint.
#[derive(Debug, Default)]
struct RefusingStorageFake {
    inner: MemoryCheckpointStorage,
}

#[async_trait::async_trait]
impl CheckpointStorage for RefusingStorageFake {
    async fn write_checkpoint(
        &self,
        metadata: &CheckpointMetadata,
    ) -> std::result::Result<CheckpointLocation, StorageError> {
        if metadata.checkpoint_id == REFUSED_CHECKPOINT {
            return Err(StorageError::Io {
                path: "fake".into(),
                action: "write",
                source: std::io::Error::other(REFUSAL),
            });
        }
        self.inner.write_checkpoint(metadata).await
    }
    async fn list_checkpoints(
        &self,
    ) -> std::result::Result<Vec<(u64, CheckpointLocation)>, StorageError> {
        self.inner.list_checkpoints().await
    }
    async fn read(
        &self,
        location: &CheckpointLocation,
    ) -> std::result::Result<CheckpointMetadata, StorageError> {
        self.inner.read(location).await
    }
    async fn discard(
        &self,
        location: &CheckpointLocation,
    ) -> std::result::Result<(), StorageError> {
        self.inner.discard(location).await
    }
    fn describe(&self) -> String {
        format!("memory (a test fake that refuses checkpoint {REFUSED_CHECKPOINT})")
    }
}

/// A sink whose subtask 0 fails at its 1500th record in the first attempt.
struct FailsOnceSink;

struct FailsOnceWriter {
    armed: bool,
    written: u64,
}

#[async_trait::async_trait]
impl SinkWriter<u64> for FailsOnceWriter {
    fn write(&mut self, _element: u64, _ctx: &WriteContext) -> Result<()> {
        self.written += 1;
        if self.armed && self.written == 1500 {
            return Err(ConnectorError::fatal("writing", SINK_FAILURE));
        }
        Ok(())
    }
    async fn flush(&mut self, _mode: FlushMode) -> Result<()> {
        Ok(())
    }
}

impl Sink<u64> for FailsOnceSink {
    type Writer = FailsOnceWriter;
    fn create_writer(&self, ctx: &dyn InitContext) -> Result<FailsOnceWriter> {
        Ok(FailsOnceWriter {
            armed: ctx.attempt() == 0 && ctx.subtask_index() == 0,
            written: 0,
        })
    }
}

/// The job and its dashboard; dropping it cancels the job.
pub struct DashboardJob {
    pub rt: tokio::runtime::Runtime,
    pub handle: Option<JobHandle>,
    pub server: DashboardServer,
    pub records: Arc<AtomicU64>,
}

impl DashboardJob {
    /// Starts the job (2000 records a second, checkpoints every 200 ms) and the dashboard on a
    /// free loopback port.
    pub fn start() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let records = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&records);
        let (handle, server) = rt.block_on(async move {
            let mut checkpoints = CheckpointConfig::every(Duration::from_millis(200));
            checkpoints.tolerable_failures = 100;
            let env = weir_runtime::StreamEnvironment::new(
                JobConfig::new("dashboard-test")
                    .parallelism(2)
                    .checkpointing(checkpoints)
                    .storage(StorageConfig::Custom(Arc::new(
                        RefusingStorageFake::default(),
                    )))
                    .restart(RestartStrategy::FixedDelay {
                        attempts: 3,
                        delay: Duration::from_millis(200),
                    }),
            );
            env.from_source(
                DataGeneratorSource::new(|n| n, None, RateLimiterStrategy::per_second(2000.0)),
                WatermarkStrategy::no_watermarks(),
                MARKUP_NAME,
            )
            .uid("orders")
            .map(move |n| {
                counted.fetch_add(1, Ordering::Relaxed);
                n
            })
            .rebalance()
            .sink_to_with(
                FailsOnceSink,
                &SinkOptions {
                    uid: Some("checked-sink".into()),
                    ..SinkOptions::default()
                },
            );
            let job = env.build().unwrap();
            let server = DashboardServer::bind("127.0.0.1:0".parse().unwrap(), None)
                .await
                .unwrap();
            let handle = job.start();
            server.attach(handle.monitor());
            (handle, server)
        });
        DashboardJob {
            rt,
            handle: Some(handle),
            server,
            records,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr())
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> HttpResponse {
        get(self.addr(), path)
    }

    /// `GET /api/v1/job`, parsed.
    pub fn job(&self) -> serde_json::Value {
        let response = self.get("/api/v1/job");
        assert_eq!(response.status, 200, "{}", response.text());
        serde_json::from_slice(&response.body).unwrap()
    }

    /// Reads `/api/v1/job` until `done` holds; fails after 30 s saying `what` was awaited.
    pub fn job_until(
        &self,
        what: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let job = self.job();
            if done(&job) {
                return job;
            }
            assert!(Instant::now() < deadline, "no {what} after 30 s: {job:#}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for DashboardJob {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.cancel();
            let _ = self.rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(10), handle.wait()).await
            });
        }
    }
}

/// `GET path` on `addr` (Host: the address).
pub fn get(addr: SocketAddr, path: &str) -> HttpResponse {
    request(addr, "GET", path, &[], &[], Duration::from_secs(10)).unwrap()
}

/// The checkpoints of `job` that failed with the storage fake's refusal.
pub fn refused(job: &serde_json::Value) -> Vec<&serde_json::Value> {
    job["checkpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| {
            c["status"] == "failed"
                && c["failure_reason"]
                    .as_str()
                    .is_some_and(|r| r.contains(REFUSAL))
        })
        .collect()
}

/// The failovers of `job` caused by the sink.
pub fn sink_failovers(job: &serde_json::Value) -> Vec<&serde_json::Value> {
    job["failovers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| {
            f["root_cause"]
                .as_str()
                .is_some_and(|r| r.contains(SINK_FAILURE))
        })
        .collect()
}

/// Records read by the source's subtasks, per the API.
pub fn source_records(job: &serde_json::Value) -> u64 {
    job["subtasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["task"] == "orders")
        .filter_map(|s| s["records_in"].as_u64())
        .sum()
}

//! Test support: the two servers (noida-db's Elasticsearch API, osmem-server's OpenSearch API)
//! behind one type, an independent REST client for setting up and reading indices (the
//! testkit's plain HTTP client, not the connector), the testkit sink context, and small job
//! helpers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code, unreachable_pub)]

pub mod fake_proxy;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value as Json};
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::sink::WriteContext;
use weir_connector_base::sink::{AsyncSinkConfig, CheckpointFlush, RetryPolicy};
use weir_connector_elasticsearch::sink::{BulkAction, ElasticsearchSink, Emitter, RefreshPolicy};
use weir_connector_elasticsearch::ConnectionConfig;
use weir_testkit::prelude::*;
use weir_testkit::servers::{http, NoidaDb, OsmemServer};

/// One of the two servers.
#[derive(Clone)]
pub enum Server {
    /// noida-db (Elasticsearch 8 API; documents searchable after `_refresh`).
    Noida(Arc<NoidaDb>),
    /// osmem-server (OpenSearch 3 API).
    Osmem(Arc<OsmemServer>),
}

impl Server {
    /// The shared noida-db of this test process.
    pub fn noida() -> Self {
        Server::Noida(NoidaDb::shared().expect("noida-db starts (run `cargo xtask deps`)"))
    }

    /// The shared osmem-server of this test process.
    pub fn osmem() -> Self {
        Server::Osmem(OsmemServer::shared().expect("osmem-server starts (run `cargo xtask deps`)"))
    }

    /// Both servers.
    pub fn both() -> [Server; 2] {
        [Server::noida(), Server::osmem()]
    }

    pub fn name(&self) -> &'static str {
        match self {
            Server::Noida(_) => "noida-db",
            Server::Osmem(_) => "osmem-server",
        }
    }

    pub fn addr(&self) -> SocketAddr {
        match self {
            Server::Noida(s) => s.elasticsearch_addr(),
            Server::Osmem(s) => s.addr(),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    pub fn rest(&self) -> Rest {
        Rest(self.addr())
    }

    pub fn pid(&self) -> u32 {
        match self {
            Server::Noida(s) => s.pid(),
            Server::Osmem(s) => s.pid(),
        }
    }
}

/// A REST client for test setup and checks (the testkit's HTTP/1.1 client).
#[derive(Debug, Clone, Copy)]
pub struct Rest(pub SocketAddr);

impl Rest {
    /// Sends a request and returns the status and the JSON answer (`null` if none).
    pub fn call(&self, method: &str, path: &str, body: Option<&Json>) -> (u16, Json) {
        let bytes = body
            .map(|b| serde_json::to_vec(b).unwrap())
            .unwrap_or_default();
        self.raw(method, path, "application/json", &bytes)
    }

    pub fn raw(&self, method: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, Json) {
        let r = http::request(
            self.0,
            method,
            path,
            &[("Content-Type", content_type.to_owned())],
            body,
            Duration::from_secs(20),
        )
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let json = serde_json::from_slice(&r.body).unwrap_or(Json::Null);
        (r.status, json)
    }

    pub fn create_index(&self, index: &str, properties: &Json) {
        let (status, answer) = self.call(
            "PUT",
            &format!("/{index}"),
            Some(&json!({ "mappings": { "properties": properties } })),
        );
        assert_eq!(status, 200, "creating {index}: {answer}");
    }

    pub fn delete_index(&self, index: &str) {
        let _ = self.call("DELETE", &format!("/{index}"), None);
    }

    pub fn refresh(&self, index: &str) {
        let (status, answer) = self.call("POST", &format!("/{index}/_refresh"), None);
        assert!(
            status == 200 || status == 404,
            "refreshing {index}: {status} {answer}"
        );
    }

    /// Every document of `index` (after a refresh), by id.
    pub fn documents(&self, index: &str) -> BTreeMap<String, Json> {
        self.refresh(index);
        let (status, answer) = self.call(
            "POST",
            &format!("/{index}/_search"),
            Some(&json!({ "size": 10000, "query": { "match_all": {} } })),
        );
        if status == 404 {
            return BTreeMap::new();
        }
        assert_eq!(status, 200, "searching {index}: {answer}");
        let hits = answer["hits"]["hits"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(hits.len() < 10000, "more than 10000 documents in {index}");
        let mut docs = BTreeMap::new();
        for hit in hits {
            let id = hit["_id"].as_str().unwrap().to_owned();
            let previous = docs.insert(id.clone(), hit["_source"].clone());
            assert!(previous.is_none(), "document {id} twice in the answer");
        }
        docs
    }

    /// `_count` of `index` (after a refresh).
    pub fn count(&self, index: &str) -> u64 {
        self.refresh(index);
        let (status, answer) = self.call("GET", &format!("/{index}/_count"), None);
        if status == 404 {
            return 0;
        }
        answer["count"]
            .as_u64()
            .unwrap_or_else(|| panic!("{answer}"))
    }

    /// Names of the indices starting with `prefix`.
    pub fn indices(&self, prefix: &str) -> Vec<String> {
        let (_, answer) = self.call("GET", &format!("/{prefix}*"), None);
        let mut names: Vec<String> = answer
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        names.sort();
        names
    }

    pub fn bulk(&self, ndjson: &str) -> Json {
        let (status, answer) = self.raw(
            "POST",
            "/_bulk?refresh=true",
            "application/x-ndjson",
            ndjson.as_bytes(),
        );
        assert_eq!(status, 200, "bulk: {answer}");
        assert_eq!(answer["errors"], json!(false), "bulk: {answer}");
        answer
    }
}

/// A fresh index name for a test.
pub fn index_name(test: &str) -> String {
    format!("weir-{test}-{:08x}", rand::random::<u32>())
}

/// Writes a [`SplitRecord`] as document `s<split>-<seq>` of one index (the payload as text: it
/// may exceed a `long`).
#[derive(Clone)]
pub struct RecordEmitter {
    pub index: Arc<str>,
}

impl Emitter<SplitRecord> for RecordEmitter {
    fn emit(&mut self, r: SplitRecord, _ctx: &WriteContext) -> Result<Option<BulkAction>> {
        let document = format!(
            r#"{{"split":{},"seq":{},"payload":"{}"}}"#,
            r.split, r.seq, r.payload
        );
        BulkAction::index(
            Arc::clone(&self.index),
            Some(format!("s{}-{}", r.split, r.seq)),
            document.into_bytes(),
        )
        .map(Some)
        .map_err(|e| ConnectorError::malformed(format!("{r:?}"), e.to_string()))
    }
}

/// The record of a document written by [`RecordEmitter`].
pub fn record_of(id: &str, doc: &Json) -> SplitRecord {
    let record = SplitRecord {
        split: u32::try_from(doc["split"].as_u64().unwrap()).unwrap(),
        seq: doc["seq"].as_u64().unwrap(),
        payload: doc["payload"].as_str().unwrap().parse().unwrap(),
    };
    assert_eq!(
        id,
        format!("s{}-{}", record.split, record.seq),
        "id of {doc}"
    );
    record
}

/// Small batches that wait up to 200 ms, so checkpoints (every 5-10 ms in the suites) hold
/// buffered actions and restores send them; quick retries.
pub fn suite_config() -> AsyncSinkConfig {
    AsyncSinkConfig::builder()
        .max_batch_size(50)
        .max_buffered_entries(400)
        .max_in_flight_requests(4)
        .max_time_in_buffer(Duration::from_millis(200))
        .retry(RetryPolicy {
            max_retries: 20,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(200),
        })
        .checkpoint_flush(CheckpointFlush::AwaitInFlight)
        .build()
        .unwrap()
}

/// The testkit sink context over one server.
pub struct SinkCtx {
    pub server: Server,
    /// The URL writers use (the server, or a fake proxy in front of it).
    pub url: String,
    pub config: AsyncSinkConfig,
}

impl SinkCtx {
    pub fn new(server: Server) -> Self {
        let url = server.url();
        SinkCtx {
            server,
            url,
            config: suite_config(),
        }
    }
}

#[async_trait]
impl SinkContext for SinkCtx {
    type Record = SplitRecord;
    type Sink = ElasticsearchSink<SplitRecord, RecordEmitter>;

    fn name(&self) -> String {
        format!("elasticsearch-{}", self.server.name())
    }

    fn support(&self) -> SinkSupport {
        // At-least-once delivery; with document ids every record is one document, so what the
        // index holds is exact: the suites check it as exactly-once.
        SinkSupport::exactly_once()
    }

    async fn teardown(&mut self, test: &TestInfo) -> Result<(), ContextError> {
        self.server.rest().delete_index(&test.test_id);
        Ok(())
    }

    fn create_sink(&self, settings: &SinkSettings) -> Result<Self::Sink, ContextError> {
        Ok(ElasticsearchSink::builder(
            ConnectionConfig::new([self.url.clone()]),
            RecordEmitter {
                index: Arc::from(settings.test_id.as_str()),
            },
        )
        .refresh(RefreshPolicy::None)
        .async_sink_config(self.config.clone())
        .build()?)
    }

    async fn read_back(&self, settings: &SinkSettings) -> Result<Vec<SplitRecord>, ContextError> {
        let rest = self.server.rest();
        let index = settings.test_id.clone();
        let docs = tokio::task::spawn_blocking(move || rest.documents(&index))
            .await
            .map_err(ContextError::external)?;
        Ok(docs.iter().map(|(id, doc)| record_of(id, doc)).collect())
    }

    fn records(
        &self,
        settings: &SinkSettings,
        split: usize,
        positions: Range<u64>,
    ) -> Vec<SplitRecord> {
        let split = u32::try_from(split).unwrap();
        positions
            .map(|seq| SplitRecord::new(split, seq, settings.seed))
            .collect()
    }
}

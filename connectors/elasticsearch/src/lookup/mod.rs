//! The lookup source (FLIP-221): [`ElasticsearchLookup`] answers a lookup join's keys with the
//! documents of an index, asynchronously, through the connector base's partial cache
//! ([`DefaultLookupCache`]).
//!
//! Two ways to find documents ([`LookupBy`]):
//!
//! - **by id** (the default): the key's values, joined by the delimiter, are the document id
//!   (as the sink makes ids from `document-id.fields`), fetched with `GET /<index>/_doc/<id>`:
//!   zero or one row per key;
//! - **by terms**: a `bool` filter of one `term` query per key field (`_search`), up to
//!   `max_rows` rows per key — for fields that are not the id (mapped as `keyword`, numbers,
//!   dates or booleans: a `term` query on an analyzed `text` field rarely matches).
//!
//! A key with a null value has no rows (null equals nothing). Documents are read into the
//! lookup table's schema by field name.

mod decode;

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use elasticsearch::http::headers::HeaderMap;
use elasticsearch::http::Method;
use elasticsearch::Elasticsearch;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Deserialize;
use serde_json::Value as Json;
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::lookup::{AsyncLookupFunction, LookupContext};
use weir_connector_api::metrics::{Counter, Gauge};
use weir_connector_api::row::{Row, Schema, Value};
use weir_connector_base::lookup::{
    DefaultLookupCache, LookupCache, LATEST_LOAD_TIME, LOAD_COUNT, NUM_LOAD_FAILURES,
};

use decode::json_of;

use crate::client::{classify_status, server_reason, transport_error, ConnectionConfig};

/// How keys find documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupBy {
    /// The key's values joined by `delimiter` are the document id.
    Id {
        /// Between the values of a key of several fields (default `_`, as the sink's).
        delimiter: String,
    },
    /// Documents whose `fields` equal the key's values (`term` queries), at most `max_rows`.
    Terms {
        /// The document fields, in the order of the key's values.
        fields: Vec<String>,
        /// Most rows per key.
        max_rows: usize,
    },
}

/// Path-segment escaping of index names and ids.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// An asynchronous lookup function over one index: key rows in, rows of the table's schema out.
///
/// Several lookups run at once (`&self`); the client is built on first use, inside the job's
/// runtime. With a cache ([`ElasticsearchLookup::with_cache`]) hits never reach the cluster.
///
/// ```no_run
/// use std::sync::Arc;
/// use std::time::Duration;
/// use weir_connector_api::lookup::AsyncLookupFunction;
/// use weir_connector_api::row::{DataType, Field, Row, Schema, Value};
/// use weir_connector_base::lookup::DefaultLookupCache;
/// use weir_connector_elasticsearch::lookup::{ElasticsearchLookup, LookupBy};
/// use weir_connector_elasticsearch::ConnectionConfig;
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let schema = Schema::new(vec![
///     Field::new("id", DataType::Int64, false),
///     Field::new("name", DataType::String, true),
/// ]);
/// let cache = DefaultLookupCache::builder()
///     .maximum_size(100_000)
///     .expire_after_write(Duration::from_secs(600))
///     .build()?;
/// let customers = ElasticsearchLookup::new(
///     ConnectionConfig::new(["http://localhost:9200"]),
///     "customers",
///     schema,
///     LookupBy::Id { delimiter: "_".into() },
/// )?
/// .with_cache(Arc::new(cache));
/// let rows = customers.lookup(&Row::insert(vec![Value::Int64(7)])).await?;
/// # let _ = rows; Ok(()) }
/// ```
pub struct ElasticsearchLookup {
    connection: ConnectionConfig,
    client: OnceLock<Elasticsearch>,
    index: String,
    schema: Schema,
    by: LookupBy,
    cache: Option<Arc<DefaultLookupCache<String, Row>>>,
    loads: Counter,
    load_failures: Counter,
    latest_load_time: Gauge,
}

impl fmt::Debug for ElasticsearchLookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ElasticsearchLookup")
            .field("connection", &self.connection)
            .field("index", &self.index)
            .field("by", &self.by)
            .field("cached", &self.cache.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct GetAnswer {
    #[serde(default)]
    found: bool,
    #[serde(default, rename = "_source")]
    source: Option<Json>,
}

#[derive(Deserialize)]
struct SearchAnswer {
    hits: SearchHits,
}

#[derive(Deserialize)]
struct SearchHits {
    hits: Vec<SearchHit>,
}

#[derive(Deserialize)]
struct SearchHit {
    #[serde(default, rename = "_id")]
    id: String,
    #[serde(default, rename = "_source")]
    source: Option<Json>,
}

impl ElasticsearchLookup {
    /// A lookup of `index` (a fixed name) whose rows have `schema`. Checks the connection
    /// settings (contacts nothing).
    pub fn new(
        connection: ConnectionConfig,
        index: impl Into<String>,
        schema: Schema,
        by: LookupBy,
    ) -> Result<Self> {
        let index = index.into();
        let context = "building the Elasticsearch lookup";
        if index.is_empty() {
            return Err(ConnectorError::fatal(context, "the index name is empty"));
        }
        if let LookupBy::Terms { fields, max_rows } = &by {
            if fields.is_empty() {
                return Err(ConnectorError::fatal(
                    context,
                    "a lookup by terms needs key fields",
                ));
            }
            if *max_rows == 0 {
                return Err(ConnectorError::fatal(
                    context,
                    "`max_rows` must be at least 1",
                ));
            }
        }
        connection.client()?;
        Ok(ElasticsearchLookup {
            connection,
            client: OnceLock::new(),
            index,
            schema,
            by,
            cache: None,
            loads: Counter::new(),
            load_failures: Counter::new(),
            latest_load_time: Gauge::new(),
        })
    }

    /// Answers from `cache` first (which other lookups may share); what is loaded is put in it.
    #[must_use]
    pub fn with_cache(mut self, cache: Arc<DefaultLookupCache<String, Row>>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// The cache, if any.
    pub fn cache(&self) -> Option<&Arc<DefaultLookupCache<String, Row>>> {
        self.cache.as_ref()
    }

    /// Loads from the cluster so far (`loadCount`).
    pub fn loads(&self) -> u64 {
        self.loads.get()
    }

    fn client(&self) -> Result<&Elasticsearch> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let client = self.connection.client()?;
        Ok(self.client.get_or_init(|| client))
    }

    /// The cache key of `key`: the document id, or the key's values as JSON.
    fn cache_key(&self, key: &Row) -> Result<Option<String>> {
        if key.values.iter().any(|v| matches!(v, Value::Null)) {
            return Ok(None);
        }
        match &self.by {
            LookupBy::Id { delimiter } => {
                let mut id = String::new();
                for (i, value) in key.values.iter().enumerate() {
                    if i > 0 {
                        id.push_str(delimiter);
                    }
                    match value {
                        Value::String(s) => id.push_str(s),
                        other => match json_of(other) {
                            Json::String(s) => id.push_str(&s),
                            Json::Null => {
                                return Err(ConnectorError::malformed(
                                    "a lookup key",
                                    format!("{other:?} makes no document id"),
                                ))
                            }
                            json => id.push_str(&json.to_string()),
                        },
                    }
                }
                Ok(Some(id))
            }
            LookupBy::Terms { fields, .. } => {
                if key.values.len() != fields.len() {
                    return Err(ConnectorError::Contract(format!(
                        "a lookup key of {} values for a lookup by {} fields ({})",
                        key.values.len(),
                        fields.len(),
                        fields.join(", ")
                    )));
                }
                Ok(Some(
                    Json::Array(key.values.iter().map(json_of).collect()).to_string(),
                ))
            }
        }
    }

    async fn load(&self, key: &Row, cache_key: &str) -> Result<Vec<Row>> {
        match &self.by {
            LookupBy::Id { .. } => self.get_by_id(cache_key).await,
            LookupBy::Terms { fields, max_rows } => self.search(key, fields, *max_rows).await,
        }
    }

    async fn get_by_id(&self, id: &str) -> Result<Vec<Row>> {
        let path = format!(
            "/{}/_doc/{}",
            utf8_percent_encode(&self.index, SEGMENT),
            utf8_percent_encode(id, SEGMENT)
        );
        let context = || format!("looking up document `{id}` in index `{}`", self.index);
        let answer = self.request(Method::Get, &path, None, &context).await?;
        let Some(bytes) = answer else {
            return Ok(Vec::new());
        };
        let got: GetAnswer = serde_json::from_slice(&bytes)
            .map_err(|e| ConnectorError::retryable(context(), format!("not a get answer: {e}")))?;
        match (got.found, got.source) {
            (true, Some(source)) => {
                let row = decode::row_from_source(
                    &self.schema,
                    &source,
                    &format!("document `{id}` of index `{}`", self.index),
                )?;
                Ok(vec![row])
            }
            _ => Ok(Vec::new()),
        }
    }

    async fn search(&self, key: &Row, fields: &[String], max_rows: usize) -> Result<Vec<Row>> {
        let filters: Vec<Json> = fields
            .iter()
            .zip(&key.values)
            .map(|(field, value)| serde_json::json!({ "term": { field: json_of(value) } }))
            .collect();
        let body = serde_json::json!({
            "size": max_rows,
            "query": { "bool": { "filter": filters } },
        });
        let path = format!("/{}/_search", utf8_percent_encode(&self.index, SEGMENT));
        let context = || format!("searching index `{}` for {body}", self.index);
        let Some(bytes) = self
            .request(Method::Post, &path, Some(body.to_string()), &context)
            .await?
        else {
            return Ok(Vec::new());
        };
        let answer: SearchAnswer = serde_json::from_slice(&bytes).map_err(|e| {
            ConnectorError::retryable(context(), format!("not a search answer: {e}"))
        })?;
        answer
            .hits
            .hits
            .into_iter()
            .filter_map(|hit| hit.source.map(|s| (hit.id, s)))
            .map(|(id, source)| {
                decode::row_from_source(
                    &self.schema,
                    &source,
                    &format!("document `{id}` of index `{}`", self.index),
                )
            })
            .collect()
    }

    /// Sends a request; `None` for a 404 that is a missing document (not a missing index).
    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
        context: &(dyn Fn() -> String + Sync),
    ) -> Result<Option<Vec<u8>>> {
        let client = self.client()?;
        let hosts = self.connection.describe_hosts();
        let response = client
            .send(method, path, HeaderMap::new(), None::<&()>, body, None)
            .await
            .map_err(|e| transport_error(context(), &hosts, &e))?;
        let status = response.status_code().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| transport_error(context(), &hosts, &e))?;
        if (200..300).contains(&status) {
            return Ok(Some(bytes.to_vec()));
        }
        if status == 404 {
            let reason = server_reason(&bytes);
            if reason.contains("index_not_found_exception") {
                return Err(ConnectorError::fatal(
                    context(),
                    format!(
                        "index `{}` does not exist ({reason}): check `index`",
                        self.index
                    ),
                ));
            }
            return Ok(None);
        }
        let error = classify_status(status, &bytes, self.connection.credentials());
        Err(ConnectorError::external(
            format!("{} at {hosts}", context()),
            error.class,
            error.message,
        ))
    }
}

#[async_trait::async_trait]
impl AsyncLookupFunction<Row, Row> for ElasticsearchLookup {
    async fn open(&mut self, ctx: &dyn LookupContext) -> Result<()> {
        let group = ctx.metric_group();
        if let Some(cache) = &self.cache {
            cache.open(&*group);
        }
        self.loads = group.counter(LOAD_COUNT);
        self.load_failures = group.counter(NUM_LOAD_FAILURES);
        self.latest_load_time = group.gauge(LATEST_LOAD_TIME);
        self.client()?;
        Ok(())
    }

    async fn lookup(&self, key: &Row) -> Result<Vec<Row>> {
        let Some(cache_key) = self.cache_key(key)? else {
            return Ok(Vec::new());
        };
        if let Some(cache) = &self.cache {
            if let Some(rows) = cache.get_if_present(&cache_key) {
                return Ok(rows.to_vec());
            }
        }
        let started = Instant::now();
        let loaded = self.load(key, &cache_key).await;
        self.latest_load_time
            .set(i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX));
        match loaded {
            Ok(rows) => {
                self.loads.inc();
                if let Some(cache) = &self.cache {
                    cache.put(cache_key, Arc::from(rows.clone()));
                }
                Ok(rows)
            }
            Err(error) => {
                self.load_failures.inc();
                Err(error)
            }
        }
    }
}

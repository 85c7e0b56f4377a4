//! The lookup source against the real servers: by id and by `term` queries, with the base's
//! partial cache (hits never reach the cluster; misses load once; missing keys cached or not),
//! Flink's cache metrics, documents read into the table's schema, the pipeline factory's lookup
//! provider, and a lookup join of a stream with an index.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::fake_proxy::{FakeProxy, ProxyConfig};
use common::{index_name, Server};
use weir_connector_api::error::Result;
use weir_connector_api::factory::{find_connector, FactoryContext, LookupProvider};
use weir_connector_api::lookup::{AsyncLookupFunction, LookupContext};
use weir_connector_api::metrics::{InMemoryMetricGroup, MetricGroup, MetricValue};
use weir_connector_api::row::{DataType, Field, Row, Schema, Value};
use weir_connector_api::sink::{FlushMode, InitContext, Sink, SinkWriter, WriteContext};
use weir_connector_api::state::U64Serializer;
use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_base::lookup::{DefaultLookupCache, MissingKeys};
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_connector_elasticsearch::lookup::{ElasticsearchLookup, LookupBy};
use weir_connector_elasticsearch::ConnectionConfig;
use weir_runtime::lookup::{AsyncLookupOptions, JoinType, LookupJoin};
use weir_runtime::{JobConfig, StreamEnvironment};

fn schema() -> Schema {
    Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::String, true),
        Field::new("tier", DataType::String, true),
        Field::new("since", DataType::TimestampMillis, true),
    ])
}

/// Customers 0..50: id, name, tier (`gold` for multiples of 10, else `basic`), since.
fn customers(server: &Server) -> String {
    let index = index_name("customers");
    server.rest().create_index(
        &index,
        &serde_json::json!({ "id": { "type": "long" }, "tier": { "type": "keyword" }, "since": { "type": "date" } }),
    );
    let mut bulk = String::new();
    for id in 0..50 {
        let tier = if id % 10 == 0 { "gold" } else { "basic" };
        let _ = writeln!(
            bulk,
            "{{\"index\":{{\"_index\":\"{index}\",\"_id\":\"{id}\"}}}}\n{{\"id\":{id},\"name\":\"customer-{id}\",\"tier\":\"{tier}\",\"since\":\"2026-01-{:02}T00:00:00.000Z\"}}",
            id % 28 + 1
        );
    }
    server.rest().bulk(&bulk);
    index
}

fn customer(id: i64) -> Row {
    Row::insert(vec![
        Value::Int64(id),
        Value::String(format!("customer-{id}")),
        Value::String(if id % 10 == 0 { "gold" } else { "basic" }.to_owned()),
        Value::TimestampMillis(1_767_225_600_000 + (id % 28) * 86_400_000),
    ])
}

struct Ctx(InMemoryMetricGroup);

impl LookupContext for Ctx {
    fn subtask_index(&self) -> usize {
        0
    }
    fn metric_group(&self) -> Arc<dyn MetricGroup> {
        Arc::new(self.0.clone())
    }
}

fn counter(group: &InMemoryMetricGroup, name: &str) -> u64 {
    match group.value(&format!("lookup.{name}")) {
        Some(MetricValue::Counter(n)) => n,
        other => panic!("{name}: {other:?}"),
    }
}

fn key(id: i64) -> Row {
    Row::insert(vec![Value::Int64(id)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_by_id_go_through_the_cache() {
    for server in Server::both() {
        let index = customers(&server);
        let cache = DefaultLookupCache::builder()
            .maximum_size(1000)
            .expire_after_write(Duration::from_secs(60))
            .build()
            .unwrap();
        let mut lookup = ElasticsearchLookup::new(
            ConnectionConfig::new([server.url()]),
            index.clone(),
            schema(),
            LookupBy::Id {
                delimiter: "_".into(),
            },
        )
        .unwrap()
        .with_cache(Arc::new(cache));
        let metrics = InMemoryMetricGroup::new("lookup");
        lookup.open(&Ctx(metrics.clone())).await.unwrap();
        for id in [1, 2, 1, 1, 999, 999, 2, 30] {
            let rows = lookup.lookup(&key(id)).await.unwrap();
            let want: Vec<Row> = if id < 50 { vec![customer(id)] } else { vec![] };
            assert_eq!(rows, want, "{}: key {id}", server.name());
        }
        // Misses: 1, 2, 999, 30 (999 is cached as missing); the rest are hits.
        assert_eq!(lookup.loads(), 4, "{}", server.name());
        assert_eq!(counter(&metrics, "loadCount"), 4);
        assert_eq!(counter(&metrics, "missCount"), 4);
        assert_eq!(counter(&metrics, "hitCount"), 4);
        assert_eq!(counter(&metrics, "numLoadFailures"), 0);
        // A null key has no rows and asks nothing.
        assert!(lookup
            .lookup(&Row::insert(vec![Value::Null]))
            .await
            .unwrap()
            .is_empty());
        assert_eq!(lookup.loads(), 4);
        server.rest().delete_index(&index);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_cache_every_lookup_asks_and_missing_keys_can_stay_uncached() {
    let server = Server::noida();
    let index = customers(&server);
    let plain = ElasticsearchLookup::new(
        ConnectionConfig::new([server.url()]),
        index.clone(),
        schema(),
        LookupBy::Id {
            delimiter: "_".into(),
        },
    )
    .unwrap();
    for id in [3, 3, 3, 77] {
        plain.lookup(&key(id)).await.unwrap();
    }
    assert_eq!(plain.loads(), 4);

    let cache = DefaultLookupCache::builder()
        .maximum_size(10)
        .missing_keys(MissingKeys::DoNotCache)
        .build()
        .unwrap();
    let cached = plain.with_cache(Arc::new(cache));
    for id in [77, 77, 4, 4] {
        cached.lookup(&key(id)).await.unwrap();
    }
    // 77 (missing, not cached) twice, 4 once.
    assert_eq!(cached.loads(), 4 + 3);
    server.rest().delete_index(&index);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_by_terms_find_every_matching_document_up_to_the_limit() {
    for server in Server::both() {
        let index = customers(&server);
        let tier_schema = schema();
        let lookup = ElasticsearchLookup::new(
            ConnectionConfig::new([server.url()]),
            index.clone(),
            tier_schema,
            LookupBy::Terms {
                fields: vec!["tier".into()],
                max_rows: 3,
            },
        )
        .unwrap();
        server.rest().refresh(&index);
        let gold = lookup
            .lookup(&Row::insert(vec![Value::String("gold".into())]))
            .await
            .unwrap();
        assert_eq!(gold.len(), 3, "{}: at most max_rows", server.name());
        for row in &gold {
            let Some(Value::Int64(id)) = row.get(0) else {
                panic!("{row:?}")
            };
            assert_eq!(row, &customer(*id), "{}", server.name());
            assert_eq!(id % 10, 0);
        }
        let none = lookup
            .lookup(&Row::insert(vec![Value::String("platinum".into())]))
            .await
            .unwrap();
        assert!(none.is_empty());
        server.rest().delete_index(&index);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_index_and_a_document_that_does_not_fit_are_clear_errors() {
    let server = Server::osmem();
    let lookup = ElasticsearchLookup::new(
        ConnectionConfig::new([server.url()]),
        "weir-no-such-index",
        schema(),
        LookupBy::Id {
            delimiter: "_".into(),
        },
    )
    .unwrap();
    let error = lookup.lookup(&key(1)).await.unwrap_err().to_string();
    assert!(
        error.contains("index `weir-no-such-index` does not exist"),
        "{error}"
    );

    let index = index_name("misfit");
    server.rest().bulk(&format!(
        "{{\"index\":{{\"_index\":\"{index}\",\"_id\":\"1\"}}}}\n{{\"id\":\"one\"}}\n"
    ));
    let lookup = ElasticsearchLookup::new(
        ConnectionConfig::new([server.url()]),
        index.clone(),
        schema(),
        LookupBy::Id {
            delimiter: "_".into(),
        },
    )
    .unwrap();
    let error = lookup.lookup(&key(1)).await.unwrap_err().to_string();
    assert!(
        error.contains(&format!("document `1` of index `{index}`"))
            && error.contains("field `id` is \"one\""),
        "{error}"
    );
    server.rest().delete_index(&index);
}

/// Keeps every output of a bounded job.
#[derive(Clone, Default)]
struct Collect(Joined);

struct CollectWriter(Joined);

/// Orders with their customers.
type Joined = Arc<Mutex<Vec<(u64, Option<Row>)>>>;

#[async_trait::async_trait]
impl SinkWriter<(u64, Option<Row>)> for CollectWriter {
    fn write(&mut self, record: (u64, Option<Row>), _: &WriteContext) -> Result<()> {
        self.0.lock().unwrap().push(record);
        Ok(())
    }
    async fn flush(&mut self, _: FlushMode) -> Result<()> {
        Ok(())
    }
}

impl Sink<(u64, Option<Row>)> for Collect {
    type Writer = CollectWriter;
    fn create_writer(&self, _: &dyn InitContext) -> Result<CollectWriter> {
        Ok(CollectWriter(Arc::clone(&self.0)))
    }
}

/// The factory's provider shared by the join's subtasks (one function, one cache).
struct Shared(Arc<dyn AsyncLookupFunction<Row, Row>>);

#[async_trait::async_trait]
impl AsyncLookupFunction<Row, Row> for Shared {
    async fn lookup(&self, key: &Row) -> Result<Vec<Row>> {
        self.0.lookup(key).await
    }
}

/// Orders 0..2000 with customer `order % 60` (customers 50..60 do not exist) joined, left
/// outer, with the customers index (behind a fake proxy that counts requests): every order
/// leaves once with its customer (or none).
async fn join(server: &Server, function: Arc<dyn AsyncLookupFunction<Row, Row>>) -> u64 {
    let out = Collect::default();
    let env = StreamEnvironment::new(JobConfig::new("enrich").parallelism(2));
    env.from_source(
        DataGeneratorSource::new(|n| n, Some(2000), RateLimiterStrategy::no_op()),
        WatermarkStrategy::no_watermarks(),
        "orders",
    )
    .lookup_join(
        "customers",
        LookupJoin::asynchronous(
            |order: &u64| {
                Some(Row::insert(vec![Value::Int64(
                    i64::try_from(*order % 60).unwrap(),
                )]))
            },
            move || Ok(Box::new(Shared(Arc::clone(&function)))),
            |order: &u64, customer: Option<&Row>| (*order, customer.cloned()),
            U64Serializer,
            AsyncLookupOptions::default().capacity(20),
        )
        .join_type(JoinType::LeftOuter),
    )
    .sink_to(out.clone());
    let result = env.build().unwrap().start().wait().await;
    assert!(
        result.is_finished(),
        "{}: {:?}",
        server.name(),
        result.status
    );
    let mut got = out.0.lock().unwrap().clone();
    got.sort_by_key(|(order, _)| *order);
    assert_eq!(got.len(), 2000);
    for (order, customer) in &got {
        let id = i64::try_from(order % 60).unwrap();
        let want = (id < 50).then(|| customer_row(id));
        assert_eq!(customer, &want, "order {order}");
    }
    got.len() as u64
}

/// The factory's lookup table (uncached: pipelines cache in the `lookup` transform) asks the
/// cluster once per order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_join_through_the_factory_table_asks_for_every_order() {
    let server = Server::osmem();
    let index = customers(&server);
    let proxy = FakeProxy::start(server.addr(), ProxyConfig::default()).await;
    let factory = find_connector("elasticsearch")
        .unwrap()
        .as_lookup()
        .unwrap();
    let pairs: BTreeMap<String, String> = [("hosts", proxy.url()), ("index", index.clone())]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let config = factory.lookup_options().validate(&pairs).unwrap();
    let schema = schema();
    let provider = factory
        .create_lookup(
            &config,
            &FactoryContext {
                name: "customers",
                schema: &schema,
                format: None,
            },
            &["id".to_owned()],
        )
        .unwrap();
    let LookupProvider::Async(function) = provider else {
        panic!("an asynchronous provider: {provider:?}");
    };
    let orders = join(&server, function).await;
    let requests = proxy
        .stats()
        .requests
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(requests, orders, "one GET per order");
    server.rest().delete_index(&index);
}

/// With the partial cache the cluster sees each of the 60 keys about once (hits for the other
/// 1940 orders; two concurrent misses of one key may both load it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_join_through_the_cache_asks_once_per_key() {
    let server = Server::noida();
    let index = customers(&server);
    let proxy = FakeProxy::start(server.addr(), ProxyConfig::default()).await;
    let cache = DefaultLookupCache::builder()
        .maximum_size(1000)
        .build()
        .unwrap();
    let lookup = ElasticsearchLookup::new(
        ConnectionConfig::new([proxy.url()]),
        index.clone(),
        schema(),
        LookupBy::Id {
            delimiter: "_".into(),
        },
    )
    .unwrap()
    .with_cache(Arc::new(cache));
    let lookup = Arc::new(lookup);
    join(
        &server,
        Arc::clone(&lookup) as Arc<dyn AsyncLookupFunction<Row, Row>>,
    )
    .await;
    let requests = proxy
        .stats()
        .requests
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        (60..120).contains(&requests),
        "{requests} requests for 60 keys and 2000 orders"
    );
    assert_eq!(lookup.loads(), requests);
    server.rest().delete_index(&index);
}

fn customer_row(id: i64) -> Row {
    customer(id)
}

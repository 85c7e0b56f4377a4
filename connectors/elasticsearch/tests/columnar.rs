//! The columnar sink (API line 1.1) against the real servers, noida-db (Elasticsearch API) and
//! osmem-server (OpenSearch API): the same changelog — every type of pipeline schemas,
//! inserts, `-U`/`+U` updates, deletes — written by the Row sink and, as chunks, by the
//! columnar sink of the same options leaves the same documents, field by field, in the same
//! routed indices (with `index` and `upsert` actions); and a checkpoint of buffered actions
//! taken by one writer restores in the other (rows → chunks and chunks → rows).
//!
//! `weir_testkit::columnar::check_chunk_sink` reads both outputs back with the connector's own
//! Row source; Elasticsearch has none (only a lookup), so these tests read the indices with
//! the REST client of `common` instead.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::{index_name, Server};
use serde_json::Value as Json;
use weir_connector_api::checkpoint::CheckpointId;
use weir_connector_api::columnar::{arrow_schema, Chunk, Columnar};
use weir_connector_api::config::ValidatedConfig;
use weir_connector_api::erased::BoxedSink;
use weir_connector_api::factory::{find_connector, FactoryContext, JobContext};
use weir_connector_api::metrics::{InMemoryMetricGroup, MetricGroup};
use weir_connector_api::row::{DataType, Field, Row, RowKind, Schema, TimeUnit, Value};
use weir_connector_api::sink::{
    FlushMode, InitContext, Sink, SinkWriter, StatefulSinkWriter, SupportsWriterState, WriteContext,
};
use weir_connector_api::watermark::WatermarkStrategy;
use weir_connector_base::sink::AsyncSinkConfig;
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_connector_elasticsearch::sink::{ActionKind, ElasticsearchSink, Emitter, RefreshPolicy};
use weir_connector_elasticsearch::{ChunkEmitter, ConnectionConfig, IndexRouting, RowEmitter};
use weir_runtime::{CheckpointConfig, JobConfig, JobResult, StreamEnvironment};

const REGIONS: [&str; 3] = ["eu", "us", "ap"];

fn schema() -> Schema {
    Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("region", DataType::String, false),
        Field::new("at", DataType::TimestampMillis, false),
        Field::new("ok", DataType::Boolean, true),
        Field::new("small", DataType::Int32, true),
        Field::new("big", DataType::UInt64, true),
        Field::new("ratio", DataType::Float32, true),
        Field::new("score", DataType::Float64, true),
        Field::new(
            "price",
            DataType::Decimal128 {
                precision: 10,
                scale: 2,
            },
            true,
        ),
        Field::new("name", DataType::String, true),
        Field::new("blob", DataType::Bytes, true),
        Field::new("day", DataType::Date32, true),
        Field::new(
            "seen",
            DataType::timestamp(TimeUnit::Microsecond, None),
            true,
        ),
        Field::new("counts", DataType::List(Box::new(DataType::Int32)), true),
        Field::new(
            "owner",
            DataType::Struct(vec![
                Field::new("first", DataType::String, true),
                Field::new("tags", DataType::List(Box::new(DataType::String)), true),
            ]),
            true,
        ),
        Field::new(
            "attrs",
            DataType::Map(Box::new(DataType::String), Box::new(DataType::Int64)),
            true,
        ),
    ])
}

/// The row of key `id` at version `v` (every tenth field of a version null).
fn row(kind: RowKind, id: i64, v: i64) -> Row {
    let n = id * 7 + v * 13;
    let null_or = |k: i64, value: Value| {
        if (n + k) % 10 == 0 {
            Value::Null
        } else {
            value
        }
    };
    let at = 1_767_225_600_000 + id * 1_000 + v;
    Row::with_kind(
        kind,
        vec![
            Value::Int64(id),
            Value::String(REGIONS[usize::try_from(id % 3).unwrap()].to_owned()),
            Value::TimestampMillis(at),
            null_or(1, Value::Boolean(n % 2 == 0)),
            null_or(2, Value::Int64(n * 1_000 - 50_000)),
            null_or(3, Value::UInt64(u64::try_from(n).unwrap() * 1_000_003)),
            null_or(
                4,
                Value::Float32(f32::from(u16::try_from(n % 1000).unwrap()) / 8.0),
            ),
            null_or(
                5,
                Value::Float64(if n % 17 == 0 {
                    f64::NAN
                } else {
                    n as f64 / 3.0
                }),
            ),
            null_or(
                6,
                Value::Decimal128 {
                    value: i128::from(n) * 101 - 7_000,
                    scale: 2,
                },
            ),
            null_or(7, Value::String(format!("n\u{e9}me \"{n}\"\n{v}"))),
            null_or(8, Value::Bytes(n.to_le_bytes()[..3].to_vec())),
            null_or(9, Value::Date32(i32::try_from(19_000 + n).unwrap())),
            Value::Timestamp(at * 1_000 + 123, TimeUnit::Microsecond),
            null_or(
                1,
                Value::List((0..n % 4).map(|k| Value::Int64(k * n)).collect()),
            ),
            null_or(
                2,
                Value::Struct(vec![
                    Value::String(format!("o{id}")),
                    Value::List(vec![Value::String("a".into()), Value::Null]),
                ]),
            ),
            null_or(
                3,
                Value::Map(
                    (0..n % 3)
                        .map(|k| (Value::String(format!("k{k}")), Value::Int64(k + v)))
                        .collect(),
                ),
            ),
        ],
    )
}

/// A changelog over 240 keys: inserts; `-U`/`+U` of every third key; deletes of every fifth;
/// re-inserts of every fifteenth. And the ids it leaves.
fn changelog() -> (Vec<Row>, Vec<String>) {
    let mut rows = Vec::new();
    for id in 0..240 {
        rows.push(row(RowKind::Insert, id, 0));
        if id % 3 == 0 {
            rows.push(row(RowKind::UpdateBefore, id, 0));
            rows.push(row(RowKind::UpdateAfter, id, 1));
        }
        if id % 5 == 0 {
            rows.push(row(RowKind::Delete, id, 1));
        }
        if id % 15 == 0 {
            rows.push(row(RowKind::Insert, id, 2));
        }
    }
    let mut ids: Vec<String> = (0..240)
        .filter(|id| id % 5 != 0 || id % 15 == 0)
        .map(|id: i64| id.to_string())
        .collect();
    ids.sort();
    (rows, ids)
}

fn validate(pairs: &[(&str, &str)]) -> ValidatedConfig {
    let options: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    find_connector("elasticsearch")
        .unwrap()
        .as_sink()
        .unwrap()
        .sink_options()
        .validate(&options)
        .unwrap()
}

async fn run<T: Clone + Send + Sync + 'static>(records: Vec<T>, sink: BoxedSink<T>) -> JobResult {
    let records = Arc::new(records);
    let count = records.len() as u64;
    let env = StreamEnvironment::new(
        JobConfig::new("columnar")
            .parallelism(1)
            .checkpointing(CheckpointConfig::every(Duration::from_millis(100))),
    );
    env.from_source(
        DataGeneratorSource::new(
            move |n| records[usize::try_from(n).unwrap()].clone(),
            Some(count),
            RateLimiterStrategy::no_op(),
        ),
        WatermarkStrategy::no_watermarks(),
        "records",
    )
    .sink_to(sink);
    env.build().unwrap().start().wait().await
}

/// The documents of the routed indices `<prefix>-<region>`, by id.
fn documents(server: &Server, prefix: &str) -> BTreeMap<String, Json> {
    let rest = server.rest();
    let mut docs = BTreeMap::new();
    for region in REGIONS {
        docs.extend(rest.documents(&format!("{prefix}-{region}")));
    }
    docs
}

fn delete_indices(server: &Server, prefix: &str) {
    for region in REGIONS {
        server.rest().delete_index(&format!("{prefix}-{region}"));
    }
}

/// Both documents hold every field of the schema, with equal values.
fn assert_same_documents(
    what: &str,
    from_rows: &BTreeMap<String, Json>,
    from_chunks: &BTreeMap<String, Json>,
) {
    let fields: Vec<String> = schema().fields.iter().map(|f| f.name.clone()).collect();
    assert_eq!(
        from_rows.keys().collect::<Vec<_>>(),
        from_chunks.keys().collect::<Vec<_>>(),
        "{what}: document ids"
    );
    for (id, row_doc) in from_rows {
        let chunk_doc = &from_chunks[id];
        for field in &fields {
            let (a, b) = (row_doc.get(field), chunk_doc.get(field));
            assert!(
                a.is_some(),
                "{what}: document {id} of the Row sink has no `{field}`"
            );
            assert_eq!(a, b, "{what}: document {id}, field `{field}`");
        }
        assert_eq!(row_doc, chunk_doc, "{what}: document {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_columnar_sink_writes_the_row_sinks_documents() {
    let (rows, ids) = changelog();
    let schema = schema();
    let chunks: Vec<Chunk> = rows
        .chunks(97)
        .map(|part| Chunk::from_rows(&arrow_schema(&schema), part).unwrap())
        .collect();
    let factory = find_connector("elasticsearch").unwrap();
    for server in Server::both() {
        for action in ["index", "upsert"] {
            let what = format!("{}, {action}", server.name());
            let row_prefix = index_name("col-rows");
            let chunk_prefix = index_name("col-chunks");
            let options = |prefix: &str| {
                validate(&[
                    ("hosts", &server.url()),
                    ("index", &format!("{prefix}-{{region}}")),
                    ("document-id.fields", "id"),
                    ("sink.action", action),
                    ("sink.batch.max-size", "64"),
                    // Per-document order across requests needs one request in flight (the
                    // changelog has each key's changes one after another).
                    ("sink.requests.max-inflight", "1"),
                ])
            };
            let ctx = FactoryContext {
                name: "search",
                schema: &schema,
                format: None,
            };
            let row_sink = factory
                .as_sink()
                .unwrap()
                .create_sink(&options(&row_prefix), &ctx)
                .unwrap();
            let Columnar::Chunks(parts) = factory
                .as_chunk_sink()
                .expect("the connector declares a columnar sink")
                .create_chunk_sink(&options(&chunk_prefix), &ctx, &JobContext::new())
                .unwrap()
            else {
                panic!("{what}: the options run on rows");
            };
            assert!(parts.split.is_none(), "{what}: no split before the writer");
            let result = run(rows.clone(), row_sink).await;
            assert!(result.is_finished(), "{what}: rows: {:?}", result.status);
            let result = run(chunks.clone(), parts.sink).await;
            assert!(result.is_finished(), "{what}: chunks: {:?}", result.status);
            let from_rows = documents(&server, &row_prefix);
            let from_chunks = documents(&server, &chunk_prefix);
            assert_eq!(
                from_rows.keys().cloned().collect::<Vec<_>>(),
                ids,
                "{what}: the Row sink's documents are the changelog's final keys"
            );
            assert_same_documents(&what, &from_rows, &from_chunks);
            delete_indices(&server, &row_prefix);
            delete_indices(&server, &chunk_prefix);
        }
    }
}

/// The document of each key's last row, as the Row emitter writes it (`+I`/`+U` rows; a
/// delete removes the key).
fn expected_documents(rows: &[Row], prefix: &str) -> BTreeMap<String, Json> {
    let mut emitter = emitter(prefix);
    let mut docs = BTreeMap::new();
    for r in rows {
        let Some(Value::Int64(id)) = r.get(0) else {
            unreachable!()
        };
        match r.kind {
            RowKind::Insert | RowKind::UpdateAfter => {
                let action = emitter
                    .emit(r.clone(), &WriteContext::default())
                    .unwrap()
                    .unwrap();
                docs.insert(
                    id.to_string(),
                    serde_json::from_slice(action.document()).unwrap(),
                );
            }
            RowKind::Delete => {
                docs.remove(&id.to_string());
            }
            RowKind::UpdateBefore => {}
        }
    }
    docs
}

struct Ctx;

impl InitContext for Ctx {
    fn subtask_index(&self) -> usize {
        0
    }
    fn parallelism(&self) -> usize {
        1
    }
    fn attempt(&self) -> u32 {
        0
    }
    fn restored_checkpoint_id(&self) -> Option<CheckpointId> {
        None
    }
    fn metric_group(&self) -> Arc<dyn MetricGroup> {
        Arc::new(InMemoryMetricGroup::new("t"))
    }
    fn operator_id(&self) -> &'static str {
        "sink-1"
    }
}

/// Nothing is sent before a flush: one batch of everything, waiting an hour.
fn holding_config() -> AsyncSinkConfig {
    AsyncSinkConfig::builder()
        .max_batch_size(10_000)
        .max_buffered_entries(20_000)
        .max_in_flight_requests(1)
        .max_time_in_buffer(Duration::from_secs(3600))
        .build()
        .unwrap()
}

fn emitter(prefix: &str) -> RowEmitter {
    let schema = schema();
    RowEmitter::new(
        &schema,
        IndexRouting::parse(&format!("{prefix}-{{region}}"), &schema).unwrap(),
        &["id".to_owned()],
        "_",
        ActionKind::Index,
    )
    .unwrap()
}

fn rows_sink(url: &str, prefix: &str) -> ElasticsearchSink<Row, RowEmitter> {
    ElasticsearchSink::builder(ConnectionConfig::new([url]), emitter(prefix))
        .refresh(RefreshPolicy::None)
        .async_sink_config(holding_config())
        .build()
        .unwrap()
}

fn chunks_sink(url: &str, prefix: &str) -> ElasticsearchSink<Chunk, ChunkEmitter> {
    ElasticsearchSink::builder(
        ConnectionConfig::new([url]),
        ChunkEmitter::new(emitter(prefix)),
    )
    .refresh(RefreshPolicy::None)
    .async_sink_config(holding_config())
    .build()
    .unwrap()
}

/// A checkpoint of buffered actions taken on rows restores on chunks, and back: the restored
/// writer sends what the other one buffered, and the index ends as if one writer had written
/// everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_taken_on_rows_restores_on_chunks_and_back() {
    let (rows, ids) = changelog();
    let schema = schema();
    let (first, second) = rows.split_at(rows.len() / 2);
    let ctx = WriteContext::default();
    for server in Server::both() {
        for rows_first in [true, false] {
            let what = format!("{}, rows first: {rows_first}", server.name());
            let prefix = index_name("col-state");
            let url = server.url();
            let (row_sink, chunk_sink) = (
                Arc::new(rows_sink(&url, &prefix)),
                Arc::new(chunks_sink(&url, &prefix)),
            );
            let chunk_of = |part: &[Row]| Chunk::from_rows(&arrow_schema(&schema), part).unwrap();
            // The first writer buffers the first half and checkpoints; it never sends.
            let bytes = if rows_first {
                let mut writer = row_sink.create_writer(&Ctx).unwrap();
                for r in first {
                    writer.write(r.clone(), &ctx).unwrap();
                }
                let state = writer.snapshot_state(CheckpointId(1)).unwrap();
                row_sink
                    .writer_state_serializer()
                    .serialize(&state[0])
                    .unwrap()
            } else {
                let mut writer = chunk_sink.create_writer(&Ctx).unwrap();
                for part in first.chunks(50) {
                    writer.write(chunk_of(part), &ctx).unwrap();
                }
                let state = writer.snapshot_state(CheckpointId(1)).unwrap();
                chunk_sink
                    .writer_state_serializer()
                    .serialize(&state[0])
                    .unwrap()
            };
            assert_eq!(
                server.rest().indices(&prefix),
                Vec::<String>::new(),
                "{what}"
            );
            // The other one restores it, writes the second half and ends.
            if rows_first {
                let serializer = chunk_sink.writer_state_serializer();
                let state = serializer
                    .deserialize(serializer.version(), &bytes)
                    .unwrap();
                let mut writer = chunk_sink.restore_writer(&Ctx, vec![state]).unwrap();
                writer.write(chunk_of(second), &ctx).unwrap();
                writer.flush(FlushMode::EndOfInput).await.unwrap();
            } else {
                let serializer = row_sink.writer_state_serializer();
                let state = serializer
                    .deserialize(serializer.version(), &bytes)
                    .unwrap();
                let mut writer = row_sink.restore_writer(&Ctx, vec![state]).unwrap();
                for r in second {
                    writer.write(r.clone(), &ctx).unwrap();
                }
                writer.flush(FlushMode::EndOfInput).await.unwrap();
            }
            let docs = documents(&server, &prefix);
            assert_eq!(docs.keys().cloned().collect::<Vec<_>>(), ids, "{what}");
            assert_same_documents(&what, &expected_documents(&rows, &prefix), &docs);
            delete_indices(&server, &prefix);
        }
    }
}

//! The columnar checks find what differs: fake connectors (registered here) whose columnar
//! source or sink loses, changes or adds a row.

use std::collections::BTreeMap;

use weir_connector_api::columnar::{arrow_schema, Chunk, ChunkSourceFactory, Columnar};
use weir_connector_api::config::{OptionSet, ValidatedConfig};
use weir_connector_api::erased::BoxedSource;
use weir_connector_api::error::Result;
use weir_connector_api::factory::{
    ConnectorFactory, ConnectorInfo, FactoryContext, JobContext, SourceFactory,
};
use weir_connector_api::row::{DataType, Field, Row, Schema, Value};
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};
use weir_testkit::columnar::{check_chunk_source, Node};

/// Rows `0..100` (`id`, `id * 2`); its columnar source does what `FAULT` says.
struct Fake(Fault);

#[derive(Clone, Copy, PartialEq)]
enum Fault {
    None,
    LosesARow,
    ChangesAValue,
}

static FAKE_OK: Fake = Fake(Fault::None);
static FAKE_LOSES: Fake = Fake(Fault::LosesARow);
static FAKE_CHANGES: Fake = Fake(Fault::ChangesAValue);
weir_connector_api::register_connector!(FAKE_OK);
weir_connector_api::register_connector!(FAKE_LOSES);
weir_connector_api::register_connector!(FAKE_CHANGES);

const ROWS: u64 = 100;

fn row(n: u64) -> Row {
    let n = n as i64;
    Row::insert(vec![Value::Int64(n), Value::Int64(n * 2)])
}

impl ConnectorFactory for Fake {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo {
            identifier: match self.0 {
                Fault::None => "testkit-columns-ok",
                Fault::LosesARow => "testkit-columns-loses",
                Fault::ChangesAValue => "testkit-columns-changes",
            },
            crate_name: "weir-testkit",
            version: "0.1.0-1.1",
            description: "a fake columnar source (tests)",
        }
    }
    fn as_source(&self) -> Option<&dyn SourceFactory> {
        Some(self)
    }
    fn as_chunk_source(&self) -> Option<&dyn ChunkSourceFactory> {
        Some(self)
    }
}

impl SourceFactory for Fake {
    fn source_options(&self) -> OptionSet {
        OptionSet::new("fake")
    }
    fn create_source(
        &self,
        _: &ValidatedConfig,
        _: &FactoryContext<'_>,
    ) -> Result<BoxedSource<Row>> {
        Ok(BoxedSource::new(DataGeneratorSource::new(
            row,
            Some(ROWS),
            RateLimiterStrategy::no_op(),
        )))
    }
}

impl ChunkSourceFactory for Fake {
    fn create_chunk_source(
        &self,
        _: &ValidatedConfig,
        ctx: &FactoryContext<'_>,
        _: &JobContext,
    ) -> Result<Columnar<BoxedSource<Chunk>>> {
        let schema = arrow_schema(ctx.schema);
        let fault = self.0;
        // One chunk of ten rows per number.
        let chunk = move |n: u64| {
            let mut rows: Vec<Row> = (n * 10..n * 10 + 10).map(row).collect();
            match fault {
                Fault::LosesARow if n == 3 => {
                    rows.pop();
                }
                Fault::ChangesAValue if n == 5 => rows[2].values[1] = Value::Null,
                _ => {}
            }
            #[allow(clippy::expect_used)]
            Chunk::from_rows(&schema, &rows).expect("rows of the schema")
        };
        Ok(Columnar::Chunks(BoxedSource::new(
            DataGeneratorSource::new(chunk, Some(ROWS / 10), RateLimiterStrategy::no_op()),
        )))
    }
}

fn node(connector: &str) -> Node {
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("double", DataType::Int64, true),
    ]);
    Node::new(connector, BTreeMap::new(), schema)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_columnar_source_must_read_its_row_sources_rows() {
    assert_eq!(
        check_chunk_source(&node("testkit-columns-ok")).await,
        Ok(100)
    );

    let lost = check_chunk_source(&node("testkit-columns-loses"))
        .await
        .unwrap_err();
    assert!(
        lost.contains("the Row source has 100 rows, the columnar source 99"),
        "{lost}"
    );

    let changed = check_chunk_source(&node("testkit-columns-changes"))
        .await
        .unwrap_err();
    assert!(
        changed.contains("the Row source has 100 rows, the columnar source 100")
            && changed.contains("Int64(104)")
            && changed.contains("Null"),
        "{changed}"
    );

    let missing = check_chunk_source(&node("no-such-connector"))
        .await
        .unwrap_err();
    assert_eq!(missing, "no connector `no-such-connector` is registered");
}

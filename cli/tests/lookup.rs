//! Pipeline `lookup` transforms: the example and a join of a CSV stream with a CSV, JSON or
//! Parquet table run with the `weir` binary and their printed rows are checked one by one
//! against the table files; through the library,
//! a file table reloaded while the job runs, and a connector's own lookup table (a fake,
//! registered here) answering synchronously behind a partial cache and asynchronously with
//! retries.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use common::{repo, run, weir};
use weir_cli::print::render;
use weir_connector_api::config::{ConfigOption, OptionSet, ValidatedConfig};
use weir_connector_api::erased::BoxedSink;
use weir_connector_api::error::Result;
use weir_connector_api::factory::{
    ConnectorFactory, ConnectorInfo, FactoryContext, LookupFactory, LookupProvider, SinkFactory,
};
use weir_connector_api::lookup::{AsyncLookupFunction, LookupFunction};
use weir_connector_api::row::{DataType, Field, Row, Schema, Value};
use weir_connector_api::sink::{FlushMode, InitContext, Sink, SinkWriter, WriteContext};
use weir_connector_datagen::factory::RowGenerator;

/// The printed rows of `weir run`'s standard output, without subtask prefixes, sorted.
fn printed(out: &str) -> Vec<String> {
    let mut rows: Vec<String> = out
        .lines()
        .filter(|l| l.contains("+I["))
        .map(|l| l.split_once("> ").map_or(l, |(_, rest)| rest).to_owned())
        .collect();
    rows.sort();
    rows
}

fn customers_of(csv: &str) -> BTreeMap<i64, Vec<(String, String)>> {
    let mut table: BTreeMap<i64, Vec<(String, String)>> = BTreeMap::new();
    for line in csv.lines().skip(1) {
        let parts: Vec<&str> = line.split(',').collect();
        table
            .entry(parts[0].parse().unwrap())
            .or_default()
            .push((parts[1].to_owned(), parts[2].to_owned()));
    }
    table
}

#[test]
fn the_lookup_example_runs_and_every_row_matches_the_customers_file() {
    let (code, out, err) = run(weir()
        .args(["run", "examples/lookup-enrich.toml", "--progress", "quiet"])
        .current_dir(repo()));
    assert_eq!(code, 0, "{err}");
    // The orders as the example's datagen source makes them (seed 0).
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("customer", DataType::Int64, false),
        Field::new("amount", DataType::Float64, false),
    ]);
    let options: BTreeMap<String, String> = [
        ("id.kind", "sequence"),
        ("customer.min", "1"),
        ("customer.max", "6"),
        ("amount.min", "1"),
        ("amount.max", "500"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let mut errors = Vec::new();
    let generator = RowGenerator::new(&schema, &options, 0, &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    let customers =
        customers_of(&fs::read_to_string(repo().join("examples/customers.csv")).unwrap());
    let mut expected = Vec::new();
    let mut unknown = 0;
    for n in 0..20 {
        let order = generator.row(n);
        let Value::Int64(customer) = order.values[1] else {
            panic!("{order:?}");
        };
        let (name, tier) = match customers.get(&customer).map(Vec::as_slice) {
            Some([(name, tier)]) => (Value::String(name.clone()), Value::String(tier.clone())),
            None => {
                unknown += 1;
                (Value::Null, Value::Null)
            }
            Some(more) => panic!("customer {customer} twice in the file: {more:?}"),
        };
        expected.push(render(&Row::insert(vec![
            order.values[0].clone(),
            order.values[1].clone(),
            name,
            tier,
            order.values[2].clone(),
        ])));
    }
    expected.sort();
    assert!(
        unknown > 0,
        "the example shows a customer missing from the file"
    );
    assert_eq!(printed(&out), expected);
}

/// Writes `text` to `path` whole (a reload never sees half a file).
fn replace_file(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text).unwrap();
    fs::rename(&tmp, path).unwrap();
}

/// The orders-and-customers pipeline; the customers table is `table` in `format`.
fn join_pipeline(join: &str, table: &str, format: &str) -> String {
    format!(
        r#"
[pipeline]
name = "csv-join"
parallelism = 2

[[sources]]
name = "orders"
connector = "files"
schema = [
  {{ name = "id", type = "int64", nullable = false }},
  {{ name = "customer", type = "int64" }},
  {{ name = "amount", type = "float64" }},
]
options = {{ path = "orders.csv", format = "csv" }}

[[transforms]]
name = "enriched"
input = "orders"
filter = "amount >= 2"
select = ["id", "name", "customer"]

[transforms.lookup]
connector = "files"
schema = [
  {{ name = "id", type = "int64", nullable = false }},
  {{ name = "name", type = "string" }},
  {{ name = "tier", type = "string" }},
]
options = {{ path = "{table}", format = "{format}" }}
keys = {{ customer = "id" }}
fields = ["name"]
join = "{join}"
cache = "full"

[[sinks]]
name = "out"
input = "enriched"
connector = "print"
"#
    )
}

/// Writes `customers` (CSV text) as JSON lines and as Parquet beside it, for the same table in
/// every format the files table reads.
fn write_customer_tables(dir: &Path, customers: &str) {
    use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};

    fs::write(dir.join("customers.csv"), customers).unwrap();
    let rows: Vec<Vec<&str>> = customers
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let mut json = String::new();
    for r in &rows {
        let object =
            serde_json::json!({ "id": r[0].parse::<i64>().unwrap(), "name": r[1], "tier": r[2] });
        writeln!(json, "{object}").unwrap();
    }
    fs::write(dir.join("customers.json"), json).unwrap();
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(
        rows.iter().map(|r| r[0].parse::<i64>().unwrap()),
    ));
    let names: ArrayRef = Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r[1])));
    let tiers: ArrayRef = Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r[2])));
    let batch = RecordBatch::try_from_iter_with_nullable(vec![
        ("id", ids, false),
        ("name", names, true),
        ("tier", tiers, true),
    ])
    .unwrap();
    let file = fs::File::create(dir.join("customers.parquet")).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

#[test]
fn a_csv_stream_joined_with_a_csv_json_or_parquet_table_inner_and_left() {
    let tmp = tempfile::tempdir().unwrap();
    // Orders 1..=60 of customers 0..=8 (customer 0, 7 and 8 are not in the table); amounts
    // below 2 are filtered out before the lookup.
    let mut orders = String::from("id,customer,amount\n");
    for id in 1..=60_i64 {
        writeln!(orders, "{id},{},{}", id * 7 % 9, id % 5).unwrap();
    }
    fs::write(tmp.path().join("orders.csv"), &orders).unwrap();
    // Customer 2 has two rows: its orders come out twice.
    let customers = "id,name,tier\n1,Ada,gold\n2,Bo,silver\n2,Bo (second account),gold\n\
                     3,Cy,gold\n4,Di,bronze\n5,Ed,silver\n6,Flo,gold\n";
    write_customer_tables(tmp.path(), customers);
    let table = customers_of(customers);
    for (file, format) in [
        ("customers.csv", "csv"),
        ("customers.json", "json"),
        ("customers.parquet", "parquet"),
    ] {
        for join in ["inner", "left"] {
            fs::write(
                tmp.path().join("join.toml"),
                join_pipeline(join, file, format),
            )
            .unwrap();
            let (code, out, err) = run(weir()
                .args(["run", "join.toml", "--progress", "quiet"])
                .current_dir(tmp.path()));
            assert_eq!(code, 0, "{format} {join}: {err}");
            let mut expected = Vec::new();
            for id in 1..=60_i64 {
                let (customer, amount) = (id * 7 % 9, id % 5);
                if amount < 2 {
                    continue;
                }
                match table.get(&customer) {
                    Some(rows) => {
                        for (name, _) in rows {
                            expected.push(render(&Row::insert(vec![
                                Value::Int64(id),
                                Value::String(name.clone()),
                                Value::Int64(customer),
                            ])));
                        }
                    }
                    None if join == "left" => expected.push(render(&Row::insert(vec![
                        Value::Int64(id),
                        Value::Null,
                        Value::Int64(customer),
                    ]))),
                    None => {}
                }
            }
            expected.sort();
            assert!(expected.len() > 20);
            assert_eq!(printed(&out), expected, "{format} table, {join} join");
        }
    }
}

/// Rows the collecting sink of these tests received, by sink name.
static COLLECTED: LazyLock<Mutex<HashMap<String, Vec<Row>>>> = LazyLock::new(Mutex::default);

fn collected(name: &str) -> Vec<Row> {
    COLLECTED
        .lock()
        .unwrap()
        .get(name)
        .cloned()
        .unwrap_or_default()
}

/// A sink that keeps rows in [`COLLECTED`] (a test sink, registered as `test-collect`).
#[derive(Clone)]
struct Collect(String);

struct CollectWriter(String);

#[async_trait::async_trait]
impl SinkWriter<Row> for CollectWriter {
    fn write(&mut self, row: Row, _ctx: &WriteContext) -> Result<()> {
        COLLECTED
            .lock()
            .unwrap()
            .entry(self.0.clone())
            .or_default()
            .push(row);
        Ok(())
    }
    async fn flush(&mut self, _mode: FlushMode) -> Result<()> {
        Ok(())
    }
}

impl Sink<Row> for Collect {
    type Writer = CollectWriter;
    fn create_writer(&self, _ctx: &dyn InitContext) -> Result<CollectWriter> {
        Ok(CollectWriter(self.0.clone()))
    }
}

/// `answers`: how the fake table answers, `sync` or `async`.
static ANSWERS: LazyLock<ConfigOption<String>> =
    LazyLock::new(|| ConfigOption::new("answers").default_value("sync".to_owned()));

/// Lookups that reached the fake table, by answer kind.
static TABLE_CALLS: LazyLock<Mutex<HashMap<String, u64>>> = LazyLock::new(Mutex::default);

/// The fake table: key row `[k]` has one row `[k, "name-k"]` for `k` in 1..=5; the async
/// version answers empty at the first attempt of each key (a row not replicated yet).
struct FakeTable {
    answers: String,
    attempts: Mutex<HashMap<i64, u32>>,
}

impl FakeTable {
    fn answer(&self, key: &Row) -> Vec<Row> {
        *TABLE_CALLS
            .lock()
            .unwrap()
            .entry(self.answers.clone())
            .or_default() += 1;
        match key.get(0) {
            Some(Value::Int64(k)) if (1..=5).contains(k) => vec![Row::insert(vec![
                Value::Int64(*k),
                Value::String(format!("name-{k}")),
            ])],
            _ => Vec::new(),
        }
    }
}

impl LookupFunction<Row, Row> for FakeTable {
    fn lookup(&mut self, key: &Row) -> Result<Vec<Row>> {
        Ok(self.answer(key))
    }
}

#[async_trait::async_trait]
impl AsyncLookupFunction<Row, Row> for FakeTable {
    async fn lookup(&self, key: &Row) -> Result<Vec<Row>> {
        tokio::time::sleep(Duration::from_millis(1)).await;
        let first = {
            let Some(Value::Int64(k)) = key.get(0) else {
                return Ok(Vec::new());
            };
            let mut attempts = self.attempts.lock().unwrap();
            let n = attempts.entry(*k).or_default();
            *n += 1;
            *n == 1
        };
        Ok(if first { Vec::new() } else { self.answer(key) })
    }
}

/// Registers `test-collect` (a sink) and `test-table` (a lookup table) for these tests.
struct TestConnectors;
static TEST_COLLECT: TestConnectors = TestConnectors;
weir_connector_api::register_connector!(TEST_COLLECT);

struct TestTable;
static TEST_TABLE: TestTable = TestTable;
weir_connector_api::register_connector!(TEST_TABLE);

impl ConnectorFactory for TestConnectors {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo {
            identifier: "test-collect",
            crate_name: "weir-cli",
            version: "0.1.0-1.1",
            description: "collects rows in memory (tests)",
        }
    }
    fn as_sink(&self) -> Option<&dyn SinkFactory> {
        Some(self)
    }
}

impl SinkFactory for TestConnectors {
    fn sink_options(&self) -> OptionSet {
        OptionSet::new("test-collect sink")
    }
    fn create_sink(
        &self,
        _c: &ValidatedConfig,
        ctx: &FactoryContext<'_>,
    ) -> Result<BoxedSink<Row>> {
        Ok(BoxedSink::new(Collect(ctx.name.to_owned())))
    }
}

impl ConnectorFactory for TestTable {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo {
            identifier: "test-table",
            crate_name: "weir-cli",
            version: "0.1.0-1.1",
            description: "a fake lookup table (tests)",
        }
    }
    fn as_lookup(&self) -> Option<&dyn LookupFactory> {
        Some(self)
    }
}

impl LookupFactory for TestTable {
    fn lookup_options(&self) -> OptionSet {
        OptionSet::new("test-table lookup").option(&ANSWERS)
    }
    fn create_lookup(
        &self,
        config: &ValidatedConfig,
        _ctx: &FactoryContext<'_>,
        keys: &[String],
    ) -> Result<LookupProvider> {
        assert_eq!(keys, ["id"]);
        let table = FakeTable {
            answers: config.get(&ANSWERS),
            attempts: Mutex::default(),
        };
        Ok(if table.answers == "async" {
            LookupProvider::Async(Arc::new(table))
        } else {
            LookupProvider::Sync(Box::new(table))
        })
    }
}

/// Validates, builds and runs a pipeline through the library, on a runtime of its own.
fn run_pipeline(text: &str) {
    weir_cli::catalog::link();
    let (pipeline, diagnostics) = weir_cli::pipeline::validate(text, "p");
    let pipeline = pipeline.unwrap_or_else(|| panic!("{}", diagnostics.render("p.toml")));
    let (job, _) =
        weir_cli::pipeline::build(&pipeline, weir_cli::pipeline::RestoreSettings::default())
            .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let result = runtime.block_on(job.execute());
    assert!(result.is_finished(), "{:?}", result.status);
}

fn table_pipeline(sink: &str, lookup: &str) -> String {
    format!(
        r#"
[[sources]]
name = "orders"
connector = "datagen"
schema = [
  {{ name = "id", type = "int64", nullable = false }},
  {{ name = "customer", type = "int64", nullable = false }},
]
options = {{ number-of-rows = 300, fields.id.kind = "sequence", fields.customer.min = 0, fields.customer.max = 7 }}

[[transforms]]
name = "joined"
input = "orders"

[transforms.lookup]
connector = "test-table"
schema = [
  {{ name = "id", type = "int64", nullable = false }},
  {{ name = "name", type = "string" }},
]
keys = {{ customer = "id" }}
{lookup}

[[sinks]]
name = "{sink}"
input = "joined"
connector = "test-collect"
"#
    )
}

/// Checks each joined row: `[id, customer, name]`, the name of customers 1..=5.
fn check_joined(rows: &[Row], left: bool) {
    assert!(!rows.is_empty());
    let mut ids: Vec<i64> = Vec::new();
    for row in rows {
        let (Value::Int64(id), Value::Int64(customer)) = (&row.values[0], &row.values[1]) else {
            panic!("{row:?}");
        };
        let want = if (1..=5).contains(customer) {
            Value::String(format!("name-{customer}"))
        } else {
            assert!(left, "an inner join kept customer {customer}");
            Value::Null
        };
        assert_eq!(row.values[2], want, "{row:?}");
        ids.push(*id);
    }
    ids.sort_unstable();
    let before = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), before, "a row twice");
    if left {
        assert_eq!(ids, (0..300).collect::<Vec<_>>());
    }
}

#[test]
fn a_connector_table_answers_synchronously_behind_a_partial_cache() {
    run_pipeline(&table_pipeline(
        "sync-out",
        "options = { answers = \"sync\" }\njoin = \"left\"\n\
         cache = { type = \"partial\", max-rows = 100, expire-after-write = \"1h\" }",
    ));
    check_joined(&collected("sync-out"), true);
    // Eight customers (0..=7), each loaded once: the cache answered the other lookups.
    let calls = TABLE_CALLS
        .lock()
        .unwrap()
        .get("sync")
        .copied()
        .unwrap_or(0);
    assert_eq!(calls, 8, "lookups that reached the table");
}

#[test]
fn a_connector_table_answers_asynchronously_with_retries_of_empty_results() {
    run_pipeline(&table_pipeline(
        "async-out",
        "options = { answers = \"async\" }\ncapacity = 16\norder = \"unordered\"\n\
         timeout = \"10s\"\nretry = { when = \"empty\", max-attempts = 2, delay = \"5ms\" }",
    ));
    // Without the retry every first lookup of a key would have found nothing.
    let rows = collected("async-out");
    check_joined(&rows, false);
    let expected = (0..300)
        .filter(|n| (1..=5).contains(&customer_of(*n)))
        .count();
    assert_eq!(rows.len(), expected);
}

/// The customer of order `n` as the datagen source of [`table_pipeline`] makes it.
fn customer_of(n: u64) -> i64 {
    static GENERATOR: LazyLock<RowGenerator> = LazyLock::new(|| {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("customer", DataType::Int64, false),
        ]);
        let options: BTreeMap<String, String> = [
            ("id.kind", "sequence"),
            ("customer.min", "0"),
            ("customer.max", "7"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let mut errors = Vec::new();
        RowGenerator::new(&schema, &options, 0, &mut errors)
    });
    match GENERATOR.row(n).values[1] {
        Value::Int64(c) => c,
        ref other => panic!("{other:?}"),
    }
}

#[test]
fn a_file_table_is_reloaded_while_the_job_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let table = tmp.path().join("names.csv");
    replace_file(&table, "id,name\n1,old-1\n2,old-2\n");
    let text = format!(
        r#"
[[sources]]
name = "ticks"
connector = "datagen"
schema = [
  {{ name = "id", type = "int64", nullable = false }},
  {{ name = "key", type = "int64", nullable = false }},
]
options = {{ number-of-rows = 300, rows-per-second = 100, fields.id.kind = "sequence", fields.key.min = 1, fields.key.max = 2 }}

[[transforms]]
name = "named"
input = "ticks"

[transforms.lookup]
connector = "files"
schema = [
  {{ name = "id", type = "int64", nullable = false }},
  {{ name = "name", type = "string" }},
]
options = {{ path = "{}", format = "csv" }}
keys = {{ key = "id" }}
cache = {{ type = "full", reload-interval = "100ms" }}

[[sinks]]
name = "reload-out"
input = "named"
connector = "test-collect"
"#,
        table.display()
    );
    let rewrite = std::thread::spawn(move || {
        // Once a third of the rows went out, the table changes.
        let deadline = Instant::now() + Duration::from_secs(30);
        while collected("reload-out").len() < 100 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        replace_file(&table, "id,name\n1,new-1\n2,new-2\n");
    });
    run_pipeline(&text);
    rewrite.join().unwrap();
    let rows = collected("reload-out");
    assert_eq!(rows.len(), 300);
    let names: Vec<String> = rows
        .iter()
        .map(|r| match (&r.values[1], &r.values[2]) {
            (Value::Int64(key), Value::String(name)) => {
                assert!(name.ends_with(&format!("-{key}")), "{r:?}");
                name.split('-').next().unwrap_or_default().to_owned()
            }
            other => panic!("{other:?}"),
        })
        .collect();
    let first_new = names
        .iter()
        .position(|n| n == "new")
        .expect("the reload shows");
    assert!(first_new >= 100, "new names before the file changed");
    assert!(
        names[first_new..].iter().all(|n| n == "new"),
        "old names after the reload"
    );
}

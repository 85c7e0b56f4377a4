//! CPU per million rows of the columnar decoders against the row decoders (BENCHMARKS.md,
//! "Columnar decoders for every type and canal-json").
//!
//! ```text
//! cargo run --release -p weir-formats --example columnar_decode -- [rows] [rounds] [workload] [path]
//! ```
//!
//! (`workload` and `path` pick one of each, e.g. to profile it.)
//!
//! For each workload, messages of about `rows` rows (default 1,000,000) are made first (not
//! measured); then, in interleaved rounds (default 5), they are decoded in batches of 1024
//! messages three ways: `rows` (the row decoder, rows dropped), `rows+chunk` (the row decoder,
//! then the rows made a chunk: what a columnar pipeline did through the adapter) and
//! `columns` (`columnar::chunk_decoder`). CPU is the thread's own time on the CPU
//! (`/proc/thread-self/schedstat`), in seconds per million rows. Prints one line per run:
//! `workload path round cpu_s_per_million_rows rows`.

use std::collections::BTreeMap;
use std::fs;

use weir_connector_api::format::find_format;
use weir_connector_api::row::{DataType, Field, Row, Schema, TimeUnit, Value};
use weir_formats::chunk::{arrow_schema, Chunk};
use weir_formats::columnar::chunk_decoder;

type Error = Box<dyn std::error::Error>;

/// The thread's CPU time in nanoseconds (Linux).
fn cpu_nanos() -> Result<u64, Error> {
    let text = fs::read_to_string("/proc/thread-self/schedstat")?;
    let first = text.split_whitespace().next().ok_or("empty schedstat")?;
    Ok(first.parse()?)
}

/// A small seeded generator (xorshift).
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const STATUSES: [&str; 4] = ["new", "paid", "shipped", "cancelled"];

/// The five fields of jobs a-c (id, customer, status, amount, at).
fn orders_schema() -> Schema {
    Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("customer", DataType::String, true),
        Field::new("status", DataType::String, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("at", DataType::TimestampMillis, true),
    ])
}

/// A Canal image of an order, every value a string as Canal writes them.
fn canal_image(r: &mut Random, id: u64) -> String {
    let customer: String = (0..8)
        .map(|_| char::from(b'a' + u8::try_from(r.below(26)).unwrap_or(0)))
        .collect();
    let status = STATUSES[usize::try_from(r.below(4)).unwrap_or(0)];
    let amount = r.below(50_000);
    let at = 1_704_067_200_000 + r.below(86_400_000);
    format!(
        r#"{{"id":"{id}","customer":"{customer}","status":"{status}","amount":"{}.{:02}","at":"{at}"}}"#,
        amount / 100,
        amount % 100
    )
}

/// Canal events of about `rows` rows: 60% one-row inserts, 10% three-row inserts, 20% updates
/// (one changed field in `old`), 10% deletes.
fn canal_messages(rows: usize) -> Vec<Vec<u8>> {
    let mut r = Random(18);
    let mut messages = Vec::new();
    let mut made = 0;
    let mut id = 0;
    while made < rows {
        id += 1;
        let head = r#""database":"shop","table":"orders","isDdl":false,"es":1704067200000"#;
        let event = match r.below(10) {
            0..=5 => {
                made += 1;
                format!(
                    r#"{{"data":[{}],"type":"INSERT",{head}}}"#,
                    canal_image(&mut r, id)
                )
            }
            6 => {
                made += 3;
                let images: Vec<String> = (0..3).map(|i| canal_image(&mut r, id + i)).collect();
                id += 2;
                format!(
                    r#"{{"data":[{}],"type":"INSERT",{head}}}"#,
                    images.join(",")
                )
            }
            7 | 8 => {
                made += 2;
                let old = STATUSES[usize::try_from(r.below(4)).unwrap_or(0)];
                format!(
                    r#"{{"data":[{}],"old":[{{"status":"{old}"}}],"type":"UPDATE",{head}}}"#,
                    canal_image(&mut r, id)
                )
            }
            _ => {
                made += 1;
                format!(
                    r#"{{"data":[{}],"type":"DELETE",{head}}}"#,
                    canal_image(&mut r, id)
                )
            }
        };
        messages.push(event.into_bytes());
    }
    messages
}

/// Fields of the types of API line 1.1 (scalars and, for JSON, nested).
fn typed_schema(nested: bool) -> Schema {
    let mut fields = vec![
        Field::new("id", DataType::Int64, false),
        Field::new("qty", DataType::Int32, true),
        Field::new("flags", DataType::UInt16, true),
        Field::new("ratio", DataType::Float32, true),
        Field::new(
            "price",
            DataType::Decimal128 {
                precision: 12,
                scale: 2,
            },
            true,
        ),
        Field::new("day", DataType::Date32, true),
        Field::new(
            "at",
            DataType::Timestamp {
                unit: TimeUnit::Microsecond,
                tz: Some("UTC".into()),
            },
            true,
        ),
    ];
    if nested {
        fields.extend([
            Field::new("items", DataType::List(Box::new(DataType::Int32)), true),
            Field::new(
                "buyer",
                DataType::Struct(vec![
                    Field::new("id", DataType::Int64, false),
                    Field::new("name", DataType::String, true),
                ]),
                true,
            ),
            Field::new(
                "tags",
                DataType::Map(Box::new(DataType::String), Box::new(DataType::Float64)),
                true,
            ),
        ]);
    }
    Schema::new(fields)
}

fn typed_rows(schema: &Schema, rows: usize) -> Vec<Row> {
    let mut r = Random(7);
    let nested = schema.fields.len() > 7;
    (0..rows)
        .map(|i| {
            let mut values = vec![
                Value::Int64(i64::try_from(i).unwrap_or(0)),
                Value::Int64(i64::try_from(r.below(1000)).unwrap_or(0)),
                Value::UInt64(r.below(65_536)),
                Value::Float32(f32::from(u16::try_from(r.below(1000)).unwrap_or(0)) / 8.0),
                Value::Decimal128 {
                    value: i128::from(r.below(10_000_000)),
                    scale: 2,
                },
                Value::Date32(19_000 + i32::try_from(r.below(1000)).unwrap_or(0)),
                Value::Timestamp(
                    1_704_067_200_000_000 + i64::try_from(r.below(86_400_000_000)).unwrap_or(0),
                    TimeUnit::Microsecond,
                ),
            ];
            if nested {
                let items = (0..r.below(4))
                    .map(|_| Value::Int64(i64::try_from(r.below(100)).unwrap_or(0)))
                    .collect();
                values.push(Value::List(items));
                values.push(Value::Struct(vec![
                    Value::Int64(i64::try_from(r.below(10_000)).unwrap_or(0)),
                    Value::String(format!("buyer-{}", r.below(100))),
                ]));
                let tags = (0..r.below(3))
                    .map(|k| {
                        let weight = f64::from(u32::try_from(r.below(100)).unwrap_or(0)) / 4.0;
                        (Value::String(format!("t{k}")), Value::Float64(weight))
                    })
                    .collect();
                values.push(Value::Map(tags));
            }
            Row::insert(values)
        })
        .collect()
}

/// The row encoder's messages of `rows`.
fn encode(id: &str, schema: &Schema, rows: &[Row]) -> Result<Vec<Vec<u8>>, Error> {
    let format = find_format(id).ok_or("format not registered")?;
    let encoder = format.encoder(schema, &format.options().validate(&BTreeMap::new())?)?;
    rows.iter()
        .map(|row| {
            let mut out = Vec::new();
            encoder.encode(row, &mut out)?;
            Ok(out)
        })
        .collect()
}

/// Decodes `messages` in batches `path`'s way; returns (CPU seconds, rows).
fn run(id: &str, schema: &Schema, messages: &[Vec<u8>], path: &str) -> Result<(f64, usize), Error> {
    let format = find_format(id).ok_or("format not registered")?;
    let config = format.options().validate(&BTreeMap::new())?;
    let rows_decoder = format.decoder(schema, &config)?;
    let columns = chunk_decoder(id, schema, &config)?.ok_or("no columnar decoder")?;
    let arrow = arrow_schema(schema);
    let start = cpu_nanos()?;
    let mut count = 0;
    for batch in messages.chunks(1024) {
        let batch: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
        match path {
            "columns" => {
                if let Some(chunk) = columns.decode_chunk(&batch)? {
                    count += chunk.num_rows();
                }
            }
            _ => {
                let mut rows = Vec::with_capacity(batch.len());
                for message in &batch {
                    rows_decoder.decode(message, &mut rows)?;
                }
                count += rows.len();
                if path == "rows+chunk" {
                    std::hint::black_box(Chunk::from_rows(&arrow, &rows)?);
                }
                std::hint::black_box(rows);
            }
        }
    }
    let nanos = cpu_nanos()? - start;
    #[allow(clippy::cast_precision_loss)]
    Ok((nanos as f64 / 1e9, count))
}

fn main() -> Result<(), Error> {
    weir_formats::link();
    let mut args = std::env::args().skip(1);
    let rows: usize = args.next().map_or(Ok(1_000_000), |a| a.parse())?;
    let rounds: usize = args.next().map_or(Ok(5), |a| a.parse())?;
    let only_workload = args.next();
    let only_path = args.next();
    let orders = orders_schema();
    let typed = typed_schema(true);
    let scalars = typed_schema(false);
    let workloads = [
        (
            "canal-json",
            "canal-json",
            orders.clone(),
            canal_messages(rows),
        ),
        (
            "json-typed",
            "json",
            typed.clone(),
            encode("json", &typed, &typed_rows(&typed, rows))?,
        ),
        (
            "csv-typed",
            "csv",
            scalars.clone(),
            encode("csv", &scalars, &typed_rows(&scalars, rows))?,
        ),
    ];
    for round in 1..=rounds {
        for (name, id, schema, messages) in &workloads {
            if only_workload.as_deref().is_some_and(|w| w != *name) {
                continue;
            }
            for path in ["rows", "rows+chunk", "columns"] {
                if only_path.as_deref().is_some_and(|p| p != path) {
                    continue;
                }
                let (cpu, count) = run(id, schema, messages, path)?;
                #[allow(clippy::cast_precision_loss)]
                let per_million = cpu / (count as f64 / 1e6);
                println!("{name} {path} {round} {per_million:.3} {count}");
            }
        }
    }
    Ok(())
}

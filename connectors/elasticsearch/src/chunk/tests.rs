//! The chunk emitter against the row emitter: the same rows, as chunks, make the same actions
//! (kind, index, id and document bytes), for every type of pipeline schemas, nulls, non-finite
//! floats, dates outside four-digit years, changelog kinds and every write action; and the
//! rows the row emitter refuses are refused on columns too.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use weir_connector_api::columnar::{arrow_schema, Chunk};
use weir_connector_api::row::{DataType, Field, Row, RowKind, Schema, TimeUnit, Value};
use weir_connector_api::sink::WriteContext;

use super::ChunkEmitter;
use crate::index::IndexRouting;
use crate::row::RowEmitter;
use crate::sink::{ActionKind, BulkAction, Emitter};

fn all_types() -> Schema {
    let tz = Some("+02:00".into());
    Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("region", DataType::String, false),
        Field::new("at", DataType::TimestampMillis, false),
        Field::new("b", DataType::Boolean, true),
        Field::new("i8", DataType::Int8, true),
        Field::new("i16", DataType::Int16, true),
        Field::new("i32", DataType::Int32, true),
        Field::new("u8", DataType::UInt8, true),
        Field::new("u16", DataType::UInt16, true),
        Field::new("u32", DataType::UInt32, true),
        Field::new("u64", DataType::UInt64, true),
        Field::new("f32", DataType::Float32, true),
        Field::new("f64", DataType::Float64, true),
        Field::new(
            "dec",
            DataType::Decimal128 {
                precision: 12,
                scale: 3,
            },
            true,
        ),
        Field::new("text \"quoted\"", DataType::String, true),
        Field::new("bytes", DataType::Bytes, true),
        Field::new("day", DataType::Date32, true),
        Field::new("ts_ms", DataType::TimestampMillis, true),
        Field::new("ts_s", DataType::timestamp(TimeUnit::Second, None), true),
        Field::new(
            "ts_ms_tz",
            DataType::timestamp(TimeUnit::Millisecond, tz),
            true,
        ),
        Field::new(
            "ts_us",
            DataType::timestamp(TimeUnit::Microsecond, None),
            true,
        ),
        Field::new(
            "ts_ns",
            DataType::timestamp(TimeUnit::Nanosecond, None),
            true,
        ),
        Field::new("list", DataType::List(Box::new(DataType::Int32)), true),
        Field::new(
            "nested",
            DataType::Struct(vec![
                Field::new("name", DataType::String, true),
                Field::new("tags", DataType::List(Box::new(DataType::String)), true),
                Field::new("score", DataType::Float64, true),
            ]),
            true,
        ),
        Field::new(
            "by_text",
            DataType::Map(Box::new(DataType::String), Box::new(DataType::Int64)),
            true,
        ),
        Field::new(
            "by_number",
            DataType::Map(Box::new(DataType::Int32), Box::new(DataType::Bytes)),
            true,
        ),
    ])
}

fn maybe(value: Value, rng: &mut SmallRng) -> Value {
    if rng.gen_bool(0.15) {
        Value::Null
    } else {
        value
    }
}

fn text(rng: &mut SmallRng) -> String {
    const PIECES: [&str; 6] = ["a", "é", "\"", "\\", "\n", "z😀"];
    (0..rng.gen_range(0..6))
        .map(|_| PIECES[rng.gen_range(0..PIECES.len())])
        .collect()
}

fn float(rng: &mut SmallRng) -> f64 {
    match rng.gen_range(0..8) {
        0 => f64::NAN,
        1 => f64::INFINITY,
        2 => -0.0,
        3 => 1e300,
        _ => rng.gen_range(-1e6..1e6),
    }
}

/// A row of [`all_types`] for key `id`.
fn row(rng: &mut SmallRng, id: i64, kind: RowKind) -> Row {
    let time: i64 = match rng.gen_range(0..6) {
        0 => 253_402_300_800_000 + rng.gen_range(0..1_000_000), // year 10000
        1 => -62_167_219_200_000 - rng.gen_range(1..1_000_000), // before year 0
        _ => rng.gen_range(-10_000_000_000_000..10_000_000_000_000),
    };
    let small = |rng: &mut SmallRng| i64::from(rng.gen_range(i8::MIN..=i8::MAX));
    let mut values = vec![
        Value::Int64(id),
        Value::String(["eu", "us", "ap"][usize::try_from(id % 3).unwrap()].into()),
        Value::TimestampMillis(1_767_225_600_000 + id * 3_600_000),
    ];
    let nested = Value::Struct(vec![
        maybe(Value::String(text(rng)), rng),
        maybe(
            Value::List(
                (0..rng.gen_range(0..3))
                    .map(|_| Value::String(text(rng)))
                    .collect(),
            ),
            rng,
        ),
        maybe(Value::Float64(float(rng)), rng),
    ]);
    let fields = [
        Value::Boolean(rng.gen()),
        Value::Int64(small(rng)),
        Value::Int64(small(rng) * 200),
        Value::Int64(i64::from(rng.gen::<i32>())),
        Value::UInt64(u64::from(rng.gen::<u8>())),
        Value::UInt64(u64::from(rng.gen::<u16>())),
        Value::UInt64(u64::from(rng.gen::<u32>())),
        Value::UInt64(rng.gen()),
        Value::Float32(if rng.gen_bool(0.1) {
            f32::NAN
        } else {
            rng.gen_range(-1e3..1e3)
        }),
        Value::Float64(float(rng)),
        Value::Decimal128 {
            value: rng.gen_range(-10_i128.pow(12) + 1..10_i128.pow(12)),
            scale: 3,
        },
        Value::String(text(rng)),
        Value::Bytes((0..rng.gen_range(0..9)).map(|_| rng.gen()).collect()),
        Value::Date32(rng.gen_range(-800_000..3_000_000)),
        Value::TimestampMillis(time),
        Value::Timestamp(time / 1000, TimeUnit::Second),
        Value::Timestamp(time, TimeUnit::Millisecond),
        Value::Timestamp(time.saturating_mul(1000) + 7, TimeUnit::Microsecond),
        Value::Timestamp(rng.gen(), TimeUnit::Nanosecond),
        Value::List(
            (0..rng.gen_range(0..4))
                .map(|_| maybe(Value::Int64(i64::from(rng.gen::<i32>())), rng))
                .collect(),
        ),
        nested,
        Value::Map(
            (0..rng.gen_range(0..3))
                .map(|k| {
                    (
                        Value::String(format!("k{k}{}", text(rng))),
                        maybe(Value::Int64(rng.gen()), rng),
                    )
                })
                .collect(),
        ),
        Value::Map(
            (0..rng.gen_range(0..3))
                .map(|k| {
                    (
                        Value::Int64(k - 1),
                        maybe(Value::Bytes(vec![rng.gen()]), rng),
                    )
                })
                .collect(),
        ),
    ];
    for value in fields {
        let value = maybe(value, rng);
        values.push(value);
    }
    Row::with_kind(kind, values)
}

/// A changelog: inserts, `-U`/`+U` pairs, deletes.
fn changelog(rng: &mut SmallRng, n: i64) -> Vec<Row> {
    let mut rows = Vec::new();
    for id in 0..n {
        rows.push(row(rng, id, RowKind::Insert));
        if id % 3 == 0 {
            rows.push(row(rng, id, RowKind::UpdateBefore));
            rows.push(row(rng, id, RowKind::UpdateAfter));
        }
        if id % 5 == 0 {
            rows.push(row(rng, id, RowKind::Delete));
        }
    }
    rows
}

fn emitter(schema: &Schema, index: &str, ids: &[&str], action: ActionKind) -> RowEmitter {
    let ids: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
    RowEmitter::new(
        schema,
        IndexRouting::parse(index, schema).unwrap(),
        &ids,
        "_",
        action,
    )
    .unwrap()
}

/// The actions of `rows` on the row path (`None` for a row that makes none), or the error.
fn row_actions(rows: &[Row], mut emitter: RowEmitter) -> Result<Vec<BulkAction>, String> {
    let ctx = WriteContext::default();
    let mut actions = Vec::new();
    for r in rows {
        if let Some(a) = emitter.emit(r.clone(), &ctx).map_err(|e| e.to_string())? {
            actions.push(a);
        }
    }
    Ok(actions)
}

fn chunk_actions(
    schema: &Schema,
    rows: &[Row],
    emitter: RowEmitter,
    per_chunk: usize,
) -> Result<Vec<BulkAction>, String> {
    let mut emitter = ChunkEmitter::new(emitter);
    let mut actions = Vec::new();
    for part in rows.chunks(per_chunk) {
        let chunk = Chunk::from_rows(&arrow_schema(schema), part).unwrap();
        actions.extend(emitter.actions(&chunk).map_err(|e| e.to_string())?);
    }
    Ok(actions)
}

#[test]
fn every_type_and_kind_makes_the_row_emitters_actions() {
    let schema = all_types();
    let mut rng = SmallRng::seed_from_u64(18);
    let rows = changelog(&mut rng, 400);
    let setups: [(&str, &[&str], ActionKind); 5] = [
        ("docs", &["id"], ActionKind::Index),
        (
            "docs-{region}-{at|%Y-%m-%d}",
            &["region", "id"],
            ActionKind::Upsert,
        ),
        (
            "docs-{id}",
            &["id", "bytes", "f64", "b", "ts_ms"],
            ActionKind::Update,
        ),
        ("docs", &[], ActionKind::Create),
        ("docs-{at|%Y}", &["id"], ActionKind::Delete),
    ];
    for (index, ids, action) in setups {
        let e = emitter(&schema, index, ids, action);
        // Without ids a delete has no document to name: only inserts then.
        let input: Vec<Row> = if ids.is_empty() {
            rows.iter()
                .filter(|r| r.kind == RowKind::Insert)
                .cloned()
                .collect()
        } else {
            rows.clone()
        };
        let expected = row_actions(&input, e.clone()).unwrap();
        assert!(
            expected.len() > input.len() / 2,
            "{index}: {} actions",
            expected.len()
        );
        for per_chunk in [1, 7, 500] {
            let got = chunk_actions(&schema, &input, e.clone(), per_chunk).unwrap();
            assert_eq!(got.len(), expected.len(), "{index}, chunks of {per_chunk}");
            for (n, (a, b)) in got.iter().zip(&expected).enumerate() {
                assert_eq!(
                    a,
                    b,
                    "{index}, chunks of {per_chunk}, action {n}:\n{}\n{}",
                    a.describe(),
                    String::from_utf8_lossy(a.document())
                );
            }
        }
    }
}

#[test]
fn rows_the_row_emitter_refuses_are_refused_on_columns() {
    let schema = Schema::new(vec![
        Field::new("id", DataType::String, true),
        Field::new("when", DataType::Int64, true),
        Field::new(
            "d",
            DataType::Decimal128 {
                precision: 5,
                scale: 1,
            },
            true,
        ),
        Field::new(
            "m",
            DataType::Map(Box::new(DataType::Float64), Box::new(DataType::Int64)),
            true,
        ),
    ]);
    let ok = |id: &str| {
        vec![
            Value::String(id.into()),
            Value::Int64(0),
            Value::Null,
            Value::Null,
        ]
    };
    let mut long_id = ok(&"x".repeat(600));
    long_id[0] = Value::String("x".repeat(600));
    let mut no_time = ok("a");
    no_time[1] = Value::Null;
    let mut float_key = ok("b");
    float_key[3] = Value::Map(vec![(Value::Float64(1.5), Value::Int64(1))]);
    let cases = [
        ("docs", vec![long_id], "at most 512"),
        ("docs-{when|%Y}", vec![no_time], "every row needs a time"),
        ("docs", vec![float_key], "map keys must be strings"),
        (
            "docs-{id}",
            vec![ok("a"), {
                let mut null_name = ok("c");
                null_name[0] = Value::Null;
                null_name
            }],
            "every row needs a value",
        ),
    ];
    for (index, values, reason) in cases {
        let rows: Vec<Row> = values.into_iter().map(Row::insert).collect();
        let e = emitter(&schema, index, &["id"], ActionKind::Index);
        let row_error = row_actions(&rows, e.clone()).expect_err(index);
        let chunk_error = chunk_actions(&schema, &rows, e, 10).expect_err(index);
        assert!(row_error.contains(reason), "{index}: {row_error}");
        assert!(chunk_error.contains(reason), "{index}: {chunk_error}");
    }
}

/// Slices of one chunk (shared columns with offsets, as a splitter makes them) make the
/// actions of their rows: lists, structs and maps are read at the slice's offsets.
#[test]
fn slices_of_a_chunk_make_the_actions_of_their_rows() {
    let schema = all_types();
    let mut rng = SmallRng::seed_from_u64(7);
    let rows = changelog(&mut rng, 120);
    let e = emitter(&schema, "docs-{region}", &["id"], ActionKind::Upsert);
    let whole = Chunk::from_rows(&arrow_schema(&schema), &rows).unwrap();
    let mut chunks = ChunkEmitter::new(e.clone());
    let mut offset = 0;
    for length in [1, 13, 0, 57, 2].into_iter().cycle() {
        let length = length.min(rows.len() - offset);
        let expected = row_actions(&rows[offset..offset + length], e.clone()).unwrap();
        let got = chunks.actions(&whole.slice(offset, length)).unwrap();
        assert_eq!(got, expected, "rows {offset}..{}", offset + length);
        offset += length;
        if offset == rows.len() {
            break;
        }
    }
}

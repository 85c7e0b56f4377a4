//! What the tests of the columnar decoders share: decoding the same messages through the row
//! decoder (its rows made a chunk, as the row path's adapter does) and through the columnar
//! decoder, and random values of any type.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;

use weir_connector_api::config::ValidatedConfig;
use weir_connector_api::error::ConnectorError;
use weir_connector_api::format::find_format;
use weir_connector_api::row::{DataType, Field, Row, Schema, TimeUnit, Value};

use super::{
    chunk_decoder, CanalChunkDecoder, CsvChunkDecoder, DebeziumChunkDecoder, JsonChunkDecoder,
};
use crate::chunk::{arrow_schema, Chunk};

pub(super) fn config(id: &str, options: &[(&str, &str)]) -> ValidatedConfig {
    let map: BTreeMap<String, String> = options
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    find_format(id).unwrap().options().validate(&map).unwrap()
}

/// The rows of `messages` through the row decoder, made a chunk and read back (so that both
/// sides hold what a chunk holds), or the error of the row decoder or of the chunk.
pub(super) fn on_rows(
    id: &str,
    schema: &Schema,
    options: &[(&str, &str)],
    messages: &[&[u8]],
) -> Result<Vec<Row>, String> {
    crate::link();
    let decoder = find_format(id)
        .unwrap()
        .decoder(schema, &config(id, options))
        .unwrap();
    let mut rows = Vec::new();
    for m in messages {
        decoder.decode(m, &mut rows).map_err(|e| e.to_string())?;
    }
    if rows.is_empty() {
        return Ok(rows);
    }
    Chunk::from_rows(&arrow_schema(schema), &rows)
        .and_then(|chunk| chunk.to_rows())
        .map_err(|e| {
            ConnectorError::malformed("rows decoded into a chunk", e.to_string()).to_string()
        })
}

/// The rows of `messages` through the registered columnar decoder, or its error.
pub(super) fn on_columns(
    id: &str,
    schema: &Schema,
    options: &[(&str, &str)],
    messages: &[&[u8]],
) -> Result<Vec<Row>, String> {
    let decoder = chunk_decoder(id, schema, &config(id, options))
        .unwrap()
        .expect("a columnar decoder");
    match decoder.decode_chunk(messages) {
        Ok(Some(chunk)) => Ok(chunk.to_rows().unwrap()),
        Ok(None) => Ok(Vec::new()),
        Err(e) => Err(e.to_string()),
    }
}

/// Whether the columnar decoder reads `messages` on columns (without the row decoder).
pub(super) fn read_on_columns(
    id: &str,
    schema: &Schema,
    options: &[(&str, &str)],
    messages: &[&[u8]],
) -> bool {
    let config = config(id, options);
    match id {
        "json" => JsonChunkDecoder::new(schema, &config)
            .unwrap()
            .on_columns(messages)
            .is_ok(),
        "csv" => CsvChunkDecoder::new(schema, &config)
            .unwrap()
            .on_columns(messages)
            .is_ok(),
        "debezium-json" => DebeziumChunkDecoder::new(schema, &config)
            .unwrap()
            .on_columns(messages)
            .is_ok(),
        "canal-json" => CanalChunkDecoder::new(schema, &config)
            .unwrap()
            .on_columns(messages)
            .is_ok(),
        other => panic!("no columnar decoder for {other}"),
    }
}

/// Asserts that both decoders give the same rows (compared as text, so that NaN equals NaN)
/// or the same error, and, with the default options, that the columnar decoder reads on
/// columns exactly the batches the row path reads without error. Returns the rows.
pub(super) fn assert_same(
    id: &str,
    schema: &Schema,
    options: &[(&str, &str)],
    messages: &[&[u8]],
) -> Result<Vec<Row>, String> {
    let rows = on_rows(id, schema, options, messages);
    let columns = on_columns(id, schema, options, messages);
    let shown = || {
        messages
            .iter()
            .map(|m| String::from_utf8_lossy(m))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        format!("{columns:?}"),
        format!("{rows:?}"),
        "{id} {options:?}: {:?}",
        shown()
    );
    if options.is_empty() {
        assert_eq!(
            read_on_columns(id, schema, options, messages),
            rows.is_ok(),
            "{id}: read on columns exactly when the rows are good: {:?}",
            shown()
        );
    }
    rows
}

/// The row encoder's messages for `rows`.
pub(super) fn encoded(
    id: &str,
    schema: &Schema,
    options: &[(&str, &str)],
    rows: &[Row],
) -> Vec<Vec<u8>> {
    crate::link();
    let encoder = find_format(id)
        .unwrap()
        .encoder(schema, &config(id, options))
        .unwrap();
    rows.iter()
        .map(|row| {
            let mut out = Vec::new();
            encoder.encode(row, &mut out).unwrap();
            out
        })
        .collect()
}

/// A small seeded generator (xorshift), so the tests need no dependency.
pub(super) struct Random(pub(super) u64);

impl Random {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn between(&mut self, lo: i128, hi: i128) -> i128 {
        let span = hi.abs_diff(lo).saturating_add(1);
        let wide = (u128::from(self.next()) << 64) | u128::from(self.next());
        // The true sum is within `lo..=hi`: wrapping arithmetic gives it.
        lo.wrapping_add((wide % span) as i128)
    }
}

const TEXTS: &[&str] = &[
    "",
    "a",
    "Ada, \"the\" first",
    "line\nbreak",
    "é ü 😀",
    "  x ",
    "NULL",
    "\\",
];

/// A schema of every type: the scalars of lines 1.0 and 1.1, and (`nested`) lists, structs
/// and maps nested two deep.
pub(super) fn typed_schema(nested: bool) -> Schema {
    let ts = |unit, tz: Option<&str>| DataType::Timestamp {
        unit,
        tz: tz.map(Arc::from),
    };
    let mut fields = vec![
        Field::new("id", DataType::Int64, false),
        Field::new("i8", DataType::Int8, true),
        Field::new("i16", DataType::Int16, true),
        Field::new("i32", DataType::Int32, true),
        Field::new("u8", DataType::UInt8, true),
        Field::new("u16", DataType::UInt16, true),
        Field::new("u32", DataType::UInt32, true),
        Field::new("u64", DataType::UInt64, true),
        Field::new("f32", DataType::Float32, true),
        Field::new(
            "dec",
            DataType::Decimal128 {
                precision: 10,
                scale: 2,
            },
            true,
        ),
        Field::new(
            "big",
            DataType::Decimal128 {
                precision: 38,
                scale: 0,
            },
            true,
        ),
        Field::new("day", DataType::Date32, true),
        Field::new("ts_s", ts(TimeUnit::Second, None), true),
        Field::new(
            "ts_ms",
            ts(TimeUnit::Millisecond, Some("Europe/Paris")),
            true,
        ),
        Field::new("ts_us", ts(TimeUnit::Microsecond, Some("+02:00")), true),
        Field::new("ts_ns", ts(TimeUnit::Nanosecond, Some("UTC")), true),
        Field::new("ts_local", ts(TimeUnit::Millisecond, None), true),
        Field::new("at", DataType::TimestampMillis, true),
        Field::new("name", DataType::String, true),
        Field::new("price", DataType::Float64, true),
        Field::new("ok", DataType::Boolean, true),
        Field::new("blob", DataType::Bytes, true),
    ];
    if nested {
        let inner = vec![
            Field::new("a", DataType::Int64, false),
            Field::new("b", DataType::List(Box::new(DataType::String)), true),
            Field::new("c", ts(TimeUnit::Microsecond, None), true),
        ];
        fields.extend([
            Field::new("ints", DataType::List(Box::new(DataType::Int32)), true),
            Field::new(
                "days",
                DataType::List(Box::new(DataType::List(Box::new(DataType::Date32)))),
                true,
            ),
            Field::new("rec", DataType::Struct(inner.clone()), true),
            Field::new(
                "recs",
                DataType::List(Box::new(DataType::Struct(inner.clone()))),
                true,
            ),
            Field::new(
                "marks",
                DataType::Map(Box::new(DataType::Date32), Box::new(DataType::Bytes)),
                true,
            ),
            Field::new(
                "tags",
                DataType::Map(Box::new(DataType::String), Box::new(DataType::Float64)),
                true,
            ),
            Field::new(
                "by_num",
                DataType::Map(Box::new(DataType::Int32), Box::new(DataType::Struct(inner))),
                true,
            ),
        ]);
    }
    Schema::new(fields)
}

/// A random value of `data_type` (null one time in five where `nullable`).
pub(super) fn random_value(r: &mut Random, data_type: &DataType, nullable: bool) -> Value {
    if nullable && r.below(5) == 0 {
        return Value::Null;
    }
    let int = |r: &mut Random| {
        let (lo, hi) = data_type.integer_range().unwrap();
        r.between(lo, hi)
    };
    match data_type {
        DataType::Int8 | DataType::Int16 | DataType::Int32 => {
            Value::Int64(i64::try_from(int(r)).unwrap())
        }
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            Value::UInt64(u64::try_from(int(r)).unwrap())
        }
        DataType::Int64 => Value::Int64(r.next() as i64),
        DataType::Float32 => match r.below(3) {
            0 => Value::Float32(finite(f32::from_bits(r.next() as u32)).clamp(-1e38, 1e38)),
            1 => Value::Float32(r.below(100_000) as f32 / 100.0),
            _ => Value::Float32(-0.0),
        },
        DataType::Float64 => Value::Float64(match r.below(3) {
            0 => {
                let x = f64::from_bits(r.next());
                if x.is_nan() {
                    1.5
                } else {
                    x.clamp(-1e300, 1e300)
                }
            }
            1 => (r.next() >> 11) as f64 / 1e6,
            _ => r.below(1000) as f64 - 500.0,
        }),
        DataType::Decimal128 { precision, scale } => {
            let max = 10_i128.pow(u32::from(*precision)) - 1;
            let value = if r.below(2) == 0 {
                r.between(-max, max)
            } else {
                r.between(-1000, 1000)
            };
            Value::Decimal128 {
                value,
                scale: *scale,
            }
        }
        DataType::Date32 => Value::Date32(i32::try_from(r.between(-1_000_000, 3_000_000)).unwrap()),
        DataType::Timestamp { unit, .. } => Value::Timestamp(
            if *unit == TimeUnit::Nanosecond {
                r.next() as i64
            } else {
                // Years 1 to 9999: the row formats write other instants as RFC 3339 text
                // with a sign or five digits, which they do not read back.
                let per = unit.per_second();
                i64::try_from(r.between(-62_135_596_800, 253_402_300_799)).unwrap() * per
                    + i64::try_from(r.between(0, i128::from(per) - 1)).unwrap()
            },
            *unit,
        ),
        DataType::TimestampMillis => Value::TimestampMillis(
            i64::try_from(r.between(-1_000_000_000_000, 4_000_000_000_000)).unwrap(),
        ),
        DataType::String => Value::String(TEXTS[r.below(TEXTS.len() as u64) as usize].to_owned()),
        DataType::Boolean => Value::Boolean(r.below(2) == 0),
        DataType::Bytes => Value::Bytes((0..r.below(6)).map(|_| r.next() as u8).collect()),
        DataType::List(item) => Value::List(
            (0..r.below(4))
                .map(|_| random_value(r, item, true))
                .collect(),
        ),
        DataType::Struct(fields) => Value::Struct(
            fields
                .iter()
                .map(|f| random_value(r, &f.data_type, f.nullable))
                .collect(),
        ),
        DataType::Map(key, value) => Value::Map(
            (0..r.below(4))
                .map(|_| (random_value(r, key, false), random_value(r, value, true)))
                .collect(),
        ),
        other => panic!("no random values of {other}"),
    }
}

fn finite(x: f32) -> f32 {
    if x.is_nan() {
        0.25
    } else {
        x
    }
}

/// Random rows of `schema` (the first field a sequence).
pub(super) fn random_rows(schema: &Schema, seed: u64, count: usize) -> Vec<Row> {
    let mut r = Random(seed);
    (0..count)
        .map(|i| {
            let mut values = vec![Value::Int64(i as i64)];
            values.extend(
                schema
                    .fields
                    .iter()
                    .skip(1)
                    .map(|f| random_value(&mut r, &f.data_type, f.nullable)),
            );
            Row::insert(values)
        })
        .collect()
}

//! The columnar decoders against the row decoders: the same messages through both, the rows
//! compared one by one, and malformed messages failing with the same error (or skipped alike
//! with `ignore-parse-errors`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use weir_connector_api::config::ValidatedConfig;
use weir_connector_api::format::find_format;
use weir_connector_api::row::{DataType, Field, Row, Schema, Value};

use super::{
    chunk_decoder, CsvChunkDecoder, DebeziumChunkDecoder, JsonChunkDecoder, JsonChunkEncoder,
};
use crate::chunk::{arrow_schema, Chunk};

fn schema() -> Schema {
    Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::String, true),
        Field::new("price", DataType::Float64, true),
        Field::new("ok", DataType::Boolean, true),
        Field::new("at", DataType::TimestampMillis, true),
        Field::new("blob", DataType::Bytes, true),
    ])
}

fn config(id: &str, options: &[(&str, &str)]) -> ValidatedConfig {
    let map: BTreeMap<String, String> = options
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    find_format(id).unwrap().options().validate(&map).unwrap()
}

/// The rows of `messages` through the row decoder, or its error.
fn on_rows(id: &str, options: &[(&str, &str)], messages: &[&[u8]]) -> Result<Vec<Row>, String> {
    crate::link();
    let decoder = find_format(id)
        .unwrap()
        .decoder(&schema(), &config(id, options))
        .unwrap();
    let mut rows = Vec::new();
    for m in messages {
        decoder.decode(m, &mut rows).map_err(|e| e.to_string())?;
    }
    Ok(rows)
}

/// The rows of `messages` through the columnar decoder, or its error.
fn on_columns(id: &str, options: &[(&str, &str)], messages: &[&[u8]]) -> Result<Vec<Row>, String> {
    let decoder = chunk_decoder(id, &schema(), &config(id, options))
        .unwrap()
        .expect("a columnar decoder");
    match decoder.decode_chunk(messages) {
        Ok(Some(chunk)) => Ok(chunk.to_rows().unwrap()),
        Ok(None) => Ok(Vec::new()),
        Err(e) => Err(e.to_string()),
    }
}

fn assert_same(id: &str, options: &[(&str, &str)], messages: &[&[u8]]) -> Result<Vec<Row>, String> {
    let rows = on_rows(id, options, messages);
    let columns = on_columns(id, options, messages);
    // Compared as text, so that NaN equals NaN.
    assert_eq!(
        format!("{columns:?}"),
        format!("{rows:?}"),
        "{id} {options:?}: {:?}",
        messages
            .iter()
            .map(|m| String::from_utf8_lossy(m))
            .collect::<Vec<_>>()
    );
    rows
}

/// A small seeded generator (xorshift), so the tests need no dependency.
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

/// Random rows of [`schema`] with nulls, extreme numbers, text that needs quoting and escaping.
fn random_rows(seed: u64, count: usize) -> Vec<Row> {
    let mut r = Random(seed);
    let texts = [
        "",
        "a",
        "Ada, \"the\" first",
        "line\nbreak",
        "é ü 😀",
        "  x ",
        "NULL",
        "\\",
    ];
    (0..count)
        .map(|i| {
            let null = |r: &mut Random| r.below(5) == 0;
            let name = if null(&mut r) {
                Value::Null
            } else {
                Value::String(texts[r.below(texts.len() as u64) as usize].to_owned())
            };
            let price = if null(&mut r) {
                Value::Null
            } else {
                Value::Float64(match r.below(4) {
                    0 => f64::from_bits(r.next()).clamp(-1e300, 1e300),
                    1 => (r.next() >> 11) as f64 / 1e6,
                    2 => -0.0,
                    _ => r.below(1000) as f64 - 500.0,
                })
            };
            let price = match price {
                Value::Float64(x) if x.is_nan() => Value::Float64(1.0),
                other => other,
            };
            let ok = if null(&mut r) {
                Value::Null
            } else {
                Value::Boolean(r.below(2) == 0)
            };
            let at = if null(&mut r) {
                Value::Null
            } else {
                Value::TimestampMillis(r.below(4_000_000_000_000) as i64 - 1_000_000_000_000)
            };
            let blob = if null(&mut r) {
                Value::Null
            } else {
                Value::Bytes((0..r.below(6)).map(|_| r.next() as u8).collect())
            };
            let id = match i % 3 {
                0 => i as i64,
                1 => r.next() as i64,
                _ => -(i as i64),
            };
            Row::insert(vec![Value::Int64(id), name, price, ok, at, blob])
        })
        .collect()
}

fn encoded(id: &str, options: &[(&str, &str)], rows: &[Row]) -> Vec<Vec<u8>> {
    crate::link();
    let encoder = find_format(id)
        .unwrap()
        .encoder(&schema(), &config(id, options))
        .unwrap();
    rows.iter()
        .map(|row| {
            let mut out = Vec::new();
            encoder.encode(row, &mut out).unwrap();
            out
        })
        .collect()
}

#[test]
fn random_json_rows_decode_to_the_same_rows() {
    for timestamps in ["iso-8601", "epoch-millis"] {
        let options = [("timestamp-format", timestamps)];
        let rows = random_rows(18, 3_000);
        let messages = encoded("json", &options, &rows);
        let messages: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let decoded = assert_same("json", &options, &messages).unwrap();
        assert_eq!(decoded.len(), rows.len());
        // Valid messages are read on columns, not through the row decoder.
        let columns = JsonChunkDecoder::new(&schema(), &config("json", &options)).unwrap();
        let chunk = columns.on_columns(&messages).unwrap().unwrap();
        assert_eq!(
            format!("{:?}", chunk.to_rows().unwrap()),
            format!("{decoded:?}")
        );
    }
}

#[test]
fn random_csv_rows_decode_to_the_same_rows() {
    for options in [
        vec![],
        vec![("field-delimiter", ";"), ("quote-character", "'")],
        vec![
            ("null-literal", "NULL"),
            ("timestamp-format", "epoch-millis"),
        ],
        vec![("field-delimiter", "\\t")],
    ] {
        let rows = random_rows(7, 3_000);
        let messages = encoded("csv", &options, &rows);
        let messages: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let decoded = assert_same("csv", &options, &messages).unwrap();
        // Without a null literal an empty string reads back as an empty string and a null
        // string as an empty string too: the row count is what must hold.
        assert_eq!(decoded.len(), rows.len());
        let columns = CsvChunkDecoder::new(&schema(), &config("csv", &options)).unwrap();
        let chunk = columns.on_columns(&messages).unwrap().unwrap();
        assert_eq!(
            format!("{:?}", chunk.to_rows().unwrap()),
            format!("{decoded:?}")
        );
        // Several records in one message, as a CSV file's lines.
        let joined = messages.join(&b'\n');
        assert_same("csv", &options, &[&joined]).unwrap();
    }
}

/// Valid messages the row decoder reads in a particular way, and malformed ones.
const JSON_CASES: &[&str] = &[
    r#"{"id":1}"#,
    r#"{"id":1,"extra":{"a":[1,2,{"b":null}]},"name":"x"}"#,
    r#"{"id":1,"id":2}"#,
    r#"{"id":1,"name":"a","name":"b"}"#,
    r#"{"id":1,"price":3}"#,
    r#"{"id":1,"price":-0}"#,
    r#"{"id":18446744073709551615,"price":18446744073709551615}"#,
    r#"{"id":1,"at":"2024-01-01T00:00:00.123+01:00"}"#,
    r#"{"id":1,"at":"2024-01-01T00:00:00.1239Z"}"#,
    r#"{"id":1,"at":-1}"#,
    r#"{"id":1,"blob":"AAH/"}"#,
    r#"{"id":1,"name":"\u00e9\"x\n"}"#,
    r#"{"id":1,"ok":true,"name":null}"#,
    "  {\"id\" : 1 }  ",
    "   ",
    r#"{"id":"1"}"#,
    r#"{"id":1.5}"#,
    r#"{"id":1e3}"#,
    r#"{"id":9223372036854775808}"#,
    r#"{"id":1,"price":"3"}"#,
    r#"{"id":1,"at":"2024-01-01 00:00:00"}"#,
    r#"{"id":1,"at":"2024-01-01"}"#,
    r#"{"id":1,"at":1.5}"#,
    r#"{"id":1,"blob":"zz"}"#,
    r#"{"id":1,"blob":"00ff"}"#,
    r#"{"id":1,"ok":"true"}"#,
    r#"{"id":1,"name":5}"#,
    r#"{"id":1,"name":{}}"#,
    r#"{"id":null}"#,
    "{}",
    "null",
    "[]",
    "1",
    r#"{"id":1} {"id":2}"#,
    r#"{"id":01}"#,
    r#"{"id":1,}"#,
    r#"{"id":1"#,
    r#"{"id":NaN}"#,
    r#"{"id":1,"extra":1e400}"#,
    r#"{"id":1,"extra":[{"a":-1e999}]}"#,
];

#[test]
fn json_cases_decode_or_fail_alike() {
    let mut failures = 0;
    for options in [
        vec![],
        vec![("fail-on-missing-field", "true")],
        vec![("ignore-parse-errors", "true")],
    ] {
        for case in JSON_CASES {
            if assert_same("json", &options, &[case.as_bytes()]).is_err() {
                failures += 1;
            }
        }
        let all: Vec<&[u8]> = JSON_CASES.iter().map(|c| c.as_bytes()).collect();
        let rows = assert_same("json", &options, &all);
        if options
            .first()
            .is_some_and(|(k, _)| *k == "ignore-parse-errors")
        {
            assert!(rows.unwrap().len() >= 10, "the valid messages' rows");
        }
    }
    assert!(failures > 40, "malformed cases fail: {failures}");
    // Invalid UTF-8 inside a string.
    assert!(assert_same("json", &[], &[b"{\"id\":1,\"name\":\"\xff\"}"]).is_err());
}

const CSV_CASES: &[&[u8]] = &[
    b"1,a,2.5,true,2024-01-01T00:00:00Z,AAH/",
    b" 7 ,, , TRUE ,1704067200123,",
    b"1,\"a,b\"\"c\",,,,",
    b"1,,nan,false, 2024-01-01T00:00:00+02:00 ,",
    b"1,,inf,False,-5, AAH/ ",
    b"1,a,,,,\n2,b,,,,\r\n\n3,c,,,,",
    b"",
    b"\n\n",
    b"1,NULL,,,,",
    b"1,a",
    b"1,a,,,,,",
    b"x,a,,,,",
    b",a,,,,",
    b"1,a,x,,,",
    b"1,a,,yes,,",
    b"1,a,,,2024-01-01 00:00:00,",
    b"1,a,,,,zz",
    b"1,\xff,,,,",
    b"1,a,,,,\n2,b",
];

#[test]
fn csv_cases_decode_or_fail_alike() {
    let mut failures = 0;
    for options in [
        vec![],
        vec![("null-literal", "NULL")],
        vec![("ignore-parse-errors", "true")],
    ] {
        for case in CSV_CASES {
            if assert_same("csv", &options, &[case]).is_err() {
                failures += 1;
            }
        }
        let rows = assert_same("csv", &options, CSV_CASES);
        if options
            .first()
            .is_some_and(|(k, _)| *k == "ignore-parse-errors")
        {
            assert!(rows.unwrap().len() >= 7, "the valid messages' rows");
        }
    }
    assert!(failures > 15, "malformed cases fail: {failures}");
}

#[test]
fn only_raw_has_no_columnar_decoder() {
    crate::link();
    let found = chunk_decoder("raw", &schema(), &config("raw", &[])).unwrap();
    assert!(found.is_none(), "raw");
    let found = chunk_decoder("canal-json", &schema(), &config("canal-json", &[])).unwrap();
    assert!(found.is_some(), "canal-json");
}

/// The row encoder's lines for `rows`, or its first error.
fn row_lines(options: &[(&str, &str)], rows: &[Row]) -> Result<Vec<u8>, String> {
    crate::link();
    let encoder = find_format("json")
        .unwrap()
        .encoder(&schema(), &config("json", options))
        .unwrap();
    let mut out = Vec::new();
    for row in rows {
        encoder.encode(row, &mut out).map_err(|e| e.to_string())?;
        out.push(b'\n');
    }
    Ok(out)
}

fn chunk_lines(options: &[(&str, &str)], rows: &[Row]) -> Result<Vec<u8>, String> {
    let encoder = JsonChunkEncoder::new(&schema(), &config("json", options));
    let chunk = Chunk::from_rows(&arrow_schema(&schema()), rows).unwrap();
    let mut out = b"before".to_vec();
    match encoder.encode_chunk_lines(&chunk, &mut out) {
        Ok(()) => Ok(out.split_off(6)),
        Err(e) => {
            assert_eq!(out, b"before", "nothing of a refused chunk is written");
            Err(e.to_string())
        }
    }
}

#[test]
fn json_lines_from_chunks_are_the_row_encoders_bytes() {
    for timestamps in ["iso-8601", "epoch-millis"] {
        let options = [("timestamp-format", timestamps)];
        let mut rows = random_rows(3, 2_000);
        // Years before 1 and after 9999, the millisecond limits.
        for (i, t) in [-62_135_596_800_001, 253_402_300_800_000, i64::MIN, i64::MAX]
            .into_iter()
            .enumerate()
        {
            rows[i].values[4] = Value::TimestampMillis(t);
        }
        let on_rows = row_lines(&options, &rows).unwrap();
        assert_eq!(chunk_lines(&options, &rows).unwrap(), on_rows);
        assert_eq!(on_rows.split(|b| *b == b'\n').count(), rows.len() + 1);
    }
    // What the row encoder refuses, refused alike.
    let mut rows = random_rows(5, 10);
    rows[3].values[2] = Value::Float64(f64::NAN);
    let refused = row_lines(&[], &rows).unwrap_err();
    assert_eq!(chunk_lines(&[], &rows).unwrap_err(), refused);
    let mut rows = random_rows(5, 10);
    rows[7].kind = weir_connector_api::row::RowKind::Delete;
    let refused = row_lines(&[], &rows).unwrap_err();
    assert_eq!(chunk_lines(&[], &rows).unwrap_err(), refused);
}

/// Debezium events the row decoder reads in a particular way, and malformed ones.
const DEBEZIUM_CASES: &[&str] = &[
    r#"{"before":{"id":1,"name":"a"},"after":{"id":1,"name":"b"},"op":"u"}"#,
    r#"{"op":"u","after":{"id":2,"price":2.5},"before":{"id":2}}"#,
    r#"{"before":null,"after":{"id":3,"at":"2024-01-01T00:00:00Z"},"op":"r","source":{"x":[1]}}"#,
    r#"{"before":{"id":4},"after":null,"op":"d","ts_ms":5}"#,
    r#"{"before":7,"after":{"id":5},"op":"c"}"#,
    r#"{"after":{"id":6},"op":"c","op":"c"}"#,
    r#"{"payload":{"after":{"id":7},"op":"c"}}"#,
    "null",
    "  ",
    r#"{"schema":{},"payload":{"after":{"id":8},"op":"c"}}"#,
    r#"{"schema":{},"payload":null}"#,
    r#"{"after":{"id":1},"op":"x"}"#,
    r#"{"after":{"id":1}}"#,
    r#"{"after":{"id":1},"op":1}"#,
    r#"{"before":null,"after":{"id":1},"op":"u"}"#,
    r#"{"before":{"id":1},"op":"u"}"#,
    r#"{"after":null,"op":"c"}"#,
    r#"{"before":{"id":"1"},"op":"d"}"#,
    r#"{"after":{"id":null},"op":"c"}"#,
    r#"{"after":{},"op":"c"}"#,
    "[1]",
    r#"{"after":{"id":1},"op":"c"} x"#,
    r#"{"after":{"id":1},"op":"c","source":{"x":1e400}}"#,
    r#"{"after":{"id":1},"before":{"id":1,"x":1e400},"op":"c"}"#,
];

#[test]
fn debezium_events_decode_or_fail_alike() {
    // Random rows as the row encoder writes them (inserts as `c`, deletes as `d` events).
    let mut rows = random_rows(11, 2_000);
    for (i, row) in rows.iter_mut().enumerate() {
        if i % 3 == 1 {
            row.kind = weir_connector_api::row::RowKind::Delete;
        }
    }
    let options = [("timestamp-format", "epoch-millis")];
    let messages = encoded("debezium-json", &options, &rows);
    let mut messages: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    let updates = [DEBEZIUM_CASES[0].as_bytes(), DEBEZIUM_CASES[1].as_bytes()];
    messages.splice(100..100, updates);
    let decoded = assert_same("debezium-json", &options, &messages).unwrap();
    assert_eq!(decoded.len(), rows.len() + 4);
    let columns = DebeziumChunkDecoder::new(&schema(), &config("debezium-json", &options)).unwrap();
    let chunk = columns.on_columns(&messages).unwrap().unwrap();
    assert!(chunk.kinds().is_some(), "changelog kinds");
    assert_eq!(
        format!("{:?}", chunk.to_rows().unwrap()),
        format!("{decoded:?}")
    );
    // Each case alone and all together, with each option.
    let mut failures = 0;
    for options in [
        vec![],
        vec![("schema-include", "true")],
        vec![("fail-on-missing-field", "true")],
        vec![("ignore-parse-errors", "true")],
    ] {
        for case in DEBEZIUM_CASES {
            if assert_same("debezium-json", &options, &[case.as_bytes()]).is_err() {
                failures += 1;
            }
        }
        let all: Vec<&[u8]> = DEBEZIUM_CASES.iter().map(|c| c.as_bytes()).collect();
        assert_same("debezium-json", &options, &all).ok();
    }
    assert!(failures > 30, "malformed cases fail: {failures}");
}

//! The columnar decoders against the row decoders for every type of API line 1.1: random rows
//! of every type written by the row encoders, and messages the row decoders read in a
//! particular way or refuse, one type at a time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use weir_connector_api::format::find_format;
use weir_connector_api::row::{DataType, Field, Schema, TimeUnit};

use super::test_support::{
    assert_same, config, encoded, random_rows, read_on_columns, typed_schema,
};
use super::{chunk_decoder, CsvChunkDecoder};

#[test]
fn random_rows_of_every_type_decode_to_the_same_rows_on_columns() {
    let schema = typed_schema(true);
    for (id, options) in [
        ("json", vec![]),
        ("json", vec![("timestamp-format", "epoch-millis")]),
        ("debezium-json", vec![]),
        ("canal-json", vec![("timestamp-format", "epoch-millis")]),
    ] {
        let rows = random_rows(&schema, 29, 1_500);
        let messages = encoded(id, &schema, &options, &rows);
        let messages: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let decoded = assert_same(id, &schema, &options, &messages).unwrap();
        assert_eq!(decoded.len(), rows.len(), "{id}");
        assert!(
            read_on_columns(id, &schema, &options, &messages),
            "{id} {options:?}: valid messages are read on columns"
        );
    }
}

#[test]
fn json_lines_of_chunks_of_every_type_are_the_row_encoders_bytes() {
    crate::link();
    let schema = typed_schema(true);
    let rows = random_rows(&schema, 31, 1_000);
    let chunk = crate::chunk::Chunk::from_rows(&crate::chunk::arrow_schema(&schema), &rows)
        .unwrap();
    for options in [vec![], vec![("timestamp-format", "epoch-millis")]] {
        let config = config("json", &options);
        let encoder = find_format("json")
            .unwrap()
            .encoder(&schema, &config)
            .unwrap();
        let mut on_rows = Vec::new();
        for row in &rows {
            encoder.encode(row, &mut on_rows).unwrap();
            on_rows.push(b'\n');
        }
        let mut on_columns = Vec::new();
        super::JsonChunkEncoder::new(&schema, &config)
            .encode_chunk_lines(&chunk, &mut on_columns)
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&on_columns),
            String::from_utf8_lossy(&on_rows),
            "{options:?}"
        );
    }
}

#[test]
fn random_csv_rows_of_every_scalar_type_decode_to_the_same_rows_on_columns() {
    let schema = typed_schema(false);
    for options in [
        vec![],
        vec![("null-literal", "NULL"), ("field-delimiter", ";")],
        vec![("timestamp-format", "epoch-millis")],
    ] {
        let rows = random_rows(&schema, 31, 1_500);
        let messages = encoded("csv", &schema, &options, &rows);
        let messages: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let decoded = assert_same("csv", &schema, &options, &messages).unwrap();
        assert_eq!(decoded.len(), rows.len());
        assert!(read_on_columns("csv", &schema, &options, &messages));
        let joined = messages.join(&b'\n');
        assert_same("csv", &schema, &options, &[&joined]).unwrap();
    }
}

/// A schema of one field of each kind the cases below exercise.
fn small_schema() -> Schema {
    let inner = vec![
        Field::new("a", DataType::Int64, false),
        Field::new("b", DataType::String, true),
    ];
    Schema::new(vec![
        Field::new("i8", DataType::Int8, true),
        Field::new("u16", DataType::UInt16, true),
        Field::new("u64", DataType::UInt64, true),
        Field::new("f32", DataType::Float32, true),
        Field::new(
            "dec",
            DataType::Decimal128 {
                precision: 5,
                scale: 2,
            },
            true,
        ),
        Field::new("day", DataType::Date32, true),
        Field::new(
            "ts",
            DataType::Timestamp {
                unit: TimeUnit::Microsecond,
                tz: Some(Arc::from("+02:00")),
            },
            true,
        ),
        // Not what `DataType::timestamp` makes, but a type a program can name.
        Field::new(
            "tsm",
            DataType::Timestamp {
                unit: TimeUnit::Millisecond,
                tz: None,
            },
            true,
        ),
        Field::new("l", DataType::List(Box::new(DataType::Int32)), true),
        Field::new("s", DataType::Struct(inner), true),
        Field::new(
            "m",
            DataType::Map(Box::new(DataType::Int32), Box::new(DataType::Boolean)),
            true,
        ),
        Field::new("n", DataType::Int16, false),
    ])
}

/// Objects of [`small_schema`] (without the non-nullable `n`, added per format).
const TYPED_CASES: &[&str] = &[
    r#""i8":127"#,
    r#""i8":128"#,
    r#""i8":-129"#,
    r#""i8":"5""#,
    r#""i8":" 5 ""#,
    r#""i8":1.0"#,
    r#""i8":true"#,
    r#""u16":65535,"u64":18446744073709551615"#,
    r#""u16":-1"#,
    r#""u64":1e3"#,
    r#""u64":"7""#,
    r#""f32":0.1"#,
    r#""f32":1e39"#,
    r#""f32":3"#,
    r#""f32":"0.5""#,
    r#""f32":-0"#,
    r#""dec":"123.45""#,
    r#""dec":123.45"#,
    r#""dec":"1234.5""#,
    r#""dec":"1.234""#,
    r#""dec":1e2"#,
    r#""dec":" -1.5 ""#,
    r#""dec":"abc""#,
    r#""dec":12"#,
    r#""dec":false"#,
    r#""day":"2024-01-31""#,
    r#""day":19000"#,
    r#""day":"19000""#,
    r#""day":"2024-02-30""#,
    r#""day":" 2024-01-31 ""#,
    r#""day":"2024-1-31""#,
    r#""day":"0000-02-29""#,
    r#""day":"1900-02-29""#,
    r#""day":"2024-13-01""#,
    r#""day":"+2024-01-31""#,
    r#""day":"-0001-12-31""#,
    r#""day":1.5"#,
    r#""day":99999999999"#,
    r#""ts":"2024-01-01T00:00:00.123456+02:00""#,
    r#""ts":1704067200123456"#,
    r#""ts":"1704067200123456""#,
    r#""ts":"2024-01-01""#,
    r#""ts":1.5"#,
    r#""ts":18446744073709551615"#,
    r#""tsm":"123""#,
    r#""tsm":"2024-01-01T00:00:00Z""#,
    r#""tsm":123"#,
    r#""l":[1,null,3]"#,
    r#""l":[]"#,
    r#""l":null"#,
    r#""l":[1,"2"]"#,
    r#""l":[2147483648]"#,
    r#""l":{}"#,
    r#""l":5"#,
    r#""l":[1,[2]]"#,
    r#""l" : [ 1 , 2 ] "#,
    r#""s":{"a":1,"b":"x","c":[1]}"#,
    r#""s":{"a":1}"#,
    r#""s":{"b":"x"}"#,
    r#""s":{"a":null}"#,
    r#""s":{"a":1,"a":2}"#,
    r#""s":{"a":"1"}"#,
    r#""s":[]"#,
    r#""s":null"#,
    r#""m":{"1":true,"2":null}"#,
    r#""m":{"b":true}"#,
    r#""m":{"2":true,"1":false,"2":false}"#,
    r#""m":{" 3 ":true}"#,
    r#""m":{}"#,
    r#""m":[]"#,
    r#""m":{"1":"true"}"#,
    r#""m":{"1":"1","\u0032":true}"#,
    r#""l":[1],"l":[2,3],"s":{"a":5},"m":{"9":false}"#,
    r#""other":1e400"#,
    r#""s":{"a":1,"other":[1e400]}"#,
    r#""other":-1e400,"l":[1]"#,
    r#""l":[1e400],"l":[1]"#,
    r#""s":{"a":1},"s":{"a":1e999}"#,
    r#""m":{"1":true,"1":[1e400]}"#,
    r#""i8":1,"i8":1e400"#,
];

/// Each case alone and all together, as `wrap` makes it a message of format `id`, with each
/// of `options`. Returns how many single cases failed.
fn check_cases(id: &str, options: &[Vec<(&str, &str)>], wrap: impl Fn(&str) -> String) -> usize {
    let schema = small_schema();
    let messages: Vec<String> = TYPED_CASES.iter().map(|c| wrap(c)).collect();
    let mut failures = 0;
    for options in options {
        for message in &messages {
            if assert_same(id, &schema, options, &[message.as_bytes()]).is_err() {
                failures += 1;
            }
        }
        let all: Vec<&[u8]> = messages.iter().map(String::as_bytes).collect();
        assert_same(id, &schema, options, &all).ok();
    }
    failures
}

#[test]
fn typed_json_cases_decode_or_fail_alike() {
    let options = [
        vec![],
        vec![("fail-on-missing-field", "true")],
        vec![("ignore-parse-errors", "true")],
    ];
    let failures = check_cases("json", &options, |c| format!(r#"{{{c},"n":1}}"#));
    assert!(failures > 60, "malformed cases fail: {failures}");
    // A non-nullable field missing or null.
    let schema = small_schema();
    assert!(assert_same("json", &schema, &[], &[br#"{"i8":1}"#]).is_err());
    assert!(assert_same("json", &schema, &[], &[br#"{"n":null}"#]).is_err());
    // Invalid UTF-8 in a value no field reads, or in a nested one.
    for message in [
        &b"{\"n\":1,\"other\":\"\xff\"}"[..],
        b"{\"n\":1,\"other\":{\"\xff\":1}}",
        b"{\"n\":1,\"s\":{\"a\":1,\"b\":\"\xff\"}}",
        b"{\"n\":1,\"l\":[1],\"l\":[\"\xff\"]}",
    ] {
        assert!(assert_same("json", &schema, &[], &[message]).is_err());
        let event = [
            &b"{\"after\":"[..],
            message,
            b",\"before\":",
            message,
            b",\"op\":\"c\"}",
        ]
        .concat();
        assert!(assert_same("debezium-json", &schema, &[], &[&event]).is_err());
    }
}

#[test]
fn typed_debezium_cases_decode_or_fail_alike() {
    let options = [vec![], vec![("ignore-parse-errors", "true")]];
    let failures = check_cases("debezium-json", &options, |c| {
        format!(r#"{{"before":{{{c},"n":1}},"after":{{"n":2,{c}}},"op":"u"}}"#)
    });
    assert!(failures > 30, "malformed cases fail: {failures}");
}

#[test]
fn typed_canal_cases_decode_or_fail_alike() {
    // Canal reads numbers and booleans written as strings: more cases are rows here.
    let options = [vec![], vec![("ignore-parse-errors", "true")]];
    let failures = check_cases("canal-json", &options, |c| {
        format!(r#"{{"data":[{{{c},"n":"1"}}],"old":[{{"n":2,{c}}}],"type":"UPDATE"}}"#)
    });
    assert!(failures > 20, "malformed cases fail: {failures}");
}

const TYPED_CSV_CASES: &[&[u8]] = &[
    b"127,65535,18446744073709551615,0.1,123.45,2024-01-31,2024-01-01T00:00:00.123456Z,123,1",
    b" -5 , 7 ,0,3, -1.5 , 19000 , 1704067200123456 ,2024-01-01T00:00:00+01:00,2",
    b",,,,,,,,3",
    b"128,,,,,,,,1",
    b",-1,,,,,,,1",
    b",,18446744073709551616,,,,,,1",
    b",,,1e39,,,,,1",
    b",,,x,,,,,1",
    b",,,,1234.5,,,,1",
    b",,,,1.234,,,,1",
    b",,,,1e2,,,,1",
    b",,,,,2024-02-30,,,1",
    b",,,,, 0000-02-29 ,,,1",
    b",,,,,2024-1-31,,,1",
    b",,,,,2023-02-29,,,1",
    b",,,,,1.5,,,1",
    b",,,,,,2024-01-01,,1",
    b",,,,,,,x,1",
    b",,,,,,,,",
    b",,,,,,,,40000",
];

fn csv_schema() -> Schema {
    let mut schema = small_schema();
    schema.fields.retain(|f| !f.data_type.is_nested());
    schema
}

#[test]
fn typed_csv_cases_decode_or_fail_alike() {
    let schema = csv_schema();
    let mut failures = 0;
    for options in [
        vec![],
        vec![("null-literal", "NULL")],
        vec![("ignore-parse-errors", "true")],
    ] {
        for case in TYPED_CSV_CASES {
            if assert_same("csv", &schema, &options, &[case]).is_err() {
                failures += 1;
            }
        }
        assert_same("csv", &schema, &options, TYPED_CSV_CASES).ok();
    }
    assert!(failures > 20, "malformed cases fail: {failures}");
}

#[test]
fn csv_refuses_nested_types_as_the_row_decoder_does() {
    crate::link();
    let schema = small_schema();
    let config = config("csv", &[]);
    let Err(on_rows) = find_format("csv").unwrap().decoder(&schema, &config) else {
        panic!("the row decoder takes a nested field");
    };
    let on_rows = on_rows.to_string();
    let on_columns = CsvChunkDecoder::new(&schema, &config)
        .unwrap_err()
        .to_string();
    assert_eq!(on_columns, on_rows);
    assert!(on_rows.contains("field `l`"), "{on_rows}");
    // The pipeline's look-up gives no decoder for such a schema (the files source then
    // reports the row decoder's error).
    assert!(chunk_decoder("csv", &schema, &config).is_err());
}

type Options<'a> = &'a [(&'a str, &'a str)];

#[test]
fn messages_nested_near_serde_jsons_limit_decode_or_fail_alike() {
    use super::test_support::{on_columns, on_rows};
    let schema = small_schema();
    let mut both = (0, 0);
    for k in 115..135 {
        let deep = format!("{}{}", "[".repeat(k), "]".repeat(k));
        let image = format!(r#"{{"n":1,"s":{{"a":1,"x":{deep}}}}}"#);
        let enveloped = [("schema-include", "true")];
        let messages: [(&str, Options<'_>, String); 4] = [
            ("json", &[], image.clone()),
            (
                "debezium-json",
                &[],
                format!(r#"{{"after":{image},"op":"c"}}"#),
            ),
            (
                "debezium-json",
                &enveloped,
                format!(r#"{{"payload":{{"after":{image},"op":"c"}}}}"#),
            ),
            (
                "canal-json",
                &[],
                format!(r#"{{"data":[{image}],"type":"INSERT"}}"#),
            ),
        ];
        for (id, options, message) in &messages {
            let rows = on_rows(id, &schema, options, &[message.as_bytes()]);
            let columns = on_columns(id, &schema, options, &[message.as_bytes()]);
            assert_eq!(format!("{columns:?}"), format!("{rows:?}"), "{id} at {k}");
            if rows.is_ok() {
                both.0 += 1;
            } else {
                both.1 += 1;
            }
        }
    }
    assert!(
        both.0 > 10 && both.1 > 10,
        "both sides of the limit: {both:?}"
    );
}

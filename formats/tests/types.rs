//! The types of API line 1.1 in the row formats: JSON writes and reads back every type
//! (nested ones as arrays and objects), csv every scalar type, and csv refuses nested fields
//! when the pipeline is validated.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use serde_json::Value as Json;
use weir_connector_api::format::find_format;
use weir_connector_api::row::{decimal_text, DataType, Field, Row, Schema, TimeUnit, Value};
use weir_formats as _;

fn scalars() -> Vec<Field> {
    vec![
        Field::new("i8", DataType::Int8, true),
        Field::new("u64", DataType::UInt64, true),
        Field::new("f32", DataType::Float32, true),
        Field::new(
            "dec",
            DataType::Decimal128 {
                precision: 10,
                scale: 3,
            },
            true,
        ),
        Field::new("day", DataType::Date32, true),
        Field::new(
            "us",
            DataType::timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("s", DataType::timestamp(TimeUnit::Second, None), true),
    ]
}

fn nested() -> Vec<Field> {
    vec![
        Field::new("tags", DataType::List(Box::new(DataType::Int32)), true),
        Field::new(
            "point",
            DataType::Struct(vec![
                Field::new("x", DataType::Float32, true),
                Field::new("when", DataType::Date32, true),
            ]),
            true,
        ),
        Field::new(
            "attrs",
            DataType::Map(
                Box::new(DataType::String),
                Box::new(DataType::Decimal128 {
                    precision: 5,
                    scale: 2,
                }),
            ),
            true,
        ),
    ]
}

fn scalar_row(k: i64) -> Vec<Value> {
    vec![
        Value::Int64(-128 + k),
        Value::UInt64(u64::MAX - k as u64),
        Value::Float32(0.1 * k as f32),
        Value::Decimal128 {
            value: -12_345 * i128::from(k),
            scale: 3,
        },
        Value::Date32(19_000 + k as i32),
        Value::Timestamp(1_700_000_000_123_456 + k, TimeUnit::Microsecond),
        Value::Timestamp(-5 + k, TimeUnit::Second),
    ]
}

fn nested_row(k: i64) -> Vec<Value> {
    vec![
        Value::List(vec![Value::Int64(k), Value::Null]),
        Value::Struct(vec![Value::Float32(2.5), Value::Date32(-1)]),
        Value::Map(vec![(
            Value::String("a".into()),
            Value::Decimal128 {
                value: 105 + i128::from(k),
                scale: 2,
            },
        )]),
    ]
}

fn codec_round_trip(format: &str, schema: &Schema, rows: &[Row]) -> (Vec<Vec<u8>>, Vec<Row>) {
    let format = find_format(format).unwrap();
    let config = format.options().validate(&BTreeMap::new()).unwrap();
    let encoder = format.encoder(schema, &config).unwrap();
    let decoder = format.decoder(schema, &config).unwrap();
    let mut messages = Vec::new();
    let mut back = Vec::new();
    for row in rows {
        let mut bytes = Vec::new();
        encoder.encode(row, &mut bytes).unwrap();
        decoder.decode(&bytes, &mut back).unwrap();
        messages.push(bytes);
    }
    (messages, back)
}

#[test]
fn json_writes_and_reads_every_type() {
    let schema = Schema::new(scalars().into_iter().chain(nested()).collect());
    let rows: Vec<Row> = (0..4)
        .map(|k| Row::insert(scalar_row(k).into_iter().chain(nested_row(k)).collect()))
        .chain([Row::insert(vec![Value::Null; 10])])
        .collect();
    let (messages, back) = codec_round_trip("json", &schema, &rows);
    assert_eq!(back, rows);
    // The written forms, checked against independent renderings.
    let json: Json = serde_json::from_slice(&messages[1]).unwrap();
    assert_eq!(json["u64"], Json::from(u64::MAX - 1));
    assert_eq!(json["f32"].to_string(), 0.1_f32.to_string());
    assert_eq!(json["dec"], Json::from(decimal_text(-12_345, 3)));
    let day = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::Duration::days(19_001);
    assert_eq!(json["day"], Json::from(day.format("%Y-%m-%d").to_string()));
    let us = chrono::DateTime::from_timestamp_micros(1_700_000_000_123_457).unwrap();
    assert_eq!(
        json["us"],
        Json::from(us.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
    );
    assert_eq!(json["s"], Json::from("1969-12-31T23:59:56Z"));
    assert_eq!(json["tags"], serde_json::json!([1, null]));
    assert_eq!(
        json["point"],
        serde_json::json!({"x": 2.5, "when": "1969-12-31"})
    );
    assert_eq!(json["attrs"], serde_json::json!({"a": "1.06"}));
}

#[test]
fn json_refuses_values_that_do_not_fit() {
    let schema = Schema::new(scalars().into_iter().chain(nested()).collect());
    let format = find_format("json").unwrap();
    let config = format.options().validate(&BTreeMap::new()).unwrap();
    let decoder = format.decoder(&schema, &config).unwrap();
    for bad in [
        r#"{"i8": 128}"#,
        r#"{"u64": -1}"#,
        r#"{"dec": "1.2345"}"#,
        r#"{"day": "2024-02-30"}"#,
        r#"{"tags": {"a": 1}}"#,
        r#"{"tags": ["x"]}"#,
        r#"{"point": [1]}"#,
    ] {
        let mut out = Vec::new();
        assert!(
            decoder.decode(bad.as_bytes(), &mut out).is_err(),
            "{bad} was accepted as {out:?}"
        );
    }
}

#[test]
fn csv_holds_every_scalar_type_and_refuses_nested_ones() {
    let schema = Schema::new(scalars());
    let rows: Vec<Row> = (0..4).map(|k| Row::insert(scalar_row(k))).collect();
    let (messages, back) = codec_round_trip("csv", &schema, &rows);
    assert_eq!(back, rows);
    let line = String::from_utf8(messages[0].clone()).unwrap();
    assert!(
        line.starts_with("-128,18446744073709551615,0,0.000,2022-01-08,"),
        "{line}"
    );
    let csv = find_format("csv").unwrap();
    let config = csv.options().validate(&BTreeMap::new()).unwrap();
    for field in nested() {
        let name = field.name.clone();
        let schema = Schema::new(vec![Field::new("id", DataType::Int64, true), field]);
        let error = csv
            .encoder(&schema, &config)
            .err()
            .expect("refused")
            .to_string();
        assert!(
            error.contains(&format!("`{name}`")) && error.contains("json"),
            "{error}"
        );
        assert!(csv.decoder(&schema, &config).is_err());
    }
}

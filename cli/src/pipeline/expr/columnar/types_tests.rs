//! Filters on the types of API line 1.1: every comparison of the numeric types with each
//! other and with literals keeps the same rows on the vectorized path as on the row path, and
//! those rows are the ones an independent exact computation keeps; nested fields are refused
//! when the filter is parsed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use weir_connector_api::row::{DataType, Field, Row, Schema, TimeUnit, Value};
use weir_formats::chunk::{arrow_schema, Chunk};

use super::super::Expr;

fn schema() -> Schema {
    Schema::new(vec![
        Field::new("a", DataType::Int8, true),
        Field::new("b", DataType::UInt32, true),
        Field::new("c", DataType::UInt64, true),
        Field::new("d", DataType::Float32, true),
        Field::new(
            "e",
            DataType::Decimal128 {
                precision: 10,
                scale: 2,
            },
            true,
        ),
        Field::new("f", DataType::Date32, true),
        Field::new("g", DataType::timestamp(TimeUnit::Microsecond, None), true),
        Field::new("h", DataType::List(Box::new(DataType::Int64)), true),
        Field::new("i", DataType::Int64, true),
    ])
}

/// Row `k`: every numeric field holds a value near `k - 5` in its own type (as an exact
/// number: the numerator over 100), nulls on every seventh row.
fn row(k: i64) -> (Row, i128) {
    if k % 7 == 6 {
        return (Row::insert(vec![Value::Null; 9]), 0);
    }
    let n = k - 5;
    let u = k as u64;
    let values = vec![
        Value::Int64(n),
        Value::UInt64(u),
        Value::UInt64(u64::MAX - 20 + u),
        Value::Float32(n as f32 + 0.5),
        Value::Decimal128 {
            value: i128::from(n) * 100 + 25,
            scale: 2,
        },
        Value::Date32(i32::try_from(n).unwrap()),
        Value::Timestamp(n * 1_000, TimeUnit::Microsecond),
        Value::List(vec![Value::Int64(n)]),
        Value::Int64(n),
    ];
    (Row::insert(values), i128::from(n))
}

/// Which exact value a filter keeps.
type Keep = fn(i128) -> bool;

#[test]
fn numeric_filters_keep_the_same_rows_on_both_paths() {
    let schema = schema();
    let rows: Vec<(Row, i128)> = (0..20).map(row).collect();
    let only: Vec<Row> = rows.iter().map(|(r, _)| r.clone()).collect();
    let chunk = Chunk::from_rows(&arrow_schema(&schema), &only).unwrap();
    // (filter, which n it keeps, computed exactly here)
    let cases: [(&str, Keep); 10] = [
        ("a > 3", |n| n > 3),
        ("a <= -2", |n| n <= -2),
        ("b >= 12", |n| n + 5 >= 12),
        ("c > 100", |_| true),
        ("d < 2", |n| n < 2),
        ("e > 3.2", |n| n * 100 + 25 > 320),
        ("e = 4.25", |n| n == 4),
        ("f < 0", |n| n < 0),
        ("g >= 3000", |n| n >= 3),
        ("a = i and e > a", |_| true),
    ];
    for (text, keep) in cases {
        let expr = Expr::parse(text, &schema).unwrap_or_else(|e| panic!("{text}: {e}"));
        let by_rows: Vec<Row> = only.iter().filter(|r| expr.matches(r)).cloned().collect();
        let expected: Vec<Row> = rows
            .iter()
            .filter(|(r, n)| r.values[0] != Value::Null && keep(*n))
            .map(|(r, _)| r.clone())
            .collect();
        assert_eq!(by_rows, expected, "{text} on rows");
        let by_chunk = expr
            .filter_chunk(&chunk)
            .map(|c| c.to_rows().unwrap())
            .unwrap_or_default();
        assert_eq!(by_chunk, expected, "{text} on the chunk");
    }
}

#[test]
fn nested_fields_cannot_be_compared_but_can_be_tested_for_null() {
    let schema = schema();
    let error = Expr::parse("h = 1", &schema).unwrap_err();
    assert_eq!(error.offset, 0);
    assert!(error.message.contains("cannot be compared"), "{error}");
    let error = Expr::parse("1 < h", &schema).unwrap_err();
    assert_eq!(error.offset, 4);
    assert!(Expr::parse("h is not null", &schema).is_ok());
}

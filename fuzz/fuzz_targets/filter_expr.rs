//! Filter expressions: any UTF-8 text parsed against a schema of every type; what parses is
//! evaluated on rows with nulls and extreme values, cloned, printed and dropped.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use weir_cli::pipeline::Expr;
use weir_connector_api::row::{DataType, Field, Row, Schema, Value};

static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("status", DataType::String, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("vip", DataType::Boolean, true),
        Field::new("payload", DataType::Bytes, true),
        Field::new("at", DataType::TimestampMillis, true),
        Field::new("a-b", DataType::Int64, true),
    ])
});

static ROWS: LazyLock<Vec<Row>> = LazyLock::new(|| {
    vec![
        Row::insert(vec![
            Value::Int64(1),
            Value::String("paid".into()),
            Value::Float64(12.5),
            Value::Boolean(true),
            Value::Bytes(vec![0, 255]),
            Value::TimestampMillis(1_704_067_200_000),
            Value::Int64(-1),
        ]),
        Row::insert(vec![Value::Int64(i64::MIN); 1]),
        Row::insert(vec![
            Value::Int64(i64::MAX),
            Value::Null,
            Value::Float64(f64::NAN),
            Value::Null,
            Value::Null,
            Value::TimestampMillis(i64::MIN),
            Value::Null,
        ]),
        Row::insert(vec![
            Value::Int64(0),
            Value::String(String::new()),
            Value::Float64(f64::NEG_INFINITY),
            Value::Boolean(false),
            Value::Bytes(Vec::new()),
            Value::Null,
            Value::Int64(0),
        ]),
    ]
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(expr) = Expr::parse(text, &SCHEMA) else {
        return;
    };
    for row in ROWS.iter() {
        std::hint::black_box(expr.matches(row));
    }
    let copy = expr.clone();
    assert_eq!(copy, expr);
    std::hint::black_box(format!("{copy:?}"));
});

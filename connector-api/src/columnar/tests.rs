//! Rows ↔ chunks for every type: the chunk of rows equals the batch Arrow's own builders make
//! of the same values, and back to rows gives the rows.

use std::sync::Arc;

use arrow_array::builder::{
    Date32Builder, Decimal128Builder, Float32Builder, Int16Builder, Int32Builder, Int64Builder,
    Int8Builder, ListBuilder, MapBuilder, StringBuilder, StructBuilder,
    TimestampMicrosecondBuilder, UInt16Builder, UInt32Builder, UInt64Builder, UInt8Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::Fields;

use super::{arrow_schema, Chunk, ChunkError};
use crate::row::{DataType, Field, Row, Schema, TimeUnit, Value};

fn every_type() -> Schema {
    Schema::new(vec![
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
        Field::new("day", DataType::Date32, true),
        Field::new(
            "us",
            DataType::timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("list", DataType::List(Box::new(DataType::Int64)), true),
        Field::new(
            "st",
            DataType::Struct(vec![
                Field::new("a", DataType::Int32, true),
                Field::new("b", DataType::String, true),
            ]),
            true,
        ),
        Field::new(
            "map",
            DataType::Map(Box::new(DataType::String), Box::new(DataType::Int64)),
            true,
        ),
    ])
}

fn rows() -> Vec<Row> {
    vec![
        Row::insert(vec![
            Value::Int64(-128),
            Value::Int64(i64::from(i16::MAX)),
            Value::Int64(i64::from(i32::MIN)),
            Value::UInt64(255),
            Value::UInt64(65_535),
            Value::UInt64(u64::from(u32::MAX)),
            Value::UInt64(u64::MAX),
            Value::Float32(0.1),
            Value::Decimal128 {
                value: -12_345,
                scale: 2,
            },
            Value::Date32(19_000),
            Value::Timestamp(1_700_000_000_123_456, TimeUnit::Microsecond),
            Value::List(vec![Value::Int64(1), Value::Null, Value::Int64(3)]),
            Value::Struct(vec![Value::Int64(7), Value::String("x".into())]),
            Value::Map(vec![
                (Value::String("k".into()), Value::Int64(1)),
                (Value::String("l".into()), Value::Null),
            ]),
        ]),
        Row::insert(vec![Value::Null; 14]),
        Row::insert(vec![
            Value::Int64(0),
            Value::Int64(0),
            Value::Int64(0),
            Value::UInt64(0),
            Value::UInt64(0),
            Value::UInt64(0),
            Value::UInt64(0),
            Value::Float32(-2.5),
            Value::Decimal128 { value: 1, scale: 2 },
            Value::Date32(-1),
            Value::Timestamp(0, TimeUnit::Microsecond),
            Value::List(vec![]),
            Value::Struct(vec![Value::Null, Value::Null]),
            Value::Map(vec![]),
        ]),
    ]
}

/// The batch of [`rows`], built with Arrow's builders.
fn expected() -> Result<RecordBatch, ChunkError> {
    let mut i8s = Int8Builder::new();
    i8s.extend([Some(-128), None, Some(0)]);
    let mut i16s = Int16Builder::new();
    i16s.extend([Some(i16::MAX), None, Some(0)]);
    let mut i32s = Int32Builder::new();
    i32s.extend([Some(i32::MIN), None, Some(0)]);
    let mut u8s = UInt8Builder::new();
    u8s.extend([Some(255), None, Some(0)]);
    let mut u16s = UInt16Builder::new();
    u16s.extend([Some(65_535), None, Some(0)]);
    let mut u32s = UInt32Builder::new();
    u32s.extend([Some(u32::MAX), None, Some(0)]);
    let mut u64s = UInt64Builder::new();
    u64s.extend([Some(u64::MAX), None, Some(0)]);
    let mut f32s = Float32Builder::new();
    f32s.extend([Some(0.1), None, Some(-2.5)]);
    let mut decs = Decimal128Builder::new().with_precision_and_scale(10, 2)?;
    decs.extend([Some(-12_345), None, Some(1)]);
    let mut days = Date32Builder::new();
    days.extend([Some(19_000), None, Some(-1)]);
    let mut us = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    us.extend([Some(1_700_000_000_123_456), None, Some(0)]);
    let mut list = ListBuilder::new(Int64Builder::new());
    list.append_value([Some(1), None, Some(3)]);
    list.append_null();
    list.append_value([]);
    let struct_fields = Fields::from(vec![
        arrow_schema::Field::new("a", arrow_schema::DataType::Int32, true),
        arrow_schema::Field::new("b", arrow_schema::DataType::Utf8, true),
    ]);
    let mut st = StructBuilder::from_fields(struct_fields, 3);
    for (a, b, valid) in [
        (Some(7), Some("x"), true),
        (None, None, false),
        (None, None, true),
    ] {
        st.field_builder::<Int32Builder>(0)
            .ok_or(ChunkError::UnsupportedType {
                field: "a".into(),
                data_type: "?".into(),
            })?
            .append_option(a);
        st.field_builder::<StringBuilder>(1)
            .ok_or(ChunkError::UnsupportedType {
                field: "b".into(),
                data_type: "?".into(),
            })?
            .append_option(b);
        st.append(valid);
    }
    let mut map = MapBuilder::new(None, StringBuilder::new(), Int64Builder::new());
    map.keys().append_value("k");
    map.values().append_value(1);
    map.keys().append_value("l");
    map.values().append_null();
    map.append(true)?;
    map.append(false)?;
    map.append(true)?;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(i8s.finish()),
        Arc::new(i16s.finish()),
        Arc::new(i32s.finish()),
        Arc::new(u8s.finish()),
        Arc::new(u16s.finish()),
        Arc::new(u32s.finish()),
        Arc::new(u64s.finish()),
        Arc::new(f32s.finish()),
        Arc::new(decs.finish()),
        Arc::new(days.finish()),
        Arc::new(us.finish()),
        Arc::new(list.finish()),
        Arc::new(st.finish()),
        Arc::new(map.finish()),
    ];
    Ok(RecordBatch::try_new(arrow_schema(&every_type()), columns)?)
}

#[test]
fn every_type_converts_as_arrows_builders_do() -> Result<(), ChunkError> {
    let schema = arrow_schema(&every_type());
    let chunk = Chunk::from_rows(&schema, &rows())?;
    let expected = expected()?;
    assert_eq!(chunk.batch(), &expected);
    assert_eq!(Chunk::inserts(expected).to_rows()?, rows());
    // Sliced columns read their own rows (offsets of lists and maps included).
    assert_eq!(chunk.slice(1, 2).to_rows()?, rows()[1..].to_vec());
    Ok(())
}

#[test]
fn values_out_of_a_columns_range_are_refused() {
    let cases = [
        (DataType::Int8, Value::Int64(128)),
        (DataType::UInt16, Value::UInt64(70_000)),
        (DataType::UInt8, Value::Int64(1)),
        (
            DataType::Decimal128 {
                precision: 3,
                scale: 1,
            },
            Value::Decimal128 {
                value: 12_345,
                scale: 1,
            },
        ),
        (
            DataType::Decimal128 {
                precision: 10,
                scale: 1,
            },
            Value::Decimal128 {
                value: 12_345,
                scale: 2,
            },
        ),
        (
            DataType::timestamp(TimeUnit::Second, None),
            Value::Timestamp(1, TimeUnit::Nanosecond),
        ),
        (
            DataType::List(Box::new(DataType::Int16)),
            Value::List(vec![Value::String("x".into())]),
        ),
    ];
    for (data_type, value) in cases {
        let schema = arrow_schema(&Schema::new(vec![Field::new("f", data_type.clone(), true)]));
        let result = Chunk::from_rows(&schema, &[Row::insert(vec![value.clone()])]);
        assert!(
            result.is_err(),
            "{value:?} in a {data_type} column was accepted"
        );
    }
}

#[test]
fn decimals_of_a_smaller_scale_are_rescaled_exactly() -> Result<(), ChunkError> {
    let data_type = DataType::Decimal128 {
        precision: 10,
        scale: 3,
    };
    let schema = arrow_schema(&Schema::new(vec![Field::new("d", data_type, true)]));
    let chunk = Chunk::from_rows(
        &schema,
        &[Row::insert(vec![Value::Decimal128 {
            value: 15,
            scale: 1,
        }])],
    )?;
    assert_eq!(
        chunk.to_rows()?,
        vec![Row::insert(vec![Value::Decimal128 {
            value: 1_500,
            scale: 3
        }])]
    );
    Ok(())
}

#![allow(clippy::unwrap_used, clippy::expect_used)]

use weir_connector_api::row::{DataType, Field, Row, Schema, Value};

use super::*;

fn schema() -> Schema {
    Schema::new(vec![
        Field::new("b", DataType::Boolean, true),
        Field::new("i", DataType::Int64, false),
        Field::new("f", DataType::Float64, true),
        Field::new("s", DataType::String, true),
        Field::new("y", DataType::Bytes, true),
        Field::new("t", DataType::TimestampMillis, true),
    ])
}

fn rows() -> Vec<Row> {
    vec![
        Row::insert(vec![
            Value::Boolean(true),
            Value::Int64(-7),
            Value::Float64(1.5),
            Value::String("ä,\"x\"".into()),
            Value::Bytes(vec![0, 255]),
            Value::TimestampMillis(1_704_067_200_000),
        ]),
        Row::with_kind(
            RowKind::UpdateBefore,
            vec![
                Value::Null,
                Value::Int64(i64::MAX),
                Value::Float64(f64::NEG_INFINITY),
                Value::Null,
                Value::Null,
                Value::Null,
            ],
        ),
        Row::with_kind(
            RowKind::Delete,
            vec![
                Value::Boolean(false),
                Value::Int64(0),
                Value::Null,
                Value::String(String::new()),
                Value::Bytes(Vec::new()),
                Value::TimestampMillis(-1),
            ],
        ),
    ]
}

#[test]
fn rows_round_trip_through_a_chunk_with_every_type_nulls_and_kinds() {
    let chunk = Chunk::from_rows(&arrow_schema(&schema()), &rows()).unwrap();
    assert_eq!(chunk.num_rows(), 3);
    assert_eq!(
        chunk.kinds(),
        Some(&[RowKind::Insert, RowKind::UpdateBefore, RowKind::Delete][..])
    );
    assert_eq!(chunk.to_rows().unwrap(), rows());
}

#[test]
fn all_inserts_carry_no_kinds() {
    let inserts: Vec<Row> = rows().into_iter().map(|r| Row::insert(r.values)).collect();
    let chunk = Chunk::from_rows(&arrow_schema(&schema()), &inserts).unwrap();
    assert_eq!(chunk.kinds(), None);
    assert_eq!(chunk.to_rows().unwrap(), inserts);
}

#[test]
fn a_value_of_the_wrong_type_is_refused_with_its_row_and_field() {
    let mut bad = rows();
    bad[1].values[3] = Value::Int64(3);
    let err = Chunk::from_rows(&arrow_schema(&schema()), &bad).unwrap_err();
    assert_eq!(
        err.to_string(),
        "row 1, field `s`: a int64 value in a Utf8 column; the source produced a value of \
         another type than its schema declares"
    );
    // A null in a non-nullable column is Arrow's to refuse.
    let mut null = rows();
    null[0].values[1] = Value::Null;
    assert!(matches!(
        Chunk::from_rows(&arrow_schema(&schema()), &null),
        Err(ChunkError::Arrow(_))
    ));
}

#[test]
fn kinds_of_the_wrong_length_are_refused() {
    let chunk = Chunk::from_rows(&arrow_schema(&schema()), &rows()).unwrap();
    let kinds: Arc<[RowKind]> = Arc::from(vec![RowKind::Delete]);
    assert!(Chunk::new(chunk.batch().clone(), Some(kinds)).is_err());
}

#[test]
fn the_serializer_round_trips_and_refuses_other_versions_and_garbage() {
    let chunk = Chunk::from_rows(&arrow_schema(&schema()), &rows()).unwrap();
    let bytes = ChunkSerializer.serialize(&chunk).unwrap();
    assert_eq!(ChunkSerializer.deserialize(1, &bytes).unwrap(), chunk);
    assert!(ChunkSerializer.deserialize(2, &bytes).is_err());
    assert!(ChunkSerializer
        .deserialize(1, &bytes[..bytes.len() / 2])
        .is_err());
    assert!(ChunkSerializer.deserialize(1, &[]).is_err());
    assert!(ChunkSerializer.deserialize(1, &[7]).is_err());
    let inserts = Chunk::inserts(chunk.batch().clone());
    let bytes = ChunkSerializer.serialize(&inserts).unwrap();
    assert_eq!(ChunkSerializer.deserialize(1, &bytes).unwrap(), inserts);
}

/// Version 1's bytes of a small chunk: a change of the format (or of Arrow's IPC encoding)
/// fails here, so it comes with a new version that still reads these bytes.
#[test]
fn version_1_golden_bytes_still_read() {
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::String, true),
    ]);
    let rows = vec![
        Row::insert(vec![Value::Int64(1), Value::String("a".into())]),
        Row::with_kind(RowKind::Delete, vec![Value::Int64(2), Value::Null]),
    ];
    let chunk = Chunk::from_rows(&arrow_schema(&schema), &rows).unwrap();
    let golden = include_bytes!("golden-v1.bin");
    if std::env::var_os("WEIR_UPDATE_GOLDEN").is_some() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/chunk/golden-v1.bin");
        std::fs::write(path, ChunkSerializer.serialize(&chunk).unwrap()).unwrap();
    }
    assert_eq!(ChunkSerializer.deserialize(1, golden).unwrap(), chunk);
    assert_eq!(
        ChunkSerializer.serialize(&chunk).unwrap(),
        golden.as_slice()
    );
}

//! The types of API line 1.1 in Parquet and ORC: rows (the row path, `RowBatches`) and chunks
//! (the columnar path, `ChunkBatches`) of every type written by the bulk formats and read back
//! by the `parquet` and `orc-rust` readers, compared with the rows that were written.

#![cfg(weir_api_1_1)]

use std::collections::BTreeMap;

use arrow_array::RecordBatch;
use bytes::Bytes;
use weir_connector_api::row::{DataType, Field, Row, Schema, TimeUnit};
use weir_connector_datagen::factory::RowGenerator;
use weir_connector_files::format::{BulkWriterFactory, ChunkBatches, FromBatch, RowBatches};
use weir_connector_files::{OrcFormat, ParquetFormat};
use weir_formats::chunk::{arrow_schema, Chunk};

fn scalars() -> Vec<Field> {
    vec![
        Field::new("id", DataType::Int64, false),
        Field::new("i8", DataType::Int8, true),
        Field::new("i16", DataType::Int16, true),
        Field::new("i32", DataType::Int32, true),
        Field::new("u8", DataType::UInt8, true),
        Field::new("u16", DataType::UInt16, true),
        Field::new("u32", DataType::UInt32, true),
        Field::new("u64", DataType::UInt64, true),
        Field::new("f32", DataType::Float32, true),
        Field::new("day", DataType::Date32, true),
        Field::new(
            "us",
            DataType::timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("ns", DataType::timestamp(TimeUnit::Nanosecond, None), true),
        Field::new("bin", DataType::Bytes, true),
    ]
}

fn nested() -> Vec<Field> {
    vec![
        Field::new(
            "dec",
            DataType::Decimal128 {
                precision: 12,
                scale: 3,
            },
            true,
        ),
        Field::new("tags", DataType::List(Box::new(DataType::Int32)), true),
        Field::new(
            "point",
            DataType::Struct(vec![
                Field::new("x", DataType::Float64, true),
                Field::new("names", DataType::List(Box::new(DataType::String)), true),
            ]),
            true,
        ),
        Field::new(
            "attrs",
            DataType::Map(Box::new(DataType::String), Box::new(DataType::Int64)),
            true,
        ),
    ]
}

fn rows(schema: &Schema, n: u64) -> (RowGenerator, Vec<Row>) {
    let options: BTreeMap<String, String> = [
        ("id.kind", "sequence"),
        ("i8.null-rate", "0.2"),
        ("u64.min", "0"),
        ("u64.max", "9223372036854775807"),
        ("tags.element.null-rate", "0.3"),
        ("point.null-rate", "0.2"),
        ("dec.min", "-99.999"),
        ("dec.max", "99.999"),
    ]
    .into_iter()
    .filter(|(k, _)| schema.index_of(k.split('.').next().unwrap_or("")).is_some())
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let mut errors = Vec::new();
    let generator = RowGenerator::new(schema, &options, 11, &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    let rows = (0..n).map(|i| generator.row(i)).collect();
    (generator, rows)
}

fn write<T: 'static>(format: &dyn BulkWriterFactory<T>, elements: Vec<T>) -> Vec<u8> {
    let mut writer = format.create_writer().unwrap();
    let mut out = Vec::new();
    for e in elements {
        writer.add(e, &mut out).unwrap();
    }
    writer.finish(&mut out).unwrap();
    out
}

fn parquet_rows(file: Vec<u8>) -> Vec<Row> {
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(Bytes::from(file))
            .unwrap()
            .build()
            .unwrap();
    let mut rows = Vec::new();
    for batch in reader {
        rows.extend(Chunk::inserts(batch.unwrap()).to_rows().unwrap());
    }
    rows
}

#[test]
fn parquet_holds_every_type_on_the_row_and_the_columnar_path() {
    let schema = Schema::new(scalars().into_iter().chain(nested()).collect());
    let (generator, expected) = rows(&schema, 700);
    // The row path.
    let row_batches = RowBatches::try_new(&schema).unwrap().batch_size(256);
    let file = write(
        &ParquetFormat::new(row_batches.to_batches()),
        expected.clone(),
    );
    // Our own reader (the files source's row decoding) reads them back too.
    let batches = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        Bytes::from(file.clone()),
    )
    .unwrap()
    .build()
    .unwrap();
    let mut decoded = Vec::new();
    for batch in batches {
        row_batches
            .decode_batch(batch.unwrap(), &mut decoded)
            .unwrap();
    }
    let decoded: Vec<Row> = decoded.into_iter().map(|(row, _)| row).collect();
    assert_eq!(decoded, expected);
    assert_eq!(parquet_rows(file), expected);
    // The columnar path: datagen's chunks as they are.
    let arrow = arrow_schema(&schema);
    let chunks: Vec<Chunk> = [0..300_u64, 300..700]
        .into_iter()
        .map(|r| generator.chunk(&arrow, &r.collect::<Vec<_>>()))
        .collect();
    let file = write(
        &ParquetFormat::new(ChunkBatches::new(arrow).to_batches()),
        chunks,
    );
    assert_eq!(parquet_rows(file), expected);
}

#[test]
fn orc_holds_the_flat_types_and_refuses_nested_ones_by_name() {
    let schema = Schema::new(scalars());
    let (generator, _) = rows(&schema, 0);
    let arrow = arrow_schema(&schema);
    let numbers: Vec<u64> = (0..500).collect();
    let chunk = generator.chunk(&arrow, &numbers);
    let file = write(
        &OrcFormat::new(ChunkBatches::new(arrow).to_batches()),
        vec![chunk.clone()],
    );
    let reader = orc_rust::arrow_reader::ArrowReaderBuilder::try_new(Bytes::from(file))
        .unwrap()
        .build();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    let read = arrow_select::concat::concat_batches(&batches[0].schema(), &batches).unwrap();
    // ORC has no unsigned types: the writer widens them; compare each column in the type read.
    for (i, field) in read.schema().fields().iter().enumerate() {
        let written = arrow_cast::cast(chunk.batch().column(i), field.data_type()).unwrap();
        assert_eq!(
            written.as_ref(),
            read.column(i).as_ref(),
            "column {}",
            field.name()
        );
    }
    // Nested and decimal columns are refused with the column's name.
    for field in nested() {
        let name = field.name.clone();
        let schema = Schema::new(vec![field]);
        let (generator, _) = rows(&schema, 0);
        let arrow = arrow_schema(&schema);
        let chunk = generator.chunk(&arrow, &[0, 1]);
        let format = OrcFormat::new(ChunkBatches::new(arrow).to_batches());
        let mut writer = format.create_writer().unwrap();
        let mut out = Vec::new();
        let added = writer.add(chunk, &mut out);
        let result = added.and_then(|()| writer.finish(&mut out));
        let error = result.expect_err("ORC refuses it").to_string();
        assert!(error.contains(&name), "{name}: {error}");
    }
}

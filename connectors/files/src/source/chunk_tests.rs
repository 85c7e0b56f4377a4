//! The split reader on chunks against the split reader on rows: the same files read both
//! ways, the rows compared one by one, every chunk's position equal to the row reader's
//! position after the chunk's last row, and splits resumed across the two from every
//! position.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, Int32Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType as ArrowType, Field as ArrowField, TimeUnit};
use weir_connector_api::format::{find_format, RowDecoder, RowEncoder};
use weir_connector_api::row::{DataType, Field, Row, Schema, Value};
use weir_connector_base::source::reader::{RecordsWithSplitIds, SplitReader, SplitsChange};
use weir_formats::chunk::{arrow_schema, Chunk};
use weir_formats::columnar::{chunk_decoder, ChunkDecoder};

use super::reader::FileSplitReader;
use super::split::{FilePosition, FileSourceSplit};
use crate::format::{
    BulkKind, ChunkFromBatches, ChunkMessages, Framing, MessageRows, RowBatches, SourceFormat,
};
use crate::LocalFileSystem;

/// Every record of one split read from `position`, with the position after it.
async fn read_split<T: Send + 'static>(
    format: SourceFormat<T>,
    path: &str,
    position: FilePosition,
) -> Vec<(T, FilePosition)> {
    let mut reader = FileSplitReader::new(Arc::new(LocalFileSystem::new()), format);
    let len = std::fs::metadata(path).unwrap().len();
    let mut split = FileSourceSplit::file(path, len, 0);
    split.position = position;
    reader
        .handle_splits_change(SplitsChange::Add(vec![split]))
        .unwrap();
    let mut out = Vec::new();
    loop {
        let mut batch = reader.fetch().await.unwrap();
        let done = !batch.finished_splits().is_empty();
        while batch.next_split().is_some() {
            while let Some(record) = batch.next_record_from_split() {
                out.push(record);
            }
        }
        if done {
            return out;
        }
    }
}

/// Rows read on rows and on chunks: equal, chunk positions on the rows' positions, and each
/// reader resumed at the other's positions reads exactly the rest.
async fn compare(rows_format: SourceFormat<Row>, chunks_format: SourceFormat<Chunk>, path: &str) {
    let on_rows = read_split(rows_format.clone(), path, FilePosition::default()).await;
    let on_chunks = read_split(chunks_format.clone(), path, FilePosition::default()).await;
    assert!(on_chunks.len() > 1, "several chunks: {}", on_chunks.len());
    let mut from_chunks = Vec::new();
    for (chunk, position) in &on_chunks {
        from_chunks.extend(chunk.to_rows().unwrap());
        // The row reader's position after the same row.
        let (_, at) = &on_rows[from_chunks.len() - 1];
        assert_eq!(position, at, "after {} rows", from_chunks.len());
    }
    let rows: Vec<Row> = on_rows.iter().map(|(r, _)| r.clone()).collect();
    assert_eq!(format!("{from_chunks:?}"), format!("{rows:?}"));
    // A chunk reader's checkpoint restored on rows.
    let mut done = 0;
    for (chunk, position) in &on_chunks {
        done += chunk.num_rows();
        let rest: Vec<Row> = read_split(rows_format.clone(), path, *position)
            .await
            .into_iter()
            .map(|(r, _)| r)
            .collect();
        assert_eq!(format!("{rest:?}"), format!("{:?}", &rows[done..]));
    }
    // A row reader's checkpoint (after any row) restored on chunks.
    let step = (on_rows.len() / 40).max(1);
    for (i, (_, position)) in on_rows
        .iter()
        .enumerate()
        .filter(|(i, _)| i % step == 0 || *i < 40 || *i + 3 > on_rows.len())
    {
        let mut rest = Vec::new();
        for (chunk, _) in read_split(chunks_format.clone(), path, *position).await {
            rest.extend(chunk.to_rows().unwrap());
        }
        assert_eq!(
            format!("{rest:?}"),
            format!("{:?}", &rows[i + 1..]),
            "resumed after row {i} at {position:?}"
        );
    }
}

fn schema() -> Schema {
    Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::String, true),
        Field::new("price", DataType::Float64, true),
        Field::new("at", DataType::TimestampMillis, true),
    ])
}

fn rows(count: i64) -> Vec<Row> {
    (0..count)
        .map(|i| {
            Row::insert(vec![
                Value::Int64(i),
                match i % 5 {
                    0 => Value::Null,
                    1 => Value::String(format!("multi\nline {i}, \"quoted\"")),
                    _ => Value::String(format!("n{i}")),
                },
                if i % 3 == 0 {
                    Value::Null
                } else {
                    Value::Float64(i as f64 / 8.0)
                },
                Value::TimestampMillis(1_704_067_200_000 + i * 1_001),
            ])
        })
        .collect()
}

fn config(id: &str, options: &[(&str, &str)]) -> weir_connector_api::config::ValidatedConfig {
    let map: BTreeMap<String, String> = options
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    find_format(id).unwrap().options().validate(&map).unwrap()
}

/// The row and chunk formats of `id`, and the file of `rows` (blank lines between some).
fn message_file(
    id: &'static str,
    framing: Framing,
    header: Option<&str>,
    rows: &[Row],
    path: &std::path::Path,
) -> (SourceFormat<Row>, SourceFormat<Chunk>) {
    weir_formats::link();
    let format = find_format(id).unwrap();
    let config = config(id, &[]);
    let encoder = format.encoder(&schema(), &config).unwrap();
    let mut messages = MessageRows::new(
        id,
        format.encoder(&schema(), &config).unwrap(),
        format.decoder(&schema(), &config).unwrap(),
        framing,
    );
    let mut bytes = Vec::new();
    if let Some(h) = header {
        messages = messages.with_header(h.as_bytes().to_vec());
        bytes.extend_from_slice(h.as_bytes());
        bytes.push(b'\n');
    }
    for (i, row) in rows.iter().enumerate() {
        encoder.encode(row, &mut bytes).unwrap();
        bytes.push(b'\n');
        if i % 97 == 0 {
            bytes.push(b'\n');
        }
    }
    std::fs::write(path, bytes).unwrap();
    let decoder = chunk_decoder(id, &schema(), &config).unwrap().unwrap();
    (
        SourceFormat::Row(Arc::new(messages.clone())),
        SourceFormat::Row(Arc::new(ChunkMessages::new(messages, decoder))),
    )
}

#[tokio::test]
async fn json_lines_read_on_chunks_are_the_rows_at_the_same_positions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.jsonl");
    // Without line breaks in values: json lines hold them escaped anyway.
    let (rows_format, chunks_format) =
        message_file("json", Framing::Lines, None, &rows(12_000), &path);
    compare(rows_format, chunks_format, path.to_str().unwrap()).await;
}

#[tokio::test]
async fn csv_files_read_on_chunks_are_the_rows_at_the_same_positions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.csv");
    let framing = Framing::Csv {
        delimiter: b',',
        quote: b'"',
    };
    let (rows_format, chunks_format) = message_file(
        "csv",
        framing,
        Some("id,name,price,at"),
        &rows(12_000),
        &path,
    );
    compare(rows_format, chunks_format, path.to_str().unwrap()).await;
}

/// A row format whose messages hold several rows separated by `|`, with a columnar decoder.
#[derive(Debug)]
struct Pipes;

impl RowDecoder for Pipes {
    fn decode(&self, bytes: &[u8], out: &mut Vec<Row>) -> weir_connector_api::error::Result<()> {
        for part in bytes.split(|b| *b == b'|') {
            let text = String::from_utf8_lossy(part).into_owned();
            out.push(Row::insert(vec![Value::String(text)]));
        }
        Ok(())
    }
}

impl RowEncoder for Pipes {
    fn encode(&self, _row: &Row, _out: &mut Vec<u8>) -> weir_connector_api::error::Result<()> {
        Ok(())
    }
}

impl ChunkDecoder for Pipes {
    fn decode_chunk(&self, messages: &[&[u8]]) -> weir_connector_api::error::Result<Option<Chunk>> {
        let mut rows = Vec::new();
        for m in messages {
            self.decode(m, &mut rows)?;
        }
        let schema = Schema::new(vec![Field::new("s", DataType::String, true)]);
        Ok(Some(
            Chunk::from_rows(&arrow_schema(&schema), &rows).unwrap(),
        ))
    }
}

#[tokio::test]
async fn a_row_checkpoint_inside_a_message_of_several_rows_resumes_on_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pipes.txt");
    let mut text = String::new();
    for i in 0..20_000 {
        let parts: Vec<String> = (0..=i % 4).map(|p| format!("{i}.{p}")).collect();
        text.push_str(&parts.join("|"));
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap();
    let messages = MessageRows::new("pipes", Box::new(Pipes), Box::new(Pipes), Framing::Lines);
    let rows_format = SourceFormat::Row(Arc::new(messages.clone()));
    let chunks_format = SourceFormat::Row(Arc::new(ChunkMessages::new(messages, Box::new(Pipes))));
    let on_rows = read_split(
        rows_format.clone(),
        path.to_str().unwrap(),
        FilePosition::default(),
    )
    .await;
    assert!(
        on_rows.iter().any(|(_, p)| p.records > 1),
        "positions inside messages"
    );
    compare(rows_format, chunks_format, path.to_str().unwrap()).await;
}

#[tokio::test]
async fn parquet_and_orc_read_on_chunks_are_the_rows_at_the_same_positions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.parquet");
    let orc_path = dir.path().join("rows.orc");
    // Other types than the schema's (int32, microseconds in UTC), a missing nullable column.
    let n = 20_000;
    let file_schema = Arc::new(arrow_schema::Schema::new(vec![
        ArrowField::new("id", ArrowType::Int32, false),
        ArrowField::new("name", ArrowType::Utf8, true),
        ArrowField::new(
            "at",
            ArrowType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int32Array::from_iter_values(0..n)),
        Arc::new(
            (0..n)
                .map(|i| (i % 4 != 0).then(|| format!("n{i}")))
                .collect::<StringArray>(),
        ),
        Arc::new(
            (0..n)
                .map(|i| (i % 6 != 0).then_some(1_704_067_200_000_000 + i64::from(i) * 1_234_567))
                .collect::<TimestampMicrosecondArray>()
                .with_timezone("UTC"),
        ),
    ];
    let batch = RecordBatch::try_new(Arc::clone(&file_schema), columns).unwrap();
    let file = std::fs::File::create(&path).unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(7_000))
        .build();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(file, Arc::clone(&file_schema), Some(props)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let orc_file = std::fs::File::create(&orc_path).unwrap();
    let mut orc = orc_rust::arrow_writer::ArrowWriterBuilder::new(orc_file, file_schema)
        .try_build()
        .unwrap();
    orc.write(&batch).unwrap();
    orc.close().unwrap();
    let format = |kind| -> (SourceFormat<Row>, SourceFormat<Chunk>) {
        (
            SourceFormat::Bulk {
                kind,
                decode: Arc::new(RowBatches::new(&schema())),
                batch_size: 3_000,
            },
            SourceFormat::Bulk {
                kind,
                decode: Arc::new(ChunkFromBatches::new(&schema())),
                batch_size: 3_000,
            },
        )
    };
    let (rows_format, chunks_format) = format(BulkKind::Parquet);
    compare(rows_format, chunks_format, path.to_str().unwrap()).await;
    let (rows_format, chunks_format) = format(BulkKind::Orc);
    compare(rows_format, chunks_format, orc_path.to_str().unwrap()).await;
}

/// The types of API line 1.1 read from Parquet on both readers: int32 into int8 and int32,
/// float64 into float32, an integer column into a decimal, date32, microsecond timestamps with
/// a zone, and a list.
#[tokio::test]
async fn parquet_of_the_newer_types_reads_the_same_rows_on_chunks() {
    use arrow_array::builder::{Int64Builder, ListBuilder};
    use arrow_array::{Date32Array, Float64Array};
    use weir_connector_api::row::TimeUnit as RowTimeUnit;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("types.parquet");
    let n = 5_000;
    let mut list = ListBuilder::new(Int64Builder::new());
    for i in 0..n {
        if i % 7 == 0 {
            list.append_null();
        } else {
            for j in 0..i64::from(i % 4) {
                list.values().append_value(j * i64::from(i));
            }
            list.append(true);
        }
    }
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "small",
            Arc::new(Int32Array::from_iter_values((0..n).map(|i| i % 100))),
        ),
        ("wide", Arc::new(Int32Array::from_iter_values(0..n))),
        (
            "ratio",
            Arc::new(
                (0..n)
                    .map(|i| (i % 5 != 0).then_some(f64::from(i) / 4.0))
                    .collect::<Float64Array>(),
            ),
        ),
        (
            "price",
            Arc::new(Int32Array::from_iter_values((0..n).map(|i| i * 3))),
        ),
        (
            "day",
            Arc::new(Date32Array::from_iter_values(19_000..19_000 + n)),
        ),
        (
            "at",
            Arc::new(
                (0..n)
                    .map(|i| Some(1_704_067_200_000_000 + i64::from(i) * 999_999))
                    .collect::<TimestampMicrosecondArray>()
                    .with_timezone("+02:00"),
            ),
        ),
        ("items", Arc::new(list.finish())),
    ];
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let file = std::fs::File::create(&path).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let schema = Schema::new(vec![
        Field::new("small", DataType::Int8, false),
        Field::new("wide", DataType::Int32, false),
        Field::new("ratio", DataType::Float32, true),
        Field::new(
            "price",
            DataType::Decimal128 {
                precision: 12,
                scale: 2,
            },
            true,
        ),
        Field::new("day", DataType::Date32, true),
        Field::new(
            "at",
            DataType::timestamp(RowTimeUnit::Microsecond, Some("+02:00".into())),
            true,
        ),
        Field::new("items", DataType::List(Box::new(DataType::Int64)), true),
        Field::new("missing", DataType::Int16, true),
    ]);
    let rows_format = SourceFormat::Bulk {
        kind: BulkKind::Parquet,
        decode: Arc::new(RowBatches::new(&schema)),
        batch_size: 1_500,
    };
    let chunks_format = SourceFormat::Bulk {
        kind: BulkKind::Parquet,
        decode: Arc::new(ChunkFromBatches::new(&schema)),
        batch_size: 1_500,
    };
    compare(rows_format, chunks_format, path.to_str().unwrap()).await;
}

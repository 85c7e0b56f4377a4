//! Every format end to end: written by the file sink in a job, read back by our own file source
//! and — for Parquet and ORC — by an independent reader (pyarrow).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::{read_all, write_all, Order};
use weir_connector_files::fs::FileSystem;
use weir_connector_files::sink::BasePathBucketAssigner;
use weir_connector_files::sink::RollingPolicy;
use weir_connector_files::{
    Batches, Codec, CsvRecordFormat, FileSink, FileSource, JsonLinesFormat, LocalFileSystem,
    OrcFormat, ParquetFormat, SerdeRecords, TextLinesFormat,
};

fn orders(n: u64) -> Vec<Order> {
    (0..n).map(Order::new).collect()
}

fn sorted(mut v: Vec<Order>) -> Vec<Order> {
    v.sort_by_key(|o| o.id);
    v
}

async fn files_in(dir: &str) -> Vec<String> {
    let fs = LocalFileSystem::new();
    common::visible_files(&(Arc::new(fs) as Arc<dyn FileSystem>), dir)
        .await
        .unwrap()
}

fn local() -> Arc<dyn FileSystem> {
    Arc::new(LocalFileSystem::new())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_formats_roundtrip_through_sink_and_source() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().to_string_lossy().into_owned();
    let data = orders(5_000);
    let rolling = RollingPolicy::default_policy().with_part_size(16 * 1024);
    // JSON lines, several part files per subtask.
    let json = format!("{base}/json");
    let sink = FileSink::row(local(), json.clone(), JsonLinesFormat::<Order>::new())
        .bucket_assigner(BasePathBucketAssigner)
        .rolling_policy(rolling)
        .suffix(".jsonl")
        .build()
        .unwrap();
    write_all(data.clone(), sink, 2, Duration::from_millis(20), None).await;
    let files = files_in(&json).await;
    assert!(files.len() > 4, "{} files", files.len());
    let source = FileSource::row(local(), [json], JsonLinesFormat::<Order>::new())
        .build()
        .unwrap();
    assert_eq!(sorted(read_all(source, 2).await), data);
    // CSV with a header in every file and `;` separators.
    let csv = format!("{base}/csv");
    let format = || CsvRecordFormat::<Order>::new().delimiter(b';');
    let sink = FileSink::row(local(), csv.clone(), format())
        .bucket_assigner(BasePathBucketAssigner)
        .rolling_policy(rolling)
        .build()
        .unwrap();
    write_all(data.clone(), sink, 2, Duration::from_millis(20), None).await;
    let first = std::fs::read_to_string(&files_in(&csv).await[0]).unwrap();
    assert!(
        first.starts_with("id;customer;amount;note\n"),
        "{first:.60}"
    );
    let source = FileSource::row(local(), [csv], format()).build().unwrap();
    assert_eq!(sorted(read_all(source, 3).await), data);
    // Text lines.
    let text = format!("{base}/text");
    let lines: Vec<String> = (0..1000).map(|i| format!("line {i:04}")).collect();
    let sink = FileSink::row(local(), text.clone(), TextLinesFormat)
        .bucket_assigner(BasePathBucketAssigner)
        .build()
        .unwrap();
    write_all(lines.clone(), sink, 1, Duration::from_millis(20), None).await;
    let source = FileSource::row(local(), [text], TextLinesFormat)
        .build()
        .unwrap();
    let mut got = read_all(source, 1).await;
    got.sort();
    assert_eq!(got, lines);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_is_readable_by_pyarrow_and_by_our_source_per_row_group() {
    let python_ok = common::pyarrow_python();
    drop(python_ok);
    let dir = tempfile::tempdir().unwrap();
    let base = format!("{}/parquet", dir.path().display());
    let data = orders(20_000);
    let records = SerdeRecords::<Order>::traced().unwrap().batch_size(1000);
    let sink = FileSink::bulk(
        local(),
        base.clone(),
        ParquetFormat::new(records.to_batches())
            .codec(Codec::Zstd)
            .row_group_rows(3000),
    )
    .bucket_assigner(|o: &Order, _: &_| format!("c{}", o.id % 2))
    .suffix(".parquet")
    .build()
    .unwrap();
    write_all(
        data.clone(),
        sink,
        2,
        Duration::from_millis(30),
        Some(200_000.0),
    )
    .await;
    let files = files_in(&base).await;
    assert!(files.iter().all(|f| f.ends_with(".parquet")));
    // pyarrow reads every file and sees every row.
    let rows = common::pyarrow_read(&files, false);
    assert_eq!(rows.len(), data.len());
    for (row, order) in rows.iter().zip(&data) {
        assert_eq!(row["id"], order.id);
        assert_eq!(row["customer"], order.customer.as_str());
        assert_eq!(row["amount"].as_f64(), Some(order.amount));
        assert_eq!(row["note"].as_str(), order.note.as_deref());
    }
    // Our source, one split per row group, typed records and raw batches.
    let source = FileSource::parquet(local(), [base.clone()], records.clone())
        .split_row_groups(true)
        .build()
        .unwrap();
    assert_eq!(sorted(read_all(source, 3).await), data);
    let source = FileSource::parquet(local(), [base], Batches)
        .build()
        .unwrap();
    let batches = read_all(source, 2).await;
    assert_eq!(
        batches
            .iter()
            .map(arrow_array::RecordBatch::num_rows)
            .sum::<usize>(),
        data.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orc_is_readable_by_pyarrow_and_by_our_source() {
    common::pyarrow_python();
    let dir = tempfile::tempdir().unwrap();
    let base = format!("{}/orc", dir.path().display());
    let data = orders(10_000);
    let records = SerdeRecords::<Order>::traced().unwrap().batch_size(1000);
    let sink = FileSink::bulk(
        local(),
        base.clone(),
        OrcFormat::new(records.to_batches()).codec(Codec::Zstd),
    )
    .bucket_assigner(BasePathBucketAssigner)
    .suffix(".orc")
    .build()
    .unwrap();
    write_all(
        data.clone(),
        sink,
        2,
        Duration::from_millis(30),
        Some(200_000.0),
    )
    .await;
    let files = files_in(&base).await;
    let rows = common::pyarrow_read(&files, true);
    assert_eq!(rows.len(), data.len());
    for (row, order) in rows.iter().zip(&data) {
        assert_eq!(row["id"], order.id);
        assert_eq!(row["customer"], order.customer.as_str());
        assert_eq!(row["note"].as_str(), order.note.as_deref());
    }
    let source = FileSource::orc(local(), [base], records).build().unwrap();
    assert_eq!(sorted(read_all(source, 2).await), data);
}

//! The Arrow factory contract, checked by the testkit: the columnar `files` sink writes files
//! that read back as exactly the rows the Row sink's files hold, in Parquet, ORC and CSV, with
//! and without date-time buckets.

// Columns exist on API line 1.1's platform only.
#![cfg(weir_api_1_1)]

use std::collections::BTreeMap;
use std::path::Path;

use weir_connector_api::row::{DataType, Field, Row, Schema, Value};
use weir_testkit::columnar::{check_chunk_sink, Node};

fn schema() -> Schema {
    Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::String, true),
        Field::new("price", DataType::Float64, true),
        Field::new("ok", DataType::Boolean, true),
        Field::new("at", DataType::TimestampMillis, true),
    ])
}

/// 2,345 rows over three days of `at`, out of order, with nulls in every nullable field.
fn rows() -> Vec<Row> {
    (0..2345_i64)
        .map(|i| {
            let day = (i * 7) % 3;
            Row::insert(vec![
                Value::Int64(i),
                if i % 5 == 0 {
                    Value::Null
                } else {
                    Value::String(format!("n,\"{i}\""))
                },
                if i % 7 == 0 {
                    Value::Null
                } else {
                    Value::Float64(i as f64 / 3.0)
                },
                if i % 11 == 0 {
                    Value::Null
                } else {
                    Value::Boolean(i % 2 == 0)
                },
                Value::TimestampMillis(1_704_067_200_000 + day * 86_400_000 + i * 1000),
            ])
        })
        .collect()
}

fn options(dir: &Path, format: &str, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut options: BTreeMap<String, String> = [
        ("path", dir.display().to_string()),
        ("format", format.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    options.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    options
}

async fn check(format: &str, extra: &[(&str, &str)]) {
    let tmp = tempfile::tempdir().unwrap();
    let (by_rows, by_chunks) = (tmp.path().join("rows"), tmp.path().join("chunks"));
    let row_node = Node::new("files", options(&by_rows, format, extra), schema());
    let chunk_node = row_node.with_options(options(&by_chunks, format, extra));
    // Read back with the files source, over the same directory (buckets included).
    let read_back = |node: &Node| {
        let path = node.options["path"].clone();
        node.with_options(
            [("path", path.as_str()), ("format", format)]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    };
    let written = check_chunk_sink(&row_node, &chunk_node, &rows(), read_back)
        .await
        .unwrap_or_else(|e| panic!("{format} {extra:?}: {e}"));
    assert_eq!(written, 2345);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_columnar_sink_writes_what_the_row_sink_writes() {
    for format in ["parquet", "orc", "csv"] {
        check(format, &[]).await;
        check(
            format,
            &[
                ("bucket.time-field", "at"),
                ("bucket.date-time-format", "%Y-%m-%d"),
            ],
        )
        .await;
    }
}

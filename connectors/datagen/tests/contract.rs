//! The Arrow factory contract, checked by the testkit: datagen's columnar source reads exactly
//! the rows of its Row source, for every field kind and type, with nulls, over several splits.

// Columns exist on API line 1.1's platform only.
#![cfg(weir_api_1_1)]

use std::collections::BTreeMap;

use weir_connector_api::row::{DataType, Field, Schema};
use weir_testkit::columnar::{check_chunk_source, Node};

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_columnar_source_reads_the_row_sources_rows() {
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::String, true),
        Field::new("price", DataType::Float64, true),
        Field::new("at", DataType::TimestampMillis, true),
        Field::new("flag", DataType::Boolean, true),
        Field::new("blob", DataType::Bytes, true),
    ]);
    let options = map(&[
        ("number-of-rows", "12345"),
        ("seed", "7"),
        ("fields.id.kind", "sequence"),
        ("fields.name.null-rate", "0.3"),
        ("fields.name.length", "4"),
        ("fields.price.min", "-5"),
        ("fields.price.max", "5"),
        ("fields.at.kind", "sequence"),
        ("fields.at.start", "1704067200000"),
        ("fields.at.step", "1000"),
        ("fields.flag.null-rate", "0.5"),
        ("fields.blob.length", "3"),
        ("fields.blob.null-rate", "0.1"),
    ]);
    let rows = check_chunk_source(&Node::new("datagen", options, schema))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rows, 12_345);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_source_is_not_passed_as_columnar() {
    let schema = Schema::new(vec![Field::new("id", DataType::Int64, false)]);
    let options = map(&[("number-of-rows", "10"), ("rows-per-second", "100")]);
    let error = check_chunk_source(&Node::new("datagen", options, schema))
        .await
        .expect_err("a rate limit counts rows");
    assert!(
        error.contains("these options need rows: it is rate limited"),
        "{error}"
    );
}

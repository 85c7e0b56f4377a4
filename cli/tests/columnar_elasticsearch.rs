//! The `elasticsearch` sink on the columnar engine, with the `weir` binary against noida-db's
//! Elasticsearch API: a datagen source of every kind of type into a routed index, run with
//! `WEIR_PIPELINE_ENGINE=rows` and on columns (`auto`, which must say it runs on columns with
//! no source and no sink through the adapter: the connector writes chunks natively); the
//! documents of both runs read back and compared field by field.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::BTreeMap;
use std::fs;

use super::examples_elasticsearch::{call, documents as index_documents};
use common::{run, run_counts, weir};
use serde_json::{json, Value as Json};
use weir_testkit::servers::NoidaDb;

const ROWS: u64 = 2_000;

fn pipeline(url: &str, index: &str) -> String {
    format!(
        r#"[pipeline]
name = "columnar-elasticsearch"

[[sources]]
name = "orders"
connector = "datagen"
schema = [
  {{ name = "id", type = "int64", nullable = false }},
  {{ name = "status", type = "string" }},
  {{ name = "region", type = "string", nullable = false }},
  {{ name = "amount", type = "float64" }},
  {{ name = "small", type = "int16" }},
  {{ name = "big", type = "uint64" }},
  {{ name = "ratio", type = "float32" }},
  {{ name = "price", type = "decimal(10, 2)" }},
  {{ name = "day", type = "date" }},
  {{ name = "at", type = "timestamp" }},
  {{ name = "seen", type = 'timestamp(us, "UTC")' }},
  {{ name = "tags", type = "list<string>" }},
  {{ name = "point", type = "struct<x: int32, y: float64>" }},
  {{ name = "attrs", type = "map<string, int64>" }},
]

[sources.options]
number-of-rows = {ROWS}
seed = 18
fields.id.kind = "sequence"
fields.status.values = "NEW,PAID,SHIPPED"
fields.status.null-rate = 0.1
fields.region.values = "eu,us"
fields.amount.null-rate = 0.2
fields.small.null-rate = 0.1
fields.price.min = "-50"
fields.price.max = "50.5"
fields.tags.length = 2
fields.point.null-rate = 0.2

[[sinks]]
name = "search"
input = "orders"
connector = "elasticsearch"

[sinks.options]
hosts = "{url}"
index = "{index}-{{region}}"
document-id.fields = "id"
"#
    )
}

/// Every document of the `<prefix>-eu` and `<prefix>-us` indices, by id.
fn documents(server: &NoidaDb, prefix: &str) -> BTreeMap<String, Json> {
    ["eu", "us"]
        .iter()
        .flat_map(|region| index_documents(server, &format!("{prefix}-{region}")))
        .collect()
}

#[test]
fn the_elasticsearch_sink_takes_columns_and_writes_the_row_engines_documents() {
    let server = NoidaDb::shared().expect("noida-db starts (run `cargo xtask deps`)");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let prefix = format!("weir-cli-columnar-{}-{nanos:08x}", std::process::id());
    let on = |engine: &str| {
        let index = format!("{prefix}-{engine}");
        // Documents are compared as stored: no dynamic mapping (which would refuse, say, a
        // uint64 over a long's range) between them and the index.
        for region in ["eu", "us"] {
            let (status, answer) = call(
                &server,
                "PUT",
                &format!("/{index}-{region}"),
                &json!({ "mappings": { "dynamic": false } }),
            );
            assert_eq!(status, 200, "{answer}");
        }
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("p.toml"),
            pipeline(&server.elasticsearch_url(), &index),
        )
        .unwrap();
        let (code, out, err) = run(weir()
            .current_dir(dir.path())
            .env("WEIR_PIPELINE_ENGINE", engine)
            .args(["run", "p.toml"]));
        assert_eq!(code, 0, "{engine}:\n{out}\n{err}");
        (documents(&server, &index), err)
    };
    let (rows, rows_err) = on("rows");
    let (columns, columns_err) = on("auto");
    assert!(!rows_err.contains("runs on columns"), "{rows_err}");
    assert!(
        columns_err.contains(
            "the pipeline runs on columns (0 of 1 sources read rows through the adapter)"
        ) && columns_err.contains("0 of 1 sinks take rows through the adapter"),
        "{columns_err}"
    );
    // The run summary counts rows on both engines (the columnar sink counts a chunk's rows).
    assert_eq!(run_counts(&columns_err), run_counts(&rows_err));
    assert!(
        run_counts(&rows_err)
            .iter()
            .any(|l| l.contains(&ROWS.to_string())),
        "{rows_err}"
    );
    assert_eq!(rows.len(), usize::try_from(ROWS).unwrap());
    assert_eq!(
        rows.keys().collect::<Vec<_>>(),
        columns.keys().collect::<Vec<_>>()
    );
    let fields = [
        "id", "status", "region", "amount", "small", "big", "ratio", "price", "day", "at", "seen",
        "tags", "point", "attrs",
    ];
    for (id, doc) in &rows {
        for field in fields {
            assert!(
                doc.get(field).is_some(),
                "document {id} has no `{field}`: {doc}"
            );
            assert_eq!(
                doc.get(field),
                columns[id].get(field),
                "document {id}, `{field}`"
            );
        }
        assert_eq!(doc, &columns[id], "document {id}");
    }
}

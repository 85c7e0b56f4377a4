//! The canal-json columnar decoder against the row decoder: random events of many rows
//! (inserts, updates with `old`, deletes, values as strings, DDL and other tables' events),
//! and malformed events with each option.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value as Json};

use super::test_support::{
    assert_same, encoded, random_rows, read_on_columns, typed_schema, Random,
};

/// `json` with its numbers and booleans written as strings, as Canal writes values, at
/// random (nested values too).
fn stringify(r: &mut Random, json: Json) -> Json {
    match json {
        Json::Number(n) if r.below(2) == 0 => Json::String(n.to_string()),
        Json::Bool(b) if r.below(2) == 0 => Json::String(
            match (b, r.below(2)) {
                (true, 0) => "1",
                (true, _) => "TRUE",
                (false, 0) => "0",
                (false, _) => "false",
            }
            .to_owned(),
        ),
        Json::Array(items) => Json::Array(items.into_iter().map(|j| stringify(r, j)).collect()),
        Json::Object(object) => Json::Object(
            object
                .into_iter()
                .map(|(k, v)| (k, stringify(r, v)))
                .collect(),
        ),
        other => other,
    }
}

/// Random Canal events of the rows of `schema`: 1 to 3 rows each, `INSERT`, `UPDATE` (with
/// `old` holding some fields of another row), `DELETE`, DDL events, events of another table
/// and of other types.
fn random_events(seed: u64, count: usize) -> Vec<Vec<u8>> {
    let schema = typed_schema(true);
    let rows = random_rows(&schema, seed, count * 3);
    let images: Vec<Json> = encoded("json", &schema, &[], &rows)
        .iter()
        .map(|m| serde_json::from_slice(m).unwrap())
        .collect();
    let mut r = Random(seed);
    let mut next = images.into_iter();
    let mut events = Vec::new();
    for _ in 0..count {
        let n = 1 + r.below(3) as usize;
        let data: Vec<Json> = next
            .by_ref()
            .take(n)
            .map(|j| stringify(&mut r, j))
            .collect();
        let table = if r.below(10) == 0 { "other" } else { "orders" };
        let event = match r.below(8) {
            0..=2 => json!({"data": data, "type": "INSERT", "database": "shop", "table": table,
                            "isDdl": false, "ts": 1}),
            3..=4 => {
                let old: Vec<Json> = data
                    .iter()
                    .map(|image| {
                        let Json::Object(object) = image else {
                            unreachable!()
                        };
                        // Some of the fields, with other values (or null).
                        let mut changed = serde_json::Map::new();
                        for (k, v) in object {
                            if r.below(3) != 0 {
                                continue;
                            }
                            let null = r.below(2) == 0 && k != "id";
                            changed.insert(k.clone(), if null { Json::Null } else { v.clone() });
                        }
                        Json::Object(changed)
                    })
                    .collect();
                json!({"type": "UPDATE", "data": data, "old": old, "database": "shop",
                       "table": table, "pkNames": ["id"]})
            }
            5 => json!({"data": data, "type": "DELETE", "database": "shop", "table": table}),
            6 => json!({"data": null, "type": "CREATE", "isDdl": true,
                        "sql": "create table orders (id bigint)", "database": "shop"}),
            _ => json!({"data": data, "type": "QUERY", "database": "shop", "table": table}),
        };
        events.push(serde_json::to_vec(&event).unwrap());
    }
    events
}

#[test]
fn random_canal_events_decode_to_the_same_rows_on_columns() {
    let schema = typed_schema(true);
    let events = random_events(41, 800);
    let messages: Vec<&[u8]> = events.iter().map(Vec::as_slice).collect();
    for options in [
        vec![],
        vec![("table.include", "orders"), ("database.include", "shop")],
        vec![("table.include", "other")],
        vec![("database.include", "nope")],
    ] {
        let rows = assert_same("canal-json", &schema, &options, &messages).unwrap();
        assert!(
            read_on_columns("canal-json", &schema, &options, &messages),
            "{options:?}: valid events are read on columns"
        );
        if options.is_empty() {
            assert!(rows.len() > 800, "several rows per event: {}", rows.len());
        }
    }
    // In batches of a few events, as a source hands them on.
    for batch in messages.chunks(7) {
        assert_same("canal-json", &schema, &[], batch).unwrap();
    }
}

/// Events the row decoder reads in a particular way, and malformed ones.
const CANAL_CASES: &[&str] = &[
    r#"{"data":[{"id":1,"name":"a"},{"id":"2","price":"2.5","ok":"1"}],"type":"INSERT"}"#,
    r#"{"data":[{"id":1,"name":"b"}],"old":[{"name":"a"}],"type":"UPDATE"}"#,
    r#"{"data":[{"id":1,"name":"b"}],"old":[{"name":"a","name":null}],"type":"UPDATE"}"#,
    r#"{"data":[{"id":1}],"type":"DELETE","database":"shop","table":"orders"}"#,
    r#"{"data":[],"type":"INSERT"}"#,
    r#"{"data":null,"type":"CREATE","isDdl":true}"#,
    r#"{"type":"ALTER"}"#,
    r#"{"data":[5],"type":"QUERY"}"#,
    r#"{"data":[{"id":1}],"type":"INSERT","isDdl":true}"#,
    r#"{"data":[{"id":1}],"type":"INSERT","isDdl":"true"}"#,
    r#"{"data":[{"id":1}],"type":"INSERT","table":5}"#,
    r#"{"data":[{"id":1}],"type":"INSERT","type":"DELETE"}"#,
    r#"{"data":[{"id":1,"price":1e2,"name":12,"ok":"FALSE","at":"5"}],"type":"INSERT"}"#,
    r#"{"data":[{"id":1,"name":true,"blob":"AAH/","at":"2024-01-01T00:00:00Z"}],"type":"INSERT"}"#,
    "   ",
    r#"{"data":[{"id":1}],"type":"UPSERT"}"#,
    r#"{"data":[{"id":1}]}"#,
    r#"{"data":[{"id":1}],"type":5}"#,
    r#"{"data":{"id":1},"type":"INSERT"}"#,
    r#"{"type":"INSERT"}"#,
    r#"{"data":null,"type":"DELETE"}"#,
    r#"{"data":7,"type":"QUERY"}"#,
    r#"{"data":[{"id":1}],"old":[],"type":"UPDATE"}"#,
    r#"{"data":[{"id":1}],"type":"UPDATE"}"#,
    r#"{"data":[{"id":1}],"old":[5],"type":"UPDATE"}"#,
    r#"{"data":[{"id":1}],"old":[{"id":null}],"type":"UPDATE"}"#,
    r#"{"data":[{"id":1}],"old":{"id":2},"type":"UPDATE"}"#,
    r#"{"data":[{"id":null}],"type":"INSERT"}"#,
    r#"{"data":[{"name":"x"}],"type":"INSERT"}"#,
    r#"{"data":[{"id":"x"}],"type":"INSERT"}"#,
    r#"{"data":[{"id":1.5}],"type":"INSERT"}"#,
    r#"{"data":[{"id":1,"ok":"yes"}],"type":"INSERT"}"#,
    r#"{"data":[{"id":1,"blob":" AAH/"}],"type":"INSERT"}"#,
    r#"{"data":[{"id":1},7],"type":"INSERT"}"#,
    r#"{"data":[{"id":1}],"type":"INSERT"} x"#,
    r#"{"data":[{"id":1}],"type":"INSERT","es":1e400}"#,
    r#"{"data":[{"id":1}],"old":[{"id":2,"x":[-1e400]}],"type":"INSERT"}"#,
    r#"{"data":[{"id":1,"x":{"y":1e400}}],"type":"INSERT","table":"other"}"#,
    "null",
    "[]",
    r#"{"data":[{"id":1}],"type":"INSERT""#,
];

#[test]
fn canal_cases_decode_or_fail_alike() {
    let schema = super::test_support::typed_schema(false);
    let mut failures = 0;
    for options in [
        vec![],
        vec![("ignore-parse-errors", "true")],
        vec![("table.include", "orders")],
        vec![
            ("database.include", "shop"),
            ("ignore-parse-errors", "true"),
        ],
    ] {
        for case in CANAL_CASES {
            if assert_same("canal-json", &schema, &options, &[case.as_bytes()]).is_err() {
                failures += 1;
            }
        }
        let all: Vec<&[u8]> = CANAL_CASES.iter().map(|c| c.as_bytes()).collect();
        let rows = assert_same("canal-json", &schema, &options, &all);
        if options == [("ignore-parse-errors", "true")] {
            assert!(rows.unwrap().len() >= 8, "the valid events' rows");
        }
    }
    assert!(failures > 20, "malformed cases fail: {failures}");
}

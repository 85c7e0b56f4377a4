#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use weir_connector_api::config::ValidatedConfig;
use weir_connector_api::format::{find_format, FormatFactory, RowDecoder, RowEncoder};
use weir_connector_api::row::{DataType, Field, Row, RowKind, Schema, Value};

fn schema() -> Schema {
    Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::String, true),
        Field::new("price", DataType::Float64, true),
        Field::new("ok", DataType::Boolean, true),
        Field::new("at", DataType::TimestampMillis, true),
        Field::new("blob", DataType::Bytes, true),
    ])
}

fn row() -> Row {
    Row::insert(vec![
        Value::Int64(7),
        Value::String("Ada, \"the\" first".into()),
        Value::Float64(2.5),
        Value::Boolean(true),
        Value::TimestampMillis(1_704_067_200_123),
        Value::Bytes(vec![0, 1, 255]),
    ])
}

fn config(format: &dyn FormatFactory, options: &[(&str, &str)]) -> ValidatedConfig {
    let map: BTreeMap<String, String> = options
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    format.options().validate(&map).unwrap()
}

fn codec(
    id: &str,
    schema: &Schema,
    options: &[(&str, &str)],
) -> (Box<dyn RowDecoder>, Box<dyn RowEncoder>) {
    let format = find_format(id).unwrap();
    let config = config(format, options);
    (
        format.decoder(schema, &config).unwrap(),
        format.encoder(schema, &config).unwrap(),
    )
}

fn decode(decoder: &dyn RowDecoder, bytes: &[u8]) -> Vec<Row> {
    let mut rows = Vec::new();
    decoder.decode(bytes, &mut rows).unwrap();
    rows
}

fn error(decoder: &dyn RowDecoder, bytes: &[u8]) -> String {
    let mut rows = Vec::new();
    decoder.decode(bytes, &mut rows).unwrap_err().to_string()
}

fn encode(encoder: &dyn RowEncoder, row: &Row) -> String {
    let mut out = Vec::new();
    encoder.encode(row, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn every_format_is_registered() {
    for id in ["json", "csv", "raw", "debezium-json", "canal-json"] {
        assert!(find_format(id).is_some(), "{id}");
    }
    assert_eq!(crate::all().len(), 5);
}

#[test]
fn json_round_trips_every_type() {
    let (decoder, encoder) = codec("json", &schema(), &[]);
    let text = encode(&*encoder, &row());
    assert_eq!(
        text,
        r#"{"id":7,"name":"Ada, \"the\" first","price":2.5,"ok":true,"at":"2024-01-01T00:00:00.123Z","blob":"AAH/"}"#
    );
    assert_eq!(decode(&*decoder, text.as_bytes()), vec![row()]);
    // Epoch millis are read too, and written with the option.
    let (decoder, encoder) = codec("json", &schema(), &[("timestamp-format", "epoch-millis")]);
    let rows = decode(&*decoder, br#"{"id":1,"at":1000}"#);
    assert_eq!(rows[0].values[4], Value::TimestampMillis(1000));
    assert_eq!(rows[0].values[1], Value::Null, "missing nullable field");
    assert!(encode(&*encoder, &row()).contains(r#""at":1704067200123"#));
}

#[test]
fn json_reports_malformed_messages() {
    let (decoder, _) = codec("json", &schema(), &[]);
    assert_eq!(
        error(&*decoder, br#"{"id":"seven"}"#),
        "malformed record at json message `{\"id\":\"seven\"}`: field `id`: expected an integer, got \"seven\""
    );
    assert_eq!(
        error(&*decoder, br#"{"id":null}"#),
        "malformed record at json message `{\"id\":null}`: field `id` is not nullable but the message has null"
    );
    assert_eq!(
        error(&*decoder, b"[1,2]"),
        "malformed record at json message `[1,2]`: expected a JSON object"
    );
    assert!(error(&*decoder, b"{\"id\":").starts_with(
        "malformed record at json message `{\"id\":`: not valid JSON: EOF while parsing"
    ));
    let (strict, _) = codec("json", &schema(), &[("fail-on-missing-field", "true")]);
    assert_eq!(
        error(&*strict, br#"{"id":1}"#),
        "malformed record at json message `{\"id\":1}`: field `name` is missing"
    );
    let (lenient, _) = codec("json", &schema(), &[("ignore-parse-errors", "true")]);
    assert!(decode(&*lenient, b"garbage").is_empty());
    assert!(
        decode(&*decoder, b"  \n").is_empty(),
        "blank lines are skipped"
    );
}

#[test]
fn json_is_append_only() {
    let (_, encoder) = codec("json", &schema(), &[]);
    let mut out = Vec::new();
    let err = encoder
        .encode(&Row::with_kind(RowKind::Delete, row().values), &mut out)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "malformed record at the json encoder: the json format is append-only and cannot write a \
         Delete row: use debezium-json or canal-json for changelogs"
    );
}

#[test]
fn csv_round_trips_with_quotes_and_nulls() {
    let (decoder, encoder) = codec("csv", &schema(), &[]);
    let text = encode(&*encoder, &row());
    assert_eq!(
        text,
        r#"7,"Ada, ""the"" first",2.5,true,2024-01-01T00:00:00.123Z,AAH/"#
    );
    assert_eq!(decode(&*decoder, text.as_bytes()), vec![row()]);
    // A cell far longer than the writer's buffer, full of quotes, round-trips too.
    let mut long = row();
    long.values[1] = Value::String("say \"hi\", ".repeat(2_000));
    let text = encode(&*encoder, &long);
    assert_eq!(decode(&*decoder, text.as_bytes()), vec![long]);
    let rows = decode(&*decoder, b"1,,,,,\n2,x,1.5,false,5,\n");
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0].values,
        vec![
            Value::Int64(1),
            Value::String(String::new()),
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null
        ]
    );
    assert_eq!(rows[1].values[4], Value::TimestampMillis(5));
    let (decoder, encoder) = codec(
        "csv",
        &schema(),
        &[("field-delimiter", ";"), ("null-literal", "NULL")],
    );
    let null_row = Row::insert(vec![
        Value::Int64(1),
        Value::Null,
        Value::Null,
        Value::Null,
        Value::Null,
        Value::Null,
    ]);
    assert_eq!(encode(&*encoder, &null_row), "1;NULL;NULL;NULL;NULL;NULL");
    assert_eq!(
        decode(&*decoder, b"1;NULL;NULL;NULL;NULL;NULL"),
        vec![null_row]
    );
}

#[test]
fn csv_reports_malformed_lines() {
    let (decoder, _) = codec("csv", &schema(), &[]);
    assert_eq!(
        error(&*decoder, b"1,a"),
        "malformed record at csv message `1,a`: line 1: expected 6 columns (id, name, price, ok, at, blob), got 2"
    );
    assert_eq!(
        error(&*decoder, b"x,a,1,true,1,"),
        "malformed record at csv message `x,a,1,true,1,`: field `id`: expected an integer, got `x`"
    );
    assert_eq!(
        error(&*decoder, b",a,1,true,1,"),
        "malformed record at csv message `,a,1,true,1,`: field `id` is not nullable but the cell is empty (null)"
    );
    let format = find_format("csv").unwrap();
    let bad: BTreeMap<String, String> = [("field-delimiter", "ab"), ("quote-charater", "'")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(
        format.options().validate(&bad).unwrap_err().to_string(),
        "2 problems in csv format options:\n  \
         - invalid value `ab` for option `field-delimiter`: must be a single printable ASCII character (or `\\t`)\n  \
         - unknown option `quote-charater`: did you mean `quote-character`?"
    );
}

#[test]
fn raw_needs_one_text_or_bytes_field() {
    let text = Schema::new(vec![Field::new("line", DataType::String, false)]);
    let (decoder, encoder) = codec("raw", &text, &[]);
    let rows = decode(&*decoder, "héllo".as_bytes());
    assert_eq!(rows, vec![Row::insert(vec![Value::String("héllo".into())])]);
    assert_eq!(encode(&*encoder, &rows[0]), "héllo");
    assert_eq!(
        error(&*decoder, &[0xff, 0xfe]),
        "malformed record at raw message `��`: not valid UTF-8 (invalid utf-8 sequence of 1 bytes \
         from index 0): use a bytes field for binary data"
    );
    let bytes = Schema::new(vec![Field::new("b", DataType::Bytes, false)]);
    let (decoder, _) = codec("raw", &bytes, &[]);
    assert_eq!(
        decode(&*decoder, &[0xff]),
        vec![Row::insert(vec![Value::Bytes(vec![0xff])])]
    );
    let format = find_format("raw").unwrap();
    let err = format
        .decoder(&schema(), &config(format, &[]))
        .err()
        .unwrap();
    assert!(err
        .to_string()
        .contains("the raw format needs a schema of exactly one string or bytes field; this one has `id` int64, `name` string"));
}

fn small() -> Schema {
    Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::String, true),
    ])
}

fn kinds(rows: &[Row]) -> Vec<(RowKind, Vec<Value>)> {
    rows.iter().map(|r| (r.kind, r.values.clone())).collect()
}

fn v(id: i64, name: &str) -> Vec<Value> {
    vec![Value::Int64(id), Value::String(name.into())]
}

#[test]
fn debezium_json_turns_op_codes_into_row_kinds() {
    let (decoder, encoder) = codec("debezium-json", &small(), &[]);
    let insert = decode(
        &*decoder,
        br#"{"before":null,"after":{"id":1,"name":"a"},"op":"c","ts_ms":1}"#,
    );
    let snapshot = decode(
        &*decoder,
        br#"{"before":null,"after":{"id":2,"name":"b"},"op":"r"}"#,
    );
    let update = decode(
        &*decoder,
        br#"{"before":{"id":1,"name":"a"},"after":{"id":1,"name":"z"},"op":"u"}"#,
    );
    let delete = decode(
        &*decoder,
        br#"{"before":{"id":2,"name":"b"},"after":null,"op":"d"}"#,
    );
    assert_eq!(kinds(&insert), vec![(RowKind::Insert, v(1, "a"))]);
    assert_eq!(kinds(&snapshot), vec![(RowKind::Insert, v(2, "b"))]);
    assert_eq!(
        kinds(&update),
        vec![
            (RowKind::UpdateBefore, v(1, "a")),
            (RowKind::UpdateAfter, v(1, "z"))
        ]
    );
    assert_eq!(kinds(&delete), vec![(RowKind::Delete, v(2, "b"))]);
    assert!(decode(&*decoder, b"").is_empty(), "tombstone");
    assert!(decode(&*decoder, b"null").is_empty(), "tombstone");
    // Encoding follows Flink: update-before is a delete, update-after a create.
    assert_eq!(
        encode(&*encoder, &update[0]),
        r#"{"before":{"id":1,"name":"a"},"after":null,"op":"d"}"#
    );
    assert_eq!(
        encode(&*encoder, &update[1]),
        r#"{"before":null,"after":{"id":1,"name":"z"},"op":"c"}"#
    );
    // What it writes it reads back.
    let written = encode(&*encoder, &delete[0]);
    assert_eq!(
        kinds(&decode(&*decoder, written.as_bytes())),
        kinds(&delete)
    );
}

#[test]
fn debezium_json_schema_envelope_and_errors() {
    let (plain, _) = codec("debezium-json", &small(), &[]);
    let (enveloped, _) = codec("debezium-json", &small(), &[("schema-include", "true")]);
    let message =
        br#"{"schema":{},"payload":{"before":null,"after":{"id":3,"name":"c"},"op":"c"}}"#;
    assert_eq!(
        kinds(&decode(&*enveloped, message)),
        vec![(RowKind::Insert, v(3, "c"))]
    );
    assert!(error(&*plain, message).ends_with(
        "the message has a schema envelope (`schema` and `payload`): set `schema-include = true`"
    ));
    assert!(error(&*enveloped, br#"{"op":"c"}"#).ends_with(
        "no `payload` object: the message has no schema envelope; set `schema-include = false`"
    ));
    assert_eq!(
        error(&*plain, br#"{"before":null,"after":{"id":1},"op":"u"}"#),
        "malformed record at debezium-json message `{\"before\":null,\"after\":{\"id\":1},\"op\":\"u\"}`: \
         an update event without a `before` image: the source table must log full rows \
         (PostgreSQL: REPLICA IDENTITY FULL)"
    );
    assert!(error(&*plain, br#"{"after":{"id":1},"op":"x"}"#)
        .ends_with("unknown `op` \"x\": expected \"c\", \"r\", \"u\" or \"d\""));
    assert!(error(&*plain, br#"{"after":{"id":1}}"#)
        .ends_with("no `op` field: is this a Debezium change event?"));
    assert!(error(&*plain, br#"{"after":{"id":"x"},"op":"c"}"#)
        .ends_with("`after`: field `id`: expected an integer, got \"x\""));
}

#[test]
fn canal_json_turns_types_into_row_kinds() {
    let (decoder, encoder) = codec("canal-json", &small(), &[]);
    let insert = decode(
        &*decoder,
        br#"{"data":[{"id":"1","name":"a"},{"id":"2","name":"b"}],"type":"INSERT","database":"shop","table":"users","isDdl":false}"#,
    );
    assert_eq!(
        kinds(&insert),
        vec![(RowKind::Insert, v(1, "a")), (RowKind::Insert, v(2, "b"))]
    );
    let update = decode(
        &*decoder,
        br#"{"data":[{"id":"1","name":"z"}],"old":[{"name":"a"}],"type":"UPDATE"}"#,
    );
    assert_eq!(
        kinds(&update),
        vec![
            (RowKind::UpdateBefore, v(1, "a")),
            (RowKind::UpdateAfter, v(1, "z"))
        ]
    );
    let delete = decode(
        &*decoder,
        br#"{"data":[{"id":2,"name":"b"}],"type":"DELETE"}"#,
    );
    assert_eq!(kinds(&delete), vec![(RowKind::Delete, v(2, "b"))]);
    assert!(decode(
        &*decoder,
        br#"{"data":null,"type":"CREATE","isDdl":true,"sql":"CREATE TABLE t"}"#
    )
    .is_empty());
    assert_eq!(
        encode(&*encoder, &update[0]),
        r#"{"data":[{"id":1,"name":"a"}],"type":"DELETE"}"#
    );
    assert_eq!(
        encode(&*encoder, &update[1]),
        r#"{"data":[{"id":1,"name":"z"}],"type":"INSERT"}"#
    );
    let (filtered, _) = codec("canal-json", &small(), &[("table.include", "orders")]);
    assert!(decode(
        &*filtered,
        br#"{"data":[{"id":"1"}],"type":"INSERT","table":"users"}"#
    )
    .is_empty());
}

#[test]
fn canal_json_reports_malformed_events() {
    let (decoder, _) = codec("canal-json", &small(), &[]);
    assert!(error(
        &*decoder,
        br#"{"data":[{"id":"1"}],"old":[],"type":"UPDATE"}"#
    )
    .ends_with("an UPDATE event has 1 `data` rows but 0 `old` rows"));
    assert!(
        error(&*decoder, br#"{"data":[{"id":"one"}],"type":"INSERT"}"#)
            .ends_with("`data[0]`: field `id`: expected an integer, got \"one\"")
    );
    assert!(error(&*decoder, br#"{"type":"INSERT"}"#)
        .ends_with("a `INSERT` event needs a `data` array"));
    assert!(error(&*decoder, br#"{"data":[]}"#)
        .ends_with("no `type` field: is this a Canal change event?"));
}

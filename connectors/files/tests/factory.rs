//! The `files` pipeline factory on the local disk: options are validated with every mistake
//! reported at once, and what a factory-built sink writes, a factory-built source reads back
//! equal, in every format.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use weir_connector_api::config::{ConfigError, ValidatedConfig};
use weir_connector_api::erased::{BoxedSink, BoxedSource};
use weir_connector_api::error::ConnectorError;
use weir_connector_api::factory::{find_connector, FactoryContext, SinkFactory, SourceFactory};
use weir_connector_api::format::find_format;
use weir_connector_api::row::{DataType, Field, Row, RowKind, Schema, Value};
use weir_connector_api::source::{Boundedness, Source};
use weir_connector_files::factory::{row_sink_options, row_source_options, FILES};
use weir_connector_files::fs::{file_name, parent};
use weir_connector_files::LocalFileSystem;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Every type, nullable where `nulls` says so.
fn schema(nulls: bool) -> Schema {
    Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::String, nulls),
        Field::new("amount", DataType::Float64, nulls),
        Field::new("paid", DataType::Boolean, nulls),
        Field::new("at", DataType::TimestampMillis, nulls),
        Field::new("blob", DataType::Bytes, nulls),
    ])
}

/// Rows with awkward strings (delimiters, quotes, line breaks, non-ASCII), and nulls in every
/// nullable field when `nulls`.
fn rows(n: i64, nulls: bool) -> Vec<Row> {
    (0..n)
        .map(|i| {
            let null = nulls && i % 7 == 3;
            let value = |v: Value| if null { Value::Null } else { v };
            Row::insert(vec![
                Value::Int64(i),
                value(Value::String(match i % 4 {
                    0 => format!("plain {i}"),
                    1 => format!("comma, \"quote\" and ; {i}"),
                    2 => format!("line\nbreak {i}"),
                    _ => format!("ünïcødé {i}"),
                })),
                value(Value::Float64(i as f64 * 0.25 - 100.125)),
                value(Value::Boolean(i % 2 == 0)),
                value(Value::TimestampMillis(1_704_067_200_000 + i * 10)),
                value(Value::Bytes(vec![0, 10, 13, (i % 251) as u8])),
            ])
        })
        .collect()
}

fn ctx<'a>(
    schema: &'a Schema,
    format: Option<(&'a str, &'a ValidatedConfig)>,
) -> FactoryContext<'a> {
    FactoryContext {
        name: "t",
        schema,
        format,
    }
}

/// A registered row format's configuration.
fn format_config(id: &str, pairs: &[(&str, &str)]) -> ValidatedConfig {
    weir_formats::link();
    find_format(id)
        .unwrap()
        .options()
        .validate(&map(pairs))
        .unwrap()
}

fn build_sink(
    options: &[(&str, &str)],
    schema: &Schema,
    format: Option<(&str, &ValidatedConfig)>,
) -> Result<BoxedSink<Row>, ConnectorError> {
    weir_formats::link();
    let config = row_sink_options().validate(&map(options)).unwrap();
    FILES.create_sink(&config, &ctx(schema, format))
}

fn build_source(
    options: &[(&str, &str)],
    schema: &Schema,
    format: Option<(&str, &ValidatedConfig)>,
) -> Result<BoxedSource<Row>, ConnectorError> {
    weir_formats::link();
    let config = row_source_options().validate(&map(options)).unwrap();
    FILES.create_source(&config, &ctx(schema, format))
}

fn config_errors(result: Result<impl Sized, ConnectorError>) -> Vec<ConfigError> {
    match result {
        Err(ConnectorError::Config(errors)) => errors.into_errors(),
        Err(other) => panic!("expected configuration errors, got {other}"),
        Ok(_) => panic!("expected configuration errors"),
    }
}

fn sorted(mut rows: Vec<Row>) -> Vec<Row> {
    rows.sort_by_key(|r| match r.values.first() {
        Some(Value::Int64(i)) => *i,
        _ => i64::MIN,
    });
    rows
}

/// Files under `base` per bucket directory (failing on hidden or in-progress leftovers).
async fn files_per_bucket(base: &str) -> BTreeMap<String, Vec<String>> {
    let fs: std::sync::Arc<dyn weir_connector_files::FileSystem> =
        std::sync::Arc::new(LocalFileSystem::new());
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in common::visible_files(&fs, base).await.unwrap() {
        out.entry(parent(&f).to_owned())
            .or_default()
            .push(file_name(&f).to_owned());
    }
    out
}

/// Writes `data` through a factory-built sink and reads it back through a factory-built source
/// with the same format; returns the directory (alive) and the files per bucket.
async fn roundtrip(
    name: &str,
    sink_options: &[(&str, &str)],
    schema: &Schema,
    format: Option<(&str, &ValidatedConfig)>,
    data: &[Row],
) -> (tempfile::TempDir, BTreeMap<String, Vec<String>>) {
    let dir = tempfile::tempdir().unwrap();
    let base = format!("{}/{name}", dir.path().display());
    let mut options = vec![("path", base.as_str()), ("bucket.assigner", "base-path")];
    options.extend_from_slice(sink_options);
    let sink = build_sink(&options, schema, format).unwrap();
    common::write_all(data.to_vec(), sink, 2, Duration::from_millis(40), None).await;
    let files = files_per_bucket(&base).await;
    assert!(!files.is_empty(), "{name}: no files written");

    // The source takes the format options; the sink-only ones are left out.
    let read_options: Vec<(&str, &str)> = options
        .iter()
        .copied()
        .filter(|(k, _)| {
            !["compaction.", "bucket.", "part.", "sink."]
                .iter()
                .any(|p| k.starts_with(p))
                && *k != "codec"
        })
        .collect();
    let source = build_source(&read_options, schema, format).unwrap();
    assert_eq!(source.boundedness(), Boundedness::Bounded);
    let read = common::read_all(source, 2).await;
    let read = sorted(read);
    assert_eq!(read.len(), data.len(), "{name}: every row exactly once");
    for (a, e) in read.iter().zip(data) {
        assert_eq!(a, e, "{name}");
    }
    (dir, files)
}

#[test]
fn the_factory_is_registered_as_source_and_sink() {
    let files = find_connector("files").expect("registered");
    let info = files.info();
    assert_eq!(info.crate_name, "weir-connector-files");
    assert_eq!(info.api_line(), "1.0");
    assert!(files.as_source().is_some() && files.as_sink().is_some());
    let sink_keys: Vec<String> = files
        .as_sink()
        .unwrap()
        .sink_options()
        .keys()
        .map(str::to_owned)
        .collect();
    for key in [
        "path",
        "format",
        "codec",
        "sink.rolling-policy.file-size",
        "sink.rolling-policy.rollover-interval",
        "bucket.assigner",
        "compaction.enabled",
        "compaction.file-size",
    ] {
        assert!(sink_keys.iter().any(|k| k == key), "sink option {key}");
    }
    let source_keys: Vec<String> = files
        .as_source()
        .unwrap()
        .source_options()
        .keys()
        .map(str::to_owned)
        .collect();
    for key in [
        "path",
        "format",
        "source.monitor-interval",
        "source.include",
    ] {
        assert!(source_keys.iter().any(|k| k == key), "source option {key}");
    }
}

#[test]
fn good_options_build_sinks_and_sources() {
    let s = schema(true);
    build_sink(
        &[
            ("path", "/tmp/weir-factory-never-written"),
            ("format", "parquet"),
            ("codec", "zstd"),
            ("compaction.enabled", "true"),
            ("compaction.file-size", "64mb"),
            ("sink.rolling-policy.file-size", "1mb"),
            ("sink.rolling-policy.rollover-interval", "10s"),
            ("bucket.assigner", "date-time"),
            ("bucket.date-time-format", "%Y-%m-%d"),
            ("bucket.time-field", "at"),
        ],
        &s,
        None,
    )
    .unwrap();
    for format in ["orc", "csv", "json"] {
        build_sink(&[("path", "file:///tmp/x"), ("format", format)], &s, None).unwrap();
    }
    let text = Schema::new(vec![Field::new("line", DataType::String, false)]);
    build_sink(&[("path", "relative/out"), ("format", "text")], &text, None).unwrap();
    let json = format_config("debezium-json", &[]);
    build_sink(&[("path", "/tmp/x")], &s, Some(("debezium-json", &json))).unwrap();

    let bounded = build_source(
        &[("path", "/tmp/a,/tmp/b"), ("format", "parquet")],
        &s,
        None,
    );
    assert_eq!(bounded.unwrap().boundedness(), Boundedness::Bounded);
    let continuous = build_source(
        &[
            ("path", "/tmp/a"),
            ("format", "csv"),
            ("source.monitor-interval", "10s"),
            ("source.include", "**/*.csv"),
        ],
        &s,
        None,
    );
    assert_eq!(
        continuous.unwrap().boundedness(),
        Boundedness::ContinuousUnbounded
    );
}

#[test]
fn bad_options_are_reported_at_once() {
    // The option set: unknown keys with a suggestion, bad values, a missing path, and the
    // compaction trigger, in one report.
    let errors = row_sink_options()
        .validate(&map(&[
            ("format", "xml"),
            ("codec", "brotli"),
            ("compaction.enabled", "true"),
            ("part.prefx", "x"),
            ("sink.rolling-policy.file-sise", "1mb"),
            ("source.monitor-interval", "10s"),
        ]))
        .unwrap_err();
    let text = errors.to_string();
    assert!(
        text.starts_with("7 problems in file sink options:"),
        "{text}"
    );
    for needle in [
        "unknown option `part.prefx`: did you mean `part.prefix`?",
        "unknown option `sink.rolling-policy.file-sise`: did you mean \
         `sink.rolling-policy.file-size`?",
        "unknown option `source.monitor-interval`",
        "invalid value `xml` for option `format`: expected one of `json`, `csv`, `parquet`, \
         `orc`, `text`",
        "invalid value `brotli` for option `codec`",
        "missing required option `path`",
        "compaction needs a trigger",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    let errors = row_source_options()
        .validate(&map(&[
            ("path", "/in"),
            ("format", "parquet"),
            ("source.monitor-intervall", "10s"),
            ("source.batch-size", "0"),
        ]))
        .unwrap_err()
        .to_string();
    assert!(
        errors.contains("did you mean `source.monitor-interval`?")
            && errors.contains("`source.batch-size`"),
        "{errors}"
    );

    // The factory: what only the schema and the pipeline show, also all at once.
    let two_fields = schema(true);
    let errors = config_errors(build_sink(
        &[("path", "s3://bucket/orders"), ("format", "text")],
        &two_fields,
        None,
    ));
    assert_eq!(errors.len(), 2, "{errors:?}");
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(
        text.iter().any(|e| e.contains("`path`")
            && e.contains("weir-connector-s3")
            && e.contains("s3://bucket/orders")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|e| e.contains("exactly one string or bytes field")),
        "{text:?}"
    );

    let json = format_config("json", &[]);
    let errors = config_errors(build_sink(
        &[
            ("path", "/tmp/x"),
            ("format", "parquet"),
            ("compaction.enabled", "true"),
            ("compaction.every-checkpoints", "2"),
            ("compaction.compactor", "concat"),
        ],
        &two_fields,
        Some(("json", &json)),
    ));
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(
        text.iter()
            .any(|e| e.contains("the file format is set twice")),
        "{text:?}"
    );
    let errors = config_errors(build_sink(
        &[
            ("path", "/tmp/x"),
            ("format", "orc"),
            ("compaction.enabled", "true"),
            ("compaction.every-checkpoints", "2"),
            ("compaction.compactor", "concat"),
        ],
        &two_fields,
        None,
    ));
    assert!(
        errors[0].to_string().contains("cannot be concatenated"),
        "{errors:?}"
    );

    let errors = config_errors(build_sink(
        &[
            ("path", "/tmp/x"),
            ("format", "json"),
            ("bucket.time-source", "event-time"),
        ],
        &two_fields,
        None,
    ));
    assert!(
        errors[0]
            .to_string()
            .contains("name the row's time field with `bucket.time-field`"),
        "{errors:?}"
    );
    let errors = config_errors(build_sink(
        &[
            ("path", "/tmp/x"),
            ("format", "json"),
            ("bucket.time-field", "name"),
        ],
        &two_fields,
        None,
    ));
    assert_eq!(
        errors[0].to_string(),
        "invalid value `name` for option `bucket.time-field`: not a timestamp or int64 field of \
         the schema; those are `id`, `at`"
    );

    let errors = config_errors(build_source(
        &[("path", "hdfs://nn/in, ./in"), ("source.include", "[")],
        &two_fields,
        None,
    ));
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(text.len(), 3, "{text:?}");
    assert!(
        text.iter()
            .any(|e| e.contains("no filesystem for `hdfs://` is linked")),
        "{text:?}"
    );
    assert!(
        text.iter().any(|e| e.contains("not a valid glob pattern")),
        "{text:?}"
    );
    assert!(
        text.iter().any(|e| e.contains("no file format")),
        "{text:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_rows_roundtrip_and_compact() {
    let s = schema(true);
    let data = rows(5_000, true);
    let (_dir, files) = roundtrip(
        "parquet",
        &[
            ("format", "parquet"),
            ("codec", "zstd"),
            ("part.suffix", ".parquet"),
            ("compaction.enabled", "true"),
            ("compaction.file-size", "64mb"),
        ],
        &s,
        None,
        &data,
    )
    .await;
    // Everything is under the threshold: one compacted file in the one bucket.
    let names: Vec<&String> = files.values().flatten().collect();
    assert_eq!(names.len(), 1, "{files:?}");
    assert!(
        names[0].starts_with("compacted-part-") && names[0].ends_with(".parquet"),
        "{names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orc_rows_roundtrip() {
    let s = schema(true);
    roundtrip(
        "orc",
        &[("format", "orc"), ("codec", "snappy")],
        &s,
        None,
        &rows(3_000, true),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_rows_roundtrip_with_headers_quotes_and_line_breaks() {
    // An empty CSV cell of a string column reads as an empty string: no nulls here.
    let s = schema(false);
    let (_dir, files) = roundtrip(
        "csv",
        &[
            ("format", "csv"),
            ("csv.delimiter", ";"),
            ("sink.rolling-policy.file-size", "16kb"),
            ("compaction.enabled", "true"),
            ("compaction.every-checkpoints", "3"),
        ],
        &s,
        None,
        &rows(3_000, false),
    )
    .await;
    // Every file starts with the header line, once.
    for (bucket, names) in &files {
        for name in names {
            let text = std::fs::read_to_string(format!("{bucket}/{name}")).unwrap();
            assert!(
                text.starts_with("id;name;amount;paid;at;blob\n"),
                "{name}: {}",
                &text[..40.min(text.len())]
            );
            assert_eq!(text.matches("id;name;amount").count(), 1, "{name}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_rows_roundtrip() {
    let s = schema(true);
    roundtrip("json", &[("format", "json")], &s, None, &rows(3_000, true)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_rows_roundtrip() {
    let s = Schema::new(vec![Field::new("line", DataType::String, false)]);
    let data: Vec<Row> = (0..2_000)
        .map(|i| Row::insert(vec![Value::String(format!("{i:05} line, with ünïcødé"))]))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let base = format!("{}/text", dir.path().display());
    let sink = build_sink(&[("path", &base), ("format", "text")], &s, None).unwrap();
    common::write_all(data.clone(), sink, 2, Duration::from_millis(40), None).await;
    let source = build_source(&[("path", &base), ("format", "text")], &s, None).unwrap();
    let mut read = common::read_all(source, 1).await;
    read.sort_by(|a, b| format!("{:?}", a.values).cmp(&format!("{:?}", b.values)));
    assert_eq!(read, data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_row_formats_roundtrip_one_message_per_line() {
    let s = schema(true);
    let debezium = format_config("debezium-json", &[]);
    roundtrip(
        "debezium",
        &[],
        &s,
        Some(("debezium-json", &debezium)),
        &rows(2_000, true),
    )
    .await;
    // CSV with its own options: records may span lines inside quotes.
    let csv = format_config(
        "csv",
        &[("field-delimiter", "\\t"), ("null-literal", "<null>")],
    );
    roundtrip("csv-tab", &[], &s, Some(("csv", &csv)), &rows(2_000, true)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changelog_messages_of_several_rows_are_read() {
    // A Debezium update decodes into an update-before and an update-after row.
    let s = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::String, true),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 0..500 {
        writeln!(
            text,
            "{{\"before\":{{\"id\":{i},\"name\":\"a\"}},\"after\":{{\"id\":{i},\"name\":\"b\"}},\"op\":\"u\"}}"
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("changes.json"), text).unwrap();
    let debezium = format_config("debezium-json", &[]);
    let source = build_source(
        &[("path", dir.path().to_str().unwrap())],
        &s,
        Some(("debezium-json", &debezium)),
    )
    .unwrap();
    let read = common::read_all(source, 1).await;
    assert_eq!(read.len(), 1_000);
    for pair in read.chunks(2) {
        assert_eq!(pair[0].kind, RowKind::UpdateBefore);
        assert_eq!(pair[1].kind, RowKind::UpdateAfter);
        assert_eq!(pair[0].values[0], pair[1].values[0]);
        assert_eq!(pair[1].values[1], Value::String("b".into()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_files_refuse_changelog_rows() {
    let s = Schema::new(vec![Field::new("id", DataType::Int64, false)]);
    let dir = tempfile::tempdir().unwrap();
    let base = format!("{}/pq", dir.path().display());
    let sink = build_sink(&[("path", &base), ("format", "parquet")], &s, None).unwrap();
    let data = [Row::with_kind(RowKind::Delete, vec![Value::Int64(1)])];
    let feeder = weir_connector_datagen::DataGeneratorSource::new(
        move |i| data.get(i as usize).cloned(),
        Some(1),
        weir_connector_datagen::RateLimiterStrategy::no_op(),
    );
    let env = weir_runtime::StreamEnvironment::new(weir_runtime::JobConfig::new("refuse"));
    env.from_source(
        feeder,
        weir_connector_api::watermark::WatermarkStrategy::no_watermarks(),
        "feeder",
    )
    .flat_map(|r: Option<Row>| r)
    .sink_to(sink);
    let result = env.build().unwrap().execute().await;
    assert!(!result.is_finished(), "a delete row cannot go into Parquet");
    let status = format!("{:?}", result.status);
    assert!(status.contains("files hold inserts only"), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn date_time_buckets_take_the_time_of_a_row_field() {
    let s = schema(true);
    // `at` spans 10 ms per row from 2024-01-01T00:00Z; every 7th row's `at` is null.
    let data: Vec<Row> = rows(3_000, true)
        .into_iter()
        .map(|mut r| {
            if let (Value::Int64(i), Some(at)) = (r.values[0].clone(), r.values.get_mut(4)) {
                if !matches!(at, Value::Null) {
                    *at = Value::TimestampMillis(1_704_067_200_000 + (i % 3) * 86_400_000);
                }
            }
            r
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let base = format!("{}/days", dir.path().display());
    let sink = build_sink(
        &[
            ("path", &base),
            ("format", "json"),
            ("bucket.time-field", "at"),
            ("bucket.date-time-format", "%Y-%m-%d"),
        ],
        &s,
        None,
    )
    .unwrap();
    common::write_all(data, sink, 2, Duration::from_millis(40), None).await;
    let buckets: Vec<String> = files_per_bucket(&base)
        .await
        .into_keys()
        .map(|b| file_name(&b).to_owned())
        .collect();
    // Three days of event time, and processing time (today) for the rows without one.
    assert_eq!(buckets[..3], ["2024-01-01", "2024-01-02", "2024-01-03"]);
    let today = &buckets[3..];
    assert!(
        (1..=2).contains(&today.len()) && today.iter().all(|b| !b.starts_with("2024-")),
        "{buckets:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_file_without_the_expected_header_is_an_error_not_a_lost_row() {
    let s = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::String, false),
    ]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("in")).unwrap();
    std::fs::write(dir.path().join("in/no-header.csv"), "1,a\n2,b\n").unwrap();
    let base = format!("{}/in", dir.path().display());
    let source = build_source(&[("path", &base), ("format", "csv")], &s, None).unwrap();
    let env = weir_runtime::StreamEnvironment::new(weir_runtime::JobConfig::new("header"));
    env.from_source(
        source,
        weir_connector_api::watermark::WatermarkStrategy::no_watermarks(),
        "files",
    )
    .sink_to(common::Collect::<Row>::default());
    let result = env.build().unwrap().execute().await;
    let failure = format!("{:?} {:?}", result.status, result.failures);
    assert!(
        !result.is_finished()
            && failure.contains("`1,a`")
            && failure.contains("csv.header = false"),
        "{failure}"
    );

    let source = build_source(
        &[("path", &base), ("format", "csv"), ("csv.header", "false")],
        &s,
        None,
    )
    .unwrap();
    let mut read = common::read_all(source, 1).await;
    read.sort_by(|a, b| format!("{:?}", a.values).cmp(&format!("{:?}", b.values)));
    assert_eq!(
        read,
        vec![
            Row::insert(vec![Value::Int64(1), Value::String("a".into())]),
            Row::insert(vec![Value::Int64(2), Value::String("b".into())]),
        ]
    );
}

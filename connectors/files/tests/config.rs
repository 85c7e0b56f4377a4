//! Options: validation, constructors, and the README tables generated from the option sets of
//! the pipeline factory.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;

use weir_connector_api::source::{Boundedness, Source};
use weir_connector_files::config::{FileFormatKind, FileSinkOptions, FileSourceOptions};
use weir_connector_files::factory::{row_sink_options, row_source_options};
use weir_connector_files::{FileSink, FileSource, LocalFileSystem};

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Row {
    id: u64,
}

#[test]
fn sink_options_are_read_and_mistakes_reported_at_once() {
    let o = FileSinkOptions::from_map(&map(&[
        ("path", "/out"),
        ("format", "csv"),
        ("csv.delimiter", ";"),
        ("compaction.enabled", "true"),
        ("compaction.every-checkpoints", "3"),
        ("sink.rolling-policy.file-size", "1mb"),
        ("bucket.assigner", "base-path"),
    ]))
    .unwrap();
    assert_eq!(o.format, FileFormatKind::Csv);
    assert_eq!(o.format_options.csv_delimiter, b';');
    assert_eq!(o.rolling.part_size, Some(1 << 20));
    assert_eq!(o.compaction.unwrap().strategy.every_n_checkpoints, Some(3));
    FileSink::<Row>::from_config(
        Arc::new(LocalFileSystem::new()),
        &map(&[("path", "/out"), ("format", "parquet"), ("codec", "zstd")]),
    )
    .unwrap();
    let errors = FileSinkOptions::from_map(&map(&[
        ("format", "xml"),
        ("codec", "brotli"),
        ("compaction.enabled", "true"),
        ("part.prefx", "x"),
    ]))
    .unwrap_err();
    let text = errors.to_string();
    for needle in [
        "path",
        "format",
        "codec",
        "part.prefx",
        "part.prefix",
        "compaction",
    ] {
        assert!(text.contains(needle), "{needle} missing from: {text}");
    }
}

#[test]
fn source_options_build_bounded_and_continuous_sources() {
    let fs = Arc::new(LocalFileSystem::new());
    let bounded =
        FileSource::<Row>::from_config(fs.clone(), &map(&[("path", "/in"), ("format", "json")]))
            .unwrap();
    assert_eq!(bounded.boundedness(), Boundedness::Bounded);
    let o = FileSourceOptions::from_map(&map(&[
        ("path", "/a, /b"),
        ("format", "parquet"),
        ("source.monitor-interval", "5s"),
        ("source.include", "**/*.parquet"),
    ]))
    .unwrap();
    assert_eq!(o.paths, vec!["/a".to_owned(), "/b".to_owned()]);
    let continuous = FileSource::<Row>::from_options(fs.clone(), &o).unwrap();
    assert_eq!(continuous.boundedness(), Boundedness::ContinuousUnbounded);
    let bad = FileSource::<Row>::from_config(
        fs,
        &map(&[("path", "/in"), ("format", "json"), ("source.include", "[")]),
    );
    assert!(bad.is_err(), "an invalid glob is an error");
}

/// Replaces (with `WEIR_REGENERATE_README=1`) or checks the table between two markers.
/// The message of the one error `pairs` (with a path and a format) gets.
fn refused(pairs: &[(&str, &str)]) -> String {
    let mut all = vec![("path", "/out"), ("format", "csv")];
    all.extend_from_slice(pairs);
    let errors = FileSinkOptions::from_map(&map(&all)).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors}");
    errors.iter().next().unwrap().to_string()
}

#[test]
fn options_that_would_leave_the_base_path_or_break_csv_are_refused() {
    assert_eq!(
        refused(&[("bucket.date-time-format", "../../escape-%Y")]),
        "invalid value `../../escape-%Y` for option `bucket.date-time-format`: \
         `../../escape-%Y` makes bucket directories like `../../escape-1970`, which have a `.` \
         or `..` part: buckets must stay inside the sink's path; use `/`-separated names \
         without `.`, `..` or empty parts"
    );
    for format in ["%Y/../..", "/abs/%Y", "%Y//%H", "..%.f"] {
        let message = refused(&[("bucket.date-time-format", format)]);
        assert!(message.contains("buckets must stay inside"), "{message}");
    }
    assert_eq!(
        refused(&[("part.suffix", "/../../x")]),
        "invalid value `/../../x` for option `part.suffix`: must have no `/`, `\\` or control \
         characters (part files stay in their bucket directory)"
    );
    for suffix in ["a\\..\\b", "x\0"] {
        let message = refused(&[("part.suffix", suffix)]);
        assert!(message.contains("must have no `/`"), "{message}");
    }
    for prefix in ["../x", "..", "a\\b", "a\nb", ""] {
        let message = refused(&[("part.prefix", prefix)]);
        assert!(
            message.contains("must be non-empty, not start with `.`"),
            "{message}"
        );
    }
    assert_eq!(
        refused(&[("csv.delimiter", "\n")]),
        "invalid value `\n` for option `csv.delimiter`: must not be a line break: records are \
         separated by line breaks, so no reader could tell cells from records"
    );
    for delimiter in ["\r", "\"", "\u{1}", "ab", "é"] {
        refused(&[("csv.delimiter", delimiter)]);
    }
    // Ordinary values still work.
    let o = FileSinkOptions::from_map(&map(&[
        ("path", "/out"),
        ("format", "csv"),
        ("csv.delimiter", "\t"),
        ("part.prefix", "orders"),
        ("part.suffix", ".csv"),
        ("bucket.date-time-format", "dt=%Y-%m-%d/%H"),
    ]))
    .unwrap();
    assert_eq!(o.format_options.csv_delimiter, b'\t');
}

fn check_table(readme: &str, name: &str, table: &str) -> Option<String> {
    let start = format!("<!-- {name}:start -->\n");
    let end = format!("<!-- {name}:end -->");
    let from = readme.find(&start).expect("start marker") + start.len();
    let to = readme.find(&end).expect("end marker");
    if &readme[from..to] == table {
        return None;
    }
    Some(format!("{}{table}{}", &readme[..from], &readme[to..]))
}

#[test]
fn readme_contains_exactly_the_generated_options_tables() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let mut readme = std::fs::read_to_string(path).unwrap();
    let mut stale = Vec::new();
    // The tables of the pipeline factory: what `weir connectors files` prints.
    for (name, table) in [
        ("sink-options", row_sink_options().to_markdown()),
        ("source-options", row_source_options().to_markdown()),
    ] {
        if let Some(updated) = check_table(&readme, name, &table) {
            stale.push(name);
            readme = updated;
        }
    }
    if stale.is_empty() {
        return;
    }
    if std::env::var_os("WEIR_REGENERATE_README").is_some() {
        std::fs::write(path, readme).unwrap();
    } else {
        panic!("README tables {stale:?} are out of date: run with WEIR_REGENERATE_README=1");
    }
}

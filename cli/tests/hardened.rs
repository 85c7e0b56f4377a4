//! Hostile pipeline files through the real `weir` binary, `weir validate` and `weir run` alike:
//! filters nested deeper than the limit are refused (they overflowed the stack, exit 134), a
//! 50,000-term `or` runs, options that would write outside the sink's path, unreadable CSV or
//! wrapped datagen ids are refused before anything runs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::fs;
use std::path::Path;

use common::{files_under, run, weir};

/// Runs `weir <command> p.toml` in `dir` with `text` as `p.toml`: (exit code, stdout, stderr).
fn weir_on(dir: &Path, command: &str, text: &str) -> (i32, String, String) {
    fs::write(dir.join("p.toml"), text).unwrap();
    run(weir().args([command, "p.toml"]).current_dir(dir))
}

/// Asserts that both `weir validate` and `weir run` refuse `text` with an error containing
/// every one of `needles`, and that `weir run` ran nothing.
fn refused_by_validate_and_run(text: &str, needles: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, err) = weir_on(tmp.path(), "validate", text);
    assert_eq!(code, 2, "validate's exit code; stderr:\n{err}");
    assert_eq!(out, "");
    for needle in needles {
        assert!(err.contains(needle), "`{needle}` missing from:\n{err}");
    }
    let (code, out, err) = weir_on(tmp.path(), "run", text);
    assert_eq!(code, 2, "run's exit code; stderr:\n{err}");
    assert_eq!(out, "");
    for needle in needles {
        assert!(err.contains(needle), "`{needle}` missing from:\n{err}");
    }
    assert!(
        err.contains("is not a valid pipeline") && err.ends_with("nothing was run\n"),
        "{err}"
    );
    assert_eq!(
        files_under(tmp.path()),
        [Path::new("p.toml")],
        "nothing but the pipeline file"
    );
}

/// A pipeline of ten rows `(id, vip)` through a transform with `filter` into `print`.
fn filtered(filter: &str) -> String {
    format!(
        r#"
[[sources]]
name = "in"
connector = "datagen"
schema = [{{ name = "id", type = "int64", nullable = false }}, {{ name = "vip", type = "boolean" }}]
options = {{ number-of-rows = 10, fields.id.kind = "sequence" }}

[[transforms]]
name = "kept"
input = "in"
filter = "{filter}"

[[sinks]]
name = "out"
input = "kept"
connector = "print"
"#
    )
}

const TOO_DEEP: &str = "the expression nests more than 100 levels of parentheses and `not`";

#[test]
fn a_filter_nested_10000_parentheses_deep_is_refused_not_a_stack_overflow() {
    let deep = format!("{}id = 1{}", "(".repeat(10_000), ")".repeat(10_000));
    // Line 11 holds the filter; column 11 is its first character, the limit is hit at the 101st.
    refused_by_validate_and_run(
        &filtered(&deep),
        &[&format!(
            "p.toml:11:111: error: `filter` of transform `kept`: {TOO_DEEP}"
        )],
    );
}

#[test]
fn a_filter_of_100000_nots_is_refused_not_a_stack_overflow() {
    let nots = format!("{}vip", "not ".repeat(100_000));
    refused_by_validate_and_run(
        &filtered(&nots),
        &[&format!(
            "p.toml:11:411: error: `filter` of transform `kept`: {TOO_DEEP}"
        )],
    );
}

#[test]
fn a_50000_term_or_validates_and_runs() {
    // Ids 0..=9 come in; the chain names 7 among 49,999 ids that never come.
    let mut terms: Vec<String> = (0..49_999).map(|i| format!("id = {}", 1_000 + i)).collect();
    terms.insert(25_000, "id = 7".to_owned());
    let text = filtered(&terms.join(" or "));
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, err) = weir_on(tmp.path(), "validate", &text);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("valid pipeline `p`: 1 source, 1 transform, 1 sink"),
        "{out}"
    );
    let (code, out, err) = weir_on(tmp.path(), "run", &text);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<&str> = out.lines().collect();
    assert_eq!(rows.len(), 1, "{out}");
    assert!(rows[0].contains("+I[7, "), "{out}");
}

/// A bounded job writing JSON part files under `work/out`, with extra sink options.
fn files_sink(extra: &str) -> String {
    let options = if extra.is_empty() {
        String::new()
    } else {
        format!(", {extra}")
    };
    format!(
        r#"
[[sources]]
name = "in"
connector = "datagen"
schema = [{{ name = "id", type = "int64", nullable = false }}]
options = {{ number-of-rows = 5, fields.id.kind = "sequence" }}

[[sinks]]
name = "out"
input = "in"
connector = "files"
options = {{ path = "work/out", format = "json"{options} }}
"#
    )
}

#[test]
fn a_bucket_format_that_climbs_out_of_the_sink_path_is_refused() {
    refused_by_validate_and_run(
        &files_sink(r#"bucket.date-time-format = "../../escape-%Y""#),
        &[
            "error: sink `out`: invalid value `../../escape-%Y` for option \
             `bucket.date-time-format`: `../../escape-%Y` makes bucket directories like \
             `../../escape-1970`, which have a `.` or `..` part: buckets must stay inside the \
             sink's path",
        ],
    );
    refused_by_validate_and_run(
        &files_sink(r#"bucket.date-time-format = "/tmp/%Y""#),
        &["which start with `/`"],
    );
}

#[test]
fn part_names_that_name_other_directories_are_refused() {
    refused_by_validate_and_run(
        &files_sink(r#"part.suffix = "/../../../x""#),
        &["invalid value `/../../../x` for option `part.suffix`: must have no `/`"],
    );
    refused_by_validate_and_run(
        &files_sink(r#"part.prefix = "a\\..\\b""#),
        &["for option `part.prefix`: must be non-empty, not start with `.`, and have no `/`, `\\`"],
    );
}

#[test]
fn the_sink_writes_inside_its_path_with_sub_directory_buckets() {
    // The refusals above leave the ordinary use alone: buckets as sub-directories, a suffix.
    let text = files_sink(r#"bucket.date-time-format = "year=%Y/day=%j", part.suffix = ".json""#);
    let tmp = tempfile::tempdir().unwrap();
    let (code, _, err) = weir_on(tmp.path(), "run", &text);
    assert_eq!(code, 0, "{err}");
    let files = files_under(tmp.path());
    let parts: Vec<_> = files.iter().filter(|f| *f != Path::new("p.toml")).collect();
    assert!(!parts.is_empty(), "{files:?}");
    for part in parts {
        let text = part.to_str().unwrap();
        assert!(text.starts_with("work/out/year="), "{text}");
        assert!(text.contains("/day="), "{text}");
        assert_eq!(part.extension(), Some("json".as_ref()), "{text}");
    }
}

#[test]
fn a_line_break_as_csv_delimiter_is_refused() {
    refused_by_validate_and_run(
        &files_sink(r#"csv.delimiter = "\n""#).replace(r#"format = "json""#, r#"format = "csv""#),
        &["for option `csv.delimiter`: must not be a line break"],
    );
    // The same through the pipeline's own `csv` format.
    let text = files_sink("").replace(r#", format = "json""#, "").replace(
        "connector = \"files\"\n",
        "connector = \"files\"\nformat = { type = \"csv\", field-delimiter = \"\\r\" }\n",
    );
    refused_by_validate_and_run(
        &text,
        &["for option `field-delimiter`: must not be a line break"],
    );
}

#[test]
fn a_datagen_sequence_that_would_wrap_to_negative_ids_is_refused() {
    let text = files_sink("").replace(
        "fields.id.kind = \"sequence\"",
        "fields.id.kind = \"sequence\", fields.id.start = 9223372036854775805",
    );
    refused_by_validate_and_run(
        &text,
        &[
            "error: source `in`: conflicting options `fields.id.start`, `number-of-rows`: the \
             sequence of `id` passes the largest int64 (9223372036854775807) after 3 values, but \
             the source emits 5 rows (the last would be 9223372036854775809)",
        ],
    );
}

#[test]
fn a_filter_error_inside_an_escaped_string_points_at_the_string() {
    // Offsets in the parsed filter do not match the file when escapes shift them: the error
    // points at the opening quote rather than at an unrelated column (or past the line).
    let tmp = tempfile::tempdir().unwrap();
    let text = filtered(r"id = 1 and \u0076ip and idd = 2");
    let (code, _, err) = weir_on(tmp.path(), "validate", &text);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with("p.toml:11:10: error: `filter` of transform `kept`: unknown field `idd`"),
        "{err}"
    );
    // Spelled plainly, the error points at the field.
    let (_, _, err) = weir_on(
        tmp.path(),
        "validate",
        &filtered("id = 1 and vip and idd = 2"),
    );
    assert!(err.starts_with("p.toml:11:30: error: "), "{err}");
}

/// An S3 store that accepts connections and never answers: with `WEIR_S3_REQUEST_TIMEOUT` the
/// job's attempt fails with a timeout and `weir run` exits with an error, instead of waiting
/// forever; a zero timeout is refused with the variable's name.
#[test]
fn an_s3_store_that_never_answers_fails_the_job_after_the_request_timeout() {
    let addr = weir_testkit::servers::silent_listener().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let text = r#"
[pipeline]
name = "silent-store"

[restart]
strategy = "none"

[[sources]]
name = "orders"
connector = "datagen"
schema = [ { name = "id", type = "int64", nullable = false } ]
options = { number-of-rows = 100 }

[[sinks]]
name = "out"
input = "orders"
connector = "files"
options = { path = "s3://bucket/out", format = "csv" }
"#;
    fs::write(tmp.path().join("p.toml"), text).unwrap();
    let with_timeout = |timeout: &str| {
        let mut cmd = weir();
        cmd.args(["run", "p.toml", "--progress", "quiet"])
            .current_dir(tmp.path())
            .env("AWS_ENDPOINT_URL", format!("http://{addr}"))
            .env("AWS_ACCESS_KEY_ID", "a")
            .env("AWS_SECRET_ACCESS_KEY", "b")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("WEIR_S3_REQUEST_TIMEOUT", timeout);
        let started = std::time::Instant::now();
        let (code, _, err) = run(&mut cmd);
        (code, err, started.elapsed())
    };
    let (code, err, took) = with_timeout("300ms");
    assert_ne!(code, 0, "the job cannot succeed:\n{err}");
    assert!(
        err.to_lowercase().contains("timeout") || err.contains("timed out"),
        "{err}"
    );
    assert!(
        took < std::time::Duration::from_mins(1),
        "took {took:?}:\n{err}"
    );
    let (code, err, _) = with_timeout("0s");
    assert_ne!(code, 0);
    assert!(err.contains("s3.request-timeout"), "{err}");
}

//! `weir validate` on good files and on many kinds of bad ones: every mistake at once, with
//! file:line:column and the exact message, exit code 2, never a panic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::fs;

use common::{repo, run, weir};

/// Validates `text` as `p.toml` in a temporary directory: (exit code, stdout, stderr).
fn validate(text: &str) -> (i32, String, String) {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("p.toml"), text).unwrap();
    run(weir().args(["validate", "p.toml"]).current_dir(tmp.path()))
}

/// Asserts that `text` is invalid with exactly these messages (and the count line).
fn invalid(text: &str, expected: &[&str]) {
    let (code, out, err) = validate(text);
    assert_eq!(code, 2, "exit code; stderr:\n{err}");
    assert_eq!(out, "");
    let n = expected.len();
    let mut lines: Vec<String> = expected.iter().map(|s| (*s).to_owned()).collect();
    lines.push(format!(
        "p.toml: {n} error{}",
        if n == 1 { "" } else { "s" }
    ));
    assert_eq!(err, lines.join("\n") + "\n");
}

const SOURCE: &str = r#"
[[sources]]
name = "orders"
connector = "datagen"
schema = [
  { name = "id", type = "int64", nullable = false },
  { name = "status", type = "string" },
  { name = "at", type = "timestamp" },
]
options = { number-of-rows = 10 }
"#;

const SINK: &str = r#"
[[sinks]]
name = "out"
input = "orders"
connector = "print"
"#;

#[test]
fn a_good_file_is_valid() {
    let (code, out, err) = validate(&format!("{SOURCE}{SINK}"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(err, "");
    assert_eq!(
        out,
        "p.toml: valid pipeline `p`: 1 source, 0 transforms, 1 sink, no checkpointing\n"
    );
}

#[test]
fn the_examples_are_valid_or_name_only_connectors_not_built_in() {
    let examples = repo().join("examples");
    let mut checked = 0;
    for entry in fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        checked += 1;
        let (code, out, err) = run(weir().arg("validate").arg(&path));
        if code == 0 {
            assert!(out.contains("valid pipeline"), "{out}");
            continue;
        }
        // Examples for connectors whose factories are not linked into weir yet (Kafka) may
        // only fail for that reason.
        for line in err.lines().filter(|l| l.contains("error:")) {
            assert!(
                line.contains("unknown connector `kafka`"),
                "{}: {line}",
                path.display()
            );
        }
    }
    assert!(checked >= 3, "the examples are there");
    for (file, name) in [
        ("quickstart.toml", "quickstart"),
        ("quickstart-blackhole.toml", "quickstart-blackhole"),
    ] {
        let (code, out, err) = run(weir().arg("validate").arg(examples.join(file)));
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            out,
            format!(
                "{}: valid pipeline `{name}`: 1 source, 1 transform, 1 sink, exactly-once \
                 checkpoints every 1 s\n",
                examples.join(file).display()
            )
        );
    }
}

#[test]
fn bad_01_toml_syntax_errors_have_a_position() {
    invalid(
        "[pipeline\nname = 1\n",
        &["p.toml:1:10: error: not valid TOML: invalid table header expected `.`, `]`"],
    );
}

#[test]
fn bad_02_unknown_keys_get_a_did_you_mean() {
    invalid(
        &format!("[pipeline]\nparalelism = 2\n\n[checkpoint]\ninterval = \"1s\"\n{SOURCE}{SINK}"),
        &[
            "p.toml:2:1: error: unknown key `paralelism` in [pipeline]: did you mean `parallelism`?",
            "p.toml:4:2: error: unknown key `checkpoint` in the file: did you mean `checkpointing`?",
        ],
    );
}

#[test]
fn bad_03_type_and_range_errors() {
    invalid(
        &format!(
            "[pipeline]\nparallelism = \"two\"\n\n[checkpointing]\ninterval = 1000\n\
             max-concurrent = 0\ntimeout = \"soon\"\n{SOURCE}{SINK}"
        ),
        &[
            "p.toml:2:15: error: `parallelism` in [pipeline] must be an integer, not a string",
            "p.toml:5:12: error: `interval` in [checkpointing] must be a duration with a unit in \
             quotes, e.g. \"1s\" or \"500ms\", not an integer",
            "p.toml:6:18: error: `max-concurrent` in [checkpointing] must be between 1 and 64, not 0",
            "p.toml:7:11: error: `timeout` in [checkpointing]: `soon` is not a duration: expected \
             a duration such as `500ms`, `10 s`, `2 min`, `1h` or `1d` (a plain number means \
             milliseconds)",
        ],
    );
}

#[test]
fn bad_04_missing_required_keys() {
    invalid(
        "[[sources]]\nname = \"in\"\n\n[[sinks]]\nconnector = \"print\"\n",
        &[
            "p.toml:1:1: error: missing `connector` in source `in`: add connector = \"<identifier>\" \
             (`weir connectors` lists them)",
            "p.toml:1:1: error: missing `schema` in source `in`: add schema = [{ name = \"id\", \
             type = \"int64\" }, …]",
            "p.toml:1:1: error: `in` is never read: add a sink (or transform) with input = \"in\", \
             or remove it",
            "p.toml:4:1: error: missing `name` in sinks[0]: add name = \"…\"",
            "p.toml:4:1: error: missing `input` in sink `sink-1`: add input = \"<a source or \
             transform>\"",
        ],
    );
}

#[test]
fn bad_05_unknown_connectors_formats_and_types() {
    invalid(
        r#"
[[sources]]
name = "orders"
connector = "datagne"
schema = [{ name = "id", type = "int" }]

[[sinks]]
name = "out"
input = "orders"
connector = "blackhole"
format = "jsn"
"#,
        &[
            "p.toml:4:13: error: unknown connector `datagne` in source `orders`: did you mean \
             `datagen`? (this build of weir has: blackhole, datagen, elasticsearch, files, kafka, print)",
            "p.toml:5:33: error: unknown type `int` in field 1 of the schema of source `orders`: \
             did you mean `int64`? (the types are: boolean, int8, int16, int32, int64, uint8, \
             uint16, uint32, uint64, float32, float64, decimal(P, S), string, bytes, binary, date, \
             timestamp, timestamp(UNIT[, ZONE]), list<T>, struct<NAME: T, …>, map<K, V>)",
            "p.toml:11:10: error: unknown format `jsn` in sink `out`: did you mean `json`? (the \
             formats are: canal-json, csv, debezium-json, json, raw)",
        ],
    );
}

#[test]
fn bad_06_connector_options_are_checked_by_their_option_sets() {
    invalid(
        r#"
[[sources]]
name = "orders"
connector = "datagen"
schema = [{ name = "id", type = "int64" }]

[sources.options]
number-of-row = 10
rows-per-second = 0
fields.idd.kind = "sequence"

[[sinks]]
name = "out"
input = "orders"
connector = "blackhole"
options = { path = "/tmp" }
"#,
        &[
            "p.toml:8:1: error: source `orders`: unknown option `number-of-row`: did you mean \
             `number-of-rows`?",
            "p.toml:9:19: error: source `orders`: invalid value `0` for option `rows-per-second`: \
             must be greater than 0",
            "p.toml:16:13: error: sink `out`: unknown option `path`: remove it, or check the \
             connector's documentation for the supported options",
        ],
    );
}

#[test]
fn bad_07_schema_dependent_options_are_checked_by_the_factory() {
    invalid(
        (r#"
[[sources]]
name = "orders"
connector = "datagen"
schema = [{ name = "id", type = "int64" }, { name = "ok", type = "boolean" }]
options = { number-of-rows = 100, fields.idd.kind = "sequence", fields.ok.kind = "sequence", fields.id.kind = "sequence", fields.id.end = 9 }
format = "json"
"#
        .to_owned()
            + SINK)
            .as_str(),
        &[
            "p.toml:6:13: error: source `orders`: conflicting options `number-of-rows`, \
             `fields.id.end`: the sequence of `id` has 10 values but `number-of-rows` asks for \
             100: lower `number-of-rows` or extend the sequence",
            "p.toml:6:46: error: source `orders`: unknown option `fields.idd.kind`: did you mean \
             `fields.id.kind`?",
            "p.toml:6:82: error: source `orders`: invalid value `sequence` for option \
             `fields.ok.kind`: a boolean field cannot be a sequence: use `random`",
            "p.toml:7:10: error: source `orders`: datagen generates rows itself and reads no bytes: \
             remove `format`",
        ],
    );
}

#[test]
fn bad_08_conflicting_options() {
    invalid(
        &format!(
            "{}{SINK}",
            SOURCE.replace(
                "options = { number-of-rows = 10 }",
                "options = { rows-per-second = 5, rows-per-checkpoint = 5 }"
            )
        ),
        &[
            "p.toml:10:34: error: source `orders`: conflicting options `rows-per-checkpoint`, \
           `rows-per-second`: a source is limited either per second or per checkpoint; remove \
           one of them",
        ],
    );
}

#[test]
fn bad_09_graph_errors_dangling_inputs_fan_out_duplicates() {
    invalid(
        &format!(
            "{SOURCE}{SINK}\n[[sinks]]\nname = \"out\"\ninput = \"ordres\"\nconnector = \"print\"\n\n\
             [[sinks]]\nname = \"again\"\ninput = \"orders\"\nconnector = \"blackhole\"\n"
        ),
        &[
            "p.toml:18:8: error: the name `out` is already used by a sink: names of sources, \
             transforms and sinks must be unique",
            "p.toml:19:9: error: `input` of sink `out`: there is no source or transform `ordres`: \
             did you mean `orders`?",
            "p.toml:24:9: error: `orders` is read by sink `out` and sink `again`: every stream has \
             exactly one reader in the embedded runtime; declare a second source for the second \
             reader",
        ],
    );
}

#[test]
fn bad_10_transforms_are_type_checked() {
    invalid(
        &format!(
            "{}\n[[transforms]]\nname = \"t\"\ninput = \"orders\"\nfilter = \"id > 'x' and stauts = 'paid'\"\n\
             select = [\"id\", \"state\"]\n{}",
            SOURCE,
            SINK.replace("input = \"orders\"", "input = \"t\"")
        ),
        &[
            "p.toml:15:16: error: `filter` of transform `t`: cannot compare a number with a string",
            "p.toml:16:17: error: `select` of transform `t`: there is no field `state` in its \
             input: did you mean `status`?",
        ],
    );
    invalid(
        &format!(
            "{}\n[[transforms]]\nname = \"t\"\ninput = \"orders\"\nfilter = \"status = null\"\n{}",
            SOURCE,
            SINK.replace("input = \"orders\"", "input = \"t\"")
        ),
        &["p.toml:15:20: error: `filter` of transform `t`: a comparison with null is never true: \
           use `is null` or `is not null`"],
    );
}

#[test]
fn bad_11_event_time_settings() {
    invalid(
        &format!(
            "{SOURCE}watermark = {{ timestamp-field = \"status\", alignment-max-drift = \"1s\", idleness = \"0s\" }}\n{SINK}"
        ),
        &[
            "p.toml:11:33: error: `timestamp-field` of source `orders`: field `status` is string, \
             but event time needs a timestamp or int64 (epoch milliseconds) field",
            "p.toml:11:43: error: `alignment-max-drift` of source `orders` needs an \
             `alignment-group`",
            "p.toml:11:82: error: `idleness` in source `orders` must be greater than zero",
        ],
    );
}

#[test]
fn bad_12_checkpoint_storage_and_restart_strategy() {
    invalid(
        &format!(
            "[checkpointing]\ninterval = \"1s\"\nmode = \"exactly_once\"\nstorage = \"gs://bucket/chk\"\n\n\
             [restart]\nstrategy = \"fixed-delay\"\nattempts = -1\ninitial-backoff = \"1s\"\n{SOURCE}{SINK}"
        ),
        &[
            "p.toml:3:8: error: `mode` in [checkpointing] must be \"exactly-once\" or \
             \"at-least-once\", not \"exactly_once\": did you mean `exactly-once`?",
            "p.toml:4:11: error: checkpoint storage scheme `gs://` is not supported: use a local \
             directory, `file://…`, `s3://bucket/prefix`, or \"memory\"",
            "p.toml:8:12: error: `attempts` in [restart] must be between 0 and 4294967295, not -1",
            "p.toml:9:1: error: `initial-backoff` does not apply to the fixed-delay restart \
             strategy",
        ],
    );
    invalid(
        &format!("[restart]\nstrategy = \"exponential\"\n{SOURCE}{SINK}"),
        &[
            "p.toml:2:12: error: unknown restart strategy \"exponential\": did you mean \
           `exponential-delay`?; the strategies are none, fixed-delay, exponential-delay and \
           failure-rate",
        ],
    );
}

#[test]
fn barrier_alignment_is_aligned_unaligned_or_aligned_with_a_timeout() {
    for (settings, summary) in [
        ("", ""),
        ("alignment = \"aligned\"\n", ""),
        ("alignment = \"unaligned\"\n", " (unaligned)"),
        (
            "alignment-timeout = \"250ms\"\n",
            " (aligned, unaligned after 250 ms)",
        ),
    ] {
        let (code, out, err) = validate(&format!(
            "[checkpointing]\ninterval = \"1s\"\n{settings}{SOURCE}{SINK}"
        ));
        assert_eq!(code, 0, "{settings}: {err}");
        assert_eq!(
            out,
            format!(
                "p.toml: valid pipeline `p`: 1 source, 0 transforms, 1 sink, exactly-once \
                 checkpoints every 1 s{summary}\n"
            ),
            "{settings}"
        );
    }
}

#[test]
fn bad_14_barrier_alignment() {
    invalid(
        &format!("[checkpointing]\ninterval = \"1s\"\nalignment = \"unalinged\"\n{SOURCE}{SINK}"),
        &[
            "p.toml:3:13: error: `alignment` in [checkpointing] must be \"aligned\" or \
           \"unaligned\", not \"unalinged\": did you mean `unaligned`?",
        ],
    );
    invalid(
        &format!(
            "[checkpointing]\ninterval = \"1s\"\nmode = \"at-least-once\"\n\
             alignment = \"unaligned\"\nalignment-timeout = \"1s\"\nmax-concurrent = 2\n\
             {SOURCE}{SINK}"
        ),
        &[
            "p.toml:4:13: error: `alignment-timeout` makes aligned barriers go unaligned when \
             alignment takes longer; with alignment = \"unaligned\" barriers never align: \
             remove one of the two",
            "p.toml:4:13: error: unaligned barriers (and an alignment timeout) need mode = \
             \"exactly-once\"; at-least-once checkpoints never align barriers",
            "p.toml:6:18: error: unaligned barriers (and an alignment timeout) allow one \
             checkpoint in progress at a time: set max-concurrent = 1",
        ],
    );
}

#[test]
fn bad_13_a_source_used_as_a_sink_and_format_schema_mismatch() {
    invalid(
        &format!(
            "{SOURCE}\n[[sinks]]\nname = \"out\"\ninput = \"orders\"\nconnector = \"datagen\"\n"
        ),
        &["p.toml:15:13: error: connector `datagen` is a source only: it cannot be used as a sink"],
    );
}

#[test]
fn every_kind_of_mistake_is_reported_at_once_and_nothing_panics() {
    // All of the above in one file: the count says every one was found.
    let text = format!(
        "[pipeline]\nparalelism = 2\n[checkpointing]\ninterval = 0\n{}\n[[sinks]]\nname = \"x\"\n\
         input = \"nope\"\nconnector = \"prnt\"\n",
        SOURCE.replace("number-of-rows = 10", "number-of-rows = -1")
    );
    let (code, _, err) = validate(&text);
    assert_eq!(code, 2);
    assert!(err.ends_with("p.toml: 6 errors\n"), "{err}");
    // Garbage never panics.
    for garbage in [
        "",
        "\u{0}\u{1}",
        "[[sources]]\n[[sources]]\n",
        "sources = 3\nsinks = \"x\"\n",
        "[[sources]]\nschema = [1, 2]\noptions = [1]\nformat = {}\nwatermark = 5\n",
        "[[sinks]]\ninput = [1, []]\nformat = { type = 3 }\n",
        "[[transforms]]\ninput = \"t\"\nname = \"t\"\nfilter = \"((\"\n",
    ] {
        let (code, _, err) = validate(garbage);
        assert_eq!(code, 2, "{garbage:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

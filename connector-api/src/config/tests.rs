use std::collections::BTreeMap;
use std::error::Error;
use std::sync::LazyLock;
use std::time::Duration;

use proptest::prelude::*;

use super::*;

type TestResult = Result<(), Box<dyn Error>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StartupMode {
    EarliestOffset,
    LatestOffset,
    Timestamp,
}

crate::config_enum!(StartupMode {
    "earliest-offset" => EarliestOffset,
    "latest-offset" => LatestOffset,
    "timestamp" => Timestamp,
});

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BoundedMode {
    Unbounded,
    Timestamp,
}

config_enum!(BoundedMode { "unbounded" => Unbounded, "timestamp" => Timestamp });

static TOPIC: LazyLock<ConfigOption<String>> = LazyLock::new(|| {
    ConfigOption::new("topic")
        .description("Topic to read.")
        .validator(non_empty())
});

fn startup_mode() -> ConfigOption<StartupMode> {
    ConfigOption::new("scan.startup.mode")
        .default_value(StartupMode::EarliestOffset)
        .description("Where to start reading.")
        .deprecated_key("scan.startup-mode")
}

fn bounded_mode() -> ConfigOption<BoundedMode> {
    ConfigOption::new("scan.bounded.mode").default_value(BoundedMode::Unbounded)
}

fn bounded_millis() -> ConfigOption<i64> {
    ConfigOption::new("scan.bounded.timestamp-millis")
        .optional()
        .validator(min(0))
}

fn max_rows() -> ConfigOption<u64> {
    ConfigOption::<u64>::new("sink.buffer-flush.max-rows")
        .default_value(1000)
        .description("Rows buffered before a flush.")
        .validator(range(1..=1_000_000))
        .deprecated_key("sink.max-rows")
}

fn flush_interval() -> ConfigOption<Duration> {
    ConfigOption::new("sink.buffer-flush.interval")
        .default_value(Duration::from_secs(1))
        .validator(min(Duration::from_millis(1)))
}

fn buffer_size() -> ConfigOption<MemorySize> {
    ConfigOption::new("sink.buffer-size").default_value(MemorySize::from_kibibytes(64))
}

fn servers() -> ConfigOption<String> {
    ConfigOption::new("properties.bootstrap.servers").description("Kafka brokers.")
}

fn key_fields() -> ConfigOption<Vec<String>> {
    ConfigOption::new("key.fields").optional()
}

fn password() -> ConfigOption<String> {
    ConfigOption::new("password")
        .optional()
        .sensitive()
        .validator(|p: &String| {
            if p.len() >= 8 {
                Ok(())
            } else {
                Err("must have at least 8 characters".to_owned())
            }
        })
}

fn kafka() -> OptionSet {
    OptionSet::new("kafka source")
        .option(&TOPIC)
        .option(&servers())
        .option(&startup_mode())
        .option(&bounded_mode())
        .option(&bounded_millis())
        .option(&max_rows())
        .option(&flush_interval())
        .option(&buffer_size())
        .option(&key_fields())
        .option(&password())
        .prefix("properties.", "Passed to the Kafka client.")
        .cross_validator(|config| {
            if config.get(&bounded_mode()) == BoundedMode::Timestamp
                && !config.is_set(&bounded_millis())
            {
                vec![ConfigError::conflict(
                    ["scan.bounded.mode", "scan.bounded.timestamp-millis"],
                    "`scan.bounded.mode` = `timestamp` requires `scan.bounded.timestamp-millis`",
                )]
            } else {
                Vec::new()
            }
        })
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect()
}

/// Minimal valid input for [`kafka`] plus `extra`.
fn input(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut input = map(&[
        ("topic", "orders"),
        ("properties.bootstrap.servers", "k:9092"),
    ]);
    input.extend(map(extra));
    input
}

fn errors_of(input: &BTreeMap<String, String>) -> Vec<ConfigError> {
    kafka()
        .validate(input)
        .err()
        .map(ConfigErrors::into_errors)
        .unwrap_or_default()
}

// ---------------------------------------------------------------- value parsing

#[test]
fn bool_is_case_insensitive_true_or_false_only() {
    assert_eq!(bool::parse_value("TRUE"), Ok(true));
    assert_eq!(bool::parse_value(" False "), Ok(false));
    assert_eq!(
        bool::parse_value("yes"),
        Err("`true` or `false`".to_owned())
    );
    assert_eq!(bool::parse_value("1"), Err("`true` or `false`".to_owned()));
}

#[test]
fn integers_are_trimmed_and_range_checked_by_type() {
    assert_eq!(u16::parse_value(" 8080 "), Ok(8080));
    assert_eq!(
        u16::parse_value("70000"),
        Err("an integer between 0 and 65535".to_owned())
    );
    assert_eq!(
        u32::parse_value("-1"),
        Err("an integer between 0 and 4294967295".to_owned())
    );
    assert_eq!(i64::parse_value("-42"), Ok(-42));
    assert_eq!(
        i32::parse_value("1.5"),
        Err("an integer between -2147483648 and 2147483647".to_owned())
    );
    assert_eq!(usize::parse_value("7"), Ok(7));
    assert_eq!(
        u64::parse_value(""),
        Err(format!("an integer between 0 and {}", u64::MAX))
    );
}

#[test]
fn f64_must_be_finite() {
    assert_eq!(f64::parse_value("0.75"), Ok(0.75));
    assert_eq!(f64::parse_value("1e3"), Ok(1000.0));
    assert_eq!(
        f64::parse_value("NaN"),
        Err("a finite number such as `0.75`".to_owned())
    );
    assert_eq!(
        f64::parse_value("-inf"),
        Err("a finite number such as `0.75`".to_owned())
    );
    assert_eq!(0.1_f64.render_value(), "0.1");
}

#[test]
fn string_lists_split_on_comma_and_semicolon() {
    assert_eq!(
        Vec::<String>::parse_value(" a, b ;c,, ;"),
        Ok(vec!["a".to_owned(), "b".to_owned(), "c".to_owned()])
    );
    assert_eq!(Vec::<String>::parse_value(""), Ok(Vec::new()));
    assert_eq!(vec!["a".to_owned(), "b".to_owned()].render_value(), "a,b");
    assert_eq!(
        String::parse_value(" kept as is "),
        Ok(" kept as is ".to_owned())
    );
}

#[test]
fn durations_accept_units_spaces_and_plain_milliseconds() {
    let cases = [
        ("500ms", Duration::from_millis(500)),
        ("1s", Duration::from_secs(1)),
        ("2 min", Duration::from_secs(120)),
        ("1h", Duration::from_secs(3600)),
        ("10 s", Duration::from_secs(10)),
        ("250", Duration::from_millis(250)),
        ("  3 Seconds ", Duration::from_secs(3)),
        ("5m", Duration::from_secs(300)),
        ("1d", Duration::from_secs(86_400)),
        ("7 us", Duration::from_micros(7)),
        ("7µs", Duration::from_micros(7)),
        ("9ns", Duration::from_nanos(9)),
        ("0", Duration::ZERO),
        ("1 MIN", Duration::from_secs(60)),
    ];
    for (raw, expected) in cases {
        assert_eq!(parse_duration(raw), Ok(expected), "{raw}");
    }
}

#[test]
fn durations_reject_malformed_and_overflowing_values() {
    let expected = "a duration such as `500ms`, `10 s`, `2 min`, `1h` or `1d` \
                    (a plain number means milliseconds)";
    for raw in [
        "",
        "ms",
        "-1s",
        "1.5s",
        "10 parsecs",
        "1 s 2 ms",
        "99999999999999999999999999 d",
        "999999999999999999999999999999999999999999",
    ] {
        assert_eq!(parse_duration(raw), Err(expected.to_owned()), "{raw:?}");
    }
    // The largest representable duration still parses.
    let max = format!("{} ns", Duration::MAX.as_nanos());
    assert_eq!(parse_duration(&max), Ok(Duration::MAX));
    let over = format!("{} ns", Duration::MAX.as_nanos() + 1_000_000_000);
    assert_eq!(parse_duration(&over), Err(expected.to_owned()));
}

#[test]
fn durations_render_in_the_largest_exact_unit() {
    assert_eq!(format_duration(Duration::ZERO), "0 ms");
    assert_eq!(format_duration(Duration::from_millis(500)), "500 ms");
    assert_eq!(format_duration(Duration::from_millis(1500)), "1500 ms");
    assert_eq!(format_duration(Duration::from_secs(90)), "90 s");
    assert_eq!(format_duration(Duration::from_secs(120)), "2 min");
    assert_eq!(format_duration(Duration::from_secs(7200)), "2 h");
    assert_eq!(format_duration(Duration::from_secs(172_800)), "2 d");
    assert_eq!(format_duration(Duration::from_micros(3)), "3 us");
    assert_eq!(format_duration(Duration::new(1, 1)), "1000000001 ns");
}

#[test]
fn memory_sizes_parse_binary_units() {
    let cases = [
        ("64kb", MemorySize::from_kibibytes(64)),
        ("10 mb", MemorySize::from_mebibytes(10)),
        ("1gb", MemorySize::from_gibibytes(1)),
        ("1024", MemorySize::from_bytes(1024)),
        ("2 TB", MemorySize::from_bytes(2 << 40)),
        (" 3 KiB ", MemorySize::from_bytes(3072)),
        ("5 bytes", MemorySize::from_bytes(5)),
        ("5b", MemorySize::from_bytes(5)),
        ("0", MemorySize::ZERO),
    ];
    for (raw, expected) in cases {
        assert_eq!(raw.parse::<MemorySize>(), Ok(expected), "{raw}");
    }
    let expected = "a memory size such as `1024`, `64kb`, `10 mb` or `1gb` \
                    (a plain number means bytes)";
    for raw in [
        "",
        "kb",
        "-1kb",
        "1.5 mb",
        "3 parsecs",
        "16777216 tb",
        "18446744073709551616",
    ] {
        assert_eq!(
            MemorySize::parse_value(raw),
            Err(expected.to_owned()),
            "{raw:?}"
        );
    }
    assert_eq!(
        MemorySize::parse_value("18446744073709551615"),
        Ok(MemorySize::from_bytes(u64::MAX))
    );
}

#[test]
fn memory_sizes_render_in_the_largest_exact_unit() {
    assert_eq!(MemorySize::ZERO.to_string(), "0 bytes");
    assert_eq!(MemorySize::from_bytes(1000).to_string(), "1000 bytes");
    assert_eq!(MemorySize::from_bytes(1024).to_string(), "1 kb");
    assert_eq!(MemorySize::from_kibibytes(1536).to_string(), "1536 kb");
    assert_eq!(MemorySize::from_mebibytes(2048).to_string(), "2 gb");
    assert_eq!(MemorySize::from_bytes(3 << 40).render_value(), "3 tb");
    assert_eq!(MemorySize::from_gibibytes(u64::MAX).bytes(), u64::MAX);
}

proptest! {
    #[test]
    fn duration_render_parse_round_trip(secs in any::<u64>(), nanos in 0u32..1_000_000_000) {
        let duration = Duration::new(secs, nanos);
        prop_assert_eq!(parse_duration(&format_duration(duration)), Ok(duration));
    }

    #[test]
    fn whole_unit_duration_round_trip(n in 0u32..1_000_000, unit in 0usize..7) {
        let nanos_per_unit: [u64; 7] =
            [86_400_000_000_000, 3_600_000_000_000, 60_000_000_000, 1_000_000_000, 1_000_000, 1_000, 1];
        let duration = Duration::from_nanos(nanos_per_unit[unit]) * n;
        prop_assert_eq!(parse_duration(&format_duration(duration)), Ok(duration));
    }

    #[test]
    fn memory_size_render_parse_round_trip(bytes in any::<u64>()) {
        let size = MemorySize::from_bytes(bytes);
        prop_assert_eq!(MemorySize::parse_value(&size.render_value()), Ok(size));
    }

    #[test]
    fn memory_size_whole_units_round_trip(n in 0u64..1 << 20, shift in prop::sample::select(vec![0u32, 10, 20, 30, 40])) {
        let size = MemorySize::from_bytes(n << shift);
        prop_assert_eq!(size.to_string().parse::<MemorySize>(), Ok(size));
    }
}

// ---------------------------------------------------------------- enums

#[test]
fn enums_parse_case_insensitively_and_list_values_on_error() {
    assert_eq!(
        StartupMode::parse_value("Latest-Offset"),
        Ok(StartupMode::LatestOffset)
    );
    assert_eq!(
        StartupMode::parse_value(" timestamp "),
        Ok(StartupMode::Timestamp)
    );
    assert_eq!(
        StartupMode::parse_value("latest"),
        Err("one of `earliest-offset`, `latest-offset`, `timestamp`".to_owned())
    );
    assert_eq!(StartupMode::LatestOffset.render_value(), "latest-offset");
    assert_eq!(
        StartupMode::allowed_values(),
        Some(vec!["earliest-offset", "latest-offset", "timestamp"])
    );
    assert_eq!(StartupMode::type_name(), "Enum");
    assert_eq!(
        <StartupMode as OptionValue>::fallback(),
        StartupMode::EarliestOffset
    );
    assert_eq!(
        BoundedMode::VARIANTS,
        &[BoundedMode::Unbounded, BoundedMode::Timestamp]
    );
}

#[test]
fn enum_option_reports_invalid_value_with_allowed_values() {
    assert_eq!(
        errors_of(&input(&[("scan.startup.mode", "newest")])),
        vec![ConfigError::InvalidValue {
            key: "scan.startup.mode".to_owned(),
            value: "newest".to_owned(),
            expected: "one of `earliest-offset`, `latest-offset`, `timestamp`".to_owned(),
        }]
    );
}

// ---------------------------------------------------------------- validators

#[test]
fn validator_helpers_explain_rejections() {
    let inclusive = range::<u64, _>(1..=10);
    assert_eq!(inclusive(&1), Ok(()));
    assert_eq!(inclusive(&10), Ok(()));
    assert_eq!(
        inclusive(&11),
        Err("must be between 1 and 10 (inclusive)".to_owned())
    );
    let half_open = range::<i32, _>(0..5);
    assert_eq!(
        half_open(&5),
        Err("must be at least 0 and less than 5".to_owned())
    );
    assert_eq!(
        min(Duration::from_secs(1))(&Duration::from_millis(10)),
        Err("must be at least 1 s".to_owned())
    );
    assert_eq!(max(2.5_f64)(&3.0), Err("must be at most 2.5".to_owned()));
    assert_eq!(max(2.5_f64)(&2.5), Ok(()));
    let codec = one_of::<String, _>(["gzip", "lz4"]);
    assert_eq!(codec(&"lz4".to_owned()), Ok(()));
    assert_eq!(
        codec(&"zstd".to_owned()),
        Err("must be one of `gzip`, `lz4`".to_owned())
    );
    assert_eq!(
        non_empty::<String>()(&"  ".to_owned()),
        Err("must not be empty".to_owned())
    );
    assert_eq!(non_empty::<Vec<String>>()(&vec!["a".to_owned()]), Ok(()));
    assert_eq!(range::<u16, _>(..)(&7), Ok(()));
}

#[test]
fn option_builder_and_parse() {
    let option = max_rows();
    assert_eq!(option.key(), "sink.buffer-flush.max-rows");
    assert_eq!(option.doc(), "Rows buffered before a flush.");
    assert_eq!(option.default(), Some(&1000));
    assert!(!option.is_required());
    assert_eq!(
        option.deprecated_keys().collect::<Vec<_>>(),
        vec!["sink.max-rows"]
    );
    assert_eq!(option.validators().len(), 1);
    assert_eq!(option.parse("77"), Ok(77));
    assert_eq!(
        option.parse("0"),
        Err(ConfigError::Rejected {
            key: "sink.buffer-flush.max-rows".to_owned(),
            value: "0".to_owned(),
            reason: "must be between 1 and 1000000 (inclusive)".to_owned(),
        })
    );
    assert!(TOPIC.is_required());
    assert!(!bounded_millis().is_required());
    let debug = format!("{:?}", option.clone());
    assert!(debug.contains("\"sink.buffer-flush.max-rows\""), "{debug}");
    assert!(debug.contains("Some(\"1000\")"), "{debug}");
}

// ---------------------------------------------------------------- validation

#[test]
fn valid_input_yields_typed_values_and_defaults() -> TestResult {
    let config = kafka().validate(&input(&[
        ("scan.startup.mode", "LATEST-OFFSET"),
        ("sink.buffer-flush.interval", "250"),
        ("sink.buffer-size", "1 mb"),
        ("key.fields", "id; region"),
    ]))?;
    assert_eq!(config.get(&TOPIC), "orders");
    assert_eq!(config.get(&servers()), "k:9092");
    assert_eq!(config.get(&startup_mode()), StartupMode::LatestOffset);
    assert_eq!(config.get(&bounded_mode()), BoundedMode::Unbounded);
    assert_eq!(config.get(&max_rows()), 1000);
    assert_eq!(config.get(&flush_interval()), Duration::from_millis(250));
    assert_eq!(config.get(&buffer_size()), MemorySize::from_mebibytes(1));
    assert_eq!(
        config.get_optional(&key_fields()),
        Some(vec!["id".to_owned(), "region".to_owned()])
    );
    assert_eq!(config.get_optional(&bounded_millis()), None);
    assert!(config.is_set(&startup_mode()));
    assert!(!config.is_set(&max_rows()));
    assert!(config.warnings().is_empty());
    assert_eq!(config.set_name(), "kafka source");
    Ok(())
}

#[test]
fn unknown_key_suggests_closest_key() {
    assert_eq!(
        errors_of(&input(&[("scan.startup.mod", "timestamp")])),
        vec![ConfigError::UnknownKey {
            key: "scan.startup.mod".to_owned(),
            suggestion: Some("scan.startup.mode".to_owned()),
        }]
    );
    assert_eq!(
        errors_of(&input(&[("scan.startup.mod", "x")]))[0].to_string(),
        "unknown option `scan.startup.mod`: did you mean `scan.startup.mode`?"
    );
}

#[test]
fn unknown_key_suggestions_cover_case_aliases_and_prefixes() {
    let suggestion = |key: &str| match errors_of(&input(&[(key, "1")])).first() {
        Some(ConfigError::UnknownKey { suggestion, .. }) => suggestion.clone(),
        _ => Some("<not an unknown key error>".to_owned()),
    };
    assert_eq!(
        suggestion("SCAN.STARTUP.MODE"),
        Some("scan.startup.mode".to_owned())
    );
    assert_eq!(
        suggestion("scan_startup_mode"),
        Some("scan.startup.mode".to_owned())
    );
    // Close to the deprecated key: suggest the current key.
    assert_eq!(
        suggestion("sink.max-row"),
        Some("sink.buffer-flush.max-rows".to_owned())
    );
    // Misspelled prefix: suggest the prefix-qualified key.
    assert_eq!(
        suggestion("propertis.group.id"),
        Some("properties.group.id".to_owned())
    );
    assert_eq!(suggestion("topc"), Some("topic".to_owned()));
}

#[test]
fn unknown_key_without_close_match_has_no_suggestion() {
    let errors = errors_of(&input(&[("completely.unrelated", "1")]));
    assert_eq!(
        errors,
        vec![ConfigError::UnknownKey {
            key: "completely.unrelated".to_owned(),
            suggestion: None,
        }]
    );
    assert_eq!(
        errors[0].to_string(),
        "unknown option `completely.unrelated`: remove it, or check the connector's \
         documentation for the supported options"
    );
}

#[test]
fn missing_required_option() {
    assert_eq!(
        errors_of(&map(&[("topic", "orders")])),
        vec![ConfigError::Missing {
            key: "properties.bootstrap.servers".to_owned()
        }]
    );
    assert_eq!(
        ConfigError::Missing {
            key: "topic".to_owned()
        }
        .to_string(),
        "missing required option `topic`: add it to the options"
    );
}

#[test]
fn invalid_value_names_key_value_and_expected_type() {
    let errors = errors_of(&input(&[("sink.buffer-flush.interval", "soon")]));
    assert_eq!(
        errors,
        vec![ConfigError::InvalidValue {
            key: "sink.buffer-flush.interval".to_owned(),
            value: "soon".to_owned(),
            expected: "a duration such as `500ms`, `10 s`, `2 min`, `1h` or `1d` \
                       (a plain number means milliseconds)"
                .to_owned(),
        }]
    );
    assert_eq!(
        errors[0].to_string(),
        "invalid value `soon` for option `sink.buffer-flush.interval`: expected a duration such \
         as `500ms`, `10 s`, `2 min`, `1h` or `1d` (a plain number means milliseconds)"
    );
}

#[test]
fn validator_failure_is_rejected() {
    assert_eq!(
        errors_of(&input(&[("sink.buffer-flush.interval", "0 ms")])),
        vec![ConfigError::Rejected {
            key: "sink.buffer-flush.interval".to_owned(),
            value: "0 ms".to_owned(),
            reason: "must be at least 1 ms".to_owned(),
        }]
    );
    assert_eq!(
        errors_of(&map(&[
            ("topic", " "),
            ("properties.bootstrap.servers", "k:1")
        ])),
        vec![ConfigError::Rejected {
            key: "topic".to_owned(),
            value: " ".to_owned(),
            reason: "must not be empty".to_owned(),
        }]
    );
}

#[test]
fn sensitive_values_are_masked() -> TestResult {
    assert_eq!(
        errors_of(&input(&[("password", "hunter2")])),
        vec![ConfigError::Rejected {
            key: "password".to_owned(),
            value: "******".to_owned(),
            reason: "must have at least 8 characters".to_owned(),
        }]
    );
    let config = kafka().validate(&input(&[("password", "correct horse")]))?;
    assert_eq!(config.get(&password()), "correct horse");
    let debug = format!("{config:?}");
    assert!(!debug.contains("correct horse"), "{debug}");
    assert!(debug.contains("\"password\": \"******\""), "{debug}");
    Ok(())
}

#[test]
fn deprecated_key_is_accepted_with_warning() -> TestResult {
    let config = kafka().validate(&input(&[("sink.max-rows", "42")]))?;
    assert_eq!(config.get(&max_rows()), 42);
    assert!(config.is_set(&max_rows()));
    assert_eq!(
        config.warnings(),
        &[ConfigWarning::DeprecatedKey {
            key: "sink.max-rows".to_owned(),
            replacement: "sink.buffer-flush.max-rows".to_owned(),
        }]
    );
    assert_eq!(
        config.warnings()[0].to_string(),
        "option `sink.max-rows` is deprecated: use `sink.buffer-flush.max-rows` instead"
    );
    // Errors for a deprecated key name the key the user wrote.
    assert_eq!(
        errors_of(&input(&[("sink.max-rows", "0")])),
        vec![ConfigError::Rejected {
            key: "sink.max-rows".to_owned(),
            value: "0".to_owned(),
            reason: "must be between 1 and 1000000 (inclusive)".to_owned(),
        }]
    );
    Ok(())
}

#[test]
fn key_given_with_deprecated_alias_too_is_an_error() {
    let errors = errors_of(&input(&[
        ("sink.max-rows", "5"),
        ("sink.buffer-flush.max-rows", "6"),
    ]));
    assert_eq!(
        errors,
        vec![ConfigError::DuplicateAlias {
            key: "sink.buffer-flush.max-rows".to_owned(),
            alias: "sink.max-rows".to_owned(),
        }]
    );
    assert_eq!(
        errors[0].to_string(),
        "option `sink.buffer-flush.max-rows` is set more than once: `sink.max-rows` is a \
         deprecated name for it; keep only `sink.buffer-flush.max-rows`"
    );
}

#[test]
fn cross_validator_reports_conflict() -> TestResult {
    let errors = errors_of(&input(&[("scan.bounded.mode", "timestamp")]));
    assert_eq!(
        errors,
        vec![ConfigError::Conflict {
            keys: vec![
                "scan.bounded.mode".to_owned(),
                "scan.bounded.timestamp-millis".to_owned()
            ],
            reason: "`scan.bounded.mode` = `timestamp` requires `scan.bounded.timestamp-millis`"
                .to_owned(),
        }]
    );
    assert_eq!(
        errors[0].to_string(),
        "conflicting options `scan.bounded.mode`, `scan.bounded.timestamp-millis`: \
         `scan.bounded.mode` = `timestamp` requires `scan.bounded.timestamp-millis`"
    );
    let config = kafka().validate(&input(&[
        ("scan.bounded.mode", "timestamp"),
        ("scan.bounded.timestamp-millis", "1700000000000"),
    ]))?;
    assert_eq!(
        config.get_optional(&bounded_millis()),
        Some(1_700_000_000_000)
    );
    Ok(())
}

#[test]
fn cross_errors_about_already_failing_keys_are_suppressed() {
    // The millis value is given but invalid: report that, not "requires millis".
    assert_eq!(
        errors_of(&input(&[
            ("scan.bounded.mode", "timestamp"),
            ("scan.bounded.timestamp-millis", "-5"),
        ])),
        vec![ConfigError::Rejected {
            key: "scan.bounded.timestamp-millis".to_owned(),
            value: "-5".to_owned(),
            reason: "must be at least 0".to_owned(),
        }]
    );
}

#[test]
fn every_mistake_is_reported_at_once_sorted_by_key() {
    let errors = kafka()
        .validate(&map(&[
            ("scan.startup.mod", "latest-offset"),
            ("sink.buffer-size", "lots"),
            ("sink.max-rows", "0"),
            ("properties.bootstrap.servers", "k:9092"),
            ("scan.bounded.mode", "timestamp"),
        ]))
        .err();
    let expected = vec![
        ConfigError::Conflict {
            keys: vec![
                "scan.bounded.mode".to_owned(),
                "scan.bounded.timestamp-millis".to_owned(),
            ],
            reason: "`scan.bounded.mode` = `timestamp` requires `scan.bounded.timestamp-millis`"
                .to_owned(),
        },
        ConfigError::UnknownKey {
            key: "scan.startup.mod".to_owned(),
            suggestion: Some("scan.startup.mode".to_owned()),
        },
        ConfigError::InvalidValue {
            key: "sink.buffer-size".to_owned(),
            value: "lots".to_owned(),
            expected: "a memory size such as `1024`, `64kb`, `10 mb` or `1gb` \
                       (a plain number means bytes)"
                .to_owned(),
        },
        ConfigError::Rejected {
            key: "sink.max-rows".to_owned(),
            value: "0".to_owned(),
            reason: "must be between 1 and 1000000 (inclusive)".to_owned(),
        },
        ConfigError::Missing {
            key: "topic".to_owned(),
        },
    ];
    assert_eq!(errors.as_ref().map(|e| e.errors().to_vec()), Some(expected));
    assert_eq!(errors.as_ref().map(ConfigErrors::len), Some(5));
    assert_eq!(
        errors.map(|e| e.to_string()),
        Some(
            "5 problems in kafka source options:\n  \
             - conflicting options `scan.bounded.mode`, `scan.bounded.timestamp-millis`: \
             `scan.bounded.mode` = `timestamp` requires `scan.bounded.timestamp-millis`\n  \
             - unknown option `scan.startup.mod`: did you mean `scan.startup.mode`?\n  \
             - invalid value `lots` for option `sink.buffer-size`: expected a memory size such \
             as `1024`, `64kb`, `10 mb` or `1gb` (a plain number means bytes)\n  \
             - invalid value `0` for option `sink.max-rows`: must be between 1 and 1000000 \
             (inclusive)\n  \
             - missing required option `topic`: add it to the options"
                .to_owned()
        )
    );
}

#[test]
fn single_error_header_is_singular() {
    let errors = ConfigErrors::new(
        "jdbc sink",
        vec![ConfigError::Missing {
            key: "url".to_owned(),
        }],
    );
    assert_eq!(
        errors.to_string(),
        "1 problem in jdbc sink options:\n  - missing required option `url`: add it to the options"
    );
    assert_eq!(errors.set_name(), "jdbc sink");
    assert!(!errors.is_empty());
    assert_eq!((&errors).into_iter().count(), 1);
    let as_error: &dyn Error = &errors;
    assert!(as_error.source().is_none());
}

#[test]
fn errors_sort_by_key_then_kind_and_deduplicate() {
    let conflict = ConfigError::conflict(["b", "a"], "pick one");
    let errors = ConfigErrors::new(
        "s",
        vec![
            ConfigError::Missing {
                key: "c".to_owned(),
            },
            conflict.clone(),
            ConfigError::UnknownKey {
                key: "b".to_owned(),
                suggestion: None,
            },
            conflict.clone(),
        ],
    );
    assert_eq!(
        errors.errors(),
        &[
            ConfigError::UnknownKey {
                key: "b".to_owned(),
                suggestion: None
            },
            conflict,
            ConfigError::Missing {
                key: "c".to_owned()
            },
        ]
    );
    assert_eq!(errors.errors()[1].keys(), vec!["b", "a"]);
    assert_eq!(ConfigError::conflict(Vec::<String>::new(), "x").key(), "");
}

// ---------------------------------------------------------------- prefixes

#[test]
fn prefixed_keys_are_collected_with_prefix_stripped() -> TestResult {
    let set = OptionSet::new("kafka source")
        .option(&servers())
        .prefix("properties.", "Kafka client properties.")
        .prefix("properties.sasl.", "SASL settings.");
    let config = set.validate(&map(&[
        ("properties.bootstrap.servers", "k:9092"),
        ("properties.group.id", "weir"),
        ("properties.sasl.mechanism", "PLAIN"),
    ]))?;
    assert_eq!(
        config.prefixed("properties."),
        &map(&[("bootstrap.servers", "k:9092"), ("group.id", "weir")])
    );
    assert_eq!(
        config.prefixed("properties.sasl."),
        &map(&[("mechanism", "PLAIN")])
    );
    assert_eq!(config.prefixed("undeclared."), &BTreeMap::new());
    assert_eq!(config.get(&servers()), "k:9092");
    Ok(())
}

#[test]
fn bare_prefix_key_is_rejected() {
    assert_eq!(
        errors_of(&input(&[("properties.", "x")])),
        vec![ConfigError::Rejected {
            key: "properties.".to_owned(),
            value: "x".to_owned(),
            reason: "name a property after the prefix, e.g. `properties.<name>`".to_owned(),
        }]
    );
}

#[test]
fn to_map_round_trips_through_validation() -> TestResult {
    let set = kafka();
    let config = set.validate(&input(&[
        ("scan.startup-mode", "Timestamp"),
        ("sink.buffer-flush.interval", "60000"),
        ("sink.buffer-size", "65536"),
        ("key.fields", "a ; b"),
        ("properties.group.id", "weir"),
    ]))?;
    let rendered = config.to_map();
    assert_eq!(
        rendered,
        map(&[
            ("key.fields", "a,b"),
            ("properties.bootstrap.servers", "k:9092"),
            ("properties.group.id", "weir"),
            ("scan.startup.mode", "timestamp"),
            ("sink.buffer-flush.interval", "1 min"),
            ("sink.buffer-size", "64 kb"),
            ("topic", "orders"),
        ])
    );
    let again = set.validate(&rendered)?;
    assert_eq!(again.to_map(), rendered);
    assert_eq!(again.get(&startup_mode()), StartupMode::Timestamp);
    assert!(again.warnings().is_empty());
    Ok(())
}

// ---------------------------------------------------------------- reading without panics

#[test]
fn reading_options_outside_the_set_falls_back_without_panicking() -> TestResult {
    let config = OptionSet::new("tiny")
        .option(&bounded_mode())
        .validate(&map(&[("scan.bounded.mode", "timestamp")]))?;
    // Not declared, with a default: the default.
    assert_eq!(config.get(&max_rows()), 1000);
    // Not declared, required: None / the type's fallback.
    assert_eq!(config.get_optional(&TOPIC), None);
    assert_eq!(config.get(&TOPIC), "");
    // Same key, different type: the caller's default, then the fallback.
    let as_string = ConfigOption::<String>::new("scan.bounded.mode").default_value("x".into());
    assert_eq!(config.get(&as_string), "x");
    let as_number = ConfigOption::<u32>::new("scan.bounded.mode");
    assert_eq!(config.get(&as_number), 0);
    assert!(config.is_set(&as_number));
    Ok(())
}

#[test]
fn redeclaring_a_key_replaces_the_option_in_place() {
    let set = OptionSet::new("s")
        .option(&max_rows())
        .option(&TOPIC)
        .option(&ConfigOption::<u64>::new("sink.buffer-flush.max-rows").default_value(7));
    assert_eq!(
        set.keys().collect::<Vec<_>>(),
        vec!["sink.buffer-flush.max-rows", "topic"]
    );
    // The replacement has no deprecated key, so the old name is unknown now.
    assert_eq!(
        set.validate(&map(&[("topic", "t"), ("sink.max-rows", "3")]))
            .err()
            .map(ConfigErrors::into_errors),
        Some(vec![ConfigError::UnknownKey {
            key: "sink.max-rows".to_owned(),
            suggestion: None,
        }])
    );
}

// ---------------------------------------------------------------- markdown

#[test]
fn markdown_table_lists_options_then_prefixes() {
    let set = OptionSet::new("kafka source")
        .option(&TOPIC)
        .option(&startup_mode())
        .option(&max_rows())
        .option(&bounded_millis())
        .option(&flush_interval())
        .option(
            &ConfigOption::<String>::new("format")
                .default_value(String::new())
                .description("a | b\nc"),
        )
        .prefix("properties.", "Passed to the Kafka client.");
    assert_eq!(
        set.to_markdown(),
        "| Key | Type | Default | Required | Description |\n\
         |---|---|---|---|---|\n\
         | `topic` | String | (none) | yes | Topic to read. |\n\
         | `scan.startup.mode` | Enum | `earliest-offset` | no | Where to start reading. \
         Possible values: `earliest-offset`, `latest-offset`, `timestamp`. \
         Deprecated keys: `scan.startup-mode`. |\n\
         | `sink.buffer-flush.max-rows` | u64 | `1000` | no | Rows buffered before a flush. \
         Deprecated keys: `sink.max-rows`. |\n\
         | `scan.bounded.timestamp-millis` | i64 | (none) | no |  |\n\
         | `sink.buffer-flush.interval` | Duration | `1 s` | no |  |\n\
         | `format` | String | (empty) | no | a \\| b<br>c |\n\
         | `properties.*` | String | (none) | no | Passed to the Kafka client. Every key \
         starting with `properties.` is passed through with the prefix removed. |\n"
    );
}

#[test]
fn option_set_debug_and_accessors() {
    let set = kafka();
    assert_eq!(set.name(), "kafka source");
    assert_eq!(set.prefixes().collect::<Vec<_>>(), vec!["properties."]);
    assert_eq!(set.keys().count(), 10);
    let debug = format!("{set:?}");
    assert!(debug.contains("cross_validators: 1"), "{debug}");
}

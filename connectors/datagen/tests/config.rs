//! Options for pipeline files: validation, conflicts, and the README table.

// Test helpers outside #[test] functions may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use weir_connector_api::config::{ConfigError, ConfigErrors};
use weir_connector_api::source::{Boundedness, Source};
use weir_connector_datagen::config::{DatagenOptions, NUMBER_OF_ROWS};
use weir_connector_datagen::{options, DataGeneratorSource, RateLimiterStrategy};

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn errors(pairs: &[(&str, &str)]) -> Vec<ConfigError> {
    DatagenOptions::from_map(&map(pairs))
        .map(|_| ())
        .unwrap_err()
        .into_errors()
}

#[test]
fn no_options_mean_unbounded_and_unlimited() {
    let parsed = DatagenOptions::from_map(&BTreeMap::new()).unwrap();
    assert_eq!(
        parsed,
        DatagenOptions {
            number_of_rows: None,
            rate_limiter: RateLimiterStrategy::NoOp,
        }
    );
    let source = DataGeneratorSource::from_options(|n| n, &parsed);
    assert_eq!(source.boundedness(), Boundedness::ContinuousUnbounded);
}

#[test]
fn options_are_read() {
    let parsed = DatagenOptions::from_map(&map(&[
        ("number-of-rows", "500"),
        ("rows-per-checkpoint", "100"),
    ]))
    .unwrap();
    assert_eq!(parsed.number_of_rows, Some(500));
    assert_eq!(
        parsed.rate_limiter,
        RateLimiterStrategy::per_checkpoint(100)
    );
    let source = DataGeneratorSource::from_options(|n| n, &parsed);
    assert_eq!(source.boundedness(), Boundedness::Bounded);
    assert_eq!(source.count(), Some(500));

    let per_second = DatagenOptions::from_map(&map(&[("rows-per-second", "2.5")])).unwrap();
    assert_eq!(
        per_second.rate_limiter,
        RateLimiterStrategy::per_second(2.5)
    );

    let config = options()
        .validate(&map(&[("number-of-rows", "7")]))
        .unwrap();
    assert_eq!(config.get_optional(&NUMBER_OF_ROWS), Some(7));
}

#[test]
fn unknown_keys_get_a_suggestion() {
    assert_eq!(
        errors(&[("rows-per-secnd", "10")]),
        [ConfigError::UnknownKey {
            key: "rows-per-secnd".into(),
            suggestion: Some("rows-per-second".into()),
        }]
    );
    assert_eq!(
        errors(&[("topic", "orders")]),
        [ConfigError::UnknownKey {
            key: "topic".into(),
            suggestion: None,
        }]
    );
}

#[test]
fn rate_per_second_and_per_checkpoint_conflict() {
    let err = DatagenOptions::from_map(&map(&[
        ("rows-per-second", "10"),
        ("rows-per-checkpoint", "10"),
    ]))
    .unwrap_err();
    assert!(matches!(
        err.errors(),
        [ConfigError::Conflict { keys, .. }] if keys == &["rows-per-checkpoint", "rows-per-second"]
    ));
    assert_eq!(
        err.to_string(),
        "1 problem in datagen source options:\n  \
         - conflicting options `rows-per-checkpoint`, `rows-per-second`: a source is limited \
         either per second or per checkpoint; remove one of them"
    );
}

#[test]
fn every_invalid_value_is_reported_at_once() {
    let err: ConfigErrors = DatagenOptions::from_map(&map(&[
        ("number-of-rows", "-1"),
        ("rows-per-second", "0"),
        ("rows-per-checkpoint", "0"),
        ("row-per-second", "1"),
    ]))
    .unwrap_err();
    let keys: Vec<&str> = err.iter().map(ConfigError::key).collect();
    assert_eq!(
        keys,
        [
            "number-of-rows",
            "row-per-second",
            "rows-per-checkpoint",
            "rows-per-second"
        ]
    );
    // Both rate options failed on their own: no extra conflict error.
    assert!(!err
        .iter()
        .any(|e| matches!(e, ConfigError::Conflict { .. })));
    let text = err.to_string();
    assert!(text.contains("must be greater than 0"), "{text}");
    assert!(text.contains("must be at least 1"), "{text}");
    assert!(text.contains("did you mean `rows-per-second`?"), "{text}");
}

#[test]
fn non_finite_rates_are_rejected() {
    for raw in ["NaN", "inf", "fast"] {
        let errors = errors(&[("rows-per-second", raw)]);
        assert!(
            matches!(errors.as_slice(), [ConfigError::InvalidValue { .. }]),
            "{raw}: {errors:?}"
        );
    }
}

/// The README's options table is generated: regenerate it with the output of
/// `options().to_markdown()` when options change.
#[test]
fn readme_contains_exactly_the_generated_options_table() {
    let readme = include_str!("../README.md");
    let start = "<!-- options:start -->\n";
    let end = "<!-- options:end -->";
    let from = readme
        .find(start)
        .expect("README has an options:start marker")
        + start.len();
    let to = readme.find(end).expect("README has an options:end marker");
    assert_eq!(
        &readme[from..to],
        options().to_markdown(),
        "README options table is out of date; replace it with options().to_markdown()"
    );
}

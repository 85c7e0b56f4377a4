//! The `datagen` connector factory of pipeline files: rows per schema, per-field generators,
//! every mistake at once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use weir_connector_api::config::ConfigError;
use weir_connector_api::factory::{find_connector, FactoryContext};
use weir_connector_api::row::{DataType, Field, Schema, Value};
use weir_connector_api::source::{Boundedness, Source};
use weir_connector_api::ConnectorError;
use weir_connector_datagen::factory::RowGenerator;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn schema() -> Schema {
    Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::String, true),
        Field::new("price", DataType::Float64, false),
        Field::new("at", DataType::TimestampMillis, false),
        Field::new("flag", DataType::Boolean, false),
    ])
}

fn create(pairs: &[(&str, &str)]) -> Result<Boundedness, Vec<String>> {
    let factory = find_connector("datagen").expect("registered");
    let source = factory.as_source().expect("a source");
    let config = source
        .source_options()
        .validate(&map(pairs))
        .map_err(|e| e.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    let schema = schema();
    let ctx = FactoryContext {
        name: "gen",
        schema: &schema,
        format: None,
    };
    match source.create_source(&config, &ctx) {
        Ok(s) => Ok(s.boundedness()),
        Err(ConnectorError::Config(errors)) => {
            Err(errors.iter().map(ToString::to_string).collect())
        }
        Err(other) => panic!("{other}"),
    }
}

#[test]
fn the_factory_is_registered_with_its_identity() {
    let factory = find_connector("datagen").expect("registered");
    let info = factory.info();
    assert_eq!(info.crate_name, "weir-connector-datagen");
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    // The connector targets its own line and runs on that line and every newer one.
    let line = |s: &str| -> Vec<u32> { s.split('.').map(|p| p.parse().unwrap()).collect() };
    assert!(
        line(info.api_line()) <= line(weir_connector_api::API_LINE),
        "{} on API {}",
        info.version,
        weir_connector_api::API_LINE
    );
    assert!(factory.as_source().is_some() && factory.as_sink().is_none());
}

#[test]
fn sequences_bound_the_source_and_random_fields_are_reproducible() {
    assert_eq!(
        create(&[("fields.id.kind", "sequence"), ("fields.id.end", "99")]),
        Ok(Boundedness::Bounded)
    );
    assert_eq!(create(&[]), Ok(Boundedness::ContinuousUnbounded));
    assert_eq!(create(&[("number-of-rows", "5")]), Ok(Boundedness::Bounded));

    let options = map(&[
        ("id.kind", "sequence"),
        ("id.start", "10"),
        ("id.step", "2"),
        ("name.values", "a,b,c"),
        ("price.min", "1"),
        ("price.max", "2"),
        ("at.kind", "sequence"),
        ("at.start", "1000"),
        ("at.step", "1000"),
    ]);
    let mut errors = Vec::new();
    let generator = RowGenerator::new(&schema(), &options, 7, &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    let row = generator.row(3);
    assert_eq!(row.values[0], Value::Int64(16));
    assert!(matches!(&row.values[1], Value::String(s) if ["a", "b", "c"].contains(&s.as_str())));
    assert!(matches!(row.values[2], Value::Float64(p) if (1.0..=2.0).contains(&p)));
    assert_eq!(row.values[3], Value::TimestampMillis(4000));
    assert_eq!(
        generator.row(3),
        row,
        "row n is a function of n and the seed"
    );
    let other = RowGenerator::new(&schema(), &options, 8, &mut errors);
    assert_ne!(
        (0..20).map(|n| other.row(n)).collect::<Vec<_>>(),
        (0..20).map(|n| generator.row(n)).collect::<Vec<_>>()
    );
}

#[test]
fn every_field_mistake_is_reported_at_once() {
    let errors = create(&[
        ("fields.nmae.length", "5"),
        ("fields.id.knd", "sequence"),
        ("fields.id.kind", "sequense"),
        ("fields.price.kind", "random"),
        ("fields.price.min", "9"),
        ("fields.price.max", "1"),
        ("fields.flag.kind", "sequence"),
        ("fields.name.null-rate", "2"),
    ])
    .unwrap_err();
    assert_eq!(
        errors,
        [
            "invalid value `sequence` for option `fields.flag.kind`: a boolean field cannot be a \
             sequence: use `random`",
            "invalid value `sequense` for option `fields.id.kind`: expected one of `random`, `sequence`",
            "unknown option `fields.id.knd`: did you mean `fields.id.kind`?",
            "invalid value `2` for option `fields.name.null-rate`: must be between 0 and 1",
            "unknown option `fields.nmae.length`: did you mean `fields.name.length`?",
            "invalid value `1` for option `fields.price.max`: must not be below `min` (9)",
        ]
    );
}

#[test]
fn number_of_rows_beyond_a_sequence_and_a_format_are_conflicts() {
    let errors = create(&[
        ("number-of-rows", "100"),
        ("fields.id.kind", "sequence"),
        ("fields.id.end", "9"),
    ])
    .unwrap_err();
    assert_eq!(
        errors,
        [
            "conflicting options `number-of-rows`, `fields.id.end`: the sequence of `id` has 10 \
          values but `number-of-rows` asks for 100: lower `number-of-rows` or extend the sequence"
        ]
    );
    let factory = find_connector("datagen").unwrap().as_source().unwrap();
    let config = factory.source_options().validate(&map(&[])).unwrap();
    let schema = schema();
    let format_config = config.clone();
    let ctx = FactoryContext {
        name: "gen",
        schema: &schema,
        format: Some(("json", &format_config)),
    };
    let Err(ConnectorError::Config(errors)) = factory.create_source(&config, &ctx) else {
        panic!("a format is refused");
    };
    assert!(
        matches!(&errors.errors()[0], ConfigError::Conflict { keys, .. } if keys == &["format"])
    );
}

#[test]
fn sequences_that_would_wrap_past_the_largest_int64_are_refused() {
    // Bounded by `number-of-rows`: 9 rows from i64::MAX - 3 would wrap to negative ids.
    let errors = create(&[
        ("number-of-rows", "9"),
        ("fields.id.kind", "sequence"),
        ("fields.id.start", "9223372036854775804"),
    ])
    .unwrap_err();
    assert_eq!(
        errors,
        [
            "conflicting options `fields.id.start`, `number-of-rows`: the sequence of `id` passes \
             the largest int64 (9223372036854775807) after 4 values, but the source emits 9 rows \
             (the last would be 9223372036854775812): lower `start` or `step`, or emit fewer rows"
        ]
    );
    // Exactly up to the largest value is fine.
    assert!(create(&[
        ("number-of-rows", "4"),
        ("fields.id.kind", "sequence"),
        ("fields.id.start", "9223372036854775804"),
    ])
    .is_ok());
    // Bounded by another field's `end`; a string sequence counts like an int64 one.
    let errors = create(&[
        ("fields.id.kind", "sequence"),
        ("fields.id.end", "99"),
        ("fields.name.kind", "sequence"),
        ("fields.name.step", "100000000000000000"),
    ])
    .unwrap_err();
    assert_eq!(
        errors,
        [
            "conflicting options `fields.name.step`, `fields.id.end`: the sequence of `name` \
             passes the largest int64 (9223372036854775807) after 93 values, but the source \
             emits 100 rows (the last would be 9900000000000000000): lower `start` or `step`, or \
             emit fewer rows"
        ]
    );
    // Unbounded: a timestamp sequence with room for fewer than 2^40 rows.
    let errors = create(&[
        ("fields.at.kind", "sequence"),
        ("fields.at.start", "1704067200000"),
        ("fields.at.step", "86400000000"),
    ])
    .unwrap_err();
    assert_eq!(
        errors,
        [
            "conflicting options `fields.at.start`, `fields.at.step`: the sequence of `at` passes \
             the largest int64 (9223372036854775807) after 106751972 values and the source is \
             unbounded: set `fields.at.end` or `number-of-rows`, or lower `start` or `step` (an \
             unbounded sequence needs room for 1099511627776 values)"
        ]
    );
    // The default sequence and an ordinary timestamp sequence stay unbounded.
    assert_eq!(
        create(&[
            ("fields.id.kind", "sequence"),
            ("fields.at.kind", "sequence"),
            ("fields.at.start", "1704067200000"),
            ("fields.at.step", "1000"),
        ]),
        Ok(Boundedness::ContinuousUnbounded)
    );
}

#[test]
fn sequences_over_the_whole_int64_range_and_huge_float_ranges_do_not_crash() {
    // 2^64 values: one more than u64 counts (this overflowed and panicked before).
    assert_eq!(
        create(&[
            ("fields.id.kind", "sequence"),
            ("fields.id.start", "-9223372036854775808"),
            ("fields.id.end", "9223372036854775807"),
        ]),
        Ok(Boundedness::Bounded)
    );
    assert_eq!(
        create(&[
            ("fields.price.kind", "sequence"),
            ("fields.price.start", "-1e308"),
            ("fields.price.end", "1e308"),
            ("fields.price.step", "1e-300"),
        ]),
        Ok(Boundedness::Bounded)
    );
    let errors = create(&[
        ("fields.price.kind", "sequence"),
        ("fields.price.start", "inf"),
        ("fields.price.step", "NaN"),
    ])
    .unwrap_err();
    assert_eq!(
        errors,
        [
            "invalid value `inf` for option `fields.price.start`: expected a finite number such \
             as `0.75`",
            "invalid value `NaN` for option `fields.price.step`: expected a finite number such as \
             `0.75`",
        ]
    );
}

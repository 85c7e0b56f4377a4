//! Columnar generation: for every field kind, type, null rate and seed, a chunk of rows
//! converted back to rows equals the row generator's rows, in order.

// Columnar generation exists on API line 1.1's platform only.
#![cfg(weir_api_1_1)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use weir_connector_api::factory::{find_connector, FactoryContext};
use weir_connector_api::row::{DataType, Field, Row, Schema};
use weir_connector_api::source::{Boundedness, Source};
use weir_connector_datagen::factory::{create_chunk_source, RowGenerator};
use weir_formats::chunk::arrow_schema;

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
        Field::new("price", DataType::Float64, true),
        Field::new("at", DataType::TimestampMillis, true),
        Field::new("flag", DataType::Boolean, true),
        Field::new("blob", DataType::Bytes, true),
        Field::new("status", DataType::String, true),
    ])
}

/// Field options covering every generator: sequences of each type, random ranges, lengths,
/// picks and null rates.
fn option_sets() -> Vec<Vec<(&'static str, &'static str)>> {
    vec![
        vec![],
        vec![
            ("id.kind", "sequence"),
            ("id.start", "-5"),
            ("id.step", "3"),
            ("name.kind", "sequence"),
            ("name.start", "100"),
            ("price.kind", "sequence"),
            ("price.start", "0.5"),
            ("price.step", "0.25"),
            ("at.kind", "sequence"),
            ("at.start", "1000"),
            ("at.step", "1000"),
        ],
        vec![
            ("id.min", "-3"),
            ("id.max", "3"),
            ("name.length", "3"),
            ("name.null-rate", "0.3"),
            ("price.min", "-1"),
            ("price.max", "1"),
            ("price.null-rate", "0.5"),
            ("at.null-rate", "0.2"),
            ("flag.null-rate", "0.4"),
            ("blob.length", "0"),
            ("blob.null-rate", "0.1"),
            ("status.values", "NEW,PAID,SHIPPED"),
            ("status.null-rate", "0.25"),
        ],
        vec![
            ("id.min", "-9223372036854775808"),
            ("id.max", "9223372036854775807"),
            ("name.length", "17"),
            ("blob.length", "5"),
            ("status.values", "x"),
            ("flag.null-rate", "1"),
        ],
        // Every random generator without nulls (the dense columns), picks of five values.
        vec![
            ("id.min", "-1000"),
            ("id.max", "1000"),
            ("name.length", "8"),
            ("price.min", "1"),
            ("price.max", "500"),
            ("at.min", "0"),
            ("at.max", "99999"),
            ("blob.length", "3"),
            ("status.values", "new,paid,shipped,cancelled,x"),
        ],
        // Picks longer than the padded block.
        vec![("status.values", "x,a status of twenty-five")],
    ]
}

#[test]
fn chunks_hold_the_row_generators_rows() {
    let schema = schema();
    let arrow = arrow_schema(&schema);
    for options in option_sets() {
        for seed in [0, 1, 42, u64::MAX] {
            let mut errors = Vec::new();
            let generator = RowGenerator::new(&schema, &map(&options), seed, &mut errors);
            assert!(errors.is_empty(), "{options:?}: {errors:?}");
            // A contiguous run, a strided one (unbounded splits) and far numbers.
            let runs: [Vec<u64>; 4] = [
                (0..300).collect(),
                (7..1000).step_by(3).collect(),
                vec![u64::MAX - 2, 1 << 40, 5],
                Vec::new(),
            ];
            for numbers in runs {
                let chunk = generator.chunk(&arrow, &numbers);
                let expected: Vec<Row> = numbers.iter().map(|n| generator.row(*n)).collect();
                assert_eq!(chunk.num_rows(), numbers.len());
                assert_eq!(chunk.kinds(), None);
                let rows = chunk.to_rows().unwrap();
                // Compare by Debug: it tells NaN-free floats apart bit for bit and is readable.
                assert_eq!(
                    format!("{rows:?}"),
                    format!("{expected:?}"),
                    "options {options:?}, seed {seed}"
                );
            }
        }
    }
}

fn context(schema: &Schema) -> FactoryContext<'_> {
    FactoryContext {
        name: "gen",
        schema,
        format: None,
    }
}

#[test]
fn the_chunk_source_has_the_row_sources_options_and_stays_rows_when_rate_limited() {
    let factory = find_connector("datagen").unwrap().as_source().unwrap();
    let schema = schema();
    let validate = |pairs: &[(&str, &str)]| factory.source_options().validate(&map(pairs)).unwrap();

    let bounded = create_chunk_source(&validate(&[("number-of-rows", "10")]), &context(&schema))
        .unwrap()
        .expect("unlimited: columnar");
    assert_eq!(bounded.boundedness(), Boundedness::Bounded);
    let unbounded = create_chunk_source(&validate(&[]), &context(&schema))
        .unwrap()
        .expect("unlimited: columnar");
    assert_eq!(unbounded.boundedness(), Boundedness::ContinuousUnbounded);

    for limited in [[("rows-per-second", "10")], [("rows-per-checkpoint", "10")]] {
        assert!(create_chunk_source(&validate(&limited), &context(&schema))
            .unwrap()
            .is_none());
    }
    // The same checks as the row source: a bad field option is an error on both.
    let bad = validate(&[("fields.idd.kind", "sequence")]);
    assert!(create_chunk_source(&bad, &context(&schema)).is_err());
    assert!(factory.create_source(&bad, &context(&schema)).is_err());
}

use crate::common;

use std::sync::{Arc, Mutex};

use common::{assert_exactly_once, Harness};
use weir_connector_datagen::{DataGeneratorSource, RateLimiterStrategy};

/// A per-run source whose records are run lengths; the runs go to `log` in emission order.
fn per_run_source(log: &Arc<Mutex<Vec<u64>>>, count: Option<u64>) -> DataGeneratorSource<u64> {
    let log = Arc::clone(log);
    DataGeneratorSource::per_run(
        move |numbers: &[u64]| {
            log.lock().unwrap().extend_from_slice(numbers);
            numbers.len() as u64
        },
        count,
        RateLimiterStrategy::no_op(),
    )
    .with_batch_size(100)
}

fn per_number_source(count: Option<u64>) -> DataGeneratorSource<u64> {
    DataGeneratorSource::new(|n| n, count, RateLimiterStrategy::no_op()).with_batch_size(100)
}

/// A checkpoint of the columnar (per-run) reader restores on the row (per-number) reader and
/// the other way round: together they emit every number once, bounded and unbounded splits.
#[test]
fn checkpoints_restore_across_per_run_and_per_number_readers() {
    for count in [Some(2_000), None] {
        // Columns first, then rows.
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut columns = Harness::start(per_run_source(&log, count), 2);
        columns.run_rounds(3);
        let snapshot = columns.snapshot(1);
        let before: Vec<u64> = log.lock().unwrap().clone();
        columns.run_rounds(2); // emitted after the checkpoint: replayed after the restore
        assert!(!before.is_empty());
        let mut rows = Harness::restore(per_number_source(count), 3, &snapshot);
        let mut all = before.clone();
        match count {
            Some(n) => {
                rows.run_to_end();
                all.extend(rows.records());
                assert_exactly_once(all, n);
            }
            None => {
                // Unbounded: the numbers so far are a gap-free, duplicate-free union.
                rows.run_rounds(3);
                all.extend(rows.records());
                let mut sorted = all.clone();
                sorted.sort_unstable();
                sorted.dedup();
                assert_eq!(sorted.len(), all.len(), "no number twice");
            }
        }

        // Rows first, then columns.
        let mut rows = Harness::start(per_number_source(count), 2);
        rows.run_rounds(3);
        let snapshot = rows.snapshot(1);
        let mut all = rows.records();
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut columns = Harness::restore(per_run_source(&log, count), 1, &snapshot);
        match count {
            Some(n) => {
                columns.run_to_end();
                all.extend(log.lock().unwrap().iter().copied());
                assert_exactly_once(all, n);
            }
            None => {
                columns.run_rounds(3);
                all.extend(log.lock().unwrap().iter().copied());
                let mut sorted = all.clone();
                sorted.sort_unstable();
                sorted.dedup();
                assert_eq!(sorted.len(), all.len(), "no number twice");
            }
        }
    }
}

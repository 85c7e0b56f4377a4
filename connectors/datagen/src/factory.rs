//! The `datagen` connector factory for pipeline files: rows of a schema, each field generated
//! by kind (`sequence` or `random`), like Flink SQL's `datagen` connector.
//!
//! Options: those of [`crate::config::options`] (`number-of-rows`, `rows-per-second`,
//! `rows-per-checkpoint`), `seed`, and per field `fields.<name>.<option>`:
//!
//! | option | kinds | types | default | meaning |
//! |---|---|---|---|---|
//! | `kind` | — | all | `random` | `sequence` or `random` |
//! | `start` | sequence | int64, float64, string, timestamp | `0` | the first value (epoch ms for timestamps) |
//! | `end` | sequence | same | none | the last value; the source is bounded by the sequence's length |
//! | `step` | sequence | same | `1` | the increment |
//! | `min`, `max` | random | int64, float64, timestamp | `0`, `1000000` (timestamps: 2024-01-01T00:00:00Z and one day later) | the range, inclusive |
//! | `length` | random | string, bytes | `10` | the length |
//! | `values` | random | string | none | pick one of these comma-separated values |
//! | `null-rate` | random | nullable fields | `0` | the share of nulls, `0` to `1` |
//!
//! The types of API line 1.1 (on that line only) generate too: `int8`…`int32` and
//! `uint8`…`uint64` like int64 (`min`, `max` within the type's range, sequences), `float32`
//! like float64, `decimal(P, S)` at random between decimal `min` and `max` (`-12.5`;
//! default 0 to 1000000), `date` (`min`, `max`, `start`, `end` as `2024-01-31` or day
//! numbers; default 2024-01-01 and a year later), `timestamp(UNIT[, ZONE])` in its unit
//! (default 2024-01-01 and a day later), `list<T>` and `map<K, V>` of `length` elements
//! (default 3) and `struct<…>` field by field. The parts of nested fields take their own
//! options: `fields.<list>.element.min`, `fields.<struct>.<field>.length`,
//! `fields.<map>.key.length`, `fields.<map>.value.null-rate`…
//!
//! Row `n` is a pure function of `n` and `seed`: a restored job regenerates exactly the rows it
//! has not emitted yet, so the source is exactly-once. Every mistake in `fields.*` (unknown
//! fields or options, with a "did you mean", bad values, options that do not fit the kind or
//! type, a `number-of-rows` beyond a sequence's end) is reported at once.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use weir_connector_api::config::{
    ConfigError, ConfigErrors, ConfigOption, OptionSet, OptionValue, ValidatedConfig,
};
use weir_connector_api::erased::BoxedSource;
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::factory::{ConnectorFactory, ConnectorInfo, FactoryContext, SourceFactory};
use weir_connector_api::row::{DataType, Field, Row, Schema, Value};

#[cfg(weir_api_1_1)]
use weir_connector_api::columnar::{ChunkSourceFactory, Columnar};
#[cfg(weir_api_1_1)]
use weir_connector_api::factory::JobContext;
#[cfg(weir_api_1_1)]
use weir_formats::chunk::{arrow_schema, Chunk};

use crate::config::{DatagenOptions, NUMBER_OF_ROWS_KEY, SET_NAME};
use crate::DataGeneratorSource;
#[cfg(weir_api_1_1)]
use crate::RateLimiterStrategy;
use random::{mix, random_text, Rng};

#[cfg(weir_api_1_1)]
mod columns;
#[cfg(weir_api_1_1)]
mod columns_types;
mod random;
#[cfg(weir_api_1_1)]
mod types;

/// `seed`: the seed of random fields.
pub static SEED: LazyLock<ConfigOption<u64>> = LazyLock::new(|| {
    ConfigOption::new("seed")
        .default_value(0)
        .description("Seed of the random fields: the same seed gives the same rows.")
});

/// The prefix of per-field options.
pub const FIELDS_PREFIX: &str = "fields.";

/// The options of the `datagen` connector in pipeline files.
pub fn row_options() -> OptionSet {
    crate::config::options().option(&SEED).prefix(
        FIELDS_PREFIX,
        "Per-field generators: `fields.<name>.kind` (`random` or `sequence`), `.start`, `.end`, \
         `.step` (sequence), `.min`, `.max`, `.length`, `.values`, `.null-rate` (random).",
    )
}

/// The `datagen` connector factory.
#[derive(Debug, Clone, Copy, Default)]
pub struct DatagenFactory;

/// The registered instance.
pub static DATAGEN: DatagenFactory = DatagenFactory;
weir_connector_api::register_connector!(DATAGEN);

impl ConnectorFactory for DatagenFactory {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo {
            identifier: "datagen",
            crate_name: env!("CARGO_PKG_NAME"),
            version: env!("CARGO_PKG_VERSION"),
            description: "generates rows: sequences and seeded random values per field",
        }
    }
    fn as_source(&self) -> Option<&dyn SourceFactory> {
        Some(self)
    }
    #[cfg(weir_api_1_1)]
    fn as_chunk_source(&self) -> Option<&dyn ChunkSourceFactory> {
        Some(self)
    }
}

/// Columns natively (API line 1.1): [`create_chunk_source`], unless a rate limit counts rows.
#[cfg(weir_api_1_1)]
impl ChunkSourceFactory for DatagenFactory {
    fn create_chunk_source(
        &self,
        config: &ValidatedConfig,
        ctx: &FactoryContext<'_>,
        _job: &JobContext,
    ) -> Result<Columnar<BoxedSource<Chunk>>> {
        Ok(match create_chunk_source(config, ctx)? {
            Some(source) => Columnar::Chunks(source),
            None => Columnar::RowsOnly(
                "it is rate limited (`rows-per-second` or `rows-per-checkpoint`), which counts \
                 rows one by one"
                    .to_owned(),
            ),
        })
    }
}

impl SourceFactory for DatagenFactory {
    fn source_options(&self) -> OptionSet {
        row_options()
    }

    fn create_source(
        &self,
        config: &ValidatedConfig,
        ctx: &FactoryContext<'_>,
    ) -> Result<BoxedSource<Row>> {
        let (generator, count, options) = prepare(config, ctx)?;
        let generator = Arc::new(generator);
        Ok(BoxedSource::new(DataGeneratorSource::new(
            move |n| generator.row(n),
            count,
            options.rate_limiter,
        )))
    }
}

/// How many rows one chunk of a columnar datagen source holds at most: one poll's worth of
/// the row source ([`crate::source::DEFAULT_BATCH_SIZE`]), so a source task yields to the
/// rest of the runtime (it does every 32 polls) as often as on the row path; with 4096 rows a
/// debug build went seconds without completing a checkpoint on a loaded machine.
pub const CHUNK_ROWS: usize = crate::source::DEFAULT_BATCH_SIZE;

/// The columnar twin of [`DatagenFactory::create_source`]: the same options, checks and
/// values, generated straight into Arrow columns, one [`Chunk`] per run of up to
/// [`CHUNK_ROWS`] rows of one split. Converted to rows, its output is the row source's, and
/// their splits and checkpoints are the same.
///
/// `None` when the source is rate limited (`rows-per-second`, `rows-per-checkpoint`): the
/// limiters count records, and a chunk is one record, so such a source stays a row source.
///
/// API line 1.1 and newer only (line 1.0's platform has no chunks).
#[cfg(weir_api_1_1)]
pub fn create_chunk_source(
    config: &ValidatedConfig,
    ctx: &FactoryContext<'_>,
) -> Result<Option<BoxedSource<Chunk>>> {
    let (generator, count, options) = prepare(config, ctx)?;
    if options.rate_limiter != RateLimiterStrategy::no_op() {
        return Ok(None);
    }
    let schema = arrow_schema(ctx.schema);
    let generator = Arc::new(generator);
    Ok(Some(BoxedSource::new(
        DataGeneratorSource::per_run(
            move |numbers: &[u64]| generator.chunk(&schema, numbers),
            count,
            options.rate_limiter,
        )
        .with_batch_size(CHUNK_ROWS),
    )))
}

/// Validates the options: the generator, the row count and the rate options.
fn prepare(
    config: &ValidatedConfig,
    ctx: &FactoryContext<'_>,
) -> Result<(RowGenerator, Option<u64>, DatagenOptions)> {
    let mut errors = Vec::new();
    if ctx.format.is_some() {
        errors.push(ConfigError::conflict(
            ["format"],
            "datagen generates rows itself and reads no bytes: remove `format`",
        ));
    }
    let generator = RowGenerator::new(
        ctx.schema,
        config.prefixed(FIELDS_PREFIX),
        config.get(&SEED),
        &mut errors,
    );
    let options = DatagenOptions::from_config(config);
    let (count, bound) = match (options.number_of_rows, generator.sequence_len()) {
        (Some(rows), Some((field, len))) if rows > len => {
            errors.push(ConfigError::conflict(
                [NUMBER_OF_ROWS_KEY.to_owned(), format!("fields.{field}.end")],
                format!(
                    "the sequence of `{field}` has {len} values but `number-of-rows` asks \
                         for {rows}: lower `number-of-rows` or extend the sequence"
                ),
            ));
            (None, None)
        }
        (Some(rows), _) => (
            Some(rows),
            Some(RowBound::Rows {
                count: rows,
                set_by: NUMBER_OF_ROWS_KEY.to_owned(),
            }),
        ),
        (None, Some((field, len))) => (
            Some(len),
            Some(RowBound::Rows {
                count: len,
                set_by: format!("{FIELDS_PREFIX}{field}.end"),
            }),
        ),
        (None, None) => (None, Some(RowBound::Unbounded)),
    };
    if let Some(bound) = bound {
        errors.extend(generator.sequence_overflows(
            ctx.schema,
            config.prefixed(FIELDS_PREFIX),
            &bound,
        ));
    }
    if !errors.is_empty() {
        return Err(ConnectorError::Config(ConfigErrors::new(SET_NAME, errors)));
    }
    Ok((generator, count, options))
}

/// How many rows an unbounded source's sequence (one without `end`, under no `number-of-rows`)
/// must have room for before its values would pass the largest int64 (or become infinite):
/// 2^40, about 1.1 trillion rows, 12 days at a million rows a second. An unbounded source has
/// no last row to check, so validation checks this many and refuses a sequence that would
/// wrap sooner; give it an `end` or a `number-of-rows` to have every row checked exactly.
pub const UNBOUNDED_SEQUENCE_ROWS: u64 = 1 << 40;

/// How many rows the source emits, for the sequence checks.
enum RowBound {
    /// This many, limited by the option `set_by`.
    Rows { count: u64, set_by: String },
    /// No limit: checked for [`UNBOUNDED_SEQUENCE_ROWS`].
    Unbounded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Random,
    Sequence,
}

weir_connector_api::config_enum!(Kind {
    "random" => Random,
    "sequence" => Sequence,
});

/// How one field is generated.
#[derive(Debug, Clone)]
enum FieldGen {
    Sequence {
        start: f64,
        start_i: i64,
        step_i: i64,
        step: f64,
    },
    RandomBool,
    RandomInt {
        min: i64,
        span: u64,
    },
    RandomFloat {
        min: f64,
        max: f64,
    },
    RandomString {
        length: usize,
    },
    RandomBytes {
        length: usize,
    },
    Pick(Vec<String>),
    /// A decimal: `min` plus a draw below `span` (0: only `min`), unscaled.
    #[cfg(weir_api_1_1)]
    RandomDecimal {
        min: i128,
        span: u64,
    },
    /// `length` elements.
    #[cfg(weir_api_1_1)]
    List {
        item: Box<FieldSpec>,
        length: usize,
    },
    /// `length` entries.
    #[cfg(weir_api_1_1)]
    Map {
        key: Box<FieldSpec>,
        value: Box<FieldSpec>,
        length: usize,
    },
    /// One value per field.
    #[cfg(weir_api_1_1)]
    Struct(Vec<FieldSpec>),
}

#[derive(Debug, Clone)]
struct FieldSpec {
    data_type: DataType,
    generator: FieldGen,
    /// Nulls per 2^32 rows.
    null_threshold: u64,
}

/// Generates the rows of a schema.
#[derive(Debug, Clone)]
pub struct RowGenerator {
    fields: Vec<FieldSpec>,
    seed: u64,
    /// The shortest bounded sequence: (field, length).
    sequence_len: Option<(String, u64)>,
}

const KEYS: [&str; 9] = [
    "kind",
    "start",
    "end",
    "step",
    "min",
    "max",
    "length",
    "values",
    "null-rate",
];
const TS_MIN: i64 = 1_704_067_200_000; // 2024-01-01T00:00:00Z
const DAY_MS: i64 = 86_400_000;

fn closest<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(wanted, c), c))
        .filter(|(d, c)| *d <= (wanted.len().max(c.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_owned())
}

/// Parsed options of one field, with errors collected.
struct FieldOptions<'a> {
    name: &'a str,
    given: BTreeMap<&'a str, &'a str>,
    errors: &'a mut Vec<ConfigError>,
}

impl FieldOptions<'_> {
    fn key(&self, option: &str) -> String {
        format!("fields.{}.{option}", self.name)
    }

    fn parse<T: OptionValue>(&mut self, option: &str) -> Option<T> {
        let raw = self.given.get(option)?;
        match T::parse_value(raw) {
            Ok(value) => Some(value),
            Err(expected) => {
                self.errors.push(ConfigError::InvalidValue {
                    key: self.key(option),
                    value: (*raw).to_owned(),
                    expected,
                });
                None
            }
        }
    }

    fn reject(&mut self, option: &str, reason: impl Into<String>) {
        if let Some(raw) = self.given.get(option) {
            self.errors.push(ConfigError::Rejected {
                key: self.key(option),
                value: (*raw).to_owned(),
                reason: reason.into(),
            });
        }
    }

    /// Reports the given options that `allowed` does not contain.
    fn only(&mut self, allowed: &[&str], context: &str) {
        let extra: Vec<&str> = self
            .given
            .keys()
            .copied()
            .filter(|k| !allowed.contains(k))
            .collect();
        for option in extra {
            self.reject(option, format!("does not apply to {context}"));
        }
    }
}

impl RowGenerator {
    /// A generator for `schema` from the `fields.*` options (prefix stripped); problems go to
    /// `errors`.
    pub fn new(
        schema: &Schema,
        options: &BTreeMap<String, String>,
        seed: u64,
        errors: &mut Vec<ConfigError>,
    ) -> Self {
        // Group `<field>.<option>` by field; report unknown fields and options.
        let mut by_field: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
        for (key, value) in options {
            let Some((field, option)) = key.rsplit_once('.') else {
                errors.push(ConfigError::UnknownKey {
                    key: format!("{FIELDS_PREFIX}{key}"),
                    suggestion: None,
                });
                continue;
            };
            #[cfg(weir_api_1_1)]
            let known = types::resolve(schema, field);
            #[cfg(not(weir_api_1_1))]
            let known = schema.index_of(field).is_some();
            if !known {
                let names = schema.fields.iter().map(|f| f.name.as_str());
                errors.push(ConfigError::UnknownKey {
                    key: format!("{FIELDS_PREFIX}{key}"),
                    suggestion: closest(field, names)
                        .map(|f| format!("{FIELDS_PREFIX}{f}.{option}")),
                });
                continue;
            }
            if !KEYS.contains(&option) {
                errors.push(ConfigError::UnknownKey {
                    key: format!("{FIELDS_PREFIX}{key}"),
                    suggestion: closest(option, KEYS)
                        .map(|o| format!("{FIELDS_PREFIX}{field}.{o}")),
                });
                continue;
            }
            by_field.entry(field).or_default().insert(option, value);
        }
        let mut fields = Vec::with_capacity(schema.fields.len());
        let mut sequence_len: Option<(String, u64)> = None;
        for field in &schema.fields {
            let (spec, len) = Self::spec(field, &mut by_field, errors, false);
            if let Some(len) = len {
                if sequence_len.as_ref().is_none_or(|(_, l)| len < *l) {
                    sequence_len = Some((field.name.clone(), len));
                }
            }
            fields.push(spec);
        }
        RowGenerator {
            fields,
            seed,
            sequence_len,
        }
    }

    /// The spec of `field` (or of a part of a nested field, `nested`) from its options in
    /// `by_field`, with its sequence's length.
    fn spec<'a>(
        field: &Field,
        by_field: &mut BTreeMap<&'a str, BTreeMap<&'a str, &'a str>>,
        errors: &mut Vec<ConfigError>,
        nested: bool,
    ) -> (FieldSpec, Option<u64>) {
        #[cfg(weir_api_1_1)]
        let parts: Vec<FieldSpec> = types::parts(field)
            .iter()
            .map(|part| Self::spec(part, by_field, errors, true).0)
            .collect();
        #[cfg(not(weir_api_1_1))]
        let parts = ();
        let mut opts = FieldOptions {
            name: &field.name,
            given: by_field.remove(field.name.as_str()).unwrap_or_default(),
            errors,
        };
        if nested && opts.parse::<Kind>("kind") == Some(Kind::Sequence) {
            opts.reject(
                "kind",
                "the parts of list, struct and map fields are random: use `random`",
            );
        }
        Self::field(field, &mut opts, parts)
    }

    #[cfg_attr(not(weir_api_1_1), allow(clippy::let_unit_value, unused_variables))]
    fn field(
        field: &Field,
        opts: &mut FieldOptions<'_>,
        #[cfg(weir_api_1_1)] parts: Vec<FieldSpec>,
        #[cfg(not(weir_api_1_1))] parts: (),
    ) -> (FieldSpec, Option<u64>) {
        let kind = opts.parse::<Kind>("kind").unwrap_or(Kind::Random);
        let data_type = field.data_type.clone();
        let mut null_threshold = 0;
        let mut sequence_len = None;
        let generator = match kind {
            Kind::Sequence => {
                opts.only(&["kind", "start", "end", "step"], "sequence fields");
                let numeric = matches!(
                    data_type,
                    DataType::Int64 | DataType::String | DataType::TimestampMillis
                );
                #[cfg(weir_api_1_1)]
                let numeric = numeric || types::integer_sequence(&data_type);
                #[cfg(weir_api_1_1)]
                let float = matches!(data_type, DataType::Float64 | DataType::Float32);
                #[cfg(not(weir_api_1_1))]
                let float = data_type == DataType::Float64;
                if float {
                    let start = opts.parse::<f64>("start").unwrap_or(0.0);
                    let step = opts.parse::<f64>("step").unwrap_or(1.0);
                    if step <= 0.0 {
                        opts.reject("step", "must be greater than 0");
                    }
                    if let Some(end) = opts.parse::<f64>("end") {
                        if end < start {
                            opts.reject("end", format!("must not be below `start` ({start})"));
                        } else if step > 0.0 {
                            // `as` saturates: a sequence longer than u64 counts u64::MAX rows.
                            let len = ((end - start) / step).floor() as u64;
                            sequence_len = Some(len.saturating_add(1));
                        }
                    }
                    FieldGen::Sequence {
                        start,
                        start_i: 0,
                        step_i: 0,
                        step,
                    }
                } else if numeric {
                    #[cfg(weir_api_1_1)]
                    let start = types::sequence_bound(&data_type, opts, "start").unwrap_or(0);
                    #[cfg(not(weir_api_1_1))]
                    let start = opts.parse::<i64>("start").unwrap_or(0);
                    let step = opts.parse::<i64>("step").unwrap_or(1);
                    if step <= 0 {
                        opts.reject("step", "must be at least 1");
                    }
                    #[cfg(weir_api_1_1)]
                    if let Some((lo, _)) = data_type.integer_range() {
                        if i128::from(start) < lo {
                            opts.reject(
                                "start",
                                format!("must be at least {lo} for a {data_type} field"),
                            );
                        }
                    }
                    #[cfg(weir_api_1_1)]
                    let end = types::sequence_bound(&data_type, opts, "end");
                    #[cfg(not(weir_api_1_1))]
                    let end = opts.parse::<i64>("end");
                    if let Some(end) = end {
                        if end < start {
                            opts.reject("end", format!("must not be below `start` ({start})"));
                        } else if step > 0 {
                            let span = end.abs_diff(start);
                            // i64::MIN..=i64::MAX has 2^64 values: one more than u64 counts.
                            sequence_len = Some((span / step.unsigned_abs()).saturating_add(1));
                        }
                    }
                    FieldGen::Sequence {
                        start: 0.0,
                        start_i: start,
                        step_i: step.max(1),
                        step: 0.0,
                    }
                } else {
                    opts.reject(
                        "kind",
                        format!("a {data_type} field cannot be a sequence: use `random`"),
                    );
                    FieldGen::RandomBool
                }
            }
            Kind::Random => {
                if let Some(rate) = opts.parse::<f64>("null-rate") {
                    if !(0.0..=1.0).contains(&rate) {
                        opts.reject("null-rate", "must be between 0 and 1");
                    } else if rate > 0.0 && !field.nullable {
                        opts.reject(
                            "null-rate",
                            format!("field `{}` is not nullable", field.name),
                        );
                    } else {
                        null_threshold = (rate * f64::from(u32::MAX)) as u64;
                    }
                }
                // The types of line 1.1 (`None` for line 1.0's).
                #[cfg(weir_api_1_1)]
                let new_type = types::random(field, opts, parts);
                #[cfg(not(weir_api_1_1))]
                let new_type: Option<FieldGen> = None;
                if let Some(generator) = new_type {
                    generator
                } else {
                    match data_type {
                        DataType::Boolean => {
                            opts.only(&["kind", "null-rate"], "random boolean fields");
                            FieldGen::RandomBool
                        }
                        DataType::Int64 | DataType::TimestampMillis => {
                            opts.only(
                                &["kind", "min", "max", "null-rate"],
                                "random integer fields",
                            );
                            let ts = data_type == DataType::TimestampMillis;
                            let min =
                                opts.parse::<i64>("min")
                                    .unwrap_or(if ts { TS_MIN } else { 0 });
                            let max = opts.parse::<i64>("max").unwrap_or(if ts {
                                min.saturating_add(DAY_MS)
                            } else {
                                1_000_000
                            });
                            if max < min {
                                opts.reject("max", format!("must not be below `min` ({min})"));
                            }
                            FieldGen::RandomInt {
                                min,
                                span: max.abs_diff(min).saturating_add(1),
                            }
                        }
                        DataType::Float64 => {
                            opts.only(&["kind", "min", "max", "null-rate"], "random float fields");
                            let min = opts.parse::<f64>("min").unwrap_or(0.0);
                            let max = opts.parse::<f64>("max").unwrap_or(1_000_000.0);
                            if max < min {
                                opts.reject("max", format!("must not be below `min` ({min})"));
                            }
                            FieldGen::RandomFloat { min, max }
                        }
                        DataType::String => {
                            opts.only(
                                &["kind", "length", "values", "null-rate"],
                                "random string fields",
                            );
                            if let Some(values) = opts.parse::<Vec<String>>("values") {
                                if values.is_empty() {
                                    opts.reject("values", "must list at least one value");
                                }
                                FieldGen::Pick(values)
                            } else {
                                FieldGen::RandomString {
                                    length: Self::length(opts),
                                }
                            }
                        }
                        DataType::Bytes => {
                            opts.only(&["kind", "length", "null-rate"], "random bytes fields");
                            FieldGen::RandomBytes {
                                length: Self::length(opts),
                            }
                        }
                        _ => {
                            let key = opts.key("kind");
                            opts.errors.push(ConfigError::conflict(
                                [key],
                                format!("datagen cannot generate {data_type} fields"),
                            ));
                            FieldGen::RandomBool
                        }
                    }
                }
            }
        };
        (
            FieldSpec {
                data_type,
                generator,
                null_threshold,
            },
            sequence_len,
        )
    }

    fn length(opts: &mut FieldOptions<'_>) -> usize {
        let length = opts.parse::<usize>("length").unwrap_or(10);
        if length > 1 << 20 {
            opts.reject("length", "must be at most 1048576");
            return 10;
        }
        length
    }

    /// The sequences whose values would pass the largest int64 (float sequences: become
    /// infinite) within the rows the source emits: generating them would wrap to negative
    /// values silently. `given` holds the `fields.*` options (prefix stripped), to name the
    /// ones that were set.
    fn sequence_overflows(
        &self,
        schema: &Schema,
        given: &BTreeMap<String, String>,
        bound: &RowBound,
    ) -> Vec<ConfigError> {
        let rows = match bound {
            RowBound::Rows { count, .. } => *count,
            RowBound::Unbounded => UNBOUNDED_SEQUENCE_ROWS,
        };
        let Some(last_row) = rows.checked_sub(1) else {
            return Vec::new();
        };
        let mut errors = Vec::new();
        for (field, spec) in schema.fields.iter().zip(&self.fields) {
            let FieldGen::Sequence {
                start,
                start_i,
                step_i,
                step,
            } = &spec.generator
            else {
                continue;
            };
            let (last, room) = if spec.data_type == DataType::Float64 {
                let last = start + last_row as f64 * step;
                if last.is_finite() {
                    continue;
                }
                (format!("{last}"), "becomes infinite".to_owned())
            } else {
                let step = i128::from((*step_i).max(1));
                let last = i128::from(*start_i) + i128::from(last_row) * step;
                #[cfg(weir_api_1_1)]
                let (max, type_name) = if types::integer_sequence(&spec.data_type) {
                    (
                        types::sequence_max(&spec.data_type),
                        spec.data_type.to_string(),
                    )
                } else {
                    (i128::from(i64::MAX), "int64".to_owned())
                };
                #[cfg(not(weir_api_1_1))]
                let (max, type_name) = (i128::from(i64::MAX), "int64");
                if last <= max {
                    continue;
                }
                let room = (max - i128::from(*start_i)) / step + 1;
                (
                    last.to_string(),
                    format!("passes the largest {type_name} ({max}) after {room} values"),
                )
            };
            let name = &field.name;
            let mut keys: Vec<String> = ["start", "step"]
                .iter()
                .filter(|o| given.contains_key(&format!("{name}.{o}")))
                .map(|o| format!("{FIELDS_PREFIX}{name}.{o}"))
                .collect();
            let reason = match bound {
                RowBound::Rows { count, set_by } => {
                    keys.push(set_by.clone());
                    format!(
                        "the sequence of `{name}` {room}, but the source emits {count} rows (the \
                         last would be {last}): lower `start` or `step`, or emit fewer rows"
                    )
                }
                RowBound::Unbounded => format!(
                    "the sequence of `{name}` {room} and the source is unbounded: set \
                     `{FIELDS_PREFIX}{name}.end` or `number-of-rows`, or lower `start` or `step` \
                     (an unbounded sequence needs room for {UNBOUNDED_SEQUENCE_ROWS} values)"
                ),
            };
            if keys.is_empty() {
                keys.push(format!("{FIELDS_PREFIX}{name}.kind"));
            }
            errors.push(ConfigError::conflict(keys, reason));
        }
        errors
    }

    /// The shortest bounded sequence among the fields: its name and length.
    pub fn sequence_len(&self) -> Option<(String, u64)> {
        self.sequence_len.clone()
    }

    /// Row number `n`.
    pub fn row(&self, n: u64) -> Row {
        let values = self
            .fields
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let mut rng = Rng(mix(self.seed ^ mix(n ^ ((i as u64) << 48))));
                if spec.null_threshold > 0 && (rng.next() >> 32) < spec.null_threshold {
                    return Value::Null;
                }
                Self::value(spec, n, &mut rng)
            })
            .collect();
        Row::insert(values)
    }

    fn value(spec: &FieldSpec, n: u64, rng: &mut Rng) -> Value {
        #[cfg(weir_api_1_1)]
        if let Some(value) = types::value(spec, n, rng) {
            return value;
        }
        match &spec.generator {
            FieldGen::Sequence {
                start,
                start_i,
                step_i,
                step,
            } => {
                if spec.data_type == DataType::Float64 {
                    return Value::Float64(start + n as f64 * step);
                }
                let v = start_i.wrapping_add((n as i64).wrapping_mul(*step_i));
                match spec.data_type {
                    DataType::String => Value::String(v.to_string()),
                    DataType::TimestampMillis => Value::TimestampMillis(v),
                    #[cfg(weir_api_1_1)]
                    ref t => types::integer_value(t, v),
                    #[cfg(not(weir_api_1_1))]
                    _ => Value::Int64(v),
                }
            }
            FieldGen::RandomBool => Value::Boolean(rng.next() & 1 == 1),
            FieldGen::RandomInt { min, span } => {
                let offset = if *span == 0 {
                    rng.next()
                } else {
                    rng.next() % span
                };
                let v = min.wrapping_add(offset as i64);
                #[cfg(weir_api_1_1)]
                return types::integer_value(&spec.data_type, v);
                #[cfg(not(weir_api_1_1))]
                if spec.data_type == DataType::TimestampMillis {
                    Value::TimestampMillis(v)
                } else {
                    Value::Int64(v)
                }
            }
            FieldGen::RandomFloat { min, max } => {
                let unit = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
                Value::Float64(min + (max - min) * unit)
            }
            FieldGen::RandomString { length } => {
                let mut text = vec![0; *length];
                random_text(rng, &mut text);
                Value::String(text.into_iter().map(char::from).collect())
            }
            FieldGen::RandomBytes { length } => {
                Value::Bytes((0..*length).map(|_| rng.next() as u8).collect())
            }
            FieldGen::Pick(values) => {
                let i = (rng.next() % values.len().max(1) as u64) as usize;
                values
                    .get(i)
                    .map_or(Value::Null, |v| Value::String(v.clone()))
            }
            // Made by `types::value` above.
            #[cfg(weir_api_1_1)]
            FieldGen::RandomDecimal { .. }
            | FieldGen::List { .. }
            | FieldGen::Map { .. }
            | FieldGen::Struct(_) => Value::Null,
        }
    }
}

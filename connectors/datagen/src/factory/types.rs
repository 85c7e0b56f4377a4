//! The types of API line 1.1 (narrow and unsigned integers, float32, decimal128, date32,
//! timestamps with unit and zone, list, struct, map): their options and their values.
//!
//! | type | kinds | options (random) | defaults |
//! |---|---|---|---|
//! | `int8`…`int32`, `uint8`…`uint64` | both | `min`, `max` within the type's range | `0`, the smaller of `1000000` and the type's maximum |
//! | `float32` | both | `min`, `max` | `0`, `1000000` |
//! | `decimal(P, S)` | random | `min`, `max` as decimal text (`-12.5`), at most `S` digits after the point | `0`, the smaller of `1000000` and the largest `P`-digit value |
//! | `date` | both | `min`, `max` (`start`, `end`) as `YYYY-MM-DD` or days since 1970-01-01; `step` in days | 2024-01-01 and 365 days later |
//! | `timestamp(UNIT[, ZONE])` | both | `min`, `max` in the unit since the epoch | 2024-01-01T00:00:00Z and one day later |
//! | `list<T>` | random | `length` (elements per list) | `3` |
//! | `map<K, V>` | random | `length` (entries per map) | `3` |
//! | `struct<…>` | random | — | — |
//!
//! The parts of nested fields take their own options under the field's name:
//! `fields.<list>.element.<option>`, `fields.<struct>.<field>.<option>`,
//! `fields.<map>.key.<option>` and `fields.<map>.value.<option>` (nested parts are random;
//! map keys are never null and may repeat when their range is small).

use weir_connector_api::config::ConfigError;
use weir_connector_api::row::{parse_decimal, DataType, Field, Schema, TimeUnit, Value};

use super::{FieldGen, FieldOptions, FieldSpec, Rng, DAY_MS, TS_MIN};

/// 2024-01-01 in days since the epoch.
const DATE_MIN: i64 = 19_723;

/// Whether `path` (`a`, `a.element`, `a.b.key`…) names a field or a part of a nested field.
pub(super) fn resolve(schema: &Schema, path: &str) -> bool {
    if schema.index_of(path).is_some() {
        return true;
    }
    let mut parts = path.split('.');
    let Some(top) = parts
        .next()
        .and_then(|p| schema.fields.iter().find(|f| f.name == p))
    else {
        return false;
    };
    let mut t = &top.data_type;
    for part in parts {
        t = match (t, part) {
            (DataType::List(item), "element") => item,
            (DataType::Map(key, _), "key") => key,
            (DataType::Map(_, value), "value") => value,
            (DataType::Struct(fields), name) => match fields.iter().find(|f| f.name == name) {
                Some(f) => &f.data_type,
                None => return false,
            },
            _ => return false,
        };
    }
    true
}

/// The parts of a nested field, as fields named by their option path.
pub(super) fn parts(field: &Field) -> Vec<Field> {
    let name = &field.name;
    match &field.data_type {
        DataType::List(item) => vec![Field::new(
            format!("{name}.element"),
            (**item).clone(),
            true,
        )],
        DataType::Struct(fields) => fields
            .iter()
            .map(|f| {
                Field::new(
                    format!("{name}.{}", f.name),
                    f.data_type.clone(),
                    f.nullable,
                )
            })
            .collect(),
        DataType::Map(key, value) => vec![
            Field::new(format!("{name}.key"), (**key).clone(), false),
            Field::new(format!("{name}.value"), (**value).clone(), true),
        ],
        _ => Vec::new(),
    }
}

/// Whether integer sequences of this type are generated (beyond line 1.0's int64 and
/// millisecond timestamps).
pub(super) fn integer_sequence(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Date32
            | DataType::Timestamp { .. }
    )
}

/// The largest value a sequence of this type may reach.
pub(super) fn sequence_max(data_type: &DataType) -> i128 {
    match data_type {
        DataType::Date32 => i32::MAX.into(),
        // uint64 sequences count in int64 (their `start`, `end` and `step` are int64).
        DataType::UInt64 => i64::MAX.into(),
        t => t.integer_range().map_or(i64::MAX.into(), |(_, max)| max),
    }
}

/// The value of an integer draw or sequence step `v` for a field of this type.
pub(super) fn integer_value(data_type: &DataType, v: i64) -> Value {
    match data_type {
        DataType::TimestampMillis => Value::TimestampMillis(v),
        // The bits of an unsigned draw (see `random`): `v as u64` is the value.
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            Value::UInt64(v as u64)
        }
        DataType::Date32 => Value::Date32(v as i32),
        DataType::Timestamp { unit, .. } => Value::Timestamp(v, *unit),
        _ => Value::Int64(v),
    }
}

/// Parses a date option: `YYYY-MM-DD` or a day number.
fn date(opts: &mut FieldOptions<'_>, option: &str) -> Option<i64> {
    let raw = (*opts.given.get(option)?).trim().to_owned();
    if let Ok(days) = raw.parse::<i32>() {
        return Some(days.into());
    }
    match chrono::NaiveDate::parse_from_str(&raw, "%Y-%m-%d") {
        Ok(d) => Some(
            d.signed_duration_since(chrono::NaiveDate::default())
                .num_days(),
        ),
        Err(_) => {
            opts.errors.push(ConfigError::InvalidValue {
                key: opts.key(option),
                value: raw,
                expected: "a date like 2024-01-31, or a day number since 1970-01-01".into(),
            });
            None
        }
    }
}

/// A sequence's `start`, `end` of a date field in days (other fields: integers).
pub(super) fn sequence_bound(
    data_type: &DataType,
    opts: &mut FieldOptions<'_>,
    option: &str,
) -> Option<i64> {
    if *data_type == DataType::Date32 {
        date(opts, option)
    } else {
        opts.parse::<i64>(option)
    }
}

/// A decimal option at `scale` (unscaled), refusing more digits after the point.
fn decimal(opts: &mut FieldOptions<'_>, option: &str, scale: i8) -> Option<i128> {
    let raw = (*opts.given.get(option)?).trim().to_owned();
    let parsed = parse_decimal(&raw, scale);
    if parsed.is_none() {
        opts.errors.push(ConfigError::InvalidValue {
            key: opts.key(option),
            value: raw,
            expected: format!("a decimal number with at most {scale} digits after the point"),
        });
    }
    parsed
}

/// The generator of a random field of a line 1.1 type, `None` for the types of line 1.0.
/// `parts` are the specs of a nested field's parts ([`parts`]).
pub(super) fn random(
    field: &Field,
    opts: &mut FieldOptions<'_>,
    parts: Vec<FieldSpec>,
) -> Option<FieldGen> {
    let data_type = &field.data_type;
    let integer =
        |opts: &mut FieldOptions<'_>, lo: i128, hi: i128, default_min: i128, default_span: i128| {
            opts.only(
                &["kind", "min", "max", "null-rate"],
                "random integer, date and timestamp fields",
            );
            let parse = |opts: &mut FieldOptions<'_>, option: &str| {
                if *data_type == DataType::Date32 {
                    date(opts, option).map(i128::from)
                } else if *data_type == DataType::UInt64 {
                    opts.parse::<u64>(option).map(i128::from)
                } else {
                    opts.parse::<i64>(option).map(i128::from)
                }
            };
            let mut min = parse(opts, "min").unwrap_or(default_min);
            if !(lo..=hi).contains(&min) {
                opts.reject(
                    "min",
                    format!("must be between {lo} and {hi} for a {data_type} field"),
                );
                min = lo.max(0);
            }
            let mut max = parse(opts, "max").unwrap_or_else(|| (min + default_span).min(hi));
            if !(lo..=hi).contains(&max) {
                opts.reject(
                    "max",
                    format!("must be between {lo} and {hi} for a {data_type} field"),
                );
                max = min;
            }
            if max < min {
                opts.reject("max", format!("must not be below `min` ({min})"));
                max = min;
            }
            // Unsigned values travel as the bits of an i64 (`integer_value` turns them back):
            // wrapping i64 arithmetic on those bits is the u64 arithmetic.
            FieldGen::RandomInt {
                min: min as i64,
                span: u64::try_from(max - min + 1).unwrap_or(0),
            }
        };
    Some(match data_type {
        DataType::Date32 => integer(opts, i32::MIN.into(), i32::MAX.into(), DATE_MIN.into(), 365),
        DataType::Timestamp { unit, .. } => {
            let scale = |ms: i64| -> i128 {
                let ms = i128::from(ms);
                match unit {
                    TimeUnit::Second => ms / 1_000,
                    TimeUnit::Microsecond => ms * 1_000,
                    TimeUnit::Nanosecond => ms * 1_000_000,
                    _ => ms,
                }
            };
            integer(
                opts,
                i64::MIN.into(),
                i64::MAX.into(),
                scale(TS_MIN),
                scale(DAY_MS),
            )
        }
        t if t.integer_range().is_some() && *t != DataType::Int64 => {
            let (lo, hi) = t.integer_range().unwrap_or((0, 0));
            integer(opts, lo, hi, 0, 1_000_000.min(hi))
        }
        DataType::Float32 => {
            opts.only(&["kind", "min", "max", "null-rate"], "random float fields");
            let min = opts.parse::<f64>("min").unwrap_or(0.0);
            let max = opts.parse::<f64>("max").unwrap_or(1_000_000.0);
            let limit = f64::from(f32::MAX);
            if max < min {
                opts.reject("max", format!("must not be below `min` ({min})"));
            }
            for (option, v) in [("min", min), ("max", max)] {
                if !(-limit..=limit).contains(&v) {
                    opts.reject(option, "must be a finite float32 value");
                }
            }
            FieldGen::RandomFloat { min, max }
        }
        DataType::Decimal128 { precision, scale } => {
            opts.only(
                &["kind", "min", "max", "null-rate"],
                "random decimal fields",
            );
            let largest = 10_i128.pow(u32::from(*precision)) - 1;
            let min = decimal(opts, "min", *scale).unwrap_or(0);
            let one_million = parse_decimal("1000000", *scale).unwrap_or(largest);
            let max = decimal(opts, "max", *scale).unwrap_or(one_million.min(largest));
            let mut span = 0;
            let digits = format!("must have at most {precision} digits for a {data_type} field");
            if min < -largest || min > largest {
                opts.reject("min", digits);
            } else if max < -largest || max > largest {
                opts.reject("max", digits);
            } else if max < min {
                opts.reject("max", "must not be below `min`");
            } else if let Ok(s) = u64::try_from(max - min + 1) {
                span = s;
            } else {
                opts.reject(
                    "max",
                    "the range from `min` to `max` is too wide: at most 2^64 - 1 distinct values",
                );
            }
            FieldGen::RandomDecimal { min, span }
        }
        DataType::List(_) | DataType::Map(..) => {
            opts.only(
                &["kind", "length", "null-rate"],
                "random list and map fields",
            );
            let length = opts.parse::<usize>("length").unwrap_or(3);
            let length = if length > 1 << 16 {
                opts.reject("length", "must be at most 65536");
                3
            } else {
                length
            };
            let mut parts = parts.into_iter();
            match (data_type, parts.next(), parts.next()) {
                (DataType::List(_), Some(item), _) => FieldGen::List {
                    item: Box::new(item),
                    length,
                },
                (_, Some(key), Some(value)) => FieldGen::Map {
                    key: Box::new(key),
                    value: Box::new(value),
                    length,
                },
                _ => FieldGen::RandomBool,
            }
        }
        DataType::Struct(_) => {
            opts.only(&["kind", "null-rate"], "random struct fields");
            FieldGen::Struct(parts)
        }
        _ => return None,
    })
}

/// The value of a part of a nested field: its null draw, then its value.
fn part(spec: &FieldSpec, n: u64, rng: &mut Rng) -> Value {
    if spec.null_threshold > 0 && (rng.next() >> 32) < spec.null_threshold {
        return Value::Null;
    }
    super::RowGenerator::value(spec, n, rng)
}

/// The value of the line 1.1 generators (`None` for the others).
pub(super) fn value(spec: &FieldSpec, n: u64, rng: &mut Rng) -> Option<Value> {
    Some(match &spec.generator {
        FieldGen::RandomDecimal { min, span } => {
            let offset = if *span == 0 { 0 } else { rng.next() % span };
            let scale = match spec.data_type {
                DataType::Decimal128 { scale, .. } => scale,
                _ => 0,
            };
            Value::Decimal128 {
                value: min + i128::from(offset),
                scale,
            }
        }
        FieldGen::List { item, length } => {
            Value::List((0..*length).map(|_| part(item, n, rng)).collect())
        }
        FieldGen::Map { key, value, length } => Value::Map(
            (0..*length)
                .map(|_| (part(key, n, rng), part(value, n, rng)))
                .collect(),
        ),
        FieldGen::Struct(fields) => Value::Struct(fields.iter().map(|f| part(f, n, rng)).collect()),
        FieldGen::RandomFloat { min, max } if spec.data_type == DataType::Float32 => {
            let unit = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
            Value::Float32((min + (max - min) * unit) as f32)
        }
        FieldGen::Sequence { start, step, .. } if spec.data_type == DataType::Float32 => {
            Value::Float32((start + n as f64 * step) as f32)
        }
        _ => return None,
    })
}

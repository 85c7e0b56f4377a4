//! [`RowSerializer`]: rows in checkpoints (the inputs of lookups in flight at a barrier).

use weir_connector_api::row::{Row, TimeUnit, Value};
use weir_connector_api::state::{StateError, StateReader, StateWriter, VersionedSerializer};
use weir_formats::chunk::{kind_of_tag, kind_tag};

/// Serializes rows: the kind (one byte), the number of values, then each value as a tag byte
/// and its payload.
///
/// Version 1 had the values of API line 1.0 (tags 0–6). Version 2 adds those of line 1.1:
/// 7 uint64, 8 float32 (bits), 9 decimal (16 bytes little-endian, then the scale), 10 date
/// (days), 11 timestamp (unit, then the count), 12 list, 13 struct (a count, then values),
/// 14 map (a count, then key and value). Version 1 bytes read as they always did (a version 1
/// writer never wrote the new tags); values nested deeper than 64 levels are refused.
#[derive(Debug, Clone, Copy, Default)]
pub struct RowSerializer;

const VERSION: u32 = 2;

/// How deeply stored values may nest (schemas nest at most 16 levels).
const MAX_DEPTH: usize = 64;

fn put_value(w: &mut StateWriter, value: &Value) -> Result<(), StateError> {
    match value {
        Value::Null => w.put_u8(0),
        Value::Boolean(b) => w.put_u8(1).put_bool(*b),
        Value::Int64(n) => w.put_u8(2).put_i64(*n),
        Value::Float64(f) => w.put_u8(3).put_u64(f.to_bits()),
        Value::String(s) => w.put_u8(4).put_str(s),
        Value::Bytes(b) => w.put_u8(5).put_bytes(b),
        Value::TimestampMillis(t) => w.put_u8(6).put_i64(*t),
        Value::UInt64(n) => w.put_u8(7).put_u64(*n),
        Value::Float32(f) => w.put_u8(8).put_u32(f.to_bits()),
        Value::Decimal128 { value, scale } => w
            .put_u8(9)
            .put_raw(&value.to_le_bytes())
            .put_u8(scale.to_le_bytes()[0]),
        Value::Date32(d) => w.put_u8(10).put_i32(*d),
        Value::Timestamp(t, unit) => w.put_u8(11).put_u8(unit_tag(*unit)).put_i64(*t),
        Value::List(items) | Value::Struct(items) => {
            w.put_u8(if matches!(value, Value::List(_)) {
                12
            } else {
                13
            })
            .put_len(items.len());
            for item in items {
                put_value(w, item)?;
            }
            w
        }
        Value::Map(entries) => {
            w.put_u8(14).put_len(entries.len());
            for (k, v) in entries {
                put_value(w, k)?;
                put_value(w, v)?;
            }
            w
        }
        other => {
            return Err(StateError::malformed(
                "row",
                format!("a value this version cannot store: {other:?}"),
            ))
        }
    };
    Ok(())
}

fn unit_tag(unit: TimeUnit) -> u8 {
    match unit {
        TimeUnit::Second => 0,
        TimeUnit::Microsecond => 2,
        TimeUnit::Nanosecond => 3,
        _ => 1,
    }
}

fn get_value(r: &mut StateReader<'_>, depth: usize) -> Result<Value, StateError> {
    if depth > MAX_DEPTH {
        return Err(StateError::malformed(
            "row",
            format!("values nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    Ok(match r.get_u8()? {
        0 => Value::Null,
        1 => Value::Boolean(r.get_bool()?),
        2 => Value::Int64(r.get_i64()?),
        3 => Value::Float64(f64::from_bits(r.get_u64()?)),
        4 => Value::String(r.get_str()?.to_owned()),
        5 => Value::Bytes(r.get_bytes()?.to_vec()),
        6 => Value::TimestampMillis(r.get_i64()?),
        7 => Value::UInt64(r.get_u64()?),
        8 => Value::Float32(f32::from_bits(r.get_u32()?)),
        9 => {
            let value = i128::from_le_bytes(r.get_array::<16>()?);
            let scale = i8::from_le_bytes([r.get_u8()?]);
            Value::Decimal128 { value, scale }
        }
        10 => Value::Date32(r.get_i32()?),
        11 => {
            let unit = match r.get_u8()? {
                0 => TimeUnit::Second,
                1 => TimeUnit::Millisecond,
                2 => TimeUnit::Microsecond,
                3 => TimeUnit::Nanosecond,
                other => return Err(StateError::malformed("row", format!("time unit {other}"))),
            };
            Value::Timestamp(r.get_i64()?, unit)
        }
        tag @ (12 | 13) => {
            let len = r.get_len()?;
            let mut items = Vec::with_capacity(len.min(r.remaining()));
            for _ in 0..len {
                items.push(get_value(r, depth + 1)?);
            }
            if tag == 12 {
                Value::List(items)
            } else {
                Value::Struct(items)
            }
        }
        14 => {
            let len = r.get_len()?;
            let mut entries = Vec::with_capacity(len.min(r.remaining()));
            for _ in 0..len {
                let k = get_value(r, depth + 1)?;
                entries.push((k, get_value(r, depth + 1)?));
            }
            Value::Map(entries)
        }
        other => return Err(StateError::malformed("row", format!("value tag {other}"))),
    })
}

impl VersionedSerializer<Row> for RowSerializer {
    fn version(&self) -> u32 {
        VERSION
    }

    fn serialize(&self, row: &Row) -> Result<Vec<u8>, StateError> {
        let mut w = StateWriter::new();
        w.put_u8(kind_tag(row.kind)).put_len(row.values.len());
        for value in &row.values {
            put_value(&mut w, value)?;
        }
        w.finish()
    }

    fn deserialize(&self, version: u32, bytes: &[u8]) -> Result<Row, StateError> {
        if !(1..=VERSION).contains(&version) {
            return Err(StateError::unknown_version("row", version, &[1, VERSION]));
        }
        let mut r = StateReader::new(bytes);
        let tag = r.get_u8()?;
        let kind =
            kind_of_tag(tag).ok_or_else(|| StateError::malformed("row", format!("kind {tag}")))?;
        let len = r.get_len()?;
        let mut values = Vec::with_capacity(len.min(r.remaining()));
        for _ in 0..len {
            values.push(get_value(&mut r, 0)?);
        }
        r.finish()?;
        Ok(Row::with_kind(kind, values))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use weir_connector_api::row::RowKind;

    use super::*;

    #[test]
    fn rows_round_trip_and_damage_is_refused() {
        let row = Row::with_kind(
            RowKind::UpdateAfter,
            vec![
                Value::Null,
                Value::Boolean(true),
                Value::Int64(-7),
                Value::Float64(2.5),
                Value::String("Ada".into()),
                Value::Bytes(vec![0, 255]),
                Value::TimestampMillis(1_704_067_200_000),
            ],
        );
        let bytes = RowSerializer.serialize(&row).unwrap();
        // Rows of line 1.0's values are the bytes version 1 wrote: both versions read them.
        assert_eq!(RowSerializer.deserialize(1, &bytes).unwrap(), row);
        assert_eq!(RowSerializer.deserialize(2, &bytes).unwrap(), row);
        assert!(RowSerializer.deserialize(3, &bytes).is_err());
        assert!(RowSerializer
            .deserialize(1, &bytes[..bytes.len() - 1])
            .is_err());
        let mut bad_tag = bytes.clone();
        bad_tag[0] = 9;
        assert!(RowSerializer.deserialize(1, &bad_tag).is_err());
    }

    #[test]
    fn values_of_every_type_round_trip_and_deep_nesting_is_refused() {
        let row = Row::insert(vec![
            Value::UInt64(u64::MAX),
            Value::Float32(-0.1),
            Value::Decimal128 {
                value: i128::MIN + 1,
                scale: -3,
            },
            Value::Date32(-719_162),
            Value::Timestamp(-1, TimeUnit::Nanosecond),
            Value::List(vec![Value::Null, Value::Int64(1)]),
            Value::Struct(vec![Value::String("a".into()), Value::List(vec![])]),
            Value::Map(vec![(Value::String("k".into()), Value::Float64(1.5))]),
        ]);
        let bytes = RowSerializer.serialize(&row).unwrap();
        assert_eq!(RowSerializer.deserialize(2, &bytes).unwrap(), row);
        let mut deep = Value::Null;
        for _ in 0..=MAX_DEPTH + 1 {
            deep = Value::List(vec![deep]);
        }
        let bytes = RowSerializer.serialize(&Row::insert(vec![deep])).unwrap();
        assert!(RowSerializer.deserialize(2, &bytes).is_err());
    }
}

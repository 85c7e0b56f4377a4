//! [`RowSerializer`]: rows in checkpoints (the inputs of lookups in flight at a barrier).

use weir_connector_api::row::{Row, Value};
use weir_connector_api::state::{StateError, StateReader, StateWriter, VersionedSerializer};
use weir_formats::chunk::{kind_of_tag, kind_tag};

/// Serializes rows, version 1: the kind (one byte), the number of values, then each value as
/// a tag byte and its payload.
#[derive(Debug, Clone, Copy, Default)]
pub struct RowSerializer;

const VERSION: u32 = 1;

impl VersionedSerializer<Row> for RowSerializer {
    fn version(&self) -> u32 {
        VERSION
    }

    fn serialize(&self, row: &Row) -> Result<Vec<u8>, StateError> {
        let mut w = StateWriter::new();
        w.put_u8(kind_tag(row.kind)).put_len(row.values.len());
        for value in &row.values {
            match value {
                Value::Null => w.put_u8(0),
                Value::Boolean(b) => w.put_u8(1).put_bool(*b),
                Value::Int64(n) => w.put_u8(2).put_i64(*n),
                Value::Float64(f) => w.put_u8(3).put_u64(f.to_bits()),
                Value::String(s) => w.put_u8(4).put_str(s),
                Value::Bytes(b) => w.put_u8(5).put_bytes(b),
                Value::TimestampMillis(t) => w.put_u8(6).put_i64(*t),
                other => {
                    return Err(StateError::malformed(
                        "row",
                        format!("a value this version cannot store: {other:?}"),
                    ))
                }
            };
        }
        w.finish()
    }

    fn deserialize(&self, version: u32, bytes: &[u8]) -> Result<Row, StateError> {
        if version != VERSION {
            return Err(StateError::unknown_version("row", version, &[VERSION]));
        }
        let mut r = StateReader::new(bytes);
        let tag = r.get_u8()?;
        let kind =
            kind_of_tag(tag).ok_or_else(|| StateError::malformed("row", format!("kind {tag}")))?;
        let len = r.get_len()?;
        let mut values = Vec::with_capacity(len.min(r.remaining()));
        for _ in 0..len {
            values.push(match r.get_u8()? {
                0 => Value::Null,
                1 => Value::Boolean(r.get_bool()?),
                2 => Value::Int64(r.get_i64()?),
                3 => Value::Float64(f64::from_bits(r.get_u64()?)),
                4 => Value::String(r.get_str()?.to_owned()),
                5 => Value::Bytes(r.get_bytes()?.to_vec()),
                6 => Value::TimestampMillis(r.get_i64()?),
                other => return Err(StateError::malformed("row", format!("value tag {other}"))),
            });
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
        assert_eq!(RowSerializer.deserialize(1, &bytes).unwrap(), row);
        assert!(RowSerializer.deserialize(2, &bytes).is_err());
        assert!(RowSerializer
            .deserialize(1, &bytes[..bytes.len() - 1])
            .is_err());
        let mut bad_tag = bytes.clone();
        bad_tag[0] = 9;
        assert!(RowSerializer.deserialize(1, &bad_tag).is_err());
    }
}

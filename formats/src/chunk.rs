//! [`Chunk`]: the columnar element of pipeline jobs — one Arrow [`RecordBatch`] with the
//! changelog kinds of its rows — and its adapters to and from [`Row`]s, re-exported from
//! `weir_connector_api::columnar` (API line 1.1, where the Arrow factory contract lives); and
//! [`ChunkSerializer`], chunks in checkpoints.
//!
//! ```
//! use weir_connector_api::row::{DataType, Field, Row, Schema, Value};
//! use weir_formats::chunk::{arrow_schema, Chunk};
//!
//! let schema = Schema::new(vec![
//!     Field::new("id", DataType::Int64, false),
//!     Field::new("name", DataType::String, true),
//! ]);
//! let rows = vec![
//!     Row::insert(vec![Value::Int64(1), Value::String("a".into())]),
//!     Row::insert(vec![Value::Int64(2), Value::Null]),
//! ];
//! let chunk = Chunk::from_rows(&arrow_schema(&schema), &rows)?;
//! assert_eq!(chunk.num_rows(), 2);
//! assert_eq!(chunk.to_rows()?, rows);
//! # Ok::<(), weir_formats::chunk::ChunkError>(())
//! ```
//!
//! [`RecordBatch`]: arrow_array::RecordBatch
//! [`Row`]: weir_connector_api::row::Row

use std::io::Cursor;
use std::sync::Arc;

use weir_connector_api::row::RowKind;
use weir_connector_api::state::{StateError, VersionedSerializer};

pub use weir_connector_api::columnar::{
    array_of, arrow_field, arrow_schema, arrow_type, Chunk, ChunkError, ChunkTimes,
};

/// Chunks in checkpoints (channel state of unaligned checkpoints): version 1 is a kinds flag
/// byte (0: all inserts; 1: a u32 big-endian count and one tag byte per row, 0 = +I, 1 = -U,
/// 2 = +U, 3 = -D) followed by the batch as an Arrow IPC stream.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChunkSerializer;

const CHUNK_VERSION: u32 = 1;

/// A changelog kind's tag byte in Weir's state formats (chunks here, pipeline rows in the
/// `weir` binary): 0 = +I, 1 = -U, 2 = +U, 3 = -D.
pub fn kind_tag(kind: RowKind) -> u8 {
    match kind {
        RowKind::Insert => 0,
        RowKind::UpdateBefore => 1,
        RowKind::UpdateAfter => 2,
        RowKind::Delete => 3,
    }
}

/// The changelog kind of a tag byte ([`kind_tag`]); `None` for an unknown tag.
pub fn kind_of_tag(tag: u8) -> Option<RowKind> {
    match tag {
        0 => Some(RowKind::Insert),
        1 => Some(RowKind::UpdateBefore),
        2 => Some(RowKind::UpdateAfter),
        3 => Some(RowKind::Delete),
        _ => None,
    }
}

fn malformed(reason: impl Into<String>) -> StateError {
    StateError::malformed("chunk", reason)
}

impl VersionedSerializer<Chunk> for ChunkSerializer {
    fn version(&self) -> u32 {
        CHUNK_VERSION
    }

    fn serialize(&self, chunk: &Chunk) -> Result<Vec<u8>, StateError> {
        let mut out = Vec::new();
        match chunk.kinds() {
            None => out.push(0),
            Some(kinds) => {
                out.push(1);
                let count = u32::try_from(kinds.len())
                    .map_err(|_| malformed("more than 2^32 rows in one chunk"))?;
                out.extend_from_slice(&count.to_be_bytes());
                out.extend(kinds.iter().map(|k| kind_tag(*k)));
            }
        }
        let mut writer =
            arrow_ipc::writer::StreamWriter::try_new(&mut out, chunk.batch().schema_ref())
                .map_err(|e| malformed(e.to_string()))?;
        writer
            .write(chunk.batch())
            .and_then(|()| writer.finish())
            .map_err(|e| malformed(e.to_string()))?;
        drop(writer);
        Ok(out)
    }

    fn deserialize(&self, version: u32, bytes: &[u8]) -> Result<Chunk, StateError> {
        if version != CHUNK_VERSION {
            return Err(StateError::unknown_version(
                "chunk",
                version,
                &[CHUNK_VERSION],
            ));
        }
        let (flag, rest) = bytes
            .split_first()
            .ok_or_else(|| malformed("no kinds flag"))?;
        let (kinds, ipc) = match flag {
            0 => (None, rest),
            1 => {
                let (count, rest) = rest
                    .split_first_chunk::<4>()
                    .ok_or_else(|| malformed("the kinds count is cut short"))?;
                let count = u32::from_be_bytes(*count) as usize;
                let tags = rest
                    .get(..count)
                    .ok_or_else(|| malformed("the kinds are cut short"))?;
                let kinds = tags
                    .iter()
                    .map(|t| {
                        kind_of_tag(*t)
                            .ok_or_else(|| malformed(format!("unknown row kind tag {t}")))
                    })
                    .collect::<Result<Arc<[RowKind]>, _>>()?;
                (Some(kinds), rest.get(count..).unwrap_or_default())
            }
            other => return Err(malformed(format!("unknown kinds flag {other}"))),
        };
        let mut reader = arrow_ipc::reader::StreamReader::try_new(Cursor::new(ipc), None)
            .map_err(|e| malformed(e.to_string()))?;
        let batch = reader
            .next()
            .ok_or_else(|| malformed("the IPC stream holds no batch"))?
            .map_err(|e| malformed(e.to_string()))?;
        if reader.next().is_some() {
            return Err(malformed("the IPC stream holds more than one batch"));
        }
        Chunk::new(batch, kinds).map_err(|e| malformed(e.to_string()))
    }
}

#[cfg(test)]
mod tests;

//! Columns (API line 1.1, cargo feature `arrow`): [`Chunk`], the columnar element of pipeline
//! jobs — one Arrow [`RecordBatch`] with the changelog kinds of its rows — the mapping between
//! pipeline rows and chunks, and the Arrow factory contract: [`ChunkSourceFactory`] and
//! [`ChunkSinkFactory`], the abilities a connector declares (with
//! [`ConnectorFactory::as_chunk_source`](crate::factory::ConnectorFactory::as_chunk_source) and
//! [`as_chunk_sink`](crate::factory::ConnectorFactory::as_chunk_sink)) when it reads or writes
//! columns natively.
//!
//! A pipeline whose parts all work on columns carries chunks instead of rows (one runtime
//! record is one chunk of up to a few thousand rows). A connector with only the Row factories
//! of line 1.0 keeps working: the runtime hands a Row sink the exact rows of each chunk
//! ([`Chunk::for_each_row`]), and a Row source keeps its pipeline on rows.
//!
//! The feature is off by default so a connector that never sees columns does not compile
//! Arrow; `weir-formats` turns it on. It is a feature rather than a plain dependency of line
//! 1.1 so that connectors building on line 1.0 and 1.1 from one source (gated by the
//! `weir_api_1_1` cfg their build script sets) never name a feature line 1.0 lacks.
//!
//! | [`DataType`] | Arrow type | array | row [`Value`] |
//! |---|---|---|---|
//! | `Boolean` | `Boolean` | [`BooleanArray`] | `Boolean` |
//! | `Int8`, `Int16`, `Int32` | `Int8`, `Int16`, `Int32` | `Int8Array`... | `Int64` (in range) |
//! | `Int64` | `Int64` | [`Int64Array`] | `Int64` |
//! | `UInt8` ... `UInt64` | `UInt8` ... `UInt64` | `UInt8Array`... | `UInt64` (in range) |
//! | `Float32` | `Float32` | `Float32Array` | `Float32` |
//! | `Float64` | `Float64` | [`Float64Array`] | `Float64` |
//! | `Decimal128 { precision, scale }` | `Decimal128(precision, scale)` | `Decimal128Array` | `Decimal128` (rescaled up exactly; precision checked) |
//! | `String` | `Utf8` | [`StringArray`] | `String` |
//! | `Bytes` | `Binary` | [`BinaryArray`] | `Bytes` |
//! | `Date32` | `Date32` | `Date32Array` | `Date32` |
//! | `TimestampMillis` | `Timestamp(Millisecond, None)` | [`TimestampMillisecondArray`] | `TimestampMillis` |
//! | `Timestamp { unit, tz }` | `Timestamp(unit, tz)` | `TimestampSecondArray`... | `Timestamp(value, unit)` |
//! | `List(item)` | `List(item: nullable)` | `ListArray` | `List` |
//! | `Struct(fields)` | `Struct(fields)` | `StructArray` | `Struct` (field order) |
//! | `Map(key, value)` | `Map(entries: Struct(keys not null, values), unsorted)` | `MapArray` | `Map` |
//!
//! Timestamp columns also take `Int64` values (a pipeline's event-time field), and a
//! millisecond column with a zone takes `TimestampMillis` values. Nested columns nest these
//! mappings; a value of the wrong kind, out of range or over a decimal's precision is a
//! [`ChunkError`].
//!
//! ```
//! use weir_connector_api::columnar::{arrow_schema, Chunk};
//! use weir_connector_api::row::{DataType, Field, Row, Schema, Value};
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
//! # Ok::<(), weir_connector_api::columnar::ChunkError>(())
//! ```
//!
//! [`BooleanArray`]: arrow_array::BooleanArray
//! [`Int64Array`]: arrow_array::Int64Array
//! [`Float64Array`]: arrow_array::Float64Array
//! [`StringArray`]: arrow_array::StringArray
//! [`BinaryArray`]: arrow_array::BinaryArray
//! [`TimestampMillisecondArray`]: arrow_array::TimestampMillisecondArray
//! [`DataType`]: crate::row::DataType
//! [`Value`]: crate::row::Value

use std::sync::Arc;

use arrow_array::{Array, Int64Array, RecordBatch, TimestampMillisecondArray};
use arrow_schema::ArrowError;

use crate::row::RowKind;

mod factory;
mod rows;
#[cfg(test)]
mod tests;

pub use factory::{ChunkSinkFactory, ChunkSinkParts, ChunkSourceFactory, ChunkSplitter, Columnar};
pub use rows::{array_of, arrow_field, arrow_schema, arrow_type, arrow_unit};

/// The Arrow crates chunks are made of, at the version this line uses: build columns with
/// these (or depend on the same versions) so that your arrays are the runtime's.
pub mod arrow {
    pub use arrow_array as array;
    pub use arrow_schema as schema;
}

/// What went wrong converting between rows and chunks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError {
    /// A row's value does not fit its column's type.
    #[error(
        "row {row}, field `{field}`: a {found} value in a {expected} column; the source \
         produced a value of another type than its schema declares"
    )]
    TypeMismatch {
        /// The row's position in the chunk.
        row: usize,
        /// The field's name.
        field: String,
        /// The column's Arrow type.
        expected: String,
        /// What the row held.
        found: &'static str,
    },
    /// A column of a type pipeline rows cannot hold.
    #[error(
        "column `{field}` is {data_type}, which pipeline rows cannot hold (they hold the \
         Arrow types of `weir_connector_api::columnar::arrow_type`: integers, floats, \
         decimal128, utf8, binary, date32, timestamps, list, struct and map)"
    )]
    UnsupportedType {
        /// The field's name.
        field: String,
        /// Its Arrow type.
        data_type: String,
    },
    /// Arrow refused the batch (e.g. a null in a non-nullable column).
    #[error("cannot build the record batch: {0}")]
    Arrow(#[from] ArrowError),
}

/// One element of a columnar pipeline: a record batch and the changelog kinds of its rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    batch: RecordBatch,
    /// One kind per row; `None` when every row is an insert.
    kinds: Option<Arc<[RowKind]>>,
}

impl Chunk {
    /// A chunk of inserts.
    pub fn inserts(batch: RecordBatch) -> Self {
        Chunk { batch, kinds: None }
    }

    /// A chunk with the kinds of its rows (`None`: all inserts). A kinds list of the wrong
    /// length is refused.
    pub fn new(batch: RecordBatch, kinds: Option<Arc<[RowKind]>>) -> Result<Self, ChunkError> {
        if let Some(k) = &kinds {
            if k.len() != batch.num_rows() {
                return Err(ChunkError::Arrow(ArrowError::InvalidArgumentError(
                    format!("{} changelog kinds for {} rows", k.len(), batch.num_rows()),
                )));
            }
        }
        // All inserts is stored as no kinds, so equal chunks compare equal.
        let kinds = kinds.filter(|k| k.iter().any(|kind| *kind != RowKind::Insert));
        Ok(Chunk { batch, kinds })
    }

    /// The record batch.
    pub fn batch(&self) -> &RecordBatch {
        &self.batch
    }

    /// The kinds of the rows, `None` when all are inserts.
    pub fn kinds(&self) -> Option<&[RowKind]> {
        self.kinds.as_deref()
    }

    /// The number of rows.
    pub fn num_rows(&self) -> usize {
        self.batch.num_rows()
    }

    /// Rows `offset..offset + length` (the columns are shared, not copied).
    ///
    /// # Panics
    /// When the range is outside the chunk (as [`RecordBatch::slice`]).
    pub fn slice(&self, offset: usize, length: usize) -> Chunk {
        let kinds = self
            .kinds
            .as_ref()
            .map(|k| Arc::from(&k[offset..offset + length]))
            .filter(|k: &Arc<[RowKind]>| k.iter().any(|kind| *kind != RowKind::Insert));
        Chunk {
            batch: self.batch.slice(offset, length),
            kinds,
        }
    }

    /// The chunk's parts.
    pub fn into_parts(self) -> (RecordBatch, Option<Arc<[RowKind]>>) {
        (self.batch, self.kinds)
    }

    /// Column `index` as times in milliseconds, when it is a millisecond timestamp or an
    /// int64 column (a pipeline's event-time field).
    pub fn times(&self, index: usize) -> Option<ChunkTimes<'_>> {
        let column = self.batch.columns().get(index)?;
        if let Some(a) = column.as_any().downcast_ref::<TimestampMillisecondArray>() {
            return Some(ChunkTimes::Timestamp(a));
        }
        column
            .as_any()
            .downcast_ref::<Int64Array>()
            .map(ChunkTimes::Int64)
    }
}

/// A time column of a chunk ([`Chunk::times`]): epoch milliseconds per row.
#[derive(Debug, Clone, Copy)]
pub enum ChunkTimes<'a> {
    /// A millisecond timestamp column.
    Timestamp(&'a TimestampMillisecondArray),
    /// An int64 column of epoch milliseconds.
    Int64(&'a Int64Array),
}

impl<'a> ChunkTimes<'a> {
    /// Row `row`'s time (`None` for a null or past the end).
    pub fn get(&self, row: usize) -> Option<i64> {
        match self {
            ChunkTimes::Timestamp(a) => (row < a.len() && a.is_valid(row)).then(|| a.value(row)),
            ChunkTimes::Int64(a) => (row < a.len() && a.is_valid(row)).then(|| a.value(row)),
        }
    }

    /// Every row's time, in order (`None` for a null).
    pub fn each_row(self) -> Box<dyn Iterator<Item = Option<i64>> + 'a> {
        match self {
            ChunkTimes::Timestamp(a) => Box::new(a.iter()),
            ChunkTimes::Int64(a) => Box::new(a.iter()),
        }
    }

    /// The latest time (`None` without any).
    pub fn max(&self) -> Option<i64> {
        let (values, nulls) = match self {
            ChunkTimes::Timestamp(a) => (a.values(), a.null_count()),
            ChunkTimes::Int64(a) => (a.values(), a.null_count()),
        };
        if nulls == 0 {
            values.iter().copied().max()
        } else {
            self.each_row().flatten().max()
        }
    }
}

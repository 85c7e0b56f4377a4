//! [`Chunk`]: the columnar element of pipeline jobs — one Arrow [`RecordBatch`] with the
//! changelog kinds of its rows — and its adapters to and from [`Row`]s.
//!
//! A pipeline whose parts all work on columns carries chunks instead of rows (one runtime
//! record is one chunk of up to a few thousand rows); the adapters here let a Row source or
//! sink take part anyway, and give the exact rows a chunk stands for.
//!
//! | [`DataType`] | Arrow type | array |
//! |---|---|---|
//! | `Boolean` | `Boolean` | [`BooleanArray`] |
//! | `Int64` | `Int64` | [`Int64Array`] |
//! | `Float64` | `Float64` | [`Float64Array`] |
//! | `String` | `Utf8` | [`StringArray`] |
//! | `Bytes` | `Binary` | [`BinaryArray`] |
//! | `TimestampMillis` | `Timestamp(Millisecond, None)` | [`TimestampMillisecondArray`] |
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

use std::io::Cursor;
use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMillisecondBuilder,
};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Float64Array, Int64Array, RecordBatch,
    RecordBatchOptions, StringArray, TimestampMillisecondArray,
};
use arrow_schema::{ArrowError, DataType as ArrowType, Field as ArrowField, SchemaRef, TimeUnit};
use weir_connector_api::row::{DataType, Row, RowKind, Schema, Value};
use weir_connector_api::state::{StateError, VersionedSerializer};

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
        "column `{field}` is {data_type}, which pipeline rows cannot hold (boolean, int64, \
         float64, utf8, binary and millisecond timestamps can)"
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

    /// Builds a chunk of `schema` from rows (a missing trailing value is a null).
    pub fn from_rows(schema: &SchemaRef, rows: &[Row]) -> Result<Self, ChunkError> {
        let columns = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, field)| column(field, i, rows))
            .collect::<Result<Vec<_>, _>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(rows.len()));
        let batch = RecordBatch::try_new_with_options(Arc::clone(schema), columns, &options)?;
        let kinds: Arc<[RowKind]> = rows.iter().map(|r| r.kind).collect();
        Chunk::new(batch, Some(kinds))
    }

    /// The rows of the chunk, in order.
    pub fn to_rows(&self) -> Result<Vec<Row>, ChunkError> {
        let mut rows = Vec::with_capacity(self.num_rows());
        self.for_each_row(|row| rows.push(row))?;
        Ok(rows)
    }

    /// Calls `f` with each row of the chunk, in order.
    pub fn for_each_row(&self, mut f: impl FnMut(Row)) -> Result<(), ChunkError> {
        let columns = self
            .batch
            .schema_ref()
            .fields()
            .iter()
            .zip(self.batch.columns())
            .map(|(field, array)| Column::of(field, array))
            .collect::<Result<Vec<_>, _>>()?;
        for i in 0..self.num_rows() {
            let kind = self
                .kinds
                .as_deref()
                .and_then(|k| k.get(i).copied())
                .unwrap_or_default();
            f(Row::with_kind(
                kind,
                columns.iter().map(|c| c.value(i)).collect(),
            ));
        }
        Ok(())
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

/// The Arrow schema of pipeline rows of `schema` (see the [module docs](self) for the types).
pub fn arrow_schema(schema: &Schema) -> SchemaRef {
    Arc::new(arrow_schema::Schema::new(
        schema
            .fields
            .iter()
            .map(|f| ArrowField::new(&f.name, arrow_type(f.data_type), f.nullable))
            .collect::<Vec<_>>(),
    ))
}

/// The Arrow type of a pipeline type.
pub fn arrow_type(data_type: DataType) -> ArrowType {
    match data_type {
        DataType::Boolean => ArrowType::Boolean,
        DataType::Float64 => ArrowType::Float64,
        DataType::String => ArrowType::Utf8,
        DataType::Bytes => ArrowType::Binary,
        DataType::TimestampMillis => ArrowType::Timestamp(TimeUnit::Millisecond, None),
        // Int64, and any type added later until it has its own column type.
        _ => ArrowType::Int64,
    }
}

fn value_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Boolean(_) => "boolean",
        Value::Int64(_) => "int64",
        Value::Float64(_) => "float64",
        Value::String(_) => "string",
        Value::Bytes(_) => "bytes",
        Value::TimestampMillis(_) => "timestamp",
        _ => "unknown",
    }
}

/// Builds column `index` of `rows`.
fn column(field: &ArrowField, index: usize, rows: &[Row]) -> Result<ArrayRef, ChunkError> {
    let mismatch = |row: usize, value: &Value| ChunkError::TypeMismatch {
        row,
        field: field.name().clone(),
        expected: field.data_type().to_string(),
        found: value_name(value),
    };
    let values = rows
        .iter()
        .map(|r| r.values.get(index).unwrap_or(&Value::Null));
    macro_rules! build {
        ($builder:expr, $($pattern:pat => $value:expr),+) => {{
            let mut b = $builder;
            for (row, v) in values.enumerate() {
                match v {
                    Value::Null => b.append_null(),
                    $($pattern => b.append_value($value),)+
                    other => return Err(mismatch(row, other)),
                }
            }
            Ok(Arc::new(b.finish()) as ArrayRef)
        }};
    }
    match field.data_type() {
        ArrowType::Boolean => {
            build!(BooleanBuilder::with_capacity(rows.len()), Value::Boolean(b) => *b)
        }
        ArrowType::Int64 => build!(Int64Builder::with_capacity(rows.len()), Value::Int64(n) => *n),
        ArrowType::Float64 => {
            build!(Float64Builder::with_capacity(rows.len()), Value::Float64(x) => *x)
        }
        ArrowType::Utf8 => build!(StringBuilder::new(), Value::String(s) => s),
        ArrowType::Binary => build!(BinaryBuilder::new(), Value::Bytes(b) => b),
        ArrowType::Timestamp(TimeUnit::Millisecond, None) => build!(
            TimestampMillisecondBuilder::with_capacity(rows.len()),
            // Event-time fields accept integers too (as the row path's timestamps do).
            Value::TimestampMillis(t) | Value::Int64(t) => *t
        ),
        other => Err(ChunkError::UnsupportedType {
            field: field.name().clone(),
            data_type: other.to_string(),
        }),
    }
}

/// A column, downcast once for reading rows.
enum Column<'a> {
    Boolean(&'a BooleanArray),
    Int64(&'a Int64Array),
    Float64(&'a Float64Array),
    String(&'a StringArray),
    Bytes(&'a BinaryArray),
    Timestamp(&'a TimestampMillisecondArray),
}

impl<'a> Column<'a> {
    fn of(field: &ArrowField, array: &'a ArrayRef) -> Result<Self, ChunkError> {
        let any = array.as_any();
        let column = match array.data_type() {
            ArrowType::Boolean => any.downcast_ref().map(Column::Boolean),
            ArrowType::Int64 => any.downcast_ref().map(Column::Int64),
            ArrowType::Float64 => any.downcast_ref().map(Column::Float64),
            ArrowType::Utf8 => any.downcast_ref().map(Column::String),
            ArrowType::Binary => any.downcast_ref().map(Column::Bytes),
            ArrowType::Timestamp(TimeUnit::Millisecond, None) => {
                any.downcast_ref().map(Column::Timestamp)
            }
            _ => None,
        };
        column.ok_or_else(|| ChunkError::UnsupportedType {
            field: field.name().clone(),
            data_type: array.data_type().to_string(),
        })
    }

    fn value(&self, i: usize) -> Value {
        macro_rules! get {
            ($a:expr, $wrap:expr) => {
                if $a.is_null(i) {
                    Value::Null
                } else {
                    $wrap($a.value(i))
                }
            };
        }
        match self {
            Column::Boolean(a) => get!(a, Value::Boolean),
            Column::Int64(a) => get!(a, Value::Int64),
            Column::Float64(a) => get!(a, Value::Float64),
            Column::String(a) => get!(a, |s: &str| Value::String(s.to_owned())),
            Column::Bytes(a) => get!(a, |b: &[u8]| Value::Bytes(b.to_vec())),
            Column::Timestamp(a) => get!(a, Value::TimestampMillis),
        }
    }
}

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
            arrow_ipc::writer::StreamWriter::try_new(&mut out, chunk.batch.schema_ref())
                .map_err(|e| malformed(e.to_string()))?;
        writer
            .write(&chunk.batch)
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

//! Vectorized evaluation of [`Expr`] on Arrow record batches: comparisons, `and`/`or`/`not`
//! and `is [not] null` with Arrow compute kernels, with exactly the three-valued logic of
//! [`Expr::matches`] (a row is kept only where the predicate is true).
//!
//! - Integers and timestamps compare as `i64` (Arrow's `cmp` kernels); strings, bytes and
//!   booleans with the same kernels (byte-wise and `false < true`, like the row path).
//! - A comparison involving a float compares as `f64` in a plain loop over the columns' values:
//!   Arrow orders floats totally (NaN equal to NaN, `-0.0 < 0.0`), the row path uses IEEE
//!   `partial_cmp` (a NaN makes the comparison unknown, `-0.0 = 0.0`), and the loop keeps the
//!   row path's answer.
//! - The narrower integers, unsigned integers up to 32 bits, dates and timestamps of every
//!   unit widen to `i64`, float32 to `f64`. The types the kernels here do not compare
//!   (uint64, decimal128) make the kernel path fail, and [`Expr::filter_chunk`] then matches
//!   the chunk's rows one by one with the row path's exact comparison.
//! - `and`/`or` are Kleene's (`and_kleene`, `or_kleene`), `not` keeps unknown unknown, and
//!   [`filter_record_batch`] drops unknown rows like false ones.

use std::borrow::Cow;
use std::sync::Arc;

use arrow_arith::boolean::{and_kleene, is_not_null, is_null, not, or_kleene};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt16Type, UInt32Type, UInt8Type,
};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Datum, Float64Array, Int64Array, RecordBatch,
    Scalar, StringArray,
};
use arrow_buffer::{BooleanBufferBuilder, NullBuffer};
use arrow_ord::cmp;
use arrow_schema::{ArrowError, DataType as ArrowType};
use arrow_select::filter::filter_record_batch;
use weir_connector_api::row::Value;
use weir_formats::chunk::Chunk;

use super::{compare, CmpOp, Expr, Operand};

/// One side of a comparison, resolved against a batch.
enum Side<'a> {
    Column(&'a ArrayRef),
    Literal(&'a Value),
}

impl Expr {
    /// The predicate's value for every row of `batch` (null where it is unknown). `batch` has
    /// the schema the expression was parsed against (as [`weir_formats::chunk::arrow_schema`]
    /// makes it).
    pub fn evaluate(&self, batch: &RecordBatch) -> Result<BooleanArray, ArrowError> {
        match self {
            Expr::And(terms) | Expr::Or(terms) => {
                let and = matches!(self, Expr::And(_));
                let mut result: Option<BooleanArray> = None;
                for term in terms {
                    let value = term.evaluate(batch)?;
                    result = Some(match result {
                        None => value,
                        Some(acc) if and => and_kleene(&acc, &value)?,
                        Some(acc) => or_kleene(&acc, &value)?,
                    });
                }
                Ok(result.unwrap_or_else(|| constant(Some(and), batch.num_rows())))
            }
            Expr::Not(inner) => not(&inner.evaluate(batch)?),
            Expr::IsNull(i, negated) => {
                let column = column(batch, *i)?;
                if *negated {
                    is_not_null(column.as_ref())
                } else {
                    is_null(column.as_ref())
                }
            }
            Expr::Bool(operand) => match &operand.0 {
                Operand::Field(i) => {
                    let column = column(batch, *i)?;
                    column
                        .as_boolean_opt()
                        .cloned()
                        .ok_or_else(|| mismatch("a boolean", column.data_type()))
                }
                Operand::Literal(Value::Boolean(b)) => Ok(constant(Some(*b), batch.num_rows())),
                Operand::Literal(_) => Ok(constant(None, batch.num_rows())),
            },
            Expr::Cmp(op, a, b) => {
                let left = side(batch, &a.0)?;
                let right = side(batch, &b.0)?;
                compare_sides(*op, &left, &right, batch.num_rows())
            }
        }
    }

    /// The rows of `chunk` where the predicate is true (their kinds with them); `None` when
    /// no row is left. Should a kernel fail (it cannot for a batch of the expression's
    /// schema), the rows are matched one by one instead, with the same result.
    pub fn filter_chunk(&self, chunk: &Chunk) -> Option<Chunk> {
        let kept = match self
            .evaluate(chunk.batch())
            .and_then(|mask| filter_chunk_by(chunk, &mask))
        {
            Ok(kept) => kept,
            Err(error) => {
                tracing::debug!(%error, "vectorized filter failed; matching row by row");
                let rows = chunk.to_rows().ok()?;
                let kept: Vec<_> = rows.into_iter().filter(|r| self.matches(r)).collect();
                Chunk::from_rows(chunk.batch().schema_ref(), &kept).ok()?
            }
        };
        (kept.num_rows() > 0).then_some(kept)
    }
}

fn side<'a>(batch: &'a RecordBatch, operand: &'a Operand) -> Result<Side<'a>, ArrowError> {
    Ok(match operand {
        Operand::Field(i) => Side::Column(column(batch, *i)?),
        Operand::Literal(v) => Side::Literal(v),
    })
}

/// Keeps the rows where `mask` is true.
fn filter_chunk_by(chunk: &Chunk, mask: &BooleanArray) -> Result<Chunk, ArrowError> {
    if mask.null_count() == 0 && mask.true_count() == chunk.num_rows() {
        return Ok(chunk.clone());
    }
    let batch = filter_record_batch(chunk.batch(), mask)?;
    let kinds = chunk.kinds().map(|kinds| {
        kinds
            .iter()
            .enumerate()
            .filter(|(i, _)| mask.is_valid(*i) && mask.value(*i))
            .map(|(_, k)| *k)
            .collect::<Arc<[_]>>()
    });
    Chunk::new(batch, kinds).map_err(|e| ArrowError::ComputeError(e.to_string()))
}

fn column(batch: &RecordBatch, index: usize) -> Result<&ArrayRef, ArrowError> {
    batch.columns().get(index).ok_or_else(|| {
        ArrowError::InvalidArgumentError(format!(
            "field {index} of a batch of {} columns",
            batch.num_columns()
        ))
    })
}

fn mismatch(expected: &str, found: &ArrowType) -> ArrowError {
    ArrowError::InvalidArgumentError(format!("expected {expected} column, found {found}"))
}

/// `len` copies of `value` (`None`: unknown).
fn constant(value: Option<bool>, len: usize) -> BooleanArray {
    match value {
        Some(b) => BooleanArray::from(vec![b; len]),
        None => BooleanArray::new_null(len),
    }
}

/// What a side compares as.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Integer,
    Float,
    Other,
}

fn class(side: &Side<'_>) -> Class {
    match side {
        Side::Column(c) => match c.data_type() {
            ArrowType::Int8
            | ArrowType::Int16
            | ArrowType::Int32
            | ArrowType::Int64
            | ArrowType::UInt8
            | ArrowType::UInt16
            | ArrowType::UInt32
            | ArrowType::Date32
            | ArrowType::Timestamp(_, _) => Class::Integer,
            ArrowType::Float64 | ArrowType::Float32 => Class::Float,
            _ => Class::Other,
        },
        Side::Literal(
            Value::Int64(_) | Value::TimestampMillis(_) | Value::Date32(_) | Value::Timestamp(..),
        ) => Class::Integer,
        Side::Literal(Value::Float64(_)) => Class::Float,
        Side::Literal(_) => Class::Other,
    }
}

fn compare_sides(
    op: CmpOp,
    left: &Side<'_>,
    right: &Side<'_>,
    len: usize,
) -> Result<BooleanArray, ArrowError> {
    if let (Side::Literal(a), Side::Literal(b)) = (left, right) {
        let value = match (a, b) {
            (Value::Null, _) | (_, Value::Null) => None,
            _ => compare(a, b).map(|o| op.holds(o)),
        };
        return Ok(constant(value, len));
    }
    let classes = (class(left), class(right));
    if classes.0 != Class::Other
        && classes.1 != Class::Other
        && (classes.0 == Class::Float || classes.1 == Class::Float)
    {
        return compare_floats(op, left, right, len);
    }
    let integer = classes == (Class::Integer, Class::Integer);
    let l = datum(left, integer)?;
    let r = datum(right, integer)?;
    let (l, r) = (l.as_ref(), r.as_ref());
    match op {
        CmpOp::Eq => cmp::eq(l, r),
        CmpOp::Ne => cmp::neq(l, r),
        CmpOp::Lt => cmp::lt(l, r),
        CmpOp::Le => cmp::lt_eq(l, r),
        CmpOp::Gt => cmp::gt(l, r),
        CmpOp::Ge => cmp::gt_eq(l, r),
    }
}

/// A side as an Arrow datum; integers and timestamps as `Int64` when `integer`.
fn datum(side: &Side<'_>, integer: bool) -> Result<Box<dyn Datum>, ArrowError> {
    Ok(match side {
        Side::Column(c) if integer => Box::new(as_int64(c)?),
        Side::Column(c) => Box::new(Arc::clone(c)),
        Side::Literal(v) => match v {
            Value::Int64(n) | Value::TimestampMillis(n) | Value::Timestamp(n, _) => {
                Box::new(Scalar::new(Int64Array::from(vec![*n])))
            }
            Value::Date32(d) => Box::new(Scalar::new(Int64Array::from(vec![i64::from(*d)]))),
            Value::String(s) => Box::new(Scalar::new(StringArray::from(vec![s.as_str()]))),
            Value::Bytes(b) => Box::new(Scalar::new(BinaryArray::from(vec![b.as_slice()]))),
            Value::Boolean(b) => Box::new(Scalar::new(BooleanArray::from(vec![*b]))),
            other => {
                return Err(ArrowError::InvalidArgumentError(format!(
                    "a literal {other:?} in a comparison"
                )))
            }
        },
    })
}

/// An integer or timestamp column as `Int64` (timestamps reinterpreted, no copy).
fn as_int64(column: &ArrayRef) -> Result<Int64Array, ArrowError> {
    if let Some(a) = column.as_primitive_opt::<Int64Type>() {
        return Ok(a.clone());
    }
    if let Some(a) = column.as_primitive_opt::<TimestampMillisecondType>() {
        return Ok(a.reinterpret_cast::<Int64Type>());
    }
    // The narrower integers, dates and the other timestamp units: widened exactly, as the
    // row path compares them (as integers).
    macro_rules! widen {
        ($($t:ty),+) => {$(
            if let Some(a) = column.as_primitive_opt::<$t>() {
                return Ok(a.unary(i64::from));
            }
        )+};
    }
    widen!(Int8Type, Int16Type, Int32Type, UInt8Type, UInt16Type, UInt32Type, Date32Type);
    if let Some(a) = column.as_primitive_opt::<TimestampSecondType>() {
        return Ok(a.reinterpret_cast::<Int64Type>());
    }
    if let Some(a) = column.as_primitive_opt::<TimestampMicrosecondType>() {
        return Ok(a.reinterpret_cast::<Int64Type>());
    }
    if let Some(a) = column.as_primitive_opt::<TimestampNanosecondType>() {
        return Ok(a.reinterpret_cast::<Int64Type>());
    }
    Err(mismatch("an integer", column.data_type()))
}

/// A side's values as `f64`, as the row path converts them (`i64 as f64`).
enum Floats<'a> {
    Column(Cow<'a, Float64Array>),
    Scalar(f64),
}

impl<'a> Floats<'a> {
    fn of(side: &Side<'a>) -> Result<Self, ArrowError> {
        match side {
            Side::Column(c) => {
                if let Some(f) = c.as_primitive_opt::<Float64Type>() {
                    return Ok(Floats::Column(Cow::Borrowed(f)));
                }
                if let Some(f) = c.as_primitive_opt::<Float32Type>() {
                    return Ok(Floats::Column(Cow::Owned(f.unary(f64::from))));
                }
                let ints = as_int64(c)?;
                Ok(Floats::Column(Cow::Owned(ints.unary(|v| v as f64))))
            }
            Side::Literal(Value::Float64(x)) => Ok(Floats::Scalar(*x)),
            Side::Literal(Value::Int64(n) | Value::TimestampMillis(n) | Value::Timestamp(n, _)) => {
                Ok(Floats::Scalar(*n as f64))
            }
            Side::Literal(Value::Date32(d)) => Ok(Floats::Scalar(f64::from(*d))),
            Side::Literal(other) => Err(ArrowError::InvalidArgumentError(format!(
                "a literal {other:?} in a numeric comparison"
            ))),
        }
    }

    fn get(&self, i: usize) -> Option<f64> {
        match self {
            Floats::Column(c) => c.is_valid(i).then(|| c.value(i)),
            Floats::Scalar(x) => Some(*x),
        }
    }
}

fn compare_floats(
    op: CmpOp,
    left: &Side<'_>,
    right: &Side<'_>,
    len: usize,
) -> Result<BooleanArray, ArrowError> {
    let (l, r) = (Floats::of(left)?, Floats::of(right)?);
    let mut values = BooleanBufferBuilder::new(len);
    let mut valid = BooleanBufferBuilder::new(len);
    for i in 0..len {
        let ordering = match (l.get(i), r.get(i)) {
            (Some(x), Some(y)) => x.partial_cmp(&y),
            _ => None,
        };
        values.append(ordering.is_some_and(|o| op.holds(o)));
        valid.append(ordering.is_some());
    }
    Ok(BooleanArray::new(
        values.finish(),
        Some(NullBuffer::new(valid.finish())),
    ))
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod types_tests;

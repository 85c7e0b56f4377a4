//! Columnar generation: the values of [`RowGenerator::row`], written straight into Arrow
//! column builders, column by column.
//!
//! Every value of row `n`, field `i` comes from its own generator seeded with `(seed, n, i)`,
//! so a column can be filled on its own, in row order, with exactly the values the row path
//! produces: the same null decision first, then the same draws.
//!
//! A field without nulls (the usual case) takes [`RowGenerator::dense_column`]: each column is
//! one loop that writes values into a `Vec` (strings: bytes into one values buffer of exact
//! capacity, with computed offsets), without a builder's per-value bookkeeping, then becomes
//! the array without a copy. The other fields go through Arrow's builders.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMillisecondBuilder,
};
use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, Float64Array, Int64Array, RecordBatch, RecordBatchOptions,
    StringArray, TimestampMillisecondArray,
};
use arrow_buffer::{BooleanBuffer, Buffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::SchemaRef;
use weir_connector_api::row::DataType;
use weir_formats::chunk::Chunk;

use super::{mix, random_text, FieldGen, FieldSpec, Rng, RowGenerator};

/// Appends one value per number: a null when the field's null draw says so, else `value`.
macro_rules! fill {
    ($builder:expr, $gen:expr, $spec:expr, $index:expr, $numbers:expr, |$rng:ident, $n:ident| $value:expr) => {{
        let mut builder = $builder;
        for &$n in $numbers {
            let mut $rng = $gen.rng($n, $index);
            if $spec.null_threshold > 0 && ($rng.next() >> 32) < $spec.null_threshold {
                builder.append_null();
            } else {
                builder.append_value($value);
            }
        }
        Arc::new(builder.finish()) as ArrayRef
    }};
}

impl RowGenerator {
    /// The generator of row `n`, field `index` (as [`row`](Self::row) seeds it).
    fn rng(&self, n: u64, index: usize) -> Rng {
        Rng(mix(self.seed ^ mix(n ^ ((index as u64) << 48))))
    }

    /// The rows `numbers` as one chunk of `schema` (the Arrow schema of the generator's
    /// schema): converted to rows, it equals `numbers.map(row)`.
    ///
    /// # Panics
    ///
    /// Never for a schema made by [`weir_formats::chunk::arrow_schema`] from the schema the
    /// generator was built for: the columns match it by construction.
    pub fn chunk(&self, schema: &SchemaRef, numbers: &[u64]) -> Chunk {
        let columns = self
            .fields
            .iter()
            .enumerate()
            .map(|(index, spec)| self.column(spec, index, numbers))
            .collect();
        let options = RecordBatchOptions::new().with_row_count(Some(numbers.len()));
        #[allow(clippy::expect_used)]
        let batch = RecordBatch::try_new_with_options(Arc::clone(schema), columns, &options)
            .expect("the generated columns have the schema's types, nullability and length");
        Chunk::inserts(batch)
    }

    fn column(&self, spec: &FieldSpec, index: usize, numbers: &[u64]) -> ArrayRef {
        // The types of API line 1.1 (narrow, unsigned, float32, date, timestamp units).
        if let Some(array) = self.typed_column(spec, index, numbers) {
            return array;
        }
        if spec.null_threshold == 0 {
            if let Some(column) = self.dense_column(spec, index, numbers) {
                return column;
            }
        }
        let len = numbers.len();
        let timestamp = spec.data_type == DataType::TimestampMillis;
        match &spec.generator {
            FieldGen::Sequence { start, step, .. } if spec.data_type == DataType::Float64 => {
                fill!(
                    Float64Builder::with_capacity(len),
                    self,
                    spec,
                    index,
                    numbers,
                    |rng, n| start + n as f64 * step
                )
            }
            FieldGen::Sequence {
                start_i, step_i, ..
            } => {
                let value = |n: u64| start_i.wrapping_add((n as i64).wrapping_mul(*step_i));
                match spec.data_type {
                    DataType::String => {
                        fill!(
                            StringBuilder::with_capacity(len, len * 8),
                            self,
                            spec,
                            index,
                            numbers,
                            |rng, n| value(n).to_string()
                        )
                    }
                    DataType::TimestampMillis => {
                        fill!(
                            TimestampMillisecondBuilder::with_capacity(len),
                            self,
                            spec,
                            index,
                            numbers,
                            |rng, n| value(n)
                        )
                    }
                    _ => fill!(
                        Int64Builder::with_capacity(len),
                        self,
                        spec,
                        index,
                        numbers,
                        |rng, n| value(n)
                    ),
                }
            }
            FieldGen::RandomBool => {
                fill!(
                    BooleanBuilder::with_capacity(len),
                    self,
                    spec,
                    index,
                    numbers,
                    |rng, n| rng.next() & 1 == 1
                )
            }
            FieldGen::RandomInt { min, span } => {
                let value = |rng: &mut Rng| {
                    let offset = if *span == 0 {
                        rng.next()
                    } else {
                        rng.next() % span
                    };
                    min.wrapping_add(offset as i64)
                };
                if timestamp {
                    fill!(
                        TimestampMillisecondBuilder::with_capacity(len),
                        self,
                        spec,
                        index,
                        numbers,
                        |rng, n| value(&mut rng)
                    )
                } else {
                    fill!(
                        Int64Builder::with_capacity(len),
                        self,
                        spec,
                        index,
                        numbers,
                        |rng, n| value(&mut rng)
                    )
                }
            }
            FieldGen::RandomFloat { min, max } => {
                fill!(
                    Float64Builder::with_capacity(len),
                    self,
                    spec,
                    index,
                    numbers,
                    |rng, n| {
                        let unit = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
                        min + (max - min) * unit
                    }
                )
            }
            FieldGen::RandomString { length } => {
                let mut text = vec![0; *length];
                fill!(
                    StringBuilder::with_capacity(len, len * length),
                    self,
                    spec,
                    index,
                    numbers,
                    |rng, n| {
                        random_text(&mut rng, &mut text);
                        // ASCII letters and digits.
                        std::str::from_utf8(&text).unwrap_or_default()
                    }
                )
            }
            FieldGen::RandomBytes { length } => {
                let mut bytes = Vec::with_capacity(*length);
                fill!(
                    BinaryBuilder::with_capacity(len, len * length),
                    self,
                    spec,
                    index,
                    numbers,
                    |rng, n| {
                        bytes.clear();
                        bytes.extend((0..*length).map(|_| rng.next() as u8));
                        &bytes
                    }
                )
            }
            FieldGen::Pick(values) => {
                let mut builder = StringBuilder::with_capacity(len, len * 8);
                let count = values.len().max(1) as u64;
                // `x % count` without a division when `count` is a power of two (the same pick).
                let mask = count.is_power_of_two().then(|| count - 1);
                for &n in numbers {
                    let mut rng = self.rng(n, index);
                    if spec.null_threshold > 0 && (rng.next() >> 32) < spec.null_threshold {
                        builder.append_null();
                        continue;
                    }
                    let draw = rng.next();
                    let i = match mask {
                        Some(mask) => draw & mask,
                        None => draw % count,
                    };
                    builder.append_option(values.get(i as usize));
                }
                Arc::new(builder.finish()) as ArrayRef
            }
            FieldGen::RandomDecimal { .. }
            | FieldGen::List { .. }
            | FieldGen::Map { .. }
            | FieldGen::Struct(_) => self.values_column(spec, index, numbers),
        }
    }

    /// The column of a field without nulls (no null draw: the first draw is the value's, as in
    /// the row path), or `None` for the fields [`column`](Self::column) builds value by value.
    fn dense_column(&self, spec: &FieldSpec, index: usize, numbers: &[u64]) -> Option<ArrayRef> {
        let rng = |n: u64| self.rng(n, index);
        let ints = |values: Vec<i64>| -> Option<ArrayRef> {
            match spec.data_type {
                DataType::Int64 => Some(Arc::new(Int64Array::from(values))),
                DataType::TimestampMillis => {
                    Some(Arc::new(TimestampMillisecondArray::from(values)))
                }
                _ => None,
            }
        };
        match &spec.generator {
            FieldGen::Sequence { start, step, .. } if spec.data_type == DataType::Float64 => {
                let values: Vec<f64> = numbers.iter().map(|&n| start + n as f64 * step).collect();
                Some(Arc::new(Float64Array::from(values)))
            }
            FieldGen::Sequence {
                start_i, step_i, ..
            } if spec.data_type != DataType::String => ints(
                numbers
                    .iter()
                    .map(|&n| start_i.wrapping_add((n as i64).wrapping_mul(*step_i)))
                    .collect(),
            ),
            FieldGen::RandomInt { min, span } => {
                let values = if *span == 0 {
                    numbers
                        .iter()
                        .map(|&n| min.wrapping_add(rng(n).next() as i64))
                        .collect()
                } else {
                    numbers
                        .iter()
                        .map(|&n| min.wrapping_add((rng(n).next() % span) as i64))
                        .collect()
                };
                ints(values)
            }
            FieldGen::RandomFloat { min, max } if spec.data_type == DataType::Float64 => {
                let values: Vec<f64> = numbers
                    .iter()
                    .map(|&n| {
                        let unit = (rng(n).next() >> 11) as f64 / (1u64 << 53) as f64;
                        min + (max - min) * unit
                    })
                    .collect();
                Some(Arc::new(Float64Array::from(values)))
            }
            FieldGen::RandomBool if spec.data_type == DataType::Boolean => {
                let bits = BooleanBuffer::collect_bool(numbers.len(), |i| {
                    numbers.get(i).is_some_and(|&n| rng(n).next() & 1 == 1)
                });
                Some(Arc::new(BooleanArray::new(bits, None)))
            }
            FieldGen::RandomString { length } if spec.data_type == DataType::String => {
                let (offsets, values) =
                    fixed_length(numbers, *length, |n, out| random_text(&mut rng(n), out))?;
                StringArray::try_new(offsets, values, None)
                    .ok()
                    .map(|a| Arc::new(a) as ArrayRef)
            }
            FieldGen::RandomBytes { length } if spec.data_type == DataType::Bytes => {
                let (offsets, values) = fixed_length(numbers, *length, |n, out| {
                    let mut rng = rng(n);
                    for byte in out {
                        *byte = rng.next() as u8;
                    }
                })?;
                BinaryArray::try_new(offsets, values, None)
                    .ok()
                    .map(|a| Arc::new(a) as ArrayRef)
            }
            FieldGen::Pick(values) if spec.data_type == DataType::String && !values.is_empty() => {
                let count = values.len() as u64;
                // `x % count` without a division when `count` is a power of two (the same pick).
                if count.is_power_of_two() {
                    picks(numbers, values, |n| rng(n).next() & (count - 1))
                } else {
                    picks(numbers, values, |n| rng(n).next() % count)
                }
            }
            _ => None,
        }
    }
}

/// The offsets and values of `numbers.len()` values of `length` bytes each, number `n`'s
/// written by `write(n, its bytes)`; `None` if they do not fit 32-bit offsets.
fn fixed_length(
    numbers: &[u64],
    length: usize,
    mut write: impl FnMut(u64, &mut [u8]),
) -> Option<(OffsetBuffer<i32>, Buffer)> {
    let total = numbers.len().checked_mul(length)?;
    i32::try_from(total).ok()?;
    // One buffer of the exact size, each value written into its own slice: no capacity checks
    // per byte.
    let mut values = vec![0; total];
    if length > 0 {
        for (out, &n) in values.chunks_exact_mut(length).zip(numbers) {
            write(n, out);
        }
    }
    let offsets = OffsetBuffer::from_lengths(std::iter::repeat_n(length, numbers.len()));
    Some((offsets, Buffer::from_vec(values)))
}

/// Values of a pick at most this long are copied as fixed-size blocks.
const PADDED: usize = 16;

/// The string column of `values[pick(n)]` per number (`pick` is below `values.len()`); `None` if
/// the strings do not fit 32-bit offsets.
fn picks(numbers: &[u64], values: &[String], pick: impl Fn(u64) -> u64) -> Option<ArrayRef> {
    // The picks first: a loop of arithmetic only, which the processor runs several rows at a
    // time; then the copies.
    let chosen: Vec<u64> = numbers.iter().map(|&n| pick(n)).collect();
    let longest = values.iter().map(String::len).max().unwrap_or(0);
    let capacity = numbers.len().checked_mul(longest)?;
    i32::try_from(capacity).ok()?;
    let mut bytes = Vec::with_capacity(capacity + PADDED);
    let mut offsets = Vec::with_capacity(numbers.len() + 1);
    offsets.push(0i32);
    if longest <= PADDED {
        // Each value padded to a block: one fixed-size copy per row instead of a `memcpy` call,
        // then the length cut back to the value's.
        let blocks: Vec<([u8; PADDED], usize)> = values
            .iter()
            .map(|v| {
                let mut block = [0; PADDED];
                block[..v.len()].copy_from_slice(v.as_bytes());
                (block, v.len())
            })
            .collect();
        for &i in &chosen {
            let (block, len) = blocks.get(i as usize)?;
            let end = bytes.len() + len;
            bytes.extend_from_slice(block);
            bytes.truncate(end);
            // At most `capacity` bytes, which fits.
            offsets.push(end as i32);
        }
    } else {
        for &i in &chosen {
            bytes.extend_from_slice(values.get(i as usize)?.as_bytes());
            offsets.push(bytes.len() as i32);
        }
    }
    let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
    StringArray::try_new(offsets, Buffer::from_vec(bytes), None)
        .ok()
        .map(|a| Arc::new(a) as ArrayRef)
}

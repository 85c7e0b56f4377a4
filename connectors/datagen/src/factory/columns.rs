//! Columnar generation: the values of [`RowGenerator::row`], written straight into Arrow
//! column builders, column by column.
//!
//! Every value of row `n`, field `i` comes from its own generator seeded with `(seed, n, i)`,
//! so a column can be filled on its own, in row order, with exactly the values the row path
//! produces: the same null decision first, then the same draws.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMillisecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_schema::SchemaRef;
use weir_connector_api::row::DataType;
use weir_formats::chunk::Chunk;

use super::{mix, FieldGen, FieldSpec, Rng, RowGenerator};

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

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
                let mut text = String::with_capacity(*length);
                fill!(
                    StringBuilder::with_capacity(len, len * length),
                    self,
                    spec,
                    index,
                    numbers,
                    |rng, n| {
                        text.clear();
                        text.extend((0..*length).map(|_| {
                            let i = (rng.next() % ALPHABET.len() as u64) as usize;
                            char::from(ALPHABET.get(i).copied().unwrap_or(b'a'))
                        }));
                        &text
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
}

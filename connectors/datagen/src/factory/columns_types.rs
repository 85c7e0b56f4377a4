//! Columnar generation of the types of API line 1.1: integers of every width, float32,
//! dates and timestamps of every unit straight into their builders; decimals and nested
//! types through the row path's values (their generation draws a varying number of values
//! per row, so one value at a time is the simple exact twin).

use std::sync::Arc;

use arrow_array::builder::PrimitiveBuilder;
use arrow_array::types::{
    ArrowPrimitiveType, Date32Type, Float32Type, Int16Type, Int32Type, Int8Type,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::ArrayRef;
use weir_connector_api::row::{DataType, TimeUnit, Value};
use weir_formats::chunk::{array_of, arrow_type};

use super::{mix, FieldGen, FieldSpec, Rng, RowGenerator};

/// The value of row `n` from its generator.
type Draw<T> = Box<dyn Fn(&mut Rng, u64) -> T>;

impl RowGenerator {
    /// The generator of row `n`, field `index` (as [`row`](Self::row) seeds it).
    fn field_rng(&self, n: u64, index: usize) -> Rng {
        Rng(mix(self.seed ^ mix(n ^ ((index as u64) << 48))))
    }

    /// A column of one value per number: a null when the field's null draw says so, else
    /// `value(rng, n)`.
    fn primitive<T: ArrowPrimitiveType>(
        &self,
        mut builder: PrimitiveBuilder<T>,
        spec: &FieldSpec,
        index: usize,
        numbers: &[u64],
        value: impl Fn(&mut Rng, u64) -> T::Native,
    ) -> ArrayRef {
        for &n in numbers {
            let mut rng = self.field_rng(n, index);
            if spec.null_threshold > 0 && (rng.next() >> 32) < spec.null_threshold {
                builder.append_null();
            } else {
                builder.append_value(value(&mut rng, n));
            }
        }
        Arc::new(builder.finish())
    }

    /// The column of a line 1.1 scalar type, `None` for the others.
    pub(super) fn typed_column(
        &self,
        spec: &FieldSpec,
        index: usize,
        numbers: &[u64],
    ) -> Option<ArrayRef> {
        let len = numbers.len();
        if spec.data_type == DataType::Float32 {
            let value = match &spec.generator {
                FieldGen::RandomFloat { min, max } => {
                    let (min, max) = (*min, *max);
                    Box::new(move |rng: &mut Rng, _| {
                        let unit = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
                        (min + (max - min) * unit) as f32
                    }) as Draw<f32>
                }
                FieldGen::Sequence { start, step, .. } => {
                    let (start, step) = (*start, *step);
                    Box::new(move |_: &mut Rng, n: u64| (start + n as f64 * step) as f32)
                }
                _ => return None,
            };
            let builder = PrimitiveBuilder::<Float32Type>::with_capacity(len);
            return Some(self.primitive(builder, spec, index, numbers, value));
        }
        // The i64 of row `n`, as the row path draws it (`integer_value` maps it to a value).
        let int: Draw<i64> = match &spec.generator {
            FieldGen::RandomInt { min, span } => {
                let (min, span) = (*min, *span);
                Box::new(move |rng: &mut Rng, _| {
                    let offset = if span == 0 {
                        rng.next()
                    } else {
                        rng.next() % span
                    };
                    min.wrapping_add(offset as i64)
                })
            }
            FieldGen::Sequence {
                start_i, step_i, ..
            } => {
                let (start, step) = (*start_i, *step_i);
                Box::new(move |_: &mut Rng, n: u64| {
                    start.wrapping_add((n as i64).wrapping_mul(step))
                })
            }
            _ => return None,
        };
        macro_rules! column {
            ($t:ty, $builder:expr, $cast:ty) => {
                Some(
                    self.primitive::<$t>($builder, spec, index, numbers, |rng, n| {
                        int(rng, n) as $cast
                    }),
                )
            };
        }
        match &spec.data_type {
            DataType::Int8 => column!(Int8Type, PrimitiveBuilder::with_capacity(len), i8),
            DataType::Int16 => column!(Int16Type, PrimitiveBuilder::with_capacity(len), i16),
            DataType::Int32 => column!(Int32Type, PrimitiveBuilder::with_capacity(len), i32),
            DataType::UInt8 => column!(UInt8Type, PrimitiveBuilder::with_capacity(len), u8),
            DataType::UInt16 => column!(UInt16Type, PrimitiveBuilder::with_capacity(len), u16),
            DataType::UInt32 => column!(UInt32Type, PrimitiveBuilder::with_capacity(len), u32),
            DataType::UInt64 => column!(UInt64Type, PrimitiveBuilder::with_capacity(len), u64),
            DataType::Date32 => column!(Date32Type, PrimitiveBuilder::with_capacity(len), i32),
            DataType::Timestamp { unit, tz } => {
                let tz = tz.clone();
                match unit {
                    TimeUnit::Second => column!(
                        TimestampSecondType,
                        PrimitiveBuilder::with_capacity(len).with_timezone_opt(tz),
                        i64
                    ),
                    TimeUnit::Microsecond => column!(
                        TimestampMicrosecondType,
                        PrimitiveBuilder::with_capacity(len).with_timezone_opt(tz),
                        i64
                    ),
                    TimeUnit::Nanosecond => column!(
                        TimestampNanosecondType,
                        PrimitiveBuilder::with_capacity(len).with_timezone_opt(tz),
                        i64
                    ),
                    _ => column!(
                        TimestampMillisecondType,
                        PrimitiveBuilder::with_capacity(len).with_timezone_opt(tz),
                        i64
                    ),
                }
            }
            _ => None,
        }
    }

    /// The column of a decimal or nested field, from the row path's values.
    pub(super) fn values_column(
        &self,
        spec: &FieldSpec,
        index: usize,
        numbers: &[u64],
    ) -> ArrayRef {
        let values: Vec<Value> = numbers
            .iter()
            .map(|&n| {
                let mut rng = self.field_rng(n, index);
                if spec.null_threshold > 0 && (rng.next() >> 32) < spec.null_threshold {
                    Value::Null
                } else {
                    RowGenerator::value(spec, n, &mut rng)
                }
            })
            .collect();
        let refs: Vec<&Value> = values.iter().collect();
        let field = arrow_schema::Field::new("value", arrow_type(&spec.data_type), true);
        // The options keep every value within its type (ranges, precision, scale).
        #[allow(clippy::expect_used)]
        array_of(&field, &refs).expect("generated values have their field's type")
    }
}

//! [`RowKey`]: a row of key values usable as a cache key.

use std::hash::{Hash, Hasher};

use weir_connector_api::row::{Row, Value};

/// A row of key values (the join's key fields, in the join's order) with `Hash` and `Eq`, so
/// rows can key a [`DefaultLookupCache`](super::DefaultLookupCache) or a
/// [`FullCachingLookupFunction`](super::FullCachingLookupFunction). The row kind is ignored;
/// floats compare by value with `0.0 == -0.0` and every NaN equal to every NaN (a key, unlike
/// SQL, must equal itself).
///
/// ```
/// use std::collections::HashSet;
/// use weir_connector_api::row::{Row, Value};
/// use weir_connector_base::lookup::RowKey;
///
/// let a = RowKey::new(Row::insert(vec![Value::Int64(7), Value::Float64(0.0)]));
/// let b = RowKey::new(Row::insert(vec![Value::Int64(7), Value::Float64(-0.0)]));
/// assert_eq!(a, b);
/// assert_eq!(HashSet::from([a, b]).len(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct RowKey(Row);

impl RowKey {
    /// A key of these values.
    pub fn new(row: Row) -> Self {
        RowKey(row)
    }

    /// The key of `row`'s values at `indices`, in that order; a missing index is `NULL`.
    pub fn project(row: &Row, indices: &[usize]) -> Self {
        RowKey(Row::insert(
            indices
                .iter()
                .map(|i| row.get(*i).cloned().unwrap_or(Value::Null))
                .collect(),
        ))
    }

    /// The key's values as a row.
    pub fn row(&self) -> &Row {
        &self.0
    }

    /// Whether any key value is `NULL` (SQL joins never match such a key).
    pub fn has_null(&self) -> bool {
        self.0.values.iter().any(|v| matches!(v, Value::Null))
    }
}

/// A float's bits with every zero and every NaN made one value.
fn float_bits(f: f64) -> u64 {
    if f == 0.0 {
        0
    } else if f.is_nan() {
        f64::NAN.to_bits()
    } else {
        f.to_bits()
    }
}

fn value_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float64(x), Value::Float64(y)) => float_bits(*x) == float_bits(*y),
        _ => a == b,
    }
}

impl PartialEq for RowKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.values.len() == other.0.values.len()
            && self
                .0
                .values
                .iter()
                .zip(&other.0.values)
                .all(|(a, b)| value_eq(a, b))
    }
}

impl Eq for RowKey {}

impl Hash for RowKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_usize(self.0.values.len());
        for value in &self.0.values {
            std::mem::discriminant(value).hash(state);
            match value {
                Value::Boolean(b) => b.hash(state),
                Value::Int64(n) | Value::TimestampMillis(n) => n.hash(state),
                Value::Float64(f) => float_bits(*f).hash(state),
                Value::String(s) => s.hash(state),
                Value::Bytes(b) => b.hash(state),
                // Null, and variants added later (equal ones hash alike by discriminant).
                _ => {}
            }
        }
    }
}

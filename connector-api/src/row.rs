//! The dynamic row type of declarative pipelines: a [`Schema`] of typed fields, rows of
//! [`Value`]s, and a [`RowKind`] for changelogs (CDC formats such as debezium-json).
//!
//! ```
//! use weir_connector_api::row::{DataType, Field, Row, RowKind, Schema, Value};
//! let schema = Schema::new(vec![
//!     Field::new("id", DataType::Int64, false),
//!     Field::new("name", DataType::String, true),
//! ]);
//! let row = Row::insert(vec![Value::Int64(7), Value::String("Ada".into())]);
//! assert_eq!(schema.index_of("name"), Some(1));
//! assert_eq!(row.get(1), Some(&Value::String("Ada".into())));
//! assert_eq!(row.kind, RowKind::Insert);
//! ```

use std::fmt;

/// The type of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DataType {
    /// true / false.
    Boolean,
    /// A 64-bit signed integer.
    Int64,
    /// A 64-bit float.
    Float64,
    /// UTF-8 text.
    String,
    /// Raw bytes.
    Bytes,
    /// Milliseconds since the Unix epoch.
    TimestampMillis,
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DataType::Boolean => "boolean",
            DataType::Int64 => "int64",
            DataType::Float64 => "float64",
            DataType::String => "string",
            DataType::Bytes => "bytes",
            DataType::TimestampMillis => "timestamp",
        })
    }
}

/// A named, typed field.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Field {
    /// The field's name.
    pub name: String,
    /// Its type.
    pub data_type: DataType,
    /// Whether it may be null.
    pub nullable: bool,
}

impl Field {
    /// A field.
    pub fn new(name: impl Into<String>, data_type: DataType, nullable: bool) -> Self {
        Field {
            name: name.into(),
            data_type,
            nullable,
        }
    }
}

/// The fields of a row, in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Schema {
    /// The fields.
    pub fields: Vec<Field>,
}

impl Schema {
    /// A schema of these fields.
    pub fn new(fields: Vec<Field>) -> Self {
        Schema { fields }
    }

    /// The position of a field by name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }
}

/// One value of a row.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// No value.
    Null,
    /// A boolean.
    Boolean(bool),
    /// An integer.
    Int64(i64),
    /// A float.
    Float64(f64),
    /// Text.
    String(String),
    /// Bytes.
    Bytes(Vec<u8>),
    /// A timestamp in epoch milliseconds.
    TimestampMillis(i64),
}

/// What a row means in a changelog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RowKind {
    /// A new row (and the only kind in append-only streams).
    #[default]
    Insert,
    /// The old image of an updated row.
    UpdateBefore,
    /// The new image of an updated row.
    UpdateAfter,
    /// A deleted row.
    Delete,
}

/// A row: values in schema order, with its changelog kind.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Row {
    /// Its changelog kind.
    pub kind: RowKind,
    /// Its values, in schema order.
    pub values: Vec<Value>,
}

impl Row {
    /// An insert row.
    pub fn insert(values: Vec<Value>) -> Self {
        Row {
            kind: RowKind::Insert,
            values,
        }
    }

    /// A row of a given kind.
    pub fn with_kind(kind: RowKind, values: Vec<Value>) -> Self {
        Row { kind, values }
    }

    /// The value at a position.
    pub fn get(&self, index: usize) -> Option<&Value> {
        self.values.get(index)
    }
}

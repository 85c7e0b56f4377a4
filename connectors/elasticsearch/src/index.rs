//! Index names: a fixed name, or a pattern built from a field (`orders-{at|%Y-%m-%d}`).

use std::fmt::Write as _;
use std::sync::Arc;

use chrono::format::{Item, StrftimeItems};
use chrono::DateTime;
use weir_connector_api::row::{DataType, Row, Schema, Value};

/// Where a row's document goes.
///
/// A pattern has literal text and `{field}` or `{field|<strftime format>}` parts: `{field}`
/// inserts the field's value, `{field|%Y-%m-%d}` formats a timestamp field (or an `int64` of
/// epoch milliseconds) in UTC. `{{` and `}}` are literal braces.
///
/// ```
/// use weir_connector_api::row::{DataType, Field, Row, Schema, Value};
/// use weir_connector_elasticsearch::IndexRouting;
///
/// let schema = Schema::new(vec![
///     Field::new("id", DataType::Int64, false),
///     Field::new("at", DataType::TimestampMillis, false),
///     Field::new("region", DataType::String, true),
/// ]);
/// let routing = IndexRouting::parse("orders-{region}-{at|%Y-%m-%d}", &schema)?;
/// let row = Row::insert(vec![
///     Value::Int64(1),
///     Value::TimestampMillis(1_767_225_600_000), // 2026-01-01T00:00:00Z
///     Value::String("eu".into()),
/// ]);
/// assert_eq!(&*routing.index_of(&row)?, "orders-eu-2026-01-01");
/// assert!(IndexRouting::parse("orders", &schema)?.is_fixed());
/// // Fields must exist, formats must be valid, names must be lowercase.
/// assert!(IndexRouting::parse("orders-{day}", &schema).is_err());
/// assert!(IndexRouting::parse("orders-{at|%Q}", &schema).is_err());
/// assert!(IndexRouting::parse("Orders", &schema).is_err());
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone)]
pub enum IndexRouting {
    /// Every document in one index.
    Fixed(Arc<str>),
    /// The index from the row's fields.
    Pattern(IndexPattern),
}

/// A parsed index-name pattern (see [`IndexRouting`]).
#[derive(Debug, Clone)]
pub struct IndexPattern {
    parts: Vec<Part>,
    /// The last name made, reused while rows go to the same index (no allocation).
    last: Option<Arc<str>>,
}

/// A piece of a pattern.
#[derive(Debug, Clone)]
pub(crate) enum Part {
    /// Text as it is.
    Literal(String),
    /// The value of field `position` (a string, int64, boolean or millisecond timestamp).
    Field { position: usize, name: String },
    /// The time of field `position` (a millisecond timestamp or an int64 of epoch
    /// milliseconds) formatted in UTC.
    Date {
        position: usize,
        name: String,
        format: Vec<Item<'static>>,
    },
}

impl IndexRouting {
    /// Parses `pattern` against `schema`; the error says what is wrong.
    pub fn parse(pattern: &str, schema: &Schema) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut inner = String::new();
                    let mut closed = false;
                    for c in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        inner.push(c);
                    }
                    if !closed {
                        return Err(format!(
                            "`{pattern}` has a `{{` without its `}}` (write `{{{{` for a literal brace)"
                        ));
                    }
                    if !literal.is_empty() {
                        check_literal(&literal, pattern)?;
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(field_part(&inner, pattern, schema)?);
                }
                '}' => {
                    return Err(format!(
                        "`{pattern}` has a `}}` without its `{{` (write `}}}}` for a literal brace)"
                    ))
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            check_literal(&literal, pattern)?;
            parts.push(Part::Literal(literal));
        }
        match parts.as_slice() {
            [] => Err("the index name is empty".to_owned()),
            [Part::Literal(name)] => {
                check_index_start(name, pattern)?;
                Ok(IndexRouting::Fixed(Arc::from(name.as_str())))
            }
            [Part::Literal(first), ..] => {
                check_index_start(first, pattern)?;
                Ok(IndexRouting::Pattern(IndexPattern { parts, last: None }))
            }
            _ => Ok(IndexRouting::Pattern(IndexPattern { parts, last: None })),
        }
    }

    /// Whether every document goes to one index.
    pub fn is_fixed(&self) -> bool {
        matches!(self, IndexRouting::Fixed(_))
    }

    /// The fixed index name, if it is one.
    pub fn fixed_name(&self) -> Option<&str> {
        match self {
            IndexRouting::Fixed(name) => Some(name),
            IndexRouting::Pattern(_) => None,
        }
    }

    /// The index of `row` (a cheap reference count while rows keep going to one index).
    pub fn index_of(&self, row: &Row) -> Result<Arc<str>, String> {
        match self {
            IndexRouting::Fixed(name) => Ok(Arc::clone(name)),
            IndexRouting::Pattern(pattern) => pattern.render(row),
        }
    }

    /// Like [`index_of`](Self::index_of), reusing the previous name when it is the same.
    pub(crate) fn index_of_mut(
        &mut self,
        row: &Row,
        scratch: &mut String,
    ) -> Result<Arc<str>, String> {
        match self {
            IndexRouting::Fixed(name) => Ok(Arc::clone(name)),
            IndexRouting::Pattern(pattern) => {
                scratch.clear();
                pattern.write(row, scratch)?;
                Ok(pattern.intern(scratch))
            }
        }
    }
}

impl IndexPattern {
    /// `name` as a shared string: the previous one when it is the same (no allocation).
    pub(crate) fn intern(&mut self, name: &str) -> Arc<str> {
        if let Some(last) = &self.last {
            if **last == *name {
                return Arc::clone(last);
            }
        }
        let name: Arc<str> = Arc::from(name);
        self.last = Some(Arc::clone(&name));
        name
    }

    /// The parts, for the columnar sink (which reads the fields from columns).
    #[cfg_attr(not(weir_api_1_1), allow(dead_code))]
    pub(crate) fn parts(&self) -> &[Part] {
        &self.parts
    }
}

impl IndexPattern {
    fn render(&self, row: &Row) -> Result<Arc<str>, String> {
        let mut name = String::new();
        self.write(row, &mut name)?;
        Ok(Arc::from(name))
    }

    fn write(&self, row: &Row, out: &mut String) -> Result<(), String> {
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Field { position, name } => match row.get(*position) {
                    Some(Value::String(s)) => out.push_str(s),
                    Some(Value::Int64(n) | Value::TimestampMillis(n)) => {
                        let _ = write!(out, "{n}");
                    }
                    Some(Value::Boolean(b)) => {
                        let _ = write!(out, "{b}");
                    }
                    Some(Value::Null) | None => {
                        return Err(format!(
                            "field `{name}` of the index pattern is null: every row needs a value"
                        ))
                    }
                    Some(other) => {
                        return Err(format!(
                            "field `{name}` of the index pattern holds {other:?}, which makes no index name"
                        ))
                    }
                },
                Part::Date {
                    position,
                    name,
                    format,
                } => {
                    let millis = match row.get(*position) {
                        Some(v @ (Value::TimestampMillis(_) | Value::Int64(_) | Value::Timestamp(..))) => {
                            v.event_time_millis().unwrap_or(i64::MIN)
                        }
                        Some(Value::Null) | None => {
                            return Err(format!(
                                "field `{name}` of the index pattern is null: every row needs a time"
                            ))
                        }
                        Some(other) => {
                            return Err(format!(
                                "field `{name}` of the index pattern holds {other:?}, not a time"
                            ))
                        }
                    };
                    let time = DateTime::from_timestamp_millis(millis).ok_or_else(|| {
                        format!("field `{name}`: {millis} ms is out of the range of dates")
                    })?;
                    let _ = write!(out, "{}", time.format_with_items(format.iter()));
                }
            }
        }
        Ok(())
    }
}

fn field_part(inner: &str, pattern: &str, schema: &Schema) -> Result<Part, String> {
    let (name, format) = match inner.split_once('|') {
        Some((name, format)) => (name.trim(), Some(format)),
        None => (inner.trim(), None),
    };
    let Some(position) = schema.index_of(name) else {
        let fields: Vec<&str> = schema.fields.iter().map(|f| f.name.as_str()).collect();
        return Err(format!(
            "`{pattern}` names field `{name}`, which the rows do not have (fields: {})",
            fields.join(", ")
        ));
    };
    let data_type = schema.fields.get(position).map(|f| f.data_type.clone());
    let Some(format) = format else {
        return match data_type {
            Some(DataType::String | DataType::Int64 | DataType::Boolean | DataType::TimestampMillis) => {
                Ok(Part::Field {
                    position,
                    name: name.to_owned(),
                })
            }
            other => Err(format!(
                "`{pattern}`: field `{name}` is {} and makes no index name (use a string, int64, boolean or timestamp field)",
                other.map_or_else(|| "unknown".to_owned(), |t| t.to_string())
            )),
        };
    };
    if !matches!(data_type, Some(DataType::TimestampMillis | DataType::Int64)) {
        return Err(format!(
            "`{pattern}`: `{{{name}|{format}}}` formats a time, but `{name}` is {} (use a timestamp, or an int64 of epoch milliseconds)",
            data_type.map_or_else(|| "unknown".to_owned(), |t| t.to_string())
        ));
    }
    let items: Vec<Item<'static>> = StrftimeItems::new(format).map(to_owned_item).collect();
    if items.iter().any(|i| matches!(i, Item::Error)) || items.is_empty() {
        return Err(format!(
            "`{pattern}`: `{format}` is not a valid date format (strftime, e.g. `%Y-%m-%d`)"
        ));
    }
    // Check what it makes: a sample date must give a valid piece of an index name.
    let sample = DateTime::from_timestamp_millis(1_767_225_600_000)
        .map(|t| t.format_with_items(items.iter()).to_string())
        .unwrap_or_default();
    if sample
        .chars()
        .any(|c| INVALID.contains(&c) || c.is_uppercase())
    {
        return Err(format!(
            "`{pattern}`: `{format}` makes names like `{sample}`, with characters an index name may not have (uppercase, space, `\\ / * ? \" < > | , # :`)"
        ));
    }
    Ok(Part::Date {
        position,
        name: name.to_owned(),
        format: items,
    })
}

fn to_owned_item(item: Item<'_>) -> Item<'static> {
    match item {
        Item::Literal(s) => Item::OwnedLiteral(s.into()),
        Item::Space(s) => Item::OwnedSpace(s.into()),
        Item::OwnedLiteral(s) => Item::OwnedLiteral(s),
        Item::OwnedSpace(s) => Item::OwnedSpace(s),
        Item::Numeric(n, p) => Item::Numeric(n, p),
        Item::Fixed(f) => Item::Fixed(f),
        Item::Error => Item::Error,
    }
}

/// Characters an index name may not contain.
const INVALID: [char; 12] = ['\\', '/', '*', '?', '"', '<', '>', '|', ' ', ',', '#', ':'];

fn check_literal(text: &str, pattern: &str) -> Result<(), String> {
    if let Some(c) = text
        .chars()
        .find(|c| INVALID.contains(c) || c.is_uppercase() || c.is_control())
    {
        return Err(format!(
            "`{pattern}` has `{}`, which an index name may not contain (index names are lowercase, without `\\ / * ? \" < > | , # :` or spaces)",
            c.escape_default()
        ));
    }
    Ok(())
}

fn check_index_start(first: &str, pattern: &str) -> Result<(), String> {
    if first.starts_with(['-', '_', '+']) || first == "." || first == ".." {
        return Err(format!(
            "`{pattern}`: an index name may not start with `-`, `_` or `+`, nor be `.` or `..`"
        ));
    }
    Ok(())
}

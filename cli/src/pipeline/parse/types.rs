//! The type syntax of schema fields (`type = "…"`), a small recursive-descent parser:
//!
//! ```text
//! type   := scalar | decimal(P[, S]) | timestamp[(UNIT[, ZONE])] | list<type>
//!         | struct<name: type [not null], …> | map<type, type>
//! scalar := boolean | int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | uint64
//!         | float32 | float64 | string | bytes | binary | date | timestamp | timestamp_tz
//! UNIT   := s | ms | us | ns          ZONE := "UTC" | 'Europe/Berlin' | +02:00 | UTC
//! ```
//!
//! Nesting is bounded by [`MAX_DEPTH`], so no input recurses without limit. Errors carry the
//! byte offset in the type text where they were found.

use std::sync::Arc;

use weir_connector_api::row::{DataType, Field, TimeUnit};

use super::super::diag::did_you_mean;

/// How deeply types may nest (`list<list<…>>`): deeper types are refused.
pub(super) const MAX_DEPTH: usize = 16;

/// The type names, for "the types are" lists.
pub(super) const TYPE_NAMES: [&str; 21] = [
    "boolean",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float32",
    "float64",
    "decimal(P, S)",
    "string",
    "bytes",
    "binary",
    "date",
    "timestamp",
    "timestamp(UNIT[, ZONE])",
    "list<T>",
    "struct<NAME: T, …>",
    "map<K, V>",
];

/// The bare names a type can start with.
const WORDS: [&str; 21] = [
    "boolean",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float32",
    "float64",
    "decimal",
    "string",
    "bytes",
    "binary",
    "date",
    "timestamp",
    "timestamp_tz",
    "list",
    "struct",
    "map",
];

/// A syntax error: where in the type text, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TypeError {
    /// The byte offset in the type text.
    pub(super) offset: usize,
    /// The message (without position).
    pub(super) message: String,
    /// Whether the whole type is one unknown name (so the caller lists the types).
    pub(super) unknown_name: bool,
}

/// Parses a type.
pub(super) fn parse_type(text: &str) -> Result<DataType, TypeError> {
    let mut p = TypeParser { text, pos: 0 };
    let t = p.data_type(0)?;
    p.skip_space();
    if p.pos < text.len() {
        return Err(p.error(format!(
            "unexpected `{}` after the type `{t}`",
            p.rest().chars().next().unwrap_or(' ')
        )));
    }
    Ok(t)
}

/// A did-you-mean for a name that is no type (SQL and Rust spellings, then near names).
pub(super) fn alias(name: &str) -> Option<String> {
    let known = match name.to_ascii_lowercase().as_str() {
        "int" | "integer" | "bigint" | "long" | "i64" => "int64",
        "tinyint" | "byte" | "i8" => "int8",
        "smallint" | "short" | "i16" => "int16",
        "int4" | "i32" => "int32",
        "u8" => "uint8",
        "u16" => "uint16",
        "u32" => "uint32",
        "u64" | "ulong" => "uint64",
        "double" | "float" | "f64" => "float64",
        "real" | "f32" => "float32",
        "bool" => "boolean",
        "text" | "varchar" | "str" | "utf8" => "string",
        "blob" | "varbinary" | "bytea" => "bytes",
        "datetime" | "timestamp_ltz" | "instant" => "timestamp",
        "timestamptz" => "timestamp_tz",
        "date32" => "date",
        "numeric" | "number" | "decimal128" => "decimal(P, S)",
        "array" | "vec" => "list<T>",
        "row" | "record" => "struct<NAME: T, …>",
        "dict" | "hashmap" | "object" => "map<K, V>",
        _ => return did_you_mean(name, WORDS).map(str::to_owned),
    };
    Some(known.to_owned())
}

struct TypeParser<'a> {
    text: &'a str,
    pos: usize,
}

impl TypeParser<'_> {
    fn rest(&self) -> &str {
        self.text.get(self.pos..).unwrap_or("")
    }

    fn error(&self, message: String) -> TypeError {
        TypeError {
            offset: self.pos,
            message,
            unknown_name: false,
        }
    }

    fn skip_space(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    /// A name: letters, digits, `_`.
    fn word(&mut self) -> &str {
        self.skip_space();
        let rest = self.rest();
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let start = self.pos;
        self.pos += len;
        self.text.get(start..self.pos).unwrap_or("")
    }

    /// Consumes `c` if it comes next.
    fn eat(&mut self, c: char) -> bool {
        self.skip_space();
        if self.rest().starts_with(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char, context: &str) -> Result<(), TypeError> {
        if self.eat(c) {
            return Ok(());
        }
        let found = self
            .rest()
            .chars()
            .next()
            .map_or_else(|| "the end".to_owned(), |c| format!("`{c}`"));
        Err(self.error(format!("expected `{c}` {context}, found {found}")))
    }

    fn number(&mut self, what: &str) -> Result<i64, TypeError> {
        self.skip_space();
        let rest = self.rest();
        let len = rest
            .char_indices()
            .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && c == '-')))
            .map_or(rest.len(), |(i, _)| i);
        let digits = rest.get(..len).unwrap_or("");
        let value = digits
            .parse()
            .map_err(|_| self.error(format!("expected {what} (a whole number)")))?;
        self.pos += len;
        Ok(value)
    }

    fn data_type(&mut self, depth: usize) -> Result<DataType, TypeError> {
        if depth > MAX_DEPTH {
            return Err(self.error(format!(
                "types nest at most {MAX_DEPTH} levels deep: flatten this type"
            )));
        }
        let start = {
            self.skip_space();
            self.pos
        };
        let word = self.word().to_owned();
        let t = match word.as_str() {
            "boolean" => DataType::Boolean,
            "int8" => DataType::Int8,
            "int16" => DataType::Int16,
            "int32" => DataType::Int32,
            "int64" => DataType::Int64,
            "uint8" => DataType::UInt8,
            "uint16" => DataType::UInt16,
            "uint32" => DataType::UInt32,
            "uint64" => DataType::UInt64,
            "float32" => DataType::Float32,
            "float64" => DataType::Float64,
            "string" => DataType::String,
            "bytes" | "binary" => DataType::Bytes,
            "date" => DataType::Date32,
            "timestamp_tz" => DataType::timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            "decimal" => self.decimal()?,
            "timestamp" => self.timestamp()?,
            "list" => {
                self.expect('<', "after `list` (as in `list<int64>`)")?;
                let item = self.data_type(depth + 1)?;
                self.expect('>', "to close `list<…>`")?;
                DataType::List(Box::new(item))
            }
            "map" => {
                self.expect('<', "after `map` (as in `map<string, int64>`)")?;
                let key = self.data_type(depth + 1)?;
                self.expect(',', "between the key and value types of `map<K, V>`")?;
                let value = self.data_type(depth + 1)?;
                self.expect('>', "to close `map<…>`")?;
                DataType::Map(Box::new(key), Box::new(value))
            }
            "struct" => self.fields(depth)?,
            "" => {
                let found = self
                    .rest()
                    .chars()
                    .next()
                    .map_or_else(|| "the end".to_owned(), |c| format!("`{c}`"));
                return Err(self.error(format!("expected a type, found {found}")));
            }
            _ => {
                let mut error = TypeError {
                    offset: start,
                    message: format!("unknown type `{word}`"),
                    unknown_name: true,
                };
                if let Some(a) = alias(&word) {
                    error.message = format!("{}: did you mean `{a}`?", error.message);
                }
                return Err(error);
            }
        };
        Ok(t)
    }

    fn decimal(&mut self) -> Result<DataType, TypeError> {
        self.expect('(', "after `decimal` (as in `decimal(10, 2)`)")?;
        self.skip_space();
        let at = self.pos;
        let precision = self.number("the precision")?;
        let Some(precision) = u8::try_from(precision)
            .ok()
            .filter(|p| (1..=38).contains(p))
        else {
            return Err(TypeError {
                offset: at,
                message: format!("the precision of a decimal is 1 to 38, not {precision}"),
                unknown_name: false,
            });
        };
        let mut scale = 0;
        if self.eat(',') {
            self.skip_space();
            let at = self.pos;
            let s = self.number("the scale")?;
            scale = match i8::try_from(s) {
                Ok(s) if i16::from(s) <= i16::from(precision) && s > -39 => s,
                _ => {
                    return Err(TypeError {
                        offset: at,
                        message: format!(
                            "the scale of a decimal is at most its precision ({precision}), not \
                             {s}"
                        ),
                        unknown_name: false,
                    })
                }
            };
        }
        self.expect(')', "to close `decimal(…)`")?;
        Ok(DataType::Decimal128 { precision, scale })
    }

    fn timestamp(&mut self) -> Result<DataType, TypeError> {
        if !self.eat('(') {
            return Ok(DataType::TimestampMillis);
        }
        let at = self.pos;
        let unit = match self.word() {
            "s" => TimeUnit::Second,
            "ms" => TimeUnit::Millisecond,
            "us" => TimeUnit::Microsecond,
            "ns" => TimeUnit::Nanosecond,
            other => {
                return Err(TypeError {
                    offset: at,
                    message: format!(
                        "unknown timestamp unit `{other}`: the units are s, ms, us, ns"
                    ),
                    unknown_name: false,
                })
            }
        };
        let mut tz: Option<Arc<str>> = None;
        if self.eat(',') {
            self.skip_space();
            let at = self.pos;
            let text = self.text;
            let rest = text.get(at..).unwrap_or("");
            let zone = match rest.chars().next() {
                Some(q @ ('"' | '\'')) => {
                    let body = rest.get(1..).unwrap_or("");
                    let Some(end) = body.find(q) else {
                        return Err(self.error(format!("the time zone's quote {q} is not closed")));
                    };
                    self.pos += end + 2;
                    body.get(..end).unwrap_or("")
                }
                _ => {
                    let end = rest
                        .find(|c: char| c == ')' || c == ',' || c.is_whitespace())
                        .unwrap_or(rest.len());
                    self.pos += end;
                    rest.get(..end).unwrap_or("")
                }
            };
            if zone.is_empty() {
                return Err(TypeError {
                    offset: at,
                    message: "the time zone is empty: write one like \"UTC\", \"+02:00\" or \
                              \"Europe/Berlin\", or leave it out"
                        .to_owned(),
                    unknown_name: false,
                });
            }
            // The zone must be one Arrow readers can use: an IANA name from the time zone
            // database (chrono-tz's copy of it, the one arrow-array uses) or an offset.
            if zone.parse::<arrow_array::timezone::Tz>().is_err() {
                return Err(TypeError {
                    offset: at,
                    message: format!(
                        "unknown time zone `{zone}`: write a name of the IANA time zone database \
                         like \"Europe/Berlin\" or \"UTC\", or an offset like \"+02:00\""
                    ),
                    unknown_name: false,
                });
            }
            tz = Some(zone.into());
        }
        self.expect(')', "to close `timestamp(…)`")?;
        Ok(DataType::timestamp(unit, tz))
    }

    fn fields(&mut self, depth: usize) -> Result<DataType, TypeError> {
        self.expect('<', "after `struct` (as in `struct<a: int64, b: string>`)")?;
        let mut fields: Vec<Field> = Vec::new();
        if self.eat('>') {
            return Err(self.error("a struct needs at least one field".to_owned()));
        }
        loop {
            let at = {
                self.skip_space();
                self.pos
            };
            let name = self.word().to_owned();
            if name.is_empty() {
                return Err(self.error(
                    "expected a field name (letters, digits and `_`) in `struct<…>`".to_owned(),
                ));
            }
            if fields.iter().any(|f| f.name == name) {
                return Err(TypeError {
                    offset: at,
                    message: format!("field `{name}` appears twice in the struct"),
                    unknown_name: false,
                });
            }
            self.expect(':', &format!("after the field name `{name}`"))?;
            let data_type = self.data_type(depth + 1)?;
            let mut nullable = true;
            let save = self.pos;
            if self.word() == "not" {
                if self.word() != "null" {
                    return Err(self.error("expected `null` after `not`".to_owned()));
                }
                nullable = false;
            } else {
                self.pos = save;
            }
            fields.push(Field::new(name, data_type, nullable));
            if self.eat('>') {
                break;
            }
            self.expect(
                ',',
                "between the fields of `struct<…>` (or `>` to close it)",
            )?;
        }
        Ok(DataType::Struct(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_parses_back_from_its_display() {
        let types = [
            "boolean",
            "int8",
            "uint64",
            "float32",
            "decimal(10, 2)",
            "decimal(38, -2)",
            "date",
            "timestamp",
            "timestamp(ns)",
            "timestamp(ms, \"Europe/Berlin\")",
            "list<list<int16>>",
            "struct<a: int64, b: string not null, c: map<string, list<float64>>>",
            "map<int32, struct<x: bytes>>",
        ];
        for text in types {
            let t = parse_type(text).map_err(|e| e.message);
            assert_eq!(t.map(|t| t.to_string()), Ok(text.to_owned()));
        }
    }

    #[test]
    fn spellings_normalize() {
        let same = [
            ("timestamp(ms)", "timestamp"),
            ("binary", "bytes"),
            ("decimal(5)", "decimal(5, 0)"),
            ("timestamp( us ,  'UTC' )", "timestamp(us, \"UTC\")"),
            ("timestamp(s, +02:00)", "timestamp(s, \"+02:00\")"),
            (
                "timestamp(ns, America/Argentina/Buenos_Aires)",
                "timestamp(ns, \"America/Argentina/Buenos_Aires\")",
            ),
            ("timestamp(ms, 'Etc/GMT+5')", "timestamp(ms, \"Etc/GMT+5\")"),
            ("timestamp_tz", "timestamp(ms, \"UTC\")"),
            ("  list < int8 > ", "list<int8>"),
        ];
        for (text, display) in same {
            assert_eq!(
                parse_type(text).map(|t| t.to_string()),
                Ok(display.to_owned()),
                "{text}"
            );
        }
    }

    #[test]
    fn mistakes_say_where_and_what() {
        let cases = [
            ("int", 0, "did you mean `int64`?"),
            ("list<strng>", 5, "did you mean `string`?"),
            ("decimal(39, 2)", 8, "precision of a decimal is 1 to 38"),
            ("decimal(5, 6)", 11, "at most its precision"),
            ("timestamp(h)", 10, "units are s, ms, us, ns"),
            ("map<string>", 10, "expected `,`"),
            ("struct<a: int8, a: int16>", 16, "appears twice"),
            ("struct<>", 8, "at least one field"),
            ("list<int8> x", 11, "unexpected `x`"),
            ("timestamp(us, \"UTC)", 14, "not closed"),
            (
                "timestamp(ms, \"Mars/Olympus\")",
                14,
                "unknown time zone `Mars/Olympus`",
            ),
            ("timestamp(ms, +25:00)", 14, "unknown time zone"),
            ("timestamp(s, Europe/Berln)", 13, "IANA time zone database"),
        ];
        for (text, offset, message) in cases {
            let e = parse_type(text).err();
            assert!(
                e.as_ref()
                    .is_some_and(|e| e.offset == offset && e.message.contains(message)),
                "{text}: {e:?}"
            );
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = "list<".repeat(MAX_DEPTH + 1) + "int8" + &">".repeat(MAX_DEPTH + 1);
        assert!(parse_type(&deep).is_err());
        let ok = "list<".repeat(MAX_DEPTH) + "int8" + &">".repeat(MAX_DEPTH);
        assert_eq!(parse_type(&ok).map(|t| t.depth()), Ok(MAX_DEPTH));
        // Far deeper input ends in an error, not a stack overflow.
        let huge = "list<".repeat(100_000);
        assert!(parse_type(&huge).is_err());
    }
}

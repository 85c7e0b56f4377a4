//! JSON values as serde_json's streaming parser gives them ([`JsonCell`]), and the visitors
//! that read an object's fields into one cell per field of a schema (or of a struct type).

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize as _;
use serde_json::value::RawValue;
use weir_connector_api::row::Field;

/// A JSON value as the streaming parser gives it (strings borrowed when unescaped).
#[derive(Debug)]
pub(super) enum JsonCell<'de> {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(Cow<'de, str>),
    /// An array or object where a scalar is expected (an error for every scalar type).
    Nested,
    /// The text of the value of a list, struct or map field, parsed when it is appended.
    Raw(&'de RawValue),
}

/// The fields an object is read into: their names, and which are nested (read as
/// [`JsonCell::Raw`]).
#[derive(Debug, Clone)]
pub(super) struct Keys {
    names: Vec<String>,
    nested: Vec<bool>,
}

impl Keys {
    /// The keys of `fields`.
    pub(super) fn of(fields: &[Field]) -> Self {
        Keys {
            names: fields.iter().map(|f| f.name.clone()).collect(),
            nested: fields.iter().map(|f| f.data_type.is_nested()).collect(),
        }
    }

    /// One cell per field, all missing.
    pub(super) fn empty<'de>(&self) -> Vec<Option<JsonCell<'de>>> {
        let mut cells = Vec::new();
        cells.resize_with(self.names.len(), || None);
        cells
    }
}

/// Visits an object: each key of a field into its cell (a repeated key: the last value, as
/// `serde_json::Map`), other keys' values parsed and dropped.
pub(super) struct ObjectVisitor<'a, 'de> {
    pub(super) keys: &'a Keys,
    pub(super) cells: &'a mut [Option<JsonCell<'de>>],
}

impl<'de> Visitor<'de> for ObjectVisitor<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(index) = map.next_key_seed(KeySeed {
            names: &self.keys.names,
        })? {
            let nested = index.and_then(|i| self.keys.nested.get(i)).copied();
            match (index.and_then(|i| self.cells.get_mut(i)), nested) {
                (Some(cell), Some(nested)) => {
                    *cell = Some(map.next_value_seed(ValueSeed { nested })?);
                }
                _ => {
                    map.next_value_seed(Skip)?;
                }
            }
        }
        Ok(())
    }
}

/// An object read into cells, `None` for `null`; any other value is an error.
pub(super) struct ImageSeed<'a> {
    pub(super) keys: &'a Keys,
}

/// The cells of an object's fields (`None` for a missing key).
pub(super) type Cells<'de> = Vec<Option<JsonCell<'de>>>;

impl<'de> DeserializeSeed<'de> for ImageSeed<'_> {
    type Value = Option<Cells<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ImageSeed<'_> {
    type Value = Option<Cells<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object or null")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        object_cells(self.keys, map).map(Some)
    }
}

/// The cells of the object `map` (its fields' values by `keys`).
pub(super) fn object_cells<'de, A: MapAccess<'de>>(
    keys: &Keys,
    map: A,
) -> Result<Cells<'de>, A::Error> {
    let mut cells = keys.empty();
    ObjectVisitor {
        keys,
        cells: &mut cells,
    }
    .visit_map(map)?;
    Ok(cells)
}

/// A key: the index of the field of that name, if any.
struct KeySeed<'a> {
    names: &'a [String],
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.names.iter().position(|n| n == key))
    }
}

/// The deepest a captured value may nest for the columnar path. serde_json refuses a message
/// that nests more than 127 arrays and objects deep; a captured value is parsed again on its
/// own, where its depth counts from 0, so one that nests almost that deep makes the batch
/// take the row path, which then decides as the row decoder decides. Up to 3 levels of the
/// message lie above a field's value (canal-json: the event, `data`, the element).
const MAX_RAW_NESTING: usize = 127 - 3;

/// How deeply `json` (JSON text) nests arrays and objects.
fn nesting(json: &str) -> usize {
    let (mut depth, mut deepest) = (0_usize, 0_usize);
    let (mut in_string, mut escaped) = (false, false);
    for b in json.bytes() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// A value of a field: for a nested type its text ([`JsonCell::Raw`], or [`JsonCell::Null`]
/// for `null`), else the scalar.
pub(super) struct ValueSeed {
    pub(super) nested: bool,
}

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = JsonCell<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<JsonCell<'de>, D::Error> {
        if self.nested {
            let raw = <&'de RawValue>::deserialize(d)?;
            if nesting(raw.get()) > MAX_RAW_NESTING {
                return Err(serde::de::Error::custom(
                    "nested too deeply for the columnar path",
                ));
            }
            // Capturing the text checks its syntax but not all of its values (a number out
            // of range, invalid UTF-8 in a string), and a raw value may never be parsed
            // again (a repeated key, an image the event does not use): parse it once here.
            let mut check = serde_json::Deserializer::from_str(raw.get());
            check
                .deserialize_any(Skip)
                .map_err(serde::de::Error::custom)?;
            Ok(if raw.get().trim() == "null" {
                JsonCell::Null
            } else {
                JsonCell::Raw(raw)
            })
        } else {
            d.deserialize_any(CellVisitor)
        }
    }
}

/// A scalar value.
struct CellVisitor;

impl<'de> Visitor<'de> for CellVisitor {
    type Value = JsonCell<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<JsonCell<'de>, E> {
        Ok(JsonCell::Null)
    }
    fn visit_none<E>(self) -> Result<JsonCell<'de>, E> {
        Ok(JsonCell::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<JsonCell<'de>, E> {
        Ok(JsonCell::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<JsonCell<'de>, E> {
        Ok(JsonCell::I64(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<JsonCell<'de>, E> {
        Ok(JsonCell::U64(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<JsonCell<'de>, E> {
        Ok(JsonCell::F64(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<JsonCell<'de>, E> {
        Ok(JsonCell::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<JsonCell<'de>, E> {
        Ok(JsonCell::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<JsonCell<'de>, E> {
        Ok(JsonCell::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<JsonCell<'de>, A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(JsonCell::Nested)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonCell<'de>, A::Error> {
        while map.next_key_seed(Skip)?.is_some() {
            map.next_value_seed(Skip)?;
        }
        Ok(JsonCell::Nested)
    }
}

/// A key (or other string), borrowed from the message where it has no escapes (serde's
/// `Cow<str>` always copies).
pub(super) struct StrSeed;

impl<'de> DeserializeSeed<'de> for StrSeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for StrSeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v))
    }
}

/// Any JSON value, parsed and dropped as a `serde_json::Value` would be parsed: a number out
/// of `f64`'s range or invalid UTF-8 in a string is an error, as on the row path (serde's
/// `IgnoredAny` makes serde_json skip values without those checks).
pub(super) struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(Skip)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(Skip)?.is_some() {
            map.next_value_seed(Skip)?;
        }
        Ok(())
    }
}

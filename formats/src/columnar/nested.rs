//! List, struct and map columns from JSON: the text of a nested value
//! ([`JsonCell::Raw`]) parsed by serde_json into the children's builders, with the rules of
//! `typed::from_json_typed` — list elements may be null, a struct's missing field is null
//! (an error where the field is not nullable), a map's keys are read as text cells and its
//! values may be null; a repeated key keeps its last value, in the order a
//! `serde_json::Map` gives the entries (sorted by key, or in first-seen order with
//! serde_json's `preserve_order`, whichever the build has).

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, LazyLock};

use arrow_array::{ArrayRef, ListArray, MapArray, StructArray};
use arrow_buffer::{NullBufferBuilder, OffsetBuffer};
use arrow_schema::{DataType as ArrowType, FieldRef, Fields};
use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::Value as Json;
use weir_connector_api::columnar::arrow_type;
use weir_connector_api::row::{DataType, Field};

use super::builder::Builder;
use super::cells::{JsonCell, Keys, ObjectVisitor, StrSeed, ValueSeed};

/// Whether a `serde_json::Map` gives its entries sorted by key (without `preserve_order`).
static SORTED_KEYS: LazyLock<bool> = LazyLock::new(|| {
    let mut map = serde_json::Map::new();
    map.insert("b".to_owned(), Json::Null);
    map.insert("a".to_owned(), Json::Null);
    map.keys().next().map(String::as_str) == Some("a")
});

/// Parses `raw` with `visitor`: `Err` for text that is not what it expects, or whose values
/// the columns refuse.
fn parse<'de, V: Visitor<'de, Value = ()>>(cell: &JsonCell<'de>, visitor: V) -> Result<(), ()> {
    let JsonCell::Raw(raw) = cell else {
        return Err(());
    };
    let mut de = serde_json::Deserializer::from_str(raw.get());
    de.deserialize_any(visitor).map_err(|_| ())?;
    de.end().map_err(|_| ())
}

/// Offsets counted in `i32`, as Arrow's `List` and `Map` hold them.
fn offset(len: usize) -> Result<i32, ()> {
    i32::try_from(len).map_err(|_| ())
}

/// A `list<T>` column.
#[derive(Debug)]
pub(crate) struct ListColumn {
    field: FieldRef,
    item: Builder,
    item_nested: bool,
    offsets: Vec<i32>,
    nulls: NullBufferBuilder,
    items: usize,
}

impl ListColumn {
    /// The column of lists of `item`.
    pub(super) fn new(item: &DataType) -> Result<Self, String> {
        let ArrowType::List(field) = arrow_type(&DataType::List(Box::new(item.clone()))) else {
            return Err("no Arrow list type".to_owned());
        };
        Ok(ListColumn {
            field,
            item: Builder::of(item)?,
            item_nested: item.is_nested(),
            offsets: vec![0],
            nulls: NullBufferBuilder::new(0),
            items: 0,
        })
    }

    /// Appends a null.
    pub(super) fn append_null(&mut self) {
        self.nulls.append_null();
        self.offsets.push(*self.offsets.last().unwrap_or(&0));
    }

    /// Appends the value whose text `cell` holds; `Err` where the row decoder fails on it.
    pub(super) fn append_json(&mut self, cell: &JsonCell<'_>, lenient: bool) -> Result<(), ()> {
        parse(
            cell,
            ListVisitor {
                column: self,
                lenient,
            },
        )
    }

    /// The column of the values appended since the last call.
    pub(super) fn finish(&mut self) -> Option<ArrayRef> {
        let offsets = std::mem::replace(&mut self.offsets, vec![0]);
        self.items = 0;
        let list = ListArray::try_new(
            Arc::clone(&self.field),
            OffsetBuffer::new(offsets.into()),
            self.item.finish()?,
            self.nulls.finish(),
        )
        .ok()?;
        Some(Arc::new(list))
    }
}

struct ListVisitor<'a> {
    column: &'a mut ListColumn,
    lenient: bool,
}

impl<'de> Visitor<'de> for ListVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let column = self.column;
        let seed = || ValueSeed {
            nested: column.item_nested,
        };
        while let Some(cell) = seq.next_element_seed(seed())? {
            column
                .item
                .append_json(&cell, self.lenient)
                .map_err(|()| A::Error::custom("refused"))?;
            column.items += 1;
        }
        let end = offset(column.items).map_err(|()| A::Error::custom("too many items"))?;
        column.offsets.push(end);
        column.nulls.append_non_null();
        Ok(())
    }
}

/// A `struct<…>` column.
#[derive(Debug)]
pub(crate) struct StructColumn {
    fields: Fields,
    keys: Keys,
    nullable: Vec<bool>,
    children: Vec<Builder>,
    nulls: NullBufferBuilder,
}

impl StructColumn {
    /// The column of structs of `fields`.
    pub(super) fn new(fields: &[Field]) -> Result<Self, String> {
        let ArrowType::Struct(arrow) = arrow_type(&DataType::Struct(fields.to_vec())) else {
            return Err("no Arrow struct type".to_owned());
        };
        Ok(StructColumn {
            fields: arrow,
            keys: Keys::of(fields),
            nullable: fields.iter().map(|f| f.nullable).collect(),
            children: super::builder::builders(fields)?,
            nulls: NullBufferBuilder::new(0),
        })
    }

    /// Appends a null.
    pub(super) fn append_null(&mut self) {
        self.nulls.append_null();
        for child in &mut self.children {
            child.append_null();
        }
    }

    /// Appends the value whose text `cell` holds; `Err` where the row decoder fails on it.
    pub(super) fn append_json(&mut self, cell: &JsonCell<'_>, lenient: bool) -> Result<(), ()> {
        let JsonCell::Raw(raw) = cell else {
            return Err(());
        };
        let mut cells = self.keys.empty();
        let mut de = serde_json::Deserializer::from_str(raw.get());
        de.deserialize_map(ObjectVisitor {
            keys: &self.keys,
            cells: &mut cells,
        })
        .map_err(|_| ())?;
        de.end().map_err(|_| ())?;
        for ((cell, child), nullable) in cells.iter().zip(&mut self.children).zip(&self.nullable) {
            match cell {
                None | Some(JsonCell::Null) if !nullable => return Err(()),
                None => child.append_null(),
                Some(cell) => child.append_json(cell, lenient)?,
            }
        }
        self.nulls.append_non_null();
        Ok(())
    }

    /// The column of the values appended since the last call.
    pub(super) fn finish(&mut self) -> Option<ArrayRef> {
        let children = self
            .children
            .iter_mut()
            .map(Builder::finish)
            .collect::<Option<Vec<_>>>()?;
        let array =
            StructArray::try_new(self.fields.clone(), children, self.nulls.finish()).ok()?;
        Some(Arc::new(array))
    }
}

/// A `map<K, V>` column.
#[derive(Debug)]
pub(crate) struct MapColumn {
    entries: FieldRef,
    kv: Fields,
    keys: Builder,
    values: Builder,
    value_nested: bool,
    offsets: Vec<i32>,
    nulls: NullBufferBuilder,
    count: usize,
}

impl MapColumn {
    /// The column of maps from `key` to `value`.
    pub(super) fn new(key: &DataType, value: &DataType) -> Result<Self, String> {
        let data_type = DataType::Map(Box::new(key.clone()), Box::new(value.clone()));
        let ArrowType::Map(entries, _) = arrow_type(&data_type) else {
            return Err("no Arrow map type".to_owned());
        };
        let ArrowType::Struct(kv) = entries.data_type().clone() else {
            return Err("no Arrow map entries".to_owned());
        };
        Ok(MapColumn {
            entries,
            kv,
            keys: Builder::of(key)?,
            values: Builder::of(value)?,
            value_nested: value.is_nested(),
            offsets: vec![0],
            nulls: NullBufferBuilder::new(0),
            count: 0,
        })
    }

    /// Appends a null.
    pub(super) fn append_null(&mut self) {
        self.nulls.append_null();
        self.offsets.push(*self.offsets.last().unwrap_or(&0));
    }

    /// Appends the value whose text `cell` holds; `Err` where the row decoder fails on it.
    pub(super) fn append_json(&mut self, cell: &JsonCell<'_>, lenient: bool) -> Result<(), ()> {
        let JsonCell::Raw(raw) = cell else {
            return Err(());
        };
        let mut de = serde_json::Deserializer::from_str(raw.get());
        let mut entries = de
            .deserialize_map(EntriesVisitor {
                nested: self.value_nested,
            })
            .map_err(|_| ())?;
        de.end().map_err(|_| ())?;
        dedupe(&mut entries);
        for (key, value) in &entries {
            self.keys.append_text(key)?;
            self.values.append_json(value, lenient)?;
        }
        self.count += entries.len();
        self.offsets.push(offset(self.count)?);
        self.nulls.append_non_null();
        Ok(())
    }

    /// The column of the values appended since the last call.
    pub(super) fn finish(&mut self) -> Option<ArrayRef> {
        let offsets = std::mem::replace(&mut self.offsets, vec![0]);
        self.count = 0;
        let entries = StructArray::try_new(
            self.kv.clone(),
            vec![self.keys.finish()?, self.values.finish()?],
            None,
        )
        .ok()?;
        let map = MapArray::try_new(
            Arc::clone(&self.entries),
            OffsetBuffer::new(offsets.into()),
            entries,
            self.nulls.finish(),
            false,
        )
        .ok()?;
        Some(Arc::new(map))
    }
}

type Entries<'de> = Vec<(Cow<'de, str>, JsonCell<'de>)>;

/// The entries as a `serde_json::Map` holds them: one per key, with the key's last value;
/// sorted by key, or where the key was first seen (`preserve_order`).
fn dedupe(entries: &mut Entries<'_>) {
    if *SORTED_KEYS {
        // A stable sort keeps repeated keys in message order: the last one wins.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut kept: Entries<'_> = Vec::with_capacity(entries.len());
        for entry in entries.drain(..) {
            match kept.last_mut() {
                Some(last) if last.0 == entry.0 => *last = entry,
                _ => kept.push(entry),
            }
        }
        *entries = kept;
    } else {
        let mut kept: Entries<'_> = Vec::with_capacity(entries.len());
        for entry in entries.drain(..) {
            match kept.iter_mut().find(|k| k.0 == entry.0) {
                Some(first) => first.1 = entry.1,
                None => kept.push(entry),
            }
        }
        *entries = kept;
    }
}

/// A map's entries, in message order.
struct EntriesVisitor {
    nested: bool,
}

impl<'de> Visitor<'de> for EntriesVisitor {
    type Value = Entries<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<'de>, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key_seed(StrSeed)? {
            let value = map.next_value_seed(ValueSeed {
                nested: self.nested,
            })?;
            entries.push((key, value));
        }
        Ok(entries)
    }
}

impl<'de> DeserializeSeed<'de> for EntriesVisitor {
    type Value = Entries<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Entries<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

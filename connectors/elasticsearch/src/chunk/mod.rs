//! The columnar sink of pipelines (API line 1.1): [`ChunkEmitter`] turns every row of a
//! [`Chunk`] into the bulk action the row sink's [`RowEmitter`] makes of the same row — same
//! action, index, id and document bytes — reading the values straight from the Arrow columns,
//! without making a row. The writer, its batching, retries, failure policy and checkpoint
//! state are the row sink's ([`ElasticsearchSink`](crate::sink::ElasticsearchSink) with
//! another [`BatchEmitter`]), so a checkpoint taken on rows restores on chunks and back.

mod column;
#[cfg(test)]
mod tests;

use std::fmt::Write as _;

use base64::Engine as _;
use chrono::DateTime;
use weir_connector_api::columnar::Chunk;
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::row::RowKind;
use weir_connector_api::sink::WriteContext;

use crate::index::{IndexRouting, Part};
use crate::row::{check_id_length, missing_id, RowEmitter};
use crate::sink::{ActionOut, BatchEmitter, BulkAction};
use column::Column;

fn refused(reason: String) -> ConnectorError {
    ConnectorError::malformed("a row for Elasticsearch", reason)
}

/// Chunks as bulk actions: for each row, what [`RowEmitter`] makes of it (see its table for
/// the changelog mapping: `+I`/`+U` write, `-D` deletes, `-U` makes none), in row order.
///
/// ```
/// use weir_connector_api::columnar::{arrow_schema, Chunk};
/// use weir_connector_api::row::{DataType, Field, Row, RowKind, Schema, Value};
/// use weir_connector_elasticsearch::sink::ActionKind;
/// use weir_connector_elasticsearch::{ChunkEmitter, IndexRouting, RowEmitter};
///
/// let schema = Schema::new(vec![
///     Field::new("id", DataType::Int64, false),
///     Field::new("name", DataType::String, true),
/// ]);
/// let rows = RowEmitter::new(&schema, IndexRouting::parse("customers", &schema)?, &["id".to_owned()], "_", ActionKind::Index)?;
/// let mut emitter = ChunkEmitter::new(rows);
/// let chunk = Chunk::from_rows(&arrow_schema(&schema), &[
///     Row::with_kind(RowKind::UpdateBefore, vec![Value::Int64(7), Value::String("Ada".into())]),
///     Row::with_kind(RowKind::UpdateAfter, vec![Value::Int64(7), Value::String("Grace".into())]),
///     Row::with_kind(RowKind::Delete, vec![Value::Int64(8), Value::Null]),
/// ])?;
/// let actions = emitter.actions(&chunk)?;
/// assert_eq!(actions.len(), 2); // the -U row makes none
/// assert_eq!((actions[0].kind(), actions[0].id()), (ActionKind::Index, Some("7")));
/// assert_eq!(actions[0].document(), br#"{"id":7,"name":"Grace"}"#);
/// assert_eq!((actions[1].kind(), actions[1].id()), (ActionKind::Delete, Some("8")));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ChunkEmitter {
    rows: RowEmitter,
}

impl ChunkEmitter {
    /// The emitter that makes of each row of a chunk what `rows` makes of it.
    pub fn new(rows: RowEmitter) -> Self {
        ChunkEmitter { rows }
    }

    /// The actions of `chunk`'s rows, in order (rows that make none left out).
    ///
    /// # Errors
    /// As [`RowEmitter`] for the first row it cannot write (the actions of the rows before it
    /// are dropped).
    pub fn actions(&mut self, chunk: &Chunk) -> Result<Vec<BulkAction>> {
        let mut actions = Vec::with_capacity(chunk.num_rows());
        self.each_action(chunk, |action| {
            if let Some(action) = action {
                actions.push(action);
            }
            Ok(())
        })?;
        Ok(actions)
    }

    /// Calls `f` with the action of every row (`None` for a row that makes none).
    fn each_action(
        &mut self,
        chunk: &Chunk,
        mut f: impl FnMut(Option<BulkAction>) -> Result<()>,
    ) -> Result<()> {
        let batch = chunk.batch();
        if batch.num_columns() != self.rows.keys.len() {
            return Err(ConnectorError::Contract(format!(
                "a chunk of {} columns for an Elasticsearch sink of {} fields",
                batch.num_columns(),
                self.rows.keys.len()
            )));
        }
        let schema = batch.schema();
        let columns = schema
            .fields()
            .iter()
            .zip(batch.columns())
            .map(|(field, array)| Column::of(field.name(), array))
            .collect::<Result<Vec<_>>>()?;
        let kinds = chunk.kinds();
        for row in 0..batch.num_rows() {
            let row_kind = kinds
                .and_then(|k| k.get(row).copied())
                .unwrap_or(RowKind::Insert);
            let Some(kind) = self.rows.action_of(row_kind) else {
                f(None)?;
                continue;
            };
            let id = self.id_of(&columns, row)?;
            if id.is_none() && kind.needs_id() {
                return Err(missing_id(row_kind, kind));
            }
            let index = self.index_of(&columns, row)?;
            let document = if kind.has_document() {
                self.document(&columns, row)?
            } else {
                Vec::new()
            };
            let action =
                BulkAction::new(kind, index, id, document).map_err(|e| refused(e.to_string()))?;
            f(Some(action))?;
        }
        Ok(())
    }

    /// The id of row `row`, as [`RowEmitter`] makes it: the id fields' values joined by the
    /// delimiter, a null as `null`.
    fn id_of(&self, columns: &[Column<'_>], row: usize) -> Result<Option<String>> {
        if self.rows.id_fields.is_empty() {
            return Ok(None);
        }
        let mut id = String::new();
        for (n, &i) in self.rows.id_fields.iter().enumerate() {
            if n > 0 {
                id.push_str(&self.rows.delimiter);
            }
            let Some(column) = columns.get(i).filter(|c| !c.is_null(row)) else {
                id.push_str("null");
                continue;
            };
            if let Some(v) = column.int(row) {
                id.push_str(itoa::Buffer::new().format(v));
                continue;
            }
            match column {
                Column::String(a) => id.push_str(a.value(row)),
                Column::Float64(a) => id.push_str(&a.value(row).to_string()),
                Column::Boolean(a) => id.push_str(if a.value(row) { "true" } else { "false" }),
                Column::Bytes(a) => {
                    base64::engine::general_purpose::STANDARD.encode_string(a.value(row), &mut id);
                }
                other => {
                    return Err(refused(format!(
                        "an id field holds a {} value, which makes no document id",
                        other.array().data_type()
                    )))
                }
            }
        }
        check_id_length(&id)?;
        Ok(Some(id))
    }

    /// The index of row `row`, as [`IndexRouting`] names it from the row's fields.
    fn index_of(&mut self, columns: &[Column<'_>], row: usize) -> Result<std::sync::Arc<str>> {
        let pattern = match &mut self.rows.routing {
            IndexRouting::Fixed(name) => return Ok(std::sync::Arc::clone(name)),
            IndexRouting::Pattern(pattern) => pattern,
        };
        let out = &mut self.rows.scratch;
        out.clear();
        for part in pattern.parts() {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Field { position, name } => {
                    let column = columns.get(*position).filter(|c| !c.is_null(row));
                    let Some(column) = column else {
                        return Err(refused(format!(
                            "field `{name}` of the index pattern is null: every row needs a value"
                        )));
                    };
                    if let Some(v) = column.int(row) {
                        out.push_str(itoa::Buffer::new().format(v));
                        continue;
                    }
                    match column {
                        Column::String(a) => out.push_str(a.value(row)),
                        Column::Boolean(a) => {
                            out.push_str(if a.value(row) { "true" } else { "false" });
                        }
                        other => {
                            return Err(refused(format!(
                                "field `{name}` of the index pattern holds a {} value, which \
                                 makes no index name",
                                other.array().data_type()
                            )))
                        }
                    }
                }
                Part::Date {
                    position,
                    name,
                    format,
                } => {
                    let column = columns.get(*position).filter(|c| !c.is_null(row));
                    let Some(column) = column else {
                        return Err(refused(format!(
                            "field `{name}` of the index pattern is null: every row needs a time"
                        )));
                    };
                    let Some(millis) = column.int(row) else {
                        return Err(refused(format!(
                            "field `{name}` of the index pattern holds a {} value, not a time",
                            column.array().data_type()
                        )));
                    };
                    let time = DateTime::from_timestamp_millis(millis).ok_or_else(|| {
                        refused(format!(
                            "field `{name}`: {millis} ms is out of the range of dates"
                        ))
                    })?;
                    let _ = write!(out, "{}", time.format_with_items(format.iter()));
                }
            }
        }
        Ok(pattern.intern(out))
    }

    /// Row `row` as a JSON object, as [`RowEmitter`] writes it.
    fn document(&mut self, columns: &[Column<'_>], row: usize) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.rows.last_size + 16);
        out.push(b'{');
        for (i, (key, column)) in self.rows.keys.iter().zip(columns).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(key);
            column.write(row, &mut out)?;
        }
        out.push(b'}');
        self.rows.last_size = out.len();
        Ok(out)
    }
}

impl BatchEmitter<Chunk> for ChunkEmitter {
    fn emit_into(
        &mut self,
        chunk: Chunk,
        ctx: &WriteContext,
        out: &mut ActionOut<'_>,
    ) -> Result<()> {
        self.each_action(&chunk, |action| {
            match action {
                Some(action) => out.push(action, ctx)?,
                None => out.skip(),
            }
            Ok(())
        })
    }

    fn rows_in(&self, chunk: &Chunk) -> u64 {
        chunk.num_rows() as u64
    }
}

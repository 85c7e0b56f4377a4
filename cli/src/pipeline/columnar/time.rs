//! Event time on columns. A chunk is one runtime record, so its event time is the latest time
//! of its rows ([`chunk_time`]): a bounded-out-of-orderness watermark generator that sees it
//! once has seen what it would have seen row by row (its watermark follows the largest time).
//! Each row keeps its own time in its column; a row sink gets every row with that time
//! ([`timed_rows`]), as on the row path. [`TimeColumns`] follows the time column through the
//! transforms, and keeps a pipeline on rows when a row sink needs times a select dropped.

use std::collections::HashMap;

use weir_connector_api::row::Row;
use weir_formats::chunk::Chunk;

use super::super::Pipeline;
use super::rows_of;

/// Where a stream's rows keep their event time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TimeColumn {
    /// The stream has no event time.
    None,
    /// In this column of its chunks.
    At(usize),
    /// It has event time, but a select dropped the column that held it.
    Dropped,
}

/// The time column of every stream of a pipeline, by stream name.
#[derive(Debug, Default)]
pub(super) struct TimeColumns(HashMap<String, TimeColumn>);

impl TimeColumns {
    /// Follows each source's time field through the transforms. An error says why the
    /// pipeline must stay on rows: a union of streams with and without event time, or a row
    /// sink whose rows need a time a select dropped (`native` says which sinks take chunks).
    pub(super) fn of(pipeline: &Pipeline, native: impl Fn(&str) -> bool) -> Result<Self, String> {
        let mut columns = TimeColumns::default();
        for source in &pipeline.sources {
            let column = source
                .watermark
                .as_ref()
                .map_or(TimeColumn::None, |w| TimeColumn::At(w.timestamp_field));
            columns.0.insert(source.name.clone(), column);
        }
        for transform in &pipeline.transforms {
            let mut column = columns.of_inputs(&transform.inputs);
            let mixed = transform
                .inputs
                .iter()
                .any(|i| (columns.get(i) == TimeColumn::None) != (column == TimeColumn::None));
            if mixed {
                return Err(format!(
                    "transform `{}` unites streams with and without event time",
                    transform.name
                ));
            }
            if let (TimeColumn::At(at), Some(indices)) = (column, &transform.select) {
                column = indices
                    .iter()
                    .position(|i| *i == at)
                    .map_or(TimeColumn::Dropped, TimeColumn::At);
            }
            columns.0.insert(transform.name.clone(), column);
        }
        for sink in &pipeline.sinks {
            if columns.of_inputs(&sink.inputs) == TimeColumn::Dropped && !native(&sink.connector) {
                return Err(format!(
                    "sink `{}` gets rows with event time, but a select before it drops the time \
                     field, where columns keep a row's time",
                    sink.name
                ));
            }
        }
        Ok(columns)
    }

    fn get(&self, stream: &str) -> TimeColumn {
        self.0.get(stream).copied().unwrap_or(TimeColumn::None)
    }

    /// The time column of the union of `inputs` (their first one's: a union's inputs share a
    /// schema, and [`TimeColumns::of`] refused mixing streams with and without event time).
    pub(super) fn of_inputs(&self, inputs: &[String]) -> TimeColumn {
        let mut column = TimeColumn::None;
        for input in inputs {
            match (column, self.get(input)) {
                (TimeColumn::None, c) => column = c,
                (TimeColumn::At(a), TimeColumn::At(b)) if a != b => column = TimeColumn::Dropped,
                (_, TimeColumn::Dropped) => column = TimeColumn::Dropped,
                _ => {}
            }
        }
        column
    }
}

/// The event time of a chunk: the latest time of its rows in column `index` (`i64::MIN`
/// without any, as the row path's timestamp assigner gives a row without a time).
pub(super) fn chunk_time(chunk: &Chunk, index: usize) -> i64 {
    chunk.times(index).and_then(|t| t.max()).unwrap_or(i64::MIN)
}

/// The rows of a chunk, each with its time from column `index`.
pub(super) fn timed_rows(chunk: &Chunk, index: usize) -> Vec<(Row, i64)> {
    let rows = rows_of(chunk);
    let times: Box<dyn Iterator<Item = Option<i64>>> = match chunk.times(index) {
        Some(t) => t.each_row(),
        None => Box::new(std::iter::repeat(None)),
    };
    rows.into_iter()
        .zip(times)
        .map(|(row, t)| (row, t.unwrap_or(i64::MIN)))
        .collect()
}

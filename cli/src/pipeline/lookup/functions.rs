//! Lookup functions of rows keyed by [`RowKey`]s: connectors' lookup functions take key rows
//! (`LookupFunction<Row, Row>`); caches need hashable keys.

use std::sync::Arc;

use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::lookup::{AsyncLookupFunction, LookupContext, LookupFunction};
use weir_connector_api::row::{Row, Value};
use weir_connector_base::lookup::RowKey;

/// A connector's synchronous lookup function, keyed by [`RowKey`].
pub(crate) struct KeyedSync(pub(crate) Box<dyn LookupFunction<Row, Row>>);

impl LookupFunction<RowKey, Row> for KeyedSync {
    fn open(&mut self, ctx: &dyn LookupContext) -> Result<()> {
        self.0.open(ctx)
    }
    fn lookup(&mut self, key: &RowKey) -> Result<Vec<Row>> {
        self.0.lookup(key.row())
    }
    fn close(&mut self) -> Result<()> {
        self.0.close()
    }
}

/// A connector's asynchronous lookup function, keyed by [`RowKey`]. The connector hands it
/// over shared (`Arc`); a fresh one per subtask is not shared yet, so it can be opened.
pub(crate) struct KeyedAsync(pub(crate) Arc<dyn AsyncLookupFunction<Row, Row>>);

#[async_trait::async_trait]
impl AsyncLookupFunction<RowKey, Row> for KeyedAsync {
    async fn open(&mut self, ctx: &dyn LookupContext) -> Result<()> {
        match Arc::get_mut(&mut self.0) {
            Some(function) => function.open(ctx).await,
            None => Err(ConnectorError::Contract(
                "the connector's lookup function is shared before it was opened: its factory \
                 must create a new one per call"
                    .to_owned(),
            )),
        }
    }
    async fn lookup(&self, key: &RowKey) -> Result<Vec<Row>> {
        self.0.lookup(key.row()).await
    }
    async fn close(&mut self) -> Result<()> {
        match Arc::get_mut(&mut self.0) {
            Some(function) => function.close().await,
            None => Ok(()),
        }
    }
}

/// A rough size of a value in memory (for `numCachedBytes`).
fn value_bytes(value: &Value) -> u64 {
    let payload = match value {
        Value::String(s) => s.len(),
        Value::Bytes(b) => b.len(),
        _ => 0,
    };
    (std::mem::size_of::<Value>() + payload) as u64
}

/// A rough size of a cached key and its rows (for `numCachedBytes`).
pub fn cached_bytes(key: &RowKey, rows: &[Row]) -> u64 {
    let row_bytes = |row: &Row| {
        std::mem::size_of::<Row>() as u64 + row.values.iter().map(value_bytes).sum::<u64>()
    };
    row_bytes(key.row()) + rows.iter().map(row_bytes).sum::<u64>()
}

//! The synchronous lookup join: each key is looked up in turn, in the task. It keeps no state
//! (nothing is in flight at a barrier), so it leaves no trace in checkpoints: a job may drop
//! it without a non-restored-state override, like a `map`.

use std::sync::Arc;

use weir_connector_api::lookup::LookupFunction;

use super::{Joiner, KeyFn, RuntimeLookupContext, SyncFactory};
use crate::element::{Event, Notification};
use crate::error::{Result, RuntimeError};
use crate::operator::{BoxOutput, Output, TaskCx};

pub(crate) struct SyncLookupOperator<T, K, V, O: Send + 'static> {
    uid: String,
    factory: SyncFactory<K, V>,
    function: Option<Box<dyn LookupFunction<K, V>>>,
    key: KeyFn<T, K>,
    joiner: Joiner<T, V, O>,
    context: Arc<RuntimeLookupContext>,
    out: Vec<O>,
    next: BoxOutput<O>,
}

impl<T, K, V, O: Send + 'static> SyncLookupOperator<T, K, V, O> {
    pub(crate) fn new(
        uid: &str,
        factory: SyncFactory<K, V>,
        key: KeyFn<T, K>,
        joiner: Joiner<T, V, O>,
        context: Arc<RuntimeLookupContext>,
        next: BoxOutput<O>,
    ) -> Self {
        SyncLookupOperator {
            uid: uid.to_owned(),
            factory,
            function: None,
            key,
            joiner,
            context,
            out: Vec::new(),
            next,
        }
    }
}

#[async_trait::async_trait]
impl<T, K, V, O> Output<T> for SyncLookupOperator<T, K, V, O>
where
    T: Send + 'static,
    K: Send + Sync + 'static,
    V: Send + Sync + 'static,
    O: Send + 'static,
{
    async fn open(&mut self, cx: &mut TaskCx) -> Result<()> {
        let subtask = cx.subtask;
        let mut function =
            (self.factory)().map_err(|e| RuntimeError::connector(&self.uid, subtask, e))?;
        // A synchronous open may block (a full cache waits for its first load): off the
        // runtime's workers.
        let context = Arc::clone(&self.context);
        let opened = tokio::task::spawn_blocking(move || {
            let result = function.open(&*context);
            (function, result)
        })
        .await
        .map_err(|e| RuntimeError::Lost(format!("the lookup function's open: {e}")))?;
        let (function, result) = opened;
        result.map_err(|e| RuntimeError::connector(&self.uid, subtask, e))?;
        self.function = Some(function);
        self.next.open(cx).await
    }

    async fn push(&mut self, batch: &mut Vec<T>, cx: &mut TaskCx) -> Result<()> {
        let Some(function) = self.function.as_mut() else {
            return Err(RuntimeError::Lost(format!(
                "the lookup function of {} (not opened)",
                self.uid
            )));
        };
        for record in batch.drain(..) {
            let rows = match (self.key)(&record) {
                Some(key) => function
                    .lookup(&key)
                    .map_err(|e| RuntimeError::connector(&self.uid, cx.subtask, e))?,
                None => Vec::new(),
            };
            self.joiner.emit(&record, &rows, &mut self.out);
        }
        if self.out.is_empty() {
            return Ok(());
        }
        self.next.push(&mut self.out, cx).await
    }

    async fn event(&mut self, event: Event, cx: &mut TaskCx) -> Result<()> {
        self.next.event(event, cx).await
    }

    async fn notify(&mut self, n: Notification, cx: &mut TaskCx) -> Result<()> {
        self.next.notify(n, cx).await
    }

    async fn flush_buffers(&mut self) -> Result<()> {
        self.next.flush_buffers().await
    }

    async fn close(&mut self) -> Result<()> {
        if let Some(mut function) = self.function.take() {
            if let Err(error) = function.close() {
                tracing::warn!("closing the lookup function of {}: {error}", self.uid);
            }
        }
        self.next.close().await
    }
}

//! Sink operators: the writer operator at the end of a chain, the committer operator, and the
//! operators of pre- and post-commit topology stages.

pub(crate) mod committer_op;
pub(crate) mod expand;
pub(crate) mod spread;
pub(crate) mod stage_op;
pub(crate) mod wire;
pub(crate) mod writer_op;

use weir_connector_api::sink::{AnyCommittable, CommittableMessage};

use crate::element::{Event, Notification};
use crate::error::Result;
use crate::operator::{Output, TaskCx};

/// Committable messages as they travel between sink operators.
pub(crate) type Message = CommittableMessage<AnyCommittable>;

/// The end of a chain that drops everything (a sink without committer).
pub(crate) struct Discard;

#[async_trait::async_trait]
impl<T: Send + 'static> Output<T> for Discard {
    async fn open(&mut self, _cx: &mut TaskCx) -> Result<()> {
        Ok(())
    }
    async fn push(&mut self, batch: &mut Vec<T>, _cx: &mut TaskCx) -> Result<()> {
        batch.clear();
        Ok(())
    }
    async fn event(&mut self, _event: Event, _cx: &mut TaskCx) -> Result<()> {
        Ok(())
    }
    async fn notify(&mut self, _n: Notification, _cx: &mut TaskCx) -> Result<()> {
        Ok(())
    }
    async fn flush_buffers(&mut self) -> Result<()> {
        Ok(())
    }
    async fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

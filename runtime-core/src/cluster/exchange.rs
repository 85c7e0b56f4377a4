//! The cluster exchange: each channel of an edge is an in-process channel when both of its
//! subtasks run in this process, and a cross-process one (typed ends over the frame transport,
//! records written with the edge's codec) when one of them runs elsewhere. Channels between two
//! other processes are not made here.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Result, RuntimeError};
use crate::exchange::{
    ChannelFactory, ChannelKey, EdgeId, EdgeLayout, Exchange, FrameTransport, RemoteChannelError,
};
use crate::task::TaskKey;

use super::{JobLayout, Placement};

/// The channels of one job attempt as this process sees them.
pub(crate) struct ClusterExchange {
    attempt: u32,
    placement: Placement,
    transport: Arc<dyn FrameTransport>,
    /// The job's edges and sources.
    layout: Arc<JobLayout>,
    senders: HashMap<(EdgeId, usize), Vec<Box<dyn Any + Send>>>,
    receivers: HashMap<(EdgeId, usize), Vec<Box<dyn Any + Send>>>,
}

impl ClusterExchange {
    pub(crate) fn new(
        attempt: u32,
        placement: Placement,
        transport: Arc<dyn FrameTransport>,
        layout: Arc<JobLayout>,
    ) -> Self {
        ClusterExchange {
            attempt,
            placement,
            transport,
            layout,
            senders: HashMap::new(),
            receivers: HashMap::new(),
        }
    }

    fn edge_name(&self, edge: EdgeId) -> String {
        self.layout
            .edge_names
            .get(edge)
            .cloned()
            .unwrap_or_else(|| format!("edge {edge}"))
    }

    fn as_u32(&self, edge: EdgeId, n: usize) -> Result<u32> {
        u32::try_from(n).map_err(|_| {
            RuntimeError::InvalidJob(vec![format!(
                "{}: index {n} is too large for a cross-process channel",
                self.edge_name(edge)
            )])
        })
    }

    /// One channel from upstream subtask `up` to downstream subtask `down`: both ends if both
    /// run here, else the end that runs here (or nothing).
    #[allow(clippy::type_complexity)]
    fn channel(
        &self,
        edge: &EdgeLayout,
        up: usize,
        down: usize,
        channels: &dyn ChannelFactory,
    ) -> Result<(Option<Box<dyn Any + Send>>, Option<Box<dyn Any + Send>>)> {
        let (from_group, to_group) = self
            .layout
            .edge_groups
            .get(edge.id)
            .copied()
            .unwrap_or((usize::MAX, usize::MAX));
        let from = self.placement.process_of(TaskKey {
            group: from_group,
            subtask: up,
        });
        let to = self.placement.process_of(TaskKey {
            group: to_group,
            subtask: down,
        });
        let here = self.placement.process;
        if from == here && to == here {
            let (tx, rx) = channels.local_channel(edge.capacity);
            return Ok((Some(tx), Some(rx)));
        }
        if from != here && to != here {
            return Ok((None, None));
        }
        let key = ChannelKey {
            attempt: self.attempt,
            edge: self.as_u32(edge.id, edge.id)?,
            upstream: self.as_u32(edge.id, up)?,
            downstream: self.as_u32(edge.id, down)?,
        };
        let name = format!(
            "{} subtask {up} -> {down} (process {from} -> {to}, attempt {})",
            self.edge_name(edge.id),
            self.attempt
        );
        let failed = |e: crate::exchange::TransportError| {
            RuntimeError::RemoteChannel(RemoteChannelError::Transport {
                channel: name.clone(),
                reason: e.to_string(),
            })
        };
        if from == here {
            let frames = self.transport.open_sender(key, to).map_err(failed)?;
            Ok((Some(channels.remote_sender(&name, frames)?), None))
        } else {
            let frames = self
                .transport
                .open_receiver(key, from, edge.capacity)
                .map_err(failed)?;
            Ok((None, Some(channels.remote_receiver(&name, frames)?)))
        }
    }
}

impl Exchange for ClusterExchange {
    fn connect(&mut self, edge: EdgeLayout, channels: &dyn ChannelFactory) -> Result<()> {
        let pairs: Vec<(usize, usize)> = if edge.is_one_to_one() {
            (0..edge.upstream).map(|i| (i, i)).collect()
        } else {
            (0..edge.upstream)
                .flat_map(|i| (0..edge.downstream).map(move |j| (i, j)))
                .collect()
        };
        for (up, down) in pairs {
            let (tx, rx) = self.channel(&edge, up, down, channels)?;
            if let Some(tx) = tx {
                self.senders.entry((edge.id, up)).or_default().push(tx);
            }
            if let Some(rx) = rx {
                self.receivers.entry((edge.id, down)).or_default().push(rx);
            }
        }
        Ok(())
    }

    fn take_senders(&mut self, edge: EdgeId, subtask: usize) -> Option<Vec<Box<dyn Any + Send>>> {
        self.senders.remove(&(edge, subtask))
    }

    fn take_receivers(&mut self, edge: EdgeId, subtask: usize) -> Option<Vec<Box<dyn Any + Send>>> {
        self.receivers.remove(&(edge, subtask))
    }
}

#[cfg(test)]
#[path = "exchange_tests.rs"]
mod tests;

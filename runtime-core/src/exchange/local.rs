//! The in-process exchange: every channel is a bounded queue between two tokio tasks, with a
//! lane for barriers that overtake the queue (unaligned checkpoints).

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use super::{
    ChannelFactory, ChannelReceiver, ChannelSender, EdgeId, EdgeLayout, Exchange, Received,
    TrySendError,
};
use crate::element::{Barrier, Batch, StreamElement};
use crate::error::{Result, RuntimeError};

/// What both ends of a channel share.
struct Inner<T> {
    /// Batches and in-band events, in order.
    queue: VecDeque<StreamElement<T>>,
    /// Barriers that overtook the queue, each with the number of elements queued before it.
    overtaking: VecDeque<(Barrier, usize)>,
    capacity: usize,
    receiver_waker: Option<Waker>,
    sender_waker: Option<Waker>,
    sender_alive: bool,
    receiver_alive: bool,
}

type Shared<T> = Arc<Mutex<Inner<T>>>;

fn lock<T>(shared: &Shared<T>) -> MutexGuard<'_, Inner<T>> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Stores `waker` unless an equivalent one is stored already.
fn register(slot: &mut Option<Waker>, waker: &Waker) {
    if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
        *slot = Some(waker.clone());
    }
}

fn lost() -> RuntimeError {
    RuntimeError::Lost("a downstream task".into())
}

/// The sending end of an in-process channel.
pub(crate) struct LocalSender<T>(Shared<T>);

/// The receiving end of an in-process channel.
pub(crate) struct LocalReceiver<T>(Shared<T>);

/// A bounded in-process channel holding `capacity` elements (barriers that overtake the queue
/// and a sender's last partly filled batch do not count).
pub(crate) fn channel<T: Send + 'static>(
    capacity: usize,
) -> (Box<dyn ChannelSender<T>>, Box<dyn ChannelReceiver<T>>) {
    let shared = Arc::new(Mutex::new(Inner {
        queue: VecDeque::with_capacity(capacity.max(1)),
        overtaking: VecDeque::new(),
        capacity: capacity.max(1),
        receiver_waker: None,
        sender_waker: None,
        sender_alive: true,
        receiver_alive: true,
    }));
    (
        Box::new(LocalSender(Arc::clone(&shared))),
        Box::new(LocalReceiver(shared)),
    )
}

impl<T> LocalSender<T> {
    /// Queues `element` if there is room; the receiver's waker to wake after the lock.
    fn push(
        &self,
        element: StreamElement<T>,
        cx: Option<&mut Context<'_>>,
    ) -> std::result::Result<Option<Waker>, TrySendError<T>> {
        let mut inner = lock(&self.0);
        if !inner.receiver_alive {
            return Err(TrySendError::Closed);
        }
        if inner.queue.len() >= inner.capacity {
            if let Some(cx) = cx {
                register(&mut inner.sender_waker, cx.waker());
            }
            return Err(TrySendError::Full(element));
        }
        inner.queue.push_back(element);
        Ok(inner.receiver_waker.take())
    }
}

#[async_trait::async_trait]
impl<T: Send + 'static> ChannelSender<T> for LocalSender<T> {
    fn try_send(&mut self, element: StreamElement<T>) -> std::result::Result<(), TrySendError<T>> {
        if let Some(waker) = self.push(element, None)? {
            waker.wake();
        }
        Ok(())
    }

    async fn send(&mut self, element: StreamElement<T>) -> Result<()> {
        let mut element = Some(element);
        std::future::poll_fn(|cx| {
            let Some(e) = element.take() else {
                return Poll::Ready(Ok(()));
            };
            match self.push(e, Some(cx)) {
                Ok(waker) => {
                    if let Some(waker) = waker {
                        waker.wake();
                    }
                    Poll::Ready(Ok(()))
                }
                Err(TrySendError::Full(e)) => {
                    element = Some(e);
                    Poll::Pending
                }
                Err(TrySendError::Closed) => Poll::Ready(Err(lost())),
                Err(TrySendError::Failed(e)) => Poll::Ready(Err(e)),
            }
        })
        .await
    }

    fn send_overtaking(&mut self, pending: Batch<T>, barrier: Barrier) -> Result<()> {
        let waker = {
            let mut inner = lock(&self.0);
            if !inner.receiver_alive {
                return Err(lost());
            }
            if !pending.is_empty() {
                inner.queue.push_back(StreamElement::Batch(pending));
            }
            let overtaken = inner.queue.len();
            inner.overtaking.push_back((barrier, overtaken));
            inner.receiver_waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }
}

impl<T> Drop for LocalSender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut inner = lock(&self.0);
            inner.sender_alive = false;
            inner.receiver_waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T: Send + 'static> ChannelReceiver<T> for LocalReceiver<T> {
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Received<T>>> {
        let (received, waker) = {
            let mut inner = lock(&self.0);
            if let Some((barrier, overtaken)) = inner.overtaking.pop_front() {
                (
                    Poll::Ready(Some(Received::Overtaking { barrier, overtaken })),
                    None,
                )
            } else if let Some(element) = inner.queue.pop_front() {
                (
                    Poll::Ready(Some(Received::Element(element))),
                    inner.sender_waker.take(),
                )
            } else if inner.sender_alive {
                register(&mut inner.receiver_waker, cx.waker());
                (Poll::Pending, None)
            } else {
                (Poll::Ready(None), None)
            }
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        received
    }

    fn visit_queued(&mut self, n: usize, visit: &mut dyn FnMut(&StreamElement<T>)) -> usize {
        self.visit(n, visit)
    }
}

impl<T> LocalReceiver<T> {
    fn visit(&self, n: usize, visit: &mut dyn FnMut(&StreamElement<T>)) -> usize {
        let inner = lock(&self.0);
        let shown = n.min(inner.queue.len());
        for element in inner.queue.iter().take(shown) {
            visit(element);
        }
        shown
    }
}

impl<T> Drop for LocalReceiver<T> {
    fn drop(&mut self) {
        let waker = {
            let mut inner = lock(&self.0);
            inner.receiver_alive = false;
            inner.queue.clear();
            inner.sender_waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The channel ends of one job attempt in this process, taken by the subtasks as they are
/// created.
#[derive(Default)]
pub(crate) struct LocalExchange {
    senders: HashMap<(EdgeId, usize), Vec<Box<dyn Any + Send>>>,
    receivers: HashMap<(EdgeId, usize), Vec<Box<dyn Any + Send>>>,
}

impl Exchange for LocalExchange {
    fn connect(&mut self, edge: EdgeLayout, channels: &dyn ChannelFactory) -> Result<()> {
        if edge.is_one_to_one() {
            for i in 0..edge.upstream {
                let (tx, rx) = channels.local_channel(edge.capacity);
                self.senders.insert((edge.id, i), vec![tx]);
                self.receivers.insert((edge.id, i), vec![rx]);
            }
            return Ok(());
        }
        let mut receivers: Vec<Vec<Box<dyn Any + Send>>> =
            (0..edge.downstream).map(|_| Vec::new()).collect();
        for i in 0..edge.upstream {
            let mut senders = Vec::with_capacity(edge.downstream);
            for rx in &mut receivers {
                let (tx, r) = channels.local_channel(edge.capacity);
                senders.push(tx);
                rx.push(r);
            }
            self.senders.insert((edge.id, i), senders);
        }
        for (j, rx) in receivers.into_iter().enumerate() {
            self.receivers.insert((edge.id, j), rx);
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
impl LocalExchange {
    /// Connects an edge of `T` records (tests).
    pub(crate) fn connect_typed<T: Send + 'static>(
        &mut self,
        id: EdgeId,
        upstream: usize,
        downstream: usize,
        capacity: usize,
    ) {
        // In-process channels need no codec: connecting cannot fail.
        let _ = self.connect(
            EdgeLayout {
                id,
                upstream,
                downstream,
                pointwise: false,
                capacity,
            },
            &super::ChannelsOf::<T>::new(),
        );
    }
}

#[cfg(test)]
mod tests {
    use weir_connector_api::checkpoint::CheckpointId;

    use super::*;
    use crate::element::SnapshotType;
    use crate::exchange::recv_any;

    fn barrier(id: u64) -> Barrier {
        Barrier {
            checkpoint_id: CheckpointId(id),
            kind: SnapshotType::Checkpoint,
        }
    }

    #[tokio::test]
    async fn a_barrier_overtakes_the_queue_and_says_how_much_it_overtook() -> Result<()> {
        let (mut tx, mut rx) = channel::<u32>(2);
        tx.send(StreamElement::Batch(Batch::untimed(vec![1])))
            .await?;
        tx.send(StreamElement::Batch(Batch::untimed(vec![2])))
            .await?;
        assert!(matches!(
            tx.try_send(StreamElement::Batch(Batch::untimed(vec![3]))),
            Err(TrySendError::Full(_))
        ));
        // Never waits, even on a full channel; the partly filled batch goes behind the queue.
        tx.send_overtaking(Batch::untimed(vec![3, 4]), barrier(7))?;
        let first = recv_any(&mut rx).await;
        assert!(
            matches!(first, Some(Received::Overtaking { barrier: b, overtaken: 3 }) if b == barrier(7)),
            "{first:?}"
        );
        let mut rest = Vec::new();
        for _ in 0..3 {
            if let Some(Received::Element(StreamElement::Batch(b))) = recv_any(&mut rx).await {
                rest.push(b.records);
            }
        }
        assert_eq!(rest, [vec![1], vec![2], vec![3, 4]]);
        Ok(())
    }

    #[tokio::test]
    async fn a_full_channel_wakes_its_sender_and_a_dropped_receiver_closes_it() -> Result<()> {
        let (mut tx, mut rx) = channel::<u32>(1);
        tx.send(StreamElement::Batch(Batch::untimed(vec![1])))
            .await?;
        let sender = tokio::spawn(async move {
            let sent = tx.send(StreamElement::Batch(Batch::untimed(vec![2]))).await;
            (tx, sent)
        });
        assert!(matches!(
            recv_any(&mut rx).await,
            Some(Received::Element(StreamElement::Batch(b))) if b.records == [1]
        ));
        let (mut tx, sent) = sender
            .await
            .map_err(|e| RuntimeError::Lost(e.to_string()))?;
        sent?;
        drop(rx);
        assert!(matches!(
            tx.try_send(StreamElement::Batch(Batch::untimed(vec![3]))),
            Err(TrySendError::Closed)
        ));
        assert!(tx
            .send_overtaking(Batch::untimed(Vec::new()), barrier(1))
            .is_err());
        Ok(())
    }
}

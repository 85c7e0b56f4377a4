//! [`KafkaSplitReader`]: the cancel-safe [`SplitReader`] the reader base drives, a handle on
//! the fetcher thread.

use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::mpsc;
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::metrics::MetricGroup;
use weir_connector_base::source::reader::{PausableSplitReader, SplitReader, SplitsChange};

use super::batch::{KafkaBatch, SharedDeserializer};
use super::fetcher::{self, Command, FetcherSettings};
use crate::source::split::KafkaPartitionSplit;

/// The [`SplitReader`] of the Kafka source: a handle on the fetcher thread.
pub struct KafkaSplitReader<T> {
    commands: std_mpsc::Sender<Command>,
    batches: mpsc::Receiver<Result<KafkaBatch<T>>>,
    thread: Option<JoinHandle<()>>,
}

impl<T: Send + 'static> KafkaSplitReader<T> {
    pub(crate) fn start(
        settings: FetcherSettings,
        deserializer: SharedDeserializer<T>,
        metrics: Arc<dyn MetricGroup>,
        subtask: usize,
    ) -> Result<Self> {
        let (commands, batches, thread) = fetcher::spawn(settings, deserializer, metrics, subtask)?;
        Ok(KafkaSplitReader {
            commands,
            batches,
            thread: Some(thread),
        })
    }

    fn send(&self, cmd: Command) -> Result<()> {
        self.commands
            .send(cmd)
            .map_err(|_| ConnectorError::Closed("the Kafka fetcher thread".into()))
    }
}

#[async_trait::async_trait]
impl<T: Send + 'static> SplitReader for KafkaSplitReader<T> {
    type Split = KafkaPartitionSplit;
    type Records = KafkaBatch<T>;

    async fn fetch(&mut self) -> Result<KafkaBatch<T>> {
        // `recv` is cancel-safe: a batch not yet received stays in the channel.
        match self.batches.recv().await {
            Some(batch) => batch,
            None => Err(ConnectorError::Closed("the Kafka fetcher thread".into())),
        }
    }

    fn handle_splits_change(&mut self, change: SplitsChange<KafkaPartitionSplit>) -> Result<()> {
        match change {
            SplitsChange::Add(splits) => self.send(Command::Add(splits)),
            SplitsChange::Remove(ids) => self.send(Command::Remove(ids)),
        }
    }

    async fn close(&mut self) -> Result<()> {
        let _ = self.commands.send(Command::Shutdown);
        self.batches.close();
        // Drain so a thread blocked on a full queue sees the closed channel; the thread closes
        // its consumer by itself (not joined: closing must not hold up the task).
        while self.batches.try_recv().is_ok() {}
        drop(self.thread.take());
        Ok(())
    }
}

impl<T: Send + 'static> PausableSplitReader for KafkaSplitReader<T> {
    fn pause_or_resume_splits(&mut self, pause: &[String], resume: &[String]) -> Result<()> {
        self.send(Command::Pause {
            pause: pause.to_vec(),
            resume: resume.to_vec(),
        })
    }
}

impl<T> Drop for KafkaSplitReader<T> {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Shutdown);
    }
}

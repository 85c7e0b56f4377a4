//! Split fetchers: the tasks that drive [`SplitReader::fetch`] and hand batches to the reader.

use std::collections::HashSet;

use futures::channel::{mpsc, oneshot};
use futures::future::{self, Either};
use futures::{SinkExt, StreamExt};

use super::split_reader::{RecordsWithSplitIds, SplitReader, SplitsChange};
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::source::SourceSplit;

/// How a fetcher pauses splits, when its reader declared the capability.
pub(crate) type PauseFn<SR> = fn(&mut SR, &[String], &[String]) -> Result<()>;

/// What a fetcher hands to the reader.
pub(crate) enum FetchEvent<R> {
    Records(R),
    Error(ConnectorError),
}

/// What the reader tells a fetcher.
pub(crate) enum FetcherCommand<S> {
    Change(SplitsChange<S>),
    PauseOrResume {
        pause: Vec<String>,
        resume: Vec<String>,
    },
    Shutdown,
}

/// When a fetcher stops by itself.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum FetcherLifetime {
    /// Until shut down (one fetcher for all splits).
    UntilShutdown,
    /// Until its splits are finished (one fetcher per split).
    UntilSplitsFinished,
}

/// The reader's handle on a running fetcher.
pub(crate) struct FetcherHandle<S> {
    pub(crate) commands: mpsc::UnboundedSender<FetcherCommand<S>>,
    pub(crate) done: oneshot::Receiver<Result<()>>,
}

impl<S> FetcherHandle<S> {
    pub(crate) fn send(&self, command: FetcherCommand<S>) {
        // A fetcher that already stopped has reported why through the queue or `done`.
        let _ = self.commands.unbounded_send(command);
    }
}

/// Starts a fetcher future; the caller spawns it.
pub(crate) fn fetcher<SR: SplitReader>(
    reader: SR,
    pause: Option<PauseFn<SR>>,
    queue: mpsc::Sender<FetchEvent<SR::Records>>,
    lifetime: FetcherLifetime,
) -> (
    FetcherHandle<SR::Split>,
    impl std::future::Future<Output = ()> + Send + 'static,
) {
    let (commands_tx, commands_rx) = mpsc::unbounded();
    let (done_tx, done_rx) = oneshot::channel();
    let task = async move {
        let mut fetcher = Fetcher {
            reader,
            pause,
            queue,
            commands: commands_rx,
            assigned: HashSet::new(),
            paused: HashSet::new(),
            lifetime,
            ever_assigned: false,
        };
        fetcher.run().await;
        let closed = fetcher.reader.close().await;
        let _ = done_tx.send(closed);
    };
    (
        FetcherHandle {
            commands: commands_tx,
            done: done_rx,
        },
        task,
    )
}

struct Fetcher<SR: SplitReader> {
    reader: SR,
    pause: Option<PauseFn<SR>>,
    queue: mpsc::Sender<FetchEvent<SR::Records>>,
    commands: mpsc::UnboundedReceiver<FetcherCommand<SR::Split>>,
    assigned: HashSet<String>,
    paused: HashSet<String>,
    lifetime: FetcherLifetime,
    ever_assigned: bool,
}

enum Step {
    Continue,
    Stop,
}

impl<SR: SplitReader> Fetcher<SR> {
    async fn run(&mut self) {
        loop {
            // Apply every command that is already waiting.
            loop {
                match self.commands.try_recv() {
                    Ok(command) => {
                        if let Step::Stop = self.apply(command).await {
                            return;
                        }
                    }
                    Err(mpsc::TryRecvError::Closed) => return, // the reader is gone
                    Err(mpsc::TryRecvError::Empty) => break,
                }
            }
            if self.lifetime == FetcherLifetime::UntilSplitsFinished
                && self.ever_assigned
                && self.assigned.is_empty()
            {
                return;
            }
            let has_work = self.assigned.iter().any(|s| !self.paused.contains(s));
            if !has_work {
                match self.commands.next().await {
                    Some(command) => {
                        if let Step::Stop = self.apply(command).await {
                            return;
                        }
                    }
                    None => return,
                }
                continue;
            }
            // Fetch, unless a command arrives first: then the fetch is dropped ("woken up").
            let outcome = {
                let fetch = self.reader.fetch();
                let command = self.commands.next();
                match future::select(fetch, command).await {
                    Either::Left((result, _)) => Either::Left(result),
                    Either::Right((command, _)) => Either::Right(command),
                }
            };
            match outcome {
                Either::Left(Ok(records)) => {
                    for id in records.finished_splits() {
                        self.assigned.remove(id);
                        self.paused.remove(id);
                    }
                    if self.queue.send(FetchEvent::Records(records)).await.is_err() {
                        return; // the reader is gone
                    }
                }
                Either::Left(Err(error)) => {
                    let _ = self.queue.send(FetchEvent::Error(error)).await;
                    return;
                }
                Either::Right(Some(command)) => {
                    if let Step::Stop = self.apply(command).await {
                        return;
                    }
                }
                Either::Right(None) => return,
            }
        }
    }

    async fn apply(&mut self, command: FetcherCommand<SR::Split>) -> Step {
        let result = match command {
            FetcherCommand::Shutdown => return Step::Stop,
            FetcherCommand::Change(change) => {
                match &change {
                    SplitsChange::Add(splits) => {
                        self.ever_assigned |= !splits.is_empty();
                        self.assigned
                            .extend(splits.iter().map(|s| s.split_id().to_owned()));
                    }
                    SplitsChange::Remove(ids) => {
                        for id in ids {
                            self.assigned.remove(id);
                            self.paused.remove(id);
                        }
                    }
                }
                self.reader.handle_splits_change(change)
            }
            FetcherCommand::PauseOrResume { pause, resume } => match self.pause {
                Some(pause_fn) => {
                    let pause: Vec<String> = pause
                        .into_iter()
                        .filter(|id| self.assigned.contains(id))
                        .collect();
                    let resume: Vec<String> = resume
                        .into_iter()
                        .filter(|id| self.assigned.contains(id))
                        .collect();
                    let result = pause_fn(&mut self.reader, &pause, &resume);
                    if result.is_ok() {
                        self.paused.extend(pause);
                        for id in &resume {
                            self.paused.remove(id);
                        }
                    }
                    result
                }
                None => Err(ConnectorError::Contract(
                    "pause_or_resume_splits sent to a split reader that did not declare the \
                     capability"
                        .into(),
                )),
            },
        };
        match result {
            Ok(()) => Step::Continue,
            Err(error) => {
                let _ = self.queue.send(FetchEvent::Error(error)).await;
                Step::Stop
            }
        }
    }
}

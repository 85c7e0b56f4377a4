//! An event-time operator: counts records per key in tumbling windows and emits each count
//! when the watermark passes the window's end, with the window's last millisecond as its event
//! time. Its buffered state (open windows) is exposed as `windowStateEntries` (current) and
//! `windowStateEntriesPeak`, which is what watermark alignment keeps bounded.

use std::collections::HashMap;
use std::sync::Arc;

use weir_connector_api::checkpoint::VersionedBytes;
use weir_connector_api::metrics::{Counter, Gauge};
use weir_connector_api::state::{StateError, StateReader, StateWriter};
use weir_connector_api::watermark::Watermark;

use crate::element::{Event, Notification};
use crate::error::{Result, RuntimeError};
use crate::operator::{BoxOutput, Output, TaskCx};

/// The state name of open windows. The `union:` prefix gives every subtask all entries on a
/// rescale; each keeps the keys routed to it.
pub(crate) const WINDOWS_STATE: &str = "union:windows";
const ENTRY_VERSION: u32 = 1;

/// The count of one key in one tumbling window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WindowCount {
    /// The window's start (inclusive, event time in ms).
    pub window_start: i64,
    /// The window's end (exclusive).
    pub window_end: i64,
    /// The key.
    pub key: u64,
    /// How many records of the key fell into the window.
    pub count: u64,
}

pub(crate) type KeyFn<T> = Arc<dyn Fn(&T) -> u64 + Send + Sync>;
pub(crate) type TimestampFn<T> = Arc<dyn Fn(&T) -> i64 + Send + Sync>;

pub(crate) struct WindowMetrics {
    pub(crate) entries: Gauge,
    pub(crate) peak: Gauge,
    pub(crate) late: Counter,
}

pub(crate) struct WindowCountOperator<T> {
    pub(crate) uid: String,
    pub(crate) size: i64,
    pub(crate) key: KeyFn<T>,
    pub(crate) timestamp: TimestampFn<T>,
    pub(crate) windows: HashMap<(u64, i64), u64>,
    pub(crate) watermark: Watermark,
    pub(crate) next: BoxOutput<WindowCount>,
    pub(crate) metrics: WindowMetrics,
    pub(crate) out: Vec<WindowCount>,
    pub(crate) ended: bool,
}

impl<T> WindowCountOperator<T> {
    /// Restores the open windows of the keys routed to this subtask.
    pub(crate) fn restore(
        &mut self,
        values: &[VersionedBytes],
        owns: impl Fn(u64) -> bool,
    ) -> Result<()> {
        for v in values {
            let (key, start, count) = decode(v).map_err(|e| RuntimeError::Restore {
                operator: self.uid.clone(),
                reason: format!("window state: {e}"),
            })?;
            if owns(key) {
                *self.windows.entry((key, start)).or_insert(0) += count;
            }
        }
        self.update_gauges();
        Ok(())
    }

    fn update_gauges(&self) {
        let n = self.windows.len() as i64;
        self.metrics.entries.set(n);
        if n > self.metrics.peak.get() {
            self.metrics.peak.set(n);
        }
    }

    fn window_end(&self, start: i64) -> i64 {
        start.saturating_add(self.size)
    }
}

fn encode(key: u64, start: i64, count: u64) -> Result<VersionedBytes, StateError> {
    let mut w = StateWriter::new();
    w.put_u64(key).put_i64(start).put_u64(count);
    Ok(VersionedBytes {
        version: ENTRY_VERSION,
        bytes: w.finish()?,
    })
}

fn decode(v: &VersionedBytes) -> Result<(u64, i64, u64), StateError> {
    if v.version != ENTRY_VERSION {
        return Err(StateError::unknown_version(
            "window entry",
            v.version,
            &[ENTRY_VERSION],
        ));
    }
    let mut r = StateReader::new(&v.bytes);
    let entry = (r.get_u64()?, r.get_i64()?, r.get_u64()?);
    r.finish()?;
    Ok(entry)
}

#[async_trait::async_trait]
impl<T: Send + 'static> Output<T> for WindowCountOperator<T> {
    async fn open(&mut self, cx: &mut TaskCx) -> Result<()> {
        self.next.open(cx).await
    }

    async fn push(&mut self, batch: &mut Vec<T>, _cx: &mut TaskCx) -> Result<()> {
        for record in batch.drain(..) {
            let ts = (self.timestamp)(&record);
            let start = ts - ts.rem_euclid(self.size);
            // A window fires when the watermark reaches its last millisecond.
            if self.window_end(start).saturating_sub(1) <= self.watermark.0 {
                self.metrics.late.inc();
                continue;
            }
            *self
                .windows
                .entry(((self.key)(&record), start))
                .or_insert(0) += 1;
        }
        self.update_gauges();
        Ok(())
    }

    async fn event(&mut self, event: Event, cx: &mut TaskCx) -> Result<()> {
        match event {
            Event::Watermark(w) => {
                self.watermark = w;
                let size = self.size;
                let mut fired: Vec<WindowCount> = Vec::new();
                self.windows.retain(|(key, start), count| {
                    let end = start.saturating_add(size);
                    if end.saturating_sub(1) <= w.0 {
                        fired.push(WindowCount {
                            window_start: *start,
                            window_end: end,
                            key: *key,
                            count: *count,
                        });
                        false
                    } else {
                        true
                    }
                });
                if !fired.is_empty() {
                    fired.sort_unstable();
                    // A window's result carries the window's last millisecond as its event
                    // time (Flink's `TimeWindow::maxTimestamp`).
                    let mut timestamps: Vec<i64> = fired
                        .iter()
                        .map(|w| w.window_end.saturating_sub(1))
                        .collect();
                    self.out.extend(fired);
                    self.next
                        .push_timestamped(&mut self.out, &mut timestamps, cx)
                        .await?;
                }
                self.update_gauges();
            }
            Event::Barrier(_) => {
                let mut values = Vec::with_capacity(self.windows.len());
                for ((key, start), count) in &self.windows {
                    values.push(
                        encode(*key, *start, *count).map_err(|e| {
                            RuntimeError::connector(&self.uid, cx.subtask, e.into())
                        })?,
                    );
                }
                cx.add_state(&self.uid, WINDOWS_STATE, values);
                cx.touch(&self.uid, self.ended);
            }
            Event::EndOfData => self.ended = true,
            Event::Idle(_) => {}
        }
        self.next.event(event, cx).await
    }

    async fn notify(&mut self, n: Notification, cx: &mut TaskCx) -> Result<()> {
        self.next.notify(n, cx).await
    }

    async fn flush_buffers(&mut self) -> Result<()> {
        self.next.flush_buffers().await
    }

    async fn close(&mut self) -> Result<()> {
        self.next.close().await
    }
}

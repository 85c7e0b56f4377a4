//! The queues of the asynchronous lookup join (Flink's `OrderedStreamElementQueue` and
//! `UnorderedStreamElementQueue`): records whose lookups are in flight or done but not yet
//! emitted, and the watermarks and idleness changes between them.
//!
//! - **Ordered**: everything leaves in arrival order; a done record waits for the ones before
//!   it.
//! - **Unordered**: records leave as their lookups finish, but never across a watermark or
//!   idleness change: the queue is cut into segments at each such event, only the first
//!   segment emits, and its event follows its last record.

use std::collections::{BTreeMap, VecDeque};

use crate::element::Event;

/// A record in the queue.
pub(crate) struct Pending<T, V> {
    pub(crate) input: T,
    /// The rows, once the lookup is done.
    pub(crate) rows: Option<Vec<V>>,
}

impl<T, V> Pending<T, V> {
    pub(crate) fn new(input: T, rows: Option<Vec<V>>) -> Self {
        Pending { input, rows }
    }
}

/// What the queue lets out.
pub(crate) enum Ready<T, V> {
    /// A record and its rows.
    Record(T, Vec<V>),
    /// An event, after every record before it.
    Event(Event),
}

/// The records and events of one unordered segment, ending in the event that closes it.
struct Segment<T, V> {
    first_seq: u64,
    records: BTreeMap<u64, Pending<T, V>>,
    done: VecDeque<u64>,
    event: Option<Event>,
}

impl<T, V> Segment<T, V> {
    fn new(first_seq: u64) -> Self {
        Segment {
            first_seq,
            records: BTreeMap::new(),
            done: VecDeque::new(),
            event: None,
        }
    }
}

enum Entry<T, V> {
    Record(Pending<T, V>),
    Event(Event),
}

/// The queue of one subtask, in the mode the join asked for.
pub(crate) struct Queue<T, V> {
    kind: Kind<T, V>,
}

enum Kind<T, V> {
    Ordered {
        entries: VecDeque<Entry<T, V>>,
        /// The sequence number of the front entry.
        front_seq: u64,
    },
    Unordered {
        segments: VecDeque<Segment<T, V>>,
        /// Records and events in the queue.
        len: usize,
    },
}

impl<T, V> Queue<T, V> {
    pub(crate) fn ordered() -> Self {
        Queue {
            kind: Kind::Ordered {
                entries: VecDeque::new(),
                front_seq: 0,
            },
        }
    }

    pub(crate) fn unordered() -> Self {
        Queue {
            kind: Kind::Unordered {
                segments: VecDeque::from([Segment::new(0)]),
                len: 0,
            },
        }
    }

    /// Records and events in the queue (what the capacity bounds).
    pub(crate) fn len(&self) -> usize {
        match &self.kind {
            Kind::Ordered { entries, .. } => entries.len(),
            Kind::Unordered { len, .. } => *len,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a record with sequence number `seq` (one more than the previous entry's).
    pub(crate) fn push_record(&mut self, seq: u64, pending: Pending<T, V>) {
        match &mut self.kind {
            Kind::Ordered { entries, front_seq } => {
                if entries.is_empty() {
                    *front_seq = seq;
                }
                entries.push_back(Entry::Record(pending));
            }
            Kind::Unordered { segments, len } => {
                if let Some(last) = segments.back_mut() {
                    if pending.rows.is_some() {
                        last.done.push_back(seq);
                    }
                    last.records.insert(seq, pending);
                    *len += 1;
                }
            }
        }
    }

    /// Adds an event with sequence number `seq`.
    pub(crate) fn push_event(&mut self, seq: u64, event: Event) {
        match &mut self.kind {
            Kind::Ordered { entries, front_seq } => {
                if entries.is_empty() {
                    *front_seq = seq;
                }
                entries.push_back(Entry::Event(event));
            }
            Kind::Unordered { segments, len } => {
                if let Some(last) = segments.back_mut() {
                    last.event = Some(event);
                }
                segments.push_back(Segment::new(seq + 1));
                *len += 1;
            }
        }
    }

    /// The lookup of record `seq` is done. Unknown numbers are ignored.
    pub(crate) fn complete(&mut self, seq: u64, rows: Vec<V>) {
        match &mut self.kind {
            Kind::Ordered { entries, front_seq } => {
                let index = seq
                    .checked_sub(*front_seq)
                    .and_then(|i| usize::try_from(i).ok());
                if let Some(Entry::Record(pending)) = index.and_then(|i| entries.get_mut(i)) {
                    pending.rows = Some(rows);
                }
            }
            Kind::Unordered { segments, .. } => {
                let at = segments
                    .partition_point(|s| s.first_seq <= seq)
                    .saturating_sub(1);
                if let Some(segment) = segments.get_mut(at) {
                    if let Some(pending) = segment.records.get_mut(&seq) {
                        if pending.rows.is_none() {
                            segment.done.push_back(seq);
                        }
                        pending.rows = Some(rows);
                    }
                }
            }
        }
    }

    /// The next record or event that may leave, if any.
    pub(crate) fn pop_ready(&mut self) -> Option<Ready<T, V>> {
        match &mut self.kind {
            Kind::Ordered { entries, front_seq } => {
                let ready = match entries.front() {
                    Some(Entry::Event(_)) => true,
                    Some(Entry::Record(pending)) => pending.rows.is_some(),
                    None => false,
                };
                if !ready {
                    return None;
                }
                *front_seq += 1;
                match entries.pop_front()? {
                    Entry::Event(event) => Some(Ready::Event(event)),
                    Entry::Record(pending) => Some(Ready::Record(
                        pending.input,
                        pending.rows.unwrap_or_default(),
                    )),
                }
            }
            Kind::Unordered { segments, len } => {
                let first = segments.front_mut()?;
                while let Some(seq) = first.done.pop_front() {
                    if let Some(pending) = first.records.remove(&seq) {
                        *len -= 1;
                        return Some(Ready::Record(
                            pending.input,
                            pending.rows.unwrap_or_default(),
                        ));
                    }
                }
                if first.records.is_empty() && first.event.is_some() {
                    let event = segments.pop_front().and_then(|s| s.event)?;
                    *len -= 1;
                    return Some(Ready::Event(event));
                }
                None
            }
        }
    }

    /// The inputs of every record in the queue, in arrival order (done ones included: their
    /// rows have not left yet).
    pub(crate) fn inputs(&self) -> Vec<&T> {
        match &self.kind {
            Kind::Ordered { entries, .. } => entries
                .iter()
                .filter_map(|e| match e {
                    Entry::Record(p) => Some(&p.input),
                    Entry::Event(_) => None,
                })
                .collect(),
            Kind::Unordered { segments, .. } => segments
                .iter()
                .flat_map(|s| s.records.values().map(|p| &p.input))
                .collect(),
        }
    }

    /// Records whose lookups are still running.
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        let running = |p: &Pending<T, V>| p.rows.is_none();
        match &self.kind {
            Kind::Ordered { entries, .. } => entries
                .iter()
                .filter(|e| matches!(e, Entry::Record(p) if running(p)))
                .count(),
            Kind::Unordered { segments, .. } => segments
                .iter()
                .map(|s| s.records.values().filter(|p| running(p)).count())
                .sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use weir_connector_api::watermark::Watermark;

    use super::*;

    fn drain(queue: &mut Queue<u32, u32>) -> Vec<String> {
        std::iter::from_fn(|| queue.pop_ready())
            .map(|r| match r {
                Ready::Record(input, rows) => format!("{input}:{rows:?}"),
                Ready::Event(Event::Watermark(w)) => format!("wm{}", w.0),
                Ready::Event(other) => format!("{other:?}"),
            })
            .collect()
    }

    fn fill(queue: &mut Queue<u32, u32>) {
        // Records 0, 1, watermark 10, record 3 (seqs 0..=3).
        queue.push_record(0, Pending::new(0, None));
        queue.push_record(1, Pending::new(1, None));
        queue.push_event(2, Event::Watermark(Watermark(10)));
        queue.push_record(3, Pending::new(3, None));
    }

    #[test]
    fn ordered_waits_for_the_front() {
        let mut q = Queue::ordered();
        fill(&mut q);
        q.complete(1, vec![11]);
        q.complete(3, vec![33]);
        assert!(drain(&mut q).is_empty(), "record 0 is still in flight");
        assert_eq!(q.in_flight(), 1);
        q.complete(0, vec![]);
        assert_eq!(drain(&mut q), ["0:[]", "1:[11]", "wm10", "3:[33]"]);
        assert!(q.is_empty());
    }

    #[test]
    fn unordered_emits_done_records_but_never_across_a_watermark() {
        let mut q = Queue::unordered();
        fill(&mut q);
        q.complete(3, vec![33]);
        q.complete(1, vec![11]);
        assert_eq!(drain(&mut q), ["1:[11]"], "3 is behind the watermark");
        assert_eq!(q.len(), 3);
        assert_eq!(q.inputs(), [&0, &3]);
        q.complete(0, vec![]);
        assert_eq!(drain(&mut q), ["0:[]", "wm10", "3:[33]"]);
        assert!(q.is_empty());
        // Unknown or repeated completions change nothing.
        q.complete(99, vec![1]);
        assert!(q.is_empty());
    }
}

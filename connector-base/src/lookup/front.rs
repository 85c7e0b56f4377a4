//! [`HotKeys`]: a small per-subtask front before a shared cache. A shared cache (moka) pays
//! for its eviction policy and expiry on every read (a clock read, a read record in a bounded
//! channel, later replayed into its LRU lists); a subtask that reads the same hot keys again
//! and again answers them from copies instead, at the cost of a hash and a compare.
//!
//! Copies follow the cache's rules exactly where time is concerned: the cache says how long a
//! copy may be served ([`CopyValidity`]): never past its expire-after-write instant, never
//! after it went unread for the expire-after-access time, never after an invalidation of the
//! cache (its generation). What a front cannot see is the cache's size-based eviction: a hot
//! key may be answered from its copy after the cache evicted it (with rows that are still
//! within their time limits).

use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a copy of a cached entry (taken now) may be served without asking the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyValidity {
    /// Not at all: ask the cache every time (caches that cannot tell).
    Never,
    /// While the cache's [generation](super::LookupCache::generation) is `generation`, before
    /// `expires` (if set) and while read at least every `idle` (if set).
    Until {
        /// The cache's generation when the copy was taken.
        generation: u64,
        /// When the entry expires in the cache (expire after write).
        expires: Option<Instant>,
        /// How long the entry may go unread (expire after access).
        idle: Option<Duration>,
    },
}

/// How big a [`HotKeys`] front is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrontSize {
    /// No front: every lookup asks the shared cache.
    Off,
    /// This many slots (rounded up to a power of two, at most 2^20); a key has one slot, so a
    /// hot set well below the slot count fits.
    Slots(usize),
}

impl Default for FrontSize {
    /// 4096 slots (about 300 KiB per subtask with small keys).
    fn default() -> Self {
        FrontSize::Slots(4096)
    }
}

struct Slot<K, V> {
    key: K,
    rows: Arc<[V]>,
    generation: u64,
    expires: Option<Instant>,
    idle: Option<Duration>,
    last_read: Instant,
}

/// One slot: the copy it holds, and the hash of the last key that was read through it without
/// a copy (a key is copied on its second read in a row through its slot, so keys read once,
/// as in a scan over many keys, do not churn the front).
struct Entry<K, V> {
    candidate: u64,
    copy: Option<Slot<K, V>>,
}

/// A direct-mapped table of copies: each key hashes to one slot; a newer copy replaces
/// whatever the slot held.
pub(crate) struct HotKeys<K, V> {
    slots: Box<[Entry<K, V>]>,
    mask: usize,
    hasher: foldhash::fast::RandomState,
}

impl<K: Hash + Eq, V> HotKeys<K, V> {
    /// A front of `size`, or none.
    pub(crate) fn new(size: FrontSize) -> Option<Self> {
        let FrontSize::Slots(slots) = size else {
            return None;
        };
        let slots = slots.clamp(1, 1 << 20).next_power_of_two();
        Some(HotKeys {
            slots: (0..slots)
                .map(|_| Entry {
                    candidate: 0,
                    copy: None,
                })
                .collect(),
            mask: slots - 1,
            hasher: foldhash::fast::RandomState::default(),
        })
    }

    #[inline]
    fn hash(&self, key: &K) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The copy of `key`'s rows, if one is held and still valid at cache `generation`.
    #[inline]
    pub(crate) fn get(&mut self, key: &K, generation: u64) -> Option<Arc<[V]>> {
        // The low bits of foldhash's output are well mixed.
        let index = (self.hash(key) as usize) & self.mask;
        let entry = self.slots.get_mut(index)?;
        let slot = entry.copy.as_mut()?;
        if slot.key != *key || slot.generation != generation {
            return None;
        }
        if slot.expires.is_some() || slot.idle.is_some() {
            let now = Instant::now();
            let expired = slot.expires.is_some_and(|at| now >= at)
                || slot
                    .idle
                    .is_some_and(|idle| now.duration_since(slot.last_read) >= idle);
            if expired {
                entry.copy = None;
                return None;
            }
            slot.last_read = now;
        }
        Some(Arc::clone(&slot.rows))
    }

    /// The cache answered `key` with `rows`, valid as `validity` says: keeps a copy if the
    /// key was the last one read through its slot too.
    pub(crate) fn offer(&mut self, key: &K, rows: &Arc<[V]>, validity: CopyValidity)
    where
        K: Clone,
    {
        let CopyValidity::Until {
            generation,
            expires,
            idle,
        } = validity
        else {
            return;
        };
        let hash = self.hash(key);
        let Some(entry) = self.slots.get_mut((hash as usize) & self.mask) else {
            return;
        };
        if entry.candidate != hash {
            entry.candidate = hash;
            return;
        }
        entry.copy = Some(Slot {
            key: key.clone(),
            rows: Arc::clone(rows),
            generation,
            expires,
            idle,
            last_read: Instant::now(),
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn rows(v: &[u32]) -> Arc<[u32]> {
        Arc::from(v.to_vec())
    }

    fn until(generation: u64) -> CopyValidity {
        CopyValidity::Until {
            generation,
            expires: None,
            idle: None,
        }
    }

    #[test]
    fn copies_answer_until_the_generation_changes() {
        let mut front = HotKeys::new(FrontSize::Slots(8)).unwrap();
        front.offer(&1_u64, &rows(&[10]), until(0));
        assert!(front.get(&1, 0).is_none(), "copied on the second read only");
        front.offer(&1_u64, &rows(&[10]), until(0));
        assert_eq!(front.get(&1, 0).as_deref(), Some(&[10][..]));
        assert!(front.get(&2, 0).is_none());
        assert!(front.get(&1, 1).is_none(), "an invalidation happened since");
        front.offer(&3, &rows(&[30]), CopyValidity::Never);
        front.offer(&3, &rows(&[30]), CopyValidity::Never);
        assert!(
            front.get(&3, 0).is_none(),
            "a copy that may not be kept is not kept"
        );
        assert!(HotKeys::<u64, u32>::new(FrontSize::Off).is_none());
    }

    #[test]
    fn copies_expire_after_write_and_after_access() {
        let mut front = HotKeys::new(FrontSize::Slots(8)).unwrap();
        let now = Instant::now();
        for _ in 0..2 {
            front.offer(
                &1_u64,
                &rows(&[1]),
                CopyValidity::Until {
                    generation: 0,
                    expires: Some(now),
                    idle: None,
                },
            );
        }
        assert!(front.get(&1, 0).is_none(), "expired at its write deadline");
        for _ in 0..2 {
            front.offer(
                &2,
                &rows(&[2]),
                CopyValidity::Until {
                    generation: 0,
                    expires: Some(now + Duration::from_secs(60)),
                    idle: Some(Duration::from_millis(30)),
                },
            );
        }
        for _ in 0..5 {
            std::thread::sleep(Duration::from_millis(10));
            assert!(front.get(&2, 0).is_some(), "read every 10 ms");
        }
        std::thread::sleep(Duration::from_millis(40));
        assert!(front.get(&2, 0).is_none(), "unread for 40 ms");
    }
}

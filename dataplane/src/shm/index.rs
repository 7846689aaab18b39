//! The two lock-free indexes: open addressing with linear probing over tables of
//! `AtomicU64` buckets, each `(key << 32) | slot`.
//!
//! * `0` is an empty bucket (keys are never 0: tunnel id 0 and 0.0.0.0 are invalid; the
//!   prefix indexes' hashed keys are mapped away from 0).
//! * The upstream and IPv4 indexes hold one entry per key; the IPv6 prefix and IPv4 route
//!   indexes are keyed by a 32-bit hash of (prefix, length) and may hold several entries
//!   with one key, told apart by the reader's validation against the slot's record.
//! * [`TOMBSTONE`] (slot field `u32::MAX`, never a valid slot) is a removed entry; probes
//!   walk over it.
//! * Every entry lies within [`MAX_PROBE`](super::MAX_PROBE) buckets of its home bucket;
//!   a reader stops at an empty bucket or after that many probes: one atomic load per probe.
//! * Entries never move while readers may use their table: an insert fills the first
//!   tombstone or empty bucket of the key's probe sequence, a remove writes a tombstone.
//!   So an in-place change never hides another key from a concurrent reader.
//! * Tombstones are cleaned by a rebuild into the *other* table of the pair, then a flip
//!   of the `flips` counter (active table = `flips & 1`). A reader that misses re-reads
//!   `flips` and retries when it moved, so a rebuild never makes a present key invisible.
//! * A hit is only a hint: the caller validates the slot's record (key matches, sequence
//!   even and unchanged), so a stale bucket never returns the wrong session.

use core::sync::atomic::{AtomicU64, Ordering};

/// A removed entry.
pub const TOMBSTONE: u64 = u64::MAX;
/// An empty bucket.
pub const EMPTY: u64 = 0;

/// How often a reader restarts a miss because a rebuild flipped the table under it.
const FLIP_RETRIES: u32 = 4;

const fn pack(key: u32, slot: u32) -> u64 {
    ((key as u64) << 32) | slot as u64
}

/// An index: its two tables and its flip counter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Index<'a> {
    pub tables: [&'a [AtomicU64]; 2],
    /// `64 - log2(buckets)`: the home bucket is the top bits of the hashed key
    /// ([`Index::shift_for`], precomputed at attach).
    pub shift: u32,
    pub flips: &'a AtomicU64,
    pub max_probe: u32,
    /// Keys identify entries (upstream, IPv4): a second entry with a present key is a
    /// duplicate. False for the prefix indexes, whose keys are hashes: entries with equal
    /// keys coexist and the reader's validation tells them apart (the writer detects real
    /// duplicates itself).
    pub unique: bool,
}

/// Why an insert did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InsertError {
    /// The key is present (in this slot).
    Duplicate(u32),
    /// No free bucket within the probe bound.
    NoRoom,
}

impl<'a> Index<'a> {
    /// [`Index::shift`] for a table of `buckets` (a power of two) buckets.
    pub const fn shift_for(buckets: usize) -> u32 {
        64 - buckets.trailing_zeros()
    }

    #[inline(always)]
    fn home(&self, key: u32) -> usize {
        // Fibonacci hashing: the top bits of key x 2^64/phi; sequential keys (pool
        // addresses, allocated ids) spread evenly. Tables have at least 16 buckets
        // (`Layout`), so the shift is below 64; the mask only spares a check.
        (u64::from(key).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (self.shift & 63)) as usize
    }

    /// Reader lookup: calls `valid(slot)` for each bucket holding `key` until it accepts
    /// one. Lock-free, allocation-free, one atomic load per probe.
    #[inline(always)]
    pub fn find<T>(&self, key: u32, mut valid: impl FnMut(u32) -> Option<T>) -> Option<T> {
        let mask = self.tables[0].len() - 1;
        let home = self.home(key);
        for _ in 0..FLIP_RETRIES {
            // Acquire: pairs with the Release flip in `rebuild`, so the table it selects
            // is completely built before we probe it.
            let f = self.flips.load(Ordering::Acquire);
            let table = self.tables[(f & 1) as usize];
            let mut pos = home;
            for _ in 0..self.max_probe {
                // Acquire: pairs with the writer's Release bucket store, which follows the
                // record's publication; so the slot we validate holds at least that record.
                // Also keeps the re-read of `flips` below after every probe.
                let b = table[pos].load(Ordering::Acquire);
                if b == EMPTY {
                    break;
                }
                if b != TOMBSTONE && (b >> 32) as u32 == key {
                    if let Some(t) = valid(b as u32) {
                        return Some(t);
                    }
                }
                pos = (pos + 1) & mask;
            }
            // Relaxed is enough here: the Acquire bucket loads above keep this load after
            // them; if any of them saw a rebuild's store, that store's Release makes the
            // flip preceding it visible, so we see a changed counter and retry.
            if self.flips.load(Ordering::Relaxed) == f {
                return None;
            }
        }
        None
    }

    /// Reader fast path: the slot of the first bucket holding `key` in the table active
    /// now. A hint as [`Index::find`]'s are, to be validated by the caller; on `None` or a
    /// failed validation the caller falls back to [`Index::find`] (which also covers a
    /// concurrent rebuild and further buckets with the same key). Kept free of closures
    /// so that the caller's validation is inlined into the fast path.
    #[inline(always)]
    pub fn first(&self, key: u32) -> Option<u32> {
        // Acquire: as in `find`. A select, not an indexed load from a spilled array.
        let t = if self.flips.load(Ordering::Acquire) & 1 == 0 {
            self.tables[0]
        } else {
            self.tables[1]
        };
        let mask = t.len() - 1;
        let mut pos = self.home(key);
        for _ in 0..self.max_probe {
            // Acquire: as in `find`.
            let b = t[pos].load(Ordering::Acquire);
            if b == EMPTY {
                return None;
            }
            if b != TOMBSTONE && (b >> 32) as u32 == key {
                return Some(b as u32);
            }
            pos = (pos + 1) & mask;
        }
        None
    }

    /// Prefetches the home bucket of `key` in the table active now (a hint).
    #[inline(always)]
    pub fn prefetch(&self, key: u32) {
        // Relaxed: a hint; a stale choice only prefetches the other table.
        let t = if self.flips.load(Ordering::Relaxed) & 1 == 0 {
            self.tables[0]
        } else {
            self.tables[1]
        };
        if let Some(bucket) = t.get(self.home(key)) {
            super::segment::prefetch_line(bucket);
        }
    }

    /// The active table (writer side).
    fn active(&self) -> &'a [AtomicU64] {
        // Relaxed: only the writer changes `flips`.
        self.tables[(self.flips.load(Ordering::Relaxed) & 1) as usize]
    }

    /// Writer: the slot holding `key`, if any.
    pub fn get(&self, key: u32) -> Option<u32> {
        let t = self.active();
        let mask = t.len() - 1;
        let mut pos = self.home(key);
        for _ in 0..self.max_probe {
            // Relaxed: our own stores.
            let b = t[pos].load(Ordering::Relaxed);
            if b == EMPTY {
                return None;
            }
            if b != TOMBSTONE && (b >> 32) as u32 == key {
                return Some(b as u32);
            }
            pos = (pos + 1) & mask;
        }
        None
    }

    /// Writer: inserts `key -> slot` into `t` (no concurrent reader may miss a present
    /// key: nothing moves). Returns whether a tombstone was reused.
    fn insert_into(&self, t: &[AtomicU64], key: u32, slot: u32) -> Result<bool, InsertError> {
        let mask = t.len() - 1;
        let mut pos = self.home(key);
        let mut free = None;
        for _ in 0..self.max_probe {
            // Relaxed: our own stores.
            let b = t[pos].load(Ordering::Relaxed);
            if b == EMPTY {
                free.get_or_insert(pos);
                break;
            }
            if b == TOMBSTONE {
                free.get_or_insert(pos);
            } else if self.unique && (b >> 32) as u32 == key {
                return Err(InsertError::Duplicate(b as u32));
            }
            pos = (pos + 1) & mask;
        }
        let Some(at) = free else {
            return Err(InsertError::NoRoom);
        };
        // Relaxed read of our own store.
        let reused = t[at].load(Ordering::Relaxed) == TOMBSTONE;
        // Release: a reader that finds this bucket (Acquire) sees the record published
        // before it.
        t[at].store(pack(key, slot), Ordering::Release);
        Ok(reused)
    }

    /// Writer: inserts into the active table.
    pub fn insert(&self, key: u32, slot: u32) -> Result<bool, InsertError> {
        self.insert_into(self.active(), key, slot)
    }

    /// Writer: removes `key -> slot`. Returns the change in the tombstone count (+1, or
    /// zero or negative when tombstones at the end of a run became empty buckets), or
    /// `None` when the entry was not there.
    pub fn remove(&self, key: u32, slot: u32) -> Option<i64> {
        let t = self.active();
        let mask = t.len() - 1;
        let mut pos = self.home(key);
        let want = pack(key, slot);
        for _ in 0..self.max_probe {
            // Relaxed: our own stores.
            let b = t[pos].load(Ordering::Relaxed);
            if b == EMPTY {
                return None;
            }
            if b == want {
                // Release: orders the removal after whatever the caller did before.
                t[pos].store(TOMBSTONE, Ordering::Release);
                let mut delta = 1;
                // If the next bucket is empty, no probe sequence runs through this one:
                // it and the tombstones right before it can become empty. A reader looking
                // for a present key never walks over them (that key's run would have no
                // gap), so no key becomes invisible.
                if t[(pos + 1) & mask].load(Ordering::Relaxed) == EMPTY {
                    let mut p = pos;
                    while t[p].load(Ordering::Relaxed) == TOMBSTONE {
                        // Release: as above.
                        t[p].store(EMPTY, Ordering::Release);
                        delta -= 1;
                        p = (p + mask) & mask;
                    }
                }
                return Some(delta);
            }
            pos = (pos + 1) & mask;
        }
        None
    }

    /// Writer: rebuilds the inactive table from `entries` and flips to it. Readers keep
    /// using the active table until the flip; a reader still probing the old table after
    /// the flip sees the counter change and retries.
    pub fn rebuild(&self, entries: impl Iterator<Item = (u32, u32)>) -> Result<(), (u32, u32)> {
        // Relaxed: only the writer changes `flips`.
        let f = self.flips.load(Ordering::Relaxed);
        let target = self.tables[((f + 1) & 1) as usize];
        for b in target {
            // Release: a reader that still probes this table (it loaded `flips` before the
            // previous flip) and sees this store also sees that flip, and retries.
            b.store(EMPTY, Ordering::Release);
        }
        for (key, slot) in entries {
            match self.insert_into(target, key, slot) {
                Ok(_) => {}
                Err(_) => return Err((key, slot)),
            }
        }
        // Release: the table is complete before any reader selects it (Acquire in `find`).
        self.flips.store(f + 1, Ordering::Release);
        Ok(())
    }

    /// Writer: every live `(key, slot)` of the active table.
    pub fn entries(&self) -> impl Iterator<Item = (u32, u32)> + 'a {
        self.active().iter().filter_map(|b| {
            // Relaxed: our own stores.
            let b = b.load(Ordering::Relaxed);
            (b != EMPTY && b != TOMBSTONE).then_some(((b >> 32) as u32, b as u32))
        })
    }
}

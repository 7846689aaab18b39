//! The writer: xlnsd's side. The only process that writes session slots and indexes.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::ShmError;
use super::index::{Index, InsertError};
use super::layout::Geometry;
use super::segment::Segment;
use super::{Counters, SlotId, Which, route_key, session_index_keys, sum_counters, v6_key};
use crate::session::{MAX_V6_PREFIX_LEN, SessionRecord, flags};

/// Rebuild an index when its tombstones exceed `capacity / TOMBSTONE_DIVISOR`.
const TOMBSTONE_DIVISOR: u64 = 8;

/// The session writer. One per segment, in xlnsd.
#[derive(Debug)]
pub struct Writer {
    seg: Segment,
    /// Free slots, oldest-freed first: a freed slot is reused as late as possible, so a
    /// worker still holding the old session's copy for one batch never counts into the
    /// next session of that slot in practice (and the counter base covers the rest).
    free: VecDeque<u32>,
    len: u32,
    tombstones: [u64; 4],
    torn_on_attach: u32,
    prefixes: Prefixes,
    /// The next session's [`SessionRecord::epoch`].
    next_epoch: u32,
}

/// A prefix-index entry: `(Which::V6, upper 64 bits, len)` or `(Which::Route, prefix, len)`.
type PrefixKey = (u8, u64, u8);

/// The writer's own view of the prefix indexes: who holds each prefix, and how many
/// indexed entries each length has (its bit in the header's bitmap is set while non-zero).
#[derive(Debug)]
struct Prefixes {
    /// Prefix -> (slot, references from that slot's record).
    owner: HashMap<PrefixKey, (u32, u32)>,
    /// Entries per length: IPv6 (index `len`, 1 ..= 64) and routes (0 ..= 32).
    v6_lengths: [u32; 65],
    route_lengths: [u32; 33],
}

/// The prefix-index entries of `rec`: `(index, key, prefix, len)`.
fn prefix_entries(rec: &SessionRecord) -> Vec<(Which, u32, PrefixKey)> {
    let mut out = Vec::new();
    for (prefix, len) in rec.all_prefixes_v6() {
        out.push((
            Which::V6,
            v6_key(prefix, len),
            (Which::V6 as u8, prefix, len),
        ));
    }
    for (prefix, len) in rec.routes_v4() {
        let p = u32::from_be_bytes(prefix);
        out.push((
            Which::Route,
            route_key(p, len),
            (Which::Route as u8, u64::from(p), len),
        ));
    }
    out
}

impl Writer {
    /// Creates a fresh segment at `path` (atomically replacing any file there) and becomes
    /// its writer.
    pub fn create(path: &Path, geometry: Geometry) -> Result<Writer, ShmError> {
        let seg = Segment::create(path, geometry)?;
        Ok(Writer {
            free: (0..geometry.max_sessions).collect(),
            seg,
            len: 0,
            tombstones: [0; 4],
            torn_on_attach: 0,
            prefixes: Prefixes::default(),
            next_epoch: 1,
        })
    }

    /// Re-attaches to an existing segment after a writer restart: checks it like a reader
    /// does, then scans every slot. A slot left odd by a writer that died mid-write is
    /// cleared (see [`Writer::torn_on_attach`]), as is a slot whose key duplicates an
    /// earlier slot's. Both indexes are rebuilt from the slots (into their inactive tables,
    /// then flipped, so readers keep finding every session throughout), and the free list
    /// is every slot not in use.
    pub fn attach_existing(path: &Path) -> Result<Writer, ShmError> {
        let seg = Segment::attach(path)?;
        let n = seg.layout().geometry.max_sessions;
        let mut w = Writer {
            free: VecDeque::new(),
            seg,
            len: 0,
            tombstones: [0; 4],
            torn_on_attach: 0,
            prefixes: Prefixes::default(),
            next_epoch: 1,
        };
        let mut live = Vec::new();
        let mut seen_up = std::collections::HashSet::new();
        let mut seen_v4 = std::collections::HashSet::new();
        for slot in 0..n {
            let Some((seq, rec)) = w.seg.own_slot(slot) else {
                continue;
            };
            let (up, v4) = session_index_keys(&rec);
            let torn = seq & 1 == 1;
            let dup = up != 0 && (!seen_up.insert(up) || v4.is_some_and(|k| !seen_v4.insert(k)));
            if torn || dup || (up == 0 && rec != SessionRecord::EMPTY) {
                w.seg.write_slot(slot, &SessionRecord::EMPTY);
                w.torn_on_attach += 1;
                w.free.push_back(slot);
            } else if up == 0 {
                w.free.push_back(slot);
            } else {
                live.push((slot, up, v4));
            }
        }
        w.len = live.len() as u32;
        let max_probe = w.seg.header().max_probe;
        let up_entries = live.iter().map(|&(s, up, _)| (up, s));
        w.index(Which::Upstream)
            .rebuild(up_entries)
            .map_err(|(key, _)| ShmError::IndexFull {
                index: "upstream",
                key,
                max_probe,
            })?;
        let v4_entries = live.iter().filter_map(|&(s, _, v4)| v4.map(|k| (k, s)));
        w.index(Which::V4)
            .rebuild(v4_entries)
            .map_err(|(key, _)| ShmError::IndexFull {
                index: "ipv4",
                key,
                max_probe,
            })?;
        // The prefix indexes, from the records; the length bitmaps are set (Release)
        // before the flips that publish the rebuilt tables.
        let mut by_index: [Vec<(u32, u32)>; 4] = Default::default();
        for &(slot, _, _) in &live {
            let Some((_, rec)) = w.seg.own_slot(slot) else {
                continue;
            };
            w.next_epoch = w.next_epoch.max(rec.epoch.wrapping_add(1));
            for (which, key, pk) in prefix_entries(&rec) {
                w.prefixes.reference(pk, slot);
                w.prefixes.count(pk, 1);
                by_index[which as usize].push((key, slot));
            }
        }
        w.publish_lengths(true);
        for which in [Which::V6, Which::Route] {
            let entries = core::mem::take(&mut by_index[which as usize]);
            w.index(which)
                .rebuild(entries.into_iter())
                .map_err(|(key, _)| ShmError::IndexFull {
                    index: which.name(),
                    key,
                    max_probe,
                })?;
        }
        w.publish_lengths(false);
        w.seg
            .header()
            .writer_pid
            .store(std::process::id(), Ordering::Relaxed);
        w.publish_change();
        Ok(w)
    }

    fn index(&self, which: Which) -> Index<'_> {
        self.seg.index(which)
    }

    /// Stores the length bitmaps from the counts. `grow_only`: only sets bits (before new
    /// entries are indexed); otherwise also clears the bits of lengths left empty (after
    /// entries were removed).
    fn publish_lengths(&self, grow_only: bool) {
        let h = self.seg.header();
        // Bit i for counts[i]: IPv6 lengths 1 ..= 64 at bits 0 ..= 63, routes 0 ..= 32.
        let bits = |counts: &[u32]| {
            counts
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .fold(0u64, |b, (i, _)| b | 1 << i)
        };
        let v6 = bits(&self.prefixes.v6_lengths[1..]);
        let route = bits(&self.prefixes.route_lengths);
        // Relaxed loads: only the writer stores these. Release stores: a reader that
        // sees a bit (Acquire) and then an entry of that length sees the entry complete.
        let (v6, route) = if grow_only {
            (
                v6 | h.v6_lengths.load(Ordering::Relaxed),
                route | h.route_lengths.load(Ordering::Relaxed),
            )
        } else {
            (v6, route)
        };
        h.v6_lengths.store(v6, Ordering::Release);
        h.route_lengths.store(route, Ordering::Release);
    }

    fn publish_change(&self) {
        let h = self.seg.header();
        // Relaxed: a statistic for readers; no data is published through it.
        h.sessions.store(u64::from(self.len), Ordering::Relaxed);
        // Release: a reader that sees the new generation (Acquire) sees the change's slot
        // and index stores.
        h.generation.fetch_add(1, Ordering::Release);
    }

    fn check_keys(
        &self,
        rec: &SessionRecord,
        own: Option<u32>,
    ) -> Result<(u32, Option<u32>), ShmError> {
        let up = rec.upstream_key();
        if rec.local_tunnel == 0 || rec.local_session == 0 {
            return Err(ShmError::InvalidKey {
                index: "upstream",
                key: up,
                reason: "tunnel id and session id must be non-zero",
            });
        }
        let (_, v4) = session_index_keys(rec);
        if rec.has(crate::session::flags::HAS_IPV4) && v4.is_none() {
            return Err(ShmError::InvalidKey {
                index: "ipv4",
                key: 0,
                reason: "0.0.0.0 is not a subscriber address",
            });
        }
        if let Some(slot) = self.index(Which::Upstream).get(up) {
            if Some(slot) != own {
                return Err(ShmError::DuplicateKey {
                    index: "upstream",
                    key: up,
                    slot,
                });
            }
        }
        if let Some(k) = v4 {
            if let Some(slot) = self.index(Which::V4).get(k) {
                if Some(slot) != own {
                    return Err(ShmError::DuplicateKey {
                        index: "ipv4",
                        key: k,
                        slot,
                    });
                }
            }
        }
        if rec.has(flags::HAS_IPV6) && !(1..=MAX_V6_PREFIX_LEN).contains(&rec.subscriber_v6_len) {
            return Err(ShmError::InvalidKey {
                index: Which::V6.name(),
                key: u32::from(rec.subscriber_v6_len),
                reason: "IPv6 prefixes are routed by their upper 64 bits: length 1 to 64",
            });
        }
        for (_, key, pk) in prefix_entries(rec) {
            if let Some(&(slot, _)) = self.prefixes.owner.get(&pk) {
                if Some(slot) != own {
                    return Err(ShmError::DuplicateKey {
                        index: if pk.0 == Which::V6 as u8 {
                            Which::V6.name()
                        } else {
                            Which::Route.name()
                        },
                        key,
                        slot,
                    });
                }
            }
        }
        Ok((up, v4))
    }

    /// Indexes the prefix entries of `rec` (in `slot`): length bits first, then entries.
    /// On failure, the entries indexed so far are removed again.
    fn index_prefixes(&mut self, rec: &SessionRecord, slot: u32) -> Result<(), ShmError> {
        let entries = prefix_entries(rec);
        for &(_, _, pk) in &entries {
            self.prefixes.count(pk, 1);
        }
        self.publish_lengths(true);
        for (i, &(which, key, pk)) in entries.iter().enumerate() {
            if let Err(e) = self.index_insert(which, key, slot) {
                for &(which, key, _) in &entries[..i] {
                    let _ = self.index_remove(which, key, slot);
                }
                for &(_, _, pk) in &entries {
                    self.prefixes.count(pk, -1);
                }
                self.publish_lengths(false);
                return Err(e);
            }
            self.prefixes.reference(pk, slot);
        }
        Ok(())
    }

    /// Removes the prefix entries of `rec` (in `slot`): entries first, then length bits.
    fn unindex_prefixes(&mut self, rec: &SessionRecord, slot: u32) -> Result<(), ShmError> {
        let entries = prefix_entries(rec);
        let mut result = Ok(());
        for &(which, key, pk) in &entries {
            if let Err(e) = self.index_remove(which, key, slot) {
                result = Err(e);
            }
            self.prefixes.unreference(pk, slot);
            self.prefixes.count(pk, -1);
        }
        self.publish_lengths(false);
        result
    }

    fn index_insert(&mut self, which: Which, key: u32, slot: u32) -> Result<(), ShmError> {
        let max_probe = self.seg.header().max_probe;
        for attempt in 0..2 {
            match self.index(which).insert(key, slot) {
                Ok(reused) => {
                    if reused {
                        self.tombstones[which as usize] -= 1;
                    }
                    return Ok(());
                }
                Err(InsertError::Duplicate(s)) => {
                    return Err(ShmError::DuplicateKey {
                        index: which.name(),
                        key,
                        slot: s,
                    });
                }
                Err(InsertError::NoRoom) if attempt == 0 => self.rebuild(which)?,
                Err(InsertError::NoRoom) => {}
            }
        }
        Err(ShmError::IndexFull {
            index: which.name(),
            key,
            max_probe,
        })
    }

    fn index_remove(&mut self, which: Which, key: u32, slot: u32) -> Result<(), ShmError> {
        if let Some(delta) = self.index(which).remove(key, slot) {
            let cap = self.index(which).tables[0].len() as u64;
            let t = &mut self.tombstones[which as usize];
            *t = t.saturating_add_signed(delta);
            if *t > cap / TOMBSTONE_DIVISOR {
                self.rebuild(which)?;
            }
        }
        Ok(())
    }

    /// Rebuilds one index without its tombstones (into the inactive table, then a flip).
    fn rebuild(&mut self, which: Which) -> Result<(), ShmError> {
        let idx = self.index(which);
        idx.rebuild(idx.entries())
            .map_err(|(key, _)| ShmError::IndexFull {
                index: which.name(),
                key,
                max_probe: idx.max_probe,
            })?;
        self.tombstones[which as usize] = 0;
        Ok(())
    }

    /// Publishes a new session: allocates a slot, records the slot's counter base, writes
    /// the record under the slot's sequence lock, then indexes it (upstream, then IPv4 when
    /// `HAS_IPV4`, then its IPv6 prefixes and Framed-Routes). Readers find it only once it
    /// is complete. The stored record is `rec` with its template layout derived
    /// ([`SessionRecord::derive_template_layout`]) and a fresh
    /// [`SessionRecord::epoch`].
    pub fn insert(&mut self, rec: &SessionRecord) -> Result<SlotId, ShmError> {
        let (up, v4) = self.check_keys(rec, None)?;
        let Some(slot) = self.free.pop_front() else {
            return Err(ShmError::Full {
                max_sessions: self.seg.layout().geometry.max_sessions,
            });
        };
        let mut rec = *rec;
        rec.derive_template_layout();
        rec.epoch = self.next_epoch;
        self.next_epoch = self.next_epoch.wrapping_add(1).max(1);
        let rec = &rec;
        self.set_counter_base(slot);
        self.seg.write_slot(slot, rec);
        let indexed = self
            .index_insert(Which::Upstream, up, slot)
            .and_then(|()| match v4 {
                Some(k) => self.index_insert(Which::V4, k, slot).inspect_err(|_| {
                    let _ = self.index_remove(Which::Upstream, up, slot);
                }),
                None => Ok(()),
            })
            .and_then(|()| {
                self.index_prefixes(rec, slot).inspect_err(|_| {
                    let _ = self.index_remove(Which::Upstream, up, slot);
                    if let Some(k) = v4 {
                        let _ = self.index_remove(Which::V4, k, slot);
                    }
                })
            });
        if let Err(e) = indexed {
            self.seg.write_slot(slot, &SessionRecord::EMPTY);
            self.free.push_front(slot);
            return Err(e);
        }
        self.len += 1;
        self.publish_change();
        Ok(SlotId(slot))
    }

    /// Replaces the record of a session in place (same slot, same counters, same epoch: its
    /// downstream Ns continues). When a key changes, the new key is indexed before the
    /// record is rewritten and the old key is unindexed after, so the session is findable
    /// under one of them throughout (prefix entries likewise: the new ones are indexed,
    /// then the old ones removed).
    pub fn update(&mut self, slot: SlotId, rec: &SessionRecord) -> Result<(), ShmError> {
        let old = self.live(slot)?;
        let (old_up, old_v4) = session_index_keys(&old);
        let (up, v4) = self.check_keys(rec, Some(slot.0))?;
        if up != old_up {
            self.index_insert(Which::Upstream, up, slot.0)?;
        }
        if v4 != old_v4 {
            if let Some(k) = v4 {
                if let Err(e) = self.index_insert(Which::V4, k, slot.0) {
                    if up != old_up {
                        self.index_remove(Which::Upstream, up, slot.0)?;
                    }
                    return Err(e);
                }
            }
        }
        let mut rec = *rec;
        rec.derive_template_layout();
        rec.epoch = old.epoch;
        let rec = &rec;
        if let Err(e) = self.index_prefixes(rec, slot.0) {
            if up != old_up {
                self.index_remove(Which::Upstream, up, slot.0)?;
            }
            if v4 != old_v4 {
                if let Some(k) = v4 {
                    self.index_remove(Which::V4, k, slot.0)?;
                }
            }
            return Err(e);
        }
        self.seg.write_slot(slot.0, rec);
        self.unindex_prefixes(&old, slot.0)?;
        if up != old_up {
            self.index_remove(Which::Upstream, old_up, slot.0)?;
        }
        if v4 != old_v4 {
            if let Some(k) = old_v4 {
                self.index_remove(Which::V4, k, slot.0)?;
            }
        }
        self.publish_change();
        Ok(())
    }

    /// Removes a session: unindexes it first, then clears its slot, and returns its final
    /// counters. The slot goes to the back of the free list.
    pub fn remove(&mut self, slot: SlotId) -> Result<Counters, ShmError> {
        let old = self.live(slot)?;
        let (up, v4) = session_index_keys(&old);
        self.unindex_prefixes(&old, slot.0)?;
        self.index_remove(Which::Upstream, up, slot.0)?;
        if let Some(k) = v4 {
            self.index_remove(Which::V4, k, slot.0)?;
        }
        self.seg.write_slot(slot.0, &SessionRecord::EMPTY);
        let final_counts = self.session_counters(slot)?;
        self.free.push_back(slot.0);
        self.len -= 1;
        self.publish_change();
        Ok(final_counts)
    }

    fn live(&self, slot: SlotId) -> Result<SessionRecord, ShmError> {
        let Some((_, rec)) = self.seg.own_slot(slot.0) else {
            return Err(ShmError::BadSlot {
                slot: slot.0,
                reason: "out of range",
            });
        };
        if rec.upstream_key() == 0 {
            return Err(ShmError::BadSlot {
                slot: slot.0,
                reason: "not in use",
            });
        }
        Ok(rec)
    }

    fn set_counter_base(&self, slot: u32) {
        let now = sum_counters(&self.seg, slot);
        if let Some(b) = self.seg.counter_base().get(slot as usize) {
            // Relaxed: only the writer reads and writes the bases.
            b.up_packets.store(now.up_packets, Ordering::Relaxed);
            b.up_bytes.store(now.up_bytes, Ordering::Relaxed);
            b.down_packets.store(now.down_packets, Ordering::Relaxed);
            b.down_bytes.store(now.down_bytes, Ordering::Relaxed);
        }
    }

    /// A slot's counters since its session was inserted: the sum over every worker's
    /// column, less the slot's base. Works for a free slot too (counts since the last
    /// insert).
    pub fn session_counters(&self, slot: SlotId) -> Result<Counters, ShmError> {
        let Some(b) = self.seg.counter_base().get(slot.0 as usize) else {
            return Err(ShmError::BadSlot {
                slot: slot.0,
                reason: "out of range",
            });
        };
        let now = sum_counters(&self.seg, slot.0);
        // Relaxed: our own stores.
        Ok(Counters {
            up_packets: now
                .up_packets
                .wrapping_sub(b.up_packets.load(Ordering::Relaxed)),
            up_bytes: now
                .up_bytes
                .wrapping_sub(b.up_bytes.load(Ordering::Relaxed)),
            down_packets: now
                .down_packets
                .wrapping_sub(b.down_packets.load(Ordering::Relaxed)),
            down_bytes: now
                .down_bytes
                .wrapping_sub(b.down_bytes.load(Ordering::Relaxed)),
        })
    }

    /// The record in `slot`, if it holds a session.
    pub fn get(&self, slot: SlotId) -> Option<SessionRecord> {
        self.live(slot).ok()
    }

    /// Every session: `(slot, record)`, in slot order (what xlnsd reconciles after a
    /// restart).
    pub fn sessions(&self) -> impl Iterator<Item = (SlotId, SessionRecord)> + '_ {
        (0..self.seg.layout().geometry.max_sessions).filter_map(|s| {
            let (_, rec) = self.seg.own_slot(s)?;
            (rec.upstream_key() != 0).then_some((SlotId(s), rec))
        })
    }

    /// The slot of the session with this upstream key (writer-side index lookup).
    pub fn find_upstream(&self, tunnel: u16, session: u16) -> Option<SlotId> {
        let key = (u32::from(tunnel) << 16) | u32::from(session);
        self.index(Which::Upstream).get(key).map(SlotId)
    }

    /// The slot of the session with this subscriber IPv4 address.
    pub fn find_v4(&self, addr: [u8; 4]) -> Option<SlotId> {
        self.index(Which::V4)
            .get(u32::from_be_bytes(addr))
            .map(SlotId)
    }

    /// Number of sessions.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether there is no session.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The segment's geometry.
    pub fn geometry(&self) -> Geometry {
        self.seg.layout().geometry
    }

    /// Slots found half-written (or duplicated) by [`Writer::attach_existing`] and cleared.
    pub fn torn_on_attach(&self) -> u32 {
        self.torn_on_attach
    }

    /// Records the writer's liveness (CLOCK_MONOTONIC nanoseconds, see
    /// [`super::monotonic_ns`]).
    pub fn heartbeat(&self, now_ns: u64) {
        // Relaxed: an independent value; readers only compare it with their clock.
        self.seg
            .header()
            .heartbeat_ns
            .store(now_ns, Ordering::Relaxed);
    }

    /// Worker `worker`'s drop-reason counters (for metrics).
    pub fn drop_counters(&self, worker: u32) -> Result<&[AtomicU64], ShmError> {
        self.seg
            .drop_counters(worker)
            .ok_or(ShmError::WorkerOutOfRange {
                worker,
                max_workers: self.seg.layout().geometry.max_workers,
            })
    }

    /// The mapped segment.
    pub fn segment(&self) -> &Segment {
        &self.seg
    }
}

impl Default for Prefixes {
    fn default() -> Self {
        Prefixes {
            owner: HashMap::new(),
            v6_lengths: [0; 65],
            route_lengths: [0; 33],
        }
    }
}

impl Prefixes {
    /// Records that `slot`'s record references `pk` once more.
    fn reference(&mut self, pk: PrefixKey, slot: u32) {
        let e = self.owner.entry(pk).or_insert((slot, 0));
        if e.0 == slot {
            e.1 += 1;
        }
    }

    /// Drops one reference of `slot` to `pk`.
    fn unreference(&mut self, pk: PrefixKey, slot: u32) {
        if let Some(e) = self.owner.get_mut(&pk) {
            if e.0 == slot {
                e.1 = e.1.saturating_sub(1);
                if e.1 == 0 {
                    self.owner.remove(&pk);
                }
            }
        }
    }

    /// Adds `delta` to the entry count of `pk`'s length.
    fn count(&mut self, pk: PrefixKey, delta: i32) {
        let counts: &mut [u32] = if pk.0 == Which::V6 as u8 {
            &mut self.v6_lengths
        } else {
            &mut self.route_lengths
        };
        if let Some(n) = counts.get_mut(usize::from(pk.2)) {
            *n = n.saturating_add_signed(delta);
        }
    }
}

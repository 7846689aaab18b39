//! The writer: xlnsd's side. The only process that writes session slots and indexes.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::ShmError;
use super::index::{Index, InsertError};
use super::layout::Geometry;
use super::segment::Segment;
use super::{Counters, SlotId, session_index_keys, sum_counters};
use crate::session::SessionRecord;

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
    tombstones: [u64; 2],
    torn_on_attach: u32,
}

/// Which index.
#[derive(Debug, Clone, Copy)]
enum Which {
    Upstream = 0,
    V4 = 1,
}

impl Which {
    const fn name(self) -> &'static str {
        match self {
            Which::Upstream => "upstream",
            Which::V4 => "ipv4",
        }
    }
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
            tombstones: [0; 2],
            torn_on_attach: 0,
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
            tombstones: [0; 2],
            torn_on_attach: 0,
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
        w.seg
            .header()
            .writer_pid
            .store(std::process::id(), Ordering::Relaxed);
        w.publish_change();
        Ok(w)
    }

    fn index(&self, which: Which) -> Index<'_> {
        let h = self.seg.header();
        match which {
            Which::Upstream => Index {
                tables: [self.seg.upstream_table(0), self.seg.upstream_table(1)],
                flips: &h.upstream_flips,
                max_probe: h.max_probe,
            },
            Which::V4 => Index {
                tables: [self.seg.v4_table(0), self.seg.v4_table(1)],
                flips: &h.v4_flips,
                max_probe: h.max_probe,
            },
        }
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
        Ok((up, v4))
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
            let t = &mut self.tombstones[which as usize];
            *t = t.saturating_add_signed(delta);
            let cap = u64::from(self.seg.layout().index_capacity);
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
    /// `HAS_IPV4`). Readers find it only once it is complete.
    pub fn insert(&mut self, rec: &SessionRecord) -> Result<SlotId, ShmError> {
        let (up, v4) = self.check_keys(rec, None)?;
        let Some(slot) = self.free.pop_front() else {
            return Err(ShmError::Full {
                max_sessions: self.seg.layout().geometry.max_sessions,
            });
        };
        self.set_counter_base(slot);
        self.seg.write_slot(slot, rec);
        let indexed = self
            .index_insert(Which::Upstream, up, slot)
            .and_then(|()| match v4 {
                Some(k) => self.index_insert(Which::V4, k, slot).inspect_err(|_| {
                    let _ = self.index_remove(Which::Upstream, up, slot);
                }),
                None => Ok(()),
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

    /// Replaces the record of a session in place (same slot, same counters). When a key
    /// changes, the new key is indexed before the record is rewritten and the old key is
    /// unindexed after, so the session is findable under one of them throughout.
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
        self.seg.write_slot(slot.0, rec);
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

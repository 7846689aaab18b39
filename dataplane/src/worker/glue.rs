//! The fast path's traits over the shared-memory segment: [`Sessions`] for
//! [`shm::Reader`], and [`ShmStats`], a [`SessionStats`] writing this worker's counter
//! column plus a worker-private downstream Ns per slot.
//!
//! Drop reasons map one to one onto the segment's per-worker drop array:
//! `DropReason as usize` is the index ([`drop_index`]; every reason fits below
//! [`shm::DROP_REASONS`], asserted at compile time).
//!
//! Downstream lookups ([`Sessions::down_v4`], [`Sessions::down_v6`]) go to the
//! segment's IPv4, Framed-Route and IPv6 prefix indexes and copy the template straight
//! into the packet's headroom ([`Reader::lookup_down_v4`]). A slot's Ns restarts at 0
//! when the slot holds a new session (its record's epoch changed).

use core::sync::atomic::Ordering;

use crate::fastpath::{DropReason, Prefetch, SessionStats, Sessions};
use crate::session::{Downstream, SessionHead, SessionRecord, TEMPLATE_CAPACITY, UpstreamV4};
use crate::shm::{self, Reader, SlotId, WorkerCounters};

const _: () = assert!(DropReason::COUNT <= shm::DROP_REASONS);

/// The shared-memory drop-counter index of `reason`.
#[inline(always)]
pub const fn drop_index(reason: DropReason) -> usize {
    reason as usize
}

impl Sessions for Reader {
    #[inline(always)]
    fn by_upstream(&self, tunnel: u16, session: u16) -> Option<(u32, SessionHead)> {
        self.lookup_upstream_head(tunnel, session)
            .map(|(slot, head)| (slot.0, head))
    }

    #[inline]
    fn up_v4(&self, tunnel: u16, session: u16) -> Option<UpstreamV4> {
        self.lookup_up_v4(tunnel, session)
    }

    #[inline(always)]
    fn up_v4_first(&self, tunnel: u16, session: u16) -> Option<UpstreamV4> {
        self.lookup_up_v4_first(tunnel, session)
    }

    #[inline]
    fn record(&self, slot: u32, key: u32) -> Option<SessionRecord> {
        self.read_slot(SlotId(slot))
            .filter(|rec| key != 0 && rec.upstream_key() == key)
    }

    #[inline]
    fn by_v4(&self, dst: [u8; 4]) -> Option<(u32, SessionRecord)> {
        self.lookup_v4(dst)
            .or_else(|| self.lookup_route_v4(dst))
            .map(|(slot, rec)| (slot.0, rec))
    }

    #[inline]
    fn by_v6(&self, dst: [u8; 16]) -> Option<(u32, SessionRecord)> {
        self.lookup_v6(dst).map(|(slot, rec)| (slot.0, rec))
    }

    #[inline(always)]
    fn down_v4(&self, dst: [u8; 4], out: &mut [u8; TEMPLATE_CAPACITY]) -> Option<Downstream> {
        self.lookup_down_v4(dst, out)
    }

    #[inline(always)]
    fn down_v4_first(&self, dst: [u8; 4], out: &mut [u8; TEMPLATE_CAPACITY]) -> Option<Downstream> {
        self.lookup_down_v4_first(dst, out)
    }

    #[inline(always)]
    fn down_v6(&self, dst: [u8; 16], out: &mut [u8; TEMPLATE_CAPACITY]) -> Option<Downstream> {
        self.lookup_down_v6(dst, out)
    }

    #[inline(always)]
    fn prefetch_up(&self, tunnel: u16, session: u16, what: Prefetch) -> Option<u32> {
        Reader::prefetch_up(self, tunnel, session, what)
    }

    #[inline(always)]
    fn prefetch_down_v4(&self, dst: [u8; 4], what: Prefetch) -> Option<u32> {
        Reader::prefetch_down_v4(self, dst, what)
    }

    #[inline]
    fn source_in_routes_v4(&self, slot: u32, key: u32, src: [u8; 4]) -> bool {
        Reader::source_in_routes_v4(self, SlotId(slot), key, src)
    }

    #[inline]
    fn source_in_prefixes_v6(&self, slot: u32, key: u32, src: &[u8; 16]) -> bool {
        Reader::source_in_prefixes_v6(self, SlotId(slot), key, src)
    }
}

/// One worker's [`SessionStats`]: packet and byte counters in its shared-memory column,
/// downstream Ns in a private array (per slot: the Ns and the record epoch it counts
/// for, allocated once; a new epoch restarts the count at 0).
#[derive(Debug)]
pub struct ShmStats<'a> {
    counters: WorkerCounters<'a>,
    ns: Box<[(u32, u16)]>,
}

impl<'a> ShmStats<'a> {
    /// Over `counters`, with Ns for `slots` slots (the segment's `max_sessions`).
    pub fn new(counters: WorkerCounters<'a>, slots: u32) -> ShmStats<'a> {
        ShmStats {
            counters,
            ns: vec![(0, 0); slots as usize].into_boxed_slice(),
        }
    }

    /// Count a frame that left the fast path under `reason` in the segment.
    #[inline(always)]
    pub fn count_drop(&self, reason: DropReason) {
        self.counters.add_drop(drop_index(reason));
    }

    /// Count `n` frames dropped under `reason` at once (the kernel's drops, read from
    /// the sockets' statistics).
    #[inline]
    pub fn add_drops(&self, reason: DropReason, n: u64) {
        if let Some(c) = self.counters.drop_counters().get(drop_index(reason)) {
            // Relaxed load + store: this worker is the column's only writer.
            c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
        }
    }

    /// The worker's counter handle.
    pub fn counters(&self) -> &WorkerCounters<'a> {
        &self.counters
    }
}

impl SessionStats for ShmStats<'_> {
    #[inline(always)]
    fn upstream(&mut self, slot: u32, bytes: usize) {
        self.counters.add_upstream(SlotId(slot), bytes as u64);
    }

    #[inline(always)]
    fn downstream(&mut self, slot: u32, bytes: usize) {
        self.counters.add_downstream(SlotId(slot), bytes as u64);
    }

    #[inline(always)]
    fn prefetch(&self, slot: u32) {
        self.counters.prefetch(SlotId(slot));
        if let Some(ns) = self.ns.get(slot as usize) {
            crate::shm::prefetch_line(ns);
        }
    }

    #[inline(always)]
    fn next_ns(&mut self, slot: u32, epoch: u32) -> u16 {
        match self.ns.get_mut(slot as usize) {
            Some((owner, ns)) => {
                if *owner != epoch {
                    *owner = epoch;
                    *ns = 0;
                }
                let value = *ns;
                *ns = value.wrapping_add(1);
                value
            }
            None => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::session::flags;
    use crate::shm::{Geometry, Writer};

    #[test]
    fn reader_sessions_and_stats_reach_the_segment() {
        let path = std::env::temp_dir().join(format!("xlns-glue-test-{}", std::process::id()));
        let mut writer = Writer::create(
            &path,
            Geometry {
                max_sessions: 64,
                max_workers: 2,
            },
        )
        .unwrap();
        let mut rec = SessionRecord {
            local_tunnel: 7,
            local_session: 9,
            flags: flags::HAS_IPV4,
            subscriber_v4: [10, 0, 0, 5],
            ..SessionRecord::EMPTY
        };
        rec.mtu = 1500;
        let slot = writer.insert(&rec).unwrap();
        let reader = Reader::attach(&path).unwrap();

        assert_eq!(reader.by_upstream(7, 9).map(|(s, _)| s), Some(slot.0));
        assert_eq!(reader.by_upstream(7, 8), None);
        let stored = reader.record(slot.0, (7 << 16) | 9).unwrap();
        assert_ne!(stored.epoch, 0, "the writer gives every session an epoch");
        assert_eq!(SessionRecord { epoch: 0, ..stored }, rec);
        assert_eq!(reader.record(slot.0, (7 << 16) | 8), None);
        assert_eq!(reader.by_upstream(7, 9).map(|(_, h)| h), Some(rec.head()));
        assert_eq!(reader.by_v4([10, 0, 0, 5]).map(|(s, _)| s), Some(slot.0));
        assert_eq!(reader.by_v4([10, 0, 0, 6]), None);
        assert_eq!(reader.by_v6([0x20; 16]), None);

        let mut stats = ShmStats::new(reader.counters(1).unwrap(), 64);
        stats.upstream(slot.0, 100);
        stats.downstream(slot.0, 60);
        stats.downstream(slot.0, 40);
        assert_eq!(stats.next_ns(slot.0, 1), 0);
        assert_eq!(stats.next_ns(slot.0, 1), 1);
        assert_eq!(stats.next_ns(slot.0, 1), 2);
        // A new session in the slot starts again at 0.
        assert_eq!(stats.next_ns(slot.0, 2), 0);
        assert_eq!(stats.next_ns(slot.0, 2), 1);
        assert_eq!(stats.next_ns(1000, 1), 0);
        stats.count_drop(DropReason::TtlExpired);
        stats.count_drop(DropReason::TtlExpired);
        stats.add_drops(DropReason::XskRxRingFull, 40);
        stats.add_drops(DropReason::XskRxRingFull, 2);

        let c = writer.session_counters(slot).unwrap();
        assert_eq!(
            (c.up_packets, c.up_bytes, c.down_packets, c.down_bytes),
            (1, 100, 2, 100)
        );
        let drops = writer.drop_counters(1).unwrap();
        assert_eq!(
            drops[drop_index(DropReason::TtlExpired)].load(core::sync::atomic::Ordering::Relaxed),
            2
        );
        assert_eq!(
            drops[drop_index(DropReason::XskRxRingFull)]
                .load(core::sync::atomic::Ordering::Relaxed),
            42
        );
        drop(stats);
        drop(reader);
        let _ = std::fs::remove_file(&path);
    }
}

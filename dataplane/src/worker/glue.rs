//! The fast path's traits over the shared-memory segment: [`Sessions`] for
//! [`shm::Reader`], and [`ShmStats`], a [`SessionStats`] writing this worker's counter
//! column plus a worker-private downstream Ns per slot.
//!
//! Drop reasons map one to one onto the segment's per-worker drop array:
//! `DropReason as usize` is the index ([`drop_index`]; every reason fits below
//! [`shm::DROP_REASONS`], asserted at compile time).
//!
//! Limitations (issue #5): the segment has no IPv6 prefix index yet, so
//! [`Sessions::by_v6`] finds nothing and downstream IPv6 is dropped as
//! `no-session-for-destination`; a slot's Ns is not reset when xlnsd gives the slot to a
//! new session (the new session's first Ns continues the old count).

use crate::fastpath::{DropReason, SessionStats, Sessions};
use crate::session::{SessionHead, SessionRecord, TEMPLATE_CAPACITY};
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
    fn record(&self, slot: u32, key: u32) -> Option<SessionRecord> {
        self.read_slot(SlotId(slot))
            .filter(|rec| key != 0 && rec.upstream_key() == key)
    }

    #[inline(always)]
    fn by_v4(&self, dst: [u8; 4]) -> Option<(u32, SessionRecord)> {
        self.lookup_v4(dst).map(|(slot, rec)| (slot.0, rec))
    }

    #[inline]
    fn by_v6(&self, _dst: [u8; 16]) -> Option<(u32, SessionRecord)> {
        None
    }

    #[inline(always)]
    fn by_v4_split(
        &self,
        dst: [u8; 4],
        template: &mut [u8; TEMPLATE_CAPACITY],
    ) -> Option<(u32, SessionHead)> {
        self.lookup_v4_split(dst, template)
            .map(|(slot, head)| (slot.0, head))
    }

    #[inline]
    fn by_v6_split(
        &self,
        _dst: [u8; 16],
        _template: &mut [u8; TEMPLATE_CAPACITY],
    ) -> Option<(u32, SessionHead)> {
        None
    }
}

/// One worker's [`SessionStats`]: packet and byte counters in its shared-memory column,
/// downstream Ns in a private array (one `u16` per slot, allocated once).
#[derive(Debug)]
pub struct ShmStats<'a> {
    counters: WorkerCounters<'a>,
    ns: Box<[u16]>,
}

impl<'a> ShmStats<'a> {
    /// Over `counters`, with Ns for `slots` slots (the segment's `max_sessions`).
    pub fn new(counters: WorkerCounters<'a>, slots: u32) -> ShmStats<'a> {
        ShmStats {
            counters,
            ns: vec![0; slots as usize].into_boxed_slice(),
        }
    }

    /// Count a frame that left the fast path under `reason` in the segment.
    #[inline(always)]
    pub fn count_drop(&self, reason: DropReason) {
        self.counters.add_drop(drop_index(reason));
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
    fn next_ns(&mut self, slot: u32) -> u16 {
        match self.ns.get_mut(slot as usize) {
            Some(ns) => {
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
        assert_eq!(reader.record(slot.0, (7 << 16) | 9), Some(rec));
        assert_eq!(reader.record(slot.0, (7 << 16) | 8), None);
        assert_eq!(reader.by_upstream(7, 9).map(|(_, h)| h), Some(rec.head()));
        assert_eq!(reader.by_v4([10, 0, 0, 5]).map(|(s, _)| s), Some(slot.0));
        assert_eq!(reader.by_v4([10, 0, 0, 6]), None);
        assert_eq!(reader.by_v6([0x20; 16]), None);

        let mut stats = ShmStats::new(reader.counters(1).unwrap(), 64);
        stats.upstream(slot.0, 100);
        stats.downstream(slot.0, 60);
        stats.downstream(slot.0, 40);
        assert_eq!(stats.next_ns(slot.0), 0);
        assert_eq!(stats.next_ns(slot.0), 1);
        assert_eq!(stats.next_ns(1000), 0);
        stats.count_drop(DropReason::TtlExpired);
        stats.count_drop(DropReason::TtlExpired);

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
        drop(stats);
        drop(reader);
        let _ = std::fs::remove_file(&path);
    }
}

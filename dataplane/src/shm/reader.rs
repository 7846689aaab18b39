//! The reader: a data-plane worker's side. Looks sessions up and writes its own counters.

use core::cell::Cell;
use core::marker::PhantomData;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::path::Path;

use super::SlotId;
use super::error::ShmError;
use super::index::Index;
use super::layout::{Geometry, SlotCounters};
use super::segment::Segment;
use crate::session::{SessionHead, SessionRecord, TEMPLATE_CAPACITY, flags};

/// A read-mostly view of a segment, shared by every worker thread of xlns-dataplane.
#[derive(Debug)]
pub struct Reader {
    seg: Segment,
    /// Which workers' counter columns are claimed in this process.
    claimed: Box<[AtomicBool]>,
}

impl Reader {
    /// Maps the segment at `path`, refusing a different magic, ABI version or an
    /// inconsistent layout.
    pub fn attach(path: &Path) -> Result<Reader, ShmError> {
        let seg = Segment::attach(path)?;
        let claimed = (0..seg.layout().geometry.max_workers)
            .map(|_| AtomicBool::new(false))
            .collect();
        Ok(Reader { seg, claimed })
    }

    #[inline]
    fn upstream(&self) -> Index<'_> {
        let h = self.seg.header();
        Index {
            tables: [self.seg.upstream_table(0), self.seg.upstream_table(1)],
            flips: &h.upstream_flips,
            max_probe: h.max_probe,
        }
    }

    #[inline]
    fn v4(&self) -> Index<'_> {
        let h = self.seg.header();
        Index {
            tables: [self.seg.v4_table(0), self.seg.v4_table(1)],
            flips: &h.v4_flips,
            max_probe: h.max_probe,
        }
    }

    /// The session with local tunnel id `tunnel` and local session id `session`, copied out
    /// under its slot's sequence lock. Lock-free, allocation-free, syscall-free.
    #[inline]
    pub fn lookup_upstream(&self, tunnel: u16, session: u16) -> Option<(SlotId, SessionRecord)> {
        let key = (u32::from(tunnel) << 16) | u32::from(session);
        if tunnel == 0 || session == 0 {
            return None;
        }
        self.upstream().find(key, |slot| {
            let rec = self.seg.read_slot(slot)?;
            (rec.upstream_key() == key).then_some((SlotId(slot), rec))
        })
    }

    /// The head (everything but the template) of the session with local tunnel id `tunnel`
    /// and local session id `session`: as [`Reader::lookup_upstream`], copying 80 octets
    /// instead of the 180-octet record.
    #[inline(always)]
    pub fn lookup_upstream_head(&self, tunnel: u16, session: u16) -> Option<(SlotId, SessionHead)> {
        let key = (u32::from(tunnel) << 16) | u32::from(session);
        if tunnel == 0 || session == 0 {
            return None;
        }
        self.upstream().find(key, |slot| {
            let head = self.seg.read_slot_head(slot)?;
            (head.upstream_key() == key).then_some((SlotId(slot), head))
        })
    }

    /// The session whose subscriber IPv4 address is `addr`. Lock-free, allocation-free,
    /// syscall-free.
    #[inline(always)]
    pub fn lookup_v4(&self, addr: [u8; 4]) -> Option<(SlotId, SessionRecord)> {
        let key = u32::from_be_bytes(addr);
        if key == 0 {
            return None;
        }
        self.v4().find(key, |slot| {
            let rec = self.seg.read_slot(slot)?;
            (rec.has(flags::HAS_IPV4) && rec.subscriber_v4 == addr).then_some((SlotId(slot), rec))
        })
    }

    /// [`Reader::lookup_v4`], the record delivered as its head (returned) and its
    /// template (copied into `template`), from the same consistent read.
    #[inline(always)]
    pub fn lookup_v4_split(
        &self,
        addr: [u8; 4],
        template: &mut [u8; TEMPLATE_CAPACITY],
    ) -> Option<(SlotId, SessionHead)> {
        let key = u32::from_be_bytes(addr);
        if key == 0 {
            return None;
        }
        // `template` may be written for a slot that then fails the check; the caller
        // reads it only on `Some`, and the accepted slot's copy is the last written.
        self.v4().find(key, |slot| {
            let head = self.seg.read_slot_split(slot, template)?;
            (head.has(flags::HAS_IPV4) && head.subscriber_v4 == addr)
                .then_some((SlotId(slot), head))
        })
    }

    /// Slot `slot`'s record, copied under its sequence lock (`None` when out of range or
    /// busy); an unused slot reads as an all-zero record.
    pub fn read_slot(&self, slot: SlotId) -> Option<SessionRecord> {
        self.seg.read_slot(slot.0)
    }

    /// Claims worker `worker`'s counter columns for the calling thread. Only one handle
    /// per worker exists in a process at a time (the claim is released on drop); run one
    /// data plane per segment, so that no other process writes the column either.
    pub fn counters(&self, worker: u32) -> Result<WorkerCounters<'_>, ShmError> {
        let max_workers = self.seg.layout().geometry.max_workers;
        let (Some(column), Some(drops), Some(claim)) = (
            self.seg.counter_column(worker),
            self.seg.drop_counters(worker),
            self.claimed.get(worker as usize),
        ) else {
            return Err(ShmError::WorkerOutOfRange {
                worker,
                max_workers,
            });
        };
        // AcqRel: the claim is a tiny lock on the column; Acquire sees the previous
        // holder's last counter stores, Release publishes nothing but pairs with it.
        if claim
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return Err(ShmError::WorkerClaimed { worker });
        }
        Ok(WorkerCounters {
            worker,
            column,
            drops,
            claim,
            _not_sync: PhantomData,
        })
    }

    /// Worker `worker`'s drop-reason counters, for reading.
    pub fn drop_counters(&self, worker: u32) -> Result<&[AtomicU64], ShmError> {
        self.seg
            .drop_counters(worker)
            .ok_or(ShmError::WorkerOutOfRange {
                worker,
                max_workers: self.seg.layout().geometry.max_workers,
            })
    }

    /// The writer's generation counter (bumped on every change).
    pub fn generation(&self) -> u64 {
        // Acquire: pairs with the writer's Release bump, so changes up to this generation
        // are visible to this thread's later loads.
        self.seg.header().generation.load(Ordering::Acquire)
    }

    /// The writer's process id.
    pub fn writer_pid(&self) -> u32 {
        // Relaxed: an independent value.
        self.seg.header().writer_pid.load(Ordering::Relaxed)
    }

    /// The writer's last heartbeat (CLOCK_MONOTONIC nanoseconds).
    pub fn heartbeat_ns(&self) -> u64 {
        // Relaxed: an independent value.
        self.seg.header().heartbeat_ns.load(Ordering::Relaxed)
    }

    /// Number of sessions, as the writer last published it.
    pub fn len(&self) -> usize {
        // Relaxed: a statistic.
        self.seg.header().sessions.load(Ordering::Relaxed) as usize
    }

    /// Whether the writer published no session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The segment's geometry.
    pub fn geometry(&self) -> Geometry {
        self.seg.layout().geometry
    }

    /// The mapped segment.
    pub fn segment(&self) -> &Segment {
        &self.seg
    }
}

/// One worker's counters: its column of per-slot counters and its drop-reason array.
/// The only writer of both; `Send` (move it to the worker thread) but not `Sync`.
#[derive(Debug)]
pub struct WorkerCounters<'a> {
    worker: u32,
    column: &'a [SlotCounters],
    drops: &'a [AtomicU64],
    claim: &'a AtomicBool,
    _not_sync: PhantomData<Cell<()>>,
}

/// Adds to a counter this thread alone writes: a load and a store, no locked instruction.
#[inline(always)]
fn bump(c: &AtomicU64, by: u64) {
    // Relaxed: single writer (this worker); readers (xlnsd) only need each value to be
    // untorn, which any atomic access guarantees, and tolerate a slightly stale sum.
    c.store(
        c.load(Ordering::Relaxed).wrapping_add(by),
        Ordering::Relaxed,
    );
}

impl WorkerCounters<'_> {
    /// The worker index.
    pub fn worker(&self) -> u32 {
        self.worker
    }

    /// Counts one upstream packet of `bytes` octets for `slot` (ignored if out of range).
    #[inline]
    pub fn add_upstream(&self, slot: SlotId, bytes: u64) {
        if let Some(c) = self.column.get(slot.0 as usize) {
            bump(&c.up_packets, 1);
            bump(&c.up_bytes, bytes);
        }
    }

    /// Counts one downstream packet of `bytes` octets for `slot` (ignored if out of range).
    #[inline]
    pub fn add_downstream(&self, slot: SlotId, bytes: u64) {
        if let Some(c) = self.column.get(slot.0 as usize) {
            bump(&c.down_packets, 1);
            bump(&c.down_bytes, bytes);
        }
    }

    /// Counts one drop under `reason` (an index below [`super::DROP_REASONS`]; ignored
    /// otherwise).
    #[inline]
    pub fn add_drop(&self, reason: usize) {
        if let Some(c) = self.drops.get(reason) {
            bump(c, 1);
        }
    }

    /// This worker's drop-reason counters.
    pub fn drop_counters(&self) -> &[AtomicU64] {
        self.drops
    }
}

impl Drop for WorkerCounters<'_> {
    fn drop(&mut self) {
        // Release: the next holder (Acquire in `counters`) continues from our last values.
        self.claim.store(false, Ordering::Release);
    }
}

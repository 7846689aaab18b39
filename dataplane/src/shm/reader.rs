//! The reader: a data-plane worker's side. Looks sessions up and writes its own counters.

use core::cell::Cell;
use core::marker::PhantomData;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::path::Path;

use super::error::ShmError;
use super::layout::{Geometry, RECORD_WORDS, SlotCounters};
use super::segment::Segment;
use super::{SlotId, Which, route_key, v6_key};
use crate::fastpath::Prefetch;
use crate::session::{
    Downstream, SessionHead, SessionRecord, TEMPLATE_CAPACITY, UpstreamV4, flags, in_prefix64,
    mask_v4, mask_v6_upper, v6_upper,
};

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

    /// The session with local tunnel id `tunnel` and local session id `session`, copied out
    /// under its slot's sequence lock. Lock-free, allocation-free, syscall-free.
    #[inline]
    pub fn lookup_upstream(&self, tunnel: u16, session: u16) -> Option<(SlotId, SessionRecord)> {
        let key = (u32::from(tunnel) << 16) | u32::from(session);
        if tunnel == 0 || session == 0 {
            return None;
        }
        self.seg.index(Which::Upstream).find(key, |slot| {
            let rec = self.seg.read_slot(slot)?;
            (rec.upstream_key() == key).then_some((SlotId(slot), rec))
        })
    }

    /// The head (everything but the template) of the session with local tunnel id `tunnel`
    /// and local session id `session`: as [`Reader::lookup_upstream`], copying 80 octets
    /// instead of the 248-octet record.
    #[inline(always)]
    pub fn lookup_upstream_head(&self, tunnel: u16, session: u16) -> Option<(SlotId, SessionHead)> {
        let key = (u32::from(tunnel) << 16) | u32::from(session);
        if tunnel == 0 || session == 0 {
            return None;
        }
        let index = self.seg.index(Which::Upstream);
        if let Some(slot) = index.first(key) {
            if let Some(head) = self.seg.read_slot_head(slot) {
                if head.upstream_key() == key {
                    return Some((SlotId(slot), head));
                }
            }
        }
        self.upstream_head_slow(key)
    }

    /// [`Reader::lookup_upstream_head`] beyond its first probe (further buckets, a
    /// concurrent rebuild). Out of line.
    #[inline(never)]
    fn upstream_head_slow(&self, key: u32) -> Option<(SlotId, SessionHead)> {
        self.seg.index(Which::Upstream).find(key, |slot| {
            let head = self.seg.read_slot_head(slot)?;
            (head.upstream_key() == key).then_some((SlotId(slot), head))
        })
    }

    /// The upstream common case's lookup: what [`UpstreamV4`] holds of the session with
    /// local tunnel id `tunnel` and local session id `session`, read from five slot
    /// words under the slot's sequence lock (instead of the ten of
    /// [`Reader::lookup_upstream_head`]).
    #[inline]
    pub fn lookup_up_v4(&self, tunnel: u16, session: u16) -> Option<UpstreamV4> {
        let key = (u32::from(tunnel) << 16) | u32::from(session);
        if tunnel == 0 || session == 0 {
            return None;
        }
        self.seg.index(Which::Upstream).find(key, |slot| {
            let up = UpstreamV4::from_words(slot, self.seg.read_up_v4(slot)?);
            (up.key == key).then_some(up)
        })
    }

    /// [`Reader::lookup_up_v4`]'s first probe alone: the first bucket holding the key in
    /// the active table, validated. `None` may be a miss of a present session (further
    /// buckets, a concurrent rebuild): the caller then asks [`Reader::lookup_up_v4`].
    /// Small and closure-free, so the hot path keeps the result in registers.
    #[inline(always)]
    pub fn lookup_up_v4_first(&self, tunnel: u16, session: u16) -> Option<UpstreamV4> {
        let key = (u32::from(tunnel) << 16) | u32::from(session);
        let slot = self.seg.index(Which::Upstream).first(key)?;
        let up = UpstreamV4::from_words(slot, self.seg.read_up_v4(slot)?);
        (key != 0 && up.key == key).then_some(up)
    }

    /// Prefetch hint for the upstream lookup of (`tunnel`, `session`):
    /// [`Prefetch::Bucket`] asks for its index bucket, [`Prefetch::Slot`] reads that
    /// bucket (cached by then) and asks for the slot's first two lines (what
    /// [`Reader::lookup_up_v4_first`] reads), returning the slot. Nothing is validated:
    /// a stale bucket only prefetches the wrong lines.
    #[inline(always)]
    pub fn prefetch_up(&self, tunnel: u16, session: u16, what: Prefetch) -> Option<u32> {
        let key = (u32::from(tunnel) << 16) | u32::from(session);
        let index = self.seg.index(Which::Upstream);
        match what {
            Prefetch::Bucket => {
                index.prefetch(key);
                None
            }
            Prefetch::Slot => {
                let slot = index.first(key)?;
                self.seg.prefetch_slot(slot, 2);
                Some(slot)
            }
        }
    }

    /// [`Reader::prefetch_up`] for the downstream lookup of `addr`: the slot's first four
    /// lines (flags, MTU, addresses, template layout, the template).
    #[inline(always)]
    pub fn prefetch_down_v4(&self, addr: [u8; 4], what: Prefetch) -> Option<u32> {
        let key = u32::from_be_bytes(addr);
        let index = self.seg.index(Which::V4);
        match what {
            Prefetch::Bucket => {
                index.prefetch(key);
                None
            }
            Prefetch::Slot => {
                let slot = index.first(key)?;
                self.seg.prefetch_slot(slot, 4);
                Some(slot)
            }
        }
    }

    /// The session whose subscriber IPv4 address is `addr` (exact). Lock-free,
    /// allocation-free, syscall-free.
    #[inline(always)]
    pub fn lookup_v4(&self, addr: [u8; 4]) -> Option<(SlotId, SessionRecord)> {
        let key = u32::from_be_bytes(addr);
        if key == 0 {
            return None;
        }
        self.seg.index(Which::V4).find(key, |slot| {
            let rec = self.seg.read_slot(slot)?;
            (rec.has(flags::HAS_IPV4) && rec.subscriber_v4 == addr).then_some((SlotId(slot), rec))
        })
    }

    /// The session a Framed-Route routes `addr` into (longest prefix).
    pub fn lookup_route_v4(&self, addr: [u8; 4]) -> Option<(SlotId, SessionRecord)> {
        let a = u32::from_be_bytes(addr);
        let mut lengths = self.route_lengths();
        while lengths != 0 {
            let len = (63 - lengths.leading_zeros()) as u8;
            lengths &= !(1 << len);
            let prefix = mask_v4(a, len);
            let want = (prefix.to_be_bytes(), len);
            let hit = self
                .seg
                .index(Which::Route)
                .find(route_key(prefix, len), |slot| {
                    let rec = self.seg.read_slot(slot)?;
                    (rec.upstream_key() != 0 && rec.routes_v4().any(|r| r == want))
                        .then_some((SlotId(slot), rec))
                });
            if hit.is_some() {
                return hit;
            }
        }
        None
    }

    /// The session whose IPv6 prefix (its own or a further one) holds `addr` (longest
    /// prefix).
    pub fn lookup_v6(&self, addr: [u8; 16]) -> Option<(SlotId, SessionRecord)> {
        let upper = v6_upper(&addr);
        let mut lengths = self.v6_lengths();
        while lengths != 0 {
            let bit = 63 - lengths.leading_zeros();
            lengths &= !(1 << bit);
            let len = bit as u8 + 1;
            let prefix = mask_v6_upper(upper, len);
            let hit = self.seg.index(Which::V6).find(v6_key(prefix, len), |slot| {
                let rec = self.seg.read_slot(slot)?;
                (rec.upstream_key() != 0 && rec.all_prefixes_v6().any(|p| p == (prefix, len)))
                    .then_some((SlotId(slot), rec))
            });
            if hit.is_some() {
                return hit;
            }
        }
        None
    }

    /// The downstream fast path's IPv4 lookup: the session whose subscriber address is
    /// `addr`, else the one a Framed-Route routes `addr` into (longest prefix). Its
    /// template is copied straight into `out` (the 96 octets in front of the packet; see
    /// [`Segment::read_down`]); MTU, epoch and template layout are returned. `out` is
    /// meaningful only on `Some`.
    #[inline(always)]
    pub fn lookup_down_v4(
        &self,
        addr: [u8; 4],
        out: &mut [u8; TEMPLATE_CAPACITY],
    ) -> Option<Downstream> {
        let key = u32::from_be_bytes(addr);
        if key == 0 {
            return None;
        }
        if let Some(slot) = self.seg.index(Which::V4).first(key) {
            if let Some(d) = self.seg.read_down(slot, out, |w| holds_v4(w, addr)) {
                return Some(d);
            }
        }
        self.down_v4_slow(addr, out)
    }

    /// [`Reader::lookup_down_v4`]'s first probe alone: the subscriber address's first
    /// bucket in the active table, validated. `None` may be a miss of a present session
    /// (further buckets, a concurrent rebuild, a Framed-Route): the caller then asks
    /// [`Reader::lookup_down_v4`]. `out` is meaningful only on `Some`.
    #[inline(always)]
    pub fn lookup_down_v4_first(
        &self,
        addr: [u8; 4],
        out: &mut [u8; TEMPLATE_CAPACITY],
    ) -> Option<Downstream> {
        let slot = self.seg.index(Which::V4).first(u32::from_be_bytes(addr))?;
        self.seg.read_down(slot, out, |w| holds_v4(w, addr))
    }

    /// [`Reader::lookup_down_v4`] beyond its first probe: the full index walk (further
    /// buckets, a concurrent rebuild), then the Framed-Routes. Out of line.
    #[inline(never)]
    fn down_v4_slow(&self, addr: [u8; 4], out: &mut [u8; TEMPLATE_CAPACITY]) -> Option<Downstream> {
        let key = u32::from_be_bytes(addr);
        let exact = self.seg.index(Which::V4).find(key, |slot| {
            self.seg.read_down(slot, out, |w| holds_v4(w, addr))
        });
        match exact {
            Some(found) => Some(found),
            None => self.down_route_v4(key, out),
        }
    }

    /// [`Reader::lookup_down_v4`]'s Framed-Route half.
    fn down_route_v4(&self, addr: u32, out: &mut [u8; TEMPLATE_CAPACITY]) -> Option<Downstream> {
        let mut lengths = self.route_lengths();
        while lengths != 0 {
            let len = (63 - lengths.leading_zeros()) as u8;
            lengths &= !(1 << len);
            let prefix = mask_v4(addr, len);
            let hit = self
                .seg
                .index(Which::Route)
                .find(route_key(prefix, len), |slot| {
                    self.seg
                        .read_down(slot, out, |w| words_hold_route(w, prefix, len))
                });
            if hit.is_some() {
                return hit;
            }
        }
        None
    }

    /// The downstream fast path's IPv6 lookup: the session whose prefix (its own or a
    /// further one) holds `addr`, longest prefix first; as [`Reader::lookup_down_v4`].
    #[inline(always)]
    pub fn lookup_down_v6(
        &self,
        addr: [u8; 16],
        out: &mut [u8; TEMPLATE_CAPACITY],
    ) -> Option<Downstream> {
        let upper = v6_upper(&addr);
        let mut lengths = self.v6_lengths();
        while lengths != 0 {
            let bit = 63 - lengths.leading_zeros();
            lengths &= !(1 << bit);
            let len = bit as u8 + 1;
            let prefix = mask_v6_upper(upper, len);
            let hit = self.seg.index(Which::V6).find(v6_key(prefix, len), |slot| {
                self.seg
                    .read_down(slot, out, |w| words_hold_prefix_v6(w, prefix, len))
            });
            if hit.is_some() {
                return hit;
            }
        }
        None
    }

    /// Whether the session in `slot` (upstream key `key`) has a Framed-Route holding
    /// `addr`: the upstream source check for traffic from the routed network, reading
    /// only the slot's route words under its sequence lock.
    pub fn source_in_routes_v4(&self, slot: SlotId, key: u32, addr: [u8; 4]) -> bool {
        let a = u32::from_be_bytes(addr);
        self.seg
            .read_with(slot.0, |w| {
                words_key(w) == key
                    && words_routes(w).any(|(prefix, len)| mask_v4(a, len) == prefix)
            })
            .unwrap_or(false)
    }

    /// Whether the session in `slot` (upstream key `key`) has a further IPv6 prefix
    /// holding `addr`, as [`Reader::source_in_routes_v4`].
    pub fn source_in_prefixes_v6(&self, slot: SlotId, key: u32, addr: &[u8; 16]) -> bool {
        let upper = v6_upper(addr);
        self.seg
            .read_with(slot.0, |w| {
                words_key(w) == key
                    && words_prefixes_v6(w).any(|(prefix, len)| in_prefix64(upper, prefix, len))
            })
            .unwrap_or(false)
    }

    /// Bit `len` set: a Framed-Route of that length is indexed.
    #[inline(always)]
    fn route_lengths(&self) -> u64 {
        // Acquire: pairs with the writer's Release store that sets a length's bit before
        // it indexes the first entry of that length.
        self.seg.header().route_lengths.load(Ordering::Acquire)
    }

    /// Bit `len - 1` set: an IPv6 prefix of that length is indexed.
    #[inline(always)]
    fn v6_lengths(&self) -> u64 {
        // Acquire: as in `route_lengths`.
        self.seg.header().v6_lengths.load(Ordering::Acquire)
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
    /// Prefetches `slot`'s counters (a hint; nothing when out of range).
    #[inline(always)]
    pub fn prefetch(&self, slot: SlotId) {
        if let Some(c) = self.column.get(slot.0 as usize) {
            super::segment::prefetch_line(c);
        }
    }

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

/// Word `i` of a slot's record as its octets (Relaxed: only called inside a sequence-locked
/// read, whose check covers it).
#[inline(always)]
fn octets(w: &[AtomicU64; RECORD_WORDS], i: usize) -> [u8; 8] {
    match w.get(i) {
        Some(a) => a.load(Ordering::Relaxed).to_ne_bytes(),
        None => [0; 8],
    }
}

/// Record octets the validations below read (asserted against the record's layout).
const ROUTES_V4_WORD: usize = core::mem::offset_of!(SessionRecord, routes_v4) / 8;
const ROUTES_V4_LEN_WORD: usize = core::mem::offset_of!(SessionRecord, routes_v4_len) / 8;
const PREFIXES_V6_WORD: usize = core::mem::offset_of!(SessionRecord, prefixes_v6) / 8;
const COUNTS_WORD: usize = core::mem::offset_of!(SessionRecord, prefixes_v6_len) / 8;

const _: () = {
    use crate::session::{MAX_PREFIXES_V6, MAX_ROUTES_V4};
    use core::mem::offset_of;
    assert!(offset_of!(SessionRecord, routes_v4) == ROUTES_V4_WORD * 8);
    assert!(offset_of!(SessionRecord, routes_v4_len) == ROUTES_V4_LEN_WORD * 8);
    assert!(MAX_ROUTES_V4 == 8 && MAX_PREFIXES_V6 == 2);
    assert!(offset_of!(SessionRecord, prefixes_v6) == PREFIXES_V6_WORD * 8);
    assert!(offset_of!(SessionRecord, prefixes_v6_len) == COUNTS_WORD * 8);
    assert!(offset_of!(SessionRecord, routes_v4_count) == COUNTS_WORD * 8 + 2);
    assert!(offset_of!(SessionRecord, prefixes_v6_count) == COUNTS_WORD * 8 + 3);
    assert!(offset_of!(SessionRecord, subscriber_v6_prefix) == 60);
    assert!(offset_of!(SessionRecord, subscriber_v6_len) == 76);
};

/// Whether the record in `w` is a session with subscriber address `addr`.
#[inline(always)]
fn holds_v4(w: &[AtomicU64; RECORD_WORDS], addr: [u8; 4]) -> bool {
    let w1 = octets(w, 1);
    let w7 = octets(w, 7);
    // Record octets 8..12 (flags) and 56..60 (subscriber_v4).
    u32::from_ne_bytes([w1[0], w1[1], w1[2], w1[3]]) & flags::HAS_IPV4 != 0
        && [w7[0], w7[1], w7[2], w7[3]] == addr
}

/// The upstream key of the record in `w` (0: no session).
#[inline]
fn words_key(w: &[AtomicU64; RECORD_WORDS]) -> u32 {
    let w0 = octets(w, 0);
    // Record octets 0..2 (local_tunnel) and 2..4 (local_session), native order.
    (u32::from(u16::from_ne_bytes([w0[0], w0[1]])) << 16)
        | u32::from(u16::from_ne_bytes([w0[2], w0[3]]))
}

/// The Framed-Routes of the record in `w`: `(prefix, len)`.
#[inline]
fn words_routes(w: &[AtomicU64; RECORD_WORDS]) -> impl Iterator<Item = (u32, u8)> + '_ {
    let counts = octets(w, COUNTS_WORD);
    let lens = octets(w, ROUTES_V4_LEN_WORD);
    let n = usize::from(counts[2]).min(lens.len());
    (0..n).map(move |i| {
        let word = octets(w, ROUTES_V4_WORD + i / 2);
        let at = (i % 2) * 4;
        (
            u32::from_be_bytes([word[at], word[at + 1], word[at + 2], word[at + 3]]),
            lens[i],
        )
    })
}

/// The further IPv6 prefixes of the record in `w`: `(upper 64 bits, len)`.
#[inline]
fn words_prefixes_v6(w: &[AtomicU64; RECORD_WORDS]) -> impl Iterator<Item = (u64, u8)> + '_ {
    let counts = octets(w, COUNTS_WORD);
    let n = usize::from(counts[3]).min(2);
    (0..n).map(move |i| {
        (
            u64::from_be_bytes(octets(w, PREFIXES_V6_WORD + i)),
            counts[i],
        )
    })
}

/// Whether the record in `w` is a session carrying the Framed-Route `prefix/len`.
#[inline]
fn words_hold_route(w: &[AtomicU64; RECORD_WORDS], prefix: u32, len: u8) -> bool {
    words_key(w) != 0 && words_routes(w).any(|r| r == (prefix, len))
}

/// Whether the record in `w` is a session holding the IPv6 prefix `prefix/len` (upper 64
/// bits): its own (`HAS_IPV6`) or a further one.
#[inline]
fn words_hold_prefix_v6(w: &[AtomicU64; RECORD_WORDS], prefix: u64, len: u8) -> bool {
    let w1 = octets(w, 1);
    let w7 = octets(w, 7);
    let w8 = octets(w, 8);
    let w9 = octets(w, 9);
    let flags_word = u32::from_ne_bytes([w1[0], w1[1], w1[2], w1[3]]);
    // Record octets 60..68: the prefix's upper 64 bits; 76: its length.
    let own = u64::from_be_bytes([w7[4], w7[5], w7[6], w7[7], w8[0], w8[1], w8[2], w8[3]]);
    if flags_word & flags::HAS_IPV6 != 0 && w9[4] == len && mask_v6_upper(own, len) == prefix {
        return true;
    }
    words_key(w) != 0 && words_prefixes_v6(w).any(|p| p == (prefix, len))
}

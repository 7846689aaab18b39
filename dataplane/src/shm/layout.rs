//! The segment's layout: the header, the session slot, the counter cell, and the
//! computation of every table's offset from the geometry.
//!
//! Both processes compute the layout with [`Layout::new`]; a reader compares what it
//! computes with what the header says and refuses to attach on any difference
//! (ARCHITECTURE.md §4). Sizes and offsets of everything the other process reads are
//! asserted at compile time.

use core::mem::{offset_of, size_of};
use core::sync::atomic::{AtomicU32, AtomicU64};

use crate::session::SessionRecord;

/// `b"XLNSSHM1"` as a little-endian `u64`: the first eight octets of every segment.
pub const MAGIC: u64 = u64::from_le_bytes(*b"XLNSSHM1");

/// The ABI version. Bump it on any change to this file or to [`SessionRecord`].
pub const ABI_VERSION: u32 = 2;

/// Per-worker drop-reason counters (the fast path's reason enum must fit).
pub const DROP_REASONS: usize = 64;

/// The longest probe sequence a reader walks in an index before it gives up; the writer
/// never places an entry further than this from its home bucket.
pub const MAX_PROBE: u32 = 256;

/// Tables start on page boundaries.
pub const PAGE: u64 = 4096;

/// Words of a slot's record storage: the record (248 octets) rounded up to 8.
pub const RECORD_WORDS: usize = size_of::<SessionRecord>().div_ceil(8);

/// One `(offset, size)` pair, in octets from the start of the segment.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Region {
    /// Offset from the start of the segment.
    pub offset: u64,
    /// Size in octets.
    pub size: u64,
}

/// The segment header. The first cache lines are written once at creation (before the
/// file is renamed into place) and only read afterwards; the atomics in the last lines
/// are written by the writer at run time.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct Header {
    /// [`MAGIC`].
    pub magic: AtomicU64,
    /// [`ABI_VERSION`].
    pub abi_version: u32,
    /// `size_of::<Header>()`.
    pub header_size: u32,
    /// Size of the whole segment (the file's length).
    pub segment_size: u64,
    /// Geometry: number of session slots.
    pub max_sessions: u32,
    /// Geometry: number of worker counter columns.
    pub max_workers: u32,
    /// Buckets per index table (a power of two, at least twice `max_sessions`).
    pub index_capacity: u32,
    /// [`MAX_PROBE`].
    pub max_probe: u32,
    /// [`DROP_REASONS`].
    pub drop_reasons: u32,
    /// `size_of::<Slot>()`.
    pub slot_size: u32,
    /// `size_of::<SessionRecord>()`.
    pub record_size: u32,
    /// `size_of::<SlotCounters>()`.
    pub counters_size: u32,
    /// Distance between two workers' counter columns.
    pub counters_worker_stride: u64,
    /// Distance between two workers' drop-reason arrays.
    pub drops_worker_stride: u64,
    /// `max_sessions` [`Slot`]s.
    pub slots: Region,
    /// Two tables of `index_capacity` `AtomicU64` buckets: upstream key -> slot.
    pub upstream_index: Region,
    /// Two tables of `index_capacity` `AtomicU64` buckets: IPv4 address -> slot.
    pub v4_index: Region,
    /// `max_workers` columns of `max_sessions` [`SlotCounters`].
    pub counters: Region,
    /// `max_sessions` [`SlotCounters`]: each slot's counter sum when its session was
    /// inserted (written by the writer only).
    pub counter_base: Region,
    /// `max_workers` arrays of [`DROP_REASONS`] `AtomicU64`.
    pub drops: Region,
    /// Two tables of `2 * index_capacity` `AtomicU64` buckets: IPv6 prefix (hash of its
    /// upper 64 bits and length) -> slot.
    pub v6_index: Region,
    /// Two tables of `index_capacity` `AtomicU64` buckets: Framed-Route IPv4 prefix (hash
    /// of prefix and length) -> slot.
    pub route_index: Region,
    /// Zero.
    pub _reserved0: [u8; 56],
    /// Which upstream index table is active (`& 1`), bumped on every rebuild. On its own
    /// cache line: every lookup reads it, and the writer's per-change counters below would
    /// otherwise invalidate it.
    pub upstream_flips: AtomicU64,
    /// The same for the IPv4 index.
    pub v4_flips: AtomicU64,
    /// The same for the IPv6 prefix index.
    pub v6_flips: AtomicU64,
    /// The same for the IPv4 route index.
    pub route_flips: AtomicU64,
    /// Bit `len - 1` set: some indexed IPv6 prefix is `len` (1 ..= 64) bits long. Readers
    /// probe the lengths present, longest first.
    pub v6_lengths: AtomicU64,
    /// Bit `len` set: some indexed Framed-Route is `len` (0 ..= 32) bits long.
    pub route_lengths: AtomicU64,
    /// Zero.
    pub _reserved1: [u8; 16],
    /// Bumped by the writer after every insert, update and remove.
    pub generation: AtomicU64,
    /// The writer's process id.
    pub writer_pid: AtomicU32,
    /// Zero.
    pub _pad0: u32,
    /// The writer's last heartbeat (CLOCK_MONOTONIC, nanoseconds).
    pub heartbeat_ns: AtomicU64,
    /// Number of sessions in the segment.
    pub sessions: AtomicU64,
    /// Zero.
    pub _reserved2: [u8; 32],
}

const _: () = {
    assert!(size_of::<Region>() == 16);
    assert!(size_of::<Header>() == 384);
    assert!(offset_of!(Header, magic) == 0);
    assert!(offset_of!(Header, abi_version) == 8);
    assert!(offset_of!(Header, header_size) == 12);
    assert!(offset_of!(Header, segment_size) == 16);
    assert!(offset_of!(Header, max_sessions) == 24);
    assert!(offset_of!(Header, max_workers) == 28);
    assert!(offset_of!(Header, index_capacity) == 32);
    assert!(offset_of!(Header, max_probe) == 36);
    assert!(offset_of!(Header, drop_reasons) == 40);
    assert!(offset_of!(Header, slot_size) == 44);
    assert!(offset_of!(Header, record_size) == 48);
    assert!(offset_of!(Header, counters_size) == 52);
    assert!(offset_of!(Header, counters_worker_stride) == 56);
    assert!(offset_of!(Header, drops_worker_stride) == 64);
    assert!(offset_of!(Header, slots) == 72);
    assert!(offset_of!(Header, upstream_index) == 88);
    assert!(offset_of!(Header, v4_index) == 104);
    assert!(offset_of!(Header, counters) == 120);
    assert!(offset_of!(Header, counter_base) == 136);
    assert!(offset_of!(Header, drops) == 152);
    assert!(offset_of!(Header, v6_index) == 168);
    assert!(offset_of!(Header, route_index) == 184);
    assert!(offset_of!(Header, upstream_flips) == 256);
    assert!(offset_of!(Header, v4_flips) == 264);
    assert!(offset_of!(Header, v6_flips) == 272);
    assert!(offset_of!(Header, route_flips) == 280);
    assert!(offset_of!(Header, v6_lengths) == 288);
    assert!(offset_of!(Header, route_lengths) == 296);
    assert!(offset_of!(Header, generation) == 320);
    assert!(offset_of!(Header, writer_pid) == 328);
    assert!(offset_of!(Header, heartbeat_ns) == 336);
    assert!(offset_of!(Header, sessions) == 344);
};

/// One session slot: a sequence counter and the record, stored as words so both sides
/// copy it with atomic (tear-free per word) accesses. Even `seq`: stable; odd: the writer
/// is writing. A slot is in use when its record's upstream key is non-zero.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct Slot {
    /// The sequence lock.
    pub seq: AtomicU64,
    /// The [`SessionRecord`]'s octets, zero-padded to whole words.
    pub words: [AtomicU64; RECORD_WORDS],
}

const _: () = {
    assert!(RECORD_WORDS == 31);
    assert!(size_of::<SessionRecord>() == 248);
    assert!(size_of::<Slot>() == 256);
    assert!(offset_of!(Slot, seq) == 0);
    assert!(offset_of!(Slot, words) == 8);
};

/// One session's counters in one worker's column. Written only by that worker.
#[repr(C)]
#[derive(Debug, Default)]
pub struct SlotCounters {
    /// Upstream (access -> core) packets.
    pub up_packets: AtomicU64,
    /// Upstream octets (inner IP packet lengths).
    pub up_bytes: AtomicU64,
    /// Downstream (core -> access) packets.
    pub down_packets: AtomicU64,
    /// Downstream octets (inner IP packet lengths).
    pub down_bytes: AtomicU64,
}

const _: () = {
    assert!(size_of::<SlotCounters>() == 32);
    assert!(offset_of!(SlotCounters, up_packets) == 0);
    assert!(offset_of!(SlotCounters, up_bytes) == 8);
    assert!(offset_of!(SlotCounters, down_packets) == 16);
    assert!(offset_of!(SlotCounters, down_bytes) == 24);
};

/// How many sessions and workers a segment holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Session slots (1 ..= [`Geometry::MAX_SESSIONS`]).
    pub max_sessions: u32,
    /// Worker counter columns (1 ..= [`Geometry::MAX_WORKERS`]).
    pub max_workers: u32,
}

impl Geometry {
    /// Upper bound on `max_sessions` (keeps every index capacity a `u32`).
    pub const MAX_SESSIONS: u32 = 1 << 30;
    /// Upper bound on `max_workers`.
    pub const MAX_WORKERS: u32 = 1024;
}

/// Every offset and size, computed from a [`Geometry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The geometry it was computed from.
    pub geometry: Geometry,
    /// Buckets per index table.
    pub index_capacity: u32,
    /// See [`Header::counters_worker_stride`].
    pub counters_worker_stride: u64,
    /// See [`Header::drops_worker_stride`].
    pub drops_worker_stride: u64,
    /// See [`Header::slots`].
    pub slots: Region,
    /// See [`Header::upstream_index`].
    pub upstream_index: Region,
    /// See [`Header::v4_index`].
    pub v4_index: Region,
    /// See [`Header::counters`].
    pub counters: Region,
    /// See [`Header::counter_base`].
    pub counter_base: Region,
    /// See [`Header::drops`].
    pub drops: Region,
    /// See [`Header::v6_index`].
    pub v6_index: Region,
    /// See [`Header::route_index`].
    pub route_index: Region,
    /// Total size.
    pub segment_size: u64,
}

const fn align_up(v: u64, a: u64) -> u64 {
    v.div_ceil(a) * a
}

impl Layout {
    /// The layout for `g`, or `None` when `g` is out of range.
    pub fn new(g: Geometry) -> Option<Layout> {
        if g.max_sessions == 0
            || g.max_sessions > Geometry::MAX_SESSIONS
            || g.max_workers == 0
            || g.max_workers > Geometry::MAX_WORKERS
        {
            return None;
        }
        let sessions = u64::from(g.max_sessions);
        let workers = u64::from(g.max_workers);
        let index_capacity = (2 * sessions).next_power_of_two().max(16);
        let mut at = align_up(size_of::<Header>() as u64, PAGE);
        let mut region = |size: u64| {
            let r = Region { offset: at, size };
            at = align_up(at + size, PAGE);
            r
        };
        let slots = region(sessions * size_of::<Slot>() as u64);
        let upstream_index = region(2 * index_capacity * 8);
        let v4_index = region(2 * index_capacity * 8);
        // Page-aligned columns: no two workers ever write the same cache line.
        let counters_worker_stride = align_up(sessions * size_of::<SlotCounters>() as u64, PAGE);
        let counters = region(workers * counters_worker_stride);
        let counter_base = region(sessions * size_of::<SlotCounters>() as u64);
        // 64 x 8 = 512 octets: a whole number of cache lines per worker.
        let drops_worker_stride = (DROP_REASONS * 8) as u64;
        let drops = region(workers * drops_worker_stride);
        // Up to 1 + MAX_PREFIXES_V6 prefixes per session: twice the buckets.
        let v6_index = region(2 * 2 * index_capacity * 8);
        let route_index = region(2 * index_capacity * 8);
        Some(Layout {
            geometry: g,
            index_capacity: u32::try_from(index_capacity).ok()?,
            counters_worker_stride,
            drops_worker_stride,
            slots,
            upstream_index,
            v4_index,
            counters,
            counter_base,
            drops,
            v6_index,
            route_index,
            segment_size: at,
        })
    }
}

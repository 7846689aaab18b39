//! The shared-memory segment between xlnsd (the only writer of sessions) and the
//! xlns-dataplane workers (readers of sessions, writers of counters), ARCHITECTURE.md §4.
//!
//! # Contract
//!
//! * A file (e.g. `/dev/shm/xlns.<name>`), mapped shared by both processes. It begins with
//!   a [`Header`]: magic, [`ABI_VERSION`], header size, geometry, offset and size of every
//!   table (offsets, never pointers), a generation counter, the writer's pid and
//!   heartbeat. [`Reader::attach`] and [`Writer::attach_existing`] refuse a different
//!   magic, ABI version, or any offset or size that disagrees with the geometry
//!   ([`ShmError`] says which field and which values).
//! * Tables, each page aligned: `max_sessions` [`Slot`]s (a sequence lock and a
//!   [`SessionRecord`]); four indexes, each a pair of open-addressing tables (the design
//!   notes are in `index.rs`): upstream `(local tunnel << 16) | local session` -> slot,
//!   subscriber IPv4 address -> slot, IPv6 prefix -> slot, Framed-Route IPv4 prefix ->
//!   slot; per-worker counter columns (`max_workers` x
//!   `max_sessions` [`SlotCounters`], page-separated), the writer's counter bases, and
//!   per-worker drop-reason arrays ([`DROP_REASONS`] `u64`s).
//! * One writer ([`Writer`]), which publishes a record before indexing it and unindexes it
//!   before clearing it. Readers ([`Reader`]) never block it and never lock: a lookup is one
//!   atomic load per probe plus a sequence-locked copy of the slot, validated against the
//!   key asked for, so a stale index entry never yields the wrong session. A reader gives
//!   up (returns `None`) on a slot that stays busy, so a writer killed mid-write never
//!   hangs a worker.
//! * Counters: each worker writes only its own column (Relaxed load + store, no locked
//!   instruction); the writer sums the columns and subtracts the base it recorded when the
//!   slot's session was inserted, so a new session never inherits old counts.
//! * Restarts: the segment outlives both processes. A restarted data plane re-attaches with
//!   [`Reader::attach`]; a restarted xlnsd re-attaches with [`Writer::attach_existing`],
//!   which rebuilds the free list and both indexes from the slots.
//!
//! # Downstream lookups (longest prefix match)
//!
//! * IPv4: the subscriber's address first (exact, one index probe: the main case); on a
//!   miss, the Framed-Route prefixes a record carries (up to
//!   [`MAX_ROUTES_V4`](crate::session::MAX_ROUTES_V4) per session).
//! * IPv6: the session's own prefix and its further (delegated) prefixes, keyed by their
//!   upper 64 bits: prefixes are at most 64 bits long.
//! * Both prefix indexes are keyed by a hash of (masked prefix, length)
//!   ([`route_key`], [`v6_key`]). The header keeps a bitmap of the prefix lengths in use
//!   per index ([`Header::v6_lengths`], [`Header::route_lengths`]); a reader probes the
//!   lengths present, longest first: one probe when every session has a /64 and no
//!   routes. A hit is validated against the slot's record (the prefix must be one of the
//!   record's), so a stale or colliding bucket never yields the wrong session. The
//!   writer sets a length's bit before the first entry of that length is indexed and
//!   clears it after the last one is removed.
//! * The writer refuses a record whose prefix or route another session holds
//!   ([`ShmError::DuplicateKey`]) or whose IPv6 prefix is longer than 64 bits
//!   ([`ShmError::InvalidKey`]).
//!
//! Not yet here (issue #5): segments on a hugetlbfs mount need the segment size rounded
//! to the huge page size.

mod error;
mod index;
mod layout;
mod reader;
mod segment;
mod writer;

pub use error::ShmError;
pub use layout::{
    ABI_VERSION, DROP_REASONS, Geometry, Header, Layout, MAGIC, MAX_PROBE, PAGE, RECORD_WORDS,
    Region, Slot, SlotCounters,
};
pub use reader::{Reader, WorkerCounters};
pub use segment::Segment;
pub(crate) use segment::prefetch_line;
pub use writer::Writer;

use core::sync::atomic::Ordering;

use crate::session::{SessionRecord, flags};

/// A session slot's index. Stable for the session's lifetime; the per-slot counters are
/// indexed by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlotId(pub u32);

impl SlotId {
    /// The index as a `usize`.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// A session's traffic counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Upstream (access -> core) packets.
    pub up_packets: u64,
    /// Upstream octets.
    pub up_bytes: u64,
    /// Downstream (core -> access) packets.
    pub down_packets: u64,
    /// Downstream octets.
    pub down_bytes: u64,
}

impl Counters {
    /// Add one worker's counters of a slot (wrapping, as the counters do).
    pub fn add(&mut self, c: &SlotCounters) {
        // Relaxed: each value is written by one worker; an untorn, possibly slightly stale
        // value is all a reader (accounting, display) needs.
        self.up_packets = self
            .up_packets
            .wrapping_add(c.up_packets.load(Ordering::Relaxed));
        self.up_bytes = self
            .up_bytes
            .wrapping_add(c.up_bytes.load(Ordering::Relaxed));
        self.down_packets = self
            .down_packets
            .wrapping_add(c.down_packets.load(Ordering::Relaxed));
        self.down_bytes = self
            .down_bytes
            .wrapping_add(c.down_bytes.load(Ordering::Relaxed));
    }
}

/// CLOCK_MONOTONIC in nanoseconds: the clock of [`Writer::heartbeat`] (system-wide, so
/// both processes compare the same clock).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// The four indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Which {
    Upstream = 0,
    V4 = 1,
    V6 = 2,
    Route = 3,
}

impl Which {
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Which::Upstream => "upstream",
            Which::V4 => "ipv4",
            Which::V6 => "ipv6-prefix",
            Which::Route => "ipv4-route",
        }
    }
}

/// Finalizer of a 64-bit mix (splitmix64), folded to 32 bits, never 0 (the empty bucket).
#[inline(always)]
const fn hash32(mut x: u64) -> u32 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    let k = (x ^ (x >> 32)) as u32;
    if k == 0 { 1 } else { k }
}

/// The route index key of the IPv4 prefix `prefix/len` (`prefix` masked, `len` <= 32).
#[inline(always)]
pub const fn route_key(prefix: u32, len: u8) -> u32 {
    hash32(((len as u64) << 32) | prefix as u64)
}

/// The IPv6 prefix index key of `upper/len` (`upper`: the prefix's upper 64 bits, masked;
/// `len` 1 ..= 64).
#[inline(always)]
pub const fn v6_key(upper: u64, len: u8) -> u32 {
    hash32(upper ^ (len as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// The index keys of a record: upstream key (0 = not a session) and the IPv4 key when the
/// record has a (non-zero) subscriber address.
fn session_index_keys(rec: &SessionRecord) -> (u32, Option<u32>) {
    let v4 = u32::from_be_bytes(rec.subscriber_v4);
    (
        rec.upstream_key(),
        (rec.has(flags::HAS_IPV4) && v4 != 0).then_some(v4),
    )
}

/// A slot's counters summed over every worker column.
fn sum_counters(seg: &Segment, slot: u32) -> Counters {
    let mut sum = Counters::default();
    for w in 0..seg.layout().geometry.max_workers {
        if let Some(c) = seg.counter_column(w).and_then(|col| col.get(slot as usize)) {
            sum.add(c);
        }
    }
    sum
}

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
//!   [`SessionRecord`]); two indexes (upstream `(local tunnel << 16) | local session` ->
//!   slot, subscriber IPv4 address -> slot; the design notes are in `index.rs`), each a
//!   pair of open-addressing tables; per-worker counter columns (`max_workers` x
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
//! Not yet here (issue #5): downstream lookup by IPv6 prefix and by Framed-Route prefix
//! (an LPM); the records already carry the IPv6 prefix. Segments on a hugetlbfs mount
//! need the segment size rounded to the huge page size (issue #5).

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
            // Relaxed: each value is written by one worker; an untorn, possibly slightly
            // stale value is all accounting needs.
            sum.up_packets = sum
                .up_packets
                .wrapping_add(c.up_packets.load(Ordering::Relaxed));
            sum.up_bytes = sum
                .up_bytes
                .wrapping_add(c.up_bytes.load(Ordering::Relaxed));
            sum.down_packets = sum
                .down_packets
                .wrapping_add(c.down_packets.load(Ordering::Relaxed));
            sum.down_bytes = sum
                .down_bytes
                .wrapping_add(c.down_bytes.load(Ordering::Relaxed));
        }
    }
    sum
}

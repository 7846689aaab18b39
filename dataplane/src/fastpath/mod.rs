//! The per-packet fast path (ARCHITECTURE.md §3): one function per direction, called by
//! the AF_XDP worker loop for every received frame.
//!
//! * [`process_upstream`] (access -> core): Ethernet (0-2 VLAN tags) / IPv4 (any IHL) or
//!   IPv6 / UDP to our L2TP port / L2TP data header (any of L, S, O, P, offset pad) / PPP
//!   (with or without address-control, 1- or 2-octet protocol) / inner IPv4 or IPv6.
//!   Session found by (tunnel id, session id); outer source and port, then inner source
//!   checked; TTL / hop limit decremented; TCP MSS clamped on SYN; the core Ethernet
//!   header written in front of the inner packet, which is forwarded in place.
//!   ICMP echo requests to the LNS's own PPP-side address are answered ([`local`]).
//! * [`process_downstream`] (core -> access): Ethernet (0-2 tags) / IPv4 or IPv6; session
//!   found by destination; oversize packets answered with ICMP too-big (rate limited);
//!   TTL decremented, MSS clamped on SYN, and the session's header template
//!   ([`template`]) written into the headroom in front of the packet by the lookup
//!   itself, then lengths, checksums and Ns patched. Destinations: the subscriber's IPv4
//!   address, its Framed-Route prefixes, its IPv6 prefixes (own and delegated).
//!
//! # Buffer model
//! Both functions take the whole frame buffer `buf` (a UMEM frame) and the received
//! frame's position in it, `buf[start..start + len]`; `start` is the headroom. They
//! rewrite the buffer in place and return where the frame to transmit lies, as absolute
//! offsets into `buf` ([`Verdict`]). Nothing is copied except the headers written.
//! Downstream writes the 96 octets in front of the IP packet (the template field, a
//! fixed-size copy); with less headroom than that it copies through a local buffer.
//!
//! # Contract
//! No allocation, no locking, no logging, no clock: time comes in as `now_ns`. No input
//! bytes make anything panic (property-tested). Every [`Verdict::Drop`] is already
//! counted in [`WorkerState::drops`]; [`Verdict::Pass`] is not (a worker that cannot hand
//! the frame to the kernel counts its reason itself). Forwarded packets are counted per
//! session through [`SessionStats`] with the inner IP packet's length.
//!
//! Not done here (documented limitations): outer UDP checksums are not verified on
//! receipt (RFC 2661 does not require it; the inner packet carries its own); outer IPv4
//! fragments are dropped (`outer-fragment`); no ICMP time-exceeded is generated;
//! downstream IPv4 packets above the MTU without DF are dropped (`too-big`), not
//! fragmented; IPv6 extension headers are not walked (MSS clamping then does not apply);
//! ICMPv6 echo to the LNS goes to the kernel with the link-local traffic.

mod csum;
pub mod downstream;
pub mod drop;
mod inner;
pub mod local;
pub mod mem;
pub mod template;
pub mod upstream;

#[cfg(test)]
mod tests;

pub use downstream::process_downstream;
pub use drop::{DropCounters, DropReason};
pub use mem::{MemSessions, SlotCounters, SlotStats};
pub use template::build_template;
pub use upstream::process_upstream;

use crate::session::{
    Downstream, SessionHead, SessionRecord, TEMPLATE_CAPACITY, TemplateLayout, UpstreamV4,
};
use crate::wire::EthernetAddress;

/// What the worker does with a frame after a `process_*` call. Offsets are absolute in the
/// buffer passed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Transmit `buf[offset..offset + len]` on the other side (upstream: the core
    /// interface; downstream: the access interface).
    Forward { offset: usize, len: usize },
    /// Transmit `buf[offset..offset + len]` back out of the side it came from (an ICMP
    /// too-big toward the core sender; an echo reply encapsulated toward the LAC).
    Reply { offset: usize, len: usize },
    /// Not for the fast path: hand the frame unchanged to the kernel (L2TP control, PPP
    /// control, ARP, ...). Not counted: a worker that cannot pass it counts the reason.
    Pass(DropReason),
    /// Dropped, and already counted in [`WorkerState::drops`].
    Drop(DropReason),
}

/// The session table as the fast path reads it. Lookups copy what the direction needs out
/// (the shared-memory implementation reads it under the slot's sequence lock): upstream
/// the five words of an [`UpstreamV4`] in the common case, the record's [`SessionHead`]
/// (80 octets) otherwise; downstream the template, straight into the packet's headroom,
/// and a [`Downstream`] (MTU, epoch, template layout). The slot number identifies the
/// session for [`SessionStats`].
///
/// The `*_first` methods are the common case's cheap first try (the shared-memory table:
/// the key's first bucket only, validated inline, no closure, nothing returned through
/// memory); a `None` from them sends the frame to an out-of-line path with the complete
/// lookup, so they may miss but never answer wrongly.
pub trait Sessions {
    /// Upstream: by our (tunnel id, session id), in O(1).
    fn by_upstream(&self, tunnel: u16, session: u16) -> Option<(u32, SessionHead)>;
    /// [`Sessions::by_upstream`] as the upstream common case (outer and inner IPv4) uses
    /// it: only the fields of [`UpstreamV4`] (the shared-memory table reads five words of
    /// the slot instead of ten).
    #[inline(always)]
    fn up_v4(&self, tunnel: u16, session: u16) -> Option<UpstreamV4> {
        let (slot, head) = self.by_upstream(tunnel, session)?;
        Some(UpstreamV4::of(slot, &head))
    }
    /// [`Sessions::up_v4`]'s cheap first try, for the hot path: `None` may miss a present
    /// session (the shared-memory table looks at the key's first bucket only), and the
    /// caller then asks [`Sessions::up_v4`]. A `Some` is always right.
    #[inline(always)]
    fn up_v4_first(&self, tunnel: u16, session: u16) -> Option<UpstreamV4> {
        self.up_v4(tunnel, session)
    }
    /// The whole record in `slot`, if that slot still holds the session with upstream key
    /// `key` ([`SessionHead::upstream_key`]); for the rare upstream packets answered
    /// downstream (echo replies to the gateway address) and for source checks against
    /// the session's routes.
    fn record(&self, slot: u32, key: u32) -> Option<SessionRecord>;
    /// Downstream: by IPv4 destination: the subscriber's address (exact), else the
    /// longest Framed-Route prefix holding it.
    fn by_v4(&self, dst: [u8; 4]) -> Option<(u32, SessionRecord)>;
    /// Downstream: by an IPv6 destination within one of the sessions' prefixes (longest
    /// match).
    fn by_v6(&self, dst: [u8; 16]) -> Option<(u32, SessionRecord)>;
    /// [`Sessions::by_v4`] as the downstream path uses it: the session's template is
    /// written into `out` (right-aligned, [`SessionRecord::template`]'s whole field: the
    /// caller passes the 96 octets in front of the packet), the rest it needs is
    /// returned. `out` is meaningful only on `Some`.
    #[inline(always)]
    fn down_v4(&self, dst: [u8; 4], out: &mut [u8; TEMPLATE_CAPACITY]) -> Option<Downstream> {
        let (slot, record) = self.by_v4(dst)?;
        Some(downstream_of(slot, &record, out))
    }
    /// [`Sessions::down_v4`]'s cheap first try, for the hot path: `None` may miss a
    /// present session (the shared-memory table looks at the address's first bucket
    /// only), and the caller then asks [`Sessions::down_v4`]. A `Some` is always right;
    /// `out` is meaningful only on `Some`.
    #[inline(always)]
    fn down_v4_first(&self, dst: [u8; 4], out: &mut [u8; TEMPLATE_CAPACITY]) -> Option<Downstream> {
        self.down_v4(dst, out)
    }
    /// [`Sessions::by_v6`] as [`Sessions::down_v4`].
    #[inline(always)]
    fn down_v6(&self, dst: [u8; 16], out: &mut [u8; TEMPLATE_CAPACITY]) -> Option<Downstream> {
        let (slot, record) = self.by_v6(dst)?;
        Some(downstream_of(slot, &record, out))
    }
    /// Prefetch hint for [`Sessions::up_v4_first`] of (`tunnel`, `session`), a few frames
    /// ahead ([`prefetch_upstream`]); the slot on [`Prefetch::Slot`] when the table knows
    /// it. The default does nothing.
    #[inline(always)]
    fn prefetch_up(&self, _tunnel: u16, _session: u16, _what: Prefetch) -> Option<u32> {
        None
    }
    /// Prefetch hint for [`Sessions::down_v4_first`] of `dst`, as
    /// [`Sessions::prefetch_up`].
    #[inline(always)]
    fn prefetch_down_v4(&self, _dst: [u8; 4], _what: Prefetch) -> Option<u32> {
        None
    }
    /// Upstream source check beyond the subscriber's address: whether `src` lies in one of
    /// the Framed-Route prefixes of the session in `slot` (upstream key `key`).
    #[inline]
    fn source_in_routes_v4(&self, slot: u32, key: u32, src: [u8; 4]) -> bool {
        self.record(slot, key)
            .is_some_and(|record| record.routes_v4_contain(src))
    }
    /// Upstream source check beyond the subscriber's own prefix: whether `src` lies in one
    /// of the session's further IPv6 prefixes.
    #[inline]
    fn source_in_prefixes_v6(&self, slot: u32, key: u32, src: &[u8; 16]) -> bool {
        self.record(slot, key)
            .is_some_and(|record| record.prefixes_v6_contain(src))
    }
}

/// `record`'s template copied into `out` and its [`Downstream`].
#[inline(always)]
pub fn downstream_of(
    slot: u32,
    record: &SessionRecord,
    out: &mut [u8; TEMPLATE_CAPACITY],
) -> Downstream {
    *out = record.template;
    Downstream {
        slot,
        epoch: record.epoch,
        mtu: record.mtu,
        layout: TemplateLayout::of(&record.head()),
    }
}

/// Per-session state the worker keeps in its own memory: packet and byte counters
/// (ARCHITECTURE.md §3: per worker, summed by xlnsd) and the downstream Ns counter.
///
/// Ns limitation: with sequencing, each worker numbers its own packets for a session, so
/// a session whose downstream traffic is spread over several workers (RSS on the core
/// side) sends interleaved sequences. LACs that enforce data sequencing need the
/// session's downstream traffic steered to one queue. A slot's Ns restarts at 0 when the
/// slot is given to a new session: the record's [`SessionRecord::epoch`] changed.
pub trait SessionStats {
    /// One upstream packet of `bytes` (inner IP length) forwarded for `slot`.
    fn upstream(&mut self, slot: u32, bytes: usize);
    /// One downstream packet of `bytes` (inner IP length) sent to `slot`.
    fn downstream(&mut self, slot: u32, bytes: usize);
    /// The next downstream Ns for `slot` (RFC 2661 §5.8), post-incremented; restarts at 0
    /// (RFC 2661 §5.4: a session's first data message has Ns 0) when `epoch` is not the
    /// one the slot's count belongs to (a new session in that slot).
    fn next_ns(&mut self, slot: u32, epoch: u32) -> u16;
    /// Prefetch hint for `slot`'s counters. The default does nothing.
    #[inline(always)]
    fn prefetch(&self, _slot: u32) {}
}

/// The stages of the prefetch a worker runs over its received batch ahead of processing
/// ([`prefetch_upstream`], [`prefetch_downstream`]): frame `i + 2 * PREFETCH_AHEAD` gets
/// [`Prefetch::Bucket`], frame `i + PREFETCH_AHEAD` gets [`Prefetch::Slot`], then frame
/// `i` is processed, its session's lines in the cache by then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefetch {
    /// The index bucket of the frame's session key.
    Bucket,
    /// The session's slot (through the bucket, cached by the first stage) and counters.
    Slot,
}

/// How many frames ahead of processing the [`Prefetch::Slot`] stage runs (the bucket
/// stage twice as far).
pub const PREFETCH_AHEAD: usize = 4;

/// Prefetch stage `what` for the access-side frame `buf[start..start + len]`, read as the
/// upstream common case (the L2TP ids at their untagged-IPv4 offsets; another frame only
/// prefetches lines it does not need). A hint: no effect on any verdict, no allocation.
#[inline(always)]
pub fn prefetch_upstream<T: Sessions, S: SessionStats>(
    buf: &[u8],
    start: usize,
    len: usize,
    sessions: &T,
    state: &WorkerState<S>,
    what: Prefetch,
) {
    if len < 48 {
        return;
    }
    if let Some(&[t0, t1, s0, s1]) = buf.get(start + 44..start + 48) {
        let slot = sessions.prefetch_up(
            u16::from_be_bytes([t0, t1]),
            u16::from_be_bytes([s0, s1]),
            what,
        );
        if let Some(slot) = slot {
            state.stats.prefetch(slot);
        }
    }
}

/// [`prefetch_upstream`] for the core-side frame `buf[start..start + len]`, read as the
/// downstream common case (the IPv4 destination at its untagged offset).
#[inline(always)]
pub fn prefetch_downstream<T: Sessions, S: SessionStats>(
    buf: &[u8],
    start: usize,
    len: usize,
    sessions: &T,
    state: &WorkerState<S>,
    what: Prefetch,
) {
    if len < 34 {
        return;
    }
    if let Some(&[a, b, c, d]) = buf.get(start + 30..start + 34) {
        if let Some(slot) = sessions.prefetch_down_v4([a, b, c, d], what) {
            state.stats.prefetch(slot);
        }
    }
}

/// Per-worker configuration, read-only on the fast path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerCtx {
    /// Our L2TP UDP port (1701).
    pub l2tp_port: u16,
    /// Our MAC address on the core interface (source of upstream frames).
    pub core_mac: EthernetAddress,
    /// The core next hop's MAC address (destination of upstream frames).
    pub core_next_hop_mac: EthernetAddress,
    /// Core-side 802.1Q VLAN id for upstream frames; 0 = untagged.
    pub core_vlan: u16,
    /// The LNS's PPP-side IPv4 address (the one IPCP gave as ours): echo requests to it
    /// are answered, other traffic to it is dropped as `to-lns`.
    pub gateway_v4: [u8; 4],
    /// Source address of ICMP too-big messages sent toward the core (IPv4).
    pub icmp_src_v4: [u8; 4],
    /// Source address of ICMPv6 packet-too-big messages sent toward the core.
    pub icmp_src_v6: [u8; 16],
}

/// Generic cell rate algorithm: at most `burst` events at once, then one per interval.
/// Integer only; time is the caller's monotonic nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenBucket {
    interval_ns: u64,
    tolerance_ns: u64,
    /// Theoretical arrival time of the next conforming event.
    tat_ns: u64,
}

impl TokenBucket {
    /// `per_second` events per second on average (at least 1), up to `burst` (at least 1)
    /// back to back.
    pub const fn new(per_second: u64, burst: u64) -> TokenBucket {
        let per_second = if per_second == 0 { 1 } else { per_second };
        let burst = if burst == 0 { 1 } else { burst };
        let interval_ns = 1_000_000_000 / per_second;
        TokenBucket {
            interval_ns,
            tolerance_ns: interval_ns.saturating_mul(burst - 1),
            tat_ns: 0,
        }
    }

    /// Take one token at `now_ns`; false when the rate is exceeded.
    #[inline]
    pub fn take(&mut self, now_ns: u64) -> bool {
        let tat = self.tat_ns.max(now_ns);
        if tat - now_ns > self.tolerance_ns {
            return false;
        }
        self.tat_ns = tat.saturating_add(self.interval_ns);
        true
    }
}

/// Everything a worker's fast path mutates: owned by one worker, never shared.
#[derive(Debug)]
pub struct WorkerState<S: SessionStats> {
    /// Drops by reason.
    pub drops: DropCounters,
    /// Per-session counters and Ns.
    pub stats: S,
    /// Rate limit for ICMP too-big answers.
    pub icmp_limit: TokenBucket,
}

impl<S: SessionStats> WorkerState<S> {
    /// Fresh counters; ICMP too-big answers limited to 1,000 per second, bursts of 100.
    pub fn new(stats: S) -> WorkerState<S> {
        WorkerState {
            drops: DropCounters::new(),
            stats,
            icmp_limit: TokenBucket::new(1_000, 100),
        }
    }
}

/// The end of the frame `buf[start..start + len]` in a buffer of `buf_len` octets, if it
/// lies within the buffer and is at least `min` octets long: the fast paths' entry test,
/// written so that the compiler knows `start + min <= buf_len` afterwards (no further
/// bounds check for the fixed-size header view).
#[inline(always)]
fn frame_end(buf_len: usize, start: usize, len: usize, min: usize) -> Option<usize> {
    let room = buf_len.checked_sub(start)?;
    (len <= room && len >= min).then_some(start + len)
}

/// Big-endian 16-bit read; the caller has checked the bounds (out of bounds reads 0: one
/// compare, never a panic).
#[inline(always)]
fn rd16(data: &[u8], at: usize) -> u16 {
    match data.get(at..at.wrapping_add(2)) {
        Some(&[a, b]) => u16::from_be_bytes([a, b]),
        _ => 0,
    }
}

/// Big-endian 16-bit write; the caller has checked the bounds (out of bounds writes
/// nothing).
#[inline(always)]
fn wr16(data: &mut [u8], at: usize, value: u16) {
    if let Some(field) = data.get_mut(at..at.wrapping_add(2)) {
        field.copy_from_slice(&value.to_be_bytes());
    }
}

/// Whether `data[at..at + N]` equals `value`; false when out of bounds. Compiles to one or
/// two wide loads and compares (no `memcmp` call).
#[inline(always)]
fn eq_at<const N: usize>(data: &[u8], at: usize, value: &[u8; N]) -> bool {
    match data.get(at..at + N) {
        Some(bytes) => <[u8; N]>::try_from(bytes).is_ok_and(|bytes| bytes == *value),
        None => false,
    }
}

/// EtherTypes the fast path handles.
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const TPID_8021Q: u16 = 0x8100;

/// Walk an Ethernet header with up to two VLAN tags (any of the TPIDs
/// [`crate::wire::ethernet::Tpid`] names); returns (header length, EtherType). A third
/// tag reads as a non-IP EtherType.
#[inline]
fn parse_ethernet(frame: &[u8]) -> Result<(usize, u16), DropReason> {
    let mut at = 12;
    for _ in 0..=crate::wire::ethernet::MAX_VLAN_TAGS {
        if frame.len() < at + 2 {
            return Err(DropReason::Truncated);
        }
        let value = rd16(frame, at);
        if crate::wire::ethernet::Tpid::from_u16(value).is_none() {
            return Ok((at + 2, value));
        }
        at += 4;
    }
    Ok((at - 2, TPID_8021Q))
}

#[inline]
fn finish<S: SessionStats>(state: &mut WorkerState<S>, verdict: Verdict) -> Verdict {
    if let Verdict::Drop(reason) = verdict {
        state.drops.count(reason);
    }
    verdict
}

/// A parser's result as a counted verdict: an error is a drop under its reason.
#[inline(always)]
fn counted<S: SessionStats>(
    state: &mut WorkerState<S>,
    result: Result<Verdict, DropReason>,
) -> Verdict {
    finish(state, result.unwrap_or_else(Verdict::Drop))
}

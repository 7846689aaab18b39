//! Downstream, core -> access: encapsulate an IP packet for a subscriber with its
//! session's header template (ARCHITECTURE.md §3).
//!
//! ```text
//! in:                                Ethernet [tags] | IP ... [Ethernet padding]
//! out: template (Ethernet|IP|UDP|L2TP|PPP), patched | IP (TTL - 1)
//! ```
//!
//! Steps, in order:
//! 1. Ethernet: not IPv4/IPv6 -> `Pass(not-ip)`.
//! 2. IP header validated (IPv4 checksum included); session by destination: IPv4 exact
//!    (the subscriber's address) then Framed-Route longest prefix, IPv6 longest prefix
//!    (the session's own and delegated prefixes) -> `no-session-for-destination`. The
//!    lookup copies the session's template into the 96 octets in front of the packet.
//! 3. TTL / hop limit 1 or 0 -> `ttl-expired`.
//! 4. Longer than the session MTU: IPv4 with DF -> ICMP destination unreachable,
//!    fragmentation needed (type 3 code 4, next-hop MTU; RFC 792, RFC 1191 §4);
//!    IPv6 -> ICMPv6 packet too big (RFC 4443 §3.2); both as [`Verdict::Reply`] toward
//!    the sender, rate limited by [`WorkerState::icmp_limit`] (`icmp-rate-limited`).
//!    IPv4 without DF, later fragments and ICMP error messages (RFC 1812 §4.3.2.7,
//!    RFC 4443 §2.4(e)) -> `too-big`: not fragmented here.
//! 5. TTL / hop limit decremented, MSS clamped on SYN (as upstream), template written in
//!    the headroom and patched ([`super::template`]), counted.
//!
//! The ICMP error is built in place: the quoted original packet stays where it is
//! (truncated to 576 bytes in all for IPv4, RFC 1812 §4.3.2.3; 1280 for IPv6, RFC 4443
//! §2.4(c)), the new IP and ICMP headers go in front of it and the received Ethernet
//! header (saved before the lookup overwrote it), addresses swapped, in front of those.
//! It needs 28 (IPv4) / 48 (IPv6) bytes of headroom besides the Ethernet header
//! (`no-headroom`).

use super::inner::{self, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP};
use super::template::encapsulate;
use super::{
    DropReason, ETHERTYPE_IPV4, ETHERTYPE_IPV6, SessionStats, Sessions, Verdict, WorkerCtx,
    WorkerState, counted, csum, parse_ethernet, rd16, wr16,
};
use crate::session::{Downstream, TEMPLATE_CAPACITY};

/// Process one frame received on the core side, `buf[start..start + len]`; `start` is the
/// headroom available for the template. `now_ns` is a monotonic clock for the ICMP rate
/// limit. Drops are counted in `state.drops`.
#[inline(always)]
pub fn process_downstream<T: Sessions, S: SessionStats>(
    buf: &mut [u8],
    start: usize,
    len: usize,
    now_ns: u64,
    ctx: &WorkerCtx,
    sessions: &T,
    state: &mut WorkerState<S>,
) -> Verdict {
    if let Some(end) = super::frame_end(buf.len(), start, len, FAST_LEN) {
        if fast_shape(buf, start, end) {
            return fast_v4(buf, start, end, now_ns, ctx, sessions, state);
        }
    }
    general(buf, start, len, now_ns, ctx, sessions, state)
}

/// [`process_downstream`] for every frame [`fast_shape`] does not take: the general
/// parser, out of line.
#[inline(never)]
fn general<T: Sessions, S: SessionStats>(
    buf: &mut [u8],
    start: usize,
    len: usize,
    now_ns: u64,
    ctx: &WorkerCtx,
    sessions: &T,
    state: &mut WorkerState<S>,
) -> Verdict {
    let result = downstream(buf, start, len, now_ns, ctx, sessions, state);
    counted(state, result)
}

/// `result` as a counted verdict, out of line: the fast path's uncommon outcomes.
#[cold]
#[inline(never)]
fn settle<S: SessionStats>(
    state: &mut WorkerState<S>,
    result: Result<Verdict, DropReason>,
) -> Verdict {
    counted(state, result)
}

/// [`process_downstream`] without the common-case parser: the general parser alone, for
/// the tests that compare the two.
#[cfg(test)]
pub(super) fn process_downstream_general<T: Sessions, S: SessionStats>(
    buf: &mut [u8],
    start: usize,
    len: usize,
    now_ns: u64,
    ctx: &WorkerCtx,
    sessions: &T,
    state: &mut WorkerState<S>,
) -> Verdict {
    general(buf, start, len, now_ns, ctx, sessions, state)
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn downstream<T: Sessions, S: SessionStats>(
    buf: &mut [u8],
    start: usize,
    len: usize,
    now_ns: u64,
    ctx: &WorkerCtx,
    sessions: &T,
    state: &mut WorkerState<S>,
) -> Result<Verdict, DropReason> {
    let end = match start.checked_add(len) {
        Some(end) if end <= buf.len() => end,
        _ => return Err(DropReason::Truncated),
    };
    let (eth_len, ethertype) = parse_ethernet(&buf[start..end])?;
    let ip = start + eth_len;
    match ethertype {
        ETHERTYPE_IPV4 => {
            let v4 = inner::ipv4(buf, ip, end)?;
            let mut dst = [0u8; 4];
            dst.copy_from_slice(&buf[ip + 16..ip + 20]);
            let eth = save_ethernet(buf, start, eth_len);
            v4_tail(buf, ip, v4, dst, &eth, now_ns, ctx, sessions, state)
        }
        ETHERTYPE_IPV6 => {
            let total = inner::ipv6(buf, ip, end)?;
            let mut dst = [0u8; 16];
            dst.copy_from_slice(&buf[ip + 24..ip + 40]);
            let eth = save_ethernet(buf, start, eth_len);
            let found = match headroom(buf, ip) {
                Some(out) => sessions.down_v6(dst, out),
                None => small_headroom(buf, ip, |out| sessions.down_v6(dst, out)),
            };
            let Some(d) = found else {
                return Err(DropReason::NoSessionForDestination);
            };
            if buf[ip + 7] <= 1 {
                return Err(DropReason::TtlExpired);
            }
            if total > usize::from(d.mtu) {
                return too_big_v6(buf, &eth, ip, total, d.mtu, now_ns, ctx, state);
            }
            inner::decrement_hop_limit(buf, ip)?;
            if buf[ip + 6] == PROTO_TCP {
                let tcp = ip + inner::IPV6_HEADER_LEN;
                inner::clamp_mss(buf, tcp, ip + total, d.mtu.saturating_sub(60));
            }
            let (offset, len) = encapsulate(buf, ip, total, true, &d, &mut state.stats)?;
            state.stats.downstream(d.slot, total);
            Ok(Verdict::Forward { offset, len })
        }
        _ => Ok(Verdict::Pass(DropReason::NotIp)),
    }
}

/// The received Ethernet header (`buf[start..start + eth_len]`, at most 22 octets), saved
/// before the lookup writes the template over it: an ICMP error answers with it.
#[derive(Debug, Clone, Copy)]
struct SavedEthernet {
    octets: [u8; MAX_ETHERNET],
    len: usize,
}

/// Ethernet with two VLAN tags.
const MAX_ETHERNET: usize = 22;

#[inline(always)]
fn save_ethernet(buf: &[u8], start: usize, eth_len: usize) -> SavedEthernet {
    let mut octets = [0u8; MAX_ETHERNET];
    let len = eth_len.min(MAX_ETHERNET);
    if let Some(h) = buf.get(start..start + len) {
        octets[..len].copy_from_slice(h);
    }
    SavedEthernet { octets, len }
}

/// The [`TEMPLATE_CAPACITY`] octets in front of `ip`, where the lookup writes the
/// (right-aligned) template field; `None` with less headroom.
#[inline(always)]
fn headroom(buf: &mut [u8], ip: usize) -> Option<&mut [u8; TEMPLATE_CAPACITY]> {
    let from = ip.checked_sub(TEMPLATE_CAPACITY)?;
    buf.get_mut(from..ip)?.try_into().ok()
}

/// The lookup through a local buffer when the frame has less than [`TEMPLATE_CAPACITY`]
/// octets in front of the IP packet: the template is copied in front of the packet when
/// it fits (if not, `encapsulate` answers `no-headroom`).
#[cold]
#[inline(never)]
fn small_headroom(
    buf: &mut [u8],
    ip: usize,
    lookup: impl FnOnce(&mut [u8; TEMPLATE_CAPACITY]) -> Option<Downstream>,
) -> Option<Downstream> {
    let mut local = [0u8; TEMPLATE_CAPACITY];
    let d = lookup(&mut local)?;
    let len = usize::from(d.layout.len);
    if let Some(at) = ip.checked_sub(len) {
        if let Some(dst) = buf.get_mut(at..ip) {
            dst.copy_from_slice(&local[TEMPLATE_CAPACITY - len..]);
        }
    }
    Some(d)
}

/// Whether the frame `buf[start..end]` has the common case's shape: untagged Ethernet and
/// IPv4 without options (version 4, IHL 5) in at least 34 octets. Any other frame goes
/// to the general parser.
#[inline(always)]
fn fast_shape(buf: &[u8], start: usize, end: usize) -> bool {
    end - start >= FAST_LEN
        && buf
            .get(start + 12..start + 15)
            .is_some_and(|t| t == [0x08, 0x00, 0x45])
}

/// Untagged Ethernet (14) and an IPv4 header without options (20).
const FAST_LEN: usize = 14 + inner::IPV4_HEADER_LEN;

/// The common case ([`fast_shape`] holds), its headers' bounds checked once. Makes the
/// checks of `inner::ipv4` that the shape does not settle, in the same order, then the
/// rest as `v4_tail`: both paths give the same verdict. The session comes from
/// [`Sessions::down_v4_first`]; when that misses, `v4_tail` (the complete lookup) runs
/// out of line. Every uncommon outcome is settled out of line. Drops are counted.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn fast_v4<T: Sessions, S: SessionStats>(
    buf: &mut [u8],
    start: usize,
    end: usize,
    now_ns: u64,
    ctx: &WorkerCtx,
    sessions: &T,
    state: &mut WorkerState<S>,
) -> Verdict {
    let Some(Ok(h)) = buf
        .get(start..start + FAST_LEN)
        .map(<&[u8; FAST_LEN]>::try_from)
    else {
        return settle(state, Err(DropReason::Truncated));
    };
    let ip = start + 14;
    let total_len = usize::from(u16::from_be_bytes([h[16], h[17]]));
    if total_len < inner::IPV4_HEADER_LEN {
        return settle(state, Err(DropReason::BadLength));
    }
    if ip + total_len > end {
        return settle(state, Err(DropReason::Truncated));
    }
    let header: &[u8; inner::IPV4_HEADER_LEN] = h.last_chunk().unwrap_or(&[0; 20]);
    if !csum::verify20(header) {
        return settle(state, Err(DropReason::BadChecksum));
    }
    let dst = [h[30], h[31], h[32], h[33]];
    let mut eth = SavedEthernet {
        octets: [0; MAX_ETHERNET],
        len: 14,
    };
    eth.octets[..14].copy_from_slice(&h[..14]);
    let v4 = inner::V4 {
        header_len: inner::IPV4_HEADER_LEN,
        total_len,
    };
    let found = match headroom(buf, ip) {
        Some(out) => sessions.down_v4_first(dst, out),
        None => None,
    };
    let Some(d) = found else {
        return v4_tail_slow(buf, ip, v4, dst, &eth, now_ns, ctx, sessions, state);
    };
    // Steps 3 and 4 as `v4_found`, which settles anything but the plain case.
    if buf[ip + 8] <= 1 || total_len > usize::from(d.mtu) {
        let result = v4_found(buf, ip, v4, &d, &eth, now_ns, ctx, state);
        return settle(state, result);
    }
    // Step 5 as `v4_found`.
    if let Err(reason) = inner::decrement_ttl(buf, ip) {
        return settle(state, Err(reason));
    }
    if buf[ip + 9] == PROTO_TCP && !inner::v4_is_later_fragment(buf, ip) {
        let tcp = ip + v4.header_len;
        inner::clamp_mss(buf, tcp, ip + total_len, d.mtu.saturating_sub(40));
    }
    match encapsulate(buf, ip, total_len, false, &d, &mut state.stats) {
        Ok((offset, len)) => {
            state.stats.downstream(d.slot, total_len);
            Verdict::Forward { offset, len }
        }
        Err(reason) => settle(state, Err(reason)),
    }
}

/// `v4_tail` out of line, for the fast path's first-probe misses. Drops are counted.
#[allow(clippy::too_many_arguments)]
#[cold]
#[inline(never)]
fn v4_tail_slow<T: Sessions, S: SessionStats>(
    buf: &mut [u8],
    ip: usize,
    v4: inner::V4,
    dst: [u8; 4],
    eth: &SavedEthernet,
    now_ns: u64,
    ctx: &WorkerCtx,
    sessions: &T,
    state: &mut WorkerState<S>,
) -> Verdict {
    let result = v4_tail(buf, ip, v4, dst, eth, now_ns, ctx, sessions, state);
    settle(state, result)
}

/// Step 2's lookup onwards for the validated IPv4 packet at `buf[ip..]` to `dst`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn v4_tail<T: Sessions, S: SessionStats>(
    buf: &mut [u8],
    ip: usize,
    v4: inner::V4,
    dst: [u8; 4],
    eth: &SavedEthernet,
    now_ns: u64,
    ctx: &WorkerCtx,
    sessions: &T,
    state: &mut WorkerState<S>,
) -> Result<Verdict, DropReason> {
    let found = match headroom(buf, ip) {
        Some(out) => sessions.down_v4(dst, out),
        None => small_headroom(buf, ip, |out| sessions.down_v4(dst, out)),
    };
    let Some(d) = found else {
        return Err(DropReason::NoSessionForDestination);
    };
    v4_found(buf, ip, v4, &d, eth, now_ns, ctx, state)
}

/// Steps 3 onwards for the validated IPv4 packet at `buf[ip..]` of session `d`, its
/// template in front of it.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn v4_found<S: SessionStats>(
    buf: &mut [u8],
    ip: usize,
    v4: inner::V4,
    d: &Downstream,
    eth: &SavedEthernet,
    now_ns: u64,
    ctx: &WorkerCtx,
    state: &mut WorkerState<S>,
) -> Result<Verdict, DropReason> {
    if buf[ip + 8] <= 1 {
        return Err(DropReason::TtlExpired);
    }
    if v4.total_len > usize::from(d.mtu) {
        return too_big_v4(buf, eth, ip, v4, d.mtu, now_ns, ctx, state);
    }
    inner::decrement_ttl(buf, ip)?;
    if buf[ip + 9] == PROTO_TCP && !inner::v4_is_later_fragment(buf, ip) {
        let tcp = ip + v4.header_len;
        inner::clamp_mss(buf, tcp, ip + v4.total_len, d.mtu.saturating_sub(40));
    }
    let (offset, len) = encapsulate(buf, ip, v4.total_len, false, d, &mut state.stats)?;
    state.stats.downstream(d.slot, v4.total_len);
    Ok(Verdict::Forward { offset, len })
}

/// Write the saved received Ethernet header to end at `new_ip`, its addresses swapped;
/// returns the reply frame's offset. The caller has checked `new_ip >= eth.len`.
#[inline]
fn reply_ethernet(buf: &mut [u8], eth: &SavedEthernet, new_ip: usize) -> usize {
    let out = new_ip - eth.len;
    let h = &mut buf[out..new_ip];
    h.copy_from_slice(&eth.octets[..eth.len]);
    h[..6].copy_from_slice(&eth.octets[6..12]);
    h[6..12].copy_from_slice(&eth.octets[..6]);
    out
}

const ICMP_HEADER_LEN: usize = 8;
/// RFC 1812 §4.3.2.3: an ICMP error is at most 576 bytes long.
const ICMPV4_ERROR_MAX: usize = 576;
/// RFC 4443 §2.4(c): an ICMPv6 error must not exceed the minimum IPv6 MTU.
const ICMPV6_ERROR_MAX: usize = 1280;
const REPLY_TTL: u8 = 64;

#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn too_big_v4<S: SessionStats>(
    buf: &mut [u8],
    eth: &SavedEthernet,
    ip: usize,
    v4: inner::V4,
    mtu: u16,
    now_ns: u64,
    ctx: &WorkerCtx,
    state: &mut WorkerState<S>,
) -> Result<Verdict, DropReason> {
    // RFC 1191 §4 / RFC 792: only with DF; never about an ICMP error or a later fragment.
    let df = rd16(buf, ip + 6) & 0x4000 != 0;
    let icmp_error = buf[ip + 9] == PROTO_ICMP
        && v4.total_len > v4.header_len
        && matches!(buf[ip + v4.header_len], 3 | 4 | 5 | 11 | 12);
    if !df || icmp_error || inner::v4_is_later_fragment(buf, ip) {
        return Err(DropReason::TooBig);
    }
    let head = inner::IPV4_HEADER_LEN + ICMP_HEADER_LEN;
    if ip < head + eth.len {
        return Err(DropReason::NoHeadroom);
    }
    if !state.icmp_limit.take(now_ns) {
        return Err(DropReason::IcmpRateLimited);
    }
    let quote = v4.total_len.min(ICMPV4_ERROR_MAX - head);
    let mut sender = [0u8; 4];
    sender.copy_from_slice(&buf[ip + 12..ip + 16]);
    let new_ip = ip - head;
    let out = reply_ethernet(buf, eth, new_ip);
    let total = head + quote;
    let h = &mut buf[new_ip..ip];
    h[..12].copy_from_slice(&[0x45, 0, 0, 0, 0, 0, 0, 0, REPLY_TTL, PROTO_ICMP, 0, 0]);
    wr16(h, 2, total as u16);
    h[12..16].copy_from_slice(&ctx.icmp_src_v4);
    h[16..20].copy_from_slice(&sender);
    let checksum = csum::finish(csum::sum(&h[..inner::IPV4_HEADER_LEN]));
    wr16(h, 10, checksum);
    // Type 3 code 4, checksum, unused, next-hop MTU (RFC 1191 §4).
    h[20..26].copy_from_slice(&[3, 4, 0, 0, 0, 0]);
    wr16(h, 26, mtu);
    let icmp = new_ip + inner::IPV4_HEADER_LEN;
    let checksum = csum::finish(csum::sum(&buf[icmp..new_ip + total]));
    wr16(buf, icmp + 2, checksum);
    Ok(Verdict::Reply {
        offset: out,
        len: new_ip - out + total,
    })
}

#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn too_big_v6<S: SessionStats>(
    buf: &mut [u8],
    eth: &SavedEthernet,
    ip: usize,
    total_len: usize,
    mtu: u16,
    now_ns: u64,
    ctx: &WorkerCtx,
    state: &mut WorkerState<S>,
) -> Result<Verdict, DropReason> {
    // RFC 4443 §2.4(e): never about an ICMPv6 error message (types below 128).
    let icmp_error = buf[ip + 6] == PROTO_ICMPV6
        && total_len > inner::IPV6_HEADER_LEN
        && buf[ip + inner::IPV6_HEADER_LEN] < 128;
    if icmp_error {
        return Err(DropReason::TooBig);
    }
    let head = inner::IPV6_HEADER_LEN + ICMP_HEADER_LEN;
    if ip < head + eth.len {
        return Err(DropReason::NoHeadroom);
    }
    if !state.icmp_limit.take(now_ns) {
        return Err(DropReason::IcmpRateLimited);
    }
    let quote = total_len.min(ICMPV6_ERROR_MAX - head);
    let mut sender = [0u8; 16];
    sender.copy_from_slice(&buf[ip + 8..ip + 24]);
    let new_ip = ip - head;
    let out = reply_ethernet(buf, eth, new_ip);
    let payload_len = ICMP_HEADER_LEN + quote;
    let h = &mut buf[new_ip..ip];
    h[..8].copy_from_slice(&[0x60, 0, 0, 0, 0, 0, PROTO_ICMPV6, REPLY_TTL]);
    wr16(h, 4, payload_len as u16);
    h[8..24].copy_from_slice(&ctx.icmp_src_v6);
    h[24..40].copy_from_slice(&sender);
    // Type 2 code 0, checksum, MTU (32 bits) (RFC 4443 §3.2).
    h[40..44].copy_from_slice(&[2, 0, 0, 0]);
    h[44..48].copy_from_slice(&u32::from(mtu).to_be_bytes());
    let icmp = new_ip + inner::IPV6_HEADER_LEN;
    // RFC 4443 §2.3: pseudo-header (RFC 8200 §8.1) + message.
    let acc = csum::sum(&buf[new_ip + 8..new_ip + 40])
        + payload_len as u64
        + u64::from(PROTO_ICMPV6)
        + csum::sum(&buf[icmp..icmp + payload_len]);
    wr16(buf, icmp + 2, csum::finish(acc));
    Ok(Verdict::Reply {
        offset: out,
        len: new_ip - out + inner::IPV6_HEADER_LEN + payload_len,
    })
}

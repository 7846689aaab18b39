//! Upstream, access -> core: decapsulate an L2TP data message and forward the inner IP
//! packet toward the core next hop (ARCHITECTURE.md §3).
//!
//! ```text
//! in:  Ethernet [tags] | IPv4 (any IHL) / IPv6 | UDP | L2TP data hdr [Length] [Ns Nr]
//!      [Offset Size + pad] | PPP [FF 03] proto(1|2) | inner IP ... [Ethernet padding]
//! out:                        core Ethernet [802.1Q tag] | inner IP (TTL - 1)
//! ```
//!
//! Steps, in order (the first that fails decides the verdict):
//! 1. Ethernet: not IPv4/IPv6 -> `Pass(not-ip)`.
//! 2. Outer IP: version, IHL, lengths, IPv4 header checksum (RFC 1812 §5.2.2); not UDP
//!    -> `Pass(not-l2tp)`; an IPv4 fragment -> `outer-fragment`.
//! 3. UDP: destination port not ours -> `Pass(not-l2tp)`; UDP length checked.
//! 4. L2TP (RFC 2661 §3.1): T=1 -> `Pass(l2tp-control)`; Ver != 2 -> `bad-l2tp-version`;
//!    Length (when L=1) bounds the message, Offset Size skips the pad.
//! 5. Session by (tunnel id, session id) -> `unknown-session`; outer source address and
//!    UDP source port must be the session's LAC -> `spoofed-outer-source`.
//! 6. PPP (RFC 1661 §6.5, §6.6): 0x0021 / 0x0057 go on; protocols >= 0x8000 (control)
//!    -> `Pass(ppp-control)`; other network protocols -> `unsupported-ppp-protocol`.
//! 7. Inner IP: validated like the outer; the source must be the subscriber's IPv4
//!    address or lie in one of its Framed-Routes / lie in its IPv6 prefix or one of its
//!    delegated prefixes -> `spoofed-inner-source`. IPv6 to link-local or
//!    multicast -> `Pass(ipv6-link-local)` (checked before the source: RS come from
//!    fe80::). IPv4 to [`WorkerCtx::gateway_v4`] -> [`super::local`].
//! 8. TTL / hop limit decremented (`ttl-expired` at 1 or 0), MSS clamped on SYN to
//!    MTU - 40 (IPv4) / MTU - 60 (IPv6), core Ethernet header written, counted.

use super::inner::{self, PROTO_TCP};
use super::{
    DropReason, SessionStats, Sessions, Verdict, WorkerCtx, WorkerState, counted, csum, eq_at,
    finish, local, parse_ethernet, rd16, wr16,
};
use super::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, TPID_8021Q};
use crate::session::flags;
use crate::session::{SessionHead, UpstreamV4};
use crate::wire::l2tp;
use crate::wire::ppp;

/// Process one frame received on the access side, `buf[start..start + len]`; see the
/// module documentation. Drops are counted in `state.drops`.
#[inline(always)]
pub fn process_upstream<T: Sessions, S: SessionStats>(
    buf: &mut [u8],
    start: usize,
    len: usize,
    ctx: &WorkerCtx,
    sessions: &T,
    state: &mut WorkerState<S>,
) -> Verdict {
    if let Some(end) = super::frame_end(buf.len(), start, len, FAST_LEN) {
        if fast_shape(buf, start, end) {
            return fast_v4(buf, start, end, ctx, sessions, state);
        }
    }
    general(buf, start, len, ctx, sessions, state)
}

/// [`process_upstream`] for every frame [`fast_shape`] does not take: the general
/// parser, out of line.
#[inline(never)]
fn general<T: Sessions, S: SessionStats>(
    buf: &mut [u8],
    start: usize,
    len: usize,
    ctx: &WorkerCtx,
    sessions: &T,
    state: &mut WorkerState<S>,
) -> Verdict {
    let result = upstream(buf, start, len, ctx, sessions, state);
    counted(state, result)
}

/// [`process_upstream`] without the common-case parser: the general parser alone, for
/// the tests that compare the two.
#[cfg(test)]
pub(super) fn process_upstream_general<T: Sessions, S: SessionStats>(
    buf: &mut [u8],
    start: usize,
    len: usize,
    ctx: &WorkerCtx,
    sessions: &T,
    state: &mut WorkerState<S>,
) -> Verdict {
    general(buf, start, len, ctx, sessions, state)
}

#[inline(always)]
fn upstream<T: Sessions, S: SessionStats>(
    buf: &mut [u8],
    start: usize,
    len: usize,
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

    // Outer IP.
    let outer_v6 = match ethertype {
        ETHERTYPE_IPV4 => false,
        ETHERTYPE_IPV6 => true,
        _ => return Ok(Verdict::Pass(DropReason::NotIp)),
    };
    let (udp, ip_end) = if outer_v6 {
        let total = inner::ipv6(buf, ip, end)?;
        if buf[ip + 6] != inner::PROTO_UDP {
            return Ok(Verdict::Pass(DropReason::NotL2tp));
        }
        (ip + inner::IPV6_HEADER_LEN, ip + total)
    } else {
        let v4 = inner::ipv4(buf, ip, end)?;
        if buf[ip + 9] != inner::PROTO_UDP {
            return Ok(Verdict::Pass(DropReason::NotL2tp));
        }
        if inner::v4_is_fragment(buf, ip) {
            return Err(DropReason::OuterFragment);
        }
        (ip + v4.header_len, ip + v4.total_len)
    };

    // UDP.
    if ip_end < udp + 8 {
        return Err(DropReason::Truncated);
    }
    if rd16(buf, udp + 2) != ctx.l2tp_port {
        return Ok(Verdict::Pass(DropReason::NotL2tp));
    }
    let udp_len = usize::from(rd16(buf, udp + 4));
    if udp_len < 8 {
        return Err(DropReason::BadLength);
    }
    if udp + udp_len > ip_end {
        return Err(DropReason::Truncated);
    }
    let l2 = udp + 8;
    let mut l2_end = udp + udp_len;

    // L2TP data header (RFC 2661 §3.1).
    if l2_end < l2 + 2 {
        return Err(DropReason::Truncated);
    }
    let word = rd16(buf, l2);
    if word & l2tp::flags::T != 0 {
        return Ok(Verdict::Pass(DropReason::L2tpControl));
    }
    if word & l2tp::flags::VERSION_MASK != u16::from(l2tp::VERSION) {
        return Err(DropReason::BadL2tpVersion);
    }
    let fixed = l2tp::header_len_from_flags(word);
    if l2_end < l2 + fixed {
        return Err(DropReason::Truncated);
    }
    let mut at = l2 + 2;
    if word & l2tp::flags::L != 0 {
        let length = usize::from(rd16(buf, at));
        if length < fixed || l2 + length > l2_end {
            return Err(DropReason::BadLength);
        }
        l2_end = l2 + length;
        at += 2;
    }
    let tunnel = rd16(buf, at);
    let session = rd16(buf, at + 2);
    at += 4;
    if word & l2tp::flags::S != 0 {
        at += 4;
    }
    if word & l2tp::flags::O != 0 {
        at += 2 + usize::from(rd16(buf, at));
        if at > l2_end {
            return Err(DropReason::Truncated);
        }
    }

    // Session and anti-spoofing of the outer header.
    let Some((slot, record)) = sessions.by_upstream(tunnel, session) else {
        return Err(DropReason::UnknownSession);
    };
    let outer_ok = if outer_v6 {
        record.has(flags::OUTER_IPV6) && eq_at(buf, ip + 8, &record.peer_addr)
    } else {
        !record.has(flags::OUTER_IPV6) && eq_at(buf, ip + 12, &peer_v4(&record))
    };
    if !outer_ok || rd16(buf, udp) != record.peer_port {
        return Err(DropReason::SpoofedOuterSource);
    }

    // PPP (RFC 1661 §6.5, §6.6).
    if l2_end < at + 2 {
        return Err(DropReason::Truncated);
    }
    if buf[at] == 0xff && buf[at + 1] == 0x03 {
        at += 2;
    }
    if l2_end < at + 1 {
        return Err(DropReason::Truncated);
    }
    let protocol = if buf[at] & 1 == 1 {
        at += 1;
        u16::from(buf[at - 1])
    } else {
        if l2_end < at + 2 {
            return Err(DropReason::Truncated);
        }
        let protocol = rd16(buf, at);
        if !ppp::is_valid_protocol(protocol) {
            return Err(DropReason::BadPppProtocol);
        }
        at += 2;
        protocol
    };
    let inner_ip = at;
    match protocol {
        ppp::protocol::IPV4 => {
            let v4 = inner::ipv4(buf, inner_ip, l2_end)?;
            let up = UpstreamV4::of(slot, &record);
            inner_v4(buf, inner_ip, v4, ctx, sessions, &up, state)
        }
        ppp::protocol::IPV6 => {
            let total = inner::ipv6(buf, inner_ip, l2_end)?;
            let dst = inner_ip + 24;
            if buf[dst] == 0xff || (buf[dst] == 0xfe && buf[dst + 1] & 0xc0 == 0x80) {
                return Ok(Verdict::Pass(DropReason::Ipv6LinkLocal));
            }
            let own = record.has(flags::HAS_IPV6)
                && inner::v6_in_prefix(
                    &buf[inner_ip + 8..inner_ip + 24],
                    &record.subscriber_v6_prefix,
                    record.subscriber_v6_len,
                );
            if !own && !source_in_prefixes_v6(buf, inner_ip, sessions, slot, record.upstream_key())
            {
                return Err(DropReason::SpoofedInnerSource);
            }
            inner::decrement_hop_limit(buf, inner_ip)?;
            if buf[inner_ip + 6] == PROTO_TCP {
                let tcp = inner_ip + inner::IPV6_HEADER_LEN;
                inner::clamp_mss(buf, tcp, inner_ip + total, record.mtu.saturating_sub(60));
            }
            Ok(forward_core(
                buf,
                inner_ip,
                total,
                ETHERTYPE_IPV6,
                ctx,
                slot,
                state,
            ))
        }
        protocol if protocol >= 0x8000 => Ok(Verdict::Pass(DropReason::PppControl)),
        _ => Err(DropReason::UnsupportedPppProtocol),
    }
}

/// Step 7 onwards for a validated inner IPv4 packet at `buf[inner_ip..]` of session
/// `up.slot`: source check, the gateway address, TTL, MSS, forwarding.
#[inline(always)]
fn inner_v4<T: Sessions, S: SessionStats>(
    buf: &mut [u8],
    inner_ip: usize,
    v4: inner::V4,
    ctx: &WorkerCtx,
    sessions: &T,
    up: &UpstreamV4,
    state: &mut WorkerState<S>,
) -> Result<Verdict, DropReason> {
    let slot = up.slot;
    let own = up.has(flags::HAS_IPV4) && eq_at(buf, inner_ip + 12, &up.subscriber_v4);
    if !own && !source_in_routes_v4(buf, inner_ip, sessions, slot, up.key) {
        return Err(DropReason::SpoofedInnerSource);
    }
    if eq_at(buf, inner_ip + 16, &ctx.gateway_v4) {
        let Some(record) = sessions.record(slot, up.key) else {
            return Err(DropReason::UnknownSession);
        };
        return local::answer_v4(buf, inner_ip, v4, &record, slot, state);
    }
    inner::decrement_ttl(buf, inner_ip)?;
    if buf[inner_ip + 9] == PROTO_TCP && !inner::v4_is_later_fragment(buf, inner_ip) {
        let tcp = inner_ip + v4.header_len;
        inner::clamp_mss(buf, tcp, inner_ip + v4.total_len, up.mtu.saturating_sub(40));
    }
    Ok(forward_core(
        buf,
        inner_ip,
        v4.total_len,
        ETHERTYPE_IPV4,
        ctx,
        slot,
        state,
    ))
}

/// Whether the inner IPv4 source at `buf[inner_ip + 12..]` lies in one of the session's
/// Framed-Routes (the LAC auto-dial case: the branch network behind the session). Out of
/// line: the subscriber's own address is the common case.
#[inline(never)]
fn source_in_routes_v4<T: Sessions>(
    buf: &[u8],
    inner_ip: usize,
    sessions: &T,
    slot: u32,
    key: u32,
) -> bool {
    match buf
        .get(inner_ip + 12..inner_ip + 16)
        .map(<[u8; 4]>::try_from)
    {
        Some(Ok(src)) => sessions.source_in_routes_v4(slot, key, src),
        _ => false,
    }
}

/// Whether the inner IPv6 source at `buf[inner_ip + 8..]` lies in one of the session's
/// further (delegated) prefixes. Out of line, as [`source_in_routes_v4`].
#[inline(never)]
fn source_in_prefixes_v6<T: Sessions>(
    buf: &[u8],
    inner_ip: usize,
    sessions: &T,
    slot: u32,
    key: u32,
) -> bool {
    match buf
        .get(inner_ip + 8..inner_ip + 24)
        .map(<&[u8; 16]>::try_from)
    {
        Some(Ok(src)) => sessions.source_in_prefixes_v6(slot, key, src),
        _ => false,
    }
}

/// Octets the common case's headers span: untagged Ethernet (14), IPv4 without options
/// (20), UDP (8), L2TP data header without L, S, O (6), PPP FF 03 00 21 (4), inner IPv4
/// header without options (20).
const FAST_LEN: usize = 14 + 20 + 8 + 6 + 4 + 20;
/// Offsets in the common case, from the frame's start.
const F_IP: usize = 14;
const F_UDP: usize = F_IP + 20;
const F_L2TP: usize = F_UDP + 8;
const F_PPP: usize = F_L2TP + 6;
const F_INNER: usize = F_PPP + 4;

/// Whether the frame is the common case: at least [`FAST_LEN`] octets whose headers have
/// the shape [`FAST_LEN`] names (EtherType IPv4, version 4 and IHL 5, not a fragment,
/// protocol UDP; L2TP T, L, S, O clear and version 2; PPP FF 03 00 21; inner version 4
/// and IHL 5). Any other frame goes to the general parser. For a frame of that shape,
/// [`fast_v4_checks`] makes every check of the general parser that the shape does not
/// already settle, in the same order, with the same outcome: both paths give the same
/// verdict for every input.
#[inline(always)]
fn fast_shape(buf: &[u8], start: usize, end: usize) -> bool {
    if end - start < FAST_LEN {
        return false;
    }
    let Some(Ok(h)) = buf
        .get(start..start + FAST_LEN)
        .map(<&[u8; FAST_LEN]>::try_from)
    else {
        return false;
    };
    let be = |at: usize| u16::from_be_bytes([h[at], h[at + 1]]);
    let l2tp_word = be(F_L2TP);
    be(12) == ETHERTYPE_IPV4
        && h[F_IP] == 0x45
        && be(F_IP + 6) & 0x3fff == 0
        && h[F_IP + 9] == inner::PROTO_UDP
        && l2tp_word
            & (l2tp::flags::T
                | l2tp::flags::L
                | l2tp::flags::S
                | l2tp::flags::O
                | l2tp::flags::VERSION_MASK)
            == u16::from(l2tp::VERSION)
        && h[F_PPP..F_INNER] == [0xff, 0x03, 0x00, 0x21]
        && h[F_INNER] == 0x45
}

/// The common case once [`fast_shape`] holds, optimistically: every length, port and
/// checksum condition of [`fast_v4_checks`] is evaluated at once, without branches, and
/// the session comes from [`Sessions::up_v4_first`]. Anything that is not the plain
/// forwarding case (a condition fails, the first probe misses, the outer source does not
/// match) is handed, before anything was modified, to [`fast_v4_full`], which makes the
/// checks one by one in the general parser's order and so gives the same verdict. The
/// inner packet's own uncommon cases go to [`inner_v4_slow`] as in [`fast_v4_checks`].
/// Drops are counted.
#[inline(always)]
fn fast_v4<T: Sessions, S: SessionStats>(
    buf: &mut [u8],
    start: usize,
    end: usize,
    ctx: &WorkerCtx,
    sessions: &T,
    state: &mut WorkerState<S>,
) -> Verdict {
    let Some(Ok(h)) = buf
        .get_mut(start..start + FAST_LEN)
        .map(<&mut [u8; FAST_LEN]>::try_from)
    else {
        return fast_v4_full(buf, start, end, ctx, sessions, state);
    };
    let total_len = be16(h, F_IP + 2);
    let udp_len = be16(h, F_UDP + 4);
    let inner_len = be16(h, F_INNER + 2);
    // Outer IPv4 within the frame, UDP within it, to our port, holding the L2TP and PPP
    // headers and the inner IPv4 header, the inner packet within the UDP payload; both
    // header checksums correct. Non-short-circuit `&`: one branch.
    let ok = (total_len >= 20 + 8 + 6 + 4 + inner::IPV4_HEADER_LEN)
        & (F_IP + total_len <= end - start)
        & (be16(h, F_UDP + 2) == usize::from(ctx.l2tp_port))
        & (udp_len >= 8 + 6 + 4 + inner::IPV4_HEADER_LEN)
        & (F_UDP + udp_len <= F_IP + total_len)
        & (inner_len >= inner::IPV4_HEADER_LEN)
        & (F_INNER + inner_len <= F_UDP + udp_len)
        & csum::verify20(sub(h, F_IP))
        & csum::verify20(sub(h, F_INNER));
    if !ok {
        return fast_v4_full(buf, start, end, ctx, sessions, state);
    }
    let tunnel = be16(h, F_L2TP + 2) as u16;
    let session = be16(h, F_L2TP + 4) as u16;
    let Some(up) = sessions.up_v4_first(tunnel, session) else {
        return fast_v4_full(buf, start, end, ctx, sessions, state);
    };
    let outer_src = [h[F_IP + 12], h[F_IP + 13], h[F_IP + 14], h[F_IP + 15]];
    if up.has(flags::OUTER_IPV6)
        || outer_src != up.peer_v4
        || be16(h, F_UDP) != usize::from(up.peer_port)
    {
        return fast_v4_full(buf, start, end, ctx, sessions, state);
    }
    fast_v4_forward(buf, start, inner_len, ctx, sessions, up, state)
}

/// The common case once [`fast_shape`] holds, every check one by one in the general
/// parser's order (so with the same outcome for every input), with the complete session
/// lookup: the session and the inner packet's length when every check passed (steps 7
/// onwards are [`fast_v4_forward`]'s), else the verdict (not yet counted). Works on the
/// header octets as one fixed-size array (one bounds check; every offset below is a
/// constant).
#[inline(always)]
fn fast_v4_checks<T: Sessions>(
    buf: &[u8],
    start: usize,
    end: usize,
    ctx: &WorkerCtx,
    sessions: &T,
) -> Result<(UpstreamV4, usize), Verdict> {
    let Some(Ok(h)) = buf
        .get(start..start + FAST_LEN)
        .map(<&[u8; FAST_LEN]>::try_from)
    else {
        return Err(Verdict::Drop(DropReason::Truncated));
    };
    // Outer IPv4 (as `inner::ipv4`; version, IHL, protocol and fragment settled).
    let total_len = be16(h, F_IP + 2);
    if total_len < inner::IPV4_HEADER_LEN {
        return Err(Verdict::Drop(DropReason::BadLength));
    }
    let ip_end = start + F_IP + total_len;
    if ip_end > end {
        return Err(Verdict::Drop(DropReason::Truncated));
    }
    if !csum::verify20(sub(h, F_IP)) {
        return Err(Verdict::Drop(DropReason::BadChecksum));
    }
    // UDP.
    if total_len < 20 + 8 {
        return Err(Verdict::Drop(DropReason::Truncated));
    }
    if be16(h, F_UDP + 2) != usize::from(ctx.l2tp_port) {
        return Err(Verdict::Pass(DropReason::NotL2tp));
    }
    let udp_len = be16(h, F_UDP + 4);
    if udp_len < 8 {
        return Err(Verdict::Drop(DropReason::BadLength));
    }
    let l2_end = start + F_UDP + udp_len;
    if l2_end > ip_end {
        return Err(Verdict::Drop(DropReason::Truncated));
    }
    // L2TP: T, L, S, O clear, version 2; 6 octets.
    if udp_len < 8 + 6 {
        return Err(Verdict::Drop(DropReason::Truncated));
    }
    let tunnel = be16(h, F_L2TP + 2) as u16;
    let session = be16(h, F_L2TP + 4) as u16;
    let outer_src = [h[F_IP + 12], h[F_IP + 13], h[F_IP + 14], h[F_IP + 15]];
    let outer_sport = be16(h, F_UDP) as u16;

    let Some(up) = sessions.up_v4(tunnel, session) else {
        return Err(Verdict::Drop(DropReason::UnknownSession));
    };
    if up.has(flags::OUTER_IPV6) || outer_src != up.peer_v4 || outer_sport != up.peer_port {
        return Err(Verdict::Drop(DropReason::SpoofedOuterSource));
    }
    // PPP FF 03 00 21, then the inner IPv4 header (as `inner::ipv4`).
    if udp_len < 8 + 6 + 4 + inner::IPV4_HEADER_LEN {
        return Err(Verdict::Drop(DropReason::Truncated));
    }
    let inner_len = be16(h, F_INNER + 2);
    if inner_len < inner::IPV4_HEADER_LEN {
        return Err(Verdict::Drop(DropReason::BadLength));
    }
    if start + F_INNER + inner_len > l2_end {
        return Err(Verdict::Drop(DropReason::Truncated));
    }
    if !csum::verify20(sub(h, F_INNER)) {
        return Err(Verdict::Drop(DropReason::BadChecksum));
    }
    Ok((up, inner_len))
}

/// Steps 7 onwards of the common case, its headers validated: the inner IPv4 packet of
/// `inner_len` octets at `start + F_INNER`, of session `up`, whose outer source matched.
/// The subscriber's own address, not to the gateway, TTL above 1: TTL decremented, MSS
/// clamped, core Ethernet header written in front (as `inner_v4` and `forward_core`);
/// anything else goes to [`inner_v4_slow`] (nothing was modified yet). Drops are counted.
#[inline(always)]
fn fast_v4_forward<T: Sessions, S: SessionStats>(
    buf: &mut [u8],
    start: usize,
    inner_len: usize,
    ctx: &WorkerCtx,
    sessions: &T,
    up: UpstreamV4,
    state: &mut WorkerState<S>,
) -> Verdict {
    let inner_ip = start + F_INNER;
    let v4 = inner::V4 {
        header_len: inner::IPV4_HEADER_LEN,
        total_len: inner_len,
    };
    let Some(Ok(h)) = buf
        .get_mut(start..start + FAST_LEN)
        .map(<&mut [u8; FAST_LEN]>::try_from)
    else {
        return inner_v4_slow(buf, inner_ip, v4, ctx, sessions, up, state);
    };
    let Some(ih) = sub_mut(h, F_INNER) else {
        return inner_v4_slow(buf, inner_ip, v4, ctx, sessions, up, state);
    };
    // Step 7 (as `inner_v4`).
    let own = up.has(flags::HAS_IPV4) && ih[12..16] == up.subscriber_v4;
    if !own || ih[16..20] == ctx.gateway_v4 || ih[8] <= 1 {
        return inner_v4_slow(buf, inner_ip, v4, ctx, sessions, up, state);
    }
    // Step 8 (as `inner::decrement_ttl`).
    let checksum = csum::ttl_decremented(u16::from_be_bytes([ih[10], ih[11]]));
    ih[8] -= 1;
    ih[10..12].copy_from_slice(&checksum.to_be_bytes());
    let clamp = ih[9] == PROTO_TCP && u16::from_be_bytes([ih[6], ih[7]]) & 0x1fff == 0;
    // Step 9 (as `forward_core`): the core Ethernet header in front of the inner packet,
    // inside the outer headers.
    let eth_len = if ctx.core_vlan == 0 {
        let eth = F_INNER - 14;
        h[eth..eth + 6].copy_from_slice(&ctx.core_next_hop_mac.0);
        h[eth + 6..eth + 12].copy_from_slice(&ctx.core_mac.0);
        14
    } else {
        let eth = F_INNER - 18;
        h[eth..eth + 6].copy_from_slice(&ctx.core_next_hop_mac.0);
        h[eth + 6..eth + 12].copy_from_slice(&ctx.core_mac.0);
        h[eth + 12..eth + 14].copy_from_slice(&TPID_8021Q.to_be_bytes());
        h[eth + 14..eth + 16].copy_from_slice(&(ctx.core_vlan & 0x0fff).to_be_bytes());
        18
    };
    h[F_INNER - 2..F_INNER].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    if clamp {
        let tcp = inner_ip + inner::IPV4_HEADER_LEN;
        inner::clamp_mss(buf, tcp, inner_ip + inner_len, up.mtu.saturating_sub(40));
    }
    state.stats.upstream(up.slot, inner_len);
    Verdict::Forward {
        offset: inner_ip - eth_len,
        len: eth_len + inner_len,
    }
}

/// [`fast_v4_checks`] out of line, for what [`fast_v4`] does not settle itself. Drops are
/// counted.
#[inline(never)]
#[cold]
fn fast_v4_full<T: Sessions, S: SessionStats>(
    buf: &mut [u8],
    start: usize,
    end: usize,
    ctx: &WorkerCtx,
    sessions: &T,
    state: &mut WorkerState<S>,
) -> Verdict {
    match fast_v4_checks(buf, start, end, ctx, sessions) {
        Ok((up, inner_len)) => fast_v4_forward(buf, start, inner_len, ctx, sessions, up, state),
        Err(verdict) => finish(state, verdict),
    }
}

/// [`inner_v4`] out of line: the fast path's uncommon inner packets (routed sources, the
/// gateway address, TTL expiry). Drops are counted.
#[inline(never)]
#[cold]
fn inner_v4_slow<T: Sessions, S: SessionStats>(
    buf: &mut [u8],
    inner_ip: usize,
    v4: inner::V4,
    ctx: &WorkerCtx,
    sessions: &T,
    up: UpstreamV4,
    state: &mut WorkerState<S>,
) -> Verdict {
    let result = inner_v4(buf, inner_ip, v4, ctx, sessions, &up, state);
    counted(state, result)
}

/// Big-endian 16-bit field of `h` at the constant offset `at`.
#[inline(always)]
fn be16<const N: usize>(h: &[u8; N], at: usize) -> usize {
    match h.get(at..at + 2) {
        Some(&[a, b]) => usize::from(u16::from_be_bytes([a, b])),
        _ => 0,
    }
}

/// The 20 octets of `h` from `at`, mutable (a constant: the compiler settles the bounds).
#[inline(always)]
fn sub_mut<const N: usize>(h: &mut [u8; N], at: usize) -> Option<&mut [u8; 20]> {
    match h.get_mut(at..at + 20).map(<&mut [u8; 20]>::try_from) {
        Some(Ok(fixed)) => Some(fixed),
        _ => None,
    }
}

/// The 20 octets of `h` from `at` (a constant: the compiler checks the bounds).
#[inline(always)]
fn sub<const N: usize>(h: &[u8; N], at: usize) -> &[u8; 20] {
    match h.get(at..at + 20).map(<&[u8; 20]>::try_from) {
        Some(Ok(fixed)) => fixed,
        _ => &[0; 20],
    }
}

#[inline(always)]
fn peer_v4(record: &SessionHead) -> [u8; 4] {
    [
        record.peer_addr[0],
        record.peer_addr[1],
        record.peer_addr[2],
        record.peer_addr[3],
    ]
}

/// Write the core Ethernet header in front of the inner packet at `ip` and count it. The
/// outer headers were at least 49 bytes long, so the header always fits.
#[inline(always)]
fn forward_core<S: SessionStats>(
    buf: &mut [u8],
    ip: usize,
    ip_len: usize,
    ethertype: u16,
    ctx: &WorkerCtx,
    slot: u32,
    state: &mut WorkerState<S>,
) -> Verdict {
    let eth_len = if ctx.core_vlan == 0 { 14 } else { 18 };
    let out = ip - eth_len;
    buf[out..out + 6].copy_from_slice(&ctx.core_next_hop_mac.0);
    buf[out + 6..out + 12].copy_from_slice(&ctx.core_mac.0);
    if ctx.core_vlan != 0 {
        wr16(buf, out + 12, TPID_8021Q);
        wr16(buf, out + 14, ctx.core_vlan & 0x0fff);
    }
    wr16(buf, ip - 2, ethertype);
    state.stats.upstream(slot, ip_len);
    Verdict::Forward {
        offset: out,
        len: eth_len + ip_len,
    }
}

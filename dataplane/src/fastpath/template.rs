//! The downstream header template ("rewrite", as VPP calls it): built once by xlnsd when it
//! publishes a session, copied in front of every downstream packet by the worker.
//!
//! ```text
//! Ethernet (dst = LAC next hop, src = our access MAC, 0-2 VLAN tags from access_vlans)
//! IPv4 (IHL 5, DF, TTL 64, total length 0, checksum computed with total length 0)
//!   or IPv6 (hop limit 64, payload length 0)
//! UDP (local_port -> peer_port, length 0, checksum 0)
//! L2TP data header (RFC 2661 §3.1): Ver 2, T=0, L=0, O=0, P=0; S=1 with Ns = Nr = 0
//!   when the session has SEQUENCING (the worker fills Ns per packet)
//! PPP: 0xFF 0x03 unless ACFC (RFC 1661 §6.6), protocol 0x0021 (0x21 with PFC,
//!   RFC 1661 §6.5); the worker rewrites the protocol's last octet to 0x57 for IPv6
//! ```
//!
//! Two VLAN tags are written as 802.1ad (0x88A8) outer and 802.1Q inner; one tag as
//! 802.1Q. The IPv4 checksum field holds the checksum of the header with total length 0,
//! so the worker patches it incrementally with the real length (RFC 1624); the IPv6
//! outer UDP checksum (mandatory, RFC 8200 §8.1) is computed in full per packet.
//!
//! The record stores the template right-aligned and its layout (outer IP, UDP, L2TP
//! Length and Ns offsets) precomputed from the VLAN count, OUTER_IPV6 and the template's
//! own L2TP flags ([`SessionRecord::derive_template_layout`], done by the shared-memory
//! writer), so a template with L, S or O set by other means is patched correctly too.
//! [`encapsulate`] is the per-packet half: the lookup has already copied the template in
//! front of the packet; it patches lengths, checksums and Ns at the stored offsets.

use super::{DropReason, SessionStats, csum, rd16, wr16};
use crate::session::{Downstream, SessionRecord, TEMPLATE_CAPACITY, TemplateLayout, flags};
use crate::wire::EthernetAddress;
use crate::wire::l2tp::{self, HeaderKind, HeaderRepr, Sequence};
use crate::wire::ppp;

use super::inner::{IPV4_HEADER_LEN, IPV6_HEADER_LEN, PROTO_UDP};

const TTL: u8 = 64;
const UDP_HEADER_LEN: usize = 8;

fn vlan_count(access_vlans: [u16; 2]) -> usize {
    match access_vlans {
        [0, _] => 0,
        [_, 0] => 1,
        _ => 2,
    }
}

/// Build the template for `record` (see the module documentation); returns the field,
/// right-aligned, and the valid length, to store in `record.template` /
/// `record.template_len` (the shared-memory writer then derives the layout; or use
/// [`SessionRecord::set_template`]).
pub fn build_template(
    record: &SessionRecord,
    our_mac: EthernetAddress,
    next_hop_mac: EthernetAddress,
) -> ([u8; TEMPLATE_CAPACITY], u8) {
    let mut t = [0u8; TEMPLATE_CAPACITY];
    t[0..6].copy_from_slice(&next_hop_mac.0);
    t[6..12].copy_from_slice(&our_mac.0);
    let mut at = 12;
    let tpids: &[u16] = match vlan_count(record.access_vlans) {
        0 => &[],
        1 => &[0x8100],
        _ => &[0x88a8, 0x8100],
    };
    for (tpid, vid) in tpids.iter().zip(record.access_vlans) {
        wr16(&mut t, at, *tpid);
        wr16(&mut t, at + 2, vid & 0x0fff);
        at += 4;
    }
    let ip = at + 2;
    let udp = if record.has(flags::OUTER_IPV6) {
        wr16(&mut t, at, 0x86dd);
        t[ip] = 0x60;
        t[ip + 6] = PROTO_UDP;
        t[ip + 7] = TTL;
        t[ip + 8..ip + 24].copy_from_slice(&record.local_addr);
        t[ip + 24..ip + 40].copy_from_slice(&record.peer_addr);
        ip + IPV6_HEADER_LEN
    } else {
        wr16(&mut t, at, 0x0800);
        t[ip] = 0x45;
        wr16(&mut t, ip + 6, 0x4000);
        t[ip + 8] = TTL;
        t[ip + 9] = PROTO_UDP;
        t[ip + 12..ip + 16].copy_from_slice(&record.local_addr[..4]);
        t[ip + 16..ip + 20].copy_from_slice(&record.peer_addr[..4]);
        let checksum = csum::finish(csum::sum(&t[ip..ip + IPV4_HEADER_LEN]));
        wr16(&mut t, ip + 10, checksum);
        ip + IPV4_HEADER_LEN
    };
    wr16(&mut t, udp, record.local_port);
    wr16(&mut t, udp + 2, record.peer_port);
    let l2tp_at = udp + UDP_HEADER_LEN;
    let header = HeaderRepr {
        tunnel_id: record.peer_tunnel,
        session_id: record.peer_session,
        kind: HeaderKind::Data {
            length: false,
            sequence: record
                .has(flags::SEQUENCING)
                .then_some(Sequence { ns: 0, nr: 0 }),
            offset_size: None,
            priority: false,
        },
    };
    header.emit(&mut l2tp::Packet::new_unchecked(&mut t[l2tp_at..]), 0);
    let ppp_at = l2tp_at + header.buffer_len();
    let ppp_header = ppp::HeaderRepr {
        address_control: !record.has(flags::ACFC),
        protocol: ppp::protocol::IPV4,
        compressed: record.has(flags::PFC),
    };
    ppp_header.emit(&mut t[ppp_at..]);
    let len = ppp_at + ppp_header.buffer_len();
    // Stored right-aligned (see `SessionRecord::template`).
    let mut right = [0u8; TEMPLATE_CAPACITY];
    right[TEMPLATE_CAPACITY - len..].copy_from_slice(&t[..len]);
    (right, len as u8)
}

/// Write `record`'s template in front of the IP packet at `buf[ip..]` (when it fits; if
/// not, [`encapsulate`] says `no-headroom`) and return its [`Downstream`]: the slow way in,
/// for packets that did not come through a downstream lookup (echo replies).
#[inline]
pub(super) fn place_record(
    buf: &mut [u8],
    ip: usize,
    slot: u32,
    record: &SessionRecord,
) -> Downstream {
    let t = record.template_bytes();
    if let Some(at) = ip.checked_sub(t.len()) {
        if let Some(dst) = buf.get_mut(at..ip) {
            dst.copy_from_slice(t);
        }
    }
    Downstream {
        slot,
        epoch: record.epoch,
        mtu: record.mtu,
        layout: TemplateLayout::of(&record.head()),
    }
}

/// Patch the session's template, already written in front of the IP packet at
/// `buf[ip..ip + ip_len]` (by the lookup, [`super::Sessions::down_v4`]): outer IPv4 total
/// length and checksum (incremental from the template's, RFC 1624) or IPv6 payload
/// length, UDP length (and the UDP checksum over IPv6, RFC 8200 §8.1), L2TP Length when L
/// is set, Ns when S is set, and the PPP protocol for an IPv6 inner packet. Every offset
/// comes from the precomputed [`TemplateLayout`]. Returns the frame's (offset, length).
#[inline(always)]
pub(super) fn encapsulate<S: SessionStats>(
    buf: &mut [u8],
    ip: usize,
    ip_len: usize,
    inner_v6: bool,
    d: &Downstream,
    stats: &mut S,
) -> Result<(usize, usize), DropReason> {
    let l = d.layout;
    let len = usize::from(l.len);
    let udp = usize::from(l.udp);
    let Some(udp_header_len) = len.checked_sub(udp) else {
        return Err(DropReason::BadTemplate);
    };
    if len == 0 {
        return Err(DropReason::BadTemplate);
    }
    if ip < len {
        return Err(DropReason::NoHeadroom);
    }
    if ip + ip_len > buf.len() {
        return Err(DropReason::Truncated);
    }
    let out = ip - len;
    let udp_len = udp_header_len + ip_len;
    if udp_len > usize::from(u16::MAX) - IPV4_HEADER_LEN {
        return Err(DropReason::TooBig);
    }
    let t = &mut buf[out..ip];
    let outer_ip = usize::from(l.ip);
    if l.v6 {
        wr16(t, outer_ip + 4, udp_len as u16);
    } else {
        let total = (udp_len + IPV4_HEADER_LEN) as u16;
        wr16(t, outer_ip + 2, total);
        // The template's checksum covers total length 0.
        let checksum = csum::add16(rd16(t, outer_ip + 10), total);
        wr16(t, outer_ip + 10, checksum);
    }
    wr16(t, udp + 4, udp_len as u16);
    if l.length_at != 0 {
        let l2tp = udp + UDP_HEADER_LEN;
        wr16(t, usize::from(l.length_at), (len - l2tp + ip_len) as u16);
    }
    if l.ns_at != 0 {
        wr16(t, usize::from(l.ns_at), stats.next_ns(d.slot, d.epoch));
    }
    if inner_v6 {
        if let Some(last) = t.last_mut() {
            *last = ppp::protocol::IPV6 as u8;
        }
    }
    if l.v6 {
        let outer_ip = out + outer_ip;
        let udp = out + udp;
        // RFC 8200 §8.1: pseudo-header (addresses, upper-layer length, next header) + UDP.
        let acc = csum::sum(&buf[outer_ip + 8..outer_ip + 40])
            + udp_len as u64
            + u64::from(PROTO_UDP)
            + csum::sum(&buf[udp..udp + udp_len]);
        let checksum = match csum::finish(acc) {
            0 => 0xffff,
            checksum => checksum,
        };
        wr16(buf, udp + 6, checksum);
    }
    Ok((out, len + ip_len))
}

//! The frames the generator sends and the stamp the sink reads back.
//!
//! ```text
//! upstream   Ethernet | IPv4 LAC->LNS | UDP lac_port->lns_port (checksum 0)
//!            | L2TP data header 0x0002 tunnel session (RFC 2661 §3.1, no L/S/O)
//!            | PPP FF 03 00 21 (RFC 1661 §2, RFC 1332 §2) | inner IPv4 | UDP | payload
//! downstream Ethernet | IPv4 server->subscriber | UDP | payload
//! payload    filler ... | stamp (the last STAMP_LEN octets of the frame)
//! ```
//!
//! Sizes are the length of the subscriber's IP packet (the inner packet upstream, the
//! whole IP packet downstream): the same packet is measured on either side of the LNS.
//! Every IPv4 header checksum is filled in (RFC 791 §3.1); UDP checksums are 0 ("none",
//! RFC 768), which L2TP over UDP/IPv4 allows and the LNS does not check.
//!
//! The stamp sits at the end of the frame, so the sink finds it whatever was put in front
//! (L2TP-encapsulated by the LNS, stripped by it, or forwarded whole by the bare
//! forwarder). Frames are never shorter than 60 octets here (the smallest is 14 + 64),
//! so no Ethernet padding moves the end.

use std::net::Ipv4Addr;

use super::session::TrafficSession;

/// Octets of the stamp.
pub const STAMP_LEN: usize = 24;
/// Marks a stamp (ASCII "XLNS").
pub const STAMP_MAGIC: u32 = 0x584c_4e53;
/// Flow bit of downstream stamps.
pub const FLOW_DOWN: u32 = 1 << 31;
/// Smallest IP packet that holds IPv4 + UDP + stamp.
pub const MIN_IP_LEN: usize = IPV4_LEN + UDP_LEN + STAMP_LEN;
/// Largest IP packet (the veth MTU of the core side).
pub const MAX_IP_LEN: usize = 1500;

const ETH_LEN: usize = 14;
const IPV4_LEN: usize = 20;
const UDP_LEN: usize = 8;
const L2TP_LEN: usize = 6;
const PPP_LEN: usize = 4;
/// Outer headers in front of the inner IP packet upstream.
pub const UP_OVERHEAD: usize = ETH_LEN + IPV4_LEN + UDP_LEN + L2TP_LEN + PPP_LEN;
/// Headers in front of the IP packet downstream.
pub const DOWN_OVERHEAD: usize = ETH_LEN;

/// Inner UDP ports: subscriber side and server side.
pub const SUBSCRIBER_PORT: u16 = 4000;
pub const SERVER_PORT: u16 = 5000;

/// What is read from a stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Session index, with [`FLOW_DOWN`] for downstream packets.
    pub flow: u32,
    pub seq: u64,
    /// CLOCK_MONOTONIC when the generator wrote the frame, ns.
    pub tx_ns: u64,
}

impl Stamp {
    /// Write the stamp at the end of `frame`.
    #[inline]
    pub fn write(&self, frame: &mut [u8]) {
        let Some(at) = frame.len().checked_sub(STAMP_LEN) else {
            return;
        };
        let s = &mut frame[at..];
        s[0..4].copy_from_slice(&self.flow.to_be_bytes());
        s[4..12].copy_from_slice(&self.seq.to_be_bytes());
        s[12..20].copy_from_slice(&self.tx_ns.to_be_bytes());
        s[20..24].copy_from_slice(&STAMP_MAGIC.to_be_bytes());
    }

    /// The stamp at the end of `frame`, or `None` when there is none.
    #[inline]
    pub fn read(frame: &[u8]) -> Option<Stamp> {
        let at = frame.len().checked_sub(STAMP_LEN)?;
        let s = frame.get(at..)?;
        let word = |r: core::ops::Range<usize>| -> u64 {
            s[r].iter().fold(0u64, |acc, b| acc << 8 | u64::from(*b))
        };
        if word(20..24) != u64::from(STAMP_MAGIC) {
            return None;
        }
        Some(Stamp {
            flow: word(0..4) as u32,
            seq: word(4..12),
            tx_ns: word(12..20),
        })
    }
}

/// The Ethernet and IP addresses of the rig.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Macs {
    /// The LAC's interface (upstream source).
    pub lac: [u8; 6],
    /// The LNS's access interface (upstream destination).
    pub lns_access: [u8; 6],
    /// The server's interface (downstream source).
    pub server: [u8; 6],
    /// The LNS's core interface (downstream destination).
    pub lns_core: [u8; 6],
}

/// RFC 1071 checksum of `data` (even length here).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in data.chunks(2) {
        let hi = u32::from(pair[0]) << 8;
        let lo = pair.get(1).map_or(0, |b| u32::from(*b));
        sum += hi | lo;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// IPv4 (IHL 5, DF, TTL 64, UDP) + UDP header (checksum 0) at `buf[..28]` for an IP
/// packet of `ip_len` octets.
#[inline]
fn ipv4_udp(buf: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, ip_len: usize) {
    let h = &mut buf[..IPV4_LEN + UDP_LEN];
    h[0] = 0x45;
    h[1] = 0;
    h[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
    h[4..6].copy_from_slice(&[0, 0]);
    h[6..8].copy_from_slice(&[0x40, 0]);
    h[8] = 64;
    h[9] = 17;
    h[10..12].copy_from_slice(&[0, 0]);
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    let c = checksum(&h[..IPV4_LEN]);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h[20..22].copy_from_slice(&sport.to_be_bytes());
    h[22..24].copy_from_slice(&dport.to_be_bytes());
    h[24..26].copy_from_slice(&((ip_len - IPV4_LEN) as u16).to_be_bytes());
    h[26..28].copy_from_slice(&[0, 0]);
}

/// Write an upstream frame for `s` carrying an inner IP packet of `ip_len` octets to
/// `server` into `buf`; returns the frame length (0 when `buf` is too short or `ip_len`
/// out of range). Filler octets are left as they are.
#[inline]
pub fn write_upstream(
    buf: &mut [u8],
    macs: &Macs,
    s: &TrafficSession,
    server: Ipv4Addr,
    ip_len: usize,
    stamp: Stamp,
) -> usize {
    let len = UP_OVERHEAD + ip_len;
    if !(MIN_IP_LEN..=MAX_IP_LEN).contains(&ip_len) || buf.len() < len {
        return 0;
    }
    let f = &mut buf[..len];
    f[0..6].copy_from_slice(&macs.lns_access);
    f[6..12].copy_from_slice(&macs.lac);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let outer_len = len - ETH_LEN;
    ipv4_udp(
        &mut f[ETH_LEN..],
        s.lac_addr,
        s.lns_addr,
        s.lac_port,
        s.lns_port,
        outer_len,
    );
    let l2tp = ETH_LEN + IPV4_LEN + UDP_LEN;
    // RFC 2661 §3.1: T=0, L=0, S=0, O=0, P=0, Ver=2; Tunnel ID and Session ID are the
    // recipient's (the LNS's) ids.
    f[l2tp..l2tp + 2].copy_from_slice(&0x0002u16.to_be_bytes());
    f[l2tp + 2..l2tp + 4].copy_from_slice(&s.tunnel_id.to_be_bytes());
    f[l2tp + 4..l2tp + 6].copy_from_slice(&s.session_id.to_be_bytes());
    // RFC 1662 §3.1 address/control, RFC 1332 §2 protocol 0x0021 (IPv4).
    f[l2tp + 6..l2tp + 10].copy_from_slice(&[0xff, 0x03, 0x00, 0x21]);
    let inner = l2tp + L2TP_LEN + PPP_LEN;
    ipv4_udp(
        &mut f[inner..],
        s.subscriber,
        server,
        SUBSCRIBER_PORT,
        SERVER_PORT,
        ip_len,
    );
    stamp.write(f);
    len
}

/// Write a downstream frame (server to `s`'s subscriber, an IP packet of `ip_len`
/// octets) into `buf`; returns the frame length (0 as for [`write_upstream`]).
#[inline]
pub fn write_downstream(
    buf: &mut [u8],
    macs: &Macs,
    s: &TrafficSession,
    server: Ipv4Addr,
    ip_len: usize,
    stamp: Stamp,
) -> usize {
    let len = DOWN_OVERHEAD + ip_len;
    if !(MIN_IP_LEN..=MAX_IP_LEN).contains(&ip_len) || buf.len() < len {
        return 0;
    }
    let f = &mut buf[..len];
    f[0..6].copy_from_slice(&macs.lns_core);
    f[6..12].copy_from_slice(&macs.server);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    ipv4_udp(
        &mut f[ETH_LEN..],
        server,
        s.subscriber,
        SERVER_PORT,
        SUBSCRIBER_PORT,
        ip_len,
    );
    stamp.write(f);
    len
}

/// Packet sizes of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sizes {
    /// Every IP packet this long.
    Fixed(u16),
    /// Simple IMIX: 7 : 4 : 1 of 64, 594 and 1500-octet IP packets (the usual 64 / 594 /
    /// 1518, the largest capped at the 1500-octet MTU of the rig's links).
    Imix,
}

/// The simple IMIX cycle, interleaved (12 packets: 7 x 64, 4 x 594, 1 x 1500).
const IMIX_CYCLE: [u16; 12] = [64, 594, 64, 64, 594, 64, 1500, 64, 594, 64, 64, 594];

impl Sizes {
    /// Size of the `n`-th packet.
    #[inline]
    pub fn nth(&self, n: u64) -> usize {
        match *self {
            Sizes::Fixed(len) => usize::from(len),
            Sizes::Imix => usize::from(IMIX_CYCLE[(n % IMIX_CYCLE.len() as u64) as usize]),
        }
    }

    /// Parse "64", "1400", "imix".
    pub fn parse(text: &str) -> Result<Sizes, String> {
        if text.eq_ignore_ascii_case("imix") {
            return Ok(Sizes::Imix);
        }
        let len: u16 = text
            .parse()
            .map_err(|_| format!("packet size {text}: a number of octets or imix"))?;
        if !(MIN_IP_LEN..=MAX_IP_LEN).contains(&usize::from(len)) {
            return Err(format!(
                "packet size {len}: between {MIN_IP_LEN} and {MAX_IP_LEN} octets"
            ));
        }
        Ok(Sizes::Fixed(len))
    }

    pub fn label(&self) -> String {
        match self {
            Sizes::Fixed(len) => len.to_string(),
            Sizes::Imix => "imix".to_owned(),
        }
    }
}

/// The length of the subscriber's IP packet in a frame the sink received: the IPv4 total
/// length of the frame's IP packet (`l2tp == false`, the core side), or of the inner IP
/// packet of an L2TP data message (`l2tp == true`, the access side: Ethernet (802.1Q
/// allowed) | IPv4 | UDP | L2TP data header with any of L, S, O (RFC 2661 §3.1) | PPP
/// with or without address/control, full or compressed protocol (RFC 1661 §6.5, §6.6) |
/// IPv4 or IPv6). `None` when the frame is not such a packet or is truncated.
pub fn sink_ip_len(frame: &[u8], l2tp: bool) -> Option<usize> {
    let be16 = |at: usize| -> Option<usize> {
        Some(usize::from(u16::from_be_bytes([
            *frame.get(at)?,
            *frame.get(at + 1)?,
        ])))
    };
    let mut at = ETH_LEN;
    let mut ethertype = be16(12)?;
    if ethertype == 0x8100 {
        ethertype = be16(16)?;
        at += 4;
    }
    if ethertype != 0x0800 {
        return None;
    }
    if !l2tp {
        return be16(at + 2);
    }
    let ihl = usize::from(frame.get(at)? & 0x0f) * 4;
    at += ihl + UDP_LEN;
    let flags = be16(at)?;
    if flags & 0x8000 != 0 {
        // A control message.
        return None;
    }
    let mut l2tp_len = 6;
    if flags & 0x4000 != 0 {
        l2tp_len += 2;
    }
    if flags & 0x0800 != 0 {
        l2tp_len += 4;
    }
    if flags & 0x0200 != 0 {
        l2tp_len += 2 + be16(at + l2tp_len)?;
    }
    at += l2tp_len;
    if frame.get(at..at + 2)? == [0xff, 0x03] {
        at += 2;
    }
    let protocol = if frame.get(at)? & 1 == 1 {
        at += 1;
        usize::from(frame[at - 1])
    } else {
        at += 2;
        be16(at - 2)?
    };
    match protocol {
        0x21 => be16(at + 2),
        // IPv6: payload length + the fixed header.
        0x57 => be16(at + 4).map(|l| l + 40),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use xlns_dataplane::wire::frame::{Checksums, parse};

    fn session() -> TrafficSession {
        TrafficSession {
            tunnel_id: 7,
            session_id: 9,
            peer_tunnel_id: 1007,
            peer_session_id: 1009,
            lac_addr: Ipv4Addr::new(10, 1, 0, 1),
            lac_port: 1701,
            lns_addr: Ipv4Addr::new(10, 1, 0, 2),
            lns_port: 1701,
            subscriber: Ipv4Addr::new(100, 64, 0, 5),
            gateway: None,
        }
    }

    const MACS: Macs = Macs {
        lac: [2, 0, 0, 0, 0, 1],
        lns_access: [2, 0, 0, 0, 0, 2],
        server: [2, 0, 0, 0, 0, 3],
        lns_core: [2, 0, 0, 0, 0, 4],
    };
    const SERVER: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 2);

    #[test]
    fn upstream_frame_parses_as_l2tp_ppp_ipv4() {
        let stamp = Stamp {
            flow: 3,
            seq: 0x0102_0304_0506,
            tx_ns: 99,
        };
        let mut buf = [0u8; 2048];
        let len = write_upstream(&mut buf, &MACS, &session(), SERVER, 64, stamp);
        assert_eq!(len, UP_OVERHEAD + 64);
        let outer = parse(&buf[..len], Checksums::Verify).unwrap();
        assert_eq!(outer.repr.dst_port, 1701);
        let l2tp = outer.payload;
        assert_eq!(l2tp[..6], [0x00, 0x02, 0, 7, 0, 9]);
        assert_eq!(l2tp[6..10], [0xff, 0x03, 0x00, 0x21]);
        // The inner packet behind a fresh Ethernet header parses and verifies too.
        let mut inner = MACS.lac.to_vec();
        inner.extend_from_slice(&MACS.server);
        inner.extend_from_slice(&[8, 0]);
        inner.extend_from_slice(&l2tp[10..]);
        let inner_frame = parse(&inner, Checksums::Verify).unwrap();
        assert_eq!(inner_frame.repr.dst_port, SERVER_PORT);
        assert_eq!(inner.len() - 14, 64);
        assert_eq!(Stamp::read(&buf[..len]), Some(stamp));
    }

    #[test]
    fn downstream_frame_parses_and_carries_the_stamp() {
        let stamp = Stamp {
            flow: 5 | FLOW_DOWN,
            seq: 1,
            tx_ns: u64::MAX,
        };
        let mut buf = [0u8; 2048];
        let len = write_downstream(&mut buf, &MACS, &session(), SERVER, 1400, stamp);
        assert_eq!(len, 14 + 1400);
        let f = parse(&buf[..len], Checksums::Verify).unwrap();
        assert_eq!(f.repr.src_port, SERVER_PORT);
        assert_eq!(f.repr.dst_port, SUBSCRIBER_PORT);
        assert_eq!(Stamp::read(&buf[..len]), Some(stamp));
    }

    #[test]
    fn sizes_out_of_range_are_refused() {
        let mut buf = [0u8; 2048];
        let st = Stamp {
            flow: 0,
            seq: 0,
            tx_ns: 0,
        };
        assert_eq!(
            write_upstream(&mut buf, &MACS, &session(), SERVER, 40, st),
            0
        );
        assert_eq!(
            write_downstream(&mut buf, &MACS, &session(), SERVER, 1501, st),
            0
        );
        assert!(Sizes::parse("40").is_err());
        assert_eq!(Sizes::parse("IMIX"), Ok(Sizes::Imix));
        let mix: Vec<usize> = (0..12).map(|n| Sizes::Imix.nth(n)).collect();
        assert_eq!(mix.iter().filter(|&&l| l == 64).count(), 7);
        assert_eq!(mix.iter().filter(|&&l| l == 594).count(), 4);
        assert_eq!(mix.iter().filter(|&&l| l == 1500).count(), 1);
    }

    #[test]
    fn frames_without_a_stamp_read_as_none() {
        assert_eq!(Stamp::read(&[0u8; 10]), None);
        assert_eq!(Stamp::read(&[0u8; 100]), None);
    }

    #[test]
    fn sink_ip_len_reads_the_subscriber_packet_behind_any_l2tp_and_ppp_header() {
        let stamp = Stamp {
            flow: 1,
            seq: 1,
            tx_ns: 1,
        };
        let mut buf = [0u8; 2048];
        let len = write_upstream(&mut buf, &MACS, &session(), SERVER, 100, stamp);
        assert_eq!(sink_ip_len(&buf[..len], true), Some(100));
        let len = write_downstream(&mut buf, &MACS, &session(), SERVER, 77, stamp);
        assert_eq!(sink_ip_len(&buf[..len], false), Some(77));
        // L and S set, offset 3 with padding, no address/control, compressed protocol.
        let up = write_upstream(&mut buf, &MACS, &session(), SERVER, 90, stamp);
        let l2tp = ETH_LEN + IPV4_LEN + UDP_LEN;
        let mut frame = buf[..l2tp].to_vec();
        frame.extend_from_slice(&[
            0x4a, 0x02, 0, 0, 0, 7, 0, 9, 0, 1, 0, 2, 0, 3, 0xaa, 0xbb, 0xcc,
        ]);
        frame.push(0x21);
        frame.extend_from_slice(&buf[l2tp + L2TP_LEN + PPP_LEN..up]);
        assert_eq!(sink_ip_len(&frame, true), Some(90));
        // A control message, a truncated frame, an ARP frame.
        frame[l2tp] = 0xc8;
        assert_eq!(sink_ip_len(&frame, true), None);
        assert_eq!(sink_ip_len(&frame[..l2tp + 3], true), None);
        frame[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(sink_ip_len(&frame, false), None);
    }
}

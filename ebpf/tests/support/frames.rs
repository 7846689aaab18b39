//! Frame builders for the fixtures: Ethernet/IP/UDP from `xlns_dataplane::wire::frame`,
//! L2TP and PPP by hand (so that every flag combination, including odd ones, can be
//! written), and a few non-L2TP frames.
#![allow(clippy::unwrap_used, clippy::panic, dead_code)]

use std::net::{Ipv4Addr, Ipv6Addr};

use xlns_dataplane::wire::EthernetAddress;
use xlns_dataplane::wire::ethernet::{Tpid, VlanTag, Vlans};
use xlns_dataplane::wire::frame::{IpAddrs, UdpFrameRepr};

pub const LAC_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
pub const LNS_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x02]);
pub const LAC_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const LNS_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
pub const LAC_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
pub const LNS_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

/// L2TP flag bits (RFC 2661 §3.1).
pub const T: u16 = 0x8000;
pub const L: u16 = 0x4000;
pub const S: u16 = 0x0800;
pub const O: u16 = 0x0200;
pub const P: u16 = 0x0100;

pub const PPP_IPV4: u16 = 0x0021;
pub const PPP_IPV6: u16 = 0x0057;

/// The VLAN stacks the fixtures use.
pub fn vlan_variants() -> [(&'static str, Vlans); 4] {
    [
        ("untagged", Vlans::Untagged),
        ("802.1Q", Vlans::Single(VlanTag::new(Tpid::Dot1Q, 100))),
        (
            "QinQ 88a8",
            Vlans::Double([
                VlanTag::new(Tpid::Dot1Ad, 10),
                VlanTag::new(Tpid::Dot1Q, 20),
            ]),
        ),
        (
            "QinQ 9100",
            Vlans::Double([
                VlanTag::new(Tpid::QinQ9100, 11),
                VlanTag::new(Tpid::Dot1Q, 21),
            ]),
        ),
    ]
}

/// Outer addresses LAC -> LNS.
pub fn v4() -> IpAddrs {
    IpAddrs::V4 {
        src: LAC_V4,
        dst: LNS_V4,
    }
}

pub fn v6() -> IpAddrs {
    IpAddrs::V6 {
        src: LAC_V6,
        dst: LNS_V6,
    }
}

/// Ethernet (+ tags) / IP / UDP `src_port -> dst_port` around `payload`.
pub fn udp(vlans: Vlans, ip: IpAddrs, src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let repr = UdpFrameRepr {
        dst_mac: LNS_MAC,
        src_mac: LAC_MAC,
        vlans,
        ip,
        hop_limit: 64,
        src_port,
        dst_port,
    };
    let mut buf = vec![0; repr.buffer_len(payload.len())];
    let len = repr.emit(payload, &mut buf).unwrap();
    buf.truncate(len);
    buf
}

/// An untagged IPv4 frame to UDP port 1701.
pub fn l2tp_v4(payload: &[u8]) -> Vec<u8> {
    udp(Vlans::Untagged, v4(), 1701, 1701, payload)
}

/// An L2TP header with `flags` (version 2 is added), the optional fields they announce,
/// and `pad` bytes of offset padding when O is set; then `payload`. Length, when present,
/// covers the whole message.
pub fn l2tp(flags: u16, pad: u16, payload: &[u8]) -> Vec<u8> {
    l2tp_with_version(flags, 2, pad, payload)
}

pub fn l2tp_with_version(flags: u16, version: u16, pad: u16, payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&(flags | version).to_be_bytes());
    let length_at = (flags & L != 0).then(|| {
        m.extend_from_slice(&[0, 0]);
        2
    });
    m.extend_from_slice(&0x1234u16.to_be_bytes()); // tunnel id
    m.extend_from_slice(&0x5678u16.to_be_bytes()); // session id
    if flags & S != 0 {
        m.extend_from_slice(&7u16.to_be_bytes()); // Ns
        m.extend_from_slice(&9u16.to_be_bytes()); // Nr
    }
    if flags & O != 0 {
        m.extend_from_slice(&pad.to_be_bytes());
        m.extend(std::iter::repeat_n(0xAA, usize::from(pad)));
    }
    m.extend_from_slice(payload);
    if let Some(at) = length_at {
        let len = u16::try_from(m.len()).unwrap();
        m[at..at + 2].copy_from_slice(&len.to_be_bytes());
    }
    m
}

/// An L2TP control message (T, L, S set: RFC 2661 §3.1) holding one Message Type AVP.
pub fn l2tp_control(message_type: u16) -> Vec<u8> {
    // M bit, length 8, vendor 0, attribute 0 (Message Type), value.
    let mut avp = vec![0x80, 0x08, 0, 0, 0, 0];
    avp.extend_from_slice(&message_type.to_be_bytes());
    l2tp(T | L | S, 0, &avp)
}

/// A PPP frame: `ff 03` when `address_control`, the protocol compressed to one byte when
/// `compress` (only for protocols below 0x100), then `payload`.
pub fn ppp(address_control: bool, compress: bool, protocol: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    if address_control {
        f.extend_from_slice(&[0xff, 0x03]);
    }
    if compress {
        assert!(protocol < 0x100, "only protocols below 0x100 compress");
        f.push(protocol as u8);
    } else {
        f.extend_from_slice(&protocol.to_be_bytes());
    }
    f.extend_from_slice(payload);
    f
}

/// A subscriber's IPv4 packet (ICMP echo 10.20.0.5 -> 198.51.100.7).
pub fn inner_ipv4() -> Vec<u8> {
    let mut p = vec![
        0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 1, 0, 0, 10, 20, 0, 5, 198, 51, 100, 7,
    ];
    p.extend_from_slice(&[8, 0, 0xf7, 0xff, 0, 0, 0, 0]);
    p
}

/// A subscriber's IPv6 packet (ICMPv6 echo, no payload).
pub fn inner_ipv6() -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0, 0, 8, 58, 64];
    p.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 5).octets());
    p.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 7).octets());
    p.extend_from_slice(&[128, 0, 0, 0, 0, 0, 0, 0]);
    p
}

/// An LCP Configure-Request with no options (RFC 1661 §5.1).
pub fn lcp_conf_req() -> Vec<u8> {
    vec![1, 1, 0, 4]
}

fn ethernet(vlans: Vlans, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&LNS_MAC.0);
    f.extend_from_slice(&LAC_MAC.0);
    for tag in vlans.as_slice() {
        f.extend_from_slice(&tag.tpid.as_u16().to_be_bytes());
        f.extend_from_slice(&tag.tci().to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An ARP request (RFC 826) who-has LNS_V4.
pub fn arp_request(vlans: Vlans) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1];
    a.extend_from_slice(&LAC_MAC.0);
    a.extend_from_slice(&LAC_V4.octets());
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&LNS_V4.octets());
    ethernet(vlans, 0x0806, &a)
}

/// Any EtherType around an opaque payload.
pub fn raw_ethernet(vlans: Vlans, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    ethernet(vlans, ethertype, payload)
}

/// An IPv6 packet `src -> dst` with next header `nh` around `payload` (no checksum).
pub fn ipv6(vlans: Vlans, src: Ipv6Addr, dst: Ipv6Addr, nh: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&u16::try_from(payload.len()).unwrap().to_be_bytes());
    p.extend_from_slice(&[nh, 255]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    ethernet(vlans, 0x86dd, &p)
}

/// An ICMPv6 message of `icmp_type` (code 0, body of 20 zero bytes, no checksum).
pub fn icmpv6(vlans: Vlans, dst: Ipv6Addr, icmp_type: u8) -> Vec<u8> {
    let mut m = vec![icmp_type, 0, 0, 0];
    m.extend_from_slice(&[0; 20]);
    ipv6(vlans, LAC_V6, dst, 58, &m)
}

/// An IPv4 packet `src -> dst` of `protocol`, with `options` (a multiple of 4 bytes),
/// fragment word `frag` (flags and offset), around `payload`; the header checksum is
/// filled in.
pub fn ipv4(
    vlans: Vlans,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    options: &[u8],
    frag: u16,
    payload: &[u8],
) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0);
    let ihl = 5 + options.len() / 4;
    let total = ihl * 4 + payload.len();
    let mut h = vec![0x40 | ihl as u8, 0];
    h.extend_from_slice(&u16::try_from(total).unwrap().to_be_bytes());
    h.extend_from_slice(&[0, 1]);
    h.extend_from_slice(&frag.to_be_bytes());
    h.extend_from_slice(&[64, protocol, 0, 0]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h.extend_from_slice(options);
    let sum = h
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum::<u32>();
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    h.extend_from_slice(payload);
    ethernet(vlans, 0x0800, &h)
}

/// A UDP header + payload (checksum 0: "none", RFC 768) for [`ipv4`] / [`ipv6`].
pub fn udp_segment(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let mut s = Vec::new();
    s.extend_from_slice(&src_port.to_be_bytes());
    s.extend_from_slice(&dst_port.to_be_bytes());
    s.extend_from_slice(&u16::try_from(8 + payload.len()).unwrap().to_be_bytes());
    s.extend_from_slice(&[0, 0]);
    s.extend_from_slice(payload);
    s
}

//! Worker tests through in-memory packet I/O: frames are built with the `wire` builders
//! and smoltcp, run through `process_upstream` / `process_downstream`, and the output is
//! compared byte for byte with frames built independently, then parsed back with
//! smoltcp's checksum verification.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    Icmpv4DstUnreachable, Icmpv4Message, Icmpv4Packet, Icmpv4Repr, Icmpv6Message, Icmpv6Packet,
    IpAddress, TcpPacket,
};

use super::*;
use crate::session::{SessionRecord, flags};
use crate::wire::ethernet::{self, EthernetProtocol, Tpid, VlanTag, Vlans};
use crate::wire::frame::{self, Checksums, IpAddrs, UdpFrameRepr};
use crate::wire::l2tp::{self, HeaderKind, HeaderRepr, Sequence};
use crate::wire::{IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, UdpPacket, ppp};

const HEADROOM: usize = 256;
const PORT: u16 = 1701;
const LAC_PORT: u16 = 50000;
const LAC_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x0a]);
const LNS_ACCESS_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
const CORE_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x11]);
const CORE_NEXT_HOP: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x12]);
const LAC_V4: [u8; 4] = [192, 0, 2, 10];
const LNS_V4: [u8; 4] = [192, 0, 2, 1];
const SUB_V4: [u8; 4] = [100, 64, 0, 5];
const GATEWAY_V4: [u8; 4] = [100, 64, 0, 1];
const SERVER_V4: [u8; 4] = [10, 255, 1, 2];
const ICMP_SRC_V4: [u8; 4] = [10, 255, 0, 1];
const TUNNEL: u16 = 7;
const SESSION: u16 = 9;
const PEER_TUNNEL: u16 = 0x0b0b;
const PEER_SESSION: u16 = 0x0c0c;
const MTU: u16 = 1400;

fn v6(text: &str) -> [u8; 16] {
    text.parse::<Ipv6Addr>().unwrap().octets()
}

fn lac_v6() -> [u8; 16] {
    v6("2001:db8::a")
}
fn lns_v6() -> [u8; 16] {
    v6("2001:db8::1")
}
fn sub_v6() -> [u8; 16] {
    v6("2001:db8:1:5::1234")
}
fn server_v6() -> [u8; 16] {
    v6("2001:db8:ffff::2")
}

fn ctx() -> WorkerCtx {
    WorkerCtx {
        l2tp_port: PORT,
        core_mac: CORE_MAC,
        core_next_hop_mac: CORE_NEXT_HOP,
        core_vlan: 0,
        gateway_v4: GATEWAY_V4,
        icmp_src_v4: ICMP_SRC_V4,
        icmp_src_v6: v6("2001:db8:ffff::1"),
    }
}

fn record(outer_v6: bool, extra: u32, vlans: [u16; 2]) -> SessionRecord {
    let mut peer_addr = [0; 16];
    let mut local_addr = [0; 16];
    if outer_v6 {
        peer_addr = lac_v6();
        local_addr = lns_v6();
    } else {
        peer_addr[..4].copy_from_slice(&LAC_V4);
        local_addr[..4].copy_from_slice(&LNS_V4);
    }
    let mut record = SessionRecord {
        local_tunnel: TUNNEL,
        local_session: SESSION,
        peer_tunnel: PEER_TUNNEL,
        peer_session: PEER_SESSION,
        flags: flags::HAS_IPV4
            | flags::HAS_IPV6
            | extra
            | if outer_v6 { flags::OUTER_IPV6 } else { 0 },
        peer_addr,
        local_addr,
        peer_port: LAC_PORT,
        local_port: PORT,
        mtu: MTU,
        access_vlans: vlans,
        subscriber_v4: SUB_V4,
        subscriber_v6_prefix: v6("2001:db8:1:5::"),
        subscriber_v6_len: 64,
        ..SessionRecord::EMPTY
    };
    let (template, len) = build_template(&record, LNS_ACCESS_MAC, LAC_MAC);
    record.template = template;
    record.template_len = len;
    record
}

fn table(records: &[SessionRecord]) -> MemSessions {
    let mut sessions = MemSessions::with_capacity(records.len());
    for record in records {
        sessions.insert(*record);
    }
    sessions
}

fn state() -> WorkerState<SlotStats> {
    WorkerState::new(SlotStats::new(16))
}

fn ip_address(bytes: &[u8]) -> IpAddress {
    match bytes.len() {
        4 => IpAddress::Ipv4(Ipv4Addr::from(<[u8; 4]>::try_from(bytes).unwrap())),
        _ => IpAddress::Ipv6(Ipv6Addr::from(<[u8; 16]>::try_from(bytes).unwrap())),
    }
}

/// An IP packet (version from the address length) around `l4`, with the IPv4 header
/// checksum and the TCP / UDP / ICMP checksum filled by smoltcp.
fn ip_packet(src: &[u8], dst: &[u8], ttl: u8, protocol: u8, l4: &[u8]) -> Vec<u8> {
    let caps = ChecksumCapabilities::default();
    let header_len = if src.len() == 4 { 20 } else { 40 };
    let mut packet = vec![0; header_len + l4.len()];
    packet[header_len..].copy_from_slice(l4);
    let next_header = IpProtocol::from(protocol);
    if src.len() == 4 {
        Ipv4Repr {
            src_addr: Ipv4Addr::from(<[u8; 4]>::try_from(src).unwrap()),
            dst_addr: Ipv4Addr::from(<[u8; 4]>::try_from(dst).unwrap()),
            next_header,
            payload_len: l4.len(),
            hop_limit: ttl,
        }
        .emit(&mut Ipv4Packet::new_unchecked(&mut packet[..]), &caps);
    } else {
        Ipv6Repr {
            src_addr: Ipv6Addr::from(<[u8; 16]>::try_from(src).unwrap()),
            dst_addr: Ipv6Addr::from(<[u8; 16]>::try_from(dst).unwrap()),
            next_header,
            payload_len: l4.len(),
            hop_limit: ttl,
        }
        .emit(&mut Ipv6Packet::new_unchecked(&mut packet[..]));
    }
    let (s, d) = (ip_address(src), ip_address(dst));
    let l4 = &mut packet[header_len..];
    match protocol {
        6 => TcpPacket::new_unchecked(l4).fill_checksum(&s, &d),
        17 => UdpPacket::new_unchecked(l4).fill_checksum(&s, &d),
        1 => Icmpv4Packet::new_unchecked(l4).fill_checksum(),
        58 => {
            let (IpAddress::Ipv6(s), IpAddress::Ipv6(d)) = (s, d) else {
                panic!("ICMPv6 over IPv4")
            };
            Icmpv6Packet::new_unchecked(l4).fill_checksum(&s, &d)
        }
        _ => {}
    }
    packet
}

/// A UDP datagram with `payload_len` bytes of payload (checksum filled by `ip_packet`).
fn udp(payload_len: usize) -> Vec<u8> {
    let mut l4 = vec![0; 8 + payload_len];
    l4[0..2].copy_from_slice(&40000u16.to_be_bytes());
    l4[2..4].copy_from_slice(&53u16.to_be_bytes());
    l4[4..6].copy_from_slice(&((8 + payload_len) as u16).to_be_bytes());
    for (i, byte) in l4[8..].iter_mut().enumerate() {
        *byte = i as u8;
    }
    l4
}

/// A 64-byte inner IPv4 packet from the subscriber (or to it, with `to_subscriber`).
fn inner_v4(ttl: u8, to_subscriber: bool) -> Vec<u8> {
    let (src, dst) = if to_subscriber {
        (SERVER_V4, SUB_V4)
    } else {
        (SUB_V4, SERVER_V4)
    };
    ip_packet(&src, &dst, ttl, 17, &udp(64 - 28))
}

/// A 64-byte inner IPv6 packet from the subscriber (or to it).
fn inner_v6(hop_limit: u8, to_subscriber: bool) -> Vec<u8> {
    let (src, dst) = if to_subscriber {
        (server_v6(), sub_v6())
    } else {
        (sub_v6(), server_v6())
    };
    ip_packet(&src, &dst, hop_limit, 17, &udp(64 - 48))
}

/// A TCP segment with the given flags and options (padded to a multiple of 4 with EOL).
fn tcp(flags: u8, options: &[u8]) -> Vec<u8> {
    let options_len = options.len().div_ceil(4) * 4;
    let mut l4 = vec![0; 20 + options_len];
    l4[0..2].copy_from_slice(&40000u16.to_be_bytes());
    l4[2..4].copy_from_slice(&443u16.to_be_bytes());
    l4[4..8].copy_from_slice(&1u32.to_be_bytes());
    l4[12] = (((20 + options_len) / 4) << 4) as u8;
    l4[13] = flags;
    l4[14..16].copy_from_slice(&65535u16.to_be_bytes());
    l4[20..20 + options.len()].copy_from_slice(options);
    l4
}

fn with_ttl_decremented(packet: &[u8]) -> Vec<u8> {
    let mut packet = packet.to_vec();
    if packet[0] >> 4 == 4 {
        let mut view = Ipv4Packet::new_unchecked(&mut packet[..]);
        view.set_hop_limit(view.hop_limit() - 1);
        view.fill_checksum();
    } else {
        packet[7] -= 1;
    }
    packet
}

#[derive(Debug, Clone, Copy)]
struct L2tpVariant {
    length: bool,
    sequence: bool,
    offset: Option<u16>,
    priority: bool,
}

const L2TP_VARIANTS: [L2tpVariant; 7] = [
    L2tpVariant {
        length: false,
        sequence: false,
        offset: None,
        priority: false,
    },
    L2tpVariant {
        length: true,
        sequence: false,
        offset: None,
        priority: false,
    },
    L2tpVariant {
        length: false,
        sequence: true,
        offset: None,
        priority: false,
    },
    L2tpVariant {
        length: false,
        sequence: false,
        offset: Some(0),
        priority: false,
    },
    L2tpVariant {
        length: false,
        sequence: false,
        offset: Some(3),
        priority: false,
    },
    L2tpVariant {
        length: false,
        sequence: false,
        offset: None,
        priority: true,
    },
    L2tpVariant {
        length: true,
        sequence: true,
        offset: Some(5),
        priority: true,
    },
];

/// An L2TP data message carrying `inner` under PPP `protocol`.
fn l2tp_message(
    tunnel: u16,
    session: u16,
    variant: L2tpVariant,
    ppp_header: ppp::HeaderRepr,
    inner: &[u8],
) -> Vec<u8> {
    let header = HeaderRepr {
        tunnel_id: tunnel,
        session_id: session,
        kind: HeaderKind::Data {
            length: variant.length,
            sequence: variant.sequence.then_some(Sequence { ns: 17, nr: 4 }),
            offset_size: variant.offset,
            priority: variant.priority,
        },
    };
    let header_len = header.buffer_len();
    let payload_len = ppp_header.buffer_len() + inner.len();
    let mut message = vec![0; header_len + payload_len];
    header.emit(
        &mut l2tp::Packet::new_unchecked(&mut message[..]),
        payload_len,
    );
    // Non-zero pad bytes: they must be skipped, not read.
    if let Some(size) = variant.offset {
        let fixed = l2tp::header_len_from_flags(header.flags_word());
        message[fixed..fixed + usize::from(size)].fill(0xee);
    }
    ppp_header.emit(&mut message[header_len..]);
    message[header_len + ppp_header.buffer_len()..].copy_from_slice(inner);
    message
}

fn ppp_ipv(v6: bool, address_control: bool, compressed: bool) -> ppp::HeaderRepr {
    ppp::HeaderRepr {
        address_control,
        protocol: if v6 {
            ppp::protocol::IPV6
        } else {
            ppp::protocol::IPV4
        },
        compressed,
    }
}

fn vlans(count: usize) -> Vlans {
    match count {
        0 => Vlans::Untagged,
        1 => Vlans::Single(VlanTag::new(Tpid::Dot1Q, 100)),
        _ => Vlans::Double([
            VlanTag::new(Tpid::Dot1Ad, 100),
            VlanTag::new(Tpid::Dot1Q, 200),
        ]),
    }
}

fn record_vlans(count: usize) -> [u16; 2] {
    match count {
        0 => [0, 0],
        1 => [100, 0],
        _ => [100, 200],
    }
}

/// Ethernet / IP / UDP from the LAC to our L2TP port around `payload`.
fn access_frame(outer_v6: bool, vlan_count: usize, payload: &[u8]) -> Vec<u8> {
    let repr = UdpFrameRepr {
        dst_mac: LNS_ACCESS_MAC,
        src_mac: LAC_MAC,
        vlans: vlans(vlan_count),
        ip: if outer_v6 {
            IpAddrs::V6 {
                src: Ipv6Addr::from(lac_v6()),
                dst: Ipv6Addr::from(lns_v6()),
            }
        } else {
            IpAddrs::V4 {
                src: Ipv4Addr::from(LAC_V4),
                dst: Ipv4Addr::from(LNS_V4),
            }
        },
        hop_limit: 64,
        src_port: LAC_PORT,
        dst_port: PORT,
    };
    let mut frame = vec![0; repr.buffer_len(payload.len())];
    repr.emit(payload, &mut frame).unwrap();
    frame
}

/// Insert a 4-byte IPv4 option (router alert, RFC 2113) into the outer IPv4 header.
fn with_ip_options(frame: &[u8], eth_len: usize) -> Vec<u8> {
    let mut out = frame[..eth_len + 20].to_vec();
    out.extend_from_slice(&[0x94, 0x04, 0x00, 0x00]);
    out.extend_from_slice(&frame[eth_len + 20..]);
    let mut ip = Ipv4Packet::new_unchecked(&mut out[eth_len..]);
    ip.set_header_len(24);
    ip.set_total_len(ip.total_len() + 4);
    ip.fill_checksum();
    out
}

/// A core-side frame toward the subscriber.
fn core_frame(vlan_count: usize, inner: &[u8]) -> Vec<u8> {
    let repr = ethernet::Repr {
        dst: CORE_MAC,
        src: CORE_NEXT_HOP,
        vlans: vlans(vlan_count),
        ethertype: if inner[0] >> 4 == 6 {
            EthernetProtocol::Ipv6
        } else {
            EthernetProtocol::Ipv4
        },
    };
    let mut frame = vec![0; repr.buffer_len()];
    repr.emit(&mut ethernet::Packet::new_unchecked(&mut frame[..]));
    frame.extend_from_slice(inner);
    frame
}

fn buffer(frame: &[u8], headroom: usize) -> Vec<u8> {
    let mut buf = vec![0u8; headroom + frame.len() + 64];
    buf[headroom..headroom + frame.len()].copy_from_slice(frame);
    buf
}

fn run_up(
    frame: &[u8],
    sessions: &impl Sessions,
    state: &mut WorkerState<impl SessionStats>,
) -> (Verdict, Vec<u8>) {
    let mut buf = buffer(frame, HEADROOM);
    let verdict = process_upstream(&mut buf, HEADROOM, frame.len(), &ctx(), sessions, state);
    (verdict, buf)
}

fn run_down_at(
    frame: &[u8],
    headroom: usize,
    now_ns: u64,
    sessions: &impl Sessions,
    state: &mut WorkerState<impl SessionStats>,
) -> (Verdict, Vec<u8>) {
    let mut buf = buffer(frame, headroom);
    let verdict = process_downstream(
        &mut buf,
        headroom,
        frame.len(),
        now_ns,
        &ctx(),
        sessions,
        state,
    );
    (verdict, buf)
}

fn run_down(
    frame: &[u8],
    sessions: &impl Sessions,
    state: &mut WorkerState<impl SessionStats>,
) -> (Verdict, Vec<u8>) {
    run_down_at(frame, HEADROOM, 0, sessions, state)
}

fn forwarded(verdict: Verdict, buf: &[u8]) -> &[u8] {
    match verdict {
        Verdict::Forward { offset, len } => &buf[offset..offset + len],
        other => panic!("expected Forward, got {other:?}"),
    }
}

fn replied(verdict: Verdict, buf: &[u8]) -> &[u8] {
    match verdict {
        Verdict::Reply { offset, len } => &buf[offset..offset + len],
        other => panic!("expected Reply, got {other:?}"),
    }
}

fn core_ethernet(v6: bool) -> Vec<u8> {
    let mut header = Vec::new();
    header.extend_from_slice(&CORE_NEXT_HOP.0);
    header.extend_from_slice(&CORE_MAC.0);
    header.extend_from_slice(if v6 { &[0x86, 0xdd] } else { &[0x08, 0x00] });
    header
}

/// Checks the inner packet's IPv4 header checksum and L4 checksum with smoltcp.
fn assert_inner_checksums(packet: &[u8]) {
    if packet[0] >> 4 == 4 {
        let ip = Ipv4Packet::new_checked(packet).unwrap();
        assert!(ip.verify_checksum(), "inner IPv4 checksum");
        let (src, dst) = (
            IpAddress::Ipv4(ip.src_addr()),
            IpAddress::Ipv4(ip.dst_addr()),
        );
        match u8::from(ip.next_header()) {
            6 => assert!(
                TcpPacket::new_checked(ip.payload())
                    .unwrap()
                    .verify_checksum(&src, &dst)
            ),
            17 => assert!(
                UdpPacket::new_checked(ip.payload())
                    .unwrap()
                    .verify_checksum(&src, &dst)
            ),
            1 => assert!(
                Icmpv4Packet::new_checked(ip.payload())
                    .unwrap()
                    .verify_checksum()
            ),
            _ => {}
        }
    } else {
        let ip = Ipv6Packet::new_checked(packet).unwrap();
        let (src, dst) = (
            IpAddress::Ipv6(ip.src_addr()),
            IpAddress::Ipv6(ip.dst_addr()),
        );
        match u8::from(ip.next_header()) {
            6 => assert!(
                TcpPacket::new_checked(ip.payload())
                    .unwrap()
                    .verify_checksum(&src, &dst)
            ),
            17 => assert!(
                UdpPacket::new_checked(ip.payload())
                    .unwrap()
                    .verify_checksum(&src, &dst)
            ),
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------
// Templates.

#[test]
fn template_known_answer_ipv4_untagged() {
    let record = record(false, 0, [0, 0]);
    // Hand-computed: the checksum over 4500 0000 0000 4000 4011 0000 c000 0201 c000 020a
    // (total length 0) is !0x491e = 0xb6e1.
    let expected = concat!(
        "02000000000a",
        "020000000001",
        "0800",
        "4500",
        "0000",
        "0000",
        "4000",
        "4011",
        "b6e1",
        "c0000201",
        "c000020a",
        "06a5",
        "c350",
        "0000",
        "0000",
        "0002",
        "0b0b",
        "0c0c",
        "ff03",
        "0021",
    );
    assert_eq!(hex::encode(record.template_bytes()), expected);
    // Right-aligned: zeros in front of the valid octets.
    assert!(
        record.template[..crate::session::TEMPLATE_CAPACITY - usize::from(record.template_len)]
            .iter()
            .all(|&b| b == 0)
    );
}

#[test]
fn template_variants_parse_back() {
    for outer_v6 in [false, true] {
        for vlan_count in 0..3 {
            for extra in [
                0,
                flags::SEQUENCING,
                flags::ACFC,
                flags::PFC,
                flags::ACFC | flags::PFC | flags::SEQUENCING,
            ] {
                let record = record(outer_v6, extra, record_vlans(vlan_count));
                let t = record.template_bytes();
                let eth = ethernet::Packet::new_checked(t).unwrap();
                assert_eq!(eth.vlan_count(), vlan_count);
                let ip_len = if outer_v6 { 40 } else { 20 };
                let l2tp_at = eth.header_len() + ip_len + 8;
                let packet = l2tp::Packet::new_checked(&t[l2tp_at..]).unwrap();
                let header = HeaderRepr::parse(&packet).unwrap();
                assert_eq!(
                    (header.tunnel_id, header.session_id),
                    (PEER_TUNNEL, PEER_SESSION)
                );
                assert!(!packet.has_length() && !packet.has_offset() && !packet.priority());
                assert_eq!(packet.has_sequence(), extra & flags::SEQUENCING != 0);
                let ppp_bytes = &t[l2tp_at + packet.header_len()..];
                let ppp =
                    ppp::HeaderRepr::parse(&ppp::Packet::new_checked(ppp_bytes).unwrap()).unwrap();
                assert_eq!(ppp.protocol, ppp::protocol::IPV4);
                assert_eq!(ppp.address_control, extra & flags::ACFC == 0);
                assert_eq!(ppp.buffer_len(), ppp_bytes.len());
                let expected_len =
                    14 + 4 * vlan_count + ip_len + 8 + packet.header_len() + ppp.buffer_len();
                assert_eq!(usize::from(record.template_len), expected_len);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Upstream.

#[test]
fn upstream_decap_every_header_variant_byte_exact() {
    let mut cases = 0;
    for outer_v6 in [false, true] {
        for options in [false, true] {
            if outer_v6 && options {
                continue;
            }
            for vlan_count in 0..3 {
                for variant in L2TP_VARIANTS {
                    for (address_control, compressed) in
                        [(true, false), (true, true), (false, false), (false, true)]
                    {
                        for inner_is_v6 in [false, true] {
                            let record = record(outer_v6, 0, [0, 0]);
                            let sessions = table(&[record]);
                            let mut state = state();
                            let inner = if inner_is_v6 {
                                inner_v6(64, false)
                            } else {
                                inner_v4(64, false)
                            };
                            let message = l2tp_message(
                                TUNNEL,
                                SESSION,
                                variant,
                                ppp_ipv(inner_is_v6, address_control, compressed),
                                &inner,
                            );
                            let mut frame = access_frame(outer_v6, vlan_count, &message);
                            if options {
                                frame = with_ip_options(&frame, 14 + 4 * vlan_count);
                            }
                            // Ethernet padding after the datagram is not forwarded.
                            frame.extend_from_slice(&[0xab; 6]);
                            let (verdict, buf) = run_up(&frame, &sessions, &mut state);
                            let out = forwarded(verdict, &buf);
                            let mut expected = core_ethernet(inner_is_v6);
                            expected.extend_from_slice(&with_ttl_decremented(&inner));
                            assert_eq!(
                                hex::encode(out),
                                hex::encode(&expected),
                                "outer v6 {outer_v6} options {options} vlans {vlan_count} \
                                 {variant:?} ac {address_control} pfc {compressed} v6 {inner_is_v6}"
                            );
                            assert_inner_checksums(&out[14..]);
                            let counters = state.stats.get(0).unwrap();
                            assert_eq!((counters.up_packets, counters.up_bytes), (1, 64));
                            assert_eq!(state.drops.total(), 0);
                            cases += 1;
                        }
                    }
                }
            }
        }
    }
    assert_eq!(cases, 3 * 3 * 7 * 4 * 2);
}

#[test]
fn upstream_core_vlan_tag() {
    let record = record(false, 0, [0, 0]);
    let sessions = table(&[record]);
    let inner = inner_v4(64, false);
    let frame = access_frame(
        false,
        0,
        &l2tp_message(
            TUNNEL,
            SESSION,
            L2TP_VARIANTS[0],
            ppp_ipv(false, true, false),
            &inner,
        ),
    );
    let mut buf = buffer(&frame, HEADROOM);
    let mut ctx = ctx();
    ctx.core_vlan = 42;
    let verdict = process_upstream(
        &mut buf,
        HEADROOM,
        frame.len(),
        &ctx,
        &sessions,
        &mut state(),
    );
    let out = forwarded(verdict, &buf);
    assert_eq!(
        hex::encode(&out[..18]),
        "0200000000120200000000118100002a0800"
    );
    assert_eq!(out[18..], with_ttl_decremented(&inner)[..]);
}

fn up_frame(record_outer_v6: bool, inner: &[u8]) -> Vec<u8> {
    let v6 = inner[0] >> 4 == 6;
    access_frame(
        record_outer_v6,
        0,
        &l2tp_message(
            TUNNEL,
            SESSION,
            L2TP_VARIANTS[0],
            ppp_ipv(v6, true, false),
            inner,
        ),
    )
}

#[test]
fn upstream_spoofed_ids_and_sources_are_dropped() {
    let record = record(false, 0, [0, 0]);
    let mut other = record;
    other.local_tunnel = 8;
    other.local_session = 10;
    other.peer_addr[..4].copy_from_slice(&[192, 0, 2, 99]);
    let sessions = table(&[record, other]);
    let inner = inner_v4(64, false);
    let mut state = state();
    let cases: [(u16, u16, DropReason); 4] = [
        (TUNNEL, SESSION + 1, DropReason::UnknownSession),
        (TUNNEL + 100, SESSION, DropReason::UnknownSession),
        (0, 0, DropReason::UnknownSession),
        // Another tunnel's valid ids, sent from this LAC's address.
        (8, 10, DropReason::SpoofedOuterSource),
    ];
    for (tunnel, session, reason) in cases {
        let frame = access_frame(
            false,
            0,
            &l2tp_message(
                tunnel,
                session,
                L2TP_VARIANTS[0],
                ppp_ipv(false, true, false),
                &inner,
            ),
        );
        assert_eq!(
            run_up(&frame, &sessions, &mut state).0,
            Verdict::Drop(reason)
        );
    }
    // Right ids, wrong UDP source port.
    let mut frame = up_frame(false, &inner);
    let udp_at = 14 + 20;
    frame[udp_at..udp_at + 2].copy_from_slice(&50001u16.to_be_bytes());
    assert_eq!(
        run_up(&frame, &sessions, &mut state).0,
        Verdict::Drop(DropReason::SpoofedOuterSource)
    );
    // Right ids over IPv6 for an IPv4 tunnel.
    let frame = up_frame(true, &inner);
    assert_eq!(
        run_up(&frame, &sessions, &mut state).0,
        Verdict::Drop(DropReason::SpoofedOuterSource)
    );
    // Inner sources that are not the subscriber's.
    let spoofed_v4 = ip_packet(&[100, 64, 0, 6], &SERVER_V4, 64, 17, &udp(8));
    let spoofed_v6 = ip_packet(&v6("2001:db8:1:6::1"), &server_v6(), 64, 17, &udp(8));
    for inner in [spoofed_v4, spoofed_v6] {
        let frame = up_frame(false, &inner);
        assert_eq!(
            run_up(&frame, &sessions, &mut state).0,
            Verdict::Drop(DropReason::SpoofedInnerSource)
        );
    }
    // A session without IPv6 refuses every IPv6 source.
    let mut v4_only = record;
    v4_only.flags &= !flags::HAS_IPV6;
    let sessions_v4 = table(&[v4_only]);
    let frame = up_frame(false, &inner_v6(64, false));
    assert_eq!(
        run_up(&frame, &sessions_v4, &mut state).0,
        Verdict::Drop(DropReason::SpoofedInnerSource)
    );
    assert_eq!(state.drops.get(DropReason::UnknownSession), 3);
    assert_eq!(state.drops.get(DropReason::SpoofedOuterSource), 3);
    assert_eq!(state.drops.get(DropReason::SpoofedInnerSource), 3);
    assert_eq!(state.stats.get(0).unwrap().up_packets, 0);
}

#[test]
fn ttl_and_hop_limit() {
    let sessions = table(&[record(false, 0, [0, 0])]);
    let mut state = state();
    // TTL 2 leaves with 1.
    let (verdict, buf) = run_up(&up_frame(false, &inner_v4(2, false)), &sessions, &mut state);
    assert_eq!(forwarded(verdict, &buf)[14 + 8], 1);
    for inner in [inner_v4(1, false), inner_v4(0, false), inner_v6(1, false)] {
        let (verdict, _) = run_up(&up_frame(false, &inner), &sessions, &mut state);
        assert_eq!(verdict, Verdict::Drop(DropReason::TtlExpired));
    }
    for inner in [inner_v4(1, true), inner_v6(1, true)] {
        let (verdict, _) = run_down(&core_frame(0, &inner), &sessions, &mut state);
        assert_eq!(verdict, Verdict::Drop(DropReason::TtlExpired));
    }
    assert_eq!(state.drops.get(DropReason::TtlExpired), 5);
    // TTL 255 checksum carry (RFC 1624's corner case) still verifies.
    let (verdict, buf) = run_up(
        &up_frame(false, &inner_v4(255, false)),
        &sessions,
        &mut state,
    );
    let out = forwarded(verdict, &buf);
    assert!(
        Ipv4Packet::new_checked(&out[14..])
            .unwrap()
            .verify_checksum()
    );
}

/// The MSS value in a forwarded SYN, and whether its TCP checksum verifies.
fn mss_after(direction_up: bool, v6: bool, flags: u8, options: &[u8]) -> (Option<u16>, Vec<u8>) {
    let sessions = table(&[record(false, 0, [0, 0])]);
    let mut state = state();
    let segment = tcp(flags, options);
    let (src, dst): (Vec<u8>, Vec<u8>) = match (v6, direction_up) {
        (false, true) => (SUB_V4.to_vec(), SERVER_V4.to_vec()),
        (false, false) => (SERVER_V4.to_vec(), SUB_V4.to_vec()),
        (true, true) => (sub_v6().to_vec(), server_v6().to_vec()),
        (true, false) => (server_v6().to_vec(), sub_v6().to_vec()),
    };
    let inner = ip_packet(&src, &dst, 64, 6, &segment);
    let out = if direction_up {
        let (verdict, buf) = run_up(&up_frame(false, &inner), &sessions, &mut state);
        forwarded(verdict, &buf)[14..].to_vec()
    } else {
        let (verdict, buf) = run_down(&core_frame(0, &inner), &sessions, &mut state);
        let out = forwarded(verdict, &buf);
        out[out.len() - inner.len()..].to_vec()
    };
    assert_inner_checksums(&out);
    let ip_len = if v6 { 40 } else { 20 };
    let tcp_out = &out[ip_len..];
    let mut mss = None;
    let mut at = 20;
    while at < usize::from(tcp_out[12] >> 4) * 4 {
        match tcp_out[at] {
            0 => break,
            1 => at += 1,
            2 => {
                mss = Some(u16::from_be_bytes([tcp_out[at + 2], tcp_out[at + 3]]));
                break;
            }
            _ if tcp_out[at + 1] < 2 => break,
            _ => at += usize::from(tcp_out[at + 1]),
        }
    }
    (mss, out)
}

#[test]
fn mss_clamping() {
    const SYN: u8 = 0x02;
    const SYN_ACK: u8 = 0x12;
    const ACK: u8 = 0x10;
    let mss_1460 = [2, 4, 0x05, 0xb4];
    for up in [true, false] {
        // IPv4: MTU 1400 - 40.
        assert_eq!(mss_after(up, false, SYN, &mss_1460).0, Some(1360));
        assert_eq!(mss_after(up, false, SYN_ACK, &mss_1460).0, Some(1360));
        // IPv6: MTU 1400 - 60.
        assert_eq!(mss_after(up, true, SYN, &mss_1460).0, Some(1340));
        // Below the clamp: unchanged.
        assert_eq!(mss_after(up, false, SYN, &[2, 4, 0x04, 0x00]).0, Some(1024));
        // Not a SYN: unchanged.
        assert_eq!(mss_after(up, false, ACK, &mss_1460).0, Some(1460));
        // MSS at an odd offset (after one NOP) and after window scale + SACK-permitted:
        // the incremental checksum update still verifies (asserted in mss_after).
        assert_eq!(
            mss_after(up, false, SYN, &[1, 2, 4, 0x05, 0xb4]).0,
            Some(1360)
        );
        assert_eq!(
            mss_after(up, true, SYN, &[3, 3, 7, 4, 2, 1, 2, 4, 0x23, 0x28]).0,
            Some(1340)
        );
        // Malformed options (length 0) are left alone.
        let (mss, _) = mss_after(up, false, SYN, &[9, 0, 2, 4, 0x05, 0xb4]);
        assert_eq!(mss, None);
    }
    // Byte-exact against a SYN built with MSS 1360 from the start.
    let (_, out) = mss_after(true, false, SYN, &mss_1460);
    let expected = with_ttl_decremented(&ip_packet(
        &SUB_V4,
        &SERVER_V4,
        64,
        6,
        &tcp(SYN, &[2, 4, 0x05, 0x50]),
    ));
    assert_eq!(out, expected);
}

#[test]
fn pass_verdicts_upstream() {
    let sessions = table(&[record(false, 0, [0, 0])]);
    let mut state = state();
    // LCP Echo-Request, IPCP: control protocols go to the kernel.
    for protocol in [
        ppp::protocol::LCP,
        ppp::protocol::IPCP,
        ppp::protocol::IPV6CP,
    ] {
        let header = ppp::HeaderRepr {
            address_control: true,
            protocol,
            compressed: false,
        };
        let message = l2tp_message(
            TUNNEL,
            SESSION,
            L2TP_VARIANTS[0],
            header,
            &[9, 1, 0, 8, 0, 0, 0, 0],
        );
        let (verdict, buf) = run_up(&access_frame(false, 0, &message), &sessions, &mut state);
        assert_eq!(verdict, Verdict::Pass(DropReason::PppControl));
        // Pass leaves the frame untouched.
        let frame = access_frame(false, 0, &message);
        assert_eq!(&buf[HEADROOM..HEADROOM + frame.len()], &frame[..]);
    }
    // Router solicitation to ff02::2 from fe80::.
    let rs = ip_packet(
        &v6("fe80::1"),
        &v6("ff02::2"),
        255,
        58,
        &[133, 0, 0, 0, 0, 0, 0, 0],
    );
    assert_eq!(
        run_up(&up_frame(false, &rs), &sessions, &mut state).0,
        Verdict::Pass(DropReason::Ipv6LinkLocal)
    );
    let to_link_local = ip_packet(&sub_v6(), &v6("fe80::1"), 64, 17, &udp(8));
    assert_eq!(
        run_up(&up_frame(false, &to_link_local), &sessions, &mut state).0,
        Verdict::Pass(DropReason::Ipv6LinkLocal)
    );
    assert_eq!(state.drops.total(), 0, "passes are not counted as drops");
}

// ---------------------------------------------------------------------------------------
// Downstream.

/// The frame the LAC should receive for `inner` (already TTL-decremented), built with the
/// generic frame builder and L2TP / PPP reprs.
fn expected_encap(
    record: &SessionRecord,
    vlan_count: usize,
    inner: &[u8],
    ns: Option<u16>,
) -> Vec<u8> {
    let outer_v6 = record.has(flags::OUTER_IPV6);
    let inner_v6 = inner[0] >> 4 == 6;
    let header = HeaderRepr {
        tunnel_id: PEER_TUNNEL,
        session_id: PEER_SESSION,
        kind: HeaderKind::Data {
            length: false,
            sequence: ns.map(|ns| Sequence { ns, nr: 0 }),
            offset_size: None,
            priority: false,
        },
    };
    let ppp_header = ppp_ipv(inner_v6, !record.has(flags::ACFC), record.has(flags::PFC));
    let mut message = vec![0; header.buffer_len() + ppp_header.buffer_len()];
    header.emit(&mut l2tp::Packet::new_unchecked(&mut message[..]), 0);
    ppp_header.emit(&mut message[header.buffer_len()..]);
    message.extend_from_slice(inner);
    let repr = UdpFrameRepr {
        dst_mac: LAC_MAC,
        src_mac: LNS_ACCESS_MAC,
        vlans: vlans(vlan_count),
        ip: if outer_v6 {
            IpAddrs::V6 {
                src: Ipv6Addr::from(lns_v6()),
                dst: Ipv6Addr::from(lac_v6()),
            }
        } else {
            IpAddrs::V4 {
                src: Ipv4Addr::from(LNS_V4),
                dst: Ipv4Addr::from(LAC_V4),
            }
        },
        hop_limit: 64,
        src_port: PORT,
        dst_port: LAC_PORT,
    };
    let mut frame = vec![0; repr.buffer_len(message.len())];
    repr.emit(&message, &mut frame).unwrap();
    if !outer_v6 {
        // IPv4 outer: UDP checksum 0 (RFC 768, optional over IPv4).
        let at = repr.header_len() - 2;
        frame[at..at + 2].fill(0);
    }
    frame
}

#[test]
fn downstream_encap_every_template_variant_byte_exact() {
    let mut cases = 0;
    for outer_v6 in [false, true] {
        for vlan_count in 0..3 {
            for extra in [
                0,
                flags::SEQUENCING,
                flags::ACFC,
                flags::PFC,
                flags::ACFC | flags::PFC,
                flags::SEQUENCING | flags::ACFC | flags::PFC,
            ] {
                for inner_is_v6 in [false, true] {
                    for core_vlans in [0, 2] {
                        let record = record(outer_v6, extra, record_vlans(vlan_count));
                        let sessions = table(&[record]);
                        let mut state = state();
                        let inner = if inner_is_v6 {
                            inner_v6(64, true)
                        } else {
                            inner_v4(64, true)
                        };
                        for packet in 0..3u16 {
                            let mut frame = core_frame(core_vlans, &inner);
                            frame.extend_from_slice(&[0; 4]);
                            let (verdict, buf) = run_down(&frame, &sessions, &mut state);
                            let out = forwarded(verdict, &buf);
                            let ns = (extra & flags::SEQUENCING != 0).then_some(packet);
                            let expected = expected_encap(
                                &record,
                                vlan_count,
                                &with_ttl_decremented(&inner),
                                ns,
                            );
                            assert_eq!(
                                hex::encode(out),
                                hex::encode(&expected),
                                "outer v6 {outer_v6} vlans {vlan_count} flags {extra:#x} inner v6 {inner_is_v6}"
                            );
                            let parsed = frame::parse(out, Checksums::Verify).unwrap();
                            let l2tp_packet = l2tp::Packet::new_checked(parsed.payload).unwrap();
                            assert_eq!(l2tp_packet.ns(), ns);
                            let ppp_packet =
                                ppp::Packet::new_checked(l2tp_packet.payload()).unwrap();
                            assert_inner_checksums(ppp_packet.payload());
                        }
                        let counters = state.stats.get(0).unwrap();
                        assert_eq!((counters.down_packets, counters.down_bytes), (3, 3 * 64));
                        cases += 1;
                    }
                }
            }
        }
    }
    assert_eq!(cases, 2 * 3 * 6 * 2 * 2);
}

#[test]
fn downstream_template_with_length_bit_is_patched() {
    let mut record = record(false, 0, [0, 0]);
    // Rebuild the template's L2TP header with L=1 (as a template built elsewhere might).
    let l2tp_at = 14 + 20 + 8;
    let mut template = record.template_bytes()[..l2tp_at].to_vec();
    template.extend_from_slice(&[
        0x40, 0x02, 0, 0, 0x0b, 0x0b, 0x0c, 0x0c, 0xff, 0x03, 0x00, 0x21,
    ]);
    record.set_template(&template);
    let sessions = table(&[record]);
    let inner = inner_v4(64, true);
    let (verdict, buf) = run_down(&core_frame(0, &inner), &sessions, &mut state());
    let out = forwarded(verdict, &buf);
    let parsed = frame::parse(out, Checksums::Verify).unwrap();
    let packet = l2tp::Packet::new_checked(parsed.payload).unwrap();
    assert_eq!(packet.length(), Some((8 + 4 + 64) as u16));
    assert_eq!(&packet.payload()[4..], &with_ttl_decremented(&inner)[..]);
}

#[test]
fn downstream_ipv6_prefix_lookup() {
    let record = record(false, 0, [0, 0]);
    let sessions = table(&[record]);
    let mut state = state();
    for dst in ["2001:db8:1:5::1", "2001:db8:1:5:ffff:ffff:ffff:ffff"] {
        let inner = ip_packet(&server_v6(), &v6(dst), 64, 17, &udp(8));
        assert!(matches!(
            run_down(&core_frame(0, &inner), &sessions, &mut state).0,
            Verdict::Forward { .. }
        ));
    }
    let inner = ip_packet(&server_v6(), &v6("2001:db8:1:6::1"), 64, 17, &udp(8));
    assert_eq!(
        run_down(&core_frame(0, &inner), &sessions, &mut state).0,
        Verdict::Drop(DropReason::NoSessionForDestination)
    );
}

fn big_v4(len: usize, df: bool) -> Vec<u8> {
    let mut packet = ip_packet(&SERVER_V4, &SUB_V4, 64, 17, &udp(len - 28));
    if !df {
        let mut view = Ipv4Packet::new_unchecked(&mut packet[..]);
        view.set_dont_frag(false);
        view.fill_checksum();
    }
    packet
}

#[test]
fn icmp_fragmentation_needed() {
    let sessions = table(&[record(false, 0, [0, 0])]);
    let mut state = state();
    // Exactly the MTU passes.
    assert!(matches!(
        run_down(
            &core_frame(0, &big_v4(usize::from(MTU), true)),
            &sessions,
            &mut state
        )
        .0,
        Verdict::Forward { .. }
    ));
    for vlan_count in [0, 1] {
        let original = big_v4(usize::from(MTU) + 1, true);
        let frame = core_frame(vlan_count, &original);
        let (verdict, buf) = run_down(&frame, &sessions, &mut state);
        let reply = replied(verdict, &buf);
        let eth = ethernet::Packet::new_checked(reply).unwrap();
        assert_eq!(eth.dst_addr(), CORE_NEXT_HOP);
        assert_eq!(eth.src_addr(), CORE_MAC);
        assert_eq!(eth.vlan_count(), vlan_count);
        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.src_addr(), Ipv4Addr::from(ICMP_SRC_V4));
        assert_eq!(ip.dst_addr(), Ipv4Addr::from(SERVER_V4));
        assert_eq!(usize::from(ip.total_len()), 576, "RFC 1812 §4.3.2.3");
        assert_eq!(eth.payload().len(), 576);
        let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum());
        // smoltcp's Icmpv4Repr::parse wants the whole quoted datagram; read the fields.
        assert_eq!(icmp.msg_type(), Icmpv4Message::DstUnreachable);
        assert_eq!(
            Icmpv4DstUnreachable::from(icmp.msg_code()),
            Icmpv4DstUnreachable::FragRequired
        );
        assert_eq!(u16::from_be_bytes([ip.payload()[6], ip.payload()[7]]), MTU);
        let quoted = Ipv4Packet::new_unchecked(icmp.data());
        assert_eq!(quoted.src_addr(), Ipv4Addr::from(SERVER_V4));
        assert_eq!(quoted.dst_addr(), Ipv4Addr::from(SUB_V4));
        // The quote is the original datagram as received (TTL not decremented).
        assert_eq!(&ip.payload()[8..], &original[..576 - 28]);
    }
    // No DF: dropped as too-big.
    let frame = core_frame(0, &big_v4(usize::from(MTU) + 1, false));
    assert_eq!(
        run_down(&frame, &sessions, &mut state).0,
        Verdict::Drop(DropReason::TooBig)
    );
    // Never about an ICMP error.
    let mut l4 = vec![3, 1, 0, 0, 0, 0, 0, 0];
    l4.resize(usize::from(MTU), 0);
    let icmp_error = ip_packet(&SERVER_V4, &SUB_V4, 64, 1, &l4);
    assert_eq!(
        run_down(&core_frame(0, &icmp_error), &sessions, &mut state).0,
        Verdict::Drop(DropReason::TooBig)
    );
}

#[test]
fn icmpv6_packet_too_big() {
    let sessions = table(&[record(true, 0, [0, 0])]);
    let mut state = state();
    let original = ip_packet(
        &server_v6(),
        &sub_v6(),
        64,
        17,
        &udp(usize::from(MTU) - 40 - 8 + 100),
    );
    let (verdict, buf) = run_down(&core_frame(2, &original), &sessions, &mut state);
    let reply = replied(verdict, &buf);
    let eth = ethernet::Packet::new_checked(reply).unwrap();
    assert_eq!(
        (eth.dst_addr(), eth.src_addr(), eth.vlan_count()),
        (CORE_NEXT_HOP, CORE_MAC, 2)
    );
    let ip = Ipv6Packet::new_checked(eth.payload()).unwrap();
    assert_eq!(eth.payload().len(), 1280, "RFC 4443 §2.4(c)");
    assert_eq!(usize::from(ip.payload_len()), 1280 - 40);
    assert_eq!(ip.dst_addr(), Ipv6Addr::from(server_v6()));
    let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
    assert!(icmp.verify_checksum(&ip.src_addr(), &ip.dst_addr()));
    assert_eq!(icmp.msg_type(), Icmpv6Message::PktTooBig);
    assert_eq!(icmp.msg_code(), 0);
    assert_eq!(icmp.pkt_too_big_mtu(), u32::from(MTU));
    assert_eq!(&ip.payload()[8..], &original[..1280 - 48]);
}

#[test]
fn icmp_too_big_is_rate_limited() {
    let sessions = table(&[record(false, 0, [0, 0])]);
    let mut state = state();
    state.icmp_limit = TokenBucket::new(10, 2);
    let frame = core_frame(0, &big_v4(usize::from(MTU) + 1, true));
    let mut at = |now| run_down_at(&frame, HEADROOM, now, &sessions, &mut state).0;
    assert!(matches!(at(1_000), Verdict::Reply { .. }));
    assert!(matches!(at(1_000), Verdict::Reply { .. }));
    assert_eq!(at(1_000), Verdict::Drop(DropReason::IcmpRateLimited));
    // 100 ms later one more token.
    assert!(matches!(at(101_000_000), Verdict::Reply { .. }));
    assert_eq!(at(101_000_000), Verdict::Drop(DropReason::IcmpRateLimited));
    assert_eq!(state.drops.get(DropReason::IcmpRateLimited), 2);
}

#[test]
fn token_bucket() {
    let mut bucket = TokenBucket::new(1_000, 3);
    assert!(bucket.take(0) && bucket.take(0) && bucket.take(0));
    assert!(!bucket.take(0));
    assert!(!bucket.take(999_999));
    assert!(bucket.take(1_000_000));
    assert!(!bucket.take(1_000_000));
    // After a long idle period, a full burst again, not more.
    let later = 10_000_000_000;
    assert!(bucket.take(later) && bucket.take(later) && bucket.take(later));
    assert!(!bucket.take(later));
}

// ---------------------------------------------------------------------------------------
// Local: echo to the gateway.

fn echo_request(dst: [u8; 4], data_len: usize) -> Vec<u8> {
    let mut l4 = vec![8, 0, 0, 0, 0x12, 0x34, 0x00, 0x07];
    l4.extend((0..data_len).map(|i| i as u8));
    ip_packet(&SUB_V4, &dst, 64, 1, &l4)
}

#[test]
fn echo_to_gateway_is_answered_in_the_session() {
    for extra in [0, flags::SEQUENCING | flags::ACFC | flags::PFC] {
        let record = record(false, extra, [100, 0]);
        let sessions = table(&[record]);
        let mut state = state();
        let request = echo_request(GATEWAY_V4, 56);
        let frame = access_frame(
            false,
            1,
            &l2tp_message(
                TUNNEL,
                SESSION,
                L2TP_VARIANTS[6],
                ppp_ipv(false, false, true),
                &request,
            ),
        );
        let (verdict, buf) = run_up(&frame, &sessions, &mut state);
        let reply = replied(verdict, &buf);
        let parsed = frame::parse(reply, Checksums::Verify).unwrap();
        assert_eq!(parsed.repr.dst_mac, LAC_MAC);
        assert_eq!(parsed.repr.dst_port, LAC_PORT);
        let l2tp_packet = l2tp::Packet::new_checked(parsed.payload).unwrap();
        assert_eq!(
            (l2tp_packet.tunnel_id(), l2tp_packet.session_id()),
            (PEER_TUNNEL, PEER_SESSION)
        );
        let ppp_packet = ppp::Packet::new_checked(l2tp_packet.payload()).unwrap();
        assert_eq!(ppp_packet.protocol(), ppp::protocol::IPV4);
        let ip = Ipv4Packet::new_checked(ppp_packet.payload()).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.src_addr(), Ipv4Addr::from(GATEWAY_V4));
        assert_eq!(ip.dst_addr(), Ipv4Addr::from(SUB_V4));
        assert_eq!(ip.hop_limit(), 64);
        let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum());
        let expected_data: Vec<u8> = (0..56).map(|i| i as u8).collect();
        assert_eq!(
            Icmpv4Repr::parse(&icmp, &ChecksumCapabilities::default()).unwrap(),
            Icmpv4Repr::EchoReply {
                ident: 0x1234,
                seq_no: 7,
                data: &expected_data
            }
        );
        let counters = state.stats.get(0).unwrap();
        assert_eq!((counters.up_packets, counters.down_packets), (1, 1));
    }
}

#[test]
fn other_traffic_to_the_lns_is_dropped() {
    let sessions = table(&[record(false, 0, [0, 0])]);
    let mut state = state();
    let to_gateway_udp = ip_packet(&SUB_V4, &GATEWAY_V4, 64, 17, &udp(8));
    let echo_reply = ip_packet(&SUB_V4, &GATEWAY_V4, 64, 1, &[0, 0, 0, 0, 0, 1, 0, 1]);
    for inner in [to_gateway_udp, echo_reply] {
        assert_eq!(
            run_up(&up_frame(false, &inner), &sessions, &mut state).0,
            Verdict::Drop(DropReason::ToLns)
        );
    }
    let mut bad = echo_request(GATEWAY_V4, 8);
    bad[20 + 8] ^= 0xff;
    assert_eq!(
        run_up(&up_frame(false, &bad), &sessions, &mut state).0,
        Verdict::Drop(DropReason::BadChecksum)
    );
    assert_eq!(state.drops.get(DropReason::ToLns), 2);
}

// ---------------------------------------------------------------------------------------
// Every drop reason, from a crafted packet.

enum Dir {
    Up,
    Down,
    /// Downstream with only 10 bytes of headroom.
    DownNoHeadroom,
}

/// A crafted packet for `reason`, with the direction and whether it is passed.
fn crafted(reason: DropReason) -> (Dir, Vec<u8>, bool) {
    let inner = inner_v4(64, false);
    let good = up_frame(false, &inner);
    let ip = 14;
    let udp_at = ip + 20;
    let l2 = udp_at + 8;
    let refill = |mut frame: Vec<u8>| {
        Ipv4Packet::new_unchecked(&mut frame[ip..]).fill_checksum();
        frame
    };
    let with_ppp = |protocol: u16, compressed: bool| {
        let header = ppp::HeaderRepr {
            address_control: true,
            protocol,
            compressed,
        };
        access_frame(
            false,
            0,
            &l2tp_message(TUNNEL, SESSION, L2TP_VARIANTS[0], header, &inner),
        )
    };
    match reason {
        DropReason::Truncated => (Dir::Up, good[..good.len() - 30].to_vec(), false),
        DropReason::BadLength => {
            let message = l2tp_message(
                TUNNEL,
                SESSION,
                L2TP_VARIANTS[1],
                ppp_ipv(false, true, false),
                &inner,
            );
            let mut frame = access_frame(false, 0, &message);
            frame[l2 + 2..l2 + 4].copy_from_slice(&4u16.to_be_bytes());
            (Dir::Up, frame, false)
        }
        DropReason::BadIpHeader => {
            let mut frame = good;
            frame[ip] = 0x65;
            (Dir::Up, frame, false)
        }
        DropReason::BadChecksum => {
            let mut frame = good;
            frame[ip + 10] ^= 0x01;
            (Dir::Up, frame, false)
        }
        DropReason::NotIp => {
            let mut frame = good;
            frame[12..14].copy_from_slice(&[0x08, 0x06]);
            (Dir::Up, frame, true)
        }
        DropReason::NotL2tp => {
            let mut frame = good;
            frame[udp_at + 2..udp_at + 4].copy_from_slice(&53u16.to_be_bytes());
            (Dir::Up, frame, true)
        }
        DropReason::OuterFragment => {
            let mut frame = good;
            frame[ip + 6] |= 0x20;
            (Dir::Up, refill(frame), false)
        }
        DropReason::BadL2tpVersion => {
            let mut frame = good;
            frame[l2 + 1] = 0x03;
            (Dir::Up, frame, false)
        }
        DropReason::L2tpControl => {
            let mut frame = good;
            frame[l2] = 0xc8;
            (Dir::Up, frame, true)
        }
        DropReason::UnknownSession => {
            let mut frame = good;
            frame[l2 + 4..l2 + 6].copy_from_slice(&99u16.to_be_bytes());
            (Dir::Up, frame, false)
        }
        DropReason::SpoofedOuterSource => {
            let mut frame = good;
            frame[ip + 15] = 11;
            (Dir::Up, refill(frame), false)
        }
        DropReason::BadPppProtocol => (Dir::Up, with_ppp(0x0020, false), false),
        DropReason::PppControl => (Dir::Up, with_ppp(ppp::protocol::LCP, false), true),
        DropReason::UnsupportedPppProtocol => (
            Dir::Up,
            with_ppp(ppp::protocol::VJ_COMPRESSED_TCP, true),
            false,
        ),
        DropReason::SpoofedInnerSource => (
            Dir::Up,
            up_frame(
                false,
                &ip_packet(&[100, 64, 0, 6], &SERVER_V4, 64, 17, &udp(8)),
            ),
            false,
        ),
        DropReason::Ipv6LinkLocal => (
            Dir::Up,
            up_frame(
                false,
                &ip_packet(&v6("fe80::1"), &v6("ff02::2"), 255, 17, &udp(8)),
            ),
            true,
        ),
        DropReason::TtlExpired => (Dir::Up, up_frame(false, &inner_v4(1, false)), false),
        DropReason::ToLns => (
            Dir::Up,
            up_frame(false, &ip_packet(&SUB_V4, &GATEWAY_V4, 64, 17, &udp(8))),
            false,
        ),
        DropReason::NoSessionForDestination => (
            Dir::Down,
            core_frame(
                0,
                &ip_packet(&SERVER_V4, &[100, 64, 0, 99], 64, 17, &udp(8)),
            ),
            false,
        ),
        DropReason::TooBig => (
            Dir::Down,
            core_frame(0, &big_v4(usize::from(MTU) + 1, false)),
            false,
        ),
        DropReason::IcmpRateLimited => (
            Dir::Down,
            core_frame(0, &big_v4(usize::from(MTU) + 1, true)),
            false,
        ),
        DropReason::NoHeadroom => (
            Dir::DownNoHeadroom,
            core_frame(0, &inner_v4(64, true)),
            false,
        ),
        DropReason::BadTemplate => (
            Dir::Down,
            core_frame(
                0,
                &ip_packet(&SERVER_V4, &[100, 64, 0, 77], 64, 17, &udp(8)),
            ),
            false,
        ),
        // Counted by the AF_XDP worker when its transmit ring is full, or read from the
        // kernel's socket statistics; no frame makes the fast path return them.
        DropReason::TxRingFull
        | DropReason::XskRxRingFull
        | DropReason::XskFillRingEmpty
        | DropReason::XskRxDropped
        | DropReason::XskRxInvalidDescs
        | DropReason::XskTxInvalidDescs => (Dir::Up, Vec::new(), false),
    }
}

/// Every reason in `DropReason::ALL` fires from a crafted packet; none is unreachable.
#[test]
fn every_drop_reason_fires() {
    const UNREACHABLE: &[DropReason] = &[
        DropReason::TxRingFull,
        DropReason::XskRxRingFull,
        DropReason::XskFillRingEmpty,
        DropReason::XskRxDropped,
        DropReason::XskRxInvalidDescs,
        DropReason::XskTxInvalidDescs,
    ];
    let record = record(false, 0, [0, 0]);
    let mut broken = record;
    broken.local_tunnel = 50;
    broken.subscriber_v4 = [100, 64, 0, 77];
    broken.template_len = 0;
    let sessions = table(&[record, broken]);
    for &reason in DropReason::ALL {
        if UNREACHABLE.contains(&reason) {
            continue;
        }
        let mut state = state();
        // The ICMP limiter allows nothing: the rate-limited case fires at once.
        state.icmp_limit = TokenBucket::new(1, 1);
        state.icmp_limit.take(0);
        let (dir, frame, passed) = crafted(reason);
        let verdict = match dir {
            Dir::Up => run_up(&frame, &sessions, &mut state).0,
            Dir::Down => run_down(&frame, &sessions, &mut state).0,
            Dir::DownNoHeadroom => run_down_at(&frame, 10, 0, &sessions, &mut state).0,
        };
        if passed {
            assert_eq!(verdict, Verdict::Pass(reason), "{}", reason.name());
            assert_eq!(state.drops.total(), 0);
        } else {
            assert_eq!(verdict, Verdict::Drop(reason), "{}", reason.name());
            assert_eq!(state.drops.get(reason), 1);
            assert_eq!(state.drops.total(), 1);
        }
    }
}

#[test]
fn truncation_at_every_length_never_forwards() {
    let sessions = table(&[record(false, flags::SEQUENCING, [100, 200])]);
    let mut state = state();
    let variant = L2TP_VARIANTS[6];
    let frame = access_frame(
        false,
        2,
        &l2tp_message(
            TUNNEL,
            SESSION,
            variant,
            ppp_ipv(false, true, false),
            &inner_v4(64, false),
        ),
    );
    for cut in 0..frame.len() {
        let (verdict, _) = run_up(&frame[..cut], &sessions, &mut state);
        assert!(
            matches!(verdict, Verdict::Drop(_) | Verdict::Pass(_)),
            "cut {cut}: {verdict:?}"
        );
    }
    let frame = core_frame(1, &inner_v6(64, true));
    for cut in 0..frame.len() {
        let (verdict, _) = run_down(&frame[..cut], &sessions, &mut state);
        assert!(
            matches!(verdict, Verdict::Drop(_) | Verdict::Pass(_)),
            "cut {cut}"
        );
    }
}

#[test]
fn frame_position_outside_the_buffer_is_truncated() {
    let sessions = table(&[record(false, 0, [0, 0])]);
    let mut state = state();
    let mut buf = vec![0u8; 64];
    assert_eq!(
        process_upstream(&mut buf, 60, 10, &ctx(), &sessions, &mut state),
        Verdict::Drop(DropReason::Truncated)
    );
    assert_eq!(
        process_downstream(&mut buf, usize::MAX, 10, 0, &ctx(), &sessions, &mut state),
        Verdict::Drop(DropReason::Truncated)
    );
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        headroom in 0usize..120,
    ) {
        let sessions = table(&[record(false, flags::SEQUENCING, [0, 0]), {
            let mut r = record(true, flags::ACFC, [5, 6]);
            r.local_tunnel = 2;
            r
        }]);
        let mut state = state();
        let mut buf = buffer(&bytes, headroom);
        let verdict = process_upstream(&mut buf, headroom, bytes.len(), &ctx(), &sessions, &mut state);
        check_bounds(verdict, buf.len())?;
        let mut buf = buffer(&bytes, headroom);
        let verdict = process_downstream(&mut buf, headroom, bytes.len(), 0, &ctx(), &sessions, &mut state);
        check_bounds(verdict, buf.len())?;
    }

    #[test]
    fn mutated_valid_frames_never_panic(
        flips in proptest::collection::vec((0usize..200, any::<u8>()), 1..6),
        variant in 0usize..7,
        outer_v6 in any::<bool>(),
        inner_is_v6 in any::<bool>(),
        down in any::<bool>(),
    ) {
        let sessions = table(&[record(outer_v6, flags::SEQUENCING, [0, 0])]);
        let mut state = state();
        let inner = if inner_is_v6 { inner_v6(64, down) } else { inner_v4(64, down) };
        let mut frame = if down {
            core_frame(1, &inner)
        } else {
            access_frame(
                outer_v6,
                1,
                &l2tp_message(TUNNEL, SESSION, L2TP_VARIANTS[variant], ppp_ipv(inner_is_v6, true, false), &inner),
            )
        };
        for (at, value) in flips {
            let len = frame.len();
            frame[at % len] = value;
        }
        let (verdict, buf) = if down {
            run_down(&frame, &sessions, &mut state)
        } else {
            run_up(&frame, &sessions, &mut state)
        };
        check_bounds(verdict, buf.len())?;
    }
}

proptest! {
    /// The common-case parsers (untagged IPv4, plain L2TP, PPP FF 03 00 21, inner IPv4)
    /// decide exactly as the general parsers do: same verdict, same bytes, same counters,
    /// for valid frames mutated in their headers and cut short.
    #[test]
    fn common_case_parsers_equal_the_general_ones(
        flips in proptest::collection::vec((0usize..96, any::<u8>()), 0..4),
        cut in 0usize..100,
        to_gateway in any::<bool>(),
        tcp_syn in any::<bool>(),
        down in any::<bool>(),
        headroom in 0usize..300,
        length_field in 0usize..4,
        length in prop_oneof![0u16..100, any::<u16>()],
        table_kind in 0u8..3,
    ) {
        let records = [record(false, flags::SEQUENCING, [0, 0])];
        let sessions = table(&records);
        let inner = if tcp_syn {
            let src = if down { SERVER_V4 } else { SUB_V4 };
            let dst = if down { SUB_V4 } else { SERVER_V4 };
            ip_packet(&src, &dst, 64, 6, &tcp(0x02, &[2, 4, 0x05, 0xb4]))
        } else if to_gateway && !down {
            ip_packet(&SUB_V4, &GATEWAY_V4, 64, 1, &[8, 0, 0xf7, 0xff, 0, 0, 0, 0])
        } else {
            inner_v4(64, down)
        };
        let mut frame = if down {
            core_frame(0, &inner)
        } else {
            access_frame(
                false,
                0,
                &l2tp_message(TUNNEL, SESSION, L2TP_VARIANTS[0], ppp_ipv(false, true, false), &inner),
            )
        };
        for (at, value) in flips {
            let len = frame.len();
            frame[at % len] = value;
        }
        // Outer IPv4 total length, UDP length, inner IPv4 total length (upstream), the
        // length octets of every header the common case checks.
        let at = [None, Some(16), Some(38), Some(54)][length_field];
        if let Some(at) = at.filter(|at| *at + 2 <= frame.len()) {
            frame[at..at + 2].copy_from_slice(&length.to_be_bytes());
        }
        let len = frame.len().saturating_sub(cut % 40 * usize::from(cut >= 60));
        // The in-memory table, the shared-memory one (what production runs), and a table
        // whose cheap first tries always miss (the fast paths' out-of-line fallbacks).
        match table_kind {
            0 => fast_equals_general(&sessions, &frame, headroom, len, down)?,
            1 => fast_equals_general(&ShmTable::new(4, &records).reader, &frame, headroom, len, down)?,
            _ => fast_equals_general(&FirstMisses(&sessions), &frame, headroom, len, down)?,
        }
    }
}

/// `frame` through the fast and the general parsers: same verdict, same bytes, same
/// counters.
fn fast_equals_general<T: Sessions>(
    sessions: &T,
    frame: &[u8],
    headroom: usize,
    len: usize,
    down: bool,
) -> Result<(), TestCaseError> {
    let mut fast_state = state();
    let mut general_state = state();
    let mut fast = buffer(frame, headroom);
    let mut general = fast.clone();
    // The worker's prefetch stages run on the fast side first: hints, no effect on the
    // verdict, and no panic whatever the frame.
    for what in [Prefetch::Bucket, Prefetch::Slot] {
        if down {
            prefetch_downstream(&fast, headroom, len, sessions, &fast_state, what);
        } else {
            prefetch_upstream(&fast, headroom, len, sessions, &fast_state, what);
        }
    }
    let (a, b) = if down {
        (
            process_downstream(
                &mut fast,
                headroom,
                len,
                0,
                &ctx(),
                sessions,
                &mut fast_state,
            ),
            super::downstream::process_downstream_general(
                &mut general,
                headroom,
                len,
                0,
                &ctx(),
                sessions,
                &mut general_state,
            ),
        )
    } else {
        (
            process_upstream(&mut fast, headroom, len, &ctx(), sessions, &mut fast_state),
            super::upstream::process_upstream_general(
                &mut general,
                headroom,
                len,
                &ctx(),
                sessions,
                &mut general_state,
            ),
        )
    };
    prop_assert_eq!(a, b);
    prop_assert_eq!(fast, general);
    prop_assert_eq!(fast_state.drops, general_state.drops);
    prop_assert_eq!(fast_state.stats.get(0), general_state.stats.get(0));
    Ok(())
}

/// A table whose [`Sessions::up_v4_first`] and [`Sessions::down_v4_first`] always miss,
/// as the shared-memory table's may (a key beyond its first bucket, a concurrent index
/// rebuild): every other lookup is the wrapped table's.
struct FirstMisses<'a>(&'a MemSessions);

impl Sessions for FirstMisses<'_> {
    fn by_upstream(&self, tunnel: u16, session: u16) -> Option<(u32, SessionHead)> {
        self.0.by_upstream(tunnel, session)
    }
    fn record(&self, slot: u32, key: u32) -> Option<SessionRecord> {
        self.0.record(slot, key)
    }
    fn by_v4(&self, dst: [u8; 4]) -> Option<(u32, SessionRecord)> {
        self.0.by_v4(dst)
    }
    fn by_v6(&self, dst: [u8; 16]) -> Option<(u32, SessionRecord)> {
        self.0.by_v6(dst)
    }
    fn down_v4(&self, dst: [u8; 4], out: &mut [u8; TEMPLATE_CAPACITY]) -> Option<Downstream> {
        self.0.down_v4(dst, out)
    }
    fn down_v6(&self, dst: [u8; 16], out: &mut [u8; TEMPLATE_CAPACITY]) -> Option<Downstream> {
        self.0.down_v6(dst, out)
    }
    fn up_v4_first(&self, _: u16, _: u16) -> Option<UpstreamV4> {
        None
    }
    fn down_v4_first(&self, _: [u8; 4], out: &mut [u8; TEMPLATE_CAPACITY]) -> Option<Downstream> {
        // A miss may leave anything in `out` (the first probe copies before it validates).
        out.fill(0xa5);
        None
    }
}

fn check_bounds(verdict: Verdict, buf_len: usize) -> Result<(), TestCaseError> {
    if let Verdict::Forward { offset, len } | Verdict::Reply { offset, len } = verdict {
        prop_assert!(offset + len <= buf_len);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Framed-Routes, delegated IPv6 prefixes, slot reuse: over both session tables.

/// A shared-memory segment holding `records` (the production table), removed on drop.
struct ShmTable {
    writer: crate::shm::Writer,
    reader: crate::shm::Reader,
    path: std::path::PathBuf,
}

impl ShmTable {
    fn new(max_sessions: u32, records: &[SessionRecord]) -> ShmTable {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            std::path::PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let path = dir.join(format!(
            "xlns-fastpath-test.{}.{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let geometry = crate::shm::Geometry {
            max_sessions,
            max_workers: 1,
        };
        let mut writer = crate::shm::Writer::create(&path, geometry).unwrap();
        for record in records {
            writer.insert(record).unwrap();
        }
        let reader = crate::shm::Reader::attach(&path).unwrap();
        ShmTable {
            writer,
            reader,
            path,
        }
    }
}

impl Drop for ShmTable {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

const ROUTE_A: [u8; 4] = [192, 168, 10, 0];
const ROUTE_B: [u8; 4] = [192, 168, 10, 128];

/// Session A (the usual record) with Framed-Route 192.168.10.0/24 and delegated
/// 2001:db8:80::/48; session B (tunnel 8, 100.64.0.6) with 192.168.10.128/25 and
/// delegated 2001:db8::/32 (which covers A's prefixes: longest match decides).
fn routed_records() -> [SessionRecord; 2] {
    let mut a = record(false, 0, [0, 0]);
    assert!(a.push_route_v4(ROUTE_A, 24));
    assert!(a.push_prefix_v6(v6("2001:db8:80::"), 48));
    let mut b = record(false, 0, [0, 0]);
    b.local_tunnel = 8;
    b.subscriber_v4 = [100, 64, 0, 6];
    b.subscriber_v6_prefix = v6("2001:db8:2:6::");
    assert!(b.push_route_v4(ROUTE_B, 25));
    assert!(b.push_prefix_v6(v6("2001:db8::"), 32));
    [a, b]
}

/// Sends `inner` downstream; returns which session it went to (by the counters) and the
/// frame.
fn route_down(sessions: &impl Sessions, inner: &[u8]) -> Result<(u32, Vec<u8>), Verdict> {
    let mut state = state();
    let (verdict, buf) = run_down(&core_frame(0, inner), sessions, &mut state);
    let Verdict::Forward { .. } = verdict else {
        return Err(verdict);
    };
    let slot = (0..2)
        .find(|s| state.stats.get(*s).unwrap().down_packets == 1)
        .unwrap();
    Ok((slot, forwarded(verdict, &buf).to_vec()))
}

fn check_routed_downstream(sessions: &impl Sessions, slot_a: u32, slot_b: u32) {
    let [a, _] = routed_records();
    // IPv4 Framed-Routes: longest match, byte-exact encapsulation into A.
    for (dst, want) in [
        ([192, 168, 10, 5], slot_a),
        ([192, 168, 10, 127], slot_a),
        ([192, 168, 10, 128], slot_b),
        ([192, 168, 10, 255], slot_b),
        (SUB_V4, slot_a),
        ([100, 64, 0, 6], slot_b),
    ] {
        let inner = ip_packet(&SERVER_V4, &dst, 64, 17, &udp(36));
        let (slot, out) = route_down(sessions, &inner).unwrap();
        assert_eq!(slot, want, "{dst:?}");
        if want == slot_a {
            let expected = expected_encap(&a, 0, &with_ttl_decremented(&inner), None);
            assert_eq!(hex::encode(&out), hex::encode(&expected), "{dst:?}");
        }
    }
    let inner = ip_packet(&SERVER_V4, &[192, 168, 11, 1], 64, 17, &udp(36));
    assert_eq!(
        route_down(sessions, &inner).unwrap_err(),
        Verdict::Drop(DropReason::NoSessionForDestination)
    );
    // IPv6: A's own /64 and delegated /48 beat B's /32; the rest of the /32 is B's.
    for (dst, want) in [
        ("2001:db8:1:5::1", slot_a),
        ("2001:db8:80:ffff::9", slot_a),
        ("2001:db8:2:6::1", slot_b),
        ("2001:db8:1:6::1", slot_b),
        ("2001:db8:ffff::1", slot_b),
    ] {
        let inner = ip_packet(&server_v6(), &v6(dst), 64, 17, &udp(16));
        let (slot, out) = route_down(sessions, &inner).unwrap();
        assert_eq!(slot, want, "{dst}");
        if want == slot_a {
            let expected = expected_encap(&a, 0, &with_ttl_decremented(&inner), None);
            assert_eq!(hex::encode(&out), hex::encode(&expected), "{dst}");
        }
    }
    let inner = ip_packet(&server_v6(), &v6("2001:db9::1"), 64, 17, &udp(16));
    assert_eq!(
        route_down(sessions, &inner).unwrap_err(),
        Verdict::Drop(DropReason::NoSessionForDestination)
    );
}

#[test]
fn downstream_framed_routes_and_delegated_prefixes_byte_exact_in_memory() {
    let records = routed_records();
    check_routed_downstream(&table(&records), 0, 1);
}

#[test]
fn downstream_framed_routes_and_delegated_prefixes_byte_exact_in_shared_memory() {
    let records = routed_records();
    let shm = ShmTable::new(8, &records);
    check_routed_downstream(&shm.reader, 0, 1);
}

fn check_routed_upstream(sessions: &impl Sessions) {
    let mut state = state();
    // Sources in the session's own address / prefix, its Framed-Route and its delegated
    // prefix are forwarded from A; B's address and prefix and anything else are spoofed
    // (B's /25 lies inside A's /24: A may send from it).
    for (src, ok) in [
        (&SUB_V4[..], true),
        (&[192, 168, 10, 77][..], true),
        (&[192, 168, 10, 200][..], true),
        (&[100, 64, 0, 6][..], false),
        (&[192, 168, 11, 1][..], false),
        (&v6("2001:db8:1:5::9")[..], true),
        (&v6("2001:db8:80:1::9")[..], true),
        (&v6("2001:db8:81::9")[..], false),
        (&v6("2001:db8:2:6::1")[..], false),
    ] {
        let dst: &[u8] = if src.len() == 4 {
            &SERVER_V4
        } else {
            &server_v6()
        };
        let inner = ip_packet(src, dst, 64, 17, &udp(24));
        let (verdict, _) = run_up(&up_frame(false, &inner), sessions, &mut state);
        if ok {
            assert!(
                matches!(verdict, Verdict::Forward { .. }),
                "{src:?} {verdict:?}"
            );
        } else {
            assert_eq!(
                verdict,
                Verdict::Drop(DropReason::SpoofedInnerSource),
                "{src:?}"
            );
        }
    }
}

#[test]
fn upstream_sources_in_routes_and_delegated_prefixes_in_memory() {
    check_routed_upstream(&table(&routed_records()));
}

#[test]
fn upstream_sources_in_routes_and_delegated_prefixes_in_shared_memory() {
    let shm = ShmTable::new(8, &routed_records());
    check_routed_upstream(&shm.reader);
}

/// Ns (RFC 2661 §5.8) counts per session: an update of the session (a new LAC MAC)
/// continues it, a new session in the same slot starts again at 0.
#[test]
fn downstream_ns_restarts_when_a_slot_holds_a_new_session() {
    let first = record(false, flags::SEQUENCING, [0, 0]);
    let mut shm = ShmTable::new(1, &[first]);
    let counters = shm.reader.counters(0).unwrap();
    let mut state = WorkerState::new(crate::worker::glue::ShmStats::new(counters, 1));
    let inner = inner_v4(64, true);
    let ns = |shm: &ShmTable, state: &mut WorkerState<crate::worker::glue::ShmStats>| {
        let (verdict, buf) = run_down(&core_frame(0, &inner), &shm.reader, state);
        let out = forwarded(verdict, &buf);
        let parsed = frame::parse(out, Checksums::Verify).unwrap();
        l2tp::Packet::new_checked(parsed.payload).unwrap().ns()
    };
    assert_eq!(ns(&shm, &mut state), Some(0));
    assert_eq!(ns(&shm, &mut state), Some(1));
    let slot = crate::shm::SlotId(0);
    let mut moved = first;
    let (template, len) = build_template(
        &moved,
        LNS_ACCESS_MAC,
        EthernetAddress([2, 0, 0, 0, 0, 0x0b]),
    );
    moved.template = template;
    moved.template_len = len;
    shm.writer.update(slot, &moved).unwrap();
    assert_eq!(ns(&shm, &mut state), Some(2));
    shm.writer.remove(slot).unwrap();
    let mut second = first;
    second.local_session = 10;
    assert_eq!(shm.writer.insert(&second).unwrap(), slot);
    assert_eq!(ns(&shm, &mut state), Some(0));
    assert_eq!(ns(&shm, &mut state), Some(1));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Both session tables give every downstream destination the same verdict and the
    /// same bytes (routes, delegated prefixes, longest match, misses).
    #[test]
    fn memory_and_shared_memory_tables_agree_downstream(
        v4 in (prop_oneof![Just(100u8), Just(192u8)], prop_oneof![Just(64u8), Just(168u8)], 0u8..16, any::<u8>()),
        v6_group in prop_oneof![Just(1u16), Just(2), Just(0x80), Just(0x81), Just(0xffff)],
        v6_sub in any::<u16>(),
        use_v6 in any::<bool>(),
    ) {
        let records = routed_records();
        let mem = table(&records);
        let shm = ShmTable::new(8, &records);
        let inner = if use_v6 {
            let mut dst = v6("2001:db8::1");
            dst[4..6].copy_from_slice(&v6_group.to_be_bytes());
            dst[6..8].copy_from_slice(&v6_sub.to_be_bytes());
            ip_packet(&server_v6(), &dst, 64, 17, &udp(16))
        } else {
            let dst = [v4.0, v4.1, v4.2, v4.3];
            ip_packet(&SERVER_V4, &dst, 64, 17, &udp(36))
        };
        let frame = core_frame(0, &inner);
        let (verdict_mem, buf_mem) = run_down(&frame, &mem, &mut state());
        let (verdict_shm, buf_shm) = run_down(&frame, &shm.reader, &mut state());
        prop_assert_eq!(verdict_mem, verdict_shm);
        if let Verdict::Forward { offset, len } = verdict_mem {
            prop_assert_eq!(&buf_mem[offset..offset + len], &buf_shm[offset..offset + len]);
        }
    }
}

//! Frames and session tables for the fast-path bench and the allocation test (shared with
//! `tests/no_alloc.rs` through `#[path]`).

#![allow(dead_code, clippy::unwrap_used)]

use std::net::{Ipv4Addr, Ipv6Addr};

use smoltcp::phy::ChecksumCapabilities;
use xlns_dataplane::fastpath::{MemSessions, WorkerCtx, build_template};
use xlns_dataplane::session::{SessionRecord, flags};
use xlns_dataplane::wire::ethernet::{self, EthernetProtocol, Vlans};
use xlns_dataplane::wire::frame::{IpAddrs, UdpFrameRepr};
use xlns_dataplane::wire::l2tp::{self, HeaderKind, HeaderRepr};
use xlns_dataplane::wire::{EthernetAddress, IpProtocol, Ipv4Packet, Ipv4Repr, UdpPacket, ppp};

pub const HEADROOM: usize = 256;
pub const PORT: u16 = 1701;
pub const LAC_PORT: u16 = 50000;
pub const LAC_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x0a]);
pub const LNS_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
pub const LAC_V4: [u8; 4] = [192, 0, 2, 10];
pub const LNS_V4: [u8; 4] = [192, 0, 2, 1];
pub const SERVER_V4: [u8; 4] = [10, 255, 1, 2];

pub fn ctx() -> WorkerCtx {
    WorkerCtx {
        l2tp_port: PORT,
        core_mac: EthernetAddress([0x02, 0, 0, 0, 0, 0x11]),
        core_next_hop_mac: EthernetAddress([0x02, 0, 0, 0, 0, 0x12]),
        core_vlan: 0,
        gateway_v4: [100, 64, 0, 0],
        icmp_src_v4: [10, 255, 0, 1],
        icmp_src_v6: Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1).octets(),
    }
}

/// Session `i`: ids (1 + i / 65535, 1 + i % 65535), subscriber 100.64.0.0 + 1 + i and
/// 2001:db8:(i >> 16):(i & 0xffff)::/64.
pub fn record(i: u32) -> SessionRecord {
    let mut peer_addr = [0; 16];
    let mut local_addr = [0; 16];
    peer_addr[..4].copy_from_slice(&LAC_V4);
    local_addr[..4].copy_from_slice(&LNS_V4);
    let prefix = Ipv6Addr::new(0x2001, 0xdb8, (i >> 16) as u16, i as u16, 0, 0, 0, 0);
    let mut record = SessionRecord {
        local_tunnel: (1 + i / 65535) as u16,
        local_session: (1 + i % 65535) as u16,
        peer_tunnel: 77,
        peer_session: (1 + i % 65535) as u16,
        flags: flags::HAS_IPV4 | flags::HAS_IPV6,
        peer_addr,
        local_addr,
        peer_port: LAC_PORT,
        local_port: PORT,
        mtu: 1460,
        subscriber_v4: (u32::from(Ipv4Addr::new(100, 64, 0, 0)) + 1 + i).to_be_bytes(),
        subscriber_v6_prefix: prefix.octets(),
        subscriber_v6_len: 64,
        ..SessionRecord::EMPTY
    };
    let (template, len) = build_template(&record, LNS_MAC, LAC_MAC);
    record.template = template;
    record.template_len = len;
    record
}

pub fn table(sessions: u32) -> MemSessions {
    let mut table = MemSessions::with_capacity(sessions as usize);
    for i in 0..sessions {
        table.insert(record(i));
    }
    table
}

/// A 64-byte IPv4/UDP packet.
pub fn inner_v4(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let mut packet = vec![0u8; 64];
    Ipv4Repr {
        src_addr: Ipv4Addr::from(src),
        dst_addr: Ipv4Addr::from(dst),
        next_header: IpProtocol::Udp,
        payload_len: 44,
        hop_limit: 64,
    }
    .emit(
        &mut Ipv4Packet::new_unchecked(&mut packet[..]),
        &ChecksumCapabilities::default(),
    );
    packet[20..22].copy_from_slice(&40000u16.to_be_bytes());
    packet[22..24].copy_from_slice(&53u16.to_be_bytes());
    packet[24..26].copy_from_slice(&44u16.to_be_bytes());
    UdpPacket::new_unchecked(&mut packet[20..])
        .fill_checksum(&Ipv4Addr::from(src).into(), &Ipv4Addr::from(dst).into());
    packet
}

/// The LAC's frame carrying a 64-byte inner packet from session `i`'s subscriber
/// (no L/S/O, PPP FF 03 00 21).
pub fn upstream_frame(i: u32) -> Vec<u8> {
    let record = record(i);
    let inner = inner_v4(record.subscriber_v4, SERVER_V4);
    let header = HeaderRepr {
        tunnel_id: record.local_tunnel,
        session_id: record.local_session,
        kind: HeaderKind::Data {
            length: false,
            sequence: None,
            offset_size: None,
            priority: false,
        },
    };
    let ppp_header = ppp::HeaderRepr::for_sending(ppp::protocol::IPV4, false, false);
    let mut message = vec![0u8; header.buffer_len() + ppp_header.buffer_len()];
    header.emit(&mut l2tp::Packet::new_unchecked(&mut message[..]), 0);
    ppp_header.emit(&mut message[header.buffer_len()..]);
    message.extend_from_slice(&inner);
    let repr = UdpFrameRepr {
        dst_mac: LNS_MAC,
        src_mac: LAC_MAC,
        vlans: Vlans::Untagged,
        ip: IpAddrs::V4 {
            src: Ipv4Addr::from(LAC_V4),
            dst: Ipv4Addr::from(LNS_V4),
        },
        hop_limit: 64,
        src_port: LAC_PORT,
        dst_port: PORT,
    };
    let mut frame = vec![0u8; repr.buffer_len(message.len())];
    repr.emit(&message, &mut frame).unwrap();
    frame
}

/// The core's frame carrying a 64-byte inner packet to session `i`'s subscriber.
pub fn downstream_frame(i: u32) -> Vec<u8> {
    let record = record(i);
    let inner = inner_v4(SERVER_V4, record.subscriber_v4);
    let repr = ethernet::Repr {
        dst: LNS_MAC,
        src: LAC_MAC,
        vlans: Vlans::Untagged,
        ethertype: EthernetProtocol::Ipv4,
    };
    let mut frame = vec![0u8; repr.buffer_len()];
    repr.emit(&mut ethernet::Packet::new_unchecked(&mut frame[..]));
    frame.extend_from_slice(&inner);
    frame
}

/// The same sessions in a shared-memory segment (what production runs): the writer (keep
/// it alive), a reader attached to it, and the segment's path (remove it when done).
pub fn shm_table(
    sessions: u32,
) -> (
    xlns_dataplane::shm::Writer,
    xlns_dataplane::shm::Reader,
    std::path::PathBuf,
) {
    use xlns_dataplane::shm::{Geometry, Reader, Writer};
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        std::path::PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let path = dir.join(format!("xlns-fastpath.{}.{sessions}", std::process::id()));
    let mut writer = Writer::create(
        &path,
        Geometry {
            max_sessions: sessions,
            max_workers: 1,
        },
    )
    .unwrap();
    for i in 0..sessions {
        writer.insert(&record(i)).unwrap();
    }
    let reader = Reader::attach(&path).unwrap();
    (writer, reader, path)
}

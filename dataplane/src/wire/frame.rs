//! Whole Ethernet / IPv4|IPv6 / UDP frames around a UDP payload: a builder and a parser.
//!
//! ```text
//! Ethernet (0-2 VLAN tags) | IPv4 (IHL 5 on emit, any IHL on parse) or IPv6 | UDP | payload
//! ```
//!
//! [`UdpFrameRepr::emit`] writes a complete frame into a caller-provided buffer and
//! returns its length; [`UdpFrameRepr::emit_in_place`] does the same around a payload the
//! caller already wrote at [`UdpFrameRepr::header_len`]. The IPv4 header checksum and the
//! UDP checksum are always filled in (smoltcp's `Ipv4Repr::emit` / `UdpRepr::emit`; a UDP
//! checksum that computes to zero is sent as 0xFFFF, RFC 768). IPv4 is emitted with
//! DF set, identification 0, DSCP/ECN 0 (smoltcp's choice).
//!
//! [`parse`] reads such a frame back: it walks the Ethernet header
//! ([`super::ethernet`]), honours the IPv4 IHL (options are skipped), uses the IPv4 total
//! length / IPv6 payload length and then the UDP length (so Ethernet padding is ignored),
//! rejects IPv4 fragments (MF set or a non-zero offset: a fragment's UDP header is not
//! complete, RFC 791 §2.3), rejects anything but UDP as the IP payload (IPv6 extension
//! headers are not walked, so an IPv6 fragment is rejected too), and with
//! [`Checksums::Verify`] checks the IPv4 header checksum (RFC 791 §3.1) and the UDP
//! checksum (RFC 768; zero means "none" on IPv4 only, RFC 8200 §8.1 forbids it on IPv6).
//!
//! Neither side allocates, and no input makes either panic.

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::IpAddress;

use super::ethernet::{self, EthernetProtocol, Vlans};
use super::{
    EthernetAddress, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, Ipv6Address, Ipv6Packet,
    Ipv6Repr, Result, UdpPacket, UdpRepr, WireError,
};

/// IPv4 header length without options.
pub const IPV4_HEADER_LEN: usize = 20;
/// IPv6 fixed header length.
pub const IPV6_HEADER_LEN: usize = 40;
/// UDP header length.
pub const UDP_HEADER_LEN: usize = 8;

/// The IP addresses of a frame, which also choose its IP version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpAddrs {
    V4 { src: Ipv4Address, dst: Ipv4Address },
    V6 { src: Ipv6Address, dst: Ipv6Address },
}

impl IpAddrs {
    /// Length of the IP header [`UdpFrameRepr::emit`] writes.
    pub const fn header_len(&self) -> usize {
        match self {
            IpAddrs::V4 { .. } => IPV4_HEADER_LEN,
            IpAddrs::V6 { .. } => IPV6_HEADER_LEN,
        }
    }

    /// The EtherType of this IP version.
    pub const fn ethertype(&self) -> EthernetProtocol {
        match self {
            IpAddrs::V4 { .. } => EthernetProtocol::Ipv4,
            IpAddrs::V6 { .. } => EthernetProtocol::Ipv6,
        }
    }

    /// Source address, as smoltcp's version-independent address.
    pub fn src(&self) -> IpAddress {
        match *self {
            IpAddrs::V4 { src, .. } => IpAddress::Ipv4(src),
            IpAddrs::V6 { src, .. } => IpAddress::Ipv6(src),
        }
    }

    /// Destination address, as smoltcp's version-independent address.
    pub fn dst(&self) -> IpAddress {
        match *self {
            IpAddrs::V4 { dst, .. } => IpAddress::Ipv4(dst),
            IpAddrs::V6 { dst, .. } => IpAddress::Ipv6(dst),
        }
    }
}

/// Everything in an Ethernet / IP / UDP frame except the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpFrameRepr {
    pub dst_mac: EthernetAddress,
    pub src_mac: EthernetAddress,
    /// Outermost first.
    pub vlans: Vlans,
    pub ip: IpAddrs,
    /// IPv4 TTL or IPv6 hop limit.
    pub hop_limit: u8,
    pub src_port: u16,
    pub dst_port: u16,
}

/// Whether [`parse`] verifies the IPv4 header checksum and the UDP checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksums {
    Verify,
    Ignore,
}

/// A parsed frame: its headers, and where its UDP payload lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpFrame<'a> {
    pub repr: UdpFrameRepr,
    /// Offset of the UDP payload in the frame.
    pub payload_offset: usize,
    /// The UDP payload (bounded by the UDP length, not by the frame's end).
    pub payload: &'a [u8],
}

impl UdpFrameRepr {
    /// The Ethernet part of this frame.
    pub const fn ethernet(&self) -> ethernet::Repr {
        ethernet::Repr {
            dst: self.dst_mac,
            src: self.src_mac,
            vlans: self.vlans,
            ethertype: self.ip.ethertype(),
        }
    }

    /// Length of Ethernet + IP + UDP headers: the payload's offset in the frame.
    pub const fn header_len(&self) -> usize {
        self.ethernet().header_len() + self.ip.header_len() + UDP_HEADER_LEN
    }

    /// Length of the whole frame around a payload of `payload_len` bytes.
    pub const fn buffer_len(&self, payload_len: usize) -> usize {
        self.header_len() + payload_len
    }

    /// Write the frame around `payload` into the front of `buffer`; returns its length.
    pub fn emit(&self, payload: &[u8], buffer: &mut [u8]) -> Result<usize> {
        let start = self.header_len();
        let needed = self.buffer_len(payload.len());
        let Some(slot) = buffer.get_mut(start..needed) else {
            return Err(WireError::Truncated {
                what: "frame buffer",
                needed,
                available: buffer.len(),
            });
        };
        slot.copy_from_slice(payload);
        self.emit_in_place(payload.len(), buffer)
    }

    /// Write the headers around a payload of `payload_len` bytes that the caller already
    /// placed at `buffer[self.header_len()..]`; returns the frame length.
    pub fn emit_in_place(&self, payload_len: usize, buffer: &mut [u8]) -> Result<usize> {
        let needed = self.buffer_len(payload_len);
        let udp_len = UDP_HEADER_LEN + payload_len;
        let ip_payload_max = match self.ip {
            IpAddrs::V4 { .. } => usize::from(u16::MAX) - IPV4_HEADER_LEN,
            IpAddrs::V6 { .. } => usize::from(u16::MAX),
        };
        if udp_len > ip_payload_max {
            return Err(WireError::BadLength {
                what: "UDP payload (too long for one datagram)",
                value: payload_len,
            });
        }
        let Some(frame) = buffer.get_mut(..needed) else {
            return Err(WireError::Truncated {
                what: "frame buffer",
                needed,
                available: buffer.len(),
            });
        };
        let caps = ChecksumCapabilities::default();
        let eth = self.ethernet();
        eth.emit(&mut ethernet::Packet::new_unchecked(&mut *frame));
        let (ip_bytes, udp_bytes) = frame[eth.header_len()..].split_at_mut(self.ip.header_len());
        match self.ip {
            IpAddrs::V4 { src, dst } => {
                // The checksum covers the header only (RFC 791 §3.1): emit after the
                // length fields are known, which Ipv4Repr::emit does itself.
                let repr = Ipv4Repr {
                    src_addr: src,
                    dst_addr: dst,
                    next_header: IpProtocol::Udp,
                    payload_len: udp_len,
                    hop_limit: self.hop_limit,
                };
                repr.emit(&mut Ipv4Packet::new_unchecked(ip_bytes), &caps);
            }
            IpAddrs::V6 { src, dst } => {
                let repr = Ipv6Repr {
                    src_addr: src,
                    dst_addr: dst,
                    next_header: IpProtocol::Udp,
                    payload_len: udp_len,
                    hop_limit: self.hop_limit,
                };
                repr.emit(&mut Ipv6Packet::new_unchecked(ip_bytes));
            }
        }
        let udp = UdpRepr {
            src_port: self.src_port,
            dst_port: self.dst_port,
        };
        // The payload is already in place; UdpRepr::emit writes the header and the
        // checksum over pseudo-header, header and payload (RFC 768).
        udp.emit(
            &mut UdpPacket::new_unchecked(udp_bytes),
            &self.ip.src(),
            &self.ip.dst(),
            payload_len,
            |_| {},
            &caps,
        );
        Ok(needed)
    }
}

fn be16(data: &[u8], at: usize) -> u16 {
    match data.get(at..at + 2) {
        Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]),
        _ => 0,
    }
}

/// Parse an Ethernet / IPv4|IPv6 / UDP frame; see the module documentation for the rules.
pub fn parse(frame: &[u8], checksums: Checksums) -> Result<UdpFrame<'_>> {
    let eth_packet = ethernet::Packet::new_checked(frame)?;
    let eth = ethernet::Repr::parse(&eth_packet)?;
    let ip_offset = eth.header_len();
    let ip_bytes = frame.get(ip_offset..).unwrap_or(&[]);
    let (ip, hop_limit, udp_offset, udp_region) = match eth.ethertype {
        EthernetProtocol::Ipv4 => parse_ipv4(ip_bytes, checksums)?,
        EthernetProtocol::Ipv6 => parse_ipv6(ip_bytes)?,
        other => {
            return Err(WireError::BadValue {
                what: "EtherType (not IPv4 or IPv6)",
                value: u32::from(u16::from(other)),
            });
        }
    };
    if udp_region.len() < UDP_HEADER_LEN {
        return Err(WireError::Truncated {
            what: "UDP header",
            needed: UDP_HEADER_LEN,
            available: udp_region.len(),
        });
    }
    let udp_len = usize::from(be16(udp_region, 4));
    if udp_len < UDP_HEADER_LEN {
        return Err(WireError::BadLength {
            what: "UDP length",
            value: udp_len,
        });
    }
    if udp_len > udp_region.len() {
        return Err(WireError::Truncated {
            what: "UDP datagram (length beyond the IP payload)",
            needed: udp_len,
            available: udp_region.len(),
        });
    }
    let udp_packet = UdpPacket::new_unchecked(&udp_region[..udp_len]);
    if checksums == Checksums::Verify {
        let checksum = udp_packet.checksum();
        // RFC 8200 §8.1: a zero UDP checksum over IPv6 is invalid.
        let zero_on_v6 = checksum == 0 && matches!(ip, IpAddrs::V6 { .. });
        if zero_on_v6 || !udp_packet.verify_checksum(&ip.src(), &ip.dst()) {
            return Err(WireError::BadValue {
                what: "UDP checksum",
                value: u32::from(checksum),
            });
        }
    }
    let payload_offset = ip_offset + udp_offset + UDP_HEADER_LEN;
    Ok(UdpFrame {
        repr: UdpFrameRepr {
            dst_mac: eth.dst,
            src_mac: eth.src,
            vlans: eth.vlans,
            ip,
            hop_limit,
            src_port: udp_packet.src_port(),
            dst_port: udp_packet.dst_port(),
        },
        payload_offset,
        payload: &udp_region[UDP_HEADER_LEN..udp_len],
    })
}

/// Returns the addresses, the TTL, the UDP header's offset in `ip` and the bytes from
/// the UDP header to the end of the IP datagram.
fn parse_ipv4(ip: &[u8], checksums: Checksums) -> Result<(IpAddrs, u8, usize, &[u8])> {
    if ip.len() < IPV4_HEADER_LEN {
        return Err(WireError::Truncated {
            what: "IPv4 header",
            needed: IPV4_HEADER_LEN,
            available: ip.len(),
        });
    }
    let packet = Ipv4Packet::new_unchecked(ip);
    if packet.version() != 4 {
        return Err(WireError::BadValue {
            what: "IPv4 version",
            value: u32::from(packet.version()),
        });
    }
    // RFC 791 §3.1: IHL counts 32-bit words, at least 5.
    let header_len = usize::from(packet.header_len());
    if header_len < IPV4_HEADER_LEN {
        return Err(WireError::BadLength {
            what: "IPv4 IHL",
            value: header_len,
        });
    }
    if ip.len() < header_len {
        return Err(WireError::Truncated {
            what: "IPv4 options",
            needed: header_len,
            available: ip.len(),
        });
    }
    let total_len = usize::from(packet.total_len());
    if total_len < header_len + UDP_HEADER_LEN {
        return Err(WireError::BadLength {
            what: "IPv4 total length",
            value: total_len,
        });
    }
    if total_len > ip.len() {
        return Err(WireError::Truncated {
            what: "IPv4 datagram (total length beyond the frame)",
            needed: total_len,
            available: ip.len(),
        });
    }
    if packet.more_frags() || packet.frag_offset() != 0 {
        return Err(WireError::BadFlags {
            what: "IPv4 fragment",
            flags: be16(ip, 6),
        });
    }
    if packet.next_header() != IpProtocol::Udp {
        return Err(WireError::BadValue {
            what: "IPv4 protocol (not UDP)",
            value: u32::from(u8::from(packet.next_header())),
        });
    }
    if checksums == Checksums::Verify && !packet.verify_checksum() {
        return Err(WireError::BadValue {
            what: "IPv4 header checksum",
            value: u32::from(packet.checksum()),
        });
    }
    let addrs = IpAddrs::V4 {
        src: packet.src_addr(),
        dst: packet.dst_addr(),
    };
    Ok((
        addrs,
        packet.hop_limit(),
        header_len,
        &ip[header_len..total_len],
    ))
}

/// As [`parse_ipv4`], for IPv6 (no extension headers).
fn parse_ipv6(ip: &[u8]) -> Result<(IpAddrs, u8, usize, &[u8])> {
    if ip.len() < IPV6_HEADER_LEN {
        return Err(WireError::Truncated {
            what: "IPv6 header",
            needed: IPV6_HEADER_LEN,
            available: ip.len(),
        });
    }
    let packet = Ipv6Packet::new_unchecked(ip);
    if packet.version() != 6 {
        return Err(WireError::BadValue {
            what: "IPv6 version",
            value: u32::from(packet.version()),
        });
    }
    let total_len = IPV6_HEADER_LEN + usize::from(packet.payload_len());
    if total_len > ip.len() {
        return Err(WireError::Truncated {
            what: "IPv6 datagram (payload length beyond the frame)",
            needed: total_len,
            available: ip.len(),
        });
    }
    if packet.next_header() != IpProtocol::Udp {
        return Err(WireError::BadValue {
            what: "IPv6 next header (not UDP)",
            value: u32::from(u8::from(packet.next_header())),
        });
    }
    let addrs = IpAddrs::V6 {
        src: packet.src_addr(),
        dst: packet.dst_addr(),
    };
    Ok((
        addrs,
        packet.hop_limit(),
        IPV6_HEADER_LEN,
        &ip[IPV6_HEADER_LEN..total_len],
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use crate::wire::ethernet::{Tpid, VlanTag};
    use proptest::prelude::*;

    fn v4_repr(vlans: Vlans) -> UdpFrameRepr {
        UdpFrameRepr {
            dst_mac: EthernetAddress([0x02, 0, 0, 0, 0, 0x02]),
            src_mac: EthernetAddress([0x02, 0, 0, 0, 0, 0x01]),
            vlans,
            ip: IpAddrs::V4 {
                src: Ipv4Address::new(192, 0, 2, 1),
                dst: Ipv4Address::new(192, 0, 2, 2),
            },
            hop_limit: 64,
            src_port: 1701,
            dst_port: 1701,
        }
    }

    const ZLB: [u8; 12] = [
        0xc8, 0x02, 0x00, 0x0c, 0x00, 0x01, 0x00, 0x02, 0x00, 0x03, 0x00, 0x04,
    ];

    /// The same frame built by hand (and dissected by tshark: IPv4 checksum 0xb6c1,
    /// UDP checksum 0xa65f, both "Good").
    const ZLB_FRAME: &str = "020000000002020000000001080045000028000040004011b6c1c0000201c0000202\
                             06a506a50014a65fc802000c0001000200030004";

    #[test]
    fn emit_known_answer_ipv4() {
        let repr = v4_repr(Vlans::Untagged);
        let mut buffer = [0u8; 128];
        let len = repr.emit(&ZLB, &mut buffer).unwrap();
        assert_eq!(len, 14 + 20 + 8 + 12);
        assert_eq!(hex::encode(&buffer[..len]), ZLB_FRAME);
    }

    #[test]
    fn parse_known_answer_ipv4() {
        let bytes = hex::decode(ZLB_FRAME).unwrap();
        let frame = parse(&bytes, Checksums::Verify).unwrap();
        assert_eq!(frame.repr, v4_repr(Vlans::Untagged));
        assert_eq!(frame.payload, &ZLB);
        assert_eq!(frame.payload_offset, 42);
    }

    #[test]
    fn emit_into_short_buffer_is_an_error() {
        let repr = v4_repr(Vlans::Untagged);
        let mut buffer = [0u8; 53];
        assert_eq!(
            repr.emit(&ZLB, &mut buffer),
            Err(WireError::Truncated {
                what: "frame buffer",
                needed: 54,
                available: 53
            })
        );
    }

    #[test]
    fn emit_oversized_payload_is_an_error() {
        let repr = v4_repr(Vlans::Untagged);
        let mut buffer = vec![0u8; 70_000];
        assert!(matches!(
            repr.emit_in_place(65_535 - 28 + 1, &mut buffer),
            Err(WireError::BadLength { .. })
        ));
        assert!(repr.emit_in_place(65_535 - 28, &mut buffer).is_ok());
    }

    #[test]
    fn ipv4_options_are_skipped() {
        // IHL 6: one 4-byte option (NOP NOP NOP EOL).
        let mut bytes = hex::decode(ZLB_FRAME).unwrap();
        bytes.splice(34..34, [0x01, 0x01, 0x01, 0x00]);
        bytes[14] = 0x46;
        bytes[17] += 4;
        let mut ip = Ipv4Packet::new_unchecked(&mut bytes[14..]);
        ip.fill_checksum();
        let frame = parse(&bytes, Checksums::Verify).unwrap();
        assert_eq!(frame.payload, &ZLB);
        assert_eq!(frame.payload_offset, 46);
        assert_eq!(frame.repr, v4_repr(Vlans::Untagged));
    }

    #[test]
    fn ethernet_padding_is_ignored() {
        let mut bytes = hex::decode(ZLB_FRAME).unwrap();
        bytes.resize(60, 0);
        let frame = parse(&bytes, Checksums::Verify).unwrap();
        assert_eq!(frame.payload, &ZLB);
    }

    #[test]
    fn malformed_frames_are_errors() {
        let good = hex::decode(ZLB_FRAME).unwrap();
        let with = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut bytes = good.clone();
            f(&mut bytes);
            parse(&bytes, Checksums::Ignore).unwrap_err()
        };
        // IPv4 total length beyond the frame.
        assert!(matches!(
            with(&|b| b[17] = 0x50),
            WireError::Truncated { needed: 80, .. }
        ));
        // IPv4 total length shorter than IP + UDP headers.
        assert!(matches!(
            with(&|b| b[17] = 0x1b),
            WireError::BadLength {
                what: "IPv4 total length",
                value: 27
            }
        ));
        // IHL 4.
        assert!(matches!(
            with(&|b| b[14] = 0x44),
            WireError::BadLength {
                what: "IPv4 IHL",
                value: 16
            }
        ));
        // Version 5.
        assert!(matches!(
            with(&|b| b[14] = 0x55),
            WireError::BadValue {
                what: "IPv4 version",
                value: 5
            }
        ));
        // More fragments; then a non-zero offset.
        assert!(matches!(
            with(&|b| b[20] = 0x20),
            WireError::BadFlags {
                what: "IPv4 fragment",
                flags: 0x2000
            }
        ));
        assert!(matches!(
            with(&|b| b[21] = 0x01),
            WireError::BadFlags {
                what: "IPv4 fragment",
                flags: 0x4001
            }
        ));
        // TCP.
        assert!(matches!(
            with(&|b| b[23] = 6),
            WireError::BadValue { value: 6, .. }
        ));
        // UDP length 7, then beyond the IP payload.
        assert!(matches!(
            with(&|b| b[39] = 7),
            WireError::BadLength {
                what: "UDP length",
                value: 7
            }
        ));
        assert!(matches!(
            with(&|b| b[39] = 21),
            WireError::Truncated { needed: 21, .. }
        ));
        // ARP.
        assert!(matches!(
            with(&|b| b[13] = 0x06),
            WireError::BadValue { value: 0x0806, .. }
        ));
        // Every truncation.
        for len in 0..good.len() {
            assert!(parse(&good[..len], Checksums::Ignore).is_err(), "{len}");
        }
    }

    #[test]
    fn bad_checksums_are_errors_only_when_verifying() {
        let good = hex::decode(ZLB_FRAME).unwrap();
        let mut bad_ip = good.clone();
        bad_ip[24] ^= 1;
        assert!(matches!(
            parse(&bad_ip, Checksums::Verify),
            Err(WireError::BadValue {
                what: "IPv4 header checksum",
                ..
            })
        ));
        assert!(parse(&bad_ip, Checksums::Ignore).is_ok());
        let mut bad_udp = good.clone();
        bad_udp[53] ^= 1;
        assert!(matches!(
            parse(&bad_udp, Checksums::Verify),
            Err(WireError::BadValue {
                what: "UDP checksum",
                ..
            })
        ));
        assert!(parse(&bad_udp, Checksums::Ignore).is_ok());
        // Zero UDP checksum: "none" on IPv4 (RFC 768) ...
        let mut zero = good.clone();
        zero[40] = 0;
        zero[41] = 0;
        assert!(parse(&zero, Checksums::Verify).is_ok());
    }

    #[test]
    fn zero_udp_checksum_on_ipv6_is_an_error() {
        let repr = UdpFrameRepr {
            ip: IpAddrs::V6 {
                src: Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
                dst: Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2),
            },
            ..v4_repr(Vlans::Single(VlanTag::new(Tpid::Dot1Q, 7)))
        };
        let mut buffer = [0u8; 128];
        let len = repr.emit(&ZLB, &mut buffer).unwrap();
        let udp_checksum = repr.header_len() - 2;
        assert!(parse(&buffer[..len], Checksums::Verify).is_ok());
        buffer[udp_checksum] = 0;
        buffer[udp_checksum + 1] = 0;
        assert!(matches!(
            parse(&buffer[..len], Checksums::Verify),
            Err(WireError::BadValue {
                what: "UDP checksum",
                value: 0
            })
        ));
    }

    fn ip_addrs() -> impl Strategy<Value = IpAddrs> {
        prop_oneof![
            (any::<[u8; 4]>(), any::<[u8; 4]>()).prop_map(|(s, d)| IpAddrs::V4 {
                src: Ipv4Address::from(s),
                dst: Ipv4Address::from(d),
            }),
            (any::<[u8; 16]>(), any::<[u8; 16]>()).prop_map(|(s, d)| IpAddrs::V6 {
                src: Ipv6Address::from(s),
                dst: Ipv6Address::from(d),
            }),
        ]
    }

    fn frame_repr() -> impl Strategy<Value = UdpFrameRepr> {
        (
            any::<[u8; 6]>(),
            any::<[u8; 6]>(),
            crate::wire::ethernet::tests::vlans(),
            ip_addrs(),
            any::<u8>(),
            any::<u16>(),
            any::<u16>(),
        )
            .prop_map(|(dst, src, vlans, ip, hop_limit, src_port, dst_port)| {
                UdpFrameRepr {
                    dst_mac: EthernetAddress(dst),
                    src_mac: EthernetAddress(src),
                    vlans,
                    ip,
                    hop_limit,
                    src_port,
                    dst_port,
                }
            })
    }

    proptest! {
        #[test]
        fn round_trip(repr in frame_repr(), payload in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut buffer = [0u8; 512];
            let len = repr.emit(&payload, &mut buffer).unwrap();
            prop_assert_eq!(len, repr.buffer_len(payload.len()));
            let frame = parse(&buffer[..len], Checksums::Verify).unwrap();
            prop_assert_eq!(frame.repr, repr);
            prop_assert_eq!(frame.payload, &payload[..]);
            prop_assert_eq!(frame.payload_offset, repr.header_len());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            if let Ok(frame) = parse(&bytes, Checksums::Ignore) {
                let end = frame.payload_offset + frame.payload.len();
                prop_assert_eq!(&bytes[frame.payload_offset..end], frame.payload);
            }
        }
    }
}

//! The PPP header as carried in L2TP data messages (RFC 2661 §3.1 carries the PPP frame
//! without HDLC framing, FCS or flags).
//!
//! ```text
//! [ 0xFF 0x03 ]  optional Address and Control fields (RFC 1662 §3.2),
//!                absent when Address-and-Control-Field-Compression was negotiated
//! Protocol       1 octet when Protocol-Field-Compression was negotiated and the
//!                value's high octet is zero, else 2 octets (RFC 1661 §2, §6.5)
//! Information    the payload
//! ```
//!
//! Reception follows RFC 1661 §6.5 and §6.6: when the first two octets are 0xFF 0x03
//! they are the Address and Control fields, otherwise the fields were compressed away;
//! the Protocol field is one octet when the low bit of its first octet is set, two
//! octets otherwise. A two-octet Protocol whose high octet has the low bit set, or
//! whose low octet has the low bit clear, is invalid (RFC 1661 §2).
//!
//! Contract: once [`Packet::new_checked`] (or [`Packet::check_len`]) has succeeded, no
//! accessor panics, whatever the bytes. The view never allocates: the data plane calls
//! it once per packet.

use super::{Result, WireError};

/// Named PPP protocol numbers (RFC 1661 §2, IANA "PPP DLL Protocol Numbers").
pub mod protocol {
    /// Internet Protocol version 4 (RFC 1332).
    pub const IPV4: u16 = 0x0021;
    /// Van Jacobson compressed TCP/IP (RFC 1144).
    pub const VJ_COMPRESSED_TCP: u16 = 0x002D;
    /// Van Jacobson uncompressed TCP/IP (RFC 1144).
    pub const VJ_UNCOMPRESSED_TCP: u16 = 0x002F;
    /// Internet Protocol version 6 (RFC 5072).
    pub const IPV6: u16 = 0x0057;
    /// Multilink (RFC 1990).
    pub const MULTILINK: u16 = 0x003D;
    /// Compressed datagram (RFC 1962).
    pub const COMPRESSED_DATAGRAM: u16 = 0x00FD;
    /// IP Control Protocol (RFC 1332).
    pub const IPCP: u16 = 0x8021;
    /// IPv6 Control Protocol (RFC 5072).
    pub const IPV6CP: u16 = 0x8057;
    /// Compression Control Protocol (RFC 1962).
    pub const CCP: u16 = 0x80FD;
    /// Link Control Protocol (RFC 1661).
    pub const LCP: u16 = 0xC021;
    /// Password Authentication Protocol (RFC 1334).
    pub const PAP: u16 = 0xC023;
    /// Link Quality Report (RFC 1989).
    pub const LQR: u16 = 0xC025;
    /// Challenge Handshake Authentication Protocol (RFC 1994).
    pub const CHAP: u16 = 0xC223;
    /// Extensible Authentication Protocol (RFC 3748).
    pub const EAP: u16 = 0xC227;
}

/// Whether `protocol` is a valid PPP protocol number: the low bit of the high octet is
/// 0 and the low bit of the low octet is 1 (RFC 1661 §2).
pub const fn is_valid_protocol(protocol: u16) -> bool {
    protocol & 0x0100 == 0 && protocol & 0x0001 == 1
}

mod field {
    pub const ADDRESS: usize = 0;
    pub const CONTROL: usize = 1;
    /// The All-Stations address (RFC 1662 §3.1).
    pub const ADDRESS_VALUE: u8 = 0xFF;
    /// Unnumbered Information with the P/F bit clear (RFC 1662 §3.1).
    pub const CONTROL_VALUE: u8 = 0x03;
    pub const ADDRESS_CONTROL_LEN: usize = 2;
}

/// A read/write view of a PPP frame (header and payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap a buffer without checking it. Accessors may panic until
    /// [`check_len`](Self::check_len) has succeeded.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wrap a buffer and check that the header is complete and valid.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Check that the buffer holds a complete header with a valid Protocol field.
    pub fn check_len(&self) -> Result<()> {
        let data = self.buffer.as_ref();
        let offset = self.protocol_offset();
        let first = *data.get(offset).ok_or(WireError::Truncated {
            what: "PPP header",
            needed: offset + 1,
            available: data.len(),
        })?;
        if first & 0x01 == 1 {
            // RFC 1661 §6.5: a one-octet (compressed) Protocol field.
            return Ok(());
        }
        let second = *data.get(offset + 1).ok_or(WireError::Truncated {
            what: "PPP header",
            needed: offset + 2,
            available: data.len(),
        })?;
        if second & 0x01 == 0 {
            // RFC 1661 §2: the low octet of a protocol number is odd.
            return Err(WireError::BadValue {
                what: "PPP protocol",
                value: u32::from(u16::from_be_bytes([first, second])),
            });
        }
        Ok(())
    }

    /// Consume the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Whether the frame starts with the Address and Control fields 0xFF 0x03
    /// (RFC 1661 §6.6).
    pub fn has_address_control(&self) -> bool {
        let data = self.buffer.as_ref();
        data.len() >= field::ADDRESS_CONTROL_LEN
            && data[field::ADDRESS] == field::ADDRESS_VALUE
            && data[field::CONTROL] == field::CONTROL_VALUE
    }

    fn protocol_offset(&self) -> usize {
        if self.has_address_control() {
            field::ADDRESS_CONTROL_LEN
        } else {
            0
        }
    }

    /// Whether the Protocol field is the one-octet compressed form (RFC 1661 §6.5).
    pub fn protocol_compressed(&self) -> bool {
        self.buffer.as_ref()[self.protocol_offset()] & 0x01 == 1
    }

    /// The protocol number, decompressed.
    pub fn protocol(&self) -> u16 {
        let data = self.buffer.as_ref();
        let offset = self.protocol_offset();
        if self.protocol_compressed() {
            u16::from(data[offset])
        } else {
            u16::from_be_bytes([data[offset], data[offset + 1]])
        }
    }

    /// Length of the header: Address/Control (0 or 2) plus Protocol (1 or 2).
    pub fn header_len(&self) -> usize {
        self.protocol_offset() + if self.protocol_compressed() { 1 } else { 2 }
    }

    /// The Information field.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// The Information field, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.buffer.as_mut()[start..]
    }
}

/// The PPP header in owned form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HeaderRepr {
    /// The Address and Control fields 0xFF 0x03 are present.
    pub address_control: bool,
    /// The protocol number; valid per [`is_valid_protocol`].
    pub protocol: u16,
    /// The Protocol field is sent as one octet. Only meaningful when the high octet
    /// of `protocol` is zero (RFC 1661 §6.5); [`HeaderRepr::emit`] sends two octets
    /// otherwise.
    pub compressed: bool,
}

impl HeaderRepr {
    /// The header a sender uses for `protocol` given the negotiated compressions:
    /// ACFC drops the Address and Control fields (RFC 1661 §6.6) except on LCP
    /// packets (which always carry them), PFC shortens protocols below 0x100
    /// (RFC 1661 §6.5).
    pub const fn for_sending(protocol: u16, acfc: bool, pfc: bool) -> HeaderRepr {
        let is_lcp = protocol == self::protocol::LCP;
        HeaderRepr {
            address_control: !acfc || is_lcp,
            protocol,
            compressed: pfc && !is_lcp && protocol < 0x100,
        }
    }

    /// Parse a checked packet's header.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<HeaderRepr> {
        packet.check_len()?;
        Ok(HeaderRepr {
            address_control: packet.has_address_control(),
            protocol: packet.protocol(),
            compressed: packet.protocol_compressed(),
        })
    }

    fn sends_compressed(&self) -> bool {
        self.compressed && self.protocol < 0x100
    }

    /// Header length on the wire.
    pub const fn buffer_len(&self) -> usize {
        let ac = if self.address_control {
            field::ADDRESS_CONTROL_LEN
        } else {
            0
        };
        let proto = if self.compressed && self.protocol < 0x100 {
            1
        } else {
            2
        };
        ac + proto
    }

    /// Write the header at the start of `buffer`, which must hold at least
    /// [`buffer_len`](Self::buffer_len) octets.
    pub fn emit(&self, buffer: &mut [u8]) {
        let mut offset = 0;
        if self.address_control {
            buffer[field::ADDRESS] = field::ADDRESS_VALUE;
            buffer[field::CONTROL] = field::CONTROL_VALUE;
            offset = field::ADDRESS_CONTROL_LEN;
        }
        if self.sends_compressed() {
            buffer[offset] = self.protocol as u8;
        } else {
            buffer[offset..offset + 2].copy_from_slice(&self.protocol.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use proptest::prelude::*;

    fn parse(bytes: &[u8]) -> Result<(HeaderRepr, &[u8])> {
        let packet = Packet::new_checked(bytes)?;
        let repr = HeaderRepr::parse(&packet)?;
        Ok((repr, &bytes[packet.header_len()..]))
    }

    #[test]
    fn address_control_full_protocol() {
        let bytes = [0xFF, 0x03, 0xC0, 0x21, 0x01, 0x02];
        let (repr, payload) = parse(&bytes).unwrap();
        assert_eq!(
            repr,
            HeaderRepr {
                address_control: true,
                protocol: protocol::LCP,
                compressed: false
            }
        );
        assert_eq!(payload, &[0x01, 0x02]);
        assert_eq!(Packet::new_unchecked(&bytes).header_len(), 4);
    }

    #[test]
    fn address_control_compressed_protocol() {
        let bytes = [0xFF, 0x03, 0x21, 0x45];
        let (repr, payload) = parse(&bytes).unwrap();
        assert_eq!(
            repr,
            HeaderRepr {
                address_control: true,
                protocol: protocol::IPV4,
                compressed: true
            }
        );
        assert_eq!(payload, &[0x45]);
    }

    #[test]
    fn no_address_control_full_protocol() {
        let bytes = [0x00, 0x57, 0x60];
        let (repr, payload) = parse(&bytes).unwrap();
        assert_eq!(
            repr,
            HeaderRepr {
                address_control: false,
                protocol: protocol::IPV6,
                compressed: false
            }
        );
        assert_eq!(payload, &[0x60]);
    }

    #[test]
    fn no_address_control_compressed_protocol() {
        let bytes = [0x21];
        let (repr, payload) = parse(&bytes).unwrap();
        assert_eq!(
            repr,
            HeaderRepr {
                address_control: false,
                protocol: protocol::IPV4,
                compressed: true
            }
        );
        assert!(payload.is_empty());
    }

    #[test]
    fn ff_without_03_is_a_compressed_protocol() {
        // RFC 1661 §6.6: only 0xFF 0x03 is taken as Address and Control.
        let (repr, payload) = parse(&[0xFF, 0x21]).unwrap();
        assert!(!repr.address_control);
        assert!(repr.compressed);
        assert_eq!(repr.protocol, 0x00FF);
        assert_eq!(payload, &[0x21]);
    }

    #[test]
    fn truncations() {
        assert_eq!(
            parse(&[]),
            Err(WireError::Truncated {
                what: "PPP header",
                needed: 1,
                available: 0
            })
        );
        assert_eq!(
            parse(&[0x00]),
            Err(WireError::Truncated {
                what: "PPP header",
                needed: 2,
                available: 1
            })
        );
        assert_eq!(
            parse(&[0xFF, 0x03]),
            Err(WireError::Truncated {
                what: "PPP header",
                needed: 3,
                available: 2
            })
        );
        assert_eq!(
            parse(&[0xFF, 0x03, 0xC0]),
            Err(WireError::Truncated {
                what: "PPP header",
                needed: 4,
                available: 3
            })
        );
        // A lone 0xFF is the compressed protocol 0x00FF.
        assert_eq!(parse(&[0xFF]).unwrap().0.protocol, 0x00FF);
    }

    #[test]
    fn invalid_protocol_low_octet_even() {
        assert_eq!(
            parse(&[0xC0, 0x20]),
            Err(WireError::BadValue {
                what: "PPP protocol",
                value: 0xC020
            })
        );
        assert_eq!(
            parse(&[0xFF, 0x03, 0x80, 0x22, 0x00]),
            Err(WireError::BadValue {
                what: "PPP protocol",
                value: 0x8022
            })
        );
    }

    #[test]
    fn invalid_protocol_high_octet_odd_reads_as_compressed() {
        // A high octet with its low bit set can only be a one-octet Protocol field
        // (RFC 1661 §6.5), so 0x0121 reads as protocol 0x0001 followed by payload.
        let (repr, payload) = parse(&[0x01, 0x21]).unwrap();
        assert_eq!(repr.protocol, 0x0001);
        assert!(repr.compressed);
        assert_eq!(payload, &[0x21]);
        assert!(!is_valid_protocol(0x0121));
        assert!(!is_valid_protocol(0xC020));
        assert!(is_valid_protocol(protocol::CHAP));
    }

    #[test]
    fn every_combination_emits_and_parses() {
        for address_control in [false, true] {
            for compressed in [false, true] {
                for proto in [protocol::IPV4, protocol::IPV6, protocol::LCP, protocol::CCP] {
                    let repr = HeaderRepr {
                        address_control,
                        protocol: proto,
                        compressed: compressed && proto < 0x100,
                    };
                    let mut buf = [0xAAu8; 8];
                    repr.emit(&mut buf);
                    let len = repr.buffer_len();
                    let (parsed, payload) = parse(&buf).unwrap();
                    assert_eq!(parsed, repr);
                    assert_eq!(payload.len(), 8 - len);
                    for cut in 0..len {
                        match parse(&buf[..cut]) {
                            // A lone 0xFF is the compressed protocol 0x00FF.
                            Ok((r, _)) => {
                                assert!(address_control && cut == 1 && r.protocol == 0xFF)
                            }
                            Err(e) => assert!(matches!(e, WireError::Truncated { .. })),
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn for_sending() {
        let ip = HeaderRepr::for_sending(protocol::IPV4, true, true);
        assert_eq!(ip.buffer_len(), 1);
        let lcp = HeaderRepr::for_sending(protocol::LCP, true, true);
        assert!(lcp.address_control && !lcp.compressed);
        assert_eq!(lcp.buffer_len(), 4);
        let ipcp = HeaderRepr::for_sending(protocol::IPCP, false, true);
        assert_eq!(ipcp.buffer_len(), 4);
        assert!(!ipcp.compressed);
    }

    #[test]
    fn payload_mut_writes_after_header() {
        let mut bytes = [0xFF, 0x03, 0x00, 0x21, 0x00];
        let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
        packet.payload_mut()[0] = 0x45;
        assert_eq!(bytes[4], 0x45);
    }

    fn valid_header() -> impl Strategy<Value = HeaderRepr> {
        (any::<bool>(), any::<u16>(), any::<bool>()).prop_map(|(ac, p, c)| {
            // 0x00FF (reserved) compressed and followed by 0x03 reads as Address and
            // Control (RFC 1661 §6.6), so it cannot round-trip; leave it out.
            let protocol = match (p & !0x0100) | 0x0001 {
                0x00FF => 0x00FD,
                p => p,
            };
            HeaderRepr {
                address_control: ac,
                protocol,
                compressed: c && protocol < 0x100,
            }
        })
    }

    proptest! {
        #[test]
        fn parse_emit_roundtrip(repr in valid_header(), payload in proptest::collection::vec(any::<u8>(), 0..16)) {
            let mut buf = vec![0u8; repr.buffer_len() + payload.len()];
            repr.emit(&mut buf);
            buf[repr.buffer_len()..].copy_from_slice(&payload);
            let packet = Packet::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(HeaderRepr::parse(&packet).unwrap(), repr);
            prop_assert_eq!(packet.payload(), &payload[..]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..8)) {
            if let Ok(packet) = Packet::new_checked(&bytes[..]) {
                let repr = HeaderRepr::parse(&packet).unwrap();
                prop_assert!(packet.header_len() <= bytes.len());
                prop_assert_eq!(repr.buffer_len(), packet.header_len());
                let _ = packet.payload();
            }
        }
    }
}

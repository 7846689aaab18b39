//! LCP packets and options (RFC 1661 §5, §6; ACCM from RFC 1662 §7.1).
//!
//! [`Repr`] covers every LCP Code: the Configure, Terminate and Code-Reject packets
//! shared with the other control protocols (as [`CpRepr`]), and LCP's own
//! Protocol-Reject, Echo-Request/Reply and Discard-Request (RFC 1661 §5.7-§5.9).
//! Options the codec does not know are kept raw as [`LcpOption::Unknown`] so the
//! automaton can Configure-Reject them; a known option with a wrong length is
//! [`Error::BadOptionSize`] (the whole packet fails; the automaton can still walk
//! [`OptionIter`](super::wire::OptionIter) itself to reject one option).

use super::wire::{
    self, Code, ConfigOption, CpRepr, Packet, RawOption, emit_header, emit_protocol, expect_len,
    split_protocol,
};
use super::{Error, Result};

/// LCP option types (RFC 1661 §6, IANA "PPP LCP Configuration Option Types").
pub mod option_type {
    pub const MRU: u8 = 1;
    pub const ACCM: u8 = 2;
    pub const AUTHENTICATION_PROTOCOL: u8 = 3;
    pub const QUALITY_PROTOCOL: u8 = 4;
    pub const MAGIC_NUMBER: u8 = 5;
    pub const PFC: u8 = 7;
    pub const ACFC: u8 = 8;
}

/// PPP protocol numbers used inside LCP options.
const PAP: u16 = 0xC023;
const CHAP: u16 = 0xC223;
const EAP: u16 = 0xC227;

/// CHAP Algorithm octet of the Authentication-Protocol option (RFC 1994 §3; 0x80 and
/// 0x81 from RFC 2433 §2 and RFC 2759 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChapAlgorithm {
    /// 5: CHAP with MD5 (RFC 1994).
    Md5,
    /// 0x80: MS-CHAP (RFC 2433).
    MsChap,
    /// 0x81: MS-CHAPv2 (RFC 2759).
    MsChapV2,
    /// Any other algorithm.
    Other(u8),
}

impl From<u8> for ChapAlgorithm {
    fn from(value: u8) -> ChapAlgorithm {
        match value {
            5 => ChapAlgorithm::Md5,
            0x80 => ChapAlgorithm::MsChap,
            0x81 => ChapAlgorithm::MsChapV2,
            other => ChapAlgorithm::Other(other),
        }
    }
}

impl From<ChapAlgorithm> for u8 {
    fn from(value: ChapAlgorithm) -> u8 {
        match value {
            ChapAlgorithm::Md5 => 5,
            ChapAlgorithm::MsChap => 0x80,
            ChapAlgorithm::MsChapV2 => 0x81,
            ChapAlgorithm::Other(other) => other,
        }
    }
}

/// The Authentication-Protocol option's value (RFC 1661 §6.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AuthProtocol {
    /// 0xC023 with no data (RFC 1334 §3.1).
    Pap,
    /// 0xC223 with one Algorithm octet (RFC 1994 §3).
    Chap(ChapAlgorithm),
    /// 0xC227 with no data (RFC 3748 §4).
    Eap,
    /// Any other protocol or data shape, kept raw. Never one of the shapes above.
    Other { protocol: u16, data: Vec<u8> },
}

impl AuthProtocol {
    fn from_parts(protocol: u16, data: Vec<u8>) -> AuthProtocol {
        match (protocol, data.as_slice()) {
            (PAP, []) => AuthProtocol::Pap,
            (CHAP, [algorithm]) => AuthProtocol::Chap(ChapAlgorithm::from(*algorithm)),
            (EAP, []) => AuthProtocol::Eap,
            _ => AuthProtocol::Other { protocol, data },
        }
    }

    /// The protocol number.
    pub fn protocol(&self) -> u16 {
        match self {
            AuthProtocol::Pap => PAP,
            AuthProtocol::Chap(_) => CHAP,
            AuthProtocol::Eap => EAP,
            AuthProtocol::Other { protocol, .. } => *protocol,
        }
    }

    fn data_len(&self) -> usize {
        match self {
            AuthProtocol::Pap | AuthProtocol::Eap => 0,
            AuthProtocol::Chap(_) => 1,
            AuthProtocol::Other { data, .. } => data.len(),
        }
    }
}

/// An LCP configuration option (RFC 1661 §6).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LcpOption {
    /// Maximum-Receive-Unit (RFC 1661 §6.1), 4 octets.
    Mru(u16),
    /// Async-Control-Character-Map (RFC 1662 §7.1), 6 octets.
    Accm(u32),
    /// Authentication-Protocol (RFC 1661 §6.2), at least 4 octets.
    AuthenticationProtocol(AuthProtocol),
    /// Quality-Protocol (RFC 1661 §6.3), at least 4 octets.
    QualityProtocol { protocol: u16, data: Vec<u8> },
    /// Magic-Number (RFC 1661 §6.4), 6 octets.
    MagicNumber(u32),
    /// Protocol-Field-Compression (RFC 1661 §6.5), 2 octets.
    Pfc,
    /// Address-and-Control-Field-Compression (RFC 1661 §6.6), 2 octets.
    Acfc,
    /// Any other type, kept raw (its `kind` is never one of the types above).
    Unknown { kind: u8, data: Vec<u8> },
}

impl ConfigOption for LcpOption {
    fn parse(raw: RawOption<'_>) -> Result<LcpOption> {
        use option_type::*;
        Ok(match raw.kind {
            MRU => {
                expect_len(&raw, 2)?;
                LcpOption::Mru(u16::from_be_bytes([raw.data[0], raw.data[1]]))
            }
            ACCM => {
                expect_len(&raw, 4)?;
                LcpOption::Accm(be32(raw.data))
            }
            AUTHENTICATION_PROTOCOL => {
                let (protocol, data) = split_protocol(&raw)?;
                LcpOption::AuthenticationProtocol(AuthProtocol::from_parts(protocol, data))
            }
            QUALITY_PROTOCOL => {
                let (protocol, data) = split_protocol(&raw)?;
                LcpOption::QualityProtocol { protocol, data }
            }
            MAGIC_NUMBER => {
                expect_len(&raw, 4)?;
                LcpOption::MagicNumber(be32(raw.data))
            }
            PFC => {
                expect_len(&raw, 0)?;
                LcpOption::Pfc
            }
            ACFC => {
                expect_len(&raw, 0)?;
                LcpOption::Acfc
            }
            kind => LcpOption::Unknown {
                kind,
                data: raw.data.to_vec(),
            },
        })
    }

    fn kind(&self) -> u8 {
        use option_type::*;
        match self {
            LcpOption::Mru(_) => MRU,
            LcpOption::Accm(_) => ACCM,
            LcpOption::AuthenticationProtocol(_) => AUTHENTICATION_PROTOCOL,
            LcpOption::QualityProtocol { .. } => QUALITY_PROTOCOL,
            LcpOption::MagicNumber(_) => MAGIC_NUMBER,
            LcpOption::Pfc => PFC,
            LcpOption::Acfc => ACFC,
            LcpOption::Unknown { kind, .. } => *kind,
        }
    }

    fn data_len(&self) -> usize {
        match self {
            LcpOption::Mru(_) => 2,
            LcpOption::Accm(_) | LcpOption::MagicNumber(_) => 4,
            LcpOption::AuthenticationProtocol(auth) => 2 + auth.data_len(),
            LcpOption::QualityProtocol { data, .. } => 2 + data.len(),
            LcpOption::Pfc | LcpOption::Acfc => 0,
            LcpOption::Unknown { data, .. } => data.len(),
        }
    }

    fn emit_data(&self, buffer: &mut [u8]) {
        match self {
            LcpOption::Mru(mru) => buffer.copy_from_slice(&mru.to_be_bytes()),
            LcpOption::Accm(value) | LcpOption::MagicNumber(value) => {
                buffer.copy_from_slice(&value.to_be_bytes())
            }
            LcpOption::AuthenticationProtocol(auth) => match auth {
                AuthProtocol::Chap(algorithm) => {
                    emit_protocol(buffer, CHAP, &[u8::from(*algorithm)])
                }
                AuthProtocol::Other { protocol, data } => emit_protocol(buffer, *protocol, data),
                AuthProtocol::Pap | AuthProtocol::Eap => {
                    emit_protocol(buffer, auth.protocol(), &[])
                }
            },
            LcpOption::QualityProtocol { protocol, data } => emit_protocol(buffer, *protocol, data),
            LcpOption::Pfc | LcpOption::Acfc => {}
            LcpOption::Unknown { data, .. } => buffer.copy_from_slice(data),
        }
    }
}

fn be32(data: &[u8]) -> u32 {
    u32::from_be_bytes([data[0], data[1], data[2], data[3]])
}

/// Read the 4-octet Magic-Number at the start of `data` (RFC 1661 §5.8).
fn magic_and_rest(data: &[u8], what: &'static str) -> Result<(u32, Vec<u8>)> {
    match data {
        [a, b, c, d, rest @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), rest.to_vec())),
        _ => Err(Error::Truncated {
            what,
            needed: 4,
            available: data.len(),
        }),
    }
}

/// An LCP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repr {
    /// Codes 1 to 7 (RFC 1661 §5.1-§5.6) and unknown Codes (never 8 to 11 here).
    Control(CpRepr<LcpOption>),
    /// RFC 1661 §5.7: `rejected_information` is the rejected packet's Information
    /// field.
    ProtocolReject {
        identifier: u8,
        rejected_protocol: u16,
        rejected_information: Vec<u8>,
    },
    /// RFC 1661 §5.8.
    EchoRequest {
        identifier: u8,
        magic_number: u32,
        data: Vec<u8>,
    },
    /// RFC 1661 §5.8.
    EchoReply {
        identifier: u8,
        magic_number: u32,
        data: Vec<u8>,
    },
    /// RFC 1661 §5.9.
    DiscardRequest {
        identifier: u8,
        magic_number: u32,
        data: Vec<u8>,
    },
}

impl Repr {
    /// Interpret an uninterpreted LCP packet.
    pub fn from_repr(repr: &wire::Repr<'_>) -> Result<Repr> {
        let identifier = repr.identifier;
        let data = repr.data;
        Ok(match repr.code {
            Code::ProtocolReject => match data {
                [hi, lo, rest @ ..] => Repr::ProtocolReject {
                    identifier,
                    rejected_protocol: u16::from_be_bytes([*hi, *lo]),
                    rejected_information: rest.to_vec(),
                },
                _ => {
                    return Err(Error::Truncated {
                        what: "LCP Protocol-Reject Rejected-Protocol",
                        needed: 2,
                        available: data.len(),
                    });
                }
            },
            Code::EchoRequest => {
                let (magic_number, data) = magic_and_rest(data, "LCP Echo-Request Magic-Number")?;
                Repr::EchoRequest {
                    identifier,
                    magic_number,
                    data,
                }
            }
            Code::EchoReply => {
                let (magic_number, data) = magic_and_rest(data, "LCP Echo-Reply Magic-Number")?;
                Repr::EchoReply {
                    identifier,
                    magic_number,
                    data,
                }
            }
            Code::DiscardRequest => {
                let (magic_number, data) =
                    magic_and_rest(data, "LCP Discard-Request Magic-Number")?;
                Repr::DiscardRequest {
                    identifier,
                    magic_number,
                    data,
                }
            }
            _ => Repr::Control(CpRepr::from_repr(repr)?),
        })
    }

    /// Parse a packet view.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<Repr> {
        Self::from_repr(&wire::Repr::parse(packet)?)
    }

    /// Parse a byte buffer.
    pub fn from_bytes(bytes: &[u8]) -> Result<Repr> {
        Self::parse(&Packet::new_checked(bytes)?)
    }

    /// The Code field.
    pub fn code(&self) -> Code {
        match self {
            Repr::Control(cp) => cp.code(),
            Repr::ProtocolReject { .. } => Code::ProtocolReject,
            Repr::EchoRequest { .. } => Code::EchoRequest,
            Repr::EchoReply { .. } => Code::EchoReply,
            Repr::DiscardRequest { .. } => Code::DiscardRequest,
        }
    }

    /// The Identifier field.
    pub fn identifier(&self) -> u8 {
        match self {
            Repr::Control(cp) => cp.identifier(),
            Repr::ProtocolReject { identifier, .. }
            | Repr::EchoRequest { identifier, .. }
            | Repr::EchoReply { identifier, .. }
            | Repr::DiscardRequest { identifier, .. } => *identifier,
        }
    }

    /// Length on the wire.
    pub fn buffer_len(&self) -> usize {
        match self {
            Repr::Control(cp) => cp.buffer_len(),
            Repr::ProtocolReject {
                rejected_information,
                ..
            } => wire::HEADER_LEN + 2 + rejected_information.len(),
            Repr::EchoRequest { data, .. }
            | Repr::EchoReply { data, .. }
            | Repr::DiscardRequest { data, .. } => wire::HEADER_LEN + 4 + data.len(),
        }
    }

    /// Write the packet into a buffer of at least [`buffer_len`](Self::buffer_len)
    /// octets.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        let (code, identifier) = (self.code(), self.identifier());
        let data_len = self.buffer_len() - wire::HEADER_LEN;
        match self {
            Repr::Control(cp) => cp.emit(packet),
            Repr::ProtocolReject {
                rejected_protocol,
                rejected_information,
                ..
            } => {
                emit_header(packet, code, identifier, data_len);
                emit_protocol(packet.data_mut(), *rejected_protocol, rejected_information);
            }
            Repr::EchoRequest {
                magic_number, data, ..
            }
            | Repr::EchoReply {
                magic_number, data, ..
            }
            | Repr::DiscardRequest {
                magic_number, data, ..
            } => {
                emit_header(packet, code, identifier, data_len);
                let out = packet.data_mut();
                out[..4].copy_from_slice(&magic_number.to_be_bytes());
                out[4..].copy_from_slice(data);
            }
        }
    }

    /// The packet as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut buffer = vec![0; self.buffer_len()];
        self.emit(&mut Packet::new_unchecked(&mut buffer[..]));
        buffer
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use proptest::prelude::*;

    fn golden(bytes: &[u8], expected: Repr) {
        assert_eq!(Repr::from_bytes(bytes).unwrap(), expected);
        assert_eq!(expected.to_bytes(), bytes);
        for cut in 0..bytes.len() {
            assert!(Repr::from_bytes(&bytes[..cut]).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn golden_configure_request_all_options() {
        #[rustfmt::skip]
        let bytes = [
            0x01, 0x01, 0x00, 0x28,
            0x01, 0x04, 0x05, 0xDC,                   // MRU 1500
            0x02, 0x06, 0x00, 0x00, 0x00, 0x00,       // ACCM 0
            0x03, 0x05, 0xC2, 0x23, 0x81,             // CHAP MS-CHAPv2
            0x04, 0x08, 0xC0, 0x25, 0x00, 0x00, 0x0B, 0xB8, // LQR, period 3000
            0x05, 0x06, 0x12, 0x34, 0x56, 0x78,       // Magic-Number
            0x07, 0x02,                               // PFC
            0x08, 0x02,                               // ACFC
            0x0D, 0x03, 0x06,                         // Callback (13), unknown here
        ];
        golden(
            &bytes,
            Repr::Control(CpRepr::ConfigureRequest {
                identifier: 1,
                options: vec![
                    LcpOption::Mru(1500),
                    LcpOption::Accm(0),
                    LcpOption::AuthenticationProtocol(AuthProtocol::Chap(ChapAlgorithm::MsChapV2)),
                    LcpOption::QualityProtocol {
                        protocol: 0xC025,
                        data: vec![0, 0, 0x0B, 0xB8],
                    },
                    LcpOption::MagicNumber(0x1234_5678),
                    LcpOption::Pfc,
                    LcpOption::Acfc,
                    LcpOption::Unknown {
                        kind: 13,
                        data: vec![6],
                    },
                ],
            }),
        );
    }

    #[test]
    fn golden_configure_ack_nak_reject() {
        golden(
            &[0x02, 0x09, 0x00, 0x08, 0x03, 0x04, 0xC0, 0x23],
            Repr::Control(CpRepr::ConfigureAck {
                identifier: 9,
                options: vec![LcpOption::AuthenticationProtocol(AuthProtocol::Pap)],
            }),
        );
        golden(
            &[0x03, 0x0A, 0x00, 0x09, 0x03, 0x05, 0xC2, 0x23, 0x05],
            Repr::Control(CpRepr::ConfigureNak {
                identifier: 10,
                options: vec![LcpOption::AuthenticationProtocol(AuthProtocol::Chap(
                    ChapAlgorithm::Md5,
                ))],
            }),
        );
        golden(
            &[0x04, 0x0B, 0x00, 0x08, 0x03, 0x04, 0xC2, 0x27],
            Repr::Control(CpRepr::ConfigureReject {
                identifier: 11,
                options: vec![LcpOption::AuthenticationProtocol(AuthProtocol::Eap)],
            }),
        );
        golden(
            &[0x04, 0x0C, 0x00, 0x04],
            Repr::Control(CpRepr::ConfigureReject {
                identifier: 12,
                options: vec![],
            }),
        );
    }

    #[test]
    fn golden_terminate_and_code_reject() {
        golden(
            &[0x05, 0x02, 0x00, 0x06, b'b', b'y'],
            Repr::Control(CpRepr::TerminateRequest {
                identifier: 2,
                data: b"by".to_vec(),
            }),
        );
        golden(
            &[0x06, 0x02, 0x00, 0x04],
            Repr::Control(CpRepr::TerminateAck {
                identifier: 2,
                data: vec![],
            }),
        );
        golden(
            &[0x07, 0x03, 0x00, 0x08, 0x0C, 0x01, 0x00, 0x04],
            Repr::Control(CpRepr::CodeReject {
                identifier: 3,
                rejected: vec![0x0C, 0x01, 0x00, 0x04],
            }),
        );
        golden(
            &[0x0C, 0x01, 0x00, 0x05, 0x00],
            Repr::Control(CpRepr::Unknown {
                code: 12,
                identifier: 1,
                data: vec![0],
            }),
        );
    }

    #[test]
    fn golden_protocol_reject_echo_discard() {
        golden(
            &[0x08, 0x04, 0x00, 0x08, 0x80, 0xFD, 0x01, 0x01],
            Repr::ProtocolReject {
                identifier: 4,
                rejected_protocol: 0x80FD,
                rejected_information: vec![1, 1],
            },
        );
        golden(
            &[0x09, 0x05, 0x00, 0x08, 0xDE, 0xAD, 0xBE, 0xEF],
            Repr::EchoRequest {
                identifier: 5,
                magic_number: 0xDEAD_BEEF,
                data: vec![],
            },
        );
        golden(
            &[0x0A, 0x05, 0x00, 0x09, 0x01, 0x02, 0x03, 0x04, 0x55],
            Repr::EchoReply {
                identifier: 5,
                magic_number: 0x0102_0304,
                data: vec![0x55],
            },
        );
        golden(
            &[0x0B, 0x06, 0x00, 0x08, 0, 0, 0, 0],
            Repr::DiscardRequest {
                identifier: 6,
                magic_number: 0,
                data: vec![],
            },
        );
    }

    #[test]
    fn auth_protocol_shapes_kept_raw() {
        // PAP with data and CHAP without an algorithm are not the standard shapes.
        let pap_with_data = [0x01, 0x01, 0x00, 0x09, 0x03, 0x05, 0xC0, 0x23, 0x00];
        let repr = Repr::from_bytes(&pap_with_data).unwrap();
        assert_eq!(
            repr,
            Repr::Control(CpRepr::ConfigureRequest {
                identifier: 1,
                options: vec![LcpOption::AuthenticationProtocol(AuthProtocol::Other {
                    protocol: 0xC023,
                    data: vec![0]
                })]
            })
        );
        assert_eq!(repr.to_bytes(), pap_with_data);
        let chap_bare = [0x01, 0x01, 0x00, 0x08, 0x03, 0x04, 0xC2, 0x23];
        let repr = Repr::from_bytes(&chap_bare).unwrap();
        assert_eq!(repr.to_bytes(), chap_bare);
        assert!(matches!(
            repr,
            Repr::Control(CpRepr::ConfigureRequest { ref options, .. })
                if options == &[LcpOption::AuthenticationProtocol(AuthProtocol::Other { protocol: 0xC223, data: vec![] })]
        ));
        assert_eq!(ChapAlgorithm::from(0x80), ChapAlgorithm::MsChap);
        assert_eq!(u8::from(ChapAlgorithm::Other(7)), 7);
    }

    #[test]
    fn errors() {
        // Known options with a wrong size.
        for (option, kind, length) in [
            (&[0x01, 0x03, 0x05][..], 1, 3),
            (&[0x02, 0x04, 0, 0][..], 2, 4),
            (&[0x03, 0x03, 0xC0][..], 3, 3),
            (&[0x04, 0x02][..], 4, 2),
            (&[0x05, 0x05, 0, 0, 0][..], 5, 5),
            (&[0x07, 0x03, 0][..], 7, 3),
            (&[0x08, 0x03, 0][..], 8, 3),
        ] {
            let mut bytes = vec![0x01, 0x01, 0x00, (4 + option.len()) as u8];
            bytes.extend_from_slice(option);
            assert_eq!(
                Repr::from_bytes(&bytes),
                Err(Error::BadOptionSize { kind, length }),
                "{option:?}"
            );
        }
        assert_eq!(
            Repr::from_bytes(&[0x01, 0x01, 0x00, 0x06, 0x01, 0x01]),
            Err(Error::BadOptionLength { kind: 1, length: 1 })
        );
        assert_eq!(
            Repr::from_bytes(&[0x08, 0x01, 0x00, 0x05, 0xC0]),
            Err(Error::Truncated {
                what: "LCP Protocol-Reject Rejected-Protocol",
                needed: 2,
                available: 1
            })
        );
        assert_eq!(
            Repr::from_bytes(&[0x09, 0x01, 0x00, 0x07, 0, 0, 0]),
            Err(Error::Truncated {
                what: "LCP Echo-Request Magic-Number",
                needed: 4,
                available: 3
            })
        );
        assert_eq!(
            Repr::from_bytes(&[0x0A, 0x01, 0x00, 0x04]),
            Err(Error::Truncated {
                what: "LCP Echo-Reply Magic-Number",
                needed: 4,
                available: 0
            })
        );
        assert_eq!(
            Repr::from_bytes(&[0x0B, 0x01, 0x00, 0x05, 0]),
            Err(Error::Truncated {
                what: "LCP Discard-Request Magic-Number",
                needed: 4,
                available: 1
            })
        );
    }

    fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..max)
    }

    fn auth_protocol() -> impl Strategy<Value = AuthProtocol> {
        prop_oneof![
            Just(AuthProtocol::Pap),
            Just(AuthProtocol::Eap),
            any::<u8>().prop_map(|a| AuthProtocol::Chap(ChapAlgorithm::from(a))),
            (any::<u16>(), bytes(16))
                .prop_map(|(protocol, data)| AuthProtocol::from_parts(protocol, data)),
        ]
    }

    pub(crate) fn lcp_option() -> impl Strategy<Value = LcpOption> {
        prop_oneof![
            any::<u16>().prop_map(LcpOption::Mru),
            any::<u32>().prop_map(LcpOption::Accm),
            auth_protocol().prop_map(LcpOption::AuthenticationProtocol),
            (any::<u16>(), bytes(16))
                .prop_map(|(protocol, data)| LcpOption::QualityProtocol { protocol, data }),
            any::<u32>().prop_map(LcpOption::MagicNumber),
            Just(LcpOption::Pfc),
            Just(LcpOption::Acfc),
            (9u8..=255, bytes(253)).prop_map(|(kind, data)| LcpOption::Unknown { kind, data }),
            bytes(253).prop_map(|data| LcpOption::Unknown { kind: 0, data }),
            bytes(253).prop_map(|data| LcpOption::Unknown { kind: 6, data }),
        ]
    }

    fn lcp_repr() -> impl Strategy<Value = Repr> {
        let options = || proptest::collection::vec(lcp_option(), 0..8);
        prop_oneof![
            (any::<u8>(), options()).prop_map(|(identifier, options)| Repr::Control(
                CpRepr::ConfigureRequest {
                    identifier,
                    options
                }
            )),
            (any::<u8>(), options()).prop_map(|(identifier, options)| Repr::Control(
                CpRepr::ConfigureAck {
                    identifier,
                    options
                }
            )),
            (any::<u8>(), options()).prop_map(|(identifier, options)| Repr::Control(
                CpRepr::ConfigureNak {
                    identifier,
                    options
                }
            )),
            (any::<u8>(), options()).prop_map(|(identifier, options)| Repr::Control(
                CpRepr::ConfigureReject {
                    identifier,
                    options
                }
            )),
            (any::<u8>(), bytes(64)).prop_map(|(identifier, data)| Repr::Control(
                CpRepr::TerminateRequest { identifier, data }
            )),
            (any::<u8>(), bytes(64)).prop_map(|(identifier, data)| Repr::Control(
                CpRepr::TerminateAck { identifier, data }
            )),
            (any::<u8>(), bytes(64)).prop_map(|(identifier, rejected)| Repr::Control(
                CpRepr::CodeReject {
                    identifier,
                    rejected
                }
            )),
            (prop_oneof![Just(0u8), 12u8..=255], any::<u8>(), bytes(64)).prop_map(
                |(code, identifier, data)| Repr::Control(CpRepr::Unknown {
                    code,
                    identifier,
                    data
                })
            ),
            (any::<u8>(), any::<u16>(), bytes(64)).prop_map(
                |(identifier, rejected_protocol, rejected_information)| Repr::ProtocolReject {
                    identifier,
                    rejected_protocol,
                    rejected_information
                }
            ),
            (any::<u8>(), any::<u32>(), bytes(64)).prop_map(|(identifier, magic_number, data)| {
                Repr::EchoRequest {
                    identifier,
                    magic_number,
                    data,
                }
            }),
            (any::<u8>(), any::<u32>(), bytes(64)).prop_map(|(identifier, magic_number, data)| {
                Repr::EchoReply {
                    identifier,
                    magic_number,
                    data,
                }
            }),
            (any::<u8>(), any::<u32>(), bytes(64)).prop_map(|(identifier, magic_number, data)| {
                Repr::DiscardRequest {
                    identifier,
                    magic_number,
                    data,
                }
            }),
        ]
    }

    proptest! {
        #[test]
        fn option_roundtrip(option in lcp_option()) {
            let mut buf = vec![0; option.buffer_len()];
            option.emit(&mut buf);
            let parsed: Vec<LcpOption> = wire::parse_options(&buf).unwrap();
            prop_assert_eq!(parsed, vec![option]);
        }

        #[test]
        fn repr_roundtrip(repr in lcp_repr()) {
            let bytes = repr.to_bytes();
            prop_assert_eq!(bytes.len(), repr.buffer_len());
            prop_assert_eq!(Repr::from_bytes(&bytes).unwrap(), repr);
        }

        #[test]
        fn truncation_never_panics(repr in lcp_repr()) {
            let bytes = repr.to_bytes();
            for cut in 0..bytes.len() {
                prop_assert!(Repr::from_bytes(&bytes[..cut]).is_err());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in bytes(64)) {
            if let Ok(repr) = Repr::from_bytes(&bytes) {
                prop_assert_eq!(Repr::from_bytes(&repr.to_bytes()).unwrap(), repr);
            }
        }
    }
}

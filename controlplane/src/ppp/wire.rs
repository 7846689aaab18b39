//! The PPP control packet (RFC 1661 §5) and configuration options (RFC 1661 §6).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Code      |  Identifier   |            Length             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |    Data ...
//! ```
//!
//! LCP, IPCP, IPv6CP, PAP (RFC 1334 §2.2) and CHAP (RFC 1994 §4) share this header.
//! The Length field covers the header and bounds the data: octets beyond it are padding
//! and ignored (RFC 1661 §5). A Length below 4 or beyond the buffer is an error.
//!
//! Contract: once [`Packet::new_checked`] (or [`Packet::check_len`]) has succeeded,
//! no accessor panics. [`OptionIter`] yields an error, never panics, on a malformed
//! option and stops after it.

use super::{Error, Result};

mod field {
    use core::ops::Range;
    pub const CODE: usize = 0;
    pub const IDENTIFIER: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const HEADER_LEN: usize = 4;

    pub const OPTION_TYPE: usize = 0;
    pub const OPTION_LENGTH: usize = 1;
    pub const OPTION_HEADER_LEN: usize = 2;
}

/// Length of the Code, Identifier and Length fields.
pub const HEADER_LEN: usize = field::HEADER_LEN;

/// Length of an option's Type and Length fields.
pub const OPTION_HEADER_LEN: usize = field::OPTION_HEADER_LEN;

/// The Code field (RFC 1661 §5). Codes 8 to 11 are LCP's only (RFC 1661 §5.7-§5.9);
/// any other value is kept as [`Code::Unknown`] so that the automaton can answer it
/// with a Code-Reject (RFC 1661 §5.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    ConfigureRequest,
    ConfigureAck,
    ConfigureNak,
    ConfigureReject,
    TerminateRequest,
    TerminateAck,
    CodeReject,
    ProtocolReject,
    EchoRequest,
    EchoReply,
    DiscardRequest,
    Unknown(u8),
}

impl From<u8> for Code {
    fn from(value: u8) -> Code {
        match value {
            1 => Code::ConfigureRequest,
            2 => Code::ConfigureAck,
            3 => Code::ConfigureNak,
            4 => Code::ConfigureReject,
            5 => Code::TerminateRequest,
            6 => Code::TerminateAck,
            7 => Code::CodeReject,
            8 => Code::ProtocolReject,
            9 => Code::EchoRequest,
            10 => Code::EchoReply,
            11 => Code::DiscardRequest,
            other => Code::Unknown(other),
        }
    }
}

impl From<Code> for u8 {
    fn from(code: Code) -> u8 {
        match code {
            Code::ConfigureRequest => 1,
            Code::ConfigureAck => 2,
            Code::ConfigureNak => 3,
            Code::ConfigureReject => 4,
            Code::TerminateRequest => 5,
            Code::TerminateAck => 6,
            Code::CodeReject => 7,
            Code::ProtocolReject => 8,
            Code::EchoRequest => 9,
            Code::EchoReply => 10,
            Code::DiscardRequest => 11,
            Code::Unknown(other) => other,
        }
    }
}

/// A read/write view of a PPP control packet.
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

    /// Wrap a buffer and check the header and the Length field.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Check that the header is complete and that `4 <= Length <= buffer length`.
    pub fn check_len(&self) -> Result<()> {
        let available = self.buffer.as_ref().len();
        if available < field::HEADER_LEN {
            return Err(Error::Truncated {
                what: "PPP control packet header",
                needed: field::HEADER_LEN,
                available,
            });
        }
        let length = usize::from(self.length());
        if length < field::HEADER_LEN {
            return Err(Error::BadLength {
                what: "PPP control packet Length",
                value: length,
            });
        }
        if length > available {
            return Err(Error::Truncated {
                what: "PPP control packet",
                needed: length,
                available,
            });
        }
        Ok(())
    }

    /// Consume the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The Code field.
    pub fn code(&self) -> Code {
        Code::from(self.buffer.as_ref()[field::CODE])
    }

    /// The Identifier field.
    pub fn identifier(&self) -> u8 {
        self.buffer.as_ref()[field::IDENTIFIER]
    }

    /// The Length field (header included).
    pub fn length(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::LENGTH];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The Data field, bounded by Length; padding after it is excluded.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::HEADER_LEN..usize::from(self.length())]
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The Data field with the lifetime of the underlying buffer.
    pub fn data_ref(&self) -> &'a [u8] {
        let buffer: &'a [u8] = self.buffer.as_ref();
        &buffer[field::HEADER_LEN..usize::from(self.length())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set the Code field.
    pub fn set_code(&mut self, code: Code) {
        self.buffer.as_mut()[field::CODE] = code.into();
    }

    /// Set the Identifier field.
    pub fn set_identifier(&mut self, identifier: u8) {
        self.buffer.as_mut()[field::IDENTIFIER] = identifier;
    }

    /// Set the Length field.
    pub fn set_length(&mut self, length: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&length.to_be_bytes());
    }

    /// The Data field, mutable, bounded by Length.
    pub fn data_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.length());
        &mut self.buffer.as_mut()[field::HEADER_LEN..end]
    }
}

/// A control packet with its Data uninterpreted: what the automaton needs to route a
/// packet by Code, and to Code-Reject one (RFC 1661 §5.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr<'a> {
    pub code: Code,
    pub identifier: u8,
    pub data: &'a [u8],
}

impl<'a> Repr<'a> {
    /// Parse a packet view.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&'a T>) -> Result<Repr<'a>> {
        packet.check_len()?;
        Ok(Repr {
            code: packet.code(),
            identifier: packet.identifier(),
            data: packet.data_ref(),
        })
    }

    /// Parse a byte buffer (header, data, and any padding).
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Repr<'a>> {
        Repr::parse(&Packet::new_checked(bytes)?)
    }

    /// Length on the wire.
    pub fn buffer_len(&self) -> usize {
        field::HEADER_LEN + self.data.len()
    }

    /// Write the packet; `data` must be at most 65531 octets.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        emit_header(packet, self.code, self.identifier, self.data.len());
        packet.data_mut().copy_from_slice(self.data);
    }
}

/// Write Code, Identifier and Length for `data_len` octets of data.
pub(crate) fn emit_header<T: AsRef<[u8]> + AsMut<[u8]>>(
    packet: &mut Packet<T>,
    code: Code,
    identifier: u8,
    data_len: usize,
) {
    packet.set_code(code);
    packet.set_identifier(identifier);
    packet.set_length((field::HEADER_LEN + data_len) as u16);
}

/// A configuration option with its data uninterpreted (RFC 1661 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawOption<'a> {
    /// The Type field.
    pub kind: u8,
    /// The octets after Type and Length.
    pub data: &'a [u8],
}

impl RawOption<'_> {
    /// Length on the wire (Type and Length included).
    pub fn buffer_len(&self) -> usize {
        field::OPTION_HEADER_LEN + self.data.len()
    }

    /// Write the option; `data` must be at most 253 octets.
    pub fn emit(&self, buffer: &mut [u8]) {
        emit_option_header(buffer, self.kind, self.data.len());
        buffer[field::OPTION_HEADER_LEN..self.buffer_len()].copy_from_slice(self.data);
    }
}

fn emit_option_header(buffer: &mut [u8], kind: u8, data_len: usize) {
    buffer[field::OPTION_TYPE] = kind;
    buffer[field::OPTION_LENGTH] = (field::OPTION_HEADER_LEN + data_len) as u8;
}

/// Iterator over the options of a Configure-Request/Ack/Nak/Reject's Data. Each
/// option's Length must be at least 2 and stay inside the data; the first violation
/// is yielded as an error and ends the iteration.
#[derive(Debug, Clone)]
pub struct OptionIter<'a> {
    data: &'a [u8],
    failed: bool,
}

impl<'a> OptionIter<'a> {
    /// Iterate over the options in `data`.
    pub fn new(data: &'a [u8]) -> OptionIter<'a> {
        OptionIter {
            data,
            failed: false,
        }
    }
}

impl<'a> Iterator for OptionIter<'a> {
    type Item = Result<RawOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.data.is_empty() {
            return None;
        }
        let data = self.data;
        let result = match (data.get(field::OPTION_TYPE), data.get(field::OPTION_LENGTH)) {
            (Some(&kind), Some(&length)) => {
                let len = usize::from(length);
                if len < field::OPTION_HEADER_LEN || len > data.len() {
                    Err(Error::BadOptionLength { kind, length })
                } else {
                    self.data = &data[len..];
                    Ok(RawOption {
                        kind,
                        data: &data[field::OPTION_HEADER_LEN..len],
                    })
                }
            }
            _ => Err(Error::Truncated {
                what: "PPP option header",
                needed: field::OPTION_HEADER_LEN,
                available: data.len(),
            }),
        };
        self.failed = result.is_err();
        Some(result)
    }
}

impl core::iter::FusedIterator for OptionIter<'_> {}

/// A typed configuration option of one control protocol.
pub trait ConfigOption: Sized {
    /// Interpret a raw option; a known type with a wrong length is
    /// [`Error::BadOptionSize`].
    fn parse(raw: RawOption<'_>) -> Result<Self>;

    /// The Type field.
    fn kind(&self) -> u8;

    /// Length of the data after Type and Length (at most 253).
    fn data_len(&self) -> usize;

    /// Write the data after Type and Length into `buffer` (exactly `data_len` octets).
    fn emit_data(&self, buffer: &mut [u8]);

    /// Length on the wire.
    fn buffer_len(&self) -> usize {
        field::OPTION_HEADER_LEN + self.data_len()
    }

    /// Write Type, Length and data.
    fn emit(&self, buffer: &mut [u8]) {
        let len = self.buffer_len();
        emit_option_header(buffer, self.kind(), self.data_len());
        self.emit_data(&mut buffer[field::OPTION_HEADER_LEN..len]);
    }
}

/// Parse every option in `data`, in order.
pub fn parse_options<O: ConfigOption>(data: &[u8]) -> Result<Vec<O>> {
    OptionIter::new(data)
        .map(|raw| raw.and_then(O::parse))
        .collect()
}

/// Total wire length of `options`.
pub fn options_len<O: ConfigOption>(options: &[O]) -> usize {
    options.iter().map(ConfigOption::buffer_len).sum()
}

/// Write `options` in order at the start of `buffer`.
pub fn emit_options<O: ConfigOption>(options: &[O], buffer: &mut [u8]) {
    let mut offset = 0;
    for option in options {
        let len = option.buffer_len();
        option.emit(&mut buffer[offset..offset + len]);
        offset += len;
    }
}

/// Check that an option's data has exactly `len` octets.
pub(crate) fn expect_len(raw: &RawOption<'_>, len: usize) -> Result<()> {
    if raw.data.len() == len {
        Ok(())
    } else {
        Err(Error::BadOptionSize {
            kind: raw.kind,
            length: raw.buffer_len(),
        })
    }
}

/// A protocol number and the data after it, the shape of LCP's Authentication- and
/// Quality-Protocol and of IPCP's and IPv6CP's compression options.
pub(crate) fn split_protocol(raw: &RawOption<'_>) -> Result<(u16, Vec<u8>)> {
    match raw.data {
        [hi, lo, rest @ ..] => Ok((u16::from_be_bytes([*hi, *lo]), rest.to_vec())),
        _ => Err(Error::BadOptionSize {
            kind: raw.kind,
            length: raw.buffer_len(),
        }),
    }
}

/// Write a protocol number and its data.
pub(crate) fn emit_protocol(buffer: &mut [u8], protocol: u16, data: &[u8]) {
    buffer[..2].copy_from_slice(&protocol.to_be_bytes());
    buffer[2..2 + data.len()].copy_from_slice(data);
}

/// The packets every RFC 1661 control protocol has (Codes 1 to 7), generic over the
/// protocol's option type: IPCP and IPv6CP use it as their whole repr, LCP adds its
/// own Codes 8 to 11 around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpRepr<O> {
    /// RFC 1661 §5.1.
    ConfigureRequest { identifier: u8, options: Vec<O> },
    /// RFC 1661 §5.2.
    ConfigureAck { identifier: u8, options: Vec<O> },
    /// RFC 1661 §5.3.
    ConfigureNak { identifier: u8, options: Vec<O> },
    /// RFC 1661 §5.4.
    ConfigureReject { identifier: u8, options: Vec<O> },
    /// RFC 1661 §5.5.
    TerminateRequest { identifier: u8, data: Vec<u8> },
    /// RFC 1661 §5.5.
    TerminateAck { identifier: u8, data: Vec<u8> },
    /// RFC 1661 §5.6: `rejected` is the rejected packet from its Code field on.
    CodeReject { identifier: u8, rejected: Vec<u8> },
    /// A Code this protocol does not define: answer with a Code-Reject (RFC 1661
    /// §5.6). `code` is never one of the Codes above (nor, for LCP, 8 to 11).
    Unknown {
        code: u8,
        identifier: u8,
        data: Vec<u8>,
    },
}

impl<O: ConfigOption> CpRepr<O> {
    /// Interpret an uninterpreted packet; Codes other than 1 to 7 become `Unknown`.
    pub fn from_repr(repr: &Repr<'_>) -> Result<CpRepr<O>> {
        let identifier = repr.identifier;
        let data = repr.data;
        Ok(match repr.code {
            Code::ConfigureRequest => CpRepr::ConfigureRequest {
                identifier,
                options: parse_options(data)?,
            },
            Code::ConfigureAck => CpRepr::ConfigureAck {
                identifier,
                options: parse_options(data)?,
            },
            Code::ConfigureNak => CpRepr::ConfigureNak {
                identifier,
                options: parse_options(data)?,
            },
            Code::ConfigureReject => CpRepr::ConfigureReject {
                identifier,
                options: parse_options(data)?,
            },
            Code::TerminateRequest => CpRepr::TerminateRequest {
                identifier,
                data: data.to_vec(),
            },
            Code::TerminateAck => CpRepr::TerminateAck {
                identifier,
                data: data.to_vec(),
            },
            Code::CodeReject => CpRepr::CodeReject {
                identifier,
                rejected: data.to_vec(),
            },
            code => CpRepr::Unknown {
                code: code.into(),
                identifier,
                data: data.to_vec(),
            },
        })
    }

    /// Parse a packet view.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<CpRepr<O>> {
        Self::from_repr(&Repr::parse(packet)?)
    }

    /// Parse a byte buffer.
    pub fn from_bytes(bytes: &[u8]) -> Result<CpRepr<O>> {
        Self::parse(&Packet::new_checked(bytes)?)
    }

    /// The Code field.
    pub fn code(&self) -> Code {
        match self {
            CpRepr::ConfigureRequest { .. } => Code::ConfigureRequest,
            CpRepr::ConfigureAck { .. } => Code::ConfigureAck,
            CpRepr::ConfigureNak { .. } => Code::ConfigureNak,
            CpRepr::ConfigureReject { .. } => Code::ConfigureReject,
            CpRepr::TerminateRequest { .. } => Code::TerminateRequest,
            CpRepr::TerminateAck { .. } => Code::TerminateAck,
            CpRepr::CodeReject { .. } => Code::CodeReject,
            CpRepr::Unknown { code, .. } => Code::from(*code),
        }
    }

    /// The Identifier field.
    pub fn identifier(&self) -> u8 {
        match self {
            CpRepr::ConfigureRequest { identifier, .. }
            | CpRepr::ConfigureAck { identifier, .. }
            | CpRepr::ConfigureNak { identifier, .. }
            | CpRepr::ConfigureReject { identifier, .. }
            | CpRepr::TerminateRequest { identifier, .. }
            | CpRepr::TerminateAck { identifier, .. }
            | CpRepr::CodeReject { identifier, .. }
            | CpRepr::Unknown { identifier, .. } => *identifier,
        }
    }

    fn data_len(&self) -> usize {
        match self {
            CpRepr::ConfigureRequest { options, .. }
            | CpRepr::ConfigureAck { options, .. }
            | CpRepr::ConfigureNak { options, .. }
            | CpRepr::ConfigureReject { options, .. } => options_len(options),
            CpRepr::TerminateRequest { data, .. }
            | CpRepr::TerminateAck { data, .. }
            | CpRepr::CodeReject { rejected: data, .. }
            | CpRepr::Unknown { data, .. } => data.len(),
        }
    }

    /// Length on the wire.
    pub fn buffer_len(&self) -> usize {
        field::HEADER_LEN + self.data_len()
    }

    /// Write the packet into a buffer of at least [`buffer_len`](Self::buffer_len)
    /// octets.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        emit_header(packet, self.code(), self.identifier(), self.data_len());
        let out = packet.data_mut();
        match self {
            CpRepr::ConfigureRequest { options, .. }
            | CpRepr::ConfigureAck { options, .. }
            | CpRepr::ConfigureNak { options, .. }
            | CpRepr::ConfigureReject { options, .. } => emit_options(options, out),
            CpRepr::TerminateRequest { data, .. }
            | CpRepr::TerminateAck { data, .. }
            | CpRepr::CodeReject { rejected: data, .. }
            | CpRepr::Unknown { data, .. } => out.copy_from_slice(data),
        }
    }

    /// The packet as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut buffer = vec![0; self.buffer_len()];
        self.emit(&mut Packet::new_unchecked(&mut buffer[..]));
        buffer
    }
}

/// proptest strategies shared by the control protocols' tests (IPCP, IPv6CP).
#[cfg(test)]
pub(crate) mod strategies {
    use super::CpRepr;
    use proptest::prelude::*;

    /// Up to `max - 1` arbitrary octets.
    pub(crate) fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..max)
    }

    /// Every [`CpRepr`] variant, with options drawn from the strategy `option` makes.
    pub(crate) fn cp_repr<O, S>(option: fn() -> S) -> impl Strategy<Value = CpRepr<O>>
    where
        O: core::fmt::Debug + Clone,
        S: Strategy<Value = O>,
    {
        let options = move || proptest::collection::vec(option(), 0..8);
        prop_oneof![
            (any::<u8>(), options()).prop_map(|(identifier, options)| {
                CpRepr::ConfigureRequest {
                    identifier,
                    options,
                }
            }),
            (any::<u8>(), options()).prop_map(|(identifier, options)| CpRepr::ConfigureAck {
                identifier,
                options
            }),
            (any::<u8>(), options()).prop_map(|(identifier, options)| CpRepr::ConfigureNak {
                identifier,
                options
            }),
            (any::<u8>(), options()).prop_map(|(identifier, options)| {
                CpRepr::ConfigureReject {
                    identifier,
                    options,
                }
            }),
            (any::<u8>(), bytes(32))
                .prop_map(|(identifier, data)| CpRepr::TerminateRequest { identifier, data }),
            (any::<u8>(), bytes(32))
                .prop_map(|(identifier, data)| CpRepr::TerminateAck { identifier, data }),
            (any::<u8>(), bytes(32)).prop_map(|(identifier, rejected)| CpRepr::CodeReject {
                identifier,
                rejected
            }),
            (prop_oneof![Just(0u8), 8u8..=255], any::<u8>(), bytes(32)).prop_map(
                |(code, identifier, data)| CpRepr::Unknown {
                    code,
                    identifier,
                    data
                }
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn code_roundtrip() {
        for value in 0..=255u8 {
            assert_eq!(u8::from(Code::from(value)), value);
        }
        assert_eq!(Code::from(9), Code::EchoRequest);
        assert_eq!(Code::from(12), Code::Unknown(12));
        assert_eq!(Code::from(0), Code::Unknown(0));
    }

    #[test]
    fn length_bounds_data_padding_ignored() {
        let bytes = [0x05, 0x07, 0x00, 0x06, 0xAA, 0xBB, 0xCC, 0xDD];
        let repr = Repr::from_bytes(&bytes).unwrap();
        assert_eq!(
            repr,
            Repr {
                code: Code::TerminateRequest,
                identifier: 7,
                data: &[0xAA, 0xBB]
            }
        );
        let mut out = vec![0; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut out[..]));
        assert_eq!(out, &bytes[..6]);
    }

    #[test]
    fn header_errors() {
        assert_eq!(
            Repr::from_bytes(&[1, 2, 0]),
            Err(Error::Truncated {
                what: "PPP control packet header",
                needed: 4,
                available: 3
            })
        );
        assert_eq!(
            Repr::from_bytes(&[1, 2, 0, 3]),
            Err(Error::BadLength {
                what: "PPP control packet Length",
                value: 3
            })
        );
        assert_eq!(
            Repr::from_bytes(&[1, 2, 0, 6, 0]),
            Err(Error::Truncated {
                what: "PPP control packet",
                needed: 6,
                available: 5
            })
        );
    }

    #[test]
    fn option_iter() {
        let data = [1, 4, 5, 220, 7, 2, 3, 3, 9];
        let options: Vec<_> = OptionIter::new(&data).collect();
        assert_eq!(
            options,
            vec![
                Ok(RawOption {
                    kind: 1,
                    data: &[5, 220]
                }),
                Ok(RawOption { kind: 7, data: &[] }),
                Ok(RawOption {
                    kind: 3,
                    data: &[9]
                }),
            ]
        );
    }

    #[test]
    fn option_iter_errors_and_stops() {
        let short: Vec<_> = OptionIter::new(&[1, 1, 7, 2]).collect();
        assert_eq!(
            short,
            vec![Err(Error::BadOptionLength { kind: 1, length: 1 })]
        );
        let zero: Vec<_> = OptionIter::new(&[7, 2, 8, 0]).collect();
        assert_eq!(
            zero,
            vec![
                Ok(RawOption { kind: 7, data: &[] }),
                Err(Error::BadOptionLength { kind: 8, length: 0 })
            ]
        );
        let past: Vec<_> = OptionIter::new(&[5, 6, 0, 0, 0]).collect();
        assert_eq!(
            past,
            vec![Err(Error::BadOptionLength { kind: 5, length: 6 })]
        );
        let lone: Vec<_> = OptionIter::new(&[7, 2, 8]).collect();
        assert_eq!(
            lone,
            vec![
                Ok(RawOption { kind: 7, data: &[] }),
                Err(Error::Truncated {
                    what: "PPP option header",
                    needed: 2,
                    available: 1
                })
            ]
        );
    }

    #[test]
    fn setters() {
        let mut buf = [0u8; 6];
        let mut packet = Packet::new_unchecked(&mut buf[..]);
        packet.set_code(Code::EchoReply);
        packet.set_identifier(0x42);
        packet.set_length(6);
        packet.data_mut().copy_from_slice(&[1, 2]);
        assert_eq!(buf, [10, 0x42, 0, 6, 1, 2]);
    }

    proptest! {
        #[test]
        fn repr_roundtrip(code in any::<u8>(), identifier in any::<u8>(), data in proptest::collection::vec(any::<u8>(), 0..64), pad in 0usize..4) {
            let repr = Repr { code: Code::from(code), identifier, data: &data };
            let mut buf = vec![0xEE; repr.buffer_len() + pad];
            repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
            prop_assert_eq!(Repr::from_bytes(&buf).unwrap(), repr);
        }

        #[test]
        fn option_iter_never_panics(data in proptest::collection::vec(any::<u8>(), 0..32)) {
            let mut total = 0;
            for option in OptionIter::new(&data) {
                match option {
                    Ok(raw) => total += raw.buffer_len(),
                    Err(_) => return Ok(()),
                }
            }
            prop_assert_eq!(total, data.len());
        }

        #[test]
        fn raw_option_roundtrip(kind in any::<u8>(), data in proptest::collection::vec(any::<u8>(), 0..253)) {
            let raw = RawOption { kind, data: &data };
            let mut buf = vec![0; raw.buffer_len()];
            raw.emit(&mut buf);
            let parsed: Vec<_> = OptionIter::new(&buf).collect();
            prop_assert_eq!(parsed, vec![Ok(raw)]);
        }
    }
}

//! IPv6CP packets and options (RFC 5072).
//!
//! IPv6CP uses Codes 1 to 7 only (RFC 5072 §3); any other Code is
//! [`CpRepr::Unknown`] and gets a Code-Reject. Unknown options are kept raw as
//! [`Ipv6cpOption::Unknown`]; a known option with a wrong length is
//! [`Error::BadOptionSize`](super::Error::BadOptionSize).

use super::Result;
use super::wire::{ConfigOption, CpRepr, RawOption, emit_protocol, expect_len, split_protocol};

/// IPv6CP option types (RFC 5072 §4).
pub mod option_type {
    pub const INTERFACE_IDENTIFIER: u8 = 1;
    pub const IPV6_COMPRESSION_PROTOCOL: u8 = 2;
}

/// An IPv6CP packet.
pub type Repr = CpRepr<Ipv6cpOption>;

/// An IPv6CP configuration option.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Ipv6cpOption {
    /// Interface-Identifier (RFC 5072 §4.1), 10 octets.
    InterfaceIdentifier([u8; 8]),
    /// IPv6-Compression-Protocol (RFC 5072 §4.2), at least 4 octets.
    Ipv6CompressionProtocol { protocol: u16, data: Vec<u8> },
    /// Any other type, kept raw (its `kind` is never one of the types above).
    Unknown { kind: u8, data: Vec<u8> },
}

impl ConfigOption for Ipv6cpOption {
    fn parse(raw: RawOption<'_>) -> Result<Ipv6cpOption> {
        use option_type::*;
        Ok(match raw.kind {
            INTERFACE_IDENTIFIER => {
                expect_len(&raw, 8)?;
                let mut id = [0; 8];
                id.copy_from_slice(raw.data);
                Ipv6cpOption::InterfaceIdentifier(id)
            }
            IPV6_COMPRESSION_PROTOCOL => {
                let (protocol, data) = split_protocol(&raw)?;
                Ipv6cpOption::Ipv6CompressionProtocol { protocol, data }
            }
            kind => Ipv6cpOption::Unknown {
                kind,
                data: raw.data.to_vec(),
            },
        })
    }

    fn kind(&self) -> u8 {
        use option_type::*;
        match self {
            Ipv6cpOption::InterfaceIdentifier(_) => INTERFACE_IDENTIFIER,
            Ipv6cpOption::Ipv6CompressionProtocol { .. } => IPV6_COMPRESSION_PROTOCOL,
            Ipv6cpOption::Unknown { kind, .. } => *kind,
        }
    }

    fn data_len(&self) -> usize {
        match self {
            Ipv6cpOption::InterfaceIdentifier(_) => 8,
            Ipv6cpOption::Ipv6CompressionProtocol { data, .. } => 2 + data.len(),
            Ipv6cpOption::Unknown { data, .. } => data.len(),
        }
    }

    fn emit_data(&self, buffer: &mut [u8]) {
        match self {
            Ipv6cpOption::InterfaceIdentifier(id) => buffer.copy_from_slice(id),
            Ipv6cpOption::Ipv6CompressionProtocol { protocol, data } => {
                emit_protocol(buffer, *protocol, data)
            }
            Ipv6cpOption::Unknown { data, .. } => buffer.copy_from_slice(data),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::super::Error;
    use super::super::wire;
    use super::super::wire::strategies::{bytes, cp_repr};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn golden_configure_request_and_nak() {
        let bytes = [
            0x01, 0x01, 0x00, 0x12, 0x01, 0x0A, 0x02, 0x11, 0x22, 0xFF, 0xFE, 0x33, 0x44, 0x55,
            0x02, 0x04, 0x00, 0x4F,
        ];
        let expected = Repr::ConfigureRequest {
            identifier: 1,
            options: vec![
                Ipv6cpOption::InterfaceIdentifier([0x02, 0x11, 0x22, 0xFF, 0xFE, 0x33, 0x44, 0x55]),
                Ipv6cpOption::Ipv6CompressionProtocol {
                    protocol: 0x004F,
                    data: vec![],
                },
            ],
        };
        assert_eq!(Repr::from_bytes(&bytes).unwrap(), expected);
        assert_eq!(expected.to_bytes(), bytes);
        for cut in 0..bytes.len() {
            assert!(Repr::from_bytes(&bytes[..cut]).is_err());
        }

        let nak = [0x03, 0x01, 0x00, 0x0E, 0x01, 0x0A, 0, 0, 0, 0, 0, 0, 0, 1];
        let expected = Repr::ConfigureNak {
            identifier: 1,
            options: vec![Ipv6cpOption::InterfaceIdentifier([0, 0, 0, 0, 0, 0, 0, 1])],
        };
        assert_eq!(Repr::from_bytes(&nak).unwrap(), expected);
        assert_eq!(expected.to_bytes(), nak);

        let unknown = [0x04, 0x02, 0x00, 0x07, 0x03, 0x03, 0xAA];
        let expected = Repr::ConfigureReject {
            identifier: 2,
            options: vec![Ipv6cpOption::Unknown {
                kind: 3,
                data: vec![0xAA],
            }],
        };
        assert_eq!(Repr::from_bytes(&unknown).unwrap(), expected);
        assert_eq!(expected.to_bytes(), unknown);
    }

    #[test]
    fn errors() {
        assert_eq!(
            Repr::from_bytes(&[0x01, 0x01, 0x00, 0x08, 0x01, 0x04, 0, 0]),
            Err(Error::BadOptionSize { kind: 1, length: 4 })
        );
        assert_eq!(
            Repr::from_bytes(&[0x01, 0x01, 0x00, 0x07, 0x02, 0x03, 0]),
            Err(Error::BadOptionSize { kind: 2, length: 3 })
        );
        assert_eq!(
            Repr::from_bytes(&[0x01, 0x01, 0x00, 0x05, 0x02]),
            Err(Error::Truncated {
                what: "PPP option header",
                needed: 2,
                available: 1
            })
        );
    }

    fn ipv6cp_option() -> impl Strategy<Value = Ipv6cpOption> {
        prop_oneof![
            any::<[u8; 8]>().prop_map(Ipv6cpOption::InterfaceIdentifier),
            (any::<u16>(), bytes(16)).prop_map(|(protocol, data)| {
                Ipv6cpOption::Ipv6CompressionProtocol { protocol, data }
            }),
            (prop_oneof![Just(0u8), 3u8..=255], bytes(253))
                .prop_map(|(kind, data)| Ipv6cpOption::Unknown { kind, data }),
        ]
    }

    fn ipv6cp_repr() -> impl Strategy<Value = Repr> {
        cp_repr(ipv6cp_option)
    }

    proptest! {
        #[test]
        fn option_roundtrip(option in ipv6cp_option()) {
            let mut buf = vec![0; option.buffer_len()];
            option.emit(&mut buf);
            let parsed: Vec<Ipv6cpOption> = wire::parse_options(&buf).unwrap();
            prop_assert_eq!(parsed, vec![option]);
        }

        #[test]
        fn repr_roundtrip(repr in ipv6cp_repr()) {
            let bytes = repr.to_bytes();
            prop_assert_eq!(Repr::from_bytes(&bytes).unwrap(), repr);
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

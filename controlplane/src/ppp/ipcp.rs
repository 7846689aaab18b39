//! IPCP packets and options (RFC 1332; DNS and NBNS options from RFC 1877).
//!
//! IPCP uses Codes 1 to 7 only (RFC 1332 §2); any other Code is
//! [`CpRepr::Unknown`] and gets a Code-Reject. Unknown options are kept raw as
//! [`IpcpOption::Unknown`]; a known option with a wrong length is
//! [`Error::BadOptionSize`](super::Error::BadOptionSize).

use core::net::Ipv4Addr;

use super::Result;
use super::wire::{ConfigOption, CpRepr, RawOption, emit_protocol, expect_len, split_protocol};

/// IPCP option types (RFC 1332 §3, RFC 1877 §1).
pub mod option_type {
    pub const IP_ADDRESSES: u8 = 1;
    pub const IP_COMPRESSION_PROTOCOL: u8 = 2;
    pub const IP_ADDRESS: u8 = 3;
    pub const PRIMARY_DNS: u8 = 129;
    pub const PRIMARY_NBNS: u8 = 130;
    pub const SECONDARY_DNS: u8 = 131;
    pub const SECONDARY_NBNS: u8 = 132;
}

/// An IPCP packet.
pub type Repr = CpRepr<IpcpOption>;

/// An IPCP configuration option.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IpcpOption {
    /// IP-Addresses (RFC 1332 §3.1, deprecated; kept so it can be rejected), 10 octets.
    IpAddresses {
        source: Ipv4Addr,
        destination: Ipv4Addr,
    },
    /// IP-Compression-Protocol (RFC 1332 §3.2), at least 4 octets; for Van Jacobson
    /// (0x002D) `data` is Max-Slot-Id and Comp-Slot-Id.
    IpCompressionProtocol { protocol: u16, data: Vec<u8> },
    /// IP-Address (RFC 1332 §3.3), 6 octets.
    IpAddress(Ipv4Addr),
    /// Primary-DNS-Server-Address (RFC 1877 §1.1), 6 octets.
    PrimaryDns(Ipv4Addr),
    /// Primary-NBNS-Server-Address (RFC 1877 §1.2), 6 octets.
    PrimaryNbns(Ipv4Addr),
    /// Secondary-DNS-Server-Address (RFC 1877 §1.3), 6 octets.
    SecondaryDns(Ipv4Addr),
    /// Secondary-NBNS-Server-Address (RFC 1877 §1.4), 6 octets.
    SecondaryNbns(Ipv4Addr),
    /// Any other type, kept raw (its `kind` is never one of the types above).
    Unknown { kind: u8, data: Vec<u8> },
}

fn addr(data: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(data[0], data[1], data[2], data[3])
}

impl ConfigOption for IpcpOption {
    fn parse(raw: RawOption<'_>) -> Result<IpcpOption> {
        use option_type::*;
        let address = |raw: &RawOption<'_>| -> Result<Ipv4Addr> {
            expect_len(raw, 4)?;
            Ok(addr(raw.data))
        };
        Ok(match raw.kind {
            IP_ADDRESSES => {
                expect_len(&raw, 8)?;
                IpcpOption::IpAddresses {
                    source: addr(&raw.data[..4]),
                    destination: addr(&raw.data[4..]),
                }
            }
            IP_COMPRESSION_PROTOCOL => {
                let (protocol, data) = split_protocol(&raw)?;
                IpcpOption::IpCompressionProtocol { protocol, data }
            }
            IP_ADDRESS => IpcpOption::IpAddress(address(&raw)?),
            PRIMARY_DNS => IpcpOption::PrimaryDns(address(&raw)?),
            PRIMARY_NBNS => IpcpOption::PrimaryNbns(address(&raw)?),
            SECONDARY_DNS => IpcpOption::SecondaryDns(address(&raw)?),
            SECONDARY_NBNS => IpcpOption::SecondaryNbns(address(&raw)?),
            kind => IpcpOption::Unknown {
                kind,
                data: raw.data.to_vec(),
            },
        })
    }

    fn kind(&self) -> u8 {
        use option_type::*;
        match self {
            IpcpOption::IpAddresses { .. } => IP_ADDRESSES,
            IpcpOption::IpCompressionProtocol { .. } => IP_COMPRESSION_PROTOCOL,
            IpcpOption::IpAddress(_) => IP_ADDRESS,
            IpcpOption::PrimaryDns(_) => PRIMARY_DNS,
            IpcpOption::PrimaryNbns(_) => PRIMARY_NBNS,
            IpcpOption::SecondaryDns(_) => SECONDARY_DNS,
            IpcpOption::SecondaryNbns(_) => SECONDARY_NBNS,
            IpcpOption::Unknown { kind, .. } => *kind,
        }
    }

    fn data_len(&self) -> usize {
        match self {
            IpcpOption::IpAddresses { .. } => 8,
            IpcpOption::IpCompressionProtocol { data, .. } => 2 + data.len(),
            IpcpOption::IpAddress(_)
            | IpcpOption::PrimaryDns(_)
            | IpcpOption::PrimaryNbns(_)
            | IpcpOption::SecondaryDns(_)
            | IpcpOption::SecondaryNbns(_) => 4,
            IpcpOption::Unknown { data, .. } => data.len(),
        }
    }

    fn emit_data(&self, buffer: &mut [u8]) {
        match self {
            IpcpOption::IpAddresses {
                source,
                destination,
            } => {
                buffer[..4].copy_from_slice(&source.octets());
                buffer[4..8].copy_from_slice(&destination.octets());
            }
            IpcpOption::IpCompressionProtocol { protocol, data } => {
                emit_protocol(buffer, *protocol, data)
            }
            IpcpOption::IpAddress(a)
            | IpcpOption::PrimaryDns(a)
            | IpcpOption::PrimaryNbns(a)
            | IpcpOption::SecondaryDns(a)
            | IpcpOption::SecondaryNbns(a) => buffer.copy_from_slice(&a.octets()),
            IpcpOption::Unknown { data, .. } => buffer.copy_from_slice(data),
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
    fn golden_configure_request() {
        #[rustfmt::skip]
        let bytes = [
            0x01, 0x01, 0x00, 0x2A,
            0x02, 0x06, 0x00, 0x2D, 0x0F, 0x01,             // VJ, 16 slots, comp-slot-id
            0x03, 0x06, 0x00, 0x00, 0x00, 0x00,             // IP-Address 0.0.0.0
            0x81, 0x06, 0x00, 0x00, 0x00, 0x00,             // Primary DNS
            0x82, 0x06, 0x00, 0x00, 0x00, 0x00,             // Primary NBNS
            0x83, 0x06, 0x00, 0x00, 0x00, 0x00,             // Secondary DNS
            0x84, 0x06, 0x00, 0x00, 0x00, 0x00,             // Secondary NBNS
            0x90, 0x02,                                     // unknown type 144
        ];
        let expected = Repr::ConfigureRequest {
            identifier: 1,
            options: vec![
                IpcpOption::IpCompressionProtocol {
                    protocol: 0x002D,
                    data: vec![0x0F, 0x01],
                },
                IpcpOption::IpAddress(Ipv4Addr::UNSPECIFIED),
                IpcpOption::PrimaryDns(Ipv4Addr::UNSPECIFIED),
                IpcpOption::PrimaryNbns(Ipv4Addr::UNSPECIFIED),
                IpcpOption::SecondaryDns(Ipv4Addr::UNSPECIFIED),
                IpcpOption::SecondaryNbns(Ipv4Addr::UNSPECIFIED),
                IpcpOption::Unknown {
                    kind: 0x90,
                    data: vec![],
                },
            ],
        };
        assert_eq!(Repr::from_bytes(&bytes).unwrap(), expected);
        assert_eq!(expected.to_bytes(), bytes);
        for cut in 0..bytes.len() {
            assert!(Repr::from_bytes(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn golden_nak_and_ip_addresses() {
        let nak = [
            0x03, 0x02, 0x00, 0x10, 0x03, 0x06, 10, 0, 0, 5, 0x81, 0x06, 192, 0, 2, 53,
        ];
        let expected = Repr::ConfigureNak {
            identifier: 2,
            options: vec![
                IpcpOption::IpAddress(Ipv4Addr::new(10, 0, 0, 5)),
                IpcpOption::PrimaryDns(Ipv4Addr::new(192, 0, 2, 53)),
            ],
        };
        assert_eq!(Repr::from_bytes(&nak).unwrap(), expected);
        assert_eq!(expected.to_bytes(), nak);

        let rej = [0x04, 0x03, 0x00, 0x0E, 0x01, 0x0A, 10, 0, 0, 1, 10, 0, 0, 2];
        let expected = Repr::ConfigureReject {
            identifier: 3,
            options: vec![IpcpOption::IpAddresses {
                source: Ipv4Addr::new(10, 0, 0, 1),
                destination: Ipv4Addr::new(10, 0, 0, 2),
            }],
        };
        assert_eq!(Repr::from_bytes(&rej).unwrap(), expected);
        assert_eq!(expected.to_bytes(), rej);
    }

    #[test]
    fn lcp_only_codes_are_unknown() {
        let echo = [0x09, 0x01, 0x00, 0x08, 0, 0, 0, 0];
        assert_eq!(
            Repr::from_bytes(&echo).unwrap(),
            Repr::Unknown {
                code: 9,
                identifier: 1,
                data: vec![0; 4]
            }
        );
    }

    #[test]
    fn errors() {
        for (option, kind, length) in [
            (&[0x01, 0x06, 0, 0, 0, 0][..], 1, 6),
            (&[0x02, 0x03, 0][..], 2, 3),
            (&[0x03, 0x05, 0, 0, 0][..], 3, 5),
            (&[0x81, 0x07, 0, 0, 0, 0, 0][..], 129, 7),
            (&[0x82, 0x02][..], 130, 2),
            (&[0x83, 0x03, 0][..], 131, 3),
            (&[0x84, 0x04, 0, 0][..], 132, 4),
        ] {
            let mut bytes = vec![0x01, 0x01, 0x00, (4 + option.len()) as u8];
            bytes.extend_from_slice(option);
            assert_eq!(
                Repr::from_bytes(&bytes),
                Err(Error::BadOptionSize { kind, length })
            );
        }
        assert_eq!(
            Repr::from_bytes(&[0x01, 0x01, 0x00, 0x06, 0x03, 0x07]),
            Err(Error::BadOptionLength { kind: 3, length: 7 })
        );
    }

    fn ipv4() -> impl Strategy<Value = Ipv4Addr> {
        any::<u32>().prop_map(Ipv4Addr::from)
    }

    fn ipcp_option() -> impl Strategy<Value = IpcpOption> {
        prop_oneof![
            (ipv4(), ipv4()).prop_map(|(source, destination)| IpcpOption::IpAddresses {
                source,
                destination
            }),
            (any::<u16>(), bytes(16))
                .prop_map(|(protocol, data)| IpcpOption::IpCompressionProtocol { protocol, data }),
            ipv4().prop_map(IpcpOption::IpAddress),
            ipv4().prop_map(IpcpOption::PrimaryDns),
            ipv4().prop_map(IpcpOption::PrimaryNbns),
            ipv4().prop_map(IpcpOption::SecondaryDns),
            ipv4().prop_map(IpcpOption::SecondaryNbns),
            (prop_oneof![Just(0u8), 4u8..=128, 133u8..=255], bytes(253))
                .prop_map(|(kind, data)| IpcpOption::Unknown { kind, data }),
        ]
    }

    fn ipcp_repr() -> impl Strategy<Value = Repr> {
        cp_repr(ipcp_option)
    }

    proptest! {
        #[test]
        fn option_roundtrip(option in ipcp_option()) {
            let mut buf = vec![0; option.buffer_len()];
            option.emit(&mut buf);
            let parsed: Vec<IpcpOption> = wire::parse_options(&buf).unwrap();
            prop_assert_eq!(parsed, vec![option]);
        }

        #[test]
        fn repr_roundtrip(repr in ipcp_repr()) {
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

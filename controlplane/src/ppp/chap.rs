//! CHAP packets (RFC 1994 §4) and the MD5 response (RFC 1994 §4.1).
//!
//! ```text
//! Challenge/Response: Code 1/2 | Identifier | Length | Value-Size | Value | Name
//! Success/Failure:    Code 3/4 | Identifier | Length | Message
//! ```
//!
//! The Name and Message fields run to the end of the packet's Length. A Value-Size
//! larger than the octets after it is [`Error::BadValueSize`]. Unknown Codes
//! (including MS-CHAPv2's Change-Password, which xlns does not support) are
//! [`Error::UnknownCode`]. For MS-CHAPv2 the Response Value is
//! [`mschapv2::ResponseValue`](super::mschapv2::ResponseValue) and the Success and
//! Failure messages are formatted by [`mschapv2`](super::mschapv2).

use md5::{Digest, Md5};

use super::wire::{self, Code, Packet, emit_header};
use super::{Error, Result};

/// CHAP Codes (RFC 1994 §4).
pub mod code {
    pub const CHALLENGE: u8 = 1;
    pub const RESPONSE: u8 = 2;
    pub const SUCCESS: u8 = 3;
    pub const FAILURE: u8 = 4;
}

/// A CHAP packet. `value` is at most 255 octets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repr {
    /// RFC 1994 §4.1.
    Challenge {
        identifier: u8,
        value: Vec<u8>,
        name: Vec<u8>,
    },
    /// RFC 1994 §4.1.
    Response {
        identifier: u8,
        value: Vec<u8>,
        name: Vec<u8>,
    },
    /// RFC 1994 §4.2.
    Success { identifier: u8, message: Vec<u8> },
    /// RFC 1994 §4.2.
    Failure { identifier: u8, message: Vec<u8> },
}

impl Repr {
    /// Interpret an uninterpreted packet.
    pub fn from_repr(repr: &wire::Repr<'_>) -> Result<Repr> {
        let identifier = repr.identifier;
        let data = repr.data;
        let value_and_name = || -> Result<(Vec<u8>, Vec<u8>)> {
            let (&value_size, rest) = data.split_first().ok_or(Error::Truncated {
                what: "CHAP Value-Size",
                needed: 1,
                available: 0,
            })?;
            let size = usize::from(value_size);
            if size > rest.len() {
                return Err(Error::BadValueSize {
                    value_size,
                    available: rest.len(),
                });
            }
            let (value, name) = rest.split_at(size);
            Ok((value.to_vec(), name.to_vec()))
        };
        match u8::from(repr.code) {
            code::CHALLENGE => {
                let (value, name) = value_and_name()?;
                Ok(Repr::Challenge {
                    identifier,
                    value,
                    name,
                })
            }
            code::RESPONSE => {
                let (value, name) = value_and_name()?;
                Ok(Repr::Response {
                    identifier,
                    value,
                    name,
                })
            }
            code::SUCCESS => Ok(Repr::Success {
                identifier,
                message: data.to_vec(),
            }),
            code::FAILURE => Ok(Repr::Failure {
                identifier,
                message: data.to_vec(),
            }),
            code => Err(Error::UnknownCode {
                protocol: "CHAP",
                code,
            }),
        }
    }

    /// Parse a packet view.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<Repr> {
        Self::from_repr(&wire::Repr::parse(packet)?)
    }

    /// Parse a byte buffer.
    pub fn from_bytes(bytes: &[u8]) -> Result<Repr> {
        Self::parse(&Packet::new_checked(bytes)?)
    }

    /// The Identifier field.
    pub fn identifier(&self) -> u8 {
        match self {
            Repr::Challenge { identifier, .. }
            | Repr::Response { identifier, .. }
            | Repr::Success { identifier, .. }
            | Repr::Failure { identifier, .. } => *identifier,
        }
    }

    fn code(&self) -> u8 {
        match self {
            Repr::Challenge { .. } => code::CHALLENGE,
            Repr::Response { .. } => code::RESPONSE,
            Repr::Success { .. } => code::SUCCESS,
            Repr::Failure { .. } => code::FAILURE,
        }
    }

    /// Length on the wire.
    pub fn buffer_len(&self) -> usize {
        wire::HEADER_LEN
            + match self {
                Repr::Challenge { value, name, .. } | Repr::Response { value, name, .. } => {
                    1 + value.len() + name.len()
                }
                Repr::Success { message, .. } | Repr::Failure { message, .. } => message.len(),
            }
    }

    /// Write the packet into a buffer of at least [`buffer_len`](Self::buffer_len)
    /// octets.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        emit_header(
            packet,
            Code::from(self.code()),
            self.identifier(),
            self.buffer_len() - wire::HEADER_LEN,
        );
        let out = packet.data_mut();
        match self {
            Repr::Challenge { value, name, .. } | Repr::Response { value, name, .. } => {
                out[0] = value.len() as u8;
                out[1..=value.len()].copy_from_slice(value);
                out[1 + value.len()..].copy_from_slice(name);
            }
            Repr::Success { message, .. } | Repr::Failure { message, .. } => {
                out.copy_from_slice(message)
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

/// The CHAP-MD5 Response Value: MD5 over Identifier, secret and Challenge Value
/// (RFC 1994 §4.1, §2.2).
pub fn md5_response(identifier: u8, secret: &[u8], challenge: &[u8]) -> [u8; 16] {
    let mut md5 = Md5::new();
    md5.update([identifier]);
    md5.update(secret);
    md5.update(challenge);
    md5.finalize().into()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn md5_known_answers() {
        // Computed independently:
        // python3 -c "import hashlib; print(hashlib.md5(bytes([0x2a]) + b'secret'
        //   + bytes.fromhex('0123456789abcdeffedcba9876543210')).hexdigest())"
        // python3 -c "import hashlib; print(hashlib.md5(bytes([0])).hexdigest())"
        let challenge = hex::decode("0123456789abcdeffedcba9876543210").unwrap();
        assert_eq!(
            hex::encode(md5_response(0x2A, b"secret", &challenge)),
            "6bbd13bb2acc255dcfc251cbb7d58b0e"
        );
        assert_eq!(
            hex::encode(md5_response(0, b"", b"")),
            "93b885adfe0da089cdf634904fd59f71"
        );
    }

    #[test]
    fn golden_challenge_response() {
        let challenge = [
            0x01, 0x01, 0x00, 0x0B, 0x04, 0xDE, 0xAD, 0xBE, 0xEF, b'l', b'n',
        ];
        let expected = Repr::Challenge {
            identifier: 1,
            value: vec![0xDE, 0xAD, 0xBE, 0xEF],
            name: b"ln".to_vec(),
        };
        assert_eq!(Repr::from_bytes(&challenge).unwrap(), expected);
        assert_eq!(expected.to_bytes(), challenge);
        for cut in 0..challenge.len() {
            assert!(Repr::from_bytes(&challenge[..cut]).is_err());
        }
        let response = [0x02, 0x01, 0x00, 0x07, 0x01, 0x55, b'u'];
        let expected = Repr::Response {
            identifier: 1,
            value: vec![0x55],
            name: b"u".to_vec(),
        };
        assert_eq!(Repr::from_bytes(&response).unwrap(), expected);
        assert_eq!(expected.to_bytes(), response);
    }

    #[test]
    fn golden_success_failure() {
        let success = [0x03, 0x01, 0x00, 0x06, b'O', b'K'];
        let expected = Repr::Success {
            identifier: 1,
            message: b"OK".to_vec(),
        };
        assert_eq!(Repr::from_bytes(&success).unwrap(), expected);
        assert_eq!(expected.to_bytes(), success);
        let failure = [0x04, 0x02, 0x00, 0x04];
        let expected = Repr::Failure {
            identifier: 2,
            message: vec![],
        };
        assert_eq!(Repr::from_bytes(&failure).unwrap(), expected);
        assert_eq!(expected.to_bytes(), failure);
    }

    #[test]
    fn errors() {
        assert_eq!(
            Repr::from_bytes(&[0x01, 0x01, 0x00, 0x04]),
            Err(Error::Truncated {
                what: "CHAP Value-Size",
                needed: 1,
                available: 0
            })
        );
        assert_eq!(
            Repr::from_bytes(&[0x02, 0x01, 0x00, 0x07, 0x03, 0x00, 0x00, 0x00]),
            Err(Error::BadValueSize {
                value_size: 3,
                available: 2
            })
        );
        assert_eq!(
            Repr::from_bytes(&[0x07, 0x01, 0x00, 0x04]),
            Err(Error::UnknownCode {
                protocol: "CHAP",
                code: 7
            })
        );
    }

    fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..max)
    }

    fn chap_repr() -> impl Strategy<Value = Repr> {
        prop_oneof![
            (any::<u8>(), bytes(256), bytes(64)).prop_map(|(identifier, value, name)| {
                Repr::Challenge {
                    identifier,
                    value,
                    name,
                }
            }),
            (any::<u8>(), bytes(256), bytes(64)).prop_map(|(identifier, value, name)| {
                Repr::Response {
                    identifier,
                    value,
                    name,
                }
            }),
            (any::<u8>(), bytes(64)).prop_map(|(identifier, message)| Repr::Success {
                identifier,
                message
            }),
            (any::<u8>(), bytes(64)).prop_map(|(identifier, message)| Repr::Failure {
                identifier,
                message
            }),
        ]
    }

    proptest! {
        #[test]
        fn repr_roundtrip(repr in chap_repr()) {
            let bytes = repr.to_bytes();
            prop_assert_eq!(bytes.len(), repr.buffer_len());
            prop_assert_eq!(Repr::from_bytes(&bytes).unwrap(), repr);
            for cut in 0..bytes.len() {
                prop_assert!(Repr::from_bytes(&bytes[..cut]).is_err());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in bytes(48)) {
            if let Ok(repr) = Repr::from_bytes(&bytes) {
                prop_assert_eq!(Repr::from_bytes(&repr.to_bytes()).unwrap(), repr);
            }
        }
    }
}

//! PAP packets (RFC 1334 §2.2).
//!
//! ```text
//! Authenticate-Request: Code 1 | Identifier | Length | Peer-ID Length | Peer-Id
//!                       | Passwd-Length | Password
//! Authenticate-Ack/Nak: Code 2/3 | Identifier | Length | Msg-Length | Message
//! ```
//!
//! Every length-prefixed field is bounded by the packet's Length; one that runs past
//! it is [`Error::BadFieldLength`]. Octets after the last field are ignored. An Ack
//! or Nak without a Msg-Length octet (Length 4, sent by some peers) reads as an empty
//! message. Unknown Codes are [`Error::UnknownCode`] (PAP has no Code-Reject).

use super::wire::{self, Code, Packet, emit_header};
use super::{Error, Result};

/// PAP Codes (RFC 1334 §2.2).
pub mod code {
    pub const AUTHENTICATE_REQUEST: u8 = 1;
    pub const AUTHENTICATE_ACK: u8 = 2;
    pub const AUTHENTICATE_NAK: u8 = 3;
}

/// A PAP packet. Every field is at most 255 octets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repr {
    /// RFC 1334 §2.2.1.
    AuthenticateRequest {
        identifier: u8,
        peer_id: Vec<u8>,
        password: Vec<u8>,
    },
    /// RFC 1334 §2.2.2.
    AuthenticateAck { identifier: u8, message: Vec<u8> },
    /// RFC 1334 §2.2.2.
    AuthenticateNak { identifier: u8, message: Vec<u8> },
}

/// Read a length-prefixed field at the start of `data`; returns it and the rest.
fn prefixed<'a>(data: &'a [u8], what: &'static str) -> Result<(&'a [u8], &'a [u8])> {
    let (&length, rest) = data.split_first().ok_or(Error::Truncated {
        what,
        needed: 1,
        available: 0,
    })?;
    let len = usize::from(length);
    if len > rest.len() {
        return Err(Error::BadFieldLength {
            what,
            length,
            available: rest.len(),
        });
    }
    Ok(rest.split_at(len))
}

impl Repr {
    /// Interpret an uninterpreted packet.
    pub fn from_repr(repr: &wire::Repr<'_>) -> Result<Repr> {
        let identifier = repr.identifier;
        let data = repr.data;
        match u8::from(repr.code) {
            code::AUTHENTICATE_REQUEST => {
                let (peer_id, rest) = prefixed(data, "PAP Peer-ID")?;
                let (password, _) = prefixed(rest, "PAP Password")?;
                Ok(Repr::AuthenticateRequest {
                    identifier,
                    peer_id: peer_id.to_vec(),
                    password: password.to_vec(),
                })
            }
            code @ (code::AUTHENTICATE_ACK | code::AUTHENTICATE_NAK) => {
                let message = if data.is_empty() {
                    Vec::new()
                } else {
                    prefixed(data, "PAP Message")?.0.to_vec()
                };
                Ok(if code == code::AUTHENTICATE_ACK {
                    Repr::AuthenticateAck {
                        identifier,
                        message,
                    }
                } else {
                    Repr::AuthenticateNak {
                        identifier,
                        message,
                    }
                })
            }
            code => Err(Error::UnknownCode {
                protocol: "PAP",
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
            Repr::AuthenticateRequest { identifier, .. }
            | Repr::AuthenticateAck { identifier, .. }
            | Repr::AuthenticateNak { identifier, .. } => *identifier,
        }
    }

    fn code(&self) -> u8 {
        match self {
            Repr::AuthenticateRequest { .. } => code::AUTHENTICATE_REQUEST,
            Repr::AuthenticateAck { .. } => code::AUTHENTICATE_ACK,
            Repr::AuthenticateNak { .. } => code::AUTHENTICATE_NAK,
        }
    }

    /// Length on the wire.
    pub fn buffer_len(&self) -> usize {
        wire::HEADER_LEN
            + match self {
                Repr::AuthenticateRequest {
                    peer_id, password, ..
                } => 2 + peer_id.len() + password.len(),
                Repr::AuthenticateAck { message, .. } | Repr::AuthenticateNak { message, .. } => {
                    1 + message.len()
                }
            }
    }

    /// Write the packet into a buffer of at least [`buffer_len`](Self::buffer_len)
    /// octets. Fields must be at most 255 octets.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        emit_header(
            packet,
            Code::from(self.code()),
            self.identifier(),
            self.buffer_len() - wire::HEADER_LEN,
        );
        let out = packet.data_mut();
        match self {
            Repr::AuthenticateRequest {
                peer_id, password, ..
            } => {
                let rest = put_prefixed(out, peer_id);
                put_prefixed(rest, password);
            }
            Repr::AuthenticateAck { message, .. } | Repr::AuthenticateNak { message, .. } => {
                put_prefixed(out, message);
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

fn put_prefixed<'a>(out: &'a mut [u8], field: &[u8]) -> &'a mut [u8] {
    out[0] = field.len() as u8;
    out[1..=field.len()].copy_from_slice(field);
    &mut out[1 + field.len()..]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn golden_request() {
        let bytes = [
            0x01, 0x07, 0x00, 0x0E, 0x04, b'u', b's', b'e', b'r', 0x04, b'p', b'a', b's', b's',
        ];
        let expected = Repr::AuthenticateRequest {
            identifier: 7,
            peer_id: b"user".to_vec(),
            password: b"pass".to_vec(),
        };
        assert_eq!(Repr::from_bytes(&bytes).unwrap(), expected);
        assert_eq!(expected.to_bytes(), bytes);
        for cut in 0..bytes.len() {
            assert!(Repr::from_bytes(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn golden_ack_nak() {
        let ack = [0x02, 0x07, 0x00, 0x07, 0x02, b'O', b'K'];
        let expected = Repr::AuthenticateAck {
            identifier: 7,
            message: b"OK".to_vec(),
        };
        assert_eq!(Repr::from_bytes(&ack).unwrap(), expected);
        assert_eq!(expected.to_bytes(), ack);
        let nak = [0x03, 0x08, 0x00, 0x05, 0x00];
        let expected = Repr::AuthenticateNak {
            identifier: 8,
            message: vec![],
        };
        assert_eq!(Repr::from_bytes(&nak).unwrap(), expected);
        assert_eq!(expected.to_bytes(), nak);
        // No Msg-Length octet at all.
        assert_eq!(
            Repr::from_bytes(&[0x02, 0x09, 0x00, 0x04]).unwrap(),
            Repr::AuthenticateAck {
                identifier: 9,
                message: vec![]
            }
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            Repr::from_bytes(&[0x01, 0x01, 0x00, 0x04]),
            Err(Error::Truncated {
                what: "PAP Peer-ID",
                needed: 1,
                available: 0
            })
        );
        assert_eq!(
            Repr::from_bytes(&[0x01, 0x01, 0x00, 0x06, 0x02, b'u']),
            Err(Error::BadFieldLength {
                what: "PAP Peer-ID",
                length: 2,
                available: 1
            })
        );
        assert_eq!(
            Repr::from_bytes(&[0x01, 0x01, 0x00, 0x06, 0x01, b'u']),
            Err(Error::Truncated {
                what: "PAP Password",
                needed: 1,
                available: 0
            })
        );
        assert_eq!(
            Repr::from_bytes(&[0x01, 0x01, 0x00, 0x08, 0x01, b'u', 0x03, b'p']),
            Err(Error::BadFieldLength {
                what: "PAP Password",
                length: 3,
                available: 1
            })
        );
        assert_eq!(
            Repr::from_bytes(&[0x03, 0x01, 0x00, 0x05, 0x01]),
            Err(Error::BadFieldLength {
                what: "PAP Message",
                length: 1,
                available: 0
            })
        );
        assert_eq!(
            Repr::from_bytes(&[0x04, 0x01, 0x00, 0x04]),
            Err(Error::UnknownCode {
                protocol: "PAP",
                code: 4
            })
        );
        // The Password may not extend past Length into padding.
        assert!(Repr::from_bytes(&[0x01, 0x01, 0x00, 0x07, 0x01, b'u', 0x01, b'p']).is_err());
    }

    fn field() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..=255)
    }

    fn pap_repr() -> impl Strategy<Value = Repr> {
        prop_oneof![
            (any::<u8>(), field(), field()).prop_map(|(identifier, peer_id, password)| {
                Repr::AuthenticateRequest {
                    identifier,
                    peer_id,
                    password,
                }
            }),
            (any::<u8>(), field()).prop_map(|(identifier, message)| Repr::AuthenticateAck {
                identifier,
                message
            }),
            (any::<u8>(), field()).prop_map(|(identifier, message)| Repr::AuthenticateNak {
                identifier,
                message
            }),
        ]
    }

    proptest! {
        #[test]
        fn repr_roundtrip(repr in pap_repr()) {
            let bytes = repr.to_bytes();
            prop_assert_eq!(bytes.len(), repr.buffer_len());
            prop_assert_eq!(Repr::from_bytes(&bytes).unwrap(), repr);
            for cut in 0..bytes.len() {
                prop_assert!(Repr::from_bytes(&bytes[..cut]).is_err());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
            if let Ok(repr) = Repr::from_bytes(&bytes) {
                prop_assert_eq!(Repr::from_bytes(&repr.to_bytes()).unwrap(), repr);
            }
        }
    }
}

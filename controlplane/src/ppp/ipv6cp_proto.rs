//! IPv6CP option policy (RFC 5072): [`Ipv6cp`] implements [`Protocol`] for the generic
//! automaton [`Fsm`](super::fsm::Fsm); the same policy serves both roles.
//!
//! Interface-Identifier (RFC 5072 §4.1):
//! * ours is the configured one or a random non-zero value from the seeded RNG;
//! * the peer's is acknowledged when non-zero and different from ours; when zero or equal to
//!   ours it is Nak'd with a fresh unique value (non-zero, different from ours, "u" bit
//!   cleared); when both are zero it is rejected; a request without it gets one appended to
//!   a Nak;
//! * a Nak of ours with a value different from the one we last Nak'd with is adopted; one
//!   equal to it makes us draw a new identifier; a Reject stops sending it.
//!
//! IPv6-Compression-Protocol (§4.2) and unknown options are rejected. The result
//! ([`Ipv6cpNegotiated`]) holds both identifiers; [`link_local`] forms the addresses.

use core::net::Ipv6Addr;

use rand::Rng;
use rand::rngs::StdRng;

use super::fsm::{Options, Protocol, Verdict};
use super::ipv6cp::{Ipv6cpOption, option_type};
use super::lcp_proto::push;
use super::policy::{Failing, NegotiationFailure};
use super::wire::{self, ConfigOption};

/// PPP protocol number of IPv6CP.
pub const PROTOCOL_IPV6CP: u16 = 0x8057;

/// A 64-bit interface identifier.
pub type InterfaceId = [u8; 8];

/// The link-local address fe80::/64 + `id` (RFC 5072 §5).
pub fn link_local(id: InterfaceId) -> Ipv6Addr {
    let mut octets = [0u8; 16];
    octets[0] = 0xfe;
    octets[1] = 0x80;
    octets[8..].copy_from_slice(&id);
    Ipv6Addr::from(octets)
}

/// What IPv6CP agreed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6cpNegotiated {
    /// Our identifier as the peer acknowledged it.
    pub local: InterfaceId,
    /// The peer's identifier as we acknowledged it.
    pub peer: InterfaceId,
}

/// IPv6CP's option state for one link.
#[derive(Debug, Clone)]
pub struct Ipv6cp {
    rng: StdRng,
    /// Configured identifier (`None`: random).
    configured: Option<InterfaceId>,
    /// The identifier of our next request (`None`: option rejected by the peer).
    ours: Option<InterfaceId>,
    /// Our identifier, kept after a Reject (used locally even if not negotiated).
    current: InterfaceId,
    /// The value we put in our last Configure-Nak.
    last_nak: Option<InterfaceId>,
    negotiated: Ipv6cpNegotiated,
}

impl Ipv6cp {
    /// IPv6CP with a random identifier drawn from `rng`, or `configured` (e.g. derived from
    /// a hardware address) when given.
    pub fn new(configured: Option<InterfaceId>, rng: StdRng) -> Ipv6cp {
        let mut v = Ipv6cp {
            rng,
            configured,
            ours: None,
            current: [0; 8],
            last_nak: None,
            negotiated: Ipv6cpNegotiated {
                local: [0; 8],
                peer: [0; 8],
            },
        };
        v.reset_request();
        v
    }

    /// What was agreed (meaningful once the automaton is Opened).
    pub fn negotiated(&self) -> &Ipv6cpNegotiated {
        &self.negotiated
    }

    /// Our identifier (the one of our requests).
    pub fn identifier(&self) -> InterfaceId {
        self.current
    }

    /// A random identifier: non-zero, "u" bit cleared (RFC 5072 §4.1: not derived from a
    /// global IEEE identifier), different from ours.
    fn fresh(&mut self) -> InterfaceId {
        loop {
            let mut id: InterfaceId = self.rng.random();
            id[0] &= !0x02;
            if id != [0; 8] && id != self.current {
                return id;
            }
        }
    }
}

impl Failing for Ipv6cp {
    fn failure(&self) -> Option<NegotiationFailure> {
        None
    }
}

impl Protocol for Ipv6cp {
    const PROTOCOL: u16 = PROTOCOL_IPV6CP;

    fn reset_request(&mut self) {
        self.current = match self.configured {
            Some(id) if id != [0; 8] => id,
            _ => self.fresh(),
        };
        self.ours = Some(self.current);
        self.last_nak = None;
        self.negotiated.local = [0; 8];
    }

    fn build_request(&mut self, out: &mut Vec<u8>) {
        if let Some(id) = self.ours {
            push(out, &Ipv6cpOption::InterfaceIdentifier(id));
        }
    }

    fn judge_peer_request(&mut self, options: Options<'_>) -> Verdict {
        let mut nak = Vec::new();
        let mut reject = Vec::new();
        let mut has_id = false;
        let mut suggested = None;
        let ours = self.ours.unwrap_or([0; 8]);
        for raw in options {
            let parsed = Ipv6cpOption::parse(wire::RawOption {
                kind: raw.kind,
                data: raw.data,
            });
            match parsed {
                Ok(Ipv6cpOption::InterfaceIdentifier(id)) => {
                    has_id = true;
                    if id == [0; 8] && ours == [0; 8] {
                        // §4.1: both zero, no unique identifier can be negotiated.
                        reject.extend_from_slice(raw.bytes);
                    } else if id == [0; 8] || id == ours {
                        let s = self.fresh();
                        suggested = Some(s);
                        push(&mut nak, &Ipv6cpOption::InterfaceIdentifier(s));
                    }
                }
                _ => reject.extend_from_slice(raw.bytes),
            }
        }
        if !reject.is_empty() {
            return Verdict::Reject(reject);
        }
        if !has_id {
            // §4.1: "the option SHOULD be appended to a Configure-Nak".
            let s = self.fresh();
            suggested = Some(s);
            push(&mut nak, &Ipv6cpOption::InterfaceIdentifier(s));
        }
        if nak.is_empty() {
            Verdict::Ack
        } else {
            self.last_nak = suggested;
            Verdict::Nak(nak)
        }
    }

    fn peer_request_acked(&mut self, options: Options<'_>) {
        for raw in options {
            if let Ok(Ipv6cpOption::InterfaceIdentifier(id)) =
                Ipv6cpOption::parse(wire::RawOption {
                    kind: raw.kind,
                    data: raw.data,
                })
            {
                self.negotiated.peer = id;
            }
        }
    }

    fn our_request_acked(&mut self, options: Options<'_>) {
        for raw in options {
            if let Ok(Ipv6cpOption::InterfaceIdentifier(id)) =
                Ipv6cpOption::parse(wire::RawOption {
                    kind: raw.kind,
                    data: raw.data,
                })
            {
                self.negotiated.local = id;
            }
        }
    }

    fn our_request_naked(&mut self, options: Options<'_>) -> bool {
        for raw in options {
            if let Ok(Ipv6cpOption::InterfaceIdentifier(id)) =
                Ipv6cpOption::parse(wire::RawOption {
                    kind: raw.kind,
                    data: raw.data,
                })
            {
                // §4.1: a suggestion different from our last Nak is unique: use it; the same
                // one means a new identifier must be chosen.
                let next = if id == [0; 8] || Some(id) == self.last_nak {
                    self.fresh()
                } else {
                    id
                };
                self.current = next;
                if self.ours.is_some() {
                    self.ours = Some(next);
                }
            }
        }
        true
    }

    fn our_request_rejected(&mut self, options: Options<'_>) -> bool {
        for raw in options {
            if raw.kind != option_type::INTERFACE_IDENTIFIER {
                return false;
            }
            // §4.1: "MUST NOT contain the interface-identifier option" afterwards.
            self.ours = None;
        }
        true
    }
}

#[cfg(test)]
mod tests;

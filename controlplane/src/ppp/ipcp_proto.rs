//! IPCP option policy (RFC 1332, RFC 1877): [`Ipcp`] implements [`Protocol`] for the generic
//! automaton [`Fsm`](super::fsm::Fsm), as the LNS ([`IpcpServer`]) or as a client
//! ([`IpcpClient`], for the LAC emulator).
//!
//! Server (LNS):
//! * our IP-Address (RFC 1332 §3.3) is [`IpcpServer::local`] (not sent when unspecified); a
//!   Nak of it is ignored (the address is ours to choose), a Reject stops sending it;
//! * the peer's IP-Address must be [`IpcpServer::peer`] (from the pool or the user's fixed
//!   address): 0.0.0.0 or any other value is Nak'd with it; a request without it gets it
//!   appended to a Nak (§3.3 "SHOULD be appended");
//! * Primary/Secondary DNS and NBNS (RFC 1877 §1.1-§1.4): Nak'd with the configured address
//!   unless the peer already asks for exactly it; rejected when none is configured;
//! * IP-Compression-Protocol (VJ, §3.2), IP-Addresses (§3.1, deprecated) and unknown options
//!   are rejected.
//!
//! Client: asks for [`IpcpClient::address`] (0.0.0.0: "assign me one") and, when enabled,
//! for DNS and NBNS with 0.0.0.0; follows the server's Naks (unless `insist` is set, a test
//! knob); acknowledges any non-zero server address and rejects everything else. A Reject of
//! the IP-Address fails the negotiation ([`NegotiationFailure::AddressRejected`]); a Reject of
//! a server address option just stops asking for it.
//!
//! The result ([`IpcpNegotiated`]) is readable once the automaton is Opened.

use core::net::Ipv4Addr;

use super::fsm::{Options, Protocol, Verdict};
use super::ipcp::{IpcpOption, option_type};
use super::lcp_proto::push;
use super::policy::{Failing, NegotiationFailure};
use super::wire::{self, ConfigOption};

/// PPP protocol number of IPCP.
pub const PROTOCOL_IPCP: u16 = 0x8021;

/// The LNS side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpcpServer {
    /// Our own address (the "gateway"); unspecified: not negotiated.
    pub local: Ipv4Addr,
    /// The address assigned to the peer.
    pub peer: Ipv4Addr,
    /// Primary and secondary DNS servers (RFC 1877 §1.1, §1.3).
    pub dns: [Option<Ipv4Addr>; 2],
    /// Primary and secondary NBNS servers (RFC 1877 §1.2, §1.4).
    pub nbns: [Option<Ipv4Addr>; 2],
}

/// The client side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpcpClient {
    /// The address we ask for; 0.0.0.0 asks the server to assign one.
    pub address: Ipv4Addr,
    /// Ask for both DNS servers (RFC 1877).
    pub request_dns: bool,
    /// Ask for both NBNS servers (RFC 1877).
    pub request_nbns: bool,
    /// Ignore Naks of our address (a misbehaving client, for tests).
    pub insist: bool,
}

impl IpcpClient {
    /// A client asking for an address and both DNS servers, like `pppd usepeerdns`.
    pub fn dynamic() -> IpcpClient {
        IpcpClient {
            address: Ipv4Addr::UNSPECIFIED,
            request_dns: true,
            request_nbns: false,
            insist: false,
        }
    }
}

/// Which side we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpcpRole {
    Server(IpcpServer),
    Client(IpcpClient),
}

/// What IPCP agreed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpcpNegotiated {
    /// Our address (server: `local`; client: the one the server gave us).
    pub local: Ipv4Addr,
    /// The peer's address (server: the assigned one; client: the server's, unspecified when
    /// it sent none).
    pub peer: Ipv4Addr,
    /// DNS servers: server side, those we handed out; client side, those we received.
    pub dns: [Option<Ipv4Addr>; 2],
    /// NBNS servers, likewise.
    pub nbns: [Option<Ipv4Addr>; 2],
}

/// The four RFC 1877 server options, in the order [primary DNS, secondary DNS, primary
/// NBNS, secondary NBNS].
const SERVER_KINDS: [u8; 4] = [
    option_type::PRIMARY_DNS,
    option_type::SECONDARY_DNS,
    option_type::PRIMARY_NBNS,
    option_type::SECONDARY_NBNS,
];

fn server_option(kind: u8, address: Ipv4Addr) -> IpcpOption {
    match kind {
        option_type::PRIMARY_DNS => IpcpOption::PrimaryDns(address),
        option_type::SECONDARY_DNS => IpcpOption::SecondaryDns(address),
        option_type::PRIMARY_NBNS => IpcpOption::PrimaryNbns(address),
        _ => IpcpOption::SecondaryNbns(address),
    }
}

fn server_slot(kind: u8) -> Option<usize> {
    SERVER_KINDS.iter().position(|&k| k == kind)
}

fn server_address(option: &IpcpOption) -> Option<(usize, Ipv4Addr)> {
    let (kind, address) = match option {
        IpcpOption::PrimaryDns(a) => (option_type::PRIMARY_DNS, *a),
        IpcpOption::SecondaryDns(a) => (option_type::SECONDARY_DNS, *a),
        IpcpOption::PrimaryNbns(a) => (option_type::PRIMARY_NBNS, *a),
        IpcpOption::SecondaryNbns(a) => (option_type::SECONDARY_NBNS, *a),
        _ => return None,
    };
    Some((server_slot(kind)?, address))
}

/// IPCP's option state for one link.
#[derive(Debug, Clone)]
pub struct Ipcp {
    role: IpcpRole,
    /// Server: whether our request still carries our address. Client: whether it still
    /// carries the IP-Address option.
    send_address: bool,
    /// Client: the address of our next request.
    address: Ipv4Addr,
    /// Client: the RFC 1877 values of our next request (`None`: not asked, or rejected).
    servers: [Option<Ipv4Addr>; 4],
    failure: Option<NegotiationFailure>,
    negotiated: IpcpNegotiated,
}

impl Ipcp {
    /// IPCP in `role`.
    pub fn new(role: IpcpRole) -> Ipcp {
        let mut ipcp = Ipcp {
            role,
            send_address: false,
            address: Ipv4Addr::UNSPECIFIED,
            servers: [None; 4],
            failure: None,
            negotiated: IpcpNegotiated {
                local: Ipv4Addr::UNSPECIFIED,
                peer: Ipv4Addr::UNSPECIFIED,
                dns: [None; 2],
                nbns: [None; 2],
            },
        };
        ipcp.reset_request();
        ipcp
    }

    /// The LNS side.
    pub fn server(config: IpcpServer) -> Ipcp {
        Ipcp::new(IpcpRole::Server(config))
    }

    /// The client side.
    pub fn client(config: IpcpClient) -> Ipcp {
        Ipcp::new(IpcpRole::Client(config))
    }

    /// The role and its configuration.
    pub fn role(&self) -> &IpcpRole {
        &self.role
    }

    /// What was agreed (meaningful once the automaton is Opened).
    pub fn negotiated(&self) -> &IpcpNegotiated {
        &self.negotiated
    }

    fn judge_as_server(&self, s: &IpcpServer, options: Options<'_>) -> Verdict {
        let mut nak = Vec::new();
        let mut reject = Vec::new();
        let mut has_address = false;
        for raw in options {
            let parsed = IpcpOption::parse(wire::RawOption {
                kind: raw.kind,
                data: raw.data,
            });
            match parsed {
                Ok(IpcpOption::IpAddress(asked)) => {
                    has_address = true;
                    if asked != s.peer {
                        push(&mut nak, &IpcpOption::IpAddress(s.peer));
                    }
                }
                Ok(
                    ref option @ (IpcpOption::PrimaryDns(asked)
                    | IpcpOption::SecondaryDns(asked)
                    | IpcpOption::PrimaryNbns(asked)
                    | IpcpOption::SecondaryNbns(asked)),
                ) => {
                    let configured = match option {
                        IpcpOption::PrimaryDns(_) => s.dns[0],
                        IpcpOption::SecondaryDns(_) => s.dns[1],
                        IpcpOption::PrimaryNbns(_) => s.nbns[0],
                        _ => s.nbns[1],
                    };
                    match configured {
                        // RFC 1877 §1.1: the peer asks (typically with 0.0.0.0); we Nak with
                        // a valid server address.
                        Some(ours) if ours != asked => {
                            push(&mut nak, &server_option(raw.kind, ours));
                        }
                        Some(_) => {}
                        None => reject.extend_from_slice(raw.bytes),
                    }
                }
                // VJ compression (§3.2), IP-Addresses (§3.1), unknown or malformed options.
                _ => reject.extend_from_slice(raw.bytes),
            }
        }
        if !reject.is_empty() {
            return Verdict::Reject(reject);
        }
        if !has_address && !s.peer.is_unspecified() {
            // RFC 1332 §3.3: "the option SHOULD be appended to a Configure-Nak".
            push(&mut nak, &IpcpOption::IpAddress(s.peer));
        }
        if nak.is_empty() {
            Verdict::Ack
        } else {
            Verdict::Nak(nak)
        }
    }

    fn judge_as_client(options: Options<'_>) -> Verdict {
        let mut reject = Vec::new();
        for raw in options {
            let parsed = IpcpOption::parse(wire::RawOption {
                kind: raw.kind,
                data: raw.data,
            });
            match parsed {
                // The server's own address; 0.0.0.0 would ask us for one, which a client
                // cannot give.
                Ok(IpcpOption::IpAddress(a)) if !a.is_unspecified() => {}
                _ => reject.extend_from_slice(raw.bytes),
            }
        }
        if reject.is_empty() {
            Verdict::Ack
        } else {
            Verdict::Reject(reject)
        }
    }
}

impl Failing for Ipcp {
    fn failure(&self) -> Option<NegotiationFailure> {
        self.failure
    }
}

impl Protocol for Ipcp {
    const PROTOCOL: u16 = PROTOCOL_IPCP;

    fn reset_request(&mut self) {
        self.failure = None;
        match self.role {
            IpcpRole::Server(s) => {
                self.send_address = !s.local.is_unspecified();
                self.negotiated = IpcpNegotiated {
                    local: s.local,
                    peer: s.peer,
                    dns: s.dns,
                    nbns: s.nbns,
                };
            }
            IpcpRole::Client(c) => {
                self.send_address = true;
                self.address = c.address;
                let dns = c.request_dns.then_some(Ipv4Addr::UNSPECIFIED);
                let nbns = c.request_nbns.then_some(Ipv4Addr::UNSPECIFIED);
                self.servers = [dns, dns, nbns, nbns];
                self.negotiated.local = Ipv4Addr::UNSPECIFIED;
                self.negotiated.dns = [None; 2];
                self.negotiated.nbns = [None; 2];
            }
        }
    }

    fn build_request(&mut self, out: &mut Vec<u8>) {
        match self.role {
            IpcpRole::Server(s) => {
                if self.send_address {
                    push(out, &IpcpOption::IpAddress(s.local));
                }
            }
            IpcpRole::Client(_) => {
                if self.send_address {
                    push(out, &IpcpOption::IpAddress(self.address));
                }
                for (kind, value) in SERVER_KINDS.iter().zip(self.servers) {
                    if let Some(address) = value {
                        push(out, &server_option(*kind, address));
                    }
                }
            }
        }
    }

    fn judge_peer_request(&mut self, options: Options<'_>) -> Verdict {
        match self.role {
            IpcpRole::Server(s) => self.judge_as_server(&s, options),
            IpcpRole::Client(_) => Ipcp::judge_as_client(options),
        }
    }

    fn peer_request_acked(&mut self, options: Options<'_>) {
        if let IpcpRole::Client(_) = self.role {
            self.negotiated.peer = Ipv4Addr::UNSPECIFIED;
            for raw in options {
                if let Ok(IpcpOption::IpAddress(a)) = IpcpOption::parse(wire::RawOption {
                    kind: raw.kind,
                    data: raw.data,
                }) {
                    self.negotiated.peer = a;
                }
            }
        }
    }

    fn our_request_acked(&mut self, options: Options<'_>) {
        if let IpcpRole::Client(_) = self.role {
            let mut found = [None; 4];
            for raw in options {
                let parsed = IpcpOption::parse(wire::RawOption {
                    kind: raw.kind,
                    data: raw.data,
                });
                match parsed {
                    Ok(IpcpOption::IpAddress(a)) => self.negotiated.local = a,
                    Ok(ref o) => {
                        if let Some((slot, a)) = server_address(o) {
                            if let Some(f) = found.get_mut(slot) {
                                *f = (!a.is_unspecified()).then_some(a);
                            }
                        }
                    }
                    Err(_) => {}
                }
            }
            self.negotiated.dns = [found[0], found[1]];
            self.negotiated.nbns = [found[2], found[3]];
        }
    }

    fn our_request_naked(&mut self, options: Options<'_>) -> bool {
        let IpcpRole::Client(c) = self.role else {
            // Our own address is not negotiable (RFC 1332 §3.3 lets us keep it; the peer's
            // Max-Failure turns its Naks into a Reject, which we follow).
            return true;
        };
        for raw in options {
            let parsed = IpcpOption::parse(wire::RawOption {
                kind: raw.kind,
                data: raw.data,
            });
            match parsed {
                Ok(IpcpOption::IpAddress(a)) if !c.insist && !a.is_unspecified() => {
                    self.address = a;
                    self.send_address = true;
                }
                Ok(ref o) => {
                    // RFC 1877: a Nak carries the server's address for what we asked.
                    if let Some((slot, a)) = server_address(o) {
                        if let Some(v) = self.servers.get_mut(slot) {
                            if v.is_some() {
                                *v = Some(a);
                            }
                        }
                    }
                }
                Err(_) => {}
            }
        }
        true
    }

    fn our_request_rejected(&mut self, options: Options<'_>) -> bool {
        for raw in options {
            match (self.role, raw.kind) {
                (IpcpRole::Server(_), option_type::IP_ADDRESS) => self.send_address = false,
                (IpcpRole::Client(_), option_type::IP_ADDRESS) => {
                    // Without an address the client has nothing to bring up (§3.3).
                    self.failure = Some(NegotiationFailure::AddressRejected);
                }
                (IpcpRole::Client(_), kind) => match server_slot(kind) {
                    Some(slot) => {
                        if let Some(v) = self.servers.get_mut(slot) {
                            *v = None;
                        }
                    }
                    None => return false,
                },
                (IpcpRole::Server(_), _) => return false,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests;

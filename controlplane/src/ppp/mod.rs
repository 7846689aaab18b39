//! PPP control protocols (RFC 1661 and friends): packet codecs and authentication crypto.
//!
//! * [`wire`]: the packet format shared by LCP, IPCP, IPv6CP, PAP and CHAP (Code,
//!   Identifier, Length, Data; RFC 1661 §5), the [`wire::Code`] enum, the option TLV
//!   iterator, and [`wire::CpRepr`], the packets every RFC 1661 control protocol has.
//! * [`lcp`], [`ipcp`], [`ipv6cp`]: the options of each control protocol and their
//!   packet reprs.
//! * [`pap`], [`chap`], [`mschapv2`]: authentication packets and crypto.
//! * [`fsm`]: the RFC 1661 option-negotiation automaton (state table in `states.txt`).
//! * [`auth`]: PAP, CHAP-MD5 and MS-CHAPv2 state machines, authenticator and peer.
//! * [`users`]: the local users file; [`pool`]: named IPv4 address pools.
//! * [`lcp_proto`], [`ipcp_proto`], [`ipv6cp_proto`]: the option policies the automaton
//!   runs for LCP, IPCP and IPv6CP (both roles); [`policy`]: their shared failure reasons.
//! * [`lcp_link`]: LCP on an established link (echo keepalive, Protocol-Reject).
//! * [`session`]: the PPP session of one subscriber (phases, proxy LCP/authentication).
//!
//! Contract: bytes from a peer never panic anything. Every parse returns an [`Error`]
//! naming what is wrong. `emit` methods write into a buffer of at least `buffer_len()`
//! octets (our own data; a short buffer is a caller bug and panics).

pub mod auth;
pub mod chap;
pub mod fsm;
pub mod ipcp;
pub mod ipcp_proto;
pub mod ipv6cp;
pub mod ipv6cp_proto;
pub mod lcp;
pub mod lcp_link;
pub mod lcp_proto;
pub mod mschapv2;
pub mod pap;
pub mod policy;
pub mod pool;
pub mod session;
pub mod users;
pub mod wire;

/// What is wrong with a PPP control packet that failed to parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The buffer ends before a header or field does.
    #[error("truncated: {what} needs {needed} octets, {available} available")]
    Truncated {
        what: &'static str,
        needed: usize,
        available: usize,
    },
    /// A Length field below the minimum of its header (RFC 1661 §5: at least 4), or a
    /// fixed-size value of the wrong size.
    #[error("bad length in {what}: {value}")]
    BadLength { what: &'static str, value: usize },
    /// An option's Length octet is below 2 or runs past the end of the data
    /// (RFC 1661 §6).
    #[error("bad length {length} of option type {kind}")]
    BadOptionLength { kind: u8, length: u8 },
    /// A known option whose length is wrong for its type (for example an MRU option
    /// that is not 4 octets long, RFC 1661 §6.1).
    #[error("option type {kind} cannot be {length} octets long")]
    BadOptionSize { kind: u8, length: usize },
    /// A CHAP Value-Size larger than what follows it (RFC 1994 §4.1).
    #[error("value-size {value_size} but {available} octets follow")]
    BadValueSize { value_size: u8, available: usize },
    /// A length-prefixed field (PAP Peer-ID, Password, Message) that runs past the
    /// end of the packet (RFC 1334 §2.2).
    #[error("{what} length {length} but {available} octets follow")]
    BadFieldLength {
        what: &'static str,
        length: u8,
        available: usize,
    },
    /// A Code the protocol does not define (PAP and CHAP have no Code-Reject; the
    /// packet is discarded).
    #[error("unknown {protocol} code {code}")]
    UnknownCode { protocol: &'static str, code: u8 },
    /// A field holds text or a value the protocol does not allow.
    #[error("bad value in {what}")]
    BadValue { what: &'static str },
}

/// Result of a PPP parse.
pub type Result<T> = core::result::Result<T, Error>;

//! Zero-copy wire views, in the style of smoltcp's `wire` module.
//!
//! Every protocol has a `Packet<T: AsRef<[u8]>>` view with `new_unchecked`,
//! `new_checked` (which calls `check_len`), field getters and setters, and where the
//! data path or the control plane needs one, an owned `Repr` with `parse`, `emit` and
//! `buffer_len`. Byte offsets live in one private `field` module per protocol.
//!
//! Contract: once `new_checked` (or `check_len`) has succeeded, no accessor panics,
//! whatever the bytes. Malformed input is a [`WireError`] naming what is wrong.
//!
//! IPv4, IPv6 and UDP are smoltcp's own types, re-exported here. [`frame`] builds and
//! parses whole Ethernet / IPv4|IPv6 / UDP frames around a UDP payload.

pub mod ethernet;
pub mod frame;
pub mod l2tp;
pub mod ppp;

pub use smoltcp::wire::{
    EthernetAddress, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, Ipv6Address, Ipv6Packet,
    Ipv6Repr, UdpPacket, UdpRepr,
};

/// What is wrong with a buffer that failed to parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The buffer ends before the header (or a field the header announces) does.
    #[error("truncated: {what} needs {needed} bytes, {available} available")]
    Truncated {
        what: &'static str,
        needed: usize,
        available: usize,
    },
    /// A length field disagrees with the buffer or with the minimum for its header.
    #[error("bad length in {what}: {value}")]
    BadLength { what: &'static str, value: usize },
    /// The L2TP version field is not 2 (3 is recognised and named separately).
    #[error("unsupported L2TP version {0}")]
    BadVersion(u8),
    /// An L2TPv3 packet arrived on the L2TPv2 port (RFC 3931 §4.1.2.1).
    #[error("L2TPv3 is not supported")]
    L2tpV3,
    /// A flag combination the protocol forbids (for example a control message
    /// without the L or S bit, RFC 2661 §3.1).
    #[error("bad flags in {what}: {flags:#06x}")]
    BadFlags { what: &'static str, flags: u16 },
    /// A field holds a value the protocol does not allow.
    #[error("bad value in {what}: {value}")]
    BadValue { what: &'static str, value: u32 },
}

/// Result of a wire parse.
pub type Result<T> = core::result::Result<T, WireError>;

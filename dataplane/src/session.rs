//! The session record: everything a worker needs to forward one session's packets, as
//! xlnsd publishes it into shared memory (ARCHITECTURE.md §3-§4).
//!
//! It is plain old data (`#[repr(C)]`, explicit padding, no pointers, no `bool`: every bit
//! pattern of every field is a valid value), so it can live in a shared-memory slot and be
//! copied out under the slot's sequence lock. Sizes and offsets are asserted at compile
//! time because both processes read them.

use core::mem::{offset_of, size_of};

/// Longest outer header template: Ethernet with two VLAN tags (22) + IPv6 (40) + UDP (8) +
/// L2TP data header with length, sequence and offset fields (12) + PPP address/control and
/// protocol (4) = 86, rounded up.
pub const TEMPLATE_CAPACITY: usize = 96;

/// `SessionRecord::flags` bits.
pub mod flags {
    /// The outer (access-side) addresses are IPv6; otherwise IPv4 in the first 4 octets.
    pub const OUTER_IPV6: u32 = 1 << 0;
    /// The subscriber has an IPv4 address (`subscriber_v4`).
    pub const HAS_IPV4: u32 = 1 << 1;
    /// The subscriber has an IPv6 prefix (`subscriber_v6_prefix`, `subscriber_v6_len`).
    pub const HAS_IPV6: u32 = 1 << 2;
    /// Send PPP frames without the address/control field (ACFC negotiated, RFC 1661 §6.6).
    pub const ACFC: u32 = 1 << 3;
    /// Send 1-octet protocol fields where possible (PFC negotiated, RFC 1661 §6.5).
    pub const PFC: u32 = 1 << 4;
    /// The LAC asked for sequenced data messages (Sequencing Required AVP, RFC 2661 §5.4).
    pub const SEQUENCING: u32 = 1 << 5;
}

/// One session, as the data path sees it. Written only by xlnsd.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionRecord {
    /// Our tunnel id: the upstream lookup key with `local_session` (never 0).
    pub local_tunnel: u16,
    /// Our session id (never 0).
    pub local_session: u16,
    /// The LAC's tunnel id, written into downstream L2TP headers.
    pub peer_tunnel: u16,
    /// The LAC's session id.
    pub peer_session: u16,
    /// [`flags`] bits.
    pub flags: u32,
    /// Outer source address the LAC sends from (IPv4 in the first 4 octets).
    pub peer_addr: [u8; 16],
    /// Our outer address the LAC sends to.
    pub local_addr: [u8; 16],
    /// The LAC's UDP port.
    pub peer_port: u16,
    /// Our UDP port (1701 unless configured otherwise).
    pub local_port: u16,
    /// The session MTU: the peer's MRU (RFC 1661 §6.1); downstream packets larger than this
    /// are answered with ICMP too-big, and TCP MSS is clamped to fit it.
    pub mtu: u16,
    /// Access-side VLAN ids, outermost first; 0 = no tag.
    pub access_vlans: [u16; 2],
    /// Explicit padding (zero).
    pub _pad0: u16,
    /// The subscriber's IPv4 address (network order), when `HAS_IPV4`.
    pub subscriber_v4: [u8; 4],
    /// The subscriber's IPv6 prefix (network order, host bits zero), when `HAS_IPV6`.
    pub subscriber_v6_prefix: [u8; 16],
    /// Its length in bits.
    pub subscriber_v6_len: u8,
    /// Length of the valid part of `template`.
    pub template_len: u8,
    /// Explicit padding (zero).
    pub _pad1: [u8; 6],
    /// The downstream outer header, Ethernet through the PPP protocol field, with lengths and
    /// checksums to be patched per packet (VPP's "rewrite").
    pub template: [u8; TEMPLATE_CAPACITY],
}

const _: () = {
    assert!(size_of::<SessionRecord>() == 180);
    assert!(offset_of!(SessionRecord, local_tunnel) == 0);
    assert!(offset_of!(SessionRecord, local_session) == 2);
    assert!(offset_of!(SessionRecord, peer_tunnel) == 4);
    assert!(offset_of!(SessionRecord, peer_session) == 6);
    assert!(offset_of!(SessionRecord, flags) == 8);
    assert!(offset_of!(SessionRecord, peer_addr) == 12);
    assert!(offset_of!(SessionRecord, local_addr) == 28);
    assert!(offset_of!(SessionRecord, peer_port) == 44);
    assert!(offset_of!(SessionRecord, local_port) == 46);
    assert!(offset_of!(SessionRecord, mtu) == 48);
    assert!(offset_of!(SessionRecord, access_vlans) == 50);
    assert!(offset_of!(SessionRecord, subscriber_v4) == 56);
    assert!(offset_of!(SessionRecord, subscriber_v6_prefix) == 60);
    assert!(offset_of!(SessionRecord, subscriber_v6_len) == 76);
    assert!(offset_of!(SessionRecord, template_len) == 77);
    assert!(offset_of!(SessionRecord, template) == 84);
};

/// The first 80 octets of a [`SessionRecord`], everything but the template: what the
/// upstream path needs (ids, peer address and port, MTU, subscriber addresses). Same
/// field offsets as in the record (asserted), so the shared-memory reader copies only the
/// record's first 10 words for it.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionHead {
    /// See [`SessionRecord::local_tunnel`].
    pub local_tunnel: u16,
    /// See [`SessionRecord::local_session`].
    pub local_session: u16,
    /// See [`SessionRecord::peer_tunnel`].
    pub peer_tunnel: u16,
    /// See [`SessionRecord::peer_session`].
    pub peer_session: u16,
    /// See [`SessionRecord::flags`].
    pub flags: u32,
    /// See [`SessionRecord::peer_addr`].
    pub peer_addr: [u8; 16],
    /// See [`SessionRecord::local_addr`].
    pub local_addr: [u8; 16],
    /// See [`SessionRecord::peer_port`].
    pub peer_port: u16,
    /// See [`SessionRecord::local_port`].
    pub local_port: u16,
    /// See [`SessionRecord::mtu`].
    pub mtu: u16,
    /// See [`SessionRecord::access_vlans`].
    pub access_vlans: [u16; 2],
    /// Explicit padding.
    pub _pad0: u16,
    /// See [`SessionRecord::subscriber_v4`].
    pub subscriber_v4: [u8; 4],
    /// See [`SessionRecord::subscriber_v6_prefix`].
    pub subscriber_v6_prefix: [u8; 16],
    /// See [`SessionRecord::subscriber_v6_len`].
    pub subscriber_v6_len: u8,
    /// See [`SessionRecord::template_len`].
    pub template_len: u8,
    /// Explicit padding (the record's `_pad1` up to the 80th octet).
    pub _pad1: [u8; 2],
}

const _: () = {
    assert!(size_of::<SessionHead>() == 80);
    assert!(offset_of!(SessionHead, local_tunnel) == offset_of!(SessionRecord, local_tunnel));
    assert!(offset_of!(SessionHead, local_session) == offset_of!(SessionRecord, local_session));
    assert!(offset_of!(SessionHead, peer_tunnel) == offset_of!(SessionRecord, peer_tunnel));
    assert!(offset_of!(SessionHead, peer_session) == offset_of!(SessionRecord, peer_session));
    assert!(offset_of!(SessionHead, flags) == offset_of!(SessionRecord, flags));
    assert!(offset_of!(SessionHead, peer_addr) == offset_of!(SessionRecord, peer_addr));
    assert!(offset_of!(SessionHead, local_addr) == offset_of!(SessionRecord, local_addr));
    assert!(offset_of!(SessionHead, peer_port) == offset_of!(SessionRecord, peer_port));
    assert!(offset_of!(SessionHead, local_port) == offset_of!(SessionRecord, local_port));
    assert!(offset_of!(SessionHead, mtu) == offset_of!(SessionRecord, mtu));
    assert!(offset_of!(SessionHead, access_vlans) == offset_of!(SessionRecord, access_vlans));
    assert!(offset_of!(SessionHead, subscriber_v4) == offset_of!(SessionRecord, subscriber_v4));
    assert!(
        offset_of!(SessionHead, subscriber_v6_prefix)
            == offset_of!(SessionRecord, subscriber_v6_prefix)
    );
    assert!(
        offset_of!(SessionHead, subscriber_v6_len) == offset_of!(SessionRecord, subscriber_v6_len)
    );
    assert!(offset_of!(SessionHead, template_len) == offset_of!(SessionRecord, template_len));
};

impl SessionHead {
    /// The upstream lookup key, as [`SessionRecord::upstream_key`].
    #[inline]
    pub const fn upstream_key(&self) -> u32 {
        ((self.local_tunnel as u32) << 16) | self.local_session as u32
    }

    /// Whether a flag of [`flags`] is set.
    #[inline]
    pub const fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }
}

impl SessionRecord {
    /// The record's head (everything but the template).
    #[inline]
    pub const fn head(&self) -> SessionHead {
        SessionHead {
            local_tunnel: self.local_tunnel,
            local_session: self.local_session,
            peer_tunnel: self.peer_tunnel,
            peer_session: self.peer_session,
            flags: self.flags,
            peer_addr: self.peer_addr,
            local_addr: self.local_addr,
            peer_port: self.peer_port,
            local_port: self.local_port,
            mtu: self.mtu,
            access_vlans: self.access_vlans,
            _pad0: self._pad0,
            subscriber_v4: self.subscriber_v4,
            subscriber_v6_prefix: self.subscriber_v6_prefix,
            subscriber_v6_len: self.subscriber_v6_len,
            template_len: self.template_len,
            _pad1: [self._pad1[0], self._pad1[1]],
        }
    }

    /// An all-zero record (no session).
    pub const EMPTY: SessionRecord = SessionRecord {
        local_tunnel: 0,
        local_session: 0,
        peer_tunnel: 0,
        peer_session: 0,
        flags: 0,
        peer_addr: [0; 16],
        local_addr: [0; 16],
        peer_port: 0,
        local_port: 0,
        mtu: 0,
        access_vlans: [0; 2],
        _pad0: 0,
        subscriber_v4: [0; 4],
        subscriber_v6_prefix: [0; 16],
        subscriber_v6_len: 0,
        template_len: 0,
        _pad1: [0; 6],
        template: [0; TEMPLATE_CAPACITY],
    };

    /// The upstream lookup key: `(local tunnel id << 16) | local session id`.
    pub const fn upstream_key(&self) -> u32 {
        ((self.local_tunnel as u32) << 16) | self.local_session as u32
    }

    /// Whether a flag of [`flags`] is set.
    #[inline]
    pub const fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }
}

impl Default for SessionRecord {
    fn default() -> Self {
        SessionRecord::EMPTY
    }
}

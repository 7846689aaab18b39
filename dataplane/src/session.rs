//! The session record: everything a worker needs to forward one session's packets, as
//! xlnsd publishes it into shared memory (ARCHITECTURE.md §3-§4).
//!
//! It is plain old data (`#[repr(C)]`, explicit padding, no pointers, no `bool`: every bit
//! pattern of every field is a valid value), so it can live in a shared-memory slot and be
//! copied out under the slot's sequence lock. Sizes and offsets are asserted at compile
//! time because both processes read them.
//!
//! # Layout (ABI version 2)
//!
//! ```text
//!   0 ..  80  head: ids, flags, outer addresses and ports, MTU, VLANs, subscriber IPv4
//!             address and IPv6 prefix, the template's length and precomputed layout
//!  80 ..  88  epoch (which incarnation of the slot this session is), padding
//!  88 .. 184  template, right-aligned: its `template_len` octets end at octet 184
//! 184 .. 248  routes: Framed-Route IPv4 prefixes, extra IPv6 prefixes (delegated)
//! ```
//!
//! The template is stored right-aligned so that a worker copies the whole field (twelve
//! words, a fixed-size copy) into the 96 octets in front of the packet and the template
//! ends exactly where the packet begins. Its layout (where the outer IP, UDP header,
//! L2TP Length and Ns lie) is derived once when the session is published
//! ([`SessionRecord::derive_template_layout`]; the shared-memory writer always does it),
//! not per packet.

use core::mem::{offset_of, size_of};

/// Longest outer header template: Ethernet with two VLAN tags (22) + IPv6 (40) + UDP (8) +
/// L2TP data header with length, sequence and offset fields (12) + PPP address/control and
/// protocol (4) = 86, rounded up.
pub const TEMPLATE_CAPACITY: usize = 96;

/// Framed-Route IPv4 prefixes a record carries (RFC 2865 §5.22).
pub const MAX_ROUTES_V4: usize = 8;

/// IPv6 prefixes a record carries besides its own (`subscriber_v6_prefix`): a delegated
/// prefix (RFC 4818) or a Framed-IPv6-Route.
pub const MAX_PREFIXES_V6: usize = 2;

/// The longest IPv6 prefix the data plane routes by: lookups key on the upper 64 bits.
pub const MAX_V6_PREFIX_LEN: u8 = 64;

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
    /// Derived: offset of the outer IP header in the template (0 = no usable template).
    pub template_ip: u8,
    /// Derived: offset of the UDP header in the template.
    pub template_udp: u8,
    /// The subscriber's IPv4 address (network order), when `HAS_IPV4`.
    pub subscriber_v4: [u8; 4],
    /// The subscriber's IPv6 prefix (network order, host bits zero), when `HAS_IPV6`.
    pub subscriber_v6_prefix: [u8; 16],
    /// Its length in bits (1 ..= [`MAX_V6_PREFIX_LEN`] to be routed downstream).
    pub subscriber_v6_len: u8,
    /// Length of the valid (last) part of `template`.
    pub template_len: u8,
    /// Derived: offset of the L2TP Length field in the template; 0 = no L bit.
    pub template_length_at: u8,
    /// Derived: offset of the L2TP Ns field in the template; 0 = no S bit.
    pub template_ns_at: u8,
    /// Which incarnation of its slot this session is: set by the writer when it inserts
    /// the session (kept on update). A worker restarts its downstream Ns when it changes.
    pub epoch: u32,
    /// Explicit padding (zero).
    pub _pad1: [u8; 4],
    /// The downstream outer header, Ethernet through the PPP protocol field, with lengths and
    /// checksums to be patched per packet (VPP's "rewrite"). Right-aligned: the valid octets
    /// are the last `template_len` ([`SessionRecord::template_bytes`]).
    pub template: [u8; TEMPLATE_CAPACITY],
    /// Framed-Route IPv4 prefixes routed into the session (host bits zero); the first
    /// `routes_v4_count` are valid.
    pub routes_v4: [[u8; 4]; MAX_ROUTES_V4],
    /// Their lengths (0 ..= 32).
    pub routes_v4_len: [u8; MAX_ROUTES_V4],
    /// Further IPv6 prefixes of the session (delegated), upper 64 bits, host bits zero;
    /// the first `prefixes_v6_count` are valid.
    pub prefixes_v6: [[u8; 8]; MAX_PREFIXES_V6],
    /// Their lengths (1 ..= [`MAX_V6_PREFIX_LEN`]).
    pub prefixes_v6_len: [u8; MAX_PREFIXES_V6],
    /// Valid entries of `routes_v4` (at most [`MAX_ROUTES_V4`]).
    pub routes_v4_count: u8,
    /// Valid entries of `prefixes_v6` (at most [`MAX_PREFIXES_V6`]).
    pub prefixes_v6_count: u8,
    /// Explicit padding (zero).
    pub _pad2: [u8; 4],
}

const _: () = {
    assert!(size_of::<SessionRecord>() == 248);
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
    assert!(offset_of!(SessionRecord, template_ip) == 54);
    assert!(offset_of!(SessionRecord, template_udp) == 55);
    assert!(offset_of!(SessionRecord, subscriber_v4) == 56);
    assert!(offset_of!(SessionRecord, subscriber_v6_prefix) == 60);
    assert!(offset_of!(SessionRecord, subscriber_v6_len) == 76);
    assert!(offset_of!(SessionRecord, template_len) == 77);
    assert!(offset_of!(SessionRecord, template_length_at) == 78);
    assert!(offset_of!(SessionRecord, template_ns_at) == 79);
    assert!(offset_of!(SessionRecord, epoch) == 80);
    assert!(offset_of!(SessionRecord, template) == 88);
    assert!(offset_of!(SessionRecord, routes_v4) == 184);
    assert!(offset_of!(SessionRecord, routes_v4_len) == 216);
    assert!(offset_of!(SessionRecord, prefixes_v6) == 224);
    assert!(offset_of!(SessionRecord, prefixes_v6_len) == 240);
    assert!(offset_of!(SessionRecord, routes_v4_count) == 242);
    assert!(offset_of!(SessionRecord, prefixes_v6_count) == 243);
};

/// The first 80 octets of a [`SessionRecord`]: what the upstream path needs (ids, peer
/// address and port, MTU, subscriber addresses). Same field offsets as in the record
/// (asserted), so the shared-memory reader copies only the record's first 10 words for it.
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
    /// See [`SessionRecord::template_ip`].
    pub template_ip: u8,
    /// See [`SessionRecord::template_udp`].
    pub template_udp: u8,
    /// See [`SessionRecord::subscriber_v4`].
    pub subscriber_v4: [u8; 4],
    /// See [`SessionRecord::subscriber_v6_prefix`].
    pub subscriber_v6_prefix: [u8; 16],
    /// See [`SessionRecord::subscriber_v6_len`].
    pub subscriber_v6_len: u8,
    /// See [`SessionRecord::template_len`].
    pub template_len: u8,
    /// See [`SessionRecord::template_length_at`].
    pub template_length_at: u8,
    /// See [`SessionRecord::template_ns_at`].
    pub template_ns_at: u8,
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
    assert!(offset_of!(SessionHead, template_ip) == offset_of!(SessionRecord, template_ip));
    assert!(offset_of!(SessionHead, template_udp) == offset_of!(SessionRecord, template_udp));
    assert!(offset_of!(SessionHead, subscriber_v4) == offset_of!(SessionRecord, subscriber_v4));
    assert!(
        offset_of!(SessionHead, subscriber_v6_prefix)
            == offset_of!(SessionRecord, subscriber_v6_prefix)
    );
    assert!(
        offset_of!(SessionHead, subscriber_v6_len) == offset_of!(SessionRecord, subscriber_v6_len)
    );
    assert!(offset_of!(SessionHead, template_len) == offset_of!(SessionRecord, template_len));
    assert!(
        offset_of!(SessionHead, template_length_at)
            == offset_of!(SessionRecord, template_length_at)
    );
    assert!(offset_of!(SessionHead, template_ns_at) == offset_of!(SessionRecord, template_ns_at));
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

/// What the upstream common case (outer IPv4, inner IPv4: [`crate::fastpath::upstream`])
/// needs of a session: read by the shared-memory lookup from five words of the slot
/// ([`UpstreamV4::WORDS`]) instead of the 80-octet [`SessionHead`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamV4 {
    /// The session's slot (counters; the key of later whole-record reads).
    pub slot: u32,
    /// [`SessionRecord::upstream_key`].
    pub key: u32,
    /// See [`SessionRecord::flags`].
    pub flags: u32,
    /// The first 4 octets of [`SessionRecord::peer_addr`] (the LAC's IPv4 address).
    pub peer_v4: [u8; 4],
    /// See [`SessionRecord::peer_port`].
    pub peer_port: u16,
    /// See [`SessionRecord::mtu`].
    pub mtu: u16,
    /// See [`SessionRecord::subscriber_v4`].
    pub subscriber_v4: [u8; 4],
}

impl UpstreamV4 {
    /// The record words holding its fields: ids (0), flags and `peer_addr[..4]` (1),
    /// `peer_port` (5), `mtu` (6), `subscriber_v4` (7); see the offset assertions below.
    pub const WORDS: [usize; 5] = [0, 1, 5, 6, 7];

    /// Decoded from the words [`UpstreamV4::WORDS`] names, in that order (native-endian
    /// record octets, as the slot stores them).
    #[inline(always)]
    pub const fn from_words(slot: u32, w: [u64; 5]) -> UpstreamV4 {
        let w0 = w[0].to_ne_bytes();
        let w1 = w[1].to_ne_bytes();
        let w5 = w[2].to_ne_bytes();
        let w6 = w[3].to_ne_bytes();
        let w7 = w[4].to_ne_bytes();
        UpstreamV4 {
            slot,
            key: ((u16::from_ne_bytes([w0[0], w0[1]]) as u32) << 16)
                | u16::from_ne_bytes([w0[2], w0[3]]) as u32,
            flags: u32::from_ne_bytes([w1[0], w1[1], w1[2], w1[3]]),
            peer_v4: [w1[4], w1[5], w1[6], w1[7]],
            peer_port: u16::from_ne_bytes([w5[4], w5[5]]),
            mtu: u16::from_ne_bytes([w6[0], w6[1]]),
            subscriber_v4: [w7[0], w7[1], w7[2], w7[3]],
        }
    }

    /// The same fields out of a [`SessionHead`] (the in-memory table, the general path).
    #[inline(always)]
    pub const fn of(slot: u32, head: &SessionHead) -> UpstreamV4 {
        UpstreamV4 {
            slot,
            key: head.upstream_key(),
            flags: head.flags,
            peer_v4: [
                head.peer_addr[0],
                head.peer_addr[1],
                head.peer_addr[2],
                head.peer_addr[3],
            ],
            peer_port: head.peer_port,
            mtu: head.mtu,
            subscriber_v4: head.subscriber_v4,
        }
    }

    /// Whether a flag of [`flags`] is set.
    #[inline(always)]
    pub const fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }
}

const _: () = {
    assert!(offset_of!(SessionRecord, local_tunnel) == 0);
    assert!(offset_of!(SessionRecord, local_session) == 2);
    assert!(offset_of!(SessionRecord, flags) == 8);
    assert!(offset_of!(SessionRecord, peer_addr) == 12);
    assert!(offset_of!(SessionRecord, peer_port) == 5 * 8 + 4);
    assert!(offset_of!(SessionRecord, mtu) == 6 * 8);
    assert!(offset_of!(SessionRecord, subscriber_v4) == 7 * 8);
};

/// What the downstream path needs of a session besides its template: read by the
/// shared-memory lookup from four words of the slot, no whole record copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Downstream {
    /// The session's slot (counters, Ns).
    pub slot: u32,
    /// See [`SessionRecord::epoch`].
    pub epoch: u32,
    /// See [`SessionRecord::mtu`].
    pub mtu: u16,
    /// The template's precomputed layout.
    pub layout: TemplateLayout,
}

/// Where the fields patched per packet lie in a template, as offsets from the template's
/// first octet; derived once per session ([`SessionRecord::derive_template_layout`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TemplateLayout {
    /// Template length (0: no usable template).
    pub len: u8,
    /// Outer IP header.
    pub ip: u8,
    /// UDP header.
    pub udp: u8,
    /// L2TP Length field; 0 = none.
    pub length_at: u8,
    /// L2TP Ns field; 0 = none.
    pub ns_at: u8,
    /// The outer IP header is IPv6.
    pub v6: bool,
}

impl TemplateLayout {
    /// The layout stored in a record's head.
    #[inline(always)]
    pub const fn of(head: &SessionHead) -> TemplateLayout {
        TemplateLayout {
            len: if head.template_ip == 0 {
                0
            } else {
                head.template_len
            },
            ip: head.template_ip,
            udp: head.template_udp,
            length_at: head.template_length_at,
            ns_at: head.template_ns_at,
            v6: head.flags & flags::OUTER_IPV6 != 0,
        }
    }
}

/// Whether the upper 64 bits `upper` of an address lie in `prefix/len` (len <= 64).
#[inline(always)]
pub const fn in_prefix64(upper: u64, prefix: u64, len: u8) -> bool {
    len <= 64 && (len == 0 || (upper ^ prefix) >> (64 - len as u32) == 0)
}

/// `addr` masked to its first `len` bits (`len` <= 32).
#[inline(always)]
pub const fn mask_v4(addr: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else if len >= 32 {
        addr
    } else {
        addr & !(u32::MAX >> len)
    }
}

/// `upper` (an IPv6 address's upper 64 bits) masked to its first `len` bits (`len` <= 64).
#[inline(always)]
pub const fn mask_v6_upper(upper: u64, len: u8) -> u64 {
    if len == 0 {
        0
    } else if len >= 64 {
        upper
    } else {
        upper & !(u64::MAX >> len)
    }
}

/// The upper 64 bits of an IPv6 address.
#[inline(always)]
pub const fn v6_upper(addr: &[u8; 16]) -> u64 {
    u64::from_be_bytes([
        addr[0], addr[1], addr[2], addr[3], addr[4], addr[5], addr[6], addr[7],
    ])
}

impl SessionRecord {
    /// The record's head (its first 80 octets).
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
            template_ip: self.template_ip,
            template_udp: self.template_udp,
            subscriber_v4: self.subscriber_v4,
            subscriber_v6_prefix: self.subscriber_v6_prefix,
            subscriber_v6_len: self.subscriber_v6_len,
            template_len: self.template_len,
            template_length_at: self.template_length_at,
            template_ns_at: self.template_ns_at,
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
        template_ip: 0,
        template_udp: 0,
        subscriber_v4: [0; 4],
        subscriber_v6_prefix: [0; 16],
        subscriber_v6_len: 0,
        template_len: 0,
        template_length_at: 0,
        template_ns_at: 0,
        epoch: 0,
        _pad1: [0; 4],
        template: [0; TEMPLATE_CAPACITY],
        routes_v4: [[0; 4]; MAX_ROUTES_V4],
        routes_v4_len: [0; MAX_ROUTES_V4],
        prefixes_v6: [[0; 8]; MAX_PREFIXES_V6],
        prefixes_v6_len: [0; MAX_PREFIXES_V6],
        routes_v4_count: 0,
        prefixes_v6_count: 0,
        _pad2: [0; 4],
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

    /// The template's valid octets (the last `template_len` of the field).
    pub fn template_bytes(&self) -> &[u8] {
        let len = usize::from(self.template_len).min(TEMPLATE_CAPACITY);
        &self.template[TEMPLATE_CAPACITY - len..]
    }

    /// Stores `template` (at most [`TEMPLATE_CAPACITY`] octets; longer is cut) right-aligned
    /// and derives its layout.
    pub fn set_template(&mut self, template: &[u8]) {
        let len = template.len().min(TEMPLATE_CAPACITY);
        self.template = [0; TEMPLATE_CAPACITY];
        self.template[TEMPLATE_CAPACITY - len..].copy_from_slice(&template[..len]);
        self.template_len = len as u8;
        self.derive_template_layout();
    }

    /// The valid Framed-Route prefixes: `(prefix, length)`.
    pub fn routes_v4(&self) -> impl Iterator<Item = ([u8; 4], u8)> + '_ {
        let n = usize::from(self.routes_v4_count).min(MAX_ROUTES_V4);
        self.routes_v4[..n]
            .iter()
            .copied()
            .zip(self.routes_v4_len[..n].iter().copied())
    }

    /// The further IPv6 prefixes: `(upper 64 bits, length)`.
    pub fn prefixes_v6(&self) -> impl Iterator<Item = (u64, u8)> + '_ {
        let n = usize::from(self.prefixes_v6_count).min(MAX_PREFIXES_V6);
        self.prefixes_v6[..n]
            .iter()
            .map(|p| u64::from_be_bytes(*p))
            .zip(self.prefixes_v6_len[..n].iter().copied())
    }

    /// Every IPv6 prefix of the session as `(upper 64 bits, length)`: its own (when
    /// `HAS_IPV6` and at most [`MAX_V6_PREFIX_LEN`] long) and the further ones.
    pub fn all_prefixes_v6(&self) -> impl Iterator<Item = (u64, u8)> + '_ {
        let own = (self.has(flags::HAS_IPV6)
            && (1..=MAX_V6_PREFIX_LEN).contains(&self.subscriber_v6_len))
        .then(|| (v6_upper(&self.subscriber_v6_prefix), self.subscriber_v6_len));
        own.into_iter().chain(self.prefixes_v6())
    }

    /// Every destination prefix routed into the session, as the core side's XDP program
    /// must redirect them: the subscriber's IPv4 address (/32), its Framed-Routes, its
    /// own IPv6 prefix and its further ones. Host bits are zero.
    pub fn destinations(&self) -> impl Iterator<Item = (std::net::IpAddr, u8)> + '_ {
        use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
        let v4 = (self.has(flags::HAS_IPV4) && self.subscriber_v4 != [0; 4])
            .then(|| (IpAddr::V4(Ipv4Addr::from(self.subscriber_v4)), 32));
        let routes = self
            .routes_v4()
            .map(|(p, len)| (IpAddr::V4(Ipv4Addr::from(p)), len));
        let own_v6 = self.has(flags::HAS_IPV6).then(|| {
            let len = self.subscriber_v6_len.min(128);
            let bits = u128::from_be_bytes(self.subscriber_v6_prefix);
            let masked = if len == 0 {
                0
            } else {
                bits & !(u128::MAX >> len)
            };
            (IpAddr::V6(Ipv6Addr::from(masked)), len)
        });
        let more_v6 = self
            .prefixes_v6()
            .map(|(upper, len)| (IpAddr::V6(Ipv6Addr::from(u128::from(upper) << 64)), len));
        v4.into_iter().chain(routes).chain(own_v6).chain(more_v6)
    }

    /// Adds a Framed-Route prefix (host bits are cleared); false when the record already
    /// holds [`MAX_ROUTES_V4`] or `len` > 32.
    pub fn push_route_v4(&mut self, prefix: [u8; 4], len: u8) -> bool {
        let n = usize::from(self.routes_v4_count);
        if n >= MAX_ROUTES_V4 || len > 32 {
            return false;
        }
        self.routes_v4[n] = mask_v4(u32::from_be_bytes(prefix), len).to_be_bytes();
        self.routes_v4_len[n] = len;
        self.routes_v4_count += 1;
        true
    }

    /// Adds a further IPv6 prefix (its upper 64 bits, host bits cleared); false when the
    /// record already holds [`MAX_PREFIXES_V6`] or `len` is 0 or above 64.
    pub fn push_prefix_v6(&mut self, prefix: [u8; 16], len: u8) -> bool {
        let n = usize::from(self.prefixes_v6_count);
        if n >= MAX_PREFIXES_V6 || !(1..=MAX_V6_PREFIX_LEN).contains(&len) {
            return false;
        }
        self.prefixes_v6[n] = mask_v6_upper(v6_upper(&prefix), len).to_be_bytes();
        self.prefixes_v6_len[n] = len;
        self.prefixes_v6_count += 1;
        true
    }

    /// Whether `addr` lies in one of the Framed-Route prefixes (the upstream source check
    /// for the LAC auto-dial case).
    pub fn routes_v4_contain(&self, addr: [u8; 4]) -> bool {
        let a = u32::from_be_bytes(addr);
        self.routes_v4()
            .any(|(p, len)| len <= 32 && mask_v4(a, len) == u32::from_be_bytes(p))
    }

    /// Whether `addr` lies in one of the further IPv6 prefixes.
    pub fn prefixes_v6_contain(&self, addr: &[u8; 16]) -> bool {
        let upper = v6_upper(addr);
        self.prefixes_v6()
            .any(|(p, len)| in_prefix64(upper, p, len))
    }

    /// Derives the template layout fields (`template_ip`, `template_udp`,
    /// `template_length_at`, `template_ns_at`) from the VLANs, `OUTER_IPV6` and the
    /// template's own L2TP flags (RFC 2661 §3.1). All four are zero when the template is
    /// missing or unusable (a worker then drops the session's downstream packets as
    /// `bad-template`). The shared-memory writer calls this on every record it stores.
    pub fn derive_template_layout(&mut self) {
        let l = self.compute_template_layout().unwrap_or_default();
        self.template_ip = l.ip;
        self.template_udp = l.udp;
        self.template_length_at = l.length_at;
        self.template_ns_at = l.ns_at;
    }

    fn compute_template_layout(&self) -> Option<TemplateLayout> {
        let t = self.template_bytes();
        let len = t.len();
        let vlans = match self.access_vlans {
            [0, _] => 0,
            [_, 0] => 1,
            _ => 2,
        };
        let ip = 14 + 4 * vlans;
        let v6 = self.has(flags::OUTER_IPV6);
        let udp = ip + if v6 { 40 } else { 20 };
        let l2tp = udp + 8;
        if len < l2tp + 6 || usize::from(self.template_len) > TEMPLATE_CAPACITY {
            return None;
        }
        let rd = |at: usize| match t.get(at..at + 2) {
            Some(&[a, b]) => Some(u16::from_be_bytes([a, b])),
            _ => None,
        };
        let word = rd(l2tp)?;
        // T = 0 (a data message), Ver = 2 (RFC 2661 §3.1).
        if word & 0x8000 != 0 || word & 0x000f != 2 {
            return None;
        }
        let mut at = l2tp + 2;
        let mut length_at = 0;
        if word & 0x4000 != 0 {
            length_at = at;
            at += 2;
        }
        at += 4;
        let mut ns_at = 0;
        if word & 0x0800 != 0 {
            ns_at = at;
            at += 4;
        }
        if word & 0x0200 != 0 {
            at += 2 + usize::from(rd(at)?);
        }
        // At least one octet of PPP protocol after the L2TP header.
        if len < at + 1 {
            return None;
        }
        Some(TemplateLayout {
            len: len as u8,
            ip: ip as u8,
            udp: udp as u8,
            length_at: length_at as u8,
            ns_at: ns_at as u8,
            v6,
        })
    }
}

impl Default for SessionRecord {
    fn default() -> Self {
        SessionRecord::EMPTY
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn routes_and_prefixes_are_masked_bounded_and_matched() {
        let mut r = SessionRecord::EMPTY;
        assert!(r.push_route_v4([192, 168, 7, 99], 24));
        assert_eq!(r.routes_v4().collect::<Vec<_>>(), [([192, 168, 7, 0], 24)]);
        assert!(r.routes_v4_contain([192, 168, 7, 200]));
        assert!(!r.routes_v4_contain([192, 168, 8, 1]));
        assert!(!r.push_route_v4([1, 2, 3, 4], 33));
        for i in 1..MAX_ROUTES_V4 {
            assert!(r.push_route_v4([10, i as u8, 0, 0], 16));
        }
        assert!(!r.push_route_v4([11, 0, 0, 0], 8));
        let mut p = [0u8; 16];
        p[..8].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0x12, 0x34, 0x56, 0xff]);
        assert!(r.push_prefix_v6(p, 56));
        assert_eq!(
            r.prefixes_v6().collect::<Vec<_>>(),
            [(0x2001_0db8_1234_5600, 56)]
        );
        let mut inside = p;
        inside[7] = 0x01;
        inside[15] = 9;
        assert!(r.prefixes_v6_contain(&inside));
        inside[6] = 0x57;
        assert!(!r.prefixes_v6_contain(&inside));
        assert!(!r.push_prefix_v6(p, 65));
        assert!(!r.push_prefix_v6(p, 0));
        assert!(r.push_prefix_v6(p, 64));
        assert!(!r.push_prefix_v6(p, 48));
    }

    #[test]
    fn destinations_list_every_prefix_routed_into_the_session() {
        use std::net::IpAddr;
        let mut r = SessionRecord {
            flags: flags::HAS_IPV4 | flags::HAS_IPV6,
            subscriber_v4: [100, 64, 0, 9],
            subscriber_v6_len: 64,
            ..SessionRecord::EMPTY
        };
        r.subscriber_v6_prefix[..8].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 5]);
        r.subscriber_v6_prefix[15] = 0x77;
        r.push_route_v4([192, 168, 10, 0], 24);
        let mut delegated = [0u8; 16];
        delegated[..6].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0x80, 0x01]);
        r.push_prefix_v6(delegated, 48);
        let got: Vec<(IpAddr, u8)> = r.destinations().collect();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            got,
            [
                (ip("100.64.0.9"), 32),
                (ip("192.168.10.0"), 24),
                (ip("2001:db8:1:5::"), 64),
                (ip("2001:db8:8001::"), 48),
            ]
        );
        assert_eq!(SessionRecord::EMPTY.destinations().count(), 0);
    }

    #[test]
    fn template_is_right_aligned_and_its_layout_derived() {
        let mut r = SessionRecord {
            flags: flags::SEQUENCING,
            ..SessionRecord::EMPTY
        };
        // Ethernet, IPv4, UDP, L2TP with L and S, PPP FF 03 00 21.
        let mut t = vec![0u8; 14 + 20 + 8];
        t.extend_from_slice(&[0x48, 0x02, 0, 0, 0, 7, 0, 9, 0, 0, 0, 0]);
        t.extend_from_slice(&[0xff, 0x03, 0x00, 0x21]);
        r.set_template(&t);
        assert_eq!(r.template_bytes(), &t[..]);
        assert_eq!(r.template[TEMPLATE_CAPACITY - t.len()..], t[..]);
        assert_eq!(
            TemplateLayout::of(&r.head()),
            TemplateLayout {
                len: t.len() as u8,
                ip: 14,
                udp: 34,
                length_at: 44,
                ns_at: 50,
                v6: false,
            }
        );
        // A control-message header is no data template.
        t[42] = 0xc8;
        r.set_template(&t);
        assert_eq!(TemplateLayout::of(&r.head()).len, 0);
        assert_eq!(r.template_ip, 0);
    }
}

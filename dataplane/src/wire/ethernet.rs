//! Ethernet II with up to two VLAN tags (IEEE 802.1Q C-tag, IEEE 802.1ad S-tag / QinQ).
//!
//! ```text
//! +----------+----------+--------------------+--------------------+-----------+---------
//! | dst (6)  | src (6)  | [TPID TCI] outer   | [TPID TCI] inner   | EtherType | payload
//! +----------+----------+--------------------+--------------------+-----------+---------
//!  TCI = PCP (3 bits) | DEI (1 bit) | VID (12 bits)
//! ```
//!
//! A tag is recognised by its TPID: 0x8100 (802.1Q), 0x88A8 (802.1ad) or 0x9100 (the
//! pre-standard QinQ TPID still used by many switches), in either position. The tags are
//! reported outermost first; the EtherType is the one after the last tag.
//!
//! Contract: once [`Packet::check_len`] (or [`Packet::new_checked`]) has succeeded, the
//! buffer holds the addresses, every tag and the inner EtherType, there are at most two
//! tags, and no accessor panics. A third tag, or a buffer that ends inside the header, is
//! a [`WireError`]. The view never allocates; every accessor walks at most three 16-bit
//! fields.

use super::{EthernetAddress, Result, WireError};
pub use smoltcp::wire::EthernetProtocol;

mod field {
    pub type Field = core::ops::Range<usize>;

    pub const DESTINATION: Field = 0..6;
    pub const SOURCE: Field = 6..12;
    /// The first TPID or the EtherType of an untagged frame.
    pub const TYPE: usize = 12;
    /// TPID (2) + TCI (2).
    pub const TAG_LEN: usize = 4;
    /// Offset of the TCI inside a tag.
    pub const TCI: usize = 2;
    /// Header length of an untagged frame.
    pub const UNTAGGED_LEN: usize = 14;
}

/// Header length of an untagged frame.
pub const HEADER_LEN: usize = field::UNTAGGED_LEN;
/// Length of one VLAN tag.
pub const VLAN_TAG_LEN: usize = field::TAG_LEN;
/// The most VLAN tags a frame may carry here.
pub const MAX_VLAN_TAGS: usize = 2;
/// The longest header this module parses or emits (two tags).
pub const MAX_HEADER_LEN: usize = HEADER_LEN + MAX_VLAN_TAGS * VLAN_TAG_LEN;
/// Values below this in the EtherType position are IEEE 802.3 length fields, not
/// EtherTypes (IEEE 802.3 §3.2.6).
pub const MIN_ETHERTYPE: u16 = 0x0600;

/// Tag protocol identifier of a VLAN tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum Tpid {
    /// IEEE 802.1Q customer tag, 0x8100.
    Dot1Q = 0x8100,
    /// IEEE 802.1ad service tag, 0x88A8.
    Dot1Ad = 0x88A8,
    /// Pre-standard QinQ outer tag, 0x9100.
    QinQ9100 = 0x9100,
}

impl Tpid {
    /// The TPID this value names, or `None` if it is no TPID (so an EtherType).
    pub const fn from_u16(value: u16) -> Option<Tpid> {
        match value {
            0x8100 => Some(Tpid::Dot1Q),
            0x88A8 => Some(Tpid::Dot1Ad),
            0x9100 => Some(Tpid::QinQ9100),
            _ => None,
        }
    }

    /// The value on the wire.
    pub const fn as_u16(self) -> u16 {
        self as u16
    }
}

/// One VLAN tag (IEEE 802.1Q §9.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VlanTag {
    pub tpid: Tpid,
    /// Priority code point, 3 bits (higher bits are dropped on emit).
    pub pcp: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// VLAN identifier, 12 bits (higher bits are dropped on emit).
    pub vid: u16,
}

impl VlanTag {
    /// A tag with the given TPID and VID, priority 0, DEI clear.
    pub const fn new(tpid: Tpid, vid: u16) -> VlanTag {
        VlanTag {
            tpid,
            pcp: 0,
            dei: false,
            vid,
        }
    }

    /// The tag control information field.
    pub const fn tci(&self) -> u16 {
        ((self.pcp as u16 & 0x7) << 13) | ((self.dei as u16) << 12) | (self.vid & 0x0fff)
    }

    const fn from_wire(tpid: Tpid, tci: u16) -> VlanTag {
        VlanTag {
            tpid,
            pcp: (tci >> 13) as u8,
            dei: tci & 0x1000 != 0,
            vid: tci & 0x0fff,
        }
    }
}

/// The VLAN tags of a frame, outermost first. No allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Vlans {
    #[default]
    Untagged,
    Single(VlanTag),
    /// `[outer, inner]`.
    Double([VlanTag; 2]),
}

impl Vlans {
    /// The tags, outermost first.
    pub fn as_slice(&self) -> &[VlanTag] {
        match self {
            Vlans::Untagged => &[],
            Vlans::Single(tag) => core::slice::from_ref(tag),
            Vlans::Double(tags) => tags,
        }
    }

    /// Number of tags (0, 1 or 2).
    pub const fn len(&self) -> usize {
        match self {
            Vlans::Untagged => 0,
            Vlans::Single(_) => 1,
            Vlans::Double(_) => 2,
        }
    }

    pub const fn is_empty(&self) -> bool {
        matches!(self, Vlans::Untagged)
    }

    /// The outermost tag (the S-tag of a QinQ frame).
    pub fn outer(&self) -> Option<VlanTag> {
        self.as_slice().first().copied()
    }

    /// The innermost tag (the C-tag of a QinQ frame, the only tag of a single-tagged one).
    pub fn inner(&self) -> Option<VlanTag> {
        self.as_slice().last().copied()
    }
}

/// A read/write wrapper around an Ethernet II frame buffer.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

fn read_u16(data: &[u8], at: usize) -> Option<u16> {
    match data.get(at..at + 2) {
        Some(&[hi, lo]) => Some(u16::from_be_bytes([hi, lo])),
        _ => None,
    }
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Imbue a raw octet buffer with Ethernet structure, without checking its length.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Shorthand for [`Packet::new_unchecked`] followed by [`Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Ensure that the buffer holds the whole header: addresses, every tag (at most
    /// [`MAX_VLAN_TAGS`]) and the inner EtherType.
    pub fn check_len(&self) -> Result<()> {
        let data = self.buffer.as_ref();
        let mut tags = 0;
        loop {
            let at = field::TYPE + tags * field::TAG_LEN;
            let Some(value) = read_u16(data, at) else {
                return Err(WireError::Truncated {
                    what: if tags == 0 {
                        "Ethernet header"
                    } else {
                        "VLAN tagged Ethernet header"
                    },
                    needed: at + 2,
                    available: data.len(),
                });
            };
            if Tpid::from_u16(value).is_none() {
                return Ok(());
            }
            if tags == MAX_VLAN_TAGS {
                return Err(WireError::BadValue {
                    what: "VLAN tag count (at most 2)",
                    value: (tags + 1) as u32,
                });
            }
            tags += 1;
        }
    }

    /// Consume the packet, returning the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Number of VLAN tags (0, 1 or 2).
    pub fn vlan_count(&self) -> usize {
        let data = self.buffer.as_ref();
        let mut tags = 0;
        while tags < MAX_VLAN_TAGS {
            match read_u16(data, field::TYPE + tags * field::TAG_LEN).and_then(Tpid::from_u16) {
                Some(_) => tags += 1,
                None => break,
            }
        }
        tags
    }

    /// Header length: 14, 18 or 22 bytes.
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.vlan_count() * VLAN_TAG_LEN
    }

    /// The destination address.
    pub fn dst_addr(&self) -> EthernetAddress {
        let mut bytes = [0; 6];
        if let Some(src) = self.buffer.as_ref().get(field::DESTINATION) {
            bytes.copy_from_slice(src);
        }
        EthernetAddress(bytes)
    }

    /// The source address.
    pub fn src_addr(&self) -> EthernetAddress {
        let mut bytes = [0; 6];
        if let Some(src) = self.buffer.as_ref().get(field::SOURCE) {
            bytes.copy_from_slice(src);
        }
        EthernetAddress(bytes)
    }

    /// The VLAN tag at `index` (0 is the outermost), if the frame has that many.
    pub fn vlan(&self, index: usize) -> Option<VlanTag> {
        if index >= self.vlan_count() {
            return None;
        }
        let data = self.buffer.as_ref();
        let at = field::TYPE + index * field::TAG_LEN;
        let tpid = read_u16(data, at).and_then(Tpid::from_u16)?;
        let tci = read_u16(data, at + field::TCI)?;
        Some(VlanTag::from_wire(tpid, tci))
    }

    /// Every VLAN tag, outermost first.
    pub fn vlans(&self) -> Vlans {
        match (self.vlan(0), self.vlan(1)) {
            (Some(outer), Some(inner)) => Vlans::Double([outer, inner]),
            (Some(tag), None) => Vlans::Single(tag),
            _ => Vlans::Untagged,
        }
    }

    /// The EtherType after the last tag.
    pub fn ethertype(&self) -> EthernetProtocol {
        let at = field::TYPE + self.vlan_count() * field::TAG_LEN;
        EthernetProtocol::from(read_u16(self.buffer.as_ref(), at).unwrap_or(0))
    }

    /// The bytes after the header.
    pub fn payload(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        data.get(self.header_len()..).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set the destination address.
    pub fn set_dst_addr(&mut self, value: EthernetAddress) {
        if let Some(dst) = self.buffer.as_mut().get_mut(field::DESTINATION) {
            dst.copy_from_slice(&value.0);
        }
    }

    /// Set the source address.
    pub fn set_src_addr(&mut self, value: EthernetAddress) {
        if let Some(dst) = self.buffer.as_mut().get_mut(field::SOURCE) {
            dst.copy_from_slice(&value.0);
        }
    }

    /// Set the EtherType after the last tag. Writing a TPID value here adds a tag to the
    /// view's reading of the frame.
    pub fn set_ethertype(&mut self, value: EthernetProtocol) {
        let at = field::TYPE + self.vlan_count() * field::TAG_LEN;
        if let Some(dst) = self.buffer.as_mut().get_mut(at..at + 2) {
            dst.copy_from_slice(&u16::from(value).to_be_bytes());
        }
    }

    /// The bytes after the header, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let header_len = self.header_len();
        self.buffer
            .as_mut()
            .get_mut(header_len..)
            .unwrap_or(&mut [])
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// A high-level representation of an Ethernet II header with up to two VLAN tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    pub dst: EthernetAddress,
    pub src: EthernetAddress,
    /// Outermost first.
    pub vlans: Vlans,
    /// The EtherType after the last tag. It must be at least [`MIN_ETHERTYPE`] and no
    /// TPID, or the emitted frame reads back differently.
    pub ethertype: EthernetProtocol,
}

impl Repr {
    /// Parse an Ethernet II header. Besides [`Packet::check_len`]'s errors, an
    /// IEEE 802.3 length field in the EtherType position is an error.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<Repr> {
        packet.check_len()?;
        let ethertype = packet.ethertype();
        let raw = u16::from(ethertype);
        if raw < MIN_ETHERTYPE {
            return Err(WireError::BadValue {
                what: "EtherType (an IEEE 802.3 length, not Ethernet II)",
                value: u32::from(raw),
            });
        }
        Ok(Repr {
            dst: packet.dst_addr(),
            src: packet.src_addr(),
            vlans: packet.vlans(),
            ethertype,
        })
    }

    /// Length of the header this representation emits.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN + self.vlans.len() * VLAN_TAG_LEN
    }

    /// Same as [`Repr::header_len`]: the header has no payload of its own.
    pub const fn buffer_len(&self) -> usize {
        self.header_len()
    }

    /// Emit the header into the front of `packet`'s buffer.
    ///
    /// # Panics
    /// If the buffer is shorter than [`Repr::buffer_len`] (a caller bug, never peer
    /// input).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        let data = packet.buffer.as_mut();
        data[field::DESTINATION].copy_from_slice(&self.dst.0);
        data[field::SOURCE].copy_from_slice(&self.src.0);
        let mut at = field::TYPE;
        for tag in self.vlans.as_slice() {
            data[at..at + 2].copy_from_slice(&tag.tpid.as_u16().to_be_bytes());
            data[at + field::TCI..at + field::TAG_LEN].copy_from_slice(&tag.tci().to_be_bytes());
            at += field::TAG_LEN;
        }
        data[at..at + 2].copy_from_slice(&u16::from(self.ethertype).to_be_bytes());
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use proptest::prelude::*;

    const DST: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x02]);
    const SRC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);

    fn untagged_ipv4() -> Vec<u8> {
        hex::decode("020000000002020000000001080045").unwrap()
    }

    #[test]
    fn untagged() {
        let bytes = untagged_ipv4();
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.dst_addr(), DST);
        assert_eq!(packet.src_addr(), SRC);
        assert_eq!(packet.vlan_count(), 0);
        assert_eq!(packet.vlans(), Vlans::Untagged);
        assert_eq!(packet.vlan(0), None);
        assert_eq!(packet.ethertype(), EthernetProtocol::Ipv4);
        assert_eq!(packet.header_len(), 14);
        assert_eq!(packet.payload(), &[0x45]);
        let repr = Repr::parse(&packet).unwrap();
        assert_eq!(
            repr,
            Repr {
                dst: DST,
                src: SRC,
                vlans: Vlans::Untagged,
                ethertype: EthernetProtocol::Ipv4
            }
        );
    }

    #[test]
    fn single_dot1q_tag() {
        // PCP 5, DEI 1, VID 0x123.
        let bytes =
            hex::decode("020000000002020000000001 8100 b123 86dd 60".replace(' ', "")).unwrap();
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.vlan_count(), 1);
        let tag = packet.vlan(0).unwrap();
        assert_eq!(
            tag,
            VlanTag {
                tpid: Tpid::Dot1Q,
                pcp: 5,
                dei: true,
                vid: 0x123
            }
        );
        assert_eq!(tag.tci(), 0xb123);
        assert_eq!(packet.ethertype(), EthernetProtocol::Ipv6);
        assert_eq!(packet.header_len(), 18);
        assert_eq!(packet.payload(), &[0x60]);
    }

    #[test]
    fn qinq_every_outer_tpid() {
        for (tpid, raw) in [
            (Tpid::Dot1Ad, "88a8"),
            (Tpid::QinQ9100, "9100"),
            (Tpid::Dot1Q, "8100"),
        ] {
            let text = format!("020000000002020000000001{raw}e00a8100200b0800aabb");
            let bytes = hex::decode(text).unwrap();
            let packet = Packet::new_checked(&bytes[..]).unwrap();
            assert_eq!(packet.vlan_count(), 2);
            let vlans = packet.vlans();
            assert_eq!(
                vlans.outer().unwrap(),
                VlanTag {
                    tpid,
                    pcp: 7,
                    dei: false,
                    vid: 10
                }
            );
            assert_eq!(
                vlans.inner().unwrap(),
                VlanTag {
                    tpid: Tpid::Dot1Q,
                    pcp: 1,
                    dei: false,
                    vid: 11
                }
            );
            assert_eq!(packet.ethertype(), EthernetProtocol::Ipv4);
            assert_eq!(packet.header_len(), 22);
            assert_eq!(packet.payload(), &[0xaa, 0xbb]);
        }
    }

    #[test]
    fn three_tags_is_an_error() {
        let bytes = hex::decode(
            "020000000002020000000001 88a8 000a 8100 000b 8100 000c 0800 45".replace(' ', ""),
        )
        .unwrap();
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap_err(),
            WireError::BadValue {
                what: "VLAN tag count (at most 2)",
                value: 3
            }
        );
    }

    #[test]
    fn truncation_everywhere_is_an_error() {
        let full =
            hex::decode("020000000002020000000001 88a8 000a 8100 000b 0800".replace(' ', ""))
                .unwrap();
        assert!(Packet::new_checked(&full[..]).is_ok());
        for len in 0..full.len() {
            let err = Packet::new_checked(&full[..len]).unwrap_err();
            assert!(
                matches!(err, WireError::Truncated { available, .. } if available == len),
                "length {len}: {err:?}"
            );
        }
    }

    #[test]
    fn ieee_802_3_length_is_rejected_by_repr() {
        let bytes = hex::decode("0200000000020200000000010040aa").unwrap();
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert!(matches!(
            Repr::parse(&packet),
            Err(WireError::BadValue { value: 0x40, .. })
        ));
    }

    #[test]
    fn setters() {
        let mut bytes =
            hex::decode("000000000000000000000000 8100 0064 0000 ff".replace(' ', "")).unwrap();
        let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
        packet.set_dst_addr(DST);
        packet.set_src_addr(SRC);
        packet.set_ethertype(EthernetProtocol::Ipv6);
        packet.payload_mut()[0] = 0x60;
        assert_eq!(
            hex::encode(&bytes),
            "0200000000020200000000018100006486dd60"
        );
    }

    #[test]
    fn emit_known_answer() {
        let repr = Repr {
            dst: DST,
            src: SRC,
            vlans: Vlans::Double([
                VlanTag::new(Tpid::Dot1Ad, 100),
                VlanTag {
                    tpid: Tpid::Dot1Q,
                    pcp: 3,
                    dei: true,
                    vid: 4094,
                },
            ]),
            ethertype: EthernetProtocol::Ipv4,
        };
        let mut bytes = vec![0; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut bytes[..]));
        assert_eq!(
            hex::encode(&bytes),
            "02000000000202000000000188a8006481007ffe0800"
        );
    }

    fn tpid() -> impl Strategy<Value = Tpid> {
        prop_oneof![Just(Tpid::Dot1Q), Just(Tpid::Dot1Ad), Just(Tpid::QinQ9100)]
    }

    fn vlan_tag() -> impl Strategy<Value = VlanTag> {
        (tpid(), 0u8..8, any::<bool>(), 0u16..4096).prop_map(|(tpid, pcp, dei, vid)| VlanTag {
            tpid,
            pcp,
            dei,
            vid,
        })
    }

    pub(crate) fn vlans() -> impl Strategy<Value = Vlans> {
        prop_oneof![
            Just(Vlans::Untagged),
            vlan_tag().prop_map(Vlans::Single),
            (vlan_tag(), vlan_tag()).prop_map(|(o, i)| Vlans::Double([o, i])),
        ]
    }

    fn repr() -> impl Strategy<Value = Repr> {
        (
            any::<[u8; 6]>(),
            any::<[u8; 6]>(),
            vlans(),
            (MIN_ETHERTYPE..=u16::MAX).prop_filter("not a TPID", |v| Tpid::from_u16(*v).is_none()),
        )
            .prop_map(|(dst, src, vlans, ethertype)| Repr {
                dst: EthernetAddress(dst),
                src: EthernetAddress(src),
                vlans,
                ethertype: EthernetProtocol::from(ethertype),
            })
    }

    proptest! {
        #[test]
        fn repr_round_trip(repr in repr(), payload in proptest::collection::vec(any::<u8>(), 0..32)) {
            let mut bytes = vec![0; repr.buffer_len() + payload.len()];
            bytes[repr.buffer_len()..].copy_from_slice(&payload);
            repr.emit(&mut Packet::new_unchecked(&mut bytes[..]));
            let packet = Packet::new_checked(&bytes[..]).unwrap();
            prop_assert_eq!(packet.header_len(), repr.header_len());
            prop_assert_eq!(packet.payload(), &payload[..]);
            prop_assert_eq!(Repr::parse(&packet).unwrap(), repr);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let packet = Packet::new_unchecked(&bytes[..]);
            // Unchecked accessors are total too (they never index out of bounds).
            let _ = (packet.vlans(), packet.ethertype(), packet.payload(), packet.dst_addr());
            if let Ok(packet) = Packet::new_checked(&bytes[..]) {
                prop_assert!(packet.header_len() <= bytes.len());
                prop_assert_eq!(packet.payload().len(), bytes.len() - packet.header_len());
                if let Ok(repr) = Repr::parse(&packet) {
                    let mut out = vec![0; repr.buffer_len()];
                    repr.emit(&mut Packet::new_unchecked(&mut out[..]));
                    prop_assert_eq!(&out[..], &bytes[..repr.buffer_len()]);
                }
            }
        }
    }
}

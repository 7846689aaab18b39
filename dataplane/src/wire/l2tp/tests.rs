#![allow(clippy::unwrap_used, clippy::panic)]

use super::*;
use proptest::prelude::*;

const T: u16 = flags::T;
const L: u16 = flags::L;
const S: u16 = flags::S;
const O: u16 = flags::O;
const P: u16 = flags::P;

/// Build a version-2 packet field by field, independently of the code under test.
/// Field values: Length = whole message, tunnel 0x1122, session 0x3344, Ns 0x5566,
/// Nr 0x7788, offset size 3 with pad bytes 0xee, payload "PAY".
fn build(flags_word: u16) -> Vec<u8> {
    let mut fields: Vec<u8> = Vec::new();
    fields.extend_from_slice(&[0x11, 0x22, 0x33, 0x44]);
    if flags_word & S != 0 {
        fields.extend_from_slice(&[0x55, 0x66, 0x77, 0x88]);
    }
    if flags_word & O != 0 {
        fields.extend_from_slice(&[0x00, 0x03, 0xee, 0xee, 0xee]);
    }
    fields.extend_from_slice(b"PAY");
    let mut out = (flags_word | 2).to_be_bytes().to_vec();
    if flags_word & L != 0 {
        let total = (2 + 2 + fields.len()) as u16;
        out.extend_from_slice(&total.to_be_bytes());
    }
    out.extend_from_slice(&fields);
    out
}

/// Every combination of T, L, S, O, P with the expected outcome: `Some(header length
/// including the 3-byte offset pad)` or `None` for BadFlags (RFC 2661 §3.1).
const ALL_FLAGS: [(u16, Option<usize>); 32] = [
    (0, Some(6)),
    (P, Some(6)),
    (O, Some(6 + 2 + 3)),
    (O | P, Some(6 + 2 + 3)),
    (S, Some(6 + 4)),
    (S | P, Some(6 + 4)),
    (S | O, Some(6 + 4 + 2 + 3)),
    (S | O | P, Some(6 + 4 + 2 + 3)),
    (L, Some(8)),
    (L | P, Some(8)),
    (L | O, Some(8 + 2 + 3)),
    (L | O | P, Some(8 + 2 + 3)),
    (L | S, Some(12)),
    (L | S | P, Some(12)),
    (L | S | O, Some(12 + 2 + 3)),
    (L | S | O | P, Some(12 + 2 + 3)),
    (T, None),
    (T | P, None),
    (T | O, None),
    (T | O | P, None),
    (T | S, None),
    (T | S | P, None),
    (T | S | O, None),
    (T | S | O | P, None),
    (T | L, None),
    (T | L | P, None),
    (T | L | O, None),
    (T | L | O | P, None),
    (T | L | S, Some(12)),
    (T | L | S | P, None),
    (T | L | S | O, None),
    (T | L | S | O | P, None),
];

#[test]
fn every_flag_combination() {
    let mut seen = std::collections::HashSet::new();
    for (flags_word, expected) in ALL_FLAGS {
        assert!(seen.insert(flags_word), "duplicate row {flags_word:#06x}");
        let bytes = build(flags_word);
        let result = Packet::new_checked(&bytes[..]);
        match expected {
            None => assert_eq!(
                result,
                Err(WireError::BadFlags {
                    what: "L2TP control header",
                    flags: flags_word | 2
                }),
                "flags {flags_word:#06x}"
            ),
            Some(header_len) => {
                let packet = result.unwrap();
                assert_eq!(packet.header_len(), header_len, "flags {flags_word:#06x}");
                assert_eq!(packet.payload(), b"PAY", "flags {flags_word:#06x}");
                assert_eq!(packet.version(), 2);
                assert_eq!(packet.is_control(), flags_word & T != 0);
                assert_eq!(packet.priority(), flags_word & P != 0);
                assert_eq!(packet.tunnel_id(), 0x1122);
                assert_eq!(packet.session_id(), 0x3344);
                let has_l = flags_word & L != 0;
                assert_eq!(packet.length(), has_l.then_some(bytes.len() as u16));
                let has_s = flags_word & S != 0;
                assert_eq!(packet.ns(), has_s.then_some(0x5566));
                assert_eq!(packet.nr(), has_s.then_some(0x7788));
                assert_eq!(packet.offset_size(), (flags_word & O != 0).then_some(3));
                let repr = HeaderRepr::parse(&packet).unwrap();
                assert_eq!(repr.buffer_len(), header_len);
                assert_eq!(repr.is_control(), flags_word & T != 0);
                // Re-emit: identical except the offset pad, which is zeroed.
                let mut out = vec![0u8; bytes.len()];
                repr.emit(&mut Packet::new_unchecked(&mut out[..]), 3);
                out[header_len..].copy_from_slice(b"PAY");
                let mut expected_bytes = bytes.clone();
                if flags_word & O != 0 {
                    let pad = header_len - 3;
                    expected_bytes[pad..header_len].fill(0);
                }
                assert_eq!(out, expected_bytes, "flags {flags_word:#06x}");
            }
        }
    }
    assert_eq!(seen.len(), 32);
}

#[test]
fn header_len_from_flags_table() {
    assert_eq!(header_len_from_flags(0x0002), 6);
    assert_eq!(header_len_from_flags(L), 8);
    assert_eq!(header_len_from_flags(S), 10);
    assert_eq!(header_len_from_flags(O), 8);
    assert_eq!(header_len_from_flags(L | S | O), 14);
    assert_eq!(header_len_from_flags(T | L | S), 12);
}

#[test]
fn versions() {
    for version in 0u8..16 {
        let bytes = [0x00, version, 0, 1, 0, 2, 0xff];
        let result = Packet::new_checked(&bytes[..]);
        match version {
            2 => assert!(result.is_ok()),
            3 => assert_eq!(result, Err(WireError::L2tpV3)),
            other => assert_eq!(result, Err(WireError::BadVersion(other))),
        }
    }
}

#[test]
fn reserved_bits_ignored_on_receipt() {
    // Every x bit set on a data header with L: still valid, fields unchanged.
    let bytes = [0x74, 0xf2, 0x00, 0x08, 0x00, 0x01, 0x00, 0x02];
    let packet = Packet::new_checked(&bytes[..]).unwrap();
    assert_eq!(packet.header_len(), 8);
    let repr = HeaderRepr::parse(&packet).unwrap();
    assert_eq!(
        repr.flags_word(),
        L | 2,
        "reserved bits are emitted as zero"
    );
    assert_eq!(flags::RESERVED, 0x34f0);
}

#[test]
fn length_rules() {
    // Length below the header length.
    let bytes = [0xc8, 0x02, 0x00, 0x0b, 0, 1, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        Packet::new_checked(&bytes[..]),
        Err(WireError::BadLength {
            what: "L2TP Length",
            value: 11
        })
    );
    // Length beyond the buffer.
    let bytes = [0xc8, 0x02, 0x00, 0x0d, 0, 1, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        Packet::new_checked(&bytes[..]),
        Err(WireError::BadLength {
            what: "L2TP Length",
            value: 13
        })
    );
    // UDP padding after Length is not payload.
    let bytes = [0x40, 0x02, 0x00, 0x0a, 0, 1, 0, 2, 0xff, 0x03, 0xde, 0xad];
    let packet = Packet::new_checked(&bytes[..]).unwrap();
    assert_eq!(packet.payload(), &[0xff, 0x03]);
    assert_eq!(packet.total_len(), 10);
}

#[test]
fn offset_pad_bounded() {
    // O=1, Offset Size 4 but only 2 pad bytes present.
    let bytes = [0x02, 0x02, 0, 1, 0, 2, 0x00, 0x04, 0xaa, 0xbb];
    assert_eq!(
        Packet::new_checked(&bytes[..]),
        Err(WireError::Truncated {
            what: "L2TP offset pad",
            needed: 12,
            available: 10
        })
    );
    // The pad must also end within Length (UDP padding does not count).
    let bytes = [0x42, 0x02, 0x00, 0x0a, 0, 1, 0, 2, 0x00, 0x02, 0xaa, 0xbb];
    assert_eq!(
        Packet::new_checked(&bytes[..]),
        Err(WireError::Truncated {
            what: "L2TP offset pad",
            needed: 12,
            available: 10
        })
    );
    // Maximum offset size in a small buffer must not overflow or panic.
    let bytes = [0x02, 0x02, 0, 1, 0, 2, 0xff, 0xff];
    assert!(Packet::new_checked(&bytes[..]).is_err());
}

#[test]
fn truncation_at_every_offset() {
    for flags_word in [L | S | O | P, T | L | S, S | O] {
        let bytes = build(flags_word);
        let header = Packet::new_checked(&bytes[..]).unwrap().header_len();
        for cut in 0..bytes.len() {
            let result = Packet::new_checked(&bytes[..cut]);
            if flags_word & L != 0 || cut < header {
                assert!(result.is_err(), "flags {flags_word:#06x} cut {cut}");
            } else {
                assert_eq!(result.unwrap().payload().len(), cut - header);
            }
        }
    }
}

/// Golden: an SCCRQ header as xl2tpd sends it (T, L, S, Ver 2, Length 0x4c, tunnel 0,
/// session 0, Ns 0, Nr 0), and a plain data header carrying LCP (ff 03 c0 21).
#[test]
fn goldens() {
    let mut sccrq = hex::decode("c802004c000000000000000080080000").unwrap();
    sccrq.resize(0x4c, 0);
    let packet = Packet::new_checked(&sccrq[..]).unwrap();
    assert_eq!(
        HeaderRepr::parse(&packet).unwrap(),
        HeaderRepr::control(0, 0, 0, 0)
    );
    assert_eq!(packet.payload().len(), 0x4c - 12);

    let data = hex::decode("00020005000aff03c021").unwrap();
    let packet = Packet::new_checked(&data[..]).unwrap();
    let repr = HeaderRepr::parse(&packet).unwrap();
    assert_eq!(
        repr,
        HeaderRepr {
            tunnel_id: 5,
            session_id: 10,
            kind: HeaderKind::Data {
                length: false,
                sequence: None,
                offset_size: None,
                priority: false
            }
        }
    );
    assert_eq!(packet.payload(), &[0xff, 0x03, 0xc0, 0x21]);
}

#[test]
fn setters() {
    let mut bytes = build(L | S | O);
    let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
    packet.set_tunnel_id(7);
    packet.set_session_id(8);
    packet.set_ns(9);
    packet.set_nr(10);
    packet.payload_mut().copy_from_slice(b"xyz");
    assert_eq!(packet.tunnel_id(), 7);
    assert_eq!(packet.session_id(), 8);
    assert_eq!(packet.ns(), Some(9));
    assert_eq!(packet.nr(), Some(10));
    assert_eq!(&bytes[bytes.len() - 3..], b"xyz");
}

fn arb_sequence() -> impl Strategy<Value = Sequence> {
    (any::<u16>(), any::<u16>()).prop_map(|(ns, nr)| Sequence { ns, nr })
}

fn arb_repr() -> impl Strategy<Value = HeaderRepr> {
    let kind = prop_oneof![
        arb_sequence().prop_map(HeaderKind::Control),
        (
            any::<bool>(),
            proptest::option::of(arb_sequence()),
            proptest::option::of(0u16..64),
            any::<bool>()
        )
            .prop_map(
                |(length, sequence, offset_size, priority)| HeaderKind::Data {
                    length,
                    sequence,
                    offset_size,
                    priority
                }
            ),
    ];
    (any::<u16>(), any::<u16>(), kind).prop_map(|(tunnel_id, session_id, kind)| HeaderRepr {
        tunnel_id,
        session_id,
        kind,
    })
}

proptest! {
    #[test]
    fn repr_round_trip(repr in arb_repr(), payload in proptest::collection::vec(any::<u8>(), 0..32)) {
        let mut bytes = vec![0u8; repr.buffer_len() + payload.len()];
        repr.emit(&mut Packet::new_unchecked(&mut bytes[..]), payload.len());
        bytes[repr.buffer_len()..].copy_from_slice(&payload);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        prop_assert_eq!(HeaderRepr::parse(&packet).unwrap(), repr);
        prop_assert_eq!(packet.header_len(), repr.buffer_len());
        prop_assert_eq!(packet.payload(), &payload[..]);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
        if let Ok(packet) = Packet::new_checked(&bytes[..]) {
            let _ = packet.payload();
            let _ = (packet.ns(), packet.nr(), packet.offset_size(), packet.length());
            let _ = HeaderRepr::parse(&packet).unwrap();
        }
    }
}

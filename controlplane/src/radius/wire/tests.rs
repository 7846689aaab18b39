//! Known answers: the RFC 2865 §7.1 and §7.2 packets (secret "xyzzy5461"), and values
//! computed independently with python3 (secret "secret", Request Authenticator
//! 00 01 .. 0f):
//!
//! ```text
//! import hashlib, hmac
//! ra = bytes(range(16))
//! attrs = bytes([1,6]) + b"nemo" + bytes([40,6,0,0,0,1]) + bytes([80,18]) + bytes(16)
//! pkt = bytearray(bytes([4,7,0,20+len(attrs)]) + bytes(16) + attrs)
//! pkt[-16:] = hmac.new(b"secret", bytes(pkt), hashlib.md5).digest()
//! pkt[4:20] = hashlib.md5(bytes(pkt) + b"secret").digest()        # acct
//! attrs = bytes([1,6]) + b"nemo" + bytes([80,18]) + bytes(16)
//! pkt = bytearray(bytes([1,9,0,20+len(attrs)]) + ra + attrs)
//! pkt[-16:] = hmac.new(b"secret", bytes(pkt), hashlib.md5).digest() # access
//! attrs = bytes([80,18]) + bytes(16) + bytes([27,6,0,0,0,60])
//! pkt = bytearray(bytes([2,9,0,20+len(attrs)]) + ra + attrs)
//! pkt[22:38] = hmac.new(b"secret", bytes(pkt), hashlib.md5).digest()
//! pkt[4:20] = hashlib.md5(bytes(pkt) + b"secret").digest()        # accept
//! # salt: p = (bytes([16]) + b"\xaa"*16).ljust(32, b"\0"); b1 = md5(S+ra+salt) ...
//! ```
#![allow(clippy::unwrap_used, clippy::panic)]

use super::*;
use proptest::prelude::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

const RA: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

const RFC_7_1_REQUEST: &str = "01 00 00 38 0f 40 3f 94 73 97 80 57 bd 83 d5 cb
      98 f4 22 7a 01 06 6e 65 6d 6f 02 12 0d be 70 8d
      93 d4 13 ce 31 96 e4 3f 78 2a 0a ee 04 06 c0 a8
      01 10 05 06 00 00 00 03";
const RFC_7_1_ACCEPT: &str = "02 00 00 26 86 fe 22 0e 76 24 ba 2a 10 05 f6 bf
      9b 55 e0 b2 06 06 00 00 00 01 0f 06 00 00 00 00
      0e 06 c0 a8 01 03";
const RFC_7_2_REQUEST: &str = "01 01 00 47 2a ee 86 f0 8d 0d 55 96 9c a5 97 8e
      0d 33 67 a2 01 08 66 6c 6f 70 73 79 03 13 16 e9
      75 57 c3 16 18 58 95 f2 93 ff 63 44 07 72 75 04
      06 c0 a8 01 10 05 06 00 00 00 14 06 06 00 00 00
      02 07 06 00 00 00 01";
const RFC_7_2_ACCEPT: &str = "02 01 00 38 15 ef bc 7d ab 26 cf a3 dc 34 d9 c0
      3c 86 01 a4 06 06 00 00 00 02 07 06 00 00 00 01
      08 06 ff ff ff fe 0a 06 00 00 00 02 0d 06 00 00
      00 01 0c 06 00 00 05 dc";

fn clean(s: &str) -> Vec<u8> {
    h(&s.split_whitespace().collect::<String>())
}

#[test]
fn rfc2865_7_1_parse_and_password() {
    let bytes = clean(RFC_7_1_REQUEST);
    let repr = Repr::from_bytes(&bytes).unwrap();
    assert_eq!(repr.code, Code::AccessRequest);
    assert_eq!(repr.identifier, 0);
    assert_eq!(repr.attributes.len(), 4);
    assert_eq!(repr.get(attr::USER_NAME).unwrap().value, b"nemo");
    assert_eq!(repr.get(attr::NAS_PORT).unwrap().as_u32(), Some(3));
    let hidden = &repr.get(attr::USER_PASSWORD).unwrap().value;
    assert_eq!(
        unhide_password(hidden, b"xyzzy5461", &repr.authenticator).unwrap(),
        b"arctangent"
    );
    assert_eq!(
        &hide_password(b"arctangent", b"xyzzy5461", &repr.authenticator).unwrap(),
        hidden
    );
    assert_eq!(repr.to_bytes().unwrap(), bytes);
}

#[test]
fn rfc2865_7_response_authenticators() {
    for (req, acc) in [
        (RFC_7_1_REQUEST, RFC_7_1_ACCEPT),
        (RFC_7_2_REQUEST, RFC_7_2_ACCEPT),
    ] {
        let req = clean(req);
        let acc = clean(acc);
        let ra = Packet::new_checked(&req[..]).unwrap().authenticator();
        verify_response(&acc, &ra, b"xyzzy5461", false).unwrap();
        assert_eq!(
            verify_response(&acc, &ra, b"xyzzy5461", true),
            Err(Error::MissingMessageAuthenticator)
        );
        assert_eq!(
            verify_response(&acc, &ra, b"wrong", false),
            Err(Error::BadAuthenticator)
        );
        let mut resigned = acc.clone();
        resigned[4..20].fill(0);
        sign_response(&mut resigned, &ra, b"xyzzy5461").unwrap();
        assert_eq!(resigned, acc);
    }
}

#[test]
fn rfc2865_7_2_chap_password() {
    let repr = Repr::from_bytes(&clean(RFC_7_2_REQUEST)).unwrap();
    let chap = &repr.get(attr::CHAP_PASSWORD).unwrap().value;
    assert_eq!(chap.len(), 17);
    assert_eq!(chap[0], 22);
    assert_eq!(repr.get(attr::FRAMED_PROTOCOL).unwrap().as_u32(), Some(1));
}

#[test]
fn accounting_request_known_answer() {
    let expected = h(
        "0407003287c80cf3fa05615caa7f5f008942a9f301066e656d6f2806000000015012ff1fff377d0ca54aeb025769fa1bb902",
    );
    let repr = Repr {
        code: Code::AccountingRequest,
        identifier: 7,
        authenticator: [0; 16],
        attributes: vec![
            Attribute::new(attr::USER_NAME, b"nemo".to_vec()),
            Attribute::integer(attr::ACCT_STATUS_TYPE, 1),
            Attribute::new(attr::MESSAGE_AUTHENTICATOR, [0; 16]),
        ],
    };
    let mut bytes = repr.to_bytes().unwrap();
    sign_request(&mut bytes, b"secret").unwrap();
    assert_eq!(bytes, expected);
    verify_request(&bytes, b"secret", true).unwrap();
    assert_eq!(
        verify_request(&bytes, b"other", false),
        Err(Error::BadAuthenticator)
    );
    let mut tampered = bytes.clone();
    tampered[24] ^= 1;
    assert!(verify_request(&tampered, b"secret", false).is_err());
}

#[test]
fn access_request_message_authenticator_known_answer() {
    let expected = h(
        "0109002c000102030405060708090a0b0c0d0e0f01066e656d6f501296d3609437a4a36358c3e45b928191cb",
    );
    let repr = Repr {
        code: Code::AccessRequest,
        identifier: 9,
        authenticator: RA,
        attributes: vec![
            Attribute::new(attr::USER_NAME, b"nemo".to_vec()),
            Attribute::new(attr::MESSAGE_AUTHENTICATOR, [0; 16]),
        ],
    };
    let mut bytes = repr.to_bytes().unwrap();
    sign_request(&mut bytes, b"secret").unwrap();
    assert_eq!(bytes, expected);
    verify_request(&bytes, b"secret", true).unwrap();
    assert_eq!(
        verify_request(&bytes, b"wrong", true),
        Err(Error::BadMessageAuthenticator)
    );
}

#[test]
fn access_accept_message_authenticator_known_answer() {
    let expected = h(
        "0209002c4d5f7cce86fc5a9f6502e8ec50216e86501253059cb8154cbda36e0c226974e827c21b060000003c",
    );
    let repr = Repr {
        code: Code::AccessAccept,
        identifier: 9,
        authenticator: [0; 16],
        attributes: vec![
            Attribute::new(attr::MESSAGE_AUTHENTICATOR, [0; 16]),
            Attribute::integer(attr::SESSION_TIMEOUT, 60),
        ],
    };
    let mut bytes = repr.to_bytes().unwrap();
    sign_response(&mut bytes, &RA, b"secret").unwrap();
    assert_eq!(bytes, expected);
    verify_response(&bytes, &RA, b"secret", true).unwrap();

    // The Message-Authenticator alone wrong (Response Authenticator recomputed, as a
    // BlastRADIUS forger that controls the MD5 part would).
    let mut forged = bytes.clone();
    forged[22] ^= 0xff;
    forged[4..20].fill(0);
    let a = packet_authenticator(&forged, &RA, b"secret");
    forged[4..20].copy_from_slice(&a);
    assert_eq!(
        verify_response(&forged, &RA, b"secret", true),
        Err(Error::BadMessageAuthenticator)
    );
    // Two Message-Authenticators.
    let mut twice = repr.clone();
    twice
        .attributes
        .push(Attribute::new(attr::MESSAGE_AUTHENTICATOR, [0; 16]));
    let mut bytes = twice.to_bytes().unwrap();
    assert_eq!(
        sign_response(&mut bytes, &RA, b"secret"),
        Err(Error::BadMessageAuthenticator)
    );
}

#[test]
fn hmac_md5_rfc2202() {
    // RFC 2202 §2 test cases 1, 2 and 6 (key longer than a block).
    assert_eq!(
        hmac_md5(&[0x0b; 16], &[b"Hi There"]).to_vec(),
        h("9294727a3638bb1c13f48ef8158bfc9d")
    );
    assert_eq!(
        hmac_md5(b"Jefe", &[b"what do ya want ", b"for nothing?"]).to_vec(),
        h("750c783e6ab0b503eaa86e310a5db738")
    );
    assert_eq!(
        hmac_md5(
            &[0xaa; 80],
            &[b"Test Using Larger Than Block-Size Key - Hash Key First"]
        )
        .to_vec(),
        h("6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd")
    );
}

#[test]
fn password_two_blocks_known_answer() {
    let hidden = hide_password(b"0123456789abcdefghij", b"secret", &RA).unwrap();
    assert_eq!(
        hidden,
        h("663ffb77a4a7e550f2679a120fb08261817f83301a140545f146e386fcb5cc7c")
    );
    assert_eq!(
        unhide_password(&hidden, b"secret", &RA).unwrap(),
        b"0123456789abcdefghij"
    );
    assert_eq!(hide_password(b"", b"secret", &RA).unwrap().len(), 16);
    assert!(hide_password(&[b'x'; 129], b"secret", &RA).is_err());
    assert_eq!(
        unhide_password(&[0; 15], b"secret", &RA),
        Err(Error::BadEncryptedValue)
    );
}

#[test]
fn salt_encryption_known_answer() {
    let enc = salt_encrypt(&[0xaa; 16], b"secret", &RA, [0x01, 0x23]).unwrap();
    assert_eq!(
        enc,
        h("812311e1737951ff1d4f955cc35ad3cf48fe2f3703d34c0c78894ff59311b1a89a6c")
    );
    assert_eq!(salt_decrypt(&enc, b"secret", &RA).unwrap(), [0xaa; 16]);
    assert_eq!(
        salt_decrypt(&enc[..17], b"secret", &RA),
        Err(Error::BadEncryptedValue)
    );
}

#[test]
fn length_bounds() {
    let mut p = clean(RFC_7_1_ACCEPT);
    // Padding beyond Length is ignored (RFC 2865 §3).
    p.extend_from_slice(&[0xff; 7]);
    let repr = Repr::from_bytes(&p).unwrap();
    assert_eq!(repr.attributes.len(), 3);
    // Shorter than Length.
    assert!(matches!(
        Repr::from_bytes(&p[..37]),
        Err(Error::BadLength { length: 38, .. })
    ));
    // Length below 20.
    let mut q = p.clone();
    q[2..4].copy_from_slice(&19u16.to_be_bytes());
    assert!(matches!(Repr::from_bytes(&q), Err(Error::BadLength { .. })));
    // Length above 4096.
    let mut big = vec![0u8; 5000];
    big[2..4].copy_from_slice(&4097u16.to_be_bytes());
    assert!(matches!(
        Repr::from_bytes(&big),
        Err(Error::BadLength { .. })
    ));
    assert!(matches!(
        Repr::from_bytes(&p[..19]),
        Err(Error::Truncated { .. })
    ));
    // An attribute of length 1 and one running past Length.
    let mut r = clean(RFC_7_1_ACCEPT);
    r[21] = 1;
    assert_eq!(
        Repr::from_bytes(&r),
        Err(Error::BadAttributeLength { kind: 6, length: 1 })
    );
    r[21] = 40;
    assert_eq!(
        Repr::from_bytes(&r),
        Err(Error::BadAttributeLength {
            kind: 6,
            length: 40
        })
    );
    // Emit limits.
    let too_long = Repr {
        code: Code::AccessRequest,
        identifier: 0,
        authenticator: [0; 16],
        attributes: vec![Attribute::new(1, vec![0; 254])],
    };
    assert!(matches!(too_long.to_bytes(), Err(Error::TooLong { .. })));
    let too_many = Repr {
        attributes: vec![Attribute::new(1, vec![0; 253]); 17],
        ..too_long
    };
    assert!(matches!(too_many.to_bytes(), Err(Error::TooLong { .. })));
}

#[test]
fn vendor_specific() {
    let a = Attribute::vendor(ms::VENDOR_ID, ms::CHAP_CHALLENGE, &[7; 16]);
    assert_eq!(a.value.len(), 4 + 2 + 16);
    let (vendor, mut it) = parse_vendor_specific(&a.value).unwrap();
    assert_eq!(vendor, 311);
    assert_eq!(
        it.next().unwrap().unwrap(),
        VendorAttribute {
            kind: 11,
            value: &[7; 16]
        }
    );
    assert!(it.next().is_none());
    let attrs = vec![
        Attribute::new(attr::VENDOR_SPECIFIC, vec![0, 0]),
        Attribute::vendor(9, 1, b"cisco"),
        a,
    ];
    let found: Vec<_> = vendor_attributes(&attrs, 311).collect();
    assert_eq!(found.len(), 1);
    assert!(parse_vendor_specific(&[0, 0, 1]).is_err());
    let (_, mut bad) = parse_vendor_specific(&[0, 0, 1, 55, 1, 9]).unwrap();
    assert_eq!(bad.next(), Some(Err(Error::BadVendorSpecific)));
    assert_eq!(bad.next(), None);
}

fn arb_code() -> impl Strategy<Value = Code> {
    any::<u8>().prop_map(Code::from)
}

fn arb_repr() -> impl Strategy<Value = Repr> {
    (
        arb_code(),
        any::<u8>(),
        any::<[u8; 16]>(),
        prop::collection::vec(
            (any::<u8>(), prop::collection::vec(any::<u8>(), 0..40))
                .prop_map(|(k, v)| Attribute::new(k, v)),
            0..20,
        ),
    )
        .prop_map(|(code, identifier, authenticator, attributes)| Repr {
            code,
            identifier,
            authenticator,
            attributes,
        })
}

proptest! {
    #[test]
    fn parse_emit_round_trip(repr in arb_repr()) {
        let bytes = repr.to_bytes().unwrap();
        prop_assert_eq!(bytes.len(), repr.buffer_len());
        prop_assert_eq!(Repr::from_bytes(&bytes).unwrap(), repr);
    }

    #[test]
    fn code_round_trip(c in any::<u8>()) {
        prop_assert_eq!(u8::from(Code::from(c)), c);
    }

    #[test]
    fn no_panic_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300),
                                    secret in prop::collection::vec(any::<u8>(), 0..20)) {
        let _ = Repr::from_bytes(&bytes);
        let _ = verify_response(&bytes, &RA, &secret, true);
        let _ = verify_request(&bytes, &secret, false);
        let mut m = bytes.clone();
        let _ = sign_request(&mut m, &secret);
        let _ = sign_response(&mut m, &RA, &secret);
        let _ = unhide_password(&bytes, &secret, &RA);
        let _ = salt_decrypt(&bytes, &secret, &RA);
        if let Ok((_, it)) = parse_vendor_specific(&bytes) {
            for _ in it {}
        }
    }

    #[test]
    fn no_panic_on_mutated_packets(repr in arb_repr(), at in any::<usize>(), b in any::<u8>()) {
        let mut bytes = repr.to_bytes().unwrap();
        let i = at % bytes.len();
        bytes[i] = b;
        let _ = Repr::from_bytes(&bytes);
        let _ = verify_response(&bytes, &RA, b"s", true);
    }

    #[test]
    fn password_round_trip(pw in prop::collection::vec(1u8.., 0..=128), secret in prop::collection::vec(any::<u8>(), 1..20), ra in any::<[u8; 16]>()) {
        let hidden = hide_password(&pw, &secret, &ra).unwrap();
        prop_assert_eq!(hidden.len() % 16, 0);
        prop_assert_eq!(unhide_password(&hidden, &secret, &ra).unwrap(), pw);
    }

    #[test]
    fn salt_round_trip(pt in prop::collection::vec(any::<u8>(), 0..=239), salt in any::<[u8; 2]>(), ra in any::<[u8; 16]>()) {
        let enc = salt_encrypt(&pt, b"s3cr3t", &ra, salt).unwrap();
        prop_assert!(enc[0] & 0x80 != 0);
        prop_assert_eq!(salt_decrypt(&enc, b"s3cr3t", &ra).unwrap(), pt);
    }

    #[test]
    fn signed_requests_verify(repr in arb_repr(), with_ma in any::<bool>()) {
        let mut repr = repr;
        repr.attributes.retain(|a| a.kind != attr::MESSAGE_AUTHENTICATOR);
        repr.attributes.truncate(10);
        if with_ma {
            repr.attributes.push(Attribute::new(attr::MESSAGE_AUTHENTICATOR, [0; 16]));
        }
        let mut bytes = repr.to_bytes().unwrap();
        sign_request(&mut bytes, b"k").unwrap();
        prop_assert!(verify_request(&bytes, b"k", with_ma).is_ok());
        let ra = Packet::new_checked(&bytes[..]).unwrap().authenticator();
        let mut resp = bytes.clone();
        resp[0] = 2;
        sign_response(&mut resp, &ra, b"k").unwrap();
        prop_assert!(verify_response(&resp, &ra, b"k", with_ma).is_ok());
    }
}

#![allow(clippy::unwrap_used, clippy::panic)]
//! IPv6CP Interface-Identifier policy (RFC 5072 §4.1) through the `Protocol` interface.

use rand::SeedableRng;

use super::*;

const ID_A: InterfaceId = [0x02, 0x11, 0x22, 0xff, 0xfe, 0x33, 0x44, 0x55];
const ZERO: InterfaceId = [0; 8];

fn v6(id: Option<InterfaceId>) -> Ipv6cp {
    Ipv6cp::new(id, StdRng::seed_from_u64(9))
}

fn opts(list: &[Ipv6cpOption]) -> Vec<u8> {
    let mut out = Vec::new();
    for o in list {
        push(&mut out, o);
    }
    out
}

fn judge(p: &mut Ipv6cp, list: &[Ipv6cpOption]) -> Verdict {
    let b = opts(list);
    p.judge_peer_request(Options::new_checked(&b).unwrap())
}

fn nak_value(v: Verdict) -> InterfaceId {
    let Verdict::Nak(n) = v else {
        panic!("expected Nak, got {v:?}");
    };
    match wire::parse_options::<Ipv6cpOption>(&n).unwrap()[..] {
        [Ipv6cpOption::InterfaceIdentifier(id)] => id,
        ref o => panic!("{o:?}"),
    }
}

#[test]
fn ours_is_configured_or_random_non_zero() {
    assert_eq!(v6(Some(ID_A)).identifier(), ID_A);
    let r = v6(None).identifier();
    assert_ne!(r, ZERO);
    assert_eq!(r[0] & 0x02, 0, "u bit cleared");
    let mut p = v6(Some(ID_A));
    let mut out = Vec::new();
    p.build_request(&mut out);
    assert_eq!(out, opts(&[Ipv6cpOption::InterfaceIdentifier(ID_A)]));
}

#[test]
fn distinct_non_zero_acked() {
    let mut p = v6(Some(ID_A));
    assert_eq!(
        judge(&mut p, &[Ipv6cpOption::InterfaceIdentifier([1; 8])]),
        Verdict::Ack
    );
}

#[test]
fn zero_equal_or_missing_naked_with_fresh_unique() {
    let mut p = v6(Some(ID_A));
    for asked in [
        vec![Ipv6cpOption::InterfaceIdentifier(ZERO)],
        vec![Ipv6cpOption::InterfaceIdentifier(ID_A)],
        vec![],
    ] {
        let s = nak_value(judge(&mut p, &asked));
        assert_ne!(s, ZERO);
        assert_ne!(s, ID_A);
        assert_eq!(s[0] & 0x02, 0);
    }
}

#[test]
fn both_zero_rejected_and_compression_rejected() {
    let mut p = v6(Some(ID_A));
    let b = opts(&[Ipv6cpOption::InterfaceIdentifier(ID_A)]);
    assert!(p.our_request_rejected(Options::new_checked(&b).unwrap()));
    let mut out = Vec::new();
    p.build_request(&mut out);
    assert!(out.is_empty(), "no identifier after a Reject");
    let zero = [Ipv6cpOption::InterfaceIdentifier(ZERO)];
    assert_eq!(judge(&mut p, &zero), Verdict::Reject(opts(&zero)));
    let comp = Ipv6cpOption::Ipv6CompressionProtocol {
        protocol: 0x004f,
        data: vec![],
    };
    let mut q = v6(None);
    assert_eq!(
        judge(
            &mut q,
            &[comp.clone(), Ipv6cpOption::InterfaceIdentifier([1; 8])]
        ),
        Verdict::Reject(opts(&[comp]))
    );
}

#[test]
fn nak_adopted_unless_it_is_our_own_last_nak() {
    let mut p = v6(Some(ID_A));
    let b = opts(&[Ipv6cpOption::InterfaceIdentifier([7; 8])]);
    assert!(p.our_request_naked(Options::new_checked(&b).unwrap()));
    assert_eq!(p.identifier(), [7; 8]);
    // A Nak we sent coming back: a new identifier is drawn.
    let s = nak_value(judge(&mut p, &[Ipv6cpOption::InterfaceIdentifier([7; 8])]));
    let b = opts(&[Ipv6cpOption::InterfaceIdentifier(s)]);
    assert!(p.our_request_naked(Options::new_checked(&b).unwrap()));
    assert_ne!(p.identifier(), s);
    assert_ne!(p.identifier(), ZERO);
}

#[test]
fn result_holds_both_identifiers_and_link_local() {
    let mut p = v6(Some(ID_A));
    let ours = opts(&[Ipv6cpOption::InterfaceIdentifier(ID_A)]);
    p.our_request_acked(Options::new_checked(&ours).unwrap());
    let theirs = opts(&[Ipv6cpOption::InterfaceIdentifier([1; 8])]);
    p.peer_request_acked(Options::new_checked(&theirs).unwrap());
    assert_eq!(
        *p.negotiated(),
        Ipv6cpNegotiated {
            local: ID_A,
            peer: [1; 8]
        }
    );
    assert_eq!(
        link_local(ID_A),
        "fe80::211:22ff:fe33:4455".parse::<Ipv6Addr>().unwrap()
    );
}

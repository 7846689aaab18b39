#![allow(clippy::unwrap_used, clippy::panic)]
//! One test group per option policy, through the `Protocol` interface the automaton uses.

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;
use crate::ppp::fsm::push_option;
use crate::ppp::lcp::option_type as t;

const MSCHAPV2: AuthProtocol = AuthProtocol::Chap(ChapAlgorithm::MsChapV2);
const CHAP_MD5: AuthProtocol = AuthProtocol::Chap(ChapAlgorithm::Md5);

fn lns() -> Lcp {
    let mut l = Lcp::new(
        LcpPolicy::authenticator(LcpPolicy::all_auth()),
        StdRng::seed_from_u64(7),
    );
    l.reset_request();
    l
}

fn client() -> Lcp {
    let mut l = Lcp::new(
        LcpPolicy::peer(vec![CHAP_MD5, AuthProtocol::Pap]),
        StdRng::seed_from_u64(8),
    );
    l.reset_request();
    l
}

fn opts(list: &[LcpOption]) -> Vec<u8> {
    let mut out = Vec::new();
    for o in list {
        push(&mut out, o);
    }
    out
}

fn judge(l: &mut Lcp, list: &[LcpOption]) -> Verdict {
    let bytes = opts(list);
    l.judge_peer_request(Options::new_checked(&bytes).unwrap())
}

fn nak(list: &[LcpOption]) -> Verdict {
    Verdict::Nak(opts(list))
}

fn reject(list: &[LcpOption]) -> Verdict {
    Verdict::Reject(opts(list))
}

fn request(l: &mut Lcp) -> Vec<LcpOption> {
    let mut out = Vec::new();
    l.build_request(&mut out);
    wire::parse_options(&out).unwrap()
}

fn naked(l: &mut Lcp, list: &[LcpOption]) {
    let bytes = opts(list);
    assert!(l.our_request_naked(Options::new_checked(&bytes).unwrap()));
}

fn rejected(l: &mut Lcp, list: &[LcpOption]) -> bool {
    let bytes = opts(list);
    l.our_request_rejected(Options::new_checked(&bytes).unwrap())
}

fn acked(l: &mut Lcp) {
    let mut out = Vec::new();
    l.build_request(&mut out);
    l.our_request_acked(Options::new_checked(&out).unwrap());
}

// MRU (RFC 1661 §6.1).

#[test]
fn mru_within_bounds_acked_outside_naked_with_bound() {
    let mut l = lns();
    assert_eq!(judge(&mut l, &[LcpOption::Mru(1400)]), Verdict::Ack);
    assert_eq!(
        judge(&mut l, &[LcpOption::Mru(64)]),
        nak(&[LcpOption::Mru(DEFAULT_PEER_MRU_MIN)])
    );
    assert_eq!(
        judge(&mut l, &[LcpOption::Mru(9000)]),
        nak(&[LcpOption::Mru(1500)])
    );
}

#[test]
fn mru_requested_naked_and_rejected() {
    let mut l = lns();
    assert_eq!(request(&mut l)[0], LcpOption::Mru(DEFAULT_OUR_MRU));
    naked(&mut l, &[LcpOption::Mru(1300)]);
    assert_eq!(request(&mut l)[0], LcpOption::Mru(1300));
    naked(&mut l, &[LcpOption::Mru(20)]);
    assert_eq!(request(&mut l)[0], LcpOption::Mru(1300));
    assert!(rejected(&mut l, &[LcpOption::Mru(1300)]));
    assert!(
        !request(&mut l)
            .iter()
            .any(|o| matches!(o, LcpOption::Mru(_)))
    );
    acked(&mut l);
    assert_eq!(l.negotiated().our_mru, 1500);
}

#[test]
fn peer_mru_recorded_with_default() {
    let mut l = lns();
    let b = opts(&[LcpOption::Mru(1400)]);
    l.peer_request_acked(Options::new_checked(&b).unwrap());
    assert_eq!(l.negotiated().peer_mru, 1400);
    l.peer_request_acked(Options::new_checked(&[]).unwrap());
    assert_eq!(l.negotiated().peer_mru, 1500);
}

// ACCM (RFC 1662 §7.1): accepted, never requested.

#[test]
fn accm_accepted_and_recorded() {
    let mut l = lns();
    assert_eq!(judge(&mut l, &[LcpOption::Accm(0)]), Verdict::Ack);
    assert_eq!(judge(&mut l, &[LcpOption::Accm(0xffff_ffff)]), Verdict::Ack);
    assert!(
        !request(&mut l)
            .iter()
            .any(|o| matches!(o, LcpOption::Accm(_)))
    );
    let b = opts(&[LcpOption::Accm(0x000a_0000)]);
    l.peer_request_acked(Options::new_checked(&b).unwrap());
    assert_eq!(l.negotiated().peer_accm, 0x000a_0000);
}

// Authentication-Protocol (RFC 1661 §6.2).

#[test]
fn authenticator_requests_preferred_and_walks_naks() {
    let mut l = lns();
    let auth = |l: &mut Lcp| {
        request(l).into_iter().find_map(|o| match o {
            LcpOption::AuthenticationProtocol(a) => Some(a),
            _ => None,
        })
    };
    assert_eq!(auth(&mut l), Some(MSCHAPV2));
    naked(&mut l, &[LcpOption::AuthenticationProtocol(CHAP_MD5)]);
    assert_eq!(auth(&mut l), Some(CHAP_MD5));
    naked(
        &mut l,
        &[LcpOption::AuthenticationProtocol(AuthProtocol::Eap)],
    );
    assert_eq!(auth(&mut l), Some(AuthProtocol::Pap));
    assert_eq!(l.failure(), None);
    naked(
        &mut l,
        &[LcpOption::AuthenticationProtocol(AuthProtocol::Eap)],
    );
    assert_eq!(l.failure(), Some(NegotiationFailure::NoCommonAuthProtocol));
    acked(&mut l);
    assert_eq!(l.negotiated().peer_auth, Some(AuthProtocol::Pap));
}

#[test]
fn authenticator_fails_when_auth_rejected() {
    let mut l = lns();
    assert!(rejected(
        &mut l,
        &[LcpOption::AuthenticationProtocol(MSCHAPV2)]
    ));
    assert_eq!(l.failure(), Some(NegotiationFailure::AuthRejected));
    l.reset_request();
    assert_eq!(l.failure(), None);
}

#[test]
fn lns_rejects_being_asked_to_authenticate() {
    let mut l = lns();
    let asked = [LcpOption::AuthenticationProtocol(AuthProtocol::Pap)];
    assert_eq!(judge(&mut l, &asked), reject(&asked));
}

#[test]
fn peer_side_accepts_or_naks_auth() {
    let mut c = client();
    assert_eq!(request(&mut c).len(), 2, "MRU and Magic-Number, no auth");
    assert_eq!(
        judge(&mut c, &[LcpOption::AuthenticationProtocol(CHAP_MD5)]),
        Verdict::Ack
    );
    assert_eq!(
        judge(&mut c, &[LcpOption::AuthenticationProtocol(MSCHAPV2)]),
        nak(&[LcpOption::AuthenticationProtocol(CHAP_MD5)])
    );
    let b = opts(&[LcpOption::AuthenticationProtocol(AuthProtocol::Pap)]);
    c.peer_request_acked(Options::new_checked(&b).unwrap());
    assert_eq!(c.negotiated().our_auth, Some(AuthProtocol::Pap));
}

// Magic-Number (RFC 1661 §6.4).

#[test]
fn magic_equal_to_ours_naked_different_acked() {
    let mut l = lns();
    let ours = match request(&mut l)[2] {
        LcpOption::MagicNumber(m) => m,
        ref o => panic!("{o:?}"),
    };
    assert_ne!(ours, 0);
    assert_eq!(
        judge(&mut l, &[LcpOption::MagicNumber(ours ^ 1)]),
        Verdict::Ack
    );
    let Verdict::Nak(n) = judge(&mut l, &[LcpOption::MagicNumber(ours)]) else {
        panic!("expected Nak");
    };
    let suggested = match wire::parse_options::<LcpOption>(&n).unwrap()[..] {
        [LcpOption::MagicNumber(m)] => m,
        ref o => panic!("{o:?}"),
    };
    assert!(suggested != 0 && suggested != ours);
    // That Nak coming back to us counts as loopback suspicion and draws a new number.
    naked(&mut l, &[LcpOption::MagicNumber(suggested)]);
    assert_eq!(l.loopback_count(), 1);
    acked(&mut l);
    assert_ne!(l.negotiated().our_magic, ours);
    assert_eq!(l.magic_number(), l.negotiated().our_magic);
}

#[test]
fn magic_loopback_declared_after_max() {
    let mut policy = LcpPolicy::authenticator(vec![]);
    policy.max_loopback = 3;
    let mut l = Lcp::new(policy, StdRng::seed_from_u64(1));
    l.reset_request();
    for _ in 0..3 {
        assert_eq!(l.failure(), None);
        let ours = l.magic.ours();
        let Verdict::Nak(n) = judge(&mut l, &[LcpOption::MagicNumber(ours)]) else {
            panic!("expected Nak");
        };
        let b = n.clone();
        assert!(l.our_request_naked(Options::new_checked(&b).unwrap()));
    }
    assert_eq!(l.failure(), Some(NegotiationFailure::Loopback));
}

#[test]
fn magic_rejected_stops_and_is_zero() {
    let mut l = lns();
    let ours = l.magic.ours();
    assert!(rejected(&mut l, &[LcpOption::MagicNumber(ours)]));
    assert!(
        !request(&mut l)
            .iter()
            .any(|o| matches!(o, LcpOption::MagicNumber(_)))
    );
    acked(&mut l);
    assert_eq!(l.negotiated().our_magic, 0);
}

// PFC and ACFC (RFC 1661 §6.5, §6.6).

#[test]
fn pfc_acfc_by_policy() {
    let mut l = lns();
    assert_eq!(
        judge(&mut l, &[LcpOption::Pfc, LcpOption::Acfc]),
        Verdict::Ack
    );
    let mut policy = LcpPolicy::authenticator(vec![]);
    policy.accept_pfc = false;
    let mut strict = Lcp::new(policy, StdRng::seed_from_u64(1));
    assert_eq!(
        judge(&mut strict, &[LcpOption::Pfc, LcpOption::Acfc]),
        reject(&[LcpOption::Pfc])
    );
    let b = opts(&[LcpOption::Pfc, LcpOption::Acfc]);
    l.peer_request_acked(Options::new_checked(&b).unwrap());
    assert!(l.negotiated().tx_pfc && l.negotiated().tx_acfc);
    assert!(!l.negotiated().rx_pfc);
}

#[test]
fn pfc_acfc_requested_then_rejected() {
    let mut policy = LcpPolicy::peer(vec![]);
    policy.request_pfc = true;
    policy.request_acfc = true;
    let mut l = Lcp::new(policy, StdRng::seed_from_u64(1));
    l.reset_request();
    let r = request(&mut l);
    assert!(r.contains(&LcpOption::Pfc) && r.contains(&LcpOption::Acfc));
    assert!(rejected(&mut l, &[LcpOption::Pfc]));
    let r = request(&mut l);
    assert!(!r.contains(&LcpOption::Pfc) && r.contains(&LcpOption::Acfc));
    acked(&mut l);
    assert!(!l.negotiated().rx_pfc && l.negotiated().rx_acfc);
}

// Quality-Protocol, unknown and malformed options.

#[test]
fn quality_unknown_and_malformed_rejected_alone() {
    let mut l = lns();
    let lqr = LcpOption::QualityProtocol {
        protocol: 0xc025,
        data: vec![0, 0, 0x0b, 0xb8],
    };
    let callback = LcpOption::Unknown {
        kind: 13,
        data: vec![6],
    };
    // A Reject carries only the rejected options, even when others would be Nak'd.
    assert_eq!(
        judge(&mut l, &[LcpOption::Mru(64), lqr.clone(), callback.clone()]),
        reject(&[lqr, callback])
    );
    let mut bad = Vec::new();
    push_option(&mut bad, t::MRU, &[5]);
    push_option(&mut bad, t::MAGIC_NUMBER, &[1, 2, 3]);
    assert_eq!(
        l.judge_peer_request(Options::new_checked(&bad).unwrap()),
        Verdict::Reject(bad.clone())
    );
}

#[test]
fn reject_of_an_option_never_sent_is_invalid() {
    let mut l = lns();
    assert!(!rejected(&mut l, &[LcpOption::Accm(0)]));
}

//! Every authenticator against its peer over a virtual link and clock.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::super::chap::Repr as ChapRepr;
use super::super::mschapv2::{self, FailureMessage, ResponseValue};
use super::super::pap::Repr as PapRepr;
use super::super::users::Users;
use super::*;

fn users() -> Users {
    Users::parse(
        "user1 pw1 address=10.0.0.5 pool=p\nUser clientPass\n",
        "test",
    )
    .unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    ToPeer,
    ToAuth,
}

/// What one run saw.
#[derive(Debug, Default)]
struct Outcome {
    auth: Vec<Event>,
    peer: Vec<Event>,
    /// Packets sent by each side, in order (dropped ones included).
    to_peer: Vec<Vec<u8>>,
    to_auth: Vec<Vec<u8>>,
    elapsed: Duration,
}

/// Run both machines until nothing is pending or `limit` of virtual time has passed.
/// `drop(dir, n)` drops the n-th (0-based) packet sent in that direction. Verify
/// requests are answered by `verifier` (which may rewrite the result) at once.
fn run(
    auth: &mut Authenticator,
    peer: &mut Peer,
    start: Instant,
    limit: Duration,
    mut drop: impl FnMut(Dir, usize) -> bool,
    mut verifier: impl FnMut(&VerifyRequest) -> AuthResult,
) -> Outcome {
    let mut now = start;
    let mut out = Outcome::default();
    auth.start(now);
    peer.start(now);
    loop {
        let mut moved = false;
        while let Some(p) = auth.poll_transmit() {
            moved = true;
            let n = out.to_peer.len();
            out.to_peer.push(p.clone());
            if !drop(Dir::ToPeer, n) {
                let _ = peer.handle_packet(&p, now);
            }
        }
        while let Some(p) = peer.poll_transmit() {
            moved = true;
            let n = out.to_auth.len();
            out.to_auth.push(p.clone());
            if !drop(Dir::ToAuth, n) {
                let _ = auth.handle_packet(&p, now);
            }
        }
        while let Some(e) = auth.poll_event() {
            moved = true;
            if let Event::NeedVerify(request) = &e {
                let result = verifier(request);
                auth.handle_verify_result(request.id, result, now);
            }
            out.auth.push(e);
        }
        while let Some(e) = peer.poll_event() {
            moved = true;
            out.peer.push(e);
        }
        if moved {
            continue;
        }
        let next = [auth.poll_timeout(), peer.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        match next {
            Some(t) if t - start <= limit => {
                now = now.max(t);
                auth.handle_timeout(now);
                peer.handle_timeout(now);
            }
            _ => break,
        }
    }
    out.elapsed = now - start;
    out
}

fn local(request: &VerifyRequest) -> AuthResult {
    users().verify(request)
}

fn no_drop(_: Dir, _: usize) -> bool {
    false
}

const LIMIT: Duration = Duration::from_secs(120);

fn success(user: &[u8]) -> Event {
    Event::Success {
        user: user.to_vec(),
        attributes: ReplyAttributes::default(),
    }
}

fn user1_success() -> Event {
    Event::Success {
        user: b"user1".to_vec(),
        attributes: ReplyAttributes {
            address: Some("10.0.0.5".parse().unwrap()),
            pool: Some("p".into()),
            ..ReplyAttributes::default()
        },
    }
}

fn verifies(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::NeedVerify(_)))
        .count()
}

fn non_verify(events: &[Event]) -> Vec<Event> {
    events
        .iter()
        .filter(|e| !matches!(e, Event::NeedVerify(_)))
        .cloned()
        .collect()
}

// ---------------------------------------------------------------------------- PAP

fn pap_pair(password: &[u8]) -> (Authenticator, Peer) {
    (
        Authenticator::Pap(Box::new(PapAuthenticator::new(
            PapAuthenticatorConfig::default(),
        ))),
        Peer::Pap(PapPeer::new(PapPeerConfig::new(b"user1", password))),
    )
}

#[test]
fn pap_success() {
    let (mut auth, mut peer) = pap_pair(b"pw1");
    assert_eq!(auth.method().protocol(), PROTOCOL_PAP);
    let out = run(&mut auth, &mut peer, Instant::now(), LIMIT, no_drop, local);
    assert_eq!(non_verify(&out.auth), vec![user1_success()]);
    assert_eq!(out.peer, vec![success(b"user1")]);
    assert_eq!(
        PapRepr::from_bytes(&out.to_peer[0]).unwrap(),
        PapRepr::AuthenticateAck {
            identifier: 1,
            message: b"Login ok".to_vec()
        }
    );
    let Event::NeedVerify(request) = &out.auth[0] else {
        panic!()
    };
    assert_eq!(request.user, b"user1");
    assert_eq!(
        request.credential,
        Credential::Pap {
            password: b"pw1".to_vec()
        }
    );
    assert!(!format!("{:?}", request.credential).contains("pw1"));
}

#[test]
fn pap_wrong_password() {
    let (mut auth, mut peer) = pap_pair(b"nope");
    let out = run(&mut auth, &mut peer, Instant::now(), LIMIT, no_drop, local);
    let rejected = Event::Failure {
        reason: FailureReason::Rejected {
            user: b"user1".to_vec(),
            message: b"Login incorrect".to_vec(),
        },
    };
    assert_eq!(non_verify(&out.auth), vec![rejected.clone()]);
    assert_eq!(out.peer, vec![rejected]);
    assert_eq!(out.to_peer.len(), 1);
}

#[test]
fn pap_lost_ack_is_sent_again() {
    let (mut auth, mut peer) = pap_pair(b"pw1");
    let out = run(
        &mut auth,
        &mut peer,
        Instant::now(),
        LIMIT,
        |d, n| d == Dir::ToPeer && n == 0,
        local,
    );
    // The peer retransmitted with a new Identifier; the Ack came again for it.
    assert_eq!(out.to_auth.len(), 2);
    assert_eq!(out.to_auth[1][1], 2);
    assert_eq!(out.to_peer.len(), 2);
    assert_eq!(out.to_peer[1][1], 2);
    assert_eq!(non_verify(&out.auth), vec![user1_success()]);
    assert_eq!(verifies(&out.auth), 1);
    assert_eq!(out.peer, vec![success(b"user1")]);
    assert_eq!(out.elapsed, Duration::from_secs(3));
    assert_eq!(auth.counters().retransmitted, 1);
}

#[test]
fn pap_duplicate_request_after_ack() {
    let now = Instant::now();
    let mut auth = PapAuthenticator::new(PapAuthenticatorConfig::default());
    auth.start(now);
    let request = PapRepr::AuthenticateRequest {
        identifier: 9,
        peer_id: b"user1".to_vec(),
        password: b"pw1".to_vec(),
    }
    .to_bytes();
    auth.handle_packet(&request, now).unwrap();
    // A duplicate while the verification is pending is absorbed.
    auth.handle_packet(&request, now).unwrap();
    let Some(Event::NeedVerify(v)) = auth.poll_event() else {
        panic!()
    };
    assert_eq!(auth.poll_event(), None);
    // A stale answer changes nothing.
    auth.handle_verify_result(v.id + 1, AuthResult::reject(), now);
    assert_eq!(auth.counters().stale_results, 1);
    assert_eq!(auth.poll_transmit(), None);
    auth.handle_verify_result(v.id, users().verify(&v), now);
    let ack = auth.poll_transmit().unwrap();
    assert!(auth.is_authenticated());
    auth.handle_packet(&request, now).unwrap();
    assert_eq!(auth.poll_transmit().unwrap(), ack);
    // Another password under a new Identifier after the Ack: discarded.
    let other = PapRepr::AuthenticateRequest {
        identifier: 10,
        peer_id: b"user1".to_vec(),
        password: b"guess".to_vec(),
    }
    .to_bytes();
    auth.handle_packet(&other, now).unwrap();
    assert_eq!(auth.poll_transmit(), None);
    assert_eq!(auth.counters().discarded, 1);
    assert_eq!(auth.poll_event(), Some(user1_success()));
    assert_eq!(auth.poll_event(), None);
}

#[test]
fn pap_authenticator_times_out_without_request() {
    let mut auth = Authenticator::Pap(Box::new(PapAuthenticator::new(PapAuthenticatorConfig {
        request_timeout: Duration::from_secs(20),
        ..PapAuthenticatorConfig::default()
    })));
    let mut peer = Peer::Pap(PapPeer::new(PapPeerConfig::new(b"user1", b"pw1")));
    // Every request lost.
    let out = run(
        &mut auth,
        &mut peer,
        Instant::now(),
        LIMIT,
        |d, _| d == Dir::ToAuth,
        local,
    );
    assert_eq!(
        out.auth,
        vec![Event::Failure {
            reason: FailureReason::Timeout
        }]
    );
    // The peer gave up after 10 transmissions, 30 s.
    assert_eq!(out.to_auth.len(), 10);
    assert_eq!(
        out.peer,
        vec![Event::Failure {
            reason: FailureReason::Timeout
        }]
    );
    assert_eq!(out.elapsed, Duration::from_secs(30));
}

// ---------------------------------------------------------------------------- CHAP

fn chap_pair(method: ChapMethod, password: &str) -> (Authenticator, Peer) {
    chap_pair_with(ChapAuthenticatorConfig::new(method, b"lns"), password)
}

fn chap_pair_with(config: ChapAuthenticatorConfig, password: &str) -> (Authenticator, Peer) {
    let method = config.method;
    (
        Authenticator::Chap(Box::new(ChapAuthenticator::with_seed(config, 7))),
        Peer::Chap(Box::new(ChapPeer::with_seed(
            ChapPeerConfig::new(method, b"user1", password),
            8,
        ))),
    )
}

#[test]
fn chap_md5_success() {
    let (mut auth, mut peer) = chap_pair(ChapMethod::Md5, "pw1");
    assert_eq!(auth.method(), Method::ChapMd5);
    assert_eq!(auth.method().chap_algorithm(), Some(5));
    let out = run(&mut auth, &mut peer, Instant::now(), LIMIT, no_drop, local);
    assert_eq!(non_verify(&out.auth), vec![user1_success()]);
    assert_eq!(out.peer, vec![success(b"user1")]);
    let ChapRepr::Challenge {
        identifier,
        value,
        name,
    } = ChapRepr::from_bytes(&out.to_peer[0]).unwrap()
    else {
        panic!()
    };
    assert_eq!((value.len(), name.as_slice()), (16, &b"lns"[..]));
    assert_eq!(
        ChapRepr::from_bytes(&out.to_auth[0]).unwrap(),
        ChapRepr::Response {
            identifier,
            value: crate::ppp::chap::md5_response(identifier, b"pw1", &value).to_vec(),
            name: b"user1".to_vec()
        }
    );
    assert_eq!(
        ChapRepr::from_bytes(&out.to_peer[1]).unwrap(),
        ChapRepr::Success {
            identifier,
            message: b"Access granted".to_vec()
        }
    );
    assert_eq!(out.elapsed, Duration::ZERO);
}

#[test]
fn chap_challenges_are_random() {
    let now = Instant::now();
    let challenge = |mut a: ChapAuthenticator| {
        a.start(now);
        a.poll_transmit().unwrap()
    };
    let config = ChapAuthenticatorConfig::new(ChapMethod::Md5, b"lns");
    assert_ne!(
        challenge(ChapAuthenticator::new(config.clone())),
        challenge(ChapAuthenticator::new(config.clone()))
    );
    assert_eq!(
        challenge(ChapAuthenticator::with_seed(config.clone(), 1)),
        challenge(ChapAuthenticator::with_seed(config, 1))
    );
}

#[test]
fn chap_md5_wrong_password() {
    let (mut auth, mut peer) = chap_pair(ChapMethod::Md5, "wrong");
    let out = run(&mut auth, &mut peer, Instant::now(), LIMIT, no_drop, local);
    let rejected = Event::Failure {
        reason: FailureReason::Rejected {
            user: b"user1".to_vec(),
            message: b"Access denied".to_vec(),
        },
    };
    assert_eq!(non_verify(&out.auth), vec![rejected.clone()]);
    assert_eq!(out.peer, vec![rejected]);
    assert!(matches!(auth, Authenticator::Chap(ref c) if !c.is_authenticated()));
}

#[test]
fn chap_lost_challenge_is_retransmitted() {
    for method in [ChapMethod::Md5, ChapMethod::MsChapV2] {
        let (mut auth, mut peer) = chap_pair(method, "pw1");
        let out = run(
            &mut auth,
            &mut peer,
            Instant::now(),
            LIMIT,
            |d, n| d == Dir::ToPeer && n < 2,
            local,
        );
        // The same Challenge three times, 3 s apart.
        assert_eq!(out.to_peer[0], out.to_peer[1]);
        assert_eq!(out.to_peer[1], out.to_peer[2]);
        assert_eq!(out.elapsed, Duration::from_secs(6));
        assert_eq!(non_verify(&out.auth), vec![user1_success()]);
        assert_eq!(out.peer, vec![success(b"user1")]);
        assert_eq!(auth.counters().retransmitted, 2);
    }
}

#[test]
fn chap_lost_response_answered_again() {
    let (mut auth, mut peer) = chap_pair(ChapMethod::MsChapV2, "pw1");
    let out = run(
        &mut auth,
        &mut peer,
        Instant::now(),
        LIMIT,
        |d, n| d == Dir::ToAuth && n == 0,
        local,
    );
    // The peer retransmitted its Response (same Peer-Challenge) at 3 s, and also
    // answered the retransmitted Challenge with the same Response.
    assert!(out.to_auth.len() >= 2);
    assert!(out.to_auth.iter().all(|p| *p == out.to_auth[0]));
    assert_eq!(verifies(&out.auth), 1);
    assert_eq!(out.peer, vec![success(b"user1")]);
}

#[test]
fn chap_lost_success_answered_on_duplicate_response() {
    for method in [ChapMethod::Md5, ChapMethod::MsChapV2] {
        let (mut auth, mut peer) = chap_pair(method, "pw1");
        let out = run(
            &mut auth,
            &mut peer,
            Instant::now(),
            LIMIT,
            |d, n| d == Dir::ToPeer && n == 1,
            local,
        );
        // Challenge, Success (lost), Success again for the repeated Response.
        assert_eq!(out.to_peer.len(), 3);
        assert_eq!(out.to_peer[1], out.to_peer[2]);
        assert_eq!(out.to_auth.len(), 2);
        assert_eq!(out.to_auth[0], out.to_auth[1]);
        assert_eq!(verifies(&out.auth), 1);
        assert_eq!(non_verify(&out.auth), vec![user1_success()]);
        assert_eq!(out.peer, vec![success(b"user1")]);
        assert_eq!(out.elapsed, Duration::from_secs(3));
    }
}

#[test]
fn chap_lost_failure_answered_on_duplicate_response() {
    let (mut auth, mut peer) = chap_pair(ChapMethod::Md5, "bad");
    let out = run(
        &mut auth,
        &mut peer,
        Instant::now(),
        LIMIT,
        |d, n| d == Dir::ToPeer && n == 1,
        local,
    );
    assert_eq!(out.to_peer.len(), 3);
    assert_eq!(out.to_peer[1], out.to_peer[2]);
    assert_eq!(verifies(&out.auth), 1);
    assert!(matches!(
        out.peer.as_slice(),
        [Event::Failure {
            reason: FailureReason::Rejected { .. }
        }]
    ));
}

#[test]
fn chap_authenticator_gives_up_after_max_challenges() {
    let (mut auth, mut peer) = chap_pair(ChapMethod::Md5, "pw1");
    let out = run(
        &mut auth,
        &mut peer,
        Instant::now(),
        LIMIT,
        |d, _| d == Dir::ToPeer,
        local,
    );
    assert_eq!(out.to_peer.len(), 10);
    assert_eq!(
        out.auth,
        vec![Event::Failure {
            reason: FailureReason::Timeout
        }]
    );
    // The peer never saw a Challenge and gave up after 30 s too.
    assert_eq!(
        out.peer,
        vec![Event::Failure {
            reason: FailureReason::Timeout
        }]
    );
    assert_eq!(out.elapsed, Duration::from_secs(30));
}

#[test]
fn chap_peer_gives_up_without_reply() {
    let (mut auth, mut peer) = chap_pair(ChapMethod::Md5, "pw1");
    // Every Response lost: the authenticator retransmits its Challenge 10 times, the
    // peer answers each, and both give up.
    let out = run(
        &mut auth,
        &mut peer,
        Instant::now(),
        LIMIT,
        |d, _| d == Dir::ToAuth,
        local,
    );
    assert_eq!(verifies(&out.auth), 0);
    assert!(out.auth.contains(&Event::Failure {
        reason: FailureReason::Timeout
    }));
    assert!(out.peer.contains(&Event::Failure {
        reason: FailureReason::Timeout
    }));
}

#[test]
fn chap_wrong_identifier_and_out_of_state_are_discarded() {
    let now = Instant::now();
    let mut auth =
        ChapAuthenticator::with_seed(ChapAuthenticatorConfig::new(ChapMethod::Md5, b"lns"), 3);
    // Before start: nothing to answer.
    let early = ChapRepr::Response {
        identifier: 0,
        value: vec![0; 16],
        name: b"user1".to_vec(),
    };
    auth.handle_packet(&early.to_bytes(), now).unwrap();
    auth.start_with_challenge(now, 42, &[1, 2, 3, 4, 5])
        .unwrap();
    let _challenge = auth.poll_transmit().unwrap();
    assert_eq!(auth.counters().discarded, 1);
    let response = |identifier, secret: &[u8]| ChapRepr::Response {
        identifier,
        value: crate::ppp::chap::md5_response(identifier, secret, &[1, 2, 3, 4, 5]).to_vec(),
        name: b"user1".to_vec(),
    };
    auth.handle_packet(&response(41, b"pw1").to_bytes(), now)
        .unwrap();
    for from_peer in [
        ChapRepr::Success {
            identifier: 42,
            message: vec![],
        },
        ChapRepr::Challenge {
            identifier: 42,
            value: vec![1],
            name: vec![],
        },
    ] {
        auth.handle_packet(&from_peer.to_bytes(), now).unwrap();
    }
    assert_eq!(auth.counters().discarded, 4);
    assert_eq!(auth.poll_event(), None);
    assert!(auth.handle_packet(&[1, 42, 0], now).is_err());
    assert_eq!(auth.counters().malformed, 1);
    // A Value of the wrong size: a Failure, without asking the verifier.
    auth.handle_packet(
        &ChapRepr::Response {
            identifier: 42,
            value: vec![0; 15],
            name: b"user1".to_vec(),
        }
        .to_bytes(),
        now,
    )
    .unwrap();
    assert!(matches!(
        auth.poll_event(),
        Some(Event::Failure {
            reason: FailureReason::Rejected { .. }
        })
    ));
    assert!(matches!(
        ChapRepr::from_bytes(&auth.poll_transmit().unwrap()).unwrap(),
        ChapRepr::Failure { identifier: 42, .. }
    ));
    // No more timer after the final reply.
    assert_eq!(auth.poll_timeout(), None);
}

#[test]
fn chap_rechallenge() {
    let mut config = ChapAuthenticatorConfig::new(ChapMethod::MsChapV2, b"lns");
    config.rechallenge_interval = Some(Duration::from_secs(60));
    let (mut auth, mut peer) = chap_pair_with(config, "pw1");
    let out = run(
        &mut auth,
        &mut peer,
        Instant::now(),
        Duration::from_secs(130),
        no_drop,
        local,
    );
    let re = Event::Reauthenticated {
        user: b"user1".to_vec(),
    };
    assert_eq!(
        non_verify(&out.auth),
        vec![user1_success(), re.clone(), re.clone()]
    );
    assert_eq!(out.peer, vec![success(b"user1"), re.clone(), re]);
    // Three Challenges with three Identifiers and Values.
    let challenges: Vec<_> = out
        .to_peer
        .iter()
        .filter_map(|p| match ChapRepr::from_bytes(p).unwrap() {
            ChapRepr::Challenge {
                identifier, value, ..
            } => Some((identifier, value)),
            _ => None,
        })
        .collect();
    assert_eq!(challenges.len(), 3);
    assert_ne!(challenges[0], challenges[1]);
    assert_eq!(challenges[1].0, challenges[0].0.wrapping_add(1));
    assert_ne!(challenges[1].1, challenges[2].1);
}

#[test]
fn chap_rechallenge_under_another_name_fails() {
    let now = Instant::now();
    let mut config = ChapAuthenticatorConfig::new(ChapMethod::Md5, b"lns");
    config.rechallenge_interval = Some(Duration::from_secs(60));
    let mut auth = ChapAuthenticator::with_seed(config, 1);
    auth.start(now);
    let mut alice = ChapPeer::with_seed(ChapPeerConfig::new(ChapMethod::Md5, b"user1", "pw1"), 1);
    let mut mallory = ChapPeer::with_seed(
        ChapPeerConfig::new(ChapMethod::Md5, b"User", "clientPass"),
        1,
    );
    let exchange = |auth: &mut ChapAuthenticator, peer: &mut ChapPeer, now| {
        let challenge = auth.poll_transmit().unwrap();
        peer.handle_packet(&challenge, now).unwrap();
        auth.handle_packet(&peer.poll_transmit().unwrap(), now)
            .unwrap();
        let Some(Event::NeedVerify(v)) = auth.poll_event() else {
            panic!()
        };
        auth.handle_verify_result(v.id, users().verify(&v), now);
        auth.poll_event().unwrap()
    };
    assert_eq!(exchange(&mut auth, &mut alice, now), user1_success());
    let _success = auth.poll_transmit().unwrap();
    assert!(auth.is_authenticated());
    let later = now + Duration::from_secs(60);
    assert_eq!(auth.poll_timeout(), Some(later));
    auth.handle_timeout(later);
    assert_eq!(
        exchange(&mut auth, &mut mallory, later),
        Event::Failure {
            reason: FailureReason::UserChanged {
                user: b"User".to_vec()
            }
        }
    );
    assert!(!auth.is_authenticated());
}

#[test]
fn mschapv2_success_and_mutual_authentication() {
    let (mut auth, mut peer) = chap_pair(ChapMethod::MsChapV2, "pw1");
    assert_eq!(auth.method().chap_algorithm(), Some(0x81));
    let out = run(&mut auth, &mut peer, Instant::now(), LIMIT, no_drop, local);
    assert_eq!(non_verify(&out.auth), vec![user1_success()]);
    assert_eq!(out.peer, vec![success(b"user1")]);
    let ChapRepr::Success { message, .. } = ChapRepr::from_bytes(&out.to_peer[1]).unwrap() else {
        panic!()
    };
    assert_eq!(&message[..2], b"S=");
    assert_eq!(&message[42..], b" M=Access granted");
    let ChapRepr::Response { value, .. } = ChapRepr::from_bytes(&out.to_auth[0]).unwrap() else {
        panic!()
    };
    let value = ResponseValue::parse(&value).unwrap();
    assert_eq!(value.flags, 0);
}

#[test]
fn mschapv2_wrong_authenticator_response_fails_the_peer() {
    let (mut auth, mut peer) = chap_pair(ChapMethod::MsChapV2, "pw1");
    let out = run(
        &mut auth,
        &mut peer,
        Instant::now(),
        LIMIT,
        no_drop,
        |request| {
            let mut result = local(request);
            let forged = result.authenticator_response.take().unwrap();
            let last = if forged.ends_with('0') { "1" } else { "0" };
            result.authenticator_response = Some(format!("{}{last}", &forged[..41]));
            result
        },
    );
    assert_eq!(non_verify(&out.auth), vec![user1_success()]);
    assert_eq!(
        out.peer,
        vec![Event::Failure {
            reason: FailureReason::MutualAuthentication
        }]
    );
}

#[test]
fn mschapv2_acceptance_without_authenticator_response_is_a_failure() {
    let (mut auth, mut peer) = chap_pair(ChapMethod::MsChapV2, "pw1");
    let out = run(&mut auth, &mut peer, Instant::now(), LIMIT, no_drop, |_| {
        AuthResult::accept(ReplyAttributes::default())
    });
    assert!(matches!(
        non_verify(&out.auth).as_slice(),
        [Event::Failure {
            reason: FailureReason::Rejected { .. }
        }]
    ));
    assert!(matches!(
        out.peer.as_slice(),
        [Event::Failure {
            reason: FailureReason::Rejected { .. }
        }]
    ));
}

#[test]
fn mschapv2_wrong_password_failure_message() {
    let (mut auth, mut peer) = chap_pair(ChapMethod::MsChapV2, "bad");
    let out = run(&mut auth, &mut peer, Instant::now(), LIMIT, no_drop, local);
    let ChapRepr::Failure { message, .. } = ChapRepr::from_bytes(&out.to_peer[1]).unwrap() else {
        panic!()
    };
    let failure = FailureMessage::parse(&message).unwrap();
    assert_eq!(failure.error, mschapv2::error_code::AUTHENTICATION_FAILURE);
    assert!(!failure.retry);
    assert_eq!(failure.version, 3);
    assert_eq!(failure.text, "Access denied");
    let Event::Failure {
        reason: FailureReason::Rejected { message: seen, .. },
    } = &out.peer[0]
    else {
        panic!()
    };
    assert_eq!(*seen, message);
    // A verifier's own Failure message (RADIUS MS-CHAP-Error) is sent as is.
    let (mut auth, mut peer) = chap_pair(ChapMethod::MsChapV2, "bad");
    let custom = FailureMessage {
        error: mschapv2::error_code::ACCT_DISABLED,
        retry: false,
        challenge: [0xAB; 16],
        version: 3,
        text: "disabled".into(),
    };
    let out = run(&mut auth, &mut peer, Instant::now(), LIMIT, no_drop, |_| {
        AuthResult {
            failure: Some(custom.clone()),
            ..AuthResult::reject()
        }
    });
    let ChapRepr::Failure { message, .. } = ChapRepr::from_bytes(&out.to_peer[1]).unwrap() else {
        panic!()
    };
    assert_eq!(message, custom.to_string().into_bytes());
}

/// RFC 2759 §9.2 end to end through the authenticator: the fixed Authenticator
/// Challenge, the RFC's Response, the RFC's authenticator response in the Success.
#[test]
fn mschapv2_rfc2759_9_2_vectors() {
    let h = |s: &str| hex::decode(s.replace(' ', "")).unwrap();
    let auth_challenge = h("5B 5D 7C 7D 7B 3F 2F 3E 3C 2C 60 21 32 26 26 28");
    let peer_challenge: [u8; 16] = h("21 40 23 24 25 5E 26 2A 28 29 5F 2B 3A 33 7C 7E")
        .try_into()
        .unwrap();
    let nt_response: [u8; 24] =
        h("82 30 9E CD 8D 70 8B 5E A0 8F AA 39 81 CD 83 54 42 33 11 4A 3D 85 D6 DF")
            .try_into()
            .unwrap();
    let now = Instant::now();
    let mut auth = ChapAuthenticator::with_seed(
        ChapAuthenticatorConfig::new(ChapMethod::MsChapV2, b"lns"),
        1,
    );
    assert!(
        auth.start_with_challenge(now, 1, &auth_challenge[..15])
            .is_err()
    );
    auth.start_with_challenge(now, 1, &auth_challenge).unwrap();
    let challenge = auth.poll_transmit().unwrap();
    // The peer computes the RFC's NT-Response for this challenge.
    let mut peer = ChapPeer::with_seed(
        ChapPeerConfig::new(ChapMethod::MsChapV2, b"User", "clientPass"),
        1,
    );
    peer.handle_packet(&challenge, now).unwrap();
    let ChapRepr::Response { value, .. } =
        ChapRepr::from_bytes(&peer.poll_transmit().unwrap()).unwrap()
    else {
        panic!()
    };
    let ours = ResponseValue::parse(&value).unwrap();
    assert_eq!(
        ours.nt_response,
        mschapv2::generate_nt_response(
            &auth_challenge.clone().try_into().unwrap(),
            &ours.peer_challenge,
            b"User",
            "clientPass"
        )
    );
    // The RFC's Response into the authenticator.
    let response = ChapRepr::Response {
        identifier: 1,
        value: ResponseValue {
            peer_challenge,
            nt_response,
            flags: 0,
        }
        .to_bytes()
        .to_vec(),
        name: b"User".to_vec(),
    };
    auth.handle_packet(&response.to_bytes(), now).unwrap();
    let Some(Event::NeedVerify(v)) = auth.poll_event() else {
        panic!()
    };
    let result = users().verify(&v);
    assert_eq!(
        result.authenticator_response.as_deref(),
        Some("S=407A5589115FD0D6209F510FE9C04566932CDA56")
    );
    auth.handle_verify_result(v.id, result, now);
    assert_eq!(
        ChapRepr::from_bytes(&auth.poll_transmit().unwrap()).unwrap(),
        ChapRepr::Success {
            identifier: 1,
            message: b"S=407A5589115FD0D6209F510FE9C04566932CDA56 M=Access granted".to_vec()
        }
    );
    assert_eq!(
        auth.poll_event(),
        Some(Event::Success {
            user: b"User".to_vec(),
            attributes: ReplyAttributes::default()
        })
    );
}

#[test]
fn verifier_unknown_user_and_domain() {
    let users = users();
    let request = |user: &[u8], credential| VerifyRequest {
        id: 1,
        user: user.to_vec(),
        credential,
    };
    let pap = |p: &[u8]| Credential::Pap {
        password: p.to_vec(),
    };
    assert!(!users.verify(&request(b"nobody", pap(b"pw1"))).accepted);
    assert!(!users.verify(&request(b"user1", pap(b"pw"))).accepted);
    assert!(!users.verify(&request(b"user1", pap(b"pw1x"))).accepted);
    assert!(!users.verify(&request(b"CORP\\user1", pap(b"pw1"))).accepted);
    let challenge = [7u8; 16];
    let peer_challenge = [9u8; 16];
    let response = ResponseValue {
        peer_challenge,
        nt_response: mschapv2::generate_nt_response(&challenge, &peer_challenge, b"user1", "pw1"),
        flags: 0,
    };
    let ms = Credential::MsChapV2 {
        identifier: 1,
        authenticator_challenge: challenge,
        response,
    };
    assert!(users.verify(&request(b"CORP\\user1", ms.clone())).accepted);
    assert!(users.verify(&request(b"user1", ms)).accepted);
}

// ---------------------------------------------------------------------------- fuzz-ish

fn machines() -> Vec<(Authenticator, Peer)> {
    vec![
        pap_pair(b"pw1"),
        chap_pair(ChapMethod::Md5, "pw1"),
        chap_pair(ChapMethod::MsChapV2, "pw1"),
    ]
}

proptest! {
    /// Arbitrary bytes, before and after authentication, never panic either role and
    /// never make a machine emit a Success.
    #[test]
    fn arbitrary_packets_never_panic(packets in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16), code in 1u8..=4, id in any::<u8>()) {
        let now = Instant::now();
        for (mut auth, mut peer) in machines() {
            auth.start(now);
            peer.start(now);
            for p in &packets {
                let mut with_header = p.clone();
                if with_header.len() >= 4 {
                    with_header[0] = code;
                    with_header[1] = id;
                    let len = with_header.len() as u16;
                    with_header[2..4].copy_from_slice(&len.to_be_bytes());
                }
                let _ = auth.handle_packet(p, now);
                let _ = auth.handle_packet(&with_header, now);
                let _ = peer.handle_packet(p, now);
                let _ = peer.handle_packet(&with_header, now);
                while let Some(e) = auth.poll_event() {
                    match e {
                        Event::NeedVerify(v) => auth.handle_verify_result(v.id, AuthResult::reject(), now),
                        Event::Success { .. } | Event::Reauthenticated { .. } => prop_assert!(false, "auth success from noise"),
                        Event::Failure { .. } => {}
                    }
                }
                while let Some(e) = peer.poll_event() {
                    let success = matches!(e, Event::Success { .. } | Event::Reauthenticated { .. });
                    // Only MD5 and PAP peers accept an unauthenticated Success; the
                    // Identifier must still match what we sent.
                    prop_assert!(!success || peer.method() != Method::MsChapV2);
                }
                let _ = auth.poll_transmit();
                let _ = peer.poll_transmit();
            }
        }
    }
}

//! Replay of real pppd 2.4.9 / xl2tpd 1.3.18 authentication exchanges (captured in
//! `golden/peer_vm_frames.rs`) through xlns's authenticators and peers: our machines
//! must accept what real pppd sends with the right password, reject it with a wrong
//! one, and emit byte for byte what the real LNS (xl2tpd + pppd) sent.
#![allow(clippy::unwrap_used, clippy::panic)]

#[rustfmt::skip]
#[path = "golden/peer_vm_frames.rs"]
mod frames;

use std::time::Instant;

use xlns_controlplane::ppp::auth::{
    ChapAuthenticator, ChapAuthenticatorConfig, ChapMethod, ChapPeer, ChapPeerConfig, Event,
    FailureReason, PapAuthenticator, PapAuthenticatorConfig, PapPeer, PapPeerConfig,
    ReplyAttributes, Verifier,
};
use xlns_controlplane::ppp::chap::Repr as ChapRepr;
use xlns_controlplane::ppp::mschapv2::FailureMessage;
use xlns_controlplane::ppp::users::Users;

/// The PAP or CHAP packet of a captured frame: skip the 6-octet L2TP data header
/// (`00 02 <tunnel id> <session id>`, no L/S/O bits) and the PPP header
/// (`ff 03 c0 23` or `ff 03 c2 23`).
fn auth_packet(frame: u32, case: &str) -> &'static [u8] {
    let captured = frames::FRAMES
        .iter()
        .find(|f| f.frame == frame)
        .unwrap_or_else(|| panic!("frame {frame} not in the golden file"));
    assert_eq!(captured.case, case);
    let bytes = captured.bytes;
    assert_eq!(
        &bytes[..2],
        &[0x00, 0x02],
        "frame {frame}: plain L2TP data header"
    );
    let ppp = &bytes[6..];
    assert_eq!(
        &ppp[..2],
        &[0xFF, 0x03],
        "frame {frame}: PPP address and control"
    );
    assert!(
        ppp[2..4] == [0xC0, 0x23] || ppp[2..4] == [0xC2, 0x23],
        "frame {frame}: PAP or CHAP"
    );
    let packet = &ppp[4..];
    // Requests and Responses (Code 1 of PAP, Code 2 of CHAP) come from the client.
    let from_client = if ppp[2] == 0xC0 {
        packet[0] == 1
    } else {
        packet[0] == 2
    };
    assert_eq!(
        captured.from_lac, from_client,
        "frame {frame}: {}",
        captured.info
    );
    packet
}

fn users(password: &str) -> Users {
    Users::parse(&format!("user1 {password}\n"), "test").unwrap()
}

fn challenge_of(packet: &[u8]) -> (u8, Vec<u8>) {
    match ChapRepr::from_bytes(packet).unwrap() {
        ChapRepr::Challenge {
            identifier, value, ..
        } => (identifier, value),
        other => panic!("not a Challenge: {other:?}"),
    }
}

/// Run a CHAP authenticator whose Challenge is the captured one against the captured
/// Response, verified with `password`; return the reply packet and the final event.
fn chap_authenticate(
    method: ChapMethod,
    challenge_frame: u32,
    response_frame: u32,
    case: &str,
    password: &str,
) -> (Vec<u8>, Event) {
    let now = Instant::now();
    let captured_challenge = auth_packet(challenge_frame, case);
    let (identifier, value) = challenge_of(captured_challenge);
    let mut auth = ChapAuthenticator::new(ChapAuthenticatorConfig::new(method, b"lns"));
    auth.start_with_challenge(now, identifier, &value).unwrap();
    // Our Challenge is the real LNS's, octet for octet.
    assert_eq!(auth.poll_transmit().unwrap(), captured_challenge);
    auth.handle_packet(auth_packet(response_frame, case), now)
        .unwrap();
    let Some(Event::NeedVerify(request)) = auth.poll_event() else {
        panic!("the real Response was not handed to the verifier")
    };
    assert_eq!(request.user, b"user1");
    let result = users(password).verify(&request);
    auth.handle_verify_result(request.id, result, now);
    let reply = auth.poll_transmit().unwrap();
    let event = auth.poll_event().unwrap();
    assert_eq!(auth.poll_event(), None);
    (reply, event)
}

fn accepted() -> Event {
    Event::Success {
        user: b"user1".to_vec(),
        attributes: ReplyAttributes::default(),
    }
}

fn rejected(message: &[u8]) -> Event {
    Event::Failure {
        reason: FailureReason::Rejected {
            user: b"user1".to_vec(),
            message: message.to_vec(),
        },
    }
}

#[test]
fn chap_md5_real_pppd_response() {
    // Frames 19/22/23: Challenge (20-octet value), Response of user1/pw1, Success.
    let (reply, event) = chap_authenticate(ChapMethod::Md5, 19, 22, "chap-kernel", "pw1");
    assert_eq!(event, accepted());
    assert_eq!(reply, auth_packet(23, "chap-kernel"));
    let (reply, event) = chap_authenticate(ChapMethod::Md5, 19, 22, "chap-kernel", "pw2");
    assert_eq!(event, rejected(b"Access denied"));
    assert_eq!(
        ChapRepr::from_bytes(&reply).unwrap(),
        ChapRepr::Failure {
            identifier: 43,
            message: b"Access denied".to_vec()
        }
    );
}

#[test]
fn chap_md5_real_pppd_wrong_password() {
    // Frames 232/235/236: the client used a wrong password; the real LNS said Failure.
    let (reply, event) = chap_authenticate(ChapMethod::Md5, 232, 235, "wrong-password", "pw1");
    assert_eq!(event, rejected(b"Access denied"));
    assert_eq!(reply, auth_packet(236, "wrong-password"));
}

#[test]
fn mschapv2_real_pppd_response() {
    // Frames 122/125/126: our authenticator response equals the real LNS's
    // "S=4313CDCD... M=Access granted".
    let (reply, event) = chap_authenticate(ChapMethod::MsChapV2, 122, 125, "mschap-v2", "pw1");
    assert_eq!(event, accepted());
    assert_eq!(reply, auth_packet(126, "mschap-v2"));
    assert!(reply[4..].starts_with(b"S=4313CDCD1ABCDF7393849156B92E6FD04A6ECF85 M=Access granted"));
    let (reply, event) = chap_authenticate(ChapMethod::MsChapV2, 122, 125, "mschap-v2", "pw");
    let ChapRepr::Failure {
        identifier,
        message,
    } = ChapRepr::from_bytes(&reply).unwrap()
    else {
        panic!("not a Failure")
    };
    assert_eq!(identifier, 57);
    let failure = FailureMessage::parse(&message).unwrap();
    assert_eq!(
        (failure.error, failure.retry, failure.version),
        (691, false, 3)
    );
    assert_eq!(event, rejected(&message));
}

#[test]
fn pap_real_pppd_request() {
    let now = Instant::now();
    for (password, expect_ack) in [("pw1", true), ("pw2", false)] {
        let mut auth = PapAuthenticator::new(PapAuthenticatorConfig::default());
        auth.start(now);
        auth.handle_packet(auth_packet(72, "pap"), now).unwrap();
        let Some(Event::NeedVerify(request)) = auth.poll_event() else {
            panic!()
        };
        auth.handle_verify_result(request.id, users(password).verify(&request), now);
        let reply = auth.poll_transmit().unwrap();
        if expect_ack {
            // Frame 75: Authenticate-Ack, Identifier 1, "Login ok".
            assert_eq!(reply, auth_packet(75, "pap"));
            assert_eq!(auth.poll_event(), Some(accepted()));
        } else {
            assert_eq!(
                reply,
                [0x03, 0x01, 0x00, 0x14, 0x0F]
                    .iter()
                    .copied()
                    .chain(*b"Login incorrect")
                    .collect::<Vec<u8>>()
            );
            assert_eq!(auth.poll_event(), Some(rejected(b"Login incorrect")));
        }
    }
}

#[test]
fn our_peers_speak_like_real_pppd() {
    let now = Instant::now();
    // PAP: our first request is pppd's frame 72, and frame 75 completes it.
    let mut pap = PapPeer::new(PapPeerConfig::new(b"user1", b"pw1"));
    pap.start(now);
    assert_eq!(pap.poll_transmit().unwrap(), auth_packet(72, "pap"));
    pap.handle_packet(auth_packet(75, "pap"), now).unwrap();
    assert_eq!(pap.poll_event(), Some(accepted()));

    // CHAP-MD5: our Response to frame 19 is pppd's frame 22; frame 23 completes it.
    let mut chap = ChapPeer::new(ChapPeerConfig::new(ChapMethod::Md5, b"user1", "pw1"));
    chap.start(now);
    chap.handle_packet(auth_packet(19, "chap-kernel"), now)
        .unwrap();
    assert_eq!(
        chap.poll_transmit().unwrap(),
        auth_packet(22, "chap-kernel")
    );
    chap.handle_packet(auth_packet(23, "chap-kernel"), now)
        .unwrap();
    assert_eq!(chap.poll_event(), Some(accepted()));

    // The wrong-password case: the real LNS's Failure ends our peer.
    let mut chap = ChapPeer::new(ChapPeerConfig::new(ChapMethod::Md5, b"user1", "pw1"));
    chap.start(now);
    chap.handle_packet(auth_packet(232, "wrong-password"), now)
        .unwrap();
    let _response = chap.poll_transmit().unwrap();
    chap.handle_packet(auth_packet(236, "wrong-password"), now)
        .unwrap();
    assert_eq!(chap.poll_event(), Some(rejected(b"Access denied")));

    // MS-CHAPv2: our Response to the real Challenge (frame 122) is accepted by our
    // authenticator, whose Success our peer checks.
    let mut peer = ChapPeer::new(ChapPeerConfig::new(ChapMethod::MsChapV2, b"user1", "pw1"));
    peer.start(now);
    peer.handle_packet(auth_packet(122, "mschap-v2"), now)
        .unwrap();
    let response = peer.poll_transmit().unwrap();
    let (identifier, value) = challenge_of(auth_packet(122, "mschap-v2"));
    let mut auth =
        ChapAuthenticator::new(ChapAuthenticatorConfig::new(ChapMethod::MsChapV2, b"lns"));
    auth.start_with_challenge(now, identifier, &value).unwrap();
    let _challenge = auth.poll_transmit().unwrap();
    auth.handle_packet(&response, now).unwrap();
    let Some(Event::NeedVerify(request)) = auth.poll_event() else {
        panic!()
    };
    auth.handle_verify_result(request.id, users("pw1").verify(&request), now);
    peer.handle_packet(&auth.poll_transmit().unwrap(), now)
        .unwrap();
    assert_eq!(peer.poll_event(), Some(accepted()));
    // The real LNS's Success (frame 126) answered the real client's Peer-Challenge,
    // not ours: our peer refuses it (mutual authentication).
    let mut peer = ChapPeer::new(ChapPeerConfig::new(ChapMethod::MsChapV2, b"user1", "pw1"));
    peer.start(now);
    peer.handle_packet(auth_packet(122, "mschap-v2"), now)
        .unwrap();
    let _ = peer.poll_transmit();
    peer.handle_packet(auth_packet(126, "mschap-v2"), now)
        .unwrap();
    assert_eq!(
        peer.poll_event(),
        Some(Event::Failure {
            reason: FailureReason::MutualAuthentication
        })
    );
}

//! The known answer was computed independently with python3 (secret "coa-secret"):
//!
//! ```text
//! import hashlib, hmac
//! S = b"coa-secret"
//! attrs = bytes([44,10]) + b"5F000001" + bytes([1,7]) + b"alice" + bytes([33,5]) + b"ps1" \
//!       + bytes([80,18]) + bytes(16)
//! pkt = bytearray(bytes([40,0x2a,0,20+len(attrs)]) + bytes(16) + attrs)
//! pkt[-16:] = hmac.new(S, bytes(pkt), hashlib.md5).digest()
//! pkt[4:20] = hashlib.md5(bytes(pkt) + S).digest()                  # the request
//! rattrs = bytes([33,5]) + b"ps1" + bytes([80,18]) + bytes(16)
//! r = bytearray(bytes([41,0x2a,0,20+len(rattrs)]) + bytes(pkt[4:20]) + rattrs)
//! r[-16:] = hmac.new(S, bytes(r), hashlib.md5).digest()
//! r[4:20] = hashlib.md5(bytes(r) + S).digest()                      # the Disconnect-ACK
//! ```
#![allow(clippy::unwrap_used, clippy::panic)]

use super::*;
use proptest::prelude::*;

const SECRET: &[u8] = b"coa-secret";
const KAT_REQUEST: &str = "282a003c972c5a842e1415290070ff5ae5d652212c0a35463030303030310107616c69636521057073315012955e4a8a5c69a3ea9152fba2bb78b221";
const KAT_ACK: &str =
    "292a002b69268ba3603856a58dc1d9b309e37fba210570733150121a7eafde5508490cee7ef13b4a5f1b5c";
const NOW_UNIX: u64 = 1_800_000_000;

fn dac() -> SocketAddr {
    "192.0.2.10:40000".parse().unwrap()
}

fn config() -> ServerConfig {
    ServerConfig {
        clients: vec![
            Client {
                prefix: "192.0.2.0/28".parse().unwrap(),
                secret: SECRET.to_vec(),
                require_message_authenticator: true,
            },
            Client {
                prefix: "198.51.100.7/32".parse().unwrap(),
                secret: b"legacy".to_vec(),
                require_message_authenticator: false,
            },
        ],
        nas: NasIdentity {
            identifier: Some(b"lns1".to_vec()),
            ipv4: vec![Ipv4Addr::new(203, 0, 113, 1)],
            ipv6: vec!["2001:db8::1".parse().unwrap()],
        },
        require_event_timestamp: false,
        window: Duration::from_secs(300),
    }
}

/// A signed request of `code` with `attributes` (and a Message-Authenticator if `ma`).
fn request(code: Code, id: u8, attributes: &[Attribute], secret: &[u8], ma: bool) -> Vec<u8> {
    let mut attributes = attributes.to_vec();
    if ma {
        attributes.push(Attribute::new(attr::MESSAGE_AUTHENTICATOR, [0u8; 16]));
    }
    let mut bytes = Repr {
        code,
        identifier: id,
        authenticator: [0; 16],
        attributes,
    }
    .to_bytes()
    .unwrap();
    wire::sign_request(&mut bytes, secret).unwrap();
    bytes
}

fn by_session(id: &str) -> Vec<Attribute> {
    vec![Attribute::new(attr::ACCT_SESSION_ID, id.as_bytes())]
}

fn apply(received: Received) -> (Pending, Request) {
    match received {
        Received::Apply(p, r) => (*p, *r),
        other => panic!("not applied: {other:?}"),
    }
}

fn error_cause(repr: &Repr) -> Option<u32> {
    repr.get(attr::ERROR_CAUSE).and_then(Attribute::as_u32)
}

#[test]
fn known_answer_disconnect_request_and_ack() {
    let mut server = Server::new(config());
    let now = Instant::now();
    let req = hex::decode(KAT_REQUEST).unwrap();
    let (pending, request) = apply(server.handle(now, NOW_UNIX, dac(), &req));
    assert_eq!(request.kind, Kind::Disconnect);
    assert_eq!(
        request.selector.acct_session_id.as_deref(),
        Some(&b"5F000001"[..])
    );
    assert_eq!(request.selector.user_name.as_deref(), Some(&b"alice"[..]));
    let ack = server.answer(&pending, Ok(1)).unwrap();
    assert_eq!(hex::encode(&ack), KAT_ACK);
    assert_eq!(server.stats().answered[&(Kind::Disconnect, None)], 1);
}

#[test]
fn retransmission_gets_the_cached_answer_and_is_not_applied_twice() {
    let mut server = Server::new(config());
    let now = Instant::now();
    let req = hex::decode(KAT_REQUEST).unwrap();
    let (pending, _) = apply(server.handle(now, NOW_UNIX, dac(), &req));
    // While it is being applied, a retransmission is dropped.
    assert_eq!(
        server.handle(now, NOW_UNIX, dac(), &req),
        Received::Ignored(IgnoreReason::InProgress)
    );
    let ack = server.answer(&pending, Ok(1)).unwrap();
    let again = server.handle(now + Duration::from_secs(3), NOW_UNIX, dac(), &req);
    assert_eq!(again, Received::Reply(ack));
    assert_eq!(server.stats().duplicates, 1);
    // Another source port is another request (RFC 5176 §2.3).
    let other: SocketAddr = "192.0.2.10:40001".parse().unwrap();
    assert!(matches!(
        server.handle(now, NOW_UNIX, other, &req),
        Received::Apply(..)
    ));
    // After the window the entry is gone: the same bytes are a new request.
    assert!(matches!(
        server.handle(now + Duration::from_secs(301), NOW_UNIX, dac(), &req),
        Received::Apply(..)
    ));
}

#[test]
fn same_identifier_new_content_is_a_new_request() {
    let mut server = Server::new(config());
    let now = Instant::now();
    let a = request(Code::CoaRequest, 9, &by_session("A"), SECRET, true);
    let b = request(Code::CoaRequest, 9, &by_session("B"), SECRET, true);
    let (pa, _) = apply(server.handle(now, NOW_UNIX, dac(), &a));
    server.answer(&pa, Err(ErrorCause::SessionContextNotFound));
    let (pb, rb) = apply(server.handle(now, NOW_UNIX, dac(), &b));
    assert_eq!(rb.selector.acct_session_id.as_deref(), Some(&b"B"[..]));
    let ack = Repr::from_bytes(&server.answer(&pb, Ok(1)).unwrap()).unwrap();
    assert_eq!(ack.code, Code::CoaAck);
}

#[test]
fn unknown_client_wrong_secret_and_message_authenticator_are_ignored_and_counted() {
    let mut server = Server::new(config());
    let now = Instant::now();
    let good = request(Code::DisconnectRequest, 1, &by_session("A"), SECRET, true);
    let stranger: SocketAddr = "192.0.2.99:1000".parse().unwrap();
    assert_eq!(
        server.handle(now, NOW_UNIX, stranger, &good),
        Received::Ignored(IgnoreReason::UnknownClient)
    );
    let wrong = request(Code::DisconnectRequest, 2, &by_session("A"), b"nope", true);
    assert_eq!(
        server.handle(now, NOW_UNIX, dac(), &wrong),
        Received::Ignored(IgnoreReason::BadAuthenticator)
    );
    let no_ma = request(Code::DisconnectRequest, 3, &by_session("A"), SECRET, false);
    assert_eq!(
        server.handle(now, NOW_UNIX, dac(), &no_ma),
        Received::Ignored(IgnoreReason::MissingMessageAuthenticator)
    );
    // A Message-Authenticator computed with another secret, authenticator re-signed.
    let mut bad_ma = request(Code::DisconnectRequest, 4, &by_session("A"), b"other", true);
    let a = wire::packet_authenticator(&bad_ma, &[0; 16], SECRET);
    bad_ma[4..20].copy_from_slice(&a);
    assert_eq!(
        server.handle(now, NOW_UNIX, dac(), &bad_ma),
        Received::Ignored(IgnoreReason::BadMessageAuthenticator)
    );
    // The legacy client may omit it.
    let legacy: SocketAddr = "198.51.100.7:3000".parse().unwrap();
    let old = request(
        Code::DisconnectRequest,
        5,
        &by_session("A"),
        b"legacy",
        false,
    );
    assert!(matches!(
        server.handle(now, NOW_UNIX, legacy, &old),
        Received::Apply(..)
    ));
    // IPv4-mapped IPv6 sources are their IPv4 address.
    let mapped: SocketAddr = "[::ffff:198.51.100.7]:3000".parse().unwrap();
    let old = request(
        Code::DisconnectRequest,
        6,
        &by_session("A"),
        b"legacy",
        false,
    );
    assert!(matches!(
        server.handle(now, NOW_UNIX, mapped, &old),
        Received::Apply(..)
    ));
    let access = request(Code::AccessRequest, 7, &by_session("A"), SECRET, true);
    assert_eq!(
        server.handle(now, NOW_UNIX, dac(), &access),
        Received::Ignored(IgnoreReason::UnsupportedCode)
    );
    assert_eq!(
        server.handle(now, NOW_UNIX, dac(), &good[..19]),
        Received::Ignored(IgnoreReason::Malformed)
    );
    let s = server.stats();
    for (reason, n) in [
        (IgnoreReason::UnknownClient, 1),
        (IgnoreReason::BadAuthenticator, 1),
        (IgnoreReason::MissingMessageAuthenticator, 1),
        (IgnoreReason::BadMessageAuthenticator, 1),
        (IgnoreReason::UnsupportedCode, 1),
        (IgnoreReason::Malformed, 1),
    ] {
        assert_eq!(s.ignored[reason.index()], n, "{reason:?}");
    }
    assert!(s.answered.is_empty());
}

#[test]
fn event_timestamp_window() {
    let mut cfg = config();
    cfg.require_event_timestamp = true;
    let mut server = Server::new(cfg);
    let now = Instant::now();
    let with_ts = |id: u8, ts: u64| {
        let mut attrs = by_session("A");
        attrs.push(Attribute::integer(attr::EVENT_TIMESTAMP, ts as u32));
        request(Code::CoaRequest, id, &attrs, SECRET, true)
    };
    assert!(matches!(
        server.handle(now, NOW_UNIX, dac(), &with_ts(1, NOW_UNIX - 299)),
        Received::Apply(..)
    ));
    assert!(matches!(
        server.handle(now, NOW_UNIX, dac(), &with_ts(2, NOW_UNIX + 300)),
        Received::Apply(..)
    ));
    assert_eq!(
        server.handle(now, NOW_UNIX, dac(), &with_ts(3, NOW_UNIX - 301)),
        Received::Ignored(IgnoreReason::StaleEventTimestamp)
    );
    assert_eq!(
        server.handle(now, NOW_UNIX, dac(), &with_ts(4, NOW_UNIX + 400)),
        Received::Ignored(IgnoreReason::StaleEventTimestamp)
    );
    let none = request(Code::CoaRequest, 5, &by_session("A"), SECRET, true);
    assert_eq!(
        server.handle(now, NOW_UNIX, dac(), &none),
        Received::Ignored(IgnoreReason::MissingEventTimestamp)
    );
}

#[test]
fn naks_carry_the_error_cause_and_echo_proxy_state() {
    let mut server = Server::new(config());
    let now = Instant::now();
    let mut id = 0u8;
    let mut nak = |code: Code, attrs: Vec<Attribute>| {
        id += 1;
        let mut all = vec![Attribute::new(attr::PROXY_STATE, &b"p1"[..])];
        all.extend(attrs);
        all.push(Attribute::new(attr::PROXY_STATE, &b"p2"[..]));
        let bytes = request(code, id, &all, SECRET, true);
        let answer = match server.handle(now, NOW_UNIX, dac(), &bytes) {
            Received::Reply(answer) => answer,
            other => panic!("{other:?}"),
        };
        let req_auth: [u8; 16] = bytes[4..20].try_into().unwrap();
        wire::verify_response(&answer, &req_auth, SECRET, true).unwrap();
        let repr = Repr::from_bytes(&answer).unwrap();
        let states: Vec<&[u8]> = repr
            .attributes
            .iter()
            .filter(|a| a.kind == attr::PROXY_STATE)
            .map(|a| a.value.as_slice())
            .collect();
        assert_eq!(states, [&b"p1"[..], &b"p2"[..]]);
        (repr.code, error_cause(&repr))
    };
    let user = || Attribute::new(attr::USER_NAME, &b"alice"[..]);
    let d = Code::DisconnectRequest;
    let c = Code::CoaRequest;
    // Disconnect-Request: only identification attributes (RFC 5176 §3).
    assert_eq!(
        nak(
            d,
            vec![user(), Attribute::integer(attr::SESSION_TIMEOUT, 5)]
        ),
        (Code::DisconnectNak, Some(401))
    );
    assert_eq!(
        nak(d, vec![Attribute::new(attr::NAS_IDENTIFIER, &b"lns1"[..])]),
        (Code::DisconnectNak, Some(402))
    );
    assert_eq!(
        nak(
            c,
            vec![user(), Attribute::new(attr::NAS_IDENTIFIER, &b"lns2"[..])]
        ),
        (Code::CoaNak, Some(403))
    );
    assert_eq!(
        nak(
            c,
            vec![
                user(),
                Attribute::ipv4(attr::NAS_IP_ADDRESS, Ipv4Addr::new(203, 0, 113, 2))
            ]
        ),
        (Code::CoaNak, Some(403))
    );
    assert_eq!(
        nak(d, vec![user(), user()]),
        (Code::DisconnectNak, Some(404))
    );
    assert_eq!(
        nak(
            c,
            vec![user(), Attribute::new(attr::SESSION_TIMEOUT, &b"\x01"[..])]
        ),
        (Code::CoaNak, Some(404))
    );
    // Service-Type "Authorize Only" (17) is not supported (RFC 5176 §3.2).
    assert_eq!(
        nak(c, vec![user(), Attribute::integer(attr::SERVICE_TYPE, 17)]),
        (Code::CoaNak, Some(405))
    );
    assert_eq!(
        nak(
            c,
            vec![user(), Attribute::new(extra_attr::FILTER_ID, &b""[..])]
        ),
        (Code::CoaNak, Some(407))
    );
    // Not tracked: Acct-Multi-Session-Id; an unknown vendor; Acct-Interim-Interval.
    assert_eq!(
        nak(
            c,
            vec![Attribute::new(extra_attr::ACCT_MULTI_SESSION_ID, &b"m"[..])]
        ),
        (Code::CoaNak, Some(401))
    );
    assert_eq!(
        nak(
            c,
            vec![user(), Attribute::vendor(9, 1, b"sub-qos-policy-in=x")]
        ),
        (Code::CoaNak, Some(401))
    );
    assert_eq!(
        nak(
            c,
            vec![user(), Attribute::integer(attr::ACCT_INTERIM_INTERVAL, 60)]
        ),
        (Code::CoaNak, Some(401))
    );
    let counted: u64 = server.stats().answered.values().sum();
    assert_eq!(counted, 11);
}

#[test]
fn coa_changes_and_state_echo() {
    let mut server = Server::new(config());
    let now = Instant::now();
    let attrs = vec![
        Attribute::new(attr::USER_NAME, &b"alice"[..]),
        Attribute::ipv4(attr::FRAMED_IP_ADDRESS, Ipv4Addr::new(10, 0, 0, 5)),
        Attribute::integer(attr::NAS_PORT, 77),
        Attribute::new(attr::NAS_IDENTIFIER, &b"lns1"[..]),
        Attribute::ipv4(attr::NAS_IP_ADDRESS, Ipv4Addr::new(203, 0, 113, 1)),
        Attribute::integer(attr::SESSION_TIMEOUT, 120),
        Attribute::integer(attr::IDLE_TIMEOUT, 0),
        Attribute::integer(attr::SERVICE_TYPE, 2),
        Attribute::new(attr::CLASS, &b"gold"[..]),
        Attribute::new(extra_attr::FILTER_ID, &b"10M"[..]),
        Attribute::vendor(vendor::MIKROTIK, vendor::MIKROTIK_RATE_LIMIT, b"10M/20M"),
        Attribute::vendor(
            vendor::WISPR,
            vendor::WISPR_BANDWIDTH_MAX_DOWN,
            &20_000_000u32.to_be_bytes(),
        ),
        Attribute::new(attr::STATE, &b"st"[..]),
        Attribute::integer(attr::EVENT_TIMESTAMP, NOW_UNIX as u32),
    ];
    let bytes = request(Code::CoaRequest, 3, &attrs, SECRET, true);
    let (pending, req) = apply(server.handle(now, NOW_UNIX, dac(), &bytes));
    assert_eq!(req.kind, Kind::Coa);
    assert_eq!(req.selector.framed_ip, Some(Ipv4Addr::new(10, 0, 0, 5)));
    assert_eq!(req.selector.nas_port, Some(77));
    assert_eq!(
        req.change.session_timeout,
        Some(Some(Duration::from_secs(120)))
    );
    assert_eq!(req.change.idle_timeout, Some(None), "0 removes the limit");
    assert_eq!(req.change.class, Some(vec![b"gold".to_vec()]));
    let rates = req.change.rate_limits.clone().unwrap();
    assert_eq!(rates.filter_ids, vec![b"10M".to_vec()]);
    assert_eq!(rates.vendor.len(), 2);
    assert_eq!(rates.vendor[0].value, b"10M/20M");
    let ack = server.answer(&pending, Ok(2)).unwrap();
    wire::verify_response(&ack, bytes[4..20].try_into().unwrap(), SECRET, true).unwrap();
    let ack = Repr::from_bytes(&ack).unwrap();
    assert_eq!(ack.code, Code::CoaAck);
    assert_eq!(ack.get(attr::STATE).unwrap().value, b"st");
    assert_eq!(error_cause(&ack), None);
    // Unknown session: NAK 503 from the verdict.
    let bytes = request(Code::DisconnectRequest, 4, &by_session("X"), SECRET, true);
    let (pending, _) = apply(server.handle(now, NOW_UNIX, dac(), &bytes));
    let nak = Repr::from_bytes(
        &server
            .answer(&pending, Err(ErrorCause::SessionContextNotFound))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(nak.code, Code::DisconnectNak);
    assert_eq!(error_cause(&nak), Some(503));
    assert!(nak.get(attr::STATE).is_none());
}

#[test]
fn disconnect_keeps_class_and_accepts_terminate_cause() {
    let attrs = vec![
        Attribute::new(attr::ACCT_SESSION_ID, &b"A"[..]),
        Attribute::new(attr::CLASS, &b"c1"[..]),
        Attribute::integer(attr::ACCT_TERMINATE_CAUSE, 6),
        Attribute::new(attr::REPLY_MESSAGE, &b"bye"[..]),
    ];
    let req = parse_request(Kind::Disconnect, &attrs, &NasIdentity::default()).unwrap();
    assert_eq!(req.change.class, Some(vec![b"c1".to_vec()]));
    assert_eq!(req.change.session_timeout, None);
}

#[test]
fn selector_matching() {
    let view = SessionView {
        acct_session_id: Some(b"5F000001"),
        user_name: Some(b"alice"),
        framed_ip: Some(Ipv4Addr::new(10, 0, 0, 5)),
        nas_port: 12,
        calling_station_id: Some(b"555"),
        called_station_id: None,
    };
    assert!(!Selector::default().matches(&view), "empty matches nothing");
    let shown = Selector {
        user_name: Some(b"alice".to_vec()),
        nas_port: Some(12),
        ..Selector::default()
    }
    .to_string();
    assert_eq!(shown, "User-Name=\"alice\" NAS-Port=12");
    let s = |f: &dyn Fn(&mut Selector)| {
        let mut sel = Selector::default();
        f(&mut sel);
        sel.matches(&view)
    };
    assert!(s(&|x| x.acct_session_id = Some(b"5F000001".to_vec())));
    assert!(!s(&|x| x.acct_session_id = Some(b"5F000002".to_vec())));
    assert!(s(&|x| x.user_name = Some(b"alice".to_vec())));
    assert!(!s(&|x| x.user_name = Some(b"ALICE".to_vec())));
    assert!(s(&|x| x.framed_ip = Some(Ipv4Addr::new(10, 0, 0, 5))));
    assert!(s(&|x| x.nas_port = Some(12)));
    assert!(!s(&|x| x.nas_port = Some(13)));
    assert!(s(&|x| x.calling_station_id = Some(b"555".to_vec())));
    assert!(!s(&|x| x.called_station_id = Some(b"1".to_vec())));
    assert!(s(&|x| {
        x.user_name = Some(b"alice".to_vec());
        x.nas_port = Some(12);
    }));
    assert!(!s(&|x| {
        x.user_name = Some(b"alice".to_vec());
        x.framed_ip = Some(Ipv4Addr::new(10, 0, 0, 6));
    }));
}

proptest! {
    #[test]
    fn arbitrary_datagrams_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut server = Server::new(config());
        let _ = server.handle(Instant::now(), NOW_UNIX, dac(), &bytes);
    }

    #[test]
    fn arbitrary_signed_attributes_never_panic(
        code in prop_oneof![Just(Code::DisconnectRequest), Just(Code::CoaRequest)],
        attrs in proptest::collection::vec(
            (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..20)),
            0..8,
        ),
    ) {
        let attrs: Vec<Attribute> = attrs
            .into_iter()
            .filter(|(k, _)| *k != attr::MESSAGE_AUTHENTICATOR)
            .map(|(k, v)| Attribute::new(k, v))
            .collect();
        let bytes = request(code, 1, &attrs, SECRET, true);
        let mut server = Server::new(config());
        match server.handle(Instant::now(), NOW_UNIX, dac(), &bytes) {
            Received::Reply(answer) => {
                wire::verify_response(&answer, bytes[4..20].try_into().unwrap(), SECRET, true)
                    .unwrap();
            }
            Received::Apply(p, _) => {
                prop_assert!(server.answer(&p, Ok(1)).is_some());
            }
            Received::Ignored(_) => {}
        }
    }
}

#[test]
fn an_answer_that_cannot_fit_is_counted() {
    let mut server = Server::new(config());
    let now = Instant::now();
    // Proxy-States fill a request of 4096 octets without Message-Authenticator (the legacy
    // client); the answer adds Message-Authenticator and Error-Cause and cannot fit.
    let mut attrs = vec![Attribute::new(attr::USER_NAME, &b"u"[..])];
    attrs.push(Attribute::new(attr::SESSION_TIMEOUT, &b"bad"[..]));
    for _ in 0..15 {
        attrs.push(Attribute::new(attr::PROXY_STATE, vec![7u8; 253]));
    }
    attrs.push(Attribute::new(attr::PROXY_STATE, vec![7u8; 241]));
    let bytes = request(Code::CoaRequest, 1, &attrs, b"legacy", false);
    assert_eq!(bytes.len(), 4096);
    let legacy: SocketAddr = "198.51.100.7:3000".parse().unwrap();
    assert_eq!(
        server.handle(now, NOW_UNIX, legacy, &bytes),
        Received::Ignored(IgnoreReason::AnswerTooLong)
    );
    assert_eq!(
        server.stats().ignored[IgnoreReason::AnswerTooLong.index()],
        1
    );
    assert!(server.stats().answered.is_empty());
}

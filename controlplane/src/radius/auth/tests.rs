#![allow(clippy::unwrap_used, clippy::panic)]

use super::*;
use crate::ppp::mschapv2::ResponseValue;
use crate::radius::wire::{Repr, salt_encrypt};

fn ctx() -> SessionContext {
    SessionContext {
        nas_identifier: Some("lns1".into()),
        nas_ip_address: Some(Ipv4Addr::new(192, 0, 2, 1)),
        nas_port: Some(7),
        calling_station_id: Some(b"5551234".to_vec()),
        called_station_id: Some(b"5550000".to_vec()),
        connect_info: Some("L2TP".into()),
        acct_session_id: Some("0000002a".into()),
        tunnel: Some(TunnelContext {
            medium: TunnelMedium::Ipv4,
            client_endpoint: "198.51.100.2".into(),
            server_endpoint: "192.0.2.1".into(),
            assignment_id: Some("t42".into()),
            client_auth_id: Some("lac".into()),
            server_auth_id: Some("lns".into()),
        }),
    }
}

fn find(a: &[Attribute], kind: u8) -> &[u8] {
    &a.iter().find(|x| x.kind == kind).unwrap().value
}

#[test]
fn request_attributes() {
    let pap = VerifyRequest {
        id: 1,
        user: b"alice".to_vec(),
        credential: Credential::Pap {
            password: b"pw".to_vec(),
        },
    };
    let a = access_request(&pap, &ctx());
    assert_eq!(find(&a, attr::USER_NAME), b"alice");
    assert_eq!(find(&a, attr::USER_PASSWORD), b"pw");
    assert_eq!(find(&a, attr::SERVICE_TYPE), [0, 0, 0, 2]);
    assert_eq!(find(&a, attr::FRAMED_PROTOCOL), [0, 0, 0, 1]);
    assert_eq!(find(&a, attr::NAS_PORT_TYPE), [0, 0, 0, 5]);
    assert_eq!(find(&a, attr::NAS_IDENTIFIER), b"lns1");
    assert_eq!(find(&a, attr::NAS_IP_ADDRESS), [192, 0, 2, 1]);
    assert_eq!(find(&a, attr::NAS_PORT), [0, 0, 0, 7]);
    assert_eq!(find(&a, attr::CALLING_STATION_ID), b"5551234");
    assert_eq!(find(&a, attr::CALLED_STATION_ID), b"5550000");
    assert_eq!(find(&a, attr::CONNECT_INFO), b"L2TP");
    assert_eq!(find(&a, attr::ACCT_SESSION_ID), b"0000002a");
    assert_eq!(find(&a, attr::TUNNEL_TYPE), [1, 0, 0, 3]);
    assert_eq!(find(&a, attr::TUNNEL_MEDIUM_TYPE), [1, 0, 0, 1]);
    assert_eq!(find(&a, attr::TUNNEL_CLIENT_ENDPOINT), b"\x01198.51.100.2");
    assert_eq!(find(&a, attr::TUNNEL_SERVER_ENDPOINT), b"\x01192.0.2.1");
    assert_eq!(find(&a, attr::TUNNEL_ASSIGNMENT_ID), b"\x01t42");
    assert_eq!(find(&a, attr::TUNNEL_CLIENT_AUTH_ID), b"\x01lac");
    assert_eq!(find(&a, attr::TUNNEL_SERVER_AUTH_ID), b"\x01lns");

    let chap = VerifyRequest {
        id: 2,
        user: b"bob".to_vec(),
        credential: Credential::ChapMd5 {
            identifier: 22,
            challenge: vec![9; 16],
            response: [5; 16],
        },
    };
    let a = access_request(&chap, &SessionContext::default());
    let cp = find(&a, attr::CHAP_PASSWORD);
    assert_eq!((cp.len(), cp[0], &cp[1..]), (17, 22, &[5u8; 16][..]));
    assert_eq!(find(&a, attr::CHAP_CHALLENGE), [9; 16]);
    assert!(a.iter().all(|x| x.kind != attr::USER_PASSWORD));

    let rv = ResponseValue {
        peer_challenge: [1; 16],
        nt_response: [2; 24],
        flags: 0,
    };
    let ms = VerifyRequest {
        id: 3,
        user: b"carol".to_vec(),
        credential: Credential::MsChapV2 {
            identifier: 9,
            authenticator_challenge: [3; 16],
            response: rv,
        },
    };
    let a = access_request(&ms, &SessionContext::default());
    let vs: Vec<_> = vendor_attributes(&a, 311).collect();
    assert_eq!(vs[0].kind, ms::CHAP_CHALLENGE);
    assert_eq!(vs[0].value, [3; 16]);
    assert_eq!(vs[1].kind, ms::CHAP2_RESPONSE);
    let v = vs[1].value;
    assert_eq!((v.len(), v[0], v[1]), (50, 9, 0));
    assert_eq!(&v[2..18], &[1; 16]);
    assert_eq!(&v[18..26], &[0; 8]);
    assert_eq!(&v[26..50], &[2; 24]);
}

fn response(code: Code, attributes: Vec<Attribute>) -> Response {
    Response {
        server: "127.0.0.1:1812".parse().unwrap(),
        packet: Repr {
            code,
            identifier: 0,
            authenticator: [0; 16],
            attributes,
        },
        request_authenticator: [7; 16],
        secret: b"s".to_vec(),
    }
}

#[test]
fn reply_attributes() {
    let key = salt_encrypt(&[0x42; 16], b"s", &[7; 16], [0, 1]).unwrap();
    let r = response(
        Code::AccessAccept,
        vec![
            Attribute::ipv4(attr::FRAMED_IP_ADDRESS, Ipv4Addr::new(10, 1, 2, 3)),
            Attribute::ipv4(attr::FRAMED_IP_NETMASK, Ipv4Addr::new(255, 255, 255, 255)),
            Attribute::new(attr::FRAMED_POOL, b"main".to_vec()),
            Attribute::new(attr::FRAMED_ROUTE, b"192.0.2.0/24 0.0.0.0 1".to_vec()),
            Attribute::new(attr::FRAMED_ROUTE, b"198.51.100.7".to_vec()),
            Attribute::new(attr::FRAMED_ROUTE, b"garbage".to_vec()),
            Attribute::new(
                attr::FRAMED_IPV6_PREFIX,
                vec![0, 64, 0x20, 1, 0xd, 0xb8, 0, 1, 0, 0],
            ),
            Attribute::new(
                attr::DELEGATED_IPV6_PREFIX,
                vec![0, 56, 0x20, 1, 0xd, 0xb8, 1, 0, 0],
            ),
            Attribute::integer(attr::SESSION_TIMEOUT, 3600),
            Attribute::integer(attr::IDLE_TIMEOUT, 600),
            Attribute::integer(attr::ACCT_INTERIM_INTERVAL, 300),
            Attribute::new(attr::CLASS, b"c1".to_vec()),
            Attribute::new(attr::CLASS, b"c2".to_vec()),
            Attribute::integer(attr::FRAMED_MTU, 1400),
            Attribute::new(attr::SESSION_TIMEOUT, vec![1]),
            Attribute::new(attr::REPLY_MESSAGE, b"hello ".to_vec()),
            Attribute::new(attr::REPLY_MESSAGE, b"world".to_vec()),
            Attribute::vendor(311, ms::PRIMARY_DNS_SERVER, &[192, 0, 2, 53]),
            Attribute::vendor(311, ms::SECONDARY_DNS_SERVER, &[192, 0, 2, 54]),
            Attribute::vendor(311, ms::MPPE_SEND_KEY, &key),
        ],
    );
    let reply = parse_reply(&r);
    assert!(reply.accepted);
    let a = &reply.attributes;
    assert_eq!(a.address, Some(Ipv4Addr::new(10, 1, 2, 3)));
    assert_eq!(a.netmask, Some(Ipv4Addr::BROADCAST));
    assert_eq!(a.pool.as_deref(), Some("main"));
    assert_eq!(a.routes.len(), 2);
    assert_eq!(a.routes[0].prefix, "192.0.2.0/24".parse().unwrap());
    assert_eq!((a.routes[0].gateway, a.routes[0].metric), (None, Some(1)));
    assert_eq!(a.routes[1].prefix, "198.51.100.7/32".parse().unwrap());
    assert_eq!(a.ipv6_prefix, Some("2001:db8:1::/64".parse().unwrap()));
    assert_eq!(
        a.delegated_ipv6_prefix,
        Some("2001:db8:100::/56".parse().unwrap())
    );
    // The malformed Session-Timeout came last and was ignored as a value.
    assert_eq!(a.session_timeout, None);
    assert_eq!(a.idle_timeout, Some(Duration::from_secs(600)));
    assert_eq!(a.interim_interval, Some(Duration::from_secs(300)));
    assert_eq!(a.class, vec![b"c1".to_vec(), b"c2".to_vec()]);
    assert_eq!(a.mtu, Some(1400));
    assert_eq!(a.primary_dns, Some(Ipv4Addr::new(192, 0, 2, 53)));
    assert_eq!(a.secondary_dns, Some(Ipv4Addr::new(192, 0, 2, 54)));
    assert_eq!(reply.reply_message.as_deref(), Some("hello world"));
    assert_eq!(reply.mppe_send_key, Some(vec![0x42; 16]));
    assert_eq!(reply.malformed, 2);

    let pool_choice = parse_reply(&response(
        Code::AccessAccept,
        vec![Attribute::ipv4(
            attr::FRAMED_IP_ADDRESS,
            Ipv4Addr::new(255, 255, 255, 254),
        )],
    ));
    assert_eq!(pool_choice.attributes.address, None);
}

#[test]
fn ms_chapv2_results() {
    let request = VerifyRequest {
        id: 1,
        user: b"carol".to_vec(),
        credential: Credential::MsChapV2 {
            identifier: 9,
            authenticator_challenge: [3; 16],
            response: ResponseValue {
                peer_challenge: [1; 16],
                nt_response: [2; 24],
                flags: 0,
            },
        },
    };
    let s = format!("S={}", "a".repeat(40));
    let mut ok = vec![9u8];
    ok.extend_from_slice(s.as_bytes());
    let accept = parse_reply(&response(
        Code::AccessAccept,
        vec![Attribute::vendor(311, ms::CHAP2_SUCCESS, &ok)],
    ));
    let r = auth_result(&request, &accept);
    assert!(r.accepted);
    assert_eq!(
        r.authenticator_response,
        Some(format!("S={}", "A".repeat(40)))
    );
    // Another identifier, or none at all: a rejection.
    ok[0] = 10;
    let wrong = parse_reply(&response(
        Code::AccessAccept,
        vec![Attribute::vendor(311, ms::CHAP2_SUCCESS, &ok)],
    ));
    assert!(!auth_result(&request, &wrong).accepted);
    assert!(
        !auth_result(
            &request,
            &parse_reply(&response(Code::AccessAccept, vec![]))
        )
        .accepted
    );
    // MS-CHAP-Error becomes the Failure message.
    let mut e = vec![9u8];
    e.extend_from_slice(format!("E=691 R=1 C={} V=3", "0".repeat(32)).as_bytes());
    let reject = parse_reply(&response(
        Code::AccessReject,
        vec![Attribute::vendor(311, ms::CHAP_ERROR, &e)],
    ));
    let r = auth_result(&request, &reject);
    assert!(!r.accepted);
    assert_eq!(r.failure.unwrap().error, 691);
    // Access-Challenge is not an acceptance.
    assert!(
        !auth_result(
            &request,
            &parse_reply(&response(Code::AccessChallenge, vec![]))
        )
        .accepted
    );
}

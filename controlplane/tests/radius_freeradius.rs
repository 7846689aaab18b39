//! The RADIUS client against a real FreeRADIUS (Debian package `freeradius`, 3.2.x),
//! started by each test with its own configuration in a temporary directory: PAP,
//! CHAP-MD5 and MS-CHAPv2 accept and reject with reply attributes, failover from a dead
//! server, accounting Start/Stop into the `detail` file, and the rejection of a forged
//! response without Message-Authenticator (BlastRADIUS, CVE-2024-3596; a fake UDP
//! responder).
//!
//! FreeRADIUS 3.2.1 (Debian 12) only sends Message-Authenticator in Access-Accept and
//! Access-Reject when the reply holds one, so the generated configuration adds it in
//! post-auth (`update reply { Message-Authenticator := 0x00 }`), as the BlastRADIUS
//! advisory says for servers before 3.2.5; our client requires it.
//!
//! A test that needs FreeRADIUS fails when it is not installed, unless
//! `XLNS_SKIP_FREERADIUS=1`.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::net::{Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant};

use xlns_controlplane::ppp::auth::{Credential, VerifyRequest};
use xlns_controlplane::ppp::chap::md5_response;
use xlns_controlplane::ppp::mschapv2::{self, ResponseValue};
use xlns_controlplane::radius::auth::{
    SessionContext, TunnelContext, TunnelMedium, access_request, auth_result, parse_reply,
};
use xlns_controlplane::radius::client::{ClientConfig, RadiusClient, RequestError};
use xlns_controlplane::radius::wire::{self, Attribute, Code, Repr, attr};

#[path = "support/freeradius.rs"]
mod freeradius;

use freeradius::{FreeRadius, SECRET};

fn context() -> SessionContext {
    SessionContext {
        nas_identifier: Some("xlns-test".into()),
        nas_ip_address: Some(Ipv4Addr::LOCALHOST),
        nas_port: Some(42),
        calling_station_id: Some(b"5551234".to_vec()),
        called_station_id: Some(b"5550000".to_vec()),
        connect_info: Some("L2TP".into()),
        acct_session_id: Some("0000abcd".into()),
        tunnel: Some(TunnelContext {
            medium: TunnelMedium::Ipv4,
            client_endpoint: "127.0.0.2".into(),
            server_endpoint: "127.0.0.1".into(),
            assignment_id: Some("tunnel-7".into()),
            client_auth_id: Some("lac1".into()),
            server_auth_id: Some("lns1".into()),
        }),
    }
}

fn pap(user: &str, password: &str) -> VerifyRequest {
    VerifyRequest {
        id: 1,
        user: user.as_bytes().to_vec(),
        credential: Credential::Pap {
            password: password.as_bytes().to_vec(),
        },
    }
}

fn chap(user: &str, password: &str) -> VerifyRequest {
    let challenge = vec![0x5a; 16];
    VerifyRequest {
        id: 2,
        user: user.as_bytes().to_vec(),
        credential: Credential::ChapMd5 {
            identifier: 17,
            response: md5_response(17, password.as_bytes(), &challenge),
            challenge,
        },
    }
}

const AUTH_CHALLENGE: [u8; 16] = [0x21; 16];
const PEER_CHALLENGE: [u8; 16] = [0x43; 16];

fn mschap(user: &str, password: &str) -> VerifyRequest {
    VerifyRequest {
        id: 3,
        user: user.as_bytes().to_vec(),
        credential: Credential::MsChapV2 {
            identifier: 99,
            authenticator_challenge: AUTH_CHALLENGE,
            response: ResponseValue {
                peer_challenge: PEER_CHALLENGE,
                nt_response: mschapv2::generate_nt_response(
                    &AUTH_CHALLENGE,
                    &PEER_CHALLENGE,
                    user.as_bytes(),
                    password,
                ),
                flags: 0,
            },
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_accept_and_reject_for_pap_chap_and_mschapv2() {
    let Some(fr) = FreeRadius::start("methods") else {
        return;
    };
    let client = RadiusClient::spawn(fr.client_config());
    let ctx = context();

    // PAP.
    let req = pap("papuser", "pap-pass");
    let resp = client
        .authenticate(access_request(&req, &ctx))
        .await
        .unwrap();
    assert_eq!(resp.packet.code, Code::AccessAccept, "{}", fr.log());
    assert!(resp.packet.get(attr::MESSAGE_AUTHENTICATOR).is_some());
    let result = auth_result(&req, &parse_reply(&resp));
    assert!(result.accepted);
    let a = &result.attributes;
    assert_eq!(a.address, Some(Ipv4Addr::new(10, 11, 12, 13)));
    assert_eq!(a.netmask, Some(Ipv4Addr::BROADCAST));
    assert_eq!(a.routes.len(), 1);
    assert_eq!(a.routes[0].prefix, "192.0.2.0/24".parse().unwrap());
    assert_eq!(a.routes[0].metric, Some(1));
    assert_eq!(a.session_timeout, Some(Duration::from_secs(3600)));
    assert_eq!(a.idle_timeout, Some(Duration::from_secs(600)));
    assert_eq!(a.interim_interval, Some(Duration::from_secs(300)));
    assert_eq!(a.mtu, Some(1400));
    assert_eq!(a.primary_dns, Some(Ipv4Addr::new(198, 51, 100, 53)));
    assert_eq!(a.secondary_dns, Some(Ipv4Addr::new(198, 51, 100, 54)));
    assert_eq!(a.class, vec![b"class-pap".to_vec()]);
    let bad = pap("papuser", "wrong");
    let resp = client
        .authenticate(access_request(&bad, &ctx))
        .await
        .unwrap();
    assert_eq!(resp.packet.code, Code::AccessReject);
    assert!(!auth_result(&bad, &parse_reply(&resp)).accepted);

    // CHAP-MD5.
    let req = chap("chapuser", "chap-pass");
    let resp = client
        .authenticate(access_request(&req, &ctx))
        .await
        .unwrap();
    assert_eq!(resp.packet.code, Code::AccessAccept, "{}", fr.log());
    let result = auth_result(&req, &parse_reply(&resp));
    assert!(result.accepted);
    let a = &result.attributes;
    assert_eq!(a.pool.as_deref(), Some("gold"));
    assert_eq!(a.address, None);
    assert_eq!(a.routes[0].prefix, "203.0.113.0/25".parse().unwrap());
    assert_eq!(a.session_timeout, Some(Duration::from_secs(7200)));
    assert_eq!(a.idle_timeout, Some(Duration::from_secs(900)));
    assert_eq!(a.class, vec![b"class-chap".to_vec()]);
    let bad = chap("chapuser", "wrong");
    let resp = client
        .authenticate(access_request(&bad, &ctx))
        .await
        .unwrap();
    assert_eq!(resp.packet.code, Code::AccessReject);

    // MS-CHAPv2: the MS-CHAP2-Success is what the peer's password expects.
    let req = mschap("msuser", "ms-pass");
    let resp = client
        .authenticate(access_request(&req, &ctx))
        .await
        .unwrap();
    assert_eq!(resp.packet.code, Code::AccessAccept, "{}", fr.log());
    let reply = parse_reply(&resp);
    let result = auth_result(&req, &reply);
    assert!(result.accepted);
    let s = result.authenticator_response.clone().unwrap();
    let Credential::MsChapV2 { response, .. } = &req.credential else {
        unreachable!()
    };
    assert!(mschapv2::check_success_message(
        "ms-pass",
        &response.nt_response,
        &PEER_CHALLENGE,
        &AUTH_CHALLENGE,
        b"msuser",
        s.as_bytes(),
    ));
    assert!(!mschapv2::check_success_message(
        "other",
        &response.nt_response,
        &PEER_CHALLENGE,
        &AUTH_CHALLENGE,
        b"msuser",
        s.as_bytes(),
    ));
    // FreeRADIUS' mschap module sends the MPPE keys (RFC 3079), decrypted here.
    assert_eq!(reply.mppe_send_key.as_ref().map(Vec::len), Some(16));
    assert_eq!(reply.mppe_recv_key.as_ref().map(Vec::len), Some(16));
    assert_eq!(
        result.attributes.address,
        Some(Ipv4Addr::new(10, 11, 12, 14))
    );
    assert_eq!(result.attributes.pool.as_deref(), Some("silver"));
    assert_eq!(
        result.attributes.session_timeout,
        Some(Duration::from_secs(1800))
    );
    let bad = mschap("msuser", "wrong");
    let resp = client
        .authenticate(access_request(&bad, &ctx))
        .await
        .unwrap();
    assert_eq!(resp.packet.code, Code::AccessReject);
    let result = auth_result(&bad, &parse_reply(&resp));
    assert!(!result.accepted);
    assert_eq!(result.failure.map(|f| f.error), Some(691));

    let k = client.counters().await.unwrap();
    assert_eq!(k.responses, 6);
    assert_eq!(k.missing_message_authenticator, 0);
    // The request attributes as FreeRADIUS logged them.
    let log = fr.log();
    for needle in [
        "NAS-Port-Type = Virtual",
        "Service-Type = Framed-User",
        "Framed-Protocol = PPP",
        "Tunnel-Type:1 = L2TP",
        "Tunnel-Medium-Type:1 = IPv4",
        "Tunnel-Client-Endpoint:1 = \"127.0.0.2\"",
        "Tunnel-Assignment-Id:1 = \"tunnel-7\"",
        "Tunnel-Server-Auth-Id:1 = \"lns1\"",
        "Calling-Station-Id = \"5551234\"",
        "Acct-Session-Id = \"0000abcd\"",
    ] {
        assert!(
            log.contains(needle),
            "{needle} not in FreeRADIUS log:\n{log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_server_fails_over_to_live_one() {
    let Some(fr) = FreeRadius::start("failover") else {
        return;
    };
    // A socket that never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead = silent.local_addr().unwrap();
    let config = ClientConfig {
        auth_servers: vec![FreeRadius::server(dead), FreeRadius::server(fr.auth)],
        initial_rto: Duration::from_millis(100),
        max_transmissions: 2,
        dead_after: 1,
        dead_time: Duration::from_secs(60),
        ..ClientConfig::default()
    };
    let client = RadiusClient::spawn(config);
    let req = pap("papuser", "pap-pass");
    let started = Instant::now();
    let resp = client
        .authenticate(access_request(&req, &context()))
        .await
        .unwrap();
    assert_eq!(resp.packet.code, Code::AccessAccept);
    assert_eq!(resp.server, fr.auth);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let k = client.counters().await.unwrap();
    assert_eq!(
        (k.server_timeouts, k.failovers, k.servers_marked_dead),
        (1, 1, 1)
    );
    // The dead server is skipped now: no further timeout.
    let resp = client
        .authenticate(access_request(&req, &context()))
        .await
        .unwrap();
    assert_eq!(resp.server, fr.auth);
    let k = client.counters().await.unwrap();
    assert_eq!(k.server_timeouts, 1);
    // The silent server did receive the first request, twice, with the same Identifier.
    silent.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    let mut ids = Vec::new();
    while let Ok(n) = silent.recv(&mut buf) {
        ids.push(Repr::from_bytes(&buf[..n]).unwrap().identifier);
    }
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounting_start_and_stop_reach_the_detail_file() {
    let Some(fr) = FreeRadius::start("acct") else {
        return;
    };
    let client = RadiusClient::spawn(fr.client_config());
    let common = |status: u32| {
        vec![
            Attribute::new(attr::USER_NAME, b"papuser".to_vec()),
            Attribute::integer(attr::ACCT_STATUS_TYPE, status),
            Attribute::new(attr::ACCT_SESSION_ID, b"sess-0001".to_vec()),
            Attribute::new(attr::CLASS, b"class-pap".to_vec()),
            Attribute::ipv4(attr::NAS_IP_ADDRESS, Ipv4Addr::LOCALHOST),
            Attribute::ipv4(attr::FRAMED_IP_ADDRESS, Ipv4Addr::new(10, 11, 12, 13)),
        ]
    };
    let resp = client.account(common(1)).await.unwrap();
    assert_eq!(resp.packet.code, Code::AccountingResponse);
    let mut stop = common(2);
    stop.extend([
        Attribute::integer(attr::ACCT_SESSION_TIME, 61),
        Attribute::integer(attr::ACCT_INPUT_OCTETS, 123_456),
        Attribute::integer(attr::ACCT_OUTPUT_OCTETS, 654_321),
        Attribute::integer(attr::ACCT_INPUT_PACKETS, 1000),
        Attribute::integer(attr::ACCT_OUTPUT_PACKETS, 2000),
        Attribute::integer(attr::ACCT_TERMINATE_CAUSE, 1),
    ]);
    let resp = client.account(stop).await.unwrap();
    assert_eq!(resp.packet.code, Code::AccountingResponse);
    let detail = std::fs::read_to_string(fr.dir.join("detail")).unwrap();
    let records: Vec<&str> = detail
        .split("\n\n")
        .filter(|r| !r.trim().is_empty())
        .collect();
    assert_eq!(records.len(), 2, "{detail}");
    assert!(records[0].contains("Acct-Status-Type = Start"), "{detail}");
    assert!(records[1].contains("Acct-Status-Type = Stop"), "{detail}");
    for r in &records {
        assert!(r.contains("Acct-Session-Id = \"sess-0001\""), "{detail}");
        assert!(r.contains("Class = 0x636c6173732d706170"), "{detail}");
    }
    assert!(
        records[1].contains("Acct-Input-Octets = 123456"),
        "{detail}"
    );
    assert!(
        records[1].contains("Acct-Output-Packets = 2000"),
        "{detail}"
    );
    assert!(
        records[1].contains("Acct-Terminate-Cause = User-Request"),
        "{detail}"
    );
}

/// A fake server answers with a correct Response Authenticator but no
/// Message-Authenticator (what a BlastRADIUS forger produces), then, on the
/// retransmission, correctly: the first is rejected and counted, the second accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_response_without_message_authenticator_is_rejected() {
    let fake = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = fake.local_addr().unwrap();
    let responder = tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        for round in 0..2 {
            let (n, from) = fake.recv_from(&mut buf).await.unwrap();
            let req = Repr::from_bytes(&buf[..n]).unwrap();
            wire::verify_request(&buf[..n], SECRET.as_bytes(), true).unwrap();
            let mut attributes = vec![Attribute::integer(attr::SESSION_TIMEOUT, 10)];
            if round == 1 {
                attributes.insert(0, Attribute::new(attr::MESSAGE_AUTHENTICATOR, [0; 16]));
            }
            let resp = Repr {
                code: Code::AccessAccept,
                identifier: req.identifier,
                authenticator: [0; 16],
                attributes,
            };
            let mut bytes = resp.to_bytes().unwrap();
            wire::sign_response(&mut bytes, &req.authenticator, SECRET.as_bytes()).unwrap();
            fake.send_to(&bytes, from).await.unwrap();
        }
    });
    let client = RadiusClient::spawn(ClientConfig {
        auth_servers: vec![FreeRadius::server(addr)],
        initial_rto: Duration::from_millis(200),
        max_transmissions: 3,
        ..ClientConfig::default()
    });
    let req = pap("papuser", "pap-pass");
    let resp = client
        .authenticate(access_request(&req, &context()))
        .await
        .unwrap();
    assert!(resp.packet.get(attr::MESSAGE_AUTHENTICATOR).is_some());
    let k = client.counters().await.unwrap();
    assert_eq!(k.missing_message_authenticator, 1);
    assert_eq!(k.retransmissions, 1);
    responder.await.unwrap();

    // Only forged answers: the request fails.
    let fake = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = fake.local_addr().unwrap();
    let responder = tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        for _ in 0..2 {
            let (n, from) = fake.recv_from(&mut buf).await.unwrap();
            let req = Repr::from_bytes(&buf[..n]).unwrap();
            let resp = Repr {
                code: Code::AccessAccept,
                identifier: req.identifier,
                authenticator: [0; 16],
                attributes: vec![],
            };
            let mut bytes = resp.to_bytes().unwrap();
            wire::sign_response(&mut bytes, &req.authenticator, SECRET.as_bytes()).unwrap();
            fake.send_to(&bytes, from).await.unwrap();
        }
    });
    let client = RadiusClient::spawn(ClientConfig {
        auth_servers: vec![FreeRadius::server(addr)],
        initial_rto: Duration::from_millis(100),
        max_transmissions: 2,
        ..ClientConfig::default()
    });
    let err = client
        .authenticate(access_request(&req, &context()))
        .await
        .unwrap_err();
    assert_eq!(err, RequestError::Timeout);
    assert_eq!(
        client
            .counters()
            .await
            .unwrap()
            .missing_message_authenticator,
        2
    );
    responder.await.unwrap();
}

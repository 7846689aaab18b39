#![allow(clippy::unwrap_used, clippy::panic)]

use super::*;
use crate::radius::wire::{unhide_password, verify_request};

const SECRET_A: &[u8] = b"secret-a";
const SECRET_B: &[u8] = b"secret-b";

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn config() -> ClientConfig {
    ClientConfig {
        auth_servers: vec![
            ServerConfig {
                address: addr(1812),
                secret: SECRET_A.to_vec(),
            },
            ServerConfig {
                address: addr(2812),
                secret: SECRET_B.to_vec(),
            },
        ],
        acct_servers: vec![ServerConfig {
            address: addr(1813),
            secret: SECRET_A.to_vec(),
        }],
        initial_rto: Duration::from_secs(1),
        max_rto: Duration::from_secs(3),
        max_transmissions: 3,
        dead_after: 2,
        dead_time: Duration::from_secs(30),
        ..ClientConfig::default()
    }
}

fn pap_attrs() -> Vec<Attribute> {
    vec![
        Attribute::new(attr::USER_NAME, b"alice".to_vec()),
        Attribute::new(attr::USER_PASSWORD, b"wonderland".to_vec()),
    ]
}

/// A server's answer to `request`: `code`, with or without Message-Authenticator.
fn answer(request: &[u8], code: Code, secret: &[u8], with_ma: bool) -> Vec<u8> {
    let req = Repr::from_bytes(request).unwrap();
    let mut attributes = Vec::new();
    if with_ma {
        attributes.push(Attribute::new(attr::MESSAGE_AUTHENTICATOR, [0; 16]));
    }
    attributes.push(Attribute::integer(attr::SESSION_TIMEOUT, 600));
    let repr = Repr {
        code,
        identifier: req.identifier,
        authenticator: [0; 16],
        attributes,
    };
    let mut bytes = repr.to_bytes().unwrap();
    wire::sign_response(&mut bytes, &req.authenticator, secret).unwrap();
    bytes
}

#[test]
fn access_request_is_signed_and_answered() {
    let now = Instant::now();
    let mut c = ClientCore::with_seed(config(), 1);
    let id = c.submit(Service::Auth, pap_attrs(), now);
    let t = c.poll_transmit().unwrap();
    assert!(c.poll_transmit().is_none());
    assert_eq!(t.destination, addr(1812));
    verify_request(&t.payload, SECRET_A, true).unwrap();
    let req = Repr::from_bytes(&t.payload).unwrap();
    assert_eq!(req.code, Code::AccessRequest);
    assert_eq!(req.attributes[0].kind, attr::MESSAGE_AUTHENTICATOR);
    let hidden = &req.get(attr::USER_PASSWORD).unwrap().value;
    assert_ne!(hidden.as_slice(), b"wonderland");
    assert_eq!(
        unhide_password(hidden, SECRET_A, &req.authenticator).unwrap(),
        b"wonderland"
    );
    assert_eq!(c.poll_timeout(), Some(now + Duration::from_secs(1)));

    c.handle_datagram(
        t.socket,
        addr(1812),
        &answer(&t.payload, Code::AccessAccept, SECRET_A, true),
        now,
    );
    let o = c.poll_event().unwrap();
    assert_eq!(o.id, id);
    let r = o.result.unwrap();
    assert_eq!(r.packet.code, Code::AccessAccept);
    assert_eq!(r.request_authenticator, req.authenticator);
    assert_eq!(c.outstanding(), 0);
    assert_eq!(c.poll_timeout(), None);
    // The same answer again: nothing outstanding matches.
    c.handle_datagram(
        t.socket,
        addr(1812),
        &answer(&t.payload, Code::AccessAccept, SECRET_A, true),
        now,
    );
    assert_eq!(c.counters().unmatched, 1);
}

#[test]
fn response_without_message_authenticator_is_rejected_and_counted() {
    let now = Instant::now();
    let mut c = ClientCore::with_seed(config(), 2);
    c.submit(Service::Auth, pap_attrs(), now);
    let t = c.poll_transmit().unwrap();
    // BlastRADIUS: a correct Response Authenticator but no Message-Authenticator.
    c.handle_datagram(
        t.socket,
        addr(1812),
        &answer(&t.payload, Code::AccessAccept, SECRET_A, false),
        now,
    );
    assert!(c.poll_event().is_none());
    assert_eq!(c.counters().missing_message_authenticator, 1);
    // Wrong secret, wrong source, wrong code, garbage: all discarded and counted.
    c.handle_datagram(
        t.socket,
        addr(1812),
        &answer(&t.payload, Code::AccessAccept, SECRET_B, true),
        now,
    );
    c.handle_datagram(
        t.socket,
        addr(9999),
        &answer(&t.payload, Code::AccessAccept, SECRET_A, true),
        now,
    );
    c.handle_datagram(
        t.socket,
        addr(1812),
        &answer(&t.payload, Code::AccountingResponse, SECRET_A, true),
        now,
    );
    c.handle_datagram(t.socket, addr(1812), &[1, 2, 3], now);
    let k = c.counters();
    assert_eq!(
        (k.bad_authenticator, k.wrong_source, k.bad_code, k.malformed),
        (1, 1, 1, 1)
    );
    assert!(c.poll_event().is_none());
    // The genuine answer still completes it.
    c.handle_datagram(
        t.socket,
        addr(1812),
        &answer(&t.payload, Code::AccessReject, SECRET_A, true),
        now,
    );
    assert_eq!(
        c.poll_event().unwrap().result.unwrap().packet.code,
        Code::AccessReject
    );
}

#[test]
fn retransmission_backoff_failover_and_dead_servers() {
    let t0 = Instant::now();
    let mut c = ClientCore::with_seed(config(), 3);
    c.submit(Service::Auth, pap_attrs(), t0);
    let first = c.poll_transmit().unwrap();
    // Retransmissions at +1 s and +1+2 s, same packet; then failover at +1+2+3 s.
    c.handle_timeout(t0 + Duration::from_millis(999));
    assert!(c.poll_transmit().is_none());
    let mut now = t0 + Duration::from_secs(1);
    c.handle_timeout(now);
    assert_eq!(c.poll_transmit().unwrap(), first);
    assert_eq!(c.poll_timeout(), Some(now + Duration::from_secs(2)));
    now += Duration::from_secs(2);
    c.handle_timeout(now);
    assert_eq!(c.poll_transmit().unwrap(), first);
    assert_eq!(c.poll_timeout(), Some(now + Duration::from_secs(3)));
    now += Duration::from_secs(3);
    c.handle_timeout(now);
    let second = c.poll_transmit().unwrap();
    assert_eq!(second.destination, addr(2812));
    verify_request(&second.payload, SECRET_B, true).unwrap();
    assert_eq!(c.counters().failovers, 1);
    assert!(!c.is_dead(addr(1812), now));
    // A late answer from the first server no longer matches.
    c.handle_datagram(
        first.socket,
        addr(1812),
        &answer(&first.payload, Code::AccessAccept, SECRET_A, true),
        now,
    );
    assert!(c.poll_event().is_none());
    // The second server times out too: the request fails.
    for _ in 0..3 {
        now = c.poll_timeout().unwrap();
        c.handle_timeout(now);
    }
    while c.poll_transmit().is_some() {}
    assert_eq!(c.poll_event().unwrap().result, Err(RequestError::Timeout));

    // Second request: the first server times out again, its second in a row: dead.
    c.submit(Service::Auth, pap_attrs(), now);
    for _ in 0..3 {
        now = c.poll_timeout().unwrap();
        c.handle_timeout(now);
    }
    assert!(c.is_dead(addr(1812), now));
    assert_eq!(c.counters().servers_marked_dead, 1);
    let mut last = None;
    while let Some(t) = c.poll_transmit() {
        last = Some(t);
    }
    let on_b = last.unwrap();
    assert_eq!(on_b.destination, addr(2812));
    c.handle_datagram(
        on_b.socket,
        addr(2812),
        &answer(&on_b.payload, Code::AccessAccept, SECRET_B, true),
        now,
    );
    assert!(c.poll_event().unwrap().result.is_ok());
    // While dead, new requests go straight to the second server.
    c.submit(Service::Auth, pap_attrs(), now);
    assert_eq!(c.poll_transmit().unwrap().destination, addr(2812));
    // After the hold-down the first server is tried first again.
    let later = now + Duration::from_secs(31);
    assert!(!c.is_dead(addr(1812), later));
    c.submit(Service::Auth, pap_attrs(), later);
    assert_eq!(c.poll_transmit().unwrap().destination, addr(1812));
}

#[test]
fn all_dead_still_tries() {
    let now = Instant::now();
    let mut cfg = config();
    cfg.auth_servers.truncate(1);
    cfg.dead_after = 1;
    let mut c = ClientCore::with_seed(cfg, 4);
    c.submit(Service::Auth, pap_attrs(), now);
    let mut t = now;
    for _ in 0..3 {
        t = c.poll_timeout().unwrap();
        c.handle_timeout(t);
    }
    assert_eq!(c.poll_event().unwrap().result, Err(RequestError::Timeout));
    assert!(c.is_dead(addr(1812), t));
    while c.poll_transmit().is_some() {}
    c.submit(Service::Auth, pap_attrs(), t);
    assert_eq!(c.poll_transmit().unwrap().destination, addr(1812));
}

#[test]
fn identifiers_sockets_and_queue() {
    let now = Instant::now();
    let mut cfg = config();
    cfg.max_sockets_per_server = 2;
    cfg.max_queue = 1;
    let mut c = ClientCore::with_seed(cfg, 5);
    let mut sent = Vec::new();
    for _ in 0..512 {
        c.submit(Service::Auth, pap_attrs(), now);
        sent.push(c.poll_transmit().unwrap());
    }
    let mut seen = std::collections::HashSet::new();
    for t in &sent {
        let p = Packet::new_checked(&t.payload[..]).unwrap();
        assert!(seen.insert((t.socket, p.identifier())));
    }
    assert_eq!(
        sent.iter().map(|t| t.socket).collect::<BTreeSet<_>>().len(),
        2
    );
    // Both sockets full: one waits, the next is refused.
    let queued = c.submit(Service::Auth, pap_attrs(), now);
    assert!(c.poll_transmit().is_none());
    let refused = c.submit(Service::Auth, pap_attrs(), now);
    assert_eq!(
        c.poll_event().unwrap(),
        Outcome {
            id: refused,
            result: Err(RequestError::QueueFull)
        }
    );
    // One answer frees an Identifier: the queued request goes out on it.
    let t = &sent[7];
    c.handle_datagram(
        t.socket,
        addr(1812),
        &answer(&t.payload, Code::AccessAccept, SECRET_A, true),
        now,
    );
    assert!(c.poll_event().unwrap().result.is_ok());
    let q = c.poll_transmit().unwrap();
    assert_eq!(q.socket, t.socket);
    assert_eq!(q.payload[1], t.payload[1]);
    c.handle_datagram(
        q.socket,
        addr(1812),
        &answer(&q.payload, Code::AccessAccept, SECRET_A, true),
        now,
    );
    assert_eq!(c.poll_event().unwrap().id, queued);
    assert_eq!(c.counters().queued, 1);
}

#[test]
fn accounting_request_authenticator_and_no_servers() {
    let now = Instant::now();
    let mut c = ClientCore::with_seed(config(), 6);
    c.submit(
        Service::Acct,
        vec![
            Attribute::integer(attr::ACCT_STATUS_TYPE, 1),
            Attribute::new(attr::ACCT_SESSION_ID, b"s1".to_vec()),
            Attribute::new(attr::MESSAGE_AUTHENTICATOR, [9; 16]),
        ],
        now,
    );
    let t = c.poll_transmit().unwrap();
    assert_eq!(t.destination, addr(1813));
    verify_request(&t.payload, SECRET_A, true).unwrap();
    let req = Repr::from_bytes(&t.payload).unwrap();
    assert_eq!(
        req.attributes
            .iter()
            .filter(|a| a.kind == attr::MESSAGE_AUTHENTICATOR)
            .count(),
        1
    );
    // FreeRADIUS answers accounting without Message-Authenticator: accepted by default.
    c.handle_datagram(
        t.socket,
        addr(1813),
        &answer(&t.payload, Code::AccountingResponse, SECRET_A, false),
        now,
    );
    assert!(c.poll_event().unwrap().result.is_ok());

    let mut cfg = config();
    cfg.acct_servers.clear();
    let mut c = ClientCore::with_seed(cfg, 7);
    c.submit(Service::Acct, vec![], now);
    assert_eq!(c.poll_event().unwrap().result, Err(RequestError::NoServers));
}

/// The driver's totals (what `/metrics` reads) follow the core's counters, and a client
/// spawned to replace another keeps counting into the same totals.
#[tokio::test]
async fn driver_totals_count_timeouts_and_failovers() {
    let silent_a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent_b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let server = |s: &std::net::UdpSocket| ServerConfig {
        address: s.local_addr().unwrap(),
        secret: SECRET_A.to_vec(),
    };
    let config = ClientConfig {
        auth_servers: vec![server(&silent_a), server(&silent_b)],
        initial_rto: Duration::from_millis(10),
        max_rto: Duration::from_millis(20),
        max_transmissions: 2,
        ..ClientConfig::default()
    };
    let client = RadiusClient::spawn(config.clone());
    let result = client.authenticate(pap_attrs()).await;
    assert_eq!(result.unwrap_err(), RequestError::Timeout);
    let totals = Arc::clone(client.totals());
    assert_eq!(Totals::get(&totals.server_timeouts), 2);
    assert_eq!(Totals::get(&totals.failovers), 1);
    assert_eq!(Totals::get(&totals.retransmissions), 2);
    assert_eq!(Totals::get(&totals.failed_requests), 1);

    let replacement = RadiusClient::spawn_sharing(config, Arc::clone(&totals));
    let result = replacement.authenticate(pap_attrs()).await;
    assert_eq!(result.unwrap_err(), RequestError::Timeout);
    assert_eq!(Totals::get(&totals.server_timeouts), 4);
    assert_eq!(Totals::get(&totals.failovers), 2);
    assert_eq!(Totals::get(&client.totals().failed_requests), 2);
}

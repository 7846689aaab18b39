#![no_main]
//! The RFC 5176 Dynamic Authorization server core: arbitrary datagrams from an allowed
//! client, raw and re-signed with the client's secret (so that the attribute rules are
//! reached), never panic; every answer verifies with the secret.
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use xlns_controlplane::radius::dae::{Client, NasIdentity, Received, Server, ServerConfig};
use xlns_controlplane::radius::wire;

const SECRET: &[u8] = b"fuzz-secret";

fuzz_target!(|data: &[u8]| {
    let mut server = Server::new(ServerConfig {
        clients: vec![Client {
            prefix: "192.0.2.0/24".parse().expect("prefix"),
            secret: SECRET.to_vec(),
            require_message_authenticator: false,
        }],
        nas: NasIdentity {
            identifier: Some(b"lns".to_vec()),
            ..NasIdentity::default()
        },
        require_event_timestamp: false,
        window: Duration::from_secs(300),
    });
    let from: SocketAddr = "192.0.2.1:3000".parse().expect("address");
    let now = Instant::now();
    let _ = server.handle(now, 0, from, data);
    let mut signed = data.to_vec();
    if wire::sign_request(&mut signed, SECRET).is_err() {
        return;
    }
    let authenticator: [u8; 16] = signed[4..20].try_into().expect("header checked");
    let answer = match server.handle(now, 0, from, &signed) {
        Received::Reply(answer) => answer,
        // None: the echoed Proxy-States leave no room for the answer (4096 octets).
        Received::Apply(pending, _) => match server.answer(&pending, Ok(1)) {
            Some(answer) => answer,
            None => return,
        },
        Received::Ignored(_) => return,
    };
    wire::verify_response(&answer, &authenticator, SECRET, true).expect("answer verifies");
});

//! The xlnsd PPP glue ([`PppSessions`] with the shell's [`Gate`]) against LAC-role
//! endpoints whose subscribers run the client role of the same PPP core, with a virtual
//! clock: sessions come up with pool addresses, a wrong password gets a CDN with the
//! RFC 3145 cause, an exhausted pool gets result code 4, a silent peer is found by the LCP
//! echo, a peer that terminated LCP is cleared by its LAC's CDN or by ours after the wait,
//! and on every path the PPP state and the addresses are freed. The harness is
//! `support/sim.rs`.
#![allow(clippy::unwrap_used, clippy::panic)]

#[path = "support/sim.rs"]
mod sim;

use std::time::Duration;

use sim::{Sim, cdn_result};
use xlns_controlplane::l2tp::endpoint::SessionKey;
use xlns_controlplane::ppp::session::DownReason;
use xlns_controlplane::shell::ppp::PEER_CDN_WAIT;

const USERS: &str = "user1 pw1\nuser2 pw2\nuser3 pw3\n";

const CONFIG: &str = r#"
[ppp]
lcp_echo_interval = "1s"
lcp_echo_failures = 3
gateway = "10.0.0.1"
dns = ["192.0.2.53"]

[[pool]]
name = "p"
cidr = "10.0.0.0/29"

[[lac]]
name = "any"
"#;

#[test]
fn sessions_up_wrong_password_refused_then_everything_freed() {
    let mut sim = Sim::new(CONFIG, USERS);
    sim.dial(&[("user1", "pw1"), ("user2", "wrong"), ("user3", "pw3")]);
    sim.run_for(Duration::from_secs(5));
    let mut up: Vec<_> = sim.calls.values().filter_map(|c| c.address).collect();
    up.sort();
    assert_eq!(up.len(), 2, "{:?}", sim.calls);
    assert_ne!(up[0], up[1]);
    assert!(
        up.iter()
            .all(|a| a.octets()[..3] == [10, 0, 0] && a.octets()[3] != 1)
    );
    assert_eq!(sim.pool_used(), 2);
    // The wrong password: the LAC got a CDN, result 3 with the RFC 3145 cause 16.
    let refused: Vec<_> = sim.calls.values().filter(|c| c.address.is_none()).collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(cdn_result(&refused[0].cdn), Some((3, Some(16))));
    assert_eq!(refused[0].ppp_down, Some(DownReason::AuthFailed));
    assert_eq!(sim.ppp.stats().auth_failures, 1);
    assert_eq!(sim.ppp.len(), 2);

    // The subscribers hang up: LCP Terminate-Request, the LAC clears the calls.
    let keys: Vec<SessionKey> = sim.clients.keys().copied().collect();
    for key in keys {
        let now = sim.now;
        sim.clients
            .get_mut(&key)
            .unwrap()
            .close(now, DownReason::Admin);
    }
    sim.run_for(Duration::from_secs(5));
    sim.assert_all_freed();
    assert_eq!(sim.ppp.stats().sessions_down, 3);
}

#[test]
fn exhausted_pool_refuses_with_result_4() {
    // A /30 holds .1 and .2; .1 is the gateway: one address.
    let config = CONFIG.replace("10.0.0.0/29", "10.0.0.0/30");
    let mut sim = Sim::new(&config, USERS);
    sim.dial(&[("user1", "pw1"), ("user2", "pw2")]);
    sim.run_for(Duration::from_secs(5));
    let up = sim.calls.values().filter(|c| c.address.is_some()).count();
    assert_eq!(up, 1, "{:?}", sim.calls);
    let refused = sim.calls.values().find(|c| c.address.is_none()).unwrap();
    // RFC 2661 §4.4.2 result 4, temporary lack of facilities; RFC 3145 cause 19.
    assert_eq!(cdn_result(&refused.cdn), Some((4, Some(19))));
    assert_eq!(sim.ppp.stats().address_unavailable, 1);
    assert_eq!(sim.pool_used(), 1);
}

#[test]
fn silent_peer_is_found_by_the_lcp_echo() {
    let mut sim = Sim::new(CONFIG, USERS);
    sim.dial(&[("user1", "pw1")]);
    sim.run_for(Duration::from_secs(3));
    assert_eq!(sim.pool_used(), 1);
    let dead_at = sim.now;
    sim.lac_dead = true;
    // Echo interval 1 s, 3 failures: given up within 4 s.
    while !sim.ppp.is_empty() {
        sim.run_for(Duration::from_millis(100));
        assert!(sim.now - dead_at <= Duration::from_secs(4), "not detected");
    }
    assert!(sim.now - dead_at >= Duration::from_secs(2));
    assert_eq!(sim.ppp.stats().echo_timeouts, 1);
    sim.assert_all_freed();
}

#[test]
fn lcp_terminate_waits_for_the_lac_then_sends_the_cdn() {
    let mut sim = Sim::new(CONFIG, USERS);
    sim.lac_sends_cdn = false;
    sim.dial(&[("user1", "pw1")]);
    sim.run_for(Duration::from_secs(3));
    let key = *sim.clients.keys().next().unwrap();
    let closed_at = sim.now;
    sim.clients
        .get_mut(&key)
        .unwrap()
        .close(closed_at, DownReason::Admin);
    sim.run_for(Duration::from_secs(1));
    // The address is back at once; the session lingers for the LAC's CDN.
    assert_eq!(sim.pool_used(), 0);
    assert_eq!(sim.ppp.len(), 1);
    assert_eq!(sim.calls[&key].cdn, None);
    sim.run_for(PEER_CDN_WAIT);
    // Nobody cleared the call: we did, result 1 with cause 3 (normal disconnection).
    assert_eq!(cdn_result(&sim.calls[&key].cdn), Some((1, Some(3))));
    sim.assert_all_freed();
}

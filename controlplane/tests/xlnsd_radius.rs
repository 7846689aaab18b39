//! xlnsd's RADIUS authentication ([`Aaa`] with [`PppSessions`]) against a real
//! FreeRADIUS: LAC-role endpoints whose subscribers run the client role of the PPP core
//! (virtual clock for PPP, real time for RADIUS) authenticate with PAP, CHAP-MD5 and
//! MS-CHAPv2; the Access-Accept's Framed-IP-Address, Framed-Pool, DNS, Session-Timeout and
//! Framed-Route are applied or kept; a wrong password is rejected with a CDN; a LAC with
//! `aaa = "local"` uses the users file instead; a Dynamic Authorization change (RFC 5176
//! CoA) replaces the live session's Session-Timeout, Class and rate limits. The harness
//! is `support/sim.rs`.
#![allow(clippy::unwrap_used, clippy::panic)]

#[path = "support/freeradius.rs"]
mod freeradius;
#[path = "support/sim.rs"]
mod sim;

use std::net::Ipv4Addr;
use std::time::Duration;

use freeradius::{FreeRadius, SECRET};
use sim::{Sim, cdn_result};
use xlns_controlplane::l2tp::endpoint::SessionKey;
use xlns_controlplane::ppp::session::DownReason;
use xlns_controlplane::radius::dae::{Change, RateLimits, VendorRate, vendor};

/// The local users file: papuser has another password here than in FreeRADIUS.
const USERS: &str = "papuser wrong-local\n";

fn config(fr: &FreeRadius, method: &str, lac_aaa: &str) -> String {
    format!(
        r#"
[ppp]
auth = ["{method}"]
lcp_echo_interval = "30s"
gateway = "10.11.12.1"
dns = ["192.0.2.53"]

[[pool]]
name = "p"
cidr = "10.11.12.0/24"

[[pool]]
name = "gold"
cidr = "10.20.0.0/29"

[[pool]]
name = "silver"
cidr = "10.30.0.0/29"

[radius]
auth = "radius"
nas_identifier = "xlns-sim"
timeout = "500ms"
[[radius.auth_server]]
address = "{}"
secret = "{SECRET}"

[[lac]]
name = "any"
aaa = "{lac_aaa}"
"#,
        fr.auth
    )
}

#[test]
fn pap_chap_and_mschapv2_through_freeradius_with_reply_attributes() {
    let Some(fr) = FreeRadius::start("xlnsd-auth") else {
        return;
    };
    let cases = [
        (
            "pap",
            "papuser",
            "pap-pass",
            Some(Ipv4Addr::new(10, 11, 12, 13)),
        ),
        ("chap-md5", "chapuser", "chap-pass", None),
        (
            "mschap-v2",
            "msuser",
            "ms-pass",
            Some(Ipv4Addr::new(10, 11, 12, 14)),
        ),
    ];
    for (method, user, password, fixed) in cases {
        let mut sim = Sim::new(&config(&fr, method, "radius"), USERS);
        sim.dial(&[(user, password), (user, "wrong")]);
        sim.run_for(Duration::from_secs(5));
        let up: Vec<_> = sim
            .calls
            .iter()
            .filter(|(_, c)| c.address.is_some())
            .collect();
        assert_eq!(up.len(), 1, "{method}: {:?}", sim.calls);
        let address = up[0].1.address.unwrap();
        let lns_keys: Vec<SessionKey> = sim.ppp.keys().collect();
        assert_eq!(lns_keys.len(), 1, "{method}");
        let key = &lns_keys[0];
        match fixed {
            Some(a) => assert_eq!(address, a, "{method}: Framed-IP-Address"),
            // chapuser: Framed-Pool "gold".
            None => assert_eq!(address.octets()[..3], [10, 20, 0], "{method}: Framed-Pool"),
        }
        let reply = sim.ppp.reply_attributes(*key).unwrap();
        assert!(reply.session_timeout.is_some(), "{method}: {reply:?}");
        assert!(!reply.class.is_empty(), "{method}: Class kept");
        assert_eq!(sim.ppp.acct_session_id(*key).map(str::len), Some(16));
        if method == "pap" {
            assert_eq!(reply.routes.len(), 1, "Framed-Route kept");
            assert_eq!(reply.mtu, Some(1400));
            assert_eq!(
                sim.calls[up[0].0].dns,
                [
                    Some(Ipv4Addr::new(198, 51, 100, 53)),
                    Some(Ipv4Addr::new(198, 51, 100, 54))
                ],
                "MS-Primary/Secondary-DNS-Server offered in IPCP"
            );
        }
        let refused: Vec<_> = sim.calls.values().filter(|c| c.address.is_none()).collect();
        assert_eq!(refused.len(), 1, "{method}");
        assert_eq!(
            refused[0].ppp_down,
            Some(DownReason::AuthFailed),
            "{method}"
        );
        assert_eq!(cdn_result(&refused[0].cdn), Some((3, Some(16))), "{method}");
        assert_eq!(sim.aaa().stats().accepts, 1, "{method}");
        assert_eq!(sim.aaa().stats().rejects, 1, "{method}");
    }
}

#[test]
fn idle_timeout_from_the_access_accept_ends_the_session() {
    let Some(fr) = FreeRadius::start("xlnsd-timeout") else {
        return;
    };
    let mut sim = Sim::new(&config(&fr, "pap", "radius"), USERS);
    sim.dial(&[("papuser", "pap-pass")]);
    sim.run_for(Duration::from_secs(5));
    assert_eq!(sim.ppp.len(), 1);
    // papuser: Idle-Timeout = 600 (Session-Timeout = 3600); no traffic flows.
    sim.run_for(Duration::from_secs(590));
    assert_eq!(sim.ppp.len(), 1, "still up before the Idle-Timeout");
    sim.run_for(Duration::from_secs(20));
    let call = sim.calls.values().next().unwrap();
    assert_eq!(cdn_result(&call.cdn).map(|c| c.0), Some(3), "{:?}", call);
    assert!(sim.ppp.is_empty());
}

#[test]
fn lac_with_aaa_local_uses_the_users_file() {
    let Some(fr) = FreeRadius::start("xlnsd-local") else {
        return;
    };
    let mut sim = Sim::new(&config(&fr, "pap", "local"), USERS);
    // The users file says "wrong-local" for papuser; RADIUS is not asked.
    sim.dial(&[("papuser", "wrong-local"), ("papuser", "pap-pass")]);
    sim.run_for(Duration::from_secs(5));
    let up: Vec<_> = sim.calls.values().filter_map(|c| c.address).collect();
    assert_eq!(up.len(), 1, "{:?}", sim.calls);
    assert_eq!(up[0].octets()[..3], [10, 11, 12]);
    assert_eq!(sim.aaa().stats().requests, 0);
}

#[test]
fn coa_change_replaces_session_timeout_class_and_rate_limits() {
    let Some(fr) = FreeRadius::start("xlnsd-coa") else {
        return;
    };
    let mut sim = Sim::new(&config(&fr, "pap", "radius"), USERS);
    sim.dial(&[("papuser", "pap-pass")]);
    sim.run_for(Duration::from_secs(5));
    let key = sim.ppp.keys().next().unwrap();
    let id = sim.ppp.acct_session_id(key).unwrap().to_owned();
    assert_eq!(sim.ppp.session_by_acct_session_id(id.as_bytes()), Some(key));
    assert_eq!(sim.ppp.session_by_acct_session_id(b"nope"), None);
    // papuser: Session-Timeout 3600, Idle-Timeout 600, Class "class-pap".
    let rates = RateLimits {
        filter_ids: vec![b"10M".to_vec()],
        vendor: vec![VendorRate {
            vendor: vendor::MIKROTIK,
            kind: vendor::MIKROTIK_RATE_LIMIT,
            value: b"10M/20M".to_vec(),
        }],
    };
    let change = Change {
        session_timeout: Some(Some(Duration::from_secs(60))),
        idle_timeout: Some(None),
        class: Some(vec![b"coa-class".to_vec()]),
        rate_limits: Some(rates.clone()),
    };
    assert!(sim.ppp.change_authorization(key, &change));
    let reply = sim.ppp.reply_attributes(key).unwrap();
    assert_eq!(reply.session_timeout, Some(Duration::from_secs(60)));
    assert_eq!(reply.idle_timeout, None);
    assert_eq!(reply.class, vec![b"coa-class".to_vec()]);
    assert_eq!(sim.ppp.rate_limits(key), Some(&rates));
    // Counted from Up (about 5 s ago): still up at 50 s, gone by 60 s. The Idle-Timeout
    // (600 s from the Access-Accept) was removed, so nothing else ends it.
    sim.run_for(Duration::from_secs(50));
    assert_eq!(sim.ppp.len(), 1, "ended before the new Session-Timeout");
    sim.run_for(Duration::from_secs(10));
    assert!(sim.ppp.is_empty(), "outlived the new Session-Timeout");
    let call = sim.calls.values().next().unwrap();
    assert_eq!(call.ppp_down, Some(DownReason::LcpTerminated), "{call:?}");
    assert_eq!(cdn_result(&call.cdn).map(|c| c.0), Some(3));
    // A session gone is not changed, nor found.
    assert!(!sim.ppp.change_authorization(key, &change));
    assert_eq!(sim.ppp.session_by_acct_session_id(id.as_bytes()), None);
}

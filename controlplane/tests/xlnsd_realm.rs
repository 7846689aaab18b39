//! Per-realm AAA (`[[realm]]`, issue #7) in xlnsd's PPP with a real FreeRADIUS: the LAC
//! and `[radius] auth` say "local", but `isp.example` names go to RADIUS with the realm
//! stripped (FreeRADIUS knows `papuser`, never sees `papuser@isp.example`), matched
//! case-insensitively; `corp.example` names are stripped and verified from the users
//! file; names without a realm keep the LAC's choice. The harness is `support/sim.rs`
//! (LAC-role endpoint, PPP client role, virtual clock for PPP, real time for RADIUS).
#![allow(clippy::unwrap_used, clippy::panic)]

#[path = "support/freeradius.rs"]
mod freeradius;
#[path = "support/sim.rs"]
mod sim;

use std::net::Ipv4Addr;
use std::time::Duration;

use freeradius::{FreeRadius, SECRET};
use sim::Sim;
use xlns_controlplane::ppp::session::DownReason;

/// The local users file: papuser has another password here than in FreeRADIUS.
const USERS: &str = "papuser wrong-local\nbob bob-pass\n";

fn config(fr: &FreeRadius) -> String {
    format!(
        r#"
[ppp]
auth = ["pap"]
lcp_echo_interval = "30s"
gateway = "10.11.12.1"

[[pool]]
name = "p"
cidr = "10.11.12.0/24"

[radius]
auth = "local"
nas_identifier = "xlns-sim"
timeout = "500ms"
[[radius.auth_server]]
address = "{}"
secret = "{SECRET}"

[[lac]]
name = "any"
aaa = "local"

[[realm]]
name = "isp.example"
aaa = "radius"
strip = true

[[realm]]
name = "corp.example"
aaa = "local"
strip = true
"#,
        fr.auth
    )
}

/// Dials one subscriber: its address (or why PPP went down) and the Access-Requests sent.
fn dial(fr: &FreeRadius, user: &str, password: &str) -> (Result<Ipv4Addr, DownReason>, u64) {
    let mut sim = Sim::new(&config(fr), USERS);
    sim.dial(&[(user, password)]);
    sim.run_for(Duration::from_secs(5));
    let call = sim.calls.values().next().unwrap();
    let outcome = match (call.address, &call.ppp_down) {
        (Some(a), _) => Ok(a),
        (None, Some(reason)) => Err(reason.clone()),
        (None, None) => panic!("{user}: neither up nor down: {call:?}"),
    };
    (outcome, sim.aaa().stats().requests)
}

#[test]
fn realm_chooses_radius_or_local_and_strips_the_name() {
    let Some(fr) = FreeRadius::start("xlnsd-realm") else {
        return;
    };
    // RADIUS, stripped: FreeRADIUS' papuser (Framed-IP-Address 10.11.12.13).
    assert_eq!(
        dial(&fr, "papuser@isp.example", "pap-pass"),
        (Ok(Ipv4Addr::new(10, 11, 12, 13)), 1)
    );
    // The realm matches case-insensitively; FreeRADIUS rejects the wrong password.
    assert_eq!(
        dial(&fr, "papuser@ISP.Example", "wrong-local"),
        (Err(DownReason::AuthFailed), 1)
    );
    // Local, stripped: the users file's bob.
    let (bob, requests) = dial(&fr, "bob@corp.example", "bob-pass");
    assert!(
        bob.as_ref().is_ok_and(|a| a.octets()[..3] == [10, 11, 12]),
        "{bob:?}"
    );
    assert_eq!(requests, 0);
    // No realm: the LAC's "local"; an unknown realm too (and it is not stripped).
    let (local, requests) = dial(&fr, "papuser", "wrong-local");
    assert!(local.is_ok(), "{local:?}");
    assert_eq!(requests, 0);
    assert_eq!(
        dial(&fr, "bob@other.example", "bob-pass"),
        (Err(DownReason::AuthFailed), 0)
    );
    // FreeRADIUS saw the stripped name only.
    let log = fr.log();
    assert!(log.contains("User-Name = \"papuser\""), "{log}");
    assert!(!log.contains("isp.example"), "{log}");
    assert!(!log.contains("ISP.Example"), "{log}");
}

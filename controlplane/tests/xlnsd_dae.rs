//! xlnsd's RFC 5176 Dynamic Authorization server against FreeRADIUS' `radclient`: a
//! running xlnsd authenticates PPP sessions of a LAC over UDP through a real FreeRADIUS,
//! then `radclient` sends Disconnect-Requests (by Acct-Session-Id, by User-Name: the LAC
//! sees the CDN, radclient the ACK), a CoA-Request that shortens Session-Timeout (the
//! session then ends when it expires), requests for an unknown session (NAK 503) and with
//! an unsupported attribute (NAK 401), and requests that must go unanswered: from a source
//! not on the allow-list, and with a wrong secret; `/metrics` counts each.
#![allow(clippy::unwrap_used, clippy::panic)]

#[path = "support/freeradius.rs"]
mod freeradius;
#[path = "support/live.rs"]
mod live;

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use freeradius::{FreeRadius, SECRET};
use live::{
    DEADLINE, Daemon, Lac, cdn_result, free_udp_port, promtool_check, sample, scrape_until, value,
};

const DAE_SECRET: &str = "dae-test-secret";
/// papuser's and msuser's Framed-IP-Address in FreeRADIUS' users file.
const PAP_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 11, 12, 13);
const MS_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 11, 12, 14);

struct Lab {
    _fr: FreeRadius,
    xlnsd: Daemon,
    lac: Lac,
    dae: SocketAddr,
    /// When the LAC saw every session up.
    up_at: Instant,
}

impl Lab {
    /// FreeRADIUS, xlnsd with `[radius]` and `[dae]`, and a LAC with papuser, chapuser and
    /// msuser up (PAP).
    fn start(name: &str) -> Option<Lab> {
        let fr = FreeRadius::start(name)?;
        let l2tp: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
        let dae: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
        let config = format!(
            r#"
[l2tp]
listen = "{l2tp}"

[ppp]
auth = ["pap"]
gateway = "10.11.12.1"

[[pool]]
name = "p"
cidr = "10.11.12.0/24"

[[pool]]
name = "gold"
cidr = "10.20.0.0/29"

[[pool]]
name = "silver"
cidr = "10.30.0.0/29"

[[lac]]
name = "lab"

[radius]
auth = "radius"
nas_identifier = "xlns-dae"
nas_ip_address = "127.0.0.1"
timeout = "500ms"
[[radius.auth_server]]
address = "{}"
secret = "{SECRET}"

[dae]
listen = "{dae}"
[[dae.client]]
address = "127.0.0.1"
secret = "{DAE_SECRET}"
"#,
            fr.auth
        );
        let xlnsd = Daemon::start(name, l2tp, &config);
        let mut lac = Lac::new(l2tp);
        lac.dial(&[
            ("papuser", "pap-pass"),
            ("chapuser", "chap-pass"),
            ("msuser", "ms-pass"),
        ]);
        Some(Lab {
            _fr: fr,
            xlnsd,
            lac,
            dae,
            up_at: Instant::now(),
        })
    }

    /// xlnsd's Acct-Session-Id of the session with `address` (xlnsctl).
    fn acct_session_id(&self, address: Ipv4Addr) -> String {
        let a = address.to_string();
        let rows = self.xlnsd.ctl_json(&["show", "sessions", "--address", &a]);
        let row = &rows["rows"][0];
        let key = format!("{}/{}", row["tunnel"], row["session"]);
        let one = self.xlnsd.ctl_json(&["show", "session", &key]);
        one["rows"][0]["acct_session_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no acct_session_id: {one}"))
            .to_owned()
    }

    /// Sends `attributes` with radclient (`command`: disconnect or coa) while the LAC
    /// keeps running; radclient's output.
    fn radclient(&mut self, command: &str, secret: &str, attributes: &str) -> String {
        let mut child = Command::new("radclient")
            .args(["-x", "-r", "2", "-t", "1"])
            .arg(self.dae.to_string())
            .args([command, secret])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("radclient (apt-get install freeradius-utils)");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(attributes.as_bytes())
            .unwrap();
        let deadline = Instant::now() + DEADLINE;
        while child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "radclient hangs");
            self.lac.pump(Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Pumps the LAC until a scrape has the sample `last` (the last thing the test did
    /// counted: the snapshot holds all before it too); that scrape, its format checked.
    fn metrics(&mut self, last: &str) -> String {
        let text = scrape_until(&mut [&mut self.lac], &self.xlnsd.metrics, |t| {
            sample(t, last).is_some_and(|n| n >= 1.0)
        });
        promtool_check(&text);
        text
    }
}

fn received(out: &str, code: &str) -> bool {
    out.lines()
        .any(|l| l.starts_with("Received ") && l.contains(code))
}

#[test]
fn disconnect_by_acct_session_id_and_by_user_name_ends_live_sessions() {
    let Some(mut lab) = Lab::start("dae-disconnect") else {
        return;
    };
    let pap = lab.lac.key_of(PAP_ADDRESS);
    let ms = lab.lac.key_of(MS_ADDRESS);
    let id = lab.acct_session_id(PAP_ADDRESS);
    assert_eq!(id.len(), 16);

    // By Acct-Session-Id, with our NAS identification.
    let out = lab.radclient(
        "disconnect",
        DAE_SECRET,
        &format!(
            "Acct-Session-Id = \"{id}\"\nNAS-Identifier = \"xlns-dae\"\n\
             NAS-IP-Address = 127.0.0.1\nProxy-State = 0x6162\nMessage-Authenticator = 0x00\n"
        ),
    );
    assert!(received(&out, "Disconnect-ACK"), "{out}");
    assert!(out.contains("Proxy-State = 0x6162"), "echoed: {out}");
    assert!(
        lab.lac.pump_until(DEADLINE, |l| l.down.contains_key(&pap)),
        "no CDN for papuser"
    );
    assert_eq!(
        cdn_result(lab.lac.down.get(&pap)),
        Some(3),
        "administrative"
    );
    assert_eq!(lab.lac.down.len(), 1, "only papuser: {:?}", lab.lac.down);

    // By User-Name.
    let out = lab.radclient(
        "disconnect",
        DAE_SECRET,
        "User-Name = \"msuser\"\nMessage-Authenticator = 0x00\n",
    );
    assert!(received(&out, "Disconnect-ACK"), "{out}");
    assert!(
        lab.lac.pump_until(DEADLINE, |l| l.down.contains_key(&ms)),
        "no CDN for msuser"
    );
    assert_eq!(cdn_result(lab.lac.down.get(&ms)), Some(3));

    // The session is gone: the same Acct-Session-Id now finds nothing (a new request:
    // another Identifier).
    let out = lab.radclient(
        "disconnect",
        DAE_SECRET,
        &format!("Acct-Session-Id = \"{id}\"\nMessage-Authenticator = 0x00\n"),
    );
    assert!(received(&out, "Disconnect-NAK"), "{out}");
    assert!(
        out.contains("Error-Cause = Session-Context-Not-Found"),
        "{out}"
    );

    // An attribute a Disconnect-Request must not carry: 401.
    let out = lab.radclient(
        "disconnect",
        DAE_SECRET,
        "User-Name = \"chapuser\"\nSession-Timeout = 10\nMessage-Authenticator = 0x00\n",
    );
    assert!(received(&out, "Disconnect-NAK"), "{out}");
    assert!(out.contains("Error-Cause = Unsupported-Attribute"), "{out}");
    // Another NAS: 403.
    let out = lab.radclient(
        "coa",
        DAE_SECRET,
        "User-Name = \"chapuser\"\nNAS-Identifier = \"other-lns\"\nMessage-Authenticator = 0x00\n",
    );
    assert!(received(&out, "CoA-NAK"), "{out}");
    assert!(
        out.contains("Error-Cause = NAS-Identification-Mismatch"),
        "{out}"
    );
    assert_eq!(lab.lac.down.len(), 2, "chapuser still up");

    let text =
        lab.metrics("xlns_dae_requests_total{type=\"coa\",outcome=\"nak\",error_cause=\"403\"}");
    let sample = |t: &str, o: &str, c: &str| {
        value(
            &text,
            &format!("xlns_dae_requests_total{{type=\"{t}\",outcome=\"{o}\",error_cause=\"{c}\"}}"),
        )
    };
    assert_eq!(sample("disconnect", "ack", "none"), 2.0);
    assert_eq!(sample("disconnect", "nak", "503"), 1.0);
    assert_eq!(sample("disconnect", "nak", "401"), 1.0);
    assert_eq!(sample("coa", "nak", "403"), 1.0);
    assert_eq!(value(&text, "xlns_ppp_down_total{reason=\"admin\"}"), 2.0);
}

#[test]
fn coa_session_timeout_ends_the_session_when_it_expires() {
    let Some(mut lab) = Lab::start("dae-coa") else {
        return;
    };
    let ms = lab.lac.key_of(MS_ADDRESS);
    let pap = lab.lac.key_of(PAP_ADDRESS);
    let id = lab.acct_session_id(MS_ADDRESS);
    // msuser's Access-Accept said Session-Timeout 1800; the CoA makes it end 5 s from now
    // (Session-Timeout counts from Up).
    let timeout = lab.up_at.elapsed().as_secs() + 5;
    let asked = Instant::now();
    let out = lab.radclient(
        "coa",
        DAE_SECRET,
        &format!(
            "Acct-Session-Id = \"{id}\"\nSession-Timeout = {timeout}\nIdle-Timeout = 3600\n\
             Filter-Id = \"rate-10M\"\nMessage-Authenticator = 0x00\n"
        ),
    );
    assert!(received(&out, "CoA-ACK"), "{out}");
    lab.lac.pump(Duration::from_secs(1));
    assert!(!lab.lac.down.contains_key(&ms), "ended too early");
    assert!(
        lab.lac
            .pump_until(Duration::from_secs(10), |l| l.down.contains_key(&ms)),
        "the session outlived its new Session-Timeout"
    );
    assert!(asked.elapsed() < Duration::from_secs(10));
    assert_eq!(cdn_result(lab.lac.down.get(&ms)), Some(3));
    assert!(!lab.lac.down.contains_key(&pap), "papuser untouched");

    // Unknown session: 503; an attribute we do not support: 401.
    let out = lab.radclient(
        "coa",
        DAE_SECRET,
        "User-Name = \"nobody\"\nSession-Timeout = 5\nMessage-Authenticator = 0x00\n",
    );
    assert!(received(&out, "CoA-NAK"), "{out}");
    assert!(
        out.contains("Error-Cause = Session-Context-Not-Found"),
        "{out}"
    );
    let out = lab.radclient(
        "coa",
        DAE_SECRET,
        "User-Name = \"papuser\"\nFramed-MTU = 1400\nMessage-Authenticator = 0x00\n",
    );
    assert!(received(&out, "CoA-NAK"), "{out}");
    assert!(out.contains("Error-Cause = Unsupported-Attribute"), "{out}");

    let text =
        lab.metrics("xlns_dae_requests_total{type=\"coa\",outcome=\"nak\",error_cause=\"401\"}");
    assert_eq!(
        value(
            &text,
            "xlns_dae_requests_total{type=\"coa\",outcome=\"ack\",error_cause=\"none\"}"
        ),
        1.0
    );
    assert_eq!(
        value(&text, "xlns_ppp_down_total{reason=\"session-timeout\"}"),
        1.0
    );
}

#[test]
fn unknown_clients_and_wrong_secrets_are_ignored_and_counted() {
    let Some(mut lab) = Lab::start("dae-ignored") else {
        return;
    };
    // From 127.0.0.2: not on the allow-list (127.0.0.1 only).
    let out = lab.radclient(
        "disconnect",
        DAE_SECRET,
        "User-Name = \"papuser\"\nPacket-Src-IP-Address = 127.0.0.2\n\
         Message-Authenticator = 0x00\n",
    );
    assert!(out.contains("No reply from server"), "{out}");
    // A wrong secret.
    let out = lab.radclient(
        "disconnect",
        "not-the-secret",
        "User-Name = \"papuser\"\nMessage-Authenticator = 0x00\n",
    );
    assert!(out.contains("No reply from server"), "{out}");
    // No Message-Authenticator: required (BlastRADIUS).
    let out = lab.radclient("disconnect", DAE_SECRET, "User-Name = \"papuser\"\n");
    assert!(out.contains("No reply from server"), "{out}");
    lab.lac.pump(Duration::from_millis(500));
    assert!(lab.lac.down.is_empty(), "{:?}", lab.lac.down);

    let text = lab.metrics("xlns_dae_ignored_total{reason=\"missing_message_authenticator\"}");
    // radclient -r retransmits: at least one datagram of each was counted.
    for reason in [
        "unknown_client",
        "bad_authenticator",
        "missing_message_authenticator",
    ] {
        let n = value(
            &text,
            &format!("xlns_dae_ignored_total{{reason=\"{reason}\"}}"),
        );
        assert!(n >= 1.0, "{reason}: {n}");
    }
    assert_eq!(
        value(
            &text,
            "xlns_dae_requests_total{type=\"disconnect\",outcome=\"ack\",error_cause=\"none\"}"
        ),
        0.0
    );
}

//! Interop of xlnsd's RADIUS with the real Linux client and a real FreeRADIUS (issue #7):
//! the peer-vm guest (xl2tpd + pppd, `../shared/peer-vm`) authenticates through FreeRADIUS
//! with PAP, CHAP-MD5 and MS-CHAPv2 and comes up with the Framed-IP-Address FreeRADIUS
//! gives; and a `radclient` Disconnect-Request to xlnsd's RFC 5176 server ends the guest's
//! session (the guest sees its PPP interface go, xlnsd logs the CDN, radclient gets the
//! ACK).
//!
//! FreeRADIUS and radclient run inside the lab namespace beside xlnsd: the `--lns-cmd`
//! script of each run brings up the namespace's loopback, starts FreeRADIUS with the
//! configuration written by `support/freeradius.rs`, then `deploy/lab/peer-vm/start.sh`
//! with the lab profile plus `[radius]` and `[dae]`.
//!
//! Needs root, the guest image and FreeRADIUS; see `support/peer_vm.rs`
//! (`XLNS_SKIP_INTEROP=1` skips). The guest is global: run under
//! `flock /tmp/xlns-peervm.lock cargo test --test interop_radius`.
#![allow(clippy::unwrap_used, clippy::panic)]

#[path = "support/referee.rs"]
mod referee;

#[path = "support/peer_vm.rs"]
mod peer_vm;

#[path = "support/freeradius.rs"]
mod freeradius;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use freeradius::{Prepared, SECRET, freeradius_binary};

const DAE_SECRET: &str = "dae-lab-secret";
const DAE_PORT: u16 = 3799;

/// FreeRADIUS' users: one per method, each with a fixed address in the lab pool.
const USERS: &str = r#"rpap Cleartext-Password := "rpap-pw"
	Framed-IP-Address = 10.255.100.201,
	Session-Timeout = 3600,
	Class = "interop-pap"

rchap Cleartext-Password := "rchap-pw"
	Framed-IP-Address = 10.255.100.202,
	Class = "interop-chap"

rms Cleartext-Password := "rms-pw"
	Framed-IP-Address = 10.255.100.203,
	Class = "interop-ms"
"#;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Writes FreeRADIUS' configuration, xlnsd's (the lab profile with `[radius]` and
/// `[dae]`) and the `--lns-cmd` script that starts both in the namespace; `extra` runs
/// in the background before xlnsd starts. Returns the script and FreeRADIUS' directory.
fn lab(name: &str, extra: &str) -> (PathBuf, PathBuf) {
    let dir = root().join("target/interop");
    std::fs::create_dir_all(&dir).unwrap();
    let dir = dir.canonicalize().unwrap();
    let fr = Prepared::write(&dir, name, USERS);
    let lab = root().join("deploy/lab/peer-vm").canonicalize().unwrap();
    let users = lab.join("users");
    let text = std::fs::read_to_string(lab.join("xlnsd.toml"))
        .unwrap()
        .replace(
            "file = \"users\"",
            &format!("file = \"{}\"", users.display()),
        );
    let config = format!(
        "{text}\n[radius]\nauth = \"radius\"\nnas_identifier = \"xlns-lab\"\ntimeout = \"1s\"\n\
         [[radius.auth_server]]\naddress = \"127.0.0.1:{}\"\nsecret = \"{SECRET}\"\n\n\
         [dae]\nlisten = \"127.0.0.1:{DAE_PORT}\"\n[[dae.client]]\naddress = \"127.0.0.1\"\n\
         secret = \"{DAE_SECRET}\"\n",
        fr.auth_port
    );
    let config_path = fr.dir.join("xlnsd.toml");
    std::fs::write(&config_path, config).unwrap();
    let bin = freeradius_binary().unwrap();
    let d = fr.dir.display();
    let script = format!(
        "#!/usr/bin/env bash\nset -e\nip link set lo up\n\
         {bin} -f -X -d {d} >{d}/radiusd.log 2>&1 &\n\
         for i in $(seq 200); do grep -q 'Ready to process requests' {d}/radiusd.log && break; sleep 0.1; done\n\
         {extra}\n\
         XLNSD_CONFIG={} exec {}\n",
        config_path.display(),
        lab.join("start.sh").display(),
        bin = bin.display(),
    );
    let script_path = fr.dir.join("lns.sh");
    std::fs::write(&script_path, script).unwrap();
    std::fs::set_permissions(
        &script_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    (script_path, fr.dir)
}

/// The address of the session that came up.
fn up_address(run: &peer_vm::Run) -> Option<Ipv4Addr> {
    run.results
        .iter()
        .find(|l| l.starts_with("PEER-RESULT") && l.contains(" state=up"))
        .and_then(|l| l.split_whitespace().find_map(|w| w.strip_prefix("ip=")))
        .and_then(|ip| ip.parse().ok())
}

fn auth_run(name: &str, auth: &str, user: &str, password: &str, expect: (&str, Ipv4Addr)) {
    let Some(harness) = peer_vm::harness() else {
        return;
    };
    if freeradius::freeradius_binary().is_none() {
        return;
    }
    let (script, fr) = lab(name, "");
    let run = peer_vm::run(
        &harness,
        name,
        &[
            "--lns-cmd",
            script.to_str().unwrap(),
            "--auth",
            auth,
            "--user",
            user,
            "--password",
            password,
            "--set",
            "PING=no",
        ],
    );
    let radius_log = std::fs::read_to_string(fr.join("radiusd.log")).unwrap_or_default();
    let why = || format!("{}\nFreeRADIUS log in {}", run.dump(), fr.display());
    assert_eq!(run.status, 0, "{}", why());
    assert_eq!(
        run.value("PEER-RESULT", "auth_used").as_deref(),
        Some(expect.0),
        "{}",
        why()
    );
    assert_eq!(
        up_address(&run),
        Some(expect.1),
        "Framed-IP-Address: {}",
        why()
    );
    assert!(
        run.lns_log
            .lines()
            .any(|l| l.contains("RADIUS answer") && l.contains("accepted=true")),
        "{}",
        why()
    );
    assert!(
        radius_log.contains(&format!("Login OK: [{user}")),
        "FreeRADIUS did not authenticate {user}: {}",
        why()
    );
    let _ = std::fs::remove_dir_all(&fr);
}

#[test]
fn pap_through_freeradius() {
    auth_run(
        "radius-pap",
        "pap",
        "rpap",
        "rpap-pw",
        ("pap", Ipv4Addr::new(10, 255, 100, 201)),
    );
}

#[test]
fn chap_md5_through_freeradius() {
    auth_run(
        "radius-chap",
        "chap",
        "rchap",
        "rchap-pw",
        ("chap-md5", Ipv4Addr::new(10, 255, 100, 202)),
    );
}

#[test]
fn mschap_v2_through_freeradius() {
    auth_run(
        "radius-mschapv2",
        "mschap-v2",
        "rms",
        "rms-pw",
        ("mschap-v2", Ipv4Addr::new(10, 255, 100, 203)),
    );
}

#[test]
fn dae_disconnect_ends_the_guest_session() {
    let Some(harness) = peer_vm::harness() else {
        return;
    };
    if freeradius::freeradius_binary().is_none() {
        return;
    }
    let name = "radius-dae-disconnect";
    let out = peer_vm::out_dir(name);
    // Once xlnsd logged the session up, radclient (in the namespace) disconnects it.
    let dae_job = format!(
        "( for i in $(seq 240); do grep -q 'ppp up' {out}/lns.log 2>/dev/null && break; sleep 0.5; done; \
         sleep 2; printf 'User-Name = \"rpap\"\\nNAS-Identifier = \"xlns-lab\"\\nMessage-Authenticator = 0x00\\n' \
         | radclient -x -r 3 -t 2 127.0.0.1:{DAE_PORT} disconnect {DAE_SECRET} >RADCLIENT 2>&1 ) &",
        out = out.display(),
    );
    let (script, fr) = lab(
        name,
        &dae_job.replace("RADCLIENT", "$(dirname $0)/radclient.txt"),
    );
    let action = fr.join("wait-for-disconnect.sh");
    std::fs::write(
        &action,
        "#!/bin/sh\nfor i in $(seq 1 60); do\n  if ! ip link show \"$PEER_IFACE_1\" >/dev/null 2>&1; then\n    \
         echo \"ppp-gone after $i s\"; exit 0\n  fi\n  sleep 1\ndone\necho ppp-still-up; exit 1\n",
    )
    .unwrap();
    let run = peer_vm::run(
        &harness,
        name,
        &[
            "--lns-cmd",
            script.to_str().unwrap(),
            "--auth",
            "pap",
            "--user",
            "rpap",
            "--password",
            "rpap-pw",
            "--set",
            "PING=no",
            "--action",
            action.to_str().unwrap(),
        ],
    );
    let radclient = std::fs::read_to_string(fr.join("radclient.txt")).unwrap_or_default();
    let why = || {
        format!(
            "{}\nradclient:\n{radclient}\nFreeRADIUS dir {}",
            run.dump(),
            fr.display()
        )
    };
    assert_eq!(
        up_address(&run),
        Some(Ipv4Addr::new(10, 255, 100, 201)),
        "{}",
        why()
    );
    assert!(
        radclient
            .lines()
            .any(|l| l.starts_with("Received Disconnect-ACK")),
        "{}",
        why()
    );
    assert_eq!(
        run.value("PEER-ACTION", "status").as_deref(),
        Some("ok"),
        "the guest's PPP interface did not go: {}",
        why()
    );
    // The guest's pppd lost the link while the tunnel was still up.
    assert!(
        run.results
            .iter()
            .any(|l| l.starts_with("PEER-EVENT") && l.contains("event=down-unexpected")),
        "{}",
        why()
    );
    let log = &run.lns_log;
    assert!(log.contains("Disconnect-Request: closing"), "{}", why());
    assert!(
        log.lines()
            .any(|l| l.contains("sending CDN") && l.contains("admin")),
        "{}",
        why()
    );
    // The CDN on the wire: Result Code 3 (administrative) and the RFC 3145 cause AVP.
    let frames = peer_vm::read_capture(&run.pcap);
    if let Some(dissections) = referee::dissect_with(&frames, &["-o", "udp.check_checksum:FALSE"]) {
        let cdn = dissections
            .iter()
            .find(|d| {
                d.field("ip.src") == Some("10.255.0.1")
                    && d.fields("l2tp.avp.message_type").contains(&"14")
            })
            .unwrap_or_else(|| panic!("no CDN from xlnsd in the capture\n{}", why()));
        assert_eq!(cdn.field("l2tp.result_code"), Some("3"), "{}", why());
        assert!(cdn.fields("l2tp.avp.type").contains(&"46"), "{cdn:?}");
    }
    let _ = std::fs::remove_dir_all(&fr);
}

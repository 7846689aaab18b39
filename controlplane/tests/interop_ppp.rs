//! Interop of xlnsd's PPP with the real Linux client (xl2tpd + pppd in the peer-vm guest,
//! `../shared/peer-vm`), issue #4: PAP, CHAP-MD5 and MS-CHAPv2 come up with an address
//! from the lab pool; eight sessions from one xl2tpd; a wrong password is refused with a
//! CDN; a guest that falls silent with its tunnel up is found by our LCP echo and its
//! session freed. Every run's capture goes through the tshark referee.
//!
//! xlnsd runs with the lab profile `deploy/lab/peer-vm/` (the echo test with a copy that
//! has a short echo interval). `PING=no`: xlnsd has no data plane yet (#5), so nothing
//! answers the guest's pings to its PPP peer address.
//!
//! Needs root and the guest image; see `support/peer_vm.rs` (`XLNS_SKIP_INTEROP=1`
//! skips). Each run takes 15-30 s under TCG; the runs are serialised.
#![allow(clippy::unwrap_used, clippy::panic)]

#[path = "support/referee.rs"]
mod referee;

#[path = "support/peer_vm.rs"]
mod peer_vm;

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

/// The lab pool and the LNS's own PPP address in it.
const POOL: [u8; 3] = [10, 255, 100];
const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 255, 100, 1);

/// Every frame of the run's capture is well formed by tshark's judgement.
///
/// The UDP checksum check is off: the capture is taken on the lab bridge, and datagrams
/// that xlnsd sends from the namespace leave with checksum offload, so the bridge sees them
/// before the checksum is filled in (tshark reports a partial checksum as bad). The guest
/// validates every datagram it accepts, so a wrong checksum would fail the run anyway.
fn assert_capture_clean(run: &peer_vm::Run) -> Vec<referee::Dissection> {
    let frames = peer_vm::read_capture(&run.pcap);
    assert!(!frames.is_empty(), "empty capture\n{}", run.dump());
    let Some(dissections) = referee::dissect_with(&frames, &["-o", "udp.check_checksum:FALSE"])
    else {
        return Vec::new();
    };
    referee::assert_all_clean(&dissections);
    dissections
}

/// The addresses of the sessions that came up, checked against the pool.
fn up_addresses(run: &peer_vm::Run) -> Vec<Ipv4Addr> {
    run.results
        .iter()
        .filter(|l| l.starts_with("PEER-RESULT") && l.contains(" state=up"))
        .map(|l| {
            let ip: Ipv4Addr = l
                .split_whitespace()
                .find_map(|w| w.strip_prefix("ip="))
                .unwrap_or_else(|| panic!("no ip in {l}"))
                .parse()
                .unwrap();
            assert_eq!(ip.octets()[..3], POOL, "{ip} is not from the pool: {l}");
            assert_ne!(ip, GATEWAY, "{l}");
            assert!(l.contains(&format!(" peer={GATEWAY} ")), "{l}");
            ip
        })
        .collect()
}

fn auth_run(name: &str, auth: &str, user: &str, password: &str, expect_auth: &str) {
    let Some(harness) = peer_vm::harness() else {
        return;
    };
    let run = peer_vm::run(
        &harness,
        name,
        &[
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
    assert_eq!(run.status, 0, "{}", run.dump());
    assert_eq!(run.value("PEER-RESULT", "state").as_deref(), Some("up"));
    assert_eq!(
        run.value("PEER-RESULT", "auth_used").as_deref(),
        Some(expect_auth),
        "{}",
        run.dump()
    );
    assert_eq!(up_addresses(&run).len(), 1);
    // xlnsd's Up line names the user and the method.
    assert!(
        run.lns_log.contains("ppp up") && run.lns_log.contains(user),
        "{}",
        run.dump()
    );
    assert_capture_clean(&run);
}

#[test]
fn pap_comes_up() {
    auth_run("ppp-pap", "pap", "user3", "pw3", "pap");
}

#[test]
fn chap_md5_comes_up() {
    auth_run("ppp-chap", "chap", "user17", "pw17", "chap-md5");
}

#[test]
fn mschap_v2_comes_up() {
    auth_run("ppp-mschapv2", "mschap-v2", "user64", "pw64", "mschap-v2");
}

#[test]
fn eight_sessions_from_one_daemon() {
    let Some(harness) = peer_vm::harness() else {
        return;
    };
    let run = peer_vm::run(
        &harness,
        "ppp-eight",
        &[
            "--sessions",
            "8",
            "--set",
            "SESSION_MODE=one-daemon",
            "--auth",
            "chap",
            "--user",
            "user%n",
            "--password",
            "pw%n",
            "--set",
            "PING=no",
        ],
    );
    assert_eq!(run.status, 0, "{}", run.dump());
    let addresses = up_addresses(&run);
    assert_eq!(addresses.len(), 8, "{}", run.dump());
    let distinct: HashSet<_> = addresses.iter().collect();
    assert_eq!(distinct.len(), 8, "{addresses:?}");
    assert_eq!(run.lns_log.matches("ppp up").count(), 8, "{}", run.dump());
    assert_capture_clean(&run);
}

#[test]
fn wrong_password_is_refused() {
    let Some(harness) = peer_vm::harness() else {
        return;
    };
    let run = peer_vm::run(
        &harness,
        "ppp-wrong-password",
        &[
            "--auth",
            "chap",
            "--user",
            "user2",
            "--password",
            "not-pw2",
            "--set",
            "PING=no",
            "--set",
            "EXPECT=down",
        ],
    );
    assert_eq!(run.status, 0, "{}", run.dump());
    assert_eq!(
        run.value("PEER-RESULT", "reason").as_deref(),
        Some("ppp-auth-failed"),
        "{}",
        run.dump()
    );
    let log = &run.lns_log;
    assert!(log.contains("authentication failed"), "{}", run.dump());
    assert!(
        log.lines()
            .any(|l| l.contains("sending CDN") && l.contains("ppp-auth-failed")),
        "{}",
        run.dump()
    );
    // The CDN on the wire: result 3 and the RFC 3145 cause 16 (authentication failed).
    let dissections = assert_capture_clean(&run);
    if dissections.is_empty() {
        return;
    }
    let cdn = dissections
        .iter()
        .find(|d| {
            d.field("ip.src") == Some("10.255.0.1")
                && d.fields("l2tp.avp.message_type").contains(&"14")
        })
        .unwrap_or_else(|| panic!("no CDN from xlnsd in the capture\n{}", run.dump()));
    assert_eq!(cdn.field("l2tp.result_code"), Some("3"));
    assert!(cdn.fields("l2tp.avp.type").contains(&"46"), "{:?}", cdn);
}

/// Frame times of a pcap or pcapng capture, in order.
fn capture_times(path: &Path) -> Vec<Duration> {
    use pcap_file::pcapng::{Block, PcapNgReader};
    let bytes = std::fs::read(path).unwrap();
    let mut times = Vec::new();
    if bytes.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        let mut reader = PcapNgReader::new(&bytes[..]).unwrap();
        while let Some(block) = reader.next_block() {
            match block.unwrap() {
                Block::EnhancedPacket(p) => times.push(p.timestamp),
                Block::SimplePacket(_) => panic!("a simple packet block has no time"),
                _ => {}
            }
        }
    } else {
        let mut reader = pcap_file::pcap::PcapReader::new(&bytes[..]).unwrap();
        while let Some(packet) = reader.next_packet() {
            times.push(packet.unwrap().timestamp);
        }
    }
    times
}

/// The LCP code of an L2TP data frame carrying LCP (Ethernet / IPv4 / UDP / L2TP / PPP).
fn lcp_code(frame: &[u8]) -> Option<u8> {
    use xlns_dataplane::wire::{l2tp, ppp};
    let ihl = usize::from(frame.get(14)? & 0x0f) * 4;
    let l2tp_at = 14 + ihl + 8;
    let packet = l2tp::Packet::new_checked(frame.get(l2tp_at..)?).ok()?;
    let ppp_frame = frame.get(l2tp_at + packet.header_len()..)?;
    let ppp = ppp::Packet::new_checked(ppp_frame).ok()?;
    (ppp.protocol() == ppp::protocol::LCP)
        .then(|| ppp.payload().first().copied())
        .flatten()
}

#[test]
fn silent_guest_is_found_by_the_lcp_echo() {
    const INTERVAL: Duration = Duration::from_secs(1);
    const FAILURES: u32 = 3;
    let Some(harness) = peer_vm::harness() else {
        return;
    };
    // The lab profile with a 1 s echo interval and 3 failures.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let lab = root.join("deploy/lab/peer-vm");
    let text = std::fs::read_to_string(lab.join("xlnsd.toml")).unwrap();
    let users = lab.join("users").canonicalize().unwrap();
    let text = text
        .replace(
            "lcp_echo_interval = \"10s\"",
            &format!("lcp_echo_interval = \"{}s\"", INTERVAL.as_secs()),
        )
        .replace(
            "lcp_echo_failures = 3",
            &format!("lcp_echo_failures = {FAILURES}"),
        )
        .replace(
            "file = \"users\"",
            &format!("file = \"{}\"", users.display()),
        );
    assert!(text.contains("lcp_echo_interval = \"1s\""), "{text}");
    let dir = root.join("target/interop");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("echo-xlnsd.toml");
    std::fs::write(&config, text).unwrap();
    // The guest silences itself once the session is up (eth0 down: from the LNS's side the
    // same as a power cut), waits long enough for the echo to give up, and powers off with
    // its tunnel up (TEARDOWN=none). A guest that powered off at once would take xlnsd
    // with it: run.sh stops the LNS as soon as the guest is gone.
    let action = dir.join("echo-silence.sh");
    std::fs::write(&action, "#!/bin/sh\nip link set eth0 down\nsleep 8\n").unwrap();
    // With the guest silent, the LNS's ARP entry for it goes from PROBE to FAILED after
    // `ucast_solicit` (3) unanswered probes, about when LinkDead fires; from then on the
    // kernel holds the CDN for a resolution that never comes, and it is not on the wire for
    // the referee. Keep probing for longer than the test lasts, so every frame xlnsd sends
    // reaches the capture (a power cut on a real link looks the same to the sender).
    let lns_cmd = format!(
        "sysctl -qw net.ipv4.neigh.$PEER_BRIDGE.ucast_solicit=60 && XLNSD_CONFIG={} {}",
        config.display(),
        lab.join("start.sh").display()
    );
    let run = peer_vm::run(
        &harness,
        "ppp-echo-timeout",
        &[
            "--lns-cmd",
            &lns_cmd,
            "--auth",
            "chap",
            "--user",
            "user9",
            "--password",
            "pw9",
            "--set",
            "PING=no",
            "--set",
            "TEARDOWN=none",
            "--action",
            action.to_str().unwrap(),
        ],
    );
    assert_eq!(run.value("PEER-RESULT", "state").as_deref(), Some("up"));
    let log = &run.lns_log;
    assert!(
        log.lines()
            .any(|l| l.contains("ppp down") && l.contains("lcp-echo-timeout")),
        "no echo timeout in the log\n{}",
        run.dump()
    );
    assert!(
        log.lines()
            .any(|l| l.contains("sending CDN") && l.contains("lcp-echo-timeout")),
        "{}",
        run.dump()
    );

    let frames = peer_vm::read_capture(&run.pcap);
    let times = capture_times(&run.pcap);
    assert_eq!(frames.len(), times.len());
    let dissections = assert_capture_clean(&run);
    if dissections.is_empty() {
        return;
    }
    let from_guest = |i: usize| dissections[i].field("ip.src") == Some("10.255.0.2");
    let from_lns = |i: usize| dissections[i].field("ip.src") == Some("10.255.0.1");
    let last_guest = (0..frames.len()).rev().find(|&i| from_guest(i)).unwrap();
    let cdn = (last_guest..frames.len())
        .find(|&i| {
            from_lns(i)
                && dissections[i]
                    .fields("l2tp.avp.message_type")
                    .contains(&"14")
        })
        .unwrap_or_else(|| panic!("no CDN after the guest fell silent\n{}", run.dump()));
    // LinkDead comes `interval * failures` after the first unanswered Echo-Request, which
    // went out at most one interval after the guest's last frame.
    let first_unanswered = (last_guest..cdn)
        .find(|&i| from_lns(i) && lcp_code(&frames[i]) == Some(9))
        .unwrap_or_else(|| panic!("no Echo-Request after the guest fell silent"));
    let slack = Duration::from_millis(500);
    let detect = times[cdn] - times[first_unanswered];
    let since_silent = times[cdn] - times[last_guest];
    eprintln!(
        "echo timeout: CDN {detect:?} after the first unanswered Echo-Request, {since_silent:?} after the guest's last frame"
    );
    assert!(detect >= INTERVAL * FAILURES - slack, "{detect:?}");
    assert!(detect <= INTERVAL * FAILURES + slack, "{detect:?}");
    assert!(
        since_silent <= INTERVAL * (FAILURES + 1) + slack,
        "{since_silent:?}"
    );
}

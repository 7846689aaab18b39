//! Interop of xlnsd's L2TP control plane with a real LAC: Linux xl2tpd 1.3.18 with the
//! kernel L2TP driver in a QEMU guest (`../shared/peer-vm`), issue #3.
//!
//! Each test boots the guest against xlnsd started by `deploy/lab/peer-vm/start.sh`,
//! captures the lab bridge, and asserts on the wire (tshark as referee) and in xlnsd's log:
//! the tunnel and the session come up (SCCRQ/SCCRP/SCCCN, ICRQ/ICRP/ICCN, each of the
//! LAC's messages acknowledged), the teardown the guest chose reaches xlnsd and is
//! acknowledged, no frame is malformed. Whether PPP then comes up is not judged here
//! (issue #4 has its own interop tests).

#![allow(clippy::unwrap_used, clippy::panic)]

#[path = "support/referee.rs"]
mod referee;

#[path = "support/peer_vm.rs"]
mod peer_vm;

use referee::Dissection;

/// The LNS address in the bridge topology of peer-vm.
const LNS: &str = "10.255.0.1";

/// One L2TP control frame of a capture, as tshark read it.
#[derive(Debug)]
struct Control {
    from_lns: bool,
    /// The message type name ("SCCRQ", ...) or "ZLB".
    kind: String,
    ns: u16,
    nr: u16,
    session: u16,
    /// Whether any AVP had the H bit (RFC 2661 §4.3).
    hidden: bool,
}

fn message_name(code: &str) -> &'static str {
    match code {
        "1" => "SCCRQ",
        "2" => "SCCRP",
        "3" => "SCCCN",
        "4" => "StopCCN",
        "6" => "HELLO",
        "7" => "OCRQ",
        "8" => "OCRP",
        "9" => "OCCN",
        "10" => "ICRQ",
        "11" => "ICRP",
        "12" => "ICCN",
        "14" => "CDN",
        "15" => "WEN",
        "16" => "SLI",
        _ => "unknown",
    }
}

fn controls(dissections: &[Dissection]) -> Vec<Control> {
    dissections
        .iter()
        .filter(|d| d.field("l2tp.type") == Some("1"))
        .map(|d| Control {
            from_lns: d.field("ip.src") == Some(LNS),
            kind: d
                .field("l2tp.avp.message_type")
                .map_or("ZLB".to_owned(), |c| message_name(c).to_owned()),
            ns: d.field("l2tp.Ns").unwrap().parse().unwrap(),
            nr: d.field("l2tp.Nr").unwrap().parse().unwrap(),
            session: d.field("l2tp.session").unwrap().parse().unwrap(),
            hidden: d.fields("l2tp.avp.hidden").contains(&"1"),
        })
        .collect()
}

/// Dissects the run's capture, asserts that no frame is malformed, returns the control
/// frames.
fn wire(run: &peer_vm::Run, secret: Option<&str>) -> Vec<Control> {
    let frames = peer_vm::read_capture(&run.pcap);
    assert!(!frames.is_empty(), "empty capture\n{}", run.dump());
    // Frames xlnsd sends leave through the bridge with the UDP checksum left to offload
    // (CHECKSUM_PARTIAL), so the capture holds partial checksums for them: do not let
    // tshark verify UDP checksums here. IP header checksums are always complete.
    let secret_pref = secret.map(|s| format!("l2tp.shared_secret:{s}"));
    let mut args = vec!["-o", "udp.check_checksum:FALSE"];
    if let Some(p) = &secret_pref {
        args.extend(["-o", p.as_str()]);
    }
    let Some(dissections) = referee::dissect_with(&frames, &args) else {
        panic!("the referee needs tshark");
    };
    referee::assert_all_clean(&dissections);
    controls(&dissections)
}

/// Index of the first control message of `kind` from the given side after `from`.
fn find(c: &[Control], from: usize, from_lns: bool, kind: &str) -> Option<usize> {
    c.iter()
        .enumerate()
        .skip(from)
        .find(|(_, m)| m.from_lns == from_lns && m.kind == kind)
        .map(|(i, _)| i)
}

/// Whether the LNS acknowledged the LAC message at `i` (a later LNS frame with Nr past its
/// Ns, RFC 2661 §5.8).
fn acked(c: &[Control], i: usize) -> bool {
    let ns = c[i].ns;
    c[i + 1..]
        .iter()
        .any(|m| m.from_lns && m.nr.wrapping_sub(ns).wrapping_sub(1) < 0x8000)
}

/// The tunnel and the session came up on the wire, every LAC message of the setup was
/// acknowledged, tunnel messages carry session id 0 (RFC 2661 §3.1).
fn assert_established(c: &[Control], run: &peer_vm::Run) -> usize {
    let order = [
        (false, "SCCRQ"),
        (true, "SCCRP"),
        (false, "SCCCN"),
        (false, "ICRQ"),
        (true, "ICRP"),
        (false, "ICCN"),
    ];
    let mut at = 0;
    for (from_lns, kind) in order {
        let Some(i) = find(c, at, from_lns, kind) else {
            panic!("no {kind} after frame {at}: {c:#?}\n{}", run.dump());
        };
        if !from_lns {
            assert!(acked(c, i), "{kind} never acknowledged: {c:#?}");
        }
        if matches!(kind, "SCCRQ" | "SCCRP" | "SCCCN") {
            assert_eq!(c[i].session, 0, "{kind} with session id {}", c[i].session);
        }
        at = i + 1;
    }
    assert!(
        run.lns_log.contains("tunnel up") && run.lns_log.contains("session up"),
        "xlnsd did not log the tunnel and session up\n{}",
        run.dump()
    );
    at
}

/// The LAC's StopCCN (and CDN before it, if any) reached xlnsd and were acknowledged, and
/// xlnsd logged the tunnel down because of it.
fn assert_teardown(c: &[Control], after: usize, run: &peer_vm::Run) {
    let Some(stop) = find(c, after, false, "StopCCN") else {
        panic!("the LAC sent no StopCCN: {c:#?}\n{}", run.dump());
    };
    assert!(acked(c, stop), "StopCCN never acknowledged: {c:#?}");
    if let Some(cdn) = find(c, after, false, "CDN") {
        assert!(cdn < stop, "CDN after StopCCN: {c:#?}");
        assert!(acked(c, cdn), "CDN never acknowledged: {c:#?}");
    }
    assert!(
        run.lns_log.contains("tunnel down") && run.lns_log.contains("PeerStopCcn"),
        "xlnsd did not log the tunnel down by the LAC's StopCCN\n{}",
        run.dump()
    );
    assert_eq!(
        run.value("PEER-TEARDOWN", "tunnels_closed").as_deref(),
        Some("1/1"),
        "{}",
        run.dump()
    );
}

/// Guest settings shared by every case: PPP is judged elsewhere, so do not wait long for
/// it, and do not ping.
const COMMON: [&str; 8] = [
    "--user",
    "user1",
    "--password",
    "pw1",
    "--set",
    "UP_TIMEOUT=12",
    "--set",
    "PING=no",
];

fn run_case(name: &str, extra: &[&str]) -> Option<peer_vm::Run> {
    let harness = peer_vm::harness()?;
    let mut args: Vec<&str> = COMMON.to_vec();
    args.extend_from_slice(extra);
    Some(peer_vm::run(&harness, name, &args))
}

#[test]
fn tunnel_and_session_without_secret_graceful_teardown() {
    let Some(run) = run_case("l2tp-no-secret", &["--set", "TEARDOWN=graceful"]) else {
        return;
    };
    let c = wire(&run, None);
    let at = assert_established(&c, &run);
    assert_teardown(&c, at, &run);
}

#[test]
fn tunnel_with_secret_and_challenge() {
    let Some(run) = run_case(
        "l2tp-secret",
        &["--secret", "s3cret", "--set", "HOSTNAME_AVP=secure-lac"],
    ) else {
        return;
    };
    let c = wire(&run, Some("s3cret"));
    let at = assert_established(&c, &run);
    assert_teardown(&c, at, &run);
}

#[test]
fn tunnel_with_hidden_avps() {
    let Some(run) = run_case(
        "l2tp-hidden",
        &[
            "--secret",
            "s3cret",
            "--hidden",
            "--set",
            "HOSTNAME_AVP=secure-lac",
        ],
    ) else {
        return;
    };
    assert_eq!(run.value("PEER-INFO lac", "hidden").as_deref(), Some("yes"));
    let c = wire(&run, Some("s3cret"));
    let at = assert_established(&c, &run);
    // The policy of `secure-lac` hides AVPs: our ICRP's Assigned Session ID went hidden,
    // and xl2tpd decoded it (its ICCN came back to that session).
    let icrp = find(&c, 0, true, "ICRP").unwrap();
    assert!(c[icrp].hidden, "ICRP without hidden AVPs: {c:#?}");
    assert_teardown(&c, at, &run);
}

#[test]
fn teardown_by_stopccn_only() {
    let Some(run) = run_case("l2tp-stopccn", &["--set", "TEARDOWN=stopccn"]) else {
        return;
    };
    let c = wire(&run, None);
    let at = assert_established(&c, &run);
    assert_teardown(&c, at, &run);
    assert!(
        find(&c, at, false, "CDN").is_none(),
        "TEARDOWN=stopccn sent a CDN"
    );
    assert!(
        run.lns_log.contains("session down"),
        "the StopCCN did not clear the session in xlnsd\n{}",
        run.dump()
    );
}

#[test]
fn wrong_tunnel_secret_is_refused() {
    let Some(run) = run_case(
        "l2tp-wrong-secret",
        &[
            "--secret",
            "wrong",
            "--set",
            "HOSTNAME_AVP=secure-lac",
            "--set",
            "EXPECT=down",
        ],
    ) else {
        return;
    };
    let c = wire(&run, Some("s3cret"));
    assert!(find(&c, 0, false, "SCCRQ").is_some(), "{c:#?}");
    assert!(
        find(&c, 0, false, "ICRQ").is_none(),
        "a session was set up on a tunnel that failed authentication: {c:#?}"
    );
    // Whichever side checks first refuses: xl2tpd checks our Challenge Response in the
    // SCCRP, xlnsd the LAC's in the SCCCN (RFC 2661 §5.1.1). Either way a StopCCN.
    assert!(
        find(&c, 0, true, "StopCCN").is_some() || find(&c, 0, false, "StopCCN").is_some(),
        "no StopCCN: {c:#?}\n{}",
        run.dump()
    );
    assert!(!run.lns_log.contains("session up"), "{}", run.dump());
    assert!(
        run.value("PEER-RESULT", "reason")
            .is_some_and(|r| r.starts_with("l2tp-")),
        "{}",
        run.dump()
    );
}

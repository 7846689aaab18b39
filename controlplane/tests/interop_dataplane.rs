//! Interop of the whole LNS, xlnsd and the AF_XDP data plane, with the real Linux client
//! (xl2tpd + pppd with the kernel L2TP driver in the peer-vm guest, `../shared/peer-vm`),
//! issue #5: `run.sh --topology dataplane` with `deploy/lab/peer-vm/start.sh`, which starts
//! xlns-dataplane on the access and core veths beside xlnsd (config
//! `xlnsd.dataplane.toml`: `[dataplane]` enabled) and `iperf3 -s` on the server behind
//! the LNS (10.255.1.2 in the namespace lns-core).
//!
//! * CHAP, PAP and MS-CHAPv2 sessions ping the server and their gateway (the LNS's own PPP
//!   address, answered by the worker) at the full MTU (1400-octet packets with DF, the
//!   action `deploy/lab/peer-vm/dataplane-traffic.sh`); the CHAP case also runs iperf3 in
//!   both directions.
//! * `kill -9` of xlnsd while the guest pings: the session keeps forwarding without a
//!   single loss, and the restarted xlnsd re-attaches to the segment.
//!
//! Where the packets went: IPv4 forwarding is off in lns-lab (the harness leaves
//! `net.ipv4.ip_forward` at 0 in the namespace) and no kernel PPP or L2TP device exists
//! there, so nothing but the data plane can carry a ping from the guest to 10.255.1.2
//! and back, nor answer one to the gateway address (which no interface holds): a passing
//! ping already proves it. The tests also read the session's counters from xlnsd's
//! `ppp down` line (the data plane's per-session counters, read back from the segment)
//! and require them to be non-zero, and large after iperf3.
//!
//! No subscriber packet may bypass the data plane: xlnsd's `xlnsd stopped` line must say
//! `bypassed_dataplane=0`. (It did not, now and then: the guest's first pings right after
//! its IPCP opened were lost because the lab bridge labbr0, in the LNS's namespace, answered
//! the guest's ARP request for 10.255.0.1 too; when its reply won, the guest sent to
//! labbr0's MAC and its frames reached xlnsd's socket through labbr0, never crossing
//! lnsacc and its XDP program, until the next ARP probe from lnsacc. `start.sh` sets
//! `arp_ignore=1` in the namespace, and xlnsd counts and logs such packets.)
//!
//! Needs root, the guest image, the xlns-dataplane binary (`cargo build -p
//! xlns-dataplane`, found in `target/release` or `target/debug`) and iperf3 on the host
//! for the iperf3 case; see `support/peer_vm.rs` (`XLNS_SKIP_INTEROP=1` skips). The runs
//! are serialised; each takes 30-40 s under TCG.
#![allow(clippy::unwrap_used, clippy::panic)]

#[path = "support/referee.rs"]
mod referee;

#[path = "support/peer_vm.rs"]
mod peer_vm;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use peer_vm::Topology;

const SERVER: &str = "10.255.1.2";
const GATEWAY: &str = "10.255.100.1";

fn dataplane_bin() -> String {
    let bin = peer_vm::workspace_bin("xlns-dataplane")
        .unwrap_or_else(|| panic!("no xlns-dataplane binary: cargo build -p xlns-dataplane"));
    bin.to_string_lossy().into_owned()
}

fn action() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/lab/peer-vm/dataplane-traffic.sh")
        .to_string_lossy()
        .into_owned()
}

/// The guest's `ACTION|` lines.
fn action_lines(run: &peer_vm::Run) -> Vec<String> {
    std::fs::read_to_string(run.out.join("console.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            l.split_once("ACTION| ")
                .map(|(_, rest)| rest.trim().to_owned())
        })
        .collect()
}

/// The final counters of every `ppp down` line that has them:
/// (up packets, up bytes, down packets, down bytes).
fn down_counters(log: &str) -> Vec<[u64; 4]> {
    log.lines()
        .filter(|l| l.contains("ppp down") && l.contains("up_packets="))
        .map(|l| {
            let get = |key: &str| -> u64 {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix(&format!("{key}=")))
                    .unwrap_or_else(|| panic!("no {key} in {l}"))
                    .parse()
                    .unwrap()
            };
            [
                get("up_packets"),
                get("up_bytes"),
                get("down_packets"),
                get("down_bytes"),
            ]
        })
        .collect()
}

/// xlnsd stopped and said that no IPv4 / IPv6 packet of a session reached its socket
/// instead of the data plane.
fn assert_no_bypass(run: &peer_vm::Run) {
    let stopped: Vec<&str> = run
        .lns_log
        .lines()
        .filter(|l| l.contains("xlnsd stopped"))
        .collect();
    assert!(!stopped.is_empty(), "{}", run.dump());
    for line in stopped {
        assert!(
            line.contains("bypassed_dataplane=0"),
            "packets bypassed the data plane: {line}\n{}",
            run.dump()
        );
    }
}

/// Runs one session with `auth` through the data plane with the traffic action, checks
/// it passed, every ping of the action passed, and the data plane counted the traffic.
fn traffic_run(name: &str, auth: &str, user: &str, extra: &[&str]) -> peer_vm::Run {
    let Some(harness) = peer_vm::harness() else {
        panic!("unreachable: harness() panics unless skipping");
    };
    let password = user.replace("user", "pw");
    let action = action();
    let mut args = vec![
        "--auth",
        auth,
        "--user",
        user,
        "--password",
        &password,
        "--action",
        &action,
    ];
    args.extend_from_slice(extra);
    let dp = dataplane_bin();
    let run = peer_vm::run_with(
        &harness,
        name,
        Topology::Dataplane,
        &args,
        &[("XLNS_DATAPLANE", &dp)],
    );
    assert_eq!(run.status, 0, "{}", run.dump());
    assert_eq!(run.value("PEER-RESULT", "state").as_deref(), Some("up"));
    assert_eq!(
        run.value("PEER-RESULT", "ping").as_deref(),
        Some("ok"),
        "{}",
        run.dump()
    );
    assert_eq!(run.value("PEER-ACTION", "status").as_deref(), Some("ok"));
    let actions = action_lines(&run);
    for target in [GATEWAY, SERVER] {
        let ok = format!("dp-result session=1 ping={target} full_mtu ok");
        assert!(
            actions.contains(&ok),
            "{ok} missing: {actions:#?}\n{}",
            run.dump()
        );
    }
    assert!(
        run.lns_log.contains("data plane: session published"),
        "{}",
        run.dump()
    );
    assert_no_bypass(&run);
    let counters = down_counters(&run.lns_log);
    assert_eq!(counters.len(), 1, "{}", run.dump());
    let [up_p, up_b, down_p, down_b] = counters[0];
    // The 3 pings of the PEER-RESULT check and 2 x 20 of the action, each way.
    assert!(up_p >= 43 && down_p >= 43, "{counters:?}\n{}", run.dump());
    assert!(up_b >= 40 * 1400 && down_b >= 40 * 1400, "{counters:?}");
    run
}

#[test]
fn chap_full_mtu_pings_and_iperf3_both_ways() {
    if peer_vm::harness().is_none() {
        return;
    }
    assert!(
        std::process::Command::new("iperf3")
            .arg("--version")
            .output()
            .is_ok(),
        "iperf3 is needed on the host (apt-get install iperf3)"
    );
    let run = traffic_run(
        "dp-chap-iperf",
        "chap",
        "user5",
        &["--set", "IPERF=1", "--set", "IPERF_SECONDS=3"],
    );
    assert_eq!(
        run.value("PEER-RESULT", "auth_used").as_deref(),
        Some("chap-md5")
    );
    let actions = action_lines(&run);
    for way in ["upstream", "downstream"] {
        let ok = format!("dp-result iperf3 {way} ok");
        assert!(actions.contains(&ok), "{ok}: {actions:#?}");
    }
    // Three seconds of TCP each way: megabytes through the data plane, both ways.
    let [_, up_b, _, down_b] = down_counters(&run.lns_log)[0];
    assert!(
        up_b > 5_000_000 && down_b > 5_000_000,
        "up {up_b} down {down_b}"
    );
}

#[test]
fn pap_pings_server_and_gateway() {
    if peer_vm::harness().is_none() {
        return;
    }
    let run = traffic_run("dp-pap", "pap", "user3", &[]);
    assert_eq!(
        run.value("PEER-RESULT", "auth_used").as_deref(),
        Some("pap")
    );
    assert_eq!(
        run.value("PEER-RESULT", "ping_target").as_deref(),
        Some(SERVER)
    );
}

#[test]
fn mschap_v2_pings_gateway_and_server() {
    if peer_vm::harness().is_none() {
        return;
    }
    // The guest's own check pings the gateway this time (the action pings both).
    let target = format!("PING_TARGET={GATEWAY}");
    let run = traffic_run("dp-mschapv2", "mschap-v2", "user64", &["--set", &target]);
    assert_eq!(
        run.value("PEER-RESULT", "auth_used").as_deref(),
        Some("mschap-v2")
    );
    assert_eq!(
        run.value("PEER-RESULT", "ping_target").as_deref(),
        Some(GATEWAY)
    );
}

/// Waits until `path` (a log being written) contains `needle`, up to `limit`.
fn wait_for(path: &Path, needle: &str, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        let text = peer_vm::strip_ansi(&std::fs::read_to_string(path).unwrap_or_default());
        if text.contains(needle) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Issue #5's restart case: `kill -9` of xlnsd during traffic. The guest checks its session
/// with 3 pings, then pings the server 300 times at 20 per second; during that, xlnsd is
/// killed, start.sh starts it again 2 s later (`XLNSD_RESTART=1`). Not one ping may be lost: the data plane kept reading the
/// segment while xlnsd was gone, and the new xlnsd re-attached to it (`attach_existing`)
/// with the session in it, instead of creating a fresh one.
#[test]
fn xlnsd_kill_9_keeps_forwarding() {
    let Some(harness) = peer_vm::harness() else {
        return;
    };
    let name = "dp-xlnsd-kill9";
    let out = peer_vm::out_dir(name);
    let _ = std::fs::remove_dir_all(&out);
    let pids: PathBuf = std::env::temp_dir().join(format!("xlns-{name}-pids"));
    let _ = std::fs::remove_dir_all(&pids);
    let pids_s = pids.to_string_lossy().into_owned();
    let log = out.join("lns.log");
    let killer = {
        let pids = pids.clone();
        std::thread::spawn(move || -> Result<Instant, String> {
            if !wait_for(
                &log,
                "data plane: session published",
                Duration::from_secs(150),
            ) {
                return Err("the session was never published".into());
            }
            // The guest's own 3 pings, then its action starts: kill during the action.
            std::thread::sleep(Duration::from_secs(5));
            let pid = std::fs::read_to_string(pids.join("xlnsd.pid")).map_err(|e| e.to_string())?;
            let status = std::process::Command::new("kill")
                .args(["-9", pid.trim()])
                .status()
                .map_err(|e| e.to_string())?;
            if !status.success() {
                return Err(format!("kill -9 {pid} failed"));
            }
            Ok(Instant::now())
        })
    };
    let action = action();
    let dp = dataplane_bin();
    let started = Instant::now();
    let run = peer_vm::run_with(
        &harness,
        name,
        Topology::Dataplane,
        &[
            "--auth",
            "chap",
            "--user",
            "user9",
            "--password",
            "pw9",
            "--action",
            &action,
            "--set",
            &format!("TARGETS={SERVER}"),
            "--set",
            "COUNT=300",
            // xlnsd's PPP state is gone after the kill: the guest powers off with its
            // tunnel up rather than waiting for a teardown the new xlnsd cannot answer.
            "--set",
            "TEARDOWN=none",
        ],
        &[
            ("XLNS_DATAPLANE", &dp),
            ("XLNSD_RESTART", "1"),
            ("XLNSD_RESTART_DELAY", "2"),
            ("XLNS_PIDS", &pids_s),
        ],
    );
    let killed = killer.join().unwrap();
    let _ = std::fs::remove_dir_all(&pids);
    let killed_at = killed.unwrap_or_else(|e| panic!("{e}\n{}", run.dump()));
    assert!(killed_at > started);
    assert_eq!(run.status, 0, "{}", run.dump());
    assert_eq!(
        run.value("PEER-RESULT", "ping").as_deref(),
        Some("ok"),
        "{}",
        run.dump()
    );
    assert_eq!(run.value("PEER-ACTION", "status").as_deref(), Some("ok"));
    let actions = action_lines(&run);
    assert!(
        actions
            .iter()
            .any(|l| l.contains("300 packets transmitted, 300 received")),
        "pings were lost: {actions:#?}\n{}",
        run.dump()
    );
    // xlnsd ran twice: killed (start.sh saw it die by SIGKILL) and started again, and the
    // second one re-attached to the segment with the session in it.
    assert!(
        run.lns_log.contains("start.sh: xlnsd exited (137)"),
        "{}",
        run.dump()
    );
    assert_eq!(
        run.lns_log.matches("xlnsd control plane running").count(),
        2,
        "{}",
        run.dump()
    );
    assert!(
        run.lns_log
            .lines()
            .any(|l| l.contains("re-attached to the existing segment") && l.contains("sessions=1")),
        "{}",
        run.dump()
    );
    // The guest was still pinging after the restart: the data plane's received count
    // grew between its first stats line after the re-attach and its last one.
    let after = &run.lns_log[run
        .lns_log
        .find("re-attached to the existing segment")
        .unwrap()..];
    let rx: Vec<u64> = after
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("rx_access="))
        })
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(
        rx.len() >= 2 && rx[0] < rx[rx.len() - 1],
        "no traffic after the restart: {rx:?}\n{}",
        run.dump()
    );
}

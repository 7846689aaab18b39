//! The durable accounting spool of a running xlnsd (issue #7), against a real FreeRADIUS
//! whose `detail` file is checked: the test starts xlnsd (the binary) with a temporary
//! configuration on 127.0.0.1 and dials PPP sessions through the LAC of `support/live.rs`
//! over a real UDP socket, as `xlnsd_management.rs` does.
//!
//! * Outage: FreeRADIUS stopped, sessions brought up and down, xlnsd killed with SIGKILL,
//!   both restarted: every Start and every Stop arrives exactly once per Acct-Session-Id
//!   (the sessions live at the kill get a Stop with Acct-Terminate-Cause NAS-Reboot), each
//!   run's Accounting-On once, and a clean stop's Accounting-Off once.
//! * Spool full: the alarm metrics (`xlns_radius_acct_spool_full`, `..._dropped`) and
//!   `xlnsctl show radius`.
//! * Torn tail: a spool whose last entry was cut in the middle is replayed up to it.
#![allow(clippy::unwrap_used, clippy::panic)]

#[path = "support/freeradius.rs"]
mod freeradius;
#[path = "support/live.rs"]
mod live;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use freeradius::{DetailRecord, FreeRadius, SECRET, detail_value};
use live::{DEADLINE, Lac, free_port, free_udp_port, promtool_check, sample, scrape_until};
use serde_json::Value;
use xlns_controlplane::radius::acct::{SessionInfo, StatusType, TerminateCause, session_record};
use xlns_controlplane::radius::spool::{Entry, EntryKind, Spool, SpoolConfig};

/// xlnsd; SIGKILLed on drop unless it already exited.
struct Daemon(Child);

impl Daemon {
    fn start(dir: &Path) -> Daemon {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("xlnsd.log"))
            .unwrap();
        let _ = std::fs::remove_file(dir.join("xlnsd.sock"));
        let d = Daemon(
            Command::new(env!("CARGO_BIN_EXE_xlnsd"))
                .arg("--config")
                .arg(dir.join("xlnsd.toml"))
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + DEADLINE;
        while !dir.join("xlnsd.sock").exists() {
            assert!(Instant::now() < deadline, "xlnsd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }

    /// SIGTERM, then wait for the exit.
    fn terminate(mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + DEADLINE;
        while self.0.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "xlnsd did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A temporary directory, removed on drop unless the test failed.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("xlns-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Writes `dir/xlnsd.toml` (local users, accounting to `acct`) and the users file; the
/// L2TP address and the metrics address.
fn write_config(dir: &Path, acct: SocketAddr, extra: &str) -> (SocketAddr, String) {
    let l2tp: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
    let metrics = format!("127.0.0.1:{}", free_port());
    let users: String = (1..=8).map(|i| format!("u{i} pw{i}\n")).collect();
    std::fs::write(dir.join("users"), users).unwrap();
    std::fs::write(
        dir.join("xlnsd.toml"),
        format!(
            r#"[l2tp]
listen = "{l2tp}"

[ppp]
auth = ["pap"]
gateway = "10.9.0.1"

[[pool]]
name = "lab"
cidr = "10.9.0.0/28"

[[lac]]
name = "lab-lac"

[users]
file = "{users}"

[management]
metrics = "{metrics}"
socket = "{socket}"

[radius]
nas_identifier = "xlns-spool"
timeout = "200ms"
max_timeout = "1s"
spool = "{spool}"
{extra}
[[radius.acct_server]]
address = "{acct}"
secret = "{SECRET}"
"#,
            users = dir.join("users").display(),
            socket = dir.join("xlnsd.sock").display(),
            spool = dir.join("acct.spool").display(),
        ),
    )
    .unwrap();
    (l2tp, metrics)
}

/// A LAC with one tunnel and a call for each of `users` (`uN`, password `pwN`), returned
/// once every call's PPP is up.
fn dial(lns: SocketAddr, users: &[&str]) -> Lac {
    let passwords: Vec<String> = users.iter().map(|u| format!("pw{}", &u[1..])).collect();
    let subscribers: Vec<(&str, &str)> = users
        .iter()
        .zip(&passwords)
        .map(|(u, p)| (*u, p.as_str()))
        .collect();
    let mut lac = Lac::new(lns);
    lac.dial(&subscribers);
    lac
}

fn show_radius(dir: &Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_xlnsctl"))
        .arg("--socket")
        .arg(dir.join("xlnsd.sock"))
        .args(["--json", "show", "radius"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(v["ok"], true, "{v}");
    v["rows"][0].clone()
}

/// Waits until `done` holds (polling every 100 ms) or panics with `what` after
/// [`DEADLINE`].
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// (Acct-Session-Id, Acct-Status-Type) of every record, in file order.
fn keys(detail: &[DetailRecord]) -> Vec<(String, String)> {
    detail
        .iter()
        .map(|r| {
            (
                detail_value(r, "Acct-Session-Id").unwrap_or("").to_owned(),
                detail_value(r, "Acct-Status-Type").unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[test]
fn outage_and_kill_9_lose_and_duplicate_nothing() {
    let Some(mut fr) = FreeRadius::start("acct-outage") else {
        return;
    };
    fr.stop();
    let dir = TempDir::new("acct-outage");
    let (l2tp, _) = write_config(&dir.0, fr.acct, "");
    let daemon = Daemon::start(&dir.0);

    let mut lac = dial(l2tp, &["u1", "u2", "u3", "u4"]);
    lac.hang_up("u1");
    lac.hang_up("u2");
    // On, 4 Starts and 2 Stops wait in the spool; the server does not answer.
    // The LAC clears both calls once their PPP is down.
    wait_for("the spool to hold 7 records, both calls cleared", || {
        lac.pump(Duration::from_millis(100));
        lac.down.len() == 2 && show_radius(&dir.0)["spool_depth"] == 7
    });
    let before = show_radius(&dir.0);
    assert!(before["acct_timeouts"].as_u64().unwrap() >= 1, "{before}");
    assert_eq!(before["acct_responses"], 0);
    // Let the records age, so that their Acct-Delay-Time shows it.
    lac.pump(Duration::from_secs(2));
    drop(daemon); // SIGKILL
    drop(lac);

    fr.restart();
    let daemon = Daemon::start(&dir.0);
    wait_for("the spool to drain", || {
        show_radius(&dir.0)["spool_depth"] == 0
    });
    let after = show_radius(&dir.0);
    assert_eq!(after["spool_replayed"], 7, "{after}");
    assert_eq!(after["spool_reboot_stops"], 2, "{after}");
    // Nothing more may come: let a retransmission round pass.
    std::thread::sleep(Duration::from_secs(2));
    daemon.terminate();

    let detail = fr.detail();
    let all = keys(&detail);
    let mut seen = std::collections::HashSet::new();
    for k in &all {
        assert!(seen.insert(k.clone()), "duplicate {k:?} in {all:#?}");
    }
    let count = |status: &str| all.iter().filter(|(_, s)| s == status).count();
    assert_eq!(count("Accounting-On"), 2, "one per run: {all:#?}");
    assert_eq!(count("Accounting-Off"), 1, "{all:#?}");
    assert_eq!(count("Start"), 4, "{all:#?}");
    assert_eq!(count("Stop"), 4, "{all:#?}");
    let mut causes = Vec::new();
    for user in ["u1", "u2", "u3", "u4"] {
        let recs: Vec<&DetailRecord> = detail
            .iter()
            .filter(|r| detail_value(r, "User-Name") == Some(user))
            .collect();
        let statuses: Vec<&str> = recs
            .iter()
            .map(|r| detail_value(r, "Acct-Status-Type").unwrap())
            .collect();
        assert_eq!(statuses, vec!["Start", "Stop"], "{user}: {all:#?}");
        assert_eq!(
            detail_value(recs[0], "Acct-Session-Id"),
            detail_value(recs[1], "Acct-Session-Id")
        );
        // Sent after the outage: the delay shows.
        let delay: u64 = detail_value(recs[0], "Acct-Delay-Time")
            .unwrap()
            .parse()
            .unwrap();
        assert!(delay >= 1, "{user}: Acct-Delay-Time {delay}");
        causes.push(
            detail_value(recs[1], "Acct-Terminate-Cause")
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(
        causes,
        vec!["User-Request", "User-Request", "NAS-Reboot", "NAS-Reboot"]
    );
    let last = detail.last().unwrap();
    assert_eq!(
        detail_value(last, "Acct-Status-Type"),
        Some("Accounting-Off")
    );
}

#[test]
fn a_full_spool_raises_the_alarm() {
    let dir = TempDir::new("acct-full");
    // Nothing listens there: every record stays in the spool.
    let dead: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
    let (l2tp, metrics) = write_config(&dir.0, dead, "spool_max_records = 4\n");
    let _daemon = Daemon::start(&dir.0);
    let _lac = dial(l2tp, &["u1", "u2", "u3", "u4", "u5"]);
    // Accounting-On and 3 Starts fill it; 2 Starts are refused.
    wait_for("the 2 refused Starts", || {
        show_radius(&dir.0)["spool_dropped"] == 2
    });
    let row = show_radius(&dir.0);
    assert_eq!(row["spool_depth"], 4, "{row}");
    assert_eq!(row["spool_full"], true, "{row}");
    assert_eq!(row["spool_dropped"], 2, "{row}");
    assert_eq!(row["acct_starts"], 3, "{row}");
    let text = scrape_until(&mut [], &metrics, |t| {
        sample(t, "xlns_radius_acct_spool_full") == Some(1.0)
    });
    assert_eq!(sample(&text, "xlns_radius_acct_spool_depth"), Some(4.0));
    assert_eq!(
        sample(&text, "xlns_radius_acct_spool_dropped_total"),
        Some(2.0),
        "{text}"
    );
    assert!(sample(&text, "xlns_radius_acct_spool_bytes").unwrap() > 0.0);
    assert!(text.contains("# TYPE xlns_radius_acct_timeouts_total counter"));
    // The dead server times out (200 ms) and, alone, leaves nowhere to
    // fail over to; nothing answered, so no round trip was measured.
    let timeouts = "xlns_radius_server_timeouts_total{kind=\"acct\"}";
    let text = scrape_until(&mut [], &metrics, |t| {
        sample(t, timeouts).is_some_and(|n| n >= 1.0)
    });
    // Accounting sends each request once per server (the spool retries).
    assert_eq!(
        sample(&text, "xlns_radius_retransmissions_total{kind=\"acct\"}"),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, "xlns_radius_failovers_total{kind=\"acct\"}"),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, "xlns_radius_round_trip_seconds_count{kind=\"acct\"}"),
        Some(0.0),
        "{text}"
    );
    promtool_check(&text);
}

#[test]
fn a_torn_spool_tail_is_ignored_and_the_rest_replayed() {
    let Some(fr) = FreeRadius::start("acct-torn") else {
        return;
    };
    let dir = TempDir::new("acct-torn");
    let (_, _) = write_config(&dir.0, fr.acct, "");
    let info = |id: &str| SessionInfo {
        acct_session_id: id.to_owned(),
        user_name: b"torn-user".to_vec(),
        ..SessionInfo::default()
    };
    let t = 1_700_000_000;
    {
        let mut spool = Spool::open(SpoolConfig {
            path: Some(dir.0.join("acct.spool")),
            max_records: 100,
            max_bytes: 1 << 20,
        })
        .unwrap();
        spool
            .push(session_record(
                StatusType::Start,
                &info("TORN0001"),
                t,
                None,
                None,
                None,
            ))
            .unwrap();
        spool
            .push(session_record(
                StatusType::Stop,
                &info("TORN0001"),
                t + 5,
                Some(Duration::from_secs(5)),
                Some(&Default::default()),
                Some(TerminateCause::LostCarrier),
            ))
            .unwrap();
        spool.sync().unwrap();
    }
    // A third record cut in the middle of its write.
    let third = Entry {
        kind: EntryKind::Record,
        seq: 3,
        payload: session_record(StatusType::Start, &info("TORN0002"), t, None, None, None).encode(),
    }
    .encode();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.0.join("acct.spool"))
        .unwrap();
    f.write_all(&third[..third.len() - 7]).unwrap();
    drop(f);

    let daemon = Daemon::start(&dir.0);
    wait_for("the spool to drain", || {
        show_radius(&dir.0)["spool_depth"] == 0
    });
    let row = show_radius(&dir.0);
    assert_eq!(row["spool_torn_bytes"], third.len() - 7, "{row}");
    assert_eq!(row["spool_replayed"], 2, "{row}");
    daemon.terminate();
    let all = keys(&fr.detail());
    let torn: Vec<_> = all
        .iter()
        .filter(|(id, _)| id.starts_with("TORN"))
        .collect();
    assert_eq!(
        torn,
        vec![
            &("TORN0001".to_owned(), "Start".to_owned()),
            &("TORN0001".to_owned(), "Stop".to_owned())
        ],
        "{all:#?}"
    );
    // The replayed Start went out late: its Acct-Delay-Time says so.
    let start = fr
        .detail()
        .into_iter()
        .find(|r| detail_value(r, "Acct-Session-Id") == Some("TORN0001"))
        .unwrap();
    let delay: u64 = detail_value(&start, "Acct-Delay-Time")
        .unwrap()
        .parse()
        .unwrap();
    assert!(delay > 1_000_000, "Acct-Delay-Time {delay}");
}

#[test]
fn sigterm_stops_the_live_sessions_then_sends_accounting_off() {
    let Some(fr) = FreeRadius::start("acct-sigterm") else {
        return;
    };
    let dir = TempDir::new("acct-sigterm");
    let (l2tp, _) = write_config(&dir.0, fr.acct, "");
    let daemon = Daemon::start(&dir.0);
    let lac = dial(l2tp, &["u1", "u2"]);
    wait_for("the Starts", || show_radius(&dir.0)["acct_responses"] == 3);
    // The LAC stays silent: its PPP never acknowledges the LCP Terminate-Requests, so
    // xlnsd gives up waiting and closes the sessions' accounting itself.
    daemon.terminate();
    drop(lac);
    let detail = fr.detail();
    let all = keys(&detail);
    let statuses: Vec<&str> = all.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(
        statuses,
        vec![
            "Accounting-On",
            "Start",
            "Start",
            "Stop",
            "Stop",
            "Accounting-Off"
        ],
        "{all:#?}"
    );
    for stop in &detail[3..5] {
        assert_eq!(
            detail_value(stop, "Acct-Terminate-Cause"),
            Some("Admin-Reboot"),
            "{stop:?}"
        );
    }
}

//! The lab with RADIUS accounting, operated with xlnsctl (issues #7 and #8):
//! `lab.sh --radius --keep` with 6 sessions over 2 tunnels, 100-octet packets at 300 pps
//! per direction for 2 s (no loss). While it is kept, every xlnsctl command runs against
//! it, as a table and as `--json`, and its output is checked: show tunnels, show
//! sessions with each filter, show session T/S (its data-plane counters too), show
//! pools, show workers, show radius, reload, clear session, clear tunnel, and the errors
//! of unknown sessions, tunnels and commands. After Ctrl-C the lab's accounting check
//! must pass: every session's Stop record in FreeRADIUS' detail file carries exactly the
//! packets and octets the generator sent up and received down for it (the cleared
//! sessions' Stops included).
//!
//! Needs root, FreeRADIUS (`/usr/sbin/freeradius`) and the binaries beside this test
//! (`cargo build -p xlns-controlplane --bin xlnsd --bin xlnsctl -p xlns-dataplane --bin
//! xlns-dataplane`). `XLNS_SKIP_NETNS=1` skips, loudly. Run under
//! `flock /tmp/xlns-netns.lock`.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

const SIZE: u64 = 100;

fn enabled(test: &str) -> bool {
    if std::env::var("XLNS_SKIP_NETNS").is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED {test}: XLNS_SKIP_NETNS=1");
        return false;
    }
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "{test} needs root (namespaces, XDP, AF_XDP); run as root or set XLNS_SKIP_NETNS=1"
    );
    assert!(
        Path::new("/usr/sbin/freeradius").exists(),
        "{test} needs FreeRADIUS: apt-get install freeradius"
    );
    true
}

/// The directory holding xlns-bench, xlnsd, xlnsctl and xlns-dataplane.
fn bin_dir() -> PathBuf {
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_xlns-bench"));
    let dir = bench.parent().unwrap().to_path_buf();
    for b in ["xlnsd", "xlnsctl", "xlns-dataplane"] {
        assert!(
            dir.join(b).is_file(),
            "{b} not in {}: cargo build -p xlns-controlplane --bin xlnsd --bin xlnsctl \
             -p xlns-dataplane --bin xlns-dataplane (same profile as this test)",
            dir.display()
        );
    }
    dir
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Sends SIGINT to the lab's process group when dropped: a terminal's Ctrl-C.
struct Interrupt(u32);

impl Drop for Interrupt {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group the test created.
        let rc = unsafe { libc::kill(-(self.0 as i32), libc::SIGINT) };
        if rc != 0 {
            eprintln!("SIGINT to the lab: {}", std::io::Error::last_os_error());
        }
    }
}

fn lines_of(r: impl Read + Send + 'static, tx: mpsc::Sender<String>) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            eprintln!("  [lab] {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
}

/// xlnsctl against the lab's socket.
struct Ctl {
    bin: PathBuf,
    socket: PathBuf,
}

impl Ctl {
    /// The table output and the exit status.
    fn table(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new(&self.bin)
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap() + &String::from_utf8(out.stderr).unwrap();
        eprintln!("$ xlnsctl {}\n{text}", args.join(" "));
        (out.status.success(), text)
    }

    /// The `--json` answer; its `ok` must agree with the exit status.
    fn json(&self, args: &[&str]) -> Value {
        let out = Command::new(&self.bin)
            .arg("--socket")
            .arg(&self.socket)
            .arg("--json")
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        eprintln!("$ xlnsctl --json {}\n{text}", args.join(" "));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["ok"].as_bool(), Some(out.status.success()), "{v}");
        v
    }

    fn rows(&self, args: &[&str]) -> Vec<Value> {
        let v = self.json(args);
        assert_eq!(v["ok"], true, "{v}");
        v["rows"].as_array().unwrap().clone()
    }

    /// The only row of a detail answer.
    fn row(&self, args: &[&str]) -> Value {
        let rows = self.rows(args);
        assert_eq!(rows.len(), 1, "{rows:?}");
        rows[0].clone()
    }
}

/// Data lines of a table (the header aside), after checking the header's first columns.
fn table_rows(text: &str, header: &str) -> Vec<String> {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    assert!(
        first.starts_with(header),
        "header {first:?}, want {header:?}"
    );
    lines.map(str::to_owned).collect()
}

fn key(row: &Value) -> String {
    format!("{}/{}", row["tunnel"], row["session"])
}

#[test]
fn lab_with_radius_accounting_answers_every_xlnsctl_command_and_stops_match_the_generator() {
    if !enabled("lab_with_radius_accounting_answers_every_xlnsctl_command") {
        return;
    }
    let bins = bin_dir();
    let mut child = Command::new(repo_root().join("lab.sh"))
        .arg("--bin-dir")
        .arg(&bins)
        .args([
            "--no-install",
            "--radius",
            "--sessions",
            "6",
            "--tunnels",
            "2",
        ])
        .args([
            "--duration",
            "2",
            "--rate",
            "300",
            "--size",
            "100",
            "--keep",
        ])
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let guard = Interrupt(child.id());
    let (tx, rx) = mpsc::channel();
    lines_of(child.stdout.take().unwrap(), tx.clone());
    lines_of(child.stderr.take().unwrap(), tx);

    let mut output: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    let seen = |output: &[String], what: &str| output.iter().any(|l| l.contains(what));
    while !(seen(&output, "keeping the sessions up")
        && seen(&output, "accounting  FreeRADIUS detail file"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => output.push(line),
            Err(_) => panic!("the lab never reached --keep:\n{}", output.join("\n")),
        }
    }
    let text = output.join("\n");
    assert!(
        text.contains("6/6 up over 2/2 tunnels (chap), 0 failed"),
        "{text}"
    );
    for dir in ["upstream", "downstream"] {
        let line = output
            .iter()
            .find(|l| l.trim_start().starts_with(dir))
            .unwrap_or_else(|| panic!("no {dir} line:\n{text}"));
        assert!(line.contains("lost 0 ("), "{line}");
    }
    // The summary names the command to use, with the socket.
    let hint = output
        .iter()
        .find(|l| l.trim_start().starts_with("xlnsctl ") && l.contains(" --socket "))
        .unwrap_or_else(|| panic!("no xlnsctl line in the summary:\n{text}"));
    let socket = hint
        .split_whitespace()
        .skip_while(|w| *w != "--socket")
        .nth(1)
        .map(PathBuf::from)
        .unwrap();
    assert!(socket.exists(), "{}", socket.display());
    let ctl = Ctl {
        bin: bins.join("xlnsctl"),
        socket,
    };

    // show tunnels
    let tunnels = ctl.rows(&["show", "tunnels"]);
    assert_eq!(tunnels.len(), 2, "{tunnels:?}");
    for t in &tunnels {
        assert_eq!(t["state"], "established", "{t}");
        assert_eq!(t["lac"], "lab-lac", "{t}");
        assert_eq!(t["host_name"], "xlns-bench-lac", "{t}");
        assert_eq!(t["sessions"], 3, "{t}");
    }
    let (ok, out) = ctl.table(&["show", "tunnels"]);
    assert!(ok);
    let lines = table_rows(&out, "TUNNEL  PEER_TUNNEL  STATE");
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines.iter().all(|l| l.contains("established")), "{out}");

    // show sessions, then each filter
    let sessions = ctl.rows(&["show", "sessions"]);
    assert_eq!(sessions.len(), 6, "{sessions:?}");
    let mut users: Vec<&str> = sessions
        .iter()
        .map(|s| s["user"].as_str().unwrap())
        .collect();
    users.sort_unstable();
    assert_eq!(
        users,
        ["user1", "user2", "user3", "user4", "user5", "user6"]
    );
    assert!(sessions.iter().all(|s| s["state"] == "up"), "{sessions:?}");
    let (ok, out) = ctl.table(&["show", "sessions"]);
    assert!(ok);
    assert_eq!(table_rows(&out, "TUNNEL  SESSION  STATE").len(), 6, "{out}");

    let user3 = ctl.row(&["show", "sessions", "--user", "user3"]);
    assert_eq!(user3["user"], "user3");
    let (_, out) = ctl.table(&["show", "sessions", "--user", "user3"]);
    let lines = table_rows(&out, "TUNNEL  SESSION  STATE");
    assert!(lines.len() == 1 && lines[0].contains("user3"), "{out}");
    assert!(
        ctl.rows(&["show", "sessions", "--user", "nobody"])
            .is_empty()
    );

    let address = user3["address"].as_str().unwrap();
    assert!(address.starts_with("100.64."), "{address}");
    let by_address = ctl.row(&["show", "sessions", "--address", address]);
    assert_eq!(key(&by_address), key(&user3));
    let (_, out) = ctl.table(&["show", "sessions", "--address", address]);
    let lines = table_rows(&out, "TUNNEL  SESSION  STATE");
    assert!(lines.len() == 1 && lines[0].contains(address), "{out}");

    assert_eq!(ctl.rows(&["show", "sessions", "--lac", "lab-lac"]).len(), 6);
    assert!(ctl.rows(&["show", "sessions", "--lac", "other"]).is_empty());
    let (_, out) = ctl.table(&["show", "sessions", "--lac", "lab-lac"]);
    assert_eq!(table_rows(&out, "TUNNEL  SESSION  STATE").len(), 6, "{out}");

    let (t_a, t_b) = (tunnels[0]["tunnel"].clone(), tunnels[1]["tunnel"].clone());
    let (a, b) = (t_a.to_string(), t_b.to_string());
    let in_a = ctl.rows(&["show", "sessions", "--tunnel", &a]);
    assert_eq!(in_a.len(), 3, "{in_a:?}");
    assert!(in_a.iter().all(|s| s["tunnel"] == t_a), "{in_a:?}");
    let (_, out) = ctl.table(&["show", "sessions", "--tunnel", &b]);
    let lines = table_rows(&out, "TUNNEL  SESSION  STATE");
    assert!(
        lines.len() == 3 && lines.iter().all(|l| l.starts_with(&b)),
        "{out}"
    );
    let bad = ctl.json(&["show", "sessions", "--tunnel", "x"]);
    assert_eq!(bad["ok"], false);

    // show session T/S: the details and the data plane's counters of the traffic.
    let detail = ctl.row(&["show", "session", &key(&user3)]);
    assert_eq!(detail["user"], "user3");
    assert!(
        detail["acct_session_id"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{detail}"
    );
    for dir in ["up", "down"] {
        let packets = detail[format!("{dir}_packets")].as_u64().unwrap();
        let bytes = detail[format!("{dir}_bytes")].as_u64().unwrap();
        assert!(packets >= 100, "{dir}: {detail}");
        assert_eq!(bytes, packets * SIZE, "{dir}: inner IP octets: {detail}");
    }
    let (ok, out) = ctl.table(&["show", "session", &key(&user3)]);
    assert!(
        ok && out.contains("ACCT_SESSION_ID") && out.contains("user3"),
        "{out}"
    );
    let (ok, out) = ctl.table(&["show", "session", "9/9"]);
    assert!(!ok && out.contains("no session 9/9"), "{out}");
    assert_eq!(ctl.json(&["show", "session", "9/9"])["ok"], false);

    // show pools
    let pool = ctl.row(&["show", "pools"]);
    assert_eq!(pool["pool"], "lab");
    assert_eq!(pool["used"], 6);
    assert_eq!(
        pool["size"].as_u64(),
        Some(pool["free"].as_u64().unwrap() + 6)
    );
    let (_, out) = ctl.table(&["show", "pools"]);
    let lines = table_rows(&out, "POOL  SIZE");
    assert!(lines.len() == 1 && lines[0].starts_with("lab "), "{out}");

    // show workers: drops by reason, none in this lab.
    let workers = ctl.json(&["show", "workers"]);
    assert_eq!(workers["ok"], true, "{workers}");
    assert_eq!(
        workers["columns"],
        serde_json::json!(["worker", "reason", "drops"])
    );
    assert_eq!(workers["rows"], serde_json::json!([]), "{workers}");
    let (ok, out) = ctl.table(&["show", "workers"]);
    assert!(ok);
    assert!(
        table_rows(&out, "WORKER  REASON  DROPS").is_empty(),
        "{out}"
    );

    // show radius: six Starts acknowledged, nothing spooled.
    let radius = ctl.row(&["show", "radius"]);
    assert_eq!(radius["acct_servers"], "127.0.0.1:1813", "{radius}");
    assert_eq!(radius["auth_servers"], "", "{radius}");
    assert_eq!(radius["acct_starts"], 6, "{radius}");
    assert_eq!(radius["acct_stops"], 0, "{radius}");
    assert_eq!(radius["acct_timeouts"], 0, "{radius}");
    assert_eq!(radius["acct_in_flight"], 0, "{radius}");
    assert_eq!(radius["spool_depth"], 0, "{radius}");
    let (ok, out) = ctl.table(&["show", "radius"]);
    assert!(
        ok && out.contains("AUTH_REQUESTS") && out.contains("ACCT_STARTS"),
        "{out}"
    );

    // reload (SIGHUP's equivalent): nothing dropped.
    let (ok, out) = ctl.table(&["reload"]);
    assert!(ok && out.contains("configuration reloaded"), "{out}");
    let reload = ctl.json(&["reload"]);
    assert_eq!(reload["ok"], true, "{reload}");
    assert_eq!(ctl.rows(&["show", "sessions"]).len(), 6);

    // clear session (table, then --json), clear tunnel.
    let (ok, out) = ctl.table(&["clear", "session", &key(&in_a[0])]);
    assert!(ok && out.contains("cleared"), "{out}");
    let cleared = ctl.json(&["clear", "session", &key(&in_a[1])]);
    assert_eq!(cleared["ok"], true, "{cleared}");
    let (ok, out) = ctl.table(&["clear", "session", "9/9"]);
    assert!(!ok && out.contains("no session"), "{out}");
    let (ok, out) = ctl.table(&["clear", "tunnel", &b]);
    assert!(ok && out.contains(&format!("tunnel {b} cleared")), "{out}");
    assert_eq!(ctl.json(&["clear", "tunnel", "65000"])["ok"], false);
    let (ok, out) = ctl.table(&["frobnicate"]);
    assert!(!ok && out.contains("unknown command"), "{out}");
    // Five sessions went down: their Stops are acknowledged, one session is left.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = ctl.rows(&["show", "sessions"]);
        let radius = ctl.row(&["show", "radius"]);
        if left.len() == 1 && radius["acct_stops"] == 5 && radius["acct_in_flight"] == 0 {
            assert_eq!(key(&left[0]), key(&in_a[2]));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after the clears: {left:?} {radius}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(ctl.row(&["show", "pools"])["used"], 1);

    // Ctrl-C: teardown, then the accounting check.
    drop(guard);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the lab did not stop after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
        output.push(line);
    }
    let text = output.join("\n");
    assert!(status.success(), "{status:?}:\n{text}");
    assert!(!text.contains("accounting  ERROR"), "{text}");
    let line = output
        .iter()
        .find(|l| l.contains("Stop records equal the generator's counts"))
        .unwrap_or_else(|| panic!("no accounting check:\n{text}"));
    assert!(line.contains("accounting  6/6 Stop records"), "{line}");
    // "(input P packets / O octets, output P packets / O octets in all)"
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    let [_, _, in_p, in_o, out_p, out_o] = numbers[..] else {
        panic!("{line}");
    };
    // 2 s at 300 pps each way plus the warm-up.
    assert!(in_p >= 600 && out_p >= 600, "{line}");
    assert_eq!(in_o, in_p * SIZE, "{line}");
    assert_eq!(out_o, out_p * SIZE, "{line}");
    assert!(text.contains("cleaned up"), "{text}");
}

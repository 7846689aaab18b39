//! The durable accounting spool of a running xlnsd (issue #7), against a real FreeRADIUS
//! whose `detail` file is checked: the test starts xlnsd (the binary) with a temporary
//! configuration on 127.0.0.1 and dials PPP sessions through a LAC-role [`Endpoint`] over
//! a real UDP socket, as `xlnsd_management.rs` does.
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

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use freeradius::{DetailRecord, FreeRadius, SECRET, detail_value};
use serde_json::Value;
use xlns_controlplane::l2tp::endpoint::{
    Endpoint, EndpointConfig, Event, Gatekeeper, Role, SessionDecision, SessionKey, TunnelDecision,
    TunnelId, TunnelParams, TunnelRequest,
};
use xlns_controlplane::l2tp::session::OutgoingCall;
use xlns_controlplane::ppp::session::{
    Credentials, DownReason, PppSession, SessionConfig, SessionEvent,
};
use xlns_controlplane::radius::acct::{SessionInfo, StatusType, TerminateCause, session_record};
use xlns_controlplane::radius::spool::{Entry, EntryKind, Spool, SpoolConfig};
use xlns_dataplane::wire::ppp::{HeaderRepr, Packet};

struct OpenGate;

impl Gatekeeper for OpenGate {
    fn admit_tunnel(&mut self, _: Instant, _: &TunnelRequest<'_>) -> TunnelDecision {
        TunnelDecision::Accept(TunnelParams::from_config(&EndpointConfig::default()))
    }
    fn admit_session(&mut self, _: Instant, _: SessionKey, _: usize) -> SessionDecision {
        SessionDecision::Accept
    }
    fn tunnel_closed(&mut self, _: TunnelId) {}
    fn session_closed(&mut self, _: SessionKey) {}
}

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
        let deadline = Instant::now() + Duration::from_secs(10);
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
        let deadline = Instant::now() + Duration::from_secs(15);
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

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes `dir/xlnsd.toml` (local users, accounting to `acct`) and the users file; the
/// L2TP address and the metrics address.
fn write_config(dir: &Path, acct: SocketAddr, extra: &str) -> (SocketAddr, String) {
    let l2tp: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
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

/// The LAC and its subscribers' PPP over a UDP socket.
struct Lac {
    socket: UdpSocket,
    lns: SocketAddr,
    endpoint: Endpoint,
    pending: Vec<Credentials>,
    clients: HashMap<SessionKey, PppSession>,
    up: HashMap<SessionKey, Vec<u8>>,
    down: usize,
}

impl Lac {
    fn dial(lns: SocketAddr, users: &[&str]) -> Lac {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let mut lac = Lac {
            socket,
            lns,
            endpoint: Endpoint::new(
                EndpointConfig {
                    role: Role::Lac,
                    ..EndpointConfig::default()
                },
                3,
            ),
            pending: users
                .iter()
                .map(|u| Credentials {
                    user: u.as_bytes().to_vec(),
                    password: format!("pw{}", &u[1..]),
                })
                .collect(),
            clients: HashMap::new(),
            up: HashMap::new(),
            down: 0,
        };
        let now = Instant::now();
        let tunnel = lac
            .endpoint
            .open_tunnel(
                now,
                lns,
                TunnelParams::from_config(&EndpointConfig::default()),
            )
            .unwrap();
        for _ in users {
            lac.endpoint
                .open_session(now, tunnel, OutgoingCall::default())
                .unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while lac.up.len() < users.len() {
            assert!(Instant::now() < deadline, "sessions did not come up");
            lac.pump(Duration::from_millis(100));
        }
        lac
    }

    /// The subscriber `user` terminates its PPP (LCP Terminate-Request).
    fn hang_up(&mut self, user: &str) {
        let key = self
            .up
            .iter()
            .find(|(_, u)| u.as_slice() == user.as_bytes())
            .map(|(k, _)| *k)
            .unwrap();
        self.clients
            .get_mut(&key)
            .unwrap()
            .close(Instant::now(), DownReason::Admin);
    }

    fn pump(&mut self, for_: Duration) {
        let until = Instant::now() + for_;
        let mut buf = vec![0u8; 65535];
        while Instant::now() < until {
            let now = Instant::now();
            self.endpoint.handle_timeout(now, &mut OpenGate);
            for c in self.clients.values_mut() {
                c.handle_timeout(now);
            }
            while let Some(event) = self.endpoint.poll_event() {
                if let Event::SessionUp { key, .. } = event {
                    let mut client = PppSession::new(SessionConfig {
                        keepalive: None,
                        ..SessionConfig::client(self.pending.remove(0))
                    });
                    client.start(now, None);
                    self.clients.insert(key, client);
                }
            }
            let mut cdn = Vec::new();
            for (key, client) in &mut self.clients {
                while let Some((protocol, packet)) = client.poll_transmit() {
                    let header = HeaderRepr::for_sending(protocol, false, false);
                    let mut frame = vec![0u8; header.buffer_len()];
                    header.emit(&mut frame);
                    frame.extend_from_slice(&packet);
                    if let Some(tx) = self.endpoint.encapsulate(*key, &frame) {
                        self.socket.send_to(&tx.payload, tx.peer).unwrap();
                    }
                }
                while let Some(event) = client.poll_event() {
                    match event {
                        SessionEvent::Up(up) => {
                            self.up.insert(*key, up.user.clone());
                        }
                        SessionEvent::Down { .. } => cdn.push(*key),
                        _ => {}
                    }
                }
            }
            for key in cdn {
                self.down += 1;
                self.endpoint.close_session(now, key, 1, None);
            }
            while let Some(tx) = self.endpoint.poll_transmit(now) {
                self.socket.send_to(&tx.payload, tx.peer).unwrap();
            }
            if let Ok((len, _)) = self.socket.recv_from(&mut buf)
                && let Some(data) = self.endpoint.handle_datagram(
                    Instant::now(),
                    self.lns,
                    &buf[..len],
                    &mut OpenGate,
                )
                && let Ok(packet) = Packet::new_checked(data.payload)
                && let Some(client) = self.clients.get_mut(&data.key)
            {
                client.handle_frame(packet.protocol(), packet.payload(), Instant::now());
            }
        }
    }
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

fn scrape(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_once("\r\n\r\n").unwrap().1.to_owned()
}

fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?;
        let rest = rest.strip_prefix("{}").unwrap_or(rest);
        rest.strip_prefix(' ')?.trim().parse().ok()
    })
}

/// Waits until `done` holds (polling every 100 ms) or panics with `what`.
fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
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

    let mut lac = Lac::dial(l2tp, &["u1", "u2", "u3", "u4"]);
    lac.hang_up("u1");
    lac.hang_up("u2");
    // On, 4 Starts and 2 Stops wait in the spool; the server does not answer.
    wait_for(
        "the spool to hold 7 records",
        Duration::from_secs(10),
        || {
            lac.pump(Duration::from_millis(100));
            show_radius(&dir.0)["spool_depth"] == 7
        },
    );
    let before = show_radius(&dir.0);
    assert!(before["acct_timeouts"].as_u64().unwrap() >= 1, "{before}");
    assert_eq!(before["acct_responses"], 0);
    assert_eq!(lac.down, 2);
    // Let the records age, so that their Acct-Delay-Time shows it.
    lac.pump(Duration::from_secs(2));
    drop(daemon); // SIGKILL
    drop(lac);

    fr.restart();
    let daemon = Daemon::start(&dir.0);
    wait_for("the spool to drain", Duration::from_secs(30), || {
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
    let dead: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let (l2tp, metrics) = write_config(&dir.0, dead, "spool_max_records = 4\n");
    let _daemon = Daemon::start(&dir.0);
    let _lac = Lac::dial(l2tp, &["u1", "u2", "u3", "u4", "u5"]);
    // Accounting-On and 3 Starts fill it; 2 Starts are refused.
    let row = show_radius(&dir.0);
    assert_eq!(row["spool_depth"], 4, "{row}");
    assert_eq!(row["spool_full"], true, "{row}");
    assert_eq!(row["spool_dropped"], 2, "{row}");
    assert_eq!(row["acct_starts"], 3, "{row}");
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while sample(&text, "xlns_radius_acct_spool_full") != Some(1.0) {
        assert!(Instant::now() < deadline, "no spool-full alarm in\n{text}");
        std::thread::sleep(Duration::from_millis(200));
        text = scrape(&metrics);
    }
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
    let deadline = Instant::now() + Duration::from_secs(10);
    while sample(&text, timeouts).is_none_or(|n| n < 1.0) {
        assert!(Instant::now() < deadline, "no server timeout in\n{text}");
        std::thread::sleep(Duration::from_millis(200));
        text = scrape(&metrics);
    }
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
    if let Ok(mut promtool) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        promtool
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = promtool.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
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
    wait_for("the spool to drain", Duration::from_secs(20), || {
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
    let lac = Lac::dial(l2tp, &["u1", "u2"]);
    wait_for("the Starts", Duration::from_secs(10), || {
        show_radius(&dir.0)["acct_responses"] == 3
    });
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

//! SIGHUP reload of a running xlnsd under live sessions (issue #8).
//!
//! The test starts xlnsd on 127.0.0.1 with one LAC policy, one pool and one user, brings a
//! session up through a LAC-role [`Endpoint`] over a real UDP socket, then rewrites the
//! configuration and sends SIGHUP:
//!
//! 1. a new user (with a pool of their own), a new pool and a new LAC with a tunnel
//!    secret: the live session stays up, the new user logs in, the new LAC, refused
//!    before, gets an authenticated tunnel;
//! 2. a broken file: refused with `file:line:column: key` in the log and in `xlnsctl
//!    reload`, counted as failed, and the running configuration keeps working;
//! 3. the new LAC and the new pool removed again: their live tunnel and leases stay.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use xlns_controlplane::l2tp::endpoint::{
    Endpoint, EndpointConfig, Event, Gatekeeper, Role, SessionDecision, SessionKey, TunnelDecision,
    TunnelId, TunnelParams, TunnelRequest,
};
use xlns_controlplane::l2tp::session::OutgoingCall;
use xlns_controlplane::ppp::session::{Credentials, PppSession, SessionConfig, SessionEvent};
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

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A LAC and its subscribers' PPP over a UDP socket.
struct Lac {
    socket: UdpSocket,
    lns: SocketAddr,
    endpoint: Endpoint,
    params: TunnelParams,
    pending: Vec<Credentials>,
    clients: HashMap<SessionKey, PppSession>,
    up: HashMap<SessionKey, Ipv4Addr>,
    tunnels_up: usize,
    tunnels_down: usize,
}

impl Lac {
    fn new(lns: SocketAddr, host_name: &str, secret: Option<&str>, seed: u64) -> Lac {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(10)))
            .unwrap();
        let config = EndpointConfig {
            role: Role::Lac,
            host_name: host_name.as_bytes().to_vec(),
            ..EndpointConfig::default()
        };
        let params = TunnelParams {
            secret: secret.map(|s| s.as_bytes().to_vec()),
            ..TunnelParams::from_config(&config)
        };
        Lac {
            socket,
            lns,
            endpoint: Endpoint::new(config, seed),
            params,
            pending: Vec::new(),
            clients: HashMap::new(),
            up: HashMap::new(),
            tunnels_up: 0,
            tunnels_down: 0,
        }
    }

    fn open_tunnel(&mut self) -> TunnelId {
        self.endpoint
            .open_tunnel(Instant::now(), self.lns, self.params.clone())
            .unwrap()
    }

    fn dial(&mut self, tunnel: TunnelId, user: &str, password: &str) {
        self.pending.push(Credentials {
            user: user.as_bytes().to_vec(),
            password: password.to_owned(),
        });
        self.endpoint
            .open_session(Instant::now(), tunnel, OutgoingCall::default())
            .unwrap();
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
                match event {
                    Event::SessionUp { key, .. } => {
                        let mut client = PppSession::new(SessionConfig {
                            keepalive: None,
                            ..SessionConfig::client(self.pending.remove(0))
                        });
                        client.start(now, None);
                        self.clients.insert(key, client);
                    }
                    Event::SessionDown { key, .. } => {
                        self.clients.remove(&key);
                        self.up.remove(&key);
                    }
                    Event::TunnelUp { .. } => self.tunnels_up += 1,
                    Event::TunnelDown { .. } => self.tunnels_down += 1,
                }
            }
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
                    if let SessionEvent::Up(up) = event {
                        self.up.insert(*key, up.address);
                    }
                }
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

/// Pumps every LAC until `done` holds (10 s at most).
fn pump_until(lacs: &mut [&mut Lac], what: &str, done: impl Fn(&[&mut Lac]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(lacs) {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        for lac in lacs.iter_mut() {
            lac.pump(Duration::from_millis(30));
        }
    }
}

fn scrape(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_once("\r\n\r\n").unwrap().1.to_owned()
}

fn value(metrics: &str, sample: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(sample).and_then(|v| v.trim().parse().ok()))
}

/// Waits (pumping the LACs, which keeps their sessions alive) until the metric sample
/// has this value.
fn wait_metric(lacs: &mut [&mut Lac], metrics: &str, sample: &str, want: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if value(&scrape(metrics), sample) == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{sample} never reached {want}:\n{}",
            scrape(metrics)
        );
        for lac in lacs.iter_mut() {
            lac.pump(Duration::from_millis(100));
        }
    }
}

fn ctl_json(socket: &Path, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_xlnsctl"))
        .arg("--socket")
        .arg(socket)
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    serde_json::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap()
}

fn sessions(socket: &Path) -> Vec<(String, String, String)> {
    ctl_json(socket, &["show", "sessions"])["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["user"].as_str().unwrap_or("-").to_owned(),
                r["state"].as_str().unwrap_or("-").to_owned(),
                r["address"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect()
}

fn hup(daemon: &Daemon) {
    // SAFETY: kill(2) with the pid of our own child and a valid signal number.
    let rc = unsafe { libc::kill(daemon.0.id() as libc::pid_t, libc::SIGHUP) };
    assert_eq!(rc, 0);
}

struct Files {
    dir: PathBuf,
    l2tp_port: u16,
    metrics: String,
    socket: PathBuf,
}

impl Files {
    fn config(&self) -> PathBuf {
        self.dir.join("xlnsd.toml")
    }

    /// Writes the configuration: the common head, then `tail`.
    fn write(&self, tail: &str) {
        let head = format!(
            "[l2tp]\nlisten = \"127.0.0.1:{}\"\n\n[ppp]\nauth = [\"pap\"]\ngateway = \"10.9.0.1\"\n\n\
             [users]\nfile = \"users\"\n\n[management]\nmetrics = \"{}\"\nsocket = \"{}\"\n\n\
             [[pool]]\nname = \"lab\"\ncidr = \"10.9.0.0/29\"\n\n[[lac]]\nname = \"lab-lac\"\nhost_name = \"lac1\"\n",
            self.l2tp_port,
            self.metrics,
            self.socket.display()
        );
        std::fs::write(self.config(), format!("{head}{tail}")).unwrap();
    }
}

#[test]
fn sighup_reload_under_live_sessions() {
    let dir = std::env::temp_dir().join(format!("xlns-reload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let files = Files {
        l2tp_port: free_port(),
        metrics: format!("127.0.0.1:{}", free_port()),
        socket: dir.join("xlnsd.sock"),
        dir: dir.clone(),
    };
    std::fs::write(dir.join("users"), "alice pw1\n").unwrap();
    files.write("");
    let log = dir.join("xlnsd.log");
    let daemon = Daemon(
        Command::new(env!("CARGO_BIN_EXE_xlnsd"))
            .arg("--config")
            .arg(files.config())
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stderr(std::fs::File::create(&log).unwrap())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !files.socket.exists() || TcpStream::connect(&files.metrics).is_err() {
        assert!(Instant::now() < deadline, "xlnsd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let lns: SocketAddr = format!("127.0.0.1:{}", files.l2tp_port).parse().unwrap();

    // Before: alice up through lac1; lac2 (unknown) refused.
    let mut lac1 = Lac::new(lns, "lac1", None, 1);
    let t1 = lac1.open_tunnel();
    lac1.dial(t1, "alice", "pw1");
    let mut lac2 = Lac::new(lns, "lac2", Some("s3cret"), 2);
    lac2.open_tunnel();
    pump_until(&mut [&mut lac1, &mut lac2], "alice up, lac2 refused", |l| {
        l[0].up.len() == 1 && l[1].tunnels_down == 1
    });
    assert_eq!(lac2.tunnels_up, 0);
    let alice_addr = *lac1.up.values().next().unwrap();

    // 1. New user carol (pool "extra"), new pool, new LAC "secure" with a secret.
    std::fs::write(
        dir.join("users"),
        "alice pw1\ncarol pw3 pool=extra\ndave pw4\n",
    )
    .unwrap();
    files.write(
        "\n[[pool]]\nname = \"extra\"\ncidr = \"10.10.0.0/29\"\n\n\
         [[lac]]\nname = \"secure\"\nhost_name = \"lac2\"\nsecret = \"s3cret\"\n",
    );
    hup(&daemon);
    wait_metric(
        &mut [&mut lac1],
        &files.metrics,
        "xlns_config_reloads_total{result=\"ok\"}",
        1.0,
    );
    assert_eq!(
        sessions(&files.socket),
        vec![("alice".into(), "up".into(), alice_addr.to_string())],
        "the live session survived the reload"
    );
    lac1.dial(t1, "carol", "pw3");
    let mut lac2 = Lac::new(lns, "lac2", Some("s3cret"), 3);
    let t2 = lac2.open_tunnel();
    lac2.dial(t2, "dave", "pw4");
    pump_until(&mut [&mut lac1, &mut lac2], "carol and dave up", |l| {
        l[0].up.len() == 2 && l[1].up.len() == 1
    });
    assert_eq!(lac2.tunnels_up, 1, "the new LAC authenticated its tunnel");
    let carol = *lac1.up.values().find(|a| **a != alice_addr).unwrap();
    assert!(
        carol.octets()[..3] == [10, 10, 0],
        "carol's address {carol} comes from the new pool"
    );
    wait_metric(
        &mut [&mut lac1, &mut lac2],
        &files.metrics,
        "xlns_pool_used{pool=\"extra\"}",
        1.0,
    );

    // 2. A broken file: refused, named, counted; the running configuration stays.
    std::fs::write(
        files.config(),
        std::fs::read_to_string(files.config())
            .unwrap()
            .replace("auth = [\"pap\"]", "auth = [\"pap\"]\nmru = 64"),
    )
    .unwrap();
    hup(&daemon);
    wait_metric(
        &mut [&mut lac1, &mut lac2],
        &files.metrics,
        "xlns_config_reloads_total{result=\"failed\"}",
        1.0,
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let expected = format!(
        "{}:6:7: ppp.mru: must be between 128 and 65535",
        files.config().display()
    );
    assert!(
        text.contains(&expected),
        "{expected} not in the log:\n{text}"
    );
    let answer = ctl_json(&files.socket, &["reload"]);
    assert_eq!(answer["ok"], false);
    assert!(
        answer["error"].as_str().unwrap().starts_with(&expected),
        "{answer}"
    );
    // Still the reloaded configuration: the secure LAC and carol's pool work.
    lac2.dial(t2, "dave", "pw4");
    pump_until(&mut [&mut lac1, &mut lac2], "second dave up", |l| {
        l[1].up.len() == 2
    });
    assert_eq!(sessions(&files.socket).len(), 4);

    // 3. The new LAC and pool removed: their tunnel and leases stay until they end.
    files.write("");
    let answer = ctl_json(&files.socket, &["reload"]);
    assert_eq!(answer["ok"], true, "{answer}");
    lac1.pump(Duration::from_millis(1200));
    let text = scrape(&files.metrics);
    assert_eq!(
        value(&text, "xlns_config_reloads_total{result=\"ok\"}"),
        Some(2.0)
    );
    assert_eq!(
        value(&text, "xlns_tunnels_by_lac{lac=\"secure\"}"),
        Some(1.0)
    );
    assert_eq!(value(&text, "xlns_pool_used{pool=\"extra\"}"), None);
    let all = sessions(&files.socket);
    assert_eq!(all.len(), 4, "{all:?}");
    assert!(all.iter().all(|(_, state, _)| state == "up"), "{all:?}");
    // A new tunnel from lac2 is refused again.
    let mut lac3 = Lac::new(lns, "lac2", Some("s3cret"), 4);
    lac3.open_tunnel();
    pump_until(
        &mut [&mut lac1, &mut lac2, &mut lac3],
        "lac2 refused",
        |l| l[2].tunnels_down == 1,
    );
    assert_eq!(lac3.tunnels_up, 0);
    // Carol hangs up: her stranded lease is released without complaint.
    let carol_key = *lac1.up.iter().find(|(_, a)| **a == carol).unwrap().0;
    lac1.endpoint
        .close_session(Instant::now(), carol_key, 1, None);
    pump_until(&mut [&mut lac1, &mut lac2], "carol down", |_| {
        sessions(&files.socket).len() == 3
    });
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("releasing a lease"), "{text}");
    assert!(
        text.contains("configuration reloaded"),
        "no reload line in the log:\n{text}"
    );
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}

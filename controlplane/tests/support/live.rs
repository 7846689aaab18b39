//! A running xlnsd (the binary, started with a configuration in a temporary directory) and
//! a LAC-role [`Endpoint`] whose subscribers run the client role of the PPP core over a
//! real UDP socket, in real time; plus the helpers to scrape `/metrics` and run xlnsctl.
//! Include it with `#[path = "support/live.rs"] mod live;`.
//!
//! Waits are for a condition, never for a fixed time that a loaded machine could beat:
//! [`Lac::pump_until`], [`pump_all_until`] (several LACs, each its own host name, secret
//! and seed: [`Lac::with_host`]) and [`scrape_until`] (xlnsd publishes `/metrics` as a
//! snapshot once per second), each failing the test after [`DEADLINE`].
#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use xlns_controlplane::l2tp::endpoint::{
    AcceptAll, Endpoint, EndpointConfig, Event, Role, SessionDownReason, SessionKey, TunnelId,
    TunnelParams,
};
use xlns_controlplane::l2tp::session::OutgoingCall;
use xlns_controlplane::ppp::session::{
    Credentials, DownReason, PppSession, SessionConfig, SessionEvent,
};
use xlns_dataplane::wire::ppp::Packet;

/// How long a test waits for something the LNS does in milliseconds on an idle machine:
/// generous, so that a loaded machine (CI, parallel builds) does not fail the test.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// xlnsd running with `config` (to which `[management]` with a metrics address and a
/// socket is appended); killed on drop.
pub struct Daemon {
    pub child: Child,
    pub dir: PathBuf,
    pub metrics: String,
    pub socket: PathBuf,
    pub l2tp: SocketAddr,
}

impl Daemon {
    /// `config` must set `[l2tp] listen` to `l2tp`.
    pub fn start(name: &str, l2tp: SocketAddr, config: &str) -> Daemon {
        let dir = std::env::temp_dir().join(format!("xlns-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let metrics = format!("127.0.0.1:{}", free_port());
        let socket = dir.join("xlnsd.sock");
        std::fs::write(
            dir.join("xlnsd.toml"),
            format!(
                "{config}\n[management]\nmetrics = \"{metrics}\"\nsocket = \"{}\"\n",
                socket.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("xlnsd.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_xlnsd"))
            .arg("--config")
            .arg(dir.join("xlnsd.toml"))
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut daemon = Daemon {
            child,
            dir,
            metrics,
            socket,
            l2tp,
        };
        let deadline = Instant::now() + DEADLINE;
        while !daemon.socket.exists() || TcpStream::connect(&daemon.metrics).is_err() {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!("xlnsd exited with {status}:\n{}", daemon.log());
            }
            assert!(
                Instant::now() < deadline,
                "xlnsd did not start:\n{}",
                daemon.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        daemon
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("xlnsd.log")).unwrap_or_default()
    }

    pub fn scrape(&self) -> String {
        scrape(&self.metrics)
    }

    pub fn ctl_json(&self, args: &[&str]) -> Value {
        ctl_json(&self.socket, args)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("xlnsd log:\n{}", self.log());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A LAC and its subscribers' PPP over a UDP socket.
pub struct Lac {
    pub socket: UdpSocket,
    pub lns: SocketAddr,
    pub endpoint: Endpoint,
    /// What [`Lac::open_tunnel`] asks for (the tunnel secret, if any).
    pub params: TunnelParams,
    /// The credentials of the calls opened and not yet up at L2TP, in call order.
    pub pending: Vec<Credentials>,
    pub clients: HashMap<SessionKey, PppSession>,
    /// Sessions whose PPP came up, with their address, until their call is cleared.
    pub up: HashMap<SessionKey, Ipv4Addr>,
    /// The user name of every session whose PPP came up.
    pub users: HashMap<SessionKey, Vec<u8>>,
    /// Calls that were cleared, with the reason (the LNS's CDN, or our own close).
    pub down: HashMap<SessionKey, SessionDownReason>,
    /// Tunnels that came up and tunnels that went down (refused ones included).
    pub tunnels_up: usize,
    pub tunnels_down: usize,
    /// Subscribers that hung up: their call is cleared once their PPP is down.
    hanging_up: HashSet<SessionKey>,
}

impl Lac {
    /// A LAC for the LNS at `lns`, with no tunnel yet.
    pub fn new(lns: SocketAddr) -> Lac {
        Lac::with_host(lns, "xlns", None, 3)
    }

    /// A LAC for the LNS at `lns` that calls itself `host_name`, authenticates its tunnels
    /// with `secret` when there is one, and seeds its endpoint with `seed`.
    pub fn with_host(lns: SocketAddr, host_name: &str, secret: Option<&str>, seed: u64) -> Lac {
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
            users: HashMap::new(),
            down: HashMap::new(),
            tunnels_up: 0,
            tunnels_down: 0,
            hanging_up: HashSet::new(),
        }
    }

    /// Opens a tunnel to the LNS (SCCRQ); it comes up while the LAC is pumped.
    pub fn open_tunnel(&mut self) -> TunnelId {
        self.endpoint
            .open_tunnel(Instant::now(), self.lns, self.params.clone())
            .unwrap()
    }

    /// Opens a call in `tunnel` for the subscriber `user` (ICRQ); its PPP starts once the
    /// call is up, while the LAC is pumped.
    pub fn call(&mut self, tunnel: TunnelId, user: &str, password: &str) {
        self.pending.push(Credentials {
            user: user.as_bytes().to_vec(),
            password: password.to_owned(),
        });
        self.endpoint
            .open_session(Instant::now(), tunnel, OutgoingCall::default())
            .unwrap();
    }

    /// One tunnel and one call per subscriber; returns when every call's PPP is up (or
    /// fails the test after 30 s).
    pub fn dial(&mut self, subscribers: &[(&str, &str)]) {
        let tunnel = self.open_tunnel();
        let want = self.up.len() + subscribers.len();
        for (user, password) in subscribers {
            self.call(tunnel, user, password);
        }
        assert!(
            self.pump_until(DEADLINE, |l| l.up.len() >= want),
            "sessions did not come up: {:?}",
            self.up
        );
    }

    /// The subscriber `user` terminates its PPP (LCP Terminate-Request); once its PPP is
    /// down the LAC clears the call (CDN).
    pub fn hang_up(&mut self, user: &str) {
        let key = *self
            .users
            .iter()
            .find(|(k, u)| u.as_slice() == user.as_bytes() && self.up.contains_key(k))
            .unwrap_or_else(|| panic!("{user} is not up: {:?}", self.up))
            .0;
        self.hanging_up.insert(key);
        self.clients
            .get_mut(&key)
            .unwrap()
            .close(Instant::now(), DownReason::Admin);
    }

    /// Pumps until `done` holds or `limit` passed; whether `done` held.
    pub fn pump_until(&mut self, limit: Duration, done: impl Fn(&Lac) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if done(self) {
                return true;
            }
            self.pump(Duration::from_millis(50));
        }
        done(self)
    }

    /// Runs the LAC and its subscribers for `for_`.
    pub fn pump(&mut self, for_: Duration) {
        let until = Instant::now() + for_;
        let mut buf = vec![0u8; 65535];
        while Instant::now() < until {
            let now = Instant::now();
            self.endpoint.handle_timeout(now, &mut AcceptAll);
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
                    Event::SessionDown { key, reason } => {
                        if let Some(mut client) = self.clients.remove(&key) {
                            client.lower_down(now);
                        }
                        self.up.remove(&key);
                        self.down.insert(key, reason);
                    }
                    Event::TunnelUp { .. } => self.tunnels_up += 1,
                    Event::TunnelDown { .. } => self.tunnels_down += 1,
                }
            }
            let mut cleared = Vec::new();
            for (key, client) in &mut self.clients {
                while let Some((protocol, packet)) = client.poll_transmit() {
                    if let Some(tx) = self.endpoint.encapsulate_ppp(*key, protocol, &packet) {
                        self.socket.send_to(&tx.payload, tx.peer).unwrap();
                    }
                }
                while let Some(event) = client.poll_event() {
                    match event {
                        SessionEvent::Up(up) => {
                            self.up.insert(*key, up.address);
                            self.users.insert(*key, up.user.clone());
                        }
                        SessionEvent::Down { .. } if self.hanging_up.remove(key) => {
                            cleared.push(*key);
                        }
                        _ => {}
                    }
                }
            }
            for key in cleared {
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
                    &mut AcceptAll,
                )
                && let Ok(packet) = Packet::new_checked(data.payload)
                && let Some(client) = self.clients.get_mut(&data.key)
            {
                client.handle_frame(packet.protocol(), packet.payload(), Instant::now());
            }
        }
    }

    /// The LAC session whose subscriber got `address`.
    pub fn key_of(&self, address: Ipv4Addr) -> SessionKey {
        *self
            .up
            .iter()
            .find(|(_, a)| **a == address)
            .unwrap_or_else(|| panic!("no session with {address}: {:?}", self.up))
            .0
    }
}

/// Pumps every LAC in turn until `done` holds (or fails the test after [`DEADLINE`]).
pub fn pump_all_until(lacs: &mut [&mut Lac], what: &str, done: impl Fn(&[&mut Lac]) -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done(lacs) {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        for lac in lacs.iter_mut() {
            lac.pump(Duration::from_millis(30));
        }
    }
}

/// The CDN's Result Code, if the LNS cleared the call.
pub fn cdn_result(reason: Option<&SessionDownReason>) -> Option<u16> {
    match reason {
        Some(SessionDownReason::PeerCdn { result, .. }) => Some(*result),
        _ => None,
    }
}

/// Pumps every LAC in turn (which keeps their sessions alive) and scrapes `metrics` until
/// `done` holds of the scrape, which it returns (or fails the test after [`DEADLINE`]).
/// xlnsd publishes a snapshot once per second: wait for what the snapshot must show.
pub fn scrape_until(lacs: &mut [&mut Lac], metrics: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let text = scrape(metrics);
        if done(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "metrics never got there:\n{text}"
        );
        if lacs.is_empty() {
            std::thread::sleep(Duration::from_millis(100));
        }
        for lac in lacs.iter_mut() {
            lac.pump(Duration::from_millis(100));
        }
    }
}

pub fn scrape(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
    out.split_once("\r\n\r\n").unwrap().1.to_owned()
}

/// The value of the sample `name` (name and labels exactly; a name without labels also
/// matches the sample written `name{}`), if the scrape has it.
pub fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?;
        let rest = rest.strip_prefix("{}").unwrap_or(rest);
        rest.strip_prefix(' ')?.trim().parse().ok()
    })
}

/// The value of the sample `name`, which the scrape must have (see [`sample`]).
pub fn value(metrics: &str, name: &str) -> f64 {
    sample(metrics, name).unwrap_or_else(|| panic!("no sample {name} in\n{metrics}"))
}

pub fn ctl(socket: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xlnsctl"))
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

pub fn ctl_json(socket: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ctl(socket, &all).1).unwrap()
}

/// `promtool check metrics` on `text`, when promtool is installed.
pub fn promtool_check(text: &str) {
    let Ok(mut promtool) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!("promtool not installed: metrics format not checked");
        return;
    };
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

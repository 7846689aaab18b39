//! A running xlnsd (the binary, started with a configuration in a temporary directory) and
//! a LAC-role [`Endpoint`] whose subscribers run the client role of the PPP core over a
//! real UDP socket, in real time; plus the helpers to scrape `/metrics` and run xlnsctl.
//! Include it with `#[path = "support/live.rs"] mod live;`.
#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use xlns_controlplane::l2tp::endpoint::{
    Endpoint, EndpointConfig, Event, Gatekeeper, Role, SessionDecision, SessionDownReason,
    SessionKey, TunnelDecision, TunnelId, TunnelParams, TunnelRequest,
};
use xlns_controlplane::l2tp::session::OutgoingCall;
use xlns_controlplane::ppp::session::{Credentials, PppSession, SessionConfig, SessionEvent};
use xlns_dataplane::wire::ppp::{HeaderRepr, Packet};

pub struct OpenGate;

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
        let deadline = Instant::now() + Duration::from_secs(10);
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

/// The LAC and its subscribers' PPP over a UDP socket.
pub struct Lac {
    pub socket: UdpSocket,
    pub lns: SocketAddr,
    pub endpoint: Endpoint,
    pub pending: Vec<Credentials>,
    pub clients: HashMap<SessionKey, PppSession>,
    /// Sessions whose PPP came up, with their address.
    pub up: HashMap<SessionKey, Ipv4Addr>,
    /// Sessions the LNS cleared, with the reason (its CDN).
    pub down: HashMap<SessionKey, SessionDownReason>,
}

impl Lac {
    /// A LAC for the LNS at `lns`, with no tunnel yet.
    pub fn new(lns: SocketAddr) -> Lac {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        Lac {
            socket,
            lns,
            endpoint: Endpoint::new(
                EndpointConfig {
                    role: Role::Lac,
                    ..EndpointConfig::default()
                },
                3,
            ),
            pending: Vec::new(),
            clients: HashMap::new(),
            up: HashMap::new(),
            down: HashMap::new(),
        }
    }

    /// One tunnel and one call per subscriber; returns when every call's PPP is up (or
    /// fails the test after 10 s).
    pub fn dial(&mut self, subscribers: &[(&str, &str)]) {
        let now = Instant::now();
        let tunnel = self
            .endpoint
            .open_tunnel(
                now,
                self.lns,
                TunnelParams::from_config(&EndpointConfig::default()),
            )
            .unwrap();
        let want = self.up.len() + subscribers.len();
        for (user, password) in subscribers {
            self.pending.push(Credentials {
                user: user.as_bytes().to_vec(),
                password: (*password).to_owned(),
            });
            self.endpoint
                .open_session(now, tunnel, OutgoingCall::default())
                .unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.up.len() < want {
            assert!(
                Instant::now() < deadline,
                "sessions did not come up: {:?}",
                self.up
            );
            self.pump(Duration::from_millis(100));
        }
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
                    Event::SessionDown { key, reason } => {
                        if let Some(mut client) = self.clients.remove(&key) {
                            client.lower_down(now);
                        }
                        self.down.insert(key, reason);
                    }
                    Event::TunnelUp { .. } | Event::TunnelDown { .. } => {}
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

/// The CDN's Result Code, if the LNS cleared the call.
pub fn cdn_result(reason: Option<&SessionDownReason>) -> Option<u16> {
    match reason {
        Some(SessionDownReason::PeerCdn { result, .. }) => Some(*result),
        _ => None,
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

/// The value of the sample named `sample` (name and labels, exactly).
pub fn value(metrics: &str, sample: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(sample).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no sample {sample} in\n{metrics}"))
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

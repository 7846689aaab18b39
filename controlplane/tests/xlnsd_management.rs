//! xlnsd's operator interfaces against a running daemon: the test starts xlnsd with a
//! temporary configuration on 127.0.0.1, dials two PPP sessions through a LAC-role
//! [`Endpoint`] over a real UDP socket, then scrapes `/metrics` (checked by
//! `promtool check metrics` when it is installed) and runs every xlnsctl command.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
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

/// The LAC and its subscribers' PPP over a UDP socket.
struct Lac {
    socket: UdpSocket,
    lns: SocketAddr,
    endpoint: Endpoint,
    pending: Vec<Credentials>,
    clients: HashMap<SessionKey, PppSession>,
    up: HashMap<SessionKey, std::net::Ipv4Addr>,
}

impl Lac {
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

fn scrape(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
    out.split_once("\r\n\r\n").unwrap().1.to_owned()
}

fn value(metrics: &str, sample: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(sample).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no sample {sample} in\n{metrics}"))
}

fn ctl(socket: &Path, args: &[&str]) -> (bool, String) {
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

fn ctl_json(socket: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ctl(socket, &all).1).unwrap()
}

#[test]
fn metrics_and_xlnsctl_against_a_running_xlnsd() {
    let dir = std::env::temp_dir().join(format!("xlns-mgmt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let l2tp_port = free_port();
    let metrics = format!("127.0.0.1:{}", free_port());
    let socket = dir.join("xlnsd.sock");
    std::fs::write(dir.join("users"), "alice pw1\nbob pw2\n").unwrap();
    std::fs::write(
        dir.join("xlnsd.toml"),
        format!(
            "[l2tp]\nlisten = \"127.0.0.1:{l2tp_port}\"\n\n[ppp]\nauth = [\"pap\"]\ngateway = \"10.9.0.1\"\n\n\
             [[pool]]\nname = \"lab\"\ncidr = \"10.9.0.0/29\"\n\n[[lac]]\nname = \"lab-lac\"\n\n\
             [users]\nfile = \"{}\"\n\n[management]\nmetrics = \"{metrics}\"\nsocket = \"{}\"\n",
            dir.join("users").display(),
            socket.display()
        ),
    )
    .unwrap();
    let _daemon = Daemon(
        Command::new(env!("CARGO_BIN_EXE_xlnsd"))
            .arg("--config")
            .arg(dir.join("xlnsd.toml"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() || TcpStream::connect(&metrics).is_err() {
        assert!(Instant::now() < deadline, "xlnsd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let lns: SocketAddr = format!("127.0.0.1:{l2tp_port}").parse().unwrap();
    let mut lac = Lac {
        socket: udp,
        lns,
        endpoint: Endpoint::new(
            EndpointConfig {
                role: Role::Lac,
                ..EndpointConfig::default()
            },
            3,
        ),
        pending: ["alice", "bob"]
            .iter()
            .zip(["pw1", "pw2"])
            .map(|(u, p)| Credentials {
                user: u.as_bytes().to_vec(),
                password: p.to_owned(),
            })
            .collect(),
        clients: HashMap::new(),
        up: HashMap::new(),
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
    for _ in 0..2 {
        lac.endpoint
            .open_session(now, tunnel, OutgoingCall::default())
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while lac.up.len() < 2 {
        assert!(Instant::now() < deadline, "sessions did not come up");
        lac.pump(Duration::from_millis(100));
    }
    // One snapshot period.
    lac.pump(Duration::from_millis(1300));

    let text = scrape(&metrics);
    assert_eq!(value(&text, "xlns_sessions{state=\"up\"}"), 2.0);
    assert_eq!(value(&text, "xlns_tunnels{state=\"established\"}"), 1.0);
    assert_eq!(value(&text, "xlns_tunnels_by_lac{lac=\"lab-lac\"}"), 1.0);
    assert_eq!(value(&text, "xlns_sessions_by_lac{lac=\"lab-lac\"}"), 2.0);
    assert_eq!(value(&text, "xlns_pool_used{pool=\"lab\"}"), 2.0);
    assert_eq!(
        value(
            &text,
            "xlns_setup_latency_seconds_count{phase=\"icrq_iccn\"}"
        ),
        2.0
    );
    assert_eq!(
        value(
            &text,
            "xlns_setup_latency_seconds_count{phase=\"sccrq_scccn\"}"
        ),
        1.0
    );
    for phase in ["lcp", "auth", "ipcp"] {
        let sample = format!("xlns_setup_latency_seconds_count{{phase=\"{phase}\"}}");
        assert_eq!(value(&text, &sample), 2.0, "{phase}");
    }
    if let Ok(mut promtool) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
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
            "promtool: {}{}\n{text}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        eprintln!("promtool not installed: metrics format not checked");
    }

    // xlnsctl: every command.
    let tunnels = ctl_json(&socket, &["show", "tunnels"]);
    assert_eq!(tunnels["rows"].as_array().unwrap().len(), 1);
    let lns_tunnel = tunnels["rows"][0]["tunnel"].as_u64().unwrap();
    assert_eq!(tunnels["rows"][0]["lac"], "lab-lac");
    let (ok, human) = ctl(&socket, &["show", "tunnels"]);
    assert!(ok && human.starts_with("TUNNEL"), "{human}");

    let all = ctl_json(&socket, &["show", "sessions"]);
    assert_eq!(all["rows"].as_array().unwrap().len(), 2);
    let alice = ctl_json(&socket, &["show", "sessions", "--user", "alice"]);
    let rows = alice["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["state"], "up");
    let address = rows[0]["address"].as_str().unwrap().to_owned();
    let session = rows[0]["session"].as_u64().unwrap();
    let by_addr = ctl_json(&socket, &["show", "sessions", "--address", &address]);
    assert_eq!(by_addr["rows"][0]["user"], "alice");
    let t = lns_tunnel.to_string();
    assert_eq!(
        ctl_json(&socket, &["show", "sessions", "--tunnel", &t])["rows"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        ctl_json(&socket, &["show", "sessions", "--lac", "nope"])["rows"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let (ok, human) = ctl(&socket, &["show", "sessions", "--lac", "lab-lac"]);
    assert!(
        ok && human.contains("alice") && human.contains("bob"),
        "{human}"
    );
    let key = format!("{lns_tunnel}/{session}");
    let one = ctl_json(&socket, &["show", "session", &key]);
    assert_eq!(one["rows"][0]["user"], "alice");
    assert!(one["rows"][0]["ppp_up_ms"].as_f64().is_some());
    let pools = ctl_json(&socket, &["show", "pools"]);
    assert_eq!(pools["rows"][0]["pool"], "lab");
    assert_eq!(pools["rows"][0]["used"], 2);
    let (ok, _) = ctl(&socket, &["show", "workers"]);
    assert!(!ok, "no data plane: show workers is an error");

    let (ok, out) = ctl(&socket, &["clear", "session", &key]);
    assert!(ok, "{out}");
    lac.pump(Duration::from_millis(500));
    let left = ctl_json(&socket, &["show", "sessions"]);
    assert_eq!(left["rows"].as_array().unwrap().len(), 1);
    assert_eq!(left["rows"][0]["user"], "bob");
    lac.pump(Duration::from_millis(1200));
    let text = scrape(&metrics);
    assert_eq!(value(&text, "xlns_ppp_down_total{reason=\"admin\"}"), 1.0);
    assert_eq!(
        value(&text, "xlns_cdn_total{direction=\"sent\",result=\"3\"}"),
        1.0
    );

    let (ok, out) = ctl(&socket, &["clear", "tunnel", &t]);
    assert!(ok, "{out}");
    lac.pump(Duration::from_millis(500));
    assert_eq!(
        ctl_json(&socket, &["show", "sessions"])["rows"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let (ok, _) = ctl(&socket, &["clear", "tunnel", "9999"]);
    assert!(!ok);
    lac.pump(Duration::from_millis(1200));
    let text = scrape(&metrics);
    assert_eq!(
        value(&text, "xlns_stopccn_total{direction=\"sent\",result=\"1\"}"),
        1.0
    );
    let _ = std::fs::remove_dir_all(&dir);
}

//! xlnsd's RADIUS accounting ([`Accounting`] with [`PppSessions`]) against a real
//! FreeRADIUS whose `detail` file is checked: LAC-role endpoints whose subscribers run the
//! client role of the PPP core (virtual clock for PPP and accounting timers, real time for
//! RADIUS), as in `xlnsd_radius.rs`.
//!
//! * Start, Interim-Update and Stop of a RADIUS session with the attributes of issue #7,
//!   the Stop's counts equal to the data plane counters: the session is published into a
//!   real shared-memory segment ([`Publisher`], access interface a veth pair made by the
//!   test with a permanent neighbour entry for the LAC), and the test writes the worker
//!   counter column of its slot as xlns-dataplane would ([`Reader::counters`]).
//! * A session authenticated from the local users file is accounted too (Acct-Authentic
//!   Local); a shutdown closes it with Admin-Reboot and ends with Accounting-Off.
//!
//! The veth pair needs root (CAP_NET_ADMIN); without it the data plane test is skipped
//! with a message.
#![allow(clippy::unwrap_used, clippy::panic)]

#[path = "support/freeradius.rs"]
mod freeradius;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use freeradius::{DetailRecord, FreeRadius, SECRET, detail_value};
use xlns_controlplane::config::Config;
use xlns_controlplane::l2tp::endpoint::{
    Endpoint, EndpointConfig, Event, Gatekeeper, Role, SessionDecision, SessionKey, TunnelDecision,
    TunnelId, TunnelParams, TunnelRequest,
};
use xlns_controlplane::l2tp::session::OutgoingCall;
use xlns_controlplane::ppp::session::{
    Credentials, DownReason, PppSession, SessionConfig, SessionEvent,
};
use xlns_controlplane::ppp::users::Users;
use xlns_controlplane::shell::aaa::Aaa;
use xlns_controlplane::shell::acct::{Accounting, Answer, unix_now};
use xlns_controlplane::shell::dataplane::Publisher;
use xlns_controlplane::shell::endpoint_config;
use xlns_controlplane::shell::gate::Gate;
use xlns_controlplane::shell::ppp::{PppSessions, traffic_of};
use xlns_dataplane::shm::Reader;
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

struct Sim {
    now: Instant,
    lns: Endpoint,
    gate: Gate,
    ppp: PppSessions,
    lac: Endpoint,
    lns_addr: SocketAddr,
    lac_addr: SocketAddr,
    wire: VecDeque<(bool, Vec<u8>)>,
    pending: VecDeque<Credentials>,
    clients: HashMap<SessionKey, PppSession>,
    up: HashMap<SessionKey, std::net::Ipv4Addr>,
    aaa: Aaa,
    acct: Accounting,
    rt: tokio::runtime::Runtime,
}

impl Sim {
    fn new(config: &str, dataplane: bool) -> Sim {
        let config = Config::from_toml_str(config, "sim.toml").unwrap();
        let users = Users::parse("localuser local-pass\n", "users").unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let radius = config.radius.as_ref().unwrap();
        let now = Instant::now();
        let lns_addr: SocketAddr = "192.0.2.1:1701".parse().unwrap();
        let mut ppp = PppSessions::new(&config, users, config.build_pools().unwrap());
        ppp.enable_accounting();
        if dataplane {
            ppp.set_dataplane(
                Publisher::open(config.dataplane.as_ref().unwrap(), lns_addr, now).unwrap(),
            );
        }
        let (aaa, acct) = {
            let _guard = rt.enter();
            let ppp = &ppp;
            (
                Aaa::new(radius, &config.lacs),
                Accounting::new(radius, &config.lacs, |tunnel, session| {
                    ppp.orphan_traffic(SessionKey { tunnel, session }).is_some()
                })
                .unwrap(),
            )
        };
        Sim {
            now,
            lns: Endpoint::new(endpoint_config(&config), 1),
            gate: Gate::new(&config),
            ppp,
            lac: Endpoint::new(
                EndpointConfig {
                    role: Role::Lac,
                    ..EndpointConfig::default()
                },
                7,
            ),
            lns_addr,
            lac_addr: "192.0.2.2:1701".parse().unwrap(),
            wire: VecDeque::new(),
            pending: VecDeque::new(),
            clients: HashMap::new(),
            up: HashMap::new(),
            aaa,
            acct,
            rt,
        }
    }

    fn dial(&mut self, subscribers: &[(&str, &str)]) {
        let tunnel = self
            .lac
            .open_tunnel(
                self.now,
                self.lns_addr,
                TunnelParams::from_config(&EndpointConfig::default()),
            )
            .unwrap();
        for (user, password) in subscribers {
            self.pending.push_back(Credentials {
                user: user.as_bytes().to_vec(),
                password: (*password).to_owned(),
            });
            let call = OutgoingCall {
                calling_number: Some(b"0612345678".to_vec()),
                called_number: Some(b"4711".to_vec()),
                tx_connect_speed: 100_000_000,
                ..OutgoingCall::default()
            };
            self.lac.open_session(self.now, tunnel, call).unwrap();
        }
    }

    /// The LNS's key of the session whose subscriber got `address`.
    fn lns_key(&self, address: std::net::Ipv4Addr) -> SessionKey {
        let lac_key = self
            .up
            .iter()
            .find(|(_, a)| **a == address)
            .map(|(k, _)| *k)
            .unwrap();
        self.ppp
            .keys()
            .find(|k| {
                self.lns
                    .session_info(*k)
                    .is_some_and(|(_, c)| c.peer_session == lac_key.session)
            })
            .unwrap()
    }

    fn settle(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            while let Some(tx) = self.ppp.poll_transmit() {
                self.wire.push_back((false, tx.payload));
            }
            while let Some(tx) = self.lns.poll_transmit(self.now) {
                self.wire.push_back((false, tx.payload));
            }
            while let Some(event) = self.lns.poll_event() {
                moved = true;
                match event {
                    Event::SessionUp { key, info } => {
                        self.gate.session_up(key);
                        let mode = self.gate.proxy_mode(key);
                        let aaa = self.aaa.mode_for(self.gate.lac_name(key));
                        self.ppp
                            .session_up_with(self.now, key, &info, mode, aaa, &mut self.lns);
                        if !self.acct.accounts(self.gate.lac_name(key)) {
                            self.ppp.skip_accounting(key);
                        }
                    }
                    Event::SessionDown { key, reason } => {
                        self.acct.core_mut().l2tp_down(key, &reason);
                        self.ppp.session_down(self.now, key, &mut self.lns)
                    }
                    Event::TunnelUp { tunnel, .. } => self.gate.tunnel_up(tunnel),
                    Event::TunnelDown { .. } => {}
                }
            }
            moved |= self.radius();
            self.pump_clients();
            while let Some(tx) = self.lac.poll_transmit(self.now) {
                self.wire.push_back((true, tx.payload));
            }
            while let Some(event) = self.lac.poll_event() {
                moved = true;
                match event {
                    Event::SessionUp { key, .. } => {
                        let credentials = self.pending.pop_front().unwrap();
                        let mut client = PppSession::with_seed(
                            SessionConfig {
                                keepalive: None,
                                ..SessionConfig::client(credentials)
                            },
                            u64::from(key.session),
                        );
                        client.start(self.now, None);
                        self.clients.insert(key, client);
                    }
                    Event::SessionDown { key, .. } => {
                        if let Some(mut client) = self.clients.remove(&key) {
                            client.lower_down(self.now);
                        }
                    }
                    Event::TunnelUp { .. } | Event::TunnelDown { .. } => {}
                }
            }
            while let Some((to_lns, bytes)) = self.wire.pop_front() {
                moved = true;
                if to_lns {
                    if let Some(data) =
                        self.lns
                            .handle_datagram(self.now, self.lac_addr, &bytes, &mut self.gate)
                    {
                        self.ppp
                            .handle_frame(self.now, data.key, data.payload, &mut self.lns);
                    }
                } else if let Some(data) =
                    self.lac
                        .handle_datagram(self.now, self.lns_addr, &bytes, &mut OpenGate)
                {
                    let packet = Packet::new_checked(data.payload).unwrap();
                    if let Some(client) = self.clients.get_mut(&data.key) {
                        client.handle_frame(packet.protocol(), packet.payload(), self.now);
                    }
                }
            }
            if !moved {
                return;
            }
        }
        panic!("the simulation does not settle");
    }

    fn pump_clients(&mut self) {
        let keys: Vec<SessionKey> = self.clients.keys().copied().collect();
        for key in keys {
            let client = self.clients.get_mut(&key).unwrap();
            while let Some((protocol, packet)) = client.poll_transmit() {
                let header = HeaderRepr::for_sending(protocol, false, false);
                let mut frame = vec![0u8; header.buffer_len()];
                header.emit(&mut frame);
                frame.extend_from_slice(&packet);
                if let Some(tx) = self.lac.encapsulate(key, &frame) {
                    self.wire.push_back((true, tx.payload));
                }
            }
            while let Some(event) = client.poll_event() {
                match event {
                    SessionEvent::Up(up) => {
                        self.up.insert(key, up.address);
                    }
                    SessionEvent::Down { .. } => {
                        self.lac.close_session(self.now, key, 1, None);
                    }
                    _ => {}
                }
            }
        }
    }

    /// Authentication through the real client, then accounting: notes booked, the spool
    /// synced, every request sent and answered. Whether anything happened.
    fn radius(&mut self) -> bool {
        let mut sent = 0;
        {
            let _guard = self.rt.enter();
            while let Some((key, request, id)) = self.ppp.poll_verify() {
                let ctx = self.aaa.context(key, id, &self.lns, Some(self.lns_addr));
                self.aaa.verify(key, request, &ctx);
                sent += 1;
            }
        }
        for _ in 0..sent {
            let answer = self.rt.block_on(self.aaa.recv()).unwrap();
            self.ppp.verify_answer(
                self.now,
                answer.key,
                answer.id,
                answer.result,
                &mut self.lns,
            );
        }
        let mut booked = false;
        while let Some((tunnel, session, c)) = self
            .ppp
            .dataplane_mut()
            .and_then(|d| d.poll_removed_orphan())
        {
            booked = true;
            self.acct
                .core_mut()
                .orphan_gone(unix_now(), tunnel, session, &traffic_of(&c));
        }
        while let Some(note) = self.ppp.poll_acct() {
            booked = true;
            let (aaa, lns, local) = (&self.aaa, &self.lns, self.lns_addr);
            self.acct.note(self.now, note, |key, id| {
                aaa.context(key, Some(id.to_owned()), lns, Some(local))
            });
        }
        self.flush_acct();
        sent > 0 || booked
    }

    /// Sends what the spool holds and waits for every answer.
    fn flush_acct(&mut self) {
        loop {
            {
                let _guard = self.rt.enter();
                self.acct.dispatch();
            }
            if self.acct.core().in_flight() == 0 {
                return;
            }
            let answer = self
                .rt
                .block_on(async {
                    tokio::time::timeout(Duration::from_secs(10), self.acct.recv()).await
                })
                .unwrap()
                .unwrap();
            assert_eq!(
                answer.1,
                Answer::Acknowledged,
                "FreeRADIUS did not acknowledge a record"
            );
            self.acct.handle_answer(answer);
        }
    }

    fn run_for(&mut self, duration: Duration) {
        let until = self.now + duration;
        loop {
            self.settle();
            let mut next = [
                self.lns.poll_timeout(),
                self.ppp.poll_timeout(),
                self.lac.poll_timeout(),
                self.acct.core().poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .chain(self.clients.values().filter_map(PppSession::poll_timeout))
            .min();
            if next.is_none_or(|at| at > until) {
                next = None;
            }
            let Some(at) = next else {
                self.now = until;
                return;
            };
            self.now = self.now.max(at);
            self.lns.handle_timeout(self.now, &mut self.gate);
            self.ppp.handle_timeout(self.now, &mut self.lns);
            let ppp = &self.ppp;
            self.acct
                .core_mut()
                .handle_timeout(self.now, unix_now(), |k| ppp.traffic(k));
            self.lac.handle_timeout(self.now, &mut OpenGate);
            for client in self.clients.values_mut() {
                client.handle_timeout(self.now);
            }
        }
    }
}

fn config(fr: &FreeRadius, lac_aaa: &str, dataplane: &str) -> String {
    format!(
        r#"
[ppp]
auth = ["pap"]
lcp_echo_interval = "30s"
gateway = "10.11.12.1"

[[pool]]
name = "p"
cidr = "10.11.12.0/24"

[radius]
auth = "radius"
nas_identifier = "xlns-acct"
nas_ip_address = "192.0.2.1"
timeout = "500ms"
[[radius.auth_server]]
address = "{}"
secret = "{SECRET}"
[[radius.acct_server]]
address = "{}"
secret = "{SECRET}"

[[lac]]
name = "any"
aaa = "{lac_aaa}"
{dataplane}
"#,
        fr.auth, fr.acct
    )
}

/// The detail records of Acct-Session-Id `id`, by Acct-Status-Type.
fn records_of<'a>(detail: &'a [DetailRecord], id: &str) -> Vec<(&'a str, &'a DetailRecord)> {
    detail
        .iter()
        .filter(|r| detail_value(r, "Acct-Session-Id") == Some(id))
        .map(|r| (detail_value(r, "Acct-Status-Type").unwrap_or("?"), r))
        .collect()
}

fn num(r: &DetailRecord, name: &str) -> u64 {
    detail_value(r, name)
        .unwrap_or_else(|| panic!("no {name} in {r:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number in {r:?}"))
}

/// A veth pair with a permanent neighbour entry for the simulated LAC (192.0.2.2), so
/// that the publisher finds the LAC's MAC; removed on drop.
struct Veth(String);

impl Veth {
    fn create() -> Option<Veth> {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("xac{}x{n}", std::process::id() % 100_000);
        let ip = |args: &[&str]| {
            Command::new("ip")
                .args(args)
                .status()
                .is_ok_and(|s| s.success())
        };
        let _ = ip(&["link", "del", &name]);
        let peer = format!("{name}p");
        if !ip(&["link", "add", &name, "type", "veth", "peer", "name", &peer]) {
            return None;
        }
        let veth = Veth(name.clone());
        assert!(ip(&["link", "set", &name, "up"]));
        assert!(ip(&["link", "set", &peer, "up"]));
        assert!(ip(&[
            "neigh",
            "replace",
            "192.0.2.2",
            "lladdr",
            "02:00:00:00:ac:02",
            "dev",
            &name,
            "nud",
            "permanent",
        ]));
        Some(veth)
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).status();
    }
}

#[test]
fn start_interim_and_stop_reach_freeradius_with_the_data_plane_counters() {
    let Some(fr) = FreeRadius::start("acct-dp") else {
        return;
    };
    let Some(veth) = Veth::create() else {
        eprintln!("cannot create a veth pair (not root?): skipped");
        return;
    };
    let shm = format!("/dev/shm/xlns-acct-test-{}", std::process::id());
    let _ = std::fs::remove_file(&shm);
    let dataplane = format!(
        "[dataplane]\nshm = \"{shm}\"\nmax_sessions = 64\nmax_workers = 2\naccess_interface = \"{}\"\n",
        veth.0
    );
    let mut sim = Sim::new(&config(&fr, "radius", &dataplane), true);
    sim.dial(&[("papuser", "pap-pass")]);
    sim.run_for(Duration::from_secs(5));
    // papuser: Framed-IP-Address 10.11.12.13, Class "class-pap", Acct-Interim-Interval 300.
    let address = std::net::Ipv4Addr::new(10, 11, 12, 13);
    assert_eq!(sim.up.values().copied().collect::<Vec<_>>(), vec![address]);
    let key = sim.lns_key(address);
    assert!(sim.ppp.dataplane().unwrap().is_published(key));
    let id = sim.ppp.acct_session_id(key).unwrap().to_owned();

    // The data plane's worker 1 counts traffic for the session's slot.
    let reader = Reader::attach(std::path::Path::new(&shm)).unwrap();
    let (slot, _) = reader.lookup_upstream(key.tunnel, key.session).unwrap();
    let worker = reader.counters(1).unwrap();
    for _ in 0..10 {
        worker.add_upstream(slot, 1_000);
    }
    for _ in 0..4 {
        worker.add_downstream(slot, 1_500);
    }
    sim.run_for(Duration::from_secs(300));
    let detail = fr.detail();
    let recs = records_of(&detail, &id);
    let statuses: Vec<&str> = recs.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, vec!["Start", "Interim-Update"], "{detail:#?}");
    let interim = recs[1].1;
    assert_eq!(num(interim, "Acct-Input-Octets"), 10_000);
    assert_eq!(num(interim, "Acct-Input-Packets"), 10);
    assert_eq!(num(interim, "Acct-Output-Octets"), 6_000);
    assert_eq!(num(interim, "Acct-Output-Packets"), 4);
    assert!(num(interim, "Acct-Session-Time") >= 299);

    // More traffic, one "packet" past 2^32 octets so that the Gigawords show.
    worker.add_upstream(slot, 5 << 32);
    for _ in 0..3 {
        worker.add_downstream(slot, 700);
    }
    sim.run_for(Duration::from_secs(10));
    let lac_key = *sim.clients.keys().next().unwrap();
    sim.clients
        .get_mut(&lac_key)
        .unwrap()
        .close(sim.now, DownReason::Admin);
    sim.run_for(Duration::from_secs(15));
    assert!(sim.ppp.is_empty());

    let detail = fr.detail();
    let recs = records_of(&detail, &id);
    let statuses: Vec<&str> = recs.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        statuses,
        vec!["Start", "Interim-Update", "Stop"],
        "{detail:#?}"
    );
    let (start, stop) = (recs[0].1, recs[2].1);
    let input = 10_000u64 + (5 << 32);
    assert_eq!(num(stop, "Acct-Input-Octets"), input & 0xffff_ffff);
    assert_eq!(num(stop, "Acct-Input-Gigawords"), 5);
    assert_eq!(num(stop, "Acct-Input-Packets"), 11);
    assert_eq!(num(stop, "Acct-Output-Octets"), 6_000 + 2_100);
    assert_eq!(num(stop, "Acct-Output-Gigawords"), 0);
    assert_eq!(num(stop, "Acct-Output-Packets"), 7);
    assert!(num(stop, "Acct-Session-Time") >= 310);
    assert_eq!(
        detail_value(stop, "Acct-Terminate-Cause"),
        Some("User-Request")
    );
    for r in [start, stop] {
        assert_eq!(detail_value(r, "User-Name"), Some("papuser"));
        assert_eq!(detail_value(r, "NAS-Identifier"), Some("xlns-acct"));
        assert_eq!(detail_value(r, "NAS-IP-Address"), Some("192.0.2.1"));
        assert_eq!(num(r, "NAS-Port"), u64::from(key.session));
        assert_eq!(detail_value(r, "NAS-Port-Type"), Some("Virtual"));
        assert_eq!(detail_value(r, "Service-Type"), Some("Framed-User"));
        assert_eq!(detail_value(r, "Framed-Protocol"), Some("PPP"));
        assert_eq!(detail_value(r, "Framed-IP-Address"), Some("10.11.12.13"));
        assert_eq!(detail_value(r, "Class"), Some("0x636c6173732d706170"));
        assert_eq!(detail_value(r, "Acct-Authentic"), Some("RADIUS"));
        assert_eq!(num(r, "Acct-Delay-Time"), 0);
        assert_eq!(detail_value(r, "Tunnel-Type:1"), Some("L2TP"), "{r:?}");
        assert_eq!(
            detail_value(r, "Tunnel-Client-Endpoint:1"),
            Some("192.0.2.2")
        );
        assert_eq!(
            detail_value(r, "Tunnel-Server-Endpoint:1"),
            Some("192.0.2.1")
        );
        assert_eq!(
            detail_value(r, "Tunnel-Assignment-Id:1"),
            Some(key.tunnel.to_string().as_str())
        );
        assert_eq!(detail_value(r, "Calling-Station-Id"), Some("0612345678"));
        assert_eq!(detail_value(r, "Called-Station-Id"), Some("4711"));
        assert_eq!(detail_value(r, "Connect-Info"), Some("100000000"));
        assert_eq!(detail_value(r, "Acct-Session-Id"), Some(id.as_str()));
        assert!(detail_value(r, "Event-Timestamp").is_some());
    }
    let ons = detail
        .iter()
        .filter(|r| detail_value(r, "Acct-Status-Type") == Some("Accounting-On"))
        .count();
    assert_eq!(ons, 1, "Accounting-On at start");
    assert_eq!(
        detail_value(&detail[0], "Acct-Status-Type"),
        Some("Accounting-On"),
        "Accounting-On first"
    );
    drop(worker);
    drop(reader);
    let _ = std::fs::remove_file(&shm);
}

#[test]
fn local_sessions_are_accounted_and_a_shutdown_ends_with_accounting_off() {
    let Some(fr) = FreeRadius::start("acct-local") else {
        return;
    };
    let mut sim = Sim::new(&config(&fr, "local", ""), false);
    sim.dial(&[("localuser", "local-pass")]);
    sim.run_for(Duration::from_secs(5));
    assert_eq!(sim.up.len(), 1);
    assert_eq!(sim.aaa.stats().requests, 0, "authenticated locally");
    let key = sim.ppp.keys().next().unwrap();
    let id = sim.ppp.acct_session_id(key).unwrap().to_owned();

    // Shutdown as the shell does it: Stops say Admin-Reboot, then Accounting-Off.
    sim.acct.core_mut().begin_shutdown();
    sim.ppp.close_all(sim.now, &mut sim.lns);
    sim.run_for(Duration::from_secs(5));
    assert!(sim.ppp.is_empty());
    {
        let Sim { rt, acct, .. } = &mut sim;
        rt.block_on(acct.drain(Duration::from_secs(5)));
    }
    assert!(sim.acct.core().spool().is_empty());

    let detail = fr.detail();
    let recs = records_of(&detail, &id);
    let statuses: Vec<&str> = recs.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, vec!["Start", "Stop"], "{detail:#?}");
    let stop = recs[1].1;
    assert_eq!(detail_value(stop, "User-Name"), Some("localuser"));
    assert_eq!(detail_value(stop, "Acct-Authentic"), Some("Local"));
    assert_eq!(
        detail_value(stop, "Acct-Terminate-Cause"),
        Some("Admin-Reboot")
    );
    assert_eq!(detail_value(stop, "Class"), None);
    // No data plane and no IP traffic through xlnsd's socket: zero counts.
    assert_eq!(num(stop, "Acct-Input-Octets"), 0);
    assert_eq!(num(stop, "Acct-Output-Packets"), 0);
    let last = detail.last().unwrap();
    assert_eq!(
        detail_value(last, "Acct-Status-Type"),
        Some("Accounting-Off")
    );
    assert_eq!(detail_value(last, "NAS-Identifier"), Some("xlns-acct"));
}

#[test]
fn a_lac_with_accounting_false_is_not_accounted() {
    let Some(fr) = FreeRadius::start("acct-off") else {
        return;
    };
    let mut sim = Sim::new(&config(&fr, "local", "accounting = false\n"), false);
    sim.dial(&[("localuser", "local-pass")]);
    sim.run_for(Duration::from_secs(5));
    assert_eq!(sim.up.len(), 1);
    let lac_key = *sim.clients.keys().next().unwrap();
    sim.clients
        .get_mut(&lac_key)
        .unwrap()
        .close(sim.now, DownReason::Admin);
    sim.run_for(Duration::from_secs(15));
    assert!(sim.ppp.is_empty());
    let statuses: Vec<String> = fr
        .detail()
        .iter()
        .filter_map(|r| detail_value(r, "Acct-Status-Type").map(str::to_owned))
        .collect();
    assert_eq!(statuses, vec!["Accounting-On"], "the NAS only");
    assert_eq!(sim.acct.core().stats().starts, 0);
}

/// xlnsd dies (the simulation is dropped: nothing is closed, as with SIGKILL) while the
/// data plane keeps forwarding a session; the next run closes that session's accounting
/// when the data plane removes the orphan, with its final counters.
#[test]
fn a_session_the_data_plane_outlives_xlnsd_is_stopped_with_its_final_counters() {
    let Some(fr) = FreeRadius::start("acct-orphan") else {
        return;
    };
    let Some(veth) = Veth::create() else {
        eprintln!("cannot create a veth pair (not root?): skipped");
        return;
    };
    let dir = std::env::temp_dir().join(format!("xlns-acct-orphan-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let shm = format!("/dev/shm/xlns-acct-orphan-{}", std::process::id());
    let _ = std::fs::remove_file(&shm);
    let dataplane = format!(
        "[dataplane]\nshm = \"{shm}\"\nmax_sessions = 64\nmax_workers = 2\naccess_interface = \"{}\"\n",
        veth.0
    );
    let config = config(&fr, "radius", &dataplane).replace(
        "timeout = \"500ms\"\n",
        &format!(
            "timeout = \"500ms\"\nspool = \"{}\"\n",
            dir.join("acct.spool").display()
        ),
    );
    let mut sim = Sim::new(&config, true);
    sim.dial(&[("papuser", "pap-pass")]);
    sim.run_for(Duration::from_secs(5));
    let key = sim.lns_key(std::net::Ipv4Addr::new(10, 11, 12, 13));
    let id = sim.ppp.acct_session_id(key).unwrap().to_owned();
    let reader = Reader::attach(std::path::Path::new(&shm)).unwrap();
    let (slot, _) = reader.lookup_upstream(key.tunnel, key.session).unwrap();
    let worker = reader.counters(1).unwrap();
    for _ in 0..10 {
        worker.add_upstream(slot, 1_000);
    }
    for _ in 0..4 {
        worker.add_downstream(slot, 1_500);
    }
    sim.run_for(Duration::from_secs(5));
    drop(sim);

    let mut sim = Sim::new(&config, true);
    assert_eq!(sim.ppp.dataplane().unwrap().orphans(), 1);
    assert_eq!(sim.acct.core().orphans(), 1, "waits for the data plane");
    sim.run_for(Duration::from_secs(1));
    // The data plane still forwards the orphan after the restart.
    for _ in 0..2 {
        worker.add_upstream(slot, 500);
    }
    sim.run_for(Duration::from_secs(10));
    let statuses = |fr: &FreeRadius| -> Vec<String> {
        records_of(&fr.detail(), &id)
            .iter()
            .map(|(s, _)| (*s).to_owned())
            .collect()
    };
    assert_eq!(statuses(&fr), vec!["Start"], "no Stop while it forwards");
    // Idle for ORPHAN_IDLE (60 s): removed, and the Stop goes.
    sim.run_for(Duration::from_secs(70));
    assert_eq!(sim.ppp.dataplane().unwrap().orphans(), 0);
    assert_eq!(sim.acct.core().orphans(), 0);
    assert_eq!(statuses(&fr), vec!["Start", "Stop"]);
    let detail = fr.detail();
    let recs = records_of(&detail, &id);
    let stop = recs[1].1;
    assert_eq!(
        detail_value(stop, "Acct-Terminate-Cause"),
        Some("NAS-Reboot")
    );
    assert_eq!(num(stop, "Acct-Input-Octets"), 11_000);
    assert_eq!(num(stop, "Acct-Input-Packets"), 12);
    assert_eq!(num(stop, "Acct-Output-Octets"), 6_000);
    assert_eq!(num(stop, "Acct-Output-Packets"), 4);
    assert_eq!(detail_value(stop, "User-Name"), Some("papuser"));
    assert_eq!(detail_value(stop, "Class"), Some("0x636c6173732d706170"));
    assert!(detail_value(stop, "Acct-Session-Time").is_some());
    drop(worker);
    drop(reader);
    drop(sim);
    // A third run finds nothing open.
    let sim = Sim::new(&config, false);
    assert_eq!(sim.acct.core().orphans(), 0);
    assert_eq!(sim.acct.core().spool().open_sessions(), 0);
    let _ = std::fs::remove_file(&shm);
    let _ = std::fs::remove_dir_all(&dir);
}

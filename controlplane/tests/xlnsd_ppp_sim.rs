//! The xlnsd PPP glue ([`PppSessions`] with the shell's [`Gate`]) against LAC-role
//! endpoints whose subscribers run the client role of the same PPP core, with a virtual
//! clock: sessions come up with pool addresses, a wrong password gets a CDN with the
//! RFC 3145 cause, an exhausted pool gets result code 4, a silent peer is found by the LCP
//! echo, a peer that terminated LCP is cleared by its LAC's CDN or by ours after the wait,
//! and on every path the PPP state and the addresses are freed.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use xlns_controlplane::config::Config;
use xlns_controlplane::l2tp::endpoint::{
    Endpoint, EndpointConfig, Event, Gatekeeper, Role, SessionDecision, SessionDownReason,
    SessionKey, TunnelDecision, TunnelId, TunnelParams, TunnelRequest,
};
use xlns_controlplane::l2tp::session::OutgoingCall;
use xlns_controlplane::ppp::session::{
    Credentials, DownReason, PppSession, SessionConfig, SessionEvent,
};
use xlns_controlplane::ppp::users::Users;
use xlns_controlplane::shell::endpoint_config;
use xlns_controlplane::shell::gate::Gate;
use xlns_controlplane::shell::ppp::{PEER_CDN_WAIT, PppSessions};
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

/// What the LAC side saw of one call.
#[derive(Debug, Default)]
struct Call {
    address: Option<std::net::Ipv4Addr>,
    ppp_down: Option<DownReason>,
    cdn: Option<SessionDownReason>,
}

struct Sim {
    now: Instant,
    lns: Endpoint,
    gate: Gate,
    ppp: PppSessions,
    lac: Endpoint,
    lns_addr: SocketAddr,
    lac_addr: SocketAddr,
    /// (to the LNS?, datagram)
    wire: VecDeque<(bool, Vec<u8>)>,
    /// Subscribers waiting for their call to come up, in call order.
    pending: VecDeque<Credentials>,
    clients: HashMap<SessionKey, PppSession>,
    calls: HashMap<SessionKey, Call>,
    /// The LAC (and its subscribers) went silent: nothing it sends arrives.
    lac_dead: bool,
    /// Whether the LAC clears a call (CDN) when its subscriber's PPP goes down.
    lac_sends_cdn: bool,
}

const CONFIG: &str = r#"
[ppp]
lcp_echo_interval = "1s"
lcp_echo_failures = 3
gateway = "10.0.0.1"
dns = ["192.0.2.53"]

[[pool]]
name = "p"
cidr = "10.0.0.0/29"

[[lac]]
name = "any"
"#;

impl Sim {
    fn new(config: &str) -> Sim {
        let config = Config::from_toml_str(config, "sim.toml").unwrap();
        let users = Users::parse("user1 pw1\nuser2 pw2\nuser3 pw3\n", "users").unwrap();
        let now = Instant::now();
        let lac = Endpoint::new(
            EndpointConfig {
                role: Role::Lac,
                ..EndpointConfig::default()
            },
            7,
        );
        Sim {
            now,
            lns: Endpoint::new(endpoint_config(&config), 1),
            gate: Gate::new(&config),
            ppp: PppSessions::new(&config, users, config.build_pools().unwrap()),
            lac,
            lns_addr: "192.0.2.1:1701".parse().unwrap(),
            lac_addr: "192.0.2.2:1701".parse().unwrap(),
            wire: VecDeque::new(),
            pending: VecDeque::new(),
            clients: HashMap::new(),
            calls: HashMap::new(),
            lac_dead: false,
            lac_sends_cdn: true,
        }
    }

    /// One tunnel, and one call in it per subscriber.
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
            self.lac
                .open_session(self.now, tunnel, OutgoingCall::default())
                .unwrap();
        }
    }

    /// Moves every output until nothing is in flight.
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
                        self.ppp
                            .session_up(self.now, key, &info, mode, &mut self.lns);
                    }
                    Event::SessionDown { key, .. } => {
                        self.ppp.session_down(self.now, key, &mut self.lns)
                    }
                    Event::TunnelUp { tunnel, .. } => self.gate.tunnel_up(tunnel),
                    Event::TunnelDown { .. } => {}
                }
            }
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
                        self.calls.entry(key).or_default();
                    }
                    Event::SessionDown { key, reason } => {
                        self.calls.entry(key).or_default().cdn = Some(reason);
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
                    if self.lac_dead {
                        continue;
                    }
                    if let Some(data) =
                        self.lns
                            .handle_datagram(self.now, self.lac_addr, &bytes, &mut self.gate)
                    {
                        self.ppp
                            .handle_frame(self.now, data.key, data.payload, &mut self.lns);
                    }
                } else if !self.lac_dead
                    && let Some(data) =
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
                let call = self.calls.entry(key).or_default();
                match event {
                    SessionEvent::Up(up) => call.address = Some(up.address),
                    SessionEvent::Down { reason, .. } => {
                        call.ppp_down = Some(reason);
                        if self.lac_sends_cdn {
                            self.lac.close_session(self.now, key, 1, None);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// Runs timers and traffic until `until`.
    fn run_for(&mut self, duration: Duration) {
        let until = self.now + duration;
        loop {
            self.settle();
            let mut next = [
                self.lns.poll_timeout(),
                self.ppp.poll_timeout(),
                self.lac.poll_timeout(),
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
            if !self.lac_dead {
                self.lac.handle_timeout(self.now, &mut OpenGate);
                for client in self.clients.values_mut() {
                    client.handle_timeout(self.now);
                }
            }
        }
    }

    fn pool_used(&self) -> u32 {
        self.ppp.pools().get("p").unwrap().counters().used
    }

    fn assert_all_freed(&mut self) {
        assert!(self.ppp.is_empty(), "{} PPP sessions left", self.ppp.len());
        assert_eq!(self.pool_used(), 0);
        assert_eq!(self.ppp.poll_timeout(), None);
        assert_eq!(self.ppp.timer_entries(), 0);
    }
}

fn cdn_result(reason: &Option<SessionDownReason>) -> Option<(u16, Option<u16>)> {
    match reason {
        Some(SessionDownReason::PeerCdn {
            result, ppp_cause, ..
        }) => Some((*result, ppp_cause.as_ref().map(|c| c.code))),
        _ => None,
    }
}

#[test]
fn sessions_up_wrong_password_refused_then_everything_freed() {
    let mut sim = Sim::new(CONFIG);
    sim.dial(&[("user1", "pw1"), ("user2", "wrong"), ("user3", "pw3")]);
    sim.run_for(Duration::from_secs(5));
    let mut up: Vec<_> = sim.calls.values().filter_map(|c| c.address).collect();
    up.sort();
    assert_eq!(up.len(), 2, "{:?}", sim.calls);
    assert_ne!(up[0], up[1]);
    assert!(
        up.iter()
            .all(|a| a.octets()[..3] == [10, 0, 0] && a.octets()[3] != 1)
    );
    assert_eq!(sim.pool_used(), 2);
    // The wrong password: the LAC got a CDN, result 3 with the RFC 3145 cause 16.
    let refused: Vec<_> = sim.calls.values().filter(|c| c.address.is_none()).collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(cdn_result(&refused[0].cdn), Some((3, Some(16))));
    assert_eq!(refused[0].ppp_down, Some(DownReason::AuthFailed));
    assert_eq!(sim.ppp.stats().auth_failures, 1);
    assert_eq!(sim.ppp.len(), 2);

    // The subscribers hang up: LCP Terminate-Request, the LAC clears the calls.
    let keys: Vec<SessionKey> = sim.clients.keys().copied().collect();
    for key in keys {
        let now = sim.now;
        sim.clients
            .get_mut(&key)
            .unwrap()
            .close(now, DownReason::Admin);
    }
    sim.run_for(Duration::from_secs(5));
    sim.assert_all_freed();
    assert_eq!(sim.ppp.stats().sessions_down, 3);
}

#[test]
fn exhausted_pool_refuses_with_result_4() {
    // A /30 holds .1 and .2; .1 is the gateway: one address.
    let config = CONFIG.replace("10.0.0.0/29", "10.0.0.0/30");
    let mut sim = Sim::new(&config);
    sim.dial(&[("user1", "pw1"), ("user2", "pw2")]);
    sim.run_for(Duration::from_secs(5));
    let up = sim.calls.values().filter(|c| c.address.is_some()).count();
    assert_eq!(up, 1, "{:?}", sim.calls);
    let refused = sim.calls.values().find(|c| c.address.is_none()).unwrap();
    // RFC 2661 §4.4.2 result 4, temporary lack of facilities; RFC 3145 cause 19.
    assert_eq!(cdn_result(&refused.cdn), Some((4, Some(19))));
    assert_eq!(sim.ppp.stats().address_unavailable, 1);
    assert_eq!(sim.pool_used(), 1);
}

#[test]
fn silent_peer_is_found_by_the_lcp_echo() {
    let mut sim = Sim::new(CONFIG);
    sim.dial(&[("user1", "pw1")]);
    sim.run_for(Duration::from_secs(3));
    assert_eq!(sim.pool_used(), 1);
    let dead_at = sim.now;
    sim.lac_dead = true;
    // Echo interval 1 s, 3 failures: given up within 4 s.
    while !sim.ppp.is_empty() {
        sim.run_for(Duration::from_millis(100));
        assert!(sim.now - dead_at <= Duration::from_secs(4), "not detected");
    }
    assert!(sim.now - dead_at >= Duration::from_secs(2));
    assert_eq!(sim.ppp.stats().echo_timeouts, 1);
    sim.assert_all_freed();
}

#[test]
fn lcp_terminate_waits_for_the_lac_then_sends_the_cdn() {
    let mut sim = Sim::new(CONFIG);
    sim.lac_sends_cdn = false;
    sim.dial(&[("user1", "pw1")]);
    sim.run_for(Duration::from_secs(3));
    let key = *sim.clients.keys().next().unwrap();
    let closed_at = sim.now;
    sim.clients
        .get_mut(&key)
        .unwrap()
        .close(closed_at, DownReason::Admin);
    sim.run_for(Duration::from_secs(1));
    // The address is back at once; the session lingers for the LAC's CDN.
    assert_eq!(sim.pool_used(), 0);
    assert_eq!(sim.ppp.len(), 1);
    assert_eq!(sim.calls[&key].cdn, None);
    sim.run_for(PEER_CDN_WAIT);
    // Nobody cleared the call: we did, result 1 with cause 3 (normal disconnection).
    assert_eq!(cdn_result(&sim.calls[&key].cdn), Some((1, Some(3))));
    sim.assert_all_freed();
}

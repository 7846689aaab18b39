//! xlnsd's RADIUS authentication ([`Aaa`] with [`PppSessions`]) against a real
//! FreeRADIUS: LAC-role endpoints whose subscribers run the client role of the PPP core
//! (virtual clock for PPP, real time for RADIUS) authenticate with PAP, CHAP-MD5 and
//! MS-CHAPv2; the Access-Accept's Framed-IP-Address, Framed-Pool, DNS, Session-Timeout and
//! Framed-Route are applied or kept; a wrong password is rejected with a CDN; a LAC with
//! `aaa = "local"` uses the users file instead.
#![allow(clippy::unwrap_used, clippy::panic)]

#[path = "support/freeradius.rs"]
mod freeradius;

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use freeradius::{FreeRadius, SECRET};
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
use xlns_controlplane::shell::aaa::Aaa;
use xlns_controlplane::shell::endpoint_config;
use xlns_controlplane::shell::gate::Gate;
use xlns_controlplane::shell::ppp::PppSessions;
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
    aaa: Aaa,
    rt: tokio::runtime::Runtime,
    dns: HashMap<SessionKey, [Option<std::net::Ipv4Addr>; 2]>,
}

impl Sim {
    fn new(config: &str) -> Sim {
        let config = Config::from_toml_str(config, "sim.toml").unwrap();
        let users = Users::parse("papuser wrong-local\n", "users").unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let aaa = {
            let _guard = rt.enter();
            Aaa::new(config.radius.as_ref().unwrap(), &config.lacs)
        };
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
            aaa,
            rt,
            dns: HashMap::new(),
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
                        let aaa = self.aaa.mode_for(self.gate.lac_name(key));
                        self.ppp
                            .session_up_with(self.now, key, &info, mode, aaa, &mut self.lns);
                    }
                    Event::SessionDown { key, .. } => {
                        self.ppp.session_down(self.now, key, &mut self.lns)
                    }
                    Event::TunnelUp { tunnel, .. } => self.gate.tunnel_up(tunnel),
                    Event::TunnelDown { .. } => {}
                }
            }
            self.radius();
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
                    SessionEvent::Up(up) => {
                        call.address = Some(up.address);
                        self.dns.insert(key, up.dns);
                    }
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

    /// Sends the queued verifications through the real client and hands every answer
    /// back, as the shell's select! branch does.
    fn radius(&mut self) {
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
}

fn config(fr: &FreeRadius, method: &str, lac_aaa: &str) -> String {
    format!(
        r#"
[ppp]
auth = ["{method}"]
lcp_echo_interval = "30s"
gateway = "10.11.12.1"
dns = ["192.0.2.53"]

[[pool]]
name = "p"
cidr = "10.11.12.0/24"

[[pool]]
name = "gold"
cidr = "10.20.0.0/29"

[[pool]]
name = "silver"
cidr = "10.30.0.0/29"

[radius]
auth = "radius"
nas_identifier = "xlns-sim"
timeout = "500ms"
[[radius.auth_server]]
address = "{}"
secret = "{SECRET}"

[[lac]]
name = "any"
aaa = "{lac_aaa}"
"#,
        fr.auth
    )
}

#[test]
fn pap_chap_and_mschapv2_through_freeradius_with_reply_attributes() {
    let Some(fr) = FreeRadius::start("xlnsd-auth") else {
        return;
    };
    let cases = [
        (
            "pap",
            "papuser",
            "pap-pass",
            Some(Ipv4Addr::new(10, 11, 12, 13)),
        ),
        ("chap-md5", "chapuser", "chap-pass", None),
        (
            "mschap-v2",
            "msuser",
            "ms-pass",
            Some(Ipv4Addr::new(10, 11, 12, 14)),
        ),
    ];
    for (method, user, password, fixed) in cases {
        let mut sim = Sim::new(&config(&fr, method, "radius"));
        sim.dial(&[(user, password), (user, "wrong")]);
        sim.run_for(Duration::from_secs(5));
        let up: Vec<_> = sim
            .calls
            .iter()
            .filter(|(_, c)| c.address.is_some())
            .collect();
        assert_eq!(up.len(), 1, "{method}: {:?}", sim.calls);
        let address = up[0].1.address.unwrap();
        let lns_keys: Vec<SessionKey> = sim.ppp.keys().collect();
        assert_eq!(lns_keys.len(), 1, "{method}");
        let key = &lns_keys[0];
        match fixed {
            Some(a) => assert_eq!(address, a, "{method}: Framed-IP-Address"),
            // chapuser: Framed-Pool "gold".
            None => assert_eq!(address.octets()[..3], [10, 20, 0], "{method}: Framed-Pool"),
        }
        let reply = sim.ppp.reply_attributes(*key).unwrap();
        assert!(reply.session_timeout.is_some(), "{method}: {reply:?}");
        assert!(!reply.class.is_empty(), "{method}: Class kept");
        assert_eq!(sim.ppp.acct_session_id(*key).map(str::len), Some(16));
        if method == "pap" {
            assert_eq!(reply.routes.len(), 1, "Framed-Route kept");
            assert_eq!(reply.mtu, Some(1400));
            assert_eq!(
                sim.dns[up[0].0],
                [
                    Some(Ipv4Addr::new(198, 51, 100, 53)),
                    Some(Ipv4Addr::new(198, 51, 100, 54))
                ],
                "MS-Primary/Secondary-DNS-Server offered in IPCP"
            );
        }
        let refused: Vec<_> = sim.calls.values().filter(|c| c.address.is_none()).collect();
        assert_eq!(refused.len(), 1, "{method}");
        assert_eq!(
            refused[0].ppp_down,
            Some(DownReason::AuthFailed),
            "{method}"
        );
        assert_eq!(cdn_result(&refused[0].cdn), Some((3, Some(16))), "{method}");
        assert_eq!(sim.aaa.stats().accepts, 1, "{method}");
        assert_eq!(sim.aaa.stats().rejects, 1, "{method}");
    }
}

#[test]
fn idle_timeout_from_the_access_accept_ends_the_session() {
    let Some(fr) = FreeRadius::start("xlnsd-timeout") else {
        return;
    };
    let mut sim = Sim::new(&config(&fr, "pap", "radius"));
    sim.dial(&[("papuser", "pap-pass")]);
    sim.run_for(Duration::from_secs(5));
    assert_eq!(sim.ppp.len(), 1);
    // papuser: Idle-Timeout = 600 (Session-Timeout = 3600); no traffic flows.
    sim.run_for(Duration::from_secs(590));
    assert_eq!(sim.ppp.len(), 1, "still up before the Idle-Timeout");
    sim.run_for(Duration::from_secs(20));
    let call = sim.calls.values().next().unwrap();
    assert_eq!(cdn_result(&call.cdn).map(|c| c.0), Some(3), "{:?}", call);
    assert!(sim.ppp.is_empty());
}

#[test]
fn lac_with_aaa_local_uses_the_users_file() {
    let Some(fr) = FreeRadius::start("xlnsd-local") else {
        return;
    };
    let mut sim = Sim::new(&config(&fr, "pap", "local"));
    // The users file says "wrong-local" for papuser; RADIUS is not asked.
    sim.dial(&[("papuser", "wrong-local"), ("papuser", "pap-pass")]);
    sim.run_for(Duration::from_secs(5));
    let up: Vec<_> = sim.calls.values().filter_map(|c| c.address).collect();
    assert_eq!(up.len(), 1, "{:?}", sim.calls);
    assert_eq!(up[0].octets()[..3], [10, 11, 12]);
    assert_eq!(sim.aaa.stats().requests, 0);
}

fn cdn_result(reason: &Option<SessionDownReason>) -> Option<(u16, Option<u16>)> {
    match reason {
        Some(SessionDownReason::PeerCdn {
            result, ppp_cause, ..
        }) => Some((*result, ppp_cause.as_ref().map(|c| c.code))),
        _ => None,
    }
}

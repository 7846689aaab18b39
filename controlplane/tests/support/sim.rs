//! The xlnsd PPP glue ([`PppSessions`] with the shell's [`Gate`], and optionally its
//! RADIUS client [`Aaa`], its accounting ([`Accounting`], when `[radius]` has an
//! `acct_server`) and its data plane publisher ([`Publisher`], when the configuration
//! has `[dataplane]`)) against a LAC-role [`Endpoint`] whose subscribers run the client
//! role of the same PPP core, with a virtual clock for L2TP and PPP (RADIUS, when used,
//! runs in real time). Shared by `xlnsd_ppp_sim.rs`, `xlnsd_radius.rs` and `xlnsd_acct.rs`;
//! include it with
//! `#[path = "support/sim.rs"] mod sim;`.
#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use xlns_controlplane::config::Config;
use xlns_controlplane::l2tp::endpoint::{
    AcceptAll, Endpoint, EndpointConfig, Event, Role, SessionDownReason, SessionKey, TunnelParams,
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
use xlns_dataplane::wire::ppp::Packet;

/// What the LAC side saw of one call.
#[derive(Debug, Default)]
pub struct Call {
    pub address: Option<Ipv4Addr>,
    /// The DNS servers IPCP gave.
    pub dns: [Option<Ipv4Addr>; 2],
    pub ppp_down: Option<DownReason>,
    pub cdn: Option<SessionDownReason>,
}

pub struct Sim {
    pub now: Instant,
    pub lns: Endpoint,
    pub gate: Gate,
    pub ppp: PppSessions,
    pub lac: Endpoint,
    pub lns_addr: SocketAddr,
    pub lac_addr: SocketAddr,
    /// (to the LNS?, datagram)
    pub wire: VecDeque<(bool, Vec<u8>)>,
    /// Subscribers waiting for their call to come up, in call order.
    pub pending: VecDeque<Credentials>,
    pub clients: HashMap<SessionKey, PppSession>,
    pub calls: HashMap<SessionKey, Call>,
    /// The LAC (and its subscribers) went silent: nothing it sends arrives.
    pub lac_dead: bool,
    /// Whether the LAC clears a call (CDN) when its subscriber's PPP goes down.
    pub lac_sends_cdn: bool,
    /// The RADIUS client and its runtime, when `config` has `[radius]`.
    pub aaa: Option<(Aaa, tokio::runtime::Runtime)>,
    /// Accounting, when `[radius]` has an `acct_server`.
    pub acct: Option<Accounting>,
    /// What the LAC's calls carry (Calling / Called Number, speed).
    pub call: OutgoingCall,
}

impl Sim {
    /// The LNS of `config` (with a RADIUS client when it has `[radius]`), local users
    /// from `users` (a users file's text), and a LAC with no tunnel yet.
    pub fn new(config: &str, users: &str) -> Sim {
        let config = Config::from_toml_str(config, "sim.toml").unwrap();
        let users = Users::parse(users, "users").unwrap();
        let aaa = config.radius.as_ref().map(|radius| {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let aaa = {
                let _guard = rt.enter();
                Aaa::new(radius, &config.lacs)
            };
            (aaa, rt)
        });
        let now = Instant::now();
        let lns_addr: SocketAddr = "192.0.2.1:1701".parse().unwrap();
        let mut ppp = PppSessions::new(&config, users, config.build_pools().unwrap());
        if let Some(dataplane) = &config.dataplane {
            ppp.set_dataplane(Publisher::open(dataplane, lns_addr, now).unwrap());
        }
        let acct = match (&config.radius, &aaa) {
            (Some(radius), Some((_, rt))) if !radius.acct_servers.is_empty() => {
                ppp.enable_accounting();
                let _guard = rt.enter();
                let ppp = &ppp;
                Some(
                    Accounting::new(radius, &config.lacs, |tunnel, session| {
                        ppp.orphan_traffic(SessionKey { tunnel, session }).is_some()
                    })
                    .unwrap(),
                )
            }
            _ => None,
        };
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
            ppp,
            lac,
            lns_addr,
            lac_addr: "192.0.2.2:1701".parse().unwrap(),
            wire: VecDeque::new(),
            pending: VecDeque::new(),
            clients: HashMap::new(),
            calls: HashMap::new(),
            lac_dead: false,
            lac_sends_cdn: true,
            aaa,
            acct,
            call: OutgoingCall::default(),
        }
    }

    /// One tunnel, and one call in it per subscriber.
    pub fn dial(&mut self, subscribers: &[(&str, &str)]) {
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
                .open_session(self.now, tunnel, self.call.clone())
                .unwrap();
        }
    }

    /// Moves every output until nothing is in flight.
    pub fn settle(&mut self) {
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
                        let aaa = self.aaa.as_ref().map_or(Default::default(), |(a, _)| {
                            a.mode_for(self.gate.lac_name(key))
                        });
                        self.ppp
                            .session_up_with(self.now, key, &info, mode, aaa, &mut self.lns);
                        if let Some(acct) = &self.acct
                            && !acct.accounts(self.gate.lac_name(key))
                        {
                            self.ppp.skip_accounting(key);
                        }
                    }
                    Event::SessionDown { key, reason } => {
                        if let Some(acct) = &mut self.acct {
                            acct.core_mut().l2tp_down(key, &reason);
                        }
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
                            .handle_datagram(self.now, self.lns_addr, &bytes, &mut AcceptAll)
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
                if let Some(tx) = self.lac.encapsulate_ppp(key, protocol, &packet) {
                    self.wire.push_back((true, tx.payload));
                }
            }
            while let Some(event) = client.poll_event() {
                let call = self.calls.entry(key).or_default();
                match event {
                    SessionEvent::Up(up) => {
                        call.address = Some(up.address);
                        call.dns = up.dns;
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
    /// back, as the shell's select! branch does; then accounting: notes booked, the spool
    /// synced, every request sent and answered. Whether anything happened.
    fn radius(&mut self) -> bool {
        let Some((aaa, rt)) = &mut self.aaa else {
            return false;
        };
        let mut sent = 0;
        {
            let _guard = rt.enter();
            while let Some((key, request, id)) = self.ppp.poll_verify() {
                let ctx = aaa.context(key, id, &self.lns, Some(self.lns_addr));
                aaa.verify(key, request, &ctx);
                sent += 1;
            }
        }
        for _ in 0..sent {
            let answer = rt.block_on(aaa.recv()).unwrap();
            self.ppp.verify_answer(
                self.now,
                answer.key,
                answer.id,
                answer.result,
                &mut self.lns,
            );
        }
        let Some(acct) = &mut self.acct else {
            return sent > 0;
        };
        let mut booked = false;
        while let Some((tunnel, session, c)) = self
            .ppp
            .dataplane_mut()
            .and_then(|d| d.poll_removed_orphan())
        {
            booked = true;
            acct.core_mut()
                .orphan_gone(unix_now(), tunnel, session, &traffic_of(&c));
        }
        while let Some(note) = self.ppp.poll_acct() {
            booked = true;
            let (lns, local) = (&self.lns, self.lns_addr);
            acct.note(self.now, note, |key, id| {
                aaa.context(key, Some(id.to_owned()), lns, Some(local))
            });
        }
        self.flush_acct();
        sent > 0 || booked
    }

    /// Sends what the accounting spool holds and waits for every answer.
    fn flush_acct(&mut self) {
        let (Some((_, rt)), Some(acct)) = (&self.aaa, &mut self.acct) else {
            return;
        };
        loop {
            {
                let _guard = rt.enter();
                acct.dispatch();
            }
            if acct.core().in_flight() == 0 {
                return;
            }
            let answer = rt
                .block_on(async {
                    tokio::time::timeout(Duration::from_secs(10), acct.recv()).await
                })
                .unwrap()
                .unwrap();
            assert_eq!(
                answer.1,
                Answer::Acknowledged,
                "the RADIUS server did not acknowledge a record"
            );
            acct.handle_answer(answer);
        }
    }

    /// Runs timers and traffic until `until`.
    pub fn run_for(&mut self, duration: Duration) {
        let until = self.now + duration;
        loop {
            self.settle();
            let mut next = [
                self.lns.poll_timeout(),
                self.ppp.poll_timeout(),
                self.lac.poll_timeout(),
                self.acct.as_ref().and_then(|a| a.core().poll_timeout()),
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
            if let Some(acct) = &mut self.acct {
                let ppp = &self.ppp;
                acct.core_mut()
                    .handle_timeout(self.now, unix_now(), |k| ppp.traffic(k));
            }
            if !self.lac_dead {
                self.lac.handle_timeout(self.now, &mut AcceptAll);
                for client in self.clients.values_mut() {
                    client.handle_timeout(self.now);
                }
            }
        }
    }

    /// Addresses leased from the pool named "p".
    pub fn pool_used(&self) -> u32 {
        self.ppp.pools().get("p").unwrap().counters().used
    }

    /// Every PPP session, address and timer is gone.
    pub fn assert_all_freed(&mut self) {
        assert!(self.ppp.is_empty(), "{} PPP sessions left", self.ppp.len());
        assert_eq!(self.pool_used(), 0);
        assert_eq!(self.ppp.poll_timeout(), None);
        assert_eq!(self.ppp.timer_entries(), 0);
    }

    /// The RADIUS client's counters (panics without `[radius]`).
    pub fn aaa(&self) -> &Aaa {
        &self.aaa.as_ref().unwrap().0
    }

    /// Accounting (panics without an `acct_server`).
    pub fn acct(&mut self) -> &mut Accounting {
        self.acct.as_mut().unwrap()
    }

    /// The LNS's key of the session whose subscriber got `address`.
    pub fn lns_key(&self, address: Ipv4Addr) -> SessionKey {
        let lac_key = self
            .calls
            .iter()
            .find(|(_, c)| c.address == Some(address))
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

    /// Addresses of the subscribers whose PPP is up.
    pub fn up_addresses(&self) -> Vec<Ipv4Addr> {
        self.calls
            .values()
            .filter(|c| c.ppp_down.is_none())
            .filter_map(|c| c.address)
            .collect()
    }
}

/// The CDN's Result Code and RFC 3145 cause, if the LNS cleared the call.
pub fn cdn_result(reason: &Option<SessionDownReason>) -> Option<(u16, Option<u16>)> {
    match reason {
        Some(SessionDownReason::PeerCdn {
            result, ppp_cause, ..
        }) => Some((*result, ppp_cause.as_ref().map(|c| c.code))),
        _ => None,
    }
}

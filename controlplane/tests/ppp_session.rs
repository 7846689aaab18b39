//! Simulation of whole PPP sessions: an LNS-side `PppSession` against a client-side one,
//! over a virtual link with seeded loss and a virtual clock, for every authentication path
//! (PAP, CHAP-MD5, MS-CHAPv2, proxy LCP + proxy CHAP/PAP, forced CHAP, LCP renegotiation, the
//! PAP-at-LAC / CHAP-at-LNS refusal) and every way down. Addresses come from a `Pools` the
//! test owns: every `Down` lease is released with `unwrap`, so a double release fails the
//! test, and every test ends with the pool empty again.
//!
//! NAS-initiated calls run in two steps, as in a real LAC: the client first negotiates LCP
//! and starts authenticating with a "LAC" (an LNS-role session whose verification is never
//! answered); the proxy AVPs are what crossed that link (the LAC's last sent and last
//! received Configure-Requests, its Challenge, the client's Response or Authenticate-Request);
//! then the client's link is handed to the LNS under test.
#![allow(clippy::unwrap_used, clippy::panic)]

#[rustfmt::skip]
#[allow(dead_code)]
#[path = "golden/peer_vm_frames.rs"]
mod frames;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use xlns_controlplane::l2tp::attr::ProxyAuthenType;
use xlns_controlplane::ppp::auth::{self, Method, VerifyRequest};
use xlns_controlplane::ppp::lcp::{AuthProtocol, ChapAlgorithm};
use xlns_controlplane::ppp::lcp_link::Keepalive;
use xlns_controlplane::ppp::lcp_proto::{LcpPolicy, PROTOCOL_LCP};
use xlns_controlplane::ppp::pool::{Pool, PoolError, Pools};
use xlns_controlplane::ppp::session::proxy::{ProxyInfo, ProxyMode, ProxyRefusal};
use xlns_controlplane::ppp::session::{
    AddressRequest, Credentials, DownReason, Lease, Phase, PppSession, SessionConfig, SessionEvent,
    SessionUp,
};
use xlns_controlplane::ppp::users::Users;
use xlns_controlplane::ppp::{chap, pap};

const PAP: AuthProtocol = AuthProtocol::Pap;
const MD5: AuthProtocol = AuthProtocol::Chap(ChapAlgorithm::Md5);
const MSCHAPV2: AuthProtocol = AuthProtocol::Chap(ChapAlgorithm::MsChapV2);
const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 255, 100, 1);
const DNS: [Option<Ipv4Addr>; 2] = [
    Some(Ipv4Addr::new(10, 255, 1, 53)),
    Some(Ipv4Addr::new(10, 255, 1, 54)),
];
const LATENCY: Duration = Duration::from_millis(5);
const PROTOCOL_IPCP: u16 = 0x8021;

fn users() -> Users {
    Users::parse(
        "user1 pw1\nuser2 pw2\nfixed pw3 address=10.255.100.200\n",
        "test",
    )
    .unwrap()
}

fn pools(cidr: &str) -> Pools {
    let mut pools = Pools::new();
    let net: Ipv4Net = cidr.parse().unwrap();
    pools
        .add(Pool::from_cidr("main", net, &[GATEWAY]).unwrap())
        .unwrap();
    pools
}

fn lns_config(auth: Vec<AuthProtocol>) -> SessionConfig {
    let mut config = SessionConfig::lns(auth, GATEWAY, DNS);
    config.default_pool = Some("main".into());
    config
}

fn client_config(user: &str, password: &str) -> SessionConfig {
    SessionConfig::client(Credentials {
        user: user.as_bytes().to_vec(),
        password: password.into(),
    })
}

/// A client that accepts only `auth` (as a PAP-only CPE would).
fn client_only(user: &str, password: &str, auth: AuthProtocol) -> SessionConfig {
    let mut config = client_config(user, password);
    config.lcp = LcpPolicy::peer(vec![auth]);
    config
}

/// Which way a frame travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    ToClient,
    ToNet,
}

/// One end of the link and what it reported.
struct Side {
    session: PppSession,
    /// Answer verification requests from the users table (false: the LAC, which captures).
    answer: bool,
    ups: Vec<(Instant, SessionUp)>,
    downs: Vec<(Instant, DownReason)>,
    verifies: Vec<VerifyRequest>,
    address_requests: usize,
    /// Answer address requests from the pools (false: keep them in `pending_address`).
    assign: bool,
    pending_address: Option<AddressRequest>,
}

impl Side {
    fn new(session: PppSession) -> Side {
        Side {
            session,
            answer: true,
            ups: Vec::new(),
            downs: Vec::new(),
            verifies: Vec::new(),
            address_requests: 0,
            assign: true,
            pending_address: None,
        }
    }
}

/// The virtual link, the clock, the users and the pools.
struct Sim {
    now: Instant,
    rng: StdRng,
    loss: f64,
    net: Side,
    client: Side,
    users: Users,
    pools: Pools,
    in_flight: Vec<(Instant, Dir, u16, Vec<u8>)>,
    /// Every frame sent, lost or not: (direction, protocol, packet).
    sent: Vec<(Dir, u16, Vec<u8>)>,
    /// Every frame delivered.
    delivered: Vec<(Dir, u16, Vec<u8>)>,
}

impl Sim {
    fn new(net: SessionConfig, client: SessionConfig, seed: u64, loss: f64) -> Sim {
        let now = Instant::now();
        Sim {
            now,
            rng: StdRng::seed_from_u64(seed),
            loss,
            net: Side::new(PppSession::with_seed(net, seed.wrapping_mul(3) + 1)),
            client: Side::new(PppSession::with_seed(client, seed.wrapping_mul(5) + 2)),
            users: users(),
            pools: pools("10.255.100.0/24"),
            in_flight: Vec::new(),
            sent: Vec::new(),
            delivered: Vec::new(),
        }
    }

    fn start(&mut self, proxy: Option<&ProxyInfo>) {
        self.net.session.start(self.now, proxy);
        self.client.session.start(self.now, None);
        self.service();
    }

    fn side(&mut self, dir: Dir) -> &mut Side {
        match dir {
            Dir::ToNet => &mut self.net,
            Dir::ToClient => &mut self.client,
        }
    }

    /// Handles both sides' events and moves their frames onto the link.
    fn service(&mut self) {
        for dir in [Dir::ToNet, Dir::ToClient] {
            loop {
                let now = self.now;
                let (users, pools) = (&self.users, &mut self.pools);
                let side = match dir {
                    Dir::ToNet => &mut self.net,
                    Dir::ToClient => &mut self.client,
                };
                let Some(event) = side.session.poll_event() else {
                    break;
                };
                match event {
                    SessionEvent::NeedVerify(request) => {
                        side.verifies.push(request.clone());
                        if side.answer {
                            side.session.answer_from(users, &request, now);
                        }
                    }
                    SessionEvent::NeedAddress(request) => {
                        side.address_requests += 1;
                        if side.assign {
                            side.session.assign_from(pools, &request, now);
                        } else {
                            side.pending_address = Some(request);
                        }
                    }
                    SessionEvent::Up(up) => side.ups.push((now, up)),
                    SessionEvent::Ipv6Up(_) => {}
                    SessionEvent::Down { reason, lease } => {
                        if let Some(lease) = lease {
                            // A double release is NotAllocated: the unwrap fails the test.
                            lease.release(pools).unwrap();
                        }
                        side.downs.push((now, reason));
                    }
                }
            }
        }
        for (from, to) in [(Dir::ToNet, Dir::ToClient), (Dir::ToClient, Dir::ToNet)] {
            while let Some((protocol, packet)) = self.side(from).session.poll_transmit() {
                self.sent.push((to, protocol, packet.clone()));
                if self.rng.random::<f64>() >= self.loss {
                    self.in_flight
                        .push((self.now + LATENCY, to, protocol, packet));
                }
            }
        }
    }

    /// Advances to the next delivery or timer; false when nothing is left to happen.
    fn step(&mut self) -> bool {
        self.service();
        let next = self
            .in_flight
            .iter()
            .map(|(t, ..)| *t)
            .chain(self.net.session.poll_timeout())
            .chain(self.client.session.poll_timeout())
            .min();
        let Some(next) = next else {
            return false;
        };
        self.now = self.now.max(next);
        let now = self.now;
        let (due, later): (Vec<_>, Vec<_>) =
            self.in_flight.drain(..).partition(|(t, ..)| *t <= now);
        self.in_flight = later;
        for (_, to, protocol, packet) in due {
            self.delivered.push((to, protocol, packet.clone()));
            self.side(to).session.handle_frame(protocol, &packet, now);
            self.service();
        }
        for dir in [Dir::ToNet, Dir::ToClient] {
            if self
                .side(dir)
                .session
                .poll_timeout()
                .is_some_and(|t| t <= now)
            {
                self.side(dir).session.handle_timeout(now);
            }
        }
        self.service();
        true
    }

    /// Runs until `done` or `limit` of virtual time passed; returns whether `done`.
    fn run_until(&mut self, limit: Duration, done: impl Fn(&Sim) -> bool) -> bool {
        let end = self.now + limit;
        while !done(self) {
            if self.now > end || !self.step() {
                return done(self);
            }
        }
        true
    }

    fn both_up(&self) -> bool {
        !self.net.ups.is_empty() && !self.client.ups.is_empty()
    }

    fn both_down(&self) -> bool {
        !self.net.downs.is_empty() && !self.client.downs.is_empty()
    }

    fn used(&self) -> u32 {
        self.pools.get("main").unwrap().counters().used
    }

    /// Frames the network side sent, of `protocol` with LCP/PAP/CHAP `code`.
    fn net_sent(&self, protocol: u16, code: u8) -> usize {
        self.sent
            .iter()
            .filter(|(d, p, b)| *d == Dir::ToClient && *p == protocol && b.first() == Some(&code))
            .count()
    }

    /// Closes both ends and checks the exit invariants: one Down each, pool empty.
    fn close_and_check(&mut self) {
        let now = self.now;
        if self.net.downs.is_empty() {
            self.net.session.close(now, DownReason::Admin);
        }
        self.run_until(Duration::from_secs(60), Sim::both_down);
        if self.client.downs.is_empty() {
            self.client.session.lower_down(self.now);
            self.service();
        }
        assert_eq!(self.net.downs.len(), 1, "{:?}", self.net.downs);
        assert_eq!(self.client.downs.len(), 1, "{:?}", self.client.downs);
        assert_eq!(self.used(), 0, "every address released");
    }
}

fn assert_up(sim: &Sim, user: &str) -> Ipv4Addr {
    let (_, lns) = &sim.net.ups[0];
    let (_, client) = &sim.client.ups[0];
    let net: Ipv4Net = "10.255.100.0/24".parse().unwrap();
    assert!(net.contains(&lns.address), "{lns:?}");
    assert_ne!(lns.address, GATEWAY);
    assert_eq!(lns.user, user.as_bytes());
    assert_eq!(lns.gateway, GATEWAY);
    assert_eq!(lns.dns, DNS);
    assert_eq!(client.address, lns.address);
    assert_eq!(client.gateway, GATEWAY);
    assert_eq!(client.dns, DNS);
    assert_eq!(sim.net.session.phase(), Phase::Network);
    assert_eq!(sim.client.session.phase(), Phase::Network);
    assert_eq!(sim.used(), 1);
    lns.address
}

const SEEDS: [u64; 6] = [1, 2, 3, 4, 5, 6];

#[test]
fn every_method_reaches_up_with_a_pool_address_under_loss() {
    let mut lost = 0;
    for (auth, method) in [
        (PAP, Method::Pap),
        (MD5, Method::ChapMd5),
        (MSCHAPV2, Method::MsChapV2),
    ] {
        for seed in SEEDS {
            let mut sim = Sim::new(
                lns_config(vec![auth.clone()]),
                client_config("user1", "pw1"),
                seed,
                0.10,
            );
            sim.start(None);
            assert!(
                sim.run_until(Duration::from_secs(120), Sim::both_up),
                "{method:?} seed {seed}: not up; net {:?} client {:?}",
                sim.net.downs,
                sim.client.downs
            );
            assert_up(&sim, "user1");
            assert_eq!(
                sim.net.session.lcp().negotiated().unwrap().peer_auth,
                Some(auth.clone())
            );
            let verifies = &sim.net.verifies;
            assert!(!verifies.is_empty());
            let credential_method = match verifies[0].credential {
                auth::Credential::Pap { .. } => Method::Pap,
                auth::Credential::ChapMd5 { .. } => Method::ChapMd5,
                auth::Credential::MsChapV2 { .. } => Method::MsChapV2,
            };
            assert_eq!(credential_method, method);
            assert_eq!(sim.net.address_requests, 1, "one address per session");
            lost += sim.sent.len() - sim.delivered.len() - sim.in_flight.len();
            sim.close_and_check();
            assert_eq!(sim.net.downs[0].1, DownReason::Admin);
            // If both Terminate-Requests were lost, the CDN (lower down) ends the client.
            let client = &sim.client.downs[0].1;
            assert!(
                matches!(client, DownReason::LcpTerminated | DownReason::LowerDown),
                "{client:?}"
            );
        }
    }
    assert!(lost >= 10, "the link lost frames ({lost})");
}

#[test]
fn the_lns_prefers_the_first_method_of_its_policy() {
    let mut sim = Sim::new(
        lns_config(LcpPolicy::all_auth()),
        client_config("user1", "pw1"),
        9,
        0.0,
    );
    sim.start(None);
    assert!(sim.run_until(Duration::from_secs(30), Sim::both_up));
    assert_eq!(
        sim.net.session.lcp().negotiated().unwrap().peer_auth,
        Some(MSCHAPV2)
    );
    // A PAP-only client walks the LNS down its list.
    let mut sim = Sim::new(
        lns_config(LcpPolicy::all_auth()),
        client_only("user1", "pw1", PAP),
        9,
        0.0,
    );
    sim.start(None);
    assert!(sim.run_until(Duration::from_secs(30), Sim::both_up));
    assert_eq!(
        sim.net.session.lcp().negotiated().unwrap().peer_auth,
        Some(PAP)
    );
    sim.close_and_check();
}

#[test]
fn lcp_renegotiation_after_up_keeps_the_address() {
    let mut sim = Sim::new(lns_config(vec![MD5]), client_config("user1", "pw1"), 8, 0.0);
    sim.start(None);
    assert!(sim.run_until(Duration::from_secs(30), Sim::both_up));
    let address = sim.net.ups[0].1.address;
    // A late duplicate of the client's Configure-Request reaches the LNS in Opened: LCP
    // renegotiates on both sides, authentication and IPCP run again.
    let (_, _, request) = sim
        .delivered
        .iter()
        .find(|(d, p, b)| *d == Dir::ToNet && *p == PROTOCOL_LCP && b[0] == 1)
        .unwrap()
        .clone();
    let now = sim.now;
    sim.net.session.handle_frame(PROTOCOL_LCP, &request, now);
    assert_eq!(sim.net.session.phase(), Phase::Establish);
    assert!(
        sim.run_until(Duration::from_secs(60), |s| s.net.ups.len() == 2
            && s.client.ups.len() == 2)
    );
    assert_eq!(sim.net.ups[1].1.address, address);
    assert_eq!(sim.client.ups[1].1.address, address);
    assert_eq!(sim.net.verifies.len(), 2, "authenticated again");
    assert_eq!(sim.net.address_requests, 1, "the lease is kept");
    assert_eq!(sim.used(), 1);
    sim.close_and_check();
}

#[test]
fn wrong_password_fails_on_both_sides() {
    for auth in [PAP, MD5, MSCHAPV2] {
        for seed in [1, 2, 3] {
            let mut sim = Sim::new(
                lns_config(vec![auth.clone()]),
                client_config("user1", "wrong"),
                seed,
                0.10,
            );
            sim.start(None);
            assert!(
                sim.run_until(Duration::from_secs(120), Sim::both_down),
                "{auth:?} seed {seed}: {:?} {:?}",
                sim.net.downs,
                sim.client.downs
            );
            assert_eq!(
                sim.net.downs,
                vec![(sim.net.downs[0].0, DownReason::AuthFailed)]
            );
            // The client hears the Nak/Failure, or, if every copy was lost, the
            // Terminate-Request that follows it.
            let client = &sim.client.downs[0].1;
            assert!(
                matches!(client, DownReason::AuthFailed | DownReason::LcpTerminated),
                "{client:?}"
            );
            assert!(sim.net.ups.is_empty() && sim.client.ups.is_empty());
            assert_eq!(sim.net.address_requests, 0);
            assert_eq!(sim.used(), 0);
            assert_eq!(sim.net.downs.len(), 1);
        }
    }
    // Without loss the client always learns it from the authentication reply.
    let mut sim = Sim::new(
        lns_config(vec![MD5]),
        client_config("user1", "wrong"),
        1,
        0.0,
    );
    sim.start(None);
    assert!(sim.run_until(Duration::from_secs(30), Sim::both_down));
    assert_eq!(sim.client.downs[0].1, DownReason::AuthFailed);
    assert_eq!(sim.net_sent(auth::PROTOCOL_CHAP, chap::code::FAILURE), 1);
}

#[test]
fn exhausted_pool_refuses_the_session() {
    let mut sim = Sim::new(lns_config(vec![MD5]), client_config("user1", "pw1"), 4, 0.0);
    // A pool of one address, already taken.
    sim.pools = Pools::new();
    sim.pools
        .add(
            Pool::from_range(
                "main",
                Ipv4Addr::new(10, 255, 100, 2),
                Ipv4Addr::new(10, 255, 100, 2),
                &[],
            )
            .unwrap(),
        )
        .unwrap();
    let taken = sim.pools.allocate("main").unwrap();
    sim.start(None);
    assert!(sim.run_until(Duration::from_secs(30), Sim::both_down));
    let DownReason::AddressUnavailable(error) = &sim.net.downs[0].1 else {
        panic!("{:?}", sim.net.downs)
    };
    assert!(matches!(error, PoolError::Exhausted { .. }));
    // RFC 2661 §4.4.2 result code 4: temporary lack of facilities.
    assert_eq!(error.cdn_result().result, 4);
    assert_eq!(sim.pools.get("main").unwrap().counters().exhausted, 1);
    assert_eq!(sim.client.downs[0].1, DownReason::LcpTerminated);
    assert!(sim.net.ups.is_empty());
    sim.pools.release("main", taken).unwrap();
    assert_eq!(sim.used(), 0);
}

#[test]
fn a_fixed_address_is_reserved_in_its_pool() {
    let mut sim = Sim::new(lns_config(vec![PAP]), client_config("fixed", "pw3"), 1, 0.0);
    sim.start(None);
    assert!(sim.run_until(Duration::from_secs(30), Sim::both_up));
    assert_eq!(sim.net.ups[0].1.address, Ipv4Addr::new(10, 255, 100, 200));
    assert!(
        sim.pools
            .get("main")
            .unwrap()
            .is_allocated(Ipv4Addr::new(10, 255, 100, 200))
    );
    sim.close_and_check();
}

#[test]
fn echo_failure_takes_the_session_down_after_interval_times_failures() {
    let interval = Duration::from_secs(10);
    let failures = 3;
    let mut config = lns_config(vec![MD5]);
    config.keepalive = Some(Keepalive {
        interval,
        max_failures: failures,
    });
    let mut client = client_config("user1", "pw1");
    client.keepalive = None;
    let mut sim = Sim::new(config, client, 2, 0.0);
    sim.start(None);
    assert!(sim.run_until(Duration::from_secs(30), Sim::both_up));
    // Echoes are answered while the link works.
    sim.run_until(Duration::from_secs(45), |_| false);
    assert!(sim.net.downs.is_empty());
    // The guest powers off: nothing comes back any more.
    let cut = sim.now;
    sim.loss = 1.0;
    assert!(sim.run_until(Duration::from_secs(120), |s| !s.net.downs.is_empty()));
    let (at, reason) = &sim.net.downs[0];
    assert_eq!(*reason, DownReason::EchoTimeout);
    let after = *at - cut;
    assert!(
        after >= interval * failures && after < interval * (failures + 1),
        "{after:?}"
    );
    // The link is dead: no Terminate-Request is sent into it.
    assert_eq!(
        sim.sent
            .iter()
            .filter(|(d, p, b)| *d == Dir::ToClient && *p == PROTOCOL_LCP && b[0] == 5)
            .count(),
        0
    );
    assert_eq!(sim.used(), 0);
    assert_eq!(sim.net.downs.len(), 1);
}

#[test]
fn peer_terminate_releases_the_address_exactly_once() {
    for seed in SEEDS {
        let mut sim = Sim::new(
            lns_config(vec![MSCHAPV2]),
            client_config("user1", "pw1"),
            seed,
            0.1,
        );
        sim.start(None);
        assert!(sim.run_until(Duration::from_secs(120), Sim::both_up));
        assert_eq!(sim.used(), 1);
        let now = sim.now;
        sim.client.session.close(now, DownReason::Admin);
        assert!(sim.run_until(Duration::from_secs(60), Sim::both_down));
        assert_eq!(sim.client.downs[0].1, DownReason::Admin);
        let lns_reason = &sim.net.downs[0].1;
        // If every Terminate-Request was lost, the echo keepalive notices later.
        assert!(
            matches!(
                lns_reason,
                DownReason::LcpTerminated | DownReason::EchoTimeout
            ),
            "{lns_reason:?}"
        );
        assert_eq!(sim.used(), 0);
        // The CDN that follows, a second close, a late frame: no second Down.
        let now = sim.now;
        sim.net.session.close(now, DownReason::Admin);
        sim.net.session.lower_down(now);
        sim.net
            .session
            .handle_frame(PROTOCOL_LCP, &[5, 9, 0, 4], now);
        sim.service();
        assert_eq!(sim.net.downs.len(), 1);
        assert_eq!(sim.used(), 0);
    }
}

#[test]
fn session_timeout_and_idle_timeout() {
    let mut config = lns_config(vec![PAP]);
    config.session_timeout = Some(Duration::from_secs(600));
    config.keepalive = None;
    let mut sim = Sim::new(config, client_config("user1", "pw1"), 1, 0.0);
    sim.start(None);
    assert!(sim.run_until(Duration::from_secs(30), Sim::both_up));
    let up = sim.net.ups[0].0;
    assert!(sim.run_until(Duration::from_secs(700), Sim::both_down));
    assert_eq!(
        sim.net.downs[0],
        (up + Duration::from_secs(600), DownReason::SessionTimeout)
    );
    assert_eq!(sim.client.downs[0].1, DownReason::LcpTerminated);
    assert_eq!(sim.used(), 0);

    // Idle: activity at +100 s moves the deadline to +100 s + 300 s.
    let mut config = lns_config(vec![PAP]);
    config.keepalive = None;
    let mut sim = Sim::new(config, client_config("user1", "pw1"), 1, 0.0);
    sim.start(None);
    assert!(sim.run_until(Duration::from_secs(30), Sim::both_up));
    let up = sim.net.ups[0].0;
    sim.net
        .session
        .set_idle_timeout(Some(Duration::from_secs(300)));
    sim.run_until(Duration::from_secs(100), |s| {
        s.now >= up + Duration::from_secs(100)
    });
    let active = sim.now;
    sim.net.session.note_activity(active);
    assert!(sim.run_until(Duration::from_secs(700), Sim::both_down));
    assert_eq!(
        sim.net.downs[0],
        (active + Duration::from_secs(300), DownReason::IdleTimeout)
    );
    assert_eq!(sim.used(), 0);
}

#[test]
fn lower_down_is_immediate_and_silent() {
    let mut sim = Sim::new(lns_config(vec![MD5]), client_config("user1", "pw1"), 3, 0.0);
    sim.start(None);
    assert!(sim.run_until(Duration::from_secs(30), Sim::both_up));
    let now = sim.now;
    sim.net.session.lower_down(now);
    assert_eq!(sim.net.session.poll_transmit(), None);
    assert_eq!(sim.net.session.phase(), Phase::Dead);
    sim.service();
    assert_eq!(sim.net.downs[0].1, DownReason::LowerDown);
    assert_eq!(sim.used(), 0);
    assert!(sim.net.session.poll_timeout().is_none());
}

#[test]
fn a_lease_that_arrives_after_down_is_handed_back() {
    let mut sim = Sim::new(lns_config(vec![PAP]), client_config("user1", "pw1"), 1, 0.0);
    sim.start(None);
    sim.net.assign = false;
    assert!(sim.run_until(Duration::from_secs(30), |s| s.net.pending_address.is_some()));
    let request = sim.net.pending_address.take().unwrap();
    let now = sim.now;
    sim.net.session.lower_down(now);
    let lease = Lease::allocate(&mut sim.pools, &request).unwrap();
    let back = sim.net.session.handle_address(Ok(lease.clone()), now);
    assert_eq!(back, Some(lease.clone()));
    back.unwrap().release(&mut sim.pools).unwrap();
    assert_eq!(sim.used(), 0);
}

#[test]
fn ncp_frames_before_the_network_phase_are_discarded_and_unknown_protocols_rejected() {
    let mut sim = Sim::new(lns_config(vec![PAP]), client_config("user1", "pw1"), 1, 0.0);
    let now = sim.now;
    sim.net.session.start(now, None);
    while sim.net.session.poll_transmit().is_some() {}
    // An IPCP Configure-Request and a CCP one during Establish: silently discarded.
    let ipcp_req = [1, 1, 0, 10, 3, 6, 0, 0, 0, 0];
    sim.net.session.handle_frame(PROTOCOL_IPCP, &ipcp_req, now);
    sim.net.session.handle_frame(0x80fd, &[1, 1, 0, 4], now);
    assert_eq!(sim.net.session.poll_transmit(), None);
    assert_eq!(sim.net.session.counters().discarded, 2);

    let mut sim = Sim::new(lns_config(vec![PAP]), client_config("user1", "pw1"), 1, 0.0);
    sim.start(None);
    assert!(sim.run_until(Duration::from_secs(30), Sim::both_up));
    let now = sim.now;
    sim.net.session.handle_frame(0x80fd, &[1, 7, 0, 4], now);
    let (protocol, packet) = sim.net.session.poll_transmit().unwrap();
    assert_eq!(protocol, PROTOCOL_LCP);
    // Protocol-Reject (code 8) carrying 0x80fd and the rejected packet.
    assert_eq!(packet[0], 8);
    assert_eq!(&packet[4..], &[0x80, 0xfd, 1, 7, 0, 4]);
    // IPv4 data that reached the control plane is not ours to reject.
    sim.net.session.handle_frame(0x0021, &[0x45, 0, 0, 20], now);
    assert_eq!(sim.net.session.poll_transmit(), None);
    assert_eq!(sim.net.session.counters().protocol_rejected, 1);
    sim.close_and_check();
}

#[test]
fn ipv6cp_opens_beside_ipcp() {
    let mut lns = lns_config(vec![MD5]);
    lns.ipv6cp = true;
    let mut client = client_config("user1", "pw1");
    client.ipv6cp = true;
    let mut sim = Sim::new(lns, client, 7, 0.1);
    sim.start(None);
    assert!(sim.run_until(Duration::from_secs(120), Sim::both_up));
    sim.run_until(Duration::from_secs(60), |_| false);
    assert_up(&sim, "user1");
    sim.close_and_check();
}

// ---------------------------------------------------------------------------------------
// NAS-initiated calls.

/// Runs the client against a LAC (an LNS-role session requiring `lac_auth`) until the LAC
/// has the client's credentials; returns the proxy AVPs as the LAC would send them in its
/// ICCN, and the simulation with the LAC still in place.
fn lac_phase(
    client: SessionConfig,
    lac_auth: AuthProtocol,
    seed: u64,
    loss: f64,
) -> (Sim, ProxyInfo) {
    let mut lac = lns_config(vec![lac_auth]);
    lac.keepalive = None;
    let mut sim = Sim::new(lac, client, seed, loss);
    sim.net.answer = false;
    sim.start(None);
    assert!(
        sim.run_until(Duration::from_secs(120), |s| !s.net.verifies.is_empty()),
        "the LAC never got the credentials"
    );
    let confreqs = |dir: Dir, from: &[(Dir, u16, Vec<u8>)]| -> Vec<Vec<u8>> {
        from.iter()
            .filter(|(d, p, b)| *d == dir && *p == PROTOCOL_LCP && b[0] == 1)
            .map(|(_, _, b)| b[4..].to_vec())
            .collect()
    };
    // What the LAC received (delivered to it) and what it sent.
    let received = confreqs(Dir::ToNet, &sim.delivered);
    let sent = confreqs(Dir::ToClient, &sim.sent);
    let mut info = ProxyInfo {
        initial_received_lcp_confreq: received.first().cloned(),
        last_sent_lcp_confreq: sent.last().cloned(),
        last_received_lcp_confreq: received.last().cloned(),
        ..ProxyInfo::default()
    };
    // The authentication packet the LAC received last.
    let (_, protocol, packet) = sim
        .delivered
        .iter()
        .rev()
        .find(|(d, p, _)| {
            *d == Dir::ToNet && (*p == auth::PROTOCOL_PAP || *p == auth::PROTOCOL_CHAP)
        })
        .unwrap()
        .clone();
    if protocol == auth::PROTOCOL_PAP {
        let pap::Repr::AuthenticateRequest {
            identifier,
            peer_id,
            password,
        } = pap::Repr::from_bytes(&packet).unwrap()
        else {
            panic!()
        };
        info.authen_type = Some(ProxyAuthenType::Pap);
        info.authen_id = Some(identifier.into());
        info.authen_name = Some(peer_id);
        info.authen_response = Some(password);
    } else {
        let chap::Repr::Response {
            identifier,
            value,
            name,
        } = chap::Repr::from_bytes(&packet).unwrap()
        else {
            panic!()
        };
        let challenge = sim
            .sent
            .iter()
            .rev()
            .find_map(|(d, p, b)| match (d, p) {
                (Dir::ToClient, &auth::PROTOCOL_CHAP) => match chap::Repr::from_bytes(b) {
                    Ok(chap::Repr::Challenge {
                        identifier: id,
                        value,
                        ..
                    }) if id == identifier => Some(value),
                    _ => None,
                },
                _ => None,
            })
            .unwrap();
        info.authen_type = Some(ProxyAuthenType::Chap);
        info.authen_id = Some(identifier.into());
        info.authen_name = Some(name);
        info.authen_challenge = Some(challenge);
        info.authen_response = Some(value);
    }
    (sim, info)
}

/// Hands the client's link from the LAC to a new LNS session and starts it with `info`.
fn hand_over(sim: &mut Sim, lns: SessionConfig, info: &ProxyInfo, seed: u64) {
    sim.net = Side::new(PppSession::with_seed(lns, seed + 100));
    // The LAC stops forwarding PPP; what it had in flight is gone.
    sim.in_flight.clear();
    sim.sent.clear();
    sim.delivered.clear();
    let now = sim.now;
    sim.net.session.start(now, Some(info));
    sim.service();
}

fn proxy_mode(auth: bool, lcp: bool, force_chap: bool, renegotiate: bool) -> ProxyMode {
    ProxyMode {
        accept_proxy_auth: auth,
        accept_proxy_lcp: lcp,
        force_chap,
        renegotiate_lcp: renegotiate,
    }
}

fn nas_lns(auth: Vec<AuthProtocol>, mode: ProxyMode) -> SessionConfig {
    let mut config = lns_config(auth);
    config.proxy = mode;
    config
}

#[test]
fn proxy_lcp_and_proxy_chap_reach_up_without_our_own_lcp_or_challenge() {
    for seed in SEEDS {
        let (mut sim, info) = lac_phase(client_config("user1", "pw1"), MD5, seed, 0.1);
        hand_over(
            &mut sim,
            nas_lns(LcpPolicy::all_auth(), proxy_mode(true, true, false, false)),
            &info,
            seed,
        );
        // LCP continued: Opened at once with the LAC's values.
        let lcp = sim.net.session.lcp().negotiated().unwrap().clone();
        assert_eq!(lcp.peer_auth, Some(MD5));
        assert!(
            sim.run_until(Duration::from_secs(120), Sim::both_up),
            "seed {seed}"
        );
        assert_up(&sim, "user1");
        assert_eq!(
            sim.net_sent(PROTOCOL_LCP, 1),
            0,
            "no LCP Configure-Request of ours"
        );
        assert_eq!(sim.net_sent(auth::PROTOCOL_CHAP, chap::code::CHALLENGE), 0);
        assert!(sim.net_sent(auth::PROTOCOL_CHAP, chap::code::SUCCESS) >= 1);
        // The LNS verified the captured response with the LAC's Identifier and Challenge.
        let auth::Credential::ChapMd5 {
            identifier,
            challenge,
            ..
        } = &sim.net.verifies[0].credential
        else {
            panic!()
        };
        assert_eq!(Some(u16::from(*identifier)), info.authen_id);
        assert_eq!(Some(challenge), info.authen_challenge.as_ref());
        sim.close_and_check();
    }
}

#[test]
fn proxy_lcp_and_proxy_pap_reach_up() {
    for seed in SEEDS {
        let (mut sim, info) = lac_phase(client_only("user1", "pw1", PAP), PAP, seed, 0.1);
        hand_over(
            &mut sim,
            nas_lns(LcpPolicy::all_auth(), proxy_mode(true, true, false, false)),
            &info,
            seed,
        );
        assert!(
            sim.run_until(Duration::from_secs(120), Sim::both_up),
            "seed {seed}"
        );
        assert_up(&sim, "user1");
        assert_eq!(sim.net_sent(PROTOCOL_LCP, 1), 0);
        assert!(sim.net_sent(auth::PROTOCOL_PAP, pap::code::AUTHENTICATE_ACK) >= 1);
        sim.close_and_check();
    }
}

#[test]
fn proxy_chap_with_a_wrong_password_is_refused() {
    let (mut sim, info) = lac_phase(client_config("user1", "bad"), MD5, 1, 0.0);
    hand_over(
        &mut sim,
        nas_lns(vec![MD5], proxy_mode(true, true, false, false)),
        &info,
        1,
    );
    assert!(sim.run_until(Duration::from_secs(60), Sim::both_down));
    assert_eq!(sim.net.downs[0].1, DownReason::AuthFailed);
    assert_eq!(sim.client.downs[0].1, DownReason::AuthFailed);
    assert_eq!(sim.used(), 0);
}

#[test]
fn forced_chap_challenges_again_on_the_proxied_lcp() {
    for seed in SEEDS {
        let (mut sim, info) = lac_phase(client_config("user1", "pw1"), MD5, seed, 0.1);
        // Proxy authentication is offered and accepted, but forced CHAP wins.
        hand_over(
            &mut sim,
            nas_lns(LcpPolicy::all_auth(), proxy_mode(true, true, true, false)),
            &info,
            seed,
        );
        assert!(
            sim.run_until(Duration::from_secs(120), Sim::both_up),
            "seed {seed}"
        );
        assert_up(&sim, "user1");
        assert_eq!(sim.net_sent(PROTOCOL_LCP, 1), 0, "LCP not renegotiated");
        assert!(sim.net_sent(auth::PROTOCOL_CHAP, chap::code::CHALLENGE) >= 1);
        // Our own Challenge, not the LAC's.
        let auth::Credential::ChapMd5 { challenge, .. } = &sim.net.verifies[0].credential else {
            panic!()
        };
        assert_ne!(Some(challenge), info.authen_challenge.as_ref());
        sim.close_and_check();
    }
}

#[test]
fn lcp_renegotiation_ignores_every_proxy_avp() {
    for seed in SEEDS {
        let (mut sim, info) = lac_phase(client_config("user1", "pw1"), PAP, seed, 0.1);
        // Renegotiation wins over forced CHAP and proxy authentication; our policy prefers
        // MS-CHAPv2, which the client now agrees to in LCP.
        hand_over(
            &mut sim,
            nas_lns(LcpPolicy::all_auth(), proxy_mode(true, true, true, true)),
            &info,
            seed,
        );
        assert!(
            sim.run_until(Duration::from_secs(120), Sim::both_up),
            "seed {seed}"
        );
        assert_up(&sim, "user1");
        assert!(sim.net_sent(PROTOCOL_LCP, 1) >= 1, "our own LCP");
        assert_eq!(
            sim.net.session.lcp().negotiated().unwrap().peer_auth,
            Some(MSCHAPV2)
        );
        assert!(matches!(
            sim.net.verifies[0].credential,
            auth::Credential::MsChapV2 { .. }
        ));
        sim.close_and_check();
    }
}

#[test]
fn pap_at_the_lac_cannot_be_forced_to_chap_at_the_lns() {
    let (mut sim, info) = lac_phase(client_only("user1", "pw1", PAP), PAP, 3, 0.0);
    hand_over(
        &mut sim,
        nas_lns(LcpPolicy::all_auth(), proxy_mode(true, true, true, false)),
        &info,
        3,
    );
    assert_eq!(
        sim.net.downs,
        vec![(
            sim.now,
            DownReason::ProxyRefused(ProxyRefusal::ChapNotNegotiated {
                lac: Some(Method::Pap)
            })
        )]
    );
    assert_eq!(sim.net.downs[0].1.label(), "proxy-refused");
    assert!(sim.sent.is_empty(), "nothing sent to the client");
    assert!(sim.net.verifies.is_empty());
    assert_eq!(sim.net.session.phase(), Phase::Dead);
    assert_eq!(sim.used(), 0);
}

#[test]
fn without_proxy_auth_the_lns_restarts_authentication_with_the_lacs_method() {
    // Proxy LCP accepted, proxy authentication not: the PAP client's retransmitted
    // Authenticate-Request is verified by the LNS.
    let (mut sim, mut info) = lac_phase(client_only("user1", "pw1", PAP), PAP, 5, 0.1);
    info.authen_type = None;
    hand_over(
        &mut sim,
        nas_lns(LcpPolicy::all_auth(), proxy_mode(false, true, false, false)),
        &info,
        5,
    );
    assert!(sim.run_until(Duration::from_secs(120), Sim::both_up));
    assert_up(&sim, "user1");
    assert_eq!(sim.net_sent(PROTOCOL_LCP, 1), 0);
    sim.close_and_check();
}

// ---------------------------------------------------------------------------------------
// Proxy AVPs from a real capture.

fn frame(number: u32) -> &'static [u8] {
    frames::FRAMES
        .iter()
        .find(|f| f.frame == number)
        .unwrap()
        .bytes
}

/// The PPP information field of a captured data frame (6-octet L2TP header, ff 03, protocol).
fn ppp_packet(number: u32) -> &'static [u8] {
    &frame(number)[10..]
}

#[test]
fn proxy_chap_from_real_pppd_bytes() {
    // chap-kernel case: frame 12 is the client's first LCP Configure-Request, 15 its last
    // (acknowledged by frame 16), 13 the authenticator's (acknowledged by 14); 19 the
    // Challenge, 22 the Response of user1/pw1, 23 the Success the real LNS sent.
    let options = |n| ppp_packet(n)[4..].to_vec();
    let chap::Repr::Challenge {
        identifier, value, ..
    } = chap::Repr::from_bytes(ppp_packet(19)).unwrap()
    else {
        panic!()
    };
    let chap::Repr::Response {
        value: response,
        name,
        ..
    } = chap::Repr::from_bytes(ppp_packet(22)).unwrap()
    else {
        panic!()
    };
    // Last Sent as a LAC that includes the LCP header would send it; accepted as well.
    let info = ProxyInfo {
        initial_received_lcp_confreq: Some(options(12)),
        last_sent_lcp_confreq: Some(ppp_packet(13).to_vec()),
        last_received_lcp_confreq: Some(options(15)),
        authen_type: Some(ProxyAuthenType::Chap),
        authen_name: Some(name),
        authen_challenge: Some(value),
        authen_id: Some(identifier.into()),
        authen_response: Some(response),
    };
    let mut config = nas_lns(vec![MD5], proxy_mode(true, true, false, false));
    config.keepalive = None;
    let mut session = PppSession::with_seed(config, 1);
    let now = Instant::now();
    session.start(now, Some(&info));
    let lcp = session.lcp().negotiated().unwrap().clone();
    assert_eq!(lcp.peer_mru, 1400);
    assert_eq!(lcp.our_magic, 0xad88_a7e6, "the LAC's Magic-Number");
    assert_eq!(lcp.peer_auth, Some(MD5));
    let Some(SessionEvent::NeedVerify(request)) = session.poll_event() else {
        panic!()
    };
    assert_eq!(request.user, b"user1");
    session.answer_from(&users(), &request, now);
    // Byte for byte the Success the real LNS sent.
    assert_eq!(
        session.poll_transmit(),
        Some((auth::PROTOCOL_CHAP, ppp_packet(23).to_vec()))
    );
    let Some(SessionEvent::NeedAddress(request)) = session.poll_event() else {
        panic!()
    };
    let mut pools = pools("10.255.100.0/24");
    session.assign_from(&mut pools, &request, now);
    let (protocol, packet) = session.poll_transmit().unwrap();
    assert_eq!((protocol, packet[0]), (PROTOCOL_IPCP, 1), "IPCP starts");
    assert_eq!(session.phase(), Phase::Network);
}

#![allow(clippy::unwrap_used, clippy::panic)]
//! Two-sided negotiation scenarios over a virtual link and clock: LCP (LNS role against
//! client role, through `LcpLink`), IPCP server against client, IPv6CP against IPv6CP.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;

use xlns_controlplane::ppp::fsm::{Config, Fsm, Protocol, State, code};
use xlns_controlplane::ppp::ipcp_proto::{Ipcp, IpcpClient, IpcpServer};
use xlns_controlplane::ppp::ipv6cp_proto::Ipv6cp;
use xlns_controlplane::ppp::lcp::{AuthProtocol, ChapAlgorithm};
use xlns_controlplane::ppp::lcp_link::{Keepalive, LcpLink, LinkEvent};
use xlns_controlplane::ppp::lcp_proto::{Lcp, LcpPolicy};
use xlns_controlplane::ppp::policy::{Failing, NegotiationFailure, close_on_failure};

const CHAP_MD5: AuthProtocol = AuthProtocol::Chap(ChapAlgorithm::Md5);

/// One end of the virtual link.
trait End {
    fn input(&mut self, packet: &[u8], now: Instant);
    fn output(&mut self) -> Option<Vec<u8>>;
    fn deadline(&self) -> Option<Instant>;
    fn timeout(&mut self, now: Instant);
}

impl End for LcpLink {
    fn input(&mut self, packet: &[u8], now: Instant) {
        self.handle_packet(packet, now).unwrap();
    }
    fn output(&mut self) -> Option<Vec<u8>> {
        self.poll_transmit()
    }
    fn deadline(&self) -> Option<Instant> {
        self.poll_timeout()
    }
    fn timeout(&mut self, now: Instant) {
        self.handle_timeout(now);
    }
}

/// An NCP automaton, closed by its owner on a policy failure as the session core will do.
impl<P: Protocol + Failing> End for Fsm<P> {
    fn input(&mut self, packet: &[u8], now: Instant) {
        self.handle_packet(packet, now).unwrap();
        close_on_failure(self, now);
    }
    fn output(&mut self) -> Option<Vec<u8>> {
        self.poll_transmit()
    }
    fn deadline(&self) -> Option<Instant> {
        self.poll_timeout()
    }
    fn timeout(&mut self, now: Instant) {
        self.handle_timeout(now);
        close_on_failure(self, now);
    }
}

struct Net<E> {
    a: E,
    b: E,
    start: Instant,
    now: Instant,
    /// (from A, packet) for every packet delivered or dropped.
    log: Vec<(bool, Vec<u8>)>,
    /// B's packets are lost (a silent peer).
    b_silent: bool,
}

impl<E: End> Net<E> {
    fn new(a: E, b: E) -> Net<E> {
        let start = Instant::now();
        Net {
            a,
            b,
            start,
            now: start,
            log: Vec::new(),
            b_silent: false,
        }
    }

    fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some(p) = self.a.output() {
                moved = true;
                self.b.input(&p, self.now);
                self.log.push((true, p));
            }
            while let Some(p) = self.b.output() {
                moved = true;
                if !self.b_silent {
                    self.a.input(&p, self.now);
                }
                self.log.push((false, p));
            }
            if !moved {
                return;
            }
        }
    }

    /// Pumps and advances the clock from deadline to deadline, up to `limit` from start.
    fn run(&mut self, limit: Duration) {
        loop {
            self.pump();
            let next = [self.a.deadline(), self.b.deadline()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= self.start + limit => {
                    self.now = t;
                    self.a.timeout(t);
                    self.b.timeout(t);
                }
                _ => return,
            }
        }
    }

    fn sent(&self, from_a: bool, c: u8) -> usize {
        self.log
            .iter()
            .filter(|(a, p)| *a == from_a && p[0] == c)
            .count()
    }
}

// ---------------------------------------------------------------------------------------
// LCP

fn link(policy: LcpPolicy, seed: u64, keepalive: Option<Keepalive>) -> LcpLink {
    LcpLink::new(
        Lcp::new(policy, StdRng::seed_from_u64(seed)),
        Config::default(),
        keepalive,
    )
}

fn open(net: &mut Net<LcpLink>) {
    let now = net.now;
    for l in [&mut net.a, &mut net.b] {
        l.open(now);
        l.up(now);
    }
}

fn events(l: &mut LcpLink) -> Vec<LinkEvent> {
    std::iter::from_fn(|| l.poll_event()).collect()
}

fn lcp_pair(lns_auth: Vec<AuthProtocol>, client_auth: Vec<AuthProtocol>) -> Net<LcpLink> {
    let mut client_policy = LcpPolicy::peer(client_auth);
    client_policy.mru = Some(1400);
    Net::new(
        link(LcpPolicy::authenticator(lns_auth), 1, None),
        link(client_policy, 2, None),
    )
}

#[test]
fn lns_and_client_lcp_reach_opened_with_expected_values() {
    let mut net = lcp_pair(LcpPolicy::all_auth(), LcpPolicy::all_auth());
    open(&mut net);
    net.run(Duration::from_secs(30));
    assert_eq!(net.a.state(), State::Opened);
    assert_eq!(net.b.state(), State::Opened);
    let lns = net.a.negotiated().unwrap().clone();
    let client = net.b.negotiated().unwrap().clone();
    assert_eq!(
        lns.peer_auth,
        Some(AuthProtocol::Chap(ChapAlgorithm::MsChapV2))
    );
    assert_eq!(client.our_auth, lns.peer_auth);
    assert_eq!(lns.our_auth, None);
    assert_eq!((lns.our_mru, lns.peer_mru), (1400, 1400));
    assert_eq!(lns.our_magic, client.peer_magic);
    assert_eq!(lns.peer_magic, client.our_magic);
    assert_ne!(lns.our_magic, lns.peer_magic);
    assert!(matches!(events(&mut net.a).last(), Some(LinkEvent::Up(n)) if *n == lns));
}

#[test]
fn client_naks_chap_towards_pap_and_lns_follows_when_allowed() {
    let mut net = lcp_pair(vec![CHAP_MD5, AuthProtocol::Pap], vec![AuthProtocol::Pap]);
    open(&mut net);
    net.run(Duration::from_secs(30));
    assert_eq!(net.a.state(), State::Opened);
    assert_eq!(net.b.state(), State::Opened);
    assert_eq!(
        net.a.negotiated().unwrap().peer_auth,
        Some(AuthProtocol::Pap)
    );
    assert_eq!(
        net.b.negotiated().unwrap().our_auth,
        Some(AuthProtocol::Pap)
    );
    assert_eq!(net.sent(false, code::CONFIGURE_NAK), 1);
}

#[test]
fn client_naks_chap_towards_pap_and_lns_fails_when_not_allowed() {
    let mut net = lcp_pair(vec![CHAP_MD5], vec![AuthProtocol::Pap]);
    open(&mut net);
    net.run(Duration::from_secs(30));
    assert_ne!(net.a.state(), State::Opened);
    assert_ne!(net.b.state(), State::Opened);
    assert!(
        events(&mut net.a).contains(&LinkEvent::Failed(NegotiationFailure::NoCommonAuthProtocol))
    );
    let terminate = net
        .log
        .iter()
        .find(|(a, p)| *a && p[0] == code::TERMINATE_REQUEST)
        .unwrap();
    assert_eq!(
        &terminate.1[4..],
        NegotiationFailure::NoCommonAuthProtocol.reason().as_bytes()
    );
}

#[test]
fn same_magic_on_both_sides_is_detected_as_loopback() {
    // Same seed: both draw the same numbers in lockstep, which no exchange can tell from a
    // looped-back link (RFC 1661 §6.4).
    let mut net = Net::new(
        link(LcpPolicy::authenticator(vec![]), 5, None),
        link(LcpPolicy::peer(vec![]), 5, None),
    );
    open(&mut net);
    net.run(Duration::from_secs(30));
    assert_ne!(net.a.state(), State::Opened);
    assert!(events(&mut net.a).contains(&LinkEvent::Failed(NegotiationFailure::Loopback)));
    assert_eq!(net.a.fsm().protocol().loopback_count(), 5);
}

#[test]
fn a_really_looped_back_link_is_detected() {
    let mut l = link(LcpPolicy::authenticator(vec![]), 3, None);
    let now = Instant::now();
    l.open(now);
    l.up(now);
    let mut rounds = 0;
    while let Some(p) = l.poll_transmit() {
        rounds += 1;
        assert!(rounds < 100, "loop not detected");
        if p[0] == code::TERMINATE_REQUEST {
            break;
        }
        l.handle_packet(&p, now).unwrap();
    }
    assert!(events(&mut l).contains(&LinkEvent::Failed(NegotiationFailure::Loopback)));
    assert_eq!(l.state(), State::Closing);
}

#[test]
fn echo_keepalive_detects_silent_peer_after_interval_times_failures() {
    let keepalive = Keepalive {
        interval: Duration::from_secs(10),
        max_failures: 3,
    };
    let mut net = Net::new(
        link(LcpPolicy::authenticator(vec![]), 1, Some(keepalive)),
        link(LcpPolicy::peer(vec![]), 2, None),
    );
    open(&mut net);
    net.run(Duration::ZERO);
    assert_eq!(net.a.state(), State::Opened);
    let opened = net.now;
    // While the peer answers, echoes never fail.
    net.run(Duration::from_secs(100));
    assert!(!events(&mut net.a).contains(&LinkEvent::LinkDead));
    assert_eq!(net.a.unanswered_echoes(), 0);
    let echoes = net.sent(true, code::ECHO_REQUEST);
    assert_eq!(echoes, 11, "one at Opened, then every 10 s up to 100 s");
    assert_eq!(net.sent(false, code::ECHO_REPLY), echoes);
    // The peer goes silent at 100 s: its last answer was to the echo of 100 s.
    let silent_from = opened + Duration::from_secs(100);
    net.b_silent = true;
    net.run(Duration::from_secs(1000));
    let dead_at = net.now;
    assert!(events(&mut net.a).contains(&LinkEvent::LinkDead));
    // Echoes at 110, 120, 130 unanswered; dead when the fourth is due, at 110 + 10 * 3.
    assert_eq!(dead_at - silent_from, Duration::from_secs(10 + 10 * 3));
    assert_eq!(net.sent(true, code::ECHO_REQUEST), echoes + 3);
}

#[test]
fn echo_keepalive_dead_exactly_interval_times_failures_after_first_unanswered() {
    let keepalive = Keepalive {
        interval: Duration::from_secs(5),
        max_failures: 4,
    };
    let mut net = Net::new(
        link(LcpPolicy::authenticator(vec![]), 1, Some(keepalive)),
        link(LcpPolicy::peer(vec![]), 2, None),
    );
    open(&mut net);
    net.run(Duration::ZERO);
    // The Echo-Request sent at Opened was answered; the peer falls silent after it.
    assert_eq!(net.sent(false, code::ECHO_REPLY), 1);
    let first_unanswered = net.now + Duration::from_secs(5);
    events(&mut net.a);
    net.b_silent = true;
    net.run(Duration::from_secs(1000));
    assert_eq!(net.now - first_unanswered, Duration::from_secs(5 * 4));
    assert_eq!(net.sent(true, code::ECHO_REQUEST), 1 + 4);
    assert_eq!(events(&mut net.a), [LinkEvent::LinkDead]);
    assert_eq!(net.a.poll_timeout(), None);
}

#[test]
fn echo_reply_with_our_own_magic_does_not_count() {
    let keepalive = Keepalive {
        interval: Duration::from_secs(5),
        max_failures: 2,
    };
    let mut net = Net::new(
        link(LcpPolicy::authenticator(vec![]), 1, Some(keepalive)),
        link(LcpPolicy::peer(vec![]), 2, None),
    );
    open(&mut net);
    net.run(Duration::ZERO);
    net.b_silent = true;
    net.run(Duration::from_secs(5));
    assert_eq!(net.a.unanswered_echoes(), 1);
    let n = net.a.negotiated().unwrap().clone();
    let reply = |magic: u32| {
        let mut r = vec![code::ECHO_REPLY, 1, 0, 8];
        r.extend_from_slice(&magic.to_be_bytes());
        r
    };
    let now = net.now;
    net.a.handle_packet(&reply(n.our_magic), now).unwrap();
    assert_eq!(net.a.unanswered_echoes(), 1);
    net.a.handle_packet(&reply(n.peer_magic), now).unwrap();
    assert_eq!(net.a.unanswered_echoes(), 0);
}

#[test]
fn protocol_reject_of_ipv6cp_stops_ipv6cp() {
    let mut net = lcp_pair(vec![], vec![]);
    open(&mut net);
    net.run(Duration::ZERO);
    events(&mut net.a);
    // The client does not run IPv6CP: it Protocol-Rejects the LNS's IPv6CP request.
    let mut lns_v6 = Fsm::new(
        Ipv6cp::new(None, StdRng::seed_from_u64(1)),
        Config::default(),
    );
    let now = net.now;
    lns_v6.open(now);
    lns_v6.up(now);
    let request = lns_v6.poll_transmit().unwrap();
    assert!(net.b.protocol_reject(0x8057, &request));
    let reject = net.b.poll_transmit().unwrap();
    assert_eq!(reject[0], code::PROTOCOL_REJECT);
    assert_eq!(&reject[4..6], &[0x80, 0x57]);
    assert_eq!(&reject[6..], &request[..]);
    net.a.handle_packet(&reject, now).unwrap();
    let ev = events(&mut net.a);
    assert_eq!(ev, [LinkEvent::ProtocolRejected { protocol: 0x8057 }]);
    lns_v6.protocol_rejected(now);
    assert_eq!(lns_v6.state(), State::Stopped);
    assert_eq!(lns_v6.poll_timeout(), None);
    assert_eq!(net.a.state(), State::Opened, "LCP itself stays up");
}

#[test]
fn protocol_reject_truncated_to_peer_mru_and_only_when_opened() {
    let mut client = LcpPolicy::peer(vec![]);
    client.mru = Some(200);
    let mut net = Net::new(
        link(LcpPolicy::authenticator(vec![]), 1, None),
        link(client, 2, None),
    );
    assert!(!net.a.protocol_reject(0x80fd, &[0; 10]));
    open(&mut net);
    net.run(Duration::ZERO);
    assert_eq!(net.a.negotiated().unwrap().peer_mru, 200);
    assert!(net.a.protocol_reject(0x80fd, &[0xaa; 1000]));
    let p = net.a.poll_transmit().unwrap();
    assert_eq!(p.len(), 200);
    assert_eq!(u16::from_be_bytes([p[2], p[3]]), 200);
    assert!(net.a.protocol_reject(0x80fd, &[0xbb; 3]));
    let q = net.a.poll_transmit().unwrap();
    assert_ne!(p[1], q[1], "a new Identifier for each Protocol-Reject");
}

// ---------------------------------------------------------------------------------------
// IPCP

const GW: Ipv4Addr = Ipv4Addr::new(10, 255, 100, 1);
const ASSIGNED: Ipv4Addr = Ipv4Addr::new(10, 255, 100, 10);
const DNS1: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);
const DNS2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 54);

fn ipcp_server() -> Fsm<Ipcp> {
    Fsm::new(
        Ipcp::server(IpcpServer {
            local: GW,
            peer: ASSIGNED,
            dns: [Some(DNS1), Some(DNS2)],
            nbns: [None; 2],
        }),
        Config::default(),
    )
}

fn open_fsms<P: Protocol + Failing>(net: &mut Net<Fsm<P>>) {
    let now = net.now;
    for f in [&mut net.a, &mut net.b] {
        f.open(now);
        f.up(now);
    }
}

#[test]
fn ipcp_client_gets_assigned_address_and_both_dns() {
    let mut net = Net::new(
        ipcp_server(),
        Fsm::new(Ipcp::client(IpcpClient::dynamic()), Config::default()),
    );
    open_fsms(&mut net);
    net.run(Duration::from_secs(30));
    assert_eq!(net.a.state(), State::Opened);
    assert_eq!(net.b.state(), State::Opened);
    let c = net.b.protocol().negotiated();
    assert_eq!(c.local, ASSIGNED);
    assert_eq!(c.peer, GW);
    assert_eq!(c.dns, [Some(DNS1), Some(DNS2)]);
    let s = net.a.protocol().negotiated();
    assert_eq!((s.local, s.peer), (GW, ASSIGNED));
    assert_eq!(net.sent(true, code::CONFIGURE_NAK), 1);
}

#[test]
fn ipcp_client_insisting_on_wrong_address_is_naked_to_max_failure_then_closed() {
    let mut net = Net::new(
        ipcp_server(),
        Fsm::new(
            Ipcp::client(IpcpClient {
                address: Ipv4Addr::new(203, 0, 113, 7),
                insist: true,
                ..IpcpClient::dynamic()
            }),
            Config::default(),
        ),
    );
    open_fsms(&mut net);
    net.run(Duration::from_secs(60));
    // Max-Failure (5) Naks, then the Nak turns into a Reject (RFC 1661 §4.6).
    assert_eq!(net.sent(true, code::CONFIGURE_NAK), 5);
    // (A second Reject answers the request the client sent along with its Reject handling,
    // before its owner closed it.)
    assert!(net.sent(true, code::CONFIGURE_REJECT) >= 1);
    assert_eq!(
        net.b.protocol().failure(),
        Some(NegotiationFailure::AddressRejected)
    );
    assert_eq!(net.sent(false, code::TERMINATE_REQUEST), 1);
    assert_ne!(net.a.state(), State::Opened);
    assert_eq!(net.b.state(), State::Closed);
}

// ---------------------------------------------------------------------------------------
// IPv6CP

#[test]
fn ipv6cp_identifier_collision_resolved() {
    let same = [0x02, 0x00, 0x5e, 0xff, 0xfe, 0x00, 0x53, 0x01];
    let mut net = Net::new(
        Fsm::new(
            Ipv6cp::new(Some(same), StdRng::seed_from_u64(1)),
            Config::default(),
        ),
        Fsm::new(
            Ipv6cp::new(Some(same), StdRng::seed_from_u64(2)),
            Config::default(),
        ),
    );
    open_fsms(&mut net);
    net.run(Duration::from_secs(30));
    assert_eq!(net.a.state(), State::Opened);
    assert_eq!(net.b.state(), State::Opened);
    let a = *net.a.protocol().negotiated();
    let b = *net.b.protocol().negotiated();
    assert_eq!((a.local, a.peer), (b.peer, b.local));
    assert_ne!(a.local, a.peer);
    assert!(net.sent(true, code::CONFIGURE_NAK) >= 1);
    assert!(net.sent(false, code::CONFIGURE_NAK) >= 1);
}

//! PPP for every L2TP session of the shell: one [`PppSession`] per established session,
//! the local users and pools that answer them, and one timer heap for all of them.
//!
//! # Contract
//!
//! [`PppSessions`] is sans-IO like the cores it holds: it takes `now` and the
//! [`Endpoint`] to encapsulate frames and to clear sessions, and queues datagrams for the
//! shell ([`PppSessions::poll_transmit`]).
//!
//! * [`PppSessions::session_up`] (the endpoint's `SessionUp`): a session is created with
//!   the LAC's [`ProxyMode`] and started with the ICCN's proxy AVPs (RFC 2661 §4.4.5).
//! * [`PppSessions::handle_frame`] (a data message): the PPP Address/Control and Protocol
//!   fields are parsed with [`xlns_dataplane::wire::ppp`] (compressed or not, RFC 1661 §6.5,
//!   §6.6) and the rest goes to the session. A frame that does not parse is counted and
//!   dropped. With a data plane, an IPv4 / IPv6 packet here bypassed it (the XDP program
//!   redirects every one it sees): counted in [`PppStats::bypassed_dataplane`] and logged
//!   (rate limited), then dropped as before.
//! * Every frame a session sends is framed with Address/Control `ff 03` and a two-octet
//!   Protocol, which every peer accepts whatever ACFC/PFC were negotiated (RFC 1661 §6.5,
//!   §6.6: compression is permitted, never required), and encapsulated by the endpoint
//!   ([`Endpoint::encapsulate_ppp`]).
//! * `NeedVerify` is answered from the users file, or, for sessions started with
//!   [`AaaMode::Radius`], queued for the shell's RADIUS client
//!   ([`PppSessions::poll_verify`], [`PppSessions::verify_answer`]); `NeedAddress` is
//!   answered from the pools.
//! * `Up` is logged as one line (tunnel, session, user, address, authentication method);
//!   with a data plane ([`PppSessions::set_dataplane`]) the session is published into the
//!   shared-memory segment ([`super::dataplane::Publisher::publish`]) with what the
//!   endpoint knows of its tunnel (the LAC's address, port and ids, Sequencing Required).
//! * `Down`: with a data plane, the session is withdrawn from the segment first and its
//!   final packet and octet counters go into the `ppp down` line.
//! * `Down`: the lease goes back to its pool, the session's last frames are sent, the
//!   L2TP session is cleared with a CDN ([`cdn_for`]: Result Code and the RFC 3145 PPP
//!   Disconnect Cause Code), one line with the reason label is logged, and the session's
//!   state is freed.
//! * Except when the peer terminated LCP itself: its LAC clears the call once its PPP is
//!   done (xl2tpd sends CDN after pppd exited, which is after pppd's ip-down scripts; a CDN
//!   of ours at once makes xl2tpd kill pppd in the middle of them). The session then
//!   lingers, answering LCP only, until the LAC's CDN arrives or [`PEER_CDN_WAIT`] passed;
//!   then we send the CDN. Its address is released at once all the same.
//! * [`PppSessions::session_down`] (the endpoint's `SessionDown`, the CDN of the peer or
//!   the tunnel going away): `lower_down`, the lease is released, the state freed.
//! * Timers: one binary heap of (deadline, session, generation) with lazy deletion, as the
//!   endpoint's: a session's entry is pushed when its deadline changes; stale entries are
//!   skipped when they reach the top and compacted when they outnumber the live ones.
//!   [`PppSessions::poll_timeout`] reads the top; nothing scans all sessions.
//!
//! * Accounting ([`PppSessions::enable_accounting`]): the first `Up` of a session queues
//!   an [`AcctNote::Up`] (user, address, Acct-Session-Id, the Access-Accept's Class and
//!   Acct-Interim-Interval), and its `Down`, whatever the path, an [`AcctNote::Down`] with
//!   the reason and its final traffic ([`PppSessions::traffic`]): the data plane's
//!   counters when the session was published (read at withdrawal), else the IPv4 / IPv6
//!   frames that reached xlnsd's socket (inbound only: xlnsd never forwards them).
//!   Every session gets an Acct-Session-Id, whatever its authentication.
//!
//! Every path frees the session's entry and its address: after every session went down,
//! [`PppSessions::len`] is 0 and every pool's `used` is 0.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};
use xlns_dataplane::wire::ppp::Packet;

use super::aaa::SessionIds;
use super::dataplane::{Publisher, SessionParams};
use crate::config::{AaaMode, Config};
use crate::l2tp::attr::{PppDisconnectCause, ProxyAuthenType};
use crate::l2tp::endpoint::{CallInfo, Endpoint, SessionKey, Transmit};
use crate::l2tp::result::{PppDisconnectCode, PppDisconnectDirection};
use crate::ppp::auth::{AuthResult, ReplyAttributes, VerifyRequest};
use crate::ppp::lcp::{AuthProtocol, ChapAlgorithm};
use crate::ppp::lcp_link::Keepalive;
use crate::ppp::lcp_proto::{LcpPolicy, PROTOCOL_LCP};
use crate::ppp::pool::{PoolError, Pools};
use crate::ppp::session::proxy::{ProxyInfo, ProxyMode};
use crate::ppp::session::{
    DownReason, PROTOCOL_IPV4, PROTOCOL_IPV6, Phase, PppSession, SessionConfig, SessionEvent,
};
use crate::ppp::users::Users;
use crate::radius::acct::Traffic;
use crate::radius::dae::{Change, RateLimits};
use crate::realm::Realms;

/// CDN Result Code 1: "Call disconnected due to loss of carrier" (RFC 2661 §4.4.2).
pub const CDN_LOSS_OF_CARRIER: u16 = 1;
/// CDN Result Code 3: "Call disconnected for administrative reasons" (RFC 2661 §4.4.2).
pub const CDN_ADMINISTRATIVE: u16 = 3;

/// How long a session whose peer terminated LCP waits for the LAC's CDN before sending
/// its own.
pub const PEER_CDN_WAIT: Duration = Duration::from_secs(10);

/// Counters of the PPP glue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PppStats {
    /// Sessions created.
    pub sessions_started: u64,
    /// Sessions that reached Up (IPCP opened) at least once.
    pub sessions_up: u64,
    /// Sessions that went down (any reason).
    pub sessions_down: u64,
    /// Authentication failures.
    pub auth_failures: u64,
    /// Sessions refused for want of an address.
    pub address_unavailable: u64,
    /// Sessions given up by the LCP echo keepalive.
    pub echo_timeouts: u64,
    /// Data messages whose PPP header did not parse.
    pub malformed_frames: u64,
    /// Data messages for a session without PPP state.
    pub unknown_session: u64,
    /// Frames the endpoint would not encapsulate (the session is no longer established).
    pub not_encapsulated: u64,
    /// With a data plane: IPv4 / IPv6 packets of a session that reached xlnsd's socket
    /// instead of the data plane (dropped here; see [`PppSessions::handle_frame`]).
    pub bypassed_dataplane: u64,
}

/// What the shell's telemetry learns of a session ([`PppSessions::poll_note`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PppNote {
    /// The session entered `phase` at `at` (RFC 1661 §3).
    Phase {
        key: SessionKey,
        phase: Phase,
        at: Instant,
    },
    /// IPCP opened: the user and the address.
    Up {
        key: SessionKey,
        user: Vec<u8>,
        address: std::net::Ipv4Addr,
        at: Instant,
    },
    /// The session went down for this reason ([`DownReason::label`]).
    Down {
        key: SessionKey,
        reason: &'static str,
    },
}

/// What accounting learns of a session ([`PppSessions::poll_acct`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcctNote {
    /// The session is up (IPCP opened) for the first time.
    Up {
        key: SessionKey,
        user: Vec<u8>,
        address: std::net::Ipv4Addr,
        acct_session_id: String,
        aaa: AaaMode,
        /// The Access-Accept's Class attributes.
        class: Vec<Vec<u8>>,
        /// The Access-Accept's Acct-Interim-Interval.
        interim_interval: Option<Duration>,
    },
    /// A session that was up went down.
    Down {
        key: SessionKey,
        reason: DownReason,
        traffic: Traffic,
    },
}

/// Accounting's view of the data plane's counters: input is upstream (from the
/// subscriber), output downstream. RFC 2866 §5.3, §5.4, §5.8, §5.9: the octets are the
/// IP packets' own lengths (the inner packet: no PPP, L2TP, UDP, outer IP or Ethernet
/// header), the packets are IP packets (IPv4 and IPv6) only; PPP control frames (LCP
/// echoes, IPCP, ...) that reach xlnsd's socket are never counted, like the Linux PPP
/// interface counters pppd and accel-ppp report. The lab checks it end to end
/// (`lab.sh --radius`, `xlns_bench::acct_check`).
pub fn traffic_of(c: &xlns_dataplane::shm::Counters) -> Traffic {
    Traffic {
        input_octets: c.up_bytes,
        output_octets: c.down_bytes,
        input_packets: c.up_packets,
        output_packets: c.down_packets,
    }
}

/// One session's PPP and its timer bookkeeping.
#[derive(Debug)]
struct Entry {
    ppp: PppSession,
    /// The deadline of this session's live heap entry.
    armed: Option<Instant>,
    /// Generation of the live heap entry; older ones are stale.
    generation: u64,
    /// The authentication method the LCP agreed, for the Up log line.
    auth: Option<AuthProtocol>,
    /// Down, waiting until then for the LAC's CDN (see the module documentation).
    linger: Option<(Instant, DownReason)>,
    /// The phase last reported as a [`PppNote`].
    phase: Phase,
    /// Local users file or RADIUS.
    aaa: AaaMode,
    /// Acct-Session-Id (RADIUS sessions).
    acct_session_id: Option<String>,
    /// What the Access-Accept said (Framed-Route, Class, ... for routing and accounting).
    reply: ReplyAttributes,
    /// An [`AcctNote::Up`] was queued.
    accounted: bool,
    /// Accounted at all (its LAC's `accounting`).
    accounting: bool,
    /// IPv4 / IPv6 frames that reached xlnsd's socket (the PPP path).
    socket_traffic: Traffic,
    /// The name verified when a `[[realm]]` stripped it (the User-Name of the
    /// Access-Request and of accounting), else `None`: PPP's peer name.
    aaa_user: Option<Vec<u8>>,
    /// Rate limits of the last CoA-Request (RFC 5176), for the shaping issue.
    rate_limits: RateLimits,
}

impl Entry {
    fn deadline(&self) -> Option<Instant> {
        match (self.ppp.poll_timeout(), &self.linger) {
            (Some(a), Some((b, _))) => Some(a.min(*b)),
            (a, b) => a.or(b.as_ref().map(|(at, _)| *at)),
        }
    }
}

/// PPP of every session; see the module documentation.
#[derive(Debug)]
pub struct PppSessions {
    template: SessionConfig,
    users: Users,
    pools: Pools,
    /// Boxed: an [`Entry`] is several KiB (the PPP session inline), and a table of them
    /// inline costs that per bucket, up to twice the sessions after a growth, and copies
    /// every one at each growth (1,000,000 sessions: about 10 GiB of table, 15 GiB
    /// during the rehash, instead of the entries plus 16 octets a bucket).
    sessions: HashMap<SessionKey, Box<Entry>>,
    timers: BinaryHeap<Reverse<(Instant, SessionKey, u64)>>,
    transmit: VecDeque<Transmit>,
    stats: PppStats,
    dataplane: Option<Publisher>,
    notes: VecDeque<PppNote>,
    /// RADIUS verifications for the shell to send ([`PppSessions::poll_verify`]).
    verify: VecDeque<(SessionKey, VerifyRequest)>,
    /// `[[realm]]`: the verifier chosen by the realm of the name ([`crate::realm`]).
    realms: Realms,
    ids: SessionIds,
    /// Accounting notes ([`PppSessions::poll_acct`]); `None`: accounting is off.
    acct: Option<VecDeque<AcctNote>>,
    /// Sessions by Acct-Session-Id (RFC 5176 requests name them so).
    by_acct_session_id: HashMap<String, SessionKey>,
}

/// The LNS session configuration that `config`'s `[ppp]` section describes (the LAC's
/// proxy mode is set per session).
pub fn session_config(config: &Config) -> SessionConfig {
    let ppp = &config.ppp;
    let mut session = SessionConfig::lns(
        ppp.auth_protocols(),
        ppp.gateway.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
        ppp.dns,
    );
    session.lcp = LcpPolicy {
        mru: Some(ppp.mru),
        ..LcpPolicy::authenticator(ppp.auth_protocols())
    };
    session.chap_name = ppp.chap_name.as_bytes().to_vec();
    session.keepalive = ppp.lcp_echo_interval.map(|interval| Keepalive {
        interval,
        max_failures: ppp.lcp_echo_failures,
    });
    session.default_pool = ppp.default_pool.clone();
    session.ipv6cp = ppp.ipv6cp;
    session.session_timeout = ppp.session_timeout;
    session.idle_timeout = ppp.idle_timeout;
    session
}

/// The ICCN's proxy AVPs (RFC 2661 §4.4.5), `None` when it carried none.
pub fn proxy_info(info: &CallInfo) -> Option<ProxyInfo> {
    let proxy = ProxyInfo {
        initial_received_lcp_confreq: info.initial_received_lcp_confreq.clone(),
        last_sent_lcp_confreq: info.last_sent_lcp_confreq.clone(),
        last_received_lcp_confreq: info.last_received_lcp_confreq.clone(),
        authen_type: info.proxy_authen_type.map(ProxyAuthenType::from_code),
        authen_name: info.proxy_authen_name.clone(),
        authen_challenge: info.proxy_authen_challenge.clone(),
        authen_id: info.proxy_authen_id,
        authen_response: info.proxy_authen_response.clone(),
    };
    (proxy != ProxyInfo::default()).then_some(proxy)
}

/// The CDN for a PPP session that went down for `reason` (RFC 2661 §4.4.2, RFC 3145):
/// the Result Code and the PPP Disconnect Cause Code AVP.
///
/// * No address: the pool's Result Code, 4 (temporary lack of facilities) when it is
///   exhausted, 5 for a configuration fault ([`PoolError::cdn_result`]).
/// * The peer left (its LCP Terminate-Request, unanswered echoes or LCP timers): 1, "loss
///   of carrier": the PPP link is gone.
/// * Anything we decided (authentication failure, policy, operator, timeouts): 3, "for
///   administrative reasons". Result Code 2 would need a General Error Code, and none of
///   them (§4.4.2) describes a PPP reason; the cause AVP does.
///
/// The cause's direction says where the failure arose: at the peer (1) for what the peer
/// did or failed to do, at the local end (2) for our decisions (RFC 3145 §2).
pub fn cdn_for(reason: &DownReason) -> (u16, PppDisconnectCause) {
    use PppDisconnectCode as C;
    let (result, code, protocol, direction) = match reason {
        DownReason::AddressUnavailable(error) => (
            error.cdn_result().result,
            if matches!(error, PoolError::Exhausted { .. }) {
                C::NcpAddressConvergence
            } else {
                C::NcpNoAddressPermitted
            },
            crate::ppp::ipcp_proto::PROTOCOL_IPCP,
            PppDisconnectDirection::AtLocal,
        ),
        DownReason::LcpTerminated => (
            CDN_LOSS_OF_CARRIER,
            C::NormalDisconnection,
            PROTOCOL_LCP,
            PppDisconnectDirection::AtPeer,
        ),
        DownReason::EchoTimeout => (
            CDN_LOSS_OF_CARRIER,
            C::EchoTimeout,
            PROTOCOL_LCP,
            PppDisconnectDirection::AtPeer,
        ),
        DownReason::LcpTimeout => (
            CDN_LOSS_OF_CARRIER,
            C::LcpFsmTimeout,
            PROTOCOL_LCP,
            PppDisconnectDirection::AtPeer,
        ),
        DownReason::LowerDown => (
            CDN_LOSS_OF_CARRIER,
            C::NoInformation,
            0,
            PppDisconnectDirection::Global,
        ),
        DownReason::AuthFailed => (
            CDN_ADMINISTRATIVE,
            C::AuthFailed,
            0,
            PppDisconnectDirection::AtLocal,
        ),
        DownReason::ProxyRefused(_) => (
            CDN_ADMINISTRATIVE,
            C::AuthProtocolUnacceptable,
            0,
            PppDisconnectDirection::AtLocal,
        ),
        DownReason::NegotiationFailed(_) => (
            CDN_ADMINISTRATIVE,
            C::NoRecognizableLcp,
            PROTOCOL_LCP,
            PppDisconnectDirection::AtLocal,
        ),
        DownReason::NcpDown { protocol } => (
            CDN_ADMINISTRATIVE,
            C::NoNcps,
            *protocol,
            PppDisconnectDirection::AtLocal,
        ),
        DownReason::Admin | DownReason::SessionTimeout | DownReason::IdleTimeout => (
            CDN_ADMINISTRATIVE,
            C::Administrative,
            0,
            PppDisconnectDirection::AtLocal,
        ),
    };
    (
        result,
        PppDisconnectCause {
            code: code.code(),
            protocol,
            direction: u8::try_from(direction.code()).unwrap_or(0),
            message: reason.label().as_bytes().to_vec(),
        },
    )
}

/// What the data plane needs of session `key` besides PPP's `up`: the tunnel's peer and
/// ids from the endpoint.
fn session_params(
    endpoint: &Endpoint,
    key: SessionKey,
    up: &crate::ppp::session::SessionUp,
) -> Option<SessionParams> {
    let tunnel = endpoint.tunnel_info(key.tunnel)?;
    let (_, call) = endpoint.session_info(key)?;
    Some(SessionParams {
        peer: tunnel.peer,
        peer_tunnel: tunnel.peer_tunnel,
        peer_session: call.peer_session,
        sequencing: call.sequencing_required,
        mtu: up.lcp.peer_mru,
        subscriber_v4: up.address,
        acfc: up.lcp.tx_acfc,
        pfc: up.lcp.tx_pfc,
        routes: Vec::new(),
        ipv6_prefix: None,
        delegated_prefix: None,
    })
}

fn auth_label(auth: Option<&AuthProtocol>) -> &'static str {
    match auth {
        None => "none",
        Some(AuthProtocol::Pap) => "pap",
        Some(AuthProtocol::Chap(ChapAlgorithm::Md5)) => "chap-md5",
        Some(AuthProtocol::Chap(ChapAlgorithm::MsChapV2)) => "mschap-v2",
        Some(_) => "other",
    }
}

impl PppSessions {
    /// PPP for `config`'s `[ppp]` section with these users and pools.
    pub fn new(config: &Config, users: Users, pools: Pools) -> PppSessions {
        PppSessions {
            template: session_config(config),
            users,
            pools,
            sessions: HashMap::new(),
            timers: BinaryHeap::new(),
            transmit: VecDeque::new(),
            stats: PppStats::default(),
            dataplane: None,
            notes: VecDeque::new(),
            verify: VecDeque::new(),
            realms: Realms::new(&config.realms),
            ids: SessionIds::new(),
            acct: None,
            by_acct_session_id: HashMap::new(),
        }
    }

    /// Queues [`AcctNote`]s from now on.
    pub fn enable_accounting(&mut self) {
        self.acct.get_or_insert_with(VecDeque::new);
    }

    /// The next accounting note.
    pub fn poll_acct(&mut self) -> Option<AcctNote> {
        self.acct.as_mut()?.pop_front()
    }

    /// The data plane publisher, if any, to drain its removed orphans.
    pub fn dataplane_mut(&mut self) -> Option<&mut Publisher> {
        self.dataplane.as_mut()
    }

    /// The traffic of the previous run's session `key` that the data plane still
    /// forwards (an orphan), if any.
    pub fn orphan_traffic(&self, key: SessionKey) -> Option<Traffic> {
        self.dataplane
            .as_ref()?
            .orphan_counters(key.tunnel, key.session)
            .map(|c| traffic_of(&c))
    }

    /// Session `key` is not accounted (its LAC's `accounting = false`); call it before
    /// the session is up.
    pub fn skip_accounting(&mut self, key: SessionKey) {
        if let Some(entry) = self.sessions.get_mut(&key) {
            entry.accounting = false;
        }
    }

    /// Session `key`'s traffic so far: the data plane's counters when it is published,
    /// else what reached xlnsd's socket.
    pub fn traffic(&self, key: SessionKey) -> Option<Traffic> {
        let entry = self.sessions.get(&key)?;
        Some(
            self.dataplane
                .as_ref()
                .and_then(|d| d.counters(key))
                .map_or(entry.socket_traffic, |c| traffic_of(&c)),
        )
    }

    /// Publishes every session that comes up into the data plane's segment from now on.
    pub fn set_dataplane(&mut self, publisher: Publisher) {
        self.dataplane = Some(publisher);
    }

    /// The data plane publisher, if any.
    pub fn dataplane(&self) -> Option<&Publisher> {
        self.dataplane.as_ref()
    }

    /// Sessions with PPP state.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session has PPP state.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Live and stale timer entries.
    pub fn timer_entries(&self) -> usize {
        self.timers.len()
    }

    /// The pools (counters).
    pub fn pools(&self) -> &Pools {
        &self.pools
    }

    /// Counters.
    pub fn stats(&self) -> &PppStats {
        &self.stats
    }

    /// The L2TP session `key` is established: start its PPP under the LAC's `mode`,
    /// authenticated from the local users.
    pub fn session_up(
        &mut self,
        now: Instant,
        key: SessionKey,
        info: &CallInfo,
        mode: ProxyMode,
        endpoint: &mut Endpoint,
    ) {
        self.session_up_with(now, key, info, mode, AaaMode::Local, endpoint);
    }

    /// [`PppSessions::session_up`] with the authentication `aaa`: with
    /// [`AaaMode::Radius`] the session gets an Acct-Session-Id and its `NeedVerify` goes to
    /// [`PppSessions::poll_verify`], answered by [`PppSessions::verify_answer`].
    pub fn session_up_with(
        &mut self,
        now: Instant,
        key: SessionKey,
        info: &CallInfo,
        mode: ProxyMode,
        aaa: AaaMode,
        endpoint: &mut Endpoint,
    ) {
        if self.sessions.contains_key(&key) {
            return;
        }
        let mut config = self.template.clone();
        config.proxy = mode;
        let mut ppp = PppSession::new(config);
        let proxy = proxy_info(info);
        ppp.start(now, proxy.as_ref());
        self.stats.sessions_started += 1;
        // Every session gets an Acct-Session-Id: accounting (RFC 2866 §5.5) and dynamic
        // authorization (RFC 5176 §3) name sessions by it, local or RADIUS-authenticated.
        let acct_session_id = self.ids.next_id();
        self.by_acct_session_id.insert(acct_session_id.clone(), key);
        self.sessions.insert(
            key,
            Box::new(Entry {
                ppp,
                armed: None,
                generation: 0,
                auth: None,
                linger: None,
                phase: Phase::Dead,
                aaa,
                acct_session_id: Some(acct_session_id),
                reply: ReplyAttributes::default(),
                accounted: false,
                accounting: true,
                socket_traffic: Traffic::default(),
                aaa_user: None,
                rate_limits: RateLimits::default(),
            }),
        );
        self.service(now, key, endpoint);
    }

    /// A data message of session `key`: its PPP frame.
    pub fn handle_frame(
        &mut self,
        now: Instant,
        key: SessionKey,
        frame: &[u8],
        endpoint: &mut Endpoint,
    ) {
        let Some(entry) = self.sessions.get_mut(&key) else {
            self.stats.unknown_session += 1;
            return;
        };
        let Ok(packet) = Packet::new_checked(frame) else {
            self.stats.malformed_frames += 1;
            return;
        };
        let protocol = packet.protocol();
        if protocol == PROTOCOL_IPV4 || protocol == PROTOCOL_IPV6 {
            entry.socket_traffic.input_packets += 1;
            entry.socket_traffic.input_octets += packet.payload().len() as u64;
        }
        if let Some(dataplane) = &self.dataplane
            && (protocol == PROTOCOL_IPV4 || protocol == PROTOCOL_IPV6)
        {
            self.stats.bypassed_dataplane += 1;
            let count = self.stats.bypassed_dataplane;
            // Logged at the 1st, 2nd, 4th, 8th, ... occurrence: visible, never a flood.
            if count.is_power_of_two() {
                warn!(
                    tunnel = key.tunnel,
                    session = key.session,
                    protocol = format_args!("{protocol:#06x}"),
                    published = dataplane.is_published(key),
                    count,
                    "data plane bypassed: a subscriber packet reached xlnsd's socket instead of \
                     the XDP program and is dropped (does another interface of this host answer \
                     ARP for the access address? net.ipv4.conf.all.arp_ignore=1)"
                );
            }
        }
        entry
            .ppp
            .handle_frame(packet.protocol(), packet.payload(), now);
        self.service(now, key, endpoint);
    }

    /// The L2TP session `key` is gone (CDN received, tunnel down): PPP is down at once.
    pub fn session_down(&mut self, now: Instant, key: SessionKey, endpoint: &mut Endpoint) {
        let Some(entry) = self.sessions.get_mut(&key) else {
            return;
        };
        if entry.linger.is_some() {
            // The LAC cleared the call after its peer's LCP Terminate-Request.
            self.free(key);
            return;
        }
        entry.ppp.lower_down(now);
        self.service(now, key, endpoint);
    }

    /// Closes session `key` for the operator: LCP Terminate-Request, then CDN. `false`
    /// when it has no PPP state.
    pub fn close(&mut self, now: Instant, key: SessionKey, endpoint: &mut Endpoint) -> bool {
        let Some(entry) = self.sessions.get_mut(&key) else {
            return false;
        };
        entry.ppp.close(now, DownReason::Admin);
        self.service(now, key, endpoint);
        true
    }

    /// The next note for the shell's telemetry.
    pub fn poll_note(&mut self) -> Option<PppNote> {
        self.notes.pop_front()
    }

    /// Closes every session (shutdown): LCP Terminate-Request, then CDN.
    pub fn close_all(&mut self, now: Instant, endpoint: &mut Endpoint) {
        let keys: Vec<SessionKey> = self.sessions.keys().copied().collect();
        for key in keys {
            if let Some(entry) = self.sessions.get_mut(&key) {
                entry.ppp.close(now, DownReason::Admin);
            }
            self.service(now, key, endpoint);
        }
    }

    /// When [`PppSessions::handle_timeout`] is due: the earliest live timer.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let tick = self.dataplane.as_ref().map(Publisher::poll_timeout);
        while let Some(Reverse((at, key, generation))) = self.timers.peek().copied() {
            if self.is_live(at, key, generation) {
                return Some(tick.map_or(at, |t| t.min(at)));
            }
            self.timers.pop();
        }
        tick
    }

    /// Fires every session timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant, endpoint: &mut Endpoint) {
        if let Some(dataplane) = &mut self.dataplane {
            dataplane.handle_timeout(now);
        }
        while let Some(Reverse((at, key, generation))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            if !self.is_live(at, key, generation) {
                continue;
            }
            let Some(entry) = self.sessions.get_mut(&key) else {
                continue;
            };
            entry.armed = None;
            if let Some((until, _)) = &entry.linger
                && *until <= now
            {
                if let Some((_, reason)) = entry.linger.take() {
                    self.clear(now, key, &reason, endpoint);
                }
                continue;
            }
            entry.ppp.handle_timeout(now);
            self.service(now, key, endpoint);
        }
    }

    /// The next RADIUS verification to send: the session, its request and its
    /// Acct-Session-Id.
    pub fn poll_verify(&mut self) -> Option<(SessionKey, VerifyRequest, Option<String>)> {
        let (key, request) = self.verify.pop_front()?;
        let id = self
            .sessions
            .get(&key)
            .and_then(|e| e.acct_session_id.clone());
        Some((key, request, id))
    }

    /// The RADIUS answer to a [`PppSessions::poll_verify`] request. An acceptance's
    /// Session-Timeout, Idle-Timeout and DNS servers are applied to the session (RFC 2865
    /// §5.27, §5.28; RFC 2548 §2.6.2), Framed-IP-Address and Framed-Pool choose its
    /// address, Framed-MTU caps the data plane's MTU, and the rest (Framed-Route, Class,
    /// ...) is kept with the session.
    pub fn verify_answer(
        &mut self,
        now: Instant,
        key: SessionKey,
        id: u64,
        result: AuthResult,
        endpoint: &mut Endpoint,
    ) {
        let Some(entry) = self.sessions.get_mut(&key) else {
            return;
        };
        if result.accepted {
            let a = &result.attributes;
            if a.session_timeout.is_some() {
                entry.ppp.set_session_timeout(a.session_timeout);
            }
            if a.idle_timeout.is_some() {
                entry.ppp.set_idle_timeout(a.idle_timeout);
            }
            if a.primary_dns.is_some() || a.secondary_dns.is_some() {
                entry.ppp.set_dns([a.primary_dns, a.secondary_dns]);
            }
            entry.reply = a.clone();
        }
        entry.ppp.handle_verify_result(id, result, now);
        self.service(now, key, endpoint);
    }

    /// A Dynamic Authorization change (RFC 5176 CoA-Request, or a Disconnect-Request's
    /// Class): a Session-Timeout or Idle-Timeout present replaces the session's (`None`
    /// inside removes it; the Session-Timeout counts from Up, so one already passed ends
    /// the session at its next timer), Class replaces the Class echoed in accounting, the
    /// rate limits are stored ([`PppSessions::rate_limits`]). `false` when the session has
    /// no PPP state.
    pub fn change_authorization(&mut self, key: SessionKey, change: &Change) -> bool {
        let Some(entry) = self.sessions.get_mut(&key) else {
            return false;
        };
        if let Some(timeout) = change.session_timeout {
            entry.ppp.set_session_timeout(timeout);
            entry.reply.session_timeout = timeout;
        }
        if let Some(timeout) = change.idle_timeout {
            entry.ppp.set_idle_timeout(timeout);
            entry.reply.idle_timeout = timeout;
        }
        if let Some(class) = &change.class {
            entry.reply.class = class.clone();
        }
        if let Some(rates) = &change.rate_limits {
            entry.rate_limits = rates.clone();
        }
        self.rearm(key);
        true
    }

    /// The rate limits of the last CoA-Request of session `key`.
    pub fn rate_limits(&self, key: SessionKey) -> Option<&RateLimits> {
        self.sessions.get(&key).map(|e| &e.rate_limits)
    }

    /// The Access-Accept attributes of session `key` (empty for local users).
    pub fn reply_attributes(&self, key: SessionKey) -> Option<&ReplyAttributes> {
        self.sessions.get(&key).map(|e| &e.reply)
    }

    /// The sessions with PPP state.
    pub fn keys(&self) -> impl Iterator<Item = SessionKey> + '_ {
        self.sessions.keys().copied()
    }

    /// The session whose Acct-Session-Id is `id`, in O(1).
    pub fn session_by_acct_session_id(&self, id: &[u8]) -> Option<SessionKey> {
        let id = std::str::from_utf8(id).ok()?;
        self.by_acct_session_id.get(id).copied()
    }

    /// The Acct-Session-Id of session `key` (RADIUS sessions).
    pub fn acct_session_id(&self, key: SessionKey) -> Option<&str> {
        self.sessions.get(&key)?.acct_session_id.as_deref()
    }

    /// The next datagram to send (PPP frames, encapsulated).
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmit.pop_front()
    }

    fn is_live(&self, at: Instant, key: SessionKey, generation: u64) -> bool {
        self.sessions
            .get(&key)
            .is_some_and(|e| e.generation == generation && e.armed == Some(at))
    }

    /// Drains the session's frames and events until it has nothing more to say, then
    /// re-arms its timer or, once it is down, clears the L2TP session and frees it.
    fn service(&mut self, now: Instant, key: SessionKey, endpoint: &mut Endpoint) {
        let mut down = None;
        loop {
            let Some(entry) = self.sessions.get_mut(&key) else {
                return;
            };
            let mut progress = false;
            if entry.ppp.phase() != entry.phase {
                entry.phase = entry.ppp.phase();
                self.notes.push_back(PppNote::Phase {
                    key,
                    phase: entry.phase,
                    at: now,
                });
            }
            while let Some((protocol, packet)) = entry.ppp.poll_transmit() {
                progress = true;
                match endpoint.encapsulate_ppp(key, protocol, &packet) {
                    Some(tx) => self.transmit.push_back(tx),
                    None => self.stats.not_encapsulated += 1,
                }
            }
            let Some(event) = entry.ppp.poll_event() else {
                if progress {
                    continue;
                }
                break;
            };
            match event {
                SessionEvent::NeedVerify(mut request) => {
                    // A `[[realm]]` of the name may choose the verifier and strip the name.
                    let (aaa, name) = self.realms.choose(&request, entry.aaa);
                    entry.aaa = aaa;
                    if let Some(name) = name {
                        request.user.clone_from(&name);
                        entry.aaa_user = Some(name);
                    }
                    match entry.aaa {
                        AaaMode::Local => entry.ppp.answer_from(&self.users, &request, now),
                        AaaMode::Radius => self.verify.push_back((key, request)),
                    }
                }
                SessionEvent::NeedAddress(request) => {
                    entry.ppp.assign_from(&mut self.pools, &request, now);
                }
                SessionEvent::Up(up) => {
                    self.stats.sessions_up += 1;
                    entry.auth = up.lcp.peer_auth.clone();
                    self.notes.push_back(PppNote::Up {
                        key,
                        user: up.user.clone(),
                        address: up.address,
                        at: now,
                    });
                    info!(
                        tunnel = key.tunnel,
                        session = key.session,
                        user = %String::from_utf8_lossy(&up.user),
                        address = %up.address,
                        gateway = %up.gateway,
                        auth = auth_label(entry.auth.as_ref()),
                        mru = up.lcp.peer_mru,
                        "ppp up"
                    );
                    if let Some(notes) = &mut self.acct
                        && entry.accounting
                        && !entry.accounted
                    {
                        entry.accounted = true;
                        notes.push_back(AcctNote::Up {
                            key,
                            user: entry.aaa_user.clone().unwrap_or_else(|| up.user.clone()),
                            address: up.address,
                            acct_session_id: entry.acct_session_id.clone().unwrap_or_default(),
                            aaa: entry.aaa,
                            class: entry.reply.class.clone(),
                            interim_interval: entry.reply.interim_interval,
                        });
                    }
                    if let Some(dataplane) = &mut self.dataplane {
                        match session_params(endpoint, key, &up) {
                            Some(mut params) => {
                                // Framed-MTU (RFC 2865 §5.12) caps what LCP agreed.
                                if let Some(mtu) = entry.reply.mtu {
                                    params.mtu = params.mtu.min(mtu);
                                }
                                // Framed-Route, Framed-IPv6-Prefix, Delegated-IPv6-Prefix.
                                params.apply_reply(&entry.reply);
                                dataplane.publish(key, &params)
                            }
                            None => warn!(
                                tunnel = key.tunnel,
                                session = key.session,
                                "ppp up for a session the endpoint does not know"
                            ),
                        }
                    }
                }
                SessionEvent::Ipv6Up(v6) => {
                    info!(
                        tunnel = key.tunnel,
                        session = key.session,
                        ?v6,
                        "ppp ipv6cp up"
                    );
                }
                SessionEvent::Down { reason, lease } => {
                    if let Some(lease) = lease
                        && let Err(error) = lease.release(&mut self.pools)
                    {
                        warn!(%error, "releasing a lease");
                    }
                    down = Some(reason);
                }
            }
        }
        if let Some(reason) = down {
            self.finish(now, key, reason, endpoint);
        }
        self.rearm(key);
    }

    /// The session went down: count, log, CDN (unless the L2TP session is gone already),
    /// free.
    fn finish(
        &mut self,
        now: Instant,
        key: SessionKey,
        reason: DownReason,
        endpoint: &mut Endpoint,
    ) {
        self.stats.sessions_down += 1;
        self.notes.push_back(PppNote::Down {
            key,
            reason: reason.label(),
        });
        match reason {
            DownReason::AuthFailed => self.stats.auth_failures += 1,
            DownReason::AddressUnavailable(_) => self.stats.address_unavailable += 1,
            DownReason::EchoTimeout => self.stats.echo_timeouts += 1,
            _ => {}
        }
        let withdrawn = self.dataplane.as_mut().and_then(|d| d.withdraw(key));
        if let Some(notes) = &mut self.acct
            && let Some(entry) = self.sessions.get(&key)
            && entry.accounted
        {
            notes.push_back(AcctNote::Down {
                key,
                reason: reason.clone(),
                traffic: withdrawn.as_ref().map_or(entry.socket_traffic, traffic_of),
            });
        }
        match withdrawn {
            Some(c) => info!(
                tunnel = key.tunnel,
                session = key.session,
                reason = reason.label(),
                up_packets = c.up_packets,
                up_bytes = c.up_bytes,
                down_packets = c.down_packets,
                down_bytes = c.down_bytes,
                "ppp down"
            ),
            None => info!(
                tunnel = key.tunnel,
                session = key.session,
                reason = reason.label(),
                "ppp down"
            ),
        }
        match reason {
            DownReason::LowerDown => self.free(key),
            DownReason::LcpTerminated => {
                if let Some(entry) = self.sessions.get_mut(&key) {
                    entry.linger = Some((now + PEER_CDN_WAIT, reason));
                }
            }
            _ => self.clear(now, key, &reason, endpoint),
        }
    }

    /// Sends the CDN for `reason` and frees the session.
    fn clear(
        &mut self,
        now: Instant,
        key: SessionKey,
        reason: &DownReason,
        endpoint: &mut Endpoint,
    ) {
        let (result, cause) = cdn_for(reason);
        info!(
            tunnel = key.tunnel,
            session = key.session,
            reason = reason.label(),
            cdn_result = result,
            cause = cause.code,
            "sending CDN"
        );
        endpoint.close_session(now, key, result, Some(cause));
        self.free(key);
    }

    fn free(&mut self, key: SessionKey) {
        if let Some(entry) = self.sessions.remove(&key) {
            if let Some(id) = &entry.acct_session_id {
                self.by_acct_session_id.remove(id);
            }
            debug!(counters = ?entry.ppp.counters(), "ppp session freed");
        }
        self.compact();
    }

    fn rearm(&mut self, key: SessionKey) {
        let Some(entry) = self.sessions.get_mut(&key) else {
            return;
        };
        let deadline = entry.deadline();
        if deadline == entry.armed {
            return;
        }
        entry.generation = entry.generation.wrapping_add(1);
        entry.armed = deadline;
        if let Some(at) = deadline {
            self.timers.push(Reverse((at, key, entry.generation)));
        }
        self.compact();
    }

    /// Drops stale heap entries once they outnumber the live ones.
    fn compact(&mut self) {
        if self.timers.len() <= 2 * self.sessions.len() + 64 {
            return;
        }
        let sessions = &self.sessions;
        self.timers.retain(|Reverse((at, key, generation))| {
            sessions
                .get(key)
                .is_some_and(|e| e.generation == *generation && e.armed == Some(*at))
        });
    }
}

impl PppSessions {
    /// Applies a reloaded configuration (SIGHUP) to the sessions that start from now on:
    /// the `[ppp]` values, the users, the pools. Live sessions keep what they negotiated
    /// and their leases ([`Pools::reload`]).
    pub fn reconfigure(
        &mut self,
        config: &Config,
        users: Users,
        pools: Pools,
    ) -> crate::ppp::pool::PoolReload {
        self.template = session_config(config);
        self.realms = Realms::new(&config.realms);
        self.users = users;
        self.pools.reload(pools)
    }

    /// The local users (count for logs).
    pub fn users(&self) -> &Users {
        &self.users
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    fn bucket_size<K, V>(_: &HashMap<K, V>) -> usize {
        std::mem::size_of::<(K, V)>()
    }

    #[test]
    fn the_session_table_keeps_entries_out_of_its_buckets() {
        // Issue #6 scale: at 1,000,000 sessions a table of inline entries (several KiB
        // each) would cost that per bucket, twice over during a growth.
        let config = Config::from_toml_str("", "test").unwrap();
        let sessions = PppSessions::new(&config, Users::new(), Pools::new());
        assert!(std::mem::size_of::<Entry>() > 256);
        assert!(bucket_size(&sessions.sessions) <= 16);
    }
}

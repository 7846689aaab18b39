//! The PPP session of one subscriber (RFC 1661 §3): LCP, then authentication, then IPCP
//! (and IPv6CP when enabled), sans-IO, in either role: [`Role::Lns`] (the authenticator,
//! which assigns the address) and [`Role::Client`] (the peer, for the benchmark's emulator
//! and the tests).
//!
//! # Phases (RFC 1661 §3)
//! Dead -> Establish (LCP) -> Authenticate -> Network (NCPs) -> Terminate -> Dead, see
//! [`Phase`]. A NAS-initiated call may skip Establish (proxy LCP) and authenticate with what
//! the LAC captured (proxy authentication); [`proxy`] has the rules.
//!
//! # Inputs
//! * [`PppSession::start`] once the L2TP session is established, with the ICCN's proxy
//!   AVPs if any.
//! * [`PppSession::handle_frame`]: a PPP frame (protocol and information field; the caller
//!   stripped the L2TP header, Address/Control and the Protocol field). LCP is always
//!   handled; PAP/CHAP reach the authentication machine once it runs; IPCP/IPv6CP before the
//!   Network phase are silently discarded (RFC 1661 §3.2, §3.5); IPv4/IPv6 datagrams (the
//!   data plane's) are discarded; any other protocol is answered with an LCP Protocol-Reject
//!   in the Network phase (§5.7) and discarded before.
//! * [`PppSession::handle_timeout`] when [`PppSession::poll_timeout`] is due.
//! * [`PppSession::handle_verify_result`] answers [`SessionEvent::NeedVerify`] (local users:
//!   [`PppSession::answer_from`]; RADIUS later, asynchronously, #7).
//! * [`PppSession::handle_address`] answers [`SessionEvent::NeedAddress`] with a [`Lease`]
//!   (local pools: [`PppSession::assign_from`]).
//! * [`PppSession::close`] (administrative: LCP Terminate-Request, then Down),
//!   [`PppSession::lower_down`] (the L2TP session is gone: Down at once, nothing sent).
//! * [`PppSession::note_activity`] (traffic seen by the data plane, for the idle timeout),
//!   [`PppSession::set_session_timeout`], [`PppSession::set_idle_timeout`].
//!
//! # Outputs
//! [`PppSession::poll_transmit`] (protocol and packet), [`PppSession::poll_event`]
//! ([`SessionEvent`]) and [`PppSession::poll_timeout`].
//!
//! # Up and Down
//! [`SessionEvent::Up`] is reported when IPCP opens (the data plane needs the IPv4
//! address); an IPv6CP that opens later is reported by [`SessionEvent::Ipv6Up`]. If the
//! peer renegotiates LCP afterwards, authentication and the NCPs run again and `Up` is
//! reported again, with the same address.
//!
//! [`SessionEvent::Down`] is reported exactly once per session, at the moment the session
//! is given up, after the last packets (a CHAP Failure, a Terminate-Request or -Ack) were
//! queued: drain [`PppSession::poll_transmit`], then clear the L2TP session (CDN). A caller
//! that wants the graceful LCP terminate handshake may keep the session until
//! [`PppSession::is_finished`]; it goes on answering and retransmitting LCP only.
//!
//! # Addresses: released exactly once
//! The caller owns the pools. The session asks for an address once per session
//! ([`SessionEvent::NeedAddress`]) and holds the [`Lease`] it is given; the `Down` event
//! hands that lease back (`lease: Some`), and only that event does. A lease that arrives
//! when the session no longer waits for one (it went down meanwhile) is returned at once by
//! [`PppSession::handle_address`]. So releasing what `Down` and `handle_address` return
//! releases every allocated address exactly once.

pub mod proxy;

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::auth::{
    self, AuthResult, Authenticator, ChapAuthenticator, ChapAuthenticatorConfig, ChapMethod,
    ChapPeer, ChapPeerConfig, Method, PapAuthenticator, PapAuthenticatorConfig, PapPeer,
    PapPeerConfig, Peer, ReplyAttributes, Verifier, VerifyRequest,
};
use super::fsm::{self, Fsm, LayerEvent, State};
use super::ipcp_proto::{Ipcp, IpcpClient, IpcpServer, PROTOCOL_IPCP};
use super::ipv6cp_proto::{Ipv6cp, Ipv6cpNegotiated, PROTOCOL_IPV6CP};
use super::lcp::{AuthProtocol, ChapAlgorithm};
use super::lcp_link::{Keepalive, LcpLink, LinkEvent};
use super::lcp_proto::{Lcp, LcpPolicy, Negotiated, PROTOCOL_LCP};
use super::policy::{NegotiationFailure, close_on_failure};
use super::pool::{PoolError, Pools};
use super::{chap, pap};

use proxy::{Decision, ProxiedAuth, ProxyInfo, ProxyMode, ProxyRefusal};

/// PPP protocol number of IPv4 datagrams (the data plane's).
pub const PROTOCOL_IPV4: u16 = 0x0021;
/// PPP protocol number of IPv6 datagrams (the data plane's).
pub const PROTOCOL_IPV6: u16 = 0x0057;

/// RFC 1661 §3 link phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not started, or finished.
    Dead,
    /// LCP is negotiating (§3.3).
    Establish,
    /// Authentication, and the address assignment that follows it on the LNS (§3.5).
    Authenticate,
    /// NCPs negotiate and run (§3.6).
    Network,
    /// The session was given up; LCP terminates (§3.7).
    Terminate,
}

/// The client's credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// PAP Peer-ID / CHAP Name.
    pub user: Vec<u8>,
    /// The password (PAP, CHAP-MD5 secret, MS-CHAPv2 password).
    pub password: String,
}

impl core::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &String::from_utf8_lossy(&self.user))
            .finish_non_exhaustive()
    }
}

/// Which side of the link we are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// The LNS: authenticator, address server.
    Lns,
    /// The subscriber's PPP client (emulator): authenticates with these credentials and
    /// asks for an address and DNS servers.
    Client(Credentials),
}

/// Configuration of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    pub role: Role,
    /// LCP policy; for the LNS its `auth_require` lists the methods allowed, preferred
    /// first (also what proxy authentication may use).
    pub lcp: LcpPolicy,
    /// Restart timer and counters of every automaton (RFC 1661 §4.6).
    pub fsm: fsm::Config,
    /// Our name in CHAP Challenges.
    pub chap_name: Vec<u8>,
    /// LCP echo keepalive; `None` disables it.
    pub keepalive: Option<Keepalive>,
    /// LNS: our IPCP address (the subscriber's gateway).
    pub gateway: Ipv4Addr,
    /// LNS: primary and secondary DNS servers (RFC 1877).
    pub dns: [Option<Ipv4Addr>; 2],
    /// LNS: the pool to allocate from when the user has neither a fixed address nor a pool
    /// of its own.
    pub default_pool: Option<String>,
    /// Run IPv6CP besides IPCP.
    pub ipv6cp: bool,
    /// LNS: what to do with a LAC's proxy AVPs.
    pub proxy: ProxyMode,
    /// Session-Timeout, counted from Up.
    pub session_timeout: Option<Duration>,
    /// Idle-Timeout, counted from Up and from the last [`PppSession::note_activity`].
    pub idle_timeout: Option<Duration>,
}

impl SessionConfig {
    /// An LNS requiring one of `auth` (preferred first), with the given gateway and DNS.
    pub fn lns(auth: Vec<AuthProtocol>, gateway: Ipv4Addr, dns: [Option<Ipv4Addr>; 2]) -> Self {
        SessionConfig {
            role: Role::Lns,
            lcp: LcpPolicy::authenticator(auth),
            fsm: fsm::Config::default(),
            chap_name: b"xlns".to_vec(),
            keepalive: Some(Keepalive::default()),
            gateway,
            dns,
            default_pool: None,
            ipv6cp: false,
            proxy: ProxyMode::default(),
            session_timeout: None,
            idle_timeout: None,
        }
    }

    /// A client accepting every method we implement.
    pub fn client(credentials: Credentials) -> Self {
        SessionConfig {
            role: Role::Client(credentials),
            lcp: LcpPolicy::peer(LcpPolicy::all_auth()),
            ..SessionConfig::lns(Vec::new(), Ipv4Addr::UNSPECIFIED, [None; 2])
        }
    }
}

/// An address handed to the session; returned in [`SessionEvent::Down`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The subscriber's address.
    pub address: Ipv4Addr,
    /// The pool it came from; `None` for a fixed address outside every pool.
    pub pool: Option<String>,
}

impl Lease {
    /// Allocates what `request` asks for: its fixed address (reserved in the pool that
    /// holds it, if any), else an address of its pool. Neither: [`PoolError::UnknownPool`]
    /// with an empty name (no pool configured).
    pub fn allocate(pools: &mut Pools, request: &AddressRequest) -> Result<Lease, PoolError> {
        if let Some(address) = request.fixed {
            let pool = pools.pool_of(address).map(str::to_owned);
            if let Some(name) = &pool {
                pools.allocate_specific(name, address)?;
            }
            return Ok(Lease { address, pool });
        }
        let name = request
            .pool
            .as_deref()
            .ok_or_else(|| PoolError::UnknownPool(String::new()))?;
        let address = pools.allocate(name)?;
        Ok(Lease {
            address,
            pool: Some(name.to_owned()),
        })
    }

    /// Gives the address back to its pool (nothing to do for an address outside pools).
    pub fn release(self, pools: &mut Pools) -> Result<(), PoolError> {
        match &self.pool {
            Some(name) => pools.release(name, self.address),
            None => Ok(()),
        }
    }
}

/// What the LNS needs an address for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressRequest {
    /// The authenticated user (empty without authentication).
    pub user: Vec<u8>,
    /// The user's fixed address (users file, RADIUS Framed-IP-Address).
    pub fixed: Option<Ipv4Addr>,
    /// The pool: the user's (Framed-Pool), else [`SessionConfig::default_pool`].
    pub pool: Option<String>,
}

/// What the data plane and the accounting need once the session is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUp {
    /// LNS: the authenticated user; client: our own name. Empty without authentication.
    pub user: Vec<u8>,
    /// The subscriber's IPv4 address (LNS: the one assigned; client: ours).
    pub address: Ipv4Addr,
    /// The LNS's IPv4 address (LNS: ours; client: the server's, unspecified if none).
    pub gateway: Ipv4Addr,
    /// DNS servers handed out (LNS) or received (client).
    pub dns: [Option<Ipv4Addr>; 2],
    /// What LCP agreed: `peer_mru` is the largest packet we may send (the data plane's
    /// MTU towards the subscriber); `tx_acfc` / `tx_pfc` say whether we may compress.
    pub lcp: Negotiated,
    /// The IPv6CP interface identifiers, if IPv6CP opened first.
    pub ipv6: Option<Ipv6cpNegotiated>,
}

/// Why a session went down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    /// The peer sent an LCP Terminate-Request.
    LcpTerminated,
    /// Authentication failed (rejected, timed out, or the peer refused to authenticate).
    AuthFailed,
    /// `max_failures` LCP Echo-Requests went unanswered.
    EchoTimeout,
    /// A negotiation was given up by policy.
    NegotiationFailed(NegotiationFailure),
    /// No address (exhausted pool: CDN result 4; see [`PoolError::cdn_result`]).
    AddressUnavailable(PoolError),
    /// [`PppSession::close`] by the operator.
    Admin,
    /// The L2TP session went away ([`PppSession::lower_down`]).
    LowerDown,
    /// The session timeout expired.
    SessionTimeout,
    /// The idle timeout expired.
    IdleTimeout,
    /// LCP got no answer: Max-Configure or Max-Terminate exhausted (RFC 1661 §4.6).
    LcpTimeout,
    /// The NAS-initiated call cannot be continued under the LAC's policy.
    ProxyRefused(ProxyRefusal),
    /// IPCP failed or was closed (timeout, Protocol-Reject, the peer's Terminate-Request).
    NcpDown { protocol: u16 },
}

impl DownReason {
    /// A short label for logs, metrics and the management API (`reason=`).
    pub fn label(&self) -> &'static str {
        match self {
            DownReason::LcpTerminated => "lcp-terminated",
            DownReason::AuthFailed => "ppp-auth-failed",
            DownReason::EchoTimeout => "lcp-echo-timeout",
            DownReason::NegotiationFailed(_) => "ppp-negotiation-failed",
            DownReason::AddressUnavailable(_) => "address-unavailable",
            DownReason::Admin => "admin",
            DownReason::LowerDown => "lower-down",
            DownReason::SessionTimeout => "session-timeout",
            DownReason::IdleTimeout => "idle-timeout",
            DownReason::LcpTimeout => "lcp-timeout",
            DownReason::ProxyRefused(_) => "proxy-refused",
            DownReason::NcpDown { .. } => "ncp-down",
        }
    }

    /// Text of our LCP Terminate-Request (RFC 1661 §5.5 Data).
    fn terminate_text(&self) -> &'static str {
        match self {
            DownReason::AuthFailed => "Authentication failed",
            DownReason::AddressUnavailable(_) => "No address available",
            DownReason::Admin => "Administratively closed",
            DownReason::SessionTimeout => "Session timeout",
            DownReason::IdleTimeout => "Idle timeout",
            DownReason::NegotiationFailed(f) => f.reason(),
            DownReason::ProxyRefused(r) => r.reason(),
            DownReason::NcpDown { .. } => "No network protocols running",
            DownReason::LcpTerminated
            | DownReason::EchoTimeout
            | DownReason::LowerDown
            | DownReason::LcpTimeout => "",
        }
    }
}

/// What the session tells its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// LNS: verify this; answer with [`PppSession::handle_verify_result`].
    NeedVerify(VerifyRequest),
    /// LNS: an address for the authenticated user; answer with
    /// [`PppSession::handle_address`].
    NeedAddress(AddressRequest),
    /// IPCP opened.
    Up(SessionUp),
    /// IPv6CP opened after `Up`.
    Ipv6Up(Ipv6cpNegotiated),
    /// The session is given up (exactly once); release `lease` (see the module
    /// documentation), drain the transmit queue, clear the L2TP session.
    Down {
        reason: DownReason,
        lease: Option<Lease>,
    },
}

/// Counters of one session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionCounters {
    /// Control packets that failed to parse.
    pub malformed: u64,
    /// Frames silently discarded (wrong phase, data frames, after Down).
    pub discarded: u64,
    /// Frames answered with an LCP Protocol-Reject.
    pub protocol_rejected: u64,
}

/// The authentication machine of the phase.
#[derive(Debug)]
enum AuthSide {
    None,
    Authenticator(Authenticator),
    Peer(Peer),
}

/// How the session goes down.
enum Teardown {
    /// Send an LCP Terminate-Request with the reason's text.
    Terminate,
    /// LCP is already terminating or finished (the peer's Terminate-Request, a policy
    /// failure, Max-Configure).
    AsIs,
    /// The link is gone: LCP down, nothing more is sent.
    LowerDown,
}

/// One subscriber's PPP; see the module documentation.
#[derive(Debug)]
pub struct PppSession {
    config: SessionConfig,
    rng: StdRng,
    phase: Phase,
    lcp: LcpLink,
    auth: AuthSide,
    /// The proxied authentication to run when LCP comes up the first time.
    proxied_auth: Option<ProxiedAuth>,
    /// LNS: waiting for [`PppSession::handle_address`].
    awaiting_address: bool,
    /// The authenticated user (LNS) or our own name (client).
    user: Vec<u8>,
    lease: Option<Lease>,
    ipcp: Option<Fsm<Ipcp>>,
    ipv6cp: Option<Fsm<Ipv6cp>>,
    ipcp_up: bool,
    ipv6: Option<Ipv6cpNegotiated>,
    down: bool,
    up_at: Option<Instant>,
    last_activity: Option<Instant>,
    session_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    transmit: VecDeque<(u16, Vec<u8>)>,
    events: VecDeque<SessionEvent>,
    counters: SessionCounters,
}

impl PppSession {
    /// A session in the Dead phase; randomness (Magic-Numbers, CHAP challenges, interface
    /// identifiers) from the operating system's CSPRNG.
    pub fn new(config: SessionConfig) -> PppSession {
        Self::with_rng(config, StdRng::from_os_rng())
    }

    /// A session with a deterministic RNG (tests, simulations).
    pub fn with_seed(config: SessionConfig, seed: u64) -> PppSession {
        Self::with_rng(config, StdRng::seed_from_u64(seed))
    }

    fn with_rng(config: SessionConfig, mut rng: StdRng) -> PppSession {
        let lcp = Lcp::new(config.lcp.clone(), StdRng::from_rng(&mut rng));
        let lcp = LcpLink::new(lcp, config.fsm, config.keepalive);
        let user = match &config.role {
            Role::Client(c) => c.user.clone(),
            Role::Lns => Vec::new(),
        };
        PppSession {
            session_timeout: config.session_timeout,
            idle_timeout: config.idle_timeout,
            config,
            rng,
            phase: Phase::Dead,
            lcp,
            auth: AuthSide::None,
            proxied_auth: None,
            awaiting_address: false,
            user,
            lease: None,
            ipcp: None,
            ipv6cp: None,
            ipcp_up: false,
            ipv6: None,
            down: false,
            up_at: None,
            last_activity: None,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            counters: SessionCounters::default(),
        }
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Counters.
    pub fn counters(&self) -> SessionCounters {
        self.counters
    }

    /// The LCP link (state, negotiated values, echo counters).
    pub fn lcp(&self) -> &LcpLink {
        &self.lcp
    }

    /// Whether `Down` was reported and LCP has nothing left to do.
    pub fn is_finished(&self) -> bool {
        self.down && self.lcp.poll_timeout().is_none() && self.transmit.is_empty()
    }

    /// Starts the session (the L2TP session is established). `proxy`: the ICCN's proxy
    /// AVPs of a NAS-initiated call (LNS only; ignored by a client), handled as
    /// [`proxy::decide`] says under [`SessionConfig::proxy`]. A second call does nothing.
    pub fn start(&mut self, now: Instant, proxy: Option<&ProxyInfo>) {
        if self.phase != Phase::Dead || self.down {
            return;
        }
        self.phase = Phase::Establish;
        let decision = match (&self.config.role, proxy) {
            (Role::Lns, Some(info)) => proxy::decide(&self.config.proxy, info, &self.config.lcp),
            _ => Decision::Negotiate,
        };
        match decision {
            Decision::Negotiate => {
                self.lcp.up(now);
                self.lcp.open(now);
            }
            Decision::Proxied { lcp, auth } => {
                tracing::debug!(?auth, "continuing the LAC's LCP (RFC 2661 §4.4.5)");
                self.proxied_auth = Some(auth);
                self.lcp.start_opened(lcp, now);
            }
            Decision::Refuse(refusal) => {
                tracing::info!(reason = refusal.reason(), "NAS-initiated call refused");
                self.finish(DownReason::ProxyRefused(refusal), Teardown::AsIs, now);
                self.phase = Phase::Dead;
            }
        }
        self.pump(now);
    }

    /// A received PPP frame: `protocol` and the information field.
    pub fn handle_frame(&mut self, protocol: u16, payload: &[u8], now: Instant) {
        match protocol {
            PROTOCOL_LCP if self.phase != Phase::Dead => {
                if self.lcp.handle_packet(payload, now).is_err() {
                    self.counters.malformed += 1;
                }
            }
            auth::PROTOCOL_PAP | auth::PROTOCOL_CHAP if !self.down => {
                let result = match &mut self.auth {
                    AuthSide::Authenticator(a) if a.method().protocol() == protocol => {
                        Some(a.handle_packet(payload, now))
                    }
                    AuthSide::Peer(p) if p.method().protocol() == protocol => {
                        Some(p.handle_packet(payload, now))
                    }
                    _ => None,
                };
                match result {
                    Some(Ok(())) => {}
                    Some(Err(_)) => self.counters.malformed += 1,
                    None => self.counters.discarded += 1,
                }
            }
            PROTOCOL_IPCP if self.in_network() => {
                if let Some(ipcp) = &mut self.ipcp {
                    if ipcp.handle_packet(payload, now).is_err() {
                        self.counters.malformed += 1;
                    }
                }
            }
            PROTOCOL_IPV6CP if self.in_network() && self.config.ipv6cp => {
                if let Some(ipv6cp) = &mut self.ipv6cp {
                    if ipv6cp.handle_packet(payload, now).is_err() {
                        self.counters.malformed += 1;
                    }
                }
            }
            PROTOCOL_LCP | auth::PROTOCOL_PAP | auth::PROTOCOL_CHAP | PROTOCOL_IPCP => {
                self.counters.discarded += 1;
            }
            PROTOCOL_IPV4 | PROTOCOL_IPV6 => self.counters.discarded += 1,
            // RFC 1661 §5.7: a protocol we do not run (CCP, IPv6CP when disabled, ...) is
            // rejected; like pppd, only once the Network phase is reached (§3.2, §3.5:
            // before it, non-LCP packets are discarded).
            _ if self.in_network() => {
                if self.lcp.protocol_reject(protocol, payload) {
                    self.counters.protocol_rejected += 1;
                } else {
                    self.counters.discarded += 1;
                }
            }
            _ => self.counters.discarded += 1,
        }
        self.pump(now);
    }

    /// Fires every timer that is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.lcp.handle_timeout(now);
        match &mut self.auth {
            AuthSide::Authenticator(a) => a.handle_timeout(now),
            AuthSide::Peer(p) => p.handle_timeout(now),
            AuthSide::None => {}
        }
        if let Some(ipcp) = &mut self.ipcp {
            ipcp.handle_timeout(now);
        }
        if let Some(ipv6cp) = &mut self.ipv6cp {
            ipv6cp.handle_timeout(now);
        }
        self.pump(now);
        if !self.down {
            if self.session_deadline().is_some_and(|d| d <= now) {
                self.finish(DownReason::SessionTimeout, Teardown::Terminate, now);
            } else if self.idle_deadline().is_some_and(|d| d <= now) {
                self.finish(DownReason::IdleTimeout, Teardown::Terminate, now);
            }
            self.pump(now);
        }
    }

    /// The answer to [`SessionEvent::NeedVerify`]; a stale answer is ignored.
    pub fn handle_verify_result(&mut self, id: u64, result: AuthResult, now: Instant) {
        if let AuthSide::Authenticator(a) = &mut self.auth {
            a.handle_verify_result(id, result, now);
        }
        self.pump(now);
    }

    /// Answers `request` with a synchronous verifier (the local users table).
    pub fn answer_from<V: Verifier + ?Sized>(
        &mut self,
        verifier: &V,
        request: &VerifyRequest,
        now: Instant,
    ) {
        self.handle_verify_result(request.id, verifier.verify(request), now);
    }

    /// The answer to [`SessionEvent::NeedAddress`]: a lease, or why there is none (the
    /// session goes down with [`DownReason::AddressUnavailable`]). Returns the lease if
    /// the session did not take it (it is no longer waiting for one): release it.
    #[must_use = "a returned lease must be released"]
    pub fn handle_address(
        &mut self,
        answer: Result<Lease, PoolError>,
        now: Instant,
    ) -> Option<Lease> {
        if !self.awaiting_address || self.down {
            return answer.ok();
        }
        self.awaiting_address = false;
        match answer {
            Ok(lease) => {
                self.lease = Some(lease);
                if self.phase == Phase::Authenticate {
                    self.enter_network(now);
                }
            }
            Err(error) => {
                tracing::info!(%error, "no address for the session");
                self.finish(
                    DownReason::AddressUnavailable(error),
                    Teardown::Terminate,
                    now,
                );
            }
        }
        self.pump(now);
        None
    }

    /// Answers `request` from local pools, releasing what the session did not take.
    pub fn assign_from(&mut self, pools: &mut Pools, request: &AddressRequest, now: Instant) {
        let answer = Lease::allocate(pools, request);
        if let Some(back) = self.handle_address(answer, now) {
            if let Err(error) = back.release(pools) {
                tracing::warn!(%error, "releasing an unused lease");
            }
        }
    }

    /// Administrative close (operator, RADIUS Disconnect, a CDN we are about to send):
    /// LCP Terminate-Request with the reason's text, then `Down { reason }`.
    pub fn close(&mut self, now: Instant, reason: DownReason) {
        if self.phase == Phase::Dead && !self.down {
            // Never started: nothing to terminate.
            self.finish(reason, Teardown::AsIs, now);
            return;
        }
        self.finish(reason, Teardown::Terminate, now);
        self.pump(now);
    }

    /// The L2TP session is gone: `Down { LowerDown }` at once, nothing more is sent.
    pub fn lower_down(&mut self, now: Instant) {
        self.finish(DownReason::LowerDown, Teardown::LowerDown, now);
        self.pump(now);
        self.transmit.clear();
        self.phase = Phase::Dead;
    }

    /// Traffic was seen (data-plane counters moved): restarts the idle timeout.
    pub fn note_activity(&mut self, now: Instant) {
        self.last_activity = Some(now);
    }

    /// Sets or clears the session timeout (counted from Up).
    pub fn set_session_timeout(&mut self, timeout: Option<Duration>) {
        self.session_timeout = timeout;
    }

    /// Sets the DNS servers IPCP offers (RADIUS reply attributes arrive after the session
    /// was created; IPCP starts after authentication).
    pub fn set_dns(&mut self, dns: [Option<Ipv4Addr>; 2]) {
        self.config.dns = dns;
    }

    /// Sets or clears the idle timeout.
    pub fn set_idle_timeout(&mut self, timeout: Option<Duration>) {
        self.idle_timeout = timeout;
    }

    /// The next frame to send: PPP protocol and information field.
    pub fn poll_transmit(&mut self) -> Option<(u16, Vec<u8>)> {
        self.transmit.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// When [`PppSession::handle_timeout`] is due next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let auth = match &self.auth {
            AuthSide::Authenticator(a) => a.poll_timeout(),
            AuthSide::Peer(p) => p.poll_timeout(),
            AuthSide::None => None,
        };
        [
            self.lcp.poll_timeout(),
            auth,
            self.ipcp.as_ref().and_then(Fsm::poll_timeout),
            self.ipv6cp.as_ref().and_then(Fsm::poll_timeout),
            self.session_deadline(),
            self.idle_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn in_network(&self) -> bool {
        self.phase == Phase::Network && !self.down
    }

    fn session_deadline(&self) -> Option<Instant> {
        if self.down {
            return None;
        }
        Some(self.up_at? + self.session_timeout?)
    }

    fn idle_deadline(&self) -> Option<Instant> {
        if self.down {
            return None;
        }
        let since = match (self.up_at?, self.last_activity) {
            (up, Some(seen)) => up.max(seen),
            (up, None) => up,
        };
        Some(since + self.idle_timeout?)
    }

    fn child_rng(&mut self) -> StdRng {
        StdRng::from_rng(&mut self.rng)
    }

    /// Moves every sub-machine's output into the session's queues and acts on their events,
    /// until nothing more happens. Each machine's packets are taken before its events are
    /// handled, so a reply (a CHAP Failure) precedes what the event causes (a
    /// Terminate-Request).
    fn pump(&mut self, now: Instant) {
        loop {
            let mut progress = false;
            while let Some(packet) = self.lcp.poll_transmit() {
                self.transmit.push_back((PROTOCOL_LCP, packet));
            }
            while let Some(event) = self.lcp.poll_event() {
                progress = true;
                self.on_link_event(event, now);
            }
            progress |= self.pump_auth(now);
            progress |= self.pump_ipcp(now);
            progress |= self.pump_ipv6cp(now);
            if !progress {
                break;
            }
        }
    }

    fn pump_auth(&mut self, now: Instant) -> bool {
        let mut events = Vec::new();
        match &mut self.auth {
            AuthSide::Authenticator(a) => {
                let protocol = a.method().protocol();
                while let Some(packet) = a.poll_transmit() {
                    self.transmit.push_back((protocol, packet));
                }
                while let Some(event) = a.poll_event() {
                    events.push(event);
                }
            }
            AuthSide::Peer(p) => {
                let protocol = p.method().protocol();
                while let Some(packet) = p.poll_transmit() {
                    self.transmit.push_back((protocol, packet));
                }
                while let Some(event) = p.poll_event() {
                    events.push(event);
                }
            }
            AuthSide::None => {}
        }
        let progress = !events.is_empty();
        for event in events {
            self.on_auth_event(event, now);
        }
        progress
    }

    fn pump_ipcp(&mut self, now: Instant) -> bool {
        let Some(ipcp) = &mut self.ipcp else {
            return false;
        };
        let failure = close_on_failure(ipcp, now);
        let mut events = Vec::new();
        while let Some(packet) = ipcp.poll_transmit() {
            self.transmit.push_back((PROTOCOL_IPCP, packet));
        }
        while let Some(event) = ipcp.poll_event() {
            events.push(event);
        }
        let progress = failure.is_some() || !events.is_empty();
        if let Some(failure) = failure {
            self.finish(
                DownReason::NegotiationFailed(failure),
                Teardown::Terminate,
                now,
            );
            return true;
        }
        for event in events {
            self.on_ipcp_event(event, now);
        }
        progress
    }

    fn pump_ipv6cp(&mut self, now: Instant) -> bool {
        let Some(ipv6cp) = &mut self.ipv6cp else {
            return false;
        };
        // IPv6 is optional: a failed IPv6CP closes (its policy sent the reason) and the
        // session goes on with IPv4.
        let failure = close_on_failure(ipv6cp, now);
        let mut events = Vec::new();
        while let Some(packet) = ipv6cp.poll_transmit() {
            self.transmit.push_back((PROTOCOL_IPV6CP, packet));
        }
        while let Some(event) = ipv6cp.poll_event() {
            events.push(event);
        }
        let progress = failure.is_some() || !events.is_empty();
        for event in events {
            if event == LayerEvent::Up {
                let negotiated = *ipv6cp.protocol().negotiated();
                self.ipv6 = Some(negotiated);
                if self.ipcp_up && !self.down {
                    self.events.push_back(SessionEvent::Ipv6Up(negotiated));
                }
            }
        }
        progress
    }

    fn on_link_event(&mut self, event: LinkEvent, now: Instant) {
        if self.down {
            if event == LinkEvent::Finished {
                self.phase = Phase::Dead;
            }
            return;
        }
        match event {
            LinkEvent::Up(negotiated) => self.authenticate(&negotiated, now),
            LinkEvent::Down => {
                if self.lcp.state() == State::Stopping {
                    // RTR in Opened: the peer's Terminate-Request, already acknowledged.
                    self.finish(DownReason::LcpTerminated, Teardown::AsIs, now);
                } else {
                    // The peer renegotiates LCP (a Configure-Request in Opened, as after a
                    // lost Configure-Ack): back to Establish; authentication and the NCPs
                    // run again once LCP is up (RFC 1661 §3.3 "Opened ... renegotiation").
                    tracing::debug!("LCP renegotiation");
                    self.phase = Phase::Establish;
                    self.auth = AuthSide::None;
                    self.ipcp = None;
                    self.ipv6cp = None;
                    self.ipcp_up = false;
                    self.ipv6 = None;
                }
            }
            LinkEvent::Finished => self.finish(DownReason::LcpTimeout, Teardown::AsIs, now),
            LinkEvent::LinkDead => self.finish(DownReason::EchoTimeout, Teardown::LowerDown, now),
            LinkEvent::Failed(failure) => {
                self.finish(DownReason::NegotiationFailed(failure), Teardown::AsIs, now)
            }
            LinkEvent::ProtocolRejected { protocol } => match protocol {
                PROTOCOL_IPCP => {
                    if let Some(ipcp) = &mut self.ipcp {
                        ipcp.protocol_rejected(now);
                    }
                }
                PROTOCOL_IPV6CP => {
                    if let Some(ipv6cp) = &mut self.ipv6cp {
                        ipv6cp.protocol_rejected(now);
                    }
                }
                auth::PROTOCOL_PAP | auth::PROTOCOL_CHAP => {
                    self.finish(DownReason::AuthFailed, Teardown::Terminate, now);
                }
                _ => {}
            },
            LinkEvent::Started | LinkEvent::CodeRejected { .. } => {}
        }
    }

    /// LCP is up: the Authentication phase (RFC 1661 §3.5).
    fn authenticate(&mut self, negotiated: &Negotiated, now: Instant) {
        self.phase = Phase::Authenticate;
        match self.config.role.clone() {
            Role::Lns => {
                let plan = match self.proxied_auth.take() {
                    Some(plan) => plan,
                    None => match method_of(negotiated.peer_auth.as_ref()) {
                        Ok(Some(method)) => ProxiedAuth::Run(method),
                        Ok(None) => ProxiedAuth::None,
                        // Only if our policy asked for a protocol we do not run.
                        Err(()) => {
                            self.finish(DownReason::AuthFailed, Teardown::Terminate, now);
                            return;
                        }
                    },
                };
                match plan {
                    ProxiedAuth::None => self.authenticated(Vec::new(), None, None, now),
                    ProxiedAuth::Run(method) => {
                        let mut a = self.authenticator(method);
                        a.start(now);
                        self.auth = AuthSide::Authenticator(a);
                    }
                    ProxiedAuth::Verify {
                        method,
                        identifier,
                        challenge,
                        name,
                        response,
                    } => self.verify_proxied(method, identifier, &challenge, name, response, now),
                }
            }
            Role::Client(credentials) => match method_of(negotiated.our_auth.as_ref()) {
                Ok(None) => self.authenticated(credentials.user, None, None, now),
                Ok(Some(method)) => {
                    let mut p = self.peer(method, &credentials);
                    p.start(now);
                    self.auth = AuthSide::Peer(p);
                }
                Err(()) => self.finish(DownReason::AuthFailed, Teardown::Terminate, now),
            },
        }
    }

    fn authenticator(&mut self, method: Method) -> Authenticator {
        match method {
            Method::Pap => Authenticator::Pap(Box::new(PapAuthenticator::new(
                PapAuthenticatorConfig::default(),
            ))),
            Method::ChapMd5 | Method::MsChapV2 => {
                let chap_method = if method == Method::ChapMd5 {
                    ChapMethod::Md5
                } else {
                    ChapMethod::MsChapV2
                };
                let config = ChapAuthenticatorConfig::new(chap_method, &self.config.chap_name);
                Authenticator::Chap(Box::new(ChapAuthenticator::with_rng(
                    config,
                    self.child_rng(),
                )))
            }
        }
    }

    fn peer(&mut self, method: Method, credentials: &Credentials) -> Peer {
        match method {
            Method::Pap => Peer::Pap(PapPeer::new(PapPeerConfig::new(
                &credentials.user,
                credentials.password.as_bytes(),
            ))),
            Method::ChapMd5 | Method::MsChapV2 => {
                let chap_method = if method == Method::ChapMd5 {
                    ChapMethod::Md5
                } else {
                    ChapMethod::MsChapV2
                };
                let config =
                    ChapPeerConfig::new(chap_method, &credentials.user, &credentials.password);
                Peer::Chap(Box::new(ChapPeer::with_rng(config, self.child_rng())))
            }
        }
    }

    /// Proxy authentication: the authenticator is put in the state the LAC left it in
    /// (Challenge sent, or waiting for the Authenticate-Request) and given the peer's
    /// captured answer as if it had just arrived. Its verification request, reply to the
    /// peer (with the LAC's Identifier, which the peer waits for), retransmission of that
    /// reply for a repeated Response, and failure all follow the ordinary path.
    fn verify_proxied(
        &mut self,
        method: Method,
        identifier: u8,
        challenge: &[u8],
        name: Vec<u8>,
        response: Vec<u8>,
        now: Instant,
    ) {
        let mut a = self.authenticator(method);
        let injected = match &mut a {
            Authenticator::Pap(p) => {
                p.start(now);
                pap::Repr::AuthenticateRequest {
                    identifier,
                    peer_id: name,
                    password: response,
                }
                .to_bytes()
            }
            Authenticator::Chap(c) => {
                if c.start_with_challenge(now, identifier, challenge).is_err() {
                    self.finish(
                        DownReason::ProxyRefused(ProxyRefusal::BadAuthenAvp(
                            "Proxy Authen Challenge",
                        )),
                        Teardown::Terminate,
                        now,
                    );
                    return;
                }
                // The LAC sent that Challenge already.
                while c.poll_transmit().is_some() {}
                chap::Repr::Response {
                    identifier,
                    value: response,
                    name,
                }
                .to_bytes()
            }
        };
        if a.handle_packet(&injected, now).is_err() {
            self.finish(
                DownReason::ProxyRefused(ProxyRefusal::BadAuthenAvp("Proxy Authen Response")),
                Teardown::Terminate,
                now,
            );
            return;
        }
        self.auth = AuthSide::Authenticator(a);
    }

    fn on_auth_event(&mut self, event: auth::Event, now: Instant) {
        if self.down {
            return;
        }
        match event {
            auth::Event::NeedVerify(request) => {
                self.events.push_back(SessionEvent::NeedVerify(request));
            }
            auth::Event::Success { user, attributes } => {
                let ReplyAttributes { address, pool, .. } = attributes;
                self.authenticated(user, address, pool, now);
            }
            auth::Event::Reauthenticated { .. } => {}
            auth::Event::Failure { reason } => {
                tracing::info!(?reason, "authentication failed");
                self.finish(DownReason::AuthFailed, Teardown::Terminate, now);
            }
        }
    }

    /// Authentication done (or none): the LNS gets an address, the client goes on.
    fn authenticated(
        &mut self,
        user: Vec<u8>,
        fixed: Option<Ipv4Addr>,
        pool: Option<String>,
        now: Instant,
    ) {
        match self.config.role {
            Role::Client(_) => {
                self.user = user;
                self.enter_network(now);
            }
            Role::Lns => {
                if self.lease.is_some() {
                    // Authenticated again after an LCP renegotiation: the address stays,
                    // for the same user only.
                    if user == self.user {
                        self.enter_network(now);
                    } else {
                        tracing::warn!("user changed across an LCP renegotiation");
                        self.finish(DownReason::AuthFailed, Teardown::Terminate, now);
                    }
                    return;
                }
                self.user = user.clone();
                if !self.awaiting_address {
                    self.awaiting_address = true;
                    self.events
                        .push_back(SessionEvent::NeedAddress(AddressRequest {
                            user,
                            fixed,
                            pool: pool.or_else(|| self.config.default_pool.clone()),
                        }));
                }
            }
        }
    }

    /// The Network-Layer phase (RFC 1661 §3.6): IPCP, and IPv6CP when enabled.
    fn enter_network(&mut self, now: Instant) {
        self.phase = Phase::Network;
        let role = match (&self.config.role, &self.lease) {
            (Role::Client(_), _) => Ipcp::client(IpcpClient::dynamic()),
            (Role::Lns, Some(lease)) => Ipcp::server(IpcpServer {
                local: self.config.gateway,
                peer: lease.address,
                dns: self.config.dns,
                nbns: [None; 2],
            }),
            (Role::Lns, None) => return,
        };
        let mut ipcp = Fsm::new(role, self.config.fsm);
        ipcp.up(now);
        ipcp.open(now);
        self.ipcp = Some(ipcp);
        if self.config.ipv6cp {
            let mut ipv6cp = Fsm::new(Ipv6cp::new(None, self.child_rng()), self.config.fsm);
            ipv6cp.up(now);
            ipv6cp.open(now);
            self.ipv6cp = Some(ipv6cp);
        }
    }

    fn on_ipcp_event(&mut self, event: LayerEvent, now: Instant) {
        if self.down {
            return;
        }
        match event {
            LayerEvent::Up => {
                let Some(ipcp) = &self.ipcp else {
                    return;
                };
                let n = *ipcp.protocol().negotiated();
                let (address, gateway) = match self.config.role {
                    Role::Lns => (n.peer, n.local),
                    Role::Client(_) => (n.local, n.peer),
                };
                let lcp = self.lcp.negotiated().cloned().unwrap_or_default();
                self.ipcp_up = true;
                if self.up_at.is_none() {
                    self.up_at = Some(now);
                }
                self.events.push_back(SessionEvent::Up(SessionUp {
                    user: self.user.clone(),
                    address,
                    gateway,
                    dns: n.dns,
                    lcp,
                    ipv6: self.ipv6,
                }));
            }
            LayerEvent::Down | LayerEvent::Finished => {
                let renegotiating = self
                    .ipcp
                    .as_ref()
                    .is_some_and(|f| matches!(f.state(), State::ReqSent | State::AckSent));
                if event == LayerEvent::Down && renegotiating {
                    // The peer renegotiates IPCP (our Configure-Ack was lost): Up follows.
                    self.ipcp_up = false;
                } else {
                    self.finish(
                        DownReason::NcpDown {
                            protocol: PROTOCOL_IPCP,
                        },
                        Teardown::Terminate,
                        now,
                    );
                }
            }
            LayerEvent::Started
            | LayerEvent::CodeRejected { .. }
            | LayerEvent::ProtocolRejected { .. }
            | LayerEvent::EchoReply { .. } => {}
        }
    }

    /// Gives the session up: reports `Down` (once) with the lease, stops authentication and
    /// the NCPs, and terminates LCP as `teardown` says.
    fn finish(&mut self, reason: DownReason, teardown: Teardown, now: Instant) {
        if self.down {
            return;
        }
        self.down = true;
        self.awaiting_address = false;
        // The last packets of authentication (a Failure, a Nak) go out before LCP's.
        self.pump_auth_transmit();
        self.auth = AuthSide::None;
        self.ipcp = None;
        self.ipv6cp = None;
        self.phase = Phase::Terminate;
        match teardown {
            Teardown::Terminate => self.lcp.close(now, reason.terminate_text().as_bytes()),
            Teardown::AsIs => {}
            Teardown::LowerDown => self.lcp.down(now),
        }
        if matches!(
            self.lcp.state(),
            State::Initial | State::Starting | State::Closed | State::Stopped
        ) {
            self.phase = Phase::Dead;
        }
        tracing::info!(reason = reason.label(), "PPP session down");
        let lease = self.lease.take();
        self.events.push_back(SessionEvent::Down { reason, lease });
    }

    fn pump_auth_transmit(&mut self) {
        match &mut self.auth {
            AuthSide::Authenticator(a) => {
                let protocol = a.method().protocol();
                while let Some(packet) = a.poll_transmit() {
                    self.transmit.push_back((protocol, packet));
                }
            }
            AuthSide::Peer(p) => {
                let protocol = p.method().protocol();
                while let Some(packet) = p.poll_transmit() {
                    self.transmit.push_back((protocol, packet));
                }
            }
            AuthSide::None => {}
        }
    }
}

/// The method of an LCP Authentication-Protocol value; `Err` for one we do not run.
fn method_of(protocol: Option<&AuthProtocol>) -> Result<Option<Method>, ()> {
    match protocol {
        None => Ok(None),
        Some(AuthProtocol::Pap) => Ok(Some(Method::Pap)),
        Some(AuthProtocol::Chap(ChapAlgorithm::Md5)) => Ok(Some(Method::ChapMd5)),
        Some(AuthProtocol::Chap(ChapAlgorithm::MsChapV2)) => Ok(Some(Method::MsChapV2)),
        Some(_) => Err(()),
    }
}

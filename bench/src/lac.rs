//! The LAC emulator: an LAC-role [`Endpoint`] driven over real UDP sockets, opening N
//! tunnels x M sessions toward an LNS and measuring how fast they come up (RFC 2661 §5.1,
//! §7.2.1, §7.4.1), with a PPP subscriber in every session when [`LacConfig::ppp`] is set
//! ([`crate::subscriber`]).
//!
//! # Contract
//!
//! * [`LacDriver::bind`] opens [`LacConfig::sockets`] non-blocking UDP sockets (one local
//!   source port each), each with its own LAC-role [`Endpoint`]; tunnel `i` lives on
//!   socket `i % sockets`. The sockets live in the network namespace of the thread that
//!   calls `bind`.
//! * [`LacDriver::establish`] opens every tunnel (SCCRQ) and, once a tunnel is up, its
//!   sessions (ICRQ), at most [`LacConfig::rate`] opens per second (tunnels and sessions
//!   alike, a burst of at most [`RATE_BURST`] after a stall) and at most
//!   [`LacConfig::outstanding`] setups in flight (a tunnel between SCCRQ and TunnelUp, a
//!   session between ICRQ and SessionUp). It returns when every setup ended (up or failed)
//!   and the LNS acknowledged everything sent (the last ICCNs: the LAC reports SessionUp
//!   when it sends the ICCN, §7.4.1), or when [`LacConfig::setup_timeout`] passed.
//! * [`LacDriver::teardown`] closes everything: [`Teardown::CdnThenStopCcn`] sends a CDN
//!   (result 3, administrative) for every session, waits until all are acknowledged, then
//!   a StopCCN (result 1, general clear) for every tunnel; [`Teardown::StopCcnOnly`] sends
//!   only the StopCCNs (RFC 2661 §5.7: the peer clears the sessions itself). It returns
//!   once every tunnel is down and every StopCCN acknowledged, or after
//!   [`LacConfig::teardown_timeout`].
//! * [`LacDriver::pump`] runs the loop with no local requests, for a caller that waits on
//!   the peer (a StopCCN from the LNS, say).
//! * The loop is the sans-IO one: wait on every socket (`ppoll`) until the earliest of the
//!   endpoints' [`Endpoint::poll_timeout`] and the next allowed open; feed each datagram to
//!   [`Endpoint::handle_datagram`], expired timers to [`Endpoint::handle_timeout`]; then
//!   drain [`Endpoint::poll_transmit`] (sent with `send_to`; a failed send counts and is
//!   left to the transport's retransmission) and [`Endpoint::poll_event`].
//! * Latencies: SCCRQ queued -> `TunnelUp`, ICRQ queued -> `SessionUp`, in microseconds
//!   in an HDR histogram (3 significant digits). [`LacDriver::report`] summarises them with
//!   counts, rates and down reasons as a serde-serialisable [`Report`].
//! * The LAC side admits whatever the LNS asks (an OCRQ, an SCCRQ): [`PermissiveGate`].
//!
//! # With PPP ([`LacConfig::ppp`])
//!
//! * Each session gets a [`Subscriber`] when the LAC sends its ICCN (client-initiated; it
//!   starts LCP with the LNS's first frame), or before its ICRQ (NAS-initiated: LCP and
//!   the credentials at the LAC, the ICCN carries the proxy AVPs). Its frames travel as
//!   L2TP data messages ([`Endpoint::encapsulate`]; received ones come out of
//!   [`Endpoint::handle_datagram`]); its timers sit in one heap, checked lazily.
//! * A session is up, and its setup over, when IPCP opens; a subscriber that goes down
//!   (authentication refused, LCP terminated) gets its call cleared with a CDN (result 3).
//!   Latency per phase: ICCN -> LCP opened, -> authenticated, -> IPCP opened, and ICRQ ->
//!   IPCP opened; sessions up per second since the start ([`Report::setup_timeline`]).
//! * [`LacDriver::hold`] keeps the sessions (the subscribers answer the LNS's LCP echoes,
//!   RFC 1661 §5.8) and churns them if asked; [`LacDriver::teardown`] lets every subscriber
//!   hang up (LCP Terminate-Request) before the CDNs and StopCCNs.
//! * [`LacDriver::established`] exports the sessions that are up as the traffic
//!   generator's [`SessionList`].

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::io::{self, IsTerminal};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use xlns_controlplane::l2tp::endpoint::{
    Endpoint, EndpointConfig, Event, Gatekeeper, Role, SessionDecision, SessionDownReason,
    SessionKey, TunnelDecision, TunnelDownReason, TunnelId, TunnelParams, TunnelRequest,
};
use xlns_controlplane::l2tp::result::{CdnResult, StopCcnResult};
use xlns_controlplane::l2tp::session::OutgoingCall;
use xlns_controlplane::l2tp::transport;

use crate::subscriber::{AuthMethod, Change, PppConfig, Subscriber};
use crate::traffic::{SessionList, TrafficSession};

/// Opens allowed at once after the loop fell behind the configured rate.
pub const RATE_BURST: u32 = 8;
/// Datagrams read from one socket per wake-up before the others get their turn.
const RECV_BATCH: usize = 64;
/// Socket buffer size asked for (send and receive).
const SOCKET_BUFFER: libc::c_int = 4 << 20;
/// Largest UDP payload read.
const MAX_DATAGRAM: usize = 65_535;
/// Longest single wait, so that a caller's deadline is never overslept by much.
const MAX_WAIT: Duration = Duration::from_millis(100);
/// How long the subscribers get to hang up (LCP terminate) before the CDNs go out.
const PPP_HANGUP: Duration = Duration::from_secs(5);
/// Interval of the progress line.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Churn pacing.
#[derive(Debug, Clone, Copy)]
struct Churn {
    interval: Duration,
    next: Instant,
}

/// How [`LacDriver::teardown`] closes things.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Teardown {
    /// CDN for every session, then StopCCN for every tunnel.
    CdnThenStopCcn,
    /// StopCCN for every tunnel only.
    StopCcnOnly,
}

/// What to open and how fast.
#[derive(Debug, Clone)]
pub struct LacConfig {
    /// The LNS's control address.
    pub lns: SocketAddr,
    /// Tunnels to open.
    pub tunnels: usize,
    /// Sessions to open in each tunnel.
    pub sessions_per_tunnel: usize,
    /// UDP sockets (local source ports), at least 1.
    pub sockets: usize,
    /// Local address to bind; `None`: loopback when the LNS is on loopback, else the
    /// unspecified address of the LNS's family.
    pub bind: Option<IpAddr>,
    /// Further local addresses (issue #6: "N tunnels x M sessions from one or many
    /// source addresses"): with `n` addresses in all (`bind` first), socket `k` binds
    /// address `k % n`, port `bind_port + k / n` (or an ephemeral port).
    pub more_binds: Vec<IpAddr>,
    /// Opens (SCCRQ or ICRQ) started per second at most; `None`: as fast as `outstanding`
    /// allows.
    pub rate: Option<f64>,
    /// Setups in flight at most, at least 1.
    pub outstanding: usize,
    /// How long [`LacDriver::establish`] may take.
    pub setup_timeout: Duration,
    /// How long [`LacDriver::teardown`] may take.
    pub teardown_timeout: Duration,
    /// Our Host Name AVP.
    pub host_name: String,
    /// Our HELLO interval (RFC 2661 §6.5).
    pub hello_interval: Duration,
    /// Our Receive Window Size AVP.
    pub receive_window: u16,
    /// Retransmission parameters (RFC 2661 §5.8).
    pub transport: transport::Config,
    /// Seed of the endpoints' ids and random vectors (socket `k` gets `seed + k`).
    pub seed: u64,
    /// Local UDP port of socket 0 (socket `k` binds `bind_port + k`, or
    /// `bind_port + k / n` with `n` addresses, see [`LacConfig::more_binds`]); 0:
    /// ephemeral.
    pub bind_port: u16,
    /// Run a PPP client in every session (see the module documentation); `None`: L2TP
    /// only, a session counts as up at the ICCN.
    pub ppp: Option<PppConfig>,
    /// A live progress line on stderr (only when stderr is a terminal).
    pub progress: bool,
    /// Open one tunnel at a time (the next SCCRQ once the last tunnel is up or failed).
    /// l2tpns 2.4.1 takes a second SCCRQ from the same address and port, sent while the
    /// first tunnel is still opening, for a message of that tunnel ("out of sequence")
    /// and drops it: without this, every concurrent tunnel costs a retransmission.
    pub serial_tunnels: bool,
}

impl LacConfig {
    /// `tunnels` x `sessions_per_tunnel` toward `lns`, one socket, no rate limit, 64
    /// setups in flight, 60 s to set up and 30 s to tear down.
    pub fn new(lns: SocketAddr, tunnels: usize, sessions_per_tunnel: usize) -> LacConfig {
        LacConfig {
            lns,
            tunnels,
            sessions_per_tunnel,
            sockets: 1,
            bind: None,
            more_binds: Vec::new(),
            rate: None,
            outstanding: 64,
            setup_timeout: Duration::from_secs(60),
            teardown_timeout: Duration::from_secs(30),
            host_name: "xlns-bench-lac".to_owned(),
            hello_interval: Duration::from_secs(60),
            receive_window: 64,
            transport: transport::Config::default(),
            seed: 1,
            bind_port: 0,
            ppp: None,
            progress: false,
            serial_tunnels: false,
        }
    }

    fn bind_addr(&self) -> IpAddr {
        self.bind.unwrap_or(match self.lns.ip() {
            IpAddr::V4(a) if a.is_loopback() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(a) if a.is_loopback() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        })
    }

    /// The local address and port of socket `k`.
    fn socket_addr(&self, k: usize) -> io::Result<SocketAddr> {
        let addrs = 1 + self.more_binds.len();
        let ip = match k % addrs {
            0 => self.bind_addr(),
            i => self.more_binds[i - 1],
        };
        let port = match self.bind_port {
            0 => 0,
            p => u16::try_from(k / addrs)
                .ok()
                .and_then(|step| p.checked_add(step))
                .ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidInput, "bind_port + sockets > 65535")
                })?,
        };
        Ok(SocketAddr::new(ip, port))
    }

    fn endpoint_config(&self) -> EndpointConfig {
        let transport = transport::Config {
            rws_local: self.receive_window,
            ..self.transport.clone()
        };
        EndpointConfig {
            role: Role::Lac,
            host_name: self.host_name.as_bytes().to_vec(),
            vendor_name: b"xlns-bench".to_vec(),
            receive_window: self.receive_window,
            hello_interval: self.hello_interval,
            stopccn_wait: transport.retransmission_cycle(),
            transport,
            setup_timeout: self.setup_timeout,
            max_tunnels: self.tunnels.div_ceil(self.sockets.max(1)) + 16,
        }
    }

    fn tunnel_params(&self) -> TunnelParams {
        TunnelParams {
            secret: None,
            hide_avps: false,
            hello_interval: self.hello_interval,
            receive_window: self.receive_window,
            max_sessions: u16::MAX,
        }
    }
}

/// The LAC's gatekeeper: accepts every tunnel and call the LNS offers.
#[derive(Debug, Default)]
pub struct PermissiveGate {
    /// Tunnels and sessions the LNS opened toward us (SCCRQ, OCRQ).
    pub admitted: usize,
}

impl Gatekeeper for PermissiveGate {
    fn admit_tunnel(&mut self, _: Instant, _: &TunnelRequest<'_>) -> TunnelDecision {
        self.admitted += 1;
        TunnelDecision::Accept(TunnelParams {
            secret: None,
            hide_avps: false,
            hello_interval: Duration::from_secs(60),
            receive_window: 64,
            max_sessions: u16::MAX,
        })
    }
    fn admit_session(&mut self, _: Instant, _: SessionKey, _: usize) -> SessionDecision {
        self.admitted += 1;
        SessionDecision::Accept
    }
    fn tunnel_closed(&mut self, _: TunnelId) {}
    fn session_closed(&mut self, _: SessionKey) {}
}

/// One socket and the endpoint behind it.
#[derive(Debug)]
struct Link {
    socket: UdpSocket,
    endpoint: Endpoint,
    gate: PermissiveGate,
}

/// Where a tunnel is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelState {
    /// Not opened yet.
    Pending,
    /// SCCRQ sent, waiting for TunnelUp.
    Opening,
    Up,
    Down(TunnelDownReason),
}

#[derive(Debug)]
struct TunnelSlot {
    link: usize,
    id: Option<TunnelId>,
    opened_at: Option<Instant>,
    state: TunnelState,
    sessions_up: usize,
}

#[derive(Debug)]
struct SessionSlot {
    opened_at: Instant,
    /// The tunnel's index and the session's number (1-based, its credentials' `%n`).
    tunnel: usize,
    seat: u64,
    /// The LAC sent the ICCN (L2TP SessionUp).
    l2tp_up: Option<Instant>,
    /// Fully up: L2TP, and PPP's IPCP when PPP runs.
    up: bool,
    /// The setup was accounted for (up or failed): no longer in flight.
    settled: bool,
    /// We sent the CDN.
    cdn_sent: bool,
    sub: Option<Box<Subscriber>>,
    /// The deadline queued in the timer heap for this subscriber.
    timer: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Establish,
    /// Sessions are kept up (keepalives answered), churned if asked.
    Hold,
    Teardown,
}

/// Latency percentiles of one setup phase, in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Latency {
    pub count: u64,
    pub min_us: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            count: h.len(),
            min_us: h.min(),
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
            mean_us: h.mean(),
        }
    }
}

/// What the teardown did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TeardownReport {
    pub mode: Teardown,
    /// From the first CDN / StopCCN until every tunnel was down and acknowledged.
    pub secs: f64,
    /// Whether everything was down and acknowledged before the timeout.
    pub complete: bool,
}

/// The outcome of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub lns: String,
    pub sockets: usize,
    pub tunnels_requested: usize,
    pub sessions_requested: usize,
    pub tunnels_up: usize,
    pub sessions_up: usize,
    /// Tunnels that went down before they came up.
    pub tunnel_failures: usize,
    /// Sessions that went down before they came up, or could not be opened.
    pub session_failures: usize,
    /// Start of `establish` until the last TunnelUp / SessionUp.
    pub setup_secs: f64,
    /// Start of `establish` until the LNS acknowledged everything (the last ICCN or
    /// SCCCN; includes the LNS's acknowledgement delay when nothing else is sent).
    pub acked_secs: f64,
    /// Tunnels up / (last TunnelUp - first SCCRQ).
    pub tunnels_per_sec: f64,
    /// Sessions up / (last SessionUp - first ICRQ).
    pub sessions_per_sec: f64,
    /// (Tunnels + sessions up) / `setup_secs`: the LAC's view (it counts a session up
    /// when it sends the ICCN, before the LNS processed it).
    pub setups_per_sec: f64,
    /// (Tunnels + sessions up) / `acked_secs`: the LNS-confirmed rate (a lower bound; it
    /// includes the LNS's final acknowledgement delay).
    pub acked_setups_per_sec: f64,
    /// SCCRQ queued -> TunnelUp.
    pub tunnel_setup: Latency,
    /// ICRQ queued -> SessionUp.
    pub session_setup: Latency,
    pub teardown: Option<TeardownReport>,
    /// Why tunnels went down, by reason ("local-close-1", "peer-stopccn-6", ...).
    pub tunnel_down_reasons: BTreeMap<String, usize>,
    /// Why sessions went down, by reason.
    pub session_down_reasons: BTreeMap<String, usize>,
    pub datagrams_sent: u64,
    pub datagrams_received: u64,
    /// `send_to` failures (left to retransmission).
    pub send_errors: u64,
    /// Control messages the endpoints retransmitted during the setup phase.
    pub setup_retransmissions: u64,
    /// The PPP part, when the subscribers ran PPP.
    pub ppp: Option<PppReport>,
    /// Sessions fully up in each second since the start of the setup: the setup rate
    /// over time.
    pub setup_timeline: Vec<u32>,
    /// Sessions closed and reopened by churn.
    pub churned: u64,
}

/// The PPP figures of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PppReport {
    pub auth: AuthMethod,
    /// NAS-initiated (proxy LCP and proxy authentication AVPs).
    pub proxy: bool,
    /// ICCN sent -> LCP opened (client-initiated only: with proxy LCP it ran at the LAC).
    pub lcp: Latency,
    /// LCP opened (or the ICCN, with proxy) -> authentication succeeded.
    pub authentication: Latency,
    /// Authentication -> IPCP opened.
    pub ipcp: Latency,
    /// ICRQ -> IPCP opened.
    pub total: Latency,
    /// Why PPP went down, by reason (`ppp-auth-failed`, `admin`, ...).
    pub down_reasons: BTreeMap<String, usize>,
    /// LCP Echo-Requests of the LNS the subscribers answered.
    pub echo_requests_answered: u64,
    /// Times the LNS took a subscriber's LCP back to Establish (renegotiation; with proxy
    /// LCP accepted, none).
    pub lcp_renegotiations: u64,
}

/// A short name of a tunnel's down reason, for counting.
pub fn tunnel_reason_name(reason: &TunnelDownReason) -> String {
    match reason {
        TunnelDownReason::PeerStopCcn { result, .. } => format!("peer-stopccn-{result}"),
        TunnelDownReason::LocalClose { result } => format!("local-close-{result}"),
        TunnelDownReason::PeerDead => "peer-dead".to_owned(),
        TunnelDownReason::HelloTimeout => "hello-timeout".to_owned(),
        TunnelDownReason::SetupTimeout => "setup-timeout".to_owned(),
        TunnelDownReason::AuthFailed => "auth-failed".to_owned(),
        TunnelDownReason::ProtocolError { result, error, .. } => {
            format!("protocol-error-{result}-{error}")
        }
        TunnelDownReason::LostTieBreaker => "lost-tie-breaker".to_owned(),
    }
}

/// A short name of a session's down reason, for counting.
pub fn session_reason_name(reason: &SessionDownReason) -> String {
    match reason {
        SessionDownReason::PeerCdn { result, .. } => format!("peer-cdn-{result}"),
        SessionDownReason::LocalClose { result } => format!("local-close-{result}"),
        SessionDownReason::TunnelDown => "tunnel-down".to_owned(),
        SessionDownReason::SetupTimeout => "setup-timeout".to_owned(),
        SessionDownReason::ProtocolError { result, error, .. } => {
            format!("protocol-error-{result}-{error}")
        }
    }
}

/// The driver: sockets, endpoints and the bookkeeping of every tunnel and session.
#[derive(Debug)]
pub struct LacDriver {
    config: LacConfig,
    links: Vec<Link>,
    tunnels: Vec<TunnelSlot>,
    by_id: HashMap<(usize, TunnelId), usize>,
    sessions: HashMap<(usize, SessionKey), SessionSlot>,
    pending_tunnels: VecDeque<usize>,
    /// One entry per session still to open: tunnel index and session number.
    pending_sessions: VecDeque<(usize, u64)>,
    /// Subscriber deadlines (lazily invalidated: checked against the slot's `timer`).
    timers: BinaryHeap<Reverse<(Instant, usize, SessionKey)>>,
    /// Sessions with PPP input or output to look at.
    dirty: Vec<(usize, SessionKey)>,
    /// Fully up sessions, oldest first (churn closes from the front; stale entries are
    /// skipped).
    up_order: VecDeque<(usize, SessionKey)>,
    churn: Option<Churn>,
    lcp_hist: Histogram<u64>,
    auth_hist: Histogram<u64>,
    ipcp_hist: Histogram<u64>,
    total_hist: Histogram<u64>,
    /// Sessions fully up in each second since the start of `establish`.
    timeline: Vec<u32>,
    ppp_down_reasons: BTreeMap<String, usize>,
    echo_requests: u64,
    lcp_renegotiations: u64,
    churned: u64,
    progress_at: Instant,
    in_flight: usize,
    next_open: Instant,
    phase: Phase,
    buf: Vec<u8>,
    tunnel_hist: Histogram<u64>,
    session_hist: Histogram<u64>,
    tunnels_up: usize,
    sessions_up: usize,
    tunnel_failures: usize,
    session_failures: usize,
    setup_start: Option<Instant>,
    setup_end: Option<Instant>,
    first_tunnel_open: Option<Instant>,
    last_tunnel_up: Option<Instant>,
    first_session_open: Option<Instant>,
    last_session_up: Option<Instant>,
    teardown: Option<TeardownReport>,
    tunnel_down_reasons: BTreeMap<String, usize>,
    session_down_reasons: BTreeMap<String, usize>,
    datagrams_sent: u64,
    datagrams_received: u64,
    send_errors: u64,
    setup_retransmissions: u64,
}

fn histogram() -> Histogram<u64> {
    // 1 us .. 1 h at 3 significant digits: valid constant bounds never fail.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

fn rate(count: usize, from: Option<Instant>, to: Option<Instant>) -> f64 {
    match (from, to) {
        (Some(from), Some(to)) if to > from => count as f64 / (to - from).as_secs_f64(),
        _ => 0.0,
    }
}

/// Asks for `SOCKET_BUFFER` bytes of send and receive buffer: the `FORCE` variants
/// (root) first, beyond `net.core.{r,w}mem_max`, else the plain ones.
fn grow_buffers(socket: &UdpSocket) {
    let fd = socket.as_raw_fd();
    let size = SOCKET_BUFFER;
    for (force, plain) in [
        (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
        (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
    ] {
        for opt in [force, plain] {
            // SAFETY: a valid socket fd and a c_int option value of the right size.
            let rc = unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    opt,
                    (&raw const size).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if rc == 0 {
                break;
            }
        }
    }
}

impl LacDriver {
    /// Binds the sockets; nothing is sent yet.
    pub fn bind(config: LacConfig) -> io::Result<LacDriver> {
        let sockets = config.sockets.max(1);
        let mut links = Vec::with_capacity(sockets);
        for k in 0..sockets {
            let socket = UdpSocket::bind(config.socket_addr(k)?)?;
            socket.set_nonblocking(true)?;
            grow_buffers(&socket);
            links.push(Link {
                socket,
                endpoint: Endpoint::new(
                    config.endpoint_config(),
                    config.seed.wrapping_add(k as u64),
                ),
                gate: PermissiveGate::default(),
            });
        }
        let tunnels = (0..config.tunnels)
            .map(|i| TunnelSlot {
                link: i % sockets,
                id: None,
                opened_at: None,
                state: TunnelState::Pending,
                sessions_up: 0,
            })
            .collect();
        Ok(LacDriver {
            pending_tunnels: (0..config.tunnels).collect(),
            config,
            links,
            tunnels,
            by_id: HashMap::new(),
            sessions: HashMap::new(),
            pending_sessions: VecDeque::new(),
            timers: BinaryHeap::new(),
            dirty: Vec::new(),
            up_order: VecDeque::new(),
            churn: None,
            lcp_hist: histogram(),
            auth_hist: histogram(),
            ipcp_hist: histogram(),
            total_hist: histogram(),
            timeline: Vec::new(),
            ppp_down_reasons: BTreeMap::new(),
            echo_requests: 0,
            lcp_renegotiations: 0,
            churned: 0,
            progress_at: Instant::now(),
            in_flight: 0,
            next_open: Instant::now(),
            phase: Phase::Idle,
            buf: vec![0u8; MAX_DATAGRAM],
            tunnel_hist: histogram(),
            session_hist: histogram(),
            tunnels_up: 0,
            sessions_up: 0,
            tunnel_failures: 0,
            session_failures: 0,
            setup_start: None,
            setup_end: None,
            first_tunnel_open: None,
            last_tunnel_up: None,
            first_session_open: None,
            last_session_up: None,
            teardown: None,
            tunnel_down_reasons: BTreeMap::new(),
            session_down_reasons: BTreeMap::new(),
            datagrams_sent: 0,
            datagrams_received: 0,
            send_errors: 0,
            setup_retransmissions: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LacConfig {
        &self.config
    }

    /// Turns the progress line on or off (another progress line may own the terminal).
    pub fn set_progress(&mut self, on: bool) {
        self.config.progress = on;
    }

    /// The local addresses of the sockets.
    pub fn local_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        self.links.iter().map(|l| l.socket.local_addr()).collect()
    }

    /// Tunnels up now.
    pub fn tunnels_up(&self) -> usize {
        self.tunnels
            .iter()
            .filter(|t| t.state == TunnelState::Up)
            .count()
    }

    /// Sessions up now.
    pub fn sessions_up(&self) -> usize {
        self.sessions.values().filter(|s| s.up).count()
    }

    /// Every tunnel's state, in open order.
    pub fn tunnel_states(&self) -> impl Iterator<Item = &TunnelState> {
        self.tunnels.iter().map(|t| &t.state)
    }

    /// Whether every tunnel that was opened is down.
    pub fn all_tunnels_down(&self) -> bool {
        self.tunnels
            .iter()
            .all(|t| matches!(t.state, TunnelState::Down(_) | TunnelState::Pending))
    }

    /// Whether every endpoint has nothing unacknowledged.
    pub fn all_acked(&self) -> bool {
        self.links.iter().all(|l| l.endpoint.all_acked())
    }

    /// Opens every tunnel and session (see the module documentation). Returns whether
    /// every setup ended (successfully or not) before the timeout.
    pub fn establish(&mut self) -> io::Result<bool> {
        let start = Instant::now();
        self.setup_start = Some(start);
        self.next_open = start;
        self.phase = Phase::Establish;
        let deadline = start + self.config.setup_timeout;
        let done = self.pump_until(deadline, |d| {
            d.in_flight == 0
                && d.pending_tunnels.is_empty()
                && d.pending_sessions.is_empty()
                && d.all_acked()
        })?;
        self.setup_end = Some(Instant::now());
        self.end_progress();
        self.phase = Phase::Idle;
        // Every tunnel opened is still held (freed only after a StopCCN's wait).
        self.setup_retransmissions = self
            .links
            .iter()
            .flat_map(|l| {
                l.endpoint
                    .tunnel_ids()
                    .into_iter()
                    .filter_map(|id| l.endpoint.tunnel_info(id))
            })
            .map(|t| t.transport.retransmissions)
            .sum();
        Ok(done)
    }

    /// Closes every tunnel and session (see the module documentation). Returns whether
    /// everything was down and acknowledged before the timeout.
    pub fn teardown(&mut self, mode: Teardown) -> io::Result<bool> {
        let start = Instant::now();
        let deadline = start + self.config.teardown_timeout;
        self.phase = Phase::Teardown;
        self.pending_tunnels.clear();
        self.pending_sessions.clear();
        self.churn = None;
        let mut complete = true;
        if mode == Teardown::CdnThenStopCcn && self.config.ppp.is_some() {
            // The subscribers hang up first (LCP Terminate-Request, RFC 1661 §3.7); each
            // one's CDN follows its Down. Whoever has not finished in PPP_HANGUP gets the
            // plain CDN below.
            let keys: Vec<(usize, SessionKey)> = self.sessions.keys().copied().collect();
            for (link, key) in keys {
                if let Some(sub) = self
                    .sessions
                    .get_mut(&(link, key))
                    .and_then(|s| s.sub.as_mut())
                    && sub.down.is_none()
                {
                    sub.close(start);
                    self.dirty.push((link, key));
                }
            }
            self.service_dirty(start);
            let hangup = deadline.min(start + PPP_HANGUP);
            self.pump_until(hangup, |d| {
                d.sessions
                    .values()
                    .all(|s| s.sub.as_ref().is_none_or(|sub| sub.down.is_some()))
            })?;
        }
        if mode == Teardown::CdnThenStopCcn {
            let now = Instant::now();
            let mut keys: Vec<(usize, SessionKey)> = self
                .sessions
                .iter()
                .filter(|(_, s)| !s.cdn_sent)
                .map(|(k, _)| *k)
                .collect();
            keys.sort_unstable();
            for (link, key) in keys {
                if let Some(s) = self.sessions.get_mut(&(link, key)) {
                    s.cdn_sent = true;
                }
                self.links[link].endpoint.close_session(
                    now,
                    key,
                    CdnResult::Administrative.code(),
                    None,
                );
            }
            complete = self.pump_until(deadline, |d| d.sessions.is_empty() && d.all_acked())?;
        }
        let now = Instant::now();
        for t in &self.tunnels {
            if let (Some(id), TunnelState::Opening | TunnelState::Up) = (t.id, &t.state) {
                self.links[t.link].endpoint.close_tunnel(
                    now,
                    id,
                    StopCcnResult::GeneralClear.code(),
                );
            }
        }
        complete &= self.pump_until(deadline, |d| d.all_tunnels_down() && d.all_acked())?;
        self.phase = Phase::Idle;
        self.teardown = Some(TeardownReport {
            mode,
            secs: start.elapsed().as_secs_f64(),
            complete,
        });
        Ok(complete)
    }

    /// Runs the loop without local requests until `done` holds or `deadline` passes;
    /// returns whether `done` held.
    pub fn pump(
        &mut self,
        deadline: Instant,
        done: impl FnMut(&LacDriver) -> bool,
    ) -> io::Result<bool> {
        self.pump_until(deadline, done)
    }

    fn pump_until(
        &mut self,
        deadline: Instant,
        mut done: impl FnMut(&LacDriver) -> bool,
    ) -> io::Result<bool> {
        loop {
            let now = Instant::now();
            self.churn_due(now);
            self.start_opens(now);
            self.flush();
            self.show_progress(now);
            if done(self) {
                return Ok(true);
            }
            if now >= deadline {
                return Ok(false);
            }
            let mut wake = deadline.min(now + MAX_WAIT);
            for link in &self.links {
                if let Some(at) = link.endpoint.poll_timeout() {
                    wake = wake.min(at);
                }
            }
            if let Some(Reverse((at, _, _))) = self.timers.peek() {
                wake = wake.min(*at);
            }
            if let Some(churn) = &self.churn {
                wake = wake.min(churn.next);
            }
            if self.can_open() {
                wake = wake.min(self.next_open);
            }
            self.wait_and_receive(wake)?;
            let now = Instant::now();
            for link in &mut self.links {
                if link.endpoint.poll_timeout().is_some_and(|at| at <= now) {
                    link.endpoint.handle_timeout(now, &mut link.gate);
                }
            }
            self.fire_subscriber_timers(now);
        }
    }

    /// Runs every subscriber timer that is due.
    fn fire_subscriber_timers(&mut self, now: Instant) {
        while let Some(Reverse((at, link, key))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(slot) = self.sessions.get_mut(&(link, key)) else {
                continue;
            };
            if slot.timer != Some(at) {
                continue;
            }
            slot.timer = None;
            if let Some(sub) = slot.sub.as_mut() {
                sub.handle_timeout(now);
                self.dirty.push((link, key));
            }
        }
        self.service_dirty(now);
    }

    /// Services every session with PPP input: sends its frames, books its changes,
    /// queues its next deadline.
    fn service_dirty(&mut self, now: Instant) {
        while let Some((link, key)) = self.dirty.pop() {
            self.service(link, key, now);
        }
    }

    fn service(&mut self, l: usize, key: SessionKey, now: Instant) {
        let Some(slot) = self.sessions.get_mut(&(l, key)) else {
            return;
        };
        let Some(sub) = slot.sub.as_mut() else {
            return;
        };
        let changes = sub.observe(now);
        let link = &mut self.links[l];
        while let Some((protocol, packet)) = sub.poll_transmit() {
            if let Some(tx) = link.endpoint.encapsulate_ppp(key, protocol, &packet) {
                match link.socket.send_to(&tx.payload, tx.peer) {
                    Ok(_) => self.datagrams_sent += 1,
                    Err(_) => self.send_errors += 1,
                }
            }
        }
        let timing = sub.timing;
        let deadline = sub.poll_timeout();
        if deadline != slot.timer {
            slot.timer = deadline;
            if let Some(at) = deadline {
                self.timers.push(Reverse((at, l, key)));
            }
        }
        for change in changes {
            match change {
                Change::Up(_) => {
                    if slot.settled {
                        continue;
                    }
                    slot.settled = true;
                    slot.up = true;
                    self.in_flight -= 1;
                    self.sessions_up += 1;
                    self.last_session_up = Some(now);
                    self.up_order.push_back((l, key));
                    if let Some(start) = self.setup_start {
                        let second = (now - start).as_secs() as usize;
                        if self.timeline.len() <= second {
                            self.timeline.resize(second + 1, 0);
                        }
                        self.timeline[second] += 1;
                    }
                    let _ = self.total_hist.record(micros(now - slot.opened_at));
                    // Client-initiated: LCP from the ICCN; proxy: LCP ran at the LAC
                    // before the ICRQ, and authentication is timed from the ICCN.
                    let lcp_from = slot.l2tp_up.unwrap_or(slot.opened_at);
                    if let Some(lcp) = timing.lcp_up
                        && lcp >= lcp_from
                    {
                        let _ = self.lcp_hist.record(micros(lcp - lcp_from));
                    }
                    let auth_from = timing.lcp_up.map_or(lcp_from, |t| t.max(lcp_from));
                    if let Some(auth) = timing.auth_done {
                        let _ = self
                            .auth_hist
                            .record(micros(auth.saturating_duration_since(auth_from)));
                        if let Some(ipcp) = timing.ipcp_up {
                            let _ = self
                                .ipcp_hist
                                .record(micros(ipcp.saturating_duration_since(auth)));
                        }
                    }
                    if let Some(&index) = self.by_id.get(&(l, key.tunnel)) {
                        self.tunnels[index].sessions_up += 1;
                    }
                }
                Change::Down(reason) => {
                    if !slot.settled {
                        slot.settled = true;
                        self.in_flight -= 1;
                        self.session_failures += 1;
                    }
                    slot.up = false;
                    *self
                        .ppp_down_reasons
                        .entry(reason.label().to_owned())
                        .or_default() += 1;
                    // The subscriber is gone: the LAC clears the call (RFC 2661 §5.7).
                    if !slot.cdn_sent {
                        slot.cdn_sent = true;
                        link.endpoint.close_session(
                            now,
                            key,
                            CdnResult::Administrative.code(),
                            None,
                        );
                    }
                }
            }
        }
    }

    /// Churn: closes the oldest session and opens a new one in its tunnel, at the
    /// configured rate, while holding.
    fn churn_due(&mut self, now: Instant) {
        let Some(churn) = self.churn.as_mut() else {
            return;
        };
        if self.phase != Phase::Hold || churn.next > now {
            return;
        }
        let floor = now.checked_sub(churn.interval * RATE_BURST).unwrap_or(now);
        churn.next = churn.next.max(floor) + churn.interval;
        while let Some((l, key)) = self.up_order.pop_front() {
            let Some(slot) = self.sessions.get_mut(&(l, key)) else {
                continue;
            };
            if !slot.up {
                continue;
            }
            self.churned += 1;
            self.pending_sessions.push_back((slot.tunnel, slot.seat));
            slot.up = false;
            match slot.sub.as_mut() {
                Some(sub) => {
                    sub.close(now);
                    self.dirty.push((l, key));
                }
                None => {
                    slot.cdn_sent = true;
                    self.links[l].endpoint.close_session(
                        now,
                        key,
                        CdnResult::Administrative.code(),
                        None,
                    );
                }
            }
            break;
        }
        self.service_dirty(now);
    }

    /// Keeps every session up (keepalives answered) until `until` or until `stop` is
    /// set; with `churn` (sessions per second) closes the oldest session and opens a new
    /// one in its tunnel (same session number) at that rate, and at the end waits (at
    /// most [`LacConfig::setup_timeout`]) until the reopened ones are up.
    pub fn hold(
        &mut self,
        until: Instant,
        stop: &AtomicBool,
        churn: Option<f64>,
    ) -> io::Result<()> {
        self.phase = Phase::Hold;
        self.churn = churn.filter(|r| r.is_finite() && *r > 0.0).map(|r| Churn {
            interval: Duration::from_secs_f64(1.0 / r),
            next: Instant::now(),
        });
        // Relaxed: a flag polled by this loop, nothing else published through it.
        self.pump_until(until, |_| stop.load(Ordering::Relaxed))?;
        // Churned sessions still opening come up before the hold ends.
        self.churn = None;
        let settle = Instant::now() + self.config.setup_timeout;
        self.pump_until(settle, |d| {
            d.in_flight == 0 && d.pending_sessions.is_empty()
        })?;
        self.end_progress();
        self.phase = Phase::Idle;
        Ok(())
    }

    fn show_progress(&mut self, now: Instant) {
        if !self.config.progress || now < self.progress_at || !io::stderr().is_terminal() {
            return;
        }
        self.progress_at = now + PROGRESS_EVERY;
        let elapsed = self.setup_start.map_or(0.0, |s| (now - s).as_secs_f64());
        let phase = match self.phase {
            Phase::Establish => "setup",
            Phase::Hold => "holding",
            Phase::Teardown => "teardown",
            Phase::Idle => "idle",
        };
        let requested = self.config.tunnels * self.config.sessions_per_tunnel;
        eprint!(
            "\r\x1b[K{phase:<8} {elapsed:>6.1} s  tunnels {}/{}  sessions {}/{} up, {} in flight, \
             {} failed, {:.0}/s  echoes answered {}  churned {}",
            self.tunnels_up(),
            self.config.tunnels,
            self.sessions_up(),
            requested,
            self.in_flight,
            self.session_failures,
            per_sec(self.sessions_up as f64, elapsed),
            self.echo_requests + self.live_echoes(),
            self.churned,
        );
    }

    fn end_progress(&mut self) {
        if self.config.progress && io::stderr().is_terminal() {
            self.progress_at = Instant::now();
            self.show_progress(Instant::now());
            eprintln!();
        }
    }

    fn live_echoes(&self) -> u64 {
        self.sessions
            .values()
            .filter_map(|s| s.sub.as_ref())
            .map(|s| s.echo_requests)
            .sum()
    }

    fn can_open(&self) -> bool {
        matches!(self.phase, Phase::Establish | Phase::Hold)
            && self.in_flight < self.config.outstanding.max(1)
            && !(self.pending_sessions.is_empty() && self.pending_tunnels.is_empty())
    }

    /// Starts as many opens as the rate and the in-flight bound allow; sessions of tunnels
    /// already up go before new tunnels.
    fn start_opens(&mut self, now: Instant) {
        let interval = self
            .config
            .rate
            .filter(|r| r.is_finite() && *r > 0.0)
            .map(|r| Duration::from_secs_f64(1.0 / r));
        while self.can_open() {
            if interval.is_some() && self.next_open > now {
                break;
            }
            if let Some((t, seat)) = self.pending_sessions.pop_front() {
                self.open_session(now, t, seat);
            } else if self.config.serial_tunnels
                && self.tunnels.iter().any(|t| t.state == TunnelState::Opening)
            {
                break;
            } else if let Some(t) = self.pending_tunnels.pop_front() {
                self.open_tunnel(now, t);
            }
            if let Some(interval) = interval {
                let floor = now.checked_sub(interval * RATE_BURST).unwrap_or(now);
                self.next_open = self.next_open.max(floor) + interval;
            }
        }
    }

    fn open_tunnel(&mut self, now: Instant, index: usize) {
        let slot = &mut self.tunnels[index];
        let link = &mut self.links[slot.link];
        match link
            .endpoint
            .open_tunnel(now, self.config.lns, self.config.tunnel_params())
        {
            Ok(id) => {
                slot.id = Some(id);
                slot.opened_at = Some(now);
                slot.state = TunnelState::Opening;
                self.by_id.insert((slot.link, id), index);
                self.in_flight += 1;
                self.first_tunnel_open.get_or_insert(now);
            }
            Err(e) => {
                self.tunnel_failures += 1;
                self.session_failures += self.config.sessions_per_tunnel;
                *self
                    .tunnel_down_reasons
                    .entry(format!("open-failed: {e}"))
                    .or_default() += 1;
                slot.state = TunnelState::Down(TunnelDownReason::LocalClose { result: 0 });
            }
        }
    }

    fn open_session(&mut self, now: Instant, index: usize, seat: u64) {
        let slot = &self.tunnels[index];
        let (Some(id), TunnelState::Up) = (slot.id, &slot.state) else {
            self.session_failures += 1;
            return;
        };
        let mut call = OutgoingCall {
            calling_number: Some(format!("lac-{seat}").into_bytes()),
            ..OutgoingCall::default()
        };
        // NAS-initiated: the subscriber negotiated LCP and authenticated at the LAC
        // before the call is placed (RFC 2661 §4.4.5).
        let mut sub = None;
        if let Some(ppp) = self.config.ppp.as_ref().filter(|p| p.proxy) {
            let mut s = Box::new(Subscriber::new(ppp, seat, self.config.seed ^ seat));
            match s.negotiate_at_lac(ppp, self.config.seed.wrapping_add(seat << 1), now) {
                Ok(avps) => call.extra_avps = avps,
                Err(e) => {
                    self.session_failures += 1;
                    *self.session_down_reasons.entry(e.to_string()).or_default() += 1;
                    return;
                }
            }
            sub = Some(s);
        }
        match self.links[slot.link].endpoint.open_session(now, id, call) {
            Ok(key) => {
                self.sessions.insert(
                    (slot.link, key),
                    SessionSlot {
                        opened_at: now,
                        tunnel: index,
                        seat,
                        l2tp_up: None,
                        up: false,
                        settled: false,
                        cdn_sent: false,
                        sub,
                        timer: None,
                    },
                );
                self.in_flight += 1;
                self.first_session_open.get_or_insert(now);
            }
            Err(e) => {
                self.session_failures += 1;
                *self
                    .session_down_reasons
                    .entry(format!("open-failed: {e}"))
                    .or_default() += 1;
            }
        }
    }

    /// Sends everything the endpoints want sent, then books their events.
    fn flush(&mut self) {
        let now = Instant::now();
        for l in 0..self.links.len() {
            let link = &mut self.links[l];
            while let Some(tx) = link.endpoint.poll_transmit(now) {
                match link.socket.send_to(&tx.payload, tx.peer) {
                    Ok(_) => self.datagrams_sent += 1,
                    Err(_) => self.send_errors += 1,
                }
            }
            while let Some(event) = self.links[l].endpoint.poll_event() {
                self.event(l, event);
            }
        }
        if !self.dirty.is_empty() {
            self.service_dirty(now);
            // CDNs queued by subscribers that went down.
            for link in &mut self.links {
                while let Some(tx) = link.endpoint.poll_transmit(now) {
                    match link.socket.send_to(&tx.payload, tx.peer) {
                        Ok(_) => self.datagrams_sent += 1,
                        Err(_) => self.send_errors += 1,
                    }
                }
            }
        }
    }

    fn event(&mut self, link: usize, event: Event) {
        let now = Instant::now();
        match event {
            Event::TunnelUp { tunnel, .. } => {
                let Some(&index) = self.by_id.get(&(link, tunnel)) else {
                    return;
                };
                let slot = &mut self.tunnels[index];
                if slot.state == TunnelState::Opening {
                    self.in_flight -= 1;
                    if let Some(at) = slot.opened_at {
                        let _ = self.tunnel_hist.record(micros(now - at));
                    }
                }
                slot.state = TunnelState::Up;
                self.tunnels_up += 1;
                self.last_tunnel_up = Some(now);
                if self.phase == Phase::Establish {
                    let m = self.config.sessions_per_tunnel as u64;
                    let first = index as u64 * m + 1;
                    self.pending_sessions
                        .extend((first..first + m).map(|seat| (index, seat)));
                }
            }
            Event::TunnelDown { tunnel, reason } => {
                let Some(index) = self.by_id.remove(&(link, tunnel)) else {
                    return;
                };
                let slot = &mut self.tunnels[index];
                if slot.state == TunnelState::Opening {
                    self.in_flight -= 1;
                    self.tunnel_failures += 1;
                    if self.phase == Phase::Establish {
                        self.session_failures += self.config.sessions_per_tunnel;
                    }
                }
                *self
                    .tunnel_down_reasons
                    .entry(tunnel_reason_name(&reason))
                    .or_default() += 1;
                slot.state = TunnelState::Down(reason);
            }
            Event::SessionUp { key, .. } => {
                let Some(s) = self.sessions.get_mut(&(link, key)) else {
                    return;
                };
                if s.l2tp_up.is_some() {
                    return;
                }
                s.l2tp_up = Some(now);
                let _ = self.session_hist.record(micros(now - s.opened_at));
                match &self.config.ppp {
                    None => {
                        s.up = true;
                        s.settled = true;
                        self.in_flight -= 1;
                        self.sessions_up += 1;
                        self.last_session_up = Some(now);
                        if let Some(&index) = self.by_id.get(&(link, key.tunnel)) {
                            self.tunnels[index].sessions_up += 1;
                        }
                    }
                    Some(ppp) => {
                        // Client-initiated: PPP starts with the LNS's first frame (silent,
                        // see `subscriber`); NAS-initiated: the client already waits for
                        // the LNS's authentication reply.
                        if s.sub.is_none() {
                            s.sub = Some(Box::new(Subscriber::new(
                                ppp,
                                s.seat,
                                self.config.seed ^ s.seat,
                            )));
                        }
                        self.dirty.push((link, key));
                    }
                }
            }
            Event::SessionDown { key, reason } => {
                if let Some(mut s) = self.sessions.remove(&(link, key)) {
                    if !s.settled {
                        self.in_flight -= 1;
                        self.session_failures += 1;
                    }
                    if let Some(sub) = s.sub.as_mut() {
                        self.echo_requests += sub.echo_requests;
                        self.lcp_renegotiations += sub.lcp_renegotiations;
                        if sub.down.is_none() {
                            sub.lower_down(now);
                        }
                    }
                }
                *self
                    .session_down_reasons
                    .entry(session_reason_name(&reason))
                    .or_default() += 1;
            }
        }
    }

    /// Waits until a socket is readable or `wake`, then reads a batch from each readable
    /// socket into its endpoint.
    fn wait_and_receive(&mut self, wake: Instant) -> io::Result<()> {
        let wait = wake.saturating_duration_since(Instant::now());
        let mut fds: Vec<libc::pollfd> = self
            .links
            .iter()
            .map(|l| libc::pollfd {
                fd: l.socket.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let ts = libc::timespec {
            tv_sec: wait.as_secs() as libc::time_t,
            tv_nsec: wait.subsec_nanos() as libc::c_long,
        };
        // SAFETY: `fds` is a valid array of `fds.len()` pollfds, `ts` a valid timespec,
        // no signal mask.
        let n = unsafe {
            libc::ppoll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                &raw const ts,
                std::ptr::null(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::Interrupted => Ok(()),
                _ => Err(e),
            };
        }
        for (l, fd) in fds.iter().enumerate() {
            if fd.revents == 0 {
                continue;
            }
            let link = &mut self.links[l];
            for _ in 0..RECV_BATCH {
                match link.socket.recv_from(&mut self.buf) {
                    Ok((len, peer)) => {
                        self.datagrams_received += 1;
                        let now = Instant::now();
                        let data = link.endpoint.handle_datagram(
                            now,
                            peer,
                            &self.buf[..len],
                            &mut link.gate,
                        );
                        if let Some(data) = data
                            && let Some(sub) = self
                                .sessions
                                .get_mut(&(l, data.key))
                                .and_then(|s| s.sub.as_mut())
                        {
                            sub.handle_frame(data.payload, now);
                            self.dirty.push((l, data.key));
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    // ICMP errors reported on the socket (port unreachable): the
                    // transport's retransmission decides.
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Counts, rates and latencies so far.
    pub fn report(&self) -> Report {
        let since_start = |end: Option<Instant>| match (self.setup_start, end) {
            (Some(a), Some(b)) if b > a => (b - a).as_secs_f64(),
            _ => 0.0,
        };
        let last_up = self.last_tunnel_up.max(self.last_session_up);
        let setup_secs = since_start(last_up);
        let setups = (self.tunnels_up + self.sessions_up) as f64;
        Report {
            lns: self.config.lns.to_string(),
            sockets: self.links.len(),
            tunnels_requested: self.config.tunnels,
            sessions_requested: self.config.tunnels * self.config.sessions_per_tunnel,
            tunnels_up: self.tunnels_up,
            sessions_up: self.sessions_up,
            tunnel_failures: self.tunnel_failures,
            session_failures: self.session_failures,
            setup_secs,
            acked_secs: since_start(self.setup_end),
            tunnels_per_sec: rate(self.tunnels_up, self.first_tunnel_open, self.last_tunnel_up),
            sessions_per_sec: rate(
                self.sessions_up,
                self.first_session_open,
                self.last_session_up,
            ),
            setups_per_sec: per_sec(setups, setup_secs),
            acked_setups_per_sec: per_sec(setups, since_start(self.setup_end)),
            tunnel_setup: Latency::of(&self.tunnel_hist),
            session_setup: Latency::of(&self.session_hist),
            teardown: self.teardown.clone(),
            tunnel_down_reasons: self.tunnel_down_reasons.clone(),
            session_down_reasons: self.session_down_reasons.clone(),
            datagrams_sent: self.datagrams_sent,
            datagrams_received: self.datagrams_received,
            send_errors: self.send_errors,
            setup_retransmissions: self.setup_retransmissions,
            ppp: self.config.ppp.as_ref().map(|p| PppReport {
                auth: p.auth,
                proxy: p.proxy,
                lcp: Latency::of(&self.lcp_hist),
                authentication: Latency::of(&self.auth_hist),
                ipcp: Latency::of(&self.ipcp_hist),
                total: Latency::of(&self.total_hist),
                down_reasons: self.ppp_down_reasons.clone(),
                echo_requests_answered: self.echo_requests + self.live_echoes(),
                lcp_renegotiations: self.lcp_renegotiations
                    + self
                        .sessions
                        .values()
                        .filter_map(|s| s.sub.as_ref())
                        .map(|s| s.lcp_renegotiations)
                        .sum::<u64>(),
            }),
            setup_timeline: self.timeline.clone(),
            churned: self.churned,
        }
    }

    /// The sessions fully up now (IPv4 only), as the traffic generator and the hardware
    /// profiles read them: the LNS's ids first, the LAC's as `peer_*`
    /// ([`TrafficSession`]), the subscriber's address and its gateway.
    pub fn established(&self) -> io::Result<SessionList> {
        let mut locals = Vec::with_capacity(self.links.len());
        for link in &self.links {
            let mut local = link.socket.local_addr()?;
            if local.ip().is_unspecified() {
                // The source address the kernel picks toward the LNS.
                let probe = UdpSocket::bind(SocketAddr::new(local.ip(), 0))?;
                probe.connect(self.config.lns)?;
                local.set_ip(probe.local_addr()?.ip());
            }
            locals.push(local);
        }
        let mut keys: Vec<&(usize, SessionKey)> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.up)
            .map(|(k, _)| k)
            .collect();
        keys.sort_unstable();
        let mut sessions = Vec::with_capacity(keys.len());
        for &(l, key) in keys {
            let endpoint = &self.links[l].endpoint;
            let (Some(tunnel), Some((_, call))) =
                (endpoint.tunnel_info(key.tunnel), endpoint.session_info(key))
            else {
                continue;
            };
            let (IpAddr::V4(lac_addr), IpAddr::V4(lns_addr)) = (locals[l].ip(), tunnel.peer.ip())
            else {
                continue;
            };
            let address = self.sessions[&(l, key)]
                .sub
                .as_ref()
                .and_then(|s| s.address);
            let Some(address) = address else {
                continue;
            };
            sessions.push(TrafficSession {
                tunnel_id: tunnel.peer_tunnel,
                session_id: call.peer_session,
                peer_tunnel_id: key.tunnel,
                peer_session_id: key.session,
                lac_addr,
                lac_port: locals[l].port(),
                lns_addr,
                lns_port: tunnel.peer.port(),
                subscriber: address.address,
                gateway: Some(address.gateway),
            });
        }
        Ok(SessionList { sessions })
    }
}

fn per_sec(count: f64, secs: f64) -> f64 {
    if secs > 0.0 { count / secs } else { 0.0 }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "L2TP setup toward {} ({} socket(s))",
            self.lns, self.sockets
        )?;
        writeln!(
            f,
            "  tunnels   {:>7} / {:<7} up   {:>5} failed   {:>10.1} /s",
            self.tunnels_up, self.tunnels_requested, self.tunnel_failures, self.tunnels_per_sec
        )?;
        writeln!(
            f,
            "  sessions  {:>7} / {:<7} up   {:>5} failed   {:>10.1} /s",
            self.sessions_up, self.sessions_requested, self.session_failures, self.sessions_per_sec
        )?;
        writeln!(
            f,
            "  setup phase {:.3} s, {:.1} setups/s; all acknowledged after {:.3} s, {:.1} setups/s",
            self.setup_secs, self.setups_per_sec, self.acked_secs, self.acked_setups_per_sec
        )?;
        writeln!(
            f,
            "  latency (ms)        p50      p90      p99    p99.9      max     mean"
        )?;
        for (name, l) in [
            ("SCCRQ->TunnelUp", &self.tunnel_setup),
            ("ICRQ->SessionUp", &self.session_setup),
        ] {
            writeln!(
                f,
                "  {name:<16} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3}",
                ms(l.p50_us),
                ms(l.p90_us),
                ms(l.p99_us),
                ms(l.p999_us),
                ms(l.max_us),
                l.mean_us / 1000.0
            )?;
        }
        if let Some(p) = &self.ppp {
            writeln!(
                f,
                "  PPP {}{}: LCP echo requests answered {}, down {:?}",
                p.auth.label(),
                if p.proxy {
                    " (proxy LCP + proxy auth)"
                } else {
                    ""
                },
                p.echo_requests_answered,
                p.down_reasons
            )?;
            for (name, l) in [
                ("ICCN->LCP up", &p.lcp),
                ("authentication", &p.authentication),
                ("IPCP", &p.ipcp),
                ("ICRQ->IPCP up", &p.total),
            ] {
                writeln!(
                    f,
                    "  {name:<16} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3}",
                    ms(l.p50_us),
                    ms(l.p90_us),
                    ms(l.p99_us),
                    ms(l.p999_us),
                    ms(l.max_us),
                    l.mean_us / 1000.0
                )?;
            }
        }
        if !self.setup_timeline.is_empty() {
            writeln!(f, "  sessions up per second: {:?}", self.setup_timeline)?;
        }
        if let Some(t) = &self.teardown {
            writeln!(
                f,
                "  teardown ({:?}) {:.3} s{}",
                t.mode,
                t.secs,
                if t.complete { "" } else { " INCOMPLETE" }
            )?;
        }
        writeln!(
            f,
            "  datagrams sent {} received {} send errors {} setup retransmissions {}",
            self.datagrams_sent,
            self.datagrams_received,
            self.send_errors,
            self.setup_retransmissions
        )?;
        write!(
            f,
            "  tunnel down: {:?}\n  session down: {:?}",
            self.tunnel_down_reasons, self.session_down_reasons
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    fn config(bind_port: u16, more: &[&str]) -> LacConfig {
        LacConfig {
            bind: Some("10.1.0.1".parse().unwrap()),
            more_binds: more.iter().map(|a| a.parse().unwrap()).collect(),
            bind_port,
            ..LacConfig::new("10.1.0.2:1701".parse().unwrap(), 4, 1)
        }
    }

    #[test]
    fn one_address_steps_the_port() {
        let c = config(1701, &[]);
        let addrs: Vec<String> = (0..3)
            .map(|k| c.socket_addr(k).unwrap().to_string())
            .collect();
        assert_eq!(addrs, ["10.1.0.1:1701", "10.1.0.1:1702", "10.1.0.1:1703"]);
    }

    #[test]
    fn several_addresses_share_the_port_before_stepping_it() {
        let c = config(1701, &["10.1.0.11", "10.1.0.12"]);
        let addrs: Vec<String> = (0..4)
            .map(|k| c.socket_addr(k).unwrap().to_string())
            .collect();
        assert_eq!(
            addrs,
            [
                "10.1.0.1:1701",
                "10.1.0.11:1701",
                "10.1.0.12:1701",
                "10.1.0.1:1702"
            ]
        );
        let ephemeral = config(0, &["10.1.0.11"]);
        assert_eq!(ephemeral.socket_addr(3).unwrap().port(), 0);
        assert_eq!(
            ephemeral.socket_addr(3).unwrap().ip().to_string(),
            "10.1.0.11"
        );
    }

    #[test]
    fn a_port_past_65535_is_an_error() {
        let c = config(65535, &[]);
        assert!(c.socket_addr(0).is_ok());
        assert!(c.socket_addr(1).is_err());
    }
}

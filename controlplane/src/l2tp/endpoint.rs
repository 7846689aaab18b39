//! The sans-IO L2TP endpoint: every tunnel and session of one UDP socket (RFC 2661 §5,
//! §7), for the LNS and the LAC role.
//!
//! # Contract
//!
//! * Inputs: [`Endpoint::handle_datagram`] (one UDP payload and its source address),
//!   [`Endpoint::handle_timeout`] (once `now` reached [`Endpoint::poll_timeout`]), and the
//!   local requests [`Endpoint::open_tunnel`], [`Endpoint::open_session`],
//!   [`Endpoint::close_session`], [`Endpoint::close_tunnel`].
//! * Outputs, to drain after every input: [`Endpoint::poll_transmit`] until `None`,
//!   [`Endpoint::poll_event`] until `None`, then re-arm the timer with
//!   [`Endpoint::poll_timeout`]. A data message (T=0) of an established session comes
//!   back from `handle_datagram` itself, borrowing the datagram.
//! * Time comes in as `now`; the endpoint never reads a clock. All randomness (tunnel and
//!   session ids, challenges, tie breakers, random vectors) comes from the seeded RNG, so
//!   a run is reproducible from its seed.
//! * Nothing a peer sends panics or grows memory without bound: at most `max_tunnels`
//!   tunnels (half-open and closing included), `max_sessions` sessions per tunnel, the
//!   transport's bounded queues per tunnel, at most [`MAX_ONESHOT`] stateless replies
//!   queued, one live timer entry per tunnel plus stale entries compacted when they
//!   outnumber the live ones.
//! * Timers: one binary heap of (deadline, tunnel, generation) for all tunnels, with lazy
//!   deletion; [`Endpoint::poll_timeout`] reads its top and never scans the tunnels.
//! * Gatekeeper bookkeeping: every tunnel admitted by [`Gatekeeper::admit_tunnel`] ends
//!   with exactly one [`Gatekeeper::tunnel_closed`] (when it goes down, not when its
//!   state is freed after the §5.7 wait), every session admitted by
//!   [`Gatekeeper::admit_session`] with exactly one [`Gatekeeper::session_closed`].
//!   Tunnels and sessions opened locally are not admitted and not reported. A close
//!   caused by a call without a gatekeeper (`close_*`) is reported at the next
//!   `handle_datagram` or `handle_timeout`.
//! * Events: [`Event::TunnelDown`] ends every tunnel that was opened locally or admitted,
//!   [`Event::SessionDown`] every session that was opened locally or admitted, whether or
//!   not it came up. When a tunnel goes down, its sessions' `SessionDown` events come
//!   before its `TunnelDown`.
//!
//! # Rules implemented
//!
//! * Demultiplexing by our tunnel id (RFC 2661 §3.1); tunnel id 0 only for SCCRQ. A
//!   retransmitted SCCRQ (same source address, same Assigned Tunnel ID bytes) goes to the
//!   tunnel it created, whose transport acknowledges the duplicate (§5.8).
//! * A peer behind NAT: replies go to the address the tunnel's last valid control message
//!   came from (the address is updated and logged).
//! * Tunnel FSM §7.2.1 ([`super::tunnel::step`]), session FSMs §7.4-§7.5
//!   ([`super::session::step`]), tunnel authentication §4.4.3 / §5.1.1, tie breaker
//!   §4.4.3, HELLO §5.5 / §6.5, teardown §5.6 / §5.7, unknown M-bit AVPs §4.2.

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use xlns_dataplane::wire::l2tp::{HeaderKind, HeaderRepr, Packet, Sequence};
use xlns_dataplane::wire::ppp::HeaderRepr as PppHeaderRepr;

use super::attr::{
    Avp, BearerMask, FramingMask, PppDisconnectCause, Q931Cause, ResultCode, attr_type as at,
};
use super::avp::AvpIter;
use super::message::{ControlMessage, HidingPolicy, MessageError, MessageType, Scope, frame};
use super::result::{CdnResult, GeneralError, StopCcnResult};
use super::session::{
    self, Action as SAction, CallKind, IdleAction, OutgoingCall, Session, SessionEvent,
    SessionState,
};
use super::transport::{self, Transport};
use super::tunnel::{
    self, Action as TAction, Originator, Tie, Tunnel, TunnelEvent, TunnelState, challenge_response,
    tie_break,
};

/// Our (local) tunnel id, never 0.
pub type TunnelId = u16;
/// Our (local) session id, never 0.
pub type SessionId = u16;

/// Stateless replies (StopCCN to an unknown or refused peer) queued at most.
pub const MAX_ONESHOT: usize = 256;

/// A session, by our ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey {
    pub tunnel: TunnelId,
    pub session: SessionId,
}

/// Which side of the calls this endpoint plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// L2TP Network Server: receives ICRQ, sends OCRQ.
    Lns,
    /// L2TP Access Concentrator: sends ICRQ, receives OCRQ.
    Lac,
}

/// Configuration of the endpoint.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    pub role: Role,
    /// Our Host Name AVP.
    pub host_name: Vec<u8>,
    /// Our Vendor Name AVP.
    pub vendor_name: Vec<u8>,
    /// Our Receive Window Size AVP default (also the transport's `rws_local`).
    pub receive_window: u16,
    /// Default HELLO interval (§5.5); per tunnel from [`TunnelParams`].
    pub hello_interval: Duration,
    /// Transport parameters; `rws_local` is replaced by the tunnel's receive window.
    pub transport: transport::Config,
    /// RFC 2661 §5.7: state kept after a StopCCN.
    pub stopccn_wait: Duration,
    /// Half-open tunnel / session expiry.
    pub setup_timeout: Duration,
    /// Hard cap on tunnel state, half-open and closing included.
    pub max_tunnels: usize,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        let transport = transport::Config::default();
        Self {
            role: Role::Lns,
            host_name: b"xlns".to_vec(),
            vendor_name: b"xlns".to_vec(),
            receive_window: transport.rws_local,
            hello_interval: Duration::from_secs(60),
            stopccn_wait: transport.retransmission_cycle(),
            transport,
            setup_timeout: Duration::from_secs(60),
            max_tunnels: 4096,
        }
    }
}

/// What the gatekeeper allows a tunnel.
#[derive(Debug, Clone)]
pub struct TunnelParams {
    /// Tunnel authentication and hidden AVP secret (§4.3, §5.1.1).
    pub secret: Option<Vec<u8>>,
    /// Send sensitive AVPs hidden (§4.3); needs a secret.
    pub hide_avps: bool,
    pub hello_interval: Duration,
    pub receive_window: u16,
    /// Sessions per tunnel at most.
    pub max_sessions: u16,
}

impl TunnelParams {
    /// Parameters from the endpoint defaults, no secret.
    pub fn from_config(config: &EndpointConfig) -> TunnelParams {
        TunnelParams {
            secret: None,
            hide_avps: false,
            hello_interval: config.hello_interval,
            receive_window: config.receive_window,
            max_sessions: u16::MAX,
        }
    }
}

/// The SCCRQ as the gatekeeper sees it.
#[derive(Debug, Clone)]
pub struct TunnelRequest<'a> {
    /// The tunnel id the tunnel gets if admitted (unused if refused).
    pub tunnel: TunnelId,
    pub peer: SocketAddr,
    pub host_name: &'a [u8],
    pub vendor_name: Option<&'a [u8]>,
    pub has_challenge: bool,
}

/// The gatekeeper's answer to an SCCRQ.
#[derive(Debug, Clone)]
pub enum TunnelDecision {
    Accept(TunnelParams),
    /// Refused with a StopCCN carrying this Result Code (§4.4.2).
    Reject {
        result: u16,
        error: u16,
        message: &'static str,
    },
}

/// The gatekeeper's answer to an ICRQ (LNS) / OCRQ (LAC).
#[derive(Debug, Clone)]
pub enum SessionDecision {
    Accept,
    /// Refused with a CDN carrying this Result Code (§4.4.2).
    Reject {
        result: u16,
        error: u16,
        message: &'static str,
    },
}

/// Synchronous policy/admission callbacks, implemented by the shell.
pub trait Gatekeeper {
    /// Called before the SCCRQ's Challenge is answered, with the Host Name read without
    /// the secret (the secret comes from the result).
    fn admit_tunnel(&mut self, now: Instant, req: &TunnelRequest<'_>) -> TunnelDecision;
    /// Called on ICRQ (LNS) / OCRQ (LAC) before answering.
    /// `key` is the session the call gets if admitted (unused if refused).
    fn admit_session(
        &mut self,
        now: Instant,
        key: SessionKey,
        tunnel_sessions: usize,
    ) -> SessionDecision;
    /// Every admitted tunnel ends with exactly one of these.
    fn tunnel_closed(&mut self, tunnel: TunnelId);
    /// Every admitted session ends with exactly one of these.
    fn session_closed(&mut self, key: SessionKey);
}

/// A [`Gatekeeper`] that admits every tunnel (with [`TunnelParams::from_config`] of the
/// default [`EndpointConfig`]: no secret) and every call, and keeps no books: for a LAC
/// that takes whatever the LNS offers, and for test harnesses.
#[derive(Debug, Clone, Copy, Default)]
pub struct AcceptAll;

impl Gatekeeper for AcceptAll {
    fn admit_tunnel(&mut self, _: Instant, _: &TunnelRequest<'_>) -> TunnelDecision {
        TunnelDecision::Accept(TunnelParams::from_config(&EndpointConfig::default()))
    }
    fn admit_session(&mut self, _: Instant, _: SessionKey, _: usize) -> SessionDecision {
        SessionDecision::Accept
    }
    fn tunnel_closed(&mut self, _: TunnelId) {}
    fn session_closed(&mut self, _: SessionKey) {}
}

/// Call information of a session (from ICRQ/ICCN or OCRQ/OCCN).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallInfo {
    pub peer_session: SessionId,
    pub call_serial: u32,
    pub calling_number: Option<Vec<u8>>,
    pub called_number: Option<Vec<u8>>,
    pub sub_address: Option<Vec<u8>>,
    pub tx_connect_speed: Option<u32>,
    pub rx_connect_speed: Option<u32>,
    pub framing_type: Option<u32>,
    pub physical_channel: Option<u32>,
    pub private_group_id: Option<Vec<u8>>,
    pub sequencing_required: bool,
    /// Proxy LCP / proxy authentication (§4.4.5), raw as received.
    pub initial_received_lcp_confreq: Option<Vec<u8>>,
    pub last_sent_lcp_confreq: Option<Vec<u8>>,
    pub last_received_lcp_confreq: Option<Vec<u8>>,
    pub proxy_authen_type: Option<u16>,
    pub proxy_authen_name: Option<Vec<u8>>,
    pub proxy_authen_challenge: Option<Vec<u8>>,
    pub proxy_authen_id: Option<u16>,
    pub proxy_authen_response: Option<Vec<u8>>,
    /// Vendor and unknown non-mandatory AVPs ([`Avp::Unknown`]), kept.
    pub vendor_avps: Vec<Avp>,
}

/// Why a tunnel went down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelDownReason {
    /// The peer sent StopCCN.
    PeerStopCcn {
        result: u16,
        error: Option<u16>,
        message: Vec<u8>,
    },
    /// `close_tunnel`.
    LocalClose { result: u16 },
    /// Retransmissions exhausted (§5.8).
    PeerDead,
    /// A HELLO went unanswered (§5.5).
    HelloTimeout,
    /// No SCCRP / SCCCN within `setup_timeout`.
    SetupTimeout,
    /// Tunnel authentication failed (§5.1.1): StopCCN result 4 sent.
    AuthFailed,
    /// We sent StopCCN for this protocol error.
    ProtocolError {
        result: u16,
        error: u16,
        message: &'static str,
    },
    /// Our SCCRQ collided with the peer's and lost the tie breaker (§4.4.3).
    LostTieBreaker,
}

/// Why a session went down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionDownReason {
    /// The peer sent CDN.
    PeerCdn {
        result: u16,
        error: Option<u16>,
        message: Vec<u8>,
        q931: Option<Q931Cause>,
        ppp_cause: Option<PppDisconnectCause>,
    },
    /// `close_session`.
    LocalClose { result: u16 },
    /// The tunnel went down.
    TunnelDown,
    /// Not established within `setup_timeout` (CDN result 10 sent).
    SetupTimeout,
    /// We sent CDN for this protocol error (or refusal).
    ProtocolError {
        result: u16,
        error: u16,
        message: &'static str,
    },
}

/// Something the shell must know.
// Events are few (one per tunnel or session change): the size of SessionUp's CallInfo
// does not matter, and the shell receives it by value as the spec has it.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    TunnelUp {
        tunnel: TunnelId,
        peer: SocketAddr,
        peer_tunnel: u16,
        host_name: Vec<u8>,
    },
    /// The tunnel is down; its state is freed later (§5.7 wait).
    TunnelDown {
        tunnel: TunnelId,
        reason: TunnelDownReason,
    },
    SessionUp {
        key: SessionKey,
        info: CallInfo,
    },
    SessionDown {
        key: SessionKey,
        reason: SessionDownReason,
    },
}

/// A UDP payload to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub peer: SocketAddr,
    pub payload: Vec<u8>,
}

/// A received data message (T=0) of an established session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataMessage<'a> {
    pub key: SessionKey,
    /// Ns of the data message, when it carried one (§5.4).
    pub ns: Option<u16>,
    /// The PPP frame.
    pub payload: &'a [u8],
}

/// Why a local request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("no such tunnel")]
    UnknownTunnel,
    #[error("the tunnel is closing")]
    TunnelClosing,
    #[error("tunnel limit reached")]
    TooManyTunnels,
    #[error("session limit of the tunnel reached")]
    TooManySessions,
    #[error("no free id")]
    NoFreeId,
}

/// A snapshot of one tunnel for the operator.
#[derive(Debug, Clone)]
pub struct TunnelInfo {
    pub id: TunnelId,
    pub state: TunnelState,
    pub originator: Originator,
    pub peer: SocketAddr,
    pub peer_tunnel: u16,
    pub peer_host_name: Vec<u8>,
    pub sessions: usize,
    pub transport: transport::Stats,
}

/// Counters of the endpoint. `stopccn_*[r]` count StopCCNs by Result Code `r` (1..=7),
/// index 0 every other code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointStats {
    pub datagrams: u64,
    pub control_messages: u64,
    pub zlb_received: u64,
    pub data_messages: u64,
    /// Header malformed (§3.1): dropped.
    pub malformed_header: u64,
    /// Body malformed (AVP framing, AVP length, Message Type AVP).
    pub malformed_message: u64,
    /// Hidden AVP undecodable (no secret, no Random Vector, wrong secret).
    pub malformed_hidden: u64,
    /// A mandatory AVP of §6 missing or a value out of range.
    pub invalid_message: u64,
    pub unknown_message_type: u64,
    pub unknown_mandatory_avp: u64,
    /// Control message for a tunnel we do not have.
    pub unknown_tunnel: u64,
    pub unknown_tunnel_data: u64,
    pub unknown_session_data: u64,
    /// Data message from an address other than the tunnel's peer.
    pub data_wrong_peer: u64,
    pub sccrq_received: u64,
    /// SCCRQs mapped to the tunnel they had already created.
    pub sccrq_retransmitted: u64,
    pub tunnels_rejected: u64,
    pub tunnels_over_limit: u64,
    pub tunnels_established: u64,
    pub tunnels_freed: u64,
    pub sessions_established: u64,
    pub sessions_rejected: u64,
    pub sessions_over_limit: u64,
    pub stopccn_sent: [u64; 8],
    pub stopccn_received: [u64; 8],
    pub cdn_sent: u64,
    pub cdn_received: u64,
    pub auth_failures: u64,
    pub hellos_sent: u64,
    pub hellos_received: u64,
    /// Messages out of sequence for the state (§7 tables).
    pub out_of_sequence: u64,
    /// Call messages for sessions we do not have (ignored per §7.4-§7.5 "idle").
    pub stray_session_messages: u64,
    pub tunnel_setup_timeouts: u64,
    pub session_setup_timeouts: u64,
    pub peers_dead: u64,
    pub tie_breaker_wins: u64,
    pub tie_breaker_losses: u64,
    pub peer_address_changes: u64,
    /// Control messages not queued because the transport queue was full.
    pub queue_full: u64,
    pub wen_received: u64,
    pub sli_received: u64,
    /// Stateless replies dropped because [`MAX_ONESHOT`] were queued.
    pub oneshot_dropped: u64,
}

/// AVPs we send hidden when the tunnel's `hide_avps` is set (those §4.4 allows to hide
/// and that carry subscriber data or ids; Message Type, Random Vector, Host Name and
/// Assigned Tunnel ID stay clear).
const HIDDEN_AVPS: &[u16] = &[
    at::ASSIGNED_SESSION_ID,
    at::CALLING_NUMBER,
    at::CALLED_NUMBER,
    at::SUB_ADDRESS,
    at::INITIAL_RECEIVED_LCP_CONFREQ,
    at::LAST_SENT_LCP_CONFREQ,
    at::LAST_RECEIVED_LCP_CONFREQ,
    at::PROXY_AUTHEN_TYPE,
    at::PROXY_AUTHEN_NAME,
    at::PROXY_AUTHEN_CHALLENGE,
    at::PROXY_AUTHEN_ID,
    at::PROXY_AUTHEN_RESPONSE,
];

/// Length of the challenges we send (§4.4.3: one or more octets).
const CHALLENGE_LEN: usize = 16;

/// A StopCCN / CDN Result Code to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stop {
    result: u16,
    error: u16,
    message: &'static str,
    auth: bool,
}

impl Stop {
    const fn new(result: u16, error: u16, message: &'static str) -> Stop {
        Stop {
            result,
            error,
            message,
            auth: false,
        }
    }

    const fn auth(message: &'static str) -> Stop {
        Stop {
            result: StopCcnResult::NotAuthorized.code(),
            error: 0,
            message,
            auth: true,
        }
    }

    fn result_code(&self) -> ResultCode {
        if self.error == 0 && self.message.is_empty() {
            ResultCode::new(self.result)
        } else {
            ResultCode::with_error(self.result, self.error, self.message)
        }
    }
}

const GENERAL: u16 = StopCcnResult::GeneralError.code();
const FSM_ERROR: Stop = Stop::new(StopCcnResult::FsmError.code(), 0, "message out of sequence");
const UNKNOWN_M_AVP: u16 = GeneralError::UnknownMandatoryAvp.code();
const BAD_VALUE: u16 = GeneralError::BadValue.code();

/// A tunnel or session whose closing the gatekeeper still has to hear.
#[derive(Debug, Clone, Copy)]
enum Closed {
    Tunnel(TunnelId),
    Session(SessionKey),
}

/// Whether a tunnel record survives an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Keep,
    Free,
}

/// Fields of an SCCRQ read without the secret (for the gatekeeper and the dedupe).
#[derive(Debug, Default)]
struct SccrqScan<'a> {
    host_name: Option<&'a [u8]>,
    vendor_name: Option<&'a [u8]>,
    /// The Assigned Tunnel ID AVP's value bytes as sent (hidden or not).
    assigned_raw: Option<&'a [u8]>,
    /// The clear Assigned Tunnel ID.
    assigned: Option<u16>,
    challenge: bool,
    tie_breaker: Option<u64>,
}

/// The Message Type of a control message body, if its first AVP is a clear one.
fn peek_type(body: &[u8]) -> Option<u16> {
    let first = AvpIter::new(body).next()?.ok()?;
    if first.vendor_id() != 0 || first.attr_type() != at::MESSAGE_TYPE || first.hidden() {
        return None;
    }
    let v = first.value();
    (v.len() == 2).then(|| u16::from_be_bytes([v[0], v[1]]))
}

fn scan_sccrq(body: &[u8]) -> SccrqScan<'_> {
    let mut scan = SccrqScan::default();
    for avp in AvpIter::new(body).skip(1) {
        let Ok(avp) = avp else { break };
        if avp.vendor_id() != 0 {
            continue;
        }
        let value = avp.value();
        match avp.attr_type() {
            at::HOST_NAME if !avp.hidden() && !value.is_empty() => scan.host_name = Some(value),
            at::VENDOR_NAME if !avp.hidden() => scan.vendor_name = Some(value),
            at::ASSIGNED_TUNNEL_ID => {
                scan.assigned_raw = Some(value);
                if !avp.hidden() && value.len() == 2 {
                    scan.assigned = Some(u16::from_be_bytes([value[0], value[1]]));
                }
            }
            at::CHALLENGE => scan.challenge = true,
            at::TIE_BREAKER if !avp.hidden() => {
                if let Ok(bytes) = <[u8; 8]>::try_from(value) {
                    scan.tie_breaker = Some(u64::from_be_bytes(bytes));
                }
            }
            _ => {}
        }
    }
    scan
}

fn stop_index(result: u16) -> usize {
    if (1..=7).contains(&result) {
        usize::from(result)
    } else {
        0
    }
}

/// Everything an input may touch besides the tunnel map.
#[derive(Debug)]
struct Core {
    config: EndpointConfig,
    rng: StdRng,
    stats: EndpointStats,
    events: VecDeque<Event>,
    closed: Vec<Closed>,
    session_count: usize,
}

impl Core {
    /// Encode and queue a control message for the peer session `peer_session` (the
    /// header's Session ID). The transport body is the header Session ID (2 octets)
    /// followed by the message body.
    fn queue(&mut self, t: &mut Tunnel, peer_session: u16, msg: &ControlMessage) {
        let mut body = peer_session.to_be_bytes().to_vec();
        let result = match (&t.params.secret, t.params.hide_avps) {
            (Some(secret), true) => {
                let rng = &mut self.rng;
                let mut random = |buf: &mut [u8]| rng.fill_bytes(buf);
                let mut policy = HidingPolicy {
                    secret,
                    hide: HIDDEN_AVPS,
                    random: &mut random,
                };
                msg.emit(&mut body, Some(&mut policy))
            }
            _ => msg.emit(&mut body, None),
        };
        if result.is_err() {
            self.stats.queue_full += 1;
            return;
        }
        if t.transport.queue(body).is_err() {
            self.stats.queue_full += 1;
        }
    }

    fn send_stopccn(&mut self, t: &mut Tunnel, stop: Stop) {
        let msg = ControlMessage::new(MessageType::StopCcn)
            .with(Avp::AssignedTunnelId(t.id))
            .with(Avp::ResultCode(stop.result_code()));
        self.stats.stopccn_sent[stop_index(stop.result)] += 1;
        self.queue(t, 0, &msg);
    }

    fn send_cdn(
        &mut self,
        t: &mut Tunnel,
        peer_session: u16,
        our_session: u16,
        stop: Stop,
        cause: Option<PppDisconnectCause>,
    ) {
        let mut msg = ControlMessage::new(MessageType::Cdn)
            .with(Avp::ResultCode(stop.result_code()))
            .with(Avp::AssignedSessionId(our_session));
        if let Some(cause) = cause {
            msg = msg.with(Avp::PppDisconnectCause(cause));
        }
        self.stats.cdn_sent += 1;
        self.queue(t, peer_session, &msg);
    }

    /// Remove a session, report it down and owe the gatekeeper its close.
    fn remove_session(&mut self, t: &mut Tunnel, sid: SessionId, reason: SessionDownReason) {
        let Some(s) = t.sessions.remove(&sid) else {
            return;
        };
        if let Some(deadline) = s.setup_deadline {
            t.session_deadlines.remove(&(deadline, sid));
        }
        self.session_count = self.session_count.saturating_sub(1);
        let key = SessionKey {
            tunnel: t.id,
            session: sid,
        };
        if s.admitted {
            self.closed.push(Closed::Session(key));
        }
        self.events.push_back(Event::SessionDown { key, reason });
    }

    /// Report the tunnel and every session down (sessions first).
    fn tunnel_down(&mut self, t: &mut Tunnel, reason: TunnelDownReason) {
        let ids: Vec<SessionId> = t.sessions.keys().copied().collect();
        for sid in ids {
            self.remove_session(t, sid, SessionDownReason::TunnelDown);
        }
        if t.admitted {
            t.admitted = false;
            self.closed.push(Closed::Tunnel(t.id));
        }
        self.events.push_back(Event::TunnelDown {
            tunnel: t.id,
            reason,
        });
    }

    fn our_identity(&self, t: &Tunnel) -> Vec<Avp> {
        vec![
            Avp::ProtocolVersion {
                version: 1,
                revision: 0,
            },
            Avp::FramingCapabilities(FramingMask(FramingMask::SYNC | FramingMask::ASYNC)),
            Avp::BearerCapabilities(BearerMask(0)),
            Avp::FirmwareRevision(0x0100),
            Avp::HostName(self.config.host_name.clone()),
            Avp::VendorName(self.config.vendor_name.clone()),
            Avp::AssignedTunnelId(t.id),
            Avp::ReceiveWindowSize(t.params.receive_window.max(1)),
        ]
    }

    fn new_challenge(&mut self, t: &mut Tunnel) -> Option<Avp> {
        t.params.secret.as_ref()?;
        let mut challenge = vec![0u8; CHALLENGE_LEN];
        self.rng.fill_bytes(&mut challenge);
        t.our_challenge = Some(challenge.clone());
        Some(Avp::Challenge(challenge))
    }

    fn send_sccrq(&mut self, t: &mut Tunnel) {
        let mut msg = ControlMessage::new(MessageType::Sccrq);
        msg.avps = self.our_identity(t);
        let tie = self.rng.random::<u64>();
        t.our_tie_breaker = Some(tie);
        msg.avps.push(Avp::TieBreaker(tie));
        if let Some(challenge) = self.new_challenge(t) {
            msg.avps.push(challenge);
        }
        self.queue(t, 0, &msg);
    }

    /// Record the peer's SCCRQ / SCCRP fields (§4.4.3).
    fn learn_peer(t: &mut Tunnel, msg: &ControlMessage) {
        t.peer_id = msg.assigned_tunnel_id().unwrap_or(0);
        // RFC 2661 §4.4.3 / §5.8: absent Receive Window Size means 4.
        t.transport
            .set_peer_rws(msg.receive_window_size().unwrap_or(4));
        t.peer_host_name = msg.host_name().map(<[u8]>::to_vec).unwrap_or_default();
    }

    fn send_sccrp(&mut self, t: &mut Tunnel, sccrq: &ControlMessage) {
        Core::learn_peer(t, sccrq);
        let mut msg = ControlMessage::new(MessageType::Sccrp);
        msg.avps = self.our_identity(t);
        if let Some(challenge) = self.new_challenge(t) {
            msg.avps.push(challenge);
        }
        // §5.1.1: a Challenge in the SCCRQ is answered in the SCCRP.
        if let (Some(secret), Some(challenge)) = (&t.params.secret, sccrq.challenge()) {
            let response = challenge_response(MessageType::Sccrp, secret, challenge);
            msg.avps.push(Avp::ChallengeResponse(response));
        }
        self.queue(t, 0, &msg);
    }

    /// Checks common to SCCRQ and SCCRP (RFC 2661 §6.1, §6.2, §4.4.3).
    fn check_start(msg: &ControlMessage) -> Result<(), Stop> {
        msg.validate()
            .map_err(|_| Stop::new(GENERAL, BAD_VALUE, "missing mandatory AVP"))?;
        if msg.protocol_version() != Some((1, 0)) {
            return Err(Stop::new(
                StopCcnResult::UnsupportedVersion.code(),
                0,
                "protocol version 1.0 required",
            ));
        }
        if msg.assigned_tunnel_id() == Some(0) {
            return Err(Stop::new(GENERAL, BAD_VALUE, "Assigned Tunnel ID 0"));
        }
        if msg.receive_window_size() == Some(0) {
            return Err(Stop::new(GENERAL, BAD_VALUE, "Receive Window Size 0"));
        }
        Ok(())
    }

    /// RFC 2661 §6.1 and §5.1.1 at the recipient of an SCCRQ.
    fn check_sccrq(t: &Tunnel, msg: &ControlMessage) -> Result<(), Stop> {
        Core::check_start(msg)?;
        match (&t.params.secret, msg.challenge()) {
            (Some(_), None) => Err(Stop::auth("tunnel secret configured, no Challenge")),
            (None, Some(_)) => Err(Stop::auth("Challenge but no tunnel secret")),
            _ => Ok(()),
        }
    }

    /// RFC 2661 §6.2 and §5.1.1 at the originator.
    fn check_sccrp(t: &Tunnel, msg: &ControlMessage) -> Result<(), Stop> {
        Core::check_start(msg)?;
        if t.params.secret.is_none() && msg.challenge().is_some() {
            return Err(Stop::auth("Challenge but no tunnel secret"));
        }
        Core::check_response(t, msg, MessageType::Sccrp)
    }

    /// The Challenge Response to our Challenge (§4.4.3).
    fn check_response(t: &Tunnel, msg: &ControlMessage, kind: MessageType) -> Result<(), Stop> {
        let (Some(secret), Some(challenge)) = (&t.params.secret, &t.our_challenge) else {
            return Ok(());
        };
        let expected = challenge_response(kind, secret, challenge);
        match msg.challenge_response() {
            Some(response) if *response == expected => Ok(()),
            Some(_) => Err(Stop::auth("Challenge Response mismatch")),
            None => Err(Stop::auth("Challenge Response missing")),
        }
    }

    fn reason_for(stop: Stop) -> TunnelDownReason {
        if stop.auth {
            TunnelDownReason::AuthFailed
        } else {
            TunnelDownReason::ProtocolError {
                result: stop.result,
                error: stop.error,
                message: stop.message,
            }
        }
    }

    /// Run one §7.2.1 transition and execute its action.
    fn tunnel_event(
        &mut self,
        t: &mut Tunnel,
        now: Instant,
        event: TunnelEvent,
        msg: Option<&ControlMessage>,
        stop: Stop,
        reason: TunnelDownReason,
    ) -> Fate {
        let before = t.state;
        let step = tunnel::step(before, event);
        t.state = step.next;
        match step.action {
            TAction::None => Fate::Keep,
            TAction::SendSccrq => {
                self.send_sccrq(t);
                Fate::Keep
            }
            TAction::SendSccrp => {
                if let Some(msg) = msg {
                    self.send_sccrp(t, msg);
                }
                Fate::Keep
            }
            TAction::SendScccnTunnelOpen => {
                if let Some(sccrp) = msg {
                    Core::learn_peer(t, sccrp);
                    let mut scccn = ControlMessage::new(MessageType::Scccn);
                    if let (Some(secret), Some(challenge)) = (&t.params.secret, sccrp.challenge()) {
                        let response = challenge_response(MessageType::Scccn, secret, challenge);
                        scccn.avps.push(Avp::ChallengeResponse(response));
                    }
                    self.queue(t, 0, &scccn);
                }
                self.tunnel_open(t, now);
                Fate::Keep
            }
            TAction::TunnelOpen => {
                if before != TunnelState::Established {
                    self.tunnel_open(t, now);
                }
                Fate::Keep
            }
            TAction::SendStopCcn => {
                if stop.auth {
                    self.stats.auth_failures += 1;
                }
                self.send_stopccn(t, stop);
                self.tunnel_down(t, reason);
                t.closing_until = Some(now + self.config.stopccn_wait);
                Fate::Keep
            }
            TAction::PeerStopped => {
                self.tunnel_down(t, reason);
                t.closing_until = Some(now + self.config.stopccn_wait);
                Fate::Keep
            }
            TAction::CleanUp | TAction::CleanUpRequeue => {
                self.tunnel_down(t, reason);
                Fate::Free
            }
            TAction::Free => Fate::Free,
        }
    }

    /// The control connection is established: report it and start waiting sessions.
    fn tunnel_open(&mut self, t: &mut Tunnel, now: Instant) {
        self.stats.tunnels_established += 1;
        t.up_reported = true;
        t.last_activity = now;
        self.events.push_back(Event::TunnelUp {
            tunnel: t.id,
            peer: t.peer,
            peer_tunnel: t.peer_id,
            host_name: t.peer_host_name.clone(),
        });
        let mut waiting: Vec<SessionId> = t
            .sessions
            .values()
            .filter(|s| s.state == SessionState::WaitTunnel)
            .map(|s| s.id)
            .collect();
        waiting.sort_unstable();
        for sid in waiting {
            self.session_event(t, now, sid, SessionEvent::TunnelOpen, None, FSM_ERROR, None);
        }
    }

    /// Handle a delivered tunnel-scope message (§7.2.1).
    fn on_tunnel_message(&mut self, t: &mut Tunnel, now: Instant, msg: &ControlMessage) -> Fate {
        let fsm = || Core::reason_for(FSM_ERROR);
        let (event, stop, reason) = match msg.message_type {
            MessageType::Sccrq => {
                let check = if t.state == TunnelState::Idle {
                    Core::check_sccrq(t, msg)
                } else {
                    Err(FSM_ERROR)
                };
                match check {
                    Ok(()) => (TunnelEvent::Sccrq { acceptable: true }, FSM_ERROR, fsm()),
                    Err(stop) => (
                        TunnelEvent::Sccrq { acceptable: false },
                        stop,
                        Core::reason_for(stop),
                    ),
                }
            }
            MessageType::Sccrp => {
                let check = if t.state == TunnelState::WaitCtlReply {
                    // Learn the peer's tunnel id first, so a StopCCN reaches it.
                    Core::learn_peer(t, msg);
                    Core::check_sccrp(t, msg)
                } else {
                    Err(FSM_ERROR)
                };
                match check {
                    Ok(()) => (TunnelEvent::Sccrp { acceptable: true }, FSM_ERROR, fsm()),
                    Err(stop) => (
                        TunnelEvent::Sccrp { acceptable: false },
                        stop,
                        Core::reason_for(stop),
                    ),
                }
            }
            MessageType::Scccn => {
                let check = if t.state == TunnelState::WaitCtlConn {
                    Core::check_response(t, msg, MessageType::Scccn)
                } else {
                    Err(FSM_ERROR)
                };
                match check {
                    Ok(()) => (TunnelEvent::Scccn { acceptable: true }, FSM_ERROR, fsm()),
                    Err(stop) => (
                        TunnelEvent::Scccn { acceptable: false },
                        stop,
                        Core::reason_for(stop),
                    ),
                }
            }
            MessageType::StopCcn => {
                let rc = msg.result_code();
                let result = rc.map_or(0, |rc| rc.result);
                if t.state != TunnelState::Closing {
                    self.stats.stopccn_received[stop_index(result)] += 1;
                }
                let reason = TunnelDownReason::PeerStopCcn {
                    result,
                    error: rc.and_then(|rc| rc.error.as_ref().map(|e| e.code)),
                    message: rc
                        .and_then(|rc| rc.error.as_ref().map(|e| e.message.clone()))
                        .unwrap_or_default(),
                };
                (TunnelEvent::StopCcn, FSM_ERROR, reason)
            }
            _ => {
                self.stats.hellos_received += 1;
                (TunnelEvent::Hello, FSM_ERROR, fsm())
            }
        };
        let refused = matches!(
            event,
            TunnelEvent::Sccrq { acceptable: false }
                | TunnelEvent::Sccrp { acceptable: false }
                | TunnelEvent::Scccn { acceptable: false }
        );
        if refused && stop == FSM_ERROR && t.state != TunnelState::Closing {
            self.stats.out_of_sequence += 1;
        }
        self.tunnel_event(t, now, event, Some(msg), stop, reason)
    }

    /// Handle a delivered call-management message (§7.4, §7.5).
    fn on_session_message(
        &mut self,
        t: &mut Tunnel,
        now: Instant,
        header_session: u16,
        msg: &ControlMessage,
        gate: &mut dyn Gatekeeper,
    ) -> Fate {
        if t.state != TunnelState::Established {
            if t.state != TunnelState::Closing {
                self.stats.out_of_sequence += 1;
            }
            return self.tunnel_event(
                t,
                now,
                TunnelEvent::SessionMessage,
                Some(msg),
                FSM_ERROR,
                Core::reason_for(FSM_ERROR),
            );
        }
        let lns = self.config.role == Role::Lns;
        let existing = (header_session != 0 && t.sessions.contains_key(&header_session))
            .then_some(header_session);
        let Some(sid) = existing else {
            match session::step_idle(lns, msg.message_type) {
                IdleAction::Admit => self.admit_call(t, now, msg, gate),
                IdleAction::SendCdn => {
                    self.stats.out_of_sequence += 1;
                    let peer = msg.assigned_session_id().unwrap_or(0);
                    let stop = Stop::new(
                        CdnResult::GeneralError.code(),
                        GeneralError::InvalidSessionId.code(),
                        "no such session",
                    );
                    self.send_cdn(t, peer, 0, stop, None);
                }
                IdleAction::CleanUp => self.stats.stray_session_messages += 1,
            }
            return Fate::Keep;
        };
        // §4.2: an unknown M-bit AVP clears the session, result 2 error 8.
        if msg.unknown_mandatory().is_some() {
            self.stats.unknown_mandatory_avp += 1;
            let stop = Stop::new(
                CdnResult::GeneralError.code(),
                UNKNOWN_M_AVP,
                "unknown mandatory AVP",
            );
            self.close_session_now(t, sid, stop, None, protocol_error(stop));
            return Fate::Keep;
        }
        let acceptable = match msg.message_type {
            MessageType::Icrp | MessageType::Ocrp => {
                msg.validate().is_ok() && msg.assigned_session_id() != Some(0)
            }
            _ => msg.validate().is_ok(),
        };
        if !acceptable {
            self.stats.invalid_message += 1;
        }
        let stop = if acceptable {
            Stop::new(CdnResult::GeneralError.code(), 0, "message out of sequence")
        } else {
            Stop::new(
                CdnResult::GeneralError.code(),
                BAD_VALUE,
                "invalid call message",
            )
        };
        self.session_event(
            t,
            now,
            sid,
            SessionEvent::Receive {
                message: msg.message_type,
                acceptable,
            },
            Some(msg),
            stop,
            None,
        );
        Fate::Keep
    }

    /// Send CDN for a session and remove it.
    fn close_session_now(
        &mut self,
        t: &mut Tunnel,
        sid: SessionId,
        stop: Stop,
        cause: Option<PppDisconnectCause>,
        reason: SessionDownReason,
    ) {
        let Some(peer) = t.sessions.get(&sid).map(|s| s.peer_id) else {
            return;
        };
        self.send_cdn(t, peer, sid, stop, cause);
        self.remove_session(t, sid, reason);
    }

    /// An ICRQ at the LNS or an OCRQ at the LAC (§7.4.2, §7.5.1 idle rows).
    fn admit_call(
        &mut self,
        t: &mut Tunnel,
        now: Instant,
        msg: &ControlMessage,
        gate: &mut dyn Gatekeeper,
    ) {
        let peer = msg.assigned_session_id().unwrap_or(0);
        let refuse = |core: &mut Core, t: &mut Tunnel, stop: Stop| {
            core.stats.sessions_rejected += 1;
            core.send_cdn(t, peer, 0, stop, None);
        };
        if msg.unknown_mandatory().is_some() {
            self.stats.unknown_mandatory_avp += 1;
            let stop = Stop::new(GENERAL, UNKNOWN_M_AVP, "unknown mandatory AVP");
            refuse(self, t, stop);
            return;
        }
        if msg.validate().is_err() || peer == 0 {
            self.stats.invalid_message += 1;
            refuse(
                self,
                t,
                Stop::new(GENERAL, BAD_VALUE, "invalid call request"),
            );
            return;
        }
        if t.sessions.len() >= usize::from(t.params.max_sessions) {
            self.stats.sessions_over_limit += 1;
            let stop = Stop::new(
                CdnResult::TemporaryLackOfFacilities.code(),
                GeneralError::InsufficientResources.code(),
                "session limit",
            );
            refuse(self, t, stop);
            return;
        }
        let Some(sid) = self.alloc_session(t) else {
            self.stats.sessions_over_limit += 1;
            let stop = Stop::new(
                CdnResult::TemporaryLackOfFacilities.code(),
                GeneralError::InsufficientResources.code(),
                "no free session id",
            );
            refuse(self, t, stop);
            return;
        };
        if let SessionDecision::Reject {
            result,
            error,
            message,
        } = gate.admit_session(
            now,
            SessionKey {
                tunnel: t.id,
                session: sid,
            },
            t.sessions.len(),
        ) {
            refuse(self, t, Stop::new(result, error, message));
            return;
        }
        let lns = self.config.role == Role::Lns;
        let mut info = CallInfo {
            peer_session: peer,
            call_serial: msg.call_serial_number().unwrap_or(0),
            calling_number: msg.calling_number().map(<[u8]>::to_vec),
            called_number: msg.called_number().map(<[u8]>::to_vec),
            sub_address: msg.sub_address().map(<[u8]>::to_vec),
            physical_channel: msg.physical_channel_id(),
            ..CallInfo::default()
        };
        keep_vendor_avps(&mut info, msg);
        let (kind, state) = if lns {
            (CallKind::LnsIncoming, SessionState::WaitConnect)
        } else {
            info.framing_type = msg.framing_type().map(|f| f.0);
            (CallKind::LacOutgoing, SessionState::Established)
        };
        let deadline =
            (state != SessionState::Established).then(|| now + self.config.setup_timeout);
        if let Some(deadline) = deadline {
            t.session_deadlines.insert((deadline, sid));
        }
        t.sessions.insert(
            sid,
            Box::new(Session {
                id: sid,
                peer_id: peer,
                kind,
                state,
                setup_deadline: deadline,
                admitted: true,
                info,
                call: None,
                accm: None,
                send_sequence: false,
                data_ns: Cell::new(0),
                wen_count: 0,
            }),
        );
        self.session_count += 1;
        if lns {
            // §7.4.2: ICRQ acceptable -> send ICRP.
            let icrp = ControlMessage::new(MessageType::Icrp).with(Avp::AssignedSessionId(sid));
            self.queue(t, peer, &icrp);
        } else {
            // §7.5.1: OCRQ acceptable -> send OCRP; the bearer answers at once -> OCCN.
            let ocrp = ControlMessage::new(MessageType::Ocrp).with(Avp::AssignedSessionId(sid));
            self.queue(t, peer, &ocrp);
            let occn = ControlMessage::new(MessageType::Occn)
                .with(Avp::TxConnectSpeed(10_000_000))
                .with(Avp::FramingType(FramingMask(FramingMask::SYNC)));
            self.queue(t, peer, &occn);
            self.session_up(t, sid);
        }
    }

    fn session_up(&mut self, t: &mut Tunnel, sid: SessionId) {
        let Some(s) = t.sessions.get_mut(&sid) else {
            return;
        };
        s.state = SessionState::Established;
        s.send_sequence = s.info.sequencing_required;
        if let Some(deadline) = s.setup_deadline.take() {
            t.session_deadlines.remove(&(deadline, sid));
        }
        s.info.peer_session = s.peer_id;
        self.stats.sessions_established += 1;
        self.events.push_back(Event::SessionUp {
            key: SessionKey {
                tunnel: t.id,
                session: sid,
            },
            info: s.info.clone(),
        });
    }

    fn alloc_session(&mut self, t: &mut Tunnel) -> Option<SessionId> {
        // Sequential from a random start, skipping ids in use and 0.
        for _ in 0..=u16::MAX {
            let candidate = t.next_session;
            t.next_session = t.next_session.wrapping_add(1);
            if candidate != 0 && !t.sessions.contains_key(&candidate) {
                return Some(candidate);
            }
        }
        None
    }

    /// Run one session transition and execute its action.
    #[allow(clippy::too_many_arguments)]
    fn session_event(
        &mut self,
        t: &mut Tunnel,
        _now: Instant,
        sid: SessionId,
        event: SessionEvent,
        msg: Option<&ControlMessage>,
        stop: Stop,
        cause: Option<PppDisconnectCause>,
    ) {
        let Some(s) = t.sessions.get(&sid) else {
            return;
        };
        let step = session::step(s.kind, s.state, event);
        match step.action {
            SAction::None => {
                let Some(s) = t.sessions.get_mut(&sid) else {
                    return;
                };
                if let Some(next) = step.next {
                    s.state = next;
                }
                if let Some(msg) = msg {
                    match msg.message_type {
                        MessageType::Ocrp => s.peer_id = msg.assigned_session_id().unwrap_or(0),
                        MessageType::Wen => {
                            self.stats.wen_received += 1;
                            s.wen_count += 1;
                            tracing::debug!(tunnel = t.id, session = sid, errors = ?msg.call_errors(), "WEN");
                        }
                        MessageType::Sli => {
                            self.stats.sli_received += 1;
                            s.accm = msg.accm();
                        }
                        _ => {}
                    }
                }
            }
            SAction::SendIcrq | SAction::SendOcrq => {
                let Some(s) = t.sessions.get_mut(&sid) else {
                    return;
                };
                if let Some(next) = step.next {
                    s.state = next;
                }
                let call = s.call.clone().unwrap_or_default();
                let serial = if call.call_serial != 0 {
                    call.call_serial
                } else {
                    t.next_call_serial = t.next_call_serial.wrapping_add(1);
                    t.next_call_serial
                };
                s.info.call_serial = serial;
                let mut m = if step.action == SAction::SendIcrq {
                    let mut m = ControlMessage::new(MessageType::Icrq)
                        .with(Avp::AssignedSessionId(sid))
                        .with(Avp::CallSerialNumber(serial))
                        .with(Avp::BearerType(BearerMask(0)));
                    if let Some(n) = &call.calling_number {
                        m = m.with(Avp::CallingNumber(n.clone()));
                    }
                    if let Some(n) = &call.called_number {
                        m = m.with(Avp::CalledNumber(n.clone()));
                    }
                    m
                } else {
                    let bps = if call.tx_connect_speed == 0 {
                        10_000_000
                    } else {
                        call.tx_connect_speed
                    };
                    ControlMessage::new(MessageType::Ocrq)
                        .with(Avp::AssignedSessionId(sid))
                        .with(Avp::CallSerialNumber(serial))
                        .with(Avp::MinimumBps(bps))
                        .with(Avp::MaximumBps(bps))
                        .with(Avp::BearerType(BearerMask(0)))
                        .with(Avp::FramingType(FramingMask(framing(call.framing_type))))
                        .with(Avp::CalledNumber(
                            call.called_number.clone().unwrap_or_default(),
                        ))
                };
                if let Some(n) = &call.sub_address {
                    m = m.with(Avp::SubAddress(n.clone()));
                }
                self.queue(t, 0, &m);
            }
            SAction::SendIccn => {
                let Some(s) = t.sessions.get_mut(&sid) else {
                    return;
                };
                s.peer_id = msg
                    .and_then(ControlMessage::assigned_session_id)
                    .unwrap_or(0);
                let call = s.call.take().unwrap_or_default();
                let speed = if call.tx_connect_speed == 0 {
                    10_000_000
                } else {
                    call.tx_connect_speed
                };
                s.info.tx_connect_speed = Some(speed);
                s.info.framing_type = Some(framing(call.framing_type));
                s.info.sequencing_required = call.sequencing_required;
                let mut iccn = ControlMessage::new(MessageType::Iccn)
                    .with(Avp::TxConnectSpeed(speed))
                    .with(Avp::FramingType(FramingMask(framing(call.framing_type))));
                if call.sequencing_required {
                    iccn = iccn.with(Avp::SequencingRequired);
                }
                iccn.avps.extend(call.extra_avps);
                let peer = s.peer_id;
                self.queue(t, peer, &iccn);
                self.session_up(t, sid);
            }
            SAction::SendIcrp | SAction::SendOcrpOccn => {
                // Sent by admit_call, never from an existing session.
            }
            SAction::PrepareForData => {
                let Some(s) = t.sessions.get_mut(&sid) else {
                    return;
                };
                if let Some(msg) = msg {
                    fill_connected(&mut s.info, msg);
                }
                self.session_up(t, sid);
            }
            SAction::SendCdn => {
                let reason = match event {
                    SessionEvent::LocalClose if stop.result == CdnResult::Timeout.code() => {
                        SessionDownReason::SetupTimeout
                    }
                    SessionEvent::LocalClose => SessionDownReason::LocalClose {
                        result: stop.result,
                    },
                    _ => {
                        self.stats.out_of_sequence += u64::from(stop.error == 0);
                        protocol_error(stop)
                    }
                };
                self.close_session_now(t, sid, stop, cause, reason);
            }
            SAction::CleanUp => {
                let reason = match msg {
                    Some(m) if m.message_type == MessageType::Cdn => {
                        self.stats.cdn_received += 1;
                        let rc = m.result_code();
                        SessionDownReason::PeerCdn {
                            result: rc.map_or(0, |rc| rc.result),
                            error: rc.and_then(|rc| rc.error.as_ref().map(|e| e.code)),
                            message: rc
                                .and_then(|rc| rc.error.as_ref().map(|e| e.message.clone()))
                                .unwrap_or_default(),
                            q931: m.q931_cause().cloned(),
                            ppp_cause: m.ppp_disconnect_cause().cloned(),
                        }
                    }
                    Some(_) => protocol_error(stop),
                    None => SessionDownReason::LocalClose {
                        result: stop.result,
                    },
                };
                self.remove_session(t, sid, reason);
            }
        }
    }
}

fn protocol_error(stop: Stop) -> SessionDownReason {
    SessionDownReason::ProtocolError {
        result: stop.result,
        error: stop.error,
        message: stop.message,
    }
}

fn framing(value: u32) -> u32 {
    if value == 0 { FramingMask::SYNC } else { value }
}

fn keep_vendor_avps(info: &mut CallInfo, msg: &ControlMessage) {
    info.vendor_avps.extend(
        msg.avps
            .iter()
            .filter(|a| matches!(a, Avp::Unknown { .. }))
            .cloned(),
    );
}

/// Fill the call information from an ICCN or OCCN (§6.8, §6.11, §4.4.5).
fn fill_connected(info: &mut CallInfo, msg: &ControlMessage) {
    info.tx_connect_speed = msg.tx_connect_speed();
    info.rx_connect_speed = msg.rx_connect_speed();
    info.framing_type = msg.framing_type().map(|f| f.0);
    info.private_group_id = msg.private_group_id().map(<[u8]>::to_vec);
    info.sequencing_required = msg.sequencing_required();
    info.initial_received_lcp_confreq = msg.initial_received_lcp_confreq().map(<[u8]>::to_vec);
    info.last_sent_lcp_confreq = msg.last_sent_lcp_confreq().map(<[u8]>::to_vec);
    info.last_received_lcp_confreq = msg.last_received_lcp_confreq().map(<[u8]>::to_vec);
    info.proxy_authen_type = msg.proxy_authen_type().map(|t| t.code());
    info.proxy_authen_name = msg.proxy_authen_name().map(<[u8]>::to_vec);
    info.proxy_authen_challenge = msg.proxy_authen_challenge().map(<[u8]>::to_vec);
    info.proxy_authen_id = msg.proxy_authen_id();
    info.proxy_authen_response = msg.proxy_authen_response().map(<[u8]>::to_vec);
    keep_vendor_avps(info, msg);
}

/// All tunnels and sessions of one UDP socket. See the module documentation.
#[derive(Debug)]
pub struct Endpoint {
    core: Core,
    tunnels: HashMap<TunnelId, Tunnel>,
    /// SCCRQ dedupe: (source, Assigned Tunnel ID value bytes) -> the tunnel it created.
    sccrq_index: HashMap<(SocketAddr, Vec<u8>), TunnelId>,
    /// Tunnels we originated still waiting for SCCRP, by peer address (tie breaker).
    originated: HashMap<IpAddr, Vec<TunnelId>>,
    timers: BinaryHeap<Reverse<(Instant, TunnelId, u64)>>,
    timer_seq: u64,
    /// Tunnels that may have something to transmit.
    tx_list: VecDeque<TunnelId>,
    /// Stateless replies.
    oneshot: VecDeque<Transmit>,
}

impl Endpoint {
    /// An endpoint with no tunnels; `seed` seeds every random choice.
    pub fn new(config: EndpointConfig, seed: u64) -> Self {
        Endpoint {
            core: Core {
                config,
                rng: StdRng::seed_from_u64(seed),
                stats: EndpointStats::default(),
                events: VecDeque::new(),
                closed: Vec::new(),
                session_count: 0,
            },
            tunnels: HashMap::new(),
            sccrq_index: HashMap::new(),
            originated: HashMap::new(),
            timers: BinaryHeap::new(),
            timer_seq: 0,
            tx_list: VecDeque::new(),
            oneshot: VecDeque::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EndpointConfig {
        &self.core.config
    }

    /// Tunnels held (half-open and closing included).
    pub fn tunnel_count(&self) -> usize {
        self.tunnels.len()
    }

    /// Sessions held.
    pub fn session_count(&self) -> usize {
        self.core.session_count
    }

    /// Counters.
    pub fn stats(&self) -> &EndpointStats {
        &self.core.stats
    }

    /// A snapshot of one tunnel.
    pub fn tunnel_info(&self, id: TunnelId) -> Option<TunnelInfo> {
        let t = self.tunnels.get(&id)?;
        Some(TunnelInfo {
            id,
            state: t.state,
            originator: t.originator,
            peer: t.peer,
            peer_tunnel: t.peer_id,
            peer_host_name: t.peer_host_name.clone(),
            sessions: t.sessions.len(),
            transport: t.transport.stats(),
        })
    }

    /// Our tunnel ids, sorted.
    pub fn tunnel_ids(&self) -> Vec<TunnelId> {
        let mut ids: Vec<TunnelId> = self.tunnels.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Whether every tunnel's transport has nothing unacknowledged (or is dead).
    pub fn all_acked(&self) -> bool {
        self.tunnels
            .values()
            .all(|t| t.transport.all_acked() || t.transport.is_dead())
    }

    /// Whether every tunnel's transport is idle: nothing unacknowledged and no
    /// acknowledgement owed to the peer (or the transport is dead). What a shutdown waits
    /// for after `close_tunnel` on every tunnel, rather than the whole §5.7 wait: leaving
    /// earlier would strand the acks of the peer's last messages, and the peer would
    /// retransmit into a closed port.
    pub fn all_idle(&self) -> bool {
        self.tunnels
            .values()
            .all(|t| t.transport.is_idle() || t.transport.is_dead())
    }

    /// The state of a session and its call information.
    pub fn session_info(&self, key: SessionKey) -> Option<(SessionState, &CallInfo)> {
        let s = self.tunnels.get(&key.tunnel)?.sessions.get(&key.session)?;
        Some((s.state, &s.info))
    }

    /// The next event for the shell.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.core.events.pop_front()
    }

    /// The earliest deadline of all tunnels (the heap's top; stale entries are removed
    /// by every mutating call, so this never scans).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers
            .peek()
            .map(|Reverse((deadline, _, _))| *deadline)
    }

    fn new_transport(&mut self, params: &TunnelParams, initial_nr: Option<u16>) -> Transport {
        let mut config = self.core.config.transport.clone();
        config.rws_local = params.receive_window.max(1);
        if let Some(nr) = initial_nr {
            config.initial_nr = nr;
        }
        Transport::new(config)
    }

    fn alloc_tunnel_id(&mut self) -> Option<TunnelId> {
        for _ in 0..64 {
            let id: u16 = self.core.rng.random();
            if id != 0 && !self.tunnels.contains_key(&id) {
                return Some(id);
            }
        }
        (1..=u16::MAX).find(|id| !self.tunnels.contains_key(id))
    }

    #[allow(clippy::too_many_arguments)]
    fn new_tunnel(
        &mut self,
        now: Instant,
        id: TunnelId,
        peer: SocketAddr,
        originator: Originator,
        params: TunnelParams,
        initial_nr: Option<u16>,
        admitted: bool,
    ) -> Tunnel {
        let transport = self.new_transport(&params, initial_nr);
        let next_session = self.core.rng.random();
        Tunnel {
            id,
            peer,
            peer_id: 0,
            state: TunnelState::Idle,
            originator,
            params,
            transport,
            sessions: HashMap::new(),
            session_deadlines: Default::default(),
            peer_host_name: Vec::new(),
            our_challenge: None,
            our_tie_breaker: None,
            sccrq_key: None,
            created: now,
            setup_deadline: now + self.core.config.setup_timeout,
            last_activity: now,
            closing_until: None,
            hello_outstanding: false,
            admitted,
            up_reported: false,
            timer_generation: 0,
            timer_deadline: None,
            in_tx_list: false,
            next_session,
            next_call_serial: 0,
        }
    }

    /// Open a control connection to `peer` (sends SCCRQ, §7.2.1 idle / local open).
    pub fn open_tunnel(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        params: TunnelParams,
    ) -> Result<TunnelId, EndpointError> {
        if self.tunnels.len() >= self.core.config.max_tunnels {
            return Err(EndpointError::TooManyTunnels);
        }
        let id = self.alloc_tunnel_id().ok_or(EndpointError::NoFreeId)?;
        let mut t = self.new_tunnel(now, id, peer, Originator::Local, params, None, false);
        let fate = self.core.tunnel_event(
            &mut t,
            now,
            TunnelEvent::LocalOpen,
            None,
            FSM_ERROR,
            TunnelDownReason::LocalClose { result: 1 },
        );
        debug_assert_eq!(fate, Fate::Keep);
        self.originated.entry(peer.ip()).or_default().push(id);
        self.tunnels.insert(id, t);
        self.touch(id);
        self.maintain();
        Ok(id)
    }

    /// Open a session: at the LAC an incoming call (ICRQ, §7.4.1), at the LNS an outgoing
    /// call (OCRQ, §7.5.2). Sent once the tunnel is established.
    pub fn open_session(
        &mut self,
        now: Instant,
        tunnel: TunnelId,
        call: OutgoingCall,
    ) -> Result<SessionKey, EndpointError> {
        let t = self
            .tunnels
            .get_mut(&tunnel)
            .ok_or(EndpointError::UnknownTunnel)?;
        if matches!(t.state, TunnelState::Closing | TunnelState::Idle) {
            return Err(EndpointError::TunnelClosing);
        }
        if t.sessions.len() >= usize::from(t.params.max_sessions) {
            return Err(EndpointError::TooManySessions);
        }
        let sid = self
            .core
            .alloc_session(t)
            .ok_or(EndpointError::TooManySessions)?;
        let kind = match self.core.config.role {
            Role::Lac => CallKind::LacIncoming,
            Role::Lns => CallKind::LnsOutgoing,
        };
        let deadline = now + self.core.config.setup_timeout;
        t.session_deadlines.insert((deadline, sid));
        let info = CallInfo {
            calling_number: call.calling_number.clone(),
            called_number: call.called_number.clone(),
            sub_address: call.sub_address.clone(),
            ..CallInfo::default()
        };
        t.sessions.insert(
            sid,
            Box::new(Session {
                id: sid,
                peer_id: 0,
                kind,
                state: SessionState::WaitTunnel,
                setup_deadline: Some(deadline),
                admitted: false,
                info,
                call: Some(call),
                accm: None,
                send_sequence: false,
                data_ns: Cell::new(0),
                wen_count: 0,
            }),
        );
        self.core.session_count += 1;
        if t.state == TunnelState::Established {
            self.core
                .session_event(t, now, sid, SessionEvent::TunnelOpen, None, FSM_ERROR, None);
        }
        self.touch(tunnel);
        self.maintain();
        Ok(SessionKey {
            tunnel,
            session: sid,
        })
    }

    /// Close a session with a CDN carrying `result` and the RFC 3145 cause (§5.6).
    pub fn close_session(
        &mut self,
        now: Instant,
        key: SessionKey,
        result: u16,
        cause: Option<PppDisconnectCause>,
    ) {
        let Some(t) = self.tunnels.get_mut(&key.tunnel) else {
            return;
        };
        if t.sessions.contains_key(&key.session) {
            let stop = Stop::new(result, 0, "");
            self.core.session_event(
                t,
                now,
                key.session,
                SessionEvent::LocalClose,
                None,
                stop,
                cause,
            );
        }
        self.touch(key.tunnel);
        self.maintain();
    }

    /// Close a tunnel with a StopCCN carrying `result` (§5.7); its state is kept for
    /// `stopccn_wait`.
    pub fn close_tunnel(&mut self, now: Instant, tunnel: TunnelId, result: u16) {
        let Some(mut t) = self.tunnels.remove(&tunnel) else {
            return;
        };
        let fate = self.core.tunnel_event(
            &mut t,
            now,
            TunnelEvent::AdminClose,
            None,
            Stop::new(result, 0, ""),
            TunnelDownReason::LocalClose { result },
        );
        self.put_back(t, fate);
        self.maintain();
    }

    /// Encapsulate one PPP frame as a data message for an established session (§5.3):
    /// no Length, no Offset; sequence numbers only when sequencing was required (§5.4).
    pub fn encapsulate(&self, key: SessionKey, ppp: &[u8]) -> Option<Transmit> {
        let mut tx = self.data_message(key, ppp.len())?;
        tx.payload.extend_from_slice(ppp);
        Some(tx)
    }

    /// Encapsulate one PPP packet, `payload` of `protocol`, as [`Endpoint::encapsulate`]
    /// does, in the PPP header of [`ppp_frame`].
    pub fn encapsulate_ppp(
        &self,
        key: SessionKey,
        protocol: u16,
        payload: &[u8],
    ) -> Option<Transmit> {
        let header = PppHeaderRepr::for_sending(protocol, false, false);
        let mut tx = self.data_message(key, header.buffer_len() + payload.len())?;
        push_ppp_frame(&mut tx.payload, header, payload);
        Some(tx)
    }

    /// The L2TP header of a data message of `len` bytes for `key`, addressed to its peer;
    /// `None` unless the session and its tunnel are established.
    fn data_message(&self, key: SessionKey, len: usize) -> Option<Transmit> {
        let t = self.tunnels.get(&key.tunnel)?;
        let s = t.sessions.get(&key.session)?;
        if s.state != SessionState::Established || t.state != TunnelState::Established {
            return None;
        }
        let sequence = s.send_sequence.then(|| {
            let ns = s.data_ns.get();
            s.data_ns.set(ns.wrapping_add(1));
            Sequence { ns, nr: 0 }
        });
        let header = HeaderRepr {
            tunnel_id: t.peer_id,
            session_id: s.peer_id,
            kind: HeaderKind::Data {
                length: false,
                sequence,
                offset_size: None,
                priority: false,
            },
        };
        let mut payload = Vec::with_capacity(header.buffer_len() + len);
        payload.resize(header.buffer_len(), 0);
        header.emit(&mut Packet::new_unchecked(&mut payload[..]), len);
        Some(Transmit {
            peer: t.peer,
            payload,
        })
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        if let Some(tx) = self.oneshot.pop_front() {
            return Some(tx);
        }
        while let Some(&id) = self.tx_list.front() {
            let Some(t) = self.tunnels.get_mut(&id) else {
                self.tx_list.pop_front();
                continue;
            };
            let peer_id = t.peer_id;
            let peer = t.peer;
            let out = t.transport.poll_transmit(now).map(|tx| match tx.body {
                None => frame(peer_id, 0, tx.ns, tx.nr, &[]),
                Some(body) => {
                    let (sid, rest) = body.split_at(2.min(body.len()));
                    let sid = match sid {
                        [a, b] => u16::from_be_bytes([*a, *b]),
                        _ => 0,
                    };
                    frame(peer_id, sid, tx.ns, tx.nr, rest)
                }
            });
            match out {
                Some(Ok(payload)) => return Some(Transmit { peer, payload }),
                Some(Err(_)) => continue,
                None => {
                    t.in_tx_list = false;
                    self.tx_list.pop_front();
                    self.schedule(id);
                }
            }
        }
        self.prune_timers();
        None
    }

    /// Process timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant, gate: &mut dyn Gatekeeper) {
        self.flush_closed(gate);
        let mut due = Vec::new();
        while let Some(&Reverse((deadline, id, generation))) = self.timers.peek() {
            if deadline > now {
                break;
            }
            self.timers.pop();
            if let Some(t) = self.tunnels.get_mut(&id)
                && t.timer_generation == generation
            {
                t.timer_deadline = None;
                due.push(id);
            }
        }
        for id in due {
            self.tunnel_timeout(id, now);
        }
        self.flush_closed(gate);
        self.maintain();
    }

    fn tunnel_timeout(&mut self, id: TunnelId, now: Instant) {
        let Some(mut t) = self.tunnels.remove(&id) else {
            return;
        };
        t.transport.handle_timeout(now);
        let fate = self.tunnel_timers(&mut t, now);
        self.put_back(t, fate);
    }

    fn tunnel_timers(&mut self, t: &mut Tunnel, now: Instant) -> Fate {
        let core = &mut self.core;
        if t.transport.is_dead() {
            let reason = if t.hello_outstanding {
                TunnelDownReason::HelloTimeout
            } else {
                TunnelDownReason::PeerDead
            };
            if t.state != TunnelState::Closing {
                core.stats.peers_dead += 1;
            }
            return core.tunnel_event(t, now, TunnelEvent::Dead, None, FSM_ERROR, reason);
        }
        match t.state {
            TunnelState::Closing => {
                if t.closing_until.is_none_or(|until| until <= now) {
                    return core.tunnel_event(
                        t,
                        now,
                        TunnelEvent::WaitOver,
                        None,
                        FSM_ERROR,
                        TunnelDownReason::PeerDead,
                    );
                }
            }
            TunnelState::WaitCtlReply | TunnelState::WaitCtlConn | TunnelState::Idle => {
                if t.setup_deadline <= now {
                    core.stats.tunnel_setup_timeouts += 1;
                    return core.tunnel_event(
                        t,
                        now,
                        TunnelEvent::SetupTimeout,
                        None,
                        FSM_ERROR,
                        TunnelDownReason::SetupTimeout,
                    );
                }
            }
            TunnelState::Established => {
                if t.hello_outstanding && t.transport.all_acked() {
                    t.hello_outstanding = false;
                }
                // RFC 2661 §5.5: a HELLO after hello_interval without anything received;
                // with messages outstanding the retransmissions already probe the peer.
                let hello = t.params.hello_interval;
                if !hello.is_zero() && now >= t.last_activity + hello && t.transport.all_acked() {
                    core.stats.hellos_sent += 1;
                    t.hello_outstanding = true;
                    t.last_activity = now;
                    core.queue(t, 0, &ControlMessage::new(MessageType::Hello));
                }
                // Session setup expiry.
                while let Some(&(deadline, sid)) = t.session_deadlines.first() {
                    if deadline > now {
                        break;
                    }
                    t.session_deadlines.pop_first();
                    let Some(s) = t.sessions.get_mut(&sid) else {
                        continue;
                    };
                    s.setup_deadline = None;
                    if s.state == SessionState::Established {
                        continue;
                    }
                    core.stats.session_setup_timeouts += 1;
                    let stop = Stop::new(CdnResult::Timeout.code(), 0, "");
                    core.session_event(t, now, sid, SessionEvent::LocalClose, None, stop, None);
                }
            }
        }
        Fate::Keep
    }

    /// Handle one received UDP payload from `peer`.
    pub fn handle_datagram<'a>(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        datagram: &'a [u8],
        gate: &mut dyn Gatekeeper,
    ) -> Option<DataMessage<'a>> {
        self.flush_closed(gate);
        self.core.stats.datagrams += 1;
        let packet = match Packet::new_checked(datagram) {
            Ok(packet) => packet,
            Err(_) => {
                self.core.stats.malformed_header += 1;
                return None;
            }
        };
        let header = match HeaderRepr::parse(&packet) {
            Ok(header) => header,
            Err(_) => {
                self.core.stats.malformed_header += 1;
                return None;
            }
        };
        let payload = packet.payload();
        let data = match header.kind {
            HeaderKind::Data { sequence, .. } => {
                self.handle_data(now, peer, header, sequence, payload)
            }
            HeaderKind::Control(seq) => {
                self.handle_control(now, peer, header, seq, payload, gate);
                None
            }
        };
        self.flush_closed(gate);
        self.maintain();
        data
    }

    fn handle_data<'a>(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        header: HeaderRepr,
        sequence: Option<Sequence>,
        payload: &'a [u8],
    ) -> Option<DataMessage<'a>> {
        let stats = &mut self.core.stats;
        stats.data_messages += 1;
        let Some(t) = self.tunnels.get_mut(&header.tunnel_id) else {
            stats.unknown_tunnel_data += 1;
            return None;
        };
        if t.peer.ip() != peer.ip() {
            stats.data_wrong_peer += 1;
            return None;
        }
        let established = t.state == TunnelState::Established
            && t.sessions
                .get(&header.session_id)
                .is_some_and(|s| s.state == SessionState::Established);
        if !established {
            stats.unknown_session_data += 1;
            return None;
        }
        // §5.5: data counts as activity; the HELLO timer notices when it fires.
        t.last_activity = now;
        Some(DataMessage {
            key: SessionKey {
                tunnel: header.tunnel_id,
                session: header.session_id,
            },
            ns: sequence.map(|s| s.ns),
            payload,
        })
    }

    /// A stateless StopCCN to a peer we hold no tunnel for (§7.2.1 idle rows).
    fn oneshot_stopccn(&mut self, peer: SocketAddr, peer_tunnel: u16, ns: u16, stop: Stop) {
        if self.oneshot.len() >= MAX_ONESHOT {
            self.core.stats.oneshot_dropped += 1;
            return;
        }
        let msg = ControlMessage::new(MessageType::StopCcn)
            .with(Avp::AssignedTunnelId(0))
            .with(Avp::ResultCode(stop.result_code()));
        let Ok(body) = msg.to_bytes(None) else {
            return;
        };
        if let Ok(payload) = frame(peer_tunnel, 0, 0, ns.wrapping_add(1), &body) {
            self.core.stats.stopccn_sent[stop_index(stop.result)] += 1;
            self.oneshot.push_back(Transmit { peer, payload });
        }
    }

    fn handle_control(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        header: HeaderRepr,
        seq: Sequence,
        payload: &[u8],
        gate: &mut dyn Gatekeeper,
    ) {
        if payload.is_empty() {
            self.core.stats.zlb_received += 1;
        } else {
            self.core.stats.control_messages += 1;
        }
        let id = if header.tunnel_id == 0 {
            // RFC 2661 §3.1: tunnel id 0 only for an SCCRQ (its sender knows no id yet).
            if peek_type(payload) != Some(MessageType::Sccrq.code()) {
                self.core.stats.unknown_tunnel += 1;
                return;
            }
            match self.handle_sccrq(now, peer, seq, payload, gate) {
                Some(id) => id,
                None => return,
            }
        } else {
            header.tunnel_id
        };
        let Some(mut t) = self.tunnels.remove(&id) else {
            self.core.stats.unknown_tunnel += 1;
            // §7.2.1: idle, Receive SCCRP -> Send StopCCN.
            if peek_type(payload) == Some(MessageType::Sccrp.code()) {
                let assigned = scan_sccrq(payload).assigned;
                if let Some(peer_tunnel) = assigned.filter(|&a| a != 0) {
                    self.oneshot_stopccn(peer, peer_tunnel, seq.ns, FSM_ERROR);
                }
            }
            return;
        };
        let fate = self.control_for_tunnel(&mut t, now, peer, header, seq, payload, gate);
        self.put_back(t, fate);
    }

    #[allow(clippy::too_many_arguments)]
    fn control_for_tunnel(
        &mut self,
        t: &mut Tunnel,
        now: Instant,
        peer: SocketAddr,
        header: HeaderRepr,
        seq: Sequence,
        payload: &[u8],
        gate: &mut dyn Gatekeeper,
    ) -> Fate {
        if peer != t.peer {
            // A peer behind NAT may change its source port: follow the last valid
            // control message.
            tracing::info!(tunnel = t.id, old = %t.peer, new = %peer, "L2TP peer address changed");
            self.core.stats.peer_address_changes += 1;
            t.peer = peer;
        }
        t.last_activity = now;
        let body = (!payload.is_empty()).then(|| {
            let mut body = Vec::with_capacity(payload.len() + 2);
            body.extend_from_slice(&header.session_id.to_be_bytes());
            body.extend_from_slice(payload);
            body
        });
        t.transport.handle_received(now, seq.ns, seq.nr, body);
        if t.hello_outstanding && t.transport.all_acked() {
            t.hello_outstanding = false;
        }
        while let Some(delivered) = t.transport.poll_delivered() {
            let (sid, body) = delivered.body.split_at(2.min(delivered.body.len()));
            let sid = match sid {
                [a, b] => u16::from_be_bytes([*a, *b]),
                _ => 0,
            };
            if self.on_delivered(t, now, sid, body, gate) == Fate::Free {
                return Fate::Free;
            }
        }
        Fate::Keep
    }

    fn on_delivered(
        &mut self,
        t: &mut Tunnel,
        now: Instant,
        header_session: u16,
        body: &[u8],
        gate: &mut dyn Gatekeeper,
    ) -> Fate {
        let core = &mut self.core;
        let msg = match ControlMessage::parse(body, t.params.secret.as_deref()) {
            Ok(msg) => msg,
            Err(MessageError::UnknownMessageType {
                mandatory: false, ..
            }) => {
                // §4.4.1: an unknown Message Type without the M bit may be ignored.
                core.stats.unknown_message_type += 1;
                return Fate::Keep;
            }
            Err(error) => {
                match error {
                    MessageError::UnknownMessageType { .. } => core.stats.unknown_message_type += 1,
                    MessageError::HiddenWithoutSecret { .. }
                    | MessageError::HiddenWithoutRandomVector { .. }
                    | MessageError::BadHiddenValue { .. } => core.stats.malformed_hidden += 1,
                    _ => core.stats.malformed_message += 1,
                }
                // §7.1: an invalid or malformed message clears what it belongs to.
                let stop = Stop::new(GENERAL, BAD_VALUE, "malformed control message");
                let scope = peek_type(body)
                    .and_then(MessageType::from_code)
                    .map(MessageType::scope);
                if scope == Some(Scope::Session)
                    && t.state == TunnelState::Established
                    && t.sessions.contains_key(&header_session)
                {
                    core.close_session_now(t, header_session, stop, None, protocol_error(stop));
                    return Fate::Keep;
                }
                let event = match t.state {
                    TunnelState::Idle => TunnelEvent::Sccrq { acceptable: false },
                    _ => TunnelEvent::AdminClose,
                };
                return core.tunnel_event(t, now, event, None, stop, Core::reason_for(stop));
            }
        };
        match msg.message_type.scope() {
            Scope::Tunnel => {
                // §4.2: an unknown M-bit AVP in a tunnel message clears the tunnel.
                if msg.unknown_mandatory().is_some() && t.state != TunnelState::Closing {
                    core.stats.unknown_mandatory_avp += 1;
                    let stop = Stop::new(GENERAL, UNKNOWN_M_AVP, "unknown mandatory AVP");
                    let event = match (t.state, msg.message_type) {
                        (TunnelState::Idle, _) => TunnelEvent::Sccrq { acceptable: false },
                        (_, MessageType::StopCcn) => TunnelEvent::StopCcn,
                        _ => TunnelEvent::AdminClose,
                    };
                    let reason = Core::reason_for(stop);
                    return core.tunnel_event(t, now, event, Some(&msg), stop, reason);
                }
                core.on_tunnel_message(t, now, &msg)
            }
            Scope::Session => core.on_session_message(t, now, header_session, &msg, gate),
        }
    }

    /// An SCCRQ to tunnel 0: the tunnel it belongs to (existing or new), or `None` when
    /// it was answered without state or dropped.
    fn handle_sccrq(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        seq: Sequence,
        payload: &[u8],
        gate: &mut dyn Gatekeeper,
    ) -> Option<TunnelId> {
        let stats = &mut self.core.stats;
        stats.sccrq_received += 1;
        let scan = scan_sccrq(payload);
        let raw = scan.assigned_raw.unwrap_or(&[]).to_vec();
        if let Some(&id) = self.sccrq_index.get(&(peer, raw.clone())) {
            // RFC 2661 §5.8: a retransmission; the tunnel's transport acks it again.
            stats.sccrq_retransmitted += 1;
            return Some(id);
        }
        let peer_tunnel = scan.assigned.unwrap_or(0);
        // RFC 2661 §4.4.3 Tie Breaker: an SCCRQ from a peer we sent one to.
        if let Some(&ours) = self.originated.get(&peer.ip()).and_then(|ids| ids.first()) {
            let our_tie = self.tunnels.get(&ours).and_then(|t| t.our_tie_breaker);
            match tie_break(our_tie, scan.tie_breaker) {
                Tie::Win => {
                    self.core.stats.tie_breaker_wins += 1;
                    return None;
                }
                tie @ (Tie::Lose | Tie::Both) => {
                    self.core.stats.tie_breaker_losses += 1;
                    if let Some(mut t) = self.tunnels.remove(&ours) {
                        let fate = self.core.tunnel_event(
                            &mut t,
                            now,
                            TunnelEvent::SccrqCollision(tie),
                            None,
                            FSM_ERROR,
                            TunnelDownReason::LostTieBreaker,
                        );
                        self.put_back(t, fate);
                    }
                    if tie == Tie::Both {
                        return None;
                    }
                }
                Tie::None => {}
            }
        }
        if self.tunnels.len() >= self.core.config.max_tunnels {
            self.core.stats.tunnels_over_limit += 1;
            let stop = Stop::new(
                GENERAL,
                GeneralError::InsufficientResources.code(),
                "tunnel limit",
            );
            if peer_tunnel != 0 {
                self.oneshot_stopccn(peer, peer_tunnel, seq.ns, stop);
            }
            return None;
        }
        let Some(host_name) = scan.host_name else {
            self.core.stats.invalid_message += 1;
            if peer_tunnel != 0 {
                let stop = Stop::new(GENERAL, BAD_VALUE, "SCCRQ without Host Name");
                self.oneshot_stopccn(peer, peer_tunnel, seq.ns, stop);
            }
            return None;
        };
        let id = self.alloc_tunnel_id()?;
        let request = TunnelRequest {
            tunnel: id,
            peer,
            host_name,
            vendor_name: scan.vendor_name,
            has_challenge: scan.challenge,
        };
        let params = match gate.admit_tunnel(now, &request) {
            TunnelDecision::Accept(params) => params,
            TunnelDecision::Reject {
                result,
                error,
                message,
            } => {
                self.core.stats.tunnels_rejected += 1;
                if result == StopCcnResult::NotAuthorized.code() {
                    self.core.stats.auth_failures += 1;
                }
                if peer_tunnel != 0 {
                    self.oneshot_stopccn(
                        peer,
                        peer_tunnel,
                        seq.ns,
                        Stop::new(result, error, message),
                    );
                }
                return None;
            }
        };
        // The peer's first Ns starts our receive sequence (0 per §5.8).
        let mut t = self.new_tunnel(now, id, peer, Originator::Peer, params, Some(seq.ns), true);
        t.peer_id = peer_tunnel;
        t.sccrq_key = Some((peer, raw.clone()));
        self.sccrq_index.insert((peer, raw), id);
        self.tunnels.insert(id, t);
        Some(id)
    }

    /// Put a tunnel back in the map (or free it) after an input, and keep the indices
    /// and timers in step.
    fn put_back(&mut self, t: Tunnel, fate: Fate) {
        let id = t.id;
        if t.state != TunnelState::WaitCtlReply
            && let Some(ids) = self.originated.get_mut(&t.peer.ip())
        {
            ids.retain(|&x| x != id);
            if ids.is_empty() {
                self.originated.remove(&t.peer.ip());
            }
        }
        if fate == Fate::Free || t.state == TunnelState::Idle {
            if let Some(key) = &t.sccrq_key {
                self.sccrq_index.remove(key);
            }
            // Sessions left (a tunnel freed without going down first) are reported.
            let mut t = t;
            if !t.sessions.is_empty() || t.admitted {
                self.core.tunnel_down(&mut t, TunnelDownReason::PeerDead);
            }
            self.core.stats.tunnels_freed += 1;
            return;
        }
        self.tunnels.insert(id, t);
        self.touch(id);
    }

    /// Mark a tunnel as having output and reschedule its timer.
    fn touch(&mut self, id: TunnelId) {
        if let Some(t) = self.tunnels.get_mut(&id)
            && !t.in_tx_list
        {
            t.in_tx_list = true;
            self.tx_list.push_back(id);
        }
        self.schedule(id);
    }

    /// The tunnel's next deadline.
    fn deadline(&self, t: &Tunnel) -> Option<Instant> {
        let mut deadline = t.transport.poll_timeout();
        let mut consider = |d: Option<Instant>| {
            if let Some(d) = d {
                deadline = Some(deadline.map_or(d, |x| x.min(d)));
            }
        };
        match t.state {
            TunnelState::Idle | TunnelState::WaitCtlReply | TunnelState::WaitCtlConn => {
                consider(Some(t.setup_deadline))
            }
            TunnelState::Established => {
                // With messages outstanding the retransmission timer probes the peer
                // (and a HELLO deadline in the past would fire without progress).
                if !t.params.hello_interval.is_zero() && t.transport.all_acked() {
                    consider(Some(t.last_activity + t.params.hello_interval));
                }
                consider(t.session_deadlines.first().map(|&(d, _)| d));
            }
            TunnelState::Closing => consider(t.closing_until),
        }
        if t.transport.is_dead() {
            // Handled at the next timeout: now-ish.
            consider(Some(t.created));
        }
        deadline
    }

    /// Push a heap entry when the tunnel's deadline moved earlier (or it had none). A
    /// later deadline keeps the earlier entry: it fires early, finds nothing due and
    /// reschedules, which keeps the heap small.
    fn schedule(&mut self, id: TunnelId) {
        let Some(t) = self.tunnels.get(&id) else {
            return;
        };
        let Some(deadline) = self.deadline(t) else {
            return;
        };
        if t.timer_deadline.is_some_and(|current| current <= deadline) {
            return;
        }
        self.timer_seq += 1;
        let generation = self.timer_seq;
        if let Some(t) = self.tunnels.get_mut(&id) {
            t.timer_generation = generation;
            t.timer_deadline = Some(deadline);
        }
        self.timers.push(Reverse((deadline, id, generation)));
    }

    fn prune_timers(&mut self) {
        while let Some(&Reverse((_, id, generation))) = self.timers.peek() {
            if self
                .tunnels
                .get(&id)
                .is_some_and(|t| t.timer_generation == generation)
            {
                break;
            }
            self.timers.pop();
        }
        if self.timers.len() > 2 * self.tunnels.len() + 64 {
            let tunnels = &self.tunnels;
            self.timers.retain(|Reverse((_, id, g))| {
                tunnels.get(id).is_some_and(|t| t.timer_generation == *g)
            });
        }
    }

    /// Re-arm timers of tunnels whose entry fired, prune the heap.
    fn maintain(&mut self) {
        let ids: Vec<TunnelId> = self
            .tx_list
            .iter()
            .copied()
            .filter(|id| {
                self.tunnels
                    .get(id)
                    .is_some_and(|t| t.timer_deadline.is_none())
            })
            .collect();
        for id in ids {
            self.schedule(id);
        }
        self.prune_timers();
    }

    fn flush_closed(&mut self, gate: &mut dyn Gatekeeper) {
        for closed in self.core.closed.drain(..) {
            match closed {
                Closed::Tunnel(id) => gate.tunnel_closed(id),
                Closed::Session(key) => gate.session_closed(key),
            }
        }
    }
}

/// One PPP frame as an L2TP data message carries it from us: Address/Control `ff 03` and
/// a two-octet Protocol, which every peer accepts whatever ACFC/PFC were negotiated
/// (RFC 1661 §6.5, §6.6: compression is permitted, never required), then `payload`.
pub fn ppp_frame(protocol: u16, payload: &[u8]) -> Vec<u8> {
    let header = PppHeaderRepr::for_sending(protocol, false, false);
    let mut frame = Vec::with_capacity(header.buffer_len() + payload.len());
    push_ppp_frame(&mut frame, header, payload);
    frame
}

fn push_ppp_frame(out: &mut Vec<u8>, header: PppHeaderRepr, payload: &[u8]) {
    let at = out.len();
    out.resize(at + header.buffer_len(), 0);
    header.emit(&mut out[at..]);
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use std::net::{Ipv4Addr, SocketAddr};
    use std::time::Instant;

    use super::*;

    /// A LAC and an LNS with one established call: (lac, lns, the LAC's key, the LNS's).
    fn established() -> (Endpoint, Endpoint, SessionKey, SessionKey) {
        let lac_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 1701));
        let lns_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 1702));
        let mut lac = Endpoint::new(
            EndpointConfig {
                role: Role::Lac,
                ..EndpointConfig::default()
            },
            1,
        );
        let mut lns = Endpoint::new(EndpointConfig::default(), 2);
        let now = Instant::now();
        let params = TunnelParams::from_config(&EndpointConfig::default());
        let tunnel = lac.open_tunnel(now, lns_addr, params).unwrap();
        lac.open_session(now, tunnel, OutgoingCall::default())
            .unwrap();
        let (mut lac_key, mut lns_key) = (None, None);
        for _ in 0..20 {
            while let Some(tx) = lac.poll_transmit(now) {
                lns.handle_datagram(now, lac_addr, &tx.payload, &mut AcceptAll);
            }
            while let Some(tx) = lns.poll_transmit(now) {
                lac.handle_datagram(now, lns_addr, &tx.payload, &mut AcceptAll);
            }
            while let Some(event) = lac.poll_event() {
                if let Event::SessionUp { key, .. } = event {
                    lac_key = Some(key);
                }
            }
            while let Some(event) = lns.poll_event() {
                if let Event::SessionUp { key, .. } = event {
                    lns_key = Some(key);
                }
            }
            if let (Some(a), Some(b)) = (lac_key, lns_key) {
                return (lac, lns, a, b);
            }
        }
        panic!("the call did not come up");
    }

    #[test]
    fn encapsulate_ppp_writes_the_l2tp_and_ppp_headers() {
        let (lac, mut lns, key, lns_key) = established();
        let [t0, t1] = lns_key.tunnel.to_be_bytes();
        let [s0, s1] = lns_key.session.to_be_bytes();
        let lcp = lac.encapsulate_ppp(key, 0xC021, &[9, 1, 0, 4]).unwrap();
        assert_eq!(lcp.peer, SocketAddr::from((Ipv4Addr::LOCALHOST, 1702)));
        // T=0, L=0, S=0, O=0, Ver 2 (RFC 2661 §3.1); the LNS's ids; FF 03 C0 21.
        assert_eq!(
            lcp.payload,
            [
                0x00, 0x02, t0, t1, s0, s1, 0xFF, 0x03, 0xC0, 0x21, 9, 1, 0, 4
            ]
        );
        let ip = lac.encapsulate_ppp(key, 0x0021, &[0x45]).unwrap();
        assert_eq!(
            ip.payload,
            [0x00, 0x02, t0, t1, s0, s1, 0xFF, 0x03, 0x00, 0x21, 0x45]
        );
        assert_eq!(
            Some(ip.clone()),
            lac.encapsulate(key, &ppp_frame(0x0021, &[0x45]))
        );
        let data = lns
            .handle_datagram(
                Instant::now(),
                SocketAddr::from((Ipv4Addr::LOCALHOST, 1701)),
                &ip.payload,
                &mut AcceptAll,
            )
            .unwrap();
        assert_eq!(data.key, lns_key);
        assert_eq!(data.payload, [0xFF, 0x03, 0x00, 0x21, 0x45]);
        let unknown = SessionKey {
            tunnel: key.tunnel,
            session: key.session.wrapping_add(1),
        };
        assert_eq!(lac.encapsulate_ppp(unknown, 0x0021, &[0x45]), None);
    }

    #[test]
    fn ppp_frame_keeps_address_control_and_the_full_protocol() {
        assert_eq!(ppp_frame(0xC021, &[1]), [0xFF, 0x03, 0xC0, 0x21, 1]);
        assert_eq!(ppp_frame(0x0021, &[]), [0xFF, 0x03, 0x00, 0x21]);
        assert_eq!(ppp_frame(0x8057, &[6]), [0xFF, 0x03, 0x80, 0x57, 6]);
    }
}

//! The Dynamic Authorization server of RFC 5176 (Disconnect-Request, CoA-Request), sans-IO:
//! [`Server::handle`] takes a datagram, its source and the time and says what to do with
//! it ([`Received`]); [`Server::answer`] turns the control task's [`Verdict`] on a request
//! into the signed ACK or NAK. No socket, no clock read, no session state: the shell finds
//! the sessions a [`Selector`] matches and applies the [`Change`].
//!
//! # Contract
//!
//! In the order the checks are made; every discarded datagram is counted by
//! [`IgnoreReason`], every answer by (kind, Error-Cause):
//!
//! 1. A datagram that is not a RADIUS packet, or whose Code is not Disconnect-Request (40)
//!    or CoA-Request (43), is silently discarded (RFC 5176 §2.3).
//! 2. The source address must lie in a configured client's prefix (first match in
//!    configuration order); otherwise the datagram is discarded unanswered.
//! 3. Duplicate detection (RFC 5176 §2.3): a request from the same source address and
//!    port with the same Identifier and the same content (MD5 of the packet) as one seen
//!    within the window is answered with the answer already sent, and not applied again;
//!    while the first is still being applied, the retransmission is discarded (the answer
//!    goes out once it is decided). A different content under the same Identifier is a
//!    new request.
//! 4. The Request Authenticator (RFC 5176 §2.3, computed as for an Accounting-Request,
//!    RFC 2866 §3) must verify with the client's secret, and a Message-Authenticator, when
//!    present, too (RFC 5176 §3.4: "MUST ... silently discard the packet if it does not
//!    match"). A Message-Authenticator is also **required** unless the client's
//!    `require_message_authenticator` is off: the BlastRADIUS attack (CVE-2024-3596,
//!    Goldberg et al., "RADIUS/UDP Considered Harmful", USENIX Security 2024) forges
//!    packets whose only integrity check is the MD5 authenticator over attacker-influenced
//!    content; the HMAC-MD5 Message-Authenticator is not affected, and
//!    draft-ietf-radext-deprecating-radius asks for it on every packet. A CoA-Request is
//!    not the attack's published target (Access-Request / Access-Accept is), but requiring
//!    it costs a modern Dynamic Authorization Client nothing (`radclient` adds one when
//!    the request lists `Message-Authenticator = 0x00`) and closes the question. Every
//!    answer we send carries one.
//! 5. Replay protection (RFC 5176 §6.3): an Event-Timestamp, when present, must be within
//!    the window of our clock or the request is silently discarded; with
//!    `require_event_timestamp`, a request without one is discarded too. The duplicate
//!    window is the same window, as §6.3 requires.
//! 6. The attributes ([`parse_request`]); a request we cannot honour is answered with a
//!    NAK and an Error-Cause (RFC 5176 §3.5), see [`ErrorCause`]:
//!    * NAS identification (§3): NAS-Identifier, NAS-IP-Address and NAS-IPv6-Address, when
//!      present, must be ours ([`NasIdentity`]), else 403.
//!    * Session identification (§3): Acct-Session-Id, User-Name, Framed-IP-Address,
//!      NAS-Port, Calling-Station-Id, Called-Station-Id; every one present must match
//!      ([`Selector::matches`]); none present: 402. Other identification attributes
//!      (Acct-Multi-Session-Id, NAS-Port-Id, Chargeable-User-Identity,
//!      Framed-IPv6-Prefix, Framed-Interface-Id, identifying VSAs) are not tracked: 401.
//!    * Disconnect-Request: besides identification only Proxy-State, Reply-Message (not
//!      shown), Class (kept for the Stop record, §3.6 Note 4), Acct-Terminate-Cause
//!      (ignored), Event-Timestamp and Message-Authenticator; anything else 401 (§3).
//!    * CoA-Request: Session-Timeout and Idle-Timeout (0 removes the limit), Class,
//!      Filter-Id, Mikrotik-Rate-Limit (14988/8) and WISPr-Bandwidth-Max-Up/Down
//!      (14122/7, 8) are the authorization changes ([`Change`]; omitted ones stay as they
//!      are, §3.6 Note 3); the last three are stored as [`RateLimits`] for the shaping
//!      issue, not enforced yet. Service-Type other than Framed: 405 ("Authorize Only" is
//!      not supported, §3.2). State is echoed (§3.3). Anything else 401.
//!    * An attribute of the wrong size: 404; the same single-instance attribute twice: 404;
//!      an empty Filter-Id or rate value: 407.
//! 7. Otherwise the request is handed to the caller ([`Received::Apply`]), which answers
//!    with [`Server::answer`]: `Ok` gives the ACK, `Err(503)` when no session matched
//!    (every matching session is acted on, §3), `Err(506)` when the control task could
//!    not take it.
//!
//! Answers echo every Proxy-State in order (§3.1) and carry a Message-Authenticator
//! (§3.4) before the Response Authenticator (§2.3).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use md5::{Digest, Md5};

use super::wire::{self, AUTHENTICATOR_LEN, Attribute, Code, Packet, Repr, attr};

/// The Dynamic Authorization server port (RFC 5176 §2.3).
pub const PORT: u16 = 3799;
/// Answers kept for duplicate detection at most (oldest evicted first).
pub const MAX_CACHED: usize = 4096;

/// Attribute types of RFC 5176 requests that [`wire::attr`] does not name.
pub mod extra_attr {
    pub const FILTER_ID: u8 = 11;
    pub const ACCT_MULTI_SESSION_ID: u8 = 50;
    pub const CHARGEABLE_USER_IDENTITY: u8 = 89;
    pub const FRAMED_INTERFACE_ID: u8 = 96;
}

/// Service-Type values (RFC 2865 §5.6, RFC 5176 §3.2).
const SERVICE_TYPE_FRAMED: u32 = 2;

/// Vendor rate-limit attributes stored from a CoA-Request ([`RateLimits`]).
pub mod vendor {
    /// MikroTik (FreeRADIUS dictionary.mikrotik).
    pub const MIKROTIK: u32 = 14988;
    /// Mikrotik-Rate-Limit, a string such as "10M/20M".
    pub const MIKROTIK_RATE_LIMIT: u8 = 8;
    /// WISPr (FreeRADIUS dictionary.wispr).
    pub const WISPR: u32 = 14122;
    /// WISPr-Bandwidth-Max-Up, bit/s.
    pub const WISPR_BANDWIDTH_MAX_UP: u8 = 7;
    /// WISPr-Bandwidth-Max-Down, bit/s.
    pub const WISPR_BANDWIDTH_MAX_DOWN: u8 = 8;
}

/// Error-Cause values we send (RFC 5176 §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorCause {
    /// 401: an attribute we do not support.
    UnsupportedAttribute,
    /// 402: no session identification attribute.
    MissingAttribute,
    /// 403: a NAS identification attribute is not ours.
    NasIdentificationMismatch,
    /// 404: a malformed or repeated attribute.
    InvalidRequest,
    /// 405: a Service-Type we do not support.
    UnsupportedService,
    /// 407: an attribute value we do not support.
    InvalidAttributeValue,
    /// 503: no session matched.
    SessionContextNotFound,
    /// 506: the control task could not take the request.
    ResourcesUnavailable,
}

impl ErrorCause {
    /// Every value, for metrics.
    pub const ALL: [ErrorCause; 8] = [
        ErrorCause::UnsupportedAttribute,
        ErrorCause::MissingAttribute,
        ErrorCause::NasIdentificationMismatch,
        ErrorCause::InvalidRequest,
        ErrorCause::UnsupportedService,
        ErrorCause::InvalidAttributeValue,
        ErrorCause::SessionContextNotFound,
        ErrorCause::ResourcesUnavailable,
    ];

    /// The value on the wire.
    pub const fn code(self) -> u32 {
        match self {
            ErrorCause::UnsupportedAttribute => 401,
            ErrorCause::MissingAttribute => 402,
            ErrorCause::NasIdentificationMismatch => 403,
            ErrorCause::InvalidRequest => 404,
            ErrorCause::UnsupportedService => 405,
            ErrorCause::InvalidAttributeValue => 407,
            ErrorCause::SessionContextNotFound => 503,
            ErrorCause::ResourcesUnavailable => 506,
        }
    }
}

/// Disconnect or CoA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Disconnect,
    Coa,
}

impl Kind {
    /// `"disconnect"` or `"coa"`.
    pub const fn label(self) -> &'static str {
        match self {
            Kind::Disconnect => "disconnect",
            Kind::Coa => "coa",
        }
    }

    const fn ack(self) -> Code {
        match self {
            Kind::Disconnect => Code::DisconnectAck,
            Kind::Coa => Code::CoaAck,
        }
    }

    const fn nak(self) -> Code {
        match self {
            Kind::Disconnect => Code::DisconnectNak,
            Kind::Coa => Code::CoaNak,
        }
    }
}

/// Why a datagram was discarded without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IgnoreReason {
    /// Not a RADIUS packet (RFC 2865 §3 lengths) or a malformed attribute.
    Malformed,
    /// A Code other than Disconnect-Request or CoA-Request (RFC 5176 §2.3).
    UnsupportedCode,
    /// The source is on no client's prefix.
    UnknownClient,
    /// The Request Authenticator does not verify (wrong secret or forged).
    BadAuthenticator,
    /// No Message-Authenticator where one is required.
    MissingMessageAuthenticator,
    /// The Message-Authenticator does not verify (RFC 5176 §3.4).
    BadMessageAuthenticator,
    /// No Event-Timestamp where one is required (RFC 5176 §6.3).
    MissingEventTimestamp,
    /// The Event-Timestamp is outside the window (RFC 5176 §6.3).
    StaleEventTimestamp,
    /// A retransmission of a request still being applied.
    InProgress,
    /// The answer does not fit in 4096 octets (the request's Proxy-States filled it).
    AnswerTooLong,
}

impl IgnoreReason {
    /// Every reason, in [`IgnoreReason::index`] order.
    pub const ALL: [IgnoreReason; 10] = [
        IgnoreReason::Malformed,
        IgnoreReason::UnsupportedCode,
        IgnoreReason::UnknownClient,
        IgnoreReason::BadAuthenticator,
        IgnoreReason::MissingMessageAuthenticator,
        IgnoreReason::BadMessageAuthenticator,
        IgnoreReason::MissingEventTimestamp,
        IgnoreReason::StaleEventTimestamp,
        IgnoreReason::InProgress,
        IgnoreReason::AnswerTooLong,
    ];

    /// Position in [`IgnoreReason::ALL`].
    pub const fn index(self) -> usize {
        match self {
            IgnoreReason::Malformed => 0,
            IgnoreReason::UnsupportedCode => 1,
            IgnoreReason::UnknownClient => 2,
            IgnoreReason::BadAuthenticator => 3,
            IgnoreReason::MissingMessageAuthenticator => 4,
            IgnoreReason::BadMessageAuthenticator => 5,
            IgnoreReason::MissingEventTimestamp => 6,
            IgnoreReason::StaleEventTimestamp => 7,
            IgnoreReason::InProgress => 8,
            IgnoreReason::AnswerTooLong => 9,
        }
    }

    /// A label for logs and metrics.
    pub const fn label(self) -> &'static str {
        match self {
            IgnoreReason::Malformed => "malformed",
            IgnoreReason::UnsupportedCode => "unsupported_code",
            IgnoreReason::UnknownClient => "unknown_client",
            IgnoreReason::BadAuthenticator => "bad_authenticator",
            IgnoreReason::MissingMessageAuthenticator => "missing_message_authenticator",
            IgnoreReason::BadMessageAuthenticator => "bad_message_authenticator",
            IgnoreReason::MissingEventTimestamp => "missing_event_timestamp",
            IgnoreReason::StaleEventTimestamp => "stale_event_timestamp",
            IgnoreReason::InProgress => "in_progress",
            IgnoreReason::AnswerTooLong => "answer_too_long",
        }
    }
}

/// One Dynamic Authorization Client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// The source addresses it sends from.
    pub prefix: IpNet,
    pub secret: Vec<u8>,
    pub require_message_authenticator: bool,
}

/// Who we are, for the NAS identification attributes (RFC 5176 §3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NasIdentity {
    /// Our NAS-Identifier; `None`: a request naming one is refused (403).
    pub identifier: Option<Vec<u8>>,
    /// Our IPv4 addresses (NAS-IP-Address).
    pub ipv4: Vec<Ipv4Addr>,
    /// Our IPv6 addresses (NAS-IPv6-Address).
    pub ipv6: Vec<Ipv6Addr>,
}

/// The server's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    pub clients: Vec<Client>,
    pub nas: NasIdentity,
    pub require_event_timestamp: bool,
    /// The Event-Timestamp window, also the duplicate window (RFC 5176 §6.3).
    pub window: Duration,
}

/// Session identification (RFC 5176 §3): every attribute present must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    pub acct_session_id: Option<Vec<u8>>,
    pub user_name: Option<Vec<u8>>,
    pub framed_ip: Option<Ipv4Addr>,
    pub nas_port: Option<u32>,
    pub calling_station_id: Option<Vec<u8>>,
    pub called_station_id: Option<Vec<u8>>,
}

impl core::fmt::Display for Selector {
    /// `Acct-Session-Id="..." User-Name="..." ...`, the attributes present, for logs.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
        let mut parts = Vec::new();
        if let Some(v) = &self.acct_session_id {
            parts.push(format!("Acct-Session-Id={:?}", text(v)));
        }
        if let Some(v) = &self.user_name {
            parts.push(format!("User-Name={:?}", text(v)));
        }
        if let Some(v) = self.framed_ip {
            parts.push(format!("Framed-IP-Address={v}"));
        }
        if let Some(v) = self.nas_port {
            parts.push(format!("NAS-Port={v}"));
        }
        if let Some(v) = &self.calling_station_id {
            parts.push(format!("Calling-Station-Id={:?}", text(v)));
        }
        if let Some(v) = &self.called_station_id {
            parts.push(format!("Called-Station-Id={:?}", text(v)));
        }
        f.write_str(&parts.join(" "))
    }
}

/// What the shell knows of one session, for [`Selector::matches`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionView<'a> {
    pub acct_session_id: Option<&'a [u8]>,
    pub user_name: Option<&'a [u8]>,
    pub framed_ip: Option<Ipv4Addr>,
    /// The NAS-Port of its Access-Request (the L2TP session id).
    pub nas_port: u32,
    pub calling_station_id: Option<&'a [u8]>,
    pub called_station_id: Option<&'a [u8]>,
}

impl Selector {
    /// Whether no session identification attribute is present.
    pub fn is_empty(&self) -> bool {
        *self == Selector::default()
    }

    /// Whether `session` matches every attribute present (an empty selector matches
    /// nothing).
    pub fn matches(&self, session: &SessionView<'_>) -> bool {
        fn bytes(want: &Option<Vec<u8>>, have: Option<&[u8]>) -> bool {
            want.as_deref().is_none_or(|w| have == Some(w))
        }
        !self.is_empty()
            && bytes(&self.acct_session_id, session.acct_session_id)
            && bytes(&self.user_name, session.user_name)
            && self
                .framed_ip
                .is_none_or(|ip| session.framed_ip == Some(ip))
            && self.nas_port.is_none_or(|p| session.nas_port == p)
            && bytes(&self.calling_station_id, session.calling_station_id)
            && bytes(&self.called_station_id, session.called_station_id)
    }
}

/// One vendor rate attribute: Vendor-Id, type, value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorRate {
    pub vendor: u32,
    pub kind: u8,
    pub value: Vec<u8>,
}

/// Rate limits of a CoA-Request, stored with the session for the shaping issue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimits {
    /// Filter-Id (RFC 2865 §5.11), in order.
    pub filter_ids: Vec<Vec<u8>>,
    /// Mikrotik-Rate-Limit, WISPr-Bandwidth-Max-Up / -Down, in order.
    pub vendor: Vec<VendorRate>,
}

/// The authorization change of a request (RFC 5176 §3.6 Note 3: `None` leaves the value
/// as it is; an attribute present replaces every value of it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    /// Session-Timeout: `Some(None)` (the value 0) removes the limit.
    pub session_timeout: Option<Option<Duration>>,
    /// Idle-Timeout: `Some(None)` (the value 0) removes the limit.
    pub idle_timeout: Option<Option<Duration>>,
    /// Class: replaces the session's Class values (echoed in accounting).
    pub class: Option<Vec<Vec<u8>>>,
    /// Filter-Id and vendor rate attributes.
    pub rate_limits: Option<RateLimits>,
}

/// A verified, well-formed request for the control task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub kind: Kind,
    pub selector: Selector,
    pub change: Change,
}

/// The control task's answer: the number of sessions acted on, or the cause of a NAK.
pub type Verdict = Result<usize, ErrorCause>;

/// What [`Server::answer`] needs of a request handed out by [`Server::handle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    token: u64,
    /// Where the answer goes.
    pub from: SocketAddr,
    pub kind: Kind,
    client: usize,
    identifier: u8,
    authenticator: [u8; AUTHENTICATOR_LEN],
    /// Proxy-State (and, for CoA, State) attributes to echo, in order.
    echo: Vec<Attribute>,
}

/// What to do with a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Discard it (counted).
    Ignored(IgnoreReason),
    /// Send these octets back to the source: a NAK decided here, or the answer already
    /// sent to a retransmission.
    Reply(Vec<u8>),
    /// Apply the request, then [`Server::answer`] it.
    Apply(Box<Pending>, Box<Request>),
}

/// Counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Answers sent, by kind and Error-Cause (`None`: ACK).
    pub answered: BTreeMap<(Kind, Option<ErrorCause>), u64>,
    /// Datagrams discarded, by [`IgnoreReason::index`].
    pub ignored: [u64; IgnoreReason::ALL.len()],
    /// Retransmissions answered from the cache.
    pub duplicates: u64,
}

#[derive(Debug)]
struct Cached {
    digest: [u8; 16],
    token: u64,
    answer: Option<Vec<u8>>,
}

/// The server; see the module documentation.
#[derive(Debug)]
pub struct Server {
    config: ServerConfig,
    cache: HashMap<(SocketAddr, u8), Cached>,
    /// Cache entries in insertion order: (expiry, key, token).
    order: VecDeque<(Instant, (SocketAddr, u8), u64)>,
    next_token: u64,
    stats: Stats,
}

/// The source address with an IPv4-mapped IPv6 address turned into IPv4.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

impl Server {
    pub fn new(config: ServerConfig) -> Server {
        Server {
            config,
            cache: HashMap::new(),
            order: VecDeque::new(),
            next_token: 0,
            stats: Stats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    fn ignore(&mut self, reason: IgnoreReason) -> Received {
        self.stats.ignored[reason.index()] += 1;
        Received::Ignored(reason)
    }

    /// Drops expired cache entries, and the oldest ones beyond [`MAX_CACHED`].
    fn expire(&mut self, now: Instant) {
        while let Some((at, key, token)) = self.order.front().copied() {
            if at > now && self.cache.len() < MAX_CACHED {
                break;
            }
            self.order.pop_front();
            if self.cache.get(&key).is_some_and(|c| c.token == token) {
                self.cache.remove(&key);
            }
        }
    }

    /// A datagram from `from` at `now`; `unix_now` is the wall clock in seconds since
    /// 1970 for the Event-Timestamp check. See the module documentation for the order of
    /// the checks.
    pub fn handle(
        &mut self,
        now: Instant,
        unix_now: u64,
        from: SocketAddr,
        datagram: &[u8],
    ) -> Received {
        self.expire(now);
        let Ok(packet) = Packet::new_checked(datagram) else {
            return self.ignore(IgnoreReason::Malformed);
        };
        let kind = match packet.code() {
            Code::DisconnectRequest => Kind::Disconnect,
            Code::CoaRequest => Kind::Coa,
            _ => return self.ignore(IgnoreReason::UnsupportedCode),
        };
        let source = canonical(from.ip());
        let Some(client) = self
            .config
            .clients
            .iter()
            .position(|c| c.prefix.contains(&source))
        else {
            return self.ignore(IgnoreReason::UnknownClient);
        };
        let bytes = packet.packet_bytes();
        let digest: [u8; 16] = Md5::digest(bytes).into();
        let key = (from, packet.identifier());
        // RFC 5176 §2.3: duplicate detection by source address, port and Identifier.
        if let Some(cached) = self.cache.get(&key)
            && cached.digest == digest
        {
            return match &cached.answer {
                Some(answer) => {
                    let answer = answer.clone();
                    self.stats.duplicates += 1;
                    Received::Reply(answer)
                }
                None => self.ignore(IgnoreReason::InProgress),
            };
        }
        let c = &self.config.clients[client];
        if let Err(e) = wire::verify_request(bytes, &c.secret, c.require_message_authenticator) {
            let reason = match e {
                wire::Error::BadAuthenticator => IgnoreReason::BadAuthenticator,
                wire::Error::MissingMessageAuthenticator => {
                    IgnoreReason::MissingMessageAuthenticator
                }
                wire::Error::BadMessageAuthenticator => IgnoreReason::BadMessageAuthenticator,
                _ => IgnoreReason::Malformed,
            };
            return self.ignore(reason);
        }
        let Ok(repr) = Repr::parse(&packet) else {
            return self.ignore(IgnoreReason::Malformed);
        };
        // RFC 5176 §6.3: an Event-Timestamp outside the window is silently discarded.
        match repr.get(attr::EVENT_TIMESTAMP).map(Attribute::as_u32) {
            None if self.config.require_event_timestamp => {
                return self.ignore(IgnoreReason::MissingEventTimestamp);
            }
            None => {}
            Some(None) => return self.ignore(IgnoreReason::Malformed),
            Some(Some(ts)) if u64::from(ts).abs_diff(unix_now) > self.config.window.as_secs() => {
                return self.ignore(IgnoreReason::StaleEventTimestamp);
            }
            Some(Some(_)) => {}
        }
        let token = self.next_token;
        self.next_token += 1;
        let expires = now + self.config.window;
        self.cache.insert(
            key,
            Cached {
                digest,
                token,
                answer: None,
            },
        );
        self.order.push_back((expires, key, token));
        let pending = Pending {
            token,
            from,
            kind,
            client,
            identifier: repr.identifier,
            authenticator: repr.authenticator,
            echo: repr
                .attributes
                .iter()
                .filter(|a| {
                    a.kind == attr::PROXY_STATE || (kind == Kind::Coa && a.kind == attr::STATE)
                })
                .cloned()
                .collect(),
        };
        match parse_request(kind, &repr.attributes, &self.config.nas) {
            Ok(request) => Received::Apply(Box::new(pending), Box::new(request)),
            Err(cause) => match self.answer(&pending, Err(cause)) {
                Some(reply) => Received::Reply(reply),
                None => Received::Ignored(IgnoreReason::AnswerTooLong),
            },
        }
    }

    /// The signed answer to `pending` for `verdict` (ACK, or NAK with its Error-Cause),
    /// kept for retransmissions of the request. `None` (counted as
    /// [`IgnoreReason::AnswerTooLong`]) when it does not fit in a RADIUS packet (the
    /// request's Proxy-States filled it).
    pub fn answer(&mut self, pending: &Pending, verdict: Verdict) -> Option<Vec<u8>> {
        let answer = self.encode_answer(pending, verdict);
        match &answer {
            Some(bytes) => {
                *self
                    .stats
                    .answered
                    .entry((pending.kind, verdict.err()))
                    .or_default() += 1;
                if let Some(cached) = self.cache.get_mut(&(pending.from, pending.identifier))
                    && cached.token == pending.token
                {
                    cached.answer = Some(bytes.clone());
                }
            }
            None => self.stats.ignored[IgnoreReason::AnswerTooLong.index()] += 1,
        }
        answer
    }

    fn encode_answer(&self, pending: &Pending, verdict: Verdict) -> Option<Vec<u8>> {
        let mut attributes = pending.echo.clone();
        let code = match verdict {
            Ok(_) => pending.kind.ack(),
            Err(cause) => {
                attributes.push(Attribute::integer(attr::ERROR_CAUSE, cause.code()));
                pending.kind.nak()
            }
        };
        attributes.push(Attribute::new(
            attr::MESSAGE_AUTHENTICATOR,
            [0u8; AUTHENTICATOR_LEN],
        ));
        let repr = Repr {
            code,
            identifier: pending.identifier,
            authenticator: pending.authenticator,
            attributes,
        };
        let mut bytes = repr.to_bytes().ok()?;
        let secret = &self.config.clients.get(pending.client)?.secret;
        wire::sign_response(&mut bytes, &pending.authenticator, secret).ok()?;
        Some(bytes)
    }
}

fn single<T>(slot: &mut Option<T>, value: T) -> Result<(), ErrorCause> {
    if slot.is_some() {
        return Err(ErrorCause::InvalidRequest);
    }
    *slot = Some(value);
    Ok(())
}

fn u32_value(a: &Attribute) -> Result<u32, ErrorCause> {
    a.as_u32().ok_or(ErrorCause::InvalidRequest)
}

fn timeout(a: &Attribute) -> Result<Option<Duration>, ErrorCause> {
    let secs = u32_value(a)?;
    Ok((secs != 0).then(|| Duration::from_secs(u64::from(secs))))
}

/// The attributes of a verified request as a [`Request`], or the Error-Cause of its NAK;
/// see the module documentation for the rules.
pub fn parse_request(
    kind: Kind,
    attributes: &[Attribute],
    nas: &NasIdentity,
) -> Result<Request, ErrorCause> {
    let mut selector = Selector::default();
    let mut change = Change::default();
    let mut state = false;
    let mut terminate_cause = false;
    let mut service_type = false;
    let coa = kind == Kind::Coa;
    for a in attributes {
        match a.kind {
            attr::USER_NAME => single(&mut selector.user_name, a.value.clone())?,
            attr::ACCT_SESSION_ID => single(&mut selector.acct_session_id, a.value.clone())?,
            attr::CALLING_STATION_ID => single(&mut selector.calling_station_id, a.value.clone())?,
            attr::CALLED_STATION_ID => single(&mut selector.called_station_id, a.value.clone())?,
            attr::NAS_PORT => single(&mut selector.nas_port, u32_value(a)?)?,
            attr::FRAMED_IP_ADDRESS => {
                let ip = <[u8; 4]>::try_from(a.value.as_slice())
                    .map_err(|_| ErrorCause::InvalidRequest)?;
                single(&mut selector.framed_ip, Ipv4Addr::from(ip))?;
            }
            attr::NAS_IDENTIFIER => {
                if nas.identifier.as_deref() != Some(a.value.as_slice()) {
                    return Err(ErrorCause::NasIdentificationMismatch);
                }
            }
            attr::NAS_IP_ADDRESS => {
                let ip = <[u8; 4]>::try_from(a.value.as_slice())
                    .map_err(|_| ErrorCause::InvalidRequest)?;
                if !nas.ipv4.contains(&Ipv4Addr::from(ip)) {
                    return Err(ErrorCause::NasIdentificationMismatch);
                }
            }
            attr::NAS_IPV6_ADDRESS => {
                let ip = <[u8; 16]>::try_from(a.value.as_slice())
                    .map_err(|_| ErrorCause::InvalidRequest)?;
                if !nas.ipv6.contains(&Ipv6Addr::from(ip)) {
                    return Err(ErrorCause::NasIdentificationMismatch);
                }
            }
            attr::PROXY_STATE
            | attr::REPLY_MESSAGE
            | attr::EVENT_TIMESTAMP
            | attr::MESSAGE_AUTHENTICATOR => {}
            attr::CLASS => change
                .class
                .get_or_insert_with(Vec::new)
                .push(a.value.clone()),
            // Kept for the DAC's records only: the Stop record says Admin-Reset.
            attr::ACCT_TERMINATE_CAUSE if !coa => {
                if terminate_cause {
                    return Err(ErrorCause::InvalidRequest);
                }
                terminate_cause = true;
                u32_value(a)?;
            }
            // RFC 5176 §3.3: State is echoed, at most one.
            attr::STATE if coa => {
                if state {
                    return Err(ErrorCause::InvalidRequest);
                }
                state = true;
            }
            // RFC 5176 §3.2: "Authorize Only" is optional; unsupported values get 405.
            attr::SERVICE_TYPE if coa => {
                if service_type {
                    return Err(ErrorCause::InvalidRequest);
                }
                service_type = true;
                if u32_value(a)? != SERVICE_TYPE_FRAMED {
                    return Err(ErrorCause::UnsupportedService);
                }
            }
            attr::SESSION_TIMEOUT if coa => single(&mut change.session_timeout, timeout(a)?)?,
            attr::IDLE_TIMEOUT if coa => single(&mut change.idle_timeout, timeout(a)?)?,
            extra_attr::FILTER_ID if coa => {
                if a.value.is_empty() {
                    return Err(ErrorCause::InvalidAttributeValue);
                }
                change
                    .rate_limits
                    .get_or_insert_with(RateLimits::default)
                    .filter_ids
                    .push(a.value.clone());
            }
            attr::VENDOR_SPECIFIC if coa => {
                let (vendor, subs) = wire::parse_vendor_specific(&a.value)
                    .map_err(|_| ErrorCause::InvalidRequest)?;
                for sub in subs {
                    let sub = sub.map_err(|_| ErrorCause::InvalidRequest)?;
                    let supported = matches!(
                        (vendor, sub.kind),
                        (vendor::MIKROTIK, vendor::MIKROTIK_RATE_LIMIT)
                            | (vendor::WISPR, vendor::WISPR_BANDWIDTH_MAX_UP)
                            | (vendor::WISPR, vendor::WISPR_BANDWIDTH_MAX_DOWN)
                    );
                    if !supported {
                        return Err(ErrorCause::UnsupportedAttribute);
                    }
                    if vendor == vendor::WISPR && sub.value.len() != 4 {
                        return Err(ErrorCause::InvalidRequest);
                    }
                    if sub.value.is_empty() {
                        return Err(ErrorCause::InvalidAttributeValue);
                    }
                    change
                        .rate_limits
                        .get_or_insert_with(RateLimits::default)
                        .vendor
                        .push(VendorRate {
                            vendor,
                            kind: sub.kind,
                            value: sub.value.to_vec(),
                        });
                }
            }
            _ => return Err(ErrorCause::UnsupportedAttribute),
        }
    }
    if selector.is_empty() {
        return Err(ErrorCause::MissingAttribute);
    }
    Ok(Request {
        kind,
        selector,
        change,
    })
}

#[cfg(test)]
mod tests;

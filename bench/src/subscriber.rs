//! The subscriber side of the LAC emulator: one PPP client per L2TP session, the client
//! role of the same [`PppSession`] core xlnsd runs (RFC 1661 §3), with PAP (RFC 1334),
//! CHAP-MD5 (RFC 1994) or MS-CHAPv2 (RFC 2759), and the NAS-initiated case where the LAC
//! negotiated LCP and captured the credentials before it opened the call (proxy LCP and
//! proxy authentication AVPs, RFC 2661 §4.4.5).
//!
//! # Contract
//!
//! * [`Subscriber::new`] builds the client of session number `n` (credentials from the
//!   [`PppConfig`] patterns, `%n` replaced by `n`); it accepts only the configured
//!   method (it Naks any other the LNS asks for), sends no LCP echo of its own and answers
//!   the LNS's (RFC 1661 §5.8).
//! * Client-initiated: [`Subscriber::start`] once the L2TP session is up, or, silent like
//!   pppd's `silent` option, [`Subscriber::handle_frame`] starts LCP when the LNS's first
//!   frame arrives. The emulator is silent: the LAC's ICCN may still wait in the tunnel's
//!   congestion window (RFC 2661 appendix A) while a data message would go out at once,
//!   reach the LNS before the ICCN and be dropped, costing a restart timer (3 s).
//! * NAS-initiated ([`PppConfig::proxy`]): [`Subscriber::negotiate_at_lac`] before the
//!   call is opened runs LCP and the start of authentication against a local LAC-role
//!   authenticator (the same core, in memory, no timers involved) until the LAC has the
//!   credentials, and returns the ICCN's proxy AVPs; the client then stays in the
//!   Authenticate phase, waiting for the LNS's PAP Ack / CHAP Success.
//! * [`Subscriber::handle_frame`] takes a PPP frame as an L2TP data message carries it
//!   (Address/Control optional, Protocol field full or compressed); malformed frames are
//!   counted and dropped. [`Subscriber::poll_transmit`] gives the packets to send, which
//!   the owner frames with Address/Control and a full Protocol field (LCP always, RFC 1661
//!   §6.6) with `Endpoint::encapsulate_ppp`.
//! * Phase times ([`Timing`]) are taken by [`Subscriber::observe`], which the owner calls
//!   after every input: LCP opened (the phase left Establish), authentication done (the
//!   Network phase), IPCP opened (the `Up` event, with the address and the gateway).

use std::net::Ipv4Addr;
use std::time::Instant;

use xlns_controlplane::l2tp::attr::{Avp, ProxyAuthenType};
use xlns_controlplane::ppp::auth::{PROTOCOL_CHAP, PROTOCOL_PAP};
use xlns_controlplane::ppp::lcp::{AuthProtocol, ChapAlgorithm};
use xlns_controlplane::ppp::lcp_proto::{LcpPolicy, PROTOCOL_LCP};
use xlns_controlplane::ppp::session::proxy::ProxyInfo;
use xlns_controlplane::ppp::session::{
    Credentials, DownReason, Phase, PppSession, SessionConfig, SessionEvent,
};
use xlns_controlplane::ppp::{chap, pap};
use xlns_dataplane::wire::ppp::Packet;

/// The authentication method the subscribers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMethod {
    /// PAP (RFC 1334).
    Pap,
    /// CHAP with MD5 (RFC 1994).
    Chap,
    /// MS-CHAPv2 (RFC 2759).
    MsChapV2,
}

impl AuthMethod {
    /// The LCP Authentication-Protocol option value of the method.
    pub fn protocol(self) -> AuthProtocol {
        match self {
            AuthMethod::Pap => AuthProtocol::Pap,
            AuthMethod::Chap => AuthProtocol::Chap(ChapAlgorithm::Md5),
            AuthMethod::MsChapV2 => AuthProtocol::Chap(ChapAlgorithm::MsChapV2),
        }
    }

    /// `pap`, `chap`, `mschapv2`.
    pub fn label(self) -> &'static str {
        match self {
            AuthMethod::Pap => "pap",
            AuthMethod::Chap => "chap",
            AuthMethod::MsChapV2 => "mschapv2",
        }
    }
}

/// What the subscribers do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PppConfig {
    pub auth: AuthMethod,
    /// User name pattern; `%n` is the session number (1-based), `%%` a percent sign.
    pub user: String,
    /// Password pattern, as `user`.
    pub password: String,
    /// NAS-initiated: LCP and authentication start at the LAC, the ICCN carries proxy
    /// LCP and proxy authentication AVPs.
    pub proxy: bool,
}

impl PppConfig {
    /// CHAP with `user%n` / `pw%n`, client-initiated.
    pub fn chap() -> PppConfig {
        PppConfig {
            auth: AuthMethod::Chap,
            user: "user%n".to_owned(),
            password: "pw%n".to_owned(),
            proxy: false,
        }
    }

    /// The credentials of session number `n`.
    pub fn credentials(&self, n: u64) -> Credentials {
        Credentials {
            user: expand(&self.user, n).into_bytes(),
            password: expand(&self.password, n),
        }
    }
}

/// `pattern` with `%n` replaced by `n` and `%%` by `%`; any other `%` stays.
pub fn expand(pattern: &str, n: u64) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some('n') => {
                chars.next();
                out.push_str(&n.to_string());
            }
            Some('%') => {
                chars.next();
                out.push('%');
            }
            _ => out.push('%'),
        }
    }
    out
}

/// When each phase of the subscriber ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timing {
    /// LCP opened (Establish left); in the proxy case, at the LAC before the ICRQ.
    pub lcp_up: Option<Instant>,
    /// Authentication succeeded (Network phase entered).
    pub auth_done: Option<Instant>,
    /// IPCP opened.
    pub ipcp_up: Option<Instant>,
}

/// What the subscriber got once IPCP opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    /// Our address.
    pub address: Ipv4Addr,
    /// The LNS's address (IPCP peer).
    pub gateway: Ipv4Addr,
}

/// What [`Subscriber::observe`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// IPCP opened.
    Up(Address),
    /// The PPP session went down (exactly once).
    Down(DownReason),
}

/// One emulated subscriber; see the module documentation.
#[derive(Debug)]
pub struct Subscriber {
    session: PppSession,
    phase: Phase,
    pub timing: Timing,
    pub address: Option<Address>,
    pub down: Option<DownReason>,
    /// Frames that did not parse.
    pub malformed: u64,
    /// LCP Echo-Requests received (each answered by an Echo-Reply, RFC 1661 §5.8).
    pub echo_requests: u64,
    /// Times LCP went back to the Establish phase once past it (the LNS renegotiated).
    pub lcp_renegotiations: u64,
}

/// A local exchange that did not get the LAC the credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyError(pub String);

impl std::fmt::Display for ProxyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LAC-side negotiation: {}", self.0)
    }
}

impl std::error::Error for ProxyError {}

/// Rounds of the in-memory LAC negotiation before it is given up (LCP and one
/// authentication exchange take fewer than 10).
const LOCAL_ROUNDS: usize = 64;

impl Subscriber {
    /// The client of session number `n`; `seed` makes its Magic-Number and challenges
    /// reproducible.
    pub fn new(config: &PppConfig, n: u64, seed: u64) -> Subscriber {
        let session = PppSession::with_seed(
            SessionConfig {
                lcp: LcpPolicy::peer(vec![config.auth.protocol()]),
                keepalive: None,
                ..SessionConfig::client(config.credentials(n))
            },
            seed,
        );
        Subscriber {
            session,
            phase: Phase::Dead,
            timing: Timing::default(),
            address: None,
            down: None,
            malformed: 0,
            echo_requests: 0,
            lcp_renegotiations: 0,
        }
    }

    /// Client-initiated: starts LCP (the L2TP session is up).
    pub fn start(&mut self, now: Instant) {
        self.session.start(now, None);
        self.phase = self.session.phase();
    }

    /// NAS-initiated: LCP and authentication against a local LAC authenticator until it
    /// holds the credentials; returns the proxy AVPs for the ICCN (RFC 2661 §4.4.5).
    pub fn negotiate_at_lac(
        &mut self,
        config: &PppConfig,
        seed: u64,
        now: Instant,
    ) -> Result<Vec<Avp>, ProxyError> {
        let mut lac = PppSession::with_seed(
            SessionConfig {
                keepalive: None,
                ..SessionConfig::lns(
                    vec![config.auth.protocol()],
                    Ipv4Addr::UNSPECIFIED,
                    [None; 2],
                )
            },
            seed,
        );
        self.start(now);
        lac.start(now, None);
        let mut received_confreqs: Vec<Vec<u8>> = Vec::new();
        let mut sent_confreqs: Vec<Vec<u8>> = Vec::new();
        let mut last_challenge: Option<(u8, Vec<u8>)> = None;
        let mut last_auth: Option<(u16, Vec<u8>)> = None;
        let confreq_options = |protocol: u16, packet: &[u8]| -> Option<Vec<u8>> {
            // RFC 1661 §5.1: Code 1, the options after the 4-octet header.
            (protocol == PROTOCOL_LCP && packet.len() >= 4 && packet[0] == 1)
                .then(|| packet[4..].to_vec())
        };
        for _ in 0..LOCAL_ROUNDS {
            let mut moved = false;
            while let Some((protocol, packet)) = self.session.poll_transmit() {
                moved = true;
                if let Some(o) = confreq_options(protocol, &packet) {
                    received_confreqs.push(o);
                }
                if protocol == PROTOCOL_PAP || protocol == PROTOCOL_CHAP {
                    last_auth = Some((protocol, packet.clone()));
                }
                lac.handle_frame(protocol, &packet, now);
            }
            while let Some((protocol, packet)) = lac.poll_transmit() {
                moved = true;
                if let Some(o) = confreq_options(protocol, &packet) {
                    sent_confreqs.push(o);
                }
                if protocol == PROTOCOL_CHAP
                    && let Ok(chap::Repr::Challenge {
                        identifier, value, ..
                    }) = chap::Repr::from_bytes(&packet)
                {
                    last_challenge = Some((identifier, value));
                }
                self.session.handle_frame(protocol, &packet, now);
            }
            while let Some(event) = lac.poll_event() {
                if let SessionEvent::NeedVerify(_) = event {
                    return self.proxy_avps(
                        &received_confreqs,
                        &sent_confreqs,
                        last_auth,
                        last_challenge,
                        now,
                    );
                }
            }
            if !moved {
                break;
            }
        }
        Err(ProxyError(format!(
            "no credentials after the local exchange (client phase {:?})",
            self.session.phase()
        )))
    }

    fn proxy_avps(
        &mut self,
        received: &[Vec<u8>],
        sent: &[Vec<u8>],
        auth: Option<(u16, Vec<u8>)>,
        challenge: Option<(u8, Vec<u8>)>,
        now: Instant,
    ) -> Result<Vec<Avp>, ProxyError> {
        let mut info = ProxyInfo {
            initial_received_lcp_confreq: received.first().cloned(),
            last_sent_lcp_confreq: sent.last().cloned(),
            last_received_lcp_confreq: received.last().cloned(),
            ..ProxyInfo::default()
        };
        let (protocol, packet) = auth.ok_or_else(|| ProxyError("no authentication".into()))?;
        if protocol == PROTOCOL_PAP {
            let Ok(pap::Repr::AuthenticateRequest {
                identifier,
                peer_id,
                password,
            }) = pap::Repr::from_bytes(&packet)
            else {
                return Err(ProxyError("not a PAP Authenticate-Request".into()));
            };
            info.authen_type = Some(ProxyAuthenType::Pap);
            info.authen_id = Some(identifier.into());
            info.authen_name = Some(peer_id);
            info.authen_response = Some(password);
        } else {
            let Ok(chap::Repr::Response {
                identifier,
                value,
                name,
            }) = chap::Repr::from_bytes(&packet)
            else {
                return Err(ProxyError("not a CHAP Response".into()));
            };
            let Some((_, challenge)) = challenge.filter(|(id, _)| *id == identifier) else {
                return Err(ProxyError("no Challenge for the Response".into()));
            };
            info.authen_type = Some(ProxyAuthenType::Chap);
            info.authen_id = Some(identifier.into());
            info.authen_name = Some(name);
            info.authen_challenge = Some(challenge);
            info.authen_response = Some(value);
        }
        self.observe(now);
        Ok(avps_of(info))
    }

    /// A PPP frame from the LNS (the payload of an L2TP data message).
    pub fn handle_frame(&mut self, frame: &[u8], now: Instant) {
        let Ok(packet) = Packet::new_checked(frame) else {
            self.malformed += 1;
            return;
        };
        if self.phase == Phase::Dead && self.down.is_none() {
            self.start(now);
        }
        let payload = packet.payload();
        // RFC 1661 §5.8: Code 9, Echo-Request.
        if packet.protocol() == PROTOCOL_LCP && payload.first() == Some(&9) {
            self.echo_requests += 1;
        }
        self.session.handle_frame(packet.protocol(), payload, now);
    }

    /// Fires the client's timers when due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.session.poll_timeout().is_some_and(|at| at <= now) {
            self.session.handle_timeout(now);
        }
    }

    /// When [`Subscriber::handle_timeout`] is due next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.session.poll_timeout()
    }

    /// The next packet to send, with its PPP protocol: the owner frames and encapsulates
    /// it with [`Endpoint::encapsulate_ppp`] (Address/Control, full Protocol).
    ///
    /// [`Endpoint::encapsulate_ppp`]: xlns_controlplane::l2tp::endpoint::Endpoint::encapsulate_ppp
    pub fn poll_transmit(&mut self) -> Option<(u16, Vec<u8>)> {
        self.session.poll_transmit()
    }

    /// Notes phase changes and the session's events; returns what changed for the owner.
    pub fn observe(&mut self, now: Instant) -> Vec<Change> {
        let phase = self.session.phase();
        if phase != self.phase {
            if phase == Phase::Establish && self.phase != Phase::Dead {
                self.lcp_renegotiations += 1;
            }
            if self.phase == Phase::Establish && self.timing.lcp_up.is_none() {
                self.timing.lcp_up = Some(now);
            }
            if phase == Phase::Network && self.timing.auth_done.is_none() {
                self.timing.lcp_up.get_or_insert(now);
                self.timing.auth_done = Some(now);
            }
            self.phase = phase;
        }
        let mut changes = Vec::new();
        while let Some(event) = self.session.poll_event() {
            match event {
                SessionEvent::Up(up) => {
                    self.timing.auth_done.get_or_insert(now);
                    self.timing.ipcp_up.get_or_insert(now);
                    let address = Address {
                        address: up.address,
                        gateway: up.gateway,
                    };
                    self.address = Some(address);
                    changes.push(Change::Up(address));
                }
                SessionEvent::Down { reason, .. } => {
                    self.down = Some(reason.clone());
                    changes.push(Change::Down(reason));
                }
                SessionEvent::NeedVerify(_)
                | SessionEvent::NeedAddress(_)
                | SessionEvent::Ipv6Up(_) => {}
            }
        }
        changes
    }

    /// The subscriber hangs up: LCP Terminate-Request, then `Down` (RFC 1661 §3.7).
    pub fn close(&mut self, now: Instant) {
        self.session.close(now, DownReason::Admin);
    }

    /// The L2TP session is gone: `Down` at once, nothing sent.
    pub fn lower_down(&mut self, now: Instant) {
        self.session.lower_down(now);
    }

    /// The PPP phase now.
    pub fn phase(&self) -> Phase {
        self.session.phase()
    }

    /// LCP echo requests answered (RFC 1661 §5.8) and other LCP counters.
    pub fn lcp(&self) -> &xlns_controlplane::ppp::lcp_link::LcpLink {
        self.session.lcp()
    }
}

/// The ICCN AVPs of `info` (RFC 2661 §4.4.5), in the order of the RFC.
pub fn avps_of(info: ProxyInfo) -> Vec<Avp> {
    let mut avps = Vec::new();
    if let Some(v) = info.initial_received_lcp_confreq {
        avps.push(Avp::InitialReceivedLcpConfReq(v));
    }
    if let Some(v) = info.last_sent_lcp_confreq {
        avps.push(Avp::LastSentLcpConfReq(v));
    }
    if let Some(v) = info.last_received_lcp_confreq {
        avps.push(Avp::LastReceivedLcpConfReq(v));
    }
    if let Some(v) = info.authen_type {
        avps.push(Avp::ProxyAuthenType(v));
    }
    if let Some(v) = info.authen_name {
        avps.push(Avp::ProxyAuthenName(v));
    }
    if let Some(v) = info.authen_challenge {
        avps.push(Avp::ProxyAuthenChallenge(v));
    }
    if let Some(v) = info.authen_id {
        avps.push(Avp::ProxyAuthenId(v));
    }
    if let Some(v) = info.authen_response {
        avps.push(Avp::ProxyAuthenResponse(v));
    }
    avps
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn patterns_expand_the_session_number() {
        assert_eq!(expand("user%n", 7), "user7");
        assert_eq!(expand("%n@isp%n.net", 12), "12@isp12.net");
        assert_eq!(expand("100%%", 1), "100%");
        assert_eq!(expand("a%b%", 1), "a%b%");
        assert_eq!(expand("fixed", 3), "fixed");
    }

    #[test]
    fn lac_negotiation_yields_the_proxy_avps_of_each_method() {
        for auth in [AuthMethod::Pap, AuthMethod::Chap, AuthMethod::MsChapV2] {
            let config = PppConfig {
                auth,
                proxy: true,
                ..PppConfig::chap()
            };
            let mut sub = Subscriber::new(&config, 5, 1);
            let now = Instant::now();
            let avps = sub.negotiate_at_lac(&config, 2, now).unwrap();
            assert_eq!(sub.phase(), Phase::Authenticate, "{auth:?}");
            assert!(sub.timing.lcp_up.is_some());
            let name = avps.iter().find_map(|a| match a {
                Avp::ProxyAuthenName(n) => Some(n.clone()),
                _ => None,
            });
            assert_eq!(name.as_deref(), Some(&b"user5"[..]), "{auth:?}");
            let kind = avps.iter().find_map(|a| match a {
                Avp::ProxyAuthenType(t) => Some(*t),
                _ => None,
            });
            let expected = if auth == AuthMethod::Pap {
                ProxyAuthenType::Pap
            } else {
                ProxyAuthenType::Chap
            };
            assert_eq!(kind, Some(expected));
            assert!(
                avps.iter()
                    .any(|a| matches!(a, Avp::LastSentLcpConfReq(o) if !o.is_empty()))
            );
            let has_challenge = avps
                .iter()
                .any(|a| matches!(a, Avp::ProxyAuthenChallenge(_)));
            assert_eq!(has_challenge, auth != AuthMethod::Pap);
            if auth == AuthMethod::Pap {
                assert!(
                    avps.iter()
                        .any(|a| matches!(a, Avp::ProxyAuthenResponse(p) if p == b"pw5"))
                );
            }
        }
    }
}

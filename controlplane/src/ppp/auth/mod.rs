//! PPP authentication state machines (RFC 1334 §2 PAP, RFC 1994 CHAP-MD5, RFC 2759
//! MS-CHAPv2), for both roles: the authenticator (the LNS) and the peer (the client; the
//! benchmark's LAC/PPP-client emulator drives this side).
//!
//! * [`pap`]: [`PapAuthenticator`] and [`PapPeer`].
//! * [`chap`]: [`ChapAuthenticator`] and [`ChapPeer`]; the [`ChapMethod`] (MD5 or
//!   MS-CHAPv2) decides the Value formats and the Success/Failure messages.
//! * [`Authenticator`] and [`Peer`]: either protocol behind one type, for the session core.
//!
//! Every machine is sans-IO. Inputs: `start(now)` (when LCP is Opened and the
//! Authentication phase begins, RFC 1661 §3.5), `handle_packet(bytes, now)` (a PAP or CHAP
//! packet: Code, Identifier, Length, Data, without the PPP protocol field),
//! `handle_timeout(now)`, and on the authenticator `handle_verify_result(id, result, now)`.
//! Outputs: `poll_transmit()` (packets in the same format; the caller adds protocol
//! 0xC023 for PAP or 0xC223 for CHAP, see [`Method::protocol`]), `poll_event()` and
//! `poll_timeout()`. Time is only the `now` passed in; randomness (challenges, MS-CHAPv2
//! Peer-Challenge, initial identifiers) comes from a [`StdRng`] seeded from the operating
//! system by `new`, or from a fixed seed with `with_seed` in tests.
//!
//! Verification is asynchronous: the authenticator emits [`Event::NeedVerify`] with a
//! [`VerifyRequest`] (user name and the credential as received) and waits; the caller
//! answers with an [`AuthResult`] through `handle_verify_result`, from the local users
//! table ([`Verifier`] is implemented for [`Users`]) now and from RADIUS later (#7). An
//! answer for a request that is no longer current is ignored and counted.
//!
//! Contract: bytes from the peer never panic anything. A malformed packet is counted
//! ([`Counters::malformed`]) and `handle_packet` returns its parse error; a packet that
//! is valid but out of state or with the wrong Identifier is silently discarded and
//! counted ([`Counters::discarded`]).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

use super::Error;
use super::mschapv2::{self, FailureMessage, ResponseValue, Verification};
use super::users::Users;

pub mod chap;
pub mod pap;

pub use chap::{ChapAuthenticator, ChapAuthenticatorConfig, ChapMethod, ChapPeer, ChapPeerConfig};
pub use pap::{PapAuthenticator, PapAuthenticatorConfig, PapPeer, PapPeerConfig};

/// PPP protocol number of PAP (RFC 1334 §2).
pub const PROTOCOL_PAP: u16 = 0xC023;
/// PPP protocol number of CHAP (RFC 1994 §4), MS-CHAPv2 included.
pub const PROTOCOL_CHAP: u16 = 0xC223;

/// An authentication method, as LCP's Authentication-Protocol option names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// PAP (RFC 1334 §2).
    Pap,
    /// CHAP with MD5, algorithm 5 (RFC 1994 §3).
    ChapMd5,
    /// MS-CHAPv2, CHAP algorithm 0x81 (RFC 2759 §2).
    MsChapV2,
}

impl Method {
    /// The PPP protocol number its packets travel under.
    pub const fn protocol(self) -> u16 {
        match self {
            Method::Pap => PROTOCOL_PAP,
            Method::ChapMd5 | Method::MsChapV2 => PROTOCOL_CHAP,
        }
    }

    /// The CHAP algorithm octet of the LCP option (RFC 1994 §3), `None` for PAP.
    pub const fn chap_algorithm(self) -> Option<u8> {
        match self {
            Method::Pap => None,
            Method::ChapMd5 => Some(chap::ALGORITHM_MD5),
            Method::MsChapV2 => Some(chap::ALGORITHM_MSCHAPV2),
        }
    }
}

/// The credential of a [`VerifyRequest`], exactly as the peer sent it.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// PAP: the clear-text password (RADIUS User-Password).
    Pap { password: Vec<u8> },
    /// CHAP-MD5: the Identifier and Challenge we sent and the peer's 16-octet Response
    /// Value (RADIUS CHAP-Password = identifier || response, CHAP-Challenge).
    ChapMd5 {
        identifier: u8,
        challenge: Vec<u8>,
        response: [u8; 16],
    },
    /// MS-CHAPv2: the Identifier and Authenticator Challenge we sent and the peer's
    /// Response Value (RADIUS MS-CHAP-Challenge, MS-CHAP2-Response).
    MsChapV2 {
        identifier: u8,
        authenticator_challenge: [u8; 16],
        response: ResponseValue,
    },
}

impl core::fmt::Debug for Credential {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            // A clear-text password never goes into a log.
            Credential::Pap { .. } => f.write_str("Pap { password: <redacted> }"),
            Credential::ChapMd5 { identifier, .. } => {
                write!(f, "ChapMd5 {{ identifier: {identifier}, .. }}")
            }
            Credential::MsChapV2 { identifier, .. } => {
                write!(f, "MsChapV2 {{ identifier: {identifier}, .. }}")
            }
        }
    }
}

/// What the authenticator asks the caller to verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyRequest {
    /// Pass back to `handle_verify_result`; a later request of the same machine has a
    /// larger id.
    pub id: u64,
    /// The user name (PAP Peer-ID, CHAP Name), as received.
    pub user: Vec<u8>,
    /// The credential.
    pub credential: Credential,
}

/// Authorization attributes that come with an acceptance (local users file, or the
/// RADIUS reply attributes of `radius::auth`, #7).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplyAttributes {
    /// A fixed IPv4 address (Framed-IP-Address).
    pub address: Option<Ipv4Addr>,
    /// The pool to allocate from (Framed-Pool).
    pub pool: Option<String>,
    /// Framed-IP-Netmask.
    pub netmask: Option<Ipv4Addr>,
    /// Prefixes routed into the session (Framed-Route, RFC 2865 §5.22; the LAC
    /// auto-dial scenario).
    pub routes: Vec<FramedRoute>,
    /// Framed-IPv6-Prefix (RFC 3162 §2.3).
    pub ipv6_prefix: Option<ipnet::Ipv6Net>,
    /// Delegated-IPv6-Prefix (RFC 4818), stored for DHCPv6-PD.
    pub delegated_ipv6_prefix: Option<ipnet::Ipv6Net>,
    /// Session-Timeout (RFC 2865 §5.27).
    pub session_timeout: Option<Duration>,
    /// Idle-Timeout (RFC 2865 §5.28).
    pub idle_timeout: Option<Duration>,
    /// Acct-Interim-Interval (RFC 2869 §5.16).
    pub interim_interval: Option<Duration>,
    /// Class attributes, echoed in accounting (RFC 2865 §5.25).
    pub class: Vec<Vec<u8>>,
    /// Framed-MTU (RFC 2865 §5.12).
    pub mtu: Option<u16>,
    /// Primary and secondary DNS servers (MS-Primary/Secondary-DNS-Server, RFC 2548
    /// §2.6.2; IPCP options 129/131 of RFC 1877).
    pub primary_dns: Option<Ipv4Addr>,
    pub secondary_dns: Option<Ipv4Addr>,
    /// DNS-Server-IPv6-Address (RFC 6911 §3.1).
    pub dns_ipv6: Vec<std::net::Ipv6Addr>,
}

/// One Framed-Route: `prefix [gateway [metric ...]]` (RFC 2865 §5.22). A gateway of
/// 0.0.0.0 (or none) means the session itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FramedRoute {
    pub prefix: ipnet::Ipv4Net,
    pub gateway: Option<Ipv4Addr>,
    pub metric: Option<u32>,
}

/// The answer to a [`VerifyRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthResult {
    /// Whether the credential is right and the user may log in.
    pub accepted: bool,
    /// MS-CHAPv2 acceptance: the authenticator response `"S=<40 hex>"` (RFC 2759 §5;
    /// RADIUS MS-CHAP2-Success without its identifier). Required to accept an MS-CHAPv2
    /// request: an acceptance without it is turned into a rejection.
    pub authenticator_response: Option<String>,
    /// MS-CHAPv2 rejection: the Failure message to send (RADIUS MS-CHAP-Error). `None`:
    /// `E=691 R=0 C=<fresh challenge> V=3 M=<failure text>`.
    pub failure: Option<FailureMessage>,
    /// Text for the PAP Ack/Nak message, the CHAP-MD5 Success/Failure message or the
    /// MS-CHAPv2 `M=` field (RADIUS Reply-Message). `None`: the configured text.
    pub message: Option<String>,
    /// Authorization attributes of an accepted user.
    pub attributes: ReplyAttributes,
}

impl AuthResult {
    /// A plain rejection.
    pub fn reject() -> AuthResult {
        AuthResult {
            accepted: false,
            authenticator_response: None,
            failure: None,
            message: None,
            attributes: ReplyAttributes::default(),
        }
    }

    /// A plain acceptance (for MS-CHAPv2 set `authenticator_response` too).
    pub fn accept(attributes: ReplyAttributes) -> AuthResult {
        AuthResult {
            accepted: true,
            attributes,
            ..AuthResult::reject()
        }
    }
}

/// A synchronous verifier: answers a [`VerifyRequest`] at once.
pub trait Verifier {
    /// Verify the request.
    fn verify(&self, request: &VerifyRequest) -> AuthResult;
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The local users table as a verifier. Names match exactly; for MS-CHAPv2 a name with
/// a `DOMAIN\` prefix that has no entry of its own is looked up without the prefix
/// (RFC 2759 §8.2 hashes the name without it anyway).
impl Verifier for Users {
    fn verify(&self, request: &VerifyRequest) -> AuthResult {
        let user = match &request.credential {
            Credential::MsChapV2 { .. } => self
                .get_bytes(&request.user)
                .or_else(|| self.get_bytes(mschapv2::strip_domain(&request.user))),
            _ => self.get_bytes(&request.user),
        };
        let Some(user) = user else {
            return AuthResult::reject();
        };
        let attributes = ReplyAttributes {
            address: user.address,
            pool: user.pool.clone(),
            ..ReplyAttributes::default()
        };
        match &request.credential {
            Credential::Pap { password } => {
                if constant_time_eq(password, user.password_bytes()) {
                    AuthResult::accept(attributes)
                } else {
                    AuthResult::reject()
                }
            }
            Credential::ChapMd5 {
                identifier,
                challenge,
                response,
            } => {
                let expected =
                    super::chap::md5_response(*identifier, user.password_bytes(), challenge);
                if constant_time_eq(&expected, response) {
                    AuthResult::accept(attributes)
                } else {
                    AuthResult::reject()
                }
            }
            Credential::MsChapV2 {
                authenticator_challenge,
                response,
                ..
            } => match mschapv2::verify_response(
                &request.user,
                &user.password,
                authenticator_challenge,
                response,
                "",
            ) {
                Verification::Success { message } => {
                    // verify_response appended " M=": keep "S=<40 hex>" only.
                    let mut s = message;
                    s.truncate(42);
                    AuthResult {
                        authenticator_response: Some(s),
                        ..AuthResult::accept(attributes)
                    }
                }
                Verification::Failure => AuthResult::reject(),
            },
        }
    }
}

/// Why authentication failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureReason {
    /// Authenticator: the verifier rejected `user`. Peer: the authenticator sent a Nak or
    /// a Failure with this message (`user` is our own name).
    Rejected { user: Vec<u8>, message: Vec<u8> },
    /// Authenticator: no Authenticate-Request within the PAP timeout, or no Response to
    /// the last Challenge retransmission. Peer: no reply to the last retransmission, or
    /// no Challenge within the wait timeout.
    Timeout,
    /// Peer, MS-CHAPv2: the Success message does not carry the authenticator response
    /// our password expects (RFC 2759 §5, §8.8): the authenticator is not who it claims.
    MutualAuthentication,
    /// Authenticator: a re-challenge was answered under another name than the one
    /// authenticated first.
    UserChanged { user: Vec<u8> },
}

/// Something the caller must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Authenticator: verify this and answer with `handle_verify_result`.
    NeedVerify(VerifyRequest),
    /// Authentication succeeded (authenticator: `user` is the peer's name and
    /// `attributes` come from the verifier; peer: `user` is our own name). The session
    /// proceeds to the Network-Layer phase (RFC 1661 §3.5).
    Success {
        user: Vec<u8>,
        attributes: ReplyAttributes,
    },
    /// A CHAP re-challenge during the Network-Layer phase succeeded again (RFC 1994 §2).
    Reauthenticated { user: Vec<u8> },
    /// Authentication failed: the Nak/Failure has been queued (authenticator); the
    /// caller terminates the link (RFC 1661 §3.5). The machine is finished.
    Failure { reason: FailureReason },
}

/// Counters of one machine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Packets that failed to parse.
    pub malformed: u64,
    /// Valid packets discarded: out of state, wrong Identifier, duplicates while a
    /// verification is pending.
    pub discarded: u64,
    /// Retransmissions we sent (timer driven, or a reply repeated for a duplicate).
    pub retransmitted: u64,
    /// Verify results for a request that is no longer current.
    pub stale_results: u64,
}

fn os_rng() -> StdRng {
    StdRng::from_os_rng()
}

fn seeded_rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

fn random_16(rng: &mut StdRng) -> [u8; 16] {
    let mut out = [0u8; 16];
    rng.fill_bytes(&mut out);
    out
}

/// Either authenticator, for the session core.
#[derive(Debug)]
/// Both variants are boxed (the machines differ much in size).
pub enum Authenticator {
    Pap(Box<PapAuthenticator>),
    Chap(Box<ChapAuthenticator>),
}

/// Either peer, for the client emulator.
#[derive(Debug)]
pub enum Peer {
    Pap(PapPeer),
    /// Boxed: the CHAP machine carries its RNG state.
    Chap(Box<ChapPeer>),
}

macro_rules! dispatch {
    ($self:ident, $m:ident => $e:expr) => {
        match $self {
            Self::Pap($m) => $e,
            Self::Chap($m) => $e,
        }
    };
}

impl Authenticator {
    /// The method this authenticator runs.
    pub fn method(&self) -> Method {
        match self {
            Authenticator::Pap(_) => Method::Pap,
            Authenticator::Chap(c) => c.method().into(),
        }
    }

    /// Begin the Authentication phase.
    pub fn start(&mut self, now: Instant) {
        dispatch!(self, m => m.start(now))
    }

    /// A PAP or CHAP packet from the peer (without the PPP protocol field).
    pub fn handle_packet(&mut self, packet: &[u8], now: Instant) -> Result<(), Error> {
        dispatch!(self, m => m.handle_packet(packet, now))
    }

    /// The answer to [`Event::NeedVerify`].
    pub fn handle_verify_result(&mut self, id: u64, result: AuthResult, now: Instant) {
        dispatch!(self, m => m.handle_verify_result(id, result, now))
    }

    /// The deadline passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        dispatch!(self, m => m.handle_timeout(now))
    }

    /// Next packet to send.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        dispatch!(self, m => m.poll_transmit())
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        dispatch!(self, m => m.poll_event())
    }

    /// When `handle_timeout` is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        dispatch!(self, m => m.poll_timeout())
    }

    /// Counters.
    pub fn counters(&self) -> Counters {
        dispatch!(self, m => m.counters())
    }
}

impl Peer {
    /// The method this peer runs.
    pub fn method(&self) -> Method {
        match self {
            Peer::Pap(_) => Method::Pap,
            Peer::Chap(c) => c.method().into(),
        }
    }

    /// Begin the Authentication phase.
    pub fn start(&mut self, now: Instant) {
        dispatch!(self, m => m.start(now))
    }

    /// A PAP or CHAP packet from the authenticator (without the PPP protocol field).
    pub fn handle_packet(&mut self, packet: &[u8], now: Instant) -> Result<(), Error> {
        dispatch!(self, m => m.handle_packet(packet, now))
    }

    /// The deadline passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        dispatch!(self, m => m.handle_timeout(now))
    }

    /// Next packet to send.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        dispatch!(self, m => m.poll_transmit())
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        dispatch!(self, m => m.poll_event())
    }

    /// When `handle_timeout` is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        dispatch!(self, m => m.poll_timeout())
    }

    /// Counters.
    pub fn counters(&self) -> Counters {
        dispatch!(self, m => m.counters())
    }
}

/// Default restart timer of every retransmitting machine (RFC 1661 §4.6: 3 s).
pub const DEFAULT_RESTART: Duration = Duration::from_secs(3);
/// Default number of transmissions of a Challenge or Request (pppd's default, 10).
pub const DEFAULT_MAX_TRANSMITS: u32 = 10;

#[cfg(test)]
mod tests;

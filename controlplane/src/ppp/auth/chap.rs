//! CHAP (RFC 1994 §4) with MD5 (algorithm 5) or MS-CHAPv2 (algorithm 0x81, RFC 2759),
//! authenticator and peer.
//!
//! Authenticator: `start` sends a Challenge with a random Identifier, a random 16-octet
//! Value (RFC 1994 §4.1; RFC 2759 §3) and our Name, and retransmits the same packet every
//! [`ChapAuthenticatorConfig::restart`], at most
//! [`ChapAuthenticatorConfig::max_transmits`] times, then fails with
//! [`FailureReason::Timeout`]. A Response with the current Identifier goes to the verifier;
//! one with another Identifier is discarded (RFC 1994 §4.1), as is a duplicate while the
//! verification is pending. The result is sent as Success or Failure. After that, a
//! Response with the current Identifier gets the same reply again (RFC 1994 §4.2: the
//! Success may be lost). With [`ChapAuthenticatorConfig::rechallenge_interval`] set, a new
//! Challenge (new Identifier, new Value) follows every interval after a Success (RFC 1994
//! §2); it must be answered under the same name. MS-CHAPv2 specifics: the Response Value
//! is the 49-octet [`ResponseValue`]; Success carries `"S=<authenticator response>
//! M=<text>"` (RFC 2759 §5); Failure carries `"E=691 R=0 C=<new challenge> V=3
//! M=<text>"` (§6): no retry.
//!
//! Peer: answers every Challenge (RFC 1994 §4.1 "the peer MUST transmit a Response"),
//! during the Authentication and the Network-Layer phase. The same Challenge (Identifier
//! and Value) retransmitted gets the same Response. While no Success or Failure has come,
//! it retransmits its Response every [`ChapPeerConfig::restart`] (up to
//! [`ChapPeerConfig::max_transmits`]); the authenticator answers such repeats (RFC 1994
//! §4.2), which recovers a lost Success. With MS-CHAPv2 the Peer-Challenge is random and
//! the Success message must carry the authenticator response our password predicts
//! (RFC 2759 §8.8): otherwise [`FailureReason::MutualAuthentication`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand::RngCore;
use rand::rngs::StdRng;

use super::super::Result;
use super::super::chap::{Repr, md5_response};
use super::super::mschapv2::{self, FailureMessage, ResponseValue};
use super::{
    AuthResult, Counters, Credential, DEFAULT_MAX_TRANSMITS, DEFAULT_RESTART, Event, FailureReason,
    Method, ReplyAttributes, VerifyRequest, os_rng, random_16, seeded_rng,
};

/// CHAP algorithm MD5 (RFC 1994 §3).
pub const ALGORITHM_MD5: u8 = 5;
/// CHAP algorithm MS-CHAPv2 (RFC 2759 §2).
pub const ALGORITHM_MSCHAPV2: u8 = 0x81;

/// Length of the Challenge Value we send.
pub const CHALLENGE_LEN: usize = 16;

/// The CHAP algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChapMethod {
    Md5,
    MsChapV2,
}

impl From<ChapMethod> for Method {
    fn from(method: ChapMethod) -> Method {
        match method {
            ChapMethod::Md5 => Method::ChapMd5,
            ChapMethod::MsChapV2 => Method::MsChapV2,
        }
    }
}

/// Configuration of a [`ChapAuthenticator`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChapAuthenticatorConfig {
    /// MD5 or MS-CHAPv2.
    pub method: ChapMethod,
    /// Our Name in the Challenge.
    pub name: Vec<u8>,
    /// Challenge retransmission interval.
    pub restart: Duration,
    /// Transmissions of a Challenge before giving up.
    pub max_transmits: u32,
    /// Re-challenge this long after each Success; `None`: never.
    pub rechallenge_interval: Option<Duration>,
    /// Text of the Success message (MS-CHAPv2: after `M=`).
    pub success_message: String,
    /// Text of the Failure message (MS-CHAPv2: after `M=`).
    pub failure_message: String,
}

impl ChapAuthenticatorConfig {
    /// Defaults: 3 s restart, 10 transmissions, no re-challenge, pppd's messages.
    pub fn new(method: ChapMethod, name: &[u8]) -> ChapAuthenticatorConfig {
        ChapAuthenticatorConfig {
            method,
            name: name.to_vec(),
            restart: DEFAULT_RESTART,
            max_transmits: DEFAULT_MAX_TRANSMITS,
            rechallenge_interval: None,
            success_message: "Access granted".into(),
            failure_message: "Access denied".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Initial,
    Challenging {
        sent: u32,
        deadline: Instant,
        packet: Vec<u8>,
    },
    Verifying {
        request_id: u64,
        user: Vec<u8>,
    },
    Replied {
        success: bool,
        reply: Vec<u8>,
        rechallenge_at: Option<Instant>,
    },
    /// No Response to the last Challenge.
    TimedOut,
}

/// The CHAP authenticator (RFC 1994 §4, RFC 2759).
#[derive(Debug)]
pub struct ChapAuthenticator {
    config: ChapAuthenticatorConfig,
    rng: StdRng,
    phase: Phase,
    identifier: u8,
    challenge: Vec<u8>,
    authenticated: Option<Vec<u8>>,
    next_request_id: u64,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
    counters: Counters,
}

impl ChapAuthenticator {
    /// A new authenticator drawing challenges from the operating system's CSPRNG.
    pub fn new(config: ChapAuthenticatorConfig) -> ChapAuthenticator {
        Self::with_rng(config, os_rng())
    }

    /// A new authenticator with a deterministic RNG (tests only: challenges become
    /// predictable).
    pub fn with_seed(config: ChapAuthenticatorConfig, seed: u64) -> ChapAuthenticator {
        Self::with_rng(config, seeded_rng(seed))
    }

    /// A new authenticator with the caller's RNG.
    pub fn with_rng(config: ChapAuthenticatorConfig, rng: StdRng) -> ChapAuthenticator {
        ChapAuthenticator {
            config,
            rng,
            phase: Phase::Initial,
            identifier: 0,
            challenge: Vec::new(),
            authenticated: None,
            next_request_id: 1,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            counters: Counters::default(),
        }
    }

    /// The algorithm.
    pub fn method(&self) -> ChapMethod {
        self.config.method
    }

    /// Whether the peer is authenticated now (a failed re-challenge ends that).
    pub fn is_authenticated(&self) -> bool {
        self.authenticated.is_some()
            && !matches!(
                self.phase,
                Phase::Replied { success: false, .. } | Phase::TimedOut
            )
    }

    /// Send the first Challenge (random Identifier and Value).
    pub fn start(&mut self, now: Instant) {
        if self.phase == Phase::Initial {
            let identifier = self.rng.next_u32() as u8;
            let value = random_16(&mut self.rng).to_vec();
            self.send_challenge(now, identifier, value);
        }
    }

    /// Send the first Challenge with a caller-chosen Identifier and Value: for tests
    /// and the replay of captured exchanges; production uses [`start`](Self::start).
    /// MS-CHAPv2 needs a 16-octet Value
    /// ([`Error::BadLength`](crate::ppp::Error::BadLength) otherwise).
    pub fn start_with_challenge(
        &mut self,
        now: Instant,
        identifier: u8,
        value: &[u8],
    ) -> Result<()> {
        if self.config.method == ChapMethod::MsChapV2 {
            mschapv2::parse_challenge(value)?;
        }
        if self.phase == Phase::Initial {
            self.send_challenge(now, identifier, value.to_vec());
        }
        Ok(())
    }

    fn send_challenge(&mut self, now: Instant, identifier: u8, value: Vec<u8>) {
        self.identifier = identifier;
        let packet = Repr::Challenge {
            identifier,
            value: value.clone(),
            name: self.config.name.clone(),
        }
        .to_bytes();
        self.challenge = value;
        self.transmit.push_back(packet.clone());
        self.phase = Phase::Challenging {
            sent: 1,
            deadline: now + self.config.restart,
            packet,
        };
    }

    /// A CHAP packet from the peer.
    pub fn handle_packet(&mut self, packet: &[u8], now: Instant) -> Result<()> {
        let repr = match Repr::from_bytes(packet) {
            Ok(repr) => repr,
            Err(error) => {
                self.counters.malformed += 1;
                return Err(error);
            }
        };
        let Repr::Response {
            identifier,
            value,
            name,
        } = repr
        else {
            self.counters.discarded += 1;
            return Ok(());
        };
        if identifier != self.identifier {
            // RFC 1994 §4.1: the Response Identifier must be the Challenge's.
            self.counters.discarded += 1;
            return Ok(());
        }
        match &self.phase {
            Phase::Challenging { .. } => {
                match self.credential(&value) {
                    Some(credential) => {
                        let request_id = self.next_request_id;
                        self.next_request_id += 1;
                        self.events.push_back(Event::NeedVerify(VerifyRequest {
                            id: request_id,
                            user: name.clone(),
                            credential,
                        }));
                        self.phase = Phase::Verifying {
                            request_id,
                            user: name,
                        };
                    }
                    // A Value of the wrong size cannot be right.
                    None => self.reply(name, AuthResult::reject(), now),
                }
            }
            Phase::Replied { reply, .. } => {
                // RFC 1994 §4.2: the same reply for the current Identifier.
                self.counters.retransmitted += 1;
                self.transmit.push_back(reply.clone());
            }
            Phase::Initial | Phase::Verifying { .. } | Phase::TimedOut => {
                self.counters.discarded += 1
            }
        }
        Ok(())
    }

    fn credential(&self, value: &[u8]) -> Option<Credential> {
        match self.config.method {
            ChapMethod::Md5 => Some(Credential::ChapMd5 {
                identifier: self.identifier,
                challenge: self.challenge.clone(),
                response: value.try_into().ok()?,
            }),
            ChapMethod::MsChapV2 => Some(Credential::MsChapV2 {
                identifier: self.identifier,
                authenticator_challenge: self.challenge.as_slice().try_into().ok()?,
                response: ResponseValue::parse(value).ok()?,
            }),
        }
    }

    /// The verifier's answer to [`Event::NeedVerify`].
    pub fn handle_verify_result(&mut self, id: u64, result: AuthResult, now: Instant) {
        match &self.phase {
            Phase::Verifying { request_id, user } if *request_id == id => {
                let user = user.clone();
                self.reply(user, result, now);
            }
            _ => self.counters.stale_results += 1,
        }
    }

    fn reply(&mut self, user: Vec<u8>, result: AuthResult, now: Instant) {
        let user_changed = self.authenticated.as_ref().is_some_and(|u| *u != user);
        let method = self.config.method;
        let success_message = match (&result.authenticator_response, method) {
            _ if !result.accepted || user_changed => None,
            (_, ChapMethod::Md5) => Some(
                result
                    .message
                    .clone()
                    .unwrap_or_else(|| self.config.success_message.clone()),
            ),
            (Some(s), ChapMethod::MsChapV2) => {
                let text = result
                    .message
                    .as_deref()
                    .unwrap_or(&self.config.success_message);
                Some(format!("{s} M={text}"))
            }
            // An MS-CHAPv2 acceptance without the authenticator response cannot be
            // completed (RFC 2759 §5): the peer would reject us.
            (None, ChapMethod::MsChapV2) => None,
        };
        let identifier = self.identifier;
        let success = success_message.is_some();
        let reply = match success_message {
            Some(message) => Repr::Success {
                identifier,
                message: message.into_bytes(),
            },
            None => {
                let text = result
                    .message
                    .clone()
                    .unwrap_or_else(|| self.config.failure_message.clone());
                let message = match method {
                    ChapMethod::Md5 => text,
                    ChapMethod::MsChapV2 => result
                        .failure
                        .clone()
                        .unwrap_or_else(|| {
                            FailureMessage::authentication_failure(random_16(&mut self.rng), &text)
                        })
                        .to_string(),
                };
                Repr::Failure {
                    identifier,
                    message: message.into_bytes(),
                }
            }
        }
        .to_bytes();
        self.transmit.push_back(reply.clone());
        if success {
            let event = if self.authenticated.is_some() {
                Event::Reauthenticated { user: user.clone() }
            } else {
                Event::Success {
                    user: user.clone(),
                    attributes: result.attributes,
                }
            };
            self.events.push_back(event);
            self.authenticated = Some(user);
        } else {
            let reason = if user_changed {
                FailureReason::UserChanged { user }
            } else {
                let message = match Repr::from_bytes(&reply) {
                    Ok(Repr::Failure { message, .. }) => message,
                    _ => Vec::new(),
                };
                FailureReason::Rejected { user, message }
            };
            self.events.push_back(Event::Failure { reason });
        }
        self.phase = Phase::Replied {
            success,
            reply,
            rechallenge_at: self
                .config
                .rechallenge_interval
                .filter(|_| success)
                .map(|interval| now + interval),
        };
    }

    /// Retransmit the Challenge, give up, or re-challenge.
    pub fn handle_timeout(&mut self, now: Instant) {
        match &mut self.phase {
            Phase::Challenging {
                sent,
                deadline,
                packet,
            } if now >= *deadline => {
                if *sent >= self.config.max_transmits {
                    self.phase = Phase::TimedOut;
                    self.events.push_back(Event::Failure {
                        reason: FailureReason::Timeout,
                    });
                } else {
                    *sent += 1;
                    *deadline = now + self.config.restart;
                    self.counters.retransmitted += 1;
                    self.transmit.push_back(packet.clone());
                }
            }
            Phase::Replied {
                success: true,
                rechallenge_at: Some(at),
                ..
            } if now >= *at => {
                // RFC 1994 §4.1: a new Identifier and a new Value for every Challenge.
                let identifier = self.identifier.wrapping_add(1);
                let value = random_16(&mut self.rng).to_vec();
                self.send_challenge(now, identifier, value);
            }
            _ => {}
        }
    }

    /// Next packet to send (CHAP, without the protocol field).
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When `handle_timeout` is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Challenging { deadline, .. } => Some(*deadline),
            Phase::Replied { rechallenge_at, .. } => *rechallenge_at,
            _ => None,
        }
    }

    /// Counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }
}

/// Configuration of a [`ChapPeer`].
#[derive(Clone, PartialEq, Eq)]
pub struct ChapPeerConfig {
    /// MD5 or MS-CHAPv2.
    pub method: ChapMethod,
    /// Our Name in the Response (the user name).
    pub name: Vec<u8>,
    /// The secret (MD5: its UTF-8 octets; MS-CHAPv2: hashed as UTF-16LE).
    pub password: String,
    /// Response retransmission interval.
    pub restart: Duration,
    /// Transmissions of a Response before giving up.
    pub max_transmits: u32,
    /// How long to wait for the first Challenge after `start`.
    pub challenge_timeout: Duration,
}

impl ChapPeerConfig {
    /// Defaults: 3 s restart, 10 transmissions, 30 s to wait for a Challenge.
    pub fn new(method: ChapMethod, name: &[u8], password: &str) -> ChapPeerConfig {
        ChapPeerConfig {
            method,
            name: name.to_vec(),
            password: password.to_owned(),
            restart: DEFAULT_RESTART,
            max_transmits: DEFAULT_MAX_TRANSMITS,
            challenge_timeout: Duration::from_secs(30),
        }
    }
}

impl core::fmt::Debug for ChapPeerConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ChapPeerConfig")
            .field("method", &self.method)
            .field("name", &String::from_utf8_lossy(&self.name))
            .field("restart", &self.restart)
            .field("max_transmits", &self.max_transmits)
            .field("challenge_timeout", &self.challenge_timeout)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PeerPhase {
    Initial,
    WaitChallenge { deadline: Instant },
    AwaitReply { sent: u32, deadline: Instant },
    Authenticated,
    Finished,
}

/// What we answered last.
#[derive(Debug, Clone)]
struct Answered {
    identifier: u8,
    challenge: Vec<u8>,
    packet: Vec<u8>,
    /// MS-CHAPv2: Peer-Challenge and NT-Response, to check the authenticator response.
    peer_challenge: [u8; 16],
    nt_response: [u8; 24],
}

/// The CHAP peer (RFC 1994 §4, RFC 2759).
#[derive(Debug)]
pub struct ChapPeer {
    config: ChapPeerConfig,
    rng: StdRng,
    phase: PeerPhase,
    answered: Option<Answered>,
    authenticated: bool,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
    counters: Counters,
}

impl ChapPeer {
    /// A new peer drawing MS-CHAPv2 Peer-Challenges from the operating system's CSPRNG.
    pub fn new(config: ChapPeerConfig) -> ChapPeer {
        Self::with_rng(config, os_rng())
    }

    /// A new peer with a deterministic RNG (tests, benchmarks).
    pub fn with_seed(config: ChapPeerConfig, seed: u64) -> ChapPeer {
        Self::with_rng(config, seeded_rng(seed))
    }

    /// A new peer with the caller's RNG.
    pub fn with_rng(config: ChapPeerConfig, rng: StdRng) -> ChapPeer {
        ChapPeer {
            config,
            rng,
            phase: PeerPhase::Initial,
            answered: None,
            authenticated: false,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            counters: Counters::default(),
        }
    }

    /// The algorithm.
    pub fn method(&self) -> ChapMethod {
        self.config.method
    }

    /// Begin waiting for a Challenge.
    pub fn start(&mut self, now: Instant) {
        if self.phase == PeerPhase::Initial {
            self.phase = PeerPhase::WaitChallenge {
                deadline: now + self.config.challenge_timeout,
            };
        }
    }

    /// A CHAP packet from the authenticator.
    pub fn handle_packet(&mut self, packet: &[u8], now: Instant) -> Result<()> {
        let repr = match Repr::from_bytes(packet) {
            Ok(repr) => repr,
            Err(error) => {
                self.counters.malformed += 1;
                return Err(error);
            }
        };
        if self.phase == PeerPhase::Finished {
            self.counters.discarded += 1;
            return Ok(());
        }
        match repr {
            Repr::Challenge {
                identifier, value, ..
            } => self.answer(identifier, value, now)?,
            Repr::Success {
                identifier,
                message,
            } if self.awaits_reply(identifier) => self.succeeded(&message),
            Repr::Failure {
                identifier,
                message,
            } if self.awaits_reply(identifier) => {
                self.phase = PeerPhase::Finished;
                self.events.push_back(Event::Failure {
                    reason: FailureReason::Rejected {
                        user: self.config.name.clone(),
                        message,
                    },
                });
            }
            _ => self.counters.discarded += 1,
        }
        Ok(())
    }

    fn awaits_reply(&self, identifier: u8) -> bool {
        matches!(self.phase, PeerPhase::AwaitReply { .. })
            && self
                .answered
                .as_ref()
                .is_some_and(|a| a.identifier == identifier)
    }

    fn answer(&mut self, identifier: u8, challenge: Vec<u8>, now: Instant) -> Result<()> {
        let deadline = now + self.config.restart;
        if let Some(answered) = &self.answered {
            if answered.identifier == identifier && answered.challenge == challenge {
                // The same Challenge again: our Response was lost; the same answer.
                self.counters.retransmitted += 1;
                self.transmit.push_back(answered.packet.clone());
                if let PeerPhase::AwaitReply { sent, .. } = self.phase {
                    self.phase = PeerPhase::AwaitReply {
                        sent: sent + 1,
                        deadline,
                    };
                }
                return Ok(());
            }
        }
        let (value, peer_challenge, nt_response) = match self.config.method {
            ChapMethod::Md5 => (
                md5_response(identifier, self.config.password.as_bytes(), &challenge).to_vec(),
                [0; 16],
                [0; 24],
            ),
            ChapMethod::MsChapV2 => {
                let authenticator_challenge = match mschapv2::parse_challenge(&challenge) {
                    Ok(c) => c,
                    Err(error) => {
                        self.counters.malformed += 1;
                        return Err(error);
                    }
                };
                let peer_challenge = random_16(&mut self.rng);
                let nt_response = mschapv2::generate_nt_response(
                    &authenticator_challenge,
                    &peer_challenge,
                    &self.config.name,
                    &self.config.password,
                );
                let value = ResponseValue {
                    peer_challenge,
                    nt_response,
                    flags: 0,
                };
                (value.to_bytes().to_vec(), peer_challenge, nt_response)
            }
        };
        let packet = Repr::Response {
            identifier,
            value,
            name: self.config.name.clone(),
        }
        .to_bytes();
        self.transmit.push_back(packet.clone());
        self.answered = Some(Answered {
            identifier,
            challenge,
            packet,
            peer_challenge,
            nt_response,
        });
        self.phase = PeerPhase::AwaitReply { sent: 1, deadline };
        Ok(())
    }

    fn succeeded(&mut self, message: &[u8]) {
        if self.config.method == ChapMethod::MsChapV2 {
            let verified = self.answered.as_ref().is_some_and(|a| {
                a.challenge.as_slice().try_into().is_ok_and(|auth| {
                    mschapv2::check_success_message(
                        &self.config.password,
                        &a.nt_response,
                        &a.peer_challenge,
                        &auth,
                        &self.config.name,
                        message,
                    )
                })
            });
            if !verified {
                self.phase = PeerPhase::Finished;
                self.events.push_back(Event::Failure {
                    reason: FailureReason::MutualAuthentication,
                });
                return;
            }
        }
        self.phase = PeerPhase::Authenticated;
        let user = self.config.name.clone();
        self.events.push_back(if self.authenticated {
            Event::Reauthenticated { user }
        } else {
            Event::Success {
                user,
                attributes: ReplyAttributes::default(),
            }
        });
        self.authenticated = true;
    }

    /// Retransmit the Response, or give up.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            PeerPhase::WaitChallenge { deadline } if now >= deadline => {
                self.phase = PeerPhase::Finished;
                self.events.push_back(Event::Failure {
                    reason: FailureReason::Timeout,
                });
            }
            PeerPhase::AwaitReply { sent, deadline } if now >= deadline => {
                if sent >= self.config.max_transmits {
                    self.phase = PeerPhase::Finished;
                    self.events.push_back(Event::Failure {
                        reason: FailureReason::Timeout,
                    });
                } else if let Some(answered) = &self.answered {
                    self.counters.retransmitted += 1;
                    self.transmit.push_back(answered.packet.clone());
                    self.phase = PeerPhase::AwaitReply {
                        sent: sent + 1,
                        deadline: now + self.config.restart,
                    };
                }
            }
            _ => {}
        }
    }

    /// Next packet to send (CHAP, without the protocol field).
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When `handle_timeout` is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            PeerPhase::WaitChallenge { deadline } | PeerPhase::AwaitReply { deadline, .. } => {
                Some(deadline)
            }
            _ => None,
        }
    }

    /// Counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }
}

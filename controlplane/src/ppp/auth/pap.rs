//! PAP (RFC 1334 §2), authenticator and peer.
//!
//! Authenticator: after `start` it waits for an Authenticate-Request; none within
//! [`PapAuthenticatorConfig::request_timeout`] fails with [`FailureReason::Timeout`]. A
//! request is handed to the verifier ([`Event::NeedVerify`]); the result is answered with
//! an Authenticate-Ack or -Nak carrying the request's Identifier (RFC 1334 §2.2.2). The
//! peer changes the Identifier on every retransmission (§2.2.1), so while a verification
//! is pending a retransmission with the same Peer-ID and Password only moves the
//! Identifier the reply will carry. After an Ack, a request with the same Identifier is
//! answered with the same Ack again (the Ack was lost), and so is a retransmission with
//! a new Identifier and the same credentials (as pppd does); anything else is discarded.
//! After a Nak, the same Identifier gets the same Nak again.
//!
//! Peer: sends Authenticate-Request, with a new Identifier on every retransmission
//! (§2.2.1), every [`PapPeerConfig::restart`] until an Ack or Nak with the current
//! Identifier arrives, at most [`PapPeerConfig::max_transmits`] times.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::super::Error;
use super::super::pap::Repr;
use super::{
    AuthResult, Counters, Credential, DEFAULT_MAX_TRANSMITS, DEFAULT_RESTART, Event, FailureReason,
    ReplyAttributes, VerifyRequest,
};

/// Configuration of a [`PapAuthenticator`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PapAuthenticatorConfig {
    /// How long to wait for the first Authenticate-Request (pppd: 30 s).
    pub request_timeout: Duration,
    /// Message of the Authenticate-Ack.
    pub ack_message: String,
    /// Message of the Authenticate-Nak.
    pub nak_message: String,
}

impl Default for PapAuthenticatorConfig {
    fn default() -> Self {
        PapAuthenticatorConfig {
            request_timeout: Duration::from_secs(30),
            ack_message: "Login ok".into(),
            nak_message: "Login incorrect".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Initial,
    Waiting {
        deadline: Instant,
    },
    Verifying {
        request_id: u64,
        identifier: u8,
        user: Vec<u8>,
        password: Vec<u8>,
    },
    Acked {
        identifier: u8,
        user: Vec<u8>,
        password: Vec<u8>,
        reply: Vec<u8>,
    },
    Naked {
        identifier: u8,
        reply: Vec<u8>,
    },
    /// Timed out before any request.
    Finished,
}

/// The PAP authenticator (RFC 1334 §2).
#[derive(Debug)]
pub struct PapAuthenticator {
    config: PapAuthenticatorConfig,
    state: State,
    next_request_id: u64,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
    counters: Counters,
}

impl PapAuthenticator {
    /// A new authenticator; nothing happens until [`start`](Self::start).
    pub fn new(config: PapAuthenticatorConfig) -> PapAuthenticator {
        PapAuthenticator {
            config,
            state: State::Initial,
            next_request_id: 1,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            counters: Counters::default(),
        }
    }

    /// Begin waiting for the peer's Authenticate-Request.
    pub fn start(&mut self, now: Instant) {
        if self.state == State::Initial {
            self.state = State::Waiting {
                deadline: now + self.config.request_timeout,
            };
        }
    }

    /// Whether the peer has been authenticated.
    pub fn is_authenticated(&self) -> bool {
        matches!(self.state, State::Acked { .. })
    }

    /// A PAP packet from the peer.
    pub fn handle_packet(&mut self, packet: &[u8], _now: Instant) -> Result<(), Error> {
        let repr = match Repr::from_bytes(packet) {
            Ok(repr) => repr,
            Err(error) => {
                self.counters.malformed += 1;
                return Err(error);
            }
        };
        let Repr::AuthenticateRequest {
            identifier: id,
            peer_id,
            password,
        } = repr
        else {
            // Ack and Nak go to the peer, never to us.
            self.counters.discarded += 1;
            return Ok(());
        };
        match &mut self.state {
            State::Waiting { .. } => {
                let request_id = self.next_request_id;
                self.next_request_id += 1;
                self.events.push_back(Event::NeedVerify(VerifyRequest {
                    id: request_id,
                    user: peer_id.clone(),
                    credential: Credential::Pap {
                        password: password.clone(),
                    },
                }));
                self.state = State::Verifying {
                    request_id,
                    identifier: id,
                    user: peer_id,
                    password,
                };
            }
            State::Verifying {
                identifier,
                user,
                password: pending,
                ..
            } if *user == peer_id && *pending == password => *identifier = id,
            State::Acked {
                identifier,
                user,
                password: accepted,
                reply,
            } => {
                if id == *identifier {
                    self.counters.retransmitted += 1;
                    self.transmit.push_back(reply.clone());
                } else if *user == peer_id && *accepted == password {
                    *identifier = id;
                    *reply = Repr::AuthenticateAck {
                        identifier: id,
                        message: self.config.ack_message.clone().into_bytes(),
                    }
                    .to_bytes();
                    self.counters.retransmitted += 1;
                    self.transmit.push_back(reply.clone());
                } else {
                    self.counters.discarded += 1;
                }
            }
            State::Naked { identifier, reply } if id == *identifier => {
                self.counters.retransmitted += 1;
                self.transmit.push_back(reply.clone());
            }
            _ => self.counters.discarded += 1,
        }
        Ok(())
    }

    /// The verifier's answer to [`Event::NeedVerify`].
    pub fn handle_verify_result(&mut self, id: u64, result: AuthResult, _now: Instant) {
        let State::Verifying {
            request_id,
            identifier,
            user,
            password,
        } = &self.state
        else {
            self.counters.stale_results += 1;
            return;
        };
        if *request_id != id {
            self.counters.stale_results += 1;
            return;
        }
        let (identifier, user, password) = (*identifier, user.clone(), password.clone());
        if result.accepted {
            let message = result
                .message
                .unwrap_or_else(|| self.config.ack_message.clone());
            let reply = Repr::AuthenticateAck {
                identifier,
                message: message.into_bytes(),
            }
            .to_bytes();
            self.transmit.push_back(reply.clone());
            self.events.push_back(Event::Success {
                user: user.clone(),
                attributes: result.attributes,
            });
            self.state = State::Acked {
                identifier,
                user,
                password,
                reply,
            };
        } else {
            let message = result
                .message
                .unwrap_or_else(|| self.config.nak_message.clone());
            let reply = Repr::AuthenticateNak {
                identifier,
                message: message.clone().into_bytes(),
            }
            .to_bytes();
            self.transmit.push_back(reply.clone());
            self.events.push_back(Event::Failure {
                reason: FailureReason::Rejected {
                    user,
                    message: message.into_bytes(),
                },
            });
            self.state = State::Naked { identifier, reply };
        }
    }

    /// The deadline passed: no request in time fails (RFC 1334 §2.1: the authenticator
    /// may give up after a time).
    pub fn handle_timeout(&mut self, now: Instant) {
        if let State::Waiting { deadline } = self.state {
            if now >= deadline {
                self.state = State::Finished;
                self.events.push_back(Event::Failure {
                    reason: FailureReason::Timeout,
                });
            }
        }
    }

    /// Next packet to send (PAP, without the protocol field).
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When `handle_timeout` is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Waiting { deadline } => Some(deadline),
            _ => None,
        }
    }

    /// Counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }
}

/// Configuration of a [`PapPeer`].
#[derive(Clone, PartialEq, Eq)]
pub struct PapPeerConfig {
    /// Peer-ID.
    pub user: Vec<u8>,
    /// Password.
    pub password: Vec<u8>,
    /// Retransmission interval.
    pub restart: Duration,
    /// Transmissions of the request before giving up.
    pub max_transmits: u32,
}

impl PapPeerConfig {
    /// Defaults: 3 s restart, 10 transmissions.
    pub fn new(user: &[u8], password: &[u8]) -> PapPeerConfig {
        PapPeerConfig {
            user: user.to_vec(),
            password: password.to_vec(),
            restart: DEFAULT_RESTART,
            max_transmits: DEFAULT_MAX_TRANSMITS,
        }
    }
}

impl core::fmt::Debug for PapPeerConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PapPeerConfig")
            .field("user", &String::from_utf8_lossy(&self.user))
            .field("restart", &self.restart)
            .field("max_transmits", &self.max_transmits)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PeerState {
    Initial,
    Requesting {
        identifier: u8,
        sent: u32,
        deadline: Instant,
    },
    Finished,
}

/// The PAP peer (RFC 1334 §2).
#[derive(Debug)]
pub struct PapPeer {
    config: PapPeerConfig,
    state: PeerState,
    next_identifier: u8,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
    counters: Counters,
}

impl PapPeer {
    /// A new peer; nothing is sent until [`start`](Self::start).
    pub fn new(config: PapPeerConfig) -> PapPeer {
        PapPeer {
            config,
            state: PeerState::Initial,
            next_identifier: 1,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            counters: Counters::default(),
        }
    }

    fn send_request(&mut self, now: Instant, sent: u32) {
        let identifier = self.next_identifier;
        self.next_identifier = self.next_identifier.wrapping_add(1);
        self.transmit.push_back(
            Repr::AuthenticateRequest {
                identifier,
                peer_id: self.config.user.clone(),
                password: self.config.password.clone(),
            }
            .to_bytes(),
        );
        self.state = PeerState::Requesting {
            identifier,
            sent,
            deadline: now + self.config.restart,
        };
    }

    /// Send the first Authenticate-Request.
    pub fn start(&mut self, now: Instant) {
        if self.state == PeerState::Initial {
            self.send_request(now, 1);
        }
    }

    /// A PAP packet from the authenticator.
    pub fn handle_packet(&mut self, packet: &[u8], _now: Instant) -> Result<(), Error> {
        let repr = match Repr::from_bytes(packet) {
            Ok(repr) => repr,
            Err(error) => {
                self.counters.malformed += 1;
                return Err(error);
            }
        };
        let PeerState::Requesting { identifier, .. } = self.state else {
            self.counters.discarded += 1;
            return Ok(());
        };
        match repr {
            Repr::AuthenticateAck {
                identifier: id,
                message: _,
            } if id == identifier => {
                self.state = PeerState::Finished;
                self.events.push_back(Event::Success {
                    user: self.config.user.clone(),
                    attributes: ReplyAttributes::default(),
                });
            }
            Repr::AuthenticateNak {
                identifier: id,
                message,
            } if id == identifier => {
                self.state = PeerState::Finished;
                self.events.push_back(Event::Failure {
                    reason: FailureReason::Rejected {
                        user: self.config.user.clone(),
                        message,
                    },
                });
            }
            _ => self.counters.discarded += 1,
        }
        Ok(())
    }

    /// The restart timer expired: retransmit with a new Identifier, or give up.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let PeerState::Requesting { sent, deadline, .. } = self.state {
            if now < deadline {
                return;
            }
            if sent >= self.config.max_transmits {
                self.state = PeerState::Finished;
                self.events.push_back(Event::Failure {
                    reason: FailureReason::Timeout,
                });
            } else {
                self.counters.retransmitted += 1;
                self.send_request(now, sent + 1);
            }
        }
    }

    /// Next packet to send (PAP, without the protocol field).
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When `handle_timeout` is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            PeerState::Requesting { deadline, .. } => Some(deadline),
            _ => None,
        }
    }

    /// Counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }
}

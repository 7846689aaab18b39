//! LCP around the automaton: [`LcpLink`] drives an [`Fsm<Lcp>`] and adds what only LCP
//! does on an established link.
//!
//! * Echo keepalive (RFC 1661 §5.8): while Opened, an Echo-Request every
//!   [`Keepalive::interval`], the first as soon as the link opens (as pppd does). An
//!   Echo-Reply carrying the peer's Magic-Number resets the count of unanswered requests;
//!   when [`Keepalive::max_failures`] requests are unanswered at the time the next one is
//!   due, [`LinkEvent::LinkDead`] is reported, exactly `interval * max_failures` after the
//!   first unanswered request was sent, and keepalive stops. Tearing down is the owner's
//!   call (it has an L2TP session to clear too).
//! * Echo-Requests are answered by the automaton with our negotiated Magic-Number
//!   ([`Lcp`]'s `magic_number`); Discard-Requests are ignored (§5.9).
//! * Protocol-Reject (§5.7): [`LcpLink::protocol_reject`] emits one for a PPP protocol we do
//!   not run, truncated to the peer's MRU; a received one is reported as
//!   [`LinkEvent::ProtocolRejected`] so the owner stops that NCP
//!   ([`Fsm::protocol_rejected`]).
//! * Policy failures (no common authentication protocol, loopback) close LCP with the reason
//!   as Terminate-Request data and are reported as [`LinkEvent::Failed`].
//!
//! Sans-IO like the automaton: inputs carry `now`; outputs are polled.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::fsm::{Config, Fsm, LayerEvent, PacketError, State, code, emit_packet};
use super::lcp_proto::{Lcp, Negotiated};
use super::policy::{NegotiationFailure, close_on_failure};

/// Echo keepalive settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Time between Echo-Requests.
    pub interval: Duration,
    /// Unanswered Echo-Requests before the link is declared dead.
    pub max_failures: u32,
}

impl Default for Keepalive {
    /// pppd's usual `lcp-echo-interval 30`, `lcp-echo-failure 4`.
    fn default() -> Self {
        Keepalive {
            interval: Duration::from_secs(30),
            max_failures: 4,
        }
    }
}

/// What the link tells its owner (the PPP session core).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// tlu: LCP Opened; the authentication phase may start (RFC 1661 §3.2).
    Up(Negotiated),
    /// tld: LCP left Opened; NCPs and authentication go down.
    Down,
    /// tls: the lower layer (the L2TP session) is needed.
    Started,
    /// tlf: the lower layer is no longer needed.
    Finished,
    /// The peer Protocol-Rejected this protocol: stop its automaton (RFC 1661 §5.7).
    ProtocolRejected { protocol: u16 },
    /// The peer Code-Rejected a code we may stop using (RXJ+).
    CodeRejected { code: u8 },
    /// `max_failures` Echo-Requests went unanswered.
    LinkDead,
    /// The negotiation was given up; LCP is closing with this reason.
    Failed(NegotiationFailure),
}

/// LCP for one PPP link; see the module documentation.
#[derive(Debug)]
pub struct LcpLink {
    fsm: Fsm<Lcp>,
    keepalive: Option<Keepalive>,
    /// When the next Echo-Request is due (only while Opened).
    next_echo: Option<Instant>,
    /// Echo-Requests sent since the last good Echo-Reply.
    unanswered: u32,
    /// Identifier of the next Protocol-Reject (§5.7: changed for each one sent).
    reject_id: u8,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<LinkEvent>,
}

impl LcpLink {
    /// A link in the Initial state; `keepalive: None` disables echoes.
    pub fn new(lcp: Lcp, config: Config, keepalive: Option<Keepalive>) -> LcpLink {
        LcpLink {
            fsm: Fsm::new(lcp, config),
            keepalive,
            next_echo: None,
            unanswered: 0,
            reject_id: 0,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The automaton (state, counters).
    pub fn fsm(&self) -> &Fsm<Lcp> {
        &self.fsm
    }

    /// The automaton, mutable (e.g. to change the policy before an Open).
    pub fn fsm_mut(&mut self) -> &mut Fsm<Lcp> {
        &mut self.fsm
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.fsm.state()
    }

    /// What was agreed, while Opened.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        (self.fsm.state() == State::Opened).then(|| self.fsm.protocol().negotiated())
    }

    /// Echo-Requests sent and not answered yet.
    pub fn unanswered_echoes(&self) -> u32 {
        self.unanswered
    }

    /// The lower layer is up.
    pub fn up(&mut self, now: Instant) {
        self.fsm.up(now);
        self.after(now);
    }

    /// The lower layer is down.
    pub fn down(&mut self, now: Instant) {
        self.fsm.down(now);
        self.after(now);
    }

    /// Starts the link Opened with `negotiated` as the agreed values (proxy LCP, RFC 2661
    /// §4.4.5), from the Initial state only; returns whether it did. [`LinkEvent::Up`]
    /// follows, and keepalive starts, as after a negotiation.
    pub fn start_opened(&mut self, negotiated: Negotiated, now: Instant) -> bool {
        if self.fsm.state() != State::Initial {
            return false;
        }
        self.fsm.protocol_mut().assume_negotiated(negotiated);
        let opened = self.fsm.force_opened();
        self.after(now);
        opened
    }

    /// Administrative Open.
    pub fn open(&mut self, now: Instant) {
        self.fsm.open(now);
        self.after(now);
    }

    /// Administrative Close with `reason` as Terminate-Request data.
    pub fn close(&mut self, now: Instant, reason: &[u8]) {
        self.fsm.close_with_reason(now, reason);
        self.after(now);
    }

    /// A received LCP packet (Code, Identifier, Length, Data; no PPP protocol field).
    pub fn handle_packet(&mut self, packet: &[u8], now: Instant) -> Result<(), PacketError> {
        let result = self.fsm.handle_packet(packet, now);
        self.after(now);
        result
    }

    /// Fires the Restart timer and the keepalive when due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.fsm.handle_timeout(now);
        self.after(now);
    }

    /// Queues an LCP Protocol-Reject of `protocol` carrying the rejected `packet` (its
    /// Information field), truncated so that the LCP packet fits the peer's MRU (RFC 1661
    /// §5.7). Only sent in the Opened state ("Protocol-Reject packets can only be sent in the
    /// LCP Opened state"); returns whether it was queued.
    pub fn protocol_reject(&mut self, protocol: u16, packet: &[u8]) -> bool {
        if self.fsm.state() != State::Opened {
            return false;
        }
        let room = usize::from(self.fsm.protocol().negotiated().peer_mru)
            .saturating_sub(HEADER_LEN + PROTOCOL_LEN);
        let mut data = Vec::with_capacity(PROTOCOL_LEN + room.min(packet.len()));
        data.extend_from_slice(&protocol.to_be_bytes());
        data.extend_from_slice(packet.get(..room).unwrap_or(packet));
        self.reject_id = self.reject_id.wrapping_add(1);
        self.transmit
            .push_back(emit_packet(code::PROTOCOL_REJECT, self.reject_id, &data));
        true
    }

    /// The next LCP packet to send (no PPP protocol field).
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.fsm
            .poll_transmit()
            .or_else(|| self.transmit.pop_front())
    }

    /// The next event for the owner.
    pub fn poll_event(&mut self) -> Option<LinkEvent> {
        self.events.pop_front()
    }

    /// The earliest of the Restart timer and the next Echo-Request.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.fsm.poll_timeout(), self.next_echo) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Translates the automaton's events and applies policy failures.
    fn after(&mut self, now: Instant) {
        if let Some(failure) = close_on_failure(&mut self.fsm, now) {
            self.events.push_back(LinkEvent::Failed(failure));
        }
        while let Some(event) = self.fsm.poll_event() {
            match event {
                LayerEvent::Up => {
                    let negotiated = self.fsm.protocol().negotiated().clone();
                    let mut config = *self.fsm.config();
                    config.peer_mru = negotiated.peer_mru;
                    self.fsm.set_config(config);
                    self.unanswered = 0;
                    self.next_echo = self.keepalive.map(|_| now);
                    self.events.push_back(LinkEvent::Up(negotiated));
                }
                LayerEvent::Down => {
                    self.next_echo = None;
                    self.events.push_back(LinkEvent::Down);
                }
                LayerEvent::Started => self.events.push_back(LinkEvent::Started),
                LayerEvent::Finished => self.events.push_back(LinkEvent::Finished),
                LayerEvent::ProtocolRejected { protocol } => self
                    .events
                    .push_back(LinkEvent::ProtocolRejected { protocol }),
                LayerEvent::CodeRejected { code } => {
                    self.events.push_back(LinkEvent::CodeRejected { code })
                }
                LayerEvent::EchoReply { magic, .. } => self.echo_reply(magic),
            }
        }
        self.echo_tick(now);
    }

    /// Sends the due Echo-Request, or declares the link dead when `max_failures` are
    /// already unanswered.
    fn echo_tick(&mut self, now: Instant) {
        let (Some(due), Some(keepalive)) = (self.next_echo, self.keepalive) else {
            return;
        };
        if due > now {
            return;
        }
        if self.unanswered >= keepalive.max_failures {
            tracing::info!(
                unanswered = self.unanswered,
                "LCP echo: peer not responding"
            );
            self.next_echo = None;
            self.events.push_back(LinkEvent::LinkDead);
        } else {
            if self.fsm.send_echo_request(&[]).is_some() {
                self.unanswered += 1;
            }
            self.next_echo = Some(due + keepalive.interval);
        }
    }

    /// §5.8: a reply carries the sender's Magic-Number. One with the peer's number (or any
    /// but ours when the peer has none) proves the peer alive; one with our own number is
    /// our request looped back and proves nothing.
    fn echo_reply(&mut self, magic: u32) {
        let n = self.fsm.protocol().negotiated();
        let good = if n.peer_magic != 0 {
            magic == n.peer_magic
        } else {
            n.our_magic == 0 || magic != n.our_magic
        };
        if good {
            self.unanswered = 0;
        } else {
            tracing::debug!(magic, "LCP Echo-Reply with a wrong Magic-Number ignored");
        }
    }
}

const HEADER_LEN: usize = 4;
const PROTOCOL_LEN: usize = 2;

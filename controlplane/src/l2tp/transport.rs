//! Reliable delivery of L2TP control messages (RFC 2661 §5.8 and Appendix A), sans-IO.
//!
//! [`Transport`] is the "lower level reliable transport service" of one control connection.
//! It owns the Ns/Nr sequence state of both directions, the retransmission queue, the
//! congestion window, the reorder buffer and the acknowledgement timer. It never touches a
//! socket or a clock: time comes in as `now`, output goes out through polling.
//!
//! # Contract
//!
//! * Message bodies are opaque bytes (the encoded AVPs). The caller (the tunnel FSM)
//!   prepends the L2TP control header built from [`Transmit::ns`] and [`Transmit::nr`],
//!   and parses the header of a received message to call
//!   [`Transport::handle_received`] with its Ns, Nr and body (`None` for a ZLB).
//! * Inputs: [`Transport::queue`] (a new message to send), [`Transport::handle_received`],
//!   [`Transport::handle_timeout`] (call it once `now` has reached
//!   [`Transport::poll_timeout`]), [`Transport::set_peer_rws`].
//! * Outputs, to drain after every input: [`Transport::poll_transmit`] until `None`,
//!   [`Transport::poll_delivered`] until `None`, then re-arm the timer with
//!   [`Transport::poll_timeout`]. [`Transport::is_dead`] says when the peer stopped
//!   answering and the tunnel must be cleared (RFC 2661 §5.8).
//! * Nothing a peer sends can make this module panic or grow without bound: the reorder
//!   buffer holds at most `rws_local - 1` messages, the retransmission queue at most
//!   `max_queued` (the caller's own messages), the delivery queue at most `rws_local`
//!   messages per call to `handle_received`.
//!
//! # Rules implemented
//!
//! * Ns starts at `initial_ns` (0 per the RFC), one slot per non-ZLB message; a ZLB does not
//!   consume an Ns and carries the Ns of the next new message (RFC 2661 §5.8, Appendix B.2).
//! * Sequence numbers compare modulo 65536: a received Ns is new when it lies in the 32768
//!   values starting at the expected one, else it is a duplicate ([`seq_is_new`]).
//! * Duplicates are not delivered but are acknowledged at once with the current Nr, so a
//!   peer whose ack was lost stops retransmitting (RFC 2661 §5.8). Messages ahead of the
//!   expected Ns but inside our receive window are buffered and delivered when the gap is
//!   filled; beyond the window they are dropped and counted.
//! * Every transmitted message carries the current Nr (piggybacked ack). When a received
//!   message must be acknowledged and nothing is sent within `ack_delay`, a ZLB is sent.
//!   Once half our receive window (at least one message) has arrived unacknowledged, the
//!   acknowledgement is due at once: the peer may have no more than `rws_local`
//!   outstanding (RFC 2661 §5.8), and messages that need no reply (ICCN, CDN, HELLO)
//!   would otherwise stall it for `ack_delay` per window, capping a tunnel's setup rate
//!   at `rws_local / ack_delay` calls per second.
//! * A message is held until an Nr covers it; an Nr covering a message never sent is
//!   counted and ignored. Unacknowledged messages are retransmitted with exponential
//!   backoff from `initial_rto` (1 s) capped at `max_rto` (at least 8 s per the RFC); after
//!   `max_retransmits` retransmissions without progress the connection is dead. With the
//!   defaults that is 1+2+4+8+8+8 = 31 s, the RFC's "full retransmission cycle" (§5.7).
//! * Congestion control per RFC 2661 Appendix A: cwnd starts at 1, ssthresh at the peer's
//!   receive window; +1 per acknowledgement that advances the window while cwnd < ssthresh
//!   (slow start), +1 per cwnd such acknowledgements after (congestion avoidance); on a
//!   retransmission timeout ssthresh = max(cwnd / 2, 1) and cwnd = 1. Never more messages
//!   outstanding than min(cwnd, peer's receive window). After a timeout every outstanding
//!   message is considered lost and is resent, oldest first, as the window allows (an ack
//!   covering messages the peer had buffered saves their resend).
//! * The smoothed RTT (RFC 6298 estimator, Karn's rule: no sample from a retransmitted
//!   message) is kept for the operator's statistics only; the retransmission timer follows
//!   the RFC's fixed 1 s start and doubling, so peers see the timing the RFC describes.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Half the sequence space: a received Ns within this many values at or after the
/// expected one is new, anything else is old (RFC 2661 §5.8).
const HALF_SPACE: u16 = 0x8000;

/// Largest window or queue length we accept: beyond half the sequence space, "new" and
/// "old" could no longer be told apart.
const MAX_WINDOW: u16 = HALF_SPACE - 1;

/// Whether `ns` is new relative to the next expected sequence number `expected`: it lies
/// in `expected ..= expected + 32767` modulo 65536 (RFC 2661 §5.8). The other 32768 values
/// are "less than or equal to the last received number", i.e. duplicates.
pub fn seq_is_new(expected: u16, ns: u16) -> bool {
    ns.wrapping_sub(expected) < HALF_SPACE
}

/// Whether `a` comes strictly before `b` in serial number arithmetic modulo 65536.
/// Values exactly half the space apart are not ordered (`false` both ways).
pub fn seq_lt(a: u16, b: u16) -> bool {
    let d = b.wrapping_sub(a);
    d != 0 && d < HALF_SPACE
}

/// Parameters of one reliable transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Our receive window: how many messages the peer may have outstanding, advertised by
    /// the FSM in the Receive Window Size AVP. Also bounds the reorder buffer. Clamped to
    /// `1..=32767`.
    pub rws_local: u16,
    /// The peer's receive window (its Receive Window Size AVP; 4 when absent, RFC 2661
    /// §5.8). Clamped to `1..=32767` (0 is invalid per the RFC; the FSM rejects it).
    pub peer_rws: u16,
    /// First retransmission timeout (RFC 2661 §5.8 recommends 1 s).
    pub initial_rto: Duration,
    /// Cap on the retransmission interval (the RFC requires at least 8 s; a smaller value
    /// is raised to `initial_rto` at most, never below it).
    pub max_rto: Duration,
    /// Retransmissions of an unacknowledged message before the connection is declared
    /// dead (RFC 2661 §5.8 recommends 5, configurable).
    pub max_retransmits: u32,
    /// How long an acknowledgement may wait for an outgoing message to ride on before a
    /// ZLB is sent. Must stay well below the peer's retransmission timeout.
    pub ack_delay: Duration,
    /// Ns of our first message (0 per RFC 2661 §5.8; other values serve tests).
    pub initial_ns: u16,
    /// Ns expected in the peer's first message (0 per RFC 2661 §5.8).
    pub initial_nr: u16,
    /// Most messages queued and not yet acknowledged; [`Transport::queue`] refuses more.
    /// Clamped to `1..=32767`.
    pub max_queued: u16,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            rws_local: 8,
            peer_rws: 4,
            initial_rto: Duration::from_secs(1),
            max_rto: Duration::from_secs(8),
            max_retransmits: 5,
            ack_delay: Duration::from_millis(100),
            initial_ns: 0,
            initial_nr: 0,
            max_queued: 1024,
        }
    }
}

impl Config {
    fn rto_cap(&self) -> Duration {
        self.max_rto.max(self.initial_rto)
    }

    /// The interval after the `n`-th transmission (0 = the first) of an unanswered message:
    /// `initial_rto * 2^n`, capped at `max_rto`.
    pub fn backoff(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX);
        self.initial_rto.saturating_mul(factor).min(self.rto_cap())
    }

    /// Time from the first transmission of a message nobody answers until the connection
    /// is declared dead: the sum of `max_retransmits + 1` backoff intervals (31 s with the
    /// defaults). This is also the "full retransmission cycle" during which state is kept
    /// after a StopCCN (RFC 2661 §5.7).
    pub fn retransmission_cycle(&self) -> Duration {
        (0..=self.max_retransmits).fold(Duration::ZERO, |total, n| {
            total.saturating_add(self.backoff(n))
        })
    }
}

/// A datagram to send: the caller adds the L2TP control header with these Ns and Nr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit<'a> {
    /// Ns of the message; for a ZLB, the Ns of the next new message (not consumed).
    pub ns: u16,
    /// Nr: the next Ns we expect from the peer.
    pub nr: u16,
    /// The message body (AVPs), `None` for a ZLB acknowledgement.
    pub body: Option<&'a [u8]>,
}

impl Transmit<'_> {
    /// Whether this is a ZLB (header-only) acknowledgement.
    pub fn is_zlb(&self) -> bool {
        self.body.is_none()
    }
}

/// A message delivered in order, exactly once, to the upper layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The message's Ns.
    pub ns: u16,
    /// The message body as received.
    pub body: Vec<u8>,
}

/// What [`Transport::handle_received`] did with the message (its Nr is processed in
/// every case except [`Received::Ignored`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// A ZLB: only its Nr mattered.
    Zlb,
    /// In order: this many messages (it and any buffered ones behind it) are now ready in
    /// [`Transport::poll_delivered`].
    Delivered(usize),
    /// Ahead of a gap, inside our receive window: held until the gap is filled.
    Buffered,
    /// Already received: not delivered, acknowledged again at once.
    Duplicate,
    /// Ahead of our receive window: dropped and counted.
    OutOfWindow,
    /// The connection is dead; nothing was processed.
    Ignored,
}

/// Why [`Transport::queue`] refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// The peer stopped answering; the tunnel must be cleared (RFC 2661 §5.8).
    #[error("control connection is dead")]
    Dead,
    /// `max_queued` messages are waiting for acknowledgement.
    #[error("control message queue is full")]
    Full,
}

/// Counters and gauges for the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Non-ZLB messages transmitted, first transmissions only.
    pub transmitted: u64,
    /// Retransmissions.
    pub retransmissions: u64,
    /// Retransmission timer expiries.
    pub timeouts: u64,
    /// ZLB acknowledgements sent.
    pub zlb_sent: u64,
    /// Non-ZLB messages received (any outcome).
    pub received: u64,
    /// ZLB acknowledgements received.
    pub zlb_received: u64,
    /// Messages delivered to the upper layer.
    pub delivered: u64,
    /// Duplicates received (re-acknowledged, not delivered).
    pub duplicates: u64,
    /// Messages dropped because their Ns was beyond our receive window.
    pub out_of_window: u64,
    /// Nr values acknowledging messages never sent (ignored).
    pub bad_nr: u64,
    /// Congestion window now.
    pub cwnd: u16,
    /// Slow start threshold now.
    pub ssthresh: u16,
    /// Smoothed round-trip time, once measured.
    pub srtt: Option<Duration>,
    /// Current retransmission interval (with backoff).
    pub rto: Duration,
}

/// A message of ours waiting for acknowledgement.
#[derive(Debug)]
struct Outgoing {
    ns: u16,
    body: Vec<u8>,
    /// When it was first transmitted (`None`: not yet).
    first_sent: Option<Instant>,
    /// Karn's rule: no RTT sample from a message sent more than once.
    retransmitted: bool,
}

/// The reliable transport of one control connection (one direction's Ns state and the
/// other's Nr state). See the module documentation for the contract.
#[derive(Debug)]
pub struct Transport {
    config: Config,
    peer_rws: u16,

    /// Our messages from the oldest unacknowledged one on: `[0, resend_next)` are in
    /// flight, `[resend_next, sent)` were sent and are due for retransmission after a
    /// timeout, `[sent, len)` were never sent.
    send: VecDeque<Outgoing>,
    sent: usize,
    resend_next: usize,
    /// Ns for the next message queued.
    next_ns: u16,

    cwnd: u16,
    ssthresh: u16,
    /// Acknowledgements counted towards the next congestion avoidance increment.
    ca_acks: u16,

    rto: Duration,
    rto_deadline: Option<Instant>,
    /// Retransmission timeouts since the last acknowledgement that made progress.
    timeouts_in_row: u32,
    srtt: Option<Duration>,
    rttvar: Duration,
    dead: bool,

    /// Next Ns expected from the peer: the Nr we send.
    rcv_nxt: u16,
    /// `reorder[i]` holds the message with Ns `rcv_nxt + 1 + i`, if received.
    reorder: VecDeque<Option<Vec<u8>>>,
    delivered: VecDeque<Delivered>,
    /// When an acknowledgement must go out (ZLB unless a message carries it first).
    ack_deadline: Option<Instant>,
    /// New messages received since we last sent our Nr (in a message or a ZLB).
    unacked_received: u16,

    stats: Stats,
}

impl Transport {
    /// A transport in its initial state. `config` windows and queue limits are clamped to
    /// `1..=32767`.
    pub fn new(mut config: Config) -> Self {
        config.rws_local = config.rws_local.clamp(1, MAX_WINDOW);
        config.max_queued = config.max_queued.clamp(1, MAX_WINDOW);
        let peer_rws = config.peer_rws.clamp(1, MAX_WINDOW);
        Self {
            peer_rws,
            send: VecDeque::new(),
            sent: 0,
            resend_next: 0,
            next_ns: config.initial_ns,
            // RFC 2661 Appendix A: CWND starts at one packet, SSTHRESH at the advertised
            // window.
            cwnd: 1,
            ssthresh: peer_rws,
            ca_acks: 0,
            rto: config.initial_rto,
            rto_deadline: None,
            timeouts_in_row: 0,
            srtt: None,
            rttvar: Duration::ZERO,
            dead: false,
            rcv_nxt: config.initial_nr,
            reorder: VecDeque::new(),
            delivered: VecDeque::new(),
            ack_deadline: None,
            unacked_received: 0,
            stats: Stats::default(),
            config,
        }
    }

    /// The configuration in force (after clamping).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Record the peer's Receive Window Size AVP (RFC 2661 §5.8). Resets ssthresh to it
    /// (Appendix A) and caps cwnd by it. 0 is invalid per the RFC and treated as 1.
    pub fn set_peer_rws(&mut self, rws: u16) {
        self.peer_rws = rws.clamp(1, MAX_WINDOW);
        self.ssthresh = self.peer_rws;
        self.cwnd = self.cwnd.min(self.peer_rws);
    }

    /// The peer's receive window in force.
    pub fn peer_rws(&self) -> u16 {
        self.peer_rws
    }

    /// Enqueue a control message body for reliable, in-order delivery to the peer.
    /// Returns the Ns assigned to it.
    pub fn queue(&mut self, body: Vec<u8>) -> Result<u16, QueueError> {
        if self.dead {
            return Err(QueueError::Dead);
        }
        if self.send.len() >= usize::from(self.config.max_queued) {
            return Err(QueueError::Full);
        }
        let ns = self.next_ns;
        self.next_ns = ns.wrapping_add(1);
        self.send.push_back(Outgoing {
            ns,
            body,
            first_sent: None,
            retransmitted: false,
        });
        Ok(ns)
    }

    /// The next datagram to send now, if any: a retransmission, a new message the window
    /// allows, or a ZLB acknowledgement whose delay ran out. Call until `None`.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit<'_>> {
        if self.dead {
            return None;
        }
        let window = usize::from(self.cwnd.min(self.peer_rws));
        let retransmit = self.resend_next < self.sent;
        let can_send = self.resend_next < window && (retransmit || self.sent < self.send.len());
        if can_send {
            let index = self.resend_next;
            self.resend_next += 1;
            if !retransmit {
                self.sent += 1;
            }
            if self.rto_deadline.is_none() {
                self.rto_deadline = Some(now + self.rto);
            }
            // The message carries the current Nr: no separate ack needed (RFC 2661 §5.8).
            self.ack_deadline = None;
            self.unacked_received = 0;
            let nr = self.rcv_nxt;
            let entry = self.send.get_mut(index)?;
            if retransmit {
                // RFC 2661 §5.8: same Ns, Nr updated to the next expected message.
                entry.retransmitted = true;
                self.stats.retransmissions += 1;
            } else {
                entry.first_sent = Some(now);
                self.stats.transmitted += 1;
            }
            return Some(Transmit {
                ns: entry.ns,
                nr,
                body: Some(&entry.body),
            });
        }
        if self.ack_deadline.is_some_and(|deadline| deadline <= now) {
            self.ack_deadline = None;
            self.unacked_received = 0;
            self.stats.zlb_sent += 1;
            return Some(Transmit {
                ns: self.snd_max(),
                nr: self.rcv_nxt,
                body: None,
            });
        }
        None
    }

    /// The next instant at which [`Transport::handle_timeout`] (retransmission) or
    /// [`Transport::poll_transmit`] (delayed ack) has work; `None` when nothing is pending.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.dead {
            return None;
        }
        match (self.rto_deadline, self.ack_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Process timer expiry at `now`. A retransmission timeout marks every outstanding
    /// message for resending, backs the timer off and shrinks the congestion window
    /// (RFC 2661 §5.8, Appendix A); one too many declares the connection dead.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.dead {
            return;
        }
        let Some(deadline) = self.rto_deadline else {
            return;
        };
        if deadline > now {
            return;
        }
        self.rto_deadline = None;
        if self.resend_next == 0 {
            return;
        }
        self.stats.timeouts += 1;
        self.timeouts_in_row += 1;
        if self.timeouts_in_row > self.config.max_retransmits {
            // RFC 2661 §5.8: no response after several retransmissions, the tunnel and all
            // its sessions MUST be cleared.
            self.dead = true;
            self.ack_deadline = None;
            return;
        }
        // RFC 2661 Appendix A: half of CWND saved in SSTHRESH, CWND set to one.
        self.ssthresh = (self.cwnd / 2).max(1);
        self.cwnd = 1;
        self.ca_acks = 0;
        // RFC 2661 §5.8: exponential backoff, capped (the cap is at least 8 s).
        self.rto = self.rto.saturating_mul(2).min(self.config.rto_cap());
        self.resend_next = 0;
    }

    /// Process a received control message: `ns` and `nr` from its header, `body` its
    /// payload after the header, `None` for a ZLB (whose Ns is not looked at).
    pub fn handle_received(
        &mut self,
        now: Instant,
        ns: u16,
        nr: u16,
        body: Option<Vec<u8>>,
    ) -> Received {
        if self.dead {
            return Received::Ignored;
        }
        self.process_nr(now, nr);
        let Some(body) = body else {
            self.stats.zlb_received += 1;
            return Received::Zlb;
        };
        self.stats.received += 1;
        let offset = ns.wrapping_sub(self.rcv_nxt);
        if !seq_is_new(self.rcv_nxt, ns) {
            // RFC 2661 §5.8: a duplicate is ignored but MUST be acknowledged, in case our
            // earlier ack was lost.
            return self.duplicate(now);
        }
        if offset >= self.config.rws_local {
            self.stats.out_of_window += 1;
            self.schedule_ack(now + self.config.ack_delay);
            return Received::OutOfWindow;
        }
        self.unacked_received = self.unacked_received.saturating_add(1);
        if self.unacked_received >= (self.config.rws_local / 2).max(1) {
            self.schedule_ack(now);
        } else {
            self.schedule_ack(now + self.config.ack_delay);
        }
        if offset == 0 {
            return Received::Delivered(self.deliver(ns, body));
        }
        let slot = usize::from(offset - 1);
        if self.reorder.len() <= slot {
            self.reorder.resize(slot + 1, None);
        }
        match self.reorder.get_mut(slot) {
            Some(Some(_)) => self.duplicate(now),
            Some(entry) => {
                *entry = Some(body);
                Received::Buffered
            }
            None => Received::OutOfWindow,
        }
    }

    /// The next message delivered in order, exactly once.
    pub fn poll_delivered(&mut self) -> Option<Delivered> {
        self.delivered.pop_front()
    }

    /// The peer stopped acknowledging: the FSM must clear the tunnel (RFC 2661 §5.8).
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// Everything queued has been sent and acknowledged.
    pub fn all_acked(&self) -> bool {
        self.send.is_empty()
    }

    /// Everything queued is acknowledged and we owe the peer no acknowledgement. During
    /// the RFC 2661 §5.7 wait after a StopCCN the FSM keeps feeding the transport for
    /// [`Config::retransmission_cycle`] so retransmitted StopCCNs are acknowledged again.
    pub fn is_idle(&self) -> bool {
        self.all_acked() && self.ack_deadline.is_none()
    }

    /// Ns the next queued message will get.
    pub fn next_ns(&self) -> u16 {
        self.next_ns
    }

    /// Next Ns expected from the peer (the Nr we send).
    pub fn expected_ns(&self) -> u16 {
        self.rcv_nxt
    }

    /// Messages queued and not yet acknowledged (sent or not).
    pub fn queued_len(&self) -> usize {
        self.send.len()
    }

    /// Messages sent and not yet acknowledged; never more than the peer's receive window.
    pub fn unacked_len(&self) -> usize {
        self.sent
    }

    /// Messages sent, not acknowledged and not considered lost; never more than cwnd.
    pub fn in_flight(&self) -> usize {
        self.resend_next
    }

    /// Out-of-order messages held; at most `rws_local - 1`.
    pub fn reorder_len(&self) -> usize {
        self.reorder.iter().filter(|slot| slot.is_some()).count()
    }

    /// Messages delivered and not yet taken with [`Transport::poll_delivered`].
    pub fn delivered_len(&self) -> usize {
        self.delivered.len()
    }

    /// Counters and gauges.
    pub fn stats(&self) -> Stats {
        Stats {
            cwnd: self.cwnd,
            ssthresh: self.ssthresh,
            srtt: self.srtt,
            rto: self.rto,
            ..self.stats
        }
    }

    /// Ns of the first message never transmitted (what a ZLB carries).
    fn snd_max(&self) -> u16 {
        self.snd_una().wrapping_add(self.sent as u16)
    }

    /// Ns of the oldest unacknowledged message.
    fn snd_una(&self) -> u16 {
        self.next_ns.wrapping_sub(self.send.len() as u16)
    }

    fn schedule_ack(&mut self, at: Instant) {
        self.ack_deadline = Some(self.ack_deadline.map_or(at, |current| current.min(at)));
    }

    fn duplicate(&mut self, now: Instant) -> Received {
        self.stats.duplicates += 1;
        self.schedule_ack(now);
        Received::Duplicate
    }

    /// Deliver `body` (Ns = expected) and every buffered message it unblocks.
    fn deliver(&mut self, ns: u16, body: Vec<u8>) -> usize {
        self.delivered.push_back(Delivered { ns, body });
        self.rcv_nxt = ns.wrapping_add(1);
        let mut count = 1;
        // `reorder[0]` now holds the new expected Ns.
        while let Some(Some(body)) = self.reorder.pop_front() {
            self.delivered.push_back(Delivered {
                ns: self.rcv_nxt,
                body,
            });
            self.rcv_nxt = self.rcv_nxt.wrapping_add(1);
            count += 1;
        }
        self.stats.delivered += count as u64;
        count
    }

    /// Apply a received Nr: it acknowledges every message before it (RFC 2661 §5.8).
    fn process_nr(&mut self, now: Instant, nr: u16) {
        let acked = nr.wrapping_sub(self.snd_una());
        if acked == 0 || !seq_is_new(self.snd_una(), nr) {
            // Nothing new, or an old Nr overtaken by a later one (reordering).
            return;
        }
        let acked = usize::from(acked);
        if acked > self.sent {
            self.stats.bad_nr += 1;
            return;
        }
        let mut sample = None;
        for _ in 0..acked {
            if let Some(entry) = self.send.pop_front() {
                sample = match (entry.retransmitted, entry.first_sent) {
                    (false, Some(sent)) => Some(now.saturating_duration_since(sent)),
                    _ => None,
                };
            }
        }
        self.sent -= acked;
        self.resend_next = self.resend_next.saturating_sub(acked);
        if let Some(rtt) = sample {
            self.rtt_sample(rtt);
        }

        // RFC 2661 Appendix A: +1 per ACK in slow start, +1 per CWND ACKs in congestion
        // avoidance, never above the peer's receive window.
        if self.cwnd < self.ssthresh {
            self.cwnd += 1;
        } else {
            self.ca_acks += 1;
            if self.ca_acks >= self.cwnd {
                self.ca_acks = 0;
                self.cwnd = self.cwnd.saturating_add(1);
            }
        }
        self.cwnd = self.cwnd.min(self.peer_rws);

        // The peer is alive: backoff and retry count start over.
        self.timeouts_in_row = 0;
        self.rto = self.config.initial_rto;
        self.rto_deadline = (self.resend_next > 0).then(|| now + self.rto);
    }

    /// RFC 6298 §2 smoothed RTT estimator (statistics only).
    fn rtt_sample(&mut self, rtt: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                let delta = srtt.abs_diff(rtt);
                self.rttvar = self.rttvar.saturating_mul(3).saturating_add(delta) / 4;
                self.srtt = Some(srtt.saturating_mul(7).saturating_add(rtt) / 8);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// One datagram as the caller would send it (owned copy of a [`Transmit`]).
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Sent {
        ns: u16,
        nr: u16,
        body: Option<Vec<u8>>,
    }

    fn drain(t: &mut Transport, now: Instant) -> Vec<Sent> {
        let mut out = Vec::new();
        while let Some(tx) = t.poll_transmit(now) {
            out.push(Sent {
                ns: tx.ns,
                nr: tx.nr,
                body: tx.body.map(<[u8]>::to_vec),
            });
            assert!(out.len() < 100_000, "poll_transmit never ends");
        }
        out
    }

    fn delivered(t: &mut Transport) -> Vec<(u16, Vec<u8>)> {
        std::iter::from_fn(|| t.poll_delivered())
            .map(|d| (d.ns, d.body))
            .collect()
    }

    fn transport(config: Config) -> Transport {
        Transport::new(config)
    }

    /// Feed the peer's ZLB acknowledging everything before `nr`.
    fn ack(t: &mut Transport, now: Instant, nr: u16) {
        assert_eq!(t.handle_received(now, 0, nr, None), Received::Zlb);
    }

    #[test]
    fn seq_is_new_follows_rfc_example() {
        // RFC 2661 §5.8: last received 15 (expected 16): 0..=15 and 32784..=65535 are old.
        for ns in (0..=15).chain(32784..=65535) {
            assert!(!seq_is_new(16, ns), "{ns} must be old");
        }
        for ns in 16..=32783 {
            assert!(seq_is_new(16, ns), "{ns} must be new");
        }
    }

    #[test]
    fn seq_is_new_wraps_at_ffff() {
        assert!(seq_is_new(0xFFFF, 0xFFFF));
        assert!(seq_is_new(0xFFFF, 0));
        assert!(seq_is_new(0xFFFF, 0x7FFE));
        assert!(!seq_is_new(0xFFFF, 0x7FFF));
        assert!(!seq_is_new(0xFFFF, 0xFFFE));
        assert!(!seq_is_new(0, 0xFFFF));
        assert!(seq_is_new(0xFFF0, 5));
    }

    #[test]
    fn seq_lt_wraps_at_ffff() {
        assert!(seq_lt(0xFFFF, 0));
        assert!(seq_lt(0xFFFE, 1));
        assert!(!seq_lt(0, 0xFFFF));
        assert!(!seq_lt(7, 7));
        assert!(seq_lt(0, 0x7FFF));
        // Exactly half the space apart: unordered both ways.
        assert!(!seq_lt(0, 0x8000));
        assert!(!seq_lt(0x8000, 0));
    }

    #[test]
    fn config_defaults_follow_rfc() {
        let c = Config::default();
        assert_eq!(c.initial_rto, Duration::from_secs(1));
        assert!(c.max_rto >= Duration::from_secs(8));
        assert_eq!(c.max_retransmits, 5);
        assert_eq!(c.peer_rws, 4);
        assert_eq!((c.initial_ns, c.initial_nr), (0, 0));
        assert!(c.ack_delay < c.initial_rto / 2);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let c = Config::default();
        let got: Vec<u64> = (0..8).map(|n| c.backoff(n).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 8, 8, 8, 8]);
        assert_eq!(c.backoff(1000), Duration::from_secs(8));
        // RFC 2661 §5.7: the full retransmission cycle is 31 s.
        assert_eq!(c.retransmission_cycle(), Duration::from_secs(31));
        let c = Config {
            max_retransmits: 10,
            max_rto: Duration::from_secs(16),
            ..Config::default()
        };
        assert_eq!(
            c.retransmission_cycle(),
            Duration::from_secs(1 + 2 + 4 + 8 + 16 * 7)
        );
    }

    #[test]
    fn first_message_carries_initial_ns_and_nr() {
        let mut t = transport(Config {
            initial_ns: 0xFFFF,
            initial_nr: 0x1234,
            ..Config::default()
        });
        let now = Instant::now();
        assert_eq!(t.queue(b"a".to_vec()), Ok(0xFFFF));
        assert_eq!(t.queue(b"b".to_vec()), Ok(0));
        assert_eq!(t.next_ns(), 1);
        // cwnd starts at one (RFC 2661 Appendix A): only the first message goes.
        assert_eq!(
            drain(&mut t, now),
            [Sent {
                ns: 0xFFFF,
                nr: 0x1234,
                body: Some(b"a".to_vec())
            }]
        );
        ack(&mut t, now, 0);
        assert_eq!(
            drain(&mut t, now),
            [Sent {
                ns: 0,
                nr: 0x1234,
                body: Some(b"b".to_vec())
            }]
        );
    }

    #[test]
    fn slow_start_adds_one_per_ack_up_to_peer_window() {
        let mut t = transport(Config {
            peer_rws: 4,
            initial_ns: 0xFFFD,
            ..Config::default()
        });
        let now = Instant::now();
        for i in 0..40u8 {
            t.queue(vec![i]).unwrap();
        }
        assert_eq!(t.stats().cwnd, 1);
        assert_eq!(t.stats().ssthresh, 4);
        let sent = drain(&mut t, now);
        assert_eq!(sent.len(), 1);
        // Each ack (ZLB covering everything outstanding) adds one: 1 -> 2 -> 3 -> 4 -> 4.
        let mut expect_burst = [2usize, 3, 4, 4, 4].into_iter();
        let mut last_ns = sent[0].ns;
        for expected in expect_burst.by_ref() {
            ack(&mut t, now, last_ns.wrapping_add(1));
            let sent = drain(&mut t, now);
            assert_eq!(sent.len(), expected, "cwnd {}", t.stats().cwnd);
            assert!(t.unacked_len() <= 4);
            last_ns = sent.last().unwrap().ns;
        }
        assert_eq!(t.stats().cwnd, 4);
    }

    #[test]
    fn window_never_exceeds_peer_rws() {
        let mut t = transport(Config {
            peer_rws: 3,
            ..Config::default()
        });
        let now = Instant::now();
        for i in 0..30u8 {
            t.queue(vec![i]).unwrap();
        }
        let mut next_ack = 0u16;
        let mut max_unacked = 0;
        for _ in 0..30 {
            let sent = drain(&mut t, now);
            max_unacked = max_unacked.max(t.unacked_len());
            assert!(t.unacked_len() <= 3);
            if sent.is_empty() {
                break;
            }
            // Acknowledge one message at a time.
            next_ack = next_ack.wrapping_add(1);
            ack(&mut t, now, next_ack);
        }
        assert_eq!(max_unacked, 3);
        assert_eq!(t.stats().cwnd, 3);
        // A smaller window from the peer's SCCRP also applies.
        t.set_peer_rws(2);
        assert_eq!(t.stats().cwnd, 2);
        assert_eq!(t.stats().ssthresh, 2);
        t.set_peer_rws(0);
        assert_eq!(t.peer_rws(), 1);
    }

    #[test]
    fn congestion_avoidance_adds_one_per_cwnd_acks() {
        let mut t = transport(Config {
            peer_rws: 16,
            ..Config::default()
        });
        let mut now = Instant::now();
        for i in 0..200u8 {
            t.queue(vec![i]).unwrap();
        }
        // Grow to cwnd 8 in slow start, acking one message per ack.
        let mut acked = 0u16;
        drain(&mut t, now);
        while t.stats().cwnd < 8 {
            acked += 1;
            ack(&mut t, now, acked);
            drain(&mut t, now);
        }
        assert_eq!(t.in_flight(), 8);
        // Timeout: ssthresh = 8 / 2, cwnd = 1 (RFC 2661 Appendix A).
        now = t.poll_timeout().unwrap();
        t.handle_timeout(now);
        assert_eq!((t.stats().cwnd, t.stats().ssthresh), (1, 4));
        let resent = drain(&mut t, now);
        assert_eq!(resent.len(), 1, "go back to one message in flight");
        assert_eq!(resent[0].ns, acked);
        // Acks one by one: slow start 1 -> 2 -> 3 -> 4, then +1 per cwnd acks.
        let mut history = Vec::new();
        for _ in 0..20 {
            acked += 1;
            ack(&mut t, now, acked);
            drain(&mut t, now);
            history.push(t.stats().cwnd);
        }
        assert_eq!(
            history,
            [2, 3, 4, 4, 4, 4, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 7, 7, 7]
        );
    }

    #[test]
    fn retransmissions_back_off_then_connection_dies() {
        let mut t = transport(Config::default());
        let start = Instant::now();
        t.queue(b"SCCRQ".to_vec()).unwrap();
        assert_eq!(drain(&mut t, start).len(), 1);
        let mut now = start;
        let mut resend_at = Vec::new();
        while let Some(deadline) = t.poll_timeout() {
            now = deadline;
            t.handle_timeout(now);
            for sent in drain(&mut t, now) {
                assert_eq!(sent.body.as_deref(), Some(&b"SCCRQ"[..]));
                resend_at.push((now - start).as_secs());
            }
        }
        // RFC 2661 §5.8: 1, 2, 4, 8 s then the 8 s cap; dead after 5 retransmissions,
        // 31 s after the first transmission.
        assert_eq!(resend_at, [1, 3, 7, 15, 23]);
        assert!(t.is_dead());
        assert_eq!(now - start, Config::default().retransmission_cycle());
        let stats = t.stats();
        assert_eq!((stats.retransmissions, stats.timeouts), (5, 6));
        assert_eq!(t.queue(vec![1]), Err(QueueError::Dead));
        assert_eq!(t.poll_transmit(now), None);
        assert_eq!(
            t.handle_received(now, 0, 1, Some(vec![])),
            Received::Ignored
        );
        assert_eq!(t.poll_timeout(), None);
    }

    #[test]
    fn progress_resets_backoff() {
        let mut t = transport(Config::default());
        let mut now = Instant::now();
        t.queue(vec![1]).unwrap();
        t.queue(vec![2]).unwrap();
        drain(&mut t, now);
        for _ in 0..3 {
            now = t.poll_timeout().unwrap();
            t.handle_timeout(now);
            drain(&mut t, now);
        }
        assert_eq!(t.stats().rto, Duration::from_secs(8));
        ack(&mut t, now, 1);
        assert_eq!(t.stats().rto, Duration::from_secs(1));
        let sent = drain(&mut t, now);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].ns, 1);
        assert_eq!(t.poll_timeout(), Some(now + Duration::from_secs(1)));
        // Five more timeouts are allowed again before death.
        for _ in 0..5 {
            now = t.poll_timeout().unwrap();
            t.handle_timeout(now);
            assert!(!t.is_dead());
            drain(&mut t, now);
        }
        now = t.poll_timeout().unwrap();
        t.handle_timeout(now);
        assert!(t.is_dead());
    }

    #[test]
    fn retransmission_carries_current_nr() {
        let mut t = transport(Config::default());
        let now = Instant::now();
        t.queue(b"ICRP".to_vec()).unwrap();
        assert_eq!(drain(&mut t, now)[0].nr, 0);
        t.handle_received(now, 0, 0, Some(b"x".to_vec()));
        t.handle_received(now, 1, 0, Some(b"y".to_vec()));
        let start = now;
        let now = t.poll_timeout().unwrap();
        // The ack deadline comes first and is satisfied with a ZLB.
        assert_eq!(now, start + Config::default().ack_delay);
        let zlb = drain(&mut t, now);
        assert_eq!(zlb.len(), 1);
        assert_eq!(zlb[0].body, None);
        let now = t.poll_timeout().unwrap();
        t.handle_timeout(now);
        let resent = drain(&mut t, now);
        // RFC 2661 §5.8: same Ns, Nr updated.
        assert_eq!(
            resent,
            [Sent {
                ns: 0,
                nr: 2,
                body: Some(b"ICRP".to_vec())
            }]
        );
    }

    #[test]
    fn timeout_resends_oldest_first_and_ack_saves_the_rest() {
        let mut t = transport(Config {
            peer_rws: 4,
            ..Config::default()
        });
        let mut now = Instant::now();
        for i in 0..4u8 {
            t.queue(vec![i]).unwrap();
        }
        drain(&mut t, now);
        ack(&mut t, now, 1);
        drain(&mut t, now);
        ack(&mut t, now, 2);
        // cwnd 3: Ns 2 still out, Ns 3 goes now.
        assert_eq!(drain(&mut t, now).len(), 1);
        assert_eq!(t.in_flight(), 2);
        now = t.poll_timeout().unwrap();
        t.handle_timeout(now);
        let resent = drain(&mut t, now);
        assert_eq!(resent.iter().map(|s| s.ns).collect::<Vec<_>>(), [2]);
        // The peer had buffered 3: one cumulative ack covers both.
        ack(&mut t, now, 4);
        assert!(drain(&mut t, now).is_empty());
        assert!(t.all_acked());
        assert_eq!(t.stats().retransmissions, 1);
    }

    #[test]
    fn duplicate_is_not_delivered_and_is_acked_at_once() {
        let mut t = transport(Config::default());
        let now = Instant::now();
        assert_eq!(
            t.handle_received(now, 0, 0, Some(b"ICRQ".to_vec())),
            Received::Delivered(1)
        );
        assert_eq!(delivered(&mut t), [(0, b"ICRQ".to_vec())]);
        assert!(drain(&mut t, now).is_empty(), "ack is delayed");
        let later = now + ms(10);
        assert_eq!(
            t.handle_received(later, 0, 0, Some(b"ICRQ".to_vec())),
            Received::Duplicate
        );
        assert!(delivered(&mut t).is_empty());
        // RFC 2661 §5.8 / Appendix B.2: the duplicate is acknowledged by a ZLB right away.
        assert_eq!(
            drain(&mut t, later),
            [Sent {
                ns: 0,
                nr: 1,
                body: None
            }]
        );
        assert_eq!(t.stats().duplicates, 1);
        assert!(t.is_idle());
        // An old duplicate across the wrap is a duplicate too.
        let mut t = transport(Config {
            initial_nr: 2,
            ..Config::default()
        });
        assert_eq!(
            t.handle_received(now, 0xFFF0, 0, Some(vec![])),
            Received::Duplicate
        );
    }

    #[test]
    fn out_of_order_is_buffered_and_delivered_in_order() {
        let mut t = transport(Config {
            rws_local: 4,
            initial_nr: 0xFFFE,
            ..Config::default()
        });
        let now = Instant::now();
        assert_eq!(
            t.handle_received(now, 0, 0, Some(b"c".to_vec())),
            Received::Buffered
        );
        assert_eq!(
            t.handle_received(now, 0xFFFF, 0, Some(b"b".to_vec())),
            Received::Buffered
        );
        assert_eq!(
            t.handle_received(now, 0, 0, Some(b"c".to_vec())),
            Received::Duplicate
        );
        // Ns 1 is expected + 3: the last slot of a window of 4.
        assert_eq!(
            t.handle_received(now, 1, 0, Some(b"d".to_vec())),
            Received::Buffered
        );
        // Ns 2 is expected + 4: beyond the window.
        assert_eq!(
            t.handle_received(now, 2, 0, Some(b"e".to_vec())),
            Received::OutOfWindow
        );
        assert_eq!(t.reorder_len(), 3);
        assert!(delivered(&mut t).is_empty());
        assert_eq!(
            t.handle_received(now, 0xFFFE, 0, Some(b"a".to_vec())),
            Received::Delivered(4)
        );
        assert_eq!(
            delivered(&mut t),
            [
                (0xFFFE, b"a".to_vec()),
                (0xFFFF, b"b".to_vec()),
                (0, b"c".to_vec()),
                (1, b"d".to_vec())
            ]
        );
        assert_eq!(t.expected_ns(), 2);
        assert_eq!(t.reorder_len(), 0);
        let stats = t.stats();
        assert_eq!((stats.out_of_window, stats.duplicates), (1, 1));
        assert_eq!(stats.delivered, 4);
        // The dropped message is accepted when retransmitted.
        assert_eq!(
            t.handle_received(now, 2, 0, Some(b"e".to_vec())),
            Received::Delivered(1)
        );
    }

    #[test]
    fn gap_left_behind_stays_buffered() {
        let mut t = transport(Config {
            rws_local: 8,
            ..Config::default()
        });
        let now = Instant::now();
        t.handle_received(now, 2, 0, Some(b"2".to_vec()));
        t.handle_received(now, 4, 0, Some(b"4".to_vec()));
        assert_eq!(
            t.handle_received(now, 0, 0, Some(b"0".to_vec())),
            Received::Delivered(1)
        );
        assert_eq!(
            t.handle_received(now, 1, 0, Some(b"1".to_vec())),
            Received::Delivered(2)
        );
        assert_eq!(t.expected_ns(), 3);
        assert_eq!(t.reorder_len(), 1);
        assert_eq!(
            t.handle_received(now, 3, 0, Some(b"3".to_vec())),
            Received::Delivered(2)
        );
        let order: Vec<u16> = delivered(&mut t).iter().map(|d| d.0).collect();
        assert_eq!(order, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn zlb_only_after_ack_delay_with_nothing_to_piggyback() {
        let config = Config {
            ack_delay: ms(200),
            ..Config::default()
        };
        let mut t = transport(config.clone());
        let now = Instant::now();
        t.handle_received(now, 0, 0, Some(b"Hello".to_vec()));
        assert!(!t.is_idle());
        assert_eq!(t.poll_timeout(), Some(now + ms(200)));
        assert!(drain(&mut t, now + ms(199)).is_empty());
        assert_eq!(
            drain(&mut t, now + ms(200)),
            [Sent {
                ns: 0,
                nr: 1,
                body: None
            }]
        );
        assert!(t.is_idle());
        assert_eq!(t.poll_timeout(), None);
        assert_eq!(t.stats().zlb_sent, 1);

        // A reply queued within the delay carries the ack: no ZLB follows.
        let mut t = transport(config);
        t.handle_received(now, 0, 0, Some(b"SCCRQ".to_vec()));
        t.queue(b"SCCRP".to_vec()).unwrap();
        assert_eq!(
            drain(&mut t, now + ms(50)),
            [Sent {
                ns: 0,
                nr: 1,
                body: Some(b"SCCRP".to_vec())
            }]
        );
        assert_eq!(
            t.poll_timeout(),
            Some(now + ms(50) + Duration::from_secs(1))
        );
        assert!(drain(&mut t, now + ms(900)).is_empty());
        assert_eq!(t.stats().zlb_sent, 0);
    }

    #[test]
    fn half_a_window_unacknowledged_is_acked_at_once() {
        // rws_local 8: the fourth message without a reply to ride on is acknowledged
        // without waiting for the delay (a LAC's ICCNs need no reply).
        let mut t = transport(Config {
            rws_local: 8,
            ack_delay: ms(100),
            ..Config::default()
        });
        let now = Instant::now();
        for ns in 0..3 {
            t.handle_received(now, ns, 0, Some(b"ICCN".to_vec()));
        }
        assert_eq!(t.poll_timeout(), Some(now + ms(100)));
        assert!(drain(&mut t, now).is_empty());
        t.handle_received(now, 3, 0, Some(b"ICCN".to_vec()));
        assert_eq!(t.poll_timeout(), Some(now));
        assert_eq!(
            drain(&mut t, now),
            [Sent {
                ns: 0,
                nr: 4,
                body: None
            }]
        );
        // The count starts over after the ack: the next message waits the delay again.
        t.handle_received(now, 4, 0, Some(b"ICCN".to_vec()));
        assert_eq!(t.poll_timeout(), Some(now + ms(100)));
        // A reply carries the Nr and restarts the count too.
        t.handle_received(now, 5, 0, Some(b"ICRQ".to_vec()));
        t.queue(b"ICRP".to_vec()).unwrap();
        assert_eq!(drain(&mut t, now)[0].nr, 6);
        for ns in 6..9 {
            t.handle_received(now, ns, 1, Some(b"ICCN".to_vec()));
        }
        assert!(drain(&mut t, now).is_empty());
        assert_eq!(t.stats().zlb_sent, 1);

        // A window of 1: every message is acknowledged at once.
        let mut t = transport(Config {
            rws_local: 1,
            ack_delay: ms(100),
            ..Config::default()
        });
        t.handle_received(now, 0, 0, Some(b"HELLO".to_vec()));
        assert_eq!(drain(&mut t, now).len(), 1);
    }

    #[test]
    fn zlb_carries_next_ns_and_consumes_none() {
        // RFC 2661 Appendix B.2: after ICRP Ns 1, the ZLB carries Ns 2.
        let mut t = transport(Config {
            initial_ns: 1,
            initial_nr: 2,
            ack_delay: Duration::ZERO,
            ..Config::default()
        });
        let now = Instant::now();
        t.queue(b"ICRP".to_vec()).unwrap();
        assert_eq!(drain(&mut t, now)[0].ns, 1);
        t.handle_received(now, 2, 1, Some(b"ICRQ".to_vec()));
        t.handle_received(now, 2, 1, Some(b"ICRQ".to_vec()));
        let zlb = drain(&mut t, now);
        assert_eq!(
            zlb,
            [Sent {
                ns: 2,
                nr: 3,
                body: None
            }]
        );
        assert_eq!(t.next_ns(), 2);
        // Receiving a ZLB does not move the expected Ns.
        t.handle_received(now, 9, 2, None);
        assert_eq!(t.expected_ns(), 3);
        assert!(t.all_acked());
    }

    #[test]
    fn nr_beyond_what_was_sent_is_counted_and_ignored() {
        let mut t = transport(Config {
            initial_ns: 0xFFFF,
            ..Config::default()
        });
        let now = Instant::now();
        t.queue(vec![1]).unwrap();
        t.queue(vec![2]).unwrap();
        drain(&mut t, now);
        // Ns 0 is queued but was never sent: Nr 1 would acknowledge it.
        ack(&mut t, now, 1);
        assert_eq!(t.stats().bad_nr, 1);
        assert_eq!(t.unacked_len(), 1);
        // An old Nr (reordered) is neither progress nor an error.
        ack(&mut t, now, 0xFFF0);
        assert_eq!(t.stats().bad_nr, 1);
        ack(&mut t, now, 0);
        assert_eq!(t.unacked_len(), 0);
        assert_eq!(t.queued_len(), 1);
    }

    #[test]
    fn lock_step_establishment_matches_appendix_b1() {
        let config = Config {
            ack_delay: ms(100),
            ..Config::default()
        };
        let mut lac = transport(config.clone());
        let mut lns = transport(config);
        let now = Instant::now();
        let mut wire = Vec::new();

        lac.queue(b"SCCRQ".to_vec()).unwrap();
        let sccrq = drain(&mut lac, now).remove(0);
        wire.push(("SCCRQ", sccrq.nr, sccrq.ns));
        lns.handle_received(now, sccrq.ns, sccrq.nr, sccrq.body);
        assert_eq!(delivered(&mut lns)[0].1, b"SCCRQ");
        lns.queue(b"SCCRP".to_vec()).unwrap();
        let sccrp = drain(&mut lns, now).remove(0);
        wire.push(("SCCRP", sccrp.nr, sccrp.ns));
        lac.handle_received(now, sccrp.ns, sccrp.nr, sccrp.body);
        delivered(&mut lac);
        lac.queue(b"SCCCN".to_vec()).unwrap();
        let scccn = drain(&mut lac, now).remove(0);
        wire.push(("SCCCN", scccn.nr, scccn.ns));
        lns.handle_received(now, scccn.ns, scccn.nr, scccn.body);
        delivered(&mut lns);
        let later = now + ms(100);
        let zlb = drain(&mut lns, later).remove(0);
        assert!(zlb.body.is_none());
        wire.push(("ZLB", zlb.nr, zlb.ns));
        lac.handle_received(later, zlb.ns, zlb.nr, None);

        assert_eq!(
            wire,
            [
                ("SCCRQ", 0, 0),
                ("SCCRP", 1, 0),
                ("SCCCN", 1, 1),
                ("ZLB", 2, 1)
            ]
        );
        assert!(lac.is_idle() && lns.is_idle());
    }

    #[test]
    fn queue_is_bounded() {
        let mut t = transport(Config {
            max_queued: 3,
            ..Config::default()
        });
        for i in 0..3u8 {
            t.queue(vec![i]).unwrap();
        }
        assert_eq!(t.queue(vec![3]), Err(QueueError::Full));
        let now = Instant::now();
        drain(&mut t, now);
        ack(&mut t, now, 1);
        assert_eq!(t.queue(vec![3]), Ok(3));
    }

    #[test]
    fn rtt_is_sampled_from_messages_sent_once() {
        let mut t = transport(Config::default());
        let now = Instant::now();
        t.queue(vec![0]).unwrap();
        drain(&mut t, now);
        ack(&mut t, now + ms(200), 1);
        assert_eq!(t.stats().srtt, Some(ms(200)));
        t.queue(vec![1]).unwrap();
        drain(&mut t, now + ms(200));
        ack(&mut t, now + ms(600), 2);
        // 7/8 * 200 + 1/8 * 400
        assert_eq!(t.stats().srtt, Some(ms(225)));
        // Karn: a retransmitted message gives no sample.
        t.queue(vec![2]).unwrap();
        drain(&mut t, now + ms(600));
        let deadline = t.poll_timeout().unwrap();
        t.handle_timeout(deadline);
        drain(&mut t, deadline);
        ack(&mut t, deadline + ms(5), 3);
        assert_eq!(t.stats().srtt, Some(ms(225)));
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// A message with Ns = expected + offset (small offsets) or any Ns.
        Recv {
            near: bool,
            offset: u16,
            nr: u16,
            zlb: bool,
        },
        Queue,
        Transmit,
        Advance(u16),
        Timeout,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (any::<bool>(), any::<u16>(), any::<u16>(), any::<bool>()).prop_map(
                |(near, offset, nr, zlb)| Op::Recv {
                    near,
                    offset: if near { offset % 24 } else { offset },
                    nr,
                    zlb,
                }
            ),
            1 => Just(Op::Queue),
            2 => Just(Op::Transmit),
            1 => (0u16..3000).prop_map(Op::Advance),
            1 => Just(Op::Timeout),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_input_never_panics_nor_delivers_twice(
            initial_nr in any::<u16>(),
            initial_ns in any::<u16>(),
            rws_local in 1u16..16,
            peer_rws in 0u16..8,
            ops in proptest::collection::vec(op(), 0..300),
        ) {
            let mut t = Transport::new(Config {
                rws_local,
                peer_rws,
                initial_nr,
                initial_ns,
                max_queued: 16,
                ..Config::default()
            });
            let start = Instant::now();
            let mut now = start;
            let mut next_delivery = initial_nr;
            for op in ops {
                match op {
                    Op::Recv { near, offset, nr, zlb } => {
                        let ns = if near { t.expected_ns().wrapping_add(offset) } else { offset };
                        // The body names its Ns, so a delivery can be traced to its message.
                        let body = (!zlb).then(|| ns.to_be_bytes().to_vec());
                        t.handle_received(now, ns, nr, body);
                    }
                    Op::Queue => {
                        let _ = t.queue(vec![0xAB]);
                    }
                    Op::Transmit => {
                        drain(&mut t, now);
                    }
                    Op::Advance(step) => now += ms(u64::from(step)),
                    Op::Timeout => t.handle_timeout(now),
                }
                prop_assert!(t.reorder_len() < usize::from(rws_local.max(1)));
                prop_assert!(t.unacked_len() <= usize::from(t.peer_rws()));
                prop_assert!(t.in_flight() <= usize::from(t.stats().cwnd.max(1)));
                prop_assert!(t.delivered_len() <= usize::from(rws_local));
                while let Some(d) = t.poll_delivered() {
                    // Exactly the next Ns each time: no message twice, none skipped.
                    prop_assert_eq!(d.ns, next_delivery);
                    prop_assert_eq!(d.body, d.ns.to_be_bytes().to_vec());
                    next_delivery = next_delivery.wrapping_add(1);
                }
                prop_assert_eq!(t.expected_ns(), next_delivery);
                if let Some(deadline) = t.poll_timeout() {
                    prop_assert!(deadline >= start);
                }
            }
        }
    }
}

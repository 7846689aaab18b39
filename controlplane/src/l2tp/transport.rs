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
        let can_send = self.resend_next < window
            && (retransmit || self.sent < self.send.len());
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
        self.schedule_ack(now + self.config.ack_delay);
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

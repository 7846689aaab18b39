//! Deterministic simulation of two L2TP reliable transports (RFC 2661 §5.8) over a lossy,
//! duplicating, reordering virtual link with a virtual clock. Both ends run the same core.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use xlns_controlplane::l2tp::transport::{Config, Received, Transport};

/// Messages each side keeps queued (the upper layer's backlog).
const BACKLOG: usize = 12;

#[derive(Debug, Clone, Copy)]
struct LinkModel {
    loss: f64,
    duplicate: f64,
    /// Per-datagram delay drawn uniformly from this range: reordering follows.
    delay_ms: (u64, u64),
}

#[derive(Debug)]
struct Datagram {
    at: Instant,
    /// Tie breaker so equal arrival times keep a deterministic order.
    seq: u64,
    to: usize,
    ns: u16,
    nr: u16,
    body: Option<Vec<u8>>,
}

impl PartialEq for Datagram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Datagram {}
impl PartialOrd for Datagram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Datagram {
    /// Reversed: `BinaryHeap` pops the earliest arrival first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

#[derive(Debug)]
struct Side {
    transport: Transport,
    rws_local: u16,
    /// Application messages handed to the transport so far.
    queued: u64,
    /// Application sequence number of the next message this side must receive.
    expected: u64,
    /// When the transport declared the peer dead.
    died_at: Option<Instant>,
}

#[derive(Debug)]
struct Sim {
    rng: StdRng,
    link: LinkModel,
    start: Instant,
    now: Instant,
    sides: [Side; 2],
    wire: BinaryHeap<Datagram>,
    wire_seq: u64,
    /// Datagrams sent after this instant are lost (a peer that vanishes).
    cut_at: Option<Instant>,
    /// Cap on the wire's content, so a bug cannot grow it silently.
    max_wire: usize,
}

fn side(config: Config) -> Side {
    Side {
        rws_local: config.rws_local,
        transport: Transport::new(config),
        queued: 0,
        expected: 0,
        died_at: None,
    }
}

/// Two configurations facing each other: different windows and initial Ns values just
/// below the wrap.
fn pair_configs(max_retransmits: u32) -> (Config, Config) {
    let a = Config {
        rws_local: 4,
        peer_rws: 8,
        initial_ns: 0xFFF0,
        initial_nr: 0xFFFA,
        max_retransmits,
        ..Config::default()
    };
    let b = Config {
        rws_local: 8,
        peer_rws: 4,
        initial_ns: 0xFFFA,
        initial_nr: 0xFFF0,
        max_retransmits,
        ..Config::default()
    };
    (a, b)
}

impl Sim {
    fn new(seed: u64, link: LinkModel, configs: (Config, Config)) -> Self {
        // A fixed reference point; the core never reads the clock, the simulation only
        // adds virtual durations to it.
        let start = Instant::now();
        Self {
            rng: StdRng::seed_from_u64(seed),
            link,
            start,
            now: start,
            sides: [side(configs.0), side(configs.1)],
            wire: BinaryHeap::new(),
            wire_seq: 0,
            cut_at: None,
            max_wire: 0,
        }
    }

    fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    fn put_on_wire(&mut self, to: usize, ns: u16, nr: u16, body: Option<Vec<u8>>) {
        if self.cut_at.is_some_and(|cut| self.now >= cut) {
            return;
        }
        if self.rng.random_bool(self.link.loss) {
            return;
        }
        let copies = if self.rng.random_bool(self.link.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let (lo, hi) = self.link.delay_ms;
            let delay = Duration::from_millis(self.rng.random_range(lo..=hi));
            self.wire_seq += 1;
            self.wire.push(Datagram {
                at: self.now + delay,
                seq: self.wire_seq,
                to,
                ns,
                nr,
                body: body.clone(),
            });
        }
        self.max_wire = self.max_wire.max(self.wire.len());
    }

    /// Let each side's application queue more, then send all the transports allow.
    fn pump(&mut self, total: u64) {
        for i in 0..2 {
            let side = &mut self.sides[i];
            while !side.transport.is_dead()
                && side.queued < total
                && side.transport.queued_len() < BACKLOG
            {
                let mut body = side.queued.to_be_bytes().to_vec();
                body.extend_from_slice(&[i as u8; 20]);
                side.transport.queue(body).unwrap();
                side.queued += 1;
            }
            let mut out = Vec::new();
            while let Some(tx) = self.sides[i].transport.poll_transmit(self.now) {
                out.push((tx.ns, tx.nr, tx.body.map(<[u8]>::to_vec)));
            }
            for (ns, nr, body) in out {
                self.put_on_wire(1 - i, ns, nr, body);
            }
            self.check_bounds(i);
        }
    }

    fn check_bounds(&self, i: usize) {
        let side = &self.sides[i];
        let t = &side.transport;
        assert!(
            t.reorder_len() < usize::from(side.rws_local),
            "reorder buffer"
        );
        assert!(t.unacked_len() <= usize::from(t.peer_rws()), "peer window");
        assert!(
            t.in_flight() <= usize::from(t.stats().cwnd),
            "congestion window"
        );
        assert!(t.queued_len() <= BACKLOG, "send queue");
        assert!(t.delivered_len() == 0, "delivery queue drained");
    }

    fn deliver(&mut self, dg: Datagram) {
        let side = &mut self.sides[dg.to];
        let outcome = side
            .transport
            .handle_received(self.now, dg.ns, dg.nr, dg.body);
        assert_ne!(
            outcome,
            Received::OutOfWindow,
            "a peer honouring our window"
        );
        assert!(side.transport.delivered_len() <= usize::from(side.rws_local));
        while let Some(d) = side.transport.poll_delivered() {
            let id = u64::from_be_bytes(d.body[..8].try_into().unwrap());
            assert_eq!(id, side.expected, "in order, exactly once");
            assert_eq!(d.body[8..], [1 - dg.to as u8; 20]);
            side.expected += 1;
        }
    }

    /// Run until nothing is pending anywhere; `total` messages each way.
    fn run(&mut self, total: u64, time_limit: Duration) {
        loop {
            self.pump(total);
            let next = [
                self.wire.peek().map(|d| d.at),
                self.sides[0].transport.poll_timeout(),
                self.sides[1].transport.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next else { break };
            assert!(next >= self.now, "deadlines never lie in the past");
            self.now = next;
            assert!(self.elapsed() < time_limit, "simulation did not converge");
            while self.wire.peek().is_some_and(|d| d.at <= self.now) {
                let dg = self.wire.pop().unwrap();
                self.deliver(dg);
            }
            for side in &mut self.sides {
                side.transport.handle_timeout(self.now);
                if side.transport.is_dead() && side.died_at.is_none() {
                    side.died_at = Some(self.now);
                }
            }
        }
    }
}

fn run_both_ways(seed: u64, link: LinkModel, total: u64, max_retransmits: u32) -> Sim {
    let mut sim = Sim::new(seed, link, pair_configs(max_retransmits));
    sim.run(total, Duration::from_secs(100_000_000));
    for (i, side) in sim.sides.iter().enumerate() {
        let t = &side.transport;
        assert!(!t.is_dead(), "seed {seed} side {i} died: {:?}", t.stats());
        assert_eq!(side.expected, total, "seed {seed} side {i} delivered all");
        assert!(t.is_idle(), "seed {seed} side {i} ends idle");
        assert_eq!(t.stats().delivered, total);
        assert_eq!(t.reorder_len(), 0);
    }
    assert!(sim.wire.is_empty());
    sim
}

const SEEDS: u64 = 50;
const MESSAGES: u64 = 2_000;

#[test]
fn lossless_link_delivers_everything_in_order() {
    let link = LinkModel {
        loss: 0.0,
        duplicate: 0.0,
        delay_ms: (10, 200),
    };
    for seed in 0..SEEDS {
        let sim = run_both_ways(seed, link, MESSAGES, 5);
        for side in &sim.sides {
            let stats = side.transport.stats();
            // Acks come back well within the 1 s timer: nothing is ever resent.
            assert_eq!(stats.retransmissions, 0, "seed {seed}: {stats:?}");
            assert_eq!(stats.duplicates, 0);
            assert_eq!(stats.bad_nr, 0);
            assert!(stats.srtt.is_some());
        }
        // Ns started at 0xFFF0 / 0xFFFA: both wrapped.
        assert!(sim.sides[0].transport.next_ns() < 0xFFF0);
        assert!(sim.sides[1].transport.next_ns() < 0xFFFA);
    }
}

#[test]
fn ten_percent_loss_with_duplication_and_reordering() {
    let link = LinkModel {
        loss: 0.10,
        duplicate: 0.05,
        delay_ms: (10, 300),
    };
    for seed in 0..SEEDS {
        // The RFC's default of 5 retransmissions survives this link.
        let sim = run_both_ways(1000 + seed, link, MESSAGES, 5);
        let stats = sim.sides[0].transport.stats();
        assert!(
            stats.retransmissions > 0 && stats.duplicates > 0,
            "{stats:?}"
        );
    }
}

#[test]
fn thirty_percent_loss_with_duplication_and_reordering() {
    let link = LinkModel {
        loss: 0.30,
        duplicate: 0.10,
        delay_ms: (5, 500),
    };
    for seed in 0..SEEDS {
        // Six losses in a row of a message or its ack are likely over thousands of
        // messages at this rate: with the RFC's 5 retransmissions almost every seed
        // declares the peer dead, so this run allows 30.
        let sim = run_both_ways(2000 + seed, link, MESSAGES, 30);
        let stats = sim.sides[1].transport.stats();
        assert!(stats.retransmissions > 0 && stats.timeouts > 0, "{stats:?}");
        assert_eq!(stats.bad_nr, 0);
    }
}

#[test]
fn long_run_wraps_sequence_numbers_several_times() {
    let link = LinkModel {
        loss: 0.10,
        duplicate: 0.05,
        delay_ms: (10, 300),
    };
    // 140_000 messages from just below 0xFFFF: Ns crosses 0 three times each way.
    let sim = run_both_ways(7, link, 140_000, 30);
    assert!(sim.max_wire < 200, "wire holds {}", sim.max_wire);
}

#[test]
fn silent_peer_is_declared_dead_after_a_full_retransmission_cycle() {
    let (a, _) = pair_configs(5);
    let mut t = Transport::new(a);
    let start = Instant::now();
    let mut now = start;
    t.queue(b"SCCRQ".to_vec()).unwrap();
    let mut sends = Vec::new();
    loop {
        while let Some(tx) = t.poll_transmit(now) {
            sends.push(((now - start).as_secs(), tx.ns));
        }
        let Some(next) = t.poll_timeout() else { break };
        now = next;
        t.handle_timeout(now);
    }
    assert!(t.is_dead());
    // One transmission, five retransmissions at 1, 3, 7, 15, 23 s, death at 31 s.
    assert_eq!(
        sends,
        [
            (0, 0xFFF0),
            (1, 0xFFF0),
            (3, 0xFFF0),
            (7, 0xFFF0),
            (15, 0xFFF0),
            (23, 0xFFF0)
        ]
    );
    assert_eq!(now - start, Duration::from_secs(31));
    assert_eq!(t.stats().retransmissions, 5);
}

#[test]
fn peer_vanishing_mid_stream_is_declared_dead() {
    let link = LinkModel {
        loss: 0.0,
        duplicate: 0.0,
        delay_ms: (10, 200),
    };
    for seed in 0..SEEDS {
        let mut sim = Sim::new(3000 + seed, link, pair_configs(5));
        // Exchange traffic for a while, then the link goes dark for good.
        let cut = sim.start + Duration::from_secs(20);
        sim.cut_at = Some(cut);
        let before_cut = Duration::from_secs(10_000);
        sim.run(u64::MAX, before_cut);
        let cycle = Config::default().retransmission_cycle();
        for side in &sim.sides {
            let t = &side.transport;
            assert!(t.is_dead(), "seed {seed}");
            let stats = t.stats();
            // No loss before the cut: every retransmission and timeout is after it,
            // one message resent per timeout (cwnd 1), the sixth timeout is fatal.
            assert_eq!(stats.retransmissions, 5, "seed {seed}: {stats:?}");
            assert_eq!(stats.timeouts, 6);
            assert!(side.expected > 100, "traffic flowed before the cut");
            // The last timer was armed at most one RTO before the cut and at most one
            // link delay after it.
            let dead_after = side.died_at.unwrap() - cut;
            assert!(
                dead_after >= cycle - Duration::from_secs(1)
                    && dead_after <= cycle + Duration::from_millis(200),
                "seed {seed}: dead {dead_after:?} after the cut"
            );
        }
    }
}

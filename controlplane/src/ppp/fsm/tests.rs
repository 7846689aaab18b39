#![allow(clippy::unwrap_used, clippy::panic)]

use super::*;
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------
// Table conformance: every cell of states.txt (transcribed from RFC 1661 §4.1) against
// `transition`.

const TABLE: &str = include_str!("../states.txt");

fn event_named(name: &str) -> Event {
    *Event::ALL
        .iter()
        .find(|e| e.name() == name)
        .unwrap_or_else(|| panic!("states.txt: unknown event {name:?}"))
}

fn action_named(name: &str) -> Action {
    *Action::ALL
        .iter()
        .find(|a| a.name() == name)
        .unwrap_or_else(|| panic!("states.txt: unknown action {name:?}"))
}

fn state_numbered(n: &str) -> State {
    let i: usize = n
        .parse()
        .unwrap_or_else(|_| panic!("states.txt: bad state {n:?}"));
    State::ALL[i]
}

#[test]
fn state_numbers_match_rfc() {
    for (i, s) in State::ALL.iter().enumerate() {
        assert_eq!(*s as usize, i, "{}", s.name());
    }
}

#[test]
fn table_conformance_every_cell() {
    let mut seen = std::collections::HashSet::new();
    let mut mismatches = Vec::new();
    for (lineno, line) in TABLE.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        assert!(
            words.len() >= 4 && words[2] == "->",
            "states.txt:{}: cannot parse {line:?}",
            lineno + 1
        );
        let event = event_named(words[0]);
        let state = state_numbered(words[1]);
        assert!(
            seen.insert((event, state)),
            "states.txt:{}: cell ({}, {}) listed twice",
            lineno + 1,
            event.name(),
            state.name()
        );
        let expected: Option<(Vec<Action>, State, Option<Note>)> = match &words[3..] {
            ["-"] => None,
            [actions, next] => {
                let actions = if *actions == "." {
                    Vec::new()
                } else {
                    actions.split(',').map(action_named).collect()
                };
                let (num, note) = match next.as_bytes().last() {
                    Some(b'p') => (&next[..next.len() - 1], Some(Note::Passive)),
                    Some(b'r') => (&next[..next.len() - 1], Some(Note::Restart)),
                    Some(b'x') => (&next[..next.len() - 1], Some(Note::Crossed)),
                    _ => (&next[..], None),
                };
                Some((actions, state_numbered(num), note))
            }
            _ => panic!("states.txt:{}: cannot parse {line:?}", lineno + 1),
        };
        let actual =
            transition(state, event).map(|t| (t.actions.as_slice().to_vec(), t.next, t.note));
        if actual != expected {
            mismatches.push(format!(
                "cell ({} in {} [{}]): table says {:?}, transition() gives {:?}",
                event.name(),
                state.name(),
                state as usize,
                expected,
                actual
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert_eq!(seen.len(), 16 * 10, "states.txt must list all 160 cells");
}

#[test]
fn restart_timer_states_are_those_with_timeouts() {
    for s in State::ALL {
        let has_to = transition(s, Event::ToPlus).is_some();
        assert_eq!(s.restart_timer_runs(), has_to, "{}", s.name());
    }
}

// ---------------------------------------------------------------------------------------
// A toy protocol: option 1 is a u16 value the receiver accepts up to its `max_value` (Nak
// with its maximum otherwise); option 2 is a boolean flag the receiver may reject.

const OPT_VALUE: u8 = 1;
const OPT_FLAG: u8 = 2;

#[derive(Debug, Clone, Default)]
struct Toy {
    want_value: Option<u16>,
    want_flag: bool,
    value: Option<u16>,
    flag: bool,
    max_value: u16,
    accept_flag: bool,
    /// Ignores Naks (keeps asking for the same value).
    stubborn: bool,
    /// Knows the LCP codes 8 to 11.
    lcp: bool,
    peer_value: Option<u16>,
    peer_flag: bool,
    agreed: Option<Vec<u8>>,
    naks_received: u32,
    rejects_received: u32,
}

impl Toy {
    fn new(want_value: Option<u16>, want_flag: bool, max_value: u16, accept_flag: bool) -> Self {
        Toy {
            want_value,
            want_flag,
            max_value,
            accept_flag,
            ..Toy::default()
        }
    }
}

impl Protocol for Toy {
    const PROTOCOL: u16 = 0xc021;

    fn knows_code(&self, c: u8) -> bool {
        let last = if self.lcp {
            code::DISCARD_REQUEST
        } else {
            code::CODE_REJECT
        };
        (1..=last).contains(&c)
    }

    fn magic_number(&self) -> u32 {
        0x1122_3344
    }

    fn reset_request(&mut self) {
        self.value = self.want_value;
        self.flag = self.want_flag;
    }

    fn build_request(&mut self, out: &mut Vec<u8>) {
        if let Some(v) = self.value {
            push_option(out, OPT_VALUE, &v.to_be_bytes());
        }
        if self.flag {
            push_option(out, OPT_FLAG, &[]);
        }
    }

    fn judge_peer_request(&mut self, options: Options<'_>) -> Verdict {
        let mut nak = Vec::new();
        let mut rej = Vec::new();
        for o in options {
            match (o.kind, o.data) {
                (OPT_VALUE, [hi, lo]) => {
                    if u16::from_be_bytes([*hi, *lo]) > self.max_value {
                        push_option(&mut nak, OPT_VALUE, &self.max_value.to_be_bytes());
                    }
                }
                (OPT_FLAG, []) if self.accept_flag => {}
                _ => rej.extend_from_slice(o.bytes),
            }
        }
        if !rej.is_empty() {
            Verdict::Reject(rej)
        } else if !nak.is_empty() {
            Verdict::Nak(nak)
        } else {
            Verdict::Ack
        }
    }

    fn peer_request_acked(&mut self, options: Options<'_>) {
        self.peer_value = None;
        self.peer_flag = false;
        for o in options {
            match (o.kind, o.data) {
                (OPT_VALUE, [hi, lo]) => self.peer_value = Some(u16::from_be_bytes([*hi, *lo])),
                (OPT_FLAG, _) => self.peer_flag = true,
                _ => {}
            }
        }
    }

    fn our_request_acked(&mut self, options: Options<'_>) {
        self.agreed = Some(options.as_bytes().to_vec());
    }

    fn our_request_naked(&mut self, options: Options<'_>) -> bool {
        self.naks_received += 1;
        for o in options {
            if let (OPT_VALUE, [hi, lo]) = (o.kind, o.data) {
                if !self.stubborn {
                    self.value = Some(u16::from_be_bytes([*hi, *lo]));
                }
            }
        }
        true
    }

    fn our_request_rejected(&mut self, options: Options<'_>) -> bool {
        self.rejects_received += 1;
        for o in options {
            match o.kind {
                OPT_VALUE => self.value = None,
                OPT_FLAG => self.flag = false,
                _ => return false,
            }
        }
        true
    }
}

// ---------------------------------------------------------------------------------------
// Two automata over a virtual link with a virtual clock.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    A,
    B,
}

#[derive(Debug, Clone)]
struct Sent {
    from: Side,
    at: Duration,
    bytes: Vec<u8>,
    dropped: bool,
}

impl Sent {
    fn code(&self) -> u8 {
        self.bytes[0]
    }
    fn id(&self) -> u8 {
        self.bytes[1]
    }
}

type DropFn = Box<dyn FnMut(Side, &[u8]) -> bool>;

struct Net {
    a: Fsm<Toy>,
    b: Fsm<Toy>,
    start: Instant,
    now: Instant,
    sent: Vec<Sent>,
    events_a: Vec<LayerEvent>,
    events_b: Vec<LayerEvent>,
    drop: DropFn,
}

impl Net {
    fn new(a: Toy, b: Toy) -> Net {
        let start = Instant::now();
        Net {
            a: Fsm::new(a, Config::default()),
            b: Fsm::new(b, Config::default()),
            start,
            now: start,
            sent: Vec::new(),
            events_a: Vec::new(),
            events_b: Vec::new(),
            drop: Box::new(|_, _| false),
        }
    }

    fn fsm(&mut self, side: Side) -> &mut Fsm<Toy> {
        match side {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }

    fn collect_events(&mut self) {
        while let Some(e) = self.a.poll_event() {
            self.events_a.push(e);
        }
        while let Some(e) = self.b.poll_event() {
            self.events_b.push(e);
        }
    }

    /// Delivers packets until both sides are quiet.
    fn pump(&mut self) {
        loop {
            self.collect_events();
            let mut moved = false;
            for from in [Side::A, Side::B] {
                while let Some(bytes) = self.fsm(from).poll_transmit() {
                    moved = true;
                    let dropped = (self.drop)(from, &bytes);
                    self.sent.push(Sent {
                        from,
                        at: self.now - self.start,
                        bytes: bytes.clone(),
                        dropped,
                    });
                    if !dropped {
                        let now = self.now;
                        let to = match from {
                            Side::A => Side::B,
                            Side::B => Side::A,
                        };
                        self.fsm(to).handle_packet(&bytes, now).unwrap();
                    }
                }
            }
            if !moved {
                self.collect_events();
                return;
            }
        }
    }

    /// Pumps and advances the clock to each deadline, up to `limit` after the start.
    fn run(&mut self, limit: Duration) {
        loop {
            self.pump();
            let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= self.start + limit => {
                    self.now = t;
                    self.a.handle_timeout(t);
                    self.b.handle_timeout(t);
                }
                _ => return,
            }
        }
    }

    fn open_both(&mut self) {
        let now = self.now;
        self.a.open(now);
        self.b.open(now);
        self.a.up(now);
        self.b.up(now);
    }

    fn sent_by(&self, side: Side, code: u8) -> Vec<&Sent> {
        self.sent
            .iter()
            .filter(|s| s.from == side && s.code() == code)
            .collect()
    }

    fn opened(&mut self) {
        self.open_both();
        self.run(Duration::from_secs(60));
        assert_eq!(self.a.state(), State::Opened);
        assert_eq!(self.b.state(), State::Opened);
        self.events_a.clear();
        self.events_b.clear();
        self.sent.clear();
    }
}

fn toy_pair() -> Net {
    // A wants value 2000 and the flag; B accepts at most 1500, so one Nak round.
    Net::new(
        Toy::new(Some(2000), true, 4000, true),
        Toy::new(Some(1000), false, 1500, true),
    )
}

#[test]
fn both_reach_opened_after_a_nak_round() {
    let mut net = toy_pair();
    net.open_both();
    net.run(Duration::from_secs(60));
    assert_eq!(net.a.state(), State::Opened);
    assert_eq!(net.b.state(), State::Opened);
    assert_eq!(net.events_a, [LayerEvent::Started, LayerEvent::Up]);
    assert_eq!(net.events_b, [LayerEvent::Started, LayerEvent::Up]);
    // B Nak'd 2000 with 1500, A took it.
    let naks = net.sent_by(Side::B, code::CONFIGURE_NAK);
    assert_eq!(naks.len(), 1);
    assert_eq!(
        naks[0].bytes,
        [3, naks[0].id(), 0, 8, OPT_VALUE, 4, 0x05, 0xdc]
    );
    assert_eq!(
        net.a.protocol().agreed.as_deref(),
        Some(&[OPT_VALUE, 4, 0x05, 0xdc, OPT_FLAG, 2][..])
    );
    assert_eq!(net.b.protocol().peer_value, Some(1500));
    assert!(net.b.protocol().peer_flag);
    assert_eq!(net.a.protocol().peer_value, Some(1000));
    // The request after the Nak has a new Identifier (§5.1).
    let reqs = net.sent_by(Side::A, code::CONFIGURE_REQUEST);
    assert_eq!(reqs.len(), 2);
    assert_ne!(reqs[0].id(), reqs[1].id());
    // No timer runs in Opened, nothing was retransmitted.
    assert_eq!(net.a.poll_timeout(), None);
    assert_eq!(net.b.poll_timeout(), None);
    assert!(net.sent.iter().all(|s| s.at == Duration::ZERO));
}

#[test]
fn lost_first_request_recovered_by_restart_timer() {
    let mut net = toy_pair();
    let mut first = true;
    net.drop = Box::new(move |from, bytes| {
        let d = first && from == Side::A && bytes[0] == code::CONFIGURE_REQUEST;
        if d {
            first = false;
        }
        d
    });
    net.open_both();
    net.run(Duration::from_secs(60));
    assert_eq!(net.a.state(), State::Opened);
    assert_eq!(net.b.state(), State::Opened);
    let reqs = net.sent_by(Side::A, code::CONFIGURE_REQUEST);
    assert!(reqs[0].dropped);
    assert_eq!(
        reqs[1].at,
        Duration::from_secs(3),
        "restart timer default 3 s"
    );
    assert_eq!(
        reqs[1].id(),
        reqs[0].id(),
        "a retransmission keeps the Identifier"
    );
    assert_eq!(reqs[1].bytes, reqs[0].bytes);
}

#[test]
fn max_configure_exhaustion_ends_in_stopped_with_tlf() {
    let mut net = toy_pair();
    net.drop = Box::new(|from, _| from == Side::A);
    let now = net.now;
    net.a.open(now);
    net.a.up(now);
    net.run(Duration::from_secs(120));
    let reqs = net.sent_by(Side::A, code::CONFIGURE_REQUEST);
    assert_eq!(reqs.len(), 10, "Max-Configure default 10 transmissions");
    for (i, r) in reqs.iter().enumerate() {
        assert_eq!(r.at, Duration::from_secs(3 * i as u64));
        assert_eq!(r.id(), reqs[0].id());
    }
    assert_eq!(net.a.state(), State::Stopped);
    assert_eq!(net.events_a, [LayerEvent::Started, LayerEvent::Finished]);
    assert_eq!(net.a.poll_timeout(), None);
    assert_eq!(net.now - net.start, Duration::from_secs(30));
}

#[test]
fn configurable_counters_and_timer() {
    let mut net = toy_pair();
    net.a.set_config(Config {
        restart_timer: Duration::from_millis(500),
        max_configure: 3,
        ..Config::default()
    });
    net.drop = Box::new(|_, _| true);
    let now = net.now;
    net.a.open(now);
    net.a.up(now);
    net.run(Duration::from_secs(60));
    let reqs = net.sent_by(Side::A, code::CONFIGURE_REQUEST);
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs[2].at, Duration::from_millis(1000));
    assert_eq!(net.a.state(), State::Stopped);
    assert_eq!(net.now - net.start, Duration::from_millis(1500));
}

#[test]
fn passive_option_skips_tlf() {
    let mut net = toy_pair();
    net.a.set_config(Config {
        passive: true,
        ..Config::default()
    });
    net.drop = Box::new(|_, _| true);
    let now = net.now;
    net.a.open(now);
    net.a.up(now);
    net.run(Duration::from_secs(60));
    assert_eq!(net.a.state(), State::Stopped);
    assert_eq!(net.events_a, [LayerEvent::Started]);
}

#[test]
fn terminate_exchange_from_either_side() {
    for closer in [Side::A, Side::B] {
        let other = match closer {
            Side::A => Side::B,
            Side::B => Side::A,
        };
        let mut net = toy_pair();
        net.opened();
        let now = net.now;
        net.fsm(closer).close_with_reason(now, b"bye");
        assert_eq!(net.fsm(closer).state(), State::Closing);
        net.run(Duration::from_secs(60));
        assert_eq!(net.fsm(closer).state(), State::Closed, "{closer:?} closed");
        assert_eq!(net.fsm(other).state(), State::Stopped, "{other:?} stopped");
        let (ev_closer, ev_other) = match closer {
            Side::A => (&net.events_a, &net.events_b),
            Side::B => (&net.events_b, &net.events_a),
        };
        assert_eq!(ev_closer, &[LayerEvent::Down, LayerEvent::Finished]);
        assert_eq!(ev_other, &[LayerEvent::Down, LayerEvent::Finished]);
        let trs = net.sent_by(closer, code::TERMINATE_REQUEST);
        assert_eq!(trs.len(), 1);
        assert_eq!(&trs[0].bytes[4..], b"bye");
        let tas = net.sent_by(other, code::TERMINATE_ACK);
        assert_eq!(tas.len(), 1);
        assert_eq!(tas[0].id(), trs[0].id());
        // The other side waited one restart period (zrc) in Stopping before tlf.
        assert_eq!(net.now - net.start, Duration::from_secs(3));
    }
}

#[test]
fn terminate_request_retransmitted_max_terminate_times() {
    let mut net = toy_pair();
    net.opened();
    net.drop = Box::new(|_, _| true);
    let now = net.now;
    net.a.close(now);
    net.run(Duration::from_secs(60));
    let trs = net.sent_by(Side::A, code::TERMINATE_REQUEST);
    assert_eq!(trs.len(), 2, "Max-Terminate default 2");
    assert_eq!(trs[0].id(), trs[1].id());
    assert_eq!(net.a.state(), State::Closed);
    assert_eq!(net.events_a, [LayerEvent::Down, LayerEvent::Finished]);
}

#[test]
fn crossed_configure_requests() {
    // Both acceptable as they are: each side sends its request before seeing the other's.
    let mut net = Net::new(
        Toy::new(Some(1000), true, 1500, true),
        Toy::new(Some(1200), false, 1500, true),
    );
    net.open_both();
    let ra = net.a.poll_transmit().unwrap();
    let rb = net.b.poll_transmit().unwrap();
    assert_eq!(ra[0], code::CONFIGURE_REQUEST);
    assert_eq!(rb[0], code::CONFIGURE_REQUEST);
    let now = net.now;
    net.a.handle_packet(&rb, now).unwrap();
    net.b.handle_packet(&ra, now).unwrap();
    assert_eq!(net.a.state(), State::AckSent);
    assert_eq!(net.b.state(), State::AckSent);
    net.run(Duration::from_secs(60));
    assert_eq!(net.a.state(), State::Opened);
    assert_eq!(net.b.state(), State::Opened);
    assert_eq!(net.events_a, [LayerEvent::Started, LayerEvent::Up]);
    assert_eq!(net.events_b, [LayerEvent::Started, LayerEvent::Up]);
}

#[test]
fn max_failure_turns_nak_into_reject() {
    // A insists on 3000 whatever B Naks; B accepts at most 1500.
    let mut a = Toy::new(Some(3000), true, 4000, true);
    a.stubborn = true;
    let mut net = Net::new(a, Toy::new(None, false, 1500, true));
    net.open_both();
    net.run(Duration::from_secs(60));
    let naks = net.sent_by(Side::B, code::CONFIGURE_NAK);
    assert_eq!(naks.len(), 5, "Max-Failure default 5");
    let rejs = net.sent_by(Side::B, code::CONFIGURE_REJECT);
    assert_eq!(rejs.len(), 1);
    // The Reject carries A's option unchanged (§5.4), not B's suggestion.
    assert_eq!(&rejs[0].bytes[4..], [OPT_VALUE, 4, 0x0b, 0xb8]);
    assert_eq!(net.a.protocol().naks_received, 5);
    assert_eq!(net.a.protocol().rejects_received, 1);
    assert_eq!(net.a.state(), State::Opened);
    assert_eq!(net.b.state(), State::Opened);
    assert_eq!(net.b.protocol().peer_value, None);
    assert!(net.b.protocol().peer_flag);
}

#[test]
fn nak_of_only_appended_options_becomes_ack_after_max_failure() {
    let request = [OPT_FLAG, 2];
    let naked = [OPT_VALUE, 4, 0, 1];
    assert_eq!(
        nak_to_reject(Options::new_checked(&request).unwrap(), &naked),
        Verdict::Ack
    );
}

/// A alone, Open and Up: its first Configure-Request and the rest of the state.
fn a_in_req_sent() -> (Fsm<Toy>, Instant, Vec<u8>) {
    let now = Instant::now();
    let mut a = Fsm::new(Toy::new(Some(1000), true, 1500, true), Config::default());
    a.open(now);
    a.up(now);
    let req = a.poll_transmit().unwrap();
    assert_eq!(a.state(), State::ReqSent);
    (a, now, req)
}

#[test]
fn reply_with_stale_identifier_is_ignored() {
    let (mut a, now, req) = a_in_req_sent();
    let id = req[1];
    let options = &req[4..];
    // Wrong Identifier: Ack, Nak, Reject all silently discarded.
    for c in [
        code::CONFIGURE_ACK,
        code::CONFIGURE_NAK,
        code::CONFIGURE_REJECT,
    ] {
        a.handle_packet(&emit_packet(c, id.wrapping_sub(1), options), now)
            .unwrap();
        assert_eq!(a.state(), State::ReqSent);
        assert_eq!(a.poll_transmit(), None);
    }
    // Right Identifier but modified options: not an Ack of our request (§5.2).
    a.handle_packet(&emit_packet(code::CONFIGURE_ACK, id, &[OPT_FLAG, 2]), now)
        .unwrap();
    assert_eq!(a.state(), State::ReqSent);
    // A Reject of an option we did not send is invalid (§5.4).
    a.handle_packet(
        &emit_packet(code::CONFIGURE_REJECT, id, &[OPT_VALUE, 4, 0, 9]),
        now,
    )
    .unwrap();
    assert_eq!(a.state(), State::ReqSent);
    assert_eq!(a.protocol().rejects_received, 0);
    // The right one counts.
    a.handle_packet(&emit_packet(code::CONFIGURE_ACK, id, options), now)
        .unwrap();
    assert_eq!(a.state(), State::AckRcvd);
    // A duplicate of it is out of sequence now.
    a.handle_packet(&emit_packet(code::CONFIGURE_ACK, id, options), now)
        .unwrap();
    assert_eq!(a.state(), State::AckRcvd);
    assert_eq!(a.poll_transmit(), None);
    assert_eq!(a.illegal_events(), 0);
}

#[test]
fn retransmission_after_ack_gets_new_identifier() {
    // TO+ in Ack-Rcvd: scr/6 after a valid reply, so a new Identifier (§5.1).
    let (mut a, now, req) = a_in_req_sent();
    a.handle_packet(&emit_packet(code::CONFIGURE_ACK, req[1], &req[4..]), now)
        .unwrap();
    a.handle_timeout(now + Duration::from_secs(3));
    assert_eq!(a.state(), State::ReqSent);
    let again = a.poll_transmit().unwrap();
    assert_eq!(again[0], code::CONFIGURE_REQUEST);
    assert_ne!(again[1], req[1]);
}

#[test]
fn valid_reject_drops_option() {
    let (mut a, now, req) = a_in_req_sent();
    a.handle_packet(
        &emit_packet(code::CONFIGURE_REJECT, req[1], &[OPT_FLAG, 2]),
        now,
    )
    .unwrap();
    let next = a.poll_transmit().unwrap();
    assert_eq!(&next[4..], [OPT_VALUE, 4, 0x03, 0xe8]);
    assert_ne!(next[1], req[1]);
}

#[test]
fn unknown_code_triggers_code_reject() {
    let mut net = toy_pair();
    net.opened();
    let now = net.now;
    // Code 12 is unknown to the toy NCP; two bytes of padding after Length.
    let unknown = [12, 0x42, 0, 6, 0xaa, 0xbb, 0xcc, 0xdd];
    net.a.handle_packet(&unknown, now).unwrap();
    assert_eq!(net.a.state(), State::Opened);
    let cj = net.a.poll_transmit().unwrap();
    assert_eq!(cj[0], code::CODE_REJECT);
    assert_eq!(&cj[4..], &unknown[..6], "Rejected-Packet, padding excluded");
    assert_eq!(cj.len(), 10);
    // B receives the Code-Reject of a non-fundamental code: RXJ+, stays Opened.
    net.b.handle_packet(&cj, now).unwrap();
    assert_eq!(net.b.state(), State::Opened);
    assert_eq!(
        net.b.poll_event(),
        Some(LayerEvent::CodeRejected { code: 12 })
    );
    // Each Code-Reject has a new Identifier.
    net.a.handle_packet(&unknown, now).unwrap();
    let cj2 = net.a.poll_transmit().unwrap();
    assert_ne!(cj2[1], cj[1]);
}

#[test]
fn code_reject_truncated_to_peer_mru() {
    let mut net = toy_pair();
    net.opened();
    net.a.set_config(Config {
        peer_mru: 10,
        ..Config::default()
    });
    let mut unknown = vec![12, 1, 0, 40];
    unknown.resize(40, 7);
    net.a.handle_packet(&unknown, net.now).unwrap();
    let cj = net.a.poll_transmit().unwrap();
    assert_eq!(cj.len(), 10);
    assert_eq!(&cj[4..], &unknown[..6]);
}

#[test]
fn catastrophic_code_reject_terminates() {
    let mut net = toy_pair();
    net.opened();
    let now = net.now;
    // Code-Reject of a Configure-Request: RXJ- in Opened -> tld,irc,str/5.
    net.a
        .handle_packet(&emit_packet(code::CODE_REJECT, 9, &[1, 1, 0, 4]), now)
        .unwrap();
    assert_eq!(net.a.state(), State::Stopping);
    assert_eq!(net.a.poll_event(), Some(LayerEvent::Down));
    assert_eq!(net.a.poll_transmit().unwrap()[0], code::TERMINATE_REQUEST);
}

#[test]
fn down_up_restarts_negotiation() {
    let mut net = toy_pair();
    net.opened();
    let now = net.now;
    net.a.down(now);
    assert_eq!(net.a.state(), State::Starting);
    assert_eq!(net.a.poll_event(), Some(LayerEvent::Down));
    assert_eq!(net.a.poll_transmit(), None);
    net.a.up(now);
    assert_eq!(net.a.state(), State::ReqSent);
    // The new negotiation starts from A's wishes again (Nak round included).
    net.run(Duration::from_secs(60));
    assert_eq!(net.a.state(), State::Opened);
    assert_eq!(net.b.state(), State::Opened);
    // B saw a Configure-Request in Opened: tld then tlu.
    assert_eq!(net.events_b, [LayerEvent::Down, LayerEvent::Up]);
    assert_eq!(net.events_a, [LayerEvent::Up]);
    assert_eq!(net.sent_by(Side::B, code::CONFIGURE_NAK).len(), 1);
}

#[test]
fn open_in_opened_restarts_only_with_restart_option() {
    let mut net = toy_pair();
    net.opened();
    let now = net.now;
    net.a.open(now);
    assert_eq!(net.a.state(), State::Opened);
    assert_eq!(net.a.poll_transmit(), None);

    net.a.set_config(Config {
        restart_on_open: true,
        ..Config::default()
    });
    net.a.open(now);
    assert_eq!(net.a.state(), State::ReqSent);
    assert_eq!(net.a.poll_event(), Some(LayerEvent::Down));
    net.run(Duration::from_secs(60));
    assert_eq!(net.a.state(), State::Opened);
    assert_eq!(net.b.state(), State::Opened);
}

#[test]
fn closed_answers_requests_with_terminate_ack() {
    let now = Instant::now();
    let mut a = Fsm::new(Toy::new(None, false, 1500, true), Config::default());
    a.up(now);
    assert_eq!(a.state(), State::Closed);
    a.handle_packet(&emit_packet(code::CONFIGURE_REQUEST, 77, &[]), now)
        .unwrap();
    assert_eq!(a.poll_transmit(), Some(vec![code::TERMINATE_ACK, 77, 0, 4]));
    a.handle_packet(&emit_packet(code::TERMINATE_ACK, 78, &[]), now)
        .unwrap();
    assert_eq!(a.poll_transmit(), None, "Terminate-Ack never answered");
    assert_eq!(a.state(), State::Closed);
}

#[test]
fn illegal_event_is_counted_not_fatal() {
    let now = Instant::now();
    let mut a = Fsm::new(Toy::new(None, false, 1500, true), Config::default());
    // Initial: a packet is an illegal event (the lower layer is down).
    a.handle_packet(&emit_packet(code::TERMINATE_REQUEST, 1, &[]), now)
        .unwrap();
    a.down(now);
    assert_eq!(a.state(), State::Initial);
    assert_eq!(a.illegal_events(), 2);
    assert_eq!(a.poll_transmit(), None);
    a.open(now);
    assert_eq!(a.state(), State::Starting);
}

#[test]
fn lcp_echo_and_protocol_reject() {
    let mut a = Toy::new(None, false, 1500, true);
    a.lcp = true;
    let mut b = a.clone();
    b.lcp = true;
    let mut net = Net::new(a, b);
    net.opened();
    let now = net.now;
    // Echo-Request answered with our Magic-Number and the data copied (§5.8).
    net.a
        .handle_packet(
            &emit_packet(code::ECHO_REQUEST, 9, &[0x55, 0x66, 0x77, 0x88, b'h', b'i']),
            now,
        )
        .unwrap();
    assert_eq!(
        net.a.poll_transmit(),
        Some(emit_packet(
            code::ECHO_REPLY,
            9,
            &[0x11, 0x22, 0x33, 0x44, b'h', b'i']
        ))
    );
    // Our own Echo-Request, answered by the peer.
    let id = net.a.send_echo_request(b"x").unwrap();
    net.pump();
    assert_eq!(
        net.events_a,
        [LayerEvent::EchoReply {
            id,
            magic: 0x1122_3344
        }]
    );
    // Discard-Request: nothing.
    net.a
        .handle_packet(&emit_packet(code::DISCARD_REQUEST, 3, &[0, 0, 0, 0]), now)
        .unwrap();
    assert_eq!(net.a.poll_transmit(), None);
    // Protocol-Reject of IPCP: RXJ+, reported; of LCP itself: RXJ-.
    net.a
        .handle_packet(&emit_packet(code::PROTOCOL_REJECT, 4, &[0x80, 0x21]), now)
        .unwrap();
    assert_eq!(net.a.state(), State::Opened);
    assert_eq!(
        net.a.poll_event(),
        Some(LayerEvent::ProtocolRejected { protocol: 0x8021 })
    );
    net.a
        .handle_packet(&emit_packet(code::PROTOCOL_REJECT, 5, &[0xc0, 0x21]), now)
        .unwrap();
    assert_eq!(net.a.state(), State::Stopping);
}

#[test]
fn ncp_code_reject_of_lcp_codes() {
    // An NCP does not know code 9: Echo-Request is RUC there.
    let mut net = toy_pair();
    net.opened();
    assert_eq!(net.a.send_echo_request(b""), None);
    net.a
        .handle_packet(&emit_packet(code::ECHO_REQUEST, 1, &[0, 0, 0, 0]), net.now)
        .unwrap();
    assert_eq!(net.a.poll_transmit().unwrap()[0], code::CODE_REJECT);
}

#[test]
fn protocol_rejected_from_outside_stops_ncp() {
    let mut net = toy_pair();
    net.opened();
    net.a.protocol_rejected(net.now);
    assert_eq!(net.a.state(), State::Stopping);
    assert_eq!(net.a.poll_event(), Some(LayerEvent::Down));
}

#[test]
fn malformed_packets_are_dropped_with_a_reason() {
    let (mut a, now, req) = a_in_req_sent();
    let cases: [(&[u8], PacketError); 5] = [
        (&[1, 2, 0], PacketError::Truncated),
        (&[1, 2, 0, 3], PacketError::BadLength),
        (&[1, 2, 0, 9, 0, 0], PacketError::Truncated),
        (&[2, req[1], 0, 6, 1, 1], PacketError::BadOption),
        (&[7, 2, 0, 4], PacketError::ShortData),
    ];
    for (bytes, err) in cases {
        assert_eq!(a.handle_packet(bytes, now), Err(err), "{bytes:?}");
        assert_eq!(a.state(), State::ReqSent);
        assert_eq!(a.poll_transmit(), None);
    }
}

#[test]
fn options_iterate() {
    let bytes = [1, 4, 0, 5, 2, 2, 3, 3, 9];
    let options = Options::new_checked(&bytes).unwrap();
    let list: Vec<_> = options.iter().map(|o| (o.kind, o.data.to_vec())).collect();
    assert_eq!(list, [(1, vec![0, 5]), (2, vec![]), (3, vec![9])]);
    assert_eq!(Options::new_checked(&[1]), Err(PacketError::BadOption));
    assert_eq!(
        Options::new_checked(&[1, 3, 0]),
        Ok(Options { bytes: &[1, 3, 0] })
    );
    assert_eq!(
        Options::new_checked(&[1, 4, 0]),
        Err(PacketError::BadOption)
    );
}

proptest! {
    #[test]
    fn peer_bytes_never_panic(
        packets in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..20),
        lcp in any::<bool>(),
        opened in any::<bool>(),
    ) {
        let mut a = Toy::new(Some(1000), true, 1500, true);
        a.lcp = lcp;
        let mut net = Net::new(a.clone(), a);
        if opened {
            net.opened();
        } else {
            let now = net.now;
            net.a.open(now);
            net.a.up(now);
        }
        let now = net.now;
        for p in &packets {
            let _ = net.a.handle_packet(p, now);
            while net.a.poll_transmit().is_some() {}
            prop_assert!(State::ALL.contains(&net.a.state()));
        }
    }

    #[test]
    fn emitted_packets_parse_back(c in 1u8..=6, id in any::<u8>(), n in 0usize..20) {
        let mut options = Vec::new();
        for i in 0..n {
            push_option(&mut options, i as u8, &vec![i as u8; i]);
        }
        let bytes = emit_packet(c, id, &options);
        let toy = Toy::default();
        let (received, trimmed) = Received::parse(&bytes, &toy).unwrap();
        prop_assert_eq!(trimmed, &bytes[..]);
        let (got_id, got_options): (u8, Option<&[u8]>) = match received {
            Received::ConfigureRequest { id, options }
            | Received::ConfigureAck { id, options }
            | Received::ConfigureNak { id, options }
            | Received::ConfigureReject { id, options } => (id, Some(options.as_bytes())),
            Received::TerminateRequest { id, data } | Received::TerminateAck { id, data } => {
                (id, Some(data))
            }
            Received::CodeReject { id, .. } => (id, None),
            other => panic!("unexpected {other:?}"),
        };
        prop_assert_eq!(got_id, id);
        if let Some(o) = got_options {
            prop_assert_eq!(o, &options[..]);
        }
    }
}

#[test]
fn force_opened_continues_a_negotiation_done_elsewhere() {
    // B and a third party negotiated; A takes over Opened (proxy LCP, RFC 2661 §4.4.5).
    let mut net = toy_pair();
    net.b.open(net.now);
    net.b.up(net.now);
    while net.b.poll_transmit().is_some() {}
    assert!(net.a.force_opened());
    assert_eq!(net.a.state(), State::Opened);
    assert_eq!(net.a.poll_event(), Some(LayerEvent::Up));
    assert_eq!(net.a.poll_timeout(), None, "no Restart timer in Opened");
    assert!(!net.a.force_opened(), "only from Initial");
    // A stray Configure-Ack is out of sequence: nothing happens.
    let now = net.now;
    net.a
        .handle_packet(&emit_packet(code::CONFIGURE_ACK, 1, &[]), now)
        .unwrap();
    assert_eq!(net.a.state(), State::Opened);
    assert_eq!(net.a.poll_transmit(), None);
    // A Configure-Request from the peer renegotiates as in any Opened state (tld, scr, sc*).
    net.a
        .handle_packet(&emit_packet(code::CONFIGURE_REQUEST, 9, &[]), now)
        .unwrap();
    assert_eq!(net.a.poll_event(), Some(LayerEvent::Down));
    assert!(matches!(net.a.state(), State::AckSent | State::ReqSent));
    net.events_a.clear();
    net.b.down(now);
    net.b.up(now);
    net.run(Duration::from_secs(60));
    assert_eq!(net.a.state(), State::Opened);
    assert_eq!(net.b.state(), State::Opened);
}

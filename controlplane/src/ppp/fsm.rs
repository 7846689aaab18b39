//! The RFC 1661 §4 option negotiation automaton, generic over the control protocol
//! (LCP, IPCP, IPv6CP) and neutral to the role (the same core negotiates for an LNS and for
//! a client).
//!
//! Two layers:
//!
//! * [`transition`]: the §4.1 state transition table as a pure function of ([`State`],
//!   [`Event`]), an exhaustive `match` with no catch-all across states. It returns the
//!   RFC's action list ([`Actions`], in the RFC's order), the new state and the RFC's
//!   footnote ([`Note`]), or `None` for an illegal event ("-"). `states.txt` beside this file
//!   is the table transcribed from the RFC; a test checks all 160 cells against `transition`.
//! * [`Fsm`]: a sans-IO driver that carries out the actions. Inputs: [`Fsm::up`],
//!   [`Fsm::down`], [`Fsm::open`], [`Fsm::close`], [`Fsm::handle_packet`] (a control packet:
//!   Code, Identifier, Length, Data, without the PPP protocol field) and
//!   [`Fsm::handle_timeout`]. Outputs: [`Fsm::poll_transmit`] (packets to send, same
//!   format), [`Fsm::poll_event`] (This-Layer-Up/Down/Started/Finished and rejects) and
//!   [`Fsm::poll_timeout`] (the Restart timer's deadline). It never reads a clock: `now` is
//!   passed in.
//!
//! Per-protocol option policy comes through the [`Protocol`] trait; options travel as raw
//! TLV bytes ([`Options`]), so this module knows nothing of any option's meaning.
//!
//! Contract: bytes from the peer never panic anything. A packet whose header or option list
//! is malformed is dropped with an error ([`PacketError`]) and does not affect the automaton
//! (RFC 1661 §5); a reply that is out of sequence or otherwise invalid is silently discarded
//! (§4.3 RCA, RCN; §5.2-§5.4). Illegal events are logged and counted, no transition is taken,
//! and the automaton neither resets nor freezes (§4.4 Illegal-Event).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// RFC 1661 §4.2 automaton states, numbered as in the §4.1 table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Initial = 0,
    Starting = 1,
    Closed = 2,
    Stopped = 3,
    Closing = 4,
    Stopping = 5,
    ReqSent = 6,
    AckRcvd = 7,
    AckSent = 8,
    Opened = 9,
}

impl State {
    /// All states, in the RFC's order (index = RFC number).
    pub const ALL: [State; 10] = [
        State::Initial,
        State::Starting,
        State::Closed,
        State::Stopped,
        State::Closing,
        State::Stopping,
        State::ReqSent,
        State::AckRcvd,
        State::AckSent,
        State::Opened,
    ];

    /// The RFC's name ("Req-Sent", ...).
    pub fn name(self) -> &'static str {
        match self {
            State::Initial => "Initial",
            State::Starting => "Starting",
            State::Closed => "Closed",
            State::Stopped => "Stopped",
            State::Closing => "Closing",
            State::Stopping => "Stopping",
            State::ReqSent => "Req-Sent",
            State::AckRcvd => "Ack-Rcvd",
            State::AckSent => "Ack-Sent",
            State::Opened => "Opened",
        }
    }

    /// Whether the Restart timer runs in this state: the states with TO events (RFC 1661
    /// §4.1, the paragraph after the table).
    pub fn restart_timer_runs(self) -> bool {
        matches!(
            self,
            State::Closing | State::Stopping | State::ReqSent | State::AckRcvd | State::AckSent
        )
    }

    fn negotiating(self) -> bool {
        matches!(self, State::ReqSent | State::AckRcvd | State::AckSent)
    }
}

/// RFC 1661 §4.3 events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// Up: lower layer is Up.
    Up,
    /// Down: lower layer is Down.
    Down,
    /// Open: administrative Open.
    Open,
    /// Close: administrative Close.
    Close,
    /// TO+: Timeout with counter > 0.
    ToPlus,
    /// TO-: Timeout with counter expired.
    ToMinus,
    /// RCR+: Receive-Configure-Request (Good).
    RcrPlus,
    /// RCR-: Receive-Configure-Request (Bad).
    RcrMinus,
    /// RCA: Receive-Configure-Ack.
    Rca,
    /// RCN: Receive-Configure-Nak/Rej.
    Rcn,
    /// RTR: Receive-Terminate-Request.
    Rtr,
    /// RTA: Receive-Terminate-Ack.
    Rta,
    /// RUC: Receive-Unknown-Code.
    Ruc,
    /// RXJ+: Receive-Code-Reject (permitted) or Receive-Protocol-Reject.
    RxjPlus,
    /// RXJ-: Receive-Code-Reject (catastrophic) or Receive-Protocol-Reject.
    RxjMinus,
    /// RXR: Receive-Echo-Request, Receive-Echo-Reply or Receive-Discard-Request.
    Rxr,
}

impl Event {
    /// All events, in the order of the RFC's table.
    pub const ALL: [Event; 16] = [
        Event::Up,
        Event::Down,
        Event::Open,
        Event::Close,
        Event::ToPlus,
        Event::ToMinus,
        Event::RcrPlus,
        Event::RcrMinus,
        Event::Rca,
        Event::Rcn,
        Event::Rtr,
        Event::Rta,
        Event::Ruc,
        Event::RxjPlus,
        Event::RxjMinus,
        Event::Rxr,
    ];

    /// The RFC's name ("RCR+", "TO-", ...).
    pub fn name(self) -> &'static str {
        match self {
            Event::Up => "Up",
            Event::Down => "Down",
            Event::Open => "Open",
            Event::Close => "Close",
            Event::ToPlus => "TO+",
            Event::ToMinus => "TO-",
            Event::RcrPlus => "RCR+",
            Event::RcrMinus => "RCR-",
            Event::Rca => "RCA",
            Event::Rcn => "RCN",
            Event::Rtr => "RTR",
            Event::Rta => "RTA",
            Event::Ruc => "RUC",
            Event::RxjPlus => "RXJ+",
            Event::RxjMinus => "RXJ-",
            Event::Rxr => "RXR",
        }
    }
}

/// RFC 1661 §4.4 actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// This-Layer-Up.
    Tlu,
    /// This-Layer-Down.
    Tld,
    /// This-Layer-Started.
    Tls,
    /// This-Layer-Finished.
    Tlf,
    /// Initialize-Restart-Count.
    Irc,
    /// Zero-Restart-Count.
    Zrc,
    /// Send-Configure-Request.
    Scr,
    /// Send-Configure-Ack.
    Sca,
    /// Send-Configure-Nak/Rej.
    Scn,
    /// Send-Terminate-Request.
    Str,
    /// Send-Terminate-Ack.
    Sta,
    /// Send-Code-Reject.
    Scj,
    /// Send-Echo-Reply.
    Ser,
}

impl Action {
    /// All actions.
    pub const ALL: [Action; 13] = [
        Action::Tlu,
        Action::Tld,
        Action::Tls,
        Action::Tlf,
        Action::Irc,
        Action::Zrc,
        Action::Scr,
        Action::Sca,
        Action::Scn,
        Action::Str,
        Action::Sta,
        Action::Scj,
        Action::Ser,
    ];

    /// The RFC's abbreviation ("tlu", "scr", ...).
    pub fn name(self) -> &'static str {
        match self {
            Action::Tlu => "tlu",
            Action::Tld => "tld",
            Action::Tls => "tls",
            Action::Tlf => "tlf",
            Action::Irc => "irc",
            Action::Zrc => "zrc",
            Action::Scr => "scr",
            Action::Sca => "sca",
            Action::Scn => "scn",
            Action::Str => "str",
            Action::Sta => "sta",
            Action::Scj => "scj",
            Action::Ser => "ser",
        }
    }
}

/// The actions of one table cell, in the RFC's order; at most [`Actions::MAX`], no heap.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Actions {
    buf: [Action; Actions::MAX],
    len: usize,
}

impl Actions {
    /// The longest action list in the table (e.g. "tld,scr,sca").
    pub const MAX: usize = 3;

    /// No action.
    pub const NONE: Actions = Actions {
        buf: [Action::Tlu; Actions::MAX],
        len: 0,
    };

    fn of<const N: usize>(list: [Action; N]) -> Actions {
        const { assert!(N <= Actions::MAX) };
        let mut buf = [Action::Tlu; Actions::MAX];
        for (slot, action) in buf.iter_mut().zip(list) {
            *slot = action;
        }
        Actions { buf, len: N }
    }

    /// The actions, in order.
    pub fn as_slice(&self) -> &[Action] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// Whether `action` is in the list.
    pub fn contains(&self, action: Action) -> bool {
        self.as_slice().contains(&action)
    }
}

impl core::fmt::Debug for Actions {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// The footnote letter of a table cell (RFC 1661 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    /// [p] Passive option (§4.2 Stopped): when [`Config::passive`] is set, TO- in Req-Sent,
    /// Ack-Rcvd and Ack-Sent does not take the tlf action.
    Passive,
    /// [r] Restart option (§4.3 Open): when [`Config::restart_on_open`] is set, an Open in
    /// Stopped, Closing, Stopping or Opened is followed by a Down and an Up event.
    Restart,
    /// [x] Crossed connection (§4.3 RCA): logged.
    Crossed,
}

/// One legal cell of the table: actions (RFC order), new state, footnote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub actions: Actions,
    pub next: State,
    pub note: Option<Note>,
}

fn to(actions: Actions, next: State) -> Option<Transition> {
    Some(Transition {
        actions,
        next,
        note: None,
    })
}

fn noted(actions: Actions, next: State, note: Note) -> Option<Transition> {
    Some(Transition {
        actions,
        next,
        note: Some(note),
    })
}

/// The RFC 1661 §4.1 state transition table. `None` is the RFC's "-" (illegal event).
pub fn transition(state: State, event: Event) -> Option<Transition> {
    use Action::*;
    use Event::*;
    use State::*;
    let none = Actions::NONE;
    match (state, event) {
        // Initial (0).
        (Initial, Up) => to(none, Closed),
        (Initial, Down) => None,
        (Initial, Open) => to(Actions::of([Tls]), Starting),
        (Initial, Close) => to(none, Initial),
        (
            Initial,
            ToPlus | ToMinus | RcrPlus | RcrMinus | Rca | Rcn | Rtr | Rta | Ruc | RxjPlus
            | RxjMinus | Rxr,
        ) => None,

        // Starting (1).
        (Starting, Up) => to(Actions::of([Irc, Scr]), ReqSent),
        (Starting, Down) => None,
        (Starting, Open) => to(none, Starting),
        (Starting, Close) => to(Actions::of([Tlf]), Initial),
        (
            Starting,
            ToPlus | ToMinus | RcrPlus | RcrMinus | Rca | Rcn | Rtr | Rta | Ruc | RxjPlus
            | RxjMinus | Rxr,
        ) => None,

        // Closed (2).
        (Closed, Up) => None,
        (Closed, Down) => to(none, Initial),
        (Closed, Open) => to(Actions::of([Irc, Scr]), ReqSent),
        (Closed, Close) => to(none, Closed),
        (Closed, ToPlus | ToMinus) => None,
        (Closed, RcrPlus | RcrMinus | Rca | Rcn | Rtr) => to(Actions::of([Sta]), Closed),
        (Closed, Rta) => to(none, Closed),
        (Closed, Ruc) => to(Actions::of([Scj]), Closed),
        (Closed, RxjPlus) => to(none, Closed),
        (Closed, RxjMinus) => to(Actions::of([Tlf]), Closed),
        (Closed, Rxr) => to(none, Closed),

        // Stopped (3).
        (Stopped, Up) => None,
        (Stopped, Down) => to(Actions::of([Tls]), Starting),
        (Stopped, Open) => noted(none, Stopped, Note::Restart),
        (Stopped, Close) => to(none, Closed),
        (Stopped, ToPlus | ToMinus) => None,
        (Stopped, RcrPlus) => to(Actions::of([Irc, Scr, Sca]), AckSent),
        (Stopped, RcrMinus) => to(Actions::of([Irc, Scr, Scn]), ReqSent),
        (Stopped, Rca | Rcn | Rtr) => to(Actions::of([Sta]), Stopped),
        (Stopped, Rta) => to(none, Stopped),
        (Stopped, Ruc) => to(Actions::of([Scj]), Stopped),
        (Stopped, RxjPlus) => to(none, Stopped),
        (Stopped, RxjMinus) => to(Actions::of([Tlf]), Stopped),
        (Stopped, Rxr) => to(none, Stopped),

        // Closing (4).
        (Closing, Up) => None,
        (Closing, Down) => to(none, Initial),
        (Closing, Open) => noted(none, Stopping, Note::Restart),
        (Closing, Close) => to(none, Closing),
        (Closing, ToPlus) => to(Actions::of([Str]), Closing),
        (Closing, ToMinus) => to(Actions::of([Tlf]), Closed),
        (Closing, RcrPlus | RcrMinus | Rca | Rcn) => to(none, Closing),
        (Closing, Rtr) => to(Actions::of([Sta]), Closing),
        (Closing, Rta) => to(Actions::of([Tlf]), Closed),
        (Closing, Ruc) => to(Actions::of([Scj]), Closing),
        (Closing, RxjPlus) => to(none, Closing),
        (Closing, RxjMinus) => to(Actions::of([Tlf]), Closed),
        (Closing, Rxr) => to(none, Closing),

        // Stopping (5).
        (Stopping, Up) => None,
        (Stopping, Down) => to(none, Starting),
        (Stopping, Open) => noted(none, Stopping, Note::Restart),
        (Stopping, Close) => to(none, Closing),
        (Stopping, ToPlus) => to(Actions::of([Str]), Stopping),
        (Stopping, ToMinus) => to(Actions::of([Tlf]), Stopped),
        (Stopping, RcrPlus | RcrMinus | Rca | Rcn) => to(none, Stopping),
        (Stopping, Rtr) => to(Actions::of([Sta]), Stopping),
        (Stopping, Rta) => to(Actions::of([Tlf]), Stopped),
        (Stopping, Ruc) => to(Actions::of([Scj]), Stopping),
        (Stopping, RxjPlus) => to(none, Stopping),
        (Stopping, RxjMinus) => to(Actions::of([Tlf]), Stopped),
        (Stopping, Rxr) => to(none, Stopping),

        // Req-Sent (6).
        (ReqSent, Up) => None,
        (ReqSent, Down) => to(none, Starting),
        (ReqSent, Open) => to(none, ReqSent),
        (ReqSent, Close) => to(Actions::of([Irc, Str]), Closing),
        (ReqSent, ToPlus) => to(Actions::of([Scr]), ReqSent),
        (ReqSent, ToMinus) => noted(Actions::of([Tlf]), Stopped, Note::Passive),
        (ReqSent, RcrPlus) => to(Actions::of([Sca]), AckSent),
        (ReqSent, RcrMinus) => to(Actions::of([Scn]), ReqSent),
        (ReqSent, Rca) => to(Actions::of([Irc]), AckRcvd),
        (ReqSent, Rcn) => to(Actions::of([Irc, Scr]), ReqSent),
        (ReqSent, Rtr) => to(Actions::of([Sta]), ReqSent),
        (ReqSent, Rta) => to(none, ReqSent),
        (ReqSent, Ruc) => to(Actions::of([Scj]), ReqSent),
        (ReqSent, RxjPlus) => to(none, ReqSent),
        (ReqSent, RxjMinus) => to(Actions::of([Tlf]), Stopped),
        (ReqSent, Rxr) => to(none, ReqSent),

        // Ack-Rcvd (7).
        (AckRcvd, Up) => None,
        (AckRcvd, Down) => to(none, Starting),
        (AckRcvd, Open) => to(none, AckRcvd),
        (AckRcvd, Close) => to(Actions::of([Irc, Str]), Closing),
        (AckRcvd, ToPlus) => to(Actions::of([Scr]), ReqSent),
        (AckRcvd, ToMinus) => noted(Actions::of([Tlf]), Stopped, Note::Passive),
        (AckRcvd, RcrPlus) => to(Actions::of([Sca, Tlu]), Opened),
        (AckRcvd, RcrMinus) => to(Actions::of([Scn]), AckRcvd),
        (AckRcvd, Rca | Rcn) => noted(Actions::of([Scr]), ReqSent, Note::Crossed),
        (AckRcvd, Rtr) => to(Actions::of([Sta]), ReqSent),
        (AckRcvd, Rta) => to(none, ReqSent),
        (AckRcvd, Ruc) => to(Actions::of([Scj]), AckRcvd),
        (AckRcvd, RxjPlus) => to(none, ReqSent),
        (AckRcvd, RxjMinus) => to(Actions::of([Tlf]), Stopped),
        (AckRcvd, Rxr) => to(none, AckRcvd),

        // Ack-Sent (8).
        (AckSent, Up) => None,
        (AckSent, Down) => to(none, Starting),
        (AckSent, Open) => to(none, AckSent),
        (AckSent, Close) => to(Actions::of([Irc, Str]), Closing),
        (AckSent, ToPlus) => to(Actions::of([Scr]), AckSent),
        (AckSent, ToMinus) => noted(Actions::of([Tlf]), Stopped, Note::Passive),
        (AckSent, RcrPlus) => to(Actions::of([Sca]), AckSent),
        (AckSent, RcrMinus) => to(Actions::of([Scn]), ReqSent),
        (AckSent, Rca) => to(Actions::of([Irc, Tlu]), Opened),
        (AckSent, Rcn) => to(Actions::of([Irc, Scr]), AckSent),
        (AckSent, Rtr) => to(Actions::of([Sta]), ReqSent),
        (AckSent, Rta) => to(none, AckSent),
        (AckSent, Ruc) => to(Actions::of([Scj]), AckSent),
        (AckSent, RxjPlus) => to(none, AckSent),
        (AckSent, RxjMinus) => to(Actions::of([Tlf]), Stopped),
        (AckSent, Rxr) => to(none, AckSent),

        // Opened (9).
        (Opened, Up) => None,
        (Opened, Down) => to(Actions::of([Tld]), Starting),
        (Opened, Open) => noted(none, Opened, Note::Restart),
        (Opened, Close) => to(Actions::of([Tld, Irc, Str]), Closing),
        (Opened, ToPlus | ToMinus) => None,
        (Opened, RcrPlus) => to(Actions::of([Tld, Scr, Sca]), AckSent),
        (Opened, RcrMinus) => to(Actions::of([Tld, Scr, Scn]), ReqSent),
        (Opened, Rca | Rcn) => noted(Actions::of([Tld, Scr]), ReqSent, Note::Crossed),
        (Opened, Rtr) => to(Actions::of([Tld, Zrc, Sta]), Stopping),
        (Opened, Rta) => to(Actions::of([Tld, Scr]), ReqSent),
        (Opened, Ruc) => to(Actions::of([Scj]), Opened),
        (Opened, RxjPlus) => to(none, Opened),
        (Opened, RxjMinus) => to(Actions::of([Tld, Irc, Str]), Stopping),
        (Opened, Rxr) => to(Actions::of([Ser]), Opened),
    }
}

/// RFC 1661 §5 codes.
pub mod code {
    pub const CONFIGURE_REQUEST: u8 = 1;
    pub const CONFIGURE_ACK: u8 = 2;
    pub const CONFIGURE_NAK: u8 = 3;
    pub const CONFIGURE_REJECT: u8 = 4;
    pub const TERMINATE_REQUEST: u8 = 5;
    pub const TERMINATE_ACK: u8 = 6;
    pub const CODE_REJECT: u8 = 7;
    /// LCP only.
    pub const PROTOCOL_REJECT: u8 = 8;
    /// LCP only.
    pub const ECHO_REQUEST: u8 = 9;
    /// LCP only.
    pub const ECHO_REPLY: u8 = 10;
    /// LCP only.
    pub const DISCARD_REQUEST: u8 = 11;
}

/// Why a received control packet was dropped without affecting the automaton.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Shorter than the 4-byte header, or than its Length field.
    #[error("packet truncated")]
    Truncated,
    /// Length field below 4 (RFC 1661 §5 Length).
    #[error("bad length field")]
    BadLength,
    /// A Configuration Option whose length is below 2 or runs past the packet (§6).
    #[error("malformed configuration option")]
    BadOption,
    /// A Code-Reject, Protocol-Reject or Echo packet too short for its fixed fields.
    #[error("data too short for its code")]
    ShortData,
}

mod field {
    pub type Field = core::ops::Range<usize>;
    pub const CODE: usize = 0;
    pub const IDENTIFIER: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const HEADER_LEN: usize = 4;
    pub const OPTION_TYPE: usize = 0;
    pub const OPTION_LENGTH: usize = 1;
    pub const OPTION_HEADER_LEN: usize = 2;
    pub const MAGIC: Field = 0..4;
    pub const REJECTED_PROTOCOL: Field = 0..2;
}

/// One Configuration Option (RFC 1661 §6): Type, Length, Data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawOption<'a> {
    /// The Type octet.
    pub kind: u8,
    /// The Data, without Type and Length.
    pub data: &'a [u8],
    /// The whole option, Type and Length included.
    pub bytes: &'a [u8],
}

/// A checked list of Configuration Options: every option's Length is at least 2 and stays
/// within the list, so iterating never fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options<'a> {
    bytes: &'a [u8],
}

impl<'a> Options<'a> {
    /// Checks every option's length (RFC 1661 §6).
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, PacketError> {
        let mut rest = bytes;
        while !rest.is_empty() {
            let len = usize::from(
                *rest
                    .get(field::OPTION_LENGTH)
                    .ok_or(PacketError::BadOption)?,
            );
            if len < field::OPTION_HEADER_LEN {
                return Err(PacketError::BadOption);
            }
            rest = rest.get(len..).ok_or(PacketError::BadOption)?;
        }
        Ok(Options { bytes })
    }

    /// The options as received or sent.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Whether there is no option.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The options, in order.
    pub fn iter(&self) -> OptionIter<'a> {
        OptionIter { rest: self.bytes }
    }
}

impl<'a> IntoIterator for Options<'a> {
    type Item = RawOption<'a>;
    type IntoIter = OptionIter<'a>;
    fn into_iter(self) -> OptionIter<'a> {
        self.iter()
    }
}

/// Iterator over [`Options`].
#[derive(Debug, Clone)]
pub struct OptionIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for OptionIter<'a> {
    type Item = RawOption<'a>;
    fn next(&mut self) -> Option<RawOption<'a>> {
        let kind = *self.rest.get(field::OPTION_TYPE)?;
        let len = usize::from(*self.rest.get(field::OPTION_LENGTH)?);
        let bytes = self.rest.get(..len)?;
        let data = bytes.get(field::OPTION_HEADER_LEN..)?;
        self.rest = self.rest.get(len..).unwrap_or(&[]);
        Some(RawOption { kind, data, bytes })
    }
}

/// Appends one Configuration Option (Type, Length, Data) to `out`. Data longer than 253
/// bytes cannot be encoded; it is truncated to 253.
pub fn push_option(out: &mut Vec<u8>, kind: u8, data: &[u8]) {
    let data = data.get(..253).unwrap_or(data);
    out.push(kind);
    out.push(u8::try_from(data.len() + field::OPTION_HEADER_LEN).unwrap_or(u8::MAX));
    out.extend_from_slice(data);
}

/// A received control packet, decoded just enough for the automaton (RFC 1661 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received<'a> {
    ConfigureRequest {
        id: u8,
        options: Options<'a>,
    },
    ConfigureAck {
        id: u8,
        options: Options<'a>,
    },
    ConfigureNak {
        id: u8,
        options: Options<'a>,
    },
    ConfigureReject {
        id: u8,
        options: Options<'a>,
    },
    TerminateRequest {
        id: u8,
        data: &'a [u8],
    },
    TerminateAck {
        id: u8,
        data: &'a [u8],
    },
    /// `code` is the Code of the rejected packet; `catastrophic` is
    /// [`Protocol::code_reject_is_catastrophic`] of it (RXJ- rather than RXJ+, §4.3).
    CodeReject {
        id: u8,
        code: u8,
        catastrophic: bool,
    },
    /// LCP only (§5.7): the rejected PPP protocol number.
    ProtocolReject {
        id: u8,
        protocol: u16,
    },
    /// LCP only (§5.8): the sender's Magic-Number and the rest of the data.
    EchoRequest {
        id: u8,
        magic: u32,
        data: &'a [u8],
    },
    /// LCP only (§5.8).
    EchoReply {
        id: u8,
        magic: u32,
        data: &'a [u8],
    },
    /// LCP only (§5.9).
    DiscardRequest {
        id: u8,
    },
    /// A code `P` does not know (RUC, answered with a Code-Reject).
    Unknown {
        code: u8,
        id: u8,
    },
}

impl<'a> Received<'a> {
    /// Decodes `packet` (Code, Identifier, Length, Data; octets past Length are padding and
    /// ignored, §5). Codes `proto` does not know ([`Protocol::knows_code`]) decode as
    /// [`Received::Unknown`]. Returns the packet trimmed to its Length as well.
    pub fn parse<P: Protocol + ?Sized>(
        packet: &'a [u8],
        proto: &P,
    ) -> Result<(Received<'a>, &'a [u8]), PacketError> {
        let header = packet
            .get(..field::HEADER_LEN)
            .ok_or(PacketError::Truncated)?;
        let code = header[field::CODE];
        let id = header[field::IDENTIFIER];
        let len = usize::from(u16::from_be_bytes([
            header[field::LENGTH.start],
            header[field::LENGTH.start + 1],
        ]));
        if len < field::HEADER_LEN {
            return Err(PacketError::BadLength);
        }
        let packet = packet.get(..len).ok_or(PacketError::Truncated)?;
        let data = packet.get(field::HEADER_LEN..).unwrap_or(&[]);
        if !proto.knows_code(code) {
            return Ok((Received::Unknown { code, id }, packet));
        }
        let magic = |data: &'a [u8]| -> Result<(u32, &'a [u8]), PacketError> {
            let m = data.get(field::MAGIC).ok_or(PacketError::ShortData)?;
            Ok((
                u32::from_be_bytes([m[0], m[1], m[2], m[3]]),
                data.get(field::MAGIC.end..).unwrap_or(&[]),
            ))
        };
        let received = match code {
            code::CONFIGURE_REQUEST => Received::ConfigureRequest {
                id,
                options: Options::new_checked(data)?,
            },
            code::CONFIGURE_ACK => Received::ConfigureAck {
                id,
                options: Options::new_checked(data)?,
            },
            code::CONFIGURE_NAK => Received::ConfigureNak {
                id,
                options: Options::new_checked(data)?,
            },
            code::CONFIGURE_REJECT => Received::ConfigureReject {
                id,
                options: Options::new_checked(data)?,
            },
            code::TERMINATE_REQUEST => Received::TerminateRequest { id, data },
            code::TERMINATE_ACK => Received::TerminateAck { id, data },
            code::CODE_REJECT => {
                let rejected = *data.first().ok_or(PacketError::ShortData)?;
                Received::CodeReject {
                    id,
                    code: rejected,
                    catastrophic: proto.code_reject_is_catastrophic(rejected),
                }
            }
            code::PROTOCOL_REJECT => {
                let p = data
                    .get(field::REJECTED_PROTOCOL)
                    .ok_or(PacketError::ShortData)?;
                Received::ProtocolReject {
                    id,
                    protocol: u16::from_be_bytes([p[0], p[1]]),
                }
            }
            code::ECHO_REQUEST => {
                let (magic, data) = magic(data)?;
                Received::EchoRequest { id, magic, data }
            }
            code::ECHO_REPLY => {
                let (magic, data) = magic(data)?;
                Received::EchoReply { id, magic, data }
            }
            code::DISCARD_REQUEST => Received::DiscardRequest { id },
            _ => Received::Unknown { code, id },
        };
        Ok((received, packet))
    }
}

/// Builds a control packet: Code, Identifier, Length, Data (RFC 1661 §5). Data beyond
/// 65531 bytes is cut so that Length fits.
pub fn emit_packet(code: u8, id: u8, data: &[u8]) -> Vec<u8> {
    let data = data
        .get(..usize::from(u16::MAX) - field::HEADER_LEN)
        .unwrap_or(data);
    let len = u16::try_from(field::HEADER_LEN + data.len()).unwrap_or(u16::MAX);
    let mut out = Vec::with_capacity(field::HEADER_LEN + data.len());
    out.push(code);
    out.push(id);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// Our answer to the peer's Configure-Request (RFC 1661 §5.2-§5.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every option is recognised and acceptable: RCR+, Configure-Ack with the request's
    /// options unchanged (§5.2).
    Ack,
    /// Some values are unacceptable: RCR-, Configure-Nak carrying these options (the
    /// unacceptable ones with acceptable values, in the request's order, then any option we
    /// want the peer to add), as TLV bytes (§5.3).
    Nak(Vec<u8>),
    /// Some options are unrecognised or not negotiable: RCR-, Configure-Reject carrying these
    /// options copied unchanged from the request, in its order, as TLV bytes (§5.4).
    Reject(Vec<u8>),
}

/// The per-protocol option policy (LCP, IPCP, IPv6CP) the automaton calls into.
pub trait Protocol {
    /// PPP protocol number of this control protocol (0xc021 LCP, 0x8021 IPCP, 0x8057
    /// IPv6CP). A Protocol-Reject of it is catastrophic (RXJ-).
    const PROTOCOL: u16;

    /// Whether `code` is one this protocol interprets; others are RUC and answered with a
    /// Code-Reject (§4.3, §5.6). Default: codes 1 to 7 (every NCP); LCP adds 8 to 11.
    fn knows_code(&self, code: u8) -> bool {
        (code::CONFIGURE_REQUEST..=code::CODE_REJECT).contains(&code)
    }

    /// Whether a Code-Reject of `code` is catastrophic (RXJ-) rather than permitted (RXJ+).
    /// Default: the codes fundamental to every control protocol, 1 to 7 (§4.3, §5.6).
    fn code_reject_is_catastrophic(&self, code: u8) -> bool {
        (code::CONFIGURE_REQUEST..=code::CODE_REJECT).contains(&code)
    }

    /// Our Magic-Number, written into Echo-Replies (LCP, RFC 1661 §5.8); 0 when none.
    fn magic_number(&self) -> u32 {
        0
    }

    /// A new negotiation begins (a Configure-Request is about to be sent from a state that
    /// was not negotiating): go back to the options we want initially.
    fn reset_request(&mut self) {}

    /// Appends the options of our next Configure-Request to `out` (TLVs, §5.1), reflecting
    /// every Nak and Reject received so far.
    fn build_request(&mut self, out: &mut Vec<u8>);

    /// Judges the peer's Configure-Request. Must not commit anything: the automaton calls
    /// [`Protocol::peer_request_acked`] once it acknowledges a request.
    fn judge_peer_request(&mut self, options: Options<'_>) -> Verdict;

    /// We sent a Configure-Ack for these options (the peer's values are now in force).
    fn peer_request_acked(&mut self, options: Options<'_>);

    /// The peer acknowledged our request; `options` are exactly those we sent (checked by
    /// the automaton, §5.2).
    fn our_request_acked(&mut self, options: Options<'_>);

    /// The peer Nak'd our request: adjust the options of the next request (§5.3). Return
    /// false if the Nak is invalid, which discards it silently.
    fn our_request_naked(&mut self, options: Options<'_>) -> bool;

    /// The peer rejected these options of our request: stop sending them (§5.4). The
    /// automaton has already checked that they are an unmodified, ordered subset of what we
    /// sent. Return false if the Reject is invalid for other reasons, which discards it.
    fn our_request_rejected(&mut self, options: Options<'_>) -> bool;
}

/// The automaton's counters and timer (RFC 1661 §4.6) and its implementation options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Restart timer (default 3 s).
    pub restart_timer: Duration,
    /// Max-Terminate: Terminate-Requests sent without a Terminate-Ack (default 2).
    pub max_terminate: u32,
    /// Max-Configure: Configure-Requests sent without a valid Ack, Nak or Reject (default 10).
    pub max_configure: u32,
    /// Max-Failure: Configure-Naks sent without sending a Configure-Ack; further Naks become
    /// Configure-Rejects (default 5).
    pub max_failure: u32,
    /// [p] §4.2 Stopped: wait passively after the peer fails to respond (no tlf on TO- in
    /// Req-Sent, Ack-Rcvd, Ack-Sent). SHOULD NOT be used on switched circuits; default off.
    pub passive: bool,
    /// [r] §4.3 Open: an Open in Stopped, Closing, Stopping or Opened issues Down then Up, to
    /// renegotiate. Default off.
    pub restart_on_open: bool,
    /// Longest packet we send in a Code-Reject (§5.6: truncated to the peer's MRU).
    pub peer_mru: u16,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            restart_timer: Duration::from_secs(3),
            max_terminate: 2,
            max_configure: 10,
            max_failure: 5,
            passive: false,
            restart_on_open: false,
            peer_mru: 1500,
        }
    }
}

/// What the automaton tells the layers around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerEvent {
    /// tlu: entering Opened.
    Up,
    /// tld: leaving Opened.
    Down,
    /// tls: the lower layer is needed; answer with [`Fsm::up`] when it is.
    Started,
    /// tlf: the lower layer is no longer needed.
    Finished,
    /// RXJ+ of a Code-Reject: stop sending packets with this code (§4.3).
    CodeRejected { code: u8 },
    /// Protocol-Reject of another protocol (LCP, §5.7): the owner stops that protocol (for an
    /// NCP's automaton, [`Fsm::protocol_rejected`]).
    ProtocolRejected { protocol: u16 },
    /// An Echo-Reply arrived (LCP keepalive, §5.8).
    EchoReply { id: u8, magic: u32 },
}

/// The reply to the peer's Configure-Request being processed.
struct Reply {
    code: u8,
    id: u8,
    options: Vec<u8>,
    /// The request's options, for [`Protocol::peer_request_acked`].
    request: Vec<u8>,
}

/// What the actions of one event need from the input that caused it.
#[derive(Default)]
struct Input<'a> {
    /// sta: the Identifier to copy (the received packet's).
    id: u8,
    /// sca / scn.
    reply: Option<Reply>,
    /// scj: the packet being rejected.
    packet: &'a [u8],
    /// ser: the Echo-Request's data after the Magic-Number.
    echo: Option<&'a [u8]>,
}

/// The RFC 1661 automaton driven for protocol `P`; see the module documentation.
#[derive(Debug)]
pub struct Fsm<P> {
    proto: P,
    config: Config,
    state: State,
    restart_count: u32,
    deadline: Option<Instant>,
    /// Configure-Naks sent since the last Configure-Ack sent (§4.6 Max-Failure).
    failures: u32,
    next_id: u8,
    /// Identifier and options of the last Configure-Request sent.
    request: Option<(u8, Vec<u8>)>,
    /// A valid reply to `request` was received: further replies with its Identifier are out
    /// of sequence, and the next Configure-Request gets a new Identifier (§5.1).
    request_answered: bool,
    /// Identifier of the last Terminate-Request sent, and its data.
    terminate: Option<u8>,
    terminate_data: Vec<u8>,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<LayerEvent>,
    illegal: u64,
}

impl<P: Protocol> Fsm<P> {
    /// A new automaton in the Initial state.
    pub fn new(proto: P, config: Config) -> Self {
        Fsm {
            proto,
            config,
            state: State::Initial,
            restart_count: 0,
            deadline: None,
            failures: 0,
            next_id: 0,
            request: None,
            request_answered: false,
            terminate: None,
            terminate_data: Vec::new(),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            illegal: 0,
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Changes the configuration (e.g. the peer MRU once LCP negotiated it); applies from
    /// the next action on.
    pub fn set_config(&mut self, config: Config) {
        self.config = config;
    }

    /// The protocol's option state.
    pub fn protocol(&self) -> &P {
        &self.proto
    }

    /// The protocol's option state, mutable (e.g. to change policy before an Open).
    pub fn protocol_mut(&mut self) -> &mut P {
        &mut self.proto
    }

    /// How many illegal events (the table's "-") were ignored.
    pub fn illegal_events(&self) -> u64 {
        self.illegal
    }

    /// The lower layer is Up.
    pub fn up(&mut self, now: Instant) {
        self.run(Event::Up, now, Input::default());
    }

    /// The lower layer is Down.
    pub fn down(&mut self, now: Instant) {
        self.run(Event::Down, now, Input::default());
    }

    /// Administrative Open. With [`Config::restart_on_open`], an Open in Stopped, Closing,
    /// Stopping or Opened is followed by Down and Up (RFC 1661 §4.3 Open, footnote [r]).
    pub fn open(&mut self, now: Instant) {
        let note = self.run(Event::Open, now, Input::default());
        if note == Some(Note::Restart) && self.config.restart_on_open {
            self.run(Event::Down, now, Input::default());
            self.run(Event::Up, now, Input::default());
        }
    }

    /// Administrative Close; Terminate-Requests carry no data.
    pub fn close(&mut self, now: Instant) {
        self.close_with_reason(now, &[]);
    }

    /// Administrative Close; Terminate-Requests carry `reason` (§5.5 Data).
    pub fn close_with_reason(&mut self, now: Instant, reason: &[u8]) {
        self.terminate_data = reason.to_vec();
        self.terminate = None;
        self.run(Event::Close, now, Input::default());
    }

    /// Enters Opened without negotiating, from Initial only; returns whether it did. The
    /// lower layer is taken as Up and the Open as given, and tlu ([`LayerEvent::Up`]) is
    /// reported as if the negotiation had just completed.
    ///
    /// This is no transition of the RFC 1661 table: it serves proxy LCP (RFC 2661 §4.4.5),
    /// where the LAC negotiated LCP with the peer and the LNS may take that result and
    /// continue "without renegotiation of LCP". The protocol's agreed values must be set
    /// first (for LCP, `Lcp::assume_negotiated`). No Configure-Request of ours is
    /// outstanding, so a stray Configure-Ack, -Nak or -Reject is out of sequence and
    /// discarded; a Configure-Request from the peer renegotiates as in any Opened state.
    pub fn force_opened(&mut self) -> bool {
        if self.state != State::Initial {
            return false;
        }
        self.state = State::Opened;
        self.deadline = None;
        self.restart_count = 0;
        self.failures = 0;
        self.request = None;
        self.request_answered = true;
        self.events.push_back(LayerEvent::Up);
        true
    }

    /// RXJ- from outside: LCP received a Protocol-Reject of this protocol (§5.7).
    pub fn protocol_rejected(&mut self, now: Instant) {
        self.run(Event::RxjMinus, now, Input::default());
    }

    /// The next packet to send (Code, Identifier, Length, Data), without the PPP protocol
    /// field.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// The next event for the surrounding layers.
    pub fn poll_event(&mut self) -> Option<LayerEvent> {
        self.events.pop_front()
    }

    /// When the Restart timer expires, if it runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Fires the Restart timer if its deadline is not after `now` (TO+ or TO-, §4.3).
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.deadline {
            Some(deadline) if deadline <= now => {
                self.deadline = None;
                let event = if self.restart_count > 0 {
                    Event::ToPlus
                } else {
                    Event::ToMinus
                };
                self.run(event, now, Input::default());
            }
            _ => {}
        }
    }

    /// Sends an Echo-Request (LCP, §5.8) with our Magic-Number and `data`; only in Opened
    /// and only when `P` knows the code. Returns its Identifier.
    pub fn send_echo_request(&mut self, data: &[u8]) -> Option<u8> {
        if self.state != State::Opened || !self.proto.knows_code(code::ECHO_REQUEST) {
            return None;
        }
        let id = self.new_id();
        let mut body = self.proto.magic_number().to_be_bytes().to_vec();
        body.extend_from_slice(data);
        self.transmit
            .push_back(emit_packet(code::ECHO_REQUEST, id, &body));
        Some(id)
    }

    /// Handles a received control packet (Code, Identifier, Length, Data). A malformed
    /// packet is dropped, returning why; an invalid or out-of-sequence reply is silently
    /// discarded (`Ok`).
    pub fn handle_packet(&mut self, packet: &[u8], now: Instant) -> Result<(), PacketError> {
        let (received, packet) = Received::parse(packet, &self.proto)?;
        let mut input = Input {
            packet,
            ..Input::default()
        };
        let event = match received {
            Received::ConfigureRequest { id, options } => {
                input.id = id;
                let (event, reply) = self.judge(id, options);
                input.reply = reply;
                event
            }
            Received::ConfigureAck { id, options } => {
                if !self.reply_in_sequence(id) {
                    return Ok(());
                }
                // §5.2: the options must exactly match those of the last request.
                let matches = self
                    .request
                    .as_ref()
                    .is_some_and(|(_, sent)| sent.as_slice() == options.as_bytes());
                if !matches {
                    tracing::debug!(
                        proto = P::PROTOCOL,
                        "Configure-Ack options differ, discarded"
                    );
                    return Ok(());
                }
                if self.state.negotiating() {
                    self.proto.our_request_acked(options);
                }
                self.request_answered = true;
                input.id = id;
                Event::Rca
            }
            Received::ConfigureNak { id, options } => {
                if !self.reply_in_sequence(id) {
                    return Ok(());
                }
                if self.state.negotiating() && !self.proto.our_request_naked(options) {
                    return Ok(());
                }
                self.request_answered = true;
                input.id = id;
                Event::Rcn
            }
            Received::ConfigureReject { id, options } => {
                if !self.reply_in_sequence(id) {
                    return Ok(());
                }
                // §5.4: a proper subset of the last request, unmodified and in order.
                let subset = self
                    .request
                    .as_ref()
                    .is_some_and(|(_, sent)| is_ordered_subset(options, sent));
                if !subset {
                    tracing::debug!(proto = P::PROTOCOL, "invalid Configure-Reject, discarded");
                    return Ok(());
                }
                if self.state.negotiating() && !self.proto.our_request_rejected(options) {
                    return Ok(());
                }
                self.request_answered = true;
                input.id = id;
                Event::Rcn
            }
            Received::TerminateRequest { id, .. } => {
                input.id = id;
                Event::Rtr
            }
            Received::TerminateAck { id, .. } => {
                input.id = id;
                Event::Rta
            }
            Received::CodeReject {
                id,
                code,
                catastrophic,
            } => {
                input.id = id;
                if catastrophic {
                    Event::RxjMinus
                } else {
                    self.events.push_back(LayerEvent::CodeRejected { code });
                    Event::RxjPlus
                }
            }
            Received::ProtocolReject { id, protocol } => {
                input.id = id;
                if protocol == P::PROTOCOL {
                    Event::RxjMinus
                } else {
                    self.events
                        .push_back(LayerEvent::ProtocolRejected { protocol });
                    Event::RxjPlus
                }
            }
            Received::EchoRequest { id, data, .. } => {
                input.id = id;
                input.echo = Some(data);
                Event::Rxr
            }
            Received::EchoReply { id, magic, .. } => {
                input.id = id;
                if self.state == State::Opened {
                    self.events.push_back(LayerEvent::EchoReply { id, magic });
                }
                Event::Rxr
            }
            Received::DiscardRequest { id } => {
                input.id = id;
                Event::Rxr
            }
            Received::Unknown { id, .. } => {
                input.id = id;
                Event::Ruc
            }
        };
        self.run(event, now, input);
        Ok(())
    }

    /// §5.2-§5.4: a reply is valid only for the last Configure-Request sent, and only once.
    fn reply_in_sequence(&self, id: u8) -> bool {
        let ok = !self.request_answered
            && self
                .request
                .as_ref()
                .is_some_and(|(sent_id, _)| *sent_id == id);
        if !ok {
            tracing::debug!(proto = P::PROTOCOL, id, "reply out of sequence, discarded");
        }
        ok
    }

    /// Classifies a Configure-Request as RCR+ or RCR- and prepares the reply.
    fn judge(&mut self, id: u8, options: Options<'_>) -> (Event, Option<Reply>) {
        // Closed, Closing and Stopping answer both alike without looking (§4.1); Initial and
        // Starting never see a request.
        if !matches!(
            self.state,
            State::Stopped | State::ReqSent | State::AckRcvd | State::AckSent | State::Opened
        ) {
            return (Event::RcrMinus, None);
        }
        // A request in Stopped or Opened starts a new negotiation: the failure count starts
        // afresh (it is reset in `run` as well, after this judgement).
        let failures = if self.state.negotiating() {
            self.failures
        } else {
            0
        };
        let mut verdict = self.proto.judge_peer_request(options);
        if let Verdict::Nak(naked) = &verdict {
            if failures >= self.config.max_failure {
                // §4.6 Max-Failure: Nak of the peer's options becomes a Reject; our own
                // desired options are no longer appended.
                verdict = nak_to_reject(options, naked);
            }
        }
        let request = options.as_bytes().to_vec();
        let (event, code, reply) = match verdict {
            Verdict::Ack => (Event::RcrPlus, code::CONFIGURE_ACK, request.clone()),
            Verdict::Nak(naked) => (Event::RcrMinus, code::CONFIGURE_NAK, naked),
            Verdict::Reject(rejected) => (Event::RcrMinus, code::CONFIGURE_REJECT, rejected),
        };
        (
            event,
            Some(Reply {
                code,
                id,
                options: reply,
                request,
            }),
        )
    }

    fn new_id(&mut self) -> u8 {
        self.next_id = self.next_id.wrapping_add(1);
        self.next_id
    }

    /// Looks the event up in the table and carries out its actions.
    fn run(&mut self, event: Event, now: Instant, input: Input<'_>) -> Option<Note> {
        let old = self.state;
        let Some(t) = transition(old, event) else {
            self.illegal += 1;
            tracing::warn!(
                proto = P::PROTOCOL,
                state = old.name(),
                event = event.name(),
                "illegal event ignored"
            );
            return None;
        };
        if t.note == Some(Note::Crossed) {
            tracing::warn!(
                proto = P::PROTOCOL,
                state = old.name(),
                event = event.name(),
                "crossed connection"
            );
        }
        if t.next.negotiating() && !old.negotiating() {
            self.failures = 0;
        }
        let mut input = input;
        for &action in t.actions.as_slice() {
            self.act(action, &t, event, old, now, &mut input);
        }
        self.state = t.next;
        if !t.next.restart_timer_runs() {
            self.deadline = None;
        }
        if old != t.next {
            tracing::debug!(
                proto = P::PROTOCOL,
                from = old.name(),
                to = t.next.name(),
                event = event.name(),
                "transition"
            );
        }
        t.note
    }

    fn act(
        &mut self,
        action: Action,
        t: &Transition,
        event: Event,
        old: State,
        now: Instant,
        input: &mut Input<'_>,
    ) {
        match action {
            Action::Tlu => self.events.push_back(LayerEvent::Up),
            Action::Tld => self.events.push_back(LayerEvent::Down),
            Action::Tls => self.events.push_back(LayerEvent::Started),
            Action::Tlf => {
                if t.note == Some(Note::Passive) && self.config.passive {
                    return;
                }
                self.events.push_back(LayerEvent::Finished);
            }
            Action::Irc => {
                // §4.4 irc: Max-Terminate when terminating, Max-Configure otherwise.
                self.restart_count = if t.actions.contains(Action::Str) {
                    self.config.max_terminate
                } else {
                    self.config.max_configure
                };
            }
            Action::Zrc => {
                self.restart_count = 0;
                self.deadline = Some(now + self.config.restart_timer);
            }
            Action::Scr => {
                let retransmit = event == Event::ToPlus && !self.request_answered;
                let (id, options) = match (&self.request, retransmit) {
                    // §5.1: a retransmission keeps the Identifier.
                    (Some((id, options)), true) => (*id, options.clone()),
                    _ => {
                        if !old.negotiating() {
                            self.proto.reset_request();
                        }
                        let mut options = Vec::new();
                        self.proto.build_request(&mut options);
                        (self.new_id(), options)
                    }
                };
                self.transmit
                    .push_back(emit_packet(code::CONFIGURE_REQUEST, id, &options));
                self.request = Some((id, options));
                self.request_answered = false;
                self.restart_count = self.restart_count.saturating_sub(1);
                self.deadline = Some(now + self.config.restart_timer);
            }
            Action::Sca | Action::Scn => {
                if let Some(reply) = input.reply.take() {
                    if reply.code == code::CONFIGURE_ACK {
                        self.failures = 0;
                        if let Ok(options) = Options::new_checked(&reply.request) {
                            self.proto.peer_request_acked(options);
                        }
                    } else if reply.code == code::CONFIGURE_NAK {
                        self.failures = self.failures.saturating_add(1);
                    }
                    self.transmit
                        .push_back(emit_packet(reply.code, reply.id, &reply.options));
                }
            }
            Action::Str => {
                let id = match (self.terminate, event) {
                    (Some(id), Event::ToPlus) => id,
                    _ => self.new_id(),
                };
                self.terminate = Some(id);
                self.transmit.push_back(emit_packet(
                    code::TERMINATE_REQUEST,
                    id,
                    &self.terminate_data,
                ));
                self.restart_count = self.restart_count.saturating_sub(1);
                self.deadline = Some(now + self.config.restart_timer);
            }
            Action::Sta => {
                self.transmit
                    .push_back(emit_packet(code::TERMINATE_ACK, input.id, &[]));
            }
            Action::Scj => {
                // §5.6: a new Identifier each time; the rejected packet cut to the peer's MRU.
                let id = self.new_id();
                let room = usize::from(self.config.peer_mru).saturating_sub(field::HEADER_LEN);
                let rejected = input.packet.get(..room).unwrap_or(input.packet);
                self.transmit
                    .push_back(emit_packet(code::CODE_REJECT, id, rejected));
            }
            Action::Ser => {
                // §5.8: Echo-Reply copies the Identifier and Data, with our Magic-Number.
                if let Some(data) = input.echo {
                    let mut body = self.proto.magic_number().to_be_bytes().to_vec();
                    body.extend_from_slice(data);
                    self.transmit
                        .push_back(emit_packet(code::ECHO_REPLY, input.id, &body));
                }
            }
        }
    }
}

/// §4.6 Max-Failure: the options of `request` whose Type the Nak names, copied unchanged and
/// in order, as a Reject; if none of the request's options was Nak'd (only options we wanted
/// to append), the request is acceptable and becomes an Ack.
fn nak_to_reject(request: Options<'_>, naked: &[u8]) -> Verdict {
    let naked_kinds: Vec<u8> = Options::new_checked(naked)
        .map(|n| n.iter().map(|o| o.kind).collect())
        .unwrap_or_default();
    let mut rejected = Vec::new();
    for option in request.iter() {
        if naked_kinds.contains(&option.kind) {
            rejected.extend_from_slice(option.bytes);
        }
    }
    if rejected.is_empty() {
        Verdict::Ack
    } else {
        Verdict::Reject(rejected)
    }
}

/// Whether every option of `rejected` appears byte for byte in `sent`, in the same order
/// (RFC 1661 §5.4).
fn is_ordered_subset(rejected: Options<'_>, sent: &[u8]) -> bool {
    let Ok(sent) = Options::new_checked(sent) else {
        return false;
    };
    let mut sent = sent.iter();
    rejected
        .iter()
        .all(|r| sent.by_ref().any(|s| s.bytes == r.bytes))
}

#[cfg(test)]
mod tests;

//! The control connection state machine of RFC 2661 §7.2.1, as a pure transition
//! function, the tunnel authentication of §4.4.3 / §5.1.1, and the per-tunnel record the
//! [`Endpoint`](super::endpoint::Endpoint) keeps.
//!
//! Contract: [`step`] answers every (state, event) pair; the match has no catch-all
//! across states. The endpoint classifies a received message as acceptable or not (§6
//! mandatory AVPs, Protocol Version 1.0, non-zero Assigned Tunnel ID, Receive Window Size
//! non-zero, Challenge Response correct) before calling it, and executes the [`Action`].
//!
//! A state the RFC does not name is added: `Closing`, the §5.7 wait. After a StopCCN was
//! sent or received the tunnel keeps its transport for `stopccn_wait`, acknowledging the
//! peer's retransmissions and retransmitting our own StopCCN, and is then freed (§7.1:
//! "the reliable delivery mechanism must be allowed to run before destroying the
//! tunnel").

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::Instant;

use md5::{Digest, Md5};

use super::endpoint::{SessionId, TunnelId, TunnelParams};
use super::message::MessageType;
use super::session::Session;
use super::transport::Transport;

/// Control connection states (RFC 2661 §7.2.1, plus the §5.7 wait).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TunnelState {
    /// No control connection (the record exists only while an input is handled).
    Idle,
    /// SCCRQ sent, SCCRP awaited (initiator).
    WaitCtlReply,
    /// SCCRP sent, SCCCN awaited (recipient).
    WaitCtlConn,
    /// Established: sessions may be set up.
    Established,
    /// StopCCN sent or received: transport kept for the §5.7 wait, then freed.
    Closing,
}

/// Outcome of the Tie Breaker comparison when an SCCRQ arrives from the peer we sent an
/// SCCRQ to (RFC 2661 §4.4.3 Tie Breaker AVP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tie {
    /// Our tunnel survives: the received SCCRQ is discarded silently.
    Win,
    /// Our tunnel is discarded silently and the received SCCRQ is handled in idle.
    Lose,
    /// Equal values: both sides discard their tunnels.
    Both,
    /// No tie breaker on either side: two tunnels are opened.
    None,
}

/// Compare tie breakers (RFC 2661 §4.4.3): the lower value wins; a side that sent one
/// wins over one that did not; equal values lose both.
pub fn tie_break(ours: Option<u64>, theirs: Option<u64>) -> Tie {
    match (ours, theirs) {
        (None, None) => Tie::None,
        (Some(_), None) => Tie::Win,
        (None, Some(_)) => Tie::Lose,
        (Some(a), Some(b)) if a < b => Tie::Win,
        (Some(a), Some(b)) if a > b => Tie::Lose,
        (Some(_), Some(_)) => Tie::Both,
    }
}

/// Inputs of the §7.2.1 table, named as the RFC's event column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TunnelEvent {
    /// Local open request (LAC role, emulator).
    LocalOpen,
    /// Receive SCCRQ, acceptable or not.
    Sccrq { acceptable: bool },
    /// Receive SCCRQ while our own SCCRQ to that peer is outstanding.
    SccrqCollision(Tie),
    /// Receive SCCRP, acceptable or not.
    Sccrp { acceptable: bool },
    /// Receive SCCCN, acceptable or not.
    Scccn { acceptable: bool },
    /// Receive StopCCN.
    StopCcn,
    /// Receive HELLO (or any message that is valid in every state).
    Hello,
    /// Receive a call-management message (handled by the session tables once
    /// established, out of sequence before).
    SessionMessage,
    /// Admin tunnel close.
    AdminClose,
    /// Retransmissions exhausted (§5.8) or HELLO unanswered (§5.5).
    Dead,
    /// Setup not complete within `setup_timeout`.
    SetupTimeout,
    /// The §5.7 wait is over.
    WaitOver,
}

/// What the endpoint does for a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Nothing (the transport acknowledges what it received).
    None,
    /// Send SCCRQ.
    SendSccrq,
    /// Send SCCRP.
    SendSccrp,
    /// Send SCCCN and open the waiting sessions ("tunnel-open").
    SendScccnTunnelOpen,
    /// Open the waiting sessions, nothing to send (§7.2.1 wait-ctl-conn, SCCCN).
    TunnelOpen,
    /// Send StopCCN, report the tunnel and its sessions down, wait (§5.7).
    SendStopCcn,
    /// A StopCCN arrived: report down, let the transport ack it, wait (§5.7).
    PeerStopped,
    /// Clean up at once without sending (no connection to tell).
    CleanUp,
    /// Lost the tie: clean up silently, then handle the SCCRQ as in idle.
    CleanUpRequeue,
    /// Free the state (the §5.7 wait is over).
    Free,
}

/// One transition of the §7.2.1 table. `None` as next state: no tunnel remains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Step {
    pub next: TunnelState,
    pub action: Action,
}

const fn to(next: TunnelState, action: Action) -> Step {
    Step { next, action }
}

/// RFC 2661 §7.2.1 Control Connection Establishment, with the §5.7 wait and the §5.8 /
/// setup timers. "Send StopCCN, clean up" rows go to `Closing` (the StopCCN must be
/// delivered, §7.1); rows that clean up without sending go to `Idle`.
pub fn step(state: TunnelState, event: TunnelEvent) -> Step {
    use Action as A;
    use TunnelEvent as E;
    use TunnelState as S;
    match (state, event) {
        (S::Idle, E::LocalOpen) => to(S::WaitCtlReply, A::SendSccrq),
        (S::Idle, E::Sccrq { acceptable: true }) => to(S::WaitCtlConn, A::SendSccrp),
        (S::Idle, E::Sccrq { acceptable: false }) => to(S::Closing, A::SendStopCcn),
        (S::Idle, E::SccrqCollision(_)) => to(S::WaitCtlConn, A::SendSccrp),
        (S::Idle, E::Sccrp { .. }) => to(S::Closing, A::SendStopCcn),
        (S::Idle, E::Scccn { .. } | E::StopCcn | E::Hello | E::SessionMessage) => {
            to(S::Idle, A::CleanUp)
        }
        (S::Idle, E::AdminClose | E::Dead | E::SetupTimeout | E::WaitOver) => {
            to(S::Idle, A::CleanUp)
        }

        (S::WaitCtlReply, E::Sccrp { acceptable: true }) => {
            to(S::Established, A::SendScccnTunnelOpen)
        }
        (S::WaitCtlReply, E::Sccrp { acceptable: false }) => to(S::Closing, A::SendStopCcn),
        (S::WaitCtlReply, E::SccrqCollision(Tie::Win | Tie::None)) => to(S::WaitCtlReply, A::None),
        (S::WaitCtlReply, E::SccrqCollision(Tie::Lose)) => to(S::Idle, A::CleanUpRequeue),
        (S::WaitCtlReply, E::SccrqCollision(Tie::Both)) => to(S::Idle, A::CleanUp),
        (S::WaitCtlReply, E::Sccrq { .. } | E::Scccn { .. }) => to(S::Closing, A::SendStopCcn),
        (S::WaitCtlReply, E::SessionMessage) => to(S::Closing, A::SendStopCcn),

        (S::WaitCtlConn, E::Scccn { acceptable: true }) => to(S::Established, A::TunnelOpen),
        (S::WaitCtlConn, E::Scccn { acceptable: false }) => to(S::Closing, A::SendStopCcn),
        (
            S::WaitCtlConn,
            E::Sccrp { .. } | E::Sccrq { .. } | E::SccrqCollision(_) | E::SessionMessage,
        ) => to(S::Closing, A::SendStopCcn),

        (S::Established, E::Sccrq { .. } | E::SccrqCollision(_)) => to(S::Closing, A::SendStopCcn),
        (S::Established, E::Sccrp { .. } | E::Scccn { .. }) => to(S::Closing, A::SendStopCcn),
        (S::Established, E::SessionMessage | E::Hello) => to(S::Established, A::None),
        (S::Established, E::LocalOpen) => to(S::Established, A::TunnelOpen),

        (S::WaitCtlReply | S::WaitCtlConn, E::Hello) => to(state, A::None),
        (S::WaitCtlReply | S::WaitCtlConn, E::LocalOpen) => to(state, A::None),
        (S::WaitCtlReply | S::WaitCtlConn | S::Established, E::StopCcn) => {
            to(S::Closing, A::PeerStopped)
        }
        (S::WaitCtlReply | S::WaitCtlConn | S::Established, E::AdminClose) => {
            to(S::Closing, A::SendStopCcn)
        }
        (S::WaitCtlReply | S::WaitCtlConn | S::Established, E::Dead) => to(S::Idle, A::CleanUp),
        (S::WaitCtlReply | S::WaitCtlConn, E::SetupTimeout) => to(S::Idle, A::CleanUp),
        (S::Established, E::SetupTimeout) => to(S::Established, A::None),
        (S::WaitCtlReply | S::WaitCtlConn | S::Established, E::WaitOver) => to(state, A::None),

        // §5.7: while waiting, everything is acknowledged by the transport and ignored.
        (
            S::Closing,
            E::LocalOpen
            | E::Sccrq { .. }
            | E::SccrqCollision(_)
            | E::Sccrp { .. }
            | E::Scccn { .. }
            | E::StopCcn
            | E::Hello
            | E::SessionMessage
            | E::AdminClose
            | E::SetupTimeout,
        ) => to(S::Closing, A::None),
        (S::Closing, E::Dead | E::WaitOver) => to(S::Idle, A::Free),
    }
}

/// The Challenge Response (RFC 2661 §4.4.3): MD5 over the Message Type code of the
/// message carrying the response (2 for SCCRP, 3 for SCCCN) as one octet, the shared
/// secret and the challenge.
pub fn challenge_response(message: MessageType, secret: &[u8], challenge: &[u8]) -> [u8; 16] {
    let mut md5 = Md5::new();
    md5.update([message.code() as u8]);
    md5.update(secret);
    md5.update(challenge);
    md5.finalize().into()
}

/// Which side opened the control connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Originator {
    /// We sent the SCCRQ.
    Local,
    /// The peer sent the SCCRQ.
    Peer,
}

/// The record of one tunnel.
#[derive(Debug)]
pub struct Tunnel {
    pub id: TunnelId,
    pub peer: SocketAddr,
    /// The peer's tunnel id (0 until its SCCRP when we originate).
    pub peer_id: u16,
    pub state: TunnelState,
    pub originator: Originator,
    pub params: TunnelParams,
    pub transport: Transport,
    /// Boxed: a [`Session`] (its call information inline) is about 1 KiB; inline, the
    /// table would cost that per bucket (up to twice the sessions) and copy every session
    /// each time it grows (issue #6: 62,500 sessions a tunnel).
    pub sessions: HashMap<SessionId, Box<Session>>,
    /// Setup deadlines of sessions not yet established.
    pub session_deadlines: BTreeSet<(Instant, SessionId)>,
    pub peer_host_name: Vec<u8>,
    /// The Challenge we sent, whose response we expect.
    pub our_challenge: Option<Vec<u8>>,
    /// The Tie Breaker we sent in our SCCRQ.
    pub our_tie_breaker: Option<u64>,
    /// SCCRQ dedupe key registered in the endpoint (peer, raw Assigned Tunnel ID).
    pub sccrq_key: Option<(SocketAddr, Vec<u8>)>,
    pub created: Instant,
    pub setup_deadline: Instant,
    /// Last control or data message received or control message sent (§5.5).
    pub last_activity: Instant,
    /// End of the §5.7 wait.
    pub closing_until: Option<Instant>,
    /// A HELLO is outstanding (so a dead transport is a HELLO timeout).
    pub hello_outstanding: bool,
    /// Admitted by the gatekeeper: `tunnel_closed` is owed.
    pub admitted: bool,
    /// Whether TunnelUp was reported.
    pub up_reported: bool,
    /// Timer bookkeeping: the generation of the live heap entry and its deadline.
    pub timer_generation: u64,
    pub timer_deadline: Option<Instant>,
    /// Queued in the endpoint's transmit list.
    pub in_tx_list: bool,
    /// Next candidate for a session id.
    pub next_session: u16,
    /// Next Call Serial Number we use.
    pub next_call_serial: u32,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use Action as A;
    use TunnelEvent as E;
    use TunnelState as S;

    fn bucket_size<K, V>(_: fn(&Tunnel) -> &HashMap<K, V>) -> usize {
        std::mem::size_of::<(K, V)>()
    }

    #[test]
    fn the_session_table_keeps_sessions_out_of_its_buckets() {
        // Issue #6 scale: 62,500 sessions a tunnel, each of several hundred octets.
        assert!(std::mem::size_of::<Session>() > 256);
        assert!(bucket_size(|t| &t.sessions) <= 16);
    }

    const STATES: [S; 5] = [
        S::Idle,
        S::WaitCtlReply,
        S::WaitCtlConn,
        S::Established,
        S::Closing,
    ];

    fn events() -> Vec<E> {
        let mut events = vec![
            E::LocalOpen,
            E::StopCcn,
            E::Hello,
            E::SessionMessage,
            E::AdminClose,
            E::Dead,
            E::SetupTimeout,
            E::WaitOver,
        ];
        for acceptable in [true, false] {
            events.push(E::Sccrq { acceptable });
            events.push(E::Sccrp { acceptable });
            events.push(E::Scccn { acceptable });
        }
        for tie in [Tie::Win, Tie::Lose, Tie::Both, Tie::None] {
            events.push(E::SccrqCollision(tie));
        }
        events
    }

    /// RFC 2661 §7.2.1, row by row ("Send StopCCN, Clean up" goes to Closing for the
    /// §5.7 wait; "Clean up" without sending goes to Idle).
    #[test]
    fn rfc_2661_7_2_1_rows() {
        let rows: &[(S, E, S, A)] = &[
            (S::Idle, E::LocalOpen, S::WaitCtlReply, A::SendSccrq),
            (
                S::Idle,
                E::Sccrq { acceptable: true },
                S::WaitCtlConn,
                A::SendSccrp,
            ),
            (
                S::Idle,
                E::Sccrq { acceptable: false },
                S::Closing,
                A::SendStopCcn,
            ),
            (
                S::Idle,
                E::Sccrp { acceptable: true },
                S::Closing,
                A::SendStopCcn,
            ),
            (S::Idle, E::Scccn { acceptable: true }, S::Idle, A::CleanUp),
            (
                S::WaitCtlReply,
                E::Sccrp { acceptable: true },
                S::Established,
                A::SendScccnTunnelOpen,
            ),
            (
                S::WaitCtlReply,
                E::Sccrp { acceptable: false },
                S::Closing,
                A::SendStopCcn,
            ),
            (
                S::WaitCtlReply,
                E::SccrqCollision(Tie::Lose),
                S::Idle,
                A::CleanUpRequeue,
            ),
            (
                S::WaitCtlReply,
                E::SccrqCollision(Tie::Win),
                S::WaitCtlReply,
                A::None,
            ),
            (
                S::WaitCtlReply,
                E::SccrqCollision(Tie::Both),
                S::Idle,
                A::CleanUp,
            ),
            (
                S::WaitCtlReply,
                E::Scccn { acceptable: true },
                S::Closing,
                A::SendStopCcn,
            ),
            (
                S::WaitCtlConn,
                E::Scccn { acceptable: true },
                S::Established,
                A::TunnelOpen,
            ),
            (
                S::WaitCtlConn,
                E::Scccn { acceptable: false },
                S::Closing,
                A::SendStopCcn,
            ),
            (
                S::WaitCtlConn,
                E::Sccrp { acceptable: true },
                S::Closing,
                A::SendStopCcn,
            ),
            (
                S::WaitCtlConn,
                E::Sccrq { acceptable: true },
                S::Closing,
                A::SendStopCcn,
            ),
            (S::Established, E::LocalOpen, S::Established, A::TunnelOpen),
            (S::Established, E::AdminClose, S::Closing, A::SendStopCcn),
            (
                S::Established,
                E::Sccrq { acceptable: true },
                S::Closing,
                A::SendStopCcn,
            ),
            (
                S::Established,
                E::Sccrp { acceptable: true },
                S::Closing,
                A::SendStopCcn,
            ),
            (
                S::Established,
                E::Scccn { acceptable: true },
                S::Closing,
                A::SendStopCcn,
            ),
            (S::Idle, E::StopCcn, S::Idle, A::CleanUp),
            (S::WaitCtlReply, E::StopCcn, S::Closing, A::PeerStopped),
            (S::WaitCtlConn, E::StopCcn, S::Closing, A::PeerStopped),
            (S::Established, E::StopCcn, S::Closing, A::PeerStopped),
            // §5.8 and setup timers.
            (S::Established, E::Dead, S::Idle, A::CleanUp),
            (S::WaitCtlConn, E::SetupTimeout, S::Idle, A::CleanUp),
            (S::Established, E::Hello, S::Established, A::None),
            // §5.7 wait.
            (S::Closing, E::StopCcn, S::Closing, A::None),
            (S::Closing, E::WaitOver, S::Idle, A::Free),
            (S::Closing, E::Dead, S::Idle, A::Free),
        ];
        for &(state, event, next, action) in rows {
            assert_eq!(
                step(state, event),
                Step { next, action },
                "{state:?} + {event:?}"
            );
        }
    }

    #[test]
    fn every_cell_is_consistent() {
        for state in STATES {
            for event in events() {
                let Step { next, action } = step(state, event);
                // Leaving the connection always says how: StopCCN, clean up or free.
                if next == S::Idle && state != S::Idle {
                    assert!(
                        matches!(action, A::CleanUp | A::CleanUpRequeue | A::Free),
                        "{state:?} + {event:?}"
                    );
                }
                if matches!(action, A::SendStopCcn | A::PeerStopped) {
                    assert_eq!(next, S::Closing);
                }
                // Nothing leaves Closing except its end.
                if state == S::Closing {
                    assert!(matches!(next, S::Closing | S::Idle));
                    assert!(matches!(action, A::None | A::Free));
                }
                // Only a local open sends SCCRQ.
                assert_eq!(
                    action == A::SendSccrq,
                    (state, event) == (S::Idle, E::LocalOpen)
                );
            }
        }
    }

    #[test]
    fn tie_breaker_lower_wins() {
        assert_eq!(tie_break(Some(1), Some(2)), Tie::Win);
        assert_eq!(tie_break(Some(2), Some(1)), Tie::Lose);
        assert_eq!(tie_break(Some(7), Some(7)), Tie::Both);
        assert_eq!(tie_break(Some(7), None), Tie::Win);
        assert_eq!(tie_break(None, Some(7)), Tie::Lose);
        assert_eq!(tie_break(None, None), Tie::None);
    }

    #[test]
    fn challenge_response_is_md5_of_type_secret_challenge() {
        // Computed independently: md5(b"\x02"), md5(b"\x03secretabc").
        let r = challenge_response(MessageType::Sccrp, b"", b"");
        assert_eq!(hex::encode(r), "9e688c58a5487b8eaf69c9e1005ad0bf");
        let r = challenge_response(MessageType::Scccn, b"secret", b"abc");
        assert_eq!(hex::encode(r), "dc06c7e4577ee2fcd7f0706ec28c4250");
    }
}

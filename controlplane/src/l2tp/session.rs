//! The session (call) state machines of RFC 2661 §7.4.1, §7.4.2, §7.5.1 and §7.5.2, as
//! one pure transition function per (kind, state, event), and the per-session record the
//! [`Endpoint`](super::endpoint::Endpoint) keeps.
//!
//! Contract: [`step`] is total: every (kind, state, event) has an answer, and the match
//! has no catch-all across states, so a new state or event is a compile error until each
//! table handles it. The endpoint decides whether a received message is "acceptable"
//! (mandatory AVPs present, Assigned Session ID non-zero, no unknown M-bit AVP) before it
//! calls [`step`], and executes the returned [`Action`]. Messages for a session that does
//! not exist (the tables' "idle" rows) are answered by [`step_idle`].
//!
//! The LAC side of an outgoing call has no bearer to dial: the "bearer answer" event
//! follows the OCRP at once (§7.5.1), so OCRP and OCCN are sent together.

use std::time::Instant;

use super::attr::Accm;
use super::endpoint::{CallInfo, SessionId};
use super::message::MessageType;

/// Which of the four RFC 2661 call tables a session follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallKind {
    /// §7.4.1: we are the LAC and sent ICRQ.
    LacIncoming,
    /// §7.4.2: we are the LNS and received ICRQ.
    LnsIncoming,
    /// §7.5.1: we are the LAC and received OCRQ.
    LacOutgoing,
    /// §7.5.2: we are the LNS and sent OCRQ.
    LnsOutgoing,
}

/// Session states (the union of the four tables; "idle" is the absence of a session).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionState {
    /// §7.4.1, §7.5.2: waiting for the control connection to be established.
    WaitTunnel,
    /// §7.4.1, §7.5.2: ICRQ / OCRQ sent, waiting for ICRP / OCRP.
    WaitReply,
    /// §7.4.2: ICRP sent, waiting for ICCN. §7.5.2: OCRP received, waiting for OCCN.
    WaitConnect,
    /// Data may flow.
    Established,
}

/// Inputs of the session tables, named as the RFC's event column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionEvent {
    /// The control connection is established ("tunnel-open").
    TunnelOpen,
    /// A call-management message arrived; `acceptable` per the endpoint's checks.
    Receive {
        message: MessageType,
        acceptable: bool,
    },
    /// Local close request / bearer line drop.
    LocalClose,
}

/// What the endpoint must do for a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Nothing to send (a stray message tolerated, or a state change without output).
    None,
    /// Send ICRQ (§7.4.1 wait-tunnel, tunnel-open).
    SendIcrq,
    /// Send ICRP (§7.4.2 idle, ICRQ acceptable).
    SendIcrp,
    /// Send ICCN; the session is established (§7.4.1 wait-reply, ICRP acceptable).
    SendIccn,
    /// Send OCRQ (§7.5.2 wait-tunnel, tunnel-open).
    SendOcrq,
    /// Send OCRP and, the bearer answering at once, OCCN (§7.5.1).
    SendOcrpOccn,
    /// The session is established without sending (§7.4.2 ICCN, §7.5.2 OCCN).
    PrepareForData,
    /// Send CDN and clean up.
    SendCdn,
    /// Clean up without sending (a CDN received, or a close before any message was sent).
    CleanUp,
}

/// One transition: the next state (`None`: the session is cleaned up, back to idle) and
/// the action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Step {
    pub next: Option<SessionState>,
    pub action: Action,
}

const fn to(next: SessionState, action: Action) -> Step {
    Step {
        next: Some(next),
        action,
    }
}

const fn idle(action: Action) -> Step {
    Step { next: None, action }
}

/// The session tables (RFC 2661 §7.4.1, §7.4.2, §7.5.1, §7.5.2) for an existing session.
/// Messages of the wrong family (an OCRQ in an incoming call) are out of sequence and
/// clear the session with a CDN, as the tables do for their own family's strays.
pub fn step(kind: CallKind, state: SessionState, event: SessionEvent) -> Step {
    use Action as A;
    use MessageType as M;
    use SessionEvent as E;
    use SessionState as S;

    // RFC 2661 §7.4.1, §7.4.2, §7.5.1, §7.5.2: "Receive CDN -> Clean up" in every state.
    if let E::Receive {
        message: M::Cdn, ..
    } = event
    {
        return idle(A::CleanUp);
    }
    // §6.13, §6.14: WEN and SLI are informational in an established session; before it,
    // they are out of sequence.
    if let E::Receive {
        message: M::Wen | M::Sli,
        acceptable,
    } = event
    {
        return match (state, acceptable) {
            (S::Established, true) => to(S::Established, A::None),
            _ => idle(A::SendCdn),
        };
    }
    match kind {
        // RFC 2661 §7.4.1 LAC Incoming Call States.
        CallKind::LacIncoming => match (state, event) {
            (S::WaitTunnel, E::TunnelOpen) => to(S::WaitReply, A::SendIcrq),
            (S::WaitTunnel, E::LocalClose) => idle(A::CleanUp),
            (S::WaitTunnel, E::Receive { .. }) => idle(A::CleanUp),
            (
                S::WaitReply,
                E::Receive {
                    message: M::Icrp,
                    acceptable: true,
                },
            ) => to(S::Established, A::SendIccn),
            (S::WaitReply, E::Receive { .. }) => idle(A::SendCdn),
            (S::WaitReply, E::LocalClose) => idle(A::SendCdn),
            (S::WaitReply | S::Established, E::TunnelOpen) => to(state, A::None),
            (S::Established, E::Receive { .. }) => idle(A::SendCdn),
            (S::Established, E::LocalClose) => idle(A::SendCdn),
            (S::WaitConnect, _) => idle(A::SendCdn),
        },
        // RFC 2661 §7.4.2 LNS Incoming Call States (the session exists from the accepted
        // ICRQ on, so it starts in wait-connect).
        CallKind::LnsIncoming => match (state, event) {
            (
                S::WaitConnect,
                E::Receive {
                    message: M::Iccn,
                    acceptable: true,
                },
            ) => to(S::Established, A::PrepareForData),
            (S::WaitConnect, E::Receive { .. }) => idle(A::SendCdn),
            (S::WaitConnect | S::Established, E::LocalClose) => idle(A::SendCdn),
            (S::WaitConnect | S::Established, E::TunnelOpen) => to(state, A::None),
            (S::Established, E::Receive { .. }) => idle(A::SendCdn),
            (S::WaitTunnel | S::WaitReply, _) => idle(A::SendCdn),
        },
        // RFC 2661 §7.5.1 LAC Outgoing Call States: OCRP and OCCN leave together, so the
        // session is established from the accepted OCRQ on.
        CallKind::LacOutgoing => match (state, event) {
            (S::Established, E::Receive { .. }) => idle(A::SendCdn),
            (S::Established, E::LocalClose) => idle(A::SendCdn),
            (S::Established, E::TunnelOpen) => to(state, A::None),
            (S::WaitTunnel | S::WaitReply | S::WaitConnect, _) => idle(A::SendCdn),
        },
        // RFC 2661 §7.5.2 LNS Outgoing Call States.
        CallKind::LnsOutgoing => match (state, event) {
            (S::WaitTunnel, E::TunnelOpen) => to(S::WaitReply, A::SendOcrq),
            (S::WaitTunnel, E::LocalClose) => idle(A::CleanUp),
            (S::WaitTunnel, E::Receive { .. }) => idle(A::CleanUp),
            (
                S::WaitReply,
                E::Receive {
                    message: M::Ocrp,
                    acceptable: true,
                },
            ) => to(S::WaitConnect, A::None),
            (S::WaitReply, E::Receive { .. }) => idle(A::SendCdn),
            (
                S::WaitConnect,
                E::Receive {
                    message: M::Occn,
                    acceptable: true,
                },
            ) => to(S::Established, A::PrepareForData),
            (S::WaitConnect, E::Receive { .. }) => idle(A::SendCdn),
            (S::WaitReply | S::WaitConnect | S::Established, E::LocalClose) => idle(A::SendCdn),
            (S::WaitReply | S::WaitConnect | S::Established, E::TunnelOpen) => to(state, A::None),
            (S::Established, E::Receive { .. }) => idle(A::SendCdn),
        },
    }
}

/// What to do with a call-management message for a session we do not have (the "idle"
/// rows of the four tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdleAction {
    /// ICRQ (at the LNS) / OCRQ (at the LAC): admit, then create the session.
    Admit,
    /// Answer with a CDN (a reply to a request we never sent: ICRP, OCRP), no state.
    SendCdn,
    /// Ignore (ICCN, OCCN, CDN, WEN, SLI, or a request this role does not serve).
    CleanUp,
}

/// RFC 2661 §7.4.1, §7.4.2, §7.5.1, §7.5.2, the "idle" rows, for our role.
pub fn step_idle(lns: bool, message: MessageType) -> IdleAction {
    match message {
        MessageType::Icrq if lns => IdleAction::Admit,
        MessageType::Ocrq if !lns => IdleAction::Admit,
        // §7.4.2 "idle, Receive ICRP -> Send CDN"; §7.5.1 "idle, Receive OCRP -> Send CDN".
        MessageType::Icrp | MessageType::Ocrp => IdleAction::SendCdn,
        // An ICRQ at a LAC or an OCRQ at an LNS is a call this role does not take: it is
        // refused with a CDN as "not acceptable".
        MessageType::Icrq | MessageType::Ocrq => IdleAction::SendCdn,
        MessageType::Iccn
        | MessageType::Occn
        | MessageType::Cdn
        | MessageType::Wen
        | MessageType::Sli
        | MessageType::Sccrq
        | MessageType::Sccrp
        | MessageType::Scccn
        | MessageType::StopCcn
        | MessageType::Hello => IdleAction::CleanUp,
    }
}

/// Parameters of a call we originate (`Endpoint::open_session`): an incoming call at the
/// LAC (ICRQ, ICCN) or an outgoing call at the LNS (OCRQ).
#[derive(Debug, Clone, Default)]
pub struct OutgoingCall {
    /// Call Serial Number (ICRQ, OCRQ); 0 lets the endpoint number calls itself.
    pub call_serial: u32,
    /// Calling Number (ICRQ).
    pub calling_number: Option<Vec<u8>>,
    /// Called Number (ICRQ; mandatory in OCRQ, empty when absent).
    pub called_number: Option<Vec<u8>>,
    /// Sub-Address (ICRQ, OCRQ).
    pub sub_address: Option<Vec<u8>>,
    /// (Tx) Connect Speed in ICCN (LAC); Minimum/Maximum BPS of the OCRQ (LNS). Default
    /// 10 Mbit/s when 0.
    pub tx_connect_speed: u32,
    /// Framing Type of ICCN / OCRQ; 0 means synchronous.
    pub framing_type: u32,
    /// Ask the peer to send sequence numbers on the data channel (ICCN, §5.4).
    pub sequencing_required: bool,
    /// Proxy LCP and proxy authentication AVPs for the ICCN (§4.4.5), and any vendor
    /// AVPs: appended as given.
    pub extra_avps: Vec<super::attr::Avp>,
}

/// One session of a tunnel.
#[derive(Debug, Clone)]
pub struct Session {
    /// Our session id.
    pub id: SessionId,
    /// The peer's session id (0 until it told us).
    pub peer_id: SessionId,
    pub kind: CallKind,
    pub state: SessionState,
    /// Deadline of setup (until established).
    pub setup_deadline: Option<Instant>,
    /// Whether the gatekeeper admitted it (and must hear `session_closed`).
    pub admitted: bool,
    /// Call information gathered so far.
    pub info: CallInfo,
    /// The call we originate, kept until the messages that carry it are sent.
    pub call: Option<OutgoingCall>,
    /// ACCM from the last SLI (§6.14).
    pub accm: Option<Accm>,
    /// The peer asked for sequence numbers on our data messages (§5.4).
    pub send_sequence: bool,
    /// Ns of our next data message when sequencing (`encapsulate` takes `&self`).
    pub data_ns: std::cell::Cell<u16>,
    /// WEN messages received (§6.13).
    pub wen_count: u64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use Action as A;
    use CallKind as K;
    use MessageType as M;
    use SessionState as S;

    fn rx(message: M, acceptable: bool) -> SessionEvent {
        SessionEvent::Receive {
            message,
            acceptable,
        }
    }

    const OPEN: SessionEvent = SessionEvent::TunnelOpen;
    const CLOSE: SessionEvent = SessionEvent::LocalClose;

    /// RFC 2661 §7.4.1, §7.4.2, §7.5.1, §7.5.2, row by row (`None`: idle).
    #[test]
    fn rfc_2661_call_tables() {
        let rows: &[(K, S, SessionEvent, Option<S>, A)] = &[
            // §7.4.1 LAC incoming.
            (K::LacIncoming, S::WaitTunnel, CLOSE, None, A::CleanUp),
            (
                K::LacIncoming,
                S::WaitTunnel,
                OPEN,
                Some(S::WaitReply),
                A::SendIcrq,
            ),
            (
                K::LacIncoming,
                S::WaitReply,
                rx(M::Icrp, true),
                Some(S::Established),
                A::SendIccn,
            ),
            (
                K::LacIncoming,
                S::WaitReply,
                rx(M::Icrp, false),
                None,
                A::SendCdn,
            ),
            (
                K::LacIncoming,
                S::WaitReply,
                rx(M::Icrq, true),
                None,
                A::SendCdn,
            ),
            (
                K::LacIncoming,
                S::WaitReply,
                rx(M::Cdn, true),
                None,
                A::CleanUp,
            ),
            (K::LacIncoming, S::WaitReply, CLOSE, None, A::SendCdn),
            (
                K::LacIncoming,
                S::Established,
                rx(M::Cdn, true),
                None,
                A::CleanUp,
            ),
            (
                K::LacIncoming,
                S::Established,
                rx(M::Iccn, true),
                None,
                A::SendCdn,
            ),
            (K::LacIncoming, S::Established, CLOSE, None, A::SendCdn),
            // §7.4.2 LNS incoming.
            (
                K::LnsIncoming,
                S::WaitConnect,
                rx(M::Iccn, true),
                Some(S::Established),
                A::PrepareForData,
            ),
            (
                K::LnsIncoming,
                S::WaitConnect,
                rx(M::Iccn, false),
                None,
                A::SendCdn,
            ),
            (
                K::LnsIncoming,
                S::WaitConnect,
                rx(M::Icrq, true),
                None,
                A::SendCdn,
            ),
            (
                K::LnsIncoming,
                S::WaitConnect,
                rx(M::Cdn, true),
                None,
                A::CleanUp,
            ),
            (K::LnsIncoming, S::WaitConnect, CLOSE, None, A::SendCdn),
            (K::LnsIncoming, S::Established, CLOSE, None, A::SendCdn),
            (
                K::LnsIncoming,
                S::Established,
                rx(M::Icrp, true),
                None,
                A::SendCdn,
            ),
            (
                K::LnsIncoming,
                S::Established,
                rx(M::Cdn, true),
                None,
                A::CleanUp,
            ),
            // §7.5.1 LAC outgoing (established from the accepted OCRQ on).
            (
                K::LacOutgoing,
                S::Established,
                rx(M::Ocrq, true),
                None,
                A::SendCdn,
            ),
            (
                K::LacOutgoing,
                S::Established,
                rx(M::Cdn, true),
                None,
                A::CleanUp,
            ),
            (K::LacOutgoing, S::Established, CLOSE, None, A::SendCdn),
            // §7.5.2 LNS outgoing.
            (
                K::LnsOutgoing,
                S::WaitTunnel,
                OPEN,
                Some(S::WaitReply),
                A::SendOcrq,
            ),
            (K::LnsOutgoing, S::WaitTunnel, CLOSE, None, A::CleanUp),
            (
                K::LnsOutgoing,
                S::WaitReply,
                rx(M::Ocrp, true),
                Some(S::WaitConnect),
                A::None,
            ),
            (
                K::LnsOutgoing,
                S::WaitReply,
                rx(M::Ocrp, false),
                None,
                A::SendCdn,
            ),
            (
                K::LnsOutgoing,
                S::WaitReply,
                rx(M::Occn, true),
                None,
                A::SendCdn,
            ),
            (
                K::LnsOutgoing,
                S::WaitConnect,
                rx(M::Occn, true),
                Some(S::Established),
                A::PrepareForData,
            ),
            (
                K::LnsOutgoing,
                S::WaitConnect,
                rx(M::Ocrp, true),
                None,
                A::SendCdn,
            ),
            (
                K::LnsOutgoing,
                S::Established,
                rx(M::Occn, true),
                None,
                A::SendCdn,
            ),
            (
                K::LnsOutgoing,
                S::WaitConnect,
                rx(M::Cdn, true),
                None,
                A::CleanUp,
            ),
            (K::LnsOutgoing, S::WaitReply, CLOSE, None, A::SendCdn),
            // §6.13, §6.14: WEN and SLI in established sessions.
            (
                K::LnsIncoming,
                S::Established,
                rx(M::Wen, true),
                Some(S::Established),
                A::None,
            ),
            (
                K::LacIncoming,
                S::Established,
                rx(M::Sli, true),
                Some(S::Established),
                A::None,
            ),
            (
                K::LnsIncoming,
                S::WaitConnect,
                rx(M::Sli, true),
                None,
                A::SendCdn,
            ),
        ];
        for &(kind, state, event, next, action) in rows {
            assert_eq!(
                step(kind, state, event),
                Step { next, action },
                "{kind:?} {state:?} + {event:?}"
            );
        }
    }

    #[test]
    fn idle_rows() {
        assert_eq!(step_idle(true, M::Icrq), IdleAction::Admit);
        assert_eq!(step_idle(false, M::Ocrq), IdleAction::Admit);
        assert_eq!(step_idle(true, M::Icrp), IdleAction::SendCdn);
        assert_eq!(step_idle(false, M::Ocrp), IdleAction::SendCdn);
        assert_eq!(step_idle(true, M::Ocrq), IdleAction::SendCdn);
        for m in [M::Iccn, M::Occn, M::Cdn] {
            assert_eq!(step_idle(true, m), IdleAction::CleanUp);
            assert_eq!(step_idle(false, m), IdleAction::CleanUp);
        }
    }

    #[test]
    fn every_cell_is_consistent() {
        let kinds = [
            K::LacIncoming,
            K::LnsIncoming,
            K::LacOutgoing,
            K::LnsOutgoing,
        ];
        let states = [S::WaitTunnel, S::WaitReply, S::WaitConnect, S::Established];
        let mut events = vec![OPEN, CLOSE];
        for m in MessageType::ALL {
            events.push(rx(m, true));
            events.push(rx(m, false));
        }
        for kind in kinds {
            for state in states {
                for &event in &events {
                    let Step { next, action } = step(kind, state, event);
                    // A session that is cleaned up either says so or sends a CDN.
                    if next.is_none() {
                        assert!(matches!(action, A::CleanUp | A::SendCdn));
                    }
                    // A CDN from the peer is never answered with a CDN.
                    if event == rx(M::Cdn, true) {
                        assert_eq!(action, A::CleanUp);
                    }
                    // Only the established state is reached by PrepareForData / SendIccn.
                    if matches!(action, A::PrepareForData | A::SendIccn) {
                        assert_eq!(next, Some(S::Established));
                    }
                }
            }
        }
    }
}

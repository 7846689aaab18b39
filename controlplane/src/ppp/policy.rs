//! What the option policies of LCP, IPCP and IPv6CP share: the reasons a negotiation cannot
//! succeed, and closing an automaton when its policy says so.
//!
//! The [`Protocol`] trait has no way to abort a negotiation (RFC 1661 leaves it to the
//! implementation: "the implementation MAY close the link"). Each policy therefore records a
//! [`NegotiationFailure`], readable through [`Failing::failure`], and the owner of the
//! automaton calls [`close_on_failure`] after every input. [`crate::ppp::lcp_link::LcpLink`]
//! does this for LCP; the session core does it for the NCPs.

use std::time::Instant;

use super::fsm::{Fsm, Protocol, State};

/// Why a negotiation was given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NegotiationFailure {
    /// LCP: the peer Nak'd every authentication protocol our policy allows (RFC 1661 §6.2).
    NoCommonAuthProtocol,
    /// LCP: the peer rejected the Authentication-Protocol option, which our policy requires
    /// (RFC 1661 §6.2, §5.4).
    AuthRejected,
    /// LCP: the Magic-Number exchange repeated often enough to call the link looped back
    /// (RFC 1661 §6.4).
    Loopback,
    /// IPCP client: the server rejected the IP-Address option, so we have no address
    /// (RFC 1332 §3.3).
    AddressRejected,
}

impl NegotiationFailure {
    /// Text for the Terminate-Request's Data (RFC 1661 §5.5) and for logs.
    pub fn reason(self) -> &'static str {
        match self {
            NegotiationFailure::NoCommonAuthProtocol => "No acceptable authentication protocol",
            NegotiationFailure::AuthRejected => "Authentication required",
            NegotiationFailure::Loopback => "Loopback detected",
            NegotiationFailure::AddressRejected => "IP address rejected",
        }
    }
}

/// A policy that can decide the negotiation cannot succeed.
pub trait Failing {
    /// The reason, once decided; cleared when a new negotiation starts
    /// ([`Protocol::reset_request`]).
    fn failure(&self) -> Option<NegotiationFailure>;
}

/// If the policy of `fsm` failed, closes the automaton with the reason as Terminate-Request
/// data and returns the failure; does nothing (and returns `None`) when there is no failure or
/// the automaton is already closing or closed.
pub fn close_on_failure<P: Protocol + Failing>(
    fsm: &mut Fsm<P>,
    now: Instant,
) -> Option<NegotiationFailure> {
    let failure = fsm.protocol().failure()?;
    let closing = matches!(
        fsm.state(),
        State::Initial | State::Starting | State::Closed | State::Closing
    );
    if closing {
        return None;
    }
    tracing::info!(
        proto = P::PROTOCOL,
        reason = failure.reason(),
        "negotiation failed"
    );
    fsm.close_with_reason(now, failure.reason().as_bytes());
    Some(failure)
}

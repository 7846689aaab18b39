//! Authentication-Protocol (RFC 1661 §6.2), in both directions.
//!
//! * Authenticator (we ask the peer to authenticate): [`Ladder`] walks an ordered preference
//!   list (e.g. MS-CHAPv2, CHAP-MD5, PAP). A Nak naming another protocol moves to it when the
//!   policy allows it and it was not tried yet, else to the next untried protocol of the list;
//!   when none is left, or the peer rejects the option, the negotiation fails (we never bring
//!   the link up unauthenticated when the policy demands authentication).
//! * Authenticatee (the peer asks us): [`judge_peer`] acknowledges a protocol we can do and
//!   Naks with our preferred one otherwise (§6.2: "the Configure-Nak ... the desired
//!   protocol"); with nothing we can do, the option is rejected.

use crate::ppp::lcp::AuthProtocol;
use crate::ppp::policy::NegotiationFailure;

/// Our verdict on the peer's Authentication-Protocol option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerAuthVerdict {
    Accept,
    Nak(AuthProtocol),
    Reject,
}

/// Judges the protocol the peer wants us to authenticate with; `accept` is what we can do,
/// preferred first.
pub fn judge_peer(accept: &[AuthProtocol], asked: &AuthProtocol) -> PeerAuthVerdict {
    if accept.contains(asked) {
        PeerAuthVerdict::Accept
    } else {
        match accept.first() {
            Some(preferred) => PeerAuthVerdict::Nak(preferred.clone()),
            None => PeerAuthVerdict::Reject,
        }
    }
}

/// The authenticator's position in its preference list during one negotiation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ladder {
    current: usize,
    tried: Vec<bool>,
    failure: Option<NegotiationFailure>,
}

impl Ladder {
    /// Starts over at the most preferred protocol of `prefs`.
    pub fn reset(&mut self, prefs: &[AuthProtocol]) {
        self.current = 0;
        self.tried = vec![false; prefs.len()];
        if let Some(first) = self.tried.first_mut() {
            *first = true;
        }
        self.failure = None;
    }

    /// The protocol to put in our next Configure-Request; `None` when `prefs` is empty (no
    /// authentication required).
    pub fn requested<'a>(&self, prefs: &'a [AuthProtocol]) -> Option<&'a AuthProtocol> {
        prefs.get(self.current)
    }

    /// The peer Nak'd our protocol, suggesting `suggested` (`None` if its option did not
    /// parse). RFC 1661 §6.2: move to a protocol the peer can do, if the policy allows one.
    pub fn naked(&mut self, prefs: &[AuthProtocol], suggested: Option<&AuthProtocol>) {
        if prefs.is_empty() {
            return;
        }
        let suggested = suggested
            .and_then(|s| prefs.iter().position(|p| p == s))
            .filter(|&i| !self.tried.get(i).copied().unwrap_or(true));
        let next = suggested.or_else(|| self.tried.iter().position(|t| !t));
        match next {
            Some(i) => {
                self.current = i;
                if let Some(t) = self.tried.get_mut(i) {
                    *t = true;
                }
            }
            None => self.failure = Some(NegotiationFailure::NoCommonAuthProtocol),
        }
    }

    /// The peer rejected the option: it will not authenticate (RFC 1661 §5.4).
    pub fn rejected(&mut self, prefs: &[AuthProtocol]) {
        if !prefs.is_empty() {
            self.failure = Some(NegotiationFailure::AuthRejected);
        }
    }

    /// Why the negotiation cannot succeed, if it cannot.
    pub fn failure(&self) -> Option<NegotiationFailure> {
        self.failure
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ppp::lcp::ChapAlgorithm;

    const MSCHAPV2: AuthProtocol = AuthProtocol::Chap(ChapAlgorithm::MsChapV2);
    const CHAP_MD5: AuthProtocol = AuthProtocol::Chap(ChapAlgorithm::Md5);

    fn prefs() -> Vec<AuthProtocol> {
        vec![MSCHAPV2, CHAP_MD5, AuthProtocol::Pap]
    }

    #[test]
    fn peer_side_accepts_what_it_can_do() {
        let accept = [CHAP_MD5, AuthProtocol::Pap];
        assert_eq!(
            judge_peer(&accept, &AuthProtocol::Pap),
            PeerAuthVerdict::Accept
        );
        assert_eq!(judge_peer(&accept, &CHAP_MD5), PeerAuthVerdict::Accept);
    }

    #[test]
    fn peer_side_naks_with_its_preferred_protocol() {
        let accept = [CHAP_MD5, AuthProtocol::Pap];
        assert_eq!(
            judge_peer(&accept, &MSCHAPV2),
            PeerAuthVerdict::Nak(CHAP_MD5)
        );
        assert_eq!(
            judge_peer(&accept, &AuthProtocol::Eap),
            PeerAuthVerdict::Nak(CHAP_MD5)
        );
    }

    #[test]
    fn peer_side_rejects_when_it_can_do_nothing() {
        assert_eq!(judge_peer(&[], &AuthProtocol::Pap), PeerAuthVerdict::Reject);
    }

    #[test]
    fn ladder_starts_at_the_most_preferred() {
        let mut l = Ladder::default();
        l.reset(&prefs());
        assert_eq!(l.requested(&prefs()), Some(&MSCHAPV2));
        l.reset(&[]);
        assert_eq!(l.requested(&[]), None);
    }

    #[test]
    fn ladder_jumps_to_an_allowed_suggestion() {
        let mut l = Ladder::default();
        l.reset(&prefs());
        l.naked(&prefs(), Some(&AuthProtocol::Pap));
        assert_eq!(l.requested(&prefs()), Some(&AuthProtocol::Pap));
        assert_eq!(l.failure(), None);
    }

    #[test]
    fn ladder_steps_down_when_the_suggestion_is_not_allowed() {
        let mut l = Ladder::default();
        l.reset(&prefs());
        l.naked(&prefs(), Some(&AuthProtocol::Eap));
        assert_eq!(l.requested(&prefs()), Some(&CHAP_MD5));
        l.naked(&prefs(), None);
        assert_eq!(l.requested(&prefs()), Some(&AuthProtocol::Pap));
        // A suggestion already tried does not loop back.
        l.naked(&prefs(), Some(&MSCHAPV2));
        assert_eq!(l.failure(), Some(NegotiationFailure::NoCommonAuthProtocol));
    }

    #[test]
    fn ladder_fails_when_the_list_is_exhausted() {
        let only = [CHAP_MD5];
        let mut l = Ladder::default();
        l.reset(&only);
        l.naked(&only, Some(&AuthProtocol::Pap));
        assert_eq!(l.failure(), Some(NegotiationFailure::NoCommonAuthProtocol));
        // Still asks for its protocol: the link never opens unauthenticated.
        assert_eq!(l.requested(&only), Some(&CHAP_MD5));
        l.reset(&only);
        assert_eq!(l.failure(), None);
    }

    #[test]
    fn ladder_reject_fails_only_when_auth_is_required() {
        let mut l = Ladder::default();
        l.reset(&prefs());
        l.rejected(&prefs());
        assert_eq!(l.failure(), Some(NegotiationFailure::AuthRejected));
        let mut l = Ladder::default();
        l.reset(&[]);
        l.rejected(&[]);
        assert_eq!(l.failure(), None);
    }
}

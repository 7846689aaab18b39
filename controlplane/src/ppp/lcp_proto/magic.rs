//! Magic-Number (RFC 1661 §6.4) and loopback detection.
//!
//! Our number is drawn from a seeded RNG owned by the policy (sans-IO: the caller seeds it).
//! A peer request carrying our own number is Nak'd with a fresh one, which we remember. A Nak
//! of our request carrying the number we last Nak'd with raises the loopback count and makes us
//! draw a new number; a different number resets the count, and we adopt it (it is unique, §6.4).
//! When the count reaches the policy's limit, the link is declared looped back.

use rand::Rng;
use rand::rngs::StdRng;

/// Loopback suspicions (Naks bouncing back) before the link is called looped back. It must
/// not exceed the automaton's Max-Failure ([`crate::ppp::fsm::Config::max_failure`], 5 by
/// default): past it the automaton turns our Magic-Number Nak into a Reject (RFC 1661 §4.6)
/// and a looped link would open.
pub const DEFAULT_MAX_LOOPBACK: u32 = 5;

/// Magic-Number state of one LCP.
#[derive(Debug, Clone)]
pub struct Magic {
    rng: StdRng,
    /// The number in our Configure-Requests; 0 when we do not send the option.
    ours: u32,
    /// The number we put in our last Configure-Nak.
    last_nak: Option<u32>,
    loops: u32,
    looped: bool,
}

impl Magic {
    pub fn new(rng: StdRng) -> Magic {
        Magic {
            rng,
            ours: 0,
            last_nak: None,
            loops: 0,
            looped: false,
        }
    }

    /// A random non-zero number different from ours (RFC 1661 §6.4: zero means "not
    /// negotiated").
    pub fn fresh(&mut self) -> u32 {
        loop {
            let n: u32 = self.rng.random();
            if n != 0 && n != self.ours {
                return n;
            }
        }
    }

    /// A new negotiation: draw our number if we send the option, forget the loop count.
    pub fn reset(&mut self, enabled: bool) {
        self.ours = if enabled { self.fresh() } else { 0 };
        self.last_nak = None;
        self.loops = 0;
        self.looped = false;
    }

    /// The number in our requests (0: option not sent).
    pub fn ours(&self) -> u32 {
        self.ours
    }

    /// Judges the peer's number: `Some(suggestion)` to Nak with when it equals ours (§6.4
    /// "a Configure-Nak MUST be sent specifying a different Magic-Number value"). Commits
    /// nothing; call [`Magic::nak_sent`] when the Nak is sent.
    pub fn judge_peer(&mut self, peer: u32) -> Option<u32> {
        (self.ours != 0 && peer == self.ours).then(|| self.fresh())
    }

    /// We are sending a Configure-Nak suggesting `value`.
    pub fn nak_sent(&mut self, value: u32) {
        self.last_nak = Some(value);
    }

    /// The peer Nak'd our number with `suggested`; `max_loopback` is the policy's limit.
    pub fn naked(&mut self, suggested: u32, max_loopback: u32) {
        if Some(suggested) == self.last_nak {
            // §6.4: "the possibility of a looped-back link is increased, and a new
            // Magic-Number MUST be chosen".
            self.loops = self.loops.saturating_add(1);
            if self.loops >= max_loopback {
                self.looped = true;
            }
            self.ours = self.fresh();
        } else {
            // §6.4: a different number "proves that a link is not looped-back".
            self.loops = 0;
            self.ours = if suggested != 0 {
                suggested
            } else {
                self.fresh()
            };
        }
    }

    /// The peer rejected the option: it will not use magic numbers, and "an implementation
    /// SHOULD act as if the negotiation had been successful" (§6.4).
    pub fn rejected(&mut self) {
        self.ours = 0;
    }

    /// Whether the link was declared looped back.
    pub fn looped(&self) -> bool {
        self.looped
    }

    /// How many Naks came back as sent since the last proof of no loopback.
    pub fn loops(&self) -> u32 {
        self.loops
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn magic(seed: u64) -> Magic {
        let mut m = Magic::new(StdRng::seed_from_u64(seed));
        m.reset(true);
        m
    }

    #[test]
    fn ours_is_random_non_zero_and_seed_determined() {
        let a = magic(1);
        assert_ne!(a.ours(), 0);
        assert_eq!(a.ours(), magic(1).ours());
        assert_ne!(a.ours(), magic(2).ours());
        let mut off = Magic::new(StdRng::seed_from_u64(1));
        off.reset(false);
        assert_eq!(off.ours(), 0);
    }

    #[test]
    fn peer_number_equal_to_ours_is_naked_with_a_different_one() {
        let mut m = magic(3);
        let ours = m.ours();
        assert_eq!(m.judge_peer(ours ^ 1), None);
        let s = m.judge_peer(ours).unwrap_or(0);
        assert_ne!(s, 0);
        assert_ne!(s, ours);
        let mut off = Magic::new(StdRng::seed_from_u64(1));
        off.reset(false);
        assert_eq!(off.judge_peer(0), None);
    }

    #[test]
    fn nak_bouncing_back_counts_towards_loopback() {
        let mut m = magic(4);
        for i in 1..=3 {
            let ours = m.ours();
            let s = m.judge_peer(ours).unwrap_or(0);
            m.nak_sent(s);
            m.naked(s, 3);
            assert_eq!(m.loops(), i);
            assert_ne!(m.ours(), ours, "a new number is drawn");
            assert_ne!(m.ours(), s);
        }
        assert!(m.looped());
        m.reset(true);
        assert!(!m.looped());
    }

    #[test]
    fn different_nak_proves_no_loopback_and_is_adopted() {
        let mut m = magic(5);
        let ours = m.ours();
        let s = m.judge_peer(ours).unwrap_or(0);
        m.nak_sent(s);
        m.naked(s, 10);
        assert_eq!(m.loops(), 1);
        m.naked(0x0bad_cafe, 10);
        assert_eq!(m.loops(), 0);
        assert_eq!(m.ours(), 0x0bad_cafe);
    }

    #[test]
    fn reject_stops_the_option() {
        let mut m = magic(6);
        m.rejected();
        assert_eq!(m.ours(), 0);
        assert_eq!(m.judge_peer(0), None);
    }
}

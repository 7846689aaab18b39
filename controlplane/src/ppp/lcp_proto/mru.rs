//! Maximum-Receive-Unit (RFC 1661 §6.1).
//!
//! The peer's MRU is the largest packet it can receive, so the largest we may send. We accept
//! it within the policy's bounds and Nak an out-of-range value with the nearest bound. A Nak of
//! our own MRU is followed when the suggested value is within the same bounds; a Reject makes
//! us stop asking and fall back to the default.

/// The MRU both ends assume when it is not negotiated (RFC 1661 §6.1 Default).
pub const DEFAULT_MRU: u16 = 1500;

/// The verdict on the peer's MRU: `Ok` to acknowledge, `Err(bound)` to Nak with `bound`.
pub fn judge_peer(value: u16, min: u16, max: u16) -> Result<(), u16> {
    if value < min {
        Err(min)
    } else if value > max {
        Err(max)
    } else {
        Ok(())
    }
}

/// The MRU we ask for next after the peer Nak'd ours with `suggested`: the suggestion when it
/// lies within `[min, max]`, else our current value unchanged.
pub fn after_nak(current: u16, suggested: u16, min: u16, max: u16) -> u16 {
    if (min..=max).contains(&suggested) {
        suggested
    } else {
        current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_mru_within_bounds_is_acked() {
        assert_eq!(judge_peer(1400, 128, 1500), Ok(()));
        assert_eq!(judge_peer(128, 128, 1500), Ok(()));
        assert_eq!(judge_peer(1500, 128, 1500), Ok(()));
    }

    #[test]
    fn peer_mru_out_of_bounds_is_naked_with_the_bound() {
        assert_eq!(judge_peer(64, 128, 1500), Err(128));
        assert_eq!(judge_peer(9000, 128, 1500), Err(1500));
    }

    #[test]
    fn nak_of_our_mru_followed_only_within_bounds() {
        assert_eq!(after_nak(1400, 1300, 128, 1500), 1300);
        assert_eq!(after_nak(1400, 100, 128, 1500), 1400);
        assert_eq!(after_nak(1400, 2000, 128, 1500), 1400);
    }
}

//! Admission control of tunnel and session setups, sans-IO.
//!
//! # Why
//!
//! Every SCCRQ makes us allocate a tunnel, answer, retransmit and wait for SCCCN; every
//! ICRQ does the same for a session and then starts PPP and AAA. A peer (or a spoofed
//! flood, RFC 2661 §9 notes that control messages are unauthenticated until the tunnel is)
//! must not be able to make us queue unbounded setup work. So, before the policy checks of
//! [`crate::policy`]:
//!
//! * token buckets bound the rate of SCCRQ and ICRQ we accept (`[admission]
//!   sccrq_per_second`/`sccrq_burst`, `icrq_per_second`/`icrq_burst`);
//! * caps bound the setups in flight: tunnels between SCCRQ and SCCCN, sessions between
//!   ICRQ and ICCN (`max_tunnel_setups`, `max_session_setups`).
//!
//! # Contract
//!
//! Time is passed in (`now: Instant`); nothing here reads a clock. [`Admission::begin_tunnel_setup`]
//! decides; on [`Decision::Admit`] the setup counts as in flight until the caller calls
//! [`Admission::end_tunnel_setup`] exactly once (SCCCN received, or the half-open tunnel
//! torn down). The in-flight cap is checked before the rate, so a refusal for the cap does
//! not spend a token. Ending a setup that was never begun returns [`CounterUnderflow`] and
//! leaves the count at zero. A refusal maps to the Result Code of the StopCCN
//! ([`Decision::tunnel_result_code`]) or CDN ([`Decision::session_result_code`]) to send,
//! RFC 2661 §4.4.2. Refusals are counted by reason ([`AdmissionStats`]).
//!
//! Buckets start full. If `now` goes backwards (an `Instant` from another source), no
//! tokens are added and the bucket keeps its latest time.

use std::time::Instant;

use crate::config::{AdmissionConfig, Rate};
use crate::policy::{CounterUnderflow, ResultCode};

/// The answer to a setup request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead; the setup now counts as in flight.
    Admit,
    /// The rate limit (token bucket) is exhausted.
    RefuseRate,
    /// Too many setups of this kind are in flight.
    RefuseInFlight,
}

impl Decision {
    /// Whether the setup was admitted.
    pub fn is_admit(self) -> bool {
        self == Decision::Admit
    }

    /// For a refused SCCRQ: StopCCN Result Code 2, General Error 4 "insufficient resources
    /// to handle this operation now" (RFC 2661 §4.4.2). `None` for [`Decision::Admit`].
    pub fn tunnel_result_code(self) -> Option<ResultCode> {
        match self {
            Decision::Admit => None,
            Decision::RefuseRate | Decision::RefuseInFlight => {
                Some(ResultCode::TUNNEL_NO_RESOURCES)
            }
        }
    }

    /// For a refused ICRQ: CDN Result Code 4, lack of facilities, temporary (RFC 2661
    /// §4.4.2). `None` for [`Decision::Admit`].
    pub fn session_result_code(self) -> Option<ResultCode> {
        match self {
            Decision::Admit => None,
            Decision::RefuseRate | Decision::RefuseInFlight => {
                Some(ResultCode::SESSION_NO_RESOURCES)
            }
        }
    }
}

/// A token bucket with `per_second` refill and `burst` capacity, in nanotokens so that
/// refill is exact at any rate and interval.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    per_second: u64,
    capacity: u128,
    nanotokens: u128,
    last: Option<Instant>,
}

const NANOS_PER_TOKEN: u128 = 1_000_000_000;

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: Rate) -> TokenBucket {
        let capacity = u128::from(rate.burst) * NANOS_PER_TOKEN;
        TokenBucket {
            per_second: u64::from(rate.per_second),
            capacity,
            nanotokens: capacity,
            last: None,
        }
    }

    fn refill(&mut self, now: Instant) {
        if let Some(last) = self.last {
            // One token is 1e9 nanotokens and refills in 1e9 / per_second ns, so each
            // elapsed nanosecond adds per_second nanotokens.
            let elapsed = now.saturating_duration_since(last).as_nanos();
            let added = elapsed.saturating_mul(u128::from(self.per_second));
            self.nanotokens = self.nanotokens.saturating_add(added).min(self.capacity);
            if now > last {
                self.last = Some(now);
            }
        } else {
            self.last = Some(now);
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.nanotokens >= NANOS_PER_TOKEN {
            self.nanotokens -= NANOS_PER_TOKEN;
            true
        } else {
            false
        }
    }

    /// Whole tokens available at `now`.
    pub fn available(&mut self, now: Instant) -> u64 {
        self.refill(now);
        u64::try_from(self.nanotokens / NANOS_PER_TOKEN).unwrap_or(u64::MAX)
    }
}

/// Counters of admission decisions, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdmissionStats {
    /// SCCRQ admitted.
    pub tunnels_admitted: u64,
    /// SCCRQ refused by the SCCRQ rate.
    pub tunnels_refused_rate: u64,
    /// SCCRQ refused because `max_tunnel_setups` were in flight.
    pub tunnels_refused_in_flight: u64,
    /// ICRQ admitted.
    pub sessions_admitted: u64,
    /// ICRQ refused by the ICRQ rate.
    pub sessions_refused_rate: u64,
    /// ICRQ refused because `max_session_setups` were in flight.
    pub sessions_refused_in_flight: u64,
    /// `end_*` calls without a matching `begin_*` (caller bookkeeping bugs).
    pub underflows: u64,
}

/// Admission state: two token buckets, two in-flight counts, the statistics.
#[derive(Debug, Clone)]
pub struct Admission {
    sccrq: TokenBucket,
    icrq: TokenBucket,
    max_tunnel_setups: u32,
    max_session_setups: u32,
    tunnel_setups: u32,
    session_setups: u32,
    stats: AdmissionStats,
}

impl Admission {
    /// Full buckets, nothing in flight.
    pub fn new(config: &AdmissionConfig) -> Admission {
        Admission {
            sccrq: TokenBucket::new(config.sccrq),
            icrq: TokenBucket::new(config.icrq),
            max_tunnel_setups: config.max_tunnel_setups,
            max_session_setups: config.max_session_setups,
            tunnel_setups: 0,
            session_setups: 0,
            stats: AdmissionStats::default(),
        }
    }

    /// Decides on an SCCRQ received at `now`. On [`Decision::Admit`] one tunnel setup is
    /// in flight until [`Admission::end_tunnel_setup`].
    pub fn begin_tunnel_setup(&mut self, now: Instant) -> Decision {
        let decision = decide(
            &mut self.sccrq,
            &mut self.tunnel_setups,
            self.max_tunnel_setups,
            now,
        );
        let stats = &mut self.stats;
        match decision {
            Decision::Admit => stats.tunnels_admitted += 1,
            Decision::RefuseRate => stats.tunnels_refused_rate += 1,
            Decision::RefuseInFlight => stats.tunnels_refused_in_flight += 1,
        }
        decision
    }

    /// Ends an admitted tunnel setup: SCCCN arrived, or the half-open tunnel went away.
    pub fn end_tunnel_setup(&mut self) -> Result<(), CounterUnderflow> {
        end(&mut self.tunnel_setups, &mut self.stats)
    }

    /// Decides on an ICRQ received at `now`. On [`Decision::Admit`] one session setup is
    /// in flight until [`Admission::end_session_setup`].
    pub fn begin_session_setup(&mut self, now: Instant) -> Decision {
        let decision = decide(
            &mut self.icrq,
            &mut self.session_setups,
            self.max_session_setups,
            now,
        );
        let stats = &mut self.stats;
        match decision {
            Decision::Admit => stats.sessions_admitted += 1,
            Decision::RefuseRate => stats.sessions_refused_rate += 1,
            Decision::RefuseInFlight => stats.sessions_refused_in_flight += 1,
        }
        decision
    }

    /// Ends an admitted session setup: ICCN arrived, or the session went away first.
    pub fn end_session_setup(&mut self) -> Result<(), CounterUnderflow> {
        end(&mut self.session_setups, &mut self.stats)
    }

    /// Tunnel setups in flight.
    pub fn tunnel_setups(&self) -> u32 {
        self.tunnel_setups
    }

    /// Session setups in flight.
    pub fn session_setups(&self) -> u32 {
        self.session_setups
    }

    /// The decision counters.
    pub fn stats(&self) -> &AdmissionStats {
        &self.stats
    }

    /// Applies new limits (a configuration reload): setups in flight and the counters
    /// stay; a bucket whose rate changed starts full at its new size.
    pub fn reconfigure(&mut self, config: &AdmissionConfig) {
        let current = |b: &TokenBucket| Rate {
            per_second: u32::try_from(b.per_second).unwrap_or(u32::MAX),
            burst: u32::try_from(b.capacity / NANOS_PER_TOKEN).unwrap_or(u32::MAX),
        };
        if current(&self.sccrq) != config.sccrq {
            self.sccrq = TokenBucket::new(config.sccrq);
        }
        if current(&self.icrq) != config.icrq {
            self.icrq = TokenBucket::new(config.icrq);
        }
        self.max_tunnel_setups = config.max_tunnel_setups;
        self.max_session_setups = config.max_session_setups;
    }
}

/// In-flight cap first (so that a refusal for it spends no token), then the rate.
fn decide(bucket: &mut TokenBucket, in_flight: &mut u32, cap: u32, now: Instant) -> Decision {
    if *in_flight >= cap {
        return Decision::RefuseInFlight;
    }
    if !bucket.try_take(now) {
        return Decision::RefuseRate;
    }
    *in_flight += 1;
    Decision::Admit
}

fn end(in_flight: &mut u32, stats: &mut AdmissionStats) -> Result<(), CounterUnderflow> {
    match in_flight.checked_sub(1) {
        Some(n) => {
            *in_flight = n;
            Ok(())
        }
        None => {
            stats.underflows += 1;
            Err(CounterUnderflow)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use std::time::Duration;

    fn config(sccrq: (u32, u32), icrq: (u32, u32), caps: (u32, u32)) -> AdmissionConfig {
        AdmissionConfig {
            max_tunnel_setups: caps.0,
            max_session_setups: caps.1,
            sccrq: Rate {
                per_second: sccrq.0,
                burst: sccrq.1,
            },
            icrq: Rate {
                per_second: icrq.0,
                burst: icrq.1,
            },
        }
    }

    fn ms(t0: Instant, n: u64) -> Instant {
        t0 + Duration::from_millis(n)
    }

    #[test]
    fn burst_then_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(Rate {
            per_second: 10,
            burst: 3,
        });
        assert!(b.try_take(t0));
        assert!(b.try_take(t0));
        assert!(b.try_take(t0));
        assert!(!b.try_take(t0));
        // 10/s: one token per 100 ms.
        assert!(!b.try_take(ms(t0, 99)));
        assert!(b.try_take(ms(t0, 100)));
        assert!(!b.try_take(ms(t0, 150)));
        assert!(b.try_take(ms(t0, 200)));
    }

    #[test]
    fn refill_caps_at_burst() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(Rate {
            per_second: 1000,
            burst: 5,
        });
        for _ in 0..5 {
            assert!(b.try_take(t0));
        }
        assert_eq!(b.available(t0), 0);
        assert_eq!(b.available(ms(t0, 2)), 2);
        assert_eq!(b.available(t0 + Duration::from_secs(3600)), 5);
        // And over a very long idle time, no overflow.
        assert_eq!(b.available(t0 + Duration::from_secs(100 * 365 * 86400)), 5);
    }

    #[test]
    fn sustained_rate_over_a_virtual_minute() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(Rate {
            per_second: 7,
            burst: 1,
        });
        // Offer one request per millisecond for 0..60 s: the burst of 1 at 0 ms, then one
        // per 1000/7 ms, floor(59_999 * 7 / 1000) = 419 more.
        let admitted = (0..60_000).filter(|&i| b.try_take(ms(t0, i))).count();
        assert_eq!(admitted, 1 + 419);
    }

    #[test]
    fn fractional_refill_accumulates() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(Rate {
            per_second: 3,
            burst: 1,
        });
        assert!(b.try_take(t0));
        // 3/s: a token every 333.33 ms; three steps of 111 ms are not enough, the fourth is.
        assert!(!b.try_take(ms(t0, 111)));
        assert!(!b.try_take(ms(t0, 222)));
        assert!(!b.try_take(ms(t0, 333)));
        assert!(b.try_take(ms(t0, 334)));
    }

    #[test]
    fn time_going_backwards_adds_nothing() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(10);
        let mut b = TokenBucket::new(Rate {
            per_second: 1,
            burst: 1,
        });
        assert!(b.try_take(later));
        assert!(!b.try_take(t0));
        // The bucket kept `later`: refill counts from there, not from t0.
        assert!(!b.try_take(later + Duration::from_millis(999)));
        assert!(b.try_take(later + Duration::from_secs(1)));
    }

    #[test]
    fn tunnel_cap_refuses_without_spending_tokens() {
        let t0 = Instant::now();
        let mut a = Admission::new(&config((1, 3), (1, 1), (2, 1)));
        assert_eq!(a.begin_tunnel_setup(t0), Decision::Admit);
        assert_eq!(a.begin_tunnel_setup(t0), Decision::Admit);
        assert_eq!(a.tunnel_setups(), 2);
        assert_eq!(a.begin_tunnel_setup(t0), Decision::RefuseInFlight);
        assert_eq!(a.begin_tunnel_setup(t0), Decision::RefuseInFlight);
        a.end_tunnel_setup().unwrap();
        // The third token is still there: the refusals did not spend it.
        assert_eq!(a.begin_tunnel_setup(t0), Decision::Admit);
        a.end_tunnel_setup().unwrap();
        assert_eq!(a.begin_tunnel_setup(t0), Decision::RefuseRate);
        assert_eq!(a.begin_tunnel_setup(ms(t0, 1000)), Decision::Admit);
        let s = a.stats();
        assert_eq!(s.tunnels_admitted, 4);
        assert_eq!(s.tunnels_refused_in_flight, 2);
        assert_eq!(s.tunnels_refused_rate, 1);
        assert_eq!(s.sessions_admitted, 0);
    }

    #[test]
    fn session_rate_and_cap() {
        let t0 = Instant::now();
        let mut a = Admission::new(&config((1, 1), (100, 2), (1, 3)));
        assert_eq!(a.begin_session_setup(t0), Decision::Admit);
        assert_eq!(a.begin_session_setup(t0), Decision::Admit);
        assert_eq!(a.begin_session_setup(t0), Decision::RefuseRate);
        assert_eq!(a.begin_session_setup(ms(t0, 10)), Decision::Admit);
        assert_eq!(a.begin_session_setup(ms(t0, 20)), Decision::RefuseInFlight);
        assert_eq!(a.session_setups(), 3);
        for _ in 0..3 {
            a.end_session_setup().unwrap();
        }
        assert_eq!(a.begin_session_setup(ms(t0, 20)), Decision::Admit);
        // Sessions and tunnels are independent.
        assert_eq!(a.begin_tunnel_setup(ms(t0, 20)), Decision::Admit);
        let s = *a.stats();
        assert_eq!(
            s,
            AdmissionStats {
                tunnels_admitted: 1,
                tunnels_refused_rate: 0,
                tunnels_refused_in_flight: 0,
                sessions_admitted: 4,
                sessions_refused_rate: 1,
                sessions_refused_in_flight: 1,
                underflows: 0,
            }
        );
    }

    #[test]
    fn ends_cannot_underflow() {
        let t0 = Instant::now();
        let mut a = Admission::new(&config((10, 10), (10, 10), (1, 1)));
        assert_eq!(a.end_tunnel_setup(), Err(CounterUnderflow));
        assert_eq!(a.end_session_setup(), Err(CounterUnderflow));
        assert_eq!(a.tunnel_setups(), 0);
        assert_eq!(a.session_setups(), 0);
        assert_eq!(a.stats().underflows, 2);
        // A spurious end does not make room beyond the cap.
        assert_eq!(a.begin_tunnel_setup(t0), Decision::Admit);
        assert_eq!(a.begin_tunnel_setup(t0), Decision::RefuseInFlight);
        assert_eq!(a.end_tunnel_setup(), Ok(()));
        assert_eq!(a.end_tunnel_setup(), Err(CounterUnderflow));
        assert_eq!(a.stats().underflows, 3);
    }

    #[test]
    fn refusals_map_to_result_codes() {
        assert_eq!(Decision::Admit.tunnel_result_code(), None);
        assert_eq!(Decision::Admit.session_result_code(), None);
        for d in [Decision::RefuseRate, Decision::RefuseInFlight] {
            // RFC 2661 §4.4.2: StopCCN 2 / General Error 4; CDN 4 (temporary).
            assert_eq!(
                d.tunnel_result_code(),
                Some(ResultCode {
                    result: 2,
                    error: Some(4)
                })
            );
            assert_eq!(
                d.session_result_code(),
                Some(ResultCode {
                    result: 4,
                    error: None
                })
            );
            assert!(!d.is_admit());
        }
        assert!(Decision::Admit.is_admit());
    }

    #[test]
    fn from_default_config() {
        let t0 = Instant::now();
        let mut a = Admission::new(&AdmissionConfig::default());
        // Default SCCRQ burst 200, cap 64 in flight: the cap binds first.
        let admitted = (0..100)
            .filter(|_| a.begin_tunnel_setup(t0).is_admit())
            .count();
        assert_eq!(admitted, 64);
    }
}

//! The RFC 2544 throughput search (RFC 2544 §26.1): the highest offered rate at which a
//! fixed-rate trial of a given duration loses no packet (or no more than a tolerance).
//!
//! A binary search over [`Rig::run`] trials at fixed rates: the first trial runs at the
//! upper bound (a pass there ends the search), then every trial halves the interval
//! between the highest passing rate (0 at first) and the lowest failing one, until the
//! interval is narrower than the resolution (relative to the upper bound) or the trials
//! are used up. A trial passes when the packets lost in all the directions it sends are
//! at most `loss_tolerance` of those sent (0: none lost), lost counted per session after
//! the drain. Works for any forwarder the rig sends through (bare, xlns, l2tpns): the
//! search knows nothing of the device under test.

use std::io;
use std::time::Duration;

use serde::Serialize;

use super::{Direction, Rig, RunSpec, TrafficReport};

/// How to search.
#[derive(Debug, Clone, Copy)]
pub struct SearchSpec {
    /// Duration of each trial (RFC 2544 §24 asks for at least 60 s; shorter trials are a
    /// choice of the caller, reported with the result).
    pub trial: Duration,
    /// Upper bound, packets per second per direction.
    pub max_pps: f64,
    /// Stop when (fail - pass) / max_pps is below this.
    pub resolution: f64,
    /// Trials at most.
    pub max_trials: usize,
    /// Lost / sent a trial may have and still pass (0: zero loss).
    pub loss_tolerance: f64,
}

impl SearchSpec {
    /// Trials of `trial`, up to `max_pps`, 1 % resolution, 12 trials, zero loss.
    pub fn new(trial: Duration, max_pps: f64) -> SearchSpec {
        SearchSpec {
            trial,
            max_pps,
            resolution: 0.01,
            max_trials: 12,
            loss_tolerance: 0.0,
        }
    }
}

/// One fixed-rate trial.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Trial {
    pub rate_pps: f64,
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    pub pass: bool,
}

/// The outcome of a search.
#[derive(Debug, Clone, Serialize)]
pub struct SearchResult {
    pub direction: Direction,
    pub trial_s: f64,
    pub loss_tolerance: f64,
    pub max_pps: f64,
    /// The highest passing rate per direction (`None`: no trial passed).
    pub throughput_pps: Option<f64>,
    /// Forwarded packets per second (all directions) in the passing trial.
    pub forwarded_pps: Option<f64>,
    pub trials: Vec<Trial>,
}

/// Sent, received and lost over the directions of a report.
pub fn totals(r: &TrafficReport) -> (u64, u64, u64) {
    [r.up.as_ref(), r.down.as_ref()]
        .into_iter()
        .flatten()
        .fold((0, 0, 0), |(s, rx, l), d| {
            (s + d.sent, rx + d.received, l + d.lost)
        })
}

/// Whether `lost` of `sent` passes under `tolerance`.
pub fn passes(sent: u64, lost: u64, tolerance: f64) -> bool {
    sent > 0 && (lost as f64) <= tolerance * sent as f64
}

/// The next rate to try between the highest pass and the lowest fail, or `None` when the
/// interval is below the resolution.
pub fn next_rate(pass: f64, fail: f64, spec: &SearchSpec) -> Option<f64> {
    ((fail - pass) / spec.max_pps.max(1.0) >= spec.resolution).then_some((pass + fail) / 2.0)
}

/// Runs the search for `direction` with the sizes of `base` (its rate and duration are
/// replaced by the trials').
pub fn search(
    rig: &mut Rig,
    base: &RunSpec,
    direction: Direction,
    spec: &SearchSpec,
) -> io::Result<SearchResult> {
    let mut trials = Vec::new();
    let (mut pass, mut fail) = (0.0_f64, spec.max_pps);
    let mut best: Option<(f64, f64)> = None;
    let mut rate = Some(spec.max_pps);
    while let Some(r) = rate {
        if trials.len() >= spec.max_trials.max(1) {
            break;
        }
        let report = rig.run(&RunSpec {
            direction,
            rate_pps: Some(r),
            duration: spec.trial,
            progress: false,
            ..*base
        })?;
        let (sent, received, lost) = totals(&report);
        let ok = passes(sent, lost, spec.loss_tolerance);
        trials.push(Trial {
            rate_pps: r,
            sent,
            received,
            lost,
            pass: ok,
        });
        if ok {
            pass = r;
            best = Some((r, report.rx_pps_total));
            if r >= spec.max_pps {
                break;
            }
        } else {
            fail = r;
        }
        rate = next_rate(pass, fail, spec);
    }
    Ok(SearchResult {
        direction,
        trial_s: spec.trial.as_secs_f64(),
        loss_tolerance: spec.loss_tolerance,
        max_pps: spec.max_pps,
        throughput_pps: best.map(|b| b.0),
        forwarded_pps: best.map(|b| b.1),
        trials,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn zero_tolerance_passes_only_without_loss() {
        assert!(passes(1000, 0, 0.0));
        assert!(!passes(1000, 1, 0.0));
        assert!(passes(1000, 1, 0.001));
        assert!(!passes(1000, 2, 0.001));
        assert!(
            !passes(0, 0, 0.0),
            "a trial that sent nothing proves nothing"
        );
    }

    /// The bisection converges on the knee of a device that forwards everything up to
    /// 123,456 pps and loses above it.
    #[test]
    fn bisection_converges_on_the_knee() {
        let spec = SearchSpec {
            resolution: 0.001,
            max_trials: 40,
            ..SearchSpec::new(Duration::from_secs(1), 1_000_000.0)
        };
        let knee = 123_456.0;
        let (mut pass, mut fail) = (0.0, spec.max_pps);
        let mut rate = Some(spec.max_pps);
        let mut n = 0;
        while let Some(r) = rate {
            n += 1;
            if r <= knee {
                pass = r;
            } else {
                fail = r;
            }
            rate = next_rate(pass, fail, &spec);
        }
        assert!(pass <= knee && knee - pass < 1000.0, "pass {pass}");
        assert!(fail > knee);
        assert!(n <= 11, "{n} trials");
    }
}

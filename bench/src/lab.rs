//! The lab run (`xlns-bench lab`, driven by `deploy/lab/lab.sh`): the LAC emulator brings
//! the sessions up with PPP, the AF_XDP generator sends upstream L2TP/PPP/IPv4 and
//! downstream IPv4 for every established session at once, and one summary says what
//! happened.
//!
//! # Contract
//!
//! * The process runs in the LAC's network namespace: the emulator's UDP sockets and the
//!   generator's LAC-side socket live there; the core side is entered by name.
//! * A thread owns the [`LacDriver`]: it establishes, hands the established sessions to
//!   the caller, then holds them (answering the LNS's LCP echoes, churning if asked)
//!   until released, then tears everything down (LCP terminate, CDN, StopCCN).
//! * The calling thread opens the [`Rig`] for the established sessions, runs the traffic
//!   (live progress on a terminal), then, with [`LabSpec::keep`], waits until `stop` is
//!   set (the signal handler) before it releases the driver.
//! * The result holds the setup report, the traffic report and the teardown, as JSON
//!   ([`LabResult`] is serialisable) and as a human summary ([`LabResult::summary`]).

use std::collections::BTreeMap;
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Serialize;
use xlns_dataplane::fastpath::DropReason;
use xlns_dataplane::shm::Reader;

use crate::acct_check::{Counts, SessionCounts};
use crate::lac::{LacConfig, LacDriver, Report, Teardown};
use crate::traffic::{
    DirReport, Rig, RunSpec, SessionCount, SessionList, SideSpec, TrafficReport, pin_to,
};

/// What the lab runs.
#[derive(Debug, Clone)]
pub struct LabSpec {
    /// The emulator (its `ppp` should be set: the traffic needs addresses).
    pub lac: LacConfig,
    /// Where to write the established sessions (JSON).
    pub sessions_out: Option<PathBuf>,
    /// Sessions closed and reopened per second while held.
    pub churn: Option<f64>,
    /// The LAC-side interface (this namespace).
    pub lac_if: String,
    pub core_if: String,
    pub core_netns: Option<String>,
    pub lns_access_mac: [u8; 6],
    pub lns_core_mac: [u8; 6],
    /// The server behind the LNS (upstream destination, downstream source).
    pub server: Ipv4Addr,
    pub run: RunSpec,
    /// CPU of the generator.
    pub cpu: Option<usize>,
    /// Keep the sessions up after the traffic until `stop`.
    pub keep: bool,
    /// xlns-dataplane's shared-memory segment: its drop counters are read before and
    /// after the traffic.
    pub shm: Option<PathBuf>,
    /// Where to write every session's packets and octets each way over the whole run,
    /// warm-up included ([`crate::acct_check::Counts`], for the accounting check).
    pub counts_out: Option<PathBuf>,
    /// Lines for the operator, printed with the summary (e.g. how to reach xlnsctl).
    pub hints: Vec<String>,
}

/// Everything a lab run measured.
#[derive(Debug, Clone, Serialize)]
pub struct LabResult {
    /// After the setup (before the hold).
    pub setup: Report,
    /// The sessions the traffic ran for.
    pub sessions: usize,
    pub traffic: Option<TrafficReport>,
    /// Why the traffic did not run, if it did not.
    pub traffic_error: Option<String>,
    /// xlns-dataplane's drops during the traffic, by reason (all reasons, zeros too; the
    /// `xsk-*` reasons are the kernel's at its AF_XDP sockets, read by its workers about
    /// once a second).
    pub dataplane_drops: Option<BTreeMap<String, u64>>,
    /// After the teardown.
    pub end: Option<Report>,
}

/// Every drop counter of every worker of the segment, summed per reason.
fn dataplane_drops(shm: &Path) -> io::Result<BTreeMap<String, u64>> {
    let reader =
        Reader::attach(shm).map_err(|e| io::Error::other(format!("{}: {e}", shm.display())))?;
    let mut out = BTreeMap::new();
    for reason in DropReason::ALL {
        let count: u64 = (0..reader.geometry().max_workers)
            .filter_map(|w| reader.drop_counters(w).ok())
            .filter_map(|d| d.get(*reason as usize))
            // Relaxed: statistics.
            .map(|c| c.load(Ordering::Relaxed))
            .sum();
        out.insert(reason.name().to_owned(), count);
    }
    Ok(out)
}

/// How long the driver thread may take to hand over the established sessions.
fn setup_wait(config: &LacConfig) -> Duration {
    config.setup_timeout + Duration::from_secs(30)
}

/// Runs the lab; see the module documentation.
pub fn lab(spec: &LabSpec, stop: &AtomicBool) -> io::Result<LabResult> {
    let release = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<io::Result<(Report, SessionList)>>();
    std::thread::scope(|scope| {
        let release = &release;
        let driver = scope.spawn(move || -> io::Result<Report> {
            let mut driver = match LacDriver::bind(spec.lac.clone()) {
                Ok(d) => d,
                Err(e) => {
                    let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                    return Err(e);
                }
            };
            let established = driver.establish().and_then(|_| driver.established());
            match established {
                Ok(list) => {
                    let _ = tx.send(Ok((driver.report(), list)));
                }
                Err(e) => {
                    let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                    return Err(e);
                }
            }
            // The traffic's progress line owns the terminal from now on.
            driver.set_progress(false);
            // Held until released: a year is "until released".
            let until = Instant::now() + Duration::from_secs(365 * 86_400);
            driver.hold(until, release, spec.churn)?;
            driver.teardown(Teardown::CdnThenStopCcn)?;
            Ok(driver.report())
        });
        let handed = rx
            .recv_timeout(setup_wait(&spec.lac))
            .map_err(|_| io::Error::other("the emulator did not finish its setup"))
            .and_then(|r| r);
        let (setup, list) = match handed {
            Ok(v) => v,
            Err(e) => {
                // Relaxed: a flag polled by the driver's loop.
                release.store(true, Ordering::Relaxed);
                let _ = driver.join();
                return Err(e);
            }
        };
        if let Some(path) = &spec.sessions_out {
            list.save(path)?;
        }
        let sessions = list.sessions.len();
        let drops_before = spec.shm.as_deref().map(dataplane_drops).transpose()?;
        let traffic = if stop.load(Ordering::Relaxed) {
            Err(io::Error::other("interrupted"))
        } else {
            run_traffic(spec, list.clone())
        };
        if let (Some(path), Ok((_, per_session))) = (&spec.counts_out, &traffic) {
            session_counts(&list, per_session).save(path)?;
        }
        let traffic = traffic.map(|(report, _)| report);
        if spec.shm.is_some() {
            // The workers add the kernel's drops once per interval: wait for the last.
            std::thread::sleep(
                Duration::from_nanos(xlns_dataplane::worker::KERNEL_STATS_EVERY_NS)
                    + Duration::from_millis(200),
            );
        }
        let drops_after = spec.shm.as_deref().map(dataplane_drops).transpose()?;
        let dataplane_drops = drops_before.zip(drops_after).map(|(before, after)| {
            after
                .into_iter()
                .map(|(k, v)| {
                    let b = before.get(&k).copied().unwrap_or(0);
                    (k, v.saturating_sub(b))
                })
                .collect()
        });
        let (traffic, traffic_error) = match traffic {
            Ok(t) => (Some(t), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let mut result = LabResult {
            setup,
            sessions,
            traffic,
            traffic_error,
            dataplane_drops,
            end: None,
        };
        print!("{}", result.summary());
        for hint in &spec.hints {
            println!("  {hint}");
        }
        let _ = io::Write::flush(&mut io::stdout());
        if spec.keep && result.traffic.is_some() {
            eprintln!(
                "keeping the sessions up (LCP echoes answered); Ctrl-C to tear down and clean up"
            );
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        release.store(true, Ordering::Relaxed);
        let end = driver
            .join()
            .map_err(|_| io::Error::other("the emulator thread panicked"))??;
        result.end = Some(end);
        print!("{}", result.end_summary());
        Ok(result)
    })
}

/// Every session's counts each way (up, down), in the order of `list`.
type PerSession = Vec<(SessionCount, SessionCount)>;

fn session_counts(list: &SessionList, per_session: &PerSession) -> Counts {
    Counts {
        sessions: list
            .sessions
            .iter()
            .zip(per_session)
            .map(|(s, (up, down))| SessionCounts {
                tunnel_id: s.tunnel_id,
                session_id: s.session_id,
                subscriber: s.subscriber,
                up: *up,
                down: *down,
            })
            .collect(),
    }
}

/// Adds a run's per-session counts to `sum`.
fn add_counts(sum: &mut PerSession, report: &TrafficReport) {
    let none = Vec::new();
    let up = report.up.as_ref().map_or(&none, |d| &d.per_session);
    let down = report.down.as_ref().map_or(&none, |d| &d.per_session);
    for (i, (u, d)) in sum.iter_mut().enumerate() {
        if let Some(x) = up.get(i) {
            u.add(x);
        }
        if let Some(x) = down.get(i) {
            d.add(x);
        }
    }
}

/// The main run's report, and every session's counts over the warm-up and the main run.
fn run_traffic(spec: &LabSpec, list: SessionList) -> io::Result<(TrafficReport, PerSession)> {
    if list.sessions.is_empty() {
        return Err(io::Error::other("no session came up"));
    }
    let list_len = list.sessions.len();
    // The rig's sockets and the generator in a thread of their own, pinned.
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                if let Some(cpu) = spec.cpu {
                    pin_to(cpu)?;
                }
                let mut rig = Rig::open(
                    &SideSpec {
                        netns: None,
                        ifname: spec.lac_if.clone(),
                    },
                    &SideSpec {
                        netns: spec.core_netns.clone(),
                        ifname: spec.core_if.clone(),
                    },
                    list.sessions,
                    spec.lns_access_mac,
                    spec.lns_core_mac,
                    spec.server,
                )?;
                let mut per_session = vec![Default::default(); list_len];
                // A short warm-up: the first frames of a fresh socket meet cold caches
                // and empty fill rings; they are not what the lab measures (but the
                // LNS accounts for them).
                let warm_up = rig.run(&RunSpec {
                    rate_pps: Some(spec.run.rate_pps.unwrap_or(10_000.0).min(10_000.0)),
                    duration: Duration::from_millis(200),
                    drain: Duration::from_millis(100),
                    progress: false,
                    ..spec.run
                })?;
                add_counts(&mut per_session, &warm_up);
                let report = rig.run(&spec.run)?;
                add_counts(&mut per_session, &report);
                Ok((report, per_session))
            })
            .join()
            .map_err(|_| io::Error::other("the traffic thread panicked"))?
    })
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn direction_line(name: &str, d: &DirReport) -> String {
    format!(
        "  {name:<11} sent {:>10}  forwarded {:>10}  {:>10.0} pps  lost {} ({:.4} %, {} sessions)  \
         latency us p50 {:.1} p99 {:.1} p99.9 {:.1} max {:.1}\n",
        d.sent,
        d.received,
        d.rx_pps,
        d.lost,
        d.loss_ratio * 100.0,
        d.sessions_with_loss,
        d.latency.p50_us,
        d.latency.p99_us,
        d.latency.p999_us,
        d.latency.max_us
    )
}

impl LabResult {
    /// Every session came up and the traffic ran.
    pub fn ok(&self) -> bool {
        self.setup.session_failures == 0
            && self.setup.tunnel_failures == 0
            && self.setup.sessions_up == self.setup.sessions_requested
            && self.traffic.is_some()
    }

    /// The human summary.
    pub fn summary(&self) -> String {
        let s = &self.setup;
        let mut out = String::from("=== xlns lab summary\n");
        let auth = s.ppp.as_ref().map_or("no PPP".to_owned(), |p| {
            format!(
                "{}{}",
                p.auth.label(),
                if p.proxy { ", proxy LCP/auth" } else { "" }
            )
        });
        out.push_str(&format!(
            "  sessions    {}/{} up over {}/{} tunnels ({auth}), {} failed, in {:.2} s: {:.0} sessions/s\n",
            s.sessions_up,
            s.sessions_requested,
            s.tunnels_up,
            s.tunnels_requested,
            s.session_failures + s.tunnel_failures,
            s.setup_secs,
            s.sessions_per_sec,
        ));
        out.push_str(&format!(
            "  setup ms    p50/p99: tunnel {:.2}/{:.2}  ICRQ->ICCN {:.2}/{:.2}",
            ms(s.tunnel_setup.p50_us),
            ms(s.tunnel_setup.p99_us),
            ms(s.session_setup.p50_us),
            ms(s.session_setup.p99_us),
        ));
        if let Some(p) = &s.ppp {
            out.push_str(&format!(
                "  LCP {:.2}/{:.2}  auth {:.2}/{:.2}  IPCP {:.2}/{:.2}  total {:.2}/{:.2}",
                ms(p.lcp.p50_us),
                ms(p.lcp.p99_us),
                ms(p.authentication.p50_us),
                ms(p.authentication.p99_us),
                ms(p.ipcp.p50_us),
                ms(p.ipcp.p99_us),
                ms(p.total.p50_us),
                ms(p.total.p99_us),
            ));
        }
        out.push('\n');
        if !s.setup_timeline.is_empty() {
            out.push_str(&format!(
                "  setup rate  sessions up per second: {:?}\n",
                s.setup_timeline
            ));
        }
        match (&self.traffic, &self.traffic_error) {
            (Some(t), _) => {
                out.push_str(&format!(
                    "  traffic     {} sessions, {:.1} s, {}-octet packets, {} per direction\n",
                    t.sessions,
                    t.duration_s,
                    t.size,
                    t.rate_pps
                        .map_or("as fast as possible".to_owned(), |r| format!("{r:.0} pps")),
                ));
                if let Some(d) = &t.up {
                    out.push_str(&direction_line("upstream", d));
                }
                if let Some(d) = &t.down {
                    out.push_str(&direction_line("downstream", d));
                }
                out.push_str(&format!(
                    "  sink        kernel drops at the generator's sockets: {}\n",
                    t.sink_kernel_drops
                ));
            }
            (None, Some(e)) => out.push_str(&format!("  traffic     did not run: {e}\n")),
            (None, None) => {}
        }
        if let Some(drops) = &self.dataplane_drops {
            let total: u64 = drops.values().sum();
            let nonzero: BTreeMap<&String, &u64> = drops.iter().filter(|(_, v)| **v > 0).collect();
            let kernel = crate::fwbench::kernel_drops(drops);
            out.push_str(&format!(
                "  drops       xlns-dataplane during the traffic: {total} (kernel, at its \
                 AF_XDP sockets: {kernel}) {nonzero:?}\n"
            ));
        }
        out
    }

    /// The lines about the hold and the teardown (once the run ended).
    pub fn end_summary(&self) -> String {
        let mut out = String::new();
        let Some(e) = &self.end else {
            return out;
        };
        if let Some(p) = &e.ppp {
            out.push_str(&format!(
                "  keepalive   LCP echo requests answered: {}\n",
                p.echo_requests_answered
            ));
        }
        if let Some(t) = &e.teardown {
            out.push_str(&format!(
                "  teardown    {:.2} s{}; PPP down {:?}, L2TP sessions down {:?}\n",
                t.secs,
                if t.complete { "" } else { " (INCOMPLETE)" },
                e.ppp
                    .as_ref()
                    .map(|p| p.down_reasons.clone())
                    .unwrap_or_default(),
                e.session_down_reasons,
            ));
        }
        out
    }
}

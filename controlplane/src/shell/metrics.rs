//! Telemetry of the shell and its Prometheus `/metrics` endpoint (issue #8).
//!
//! # Contract
//!
//! * [`Telemetry`] lives in the control task. It is fed by the control task only: the
//!   [`Recorder`] around the gate (SCCRQ and ICRQ admission times), the endpoint's events
//!   and the PPP notes ([`super::ppp::PppNote`]). It keeps one small record per session
//!   (times of each setup phase, user, address) and the setup latency histograms.
//! * Once per second the control task builds a [`Snapshot`] (plain data) and publishes it
//!   on a `watch` channel; the HTTP task ([`serve`]) renders the latest snapshot with
//!   `prometheus-client` and never touches protocol state.
//! * Labels are bounded: tunnel and session state names, LAC policy names, pool names,
//!   phase names, result codes, reason labels, worker numbers. No per-session or
//!   per-tunnel label.
//! * Control-channel totals (retransmissions, duplicates, out of window, bad Nr) are the
//!   sums over live tunnels plus what tunnels that were freed had at the last snapshot
//!   before they went (a freed tunnel's increments after that snapshot are lost).
//! * Control-channel window and round trip by LAC: the sum and minimum of the live
//!   tunnels' congestion windows, the largest and mean smoothed round trip (SRTT) of those
//!   that measured one (Karn's rule is the transport's), at each snapshot.
//! * Data-plane traffic (`dataplane_packets`, `dataplane_bytes` by worker and direction):
//!   the subscriber IP packets (and their octets) each worker forwarded, the sum of the
//!   worker's counter column over every slot of the segment ([`super::mgmt::worker_traffic`]).
//!   Columns are never zeroed, so the totals only grow while the segment exists (it
//!   outlives an xlnsd restart, as `dataplane_drops` does); a new segment starts at zero,
//!   which Prometheus handles as a counter reset.
//! * RADIUS client health by `kind` (`auth`, `acct`): retransmissions, server timeouts,
//!   failovers and servers marked dead are the running totals of the client tasks
//!   ([`crate::radius::client::Totals`]; a client replaced on SIGHUP keeps counting into
//!   the same totals). `radius_round_trip_seconds` is request to verified answer of the
//!   requests some server answered (retransmissions and failovers included).

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::debug;

use crate::l2tp::endpoint::{
    Gatekeeper, SessionDecision, SessionDownReason, SessionKey, TunnelDecision, TunnelId,
    TunnelRequest,
};
use crate::l2tp::session::SessionState;
use crate::l2tp::transport;
use crate::l2tp::tunnel::TunnelState;
use crate::ppp::session::Phase;
use crate::radius::client::Totals;

use super::Shell;
use super::ppp::PppNote;

/// Upper bounds (seconds) of the setup latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Setup phases with a latency histogram.
pub const PHASES: [&str; 5] = ["sccrq_scccn", "icrq_iccn", "lcp", "auth", "ipcp"];

/// A fixed-bucket histogram (cumulative counts are computed when encoding).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Observations per bucket of [`LATENCY_BUCKETS`], the last one past the largest bound.
    pub buckets: [u64; LATENCY_BUCKETS.len() + 1],
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    /// Counts one observation.
    pub fn observe(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[i] += 1;
        self.sum += s;
        self.count += 1;
    }
}

/// What the telemetry knows of one session.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    /// ICRQ admitted.
    pub icrq_at: Instant,
    /// ICCN accepted (L2TP established).
    pub iccn_at: Option<Instant>,
    /// PPP phase now.
    pub phase: Phase,
    /// When the current phase was entered.
    pub phase_at: Option<Instant>,
    /// IPCP up.
    pub up_at: Option<Instant>,
    pub user: Option<String>,
    pub address: Option<Ipv4Addr>,
}

/// Counters and per-session records kept by the control task.
#[derive(Debug, Default)]
pub struct Telemetry {
    tunnel_setup: HashMap<TunnelId, Instant>,
    /// Every session admitted and not yet down.
    pub sessions: BTreeMap<SessionKey, SessionRecord>,
    latency: [Histogram; 5],
    /// CDNs by (direction, result code).
    cdn: BTreeMap<(&'static str, u16), u64>,
    /// PPP sessions down by reason label.
    ppp_down: BTreeMap<&'static str, u64>,
    /// Transport counters of freed tunnels, and of live ones at the last snapshot.
    retired: transport::Stats,
    last_transport: HashMap<TunnelId, transport::Stats>,
}

/// Send windows and round trips of the live tunnels of one LAC.
#[derive(Debug, Default)]
struct WindowByLac {
    cwnd_sum: u32,
    cwnd_min: Option<u16>,
    srtt_sum: Duration,
    srtt_count: u32,
    srtt_max: Option<Duration>,
}

impl WindowByLac {
    fn add(&mut self, s: &transport::Stats) {
        self.cwnd_sum += u32::from(s.cwnd);
        self.cwnd_min = Some(self.cwnd_min.map_or(s.cwnd, |m| m.min(s.cwnd)));
        if let Some(srtt) = s.srtt {
            self.srtt_sum += srtt;
            self.srtt_count += 1;
            self.srtt_max = Some(self.srtt_max.map_or(srtt, |m| m.max(srtt)));
        }
    }
}

fn add_transport(into: &mut transport::Stats, s: &transport::Stats) {
    into.retransmissions += s.retransmissions;
    into.duplicates += s.duplicates;
    into.out_of_window += s.out_of_window;
    into.bad_nr += s.bad_nr;
    into.timeouts += s.timeouts;
}

impl Telemetry {
    /// A tunnel came up: SCCRQ -> SCCCN latency.
    pub fn tunnel_up(&mut self, now: Instant, tunnel: TunnelId) {
        if let Some(at) = self.tunnel_setup.remove(&tunnel) {
            self.latency[0].observe(now.saturating_duration_since(at));
        }
    }

    /// A tunnel went down.
    pub fn tunnel_down(&mut self, tunnel: TunnelId) {
        self.tunnel_setup.remove(&tunnel);
    }

    /// A session came up (ICCN): ICRQ -> ICCN latency.
    pub fn session_up(&mut self, now: Instant, key: SessionKey) {
        if let Some(r) = self.sessions.get_mut(&key) {
            self.latency[1].observe(now.saturating_duration_since(r.icrq_at));
            r.iccn_at = Some(now);
        }
    }

    /// A session went down at the L2TP level: counts its CDN, forgets it.
    pub fn session_down(&mut self, key: SessionKey, reason: &SessionDownReason) {
        self.sessions.remove(&key);
        let (direction, result) = match reason {
            SessionDownReason::PeerCdn { result, .. } => ("received", *result),
            SessionDownReason::LocalClose { result } => ("sent", *result),
            SessionDownReason::ProtocolError { result, .. } => ("sent", *result),
            SessionDownReason::SetupTimeout => ("sent", 10),
            SessionDownReason::TunnelDown => return,
        };
        *self.cdn.entry((direction, result)).or_default() += 1;
    }

    /// A PPP note: phase times, user and address, down reasons.
    pub fn ppp_note(&mut self, note: PppNote) {
        match note {
            PppNote::Phase { key, phase, at } => {
                let Some(r) = self.sessions.get_mut(&key) else {
                    return;
                };
                let since = r.phase_at.map(|p| at.saturating_duration_since(p));
                match (r.phase, phase, since) {
                    (Phase::Establish, Phase::Authenticate | Phase::Network, Some(d)) => {
                        self.latency[2].observe(d)
                    }
                    (Phase::Authenticate, Phase::Network, Some(d)) => self.latency[3].observe(d),
                    _ => {}
                }
                r.phase = phase;
                r.phase_at = Some(at);
            }
            PppNote::Up {
                key,
                user,
                address,
                at,
            } => {
                let Some(r) = self.sessions.get_mut(&key) else {
                    return;
                };
                if r.phase == Phase::Network
                    && let Some(p) = r.phase_at
                {
                    self.latency[4].observe(at.saturating_duration_since(p));
                }
                r.up_at = Some(at);
                r.user = Some(String::from_utf8_lossy(&user).into_owned());
                r.address = Some(address);
            }
            PppNote::Down { key, reason } => {
                *self.ppp_down.entry(reason).or_default() += 1;
                if let Some(r) = self.sessions.get_mut(&key) {
                    r.phase = Phase::Terminate;
                    r.address = None;
                }
            }
        }
    }

    /// The state label of session `key` for metrics and xlnsctl.
    pub fn session_state(&self, key: SessionKey, l2tp: Option<SessionState>) -> &'static str {
        match l2tp {
            Some(SessionState::Established) => {}
            Some(_) | None => return "l2tp-setup",
        }
        match self.sessions.get(&key) {
            Some(r) if r.up_at.is_some() && r.phase == Phase::Network => "up",
            Some(r) => phase_label(r.phase),
            None => "unknown",
        }
    }
}

/// The label of a PPP phase.
pub fn phase_label(phase: Phase) -> &'static str {
    match phase {
        Phase::Dead => "ppp-start",
        Phase::Establish => "lcp",
        Phase::Authenticate => "auth",
        Phase::Network => "ipcp",
        Phase::Terminate => "terminating",
    }
}

/// The label of a tunnel state.
pub fn tunnel_state_label(state: TunnelState) -> &'static str {
    match state {
        TunnelState::Idle => "idle",
        TunnelState::WaitCtlReply => "wait-ctl-reply",
        TunnelState::WaitCtlConn => "wait-ctl-conn",
        TunnelState::Established => "established",
        TunnelState::Closing => "closing",
    }
}

/// The gate with admission times recorded: what the endpoint is handed as its
/// [`Gatekeeper`].
#[derive(Debug)]
pub struct Recorder<'a> {
    pub gate: &'a mut super::gate::Gate,
    pub telemetry: &'a mut Telemetry,
}

impl Gatekeeper for Recorder<'_> {
    fn admit_tunnel(&mut self, now: Instant, req: &TunnelRequest<'_>) -> TunnelDecision {
        let decision = self.gate.admit_tunnel(now, req);
        if matches!(decision, TunnelDecision::Accept(_)) {
            self.telemetry.tunnel_setup.insert(req.tunnel, now);
        }
        decision
    }

    fn admit_session(
        &mut self,
        now: Instant,
        key: SessionKey,
        tunnel_sessions: usize,
    ) -> SessionDecision {
        let decision = self.gate.admit_session(now, key, tunnel_sessions);
        if matches!(decision, SessionDecision::Accept) {
            self.telemetry.sessions.insert(
                key,
                SessionRecord {
                    icrq_at: now,
                    iccn_at: None,
                    phase: Phase::Dead,
                    phase_at: None,
                    up_at: None,
                    user: None,
                    address: None,
                },
            );
        }
        decision
    }

    fn tunnel_closed(&mut self, tunnel: TunnelId) {
        self.telemetry.tunnel_setup.remove(&tunnel);
        self.gate.tunnel_closed(tunnel);
    }

    fn session_closed(&mut self, key: SessionKey) {
        self.telemetry.sessions.remove(&key);
        self.gate.session_closed(key);
    }
}

/// One sample: label pairs and a value.
pub type Sample = (Vec<(&'static str, String)>, f64);

/// One metric family of a snapshot.
#[derive(Debug, Clone)]
pub enum Family {
    Gauge(Vec<Sample>),
    Counter(Vec<Sample>),
    /// (labels, histogram)
    Histogram(Vec<(Vec<(&'static str, String)>, Histogram)>),
}

/// Everything `/metrics` shows, by metric name (without the `xlns_` prefix), with help.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub families: Vec<(&'static str, &'static str, Family)>,
}

fn labels(pairs: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

fn counted<K: Ord>(
    map: BTreeMap<K, u64>,
    f: impl Fn(&K) -> Vec<(&'static str, String)>,
) -> Vec<Sample> {
    map.iter().map(|(k, v)| (f(k), *v as f64)).collect()
}

impl Shell {
    /// Builds the snapshot of everything `/metrics` shows.
    pub(crate) fn snapshot(&mut self) -> Snapshot {
        let mut families = Vec::new();
        let endpoint = &self.endpoint;
        let mut tunnels_by_state: BTreeMap<&str, u64> = BTreeMap::new();
        let mut tunnels_by_lac: BTreeMap<String, u64> = BTreeMap::new();
        let mut sessions_by_lac: BTreeMap<String, u64> = BTreeMap::new();
        let mut transport_live = transport::Stats::default();
        let mut seen = HashMap::new();
        let mut window: BTreeMap<String, WindowByLac> = BTreeMap::new();
        for id in endpoint.tunnel_ids() {
            let Some(info) = endpoint.tunnel_info(id) else {
                continue;
            };
            *tunnels_by_state
                .entry(tunnel_state_label(info.state))
                .or_default() += 1;
            let lac = self.gate.tunnel_policy(id).unwrap_or("none").to_owned();
            *tunnels_by_lac.entry(lac.clone()).or_default() += 1;
            *sessions_by_lac.entry(lac.clone()).or_default() += info.sessions as u64;
            window.entry(lac).or_default().add(&info.transport);
            add_transport(&mut transport_live, &info.transport);
            seen.insert(id, info.transport);
        }
        let telemetry = &mut self.telemetry;
        for (id, stats) in telemetry.last_transport.drain() {
            if !seen.contains_key(&id) {
                add_transport(&mut telemetry.retired, &stats);
            }
        }
        telemetry.last_transport = seen;
        add_transport(&mut transport_live, &telemetry.retired);

        let mut sessions_by_state: BTreeMap<&str, u64> = BTreeMap::new();
        for key in telemetry.sessions.keys() {
            let l2tp = endpoint.session_info(*key).map(|(s, _)| s);
            *sessions_by_state
                .entry(telemetry.session_state(*key, l2tp))
                .or_default() += 1;
        }
        families.push((
            "tunnels",
            "L2TP tunnels by state.",
            Family::Gauge(counted(tunnels_by_state, |s| labels(&[("state", s)]))),
        ));
        families.push((
            "tunnels_by_lac",
            "L2TP tunnels by LAC policy.",
            Family::Gauge(counted(tunnels_by_lac, |s| labels(&[("lac", s)]))),
        ));
        families.push((
            "sessions",
            "Sessions by state (l2tp-setup, lcp, auth, ipcp, up, terminating).",
            Family::Gauge(counted(sessions_by_state, |s| labels(&[("state", s)]))),
        ));
        families.push((
            "sessions_by_lac",
            "L2TP sessions by LAC policy.",
            Family::Gauge(counted(sessions_by_lac, |s| labels(&[("lac", s)]))),
        ));
        let t = &transport_live;
        let e = endpoint.stats();
        families.push((
            "control_retransmissions",
            "Control messages retransmitted (RFC 2661 §5.8).",
            Family::Counter(vec![(vec![], t.retransmissions as f64)]),
        ));
        families.push((
            "control_duplicates",
            "Duplicate control messages received.",
            Family::Counter(vec![(vec![], t.duplicates as f64)]),
        ));
        families.push((
            "control_out_of_window",
            "Control messages dropped beyond the receive window.",
            Family::Counter(vec![(vec![], t.out_of_window as f64)]),
        ));
        families.push((
            "control_bad_nr",
            "Nr values acknowledging messages never sent.",
            Family::Counter(vec![(vec![], t.bad_nr as f64)]),
        ));
        families.push((
            "control_timeouts",
            "Control-channel retransmission timer expiries (RFC 2661 §5.8).",
            Family::Counter(vec![(vec![], t.timeouts as f64)]),
        ));
        let by_lac = |f: fn(&WindowByLac) -> Option<f64>| -> Vec<Sample> {
            window
                .iter()
                .filter_map(|(lac, w)| Some((labels(&[("lac", lac)]), f(w)?)))
                .collect()
        };
        families.push((
            "control_cwnd",
            "Sum of the live tunnels' congestion windows (RFC 2661 Appendix A), by LAC.",
            Family::Gauge(by_lac(|w| Some(f64::from(w.cwnd_sum)))),
        ));
        families.push((
            "control_cwnd_min",
            "Smallest congestion window of the live tunnels, by LAC.",
            Family::Gauge(by_lac(|w| w.cwnd_min.map(f64::from))),
        ));
        families.push((
            "control_srtt_max_seconds",
            "Largest smoothed control-channel round trip of the live tunnels, by LAC.",
            Family::Gauge(by_lac(|w| w.srtt_max.map(|d| d.as_secs_f64()))),
        ));
        families.push((
            "control_srtt_mean_seconds",
            "Mean smoothed control-channel round trip of the live tunnels that measured \
             one, by LAC.",
            Family::Gauge(by_lac(|w| {
                (w.srtt_count > 0).then(|| w.srtt_sum.as_secs_f64() / w.srtt_count as f64)
            })),
        ));
        families.push((
            "control_hellos",
            "HELLO messages by direction.",
            Family::Counter(vec![
                (labels(&[("direction", "sent")]), e.hellos_sent as f64),
                (
                    labels(&[("direction", "received")]),
                    e.hellos_received as f64,
                ),
            ]),
        ));
        families.push((
            "tunnel_auth_failures",
            "Tunnel authentication failures (RFC 2661 §5.1.1).",
            Family::Counter(vec![(vec![], e.auth_failures as f64)]),
        ));
        let mut stopccn = Vec::new();
        for (direction, counts) in [("sent", &e.stopccn_sent), ("received", &e.stopccn_received)] {
            for (code, n) in counts.iter().enumerate() {
                let code = if code == 0 {
                    "other".to_owned()
                } else {
                    code.to_string()
                };
                stopccn.push((
                    vec![("direction", direction.to_owned()), ("result", code)],
                    *n as f64,
                ));
            }
        }
        families.push((
            "stopccn",
            "StopCCN messages by direction and Result Code.",
            Family::Counter(stopccn),
        ));
        families.push((
            "cdn",
            "CDN messages by direction and Result Code.",
            Family::Counter(counted(telemetry.cdn.clone(), |(d, r)| {
                vec![("direction", (*d).to_owned()), ("result", r.to_string())]
            })),
        ));
        let ppp = self.ppp.stats();
        families.push((
            "ppp_auth_failures",
            "PPP authentication failures.",
            Family::Counter(vec![(vec![], ppp.auth_failures as f64)]),
        ));
        families.push((
            "ppp_down",
            "PPP sessions down by reason.",
            Family::Counter(counted(telemetry.ppp_down.clone(), |r| {
                labels(&[("reason", r)])
            })),
        ));
        families.push((
            "setup_latency_seconds",
            "Setup latency by phase.",
            Family::Histogram(
                PHASES
                    .iter()
                    .zip(telemetry.latency.iter())
                    .map(|(p, h)| (labels(&[("phase", p)]), h.clone()))
                    .collect(),
            ),
        ));
        let mut size = Vec::new();
        let mut used = Vec::new();
        let mut exhausted = Vec::new();
        for pool in self.ppp.pools().iter() {
            let c = pool.counters();
            let l = labels(&[("pool", pool.name())]);
            size.push((l.clone(), f64::from(c.size)));
            used.push((l.clone(), f64::from(c.used)));
            exhausted.push((l, c.exhausted as f64));
        }
        families.push(("pool_size", "Addresses in the pool.", Family::Gauge(size)));
        families.push(("pool_used", "Addresses leased.", Family::Gauge(used)));
        families.push((
            "pool_exhausted",
            "Allocations refused for want of an address.",
            Family::Counter(exhausted),
        ));
        let g = self.gate.stats();
        families.push((
            "admission_refusals",
            "SCCRQs and ICRQs refused, by kind and reason.",
            Family::Counter(vec![
                (
                    vec![("kind", "tunnel".into()), ("reason", "policy".into())],
                    g.tunnels_refused_policy as f64,
                ),
                (
                    vec![("kind", "tunnel".into()), ("reason", "admission".into())],
                    g.tunnels_refused_admission as f64,
                ),
                (
                    vec![("kind", "session".into()), ("reason", "policy".into())],
                    g.sessions_refused_policy as f64,
                ),
                (
                    vec![("kind", "session".into()), ("reason", "admission".into())],
                    g.sessions_refused_admission as f64,
                ),
                (
                    vec![("kind", "tunnel".into()), ("reason", "limit".into())],
                    e.tunnels_over_limit as f64,
                ),
            ]),
        ));
        if let Some(dp) = self.ppp.dataplane() {
            let mut drops = Vec::new();
            for (worker, reason, n) in super::mgmt::worker_drops(dp.writer()) {
                drops.push((
                    vec![("worker", worker.to_string()), ("reason", reason)],
                    n as f64,
                ));
            }
            families.push((
                "dataplane_drops",
                "Data-plane drops by worker and reason.",
                Family::Counter(drops),
            ));
            let mut packets = Vec::new();
            let mut bytes = Vec::new();
            for (worker, c) in super::mgmt::worker_traffic(dp.writer()) {
                let w = worker.to_string();
                for (direction, p, b) in [
                    ("upstream", c.up_packets, c.up_bytes),
                    ("downstream", c.down_packets, c.down_bytes),
                ] {
                    let l = vec![("worker", w.clone()), ("direction", direction.to_owned())];
                    packets.push((l.clone(), p as f64));
                    bytes.push((l, b as f64));
                }
            }
            families.push((
                "dataplane_packets",
                "Subscriber IP packets forwarded by each data-plane worker (upstream: access \
                 to core), since the shared-memory segment was created.",
                Family::Counter(packets),
            ));
            families.push((
                "dataplane_bytes",
                "Octets of the subscriber IP packets forwarded by each data-plane worker.",
                Family::Counter(bytes),
            ));
        }
        families.extend(self.reload_families());
        self.radius_families(&mut families);
        if let Some(dae) = &self.dae_stats {
            families.extend(super::dae::families(&dae.borrow()));
        }
        Snapshot { families }
    }

    /// RADIUS authentication and accounting (issue #7); nothing without `[radius]`.
    fn radius_families(&self, families: &mut Vec<(&'static str, &'static str, Family)>) {
        let one = |v: u64| vec![(vec![], v as f64)];
        let mut clients = Vec::new();
        if let Some(aaa) = &self.aaa {
            clients.push(("auth", aaa.client().totals(), aaa.round_trip()));
        }
        if let Some(acct) = &self.acct {
            clients.push(("acct", acct.client().totals(), acct.round_trip()));
        }
        if !clients.is_empty() {
            let per_kind = |f: fn(&Totals) -> &AtomicU64| {
                clients
                    .iter()
                    .map(|(kind, t, _)| (labels(&[("kind", kind)]), Totals::get(f(t)) as f64))
                    .collect()
            };
            families.push((
                "radius_retransmissions",
                "RADIUS requests sent again to the same server (RFC 2865 §2.5), by kind.",
                Family::Counter(per_kind(|t| &t.retransmissions)),
            ));
            families.push((
                "radius_server_timeouts",
                "A server did not answer a request after all its transmissions, by kind.",
                Family::Counter(per_kind(|t| &t.server_timeouts)),
            ));
            families.push((
                "radius_failovers",
                "RADIUS requests moved to another server, by kind.",
                Family::Counter(per_kind(|t| &t.failovers)),
            ));
            families.push((
                "radius_servers_marked_dead",
                "RADIUS servers declared dead after consecutive timeouts, by kind.",
                Family::Counter(per_kind(|t| &t.servers_marked_dead)),
            ));
            families.push((
                "radius_round_trip_seconds",
                "Request to verified answer (retransmissions and failovers included) of the \
                 RADIUS requests some server answered, by kind.",
                Family::Histogram(
                    clients
                        .iter()
                        .map(|(kind, _, h)| (labels(&[("kind", kind)]), h.clone()))
                        .collect(),
                ),
            ));
        }
        if let Some(aaa) = &self.aaa {
            let a = aaa.stats();
            families.push((
                "radius_auth_requests",
                "Access-Requests sent (one per authentication).",
                Family::Counter(one(a.requests)),
            ));
            families.push((
                "radius_auth_answers",
                "Authentication answers by result (failure: no server answered).",
                Family::Counter(vec![
                    (labels(&[("result", "accept")]), a.accepts as f64),
                    (labels(&[("result", "reject")]), a.rejects as f64),
                    (labels(&[("result", "failure")]), a.failures as f64),
                ]),
            ));
        }
        let Some(acct) = &self.acct else {
            return;
        };
        let c = acct.core().stats();
        let s = acct.core().spool_stats();
        families.push((
            "radius_acct_records",
            "Accounting records spooled, by Acct-Status-Type.",
            Family::Counter(vec![
                (labels(&[("status", "start")]), c.starts as f64),
                (labels(&[("status", "interim-update")]), c.interims as f64),
                (labels(&[("status", "stop")]), c.stops as f64),
                (labels(&[("status", "accounting-on")]), c.ons as f64),
                (labels(&[("status", "accounting-off")]), c.offs as f64),
            ]),
        ));
        families.push((
            "radius_acct_requests",
            "Accounting-Requests sent (each sending of a record).",
            Family::Counter(one(c.requests)),
        ));
        families.push((
            "radius_acct_responses",
            "Accounting-Responses (records acknowledged).",
            Family::Counter(one(c.responses)),
        ));
        families.push((
            "radius_acct_unencodable",
            "Accounting records dropped because they cannot be encoded.",
            Family::Counter(one(c.unencodable)),
        ));
        families.push((
            "radius_acct_timeouts",
            "Sendings of a record that no accounting server answered.",
            Family::Counter(one(c.timeouts)),
        ));
        families.push((
            "radius_acct_spool_depth",
            "Accounting records in the spool, not acknowledged yet.",
            Family::Gauge(one(s.depth)),
        ));
        families.push((
            "radius_acct_spool_bytes",
            "Bytes of the accounting records in the spool.",
            Family::Gauge(one(s.bytes)),
        ));
        families.push((
            "radius_acct_spool_full",
            "1 while the accounting spool refuses records (alarm).",
            Family::Gauge(one(u64::from(s.full))),
        ));
        families.push((
            "radius_acct_spool_dropped",
            "Accounting records refused because the spool was full.",
            Family::Counter(one(s.dropped)),
        ));
        families.push((
            "radius_acct_spool_io_errors",
            "Spool writes or syncs that failed (records then live in memory only).",
            Family::Counter(one(s.io_errors)),
        ));
    }
}

#[derive(Debug)]
struct Collector(Arc<Snapshot>);

struct Labels<'a>(&'a [(&'static str, String)]);

impl prometheus_client::encoding::EncodeLabelSet for Labels<'_> {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::LabelSetEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeLabel;
        for (k, v) in self.0 {
            (*k, v.as_str()).encode(encoder.encode_label())?;
        }
        Ok(())
    }
}

impl prometheus_client::collector::Collector for Collector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;
        for (name, help, family) in &self.0.families {
            match family {
                Family::Gauge(samples) => {
                    let mut m = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
                    for (l, v) in samples {
                        ConstGauge::new(*v).encode(m.encode_family(&Labels(l))?)?;
                    }
                }
                Family::Counter(samples) => {
                    let mut m = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
                    for (l, v) in samples {
                        ConstCounter::new(*v).encode(m.encode_family(&Labels(l))?)?;
                    }
                }
                Family::Histogram(samples) => {
                    let mut m =
                        encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
                    for (l, h) in samples {
                        let mut cumulative = 0;
                        let buckets: Vec<(f64, u64)> = LATENCY_BUCKETS
                            .iter()
                            .copied()
                            .chain([f64::MAX])
                            .zip(h.buckets.iter())
                            .map(|(b, n)| {
                                cumulative += n;
                                (b, cumulative)
                            })
                            .collect();
                        m.encode_family(&Labels(l))?
                            .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                                h.sum, h.count, &buckets, None,
                            )?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The Prometheus text exposition (format 0.0.4) of `snapshot`, metric names prefixed
/// `xlns_`. `prometheus-client` writes OpenMetrics, where a counter family `x` has
/// samples `x_total`; the 0.0.4 format (what `promtool check metrics` reads) names the
/// family after its samples, so counter HELP/TYPE lines get the `_total` suffix and the
/// OpenMetrics `# EOF` line is dropped.
pub fn render(snapshot: Arc<Snapshot>) -> String {
    let mut registry = Registry::with_prefix("xlns");
    registry.register_collector(Box::new(Collector(snapshot)));
    let mut open = String::new();
    if prometheus_client::encoding::text::encode(&mut open, &registry).is_err() {
        return String::new();
    }
    let counters: std::collections::HashSet<&str> = open
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(open.len() + 64);
    for line in open.lines() {
        if line == "# EOF" {
            continue;
        }
        let header = ["# HELP ", "# TYPE "]
            .iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (*p, rest)));
        match header {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                if counters.contains(name) {
                    out.push_str(&format!("{prefix}{name}_total {tail}"));
                } else {
                    out.push_str(line);
                }
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// Serves `GET /metrics` (HTTP/1.1, one request per connection) from the latest snapshot.
pub async fn serve(listener: TcpListener, snapshots: watch::Receiver<Arc<Snapshot>>) {
    loop {
        let Ok((mut stream, peer)) = listener.accept().await else {
            continue;
        };
        let snapshot = snapshots.borrow().clone();
        tokio::spawn(async move {
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            // Read the request head (bounded), then answer.
            while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
                match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => request.extend_from_slice(&buf[..n]),
                    _ => return,
                }
            }
            let head = String::from_utf8_lossy(&request);
            let path = head.split_whitespace().nth(1).unwrap_or("");
            let (status, body, kind) = if head.starts_with("GET ") && path == "/metrics" {
                (
                    "200 OK",
                    render(snapshot),
                    "text/plain; version=0.0.4; charset=utf-8",
                )
            } else {
                ("404 Not Found", "not found\n".to_owned(), "text/plain")
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            if let Err(e) = stream.write_all(response.as_bytes()).await {
                debug!(%peer, error = %e, "metrics response");
            }
            let _ = stream.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    fn stats(cwnd: u16, srtt_ms: Option<u64>) -> transport::Stats {
        transport::Stats {
            cwnd,
            srtt: srtt_ms.map(Duration::from_millis),
            ..transport::Stats::default()
        }
    }

    #[test]
    fn window_by_lac_sums_windows_and_round_trips_of_measured_tunnels() {
        let mut w = WindowByLac::default();
        w.add(&stats(4, Some(10)));
        w.add(&stats(1, None));
        w.add(&stats(8, Some(30)));
        assert_eq!(w.cwnd_sum, 13);
        assert_eq!(w.cwnd_min, Some(1));
        assert_eq!(w.srtt_count, 2);
        assert_eq!(w.srtt_sum, Duration::from_millis(40));
        assert_eq!(w.srtt_max, Some(Duration::from_millis(30)));
    }
}

//! `forwarding-bench`: the forwarding comparison of issue #6 in one self-contained run.
//!
//! ```text
//!  ns lac: lac0 10.1.0.1 ──veth── acc0 10.1.0.2  ns lns  core0 10.2.0.1 ──veth── srv0 10.2.0.2 ns srv
//!  generator+sink (core 1)        (a) bare forwarder, then (b) xlns-dataplane (core 0)
//! ```
//!
//! Creates the three namespaces (1 RX / 1 TX queue on every veth, TX checksum offload off
//! on the senders, MTU 1600 on the access link so that a 1500-octet packet fits in L2TP;
//! a guard deletes them, also on a panic), writes the session list, opens the generator
//! rig once, then for (a) the bare forwarder (`xlns-bench forwarder`, a child process in
//! the lns namespace) and (b) `xlns-dataplane` with the sessions published through
//! `xlns_dataplane::shm::Writer`, runs the same traffic upstream, downstream and both,
//! and reports the ratios xlns / bare of the forwarded packet rates, with xlns-dataplane's
//! drops during each run (its shared-memory drop counters, the kernel's drops at its
//! AF_XDP sockets, the `xsk-*` reasons, included).
//!
//! [`scaling_bench`] (`--sessions 1000,100000`): several session counts in one run, on
//! the same veths, the same generator rig and the same xlns-dataplane flags and segment
//! geometry (sized for the largest count). Each count has its own segment holding the
//! first N sessions of one synthetic list; the rig sends for those N. The counts are
//! interleaved, `--repeat` rounds, alternating their order (1k 100k, 100k 1k, ...: drift
//! on a noisy machine falls on both alike), the data plane (and the bare forwarder,
//! unless skipped) restarted for each count; the median per count and direction gives
//! the ratios to the first count, one JSON line per direction. The bare forwarder's own
//! ratios say how much of a change the rig itself (generator, sink, the kernel's prefix
//! lookup in the core XDP program, which it shares with the data plane) accounts for.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use serde::Serialize;
use xlns_dataplane::fastpath::{DropReason, build_template};
use xlns_dataplane::shm::{Geometry, Writer};
use xlns_dataplane::wire::EthernetAddress;
use xlns_dataplane::worker::{KERNEL_DROP_REASONS, KERNEL_STATS_EVERY_NS};

use crate::traffic::search::{SearchResult, SearchSpec, search};
use crate::traffic::{
    Direction, Rig, RunSpec, SessionList, SideSpec, Sizes, TrafficReport, pin_to,
};

type BoxError = Box<dyn std::error::Error>;

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub sessions: u32,
    pub tunnels: u16,
    pub sizes: Sizes,
    pub duration: Duration,
    /// Per direction; `None`: as fast as possible.
    pub rate_pps: Option<f64>,
    pub directions: Vec<Direction>,
    /// The xlns-dataplane binary.
    pub dataplane: PathBuf,
    /// This binary (for the forwarder child).
    pub bench: PathBuf,
    pub lns_cpu: usize,
    pub gen_cpu: usize,
    /// Skip the bare forwarder (phase a).
    pub skip_bare: bool,
    /// After each direction's run, an RFC 2544 zero-loss search (`max_pps` 0: the run's
    /// offered rate).
    pub search: Option<SearchSpec>,
}

const LAC: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
const LNS: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 2);
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 2);
const FIRST_SUBSCRIBER: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 1);
const GATEWAY: &str = "100.127.255.254";

fn run(cmd: &mut Command) -> Result<String, BoxError> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr).trim()).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn ip(ns: &str, args: &[&str]) -> Result<String, BoxError> {
    run(Command::new("ip").arg("-n").arg(ns).args(args))
}

fn exec(ns: &str, args: &[&str]) -> Result<String, BoxError> {
    run(Command::new("ip").args(["netns", "exec", ns]).args(args))
}

fn mac_of(ns: &str, ifname: &str) -> Result<[u8; 6], BoxError> {
    let out = ip(ns, &["-o", "link", "show", "dev", ifname])?;
    let at = out.find("link/ether ").ok_or("no link/ether")? + "link/ether ".len();
    let mac = out.get(at..at + 17).ok_or("short link line")?;
    Ok(xlns_dataplane::worker::host::parse_mac(mac)
        .ok_or("bad MAC")?
        .0)
}

fn mac_text(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The three namespaces and what runs in them; torn down on drop.
#[derive(Debug)]
pub struct Topology {
    pub lac: String,
    pub lns: String,
    pub srv: String,
    pub lac_mac: [u8; 6],
    pub acc_mac: [u8; 6],
    pub core_mac: [u8; 6],
    pub srv_mac: [u8; 6],
    child: Option<Child>,
    files: Vec<PathBuf>,
}

impl Drop for Topology {
    fn drop(&mut self) {
        self.stop_child();
        for ns in [&self.lac, &self.lns, &self.srv] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}

impl Topology {
    pub fn create() -> Result<Topology, BoxError> {
        let tag = std::process::id();
        let mut t = Topology {
            lac: format!("xb-lac-{tag}"),
            lns: format!("xb-lns-{tag}"),
            srv: format!("xb-srv-{tag}"),
            lac_mac: [0; 6],
            acc_mac: [0; 6],
            core_mac: [0; 6],
            srv_mac: [0; 6],
            child: None,
            files: Vec::new(),
        };
        for ns in [&t.lac, &t.lns, &t.srv] {
            run(Command::new("ip").args(["netns", "add", ns]))?;
            ip(ns, &["link", "set", "lo", "up"])?;
        }
        let pairs = [
            (
                &t.lac,
                "lac0",
                "10.1.0.1/24",
                &t.lns,
                "acc0",
                "10.1.0.2/24",
                "1600",
            ),
            (
                &t.lns,
                "core0",
                "10.2.0.1/24",
                &t.srv,
                "srv0",
                "10.2.0.2/24",
                "1500",
            ),
        ];
        for (ns_a, a, addr_a, ns_b, b, addr_b, mtu) in pairs {
            ip(
                ns_a,
                &[
                    "link", "add", a, "type", "veth", "peer", "name", b, "netns", ns_b,
                ],
            )?;
            for (ns, end, addr) in [(ns_a, a, addr_a), (ns_b, b, addr_b)] {
                exec(ns, &["ethtool", "-L", end, "rx", "1", "tx", "1"])?;
                ip(ns, &["link", "set", end, "mtu", mtu])?;
                ip(ns, &["addr", "add", addr, "dev", end])?;
                ip(ns, &["link", "set", end, "up"])?;
            }
        }
        // The senders hand the veth complete checksums (../shared/afxdp-notes.md).
        exec(&t.lac, &["ethtool", "-K", "lac0", "tx", "off"])?;
        exec(&t.srv, &["ethtool", "-K", "srv0", "tx", "off"])?;
        t.lac_mac = mac_of(&t.lac, "lac0")?;
        t.acc_mac = mac_of(&t.lns, "acc0")?;
        t.core_mac = mac_of(&t.lns, "core0")?;
        t.srv_mac = mac_of(&t.srv, "srv0")?;
        Ok(t)
    }

    /// Start `program args` in the lns namespace; wait for a stdout line containing
    /// "ready"; later lines go to stderr.
    fn start_child(&mut self, program: &Path, args: &[String]) -> Result<(), BoxError> {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.lns])
            .arg(program)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{}: {e}", program.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains("ready") {
                    let _ = tx.send(());
                }
                eprintln!("  [lns] {line}");
            }
        });
        self.child = Some(child);
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let status = self.child.as_mut().map(|c| c.try_wait());
            return Err(format!("{} not ready in 60 s ({status:?})", program.display()).into());
        }
        Ok(())
    }

    fn stop_child(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: signalling our own child by its pid.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
    }
}

/// One direction's comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub direction: Direction,
    pub bare_pps: Option<f64>,
    pub xlns_pps: f64,
    pub ratio: Option<f64>,
    pub xlns_lost: u64,
    pub xlns_p50_us: f64,
    pub xlns_p99_us: f64,
    /// xlns-dataplane's drops during the run, by reason (non-zero only).
    pub xlns_drops: BTreeMap<String, u64>,
    /// Of these, the kernel's at the data plane's AF_XDP sockets (the `xsk-*` reasons).
    pub xlns_kernel_drops: u64,
}

/// The whole result.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub sessions: u32,
    pub tunnels: u16,
    pub size: String,
    pub rate_pps: Option<f64>,
    pub duration_s: f64,
    pub loadavg_before: String,
    pub comparisons: Vec<Comparison>,
    pub bare: Vec<TrafficReport>,
    pub xlns: Vec<TrafficReport>,
    /// xlns-dataplane's drops during each of `xlns`, by reason (non-zero only).
    pub xlns_drops: Vec<BTreeMap<String, u64>>,
    /// The RFC 2544 searches of the bare forwarder and of xlns.
    pub bare_searches: Vec<SearchResult>,
    pub xlns_searches: Vec<SearchResult>,
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn sessions_to(writer: &mut Writer, list: &SessionList, t: &Topology) -> Result<(), BoxError> {
    for s in &list.sessions {
        let mut rec = s.record();
        let (template, len) =
            build_template(&rec, EthernetAddress(t.acc_mac), EthernetAddress(t.lac_mac));
        rec.template = template;
        rec.template_len = len;
        writer.insert(&rec)?;
    }
    Ok(())
}

/// Every drop counter of worker 0's column, by reason name.
fn drop_snapshot(writer: &Writer) -> BTreeMap<String, u64> {
    let Ok(column) = writer.drop_counters(0) else {
        return BTreeMap::new();
    };
    DropReason::ALL
        .iter()
        .filter_map(|r| {
            // Relaxed: statistics.
            let n = column.get(*r as usize)?.load(Ordering::Relaxed);
            Some((r.name().to_owned(), n))
        })
        .collect()
}

/// What grew from `before` to `after`, non-zero only.
fn drop_delta(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v.saturating_sub(*before.get(k).unwrap_or(&0))))
        .filter(|(_, v)| *v > 0)
        .collect()
}

/// The kernel's drops at the data plane's sockets among `drops`.
pub fn kernel_drops(drops: &BTreeMap<String, u64>) -> u64 {
    KERNEL_DROP_REASONS
        .iter()
        .filter_map(|r| drops.get(r.name()))
        .sum()
}

/// Reports, searches, and (with a writer) the data plane's drops during each report.
type Runs = (
    Vec<TrafficReport>,
    Vec<SearchResult>,
    Vec<BTreeMap<String, u64>>,
);

fn runs(
    rig: &mut Rig,
    config: &BenchConfig,
    label: &str,
    writer: Option<&Writer>,
) -> Result<Runs, BoxError> {
    let mut out = Vec::new();
    let mut searches = Vec::new();
    let mut drops = Vec::new();
    for dir in &config.directions {
        // A short warm-up so ARP, page faults and the first fill rings are behind us.
        let warm = RunSpec {
            direction: *dir,
            sizes: config.sizes,
            rate_pps: Some(10_000.0),
            duration: Duration::from_millis(200),
            drain: Duration::from_millis(100),
            progress: false,
            stop: None,
        };
        rig.run(&warm)?;
        let spec = RunSpec {
            direction: *dir,
            sizes: config.sizes,
            rate_pps: config.rate_pps,
            duration: config.duration,
            drain: Duration::from_millis(300),
            progress: false,
            stop: None,
        };
        let before = writer.map(drop_snapshot);
        let report = rig.run(&spec)?;
        if let (Some(writer), Some(before)) = (writer, before) {
            // The workers add the kernel's drops once per interval: wait for the last.
            std::thread::sleep(
                Duration::from_nanos(KERNEL_STATS_EVERY_NS) + Duration::from_millis(200),
            );
            let during = drop_delta(&before, &drop_snapshot(writer));
            eprintln!(
                "{label:<5} drops during the run: {} (kernel, at its sockets: {}) {during:?}",
                during.values().sum::<u64>(),
                kernel_drops(&during)
            );
            drops.push(during);
        }
        eprint!("{label:<5} {}", report.table());
        if let Some(search_spec) = &config.search {
            let offered = [report.up.as_ref(), report.down.as_ref()]
                .into_iter()
                .flatten()
                .map(|d| d.tx_pps)
                .fold(0.0, f64::max);
            let max_pps = if search_spec.max_pps > 0.0 {
                search_spec.max_pps
            } else {
                offered.max(1.0)
            };
            let result = search(
                rig,
                &spec,
                *dir,
                &SearchSpec {
                    max_pps,
                    ..*search_spec
                },
            )?;
            eprintln!(
                "{label:<5} RFC 2544 {}: {}",
                dir.label(),
                result
                    .throughput_pps
                    .map_or("no rate passed".to_owned(), |r| format!(
                        "{r:.0} pps per direction"
                    ))
            );
            searches.push(result);
        }
        out.push(report);
    }
    Ok((out, searches, drops))
}

/// The packet rate a run is judged by: what arrived in its direction (both: the sum).
pub fn forwarded_pps(r: &TrafficReport) -> f64 {
    match r.direction {
        Direction::Up => r.up.as_ref().map_or(0.0, |d| d.rx_pps),
        Direction::Down => r.down.as_ref().map_or(0.0, |d| d.rx_pps),
        Direction::Both => r.rx_pps_total,
    }
}

/// The generator and sink on lac0 and srv0 for `list`, on this (pinned) thread.
fn open_rig(t: &Topology, list: &SessionList) -> Result<Rig, BoxError> {
    Ok(Rig::open(
        &SideSpec {
            netns: Some(t.lac.clone()),
            ifname: "lac0".into(),
        },
        &SideSpec {
            netns: Some(t.srv.clone()),
            ifname: "srv0".into(),
        },
        list.sessions.clone(),
        t.acc_mac,
        t.core_mac,
        SERVER,
    )?)
}

/// The bare forwarder's arguments (the subscriber prefixes of the list in `list_path`).
fn bare_args(t: &Topology, config: &BenchConfig, list_path: &Path) -> Vec<String> {
    vec![
        "forwarder".into(),
        "--a".into(),
        "acc0".into(),
        "--b".into(),
        "core0".into(),
        "--a-peer-mac".into(),
        mac_text(t.lac_mac),
        "--b-peer-mac".into(),
        mac_text(t.srv_mac),
        "--sessions".into(),
        list_path.display().to_string(),
        "--cpu".into(),
        config.lns_cpu.to_string(),
    ]
}

/// xlns-dataplane's arguments: the same for every run but the segment.
fn dataplane_args(t: &Topology, config: &BenchConfig, shm: &Path) -> Vec<String> {
    [
        "--access",
        "acc0",
        "--core",
        "core0",
        "--workers",
        "1",
        "--gateway-v4",
        GATEWAY,
        "--frames",
        "8192",
        "--bind",
        "copy",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([
        "--shm".to_owned(),
        shm.display().to_string(),
        "--cores".to_owned(),
        config.lns_cpu.to_string(),
        "--core-next-hop-mac".to_owned(),
        mac_text(t.srv_mac),
    ])
    .collect()
}

/// Run the comparison.
pub fn forwarding_bench(config: &BenchConfig) -> Result<BenchReport, BoxError> {
    let loadavg_before = loadavg();
    let mut t = Topology::create()?;
    let list = SessionList::synthetic(config.sessions, config.tunnels, LAC, LNS, FIRST_SUBSCRIBER)?;
    let list_path = std::env::temp_dir().join(format!("xb-sessions-{}.json", std::process::id()));
    list.save(&list_path)?;
    t.files.push(list_path.clone());

    pin_to(config.gen_cpu)?;
    let mut rig = open_rig(&t, &list)?;

    let mut bare = Vec::new();
    let mut bare_searches = Vec::new();
    if !config.skip_bare {
        let args = bare_args(&t, config, &list_path);
        let bench = config.bench.clone();
        t.start_child(&bench, &args)?;
        (bare, bare_searches, _) = runs(&mut rig, config, "bare", None)?;
        t.stop_child();
    }

    let shm = PathBuf::from(format!("/dev/shm/xb-fwbench-{}", std::process::id()));
    t.files.push(shm.clone());
    let mut writer = Writer::create(
        &shm,
        Geometry {
            max_sessions: config.sessions.max(1024),
            max_workers: 1,
        },
    )?;
    sessions_to(&mut writer, &list, &t)?;
    let args = dataplane_args(&t, config, &shm);
    let dataplane = config.dataplane.clone();
    t.start_child(&dataplane, &args)?;
    let (xlns, xlns_searches, xlns_drops) = runs(&mut rig, config, "xlns", Some(&writer))?;
    t.stop_child();
    drop(writer);
    drop(rig);

    let pick = forwarded_pps;
    let comparisons = xlns
        .iter()
        .zip(&xlns_drops)
        .map(|(x, drops)| {
            let b = bare.iter().find(|b| b.direction == x.direction).map(pick);
            let xp = pick(x);
            let dirs = [x.up.as_ref(), x.down.as_ref()];
            let lost = dirs.iter().flatten().map(|d| d.lost).sum();
            let worst = |f: fn(&crate::traffic::DirReport) -> f64| {
                dirs.iter().flatten().map(|d| f(d)).fold(0.0, f64::max)
            };
            Comparison {
                direction: x.direction,
                bare_pps: b,
                xlns_pps: xp,
                ratio: b.filter(|b| *b > 0.0).map(|b| xp / b),
                xlns_lost: lost,
                xlns_p50_us: worst(|d| d.latency.p50_us),
                xlns_p99_us: worst(|d| d.latency.p99_us),
                xlns_drops: drops.clone(),
                xlns_kernel_drops: kernel_drops(drops),
            }
        })
        .collect();
    Ok(BenchReport {
        sessions: config.sessions,
        tunnels: config.tunnels,
        size: config.sizes.label(),
        rate_pps: config.rate_pps,
        duration_s: config.duration.as_secs_f64(),
        loadavg_before,
        comparisons,
        bare,
        xlns,
        xlns_drops,
        bare_searches,
        xlns_searches,
    })
}

/// The bar of issue #6: forwarding with the largest count at least this share of
/// forwarding with the first.
pub const SCALING_BAR: f64 = 0.9;

/// One measured run of [`scaling_bench`].
#[derive(Debug, Clone, Serialize)]
pub struct ScalingSample {
    /// The round (0-based).
    pub round: usize,
    pub sessions: u32,
    /// "bare" or "xlns".
    pub lns: String,
    pub direction: Direction,
    /// [`forwarded_pps`].
    pub pps: f64,
    pub lost: u64,
    /// xlns-dataplane's drops during the run (xlns only; non-zero reasons).
    pub drops: BTreeMap<String, u64>,
    /// Of these, the kernel's at its AF_XDP sockets.
    pub kernel_drops: u64,
    pub loadavg: String,
}

/// One direction's result of [`scaling_bench`]: a JSON line.
#[derive(Debug, Clone, Serialize)]
pub struct ScalingLine {
    pub direction: Direction,
    /// The counts, in the order given.
    pub sessions: Vec<u32>,
    pub rounds: usize,
    /// Per count: the median of its rounds, and every round.
    pub xlns_median_pps: Vec<f64>,
    pub xlns_pps: Vec<Vec<f64>>,
    /// Per count: xlns's median over its median at the first count.
    pub ratios: Vec<f64>,
    /// The last count's ratio.
    pub ratio: f64,
    pub bar: f64,
    /// Every ratio at least [`SCALING_BAR`].
    pub meets_bar: bool,
    /// The same for the bare forwarder (absent with `--skip-bare`): what the rig itself
    /// changes with the count.
    pub bare_median_pps: Option<Vec<f64>>,
    pub bare_ratios: Option<Vec<f64>>,
    /// Per count: xlns's median over the bare forwarder's.
    pub xlns_over_bare: Option<Vec<f64>>,
    /// Per count: the kernel's drops at xlns-dataplane's sockets, all rounds.
    pub xlns_kernel_drops: Vec<u64>,
}

/// The whole result of [`scaling_bench`].
#[derive(Debug, Clone, Serialize)]
pub struct ScalingReport {
    pub sessions: Vec<u32>,
    pub tunnels: u16,
    pub size: String,
    pub rate_pps: Option<f64>,
    pub duration_s: f64,
    pub rounds: usize,
    pub loadavg_before: String,
    pub loadavg_after: String,
    pub lines: Vec<ScalingLine>,
    pub samples: Vec<ScalingSample>,
}

/// The median (the mean of the middle two for an even count); 0 for none.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The order of the counts in round `round`: as given, reversed every other round.
pub fn round_order(counts: usize, round: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..counts).collect();
    if round % 2 == 1 {
        order.reverse();
    }
    order
}

/// The lines of a scaling run from its samples.
pub fn scaling_lines(
    counts: &[u32],
    directions: &[Direction],
    rounds: usize,
    samples: &[ScalingSample],
) -> Vec<ScalingLine> {
    let of = |lns: &str, dir: Direction, n: u32| -> Vec<f64> {
        samples
            .iter()
            .filter(|s| s.lns == lns && s.direction == dir && s.sessions == n)
            .map(|s| s.pps)
            .collect()
    };
    let ratios = |medians: &[f64]| -> Vec<f64> {
        let first = medians.first().copied().unwrap_or(0.0);
        medians
            .iter()
            .map(|m| if first > 0.0 { m / first } else { 0.0 })
            .collect()
    };
    directions
        .iter()
        .map(|dir| {
            let xlns_pps: Vec<Vec<f64>> = counts.iter().map(|n| of("xlns", *dir, *n)).collect();
            let xlns_median: Vec<f64> = xlns_pps.iter().map(|v| median(v)).collect();
            let bare: Vec<Vec<f64>> = counts.iter().map(|n| of("bare", *dir, *n)).collect();
            let bare_median = bare
                .iter()
                .all(|v| !v.is_empty())
                .then(|| bare.iter().map(|v| median(v)).collect::<Vec<f64>>());
            let r = ratios(&xlns_median);
            let xlns_over_bare = bare_median.as_ref().map(|b| {
                xlns_median
                    .iter()
                    .zip(b)
                    .map(|(x, b)| if *b > 0.0 { x / b } else { 0.0 })
                    .collect()
            });
            ScalingLine {
                direction: *dir,
                sessions: counts.to_vec(),
                rounds,
                ratio: r.last().copied().unwrap_or(0.0),
                meets_bar: r.iter().all(|x| *x >= SCALING_BAR),
                bar: SCALING_BAR,
                ratios: r,
                xlns_median_pps: xlns_median,
                xlns_pps,
                bare_ratios: bare_median.as_deref().map(ratios),
                bare_median_pps: bare_median,
                xlns_over_bare,
                xlns_kernel_drops: counts
                    .iter()
                    .map(|n| {
                        samples
                            .iter()
                            .filter(|s| s.lns == "xlns" && s.direction == *dir && s.sessions == *n)
                            .map(|s| s.kernel_drops)
                            .sum()
                    })
                    .collect(),
            }
        })
        .collect()
}

/// Several session counts in one run; see the module documentation. `config.sessions`
/// is ignored; no RFC 2544 searches.
pub fn scaling_bench(
    config: &BenchConfig,
    counts: &[u32],
    rounds: usize,
) -> Result<ScalingReport, BoxError> {
    let largest = counts.iter().copied().max().ok_or("no session counts")?;
    if counts.contains(&0) || rounds == 0 {
        return Err("session counts and --repeat must be at least 1".into());
    }
    let loadavg_before = loadavg();
    let mut t = Topology::create()?;
    let list = SessionList::synthetic(largest, config.tunnels, LAC, LNS, FIRST_SUBSCRIBER)?;
    let pid = std::process::id();
    // Per count: the first N sessions, in a list file (the bare forwarder's prefixes)
    // and in a segment of the same geometry for every count.
    let mut per_count = Vec::new();
    for (i, n) in counts.iter().enumerate() {
        let sub = SessionList {
            sessions: list.sessions[..*n as usize].to_vec(),
        };
        let path = std::env::temp_dir().join(format!("xb-sessions-{pid}-{i}.json"));
        sub.save(&path)?;
        t.files.push(path.clone());
        let shm = PathBuf::from(format!("/dev/shm/xb-fwbench-{pid}-{i}"));
        t.files.push(shm.clone());
        let mut writer = Writer::create(
            &shm,
            Geometry {
                max_sessions: largest.max(1024),
                max_workers: 1,
            },
        )?;
        sessions_to(&mut writer, &sub, &t)?;
        per_count.push((path, shm, writer));
    }

    pin_to(config.gen_cpu)?;
    let mut rig = open_rig(&t, &list)?;
    let config = BenchConfig {
        search: None,
        ..config.clone()
    };
    let mut samples = Vec::new();
    for round in 0..rounds {
        for i in round_order(counts.len(), round) {
            let n = counts[i];
            let (list_path, shm, writer) = &per_count[i];
            rig.sessions = list.sessions[..n as usize].to_vec();
            let mut phases = Vec::new();
            if !config.skip_bare {
                phases.push("bare");
            }
            phases.push("xlns");
            for lns in phases {
                let label = format!("{lns} {n}");
                let (reports, _, drops) = if lns == "bare" {
                    t.start_child(&config.bench, &bare_args(&t, &config, list_path))?;
                    runs(&mut rig, &config, &label, None)?
                } else {
                    t.start_child(&config.dataplane, &dataplane_args(&t, &config, shm))?;
                    runs(&mut rig, &config, &label, Some(writer))?
                };
                t.stop_child();
                for (k, r) in reports.iter().enumerate() {
                    let drops = drops.get(k).cloned().unwrap_or_default();
                    samples.push(ScalingSample {
                        round,
                        sessions: n,
                        lns: lns.to_owned(),
                        direction: r.direction,
                        pps: forwarded_pps(r),
                        lost: [r.up.as_ref(), r.down.as_ref()]
                            .into_iter()
                            .flatten()
                            .map(|d| d.lost)
                            .sum(),
                        kernel_drops: kernel_drops(&drops),
                        drops,
                        loadavg: loadavg(),
                    });
                }
            }
        }
    }
    drop(rig);
    Ok(ScalingReport {
        lines: scaling_lines(counts, &config.directions, rounds, &samples),
        sessions: counts.to_vec(),
        tunnels: config.tunnels,
        size: config.sizes.label(),
        rate_pps: config.rate_pps,
        duration_s: config.duration.as_secs_f64(),
        rounds,
        loadavg_before,
        loadavg_after: loadavg(),
        samples,
    })
}

impl ScalingReport {
    pub fn table(&self) -> String {
        let mut out = format!(
            "session-count scaling: {:?} sessions over {} tunnels, {}-octet packets, {}, \
             {:.1} s per run, {} rounds (medians), load average before {} after {}\n",
            self.sessions,
            self.tunnels,
            self.size,
            match self.rate_pps {
                Some(r) => format!("{r:.0} pps per direction"),
                None => "as fast as possible".into(),
            },
            self.duration_s,
            self.rounds,
            self.loadavg_before,
            self.loadavg_after
        );
        out.push_str(
            "direction  sessions  xlns Mpps  ratio  bare Mpps  bare ratio  kernel drops\n",
        );
        for l in &self.lines {
            for (i, n) in l.sessions.iter().enumerate() {
                let bare = l.bare_median_pps.as_ref().and_then(|b| b.get(i));
                let bare_ratio = l.bare_ratios.as_ref().and_then(|b| b.get(i));
                out.push_str(&format!(
                    "{:<9}  {:>8}  {:>9.3}  {:>5.3}  {:>9}  {:>10}  {:>12}\n",
                    l.direction.label(),
                    n,
                    l.xlns_median_pps.get(i).copied().unwrap_or(0.0) / 1e6,
                    l.ratios.get(i).copied().unwrap_or(0.0),
                    bare.map_or("-".into(), |b| format!("{:.3}", b / 1e6)),
                    bare_ratio.map_or("-".into(), |r| format!("{r:.3}")),
                    l.xlns_kernel_drops.get(i).copied().unwrap_or(0)
                ));
            }
            out.push_str(&format!(
                "{:<9}  ratio {:.3} {} the bar {:.2}\n",
                l.direction.label(),
                l.ratio,
                if l.meets_bar { "meets" } else { "misses" },
                l.bar
            ));
        }
        out
    }
}

impl BenchReport {
    pub fn table(&self) -> String {
        let mut out = format!(
            "forwarding: {} sessions over {} tunnels, {}-octet packets, {}, {:.1} s per run, \
             load average before {}\n",
            self.sessions,
            self.tunnels,
            self.size,
            match self.rate_pps {
                Some(r) => format!("{r:.0} pps per direction"),
                None => "as fast as possible".into(),
            },
            self.duration_s,
            self.loadavg_before
        );
        out.push_str(
            "direction  bare Mpps  xlns Mpps  xlns/bare  xlns lost  p50 us  p99 us  \
             lns drops (kernel)\n",
        );
        for c in &self.comparisons {
            out.push_str(&format!(
                "{:<9}  {:>9}  {:>9.3}  {:>9}  {:>9}  {:>6.1}  {:>6.1}  {} ({})\n",
                c.direction.label(),
                c.bare_pps.map_or("-".into(), |b| format!("{:.3}", b / 1e6)),
                c.xlns_pps / 1e6,
                c.ratio.map_or("-".into(), |r| format!("{r:.3}")),
                c.xlns_lost,
                c.xlns_p50_us,
                c.xlns_p99_us,
                c.xlns_drops.values().sum::<u64>(),
                c.xlns_kernel_drops
            ));
        }
        for (label, searches) in [("bare", &self.bare_searches), ("xlns", &self.xlns_searches)] {
            for s in searches {
                out.push_str(&format!(
                    "{label:<5} {:<5} RFC 2544 zero-loss {} ({} trials of {:.1} s)\n",
                    s.direction.label(),
                    s.throughput_pps
                        .map_or("none".to_owned(), |r| format!("{r:.0} pps per direction")),
                    s.trials.len(),
                    s.trial_s
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn medians_and_orders() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(round_order(2, 0), [0, 1]);
        assert_eq!(round_order(2, 1), [1, 0]);
        assert_eq!(round_order(3, 2), [0, 1, 2]);
    }

    fn sample(lns: &str, sessions: u32, round: usize, pps: f64) -> ScalingSample {
        ScalingSample {
            round,
            sessions,
            lns: lns.into(),
            direction: Direction::Up,
            pps,
            lost: 0,
            drops: BTreeMap::new(),
            kernel_drops: u64::from(sessions == 100),
            loadavg: String::new(),
        }
    }

    #[test]
    fn lines_take_medians_and_ratios_to_the_first_count() {
        let samples = [
            sample("xlns", 10, 0, 100.0),
            sample("xlns", 100, 0, 80.0),
            sample("xlns", 100, 1, 95.0),
            sample("xlns", 10, 1, 120.0),
            sample("xlns", 10, 2, 110.0),
            sample("xlns", 100, 2, 99.0),
            sample("bare", 10, 0, 200.0),
            sample("bare", 100, 0, 180.0),
        ];
        let lines = scaling_lines(&[10, 100], &[Direction::Up], 3, &samples);
        let l = &lines[0];
        assert_eq!(l.xlns_median_pps, [110.0, 95.0]);
        assert_eq!(
            l.xlns_pps,
            [vec![100.0, 120.0, 110.0], vec![80.0, 95.0, 99.0]]
        );
        assert_eq!(l.ratios, [1.0, 95.0 / 110.0]);
        assert_eq!(l.ratio, 95.0 / 110.0);
        assert!(!l.meets_bar, "0.864 is below 0.9");
        assert_eq!(l.bare_ratios.as_deref(), Some(&[1.0, 0.9][..]));
        assert_eq!(
            l.xlns_over_bare.as_deref(),
            Some(&[110.0 / 200.0, 95.0 / 180.0][..])
        );
        assert_eq!(l.xlns_kernel_drops, [0, 3]);

        let better = [sample("xlns", 10, 0, 100.0), sample("xlns", 100, 0, 90.0)];
        let l = &scaling_lines(&[10, 100], &[Direction::Up], 1, &better)[0];
        assert!(l.meets_bar);
        assert!(l.bare_median_pps.is_none() && l.xlns_over_bare.is_none());
    }
}

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
//! and reports the ratios xlns / bare of the forwarded packet rates.

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde::Serialize;
use xlns_dataplane::fastpath::build_template;
use xlns_dataplane::shm::{Geometry, Writer};
use xlns_dataplane::wire::EthernetAddress;

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

type Runs = (Vec<TrafficReport>, Vec<SearchResult>);

fn runs(rig: &mut Rig, config: &BenchConfig, label: &str) -> Result<Runs, BoxError> {
    let mut out = Vec::new();
    let mut searches = Vec::new();
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
        let report = rig.run(&spec)?;
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
    Ok((out, searches))
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
    let mut rig = Rig::open(
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
    )?;

    let mut bare = Vec::new();
    let mut bare_searches = Vec::new();
    if !config.skip_bare {
        let args: Vec<String> = vec![
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
        ];
        let bench = config.bench.clone();
        t.start_child(&bench, &args)?;
        (bare, bare_searches) = runs(&mut rig, config, "bare")?;
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
    let args: Vec<String> = [
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
    .collect();
    let dataplane = config.dataplane.clone();
    t.start_child(&dataplane, &args)?;
    let (xlns, xlns_searches) = runs(&mut rig, config, "xlns")?;
    t.stop_child();
    drop(writer);
    drop(rig);

    let pick = |r: &TrafficReport| match r.direction {
        Direction::Up => r.up.as_ref().map_or(0.0, |d| d.rx_pps),
        Direction::Down => r.down.as_ref().map_or(0.0, |d| d.rx_pps),
        Direction::Both => r.rx_pps_total,
    };
    let comparisons = xlns
        .iter()
        .map(|x| {
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
        bare_searches,
        xlns_searches,
    })
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
        out.push_str("direction  bare Mpps  xlns Mpps  xlns/bare  xlns lost  p50 us  p99 us\n");
        for c in &self.comparisons {
            out.push_str(&format!(
                "{:<9}  {:>9}  {:>9.3}  {:>9}  {:>9}  {:>6.1}  {:>6.1}\n",
                c.direction.label(),
                c.bare_pps.map_or("-".into(), |b| format!("{:.3}", b / 1e6)),
                c.xlns_pps / 1e6,
                c.ratio.map_or("-".into(), |r| format!("{r:.3}")),
                c.xlns_lost,
                c.xlns_p50_us,
                c.xlns_p99_us
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

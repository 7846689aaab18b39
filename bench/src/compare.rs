//! `xlns-bench compare`: xlns against l2tpns on the same rig, the same emulated sessions
//! and the same traffic, ratios from one run (issue #6).
//!
//! ```text
//!  ns lac: lac0 10.1.0.1 ──veth── acc0 10.1.0.2  ns lns  core0 10.2.0.1 ──veth── srv0 10.2.0.2 ns srv
//!  LAC emulator (CHAP), generator+sink      (a) l2tpns (tun0) + FreeRADIUS on 127.0.0.1
//!                                           (b) xlnsd + xlns-dataplane (AF_XDP)
//! ```
//!
//! For each LNS in turn, on fresh namespaces ([`Topology`]):
//!
//! * l2tpns: FreeRADIUS with its own configuration in a temporary directory (users
//!   user1..N / pw1..N, client 127.0.0.1, no Message-Authenticator), started in the lns
//!   namespace; l2tpns with a startup-config written there (`bind_address` 10.1.0.2,
//!   `cluster_interface "lo"`, RADIUS on 127.0.0.1:1812, CHAP), its pool file bind-mounted
//!   over `/etc/l2tpns/ip_pool` in a mount namespace of its own (l2tpns 2.4.1 has no
//!   option for the path), ip_forward on in the lns namespace and a route to the pool in
//!   the server namespace (l2tpns routes the pool through its tun device). Ready once it
//!   declared itself cluster master (about 15 s after the start).
//!   l2tpns runs pinned to the data plane's CPU (`lns_cpu`), like xlns-dataplane's worker.
//! * xlns: xlnsd with a configuration written to the temporary directory (local users
//!   file, the same pool), xlns-dataplane on acc0/core0 (copy mode, one worker pinned to
//!   `lns_cpu`; xlnsd is not pinned).
//!
//! Then the LAC emulator (a thread in the lac namespace) brings up the sessions over the
//! tunnels (one tunnel opening at a time: see [`LacConfig::serial_tunnels`]), the rig
//! opens on lac0 / srv0, and each direction runs (a warm-up, then the measured run) with
//! the CPU time (utime + stime, `/proc/PID/stat`) of the LNS's processes read before and
//! after: l2tpns; xlnsd + xlns-dataplane. FreeRADIUS's CPU is not counted (xlnsd
//! authenticates from a local file: the forwarding figures do not depend on it). An RFC
//! 2544 search per direction follows when asked. The sessions are then torn down and the
//! LNS stopped; its peak resident memory (VmHWM) is read before.

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::fwbench::Topology;
use crate::lac::{LacConfig, LacDriver, Report, Teardown};
use crate::subscriber::{AuthMethod, PppConfig};
use crate::traffic::search::{SearchResult, SearchSpec, search, totals};
use crate::traffic::{Direction, Rig, RunSpec, SessionList, SideSpec, Sizes, TrafficReport};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The LNS under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lns {
    L2tpns,
    Xlns,
}

impl Lns {
    pub const fn label(self) -> &'static str {
        match self {
            Lns::L2tpns => "l2tpns",
            Lns::Xlns => "xlns",
        }
    }
}

/// Where the programs are.
#[derive(Debug, Clone)]
pub struct Programs {
    pub xlnsd: PathBuf,
    pub dataplane: PathBuf,
    pub l2tpns: PathBuf,
    pub freeradius: PathBuf,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct CompareConfig {
    pub lnses: Vec<Lns>,
    pub tunnels: usize,
    pub sessions_per_tunnel: usize,
    pub auth: AuthMethod,
    /// Session opens per second at most (`None`: as fast as `outstanding` allows).
    pub setup_rate: Option<f64>,
    pub outstanding: usize,
    pub sizes: Sizes,
    pub duration: Duration,
    /// Per direction; `None`: as fast as possible.
    pub rate_pps: Option<f64>,
    /// Empty: sessions only, no traffic.
    pub directions: Vec<Direction>,
    /// An RFC 2544 search per direction after the runs (its `max_pps`: 0 means the
    /// offered rate of the as-fast-as-possible run, or `rate_pps`).
    pub search: Option<SearchSpec>,
    pub programs: Programs,
    /// xlnsd's `[l2tp] receive_window` (its default when `None`).
    pub xlnsd_receive_window: Option<u16>,
    pub lns_cpu: usize,
    pub gen_cpu: usize,
}

const LNS_ADDR: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 2);
const LAC_ADDR: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 2);
const CORE_ADDR: &str = "10.2.0.1";
const POOL: &str = "100.64.0.0/16";
const GATEWAY: &str = "100.64.0.1";
const RADIUS_SECRET: &str = "xlns-bench-secret";

/// One direction's run with the LNS's CPU time.
#[derive(Debug, Clone, Serialize)]
pub struct DirRun {
    pub direction: Direction,
    /// Forwarded packets per second, all directions of the run.
    pub forwarded_pps: f64,
    pub sent: u64,
    pub forwarded: u64,
    pub lost: u64,
    pub loss_ratio: f64,
    /// CPU seconds (user + system) of the LNS's processes during the run.
    pub cpu_s: f64,
    /// Of which in user mode.
    pub cpu_user_s: f64,
    /// cpu_s / forwarded, nanoseconds.
    pub cpu_ns_per_packet: Option<f64>,
    /// cpu_s / duration: cores busy.
    pub cpu_cores: f64,
    pub traffic: TrafficReport,
}

/// Everything measured for one LNS.
#[derive(Debug, Clone, Serialize)]
pub struct LnsRun {
    pub lns: Lns,
    /// The emulator's report after the setup.
    pub setup: Option<Report>,
    /// CPU seconds of the LNS's processes from the emulator's start to the last session
    /// up (l2tpns; xlnsd + xlns-dataplane).
    pub setup_cpu_s: Option<f64>,
    /// setup_cpu_s per session up, microseconds.
    pub setup_cpu_us_per_session: Option<f64>,
    /// CPU seconds of FreeRADIUS over the same span (l2tpns only; xlnsd authenticates
    /// from its own users file).
    pub aaa_setup_cpu_s: Option<f64>,
    pub runs: Vec<DirRun>,
    pub searches: Vec<SearchResult>,
    /// Peak resident memory of each LNS process, kB (VmHWM).
    pub rss_kb: BTreeMap<String, u64>,
    /// The emulator's report after the teardown.
    pub end: Option<Report>,
    pub error: Option<String>,
}

/// A ratio xlns / l2tpns.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    pub metric: String,
    pub l2tpns: f64,
    pub xlns: f64,
    /// xlns / l2tpns.
    pub ratio: f64,
    /// The issue's bar, when it sets one: "ratio >= x" or "ratio <= x".
    pub bar: Option<String>,
    pub meets_bar: Option<bool>,
}

/// The whole comparison.
#[derive(Debug, Clone, Serialize)]
pub struct CompareReport {
    pub sessions: usize,
    pub tunnels: usize,
    pub auth: String,
    pub size: String,
    pub rate_pps: Option<f64>,
    pub duration_s: f64,
    pub loadavg_before: String,
    pub lnses: Vec<LnsRun>,
    pub ratios: Vec<Ratio>,
}

/// Child processes killed (SIGTERM, then SIGKILL) on drop, before the namespaces go.
#[derive(Debug, Default)]
struct Procs {
    children: Vec<(String, Child)>,
    dir: Option<PathBuf>,
    files: Vec<PathBuf>,
    /// The RADIUS server's pid (l2tpns), whose CPU is reported apart.
    aaa: Option<u32>,
}

impl Drop for Procs {
    fn drop(&mut self) {
        for (_, c) in &mut self.children {
            // SAFETY: signalling our own child by its pid.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for (_, c) in &mut self.children {
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}

impl Procs {
    fn spawn(&mut self, name: &str, cmd: &mut Command, log: &Path) -> Result<u32, BoxError> {
        let file = std::fs::File::create(log)?;
        // A process group of its own: l2tpns signals its whole group when it shuts down.
        let child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .map_err(|e| format!("{name}: {e}"))?;
        let pid = child.id();
        self.children.push((name.to_owned(), child));
        Ok(pid)
    }

    fn exited(&mut self) -> Option<String> {
        self.children.iter_mut().find_map(|(n, c)| {
            c.try_wait()
                .ok()
                .flatten()
                .map(|s| format!("{n} exited: {s}"))
        })
    }
}

fn run(cmd: &mut Command) -> Result<(), BoxError> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr).trim()).into());
    }
    Ok(())
}

/// utime and stime of a process (all its threads), seconds.
pub fn cpu_times(pid: u32) -> io::Result<(f64, f64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The fields after the command name (which may hold spaces) in parentheses.
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| io::Error::other("no ) in stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // proc(5): utime is field 14, stime 15; `rest` starts at field 3.
    let field = |n: usize| -> io::Result<f64> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse::<u64>().ok())
            .map(|v| v as f64)
            .ok_or_else(|| io::Error::other(format!("stat field {n}")))
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok((field(14)? / hz, field(15)? / hz))
}

fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn wait_for(
    what: &str,
    timeout: Duration,
    procs: &mut Procs,
    mut ready: impl FnMut() -> bool,
) -> Result<(), BoxError> {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return Ok(());
        }
        if let Some(e) = procs.exited() {
            return Err(format!("waiting for {what}: {e}").into());
        }
        if Instant::now() > deadline {
            return Err(format!("{what} not ready in {timeout:?}").into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The FreeRADIUS configuration for l2tpns: users `user1..=users` with `pw1..`.
pub fn freeradius_config(dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = {d}
raddbdir = {d}
radacctdir = {d}
name = freeradius
confdir = {d}
modconfdir = {d}
run_dir = {d}
db_dir = {d}
libdir = /usr/lib/freeradius
pidfile = {d}/radiusd.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 65536
hostname_lookups = no
log {{
  destination = files
  file = {d}/radius.log
  auth = no
}}
security {{
  allow_core_dumps = no
  max_attributes = 200
  reject_delay = 0
  status_server = no
}}
thread pool {{
  start_servers = 2
  max_servers = 4
  min_spare_servers = 1
  max_spare_servers = 4
  max_requests_per_server = 0
}}
client lns {{
  ipaddr = 127.0.0.1
  secret = {RADIUS_SECRET}
  require_message_authenticator = no
}}
modules {{
  pap {{
  }}
  chap {{
  }}
  files {{
    filename = {d}/users
  }}
}}
server default {{
  listen {{
    type = auth
    ipaddr = 127.0.0.1
    port = 1812
  }}
  authorize {{
    files
    chap
    pap
  }}
  authenticate {{
    Auth-Type PAP {{
      pap
    }}
    Auth-Type CHAP {{
      chap
    }}
  }}
}}
"#
    )
}

/// l2tpns's startup-config (startup-config(5)).
pub fn l2tpns_config(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "set debug 1\n\
         set log_file \"{d}/l2tpns.log\"\n\
         set pid_file \"{d}/l2tpns.pid\"\n\
         set primary_dns 10.2.0.53\n\
         set primary_radius 127.0.0.1\n\
         set primary_radius_port 1812\n\
         set radius_secret \"{RADIUS_SECRET}\"\n\
         set radius_accounting no\n\
         set radius_authtypes \"chap,pap\"\n\
         set bind_address {LNS_ADDR}\n\
         set cli_bind_address 127.0.0.1\n\
         set cluster_interface \"lo\"\n\
         set throttle_speed 0\n\
         set send_garp no\n"
    )
}

/// xlnsd's configuration (see deploy/lab/xlnsd.lab.toml).
pub fn xlnsd_config(
    dir: &Path,
    shm: &Path,
    max_sessions: usize,
    receive_window: Option<u16>,
) -> String {
    format!(
        r#"[l2tp]
listen = "{LNS_ADDR}:1701"
{window}host_name = "xlns-bench"
hello_interval = "30s"
max_tunnels = 4096
max_sessions = {max_sessions}
accept_unknown_lacs = false

[admission]
max_tunnel_setups = 4096
max_session_setups = {max_sessions}
sccrq_per_second = 100000
sccrq_burst = 100000
icrq_per_second = 1000000
icrq_burst = 1000000

[ppp]
auth = ["chap-md5", "pap"]
chap_name = "xlns-bench"
lcp_echo_interval = "10s"
lcp_echo_failures = 3
gateway = "{GATEWAY}"
dns = ["10.2.0.53"]
default_pool = "bench"

[[pool]]
name = "bench"
cidr = "{POOL}"

[users]
file = "users"

[[lac]]
name = "bench-lac"
host_name = "xlns-bench-lac"
source = ["10.1.0.0/24"]
max_tunnels = 4096

[dataplane]
shm = "{shm}"
max_sessions = {max_sessions}
max_workers = 1
access_interface = "acc0"

[management]
socket = "{dir}/xlnsd.sock"
"#,
        shm = shm.display(),
        dir = dir.display(),
        window = receive_window.map_or(String::new(), |w| format!("receive_window = {w}\n")),
    )
}

fn mac_text(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Starts FreeRADIUS and l2tpns in the lns namespace; the pids whose CPU counts.
fn start_l2tpns(
    config: &CompareConfig,
    t: &Topology,
    procs: &mut Procs,
    dir: &Path,
    users: usize,
) -> Result<Vec<(String, u32)>, BoxError> {
    std::fs::write(dir.join("radiusd.conf"), freeradius_config(dir))?;
    let users_text: String = (1..=users)
        .map(|n| format!("user{n} Cleartext-Password := \"pw{n}\"\n"))
        .collect();
    std::fs::write(dir.join("users"), users_text)?;
    std::fs::write(dir.join("startup-config"), l2tpns_config(dir))?;
    std::fs::write(dir.join("ip_pool"), format!("{POOL}\n"))?;
    run(Command::new("ip").args([
        "netns",
        "exec",
        &t.lns,
        "sysctl",
        "-qw",
        "net.ipv4.ip_forward=1",
    ]))?;
    run(Command::new("ip").args(["-n", &t.srv, "route", "add", POOL, "via", CORE_ADDR]))?;

    procs.aaa = Some(
        procs.spawn(
            "freeradius",
            Command::new("ip")
                .args(["netns", "exec", &t.lns])
                .arg(&config.programs.freeradius)
                .args(["-f", "-d"])
                .arg(dir),
            &dir.join("freeradius.out"),
        )?,
    );
    let radius_log = dir.join("radius.log");
    wait_for("freeradius", Duration::from_secs(30), procs, || {
        read(&radius_log).contains("Ready to process requests")
    })?;

    // The pool file's path is fixed in l2tpns: a mount namespace of its own with ours
    // bind-mounted over it; `exec` all the way, so that the child's pid is l2tpns's.
    // Pinned to the data plane's CPU, as xlns-dataplane's worker is.
    let script = format!(
        "mount --bind '{pool}' /etc/l2tpns/ip_pool && exec taskset -c {cpu} ip netns exec '{ns}' '{bin}' -c '{conf}'",
        cpu = config.lns_cpu,
        pool = dir.join("ip_pool").display(),
        ns = t.lns,
        bin = config.programs.l2tpns.display(),
        conf = dir.join("startup-config").display(),
    );
    let pid = procs.spawn(
        "l2tpns",
        Command::new("unshare").args(["-m", "--propagation", "private", "sh", "-c", &script]),
        &dir.join("l2tpns.out"),
    )?;
    let log = dir.join("l2tpns.log");
    wait_for(
        "l2tpns (cluster master)",
        Duration::from_secs(60),
        procs,
        || read(&log).contains("declaring myself the master"),
    )?;
    let name = comm(pid);
    if name != "l2tpns" {
        return Err(format!("pid {pid} is {name:?}, not l2tpns").into());
    }
    Ok(vec![("l2tpns".to_owned(), pid)])
}

/// Starts xlnsd and xlns-dataplane in the lns namespace.
fn start_xlns(
    config: &CompareConfig,
    t: &Topology,
    procs: &mut Procs,
    dir: &Path,
    users: usize,
) -> Result<Vec<(String, u32)>, BoxError> {
    let shm = PathBuf::from(format!("/dev/shm/xb-compare-{}", std::process::id()));
    let _ = std::fs::remove_file(&shm);
    procs.files.push(shm.clone());
    let users_text: String = (1..=users).map(|n| format!("user{n} pw{n}\n")).collect();
    std::fs::write(dir.join("users"), users_text)?;
    let conf = dir.join("xlnsd.toml");
    std::fs::write(
        &conf,
        xlnsd_config(dir, &shm, users + 1024, config.xlnsd_receive_window),
    )?;
    let xlnsd = procs.spawn(
        "xlnsd",
        Command::new("ip")
            .args(["netns", "exec", &t.lns])
            .arg(&config.programs.xlnsd)
            .arg("--config")
            .arg(&conf)
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1"),
        &dir.join("xlnsd.log"),
    )?;
    let shm2 = shm.clone();
    let lns_ns = t.lns.clone();
    wait_for("xlnsd", Duration::from_secs(30), procs, || {
        shm2.exists() && udp_listening(&lns_ns, 1701)
    })?;
    let dp_log = dir.join("dataplane.log");
    let dataplane = procs.spawn(
        "xlns-dataplane",
        Command::new("ip")
            .args(["netns", "exec", &t.lns])
            .arg(&config.programs.dataplane)
            .args(["--access", "acc0", "--core", "core0", "--workers", "1"])
            .args([
                "--gateway-v4",
                GATEWAY,
                "--bind",
                "copy",
                "--frames",
                "8192",
            ])
            .arg("--shm")
            .arg(&shm)
            .args(["--cores", &config.lns_cpu.to_string()])
            .args(["--core-next-hop-mac", &mac_text(t.srv_mac)]),
        &dp_log,
    )?;
    wait_for("xlns-dataplane", Duration::from_secs(60), procs, || {
        read(&dp_log).contains("ready")
    })?;
    Ok(vec![
        ("xlnsd".to_owned(), xlnsd),
        ("xlns-dataplane".to_owned(), dataplane),
    ])
}

/// Whether a UDP socket listens on `port` in namespace `ns`.
fn udp_listening(ns: &str, port: u16) -> bool {
    Command::new("ip")
        .args(["netns", "exec", ns, "ss", "-Hlun"])
        .arg(format!("sport = :{port}"))
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty())
}

fn cpu_sum(pids: &[(String, u32)]) -> io::Result<(f64, f64)> {
    pids.iter().try_fold((0.0, 0.0), |(u, s), (_, pid)| {
        let (pu, ps) = cpu_times(*pid)?;
        Ok((u + pu, s + ps))
    })
}

fn lac_config(config: &CompareConfig) -> LacConfig {
    LacConfig {
        bind: Some(LAC_ADDR.into()),
        bind_port: 1701,
        rate: config.setup_rate,
        outstanding: config.outstanding,
        setup_timeout: Duration::from_secs(300),
        ppp: Some(PppConfig {
            auth: config.auth,
            user: "user%n".to_owned(),
            password: "pw%n".to_owned(),
            proxy: false,
        }),
        serial_tunnels: true,
        ..LacConfig::new(
            SocketAddr::from((LNS_ADDR, 1701)),
            config.tunnels,
            config.sessions_per_tunnel,
        )
    }
}

fn forwarded_of(r: &TrafficReport) -> f64 {
    match r.direction {
        Direction::Up => r.up.as_ref().map_or(0.0, |d| d.rx_pps),
        Direction::Down => r.down.as_ref().map_or(0.0, |d| d.rx_pps),
        Direction::Both => r.rx_pps_total,
    }
}

/// Runs the traffic for one LNS: every direction, then the searches.
fn traffic(
    config: &CompareConfig,
    t: &Topology,
    list: SessionList,
    pids: &[(String, u32)],
    out: &mut LnsRun,
) -> Result<(), BoxError> {
    crate::traffic::pin_to(config.gen_cpu)?;
    let mut rig = Rig::open(
        &SideSpec {
            netns: Some(t.lac.clone()),
            ifname: "lac0".into(),
        },
        &SideSpec {
            netns: Some(t.srv.clone()),
            ifname: "srv0".into(),
        },
        list.sessions,
        t.acc_mac,
        t.core_mac,
        SERVER,
    )?;
    let base = RunSpec {
        direction: Direction::Both,
        sizes: config.sizes,
        rate_pps: config.rate_pps,
        duration: config.duration,
        drain: Duration::from_millis(300),
        progress: false,
        stop: None,
    };
    for dir in &config.directions {
        rig.run(&RunSpec {
            direction: *dir,
            rate_pps: Some(10_000.0),
            duration: Duration::from_millis(300),
            drain: Duration::from_millis(200),
            ..base
        })?;
        let (u0, s0) = cpu_sum(pids)?;
        let report = rig.run(&RunSpec {
            direction: *dir,
            ..base
        })?;
        let (u1, s1) = cpu_sum(pids)?;
        let (sent, forwarded, lost) = totals(&report);
        let cpu_s = (u1 - u0) + (s1 - s0);
        eprint!("{:<6} {}", out.lns.label(), report.table());
        out.runs.push(DirRun {
            direction: *dir,
            forwarded_pps: forwarded_of(&report),
            sent,
            forwarded,
            lost,
            loss_ratio: if sent > 0 {
                lost as f64 / sent as f64
            } else {
                0.0
            },
            cpu_s,
            cpu_user_s: u1 - u0,
            cpu_ns_per_packet: (forwarded > 0).then(|| cpu_s * 1e9 / forwarded as f64),
            cpu_cores: cpu_s / config.duration.as_secs_f64(),
            traffic: report,
        });
    }
    if let Some(spec) = &config.search {
        for dir in &config.directions {
            let max = if spec.max_pps > 0.0 {
                spec.max_pps
            } else {
                // The offered rate of the as-fast-as-possible run of that direction.
                out.runs
                    .iter()
                    .find(|r| r.direction == *dir)
                    .and_then(|r| {
                        [r.traffic.up.as_ref(), r.traffic.down.as_ref()]
                            .into_iter()
                            .flatten()
                            .map(|d| d.tx_pps)
                            .reduce(f64::max)
                    })
                    .or(config.rate_pps)
                    .unwrap_or(1_000_000.0)
            };
            let result = search(
                &mut rig,
                &base,
                *dir,
                &SearchSpec {
                    max_pps: max,
                    ..*spec
                },
            )?;
            eprintln!(
                "{:<6} RFC 2544 {}: {} ({} trials)",
                out.lns.label(),
                dir.label(),
                result
                    .throughput_pps
                    .map_or("no rate passed".to_owned(), |r| format!(
                        "{r:.0} pps per direction"
                    )),
                result.trials.len()
            );
            out.searches.push(result);
        }
    }
    Ok(())
}

/// One LNS: start it, bring the sessions up, run the traffic, tear down, stop it.
fn one(config: &CompareConfig, lns: Lns) -> LnsRun {
    let mut out = LnsRun {
        lns,
        setup: None,
        setup_cpu_s: None,
        setup_cpu_us_per_session: None,
        aaa_setup_cpu_s: None,
        runs: Vec::new(),
        searches: Vec::new(),
        rss_kb: BTreeMap::new(),
        end: None,
        error: None,
    };
    if let Err(e) = one_inner(config, lns, &mut out) {
        out.error = Some(e.to_string());
    }
    out
}

fn one_inner(config: &CompareConfig, lns: Lns, out: &mut LnsRun) -> Result<(), BoxError> {
    let t = Topology::create().map_err(|e| e.to_string())?;
    let mut procs = Procs::default();
    let dir =
        std::env::temp_dir().join(format!("xb-compare-{}-{}", lns.label(), std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    procs.dir = Some(dir.clone());
    let users = config.tunnels * config.sessions_per_tunnel;
    eprintln!("== {}: starting", lns.label());
    let pids = match lns {
        Lns::L2tpns => start_l2tpns(config, &t, &mut procs, &dir, users),
        Lns::Xlns => start_xlns(config, &t, &mut procs, &dir, users),
    }
    .map_err(|e| format!("{e}; logs in {}", dir.display()))
    .inspect_err(|_| {
        // Keep the logs for a look.
        procs.dir = None;
    })?;
    eprintln!(
        "== {}: {} sessions over {} tunnels ({})",
        lns.label(),
        users,
        config.tunnels,
        config.auth.label()
    );
    let release = AtomicBool::new(false);
    let lac = lac_config(config);
    let aaa = procs.aaa;
    let cpu_total = |(u, s): (f64, f64)| u + s;
    let setup_cpu0 = cpu_sum(&pids).ok().map(cpu_total);
    let aaa_cpu0 = aaa.and_then(|p| cpu_times(p).ok()).map(cpu_total);
    let result = std::thread::scope(|scope| -> Result<(), BoxError> {
        let (tx, rx) = mpsc::channel::<Result<(Report, SessionList), String>>();
        let release = &release;
        let lac_ns = t.lac.clone();
        let driver = scope.spawn(move || -> Result<Report, String> {
            let setup = || -> io::Result<LacDriver> {
                crate::traffic::enter_netns(&lac_ns)?;
                let mut d = LacDriver::bind(lac)?;
                d.establish()?;
                Ok(d)
            };
            let mut driver = match setup() {
                Ok(d) => d,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return Err(e.to_string());
                }
            };
            match driver.established() {
                Ok(list) => {
                    let _ = tx.send(Ok((driver.report(), list)));
                }
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return Err(e.to_string());
                }
            }
            let until = Instant::now() + Duration::from_secs(365 * 86_400);
            driver
                .hold(until, release, None)
                .map_err(|e| e.to_string())?;
            driver
                .teardown(Teardown::CdnThenStopCcn)
                .map_err(|e| e.to_string())?;
            Ok(driver.report())
        });
        let handed = rx
            .recv_timeout(Duration::from_secs(360))
            .map_err(|_| "the emulator did not finish its setup".to_owned())
            .and_then(|r| r);
        let traffic_result = match handed {
            Ok((report, list)) => {
                eprintln!("{report}");
                let setup_cpu1 = cpu_sum(&pids).ok().map(cpu_total);
                let aaa_cpu1 = aaa.and_then(|p| cpu_times(p).ok()).map(cpu_total);
                out.setup_cpu_s = setup_cpu0.zip(setup_cpu1).map(|(a, b)| b - a);
                out.aaa_setup_cpu_s = aaa_cpu0.zip(aaa_cpu1).map(|(a, b)| b - a);
                out.setup_cpu_us_per_session = out
                    .setup_cpu_s
                    .filter(|_| report.sessions_up > 0)
                    .map(|c| c * 1e6 / report.sessions_up as f64);
                out.setup = Some(report);
                if config.directions.is_empty() {
                    Ok(())
                } else if list.sessions.is_empty() {
                    Err("no session came up".into())
                } else {
                    // The traffic on a thread of its own: the pinning stays there.
                    std::thread::scope(|s| {
                        s.spawn(|| traffic(config, &t, list, &pids, out))
                            .join()
                            .unwrap_or_else(|_| Err("the traffic thread panicked".into()))
                    })
                }
            }
            Err(e) => Err(e.into()),
        };
        for (name, pid) in &pids {
            if let Some(kb) = peak_rss_kb(*pid) {
                out.rss_kb.insert(name.clone(), kb);
            }
        }
        // Relaxed: a flag polled by the driver's loop.
        release.store(true, Ordering::Relaxed);
        match driver.join() {
            Ok(Ok(end)) => out.end = Some(end),
            Ok(Err(e)) => eprintln!("{}: teardown: {e}", lns.label()),
            Err(_) => eprintln!("{}: the emulator thread panicked", lns.label()),
        }
        traffic_result
    });
    if result.is_err() {
        procs.dir = None;
        eprintln!("{}: logs kept in {}", lns.label(), dir.display());
    }
    drop(procs);
    drop(t);
    result
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn ratio(metric: &str, l: f64, x: f64, bar: Option<(&str, f64)>) -> Option<Ratio> {
    (l > 0.0 && l.is_finite() && x.is_finite()).then(|| {
        let r = x / l;
        Ratio {
            metric: metric.to_owned(),
            l2tpns: l,
            xlns: x,
            ratio: r,
            bar: bar.map(|(op, v)| format!("{op} {}", (v * 1000.0).round() / 1000.0)),
            meets_bar: bar.map(|(op, v)| if op == ">=" { r >= v } else { r <= v }),
        }
    })
}

/// The ratios xlns / l2tpns of one report's runs.
pub fn ratios(lnses: &[LnsRun]) -> Vec<Ratio> {
    let find = |l: Lns| lnses.iter().find(|r| r.lns == l);
    let (Some(l), Some(x)) = (find(Lns::L2tpns), find(Lns::Xlns)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let (Some(ls), Some(xs)) = (&l.setup, &x.setup) {
        out.extend(ratio(
            "setup_sessions_per_s",
            ls.sessions_per_sec,
            xs.sessions_per_sec,
            None,
        ));
        if let (Some(lp), Some(xp)) = (&ls.ppp, &xs.ppp) {
            out.extend(ratio(
                "setup_total_p50_us",
                lp.total.p50_us as f64,
                xp.total.p50_us as f64,
                None,
            ));
        }
    }
    if let (Some(lc), Some(xc)) = (l.setup_cpu_us_per_session, x.setup_cpu_us_per_session) {
        out.extend(ratio("setup_cpu_us_per_session", lc, xc, None));
    }
    for lr in &l.runs {
        let Some(xr) = x.runs.iter().find(|r| r.direction == lr.direction) else {
            continue;
        };
        let d = lr.direction.label();
        let bar = match lr.direction {
            Direction::Up => Some((">=", 2.5)),
            Direction::Down => Some((">=", 3.0)),
            Direction::Both => None,
        };
        out.extend(ratio(
            &format!("{d}_pps"),
            lr.forwarded_pps,
            xr.forwarded_pps,
            bar,
        ));
        if let (Some(lc), Some(xc)) = (lr.cpu_ns_per_packet, xr.cpu_ns_per_packet) {
            out.extend(ratio(
                &format!("{d}_cpu_ns_per_packet"),
                lc,
                xc,
                Some(("<=", 1.0 / 3.0)),
            ));
        }
    }
    for ls in &l.searches {
        let Some(xs) = x.searches.iter().find(|s| s.direction == ls.direction) else {
            continue;
        };
        if let (Some(a), Some(b)) = (ls.throughput_pps, xs.throughput_pps) {
            out.extend(ratio(
                &format!("{}_rfc2544_pps", ls.direction.label()),
                a,
                b,
                None,
            ));
        }
    }
    out
}

/// Runs the comparison.
pub fn compare(config: &CompareConfig) -> CompareReport {
    let loadavg_before = loadavg();
    let lnses: Vec<LnsRun> = config.lnses.iter().map(|l| one(config, *l)).collect();
    CompareReport {
        sessions: config.tunnels * config.sessions_per_tunnel,
        tunnels: config.tunnels,
        auth: config.auth.label().to_owned(),
        size: config.sizes.label(),
        rate_pps: config.rate_pps,
        duration_s: config.duration.as_secs_f64(),
        loadavg_before,
        ratios: ratios(&lnses),
        lnses,
    }
}

impl CompareReport {
    /// Every LNS ran without error.
    pub fn ok(&self) -> bool {
        self.lnses.iter().all(|l| l.error.is_none())
    }

    /// The human table.
    pub fn table(&self) -> String {
        let mut out = format!(
            "compare: {} sessions over {} tunnels ({}), {}-octet packets, {}, {:.1} s per run, \
             load average before {}\n",
            self.sessions,
            self.tunnels,
            self.auth,
            self.size,
            self.rate_pps
                .map_or("as fast as possible".to_owned(), |r| format!(
                    "{r:.0} pps per direction"
                )),
            self.duration_s,
            self.loadavg_before
        );
        out.push_str(
            "lns     sessions up  setup/s  setup p50 ms  p99 ms  CPU us/session (RADIUS s)\n",
        );
        for l in &self.lnses {
            match &l.setup {
                Some(s) => {
                    let (p50, p99) = s.ppp.as_ref().map_or((0.0, 0.0), |p| {
                        (p.total.p50_us as f64 / 1e3, p.total.p99_us as f64 / 1e3)
                    });
                    out.push_str(&format!(
                        "{:<7} {:>6}/{:<6} {:>7.0}  {:>12.2}  {:>6.2}  {:>14}{}\n",
                        l.lns.label(),
                        s.sessions_up,
                        s.sessions_requested,
                        s.sessions_per_sec,
                        p50,
                        p99,
                        l.setup_cpu_us_per_session
                            .map_or("-".to_owned(), |c| format!("{c:.0}")),
                        l.aaa_setup_cpu_s
                            .map_or(String::new(), |c| format!(" ({c:.2})")),
                    ));
                }
                None => out.push_str(&format!("{:<7} no setup\n", l.lns.label())),
            }
            if let Some(e) = &l.error {
                out.push_str(&format!("{:<7} ERROR {e}\n", l.lns.label()));
            }
        }
        if self.lnses.iter().any(|l| !l.runs.is_empty()) {
            out.push_str(
                "lns     dir   fwd Mpps    lost     loss %  CPU s  cores  ns/pkt  p50 us  p99 us\n",
            );
        }
        for l in &self.lnses {
            for r in &l.runs {
                let lat = [r.traffic.up.as_ref(), r.traffic.down.as_ref()]
                    .into_iter()
                    .flatten()
                    .fold((0.0_f64, 0.0_f64), |(a, b), d| {
                        (a.max(d.latency.p50_us), b.max(d.latency.p99_us))
                    });
                out.push_str(&format!(
                    "{:<7} {:<5} {:>8.3} {:>7} {:>9.4} {:>6.2} {:>6.2} {:>7} {:>7.1} {:>7.1}\n",
                    l.lns.label(),
                    r.direction.label(),
                    r.forwarded_pps / 1e6,
                    r.lost,
                    r.loss_ratio * 100.0,
                    r.cpu_s,
                    r.cpu_cores,
                    r.cpu_ns_per_packet
                        .map_or("-".to_owned(), |n| format!("{n:.0}")),
                    lat.0,
                    lat.1
                ));
            }
            for s in &l.searches {
                out.push_str(&format!(
                    "{:<7} {:<5} RFC 2544 zero-loss {} ({} trials of {:.1} s)\n",
                    l.lns.label(),
                    s.direction.label(),
                    s.throughput_pps
                        .map_or("none".to_owned(), |r| format!("{r:.0} pps per direction")),
                    s.trials.len(),
                    s.trial_s
                ));
            }
        }
        if !self.ratios.is_empty() {
            out.push_str("xlns / l2tpns\n");
            for r in &self.ratios {
                out.push_str(&format!(
                    "  {:<26} {:>12.3} / {:>12.3} = {:>7.3}{}\n",
                    r.metric,
                    r.xlns,
                    r.l2tpns,
                    r.ratio,
                    match (&r.bar, r.meets_bar) {
                        (Some(b), Some(true)) => format!("  (bar {b}: met)"),
                        (Some(b), Some(false)) => format!("  (bar {b}: NOT met)"),
                        _ => String::new(),
                    }
                ));
            }
        }
        out
    }

    /// JSON lines: one per ratio and one per LNS run (without the per-second series).
    pub fn json_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for l in &self.lnses {
            for r in &l.runs {
                out.push(
                    serde_json::json!({
                        "lns": l.lns,
                        "sessions": self.sessions,
                        "size": self.size,
                        "direction": r.direction,
                        "forwarded_pps": r.forwarded_pps,
                        "lost": r.lost,
                        "loss_ratio": r.loss_ratio,
                        "cpu_s": r.cpu_s,
                        "cpu_ns_per_packet": r.cpu_ns_per_packet,
                    })
                    .to_string(),
                );
            }
            if let Some(s) = &l.setup {
                out.push(
                    serde_json::json!({
                        "lns": l.lns,
                        "sessions": self.sessions,
                        "sessions_up": s.sessions_up,
                        "setup_sessions_per_s": s.sessions_per_sec,
                        "setup_total_p50_us": s.ppp.as_ref().map(|p| p.total.p50_us),
                        "setup_total_p99_us": s.ppp.as_ref().map(|p| p.total.p99_us),
                        "setup_cpu_us_per_session": l.setup_cpu_us_per_session,
                        "aaa_setup_cpu_s": l.aaa_setup_cpu_s,
                    })
                    .to_string(),
                );
            }
        }
        for r in &self.ratios {
            out.push(serde_json::to_string(r).unwrap_or_default());
        }
        out
    }
}

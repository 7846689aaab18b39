//! xlns-bench: benchmark drivers for xlns.
//!
//! `xlns-bench l2tp-setup --lns ADDR:PORT --tunnels N --sessions-per-tunnel M` opens N
//! tunnels x M sessions toward an LNS as an LAC (RFC 2661), tears them down, and prints
//! counts, rates and setup latency percentiles (a table, or one JSON line with `--json`).
//!
//! `xlns-bench traffic ...` runs the AF_XDP generator/sink for a session list;
//! `xlns-bench forwarder --a IF --b IF` the bare forwarder; `xlns-bench forwarding-bench`
//! the self-contained comparison bare forwarder vs xlns-dataplane; `xlns-bench compare`
//! xlns against l2tpns; `xlns-bench plot` SVG plots of the results (README.md).

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, Subcommand, ValueEnum};
use xlns_bench::acct_check::{Counts, check, parse_detail};
use xlns_bench::compare::{CompareConfig, Lns, Programs, compare};
use xlns_bench::forwarder::{Forwarder, ForwarderConfig};
use xlns_bench::fwbench::{BenchConfig, forwarding_bench, scaling_bench};
use xlns_bench::lab::{LabSpec, lab};
use xlns_bench::lac::{LacConfig, LacDriver, Teardown};
use xlns_bench::subscriber::{AuthMethod, PppConfig};
use xlns_bench::traffic::search::SearchSpec;
use xlns_bench::traffic::{Direction, Rig, RunSpec, SessionList, SideSpec, Sizes, pin_to};

#[derive(Debug, Parser)]
#[command(name = "xlns-bench", version, about = "xlns benchmark drivers")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TeardownArg {
    /// CDN for every session, then StopCCN for every tunnel.
    CdnStopccn,
    /// StopCCN for every tunnel only.
    Stopccn,
    /// Leave everything up (the LNS cleans up by HELLO).
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PppArg {
    /// L2TP only: a session is up at the ICCN.
    None,
    Pap,
    Chap,
    /// MS-CHAPv2.
    Mschapv2,
}

/// The LAC emulator's options shared by `setup` and `lab`.
#[derive(Debug, Clone, clap::Args)]
struct EmulatorArgs {
    /// The LNS's L2TP control address.
    #[arg(long, value_name = "ADDR:PORT")]
    lns: SocketAddr,
    /// Tunnels to open.
    #[arg(long, default_value_t = 1)]
    tunnels: usize,
    /// Sessions per tunnel.
    #[arg(long, default_value_t = 1)]
    sessions_per_tunnel: usize,
    /// The subscribers' PPP authentication (`none`: no PPP, L2TP only).
    #[arg(long, value_enum, default_value_t = PppArg::Chap)]
    ppp: PppArg,
    /// User name pattern; `%n` is the session number (1-based).
    #[arg(long, default_value = "user%n")]
    user: String,
    /// Password pattern; `%n` is the session number.
    #[arg(long, default_value = "pw%n")]
    password: String,
    /// NAS-initiated calls: LCP and authentication at the LAC, proxy LCP and proxy
    /// authentication AVPs in the ICCN.
    #[arg(long)]
    proxy: bool,
    /// Opens (SCCRQ or ICRQ) per second at most; unlimited when absent.
    #[arg(long)]
    rate: Option<f64>,
    /// Setups in flight at most.
    #[arg(long, default_value_t = 64)]
    outstanding: usize,
    /// Local UDP sockets (source ports); tunnels are spread over them.
    #[arg(long, default_value_t = 1)]
    sockets: usize,
    /// Local address to bind; repeat it for several source addresses (socket `k` binds
    /// address `k % n`, port `--bind-port + k / n`).
    #[arg(long)]
    bind: Vec<IpAddr>,
    /// Local UDP port of the first socket (0: any). The traffic generator's XDP program
    /// takes downstream data for port 1701 only: use 1701 with `lab`.
    #[arg(long, default_value_t = 0)]
    bind_port: u16,
    /// Seconds the setup phase may take.
    #[arg(long, default_value_t = 120)]
    setup_timeout: u64,
    /// Seconds the teardown may take.
    #[arg(long, default_value_t = 60)]
    teardown_timeout: u64,
    /// Our Host Name AVP.
    #[arg(long, default_value = "xlns-bench-lac")]
    host_name: String,
    /// Write the established sessions here (JSON, the traffic generator's input).
    #[arg(long)]
    sessions_out: Option<PathBuf>,
    /// Sessions closed and reopened per second while they are held.
    #[arg(long)]
    churn: Option<f64>,
    /// Open one tunnel at a time (l2tpns drops a second SCCRQ from the same address and
    /// port while the first tunnel is opening).
    #[arg(long)]
    serial_tunnels: bool,
}

impl EmulatorArgs {
    fn config(&self) -> LacConfig {
        let ppp = match self.ppp {
            PppArg::None => None,
            PppArg::Pap => Some(AuthMethod::Pap),
            PppArg::Chap => Some(AuthMethod::Chap),
            PppArg::Mschapv2 => Some(AuthMethod::MsChapV2),
        };
        LacConfig {
            sockets: self.sockets,
            bind: self.bind.first().copied(),
            more_binds: self.bind.iter().skip(1).copied().collect(),
            bind_port: self.bind_port,
            rate: self.rate,
            outstanding: self.outstanding,
            setup_timeout: Duration::from_secs(self.setup_timeout),
            teardown_timeout: Duration::from_secs(self.teardown_timeout),
            host_name: self.host_name.clone(),
            ppp: ppp.map(|auth| PppConfig {
                auth,
                user: self.user.clone(),
                password: self.password.clone(),
                proxy: self.proxy,
            }),
            progress: true,
            serial_tunnels: self.serial_tunnels,
            ..LacConfig::new(self.lns, self.tunnels, self.sessions_per_tunnel)
        }
    }
}

/// The traffic rig's options shared by `lab` and `traffic`.
#[derive(Debug, Clone, clap::Args)]
struct RigArgs {
    /// LAC-side interface (upstream sender, downstream sink; with `lab`, in this
    /// process's network namespace).
    #[arg(long)]
    lac_if: String,
    /// Core-side interface (downstream sender, upstream sink).
    #[arg(long)]
    core_if: String,
    /// The core-side interface's network namespace (default: the current one).
    #[arg(long)]
    core_netns: Option<String>,
    /// MAC address of the LNS's access interface.
    #[arg(long, value_parser = parse_mac)]
    lns_access_mac: [u8; 6],
    /// MAC address of the LNS's core interface.
    #[arg(long, value_parser = parse_mac)]
    lns_core_mac: [u8; 6],
    /// The server's address (upstream destination, downstream source).
    #[arg(long)]
    server: Ipv4Addr,
    #[arg(long, value_enum, default_value_t = DirArg::Both)]
    direction: DirArg,
    /// 64, 1400, ... (IP packet octets) or imix.
    #[arg(long, default_value = "64", value_parser = Sizes::parse)]
    size: Sizes,
}

/// The RFC 2544 search options shared by `compare` and `forwarding-bench`.
#[derive(Debug, Clone, clap::Args)]
struct SearchArgs {
    /// After the run of each direction, an RFC 2544 zero-loss search for that direction
    /// with trials of this many seconds.
    #[arg(long)]
    search_trial: Option<f64>,
    /// Upper bound of the search, pps per direction (default: the offered rate of the
    /// run before it).
    #[arg(long)]
    search_max: Option<f64>,
    /// Trials per search at most.
    #[arg(long, default_value_t = 10)]
    search_trials: usize,
    /// Loss ratio a search trial may have and pass.
    #[arg(long, default_value_t = 0.0)]
    loss_tolerance: f64,
}

impl SearchArgs {
    /// The search asked for, if any (`max_pps` 0: the offered rate of the run).
    fn spec(&self) -> Option<SearchSpec> {
        self.search_trial.map(|t| SearchSpec {
            max_trials: self.search_trials,
            loss_tolerance: self.loss_tolerance,
            ..SearchSpec::new(Duration::from_secs_f64(t), self.search_max.unwrap_or(0.0))
        })
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The LAC emulator with PPP subscribers: N tunnels x M sessions (L2TP, LCP,
    /// PAP/CHAP/MS-CHAPv2, IPCP), optionally held (keepalives answered, churn), then torn
    /// down; setup latency per phase, the setup rate over time, JSON results.
    Setup {
        #[command(flatten)]
        emulator: EmulatorArgs,
        /// Seconds to keep the sessions up after the setup (SIGINT / SIGTERM ends it
        /// early).
        #[arg(long, default_value_t = 0.0)]
        hold: f64,
        /// How to tear down.
        #[arg(long, value_enum, default_value_t = TeardownArg::CdnStopccn)]
        teardown: TeardownArg,
        /// Print one JSON line instead of the table.
        #[arg(long)]
        json: bool,
        /// Print the table and then the JSON line.
        #[arg(long)]
        both: bool,
    },
    /// The lab run: the emulator brings the sessions up, the AF_XDP generator sends
    /// upstream L2TP/PPP and downstream IP for every one of them at once, then a summary;
    /// run inside the LAC's network namespace (deploy/lab/lab.sh does all of it).
    Lab {
        // Boxed: the largest variant by far otherwise (clippy::large_enum_variant).
        #[command(flatten)]
        emulator: Box<EmulatorArgs>,
        #[command(flatten)]
        rig: RigArgs,
        /// Packets per second per direction (default: as fast as possible).
        #[arg(long)]
        pps: Option<f64>,
        /// Seconds of traffic.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// CPU to pin the generator to.
        #[arg(long)]
        cpu: Option<usize>,
        /// After the traffic keep the sessions up until SIGINT / SIGTERM.
        #[arg(long)]
        keep: bool,
        /// Write the whole result (setup, traffic, teardown) here as JSON.
        #[arg(long)]
        json_out: Option<PathBuf>,
        /// xlns-dataplane's segment: its drop counters go into the summary.
        #[arg(long)]
        shm: Option<PathBuf>,
        /// Write every session's packets and octets each way (warm-up included) here as
        /// JSON, for `acct-check`.
        #[arg(long)]
        counts_out: Option<PathBuf>,
        /// A line printed with the summary (repeatable), e.g. how to reach xlnsctl.
        #[arg(long)]
        hint: Vec<String>,
    },
    /// The lab's accounting check: every session's Stop record in FreeRADIUS' detail
    /// file carries what the generator sent and received for it (see
    /// xlns_bench::acct_check). Exit status 1 when anything differs.
    AcctCheck {
        /// FreeRADIUS' detail file.
        #[arg(long)]
        detail: PathBuf,
        /// The lab's `--counts-out` file.
        #[arg(long)]
        counts: PathBuf,
        /// Also print one line per session.
        #[arg(long)]
        verbose: bool,
    },
    /// L2TP-only setup rate: N tunnels x M sessions as an LAC, then teardown.
    L2tpSetup {
        /// The LNS's L2TP control address.
        #[arg(long, value_name = "ADDR:PORT")]
        lns: SocketAddr,
        /// Tunnels to open.
        #[arg(long, default_value_t = 1)]
        tunnels: usize,
        /// Sessions per tunnel.
        #[arg(long, default_value_t = 1)]
        sessions_per_tunnel: usize,
        /// Opens (SCCRQ or ICRQ) per second at most; unlimited when absent.
        #[arg(long)]
        rate: Option<f64>,
        /// Setups in flight at most.
        #[arg(long, default_value_t = 64)]
        outstanding: usize,
        /// Local UDP sockets (source ports); tunnels are spread over them.
        #[arg(long, default_value_t = 1)]
        sockets: usize,
        /// Local address to bind.
        #[arg(long)]
        bind: Option<IpAddr>,
        /// How to tear down.
        #[arg(long, value_enum, default_value_t = TeardownArg::CdnStopccn)]
        teardown: TeardownArg,
        /// Seconds the setup phase may take.
        #[arg(long, default_value_t = 120)]
        setup_timeout: u64,
        /// Seconds the teardown may take.
        #[arg(long, default_value_t = 60)]
        teardown_timeout: u64,
        /// Our Host Name AVP.
        #[arg(long, default_value = "xlns-bench-lac")]
        host_name: String,
        /// Print one JSON line instead of the table.
        #[arg(long)]
        json: bool,
        /// Print the table and then the JSON line.
        #[arg(long)]
        both: bool,
    },
    /// AF_XDP traffic generator and sink for a session list (upstream on the LAC side,
    /// downstream on the core side).
    Traffic {
        /// Session list (JSON, see README.md).
        #[arg(long)]
        sessions: PathBuf,
        #[command(flatten)]
        rig: RigArgs,
        /// The LAC-side interface's network namespace (default: the current one).
        #[arg(long)]
        lac_netns: Option<String>,
        /// Packets per second per direction (default: as fast as possible).
        #[arg(long)]
        rate: Option<f64>,
        /// Seconds to send.
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        /// CPU to pin the generator to.
        #[arg(long, default_value_t = 1)]
        cpu: usize,
        /// Instead of one run, an RFC 2544 zero-loss search with trials of this many
        /// seconds, between 0 and `--rate` (required with it) per direction.
        #[arg(long, requires = "rate")]
        search_trial: Option<f64>,
        /// Trials per search at most.
        #[arg(long, default_value_t = 10)]
        search_trials: usize,
        /// Loss ratio a search trial may have and pass.
        #[arg(long, default_value_t = 0.0)]
        loss_tolerance: f64,
        #[arg(long)]
        json: bool,
    },
    /// Bare AF_XDP forwarder: receive on one interface, rewrite MACs, send on the other.
    Forwarder {
        #[arg(long)]
        a: String,
        #[arg(long)]
        b: String,
        /// Destination MAC of frames sent on A (default: swap the frame's MACs).
        #[arg(long, value_parser = parse_mac)]
        a_peer_mac: Option<[u8; 6]>,
        /// Destination MAC of frames sent on B (default: swap).
        #[arg(long, value_parser = parse_mac)]
        b_peer_mac: Option<[u8; 6]>,
        /// Session list whose subscriber addresses the core-role XDP program on B takes.
        #[arg(long)]
        sessions: Option<PathBuf>,
        #[arg(long, default_value_t = 1701)]
        l2tp_port: u16,
        #[arg(long, default_value_t = 8192)]
        frames: u32,
        #[arg(long, default_value_t = 2048)]
        ring_size: u32,
        /// CPU to pin to.
        #[arg(long)]
        cpu: Option<usize>,
    },
    /// xlns against l2tpns on the same rig (namespaces, veths), the same emulated
    /// sessions and the same traffic: setup rate and latency, forwarded packets per
    /// second each way, loss, the LNS's CPU time per packet, RFC 2544 searches; ratios
    /// xlns / l2tpns as a table and JSON lines (root).
    Compare {
        /// Tunnels.
        #[arg(long, default_value_t = 10)]
        tunnels: usize,
        /// Sessions per tunnel.
        #[arg(long, default_value_t = 100)]
        sessions_per_tunnel: usize,
        /// chap or pap (l2tpns has no MS-CHAPv2).
        #[arg(long, value_enum, default_value_t = PppArg::Chap)]
        ppp: PppArg,
        /// Session opens per second at most (default: unlimited).
        #[arg(long)]
        setup_rate: Option<f64>,
        /// Setups in flight at most.
        #[arg(long, default_value_t = 64)]
        outstanding: usize,
        /// The LNSes to run, in this order.
        #[arg(long, value_enum, value_delimiter = ',', default_values_t = [LnsArg::L2tpns, LnsArg::Xlns])]
        lns: Vec<LnsArg>,
        #[arg(long, default_value = "64", value_parser = Sizes::parse)]
        size: Sizes,
        /// Seconds per run.
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        /// Packets per second per direction (default: as fast as possible).
        #[arg(long)]
        rate: Option<f64>,
        #[arg(long, value_enum, value_delimiter = ',', default_values_t = [DirArg::Up, DirArg::Down, DirArg::Both])]
        directions: Vec<DirArg>,
        /// Sessions only: no traffic (setup rate, latency and CPU per session).
        #[arg(long)]
        setup_only: bool,
        #[command(flatten)]
        search: SearchArgs,
        /// xlnsd binary (default: beside this one).
        #[arg(long)]
        xlnsd: Option<PathBuf>,
        /// xlnsd's `[l2tp] receive_window` (default: xlnsd's default).
        #[arg(long)]
        xlnsd_receive_window: Option<u16>,
        /// xlns-dataplane binary (default: beside this one).
        #[arg(long)]
        dataplane: Option<PathBuf>,
        #[arg(long, default_value = "/usr/sbin/l2tpns")]
        l2tpns: PathBuf,
        #[arg(long, default_value = "/usr/sbin/freeradius")]
        freeradius: PathBuf,
        /// CPU of the data plane (xlns-dataplane's worker).
        #[arg(long, default_value_t = 0)]
        lns_cpu: usize,
        /// CPU of the generator and sink.
        #[arg(long, default_value_t = 1)]
        gen_cpu: usize,
        /// Write the whole result here (JSON; `xlns-bench plot` reads it).
        #[arg(long)]
        json_out: Option<PathBuf>,
        /// Print only the JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// SVG plots from JSON results of `compare --json-out` (throughput against sessions:
    /// one point per file; latency percentiles and setup rate: the first file).
    Plot {
        /// Output directory.
        #[arg(long, default_value = ".")]
        out_dir: PathBuf,
        /// The JSON files.
        inputs: Vec<PathBuf>,
    },
    /// Self-contained forwarding comparison: namespaces, bare forwarder, xlns-dataplane.
    ForwardingBench {
        /// Session count; several, comma separated (`1000,100000`): the session-count
        /// comparison, every count measured in this one run, interleaved (`--repeat`).
        #[arg(long, value_delimiter = ',', default_values_t = [1000u32])]
        sessions: Vec<u32>,
        /// Rounds over the session counts (several counts only); the median per count.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        #[arg(long, default_value_t = 10)]
        tunnels: u16,
        #[arg(long, default_value = "64", value_parser = Sizes::parse)]
        size: Sizes,
        /// Seconds per run.
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        /// Packets per second per direction (default: as fast as possible).
        #[arg(long)]
        rate: Option<f64>,
        /// Directions to run, comma separated.
        #[arg(long, value_enum, value_delimiter = ',', default_values_t = [DirArg::Up, DirArg::Down, DirArg::Both])]
        directions: Vec<DirArg>,
        /// xlns-dataplane binary (default: beside this one).
        #[arg(long)]
        dataplane: Option<PathBuf>,
        /// CPU of the forwarder / data plane.
        #[arg(long, default_value_t = 0)]
        lns_cpu: usize,
        /// CPU of the generator and sink.
        #[arg(long, default_value_t = 1)]
        gen_cpu: usize,
        /// Only xlns-dataplane (no bare forwarder, no ratios).
        #[arg(long)]
        skip_bare: bool,
        #[command(flatten)]
        search: SearchArgs,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LnsArg {
    L2tpns,
    Xlns,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DirArg {
    Up,
    Down,
    Both,
}

impl From<DirArg> for Direction {
    fn from(d: DirArg) -> Direction {
        match d {
            DirArg::Up => Direction::Up,
            DirArg::Down => Direction::Down,
            DirArg::Both => Direction::Both,
        }
    }
}

fn direction_label(d: DirArg) -> &'static str {
    Direction::from(d).label()
}

fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    xlns_dataplane::worker::host::parse_mac(s)
        .map(|m| m.0)
        .ok_or_else(|| format!("not a MAC address: {s}"))
}

/// Writes `value` as JSON to `path`; the error says what failed.
fn write_json(path: &std::path::Path, value: &impl serde::Serialize) -> Result<(), String> {
    let text = serde_json::to_string(value).map_err(|e| e.to_string())?;
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("xlns-bench: {e}");
    ExitCode::from(2)
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Async-signal-safe: one atomic store. Relaxed: the loop polls it.
    STOP.store(true, Ordering::Relaxed);
}

fn on_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores an atomic.
        unsafe {
            libc::signal(
                sig,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            )
        };
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Setup {
            emulator,
            hold,
            teardown,
            json,
            both,
        } => {
            on_signals();
            match setup(&emulator, hold, teardown, json, both) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(1),
                Err(e) => fail(e),
            }
        }
        Command::Lab {
            emulator,
            rig:
                RigArgs {
                    lac_if,
                    core_if,
                    core_netns,
                    lns_access_mac,
                    lns_core_mac,
                    server,
                    direction,
                    size,
                },
            pps,
            duration,
            cpu,
            keep,
            json_out,
            shm,
            counts_out,
            hint,
        } => {
            on_signals();
            let spec = LabSpec {
                lac: emulator.config(),
                sessions_out: emulator.sessions_out.clone(),
                churn: emulator.churn,
                lac_if,
                core_if,
                core_netns,
                lns_access_mac,
                lns_core_mac,
                server,
                run: RunSpec {
                    direction: direction.into(),
                    sizes: size,
                    rate_pps: pps,
                    duration: Duration::from_secs_f64(duration),
                    drain: Duration::from_millis(300),
                    progress: true,
                    stop: Some(&STOP),
                },
                cpu,
                keep,
                shm,
                counts_out,
                hints: hint,
            };
            match lab(&spec, &STOP) {
                Ok(result) => {
                    if let Some(path) = json_out
                        && let Err(e) = write_json(&path, &result)
                    {
                        return fail(e);
                    }
                    if result.ok() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(e) => fail(e),
            }
        }
        Command::AcctCheck {
            detail,
            counts,
            verbose,
        } => {
            let text = match std::fs::read_to_string(&detail) {
                Ok(t) => t,
                Err(e) => return fail(format!("{}: {e}", detail.display())),
            };
            let counts = match Counts::load(&counts) {
                Ok(c) => c,
                Err(e) => return fail(format!("{}: {e}", counts.display())),
            };
            let outcome = check(&parse_detail(&text), &counts);
            if verbose {
                for r in &outcome.rows {
                    println!(
                        "  {:<15} {:<20} Stop in {}/{} out {}/{}  generator up {}/{} down {}/{}",
                        r.address.to_string(),
                        r.acct_session_id,
                        r.stop[0],
                        r.stop[1],
                        r.stop[2],
                        r.stop[3],
                        r.generator[0],
                        r.generator[1],
                        r.generator[2],
                        r.generator[3]
                    );
                }
            }
            print!("{}", outcome.summary(counts.sessions.len()));
            if outcome.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Command::L2tpSetup {
            lns,
            tunnels,
            sessions_per_tunnel,
            rate,
            outstanding,
            sockets,
            bind,
            teardown,
            setup_timeout,
            teardown_timeout,
            host_name,
            json,
            both,
        } => {
            let config = LacConfig {
                sockets,
                bind,
                rate,
                outstanding,
                setup_timeout: Duration::from_secs(setup_timeout),
                teardown_timeout: Duration::from_secs(teardown_timeout),
                host_name,
                ..LacConfig::new(lns, tunnels, sessions_per_tunnel)
            };
            match l2tp_setup(config, teardown, json, both) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(1),
                Err(e) => fail(e),
            }
        }
        Command::Traffic {
            sessions,
            rig:
                RigArgs {
                    lac_if,
                    core_if,
                    core_netns,
                    lns_access_mac,
                    lns_core_mac,
                    server,
                    direction,
                    size,
                },
            lac_netns,
            rate,
            duration,
            cpu,
            search_trial,
            search_trials,
            loss_tolerance,
            json,
        } => {
            let result = (|| -> Result<String, Box<dyn std::error::Error>> {
                let list = SessionList::load(&sessions)?;
                pin_to(cpu)?;
                let mut rig = Rig::open(
                    &SideSpec {
                        netns: lac_netns,
                        ifname: lac_if,
                    },
                    &SideSpec {
                        netns: core_netns,
                        ifname: core_if,
                    },
                    list.sessions,
                    lns_access_mac,
                    lns_core_mac,
                    server,
                )?;
                let spec = RunSpec {
                    direction: direction.into(),
                    sizes: size,
                    rate_pps: rate,
                    duration: Duration::from_secs_f64(duration),
                    drain: Duration::from_millis(300),
                    progress: true,
                    stop: Some(&STOP),
                };
                if let (Some(trial), Some(max)) = (search_trial, rate) {
                    let result = xlns_bench::traffic::search::search(
                        &mut rig,
                        &spec,
                        direction.into(),
                        &SearchSpec {
                            max_trials: search_trials,
                            loss_tolerance,
                            ..SearchSpec::new(Duration::from_secs_f64(trial), max)
                        },
                    )?;
                    return Ok(if json {
                        serde_json::to_string(&result)?
                    } else {
                        format!(
                            "RFC 2544 {}: {} ({} trials of {trial} s: {})",
                            direction_label(direction),
                            result
                                .throughput_pps
                                .map_or("no rate passed".to_owned(), |r| {
                                    format!("{r:.0} pps per direction")
                                }),
                            result.trials.len(),
                            result
                                .trials
                                .iter()
                                .map(|t| format!(
                                    "{:.0} {}",
                                    t.rate_pps,
                                    if t.pass { "pass" } else { "fail" }
                                ))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    });
                }
                let report = rig.run(&spec)?;
                Ok(if json {
                    serde_json::to_string(&report)?
                } else {
                    report.table()
                })
            })();
            match result {
                Ok(text) => {
                    println!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        Command::Forwarder {
            a,
            b,
            a_peer_mac,
            b_peer_mac,
            sessions,
            l2tp_port,
            frames,
            ring_size,
            cpu,
        } => {
            let result = (|| -> Result<String, Box<dyn std::error::Error>> {
                let b_prefixes = match sessions {
                    Some(path) => SessionList::load(&path)?
                        .sessions
                        .iter()
                        .map(|s| s.subscriber)
                        .collect(),
                    None => Vec::new(),
                };
                let config = ForwarderConfig {
                    a,
                    b,
                    a_peer_mac,
                    b_peer_mac,
                    b_prefixes,
                    l2tp_port,
                    frames,
                    ring_size,
                    idle_poll_ms: 10,
                };
                on_signals();
                if let Some(cpu) = cpu {
                    pin_to(cpu)?;
                }
                let mut fwd = Forwarder::new(&config)?;
                println!("xlns-bench forwarder: ready a={} b={}", config.a, config.b);
                fwd.run(&STOP);
                Ok(serde_json::to_string(&fwd.stats)?)
            })();
            match result {
                Ok(text) => {
                    println!("xlns-bench forwarder: stopped {text}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        Command::Compare {
            tunnels,
            sessions_per_tunnel,
            ppp,
            setup_rate,
            outstanding,
            lns,
            size,
            duration,
            rate,
            directions,
            setup_only,
            search,
            xlnsd,
            xlnsd_receive_window,
            dataplane,
            l2tpns,
            freeradius,
            lns_cpu,
            gen_cpu,
            json_out,
            json,
        } => {
            let exe = match std::env::current_exe() {
                Ok(exe) => exe,
                Err(e) => return fail(e),
            };
            let auth = match ppp {
                PppArg::Chap => AuthMethod::Chap,
                PppArg::Pap => AuthMethod::Pap,
                _ => return fail("--ppp: chap or pap (what l2tpns authenticates)"),
            };
            let config = CompareConfig {
                lnses: lns
                    .into_iter()
                    .map(|l| match l {
                        LnsArg::L2tpns => Lns::L2tpns,
                        LnsArg::Xlns => Lns::Xlns,
                    })
                    .collect(),
                tunnels,
                sessions_per_tunnel,
                auth,
                setup_rate,
                outstanding,
                sizes: size,
                duration: Duration::from_secs_f64(duration),
                rate_pps: rate,
                directions: if setup_only {
                    Vec::new()
                } else {
                    directions.into_iter().map(Direction::from).collect()
                },
                search: search.spec(),
                programs: Programs {
                    xlnsd: xlnsd.unwrap_or_else(|| exe.with_file_name("xlnsd")),
                    dataplane: dataplane.unwrap_or_else(|| exe.with_file_name("xlns-dataplane")),
                    l2tpns,
                    freeradius,
                },
                xlnsd_receive_window,
                lns_cpu,
                gen_cpu,
            };
            let report = compare(&config);
            if !json {
                print!("{}", report.table());
            }
            for line in report.json_lines() {
                println!("{line}");
            }
            if let Some(path) = json_out
                && let Err(e) = write_json(&path, &report)
            {
                return fail(e);
            }
            if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Command::Plot { out_dir, inputs } => {
            let mut reports = Vec::new();
            for p in &inputs {
                let v = std::fs::read_to_string(p)
                    .map_err(|e| e.to_string())
                    .and_then(|t| {
                        serde_json::from_str::<serde_json::Value>(&t).map_err(|e| e.to_string())
                    });
                match v {
                    Ok(v) => reports.push(v),
                    Err(e) => return fail(format!("{}: {e}", p.display())),
                }
            }
            for (name, svg) in xlns_bench::plot::plots(&reports) {
                let path = out_dir.join(name);
                if let Err(e) = std::fs::write(&path, svg) {
                    return fail(format!("{}: {e}", path.display()));
                }
                println!("{}", path.display());
            }
            ExitCode::SUCCESS
        }
        Command::ForwardingBench {
            sessions,
            repeat,
            tunnels,
            size,
            duration,
            rate,
            directions,
            dataplane,
            lns_cpu,
            gen_cpu,
            skip_bare,
            search,
            json,
        } => {
            let exe = match std::env::current_exe() {
                Ok(exe) => exe,
                Err(e) => return fail(e),
            };
            let dataplane = dataplane.unwrap_or_else(|| exe.with_file_name("xlns-dataplane"));
            let config = BenchConfig {
                sessions: sessions.first().copied().unwrap_or(1000),
                tunnels,
                sizes: size,
                duration: Duration::from_secs_f64(duration),
                rate_pps: rate,
                directions: directions.into_iter().map(Direction::from).collect(),
                dataplane,
                bench: exe,
                lns_cpu,
                gen_cpu,
                skip_bare,
                search: search.spec(),
            };
            if sessions.len() > 1 {
                return match scaling_bench(&config, &sessions, repeat) {
                    Ok(report) => {
                        if !json {
                            print!("{}", report.table());
                        }
                        for line in &report.lines {
                            match serde_json::to_string(line) {
                                Ok(text) => println!("{text}"),
                                Err(e) => return fail(e),
                            }
                        }
                        if json {
                            match serde_json::to_string(&report) {
                                Ok(full) => println!("{full}"),
                                Err(e) => return fail(e),
                            }
                        }
                        ExitCode::SUCCESS
                    }
                    Err(e) => fail(e),
                };
            }
            match forwarding_bench(&config) {
                Ok(report) => {
                    if !json {
                        print!("{}", report.table());
                    }
                    let line = serde_json::json!({
                        "sessions": report.sessions,
                        "tunnels": report.tunnels,
                        "size": report.size,
                        "rate_pps": report.rate_pps,
                        "duration_s": report.duration_s,
                        "loadavg_before": report.loadavg_before,
                        "comparisons": report.comparisons,
                        "bare_searches": report.bare_searches,
                        "xlns_searches": report.xlns_searches,
                    });
                    println!("{line}");
                    if json {
                        match serde_json::to_string(&report) {
                            Ok(full) => println!("{full}"),
                            Err(e) => return fail(e),
                        }
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
    }
}

/// Tears the driver's sessions down as asked and prints its report (the table unless
/// `json`, one JSON line with `json`, both with `both`); `Ok(false)` when `ok` was false,
/// a setup failed or the teardown timed out.
fn finish(
    driver: &mut LacDriver,
    mut ok: bool,
    teardown: TeardownArg,
    json: bool,
    both: bool,
) -> std::io::Result<bool> {
    ok &= match teardown {
        TeardownArg::CdnStopccn => driver.teardown(Teardown::CdnThenStopCcn)?,
        TeardownArg::Stopccn => driver.teardown(Teardown::StopCcnOnly)?,
        TeardownArg::None => true,
    };
    let report = driver.report();
    ok &= report.tunnel_failures == 0 && report.session_failures == 0;
    if !json || both {
        println!("{report}");
    }
    if json || both {
        println!(
            "{}",
            serde_json::to_string(&report).map_err(std::io::Error::other)?
        );
    }
    Ok(ok)
}

/// Runs the setup benchmark; `Ok(false)` when a setup failed or a phase timed out.
fn l2tp_setup(
    config: LacConfig,
    teardown: TeardownArg,
    json: bool,
    both: bool,
) -> std::io::Result<bool> {
    let mut driver = LacDriver::bind(config)?;
    let ok = driver.establish()?;
    finish(&mut driver, ok, teardown, json, both)
}

/// Runs the emulator with PPP: establish, export, hold, teardown; `Ok(false)` when a
/// setup failed or a phase timed out.
fn setup(
    args: &EmulatorArgs,
    hold: f64,
    teardown: TeardownArg,
    json: bool,
    both: bool,
) -> std::io::Result<bool> {
    let mut driver = LacDriver::bind(args.config())?;
    let ok = driver.establish()?;
    if let Some(path) = &args.sessions_out {
        driver.established()?.save(path)?;
    }
    if hold > 0.0 || args.churn.is_some() {
        let hold = Duration::from_secs_f64(hold.clamp(0.0, 365.0 * 86_400.0));
        driver.hold(std::time::Instant::now() + hold, &STOP, args.churn)?;
    }
    finish(&mut driver, ok, teardown, json, both)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn lab_and_traffic_read_the_same_rig_flags() {
        let rig = [
            "--lac-if",
            "lac0",
            "--core-if",
            "core0",
            "--core-netns",
            "srv",
            "--lns-access-mac",
            "02:00:00:00:00:01",
            "--lns-core-mac",
            "02:00:00:00:00:02",
            "--server",
            "10.2.0.2",
            "--direction",
            "up",
            "--size",
            "1400",
        ];
        let lab = ["xlns-bench", "lab", "--lns", "10.1.0.2:1701"];
        let traffic = ["xlns-bench", "traffic", "--sessions", "s.json"];
        let lab = Cli::try_parse_from(lab.iter().chain(&rig)).unwrap();
        let traffic = Cli::try_parse_from(traffic.iter().chain(&rig)).unwrap();
        let (Command::Lab { rig: a, .. }, Command::Traffic { rig: b, .. }) =
            (lab.command, traffic.command)
        else {
            panic!("not lab and traffic");
        };
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        assert_eq!(a.core_netns.as_deref(), Some("srv"));
        assert_eq!(a.lns_access_mac, [2, 0, 0, 0, 0, 1]);
        assert_eq!(a.server, Ipv4Addr::new(10, 2, 0, 2));
        assert_eq!(a.direction, DirArg::Up);
        assert_eq!(a.size, Sizes::parse("1400").unwrap());
    }

    #[test]
    fn compare_and_forwarding_bench_read_the_same_search_flags() {
        let search = [
            "--search-trial",
            "2",
            "--search-max",
            "1500",
            "--search-trials",
            "8",
            "--loss-tolerance",
            "0.001",
        ];
        for sub in ["compare", "forwarding-bench"] {
            let cli = Cli::try_parse_from(["xlns-bench", sub].iter().chain(&search)).unwrap();
            let (Command::Compare { search, .. } | Command::ForwardingBench { search, .. }) =
                cli.command
            else {
                panic!("{sub}");
            };
            let spec = search.spec().unwrap();
            assert_eq!(spec.trial, Duration::from_secs(2), "{sub}");
            assert_eq!(spec.max_pps, 1500.0, "{sub}");
            assert_eq!(spec.max_trials, 8, "{sub}");
            assert_eq!(spec.loss_tolerance, 0.001, "{sub}");
            let none = Cli::try_parse_from(["xlns-bench", sub]).unwrap();
            let (Command::Compare { search, .. } | Command::ForwardingBench { search, .. }) =
                none.command
            else {
                panic!("{sub}");
            };
            assert!(search.spec().is_none(), "{sub}");
        }
    }
}

//! xlns-dataplane: loads the XDP programs, creates the AF_XDP sockets, attaches to the
//! shared-memory segment xlnsd writes, and forwards with one pinned worker per core
//! (ARCHITECTURE.md §2).
//!
//! ```text
//! main thread (control)                          worker i (pinned to --cores[i])
//!   load + attach XDP (access, core roles)          owns UMEM i, XSK access/q=i, XSK core/q=i
//!   XSKMAP[i] = sockets of worker i                 refill, rx, process, tx, reap, poll when idle
//!   every 100 ms: stop? shm generation changed ->
//!     sync subscriber destinations (IPv4 /32s, Framed-Routes, IPv6 prefixes) into the
//!     core LPM maps
//!   every second (--core-gateway): re-read the gateway's ARP entry; a changed MAC
//!     address goes to the workers through one atomic word
//!   every --stats seconds: one stats line
//! ```
//!
//! Settings come from the `[dataplane]` section of the configuration file xlnsd reads too
//! (`--config`, `xlns_dataplane::config`); every command-line flag given overrides the
//! file. `--check-config` validates and exits (errors name file, line and key).
//!
//! Prints `xlns-dataplane: ready ...` on stdout once every worker runs. SIGTERM / SIGINT:
//! workers stop, sockets close, the bpf_links detach (a `kill -9` detaches them too:
//! traffic then falls back to the kernel until the data plane is back).

use std::collections::HashSet;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};
use xlns_dataplane::config::{self, ConfigError, DataplaneSection};
use xlns_dataplane::fastpath::{DropReason, WorkerCtx};
use xlns_dataplane::shm::{Reader, ShmError, SlotId};
use xlns_dataplane::wire::EthernetAddress;
use xlns_dataplane::worker::neighbour::{NeighbourRefresh, NextHopMac, Refresh};
use xlns_dataplane::worker::xsk::{BindMode, RingSizes};
use xlns_dataplane::worker::{Side, Worker, WorkerPlan, WorkerStats, host};
use xlns_ebpf::{AttachMode, Role, XdpConfig, XdpLink, XdpProgram};

#[derive(Debug, Parser)]
#[command(name = "xlns-dataplane", about = "xlns AF_XDP data plane")]
struct Args {
    /// The configuration file shared with xlnsd: its `[dataplane]` section (and `[l2tp]
    /// listen`, `[ppp] gateway`). Flags given on the command line override it.
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Check the configuration, print the first error with file, line and key, and exit.
    #[arg(long)]
    check_config: bool,
    /// Access interface (facing the LACs).
    #[arg(long)]
    access: Option<String>,
    /// Core interface (facing the network behind the LNS); omit with --one-armed.
    #[arg(long)]
    core: Option<String>,
    /// The access interface is the core interface too.
    #[arg(long)]
    one_armed: bool,
    /// The shared-memory segment xlnsd writes (waited for until it appears).
    #[arg(long)]
    shm: Option<PathBuf>,
    /// Workers; worker i serves queue i of each interface.
    #[arg(long, default_value_t = 1)]
    workers: u32,
    /// CPU cores to pin the workers to, comma separated (worker i on entry i mod len).
    #[arg(long, value_delimiter = ',')]
    cores: Vec<usize>,
    /// MAC address of the core next hop.
    #[arg(long, value_parser = parse_mac_arg)]
    core_next_hop_mac: Option<EthernetAddress>,
    /// Core gateway: its MAC address is taken from the kernel's ARP table
    /// (/proc/net/arp), resolved at start and re-read every second while running.
    #[arg(long)]
    core_gateway: Option<Ipv4Addr>,
    /// 802.1Q VLAN id of upstream frames on the core side (0: untagged).
    #[arg(long, default_value_t = 0)]
    core_vlan: u16,
    /// The LNS's PPP-side IPv4 address (clients' gateway: echo requests answered).
    #[arg(long)]
    gateway_v4: Option<Ipv4Addr>,
    /// Source of ICMP too-big messages toward the core (default: --gateway-v4).
    #[arg(long)]
    icmp_src_v4: Option<Ipv4Addr>,
    /// L2TP UDP port.
    #[arg(long, default_value_t = 1701)]
    l2tp_port: u16,
    /// UMEM frames per worker.
    #[arg(long, default_value_t = 8192)]
    frames: u32,
    /// UMEM frame size: 2048 (packets up to 1792 octets) or 4096 (jumbo).
    #[arg(long, default_value_t = 2048)]
    frame_size: u32,
    /// Entries per AF_XDP ring (power of two).
    #[arg(long, default_value_t = 2048)]
    ring_size: u32,
    /// XSK bind mode: auto (zero-copy where supported), copy, zerocopy.
    #[arg(long, default_value = "auto", value_parser = parse_bind_mode)]
    bind: BindMode,
    /// Attach XDP in generic (skb) mode instead of native.
    #[arg(long)]
    xdp_generic: bool,
    /// Print a stats line every this many seconds (0: never).
    #[arg(long, default_value_t = 0)]
    stats: u64,
}

fn parse_mac_arg(s: &str) -> Result<EthernetAddress, String> {
    host::parse_mac(s).ok_or_else(|| format!("not a MAC address: {s}"))
}

fn parse_bind_mode(s: &str) -> Result<BindMode, String> {
    match s {
        "auto" => Ok(BindMode::Auto),
        "copy" => Ok(BindMode::Copy),
        "zerocopy" => Ok(BindMode::ZeroCopy),
        _ => Err(format!("bind mode {s}: auto, copy or zerocopy")),
    }
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Async-signal-safe: one atomic store. Relaxed: the control loop polls it.
    STOP.store(true, Ordering::Relaxed);
}

fn install_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores an atomic; `signal` with a valid handler.
        unsafe {
            libc::signal(
                sig,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            )
        };
    }
}

type BoxError = Box<dyn std::error::Error>;

fn main() {
    let matches = Args::command().get_matches();
    let args = match Args::from_arg_matches(&matches) {
        Ok(args) => args,
        Err(e) => e.exit(),
    };
    let settings = match settings(&args, &matches) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("xlns-dataplane: {e}");
            std::process::exit(2);
        }
    };
    if args.check_config {
        println!("configuration ok: {settings}");
        return;
    }
    if let Err(e) = run(settings) {
        eprintln!("xlns-dataplane: {e}");
        std::process::exit(1);
    }
}

/// The `[dataplane]` section of `--config` (or the defaults), overridden by every flag
/// given on the command line, with the keys it must have checked.
fn settings(args: &Args, matches: &ArgMatches) -> Result<DataplaneSection, ConfigError> {
    let mut s = match &args.config {
        Some(path) => config::load_dataplane(path)?,
        None => DataplaneSection::default(),
    };
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    if let Some(access) = &args.access {
        s.access_interface = access.clone();
    }
    if let Some(core) = &args.core {
        s.core_interface = Some(core.clone());
        s.one_armed = false;
    }
    if args.one_armed {
        s.one_armed = true;
        s.core_interface = None;
    }
    if let Some(shm) = &args.shm {
        s.shm = shm.clone();
    }
    if given("workers") {
        s.workers = args.workers;
    }
    if given("cores") {
        s.cores = args.cores.clone();
    }
    if let Some(mac) = args.core_next_hop_mac {
        s.core_next_hop_mac = Some(mac);
    }
    if let Some(gw) = args.core_gateway {
        s.core_gateway = Some(gw);
    }
    if given("core_vlan") {
        s.core_vlan = args.core_vlan;
    }
    if let Some(gw) = args.gateway_v4 {
        s.gateway_v4 = Some(gw);
    }
    if let Some(src) = args.icmp_src_v4 {
        s.icmp_source_v4 = Some(src);
    }
    if given("l2tp_port") {
        s.l2tp_port = args.l2tp_port;
    }
    if given("frames") {
        s.frames = args.frames;
    }
    if given("frame_size") {
        s.frame_size = args.frame_size;
    }
    if given("ring_size") {
        s.ring_size = args.ring_size;
    }
    if given("bind") {
        s.bind = args.bind;
    }
    if args.xdp_generic {
        s.xdp_generic = true;
    }
    if given("stats") {
        s.stats_interval = Duration::from_secs(args.stats);
    }
    if s.access_interface.is_empty() {
        return Err(s.missing("access_interface", "required (or --access IF)"));
    }
    if s.core_interface.is_none() && !s.one_armed {
        return Err(s.missing(
            "core_interface",
            "required (or one_armed = true; --core IF or --one-armed)",
        ));
    }
    if s.core_next_hop_mac.is_none() && s.core_gateway.is_none() {
        return Err(s.missing(
            "core_gateway",
            "the core next hop is required: core_gateway or core_next_hop_mac \
             (--core-gateway, --core-next-hop-mac)",
        ));
    }
    if s.gateway_v4.is_none() {
        return Err(s.missing(
            "gateway_v4",
            "required: gateway_v4, or [ppp] gateway in the same file (--gateway-v4)",
        ));
    }
    if s.workers == 0 {
        return Err(s.missing("workers", "must be at least 1 (--workers)"));
    }
    Ok(s)
}

/// Wait for the segment; errors other than "not there yet" are fatal.
fn attach_shm(path: &std::path::Path) -> Result<Option<Reader>, BoxError> {
    let mut said = false;
    loop {
        match Reader::attach(path) {
            Ok(reader) => return Ok(Some(reader)),
            Err(ShmError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                if !said {
                    eprintln!("xlns-dataplane: waiting for {}", path.display());
                    said = true;
                }
            }
            Err(e @ ShmError::TooSmall { .. }) => {
                // xlnsd is creating it; try again.
                if !said {
                    eprintln!("xlns-dataplane: {e}; waiting");
                    said = true;
                }
            }
            Err(e) => return Err(e.into()),
        }
        // Relaxed: see on_signal.
        if STOP.load(Ordering::Relaxed) {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every destination routed into a published session: subscriber IPv4 /32s, Framed-Route
/// prefixes, IPv6 prefixes (own and delegated).
fn destinations(reader: &Reader) -> HashSet<(IpAddr, u8)> {
    (0..reader.geometry().max_sessions)
        .filter_map(|slot| reader.read_slot(SlotId(slot)))
        .filter(|rec| rec.upstream_key() != 0)
        .flat_map(|rec| rec.destinations().collect::<Vec<_>>())
        .collect()
}

/// Make `prog`'s subscriber prefixes exactly `want`.
fn sync_prefixes(
    prog: &XdpProgram,
    have: &mut HashSet<(IpAddr, u8)>,
    want: HashSet<(IpAddr, u8)>,
) -> Result<(), BoxError> {
    for (addr, len) in have.difference(&want) {
        match addr {
            IpAddr::V4(a) => prog.remove_subscriber_prefix_v4(*a, *len)?,
            IpAddr::V6(a) => prog.remove_subscriber_prefix_v6(*a, *len)?,
        };
    }
    for (addr, len) in want.difference(have) {
        match addr {
            IpAddr::V4(a) => prog.add_subscriber_prefix_v4(*a, *len)?,
            IpAddr::V6(a) => prog.add_subscriber_prefix_v6(*a, *len)?,
        }
    }
    *have = want;
    Ok(())
}

fn stats_line(reader: &Reader, stats: &[WorkerStats]) -> String {
    let sum = |f: fn(&WorkerStats) -> &std::sync::atomic::AtomicU64| -> u64 {
        // Relaxed: statistics.
        stats.iter().map(|s| f(s).load(Ordering::Relaxed)).sum()
    };
    let mut line = format!(
        "xlns-dataplane: stats rx_access={} rx_core={} tx_access={} tx_core={} dropped={} kicks={} \
         xsk_tx_ring_empty={}",
        sum(|s| &s.rx_access),
        sum(|s| &s.rx_core),
        sum(|s| &s.tx_access),
        sum(|s| &s.tx_core),
        sum(|s| &s.dropped),
        sum(|s| &s.kicks),
        sum(|s| &s.xsk_tx_ring_empty),
    );
    for reason in DropReason::ALL {
        let count: u64 = (0..stats.len() as u32)
            .filter_map(|w| reader.drop_counters(w).ok())
            .filter_map(|d| d.get(*reason as usize))
            .map(|c| c.load(Ordering::Relaxed))
            .sum();
        if count > 0 {
            line.push_str(&format!(" {}={count}", reason.name()));
        }
    }
    line
}

fn run(s: DataplaneSection) -> Result<(), BoxError> {
    install_signals();
    let core_if = match (&s.core_interface, s.one_armed) {
        (Some(core), false) => core.clone(),
        _ => s.access_interface.clone(),
    };
    let gateway_v4 = s.gateway_v4.ok_or("gateway_v4 is required")?;
    let access_ifindex = host::ifindex(&s.access_interface)?;
    let core_ifindex = host::ifindex(&core_if)?;
    let core_mac = host::interface_mac(&core_if)?;
    let next_hop = match (s.core_next_hop_mac, s.core_gateway) {
        (Some(mac), _) => mac,
        (None, Some(gw)) => host::resolve_neighbour(gw, &core_if, Duration::from_secs(5))?,
        (None, None) => return Err("--core-next-hop-mac or --core-gateway is required".into()),
    };
    let ctx = WorkerCtx {
        l2tp_port: s.l2tp_port,
        core_mac,
        core_next_hop_mac: next_hop,
        core_vlan: s.core_vlan,
        gateway_v4: gateway_v4.octets(),
        icmp_src_v4: s.icmp_source_v4.unwrap_or(gateway_v4).octets(),
        icmp_src_v6: [0; 16],
    };

    let Some(reader) = attach_shm(&s.shm)? else {
        return Ok(());
    };
    if s.workers > reader.geometry().max_workers {
        return Err(format!(
            "--workers {} but the segment has counter columns for {}",
            s.workers,
            reader.geometry().max_workers
        )
        .into());
    }

    let mode = if s.xdp_generic {
        AttachMode::Generic
    } else {
        AttachMode::Native
    };
    let config = |role| XdpConfig {
        l2tp_port: s.l2tp_port,
        role,
        ..XdpConfig::default()
    };
    let (access_prog, core_prog) = if s.one_armed {
        (XdpProgram::load(config(Role::OneArmed))?, None)
    } else {
        (
            XdpProgram::load(config(Role::Access))?,
            Some(XdpProgram::load(config(Role::Core))?),
        )
    };
    let prefix_prog = core_prog.as_ref().unwrap_or(&access_prog);
    let next_hop_mac = NextHopMac::new(next_hop);
    let mut refresh = s
        .core_gateway
        .filter(|_| s.core_next_hop_mac.is_none())
        .map(|gw| NeighbourRefresh::new(gw, &core_if, Instant::now()));

    let stats: Vec<WorkerStats> = (0..s.workers).map(|_| WorkerStats::default()).collect();
    let mut workers = Vec::new();
    for (index, stat) in (0..s.workers).zip(&stats) {
        let plan = WorkerPlan {
            index,
            queue: index,
            access_ifindex,
            core_ifindex: (!s.one_armed).then_some(core_ifindex),
            frames: s.frames,
            frame_size: s.frame_size,
            rings: RingSizes {
                rx: s.ring_size,
                tx: s.ring_size,
                fill: s.ring_size,
                comp: s.ring_size,
            },
            mode: s.bind,
            idle_poll_ms: 10,
        };
        let mut worker = new_worker_when_queue_free(plan, ctx, &reader, stat)
            .map_err(|e| format!("worker {index} (queue {index}): {e}"))?;
        if refresh.is_some() {
            worker.follow_next_hop(&next_hop_mac);
        }
        if let Some(fd) = worker.socket_fd(Side::Access) {
            access_prog.set_xsk(index, fd)?;
        }
        if let (Some(prog), Some(fd)) = (&core_prog, worker.socket_fd(Side::Core)) {
            prog.set_xsk(index, fd)?;
        }
        workers.push(worker);
    }

    let mut prefixes = HashSet::new();
    let mut generation = reader.generation();
    sync_prefixes(prefix_prog, &mut prefixes, destinations(&reader))?;

    let mut links: Vec<XdpLink> = vec![access_prog.attach(access_ifindex, mode)?];
    if let Some(prog) = &core_prog {
        links.push(prog.attach(core_ifindex, mode)?);
    }

    let worker_stop = AtomicBool::new(false);
    let cores = s.cores.clone();
    let result = std::thread::scope(|scope| -> Result<(), BoxError> {
        for (i, mut worker) in workers.into_iter().enumerate() {
            let core = (!cores.is_empty()).then(|| cores[i % cores.len()]);
            let stop = &worker_stop;
            std::thread::Builder::new()
                .name(format!("xlns-worker-{i}"))
                .spawn_scoped(scope, move || {
                    if let Some(id) = core
                        && !core_affinity::set_for_current(core_affinity::CoreId { id })
                    {
                        eprintln!("xlns-dataplane: worker {i}: could not pin to core {id}");
                    }
                    worker.run(stop);
                })?;
        }
        let mut out = std::io::stdout();
        writeln!(
            out,
            "xlns-dataplane: ready workers={} access={} core={} umem=shared sessions={} prefixes={}",
            s.workers,
            s.access_interface,
            core_if,
            reader.len(),
            prefixes.len()
        )?;
        out.flush()?;

        let mut last_stats = Instant::now();
        let outcome = loop {
            // Relaxed: see on_signal.
            if STOP.load(Ordering::Relaxed) {
                break Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
            let now_gen = reader.generation();
            if now_gen != generation {
                generation = now_gen;
                if let Err(e) = sync_prefixes(prefix_prog, &mut prefixes, destinations(&reader)) {
                    break Err(e);
                }
            }
            if let Some(r) = &mut refresh {
                match r.poll(Instant::now(), &next_hop_mac) {
                    Ok(Some(Refresh::Changed(mac))) => {
                        writeln!(out, "xlns-dataplane: core next hop is now {mac}")?;
                        out.flush()?;
                    }
                    Ok(_) => {}
                    Err(e) => eprintln!("xlns-dataplane: reading /proc/net/arp: {e}"),
                }
            }
            if !s.stats_interval.is_zero() && last_stats.elapsed() >= s.stats_interval {
                last_stats = Instant::now();
                writeln!(out, "{}", stats_line(&reader, &stats))?;
                out.flush()?;
            }
        };
        // Relaxed: the workers poll it within their idle timeout.
        worker_stop.store(true, Ordering::Relaxed);
        outcome
    });
    if !s.stats_interval.is_zero() {
        println!("{}", stats_line(&reader, &stats));
    }
    drop(links);
    println!("xlns-dataplane: stopped");
    result
}

/// How long a start waits for the kernel to release the AF_XDP queues of a previous
/// instance.
const QUEUE_RELEASE_WAIT: Duration = Duration::from_secs(10);

/// Creates a worker, waiting while its queues are still bound: after a `kill -9` the kernel
/// releases the dead instance's AF_XDP sockets asynchronously, and `bind` answers EBUSY
/// for a moment. A restart must not fail because of that.
fn new_worker_when_queue_free<'a>(
    plan: WorkerPlan,
    ctx: WorkerCtx,
    reader: &'a Reader,
    stats: &'a WorkerStats,
) -> std::io::Result<Worker<'a>> {
    let give_up = Instant::now() + QUEUE_RELEASE_WAIT;
    let mut said = false;
    loop {
        match Worker::new(plan, ctx, reader, stats) {
            Err(e) if e.kind() == std::io::ErrorKind::ResourceBusy && Instant::now() < give_up => {
                if !said {
                    eprintln!(
                        "xlns-dataplane: queue {} still bound (a previous instance?), waiting: {e}",
                        plan.queue
                    );
                    said = true;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

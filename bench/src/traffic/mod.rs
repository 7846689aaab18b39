//! The AF_XDP traffic generator and sink (issue #6).
//!
//! ```text
//!  ns lac: lac0 [TrafficPort] ──upstream L2TP/PPP/IPv4──>  LNS  ──IPv4──> srv0 [TrafficPort] ns srv
//!                  sink <──────── L2TP/PPP/IPv4 ─────────  LNS  <──IPv4── generator
//!  one thread, pinned: send a batch each way, reap completions, receive both sockets
//! ```
//!
//! [`Rig::open`] loads a one-armed xlns XDP program on each of the two interfaces (the
//! access rule takes the L2TP data the LNS sends down; the core rule takes packets to the
//! prefixes given: the subscribers on the LAC side, the server and the LNS on the server
//! side, so that a bare forwarder's unmodified frames are taken too) and opens one
//! [`TrafficPort`] on queue 0 of each. [`Rig::run`] then sends, for the duration, frames
//! for every session round-robin (upstream, downstream or both), at a fixed rate per
//! direction (a token bucket refilled once per batch) or as fast as the ring allows, and
//! receives on both sockets at the same time; after the duration it keeps receiving for
//! the drain time. Every frame carries a [`Stamp`] (flow, per-session sequence number,
//! CLOCK_MONOTONIC at send); the sink counts per session, notes reordering (a sequence
//! number below one already seen) and records latency in an HDR histogram (the clock is
//! read once per received batch). Loss per session is sent minus received after the
//! drain.

pub mod packet;
pub mod port;
pub mod search;
pub mod session;

use std::io::{self, IsTerminal};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;
use xlns_dataplane::shm::monotonic_ns;
use xlns_dataplane::worker::BATCH;
use xlns_ebpf::{AttachMode, Role, XdpConfig, XdpLink, XdpProgram};

/// Interval of the progress line, nanoseconds.
const PROGRESS_NS: u64 = 500_000_000;

pub use packet::{Macs, Sizes, Stamp};
pub use port::TrafficPort;
pub use session::{SessionList, TrafficSession};

/// Which directions a run sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Up,
    Down,
    Both,
}

impl Direction {
    pub const fn up(self) -> bool {
        matches!(self, Direction::Up | Direction::Both)
    }

    pub const fn down(self) -> bool {
        matches!(self, Direction::Down | Direction::Both)
    }

    pub const fn label(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
            Direction::Both => "both",
        }
    }
}

/// One run of the generator.
#[derive(Debug, Clone, Copy)]
pub struct RunSpec {
    pub direction: Direction,
    pub sizes: Sizes,
    /// Packets per second per direction; `None`: as fast as possible.
    pub rate_pps: Option<f64>,
    pub duration: Duration,
    /// How long to keep receiving after the last send.
    pub drain: Duration,
    /// A live progress line on stderr (only when stderr is a terminal), twice a second.
    pub progress: bool,
    /// Sending stops early (the drain still runs) once this is set (a signal handler).
    pub stop: Option<&'static AtomicBool>,
}

/// Latency percentiles, microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    pub samples: u64,
    pub min_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Latency {
        let us = |ns: u64| ns as f64 / 1000.0;
        Latency {
            samples: h.len(),
            min_us: us(h.min()),
            p50_us: us(h.value_at_quantile(0.50)),
            p90_us: us(h.value_at_quantile(0.90)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
            mean_us: h.mean() / 1000.0,
        }
    }
}

/// The figures of one direction of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DirReport {
    pub sent: u64,
    pub received: u64,
    /// Sent minus received, summed over sessions (never negative per session).
    pub lost: u64,
    pub loss_ratio: f64,
    pub sessions_with_loss: u64,
    /// Received with a sequence number below the highest one already seen.
    pub reordered: u64,
    /// Frames without a stamp, or with a stamp of an unknown flow.
    pub foreign: u64,
    pub tx_pps: f64,
    /// Received over the send duration: the forwarding rate.
    pub rx_pps: f64,
    pub latency: Latency,
    /// Frames received in each second of the run (the drain adds to the last).
    pub rx_per_second: Vec<u64>,
    /// Per session (in the order of the rig's sessions): packets and IP octets sent and
    /// received. Not in the JSON report (it can hold a million entries); the lab writes
    /// it on its own ([`crate::lab`]).
    #[serde(skip)]
    pub per_session: Vec<SessionCount>,
}

/// One session's packets and octets in one direction. Octets are the subscriber's IP
/// packet lengths (the inner packet on the access side, the whole IP packet on the core
/// side): what the LNS accounts (RFC 2866 §5.3, §5.4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SessionCount {
    pub sent: u64,
    pub sent_octets: u64,
    pub received: u64,
    pub received_octets: u64,
}

impl SessionCount {
    /// The sum of two runs.
    pub fn add(&mut self, other: &SessionCount) {
        self.sent += other.sent;
        self.sent_octets += other.sent_octets;
        self.received += other.received;
        self.received_octets += other.received_octets;
    }
}

/// The result of one run.
#[derive(Debug, Clone, Serialize)]
pub struct TrafficReport {
    pub direction: Direction,
    pub size: String,
    pub rate_pps: Option<f64>,
    pub sessions: usize,
    pub duration_s: f64,
    pub up: Option<DirReport>,
    pub down: Option<DirReport>,
    /// Sum of both directions' receive rates.
    pub rx_pps_total: f64,
    /// Kernel drops at the sink sockets (XDP_STATISTICS): rx_dropped + ring full.
    pub sink_kernel_drops: u64,
}

/// Per-direction bookkeeping of a run.
struct Flow {
    sent: Vec<u64>,
    sent_octets: Vec<u64>,
    received: Vec<u64>,
    received_octets: Vec<u64>,
    /// Highest sequence number seen + 1, per session.
    next: Vec<u64>,
    reordered: u64,
    foreign: u64,
    hist: Histogram<u64>,
    per_second: Vec<u64>,
    cursor: usize,
    tokens: f64,
    total_sent: u64,
}

impl Flow {
    fn new(sessions: usize, seconds: usize) -> io::Result<Flow> {
        // 1 ns .. 60 s, 3 significant digits.
        let hist = Histogram::new_with_bounds(1, 60_000_000_000, 3)
            .map_err(|e| io::Error::other(format!("histogram: {e}")))?;
        Ok(Flow {
            sent: vec![0; sessions],
            sent_octets: vec![0; sessions],
            received: vec![0; sessions],
            received_octets: vec![0; sessions],
            next: vec![0; sessions],
            reordered: 0,
            foreign: 0,
            hist,
            per_second: vec![0; seconds.max(1)],
            cursor: 0,
            tokens: 0.0,
            total_sent: 0,
        })
    }

    #[inline]
    fn record(&mut self, frame: &[u8], down: bool, now_ns: u64, start_ns: u64) {
        let Some(stamp) = Stamp::read(frame) else {
            self.foreign += 1;
            return;
        };
        if (stamp.flow & packet::FLOW_DOWN != 0) != down {
            self.foreign += 1;
            return;
        }
        let index = (stamp.flow & !packet::FLOW_DOWN) as usize;
        let (Some(received), Some(next)) = (self.received.get_mut(index), self.next.get_mut(index))
        else {
            self.foreign += 1;
            return;
        };
        *received += 1;
        if let Some(octets) = self.received_octets.get_mut(index) {
            // Downstream frames arrive L2TP-encapsulated at the LAC side.
            *octets += packet::sink_ip_len(frame, down).unwrap_or(0) as u64;
        }
        if stamp.seq < *next {
            self.reordered += 1;
        } else {
            *next = stamp.seq + 1;
        }
        let _ = self.hist.record(now_ns.saturating_sub(stamp.tx_ns).max(1));
        let second = (now_ns.saturating_sub(start_ns) / 1_000_000_000) as usize;
        let last = self.per_second.len() - 1;
        self.per_second[second.min(last)] += 1;
    }

    fn report(&self, secs: f64) -> DirReport {
        let received: u64 = self.received.iter().sum();
        let mut lost = 0;
        let mut sessions_with_loss = 0;
        for (s, r) in self.sent.iter().zip(&self.received) {
            let l = s.saturating_sub(*r);
            lost += l;
            sessions_with_loss += u64::from(l > 0);
        }
        DirReport {
            sent: self.total_sent,
            received,
            lost,
            loss_ratio: lost as f64 / self.total_sent.max(1) as f64,
            sessions_with_loss,
            reordered: self.reordered,
            foreign: self.foreign,
            tx_pps: self.total_sent as f64 / secs,
            rx_pps: received as f64 / secs,
            latency: Latency::of(&self.hist),
            rx_per_second: self.per_second.clone(),
            per_session: (0..self.sent.len())
                .map(|i| SessionCount {
                    sent: self.sent[i],
                    sent_octets: self.sent_octets[i],
                    received: self.received[i],
                    received_octets: self.received_octets[i],
                })
                .collect(),
        }
    }

    /// How many to send now, at most `BATCH`, under the token bucket (refilled for the
    /// time since `last_ns`, capped at one batch so an idle spell does not burst).
    #[inline]
    fn budget(&mut self, rate: Option<f64>, elapsed_ns: u64) -> usize {
        match rate {
            None => BATCH,
            Some(pps) => {
                self.tokens = (self.tokens + pps * elapsed_ns as f64 / 1e9).min(BATCH as f64 * 4.0);
                (self.tokens as usize).min(BATCH)
            }
        }
    }
}

/// The two generator/sink sockets, their XDP programs, the sessions and addresses.
#[derive(Debug)]
pub struct Rig {
    pub lac: TrafficPort,
    pub srv: TrafficPort,
    pub sessions: Vec<TrafficSession>,
    pub macs: Macs,
    pub server: Ipv4Addr,
    // Links before programs: detached first.
    _links: Vec<XdpLink>,
    _progs: Vec<XdpProgram>,
}

/// Where one side of the rig is.
#[derive(Debug, Clone)]
pub struct SideSpec {
    /// Network namespace (`/var/run/netns/NAME`); `None`: the current one.
    pub netns: Option<String>,
    pub ifname: String,
}

/// Run `f` in a thread inside network namespace `ns` (or here when `None`).
pub fn in_netns<T: Send>(
    ns: Option<&str>,
    f: impl FnOnce() -> io::Result<T> + Send,
) -> io::Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            if let Some(ns) = ns {
                enter_netns(ns)?;
            }
            f()
        })
        .join()
        .map_err(|_| io::Error::other("netns thread panicked"))?
    })
}

/// Move the calling thread into network namespace `ns`.
pub fn enter_netns(ns: &str) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(format!("/var/run/netns/{ns}"))?;
    // SAFETY: a valid namespace fd; affects the calling thread only.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Pin the calling thread to `cpu`.
pub fn pin_to(cpu: usize) -> io::Result<()> {
    // SAFETY: an all-zero cpu_set_t is empty; CPU_SET within its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The MAC address of `ifname` in the calling thread's network namespace
/// (`SIOCGIFHWADDR`: /sys shows the namespace it was mounted in, not the thread's).
pub fn interface_mac(ifname: &str) -> io::Result<[u8; 6]> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: plain socket(2); the fd is owned below.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: an all-zero ifreq is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    let name = ifname.as_bytes();
    if name.len() >= req.ifr_name.len() {
        return Err(io::Error::other(format!(
            "interface name {ifname} too long"
        )));
    }
    for (d, s) in req.ifr_name.iter_mut().zip(name) {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFHWADDR fills the ifreq we pass.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFHWADDR, &mut req) } < 0 {
        return Err(io::Error::other(format!(
            "SIOCGIFHWADDR {ifname}: {}",
            io::Error::last_os_error()
        )));
    }
    // SAFETY: the kernel filled the hwaddr member.
    let data = unsafe { req.ifr_ifru.ifru_hwaddr.sa_data };
    let mut mac = [0u8; 6];
    for (d, s) in mac.iter_mut().zip(data.iter()) {
        *d = *s as u8;
    }
    Ok(mac)
}

fn open_side(
    side: &SideSpec,
    prefixes: &[Ipv4Addr],
) -> io::Result<(TrafficPort, XdpLink, XdpProgram, [u8; 6])> {
    in_netns(side.netns.as_deref(), || {
        let err = |e: xlns_ebpf::Error| io::Error::other(format!("{}: {e}", side.ifname));
        let prog = XdpProgram::load(XdpConfig {
            role: Role::OneArmed,
            max_queues: 1,
            max_prefixes_v4: (prefixes.len() as u32).max(16),
            max_prefixes_v6: 16,
            ..XdpConfig::default()
        })
        .map_err(err)?;
        for p in prefixes {
            prog.add_subscriber_prefix_v4(*p, 32).map_err(err)?;
        }
        let port = TrafficPort::open(&side.ifname, &prog)?;
        let ifindex = xlns_dataplane::worker::host::ifindex(&side.ifname)?;
        let link = prog.attach(ifindex, AttachMode::Native).map_err(err)?;
        let mac = interface_mac(&side.ifname)?;
        Ok((port, link, prog, mac))
    })
}

impl Rig {
    /// Open both sides. `lns_access_mac` / `lns_core_mac`: where the generator sends
    /// upstream / downstream frames; `lns_addr` the LNS's outer address (taken by the
    /// server-side sink too, for a bare forwarder's frames).
    pub fn open(
        lac: &SideSpec,
        srv: &SideSpec,
        sessions: Vec<TrafficSession>,
        lns_access_mac: [u8; 6],
        lns_core_mac: [u8; 6],
        server: Ipv4Addr,
    ) -> io::Result<Rig> {
        let subscribers: Vec<Ipv4Addr> = sessions.iter().map(|s| s.subscriber).collect();
        let mut lns_addrs: Vec<Ipv4Addr> = sessions.iter().map(|s| s.lns_addr).collect();
        lns_addrs.sort_unstable();
        lns_addrs.dedup();
        lns_addrs.push(server);
        let (lac_port, lac_link, lac_prog, lac_mac) = open_side(lac, &subscribers)?;
        let (srv_port, srv_link, srv_prog, srv_mac) = open_side(srv, &lns_addrs)?;
        Ok(Rig {
            lac: lac_port,
            srv: srv_port,
            sessions,
            macs: Macs {
                lac: lac_mac,
                lns_access: lns_access_mac,
                server: srv_mac,
                lns_core: lns_core_mac,
            },
            server,
            _links: vec![lac_link, srv_link],
            _progs: vec![lac_prog, srv_prog],
        })
    }

    /// One run (in the calling thread: pin it first).
    pub fn run(&mut self, spec: &RunSpec) -> io::Result<TrafficReport> {
        let n = self.sessions.len();
        if n == 0 {
            return Err(io::Error::other("no sessions to send for"));
        }
        let seconds = spec.duration.as_secs_f64().ceil() as usize;
        let mut up = Flow::new(n, seconds)?;
        let mut down = Flow::new(n, seconds)?;
        let drops_before = self.sink_drops();
        let Rig {
            lac,
            srv,
            sessions,
            macs,
            server,
            ..
        } = self;
        let (macs, server) = (*macs, *server);
        let start = monotonic_ns();
        let mut end = start + spec.duration.as_nanos() as u64;
        let mut drain_end = end + spec.drain.as_nanos() as u64;
        let mut last = start;
        let mut size_n: u64 = 0;
        let progress = spec.progress && io::stderr().is_terminal();
        let mut next_progress = start;
        loop {
            let now = monotonic_ns();
            // Relaxed: a flag set by a signal handler, nothing published through it.
            if now < end && spec.stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                end = now;
                drain_end = now + spec.drain.as_nanos() as u64;
            }
            let sending = now < end;
            if progress && now >= next_progress {
                next_progress = now + PROGRESS_NS;
                let rx = |f: &Flow| f.received.iter().sum::<u64>();
                eprint!(
                    "\r\x1b[Ktraffic {:>5.1}/{:.1} s  up sent {} received {}  down sent {} received {}",
                    (now - start) as f64 / 1e9,
                    spec.duration.as_secs_f64(),
                    up.total_sent,
                    rx(&up),
                    down.total_sent,
                    rx(&down),
                );
            }
            if !sending && now >= drain_end {
                break;
            }
            if sending {
                let elapsed = now - last;
                last = now;
                if spec.direction.up() {
                    let want = up.budget(spec.rate_pps, elapsed);
                    let sent = lac.send(want, |buf| {
                        let i = up.cursor;
                        up.cursor = if i + 1 == n { 0 } else { i + 1 };
                        let stamp = Stamp {
                            flow: i as u32,
                            seq: up.sent[i],
                            tx_ns: now,
                        };
                        let len = spec.sizes.nth(size_n);
                        size_n += 1;
                        let written =
                            packet::write_upstream(buf, &macs, &sessions[i], server, len, stamp);
                        if written > 0 {
                            up.sent[i] += 1;
                            up.sent_octets[i] += len as u64;
                        }
                        written
                    });
                    up.tokens -= f64::from(sent);
                    up.total_sent += u64::from(sent);
                }
                if spec.direction.down() {
                    let want = down.budget(spec.rate_pps, elapsed);
                    let sent = srv.send(want, |buf| {
                        let i = down.cursor;
                        down.cursor = if i + 1 == n { 0 } else { i + 1 };
                        let stamp = Stamp {
                            flow: i as u32 | packet::FLOW_DOWN,
                            seq: down.sent[i],
                            tx_ns: now,
                        };
                        let len = spec.sizes.nth(size_n);
                        size_n += 1;
                        let written =
                            packet::write_downstream(buf, &macs, &sessions[i], server, len, stamp);
                        if written > 0 {
                            down.sent[i] += 1;
                            down.sent_octets[i] += len as u64;
                        }
                        written
                    });
                    down.tokens -= f64::from(sent);
                    down.total_sent += u64::from(sent);
                }
            }
            lac.nudge();
            srv.nudge();
            lac.reap();
            srv.reap();
            let rx_now = monotonic_ns();
            let got = srv.receive(|f| up.record(f, false, rx_now, start))
                + lac.receive(|f| down.record(f, true, rx_now, start));
            if !sending && got == 0 {
                lac.poll(1);
            }
        }
        if progress {
            eprintln!();
        }
        // The time actually spent sending (shorter when stopped early).
        let secs = ((end - start) as f64 / 1e9).max(1e-3);
        let up_report = spec.direction.up().then(|| up.report(secs));
        let down_report = spec.direction.down().then(|| down.report(secs));
        let rx_pps_total = up_report.as_ref().map_or(0.0, |r| r.rx_pps)
            + down_report.as_ref().map_or(0.0, |r| r.rx_pps);
        Ok(TrafficReport {
            direction: spec.direction,
            size: spec.sizes.label(),
            rate_pps: spec.rate_pps,
            sessions: n,
            duration_s: secs,
            up: up_report,
            down: down_report,
            rx_pps_total,
            sink_kernel_drops: self.sink_drops().saturating_sub(drops_before),
        })
    }

    fn sink_drops(&self) -> u64 {
        [&self.lac, &self.srv]
            .iter()
            .map(|p| {
                let (dropped, full, _) = p.kernel_drops();
                dropped + full
            })
            .sum()
    }
}

impl TrafficReport {
    /// A few human lines.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{} sessions, size {}, {}, {:.1} s\n",
            self.sessions,
            self.size,
            match self.rate_pps {
                Some(r) => format!("{r:.0} pps per direction"),
                None => "as fast as possible".to_owned(),
            },
            self.duration_s
        );
        for (name, dir) in [("up", &self.up), ("down", &self.down)] {
            if let Some(d) = dir {
                out.push_str(&format!(
                    "  {name:<4} sent {:>10} ({:.3} Mpps)  received {:>10} ({:.3} Mpps)  \
                     lost {} ({:.4} %, {} sessions)  reordered {}  latency p50 {:.1} us \
                     p99 {:.1} us p99.9 {:.1} us max {:.1} us\n",
                    d.sent,
                    d.tx_pps / 1e6,
                    d.received,
                    d.rx_pps / 1e6,
                    d.lost,
                    d.loss_ratio * 100.0,
                    d.sessions_with_loss,
                    d.reordered,
                    d.latency.p50_us,
                    d.latency.p99_us,
                    d.latency.p999_us,
                    d.latency.max_us
                ));
            }
        }
        out
    }
}

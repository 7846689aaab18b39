//! The bare AF_XDP forwarder: the honest ceiling of a rig (../shared/afxdp-notes.md,
//! "a bare forwarder"). Receive on one interface, rewrite the Ethernet addresses,
//! transmit on the other, both directions, no L2TP work.
//!
//! It is built like the data plane's worker (`xlns_dataplane::worker`, DPDK l2fwd's
//! shape) on the same raw rings: one UMEM shared by the sockets of queue 0 of both
//! interfaces, one loop that reads the clock, refills both fill rings from the free list,
//! receives a batch ([`BATCH`]) from each socket, rewrites each frame in place and queues
//! it on the other socket, posts the queued frames to the TX rings (kicking once per 32
//! while the ring asks for a wakeup), reaps completions, and `poll()`s both sockets when
//! nothing arrived. The XDP programs are xlns's own (access role on `a`, core role on `b`
//! with the given subscriber prefixes), so the kernel side is the same as the data
//! plane's and only the per-packet work differs.
//!
//! Contract: no allocation in the loop; every frame not transmitted is counted
//! (`tx_ring_full`, `runt`).

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use xlns_dataplane::worker::xsk::{BindMode, RingSizes, Umem, XskSocket};
use xlns_dataplane::worker::{BATCH, KICK_EVERY, host};
use xlns_ebpf::{AttachMode, Role, XdpConfig, XdpLink, XdpProgram};

/// What the forwarder is told.
#[derive(Debug, Clone)]
pub struct ForwarderConfig {
    pub a: String,
    pub b: String,
    /// Destination MAC written on frames leaving through `a` / `b`; `None`: swap the
    /// received frame's source and destination (l2fwd's "swap MACs").
    pub a_peer_mac: Option<[u8; 6]>,
    pub b_peer_mac: Option<[u8; 6]>,
    /// Prefixes (/32) the core-role program on `b` takes.
    pub b_prefixes: Vec<Ipv4Addr>,
    pub l2tp_port: u16,
    pub frames: u32,
    pub ring_size: u32,
    pub idle_poll_ms: i32,
}

/// Counters of a forwarder run.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ForwarderStats {
    pub rx_a: u64,
    pub rx_b: u64,
    pub tx_a: u64,
    pub tx_b: u64,
    pub tx_ring_full: u64,
    pub runt: u64,
    pub kicks: u64,
}

const EMPTY: libc::xdp_desc = libc::xdp_desc {
    addr: 0,
    len: 0,
    options: 0,
};

struct Port {
    sock: XskSocket,
    /// Source MAC of frames leaving here (this interface's address).
    own_mac: [u8; 6],
    /// Destination MAC of frames leaving here.
    peer_mac: Option<[u8; 6]>,
    pending: [libc::xdp_desc; 2 * BATCH],
    npending: usize,
}

/// The forwarder: both sockets, the UMEM, the XDP attachments.
pub struct Forwarder {
    // Sockets, then links, then programs, then the UMEM: the drop order.
    a: Port,
    b: Port,
    _links: Vec<XdpLink>,
    _progs: Vec<XdpProgram>,
    umem: Umem,
    free: Vec<u64>,
    rx: [libc::xdp_desc; BATCH],
    comp: [u64; 2 * BATCH],
    idle_poll_ms: i32,
    pub stats: ForwarderStats,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Forwarder {
    /// Load and attach the XDP programs, create the sockets (in the calling thread's
    /// network namespace).
    pub fn new(config: &ForwarderConfig) -> io::Result<Forwarder> {
        let err = |e: xlns_ebpf::Error| io::Error::other(e.to_string());
        let a_index = host::ifindex(&config.a)?;
        let b_index = host::ifindex(&config.b)?;
        let load = |role, prefixes: usize| {
            XdpProgram::load(XdpConfig {
                l2tp_port: config.l2tp_port,
                role,
                max_queues: 1,
                max_prefixes_v4: (prefixes as u32).max(16),
                max_prefixes_v6: 16,
            })
            .map_err(err)
        };
        let a_prog = load(Role::Access, 0)?;
        let b_prog = load(Role::Core, config.b_prefixes.len())?;
        for p in &config.b_prefixes {
            b_prog.add_subscriber_prefix_v4(*p, 32).map_err(err)?;
        }
        let umem = Umem::new(config.frames, 2048)?;
        let r = config.ring_size;
        let sizes = RingSizes {
            rx: r,
            tx: r,
            fill: r,
            comp: r,
        };
        let a_sock = XskSocket::create(&umem, a_index, 0, sizes, None, BindMode::Copy)?;
        let b_sock =
            XskSocket::create(&umem, b_index, 0, sizes, Some(a_sock.fd()), BindMode::Copy)?;
        a_prog.set_xsk(0, a_sock.fd()).map_err(err)?;
        b_prog.set_xsk(0, b_sock.fd()).map_err(err)?;
        let links = vec![
            a_prog.attach(a_index, AttachMode::Native).map_err(err)?,
            b_prog.attach(b_index, AttachMode::Native).map_err(err)?,
        ];
        let port = |sock, ifname: &str, peer_mac| -> io::Result<Port> {
            Ok(Port {
                sock,
                own_mac: crate::traffic::interface_mac(ifname)?,
                peer_mac,
                pending: [EMPTY; 2 * BATCH],
                npending: 0,
            })
        };
        let free = (0..u64::from(config.frames)).map(|i| i * 2048).collect();
        Ok(Forwarder {
            a: port(a_sock, &config.a, config.a_peer_mac)?,
            b: port(b_sock, &config.b, config.b_peer_mac)?,
            _links: links,
            _progs: vec![a_prog, b_prog],
            umem,
            free,
            rx: [EMPTY; BATCH],
            comp: [0; 2 * BATCH],
            idle_poll_ms: config.idle_poll_ms,
            stats: ForwarderStats::default(),
        })
    }

    /// Forward until `stop` is set.
    pub fn run(&mut self, stop: &AtomicBool) {
        // Relaxed: a flag, seen eventually.
        while !stop.load(Ordering::Relaxed) {
            self.refill();
            let got = self.receive(true) + self.receive(false);
            self.transmit();
            self.reap();
            if got == 0 {
                self.idle();
            }
        }
    }

    fn refill(&mut self) {
        let half = self.free.len().div_ceil(2);
        fill_from(&mut self.a.sock, &mut self.free, half);
        let all = self.free.len();
        fill_from(&mut self.b.sock, &mut self.free, all);
    }

    /// Receive a batch on `a` (from_a) or `b`, queue each frame on the other port.
    fn receive(&mut self, from_a: bool) -> usize {
        let Forwarder {
            a,
            b,
            umem,
            free,
            rx,
            stats,
            ..
        } = self;
        let (from, to) = if from_a { (a, b) } else { (b, a) };
        let n = from.sock.rx.consume(rx);
        if from_a {
            stats.rx_a += n as u64;
        } else {
            stats.rx_b += n as u64;
        }
        for desc in &rx[..n] {
            let base = umem.frame_base(desc.addr);
            let start = (desc.addr - base) as usize;
            // SAFETY: the frame came off our RX ring: ours until posted again.
            let Some(frame) = (unsafe { umem.frame_mut(base) }) else {
                continue;
            };
            let Some(eth) = frame.get_mut(start..start + 12) else {
                stats.runt += 1;
                free.push(base);
                continue;
            };
            if desc.len < 14 {
                stats.runt += 1;
                free.push(base);
                continue;
            }
            match to.peer_mac {
                Some(dst) => eth[0..6].copy_from_slice(&dst),
                None => {
                    let mut src = [0u8; 6];
                    src.copy_from_slice(&eth[6..12]);
                    eth.copy_within(0..6, 6);
                    eth[0..6].copy_from_slice(&src);
                }
            }
            if to.peer_mac.is_some() {
                eth[6..12].copy_from_slice(&to.own_mac);
            }
            match to.pending.get_mut(to.npending) {
                Some(slot) => {
                    *slot = *desc;
                    to.npending += 1;
                }
                None => {
                    stats.tx_ring_full += 1;
                    free.push(base);
                }
            }
        }
        n
    }

    fn transmit(&mut self) {
        let Forwarder {
            a,
            b,
            umem,
            free,
            stats,
            ..
        } = self;
        stats.tx_a += u64::from(flush(a, umem, free, stats));
        stats.tx_b += u64::from(flush(b, umem, free, stats));
    }

    fn reap(&mut self) {
        for port in [&mut self.a, &mut self.b] {
            let n = port.sock.comp.consume(&mut self.comp);
            for addr in &self.comp[..n] {
                if self.free.len() < self.free.capacity() {
                    self.free.push(self.umem.frame_base(*addr));
                }
            }
        }
    }

    fn idle(&mut self) {
        for port in [&mut self.a, &mut self.b] {
            if port.sock.tx.outstanding() > 0 && port.sock.tx.needs_wakeup() {
                let _ = port.sock.kick_tx();
                self.stats.kicks += 1;
            }
        }
        let mut fds = [
            libc::pollfd {
                fd: self.a.sock.fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.b.sock.fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfd entries.
        unsafe { libc::poll(fds.as_mut_ptr(), 2, self.idle_poll_ms) };
    }
}

fn fill_from(sock: &mut XskSocket, free: &mut Vec<u64>, limit: usize) {
    let want = limit.min(free.len()) as u32;
    if want == 0 {
        return;
    }
    let mut res = sock.fill.reserve(want);
    for _ in 0..res.len() {
        match free.pop() {
            Some(base) => {
                res.push(base);
            }
            None => break,
        }
    }
    res.commit();
}

fn flush(port: &mut Port, umem: &Umem, free: &mut Vec<u64>, stats: &mut ForwarderStats) -> u32 {
    if port.npending == 0 {
        return 0;
    }
    let pending = &port.pending[..port.npending];
    let mut res = port.sock.tx.reserve(pending.len() as u32);
    let room = res.len() as usize;
    for desc in &pending[..room] {
        res.push(*desc);
    }
    let sent = res.commit();
    for desc in &pending[room..] {
        stats.tx_ring_full += 1;
        free.push(umem.frame_base(desc.addr));
    }
    port.npending = 0;
    if sent > 0 && port.sock.tx.needs_wakeup() {
        for _ in 0..sent.div_ceil(KICK_EVERY) {
            let _ = port.sock.kick_tx();
            stats.kicks += 1;
        }
    }
    sent
}

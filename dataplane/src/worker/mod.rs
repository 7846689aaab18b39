//! The AF_XDP workers (ARCHITECTURE.md §2-§3; DPDK l2fwd's shape): one pinned loop per
//! core owning one UMEM, the sockets of its queue on the access and the core interface,
//! and its scratch arrays.
//!
//! ```text
//!   access XSK (queue q) ──rx──> process_upstream ──Forward──> core XSK tx
//!          ^   tx <──Reply──────────┘                              │
//!          │                                                       │
//!          └──────tx <──Forward── process_downstream <──rx── core XSK (queue q)
//!                                   └──Reply──> core XSK tx (ICMP too-big)
//!   one UMEM shared by both sockets: a frame received on one side is transmitted on the
//!   other by posting (frame base + offset, len); completions return it to the free list.
//! ```
//!
//! # The loop ([`Worker::run`])
//! Read the clock once (and the core next hop's MAC address, when it is refreshed:
//! [`neighbour`]); refill both fill rings from the free list; receive a batch
//! ([`BATCH`]) from each socket and process each frame with one function per direction;
//! transmit what was produced (kicking the kernel with `sendto` only when the TX ring
//! asks for a wakeup, once per 32 frames: copy mode transmits at most 32 per call);
//! reap completions back to the free list. When nothing arrived, wake any TX still
//! outstanding and `poll()` both sockets with a short timeout instead of spinning
//! (../shared/afxdp-notes.md: busy polling collapses when the cores are shared).
//!
//! # Contract
//! * No allocation, locking or logging in the loop: the free list and every scratch array
//!   are allocated in [`Worker::new`] (the free list never grows beyond the UMEM's frame
//!   count, its capacity).
//! * Every frame that is not transmitted is counted under a [`DropReason`]: the fast
//!   path's drops, `Pass` verdicts (an XSK cannot hand a frame to the kernel; the XDP
//!   program should never redirect such frames), and [`DropReason::TxRingFull`]. The
//!   counts go to the worker's column of the shared-memory drop array ([`glue`]).
//! * One-armed (no core socket): every frame is tried upstream first; one that is not
//!   L2TP for us (`Pass(not-l2tp)`) is processed downstream; everything goes out the one
//!   socket.

pub mod glue;
pub mod host;
pub mod neighbour;
pub mod xsk;

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::fastpath::{
    DropReason, Verdict, WorkerCtx, WorkerState, process_downstream, process_upstream,
};
use crate::shm::{Reader, monotonic_ns};
use glue::ShmStats;
use neighbour::NextHopMac;
use xsk::{BindMode, RingSizes, Umem, XskSocket};

/// Frames received per socket per iteration.
pub const BATCH: usize = 64;
/// Copy-mode `sendto` transmits at most this many frames (the kernel's TX_BATCH_SIZE).
pub const KICK_EVERY: u32 = 32;
/// How many frames ahead of the one being processed the loop prefetches. The frames were
/// written by the kernel on the core that received them (the receiving interface's XDP
/// program copies each packet into the UMEM in copy mode), so the first read of a frame's
/// headers misses the cache; perf showed that load as 59 % of `process_upstream`'s time
/// and the headroom store as 32 % of `process_downstream`'s (dataplane/README.md, "Where
/// the CPU goes").
const PREFETCH_AHEAD: usize = 4;
/// A cache line.
const LINE: u64 = 64;

/// Which side of the data plane a socket serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Access,
    Core,
}

/// Where a worker's sockets bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerPlan {
    /// Worker index (its shared-memory counter column).
    pub index: u32,
    /// The queue it serves on every interface.
    pub queue: u32,
    pub access_ifindex: u32,
    /// `None`: one-armed (the access interface is the core interface too).
    pub core_ifindex: Option<u32>,
    /// UMEM frames (all of them are this worker's).
    pub frames: u32,
    /// UMEM frame size: 2048 (packets up to 1792 bytes) or 4096 (jumbo).
    pub frame_size: u32,
    pub rings: RingSizes,
    pub mode: BindMode,
    /// `poll()` timeout when idle, in milliseconds.
    pub idle_poll_ms: i32,
}

/// A worker's packet counters, published once per iteration for the stats line (Relaxed
/// stores by the worker, Relaxed loads by the reader: statistics only).
#[derive(Debug, Default)]
pub struct WorkerStats {
    pub rx_access: AtomicU64,
    pub rx_core: AtomicU64,
    pub tx_access: AtomicU64,
    pub tx_core: AtomicU64,
    pub dropped: AtomicU64,
    pub kicks: AtomicU64,
}

/// The worker-local values behind [`WorkerStats`].
#[derive(Debug, Default, Clone, Copy)]
struct Local {
    rx_access: u64,
    rx_core: u64,
    tx_access: u64,
    tx_core: u64,
    dropped: u64,
    kicks: u64,
}

impl Local {
    fn publish(&self, to: &WorkerStats) {
        // Relaxed: single writer; the stats reader tolerates stale values.
        to.rx_access.store(self.rx_access, Ordering::Relaxed);
        to.rx_core.store(self.rx_core, Ordering::Relaxed);
        to.tx_access.store(self.tx_access, Ordering::Relaxed);
        to.tx_core.store(self.tx_core, Ordering::Relaxed);
        to.dropped.store(self.dropped, Ordering::Relaxed);
        to.kicks.store(self.kicks, Ordering::Relaxed);
    }
}

const EMPTY_DESC: libc::xdp_desc = libc::xdp_desc {
    addr: 0,
    len: 0,
    options: 0,
};

/// One socket and the frames waiting to go out of it.
#[derive(Debug)]
struct Port {
    sock: XskSocket,
    pending: [libc::xdp_desc; 2 * BATCH],
    npending: usize,
}

impl Port {
    fn new(sock: XskSocket) -> Port {
        Port {
            sock,
            pending: [EMPTY_DESC; 2 * BATCH],
            npending: 0,
        }
    }
}

/// The frames nobody (kernel or ring) holds. Capacity = UMEM frames, so `push` never
/// allocates.
#[derive(Debug)]
struct FreeList {
    frames: Vec<u64>,
}

impl FreeList {
    #[inline(always)]
    fn push(&mut self, base: u64) {
        // A full list means a frame came back twice (a kernel or accounting bug): never
        // grow, drop the duplicate.
        if self.frames.len() < self.frames.capacity() {
            self.frames.push(base);
        }
    }
}

/// A frame leaving the fast path without being transmitted: counted, recycled.
#[inline(always)]
fn discard(
    free: &mut FreeList,
    stats: &ShmStats<'_>,
    local: &mut Local,
    base: u64,
    reason: DropReason,
) {
    stats.count_drop(reason);
    local.dropped += 1;
    free.push(base);
}

/// Queue a transmit on `port`; a full pending array (cannot happen with two sides of
/// [`BATCH`]) counts as `tx-ring-full`.
#[inline(always)]
fn queue_tx(
    port: &mut Port,
    free: &mut FreeList,
    stats: &ShmStats<'_>,
    local: &mut Local,
    base: u64,
    offset: usize,
    len: usize,
) {
    match port.pending.get_mut(port.npending) {
        Some(desc) => {
            *desc = libc::xdp_desc {
                addr: base + offset as u64,
                len: len as u32,
                options: 0,
            };
            port.npending += 1;
        }
        None => discard(free, stats, local, base, DropReason::TxRingFull),
    }
}

/// A data-plane worker: one UMEM, one or two sockets, its share of the counters.
#[derive(Debug)]
pub struct Worker<'a> {
    plan: WorkerPlan,
    // Sockets before the UMEM: they close (and release it) first.
    access: Port,
    core: Option<Port>,
    umem: Umem,
    free: FreeList,
    rx: [libc::xdp_desc; BATCH],
    comp: [u64; 2 * BATCH],
    ctx: WorkerCtx,
    sessions: &'a Reader,
    state: WorkerState<ShmStats<'a>>,
    local: Local,
    stats: &'a WorkerStats,
    /// The core next hop's MAC address, when it is refreshed while running
    /// ([`Worker::follow_next_hop`]).
    next_hop: Option<&'a NextHopMac>,
}

impl<'a> Worker<'a> {
    /// Create the UMEM and the sockets (the core socket shares the access socket's UMEM)
    /// and claim counter column `plan.index` of `sessions`. The sockets still have to be
    /// put into the XDP programs' XSK maps ([`Worker::socket_fd`]).
    pub fn new(
        plan: WorkerPlan,
        ctx: WorkerCtx,
        sessions: &'a Reader,
        stats: &'a WorkerStats,
    ) -> io::Result<Worker<'a>> {
        let counters = sessions
            .counters(plan.index)
            .map_err(|e| io::Error::other(format!("worker {}: {e}", plan.index)))?;
        let umem = Umem::new(plan.frames, plan.frame_size)?;
        let access = XskSocket::create(
            &umem,
            plan.access_ifindex,
            plan.queue,
            plan.rings,
            None,
            plan.mode,
        )?;
        let core = match plan.core_ifindex {
            Some(ifindex) => Some(XskSocket::create(
                &umem,
                ifindex,
                plan.queue,
                plan.rings,
                Some(access.fd()),
                plan.mode,
            )?),
            None => None,
        };
        let mut frames = Vec::with_capacity(plan.frames as usize);
        frames.extend((0..u64::from(plan.frames)).map(|i| i * u64::from(plan.frame_size)));
        let slots = sessions.geometry().max_sessions;
        Ok(Worker {
            plan,
            access: Port::new(access),
            core: core.map(Port::new),
            umem,
            free: FreeList { frames },
            rx: [EMPTY_DESC; BATCH],
            comp: [0; 2 * BATCH],
            ctx,
            sessions,
            state: WorkerState::new(ShmStats::new(counters, slots)),
            local: Local::default(),
            stats,
            next_hop: None,
        })
    }

    /// Take the core next hop's MAC address from `next_hop` from now on (read once per
    /// loop iteration) instead of the fixed [`WorkerCtx::core_next_hop_mac`].
    pub fn follow_next_hop(&mut self, next_hop: &'a NextHopMac) {
        self.next_hop = Some(next_hop);
    }

    /// The socket of `side` (`None` for the core side of a one-armed worker).
    pub fn socket_fd(&self, side: Side) -> Option<BorrowedFd<'_>> {
        match side {
            Side::Access => Some(self.access.sock.fd()),
            Side::Core => self.core.as_ref().map(|p| p.sock.fd()),
        }
    }

    pub const fn plan(&self) -> &WorkerPlan {
        &self.plan
    }

    /// The kernel's statistics of the socket of `side`.
    pub fn xdp_statistics(&self, side: Side) -> Option<io::Result<libc::xdp_statistics>> {
        match side {
            Side::Access => Some(self.access.sock.statistics()),
            Side::Core => self.core.as_ref().map(|p| p.sock.statistics()),
        }
    }

    /// Forward until `stop` is set (checked once per iteration; an idle worker notices
    /// within `idle_poll_ms`).
    pub fn run(&mut self, stop: &AtomicBool) {
        // Relaxed: a flag; the loop only needs to see it eventually.
        while !stop.load(Ordering::Relaxed) {
            let now_ns = monotonic_ns();
            if let Some(next_hop) = self.next_hop {
                self.ctx.core_next_hop_mac = next_hop.load();
            }
            self.refill();
            let received = self.receive_access(now_ns) + self.receive_core(now_ns);
            self.transmit();
            self.reap();
            if received == 0 {
                self.idle();
            }
            self.local.publish(self.stats);
        }
    }

    /// Give free frames to the fill rings: each ring gets what it has room for, the
    /// access ring at most half the free list while the core ring is short too.
    fn refill(&mut self) {
        let Worker {
            access, core, free, ..
        } = self;
        let share = match core {
            Some(_) => free.frames.len().div_ceil(2),
            None => free.frames.len(),
        };
        fill_from(&mut access.sock, free, share);
        if let Some(core) = core {
            let all = free.frames.len();
            fill_from(&mut core.sock, free, all);
        }
    }

    fn receive_access(&mut self, now_ns: u64) -> usize {
        let Worker {
            access,
            core,
            umem,
            free,
            rx,
            ctx,
            sessions,
            state,
            local,
            ..
        } = self;
        let n = access.sock.rx.consume(rx);
        local.rx_access += n as u64;
        let rx = &rx[..n];
        for desc in rx.iter().take(PREFETCH_AHEAD) {
            prefetch_upstream(umem, desc.addr);
        }
        for (i, desc) in rx.iter().enumerate() {
            if let Some(ahead) = rx.get(i + PREFETCH_AHEAD) {
                prefetch_upstream(umem, ahead.addr);
            }
            let base = umem.frame_base(desc.addr);
            let start = (desc.addr - base) as usize;
            // SAFETY: the frame came off our RX ring: ours until we post it again.
            let Some(buf) = (unsafe { umem.frame_mut(base) }) else {
                continue;
            };
            let len = desc.len as usize;
            let mut verdict = process_upstream(buf, start, len, ctx, *sessions, state);
            let one_armed = core.is_none();
            if one_armed && verdict == Verdict::Pass(DropReason::NotL2tp) {
                verdict = process_downstream(buf, start, len, now_ns, ctx, *sessions, state);
                match verdict {
                    Verdict::Forward { offset, len } => {
                        queue_tx(access, free, &state.stats, local, base, offset, len)
                    }
                    Verdict::Reply { offset, len } => {
                        queue_tx(access, free, &state.stats, local, base, offset, len)
                    }
                    other => not_sent(other, state, free, local, base),
                }
                continue;
            }
            match verdict {
                Verdict::Forward { offset, len } => match core {
                    Some(core) => queue_tx(core, free, &state.stats, local, base, offset, len),
                    None => queue_tx(access, free, &state.stats, local, base, offset, len),
                },
                Verdict::Reply { offset, len } => {
                    queue_tx(access, free, &state.stats, local, base, offset, len)
                }
                other => not_sent(other, state, free, local, base),
            }
        }
        n
    }

    fn receive_core(&mut self, now_ns: u64) -> usize {
        let Worker {
            access,
            core,
            umem,
            free,
            rx,
            ctx,
            sessions,
            state,
            local,
            ..
        } = self;
        let Some(core) = core else {
            return 0;
        };
        let n = core.sock.rx.consume(rx);
        local.rx_core += n as u64;
        let rx = &rx[..n];
        for desc in rx.iter().take(PREFETCH_AHEAD) {
            prefetch_downstream(umem, desc.addr);
        }
        for (i, desc) in rx.iter().enumerate() {
            if let Some(ahead) = rx.get(i + PREFETCH_AHEAD) {
                prefetch_downstream(umem, ahead.addr);
            }
            let base = umem.frame_base(desc.addr);
            let start = (desc.addr - base) as usize;
            // SAFETY: as in `receive_access`.
            let Some(buf) = (unsafe { umem.frame_mut(base) }) else {
                continue;
            };
            let len = desc.len as usize;
            match process_downstream(buf, start, len, now_ns, ctx, *sessions, state) {
                Verdict::Forward { offset, len } => {
                    queue_tx(access, free, &state.stats, local, base, offset, len)
                }
                Verdict::Reply { offset, len } => {
                    queue_tx(core, free, &state.stats, local, base, offset, len)
                }
                other => not_sent(other, state, free, local, base),
            }
        }
        n
    }

    /// Post every pending frame to its TX ring and kick where the kernel asks for it.
    fn transmit(&mut self) {
        let Worker {
            access,
            core,
            umem,
            free,
            state,
            local,
            ..
        } = self;
        let sent = flush(access, umem, free, &state.stats, local);
        local.tx_access += u64::from(sent);
        if let Some(core) = core {
            let sent = flush(core, umem, free, &state.stats, local);
            local.tx_core += u64::from(sent);
        }
    }

    /// Completed transmissions back to the free list.
    fn reap(&mut self) {
        let Worker {
            access,
            core,
            umem,
            free,
            comp,
            ..
        } = self;
        for port in core::iter::once(access).chain(core.as_mut()) {
            let n = port.sock.comp.consume(comp);
            for addr in &comp[..n] {
                free.push(umem.frame_base(*addr));
            }
        }
    }

    /// Nothing arrived: make sure nothing waits in a TX ring, then sleep in `poll()`.
    fn idle(&mut self) {
        for port in core::iter::once(&mut self.access).chain(self.core.as_mut()) {
            if port.sock.tx.outstanding() > 0 && port.sock.tx.needs_wakeup() {
                // Errors other than "try again" mean the interface went away; the next
                // poll reports it too, and the loop keeps running until stopped.
                let _ = port.sock.kick_tx();
                self.local.kicks += 1;
            }
        }
        let mut fds = [libc::pollfd {
            fd: self.access.sock.fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }; 2];
        let mut nfds = 1;
        if let Some(core) = &self.core {
            fds[1].fd = core.sock.fd().as_raw_fd();
            nfds = 2;
        }
        // SAFETY: `fds` holds `nfds` valid pollfd entries.
        unsafe { libc::poll(fds.as_mut_ptr(), nfds, self.plan.idle_poll_ms) };
    }
}

/// Prefetch what upstream processing of the frame at `addr` reads and writes: the outer
/// headers up to the PPP header (first line) and the inner IP header behind them, where the
/// new Ethernet header goes too (second line).
#[inline(always)]
fn prefetch_upstream(umem: &Umem, addr: u64) {
    umem.prefetch(addr);
    umem.prefetch(addr + LINE);
}

/// Prefetch what downstream processing of the frame at `addr` reads and writes: the
/// packet's first line and the headroom line in front of it, where the session's
/// encapsulation template is written.
#[inline(always)]
fn prefetch_downstream(umem: &Umem, addr: u64) {
    umem.prefetch(addr.wrapping_sub(LINE));
    umem.prefetch(addr);
}

/// A verdict that sends nothing: count it and recycle the frame.
#[inline(always)]
fn not_sent(
    verdict: Verdict,
    state: &mut WorkerState<ShmStats<'_>>,
    free: &mut FreeList,
    local: &mut Local,
    base: u64,
) {
    match verdict {
        // Already in `state.drops`; the segment's column too.
        Verdict::Drop(reason) => discard(free, &state.stats, local, base, reason),
        // Not counted by the fast path: an XSK cannot hand the frame to the kernel.
        Verdict::Pass(reason) => {
            state.drops.count(reason);
            discard(free, &state.stats, local, base, reason);
        }
        Verdict::Forward { .. } | Verdict::Reply { .. } => free.push(base),
    }
}

/// Up to `limit` free frames into `sock`'s fill ring.
#[inline]
fn fill_from(sock: &mut XskSocket, free: &mut FreeList, limit: usize) {
    let want = limit.min(free.frames.len()) as u32;
    if want == 0 {
        return;
    }
    let mut res = sock.fill.reserve(want);
    for _ in 0..res.len() {
        match free.frames.pop() {
            Some(base) => {
                res.push(base);
            }
            None => break,
        }
    }
    res.commit();
}

/// Post `port`'s pending frames; what does not fit is counted as `tx-ring-full`. Kicks
/// once per [`KICK_EVERY`] frames posted while the ring asks for a wakeup.
#[inline]
fn flush(
    port: &mut Port,
    umem: &Umem,
    free: &mut FreeList,
    stats: &ShmStats<'_>,
    local: &mut Local,
) -> u32 {
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
        discard(
            free,
            stats,
            local,
            umem.frame_base(desc.addr),
            DropReason::TxRingFull,
        );
    }
    port.npending = 0;
    if sent > 0 && port.sock.tx.needs_wakeup() {
        for _ in 0..sent.div_ceil(KICK_EVERY) {
            let _ = port.sock.kick_tx();
            local.kicks += 1;
        }
    }
    sent
}

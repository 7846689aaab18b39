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
//! * Frames the kernel drops before they reach the worker (RX ring full, fill ring empty,
//!   ...) are counted too: about once a second ([`KERNEL_STATS_EVERY_NS`]) and once more
//!   when it stops, the worker reads each socket's `XDP_STATISTICS` (one `getsockopt`, no
//!   allocation) and adds what grew since the last read to the `xsk-*` reasons of its drop
//!   column ([`KernelDrops`]); the TX ring's empty-descriptor count, not a drop, goes to
//!   [`WorkerStats::xsk_tx_ring_empty`].
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
    DropReason, PREFETCH_AHEAD, Prefetch, Verdict, WorkerCtx, WorkerState, prefetch_downstream,
    prefetch_upstream, process_downstream, process_upstream,
};
use crate::shm::{Reader, monotonic_ns};
use glue::ShmStats;
use neighbour::NextHopMac;
use xsk::{BindMode, RingSizes, Umem, XskSocket};

/// Frames received per socket per iteration.
pub const BATCH: usize = 64;
/// Copy-mode `sendto` transmits at most this many frames (the kernel's TX_BATCH_SIZE).
pub const KICK_EVERY: u32 = 32;
/// How often a worker reads its sockets' kernel statistics.
pub const KERNEL_STATS_EVERY_NS: u64 = 1_000_000_000;
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
    /// The kernel found a TX ring empty (`XDP_STATISTICS` tx_ring_empty_descs, every
    /// socket of the worker): not a drop, a measure of how often a kick had nothing left.
    pub xsk_tx_ring_empty: AtomicU64,
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
    xsk_tx_ring_empty: u64,
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
        to.xsk_tx_ring_empty
            .store(self.xsk_tx_ring_empty, Ordering::Relaxed);
    }
}

const EMPTY_DESC: libc::xdp_desc = libc::xdp_desc {
    addr: 0,
    len: 0,
    options: 0,
};

/// The reasons the kernel's drops at the sockets are published under ([`KernelDrops`]).
pub const KERNEL_DROP_REASONS: [DropReason; 5] = [
    DropReason::XskRxRingFull,
    DropReason::XskFillRingEmpty,
    DropReason::XskRxDropped,
    DropReason::XskRxInvalidDescs,
    DropReason::XskTxInvalidDescs,
];

/// The kernel's drops at one socket, as [`DropReason`]s: cumulative values since the
/// socket was created, and the part already added to the shared-memory column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KernelDrops {
    /// `rx_ring_full`: the worker did not empty the RX ring in time.
    pub rx_ring_full: u64,
    /// `rx_fill_ring_empty_descs` in copy mode, where each is a dropped frame; zero in
    /// zero-copy mode, where the driver counts its refill misses there.
    pub fill_ring_empty: u64,
    /// `rx_dropped` less the fill-ring misses copy mode counts in it too.
    pub rx_dropped: u64,
    pub rx_invalid_descs: u64,
    pub tx_invalid_descs: u64,
}

impl KernelDrops {
    /// The drops in `s` (a socket bound in zero-copy mode when `zero_copy`).
    pub fn of(s: &libc::xdp_statistics, zero_copy: bool) -> KernelDrops {
        // Copy mode (net/xdp/xsk.c `__xsk_rcv`): a frame with no fill-ring entry bumps
        // both rx_dropped and the fill ring's empty count.
        let fill = if zero_copy {
            0
        } else {
            s.rx_fill_ring_empty_descs
        };
        KernelDrops {
            rx_ring_full: s.rx_ring_full,
            fill_ring_empty: fill,
            rx_dropped: s.rx_dropped.saturating_sub(fill),
            rx_invalid_descs: s.rx_invalid_descs,
            tx_invalid_descs: s.tx_invalid_descs,
        }
    }

    /// Each value with the reason it is published under ([`KERNEL_DROP_REASONS`]).
    pub const fn by_reason(&self) -> [(DropReason, u64); 5] {
        let r = KERNEL_DROP_REASONS;
        [
            (r[0], self.rx_ring_full),
            (r[1], self.fill_ring_empty),
            (r[2], self.rx_dropped),
            (r[3], self.rx_invalid_descs),
            (r[4], self.tx_invalid_descs),
        ]
    }

    /// The sum.
    pub const fn total(&self) -> u64 {
        self.rx_ring_full
            + self.fill_ring_empty
            + self.rx_dropped
            + self.rx_invalid_descs
            + self.tx_invalid_descs
    }
}

/// One socket and the frames waiting to go out of it.
#[derive(Debug)]
struct Port {
    sock: XskSocket,
    pending: [libc::xdp_desc; 2 * BATCH],
    npending: usize,
    zero_copy: bool,
    /// The kernel's drops already added to the segment.
    published: KernelDrops,
    tx_ring_empty: u64,
}

impl Port {
    fn new(sock: XskSocket) -> io::Result<Port> {
        let zero_copy = sock.zero_copy()?;
        Ok(Port {
            sock,
            pending: [EMPTY_DESC; 2 * BATCH],
            npending: 0,
            zero_copy,
            published: KernelDrops::default(),
            tx_ring_empty: 0,
        })
    }

    /// Read the socket's `XDP_STATISTICS` and add what each drop grew by since the last
    /// read to `stats`; returns the socket's TX-ring-empty count. No allocation (a failed
    /// read, an interface gone, changes nothing).
    fn publish_kernel_drops(&mut self, stats: &ShmStats<'_>) -> u64 {
        if let Some(raw) = self.sock.try_statistics() {
            let now = KernelDrops::of(&raw, self.zero_copy);
            for ((reason, value), (_, before)) in
                now.by_reason().into_iter().zip(self.published.by_reason())
            {
                if value > before {
                    stats.add_drops(reason, value - before);
                }
            }
            // Never backwards: the segment's counters only grow.
            let p = &mut self.published;
            p.rx_ring_full = p.rx_ring_full.max(now.rx_ring_full);
            p.fill_ring_empty = p.fill_ring_empty.max(now.fill_ring_empty);
            p.rx_dropped = p.rx_dropped.max(now.rx_dropped);
            p.rx_invalid_descs = p.rx_invalid_descs.max(now.rx_invalid_descs);
            p.tx_invalid_descs = p.tx_invalid_descs.max(now.tx_invalid_descs);
            self.tx_ring_empty = raw.tx_ring_empty_descs;
        }
        self.tx_ring_empty
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
    /// When to read the sockets' kernel statistics next (CLOCK_MONOTONIC ns).
    next_kernel_stats_ns: u64,
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
            access: Port::new(access)?,
            core: core.map(Port::new).transpose()?,
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
            next_kernel_stats_ns: 0,
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
            if now_ns >= self.next_kernel_stats_ns {
                self.next_kernel_stats_ns = now_ns + KERNEL_STATS_EVERY_NS;
                self.publish_kernel_drops();
            }
            self.local.publish(self.stats);
        }
        self.publish_kernel_drops();
        self.local.publish(self.stats);
    }

    /// Add the kernel's drops at every socket since the last call to the segment
    /// ([`KernelDrops`]).
    pub fn publish_kernel_drops(&mut self) {
        let Worker {
            access,
            core,
            state,
            local,
            ..
        } = self;
        local.xsk_tx_ring_empty = core::iter::once(access)
            .chain(core.as_mut())
            .map(|port| port.publish_kernel_drops(&state.stats))
            .sum();
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
        let batch = &rx[..n];
        let stages = prefetch_pays(sessions);
        let frames_ahead = frames_ahead(stages);
        for desc in batch.iter().take(frames_ahead) {
            prefetch_frame_up(umem, desc.addr);
        }
        for (i, desc) in batch.iter().enumerate() {
            if let Some(ahead) = batch.get(i + frames_ahead) {
                prefetch_frame_up(umem, ahead.addr);
            }
            if stages {
                prefetch_ahead(umem, batch, i, |buf, start, len, what| {
                    prefetch_upstream(buf, start, len, *sessions, state, what)
                });
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
        let batch = &rx[..n];
        let stages = prefetch_pays(sessions);
        let frames_ahead = frames_ahead(stages);
        for desc in batch.iter().take(frames_ahead) {
            prefetch_frame_down(umem, desc.addr);
        }
        for (i, desc) in batch.iter().enumerate() {
            if let Some(ahead) = batch.get(i + frames_ahead) {
                prefetch_frame_down(umem, ahead.addr);
            }
            if stages {
                prefetch_ahead(umem, batch, i, |buf, start, len, what| {
                    prefetch_downstream(buf, start, len, *sessions, state, what)
                });
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

/// How many frames ahead of the one being processed the loop prefetches the frame's own
/// lines ([`prefetch_frame_up`], [`prefetch_frame_down`]). The frames were written by the
/// kernel on the core that received them (the receiving interface's XDP program copies
/// each packet into the UMEM in copy mode), so the first read of a frame's headers misses
/// the cache; perf showed that load as 59 % of `process_upstream`'s time and the headroom
/// store as 32 % of `process_downstream`'s (dataplane/README.md, "Where the CPU goes").
/// With the session prefetch stages on, the bucket stage reads the headers of the frame
/// `2 * PREFETCH_AHEAD` ahead: the frame's lines go further ahead still.
#[inline(always)]
const fn frames_ahead(stages: bool) -> usize {
    if stages {
        3 * PREFETCH_AHEAD
    } else {
        PREFETCH_AHEAD
    }
}

/// Prefetch what upstream processing of the frame at `addr` reads and writes: the outer
/// headers up to the PPP header (first line) and the inner IP header behind them, where the
/// new Ethernet header goes too (second line).
#[inline(always)]
fn prefetch_frame_up(umem: &Umem, addr: u64) {
    umem.prefetch(addr);
    umem.prefetch(addr + LINE);
}

/// Prefetch what downstream processing of the frame at `addr` reads and writes: the
/// packet's first line and the headroom line in front of it, where the session's
/// encapsulation template is written.
#[inline(always)]
fn prefetch_frame_down(umem: &Umem, addr: u64) {
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

/// Segments with at least this many slots get the prefetch stages: their slots (256
/// octets each, 4 MiB here) and indexes no longer stay in a core's L2 cache. Smaller ones
/// do, and there the stages only add instructions (90 to 105 per packet, callgrind:
/// `fastpath_count ... prefetch`); with 1,000,000 sessions they took the criterion
/// figures down by 8 to 24 % (dataplane/README.md).
const PREFETCH_MIN_SLOTS: u32 = 16_384;

/// Whether the prefetch stages pay for `sessions` ([`PREFETCH_MIN_SLOTS`]).
#[inline(always)]
fn prefetch_pays(sessions: &Reader) -> bool {
    sessions.geometry().max_sessions >= PREFETCH_MIN_SLOTS
}

/// The received batch's prefetch stages ahead of frame `i` ([`Prefetch`]): the bucket
/// stage for frame `i + 2 * PREFETCH_AHEAD`, the slot stage for `i + PREFETCH_AHEAD`,
/// each through `stage` (`prefetch_upstream` or `prefetch_downstream`). Hints only.
#[inline(always)]
fn prefetch_ahead(
    umem: &Umem,
    batch: &[libc::xdp_desc],
    i: usize,
    stage: impl Fn(&[u8], usize, usize, Prefetch),
) {
    for (ahead, what) in [
        (2 * PREFETCH_AHEAD, Prefetch::Bucket),
        (PREFETCH_AHEAD, Prefetch::Slot),
    ] {
        let Some(desc) = batch.get(i + ahead) else {
            continue;
        };
        let base = umem.frame_base(desc.addr);
        // SAFETY: the frame came off our RX ring (ours until we post it again), and no
        // other reference into it exists: the loop has not reached it yet, the frame it
        // processes is another one (the kernel hands out distinct frames), and this view
        // ends with the call.
        if let Some(buf) = unsafe { umem.frame_mut(base) } {
            stage(buf, (desc.addr - base) as usize, desc.len as usize, what);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(rx_dropped: u64, ring_full: u64, fill_empty: u64) -> libc::xdp_statistics {
        libc::xdp_statistics {
            rx_dropped,
            rx_invalid_descs: 1,
            tx_invalid_descs: 2,
            rx_ring_full: ring_full,
            rx_fill_ring_empty_descs: fill_empty,
            tx_ring_empty_descs: 99,
        }
    }

    #[test]
    fn copy_mode_fill_ring_misses_are_not_counted_twice() {
        // 7 frames dropped for want of a fill-ring entry (counted in rx_dropped as well)
        // and 3 too large for a frame; 5 more found the RX ring full.
        let d = KernelDrops::of(&stats(10, 5, 7), false);
        assert_eq!(
            d,
            KernelDrops {
                rx_ring_full: 5,
                fill_ring_empty: 7,
                rx_dropped: 3,
                rx_invalid_descs: 1,
                tx_invalid_descs: 2,
            }
        );
        assert_eq!(d.total(), 18);
        assert_eq!(
            d.by_reason().map(|(r, _)| r.name()),
            [
                "xsk-rx-ring-full",
                "xsk-fill-ring-empty",
                "xsk-rx-dropped",
                "xsk-rx-invalid-descs",
                "xsk-tx-invalid-descs"
            ]
        );
    }

    #[test]
    fn zero_copy_fill_ring_misses_are_not_drops() {
        let d = KernelDrops::of(&stats(10, 5, 7), true);
        assert_eq!((d.fill_ring_empty, d.rx_dropped, d.total()), (0, 10, 18));
    }
}

//! One AF_XDP socket of the generator/sink: its own UMEM (frames `0..RX_FRAMES` receive,
//! the rest transmit), the raw rings of `xlns_dataplane::worker::xsk`, copy mode.
//!
//! Contract: [`TrafficPort::send`] builds at most as many frames as the TX ring and the
//! free list allow, commits them, and kicks the kernel once per 32 frames (copy-mode
//! `sendto` transmits at most 32 per call, ../shared/afxdp-notes.md);
//! [`TrafficPort::receive`] hands every received frame to a closure and gives the frame
//! straight back to the fill ring. Nothing allocates after [`TrafficPort::open`].

use std::io;
use std::os::fd::AsRawFd;

use xlns_dataplane::worker::xsk::{BindMode, RingSizes, Umem, XskSocket};
use xlns_dataplane::worker::{BATCH, KICK_EVERY, host};
use xlns_ebpf::XdpProgram;

const FRAME_SIZE: u32 = 2048;
const RX_FRAMES: u32 = 4096;
const TX_FRAMES: u32 = 4096;
const RING: u32 = 2048;
/// Received frames are copied to the XSK behind the XDP headroom; TX frames start here too.
const TX_OFFSET: u64 = 256;

const EMPTY: libc::xdp_desc = libc::xdp_desc {
    addr: 0,
    len: 0,
    options: 0,
};

/// A generator/sink socket on one interface queue 0.
#[derive(Debug)]
pub struct TrafficPort {
    sock: XskSocket,
    umem: Umem,
    tx_free: Vec<u64>,
    /// Received frames not yet back in the fill ring (the ring holds RING of RX_FRAMES).
    rx_spare: Vec<u64>,
    rx: [libc::xdp_desc; BATCH],
    comp: [u64; 256],
    pub kicks: u64,
}

impl TrafficPort {
    /// Open a socket on `ifname` queue 0 (in the calling thread's network namespace) and
    /// put it into `prog`'s XSK map at queue 0.
    pub fn open(ifname: &str, prog: &XdpProgram) -> io::Result<TrafficPort> {
        let ifindex = host::ifindex(ifname)?;
        let umem = Umem::new(RX_FRAMES + TX_FRAMES, FRAME_SIZE)?;
        let sizes = RingSizes {
            rx: RING,
            tx: RING,
            fill: RING,
            comp: RING,
        };
        let mut sock = XskSocket::create(&umem, ifindex, 0, sizes, None, BindMode::Copy)?;
        let mut rx_spare: Vec<u64> = (0..u64::from(RX_FRAMES))
            .map(|i| i * u64::from(FRAME_SIZE))
            .collect();
        let mut res = sock.fill.reserve(RING);
        for _ in 0..res.len() {
            if let Some(base) = rx_spare.pop() {
                res.push(base);
            }
        }
        res.commit();
        let tx_free = (u64::from(RX_FRAMES)..u64::from(RX_FRAMES + TX_FRAMES))
            .map(|i| i * u64::from(FRAME_SIZE))
            .collect();
        prog.set_xsk(0, sock.fd())
            .map_err(|e| io::Error::other(format!("XSK map of {ifname}: {e}")))?;
        Ok(TrafficPort {
            sock,
            umem,
            tx_free,
            rx_spare,
            rx: [EMPTY; BATCH],
            comp: [0; 256],
            kicks: 0,
        })
    }

    /// Build up to `want` frames with `build(n, frame) -> len` (len 0: skip) and transmit
    /// them; returns how many went into the TX ring.
    #[inline]
    pub fn send(&mut self, want: usize, mut build: impl FnMut(&mut [u8]) -> usize) -> u32 {
        let want = want.min(self.tx_free.len()).min(BATCH) as u32;
        if want == 0 {
            return 0;
        }
        let TrafficPort {
            sock,
            umem,
            tx_free,
            ..
        } = self;
        let mut res = sock.tx.reserve(want);
        for _ in 0..res.len() {
            let Some(base) = tx_free.pop() else { break };
            // SAFETY: a TX frame on the free list: neither the kernel nor a ring holds it.
            let Some(frame) = (unsafe { umem.frame_mut(base) }) else {
                continue;
            };
            let len = build(&mut frame[TX_OFFSET as usize..]);
            if len == 0 {
                tx_free.push(base);
                continue;
            }
            res.push(libc::xdp_desc {
                addr: base + TX_OFFSET,
                len: len as u32,
                options: 0,
            });
        }
        let sent = res.commit();
        if sent > 0 && self.sock.tx.needs_wakeup() {
            for _ in 0..sent.div_ceil(KICK_EVERY) {
                let _ = self.sock.kick_tx();
                self.kicks += 1;
            }
        }
        sent
    }

    /// Frames left in the TX ring get another kick (copy mode may have left some behind
    /// when a `sendto` returned EAGAIN).
    #[inline]
    pub fn nudge(&mut self) {
        if self.sock.tx.outstanding() > 0 && self.sock.tx.needs_wakeup() {
            let _ = self.sock.kick_tx();
            self.kicks += 1;
        }
    }

    /// Completed transmissions back to the free list.
    #[inline]
    pub fn reap(&mut self) {
        let n = self.sock.comp.consume(&mut self.comp);
        for addr in &self.comp[..n] {
            self.tx_free.push(self.umem.frame_base(*addr));
        }
    }

    /// Hand every received frame (up to one batch) to `sink`, then refill; returns how many.
    #[inline]
    pub fn receive(&mut self, mut sink: impl FnMut(&[u8])) -> usize {
        let n = self.sock.rx.consume(&mut self.rx);
        for desc in &self.rx[..n] {
            let base = self.umem.frame_base(desc.addr);
            let start = (desc.addr - base) as usize;
            // SAFETY: the frame came off our RX ring: ours until it goes back to fill.
            if let Some(frame) = unsafe { self.umem.frame_mut(base) }
                && let Some(bytes) = frame.get(start..start + desc.len as usize)
            {
                sink(bytes);
            }
            self.rx_spare.push(base);
        }
        let mut res = self.sock.fill.reserve(self.rx_spare.len() as u32);
        for _ in 0..res.len() {
            if let Some(base) = self.rx_spare.pop() {
                res.push(base);
            }
        }
        res.commit();
        n
    }

    /// Wait up to `ms` for something to receive.
    pub fn poll(&self, ms: i32) {
        let mut fd = libc::pollfd {
            fd: self.sock.fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut fd, 1, ms) };
    }

    /// The kernel's counters of this socket: (rx_dropped, rx_ring_full, rx_fill_ring_empty).
    pub fn kernel_drops(&self) -> (u64, u64, u64) {
        match self.sock.statistics() {
            Ok(s) => (s.rx_dropped, s.rx_ring_full, s.rx_fill_ring_empty_descs),
            Err(_) => (0, 0, 0),
        }
    }
}

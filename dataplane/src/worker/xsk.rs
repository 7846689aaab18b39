//! AF_XDP sockets driven directly over libc (../shared/afxdp-notes.md, "drive the rings
//! directly"): a UMEM, the four rings, and sockets that share one UMEM across interfaces.
//!
//! Why not xsk-rs 0.11: it builds here, but its `FrameDesc` has no public constructor and
//! no address setter, so a frame can only be transmitted from the address it was received
//! at. The fast path forwards *in place* at a different offset in the same frame
//! (upstream: the inner packet behind a new Ethernet header, further into the frame;
//! downstream: the template written into the headroom, earlier in the frame), which with
//! xsk-rs would cost a `memmove` of every packet. Here a TX descriptor is just
//! `(frame base + offset, len)`.
//!
//! # Contract
//! * [`Umem`]: one anonymous mapping of `frames * frame_size` bytes (frame size a power of
//!   two, 2048 or 4096), registered with the first socket created on it. Addresses handed
//!   to and from the kernel are offsets into it (aligned mode: the kernel masks fill
//!   addresses to the frame start and accepts TX descriptors anywhere inside one frame).
//! * [`XskSocket::create`]: the first socket of a UMEM registers it; later sockets pass
//!   `shared_with` (the first socket's fd) and bind with `XDP_SHARED_UMEM`. Each socket
//!   has its own fill and completion rings (the kernel requires them when the shared
//!   socket is bound to another interface or queue, and accepts them always), so frames
//!   move between interfaces without a copy: receive on one, post the same address on the
//!   other's TX ring.
//! * Rings: [`ProdRing`] (fill, TX) hands out RAII [`Reservation`]s (rolled back unless
//!   committed, xdpilone style); [`ConsRing`] (RX, completion) copies entries out into a
//!   caller's scratch slice and releases them.
//! * Every memory ordering is commented; the kernel is the other side of every ring.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, Ordering, fence};
use std::io;
use std::mem::{MaybeUninit, size_of};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// XDP's own headroom in front of a received packet (`XDP_PACKET_HEADROOM`).
pub const XDP_PACKET_HEADROOM: u32 = 256;

/// A UMEM: the frames every socket of one worker receives into and transmits from.
#[derive(Debug)]
pub struct Umem {
    base: NonNull<u8>,
    len: usize,
    frame_size: u32,
    frames: u32,
}

// SAFETY: the mapping is plain memory; which thread touches which frame is the owner's
// protocol (one worker owns a UMEM and every frame it holds).
unsafe impl Send for Umem {}

fn last_err(what: &str) -> io::Error {
    let err = io::Error::last_os_error();
    io::Error::new(err.kind(), format!("{what}: {err}"))
}

impl Umem {
    /// Map `frames` frames of `frame_size` bytes (a power of two, at least 2048).
    pub fn new(frames: u32, frame_size: u32) -> io::Result<Umem> {
        if !frame_size.is_power_of_two() || frame_size < 2048 || frames == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "UMEM: {frames} frames of {frame_size} bytes (need a power of two >= 2048)"
                ),
            ));
        }
        let len = frames as usize * frame_size as usize;
        // SAFETY: anonymous private mapping; the result is checked.
        let ptr = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(last_err("mmap UMEM"));
        }
        let base = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| last_err("mmap UMEM"))?;
        Ok(Umem {
            base,
            len,
            frame_size,
            frames,
        })
    }

    pub const fn frame_size(&self) -> u32 {
        self.frame_size
    }

    pub const fn frames(&self) -> u32 {
        self.frames
    }

    /// The base address (UMEM offset) of the frame containing UMEM offset `addr`.
    #[inline(always)]
    pub const fn frame_base(&self, addr: u64) -> u64 {
        addr & !(self.frame_size as u64 - 1)
    }

    /// The whole frame starting at `base`, or `None` when `base` is not a frame start in
    /// this UMEM.
    ///
    /// # Safety
    /// The caller owns the frame (it came off an RX or completion ring, or was never
    /// given to the kernel) and holds no other reference into it.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn frame_mut(&self, base: u64) -> Option<&mut [u8]> {
        let base = usize::try_from(base).ok()?;
        let size = self.frame_size as usize;
        if base % size != 0 || base + size > self.len {
            return None;
        }
        // SAFETY: in bounds of the mapping (checked above); exclusivity is the caller's
        // promise.
        Some(unsafe { core::slice::from_raw_parts_mut(self.base.as_ptr().add(base), size) })
    }

    /// Ask the CPU to start loading the cache line holding UMEM offset `addr` (a hint: no
    /// memory is accessed, an offset outside the UMEM is harmless). The kernel writes a
    /// received frame on the CPU that ran the receiving interface's XDP program, usually
    /// another core: the fast path's first read of the frame is a cache miss, which a
    /// prefetch issued a few frames ahead overlaps with the work on the frames before it.
    #[inline(always)]
    pub fn prefetch(&self, addr: u64) {
        #[cfg(target_arch = "x86_64")]
        {
            use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            // wrapping_add: a pointer computed, never dereferenced; prefetch does not fault.
            let p = self.base.as_ptr().wrapping_add(addr as usize);
            // SAFETY: PREFETCHT0 reads no memory architecturally and never faults, whatever
            // the address.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>()) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = addr;
    }

    fn reg(&self) -> libc::xdp_umem_reg {
        libc::xdp_umem_reg {
            addr: self.base.as_ptr() as u64,
            len: self.len as u64,
            chunk_size: self.frame_size,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        }
    }
}

impl Drop for Umem {
    fn drop(&mut self) {
        // Sockets registered on it hold the kernel's own reference to the pinned pages, so
        // unmapping before they close is safe.
        // SAFETY: the mapping made in `new`, unmapped once.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// A mapped ring region, unmapped on drop.
#[derive(Debug)]
struct RingMap {
    ptr: NonNull<u8>,
    len: usize,
}

impl Drop for RingMap {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map_ring`, unmapped once.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// The pointers of one ring inside its mapping.
#[derive(Debug)]
struct RingPtrs<T> {
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    flags: NonNull<AtomicU32>,
    descs: NonNull<T>,
    size: u32,
    _map: RingMap,
}

impl<T> RingPtrs<T> {
    #[inline(always)]
    fn producer(&self) -> &AtomicU32 {
        // SAFETY: inside the live mapping, 4-byte aligned (kernel layout).
        unsafe { self.producer.as_ref() }
    }

    #[inline(always)]
    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as above.
        unsafe { self.consumer.as_ref() }
    }

    #[inline(always)]
    fn slot(&self, index: u32) -> *mut T {
        // SAFETY: `index & (size - 1)` < size entries, all inside the mapping.
        unsafe { self.descs.as_ptr().add((index & (self.size - 1)) as usize) }
    }
}

fn map_ring<T>(
    fd: BorrowedFd<'_>,
    off: &libc::xdp_ring_offset,
    size: u32,
    pgoff: i64,
    what: &str,
) -> io::Result<RingPtrs<T>> {
    let len = off.desc as usize + size as usize * size_of::<T>();
    // SAFETY: maps the ring the kernel allocated for this socket; checked below.
    let ptr = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_POPULATE,
            fd.as_raw_fd(),
            pgoff,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(last_err(what));
    }
    let base = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| last_err(what))?;
    let map = RingMap { ptr: base, len };
    // SAFETY: the offsets come from the kernel and lie inside the mapping.
    unsafe {
        Ok(RingPtrs {
            producer: base.add(off.producer as usize).cast(),
            consumer: base.add(off.consumer as usize).cast(),
            flags: base.add(off.flags as usize).cast(),
            descs: base.add(off.desc as usize).cast(),
            size,
            _map: map,
        })
    }
}

/// A ring we produce into (fill, TX).
#[derive(Debug)]
pub struct ProdRing<T> {
    ring: RingPtrs<T>,
    cached_prod: u32,
    /// Consumer + size: the first index we may not write yet.
    cached_cons: u32,
}

// SAFETY: the ring is owned by one thread at a time (the worker); the raw pointers point
// into a mapping that lives as long as the value.
unsafe impl<T> Send for ProdRing<T> {}

impl<T: Copy> ProdRing<T> {
    fn new(ring: RingPtrs<T>) -> ProdRing<T> {
        // Acquire: pairs with the kernel's release of the consumer index (a fresh ring:
        // both 0).
        let cons = ring.consumer().load(Ordering::Acquire);
        let prod = ring.producer().load(Ordering::Relaxed);
        ProdRing {
            cached_prod: prod,
            cached_cons: cons.wrapping_add(ring.size),
            ring,
        }
    }

    /// Free entries, at least `want` if that many are free (re-reads the consumer only when
    /// the cached view has fewer).
    #[inline]
    pub fn free(&mut self, want: u32) -> u32 {
        let free = self.cached_cons.wrapping_sub(self.cached_prod);
        if free >= want {
            return free;
        }
        // Acquire: the kernel has finished reading the entries it released before we
        // overwrite them.
        self.cached_cons = self
            .ring
            .consumer()
            .load(Ordering::Acquire)
            .wrapping_add(self.ring.size);
        self.cached_cons.wrapping_sub(self.cached_prod)
    }

    /// Reserve up to `want` entries (fewer when the ring is fuller). Uncommitted entries
    /// are given back when the reservation drops.
    #[inline]
    pub fn reserve(&mut self, want: u32) -> Reservation<'_, T> {
        let n = want.min(self.free(want));
        let start = self.cached_prod;
        self.cached_prod = start.wrapping_add(n);
        Reservation {
            ring: self,
            start,
            n,
            written: 0,
        }
    }

    /// Entries produced and not yet consumed by the kernel.
    pub fn outstanding(&self) -> u32 {
        // Relaxed: a statistic.
        self.cached_prod
            .wrapping_sub(self.ring.consumer().load(Ordering::Relaxed))
    }

    /// Whether the kernel asked to be woken (`XDP_RING_NEED_WAKEUP`) to process this ring.
    #[inline]
    pub fn needs_wakeup(&self) -> bool {
        // SeqCst fence: our producer store must be ordered before the flag read (a
        // store-load pair), or we could miss a flag the kernel set after reading the old
        // producer. Relaxed load: the fence orders it.
        fence(Ordering::SeqCst);
        // SAFETY: inside the live mapping.
        let flags = unsafe { self.ring.flags.as_ref() }.load(Ordering::Relaxed);
        flags & libc::XDP_RING_NEED_WAKEUP != 0
    }

    pub const fn size(&self) -> u32 {
        self.ring.size
    }
}

/// Entries reserved on a [`ProdRing`]: written with [`Reservation::push`], published with
/// [`Reservation::commit`]; dropped uncommitted, the ring is as before.
#[derive(Debug)]
pub struct Reservation<'a, T: Copy> {
    ring: &'a mut ProdRing<T>,
    start: u32,
    n: u32,
    written: u32,
}

impl<T: Copy> Reservation<'_, T> {
    /// Entries reserved.
    pub const fn len(&self) -> u32 {
        self.n
    }

    pub const fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Write the next entry; false when the reservation is full.
    #[inline(always)]
    pub fn push(&mut self, value: T) -> bool {
        if self.written == self.n {
            return false;
        }
        // SAFETY: a reserved slot the kernel does not read until we publish it.
        unsafe {
            self.ring
                .ring
                .slot(self.start.wrapping_add(self.written))
                .write(value)
        };
        self.written += 1;
        true
    }

    /// Publish the entries written (the unwritten rest goes back to the ring); returns how
    /// many.
    #[inline]
    pub fn commit(mut self) -> u32 {
        let end = self.start.wrapping_add(self.written);
        // Release: the descriptors written above are visible to the kernel before it sees
        // the new producer index.
        self.ring.ring.producer().store(end, Ordering::Release);
        // Drop now keeps `cached_prod` at `end`: nothing to roll back.
        self.start = end;
        self.written
    }
}

impl<T: Copy> Drop for Reservation<'_, T> {
    fn drop(&mut self) {
        // Roll back whatever was not committed (nothing after `commit`).
        self.ring.cached_prod = self.start;
    }
}

/// A ring we consume from (RX, completion).
#[derive(Debug)]
pub struct ConsRing<T> {
    ring: RingPtrs<T>,
    cached_prod: u32,
    cached_cons: u32,
}

// SAFETY: as for ProdRing.
unsafe impl<T> Send for ConsRing<T> {}

impl<T: Copy> ConsRing<T> {
    fn new(ring: RingPtrs<T>) -> ConsRing<T> {
        let cons = ring.consumer().load(Ordering::Relaxed);
        ConsRing {
            cached_prod: cons,
            cached_cons: cons,
            ring,
        }
    }

    /// Copy up to `out.len()` entries into `out`, release them to the kernel, return how
    /// many.
    #[inline]
    pub fn consume(&mut self, out: &mut [T]) -> usize {
        let want = u32::try_from(out.len()).unwrap_or(u32::MAX);
        let mut avail = self.cached_prod.wrapping_sub(self.cached_cons);
        if avail == 0 {
            // Acquire: the kernel's entries up to its producer index are visible.
            self.cached_prod = self.ring.producer().load(Ordering::Acquire);
            avail = self.cached_prod.wrapping_sub(self.cached_cons);
        }
        let n = avail.min(want);
        for (i, slot) in out.iter_mut().take(n as usize).enumerate() {
            // SAFETY: an entry published by the kernel and not yet released.
            *slot = unsafe {
                self.ring
                    .slot(self.cached_cons.wrapping_add(i as u32))
                    .read()
            };
        }
        if n > 0 {
            self.cached_cons = self.cached_cons.wrapping_add(n);
            // Release: our reads of the entries happen before the kernel may reuse them.
            self.ring
                .consumer()
                .store(self.cached_cons, Ordering::Release);
        }
        n as usize
    }

    pub const fn size(&self) -> u32 {
        self.ring.size
    }
}

/// Ring sizes of one socket (powers of two).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingSizes {
    pub rx: u32,
    pub tx: u32,
    pub fill: u32,
    pub comp: u32,
}

impl Default for RingSizes {
    fn default() -> Self {
        RingSizes {
            rx: 2048,
            tx: 2048,
            fill: 2048,
            comp: 2048,
        }
    }
}

/// How the first socket of a UMEM binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BindMode {
    /// Zero-copy where the driver supports it, copy otherwise (the kernel decides).
    #[default]
    Auto,
    /// `XDP_COPY`.
    Copy,
    /// `XDP_ZEROCOPY` (fails where unsupported, e.g. on veth).
    ZeroCopy,
}

/// An AF_XDP socket bound to one interface queue, with its four rings.
#[derive(Debug)]
pub struct XskSocket {
    // Rings first: they unmap before the socket closes.
    pub rx: ConsRing<libc::xdp_desc>,
    pub tx: ProdRing<libc::xdp_desc>,
    pub fill: ProdRing<u64>,
    pub comp: ConsRing<u64>,
    fd: OwnedFd,
    ifindex: u32,
    queue: u32,
}

fn setsockopt<T>(fd: BorrowedFd<'_>, name: libc::c_int, value: &T, what: &str) -> io::Result<()> {
    // SAFETY: `value` points to a live T of the size given.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_XDP,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(last_err(what));
    }
    Ok(())
}

impl XskSocket {
    /// Create a socket on `ifindex`/`queue` over `umem`. The first socket of a UMEM passes
    /// `shared_with: None` and registers it; every later one passes the first socket's fd.
    pub fn create(
        umem: &Umem,
        ifindex: u32,
        queue: u32,
        sizes: RingSizes,
        shared_with: Option<BorrowedFd<'_>>,
        mode: BindMode,
    ) -> io::Result<XskSocket> {
        // SAFETY: plain socket(2).
        let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(last_err("socket(AF_XDP)"));
        }
        // SAFETY: a fresh fd nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let b = fd.as_fd();
        if shared_with.is_none() {
            setsockopt(b, libc::XDP_UMEM_REG, &umem.reg(), "XDP_UMEM_REG")?;
        }
        setsockopt(
            b,
            libc::XDP_UMEM_FILL_RING,
            &sizes.fill,
            "XDP_UMEM_FILL_RING",
        )?;
        setsockopt(
            b,
            libc::XDP_UMEM_COMPLETION_RING,
            &sizes.comp,
            "XDP_UMEM_COMPLETION_RING",
        )?;
        setsockopt(b, libc::XDP_RX_RING, &sizes.rx, "XDP_RX_RING")?;
        setsockopt(b, libc::XDP_TX_RING, &sizes.tx, "XDP_TX_RING")?;

        let mut off = MaybeUninit::<libc::xdp_mmap_offsets>::zeroed();
        let mut optlen = size_of::<libc::xdp_mmap_offsets>() as libc::socklen_t;
        // SAFETY: `off` is writable for `optlen` bytes.
        let rc = unsafe {
            libc::getsockopt(
                b.as_raw_fd(),
                libc::SOL_XDP,
                libc::XDP_MMAP_OFFSETS,
                off.as_mut_ptr().cast(),
                &mut optlen,
            )
        };
        if rc < 0 {
            return Err(last_err("XDP_MMAP_OFFSETS"));
        }
        // SAFETY: zero-initialised and filled in by the kernel (all fields are integers).
        let off = unsafe { off.assume_init() };

        let rx = ConsRing::new(map_ring(
            b,
            &off.rx,
            sizes.rx,
            libc::XDP_PGOFF_RX_RING,
            "mmap RX ring",
        )?);
        let tx = ProdRing::new(map_ring(
            b,
            &off.tx,
            sizes.tx,
            libc::XDP_PGOFF_TX_RING,
            "mmap TX ring",
        )?);
        let fill = ProdRing::new(map_ring(
            b,
            &off.fr,
            sizes.fill,
            libc::XDP_UMEM_PGOFF_FILL_RING as i64,
            "mmap fill ring",
        )?);
        let comp = ConsRing::new(map_ring(
            b,
            &off.cr,
            sizes.comp,
            libc::XDP_UMEM_PGOFF_COMPLETION_RING as i64,
            "mmap completion ring",
        )?);

        // The kernel refuses XDP_COPY / XDP_ZEROCOPY / XDP_USE_NEED_WAKEUP together with
        // XDP_SHARED_UMEM: a shared socket inherits them from the UMEM's first socket.
        let (flags, shared_fd) = match shared_with {
            Some(first) => (libc::XDP_SHARED_UMEM, first.as_raw_fd() as u32),
            None => (
                libc::XDP_USE_NEED_WAKEUP
                    | match mode {
                        BindMode::Auto => 0,
                        BindMode::Copy => libc::XDP_COPY,
                        BindMode::ZeroCopy => libc::XDP_ZEROCOPY,
                    },
                0,
            ),
        };
        let addr = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: flags,
            sxdp_ifindex: ifindex,
            sxdp_queue_id: queue,
            sxdp_shared_umem_fd: shared_fd,
        };
        // SAFETY: `addr` is a sockaddr_xdp of the size given.
        let rc = unsafe {
            libc::bind(
                b.as_raw_fd(),
                (&raw const addr).cast(),
                size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(last_err(&format!(
                "bind(AF_XDP) ifindex {ifindex} queue {queue}{}",
                if shared_with.is_some() {
                    " (shared UMEM)"
                } else {
                    ""
                }
            )));
        }
        Ok(XskSocket {
            rx,
            tx,
            fill,
            comp,
            fd,
            ifindex,
            queue,
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub const fn ifindex(&self) -> u32 {
        self.ifindex
    }

    pub const fn queue(&self) -> u32 {
        self.queue
    }

    /// Kick the kernel to transmit (copy mode: up to 32 frames per call). EAGAIN, EBUSY,
    /// ENOBUFS and ENETDOWN mean "try again later" and are not errors here.
    #[inline]
    pub fn kick_tx(&self) -> io::Result<()> {
        // SAFETY: sendto with no data on our own socket: the AF_XDP wakeup.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                core::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                core::ptr::null(),
                0,
            )
        };
        if rc >= 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EAGAIN | libc::EBUSY | libc::ENOBUFS | libc::ENETDOWN) => Ok(()),
            _ => Err(err),
        }
    }

    /// The kernel's per-socket statistics (`XDP_STATISTICS`).
    pub fn statistics(&self) -> io::Result<libc::xdp_statistics> {
        self.try_statistics()
            .ok_or_else(|| last_err("XDP_STATISTICS"))
    }

    /// Whether the socket is bound in zero-copy mode (`XDP_OPTIONS`).
    pub fn zero_copy(&self) -> io::Result<bool> {
        let mut options = libc::xdp_options { flags: 0 };
        let mut optlen = size_of::<libc::xdp_options>() as libc::socklen_t;
        // SAFETY: `options` is writable for `optlen` bytes.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_XDP,
                libc::XDP_OPTIONS,
                (&raw mut options).cast(),
                &mut optlen,
            )
        };
        if rc < 0 {
            return Err(last_err("XDP_OPTIONS"));
        }
        Ok(options.flags & libc::XDP_OPTIONS_ZEROCOPY != 0)
    }

    /// [`XskSocket::statistics`] without allocating, also when it fails (for the worker
    /// loop): `None` when `getsockopt` failed, `errno` saying why.
    pub fn try_statistics(&self) -> Option<libc::xdp_statistics> {
        let mut stats = MaybeUninit::<libc::xdp_statistics>::zeroed();
        let mut optlen = size_of::<libc::xdp_statistics>() as libc::socklen_t;
        // SAFETY: `stats` is writable for `optlen` bytes.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_XDP,
                libc::XDP_STATISTICS,
                stats.as_mut_ptr().cast(),
                &mut optlen,
            )
        };
        if rc < 0 {
            return None;
        }
        // SAFETY: zero-initialised, integers only.
        Some(unsafe { stats.assume_init() })
    }
}

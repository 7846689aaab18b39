//! The mapping: creating a segment file, attaching to one (with every check), and typed
//! views of its tables. Also the slot sequence lock, shared by both sides.

use core::mem::size_of;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering, fence};
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::Which;
use super::error::ShmError;
use super::index::Index;
use super::layout::{
    ABI_VERSION, DROP_REASONS, Geometry, Header, Layout, MAGIC, MAX_PROBE, RECORD_WORDS, Region,
    Slot, SlotCounters,
};
use crate::session::{
    Downstream, SessionHead, SessionRecord, TEMPLATE_CAPACITY, TemplateLayout, UpstreamV4,
};

/// How often a reader retries a slot whose sequence lock moved under it before it gives
/// up (returns "no session"). Bounded so that a writer killed in the middle of a write (an
/// odd sequence forever) never hangs a worker.
const SEQLOCK_RETRIES: u32 = 64;

/// A mapped segment. Everything another process may write is reached through atomics.
#[derive(Debug)]
pub struct Segment {
    base: NonNull<u8>,
    len: usize,
    layout: Layout,
    /// Per index ([`Which`] order): its two tables' first buckets and their length,
    /// computed once from the (checked) layout, so a lookup builds its [`Index`] from
    /// three loads instead of recomputing offsets per packet.
    indexes: [IndexTables; 4],
    /// The session slots' first slot (`max_sessions` of them).
    slots: NonNull<Slot>,
    path: PathBuf,
    _file: File,
}

/// One index's tables, precomputed ([`Segment::indexes`]).
#[derive(Debug, Clone, Copy)]
struct IndexTables {
    tables: [NonNull<AtomicU64>; 2],
    len: usize,
    /// [`Index::shift`] for `len` buckets.
    shift: u32,
}

/// Every index's tables in the mapping at `base` laid out as `layout`.
fn index_tables(base: NonNull<u8>, layout: &Layout) -> [IndexTables; 4] {
    let cap = layout.index_capacity as usize;
    let of = |r: Region, len: usize| {
        // SAFETY: the region lies inside the mapping (the layout was checked against the
        // mapping's length) and holds two tables of `len` buckets.
        let first = unsafe { base.add(r.offset as usize) }.cast::<AtomicU64>();
        IndexTables {
            // SAFETY: as above; the second table follows the first.
            tables: [first, unsafe { first.add(len) }],
            len,
            shift: Index::shift_for(len),
        }
    };
    [
        of(layout.upstream_index, cap),
        of(layout.v4_index, cap),
        of(layout.v6_index, 2 * cap),
        of(layout.route_index, cap),
    ]
}

/// The first slot of the mapping at `base` laid out as `layout`.
fn first_slot(base: NonNull<u8>, layout: &Layout) -> NonNull<Slot> {
    // SAFETY: the slots region lies inside the mapping (checked layout).
    unsafe { base.add(layout.slots.offset as usize) }.cast::<Slot>()
}

// SAFETY: the mapping is shared memory that lives as long as `Segment`; every location
// another thread or process writes is only accessed through atomic types, so sharing the
// pointer between threads is sound.
unsafe impl Send for Segment {}
// SAFETY: see `Send`.
unsafe impl Sync for Segment {}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ShmError {
    let path = path.to_path_buf();
    move |source| ShmError::Io { op, path, source }
}

fn map(file: &File, len: usize, path: &Path) -> Result<NonNull<u8>, ShmError> {
    // SAFETY: a fresh shared mapping of `len` octets of an open file; no existing memory
    // is affected.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io("mmap", path)(std::io::Error::last_os_error()));
    }
    NonNull::new(p.cast::<u8>()).ok_or_else(|| io("mmap", path)(std::io::Error::other("null")))
}

impl Segment {
    /// Creates a fresh segment at `path` (replacing any file there atomically: it is built
    /// under a temporary name and renamed into place, so an attaching reader sees either
    /// the old segment or the complete new one).
    pub fn create(path: &Path, geometry: Geometry) -> Result<Segment, ShmError> {
        let layout = Layout::new(geometry).ok_or(ShmError::InvalidGeometry {
            max_sessions: geometry.max_sessions,
            max_workers: geometry.max_workers,
        })?;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".tmp{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io("open", &tmp))?;
        file.set_len(layout.segment_size)
            .map_err(io("ftruncate", &tmp))?;
        let len = usize::try_from(layout.segment_size)
            .map_err(|_| io("mmap", &tmp)(std::io::Error::other("segment too large")))?;
        let base = map(&file, len, &tmp)?;
        let seg = Segment {
            base,
            len,
            layout,
            indexes: index_tables(base, &layout),
            slots: first_slot(base, &layout),
            path: path.to_path_buf(),
            _file: file,
        };
        // SAFETY: the file is new and private to us until the rename below; the header
        // fits (the layout puts the first table after it).
        unsafe {
            let h = seg.base.as_ptr().cast::<Header>();
            h.write(Header {
                magic: AtomicU64::new(0),
                abi_version: ABI_VERSION,
                header_size: size_of::<Header>() as u32,
                segment_size: layout.segment_size,
                max_sessions: geometry.max_sessions,
                max_workers: geometry.max_workers,
                index_capacity: layout.index_capacity,
                max_probe: MAX_PROBE,
                drop_reasons: DROP_REASONS as u32,
                slot_size: size_of::<Slot>() as u32,
                record_size: size_of::<SessionRecord>() as u32,
                counters_size: size_of::<SlotCounters>() as u32,
                counters_worker_stride: layout.counters_worker_stride,
                drops_worker_stride: layout.drops_worker_stride,
                slots: layout.slots,
                upstream_index: layout.upstream_index,
                v4_index: layout.v4_index,
                counters: layout.counters,
                counter_base: layout.counter_base,
                drops: layout.drops,
                v6_index: layout.v6_index,
                route_index: layout.route_index,
                _reserved0: [0; 56],
                upstream_flips: AtomicU64::new(0),
                v4_flips: AtomicU64::new(0),
                v6_flips: AtomicU64::new(0),
                route_flips: AtomicU64::new(0),
                v6_lengths: AtomicU64::new(0),
                route_lengths: AtomicU64::new(0),
                _reserved1: [0; 16],
                generation: AtomicU64::new(0),
                writer_pid: core::sync::atomic::AtomicU32::new(std::process::id()),
                _pad0: 0,
                heartbeat_ns: AtomicU64::new(0),
                sessions: AtomicU64::new(0),
                _reserved2: [0; 32],
            });
        }
        // Release: a reader that sees the magic (Acquire in `attach`) sees the header
        // fields written above. (The rename already orders this for other processes;
        // this covers a reader mapping the temporary file by name.)
        seg.header().magic.store(MAGIC, Ordering::Release);
        std::fs::rename(&tmp, path).map_err(io("rename", path))?;
        Ok(seg)
    }

    /// Maps the segment at `path` and checks magic, ABI version, header size and that every
    /// offset and size in the header is what its geometry implies.
    pub fn attach(path: &Path) -> Result<Segment, ShmError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io("open", path))?;
        let flen = file.metadata().map_err(io("fstat", path))?.len();
        let hsize = size_of::<Header>() as u64;
        if flen < hsize {
            return Err(ShmError::TooSmall {
                path: path.to_path_buf(),
                len: flen,
                need: hsize,
            });
        }
        let len = usize::try_from(flen)
            .map_err(|_| io("mmap", path)(std::io::Error::other("segment too large")))?;
        let base = map(&file, len, path)?;
        // SAFETY: the mapping holds at least a header and is page aligned.
        let h = unsafe { &*base.as_ptr().cast::<Header>() };
        let unmap = |e: ShmError| {
            // SAFETY: `base`/`len` are the mapping made above and nothing refers to it
            // once we return the error.
            unsafe { libc::munmap(base.as_ptr().cast(), len) };
            e
        };
        // Acquire: pairs with the Release store in `create`.
        let magic = h.magic.load(Ordering::Acquire);
        if magic != MAGIC {
            return Err(unmap(ShmError::BadMagic {
                path: path.to_path_buf(),
                found: magic,
                expected: MAGIC,
            }));
        }
        if h.abi_version != ABI_VERSION {
            return Err(unmap(ShmError::AbiVersion {
                path: path.to_path_buf(),
                found: h.abi_version,
                expected: ABI_VERSION,
            }));
        }
        let geometry = Geometry {
            max_sessions: h.max_sessions,
            max_workers: h.max_workers,
        };
        let inconsistent = |field: &'static str, found: u64, expected: u64| {
            unmap(ShmError::Inconsistent {
                path: path.to_path_buf(),
                field,
                found,
                expected,
            })
        };
        if u64::from(h.header_size) != hsize {
            return Err(inconsistent("header_size", h.header_size.into(), hsize));
        }
        let Some(layout) = Layout::new(geometry) else {
            return Err(unmap(ShmError::InvalidGeometry {
                max_sessions: geometry.max_sessions,
                max_workers: geometry.max_workers,
            }));
        };
        let scalar: [(&'static str, u64, u64); 9] = [
            ("segment_size", h.segment_size, layout.segment_size),
            (
                "index_capacity",
                h.index_capacity.into(),
                layout.index_capacity.into(),
            ),
            ("max_probe", h.max_probe.into(), MAX_PROBE.into()),
            ("drop_reasons", h.drop_reasons.into(), DROP_REASONS as u64),
            ("slot_size", h.slot_size.into(), size_of::<Slot>() as u64),
            (
                "record_size",
                h.record_size.into(),
                size_of::<SessionRecord>() as u64,
            ),
            (
                "counters_size",
                h.counters_size.into(),
                size_of::<SlotCounters>() as u64,
            ),
            (
                "counters_worker_stride",
                h.counters_worker_stride,
                layout.counters_worker_stride,
            ),
            (
                "drops_worker_stride",
                h.drops_worker_stride,
                layout.drops_worker_stride,
            ),
        ];
        for (field, found, expected) in scalar {
            if found != expected {
                return Err(inconsistent(field, found, expected));
            }
        }
        let regions: [(&'static str, Region, Region); 8] = [
            ("slots", h.slots, layout.slots),
            ("upstream_index", h.upstream_index, layout.upstream_index),
            ("v4_index", h.v4_index, layout.v4_index),
            ("v6_index", h.v6_index, layout.v6_index),
            ("route_index", h.route_index, layout.route_index),
            ("counters", h.counters, layout.counters),
            ("counter_base", h.counter_base, layout.counter_base),
            ("drops", h.drops, layout.drops),
        ];
        for (field, found, expected) in regions {
            if found.offset != expected.offset {
                return Err(inconsistent(field, found.offset, expected.offset));
            }
            if found.size != expected.size {
                return Err(inconsistent(field, found.size, expected.size));
            }
        }
        if flen < layout.segment_size {
            return Err(unmap(ShmError::TooSmall {
                path: path.to_path_buf(),
                len: flen,
                need: layout.segment_size,
            }));
        }
        Ok(Segment {
            base,
            len,
            layout,
            indexes: index_tables(base, &layout),
            slots: first_slot(base, &layout),
            path: path.to_path_buf(),
            _file: file,
        })
    }

    /// The segment's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The layout (checked against the header).
    #[inline]
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The header.
    #[inline]
    pub fn header(&self) -> &Header {
        // SAFETY: the mapping starts with a header (checked in `attach`, written in
        // `create`) and is page aligned.
        unsafe { &*self.base.as_ptr().cast::<Header>() }
    }

    /// A region as a slice of `T`.
    #[inline]
    fn table<T>(&self, r: Region, count: usize) -> &[T] {
        debug_assert!(r.offset as usize + count * size_of::<T>() <= self.len);
        // SAFETY: the layout was checked against the mapping's length; every region is
        // page aligned and T is one of the atomic-only POD types of `layout`, valid for
        // any bit pattern (zero included).
        unsafe {
            core::slice::from_raw_parts(
                self.base.as_ptr().add(r.offset as usize).cast::<T>(),
                count,
            )
        }
    }

    /// The session slots.
    #[inline(always)]
    pub fn slots(&self) -> &[Slot] {
        // SAFETY: `slots` points at `max_sessions` slots inside the mapping (checked
        // layout), which lives as long as `self`; slots are atomics only.
        unsafe {
            core::slice::from_raw_parts(
                self.slots.as_ptr().cast_const(),
                self.layout.geometry.max_sessions as usize,
            )
        }
    }

    /// Index table `which` (0 or 1) of the upstream index.
    #[inline]
    pub fn upstream_table(&self, which: usize) -> &[AtomicU64] {
        self.index_table(self.layout.upstream_index, which)
    }

    /// Index table `which` (0 or 1) of the IPv4 index.
    #[inline]
    pub fn v4_table(&self, which: usize) -> &[AtomicU64] {
        self.index_table(self.layout.v4_index, which)
    }

    /// One of the four indexes.
    #[inline(always)]
    pub(crate) fn index(&self, which: Which) -> Index<'_> {
        let h = self.header();
        let t = self.indexes[which as usize];
        let flips = match which {
            Which::Upstream => &h.upstream_flips,
            Which::V4 => &h.v4_flips,
            Which::V6 => &h.v6_flips,
            Which::Route => &h.route_flips,
        };
        // SAFETY: `indexes` points at tables of `len` buckets inside the mapping, which
        // lives as long as `self`; buckets are atomics (valid for any bit pattern).
        let tables = t
            .tables
            .map(|p| unsafe { core::slice::from_raw_parts(p.as_ptr().cast_const(), t.len) });
        Index {
            tables,
            shift: t.shift,
            flips,
            // Checked equal to the header's at attach.
            max_probe: MAX_PROBE,
            unique: matches!(which, Which::Upstream | Which::V4),
        }
    }

    /// Index table `which` (0 or 1) of the IPv6 prefix index (twice the buckets).
    #[inline]
    pub fn v6_table(&self, which: usize) -> &[AtomicU64] {
        self.index_table_of(
            self.layout.v6_index,
            which,
            2 * self.layout.index_capacity as usize,
        )
    }

    /// Index table `which` (0 or 1) of the IPv4 route index.
    #[inline]
    pub fn route_table(&self, which: usize) -> &[AtomicU64] {
        self.index_table(self.layout.route_index, which)
    }

    #[inline]
    fn index_table(&self, r: Region, which: usize) -> &[AtomicU64] {
        self.index_table_of(r, which, self.layout.index_capacity as usize)
    }

    #[inline]
    fn index_table_of(&self, r: Region, which: usize, cap: usize) -> &[AtomicU64] {
        let r = Region {
            offset: r.offset + (which & 1) as u64 * cap as u64 * 8,
            size: cap as u64 * 8,
        };
        self.table(r, cap)
    }

    /// Worker `worker`'s counter column (one cell per slot), if the worker exists.
    #[inline]
    pub fn counter_column(&self, worker: u32) -> Option<&[SlotCounters]> {
        if worker >= self.layout.geometry.max_workers {
            return None;
        }
        let r = Region {
            offset: self.layout.counters.offset
                + u64::from(worker) * self.layout.counters_worker_stride,
            size: self.layout.counters_worker_stride,
        };
        Some(self.table(r, self.layout.geometry.max_sessions as usize))
    }

    /// The writer's per-slot counter bases.
    pub fn counter_base(&self) -> &[SlotCounters] {
        self.table(
            self.layout.counter_base,
            self.layout.geometry.max_sessions as usize,
        )
    }

    /// Worker `worker`'s drop-reason counters, if the worker exists.
    pub fn drop_counters(&self, worker: u32) -> Option<&[AtomicU64]> {
        if worker >= self.layout.geometry.max_workers {
            return None;
        }
        let r = Region {
            offset: self.layout.drops.offset + u64::from(worker) * self.layout.drops_worker_stride,
            size: self.layout.drops_worker_stride,
        };
        Some(self.table(r, DROP_REASONS))
    }

    /// Copies slot `slot`'s record out under its sequence lock. `None` when the slot is
    /// out of range or the writer kept it busy for 64 attempts (`SEQLOCK_RETRIES`).
    /// Allocation-free and syscall-free.
    #[inline(always)]
    pub fn read_slot(&self, slot: u32) -> Option<SessionRecord> {
        let s = self.slots().get(slot as usize)?;
        for _ in 0..SEQLOCK_RETRIES {
            // Acquire: everything the writer wrote before making the counter even (its
            // Release store in `write_slot`) is visible to the copy below.
            let s1 = s.seq.load(Ordering::Acquire);
            if s1 & 1 == 1 {
                core::hint::spin_loop();
                continue;
            }
            let mut words = [0u64; RECORD_WORDS];
            for (w, a) in words.iter_mut().zip(s.words.iter()) {
                // Relaxed: a torn copy is detected by the sequence check below.
                *w = a.load(Ordering::Relaxed);
            }
            // Acquire fence: keeps the copy above before the re-read of the counter; if
            // the copy saw any word of a later write, the fence pairs with the writer's
            // Release fence and the re-read sees that write's odd (or later) value.
            fence(Ordering::Acquire);
            if s.seq.load(Ordering::Relaxed) == s1 {
                return Some(record_from_words(&words));
            }
            core::hint::spin_loop();
        }
        None
    }

    /// Copies the first [`HEAD_WORDS`] words of slot `slot`'s record (its
    /// [`SessionHead`]: everything but the template) out under the sequence lock, as
    /// [`Segment::read_slot`] does for the whole record. The upstream fast path needs no
    /// more, and 80 octets are less than half the record.
    #[inline(always)]
    pub fn read_slot_head(&self, slot: u32) -> Option<SessionHead> {
        let s = self.slots().get(slot as usize)?;
        let head: &[AtomicU64; HEAD_WORDS] = s.words.first_chunk()?;
        for _ in 0..SEQLOCK_RETRIES {
            // Acquire, fence, Relaxed re-read: as in `read_slot`.
            let s1 = s.seq.load(Ordering::Acquire);
            if s1 & 1 == 1 {
                core::hint::spin_loop();
                continue;
            }
            let mut words = [0u64; HEAD_WORDS];
            for (w, a) in words.iter_mut().zip(head.iter()) {
                // Relaxed: a torn copy is detected by the sequence check below.
                *w = a.load(Ordering::Relaxed);
            }
            fence(Ordering::Acquire);
            if s.seq.load(Ordering::Relaxed) == s1 {
                // SAFETY: `SessionHead` is `repr(C)`, 80 octets (asserted) of integers
                // and integer arrays, valid for every bit pattern; so are 10 `u64`s.
                return Some(unsafe {
                    core::mem::transmute::<[u64; HEAD_WORDS], SessionHead>(words)
                });
            }
            core::hint::spin_loop();
        }
        None
    }

    /// The record words [`UpstreamV4::WORDS`] names, of slot `slot`, copied out under its
    /// sequence lock as [`Segment::read_slot`] copies the whole record: the upstream
    /// common case reads five words instead of the ten of the head. `None` when out of
    /// range or busy for `SEQLOCK_RETRIES` attempts; a torn copy is never returned.
    #[inline(always)]
    pub fn read_up_v4(&self, slot: u32) -> Option<[u64; 5]> {
        const W: [usize; 5] = UpstreamV4::WORDS;
        let s = self.slots().get(slot as usize)?;
        for _ in 0..SEQLOCK_RETRIES {
            // Acquire, fence, Relaxed re-read: as in `read_slot`.
            let s1 = s.seq.load(Ordering::Acquire);
            if s1 & 1 == 1 {
                core::hint::spin_loop();
                continue;
            }
            // Relaxed: a torn copy is detected by the sequence check below.
            let words = [
                s.words[W[0]].load(Ordering::Relaxed),
                s.words[W[1]].load(Ordering::Relaxed),
                s.words[W[2]].load(Ordering::Relaxed),
                s.words[W[3]].load(Ordering::Relaxed),
                s.words[W[4]].load(Ordering::Relaxed),
            ];
            fence(Ordering::Acquire);
            if s.seq.load(Ordering::Relaxed) == s1 {
                return Some(words);
            }
            core::hint::spin_loop();
        }
        None
    }

    /// The downstream read of slot `slot`, under its sequence lock: `accept` decides on
    /// the slot's words whether it holds the session asked for (its loads are covered by
    /// the sequence check), the template field (twelve words) is copied straight into
    /// `out` (the 96 octets in front of the packet: the right-aligned template then ends
    /// where the packet begins), and four head words give MTU, epoch and the template's
    /// precomputed layout. No record is assembled or copied again. `None` when out of
    /// range, busy for `SEQLOCK_RETRIES` attempts, or not accepted; `out` may then hold
    /// anything.
    #[inline(always)]
    pub fn read_down(
        &self,
        slot: u32,
        out: &mut [u8; TEMPLATE_CAPACITY],
        accept: impl Fn(&[AtomicU64; RECORD_WORDS]) -> bool,
    ) -> Option<Downstream> {
        let s = self.slots().get(slot as usize)?;
        let tpl: &[AtomicU64; TEMPLATE_WORDS] = s.words.get(TEMPLATE_WORD..)?.first_chunk()?;
        for _ in 0..SEQLOCK_RETRIES {
            // Acquire, fence, Relaxed re-read: as in `read_slot`.
            let s1 = s.seq.load(Ordering::Acquire);
            if s1 & 1 == 1 {
                core::hint::spin_loop();
                continue;
            }
            let ok = accept(&s.words);
            // Relaxed: a torn copy is detected by the sequence check below.
            let w1 = s.words[1].load(Ordering::Relaxed).to_ne_bytes();
            let w6 = s.words[6].load(Ordering::Relaxed).to_ne_bytes();
            let w9 = s.words[9].load(Ordering::Relaxed).to_ne_bytes();
            let w10 = s.words[10].load(Ordering::Relaxed).to_ne_bytes();
            for (octets, w) in out.chunks_exact_mut(8).zip(tpl) {
                // Relaxed: as above.
                octets.copy_from_slice(&w.load(Ordering::Relaxed).to_ne_bytes());
            }
            fence(Ordering::Acquire);
            if s.seq.load(Ordering::Relaxed) == s1 {
                if !ok {
                    return None;
                }
                // Record octets 8 (flags), 48 (mtu), 54-55, 76-79, 80 (epoch); see the
                // offset assertions in session.rs.
                let flags = u32::from_ne_bytes([w1[0], w1[1], w1[2], w1[3]]);
                let template_ip = w6[6];
                return Some(Downstream {
                    slot,
                    epoch: u32::from_ne_bytes([w10[0], w10[1], w10[2], w10[3]]),
                    mtu: u16::from_ne_bytes([w6[0], w6[1]]),
                    layout: TemplateLayout {
                        len: if template_ip == 0 { 0 } else { w9[5] },
                        ip: template_ip,
                        udp: w6[7],
                        length_at: w9[6],
                        ns_at: w9[7],
                        v6: flags & crate::session::flags::OUTER_IPV6 != 0,
                    },
                });
            }
            core::hint::spin_loop();
        }
        None
    }

    /// Prefetches the first `lines` cache lines of slot `slot` (a hint; nothing when out of
    /// range).
    #[inline(always)]
    pub fn prefetch_slot(&self, slot: u32, lines: usize) {
        if let Some(s) = self.slots().get(slot as usize) {
            let p = (s as *const Slot).cast::<u8>();
            for line in 0..lines.min(size_of::<Slot>() / 64) {
                prefetch_line(p.wrapping_add(64 * line));
            }
        }
    }

    /// Runs `f` on slot `slot`'s words under its sequence lock and returns its result
    /// from a consistent read (`None`: out of range or busy for `SEQLOCK_RETRIES`
    /// attempts). `f` reads only what it needs (Relaxed loads, covered by the sequence
    /// check): the upstream source check against a session's routes reads a few words,
    /// not the whole record.
    #[inline]
    pub fn read_with<T>(
        &self,
        slot: u32,
        f: impl Fn(&[AtomicU64; RECORD_WORDS]) -> T,
    ) -> Option<T> {
        let s = self.slots().get(slot as usize)?;
        for _ in 0..SEQLOCK_RETRIES {
            // Acquire, fence, Relaxed re-read: as in `read_slot`.
            let s1 = s.seq.load(Ordering::Acquire);
            if s1 & 1 == 1 {
                core::hint::spin_loop();
                continue;
            }
            let value = f(&s.words);
            fence(Ordering::Acquire);
            if s.seq.load(Ordering::Relaxed) == s1 {
                return Some(value);
            }
            core::hint::spin_loop();
        }
        None
    }

    /// Writes `rec` into slot `slot` under its sequence lock. Only the single writer calls
    /// this (`Writer` owns the only `&mut`).
    pub(crate) fn write_slot(&self, slot: u32, rec: &SessionRecord) {
        let Some(s) = self.slots().get(slot as usize) else {
            return;
        };
        let words = words_from_record(rec);
        // Relaxed: we are the only writer of `seq`, so our own last value is current.
        let s0 = s.seq.load(Ordering::Relaxed);
        // An odd value left by a writer that died mid-write: start from the next even one.
        let s0 = s0 + (s0 & 1);
        // Relaxed store then Release fence: the odd value is ordered before every word
        // store below, so a reader that sees any new word also sees the odd (or a later)
        // counter on its re-check (pairs with the reader's Acquire fence).
        s.seq.store(s0 + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        for (a, w) in s.words.iter().zip(words) {
            // Relaxed: ordered by the fence above and the Release store below.
            a.store(w, Ordering::Relaxed);
        }
        // Release: publishes the words to a reader whose Acquire load sees the even value.
        s.seq.store(s0 + 2, Ordering::Release);
    }

    /// The writer's own view of a slot (no lock needed: only the writer writes slots).
    pub(crate) fn own_slot(&self, slot: u32) -> Option<(u64, SessionRecord)> {
        let s = self.slots().get(slot as usize)?;
        // Relaxed: we are the only writer; these are our own stores.
        let seq = s.seq.load(Ordering::Relaxed);
        let mut words = [0u64; RECORD_WORDS];
        for (w, a) in words.iter_mut().zip(s.words.iter()) {
            *w = a.load(Ordering::Relaxed);
        }
        Some((seq, record_from_words(&words)))
    }
}

/// Asks the CPU to bring the cache line holding `p` into every cache level: a hint, no
/// effect on the program's behaviour (a no-op on other architectures).
#[inline(always)]
pub(crate) fn prefetch_line<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` requires SSE, which every x86_64 target has (baseline); a
    // prefetch never faults whatever the address, reads nothing into the program and
    // writes nothing.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: the mapping made in create/attach; every reference into it borrows
        // `self`, so none outlives this.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

fn words_from_record(rec: &SessionRecord) -> [u64; RECORD_WORDS] {
    let mut words = [0u64; RECORD_WORDS];
    // SAFETY: `SessionRecord` is `repr(C)` with explicit padding fields only (its size,
    // 248, is the sum of its fields' sizes, asserted in session.rs), so all its octets
    // are initialised; the destination has room for 248.
    unsafe {
        core::ptr::copy_nonoverlapping(
            (rec as *const SessionRecord).cast::<u8>(),
            words.as_mut_ptr().cast::<u8>(),
            size_of::<SessionRecord>(),
        );
    }
    words
}

/// A record as the slot stores it: the record and the last word's 4 spare octets.
#[repr(C)]
struct PaddedRecord {
    rec: SessionRecord,
    _tail: [u8; RECORD_WORDS * 8 - size_of::<SessionRecord>()],
}

const _: () = assert!(size_of::<PaddedRecord>() == RECORD_WORDS * 8);

/// Words of a slot that hold the record's [`SessionHead`].
pub const HEAD_WORDS: usize = size_of::<SessionHead>() / 8;

const _: () = assert!(HEAD_WORDS * 8 == size_of::<SessionHead>() && HEAD_WORDS <= RECORD_WORDS);

const _: () = {
    let mut i = 0;
    while i < UpstreamV4::WORDS.len() {
        assert!(UpstreamV4::WORDS[i] < RECORD_WORDS);
        i += 1;
    }
};

/// The slot word where the template begins, and its length in words.
const TEMPLATE_WORD: usize = core::mem::offset_of!(SessionRecord, template) / 8;
const TEMPLATE_WORDS: usize = TEMPLATE_CAPACITY / 8;

const _: () = assert!(
    TEMPLATE_WORD * 8 == core::mem::offset_of!(SessionRecord, template)
        && TEMPLATE_WORDS * 8 == TEMPLATE_CAPACITY
        && TEMPLATE_WORD > HEAD_WORDS
        && TEMPLATE_WORD + TEMPLATE_WORDS <= RECORD_WORDS
);

/// Record words the downstream read decodes: flags (1), MTU and template offsets (6),
/// template length and L2TP field offsets (9), epoch (10).
const _: () = assert!(
    core::mem::offset_of!(SessionRecord, flags) == 8
        && core::mem::offset_of!(SessionRecord, mtu) == 48
        && core::mem::offset_of!(SessionRecord, template_ip) == 54
        && core::mem::offset_of!(SessionRecord, template_udp) == 55
        && core::mem::offset_of!(SessionRecord, template_len) == 77
        && core::mem::offset_of!(SessionRecord, template_length_at) == 78
        && core::mem::offset_of!(SessionRecord, template_ns_at) == 79
        && core::mem::offset_of!(SessionRecord, epoch) == 80
);

#[inline(always)]
fn record_from_words(words: &[u64; RECORD_WORDS]) -> SessionRecord {
    // SAFETY: `PaddedRecord` is `repr(C)`, as large as the words (asserted), and every
    // bit pattern of every field is valid (integers and arrays of integers only). The
    // reinterpretation avoids a separate `memcpy` of the record.
    unsafe { core::mem::transmute::<[u64; RECORD_WORDS], PaddedRecord>(*words) }.rec
}

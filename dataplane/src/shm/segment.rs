//! The mapping: creating a segment file, attaching to one (with every check), and typed
//! views of its tables. Also the slot sequence lock, shared by both sides.

use core::mem::size_of;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering, fence};
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::error::ShmError;
use super::layout::{
    ABI_VERSION, DROP_REASONS, Geometry, Header, Layout, MAGIC, MAX_PROBE, RECORD_WORDS, Region,
    Slot, SlotCounters,
};
use crate::session::{SessionHead, SessionRecord, TEMPLATE_CAPACITY};

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
    path: PathBuf,
    _file: File,
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
                _reserved0: [0; 24],
                upstream_flips: AtomicU64::new(0),
                v4_flips: AtomicU64::new(0),
                _reserved1: [0; 48],
                generation: AtomicU64::new(0),
                writer_pid: core::sync::atomic::AtomicU32::new(std::process::id()),
                _pad0: 0,
                heartbeat_ns: AtomicU64::new(0),
                sessions: AtomicU64::new(0),
                _reserved2: [0; 96],
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
        let regions: [(&'static str, Region, Region); 6] = [
            ("slots", h.slots, layout.slots),
            ("upstream_index", h.upstream_index, layout.upstream_index),
            ("v4_index", h.v4_index, layout.v4_index),
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
    #[inline]
    pub fn slots(&self) -> &[Slot] {
        self.table(
            self.layout.slots,
            self.layout.geometry.max_sessions as usize,
        )
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

    #[inline]
    fn index_table(&self, r: Region, which: usize) -> &[AtomicU64] {
        let cap = self.layout.index_capacity as usize;
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

    /// Copies slot `slot`'s record out under its sequence lock as [`Segment::read_slot`]
    /// does, delivered as its head (returned) and its template (written to `template`):
    /// the downstream fast path's read, without assembling a [`SessionRecord`] and
    /// copying it again. `template` is written only from a consistent copy.
    #[inline(always)]
    pub fn read_slot_split(
        &self,
        slot: u32,
        template: &mut [u8; TEMPLATE_CAPACITY],
    ) -> Option<SessionHead> {
        let s = self.slots().get(slot as usize)?;
        for _ in 0..SEQLOCK_RETRIES {
            // Acquire, fence, Relaxed re-read: as in `read_slot`.
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
            fence(Ordering::Acquire);
            if s.seq.load(Ordering::Relaxed) == s1 {
                let (head, rest) = words.split_first_chunk::<HEAD_WORDS>()?;
                // The template starts at octet 84 of the record: 4 octets into the first
                // word after the head.
                let mut tail = [0u8; (RECORD_WORDS - HEAD_WORDS) * 8];
                for (octets, w) in tail.chunks_exact_mut(8).zip(rest) {
                    octets.copy_from_slice(&w.to_ne_bytes());
                }
                let at = TEMPLATE_OFFSET - HEAD_WORDS * 8;
                template.copy_from_slice(tail.get(at..at + TEMPLATE_CAPACITY)?);
                // SAFETY: `SessionHead` is `repr(C)`, 80 octets (asserted) of integers
                // and integer arrays, valid for every bit pattern; so are 10 `u64`s.
                return Some(unsafe {
                    core::mem::transmute::<[u64; HEAD_WORDS], SessionHead>(*head)
                });
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
    // 180, is the sum of its fields' sizes, asserted in session.rs), so all its octets
    // are initialised; the destination has room for 184.
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

/// Where the template lies in a record.
const TEMPLATE_OFFSET: usize = core::mem::offset_of!(SessionRecord, template);

const _: () = assert!(
    TEMPLATE_OFFSET >= HEAD_WORDS * 8
        && TEMPLATE_OFFSET + TEMPLATE_CAPACITY <= RECORD_WORDS * 8
        && TEMPLATE_OFFSET + TEMPLATE_CAPACITY == size_of::<SessionRecord>()
);

#[inline(always)]
fn record_from_words(words: &[u64; RECORD_WORDS]) -> SessionRecord {
    // SAFETY: `PaddedRecord` is `repr(C)`, as large as the words (asserted), and every
    // bit pattern of every field is valid (integers and arrays of integers only). The
    // reinterpretation avoids a separate `memcpy` of the record.
    unsafe { core::mem::transmute::<[u64; RECORD_WORDS], PaddedRecord>(*words) }.rec
}

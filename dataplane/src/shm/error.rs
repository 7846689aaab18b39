//! Everything that can go wrong creating, attaching to, or writing a segment.

use std::path::PathBuf;

/// A shared-memory error. Display says what went wrong and with which values.
#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    /// A system call on the segment's file failed.
    #[error("shared memory segment {path}: {op} failed: {source}")]
    Io {
        /// The failing operation (open, ftruncate, mmap, rename, ...).
        op: &'static str,
        /// The segment's path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The requested geometry is out of range.
    #[error(
        "invalid segment geometry: max_sessions {max_sessions} (1..={max_s}), max_workers {max_workers} (1..={max_w})",
        max_s = crate::shm::Geometry::MAX_SESSIONS,
        max_w = crate::shm::Geometry::MAX_WORKERS
    )]
    InvalidGeometry {
        /// Requested sessions.
        max_sessions: u32,
        /// Requested workers.
        max_workers: u32,
    },
    /// The file is shorter than a header or than the size its header announces.
    #[error("shared memory segment {path} is {len} octets long, expected at least {need}")]
    TooSmall {
        /// The segment's path.
        path: PathBuf,
        /// The file's length.
        len: u64,
        /// The length required.
        need: u64,
    },
    /// The file does not start with the xlns magic.
    #[error(
        "shared memory segment {path} has magic {found:#018x}, expected {expected:#018x} (not an xlns segment)"
    )]
    BadMagic {
        /// The segment's path.
        path: PathBuf,
        /// The magic found.
        found: u64,
        /// [`crate::shm::MAGIC`].
        expected: u64,
    },
    /// The segment was written by a different ABI version.
    #[error(
        "shared memory segment {path} has ABI version {found}, this build speaks version {expected}"
    )]
    AbiVersion {
        /// The segment's path.
        path: PathBuf,
        /// The version found.
        found: u32,
        /// [`crate::shm::ABI_VERSION`].
        expected: u32,
    },
    /// A header field disagrees with the layout computed from the header's geometry.
    #[error(
        "shared memory segment {path} is inconsistent: header field {field} is {found}, expected {expected}"
    )]
    Inconsistent {
        /// The segment's path.
        path: PathBuf,
        /// The header field.
        field: &'static str,
        /// Its value.
        found: u64,
        /// The value the geometry implies.
        expected: u64,
    },
    /// Every session slot is in use.
    #[error("no free session slot (all {max_sessions} in use)")]
    Full {
        /// The segment's capacity.
        max_sessions: u32,
    },
    /// An index has no room for a key within the probe bound, even after a rebuild.
    #[error("{index} index: no bucket within {max_probe} probes for key {key:#010x}")]
    IndexFull {
        /// "upstream" or "ipv4".
        index: &'static str,
        /// The key.
        key: u32,
        /// The probe bound.
        max_probe: u32,
    },
    /// Another session already has this key.
    #[error("{index} key {key:#010x} already belongs to slot {slot}")]
    DuplicateKey {
        /// "upstream" or "ipv4".
        index: &'static str,
        /// The key.
        key: u32,
        /// The slot holding it.
        slot: u32,
    },
    /// A key that can never be valid (tunnel or session id 0, address 0.0.0.0).
    #[error("invalid {index} key {key:#010x}: {reason}")]
    InvalidKey {
        /// "upstream" or "ipv4".
        index: &'static str,
        /// The key.
        key: u32,
        /// Why.
        reason: &'static str,
    },
    /// A slot id out of range or not holding a session.
    #[error("slot {slot}: {reason}")]
    BadSlot {
        /// The slot.
        slot: u32,
        /// "out of range" or "not in use".
        reason: &'static str,
    },
    /// A worker index out of range.
    #[error("worker {worker} out of range (segment has {max_workers} worker columns)")]
    WorkerOutOfRange {
        /// The worker.
        worker: u32,
        /// The segment's worker count.
        max_workers: u32,
    },
    /// A worker's counter column is already claimed in this process.
    #[error("worker {worker}'s counter column is already claimed in this process")]
    WorkerClaimed {
        /// The worker.
        worker: u32,
    },
}

//! The durable accounting spool (issue #7; RFC 2866 says nothing about it): every
//! accounting record is written to a file before it may be sent, and stays there until
//! the server acknowledged it with an Accounting-Response.
//!
//! # File format
//!
//! ```text
//! file   = magic "XLNSACC1" entry*
//! entry  = length:u32  kind:u8  seq:u64  payload[length]  crc:u32     (big endian)
//! crc    = CRC-32 (IEEE 802.3) of kind, seq and payload
//! kind   = 1 RECORD      payload: Record::encode; seq: its sequence number
//!          2 ACK         payload: empty; seq: the acknowledged record
//!          3 CHECKPOINT  payload: Record::encode of an acknowledged Start or
//!                        Interim-Update of a session still open (written by compaction)
//! ```
//!
//! The codec ([`Entry::encode`], [`scan`]) is pure. [`scan`] reads entries until the
//! first that is truncated or fails its checksum (a torn tail: xlnsd or the host died in
//! the middle of a write); everything after it is ignored and [`Spool::open`] truncates
//! the file there, so later appends follow valid entries. The bytes dropped are counted.
//!
//! # Contract
//!
//! * [`Spool::push`] appends a RECORD (one `write`). [`Spool::sync`] makes every appended
//!   entry durable (`fdatasync`): a record may be sent ([`Spool::sendable`]) only once a
//!   sync covered it. The shell syncs once per loop turn (group commit).
//! * [`Spool::ack`] appends an ACK (no sync of its own: losing it to a host crash only
//!   makes the record be sent twice, which RADIUS servers tolerate; a killed process
//!   loses nothing that reached `write`).
//! * Records are replayed in sequence order; [`Spool::pending`] iterates them.
//! * Open sessions: the spool knows, per Acct-Session-Id, the last Start or
//!   Interim-Update of every session without a Stop. When the spool is opened after
//!   xlnsd died, [`Spool::take_recovered`] hands them to the caller, which closes each
//!   with a Stop ([`Record::reboot_stop`], Acct-Terminate-Cause NAS-Reboot) appended
//!   behind the replayed records ([`Spool::close_recovered`]): each Start gets exactly
//!   one Stop even across `kill -9`. Until its Stop is written a recovered session stays
//!   open in the file, so another crash recovers it again. (xlnsd does not take sessions
//!   over after a restart; their L2TP and PPP state died with it.)
//! * Bounds: at most `max_records` unacknowledged records and `max_bytes` of them.
//!   Interim-Updates are refused beyond 90 % of either bound, so that Starts and Stops
//!   keep room; beyond the bound every record is refused. A refused record is counted
//!   ([`SpoolStats::dropped`]) and the spool is [`SpoolStats::full`] until it drains
//!   below the bound.
//! * A pending Interim-Update says nothing that the session's next Interim-Update or Stop
//!   does not say too: the accounting core [`Spool::supersede`]s it when it was not sent
//!   yet, so that a long outage leaves one record per session and state in the spool,
//!   not one per interval.
//! * Compaction: when nothing is pending and no session is open the file is truncated
//!   to its magic; when the file holds more than twice the live bytes (and over
//!   [`COMPACT_MIN_BYTES`]) it is rewritten (pending RECORDs and a CHECKPOINT per open
//!   session) to a temporary file, synced, and renamed over the spool.
//! * A write that fails (disk full, I/O error) is cut off the file, so that no partial
//!   entry hides later ones, and counted ([`SpoolStats::io_errors`], an alarm): the record
//!   stays in memory and is still sent, but would not survive a crash. A failed sync
//!   keeps the records unsendable until a later sync succeeds.
//! * Without a path the spool keeps records in memory only (nothing survives a restart).

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::acct::{Record, StatusType};

/// The file's first bytes.
pub const MAGIC: &[u8; 8] = b"XLNSACC1";
/// Entry overhead: length, kind, seq, crc.
pub const ENTRY_OVERHEAD: usize = 4 + 1 + 8 + 4;
/// Largest payload accepted when scanning (a record is far smaller).
pub const MAX_PAYLOAD: usize = 64 * 1024;
/// Files smaller than this are never rewritten.
pub const COMPACT_MIN_BYTES: u64 = 1 << 20;

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320).
pub fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = !0u32;
    for part in parts {
        for &b in *part {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
            }
        }
    }
    !crc
}

/// The kind of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Record = 1,
    Ack = 2,
    Checkpoint = 3,
}

/// One entry of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: EntryKind,
    pub seq: u64,
    pub payload: Vec<u8>,
}

impl Entry {
    /// The entry's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let kind = [self.kind as u8];
        let seq = self.seq.to_be_bytes();
        let mut out = Vec::with_capacity(ENTRY_OVERHEAD + self.payload.len());
        out.extend_from_slice(&(self.payload.len() as u32).to_be_bytes());
        out.extend_from_slice(&kind);
        out.extend_from_slice(&seq);
        out.extend_from_slice(&self.payload);
        out.extend_from_slice(&crc32(&[&kind, &seq, &self.payload]).to_be_bytes());
        out
    }
}

/// What [`scan`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    pub entries: Vec<Entry>,
    /// Bytes of valid entries (after the magic).
    pub valid_len: usize,
    /// Bytes ignored after the last valid entry.
    pub torn: usize,
}

/// The entries of `bytes` (the file after its magic) up to the first torn one.
pub fn scan(bytes: &[u8]) -> Scan {
    let mut entries = Vec::new();
    let mut at = 0usize;
    loop {
        let rest = &bytes[at..];
        let Some(len) = rest
            .get(..4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(|b| u32::from_be_bytes(b) as usize)
        else {
            break;
        };
        if len > MAX_PAYLOAD || rest.len() < ENTRY_OVERHEAD + len {
            break;
        }
        let kind = rest[4];
        let seq_bytes = &rest[5..13];
        let payload = &rest[13..13 + len];
        let crc = u32::from_be_bytes([
            rest[13 + len],
            rest[14 + len],
            rest[15 + len],
            rest[16 + len],
        ]);
        if crc != crc32(&[&[kind], seq_bytes, payload]) {
            break;
        }
        let kind = match kind {
            1 => EntryKind::Record,
            2 => EntryKind::Ack,
            3 => EntryKind::Checkpoint,
            _ => break,
        };
        let mut seq = [0u8; 8];
        seq.copy_from_slice(seq_bytes);
        entries.push(Entry {
            kind,
            seq: u64::from_be_bytes(seq),
            payload: payload.to_vec(),
        });
        at += ENTRY_OVERHEAD + len;
    }
    Scan {
        entries,
        valid_len: at,
        torn: bytes.len() - at,
    }
}

/// Bounds of the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolConfig {
    /// The file; `None`: memory only.
    pub path: Option<PathBuf>,
    /// Unacknowledged records at most.
    pub max_records: u32,
    /// Unacknowledged record bytes at most.
    pub max_bytes: u64,
}

/// Counters and gauges of the spool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpoolStats {
    /// Records waiting for an acknowledgement.
    pub depth: u64,
    /// Their encoded bytes.
    pub bytes: u64,
    /// The last record was refused for want of room.
    pub full: bool,
    /// Records refused (spool full).
    pub dropped: u64,
    /// Records appended.
    pub appended: u64,
    /// Records acknowledged.
    pub acked: u64,
    /// Records found pending when the spool was opened.
    pub replayed: u64,
    /// Stops written for sessions open when xlnsd died.
    pub reboot_stops: u64,
    /// Bytes of a torn tail ignored when the spool was opened.
    pub torn_bytes: u64,
    /// Entries that did not decode (ignored).
    pub corrupt: u64,
    /// Rewrites and truncations.
    pub compactions: u64,
    /// Interim-Updates dropped unsent because a newer record of their session replaced
    /// them ([`Spool::supersede`]).
    pub superseded: u64,
    /// Writes or syncs that failed.
    pub io_errors: u64,
    /// The file's size.
    pub file_bytes: u64,
}

/// Why [`Spool::push`] refused a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("accounting spool full")]
    Full,
}

#[derive(Debug, Clone)]
struct Pending {
    record: Record,
    bytes: u64,
}

/// The spool; see the module documentation.
#[derive(Debug)]
pub struct Spool {
    config: SpoolConfig,
    file: Option<File>,
    pending: BTreeMap<u64, Pending>,
    /// Open sessions: Acct-Session-Id -> (seq, last Start or Interim-Update).
    open: HashMap<Vec<u8>, (u64, Record)>,
    /// Entry bytes of the records in `open` (the checkpoints a rewrite would write, some
    /// of them pending records too: the compaction heuristic only needs an estimate).
    open_bytes: u64,
    /// Pending Interim-Updates by Acct-Session-Id (see [`Spool::pending_interim`]).
    interims: HashMap<Vec<u8>, u64>,
    /// See [`Spool::take_recovered`].
    recovered: Vec<Record>,
    next_seq: u64,
    /// Every record with a seq below this one is durable.
    synced_below: u64,
    dirty: bool,
    stats: SpoolStats,
}

fn entry_bytes(record: &Record) -> u64 {
    (ENTRY_OVERHEAD + record.encoded_len()) as u64
}

impl Spool {
    /// Opens the spool of `config` (creating the file), replays what it holds and closes
    /// the sessions left open with [`Record::reboot_stop`]; see the module documentation.
    pub fn open(config: SpoolConfig) -> io::Result<Spool> {
        let mut spool = Spool {
            config,
            file: None,
            pending: BTreeMap::new(),
            open: HashMap::new(),
            open_bytes: 0,
            interims: HashMap::new(),
            recovered: Vec::new(),
            next_seq: 1,
            synced_below: 1,
            dirty: false,
            stats: SpoolStats::default(),
        };
        let Some(path) = spool.config.path.clone() else {
            return Ok(spool);
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let body = match bytes.strip_prefix(MAGIC.as_slice()) {
            Some(body) => body,
            None if bytes.is_empty() => &[],
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: not an xlns accounting spool", path.display()),
                ));
            }
        };
        let scan = scan(body);
        spool.stats.torn_bytes = scan.torn as u64;
        if scan.torn > 0 {
            tracing::warn!(
                spool = %path.display(),
                bytes = scan.torn,
                "accounting spool: torn tail ignored"
            );
        }
        spool.apply(scan.entries);
        spool.stats.replayed = spool.pending.len() as u64;
        let mut open: Vec<(u64, Record)> = spool.open.values().cloned().collect();
        open.sort_by_key(|(seq, _)| *seq);
        spool.recovered = open.into_iter().map(|(_, r)| r).collect();
        spool.file = Some(file);
        // Rewrite from scratch: drops the torn tail and the ACKs; the open sessions'
        // last records stay (as checkpoints when acknowledged).
        spool.rewrite()?;
        spool.sync()?;
        Ok(spool)
    }

    /// The last Start or Interim-Update of every session that was open when the spool
    /// was opened (xlnsd died before its Stop), in spool order; taken once. The caller
    /// writes each one's Stop ([`Spool::close_recovered`]), now or later.
    pub fn take_recovered(&mut self) -> Vec<Record> {
        std::mem::take(&mut self.recovered)
    }

    /// Appends the Stop of a recovered session (room is not checked: it ends a session
    /// whose Start was counted).
    pub fn close_recovered(&mut self, stop: Record) -> u64 {
        self.stats.reboot_stops += 1;
        self.append_record(stop)
    }

    /// Rebuilds the in-memory state from scanned entries.
    fn apply(&mut self, entries: Vec<Entry>) {
        for entry in entries {
            self.next_seq = self.next_seq.max(entry.seq + 1);
            match entry.kind {
                EntryKind::Ack => {
                    if let Some(p) = self.pending.remove(&entry.seq) {
                        self.untrack_interim(entry.seq, &p.record);
                    }
                }
                EntryKind::Record | EntryKind::Checkpoint => {
                    let Ok(record) = Record::decode(&entry.payload) else {
                        self.stats.corrupt += 1;
                        continue;
                    };
                    self.track_open(entry.seq, &record);
                    if entry.kind == EntryKind::Record {
                        let bytes = (ENTRY_OVERHEAD + entry.payload.len()) as u64;
                        self.track_interim(entry.seq, &record);
                        self.pending.insert(entry.seq, Pending { record, bytes });
                    }
                }
            }
        }
        self.synced_below = self.next_seq;
        self.refresh_gauges();
    }

    fn track_open(&mut self, seq: u64, record: &Record) {
        let Some(id) = record.session_id() else {
            return;
        };
        match record.status() {
            Some(StatusType::Start | StatusType::InterimUpdate) => {
                self.open_bytes += entry_bytes(record);
                if let Some((_, old)) = self.open.insert(id.to_vec(), (seq, record.clone())) {
                    self.open_bytes -= entry_bytes(&old);
                }
            }
            Some(StatusType::Stop) => {
                if let Some((_, old)) = self.open.remove(id) {
                    self.open_bytes -= entry_bytes(&old);
                }
            }
            _ => {}
        }
    }

    fn track_interim(&mut self, seq: u64, record: &Record) {
        if record.status() == Some(StatusType::InterimUpdate)
            && let Some(id) = record.session_id()
        {
            self.interims.insert(id.to_vec(), seq);
        }
    }

    fn untrack_interim(&mut self, seq: u64, record: &Record) {
        if let Some(id) = record.session_id()
            && self.interims.get(id) == Some(&seq)
        {
            self.interims.remove(id);
        }
    }

    /// The pending Interim-Update of session `id`, if any: a newer Interim-Update or the
    /// Stop makes it redundant (it carries less), see [`Spool::supersede`].
    pub fn pending_interim(&self, id: &[u8]) -> Option<u64> {
        self.interims.get(id).copied()
    }

    /// Forgets pending record `seq` for good (it can never be sent: unencodable); the
    /// caller counts it. Whether it was pending.
    pub fn discard(&mut self, seq: u64) -> bool {
        self.forget(seq)
    }

    /// Forgets pending record `seq` without it being sent (an ACK entry marks it): a
    /// newer record of the same session says everything it said. Counted in
    /// [`SpoolStats::superseded`].
    pub fn supersede(&mut self, seq: u64) {
        if self.forget(seq) {
            self.stats.superseded += 1;
        }
    }

    fn refresh_gauges(&mut self) {
        self.stats.depth = self.pending.len() as u64;
        self.stats.bytes = self.pending.values().map(|p| p.bytes).sum();
    }

    /// Counters and gauges.
    pub fn stats(&self) -> SpoolStats {
        self.stats
    }

    /// The spool file, if any.
    pub fn path(&self) -> Option<&Path> {
        self.config.path.as_deref()
    }

    /// Records not acknowledged yet.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether every record was acknowledged.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Sessions with a Start and no Stop.
    pub fn open_sessions(&self) -> usize {
        self.open.len()
    }

    /// Whether `record` fits the bounds (see the module documentation).
    fn has_room(&self, record: &Record, bytes: u64) -> bool {
        let (records, max_bytes) = (self.config.max_records as u64, self.config.max_bytes);
        let (records, max_bytes) = if record.status() == Some(StatusType::InterimUpdate) {
            (records - records / 10, max_bytes - max_bytes / 10)
        } else {
            (records, max_bytes)
        };
        self.stats.depth < records && self.stats.bytes + bytes <= max_bytes
    }

    /// Appends `record` (see the module documentation); its sequence number.
    pub fn push(&mut self, record: Record) -> Result<u64, PushError> {
        let bytes = entry_bytes(&record);
        if !self.has_room(&record, bytes) {
            self.stats.full = true;
            self.stats.dropped += 1;
            return Err(PushError::Full);
        }
        self.stats.full = false;
        Ok(self.append_record(record))
    }

    fn append_record(&mut self, record: Record) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        let payload = record.encode();
        let bytes = (ENTRY_OVERHEAD + payload.len()) as u64;
        self.write(&Entry {
            kind: EntryKind::Record,
            seq,
            payload,
        });
        self.dirty = true;
        self.track_open(seq, &record);
        self.track_interim(seq, &record);
        self.pending.insert(seq, Pending { record, bytes });
        self.stats.appended += 1;
        self.stats.depth += 1;
        self.stats.bytes += bytes;
        seq
    }

    fn write(&mut self, entry: &Entry) {
        let Some(file) = &mut self.file else {
            return;
        };
        let bytes = entry.encode();
        match file.write_all(&bytes) {
            Ok(()) => self.stats.file_bytes += bytes.len() as u64,
            Err(error) => {
                // A partial entry would hide every later one from a replay: cut it off.
                let good = self.stats.file_bytes;
                let restored = file
                    .set_len(good)
                    .and_then(|()| file.seek(SeekFrom::Start(good)).map(|_| ()));
                self.stats.io_errors += 1;
                tracing::error!(%error, restored = restored.is_ok(), "accounting spool: write failed");
            }
        }
    }

    /// Makes every appended entry durable (`fdatasync`); records pushed so far become
    /// [`Spool::sendable`].
    pub fn sync(&mut self) -> io::Result<()> {
        if self.dirty
            && let Some(file) = &self.file
        {
            if let Err(error) = file.sync_data() {
                self.stats.io_errors += 1;
                return Err(error);
            }
            self.dirty = false;
        }
        self.synced_below = self.next_seq;
        Ok(())
    }

    /// The pending records, in order.
    pub fn pending(&self) -> impl Iterator<Item = (u64, &Record)> + '_ {
        self.pending.iter().map(|(seq, p)| (*seq, &p.record))
    }

    /// The pending records that a sync made durable, in order.
    pub fn sendable(&self) -> impl Iterator<Item = (u64, &Record)> + '_ {
        self.pending
            .range(..self.synced_below)
            .map(|(seq, p)| (*seq, &p.record))
    }

    /// Pending record `seq`.
    pub fn get(&self, seq: u64) -> Option<&Record> {
        self.pending.get(&seq).map(|p| &p.record)
    }

    /// The server acknowledged record `seq`: forget it (see the module documentation).
    pub fn ack(&mut self, seq: u64) {
        if self.forget(seq) {
            self.stats.acked += 1;
        }
    }

    /// Removes pending record `seq` and appends its ACK; whether it was pending.
    fn forget(&mut self, seq: u64) -> bool {
        let Some(p) = self.pending.remove(&seq) else {
            return false;
        };
        self.untrack_interim(seq, &p.record);
        self.stats.depth -= 1;
        self.stats.bytes -= p.bytes;
        self.write(&Entry {
            kind: EntryKind::Ack,
            seq,
            payload: Vec::new(),
        });
        if let Err(error) = self.maybe_compact() {
            self.stats.io_errors += 1;
            tracing::error!(%error, "accounting spool: compaction failed");
        }
        true
    }

    /// An estimate of what a rewrite would write (O(1)).
    fn live_bytes(&self) -> u64 {
        self.stats.bytes + self.open_bytes
    }

    fn maybe_compact(&mut self) -> io::Result<()> {
        if self.file.is_none() {
            return Ok(());
        }
        let idle = self.pending.is_empty() && self.open.is_empty();
        let bloated = self.stats.file_bytes > COMPACT_MIN_BYTES
            && self.stats.file_bytes > 2 * self.live_bytes();
        if idle || bloated {
            self.rewrite()?;
        }
        Ok(())
    }

    /// Writes the live state (pending records, checkpoints of open sessions whose last
    /// record was acknowledged) to a new file, syncs it and renames it over the spool.
    fn rewrite(&mut self) -> io::Result<()> {
        let Some(path) = self.config.path.clone() else {
            return Ok(());
        };
        let mut out = MAGIC.to_vec();
        let mut checkpoints: Vec<(u64, &Record)> = self
            .open
            .values()
            .filter(|(seq, _)| !self.pending.contains_key(seq))
            .map(|(seq, r)| (*seq, r))
            .collect();
        checkpoints.sort_by_key(|(seq, _)| *seq);
        for (seq, record) in checkpoints {
            out.extend(
                Entry {
                    kind: EntryKind::Checkpoint,
                    seq,
                    payload: record.encode(),
                }
                .encode(),
            );
        }
        for (seq, p) in &self.pending {
            out.extend(
                Entry {
                    kind: EntryKind::Record,
                    seq: *seq,
                    payload: p.record.encode(),
                }
                .encode(),
            );
        }
        let tmp = path.with_extension("compact");
        {
            let mut f = File::create(&tmp)?;
            f.write_all(&out)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        let mut file = OpenOptions::new().read(true).write(true).open(&path)?;
        file.seek(SeekFrom::End(0))?;
        self.file = Some(file);
        self.dirty = false;
        self.stats.file_bytes = out.len() as u64;
        self.stats.compactions += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests;

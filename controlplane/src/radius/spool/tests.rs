#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::radius::acct::{SessionInfo, TerminateCause, Traffic, session_record};
use crate::radius::wire::attr;

/// A fresh spool path, removed with its directory on drop.
struct TempPath(PathBuf);

impl TempPath {
    fn new(name: &str) -> TempPath {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "xlns-spool-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempPath(dir.join("acct.spool"))
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn config(path: &TempPath) -> SpoolConfig {
    SpoolConfig {
        path: Some(path.0.clone()),
        max_records: 1000,
        max_bytes: 1 << 30,
    }
}

fn info(id: &str) -> SessionInfo {
    SessionInfo {
        acct_session_id: id.to_owned(),
        user_name: b"user".to_vec(),
        ..SessionInfo::default()
    }
}

fn start(id: &str) -> Record {
    session_record(StatusType::Start, &info(id), 100, None, None, None)
}

fn interim(id: &str, octets: u64) -> Record {
    let t = Traffic {
        input_octets: octets,
        ..Traffic::default()
    };
    session_record(
        StatusType::InterimUpdate,
        &info(id),
        160,
        Some(Duration::from_secs(60)),
        Some(&t),
        None,
    )
}

fn stop(id: &str) -> Record {
    session_record(
        StatusType::Stop,
        &info(id),
        200,
        Some(Duration::from_secs(100)),
        Some(&Traffic::default()),
        Some(TerminateCause::UserRequest),
    )
}

/// Opens the spool and closes the sessions it recovered at once, as the accounting core
/// does without a data plane.
fn reopen(path: &TempPath) -> Spool {
    let mut spool = Spool::open(config(path)).unwrap();
    for r in spool.take_recovered() {
        spool.close_recovered(r.reboot_stop().unwrap());
    }
    spool.sync().unwrap();
    spool
}

fn u32_of(r: &Record, kind: u8) -> Option<u32> {
    r.attributes
        .iter()
        .find(|a| a.kind == kind)
        .and_then(|a| a.as_u32())
}

fn summary(spool: &Spool) -> Vec<(String, Option<StatusType>)> {
    spool
        .pending()
        .map(|(_, r)| {
            (
                String::from_utf8_lossy(r.session_id().unwrap_or_default()).into_owned(),
                r.status(),
            )
        })
        .collect()
}

#[test]
fn crc32_known_answer() {
    // The CRC-32 check value of "123456789" (IEEE 802.3).
    assert_eq!(crc32(&[b"123456789"]), 0xCBF4_3926);
    assert_eq!(crc32(&[b"1234", b"56789"]), 0xCBF4_3926);
}

#[test]
fn scan_stops_at_a_torn_or_corrupt_entry() {
    let a = Entry {
        kind: EntryKind::Record,
        seq: 1,
        payload: b"abc".to_vec(),
    };
    let b = Entry {
        kind: EntryKind::Ack,
        seq: 1,
        payload: Vec::new(),
    };
    let mut bytes = a.encode();
    bytes.extend(b.encode());
    let whole = scan(&bytes);
    assert_eq!(whole.entries, vec![a.clone(), b.clone()]);
    assert_eq!(whole.torn, 0);
    for cut in 1..b.encode().len() {
        let s = scan(&bytes[..bytes.len() - cut]);
        assert_eq!(s.entries, vec![a.clone()], "cut {cut}");
        assert_eq!(s.valid_len, a.encode().len());
    }
    let mut flipped = bytes.clone();
    let last = flipped.len() - 6;
    flipped[last] ^= 0x40;
    assert_eq!(scan(&flipped).entries, vec![a]);
}

#[test]
fn records_survive_a_reopen_until_acknowledged_in_order() {
    let path = TempPath::new("order");
    let mut spool = reopen(&path);
    let s1 = spool.push(start("A")).unwrap();
    let s2 = spool.push(start("B")).unwrap();
    let s3 = spool.push(stop("A")).unwrap();
    assert!(s1 < s2 && s2 < s3);
    assert_eq!(
        spool.sendable().count(),
        0,
        "nothing is sendable before a sync"
    );
    spool.sync().unwrap();
    assert_eq!(spool.sendable().count(), 3);
    spool.ack(s2);
    drop(spool);

    let mut spool = reopen(&path);
    // A: Start and Stop pending, in order; B: acknowledged Start, no Stop: closed with
    // a NAS-Reboot Stop behind them.
    assert_eq!(
        summary(&spool),
        vec![
            ("A".to_owned(), Some(StatusType::Start)),
            ("A".to_owned(), Some(StatusType::Stop)),
            ("B".to_owned(), Some(StatusType::Stop)),
        ]
    );
    assert_eq!(spool.stats().replayed, 2);
    assert_eq!(spool.stats().reboot_stops, 1);
    let reboot = spool.pending().nth(2).map(|(_, r)| r.clone()).unwrap();
    assert_eq!(u32_of(&reboot, attr::ACCT_TERMINATE_CAUSE), Some(11));
    assert_eq!(spool.sendable().count(), 3, "replayed records are durable");
    let seqs: Vec<u64> = spool.pending().map(|(s, _)| s).collect();
    let next = spool.push(start("C")).unwrap();
    assert!(
        seqs.iter().all(|s| *s < next),
        "new records come after the replay"
    );
    drop(spool);

    // A second restart does not close B again, and does not resurrect anything.
    let spool = reopen(&path);
    assert_eq!(spool.stats().reboot_stops, 1, "C has a Start only");
    let closed: Vec<_> = summary(&spool)
        .into_iter()
        .filter(|(id, s)| id == "B" && *s == Some(StatusType::Stop))
        .collect();
    assert_eq!(closed.len(), 1);
}

#[test]
fn a_torn_tail_is_ignored_and_truncated() {
    let path = TempPath::new("torn");
    let mut spool = reopen(&path);
    spool.push(start("A")).unwrap();
    spool.push(stop("A")).unwrap();
    spool.sync().unwrap();
    drop(spool);
    let full = std::fs::read(&path.0).unwrap();
    // Half of a third entry, as a crash in the middle of write(2) leaves it.
    let third = Entry {
        kind: EntryKind::Record,
        seq: 99,
        payload: start("Z").encode(),
    }
    .encode();
    let mut torn = full.clone();
    torn.extend_from_slice(&third[..third.len() / 2]);
    std::fs::write(&path.0, &torn).unwrap();

    let mut spool = reopen(&path);
    assert_eq!(spool.stats().torn_bytes, (third.len() / 2) as u64);
    assert_eq!(
        summary(&spool),
        vec![
            ("A".to_owned(), Some(StatusType::Start)),
            ("A".to_owned(), Some(StatusType::Stop)),
        ]
    );
    // Appends after the reopen land after valid entries and are read back.
    spool.push(start("B")).unwrap();
    spool.sync().unwrap();
    drop(spool);
    let spool = reopen(&path);
    assert_eq!(spool.stats().torn_bytes, 0);
    assert_eq!(spool.len(), 4, "A start, A stop, B start, B reboot stop");
}

#[test]
fn a_file_that_is_not_a_spool_is_refused() {
    let path = TempPath::new("foreign");
    std::fs::write(&path.0, b"hello world").unwrap();
    assert!(Spool::open(config(&path)).is_err());
}

#[test]
fn the_file_shrinks_to_its_magic_when_everything_is_acknowledged() {
    let path = TempPath::new("shrink");
    let mut spool = reopen(&path);
    let a = spool.push(start("A")).unwrap();
    let b = spool.push(stop("A")).unwrap();
    spool.sync().unwrap();
    spool.ack(a);
    assert!(std::fs::metadata(&path.0).unwrap().len() > MAGIC.len() as u64);
    spool.ack(b);
    assert_eq!(
        std::fs::metadata(&path.0).unwrap().len(),
        MAGIC.len() as u64
    );
    assert_eq!(spool.stats().file_bytes, MAGIC.len() as u64);
    assert!(spool.is_empty());
}

#[test]
fn compaction_keeps_the_last_interim_of_open_sessions() {
    let path = TempPath::new("compact");
    let mut spool = reopen(&path);
    let s = spool.push(start("A")).unwrap();
    spool.sync().unwrap();
    spool.ack(s);
    let mut last = 0;
    while spool.stats().compactions < 2 {
        last += 1;
        let s = spool.push(interim("A", last)).unwrap();
        spool.ack(s);
        assert!(last < 100_000, "never compacted");
    }
    assert!(spool.stats().file_bytes < COMPACT_MIN_BYTES);
    drop(spool);
    let spool = reopen(&path);
    assert_eq!(spool.stats().reboot_stops, 1);
    let (_, stop) = spool.pending().next().unwrap();
    assert_eq!(stop.status(), Some(StatusType::Stop));
    assert_eq!(
        u32_of(stop, attr::ACCT_INPUT_OCTETS),
        Some(last as u32),
        "the Stop has the counters of the last Interim-Update"
    );
}

#[test]
fn a_superseded_interim_is_not_replayed() {
    let path = TempPath::new("supersede");
    let mut spool = reopen(&path);
    spool.push(start("A")).unwrap();
    let i1 = spool.push(interim("A", 1)).unwrap();
    assert_eq!(spool.pending_interim(b"A"), Some(i1));
    spool.supersede(i1);
    assert_eq!(spool.pending_interim(b"A"), None);
    let i2 = spool.push(interim("A", 2)).unwrap();
    spool.sync().unwrap();
    assert_eq!(spool.stats().superseded, 1);
    drop(spool);
    let spool = reopen(&path);
    assert_eq!(
        spool.pending_interim(b"A"),
        Some(i2),
        "tracked after a replay"
    );
    let octets: Vec<Option<u32>> = spool
        .pending()
        .map(|(_, r)| u32_of(r, attr::ACCT_INPUT_OCTETS))
        .collect();
    // Start, the second Interim-Update, the NAS-Reboot Stop with its counters.
    assert_eq!(octets, vec![None, Some(2), Some(2)]);
}

#[test]
fn a_recovered_session_stays_open_until_its_stop_is_written() {
    let path = TempPath::new("recovered");
    let mut spool = reopen(&path);
    let s = spool.push(start("A")).unwrap();
    spool.sync().unwrap();
    spool.ack(s);
    drop(spool);
    let mut spool = Spool::open(config(&path)).unwrap();
    let recovered = spool.take_recovered();
    assert_eq!(recovered.len(), 1);
    assert!(spool.take_recovered().is_empty(), "taken once");
    assert_eq!(spool.open_sessions(), 1);
    drop(spool);
    // Crashed again before the Stop: recovered again.
    let mut spool = Spool::open(config(&path)).unwrap();
    let recovered = spool.take_recovered();
    assert_eq!(recovered, vec![start("A")]);
    spool.close_recovered(recovered[0].reboot_stop().unwrap());
    spool.sync().unwrap();
    assert_eq!(spool.open_sessions(), 0);
    drop(spool);
    let mut spool = Spool::open(config(&path)).unwrap();
    assert!(spool.take_recovered().is_empty());
    assert_eq!(
        summary(&spool),
        vec![("A".to_owned(), Some(StatusType::Stop))]
    );
}

#[test]
fn a_full_spool_refuses_interims_first_then_everything_and_counts() {
    let path = TempPath::new("full");
    let mut spool = Spool::open(SpoolConfig {
        max_records: 10,
        ..config(&path)
    })
    .unwrap();
    for i in 0..9 {
        spool.push(start(&format!("S{i}"))).unwrap();
    }
    assert_eq!(spool.push(interim("S0", 1)), Err(PushError::Full));
    assert!(spool.stats().full);
    spool.push(stop("S0")).unwrap();
    assert!(!spool.stats().full);
    assert_eq!(spool.push(stop("S1")), Err(PushError::Full));
    let s = spool.stats();
    assert!(s.full);
    assert_eq!(s.dropped, 2);
    assert_eq!(s.depth, 10);
    spool.sync().unwrap();
    let first = spool.pending().next().map(|(s, _)| s).unwrap();
    spool.ack(first);
    spool.push(stop("S1")).unwrap();
    assert!(!spool.stats().full);
}

#[test]
fn the_byte_bound_applies_too() {
    let path = TempPath::new("bytes");
    let one = (ENTRY_OVERHEAD + start("A").encode().len()) as u64;
    let mut spool = Spool::open(SpoolConfig {
        max_bytes: 3 * one,
        ..config(&path)
    })
    .unwrap();
    for id in ["A", "B", "C"] {
        spool.push(start(id)).unwrap();
    }
    assert_eq!(spool.push(start("D")), Err(PushError::Full));
    assert_eq!(spool.stats().bytes, 3 * one);
}

#[test]
fn without_a_path_the_spool_lives_in_memory() {
    let mut spool = Spool::open(SpoolConfig {
        path: None,
        max_records: 10,
        max_bytes: 1 << 20,
    })
    .unwrap();
    let s = spool.push(start("A")).unwrap();
    spool.sync().unwrap();
    assert_eq!(spool.sendable().count(), 1);
    spool.ack(s);
    assert!(spool.is_empty());
}

proptest! {
    #[test]
    fn scan_never_panics_and_never_overreads(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let s = scan(&bytes);
        prop_assert_eq!(s.valid_len + s.torn, bytes.len());
    }

    #[test]
    fn scan_of_encoded_entries_is_identity(
        entries in prop::collection::vec((1u8..=3, any::<u64>(), prop::collection::vec(any::<u8>(), 0..64)), 0..10)
    ) {
        let entries: Vec<Entry> = entries.into_iter().map(|(k, seq, payload)| Entry {
            kind: match k { 1 => EntryKind::Record, 2 => EntryKind::Ack, _ => EntryKind::Checkpoint },
            seq,
            payload,
        }).collect();
        let bytes: Vec<u8> = entries.iter().flat_map(Entry::encode).collect();
        let s = scan(&bytes);
        prop_assert_eq!(s.torn, 0);
        prop_assert_eq!(s.entries, entries);
    }
}

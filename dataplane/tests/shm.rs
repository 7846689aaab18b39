//! The shared-memory segment: layout, attach checks, writer/reader behaviour at small and
//! large scale, tombstones, concurrency, two processes, writer restart.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use xlns_dataplane::session::{SessionRecord, UpstreamV4, flags};
use xlns_dataplane::shm::{
    ABI_VERSION, Counters, Geometry, Layout, MAGIC, PAGE, Reader, ShmError, SlotId, Writer,
};

/// A unique segment path, removed on drop.
struct TempPath(PathBuf);

impl TempPath {
    fn new(tag: &str) -> TempPath {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let n = N.fetch_add(1, Ordering::Relaxed);
        TempPath(dir.join(format!("xlns-test.{}.{tag}.{n}", std::process::id())))
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn geometry(max_sessions: u32, max_workers: u32) -> Geometry {
    Geometry {
        max_sessions,
        max_workers,
    }
}

/// FNV-1a over a record's octets except the checksum itself (template[0..4]).
fn checksum(r: &SessionRecord) -> u32 {
    let mut c = *r;
    c.template[..4].copy_from_slice(&[0; 4]);
    let mut h: u32 = 0x811c_9dc5;
    let bytes: Vec<u8> = [
        &c.local_tunnel.to_be_bytes()[..],
        &c.local_session.to_be_bytes(),
        &c.peer_tunnel.to_be_bytes(),
        &c.peer_session.to_be_bytes(),
        &c.flags.to_be_bytes(),
        &c.peer_addr,
        &c.subscriber_v4,
        &c.mtu.to_be_bytes(),
        &c.template,
    ]
    .concat();
    for b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// A record with keys `(tunnel, session)`, optional IPv4 address, a variable payload
/// `stamp`, and a checksum over its own fields.
fn record(tunnel: u16, session: u16, v4: Option<u32>, stamp: u32) -> SessionRecord {
    let mut r = SessionRecord {
        local_tunnel: tunnel,
        local_session: session,
        peer_tunnel: tunnel ^ 0x5555,
        peer_session: session ^ 0xaaaa,
        mtu: 1400 + (stamp % 100) as u16,
        ..SessionRecord::EMPTY
    };
    r.peer_addr[..4].copy_from_slice(&stamp.to_be_bytes());
    if let Some(a) = v4 {
        r.flags |= flags::HAS_IPV4;
        r.subscriber_v4 = a.to_be_bytes();
    }
    for (i, b) in r.template.iter_mut().enumerate().skip(4) {
        *b = (stamp as usize).wrapping_mul(31).wrapping_add(i) as u8;
    }
    r.template_len = 86;
    let c = checksum(&r);
    r.template[..4].copy_from_slice(&c.to_be_bytes());
    r.derive_template_layout();
    r
}

/// A record as read back, without the epoch the writer gave it (tests compare records
/// with what they inserted).
fn norm(mut r: SessionRecord) -> SessionRecord {
    r.epoch = 0;
    r
}

fn lu(r: &Reader, t: u16, s: u16) -> Option<(SlotId, SessionRecord)> {
    r.lookup_upstream(t, s).map(|(slot, rec)| (slot, norm(rec)))
}

fn l4(r: &Reader, a: [u8; 4]) -> Option<(SlotId, SessionRecord)> {
    r.lookup_v4(a).map(|(slot, rec)| (slot, norm(rec)))
}

fn valid(r: &SessionRecord) -> bool {
    r.template[..4] == checksum(r).to_be_bytes()
}

/// Keys for session number `i` (never zero).
fn keys(i: u32) -> (u16, u16, u32) {
    let t = (i / 60_000 + 1) as u16;
    let s = (i % 60_000 + 1) as u16;
    (t, s, 0x0a00_0000 + i + 1)
}

#[test]
fn layout_regions_are_page_aligned_and_disjoint() {
    for g in [geometry(1, 1), geometry(1000, 4), geometry(1_000_000, 16)] {
        let l = Layout::new(g).unwrap();
        let regions = [
            l.slots,
            l.upstream_index,
            l.v4_index,
            l.counters,
            l.counter_base,
            l.drops,
        ];
        let mut end = 384;
        for r in regions {
            assert_eq!(r.offset % PAGE, 0);
            assert!(r.offset >= end, "{r:?} overlaps");
            end = r.offset + r.size;
        }
        assert!(l.segment_size >= end);
        assert!(u64::from(l.index_capacity) >= 2 * u64::from(g.max_sessions));
        assert!(l.index_capacity.is_power_of_two());
        assert_eq!(l.counters_worker_stride % PAGE, 0);
    }
    assert!(Layout::new(geometry(0, 1)).is_none());
    assert!(Layout::new(geometry(1, 0)).is_none());
    assert!(Layout::new(geometry(Geometry::MAX_SESSIONS + 1, 1)).is_none());
}

#[test]
fn file_begins_with_magic_and_version() {
    let p = TempPath::new("magic");
    let _w = Writer::create(&p.0, geometry(10, 2)).unwrap();
    let bytes = std::fs::read(&p.0).unwrap();
    assert_eq!(&bytes[0..8], b"XLNSSHM1");
    assert_eq!(u64::from_le_bytes(bytes[0..8].try_into().unwrap()), MAGIC);
    assert_eq!(
        u32::from_ne_bytes(bytes[8..12].try_into().unwrap()),
        ABI_VERSION
    );
    assert_eq!(u32::from_ne_bytes(bytes[12..16].try_into().unwrap()), 384);
    assert_eq!(
        bytes.len() as u64,
        Layout::new(geometry(10, 2)).unwrap().segment_size
    );
}

#[test]
fn create_rejects_bad_geometry() {
    let p = TempPath::new("geom");
    let e = Writer::create(&p.0, geometry(0, 1)).unwrap_err();
    assert!(
        matches!(
            e,
            ShmError::InvalidGeometry {
                max_sessions: 0,
                ..
            }
        ),
        "{e}"
    );
}

fn patch(path: &std::path::Path, offset: usize, bytes: &[u8]) {
    let mut data = std::fs::read(path).unwrap();
    data[offset..offset + bytes.len()].copy_from_slice(bytes);
    std::fs::write(path, data).unwrap();
}

#[test]
fn attach_refuses_missing_short_foreign_and_other_versions() {
    let p = TempPath::new("attach");
    let e = Reader::attach(&p.0).unwrap_err();
    assert!(matches!(e, ShmError::Io { op: "open", .. }), "{e}");

    std::fs::write(&p.0, [0u8; 100]).unwrap();
    let e = Reader::attach(&p.0).unwrap_err();
    assert!(
        matches!(
            e,
            ShmError::TooSmall {
                len: 100,
                need: 384,
                ..
            }
        ),
        "{e}"
    );

    std::fs::write(&p.0, [0u8; 8192]).unwrap();
    let e = Reader::attach(&p.0).unwrap_err();
    assert!(matches!(e, ShmError::BadMagic { found: 0, .. }), "{e}");
    assert!(e.to_string().contains("not an xlns segment"), "{e}");

    drop(Writer::create(&p.0, geometry(100, 2)).unwrap());
    Reader::attach(&p.0).unwrap();

    patch(&p.0, 8, &(ABI_VERSION + 1).to_ne_bytes());
    let e = Reader::attach(&p.0).unwrap_err();
    assert!(
        matches!(e, ShmError::AbiVersion { found, expected, .. } if found == ABI_VERSION + 1 && expected == ABI_VERSION),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("ABI version {}", ABI_VERSION + 1)),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("speaks version {ABI_VERSION}")),
        "{msg}"
    );
    let e = Writer::attach_existing(&p.0).unwrap_err();
    assert!(matches!(e, ShmError::AbiVersion { .. }), "{e}");
}

#[test]
fn attach_refuses_inconsistent_geometry() {
    let p = TempPath::new("incons");
    drop(Writer::create(&p.0, geometry(100, 2)).unwrap());
    // max_sessions 100 -> 200: the slot table size no longer matches.
    patch(&p.0, 24, &200u32.to_ne_bytes());
    let e = Reader::attach(&p.0).unwrap_err();
    assert!(matches!(e, ShmError::Inconsistent { .. }), "{e}");
    assert!(e.to_string().contains("header field"), "{e}");

    drop(Writer::create(&p.0, geometry(100, 2)).unwrap());
    // The IPv4 index's offset (Header::v4_index.offset at 104).
    patch(&p.0, 104, &12345u64.to_ne_bytes());
    let e = Reader::attach(&p.0).unwrap_err();
    assert!(
        matches!(
            e,
            ShmError::Inconsistent {
                field: "v4_index",
                found: 12345,
                ..
            }
        ),
        "{e}"
    );

    drop(Writer::create(&p.0, geometry(100, 2)).unwrap());
    patch(&p.0, 44, &200u32.to_ne_bytes());
    let e = Reader::attach(&p.0).unwrap_err();
    assert!(
        matches!(
            e,
            ShmError::Inconsistent {
                field: "slot_size",
                found: 200,
                expected: 256,
                ..
            }
        ),
        "{e}"
    );

    drop(Writer::create(&p.0, geometry(100, 2)).unwrap());
    let f = std::fs::OpenOptions::new().write(true).open(&p.0).unwrap();
    let len = f.metadata().unwrap().len();
    f.set_len(len - 4096).unwrap();
    let e = Reader::attach(&p.0).unwrap_err();
    assert!(matches!(e, ShmError::TooSmall { .. }), "{e}");
}

#[test]
fn insert_lookup_update_remove() {
    let p = TempPath::new("small");
    let mut w = Writer::create(&p.0, geometry(4, 2)).unwrap();
    let r = Reader::attach(&p.0).unwrap();
    assert!(w.is_empty());
    assert_eq!(lu(&r, 1, 1), None);

    let a = record(1, 1, Some(0x0a00_0001), 1);
    let b = record(1, 2, None, 2);
    let g0 = r.generation();
    let sa = w.insert(&a).unwrap();
    let sb = w.insert(&b).unwrap();
    assert_ne!(sa, sb);
    assert!(r.generation() >= g0 + 2);
    assert_eq!(w.len(), 2);
    assert_eq!(r.len(), 2);
    assert_eq!(lu(&r, 1, 1), Some((sa, a)));
    assert_eq!(lu(&r, 1, 2), Some((sb, b)));
    assert_eq!(lu(&r, 2, 1), None);
    assert_eq!(l4(&r, [10, 0, 0, 1]), Some((sa, a)));
    assert_eq!(l4(&r, [10, 0, 0, 2]), None);
    assert_eq!(l4(&r, [0, 0, 0, 0]), None);
    assert_eq!(w.find_upstream(1, 2), Some(sb));
    assert_eq!(w.find_v4([10, 0, 0, 1]), Some(sa));
    assert_eq!(w.get(sa).map(norm), Some(a));

    // Duplicates and invalid keys.
    let e = w.insert(&record(1, 1, None, 3)).unwrap_err();
    assert!(
        matches!(e, ShmError::DuplicateKey { index: "upstream", slot, .. } if slot == sa.0),
        "{e}"
    );
    let e = w.insert(&record(1, 3, Some(0x0a00_0001), 3)).unwrap_err();
    assert!(
        matches!(e, ShmError::DuplicateKey { index: "ipv4", .. }),
        "{e}"
    );
    let e = w.insert(&record(0, 3, None, 3)).unwrap_err();
    assert!(
        matches!(
            e,
            ShmError::InvalidKey {
                index: "upstream",
                ..
            }
        ),
        "{e}"
    );
    let mut zero_v4 = record(1, 3, None, 3);
    zero_v4.flags |= flags::HAS_IPV4;
    let e = w.insert(&zero_v4).unwrap_err();
    assert!(
        matches!(e, ShmError::InvalidKey { index: "ipv4", .. }),
        "{e}"
    );
    assert_eq!(w.len(), 2);

    // Update in place, same keys.
    let a2 = record(1, 1, Some(0x0a00_0001), 99);
    w.update(sa, &a2).unwrap();
    assert_eq!(lu(&r, 1, 1), Some((sa, a2)));
    // Update changing both keys: old keys gone, new keys found, same slot.
    let a3 = record(7, 7, Some(0x0a00_0007), 100);
    w.update(sa, &a3).unwrap();
    assert_eq!(lu(&r, 1, 1), None);
    assert_eq!(l4(&r, [10, 0, 0, 1]), None);
    assert_eq!(lu(&r, 7, 7), Some((sa, a3)));
    assert_eq!(l4(&r, [10, 0, 0, 7]), Some((sa, a3)));
    // Update dropping the IPv4 address.
    let a4 = record(7, 7, None, 101);
    w.update(sa, &a4).unwrap();
    assert_eq!(l4(&r, [10, 0, 0, 7]), None);
    // Update onto another session's key is refused and changes nothing.
    let e = w.update(sa, &record(1, 2, None, 5)).unwrap_err();
    assert!(matches!(e, ShmError::DuplicateKey { .. }), "{e}");
    assert_eq!(lu(&r, 7, 7), Some((sa, a4)));

    // Fill up.
    w.insert(&record(2, 1, None, 0)).unwrap();
    w.insert(&record(2, 2, None, 0)).unwrap();
    let e = w.insert(&record(2, 3, None, 0)).unwrap_err();
    assert!(matches!(e, ShmError::Full { max_sessions: 4 }), "{e}");

    // Remove.
    w.remove(sb).unwrap();
    assert_eq!(lu(&r, 1, 2), None);
    assert_eq!(r.read_slot(sb), Some(SessionRecord::EMPTY));
    assert!(matches!(
        w.remove(sb),
        Err(ShmError::BadSlot {
            reason: "not in use",
            ..
        })
    ));
    assert!(matches!(
        w.remove(SlotId(4)),
        Err(ShmError::BadSlot {
            reason: "out of range",
            ..
        })
    ));
    assert!(matches!(w.update(sb, &b), Err(ShmError::BadSlot { .. })));
    assert_eq!(w.len(), 3);
    let s = w.insert(&b).unwrap();
    assert_eq!(lu(&r, 1, 2), Some((s, b)));
    assert_eq!(w.sessions().count(), 4);
}

#[test]
fn counters_sum_over_workers_and_restart_on_reuse() {
    let p = TempPath::new("counters");
    let mut w = Writer::create(&p.0, geometry(1, 3)).unwrap();
    let r = Reader::attach(&p.0).unwrap();
    let s = w.insert(&record(1, 1, None, 0)).unwrap();
    let c0 = r.counters(0).unwrap();
    let c2 = r.counters(2).unwrap();
    assert!(matches!(
        r.counters(0),
        Err(ShmError::WorkerClaimed { worker: 0 })
    ));
    assert!(matches!(
        r.counters(3),
        Err(ShmError::WorkerOutOfRange {
            worker: 3,
            max_workers: 3
        })
    ));
    c0.add_upstream(s, 100);
    c0.add_upstream(s, 50);
    c2.add_upstream(s, 10);
    c2.add_downstream(s, 1000);
    c0.add_downstream(SlotId(7), 1); // out of range: ignored
    c2.add_drop(5);
    c2.add_drop(5);
    c2.add_drop(64); // out of range: ignored
    let want = Counters {
        up_packets: 3,
        up_bytes: 160,
        down_packets: 1,
        down_bytes: 1000,
    };
    assert_eq!(w.session_counters(s).unwrap(), want);
    assert_eq!(w.drop_counters(2).unwrap()[5].load(Ordering::Relaxed), 2);
    assert_eq!(r.drop_counters(0).unwrap()[5].load(Ordering::Relaxed), 0);
    assert_eq!(w.remove(s).unwrap(), want);
    // The slot is reused by a new session: it starts from zero.
    let s2 = w.insert(&record(1, 2, None, 0)).unwrap();
    assert_eq!(s2, s);
    assert_eq!(w.session_counters(s2).unwrap(), Counters::default());
    c0.add_downstream(s2, 7);
    assert_eq!(
        w.session_counters(s2).unwrap(),
        Counters {
            down_packets: 1,
            down_bytes: 7,
            ..Counters::default()
        }
    );
    drop(c0);
    let c0 = r.counters(0).unwrap();
    assert_eq!(c0.worker(), 0);
}

/// A record without the checksum (cheap to build a million of).
fn plain(tunnel: u16, session: u16, v4: u32) -> SessionRecord {
    SessionRecord {
        local_tunnel: tunnel,
        local_session: session,
        flags: flags::HAS_IPV4,
        subscriber_v4: v4.to_be_bytes(),
        ..SessionRecord::EMPTY
    }
}

/// Session `i`'s IPv6 /64 (2001:db8:i::/64, i as two 16-bit groups).
fn prefix64(i: u32) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    p[4..8].copy_from_slice(&i.to_be_bytes());
    p
}

/// Session `i`'s Framed-Route when it has one (every 64th): 172.16.0.0/12 cut in /28s.
fn route28(i: u32) -> Option<[u8; 4]> {
    (i % 64 == 0).then(|| (0xac10_0000 + (i / 64) * 16).to_be_bytes())
}

/// `plain` with a /64 and, every 64th session, a /28 Framed-Route.
fn prefixed(i: u32) -> SessionRecord {
    let (t, s, a) = keys(i);
    let mut r = plain(t, s, a);
    r.flags |= flags::HAS_IPV6;
    r.subscriber_v6_prefix = prefix64(i);
    r.subscriber_v6_len = 64;
    if let Some(route) = route28(i) {
        assert!(r.push_route_v4(route, 28));
    }
    r
}

/// Inserts `n` sessions (each with an IPv6 /64, every 64th with a Framed-Route), looks
/// every one up every way, removes half, checks again.
fn scale(n: u32) -> Duration {
    let p = TempPath::new("scale");
    let mut w = Writer::create(&p.0, geometry(n, 1)).unwrap();
    let r = Reader::attach(&p.0).unwrap();
    let t = Instant::now();
    let mut slots = Vec::with_capacity(n as usize);
    for i in 0..n {
        slots.push(w.insert(&prefixed(i)).unwrap());
    }
    let inserted = t.elapsed();
    assert_eq!(w.len(), n as usize);
    // Debug builds check every 7th session beyond 100,000 (the 100k test checks all);
    // release builds check every one.
    let step = if cfg!(debug_assertions) && n > 100_000 {
        7
    } else {
        1
    };
    for i in (0..n).step_by(step) {
        let (tu, se, a) = keys(i);
        let (s, rec) = lu(&r, tu, se).unwrap();
        assert_eq!(s, slots[i as usize]);
        assert_eq!(rec.upstream_key(), (u32::from(tu) << 16) | u32::from(se));
        assert_eq!(l4(&r, a.to_be_bytes()).unwrap().0, s);
        let mut host = prefix64(i);
        host[15] = 1;
        assert_eq!(r.lookup_v6(host).unwrap().0, s);
        if let Some(route) = route28(i) {
            let mut inside = route;
            inside[3] |= 9;
            assert_eq!(r.lookup_route_v4(inside).unwrap().0, s);
        }
    }
    for i in (0..n).step_by(2) {
        w.remove(slots[i as usize]).unwrap();
    }
    for i in (0..n).step_by(step) {
        let (tu, se, a) = keys(i);
        assert_eq!(lu(&r, tu, se).is_some(), i % 2 == 1, "{i}");
        assert_eq!(l4(&r, a.to_be_bytes()).is_some(), i % 2 == 1, "{i}");
        assert_eq!(r.lookup_v6(prefix64(i)).is_some(), i % 2 == 1, "{i}");
        if let Some(route) = route28(i) {
            assert_eq!(r.lookup_route_v4(route), None, "{i}");
        }
    }
    assert_eq!(w.len(), (n / 2) as usize);
    inserted
}

#[test]
fn scale_100k() {
    let took = scale(100_000);
    assert!(took < Duration::from_secs(10), "100k inserts took {took:?}");
}

#[test]
fn scale_1m() {
    let took = scale(1_000_000);
    eprintln!("1M inserts: {took:?}");
    let limit = if cfg!(debug_assertions) { 60 } else { 3 };
    assert!(
        took < Duration::from_secs(limit),
        "1M inserts took {took:?}"
    );
}

#[test]
fn tombstones_are_cleaned_and_never_hide_keys() {
    let p = TempPath::new("tomb");
    // 64 sessions: 128 buckets per table, rebuild past 16 tombstones.
    let mut w = Writer::create(&p.0, geometry(64, 1)).unwrap();
    let r = Reader::attach(&p.0).unwrap();
    let flips = || w_flips(&r);
    // 40 long-lived sessions keep the tables busy.
    let mut stable = Vec::new();
    for i in 0..40 {
        let (t, s, a) = keys(i);
        stable.push((i, w.insert(&record(t, s, Some(a), i)).unwrap()));
    }
    let f0 = flips();
    let mut live = std::collections::VecDeque::new();
    for i in 40..20_000u32 {
        let (t, s, a) = keys(i);
        live.push_back((i, w.insert(&record(t, s, Some(a), i)).unwrap()));
        if live.len() > 20 {
            let (j, slot) = live.pop_front().unwrap();
            w.remove(slot).unwrap();
            let (t, s, a) = keys(j);
            assert_eq!(lu(&r, t, s), None);
            assert_eq!(l4(&r, a.to_be_bytes()), None);
        }
        if i % 97 == 0 {
            for &(j, slot) in stable.iter().chain(live.iter()) {
                let (t, s, a) = keys(j);
                assert_eq!(lu(&r, t, s).map(|x| x.0), Some(slot), "{j} at {i}");
                assert_eq!(
                    l4(&r, a.to_be_bytes()).map(|x| x.0),
                    Some(slot),
                    "{j} at {i}"
                );
            }
        }
    }
    assert!(
        flips() > f0 + 10,
        "tombstones never triggered a rebuild: {f0} -> {}",
        flips()
    );
    // After the churn every probe stays short: all keys found, absent keys miss.
    for &(j, slot) in stable.iter().chain(live.iter()) {
        let (t, s, _) = keys(j);
        assert_eq!(lu(&r, t, s).map(|x| x.0), Some(slot));
    }
    assert_eq!(w.len(), 60);
}

fn w_flips(r: &Reader) -> u64 {
    let h = r.segment().header();
    h.upstream_flips.load(Ordering::Relaxed) + h.v4_flips.load(Ordering::Relaxed)
}

#[test]
fn concurrent_readers_never_see_torn_or_foreign_records() {
    const KEYS: u32 = 512;
    let p = TempPath::new("stress");
    let mut w = Writer::create(&p.0, geometry(KEYS / 2 + 8, 4)).unwrap();
    let r = Arc::new(Reader::attach(&p.0).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|n| {
            let r = Arc::clone(&r);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let counters = r.counters(n).unwrap();
                let (mut hits, mut lookups) = (0u64, 0u64);
                let mut i = n * 7;
                while !stop.load(Ordering::Relaxed) {
                    i = (i + 13) % KEYS;
                    let (t, s, a) = keys(i);
                    lookups += 2;
                    if let Some((slot, rec)) = lu(&r, t, s) {
                        hits += 1;
                        assert!(valid(&rec), "torn record {rec:?}");
                        assert_eq!((rec.local_tunnel, rec.local_session), (t, s));
                        counters.add_upstream(slot, 1);
                    }
                    if let Some((_, rec)) = l4(&r, a.to_be_bytes()) {
                        hits += 1;
                        assert!(valid(&rec), "torn record {rec:?}");
                        assert_eq!(rec.subscriber_v4, a.to_be_bytes());
                        assert!(rec.has(flags::HAS_IPV4));
                    }
                    // The upstream fast path's five-word reads: never torn (the MTU and
                    // the address and flags follow from the record's stamp and keys).
                    lookups += 2;
                    for up in [r.lookup_up_v4(t, s), r.lookup_up_v4_first(t, s)]
                        .into_iter()
                        .flatten()
                    {
                        hits += 1;
                        assert_up_v4_consistent(&up, t, s, a);
                    }
                }
                (hits, lookups)
            })
        })
        .collect();
    let mut present: Vec<Option<SlotId>> = vec![None; KEYS as usize];
    let mut x: u64 = 0x1234_5678;
    let deadline = Instant::now() + Duration::from_millis(1500);
    let mut ops = 0u64;
    while Instant::now() < deadline {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let i = (x % u64::from(KEYS)) as u32;
        let (t, s, a) = keys(i);
        let stamp = (x >> 32) as u32;
        let v4 = (stamp % 4 != 0).then_some(a);
        match present[i as usize] {
            None => {
                if w.len() < (KEYS / 2) as usize {
                    present[i as usize] = Some(w.insert(&record(t, s, v4, stamp)).unwrap());
                }
            }
            Some(slot) if stamp % 3 == 0 => {
                w.remove(slot).unwrap();
                present[i as usize] = None;
            }
            Some(slot) => w.update(slot, &record(t, s, v4, stamp)).unwrap(),
        }
        ops += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let mut total_hits = 0;
    for h in readers {
        let (hits, lookups) = h.join().unwrap();
        assert!(lookups > 1000, "reader starved: {lookups} lookups");
        total_hits += hits;
    }
    assert!(ops > 10_000, "writer starved: {ops} operations");
    assert!(total_hits > 100, "readers never hit: {total_hits}");
}

/// `up`, read for keys `(t, s)`, is what one `record(t, s, .., stamp)` holds: a torn
/// read would mix two stamps.
fn assert_up_v4_consistent(up: &UpstreamV4, t: u16, s: u16, a: u32) {
    assert_eq!(up.key, (u32::from(t) << 16) | u32::from(s), "{up:?}");
    let stamp = u32::from_be_bytes(up.peer_v4);
    assert_eq!(up.mtu, 1400 + (stamp % 100) as u16, "torn {up:?}");
    let has_v4 = stamp % 4 != 0;
    assert_eq!(up.has(flags::HAS_IPV4), has_v4, "torn {up:?}");
    let subscriber = if has_v4 { a.to_be_bytes() } else { [0; 4] };
    assert_eq!(up.subscriber_v4, subscriber, "torn {up:?}");
}

/// The child half of `second_process_sees_the_writers_sessions`: does nothing unless the
/// parent set XLNS_SHM_CHILD.
#[test]
fn two_process_child() {
    let Ok(path) = std::env::var("XLNS_SHM_CHILD") else {
        return;
    };
    let r = Reader::attach(std::path::Path::new(&path)).unwrap();
    let c = r.counters(1).unwrap();
    assert_eq!(r.len(), 100);
    for i in 0..100 {
        let (t, s, a) = keys(i);
        let (slot, rec) = lu(&r, t, s).unwrap();
        assert_eq!(rec, record(t, s, Some(a), i));
        assert_eq!(l4(&r, a.to_be_bytes()).unwrap().0, slot);
        c.add_upstream(slot, u64::from(i));
    }
    assert_eq!(lu(&r, 9, 9), None);
    assert_eq!(r.writer_pid(), parent_pid());
}

fn parent_pid() -> u32 {
    std::env::var("XLNS_SHM_PARENT").unwrap().parse().unwrap()
}

#[test]
fn second_process_sees_the_writers_sessions() {
    let p = TempPath::new("twoproc");
    let mut w = Writer::create(&p.0, geometry(200, 2)).unwrap();
    let mut slots = Vec::new();
    for i in 0..100 {
        let (t, s, a) = keys(i);
        slots.push(w.insert(&record(t, s, Some(a), i)).unwrap());
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "two_process_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("XLNS_SHM_CHILD", &p.0)
        .env("XLNS_SHM_PARENT", std::process::id().to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1 passed"), "child did not run: {stdout}");
    // What the other process counted is visible here.
    for (i, slot) in slots.iter().enumerate() {
        let c = w.session_counters(*slot).unwrap();
        assert_eq!((c.up_packets, c.up_bytes), (1, i as u64));
    }
}

#[test]
fn writer_restart_rebuilds_free_list_and_indexes() {
    let p = TempPath::new("restart");
    let n = 1000;
    let mut w = Writer::create(&p.0, geometry(n, 1)).unwrap();
    let r = Reader::attach(&p.0).unwrap();
    let mut slots = Vec::new();
    for i in 0..n {
        let (t, s, a) = keys(i);
        slots.push(w.insert(&record(t, s, Some(a), i)).unwrap());
    }
    for i in (0..n).step_by(3) {
        w.remove(slots[i as usize]).unwrap();
    }
    let c = r.counters(0).unwrap();
    c.add_downstream(slots[1], 42);
    let before: Vec<_> = w.sessions().collect();
    w.heartbeat(5);
    drop(w); // the writer "dies"; the reader keeps its mapping

    // A writer killed in the middle of writing slot 2 leaves its sequence odd: readers
    // give up on it instead of spinning.
    let torn = slots[2];
    r.segment().slots()[torn.index()]
        .seq
        .fetch_add(1, Ordering::Relaxed);
    let (t2, s2, _) = keys(2);
    assert_eq!(lu(&r, t2, s2), None);
    let (t1, s1, _) = keys(1);
    assert!(lu(&r, t1, s1).is_some());

    let mut w = Writer::attach_existing(&p.0).unwrap();
    assert_eq!(w.torn_on_attach(), 1);
    assert_eq!(r.heartbeat_ns(), 5);
    assert_eq!(r.writer_pid(), std::process::id());
    let after: Vec<_> = w.sessions().collect();
    let expected: Vec<_> = before.iter().filter(|(s, _)| *s != torn).copied().collect();
    assert_eq!(after, expected);
    assert_eq!(w.len(), expected.len());
    for (slot, rec) in &after {
        assert_eq!(
            lu(&r, rec.local_tunnel, rec.local_session),
            Some((*slot, norm(*rec)))
        );
        assert_eq!(l4(&r, rec.subscriber_v4), Some((*slot, norm(*rec))));
        assert_eq!(
            w.find_upstream(rec.local_tunnel, rec.local_session),
            Some(*slot)
        );
    }
    assert_eq!(lu(&r, t2, s2), None);
    // Counters survive the restart.
    assert_eq!(w.session_counters(slots[1]).unwrap().down_bytes, 42);
    // The free list holds exactly the free slots: fill the segment to the brim.
    let free = n as usize - w.len();
    for i in 0..free as u32 {
        let (t, s, a) = keys(n + i);
        w.insert(&record(t, s, Some(a), i)).unwrap();
    }
    assert!(matches!(
        w.insert(&record(60_000, 1, None, 0)),
        Err(ShmError::Full { .. })
    ));
    // And removing after the restart works with the rebuilt indexes.
    let (slot, rec) = after[0];
    w.remove(slot).unwrap();
    assert_eq!(lu(&r, rec.local_tunnel, rec.local_session), None);
}

// ---------------------------------------------------------------------------------------
// IPv6 prefixes and Framed-Routes.

fn v6(text: &str) -> [u8; 16] {
    text.parse::<std::net::Ipv6Addr>().unwrap().octets()
}

/// Session `(t, s)` with address `v4`, IPv6 prefix `own/own_len`, Framed-Routes and
/// further IPv6 prefixes, and a valid template (so the downstream read has a layout).
fn routed(
    t: u16,
    s: u16,
    v4: [u8; 4],
    own: (&str, u8),
    routes: &[([u8; 4], u8)],
    more: &[(&str, u8)],
) -> SessionRecord {
    let mut r = SessionRecord {
        local_tunnel: t,
        local_session: s,
        peer_tunnel: 77,
        peer_session: s,
        flags: flags::HAS_IPV4 | flags::HAS_IPV6,
        mtu: 1400 + s,
        subscriber_v4: v4,
        subscriber_v6_prefix: v6(own.0),
        subscriber_v6_len: own.1,
        ..SessionRecord::EMPTY
    };
    for &(p, len) in routes {
        assert!(r.push_route_v4(p, len));
    }
    for &(p, len) in more {
        assert!(r.push_prefix_v6(v6(p), len));
    }
    // Ethernet, IPv4, UDP, L2TP data header with S, PPP: what build_template makes.
    let mut t = vec![0u8; 14 + 20 + 8];
    t[12] = 0x08;
    t[14] = 0x45;
    t.extend_from_slice(&[0x08, 0x02, 0, 77, (s >> 8) as u8, s as u8, 0, 0, 0, 0]);
    t.extend_from_slice(&[0xff, 0x03, 0x00, 0x21]);
    r.set_template(&t);
    r
}

fn lengths(r: &Reader) -> (u64, u64) {
    let h = r.segment().header();
    (
        h.v6_lengths.load(Ordering::Relaxed),
        h.route_lengths.load(Ordering::Relaxed),
    )
}

#[test]
fn prefix_indexes_longest_match_update_and_remove() {
    let p = TempPath::new("prefixes");
    let mut w = Writer::create(&p.0, geometry(16, 1)).unwrap();
    let r = Reader::attach(&p.0).unwrap();
    assert_eq!(lengths(&r), (0, 0));
    let a = routed(
        1,
        1,
        [100, 64, 0, 1],
        ("2001:db8:1:1::", 64),
        &[([192, 168, 0, 0], 16), ([10, 9, 9, 9], 32)],
        &[("2001:db8:100::", 40)],
    );
    let b = routed(
        1,
        2,
        [100, 64, 0, 2],
        ("2001:db8:1:2::", 64),
        &[([192, 168, 7, 0], 24)],
        &[("2001:db8::", 32)],
    );
    let sa = w.insert(&a).unwrap();
    let sb = w.insert(&b).unwrap();
    let bit6 = |len: u64| 1u64 << (len - 1);
    assert_eq!(
        lengths(&r),
        (
            bit6(64) | bit6(40) | bit6(32),
            (1 << 16) | (1 << 32) | (1 << 24)
        )
    );
    let route = |addr: [u8; 4]| r.lookup_route_v4(addr).map(|x| x.0);
    let pfx = |addr: &str| r.lookup_v6(v6(addr)).map(|x| x.0);
    assert_eq!(route([192, 168, 200, 1]), Some(sa));
    assert_eq!(route([192, 168, 7, 1]), Some(sb), "the /24 beats the /16");
    assert_eq!(route([10, 9, 9, 9]), Some(sa));
    assert_eq!(route([10, 9, 9, 8]), None);
    assert_eq!(pfx("2001:db8:1:1::5"), Some(sa));
    assert_eq!(pfx("2001:db8:1:2::5"), Some(sb));
    assert_eq!(pfx("2001:db8:100:ff::1"), Some(sa), "the /40 beats the /32");
    assert_eq!(pfx("2001:db8:7::1"), Some(sb));
    assert_eq!(pfx("2001:db9::1"), None);
    // The upstream source checks read the slot's route words, validated by the key.
    let key_a = a.upstream_key();
    assert!(r.source_in_routes_v4(sa, key_a, [192, 168, 200, 1]));
    assert!(r.source_in_routes_v4(sa, key_a, [10, 9, 9, 9]));
    assert!(!r.source_in_routes_v4(sa, key_a, [10, 9, 9, 8]));
    assert!(!r.source_in_routes_v4(sa, b.upstream_key(), [192, 168, 200, 1]));
    assert!(!r.source_in_routes_v4(sb, key_a, [192, 168, 200, 1]));
    assert!(r.source_in_prefixes_v6(sa, key_a, &v6("2001:db8:100:7::1")));
    assert!(
        !r.source_in_prefixes_v6(sa, key_a, &v6("2001:db8:1:1::1")),
        "own, not further"
    );
    assert!(!r.source_in_prefixes_v6(sb, key_a, &v6("2001:db8:100:7::1")));

    // The downstream read: template straight into the buffer, layout and MTU from the
    // head words, for an exact address, a route and a prefix.
    for (found, rec) in [
        (r.lookup_down_v4([100, 64, 0, 2], &mut [0; 96]), b),
        (r.lookup_down_v4([192, 168, 7, 9], &mut [0; 96]), b),
        (r.lookup_down_v6(v6("2001:db8:100::1"), &mut [0; 96]), a),
    ] {
        let d = found.unwrap();
        assert_eq!(d.mtu, rec.mtu);
        assert_eq!(d.layout.len, rec.template_len);
        assert_eq!((d.layout.ip, d.layout.udp, d.layout.ns_at), (14, 34, 48));
        assert_ne!(d.epoch, 0);
    }
    let mut out = [0u8; 96];
    let d = r.lookup_down_v4([192, 168, 1, 1], &mut out).unwrap();
    assert_eq!(d.slot, sa.0);
    assert_eq!(out, w.get(sa).unwrap().template);
    assert_eq!(r.lookup_down_v4([192, 169, 0, 1], &mut out), None);

    // Update: A loses its /16 and gets 192.168.0.0/17; B's /24 is untouched.
    let a2 = routed(
        1,
        1,
        [100, 64, 0, 1],
        ("2001:db8:1:1::", 64),
        &[([192, 168, 0, 0], 17)],
        &[],
    );
    w.update(sa, &a2).unwrap();
    assert_eq!(route([192, 168, 1, 1]), Some(sa));
    assert_eq!(route([192, 168, 200, 1]), None);
    assert_eq!(route([10, 9, 9, 9]), None);
    assert_eq!(route([192, 168, 7, 1]), Some(sb));
    assert_eq!(
        pfx("2001:db8:100::1"),
        Some(sb),
        "A's /40 went, B's /32 covers it"
    );
    assert_eq!(lengths(&r), (bit6(64) | bit6(32), (1 << 17) | (1 << 24)));

    // Remove B: its route and prefixes go, and their lengths' bits.
    w.remove(sb).unwrap();
    assert_eq!(route([192, 168, 7, 1]), Some(sa), "inside A's /17");
    assert_eq!(pfx("2001:db8:7::1"), None);
    assert_eq!(lengths(&r), (bit6(64), 1 << 17));
    w.remove(sa).unwrap();
    assert_eq!(lengths(&r), (0, 0));
    assert_eq!(route([192, 168, 1, 1]), None);
}

#[test]
fn prefix_duplicates_and_overlong_ipv6_prefixes_are_refused() {
    let p = TempPath::new("prefix-dup");
    let mut w = Writer::create(&p.0, geometry(8, 1)).unwrap();
    let r = Reader::attach(&p.0).unwrap();
    let a = routed(
        1,
        1,
        [100, 64, 0, 1],
        ("2001:db8:1::", 48),
        &[([10, 1, 0, 0], 16)],
        &[],
    );
    let sa = w.insert(&a).unwrap();
    // Another session claiming A's route, or A's prefix as its further prefix.
    for dup in [
        routed(
            1,
            2,
            [100, 64, 0, 2],
            ("2001:db8:2::", 64),
            &[([10, 1, 0, 0], 16)],
            &[],
        ),
        routed(
            1,
            2,
            [100, 64, 0, 2],
            ("2001:db8:2::", 64),
            &[],
            &[("2001:db8:1::", 48)],
        ),
    ] {
        let e = w.insert(&dup).unwrap_err();
        assert!(
            matches!(e, ShmError::DuplicateKey { slot, .. } if slot == sa.0),
            "{e}"
        );
    }
    let mut long = routed(1, 3, [100, 64, 0, 3], ("2001:db8:3::", 64), &[], &[]);
    long.subscriber_v6_len = 80;
    assert!(matches!(
        w.insert(&long).unwrap_err(),
        ShmError::InvalidKey { .. }
    ));
    // Nothing of the refused sessions was left behind.
    assert_eq!(w.len(), 1);
    assert_eq!(r.lookup_v6(v6("2001:db8:2::1")), None);
    assert_eq!(r.lookup_route_v4([10, 1, 2, 3]).map(|x| x.0), Some(sa));
    // A session may keep its own prefixes across an update.
    w.update(sa, &a).unwrap();
    assert_eq!(r.lookup_route_v4([10, 1, 2, 3]).map(|x| x.0), Some(sa));
}

#[test]
fn writer_restart_rebuilds_prefix_indexes() {
    let p = TempPath::new("prefix-restart");
    let mut w = Writer::create(&p.0, geometry(8, 1)).unwrap();
    let a = routed(
        1,
        1,
        [100, 64, 0, 1],
        ("2001:db8:1::", 56),
        &[([10, 1, 0, 0], 16)],
        &[],
    );
    let b = routed(
        1,
        2,
        [100, 64, 0, 2],
        ("2001:db8:2::", 64),
        &[],
        &[("2001:db8:f::", 48)],
    );
    let sa = w.insert(&a).unwrap();
    let sb = w.insert(&b).unwrap();
    let epochs = (w.get(sa).unwrap().epoch, w.get(sb).unwrap().epoch);
    drop(w);
    let r = Reader::attach(&p.0).unwrap();
    let before = lengths(&r);
    let mut w = Writer::attach_existing(&p.0).unwrap();
    assert_eq!(lengths(&r), before);
    assert_eq!(r.lookup_route_v4([10, 1, 9, 9]).map(|x| x.0), Some(sa));
    assert_eq!(r.lookup_v6(v6("2001:db8:f:1::1")).map(|x| x.0), Some(sb));
    assert_eq!(r.lookup_v6(v6("2001:db8:1:ff::1")).map(|x| x.0), Some(sa));
    // The restarted writer still refuses duplicates, and a new session gets a new epoch.
    let dup = routed(1, 3, [100, 64, 0, 3], ("2001:db8:1::", 56), &[], &[]);
    assert!(matches!(w.insert(&dup), Err(ShmError::DuplicateKey { .. })));
    let c = routed(1, 4, [100, 64, 0, 4], ("2001:db8:4::", 64), &[], &[]);
    let sc = w.insert(&c).unwrap();
    let ec = w.get(sc).unwrap().epoch;
    assert!(ec != epochs.0 && ec != epochs.1);
    w.remove(sb).unwrap();
    assert_eq!(r.lookup_v6(v6("2001:db8:f:1::1")), None);
}

/// Readers looking up routes and prefixes while the writer inserts, updates and removes
/// routed sessions only ever get a session that holds the prefix they asked for.
#[test]
fn concurrent_prefix_readers_never_see_a_foreign_session() {
    const KEYS: u32 = 256;
    let p = TempPath::new("prefix-stress");
    let mut w = Writer::create(&p.0, geometry(KEYS / 2 + 8, 2)).unwrap();
    let r = Arc::new(Reader::attach(&p.0).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    // Session i: route 10.(i).0.0/16 (or /24 when i is odd), prefix 2001:db8:(i)::/48.
    let rec = |i: u32, stamp: u32| {
        let (t, s, a) = keys(i);
        let len = if i % 2 == 0 { 16 } else { 24 };
        let own = format!("2001:db8:{i:x}::");
        let mut r = routed(
            t,
            s,
            a.to_be_bytes(),
            (&own, 48),
            &[([10, i as u8, 0, 0], len)],
            &[],
        );
        r.mtu = 1000 + (stamp % 500) as u16;
        r
    };
    let readers: Vec<_> = (0..2)
        .map(|n| {
            let r = Arc::clone(&r);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let (mut hits, mut lookups) = (0u64, 0u64);
                let mut i = n * 5;
                let mut out = [0u8; 96];
                while !stop.load(Ordering::Relaxed) {
                    i = (i + 7) % KEYS;
                    lookups += 3;
                    let addr = [10, i as u8, 0, 1];
                    if let Some((_, rec)) = r.lookup_route_v4(addr) {
                        hits += 1;
                        assert!(rec.routes_v4_contain(addr), "{rec:?}");
                    }
                    if let Some(d) = r.lookup_down_v4(addr, &mut out) {
                        hits += 1;
                        assert!((1000..1500).contains(&d.mtu), "{d:?}");
                        assert_eq!(out[96 - 4..], [0xff, 0x03, 0x00, 0x21]);
                    }
                    let host = v6(&format!("2001:db8:{i:x}::1"));
                    if let Some((_, rec)) = r.lookup_v6(host) {
                        hits += 1;
                        assert_eq!(rec.subscriber_v6_prefix, v6(&format!("2001:db8:{i:x}::")));
                    }
                }
                (hits, lookups)
            })
        })
        .collect();
    let mut present: Vec<Option<SlotId>> = vec![None; KEYS as usize];
    let mut x: u64 = 0x9876_5432;
    let deadline = Instant::now() + Duration::from_millis(1000);
    let mut ops = 0u64;
    while Instant::now() < deadline {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let i = (x % u64::from(KEYS)) as u32;
        let stamp = (x >> 32) as u32;
        match present[i as usize] {
            None => {
                if w.len() < (KEYS / 2) as usize {
                    present[i as usize] = Some(w.insert(&rec(i, stamp)).unwrap());
                }
            }
            Some(slot) if stamp % 3 == 0 => {
                w.remove(slot).unwrap();
                present[i as usize] = None;
            }
            Some(slot) => w.update(slot, &rec(i, stamp)).unwrap(),
        }
        ops += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let mut total_hits = 0;
    for h in readers {
        let (hits, lookups) = h.join().unwrap();
        assert!(lookups > 1000, "reader starved: {lookups} lookups");
        total_hits += hits;
    }
    assert!(ops > 5_000, "writer starved: {ops} operations");
    assert!(total_hits > 100, "readers never hit: {total_hits}");
}

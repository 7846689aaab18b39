//! Cost of one session lookup in the shared-memory segment (ARCHITECTURE.md §3-§4): the
//! upstream index by (tunnel id, session id) and the downstream index by IPv4 address,
//! each copying the record out under its sequence lock, with 1,000 and 1,000,000 sessions.
//! Keys are visited in a scrambled order so the large table pays its cache misses.

#![allow(clippy::unwrap_used, clippy::panic)]

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use xlns_dataplane::session::{SessionRecord, flags};
use xlns_dataplane::shm::{Geometry, Reader, Writer};

fn keys(i: u32) -> (u16, u16, [u8; 4]) {
    (
        (i / 60_000 + 1) as u16,
        (i % 60_000 + 1) as u16,
        (0x0a00_0000 + i + 1).to_be_bytes(),
    )
}

/// The next position in the visiting order (no division in the measured loop).
#[inline(always)]
fn next(at: usize, len: usize) -> usize {
    if at + 1 == len { 0 } else { at + 1 }
}

fn lookups(c: &mut Criterion) {
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        std::path::PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let mut group = c.benchmark_group("shm_lookup");
    for n in [1_000u32, 1_000_000] {
        let path = dir.join(format!("xlns-bench.{}.{n}", std::process::id()));
        let mut w = Writer::create(
            &path,
            Geometry {
                max_sessions: n,
                max_workers: 1,
            },
        )
        .unwrap();
        for i in 0..n {
            let (t, s, a) = keys(i);
            w.insert(&SessionRecord {
                local_tunnel: t,
                local_session: s,
                flags: flags::HAS_IPV4,
                subscriber_v4: a,
                ..SessionRecord::EMPTY
            })
            .unwrap();
        }
        let r = Reader::attach(&path).unwrap();
        // A scrambled visiting order (multiplication by an odd constant modulo 2^k, then
        // reduced to n) so consecutive lookups hit unrelated cache lines.
        let order: Vec<u32> = (0..n)
            .map(|i| (i.wrapping_mul(0x9E37_79B1) >> 7) % n)
            .collect();
        let mut at = 0usize;
        group.bench_function(format!("upstream/{n}"), |b| {
            b.iter(|| {
                at = next(at, order.len());
                let (t, s, _) = keys(order[at]);
                let hit = r.lookup_upstream(black_box(t), black_box(s));
                black_box(hit.map(|(slot, rec)| (slot, rec.mtu)))
            })
        });
        group.bench_function(format!("v4/{n}"), |b| {
            b.iter(|| {
                at = next(at, order.len());
                let (_, _, a) = keys(order[at]);
                let hit = r.lookup_v4(black_box(a));
                black_box(hit.map(|(slot, rec)| (slot, rec.mtu)))
            })
        });
        group.bench_function(format!("upstream_miss/{n}"), |b| {
            b.iter(|| {
                at = next(at, order.len());
                black_box(r.lookup_upstream(black_box(0xffff), black_box(at as u16 | 1)))
            })
        });
        group.bench_function(format!("v4_miss/{n}"), |b| {
            b.iter(|| {
                at = next(at, order.len());
                black_box(r.lookup_v4(black_box([192, 0, 2, at as u8])))
            })
        });
        drop(r);
        drop(w);
        let _ = std::fs::remove_file(&path);
    }
    group.finish();
}

criterion_group!(benches, lookups);
criterion_main!(benches);

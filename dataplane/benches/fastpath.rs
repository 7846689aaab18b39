//! Nanoseconds per packet through `process_upstream` / `process_downstream` with 1,000 and
//! 1,000,000 sessions in the (HashMap-based, `MemSessions`) table, 64-byte inner IPv4
//! packets, sessions visited round-robin over 4,096 pre-built frames (so the 1M case
//! touches a different part of the table each packet).
//!
//! Each iteration copies the frame into the UMEM-like buffer first (the processing
//! rewrites it in place); `copy_only` measures that copy alone, to subtract.

mod common;

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use xlns_dataplane::fastpath::{
    SlotStats, Verdict, WorkerState, process_downstream, process_upstream,
};

const FRAMES: u32 = 4096;

fn fastpath(c: &mut Criterion) {
    let ctx = common::ctx();
    let mut group = c.benchmark_group("fastpath");
    for sessions_count in [1_000u32, 1_000_000] {
        let sessions = common::table(sessions_count);
        let mut state = WorkerState::new(SlotStats::new(sessions_count as usize));
        let stride = (sessions_count / FRAMES).max(1);
        let pick = |k: u32| (k.wrapping_mul(stride).wrapping_add(k / 7)) % sessions_count;
        let up: Vec<Vec<u8>> = (0..FRAMES)
            .map(|k| common::upstream_frame(pick(k)))
            .collect();
        let down: Vec<Vec<u8>> = (0..FRAMES)
            .map(|k| common::downstream_frame(pick(k)))
            .collect();
        let mut buf = vec![0u8; 2048];

        group.bench_function(format!("copy_only/{sessions_count}"), |b| {
            let mut k = 0usize;
            b.iter(|| {
                let frame = &up[k % up.len()];
                k += 1;
                buf[common::HEADROOM..common::HEADROOM + frame.len()].copy_from_slice(frame);
                black_box(&mut buf);
            })
        });
        group.bench_function(format!("upstream/{sessions_count}"), |b| {
            let mut k = 0usize;
            b.iter(|| {
                let frame = &up[k % up.len()];
                k += 1;
                buf[common::HEADROOM..common::HEADROOM + frame.len()].copy_from_slice(frame);
                let verdict = process_upstream(
                    &mut buf,
                    common::HEADROOM,
                    frame.len(),
                    &ctx,
                    &sessions,
                    &mut state,
                );
                debug_assert!(matches!(verdict, Verdict::Forward { .. }));
                black_box(verdict)
            })
        });
        group.bench_function(format!("downstream/{sessions_count}"), |b| {
            let mut k = 0usize;
            b.iter(|| {
                let frame = &down[k % down.len()];
                k += 1;
                buf[common::HEADROOM..common::HEADROOM + frame.len()].copy_from_slice(frame);
                let verdict = process_downstream(
                    &mut buf,
                    common::HEADROOM,
                    frame.len(),
                    0,
                    &ctx,
                    &sessions,
                    &mut state,
                );
                debug_assert!(matches!(verdict, Verdict::Forward { .. }));
                black_box(verdict)
            })
        });
        assert_eq!(state.drops.total(), 0, "every benched packet is forwarded");
    }
    group.finish();
}

criterion_group!(benches, fastpath);
criterion_main!(benches);

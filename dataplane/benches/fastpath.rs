//! Nanoseconds per packet through `process_upstream` / `process_downstream` with 1,000 and
//! 1,000,000 sessions, 64-byte inner IPv4 packets, over both session tables:
//!
//! * `fastpath/...`: the in-memory `MemSessions` (HashMap indexes) with `SlotStats`;
//! * `fastpath_shm/...`: the shared-memory segment (`shm::Reader`, open-addressing indexes,
//!   sequence-locked slots) with `ShmStats` counting into the segment: what production runs.
//!
//! One iteration processes a batch of [`BATCH`] frames, each in its own 2 KiB buffer (as
//! UMEM frames are), visiting sessions round-robin over 4,096 pre-built frames (so the 1M
//! case touches a different part of the table each packet). Refilling the buffers is the
//! untimed setup: copying a frame right before processing it would charge the processing
//! with store-forwarding stalls a NIC's DMA never causes. Time per packet = reported time /
//! [`BATCH`] (criterion's throughput line gives packets per second).

mod common;

use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, Criterion, Throughput, black_box, criterion_group, criterion_main,
};
use xlns_dataplane::fastpath::{
    PREFETCH_AHEAD, Prefetch, SessionStats, Sessions, SlotStats, Verdict, WorkerCtx, WorkerState,
    prefetch_downstream, prefetch_upstream, process_downstream, process_upstream,
};
use xlns_dataplane::worker::glue::ShmStats;

const FRAMES: usize = 4096;
const BATCH: usize = 256;
const FRAME_SIZE: usize = 2048;

fn refill(buffers: &mut [Vec<u8>], frames: &[Vec<u8>], next: &mut usize) {
    for buffer in buffers.iter_mut() {
        let frame = &frames[*next % frames.len()];
        *next += 1;
        buffer[common::HEADROOM..common::HEADROOM + frame.len()].copy_from_slice(frame);
    }
}

#[allow(clippy::too_many_arguments)]
fn run<T: Sessions, S: SessionStats>(
    buffers: &mut [Vec<u8>],
    frame_len: usize,
    upstream: bool,
    prefetch: bool,
    ctx: &WorkerCtx,
    sessions: &T,
    state: &mut WorkerState<S>,
) {
    for i in 0..buffers.len() {
        if prefetch {
            // As the worker does: the bucket stage twice as far ahead as the slot stage.
            for (ahead, what) in [
                (2 * PREFETCH_AHEAD, Prefetch::Bucket),
                (PREFETCH_AHEAD, Prefetch::Slot),
            ] {
                if let Some(b) = buffers.get(i + ahead) {
                    if upstream {
                        prefetch_upstream(b, common::HEADROOM, frame_len, sessions, state, what);
                    } else {
                        prefetch_downstream(b, common::HEADROOM, frame_len, sessions, state, what);
                    }
                }
            }
        }
        let buffer = &mut buffers[i];
        let verdict = if upstream {
            process_upstream(buffer, common::HEADROOM, frame_len, ctx, sessions, state)
        } else {
            process_downstream(buffer, common::HEADROOM, frame_len, 0, ctx, sessions, state)
        };
        debug_assert!(matches!(verdict, Verdict::Forward { .. }));
        black_box(verdict);
    }
}

/// The frames of one run: sessions picked round-robin with a stride, so the 1M table is
/// visited all over.
fn frames(sessions_count: u32) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let stride = (sessions_count / FRAMES as u32).max(1);
    let pick = |k: u32| (k.wrapping_mul(stride).wrapping_add(k / 7)) % sessions_count;
    let up = (0..FRAMES as u32)
        .map(|k| common::upstream_frame(pick(k)))
        .collect();
    let down = (0..FRAMES as u32)
        .map(|k| common::downstream_frame(pick(k)))
        .collect();
    (up, down)
}

fn bench_table<T: Sessions, S: SessionStats>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    sessions_count: u32,
    sessions: &T,
    state: &mut WorkerState<S>,
) {
    let ctx = common::ctx();
    let (up, down) = frames(sessions_count);
    let mut buffers = vec![vec![0u8; FRAME_SIZE]; BATCH];
    let runs = [
        ("upstream", &up, true, false),
        ("downstream", &down, false, false),
        ("upstream-prefetch", &up, true, true),
        ("downstream-prefetch", &down, false, true),
    ];
    for (name, frames, upstream, prefetch) in runs {
        let frame_len = frames[0].len();
        let mut next = 0;
        group.bench_function(format!("{name}/{sessions_count}/batch{BATCH}"), |b| {
            b.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    refill(&mut buffers, frames, &mut next);
                    let started = Instant::now();
                    run(
                        &mut buffers,
                        frame_len,
                        upstream,
                        prefetch,
                        &ctx,
                        sessions,
                        state,
                    );
                    total += started.elapsed();
                }
                total
            })
        });
    }
    assert_eq!(state.drops.total(), 0, "every benched packet is forwarded");
}

fn fastpath(c: &mut Criterion) {
    let mut group = c.benchmark_group("fastpath");
    group.throughput(Throughput::Elements(BATCH as u64));
    for sessions_count in [1_000u32, 1_000_000] {
        let sessions = common::table(sessions_count);
        let mut state = WorkerState::new(SlotStats::new(sessions_count as usize));
        bench_table(&mut group, sessions_count, &sessions, &mut state);
    }
    group.finish();
}

fn fastpath_shm(c: &mut Criterion) {
    let mut group = c.benchmark_group("fastpath_shm");
    group.throughput(Throughput::Elements(BATCH as u64));
    for sessions_count in [1_000u32, 1_000_000] {
        let (writer, reader, path) = common::shm_table(sessions_count);
        {
            #[allow(clippy::unwrap_used)]
            let counters = reader.counters(0).unwrap();
            let mut state = WorkerState::new(ShmStats::new(counters, sessions_count));
            bench_table(&mut group, sessions_count, &reader, &mut state);
        }
        drop(reader);
        drop(writer);
        let _ = std::fs::remove_file(&path);
    }
    group.finish();
}

criterion_group!(benches, fastpath, fastpath_shm);
criterion_main!(benches);

//! A fixed amount of fast-path work for instruction counting under callgrind (repeatable
//! on a loaded machine, unlike wall time):
//!
//! ```text
//! cargo bench -p xlns-dataplane --bench fastpath_count --no-run
//! valgrind --tool=callgrind --toggle-collect='*measured*' <binary> mem|shm up|down SESSIONS BATCHES [prefetch]
//! ```
//!
//! With `prefetch`, each batch also runs the worker's prefetch stages
//! (`prefetch_upstream` / `prefetch_downstream`, as `fastpath`'s `*-prefetch` benches do):
//! their instructions are counted too.
//!
//! Only `measured` (one batch of 256 frames through `process_*`) is counted, not the
//! table build or the buffer refills: instructions per packet = `Ir` / (BATCHES x 256).
//! Frames are the same as in the `fastpath` bench. Run without valgrind it prints the
//! packet count and checks every packet was forwarded. Before/after figures are kept in
//! `dataplane/README.md`.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use xlns_dataplane::fastpath::{
    PREFETCH_AHEAD, Prefetch, SessionStats, Sessions, SlotStats, Verdict, WorkerCtx, WorkerState,
    prefetch_downstream, prefetch_upstream, process_downstream, process_upstream,
};
use xlns_dataplane::worker::glue::ShmStats;

const FRAMES: usize = 4096;
const BATCH: usize = 256;
const FRAME_SIZE: usize = 2048;

#[inline(never)]
fn measured<T: Sessions, S: SessionStats>(
    buffers: &mut [Vec<u8>],
    frame_len: usize,
    upstream: bool,
    ctx: &WorkerCtx,
    sessions: &T,
    state: &mut WorkerState<S>,
) -> usize {
    let mut forwarded = 0;
    for buffer in buffers.iter_mut() {
        forwarded += process(buffer, frame_len, upstream, ctx, sessions, state);
    }
    forwarded
}

/// [`measured`] with the worker's prefetch stages (also matched by `*measured*`).
#[inline(never)]
fn measured_prefetch<T: Sessions, S: SessionStats>(
    buffers: &mut [Vec<u8>],
    frame_len: usize,
    upstream: bool,
    ctx: &WorkerCtx,
    sessions: &T,
    state: &mut WorkerState<S>,
) -> usize {
    let mut forwarded = 0;
    for i in 0..buffers.len() {
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
        forwarded += process(&mut buffers[i], frame_len, upstream, ctx, sessions, state);
    }
    forwarded
}

/// One frame through `process_*`: 1 when forwarded.
#[inline(always)]
fn process<T: Sessions, S: SessionStats>(
    buffer: &mut [u8],
    frame_len: usize,
    upstream: bool,
    ctx: &WorkerCtx,
    sessions: &T,
    state: &mut WorkerState<S>,
) -> usize {
    let verdict = if upstream {
        process_upstream(buffer, common::HEADROOM, frame_len, ctx, sessions, state)
    } else {
        process_downstream(buffer, common::HEADROOM, frame_len, 0, ctx, sessions, state)
    };
    usize::from(matches!(verdict, Verdict::Forward { .. }))
}

fn drive<T: Sessions, S: SessionStats>(
    n: u32,
    upstream: bool,
    prefetch: bool,
    batches: usize,
    sessions: &T,
    state: &mut WorkerState<S>,
) {
    let ctx = common::ctx();
    let stride = (n / FRAMES as u32).max(1);
    let pick = |k: u32| (k.wrapping_mul(stride).wrapping_add(k / 7)) % n;
    let frames: Vec<Vec<u8>> = (0..FRAMES as u32)
        .map(|k| {
            if upstream {
                common::upstream_frame(pick(k))
            } else {
                common::downstream_frame(pick(k))
            }
        })
        .collect();
    let frame_len = frames[0].len();
    let mut buffers = vec![vec![0u8; FRAME_SIZE]; BATCH];
    let mut next = 0;
    let mut forwarded = 0;
    for _ in 0..batches {
        for buffer in buffers.iter_mut() {
            let frame = &frames[next % FRAMES];
            next += 1;
            buffer[common::HEADROOM..common::HEADROOM + frame_len].copy_from_slice(frame);
        }
        forwarded += if prefetch {
            measured_prefetch(&mut buffers, frame_len, upstream, &ctx, sessions, state)
        } else {
            measured(&mut buffers, frame_len, upstream, &ctx, sessions, state)
        };
    }
    assert_eq!(forwarded, batches * BATCH, "every packet is forwarded");
    println!("{} packets forwarded", forwarded);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !(4..=5).contains(&args.len()) || args.iter().any(|a| a == "--bench") {
        eprintln!("usage: fastpath_count mem|shm up|down SESSIONS BATCHES [prefetch]");
        return;
    }
    let prefetch = args.get(4).is_some_and(|a| a == "prefetch");
    let upstream = args[1] == "up";
    let n: u32 = args[2].parse().unwrap();
    let batches: usize = args[3].parse().unwrap();
    match args[0].as_str() {
        "mem" => {
            let sessions = common::table(n);
            let mut state = WorkerState::new(SlotStats::new(n as usize));
            drive(n, upstream, prefetch, batches, &sessions, &mut state);
        }
        "shm" => {
            let (writer, reader, path) = common::shm_table(n);
            {
                let mut state = WorkerState::new(ShmStats::new(reader.counters(0).unwrap(), n));
                drive(n, upstream, prefetch, batches, &reader, &mut state);
            }
            drop(reader);
            drop(writer);
            let _ = std::fs::remove_file(&path);
        }
        other => panic!("unknown table {other}"),
    }
}

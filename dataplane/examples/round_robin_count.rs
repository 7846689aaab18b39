//! The fast path over a shared-memory table with traffic for every session round-robin,
//! as xlns-bench's generator sends it (issue #6, session-count independence), for
//! callgrind's cache simulation: where do the extra misses per packet of 100,000
//! sessions against 1,000 come from?
//!
//! ```text
//! cargo build --release -p xlns-dataplane --example round_robin_count
//! valgrind --tool=callgrind --cache-sim=yes --toggle-collect='*measured*' \
//!     target/release/examples/round_robin_count up|down SESSIONS GEOMETRY PACKETS
//! ```
//!
//! `SESSIONS` sessions in a segment sized for `GEOMETRY` (the same for every count, as in
//! `forwarding-bench --sessions A,B`), `PACKETS` packets (a multiple of 256), one per
//! session in turn. Only `measured` (one batch through `process_*`) is counted; the
//! frames are copied into the batch's buffers outside it, from a per-session array, as
//! the kernel copies them into the UMEM. Run without valgrind it checks every packet
//! was forwarded.

#![allow(clippy::unwrap_used, clippy::panic)]

#[path = "../benches/common/mod.rs"]
mod common;

use xlns_dataplane::fastpath::{
    SessionStats, Sessions, Verdict, WorkerCtx, WorkerState, process_downstream, process_upstream,
};
use xlns_dataplane::shm::{Geometry, Reader, Writer};
use xlns_dataplane::worker::glue::ShmStats;

const BATCH: usize = 256;
const FRAME_SIZE: usize = 2048;

#[inline(never)]
fn measured<T: Sessions, S: SessionStats>(
    buffers: &mut [Vec<u8>],
    lens: &[usize],
    upstream: bool,
    ctx: &WorkerCtx,
    sessions: &T,
    state: &mut WorkerState<S>,
) -> usize {
    let mut forwarded = 0;
    for (buffer, len) in buffers.iter_mut().zip(lens) {
        let verdict = if upstream {
            process_upstream(buffer, common::HEADROOM, *len, ctx, sessions, state)
        } else {
            process_downstream(buffer, common::HEADROOM, *len, 0, ctx, sessions, state)
        };
        forwarded += usize::from(matches!(verdict, Verdict::Forward { .. }));
    }
    forwarded
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 4 {
        eprintln!("usage: round_robin_count up|down SESSIONS GEOMETRY PACKETS");
        return;
    }
    let upstream = args[0] == "up";
    let n: u32 = args[1].parse().unwrap();
    let geometry: u32 = args[2].parse::<u32>().unwrap().max(n);
    let packets: usize = args[3].parse().unwrap();
    let path = std::path::PathBuf::from(format!(
        "/dev/shm/xlns-round-robin.{}.{n}",
        std::process::id()
    ));
    let mut writer = Writer::create(
        &path,
        Geometry {
            max_sessions: geometry,
            max_workers: 1,
        },
    )
    .unwrap();
    for i in 0..n {
        writer.insert(&common::record(i)).unwrap();
    }
    let reader = Reader::attach(&path).unwrap();
    let frames: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            if upstream {
                common::upstream_frame(i)
            } else {
                common::downstream_frame(i)
            }
        })
        .collect();
    let ctx = common::ctx();
    let mut forwarded = 0;
    {
        let mut state = WorkerState::new(ShmStats::new(reader.counters(0).unwrap(), geometry));
        let mut buffers = vec![vec![0u8; FRAME_SIZE]; BATCH];
        let mut lens = [0usize; BATCH];
        let mut next = 0usize;
        for _ in 0..packets / BATCH {
            for (buffer, len) in buffers.iter_mut().zip(lens.iter_mut()) {
                let frame = &frames[next % frames.len()];
                next += 1;
                buffer[common::HEADROOM..common::HEADROOM + frame.len()].copy_from_slice(frame);
                *len = frame.len();
            }
            forwarded += measured(&mut buffers, &lens, upstream, &ctx, &reader, &mut state);
        }
    }
    assert_eq!(
        forwarded,
        packets / BATCH * BATCH,
        "every packet is forwarded"
    );
    println!("{forwarded} packets forwarded");
    drop(reader);
    drop(writer);
    let _ = std::fs::remove_file(&path);
}

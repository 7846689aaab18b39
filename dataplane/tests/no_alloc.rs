//! Zero heap allocations per packet: a counting global allocator around 10,000 forwarded
//! packets in each direction (plus echo replies, ICMP too-big answers and drops), with
//! the session table, frames and buffers built before counting starts.

#![allow(clippy::unwrap_used, clippy::panic)]

#[path = "../benches/common/mod.rs"]
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use xlns_dataplane::fastpath::{
    DropReason, SlotStats, Verdict, WorkerState, process_downstream, process_upstream,
};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn note() {
    if COUNTING.with(Cell::get) {
        // Relaxed: a plain event counter read after the measured section on this thread.
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn no_allocation_per_packet() {
    const SESSIONS: u32 = 1_000;
    const PACKETS: u32 = 10_000;
    let sessions = common::table(SESSIONS);
    let ctx = common::ctx();
    let mut state = WorkerState::new(SlotStats::new(SESSIONS as usize));
    let up: Vec<Vec<u8>> = (0..SESSIONS).map(common::upstream_frame).collect();
    let down: Vec<Vec<u8>> = (0..SESSIONS).map(common::downstream_frame).collect();
    // An oversize DF packet (ICMP too-big answer) and an unknown destination (a drop).
    let mut big = common::downstream_frame(0);
    let mut inner = common::inner_v4(common::SERVER_V4, [100, 64, 0, 1]);
    inner.resize(1500, 0);
    inner[2..4].copy_from_slice(&1500u16.to_be_bytes());
    let checksum = {
        let mut ip = xlns_dataplane::wire::Ipv4Packet::new_unchecked(&mut inner[..]);
        ip.fill_checksum();
        ip.checksum()
    };
    assert_ne!(checksum, 0);
    big.truncate(14);
    big.extend_from_slice(&inner);
    let unknown = {
        let mut frame = common::downstream_frame(0);
        frame[14 + 19] = 0;
        frame[14 + 18] = 200;
        xlns_dataplane::wire::Ipv4Packet::new_unchecked(&mut frame[14..]).fill_checksum();
        frame
    };
    let mut buf = vec![0u8; 4096];
    let mut verdicts = [0usize; 4];

    COUNTING.with(|c| c.set(true));
    for n in 0..PACKETS {
        let frame = &up[(n % SESSIONS) as usize];
        buf[common::HEADROOM..common::HEADROOM + frame.len()].copy_from_slice(frame);
        let verdict = process_upstream(
            &mut buf,
            common::HEADROOM,
            frame.len(),
            &ctx,
            &sessions,
            &mut state,
        );
        verdicts[0] += usize::from(matches!(verdict, Verdict::Forward { .. }));

        let frame = &down[(n % SESSIONS) as usize];
        buf[common::HEADROOM..common::HEADROOM + frame.len()].copy_from_slice(frame);
        let verdict = process_downstream(
            &mut buf,
            common::HEADROOM,
            frame.len(),
            u64::from(n) * 1_000_000,
            &ctx,
            &sessions,
            &mut state,
        );
        verdicts[1] += usize::from(matches!(verdict, Verdict::Forward { .. }));

        if n % 10 == 0 {
            for (frame, slot) in [(&big, 2usize), (&unknown, 3)] {
                buf[common::HEADROOM..common::HEADROOM + frame.len()].copy_from_slice(frame);
                let verdict = process_downstream(
                    &mut buf,
                    common::HEADROOM,
                    frame.len(),
                    u64::from(n) * 1_000_000,
                    &ctx,
                    &sessions,
                    &mut state,
                );
                let expected = if slot == 2 {
                    matches!(verdict, Verdict::Reply { .. })
                } else {
                    verdict == Verdict::Drop(DropReason::NoSessionForDestination)
                };
                verdicts[slot] += usize::from(expected);
            }
        }
    }
    COUNTING.with(|c| c.set(false));

    assert_eq!(
        ALLOCATIONS.load(Ordering::Relaxed),
        0,
        "heap allocations while forwarding"
    );
    assert_eq!(verdicts, [PACKETS as usize, PACKETS as usize, 1_000, 1_000]);
    assert_eq!(state.drops.get(DropReason::NoSessionForDestination), 1_000);
    // The counting allocator does count: an allocation in the counted section shows up.
    COUNTING.with(|c| c.set(true));
    let boxed = std::hint::black_box(Box::new(1u64));
    COUNTING.with(|c| c.set(false));
    drop(boxed);
    assert_eq!(ALLOCATIONS.load(Ordering::Relaxed), 1);
}

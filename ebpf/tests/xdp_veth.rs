//! The XDP program on a real veth pair in a fresh network namespace: a bpf_link attach
//! in native and generic mode, detach on drop, and live frames counted (and, with an
//! AF_XDP socket on the queue, redirected).
//!
//! Needs root; see `support::bpf_tests_enabled` (XLNS_SKIP_BPF=1 skips, loudly). The
//! namespace (and the veths in it) is deleted by a guard, also when a test fails.
#![allow(clippy::unwrap_used, clippy::panic)]

mod support;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use support::frames::*;
use support::{Netns, TestXsk, bpf_tests_enabled, veth_pair};
use xlns_ebpf::{AttachMode, Counter, Counters, Error, Role, XdpConfig, XdpProgram};

/// The XDP mode `ip -d link show IF` reports after the MTU ("xdp" for native,
/// "xdpgeneric"), checking that the attached program is ours; `None` when nothing is
/// attached.
fn xdp_attachment(ns: &Netns, ifname: &str) -> Option<String> {
    let out = ns.ip(&["-d", "link", "show", ifname]);
    let first = out.lines().next().unwrap_or("");
    let mode = first
        .split_whitespace()
        .find(|w| w.starts_with("xdp"))
        .map(str::to_string);
    if mode.is_some() {
        assert!(out.contains("name xlns_xdp"), "{out}");
    } else {
        assert!(!out.contains("prog/xdp"), "{out}");
    }
    mode
}

#[test]
fn attach_native_and_generic_on_veth_and_detach_on_drop() {
    if !bpf_tests_enabled("attach_native_and_generic_on_veth_and_detach_on_drop") {
        return;
    }
    let ns = Netns::new();
    veth_pair(&ns, "xl0", "xl1");
    let (if0, if1) = (ns.ifindex("xl0"), ns.ifindex("xl1"));
    let prog = XdpProgram::load(XdpConfig::default()).unwrap();

    let link = ns.run_in(|| prog.attach(if0, AttachMode::Native)).unwrap();
    assert_eq!((link.ifindex(), link.mode()), (if0, AttachMode::Native));
    assert_eq!(xdp_attachment(&ns, "xl0").as_deref(), Some("xdp"));

    // One program per interface and mode: a second attach is refused.
    let again = ns.run_in(|| prog.attach(if0, AttachMode::Native));
    match again {
        Err(Error::Attach {
            ifindex,
            mode: AttachMode::Native,
            source,
        }) => {
            assert_eq!(ifindex, if0);
            assert_eq!(source.raw_os_error(), Some(libc::EBUSY), "{source}");
        }
        other => panic!("second attach: {other:?}"),
    }

    let generic = ns.run_in(|| prog.attach(if1, AttachMode::Generic)).unwrap();
    assert_eq!(xdp_attachment(&ns, "xl1").as_deref(), Some("xdpgeneric"));

    drop(link);
    assert_eq!(
        xdp_attachment(&ns, "xl0"),
        None,
        "native link detached on drop"
    );
    generic.detach();
    assert_eq!(xdp_attachment(&ns, "xl1"), None, "generic link detached");

    // The program outlives its links: attach again.
    let link = ns.run_in(|| prog.attach(if0, AttachMode::Native)).unwrap();
    assert_eq!(xdp_attachment(&ns, "xl0").as_deref(), Some("xdp"));
    drop(link);

    // An interface that does not exist.
    assert!(matches!(
        ns.run_in(|| prog.attach(999_999, AttachMode::Generic)),
        Err(Error::Attach {
            ifindex: 999_999,
            ..
        })
    ));
}

/// Send `frame` out of `ifindex` with an AF_PACKET socket (in the calling thread's
/// namespace).
fn send_raw(ifindex: u32, frame: &[u8]) {
    // SAFETY: plain socket(2); the fd is owned right after.
    let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    assert!(
        raw >= 0,
        "socket(AF_PACKET): {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: a fresh fd nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: all-zero is a valid sockaddr_ll; the fields that matter are set below.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_ifindex = i32::try_from(ifindex).unwrap();
    addr.sll_halen = 6;
    addr.sll_addr[..6].copy_from_slice(&LNS_MAC.0);
    // SAFETY: buffer and address are valid for the sizes given.
    let sent = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            frame.as_ptr().cast(),
            frame.len(),
            0,
            (&raw const addr).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    assert_eq!(
        sent,
        frame.len() as isize,
        "sendto: {}",
        std::io::Error::last_os_error()
    );
}

/// Wait until `counter` has grown by `n` over `before` (veth delivers asynchronously).
fn wait_for(prog: &XdpProgram, before: &Counters, counter: Counter, n: u64) -> Counters {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let delta = prog.counters().unwrap().delta(before);
        if delta.get(counter) >= n || Instant::now() > deadline {
            return delta;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn live_frames_on_a_native_veth_are_counted_and_redirected() {
    if !bpf_tests_enabled("live_frames_on_a_native_veth_are_counted_and_redirected") {
        return;
    }
    let ns = Netns::new();
    veth_pair(&ns, "xl0", "xl1");
    let (if0, if1) = (ns.ifindex("xl0"), ns.ifindex("xl1"));
    let prog = XdpProgram::load(XdpConfig {
        role: Role::Access,
        ..XdpConfig::default()
    })
    .unwrap();
    let _link = ns.run_in(|| prog.attach(if0, AttachMode::Native)).unwrap();

    let data = l2tp_v4(&l2tp(L | S, 0, &ppp(true, false, PPP_IPV4, &inner_ipv4())));
    let control = l2tp_v4(&l2tp_control(1));

    // No socket on the queue: data falls back to the kernel, counted as such.
    let before = prog.counters().unwrap();
    ns.run_in(|| {
        for _ in 0..3 {
            send_raw(if1, &data);
        }
        send_raw(if1, &control);
    });
    wait_for(&prog, &before, Counter::PassNoXskData, 3);
    let delta = wait_for(&prog, &before, Counter::PassControl, 1);
    assert_eq!(delta.get(Counter::PassNoXskData), 3, "{delta:?}");
    assert_eq!(delta.get(Counter::PassControl), 1, "{delta:?}");
    assert_eq!(delta.get(Counter::RedirectData), 0, "{delta:?}");

    // A bound AF_XDP socket on queue 0 of xl0: data is redirected into it.
    let xsk = ns.run_in(|| TestXsk::bind(if0, 0)).unwrap();
    prog.set_xsk(0, xsk.fd()).unwrap();
    let before = prog.counters().unwrap();
    ns.run_in(|| {
        for _ in 0..3 {
            send_raw(if1, &data);
        }
        send_raw(if1, &control);
    });
    let delta = wait_for(&prog, &before, Counter::RedirectData, 3);
    let delta_control = wait_for(&prog, &before, Counter::PassControl, 1);
    assert_eq!(delta.get(Counter::RedirectData), 3, "{delta:?}");
    assert_eq!(
        delta_control.get(Counter::PassControl),
        1,
        "{delta_control:?}"
    );
    assert_eq!(
        delta_control.get(Counter::PassNoXskData),
        0,
        "{delta_control:?}"
    );
}

//! Shared by the BPF tests: the root/BPF gate, network-namespace and veth guards, a
//! minimal bound AF_XDP socket, and frame builders.
#![allow(clippy::unwrap_used, clippy::panic, dead_code)]

pub mod frames;

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Whether BPF tests run. They need root (CAP_BPF, CAP_NET_ADMIN): without it they fail
/// with a message saying so, unless `XLNS_SKIP_BPF=1` asks to skip them (reported on
/// stderr). A BPF test never passes silently without running.
pub fn bpf_tests_enabled(test: &str) -> bool {
    if std::env::var_os("XLNS_SKIP_BPF").is_some_and(|v| v == "1") {
        // Straight to the stderr handle: libtest captures eprintln!, and a skip must show.
        let _ = writeln!(io::stderr(), "{test}: SKIPPED (XLNS_SKIP_BPF=1)");
        return false;
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert!(
        euid == 0,
        "{test} loads XDP programs and needs root (CAP_BPF, CAP_NET_ADMIN); \
         run the tests as root, or set XLNS_SKIP_BPF=1 to skip them"
    );
    true
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A fresh network namespace `xlns-ebpf-test-<pid>-<n>`, deleted on drop (also when the
/// test fails: the guard drops during unwinding).
#[derive(Debug)]
pub struct Netns {
    name: String,
}

static NETNS_SEQ: AtomicU32 = AtomicU32::new(0);

impl Netns {
    pub fn new() -> Netns {
        let name = format!(
            "xlns-ebpf-test-{}-{}",
            std::process::id(),
            NETNS_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n <ns> ARGS`, asserting success; returns stdout.
    pub fn ip(&self, args: &[&str]) -> String {
        run(Command::new("ip").arg("-n").arg(&self.name).args(args))
    }

    /// `ip netns exec <ns> PROGRAM ARGS`, asserting success; returns stdout.
    pub fn exec(&self, program: &str, args: &[&str]) -> String {
        run(Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .args(args))
    }

    /// Run `f` on a thread that has entered this namespace (setns affects only the
    /// calling thread, so the test's own thread stays where it was).
    pub fn run_in<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::scope(|s| {
            s.spawn(|| {
                let file = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
                // SAFETY: a valid namespace fd and flag; affects this thread only.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns {path}: {}", io::Error::last_os_error());
                f()
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
        })
    }

    /// Interface index of `ifname` inside this namespace.
    pub fn ifindex(&self, ifname: &str) -> u32 {
        let name = CString::new(ifname).unwrap();
        // SAFETY: a valid C string.
        let index = self.run_in(|| unsafe { libc::if_nametoindex(name.as_ptr()) });
        assert_ne!(index, 0, "no interface {ifname} in {}", self.name);
        index
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace also deletes the veths in it.
        let status = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!("warning: could not delete netns {}: {status:?}", self.name);
        }
    }
}

/// A veth pair `a` <-> `b` inside `ns`, up, one RX and one TX queue on each end
/// (../shared/afxdp-notes.md: otherwise frames land on a queue without a socket).
pub fn veth_pair(ns: &Netns, a: &str, b: &str) {
    ns.ip(&["link", "add", a, "type", "veth", "peer", "name", b]);
    for end in [a, b] {
        ns.exec("ethtool", &["-L", end, "rx", "1", "tx", "1"]);
        ns.ip(&["link", "set", end, "up"]);
    }
}

/// A bound AF_XDP socket (copy mode) with a small UMEM and rings, enough for the kernel
/// to accept it into an XSKMAP. Nobody services its rings: frames redirected to it are
/// dropped once the (empty) fill ring runs dry, which the kernel counts, not we.
#[derive(Debug)]
pub struct TestXsk {
    fd: OwnedFd,
    umem: *mut libc::c_void,
    umem_len: usize,
}

// SAFETY: the UMEM pointer is only unmapped in Drop; nothing else dereferences it.
unsafe impl Send for TestXsk {}
unsafe impl Sync for TestXsk {}

const XSK_FRAME: u32 = 2048;
const XSK_FRAMES: usize = 16;
const XSK_RING: u32 = 64;

fn check(rc: libc::c_int, what: &str) -> io::Result<()> {
    if rc < 0 {
        let err = io::Error::last_os_error();
        return Err(io::Error::new(err.kind(), format!("{what}: {err}")));
    }
    Ok(())
}

fn setsockopt<T>(fd: BorrowedFd<'_>, name: libc::c_int, value: &T, what: &str) -> io::Result<()> {
    // SAFETY: `value` points to a live T of the size given.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_XDP,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    check(rc, what)
}

impl TestXsk {
    /// Create a socket in the calling thread's namespace and bind it to `ifindex`/`queue`.
    pub fn bind(ifindex: u32, queue: u32) -> io::Result<TestXsk> {
        // SAFETY: plain socket(2).
        let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        check(raw, "socket(AF_XDP)")?;
        // SAFETY: a fresh fd nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let umem_len = XSK_FRAMES * XSK_FRAME as usize;
        // SAFETY: anonymous private mapping, checked below.
        let umem = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                umem_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if umem == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let xsk = TestXsk { fd, umem, umem_len };
        let reg = libc::xdp_umem_reg {
            addr: umem as u64,
            len: umem_len as u64,
            chunk_size: XSK_FRAME,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        };
        let fd = xsk.fd.as_fd();
        setsockopt(fd, libc::XDP_UMEM_REG, &reg, "XDP_UMEM_REG")?;
        setsockopt(
            fd,
            libc::XDP_UMEM_FILL_RING,
            &XSK_RING,
            "XDP_UMEM_FILL_RING",
        )?;
        setsockopt(
            fd,
            libc::XDP_UMEM_COMPLETION_RING,
            &XSK_RING,
            "XDP_UMEM_COMPLETION_RING",
        )?;
        setsockopt(fd, libc::XDP_RX_RING, &XSK_RING, "XDP_RX_RING")?;
        let addr = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: libc::XDP_COPY,
            sxdp_ifindex: ifindex,
            sxdp_queue_id: queue,
            sxdp_shared_umem_fd: 0,
        };
        // SAFETY: `addr` is a sockaddr_xdp of the size given.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&raw const addr).cast(),
                std::mem::size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        };
        check(rc, "bind(AF_XDP)")?;
        Ok(xsk)
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for TestXsk {
    fn drop(&mut self) {
        // The socket (a field) closes after this body; the kernel pinned the UMEM pages
        // and keeps its own reference until then, so unmapping first is safe.
        // SAFETY: the mapping made in `bind`, unmapped once.
        unsafe { libc::munmap(self.umem, self.umem_len) };
    }
}

//! The XDP program of xlns (C, built with libbpf-cargo) and its loader.
//!
//! The program (`src/bpf/xlns.bpf.c`, ../shared/ARCHITECTURE.md §2) splits traffic
//! between the kernel and the AF_XDP data plane:
//!
//! * [`Role::Access`]: L2TP data messages (T=0, version 2, any L/S/O/P flags, offset
//!   padding) sent to the configured UDP port and carrying PPP IPv4 (0x0021) or IPv6
//!   (0x0057), with or without Address/Control, protocol compressed or not, go to the XSK
//!   of the receiving queue. L2TP control messages, PPP control protocols, other PPP
//!   protocols, L2TPv3, fragments, ARP, ND, other traffic and malformed headers go to the
//!   kernel (XDP_PASS), where xlnsd's UDP socket receives what is addressed to it.
//! * [`Role::Core`]: IPv4/IPv6 packets whose destination lies in a subscriber prefix go to
//!   the XSK of the receiving queue; everything else to the kernel.
//! * [`Role::OneArmed`]: one interface is both: the access rule first (it alone decides
//!   UDP to the L2TP port, even towards a subscriber address), then the core rule.
//!
//! Ethernet frames may carry up to two VLAN tags (0x8100, 0x88A8, 0x9100). Redirects use
//! `bpf_redirect_map(&xsks, rx_queue_index, XDP_PASS)`: a queue without a socket falls
//! back to the kernel, so a stopped data plane degrades to "everything to the kernel".
//! Every frame increments exactly one [`Counter`].
//!
//! # Who writes what
//! * `xlns-dataplane` loads the program ([`XdpProgram::load`]), attaches it
//!   ([`XdpProgram::attach`]) and inserts one AF_XDP socket per interface queue
//!   ([`XdpProgram::set_xsk`]; sockets created with `XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD`).
//! * xlnsd (or the data plane on its behalf) maintains the subscriber prefixes
//!   ([`XdpProgram::add_subscriber_prefix_v4`] and friends) as sessions come and go.
//! * Either reads [`XdpProgram::counters`].
//!
//! The attachment is a bpf_link ([`XdpLink`]): it goes away when the link is dropped or
//! the process dies, even by `kill -9` (a netlink attach would outlive the process).
//!
//! Everything here needs CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN (root) at run time
//! (dataplane/tests/least_capabilities.rs).

mod counters;
mod error;

use std::mem::{self, MaybeUninit};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::{fmt, io};

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, MapHandle, libbpf_sys};

pub use counters::{COUNTER_COUNT, Counter, Counters};
pub use error::{Error, Result};

/// The libbpf-cargo skeleton. Generated code: its panics ("unexpected map") can only fire
/// if the embedded object disagrees with itself, so its lints are not ours to fix.
#[allow(
    clippy::all,
    clippy::unwrap_used,
    clippy::panic,
    unsafe_op_in_unsafe_fn,
    missing_debug_implementations,
    unused
)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/xlns.skel.rs"));
}

/// `XLNS_ROLE_ACCESS` of xlns_common.h.
pub const ROLE_ACCESS: u32 = 1;
/// `XLNS_ROLE_CORE` of xlns_common.h.
pub const ROLE_CORE: u32 = 2;
/// The default L2TP UDP port (RFC 2661 §8.1), `XLNS_L2TP_PORT_DEFAULT`.
pub const L2TP_PORT_DEFAULT: u16 = 1701;
/// Default size of the XSK map (queues), `XLNS_MAX_QUEUES`.
pub const MAX_QUEUES_DEFAULT: u32 = 256;
/// Default capacity of the IPv4 prefix trie, `XLNS_MAX_PREFIXES_V4`.
pub const MAX_PREFIXES_V4_DEFAULT: u32 = 1 << 20;
/// Default capacity of the IPv6 prefix trie, `XLNS_MAX_PREFIXES_V6`.
pub const MAX_PREFIXES_V6_DEFAULT: u32 = 1 << 20;
/// The shortest frame BPF_PROG_TEST_RUN accepts for XDP (an Ethernet header).
pub const TEST_RUN_MIN_FRAME: usize = 14;

/// Which rules the program applies on the interface it is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Facing the LACs: L2TP data to the data plane.
    Access,
    /// Facing the core network: traffic to subscriber prefixes to the data plane.
    Core,
    /// One interface facing both: the access rule, then the core rule.
    OneArmed,
}

impl Role {
    /// The `xlns_role` bits of the program.
    pub const fn bits(self) -> u32 {
        match self {
            Role::Access => ROLE_ACCESS,
            Role::Core => ROLE_CORE,
            Role::OneArmed => ROLE_ACCESS | ROLE_CORE,
        }
    }
}

/// Load-time configuration of the program (rodata and map sizes: fixed once loaded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XdpConfig {
    /// UDP destination port of L2TP on the access side.
    pub l2tp_port: u16,
    pub role: Role,
    /// Size of the XSK map: queue indices `0..max_queues` can take a socket.
    pub max_queues: u32,
    /// Capacity of the IPv4 subscriber prefix trie.
    pub max_prefixes_v4: u32,
    /// Capacity of the IPv6 subscriber prefix trie.
    pub max_prefixes_v6: u32,
}

impl Default for XdpConfig {
    fn default() -> Self {
        XdpConfig {
            l2tp_port: L2TP_PORT_DEFAULT,
            role: Role::Access,
            max_queues: MAX_QUEUES_DEFAULT,
            max_prefixes_v4: MAX_PREFIXES_V4_DEFAULT,
            max_prefixes_v6: MAX_PREFIXES_V6_DEFAULT,
        }
    }
}

/// How the program is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttachMode {
    /// In the driver (`XDP_FLAGS_DRV_MODE`); fails where the driver has no XDP support.
    Native,
    /// Generic XDP on the skb path (`XDP_FLAGS_SKB_MODE`); works everywhere, slower.
    Generic,
}

impl AttachMode {
    const fn flags(self) -> u32 {
        match self {
            AttachMode::Native => libbpf_sys::XDP_FLAGS_DRV_MODE,
            AttachMode::Generic => libbpf_sys::XDP_FLAGS_SKB_MODE,
        }
    }
}

/// The verdict an XDP program returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum XdpAction {
    Aborted,
    Drop,
    Pass,
    Tx,
    Redirect,
    /// A value outside `enum xdp_action`.
    Unknown(u32),
}

impl XdpAction {
    /// The action a program's return value names.
    pub const fn from_u32(value: u32) -> XdpAction {
        match value {
            0 => XdpAction::Aborted,
            1 => XdpAction::Drop,
            2 => XdpAction::Pass,
            3 => XdpAction::Tx,
            4 => XdpAction::Redirect,
            other => XdpAction::Unknown(other),
        }
    }
}

/// `struct xdp_md` of <linux/bpf.h>, the XDP context BPF_PROG_TEST_RUN takes.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct XdpMd {
    data: u32,
    data_end: u32,
    data_meta: u32,
    ingress_ifindex: u32,
    rx_queue_index: u32,
    egress_ifindex: u32,
}

/// The loaded program and its maps.
///
/// Holds its own file descriptors of the program and of every map (the skeleton used to
/// load them is gone), so it has no lifetime and can move between threads. The kernel
/// objects live as long as this value or any [`XdpLink`] made from it.
pub struct XdpProgram {
    config: XdpConfig,
    prog: OwnedFd,
    xsks: MapHandle,
    prefixes_v4: MapHandle,
    /// The /32 prefixes of `prefixes_v4`'s API, hashed (xlns_maps.h).
    hosts_v4: MapHandle,
    prefixes_v6: MapHandle,
    counters: MapHandle,
}

impl fmt::Debug for XdpProgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XdpProgram")
            .field("config", &self.config)
            .field("prog_fd", &self.prog.as_raw_fd())
            .finish_non_exhaustive()
    }
}

fn map_err(map: &'static str, op: &'static str) -> impl FnOnce(libbpf_rs::Error) -> Error {
    move |source| Error::Map { map, op, source }
}

fn is_not_found(err: &libbpf_rs::Error) -> bool {
    err.kind() == libbpf_rs::ErrorKind::NotFound
}

/// Keep the first `len` bits of `addr`: the canonical key of a prefix.
fn mask<const N: usize>(mut addr: [u8; N], len: u8) -> [u8; N] {
    let len = usize::from(len);
    for (i, byte) in addr.iter_mut().enumerate() {
        let keep = len.saturating_sub(i * 8).min(8);
        *byte &= !(0xffu8.checked_shr(keep as u32).unwrap_or(0));
    }
    addr
}

/// LPM trie key: prefix length (host order) then the address (network order).
fn lpm_key<const N: usize>(addr: [u8; N], len: u8) -> Result<Vec<u8>> {
    let max = (N * 8) as u8;
    if len > max {
        return Err(Error::PrefixLen { len, max });
    }
    let mut key = Vec::with_capacity(4 + N);
    key.extend_from_slice(&u32::from(len).to_ne_bytes());
    key.extend_from_slice(&mask(addr, len));
    Ok(key)
}

/// Value stored with every prefix (reserved; the program only tests presence).
const PREFIX_VALUE: u32 = 1;

impl XdpProgram {
    /// Open the embedded object, write `config` into it, and load it into the kernel.
    pub fn load(config: XdpConfig) -> Result<XdpProgram> {
        let mut storage = MaybeUninit::uninit();
        let mut open = skel::XlnsSkelBuilder::default()
            .open(&mut storage)
            .map_err(Error::Open)?;
        let rodata = open
            .maps
            .rodata_data
            .as_deref_mut()
            .ok_or(Error::MapValue {
                map: "rodata",
                detail: "not memory-mapped before load",
            })?;
        rodata.xlns_role = config.role.bits();
        rodata.xlns_l2tp_port = config.l2tp_port;
        let sizes = [
            (&mut open.maps.xsks, config.max_queues, "xsks max_entries"),
            (
                &mut open.maps.prefixes_v4,
                config.max_prefixes_v4,
                "prefixes_v4 max_entries",
            ),
            (
                &mut open.maps.hosts_v4,
                config.max_prefixes_v4,
                "hosts_v4 max_entries",
            ),
            (
                &mut open.maps.prefixes_v6,
                config.max_prefixes_v6,
                "prefixes_v6 max_entries",
            ),
        ];
        for (map, entries, what) in sizes {
            map.set_max_entries(entries)
                .map_err(|source| Error::Configure { what, source })?;
        }
        let skel = open.load().map_err(Error::Load)?;
        let prog = skel
            .progs
            .xlns_xdp
            .as_fd()
            .try_clone_to_owned()
            .map_err(|source| Error::Fd {
                what: "program xlns_xdp",
                source,
            })?;
        let handle = |map: &libbpf_rs::MapMut<'_>, what: &'static str| {
            MapHandle::try_from(map).map_err(|source| Error::Map {
                map: what,
                op: "dup",
                source,
            })
        };
        Ok(XdpProgram {
            config,
            prog,
            xsks: handle(&skel.maps.xsks, "xsks")?,
            prefixes_v4: handle(&skel.maps.prefixes_v4, "prefixes_v4")?,
            hosts_v4: handle(&skel.maps.hosts_v4, "hosts_v4")?,
            prefixes_v6: handle(&skel.maps.prefixes_v6, "prefixes_v6")?,
            counters: handle(&skel.maps.counters, "counters")?,
        })
    }

    /// The configuration the program was loaded with.
    pub const fn config(&self) -> &XdpConfig {
        &self.config
    }

    /// The program's file descriptor.
    pub fn prog_fd(&self) -> BorrowedFd<'_> {
        self.prog.as_fd()
    }

    /// Attach to interface `ifindex` with a bpf_link (`BPF_LINK_CREATE`, `BPF_XDP`).
    ///
    /// The link detaches when the returned [`XdpLink`] is dropped or the process exits
    /// (there is no pinning): a crashed data plane leaves no program behind. Fails with
    /// EBUSY when the interface already has an XDP program in that mode.
    pub fn attach(&self, ifindex: u32, mode: AttachMode) -> Result<XdpLink> {
        // SAFETY: bpf_link_create_opts is a plain C struct; all-zero is its documented
        // initial state (LIBBPF_OPTS), with `sz` set below.
        let mut opts: libbpf_sys::bpf_link_create_opts = unsafe { mem::zeroed() };
        opts.sz = mem::size_of::<libbpf_sys::bpf_link_create_opts>() as _;
        opts.flags = mode.flags();
        let attach_err = |source| Error::Attach {
            ifindex,
            mode,
            source,
        };
        let target = i32::try_from(ifindex)
            .map_err(|_| attach_err(io::Error::from_raw_os_error(libc::EINVAL)))?;
        // SAFETY: the program fd is valid for the call, `opts` outlives it and has its
        // size set; libbpf returns a new fd or a negative errno.
        let fd = unsafe {
            libbpf_sys::bpf_link_create(self.prog.as_raw_fd(), target, libbpf_sys::BPF_XDP, &opts)
        };
        if fd < 0 {
            return Err(attach_err(io::Error::from_raw_os_error(-fd)));
        }
        // SAFETY: `fd` is a fresh link fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(XdpLink { fd, ifindex, mode })
    }

    /// The XSK map's file descriptor (key: RX queue index, value: AF_XDP socket fd).
    pub fn xsks_map_fd(&self) -> BorrowedFd<'_> {
        self.xsks.as_fd()
    }

    fn check_queue(&self, queue: u32) -> Result<()> {
        if queue >= self.config.max_queues {
            return Err(Error::Queue {
                queue,
                max: self.config.max_queues,
            });
        }
        Ok(())
    }

    /// Register the AF_XDP socket `xsk` for RX queue `queue`. The kernel accepts only a
    /// bound socket with an RX ring; frames of that queue go to it from now on.
    pub fn set_xsk(&self, queue: u32, xsk: BorrowedFd<'_>) -> Result<()> {
        self.check_queue(queue)?;
        let fd = u32::try_from(xsk.as_raw_fd()).map_err(|_| Error::MapValue {
            map: "xsks",
            detail: "negative socket fd",
        })?;
        self.xsks
            .update(&queue.to_ne_bytes(), &fd.to_ne_bytes(), MapFlags::ANY)
            .map_err(map_err("xsks", "update"))
    }

    /// Remove the socket of RX queue `queue`, if any; its frames fall back to the kernel.
    /// (The kernel does not say whether the slot held a socket, nor can an XSKMAP be read
    /// from user space.)
    pub fn clear_xsk(&self, queue: u32) -> Result<()> {
        self.check_queue(queue)?;
        self.xsks
            .delete(&queue.to_ne_bytes())
            .map_err(map_err("xsks", "delete"))
    }

    fn add_prefix(map: &MapHandle, name: &'static str, key: Vec<u8>) -> Result<()> {
        map.update(&key, &PREFIX_VALUE.to_ne_bytes(), MapFlags::ANY)
            .map_err(map_err(name, "update"))
    }

    fn remove_prefix(map: &MapHandle, name: &'static str, key: Vec<u8>) -> Result<bool> {
        match map.delete(&key) {
            Ok(()) => Ok(true),
            Err(err) if is_not_found(&err) => Ok(false),
            Err(err) => Err(map_err(name, "delete")(err)),
        }
    }

    /// Add the subscriber prefix `addr/len` (host bits beyond `len` are ignored).
    /// Adding a prefix that is present is not an error.
    /// A /32 goes to the hash of subscriber addresses, a shorter prefix to the trie.
    pub fn add_subscriber_prefix_v4(&self, addr: Ipv4Addr, len: u8) -> Result<()> {
        if len == 32 {
            return Self::add_prefix(&self.hosts_v4, "hosts_v4", addr.octets().to_vec());
        }
        Self::add_prefix(
            &self.prefixes_v4,
            "prefixes_v4",
            lpm_key(addr.octets(), len)?,
        )
    }

    /// Remove the subscriber prefix `addr/len`; returns whether it was present.
    pub fn remove_subscriber_prefix_v4(&self, addr: Ipv4Addr, len: u8) -> Result<bool> {
        if len == 32 {
            return Self::remove_prefix(&self.hosts_v4, "hosts_v4", addr.octets().to_vec());
        }
        Self::remove_prefix(
            &self.prefixes_v4,
            "prefixes_v4",
            lpm_key(addr.octets(), len)?,
        )
    }

    /// Add the subscriber prefix `addr/len` (host bits beyond `len` are ignored).
    pub fn add_subscriber_prefix_v6(&self, addr: Ipv6Addr, len: u8) -> Result<()> {
        Self::add_prefix(
            &self.prefixes_v6,
            "prefixes_v6",
            lpm_key(addr.octets(), len)?,
        )
    }

    /// Remove the subscriber prefix `addr/len`; returns whether it was present.
    pub fn remove_subscriber_prefix_v6(&self, addr: Ipv6Addr, len: u8) -> Result<bool> {
        Self::remove_prefix(
            &self.prefixes_v6,
            "prefixes_v6",
            lpm_key(addr.octets(), len)?,
        )
    }

    /// All counters, each summed over the CPUs.
    pub fn counters(&self) -> Result<Counters> {
        let mut values = [0u64; COUNTER_COUNT];
        for (index, value) in (0u32..).zip(values.iter_mut()) {
            let per_cpu = self
                .counters
                .lookup_percpu(&index.to_ne_bytes(), MapFlags::ANY)
                .map_err(map_err("counters", "lookup"))?
                .ok_or(Error::MapValue {
                    map: "counters",
                    detail: "array slot missing",
                })?;
            for cpu in per_cpu {
                let bytes: [u8; 8] =
                    cpu.get(..8)
                        .and_then(|b| b.try_into().ok())
                        .ok_or(Error::MapValue {
                            map: "counters",
                            detail: "per-CPU value shorter than 8 bytes",
                        })?;
                *value = value.wrapping_add(u64::from_ne_bytes(bytes));
            }
        }
        Ok(Counters::from_values(values))
    }

    /// Run the program once on `frame` with BPF_PROG_TEST_RUN, as if received on RX queue
    /// 0 of no particular device; returns its verdict. The kernel does not carry out a
    /// redirect in this mode: XDP_REDIRECT is only the return value.
    pub fn test_run(&self, frame: &[u8]) -> Result<XdpAction> {
        self.test_run_on(frame, 0, 0)
    }

    /// Like [`XdpProgram::test_run`], as if received on RX queue `rx_queue_index` of
    /// interface `ingress_ifindex` (which must exist in this network namespace and have
    /// that queue; an ifindex of 0 allows queue 0 only).
    pub fn test_run_on(
        &self,
        frame: &[u8],
        ingress_ifindex: u32,
        rx_queue_index: u32,
    ) -> Result<XdpAction> {
        if frame.len() < TEST_RUN_MIN_FRAME {
            return Err(Error::TestFrame {
                len: frame.len(),
                min: TEST_RUN_MIN_FRAME,
            });
        }
        let mut ctx = XdpMd {
            data_end: u32::try_from(frame.len()).map_err(|_| Error::TestFrame {
                len: frame.len(),
                min: TEST_RUN_MIN_FRAME,
            })?,
            ingress_ifindex,
            rx_queue_index,
            ..XdpMd::default()
        };
        // SAFETY: bpf_test_run_opts is a plain C struct; all-zero is its initial state.
        let mut opts: libbpf_sys::bpf_test_run_opts = unsafe { mem::zeroed() };
        opts.sz = mem::size_of::<libbpf_sys::bpf_test_run_opts>() as _;
        opts.data_in = frame.as_ptr().cast();
        opts.data_size_in = ctx.data_end;
        opts.ctx_in = (&raw mut ctx).cast();
        opts.ctx_size_in = mem::size_of::<XdpMd>() as u32;
        opts.repeat = 1;
        // SAFETY: every pointer in `opts` refers to memory that outlives the call, with
        // its size alongside; no output buffers are given.
        let rc = unsafe { libbpf_sys::bpf_prog_test_run_opts(self.prog.as_raw_fd(), &mut opts) };
        if rc < 0 {
            return Err(Error::TestRun(io::Error::from_raw_os_error(-rc)));
        }
        Ok(XdpAction::from_u32(opts.retval))
    }
}

/// An attachment of the program to one interface (a bpf_link). Dropping it detaches.
#[derive(Debug)]
pub struct XdpLink {
    fd: OwnedFd,
    ifindex: u32,
    mode: AttachMode,
}

impl XdpLink {
    /// The interface it is attached to.
    pub const fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The mode it was attached in.
    pub const fn mode(&self) -> AttachMode {
        self.mode
    }

    /// The link's file descriptor.
    pub fn link_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Detach now (the same as dropping it).
    pub fn detach(self) {
        drop(self);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    const COMMON_H: &str = include_str!("bpf/xlns_common.h");

    /// `#define NAME VALUE` lines of xlns_common.h.
    fn defines() -> Vec<(&'static str, u64)> {
        COMMON_H
            .lines()
            .filter_map(|line| {
                let mut words = line.strip_prefix("#define ")?.split_whitespace();
                let name = words.next()?;
                let value = words.next()?.parse().ok()?;
                Some((name, value))
            })
            .collect()
    }

    fn define(name: &str) -> u64 {
        defines()
            .into_iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("{name} missing from xlns_common.h"))
            .1
    }

    #[test]
    fn common_header_matches_rust() {
        assert_eq!(define("XLNS_ROLE_ACCESS"), u64::from(ROLE_ACCESS));
        assert_eq!(define("XLNS_ROLE_CORE"), u64::from(ROLE_CORE));
        assert_eq!(
            define("XLNS_L2TP_PORT_DEFAULT"),
            u64::from(L2TP_PORT_DEFAULT)
        );
        assert_eq!(define("XLNS_MAX_QUEUES"), u64::from(MAX_QUEUES_DEFAULT));
        assert_eq!(
            define("XLNS_MAX_PREFIXES_V4"),
            u64::from(MAX_PREFIXES_V4_DEFAULT)
        );
        assert_eq!(
            define("XLNS_MAX_PREFIXES_V6"),
            u64::from(MAX_PREFIXES_V6_DEFAULT)
        );
        assert_eq!(define("XLNS_CNT_MAX"), COUNTER_COUNT as u64);
        let counters: Vec<_> = defines()
            .into_iter()
            .filter(|(n, _)| n.starts_with("XLNS_CNT_") && *n != "XLNS_CNT_MAX")
            .collect();
        assert_eq!(counters.len(), COUNTER_COUNT, "one Counter per XLNS_CNT_*");
        for (name, value) in counters {
            let counter = Counter::ALL
                .iter()
                .find(|c| format!("XLNS_CNT_{}", c.name().to_uppercase().replace('-', "_")) == name)
                .unwrap_or_else(|| panic!("{name} has no Counter"));
            assert_eq!(u64::from(counter.index()), value, "{name}");
        }
    }

    #[test]
    fn counters_in_index_order() {
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(c.index() as usize, i);
        }
    }

    #[test]
    fn prefix_keys_are_masked_and_bounded() {
        assert_eq!(
            lpm_key([10, 1, 2, 3], 20).unwrap(),
            [20u32.to_ne_bytes().as_slice(), &[10, 1, 0, 0]].concat()
        );
        assert_eq!(lpm_key([255; 4], 0).unwrap()[4..], [0, 0, 0, 0]);
        assert_eq!(lpm_key([255; 4], 32).unwrap()[4..], [255; 4]);
        assert_eq!(lpm_key([255; 4], 31).unwrap()[4..], [255, 255, 255, 254]);
        assert!(matches!(
            lpm_key([0; 4], 33),
            Err(Error::PrefixLen { len: 33, max: 32 })
        ));
        assert_eq!(lpm_key([0xff; 16], 65).unwrap()[4..][8], 0x80);
        assert!(lpm_key([0; 16], 128).is_ok());
        assert!(matches!(
            lpm_key([0; 16], 129),
            Err(Error::PrefixLen { len: 129, max: 128 })
        ));
    }

    #[test]
    fn xdp_md_layout() {
        assert_eq!(mem::size_of::<XdpMd>(), 24);
        assert_eq!(
            mem::size_of::<XdpMd>(),
            mem::size_of::<skel::types::xdp_md>()
        );
    }

    #[test]
    fn actions() {
        assert_eq!(XdpAction::from_u32(2), XdpAction::Pass);
        assert_eq!(XdpAction::from_u32(4), XdpAction::Redirect);
        assert_eq!(XdpAction::from_u32(9), XdpAction::Unknown(9));
    }
}

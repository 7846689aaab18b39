//! Errors of the loader.

use std::io;

use crate::AttachMode;

/// Everything the loader can fail at.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Opening the embedded BPF object (ELF parsing, BTF).
    #[error("opening the embedded XDP object: {0}")]
    Open(#[source] libbpf_rs::Error),
    /// Writing the configuration (rodata, map sizes) before load.
    #[error("configuring the XDP object before load ({what}): {source}")]
    Configure {
        what: &'static str,
        #[source]
        source: libbpf_rs::Error,
    },
    /// Loading into the kernel: the verifier rejected the program, or the process lacks
    /// CAP_BPF / CAP_PERFMON / CAP_NET_ADMIN (libbpf prints the verifier log through its print hook).
    #[error(
        "loading the XDP program into the kernel (needs CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN): {0}"
    )]
    Load(#[source] libbpf_rs::Error),
    /// Duplicating a program or map file descriptor out of the skeleton.
    #[error("duplicating the file descriptor of {what}: {source}")]
    Fd {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    /// Creating the bpf_link that attaches the program to an interface.
    #[error("attaching XDP to ifindex {ifindex} in {mode:?} mode: {source}")]
    Attach {
        ifindex: u32,
        mode: AttachMode,
        #[source]
        source: io::Error,
    },
    /// A map operation failed.
    #[error("{op} on map {map}: {source}")]
    Map {
        map: &'static str,
        op: &'static str,
        #[source]
        source: libbpf_rs::Error,
    },
    /// A per-CPU map returned no value or values of an unexpected size.
    #[error("map {map} returned an unexpected value ({detail})")]
    MapValue {
        map: &'static str,
        detail: &'static str,
    },
    /// A prefix longer than its address.
    #[error("prefix length {len} exceeds {max}")]
    PrefixLen { len: u8, max: u8 },
    /// A queue index beyond the XSK map.
    #[error("queue {queue} out of range (the XSK map holds {max} queues)")]
    Queue { queue: u32, max: u32 },
    /// A frame BPF_PROG_TEST_RUN cannot take (the kernel wants at least an Ethernet header).
    #[error("test frame of {len} bytes: BPF_PROG_TEST_RUN needs at least {min}")]
    TestFrame { len: usize, min: usize },
    /// BPF_PROG_TEST_RUN itself failed.
    #[error("BPF_PROG_TEST_RUN: {0}")]
    TestRun(#[source] io::Error),
}

/// Result of the loader.
pub type Result<T> = std::result::Result<T, Error>;

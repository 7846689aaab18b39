//! xlns data plane.
//!
//! * [`wire`]: zero-copy views of every header the data path touches (Ethernet with
//!   802.1Q / QinQ tags, IPv4, IPv6, UDP, the L2TPv2 header, the PPP header).
//!
//! * [`session`]: the plain-old-data session record xlnsd publishes for the workers.
//!
//! * [`shm`]: the shared-memory segment (versioned header, session slots under sequence
//!   locks, lock-free indexes, per-worker counters) between xlnsd and the workers.
//! * [`fastpath`]: the per-packet upstream and downstream processing the workers run.
//!
//! * [`worker`]: the AF_XDP workers (raw rings over libc, one UMEM shared by a queue's
//!   access and core sockets) and the glue between the fast path and the segment.

pub mod config;
pub mod fastpath;
pub mod session;
pub mod shm;
pub mod wire;
pub mod worker;

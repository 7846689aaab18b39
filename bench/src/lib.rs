//! xlns-bench: the LAC / PPP-client emulator and the AF_XDP traffic generator.
//!
//! Built in the benchmark issue (#6); the criterion benchmarks live in the crates they
//! measure (`dataplane/benches`, `controlplane/benches`).
//!
//! * [`lac`]: the LAC emulator, N tunnels x M sessions toward an LNS, with PPP
//!   subscribers ([`subscriber`]) when asked.
//! * [`subscriber`]: one PPP client per session (PAP, CHAP-MD5, MS-CHAPv2, proxy LCP and
//!   proxy authentication for NAS-initiated calls).
//! * [`lab`]: the lab run, sessions and traffic both ways in one process.
//! * [`traffic`]: the AF_XDP traffic generator and sink (upstream L2TP/PPP, downstream
//!   plain IP, loss per session, reordering, latency percentiles).
//! * [`forwarder`]: the bare AF_XDP forwarder, the ceiling of a rig.
//! * [`compare`]: xlns against l2tpns on the same rig and sessions (setup, forwarding,
//!   CPU per packet, RFC 2544), ratios from one run.
//! * [`plot`]: SVG plots of the JSON results.
//! * [`fwbench`]: the self-contained forwarding comparison (namespaces, bare forwarder,
//!   xlns-dataplane, ratios).

pub mod acct_check;
pub mod compare;
pub mod forwarder;
pub mod fwbench;
pub mod lab;
pub mod lac;
pub mod plot;
pub mod subscriber;
pub mod traffic;

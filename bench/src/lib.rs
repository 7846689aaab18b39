//! xlns-bench: the LAC / PPP-client emulator and the AF_XDP traffic generator.
//!
//! Built in the benchmark issue (#6); the criterion benchmarks live in the crates they
//! measure (`dataplane/benches`, `controlplane/benches`).
//!
//! * [`lac`]: the LAC emulator's L2TP part, N tunnels x M sessions toward an LNS.

pub mod lac;

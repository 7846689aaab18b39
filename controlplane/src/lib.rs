//! xlns control plane: sans-IO protocol cores for L2TP and PPP, and the xlnsd shell.
//!
//! * [`l2tp`]: control message and AVP codec (RFC 2661 §3-§4, §6), hidden AVPs (§4.3).
//! * [`config`]: the TOML configuration of xlnsd, validated, with file:line:column errors.
//! * [`policy`]: per-LAC policy lookup, live counters and limits (RFC 2661 §4.4.2 codes).
//! * [`admission`]: sans-IO admission control of tunnel and session setups.
//! * [`ppp`]: LCP, IPCP, IPv6CP, PAP, CHAP-MD5 and MS-CHAPv2 packets and their crypto.
//! * [`radius`]: RADIUS client (RFC 2865/2866/2869): codec, dictionary, client core, PPP mapping.
//! * [`shell`]: the tokio shell of xlnsd around the cores (socket, timers, signals).

pub mod admission;
pub mod config;
pub mod l2tp;
pub mod policy;
pub mod ppp;
pub mod radius;
pub mod realm;
pub mod shell;

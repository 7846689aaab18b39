//! xlns control plane: sans-IO protocol cores for L2TP and PPP, and the xlnsd shell.
//!
//! * [`l2tp`]: control message and AVP codec (RFC 2661 §3-§4, §6), hidden AVPs (§4.3).
//! * [`ppp`]: LCP, IPCP, IPv6CP, PAP, CHAP-MD5 and MS-CHAPv2 packets and their crypto.

pub mod l2tp;
pub mod ppp;

//! L2TP control messages and AVPs (RFC 2661).

pub mod transport;

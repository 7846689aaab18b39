//! PPP control protocols (RFC 1661 and friends).
pub mod fsm;

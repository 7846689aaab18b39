//! L2TP control messages and AVPs (RFC 2661).

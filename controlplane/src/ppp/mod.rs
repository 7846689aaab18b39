//! PPP control protocols (RFC 1661 and friends).

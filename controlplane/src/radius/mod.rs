//! RADIUS client for xlns (issue #7): the wire codec and crypto ([`wire`]), a
//! FreeRADIUS-compatible dictionary ([`dictionary`]), a sans-IO client core with a thin
//! tokio driver ([`client`]), and the Access-Request / Access-Accept mapping for PPP
//! authentication ([`auth`]), accounting records ([`acct`]) and their durable spool
//! ([`spool`]), and the RFC 5176 Dynamic Authorization server core ([`dae`]:
//! Disconnect-Request, CoA-Request).
//!
//! RFCs: 2865 (RADIUS), 2866 (accounting), 2868 (tunnel attributes), 2869
//! (Message-Authenticator), 2548 (Microsoft vendor attributes), 3162 (IPv6), 4818
//! (Delegated-IPv6-Prefix), 5176 (dynamic authorization).

pub mod acct;
pub mod auth;
pub mod client;
pub mod dae;
pub mod dictionary;
pub mod spool;
pub mod wire;

//! L2TPv2 control messages and AVPs (RFC 2661 §3-§4, §6; RFC 3145; vendor AVPs such as
//! RFC 5515's are kept, never fatal).
//!
//! * [`avp`]: the AVP header view, a borrowing iterator, emit helpers (§4.1).
//! * [`hidden`]: hiding and unhiding of AVP values (§4.3).
//! * [`attr`]: the typed [`Avp`] enum for every AVP of §4.4 and RFC 3145.
//! * [`message`]: message types, per-message AVP tables (§6), [`ControlMessage`] and
//!   the whole datagram [`ControlPacket`] (ZLB included).
//! * [`result`]: Result Code, general error and PPP Disconnect Cause values.
//! * [`transport`]: the sans-IO reliable delivery of control messages (§5.8, appendix A).
//! * [`tunnel`]: the control connection FSM (§7.2.1), tunnel authentication (§5.1.1).
//! * [`session`]: the call FSMs (§7.4.1, §7.4.2, §7.5.1, §7.5.2).
//! * [`endpoint`]: every tunnel and session of one UDP socket, sans-IO, both roles.
//!
//! The L2TP header itself is the data plane's `xlns_dataplane::wire::l2tp`. The
//! reliable transport, tunnel and session machines build on this module (#3).

pub mod attr;
pub mod avp;
pub mod endpoint;
pub mod hidden;
pub mod message;
pub mod result;
pub mod session;
pub mod transport;
pub mod tunnel;

pub use attr::{Avp, ResultCode, attr_type};
pub use message::{
    ControlBody, ControlMessage, ControlPacket, HidingPolicy, MessageError, MessageType, Scope,
};

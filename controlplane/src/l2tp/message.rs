//! Control messages (RFC 2661 §3.2, §4, §6): the message types, the per-message AVP
//! tables, the owned [`ControlMessage`] and the whole-datagram [`ControlPacket`]
//! (header plus a message or a ZLB acknowledgement, §5.8).
//!
//! Contract:
//! * [`ControlMessage::parse`] never panics; malformed bytes give a [`MessageError`]
//!   naming the problem. The Message Type AVP must come first and must not be hidden
//!   (§4.4.1). Hidden AVPs (§4.3) are unhidden with the tunnel secret and the closest
//!   preceding Random Vector AVP. Random Vector AVPs are kept in place as
//!   [`Avp::RandomVector`], whether hidden AVPs follow or not (xl2tpd 1.3 with a
//!   tunnel secret sends one in every control message, and hides nothing). Unknown
//!   AVPs are kept in order as [`Avp::Unknown`] (vendor AVPs included); one with the M
//!   bit set is reported by [`ControlMessage::unknown_mandatory`] and
//!   [`ControlMessage::validate`] so the state machine can answer with StopCCN or CDN
//!   (§4.2). Parsing does not check which AVPs a message must carry: `validate` does,
//!   against the §6 tables.
//! * [`ControlMessage::emit`] writes the Message Type AVP, then the AVPs in order,
//!   hiding those the [`HidingPolicy`] names with the closest preceding Random Vector
//!   AVP of the message, or, where none precedes the first hidden one, behind one
//!   fresh Random Vector AVP placed just before it (§4.3). Without hiding,
//!   `parse(emit(m)) == m` for every message, and a received message without hidden
//!   AVPs is re-emitted byte for byte when each AVP carries the M bit RFC 2661 §4.4
//!   prescribes for it (a hidden AVP is re-emitted in clear unless a policy hides it).

use xlns_dataplane::wire::WireError;
use xlns_dataplane::wire::l2tp::{HeaderKind, HeaderRepr, Packet, Sequence};

use super::attr::{
    Accm, Avp, BearerMask, CallErrors, FramingMask, PppDisconnectCause, ProxyAuthenType, Q931Cause,
    ResultCode, attr_type as at, display_name,
};
use super::avp::{AvpError, AvpIter, push_header};
use super::hidden::{self, HiddenError};

/// Control message types (RFC 2661 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum MessageType {
    /// Start-Control-Connection-Request, §6.1.
    Sccrq = 1,
    /// Start-Control-Connection-Reply, §6.2.
    Sccrp = 2,
    /// Start-Control-Connection-Connected, §6.3.
    Scccn = 3,
    /// Stop-Control-Connection-Notification, §6.4.
    StopCcn = 4,
    /// Hello, §6.5.
    Hello = 6,
    /// Outgoing-Call-Request, §6.9.
    Ocrq = 7,
    /// Outgoing-Call-Reply, §6.10.
    Ocrp = 8,
    /// Outgoing-Call-Connected, §6.11.
    Occn = 9,
    /// Incoming-Call-Request, §6.6.
    Icrq = 10,
    /// Incoming-Call-Reply, §6.7.
    Icrp = 11,
    /// Incoming-Call-Connected, §6.8.
    Iccn = 12,
    /// Call-Disconnect-Notify, §6.12.
    Cdn = 14,
    /// WAN-Error-Notify, §6.13.
    Wen = 15,
    /// Set-Link-Info, §6.14.
    Sli = 16,
}

/// What a message belongs to: the control connection or one session in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// SCCRQ, SCCRP, SCCCN, StopCCN, HELLO: an unknown M-bit AVP clears the tunnel.
    Tunnel,
    /// Call management: an unknown M-bit AVP clears the session (§4.1).
    Session,
}

use at::*;

// RFC 2661 §6: AVPs each message MUST and MAY carry (Message Type is implied).
/// §6.1 SCCRQ: MUST.
const SCCRQ_MANDATORY: &[u16] = &[
    PROTOCOL_VERSION,
    HOST_NAME,
    FRAMING_CAPABILITIES,
    ASSIGNED_TUNNEL_ID,
];
/// §6.1 SCCRQ: MAY.
const SCCRQ_OPTIONAL: &[u16] = &[
    BEARER_CAPABILITIES,
    RECEIVE_WINDOW_SIZE,
    CHALLENGE,
    TIE_BREAKER,
    FIRMWARE_REVISION,
    VENDOR_NAME,
];
/// §6.2 SCCRP: MUST.
const SCCRP_MANDATORY: &[u16] = &[
    PROTOCOL_VERSION,
    FRAMING_CAPABILITIES,
    HOST_NAME,
    ASSIGNED_TUNNEL_ID,
];
/// §6.2 SCCRP: MAY.
const SCCRP_OPTIONAL: &[u16] = &[
    BEARER_CAPABILITIES,
    FIRMWARE_REVISION,
    VENDOR_NAME,
    RECEIVE_WINDOW_SIZE,
    CHALLENGE,
    CHALLENGE_RESPONSE,
];
/// §6.3 SCCCN: MAY (Message Type only is mandatory).
const SCCCN_OPTIONAL: &[u16] = &[CHALLENGE_RESPONSE];
/// §6.4 StopCCN: MUST.
const STOPCCN_MANDATORY: &[u16] = &[ASSIGNED_TUNNEL_ID, RESULT_CODE];
/// §6.6 ICRQ: MUST.
const ICRQ_MANDATORY: &[u16] = &[ASSIGNED_SESSION_ID, CALL_SERIAL_NUMBER];
/// §6.6 ICRQ: MAY.
const ICRQ_OPTIONAL: &[u16] = &[
    BEARER_TYPE,
    PHYSICAL_CHANNEL_ID,
    CALLING_NUMBER,
    CALLED_NUMBER,
    SUB_ADDRESS,
];
/// §6.7 ICRP: MUST.
const ICRP_MANDATORY: &[u16] = &[ASSIGNED_SESSION_ID];
/// §6.8 ICCN: MUST.
const ICCN_MANDATORY: &[u16] = &[TX_CONNECT_SPEED, FRAMING_TYPE];
/// §6.8 ICCN: MAY.
const ICCN_OPTIONAL: &[u16] = &[
    INITIAL_RECEIVED_LCP_CONFREQ,
    LAST_SENT_LCP_CONFREQ,
    LAST_RECEIVED_LCP_CONFREQ,
    PROXY_AUTHEN_TYPE,
    PROXY_AUTHEN_NAME,
    PROXY_AUTHEN_CHALLENGE,
    PROXY_AUTHEN_ID,
    PROXY_AUTHEN_RESPONSE,
    PRIVATE_GROUP_ID,
    RX_CONNECT_SPEED,
    SEQUENCING_REQUIRED,
];
/// §6.9 OCRQ: MUST.
const OCRQ_MANDATORY: &[u16] = &[
    ASSIGNED_SESSION_ID,
    CALL_SERIAL_NUMBER,
    MINIMUM_BPS,
    MAXIMUM_BPS,
    BEARER_TYPE,
    FRAMING_TYPE,
    CALLED_NUMBER,
];
/// §6.9 OCRQ: MAY.
const OCRQ_OPTIONAL: &[u16] = &[SUB_ADDRESS];
/// §6.10 OCRP: MUST.
const OCRP_MANDATORY: &[u16] = &[ASSIGNED_SESSION_ID];
/// §6.10 OCRP: MAY.
const OCRP_OPTIONAL: &[u16] = &[PHYSICAL_CHANNEL_ID];
/// §6.11 OCCN: MUST.
const OCCN_MANDATORY: &[u16] = &[TX_CONNECT_SPEED, FRAMING_TYPE];
/// §6.11 OCCN: MAY.
const OCCN_OPTIONAL: &[u16] = &[RX_CONNECT_SPEED, SEQUENCING_REQUIRED];
/// §6.12 CDN: MUST.
const CDN_MANDATORY: &[u16] = &[RESULT_CODE, ASSIGNED_SESSION_ID];
/// §6.12 CDN: MAY, plus RFC 3145 §2 (PPP Disconnect Cause Code is valid in CDN only).
const CDN_OPTIONAL: &[u16] = &[Q931_CAUSE_CODE, PPP_DISCONNECT_CAUSE_CODE];
/// §6.13 WEN: MUST.
const WEN_MANDATORY: &[u16] = &[CALL_ERRORS];
/// §6.14 SLI: MUST.
const SLI_MANDATORY: &[u16] = &[ACCM];

impl MessageType {
    /// Every message type, in numeric order.
    pub const ALL: [MessageType; 14] = [
        MessageType::Sccrq,
        MessageType::Sccrp,
        MessageType::Scccn,
        MessageType::StopCcn,
        MessageType::Hello,
        MessageType::Ocrq,
        MessageType::Ocrp,
        MessageType::Occn,
        MessageType::Icrq,
        MessageType::Icrp,
        MessageType::Iccn,
        MessageType::Cdn,
        MessageType::Wen,
        MessageType::Sli,
    ];

    /// From the Message Type AVP value.
    pub const fn from_code(code: u16) -> Option<MessageType> {
        Some(match code {
            1 => MessageType::Sccrq,
            2 => MessageType::Sccrp,
            3 => MessageType::Scccn,
            4 => MessageType::StopCcn,
            6 => MessageType::Hello,
            7 => MessageType::Ocrq,
            8 => MessageType::Ocrp,
            9 => MessageType::Occn,
            10 => MessageType::Icrq,
            11 => MessageType::Icrp,
            12 => MessageType::Iccn,
            14 => MessageType::Cdn,
            15 => MessageType::Wen,
            16 => MessageType::Sli,
            _ => return None,
        })
    }

    /// The Message Type AVP value.
    pub const fn code(self) -> u16 {
        self as u16
    }

    /// The RFC's abbreviation.
    pub const fn name(self) -> &'static str {
        match self {
            MessageType::Sccrq => "SCCRQ",
            MessageType::Sccrp => "SCCRP",
            MessageType::Scccn => "SCCCN",
            MessageType::StopCcn => "StopCCN",
            MessageType::Hello => "HELLO",
            MessageType::Ocrq => "OCRQ",
            MessageType::Ocrp => "OCRP",
            MessageType::Occn => "OCCN",
            MessageType::Icrq => "ICRQ",
            MessageType::Icrp => "ICRP",
            MessageType::Iccn => "ICCN",
            MessageType::Cdn => "CDN",
            MessageType::Wen => "WEN",
            MessageType::Sli => "SLI",
        }
    }

    /// The RFC 2661 section that specifies the message.
    pub const fn section(self) -> &'static str {
        match self {
            MessageType::Sccrq => "6.1",
            MessageType::Sccrp => "6.2",
            MessageType::Scccn => "6.3",
            MessageType::StopCcn => "6.4",
            MessageType::Hello => "6.5",
            MessageType::Icrq => "6.6",
            MessageType::Icrp => "6.7",
            MessageType::Iccn => "6.8",
            MessageType::Ocrq => "6.9",
            MessageType::Ocrp => "6.10",
            MessageType::Occn => "6.11",
            MessageType::Cdn => "6.12",
            MessageType::Wen => "6.13",
            MessageType::Sli => "6.14",
        }
    }

    /// Tunnel or session message.
    pub const fn scope(self) -> Scope {
        match self {
            MessageType::Sccrq
            | MessageType::Sccrp
            | MessageType::Scccn
            | MessageType::StopCcn
            | MessageType::Hello => Scope::Tunnel,
            _ => Scope::Session,
        }
    }

    /// AVPs the message MUST carry besides Message Type (RFC 2661 §6.x).
    pub const fn mandatory_avps(self) -> &'static [u16] {
        match self {
            MessageType::Sccrq => SCCRQ_MANDATORY,
            MessageType::Sccrp => SCCRP_MANDATORY,
            MessageType::Scccn | MessageType::Hello => &[],
            MessageType::StopCcn => STOPCCN_MANDATORY,
            MessageType::Icrq => ICRQ_MANDATORY,
            MessageType::Icrp => ICRP_MANDATORY,
            MessageType::Iccn => ICCN_MANDATORY,
            MessageType::Ocrq => OCRQ_MANDATORY,
            MessageType::Ocrp => OCRP_MANDATORY,
            MessageType::Occn => OCCN_MANDATORY,
            MessageType::Cdn => CDN_MANDATORY,
            MessageType::Wen => WEN_MANDATORY,
            MessageType::Sli => SLI_MANDATORY,
        }
    }

    /// AVPs the message MAY carry (RFC 2661 §6.x). Random Vector may appear in any
    /// message (§4.4.1) and is not listed.
    pub const fn optional_avps(self) -> &'static [u16] {
        match self {
            MessageType::Sccrq => SCCRQ_OPTIONAL,
            MessageType::Sccrp => SCCRP_OPTIONAL,
            MessageType::Scccn => SCCCN_OPTIONAL,
            MessageType::Icrq => ICRQ_OPTIONAL,
            MessageType::Iccn => ICCN_OPTIONAL,
            MessageType::Ocrq => OCRQ_OPTIONAL,
            MessageType::Ocrp => OCRP_OPTIONAL,
            MessageType::Occn => OCCN_OPTIONAL,
            MessageType::Cdn => CDN_OPTIONAL,
            MessageType::StopCcn
            | MessageType::Hello
            | MessageType::Icrp
            | MessageType::Wen
            | MessageType::Sli => &[],
        }
    }
}

impl core::fmt::Display for MessageType {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a control message could not be parsed, emitted or accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// The L2TP header is malformed (RFC 2661 §3.1).
    #[error("L2TP header: {0}")]
    Header(#[from] WireError),
    /// A data message (T=0) where a control message was expected.
    #[error("not a control message (T bit clear)")]
    NotControl,
    /// AVP framing error (RFC 2661 §4.1).
    #[error("AVP framing: {0}")]
    Avp(#[from] AvpError),
    /// The body does not begin with a Message Type AVP (§4.4.1).
    #[error("the first AVP is not a Message Type AVP")]
    MissingMessageType,
    /// The Message Type AVP has the H bit set (§4.4.1: "may not be hidden").
    #[error("the Message Type AVP is hidden")]
    HiddenMessageType,
    /// A second Message Type AVP.
    #[error("a second Message Type AVP")]
    DuplicateMessageType,
    /// A Message Type this implementation does not know. With `mandatory` the tunnel
    /// MUST be cleared, otherwise the message may be ignored (§4.4.1).
    #[error("unknown message type {value} (M bit {mandatory})")]
    UnknownMessageType { value: u16, mandatory: bool },
    /// A typed AVP with a value of the wrong size (§4.4).
    #[error("bad length: {name} AVP ({attr_type}) with a {len}-byte value")]
    BadAvpLength {
        attr_type: u16,
        name: &'static str,
        len: usize,
    },
    /// A hidden AVP without a preceding Random Vector AVP (§4.3).
    #[error("hidden {name} AVP ({attr_type}) without a preceding Random Vector AVP")]
    HiddenWithoutRandomVector { attr_type: u16, name: &'static str },
    /// A hidden AVP, and no shared secret to unhide it (§4.3).
    #[error("hidden {name} AVP ({attr_type}) but no tunnel secret is configured")]
    HiddenWithoutSecret { attr_type: u16, name: &'static str },
    /// The hidden value does not decode (wrong secret, forged length).
    #[error("hidden {name} AVP ({attr_type}): {error}")]
    BadHiddenValue {
        attr_type: u16,
        name: &'static str,
        error: HiddenError,
    },
    /// A Random Vector AVP with the H bit set (§4.4.1: MUST NOT be hidden).
    #[error("the Random Vector AVP is hidden")]
    HiddenRandomVector,
    /// A mandatory AVP of the §6 table is missing.
    #[error("{message} without its mandatory {name} AVP ({attr_type}), RFC 2661 §{section}")]
    MissingMandatoryAvp {
        message: MessageType,
        attr_type: u16,
        name: &'static str,
        section: &'static str,
    },
    /// An unrecognised AVP with the M bit set: the tunnel or session MUST be terminated
    /// (§4.2), with general error 8.
    #[error("unknown AVP vendor {vendor_id} type {attr_type} with the M bit set")]
    UnknownMandatoryAvp { vendor_id: u16, attr_type: u16 },
    /// Emit: the message does not fit the 16-bit Length field.
    #[error("message of {len} bytes exceeds the L2TP Length field")]
    MessageTooLong { len: usize },
}

/// How to hide AVPs when emitting (RFC 2661 §4.3).
pub struct HidingPolicy<'a> {
    /// The tunnel's shared secret.
    pub secret: &'a [u8],
    /// IETF attribute types to hide (those the RFC forbids to hide are skipped).
    pub hide: &'a [u16],
    /// Fills the Random Vector (16 bytes); injectable so tests are deterministic.
    pub random: &'a mut dyn FnMut(&mut [u8]),
}

impl core::fmt::Debug for HidingPolicy<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HidingPolicy")
            .field("secret", &"<redacted>")
            .field("hide", &self.hide)
            .finish_non_exhaustive()
    }
}

/// Length of the Random Vector emitted by a [`HidingPolicy`] (§4.4.1 recommends at
/// least 16 octets).
pub const RANDOM_VECTOR_LEN: usize = 16;

/// An owned control message: its type and its AVPs in wire order (Message Type
/// excluded; Random Vector AVPs included where they were received).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ControlMessage {
    /// Message Type (§3.2).
    pub message_type: MessageType,
    /// The other AVPs, in order, unhidden.
    pub avps: Vec<Avp>,
}

macro_rules! getters {
    ($( $(#[$meta:meta])* $name:ident: $variant:ident => copy $ty:ty; )*) => {
        $(
            $(#[$meta])*
            pub fn $name(&self) -> Option<$ty> {
                self.avps.iter().find_map(|avp| match avp {
                    Avp::$variant(value) => Some(*value),
                    _ => None,
                })
            }
        )*
    };
}

macro_rules! ref_getters {
    ($( $(#[$meta:meta])* $name:ident: $variant:ident => $ty:ty; )*) => {
        $(
            $(#[$meta])*
            pub fn $name(&self) -> Option<&$ty> {
                self.avps.iter().find_map(|avp| match avp {
                    Avp::$variant(value) => Some(&value[..]),
                    _ => None,
                })
            }
        )*
    };
}

impl ControlMessage {
    /// A message without AVPs.
    pub const fn new(message_type: MessageType) -> ControlMessage {
        ControlMessage {
            message_type,
            avps: Vec::new(),
        }
    }

    /// Builder: append an AVP.
    pub fn with(mut self, avp: Avp) -> ControlMessage {
        self.avps.push(avp);
        self
    }

    /// Parse a message body (the L2TP payload of a control message, non-empty: an
    /// empty body is a ZLB, see [`ControlPacket`]). `secret` unhides hidden AVPs.
    pub fn parse(body: &[u8], secret: Option<&[u8]>) -> Result<ControlMessage, MessageError> {
        let mut iter = AvpIter::new(body);
        let first = match iter.next() {
            None => return Err(MessageError::MissingMessageType),
            Some(first) => first?,
        };
        // §4.4.1: the Message Type AVP MUST be the first AVP.
        if first.vendor_id() != 0 || first.attr_type() != MESSAGE_TYPE || first.reserved() != 0 {
            return Err(MessageError::MissingMessageType);
        }
        if first.hidden() {
            return Err(MessageError::HiddenMessageType);
        }
        let Some(Avp::MessageType(value)) = Avp::decode(MESSAGE_TYPE, first.value())? else {
            return Err(MessageError::MissingMessageType);
        };
        let message_type =
            MessageType::from_code(value).ok_or(MessageError::UnknownMessageType {
                value,
                mandatory: first.mandatory(),
            })?;

        let mut random_vector: Option<&[u8]> = None;
        let mut avps = Vec::new();
        for avp in iter {
            let avp = avp?;
            let attr = avp.attr_type();
            // §4.1: an AVP with reserved bits set is treated as unrecognised.
            let known = avp.vendor_id() == 0
                && avp.reserved() == 0
                && super::attr::attr_name(attr).is_some();
            if !known {
                avps.push(Avp::Unknown {
                    vendor_id: avp.vendor_id(),
                    attr_type: attr,
                    mandatory: avp.mandatory(),
                    hidden: avp.hidden(),
                    reserved: avp.reserved(),
                    value: avp.value().to_vec(),
                });
                continue;
            }
            match attr {
                MESSAGE_TYPE => return Err(MessageError::DuplicateMessageType),
                RANDOM_VECTOR => {
                    if avp.hidden() {
                        return Err(MessageError::HiddenRandomVector);
                    }
                    // §4.3: a hidden AVP uses the closest preceding Random Vector.
                    // Kept in place so that the message re-emits as received.
                    random_vector = Some(avp.value());
                    avps.push(Avp::RandomVector(avp.value().to_vec()));
                    continue;
                }
                _ => {}
            }
            let name = display_name(attr);
            let decoded = if avp.hidden() {
                let rv = random_vector.ok_or(MessageError::HiddenWithoutRandomVector {
                    attr_type: attr,
                    name,
                })?;
                let secret = secret.ok_or(MessageError::HiddenWithoutSecret {
                    attr_type: attr,
                    name,
                })?;
                let clear = hidden::unhide(attr, secret, rv, avp.value()).map_err(|error| {
                    MessageError::BadHiddenValue {
                        attr_type: attr,
                        name,
                        error,
                    }
                })?;
                Avp::decode(attr, &clear)?
            } else {
                Avp::decode(attr, avp.value())?
            };
            if let Some(decoded) = decoded {
                avps.push(decoded);
            }
        }
        Ok(ControlMessage { message_type, avps })
    }

    /// Append the message body to `out`, hiding per `hiding` (RFC 2661 §4.3).
    pub fn emit(
        &self,
        out: &mut Vec<u8>,
        mut hiding: Option<&mut HidingPolicy<'_>>,
    ) -> Result<(), MessageError> {
        Avp::MessageType(self.message_type.code()).emit(out)?;
        let mut random_vector: Option<Vec<u8>> = None;
        let mut value = Vec::new();
        for avp in &self.avps {
            if let Avp::RandomVector(rv) = avp {
                // §4.3: hidden AVPs after it use this vector; it is never hidden itself.
                avp.emit(out)?;
                random_vector = Some(rv.clone());
                continue;
            }
            let policy = hiding
                .as_deref_mut()
                .filter(|policy| avp.may_be_hidden() && policy.hide.contains(&avp.attr_type()));
            let Some(policy) = policy else {
                avp.emit(out)?;
                continue;
            };
            if random_vector.is_none() {
                let mut rv = [0u8; RANDOM_VECTOR_LEN];
                (policy.random)(&mut rv);
                Avp::RandomVector(rv.to_vec()).emit(out)?;
                random_vector = Some(rv.to_vec());
            }
            let rv = random_vector.as_deref().unwrap_or_default();
            value.clear();
            avp.write_value(&mut value);
            let hidden_value = hidden::hide(avp.attr_type(), policy.secret, rv, &value, &[]);
            push_header(
                out,
                avp.mandatory(),
                true,
                0,
                avp.attr_type(),
                hidden_value.len(),
            )?;
            out.extend_from_slice(&hidden_value);
        }
        Ok(())
    }

    /// The body as a new vector.
    pub fn to_bytes(&self, hiding: Option<&mut HidingPolicy<'_>>) -> Result<Vec<u8>, MessageError> {
        let mut out = Vec::new();
        self.emit(&mut out, hiding)?;
        Ok(out)
    }

    /// The first unrecognised AVP with the M bit set, as (vendor ID, attribute type):
    /// the tunnel (StopCCN) or session (CDN) MUST be terminated (§4.2), with result
    /// code 2 and general error 8.
    pub fn unknown_mandatory(&self) -> Option<(u16, u16)> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::Unknown {
                vendor_id,
                attr_type,
                mandatory: true,
                ..
            } => Some((*vendor_id, *attr_type)),
            _ => None,
        })
    }

    /// Whether a typed AVP of this attribute type is present.
    pub fn has(&self, attr_type: u16) -> bool {
        self.avps
            .iter()
            .any(|avp| !matches!(avp, Avp::Unknown { .. }) && avp.attr_type() == attr_type)
    }

    /// Check §4.2 and the §6 table: no unknown M-bit AVP, every mandatory AVP present.
    /// The first problem found is returned.
    pub fn validate(&self) -> Result<(), MessageError> {
        if let Some((vendor_id, attr_type)) = self.unknown_mandatory() {
            return Err(MessageError::UnknownMandatoryAvp {
                vendor_id,
                attr_type,
            });
        }
        for &attr_type in self.message_type.mandatory_avps() {
            if !self.has(attr_type) {
                return Err(MessageError::MissingMandatoryAvp {
                    message: self.message_type,
                    attr_type,
                    name: display_name(attr_type),
                    section: self.message_type.section(),
                });
            }
        }
        Ok(())
    }

    /// Result Code (StopCCN, CDN).
    pub fn result_code(&self) -> Option<&ResultCode> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::ResultCode(value) => Some(value),
            _ => None,
        })
    }

    /// Protocol Version as (version, revision).
    pub fn protocol_version(&self) -> Option<(u8, u8)> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::ProtocolVersion { version, revision } => Some((*version, *revision)),
            _ => None,
        })
    }

    /// Q.931 Cause Code (CDN).
    pub fn q931_cause(&self) -> Option<&Q931Cause> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::Q931CauseCode(value) => Some(value),
            _ => None,
        })
    }

    /// Challenge Response.
    pub fn challenge_response(&self) -> Option<&[u8; 16]> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::ChallengeResponse(value) => Some(value),
            _ => None,
        })
    }

    /// PPP Disconnect Cause Code (RFC 3145, CDN).
    pub fn ppp_disconnect_cause(&self) -> Option<&PppDisconnectCause> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::PppDisconnectCause(value) => Some(value),
            _ => None,
        })
    }

    /// Sequencing Required present (ICCN, OCCN).
    pub fn sequencing_required(&self) -> bool {
        self.has(SEQUENCING_REQUIRED)
    }

    getters! {
        /// Framing Capabilities (SCCRQ, SCCRP).
        framing_capabilities: FramingCapabilities => copy FramingMask;
        /// Bearer Capabilities (SCCRQ, SCCRP).
        bearer_capabilities: BearerCapabilities => copy BearerMask;
        /// Tie Breaker (SCCRQ).
        tie_breaker: TieBreaker => copy u64;
        /// Firmware Revision.
        firmware_revision: FirmwareRevision => copy u16;
        /// Assigned Tunnel ID (SCCRQ, SCCRP, StopCCN).
        assigned_tunnel_id: AssignedTunnelId => copy u16;
        /// Receive Window Size (SCCRQ, SCCRP); absent means 4 (§4.4.3).
        receive_window_size: ReceiveWindowSize => copy u16;
        /// Assigned Session ID (ICRQ, ICRP, OCRQ, OCRP, CDN).
        assigned_session_id: AssignedSessionId => copy u16;
        /// Call Serial Number (ICRQ, OCRQ).
        call_serial_number: CallSerialNumber => copy u32;
        /// Minimum BPS (OCRQ).
        minimum_bps: MinimumBps => copy u32;
        /// Maximum BPS (OCRQ).
        maximum_bps: MaximumBps => copy u32;
        /// Bearer Type (ICRQ, OCRQ).
        bearer_type: BearerType => copy BearerMask;
        /// Framing Type (ICCN, OCCN, OCRQ).
        framing_type: FramingType => copy FramingMask;
        /// (Tx) Connect Speed (ICCN, OCCN).
        tx_connect_speed: TxConnectSpeed => copy u32;
        /// Rx Connect Speed (ICCN, OCCN).
        rx_connect_speed: RxConnectSpeed => copy u32;
        /// Physical Channel ID (ICRQ, OCRP).
        physical_channel_id: PhysicalChannelId => copy u32;
        /// Proxy Authen Type (ICCN).
        proxy_authen_type: ProxyAuthenType => copy ProxyAuthenType;
        /// Proxy Authen ID (ICCN), the 16-bit field.
        proxy_authen_id: ProxyAuthenId => copy u16;
        /// Call Errors (WEN).
        call_errors: CallErrors => copy CallErrors;
        /// ACCM (SLI).
        accm: Accm => copy Accm;
    }

    ref_getters! {
        /// Host Name (SCCRQ, SCCRP).
        host_name: HostName => [u8];
        /// Vendor Name.
        vendor_name: VendorName => [u8];
        /// Challenge (SCCRQ, SCCRP).
        challenge: Challenge => [u8];
        /// Called Number (ICRQ, OCRQ).
        called_number: CalledNumber => [u8];
        /// Calling Number (ICRQ).
        calling_number: CallingNumber => [u8];
        /// Sub-Address (ICRQ, OCRQ).
        sub_address: SubAddress => [u8];
        /// Private Group ID (ICCN).
        private_group_id: PrivateGroupId => [u8];
        /// Initial Received LCP CONFREQ options (ICCN).
        initial_received_lcp_confreq: InitialReceivedLcpConfReq => [u8];
        /// Last Sent LCP CONFREQ options (ICCN).
        last_sent_lcp_confreq: LastSentLcpConfReq => [u8];
        /// Last Received LCP CONFREQ options (ICCN).
        last_received_lcp_confreq: LastReceivedLcpConfReq => [u8];
        /// Proxy Authen Name (ICCN).
        proxy_authen_name: ProxyAuthenName => [u8];
        /// Proxy Authen Challenge (ICCN).
        proxy_authen_challenge: ProxyAuthenChallenge => [u8];
        /// Proxy Authen Response (ICCN).
        proxy_authen_response: ProxyAuthenResponse => [u8];
    }
}

/// What follows a control header: a message, or nothing (a ZLB acknowledgement,
/// RFC 2661 §5.8, which takes no slot in the sequence space).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ControlBody {
    /// Zero-Length Body: header only.
    Zlb,
    /// A control message.
    Message(ControlMessage),
}

/// A whole control datagram: header fields and body.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ControlPacket {
    /// Tunnel ID of the recipient.
    pub tunnel_id: u16,
    /// Session ID of the recipient.
    pub session_id: u16,
    /// Ns.
    pub ns: u16,
    /// Nr.
    pub nr: u16,
    /// Message or ZLB.
    pub body: ControlBody,
}

impl ControlPacket {
    /// A ZLB acknowledgement.
    pub const fn zlb(tunnel_id: u16, session_id: u16, ns: u16, nr: u16) -> ControlPacket {
        ControlPacket {
            tunnel_id,
            session_id,
            ns,
            nr,
            body: ControlBody::Zlb,
        }
    }

    /// True for a ZLB.
    pub const fn is_zlb(&self) -> bool {
        matches!(self.body, ControlBody::Zlb)
    }

    /// The message, unless this is a ZLB.
    pub const fn message(&self) -> Option<&ControlMessage> {
        match &self.body {
            ControlBody::Zlb => None,
            ControlBody::Message(message) => Some(message),
        }
    }

    /// Parse an L2TP control datagram (the UDP payload). Bytes after the header's
    /// Length (UDP padding) are ignored.
    pub fn parse(datagram: &[u8], secret: Option<&[u8]>) -> Result<ControlPacket, MessageError> {
        let packet = Packet::new_checked(datagram)?;
        let header = HeaderRepr::parse(&packet)?;
        let HeaderKind::Control(Sequence { ns, nr }) = header.kind else {
            return Err(MessageError::NotControl);
        };
        let payload = packet.payload();
        let body = if payload.is_empty() {
            ControlBody::Zlb
        } else {
            ControlBody::Message(ControlMessage::parse(payload, secret)?)
        };
        Ok(ControlPacket {
            tunnel_id: header.tunnel_id,
            session_id: header.session_id,
            ns,
            nr,
            body,
        })
    }

    /// Emit the datagram.
    pub fn emit(&self, hiding: Option<&mut HidingPolicy<'_>>) -> Result<Vec<u8>, MessageError> {
        let body = match &self.body {
            ControlBody::Zlb => Vec::new(),
            ControlBody::Message(message) => message.to_bytes(hiding)?,
        };
        frame(self.tunnel_id, self.session_id, self.ns, self.nr, &body)
    }
}

/// Prefix an already-encoded body with a control header (for retransmissions, where
/// only Nr changes, §5.8).
pub fn frame(
    tunnel_id: u16,
    session_id: u16,
    ns: u16,
    nr: u16,
    body: &[u8],
) -> Result<Vec<u8>, MessageError> {
    let header = HeaderRepr::control(tunnel_id, session_id, ns, nr);
    let len = header.buffer_len() + body.len();
    if len > usize::from(u16::MAX) {
        return Err(MessageError::MessageTooLong { len });
    }
    let mut out = vec![0u8; header.buffer_len()];
    header.emit(&mut Packet::new_unchecked(&mut out[..]), body.len());
    out.extend_from_slice(body);
    Ok(out)
}

#[cfg(test)]
mod tests;

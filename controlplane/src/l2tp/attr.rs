//! Typed AVPs: every AVP of RFC 2661 §4.4 and the PPP Disconnect Cause Code AVP of
//! RFC 3145, as the [`Avp`] enum, with value decoding and encoding.
//!
//! Contract: [`Avp::decode`] takes a cleartext value (already unhidden) and either
//! returns the typed AVP, `Ok(None)` for an attribute it does not know, or
//! [`MessageError::BadAvpLength`] naming the AVP when the value has the wrong size.
//! Anything not recognised (another vendor, an unassigned IETF attribute, an AVP with
//! reserved bits set, RFC 2661 §4.1) is kept as [`Avp::Unknown`] by the message parser,
//! so a Broadband Forum (vendor 3561, RFC 5515) AVP never breaks a message.
//!
//! Range rules that are policy rather than format (a zero Assigned Tunnel ID, a zero
//! Receive Window Size, §5.8) are left to the state machines.

use super::message::MessageError;

/// IETF attribute types (vendor 0).
pub mod attr_type {
    /// §4.4.1
    pub const MESSAGE_TYPE: u16 = 0;
    /// §4.4.2
    pub const RESULT_CODE: u16 = 1;
    /// §4.4.3
    pub const PROTOCOL_VERSION: u16 = 2;
    /// §4.4.3
    pub const FRAMING_CAPABILITIES: u16 = 3;
    /// §4.4.3
    pub const BEARER_CAPABILITIES: u16 = 4;
    /// §4.4.3
    pub const TIE_BREAKER: u16 = 5;
    /// §4.4.3
    pub const FIRMWARE_REVISION: u16 = 6;
    /// §4.4.3
    pub const HOST_NAME: u16 = 7;
    /// §4.4.3
    pub const VENDOR_NAME: u16 = 8;
    /// §4.4.3
    pub const ASSIGNED_TUNNEL_ID: u16 = 9;
    /// §4.4.3
    pub const RECEIVE_WINDOW_SIZE: u16 = 10;
    /// §4.4.3
    pub const CHALLENGE: u16 = 11;
    /// §4.4.4
    pub const Q931_CAUSE_CODE: u16 = 12;
    /// §4.4.3
    pub const CHALLENGE_RESPONSE: u16 = 13;
    /// §4.4.4
    pub const ASSIGNED_SESSION_ID: u16 = 14;
    /// §4.4.4
    pub const CALL_SERIAL_NUMBER: u16 = 15;
    /// §4.4.4
    pub const MINIMUM_BPS: u16 = 16;
    /// §4.4.4
    pub const MAXIMUM_BPS: u16 = 17;
    /// §4.4.4
    pub const BEARER_TYPE: u16 = 18;
    /// §4.4.4
    pub const FRAMING_TYPE: u16 = 19;
    /// §4.4.4
    pub const CALLED_NUMBER: u16 = 21;
    /// §4.4.4
    pub const CALLING_NUMBER: u16 = 22;
    /// §4.4.4
    pub const SUB_ADDRESS: u16 = 23;
    /// §4.4.4
    pub const TX_CONNECT_SPEED: u16 = 24;
    /// §4.4.4
    pub const PHYSICAL_CHANNEL_ID: u16 = 25;
    /// §4.4.5
    pub const INITIAL_RECEIVED_LCP_CONFREQ: u16 = 26;
    /// §4.4.5
    pub const LAST_SENT_LCP_CONFREQ: u16 = 27;
    /// §4.4.5
    pub const LAST_RECEIVED_LCP_CONFREQ: u16 = 28;
    /// §4.4.5
    pub const PROXY_AUTHEN_TYPE: u16 = 29;
    /// §4.4.5
    pub const PROXY_AUTHEN_NAME: u16 = 30;
    /// §4.4.5
    pub const PROXY_AUTHEN_CHALLENGE: u16 = 31;
    /// §4.4.5
    pub const PROXY_AUTHEN_ID: u16 = 32;
    /// §4.4.5
    pub const PROXY_AUTHEN_RESPONSE: u16 = 33;
    /// §4.4.6
    pub const CALL_ERRORS: u16 = 34;
    /// §4.4.6
    pub const ACCM: u16 = 35;
    /// §4.4.1
    pub const RANDOM_VECTOR: u16 = 36;
    /// §4.4.4
    pub const PRIVATE_GROUP_ID: u16 = 37;
    /// §4.4.4
    pub const RX_CONNECT_SPEED: u16 = 38;
    /// §4.4.4
    pub const SEQUENCING_REQUIRED: u16 = 39;
    /// RFC 3145 §2
    pub const PPP_DISCONNECT_CAUSE_CODE: u16 = 46;
}

use attr_type as at;

/// Allowed value sizes.
#[derive(Debug, Clone, Copy)]
enum Size {
    Exact(usize),
    AtLeast(usize),
}

/// Name and value size of every known IETF attribute (RFC 2661 §4.4, RFC 3145 §2).
const fn spec(attr: u16) -> Option<(&'static str, Size)> {
    use Size::{AtLeast, Exact};
    Some(match attr {
        at::MESSAGE_TYPE => ("Message Type", Exact(2)),
        at::RESULT_CODE => ("Result Code", AtLeast(2)),
        at::PROTOCOL_VERSION => ("Protocol Version", Exact(2)),
        at::FRAMING_CAPABILITIES => ("Framing Capabilities", Exact(4)),
        at::BEARER_CAPABILITIES => ("Bearer Capabilities", Exact(4)),
        at::TIE_BREAKER => ("Tie Breaker", Exact(8)),
        at::FIRMWARE_REVISION => ("Firmware Revision", Exact(2)),
        // "MUST be at least 1 octet" (§4.4.3).
        at::HOST_NAME => ("Host Name", AtLeast(1)),
        at::VENDOR_NAME => ("Vendor Name", AtLeast(0)),
        at::ASSIGNED_TUNNEL_ID => ("Assigned Tunnel ID", Exact(2)),
        at::RECEIVE_WINDOW_SIZE => ("Receive Window Size", Exact(2)),
        // "one or more octets of random data" (§4.4.3).
        at::CHALLENGE => ("Challenge", AtLeast(1)),
        // Length 9 plus the advisory message (§4.4.4).
        at::Q931_CAUSE_CODE => ("Q.931 Cause Code", AtLeast(3)),
        at::CHALLENGE_RESPONSE => ("Challenge Response", Exact(16)),
        at::ASSIGNED_SESSION_ID => ("Assigned Session ID", Exact(2)),
        at::CALL_SERIAL_NUMBER => ("Call Serial Number", Exact(4)),
        at::MINIMUM_BPS => ("Minimum BPS", Exact(4)),
        at::MAXIMUM_BPS => ("Maximum BPS", Exact(4)),
        at::BEARER_TYPE => ("Bearer Type", Exact(4)),
        at::FRAMING_TYPE => ("Framing Type", Exact(4)),
        at::CALLED_NUMBER => ("Called Number", AtLeast(0)),
        at::CALLING_NUMBER => ("Calling Number", AtLeast(0)),
        at::SUB_ADDRESS => ("Sub-Address", AtLeast(0)),
        at::TX_CONNECT_SPEED => ("(Tx) Connect Speed", Exact(4)),
        at::PHYSICAL_CHANNEL_ID => ("Physical Channel ID", Exact(4)),
        at::INITIAL_RECEIVED_LCP_CONFREQ => ("Initial Received LCP CONFREQ", AtLeast(0)),
        at::LAST_SENT_LCP_CONFREQ => ("Last Sent LCP CONFREQ", AtLeast(0)),
        at::LAST_RECEIVED_LCP_CONFREQ => ("Last Received LCP CONFREQ", AtLeast(0)),
        at::PROXY_AUTHEN_TYPE => ("Proxy Authen Type", Exact(2)),
        at::PROXY_AUTHEN_NAME => ("Proxy Authen Name", AtLeast(0)),
        at::PROXY_AUTHEN_CHALLENGE => ("Proxy Authen Challenge", AtLeast(1)),
        at::PROXY_AUTHEN_ID => ("Proxy Authen ID", Exact(2)),
        at::PROXY_AUTHEN_RESPONSE => ("Proxy Authen Response", AtLeast(0)),
        // Reserved (2) + six 32-bit counters: Length 32 (§4.4.6).
        at::CALL_ERRORS => ("Call Errors", Exact(26)),
        // Reserved (2) + send + receive ACCM: Length 16 (§4.4.6).
        at::ACCM => ("ACCM", Exact(10)),
        at::RANDOM_VECTOR => ("Random Vector", AtLeast(0)),
        at::PRIVATE_GROUP_ID => ("Private Group ID", AtLeast(0)),
        at::RX_CONNECT_SPEED => ("Rx Connect Speed", Exact(4)),
        at::SEQUENCING_REQUIRED => ("Sequencing Required", Exact(0)),
        // Disconnect Code (2), Control Protocol Number (2), Direction (1): Length >= 11.
        at::PPP_DISCONNECT_CAUSE_CODE => ("PPP Disconnect Cause Code", AtLeast(5)),
        _ => return None,
    })
}

/// The name of an IETF (vendor 0) attribute this codec knows, `None` otherwise.
pub const fn attr_name(attr: u16) -> Option<&'static str> {
    match spec(attr) {
        Some((name, _)) => Some(name),
        None => None,
    }
}

/// The name of an attribute for messages: known names, else "unknown".
pub const fn display_name(attr: u16) -> &'static str {
    match attr_name(attr) {
        Some(name) => name,
        None => "unknown",
    }
}

/// Framing bits (Framing Capabilities and Framing Type, §4.4.3, §4.4.4). Other bits
/// are reserved and kept as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FramingMask(pub u32);

impl FramingMask {
    /// S: synchronous framing.
    pub const SYNC: u32 = 0x1;
    /// A: asynchronous framing.
    pub const ASYNC: u32 = 0x2;
    /// Synchronous framing set.
    pub const fn sync(self) -> bool {
        self.0 & Self::SYNC != 0
    }
    /// Asynchronous framing set.
    pub const fn asynchronous(self) -> bool {
        self.0 & Self::ASYNC != 0
    }
}

/// Bearer bits (Bearer Capabilities and Bearer Type, §4.4.3, §4.4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BearerMask(pub u32);

impl BearerMask {
    /// D: digital.
    pub const DIGITAL: u32 = 0x1;
    /// A: analog.
    pub const ANALOG: u32 = 0x2;
    /// Digital access set.
    pub const fn digital(self) -> bool {
        self.0 & Self::DIGITAL != 0
    }
    /// Analog access set.
    pub const fn analog(self) -> bool {
        self.0 & Self::ANALOG != 0
    }
}

/// Result Code AVP value (§4.4.2). The codes are kept raw because their meaning
/// depends on the message (StopCCN or CDN); see [`super::result`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResultCode {
    /// Result Code.
    pub result: u16,
    /// Error Code and Error Message, present when the AVP is longer than 8.
    pub error: Option<ErrorInfo>,
}

/// Optional part of a Result Code AVP.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ErrorInfo {
    /// Error Code (general error, §4.4.2).
    pub code: u16,
    /// Error Message (UTF-8 by the RFC; kept as received). Empty when absent.
    pub message: Vec<u8>,
}

impl ResultCode {
    /// A result code without error code.
    pub const fn new(result: u16) -> ResultCode {
        ResultCode {
            result,
            error: None,
        }
    }

    /// A result code with an error code and message.
    pub fn with_error(result: u16, code: u16, message: &str) -> ResultCode {
        ResultCode {
            result,
            error: Some(ErrorInfo {
                code,
                message: message.as_bytes().to_vec(),
            }),
        }
    }

    /// The result as a StopCCN code, if defined.
    pub const fn stop_ccn(&self) -> Option<super::result::StopCcnResult> {
        super::result::StopCcnResult::from_code(self.result)
    }

    /// The result as a CDN code, if defined.
    pub const fn cdn(&self) -> Option<super::result::CdnResult> {
        super::result::CdnResult::from_code(self.result)
    }

    /// The general error, if an Error Code is present and defined.
    pub fn general_error(&self) -> Option<super::result::GeneralError> {
        self.error
            .as_ref()
            .and_then(|e| super::result::GeneralError::from_code(e.code))
    }
}

/// Q.931 Cause Code AVP value (§4.4.4).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Q931Cause {
    /// Q.931 cause code.
    pub cause_code: u16,
    /// Q.931 message code.
    pub cause_msg: u8,
    /// Advisory message (may be empty).
    pub advisory: Vec<u8>,
}

/// Proxy Authen Type values (§4.4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProxyAuthenType {
    /// 1: textual username/password exchange.
    Textual,
    /// 2: PPP CHAP.
    Chap,
    /// 3: PPP PAP.
    Pap,
    /// 4: no authentication.
    NoAuthentication,
    /// 5: Microsoft CHAP version 1.
    MsChapV1,
    /// Any other value (0 is reserved), kept as received.
    Other(u16),
}

impl ProxyAuthenType {
    /// From the wire value.
    pub const fn from_code(code: u16) -> ProxyAuthenType {
        match code {
            1 => ProxyAuthenType::Textual,
            2 => ProxyAuthenType::Chap,
            3 => ProxyAuthenType::Pap,
            4 => ProxyAuthenType::NoAuthentication,
            5 => ProxyAuthenType::MsChapV1,
            other => ProxyAuthenType::Other(other),
        }
    }

    /// The wire value.
    pub const fn code(self) -> u16 {
        match self {
            ProxyAuthenType::Textual => 1,
            ProxyAuthenType::Chap => 2,
            ProxyAuthenType::Pap => 3,
            ProxyAuthenType::NoAuthentication => 4,
            ProxyAuthenType::MsChapV1 => 5,
            ProxyAuthenType::Other(other) => other,
        }
    }
}

/// Call Errors AVP value (§4.4.6); the reserved field is written as 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CallErrors {
    /// CRC errors.
    pub crc_errors: u32,
    /// Framing errors.
    pub framing_errors: u32,
    /// Hardware overruns.
    pub hardware_overruns: u32,
    /// Buffer overruns.
    pub buffer_overruns: u32,
    /// Time-out errors.
    pub timeout_errors: u32,
    /// Alignment errors.
    pub alignment_errors: u32,
}

/// ACCM AVP value (§4.4.6); the reserved field is written as 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Accm {
    /// Send ACCM.
    pub send: u32,
    /// Receive ACCM.
    pub receive: u32,
}

/// PPP Disconnect Cause Code AVP value (RFC 3145 §2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PppDisconnectCause {
    /// Disconnect Code (see [`super::result::PppDisconnectCode`]).
    pub code: u16,
    /// Control Protocol Number (0, or e.g. 0xc021 for LCP).
    pub protocol: u16,
    /// Direction (see [`super::result::PppDisconnectDirection`]).
    pub direction: u8,
    /// Descriptive text (UTF-8 by the RFC; kept as received).
    pub message: Vec<u8>,
}

/// One AVP (RFC 2661 §4.4, RFC 3145).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Avp {
    /// 0, §4.4.1. Raw value: the message layer types it.
    MessageType(u16),
    /// 1, §4.4.2.
    ResultCode(ResultCode),
    /// 2, §4.4.3 (1.0 for RFC 2661).
    ProtocolVersion { version: u8, revision: u8 },
    /// 3, §4.4.3.
    FramingCapabilities(FramingMask),
    /// 4, §4.4.3.
    BearerCapabilities(BearerMask),
    /// 5, §4.4.3.
    TieBreaker(u64),
    /// 6, §4.4.3.
    FirmwareRevision(u16),
    /// 7, §4.4.3 (at least one octet).
    HostName(Vec<u8>),
    /// 8, §4.4.3.
    VendorName(Vec<u8>),
    /// 9, §4.4.3.
    AssignedTunnelId(u16),
    /// 10, §4.4.3.
    ReceiveWindowSize(u16),
    /// 11, §4.4.3 (at least one octet).
    Challenge(Vec<u8>),
    /// 12, §4.4.4.
    Q931CauseCode(Q931Cause),
    /// 13, §4.4.3.
    ChallengeResponse([u8; 16]),
    /// 14, §4.4.4.
    AssignedSessionId(u16),
    /// 15, §4.4.4.
    CallSerialNumber(u32),
    /// 16, §4.4.4.
    MinimumBps(u32),
    /// 17, §4.4.4.
    MaximumBps(u32),
    /// 18, §4.4.4.
    BearerType(BearerMask),
    /// 19, §4.4.4.
    FramingType(FramingMask),
    /// 21, §4.4.4.
    CalledNumber(Vec<u8>),
    /// 22, §4.4.4.
    CallingNumber(Vec<u8>),
    /// 23, §4.4.4.
    SubAddress(Vec<u8>),
    /// 24, §4.4.4.
    TxConnectSpeed(u32),
    /// 25, §4.4.4.
    PhysicalChannelId(u32),
    /// 26, §4.4.5: LCP options of the initial CONFREQ received by the LAC.
    InitialReceivedLcpConfReq(Vec<u8>),
    /// 27, §4.4.5.
    LastSentLcpConfReq(Vec<u8>),
    /// 28, §4.4.5.
    LastReceivedLcpConfReq(Vec<u8>),
    /// 29, §4.4.5.
    ProxyAuthenType(ProxyAuthenType),
    /// 30, §4.4.5.
    ProxyAuthenName(Vec<u8>),
    /// 31, §4.4.5 (at least one octet).
    ProxyAuthenChallenge(Vec<u8>),
    /// 32, §4.4.5: the 16-bit field as received (the high octet MUST be 0; the PPP
    /// identifier is the low octet).
    ProxyAuthenId(u16),
    /// 33, §4.4.5.
    ProxyAuthenResponse(Vec<u8>),
    /// 34, §4.4.6.
    CallErrors(CallErrors),
    /// 35, §4.4.6.
    Accm(Accm),
    /// 36, §4.4.1. Kept in place by the message parser; hidden AVPs after it use it
    /// (§4.3). Emitting with a hiding policy adds one where none precedes a hidden AVP.
    RandomVector(Vec<u8>),
    /// 37, §4.4.4.
    PrivateGroupId(Vec<u8>),
    /// 38, §4.4.4.
    RxConnectSpeed(u32),
    /// 39, §4.4.4.
    SequencingRequired,
    /// 46, RFC 3145.
    PppDisconnectCause(PppDisconnectCause),
    /// Anything not recognised: another vendor, an unassigned attribute, or an AVP with
    /// reserved bits set (RFC 2661 §4.1). A hidden unknown AVP keeps its hidden value.
    Unknown {
        vendor_id: u16,
        attr_type: u16,
        /// M bit: when set the tunnel or session must be torn down (§4.2).
        mandatory: bool,
        hidden: bool,
        /// The four reserved header bits as received (0 unless the peer set them).
        reserved: u8,
        value: Vec<u8>,
    },
}

fn be16(v: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([v[at], v[at + 1]])
}

fn be32(v: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([v[at], v[at + 1], v[at + 2], v[at + 3]])
}

impl Avp {
    /// Decode the cleartext `value` of IETF attribute `attr`. `Ok(None)` when the
    /// attribute is not one this codec knows.
    pub fn decode(attr: u16, value: &[u8]) -> Result<Option<Avp>, MessageError> {
        let Some((name, size)) = spec(attr) else {
            return Ok(None);
        };
        let bad = || MessageError::BadAvpLength {
            attr_type: attr,
            name,
            len: value.len(),
        };
        match size {
            Size::Exact(n) if value.len() != n => return Err(bad()),
            Size::AtLeast(n) if value.len() < n => return Err(bad()),
            _ => {}
        }
        let v = value;
        let bytes = || v.to_vec();
        Ok(Some(match attr {
            at::MESSAGE_TYPE => Avp::MessageType(be16(v, 0)),
            at::RESULT_CODE => Avp::ResultCode(ResultCode {
                result: be16(v, 0),
                error: match v.len() {
                    2 => None,
                    // "8 if there is no Error Code or Message, 10 if there is an Error
                    // Code and no Error Message or 10 + the length" (§4.4.2).
                    3 => return Err(bad()),
                    _ => Some(ErrorInfo {
                        code: be16(v, 2),
                        message: v[4..].to_vec(),
                    }),
                },
            }),
            at::PROTOCOL_VERSION => Avp::ProtocolVersion {
                version: v[0],
                revision: v[1],
            },
            at::FRAMING_CAPABILITIES => Avp::FramingCapabilities(FramingMask(be32(v, 0))),
            at::BEARER_CAPABILITIES => Avp::BearerCapabilities(BearerMask(be32(v, 0))),
            at::TIE_BREAKER => Avp::TieBreaker(u64::from_be_bytes([
                v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7],
            ])),
            at::FIRMWARE_REVISION => Avp::FirmwareRevision(be16(v, 0)),
            at::HOST_NAME => Avp::HostName(bytes()),
            at::VENDOR_NAME => Avp::VendorName(bytes()),
            at::ASSIGNED_TUNNEL_ID => Avp::AssignedTunnelId(be16(v, 0)),
            at::RECEIVE_WINDOW_SIZE => Avp::ReceiveWindowSize(be16(v, 0)),
            at::CHALLENGE => Avp::Challenge(bytes()),
            at::Q931_CAUSE_CODE => Avp::Q931CauseCode(Q931Cause {
                cause_code: be16(v, 0),
                cause_msg: v[2],
                advisory: v[3..].to_vec(),
            }),
            at::CHALLENGE_RESPONSE => {
                let mut response = [0u8; 16];
                response.copy_from_slice(v);
                Avp::ChallengeResponse(response)
            }
            at::ASSIGNED_SESSION_ID => Avp::AssignedSessionId(be16(v, 0)),
            at::CALL_SERIAL_NUMBER => Avp::CallSerialNumber(be32(v, 0)),
            at::MINIMUM_BPS => Avp::MinimumBps(be32(v, 0)),
            at::MAXIMUM_BPS => Avp::MaximumBps(be32(v, 0)),
            at::BEARER_TYPE => Avp::BearerType(BearerMask(be32(v, 0))),
            at::FRAMING_TYPE => Avp::FramingType(FramingMask(be32(v, 0))),
            at::CALLED_NUMBER => Avp::CalledNumber(bytes()),
            at::CALLING_NUMBER => Avp::CallingNumber(bytes()),
            at::SUB_ADDRESS => Avp::SubAddress(bytes()),
            at::TX_CONNECT_SPEED => Avp::TxConnectSpeed(be32(v, 0)),
            at::PHYSICAL_CHANNEL_ID => Avp::PhysicalChannelId(be32(v, 0)),
            at::INITIAL_RECEIVED_LCP_CONFREQ => Avp::InitialReceivedLcpConfReq(bytes()),
            at::LAST_SENT_LCP_CONFREQ => Avp::LastSentLcpConfReq(bytes()),
            at::LAST_RECEIVED_LCP_CONFREQ => Avp::LastReceivedLcpConfReq(bytes()),
            at::PROXY_AUTHEN_TYPE => Avp::ProxyAuthenType(ProxyAuthenType::from_code(be16(v, 0))),
            at::PROXY_AUTHEN_NAME => Avp::ProxyAuthenName(bytes()),
            at::PROXY_AUTHEN_CHALLENGE => Avp::ProxyAuthenChallenge(bytes()),
            at::PROXY_AUTHEN_ID => Avp::ProxyAuthenId(be16(v, 0)),
            at::PROXY_AUTHEN_RESPONSE => Avp::ProxyAuthenResponse(bytes()),
            at::CALL_ERRORS => Avp::CallErrors(CallErrors {
                crc_errors: be32(v, 2),
                framing_errors: be32(v, 6),
                hardware_overruns: be32(v, 10),
                buffer_overruns: be32(v, 14),
                timeout_errors: be32(v, 18),
                alignment_errors: be32(v, 22),
            }),
            at::ACCM => Avp::Accm(Accm {
                send: be32(v, 2),
                receive: be32(v, 6),
            }),
            at::RANDOM_VECTOR => Avp::RandomVector(bytes()),
            at::PRIVATE_GROUP_ID => Avp::PrivateGroupId(bytes()),
            at::RX_CONNECT_SPEED => Avp::RxConnectSpeed(be32(v, 0)),
            at::SEQUENCING_REQUIRED => Avp::SequencingRequired,
            at::PPP_DISCONNECT_CAUSE_CODE => Avp::PppDisconnectCause(PppDisconnectCause {
                code: be16(v, 0),
                protocol: be16(v, 2),
                direction: v[4],
                message: v[5..].to_vec(),
            }),
            _ => return Ok(None),
        }))
    }

    /// Vendor ID (0 except for unknown vendor AVPs).
    pub const fn vendor_id(&self) -> u16 {
        match self {
            Avp::Unknown { vendor_id, .. } => *vendor_id,
            _ => 0,
        }
    }

    /// Attribute Type.
    pub const fn attr_type(&self) -> u16 {
        match self {
            Avp::MessageType(_) => at::MESSAGE_TYPE,
            Avp::ResultCode(_) => at::RESULT_CODE,
            Avp::ProtocolVersion { .. } => at::PROTOCOL_VERSION,
            Avp::FramingCapabilities(_) => at::FRAMING_CAPABILITIES,
            Avp::BearerCapabilities(_) => at::BEARER_CAPABILITIES,
            Avp::TieBreaker(_) => at::TIE_BREAKER,
            Avp::FirmwareRevision(_) => at::FIRMWARE_REVISION,
            Avp::HostName(_) => at::HOST_NAME,
            Avp::VendorName(_) => at::VENDOR_NAME,
            Avp::AssignedTunnelId(_) => at::ASSIGNED_TUNNEL_ID,
            Avp::ReceiveWindowSize(_) => at::RECEIVE_WINDOW_SIZE,
            Avp::Challenge(_) => at::CHALLENGE,
            Avp::Q931CauseCode(_) => at::Q931_CAUSE_CODE,
            Avp::ChallengeResponse(_) => at::CHALLENGE_RESPONSE,
            Avp::AssignedSessionId(_) => at::ASSIGNED_SESSION_ID,
            Avp::CallSerialNumber(_) => at::CALL_SERIAL_NUMBER,
            Avp::MinimumBps(_) => at::MINIMUM_BPS,
            Avp::MaximumBps(_) => at::MAXIMUM_BPS,
            Avp::BearerType(_) => at::BEARER_TYPE,
            Avp::FramingType(_) => at::FRAMING_TYPE,
            Avp::CalledNumber(_) => at::CALLED_NUMBER,
            Avp::CallingNumber(_) => at::CALLING_NUMBER,
            Avp::SubAddress(_) => at::SUB_ADDRESS,
            Avp::TxConnectSpeed(_) => at::TX_CONNECT_SPEED,
            Avp::PhysicalChannelId(_) => at::PHYSICAL_CHANNEL_ID,
            Avp::InitialReceivedLcpConfReq(_) => at::INITIAL_RECEIVED_LCP_CONFREQ,
            Avp::LastSentLcpConfReq(_) => at::LAST_SENT_LCP_CONFREQ,
            Avp::LastReceivedLcpConfReq(_) => at::LAST_RECEIVED_LCP_CONFREQ,
            Avp::ProxyAuthenType(_) => at::PROXY_AUTHEN_TYPE,
            Avp::ProxyAuthenName(_) => at::PROXY_AUTHEN_NAME,
            Avp::ProxyAuthenChallenge(_) => at::PROXY_AUTHEN_CHALLENGE,
            Avp::ProxyAuthenId(_) => at::PROXY_AUTHEN_ID,
            Avp::ProxyAuthenResponse(_) => at::PROXY_AUTHEN_RESPONSE,
            Avp::CallErrors(_) => at::CALL_ERRORS,
            Avp::Accm(_) => at::ACCM,
            Avp::RandomVector(_) => at::RANDOM_VECTOR,
            Avp::PrivateGroupId(_) => at::PRIVATE_GROUP_ID,
            Avp::RxConnectSpeed(_) => at::RX_CONNECT_SPEED,
            Avp::SequencingRequired => at::SEQUENCING_REQUIRED,
            Avp::PppDisconnectCause(_) => at::PPP_DISCONNECT_CAUSE_CODE,
            Avp::Unknown { attr_type, .. } => *attr_type,
        }
    }

    /// The M bit this AVP is sent with: as RFC 2661 §4.4 (and RFC 3145 §2) prescribe
    /// for each attribute, as received for unknown AVPs.
    pub const fn mandatory(&self) -> bool {
        match self {
            Avp::Unknown { mandatory, .. } => *mandatory,
            Avp::TieBreaker(_)
            | Avp::FirmwareRevision(_)
            | Avp::VendorName(_)
            | Avp::PhysicalChannelId(_)
            | Avp::InitialReceivedLcpConfReq(_)
            | Avp::LastSentLcpConfReq(_)
            | Avp::LastReceivedLcpConfReq(_)
            | Avp::ProxyAuthenType(_)
            | Avp::ProxyAuthenName(_)
            | Avp::ProxyAuthenChallenge(_)
            | Avp::ProxyAuthenId(_)
            | Avp::ProxyAuthenResponse(_)
            | Avp::PrivateGroupId(_)
            | Avp::RxConnectSpeed(_)
            | Avp::PppDisconnectCause(_) => false,
            _ => true,
        }
    }

    /// Whether RFC 2661 §4.4 allows the H bit on this AVP. Hiding policies skip the
    /// others.
    pub const fn may_be_hidden(&self) -> bool {
        !matches!(
            self,
            Avp::MessageType(_)
                | Avp::RandomVector(_)
                | Avp::ResultCode(_)
                | Avp::ProtocolVersion { .. }
                | Avp::TieBreaker(_)
                | Avp::HostName(_)
                | Avp::ReceiveWindowSize(_)
                | Avp::Q931CauseCode(_)
                | Avp::SequencingRequired
                | Avp::Unknown { .. }
        )
    }

    /// The name of the AVP.
    pub const fn name(&self) -> &'static str {
        match self {
            Avp::Unknown { .. } => "unknown",
            other => display_name(other.attr_type()),
        }
    }

    /// Append the cleartext Attribute Value.
    pub fn write_value(&self, out: &mut Vec<u8>) {
        match self {
            Avp::MessageType(v)
            | Avp::FirmwareRevision(v)
            | Avp::AssignedTunnelId(v)
            | Avp::ReceiveWindowSize(v)
            | Avp::AssignedSessionId(v)
            | Avp::ProxyAuthenId(v) => out.extend_from_slice(&v.to_be_bytes()),
            Avp::ResultCode(r) => {
                out.extend_from_slice(&r.result.to_be_bytes());
                if let Some(error) = &r.error {
                    out.extend_from_slice(&error.code.to_be_bytes());
                    out.extend_from_slice(&error.message);
                }
            }
            Avp::ProtocolVersion { version, revision } => {
                out.extend_from_slice(&[*version, *revision])
            }
            Avp::FramingCapabilities(FramingMask(v))
            | Avp::FramingType(FramingMask(v))
            | Avp::BearerCapabilities(BearerMask(v))
            | Avp::BearerType(BearerMask(v))
            | Avp::CallSerialNumber(v)
            | Avp::MinimumBps(v)
            | Avp::MaximumBps(v)
            | Avp::TxConnectSpeed(v)
            | Avp::PhysicalChannelId(v)
            | Avp::RxConnectSpeed(v) => out.extend_from_slice(&v.to_be_bytes()),
            Avp::TieBreaker(v) => out.extend_from_slice(&v.to_be_bytes()),
            Avp::HostName(v)
            | Avp::VendorName(v)
            | Avp::Challenge(v)
            | Avp::CalledNumber(v)
            | Avp::CallingNumber(v)
            | Avp::SubAddress(v)
            | Avp::InitialReceivedLcpConfReq(v)
            | Avp::LastSentLcpConfReq(v)
            | Avp::LastReceivedLcpConfReq(v)
            | Avp::ProxyAuthenName(v)
            | Avp::ProxyAuthenChallenge(v)
            | Avp::ProxyAuthenResponse(v)
            | Avp::RandomVector(v)
            | Avp::PrivateGroupId(v) => out.extend_from_slice(v),
            Avp::Unknown { value, .. } => out.extend_from_slice(value),
            Avp::Q931CauseCode(q) => {
                out.extend_from_slice(&q.cause_code.to_be_bytes());
                out.push(q.cause_msg);
                out.extend_from_slice(&q.advisory);
            }
            Avp::ChallengeResponse(v) => out.extend_from_slice(v),
            Avp::ProxyAuthenType(t) => out.extend_from_slice(&t.code().to_be_bytes()),
            Avp::CallErrors(c) => {
                out.extend_from_slice(&[0, 0]);
                for counter in [
                    c.crc_errors,
                    c.framing_errors,
                    c.hardware_overruns,
                    c.buffer_overruns,
                    c.timeout_errors,
                    c.alignment_errors,
                ] {
                    out.extend_from_slice(&counter.to_be_bytes());
                }
            }
            Avp::Accm(a) => {
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&a.send.to_be_bytes());
                out.extend_from_slice(&a.receive.to_be_bytes());
            }
            Avp::SequencingRequired => {}
            Avp::PppDisconnectCause(p) => {
                out.extend_from_slice(&p.code.to_be_bytes());
                out.extend_from_slice(&p.protocol.to_be_bytes());
                out.push(p.direction);
                out.extend_from_slice(&p.message);
            }
        }
    }

    /// Append the whole AVP in cleartext (H=0 unless an unknown AVP was received
    /// hidden).
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), MessageError> {
        let mut value = Vec::new();
        self.write_value(&mut value);
        let (hidden, reserved) = match self {
            Avp::Unknown {
                hidden, reserved, ..
            } => (*hidden, *reserved),
            _ => (false, 0),
        };
        super::avp::push_header_reserved(
            out,
            self.mandatory(),
            hidden,
            reserved,
            self.vendor_id(),
            self.attr_type(),
            value.len(),
        )?;
        out.extend_from_slice(&value);
        Ok(())
    }
}

//! The RADIUS packet (RFC 2865 §3), its attributes (RFC 2865 §5), Vendor-Specific
//! sub-attributes (RFC 2865 §5.26) and the RADIUS crypto: Request and Response
//! Authenticators (RFC 2865 §3, RFC 2866 §3, RFC 5176 §2.3), User-Password hiding
//! (RFC 2865 §5.2), the salted encryption of Tunnel-Password (RFC 2868 §3.5) and
//! MS-MPPE-Send/Recv-Key (RFC 2548 §2.4.2), and Message-Authenticator (RFC 2869 §5.14,
//! RFC 5176 §3.4).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Code      |  Identifier   |            Length             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         Authenticator (16)                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Attributes: Type (1), Length (1, >= 2), Value ...
//! ```
//!
//! The Length field is between 20 and 4096; octets beyond it are padding and ignored;
//! a packet shorter than its Length is an error (RFC 2865 §3).
//!
//! Contract: once [`Packet::new_checked`] (or [`Packet::check_len`]) has succeeded, no
//! accessor panics. [`AttributeIter`] and [`VendorIter`] yield an error, never panic, on
//! a malformed attribute and stop after it. Bytes from a peer never panic anything.
//!
//! Signing and verification work on whole encoded packets: [`sign_request`] and
//! [`sign_response`] fill in Message-Authenticator (when the packet carries one) and the
//! authenticator; [`verify_response`] and [`verify_request`] check them.

use md5::{Digest, Md5};

/// Errors of the RADIUS codec and crypto.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The buffer ends before the header or a field does.
    #[error("truncated: {what} needs {needed} octets, {available} available")]
    Truncated {
        what: &'static str,
        needed: usize,
        available: usize,
    },
    /// The Length field is below 20, above 4096, or beyond the buffer (RFC 2865 §3).
    #[error("bad packet length {length} (buffer {available})")]
    BadLength { length: usize, available: usize },
    /// An attribute's Length octet is below 2 or runs past the packet (RFC 2865 §5).
    #[error("attribute type {kind}: bad length {length}")]
    BadAttributeLength { kind: u8, length: u8 },
    /// A Vendor-Specific attribute shorter than its Vendor-Id, or whose sub-attribute
    /// lengths do not add up (RFC 2865 §5.26).
    #[error("malformed Vendor-Specific attribute")]
    BadVendorSpecific,
    /// A value too long for one attribute (253 octets, RFC 2865 §5) or a packet too long
    /// for 4096 octets, when emitting.
    #[error("{what} too long: {length} octets")]
    TooLong { what: &'static str, length: usize },
    /// A value of the wrong size for its type (an address that is not 4 octets, ...).
    #[error("attribute type {kind}: bad value of {length} octets")]
    BadValue { kind: u8, length: usize },
    /// A hidden or encrypted value whose length is not a multiple of 16 or whose
    /// embedded length runs past it (RFC 2865 §5.2, RFC 2868 §3.5).
    #[error("bad encrypted value")]
    BadEncryptedValue,
    /// A response (or a request that must carry one) without Message-Authenticator
    /// (RFC 2869 §5.14; BlastRADIUS, CVE-2024-3596).
    #[error("Message-Authenticator missing")]
    MissingMessageAuthenticator,
    /// Message-Authenticator present but wrong, not 16 octets, or present twice.
    #[error("Message-Authenticator invalid")]
    BadMessageAuthenticator,
    /// The Response or Request Authenticator does not match the shared secret.
    #[error("authenticator invalid")]
    BadAuthenticator,
}

/// Result of this module.
pub type Result<T> = core::result::Result<T, Error>;

mod field {
    use core::ops::Range;
    pub const CODE: usize = 0;
    pub const IDENTIFIER: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const AUTHENTICATOR: Range<usize> = 4..20;
    pub const HEADER_LEN: usize = 20;

    pub const ATTR_TYPE: usize = 0;
    pub const ATTR_LENGTH: usize = 1;
    pub const ATTR_HEADER_LEN: usize = 2;

    pub const VENDOR_ID: Range<usize> = 0..4;
    pub const VENDOR_DATA: usize = 4;
}

/// Length of the header (Code, Identifier, Length, Authenticator).
pub const HEADER_LEN: usize = field::HEADER_LEN;
/// Largest packet (RFC 2865 §3).
pub const MAX_PACKET_LEN: usize = 4096;
/// Largest attribute value (RFC 2865 §5: Length is one octet and covers the header).
pub const MAX_VALUE_LEN: usize = 253;
/// Length of an Authenticator and of a Message-Authenticator value.
pub const AUTHENTICATOR_LEN: usize = 16;

/// Attribute types used by xlns (RFC 2865 §5, RFC 2866 §5, RFC 2868 §3, RFC 2869 §5,
/// RFC 3162 §2, RFC 4818 §3, RFC 5176 §3.5, RFC 6911 §3).
pub mod attr {
    pub const USER_NAME: u8 = 1;
    pub const USER_PASSWORD: u8 = 2;
    pub const CHAP_PASSWORD: u8 = 3;
    pub const NAS_IP_ADDRESS: u8 = 4;
    pub const NAS_PORT: u8 = 5;
    pub const SERVICE_TYPE: u8 = 6;
    pub const FRAMED_PROTOCOL: u8 = 7;
    pub const FRAMED_IP_ADDRESS: u8 = 8;
    pub const FRAMED_IP_NETMASK: u8 = 9;
    pub const FRAMED_MTU: u8 = 12;
    pub const REPLY_MESSAGE: u8 = 18;
    pub const FRAMED_ROUTE: u8 = 22;
    pub const STATE: u8 = 24;
    pub const CLASS: u8 = 25;
    pub const VENDOR_SPECIFIC: u8 = 26;
    pub const SESSION_TIMEOUT: u8 = 27;
    pub const IDLE_TIMEOUT: u8 = 28;
    pub const CALLED_STATION_ID: u8 = 30;
    pub const CALLING_STATION_ID: u8 = 31;
    pub const NAS_IDENTIFIER: u8 = 32;
    pub const PROXY_STATE: u8 = 33;
    pub const ACCT_STATUS_TYPE: u8 = 40;
    pub const ACCT_DELAY_TIME: u8 = 41;
    pub const ACCT_INPUT_OCTETS: u8 = 42;
    pub const ACCT_OUTPUT_OCTETS: u8 = 43;
    pub const ACCT_SESSION_ID: u8 = 44;
    pub const ACCT_AUTHENTIC: u8 = 45;
    pub const ACCT_SESSION_TIME: u8 = 46;
    pub const ACCT_INPUT_PACKETS: u8 = 47;
    pub const ACCT_OUTPUT_PACKETS: u8 = 48;
    pub const ACCT_TERMINATE_CAUSE: u8 = 49;
    pub const ACCT_INPUT_GIGAWORDS: u8 = 52;
    pub const ACCT_OUTPUT_GIGAWORDS: u8 = 53;
    pub const EVENT_TIMESTAMP: u8 = 55;
    pub const CHAP_CHALLENGE: u8 = 60;
    pub const NAS_PORT_TYPE: u8 = 61;
    pub const TUNNEL_TYPE: u8 = 64;
    pub const TUNNEL_MEDIUM_TYPE: u8 = 65;
    pub const TUNNEL_CLIENT_ENDPOINT: u8 = 66;
    pub const TUNNEL_SERVER_ENDPOINT: u8 = 67;
    pub const TUNNEL_PASSWORD: u8 = 69;
    pub const CONNECT_INFO: u8 = 77;
    pub const MESSAGE_AUTHENTICATOR: u8 = 80;
    pub const TUNNEL_ASSIGNMENT_ID: u8 = 82;
    pub const ACCT_INTERIM_INTERVAL: u8 = 85;
    pub const NAS_PORT_ID: u8 = 87;
    pub const FRAMED_POOL: u8 = 88;
    pub const TUNNEL_CLIENT_AUTH_ID: u8 = 90;
    pub const TUNNEL_SERVER_AUTH_ID: u8 = 91;
    pub const NAS_IPV6_ADDRESS: u8 = 95;
    pub const FRAMED_IPV6_PREFIX: u8 = 97;
    pub const FRAMED_IPV6_ROUTE: u8 = 99;
    pub const ERROR_CAUSE: u8 = 101;
    pub const DELEGATED_IPV6_PREFIX: u8 = 123;
    pub const DNS_SERVER_IPV6_ADDRESS: u8 = 169;
}

/// Microsoft vendor attributes (RFC 2548 §2), Vendor-Id 311.
pub mod ms {
    pub const VENDOR_ID: u32 = 311;
    pub const CHAP_ERROR: u8 = 2;
    pub const MPPE_ENCRYPTION_POLICY: u8 = 7;
    pub const MPPE_ENCRYPTION_TYPES: u8 = 8;
    pub const CHAP_CHALLENGE: u8 = 11;
    pub const MPPE_SEND_KEY: u8 = 16;
    pub const MPPE_RECV_KEY: u8 = 17;
    pub const CHAP2_RESPONSE: u8 = 25;
    pub const CHAP2_SUCCESS: u8 = 26;
    pub const PRIMARY_DNS_SERVER: u8 = 28;
    pub const SECONDARY_DNS_SERVER: u8 = 29;
}

/// The Code field (RFC 2865 §3, RFC 2866 §3, RFC 5176 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    AccessRequest,
    AccessAccept,
    AccessReject,
    AccountingRequest,
    AccountingResponse,
    AccessChallenge,
    StatusServer,
    DisconnectRequest,
    DisconnectAck,
    DisconnectNak,
    CoaRequest,
    CoaAck,
    CoaNak,
    Unknown(u8),
}

impl From<u8> for Code {
    fn from(value: u8) -> Code {
        match value {
            1 => Code::AccessRequest,
            2 => Code::AccessAccept,
            3 => Code::AccessReject,
            4 => Code::AccountingRequest,
            5 => Code::AccountingResponse,
            11 => Code::AccessChallenge,
            12 => Code::StatusServer,
            40 => Code::DisconnectRequest,
            41 => Code::DisconnectAck,
            42 => Code::DisconnectNak,
            43 => Code::CoaRequest,
            44 => Code::CoaAck,
            45 => Code::CoaNak,
            other => Code::Unknown(other),
        }
    }
}

impl From<Code> for u8 {
    fn from(code: Code) -> u8 {
        match code {
            Code::AccessRequest => 1,
            Code::AccessAccept => 2,
            Code::AccessReject => 3,
            Code::AccountingRequest => 4,
            Code::AccountingResponse => 5,
            Code::AccessChallenge => 11,
            Code::StatusServer => 12,
            Code::DisconnectRequest => 40,
            Code::DisconnectAck => 41,
            Code::DisconnectNak => 42,
            Code::CoaRequest => 43,
            Code::CoaAck => 44,
            Code::CoaNak => 45,
            Code::Unknown(other) => other,
        }
    }
}

impl Code {
    /// Whether the Request Authenticator of this request code is random (Access-Request,
    /// Status-Server, RFC 2865 §3) rather than an MD5 over the packet with the secret
    /// (Accounting-Request RFC 2866 §3, CoA/Disconnect-Request RFC 5176 §2.3).
    pub const fn has_random_authenticator(self) -> bool {
        matches!(self, Code::AccessRequest | Code::StatusServer)
    }

    /// Whether `response` is a valid answer to a request of this code.
    pub const fn accepts_response(self, response: Code) -> bool {
        matches!(
            (self, response),
            (
                Code::AccessRequest,
                Code::AccessAccept | Code::AccessReject | Code::AccessChallenge
            ) | (Code::AccountingRequest, Code::AccountingResponse)
                | (
                    Code::StatusServer,
                    Code::AccessAccept | Code::AccountingResponse
                )
                | (
                    Code::DisconnectRequest,
                    Code::DisconnectAck | Code::DisconnectNak
                )
                | (Code::CoaRequest, Code::CoaAck | Code::CoaNak)
        )
    }
}

/// A read/write view of a RADIUS packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap a buffer without checks.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wrap a buffer and [`check_len`](Self::check_len) it.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Packet::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Check that the header fits and that the Length field is within 20..=4096 and
    /// within the buffer (RFC 2865 §3). Afterwards no accessor panics.
    pub fn check_len(&self) -> Result<()> {
        let data = self.buffer.as_ref();
        if data.len() < field::HEADER_LEN {
            return Err(Error::Truncated {
                what: "RADIUS header",
                needed: field::HEADER_LEN,
                available: data.len(),
            });
        }
        let length = usize::from(u16::from_be_bytes([data[2], data[3]]));
        if !(field::HEADER_LEN..=MAX_PACKET_LEN).contains(&length) || length > data.len() {
            return Err(Error::BadLength {
                length,
                available: data.len(),
            });
        }
        Ok(())
    }

    /// Consume the view.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The Code field.
    pub fn code(&self) -> Code {
        Code::from(self.buffer.as_ref()[field::CODE])
    }

    /// The Identifier field.
    pub fn identifier(&self) -> u8 {
        self.buffer.as_ref()[field::IDENTIFIER]
    }

    /// The Length field.
    pub fn length(&self) -> u16 {
        let d = &self.buffer.as_ref()[field::LENGTH];
        u16::from_be_bytes([d[0], d[1]])
    }

    /// The Authenticator field.
    pub fn authenticator(&self) -> [u8; AUTHENTICATOR_LEN] {
        let mut out = [0; AUTHENTICATOR_LEN];
        out.copy_from_slice(&self.buffer.as_ref()[field::AUTHENTICATOR]);
        out
    }

    /// The packet up to its Length (padding excluded).
    pub fn packet_bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[..usize::from(self.length())]
    }

    /// The attribute octets (after the header, up to Length).
    pub fn attribute_bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[field::HEADER_LEN..usize::from(self.length())]
    }

    /// An iterator over the attributes.
    pub fn attributes(&self) -> AttributeIter<'_> {
        AttributeIter::new(self.attribute_bytes())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set the Code field.
    pub fn set_code(&mut self, code: Code) {
        self.buffer.as_mut()[field::CODE] = code.into();
    }

    /// Set the Identifier field.
    pub fn set_identifier(&mut self, identifier: u8) {
        self.buffer.as_mut()[field::IDENTIFIER] = identifier;
    }

    /// Set the Length field.
    pub fn set_length(&mut self, length: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&length.to_be_bytes());
    }

    /// Set the Authenticator field.
    pub fn set_authenticator(&mut self, authenticator: &[u8; AUTHENTICATOR_LEN]) {
        self.buffer.as_mut()[field::AUTHENTICATOR].copy_from_slice(authenticator);
    }
}

/// One attribute as it appears in a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawAttribute<'a> {
    /// The Type octet.
    pub kind: u8,
    /// The value (Length - 2 octets).
    pub value: &'a [u8],
}

/// An iterator over Type-Length-Value attributes (RFC 2865 §5). Yields an error on an
/// attribute whose Length is below 2 or runs past the data, and stops after it.
#[derive(Debug, Clone)]
pub struct AttributeIter<'a> {
    data: &'a [u8],
    failed: bool,
}

impl<'a> AttributeIter<'a> {
    /// Iterate over `data` (the attribute area of a packet).
    pub const fn new(data: &'a [u8]) -> AttributeIter<'a> {
        AttributeIter {
            data,
            failed: false,
        }
    }
}

impl<'a> Iterator for AttributeIter<'a> {
    type Item = Result<RawAttribute<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.data.is_empty() {
            return None;
        }
        let kind = self.data[field::ATTR_TYPE];
        let Some(&length) = self.data.get(field::ATTR_LENGTH) else {
            self.failed = true;
            return Some(Err(Error::BadAttributeLength { kind, length: 0 }));
        };
        let len = usize::from(length);
        if len < field::ATTR_HEADER_LEN || len > self.data.len() {
            self.failed = true;
            return Some(Err(Error::BadAttributeLength { kind, length }));
        }
        let value = &self.data[field::ATTR_HEADER_LEN..len];
        self.data = &self.data[len..];
        Some(Ok(RawAttribute { kind, value }))
    }
}

/// One Vendor-Specific sub-attribute (RFC 2865 §5.26, the suggested format: one-octet
/// vendor type, one-octet vendor length covering both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VendorAttribute<'a> {
    /// The vendor type.
    pub kind: u8,
    /// The value.
    pub value: &'a [u8],
}

/// The sub-attributes of one Vendor-Specific attribute.
#[derive(Debug, Clone)]
pub struct VendorIter<'a> {
    inner: AttributeIter<'a>,
}

impl<'a> Iterator for VendorIter<'a> {
    type Item = Result<VendorAttribute<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|r| {
            r.map(|a| VendorAttribute {
                kind: a.kind,
                value: a.value,
            })
            .map_err(|_| Error::BadVendorSpecific)
        })
    }
}

/// Split a Vendor-Specific value (RFC 2865 §5.26) into its Vendor-Id and an iterator
/// over its sub-attributes (valid for vendors using the suggested 1/1 format, which the
/// ones xlns reads do).
pub fn parse_vendor_specific(value: &[u8]) -> Result<(u32, VendorIter<'_>)> {
    let Some(id) = value.get(field::VENDOR_ID) else {
        return Err(Error::BadVendorSpecific);
    };
    let vendor = u32::from_be_bytes([id[0], id[1], id[2], id[3]]);
    Ok((
        vendor,
        VendorIter {
            inner: AttributeIter::new(&value[field::VENDOR_DATA..]),
        },
    ))
}

/// An owned attribute.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Attribute {
    /// The Type octet.
    pub kind: u8,
    /// The value, at most 253 octets.
    pub value: Vec<u8>,
}

impl Attribute {
    /// An attribute with any value.
    pub fn new(kind: u8, value: impl Into<Vec<u8>>) -> Attribute {
        Attribute {
            kind,
            value: value.into(),
        }
    }

    /// A 32-bit integer attribute (RFC 2865 §5: integer, big endian).
    pub fn integer(kind: u8, value: u32) -> Attribute {
        Attribute::new(kind, value.to_be_bytes())
    }

    /// An IPv4 address attribute.
    pub fn ipv4(kind: u8, address: std::net::Ipv4Addr) -> Attribute {
        Attribute::new(kind, address.octets())
    }

    /// A Vendor-Specific attribute carrying one sub-attribute (RFC 2865 §5.26).
    pub fn vendor(vendor: u32, kind: u8, value: &[u8]) -> Attribute {
        let mut v = Vec::with_capacity(6 + value.len());
        v.extend_from_slice(&vendor.to_be_bytes());
        v.push(kind);
        // The length octet saturates; `emit` rejects the whole attribute when too long.
        v.push(u8::try_from(value.len() + 2).unwrap_or(u8::MAX));
        v.extend_from_slice(value);
        Attribute::new(attr::VENDOR_SPECIFIC, v)
    }

    /// The value as a 32-bit integer, if it is 4 octets.
    pub fn as_u32(&self) -> Option<u32> {
        <[u8; 4]>::try_from(self.value.as_slice())
            .ok()
            .map(u32::from_be_bytes)
    }

    /// Length on the wire.
    pub fn buffer_len(&self) -> usize {
        field::ATTR_HEADER_LEN + self.value.len()
    }
}

/// An owned RADIUS packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repr {
    pub code: Code,
    pub identifier: u8,
    pub authenticator: [u8; AUTHENTICATOR_LEN],
    pub attributes: Vec<Attribute>,
}

impl Repr {
    /// Parse a checked packet; every attribute must be well formed.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        let attributes = packet
            .attributes()
            .map(|a| a.map(|a| Attribute::new(a.kind, a.value)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Repr {
            code: packet.code(),
            identifier: packet.identifier(),
            authenticator: packet.authenticator(),
            attributes,
        })
    }

    /// Check and parse `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Repr> {
        Repr::parse(&Packet::new_checked(bytes)?)
    }

    /// Length on the wire.
    pub fn buffer_len(&self) -> usize {
        field::HEADER_LEN
            + self
                .attributes
                .iter()
                .map(Attribute::buffer_len)
                .sum::<usize>()
    }

    /// Emit into `buffer` (at least [`buffer_len`](Self::buffer_len) octets). Fails,
    /// writing nothing, when a value exceeds 253 octets or the packet 4096.
    pub fn emit(&self, buffer: &mut [u8]) -> Result<()> {
        let len = self.buffer_len();
        if len > MAX_PACKET_LEN {
            return Err(Error::TooLong {
                what: "packet",
                length: len,
            });
        }
        if let Some(a) = self
            .attributes
            .iter()
            .find(|a| a.value.len() > MAX_VALUE_LEN)
        {
            return Err(Error::TooLong {
                what: "attribute value",
                length: a.value.len(),
            });
        }
        if buffer.len() < len {
            return Err(Error::Truncated {
                what: "output buffer",
                needed: len,
                available: buffer.len(),
            });
        }
        let mut packet = Packet::new_unchecked(&mut buffer[..]);
        packet.set_code(self.code);
        packet.set_identifier(self.identifier);
        // Fits: len <= 4096 was checked above.
        packet.set_length(len as u16);
        packet.set_authenticator(&self.authenticator);
        let mut at = field::HEADER_LEN;
        for a in &self.attributes {
            buffer[at] = a.kind;
            // Fits: value <= 253 was checked above.
            buffer[at + 1] = a.buffer_len() as u8;
            buffer[at + 2..at + a.buffer_len()].copy_from_slice(&a.value);
            at += a.buffer_len();
        }
        Ok(())
    }

    /// Emit into a fresh vector.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = vec![0; self.buffer_len()];
        self.emit(&mut out)?;
        Ok(out)
    }

    /// The first attribute of type `kind`.
    pub fn get(&self, kind: u8) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.kind == kind)
    }

    /// The first sub-attribute `kind` of vendor `vendor` (in any Vendor-Specific).
    pub fn get_vendor(&self, vendor: u32, kind: u8) -> Option<&[u8]> {
        vendor_attributes(&self.attributes, vendor)
            .find(|a| a.kind == kind)
            .map(|a| a.value)
    }
}

/// Every well-formed sub-attribute of `vendor` in `attributes`; malformed
/// Vendor-Specific attributes are skipped.
pub fn vendor_attributes(
    attributes: &[Attribute],
    vendor: u32,
) -> impl Iterator<Item = VendorAttribute<'_>> {
    attributes
        .iter()
        .filter(|a| a.kind == attr::VENDOR_SPECIFIC)
        .filter_map(move |a| match parse_vendor_specific(&a.value) {
            Ok((id, it)) if id == vendor => Some(it.map_while(core::result::Result::ok)),
            _ => None,
        })
        .flatten()
}

const HMAC_BLOCK: usize = 64;

/// HMAC-MD5 (RFC 2104), the Message-Authenticator function (RFC 2869 §5.14).
pub fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    let mut k = [0u8; HMAC_BLOCK];
    if key.len() > HMAC_BLOCK {
        k[..16].copy_from_slice(&Md5::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Md5::new();
    inner.update(k.map(|b| b ^ 0x36));
    for p in parts {
        inner.update(p);
    }
    let mut outer = Md5::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// MD5(Code + Identifier + Length + `authenticator` + Attributes + Secret): the Response
/// Authenticator when `authenticator` is the Request Authenticator (RFC 2865 §3), the
/// Accounting, CoA and Disconnect Request Authenticator when it is 16 zero octets
/// (RFC 2866 §3, RFC 5176 §2.3). `packet` must have passed `check_len`; its own
/// authenticator field is not read.
pub fn packet_authenticator(
    packet: &[u8],
    authenticator: &[u8; AUTHENTICATOR_LEN],
    secret: &[u8],
) -> [u8; AUTHENTICATOR_LEN] {
    let mut h = Md5::new();
    h.update(&packet[..field::AUTHENTICATOR.start]);
    h.update(authenticator);
    h.update(&packet[field::HEADER_LEN..]);
    h.update(secret);
    h.finalize().into()
}

/// Offset of the value of the (single) Message-Authenticator in `packet`; an error if
/// it is present twice or not 16 octets long.
fn message_authenticator_offset(packet: &[u8]) -> Result<Option<usize>> {
    let mut at = field::HEADER_LEN;
    let mut found = None;
    for a in AttributeIter::new(&packet[field::HEADER_LEN..]) {
        let a = a?;
        if a.kind == attr::MESSAGE_AUTHENTICATOR {
            if found.is_some() || a.value.len() != AUTHENTICATOR_LEN {
                return Err(Error::BadMessageAuthenticator);
            }
            found = Some(at + field::ATTR_HEADER_LEN);
        }
        at += field::ATTR_HEADER_LEN + a.value.len();
    }
    Ok(found)
}

/// HMAC-MD5 over `packet` with the authenticator field replaced by `authenticator` and
/// the Message-Authenticator value (at `ma`) taken as zero (RFC 2869 §5.14).
fn compute_message_authenticator(
    packet: &[u8],
    authenticator: &[u8; AUTHENTICATOR_LEN],
    ma: usize,
    secret: &[u8],
) -> [u8; AUTHENTICATOR_LEN] {
    hmac_md5(
        secret,
        &[
            &packet[..field::AUTHENTICATOR.start],
            authenticator,
            &packet[field::HEADER_LEN..ma],
            &[0; AUTHENTICATOR_LEN],
            &packet[ma + AUTHENTICATOR_LEN..],
        ],
    )
}

fn checked(packet: &[u8]) -> Result<&[u8]> {
    let length = usize::from(Packet::new_checked(packet)?.length());
    Ok(&packet[..length])
}

/// Sign an encoded request in place. Access-Request and Status-Server keep the random
/// Request Authenticator already in the packet; Accounting, CoA and Disconnect requests
/// get the MD5 one (RFC 2866 §3, RFC 5176 §2.3). A Message-Authenticator attribute in
/// the packet is filled in first, computed with the random authenticator or with zeros
/// (RFC 2869 §5.14, RFC 5176 §3.4).
pub fn sign_request(packet: &mut [u8], secret: &[u8]) -> Result<()> {
    let len = checked(packet)?.len();
    let p = &mut packet[..len];
    let code = Packet::new_unchecked(&*p).code();
    let auth = if code.has_random_authenticator() {
        Packet::new_unchecked(&*p).authenticator()
    } else {
        [0; AUTHENTICATOR_LEN]
    };
    if let Some(ma) = message_authenticator_offset(p)? {
        let mac = compute_message_authenticator(p, &auth, ma, secret);
        p[ma..ma + AUTHENTICATOR_LEN].copy_from_slice(&mac);
    }
    if !code.has_random_authenticator() {
        let a = packet_authenticator(p, &[0; AUTHENTICATOR_LEN], secret);
        Packet::new_unchecked(p).set_authenticator(&a);
    }
    Ok(())
}

/// Sign an encoded response in place: Message-Authenticator (if present) computed with
/// the Request Authenticator in the authenticator field, then the Response Authenticator
/// (RFC 2865 §3, RFC 2869 §5.14).
pub fn sign_response(
    packet: &mut [u8],
    request_authenticator: &[u8; AUTHENTICATOR_LEN],
    secret: &[u8],
) -> Result<()> {
    let len = checked(packet)?.len();
    let p = &mut packet[..len];
    if let Some(ma) = message_authenticator_offset(p)? {
        let mac = compute_message_authenticator(p, request_authenticator, ma, secret);
        p[ma..ma + AUTHENTICATOR_LEN].copy_from_slice(&mac);
    }
    let a = packet_authenticator(p, request_authenticator, secret);
    Packet::new_unchecked(p).set_authenticator(&a);
    Ok(())
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Verify a response to a request with `request_authenticator`: the Response
/// Authenticator (RFC 2865 §3) and the Message-Authenticator (RFC 2869 §5.14), which
/// must be present when `require_message_authenticator` (BlastRADIUS, CVE-2024-3596).
pub fn verify_response(
    packet: &[u8],
    request_authenticator: &[u8; AUTHENTICATOR_LEN],
    secret: &[u8],
    require_message_authenticator: bool,
) -> Result<()> {
    let p = checked(packet)?;
    let ma = message_authenticator_offset(p)?;
    let expected = packet_authenticator(p, request_authenticator, secret);
    if !ct_eq(&expected, &p[field::AUTHENTICATOR]) {
        return Err(Error::BadAuthenticator);
    }
    match ma {
        Some(ma) => {
            let mac = compute_message_authenticator(p, request_authenticator, ma, secret);
            if !ct_eq(&mac, &p[ma..ma + AUTHENTICATOR_LEN]) {
                return Err(Error::BadMessageAuthenticator);
            }
        }
        None if require_message_authenticator => return Err(Error::MissingMessageAuthenticator),
        None => {}
    }
    Ok(())
}

/// Verify a request: the MD5 Request Authenticator of Accounting, CoA and Disconnect
/// requests (RFC 2866 §3, RFC 5176 §2.3) and the Message-Authenticator, required when
/// `require_message_authenticator`.
pub fn verify_request(
    packet: &[u8],
    secret: &[u8],
    require_message_authenticator: bool,
) -> Result<()> {
    let p = checked(packet)?;
    let view = Packet::new_unchecked(p);
    let random = view.code().has_random_authenticator();
    let auth = if random {
        view.authenticator()
    } else {
        let expected = packet_authenticator(p, &[0; AUTHENTICATOR_LEN], secret);
        if !ct_eq(&expected, &p[field::AUTHENTICATOR]) {
            return Err(Error::BadAuthenticator);
        }
        [0; AUTHENTICATOR_LEN]
    };
    match message_authenticator_offset(p)? {
        Some(ma) => {
            let mac = compute_message_authenticator(p, &auth, ma, secret);
            if !ct_eq(&mac, &p[ma..ma + AUTHENTICATOR_LEN]) {
                return Err(Error::BadMessageAuthenticator);
            }
        }
        None if require_message_authenticator => return Err(Error::MissingMessageAuthenticator),
        None => {}
    }
    Ok(())
}

/// The MD5 chain shared by User-Password and the salted encryption: block i is XORed
/// with MD5(secret + previous ciphertext block), the first with MD5(secret + `iv`).
fn md5_chain_xor(data: &mut [u8], secret: &[u8], iv: &[&[u8]], decrypt: bool) {
    let mut prev: Vec<u8> = iv.concat();
    for block in data.chunks_mut(16) {
        let mut h = Md5::new();
        h.update(secret);
        h.update(&prev);
        let b: [u8; 16] = h.finalize().into();
        let cipher_in: Vec<u8> = block.to_vec();
        for (x, k) in block.iter_mut().zip(b) {
            *x ^= k;
        }
        prev = if decrypt { cipher_in } else { block.to_vec() };
    }
}

/// Hide a User-Password (RFC 2865 §5.2): pad with zeros to a multiple of 16 (at least
/// 16, at most 128 octets), XOR with the MD5 chain seeded by the Request Authenticator.
pub fn hide_password(
    password: &[u8],
    secret: &[u8],
    request_authenticator: &[u8; AUTHENTICATOR_LEN],
) -> Result<Vec<u8>> {
    if password.len() > 128 {
        return Err(Error::TooLong {
            what: "User-Password",
            length: password.len(),
        });
    }
    let padded = password.len().div_ceil(16).max(1) * 16;
    let mut out = password.to_vec();
    out.resize(padded, 0);
    md5_chain_xor(&mut out, secret, &[request_authenticator], false);
    Ok(out)
}

/// Recover a hidden User-Password (RFC 2865 §5.2), trailing zero padding removed.
pub fn unhide_password(
    hidden: &[u8],
    secret: &[u8],
    request_authenticator: &[u8; AUTHENTICATOR_LEN],
) -> Result<Vec<u8>> {
    if hidden.is_empty() || hidden.len() % 16 != 0 || hidden.len() > 128 {
        return Err(Error::BadEncryptedValue);
    }
    let mut out = hidden.to_vec();
    md5_chain_xor(&mut out, secret, &[request_authenticator], true);
    while out.last() == Some(&0) {
        out.pop();
    }
    Ok(out)
}

/// Salted encryption of Tunnel-Password (RFC 2868 §3.5) and MS-MPPE-Send/Recv-Key
/// (RFC 2548 §2.4.2): returns Salt (2 octets, the high bit forced on) followed by the
/// ciphertext of (one length octet + `plaintext`, zero padded to a multiple of 16).
/// For Tunnel-Password the caller puts the Tag octet in front.
pub fn salt_encrypt(
    plaintext: &[u8],
    secret: &[u8],
    request_authenticator: &[u8; AUTHENTICATOR_LEN],
    salt: [u8; 2],
) -> Result<Vec<u8>> {
    let Ok(len) = u8::try_from(plaintext.len()) else {
        return Err(Error::TooLong {
            what: "salt-encrypted value",
            length: plaintext.len(),
        });
    };
    if plaintext.len() > 239 {
        return Err(Error::TooLong {
            what: "salt-encrypted value",
            length: plaintext.len(),
        });
    }
    let salt = [salt[0] | 0x80, salt[1]];
    let mut body = Vec::with_capacity(256);
    body.push(len);
    body.extend_from_slice(plaintext);
    body.resize(body.len().div_ceil(16) * 16, 0);
    md5_chain_xor(&mut body, secret, &[request_authenticator, &salt], false);
    let mut out = salt.to_vec();
    out.extend_from_slice(&body);
    Ok(out)
}

/// Reverse [`salt_encrypt`]: `value` is Salt + ciphertext (without a Tag octet).
pub fn salt_decrypt(
    value: &[u8],
    secret: &[u8],
    request_authenticator: &[u8; AUTHENTICATOR_LEN],
) -> Result<Vec<u8>> {
    if value.len() < 18 || (value.len() - 2) % 16 != 0 {
        return Err(Error::BadEncryptedValue);
    }
    let (salt, cipher) = value.split_at(2);
    let mut body = cipher.to_vec();
    md5_chain_xor(&mut body, secret, &[request_authenticator, salt], true);
    let len = usize::from(body[0]);
    if len + 1 > body.len() {
        return Err(Error::BadEncryptedValue);
    }
    Ok(body[1..=len].to_vec())
}

#[cfg(test)]
mod tests;

//! RADIUS accounting records (RFC 2866): what an Accounting-Request says, built once when
//! the event happens ([`session_record`], [`nas_record`]) and turned into the request's
//! attributes each time it is sent ([`Record::request_attributes`], which adds the
//! Acct-Delay-Time of that transmission, RFC 2866 §5.2).
//!
//! # Contract
//!
//! * A [`Record`] holds every attribute of the request but Acct-Delay-Time, plus the
//!   event's wall-clock time ([`Record::event_time`], Unix seconds, also sent as
//!   Event-Timestamp, RFC 2869 §5.3). Its encoding ([`Record::encode`] /
//!   [`Record::decode`]) is what the accounting spool stores; `decode(encode(r)) == r`.
//!   Bytes that do not decode give an error, never a panic.
//! * Session records (Start, Interim-Update, Stop) carry Acct-Status-Type,
//!   Acct-Session-Id, User-Name, the NAS attributes (NAS-Identifier, NAS-IP-Address,
//!   NAS-Port, NAS-Port-Type Virtual), Service-Type Framed-User, Framed-Protocol PPP,
//!   Framed-IP-Address, Calling/Called-Station-Id, Connect-Info, every Class of the
//!   Access-Accept unchanged (RFC 2865 §5.25), Acct-Authentic, the RFC 2868 tunnel
//!   attributes as in the Access-Request, and Event-Timestamp. Interim-Update and Stop
//!   add Acct-Session-Time and the traffic: Acct-Input/Output-Octets with
//!   Acct-Input/Output-Gigawords for the octets beyond 2^32 (RFC 2869 §5.1, §5.2) and
//!   Acct-Input/Output-Packets (RFC 2866 §5.3, §5.4, §5.8, §5.9). Stop adds
//!   Acct-Terminate-Cause (RFC 2866 §5.10).
//! * Values longer than 253 octets (RFC 2865 §5) are truncated, so that every record can
//!   be encoded.
//! * Input is what the subscriber sent (upstream, access to core), output what it
//!   received (RFC 2866 §5.3: "received from the port").
//! * Accounting-On / Accounting-Off (RFC 2866 §5.1, values 7 and 8) carry the NAS
//!   attributes and an Acct-Session-Id of their own.
//! * [`Record::reboot_stop`]: the Stop that ends a session whose Start (or last
//!   Interim-Update) was spooled when xlnsd died: same attributes and counters as that
//!   record, Acct-Terminate-Cause NAS-Reboot.

use std::net::Ipv4Addr;
use std::time::Duration;

use super::auth::{
    FRAMED_PROTOCOL_PPP, NAS_PORT_TYPE_VIRTUAL, SERVICE_TYPE_FRAMED, SessionContext,
    TUNNEL_TYPE_L2TP, TunnelContext,
};
use super::wire::{Attribute, attr};

/// Acct-Status-Type (RFC 2866 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusType {
    Start = 1,
    Stop = 2,
    InterimUpdate = 3,
    AccountingOn = 7,
    AccountingOff = 8,
}

impl StatusType {
    /// The value on the wire.
    pub const fn code(self) -> u32 {
        self as u32
    }

    /// The type of a value on the wire, `None` for values xlns does not send.
    pub const fn from_code(code: u32) -> Option<StatusType> {
        Some(match code {
            1 => StatusType::Start,
            2 => StatusType::Stop,
            3 => StatusType::InterimUpdate,
            7 => StatusType::AccountingOn,
            8 => StatusType::AccountingOff,
            _ => return None,
        })
    }

    /// A short label for logs and metrics.
    pub const fn label(self) -> &'static str {
        match self {
            StatusType::Start => "start",
            StatusType::Stop => "stop",
            StatusType::InterimUpdate => "interim-update",
            StatusType::AccountingOn => "accounting-on",
            StatusType::AccountingOff => "accounting-off",
        }
    }
}

/// Acct-Terminate-Cause (RFC 2866 §5.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TerminateCause {
    UserRequest = 1,
    LostCarrier = 2,
    LostService = 3,
    IdleTimeout = 4,
    SessionTimeout = 5,
    AdminReset = 6,
    AdminReboot = 7,
    PortError = 8,
    NasError = 9,
    NasRequest = 10,
    NasReboot = 11,
    PortUnneeded = 12,
    PortPreempted = 13,
    PortSuspended = 14,
    ServiceUnavailable = 15,
    Callback = 16,
    UserError = 17,
    HostRequest = 18,
}

impl TerminateCause {
    /// The value on the wire.
    pub const fn code(self) -> u32 {
        self as u32
    }
}

/// Acct-Authentic (RFC 2866 §5.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Authentic {
    Radius = 1,
    Local = 2,
}

/// A session's traffic so far. Input: from the subscriber; output: to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Traffic {
    pub input_octets: u64,
    pub output_octets: u64,
    pub input_packets: u64,
    pub output_packets: u64,
}

/// What every record of one session says about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionInfo {
    /// Acct-Session-Id (RFC 2866 §5.5).
    pub acct_session_id: String,
    /// User-Name: the authenticated name.
    pub user_name: Vec<u8>,
    /// Framed-IP-Address: the address IPCP assigned.
    pub framed_ip_address: Option<Ipv4Addr>,
    /// Class attributes of the Access-Accept, echoed unchanged (RFC 2865 §5.25).
    pub class: Vec<Vec<u8>>,
    /// Acct-Authentic.
    pub authentic: Option<Authentic>,
    /// NAS, station and tunnel attributes, as in the Access-Request (its
    /// `acct_session_id` is ignored: `acct_session_id` above is used).
    pub context: SessionContext,
}

/// One accounting request's content, Acct-Delay-Time aside; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// When the event happened, Unix seconds.
    pub event_time: u64,
    /// Every attribute but Acct-Delay-Time.
    pub attributes: Vec<Attribute>,
}

/// Why a spooled record does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("record truncated")]
    Truncated,
    #[error("unknown record version {0}")]
    BadVersion(u8),
    #[error("attribute with bad length")]
    BadAttributeLength,
}

/// Encoding version of [`Record::encode`].
const RECORD_VERSION: u8 = 1;

fn tagged_string(kind: u8, value: &str) -> Attribute {
    let mut v = Vec::with_capacity(1 + value.len());
    v.push(super::auth::TUNNEL_TAG);
    v.extend_from_slice(value.as_bytes());
    Attribute::new(kind, v)
}

fn tagged_integer(kind: u8, value: u32) -> Attribute {
    // RFC 2868 §3.1: the tag takes the first octet of the 4-octet integer.
    let mut v = value.to_be_bytes();
    v[0] = super::auth::TUNNEL_TAG;
    Attribute::new(kind, v)
}

fn secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

fn event_timestamp(event_time: u64) -> u32 {
    u32::try_from(event_time).unwrap_or(u32::MAX)
}

fn nas_attributes(a: &mut Vec<Attribute>, ctx: &SessionContext) {
    if let Some(v) = &ctx.nas_identifier {
        a.push(Attribute::new(attr::NAS_IDENTIFIER, v.as_bytes()));
    }
    if let Some(v) = ctx.nas_ip_address {
        a.push(Attribute::ipv4(attr::NAS_IP_ADDRESS, v));
    }
}

fn tunnel_attributes(a: &mut Vec<Attribute>, t: &TunnelContext) {
    a.push(tagged_integer(attr::TUNNEL_TYPE, TUNNEL_TYPE_L2TP));
    a.push(tagged_integer(attr::TUNNEL_MEDIUM_TYPE, t.medium as u32));
    a.push(tagged_string(
        attr::TUNNEL_CLIENT_ENDPOINT,
        &t.client_endpoint,
    ));
    a.push(tagged_string(
        attr::TUNNEL_SERVER_ENDPOINT,
        &t.server_endpoint,
    ));
    for (kind, v) in [
        (attr::TUNNEL_ASSIGNMENT_ID, &t.assignment_id),
        (attr::TUNNEL_CLIENT_AUTH_ID, &t.client_auth_id),
        (attr::TUNNEL_SERVER_AUTH_ID, &t.server_auth_id),
    ] {
        if let Some(v) = v {
            a.push(tagged_string(kind, v));
        }
    }
}

/// Octets as the 32-bit counter and its Gigawords (RFC 2869 §5.1: "how many times the
/// Acct-Input-Octets counter has wrapped around 2^32").
fn octets(a: &mut Vec<Attribute>, octets_kind: u8, gigawords_kind: u8, value: u64) {
    a.push(Attribute::integer(octets_kind, value as u32));
    a.push(Attribute::integer(
        gigawords_kind,
        u32::try_from(value >> 32).unwrap_or(u32::MAX),
    ));
}

/// The traffic attributes (RFC 2866 §5.3, §5.4, §5.8, §5.9; RFC 2869 §5.1, §5.2).
fn traffic_attributes(a: &mut Vec<Attribute>, t: &Traffic) {
    octets(
        a,
        attr::ACCT_INPUT_OCTETS,
        attr::ACCT_INPUT_GIGAWORDS,
        t.input_octets,
    );
    octets(
        a,
        attr::ACCT_OUTPUT_OCTETS,
        attr::ACCT_OUTPUT_GIGAWORDS,
        t.output_octets,
    );
    a.push(Attribute::integer(
        attr::ACCT_INPUT_PACKETS,
        t.input_packets as u32,
    ));
    a.push(Attribute::integer(
        attr::ACCT_OUTPUT_PACKETS,
        t.output_packets as u32,
    ));
}

/// A session record: Start (no time, traffic or cause), Interim-Update (time and
/// traffic) or Stop (time, traffic and cause). See the module documentation.
pub fn session_record(
    status: StatusType,
    info: &SessionInfo,
    event_time: u64,
    session_time: Option<Duration>,
    traffic: Option<&Traffic>,
    cause: Option<TerminateCause>,
) -> Record {
    let ctx = &info.context;
    let mut a = vec![
        Attribute::integer(attr::ACCT_STATUS_TYPE, status.code()),
        Attribute::new(attr::ACCT_SESSION_ID, info.acct_session_id.as_bytes()),
    ];
    if !info.user_name.is_empty() {
        a.push(Attribute::new(attr::USER_NAME, info.user_name.clone()));
    }
    nas_attributes(&mut a, ctx);
    if let Some(v) = ctx.nas_port {
        a.push(Attribute::integer(attr::NAS_PORT, v));
    }
    a.push(Attribute::integer(
        attr::NAS_PORT_TYPE,
        NAS_PORT_TYPE_VIRTUAL,
    ));
    a.push(Attribute::integer(attr::SERVICE_TYPE, SERVICE_TYPE_FRAMED));
    a.push(Attribute::integer(
        attr::FRAMED_PROTOCOL,
        FRAMED_PROTOCOL_PPP,
    ));
    if let Some(ip) = info.framed_ip_address {
        a.push(Attribute::ipv4(attr::FRAMED_IP_ADDRESS, ip));
    }
    if let Some(v) = &ctx.calling_station_id {
        a.push(Attribute::new(attr::CALLING_STATION_ID, v.clone()));
    }
    if let Some(v) = &ctx.called_station_id {
        a.push(Attribute::new(attr::CALLED_STATION_ID, v.clone()));
    }
    if let Some(v) = &ctx.connect_info {
        a.push(Attribute::new(attr::CONNECT_INFO, v.as_bytes()));
    }
    for class in &info.class {
        a.push(Attribute::new(attr::CLASS, class.clone()));
    }
    if let Some(v) = info.authentic {
        a.push(Attribute::integer(attr::ACCT_AUTHENTIC, v as u32));
    }
    if let Some(t) = &ctx.tunnel {
        tunnel_attributes(&mut a, t);
    }
    if let Some(d) = session_time {
        a.push(Attribute::integer(attr::ACCT_SESSION_TIME, secs(d)));
    }
    if let Some(t) = traffic {
        traffic_attributes(&mut a, t);
    }
    if let Some(c) = cause {
        a.push(Attribute::integer(attr::ACCT_TERMINATE_CAUSE, c.code()));
    }
    a.push(Attribute::integer(
        attr::EVENT_TIMESTAMP,
        event_timestamp(event_time),
    ));
    // RFC 2865 §5: a value holds at most 253 octets (a peer's 255-octet PAP name would
    // make the request unencodable).
    for at in &mut a {
        at.value.truncate(MAX_VALUE_LEN);
    }
    Record {
        event_time,
        attributes: a,
    }
}

/// Longest attribute value (RFC 2865 §5).
pub const MAX_VALUE_LEN: usize = 253;

/// Accounting-On or Accounting-Off (RFC 2866 §5.1) of the NAS described by `ctx`.
pub fn nas_record(
    status: StatusType,
    ctx: &SessionContext,
    acct_session_id: &str,
    event_time: u64,
) -> Record {
    let mut a = vec![
        Attribute::integer(attr::ACCT_STATUS_TYPE, status.code()),
        Attribute::new(attr::ACCT_SESSION_ID, acct_session_id.as_bytes()),
    ];
    nas_attributes(&mut a, ctx);
    a.push(Attribute::integer(
        attr::EVENT_TIMESTAMP,
        event_timestamp(event_time),
    ));
    for at in &mut a {
        at.value.truncate(MAX_VALUE_LEN);
    }
    Record {
        event_time,
        attributes: a,
    }
}

impl Record {
    fn find(&self, kind: u8) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.kind == kind)
    }

    /// Acct-Status-Type, if it holds a known value.
    pub fn status(&self) -> Option<StatusType> {
        self.find(attr::ACCT_STATUS_TYPE)
            .and_then(Attribute::as_u32)
            .and_then(StatusType::from_code)
    }

    /// Acct-Session-Id.
    pub fn session_id(&self) -> Option<&[u8]> {
        self.find(attr::ACCT_SESSION_ID).map(|a| a.value.as_slice())
    }

    /// The request's attributes when sent at `now` (Unix seconds): the record's and
    /// Acct-Delay-Time, the seconds since the event (RFC 2866 §5.2).
    pub fn request_attributes(&self, now: u64) -> Vec<Attribute> {
        let mut a = self.attributes.clone();
        let delay = u32::try_from(now.saturating_sub(self.event_time)).unwrap_or(u32::MAX);
        a.push(Attribute::integer(attr::ACCT_DELAY_TIME, delay));
        a
    }

    /// The Stop that closes a session whose last spooled record is this Start or
    /// Interim-Update, after xlnsd died: Acct-Terminate-Cause NAS-Reboot, the record's
    /// counters and session time (a Start's are zero), its event time. `None` for other
    /// records.
    pub fn reboot_stop(&self) -> Option<Record> {
        if !matches!(
            self.status()?,
            StatusType::Start | StatusType::InterimUpdate
        ) {
            return None;
        }
        let traffic = self.traffic().unwrap_or_default();
        let time = Duration::from_secs(self.session_time().unwrap_or(0).into());
        Some(self.reboot_stop_at(self.event_time, time, &traffic))
    }

    /// The Stop of a session whose last spooled record is this one, ended at
    /// `event_time` after `session_time` with `traffic` (a session the data plane kept
    /// forwarding after xlnsd died, closed when it removed it): Acct-Terminate-Cause
    /// NAS-Reboot, every other attribute as in this record.
    pub fn reboot_stop_at(
        &self,
        event_time: u64,
        session_time: Duration,
        traffic: &Traffic,
    ) -> Record {
        const REPLACED: [u8; 10] = [
            attr::ACCT_STATUS_TYPE,
            attr::EVENT_TIMESTAMP,
            attr::ACCT_SESSION_TIME,
            attr::ACCT_INPUT_OCTETS,
            attr::ACCT_OUTPUT_OCTETS,
            attr::ACCT_INPUT_GIGAWORDS,
            attr::ACCT_OUTPUT_GIGAWORDS,
            attr::ACCT_INPUT_PACKETS,
            attr::ACCT_OUTPUT_PACKETS,
            attr::ACCT_TERMINATE_CAUSE,
        ];
        let mut a: Vec<Attribute> = vec![Attribute::integer(
            attr::ACCT_STATUS_TYPE,
            StatusType::Stop.code(),
        )];
        a.extend(
            self.attributes
                .iter()
                .filter(|at| !REPLACED.contains(&at.kind))
                .cloned(),
        );
        a.push(Attribute::integer(
            attr::ACCT_SESSION_TIME,
            secs(session_time),
        ));
        traffic_attributes(&mut a, traffic);
        a.push(Attribute::integer(
            attr::ACCT_TERMINATE_CAUSE,
            TerminateCause::NasReboot.code(),
        ));
        a.push(Attribute::integer(
            attr::EVENT_TIMESTAMP,
            event_timestamp(event_time),
        ));
        Record {
            event_time,
            attributes: a,
        }
    }

    /// Acct-Session-Time, if present.
    pub fn session_time(&self) -> Option<u32> {
        self.find(attr::ACCT_SESSION_TIME)
            .and_then(Attribute::as_u32)
    }

    /// The traffic attributes (octets with their Gigawords), if present.
    pub fn traffic(&self) -> Option<Traffic> {
        let get = |kind| self.find(kind).and_then(Attribute::as_u32).map(u64::from);
        let octets = |low, high| Some(get(low)? | (get(high).unwrap_or(0) << 32));
        Some(Traffic {
            input_octets: octets(attr::ACCT_INPUT_OCTETS, attr::ACCT_INPUT_GIGAWORDS)?,
            output_octets: octets(attr::ACCT_OUTPUT_OCTETS, attr::ACCT_OUTPUT_GIGAWORDS)?,
            input_packets: get(attr::ACCT_INPUT_PACKETS)?,
            output_packets: get(attr::ACCT_OUTPUT_PACKETS)?,
        })
    }

    /// The L2TP session of the record: our tunnel id (Tunnel-Assignment-Id, as xlnsd
    /// sends it) and our session id (NAS-Port).
    pub fn l2tp_key(&self) -> Option<(u16, u16)> {
        let session = u16::try_from(self.find(attr::NAS_PORT)?.as_u32()?).ok()?;
        let tunnel = self.find(attr::TUNNEL_ASSIGNMENT_ID)?;
        let text = std::str::from_utf8(tunnel.value.get(1..)?).ok()?;
        Some((text.parse().ok()?, session))
    }

    /// The length of [`Record::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        9 + self
            .attributes
            .iter()
            .map(|a| 2 + a.value.len().min(255))
            .sum::<usize>()
    }

    /// The spool encoding: version (1), event time (8, big endian), then each
    /// attribute as Type, Length (of the value), Value.
    pub fn encode(&self) -> Vec<u8> {
        let len: usize = self.attributes.iter().map(|a| 2 + a.value.len()).sum();
        let mut out = Vec::with_capacity(9 + len);
        out.push(RECORD_VERSION);
        out.extend_from_slice(&self.event_time.to_be_bytes());
        for a in &self.attributes {
            out.push(a.kind);
            out.push(u8::try_from(a.value.len()).unwrap_or(u8::MAX));
            out.extend_from_slice(&a.value[..a.value.len().min(255)]);
        }
        out
    }

    /// The record [`Record::encode`] wrote.
    pub fn decode(bytes: &[u8]) -> Result<Record, RecordError> {
        let (&version, rest) = bytes.split_first().ok_or(RecordError::Truncated)?;
        if version != RECORD_VERSION {
            return Err(RecordError::BadVersion(version));
        }
        let time: [u8; 8] = rest
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or(RecordError::Truncated)?;
        let mut rest = &rest[8..];
        let mut attributes = Vec::new();
        while let [kind, len, tail @ ..] = rest {
            let len = usize::from(*len);
            let value = tail.get(..len).ok_or(RecordError::BadAttributeLength)?;
            attributes.push(Attribute::new(*kind, value));
            rest = &tail[len..];
        }
        if !rest.is_empty() {
            return Err(RecordError::Truncated);
        }
        Ok(Record {
            event_time: u64::from_be_bytes(time),
            attributes,
        })
    }
}

#[cfg(test)]
mod tests;

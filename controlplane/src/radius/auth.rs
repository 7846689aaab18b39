//! PPP authentication over RADIUS: a [`VerifyRequest`] plus the session's
//! [`SessionContext`] become Access-Request attributes ([`access_request`]); a verified
//! Access-Accept or Access-Reject becomes an [`AccessReply`] ([`parse_reply`]) and then
//! the PPP layer's [`AuthResult`] ([`auth_result`]).
//!
//! Credentials: PAP as User-Password (RFC 2865 §5.2, hidden by the client core per
//! server); CHAP-MD5 as CHAP-Password (identifier + response, RFC 2865 §5.3) and
//! CHAP-Challenge (RFC 2865 §5.40); MS-CHAPv2 as MS-CHAP-Challenge and
//! MS-CHAP2-Response (RFC 2548 §2.3.2), answered by MS-CHAP2-Success (§2.3.3) or
//! MS-CHAP-Error (§2.1.5).
//!
//! Every request carries Service-Type Framed-User, Framed-Protocol PPP, NAS-Port-Type
//! Virtual (RFC 2865 §5.6, §5.7, §5.41) and what the context knows: NAS-Identifier,
//! NAS-IP-Address, NAS-Port, Calling/Called-Station-Id (the L2TP Calling and Called
//! Number AVPs), Connect-Info, Acct-Session-Id and the RFC 2868 tunnel attributes
//! (Tunnel-Type L2TP, Tunnel-Medium-Type, endpoints, Assignment-Id, Auth-Ids), all
//! with tag 1 (one tunnel, RFC 2868 §3).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::ppp::auth::{AuthResult, Credential, FramedRoute, ReplyAttributes, VerifyRequest};
use crate::ppp::mschapv2::FailureMessage;

use super::client::Response;
use super::dictionary::decode_ipv6_prefix;
use super::wire::{Attribute, Code, attr, ms, salt_decrypt, vendor_attributes};

/// Service-Type Framed-User (RFC 2865 §5.6).
pub const SERVICE_TYPE_FRAMED: u32 = 2;
/// Framed-Protocol PPP (RFC 2865 §5.7).
pub const FRAMED_PROTOCOL_PPP: u32 = 1;
/// NAS-Port-Type Virtual (RFC 2865 §5.41).
pub const NAS_PORT_TYPE_VIRTUAL: u32 = 5;
/// Tunnel-Type L2TP (RFC 2868 §3.1).
pub const TUNNEL_TYPE_L2TP: u32 = 3;
/// The tag of every tunnel attribute we send (RFC 2868 §3).
pub const TUNNEL_TAG: u8 = 1;

/// Tunnel-Medium-Type (RFC 2868 §3.2, values from the IANA address families).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelMedium {
    Ipv4 = 1,
    Ipv6 = 2,
}

/// The L2TP tunnel a session arrived in (RFC 2868 attributes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelContext {
    pub medium: TunnelMedium,
    /// The LAC's address (Tunnel-Client-Endpoint).
    pub client_endpoint: String,
    /// Our address (Tunnel-Server-Endpoint).
    pub server_endpoint: String,
    /// Tunnel-Assignment-Id (our tunnel id, or a configured name).
    pub assignment_id: Option<String>,
    /// The LAC's Host Name (Tunnel-Client-Auth-Id).
    pub client_auth_id: Option<String>,
    /// Our Host Name (Tunnel-Server-Auth-Id).
    pub server_auth_id: Option<String>,
}

/// What the NAS knows about the session, beyond the credential.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionContext {
    pub nas_identifier: Option<String>,
    pub nas_ip_address: Option<Ipv4Addr>,
    pub nas_port: Option<u32>,
    /// From the L2TP Calling Number AVP.
    pub calling_station_id: Option<Vec<u8>>,
    /// From the L2TP Called Number AVP.
    pub called_station_id: Option<Vec<u8>>,
    pub connect_info: Option<String>,
    pub acct_session_id: Option<String>,
    pub tunnel: Option<TunnelContext>,
}

fn tagged_string(kind: u8, value: &str) -> Attribute {
    let mut v = Vec::with_capacity(1 + value.len());
    v.push(TUNNEL_TAG);
    v.extend_from_slice(value.as_bytes());
    Attribute::new(kind, v)
}

fn tagged_integer(kind: u8, value: u32) -> Attribute {
    // RFC 2868 §3.1: the tag takes the first octet of the 4-octet integer.
    let mut v = value.to_be_bytes();
    v[0] = TUNNEL_TAG;
    Attribute::new(kind, v)
}

/// The MS-CHAP2-Response value (RFC 2548 §2.3.2): Ident, Flags, Peer-Challenge (16),
/// Reserved (8), Response (24).
pub fn ms_chap2_response(
    identifier: u8,
    response: &crate::ppp::mschapv2::ResponseValue,
) -> [u8; 50] {
    let mut v = [0u8; 50];
    v[0] = identifier;
    v[1] = response.flags;
    v[2..18].copy_from_slice(&response.peer_challenge);
    v[26..50].copy_from_slice(&response.nt_response);
    v
}

/// The Access-Request attributes for `request` in `ctx` (User-Password in clear text:
/// the client core hides it per server).
pub fn access_request(request: &VerifyRequest, ctx: &SessionContext) -> Vec<Attribute> {
    let mut a = vec![Attribute::new(attr::USER_NAME, request.user.clone())];
    match &request.credential {
        Credential::Pap { password } => {
            a.push(Attribute::new(attr::USER_PASSWORD, password.clone()));
        }
        Credential::ChapMd5 {
            identifier,
            challenge,
            response,
        } => {
            let mut v = Vec::with_capacity(17);
            v.push(*identifier);
            v.extend_from_slice(response);
            a.push(Attribute::new(attr::CHAP_PASSWORD, v));
            a.push(Attribute::new(attr::CHAP_CHALLENGE, challenge.clone()));
        }
        Credential::MsChapV2 {
            identifier,
            authenticator_challenge,
            response,
        } => {
            a.push(Attribute::vendor(
                ms::VENDOR_ID,
                ms::CHAP_CHALLENGE,
                authenticator_challenge,
            ));
            a.push(Attribute::vendor(
                ms::VENDOR_ID,
                ms::CHAP2_RESPONSE,
                &ms_chap2_response(*identifier, response),
            ));
        }
    }
    a.push(Attribute::integer(attr::SERVICE_TYPE, SERVICE_TYPE_FRAMED));
    a.push(Attribute::integer(
        attr::FRAMED_PROTOCOL,
        FRAMED_PROTOCOL_PPP,
    ));
    a.push(Attribute::integer(
        attr::NAS_PORT_TYPE,
        NAS_PORT_TYPE_VIRTUAL,
    ));
    if let Some(v) = &ctx.nas_identifier {
        a.push(Attribute::new(attr::NAS_IDENTIFIER, v.as_bytes()));
    }
    if let Some(v) = ctx.nas_ip_address {
        a.push(Attribute::ipv4(attr::NAS_IP_ADDRESS, v));
    }
    if let Some(v) = ctx.nas_port {
        a.push(Attribute::integer(attr::NAS_PORT, v));
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
    if let Some(v) = &ctx.acct_session_id {
        a.push(Attribute::new(attr::ACCT_SESSION_ID, v.as_bytes()));
    }
    if let Some(t) = &ctx.tunnel {
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
    a
}

/// An Access-Accept, -Reject or -Challenge, typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessReply {
    /// Access-Accept.
    pub accepted: bool,
    /// Access-Challenge (not supported for PPP: treated as a rejection).
    pub challenge: bool,
    /// Reply-Message attributes, concatenated (RFC 2865 §5.18).
    pub reply_message: Option<String>,
    /// The authorization attributes.
    pub attributes: ReplyAttributes,
    /// MS-CHAP2-Success: identifier and `"S=<40 hex>"` (RFC 2548 §2.3.3).
    pub ms_chap2_success: Option<(u8, String)>,
    /// MS-CHAP-Error: identifier and `"E=... R=... C=... V=..."` (RFC 2548 §2.1.5).
    pub ms_chap_error: Option<(u8, Vec<u8>)>,
    /// MS-MPPE-Send-Key and -Recv-Key, decrypted (RFC 2548 §2.4.2, §2.4.3).
    pub mppe_send_key: Option<Vec<u8>>,
    pub mppe_recv_key: Option<Vec<u8>>,
    /// Attributes of the wrong size that were ignored.
    pub malformed: u32,
}

/// Parse a Framed-Route value (RFC 2865 §5.22): `a.b.c.d[/len] [gateway [metric ...]]`.
pub fn parse_framed_route(value: &[u8]) -> Option<FramedRoute> {
    let text = std::str::from_utf8(value).ok()?;
    let mut f = text.split_whitespace();
    let dest = f.next()?;
    let prefix = match dest.split_once('/') {
        Some(_) => dest.parse::<ipnet::Ipv4Net>().ok()?,
        None => ipnet::Ipv4Net::new(dest.parse().ok()?, 32).ok()?,
    }
    .trunc();
    let gateway = match f.next() {
        Some(g) => Some(g.parse::<Ipv4Addr>().ok()?).filter(|g| !g.is_unspecified()),
        None => None,
    };
    let metric = match f.next() {
        Some(m) => Some(m.parse().ok()?),
        None => None,
    };
    Some(FramedRoute {
        prefix,
        gateway,
        metric,
    })
}

fn ipv4(v: &[u8]) -> Option<Ipv4Addr> {
    <[u8; 4]>::try_from(v).ok().map(Ipv4Addr::from)
}

fn secs(a: &Attribute) -> Option<Duration> {
    a.as_u32().map(|s| Duration::from_secs(s.into()))
}

/// Type a verified response. Malformed attributes are skipped and counted.
pub fn parse_reply(response: &Response) -> AccessReply {
    let p = &response.packet;
    let mut r = AccessReply {
        accepted: p.code == Code::AccessAccept,
        challenge: p.code == Code::AccessChallenge,
        ..AccessReply::default()
    };
    let ra = &mut r.attributes;
    let mut bad = 0u32;
    let mut check = |ok: bool| {
        if !ok {
            bad += 1;
        }
    };
    for a in &p.attributes {
        match a.kind {
            attr::FRAMED_IP_ADDRESS => match ipv4(&a.value) {
                // RFC 2865 §5.8: 255.255.255.254 "NAS should select", 255.255.255.255
                // "allow the user to select": both leave the choice to us.
                Some(ip) if u32::from(ip) >= 0xffff_fffe => {}
                ip => {
                    check(ip.is_some());
                    ra.address = ip;
                }
            },
            attr::FRAMED_IP_NETMASK => {
                ra.netmask = ipv4(&a.value);
                check(ra.netmask.is_some());
            }
            attr::FRAMED_POOL => ra.pool = Some(String::from_utf8_lossy(&a.value).into_owned()),
            attr::FRAMED_ROUTE => match parse_framed_route(&a.value) {
                Some(route) => ra.routes.push(route),
                None => check(false),
            },
            attr::FRAMED_IPV6_PREFIX => {
                ra.ipv6_prefix = decode_ipv6_prefix(&a.value);
                check(ra.ipv6_prefix.is_some());
            }
            attr::DELEGATED_IPV6_PREFIX => {
                ra.delegated_ipv6_prefix = decode_ipv6_prefix(&a.value);
                check(ra.delegated_ipv6_prefix.is_some());
            }
            attr::SESSION_TIMEOUT => {
                ra.session_timeout = secs(a);
                check(ra.session_timeout.is_some());
            }
            attr::IDLE_TIMEOUT => {
                ra.idle_timeout = secs(a);
                check(ra.idle_timeout.is_some());
            }
            attr::ACCT_INTERIM_INTERVAL => {
                ra.interim_interval = secs(a);
                check(ra.interim_interval.is_some());
            }
            attr::CLASS => ra.class.push(a.value.clone()),
            attr::FRAMED_MTU => {
                ra.mtu = a.as_u32().and_then(|m| u16::try_from(m).ok());
                check(ra.mtu.is_some());
            }
            attr::DNS_SERVER_IPV6_ADDRESS => match <[u8; 16]>::try_from(a.value.as_slice()) {
                Ok(o) => ra.dns_ipv6.push(Ipv6Addr::from(o)),
                Err(_) => check(false),
            },
            attr::REPLY_MESSAGE => {
                let text = String::from_utf8_lossy(&a.value);
                r.reply_message
                    .get_or_insert_with(String::new)
                    .push_str(&text);
            }
            _ => {}
        }
    }
    for v in vendor_attributes(&p.attributes, ms::VENDOR_ID) {
        match v.kind {
            ms::PRIMARY_DNS_SERVER => {
                ra.primary_dns = ipv4(v.value);
                check(ra.primary_dns.is_some());
            }
            ms::SECONDARY_DNS_SERVER => {
                ra.secondary_dns = ipv4(v.value);
                check(ra.secondary_dns.is_some());
            }
            ms::CHAP2_SUCCESS => match v.value.split_first() {
                Some((&id, s)) => {
                    r.ms_chap2_success = Some((id, String::from_utf8_lossy(s).into_owned()));
                }
                None => check(false),
            },
            ms::CHAP_ERROR => match v.value.split_first() {
                Some((&id, s)) => r.ms_chap_error = Some((id, s.to_vec())),
                None => check(false),
            },
            ms::MPPE_SEND_KEY | ms::MPPE_RECV_KEY => {
                let key =
                    salt_decrypt(v.value, &response.secret, &response.request_authenticator).ok();
                check(key.is_some());
                if v.kind == ms::MPPE_SEND_KEY {
                    r.mppe_send_key = key;
                } else {
                    r.mppe_recv_key = key;
                }
            }
            _ => {}
        }
    }
    r.malformed = bad;
    r
}

/// The PPP layer's answer for `request`: an Access-Accept is an acceptance with the
/// reply attributes; for MS-CHAPv2 it must carry an MS-CHAP2-Success with the request's
/// identifier and an `S=<40 hex>` string (RFC 2759 §5), or it is a rejection. An
/// MS-CHAP-Error of a rejection becomes the Failure message when it parses (RFC 2759
/// §6). Reply-Message becomes the message text.
pub fn auth_result(request: &VerifyRequest, reply: &AccessReply) -> AuthResult {
    let mut result = if reply.accepted {
        AuthResult::accept(reply.attributes.clone())
    } else {
        AuthResult::reject()
    };
    result.message = reply.reply_message.clone();
    if let Credential::MsChapV2 { identifier, .. } = &request.credential {
        if reply.accepted {
            match &reply.ms_chap2_success {
                Some((id, s))
                    if id == identifier
                        && s.len() == 42
                        && s.starts_with("S=")
                        && s[2..].bytes().all(|b| b.is_ascii_hexdigit()) =>
                {
                    result.authenticator_response = Some(s.to_ascii_uppercase());
                }
                _ => {
                    tracing::warn!(
                        "RADIUS Access-Accept for MS-CHAPv2 without a valid MS-CHAP2-Success"
                    );
                    result = AuthResult::reject();
                }
            }
        } else if let Some((_, e)) = &reply.ms_chap_error {
            result.failure = FailureMessage::parse(e).ok();
        }
    }
    result
}

#[cfg(test)]
mod tests;

//! NAS-initiated sessions (RFC 2661 §4.4.5, §9.5): what the LNS does with the LAC's proxy
//! LCP and proxy authentication AVPs, per LAC policy ([`ProxyMode`]).
//!
//! [`decide`] turns the ICCN's proxy AVPs ([`ProxyInfo`]) into a [`Decision`]:
//!
//! 1. **LCP renegotiation** (`renegotiate_lcp`) wins over everything: LCP, then
//!    authentication, run from scratch as for a client-initiated call; the proxy AVPs are
//!    ignored. So does a LAC whose proxy LCP is not accepted (`accept_proxy_lcp` off), absent
//!    (no Last Sent or Last Received CONFREQ), malformed, or not one we can continue (an
//!    option we do not run, such as Quality-Protocol, or a peer MRU outside our policy's
//!    bounds): without the LAC's LCP state there is nothing to continue from, and
//!    RFC 2661 §4.4.5 allows "an additional round of LCP negotiation".
//! 2. Otherwise LCP starts Opened with the LAC's values ([`proxied_lcp`]), and the
//!    authentication follows from the method `M` the LAC negotiated (the
//!    Authentication-Protocol option of its Last Sent CONFREQ, which the peer acknowledged):
//!    * **forced CHAP** (`force_chap`): we send our own CHAP Challenge, ignoring any proxy
//!      authentication;
//!    * else **proxy authentication** (`accept_proxy_auth` and a Proxy Authen Type AVP): the
//!      captured PAP password or CHAP response is verified as if the peer had just sent it
//!      to us, and the reply (PAP Ack/Nak, CHAP Success/Failure, with the LAC's Identifier)
//!      goes to the peer, which is still waiting for it;
//!    * else the authentication phase restarts at the LNS with `M` (RFC 2661 §4.4.5, Proxy
//!      Authen Type: "requiring a restart of the authentication phase at the LNS"): a new
//!      CHAP Challenge, or waiting for the peer's next PAP Authenticate-Request.
//!
//! **Never a stronger method than the LAC used.** Without renegotiating LCP the peer has
//! agreed to exactly one authentication method, `M` (or to none). We can only run `M`: a
//! different protocol is one the peer never accepted and may not implement (a PAP-only CPE
//! has no CHAP at all), and a different CHAP algorithm is the same. So forced CHAP is possible
//! only when `M` is CHAP (MD5 or MS-CHAPv2; we challenge with that same algorithm); when the
//! LAC did PAP, or no authentication, forced CHAP would demand a stronger method and the
//! call is refused ([`ProxyRefusal::ChapNotNegotiated`]); the caller clears it with a CDN.
//! Demanding any authentication when the LAC did none is likewise refused when our policy
//! requires authentication ([`ProxyRefusal::NoAuthenticationAtLac`]). Our own policy still
//! applies: `M` must be one of [`LcpPolicy::auth_require`] (when it is not empty),
//! else [`ProxyRefusal::MethodNotAllowed`]. Only renegotiation may switch methods, because
//! the peer then agrees to the new one in LCP.
//!
//! The LCP CONFREQ AVPs carry "the body of the ... CONFREQ ..., starting at the first option"
//! (RFC 2661 §4.4.5): the option list only, no Code, Identifier or Length. Some LACs have
//! been seen to include the 4-octet LCP header; [`confreq_options`] accepts that form too
//! when the bytes do not parse as options but do as a whole Configure-Request.

use crate::l2tp::attr::ProxyAuthenType;
use crate::ppp::auth::Method;
use crate::ppp::fsm::{Options, code};
use crate::ppp::lcp::{AuthProtocol, ChapAlgorithm, LcpOption};
use crate::ppp::lcp_proto::{LcpPolicy, Negotiated};
use crate::ppp::mschapv2::{self, ResponseValue};
use crate::ppp::wire::{self, ConfigOption};

/// Per-LAC policy for NAS-initiated calls (ARCHITECTURE.md §1). The default accepts no
/// proxy AVPs: LCP and authentication are negotiated afresh, as RFC 2661 §9.5 requires to be
/// configurable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyMode {
    /// Verify the PAP password or CHAP response the LAC captured.
    pub accept_proxy_auth: bool,
    /// Continue from the LCP state the LAC negotiated.
    pub accept_proxy_lcp: bool,
    /// Challenge the peer with CHAP ourselves (on the proxied LCP), ignoring proxy
    /// authentication.
    pub force_chap: bool,
    /// Renegotiate LCP (and authenticate) from scratch, ignoring every proxy AVP.
    pub renegotiate_lcp: bool,
}

/// The proxy LCP and authentication AVPs of an ICCN (RFC 2661 §4.4.5), as received
/// (after unhiding). Every field is optional: a LAC sends what it has.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProxyInfo {
    /// Initial Received LCP CONFREQ (26): options of the peer's first Configure-Request.
    pub initial_received_lcp_confreq: Option<Vec<u8>>,
    /// Last Sent LCP CONFREQ (27): options of the LAC's last Configure-Request, the one the
    /// peer acknowledged.
    pub last_sent_lcp_confreq: Option<Vec<u8>>,
    /// Last Received LCP CONFREQ (28): options of the peer's last Configure-Request, the one
    /// the LAC acknowledged.
    pub last_received_lcp_confreq: Option<Vec<u8>>,
    /// Proxy Authen Type (29).
    pub authen_type: Option<ProxyAuthenType>,
    /// Proxy Authen Name (30).
    pub authen_name: Option<Vec<u8>>,
    /// Proxy Authen Challenge (31).
    pub authen_challenge: Option<Vec<u8>>,
    /// Proxy Authen ID (32), the 16-bit field (the PPP Identifier is its low octet).
    pub authen_id: Option<u16>,
    /// Proxy Authen Response (33): CHAP Response Value, or the clear-text PAP password.
    pub authen_response: Option<Vec<u8>>,
}

impl core::fmt::Debug for ProxyInfo {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The response may be a clear-text password: never in a log.
        f.debug_struct("ProxyInfo")
            .field("last_sent_lcp_confreq", &self.last_sent_lcp_confreq)
            .field("last_received_lcp_confreq", &self.last_received_lcp_confreq)
            .field("authen_type", &self.authen_type)
            .field("authen_name", &self.authen_name)
            .field("authen_id", &self.authen_id)
            .finish_non_exhaustive()
    }
}

/// Why a NAS-initiated call is refused; the caller clears it with a CDN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyRefusal {
    /// Forced CHAP, but the LAC negotiated PAP (`Some(Method::Pap)`) or no authentication
    /// (`None`) with the peer: CHAP would be a stronger method than the LAC used.
    ChapNotNegotiated { lac: Option<Method> },
    /// Our policy requires authentication, but the LAC negotiated none.
    NoAuthenticationAtLac,
    /// The LAC negotiated a method our policy does not allow.
    MethodNotAllowed(Method),
    /// The LAC negotiated an authentication protocol we do not run (EAP, MS-CHAPv1, ...).
    UnsupportedLacProtocol(AuthProtocol),
    /// A Proxy Authen Type we cannot verify (textual, MS-CHAPv1, reserved, unknown).
    UnsupportedAuthenType(u16),
    /// The Proxy Authen Type does not match the method of the proxied LCP.
    AuthenTypeMismatch {
        authen_type: u16,
        lac: Option<Method>,
    },
    /// A proxy authentication AVP the type requires is missing or malformed.
    BadAuthenAvp(&'static str),
}

impl ProxyRefusal {
    /// Text for logs and for the CDN's error message.
    pub fn reason(&self) -> &'static str {
        match self {
            ProxyRefusal::ChapNotNegotiated { .. } => {
                "forced CHAP impossible: the LAC did not negotiate CHAP with the peer"
            }
            ProxyRefusal::NoAuthenticationAtLac => {
                "authentication required but the LAC negotiated none"
            }
            ProxyRefusal::MethodNotAllowed(_) => {
                "the LAC negotiated an authentication method our policy refuses"
            }
            ProxyRefusal::UnsupportedLacProtocol(_) => {
                "the LAC negotiated an authentication protocol we do not run"
            }
            ProxyRefusal::UnsupportedAuthenType(_) => "unsupported Proxy Authen Type",
            ProxyRefusal::AuthenTypeMismatch { .. } => {
                "Proxy Authen Type does not match the proxied LCP"
            }
            ProxyRefusal::BadAuthenAvp(_) => "missing or malformed proxy authentication AVP",
        }
    }
}

/// The authentication the LNS runs on a proxied LCP.
#[derive(Clone, PartialEq, Eq)]
pub enum ProxiedAuth {
    /// No authentication phase (the LAC did none and our policy requires none).
    None,
    /// Our own authentication with this method: a new CHAP Challenge (forced CHAP, or a
    /// restart of the authentication phase), or waiting for the peer's next PAP request.
    Run(Method),
    /// Verify what the LAC captured. PAP: `name` and `response` (the password), `identifier`
    /// of the Authenticate-Request. CHAP: `identifier` and `challenge` of the LAC's
    /// Challenge, the peer's `name` and Response Value `response`.
    Verify {
        method: Method,
        identifier: u8,
        challenge: Vec<u8>,
        name: Vec<u8>,
        response: Vec<u8>,
    },
}

impl core::fmt::Debug for ProxiedAuth {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ProxiedAuth::None => f.write_str("None"),
            ProxiedAuth::Run(method) => write!(f, "Run({method:?})"),
            ProxiedAuth::Verify {
                method, identifier, ..
            } => write!(
                f,
                "Verify {{ method: {method:?}, identifier: {identifier}, .. }}"
            ),
        }
    }
}

/// What the LNS does with a call; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Negotiate LCP and authenticate from scratch.
    Negotiate,
    /// Start LCP Opened with `lcp` and authenticate with `auth`.
    Proxied { lcp: Negotiated, auth: ProxiedAuth },
    /// Refuse the call.
    Refuse(ProxyRefusal),
}

/// Decides what to do with a call whose ICCN carried `info`, under the LAC's `mode` and our
/// LCP `policy` (its `auth_require` is the list of methods we allow). See the module
/// documentation for the rules and their order.
pub fn decide(mode: &ProxyMode, info: &ProxyInfo, policy: &LcpPolicy) -> Decision {
    if mode.renegotiate_lcp || !mode.accept_proxy_lcp {
        return Decision::Negotiate;
    }
    let (Some(sent), Some(received)) = (
        info.last_sent_lcp_confreq.as_deref(),
        info.last_received_lcp_confreq.as_deref(),
    ) else {
        return Decision::Negotiate;
    };
    let Some(lcp) = proxied_lcp(sent, received, policy) else {
        tracing::info!("proxy LCP unusable; renegotiating LCP");
        return Decision::Negotiate;
    };
    let lac = match &lcp.peer_auth {
        None => None,
        Some(AuthProtocol::Pap) => Some(Method::Pap),
        Some(AuthProtocol::Chap(ChapAlgorithm::Md5)) => Some(Method::ChapMd5),
        Some(AuthProtocol::Chap(ChapAlgorithm::MsChapV2)) => Some(Method::MsChapV2),
        Some(other) => {
            return Decision::Refuse(ProxyRefusal::UnsupportedLacProtocol(other.clone()));
        }
    };
    let auth = if mode.force_chap {
        match lac {
            Some(m @ (Method::ChapMd5 | Method::MsChapV2)) => ProxiedAuth::Run(m),
            Some(Method::Pap) | None => {
                return Decision::Refuse(ProxyRefusal::ChapNotNegotiated { lac });
            }
        }
    } else if let (true, Some(authen_type)) = (mode.accept_proxy_auth, info.authen_type) {
        match proxy_auth(authen_type, lac, info) {
            Ok(auth) => auth,
            Err(refusal) => return Decision::Refuse(refusal),
        }
    } else {
        lac.map_or(ProxiedAuth::None, ProxiedAuth::Run)
    };
    let allowed = &policy.auth_require;
    match lac {
        None if !allowed.is_empty() => Decision::Refuse(ProxyRefusal::NoAuthenticationAtLac),
        Some(m) if !allowed.is_empty() && !allowed.contains(&auth_protocol(m)) => {
            Decision::Refuse(ProxyRefusal::MethodNotAllowed(m))
        }
        _ => Decision::Proxied { lcp, auth },
    }
}

/// The LCP option value of a method.
pub fn auth_protocol(method: Method) -> AuthProtocol {
    match method {
        Method::Pap => AuthProtocol::Pap,
        Method::ChapMd5 => AuthProtocol::Chap(ChapAlgorithm::Md5),
        Method::MsChapV2 => AuthProtocol::Chap(ChapAlgorithm::MsChapV2),
    }
}

/// Proxy authentication of `authen_type` on an LCP where the LAC negotiated `lac`.
fn proxy_auth(
    authen_type: ProxyAuthenType,
    lac: Option<Method>,
    info: &ProxyInfo,
) -> Result<ProxiedAuth, ProxyRefusal> {
    let mismatch = ProxyRefusal::AuthenTypeMismatch {
        authen_type: authen_type.code(),
        lac,
    };
    let name = || {
        info.authen_name
            .clone()
            .ok_or(ProxyRefusal::BadAuthenAvp("Proxy Authen Name"))
    };
    let response = || {
        info.authen_response
            .clone()
            .ok_or(ProxyRefusal::BadAuthenAvp("Proxy Authen Response"))
    };
    // §4.4.5 Proxy Authen ID: "the most significant octet MUST be 0".
    let identifier = || match info.authen_id {
        Some(id) => u8::try_from(id).map_err(|_| ProxyRefusal::BadAuthenAvp("Proxy Authen ID")),
        None => Err(ProxyRefusal::BadAuthenAvp("Proxy Authen ID")),
    };
    match (authen_type, lac) {
        (ProxyAuthenType::NoAuthentication, None) => Ok(ProxiedAuth::None),
        (ProxyAuthenType::Pap, Some(Method::Pap)) => Ok(ProxiedAuth::Verify {
            method: Method::Pap,
            identifier: identifier()?,
            challenge: Vec::new(),
            name: name()?,
            response: response()?,
        }),
        (ProxyAuthenType::Chap, Some(method @ (Method::ChapMd5 | Method::MsChapV2))) => {
            let challenge = info
                .authen_challenge
                .clone()
                .filter(|c| !c.is_empty())
                .ok_or(ProxyRefusal::BadAuthenAvp("Proxy Authen Challenge"))?;
            let response = response()?;
            // Check the sizes here: a Response Value of the wrong size would be refused by
            // the authenticator without a verification, and the refusal would be ours.
            let sizes_ok = match method {
                Method::ChapMd5 => response.len() == 16,
                _ => {
                    mschapv2::parse_challenge(&challenge).is_ok()
                        && ResponseValue::parse(&response).is_ok()
                }
            };
            if !sizes_ok {
                return Err(ProxyRefusal::BadAuthenAvp("Proxy Authen Response"));
            }
            Ok(ProxiedAuth::Verify {
                method,
                identifier: identifier()?,
                challenge,
                name: name()?,
                response,
            })
        }
        (ProxyAuthenType::NoAuthentication | ProxyAuthenType::Pap | ProxyAuthenType::Chap, _) => {
            Err(mismatch)
        }
        (other, _) => Err(ProxyRefusal::UnsupportedAuthenType(other.code())),
    }
}

/// The option list of a proxied LCP CONFREQ AVP value: the value itself when it parses as
/// options (RFC 2661 §4.4.5), else the options of a whole Configure-Request (Code 1 and a
/// Length equal to the value's length), else `None`.
pub fn confreq_options(value: &[u8]) -> Option<&[u8]> {
    if parse_options(value).is_some() {
        return Some(value);
    }
    let [c, _, l0, l1, options @ ..] = value else {
        return None;
    };
    let whole =
        *c == code::CONFIGURE_REQUEST && usize::from(u16::from_be_bytes([*l0, *l1])) == value.len();
    (whole && parse_options(options).is_some()).then_some(options)
}

/// Every option of `bytes`, decoded; `None` if any is malformed.
fn parse_options(bytes: &[u8]) -> Option<Vec<LcpOption>> {
    let options = Options::new_checked(bytes).ok()?;
    options
        .iter()
        .map(|raw| {
            LcpOption::parse(wire::RawOption {
                kind: raw.kind,
                data: raw.data,
            })
            .ok()
        })
        .collect()
}

/// The LCP state the LAC and the peer agreed, from the LAC's Last Sent CONFREQ (acknowledged
/// by the peer: our side, since we take the LAC's place) and the Last Received one
/// (acknowledged by the LAC: the peer's side). `None` when either is malformed, carries an
/// option we do not run (Quality-Protocol, unknown options), or the peer's MRU is outside
/// `policy`'s bounds.
pub fn proxied_lcp(
    last_sent: &[u8],
    last_received: &[u8],
    policy: &LcpPolicy,
) -> Option<Negotiated> {
    let sent = parse_options(confreq_options(last_sent)?)?;
    let received = parse_options(confreq_options(last_received)?)?;
    let mut n = Negotiated::default();
    for option in sent {
        match option {
            LcpOption::Mru(v) => n.our_mru = v,
            LcpOption::AuthenticationProtocol(a) => n.peer_auth = Some(a),
            LcpOption::MagicNumber(m) => n.our_magic = m,
            LcpOption::Pfc => n.rx_pfc = true,
            LcpOption::Acfc => n.rx_acfc = true,
            // The ACCM the LAC asked for concerns its HDLC framing towards the peer, not
            // L2TP (RFC 2661 §4.4.6 SLI carries it).
            LcpOption::Accm(_) => {}
            LcpOption::QualityProtocol { .. } | LcpOption::Unknown { .. } => return None,
        }
    }
    for option in received {
        match option {
            LcpOption::Mru(v) => n.peer_mru = v,
            LcpOption::Accm(v) => n.peer_accm = v,
            LcpOption::AuthenticationProtocol(a) => n.our_auth = Some(a),
            LcpOption::MagicNumber(m) => n.peer_magic = m,
            LcpOption::Pfc => n.tx_pfc = true,
            LcpOption::Acfc => n.tx_acfc = true,
            LcpOption::QualityProtocol { .. } | LcpOption::Unknown { .. } => return None,
        }
    }
    // An LNS does not authenticate itself to the peer; a peer that demanded it of the LAC
    // needs a negotiation we can answer.
    if n.our_auth.is_some() {
        return None;
    }
    (policy.peer_mru_min..=policy.peer_mru_max)
        .contains(&n.peer_mru)
        .then_some(n)
}

#[cfg(test)]
mod tests;

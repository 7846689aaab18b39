//! Per-LAC policy: which LACs get a tunnel, with what parameters, and how many tunnels and
//! sessions they may hold.
//!
//! # Contract
//!
//! [`PolicyTable::new`] compiles the `[[lac]]` entries of a [`Config`] into a lookup-ready
//! table. On an SCCRQ the control plane calls [`PolicyTable::resolve`] with the Host Name
//! AVP (RFC 2661 §4.4.3) and the source address of the datagram, and gets the
//! [`PolicyId`] of the first entry that matches in file order, or of the default policy for
//! unknown LACs. Matching:
//!
//! * an entry with `host_name` requires the Host Name AVP to match it (exact bytes, or a
//!   prefix when the pattern ends in `*`);
//! * an entry with `source` requires the source address to lie in one of its prefixes
//!   (IPv4-mapped IPv6 addresses, as a dual-stack socket reports IPv4 peers, are compared
//!   as the IPv4 address they carry);
//! * an entry with both requires both; an entry with neither matches every LAC.
//!
//! The default policy accepts tunnels only when `[l2tp] accept_unknown_lacs = true`; it has
//! no secret and no per-LAC limits, and uses the `[l2tp]` hello interval and receive window.
//!
//! The table also keeps live counters, per policy and in total, that the control plane (the
//! one task that owns protocol state) updates: a tunnel counts from the moment we accept
//! its SCCRQ until it is freed, a session from the moment we accept its ICRQ until it is
//! freed. Before accepting, [`PolicyTable::check_tunnel`] and
//! [`PolicyTable::check_session`] test the policy's own limits ([`LacPolicy::can_open_tunnel`],
//! [`LacPolicy::can_open_session`]) and the global ones of `[l2tp]`. A refusal is a typed
//! reason whose [`ResultCode`] is what goes into the Result Code AVP of the StopCCN or CDN
//! (RFC 2661 §4.4.2). Counters never underflow: closing what was never opened is reported
//! as [`CounterUnderflow`] and changes nothing.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

use crate::config::{Config, DEFAULT_PROXY_MODE, HostNamePattern, LacConfig, Secret};
use crate::ppp::session::proxy::ProxyMode;

/// Result Code and Error Code values of RFC 2661 §4.4.2 that policy and admission use.
///
/// Defined here so that this module stands alone; the L2TP codec has the full enums and
/// the two are to be unified (issue #3).
pub mod result_code {
    /// StopCCN: "General error--Error Code indicates the problem".
    pub const STOPCCN_GENERAL_ERROR: u16 = 2;
    /// StopCCN: "Requester is not authorized to establish a control channel".
    pub const STOPCCN_NOT_AUTHORIZED: u16 = 4;
    /// CDN: "Call failed due to lack of appropriate facilities being available
    /// (temporary condition)".
    pub const CDN_TEMPORARY_LACK_OF_FACILITIES: u16 = 4;
    /// CDN: "Call failed due to lack of appropriate facilities being available (permanent
    /// condition)".
    pub const CDN_PERMANENT_LACK_OF_FACILITIES: u16 = 5;
    /// General Error Code: "Insufficient resources to handle this operation now".
    pub const ERROR_INSUFFICIENT_RESOURCES: u16 = 4;
}

/// What to put in the Result Code AVP (RFC 2661 §4.4.2) of a StopCCN or CDN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResultCode {
    /// The Result Code.
    pub result: u16,
    /// The optional Error Code (a General Error Code).
    pub error: Option<u16>,
}

impl ResultCode {
    /// StopCCN 4: requester is not authorized.
    pub const NOT_AUTHORIZED: ResultCode = ResultCode {
        result: result_code::STOPCCN_NOT_AUTHORIZED,
        error: None,
    };
    /// StopCCN 2 with General Error 4: insufficient resources now.
    pub const TUNNEL_NO_RESOURCES: ResultCode = ResultCode {
        result: result_code::STOPCCN_GENERAL_ERROR,
        error: Some(result_code::ERROR_INSUFFICIENT_RESOURCES),
    };
    /// CDN 4: lack of facilities, temporary.
    pub const SESSION_NO_RESOURCES: ResultCode = ResultCode {
        result: result_code::CDN_TEMPORARY_LACK_OF_FACILITIES,
        error: None,
    };
}

/// Why an SCCRQ is refused; answered with a StopCCN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelRefusal {
    /// The matching `[[lac]]` entry says `accept = false`.
    NotAccepted,
    /// No entry matched and `accept_unknown_lacs` is false.
    UnknownLac,
    /// The policy's `max_tunnels` is reached.
    LacTunnelLimit {
        /// The limit.
        limit: u32,
    },
    /// `[l2tp] max_tunnels` is reached.
    GlobalTunnelLimit {
        /// The limit.
        limit: u32,
    },
}

impl TunnelRefusal {
    /// The StopCCN Result Code (RFC 2661 §4.4.2): 4 "not authorized" for a LAC we do not
    /// serve; 2 with General Error 4 "insufficient resources now" for a limit, which frees
    /// up as tunnels close.
    pub fn result_code(&self) -> ResultCode {
        match self {
            TunnelRefusal::NotAccepted | TunnelRefusal::UnknownLac => ResultCode::NOT_AUTHORIZED,
            TunnelRefusal::LacTunnelLimit { .. } | TunnelRefusal::GlobalTunnelLimit { .. } => {
                ResultCode::TUNNEL_NO_RESOURCES
            }
        }
    }
}

impl fmt::Display for TunnelRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TunnelRefusal::NotAccepted => f.write_str("LAC policy does not accept tunnels"),
            TunnelRefusal::UnknownLac => f.write_str("unknown LAC"),
            TunnelRefusal::LacTunnelLimit { limit } => {
                write!(f, "LAC policy tunnel limit ({limit}) reached")
            }
            TunnelRefusal::GlobalTunnelLimit { limit } => {
                write!(f, "tunnel limit ({limit}) reached")
            }
        }
    }
}

/// Why an ICRQ is refused; answered with a CDN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionRefusal {
    /// The tunnel holds `max_sessions_per_tunnel` sessions, or 65535 (every Session ID
    /// but the reserved 0, RFC 2661 §3.1).
    TunnelSessionLimit {
        /// The limit.
        limit: u32,
    },
    /// The policy's `max_sessions` is reached.
    LacSessionLimit {
        /// The limit.
        limit: u32,
    },
    /// `[l2tp] max_sessions` is reached.
    GlobalSessionLimit {
        /// The limit.
        limit: u32,
    },
}

impl SessionRefusal {
    /// The CDN Result Code (RFC 2661 §4.4.2): 4, lack of facilities, temporary. Every
    /// session limit is a count that frees up as sessions end, so none is permanent.
    pub fn result_code(&self) -> ResultCode {
        match self {
            SessionRefusal::TunnelSessionLimit { .. }
            | SessionRefusal::LacSessionLimit { .. }
            | SessionRefusal::GlobalSessionLimit { .. } => ResultCode::SESSION_NO_RESOURCES,
        }
    }
}

impl fmt::Display for SessionRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionRefusal::TunnelSessionLimit { limit } => {
                write!(f, "sessions per tunnel limit ({limit}) reached")
            }
            SessionRefusal::LacSessionLimit { limit } => {
                write!(f, "LAC policy session limit ({limit}) reached")
            }
            SessionRefusal::GlobalSessionLimit { limit } => {
                write!(f, "session limit ({limit}) reached")
            }
        }
    }
}

/// A counter was decremented below zero: something was closed that was never opened (a
/// bookkeeping bug in the caller). The counter is left at zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterUnderflow;

impl fmt::Display for CounterUnderflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("counter underflow: closed more than was opened")
    }
}

impl std::error::Error for CounterUnderflow {}

/// Sessions one tunnel can carry: Session IDs are 16 bits and 0 is reserved
/// (RFC 2661 §3.1).
pub const MAX_SESSIONS_PER_TUNNEL: u32 = 65535;

/// Names a policy of one [`PolicyTable`]: an entry in file order, or the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PolicyId(u32);

/// One compiled policy with its live counters.
#[derive(Debug, Clone)]
pub struct LacPolicy {
    id: PolicyId,
    name: String,
    host_name: Option<HostNamePattern>,
    source: Vec<IpNet>,
    accept: bool,
    is_default: bool,
    secret: Option<Secret>,
    hide_avps: bool,
    max_tunnels: Option<u32>,
    max_sessions_per_tunnel: Option<u32>,
    max_sessions: Option<u32>,
    hello_interval: Duration,
    receive_window: u16,
    proxy: ProxyMode,
    tunnels: u32,
    sessions: u32,
}

impl LacPolicy {
    /// The policy's id in its table.
    pub fn id(&self) -> PolicyId {
        self.id
    }

    /// The `[[lac]]` entry's `name`; `"unknown"` for the default policy.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this is the default policy for LACs that match no entry.
    pub fn is_default(&self) -> bool {
        self.is_default
    }

    /// Whether LACs of this policy get tunnels at all.
    pub fn accept(&self) -> bool {
        self.accept
    }

    /// The tunnel secret. When set, the LAC must authenticate the tunnel with Challenge /
    /// Challenge Response, and we answer its Challenge (RFC 2661 §4.4.3, §5.1.1).
    pub fn secret(&self) -> Option<&Secret> {
        self.secret.as_ref()
    }

    /// Whether tunnel authentication is required (a secret is set).
    pub fn requires_authentication(&self) -> bool {
        self.secret.is_some()
    }

    /// Whether we send sensitive AVPs hidden (RFC 2661 §4.3). Only true with a secret.
    pub fn hide_avps(&self) -> bool {
        self.hide_avps
    }

    /// The HELLO interval (RFC 2661 §6.5), resolved against `[l2tp]`.
    pub fn hello_interval(&self) -> Duration {
        self.hello_interval
    }

    /// Our Receive Window Size AVP for these tunnels, resolved against `[l2tp]`.
    pub fn receive_window(&self) -> u16 {
        self.receive_window
    }

    /// What NAS-initiated calls of these LACs do with their proxy AVPs (RFC 2661 §4.4.5).
    pub fn proxy_mode(&self) -> ProxyMode {
        self.proxy
    }

    /// The policy's own tunnel limit.
    pub fn max_tunnels(&self) -> Option<u32> {
        self.max_tunnels
    }

    /// The policy's own sessions-per-tunnel limit.
    pub fn max_sessions_per_tunnel(&self) -> Option<u32> {
        self.max_sessions_per_tunnel
    }

    /// The policy's own session limit over all its tunnels.
    pub fn max_sessions(&self) -> Option<u32> {
        self.max_sessions
    }

    /// Tunnels now counted against this policy.
    pub fn tunnels(&self) -> u32 {
        self.tunnels
    }

    /// Sessions now counted against this policy.
    pub fn sessions(&self) -> u32 {
        self.sessions
    }

    /// Whether this policy's match rules accept a LAC with this Host Name AVP and source.
    pub fn matches(&self, host_name: &[u8], source: IpAddr) -> bool {
        let source = source.to_canonical();
        self.host_name.as_ref().is_none_or(|p| p.matches(host_name))
            && (self.source.is_empty() || self.source.iter().any(|net| net.contains(&source)))
    }

    /// Whether one more tunnel is allowed by this policy (not counting global limits).
    pub fn can_open_tunnel(&self) -> Result<(), TunnelRefusal> {
        if !self.accept {
            return Err(if self.is_default {
                TunnelRefusal::UnknownLac
            } else {
                TunnelRefusal::NotAccepted
            });
        }
        match self.max_tunnels {
            Some(limit) if self.tunnels >= limit => Err(TunnelRefusal::LacTunnelLimit { limit }),
            _ => Ok(()),
        }
    }

    /// Whether one more session is allowed by this policy in a tunnel that now carries
    /// `tunnel_sessions` sessions (not counting global limits).
    pub fn can_open_session(&self, tunnel_sessions: u32) -> Result<(), SessionRefusal> {
        let per_tunnel = self
            .max_sessions_per_tunnel
            .map_or(MAX_SESSIONS_PER_TUNNEL, |l| l.min(MAX_SESSIONS_PER_TUNNEL));
        if tunnel_sessions >= per_tunnel {
            return Err(SessionRefusal::TunnelSessionLimit { limit: per_tunnel });
        }
        match self.max_sessions {
            Some(limit) if self.sessions >= limit => Err(SessionRefusal::LacSessionLimit { limit }),
            _ => Ok(()),
        }
    }

    fn compile(id: PolicyId, lac: &LacConfig, config: &Config) -> LacPolicy {
        LacPolicy {
            id,
            name: lac.name.clone(),
            host_name: lac.host_name.clone(),
            source: lac.source.clone(),
            accept: lac.accept,
            is_default: false,
            secret: lac.secret.clone(),
            hide_avps: lac.hide_avps && lac.secret.is_some(),
            max_tunnels: lac.max_tunnels,
            max_sessions_per_tunnel: lac.max_sessions_per_tunnel,
            max_sessions: lac.max_sessions,
            hello_interval: lac.hello_interval.unwrap_or(config.l2tp.hello_interval),
            receive_window: lac.receive_window.unwrap_or(config.l2tp.receive_window),
            proxy: lac.proxy,
            tunnels: 0,
            sessions: 0,
        }
    }
}

/// The compiled `[[lac]]` entries, the default policy, and the global counters.
#[derive(Debug, Clone)]
pub struct PolicyTable {
    /// The entries in file order, then the default policy, then the policies a reload
    /// removed that still count live tunnels ([`PolicyTable::reload`]).
    policies: Vec<LacPolicy>,
    /// How many entries come before the default policy.
    entries: usize,
    max_tunnels: u32,
    max_sessions: u32,
    tunnels: u32,
    sessions: u32,
}

impl PolicyTable {
    /// Compiles the policies of `config`, with every counter at zero.
    pub fn new(config: &Config) -> PolicyTable {
        let mut policies: Vec<LacPolicy> = config
            .lacs
            .iter()
            .enumerate()
            .map(|(i, lac)| LacPolicy::compile(PolicyId(index_u32(i)), lac, config))
            .collect();
        policies.push(LacPolicy {
            id: PolicyId(index_u32(policies.len())),
            name: "unknown".to_owned(),
            host_name: None,
            source: Vec::new(),
            accept: config.l2tp.accept_unknown_lacs,
            is_default: true,
            secret: None,
            hide_avps: false,
            max_tunnels: None,
            max_sessions_per_tunnel: None,
            max_sessions: None,
            hello_interval: config.l2tp.hello_interval,
            receive_window: config.l2tp.receive_window,
            proxy: DEFAULT_PROXY_MODE,
            tunnels: 0,
            sessions: 0,
        });
        PolicyTable {
            entries: config.lacs.len(),
            policies,
            max_tunnels: config.l2tp.max_tunnels,
            max_sessions: config.l2tp.max_sessions,
            tunnels: 0,
            sessions: 0,
        }
    }

    /// The first `[[lac]]` entry, in file order, that matches; `None` for an unknown LAC.
    pub fn lookup(&self, host_name: &[u8], source: IpAddr) -> Option<&LacPolicy> {
        self.entries().iter().find(|p| p.matches(host_name, source))
    }

    /// The policy that applies: the first matching entry, or the default policy.
    pub fn resolve(&self, host_name: &[u8], source: IpAddr) -> PolicyId {
        self.lookup(host_name, source)
            .unwrap_or_else(|| self.default_policy())
            .id
    }

    /// The default policy for LACs that match no entry.
    pub fn default_policy(&self) -> &LacPolicy {
        // `new` always pushes the default policy right after the entries.
        &self.policies[self.entries]
    }

    /// The `[[lac]]` policies in file order (without the default).
    pub fn entries(&self) -> &[LacPolicy] {
        &self.policies[..self.entries]
    }

    /// Every policy, the default after the entries, then removed ones still in use: for
    /// metrics.
    pub fn iter(&self) -> impl Iterator<Item = &LacPolicy> {
        self.policies.iter()
    }

    /// The policy with this id; `None` for an id of another table.
    pub fn get(&self, id: PolicyId) -> Option<&LacPolicy> {
        self.policies.get(id.0 as usize)
    }

    /// Tunnels counted, over all policies.
    pub fn tunnels(&self) -> u32 {
        self.tunnels
    }

    /// Sessions counted, over all policies.
    pub fn sessions(&self) -> u32 {
        self.sessions
    }

    /// Whether the policy `id` and the global limit allow one more tunnel. An id of
    /// another table is treated as an unknown LAC that is not accepted.
    pub fn check_tunnel(&self, id: PolicyId) -> Result<(), TunnelRefusal> {
        let policy = self.get(id).ok_or(TunnelRefusal::UnknownLac)?;
        policy.can_open_tunnel()?;
        if self.tunnels >= self.max_tunnels {
            return Err(TunnelRefusal::GlobalTunnelLimit {
                limit: self.max_tunnels,
            });
        }
        Ok(())
    }

    /// Whether the policy `id` and the global limit allow one more session in a tunnel
    /// that now carries `tunnel_sessions` sessions. An id of another table is refused with
    /// the global limit.
    pub fn check_session(&self, id: PolicyId, tunnel_sessions: u32) -> Result<(), SessionRefusal> {
        let refused = SessionRefusal::GlobalSessionLimit {
            limit: self.max_sessions,
        };
        let policy = self.get(id).ok_or(refused)?;
        policy.can_open_session(tunnel_sessions)?;
        if self.sessions >= self.max_sessions {
            return Err(refused);
        }
        Ok(())
    }

    /// Counts a tunnel accepted for policy `id` (after [`PolicyTable::check_tunnel`]).
    /// Counters saturate; an unknown id changes nothing.
    pub fn tunnel_opened(&mut self, id: PolicyId) {
        if let Some(p) = self.policies.get_mut(id.0 as usize) {
            p.tunnels = p.tunnels.saturating_add(1);
            self.tunnels = self.tunnels.saturating_add(1);
        }
    }

    /// Uncounts a tunnel of policy `id` when it is freed.
    pub fn tunnel_closed(&mut self, id: PolicyId) -> Result<(), CounterUnderflow> {
        let p = self
            .policies
            .get_mut(id.0 as usize)
            .ok_or(CounterUnderflow)?;
        if p.tunnels == 0 || self.tunnels == 0 {
            return Err(CounterUnderflow);
        }
        p.tunnels -= 1;
        self.tunnels -= 1;
        Ok(())
    }

    /// Counts a session accepted in a tunnel of policy `id` (after
    /// [`PolicyTable::check_session`]). Counters saturate; an unknown id changes nothing.
    pub fn session_opened(&mut self, id: PolicyId) {
        if let Some(p) = self.policies.get_mut(id.0 as usize) {
            p.sessions = p.sessions.saturating_add(1);
            self.sessions = self.sessions.saturating_add(1);
        }
    }

    /// Uncounts a session of policy `id` when it is freed.
    pub fn session_closed(&mut self, id: PolicyId) -> Result<(), CounterUnderflow> {
        let p = self
            .policies
            .get_mut(id.0 as usize)
            .ok_or(CounterUnderflow)?;
        if p.sessions == 0 || self.sessions == 0 {
            return Err(CounterUnderflow);
        }
        p.sessions -= 1;
        self.sessions -= 1;
        Ok(())
    }
}

/// How the [`PolicyId`]s of a table map to those of the table a reload made from it.
#[derive(Debug, Clone)]
pub struct PolicyRemap(Vec<PolicyId>);

impl PolicyRemap {
    /// The id in the new table of what was `old` in the old one.
    pub fn map(&self, old: PolicyId) -> PolicyId {
        self.0.get(old.0 as usize).copied().unwrap_or(old)
    }
}

impl PolicyTable {
    /// The table of `config` (a configuration reload) with the live counters of this one:
    ///
    /// * an entry of the same `name` takes over the counters of the old one: its new
    ///   limits apply to the next tunnel or session, live ones stay;
    /// * the default policy keeps its counters;
    /// * an entry that is gone but still counts tunnels or sessions stays in the table,
    ///   matched by no LAC and accepting nothing, until they are closed (a later reload
    ///   drops it once its counters are zero): its live tunnels are not cut.
    ///
    /// The [`PolicyRemap`] translates the ids the caller holds.
    pub fn reload(&self, config: &Config) -> (PolicyTable, PolicyRemap) {
        let mut next = PolicyTable::new(config);
        next.tunnels = self.tunnels;
        next.sessions = self.sessions;
        let mut remap = Vec::with_capacity(self.policies.len());
        for old in &self.policies {
            let found = if old.is_default {
                Some(next.entries)
            } else {
                next.entries().iter().position(|p| p.name == old.name)
            };
            let index = match found {
                Some(i) => {
                    let policy = &mut next.policies[i];
                    policy.tunnels = policy.tunnels.saturating_add(old.tunnels);
                    policy.sessions = policy.sessions.saturating_add(old.sessions);
                    i
                }
                None if old.tunnels > 0 || old.sessions > 0 => {
                    let mut retired = old.clone();
                    retired.accept = false;
                    retired.id = PolicyId(index_u32(next.policies.len()));
                    next.policies.push(retired);
                    next.policies.len() - 1
                }
                // Nothing refers to it: any id will do.
                None => next.entries,
            };
            remap.push(PolicyId(index_u32(index)));
        }
        (next, PolicyRemap(remap))
    }

    /// Whether policy `id` was removed by a reload and lingers for its live tunnels.
    pub fn is_retired(&self, id: PolicyId) -> bool {
        (id.0 as usize) > self.entries
    }
}

/// Policy indexes fit in u32: a configuration with 2^32 entries cannot be loaded.
fn index_u32(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn table(text: &str) -> PolicyTable {
        PolicyTable::new(&Config::from_toml_str(text, "t.toml").unwrap())
    }

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    const RULES: &str = r#"
[l2tp]
hello_interval = "45s"
receive_window = 8

[[lac]]
name = "both"
host_name = "lac1"
source = ["192.0.2.0/24"]

[[lac]]
name = "by-name"
host_name = "lac*"
secret = "s"
hide_avps = true
receive_window = 99

[[lac]]
name = "by-source"
source = ["198.51.100.0/24", "2001:db8::/32"]
hello_interval = "10s"

[[lac]]
name = "catch-all"
accept = false
"#;

    fn name_of<'a>(t: &'a PolicyTable, host: &[u8], src: IpAddr) -> Option<&'a str> {
        t.lookup(host, src).map(LacPolicy::name)
    }

    #[test]
    fn first_match_in_file_order() {
        let t = table(RULES);
        assert_eq!(name_of(&t, b"lac1", v4(192, 0, 2, 9)), Some("both"));
        // host_name alone is not enough for an entry with both: falls to the next.
        assert_eq!(name_of(&t, b"lac1", v4(10, 0, 0, 1)), Some("by-name"));
        assert_eq!(name_of(&t, b"lac22", v4(10, 0, 0, 1)), Some("by-name"));
        assert_eq!(
            name_of(&t, b"other", v4(198, 51, 100, 1)),
            Some("by-source")
        );
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(name_of(&t, b"other", v6), Some("by-source"));
        // An entry with neither matches everything.
        assert_eq!(name_of(&t, b"other", v4(10, 0, 0, 1)), Some("catch-all"));
        assert_eq!(
            name_of(&t, b"", IpAddr::V6(Ipv6Addr::LOCALHOST)),
            Some("catch-all")
        );
    }

    #[test]
    fn v4_mapped_sources_match_v4_prefixes() {
        let t = table(RULES);
        let mapped = IpAddr::V6(Ipv4Addr::new(198, 51, 100, 7).to_ipv6_mapped());
        assert_eq!(name_of(&t, b"x", mapped), Some("by-source"));
    }

    #[test]
    fn unknown_lacs_get_the_default() {
        let t = table("[[lac]]\nname = \"a\"\nhost_name = \"a\"\n");
        assert!(t.lookup(b"b", v4(1, 2, 3, 4)).is_none());
        let id = t.resolve(b"b", v4(1, 2, 3, 4));
        let p = t.get(id).unwrap();
        assert!(p.is_default());
        assert!(!p.accept());
        assert_eq!(p.name(), "unknown");
        assert_eq!(t.check_tunnel(id), Err(TunnelRefusal::UnknownLac));
        assert_eq!(
            TunnelRefusal::UnknownLac.result_code(),
            ResultCode {
                result: 4,
                error: None
            }
        );
        let known = t.resolve(b"a", v4(1, 2, 3, 4));
        assert!(!t.get(known).unwrap().is_default());
        assert_eq!(t.check_tunnel(known), Ok(()));
    }

    #[test]
    fn accept_unknown_lacs() {
        let t = table("[l2tp]\naccept_unknown_lacs = true\nhello_interval = \"5s\"\n");
        let id = t.resolve(b"anyone", v4(1, 2, 3, 4));
        assert_eq!(t.check_tunnel(id), Ok(()));
        let p = t.default_policy();
        assert_eq!(p.id(), id);
        assert!(!p.requires_authentication());
        assert_eq!(p.hello_interval(), Duration::from_secs(5));
    }

    #[test]
    fn refused_lac_is_not_authorized() {
        let t = table(RULES);
        let id = t.resolve(b"zzz", v4(10, 0, 0, 1));
        assert_eq!(t.check_tunnel(id), Err(TunnelRefusal::NotAccepted));
        assert_eq!(TunnelRefusal::NotAccepted.result_code().result, 4);
    }

    #[test]
    fn parameters_resolve_against_l2tp() {
        let t = table(RULES);
        let both = t.lookup(b"lac1", v4(192, 0, 2, 1)).unwrap();
        assert_eq!(both.hello_interval(), Duration::from_secs(45));
        assert_eq!(both.receive_window(), 8);
        assert!(!both.requires_authentication());
        assert!(!both.hide_avps());
        let by_name = t.lookup(b"lacX", v4(10, 0, 0, 1)).unwrap();
        assert_eq!(by_name.receive_window(), 99);
        assert!(by_name.requires_authentication());
        assert_eq!(by_name.secret().unwrap().as_bytes(), b"s");
        assert!(by_name.hide_avps());
        let by_source = t.lookup(b"x", v4(198, 51, 100, 1)).unwrap();
        assert_eq!(by_source.hello_interval(), Duration::from_secs(10));
    }

    #[test]
    fn lac_tunnel_limit_and_global_limit() {
        let mut t = table(
            "[l2tp]\nmax_tunnels = 3\n[[lac]]\nname = \"a\"\nhost_name = \"a\"\nmax_tunnels = 2\n\
             [[lac]]\nname = \"b\"\n",
        );
        let a = t.resolve(b"a", v4(1, 1, 1, 1));
        let b = t.resolve(b"b", v4(1, 1, 1, 1));
        for _ in 0..2 {
            assert_eq!(t.check_tunnel(a), Ok(()));
            t.tunnel_opened(a);
        }
        let refusal = t.check_tunnel(a).unwrap_err();
        assert_eq!(refusal, TunnelRefusal::LacTunnelLimit { limit: 2 });
        assert_eq!(
            refusal.result_code(),
            ResultCode {
                result: 2,
                error: Some(4)
            }
        );
        assert_eq!(t.check_tunnel(b), Ok(()));
        t.tunnel_opened(b);
        assert_eq!(
            t.check_tunnel(b),
            Err(TunnelRefusal::GlobalTunnelLimit { limit: 3 })
        );
        assert_eq!(t.tunnels(), 3);
        assert_eq!(t.get(a).unwrap().tunnels(), 2);
        t.tunnel_closed(a).unwrap();
        assert_eq!(t.check_tunnel(a), Ok(()));
        assert_eq!(t.check_tunnel(b), Ok(()));
        assert_eq!(t.tunnels(), 2);
    }

    #[test]
    fn session_limits() {
        let mut t = table(
            "[l2tp]\nmax_sessions = 5\n[[lac]]\nname = \"a\"\nhost_name = \"a\"\n\
             max_sessions_per_tunnel = 2\nmax_sessions = 3\n[[lac]]\nname = \"b\"\n",
        );
        let a = t.resolve(b"a", v4(1, 1, 1, 1));
        let b = t.resolve(b"b", v4(1, 1, 1, 1));
        assert_eq!(t.check_session(a, 0), Ok(()));
        assert_eq!(t.check_session(a, 1), Ok(()));
        let per_tunnel = t.check_session(a, 2).unwrap_err();
        assert_eq!(per_tunnel, SessionRefusal::TunnelSessionLimit { limit: 2 });
        assert_eq!(
            per_tunnel.result_code(),
            ResultCode {
                result: 4,
                error: None
            }
        );
        for _ in 0..3 {
            t.session_opened(a);
        }
        assert_eq!(
            t.check_session(a, 0),
            Err(SessionRefusal::LacSessionLimit { limit: 3 })
        );
        t.session_opened(b);
        assert_eq!(t.check_session(b, 1), Ok(()));
        t.session_opened(b);
        assert_eq!(
            t.check_session(b, 2),
            Err(SessionRefusal::GlobalSessionLimit { limit: 5 })
        );
        t.session_closed(b).unwrap();
        assert_eq!(t.sessions(), 4);
        assert_eq!(t.check_session(b, 1), Ok(()));
    }

    #[test]
    fn session_id_space_caps_sessions_per_tunnel() {
        let t = table("[l2tp]\naccept_unknown_lacs = true\n");
        let id = t.resolve(b"x", v4(1, 1, 1, 1));
        assert_eq!(t.check_session(id, 65534), Ok(()));
        assert_eq!(
            t.check_session(id, 65535),
            Err(SessionRefusal::TunnelSessionLimit { limit: 65535 })
        );
    }

    #[test]
    fn counters_do_not_underflow() {
        let mut t = table("[[lac]]\nname = \"a\"\n[[lac]]\nname = \"b\"\n");
        let a = PolicyId(0);
        let b = PolicyId(1);
        assert_eq!(t.tunnel_closed(a), Err(CounterUnderflow));
        assert_eq!(t.session_closed(a), Err(CounterUnderflow));
        t.tunnel_opened(a);
        t.session_opened(a);
        // b never opened anything: closing it must not touch a's counts or the totals.
        assert_eq!(t.tunnel_closed(b), Err(CounterUnderflow));
        assert_eq!(t.session_closed(b), Err(CounterUnderflow));
        assert_eq!((t.tunnels(), t.sessions()), (1, 1));
        assert_eq!(t.tunnel_closed(a), Ok(()));
        assert_eq!(t.session_closed(a), Ok(()));
        assert_eq!(t.tunnel_closed(a), Err(CounterUnderflow));
        assert_eq!((t.tunnels(), t.sessions()), (0, 0));
        assert_eq!(t.get(a).unwrap().tunnels(), 0);
        // Ids of another table are refused, not panicked on.
        let foreign = PolicyId(99);
        assert!(t.get(foreign).is_none());
        assert_eq!(t.tunnel_closed(foreign), Err(CounterUnderflow));
        assert_eq!(t.check_tunnel(foreign), Err(TunnelRefusal::UnknownLac));
        t.tunnel_opened(foreign);
        assert_eq!(t.tunnels(), 0);
    }

    #[test]
    fn iter_lists_entries_then_default() {
        let t = table(RULES);
        let names: Vec<&str> = t.iter().map(LacPolicy::name).collect();
        assert_eq!(
            names,
            ["both", "by-name", "by-source", "catch-all", "unknown"]
        );
        assert_eq!(t.entries().len(), 4);
    }
}

#[cfg(test)]
mod reload_tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use std::net::Ipv4Addr;

    fn config(text: &str) -> Config {
        Config::from_toml_str(text, "t.toml").unwrap()
    }

    const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

    #[test]
    fn reload_keeps_counters_and_retires_removed_entries() {
        let old = PolicyTable::new(&config(
            "[l2tp]\naccept_unknown_lacs = true\n[[lac]]\nname = \"a\"\nhost_name = \"a\"\nmax_tunnels = 1\n\
             [[lac]]\nname = \"b\"\nhost_name = \"b\"\n[[lac]]\nname = \"idle\"\nhost_name = \"i\"\n",
        ));
        let mut old = old;
        let a = old.resolve(b"a", SRC);
        let b = old.resolve(b"b", SRC);
        let unknown = old.resolve(b"zzz", SRC);
        old.tunnel_opened(a);
        old.session_opened(a);
        old.tunnel_opened(b);
        old.tunnel_opened(unknown);
        assert!(old.check_tunnel(a).is_err());

        // "a" gets a higher limit and a secret, "b" and "idle" go, "c" comes.
        let (mut next, remap) = old.reload(&config(
            "[[lac]]\nname = \"c\"\nhost_name = \"c\"\n[[lac]]\nname = \"a\"\nhost_name = \"a\"\n\
             max_tunnels = 2\nsecret = \"new\"\n",
        ));
        let a2 = remap.map(a);
        assert_eq!(next.get(a2).unwrap().name(), "a");
        assert_eq!(next.get(a2).unwrap().tunnels(), 1);
        assert_eq!(next.get(a2).unwrap().sessions(), 1);
        assert_eq!(next.get(a2).unwrap().secret().unwrap().as_bytes(), b"new");
        assert!(next.check_tunnel(a2).is_ok(), "the new limit applies");
        // "b" lingers for its tunnel, matched by nobody, accepting nothing.
        let b2 = remap.map(b);
        assert!(next.is_retired(b2));
        assert_eq!(next.get(b2).unwrap().name(), "b");
        assert_eq!(next.get(b2).unwrap().tunnels(), 1);
        assert!(next.check_tunnel(b2).is_err());
        assert!(next.lookup(b"b", SRC).is_none());
        // "idle" had nothing live: gone. Unknown LACs are refused now.
        assert!(next.iter().all(|p| p.name() != "idle"));
        let u2 = remap.map(unknown);
        assert!(next.get(u2).unwrap().is_default());
        assert_eq!(next.get(u2).unwrap().tunnels(), 1);
        assert!(next.check_tunnel(u2).is_err());
        assert_eq!(next.tunnels(), 3);
        assert_eq!(next.sessions(), 1);
        assert_eq!(next.resolve(b"c", SRC), PolicyId(0));

        // Closing through the mapped ids balances every counter.
        next.tunnel_closed(b2).unwrap();
        next.tunnel_closed(u2).unwrap();
        next.session_closed(a2).unwrap();
        next.tunnel_closed(a2).unwrap();
        assert_eq!((next.tunnels(), next.sessions()), (0, 0));
        // The next reload drops the retired entry.
        let (last, _) = next.reload(&config("[[lac]]\nname = \"a\"\n"));
        assert_eq!(last.iter().count(), 2);
    }
}

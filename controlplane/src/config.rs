//! The TOML configuration of xlnsd: the L2TP control plane's part.
//!
//! # Contract
//!
//! [`Config::from_toml_str`] (and [`Config::load`], which reads a file first) turns the text
//! of `xlnsd.toml` into a validated [`Config`], or into one [`ConfigError`] that names the
//! file, the line and column, and the key path of what is wrong:
//!
//! ```text
//! xlnsd.toml:12:18: lac[1].receive_window: must be between 1 and 65535
//! ```
//!
//! * Syntax errors, wrong types, unknown keys (every table denies unknown keys) and missing
//!   required keys take their position from the TOML parser's byte span; the key path is
//!   found by walking the document's keys to that span. Syntax errors have no key path, and
//!   neither do schema errors in a document with tables made implicitly by dotted keys
//!   (`l2tp.hello_interval = ...` at the top level): the parser gives those tables no span.
//!   The position and the parser's message, which names the field, are always there.
//! * Semantic errors (ranges, duplicate LAC names, bad CIDR prefixes, empty secrets, ...)
//!   point at the offending value: the raw form of the document keeps the span of every
//!   value it validates ([`toml::Spanned`]). Where a rule ties several keys together, the
//!   error points at the key that the message names.
//!
//! Positions are 1-based; the column counts characters, not bytes.
//!
//! # Layout
//!
//! The file is made of sections so that the operator configuration can grow (RADIUS, pools,
//! data plane, ... get sections of their own later):
//!
//! ```toml
//! [l2tp]            # the L2TP control plane: socket, timers, global limits
//! [admission]       # how fast, and how many at once, tunnels and sessions may be set up
//! [ppp]             # PPP of every session: authentication, keepalive, IPCP values
//! [[pool]]          # named IPv4 address pools
//! [users]           # the local users file
//! [[lac]]           # per-LAC policy, first match in file order wins
//! [dataplane]       # the shared-memory segment of the AF_XDP data plane (absent: none)
//! [radius]          # RADIUS servers, NAS attributes, accounting spool (absent: local only)
//! [dae]             # RFC 5176 CoA / Disconnect server and its clients (absent: none)
//! [[realm]]         # per-realm AAA: name, aaa = "local" | "radius", strip (crate::realm)
//! ```
//!
//! Every section and every key may be omitted; the defaults are the constants `DEFAULT_*`
//! below. See `deploy/xlnsd.example.toml` for a commented example.
//!
//! # Durations
//!
//! One format: a string holding a non-negative integer and a unit, `ms`, `s`, `m` or `h`
//! (`"500ms"`, `"60s"`, `"2m"`, `"1h"`). Bare integers are rejected so that nobody has to
//! guess the unit.
//!
//! # Unknown LACs
//!
//! A LAC whose SCCRQ matches no `[[lac]]` entry is refused (StopCCN result code 4,
//! "requester is not authorized", RFC 2661 §4.4.2) unless `[l2tp] accept_unknown_lacs =
//! true`. The safe default is to refuse: an LNS reachable from the Internet must not carry
//! tunnels for whoever asks. An entry with neither `host_name` nor `source` matches every
//! LAC and so is the explicit way to write a catch-all policy.
//!
//! # NAS-initiated calls (proxy LCP and proxy authentication)
//!
//! Each `[[lac]]` entry says what the LNS does with the proxy AVPs of an ICCN
//! (RFC 2661 §4.4.5; the rules are in [`crate::ppp::session::proxy`]): `proxy_lcp`,
//! `proxy_auth`, `force_chap`, `renegotiate_lcp`. The default, also for unknown LACs, is
//! the carrier one: **accept proxy LCP and proxy authentication when the LAC sends them**
//! ([`DEFAULT_PROXY_MODE`]). A wholesale LAC has negotiated LCP with the subscriber's CPE
//! already, and many CPEs do not survive a second LCP round (RFC 2661 §4.4.5 warns of it);
//! the captured PAP password or CHAP response is still verified here, against our users,
//! so accepting it gives nothing away. A LAC that sends no proxy AVPs (an L2TP client)
//! gets the ordinary negotiation whatever the entry says.
//!
//! # Files named in the configuration
//!
//! `[users] file` is relative to the directory of the configuration file
//! ([`Config::load`] resolves it; [`Config::from_toml_str`] keeps it as written).

use crate::realm::RealmConfig;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net};
use serde::Deserialize;
use toml::Spanned;

pub use xlns_dataplane::config::{ConfigError, ConfigErrorKind, Position};
use xlns_dataplane::config::{
    RawDataplane, S, Source, duration, fmt_duration, int, ipv4, parse_duration,
};

use crate::ppp::auth::Method;
use crate::ppp::lcp::{AuthProtocol, ChapAlgorithm};
use crate::ppp::pool::{Pool, PoolError, Pools};
use crate::ppp::session::proxy::ProxyMode;

/// Default `[l2tp] listen`: every IPv4 address, the L2TP port (RFC 2661 §8.1).
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 1701);
/// Default `[l2tp] host_name`, sent in the Host Name AVP of SCCRP (RFC 2661 §4.4.3).
pub const DEFAULT_HOST_NAME: &str = "xlns";
/// Default `[l2tp] receive_window`, sent in the Receive Window Size AVP (RFC 2661 §4.4.3).
pub const DEFAULT_RECEIVE_WINDOW: u16 = 16;
/// Default `[l2tp] hello_interval`: idle time before a HELLO is sent (RFC 2661 §6.5).
pub const DEFAULT_HELLO_INTERVAL: Duration = Duration::from_secs(60);
/// Default `[l2tp] retransmit_initial`, the recommended 1 second of RFC 2661 §5.8.
pub const DEFAULT_RETRANSMIT_INITIAL: Duration = Duration::from_secs(1);
/// Default `[l2tp] retransmit_cap`, the smallest cap RFC 2661 §5.8 allows.
pub const DEFAULT_RETRANSMIT_CAP: Duration = Duration::from_secs(8);
/// Default `[l2tp] retransmit_max_retries`, the recommended 5 of RFC 2661 §5.8.
pub const DEFAULT_RETRANSMIT_MAX_RETRIES: u32 = 5;
/// Default `[l2tp] stopccn_wait`: a full retransmission cycle with the default timers,
/// 1 + 2 + 4 + 8 + 8 + 8 = 31 seconds (RFC 2661 §5.7).
pub const DEFAULT_STOPCCN_WAIT: Duration = Duration::from_secs(31);
/// Default `[l2tp] half_open_timeout`: how long a tunnel may wait for SCCCN after SCCRP.
pub const DEFAULT_HALF_OPEN_TIMEOUT: Duration = Duration::from_secs(60);
/// Default `[l2tp] max_tunnels`.
pub const DEFAULT_MAX_TUNNELS: u32 = 4096;
/// Default `[l2tp] max_sessions`, over all tunnels.
pub const DEFAULT_MAX_SESSIONS: u32 = 65536;
/// Default `[admission] max_tunnel_setups`: tunnels between SCCRQ and SCCCN at once.
pub const DEFAULT_MAX_TUNNEL_SETUPS: u32 = 64;
/// Default `[admission] max_session_setups`: sessions between ICRQ and ICCN at once.
pub const DEFAULT_MAX_SESSION_SETUPS: u32 = 1024;
/// Default `[admission] sccrq_per_second`.
pub const DEFAULT_SCCRQ_PER_SECOND: u32 = 100;
/// Default `[admission] sccrq_burst`.
pub const DEFAULT_SCCRQ_BURST: u32 = 200;
/// Default `[admission] icrq_per_second`.
pub const DEFAULT_ICRQ_PER_SECOND: u32 = 1000;
/// Default `[admission] icrq_burst`.
pub const DEFAULT_ICRQ_BURST: u32 = 2000;
/// Default `[ppp] auth`: every method we run, strongest first.
pub const DEFAULT_AUTH: [Method; 3] = [Method::MsChapV2, Method::ChapMd5, Method::Pap];
/// Default `[ppp] chap_name`, our Name in CHAP Challenges (RFC 1994 §4.1).
pub const DEFAULT_CHAP_NAME: &str = "xlns";
/// Default `[ppp] lcp_echo_interval` (pppd's usual `lcp-echo-interval 30`).
pub const DEFAULT_LCP_ECHO_INTERVAL: Duration = Duration::from_secs(30);
/// Default `[ppp] lcp_echo_failures` (pppd's usual `lcp-echo-failure 4`).
pub const DEFAULT_LCP_ECHO_FAILURES: u32 = 4;
/// Default `[ppp] mru`: 1400, so that a full frame plus L2TP/UDP/IPv4 fits a 1500-octet
/// access link.
pub const DEFAULT_MRU: u16 = 1400;
/// Default `[[lac]]` proxy policy: accept the LAC's proxy LCP and proxy authentication
/// (see the module documentation).
pub const DEFAULT_PROXY_MODE: ProxyMode = ProxyMode {
    accept_proxy_auth: true,
    accept_proxy_lcp: true,
    force_chap: false,
    renegotiate_lcp: false,
};

/// The validated configuration. `Config::default()` is what an empty file gives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// `[l2tp]`.
    pub l2tp: L2tpConfig,
    /// `[admission]`.
    pub admission: AdmissionConfig,
    /// `[[lac]]`, in file order.
    pub lacs: Vec<LacConfig>,
    /// `[ppp]`.
    pub ppp: PppConfig,
    /// `[[pool]]`, in file order.
    pub pools: Vec<PoolConfig>,
    /// `[users] file`: the local users file ([`crate::ppp::users`]); `None`: no local users.
    pub users_file: Option<PathBuf>,
    /// `[dataplane]`: where sessions are published for xlns-dataplane; `None` (the section
    /// is absent, or `enabled = false`): no data plane, PPP only.
    pub dataplane: Option<DataplaneConfig>,
    /// `[management]`: the Prometheus endpoint and the xlnsctl socket.
    pub management: ManagementConfig,
    /// `[radius]`: RADIUS authentication and accounting (#7); `None`: the section is
    /// absent, every session authenticates locally.
    pub radius: Option<RadiusConfig>,
    /// `[dae]`: the RFC 5176 Dynamic Authorization server (#7); `None`: absent.
    pub dae: Option<DaeConfig>,
    /// `[[realm]]`, in file order: the AAA choice by the realm of the user name (#7,
    /// [`crate::realm`]).
    pub realms: Vec<RealmConfig>,
}

/// Default `[dataplane] shm`.
pub const DEFAULT_DATAPLANE_SHM: &str = xlns_dataplane::config::DEFAULT_SHM;
/// Default `[dataplane] max_workers`.
pub const DEFAULT_DATAPLANE_MAX_WORKERS: u32 = xlns_dataplane::config::DEFAULT_MAX_WORKERS;

/// `[dataplane]`: the shared-memory segment xlnsd writes established sessions into
/// (ARCHITECTURE.md §4, `crate::shell::dataplane`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataplaneConfig {
    /// `shm`: the segment file (default [`DEFAULT_DATAPLANE_SHM`]).
    pub shm: PathBuf,
    /// `max_sessions`: session slots (default `[l2tp] max_sessions`).
    pub max_sessions: u32,
    /// `max_workers`: worker counter columns (default [`DEFAULT_DATAPLANE_MAX_WORKERS`]);
    /// xlns-dataplane may run at most this many workers.
    pub max_workers: u32,
    /// `access_interface`: the interface the LACs are reached on; our MAC address and the
    /// LACs' (from its neighbour table) go into every session's header template.
    pub access_interface: String,
}

impl Config {
    /// The `[[pool]]` entries as allocator pools (the gateway excluded from the pool that
    /// holds it).
    pub fn build_pools(&self) -> Result<Pools, PoolError> {
        let mut pools = Pools::new();
        for p in &self.pools {
            pools.add(p.build(self.ppp.gateway)?)?;
        }
        Ok(pools)
    }
}

/// `[ppp]`: PPP of every session (RFC 1661, RFC 1332, RFC 1877).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PppConfig {
    /// `auth`: the methods offered in LCP, in order of preference (`"mschap-v2"`,
    /// `"chap-md5"`, `"pap"`); not empty, no repetition.
    pub auth: Vec<Method>,
    /// `chap_name`: our Name in CHAP Challenges.
    pub chap_name: String,
    /// `lcp_echo_interval`: time between LCP Echo-Requests; `"0s"` (`None`) disables the
    /// keepalive. 1s..=1h otherwise.
    pub lcp_echo_interval: Option<Duration>,
    /// `lcp_echo_failures`: unanswered Echo-Requests before the session is given up,
    /// 1..=100.
    pub lcp_echo_failures: u32,
    /// `mru`: the MRU we request (RFC 1661 §6.1), 128..=65535.
    pub mru: u16,
    /// `gateway`: the LNS's own IPv4 address in IPCP (the subscriber's peer address).
    /// Required when pools are configured.
    pub gateway: Option<Ipv4Addr>,
    /// `dns`: primary and secondary DNS servers (RFC 1877), at most two.
    pub dns: [Option<Ipv4Addr>; 2],
    /// `default_pool`: the pool of users without a fixed address or pool of their own;
    /// must name a `[[pool]]`. Default: the first pool.
    pub default_pool: Option<String>,
    /// `ipv6cp`: run IPv6CP besides IPCP. Default `false`.
    pub ipv6cp: bool,
    /// `session_timeout`: sessions are closed this long after they came up. 1s..=8760h.
    pub session_timeout: Option<Duration>,
    /// `idle_timeout`: sessions without traffic this long are closed. 1s..=8760h.
    pub idle_timeout: Option<Duration>,
}

impl PppConfig {
    /// `auth` as LCP Authentication-Protocol values.
    pub fn auth_protocols(&self) -> Vec<AuthProtocol> {
        self.auth
            .iter()
            .map(|m| match m {
                Method::Pap => AuthProtocol::Pap,
                Method::ChapMd5 => AuthProtocol::Chap(ChapAlgorithm::Md5),
                Method::MsChapV2 => AuthProtocol::Chap(ChapAlgorithm::MsChapV2),
            })
            .collect()
    }
}

impl Default for PppConfig {
    fn default() -> Self {
        PppConfig {
            auth: DEFAULT_AUTH.to_vec(),
            chap_name: DEFAULT_CHAP_NAME.to_owned(),
            lcp_echo_interval: Some(DEFAULT_LCP_ECHO_INTERVAL),
            lcp_echo_failures: DEFAULT_LCP_ECHO_FAILURES,
            mru: DEFAULT_MRU,
            gateway: None,
            dns: [None; 2],
            default_pool: None,
            ipv6cp: false,
            session_timeout: None,
            idle_timeout: None,
        }
    }
}

/// One `[[pool]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// `name`: required, non-empty, unique.
    pub name: String,
    /// `cidr`: the block; its network and broadcast addresses are not handed out (except
    /// in a /31 or /32), nor is `[ppp] gateway`.
    pub cidr: Ipv4Net,
    /// `exclude`: further addresses never handed out.
    pub exclude: Vec<Ipv4Addr>,
}

impl PoolConfig {
    /// The allocator pool, `gateway` excluded too.
    pub fn build(&self, gateway: Option<Ipv4Addr>) -> Result<Pool, PoolError> {
        let mut exclude = self.exclude.clone();
        exclude.extend(gateway);
        Pool::from_cidr(&self.name, self.cidr, &exclude)
    }
}

/// `[l2tp]`: the L2TP control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L2tpConfig {
    /// `listen`: the UDP address and port of the control socket.
    pub listen: SocketAddr,
    /// `host_name`: our Host Name AVP (RFC 2661 §4.4.3).
    pub host_name: String,
    /// `receive_window`: our Receive Window Size AVP, 1..=65535 (RFC 2661 §4.4.3, §5.8).
    pub receive_window: u16,
    /// `hello_interval`: idle time before a HELLO (RFC 2661 §6.5), 1 s..=1 h.
    pub hello_interval: Duration,
    /// `retransmit_initial`: first retransmission timeout (RFC 2661 §5.8), 100 ms..=60 s.
    pub retransmit_initial: Duration,
    /// `retransmit_cap`: cap of the exponential backoff, 8 s..=10 min, at least
    /// `retransmit_initial` (RFC 2661 §5.8: "MUST be no less than 8 seconds").
    pub retransmit_cap: Duration,
    /// `retransmit_max_retries`: retransmissions before the tunnel is cleared, 1..=100.
    pub retransmit_max_retries: u32,
    /// `stopccn_wait`: how long a tunnel is kept after StopCCN to acknowledge its
    /// retransmissions; at least one full retransmission cycle (RFC 2661 §5.7).
    pub stopccn_wait: Duration,
    /// `half_open_timeout`: how long a tunnel may wait for SCCCN, 1 s..=1 h.
    pub half_open_timeout: Duration,
    /// `max_tunnels`: tunnels at once, over all LACs, 1..=65535 (the Tunnel ID space).
    pub max_tunnels: u32,
    /// `max_sessions`: sessions at once, over all tunnels, at least 1.
    pub max_sessions: u32,
    /// `accept_unknown_lacs`: whether a LAC that matches no `[[lac]]` entry gets a tunnel
    /// (with the `[l2tp]` defaults, no secret, no per-LAC limits). Default `false`.
    pub accept_unknown_lacs: bool,
}

impl L2tpConfig {
    /// One full retransmission cycle: the time from the first transmission of a message
    /// until the transport gives up, `sum(min(initial * 2^k, cap))` for
    /// `k = 0..=max_retries` (RFC 2661 §5.7, §5.8). 31 s with the defaults.
    pub fn retransmission_cycle(&self) -> Duration {
        retransmission_cycle(
            self.retransmit_initial,
            self.retransmit_cap,
            self.retransmit_max_retries,
        )
    }
}

impl Default for L2tpConfig {
    fn default() -> Self {
        L2tpConfig {
            listen: DEFAULT_LISTEN,
            host_name: DEFAULT_HOST_NAME.to_owned(),
            receive_window: DEFAULT_RECEIVE_WINDOW,
            hello_interval: DEFAULT_HELLO_INTERVAL,
            retransmit_initial: DEFAULT_RETRANSMIT_INITIAL,
            retransmit_cap: DEFAULT_RETRANSMIT_CAP,
            retransmit_max_retries: DEFAULT_RETRANSMIT_MAX_RETRIES,
            stopccn_wait: DEFAULT_STOPCCN_WAIT,
            half_open_timeout: DEFAULT_HALF_OPEN_TIMEOUT,
            max_tunnels: DEFAULT_MAX_TUNNELS,
            max_sessions: DEFAULT_MAX_SESSIONS,
            accept_unknown_lacs: false,
        }
    }
}

/// A token-bucket rate: `per_second` tokens are added each second, up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Sustained rate, 1..=1,000,000 per second.
    pub per_second: u32,
    /// Bucket size, 1..=1,000,000: how many may arrive at once after a quiet period.
    pub burst: u32,
}

/// `[admission]`: limits on setups, so that a flood of SCCRQ or ICRQ cannot make us queue
/// unbounded work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionConfig {
    /// `max_tunnel_setups`: tunnels between SCCRQ and SCCCN at once, at least 1.
    pub max_tunnel_setups: u32,
    /// `max_session_setups`: sessions between ICRQ and ICCN at once, at least 1.
    pub max_session_setups: u32,
    /// `sccrq_per_second` and `sccrq_burst`.
    pub sccrq: Rate,
    /// `icrq_per_second` and `icrq_burst`.
    pub icrq: Rate,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            max_tunnel_setups: DEFAULT_MAX_TUNNEL_SETUPS,
            max_session_setups: DEFAULT_MAX_SESSION_SETUPS,
            sccrq: Rate {
                per_second: DEFAULT_SCCRQ_PER_SECOND,
                burst: DEFAULT_SCCRQ_BURST,
            },
            icrq: Rate {
                per_second: DEFAULT_ICRQ_PER_SECOND,
                burst: DEFAULT_ICRQ_BURST,
            },
        }
    }
}

/// How a `[[lac]]` entry matches the Host Name AVP of an SCCRQ (RFC 2661 §4.4.3). Host
/// names are compared as bytes, case-sensitively: the AVP is opaque.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostNamePattern {
    /// `host_name = "lac1.example.net"`: the whole host name.
    Exact(Vec<u8>),
    /// `host_name = "lac*"`: host names that begin with these bytes (`"*"` alone: any).
    Prefix(Vec<u8>),
}

impl HostNamePattern {
    /// Whether `host_name` matches.
    pub fn matches(&self, host_name: &[u8]) -> bool {
        match self {
            HostNamePattern::Exact(name) => host_name == name.as_slice(),
            HostNamePattern::Prefix(prefix) => host_name.starts_with(prefix),
        }
    }
}

/// A tunnel secret (RFC 2661 §4.4.3 Challenge, §5.1.1, and the key of hidden AVPs, §4.3).
/// Its `Debug` form does not show the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps the secret's bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(bytes)
    }

    /// The secret's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes>)", self.0.len())
    }
}

/// One `[[lac]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LacConfig {
    /// `name`: for logs and metrics; required, non-empty, unique.
    pub name: String,
    /// `host_name`: exact, or a prefix when it ends in `*`. `None`: any host name.
    pub host_name: Option<HostNamePattern>,
    /// `source`: prefixes (IPv4 or IPv6; a bare address is a /32 or /128) the SCCRQ's
    /// source address must lie in. Empty: any source.
    pub source: Vec<IpNet>,
    /// `accept`: whether matching LACs get a tunnel. Default `true`.
    pub accept: bool,
    /// `secret`: when set, tunnel authentication with Challenge / Challenge Response is
    /// required (RFC 2661 §4.4.3, §5.1.1). Must not be empty.
    pub secret: Option<Secret>,
    /// `hide_avps`: send sensitive AVPs hidden (RFC 2661 §4.3); needs `secret`.
    pub hide_avps: bool,
    /// `max_tunnels`: tunnels at once with LACs of this entry, 1..=65535. `None`: only the
    /// global limit.
    pub max_tunnels: Option<u32>,
    /// `max_sessions_per_tunnel`: 1..=65535 (the Session ID space). `None`: no own limit.
    pub max_sessions_per_tunnel: Option<u32>,
    /// `max_sessions`: sessions at once over all tunnels of this entry, at least 1.
    pub max_sessions: Option<u32>,
    /// `hello_interval`: overrides `[l2tp] hello_interval`.
    pub hello_interval: Option<Duration>,
    /// `receive_window`: overrides `[l2tp] receive_window`.
    pub receive_window: Option<u16>,
    /// `proxy_lcp`, `proxy_auth`, `force_chap`, `renegotiate_lcp`: what to do with the
    /// proxy AVPs of NAS-initiated calls. Default [`DEFAULT_PROXY_MODE`].
    pub proxy: ProxyMode,
    /// `aaa`: `"local"` or `"radius"`; `None`: `[radius] auth` decides.
    pub aaa: Option<AaaMode>,
    /// `accounting`: RADIUS accounting of this LAC's sessions when `[radius]` has an
    /// `acct_server`. Default `true`.
    pub accounting: bool,
}

impl Config {
    /// Parses and validates `text`; `file_name` is used in error messages only.
    pub fn from_toml_str(text: &str, file_name: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = xlns_dataplane::config::parse(text, file_name)?;
        raw.validate(&Source::new(text, file_name))
    }

    /// Reads the file at `path` and parses it with [`Config::from_toml_str`]; errors name
    /// the path as given.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = xlns_dataplane::config::read(path)?;
        let mut config = Config::from_toml_str(&text, &path.display().to_string())?;
        if let Some(users) = &mut config.users_file
            && users.is_relative()
        {
            let dir = path.parent().unwrap_or(Path::new(""));
            *users = dir.join(&*users);
        }
        Ok(config)
    }
}

/// `sum(min(initial * 2^k, cap))` for `k = 0..=max_retries` (RFC 2661 §5.8), saturating.
fn retransmission_cycle(initial: Duration, cap: Duration, max_retries: u32) -> Duration {
    let mut total = Duration::ZERO;
    let mut interval = initial.min(cap);
    for _ in 0..=max_retries {
        total = total.saturating_add(interval);
        interval = interval.saturating_mul(2).min(cap);
    }
    total
}

// ---------------------------------------------------------------------------------------
// The raw document: what serde reads, with the span of every value that is validated.
// Integers are read as i64 so that range errors are ours, with one wording.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    l2tp: RawL2tp,
    #[serde(default)]
    admission: RawAdmission,
    #[serde(default)]
    lac: Vec<RawLac>,
    #[serde(default)]
    ppp: RawPpp,
    #[serde(default)]
    pool: Vec<RawPool>,
    #[serde(default)]
    users: RawUsers,
    dataplane: Option<Spanned<RawDataplane>>,
    #[serde(default)]
    management: RawManagement,
    radius: Option<RawRadius>,
    dae: Option<RawDae>,
    #[serde(default)]
    realm: Vec<RawRealm>,
}

/// One `[[realm]]` as read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRealm {
    name: Spanned<String>,
    aaa: S<String>,
    strip: Option<bool>,
}

impl RawRealm {
    fn validate(
        &self,
        src: &Source<'_>,
        i: usize,
        before: &[RealmConfig],
        has_auth_servers: bool,
    ) -> Result<RealmConfig, ConfigError> {
        let name = self.name.get_ref();
        let key = |k: &str| format!("realm[{i}].{k}");
        if name.is_empty() || name.len() > 253 || name.contains('@') {
            return Err(src.invalid(
                self.name.span(),
                &key("name"),
                "must hold 1 to 253 octets, without '@' (the part after the '@')",
            ));
        }
        if let Some(j) = before
            .iter()
            .position(|r| r.name.eq_ignore_ascii_case(name))
        {
            return Err(src.invalid(
                self.name.span(),
                &key("name"),
                format!("{name:?} is realm[{j}] already (realms compare case-insensitively)"),
            ));
        }
        let aaa = match &self.aaa {
            None => None,
            Some(v) => {
                let mode = aaa_mode(src, &key("aaa"), v)?;
                if mode == AaaMode::Radius && !has_auth_servers {
                    return Err(src.invalid(
                        v.span(),
                        &key("aaa"),
                        "RADIUS authentication needs a [[radius.auth_server]]",
                    ));
                }
                Some(mode)
            }
        };
        Ok(RealmConfig {
            name: name.clone(),
            aaa,
            strip: self.strip.unwrap_or(false),
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPpp {
    auth: Option<Spanned<Vec<Spanned<String>>>>,
    chap_name: S<String>,
    lcp_echo_interval: S<String>,
    lcp_echo_failures: S<i64>,
    mru: S<i64>,
    gateway: S<String>,
    dns: Option<Spanned<Vec<Spanned<String>>>>,
    default_pool: S<String>,
    ipv6cp: Option<bool>,
    session_timeout: S<String>,
    idle_timeout: S<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPool {
    name: Spanned<String>,
    cidr: Spanned<String>,
    #[serde(default)]
    exclude: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUsers {
    file: S<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawL2tp {
    listen: S<String>,
    host_name: S<String>,
    receive_window: S<i64>,
    hello_interval: S<String>,
    retransmit_initial: S<String>,
    retransmit_cap: S<String>,
    retransmit_max_retries: S<i64>,
    stopccn_wait: S<String>,
    half_open_timeout: S<String>,
    max_tunnels: S<i64>,
    max_sessions: S<i64>,
    accept_unknown_lacs: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmission {
    max_tunnel_setups: S<i64>,
    max_session_setups: S<i64>,
    sccrq_per_second: S<i64>,
    sccrq_burst: S<i64>,
    icrq_per_second: S<i64>,
    icrq_burst: S<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLac {
    name: Spanned<String>,
    host_name: S<String>,
    #[serde(default)]
    source: Vec<Spanned<String>>,
    accept: Option<bool>,
    secret: S<String>,
    hide_avps: S<bool>,
    max_tunnels: S<i64>,
    max_sessions_per_tunnel: S<i64>,
    max_sessions: S<i64>,
    hello_interval: S<String>,
    receive_window: S<i64>,
    proxy_lcp: Option<bool>,
    proxy_auth: Option<bool>,
    force_chap: S<bool>,
    renegotiate_lcp: Option<bool>,
    aaa: S<String>,
    accounting: Option<bool>,
}

const HELLO_MIN: Duration = Duration::from_secs(1);
const HELLO_MAX: Duration = Duration::from_secs(3600);
const U16_MAX: i64 = u16::MAX as i64;
const U32_MAX: i64 = u32::MAX as i64;

impl RawConfig {
    fn validate(self, src: &Source<'_>) -> Result<Config, ConfigError> {
        let l2tp = self.l2tp.validate(src)?;
        let admission = self.admission.validate(src)?;
        let radius = match &self.radius {
            None => None,
            Some(raw) => Some(raw.validate(src)?),
        };
        check_aaa(src, &self.lac, self.radius.as_ref().zip(radius.as_ref()))?;
        let mut lacs: Vec<LacConfig> = Vec::with_capacity(self.lac.len());
        for (i, raw) in self.lac.into_iter().enumerate() {
            let lac = raw.validate(src, i, &lacs)?;
            lacs.push(lac);
        }
        let has_auth_servers = radius.as_ref().is_some_and(|r| !r.auth_servers.is_empty());
        let mut realms: Vec<RealmConfig> = Vec::with_capacity(self.realm.len());
        for (i, raw) in self.realm.iter().enumerate() {
            let realm = raw.validate(src, i, &realms, has_auth_servers)?;
            realms.push(realm);
        }
        let mut ppp = self.ppp.validate(src)?;
        let mut pools: Vec<PoolConfig> = Vec::with_capacity(self.pool.len());
        for (i, raw) in self.pool.iter().enumerate() {
            let pool = raw.validate(src, i, &pools, ppp.gateway)?;
            pools.push(pool);
        }
        match &self.ppp.default_pool {
            Some(v) => {
                if !pools.iter().any(|p| p.name == *v.get_ref()) {
                    return Err(src.invalid(
                        v.span(),
                        "ppp.default_pool",
                        format!("no [[pool]] named {:?}", v.get_ref()),
                    ));
                }
            }
            None => ppp.default_pool = pools.first().map(|p| p.name.clone()),
        }
        let users_file = match &self.users.file {
            None => None,
            Some(v) if v.get_ref().is_empty() => {
                return Err(src.invalid(v.span(), "users.file", "must not be empty"));
            }
            Some(v) => Some(PathBuf::from(v.get_ref())),
        };
        let dataplane = match &self.dataplane {
            None => None,
            Some(raw) => dataplane_config(raw, src, &l2tp)?,
        };
        Ok(Config {
            l2tp,
            admission,
            lacs,
            ppp,
            pools,
            users_file,
            dataplane,
            management: self.management.validate(src)?,
            radius,
            dae: match &self.dae {
                None => None,
                Some(raw) => Some(raw.validate(src)?),
            },
            realms,
        })
    }
}

/// xlnsd's view of `[dataplane]` (the schema and its rules are shared with
/// xlns-dataplane: [`xlns_dataplane::config::RawDataplane`]); `None` when disabled.
fn dataplane_config(
    raw: &Spanned<RawDataplane>,
    src: &Source<'_>,
    l2tp: &L2tpConfig,
) -> Result<Option<DataplaneConfig>, ConfigError> {
    let section = raw
        .get_ref()
        .validate(src, Some(src.position(raw.span().start)))?;
    if !section.enabled {
        return Ok(None);
    }
    Ok(Some(DataplaneConfig {
        shm: section.shm,
        max_sessions: section.max_sessions.unwrap_or(
            l2tp.max_sessions
                .clamp(1, xlns_dataplane::shm::Geometry::MAX_SESSIONS),
        ),
        max_workers: section.max_workers,
        access_interface: section.access_interface,
    }))
}

/// The longest session and idle timeouts: a year.
const TIMEOUT_MAX: Duration = Duration::from_secs(8760 * 3600);

impl RawPpp {
    fn validate(&self, src: &Source<'_>) -> Result<PppConfig, ConfigError> {
        let d = PppConfig::default();
        let auth = match &self.auth {
            None => d.auth,
            Some(list) => {
                if list.get_ref().is_empty() {
                    return Err(src.invalid(
                        list.span(),
                        "ppp.auth",
                        "must name at least one method (\"mschap-v2\", \"chap-md5\", \"pap\")",
                    ));
                }
                let mut auth: Vec<Method> = Vec::new();
                for (i, v) in list.get_ref().iter().enumerate() {
                    let key = format!("ppp.auth[{i}]");
                    let method = match v.get_ref().as_str() {
                        "mschap-v2" => Method::MsChapV2,
                        "chap-md5" => Method::ChapMd5,
                        "pap" => Method::Pap,
                        other => {
                            return Err(src.invalid(
                                v.span(),
                                &key,
                                format!(
                                    "unknown authentication method {other:?}; known: \"mschap-v2\", \
                                     \"chap-md5\", \"pap\""
                                ),
                            ));
                        }
                    };
                    if auth.contains(&method) {
                        return Err(src.invalid(
                            v.span(),
                            &key,
                            format!("{:?} listed twice", v.get_ref()),
                        ));
                    }
                    auth.push(method);
                }
                auth
            }
        };
        let chap_name = match &self.chap_name {
            None => d.chap_name,
            Some(v) if v.get_ref().is_empty() => {
                return Err(src.invalid(v.span(), "ppp.chap_name", "must not be empty"));
            }
            Some(v) => v.get_ref().clone(),
        };
        let lcp_echo_interval = match &self.lcp_echo_interval {
            None => d.lcp_echo_interval,
            Some(v) if parse_duration(v.get_ref()) == Some(Duration::ZERO) => None,
            Some(_) => duration(
                src,
                "ppp.lcp_echo_interval",
                &self.lcp_echo_interval,
                Duration::from_secs(1),
                Duration::from_secs(3600),
            )?,
        };
        let lcp_echo_failures = int(
            src,
            "ppp.lcp_echo_failures",
            &self.lcp_echo_failures,
            1,
            100,
        )?
        .unwrap_or(d.lcp_echo_failures);
        // RFC 1661 §6.1: the MRU is 16 bits; below 128 octets nothing useful fits.
        let mru = int(src, "ppp.mru", &self.mru, 128, U16_MAX)?.unwrap_or(d.mru);
        let gateway = match &self.gateway {
            None => None,
            Some(v) => {
                let a = ipv4(src, "ppp.gateway", v)?;
                if a.is_unspecified() || a.is_broadcast() || a.is_multicast() {
                    return Err(src.invalid(
                        v.span(),
                        "ppp.gateway",
                        format!("{a} cannot be the LNS's address"),
                    ));
                }
                Some(a)
            }
        };
        let mut dns = [None; 2];
        if let Some(list) = &self.dns {
            // RFC 1877: a primary and a secondary server.
            if list.get_ref().len() > 2 {
                return Err(src.invalid(
                    list.span(),
                    "ppp.dns",
                    "at most two servers (primary and secondary, RFC 1877)",
                ));
            }
            for (i, v) in list.get_ref().iter().enumerate() {
                dns[i] = Some(ipv4(src, &format!("ppp.dns[{i}]"), v)?);
            }
        }
        let session_timeout = duration(
            src,
            "ppp.session_timeout",
            &self.session_timeout,
            Duration::from_secs(1),
            TIMEOUT_MAX,
        )?;
        let idle_timeout = duration(
            src,
            "ppp.idle_timeout",
            &self.idle_timeout,
            Duration::from_secs(1),
            TIMEOUT_MAX,
        )?;
        Ok(PppConfig {
            auth,
            chap_name,
            lcp_echo_interval,
            lcp_echo_failures,
            mru,
            gateway,
            dns,
            default_pool: self.default_pool.as_ref().map(|v| v.get_ref().clone()),
            ipv6cp: self.ipv6cp.unwrap_or(d.ipv6cp),
            session_timeout,
            idle_timeout,
        })
    }
}

impl RawPool {
    fn validate(
        &self,
        src: &Source<'_>,
        index: usize,
        before: &[PoolConfig],
        gateway: Option<Ipv4Addr>,
    ) -> Result<PoolConfig, ConfigError> {
        let key = |k: &str| format!("pool[{index}].{k}");
        let name = self.name.get_ref();
        if name.is_empty() {
            return Err(src.invalid(self.name.span(), &key("name"), "must not be empty"));
        }
        if let Some(j) = before.iter().position(|p| p.name == *name) {
            return Err(src.invalid(
                self.name.span(),
                &key("name"),
                format!("duplicate pool name {name:?} (also pool[{j}].name)"),
            ));
        }
        let text = self.cidr.get_ref();
        let cidr = match text.parse::<Ipv4Net>() {
            Ok(net) if net.trunc() == net => net,
            Ok(net) => {
                return Err(src.invalid(
                    self.cidr.span(),
                    &key("cidr"),
                    format!(
                        "{text:?} has host bits set; did you mean \"{}\"?",
                        net.trunc()
                    ),
                ));
            }
            Err(_) => {
                return Err(src.invalid(
                    self.cidr.span(),
                    &key("cidr"),
                    format!("{text:?} is not an IPv4 prefix such as \"10.0.0.0/24\""),
                ));
            }
        };
        let mut exclude = Vec::with_capacity(self.exclude.len());
        for (i, v) in self.exclude.iter().enumerate() {
            exclude.push(ipv4(src, &key(&format!("exclude[{i}]")), v)?);
        }
        if gateway.is_none() {
            return Err(src.invalid(
                self.name.span(),
                "ppp.gateway",
                "pools need [ppp] gateway, the LNS's own address in IPCP",
            ));
        }
        let pool = PoolConfig {
            name: name.clone(),
            cidr,
            exclude,
        };
        if let Err(e) = pool.build(gateway) {
            return Err(src.invalid(self.cidr.span(), &key("cidr"), e.to_string()));
        }
        Ok(pool)
    }
}

impl RawL2tp {
    fn validate(self, src: &Source<'_>) -> Result<L2tpConfig, ConfigError> {
        let d = L2tpConfig::default();
        let listen = match &self.listen {
            None => d.listen,
            Some(v) => match v.get_ref().parse::<SocketAddr>() {
                Ok(a) if a.port() != 0 => a,
                Ok(_) => return Err(src.invalid(v.span(), "l2tp.listen", "port must not be 0")),
                Err(_) => {
                    return Err(src.invalid(
                        v.span(),
                        "l2tp.listen",
                        format!(
                            "{:?} is not an address and port such as \"0.0.0.0:1701\" or \
                             \"[::]:1701\"",
                            v.get_ref()
                        ),
                    ));
                }
            },
        };
        let host_name = match &self.host_name {
            None => d.host_name,
            Some(v) if v.get_ref().is_empty() => {
                // RFC 2661 §4.4.3: the Host Name AVP is at least one octet.
                return Err(src.invalid(v.span(), "l2tp.host_name", "must not be empty"));
            }
            Some(v) => v.get_ref().clone(),
        };
        let receive_window = int(src, "l2tp.receive_window", &self.receive_window, 1, U16_MAX)?
            .unwrap_or(d.receive_window);
        let hello_interval = duration(
            src,
            "l2tp.hello_interval",
            &self.hello_interval,
            HELLO_MIN,
            HELLO_MAX,
        )?
        .unwrap_or(d.hello_interval);
        let retransmit_initial = duration(
            src,
            "l2tp.retransmit_initial",
            &self.retransmit_initial,
            Duration::from_millis(100),
            Duration::from_secs(60),
        )?
        .unwrap_or(d.retransmit_initial);
        // RFC 2661 §5.8: the cap "MUST be no less than 8 seconds per retransmission".
        let retransmit_cap = duration(
            src,
            "l2tp.retransmit_cap",
            &self.retransmit_cap,
            Duration::from_secs(8),
            Duration::from_secs(600),
        )?
        .unwrap_or(d.retransmit_cap);
        if retransmit_cap < retransmit_initial {
            let (span, key) = match (&self.retransmit_cap, &self.retransmit_initial) {
                (Some(v), _) => (v.span(), "l2tp.retransmit_cap"),
                (None, Some(v)) => (v.span(), "l2tp.retransmit_initial"),
                (None, None) => (0..0, "l2tp.retransmit_cap"),
            };
            return Err(src.invalid(
                span,
                key,
                format!(
                    "retransmit_cap ({}) must not be less than retransmit_initial ({})",
                    fmt_duration(retransmit_cap),
                    fmt_duration(retransmit_initial)
                ),
            ));
        }
        let retransmit_max_retries = int(
            src,
            "l2tp.retransmit_max_retries",
            &self.retransmit_max_retries,
            1,
            100,
        )?
        .unwrap_or(d.retransmit_max_retries);
        let stopccn_wait = duration(
            src,
            "l2tp.stopccn_wait",
            &self.stopccn_wait,
            Duration::from_secs(1),
            Duration::from_secs(600),
        )?
        .unwrap_or(d.stopccn_wait);
        // RFC 2661 §5.7: after StopCCN the state is kept "over at least a full
        // retransmission cycle" so that the peer's retransmitted StopCCN is acknowledged.
        let cycle =
            retransmission_cycle(retransmit_initial, retransmit_cap, retransmit_max_retries);
        if stopccn_wait < cycle {
            let (span, key) = [
                (&self.stopccn_wait, "l2tp.stopccn_wait"),
                (&self.retransmit_cap, "l2tp.retransmit_cap"),
                (&self.retransmit_initial, "l2tp.retransmit_initial"),
            ]
            .into_iter()
            .find_map(|(v, k)| v.as_ref().map(|v| (v.span(), k)))
            .or_else(|| {
                self.retransmit_max_retries
                    .as_ref()
                    .map(|v| (v.span(), "l2tp.retransmit_max_retries"))
            })
            .unwrap_or((0..0, "l2tp.stopccn_wait"));
            return Err(src.invalid(
                span,
                key,
                format!(
                    "stopccn_wait ({}) is shorter than one retransmission cycle ({}); \
                     RFC 2661 §5.7 keeps the tunnel for at least a full cycle",
                    fmt_duration(stopccn_wait),
                    fmt_duration(cycle)
                ),
            ));
        }
        let half_open_timeout = duration(
            src,
            "l2tp.half_open_timeout",
            &self.half_open_timeout,
            Duration::from_secs(1),
            Duration::from_secs(3600),
        )?
        .unwrap_or(d.half_open_timeout);
        let max_tunnels =
            int(src, "l2tp.max_tunnels", &self.max_tunnels, 1, U16_MAX)?.unwrap_or(d.max_tunnels);
        let max_sessions = int(src, "l2tp.max_sessions", &self.max_sessions, 1, U32_MAX)?
            .unwrap_or(d.max_sessions);
        Ok(L2tpConfig {
            listen,
            host_name,
            receive_window,
            hello_interval,
            retransmit_initial,
            retransmit_cap,
            retransmit_max_retries,
            stopccn_wait,
            half_open_timeout,
            max_tunnels,
            max_sessions,
            accept_unknown_lacs: self.accept_unknown_lacs.unwrap_or(d.accept_unknown_lacs),
        })
    }
}

impl RawAdmission {
    fn validate(self, src: &Source<'_>) -> Result<AdmissionConfig, ConfigError> {
        let d = AdmissionConfig::default();
        const RATE_MAX: i64 = 1_000_000;
        Ok(AdmissionConfig {
            max_tunnel_setups: int(
                src,
                "admission.max_tunnel_setups",
                &self.max_tunnel_setups,
                1,
                U32_MAX,
            )?
            .unwrap_or(d.max_tunnel_setups),
            max_session_setups: int(
                src,
                "admission.max_session_setups",
                &self.max_session_setups,
                1,
                U32_MAX,
            )?
            .unwrap_or(d.max_session_setups),
            sccrq: Rate {
                per_second: int(
                    src,
                    "admission.sccrq_per_second",
                    &self.sccrq_per_second,
                    1,
                    RATE_MAX,
                )?
                .unwrap_or(d.sccrq.per_second),
                burst: int(src, "admission.sccrq_burst", &self.sccrq_burst, 1, RATE_MAX)?
                    .unwrap_or(d.sccrq.burst),
            },
            icrq: Rate {
                per_second: int(
                    src,
                    "admission.icrq_per_second",
                    &self.icrq_per_second,
                    1,
                    RATE_MAX,
                )?
                .unwrap_or(d.icrq.per_second),
                burst: int(src, "admission.icrq_burst", &self.icrq_burst, 1, RATE_MAX)?
                    .unwrap_or(d.icrq.burst),
            },
        })
    }
}

impl RawLac {
    fn validate(
        self,
        src: &Source<'_>,
        index: usize,
        before: &[LacConfig],
    ) -> Result<LacConfig, ConfigError> {
        let key = |k: &str| format!("lac[{index}].{k}");
        let name = self.name.get_ref();
        if name.is_empty() {
            return Err(src.invalid(self.name.span(), &key("name"), "must not be empty"));
        }
        if let Some(j) = before.iter().position(|l| l.name == *name) {
            return Err(src.invalid(
                self.name.span(),
                &key("name"),
                format!("duplicate LAC name {name:?} (also lac[{j}].name)"),
            ));
        }
        let host_name = match &self.host_name {
            None => None,
            Some(v) => Some(
                parse_host_name(v.get_ref())
                    .map_err(|m| src.invalid(v.span(), &key("host_name"), m))?,
            ),
        };
        let mut source = Vec::with_capacity(self.source.len());
        for (i, v) in self.source.iter().enumerate() {
            let net = parse_prefix(v.get_ref())
                .map_err(|m| src.invalid(v.span(), &key(&format!("source[{i}]")), m))?;
            source.push(net);
        }
        let secret = match &self.secret {
            None => None,
            Some(v) if v.get_ref().is_empty() => {
                return Err(src.invalid(
                    v.span(),
                    &key("secret"),
                    "must not be empty (remove the key to run without tunnel authentication)",
                ));
            }
            Some(v) => Some(Secret::new(v.get_ref().as_bytes().to_vec())),
        };
        let hide_avps = match &self.hide_avps {
            // RFC 2661 §4.3: hiding is keyed with the tunnel secret.
            Some(v) if *v.get_ref() && secret.is_none() => {
                return Err(src.invalid(
                    v.span(),
                    &key("hide_avps"),
                    "hiding AVPs needs a secret (RFC 2661 §4.3); set secret",
                ));
            }
            Some(v) => *v.get_ref(),
            None => false,
        };
        Ok(LacConfig {
            name: name.clone(),
            host_name,
            source,
            accept: self.accept.unwrap_or(true),
            secret,
            hide_avps,
            max_tunnels: int(src, &key("max_tunnels"), &self.max_tunnels, 1, U16_MAX)?,
            max_sessions_per_tunnel: int(
                src,
                &key("max_sessions_per_tunnel"),
                &self.max_sessions_per_tunnel,
                1,
                U16_MAX,
            )?,
            max_sessions: int(src, &key("max_sessions"), &self.max_sessions, 1, U32_MAX)?,
            hello_interval: duration(
                src,
                &key("hello_interval"),
                &self.hello_interval,
                HELLO_MIN,
                HELLO_MAX,
            )?,
            receive_window: int(
                src,
                &key("receive_window"),
                &self.receive_window,
                1,
                U16_MAX,
            )?,
            proxy: self.proxy_mode(src, index)?,
            aaa: match &self.aaa {
                None => None,
                Some(v) => Some(aaa_mode(src, &key("aaa"), v)?),
            },
            accounting: self.accounting.unwrap_or(true),
        })
    }

    fn proxy_mode(&self, src: &Source<'_>, index: usize) -> Result<ProxyMode, ConfigError> {
        let d = DEFAULT_PROXY_MODE;
        let mode = ProxyMode {
            accept_proxy_auth: self.proxy_auth.unwrap_or(d.accept_proxy_auth),
            accept_proxy_lcp: self.proxy_lcp.unwrap_or(d.accept_proxy_lcp),
            force_chap: self.force_chap.as_ref().is_some_and(|v| *v.get_ref()),
            renegotiate_lcp: self.renegotiate_lcp.unwrap_or(d.renegotiate_lcp),
        };
        // Forced CHAP challenges on the LAC's LCP (ARCHITECTURE.md §1: renegotiation >
        // forced CHAP > proxy); with LCP renegotiated it would never apply.
        if let Some(v) = &self.force_chap
            && mode.force_chap
        {
            let why = if mode.renegotiate_lcp {
                Some("renegotiate_lcp = true")
            } else if !mode.accept_proxy_lcp {
                Some("proxy_lcp = false")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(src.invalid(
                    v.span(),
                    &format!("lac[{index}].force_chap"),
                    format!(
                        "force_chap has no effect with {why}: LCP is renegotiated and \
                         authentication runs from scratch"
                    ),
                ));
            }
        }
        Ok(mode)
    }
}

fn parse_host_name(s: &str) -> Result<HostNamePattern, String> {
    if s.is_empty() {
        return Err("must not be empty".to_owned());
    }
    match s.find('*') {
        None => Ok(HostNamePattern::Exact(s.as_bytes().to_vec())),
        Some(i) if i == s.len() - 1 => Ok(HostNamePattern::Prefix(s.as_bytes()[..i].to_vec())),
        Some(_) => Err(format!(
            "{s:?}: '*' is allowed only as the last character (a prefix match)"
        )),
    }
}

/// `"192.0.2.0/24"`, `"2001:db8::/32"`, or a bare address (a /32 or /128). Host bits must
/// be zero: `10.0.0.1/8` is more likely a typo than a wish.
fn parse_prefix(s: &str) -> Result<IpNet, String> {
    let net = match s.parse::<IpNet>() {
        Ok(net) => net,
        Err(_) => match s.parse::<IpAddr>() {
            Ok(addr) => IpNet::from(addr),
            Err(_) => {
                return Err(format!(
                    "{s:?} is not an IPv4 or IPv6 prefix such as \"192.0.2.0/24\" or \
                     \"2001:db8::/32\""
                ));
            }
        },
    };
    if net.trunc() != net {
        return Err(format!(
            "{s:?} has host bits set; did you mean \"{}\"?",
            net.trunc()
        ));
    }
    Ok(net)
}

// ---------------------------------------------------------------------------------------
// [radius] (#7)

/// Default `[radius] timeout`: the first retransmission timeout.
pub const DEFAULT_RADIUS_TIMEOUT: Duration = Duration::from_secs(2);
/// Default `[radius] max_timeout`: the retransmission timeout cap.
pub const DEFAULT_RADIUS_MAX_TIMEOUT: Duration = Duration::from_secs(16);
/// Default `[radius] retries`: transmissions of one request to one server.
pub const DEFAULT_RADIUS_RETRIES: u32 = 3;
/// Default `[radius] dead_time`.
pub const DEFAULT_RADIUS_DEAD_TIME: Duration = Duration::from_secs(60);
/// Default `[radius] nas_identifier`.
pub const DEFAULT_NAS_IDENTIFIER: &str = "xlns";
/// Default `[radius] spool_max_records`.
pub const DEFAULT_SPOOL_MAX_RECORDS: u32 = 1_000_000;
/// Default `[radius] spool_max_bytes`: 1 GiB.
pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 1 << 30;

/// How a session is authenticated: `aaa = "local" | "radius"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AaaMode {
    /// The local users file.
    #[default]
    Local,
    /// RADIUS Access-Request to `[radius]`'s auth servers.
    Radius,
}

/// One `[[radius.auth_server]]` or `[[radius.acct_server]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RadiusServerConfig {
    /// `address`: `ip:port`.
    pub address: SocketAddr,
    /// `secret`: the shared secret, not empty.
    pub secret: Secret,
}

/// `[radius]`: RADIUS authentication and accounting (RFC 2865, RFC 2866).
///
/// ```toml
/// [radius]
/// auth = "radius"                 # default for LACs without `aaa` ("local" if absent)
/// nas_identifier = "lns1"
/// nas_ip_address = "192.0.2.1"
/// timeout = "2s"                  # first retransmission timeout
/// max_timeout = "16s"
/// retries = 3                     # transmissions per server
/// dead_time = "60s"
/// interim_interval = "5m"         # unless the Access-Accept says otherwise
/// spool = "/var/lib/xlns/acct.spool"
/// spool_max_records = 1000000
/// spool_max_bytes = 1073741824
/// [[radius.auth_server]]
/// address = "127.0.0.1:1812"
/// secret = "testing123"
/// [[radius.acct_server]]
/// address = "127.0.0.1:1813"
/// secret = "testing123"
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RadiusConfig {
    /// `auth`: the default [`AaaMode`] of sessions whose LAC entry has no `aaa`.
    pub auth: AaaMode,
    /// `auth_server`, in order of preference.
    pub auth_servers: Vec<RadiusServerConfig>,
    /// `acct_server`, in order of preference; empty: no accounting.
    pub acct_servers: Vec<RadiusServerConfig>,
    /// `nas_identifier` (NAS-Identifier, RFC 2865 §5.32).
    pub nas_identifier: String,
    /// `nas_ip_address` (NAS-IP-Address, RFC 2865 §5.4).
    pub nas_ip_address: Option<Ipv4Addr>,
    /// `timeout`.
    pub timeout: Duration,
    /// `max_timeout`.
    pub max_timeout: Duration,
    /// `retries`: transmissions to one server, 1..=10.
    pub retries: u32,
    /// `dead_time`.
    pub dead_time: Duration,
    /// `interim_interval`: Acct-Interim-Interval when the Access-Accept has none;
    /// `None`: no Interim-Update.
    pub interim_interval: Option<Duration>,
    /// `spool`: the accounting spool file; `None`: records live in memory only.
    pub spool: Option<PathBuf>,
    /// `spool_max_records`: records kept unacknowledged at most.
    pub spool_max_records: u32,
    /// `spool_max_bytes`: bytes of unacknowledged records at most (at least 4096).
    pub spool_max_bytes: u64,
}

impl RadiusConfig {
    /// The [`AaaMode`] of sessions under `lac` (`None`: no `[[lac]]` matched).
    pub fn mode_for(&self, lac: Option<&LacConfig>) -> AaaMode {
        lac.and_then(|l| l.aaa).unwrap_or(self.auth)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRadiusServer {
    address: Spanned<String>,
    secret: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRadius {
    auth: S<String>,
    #[serde(default)]
    auth_server: Vec<RawRadiusServer>,
    #[serde(default)]
    acct_server: Vec<RawRadiusServer>,
    nas_identifier: S<String>,
    nas_ip_address: S<String>,
    timeout: S<String>,
    max_timeout: S<String>,
    retries: S<i64>,
    dead_time: S<String>,
    interim_interval: S<String>,
    spool: S<String>,
    spool_max_records: S<i64>,
    spool_max_bytes: S<i64>,
}

fn aaa_mode(src: &Source<'_>, key: &str, v: &Spanned<String>) -> Result<AaaMode, ConfigError> {
    match v.get_ref().as_str() {
        "local" => Ok(AaaMode::Local),
        "radius" => Ok(AaaMode::Radius),
        other => Err(src.invalid(
            v.span(),
            key,
            format!("{other:?} is neither \"local\" nor \"radius\""),
        )),
    }
}

fn radius_servers(
    src: &Source<'_>,
    key: &str,
    raw: &[RawRadiusServer],
) -> Result<Vec<RadiusServerConfig>, ConfigError> {
    let mut out = Vec::with_capacity(raw.len());
    for (i, s) in raw.iter().enumerate() {
        let address = s.address.get_ref().parse::<SocketAddr>().map_err(|_| {
            src.invalid(
                s.address.span(),
                &format!("{key}[{i}].address"),
                format!("{:?} is not an address:port", s.address.get_ref()),
            )
        })?;
        if s.secret.get_ref().is_empty() {
            return Err(src.invalid(
                s.secret.span(),
                &format!("{key}[{i}].secret"),
                "must not be empty",
            ));
        }
        out.push(RadiusServerConfig {
            address,
            secret: Secret::new(s.secret.get_ref().as_bytes().to_vec()),
        });
    }
    Ok(out)
}

impl RawRadius {
    fn validate(&self, src: &Source<'_>) -> Result<RadiusConfig, ConfigError> {
        let auth = match &self.auth {
            None => AaaMode::Local,
            Some(v) => aaa_mode(src, "radius.auth", v)?,
        };
        let nas_identifier = match &self.nas_identifier {
            None => DEFAULT_NAS_IDENTIFIER.to_owned(),
            Some(v) if v.get_ref().is_empty() || v.get_ref().len() > 253 => {
                return Err(src.invalid(
                    v.span(),
                    "radius.nas_identifier",
                    "must hold 1 to 253 octets",
                ));
            }
            Some(v) => v.get_ref().clone(),
        };
        let nas_ip_address = match &self.nas_ip_address {
            None => None,
            Some(v) => Some(ipv4(src, "radius.nas_ip_address", v)?),
        };
        let ms = Duration::from_millis;
        let timeout = duration(src, "radius.timeout", &self.timeout, ms(10), ms(60_000))?
            .unwrap_or(DEFAULT_RADIUS_TIMEOUT);
        let max_timeout = duration(
            src,
            "radius.max_timeout",
            &self.max_timeout,
            ms(10),
            ms(600_000),
        )?
        .unwrap_or(DEFAULT_RADIUS_MAX_TIMEOUT.max(timeout));
        if max_timeout < timeout
            && let Some(v) = &self.max_timeout
        {
            return Err(src.invalid(
                v.span(),
                "radius.max_timeout",
                "must not be below radius.timeout",
            ));
        }
        Ok(RadiusConfig {
            auth,
            auth_servers: radius_servers(src, "radius.auth_server", &self.auth_server)?,
            acct_servers: radius_servers(src, "radius.acct_server", &self.acct_server)?,
            nas_identifier,
            nas_ip_address,
            timeout,
            max_timeout,
            retries: int(src, "radius.retries", &self.retries, 1, 10)?
                .unwrap_or(DEFAULT_RADIUS_RETRIES),
            dead_time: duration(src, "radius.dead_time", &self.dead_time, ms(0), TIMEOUT_MAX)?
                .unwrap_or(DEFAULT_RADIUS_DEAD_TIME),
            interim_interval: duration(
                src,
                "radius.interim_interval",
                &self.interim_interval,
                Duration::from_secs(1),
                TIMEOUT_MAX,
            )?,
            spool: match &self.spool {
                None => None,
                Some(v) if v.get_ref().is_empty() => {
                    return Err(src.invalid(v.span(), "radius.spool", "must not be empty"));
                }
                Some(v) => Some(PathBuf::from(v.get_ref())),
            },
            spool_max_records: int(
                src,
                "radius.spool_max_records",
                &self.spool_max_records,
                1,
                U32_MAX,
            )?
            .unwrap_or(DEFAULT_SPOOL_MAX_RECORDS),
            spool_max_bytes: int::<u64>(
                src,
                "radius.spool_max_bytes",
                &self.spool_max_bytes,
                4096,
                i64::MAX,
            )?
            .unwrap_or(DEFAULT_SPOOL_MAX_BYTES),
        })
    }
}

/// RADIUS authentication (globally or for a LAC) needs an auth server.
fn check_aaa(
    src: &Source<'_>,
    lacs: &[RawLac],
    radius: Option<(&RawRadius, &RadiusConfig)>,
) -> Result<(), ConfigError> {
    let has_servers = radius.is_some_and(|(_, r)| !r.auth_servers.is_empty());
    if has_servers {
        return Ok(());
    }
    const WHY: &str = "RADIUS authentication needs a [[radius.auth_server]]";
    if let Some((raw, config)) = radius
        && config.auth == AaaMode::Radius
        && let Some(v) = &raw.auth
    {
        return Err(src.invalid(v.span(), "radius.auth", WHY));
    }
    for (i, lac) in lacs.iter().enumerate() {
        if let Some(v) = &lac.aaa
            && v.get_ref() == "radius"
        {
            return Err(src.invalid(v.span(), &format!("lac[{i}].aaa"), WHY));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// [dae] (#7): the RFC 5176 Dynamic Authorization server

/// Default `[dae] listen`: every IPv4 address, port 3799 (RFC 5176 §2.3).
pub const DEFAULT_DAE_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 3799);
/// Default `[dae] window`: the Event-Timestamp and duplicate-detection window (RFC 5176
/// §6.3: "A default time window of 300 seconds should be adequate").
pub const DEFAULT_DAE_WINDOW: Duration = Duration::from_secs(300);

/// One `[[dae.client]]`: a Dynamic Authorization Client allowed to send us requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaeClientConfig {
    /// `address`: the client's address or prefix (a bare address is a /32 or /128).
    pub address: IpNet,
    /// `secret`: the shared secret, not empty.
    pub secret: Secret,
    /// `require_message_authenticator`: overrides `[dae]`'s for this client.
    pub require_message_authenticator: Option<bool>,
}

/// `[dae]`: the Dynamic Authorization server (RFC 5176: Disconnect-Request, CoA-Request).
///
/// ```toml
/// [dae]
/// listen = "0.0.0.0:3799"
/// require_message_authenticator = true  # BlastRADIUS, CVE-2024-3596 (default true)
/// require_event_timestamp = false       # RFC 5176 §6.3 (default false)
/// window = "300s"                       # Event-Timestamp and duplicate window
/// [[dae.client]]
/// address = "192.0.2.10"                # or a prefix, "192.0.2.0/28"
/// secret = "coa-secret"
/// ```
///
/// The first `[[dae.client]]` whose `address` holds a request's source decides its secret;
/// a source that none holds is ignored. NAS identification attributes in a request are
/// checked against `[radius] nas_identifier` / `nas_ip_address` and the `listen` address
/// ([`crate::radius::dae`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaeConfig {
    /// `listen`: the UDP address and port.
    pub listen: SocketAddr,
    /// `require_message_authenticator`: discard requests without a Message-Authenticator.
    pub require_message_authenticator: bool,
    /// `require_event_timestamp`: discard requests without an Event-Timestamp.
    pub require_event_timestamp: bool,
    /// `window`: how far an Event-Timestamp may be from our clock, and how long an answer
    /// is kept for retransmissions (the same window, RFC 5176 §6.3).
    pub window: Duration,
    /// `client`, in file order; at least one.
    pub clients: Vec<DaeClientConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDaeClient {
    address: Spanned<String>,
    secret: Spanned<String>,
    require_message_authenticator: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDae {
    listen: S<String>,
    require_message_authenticator: Option<bool>,
    require_event_timestamp: Option<bool>,
    window: S<String>,
    #[serde(default)]
    client: Vec<RawDaeClient>,
}

impl RawDae {
    fn validate(&self, src: &Source<'_>) -> Result<DaeConfig, ConfigError> {
        let listen = match &self.listen {
            None => DEFAULT_DAE_LISTEN,
            Some(v) => match v.get_ref().parse::<SocketAddr>() {
                Ok(a) if a.port() != 0 => a,
                Ok(_) => return Err(src.invalid(v.span(), "dae.listen", "port must not be 0")),
                Err(_) => {
                    return Err(src.invalid(
                        v.span(),
                        "dae.listen",
                        format!(
                            "{:?} is not an address and port such as \"0.0.0.0:3799\"",
                            v.get_ref()
                        ),
                    ));
                }
            },
        };
        let window = duration(
            src,
            "dae.window",
            &self.window,
            Duration::from_secs(1),
            Duration::from_secs(3600),
        )?
        .unwrap_or(DEFAULT_DAE_WINDOW);
        let mut clients = Vec::with_capacity(self.client.len());
        for (i, c) in self.client.iter().enumerate() {
            let address = parse_prefix(c.address.get_ref()).map_err(|m| {
                src.invalid(c.address.span(), &format!("dae.client[{i}].address"), m)
            })?;
            if c.secret.get_ref().is_empty() {
                return Err(src.invalid(
                    c.secret.span(),
                    &format!("dae.client[{i}].secret"),
                    "must not be empty",
                ));
            }
            clients.push(DaeClientConfig {
                address,
                secret: Secret::new(c.secret.get_ref().as_bytes().to_vec()),
                require_message_authenticator: c.require_message_authenticator,
            });
        }
        if clients.is_empty() {
            let span = self.listen.as_ref().map_or(0..0, Spanned::span);
            return Err(src.invalid(
                span,
                "dae",
                "needs at least one [[dae.client]]: without one every request is ignored",
            ));
        }
        Ok(DaeConfig {
            listen,
            require_message_authenticator: self.require_message_authenticator.unwrap_or(true),
            require_event_timestamp: self.require_event_timestamp.unwrap_or(false),
            window,
            clients,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    fn err(text: &str) -> ConfigError {
        match Config::from_toml_str(text, "xlnsd.toml") {
            Ok(c) => panic!("accepted: {c:?}"),
            Err(e) => e,
        }
    }

    /// Asserts the rendered message begins with `prefix` (file:line:col: key:).
    fn assert_err(text: &str, kind: ConfigErrorKind, prefix: &str) -> ConfigError {
        let e = err(text);
        let shown = e.to_string();
        assert!(
            shown.starts_with(prefix),
            "{shown:?} does not start with {prefix:?}"
        );
        assert_eq!(e.kind, kind, "{shown}");
        e
    }

    #[test]
    fn dae_section() {
        let c = Config::from_toml_str(
            r#"
[dae]
listen = "127.0.0.1:3799"
require_event_timestamp = true
window = "60s"
[[dae.client]]
address = "192.0.2.10"
secret = "s1"
[[dae.client]]
address = "198.51.100.0/24"
secret = "s2"
require_message_authenticator = false
"#,
            "xlnsd.toml",
        )
        .unwrap();
        let d = c.dae.unwrap();
        assert_eq!(d.listen.to_string(), "127.0.0.1:3799");
        assert!(d.require_message_authenticator, "required by default");
        assert!(d.require_event_timestamp);
        assert_eq!(d.window, Duration::from_secs(60));
        assert_eq!(d.clients[0].address.to_string(), "192.0.2.10/32");
        assert_eq!(d.clients[1].require_message_authenticator, Some(false));
        let d = Config::from_toml_str("[[dae.client]]\naddress = \"::1\"\nsecret = \"x\"\n", "x")
            .unwrap()
            .dae
            .unwrap();
        assert_eq!(d.listen, DEFAULT_DAE_LISTEN);
        assert_eq!(d.window, DEFAULT_DAE_WINDOW);
        assert!(!d.require_event_timestamp);
        assert_eq!(Config::default().dae, None);
    }

    #[test]
    fn dae_errors() {
        for (text, prefix) in [
            (
                "[dae]\nlisten = \"127.0.0.1:3799\"\n",
                "xlnsd.toml:2:10: dae: needs at least one [[dae.client]]",
            ),
            (
                "[[dae.client]]\naddress = \"10.0.0.1/8\"\nsecret = \"x\"\n",
                "xlnsd.toml:2:11: dae.client[0].address: \"10.0.0.1/8\" has host bits set",
            ),
            (
                "[[dae.client]]\naddress = \"10.0.0.1\"\nsecret = \"\"\n",
                "xlnsd.toml:3:10: dae.client[0].secret: must not be empty",
            ),
            (
                "[dae]\nwindow = \"0s\"\n[[dae.client]]\naddress = \"10.0.0.1\"\nsecret = \"x\"\n",
                "xlnsd.toml:2:10: dae.window: must be between 1s and 1h",
            ),
            (
                "[dae]\nlisten = \"127.0.0.1\"\n[[dae.client]]\naddress = \"10.0.0.1\"\nsecret = \"x\"\n",
                "xlnsd.toml:2:10: dae.listen:",
            ),
        ] {
            let shown = err(text).to_string();
            assert!(
                shown.starts_with(prefix),
                "{shown:?} does not start with {prefix:?}"
            );
        }
    }

    #[test]
    fn radius_section() {
        let c = Config::from_toml_str(
            r#"
[radius]
auth = "radius"
nas_identifier = "lns1"
nas_ip_address = "192.0.2.1"
timeout = "500ms"
retries = 2
interim_interval = "5m"
spool = "/tmp/acct.spool"
[[radius.auth_server]]
address = "127.0.0.1:1812"
secret = "s1"
[[radius.acct_server]]
address = "127.0.0.1:1813"
secret = "s2"
[[lac]]
name = "a"
aaa = "local"
[[lac]]
name = "b"
"#,
            "xlnsd.toml",
        )
        .unwrap();
        let r = c.radius.clone().unwrap();
        assert_eq!(r.auth, AaaMode::Radius);
        assert_eq!(r.nas_identifier, "lns1");
        assert_eq!(r.nas_ip_address, Some(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(r.timeout, Duration::from_millis(500));
        assert_eq!(r.max_timeout, DEFAULT_RADIUS_MAX_TIMEOUT);
        assert_eq!(r.retries, 2);
        assert_eq!(r.interim_interval, Some(Duration::from_secs(300)));
        assert_eq!(r.auth_servers[0].address.port(), 1812);
        assert_eq!(r.acct_servers[0].secret.as_bytes(), b"s2");
        assert_eq!(r.mode_for(Some(&c.lacs[0])), AaaMode::Local);
        assert_eq!(r.mode_for(Some(&c.lacs[1])), AaaMode::Radius);
        assert_eq!(r.mode_for(None), AaaMode::Radius);
        assert_eq!(Config::default().radius, None);
    }

    #[test]
    fn radius_accounting_keys() {
        let c = Config::from_toml_str(
            "[radius]\nspool_max_records = 10\nspool_max_bytes = 65536\n\
             [[lac]]\nname = \"a\"\naccounting = false\n[[lac]]\nname = \"b\"\n",
            "xlnsd.toml",
        )
        .unwrap();
        let r = c.radius.clone().unwrap();
        assert_eq!(r.spool_max_records, 10);
        assert_eq!(r.spool_max_bytes, 65_536);
        assert!(!c.lacs[0].accounting);
        assert!(c.lacs[1].accounting, "accounted by default");
        let d = Config::from_toml_str("[radius]\n", "xlnsd.toml").unwrap();
        assert_eq!(d.radius.unwrap().spool_max_bytes, DEFAULT_SPOOL_MAX_BYTES);
        assert_err(
            "[radius]\nspool_max_bytes = 10\n",
            ConfigErrorKind::Invalid,
            "xlnsd.toml:2:19: radius.spool_max_bytes: must be between 4096",
        );
    }

    #[test]
    fn realms_parse_and_their_errors_name_file_line_and_key() {
        let c = Config::from_toml_str(
            "[radius]\n[[radius.auth_server]]\naddress = \"127.0.0.1:1812\"\nsecret = \"s\"\n\
             [[realm]]\nname = \"isp.example\"\naaa = \"radius\"\nstrip = true\n\
             [[realm]]\nname = \"corp.example\"\naaa = \"local\"\n\
             [[realm]]\nname = \"only-strip.example\"\nstrip = true\n",
            "xlnsd.toml",
        )
        .unwrap();
        assert_eq!(
            c.realms,
            vec![
                RealmConfig {
                    name: "isp.example".into(),
                    aaa: Some(AaaMode::Radius),
                    strip: true
                },
                RealmConfig {
                    name: "corp.example".into(),
                    aaa: Some(AaaMode::Local),
                    strip: false
                },
                RealmConfig {
                    name: "only-strip.example".into(),
                    aaa: None,
                    strip: true
                },
            ]
        );
        assert_err(
            "[[realm]]\nname = \"isp.example\"\naaa = \"radius\"\n",
            ConfigErrorKind::Invalid,
            "xlnsd.toml:3:7: realm[0].aaa: RADIUS authentication needs a [[radius.auth_server]]",
        );
        assert_err(
            "[[realm]]\nname = \"isp.example\"\naaa = \"ldap\"\n",
            ConfigErrorKind::Invalid,
            "xlnsd.toml:3:7: realm[0].aaa: \"ldap\" is neither",
        );
        assert_err(
            "[[realm]]\nname = \"a@isp.example\"\n",
            ConfigErrorKind::Invalid,
            "xlnsd.toml:2:8: realm[0].name: must hold 1 to 253 octets, without '@'",
        );
        assert_err(
            "[[realm]]\nname = \"\"\n",
            ConfigErrorKind::Invalid,
            "xlnsd.toml:2:8: realm[0].name: must hold",
        );
        assert_err(
            "[[realm]]\nname = \"isp.example\"\n[[realm]]\nname = \"ISP.example\"\n",
            ConfigErrorKind::Invalid,
            "xlnsd.toml:4:8: realm[1].name: \"ISP.example\" is realm[0] already",
        );
        let e = err("[[realm]]\nname = \"isp.example\"\nstrip = 1\n");
        assert!(e.to_string().starts_with("xlnsd.toml:3:"), "{e}");
        let e = err("[[realm]]\nname = \"isp.example\"\nstirp = true\n");
        assert!(
            e.to_string().starts_with("xlnsd.toml:3:") && e.to_string().contains("stirp"),
            "{e}"
        );
    }

    #[test]
    fn radius_errors() {
        assert_err(
            "[[lac]]\nname = \"a\"\naaa = \"radius\"\n",
            ConfigErrorKind::Invalid,
            "xlnsd.toml:3:7: lac[0].aaa: RADIUS authentication needs",
        );
        assert_err(
            "[radius]\nauth = \"tacacs\"\n",
            ConfigErrorKind::Invalid,
            "xlnsd.toml:2:8: radius.auth: \"tacacs\" is neither",
        );
        assert_err(
            "[radius]\n[[radius.auth_server]]\naddress = \"127.0.0.1\"\nsecret = \"x\"\n",
            ConfigErrorKind::Invalid,
            "xlnsd.toml:3:11: radius.auth_server[0].address:",
        );
        assert_err(
            "[radius]\n[[radius.acct_server]]\naddress = \"127.0.0.1:1813\"\nsecret = \"\"\n",
            ConfigErrorKind::Invalid,
            "xlnsd.toml:4:10: radius.acct_server[0].secret: must not be empty",
        );
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::from_toml_str("", "x.toml").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.l2tp.listen.to_string(), "0.0.0.0:1701");
        assert_eq!(c.l2tp.hello_interval, Duration::from_secs(60));
        assert_eq!(c.l2tp.stopccn_wait, Duration::from_secs(31));
        assert!(!c.l2tp.accept_unknown_lacs);
        assert!(c.lacs.is_empty());
    }

    #[test]
    fn default_stopccn_wait_is_one_retransmission_cycle() {
        // RFC 2661 §5.7: "the retransmission cycle is 31 seconds".
        assert_eq!(
            L2tpConfig::default().retransmission_cycle(),
            Duration::from_secs(31)
        );
    }

    #[test]
    fn full_config_parses() {
        let text = r#"
[l2tp]
listen = "[::]:1701"
host_name = "lns1"
receive_window = 64
hello_interval = "30s"
retransmit_initial = "500ms"
retransmit_cap = "16s"
retransmit_max_retries = 4
stopccn_wait = "2m"
half_open_timeout = "45s"
max_tunnels = 100
max_sessions = 20000
accept_unknown_lacs = true

[admission]
max_tunnel_setups = 8
max_session_setups = 100
sccrq_per_second = 5
sccrq_burst = 10
icrq_per_second = 50
icrq_burst = 70

[[lac]]
name = "wholesale"
host_name = "lac-*"
source = ["192.0.2.0/24", "2001:db8::/32", "198.51.100.7"]
secret = "s3cret"
hide_avps = true
max_tunnels = 4
max_sessions_per_tunnel = 1000
max_sessions = 3000
hello_interval = "1m"
receive_window = 128

[[lac]]
name = "blocked"
host_name = "evil"
accept = false
"#;
        let c = Config::from_toml_str(text, "x.toml").unwrap();
        assert_eq!(c.l2tp.listen.to_string(), "[::]:1701");
        assert_eq!(c.l2tp.host_name, "lns1");
        assert_eq!(c.l2tp.receive_window, 64);
        assert_eq!(c.l2tp.hello_interval, Duration::from_secs(30));
        assert_eq!(c.l2tp.retransmit_initial, Duration::from_millis(500));
        assert_eq!(c.l2tp.retransmit_cap, Duration::from_secs(16));
        assert_eq!(c.l2tp.retransmit_max_retries, 4);
        assert_eq!(c.l2tp.stopccn_wait, Duration::from_secs(120));
        assert_eq!(c.l2tp.half_open_timeout, Duration::from_secs(45));
        assert_eq!(c.l2tp.max_tunnels, 100);
        assert_eq!(c.l2tp.max_sessions, 20000);
        assert!(c.l2tp.accept_unknown_lacs);
        assert_eq!(
            c.admission,
            AdmissionConfig {
                max_tunnel_setups: 8,
                max_session_setups: 100,
                sccrq: Rate {
                    per_second: 5,
                    burst: 10
                },
                icrq: Rate {
                    per_second: 50,
                    burst: 70
                },
            }
        );
        assert_eq!(c.lacs.len(), 2);
        let w = &c.lacs[0];
        assert_eq!(w.name, "wholesale");
        assert_eq!(w.host_name, Some(HostNamePattern::Prefix(b"lac-".to_vec())));
        assert_eq!(
            w.source,
            vec![
                "192.0.2.0/24".parse::<IpNet>().unwrap(),
                "2001:db8::/32".parse().unwrap(),
                "198.51.100.7/32".parse().unwrap(),
            ]
        );
        assert!(w.accept);
        assert_eq!(w.secret.as_ref().unwrap().as_bytes(), b"s3cret");
        assert!(w.hide_avps);
        assert_eq!(w.max_tunnels, Some(4));
        assert_eq!(w.max_sessions_per_tunnel, Some(1000));
        assert_eq!(w.max_sessions, Some(3000));
        assert_eq!(w.hello_interval, Some(Duration::from_secs(60)));
        assert_eq!(w.receive_window, Some(128));
        let b = &c.lacs[1];
        assert!(!b.accept);
        assert_eq!(b.host_name, Some(HostNamePattern::Exact(b"evil".to_vec())));
        assert_eq!(b.secret, None);
        assert_eq!(b.max_tunnels, None);
    }

    #[test]
    fn secret_debug_hides_bytes() {
        let s = format!("{:?}", Secret::new(b"hunter2".to_vec()));
        assert!(!s.contains("hunter2"), "{s}");
        assert_eq!(s, "Secret(<7 bytes>)");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("60s"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0s"), Some(Duration::ZERO));
        for bad in [
            "",
            "60",
            "s",
            "1.5s",
            "-1s",
            " 1s",
            "1 s",
            "1d",
            "1sec",
            "99999999999999999999s",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
        assert_eq!(fmt_duration(Duration::from_millis(100)), "100ms");
        assert_eq!(fmt_duration(Duration::from_secs(8)), "8s");
        assert_eq!(fmt_duration(Duration::from_secs(600)), "10m");
        assert_eq!(fmt_duration(Duration::from_secs(3600)), "1h");
    }

    #[test]
    fn syntax_error_has_position_and_no_key() {
        let e = assert_err(
            "[l2tp]\nhost_name = \"a\"\nreceive_window = = 3\n",
            ConfigErrorKind::Syntax,
            "xlnsd.toml:3:",
        );
        assert_eq!(e.position.unwrap().line, 3);
        assert_eq!(e.key, None);
    }

    #[test]
    fn unknown_key_in_section() {
        let e = assert_err(
            "[l2tp]\nhost_name = \"a\"\nhelo_interval = \"5s\"\n",
            ConfigErrorKind::Schema,
            "xlnsd.toml:3:1: l2tp.helo_interval: unknown field `helo_interval`",
        );
        assert_eq!(e.position, Some(Position { line: 3, column: 1 }));
    }

    #[test]
    fn unknown_section() {
        assert_err(
            "[l2tp]\n\n[tacacs]\nserver = \"x\"\n",
            ConfigErrorKind::Schema,
            "xlnsd.toml:3:2: tacacs: unknown field `tacacs`",
        );
    }

    #[test]
    fn unknown_key_in_second_lac() {
        assert_err(
            "[[lac]]\nname = \"a\"\n\n[[lac]]\nname = \"b\"\n  password = \"x\"\n",
            ConfigErrorKind::Schema,
            "xlnsd.toml:6:3: lac[1].password: unknown field `password`",
        );
    }

    #[test]
    fn wrong_type() {
        assert_err(
            "[l2tp]\nreceive_window = \"big\"\n",
            ConfigErrorKind::Schema,
            "xlnsd.toml:2:18: l2tp.receive_window: invalid type: string \"big\"",
        );
        assert_err(
            "[[lac]]\nname = \"a\"\nsource = [\"10.0.0.0/8\", 7]\n",
            ConfigErrorKind::Schema,
            "xlnsd.toml:3:25: lac[0].source[1]: invalid type: integer `7`",
        );
        assert_err(
            "[[lac]]\nname = \"a\"\naccept = \"yes\"\n",
            ConfigErrorKind::Schema,
            "xlnsd.toml:3:10: lac[0].accept: invalid type: string \"yes\"",
        );
    }

    #[test]
    fn missing_lac_name() {
        assert_err(
            "[[lac]]\nname = \"a\"\n\n[[lac]]\nhost_name = \"b\"\n",
            ConfigErrorKind::Schema,
            "xlnsd.toml:4:1: lac[1]: missing field `name`",
        );
    }

    #[test]
    fn inline_lac_tables_name_their_keys() {
        assert_err(
            "lac = [{ name = \"a\" }, { name = \"b\", bogus = 1 }]\n",
            ConfigErrorKind::Schema,
            "xlnsd.toml:1:38: lac[1].bogus: unknown field `bogus`",
        );
    }

    #[test]
    fn lac_receive_window_out_of_range() {
        let text = "[l2tp]\n\n[[lac]]\nname = \"a\"\n\n[[lac]]\nname = \"b\"\nreceive_window = 0\n";
        let e = assert_err(
            text,
            ConfigErrorKind::Invalid,
            "xlnsd.toml:8:18: lac[1].receive_window: must be between 1 and 65535",
        );
        assert_eq!(e.key.as_deref(), Some("lac[1].receive_window"));
        assert_err(
            "[[lac]]\nname = \"a\"\nreceive_window = 65536\n",
            ConfigErrorKind::Invalid,
            "xlnsd.toml:3:18: lac[0].receive_window: must be between 1 and 65535",
        );
    }

    #[test]
    fn l2tp_ranges() {
        for (text, prefix) in [
            (
                "[l2tp]\nreceive_window = -1\n",
                "xlnsd.toml:2:18: l2tp.receive_window: must be between 1 and 65535",
            ),
            (
                "[l2tp]\nmax_tunnels = 70000\n",
                "xlnsd.toml:2:15: l2tp.max_tunnels: must be between 1 and 65535",
            ),
            (
                "[l2tp]\nmax_sessions = 0\n",
                "xlnsd.toml:2:16: l2tp.max_sessions: must be between 1 and 4294967295",
            ),
            (
                "[l2tp]\nretransmit_max_retries = 0\n",
                "xlnsd.toml:2:26: l2tp.retransmit_max_retries: must be between 1 and 100",
            ),
            (
                "[l2tp]\nhost_name = \"\"\n",
                "xlnsd.toml:2:13: l2tp.host_name: must not be empty",
            ),
            (
                "[l2tp]\nlisten = \"0.0.0.0\"\n",
                "xlnsd.toml:2:10: l2tp.listen: \"0.0.0.0\" is not an address and port",
            ),
            (
                "[l2tp]\nlisten = \"[::]:0\"\n",
                "xlnsd.toml:2:10: l2tp.listen: port must not be 0",
            ),
        ] {
            assert_err(text, ConfigErrorKind::Invalid, prefix);
        }
    }

    #[test]
    fn hello_interval_zero_and_bad_durations() {
        assert_err(
            "[l2tp]\nhello_interval = \"0s\"\n",
            ConfigErrorKind::Invalid,
            "xlnsd.toml:2:18: l2tp.hello_interval: must be between 1s and 1h",
        );
        assert_err(
            "[[lac]]\nname = \"a\"\nhello_interval = \"0ms\"\n",
            ConfigErrorKind::Invalid,
            "xlnsd.toml:3:18: lac[0].hello_interval: must be between 1s and 1h",
        );
        assert_err(
            "[l2tp]\nhalf_open_timeout = \"30\"\n",
            ConfigErrorKind::Invalid,
            "xlnsd.toml:2:21: l2tp.half_open_timeout: \"30\" is not a duration",
        );
        // A bare integer is a type error: durations are strings.
        assert_err(
            "[l2tp]\nhello_interval = 60\n",
            ConfigErrorKind::Schema,
            "xlnsd.toml:2:18: l2tp.hello_interval: invalid type: integer `60`",
        );
    }

    #[test]
    fn retransmit_rules() {
        // RFC 2661 §5.8: cap no less than 8 seconds.
        assert_err(
            "[l2tp]\nretransmit_cap = \"4s\"\n",
            ConfigErrorKind::Invalid,
            "xlnsd.toml:2:18: l2tp.retransmit_cap: must be between 8s and 10m",
        );
        assert_err(
            "[l2tp]\nretransmit_initial = \"20s\"\nretransmit_cap = \"10s\"\nstopccn_wait = \"5m\"\n",
            ConfigErrorKind::Invalid,
            "xlnsd.toml:3:18: l2tp.retransmit_cap: retransmit_cap (10s) must not be less than \
             retransmit_initial (20s)",
        );
        // RFC 2661 §5.7: StopCCN wait at least one cycle (1+2+4+8+8+8 = 31 s).
        assert_err(
            "[l2tp]\nstopccn_wait = \"30s\"\n",
            ConfigErrorKind::Invalid,
            "xlnsd.toml:2:16: l2tp.stopccn_wait: stopccn_wait (30s) is shorter than one \
             retransmission cycle (31s)",
        );
        // Without stopccn_wait in the file, the key that made the cycle longer is named.
        assert_err(
            "[l2tp]\nretransmit_max_retries = 10\n",
            ConfigErrorKind::Invalid,
            "xlnsd.toml:2:26: l2tp.retransmit_max_retries: stopccn_wait (31s) is shorter than \
             one retransmission cycle (71s)",
        );
    }

    #[test]
    fn admission_ranges() {
        assert_err(
            "[admission]\nsccrq_per_second = 0\n",
            ConfigErrorKind::Invalid,
            "xlnsd.toml:2:20: admission.sccrq_per_second: must be between 1 and 1000000",
        );
        assert_err(
            "[admission]\nicrq_burst = 0\n",
            ConfigErrorKind::Invalid,
            "xlnsd.toml:2:14: admission.icrq_burst: must be between 1 and 1000000",
        );
        assert_err(
            "[admission]\nmax_tunnel_setups = 0\n",
            ConfigErrorKind::Invalid,
            "xlnsd.toml:2:21: admission.max_tunnel_setups: must be between 1 and 4294967295",
        );
    }

    #[test]
    fn duplicate_lac_name() {
        assert_err(
            "[[lac]]\nname = \"a\"\n[[lac]]\nname = \"b\"\n[[lac]]\nname = \"a\"\n",
            ConfigErrorKind::Invalid,
            "xlnsd.toml:6:8: lac[2].name: duplicate LAC name \"a\" (also lac[0].name)",
        );
        assert_err(
            "[[lac]]\nname = \"\"\n",
            ConfigErrorKind::Invalid,
            "xlnsd.toml:2:8: lac[0].name: must not be empty",
        );
    }

    #[test]
    fn bad_cidr() {
        assert_err(
            "[[lac]]\nname = \"a\"\nsource = [\"10.0.0.0/8\",\n  \"10.0.0.0/33\"]\n",
            ConfigErrorKind::Invalid,
            "xlnsd.toml:4:3: lac[0].source[1]: \"10.0.0.0/33\" is not an IPv4 or IPv6 prefix",
        );
        assert_err(
            "[[lac]]\nname = \"a\"\nsource = [\"10.0.0.1/8\"]\n",
            ConfigErrorKind::Invalid,
            "xlnsd.toml:3:11: lac[0].source[0]: \"10.0.0.1/8\" has host bits set; did you mean \
             \"10.0.0.0/8\"?",
        );
        assert_err(
            "[[lac]]\nname = \"a\"\nsource = [\"lac.example\"]\n",
            ConfigErrorKind::Invalid,
            "xlnsd.toml:3:11: lac[0].source[0]: \"lac.example\" is not",
        );
    }

    #[test]
    fn secrets_and_hiding() {
        assert_err(
            "[[lac]]\nname = \"a\"\nsecret = \"\"\n",
            ConfigErrorKind::Invalid,
            "xlnsd.toml:3:10: lac[0].secret: must not be empty",
        );
        assert_err(
            "[[lac]]\nname = \"a\"\nhide_avps = true\n",
            ConfigErrorKind::Invalid,
            "xlnsd.toml:3:13: lac[0].hide_avps: hiding AVPs needs a secret",
        );
    }

    #[test]
    fn host_name_patterns() {
        assert_err(
            "[[lac]]\nname = \"a\"\nhost_name = \"*.example\"\n",
            ConfigErrorKind::Invalid,
            "xlnsd.toml:3:13: lac[0].host_name: \"*.example\": '*' is allowed only as the last",
        );
        assert_err(
            "[[lac]]\nname = \"a\"\nhost_name = \"\"\n",
            ConfigErrorKind::Invalid,
            "xlnsd.toml:3:13: lac[0].host_name: must not be empty",
        );
        let p = parse_host_name("lac*").unwrap();
        assert!(p.matches(b"lac"));
        assert!(p.matches(b"lac7"));
        assert!(!p.matches(b"la"));
        assert!(!p.matches(b"LAC7"));
        let any = parse_host_name("*").unwrap();
        assert!(any.matches(b""));
        assert!(any.matches(b"x"));
        let exact = parse_host_name("lac1").unwrap();
        assert!(exact.matches(b"lac1"));
        assert!(!exact.matches(b"lac10"));
    }

    #[test]
    fn lac_limit_ranges() {
        for (k, v, max) in [
            ("max_tunnels", "0", "65535"),
            ("max_sessions_per_tunnel", "65536", "65535"),
            ("max_sessions", "0", "4294967295"),
        ] {
            let text = format!("[[lac]]\nname = \"a\"\n{k} = {v}\n");
            let col = k.len() + 4;
            assert_err(
                &text,
                ConfigErrorKind::Invalid,
                &format!("xlnsd.toml:3:{col}: lac[0].{k}: must be between 1 and {max}"),
            );
        }
    }

    #[test]
    fn column_counts_characters() {
        assert_err(
            "[[lac]]\nname = \"a\"\n\"hé\" = 1\n",
            ConfigErrorKind::Schema,
            "xlnsd.toml:3:1: lac[0].hé: unknown field `hé`",
        );
        // A key after a multi-byte character: column 22, not byte 23.
        assert_err(
            "lac = [{ name = \"é\", bogus = 1 }]\n",
            ConfigErrorKind::Schema,
            "xlnsd.toml:1:22: lac[0].bogus: unknown field `bogus`",
        );
    }

    #[test]
    fn dotted_keys_keep_the_position() {
        // Tables made implicitly by dotted keys carry no span, so no key path is found;
        // the position and the message (which names the field) still are.
        let e = assert_err(
            "l2tp.helo = 1\n",
            ConfigErrorKind::Schema,
            "xlnsd.toml:1:6: unknown field `helo`",
        );
        assert_eq!(e.key, None);
        // Explicit sub-tables are located.
        assert_err(
            "[l2tp]\n[l2tp.foo]\nx = 1\n",
            ConfigErrorKind::Schema,
            "xlnsd.toml:2:7: l2tp.foo: unknown field `foo`",
        );
        // Semantic errors always have their key path.
        assert_err(
            "l2tp.receive_window = 0\n",
            ConfigErrorKind::Invalid,
            "xlnsd.toml:1:23: l2tp.receive_window: must be between 1 and 65535",
        );
        assert_err(
            "l2tp = { receive_window = 0 }\n",
            ConfigErrorKind::Invalid,
            "xlnsd.toml:1:27: l2tp.receive_window: must be between 1 and 65535",
        );
    }

    #[test]
    fn io_error_names_the_file() {
        let e = Config::load("/nonexistent/xlnsd.toml").unwrap_err();
        assert_eq!(e.kind, ConfigErrorKind::Io);
        assert!(
            e.to_string()
                .starts_with("/nonexistent/xlnsd.toml: cannot read:"),
            "{e}"
        );
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn ppp_pools_users_parse() {
        let text = r#"
[ppp]
auth = ["pap", "chap-md5"]
chap_name = "lns1"
lcp_echo_interval = "5s"
lcp_echo_failures = 2
mru = 1460
gateway = "10.1.0.1"
dns = ["192.0.2.53", "192.0.2.54"]
default_pool = "b"
ipv6cp = true
session_timeout = "24h"
idle_timeout = "30m"

[[pool]]
name = "a"
cidr = "10.1.0.0/24"
exclude = ["10.1.0.7"]

[[pool]]
name = "b"
cidr = "10.2.0.0/30"

[users]
file = "users.txt"

[[lac]]
name = "w"
proxy_auth = false
force_chap = true

[[lac]]
name = "r"
renegotiate_lcp = true
"#;
        let c = Config::from_toml_str(text, "x.toml").unwrap();
        assert_eq!(c.ppp.auth, vec![Method::Pap, Method::ChapMd5]);
        assert_eq!(
            c.ppp.auth_protocols(),
            vec![AuthProtocol::Pap, AuthProtocol::Chap(ChapAlgorithm::Md5)]
        );
        assert_eq!(c.ppp.chap_name, "lns1");
        assert_eq!(c.ppp.lcp_echo_interval, Some(Duration::from_secs(5)));
        assert_eq!(c.ppp.lcp_echo_failures, 2);
        assert_eq!(c.ppp.mru, 1460);
        assert_eq!(c.ppp.gateway, Some(Ipv4Addr::new(10, 1, 0, 1)));
        assert_eq!(
            c.ppp.dns,
            [
                Some(Ipv4Addr::new(192, 0, 2, 53)),
                Some(Ipv4Addr::new(192, 0, 2, 54))
            ]
        );
        assert_eq!(c.ppp.default_pool.as_deref(), Some("b"));
        assert!(c.ppp.ipv6cp);
        assert_eq!(c.ppp.session_timeout, Some(Duration::from_secs(86400)));
        assert_eq!(c.ppp.idle_timeout, Some(Duration::from_secs(1800)));
        assert_eq!(c.pools.len(), 2);
        assert_eq!(c.pools[0].exclude, vec![Ipv4Addr::new(10, 1, 0, 7)]);
        assert_eq!(c.users_file, Some(PathBuf::from("users.txt")));
        let pools = c.build_pools().unwrap();
        // 254 hosts minus the gateway and the exclusion.
        assert_eq!(pools.get("a").unwrap().counters().size, 252);
        assert_eq!(pools.get("b").unwrap().counters().size, 2);
        assert_eq!(
            c.lacs[0].proxy,
            ProxyMode {
                accept_proxy_auth: false,
                accept_proxy_lcp: true,
                force_chap: true,
                renegotiate_lcp: false
            }
        );
        assert!(c.lacs[1].proxy.renegotiate_lcp);
    }

    #[test]
    fn ppp_defaults() {
        let c = Config::from_toml_str(
            "[ppp]\ngateway = \"10.0.0.1\"\nlcp_echo_interval = \"0s\"\n[[pool]]\nname = \"x\"\ncidr = \"10.0.0.0/24\"\n[[lac]]\nname = \"l\"\n",
            "x.toml",
        )
        .unwrap();
        assert_eq!(c.ppp.auth, DEFAULT_AUTH.to_vec());
        assert_eq!(c.ppp.lcp_echo_interval, None);
        // Without default_pool the first pool is the default.
        assert_eq!(c.ppp.default_pool.as_deref(), Some("x"));
        // The carrier default: proxy LCP and proxy authentication accepted.
        assert_eq!(c.lacs[0].proxy, DEFAULT_PROXY_MODE);
        assert_eq!(
            c.lacs[0].proxy,
            ProxyMode {
                accept_proxy_auth: true,
                accept_proxy_lcp: true,
                force_chap: false,
                renegotiate_lcp: false
            }
        );
        let d = Config::default();
        assert_eq!(d.ppp.lcp_echo_interval, Some(DEFAULT_LCP_ECHO_INTERVAL));
        assert!(d.pools.is_empty() && d.users_file.is_none());
    }

    #[test]
    fn ppp_errors() {
        for (text, prefix) in [
            (
                "[ppp]\nauth = []\n",
                "xlnsd.toml:2:8: ppp.auth: must name at least one method",
            ),
            (
                "[ppp]\nauth = [\"pap\", \"eap\"]\n",
                "xlnsd.toml:2:16: ppp.auth[1]: unknown authentication method \"eap\"",
            ),
            (
                "[ppp]\nauth = [\"pap\", \"pap\"]\n",
                "xlnsd.toml:2:16: ppp.auth[1]: \"pap\" listed twice",
            ),
            (
                "[ppp]\nchap_name = \"\"\n",
                "xlnsd.toml:2:13: ppp.chap_name: must not be empty",
            ),
            (
                "[ppp]\nlcp_echo_interval = \"2h\"\n",
                "xlnsd.toml:2:21: ppp.lcp_echo_interval: must be between 1s and 1h",
            ),
            (
                "[ppp]\nlcp_echo_failures = 0\n",
                "xlnsd.toml:2:21: ppp.lcp_echo_failures: must be between 1 and 100",
            ),
            (
                "[ppp]\nmru = 64\n",
                "xlnsd.toml:2:7: ppp.mru: must be between 128 and 65535",
            ),
            (
                "[ppp]\ngateway = \"10.0.0\"\n",
                "xlnsd.toml:2:11: ppp.gateway: \"10.0.0\" is not an IPv4 address",
            ),
            (
                "[ppp]\ngateway = \"0.0.0.0\"\n",
                "xlnsd.toml:2:11: ppp.gateway: 0.0.0.0 cannot be the LNS's address",
            ),
            (
                "[ppp]\ndns = [\"1.1.1.1\", \"8.8.8.8\", \"9.9.9.9\"]\n",
                "xlnsd.toml:2:7: ppp.dns: at most two servers",
            ),
            (
                "[ppp]\ndns = [\"1.1.1.1\", \"::1\"]\n",
                "xlnsd.toml:2:19: ppp.dns[1]: \"::1\" is not an IPv4 address",
            ),
            (
                "[ppp]\nsession_timeout = \"0s\"\n",
                "xlnsd.toml:2:19: ppp.session_timeout: must be between 1s and 8760h",
            ),
            (
                "[ppp]\nidle_timeout = \"5\"\n",
                "xlnsd.toml:2:16: ppp.idle_timeout: \"5\" is not a duration",
            ),
            (
                "[ppp]\ngateway = \"10.0.0.1\"\ndefault_pool = \"nope\"\n",
                "xlnsd.toml:3:16: ppp.default_pool: no [[pool]] named \"nope\"",
            ),
            (
                "[users]\nfile = \"\"\n",
                "xlnsd.toml:2:8: users.file: must not be empty",
            ),
        ] {
            assert_err(text, ConfigErrorKind::Invalid, prefix);
        }
        assert_err(
            "[ppp]\necho = 1\n",
            ConfigErrorKind::Schema,
            "xlnsd.toml:2:1: ppp.echo: unknown field `echo`",
        );
        assert_err(
            "[users]\npath = \"u\"\n",
            ConfigErrorKind::Schema,
            "xlnsd.toml:2:1: users.path: unknown field `path`",
        );
    }

    #[test]
    fn dataplane_section() {
        let none = Config::from_toml_str("", "x").unwrap();
        assert_eq!(none.dataplane, None);
        let off = Config::from_toml_str(
            "[dataplane]\nenabled = false\naccess_interface = \"eth0\"\n",
            "x",
        )
        .unwrap();
        assert_eq!(off.dataplane, None);
        let defaults = Config::from_toml_str(
            "[l2tp]\nmax_sessions = 500\n[dataplane]\naccess_interface = \"lnsacc\"\n",
            "x",
        )
        .unwrap();
        assert_eq!(
            defaults.dataplane,
            Some(DataplaneConfig {
                shm: PathBuf::from(DEFAULT_DATAPLANE_SHM),
                max_sessions: 500,
                max_workers: DEFAULT_DATAPLANE_MAX_WORKERS,
                access_interface: "lnsacc".into(),
            })
        );
        let full = Config::from_toml_str(
            "[dataplane]\nenabled = true\nshm = \"/dev/shm/xlns.lab\"\nmax_sessions = 64\n\
             max_workers = 2\naccess_interface = \"lnsacc\"\n",
            "x",
        )
        .unwrap();
        assert_eq!(
            full.dataplane,
            Some(DataplaneConfig {
                shm: PathBuf::from("/dev/shm/xlns.lab"),
                max_sessions: 64,
                max_workers: 2,
                access_interface: "lnsacc".into(),
            })
        );
    }

    #[test]
    fn dataplane_errors() {
        for (text, prefix) in [
            (
                "[dataplane]\nmax_sessions = 0\naccess_interface = \"a\"\n",
                "xlnsd.toml:2:16: dataplane.max_sessions: must be between 1 and",
            ),
            (
                "[dataplane]\nmax_workers = 2000\naccess_interface = \"a\"\n",
                "xlnsd.toml:2:15: dataplane.max_workers: must be between 1 and 1024",
            ),
            (
                "[dataplane]\naccess_interface = \"a-very-long-interface\"\n",
                "xlnsd.toml:2:20: dataplane.access_interface: \"a-very-long-interface\" is not",
            ),
            (
                "[dataplane]\nshm = \"\"\naccess_interface = \"a\"\n",
                "xlnsd.toml:2:7: dataplane.shm: must not be empty",
            ),
        ] {
            assert_err(text, ConfigErrorKind::Invalid, prefix);
        }
        // access_interface is required.
        assert_eq!(
            err("[dataplane]\nshm = \"/x\"\n").kind,
            ConfigErrorKind::Schema
        );
    }

    #[test]
    fn pool_errors() {
        let gw = "[ppp]\ngateway = \"10.0.0.1\"\n";
        for (pools, prefix) in [
            (
                "[[pool]]\nname = \"\"\ncidr = \"10.0.0.0/24\"\n",
                "xlnsd.toml:4:8: pool[0].name: must not be empty",
            ),
            (
                "[[pool]]\nname = \"a\"\ncidr = \"10.0.0.0/24\"\n[[pool]]\nname = \"a\"\ncidr = \"10.1.0.0/24\"\n",
                "xlnsd.toml:7:8: pool[1].name: duplicate pool name \"a\" (also pool[0].name)",
            ),
            (
                "[[pool]]\nname = \"a\"\ncidr = \"10.0.0.1/24\"\n",
                "xlnsd.toml:5:8: pool[0].cidr: \"10.0.0.1/24\" has host bits set; did you mean \"10.0.0.0/24\"?",
            ),
            (
                "[[pool]]\nname = \"a\"\ncidr = \"2001:db8::/64\"\n",
                "xlnsd.toml:5:8: pool[0].cidr: \"2001:db8::/64\" is not an IPv4 prefix",
            ),
            (
                "[[pool]]\nname = \"a\"\ncidr = \"10.0.0.0/8\"\n",
                "xlnsd.toml:5:8: pool[0].cidr: pool a: bad range",
            ),
            (
                "[[pool]]\nname = \"a\"\ncidr = \"10.0.0.0/24\"\nexclude = [\"10.0.0.300\"]\n",
                "xlnsd.toml:6:12: pool[0].exclude[0]: \"10.0.0.300\" is not an IPv4 address",
            ),
        ] {
            assert_err(&format!("{gw}{pools}"), ConfigErrorKind::Invalid, prefix);
        }
        assert_err(
            "[[pool]]\nname = \"a\"\ncidr = \"10.0.0.0/24\"\n",
            ConfigErrorKind::Invalid,
            "xlnsd.toml:2:8: ppp.gateway: pools need [ppp] gateway",
        );
        assert_err(
            "[ppp]\ngateway = \"10.0.0.1\"\n[[pool]]\nname = \"a\"\n",
            ConfigErrorKind::Schema,
            "xlnsd.toml:3:1: pool[0]: missing field `cidr`",
        );
    }

    #[test]
    fn lac_proxy_errors() {
        assert_err(
            "[[lac]]\nname = \"a\"\nrenegotiate_lcp = true\nforce_chap = true\n",
            ConfigErrorKind::Invalid,
            "xlnsd.toml:4:14: lac[0].force_chap: force_chap has no effect with renegotiate_lcp = true",
        );
        assert_err(
            "[[lac]]\nname = \"a\"\nproxy_lcp = false\nforce_chap = true\n",
            ConfigErrorKind::Invalid,
            "xlnsd.toml:4:14: lac[0].force_chap: force_chap has no effect with proxy_lcp = false",
        );
        assert_err(
            "[[lac]]\nname = \"a\"\nproxy_auth = \"yes\"\n",
            ConfigErrorKind::Schema,
            "xlnsd.toml:3:14: lac[0].proxy_auth: invalid type: string \"yes\"",
        );
    }

    #[test]
    fn users_file_is_relative_to_the_config() {
        let dir = std::env::temp_dir().join(format!("xlnsd-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("xlnsd.toml");
        std::fs::write(&path, "[users]\nfile = \"users\"\n").unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(c.users_file, Some(dir.join("users")));
        std::fs::write(&path, "[users]\nfile = \"/etc/xlns/users\"\n").unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(c.users_file, Some(PathBuf::from("/etc/xlns/users")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn lab_config_loads_with_its_users() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/lab/peer-vm/xlnsd.toml"
        );
        let c = Config::load(path).unwrap();
        assert_eq!(c.ppp.gateway, Some(Ipv4Addr::new(10, 255, 100, 1)));
        let users = crate::ppp::users::Users::load(c.users_file.as_deref().unwrap()).unwrap();
        assert_eq!(users.len(), 64);
        assert_eq!(users.get("user64").unwrap().password, "pw64");
        let pools = c.build_pools().unwrap();
        assert_eq!(pools.get("lab").unwrap().counters().size, 253);
    }

    #[test]
    fn example_config_loads() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/xlnsd.example.toml");
        let c = Config::load(path).unwrap();
        assert!(!c.lacs.is_empty());
        assert!(!c.l2tp.accept_unknown_lacs);
        assert_eq!(c.dae.map(|d| d.clients.len()), Some(1));
    }
}

/// `[management]`: operator interfaces of xlnsd (issue #8). Each key absent: that
/// interface is off.
///
/// ```toml
/// [management]
/// metrics = "127.0.0.1:9101"        # Prometheus /metrics over HTTP
/// socket = "/run/xlns/xlnsd.sock"   # xlnsctl (line-delimited JSON)
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManagementConfig {
    /// `metrics`: address of the HTTP listener serving `/metrics`.
    pub metrics: Option<std::net::SocketAddr>,
    /// `socket`: path of the Unix socket xlnsctl talks to.
    pub socket: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManagement {
    metrics: S<String>,
    socket: S<String>,
}

impl RawManagement {
    fn validate(&self, src: &Source<'_>) -> Result<ManagementConfig, ConfigError> {
        let metrics = match &self.metrics {
            None => None,
            Some(v) => Some(v.get_ref().parse().map_err(|_| {
                src.invalid(
                    v.span(),
                    "management.metrics",
                    format!("{:?} is not an address:port", v.get_ref()),
                )
            })?),
        };
        let socket = match &self.socket {
            None => None,
            Some(v) if v.get_ref().is_empty() => {
                return Err(src.invalid(v.span(), "management.socket", "must not be empty"));
            }
            Some(v) => Some(PathBuf::from(v.get_ref())),
        };
        Ok(ManagementConfig { metrics, socket })
    }
}

#[cfg(test)]
mod management_tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn management_section() {
        let none = Config::from_toml_str("", "xlnsd.toml").unwrap();
        assert_eq!(none.management, ManagementConfig::default());
        let full = Config::from_toml_str(
            "[management]\nmetrics = \"127.0.0.1:9101\"\nsocket = \"/run/xlns/xlnsd.sock\"\n",
            "xlnsd.toml",
        )
        .unwrap();
        assert_eq!(
            full.management.metrics,
            Some("127.0.0.1:9101".parse().unwrap())
        );
        assert_eq!(
            full.management.socket,
            Some(PathBuf::from("/run/xlns/xlnsd.sock"))
        );
        let bad = Config::from_toml_str("[management]\nmetrics = \"9101\"\n", "xlnsd.toml")
            .unwrap_err()
            .to_string();
        assert!(
            bad.starts_with("xlnsd.toml:2:11: management.metrics:"),
            "{bad}"
        );
    }
}

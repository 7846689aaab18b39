//! The configuration file machinery that xlnsd and xlns-dataplane share (one TOML file
//! for both processes, issue #8), and the `[dataplane]` section.
//!
//! # Contract
//!
//! * [`parse`] turns TOML text into a serde type or into one [`ConfigError`] whose
//!   `Display` is `file:line:column: key: message`: syntax errors (position, no key),
//!   schema errors (unknown key, wrong type, missing key: position and key path found
//!   from the parser's span), and, through [`Source::invalid`], semantic errors at the
//!   span of the offending value. Positions are 1-based; columns count characters.
//! * The value helpers ([`int`], [`duration`], [`ipv4`]) give every range and format
//!   error one wording in both binaries.
//! * [`RawDataplane`] is the `[dataplane]` schema (unknown keys are errors) and
//!   [`RawDataplane::validate`] its rules; xlnsd embeds it in its own document, and
//!   [`load_dataplane`] reads it for xlns-dataplane, which ignores the sections that are
//!   xlnsd's (xlnsd checks those; run `xlnsd --check-config` on the same file) except
//!   the two values it shares: `[l2tp] listen` (the L2TP port) and `[ppp] gateway`.
//!
//! # `[dataplane]`
//!
//! ```toml
//! [dataplane]
//! enabled = true                  # false: xlnsd runs without a data plane
//! shm = "/dev/shm/xlns.default"   # the session segment (xlnsd writes, workers read)
//! max_sessions = 65536            # session slots (default [l2tp] max_sessions)
//! max_workers = 64                # counter columns in the segment
//! access_interface = "eth1"       # facing the LACs (required)
//! core_interface = "eth2"         # facing the network; or one_armed = true
//! one_armed = false
//! workers = 4                     # worker i serves queue i of each interface
//! cores = [2, 3, 4, 5]            # CPU of worker i: cores[i % len]
//! core_gateway = "192.0.2.1"      # next hop (its MAC from the ARP table) ...
//! core_next_hop_mac = "02:00:00:00:00:01"   # ... or its MAC given
//! core_vlan = 0                   # 802.1Q id upstream on the core side
//! gateway_v4 = "100.64.0.1"       # default: [ppp] gateway
//! icmp_source_v4 = "192.0.2.10"   # default: gateway_v4
//! frames = 8192                   # UMEM frames per worker
//! frame_size = 2048               # 2048 or 4096
//! ring_size = 2048                # AF_XDP ring entries, a power of two
//! bind = "auto"                   # "auto", "copy", "zerocopy"
//! xdp_mode = "native"             # "native" or "generic" (skb)
//! stats_interval = "0s"           # a stats line this often ("0s": never)
//! ```

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use toml::Spanned;

use crate::shm::Geometry;
use crate::wire::EthernetAddress;
use crate::worker::host;
use crate::worker::xsk::BindMode;

/// What kind of problem a [`ConfigError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigErrorKind {
    /// The file could not be read.
    Io,
    /// The text is not TOML.
    Syntax,
    /// Valid TOML that does not fit the schema: unknown key, wrong type, missing key.
    Schema,
    /// A value the schema accepts but the rules do not (range, duplicate, ...).
    Invalid,
}

/// A 1-based line and column (in characters) in the configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1, in characters.
    pub column: usize,
}

/// Why the configuration was refused. `Display` writes `file:line:column: key: message`.
#[derive(Debug)]
pub struct ConfigError {
    /// The file name given to [`Config::from_toml_str`] or the path given to
    /// [`Config::load`].
    pub file: String,
    /// What kind of problem.
    pub kind: ConfigErrorKind,
    /// Where, when known.
    pub position: Option<Position>,
    /// The key path (`lac[1].receive_window`), when known.
    pub key: Option<String>,
    /// What is wrong, one line.
    pub message: String,
    io: Option<std::io::Error>,
}

impl ConfigError {
    /// A key that must be set and is not, reported at `position` (the table that lacks
    /// it) when known.
    pub fn missing(
        file: &str,
        position: Option<Position>,
        key: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            file: file.to_owned(),
            kind: ConfigErrorKind::Schema,
            position,
            key: Some(key.to_owned()),
            message: message.into(),
            io: None,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.file)?;
        if let Some(p) = self.position {
            write!(f, "{}:{}:", p.line, p.column)?;
        }
        if let Some(key) = &self.key {
            write!(f, " {key}:")?;
        }
        write!(f, " {}", self.message)
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.io
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Parses `text` (the file `file`) into `T`; syntax errors first, so that they are
/// reported as such and without a key path.
pub fn parse<T: DeserializeOwned>(text: &str, file: &str) -> Result<T, ConfigError> {
    let source = Source::new(text, file);
    if let Err(e) = text.parse::<toml::Table>() {
        return Err(source.toml_error(ConfigErrorKind::Syntax, &e, None));
    }
    toml::from_str(text).map_err(|e| {
        // Best effort: a document whose tables lack spans (implicit tables made by dotted
        // keys) yields no key tree, and the error then has no key path.
        let keys = toml::from_str::<KeyTable>(text).ok();
        source.toml_error(ConfigErrorKind::Schema, &e, keys.as_ref())
    })
}

/// Reads the file at `path`; the error names the path as given.
pub fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.display().to_string(),
        kind: ConfigErrorKind::Io,
        position: None,
        key: None,
        message: format!("cannot read: {e}"),
        io: Some(e),
    })
}

/// An optional value with the span it came from.
pub type S<T> = Option<Spanned<T>>;

// ---------------------------------------------------------------------------------------
// Error positions.

/// The text being parsed and its name, to turn spans into [`ConfigError`]s.
#[derive(Debug)]
pub struct Source<'a> {
    text: &'a str,
    file: &'a str,
}

impl<'a> Source<'a> {
    /// The text `text` of the file called `file` (in messages).
    pub fn new(text: &'a str, file: &'a str) -> Source<'a> {
        Source { text, file }
    }

    /// The file name given to [`Source::new`].
    pub fn file(&self) -> &str {
        self.file
    }

    /// Line and column (1-based, column in characters) of byte `offset`.
    pub fn position(&self, offset: usize) -> Position {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line_start = before.rfind('\n').map_or(0, |nl| nl + 1);
        Position {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }

    fn toml_error(
        &self,
        kind: ConfigErrorKind,
        e: &toml::de::Error,
        keys: Option<&KeyTable>,
    ) -> ConfigError {
        let span = e.span();
        let key = match (&span, keys) {
            (Some(span), Some(keys)) => keys.path_at(span.start),
            _ => None,
        };
        let message = e
            .message()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        ConfigError {
            file: self.file.to_owned(),
            kind,
            position: span.map(|s| self.position(s.start)),
            key,
            message,
            io: None,
        }
    }

    pub fn invalid(
        &self,
        span: Range<usize>,
        key: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            file: self.file.to_owned(),
            kind: ConfigErrorKind::Invalid,
            position: Some(self.position(span.start)),
            key: Some(key.to_owned()),
            message: message.into(),
            io: None,
        }
    }
}

/// Every key of a TOML document with its span, to name the key path of a byte offset.
#[derive(Debug, Default)]
struct KeyTable(Vec<(Spanned<String>, Spanned<KeyNode>)>);

#[derive(Debug)]
enum KeyNode {
    Table(KeyTable),
    Array(Vec<Spanned<KeyNode>>),
    Leaf,
}

impl KeyTable {
    /// The key path (`lac[1].source[0]`) of the innermost key or value that holds `offset`.
    fn path_at(&self, offset: usize) -> Option<String> {
        let mut path = String::new();
        self.descend(offset, &mut path);
        (!path.is_empty()).then_some(path)
    }

    fn descend(&self, offset: usize, path: &mut String) {
        for (key, node) in &self.0 {
            let in_key = key.span().contains(&offset);
            if in_key || node_contains(node, offset) {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key.get_ref());
                if !in_key {
                    node.get_ref().descend(offset, path);
                }
                return;
            }
        }
    }

    fn contains(&self, offset: usize) -> bool {
        self.0
            .iter()
            .any(|(k, v)| k.span().contains(&offset) || node_contains(v, offset))
    }
}

impl KeyNode {
    fn descend(&self, offset: usize, path: &mut String) {
        match self {
            KeyNode::Table(table) => table.descend(offset, path),
            KeyNode::Array(items) => {
                if let Some((i, item)) = items
                    .iter()
                    .enumerate()
                    .find(|(_, item)| node_contains(item, offset))
                {
                    path.push_str(&format!("[{i}]"));
                    item.get_ref().descend(offset, path);
                }
            }
            KeyNode::Leaf => {}
        }
    }
}

fn node_contains(node: &Spanned<KeyNode>, offset: usize) -> bool {
    node.span().contains(&offset)
        || match node.get_ref() {
            KeyNode::Table(table) => table.contains(offset),
            KeyNode::Array(items) => items.iter().any(|i| node_contains(i, offset)),
            KeyNode::Leaf => false,
        }
}

impl<'de> Deserialize<'de> for KeyTable {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match KeyNode::deserialize(d)? {
            KeyNode::Table(t) => Ok(t),
            _ => Ok(KeyTable::default()),
        }
    }
}

impl<'de> Deserialize<'de> for KeyNode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = KeyNode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any TOML value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<KeyNode, E> {
                Ok(KeyNode::Leaf)
            }
            fn visit_i64<E>(self, _: i64) -> Result<KeyNode, E> {
                Ok(KeyNode::Leaf)
            }
            fn visit_u64<E>(self, _: u64) -> Result<KeyNode, E> {
                Ok(KeyNode::Leaf)
            }
            fn visit_f64<E>(self, _: f64) -> Result<KeyNode, E> {
                Ok(KeyNode::Leaf)
            }
            fn visit_str<E>(self, _: &str) -> Result<KeyNode, E> {
                Ok(KeyNode::Leaf)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<KeyNode, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(KeyNode::Array(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<KeyNode, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(KeyNode::Table(KeyTable(entries)))
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------------------------------
// Value helpers. Integers are read as i64 so that range errors are ours, with one wording.

/// Checks one optional integer against `min..=max`, naming `key` in the error.
pub fn int<T: TryFrom<i64>>(
    src: &Source<'_>,
    key: &str,
    value: &S<i64>,
    min: i64,
    max: i64,
) -> Result<Option<T>, ConfigError> {
    let Some(v) = value else { return Ok(None) };
    let n = *v.get_ref();
    if !(min..=max).contains(&n) {
        return Err(src.invalid(v.span(), key, format!("must be between {min} and {max}")));
    }
    T::try_from(n)
        .map(Some)
        .map_err(|_| src.invalid(v.span(), key, format!("must be between {min} and {max}")))
}

/// Parses one optional duration string and checks it against `min..=max`.
pub fn duration(
    src: &Source<'_>,
    key: &str,
    value: &S<String>,
    min: Duration,
    max: Duration,
) -> Result<Option<Duration>, ConfigError> {
    let Some(v) = value else { return Ok(None) };
    let d = parse_duration(v.get_ref()).ok_or_else(|| {
        src.invalid(
            v.span(),
            key,
            format!(
                "{:?} is not a duration; write an integer and a unit: \"500ms\", \"60s\", \
                 \"2m\" or \"1h\"",
                v.get_ref()
            ),
        )
    })?;
    if d < min || d > max {
        return Err(src.invalid(
            v.span(),
            key,
            format!(
                "must be between {} and {}",
                fmt_duration(min),
                fmt_duration(max)
            ),
        ));
    }
    Ok(Some(d))
}

/// `"500ms"`, `"60s"`, `"2m"`, `"1h"`: digits then a unit, nothing else.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        _ => None,
    }
}

/// The shortest exact form in the units [`parse_duration`] reads.
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 3_600_000 == 0 && ms > 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms % 60_000 == 0 && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// An IPv4 address, or an error naming `key`.
pub fn ipv4(src: &Source<'_>, key: &str, value: &Spanned<String>) -> Result<Ipv4Addr, ConfigError> {
    value.get_ref().parse::<Ipv4Addr>().map_err(|_| {
        src.invalid(
            value.span(),
            key,
            format!("{:?} is not an IPv4 address", value.get_ref()),
        )
    })
}

// ---------------------------------------------------------------------------------------
// [dataplane]

/// Default `[dataplane] shm`.
pub const DEFAULT_SHM: &str = "/dev/shm/xlns.default";
/// Default `[dataplane] max_workers`.
pub const DEFAULT_MAX_WORKERS: u32 = 64;
/// Default `[dataplane] frames`.
pub const DEFAULT_FRAMES: u32 = 8192;
/// Default `[dataplane] frame_size`.
pub const DEFAULT_FRAME_SIZE: u32 = 2048;
/// Default `[dataplane] ring_size`.
pub const DEFAULT_RING_SIZE: u32 = 2048;
/// The L2TP port (RFC 2661 §8.1), when `[l2tp] listen` is not set.
pub const DEFAULT_L2TP_PORT: u16 = 1701;

/// The `[dataplane]` table as written; see the module documentation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDataplane {
    enabled: Option<bool>,
    shm: S<String>,
    max_sessions: S<i64>,
    max_workers: S<i64>,
    access_interface: Spanned<String>,
    core_interface: S<String>,
    one_armed: Option<bool>,
    workers: S<i64>,
    cores: Option<Vec<Spanned<i64>>>,
    core_gateway: S<String>,
    core_next_hop_mac: S<String>,
    core_vlan: S<i64>,
    gateway_v4: S<String>,
    icmp_source_v4: S<String>,
    frames: S<i64>,
    frame_size: S<i64>,
    ring_size: S<i64>,
    bind: S<String>,
    xdp_mode: S<String>,
    stats_interval: S<String>,
}

/// The validated `[dataplane]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataplaneSection {
    /// `enabled` (default true).
    pub enabled: bool,
    /// `shm`.
    pub shm: PathBuf,
    /// `max_sessions`; `None`: xlnsd takes `[l2tp] max_sessions`.
    pub max_sessions: Option<u32>,
    /// `max_workers`.
    pub max_workers: u32,
    /// `access_interface`.
    pub access_interface: String,
    /// `core_interface`.
    pub core_interface: Option<String>,
    /// `one_armed`.
    pub one_armed: bool,
    /// `workers` (default 1).
    pub workers: u32,
    /// `cores`.
    pub cores: Vec<usize>,
    /// `core_gateway`.
    pub core_gateway: Option<Ipv4Addr>,
    /// `core_next_hop_mac`.
    pub core_next_hop_mac: Option<EthernetAddress>,
    /// `core_vlan`.
    pub core_vlan: u16,
    /// `gateway_v4`; [`load_dataplane`] defaults it to `[ppp] gateway`.
    pub gateway_v4: Option<Ipv4Addr>,
    /// `icmp_source_v4`.
    pub icmp_source_v4: Option<Ipv4Addr>,
    /// `frames`.
    pub frames: u32,
    /// `frame_size`.
    pub frame_size: u32,
    /// `ring_size`.
    pub ring_size: u32,
    /// `bind`.
    pub bind: BindMode,
    /// `xdp_mode = "generic"`.
    pub xdp_generic: bool,
    /// `stats_interval`; zero: never.
    pub stats_interval: Duration,
    /// The port of `[l2tp] listen` ([`load_dataplane`]; else 1701).
    pub l2tp_port: u16,
    /// The file it came from and where its table begins, for errors about keys it lacks.
    pub file: String,
    /// See `file`.
    pub position: Option<Position>,
}

impl Default for DataplaneSection {
    /// The defaults of every key; no interface (the command line must name one).
    fn default() -> DataplaneSection {
        DataplaneSection {
            enabled: true,
            shm: PathBuf::from(DEFAULT_SHM),
            max_sessions: None,
            max_workers: DEFAULT_MAX_WORKERS,
            access_interface: String::new(),
            core_interface: None,
            one_armed: false,
            workers: 1,
            cores: Vec::new(),
            core_gateway: None,
            core_next_hop_mac: None,
            core_vlan: 0,
            gateway_v4: None,
            icmp_source_v4: None,
            frames: DEFAULT_FRAMES,
            frame_size: DEFAULT_FRAME_SIZE,
            ring_size: DEFAULT_RING_SIZE,
            bind: BindMode::Auto,
            xdp_generic: false,
            stats_interval: Duration::ZERO,
            l2tp_port: DEFAULT_L2TP_PORT,
            file: "command line".to_owned(),
            position: None,
        }
    }
}

impl DataplaneSection {
    /// The error for a key the section lacks (and the command line did not give).
    pub fn missing(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::missing(
            &self.file,
            self.position,
            &format!("dataplane.{key}"),
            message,
        )
    }
}

/// IFNAMSIZ is 16 with the NUL; a name is never empty and has no '/' or blank.
fn interface(src: &Source<'_>, key: &str, v: &Spanned<String>) -> Result<String, ConfigError> {
    let name = v.get_ref();
    if name.is_empty() || name.len() > 15 || name.contains(['/', ' ']) {
        return Err(src.invalid(v.span(), key, format!("{name:?} is not an interface name")));
    }
    Ok(name.clone())
}

fn one_of<T: Copy>(
    src: &Source<'_>,
    key: &str,
    v: &S<String>,
    choices: &[(&str, T)],
) -> Result<Option<T>, ConfigError> {
    let Some(v) = v else { return Ok(None) };
    match choices
        .iter()
        .find(|(name, _)| *name == v.get_ref().as_str())
    {
        Some((_, value)) => Ok(Some(*value)),
        None => {
            let names: Vec<String> = choices.iter().map(|(n, _)| format!("{n:?}")).collect();
            Err(src.invalid(
                v.span(),
                key,
                format!("{:?} is not one of {}", v.get_ref(), names.join(", ")),
            ))
        }
    }
}

impl RawDataplane {
    /// Checks every value; `position` is where the table begins (for later errors about
    /// keys it lacks).
    pub fn validate(
        &self,
        src: &Source<'_>,
        position: Option<Position>,
    ) -> Result<DataplaneSection, ConfigError> {
        let shm = match &self.shm {
            None => PathBuf::from(DEFAULT_SHM),
            Some(v) if v.get_ref().is_empty() => {
                return Err(src.invalid(v.span(), "dataplane.shm", "must not be empty"));
            }
            Some(v) => PathBuf::from(v.get_ref()),
        };
        let max_sessions = int(
            src,
            "dataplane.max_sessions",
            &self.max_sessions,
            1,
            i64::from(Geometry::MAX_SESSIONS),
        )?;
        let max_workers = int(
            src,
            "dataplane.max_workers",
            &self.max_workers,
            1,
            i64::from(Geometry::MAX_WORKERS),
        )?
        .unwrap_or(DEFAULT_MAX_WORKERS);
        let access_interface =
            interface(src, "dataplane.access_interface", &self.access_interface)?;
        let one_armed = self.one_armed.unwrap_or(false);
        let core_interface = match &self.core_interface {
            None => None,
            Some(v) if one_armed => {
                return Err(src.invalid(
                    v.span(),
                    "dataplane.core_interface",
                    "one_armed = true: the access interface is the core interface too",
                ));
            }
            Some(v) => Some(interface(src, "dataplane.core_interface", v)?),
        };
        let workers = int(
            src,
            "dataplane.workers",
            &self.workers,
            1,
            i64::from(Geometry::MAX_WORKERS),
        )?
        .unwrap_or(1);
        if workers > max_workers
            && let Some(v) = self.workers.as_ref().or(self.max_workers.as_ref())
        {
            let key = if self.workers.is_some() {
                "dataplane.workers"
            } else {
                "dataplane.max_workers"
            };
            return Err(src.invalid(
                v.span(),
                key,
                format!(
                    "{workers} workers but the segment has counter columns for \
                     max_workers = {max_workers}"
                ),
            ));
        }
        let mut cores = Vec::new();
        for (i, v) in self.cores.iter().flatten().enumerate() {
            let n = *v.get_ref();
            if !(0..=4095).contains(&n) {
                return Err(src.invalid(
                    v.span(),
                    &format!("dataplane.cores[{i}]"),
                    "must be a CPU number between 0 and 4095",
                ));
            }
            cores.push(n as usize);
        }
        let core_gateway = match &self.core_gateway {
            None => None,
            Some(v) => Some(ipv4(src, "dataplane.core_gateway", v)?),
        };
        let core_next_hop_mac = match &self.core_next_hop_mac {
            None => None,
            Some(v) => Some(host::parse_mac(v.get_ref()).ok_or_else(|| {
                src.invalid(
                    v.span(),
                    "dataplane.core_next_hop_mac",
                    format!(
                        "{:?} is not a MAC address such as \"02:00:00:00:00:01\"",
                        v.get_ref()
                    ),
                )
            })?),
        };
        let core_vlan = int(src, "dataplane.core_vlan", &self.core_vlan, 0, 4094)?.unwrap_or(0);
        let gateway_v4 = match &self.gateway_v4 {
            None => None,
            Some(v) => Some(ipv4(src, "dataplane.gateway_v4", v)?),
        };
        let icmp_source_v4 = match &self.icmp_source_v4 {
            None => None,
            Some(v) => Some(ipv4(src, "dataplane.icmp_source_v4", v)?),
        };
        let frames =
            int(src, "dataplane.frames", &self.frames, 64, 1 << 20)?.unwrap_or(DEFAULT_FRAMES);
        let frame_size = match &self.frame_size {
            None => DEFAULT_FRAME_SIZE,
            Some(v) if matches!(*v.get_ref(), 2048 | 4096) => *v.get_ref() as u32,
            Some(v) => {
                return Err(src.invalid(v.span(), "dataplane.frame_size", "must be 2048 or 4096"));
            }
        };
        let ring_size = match &self.ring_size {
            None => DEFAULT_RING_SIZE,
            Some(v) => {
                let n = *v.get_ref();
                if !(64..=65536).contains(&n) || (n & (n - 1)) != 0 {
                    return Err(src.invalid(
                        v.span(),
                        "dataplane.ring_size",
                        "must be a power of two between 64 and 65536",
                    ));
                }
                n as u32
            }
        };
        let bind = one_of(
            src,
            "dataplane.bind",
            &self.bind,
            &[
                ("auto", BindMode::Auto),
                ("copy", BindMode::Copy),
                ("zerocopy", BindMode::ZeroCopy),
            ],
        )?
        .unwrap_or(BindMode::Auto);
        let xdp_generic = one_of(
            src,
            "dataplane.xdp_mode",
            &self.xdp_mode,
            &[("native", false), ("generic", true)],
        )?
        .unwrap_or(false);
        let stats_interval = duration(
            src,
            "dataplane.stats_interval",
            &self.stats_interval,
            Duration::ZERO,
            Duration::from_secs(3600),
        )?
        .unwrap_or(Duration::ZERO);
        Ok(DataplaneSection {
            enabled: self.enabled.unwrap_or(true),
            shm,
            max_sessions,
            max_workers,
            access_interface,
            core_interface,
            one_armed,
            workers,
            cores,
            core_gateway,
            core_next_hop_mac,
            core_vlan,
            gateway_v4,
            icmp_source_v4,
            frames,
            frame_size,
            ring_size,
            bind,
            xdp_generic,
            stats_interval,
            l2tp_port: DEFAULT_L2TP_PORT,
            file: src.file().to_owned(),
            position,
        })
    }
}

/// The parts of the shared file xlns-dataplane reads. No `deny_unknown_fields` here: the
/// other sections and keys are xlnsd's, and `xlnsd --check-config` checks them.
#[derive(Debug, Deserialize)]
struct RawFile {
    dataplane: Option<Spanned<RawDataplane>>,
    #[serde(default)]
    l2tp: RawL2tpShared,
    #[serde(default)]
    ppp: RawPppShared,
}

#[derive(Debug, Default, Deserialize)]
struct RawL2tpShared {
    listen: S<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RawPppShared {
    gateway: S<String>,
}

/// The `[dataplane]` section of the shared configuration `text` (the file `file`), with
/// `gateway_v4` defaulted to `[ppp] gateway` and `l2tp_port` taken from `[l2tp] listen`.
pub fn dataplane_from_str(text: &str, file: &str) -> Result<DataplaneSection, ConfigError> {
    let raw: RawFile = parse(text, file)?;
    let src = Source::new(text, file);
    let Some(table) = &raw.dataplane else {
        return Err(ConfigError::missing(
            file,
            None,
            "dataplane",
            "no [dataplane] section: nothing for xlns-dataplane to do",
        ));
    };
    let position = Some(src.position(table.span().start));
    let mut section = table.get_ref().validate(&src, position)?;
    if !section.enabled {
        return Err(ConfigError::missing(
            file,
            position,
            "dataplane.enabled",
            "the data plane is disabled (enabled = false)",
        ));
    }
    if let Some(v) = &raw.l2tp.listen {
        let addr = v.get_ref().parse::<SocketAddr>().map_err(|_| {
            src.invalid(
                v.span(),
                "l2tp.listen",
                format!("{:?} is not an address and port", v.get_ref()),
            )
        })?;
        section.l2tp_port = addr.port();
    }
    if section.gateway_v4.is_none()
        && let Some(v) = &raw.ppp.gateway
    {
        section.gateway_v4 = Some(ipv4(&src, "ppp.gateway", v)?);
    }
    Ok(section)
}

/// [`dataplane_from_str`] of the file at `path`.
pub fn load_dataplane(path: &Path) -> Result<DataplaneSection, ConfigError> {
    let text = read(path)?;
    dataplane_from_str(&text, &path.display().to_string())
}

impl fmt::Display for DataplaneSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "access={} core={} workers={} shm={}",
            self.access_interface,
            if self.one_armed {
                "(one-armed)"
            } else {
                self.core_interface.as_deref().unwrap_or("-")
            },
            self.workers,
            self.shm.display()
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn err(text: &str) -> String {
        dataplane_from_str(text, "xlns.toml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn full_section_and_shared_values() {
        let s = dataplane_from_str(
            "[l2tp]\nlisten = \"10.0.0.1:1702\"\nhost_name = \"ignored\"\n[ppp]\ngateway = \"100.64.0.1\"\n\
             [other]\nx = 1\n[dataplane]\naccess_interface = \"eth1\"\ncore_interface = \"eth2\"\n\
             workers = 2\ncores = [2, 3]\ncore_gateway = \"192.0.2.1\"\nframe_size = 4096\n\
             bind = \"zerocopy\"\nxdp_mode = \"generic\"\nstats_interval = \"10s\"\n",
            "xlns.toml",
        )
        .unwrap();
        assert_eq!(s.l2tp_port, 1702);
        assert_eq!(s.gateway_v4, Some(Ipv4Addr::new(100, 64, 0, 1)));
        assert_eq!(s.core_interface.as_deref(), Some("eth2"));
        assert_eq!(s.cores, vec![2, 3]);
        assert_eq!(s.frame_size, 4096);
        assert_eq!(s.bind, BindMode::ZeroCopy);
        assert!(s.xdp_generic);
        assert_eq!(s.stats_interval, Duration::from_secs(10));
        assert_eq!(s.position, Some(Position { line: 8, column: 1 }));
        assert_eq!(
            s.missing("core_gateway", "required").to_string(),
            "xlns.toml:8:1: dataplane.core_gateway: required"
        );
    }

    #[test]
    fn errors_name_file_line_and_key() {
        for (text, want) in [
            (
                "[dataplane]\naccess_interface = \"eth1\"\nworkers = 0\n",
                "xlns.toml:3:11: dataplane.workers: must be between 1 and 1024",
            ),
            (
                "[dataplane]\naccess_interface = \"eth1\"\nbind = \"fast\"\n",
                "xlns.toml:3:8: dataplane.bind: \"fast\" is not one of \"auto\", \"copy\", \"zerocopy\"",
            ),
            (
                "[dataplane]\naccess_interface = \"eth1\"\nqueues = 4\n",
                "xlns.toml:3:1: dataplane.queues: unknown field `queues`",
            ),
            (
                "[ppp]\ngateway = \"1.2.3\"\n[dataplane]\naccess_interface = \"eth1\"\n",
                "xlns.toml:2:11: ppp.gateway: \"1.2.3\" is not an IPv4 address",
            ),
            ("[l2tp]\n", "xlns.toml: dataplane: no [dataplane] section"),
        ] {
            let got = err(text);
            assert!(
                got.starts_with(want),
                "{got:?} does not start with {want:?}"
            );
        }
    }
}

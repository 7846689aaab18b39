//! A dictionary-driven attribute table that reads FreeRADIUS dictionary files.
//!
//! Syntax (FreeRADIUS 3.x `dictionary(5)`): `ATTRIBUTE name oid type [flags|vendor]`,
//! `VALUE attribute name number`, `VENDOR name id [format=t,l[,c]]`,
//! `BEGIN-VENDOR name [format=...]` / `END-VENDOR name`, `BEGIN-TLV name` /
//! `END-TLV name`, `$INCLUDE file` (relative to the including file) and `$INCLUDE-`
//! (missing file ignored). `#` starts a comment. Names are case-insensitive. A `VALUE`
//! may precede its `ATTRIBUTE` (FreeRADIUS resolves them at the end, so do we); a
//! `VALUE` whose attribute never appears is an error, as in FreeRADIUS.
//!
//! [`Dictionary::builtin`] holds the attributes xlns uses (RFC 2865, 2866, 2867, 2868,
//! 2869, 3162, 4818, 5176, 6911 and Microsoft, RFC 2548), so that xlnsd works without
//! dictionary files; [`Dictionary::load`] reads a FreeRADIUS tree such as
//! `/usr/share/freeradius/dictionary`, and [`Dictionary::merge_file`] adds a local file
//! on top of either.
//!
//! [`Dictionary::encode`] turns `name` + text value into an [`Attribute`] (a
//! Vendor-Specific one for vendor attributes of the 1,1 format); [`Dictionary::decode`]
//! names an attribute and formats its value.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use super::wire::{Attribute, attr, parse_vendor_specific};

/// A dictionary error, with the file and line where it happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct Error {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// Attribute data types (FreeRADIUS names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    String,
    Octets,
    Integer,
    Byte,
    Short,
    Integer64,
    Signed,
    Date,
    IpAddr,
    Ipv6Addr,
    Ipv6Prefix,
    Ipv4Prefix,
    ComboIp,
    Ifid,
    Ether,
    Abinary,
    Tlv,
    Vsa,
    Extended,
    LongExtended,
    Evs,
}

impl DataType {
    fn parse(s: &str) -> Option<(DataType, Option<usize>)> {
        let (base, fixed) = match s.split_once('[') {
            Some((b, rest)) => (b, rest.strip_suffix(']')?.parse().ok()),
            None => (s, None),
        };
        let t = match base.to_ascii_lowercase().as_str() {
            "string" => DataType::String,
            "octets" => DataType::Octets,
            "integer" | "uint32" => DataType::Integer,
            "byte" | "uint8" => DataType::Byte,
            "short" | "uint16" => DataType::Short,
            "integer64" | "uint64" => DataType::Integer64,
            "signed" | "int32" => DataType::Signed,
            "date" => DataType::Date,
            "ipaddr" | "ipv4addr" => DataType::IpAddr,
            "ipv6addr" => DataType::Ipv6Addr,
            "ipv6prefix" => DataType::Ipv6Prefix,
            "ipv4prefix" => DataType::Ipv4Prefix,
            "combo-ip" => DataType::ComboIp,
            "ifid" => DataType::Ifid,
            "ether" => DataType::Ether,
            "abinary" => DataType::Abinary,
            "tlv" => DataType::Tlv,
            "vsa" => DataType::Vsa,
            "extended" => DataType::Extended,
            "long-extended" => DataType::LongExtended,
            "evs" => DataType::Evs,
            _ => return None,
        };
        Some((t, fixed))
    }
}

/// One `ATTRIBUTE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeDef {
    /// The name as written.
    pub name: String,
    /// Vendor-Id (0: a standard attribute).
    pub vendor: u32,
    /// The number path: `[type]`, or `[parent, .., type]` for TLV children and
    /// extended attributes (`241.1` is `[241, 1]`).
    pub oid: Vec<u32>,
    pub data_type: DataType,
    /// `octets[16]`: a fixed length.
    pub fixed_len: Option<usize>,
    /// `has_tag` (RFC 2868 §3).
    pub has_tag: bool,
    /// `encrypt=1` User-Password, `2` Tunnel-Password (salt), `3` Ascend secret.
    pub encrypt: u8,
    pub array: bool,
    pub concat: bool,
    pub is_virtual: bool,
    values: Vec<(String, u64)>,
}

impl AttributeDef {
    /// The number of a `VALUE` name (case-insensitive).
    pub fn value(&self, name: &str) -> Option<u64> {
        self.values
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, v)| v)
    }

    /// The (last defined) `VALUE` name of a number.
    pub fn value_name(&self, number: u64) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|&&(_, v)| v == number)
            .map(|(n, _)| n.as_str())
    }

    /// Number of `VALUE`s.
    pub fn value_count(&self) -> usize {
        self.values.len()
    }

    /// The top-level number when the attribute has one (`oid` of length 1).
    pub fn code(&self) -> Option<u32> {
        match self.oid.as_slice() {
            [c] => Some(*c),
            _ => None,
        }
    }
}

/// One `VENDOR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorDef {
    pub name: String,
    pub id: u32,
    /// Octets of the sub-attribute type (1, 2 or 4) and length (0, 1 or 2) fields.
    pub type_len: u8,
    pub length_len: u8,
    /// WiMAX-style continuation octet (`format=1,1,c`).
    pub continuation: bool,
}

/// The attribute table.
#[derive(Debug, Clone, Default)]
pub struct Dictionary {
    vendors: Vec<VendorDef>,
    vendor_by_name: HashMap<String, usize>,
    vendor_by_id: HashMap<u32, usize>,
    attrs: Vec<AttributeDef>,
    by_name: HashMap<String, usize>,
    by_oid: HashMap<(u32, Vec<u32>), usize>,
}

/// The built-in dictionary, in FreeRADIUS syntax.
pub const BUILTIN: &str = include_str!("dictionary.builtin");

const MAX_INCLUDE_DEPTH: usize = 32;

struct Parser<'d> {
    dict: &'d mut Dictionary,
    pending_values: Vec<(String, usize, String, String, u64)>,
}

struct Context {
    vendor_stack: Vec<u32>,
    tlv_stack: Vec<(u32, Vec<u32>)>,
}

fn parse_number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

impl Dictionary {
    /// An empty dictionary.
    pub fn new() -> Dictionary {
        Dictionary::default()
    }

    /// The built-in dictionary ([`BUILTIN`]).
    pub fn builtin() -> Dictionary {
        let mut d = Dictionary::new();
        // The built-in text is tested to parse (dictionary tests); an error here would
        // be a defect of this file, and leaves whatever parsed before it.
        if let Err(e) = d.merge_str(BUILTIN, "builtin") {
            tracing::error!(%e, "built-in RADIUS dictionary");
        }
        d
    }

    /// Load a dictionary file and everything it includes.
    pub fn load(path: impl AsRef<Path>) -> Result<Dictionary, Error> {
        let mut d = Dictionary::new();
        d.merge_file(path)?;
        Ok(d)
    }

    /// Add a dictionary file (and its includes) on top of this one.
    pub fn merge_file(&mut self, path: impl AsRef<Path>) -> Result<(), Error> {
        let mut p = Parser {
            dict: self,
            pending_values: Vec::new(),
        };
        let mut ctx = Context {
            vendor_stack: Vec::new(),
            tlv_stack: Vec::new(),
        };
        p.file(path.as_ref(), &mut ctx, 0, false)?;
        p.finish()
    }

    /// Add dictionary text (no `$INCLUDE` relative to a directory: relative paths are
    /// taken from the working directory).
    pub fn merge_str(&mut self, text: &str, name: &str) -> Result<(), Error> {
        let mut p = Parser {
            dict: self,
            pending_values: Vec::new(),
        };
        let mut ctx = Context {
            vendor_stack: Vec::new(),
            tlv_stack: Vec::new(),
        };
        p.text(text, name, Path::new("."), &mut ctx, 0)?;
        p.finish()
    }

    /// Number of attributes.
    pub fn attribute_count(&self) -> usize {
        self.attrs.len()
    }

    /// Number of vendors.
    pub fn vendor_count(&self) -> usize {
        self.vendors.len()
    }

    /// An attribute by name (case-insensitive).
    pub fn attribute(&self, name: &str) -> Option<&AttributeDef> {
        self.by_name
            .get(&name.to_ascii_lowercase())
            .map(|&i| &self.attrs[i])
    }

    /// A top-level attribute by vendor and number (vendor 0: standard).
    pub fn by_code(&self, vendor: u32, code: u32) -> Option<&AttributeDef> {
        self.by_oid
            .get(&(vendor, vec![code]))
            .map(|&i| &self.attrs[i])
    }

    /// A vendor by name (case-insensitive).
    pub fn vendor(&self, name: &str) -> Option<&VendorDef> {
        self.vendor_by_name
            .get(&name.to_ascii_lowercase())
            .map(|&i| &self.vendors[i])
    }

    /// A vendor by Vendor-Id.
    pub fn vendor_by_id(&self, id: u32) -> Option<&VendorDef> {
        self.vendor_by_id.get(&id).map(|&i| &self.vendors[i])
    }

    /// Encode `name = text` as an attribute: integers accept `VALUE` names and numbers,
    /// addresses their text form, octets `0x` hex, ipv6prefix `addr/len`, date seconds
    /// since the epoch. A `has_tag` attribute takes its tag as `Name:tag`. Vendor
    /// attributes are wrapped in Vendor-Specific (vendors of the 1,1 format only).
    pub fn encode(&self, name: &str, text: &str) -> Result<Attribute, String> {
        let (name, tag) = match name.rsplit_once(':') {
            Some((n, t)) => (
                n,
                Some(t.parse::<u8>().map_err(|_| format!("bad tag {t}"))?),
            ),
            None => (name, None),
        };
        let def = self
            .attribute(name)
            .ok_or_else(|| format!("unknown attribute {name}"))?;
        let code = def
            .code()
            .and_then(|c| u8::try_from(c).ok())
            .ok_or_else(|| format!("{name}: only top-level attributes are encoded"))?;
        let number = |max: u64| -> Result<u64, String> {
            let v = def
                .value(text)
                .or_else(|| parse_number(text))
                .ok_or_else(|| format!("{name}: bad number {text}"))?;
            if v > max {
                return Err(format!("{name}: {v} out of range"));
            }
            Ok(v)
        };
        let mut value = match def.data_type {
            DataType::String => text.as_bytes().to_vec(),
            DataType::Octets | DataType::Abinary => match text.strip_prefix("0x") {
                Some(h) => hex_decode(h).ok_or_else(|| format!("{name}: bad hex"))?,
                None => text.as_bytes().to_vec(),
            },
            DataType::Integer | DataType::Date => {
                (number(u32::MAX.into())? as u32).to_be_bytes().to_vec()
            }
            DataType::Signed => text
                .parse::<i32>()
                .map_err(|_| format!("{name}: bad number {text}"))?
                .to_be_bytes()
                .to_vec(),
            DataType::Byte => vec![number(u8::MAX.into())? as u8],
            DataType::Short => (number(u16::MAX.into())? as u16).to_be_bytes().to_vec(),
            DataType::Integer64 => number(u64::MAX)?.to_be_bytes().to_vec(),
            DataType::IpAddr => text
                .parse::<Ipv4Addr>()
                .map_err(|_| format!("{name}: bad address {text}"))?
                .octets()
                .to_vec(),
            DataType::Ipv6Addr => text
                .parse::<Ipv6Addr>()
                .map_err(|_| format!("{name}: bad address {text}"))?
                .octets()
                .to_vec(),
            DataType::Ipv6Prefix => {
                let net: ipnet::Ipv6Net = text
                    .parse()
                    .map_err(|_| format!("{name}: bad prefix {text}"))?;
                encode_ipv6_prefix(&net)
            }
            other => return Err(format!("{name}: cannot encode type {other:?}")),
        };
        if def.has_tag {
            let tag = tag.unwrap_or(0);
            if def.data_type == DataType::Integer {
                // RFC 2868 §3.1: the tag replaces the first octet of the integer.
                value[0] = tag;
            } else if tag != 0 {
                value.insert(0, tag);
            }
        }
        if def.vendor == 0 {
            return Ok(Attribute::new(code, value));
        }
        match self.vendor_by_id(def.vendor) {
            Some(v) if v.type_len == 1 && v.length_len == 1 && !v.continuation => {
                Ok(Attribute::vendor(def.vendor, code, &value))
            }
            _ => Err(format!("{name}: vendor format not supported for encoding")),
        }
    }

    /// Name and format an attribute: one `(name, value)` per standard attribute, one
    /// per sub-attribute of a Vendor-Specific (1,1 format), `Attr-N` / `Vendor-V-Attr-N`
    /// for unknown ones, octets as `0x` hex.
    pub fn decode(&self, attribute: &Attribute) -> Vec<(String, String)> {
        if attribute.kind == attr::VENDOR_SPECIFIC {
            if let Ok((vendor, it)) = parse_vendor_specific(&attribute.value) {
                let format_ok = self
                    .vendor_by_id(vendor)
                    .is_none_or(|v| v.type_len == 1 && v.length_len == 1 && !v.continuation);
                let subs: Result<Vec<_>, _> = it.collect();
                if let (true, Ok(subs)) = (format_ok, subs) {
                    return subs
                        .into_iter()
                        .map(|s| self.format_one(vendor, s.kind, s.value))
                        .collect();
                }
            }
        }
        vec![self.format_one(0, attribute.kind, &attribute.value)]
    }

    fn format_one(&self, vendor: u32, kind: u8, value: &[u8]) -> (String, String) {
        let Some(def) = self.by_code(vendor, kind.into()) else {
            let name = if vendor == 0 {
                format!("Attr-{kind}")
            } else {
                format!("Vendor-{vendor}-Attr-{kind}")
            };
            return (name, format!("0x{}", hex_encode(value)));
        };
        let mut v = value;
        let mut name = def.name.clone();
        if def.has_tag
            && def.data_type != DataType::Integer
            && v.first().is_some_and(|&t| t <= 0x1f)
        {
            name = format!("{name}:{}", v[0]);
            v = &v[1..];
        }
        let text = match (def.data_type, v.len()) {
            (DataType::String, _) => String::from_utf8_lossy(v).into_owned(),
            (DataType::Integer | DataType::Date, 4) => {
                let mut n = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
                if def.has_tag {
                    name = format!("{name}:{}", v[0]);
                    n &= 0x00ff_ffff;
                }
                def.value_name(n.into())
                    .map_or_else(|| n.to_string(), str::to_string)
            }
            (DataType::Byte, 1) => def
                .value_name(v[0].into())
                .map_or_else(|| v[0].to_string(), str::to_string),
            (DataType::Short, 2) => u16::from_be_bytes([v[0], v[1]]).to_string(),
            (DataType::IpAddr, 4) => Ipv4Addr::new(v[0], v[1], v[2], v[3]).to_string(),
            (DataType::Ipv6Addr, 16) => {
                let mut o = [0; 16];
                o.copy_from_slice(v);
                Ipv6Addr::from(o).to_string()
            }
            (DataType::Ipv6Prefix, _) => decode_ipv6_prefix(v)
                .map_or_else(|| format!("0x{}", hex_encode(v)), |n| n.to_string()),
            _ => format!("0x{}", hex_encode(v)),
        };
        (name, text)
    }
}

/// Encode an IPv6 prefix (RFC 3162 §2.3): Reserved, Prefix-Length, then the prefix
/// octets the length needs.
pub fn encode_ipv6_prefix(net: &ipnet::Ipv6Net) -> Vec<u8> {
    let len = net.prefix_len();
    let mut v = vec![0, len];
    v.extend_from_slice(&net.network().octets()[..usize::from(len).div_ceil(8)]);
    v
}

/// Decode an IPv6 prefix (RFC 3162 §2.3); `None` when malformed (length above 128,
/// fewer octets than the length needs, more than 16).
pub fn decode_ipv6_prefix(v: &[u8]) -> Option<ipnet::Ipv6Net> {
    let (&len, rest) = v.get(1..)?.split_first()?;
    if len > 128 || rest.len() > 16 || rest.len() < usize::from(len).div_ceil(8) {
        return None;
    }
    let mut o = [0u8; 16];
    o[..rest.len()].copy_from_slice(rest);
    ipnet::Ipv6Net::new(Ipv6Addr::from(o), len)
        .ok()
        .map(|n| n.trunc())
}

fn hex_encode(v: &[u8]) -> String {
    v.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Parser<'_> {
    fn file(
        &mut self,
        path: &Path,
        ctx: &mut Context,
        depth: usize,
        optional: bool,
    ) -> Result<(), Error> {
        let name = path.display().to_string();
        if depth > MAX_INCLUDE_DEPTH {
            return Err(Error {
                file: name,
                line: 0,
                message: "$INCLUDE nested too deep".into(),
            });
        }
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if optional && e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(Error {
                    file: name,
                    line: 0,
                    message: e.to_string(),
                });
            }
        };
        let dir = path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        self.text(&text, &name, &dir, ctx, depth)
    }

    fn text(
        &mut self,
        text: &str,
        file: &str,
        dir: &Path,
        ctx: &mut Context,
        depth: usize,
    ) -> Result<(), Error> {
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let err = |message: String| Error {
                file: file.to_string(),
                line,
                message,
            };
            let content = raw.split('#').next().unwrap_or("");
            let f: Vec<&str> = content.split_whitespace().collect();
            let Some(&keyword) = f.first() else {
                continue;
            };
            match keyword {
                "$INCLUDE" | "$INCLUDE-" => {
                    let target = f
                        .get(1)
                        .ok_or_else(|| err("$INCLUDE without file".into()))?;
                    let p = Path::new(target);
                    let p = if p.is_absolute() {
                        p.to_path_buf()
                    } else {
                        dir.join(p)
                    };
                    self.file(&p, ctx, depth + 1, keyword == "$INCLUDE-")?;
                }
                "VENDOR" => self.vendor(&f).map_err(err)?,
                "BEGIN-VENDOR" => {
                    let name = f
                        .get(1)
                        .ok_or_else(|| err("BEGIN-VENDOR without name".into()))?;
                    let v = self
                        .dict
                        .vendor(name)
                        .ok_or_else(|| err(format!("unknown vendor {name}")))?;
                    ctx.vendor_stack.push(v.id);
                }
                "END-VENDOR" => {
                    let name = f
                        .get(1)
                        .ok_or_else(|| err("END-VENDOR without name".into()))?;
                    let id = self.dict.vendor(name).map(|v| v.id);
                    if id.is_none() || ctx.vendor_stack.last().copied() != id {
                        return Err(err(format!("END-VENDOR {name} without BEGIN-VENDOR")));
                    }
                    ctx.vendor_stack.pop();
                }
                "BEGIN-TLV" => {
                    let name = f
                        .get(1)
                        .ok_or_else(|| err("BEGIN-TLV without name".into()))?;
                    let a = self
                        .dict
                        .attribute(name)
                        .filter(|a| a.data_type == DataType::Tlv)
                        .ok_or_else(|| err(format!("BEGIN-TLV {name}: no such tlv attribute")))?;
                    ctx.tlv_stack.push((a.vendor, a.oid.clone()));
                }
                "END-TLV" => {
                    if ctx.tlv_stack.pop().is_none() {
                        return Err(err("END-TLV without BEGIN-TLV".into()));
                    }
                }
                "ATTRIBUTE" => self.attribute(&f, ctx).map_err(err)?,
                "VALUE" => {
                    let [_, attr, name, number, ..] = f.as_slice() else {
                        return Err(err("VALUE needs attribute, name and number".into()));
                    };
                    let n =
                        parse_number(number).ok_or_else(|| err(format!("bad number {number}")))?;
                    self.pending_values.push((
                        file.to_string(),
                        line,
                        (*attr).to_string(),
                        (*name).to_string(),
                        n,
                    ));
                }
                other => return Err(err(format!("unknown keyword {other}"))),
            }
        }
        Ok(())
    }

    fn vendor(&mut self, f: &[&str]) -> Result<(), String> {
        let [_, name, id, rest @ ..] = f else {
            return Err("VENDOR needs name and number".into());
        };
        let id = parse_number(id)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| format!("bad vendor number {id}"))?;
        let (mut type_len, mut length_len, mut continuation) = (1u8, 1u8, false);
        if let Some(fmt) = rest.first().and_then(|s| s.strip_prefix("format=")) {
            let parts: Vec<&str> = fmt.split(',').collect();
            let t = parts.first().and_then(|s| s.parse().ok());
            let l = parts.get(1).and_then(|s| s.parse().ok());
            match (t, l) {
                (Some(t @ (1 | 2 | 4)), Some(l @ (0..=2))) => {
                    type_len = t;
                    length_len = l;
                }
                _ => return Err(format!("bad vendor format {fmt}")),
            }
            continuation = parts.get(2) == Some(&"c");
        }
        let def = VendorDef {
            name: (*name).to_string(),
            id,
            type_len,
            length_len,
            continuation,
        };
        let d = &mut *self.dict;
        let idx = d.vendors.len();
        d.vendors.push(def);
        // A redefinition replaces the earlier one (FreeRADIUS does the same).
        d.vendor_by_name.insert(name.to_ascii_lowercase(), idx);
        d.vendor_by_id.insert(id, idx);
        Ok(())
    }

    fn attribute(&mut self, f: &[&str], ctx: &Context) -> Result<(), String> {
        let [_, name, oid, ty, rest @ ..] = f else {
            return Err("ATTRIBUTE needs name, number and type".into());
        };
        let mut path = oid
            .split('.')
            .map(|p| parse_number(p).and_then(|n| u32::try_from(n).ok()))
            .collect::<Option<Vec<u32>>>()
            .ok_or_else(|| format!("bad attribute number {oid}"))?;
        let (data_type, fixed_len) =
            DataType::parse(ty).ok_or_else(|| format!("unknown type {ty}"))?;
        let mut vendor = ctx.vendor_stack.last().copied().unwrap_or(0);
        if let Some((v, parent)) = ctx.tlv_stack.last() {
            vendor = *v;
            let mut full = parent.clone();
            full.extend_from_slice(&path);
            path = full;
        }
        let mut def = AttributeDef {
            name: (*name).to_string(),
            vendor,
            oid: path,
            data_type,
            fixed_len,
            has_tag: false,
            encrypt: 0,
            array: false,
            concat: false,
            is_virtual: false,
            values: Vec::new(),
        };
        if let Some(flags) = rest.first() {
            for flag in flags.split(',') {
                match flag.split_once('=') {
                    Some(("encrypt", n)) => {
                        def.encrypt = n.parse().map_err(|_| format!("bad flag {flag}"))?;
                    }
                    Some(_) => return Err(format!("unknown flag {flag}")),
                    None => match flag {
                        "has_tag" => def.has_tag = true,
                        "array" => def.array = true,
                        "concat" => def.concat = true,
                        "virtual" => def.is_virtual = true,
                        "secret" | "abinary" => {}
                        // Old style: the fourth field names the vendor.
                        v => {
                            def.vendor = self
                                .dict
                                .vendor(v)
                                .ok_or_else(|| format!("unknown flag or vendor {v}"))?
                                .id;
                        }
                    },
                }
            }
        }
        let d = &mut *self.dict;
        let key = name.to_ascii_lowercase();
        if let Some(&i) = d.by_name.get(&key) {
            let old = &d.attrs[i];
            if old.vendor != def.vendor || old.oid != def.oid {
                return Err(format!(
                    "duplicate attribute name {name} with another number"
                ));
            }
            // Same attribute again: the newer definition wins, values are kept.
            def.values = std::mem::take(&mut d.attrs[i].values);
            d.attrs[i] = def;
            return Ok(());
        }
        let idx = d.attrs.len();
        d.by_oid.insert((def.vendor, def.oid.clone()), idx);
        d.attrs.push(def);
        d.by_name.insert(key, idx);
        Ok(())
    }

    fn finish(self) -> Result<(), Error> {
        for (file, line, attr, name, number) in self.pending_values {
            let Some(&i) = self.dict.by_name.get(&attr.to_ascii_lowercase()) else {
                return Err(Error {
                    file,
                    line,
                    message: format!("VALUE {name} for unknown attribute {attr}"),
                });
            };
            self.dict.attrs[i].values.push((name, number));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

//! tshark as the wire-format referee (ARCHITECTURE.md §7, layer 5).
//!
//! Include it from an integration test file with
//!
//! ```ignore
//! #[path = "support/referee.rs"]
//! mod referee;
//! ```
//!
//! (a path module rather than `tests/support/mod.rs`, so every test file takes only this
//! file and cargo does not build `support` as a test of its own).
//!
//! Use: build complete Ethernet frames (`xlns_dataplane::wire::frame::UdpFrameRepr::emit`
//! around the L2TP message), then
//!
//! ```ignore
//! let Some(dissections) = referee::dissect(&[frame_a, frame_b]) else { return };
//! referee::assert_clean(&dissections[0]);
//! assert_eq!(dissections[0].field("l2tp.tunnel"), Some("1"));
//! assert_eq!(dissections[0].fields("l2tp.avp.type"), ["0", "2", "7"]);
//! ```
//!
//! [`dissect`] writes the frames into a pcap file (link type Ethernet) in a fresh temporary
//! directory, runs `tshark -n -r FILE -T json --no-duplicate-keys` with the IPv4 and UDP
//! checksum checks switched on (`-o ip.check_checksum:TRUE -o udp.check_checksum:TRUE`, so
//! a bad checksum is an expert error), and returns one [`Dissection`] per frame, in order.
//! UDP port 1701 decodes as L2TP by default. [`dissect_with`] passes extra tshark
//! arguments (for example `["-o", "l2tp.shared_secret:secret"]`).
//!
//! tshark is mandatory: when it cannot be started the harness panics with a message
//! saying so, unless `XLNS_SKIP_TSHARK=1` is set, in which case [`dissect`] prints a note
//! and returns `None` (the test then returns early). If tshark is present it always runs,
//! whatever `XLNS_SKIP_TSHARK` says. `XLNS_TSHARK` may name the tshark binary.
//!
//! Values are tshark's JSON strings: integers in decimal (`"1701"`), fields shown in hex
//! as `"0xc021"`, booleans/flags as `"1"`/`"0"`, addresses as tshark prints them
//! (`"02:00:00:00:00:01"`, `"192.0.2.1"`, `"2001:db8::1"`), byte strings as
//! `"c8:02:00:0c"`. Find a field's format by printing [`Dissection::layers`] once.
//!
//! Field names (tshark 4.0, `tshark -G fields`), the ones our messages use:
//!
//! * Ethernet / VLAN: `eth.dst`, `eth.src`, `eth.type`; 802.1Q (and TPID 0x9100) layer
//!   `vlan`: `vlan.id`, `vlan.priority`, `vlan.dei`, `vlan.etype`; 802.1ad (TPID 0x88A8)
//!   layer `ieee8021ad`: `ieee8021ad.id`, `ieee8021ad.priority`, `ieee8021ad.dei`.
//! * IPv4: `ip.src`, `ip.dst`, `ip.len`, `ip.ttl`, `ip.proto`, `ip.checksum`,
//!   `ip.checksum.status` (1 good, 0 bad, 2 unverified). IPv6: `ipv6.src`, `ipv6.dst`,
//!   `ipv6.plen`, `ipv6.nxt`, `ipv6.hlim`.
//! * UDP: `udp.srcport`, `udp.dstport`, `udp.length`, `udp.checksum`, `udp.checksum.status`.
//! * L2TP header: `l2tp.flags`, `l2tp.type`, `l2tp.length_bit`, `l2tp.seq_bit`,
//!   `l2tp.offset_bit`, `l2tp.priority`, `l2tp.version`, `l2tp.length`, `l2tp.tunnel`,
//!   `l2tp.session`, `l2tp.Ns`, `l2tp.Nr`, `l2tp.offset`, `l2tp.offset_padding`,
//!   `l2tp.zero_length_body_message` (present on a ZLB).
//! * L2TP AVPs (one subtree per AVP, labelled e.g. "Host Name AVP"):
//!   `l2tp.avp.mandatory`, `l2tp.avp.hidden`, `l2tp.avp.length`, `l2tp.avp.vendor_id`,
//!   `l2tp.avp.type`, `l2tp.avp.message_type`, `l2tp.result_code`, `l2tp.avp.error_code`,
//!   `l2tp.avp.error_message`, `l2tp.avp.protocol_version`, `l2tp.avp.protocol_revision`,
//!   `l2tp.avp.async_framing_supported`, `l2tp.avp.sync_framing_supported`,
//!   `l2tp.avp.analog_access_supported`, `l2tp.avp.digital_access_supported`,
//!   `l2tp.tie_breaker`, `l2tp.avp.firmware_revision`, `l2tp.avp.host_name`,
//!   `l2tp.avp.vendor_name`, `l2tp.avp.assigned_tunnel_id`,
//!   `l2tp.avp.receive_window_size`, `l2tp.avp.chap_challenge`,
//!   `l2tp.avp.chap_challenge_response`, `l2tp.avp.cause_code`, `l2tp.avp.cause_msg`,
//!   `l2tp.avp.assigned_session_id`, `l2tp.avp.call_serial_number`, `l2tp.avp.minimum_bps`,
//!   `l2tp.avp.maximum_bps`, `l2tp.avp.analog_bearer_type`, `l2tp.avp.digital_bearer_type`,
//!   `l2tp.avp.async_framing_type`, `l2tp.avp.sync_framing_type`,
//!   `l2tp.avp.called_number`, `l2tp.avp.calling_number`, `l2tp.avp.sub_address`,
//!   `l2tp.avp.connect_speed`, `l2tp.avp.rx_connect_speed`, `l2tp.avp.physical_channel`,
//!   `l2tp.avp.private_group_id`, `l2tp.avp.random_vector`,
//!   `l2tp.avp.initial_received_lcp_confreq`, `l2tp.avp.last_sent_lcp_confreq`,
//!   `l2tp.avp.last_received_lcp_confreq`, `l2tp.avp.proxy_authen_type`,
//!   `l2tp.avp.proxy_authen_name`, `l2tp.avp.proxy_authen_challenge`,
//!   `l2tp.avp.proxy_authen_id`, `l2tp.avp.proxy_authen_response`,
//!   `l2tp.avp.crc_errors`, `l2tp.avp.framing_errors`, `l2tp.avp.hardware_overruns`,
//!   `l2tp.avp.buffer_overruns`, `l2tp.avp.time_out_errors`, `l2tp.avp.alignment_errors`,
//!   `l2tp.avp.send_accm`, `l2tp.avp.receive_accm`, `l2tp.avp.disconnect_code`
//!   (Q.931 / PPP disconnect cause, RFC 3145), `l2tp.avp.control_protocol_number`,
//!   `l2tp.avp.cause_code_direction`, `l2tp.avp.cause_code_message`,
//!   `l2tp.avp_length.bad`, `l2tp.vendor_specific_avp_data`.
//! * PPP (layer `ppp`): `ppp.address`, `ppp.control`, `ppp.protocol` (`"0xc021"`).
//!   The LCP/IPCP/IPv6CP/CCP code, identifier and length are `ppp.code`,
//!   `ppp.identifier`, `ppp.length` inside the layers `lcp`, `ipcp`, `ipv6cp`: use
//!   [`Dissection::field_in`] with the layer name to tell them apart.
//! * LCP (layer `lcp`): `lcp.magic_number` (Echo/Discard/Identification),
//!   `lcp.message`, `lcp.rej_proto`, `lcp.secs_remaining`, `lcp.data`; options
//!   `lcp.opt.type`, `lcp.opt.length`, `lcp.opt.mru`, `lcp.opt.asyncmap`,
//!   `lcp.opt.auth_protocol`, `lcp.opt.algorithm` (CHAP: 5 MD5, 0x81 MS-CHAPv2),
//!   `lcp.opt.quality_protocol`, `lcp.opt.magic_number`, `lcp.opt.mrru`,
//!   `lcp.opt.ep_disc_class`, `lcp.opt.data`.
//! * IPCP (layer `ipcp`): `ipcp.opt.type`, `ipcp.opt.length`, `ipcp.opt.ip_address`,
//!   `ipcp.opt.pri_dns_address`, `ipcp.opt.sec_dns_address`, `ipcp.opt.pri_nbns_address`,
//!   `ipcp.opt.sec_nbns_address`, `ipcp.opt.compress_proto`, `ipcp.data`.
//! * IPv6CP (layer `ipv6cp`): `ipv6cp.opt.type`, `ipv6cp.opt.length`,
//!   `ipv6cp.interface_identifier`.
//! * PAP (layer `pap`): `pap.code`, `pap.identifier`, `pap.length`,
//!   `pap.peer_id.length`, `pap.peer_id`, `pap.password.length`, `pap.password`,
//!   `pap.message.length`, `pap.message`.
//! * CHAP (layer `chap`, also MS-CHAPv2): `chap.code`, `chap.identifier`, `chap.length`,
//!   `chap.value_size`, `chap.value`, `chap.name`, `chap.message`.
//! * Expert info: objects `_ws.expert` with `_ws.expert.message`, `_ws.expert.severity`,
//!   `_ws.expert.group` and the expert field's own name (for example
//!   `ip.bogus_ip_length`); a dissector exception adds the layer `_ws.malformed`.

#![allow(dead_code, clippy::panic, clippy::unwrap_used)]

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use serde_json::Value;

/// Set to `1` to let the tests pass without tshark installed.
pub const SKIP_ENV: &str = "XLNS_SKIP_TSHARK";
/// Names the tshark binary (default `tshark`, searched in `PATH`).
pub const TSHARK_ENV: &str = "XLNS_TSHARK";

/// Expert info severity (epan/proto.h, `PI_COMMENT` .. `PI_ERROR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Comment,
    Chat,
    Note,
    Warning,
    Error,
}

impl Severity {
    fn from_wire(value: u32) -> Severity {
        match value {
            0x0080_0000.. => Severity::Error,
            0x0060_0000.. => Severity::Warning,
            0x0040_0000.. => Severity::Note,
            0x0020_0000.. => Severity::Chat,
            _ => Severity::Comment,
        }
    }
}

/// One expert info item tshark attached to a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpertInfo {
    /// The top-level layer it was found in (`ip`, `l2tp`, `_ws.malformed`, ...).
    pub layer: String,
    /// The expert field's name (`ip.bogus_ip_length`, `_ws.malformed.expert`, ...).
    pub name: String,
    pub severity: Severity,
    pub message: String,
}

impl fmt::Display for ExpertInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{:?}] {} ({} in layer {})",
            self.severity, self.message, self.name, self.layer
        )
    }
}

/// tshark's dissection of one frame.
#[derive(Debug, Clone)]
pub struct Dissection {
    /// Index of the frame in the list given to [`dissect`] (0-based).
    pub index: usize,
    /// `frame.protocols`, split: `["eth", "ethertype", "ip", "udp", "l2tp", ...]`.
    pub protocols: Vec<String>,
    /// The `_source.layers` object, in tshark's order (for subtree walks, see
    /// [`Dissection::subtrees`]).
    pub layers: Value,
    /// Every expert info item, in tree order.
    pub expert: Vec<ExpertInfo>,
    /// tshark reported a malformed or short packet (`_ws.malformed`, `_ws.short`).
    pub malformed: bool,
    /// Every (layer, field, value) in tree order.
    fields: Vec<(String, String, String)>,
}

impl Dissection {
    /// The first value of field `name`, anywhere in the frame.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields(name).into_iter().next()
    }

    /// Every value of field `name`, in tree order (for example one per AVP).
    pub fn fields(&self, name: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(_, field, _)| field == name)
            .map(|(_, _, value)| value.as_str())
            .collect()
    }

    /// The first value of field `name` within the top-level layer `layer` (for example
    /// `field_in("ipcp", "ppp.code")`).
    pub fn field_in(&self, layer: &str, name: &str) -> Option<&str> {
        self.fields_in(layer, name).into_iter().next()
    }

    /// Every value of field `name` within the top-level layer `layer`.
    pub fn fields_in(&self, layer: &str, name: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(l, field, _)| l == layer && field == name)
            .map(|(_, _, value)| value.as_str())
            .collect()
    }

    /// Whether tshark shows field `name` at all.
    pub fn has_field(&self, name: &str) -> bool {
        self.fields.iter().any(|(_, field, _)| field == name)
    }

    /// The top-level layer `name` (the first, if the protocol occurs several times).
    pub fn layer(&self, name: &str) -> Option<&Value> {
        match self.layers.get(name)? {
            Value::Array(items) => items.first(),
            other => Some(other),
        }
    }

    /// Every subtree labelled `label` (for example `"Host Name AVP"`), in tree order.
    pub fn subtrees(&self, label: &str) -> Vec<&Value> {
        let mut found = Vec::new();
        collect_subtrees(&self.layers, label, &mut found);
        found
    }

    /// The expert items of severity Warning or Error, and whether tshark called the
    /// frame malformed; `Ok` when there are none.
    pub fn check(&self) -> Result<(), String> {
        let problems: Vec<String> = self
            .expert
            .iter()
            .filter(|item| item.severity >= Severity::Warning)
            .map(ToString::to_string)
            .collect();
        if problems.is_empty() && !self.malformed {
            return Ok(());
        }
        let mut report = format!(
            "tshark flagged frame {} ({}){}:",
            self.index,
            self.protocols.join(":"),
            if self.malformed { " as malformed" } else { "" }
        );
        for problem in problems {
            report.push_str("\n  ");
            report.push_str(&problem);
        }
        Err(report)
    }
}

fn collect_subtrees<'a>(value: &'a Value, label: &str, found: &mut Vec<&'a Value>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if key == label {
                    match child {
                        Value::Array(items) => found.extend(items.iter()),
                        other => found.push(other),
                    }
                }
                collect_subtrees(child, label, found);
            }
        }
        Value::Array(items) => {
            for item in items {
                collect_subtrees(item, label, found);
            }
        }
        _ => {}
    }
}

/// `Err` naming the frame and its expert messages if tshark found the frame malformed or
/// raised an expert warning or error.
pub fn check_clean(dissection: &Dissection) -> Result<(), String> {
    dissection.check()
}

/// Panics naming the frame index and the expert messages if tshark found the frame
/// malformed or raised an expert warning or error.
#[track_caller]
pub fn assert_clean(dissection: &Dissection) {
    if let Err(report) = dissection.check() {
        panic!("{report}");
    }
}

/// [`assert_clean`] for every frame, reporting all problems at once.
#[track_caller]
pub fn assert_all_clean(dissections: &[Dissection]) {
    let reports: Vec<String> = dissections.iter().filter_map(|d| d.check().err()).collect();
    if !reports.is_empty() {
        panic!("{}", reports.join("\n"));
    }
}

/// Dissect `frames` (complete Ethernet frames) with tshark; one [`Dissection`] per frame,
/// in order. `None` only when tshark is missing and `XLNS_SKIP_TSHARK=1`.
#[track_caller]
pub fn dissect<F: AsRef<[u8]>>(frames: &[F]) -> Option<Vec<Dissection>> {
    dissect_with(frames, &[])
}

/// [`dissect`] with extra tshark arguments (for example `["-o", "l2tp.shared_secret:s"]`).
#[track_caller]
pub fn dissect_with<F: AsRef<[u8]>>(frames: &[F], extra_args: &[&str]) -> Option<Vec<Dissection>> {
    let tshark = std::env::var(TSHARK_ENV).unwrap_or_else(|_| "tshark".to_owned());
    if let Err(error) = Command::new(&tshark).arg("-v").output() {
        if std::env::var(SKIP_ENV).as_deref() == Ok("1") {
            eprintln!(
                "NOTE: tshark referee SKIPPED: cannot run `{tshark}` ({error}) and {SKIP_ENV}=1"
            );
            return None;
        }
        panic!(
            "the tshark referee cannot run `{tshark}` ({error}). Install tshark (Debian: \
             apt-get install tshark) or point {TSHARK_ENV} at it; set {SKIP_ENV}=1 only to \
             skip the wire-format checks on purpose."
        );
    }

    let dir = TempDir::new();
    let capture = dir.path().join("frames.pcap");
    write_pcap(&capture, frames);
    let output = Command::new(&tshark)
        .arg("-n")
        .arg("-r")
        .arg(&capture)
        .args(["-T", "json", "--no-duplicate-keys"])
        .args([
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
        ])
        .args(extra_args)
        .output()
        .unwrap_or_else(|error| panic!("running `{tshark}`: {error}"));
    if !output.status.success() {
        panic!(
            "`{tshark}` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let json: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("tshark's JSON does not parse: {error}"));
    let Value::Array(packets) = json else {
        panic!("tshark's JSON is not an array of packets");
    };
    assert_eq!(
        packets.len(),
        frames.len(),
        "tshark returned {} packets for {} frames",
        packets.len(),
        frames.len()
    );
    Some(
        packets
            .into_iter()
            .enumerate()
            .map(|(index, packet)| to_dissection(index, packet))
            .collect(),
    )
}

fn write_pcap<F: AsRef<[u8]>>(path: &Path, frames: &[F]) {
    let file = std::fs::File::create(path)
        .unwrap_or_else(|error| panic!("creating {}: {error}", path.display()));
    let header = PcapHeader {
        snaplen: 262_144,
        ..PcapHeader::default()
    };
    let mut writer = PcapWriter::with_header(file, header).unwrap();
    for (index, frame) in frames.iter().enumerate() {
        let data = frame.as_ref();
        let timestamp = Duration::from_millis(index as u64);
        let packet = PcapPacket::new(timestamp, data.len() as u32, data);
        writer.write_packet(&packet).unwrap();
    }
}

fn to_dissection(index: usize, mut packet: Value) -> Dissection {
    let layers = packet
        .pointer_mut("/_source/layers")
        .map(Value::take)
        .unwrap_or_else(|| panic!("tshark packet {index} has no _source.layers"));
    let mut fields = Vec::new();
    let mut expert = Vec::new();
    let mut malformed = false;
    if let Value::Object(map) = &layers {
        for (layer, value) in map {
            if layer.starts_with("_ws.malformed") || layer.starts_with("_ws.short") {
                malformed = true;
            }
            walk(layer, value, &mut fields, &mut expert);
        }
    }
    let protocols = fields
        .iter()
        .find(|(_, field, _)| field == "frame.protocols")
        .map(|(_, _, value)| value.split(':').map(str::to_owned).collect())
        .unwrap_or_default();
    Dissection {
        index,
        protocols,
        layers,
        expert,
        malformed,
        fields,
    }
}

fn walk(
    layer: &str,
    value: &Value,
    fields: &mut Vec<(String, String, String)>,
    expert: &mut Vec<ExpertInfo>,
) {
    let Value::Object(map) = value else {
        if let Value::Array(items) = value {
            for item in items {
                walk(layer, item, fields, expert);
            }
        }
        return;
    };
    for (key, child) in map {
        if key == "_ws.expert" {
            for item in as_items(child) {
                expert.push(expert_info(layer, item));
            }
        }
        match child {
            Value::String(text) => fields.push((layer.to_owned(), key.clone(), text.clone())),
            Value::Array(items) => {
                for item in items {
                    match item {
                        Value::String(text) => {
                            fields.push((layer.to_owned(), key.clone(), text.clone()))
                        }
                        other => walk(layer, other, fields, expert),
                    }
                }
            }
            Value::Object(_) => walk(layer, child, fields, expert),
            _ => {}
        }
    }
}

fn as_items(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    }
}

fn expert_info(layer: &str, item: &Value) -> ExpertInfo {
    let text = |key: &str| item.get(key).and_then(Value::as_str).unwrap_or("");
    let name = item
        .as_object()
        .and_then(|map| map.keys().find(|key| !key.starts_with("_ws.expert.")))
        .cloned()
        .unwrap_or_default();
    ExpertInfo {
        layer: layer.to_owned(),
        name,
        severity: Severity::from_wire(text("_ws.expert.severity").parse().unwrap_or(u32::MAX)),
        message: text("_ws.expert.message").to_owned(),
    }
}

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "xlns-referee-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|error| panic!("creating {}: {error}", path.display()));
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

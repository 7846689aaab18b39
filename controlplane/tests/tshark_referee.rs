//! tshark as referee for what we put on the wire: every frame here is built by
//! `xlns_dataplane::wire::frame` / `wire::ethernet`, dissected by tshark, and must come
//! out clean (no malformed packet, no expert warning or error) with tshark's decoded
//! fields equal to ours. The harness lives in `support/referee.rs`; this file grows one
//! test per L2TP control message and PPP packet.

#![allow(clippy::unwrap_used, clippy::panic)]

#[path = "support/referee.rs"]
mod referee;

use xlns_dataplane::wire::ethernet::{self, EthernetProtocol, Tpid, VlanTag, Vlans};
use xlns_dataplane::wire::frame::{self, Checksums, IpAddrs, UdpFrameRepr};
use xlns_dataplane::wire::{EthernetAddress, Ipv4Address, Ipv6Address};

const LNS_MAC: EthernetAddress = EthernetAddress([0x02, 0x00, 0x5e, 0x00, 0x00, 0x01]);
const LAC_MAC: EthernetAddress = EthernetAddress([0x02, 0x00, 0x5e, 0x00, 0x00, 0x02]);

fn mac(addr: EthernetAddress) -> String {
    let b = addr.0;
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[0], b[1], b[2], b[3], b[4], b[5]
    )
}

fn v4() -> IpAddrs {
    IpAddrs::V4 {
        src: Ipv4Address::new(192, 0, 2, 1),
        dst: Ipv4Address::new(198, 51, 100, 7),
    }
}

fn v6() -> IpAddrs {
    IpAddrs::V6 {
        src: Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
        dst: Ipv6Address::new(0x2001, 0xdb8, 0xa, 0, 0, 0, 0xbeef, 2),
    }
}

fn repr(vlans: Vlans, ip: IpAddrs, src_port: u16) -> UdpFrameRepr {
    UdpFrameRepr {
        dst_mac: LNS_MAC,
        src_mac: LAC_MAC,
        vlans,
        ip,
        hop_limit: 63,
        src_port,
        dst_port: 1701,
    }
}

/// L2TP ZLB control message (RFC 2661 §5.8): T, L, S set, version 2, length 12.
fn zlb(tunnel: u16, session: u16, ns: u16, nr: u16) -> Vec<u8> {
    let mut bytes = vec![0xc8, 0x02, 0x00, 0x0c];
    for value in [tunnel, session, ns, nr] {
        bytes.extend_from_slice(&value.to_be_bytes());
    }
    bytes
}

/// L2TP data message with the L bit (RFC 2661 §3.1) carrying PPP (address/control
/// present) LCP Echo-Request (RFC 1661 §5.8).
fn data_lcp_echo_request(tunnel: u16, session: u16, id: u8, magic: u32) -> Vec<u8> {
    let mut ppp = vec![0xff, 0x03, 0xc0, 0x21, 0x09, id, 0x00, 0x08];
    ppp.extend_from_slice(&magic.to_be_bytes());
    let length = (8 + ppp.len()) as u16;
    let mut bytes = vec![0x40, 0x02];
    bytes.extend_from_slice(&length.to_be_bytes());
    bytes.extend_from_slice(&tunnel.to_be_bytes());
    bytes.extend_from_slice(&session.to_be_bytes());
    bytes.extend_from_slice(&ppp);
    bytes
}

fn build(repr: &UdpFrameRepr, payload: &[u8]) -> Vec<u8> {
    let mut buffer = vec![0u8; repr.buffer_len(payload.len())];
    let len = repr.emit(payload, &mut buffer).unwrap();
    assert_eq!(len, buffer.len());
    buffer
}

/// What a frame carries at L2TP level, to check tshark's reading of it.
#[derive(Debug, Clone, Copy)]
enum L2tp {
    Zlb {
        tunnel: u16,
        session: u16,
        ns: u16,
        nr: u16,
    },
    LcpEcho {
        tunnel: u16,
        session: u16,
        id: u8,
        magic: u32,
    },
}

impl L2tp {
    fn bytes(self) -> Vec<u8> {
        match self {
            L2tp::Zlb {
                tunnel,
                session,
                ns,
                nr,
            } => zlb(tunnel, session, ns, nr),
            L2tp::LcpEcho {
                tunnel,
                session,
                id,
                magic,
            } => data_lcp_echo_request(tunnel, session, id, magic),
        }
    }
}

fn cases() -> Vec<(UdpFrameRepr, L2tp)> {
    let dot1q = |vid| Vlans::Single(VlanTag::new(Tpid::Dot1Q, vid));
    let qinq = |outer, svid, cvid| {
        Vlans::Double([
            VlanTag {
                tpid: outer,
                pcp: 5,
                dei: true,
                vid: svid,
            },
            VlanTag {
                tpid: Tpid::Dot1Q,
                pcp: 2,
                dei: false,
                vid: cvid,
            },
        ])
    };
    let zlb = L2tp::Zlb {
        tunnel: 0x1234,
        session: 0,
        ns: 7,
        nr: 65535,
    };
    let echo = L2tp::LcpEcho {
        tunnel: 40000,
        session: 513,
        id: 0x2a,
        magic: 0xdead_beef,
    };
    vec![
        (repr(Vlans::Untagged, v4(), 1701), zlb),
        (repr(Vlans::Untagged, v6(), 50000), echo),
        (repr(dot1q(100), v4(), 1701), echo),
        (repr(dot1q(4094), v6(), 1701), zlb),
        (repr(qinq(Tpid::Dot1Ad, 200, 300), v4(), 1701), echo),
        (repr(qinq(Tpid::Dot1Ad, 1, 4000), v6(), 1701), zlb),
        (repr(qinq(Tpid::QinQ9100, 10, 20), v6(), 1701), echo),
        (repr(qinq(Tpid::QinQ9100, 11, 21), v4(), 1701), zlb),
    ]
}

/// tshark's 802.1ad dissector reads TPID 0x88A8; TPIDs 0x8100 and 0x9100 go to `vlan`.
fn vlan_layer(tpid: Tpid) -> &'static str {
    match tpid {
        Tpid::Dot1Ad => "ieee8021ad",
        Tpid::Dot1Q | Tpid::QinQ9100 => "vlan",
    }
}

#[test]
fn frames_we_build_are_clean_and_read_as_we_meant() {
    let cases = cases();
    let frames: Vec<Vec<u8>> = cases
        .iter()
        .map(|(repr, l2tp)| build(repr, &l2tp.bytes()))
        .collect();
    let Some(dissections) = referee::dissect(&frames) else {
        return;
    };
    referee::assert_all_clean(&dissections);

    for ((repr, l2tp), (bytes, d)) in cases.iter().zip(frames.iter().zip(&dissections)) {
        let at = format!("frame {} ({repr:?}, {l2tp:?})", d.index);
        // Our own parser reads back what we built ...
        let ours = frame::parse(bytes, Checksums::Verify).unwrap();
        assert_eq!(&ours.repr, repr, "{at}");
        assert_eq!(ours.payload, &l2tp.bytes()[..], "{at}");
        let eth =
            ethernet::Repr::parse(&ethernet::Packet::new_checked(&bytes[..]).unwrap()).unwrap();
        assert_eq!(eth.vlans, repr.vlans, "{at}");

        // ... and tshark reads the same.
        assert_eq!(
            d.field("eth.dst"),
            Some(mac(ours.repr.dst_mac).as_str()),
            "{at}"
        );
        assert_eq!(
            d.field("eth.src"),
            Some(mac(ours.repr.src_mac).as_str()),
            "{at}"
        );
        for layer in ["vlan", "ieee8021ad"] {
            let tags: Vec<VlanTag> = ours
                .repr
                .vlans
                .as_slice()
                .iter()
                .copied()
                .filter(|tag| vlan_layer(tag.tpid) == layer)
                .collect();
            let want = |f: fn(&VlanTag) -> String| tags.iter().map(f).collect::<Vec<_>>();
            assert_eq!(
                d.fields_in(layer, &format!("{layer}.id")),
                want(|t| t.vid.to_string()),
                "{at}"
            );
            assert_eq!(
                d.fields_in(layer, &format!("{layer}.priority")),
                want(|t| t.pcp.to_string()),
                "{at}"
            );
            assert_eq!(
                d.fields_in(layer, &format!("{layer}.dei")),
                want(|t| u8::from(t.dei).to_string()),
                "{at}"
            );
        }
        let ethertype = match ours.repr.ip {
            IpAddrs::V4 { .. } => EthernetProtocol::Ipv4,
            IpAddrs::V6 { .. } => EthernetProtocol::Ipv6,
        };
        assert_eq!(eth.ethertype, ethertype, "{at}");

        match ours.repr.ip {
            IpAddrs::V4 { src, dst } => {
                assert_eq!(d.field("ip.src"), Some(src.to_string().as_str()), "{at}");
                assert_eq!(d.field("ip.dst"), Some(dst.to_string().as_str()), "{at}");
                assert_eq!(d.field("ip.ttl"), Some(repr.hop_limit.to_string().as_str()));
                assert_eq!(d.field("ip.proto"), Some("17"), "{at}");
                assert_eq!(d.field("ip.hdr_len"), Some("20"), "{at}");
                // 1 = good: the referee runs with ip.check_checksum on.
                assert_eq!(d.field("ip.checksum.status"), Some("1"), "{at}");
            }
            IpAddrs::V6 { src, dst } => {
                assert_eq!(d.field("ipv6.src"), Some(src.to_string().as_str()), "{at}");
                assert_eq!(d.field("ipv6.dst"), Some(dst.to_string().as_str()), "{at}");
                assert_eq!(
                    d.field("ipv6.hlim"),
                    Some(repr.hop_limit.to_string().as_str())
                );
                assert_eq!(d.field("ipv6.nxt"), Some("17"), "{at}");
            }
        }

        let udp_len = (8 + ours.payload.len()).to_string();
        assert_eq!(
            d.field("udp.srcport"),
            Some(ours.repr.src_port.to_string().as_str())
        );
        assert_eq!(
            d.field("udp.dstport"),
            Some(ours.repr.dst_port.to_string().as_str())
        );
        assert_eq!(d.field("udp.length"), Some(udp_len.as_str()), "{at}");
        assert_eq!(d.field("udp.checksum.status"), Some("1"), "{at}");

        assert!(
            d.protocols.iter().any(|p| p == "l2tp"),
            "{at}: {:?}",
            d.protocols
        );
        assert_eq!(d.field("l2tp.version"), Some("2"), "{at}");
        match *l2tp {
            L2tp::Zlb {
                tunnel,
                session,
                ns,
                nr,
            } => {
                assert_eq!(d.field("l2tp.type"), Some("1"), "{at}");
                assert_eq!(d.field("l2tp.length"), Some("12"), "{at}");
                assert_eq!(d.field("l2tp.tunnel"), Some(tunnel.to_string().as_str()));
                assert_eq!(d.field("l2tp.session"), Some(session.to_string().as_str()));
                assert_eq!(d.field("l2tp.Ns"), Some(ns.to_string().as_str()), "{at}");
                assert_eq!(d.field("l2tp.Nr"), Some(nr.to_string().as_str()), "{at}");
                assert!(d.has_field("l2tp.zero_length_body_message"), "{at}");
                assert!(!d.has_field("ppp.protocol"), "{at}");
            }
            L2tp::LcpEcho {
                tunnel,
                session,
                id,
                magic,
            } => {
                assert_eq!(d.field("l2tp.type"), Some("0"), "{at}");
                assert_eq!(d.field("l2tp.length"), Some("20"), "{at}");
                assert_eq!(d.field("l2tp.tunnel"), Some(tunnel.to_string().as_str()));
                assert_eq!(d.field("l2tp.session"), Some(session.to_string().as_str()));
                assert!(!d.has_field("l2tp.Ns"), "{at}");
                assert_eq!(d.field("ppp.address"), Some("0xff"), "{at}");
                assert_eq!(d.field("ppp.control"), Some("0x03"), "{at}");
                assert_eq!(d.field("ppp.protocol"), Some("0xc021"), "{at}");
                // RFC 1661 §5.8: Echo-Request is code 9.
                assert_eq!(d.field_in("lcp", "ppp.code"), Some("9"), "{at}");
                assert_eq!(
                    d.field_in("lcp", "ppp.identifier"),
                    Some(id.to_string().as_str()),
                    "{at}"
                );
                assert_eq!(d.field_in("lcp", "ppp.length"), Some("8"), "{at}");
                let magic = format!("{magic:#010x}");
                assert_eq!(d.field("lcp.magic_number"), Some(magic.as_str()), "{at}");
            }
        }
    }
}

/// A clean frame, then `bad`: the harness must pass the first and report the second,
/// naming frame 1 and `expected` in its report.
fn assert_referee_rejects(bad: Vec<u8>, expected: &str) {
    let (repr, l2tp) = cases()[0];
    let good = build(&repr, &l2tp.bytes());
    let Some(dissections) = referee::dissect(&[good, bad]) else {
        return;
    };
    assert_eq!(referee::check_clean(&dissections[0]), Ok(()));
    let report = referee::check_clean(&dissections[1]).unwrap_err();
    assert!(report.contains("frame 1"), "{report}");
    assert!(report.contains(expected), "{report}");
    let panicked = std::panic::catch_unwind(|| referee::assert_clean(&dissections[1]));
    let message = panicked.unwrap_err();
    let message = message
        .downcast_ref::<String>()
        .map(String::as_str)
        .unwrap_or_default();
    assert!(message.contains(expected), "{message}");
    assert!(
        std::panic::catch_unwind(|| referee::assert_all_clean(&dissections)).is_err(),
        "assert_all_clean passed a damaged frame"
    );
}

/// Rewrites the IPv4 total length of an untagged frame, with a valid header checksum.
fn set_ipv4_total_len(bytes: &mut [u8], total_len: u16) {
    bytes[16..18].copy_from_slice(&total_len.to_be_bytes());
    let mut ip = xlns_dataplane::wire::Ipv4Packet::new_unchecked(&mut bytes[14..]);
    ip.fill_checksum();
}

#[test]
fn referee_reports_a_bad_ipv4_length() {
    let (repr, l2tp) = cases()[0];
    let mut bad = build(&repr, &l2tp.bytes());
    set_ipv4_total_len(&mut bad, 80);
    assert_referee_rejects(bad, "IPv4 total length exceeds packet length");
}

#[test]
fn referee_reports_a_bad_udp_checksum() {
    let (repr, l2tp) = cases()[0];
    let mut bad = build(&repr, &l2tp.bytes());
    bad[40] ^= 0x55;
    assert_referee_rejects(bad, "Bad checksum");
}

#[test]
fn referee_reports_a_truncated_l2tp_message() {
    // L2TP length 20 on a 12-byte message (checksums correct): the dissector throws,
    // tshark says malformed.
    let (repr, _) = cases()[0];
    let mut message = zlb(1, 2, 3, 4);
    message[3] = 20;
    let bad = build(&repr, &message);
    assert_referee_rejects(bad.clone(), "Malformed Packet");
    let Some(dissections) = referee::dissect(&[bad]) else {
        return;
    };
    assert!(dissections[0].malformed);
    let report = referee::check_clean(&dissections[0]).unwrap_err();
    assert!(!report.contains("Bad checksum"), "{report}");
}

#[test]
fn expert_items_carry_layer_name_and_severity() {
    let (repr, l2tp) = cases()[0];
    let mut bad = build(&repr, &l2tp.bytes());
    set_ipv4_total_len(&mut bad, 80);
    let Some(dissections) = referee::dissect(&[bad]) else {
        return;
    };
    let d = &dissections[0];
    assert!(!d.malformed);
    let item = d
        .expert
        .iter()
        .find(|item| item.name == "ip.bogus_ip_length")
        .unwrap();
    assert_eq!(item.layer, "ip");
    assert_eq!(item.severity, referee::Severity::Error);
    assert!(item.message.contains("exceeds packet length"), "{item}");
}

/// Run by [`missing_tshark_fails_unless_skipped`] in a child process, with the
/// environment it chooses.
#[test]
#[ignore = "run by missing_tshark_fails_unless_skipped"]
fn child_dissects_one_frame() {
    let (repr, l2tp) = cases()[0];
    match referee::dissect(&[build(&repr, &l2tp.bytes())]) {
        Some(dissections) => referee::assert_all_clean(&dissections),
        None => println!("CHILD: referee returned None"),
    }
}

#[test]
fn missing_tshark_fails_unless_skipped() {
    let run = |skip: Option<&str>| {
        let mut command = std::process::Command::new(std::env::current_exe().unwrap());
        command
            .args([
                "--ignored",
                "--exact",
                "child_dissects_one_frame",
                "--nocapture",
            ])
            .env(referee::TSHARK_ENV, "/nonexistent/tshark")
            .env_remove(referee::SKIP_ENV);
        if let Some(value) = skip {
            command.env(referee::SKIP_ENV, value);
        }
        let output = command.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    };
    let (passed, text) = run(None);
    assert!(!passed, "passed without tshark:\n{text}");
    assert!(text.contains("cannot run `/nonexistent/tshark`"), "{text}");
    assert!(text.contains(referee::SKIP_ENV), "{text}");
    let (passed, text) = run(Some("0"));
    assert!(
        !passed,
        "passed without tshark with {}=0:\n{text}",
        referee::SKIP_ENV
    );
    let (passed, text) = run(Some("1"));
    assert!(passed, "{text}");
    assert!(text.contains("CHILD: referee returned None"), "{text}");
    assert!(text.contains("tshark referee SKIPPED"), "{text}");
}

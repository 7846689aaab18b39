//! BPF_PROG_TEST_RUN fixtures of the XDP program: (input frame, expected verdict, expected
//! counter), in the manner of aya's and Katran's program tests.
//!
//! How a redirect is asserted: in test-run mode the kernel runs the program and reports
//! its return value but does not carry out a redirect. `bpf_redirect_map(&xsks, queue,
//! XDP_PASS)` returns XDP_REDIRECT only when the XSKMAP slot holds a socket, and the
//! fallback XDP_PASS when it is empty. So every "to the data plane" fixture runs twice:
//! * with the slot empty: verdict XDP_PASS and the `pass-no-xsk-*` counter (the fallback
//!   that keeps traffic flowing when the data plane is down);
//! * with a real AF_XDP socket in the slot (bound, in copy mode, to the loopback device of
//!   a private network namespace; nobody reads it): verdict XDP_REDIRECT and the
//!   `redirect-*` counter.
//!
//! Every fixture also checks that exactly one counter moved, by exactly one: the program
//! counts each frame once, under the reason the fixture names.
//!
//! Needs root; see `support::bpf_tests_enabled` (XLNS_SKIP_BPF=1 skips, loudly).
#![allow(clippy::unwrap_used, clippy::panic)]

mod support;

use std::net::{Ipv4Addr, Ipv6Addr};

use support::frames::*;
use support::{Netns, TestXsk, bpf_tests_enabled};
use xlns_dataplane::wire::ethernet::{Tpid, VlanTag, Vlans};
use xlns_dataplane::wire::frame::IpAddrs;
use xlns_ebpf::{Counter, Error, Role, XdpAction, XdpConfig, XdpProgram};

fn load(role: Role) -> XdpProgram {
    XdpProgram::load(XdpConfig {
        role,
        ..XdpConfig::default()
    })
    .unwrap_or_else(|e| panic!("loading the XDP program ({role:?}): {e}"))
}

/// Run `frame` through `prog` and check the verdict and that `counter`, and only it,
/// moved by one.
#[track_caller]
fn expect(prog: &XdpProgram, case: &str, frame: &[u8], counter: Counter) {
    let before = prog.counters().unwrap();
    let action = prog
        .test_run(frame)
        .unwrap_or_else(|e| panic!("{case}: {e}"));
    let delta = prog.counters().unwrap().delta(&before);
    let verdict = match counter {
        Counter::RedirectData | Counter::RedirectCore => XdpAction::Redirect,
        _ => XdpAction::Pass,
    };
    let moved: Vec<_> = delta.iter().filter(|(_, v)| *v != 0).collect();
    assert_eq!(
        (action, moved.as_slice()),
        (verdict, [(counter, 1)].as_slice()),
        "{case}: frame {}",
        hex(frame)
    );
}

fn hex(frame: &[u8]) -> String {
    frame.iter().map(|b| format!("{b:02x}")).collect()
}

/// A private namespace with an AF_XDP socket bound to its loopback queue 0.
fn xsk() -> (Netns, TestXsk) {
    let ns = Netns::new();
    let xsk = ns
        .run_in(|| TestXsk::bind(1, 0))
        .unwrap_or_else(|e| panic!("binding a test AF_XDP socket to lo: {e}"));
    (ns, xsk)
}

/// Every L/S/O/P combination, with offset pads of 0 and 3 bytes when O is set.
fn header_variants() -> Vec<(u16, u16)> {
    let mut v = Vec::new();
    for bits in 0u16..16 {
        let flags = [L, S, O, P]
            .iter()
            .enumerate()
            .filter(|(i, _)| bits & (1 << i) != 0)
            .fold(0, |acc, (_, f)| acc | f);
        v.push((flags, 0));
        if flags & O != 0 {
            v.push((flags, 3));
        }
    }
    v
}

/// (name, PPP frame) for IPv4 and IPv6 in every framing: with/without ff 03, protocol
/// compressed or not (RFC 1661 §6.5, §6.6).
fn ppp_data_variants() -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    for (inner, proto, payload) in [
        ("IPv4", PPP_IPV4, inner_ipv4()),
        ("IPv6", PPP_IPV6, inner_ipv6()),
    ] {
        for ac in [true, false] {
            for pfc in [false, true] {
                v.push((
                    format!("{inner} ac={ac} pfc={pfc}"),
                    ppp(ac, pfc, proto, &payload),
                ));
            }
        }
    }
    v
}

/// Every access data fixture: header variants x PPP variants x outer IP x VLAN stacks,
/// plus IPv4 options and Ethernet padding.
fn data_fixtures() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (flags, pad) in header_variants() {
        for (ppp_name, ppp_frame) in ppp_data_variants() {
            for (vlan_name, vlans) in vlan_variants() {
                for (ip_name, ip) in [("v4", v4()), ("v6", v6())] {
                    let msg = l2tp(flags, pad, &ppp_frame);
                    out.push((
                        format!("flags={flags:#06x} pad={pad} {ppp_name} {vlan_name} {ip_name}"),
                        udp(vlans, ip, 1701, 1701, &msg),
                    ));
                }
            }
        }
    }
    let msg = l2tp(L | S, 0, &ppp(true, false, PPP_IPV4, &inner_ipv4()));
    // Router alert + NOPs: 8 bytes of options (IHL 7).
    let options = [0x94, 0x04, 0, 0, 1, 1, 1, 1];
    out.push((
        "IPv4 with options".into(),
        ipv4(
            Vlans::Untagged,
            LAC_V4,
            LNS_V4,
            17,
            &options,
            0x4000,
            &udp_segment(1701, 1701, &msg),
        ),
    ));
    let mut padded = l2tp_v4(&l2tp(0, 0, &ppp(false, true, PPP_IPV4, &[0x45])));
    padded.resize(60, 0);
    out.push(("Ethernet padding after the datagram".into(), padded));
    let msg = l2tp(0, 0, &ppp(true, false, PPP_IPV6, &inner_ipv6()));
    out.push((
        "LAC source port other than 1701".into(),
        udp(Vlans::Untagged, v4(), 40000, 1701, &msg),
    ));
    out
}

#[test]
fn access_l2tp_data_goes_to_the_data_plane_in_every_header_variant() {
    if !bpf_tests_enabled("access_l2tp_data_goes_to_the_data_plane_in_every_header_variant") {
        return;
    }
    let prog = load(Role::Access);
    let fixtures = data_fixtures();
    assert!(fixtures.len() > 1000, "{} fixtures", fixtures.len());
    for (case, frame) in &fixtures {
        expect(&prog, case, frame, Counter::PassNoXskData);
    }
    let (_ns, xsk) = xsk();
    prog.set_xsk(0, xsk.fd()).unwrap();
    for (case, frame) in &fixtures {
        expect(&prog, case, frame, Counter::RedirectData);
    }
    prog.clear_xsk(0).unwrap();
    // Clearing an empty slot is not an error.
    prog.clear_xsk(0).unwrap();
    let (case, frame) = &fixtures[0];
    expect(&prog, case, frame, Counter::PassNoXskData);
}

/// (case, frame, counter) for everything the access role hands to the kernel.
fn access_pass_fixtures() -> Vec<(String, Vec<u8>, Counter)> {
    use Counter::*;
    let mut out: Vec<(String, Vec<u8>, Counter)> = Vec::new();
    let mut add = |case: &str, frame: Vec<u8>, c: Counter| out.push((case.to_string(), frame, c));

    // L2TP control messages (T bit): SCCRQ, ZLB (no AVP), over IPv4/IPv6, tagged.
    add("SCCRQ", l2tp_v4(&l2tp_control(1)), PassControl);
    add("ZLB ack", l2tp_v4(&l2tp(T | L | S, 0, &[])), PassControl);
    add(
        "HELLO over IPv6 in QinQ",
        udp(vlan_variants()[2].1, v6(), 1701, 1701, &l2tp_control(6)),
        PassControl,
    );
    add(
        "control with O and P set (malformed control, still the kernel's)",
        l2tp_v4(&l2tp(T | L | S | O | P, 0, &[])),
        PassControl,
    );
    // PPP control protocols in data messages (RFC 1661 §2: 0x8000 and above).
    for (name, proto) in [
        ("LCP", 0xc021),
        ("PAP", 0xc023),
        ("CHAP", 0xc223),
        ("EAP", 0xc227),
        ("LQR", 0xc025),
        ("IPCP", 0x8021),
        ("IPv6CP", 0x8057),
        ("CCP", 0x80fd),
    ] {
        for ac in [true, false] {
            for flags in [0, L | S | O] {
                add(
                    &format!("{name} ac={ac} flags={flags:#x}"),
                    l2tp_v4(&l2tp(flags, 1, &ppp(ac, false, proto, &lcp_conf_req()))),
                    PassPppControl,
                );
            }
        }
    }
    // Other PPP network protocols.
    for (name, proto) in [
        ("VJ compressed", 0x2d),
        ("VJ uncompressed", 0x2f),
        ("MP", 0x3d),
        ("compressed datagram", 0xfd),
    ] {
        add(
            name,
            l2tp_v4(&l2tp(0, 0, &ppp(true, true, proto, &[1, 2]))),
            PassPppOther,
        );
        add(
            name,
            l2tp_v4(&l2tp(0, 0, &ppp(false, false, proto, &[1, 2]))),
            PassPppOther,
        );
    }
    // Other L2TP versions on the port.
    add(
        "L2TPv3 over UDP (RFC 3931 §4.1.2.1)",
        l2tp_v4(&l2tp_with_version(0, 3, 0, &[0, 0, 0, 1, 0x45])),
        PassL2tpVersion,
    );
    add(
        "L2TPv3 control",
        l2tp_v4(&l2tp_with_version(T | L | S, 3, 0, &[0; 8])),
        PassL2tpVersion,
    );
    add(
        "version 1 (L2F)",
        l2tp_v4(&l2tp_with_version(0, 1, 0, &[0; 8])),
        PassL2tpVersion,
    );
    // Fragments to the L2TP port: the kernel reassembles them.
    let data = l2tp(0, 0, &ppp(true, false, PPP_IPV4, &inner_ipv4()));
    add(
        "first IPv4 fragment (MF)",
        ipv4(
            Vlans::Untagged,
            LAC_V4,
            LNS_V4,
            17,
            &[],
            0x2000,
            &udp_segment(1701, 1701, &data),
        ),
        PassFragment,
    );
    let mut first = udp_segment(1701, 1701, &data);
    first[4..6].copy_from_slice(&1400u16.to_be_bytes()); // the whole datagram's length
    add(
        "first IPv4 fragment, UDP length of the whole datagram",
        ipv4(Vlans::Untagged, LAC_V4, LNS_V4, 17, &[], 0x2000, &first),
        PassFragment,
    );
    add(
        "first IPv4 fragment to another port",
        ipv4(
            Vlans::Untagged,
            LAC_V4,
            LNS_V4,
            17,
            &[],
            0x2000,
            &udp_segment(1701, 53, &data),
        ),
        PassOther,
    );
    add(
        "non-first IPv4 fragment (no UDP header)",
        ipv4(Vlans::Untagged, LAC_V4, LNS_V4, 17, &[], 0x0003, &data),
        PassOther,
    );
    add(
        "IPv6 fragment header",
        ipv6(
            Vlans::Untagged,
            LAC_V6,
            LNS_V6,
            44,
            &[17, 0, 0, 1, 0, 0, 0, 1],
        ),
        PassOther,
    );
    // Not L2TP.
    for (vname, vlans) in vlan_variants() {
        add(&format!("ARP {vname}"), arp_request(vlans), PassNonIp);
        for (t, name) in [
            (133, "RS"),
            (134, "RA"),
            (135, "NS"),
            (136, "NA"),
            (137, "redirect"),
        ] {
            add(
                &format!("ND {name} {vname}"),
                icmpv6(vlans, LNS_V6, t),
                PassNd,
            );
        }
    }
    add(
        "LLDP",
        raw_ethernet(Vlans::Untagged, 0x88cc, &[0; 46]),
        PassNonIp,
    );
    add(
        "802.3 length field",
        raw_ethernet(Vlans::Untagged, 0x0040, &[0; 64]),
        PassNonIp,
    );
    add(
        "three VLAN tags (deeper than parsed)",
        raw_ethernet(
            Vlans::Double([VlanTag::new(Tpid::Dot1Ad, 1), VlanTag::new(Tpid::Dot1Q, 2)]),
            0x8100,
            &[0, 3, 8, 0, 0x45],
        ),
        PassNonIp,
    );
    add(
        "ICMPv6 echo",
        icmpv6(Vlans::Untagged, LNS_V6, 128),
        PassOther,
    );
    add(
        "UDP to 1702",
        udp(Vlans::Untagged, v4(), 1701, 1702, &data),
        PassOther,
    );
    add(
        "UDP from 1701 to 53",
        udp(Vlans::Untagged, v6(), 1701, 53, &data),
        PassOther,
    );
    add(
        "TCP to 1701",
        ipv4(
            Vlans::Untagged,
            LAC_V4,
            LNS_V4,
            6,
            &[],
            0,
            &[
                0x06, 0xa5, 0x06, 0xa5, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 2, 0, 0, 0, 0, 0, 0,
            ],
        ),
        PassOther,
    );
    // Malformed headers.
    let mut bad = l2tp_v4(&data);
    bad[14] = 0x65; // IPv4 EtherType, version 6
    add("IPv4 EtherType with version 6", bad, PassMalformed);
    let mut bad = l2tp_v4(&data);
    bad[14] = 0x44; // IHL 4
    add("IPv4 IHL 4", bad, PassMalformed);
    let mut bad = l2tp_v4(&data);
    bad[16..18].copy_from_slice(&10u16.to_be_bytes());
    add("IPv4 total length below IHL", bad, PassMalformed);
    let mut bad = l2tp_v4(&data);
    bad[16..18].copy_from_slice(&2000u16.to_be_bytes());
    add("IPv4 total length beyond the frame", bad, PassMalformed);
    let mut bad = udp(Vlans::Untagged, v6(), 1701, 1701, &data);
    bad[14] = 0x40;
    add("IPv6 EtherType with version 4", bad, PassMalformed);
    let mut bad = udp(Vlans::Untagged, v6(), 1701, 1701, &data);
    bad[18..20].copy_from_slice(&2000u16.to_be_bytes());
    add("IPv6 payload length beyond the frame", bad, PassMalformed);
    let mut bad = l2tp_v4(&data);
    bad[38..40].copy_from_slice(&7u16.to_be_bytes());
    add("UDP length below 8", bad, PassMalformed);
    let mut bad = l2tp_v4(&data);
    bad[38..40].copy_from_slice(&1000u16.to_be_bytes());
    add("UDP length beyond the IP payload", bad, PassMalformed);
    let mut msg = l2tp(L, 0, &ppp(true, false, PPP_IPV4, &inner_ipv4()));
    msg[2..4].copy_from_slice(&5u16.to_be_bytes());
    add("L2TP Length below the header", l2tp_v4(&msg), PassMalformed);
    let mut msg = l2tp(L, 0, &ppp(true, false, PPP_IPV4, &inner_ipv4()));
    msg[2..4].copy_from_slice(&500u16.to_be_bytes());
    add(
        "L2TP Length beyond the UDP payload",
        l2tp_v4(&msg),
        PassMalformed,
    );
    let mut msg = l2tp(L, 0, &ppp(true, false, PPP_IPV4, &inner_ipv4()));
    msg[2..4].copy_from_slice(&9u16.to_be_bytes());
    add(
        "L2TP Length cutting the PPP protocol",
        l2tp_v4(&msg),
        PassMalformed,
    );
    let mut msg = l2tp(O, 0, &ppp(true, false, PPP_IPV4, &inner_ipv4()));
    msg[6..8].copy_from_slice(&400u16.to_be_bytes());
    add(
        "offset pad beyond the message",
        l2tp_v4(&msg),
        PassMalformed,
    );
    let mut msg = l2tp(O, 0, &ppp(true, false, PPP_IPV4, &inner_ipv4()));
    msg[6..8].copy_from_slice(&0xffffu16.to_be_bytes());
    add("offset pad 0xffff", l2tp_v4(&msg), PassMalformed);
    add("no PPP frame", l2tp_v4(&l2tp(S, 0, &[])), PassMalformed);
    add(
        "PPP ff 04",
        l2tp_v4(&l2tp(0, 0, &[0xff, 0x04, 0x00, 0x21])),
        PassMalformed,
    );
    add(
        "PPP ff 03 only",
        l2tp_v4(&l2tp(0, 0, &[0xff, 0x03])),
        PassMalformed,
    );
    add(
        "PPP one even byte",
        l2tp_v4(&l2tp(0, 0, &[0x00])),
        PassMalformed,
    );
    add(
        "PPP even protocol 0x0020",
        l2tp_v4(&l2tp(0, 0, &[0x00, 0x20, 0x45])),
        PassMalformed,
    );
    add("L2TP one byte", l2tp_v4(&[0x00]), PassMalformed);
    add(
        "L2TP data header cut (L S O)",
        l2tp_v4(&[0x4a, 0x02, 0, 20, 0, 1]),
        PassMalformed,
    );
    add(
        "UDP header cut",
        ipv4(
            Vlans::Untagged,
            LAC_V4,
            LNS_V4,
            17,
            &[],
            0,
            &[6, 0xa5, 6, 0xa5],
        ),
        PassMalformed,
    );
    out
}

#[test]
fn access_hands_everything_else_to_the_kernel_under_its_reason() {
    if !bpf_tests_enabled("access_hands_everything_else_to_the_kernel_under_its_reason") {
        return;
    }
    let prog = load(Role::Access);
    // With a socket registered, so that a wrong "redirect" would show as XDP_REDIRECT.
    let (_ns, xsk) = xsk();
    prog.set_xsk(0, xsk.fd()).unwrap();
    for (case, frame, counter) in access_pass_fixtures() {
        expect(&prog, &case, &frame, counter);
    }
}

#[test]
fn truncated_frames_pass_as_malformed_at_every_length() {
    if !bpf_tests_enabled("truncated_frames_pass_as_malformed_at_every_length") {
        return;
    }
    let prog = load(Role::OneArmed);
    let (_ns, xsk) = xsk();
    prog.set_xsk(0, xsk.fd()).unwrap();
    prog.add_subscriber_prefix_v4(Ipv4Addr::new(192, 0, 2, 0), 24)
        .unwrap();
    let data = ppp(true, false, PPP_IPV4, &inner_ipv4());
    let full = [
        (
            "data L S O",
            l2tp_v4(&l2tp(L | S | O, 2, &data)),
            Counter::RedirectData,
        ),
        (
            "data over IPv6 in QinQ",
            udp(vlan_variants()[3].1, v6(), 1701, 1701, &l2tp(L, 0, &data)),
            Counter::RedirectData,
        ),
        ("control", l2tp_v4(&l2tp_control(1)), Counter::PassControl),
        (
            "LCP",
            l2tp_v4(&l2tp(0, 0, &ppp(true, false, 0xc021, &lcp_conf_req()))),
            Counter::PassPppControl,
        ),
        (
            "to a subscriber (core rule)",
            udp(vlan_variants()[1].1, v4(), 1, 2, &[1, 2, 3, 4]),
            Counter::RedirectCore,
        ),
    ];
    for (name, frame, counter) in &full {
        // The whole frame gets its verdict: only the truncations below make it malformed.
        expect(&prog, name, frame, *counter);
        // BPF_PROG_TEST_RUN refuses frames shorter than an Ethernet header.
        for len in xlns_ebpf::TEST_RUN_MIN_FRAME..frame.len() {
            expect(
                &prog,
                &format!("{name} cut to {len} bytes"),
                &frame[..len],
                Counter::PassMalformed,
            );
        }
    }
    assert!(matches!(
        prog.test_run(&[0; 13]),
        Err(Error::TestFrame { len: 13, min: 14 })
    ));
}

#[test]
fn the_l2tp_port_is_configurable() {
    if !bpf_tests_enabled("the_l2tp_port_is_configurable") {
        return;
    }
    let prog = XdpProgram::load(XdpConfig {
        l2tp_port: 1702,
        ..XdpConfig::default()
    })
    .unwrap();
    assert_eq!(prog.config().l2tp_port, 1702);
    let msg = l2tp(0, 0, &ppp(true, false, PPP_IPV4, &inner_ipv4()));
    expect(
        &prog,
        "to 1702",
        &udp(Vlans::Untagged, v4(), 1701, 1702, &msg),
        Counter::PassNoXskData,
    );
    expect(
        &prog,
        "to 1701",
        &udp(Vlans::Untagged, v4(), 1701, 1701, &msg),
        Counter::PassOther,
    );
}

const SUB_V4: Ipv4Addr = Ipv4Addr::new(10, 20, 0, 0);
const SUB_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 0);
const CORE_V4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const CORE_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 7);

fn to_v4(vlans: Vlans, dst: Ipv4Addr) -> Vec<u8> {
    udp(
        vlans,
        IpAddrs::V4 { src: CORE_V4, dst },
        443,
        5000,
        &[0; 16],
    )
}

fn to_v6(vlans: Vlans, dst: Ipv6Addr) -> Vec<u8> {
    udp(
        vlans,
        IpAddrs::V6 { src: CORE_V6, dst },
        443,
        5000,
        &[0; 16],
    )
}

#[test]
fn core_redirects_destinations_in_subscriber_prefixes() {
    if !bpf_tests_enabled("core_redirects_destinations_in_subscriber_prefixes") {
        return;
    }
    let prog = load(Role::Core);
    prog.add_subscriber_prefix_v4(SUB_V4, 16).unwrap();
    prog.add_subscriber_prefix_v4(Ipv4Addr::new(10, 30, 0, 5), 32)
        .unwrap();
    // Host bits beyond the length are ignored: this is 2001:db8:100::/48.
    prog.add_subscriber_prefix_v6(Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 1), 48)
        .unwrap();
    let inside_v4 = [
        Ipv4Addr::new(10, 20, 0, 5),
        Ipv4Addr::new(10, 20, 255, 255),
        Ipv4Addr::new(10, 30, 0, 5),
    ];
    let outside_v4 = [
        Ipv4Addr::new(10, 21, 0, 5),
        Ipv4Addr::new(10, 30, 0, 6),
        LNS_V4,
    ];
    let inside_v6 = [
        Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0xffff, 0, 0, 0, 1),
        SUB_V6,
    ];
    let outside_v6 = [Ipv6Addr::new(0x2001, 0xdb8, 0x101, 0, 0, 0, 0, 1), LNS_V6];

    let (_ns, xsk) = xsk();
    for with_xsk in [false, true] {
        if with_xsk {
            prog.set_xsk(0, xsk.fd()).unwrap();
        }
        let hit = if with_xsk {
            Counter::RedirectCore
        } else {
            Counter::PassNoXskCore
        };
        for (vname, vlans) in vlan_variants() {
            for dst in inside_v4 {
                expect(&prog, &format!("{dst} {vname}"), &to_v4(vlans, dst), hit);
            }
            for dst in outside_v4 {
                expect(
                    &prog,
                    &format!("{dst} {vname}"),
                    &to_v4(vlans, dst),
                    Counter::PassOther,
                );
            }
            for dst in inside_v6 {
                expect(&prog, &format!("{dst} {vname}"), &to_v6(vlans, dst), hit);
            }
            for dst in outside_v6 {
                expect(
                    &prog,
                    &format!("{dst} {vname}"),
                    &to_v6(vlans, dst),
                    Counter::PassOther,
                );
            }
            // ND is the kernel's even for an address in a subscriber prefix.
            expect(
                &prog,
                "NS",
                &icmpv6(vlans, inside_v6[0], 135),
                Counter::PassNd,
            );
            expect(&prog, "ARP", &arp_request(vlans), Counter::PassNonIp);
        }
        let options = [1, 1, 1, 1];
        expect(
            &prog,
            "IPv4 with options to a subscriber",
            &ipv4(
                Vlans::Untagged,
                CORE_V4,
                inside_v4[0],
                1,
                &options,
                0,
                &[8, 0, 0, 0],
            ),
            hit,
        );
        expect(
            &prog,
            "IPv4 fragment to a subscriber",
            &ipv4(
                Vlans::Untagged,
                CORE_V4,
                inside_v4[0],
                17,
                &[],
                0x0010,
                &[0; 8],
            ),
            hit,
        );
        // The access rule is off: L2TP data to the LNS is just traffic to the kernel.
        let msg = l2tp(0, 0, &ppp(true, false, PPP_IPV4, &inner_ipv4()));
        expect(
            &prog,
            "L2TP data in core role",
            &l2tp_v4(&msg),
            Counter::PassOther,
        );
    }

    assert!(prog.remove_subscriber_prefix_v4(SUB_V4, 16).unwrap());
    assert!(!prog.remove_subscriber_prefix_v4(SUB_V4, 16).unwrap());
    expect(
        &prog,
        "after removal",
        &to_v4(Vlans::Untagged, inside_v4[0]),
        Counter::PassOther,
    );
    expect(
        &prog,
        "host route stays",
        &to_v4(Vlans::Untagged, inside_v4[2]),
        Counter::RedirectCore,
    );
    assert!(prog.remove_subscriber_prefix_v6(SUB_V6, 48).unwrap());
    expect(
        &prog,
        "v6 after removal",
        &to_v6(Vlans::Untagged, inside_v6[0]),
        Counter::PassOther,
    );
    // The /32 (kept in the hash of subscriber addresses, not the trie) goes as well.
    assert!(prog.remove_subscriber_prefix_v4(inside_v4[2], 32).unwrap());
    assert!(!prog.remove_subscriber_prefix_v4(inside_v4[2], 32).unwrap());
    expect(
        &prog,
        "host route after removal",
        &to_v4(Vlans::Untagged, inside_v4[2]),
        Counter::PassOther,
    );
}

#[test]
fn core_redirects_subscriber_addresses_and_prefixes_side_by_side() {
    if !bpf_tests_enabled("core_redirects_subscriber_addresses_and_prefixes_side_by_side") {
        return;
    }
    let prog = load(Role::Core);
    // No socket in the XSK map: a match shows as PassNoXskCore, a miss as PassOther.
    // Many addresses (hash) and one prefix (trie) that overlaps none of them.
    for i in 0..1000u32 {
        let a = Ipv4Addr::from(u32::from(Ipv4Addr::new(100, 64, 0, 0)) + i);
        prog.add_subscriber_prefix_v4(a, 32).unwrap();
    }
    prog.add_subscriber_prefix_v4(Ipv4Addr::new(198, 51, 100, 0), 24)
        .unwrap();
    for (what, addr, counter) in [
        (
            "first address",
            Ipv4Addr::new(100, 64, 0, 0),
            Counter::PassNoXskCore,
        ),
        (
            "last address",
            Ipv4Addr::new(100, 64, 3, 231),
            Counter::PassNoXskCore,
        ),
        (
            "one past the last",
            Ipv4Addr::new(100, 64, 3, 232),
            Counter::PassOther,
        ),
        (
            "in the prefix",
            Ipv4Addr::new(198, 51, 100, 77),
            Counter::PassNoXskCore,
        ),
        (
            "outside both",
            Ipv4Addr::new(198, 51, 101, 1),
            Counter::PassOther,
        ),
    ] {
        expect(&prog, what, &to_v4(Vlans::Untagged, addr), counter);
    }
    // An address added twice is one entry: one removal ends it.
    prog.add_subscriber_prefix_v4(Ipv4Addr::new(100, 64, 0, 7), 32)
        .unwrap();
    assert!(
        prog.remove_subscriber_prefix_v4(Ipv4Addr::new(100, 64, 0, 7), 32)
            .unwrap()
    );
    expect(
        &prog,
        "removed address",
        &to_v4(Vlans::Untagged, Ipv4Addr::new(100, 64, 0, 7)),
        Counter::PassOther,
    );
}

#[test]
fn one_armed_applies_the_access_rule_then_the_core_rule() {
    if !bpf_tests_enabled("one_armed_applies_the_access_rule_then_the_core_rule") {
        return;
    }
    let prog = load(Role::OneArmed);
    prog.add_subscriber_prefix_v4(SUB_V4, 16).unwrap();
    prog.add_subscriber_prefix_v6(SUB_V6, 48).unwrap();
    let (_ns, xsk) = xsk();
    prog.set_xsk(0, xsk.fd()).unwrap();
    let data = l2tp(L | S, 0, &ppp(false, true, PPP_IPV6, &inner_ipv6()));
    for (vname, vlans) in vlan_variants() {
        let case = |what: &str| format!("{what} {vname}");
        expect(
            &prog,
            &case("data"),
            &udp(vlans, v4(), 1701, 1701, &data),
            Counter::RedirectData,
        );
        expect(
            &prog,
            &case("control"),
            &udp(vlans, v6(), 1701, 1701, &l2tp_control(2)),
            Counter::PassControl,
        );
        expect(
            &prog,
            &case("LCP"),
            &udp(
                vlans,
                v4(),
                1701,
                1701,
                &l2tp(0, 0, &ppp(true, false, 0xc021, &lcp_conf_req())),
            ),
            Counter::PassPppControl,
        );
        expect(
            &prog,
            &case("core v4"),
            &to_v4(vlans, Ipv4Addr::new(10, 20, 1, 1)),
            Counter::RedirectCore,
        );
        expect(
            &prog,
            &case("core v6"),
            &to_v6(vlans, SUB_V6),
            Counter::RedirectCore,
        );
        expect(
            &prog,
            &case("other"),
            &to_v4(vlans, CORE_V4),
            Counter::PassOther,
        );
        expect(&prog, &case("ARP"), &arp_request(vlans), Counter::PassNonIp);
        expect(
            &prog,
            &case("ND"),
            &icmpv6(vlans, LNS_V6, 136),
            Counter::PassNd,
        );
    }
    // Documented order: UDP to the L2TP port is the access rule's alone, even when its
    // destination is a subscriber address.
    let to_subscriber = IpAddrs::V4 {
        src: CORE_V4,
        dst: Ipv4Addr::new(10, 20, 0, 9),
    };
    expect(
        &prog,
        "L2TP control to a subscriber address",
        &udp(Vlans::Untagged, to_subscriber, 1701, 1701, &l2tp_control(1)),
        Counter::PassControl,
    );
    expect(
        &prog,
        "non-L2TP UDP to a subscriber address",
        &udp(Vlans::Untagged, to_subscriber, 1701, 1702, &l2tp_control(1)),
        Counter::RedirectCore,
    );
}

#[test]
fn the_xsk_slot_is_chosen_by_the_rx_queue() {
    if !bpf_tests_enabled("the_xsk_slot_is_chosen_by_the_rx_queue") {
        return;
    }
    let prog = load(Role::Access);
    let (_ns, xsk) = xsk();
    let frame = l2tp_v4(&l2tp(0, 0, &ppp(true, false, PPP_IPV4, &inner_ipv4())));
    // A socket for queue 1 does not catch frames of queue 0.
    prog.set_xsk(1, xsk.fd()).unwrap();
    expect(
        &prog,
        "queue 0, socket on 1",
        &frame,
        Counter::PassNoXskData,
    );
    prog.set_xsk(0, xsk.fd()).unwrap();
    expect(&prog, "queue 0, socket on 0", &frame, Counter::RedirectData);
    prog.clear_xsk(0).unwrap();
    expect(&prog, "queue 0, cleared", &frame, Counter::PassNoXskData);
}

#[test]
fn loader_errors_are_typed() {
    if !bpf_tests_enabled("loader_errors_are_typed") {
        return;
    }
    let prog = XdpProgram::load(XdpConfig {
        max_queues: 4,
        ..XdpConfig::default()
    })
    .unwrap();
    let (_ns, xsk) = xsk();
    assert!(matches!(
        prog.set_xsk(4, xsk.fd()),
        Err(Error::Queue { queue: 4, max: 4 })
    ));
    assert!(matches!(
        prog.clear_xsk(9),
        Err(Error::Queue { queue: 9, max: 4 })
    ));
    assert!(matches!(
        prog.add_subscriber_prefix_v4(SUB_V4, 33),
        Err(Error::PrefixLen { len: 33, max: 32 })
    ));
    assert!(matches!(
        prog.add_subscriber_prefix_v6(SUB_V6, 129),
        Err(Error::PrefixLen { len: 129, max: 128 })
    ));
    assert!(!prog.remove_subscriber_prefix_v6(SUB_V6, 64).unwrap());
    // A socket that is not an AF_XDP socket is refused by the kernel.
    let not_xsk = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    use std::os::fd::AsFd;
    assert!(matches!(
        prog.set_xsk(0, not_xsk.as_fd()),
        Err(Error::Map {
            map: "xsks",
            op: "update",
            ..
        })
    ));
    assert_eq!(prog.counters().unwrap().total(), 0);
}

//! Golden packets from the real Linux client: every L2TP frame of the peer-vm selftest
//! (xl2tpd 1.3.18 + pppd 2.4.9 as LAC, xl2tpd as LNS; `golden/README.md`) goes through
//! our codecs.
//!
//! * Every frame: the L2TP header parses and re-emits byte for byte.
//! * Control frames parse as [`ControlPacket`] (with the tunnel secret `labsecret` in
//!   the secret-hidden case) with the message type tshark named, pass `validate()`, and
//!   re-emit byte for byte.
//! * Data frames: the PPP header parses and re-emits; the PPP packet goes through the
//!   codec of its protocol (LCP, PAP, CHAP, IPCP, IPv6CP; CCP through the generic
//!   control packet) and re-emits byte for byte; the code and the values tshark shows
//!   in its one-line summary (CHAP name and value, PAP peer-id and password, messages)
//!   equal ours.
//! * Decoded values against tshark's dissection (the comments in
//!   `golden/peer_vm_frames.rs`) for a representative set, and the authentication
//!   crypto against what the real peers computed: the tunnel Challenge Response
//!   (RFC 2661 §4.4.3), CHAP-MD5 (RFC 1994), MS-CHAPv2 (RFC 2759).

#![allow(clippy::unwrap_used, clippy::panic)]

#[rustfmt::skip]
#[path = "golden/peer_vm_frames.rs"]
mod frames;

use frames::{Captured, FRAMES};
use xlns_controlplane::l2tp::attr::{ErrorInfo, FramingMask};
use xlns_controlplane::l2tp::result::{CdnResult, GeneralError, StopCcnResult};
use xlns_controlplane::l2tp::{Avp, ControlMessage, ControlPacket, MessageType};
use xlns_controlplane::ppp::lcp::{self, AuthProtocol, ChapAlgorithm, LcpOption};
use xlns_controlplane::ppp::wire::{self as cp, Code};
use xlns_controlplane::ppp::{chap, ipcp, ipv6cp, mschapv2, pap};
use xlns_dataplane::wire::l2tp::{self, HeaderKind, HeaderRepr};
use xlns_dataplane::wire::ppp::{self, protocol};

/// The tunnel secret of the secret-hidden case.
const SECRET: &[u8] = b"labsecret";
/// The PPP user of every case, and its password.
const USER: &[u8] = b"user1";
const PASSWORD: &str = "pw1";

fn secret_of(captured: &Captured) -> Option<&'static [u8]> {
    (captured.case == "secret-hidden").then_some(SECRET)
}

fn frame(number: u32) -> &'static Captured {
    FRAMES
        .iter()
        .find(|c| c.frame == number)
        .unwrap_or_else(|| panic!("no frame {number} in peer_vm_frames.rs"))
}

fn control(number: u32) -> ControlPacket {
    let captured = frame(number);
    ControlPacket::parse(captured.bytes, secret_of(captured)).unwrap()
}

fn message(number: u32) -> ControlMessage {
    control(number)
        .message()
        .unwrap_or_else(|| panic!("frame {number} is a ZLB"))
        .clone()
}

/// The PPP frame (address/control onwards) of a data frame.
fn ppp_frame(number: u32) -> &'static [u8] {
    let bytes = frame(number).bytes;
    let packet = l2tp::Packet::new_checked(bytes).unwrap();
    let header_len = packet.header_len();
    &bytes[header_len..packet.total_len()]
}

/// The PPP packet (Code onwards) of a data frame.
fn ppp_packet(number: u32) -> &'static [u8] {
    let frame = ppp_frame(number);
    let packet = ppp::Packet::new_checked(frame).unwrap();
    &frame[packet.header_len()..]
}

fn chap_repr(number: u32) -> chap::Repr {
    chap::Repr::from_bytes(ppp_packet(number)).unwrap()
}

/// tshark 4.0's name of an RFC 1661 Code in its summary line (LCP, IPCP, IPv6CP, CCP).
fn tshark_cp_code(code: Code) -> &'static str {
    match code {
        Code::ConfigureRequest => "Configuration Request",
        Code::ConfigureAck => "Configuration Ack",
        Code::ConfigureNak => "Configuration Nak",
        Code::ConfigureReject => "Configuration Reject",
        Code::TerminateRequest => "Termination Request",
        Code::TerminateAck => "Termination Ack",
        Code::CodeReject => "Code Reject",
        Code::ProtocolReject => "Protocol Reject",
        Code::EchoRequest => "Echo Request",
        Code::EchoReply => "Echo Reply",
        Code::DiscardRequest => "Discard Request",
        Code::Unknown(code) => panic!("no tshark name for code {code}"),
    }
}

/// The summary tshark 4.0 prints for a CHAP packet, up to the first 32 value bytes
/// (it shortens longer values with "…").
fn tshark_chap_info(repr: &chap::Repr) -> String {
    let name_value = |what: &str, name: &[u8], value: &[u8]| {
        format!(
            "{what} (NAME='{}', VALUE=0x{}",
            String::from_utf8_lossy(name),
            hex::encode(&value[..value.len().min(32)])
        )
    };
    match repr {
        chap::Repr::Challenge { value, name, .. } => name_value("Challenge", name, value),
        chap::Repr::Response { value, name, .. } => name_value("Response", name, value),
        chap::Repr::Success { message, .. } => {
            format!("Success (MESSAGE='{}')", String::from_utf8_lossy(message))
        }
        chap::Repr::Failure { message, .. } => {
            format!("Failure (MESSAGE='{}')", String::from_utf8_lossy(message))
        }
    }
}

fn tshark_pap_info(repr: &pap::Repr) -> String {
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    match repr {
        pap::Repr::AuthenticateRequest {
            peer_id, password, ..
        } => format!(
            "Authenticate-Request (Peer-ID='{}', Password='{}')",
            text(peer_id),
            text(password)
        ),
        pap::Repr::AuthenticateAck { message, .. } => {
            format!("Authenticate-Ack (Message='{}')", text(message))
        }
        pap::Repr::AuthenticateNak { message, .. } => {
            format!("Authenticate-Nak (Message='{}')", text(message))
        }
    }
}

/// What [`check_frame`] found, to check the capture's coverage.
#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    control: usize,
    zlb: usize,
    lcp: usize,
    pap: usize,
    chap: usize,
    ipcp: usize,
    ipv6cp: usize,
    ccp: usize,
}

/// Parse, check against tshark's summary, and re-emit one frame.
fn check_frame(captured: &Captured, counts: &mut Counts) {
    let at = format!(
        "frame {} ({}): {}",
        captured.frame, captured.case, captured.info
    );
    let bytes = captured.bytes;
    let packet = l2tp::Packet::new_checked(bytes).unwrap_or_else(|e| panic!("{at}: {e}"));
    let header = HeaderRepr::parse(&packet).unwrap();
    // No UDP padding in the capture: Length (when present) covers the datagram.
    assert_eq!(packet.total_len(), bytes.len(), "{at}");
    let payload_len = bytes.len() - header.buffer_len();
    let mut header_bytes = vec![0u8; header.buffer_len()];
    header.emit(
        &mut l2tp::Packet::new_unchecked(&mut header_bytes[..]),
        payload_len,
    );
    assert_eq!(header_bytes, bytes[..header.buffer_len()], "{at}: header");

    if header.is_control() {
        check_control(captured, &at, counts);
    } else {
        // xl2tpd sends data messages with no optional field at all.
        assert_eq!(
            header.kind,
            HeaderKind::Data {
                length: false,
                sequence: None,
                offset_size: None,
                priority: false
            },
            "{at}"
        );
        check_data(captured, &at, counts);
    }
}

fn check_control(captured: &Captured, at: &str, counts: &mut Counts) {
    let bytes = captured.bytes;
    let parsed =
        ControlPacket::parse(bytes, secret_of(captured)).unwrap_or_else(|e| panic!("{at}: {e}"));
    let ids = format!(
        "(tunnel id={}, session id={})",
        parsed.tunnel_id, parsed.session_id
    );
    assert!(captured.info.ends_with(&ids), "{at}: {ids}");
    match parsed.message() {
        None => {
            counts.zlb += 1;
            assert!(captured.info.starts_with("Control Message - ZLB "), "{at}");
        }
        Some(message) => {
            counts.control += 1;
            let expected = format!("Control Message - {} (", message.message_type.name());
            assert!(captured.info.starts_with(&expected), "{at}");
            message
                .validate()
                .unwrap_or_else(|e| panic!("{at}: validate: {e}"));
            // Nothing is hidden in the capture (tshark shows H=0 on every AVP): the
            // message parses the same without the secret.
            assert_eq!(
                ControlPacket::parse(bytes, None).as_ref(),
                Ok(&parsed),
                "{at}"
            );
        }
    }
    let emitted = parsed.emit(None).unwrap();
    assert_eq!(hex::encode(emitted), hex::encode(bytes), "{at}: re-emit");
}

fn check_data(captured: &Captured, at: &str, counts: &mut Counts) {
    let frame = ppp_frame(captured.frame);
    let view = ppp::Packet::new_checked(frame).unwrap_or_else(|e| panic!("{at}: {e}"));
    let header = ppp::HeaderRepr::parse(&view).unwrap();
    // pppd over L2TP never compresses the address/control or protocol fields of
    // control protocols.
    assert!(header.address_control, "{at}");
    assert!(!header.compressed, "{at}");
    let mut header_bytes = vec![0u8; header.buffer_len()];
    header.emit(&mut header_bytes);
    assert_eq!(
        header_bytes,
        frame[..header.buffer_len()],
        "{at}: PPP header"
    );

    let packet = &frame[header.buffer_len()..];
    let raw = cp::Repr::from_bytes(packet).unwrap_or_else(|e| panic!("{at}: {e}"));
    // No padding after the PPP packet's Length in the capture.
    assert_eq!(raw.buffer_len(), packet.len(), "{at}");
    let emitted = match header.protocol {
        protocol::LCP => {
            counts.lcp += 1;
            let repr = lcp::Repr::from_bytes(packet).unwrap_or_else(|e| panic!("{at}: {e}"));
            assert_eq!(captured.info, tshark_cp_code(repr.code()), "{at}");
            repr.to_bytes()
        }
        protocol::IPCP => {
            counts.ipcp += 1;
            let repr = ipcp::Repr::from_bytes(packet).unwrap_or_else(|e| panic!("{at}: {e}"));
            assert_eq!(captured.info, tshark_cp_code(repr.code()), "{at}");
            repr.to_bytes()
        }
        protocol::IPV6CP => {
            counts.ipv6cp += 1;
            let repr = ipv6cp::Repr::from_bytes(packet).unwrap_or_else(|e| panic!("{at}: {e}"));
            assert_eq!(captured.info, tshark_cp_code(repr.code()), "{at}");
            repr.to_bytes()
        }
        protocol::CCP => {
            // No CCP codec (xlns rejects CCP with an LCP Protocol-Reject): header only.
            counts.ccp += 1;
            assert_eq!(captured.info, tshark_cp_code(raw.code), "{at}");
            let mut out = vec![0u8; raw.buffer_len()];
            raw.emit(&mut cp::Packet::new_unchecked(&mut out[..]));
            out
        }
        protocol::PAP => {
            counts.pap += 1;
            let repr = pap::Repr::from_bytes(packet).unwrap_or_else(|e| panic!("{at}: {e}"));
            assert_eq!(captured.info, tshark_pap_info(&repr), "{at}");
            repr.to_bytes()
        }
        protocol::CHAP => {
            counts.chap += 1;
            let repr = chap::Repr::from_bytes(packet).unwrap_or_else(|e| panic!("{at}: {e}"));
            let info = tshark_chap_info(&repr);
            assert!(captured.info.starts_with(&info), "{at}: ours {info}");
            repr.to_bytes()
        }
        other => panic!("{at}: unexpected PPP protocol {other:#06x}"),
    };
    assert_eq!(hex::encode(emitted), hex::encode(packet), "{at}: re-emit");
}

#[test]
fn every_captured_frame_parses_and_re_emits_byte_for_byte() {
    let mut counts = Counts::default();
    for captured in FRAMES {
        check_frame(captured, &mut counts);
    }
    // The coverage of the capture (peer_vm_frames.rs has 164 frames); a regenerated
    // capture that loses a kind of packet fails here.
    assert_eq!(
        counts,
        Counts {
            control: 32,
            zlb: 20,
            lcp: 48,
            pap: 2,
            chap: 12,
            ipcp: 20,
            ipv6cp: 24,
            ccp: 6,
        }
    );
    assert_eq!(FRAMES.len(), 164);
    let cases: std::collections::BTreeSet<&str> = FRAMES.iter().map(|c| c.case).collect();
    assert_eq!(
        cases.into_iter().collect::<Vec<_>>(),
        [
            "chap-kernel",
            "mschap-v2",
            "pap",
            "secret-hidden",
            "wrong-password"
        ]
    );
}

#[test]
fn sccrq_from_xl2tpd() {
    // tshark: Tunnel ID 0, Session ID 0, Ns 0, Nr 0; Protocol Version 1.0; Framing
    // Capabilities async + sync; Bearer Capabilities none; Firmware Revision 1680
    // (M=0); Host Name peer-vm; Vendor Name xelerance.com (M=0); Assigned Tunnel ID
    // 30415; Receive Window Size 4.
    let packet = control(3);
    assert_eq!(
        (packet.tunnel_id, packet.session_id, packet.ns, packet.nr),
        (0, 0, 0, 0)
    );
    let sccrq = message(3);
    assert_eq!(sccrq.message_type, MessageType::Sccrq);
    assert_eq!(sccrq.protocol_version(), Some((1, 0)));
    let framing = sccrq.framing_capabilities().unwrap();
    assert!(framing.asynchronous() && framing.sync());
    let bearer = sccrq.bearer_capabilities().unwrap();
    assert!(!bearer.analog() && !bearer.digital());
    assert_eq!(sccrq.firmware_revision(), Some(1680));
    assert_eq!(sccrq.host_name(), Some(&b"peer-vm"[..]));
    assert_eq!(sccrq.vendor_name(), Some(&b"xelerance.com"[..]));
    assert_eq!(sccrq.assigned_tunnel_id(), Some(30415));
    assert_eq!(sccrq.receive_window_size(), Some(4));
    assert_eq!(sccrq.tie_breaker(), None);
    assert_eq!(sccrq.challenge(), None);
    let types: Vec<u16> = sccrq.avps.iter().map(Avp::attr_type).collect();
    assert_eq!(types, [2, 3, 4, 6, 7, 8, 9, 10]);
    // The M bits as tshark shows them: all set but Firmware Revision and Vendor Name.
    let m_bits: Vec<bool> = sccrq.avps.iter().map(Avp::mandatory).collect();
    assert_eq!(m_bits, [true, true, true, false, true, false, true, true]);
}

#[test]
fn sccrp_scccn_from_xl2tpd() {
    // tshark: SCCRP to tunnel 30415, Ns 0, Nr 1: Host Name lns, Assigned Tunnel ID 8657.
    let packet = control(4);
    assert_eq!(
        (packet.tunnel_id, packet.session_id, packet.ns, packet.nr),
        (30415, 0, 0, 1)
    );
    let sccrp = message(4);
    assert_eq!(sccrp.message_type, MessageType::Sccrp);
    assert_eq!(sccrp.host_name(), Some(&b"lns"[..]));
    assert_eq!(sccrp.assigned_tunnel_id(), Some(8657));
    assert_eq!(sccrp.firmware_revision(), Some(1680));
    assert_eq!(sccrp.receive_window_size(), Some(4));
    // SCCCN to tunnel 8657, Ns 1, Nr 1, Message Type only.
    let packet = control(5);
    assert_eq!((packet.tunnel_id, packet.ns, packet.nr), (8657, 1, 1));
    assert_eq!(message(5), ControlMessage::new(MessageType::Scccn));
}

#[test]
fn icrq_icrp_iccn_from_xl2tpd() {
    // tshark: ICRQ Ns 2 Nr 1, Assigned Session 31122, Call Serial Number 1, Bearer
    // Type neither analog nor digital.
    let packet = control(6);
    assert_eq!(
        (packet.tunnel_id, packet.session_id, packet.ns, packet.nr),
        (8657, 0, 2, 1)
    );
    let icrq = message(6);
    assert_eq!(icrq.message_type, MessageType::Icrq);
    assert_eq!(icrq.assigned_session_id(), Some(31122));
    assert_eq!(icrq.call_serial_number(), Some(1));
    let bearer = icrq.bearer_type().unwrap();
    assert!(!bearer.analog() && !bearer.digital());
    // ICRP to tunnel 30415 session 31122, Ns 1 Nr 3, Assigned Session 12358.
    let packet = control(8);
    assert_eq!(
        (packet.tunnel_id, packet.session_id, packet.ns, packet.nr),
        (30415, 31122, 1, 3)
    );
    assert_eq!(
        message(8),
        ControlMessage::new(MessageType::Icrp).with(Avp::AssignedSessionId(12358))
    );
    // ICCN to session 12358, Ns 3 Nr 2: Connect Speed 0, Framing Type sync, Rx
    // Connect Speed 0 (M=0).
    let packet = control(10);
    assert_eq!(
        (packet.tunnel_id, packet.session_id, packet.ns, packet.nr),
        (8657, 12358, 3, 2)
    );
    assert_eq!(
        message(10),
        ControlMessage::new(MessageType::Iccn)
            .with(Avp::TxConnectSpeed(0))
            .with(Avp::FramingType(FramingMask(FramingMask::SYNC)))
            .with(Avp::RxConnectSpeed(0))
    );
    // The second tunnel (mschap-v2 case) numbers its session with Call Serial 1 too.
    let icrq = message(107);
    assert_eq!(icrq.call_serial_number(), Some(1));
    assert_eq!(control(111).session_id, 250);
}

#[test]
fn cdn_and_stopccn_from_xl2tpd() {
    // tshark: CDN Ns 4 Nr 2: Result code 1 (loss of carrier), Error code 0, no
    // message; Assigned Session 31122.
    let packet = control(48);
    assert_eq!((packet.tunnel_id, packet.session_id), (8657, 12358));
    let cdn = message(48);
    assert_eq!(cdn.message_type, MessageType::Cdn);
    let result = cdn.result_code().unwrap();
    assert_eq!(result.result, 1);
    assert_eq!(result.cdn(), Some(CdnResult::LossOfCarrier));
    assert_eq!(
        result.error,
        Some(ErrorInfo {
            code: 0,
            message: Vec::new()
        })
    );
    assert_eq!(result.general_error(), Some(GeneralError::NoError));
    assert_eq!(cdn.assigned_session_id(), Some(31122));
    // StopCCN Ns 5 Nr 2: Assigned Tunnel ID 30415, Result code 1 (general request to
    // clear), Error code 0, Error Message "Goodbye!".
    let packet = control(50);
    assert_eq!((packet.tunnel_id, packet.ns, packet.nr), (8657, 5, 2));
    let stop = message(50);
    assert_eq!(stop.message_type, MessageType::StopCcn);
    assert_eq!(stop.assigned_tunnel_id(), Some(30415));
    let result = stop.result_code().unwrap();
    assert_eq!(result.stop_ccn(), Some(StopCcnResult::GeneralClear));
    assert_eq!(
        result.error,
        Some(ErrorInfo {
            code: 0,
            message: b"Goodbye!".to_vec()
        })
    );
    // The wrong-password case: the LNS tears the session down (CDN from xl2tpd LNS).
    let cdn = message(241);
    assert!(!frame(241).from_lac);
    assert_eq!(cdn.assigned_session_id(), Some(44154));
    assert_eq!(cdn.result_code().unwrap().result, 1);
}

fn random_vector(message: &ControlMessage) -> Option<&[u8]> {
    message.avps.iter().find_map(|avp| match avp {
        Avp::RandomVector(rv) => Some(rv.as_slice()),
        _ => None,
    })
}

#[test]
fn secret_hidden_tunnel_authentication() {
    // With `labsecret` xl2tpd puts a Random Vector right after the Message Type of
    // every control message, and a Challenge in SCCRQ and SCCRP; it hides nothing.
    let sccrq = message(157);
    assert_eq!(
        sccrq.avps[0],
        Avp::RandomVector(hex::decode("bb73a7af97c488b2aef37b081ba08cfb").unwrap())
    );
    let challenge = sccrq.challenge().unwrap().to_vec();
    assert_eq!(hex::encode(&challenge), "0f8e64eeb8ab08e8d9d3a7abdf095fc3");
    assert_eq!(sccrq.assigned_tunnel_id(), Some(8304));

    let sccrp = message(158);
    assert_eq!(
        random_vector(&sccrp).map(hex::encode).as_deref(),
        Some("c37832229af4c14444ff8e0a7f940d97")
    );
    assert_eq!(sccrp.assigned_tunnel_id(), Some(57781));
    // RFC 2661 §4.4.3: Challenge Response = MD5(Message Type of the reply || secret ||
    // challenge), the CHAP computation with the message type as identifier.
    let response = *sccrp.challenge_response().unwrap();
    assert_eq!(hex::encode(response), "bd771d59ffcece862a5c161a79a9a370");
    assert_eq!(
        response,
        chap::md5_response(MessageType::Sccrp.code() as u8, SECRET, &challenge)
    );
    assert_ne!(
        response,
        chap::md5_response(MessageType::Sccrp.code() as u8, b"othersecret", &challenge)
    );
    let lns_challenge = sccrp.challenge().unwrap().to_vec();
    assert_eq!(
        hex::encode(&lns_challenge),
        "0ef7f48e655acee36cb93cd0239900c0"
    );

    let scccn = message(159);
    assert_eq!(
        random_vector(&scccn).map(hex::encode).as_deref(),
        Some("7ee82e3b972c2ee0ecb3e8ac3f0917e2")
    );
    let response = *scccn.challenge_response().unwrap();
    assert_eq!(hex::encode(response), "b4384c3862be1fcdab84afd3a82067ea");
    assert_eq!(
        response,
        chap::md5_response(MessageType::Scccn.code() as u8, SECRET, &lns_challenge)
    );

    // Every control message of the case carries its Random Vector first.
    let mut with_rv = 0;
    for captured in FRAMES.iter().filter(|c| c.case == "secret-hidden") {
        let packet = ControlPacket::parse(captured.bytes, Some(SECRET));
        if let Ok(packet) = packet
            && let Some(message) = packet.message()
        {
            assert!(
                matches!(message.avps.first(), Some(Avp::RandomVector(rv)) if rv.len() == 16),
                "frame {}",
                captured.frame
            );
            with_rv += 1;
        }
    }
    assert_eq!(with_rv, 8);
}

#[test]
fn lcp_configure_request_and_echo_from_pppd() {
    // tshark frame 12: Configuration Request id 1: MRU 1400, ACCM 0, Magic 0x153cb37e.
    let repr = lcp::Repr::from_bytes(ppp_packet(12)).unwrap();
    assert_eq!(
        repr,
        lcp::Repr::Control(cp::CpRepr::ConfigureRequest {
            identifier: 1,
            options: vec![
                LcpOption::Mru(1400),
                LcpOption::Accm(0),
                LcpOption::MagicNumber(0x153c_b37e)
            ]
        })
    );
    // Frame 20: Echo Reply id 0, Magic 0x153cb37e (the LAC's).
    assert_eq!(
        lcp::Repr::from_bytes(ppp_packet(20)).unwrap(),
        lcp::Repr::EchoReply {
            identifier: 0,
            magic_number: 0x153c_b37e,
            data: Vec::new()
        }
    );
    // The LNS asks for CHAP-MD5 (tshark frame 13). In mschap-v2 it asks for CHAP-MD5
    // (frame 113), pppd Naks with MS-CHAP-2 (129, frame 117), the LNS asks again with
    // MS-CHAP-2 (frame 118) and pppd acks (frame 119).
    let auth = |number| {
        let (code, options) = match lcp::Repr::from_bytes(ppp_packet(number)).unwrap() {
            lcp::Repr::Control(cp::CpRepr::ConfigureRequest { options, .. }) => {
                (Code::ConfigureRequest, options)
            }
            lcp::Repr::Control(cp::CpRepr::ConfigureNak { options, .. }) => {
                (Code::ConfigureNak, options)
            }
            lcp::Repr::Control(cp::CpRepr::ConfigureAck { options, .. }) => {
                (Code::ConfigureAck, options)
            }
            other => panic!("frame {number}: {other:?}"),
        };
        let auth = options.into_iter().find_map(|o| match o {
            LcpOption::AuthenticationProtocol(auth) => Some(auth),
            _ => None,
        });
        (code, auth)
    };
    let md5 = Some(AuthProtocol::Chap(ChapAlgorithm::Md5));
    let v2 = Some(AuthProtocol::Chap(ChapAlgorithm::MsChapV2));
    assert_eq!(auth(13), (Code::ConfigureRequest, md5.clone()));
    assert_eq!(auth(113), (Code::ConfigureRequest, md5));
    assert_eq!(auth(117), (Code::ConfigureNak, v2.clone()));
    assert_eq!(auth(118), (Code::ConfigureRequest, v2.clone()));
    assert_eq!(auth(119), (Code::ConfigureAck, v2));
}

#[test]
fn pap_from_pppd() {
    // tshark frame 72: Authenticate-Request Peer-ID user1 Password pw1; frame 75:
    // Authenticate-Ack "Login ok" with the same identifier.
    let pap::Repr::AuthenticateRequest {
        identifier,
        peer_id,
        password,
    } = pap::Repr::from_bytes(ppp_packet(72)).unwrap()
    else {
        panic!("frame 72 is not a PAP Authenticate-Request");
    };
    assert_eq!(
        (peer_id.as_slice(), password.as_slice()),
        (USER, PASSWORD.as_bytes())
    );
    assert_eq!(
        pap::Repr::from_bytes(ppp_packet(75)).unwrap(),
        pap::Repr::AuthenticateAck {
            identifier,
            message: b"Login ok".to_vec()
        }
    );
}

/// The CHAP-MD5 Challenge value of frame `challenge` and the Response of frame
/// `response` (same identifier), with the responder's name.
fn chap_md5_exchange(challenge: u32, response: u32) -> (u8, Vec<u8>, Vec<u8>) {
    let chap::Repr::Challenge {
        identifier,
        value: challenge_value,
        name,
    } = chap_repr(challenge)
    else {
        panic!("frame {challenge} is not a CHAP Challenge");
    };
    assert_eq!(name, b"lns");
    let chap::Repr::Response {
        identifier: response_id,
        value,
        name,
    } = chap_repr(response)
    else {
        panic!("frame {response} is not a CHAP Response");
    };
    assert_eq!(response_id, identifier);
    assert_eq!(name, USER);
    (identifier, challenge_value, value)
}

#[test]
fn chap_md5_responses_verify_with_the_password() {
    // chap-kernel: tshark frame 19 Challenge id 43 (20-byte value), frame 22 Response.
    let (id, challenge, response) = chap_md5_exchange(19, 22);
    assert_eq!(id, 43);
    assert_eq!(
        hex::encode(&challenge),
        "2a7549bac185587d3c21892d65acb969ff8d99c4"
    );
    assert_eq!(hex::encode(&response), "f8f26f863cef75f5d4cd109b34272e8a");
    assert_eq!(
        chap::md5_response(id, PASSWORD.as_bytes(), &challenge),
        response[..]
    );
    assert!(
        matches!(chap_repr(23), chap::Repr::Success { identifier, message }
        if identifier == id && message == b"Access granted")
    );
    // secret-hidden: the same with a 17-byte challenge.
    let (id, challenge, response) = chap_md5_exchange(173, 176);
    assert_eq!(challenge.len(), 17);
    assert_eq!(
        chap::md5_response(id, PASSWORD.as_bytes(), &challenge),
        response[..]
    );
}

#[test]
fn wrong_password_response_does_not_verify() {
    let (id, challenge, response) = chap_md5_exchange(232, 235);
    assert_eq!(hex::encode(&response), "8c8f4d34d717330c95033a8e62bfd05b");
    assert_ne!(
        chap::md5_response(id, PASSWORD.as_bytes(), &challenge),
        response[..]
    );
    assert!(
        matches!(chap_repr(236), chap::Repr::Failure { identifier, message }
        if identifier == id && message == b"Access denied")
    );
}

#[test]
fn mschapv2_response_verifies_and_authenticator_response_matches() {
    let chap::Repr::Challenge {
        identifier,
        value,
        name,
    } = chap_repr(122)
    else {
        panic!("frame 122 is not a CHAP Challenge");
    };
    assert_eq!(name, b"lns");
    let authenticator_challenge = mschapv2::parse_challenge(&value).unwrap();
    assert_eq!(
        hex::encode(authenticator_challenge),
        "13329aeba2b271a0c84beb4f3e3d6cb8"
    );
    let chap::Repr::Response {
        identifier: response_id,
        value,
        name,
    } = chap_repr(125)
    else {
        panic!("frame 125 is not a CHAP Response");
    };
    assert_eq!((response_id, name.as_slice()), (identifier, USER));
    let response = mschapv2::ResponseValue::parse(&value).unwrap();
    assert_eq!(response.to_bytes()[..], value[..]);
    assert_eq!(response.flags, 0);
    assert_eq!(
        hex::encode(&value[..16]),
        "aa00940653bdafe5a26d23accec0521d"
    );

    // RFC 2759 §8.1: the NT-Response is what user1 / pw1 gives.
    assert_eq!(
        mschapv2::generate_nt_response(
            &authenticator_challenge,
            &response.peer_challenge,
            USER,
            PASSWORD
        ),
        response.nt_response
    );
    assert_ne!(
        mschapv2::generate_nt_response(
            &authenticator_challenge,
            &response.peer_challenge,
            USER,
            "pw2"
        ),
        response.nt_response
    );
    // §8.7: the authenticator response xl2tpd's pppd sent, exactly (frame 126).
    let chap::Repr::Success {
        identifier: success_id,
        message,
    } = chap_repr(126)
    else {
        panic!("frame 126 is not a CHAP Success");
    };
    assert_eq!(success_id, identifier);
    assert_eq!(
        message,
        b"S=4313CDCD1ABCDF7393849156B92E6FD04A6ECF85 M=Access granted"
    );
    assert_eq!(
        mschapv2::generate_authenticator_response(
            PASSWORD,
            &response.nt_response,
            &response.peer_challenge,
            &authenticator_challenge,
            USER
        ),
        "S=4313CDCD1ABCDF7393849156B92E6FD04A6ECF85"
    );
    // As the LNS: verifying the Response yields the very Success message sent.
    assert_eq!(
        mschapv2::verify_response(
            USER,
            PASSWORD,
            &authenticator_challenge,
            &response,
            "Access granted"
        ),
        mschapv2::Verification::Success {
            message: String::from_utf8(message.clone()).unwrap()
        }
    );
    // As the peer: the Success message checks out.
    assert!(mschapv2::check_success_message(
        PASSWORD,
        &response.nt_response,
        &response.peer_challenge,
        &authenticator_challenge,
        USER,
        &message
    ));
}

#[test]
fn ipcp_and_ipv6cp_from_pppd() {
    // tshark frame 25: IPCP Configuration Request id 1, IP Address 10.255.100.1.
    assert_eq!(
        ipcp::Repr::from_bytes(ppp_packet(25)).unwrap(),
        ipcp::Repr::ConfigureRequest {
            identifier: 1,
            options: vec![ipcp::IpcpOption::IpAddress(std::net::Ipv4Addr::new(
                10, 255, 100, 1
            ))]
        }
    );
    // Every IPv6CP packet of the capture carries one Interface-Identifier option
    // (Configure-Request/Ack/Nak) or none.
    let mut interface_ids = 0;
    for captured in FRAMES {
        let packet = l2tp::Packet::new_checked(captured.bytes).unwrap();
        if packet.is_control() {
            continue;
        }
        let view = ppp::Packet::new_checked(packet.payload()).unwrap();
        if view.protocol() != protocol::IPV6CP {
            continue;
        }
        match ipv6cp::Repr::from_bytes(view.payload()).unwrap() {
            ipv6cp::Repr::ConfigureRequest { options, .. }
            | ipv6cp::Repr::ConfigureAck { options, .. }
            | ipv6cp::Repr::ConfigureNak { options, .. } => {
                assert!(matches!(
                    options.as_slice(),
                    [ipv6cp::Ipv6cpOption::InterfaceIdentifier(_)]
                ));
                interface_ids += 1;
            }
            _ => {}
        }
    }
    assert!(interface_ids > 0);
}

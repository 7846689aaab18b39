#![allow(clippy::unwrap_used, clippy::panic)]
//! Real pppd 2.4.9 packets (from the peer-vm capture, `golden/peer_vm_frames.rs`) judged by
//! our option policies: the client's (LAC side) requests by the LNS role, the Linux LNS's
//! requests by the client role, with the verdicts a correct implementation gives; where
//! pppd itself answered, our answer must be byte for byte the same.

#[rustfmt::skip]
#[allow(dead_code)]
#[path = "golden/peer_vm_frames.rs"]
mod frames;

use std::net::Ipv4Addr;

use rand::SeedableRng;
use rand::rngs::StdRng;

use xlns_controlplane::ppp::fsm::{Options, Protocol, Verdict, code};
use xlns_controlplane::ppp::ipcp_proto::{Ipcp, IpcpClient, IpcpServer};
use xlns_controlplane::ppp::ipv6cp_proto::Ipv6cp;
use xlns_controlplane::ppp::lcp::{AuthProtocol, ChapAlgorithm};
use xlns_controlplane::ppp::lcp_proto::{Lcp, LcpPolicy};

const LCP: u16 = 0xc021;
const IPCP: u16 = 0x8021;
const IPV6CP: u16 = 0x8057;
const CHAP_MD5: AuthProtocol = AuthProtocol::Chap(ChapAlgorithm::Md5);
const MSCHAPV2: AuthProtocol = AuthProtocol::Chap(ChapAlgorithm::MsChapV2);

/// A PPP control packet carried in an L2TP data message.
struct Ppp {
    frame: u32,
    from_lac: bool,
    protocol: u16,
    code: u8,
    /// Data after Code, Identifier, Length (the options of a Configure-*).
    data: &'static [u8],
}

/// Every PPP control packet of the capture. The L2TP data header is the 6-byte one (flags
/// 0x0002: no Length, Sequence or Offset fields; RFC 2661 §3.1), then `ff 03` and the
/// 2-byte protocol field.
fn ppp_packets() -> Vec<Ppp> {
    frames::FRAMES
        .iter()
        .filter(|f| f.bytes[0] & 0x80 == 0)
        .map(|f| {
            assert_eq!(&f.bytes[..2], &[0x00, 0x02], "frame {}", f.frame);
            let ppp = &f.bytes[6..];
            assert_eq!(&ppp[..2], &[0xff, 0x03]);
            let protocol = u16::from_be_bytes([ppp[2], ppp[3]]);
            let packet = &ppp[4..];
            let len = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
            Ppp {
                frame: f.frame,
                from_lac: f.from_lac,
                protocol,
                code: packet[0],
                data: &packet[4..len],
            }
        })
        .collect()
}

fn requests(from_lac: bool, protocol: u16) -> Vec<Ppp> {
    ppp_packets()
        .into_iter()
        .filter(|p| p.from_lac == from_lac && p.protocol == protocol)
        .filter(|p| p.code == code::CONFIGURE_REQUEST)
        .collect()
}

fn packet(frame: u32) -> Ppp {
    ppp_packets()
        .into_iter()
        .find(|p| p.frame == frame)
        .unwrap()
}

fn judge<P: Protocol>(p: &mut P, data: &[u8]) -> Verdict {
    p.judge_peer_request(Options::new_checked(data).unwrap())
}

fn lns_lcp(auth: Vec<AuthProtocol>) -> Lcp {
    let mut l = Lcp::new(LcpPolicy::authenticator(auth), StdRng::seed_from_u64(1));
    l.reset_request();
    l
}

#[test]
fn lns_acks_every_pppd_lcp_request() {
    let all = requests(true, LCP);
    assert_eq!(all.len(), 5, "frames 12, 15, 114, 167, 226");
    for p in all {
        // MRU 1400, ACCM 0, Magic-Number, no authentication option.
        let mut lcp = lns_lcp(LcpPolicy::all_auth());
        assert_eq!(judge(&mut lcp, p.data), Verdict::Ack, "frame {}", p.frame);
        lcp.peer_request_acked(Options::new_checked(p.data).unwrap());
        let n = lcp.negotiated();
        assert_eq!(n.peer_mru, 1400);
        assert_eq!(n.peer_accm, 0);
        assert_eq!(n.peer_magic.to_be_bytes(), p.data[12..16]);
        assert_eq!(n.our_auth, None);
    }
}

#[test]
fn lns_follows_pppd_nak_of_chap_md5_towards_mschapv2() {
    // Frame 117: pppd (mschap-v2 case) Naks CHAP-MD5 with CHAP/MS-CHAPv2.
    let nak = packet(117);
    assert_eq!((nak.protocol, nak.code), (LCP, code::CONFIGURE_NAK));
    let mut lcp = lns_lcp(vec![CHAP_MD5, MSCHAPV2]);
    assert_eq!(lcp.requested_auth(), Some(&CHAP_MD5));
    assert!(lcp.our_request_naked(Options::new_checked(nak.data).unwrap()));
    assert_eq!(lcp.requested_auth(), Some(&MSCHAPV2));
    // Without MS-CHAPv2 in the policy there is nothing left: the negotiation fails.
    let mut strict = lns_lcp(vec![CHAP_MD5]);
    assert!(strict.our_request_naked(Options::new_checked(nak.data).unwrap()));
    use xlns_controlplane::ppp::policy::{Failing, NegotiationFailure};
    assert_eq!(
        strict.failure(),
        Some(NegotiationFailure::NoCommonAuthProtocol)
    );
}

#[test]
fn client_role_answers_the_linux_lns_lcp_requests_as_pppd_did() {
    // Frames 13, 113, 166, 225: the Linux LNS asks CHAP-MD5 (166 also PFC and ACFC); 118
    // asks MS-CHAPv2 after pppd's Nak.
    let all = requests(false, LCP);
    assert!(all.len() >= 5);
    for p in &all {
        let mut c = Lcp::new(
            LcpPolicy::peer(LcpPolicy::all_auth()),
            StdRng::seed_from_u64(2),
        );
        c.reset_request();
        assert_eq!(judge(&mut c, p.data), Verdict::Ack, "frame {}", p.frame);
    }
    // A client that only does MS-CHAPv2 Naks frame 113 exactly as pppd did in frame 117.
    let mut c = Lcp::new(LcpPolicy::peer(vec![MSCHAPV2]), StdRng::seed_from_u64(2));
    c.reset_request();
    assert_eq!(
        judge(&mut c, packet(113).data),
        Verdict::Nak(packet(117).data.to_vec())
    );
}

fn lns_ipcp(assigned: Ipv4Addr) -> Ipcp {
    Ipcp::server(IpcpServer {
        local: Ipv4Addr::new(10, 255, 100, 1),
        peer: assigned,
        dns: [None; 2],
        nbns: [None; 2],
    })
}

#[test]
fn lns_naks_pppd_ipcp_request_for_0_0_0_0_with_the_assigned_address() {
    // Frames 24, 127, 180: IP-Address 0.0.0.0. The Linux LNS answered with a Nak carrying
    // the address it assigned (frames 27, 130, 182); so do we.
    let assigned = [(24, 27), (127, 130), (180, 182)];
    for (request, lns_nak) in assigned {
        let nak = packet(lns_nak);
        assert_eq!((nak.protocol, nak.code), (IPCP, code::CONFIGURE_NAK));
        let address = Ipv4Addr::new(nak.data[2], nak.data[3], nak.data[4], nak.data[5]);
        let mut ipcp = lns_ipcp(address);
        assert_eq!(
            judge(&mut ipcp, packet(request).data),
            Verdict::Nak(nak.data.to_vec()),
            "frame {request}"
        );
    }
}

#[test]
fn lns_acks_pppd_ipcp_request_for_the_assigned_address() {
    // Frames 32, 135, 192: pppd asks for the Nak'd address.
    for (request, address) in [
        (32, Ipv4Addr::new(10, 255, 100, 10)),
        (135, Ipv4Addr::new(10, 255, 100, 10)),
        (192, Ipv4Addr::new(10, 255, 101, 10)),
    ] {
        let mut ipcp = lns_ipcp(address);
        assert_eq!(
            judge(&mut ipcp, packet(request).data),
            Verdict::Ack,
            "frame {request}"
        );
        // Anyone else's address is Nak'd.
        let mut other = lns_ipcp(Ipv4Addr::new(10, 255, 100, 99));
        assert!(matches!(
            judge(&mut other, packet(request).data),
            Verdict::Nak(_)
        ));
    }
}

#[test]
fn lns_with_dns_naks_for_address_and_appends_nothing_else() {
    // pppd without usepeerdns asks no DNS: a server with DNS configured Naks only the
    // address (RFC 1877 options are the client's to request).
    let mut ipcp = Ipcp::server(IpcpServer {
        local: Ipv4Addr::new(10, 255, 100, 1),
        peer: Ipv4Addr::new(10, 255, 100, 10),
        dns: [Some(Ipv4Addr::new(192, 0, 2, 53)), None],
        nbns: [None; 2],
    });
    assert_eq!(
        judge(&mut ipcp, packet(24).data),
        Verdict::Nak(packet(27).data.to_vec())
    );
}

#[test]
fn client_role_rejects_vj_of_the_linux_lns_exactly_as_pppd() {
    // Frame 179: the Linux LNS asks VJ and its address; pppd rejected VJ (frame 189).
    let mut c = Ipcp::client(IpcpClient::dynamic());
    assert_eq!(
        judge(&mut c, packet(179).data),
        Verdict::Reject(packet(189).data.to_vec())
    );
    // Its plain address request (frames 25, 128, 191) is acked.
    for frame in [25, 128, 191] {
        assert_eq!(
            judge(&mut c, packet(frame).data),
            Verdict::Ack,
            "frame {frame}"
        );
    }
}

#[test]
fn ipv6cp_requests_of_both_sides_acked() {
    let lac = requests(true, IPV6CP);
    let lns = requests(false, IPV6CP);
    assert_eq!((lac.len(), lns.len()), (3, 3));
    for p in lac.iter().chain(&lns) {
        let mut v6 = Ipv6cp::new(None, StdRng::seed_from_u64(3));
        v6.reset_request();
        assert_eq!(judge(&mut v6, p.data), Verdict::Ack, "frame {}", p.frame);
    }
    // A collision with our own identifier is Nak'd.
    let p = &lac[0];
    let mut id = [0; 8];
    id.copy_from_slice(&p.data[2..10]);
    let mut v6 = Ipv6cp::new(Some(id), StdRng::seed_from_u64(3));
    assert!(matches!(judge(&mut v6, p.data), Verdict::Nak(_)));
}

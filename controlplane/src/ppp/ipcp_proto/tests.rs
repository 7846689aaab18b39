#![allow(clippy::unwrap_used, clippy::panic)]
//! IPCP option policies, server and client, through the `Protocol` interface.

use super::*;
use crate::ppp::fsm::push_option;

const GW: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 42);
const DNS1: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);
const DNS2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 54);
const ZERO: Ipv4Addr = Ipv4Addr::UNSPECIFIED;

fn server(dns: [Option<Ipv4Addr>; 2]) -> Ipcp {
    Ipcp::server(IpcpServer {
        local: GW,
        peer: PEER,
        dns,
        nbns: [None; 2],
    })
}

fn opts(list: &[IpcpOption]) -> Vec<u8> {
    let mut out = Vec::new();
    for o in list {
        push(&mut out, o);
    }
    out
}

fn judge(p: &mut Ipcp, list: &[IpcpOption]) -> Verdict {
    let b = opts(list);
    p.judge_peer_request(Options::new_checked(&b).unwrap())
}

fn request(p: &mut Ipcp) -> Vec<IpcpOption> {
    let mut out = Vec::new();
    p.build_request(&mut out);
    wire::parse_options(&out).unwrap()
}

// Server: IP-Address (RFC 1332 §3.3).

#[test]
fn server_requests_its_own_address() {
    assert_eq!(request(&mut server([None; 2])), [IpcpOption::IpAddress(GW)]);
}

#[test]
fn server_naks_zero_or_wrong_address_acks_assigned() {
    let mut s = server([None; 2]);
    let want = Verdict::Nak(opts(&[IpcpOption::IpAddress(PEER)]));
    assert_eq!(judge(&mut s, &[IpcpOption::IpAddress(ZERO)]), want);
    assert_eq!(
        judge(&mut s, &[IpcpOption::IpAddress(Ipv4Addr::new(1, 2, 3, 4))]),
        want
    );
    assert_eq!(judge(&mut s, &[IpcpOption::IpAddress(PEER)]), Verdict::Ack);
    // Missing: appended to a Nak.
    assert_eq!(judge(&mut s, &[]), want);
}

#[test]
fn server_keeps_its_address_on_nak_and_drops_it_on_reject() {
    let mut s = server([None; 2]);
    let b = opts(&[IpcpOption::IpAddress(Ipv4Addr::new(9, 9, 9, 9))]);
    assert!(s.our_request_naked(Options::new_checked(&b).unwrap()));
    assert_eq!(request(&mut s), [IpcpOption::IpAddress(GW)]);
    let b = opts(&[IpcpOption::IpAddress(GW)]);
    assert!(s.our_request_rejected(Options::new_checked(&b).unwrap()));
    assert_eq!(request(&mut s), []);
    assert_eq!(s.negotiated().local, GW);
}

// Server: DNS and NBNS (RFC 1877).

#[test]
fn server_naks_dns_with_configured() {
    let mut s = server([Some(DNS1), Some(DNS2)]);
    assert_eq!(
        judge(
            &mut s,
            &[
                IpcpOption::IpAddress(PEER),
                IpcpOption::PrimaryDns(ZERO),
                IpcpOption::SecondaryDns(DNS1),
            ]
        ),
        Verdict::Nak(opts(&[
            IpcpOption::PrimaryDns(DNS1),
            IpcpOption::SecondaryDns(DNS2)
        ]))
    );
    assert_eq!(
        judge(
            &mut s,
            &[
                IpcpOption::IpAddress(PEER),
                IpcpOption::PrimaryDns(DNS1),
                IpcpOption::SecondaryDns(DNS2),
            ]
        ),
        Verdict::Ack
    );
}

#[test]
fn server_rejects_unconfigured_dns_and_nbns() {
    let mut s = server([Some(DNS1), None]);
    let asked = [
        IpcpOption::IpAddress(ZERO),
        IpcpOption::PrimaryDns(ZERO),
        IpcpOption::SecondaryDns(ZERO),
        IpcpOption::PrimaryNbns(ZERO),
    ];
    assert_eq!(
        judge(&mut s, &asked),
        Verdict::Reject(opts(&[
            IpcpOption::SecondaryDns(ZERO),
            IpcpOption::PrimaryNbns(ZERO)
        ]))
    );
}

// Server: VJ, IP-Addresses, unknown, malformed.

#[test]
fn server_rejects_compression_addresses_unknown_and_malformed() {
    let mut s = server([None; 2]);
    let vj = IpcpOption::IpCompressionProtocol {
        protocol: 0x002d,
        data: vec![0x0f, 0x01],
    };
    let addrs = IpcpOption::IpAddresses {
        source: ZERO,
        destination: ZERO,
    };
    let unknown = IpcpOption::Unknown {
        kind: 144,
        data: vec![],
    };
    let list = [
        vj.clone(),
        IpcpOption::IpAddress(ZERO),
        addrs.clone(),
        unknown.clone(),
    ];
    assert_eq!(
        judge(&mut s, &list),
        Verdict::Reject(opts(&[vj, addrs, unknown]))
    );
    let mut bad = Vec::new();
    push_option(&mut bad, option_type::IP_ADDRESS, &[1, 2]);
    assert_eq!(
        s.judge_peer_request(Options::new_checked(&bad).unwrap()),
        Verdict::Reject(bad.clone())
    );
}

// Client.

#[test]
fn client_asks_zero_and_dns_then_follows_naks() {
    let mut c = Ipcp::client(IpcpClient::dynamic());
    assert_eq!(
        request(&mut c),
        [
            IpcpOption::IpAddress(ZERO),
            IpcpOption::PrimaryDns(ZERO),
            IpcpOption::SecondaryDns(ZERO)
        ]
    );
    let b = opts(&[
        IpcpOption::IpAddress(PEER),
        IpcpOption::PrimaryDns(DNS1),
        IpcpOption::SecondaryDns(DNS2),
    ]);
    assert!(c.our_request_naked(Options::new_checked(&b).unwrap()));
    let mut out = Vec::new();
    c.build_request(&mut out);
    assert_eq!(out, b);
    c.our_request_acked(Options::new_checked(&out).unwrap());
    assert_eq!(c.negotiated().local, PEER);
    assert_eq!(c.negotiated().dns, [Some(DNS1), Some(DNS2)]);
}

#[test]
fn client_drops_rejected_dns_and_fails_on_rejected_address() {
    let mut c = Ipcp::client(IpcpClient::dynamic());
    let b = opts(&[IpcpOption::SecondaryDns(ZERO)]);
    assert!(c.our_request_rejected(Options::new_checked(&b).unwrap()));
    assert_eq!(
        request(&mut c),
        [IpcpOption::IpAddress(ZERO), IpcpOption::PrimaryDns(ZERO)]
    );
    assert_eq!(c.failure(), None);
    let b = opts(&[IpcpOption::IpAddress(ZERO)]);
    assert!(c.our_request_rejected(Options::new_checked(&b).unwrap()));
    assert_eq!(c.failure(), Some(NegotiationFailure::AddressRejected));
}

#[test]
fn client_acks_server_address_rejects_the_rest() {
    let mut c = Ipcp::client(IpcpClient::dynamic());
    assert_eq!(judge(&mut c, &[IpcpOption::IpAddress(GW)]), Verdict::Ack);
    let vj = IpcpOption::IpCompressionProtocol {
        protocol: 0x002d,
        data: vec![0x0f, 0x01],
    };
    assert_eq!(
        judge(&mut c, &[vj.clone(), IpcpOption::IpAddress(GW)]),
        Verdict::Reject(opts(&[vj]))
    );
    assert_eq!(
        judge(&mut c, &[IpcpOption::IpAddress(ZERO)]),
        Verdict::Reject(opts(&[IpcpOption::IpAddress(ZERO)]))
    );
    let b = opts(&[IpcpOption::IpAddress(GW)]);
    c.peer_request_acked(Options::new_checked(&b).unwrap());
    assert_eq!(c.negotiated().peer, GW);
}

#[test]
fn insisting_client_ignores_address_naks() {
    let mut c = Ipcp::client(IpcpClient {
        address: Ipv4Addr::new(1, 2, 3, 4),
        insist: true,
        ..IpcpClient::dynamic()
    });
    let b = opts(&[IpcpOption::IpAddress(PEER)]);
    assert!(c.our_request_naked(Options::new_checked(&b).unwrap()));
    assert_eq!(
        request(&mut c)[0],
        IpcpOption::IpAddress(Ipv4Addr::new(1, 2, 3, 4))
    );
}

#![allow(clippy::unwrap_used, clippy::panic)]

use super::*;

/// The client's last Configure-Request of the peer-vm capture (frame 15 of the chap-kernel
/// case): MRU 1400, ACCM 0, Magic-Number 0x153cb37e.
const CLIENT: [u8; 16] = [
    0x01, 0x04, 0x05, 0x78, 0x02, 0x06, 0x00, 0x00, 0x00, 0x00, 0x05, 0x06, 0x15, 0x3c, 0xb3, 0x7e,
];

/// The authenticator's Configure-Request (frame 13) with the Authentication-Protocol
/// option replaced by `auth` (5 octets for CHAP, 4 for PAP, none).
fn lac(auth: &[u8]) -> Vec<u8> {
    let mut v = vec![0x01, 0x04, 0x05, 0x78, 0x02, 0x06, 0x00, 0x00, 0x00, 0x00];
    v.extend_from_slice(auth);
    v.extend_from_slice(&[0x05, 0x06, 0xad, 0x88, 0xa7, 0xe6]);
    v
}

const CHAP_MD5: &[u8] = &[0x03, 0x05, 0xc2, 0x23, 0x05];
const CHAP_MSV2: &[u8] = &[0x03, 0x05, 0xc2, 0x23, 0x81];
const PAP_OPT: &[u8] = &[0x03, 0x04, 0xc0, 0x23];

fn info(lac_auth: &[u8]) -> ProxyInfo {
    ProxyInfo {
        initial_received_lcp_confreq: Some(CLIENT.to_vec()),
        last_sent_lcp_confreq: Some(lac(lac_auth)),
        last_received_lcp_confreq: Some(CLIENT.to_vec()),
        ..ProxyInfo::default()
    }
}

fn with_chap(mut i: ProxyInfo) -> ProxyInfo {
    i.authen_type = Some(ProxyAuthenType::Chap);
    i.authen_name = Some(b"user1".to_vec());
    i.authen_challenge = Some(vec![7; 16]);
    i.authen_id = Some(42);
    i.authen_response = Some(vec![9; 16]);
    i
}

fn with_pap(mut i: ProxyInfo) -> ProxyInfo {
    i.authen_type = Some(ProxyAuthenType::Pap);
    i.authen_name = Some(b"user1".to_vec());
    i.authen_id = Some(3);
    i.authen_response = Some(b"pw1".to_vec());
    i
}

fn mode(auth: bool, lcp: bool, force_chap: bool, renegotiate: bool) -> ProxyMode {
    ProxyMode {
        accept_proxy_auth: auth,
        accept_proxy_lcp: lcp,
        force_chap,
        renegotiate_lcp: renegotiate,
    }
}

fn all() -> LcpPolicy {
    LcpPolicy::authenticator(LcpPolicy::all_auth())
}

fn auth_of(d: &Decision) -> &ProxiedAuth {
    match d {
        Decision::Proxied { auth, .. } => auth,
        other => panic!("{other:?}"),
    }
}

#[test]
fn proxied_lcp_takes_each_side_from_its_confreq() {
    let n = proxied_lcp(&lac(CHAP_MD5), &CLIENT, &all()).unwrap();
    assert_eq!(n.peer_mru, 1400);
    assert_eq!(n.our_mru, 1400);
    assert_eq!(n.peer_magic, 0x153c_b37e);
    assert_eq!(n.our_magic, 0xad88_a7e6);
    assert_eq!(n.peer_auth, Some(AuthProtocol::Chap(ChapAlgorithm::Md5)));
    assert_eq!(n.our_auth, None);
    assert_eq!(n.peer_accm, 0);
    assert!(!n.tx_pfc && !n.rx_pfc && !n.tx_acfc && !n.rx_acfc);
    // PFC/ACFC requested by the peer: we may compress towards it.
    let mut client = CLIENT.to_vec();
    client.extend_from_slice(&[0x07, 0x02, 0x08, 0x02]);
    let n = proxied_lcp(&lac(PAP_OPT), &client, &all()).unwrap();
    assert!(n.tx_pfc && n.tx_acfc && !n.rx_pfc && !n.rx_acfc);
}

#[test]
fn proxied_lcp_refuses_what_we_cannot_continue() {
    // Quality-Protocol agreed with the LAC.
    let mut client = CLIENT.to_vec();
    client.extend_from_slice(&[0x04, 0x08, 0xc0, 0x25, 0, 0, 0, 10]);
    assert_eq!(proxied_lcp(&lac(CHAP_MD5), &client, &all()), None);
    // An unknown option (Multilink MRRU).
    let mut client = CLIENT.to_vec();
    client.extend_from_slice(&[0x11, 0x04, 0x05, 0xdc]);
    assert_eq!(proxied_lcp(&lac(CHAP_MD5), &client, &all()), None);
    // A peer MRU below our minimum.
    let small = [0x01, 0x04, 0x00, 0x40];
    assert_eq!(proxied_lcp(&lac(CHAP_MD5), &small, &all()), None);
    // The peer asked the LAC to authenticate itself.
    let mut client = CLIENT.to_vec();
    client.extend_from_slice(PAP_OPT);
    assert_eq!(proxied_lcp(&lac(CHAP_MD5), &client, &all()), None);
    // Malformed: an option running past the end.
    assert_eq!(
        proxied_lcp(&lac(CHAP_MD5), &[0x01, 0x08, 0x05], &all()),
        None
    );
}

#[test]
fn confreq_avps_with_or_without_the_lcp_header() {
    assert_eq!(confreq_options(&CLIENT), Some(&CLIENT[..]));
    let mut whole = vec![1, 1, 0, 20];
    whole.extend_from_slice(&CLIENT);
    assert_eq!(confreq_options(&whole), Some(&CLIENT[..]));
    // A wrong Length or Code is not a packet either.
    whole[3] = 21;
    assert_eq!(confreq_options(&whole), None);
    assert_eq!(confreq_options(&[]), Some(&[][..]));
}

#[test]
fn renegotiation_beats_forced_chap_beats_proxy_authentication() {
    let i = with_chap(info(CHAP_MD5));
    assert_eq!(
        decide(&mode(true, true, true, true), &i, &all()),
        Decision::Negotiate
    );
    assert_eq!(
        auth_of(&decide(&mode(true, true, true, false), &i, &all())),
        &ProxiedAuth::Run(Method::ChapMd5)
    );
    assert_eq!(
        auth_of(&decide(&mode(true, true, false, false), &i, &all())),
        &ProxiedAuth::Verify {
            method: Method::ChapMd5,
            identifier: 42,
            challenge: vec![7; 16],
            name: b"user1".to_vec(),
            response: vec![9; 16],
        }
    );
    // Proxy authentication not accepted: authentication restarts with the LAC's method.
    assert_eq!(
        auth_of(&decide(&mode(false, true, false, false), &i, &all())),
        &ProxiedAuth::Run(Method::ChapMd5)
    );
}

#[test]
fn without_usable_proxy_lcp_we_negotiate() {
    let i = with_chap(info(CHAP_MD5));
    // Off by default (RFC 2661 §9.5: proxy authentication must be possible to turn off).
    assert_eq!(
        decide(&ProxyMode::default(), &i, &all()),
        Decision::Negotiate
    );
    assert_eq!(
        decide(&mode(true, false, false, false), &i, &all()),
        Decision::Negotiate
    );
    let mut missing = i.clone();
    missing.last_received_lcp_confreq = None;
    assert_eq!(
        decide(&mode(true, true, false, false), &missing, &all()),
        Decision::Negotiate
    );
    let mut broken = i;
    broken.last_sent_lcp_confreq = Some(vec![0x03, 0x09, 0xc2]);
    assert_eq!(
        decide(&mode(true, true, false, false), &broken, &all()),
        Decision::Negotiate
    );
}

#[test]
fn forced_chap_is_never_stronger_than_what_the_lac_did() {
    let forced = mode(true, true, true, false);
    // PAP at the LAC: refused.
    assert_eq!(
        decide(&forced, &with_pap(info(PAP_OPT)), &all()),
        Decision::Refuse(ProxyRefusal::ChapNotNegotiated {
            lac: Some(Method::Pap)
        })
    );
    // No authentication at the LAC: refused.
    assert_eq!(
        decide(&forced, &info(&[]), &all()),
        Decision::Refuse(ProxyRefusal::ChapNotNegotiated { lac: None })
    );
    // MS-CHAPv2 at the LAC: we challenge with MS-CHAPv2, the same algorithm.
    assert_eq!(
        auth_of(&decide(&forced, &info(CHAP_MSV2), &all())),
        &ProxiedAuth::Run(Method::MsChapV2)
    );
}

#[test]
fn our_policy_still_applies_to_the_lacs_method() {
    let chap_only = LcpPolicy::authenticator(vec![AuthProtocol::Chap(ChapAlgorithm::Md5)]);
    let proxy = mode(true, true, false, false);
    assert_eq!(
        decide(&proxy, &with_pap(info(PAP_OPT)), &chap_only),
        Decision::Refuse(ProxyRefusal::MethodNotAllowed(Method::Pap))
    );
    // No authentication at the LAC while we require one.
    let mut none = info(&[]);
    none.authen_type = Some(ProxyAuthenType::NoAuthentication);
    assert_eq!(
        decide(&proxy, &none, &chap_only),
        Decision::Refuse(ProxyRefusal::NoAuthenticationAtLac)
    );
    // ... accepted when we require none.
    assert_eq!(
        auth_of(&decide(
            &proxy,
            &none,
            &LcpPolicy::authenticator(Vec::new())
        )),
        &ProxiedAuth::None
    );
    // A protocol we do not run (EAP).
    assert!(matches!(
        decide(&proxy, &info(&[0x03, 0x04, 0xc2, 0x27]), &all()),
        Decision::Refuse(ProxyRefusal::UnsupportedLacProtocol(AuthProtocol::Eap))
    ));
}

#[test]
fn proxy_authentication_avps_are_checked() {
    let proxy = mode(true, true, false, false);
    // PAP proxy on a CHAP LCP.
    let mut i = with_pap(info(CHAP_MD5));
    assert_eq!(
        decide(&proxy, &i, &all()),
        Decision::Refuse(ProxyRefusal::AuthenTypeMismatch {
            authen_type: 3,
            lac: Some(Method::ChapMd5)
        })
    );
    i = with_pap(info(PAP_OPT));
    assert!(matches!(
        auth_of(&decide(&proxy, &i, &all())),
        ProxiedAuth::Verify {
            method: Method::Pap,
            identifier: 3,
            ..
        }
    ));
    // MS-CHAPv1 and textual proxy authentication are not supported.
    i.authen_type = Some(ProxyAuthenType::MsChapV1);
    assert_eq!(
        decide(&proxy, &i, &all()),
        Decision::Refuse(ProxyRefusal::UnsupportedAuthenType(5))
    );
    // The ID's high octet must be 0; the name must be there; MD5 responses are 16 octets.
    let mut c = with_chap(info(CHAP_MD5));
    c.authen_id = Some(0x0100);
    assert_eq!(
        decide(&proxy, &c, &all()),
        Decision::Refuse(ProxyRefusal::BadAuthenAvp("Proxy Authen ID"))
    );
    let mut c = with_chap(info(CHAP_MD5));
    c.authen_name = None;
    assert_eq!(
        decide(&proxy, &c, &all()),
        Decision::Refuse(ProxyRefusal::BadAuthenAvp("Proxy Authen Name"))
    );
    let mut c = with_chap(info(CHAP_MD5));
    c.authen_response = Some(vec![1; 15]);
    assert_eq!(
        decide(&proxy, &c, &all()),
        Decision::Refuse(ProxyRefusal::BadAuthenAvp("Proxy Authen Response"))
    );
    // MS-CHAPv2: a 49-octet Response Value and a 16-octet Challenge.
    let mut c = with_chap(info(CHAP_MSV2));
    assert_eq!(
        decide(&proxy, &c, &all()),
        Decision::Refuse(ProxyRefusal::BadAuthenAvp("Proxy Authen Response"))
    );
    c.authen_response = Some(vec![0; 49]);
    assert!(matches!(
        auth_of(&decide(&proxy, &c, &all())),
        ProxiedAuth::Verify {
            method: Method::MsChapV2,
            ..
        }
    ));
}

#[test]
fn proxy_info_debug_hides_the_password() {
    let text = format!("{:?}", with_pap(info(PAP_OPT)));
    assert!(
        !text.contains("pw1") && !text.contains("[112, 119, 49]"),
        "{text}"
    );
}

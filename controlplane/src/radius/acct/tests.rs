#![allow(clippy::unwrap_used, clippy::panic)]

use proptest::prelude::*;

use super::*;
use crate::radius::auth::TunnelMedium;

fn info() -> SessionInfo {
    SessionInfo {
        acct_session_id: "6500000100000002".to_owned(),
        user_name: b"alice".to_vec(),
        framed_ip_address: Some(Ipv4Addr::new(10, 0, 0, 7)),
        class: vec![b"class-1".to_vec(), b"class-2".to_vec()],
        authentic: Some(Authentic::Radius),
        context: SessionContext {
            nas_identifier: Some("lns1".to_owned()),
            nas_ip_address: Some(Ipv4Addr::new(192, 0, 2, 1)),
            nas_port: Some(42),
            calling_station_id: Some(b"0612345678".to_vec()),
            called_station_id: Some(b"100".to_vec()),
            connect_info: Some("100000000".to_owned()),
            acct_session_id: None,
            tunnel: Some(TunnelContext {
                medium: TunnelMedium::Ipv4,
                client_endpoint: "192.0.2.2".to_owned(),
                server_endpoint: "192.0.2.1".to_owned(),
                assignment_id: Some("7".to_owned()),
                client_auth_id: Some("lac1".to_owned()),
                server_auth_id: None,
            }),
        },
    }
}

fn u32_of(r: &Record, kind: u8) -> Option<u32> {
    r.attributes
        .iter()
        .find(|a| a.kind == kind)
        .and_then(Attribute::as_u32)
}

fn all(r: &Record, kind: u8) -> Vec<&[u8]> {
    r.attributes
        .iter()
        .filter(|a| a.kind == kind)
        .map(|a| a.value.as_slice())
        .collect()
}

#[test]
fn start_carries_the_session_attributes_and_no_counters() {
    let r = session_record(StatusType::Start, &info(), 1_700_000_000, None, None, None);
    assert_eq!(r.status(), Some(StatusType::Start));
    assert_eq!(r.session_id(), Some(&b"6500000100000002"[..]));
    assert_eq!(u32_of(&r, attr::ACCT_STATUS_TYPE), Some(1));
    assert_eq!(all(&r, attr::USER_NAME), vec![&b"alice"[..]]);
    assert_eq!(all(&r, attr::NAS_IDENTIFIER), vec![&b"lns1"[..]]);
    assert_eq!(all(&r, attr::NAS_IP_ADDRESS), vec![&[192, 0, 2, 1][..]]);
    assert_eq!(u32_of(&r, attr::NAS_PORT), Some(42));
    assert_eq!(u32_of(&r, attr::NAS_PORT_TYPE), Some(5), "Virtual");
    assert_eq!(u32_of(&r, attr::SERVICE_TYPE), Some(2), "Framed-User");
    assert_eq!(u32_of(&r, attr::FRAMED_PROTOCOL), Some(1), "PPP");
    assert_eq!(all(&r, attr::FRAMED_IP_ADDRESS), vec![&[10, 0, 0, 7][..]]);
    assert_eq!(all(&r, attr::CALLING_STATION_ID), vec![&b"0612345678"[..]]);
    assert_eq!(all(&r, attr::CALLED_STATION_ID), vec![&b"100"[..]]);
    assert_eq!(
        all(&r, attr::CLASS),
        vec![&b"class-1"[..], &b"class-2"[..]],
        "every Class echoed, in order"
    );
    assert_eq!(u32_of(&r, attr::ACCT_AUTHENTIC), Some(1));
    // RFC 2868 §3.1: tag 1 in the first octet of Tunnel-Type L2TP (3).
    assert_eq!(all(&r, attr::TUNNEL_TYPE), vec![&[1, 0, 0, 3][..]]);
    assert_eq!(
        all(&r, attr::TUNNEL_CLIENT_ENDPOINT),
        vec![&b"\x01192.0.2.2"[..]]
    );
    assert_eq!(all(&r, attr::TUNNEL_CLIENT_AUTH_ID), vec![&b"\x01lac1"[..]]);
    assert_eq!(u32_of(&r, attr::EVENT_TIMESTAMP), Some(1_700_000_000));
    for kind in [
        attr::ACCT_SESSION_TIME,
        attr::ACCT_INPUT_OCTETS,
        attr::ACCT_TERMINATE_CAUSE,
        attr::ACCT_DELAY_TIME,
    ] {
        assert!(all(&r, kind).is_empty(), "{kind}");
    }
}

#[test]
fn stop_splits_octets_into_gigawords_and_carries_the_cause() {
    let traffic = Traffic {
        input_octets: (5 << 32) + 7,
        output_octets: 1_000,
        input_packets: 12,
        output_packets: 13,
    };
    let r = session_record(
        StatusType::Stop,
        &info(),
        1_700_000_100,
        Some(Duration::from_secs(100)),
        Some(&traffic),
        Some(TerminateCause::IdleTimeout),
    );
    assert_eq!(u32_of(&r, attr::ACCT_STATUS_TYPE), Some(2));
    assert_eq!(u32_of(&r, attr::ACCT_SESSION_TIME), Some(100));
    assert_eq!(u32_of(&r, attr::ACCT_INPUT_OCTETS), Some(7));
    assert_eq!(u32_of(&r, attr::ACCT_INPUT_GIGAWORDS), Some(5));
    assert_eq!(u32_of(&r, attr::ACCT_OUTPUT_OCTETS), Some(1_000));
    assert_eq!(u32_of(&r, attr::ACCT_OUTPUT_GIGAWORDS), Some(0));
    assert_eq!(u32_of(&r, attr::ACCT_INPUT_PACKETS), Some(12));
    assert_eq!(u32_of(&r, attr::ACCT_OUTPUT_PACKETS), Some(13));
    assert_eq!(u32_of(&r, attr::ACCT_TERMINATE_CAUSE), Some(4));
}

#[test]
fn terminate_cause_numbers_match_rfc_2866() {
    assert_eq!(TerminateCause::UserRequest.code(), 1);
    assert_eq!(TerminateCause::LostCarrier.code(), 2);
    assert_eq!(TerminateCause::SessionTimeout.code(), 5);
    assert_eq!(TerminateCause::AdminReset.code(), 6);
    assert_eq!(TerminateCause::AdminReboot.code(), 7);
    assert_eq!(TerminateCause::NasReboot.code(), 11);
    assert_eq!(TerminateCause::HostRequest.code(), 18);
    assert_eq!(StatusType::AccountingOn.code(), 7);
    assert_eq!(StatusType::AccountingOff.code(), 8);
    assert_eq!(StatusType::from_code(3), Some(StatusType::InterimUpdate));
    assert_eq!(StatusType::from_code(4), None);
}

#[test]
fn delay_time_is_the_age_of_the_event_at_each_sending() {
    let r = session_record(StatusType::Start, &info(), 1_000, None, None, None);
    let first = r.request_attributes(1_000);
    let later = r.request_attributes(1_042);
    let delay = |a: &[Attribute]| {
        let d: Vec<u32> = a
            .iter()
            .filter(|a| a.kind == attr::ACCT_DELAY_TIME)
            .filter_map(Attribute::as_u32)
            .collect();
        d
    };
    assert_eq!(delay(&first), vec![0]);
    assert_eq!(delay(&later), vec![42]);
    assert_eq!(delay(&r.request_attributes(10)), vec![0], "clock went back");
}

#[test]
fn accounting_on_and_off_carry_the_nas() {
    let ctx = info().context;
    let r = nas_record(StatusType::AccountingOn, &ctx, "65000001", 5);
    assert_eq!(r.status(), Some(StatusType::AccountingOn));
    assert_eq!(all(&r, attr::NAS_IDENTIFIER), vec![&b"lns1"[..]]);
    assert!(all(&r, attr::USER_NAME).is_empty());
    assert!(r.reboot_stop().is_none());
}

#[test]
fn reboot_stop_closes_a_start_or_an_interim_with_nas_reboot() {
    let start = session_record(StatusType::Start, &info(), 1_000, None, None, None);
    let stop = start.reboot_stop().unwrap();
    assert_eq!(stop.status(), Some(StatusType::Stop));
    assert_eq!(stop.session_id(), start.session_id());
    assert_eq!(u32_of(&stop, attr::ACCT_TERMINATE_CAUSE), Some(11));
    assert_eq!(u32_of(&stop, attr::ACCT_SESSION_TIME), Some(0));
    assert_eq!(u32_of(&stop, attr::ACCT_INPUT_OCTETS), Some(0));
    assert_eq!(all(&stop, attr::CLASS).len(), 2);
    assert_eq!(stop.event_time, 1_000);

    let traffic = Traffic {
        input_octets: 300,
        output_octets: 400,
        input_packets: 3,
        output_packets: 4,
    };
    let interim = session_record(
        StatusType::InterimUpdate,
        &info(),
        1_060,
        Some(Duration::from_secs(60)),
        Some(&traffic),
        None,
    );
    let stop = interim.reboot_stop().unwrap();
    assert_eq!(u32_of(&stop, attr::ACCT_STATUS_TYPE), Some(2));
    assert_eq!(u32_of(&stop, attr::ACCT_SESSION_TIME), Some(60));
    assert_eq!(u32_of(&stop, attr::ACCT_INPUT_OCTETS), Some(300));
    assert_eq!(u32_of(&stop, attr::ACCT_OUTPUT_PACKETS), Some(4));
    assert_eq!(
        all(&stop, attr::ACCT_INPUT_OCTETS).len(),
        1,
        "no second copy"
    );
    assert_eq!(all(&stop, attr::ACCT_STATUS_TYPE).len(), 1);
    assert!(stop.reboot_stop().is_none(), "a Stop is not closed again");
}

#[test]
fn decode_rejects_bad_bytes() {
    assert_eq!(Record::decode(&[]), Err(RecordError::Truncated));
    assert_eq!(Record::decode(&[2; 9]), Err(RecordError::BadVersion(2)));
    assert_eq!(Record::decode(&[1, 0, 0]), Err(RecordError::Truncated));
    let mut b = session_record(StatusType::Start, &info(), 1, None, None, None).encode();
    b.push(44);
    b.push(9);
    b.push(b'x');
    assert_eq!(Record::decode(&b), Err(RecordError::BadAttributeLength));
    b.truncate(b.len() - 2);
    assert_eq!(Record::decode(&b), Err(RecordError::Truncated));
}

fn arb_record() -> impl Strategy<Value = Record> {
    (
        any::<u64>(),
        prop::collection::vec(
            (any::<u8>(), prop::collection::vec(any::<u8>(), 0..=253)),
            0..20,
        ),
    )
        .prop_map(|(event_time, attrs)| Record {
            event_time,
            attributes: attrs
                .into_iter()
                .map(|(k, v)| Attribute::new(k, v))
                .collect(),
        })
}

proptest! {
    #[test]
    fn decode_of_encode_is_identity(r in arb_record()) {
        prop_assert_eq!(Record::decode(&r.encode()), Ok(r));
    }

    #[test]
    fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = Record::decode(&bytes);
    }
}

#[test]
fn a_record_reads_back_its_l2tp_key_time_and_traffic() {
    let traffic = Traffic {
        input_octets: (3 << 32) + 9,
        output_octets: 77,
        input_packets: 5,
        output_packets: 6,
    };
    let r = session_record(
        StatusType::InterimUpdate,
        &info(),
        1_000,
        Some(Duration::from_secs(60)),
        Some(&traffic),
        None,
    );
    // info(): Tunnel-Assignment-Id "7", NAS-Port 42.
    assert_eq!(r.l2tp_key(), Some((7, 42)));
    assert_eq!(r.traffic(), Some(traffic));
    assert_eq!(r.session_time(), Some(60));
    let start = session_record(StatusType::Start, &info(), 1_000, None, None, None);
    assert_eq!(start.traffic(), None);
    let mut no_tunnel = info();
    no_tunnel.context.tunnel = None;
    let r2 = session_record(StatusType::Start, &no_tunnel, 1, None, None, None);
    assert_eq!(r2.l2tp_key(), None);

    let later = Traffic {
        input_octets: 10,
        ..traffic
    };
    let stop = r.reboot_stop_at(2_000, Duration::from_secs(1_060), &later);
    assert_eq!(stop.status(), Some(StatusType::Stop));
    assert_eq!(stop.event_time, 2_000);
    assert_eq!(u32_of(&stop, attr::EVENT_TIMESTAMP), Some(2_000));
    assert_eq!(u32_of(&stop, attr::ACCT_SESSION_TIME), Some(1_060));
    assert_eq!(u32_of(&stop, attr::ACCT_TERMINATE_CAUSE), Some(11));
    assert_eq!(stop.traffic(), Some(later));
    for kind in [
        attr::ACCT_STATUS_TYPE,
        attr::ACCT_SESSION_TIME,
        attr::ACCT_INPUT_OCTETS,
        attr::ACCT_INPUT_GIGAWORDS,
        attr::EVENT_TIMESTAMP,
        attr::ACCT_TERMINATE_CAUSE,
    ] {
        assert_eq!(all(&stop, kind).len(), 1, "{kind}");
    }
    assert_eq!(all(&stop, attr::CLASS).len(), 2);
    assert_eq!(stop.l2tp_key(), Some((7, 42)));
}

#[test]
fn long_values_are_cut_to_253_octets() {
    let mut i = info();
    i.user_name = vec![b'u'; 255];
    let r = session_record(StatusType::Start, &i, 1, None, None, None);
    assert_eq!(all(&r, attr::USER_NAME)[0].len(), 253);
    assert!(r.attributes.iter().all(|a| a.value.len() <= 253));
}

#![allow(clippy::unwrap_used, clippy::panic)]

use super::*;
use crate::l2tp::attr::PppDisconnectCause;
use crate::radius::wire::attr;

fn key(session: u16) -> SessionKey {
    SessionKey { tunnel: 1, session }
}

fn config() -> AcctConfig {
    AcctConfig {
        nas: SessionContext {
            nas_identifier: Some("lns".to_owned()),
            ..SessionContext::default()
        },
        interim_interval: Some(Duration::from_secs(60)),
        retry_initial: Duration::from_secs(1),
        retry_max: Duration::from_secs(4),
        spool: SpoolConfig {
            path: None,
            max_records: 10_000,
            max_bytes: 1 << 30,
        },
    }
}

fn info(id: &str) -> SessionInfo {
    SessionInfo {
        acct_session_id: id.to_owned(),
        user_name: b"u".to_vec(),
        ..SessionInfo::default()
    }
}

fn value(attrs: &[Attribute], kind: u8) -> Option<u32> {
    attrs
        .iter()
        .find(|a| a.kind == kind)
        .and_then(Attribute::as_u32)
}

fn id_of(attrs: &[Attribute]) -> String {
    attrs
        .iter()
        .find(|a| a.kind == attr::ACCT_SESSION_ID)
        .map(|a| String::from_utf8_lossy(&a.value).into_owned())
        .unwrap_or_default()
}

/// Sends and acknowledges everything sendable; the requests' attributes.
fn ack_all(core: &mut AcctCore, now: Instant, unix: u64) -> Vec<Vec<Attribute>> {
    core.sync();
    let mut out = Vec::new();
    while let Some((seq, a)) = core.poll_request(now, unix) {
        core.handle_response(now, seq, true);
        out.push(a);
    }
    out
}

fn cdn(result: u16, cause: Option<u16>) -> SessionDownReason {
    SessionDownReason::PeerCdn {
        result,
        error: None,
        message: Vec::new(),
        q931: None,
        ppp_cause: cause.map(|code| PppDisconnectCause {
            code,
            protocol: 0,
            direction: 1,
            message: Vec::new(),
        }),
    }
}

#[test]
fn terminate_causes_follow_rfc_2866() {
    use TerminateCause as T;
    let cases = [
        (DownReason::LcpTerminated, None, false, T::UserRequest),
        (DownReason::EchoTimeout, None, false, T::LostCarrier),
        (DownReason::LcpTimeout, None, false, T::LostCarrier),
        (DownReason::SessionTimeout, None, false, T::SessionTimeout),
        (DownReason::IdleTimeout, None, false, T::IdleTimeout),
        (DownReason::Admin, None, false, T::AdminReset),
        (DownReason::Admin, None, true, T::AdminReboot),
        (DownReason::AuthFailed, None, false, T::UserError),
        (
            DownReason::NcpDown { protocol: 0x8021 },
            None,
            false,
            T::LostService,
        ),
        (DownReason::LowerDown, None, false, T::LostCarrier),
        // The LAC's CDN: its RFC 3145 cause first, then its Result Code.
        (
            DownReason::LowerDown,
            Some(cdn(3, Some(3))),
            false,
            T::UserRequest,
        ),
        (
            DownReason::LowerDown,
            Some(cdn(1, Some(8))),
            false,
            T::LostCarrier,
        ),
        (
            DownReason::LowerDown,
            Some(cdn(3, Some(1))),
            false,
            T::AdminReset,
        ),
        (
            DownReason::LowerDown,
            Some(cdn(1, None)),
            false,
            T::LostCarrier,
        ),
        (
            DownReason::LowerDown,
            Some(cdn(3, None)),
            false,
            T::AdminReset,
        ),
        (
            DownReason::LowerDown,
            Some(cdn(2, None)),
            false,
            T::NasError,
        ),
        (
            DownReason::LowerDown,
            Some(cdn(1, Some(0))),
            false,
            T::LostCarrier,
        ),
        (
            DownReason::LowerDown,
            Some(SessionDownReason::TunnelDown),
            false,
            T::LostService,
        ),
        (
            DownReason::LowerDown,
            Some(SessionDownReason::TunnelDown),
            true,
            T::AdminReboot,
        ),
        (
            DownReason::LowerDown,
            Some(SessionDownReason::LocalClose { result: 3 }),
            false,
            T::AdminReset,
        ),
        (
            DownReason::LowerDown,
            Some(SessionDownReason::SetupTimeout),
            false,
            T::NasError,
        ),
    ];
    for (reason, l2tp, shutting_down, want) in cases {
        assert_eq!(
            terminate_cause(&reason, l2tp.as_ref(), shutting_down),
            want,
            "{reason:?} {l2tp:?} {shutting_down}"
        );
    }
}

#[test]
fn accounting_on_first_then_start_interim_stop() {
    let t0 = Instant::now();
    let mut core = AcctCore::open(config(), 1_000).unwrap();
    assert!(core.poll_request(t0, 1_000).is_none(), "not before a sync");
    let sent = ack_all(&mut core, t0, 1_000);
    assert_eq!(sent.len(), 1);
    assert_eq!(value(&sent[0], attr::ACCT_STATUS_TYPE), Some(7));

    core.session_up(t0, 1_000, key(5), info("S5"), None);
    let sent = ack_all(&mut core, t0, 1_000);
    assert_eq!(value(&sent[0], attr::ACCT_STATUS_TYPE), Some(1));
    assert_eq!(value(&sent[0], attr::ACCT_DELAY_TIME), Some(0));
    assert_eq!(core.poll_timeout(), Some(t0 + Duration::from_secs(60)));

    let traffic = Traffic {
        input_octets: 1_500,
        output_octets: 3_000,
        input_packets: 10,
        output_packets: 20,
    };
    let t1 = t0 + Duration::from_secs(60);
    core.handle_timeout(t1, 1_060, |k| (k == key(5)).then_some(traffic));
    let sent = ack_all(&mut core, t1, 1_060);
    assert_eq!(sent.len(), 1);
    assert_eq!(value(&sent[0], attr::ACCT_STATUS_TYPE), Some(3));
    assert_eq!(value(&sent[0], attr::ACCT_SESSION_TIME), Some(60));
    assert_eq!(value(&sent[0], attr::ACCT_INPUT_OCTETS), Some(1_500));
    assert_eq!(value(&sent[0], attr::ACCT_OUTPUT_PACKETS), Some(20));
    assert_eq!(core.poll_timeout(), Some(t0 + Duration::from_secs(120)));

    let t2 = t0 + Duration::from_secs(90);
    core.l2tp_down(key(5), &cdn(1, None));
    core.session_down(t2, 1_090, key(5), &DownReason::LowerDown, &traffic);
    let sent = ack_all(&mut core, t2, 1_090);
    assert_eq!(value(&sent[0], attr::ACCT_STATUS_TYPE), Some(2));
    assert_eq!(value(&sent[0], attr::ACCT_SESSION_TIME), Some(90));
    assert_eq!(value(&sent[0], attr::ACCT_TERMINATE_CAUSE), Some(2));
    assert_eq!(core.poll_timeout(), None, "no interim timer left");
    assert_eq!(core.sessions(), 0);
    let stats = core.stats();
    assert_eq!(
        (stats.ons, stats.starts, stats.interims, stats.stops),
        (1, 1, 1, 1)
    );
    assert_eq!(stats.responses, 4);
    assert!(core.spool().is_empty());

    core.shutdown(1_100);
    let sent = ack_all(&mut core, t2, 1_100);
    assert_eq!(value(&sent[0], attr::ACCT_STATUS_TYPE), Some(8));
}

#[test]
fn the_access_accept_interval_wins_over_the_configured_one() {
    let t0 = Instant::now();
    let mut core = AcctCore::open(config(), 0).unwrap();
    core.session_up(t0, 0, key(1), info("A"), Some(Duration::from_secs(5)));
    assert_eq!(core.poll_timeout(), Some(t0 + Duration::from_secs(5)));
    let mut no_interim = config();
    no_interim.interim_interval = None;
    let mut core = AcctCore::open(no_interim, 0).unwrap();
    core.session_up(t0, 0, key(1), info("A"), None);
    assert_eq!(core.poll_timeout(), None);
}

#[test]
fn a_stop_never_overtakes_its_start() {
    let t0 = Instant::now();
    let mut core = AcctCore::open(config(), 0).unwrap();
    ack_all(&mut core, t0, 0);
    core.session_up(t0, 0, key(1), info("A"), None);
    core.session_up(t0, 0, key(2), info("B"), None);
    core.session_down(t0, 0, key(1), &DownReason::Admin, &Traffic::default());
    core.sync();
    let (s1, a1) = core.poll_request(t0, 0).unwrap();
    let (s2, a2) = core.poll_request(t0, 0).unwrap();
    assert_eq!((id_of(&a1).as_str(), id_of(&a2).as_str()), ("A", "B"));
    assert!(
        core.poll_request(t0, 0).is_none(),
        "A's Stop waits for A's Start"
    );
    core.handle_response(t0, s2, true);
    assert!(core.poll_request(t0, 0).is_none());
    core.handle_response(t0, s1, true);
    let (_, a3) = core.poll_request(t0, 0).unwrap();
    assert_eq!(id_of(&a3), "A");
    assert_eq!(value(&a3, attr::ACCT_STATUS_TYPE), Some(2));
    assert_eq!(value(&a3, attr::ACCT_TERMINATE_CAUSE), Some(6));
}

#[test]
fn at_most_a_window_in_flight() {
    let t0 = Instant::now();
    let mut core = AcctCore::open(config(), 0).unwrap();
    ack_all(&mut core, t0, 0);
    for i in 0..200 {
        core.session_up(t0, 0, key(i), info(&format!("S{i}")), None);
    }
    core.sync();
    let mut n = 0;
    while core.poll_request(t0, 0).is_some() {
        n += 1;
    }
    assert_eq!(n, WINDOW);
    assert_eq!(core.in_flight(), WINDOW);
}

#[test]
fn after_a_failure_one_record_probes_with_backoff_and_a_fresh_delay_time() {
    let t0 = Instant::now();
    let mut core = AcctCore::open(config(), 1_000).unwrap();
    core.session_up(t0, 1_000, key(1), info("A"), None);
    core.sync();
    let (on, _) = core.poll_request(t0, 1_000).unwrap();
    let (start, first) = core.poll_request(t0, 1_000).unwrap();
    assert_eq!(value(&first, attr::ACCT_DELAY_TIME), Some(0));
    core.handle_response(t0, on, false);
    core.handle_response(t0, start, false);
    assert_eq!(core.stats().timeouts, 2);
    assert!(core.poll_request(t0, 1_000).is_none(), "backing off");
    let retry = core.poll_timeout().unwrap();
    assert!(retry > t0);
    core.handle_timeout(retry, 1_003, |_| None);
    let (seq, again) = core.poll_request(retry, 1_003).unwrap();
    assert_eq!(seq, on, "in order");
    assert!(
        core.poll_request(retry, 1_003).is_none(),
        "one probe at a time"
    );
    core.handle_response(retry, seq, false);
    let retry2 = core.poll_timeout().unwrap();
    assert!(retry2 - retry > retry - t0, "the backoff doubles");
    core.handle_timeout(retry2, 1_009, |_| None);
    let (seq, _) = core.poll_request(retry2, 1_009).unwrap();
    core.handle_response(retry2, seq, true);
    // The server is back: the window opens; the Start goes with the delay of now.
    let (seq, later) = core.poll_request(retry2, 1_009).unwrap();
    assert_eq!(seq, start);
    assert_eq!(value(&later, attr::ACCT_DELAY_TIME), Some(9));
    assert_eq!(value(&again, attr::ACCT_STATUS_TYPE), Some(7));
}

#[test]
fn records_of_sessions_that_never_came_up_are_not_written() {
    let t0 = Instant::now();
    let mut core = AcctCore::open(config(), 0).unwrap();
    ack_all(&mut core, t0, 0);
    core.l2tp_down(key(9), &cdn(1, None));
    core.session_down(t0, 0, key(9), &DownReason::AuthFailed, &Traffic::default());
    assert!(core.spool().is_empty());
    assert_eq!(core.stats().stops, 0);
}

#[test]
fn during_an_outage_a_newer_record_replaces_an_unsent_interim() {
    let t0 = Instant::now();
    let mut core = AcctCore::open(config(), 0).unwrap();
    ack_all(&mut core, t0, 0);
    core.session_up(t0, 0, key(1), info("A"), Some(Duration::from_secs(10)));
    core.sync();
    let (start, _) = core.poll_request(t0, 0).unwrap();
    core.handle_response(t0, start, false);
    let traffic = |octets| Traffic {
        input_octets: octets,
        ..Traffic::default()
    };
    for i in 1..=5u64 {
        let at = t0 + Duration::from_secs(10 * i);
        core.handle_timeout(at, 10 * i, |_| Some(traffic(i * 100)));
    }
    // Start and the last Interim-Update only.
    assert_eq!(core.spool().len(), 2);
    assert_eq!(core.spool_stats().superseded, 4);
    let t1 = t0 + Duration::from_secs(55);
    core.session_down(t1, 55, key(1), &DownReason::IdleTimeout, &traffic(600));
    assert_eq!(
        core.spool().len(),
        2,
        "the Stop replaced the last Interim-Update"
    );
    assert_eq!(core.spool_stats().superseded, 5);
    core.handle_timeout(t1 + Duration::from_secs(60), 120, |_| None);
    let sent = ack_all(&mut core, t1 + Duration::from_secs(60), 120);
    let statuses: Vec<Option<u32>> = sent
        .iter()
        .map(|a| value(a, attr::ACCT_STATUS_TYPE))
        .collect();
    assert_eq!(statuses, vec![Some(1), Some(2)]);
    assert_eq!(value(&sent[1], attr::ACCT_INPUT_OCTETS), Some(600));
    assert_eq!(value(&sent[1], attr::ACCT_TERMINATE_CAUSE), Some(4));
}

#[test]
fn an_interim_in_flight_is_not_replaced() {
    let t0 = Instant::now();
    let mut core = AcctCore::open(config(), 0).unwrap();
    ack_all(&mut core, t0, 0);
    core.session_up(t0, 0, key(1), info("A"), Some(Duration::from_secs(10)));
    ack_all(&mut core, t0, 0);
    core.handle_timeout(t0 + Duration::from_secs(10), 10, |_| None);
    core.sync();
    let (interim, _) = core.poll_request(t0, 10).unwrap();
    core.session_down(t0, 12, key(1), &DownReason::Admin, &Traffic::default());
    assert_eq!(core.spool().len(), 2);
    assert_eq!(core.spool_stats().superseded, 0);
    core.handle_response(t0, interim, true);
    let sent = ack_all(&mut core, t0, 12);
    assert_eq!(value(&sent[0], attr::ACCT_STATUS_TYPE), Some(2));
}

#[test]
fn a_shutdown_closes_the_sessions_left_with_admin_reboot_before_accounting_off() {
    let t0 = Instant::now();
    let mut core = AcctCore::open(config(), 0).unwrap();
    core.session_up(t0, 0, key(2), info("B"), None);
    core.session_up(t0, 0, key(1), info("A"), None);
    ack_all(&mut core, t0, 0);
    let t1 = t0 + Duration::from_secs(30);
    core.close_all(t1, 30, |k| {
        Some(Traffic {
            output_packets: u64::from(k.session),
            ..Traffic::default()
        })
    });
    core.shutdown(30);
    assert_eq!(core.sessions(), 0);
    let sent = ack_all(&mut core, t1, 30);
    type Summary = (String, Option<u32>, Option<u32>, Option<u32>);
    let summary: Vec<Summary> = sent
        .iter()
        .map(|a| {
            (
                id_of(a),
                value(a, attr::ACCT_STATUS_TYPE),
                value(a, attr::ACCT_TERMINATE_CAUSE),
                value(a, attr::ACCT_OUTPUT_PACKETS),
            )
        })
        .collect();
    assert_eq!(summary[0], ("A".to_owned(), Some(2), Some(7), Some(1)));
    assert_eq!(summary[1], ("B".to_owned(), Some(2), Some(7), Some(2)));
    assert_eq!(summary[2].1, Some(8), "Accounting-Off last");
    assert_eq!(value(&sent[0], attr::ACCT_SESSION_TIME), Some(30));
}

#[test]
fn sessions_the_data_plane_still_forwards_are_stopped_when_it_removes_them() {
    let dir = std::env::temp_dir().join(format!("xlns-acct-core-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut cfg = config();
    cfg.spool.path = Some(dir.join("spool"));
    let t0 = Instant::now();
    let with_key = |id: &str, session: u16| {
        let mut i = info(id);
        i.context.nas_port = Some(u32::from(session));
        i.context.tunnel = Some(crate::radius::auth::TunnelContext {
            medium: crate::radius::auth::TunnelMedium::Ipv4,
            client_endpoint: "192.0.2.2".to_owned(),
            server_endpoint: "192.0.2.1".to_owned(),
            assignment_id: Some("1".to_owned()),
            client_auth_id: None,
            server_auth_id: None,
        });
        i
    };
    {
        let mut core = AcctCore::open(cfg.clone(), 1_000).unwrap();
        core.session_up(t0, 1_000, key(1), with_key("A", 1), None);
        core.session_up(t0, 1_000, key(2), with_key("B", 2), None);
        ack_all(&mut core, t0, 1_000);
    }
    // Restart: the data plane still forwards session 1/1 only.
    let mut core =
        AcctCore::open_with_orphans(cfg.clone(), 1_100, |t, s| (t, s) == (1, 1)).unwrap();
    assert_eq!(core.orphans(), 1);
    let sent = ack_all(&mut core, t0, 1_100);
    let summary: Vec<(String, Option<u32>)> = sent
        .iter()
        .map(|a| (id_of(a), value(a, attr::ACCT_STATUS_TYPE)))
        .collect();
    assert_eq!(summary[0], ("B".to_owned(), Some(2)), "B at once");
    assert_eq!(summary[1].1, Some(7), "then Accounting-On");
    assert_eq!(summary.len(), 2);
    let traffic = Traffic {
        input_octets: 123,
        ..Traffic::default()
    };
    core.orphan_gone(1_160, 1, 2, &traffic);
    assert_eq!(core.orphans(), 1, "not an orphan of ours");
    core.orphan_gone(1_160, 1, 1, &traffic);
    assert_eq!(core.orphans(), 0);
    let sent = ack_all(&mut core, t0, 1_160);
    assert_eq!(id_of(&sent[0]), "A");
    assert_eq!(value(&sent[0], attr::ACCT_TERMINATE_CAUSE), Some(11));
    assert_eq!(value(&sent[0], attr::ACCT_INPUT_OCTETS), Some(123));
    assert_eq!(value(&sent[0], attr::ACCT_SESSION_TIME), Some(160));
    drop(core);
    let core = AcctCore::open(cfg, 1_200).unwrap();
    assert_eq!(core.spool().open_sessions(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unencodable_record_is_dropped_not_retried() {
    let t0 = Instant::now();
    let mut core = AcctCore::open(config(), 0).unwrap();
    ack_all(&mut core, t0, 0);
    let mut big = info("A");
    big.class = vec![vec![b'c'; 253]; 20];
    core.session_up(t0, 0, key(1), big, None);
    core.session_up(t0, 0, key(2), info("B"), None);
    core.sync();
    let (a, _) = core.poll_request(t0, 0).unwrap();
    core.handle_answer(t0, a, Answer::Unencodable);
    assert_eq!(core.stats().unencodable, 1);
    assert_eq!(core.spool().len(), 1, "dropped from the spool");
    assert_eq!(core.spool_stats().superseded, 0);
    let (_, b) = core.poll_request(t0, 0).unwrap();
    assert_eq!(id_of(&b), "B", "no backoff: the servers are fine");
}

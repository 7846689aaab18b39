//! The LNS-role [`Endpoint`] against the real xl2tpd LAC messages of the peer-vm capture
//! (tests/golden/peer_vm_frames.rs), and against hand-made peers for the error rows of
//! RFC 2661 §4.2 / §7 (unknown M-bit AVPs, SCCRQ retransmission).
#![allow(clippy::unwrap_used, clippy::panic)]

#[rustfmt::skip]
#[path = "golden/peer_vm_frames.rs"]
#[allow(dead_code)]
mod frames;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use frames::{Captured, FRAMES};
use xlns_controlplane::l2tp::endpoint::{
    Endpoint, EndpointConfig, Event, Gatekeeper, SessionDecision, SessionDownReason, SessionKey,
    TunnelDecision, TunnelDownReason, TunnelId, TunnelParams, TunnelRequest,
};
use xlns_controlplane::l2tp::message::frame;
use xlns_controlplane::l2tp::tunnel::challenge_response;
use xlns_controlplane::l2tp::{Avp, ControlMessage, ControlPacket, MessageType};
use xlns_dataplane::wire::l2tp::Packet;

#[derive(Debug, Default)]
struct Gate {
    secret: Option<Vec<u8>>,
    tunnels: (usize, usize),
    sessions: (usize, usize),
    host: Vec<u8>,
}

impl Gatekeeper for Gate {
    fn admit_tunnel(&mut self, _: Instant, req: &TunnelRequest<'_>) -> TunnelDecision {
        self.tunnels.0 += 1;
        self.host = req.host_name.to_vec();
        TunnelDecision::Accept(TunnelParams {
            secret: self.secret.clone(),
            hide_avps: false,
            hello_interval: Duration::from_secs(60),
            receive_window: 8,
            max_sessions: 10,
        })
    }
    fn admit_session(&mut self, _: Instant, _: SessionKey, _: usize) -> SessionDecision {
        self.sessions.0 += 1;
        SessionDecision::Accept
    }
    fn tunnel_closed(&mut self, _: TunnelId) {
        self.tunnels.1 += 1;
    }
    fn session_closed(&mut self, _: SessionKey) {
        self.sessions.1 += 1;
    }
}

fn lac() -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 1], 1701))
}

fn lns() -> Endpoint {
    Endpoint::new(EndpointConfig::default(), 42)
}

fn case(name: &str) -> Vec<&'static Captured> {
    FRAMES
        .iter()
        .filter(|f| f.case == name && f.from_lac)
        .collect()
}

/// The frame with its header's tunnel and session ids replaced by ours.
fn rewrite(bytes: &[u8], tunnel: u16, session: Option<u16>) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
    if packet.tunnel_id() != 0 {
        packet.set_tunnel_id(tunnel);
    }
    if let Some(session) = session
        && packet.session_id() != 0
    {
        packet.set_session_id(session);
    }
    bytes
}

fn sent(ep: &mut Endpoint, now: Instant, secret: Option<&[u8]>) -> Vec<ControlPacket> {
    let mut out = Vec::new();
    while let Some(tx) = ep.poll_transmit(now) {
        assert_eq!(tx.peer, lac());
        out.push(ControlPacket::parse(&tx.payload, secret).unwrap());
    }
    out
}

fn events(ep: &mut Endpoint) -> Vec<Event> {
    std::iter::from_fn(|| ep.poll_event()).collect()
}

#[test]
fn xl2tpd_lac_chap_kernel_session_comes_up_and_goes_down() {
    let frames = case("chap-kernel");
    let mut ep = lns();
    let mut gate = Gate::default();
    let mut now = Instant::now();
    let mut ours: Option<u16> = None;
    let mut our_session: Option<u16> = None;
    let mut data = 0;
    let mut all_events = Vec::new();
    for f in &frames {
        now += Duration::from_millis(10);
        let bytes = rewrite(f.bytes, ours.unwrap_or(0), our_session);
        let received = ep.handle_datagram(now, lac(), &bytes, &mut gate);
        if let Some(d) = received {
            data += 1;
            assert_eq!(
                d.key,
                SessionKey {
                    tunnel: ours.unwrap(),
                    session: our_session.unwrap()
                }
            );
            // PPP in HDLC-like framing as xl2tpd sends it (address/control ff 03).
            assert_eq!(&d.payload[..2], &[0xff, 0x03], "frame {}", f.frame);
        }
        for p in sent(&mut ep, now + Duration::from_millis(200), None) {
            let Some(m) = p.message() else { continue };
            match m.message_type {
                MessageType::Sccrp => {
                    // Addressed to xl2tpd's Assigned Tunnel ID 30415, session 0: a
                    // tunnel message (RFC 2661 §3.1; xl2tpd drops it otherwise).
                    assert_eq!((p.tunnel_id, p.session_id), (30415, 0));
                    ours = m.assigned_tunnel_id();
                }
                MessageType::Icrp => {
                    assert_eq!((p.tunnel_id, p.session_id), (30415, 31122));
                    our_session = m.assigned_session_id();
                }
                other => panic!("unexpected {other}"),
            }
        }
        all_events.extend(events(&mut ep));
    }
    assert_eq!(gate.host, b"peer-vm");
    let tunnel = ours.unwrap();
    let session = our_session.unwrap();
    assert!(data >= 10, "{data} data messages");
    let up = all_events.iter().find_map(|e| match e {
        Event::SessionUp { key, info } => Some((*key, info.clone())),
        _ => None,
    });
    let (key, info) = up.unwrap();
    assert_eq!(key, SessionKey { tunnel, session });
    // xl2tpd's own session id (its ICRQ's Assigned Session ID); 12358 was the id its
    // LNS assigned, which the captured frames carry and the rewrite replaced.
    assert_eq!(info.peer_session, 31122);
    assert!(info.tx_connect_speed.is_some());
    assert!(info.framing_type.is_some());
    assert!(matches!(
        all_events.first(),
        Some(Event::TunnelUp { peer_tunnel: 30415, host_name, .. }) if host_name == b"peer-vm"
    ));
    assert!(all_events.iter().any(|e| matches!(
        e,
        Event::SessionDown {
            reason: SessionDownReason::PeerCdn { .. },
            ..
        }
    )));
    assert!(matches!(
        all_events.last(),
        Some(Event::TunnelDown {
            reason: TunnelDownReason::PeerStopCcn { .. },
            ..
        })
    ));
    // §5.7: the state is kept, then freed.
    assert_eq!(ep.tunnel_count(), 1);
    now += Duration::from_secs(32);
    ep.handle_timeout(now, &mut gate);
    assert_eq!(ep.tunnel_count(), 0);
    assert_eq!(ep.session_count(), 0);
    assert_eq!(gate.tunnels, (1, 1));
    assert_eq!(gate.sessions, (1, 1));
    assert_eq!(
        ep.stats().malformed_message + ep.stats().malformed_header,
        0
    );
    assert_eq!(
        ep.stats().out_of_sequence,
        0,
        "{:?} {:?}",
        ep.stats(),
        all_events
    );
}

#[test]
fn xl2tpd_sccrq_with_challenge_and_random_vector_gets_the_right_response() {
    let frames = case("secret-hidden");
    let sccrq = frames[0];
    assert!(sccrq.info.contains("SCCRQ"));
    let captured = ControlPacket::parse(sccrq.bytes, Some(b"labsecret")).unwrap();
    let challenge = captured.message().unwrap().challenge().unwrap().to_vec();

    let mut ep = lns();
    let mut gate = Gate {
        secret: Some(b"labsecret".to_vec()),
        ..Gate::default()
    };
    let now = Instant::now();
    ep.handle_datagram(now, lac(), sccrq.bytes, &mut gate);
    let out = sent(&mut ep, now, Some(b"labsecret"));
    let sccrp = out[0].message().unwrap();
    assert_eq!(sccrp.message_type, MessageType::Sccrp);
    // RFC 2661 §4.4.3: MD5(2 || secret || challenge).
    assert_eq!(
        sccrp.challenge_response(),
        Some(&challenge_response(
            MessageType::Sccrp,
            b"labsecret",
            &challenge
        ))
    );
    assert!(sccrp.challenge().is_some(), "we challenge the LAC in turn");
    let ours = sccrp.assigned_tunnel_id().unwrap();

    // The captured SCCCN answers xl2tpd's challenge, not ours: refused with result 4.
    let scccn = rewrite(frames[1].bytes, ours, None);
    ep.handle_datagram(now, lac(), &scccn, &mut gate);
    let out = sent(&mut ep, now, Some(b"labsecret"));
    let stop = out.iter().find_map(|p| p.message()).unwrap();
    assert_eq!(stop.message_type, MessageType::StopCcn);
    assert_eq!(stop.result_code().unwrap().result, 4);
    assert_eq!(ep.stats().auth_failures, 1);
    assert_eq!(ep.stats().stopccn_sent[4], 1);
    assert_eq!(gate.tunnels, (1, 1));
}

#[test]
fn sccrq_retransmission_maps_to_the_same_tunnel() {
    let sccrq = case("chap-kernel")[0].bytes;
    let mut ep = lns();
    let mut gate = Gate::default();
    let now = Instant::now();
    ep.handle_datagram(now, lac(), sccrq, &mut gate);
    assert_eq!(sent(&mut ep, now, None).len(), 1);
    ep.handle_datagram(now + Duration::from_millis(900), lac(), sccrq, &mut gate);
    let out = sent(&mut ep, now + Duration::from_millis(900), None);
    assert_eq!(ep.tunnel_count(), 1);
    assert_eq!(gate.tunnels.0, 1);
    assert_eq!(ep.stats().sccrq_retransmitted, 1);
    // Acknowledged again at once (a ZLB), not answered with a second SCCRP.
    assert_eq!(out.len(), 1);
    assert!(out[0].is_zlb());
    // The same Assigned Tunnel ID from another source port is another tunnel.
    let other = SocketAddr::from(([192, 0, 2, 1], 40000));
    ep.handle_datagram(now, other, sccrq, &mut gate);
    assert_eq!(ep.tunnel_count(), 2);
}

/// A hand-driven LAC: sends messages with the right Ns and Nr.
struct Peer {
    ep: Endpoint,
    gate: Gate,
    now: Instant,
    ns: u16,
    nr: u16,
    ours: u16,
}

impl Peer {
    fn establish() -> Peer {
        let mut p = Peer {
            ep: lns(),
            gate: Gate::default(),
            now: Instant::now(),
            ns: 0,
            nr: 0,
            ours: 0,
        };
        let sccrq = ControlMessage::new(MessageType::Sccrq)
            .with(Avp::ProtocolVersion {
                version: 1,
                revision: 0,
            })
            .with(Avp::HostName(b"hand".to_vec()))
            .with(Avp::FramingCapabilities(
                xlns_controlplane::l2tp::attr::FramingMask(3),
            ))
            .with(Avp::AssignedTunnelId(77));
        let out = p.send(0, &sccrq);
        p.ours = out[0].message().unwrap().assigned_tunnel_id().unwrap();
        p.send(0, &ControlMessage::new(MessageType::Scccn));
        assert!(
            events(&mut p.ep)
                .iter()
                .any(|e| matches!(e, Event::TunnelUp { .. }))
        );
        p
    }

    fn send(&mut self, session: u16, msg: &ControlMessage) -> Vec<ControlPacket> {
        let body = msg.to_bytes(None).unwrap();
        let bytes = frame(self.ours, session, self.ns, self.nr, &body).unwrap();
        self.ns = self.ns.wrapping_add(1);
        self.now += Duration::from_millis(10);
        self.ep
            .handle_datagram(self.now, lac(), &bytes, &mut self.gate);
        let out = sent(&mut self.ep, self.now + Duration::from_millis(200), None);
        for p in &out {
            if p.message().is_some() {
                self.nr = p.ns.wrapping_add(1);
            }
        }
        out
    }
}

fn unknown_m() -> Avp {
    Avp::Unknown {
        vendor_id: 9999,
        attr_type: 1,
        mandatory: true,
        hidden: false,
        reserved: 0,
        value: vec![1, 2],
    }
}

fn icrq(session: u16) -> ControlMessage {
    ControlMessage::new(MessageType::Icrq)
        .with(Avp::AssignedSessionId(session))
        .with(Avp::CallSerialNumber(1))
}

#[test]
fn unknown_mandatory_avp_in_a_tunnel_message_sends_stopccn_2_8() {
    let mut p = Peer::establish();
    let out = p.send(
        0,
        &ControlMessage::new(MessageType::Hello).with(unknown_m()),
    );
    let stop = out.iter().find_map(|p| p.message()).unwrap();
    assert_eq!(stop.message_type, MessageType::StopCcn);
    let rc = stop.result_code().unwrap();
    assert_eq!((rc.result, rc.error.as_ref().map(|e| e.code)), (2, Some(8)));
    assert_eq!(p.ep.stats().unknown_mandatory_avp, 1);
    assert!(events(&mut p.ep).iter().any(|e| matches!(
        e,
        Event::TunnelDown {
            reason: TunnelDownReason::ProtocolError { error: 8, .. },
            ..
        }
    )));
}

#[test]
fn unknown_mandatory_avp_in_a_session_message_sends_cdn_2_8() {
    let mut p = Peer::establish();
    // In an ICRQ: refused, no session.
    let out = p.send(0, &icrq(5).with(unknown_m()));
    let cdn = out.iter().find_map(|p| p.message()).unwrap();
    assert_eq!(cdn.message_type, MessageType::Cdn);
    assert_eq!(out[0].session_id, 5);
    let rc = cdn.result_code().unwrap();
    assert_eq!((rc.result, rc.error.as_ref().map(|e| e.code)), (2, Some(8)));
    assert_eq!(p.ep.session_count(), 0);
    // In an ICCN of an admitted session: CDN 2/8 for that session, the tunnel stays.
    let out = p.send(0, &icrq(6));
    let ours = out[0].message().unwrap().assigned_session_id().unwrap();
    let iccn = ControlMessage::new(MessageType::Iccn)
        .with(Avp::TxConnectSpeed(1000))
        .with(Avp::FramingType(
            xlns_controlplane::l2tp::attr::FramingMask(1),
        ))
        .with(unknown_m());
    let out = p.send(ours, &iccn);
    let cdn = out.iter().find_map(|p| p.message()).unwrap();
    assert_eq!(cdn.message_type, MessageType::Cdn);
    assert_eq!(out[0].session_id, 6);
    assert_eq!(cdn.result_code().unwrap().error.as_ref().unwrap().code, 8);
    assert_eq!(p.ep.session_count(), 0);
    assert_eq!(p.ep.tunnel_count(), 1);
    assert_eq!(p.gate.sessions, (1, 1));
    assert_eq!(p.ep.stats().unknown_mandatory_avp, 2);
}

#[test]
fn out_of_sequence_messages_follow_the_tables() {
    // §7.4.2 "idle, Receive ICCN -> Clean up": ignored, counted.
    let mut p = Peer::establish();
    let iccn = ControlMessage::new(MessageType::Iccn)
        .with(Avp::TxConnectSpeed(1000))
        .with(Avp::FramingType(
            xlns_controlplane::l2tp::attr::FramingMask(1),
        ));
    let out = p.send(1234, &iccn);
    assert!(out.iter().all(|p| p.message().is_none()));
    assert_eq!(p.ep.stats().stray_session_messages, 1);
    // §7.4.2 "idle, Receive ICRP -> Send CDN".
    let icrp = ControlMessage::new(MessageType::Icrp).with(Avp::AssignedSessionId(9));
    let out = p.send(1234, &icrp);
    assert_eq!(out[0].message().unwrap().message_type, MessageType::Cdn);
    // §7.2.1 "established, Receive SCCRQ/SCCRP/SCCCN -> Send StopCCN".
    let out = p.send(0, &ControlMessage::new(MessageType::Scccn));
    let stop = out.iter().find_map(|p| p.message()).unwrap();
    assert_eq!(stop.message_type, MessageType::StopCcn);
    assert_eq!(stop.result_code().unwrap().result, 7);
    assert_eq!(p.ep.tunnel_count(), 1, "kept for the §5.7 wait");
}

#[test]
fn control_for_an_unknown_tunnel_and_malformed_headers_are_counted() {
    let mut ep = lns();
    let mut gate = Gate::default();
    let now = Instant::now();
    let hello = ControlMessage::new(MessageType::Hello)
        .to_bytes(None)
        .unwrap();
    ep.handle_datagram(now, lac(), &frame(999, 0, 0, 0, &hello).unwrap(), &mut gate);
    ep.handle_datagram(now, lac(), &[0xc8, 0x03, 0, 0], &mut gate);
    ep.handle_datagram(
        now,
        lac(),
        &[0x00, 0x02, 0x03, 0xe7, 0, 1, 0xff, 3],
        &mut gate,
    );
    let stats = ep.stats();
    assert_eq!(stats.unknown_tunnel, 1);
    assert_eq!(stats.malformed_header, 1);
    assert_eq!(stats.unknown_tunnel_data, 1);
    assert_eq!(ep.poll_transmit(now), None);
}

#[test]
fn challenge_response_matches_xl2tpd_known_answers() {
    // Frames 157-159: xl2tpd LAC and LNS with secret `labsecret` (RFC 2661 §4.4.3).
    let all: Vec<&Captured> = FRAMES
        .iter()
        .filter(|f| f.case == "secret-hidden")
        .collect();
    let parse = |f: &Captured| {
        ControlPacket::parse(f.bytes, Some(b"labsecret"))
            .unwrap()
            .message()
            .unwrap()
            .clone()
    };
    let (sccrq, sccrp, scccn) = (parse(all[0]), parse(all[1]), parse(all[2]));
    assert_eq!(sccrp.message_type, MessageType::Sccrp);
    assert_eq!(
        sccrp.challenge_response(),
        Some(&challenge_response(
            MessageType::Sccrp,
            b"labsecret",
            sccrq.challenge().unwrap()
        ))
    );
    assert_eq!(scccn.message_type, MessageType::Scccn);
    assert_eq!(
        scccn.challenge_response(),
        Some(&challenge_response(
            MessageType::Scccn,
            b"labsecret",
            sccrp.challenge().unwrap()
        ))
    );
}

mod mutated {
    //! The captured LAC frames, mutated and reordered, into an LNS endpoint: no panic,
    //! bounded state, everything freed once the timers ran out, bookkeeping balanced.
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    struct Input {
        frame: usize,
        /// Rewrite the tunnel id to the n-th tunnel we assigned.
        tunnel: Option<usize>,
        flip: Option<(usize, u8)>,
        advance_ms: u16,
    }

    fn input() -> impl Strategy<Value = Input> {
        (
            0usize..64,
            proptest::option::of(0usize..3),
            proptest::option::of((any::<usize>(), any::<u8>())),
            0u16..5000,
        )
            .prop_map(|(frame, tunnel, flip, advance_ms)| Input {
                frame,
                tunnel,
                flip,
                advance_ms,
            })
    }

    proptest! {
        #[test]
        fn mutated_capture_never_panics_and_is_freed(
            inputs in proptest::collection::vec(input(), 1..60),
            secret in any::<bool>(),
        ) {
            let frames: Vec<&Captured> = FRAMES
                .iter()
                .filter(|f| f.from_lac && matches!(f.case, "chap-kernel" | "secret-hidden"))
                .collect();
            let config = EndpointConfig { max_tunnels: 3, ..EndpointConfig::default() };
            let mut ep = Endpoint::new(config, 5);
            let mut gate = Gate {
                secret: secret.then(|| b"labsecret".to_vec()),
                ..Gate::default()
            };
            let mut now = Instant::now();
            let mut ours: Vec<u16> = Vec::new();
            for input in inputs {
                let f = frames[input.frame % frames.len()];
                let tunnel = input.tunnel.and_then(|i| ours.get(i).copied()).unwrap_or(1);
                let mut bytes = rewrite(f.bytes, tunnel, None);
                if let Some((at, x)) = input.flip {
                    let at = at % bytes.len();
                    bytes[at] ^= x;
                }
                now += Duration::from_millis(u64::from(input.advance_ms));
                let _ = ep.handle_datagram(now, lac(), &bytes, &mut gate);
                if ep.poll_timeout().is_some_and(|t| t <= now) {
                    ep.handle_timeout(now, &mut gate);
                }
                while ep.poll_transmit(now).is_some() {}
                while let Some(e) = ep.poll_event() {
                    if let Event::TunnelUp { tunnel, .. } = e {
                        ours.push(tunnel);
                    }
                }
                for id in ep.tunnel_ids() {
                    if !ours.contains(&id) {
                        ours.push(id);
                    }
                }
                prop_assert!(ep.tunnel_count() <= 3);
                prop_assert!(ep.session_count() <= 30);
            }
            for _ in 0..10_000 {
                let Some(deadline) = ep.poll_timeout() else { break };
                now = now.max(deadline);
                ep.handle_timeout(now, &mut gate);
                while ep.poll_transmit(now).is_some() {}
                while ep.poll_event().is_some() {}
            }
            prop_assert_eq!(ep.tunnel_count(), 0, "{:?} {:?} {:?}", ep.tunnel_ids().iter().map(|&t| ep.tunnel_info(t)).collect::<Vec<_>>(), ep.poll_timeout(), ep.stats());
            prop_assert_eq!(ep.session_count(), 0);
            prop_assert_eq!(gate.tunnels.0, gate.tunnels.1);
            prop_assert_eq!(gate.sessions.0, gate.sessions.1);
        }
    }
}

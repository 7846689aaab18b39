#![no_main]
//! The LNS-role L2TP endpoint (RFC 2661 §5, §7) fed arbitrary datagrams from two peers
//! with a permissive gatekeeper and a virtual clock: no panic, outputs drained, tunnel
//! and session counts bounded by the configured limits.
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use xlns_controlplane::l2tp::endpoint::{
    Endpoint, EndpointConfig, Gatekeeper, SessionDecision, SessionKey, TunnelDecision, TunnelId,
    TunnelParams, TunnelRequest,
};

const MAX_TUNNELS: usize = 8;
const MAX_SESSIONS: u16 = 4;

struct Permissive {
    secret: Option<Vec<u8>>,
    open_tunnels: i64,
    open_sessions: i64,
}

impl Gatekeeper for Permissive {
    fn admit_tunnel(&mut self, _: Instant, _: &TunnelRequest<'_>) -> TunnelDecision {
        self.open_tunnels += 1;
        TunnelDecision::Accept(TunnelParams {
            secret: self.secret.clone(),
            hide_avps: self.secret.is_some(),
            hello_interval: Duration::from_secs(60),
            receive_window: 4,
            max_sessions: MAX_SESSIONS,
        })
    }
    fn admit_session(&mut self, _: Instant, _: SessionKey, _: usize) -> SessionDecision {
        self.open_sessions += 1;
        SessionDecision::Accept
    }
    fn tunnel_closed(&mut self, _: TunnelId) {
        self.open_tunnels -= 1;
    }
    fn session_closed(&mut self, _: SessionKey) {
        self.open_sessions -= 1;
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let config = EndpointConfig {
        max_tunnels: MAX_TUNNELS,
        ..EndpointConfig::default()
    };
    let mut ep = Endpoint::new(config, u64::from(mode));
    let mut gate = Permissive {
        secret: (mode & 1 == 1).then(|| b"fuzz".to_vec()),
        open_tunnels: 0,
        open_sessions: 0,
    };
    let peers = [
        SocketAddr::from(([192, 0, 2, 1], 1701)),
        SocketAddr::from(([192, 0, 2, 2], 1701)),
    ];
    let mut now = Instant::now();
    // Each chunk: [len, peer/advance, bytes...].
    while let [len, ctl, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (datagram, next) = tail.split_at(len);
        rest = next;
        now += Duration::from_millis(u64::from(ctl >> 1) * 100);
        let peer = peers[usize::from(ctl & 1)];
        let _ = ep.handle_datagram(now, peer, datagram, &mut gate);
        if ep.poll_timeout().is_some_and(|t| t <= now) {
            ep.handle_timeout(now, &mut gate);
        }
        while ep.poll_transmit(now).is_some() {}
        while ep.poll_event().is_some() {}
        assert!(ep.tunnel_count() <= MAX_TUNNELS);
        assert!(ep.session_count() <= MAX_TUNNELS * usize::from(MAX_SESSIONS));
    }
    // Let every timer run out: everything is freed and the bookkeeping balances.
    for _ in 0..10_000 {
        let Some(deadline) = ep.poll_timeout() else { break };
        now = now.max(deadline);
        ep.handle_timeout(now, &mut gate);
        while ep.poll_transmit(now).is_some() {}
        while ep.poll_event().is_some() {}
    }
    assert_eq!(ep.tunnel_count(), 0);
    assert_eq!(ep.session_count(), 0);
    assert_eq!((gate.open_tunnels, gate.open_sessions), (0, 0));
});

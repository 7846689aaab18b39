//! The RFC 5176 Dynamic Authorization server of xlnsd (`[dae]`, #7): a socket task around
//! the sans-IO [`Server`], and the control task's side that finds and changes sessions.
//!
//! ```text
//!   UDP socket ([dae] listen, :3799)
//!      | recv_from                         ^ send_to (ACK / NAK, cached answers)
//!      v                                   |
//!   socket task: Server (allow-list, authenticators, Event-Timestamp, duplicates, parse)
//!      | Command (bounded, try_send: full -> NAK 506)     ^ (Pending, Verdict)
//!      v                                                   |  via a oneshot per request
//!   control task: Shell::dynamic_authorization (match sessions, close / change them)
//! ```
//!
//! # Contract
//!
//! * Crypto, duplicate detection and parsing happen in the socket task; the control task
//!   only sees verified, well-formed requests and never waits for the socket.
//! * Disconnect-Request: every matching session is closed as `xlnsctl clear session`
//!   closes it ([`PppSessions::close`](super::ppp::PppSessions::close): LCP
//!   Terminate-Request, then a CDN with Result Code 3 and the RFC 3145 cause
//!   "administrative", down reason [`DownReason::Admin`](crate::ppp::session::DownReason),
//!   which accounting reports as Admin-Reset), after its Class was replaced by the
//!   request's, if it carried any (RFC 5176 §3.6 Note 4). The ACK is sent once the
//!   sessions are closing, not after the LAC acknowledged the CDN.
//! * CoA-Request: Session-Timeout (counted from the session's start, as the
//!   Access-Accept's is: RFC 2865 §5.27 limits the whole session; a value already passed
//!   ends it at once), Idle-Timeout, Class and the rate limits replace the session's
//!   ([`PppSessions::change_authorization`](super::ppp::PppSessions::change_authorization)).
//! * No session matched: NAK 503. A request with Acct-Session-Id finds its session
//!   through an index; any other is matched by a scan over the sessions with PPP state
//!   (O(sessions), in the control task).
//! * Counters go to the control task through a `watch` channel after every datagram and
//!   become `xlns_dae_*` metrics ([`families`]).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use super::Shell;
use super::metrics::{Family, Sample};
use crate::config::{DEFAULT_NAS_IDENTIFIER, DaeConfig, RadiusConfig};
use crate::l2tp::endpoint::SessionKey;
use crate::radius::dae::{
    Client, ErrorCause, IgnoreReason, Kind, NasIdentity, Received, Request, Server, ServerConfig,
    SessionView, Stats, Verdict,
};

/// Requests queued for the control task at most; beyond, NAK 506.
pub const QUEUE: usize = 64;
/// CDN Result Code 3: "Call disconnected for administrative reasons" (RFC 2661 §4.4.2).
const CDN_ADMIN: u16 = 3;

/// A verified request for the control task, answered through `reply`.
#[derive(Debug)]
pub struct Command {
    pub request: Request,
    pub reply: oneshot::Sender<Verdict>,
}

/// The server configuration of `[dae]`, with our NAS identity from `[radius]` (or the
/// default NAS-Identifier) and the listen address.
pub fn server_config(dae: &DaeConfig, radius: Option<&RadiusConfig>) -> ServerConfig {
    let mut nas = NasIdentity {
        identifier: Some(
            radius
                .map_or(DEFAULT_NAS_IDENTIFIER, |r| r.nas_identifier.as_str())
                .as_bytes()
                .to_vec(),
        ),
        ..NasIdentity::default()
    };
    if let Some(ip) = radius.and_then(|r| r.nas_ip_address) {
        nas.ipv4.push(ip);
    }
    match dae.listen.ip() {
        IpAddr::V4(ip) if !ip.is_unspecified() && !nas.ipv4.contains(&ip) => nas.ipv4.push(ip),
        IpAddr::V6(ip) if !ip.is_unspecified() => nas.ipv6.push(ip),
        _ => {}
    }
    ServerConfig {
        clients: dae
            .clients
            .iter()
            .map(|c| Client {
                prefix: c.address,
                secret: c.secret.as_bytes().to_vec(),
                require_message_authenticator: c
                    .require_message_authenticator
                    .unwrap_or(dae.require_message_authenticator),
            })
            .collect(),
        nas,
        require_event_timestamp: dae.require_event_timestamp,
        window: dae.window,
    }
}

/// Binds `[dae] listen` and spawns the socket task: the control task receives the
/// commands and watches the counters.
pub async fn spawn(
    dae: &DaeConfig,
    radius: Option<&RadiusConfig>,
) -> io::Result<(mpsc::Receiver<Command>, watch::Receiver<Stats>)> {
    let socket = UdpSocket::bind(dae.listen).await?;
    info!(listen = %socket.local_addr()?, clients = dae.clients.len(), "dynamic authorization server");
    let (tx, rx) = mpsc::channel(QUEUE);
    let (stats_tx, stats_rx) = watch::channel(Stats::default());
    let server = Server::new(server_config(dae, radius));
    tokio::spawn(serve(socket, server, tx, stats_tx));
    Ok((rx, stats_rx))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn send(socket: &UdpSocket, bytes: Option<Vec<u8>>, to: SocketAddr) {
    if let Some(bytes) = bytes
        && let Err(error) = socket.send_to(&bytes, to).await
    {
        warn!(%to, %error, "DAE answer not sent");
    }
}

/// The socket task; see the module documentation.
pub async fn serve(
    socket: UdpSocket,
    mut server: Server,
    commands: mpsc::Sender<Command>,
    stats: watch::Sender<Stats>,
) {
    let mut buf = vec![0u8; 4096 + 1];
    let (done_tx, mut done_rx) = mpsc::channel(QUEUE);
    loop {
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                let (len, from) = match received {
                    Ok(r) => r,
                    Err(error) => {
                        warn!(%error, "DAE socket");
                        continue;
                    }
                };
                match server.handle(Instant::now(), unix_now(), from, &buf[..len]) {
                    Received::Ignored(reason) => {
                        debug!(%from, reason = reason.label(), "DAE datagram ignored");
                    }
                    Received::Reply(bytes) => send(&socket, Some(bytes), from).await,
                    Received::Apply(pending, request) => {
                        info!(%from, kind = pending.kind.label(), selector = %request.selector, "DAE request");
                        let (reply, answer) = oneshot::channel();
                        match commands.try_send(Command { request: *request, reply }) {
                            Ok(()) => {
                                let done = done_tx.clone();
                                tokio::spawn(async move {
                                    let verdict = answer
                                        .await
                                        .unwrap_or(Err(ErrorCause::ResourcesUnavailable));
                                    let _ = done.send((*pending, verdict)).await;
                                });
                            }
                            Err(_) => {
                                let bytes = server.answer(&pending, Err(ErrorCause::ResourcesUnavailable));
                                send(&socket, bytes, from).await;
                            }
                        }
                    }
                }
            }
            Some((pending, verdict)) = done_rx.recv() => {
                info!(to = %pending.from, kind = pending.kind.label(), ?verdict, "DAE answer");
                let bytes = server.answer(&pending, verdict);
                send(&socket, bytes, pending.from).await;
            }
        }
        stats.send_replace(server.stats().clone());
    }
}

/// [`mpsc::Receiver::recv`] when there is one, else never.
pub async fn recv(commands: &mut Option<mpsc::Receiver<Command>>) -> Option<Command> {
    match commands {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The `xlns_dae_*` metric families of `stats`.
pub fn families(stats: &Stats) -> Vec<(&'static str, &'static str, Family)> {
    let mut answered: Vec<Sample> = Vec::new();
    for kind in [Kind::Disconnect, Kind::Coa] {
        for cause in std::iter::once(None).chain(ErrorCause::ALL.into_iter().map(Some)) {
            let n = stats.answered.get(&(kind, cause)).copied().unwrap_or(0);
            if n == 0 && cause.is_some() {
                continue;
            }
            answered.push((
                vec![
                    ("type", kind.label().to_owned()),
                    (
                        "outcome",
                        if cause.is_some() { "nak" } else { "ack" }.to_owned(),
                    ),
                    (
                        "error_cause",
                        cause.map_or_else(|| "none".to_owned(), |c| c.code().to_string()),
                    ),
                ],
                n as f64,
            ));
        }
    }
    let ignored = IgnoreReason::ALL
        .iter()
        .map(|r| {
            (
                vec![("reason", r.label().to_owned())],
                stats.ignored[r.index()] as f64,
            )
        })
        .collect();
    vec![
        (
            "dae_requests",
            "RFC 5176 requests answered, by type, outcome and Error-Cause.",
            Family::Counter(answered),
        ),
        (
            "dae_ignored",
            "RFC 5176 datagrams discarded unanswered, by reason.",
            Family::Counter(ignored),
        ),
        (
            "dae_duplicates",
            "RFC 5176 retransmissions answered from the duplicate cache.",
            Family::Counter(vec![(vec![], stats.duplicates as f64)]),
        ),
    ]
}

impl Shell {
    /// Applies a verified request (in the control task); see the module documentation.
    pub(crate) fn dynamic_authorization(&mut self, request: &Request) -> Verdict {
        let now = Instant::now();
        // Acct-Session-Id (RFC 5176 §3: SHOULD be present) finds the session in O(1);
        // otherwise every session is looked at.
        let candidates: Vec<SessionKey> = match &request.selector.acct_session_id {
            Some(id) => self
                .ppp
                .session_by_acct_session_id(id)
                .into_iter()
                .collect(),
            None => self.ppp.keys().collect(),
        };
        let keys: Vec<SessionKey> = candidates
            .into_iter()
            .filter(|key| {
                let record = self.telemetry.sessions.get(key);
                let call = self.endpoint.session_info(*key).map(|(_, call)| call);
                let view = SessionView {
                    acct_session_id: self.ppp.acct_session_id(*key).map(str::as_bytes),
                    user_name: record.and_then(|r| r.user.as_deref()).map(str::as_bytes),
                    framed_ip: record.and_then(|r| r.address),
                    nas_port: u32::from(key.session),
                    calling_station_id: call.and_then(|c| c.calling_number.as_deref()),
                    called_station_id: call.and_then(|c| c.called_number.as_deref()),
                };
                request.selector.matches(&view)
            })
            .collect();
        if keys.is_empty() {
            return Err(ErrorCause::SessionContextNotFound);
        }
        for key in &keys {
            self.ppp.change_authorization(*key, &request.change);
            match request.kind {
                Kind::Disconnect => {
                    info!(
                        tunnel = key.tunnel,
                        session = key.session,
                        "Disconnect-Request: closing"
                    );
                    if !self.ppp.close(now, *key, &mut self.endpoint) {
                        self.endpoint.close_session(now, *key, CDN_ADMIN, None);
                    }
                }
                Kind::Coa => info!(
                    tunnel = key.tunnel,
                    session = key.session,
                    change = ?request.change,
                    "CoA-Request applied"
                ),
            }
        }
        Ok(keys.len())
    }
}

//! RADIUS authentication for the shell (#7): a PPP session's `NeedVerify` becomes an
//! Access-Request ([`crate::radius::auth::access_request`]) sent by a spawned task through
//! the [`RadiusClient`]; its answer comes back to the control task through a bounded
//! channel ([`Aaa::recv`], one branch of the shell's `select!`) and is handed to the
//! session ([`super::ppp::PppSessions::verify_answer`]).
//!
//! # Contract
//!
//! * The control task never waits for RADIUS: [`Aaa::verify`] spawns the request and
//!   returns. A spawned task that finds the channel full waits for room (the channel holds
//!   [`ANSWER_QUEUE`] answers), so back-pressure lands on the requests, never on the
//!   control task.
//! * Every request gets exactly one answer: the server's Access-Accept or -Reject
//!   ([`crate::radius::auth::auth_result`]), or a rejection when no server answered
//!   (RFC 2865 §2.5: the NAS gives up) or the client failed; those are counted.
//! * An answer for a session that went down meanwhile, or for an authentication request
//!   the session no longer waits for, is dropped by the session (`handle_verify_result`
//!   ignores stale ids).
//! * Request attributes: the credential, NAS-Identifier / NAS-IP-Address of `[radius]`,
//!   NAS-Port (the L2TP session id), Calling/Called-Station-Id from the L2TP Calling and
//!   Called Number AVPs, Connect-Info from the Tx Connect Speed, the session's
//!   Acct-Session-Id and the RFC 2868 tunnel attributes of its tunnel.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::config::{AaaMode, LacConfig, RadiusConfig};
use crate::l2tp::endpoint::{Endpoint, SessionKey};
use crate::ppp::auth::{AuthResult, VerifyRequest};
use crate::radius::auth::{
    SessionContext, TunnelContext, TunnelMedium, access_request, auth_result, parse_reply,
};
use crate::radius::client::{ClientConfig, RadiusClient, ServerConfig};

use super::metrics::Histogram;

/// Answers waiting for the control task at most.
pub const ANSWER_QUEUE: usize = 1024;

/// An answer to [`Aaa::verify`].
#[derive(Debug)]
pub struct VerifyAnswer {
    pub key: SessionKey,
    /// The [`VerifyRequest::id`] it answers.
    pub id: u64,
    pub result: AuthResult,
}

/// Counters of RADIUS authentication.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AaaStats {
    pub requests: u64,
    pub accepts: u64,
    pub rejects: u64,
    /// No server answered, or the client failed: the session was rejected.
    pub failures: u64,
}

/// The [`ClientConfig`] of `config`'s servers and timers.
pub fn client_config(config: &RadiusConfig) -> ClientConfig {
    let servers = |list: &[crate::config::RadiusServerConfig]| {
        list.iter()
            .map(|s| ServerConfig {
                address: s.address,
                secret: s.secret.as_bytes().to_vec(),
            })
            .collect()
    };
    ClientConfig {
        auth_servers: servers(&config.auth_servers),
        acct_servers: servers(&config.acct_servers),
        initial_rto: config.timeout,
        max_rto: config.max_timeout,
        max_transmissions: config.retries,
        dead_time: config.dead_time,
        ..ClientConfig::default()
    }
}

/// A session's Acct-Session-Id: this instance's start time and a counter, unique across
/// restarts (RFC 2866 §5.5).
#[derive(Debug)]
pub struct SessionIds {
    boot: u32,
    next: u32,
}

impl SessionIds {
    /// Ids of an instance started now.
    pub fn new() -> SessionIds {
        let boot = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(0);
        SessionIds { boot, next: 0 }
    }

    /// The next id: 16 upper-case hex digits.
    pub fn next_id(&mut self) -> String {
        self.next = self.next.wrapping_add(1);
        format!("{:08X}{:08X}", self.boot, self.next)
    }
}

impl Default for SessionIds {
    fn default() -> SessionIds {
        SessionIds::new()
    }
}

/// RADIUS authentication of the shell; see the module documentation.
#[derive(Debug)]
pub struct Aaa {
    config: RadiusConfig,
    /// Each `[[lac]]`'s name and `aaa`.
    lacs: Vec<(String, Option<AaaMode>)>,
    client: RadiusClient,
    tx: mpsc::Sender<VerifyAnswer>,
    rx: mpsc::Receiver<VerifyAnswer>,
    stats: AaaStats,
    /// Access-Request to verified answer, of the requests some server answered.
    round_trip: Arc<Mutex<Histogram>>,
}

impl Aaa {
    /// Spawns the RADIUS client of `config` (on the current tokio runtime).
    pub fn new(config: &RadiusConfig, lacs: &[LacConfig]) -> Aaa {
        let (tx, rx) = mpsc::channel(ANSWER_QUEUE);
        Aaa {
            config: config.clone(),
            lacs: lacs.iter().map(|l| (l.name.clone(), l.aaa)).collect(),
            client: RadiusClient::spawn(client_config(config)),
            tx,
            rx,
            stats: AaaStats::default(),
            round_trip: Arc::default(),
        }
    }

    /// How sessions of the `[[lac]]` named `lac` authenticate (`None`: no entry matched).
    pub fn mode_for(&self, lac: Option<&str>) -> AaaMode {
        lac.and_then(|name| self.lacs.iter().find(|(n, _)| n == name))
            .and_then(|(_, mode)| *mode)
            .unwrap_or(self.config.auth)
    }

    /// The client (for accounting).
    pub fn client(&self) -> &RadiusClient {
        &self.client
    }

    /// `[radius]`.
    pub fn config(&self) -> &RadiusConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> &AaaStats {
        &self.stats
    }

    /// Round trips of the Access-Requests some server answered (queueing,
    /// retransmissions and failovers included).
    pub fn round_trip(&self) -> Histogram {
        self.round_trip
            .lock()
            .map(|h| h.clone())
            .unwrap_or_default()
    }

    /// What the Access-Request says about session `key` besides the credential.
    pub fn context(
        &self,
        key: SessionKey,
        acct_session_id: Option<String>,
        endpoint: &Endpoint,
        local: Option<SocketAddr>,
    ) -> SessionContext {
        let mut ctx = SessionContext {
            nas_identifier: Some(self.config.nas_identifier.clone()),
            nas_ip_address: self.config.nas_ip_address,
            nas_port: Some(u32::from(key.session)),
            acct_session_id,
            ..SessionContext::default()
        };
        if let Some((_, call)) = endpoint.session_info(key) {
            ctx.calling_station_id = call.calling_number.clone();
            ctx.called_station_id = call.called_number.clone();
            ctx.connect_info = call.tx_connect_speed.map(|s| s.to_string());
        }
        if let Some(tunnel) = endpoint.tunnel_info(key.tunnel) {
            let medium = match tunnel.peer.ip() {
                IpAddr::V4(_) => TunnelMedium::Ipv4,
                IpAddr::V6(_) => TunnelMedium::Ipv6,
            };
            ctx.tunnel = Some(TunnelContext {
                medium,
                client_endpoint: tunnel.peer.ip().to_string(),
                server_endpoint: local.map(|a| a.ip().to_string()).unwrap_or_default(),
                assignment_id: Some(key.tunnel.to_string()),
                client_auth_id: (!tunnel.peer_host_name.is_empty())
                    .then(|| String::from_utf8_lossy(&tunnel.peer_host_name).into_owned()),
                server_auth_id: None,
            });
        }
        ctx
    }

    /// Sends the Access-Request for `request` of session `key` from a spawned task; the
    /// answer comes from [`Aaa::recv`].
    pub fn verify(&mut self, key: SessionKey, request: VerifyRequest, ctx: &SessionContext) {
        self.stats.requests += 1;
        let attributes = access_request(&request, ctx);
        let client = self.client.clone();
        let tx = self.tx.clone();
        let round_trip = Arc::clone(&self.round_trip);
        tokio::spawn(async move {
            let sent = Instant::now();
            let result = match client.authenticate(attributes).await {
                Ok(response) => {
                    if let Ok(mut h) = round_trip.lock() {
                        h.observe(sent.elapsed());
                    }
                    auth_result(&request, &parse_reply(&response))
                }
                Err(error) => {
                    warn!(
                        tunnel = key.tunnel,
                        session = key.session,
                        %error,
                        "RADIUS authentication failed: rejecting"
                    );
                    let mut reject = AuthResult::reject();
                    reject.message = Some("authentication service unavailable".to_owned());
                    reject
                }
            };
            let _ = tx
                .send(VerifyAnswer {
                    key,
                    id: request.id,
                    result,
                })
                .await;
        });
    }

    /// The next answer; never ends (the task holds a sender).
    pub async fn recv(&mut self) -> Option<VerifyAnswer> {
        let answer = self.rx.recv().await?;
        if answer.result.accepted {
            self.stats.accepts += 1;
        } else if answer.result.message.as_deref() == Some("authentication service unavailable") {
            self.stats.failures += 1;
        } else {
            self.stats.rejects += 1;
        }
        info!(
            tunnel = answer.key.tunnel,
            session = answer.key.session,
            accepted = answer.result.accepted,
            "RADIUS answer"
        );
        Some(answer)
    }
}

impl Aaa {
    /// Applies a reloaded configuration (SIGHUP): servers, timers, NAS attributes and the
    /// per-LAC `aaa` choice, for the requests sent from now on. A new server list or new
    /// timers get a new client; requests in flight finish on the old one (the spawned
    /// tasks hold it). `None` (`[radius]` removed): new sessions authenticate locally,
    /// the client stays for the sessions that still use it.
    pub fn reconfigure(&mut self, config: Option<&RadiusConfig>, lacs: &[LacConfig]) {
        self.lacs = lacs.iter().map(|l| (l.name.clone(), l.aaa)).collect();
        let Some(config) = config else {
            self.config.auth = AaaMode::Local;
            return;
        };
        let client_changed = config.auth_servers != self.config.auth_servers
            || config.acct_servers != self.config.acct_servers
            || config.timeout != self.config.timeout
            || config.max_timeout != self.config.max_timeout
            || config.retries != self.config.retries
            || config.dead_time != self.config.dead_time;
        if client_changed {
            self.client = RadiusClient::spawn_sharing(
                client_config(config),
                Arc::clone(self.client.totals()),
            );
        }
        self.config = config.clone();
    }
}

/// [`Aaa::recv`] when there is an [`Aaa`], else never.
pub async fn recv(aaa: Option<&mut Aaa>) -> Option<VerifyAnswer> {
    match aaa {
        Some(aaa) => aaa.recv().await,
        None => std::future::pending().await,
    }
}

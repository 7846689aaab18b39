//! The xlnsd shell: tokio around the sans-IO protocol cores.
//!
//! ```text
//!                       UDP socket (l2tp.listen, :1701)
//!                          | recv_from         ^ send_to
//!                          v                   |
//!   +------------------ control task: owns all protocol state -------------------+
//!   |  Endpoint  (every tunnel and session, one timer heap for all of them)      |
//!   |  Gate      (per-LAC policy + admission control, the Endpoint's Gatekeeper) |
//!   |  one sleep_until(endpoint.poll_timeout()): the only timer                  |
//!   +-----------------------------------------------------------------------------+
//!                          ^
//!            shutdown signal (SIGINT / SIGTERM, or the caller's future)
//! ```
//!
//! One task owns the state, so nothing is locked: each datagram or timer expiry is handed
//! to the endpoint, then everything it wants to send is sent and every event it reports is
//! logged and booked with the gate. On shutdown every tunnel gets a StopCCN with result
//! code 6, "requester is being shut down" (RFC 2661 §4.4.2), and the task waits (bounded)
//! until the peers acknowledged them.
//!
//! Data messages (PPP frames) arrive here too while no data plane runs; until PPP exists
//! (issue #4) they are counted and dropped.

pub mod gate;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::l2tp::endpoint::{Endpoint, EndpointConfig, Event, Role};
use crate::l2tp::transport;
use gate::Gate;

/// Largest UDP payload we accept; L2TP control messages are far smaller.
const MAX_DATAGRAM: usize = 65_535;
/// Datagrams handled per wake-up before the task yields to timers and output.
const RECV_BATCH: usize = 64;
/// How long a shutdown waits for peers to acknowledge the StopCCNs.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// StopCCN result code 6: requester is being shut down (RFC 2661 §4.4.2).
const STOPCCN_SHUTTING_DOWN: u16 = 6;

/// Counters of the shell itself.
#[derive(Debug, Clone, Default)]
pub struct ShellStats {
    /// Datagrams received on the control socket.
    pub datagrams_in: u64,
    /// Datagrams sent.
    pub datagrams_out: u64,
    /// `send_to` failures.
    pub send_errors: u64,
    /// Data messages (PPP frames) received and dropped while PPP is not there (issue #4).
    pub data_dropped: u64,
}

/// The endpoint configuration that `config` describes (LNS role).
pub fn endpoint_config(config: &Config) -> EndpointConfig {
    let l2tp = &config.l2tp;
    EndpointConfig {
        role: Role::Lns,
        host_name: l2tp.host_name.as_bytes().to_vec(),
        vendor_name: b"xlns".to_vec(),
        receive_window: l2tp.receive_window,
        hello_interval: l2tp.hello_interval,
        transport: transport::Config {
            rws_local: l2tp.receive_window,
            initial_rto: l2tp.retransmit_initial,
            max_rto: l2tp.retransmit_cap,
            max_retransmits: l2tp.retransmit_max_retries,
            ..transport::Config::default()
        },
        stopccn_wait: l2tp.stopccn_wait,
        setup_timeout: l2tp.half_open_timeout,
        max_tunnels: l2tp.max_tunnels as usize,
    }
}

/// The running daemon: socket, endpoint and gate.
#[derive(Debug)]
pub struct Shell {
    socket: UdpSocket,
    endpoint: Endpoint,
    gate: Gate,
    stats: ShellStats,
}

impl Shell {
    /// Binds the control socket of `config`.
    pub async fn bind(config: &Config) -> io::Result<Shell> {
        let socket = UdpSocket::bind(config.l2tp.listen).await?;
        let seed = rand::random::<u64>();
        Ok(Shell {
            socket,
            endpoint: Endpoint::new(endpoint_config(config), seed),
            gate: Gate::new(config),
            stats: ShellStats::default(),
        })
    }

    /// The address the control socket is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Runs until `shutdown` resolves, then closes every tunnel and returns.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        info!(listen = %self.local_addr()?, "xlnsd control plane running");
        let mut buf = vec![0u8; MAX_DATAGRAM];
        tokio::pin!(shutdown);
        loop {
            let deadline = self.endpoint.poll_timeout();
            tokio::select! {
                _ = &mut shutdown => break,
                received = self.socket.recv_from(&mut buf) => {
                    let (len, peer) = received?;
                    self.datagram(peer, &buf[..len]);
                    for _ in 1..RECV_BATCH {
                        match self.socket.try_recv_from(&mut buf) {
                            Ok((len, peer)) => self.datagram(peer, &buf[..len]),
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) => return Err(e),
                        }
                    }
                }
                _ = sleep_until(deadline) => {
                    self.endpoint.handle_timeout(Instant::now(), &mut self.gate);
                }
            }
            self.flush().await;
        }
        self.shutdown().await;
        Ok(())
    }

    fn datagram(&mut self, peer: SocketAddr, datagram: &[u8]) {
        self.stats.datagrams_in += 1;
        let now = Instant::now();
        if self
            .endpoint
            .handle_datagram(now, peer, datagram, &mut self.gate)
            .is_some()
        {
            self.stats.data_dropped += 1;
        }
    }

    /// Sends what the endpoint has to send and books its events.
    async fn flush(&mut self) {
        let now = Instant::now();
        while let Some(tx) = self.endpoint.poll_transmit(now) {
            match self.socket.send_to(&tx.payload, tx.peer).await {
                Ok(_) => self.stats.datagrams_out += 1,
                Err(e) => {
                    self.stats.send_errors += 1;
                    warn!(peer = %tx.peer, error = %e, "send failed");
                }
            }
        }
        while let Some(event) = self.endpoint.poll_event() {
            self.event(event);
        }
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::TunnelUp {
                tunnel,
                peer,
                peer_tunnel,
                host_name,
            } => {
                self.gate.tunnel_up(tunnel);
                info!(tunnel, peer_tunnel, %peer, host_name = %String::from_utf8_lossy(&host_name), "tunnel up");
            }
            Event::TunnelDown { tunnel, reason } => {
                info!(tunnel, ?reason, "tunnel down");
            }
            Event::SessionUp { key, info } => {
                self.gate.session_up(key);
                info!(
                    tunnel = key.tunnel,
                    session = key.session,
                    peer_session = info.peer_session,
                    calling = %String::from_utf8_lossy(info.calling_number.as_deref().unwrap_or_default()),
                    "session up"
                );
            }
            Event::SessionDown { key, reason } => {
                info!(
                    tunnel = key.tunnel,
                    session = key.session,
                    ?reason,
                    "session down"
                );
            }
        }
    }

    /// StopCCN to every tunnel, then wait (bounded) until they are acknowledged.
    async fn shutdown(&mut self) {
        let now = Instant::now();
        let tunnels = self.endpoint.tunnel_ids();
        info!(
            tunnels = tunnels.len(),
            sessions = self.endpoint.session_count(),
            "shutting down: StopCCN to every tunnel"
        );
        for tunnel in tunnels {
            self.endpoint
                .close_tunnel(now, tunnel, STOPCCN_SHUTTING_DOWN);
        }
        self.flush().await;
        let give_up = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        let mut buf = vec![0u8; MAX_DATAGRAM];
        while !self.endpoint.all_acked() {
            let deadline = self.endpoint.poll_timeout();
            tokio::select! {
                _ = tokio::time::sleep_until(give_up) => {
                    warn!("shutdown: not every StopCCN was acknowledged");
                    break;
                }
                received = self.socket.recv_from(&mut buf) => {
                    let Ok((len, peer)) = received else { break };
                    self.datagram(peer, &buf[..len]);
                }
                _ = sleep_until(deadline) => {
                    self.endpoint.handle_timeout(Instant::now(), &mut self.gate);
                }
            }
            self.flush().await;
        }
        let counters = self.endpoint.stats();
        info!(
            tunnels_established = counters.tunnels_established,
            sessions_established = counters.sessions_established,
            tunnels_freed = counters.tunnels_freed,
            datagrams_in = self.stats.datagrams_in,
            datagrams_out = self.stats.datagrams_out,
            send_errors = self.stats.send_errors,
            "xlnsd stopped"
        );
        debug!(stats = ?self.stats, "shell stopped");
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

//! The xlnsd shell: tokio around the sans-IO protocol cores.
//!
//! ```text
//!                       UDP socket (l2tp.listen, :1701)
//!                          | recv_from         ^ send_to
//!                          v                   |
//!   +------------------ control task: owns all protocol state -------------------+
//!   |  Endpoint     (every tunnel and session, one timer heap for all of them)   |
//!   |  Gate         (per-LAC policy + admission control, the Gatekeeper)         |
//!   |  PppSessions  (PPP of every session, users, pools, one timer heap,         |
//!   |               the data plane Publisher: sessions into shared memory)       |
//!   |  one sleep_until(min of both heaps' tops): the only timer                  |
//!   |  Aaa          (RADIUS: requests are spawned, answers come back through a   |
//!   |               bounded channel, one more select! branch)                    |
//!   |  dae          (RFC 5176 requests verified by their socket task, applied    |
//!   |               here: one more select! branch)                               |
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
//! Data messages (PPP frames) arrive here too: every PPP control frame, and the IPv4/IPv6
//! frames while no data plane runs. They go to the session's PPP ([`ppp::PppSessions`]);
//! its frames go out as data messages through the same socket. The PPP sessions' datagrams
//! are sent before the endpoint's, so that the last frames of a session that goes down
//! (a CHAP Failure, an LCP Terminate-Request) leave before its CDN.

pub mod aaa;
pub mod acct;
pub mod dae;
pub mod dataplane;
pub mod gate;
pub mod metrics;
pub mod mgmt;
pub mod ppp;
pub mod reload;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::config::{AaaMode, Config};
use crate::l2tp::endpoint::{Endpoint, EndpointConfig, Event, Role, SessionKey};
use crate::l2tp::transport;
use crate::ppp::users::Users;
use gate::Gate;
use ppp::PppSessions;

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
    /// Data messages (PPP frames) received and handed to PPP.
    pub data_messages: u64,
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
    ppp: PppSessions,
    stats: ShellStats,
    telemetry: metrics::Telemetry,
    /// Where snapshots for `/metrics` are published (none without `[management] metrics`).
    snapshots: Option<watch::Sender<Arc<metrics::Snapshot>>>,
    /// Requests of the management socket (none without `[management] socket`).
    requests: Option<mpsc::Receiver<mgmt::Request>>,
    /// RADIUS (`[radius]`), if configured.
    aaa: Option<aaa::Aaa>,
    /// The running configuration and how to reload it (SIGHUP).
    reload: reload::Reloader,
    /// RADIUS accounting (`[radius]` with an `acct_server`).
    acct: Option<acct::Accounting>,
    /// Requests of the Dynamic Authorization server (`[dae]`), and its counters.
    dae: Option<mpsc::Receiver<dae::Command>>,
    dae_stats: Option<watch::Receiver<crate::radius::dae::Stats>>,
}

impl Shell {
    /// Binds the control socket of `config`; PPP sessions authenticate against `users`
    /// and get addresses from `config`'s pools.
    pub async fn bind(config: &Config, users: Users) -> io::Result<Shell> {
        let pools = config
            .build_pools()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let socket = UdpSocket::bind(config.l2tp.listen).await?;
        let rcvbuf = grow_receive_buffer(&socket, SOCKET_BUFFER);
        info!(rcvbuf, "control socket receive buffer");
        let seed = rand::random::<u64>();
        let mut ppp = PppSessions::new(config, users, pools);
        if let Some(dp) = &config.dataplane {
            ppp.set_dataplane(dataplane::Publisher::open(
                dp,
                socket.local_addr()?,
                Instant::now(),
            )?);
        }
        let acct = match &config.radius {
            Some(radius) if !radius.acct_servers.is_empty() => {
                ppp.enable_accounting();
                let ppp = &ppp;
                Some(acct::Accounting::new(
                    radius,
                    &config.lacs,
                    |tunnel, session| ppp.orphan_traffic(SessionKey { tunnel, session }).is_some(),
                )?)
            }
            _ => None,
        };
        let snapshots = match config.management.metrics {
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr).await?;
                info!(listen = %listener.local_addr()?, "metrics endpoint");
                let (tx, rx) = watch::channel(Arc::new(metrics::Snapshot::default()));
                tokio::spawn(metrics::serve(listener, rx));
                Some(tx)
            }
            None => None,
        };
        let requests = match &config.management.socket {
            Some(path) => {
                let listener = mgmt::bind(path)?;
                info!(socket = %path.display(), "management socket");
                let (tx, rx) = mpsc::channel(mgmt::QUEUE);
                tokio::spawn(mgmt::serve(listener, tx));
                Some(rx)
            }
            None => None,
        };
        let (dae, dae_stats) = match &config.dae {
            Some(d) => {
                let (commands, stats) = dae::spawn(d, config.radius.as_ref()).await?;
                (Some(commands), Some(stats))
            }
            None => (None, None),
        };
        Ok(Shell {
            socket,
            endpoint: Endpoint::new(endpoint_config(config), seed),
            gate: Gate::new(config),
            ppp,
            stats: ShellStats::default(),
            telemetry: metrics::Telemetry::default(),
            snapshots,
            requests,
            aaa: config
                .radius
                .as_ref()
                .map(|radius| aaa::Aaa::new(radius, &config.lacs)),
            reload: reload::Reloader::new(config),
            acct,
            dae,
            dae_stats,
        })
    }

    /// PPP of every session (counters, pools).
    pub fn ppp(&self) -> &PppSessions {
        &self.ppp
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
        let mut tick = tokio::time::interval(SNAPSHOT_INTERVAL);
        let mut requests = self.requests.take();
        let mut reloads = self.reload.trigger.take();
        let mut dae_commands = self.dae.take();
        loop {
            let deadline = self.next_deadline();
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tick.tick(), if self.snapshots.is_some() => self.publish_snapshot(),
                Some(request) = recv_request(&mut requests) => {
                    let answer = self.manage(&request.args);
                    let _ = request.reply.send(answer);
                }
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
                _ = sleep_until(deadline) => self.timeout(),
                Some(()) = reload::triggered(&mut reloads) => {
                    let _ = self.reload();
                }
                Some(answer) = acct::recv(self.acct.as_mut()) => {
                    if let Some(acct) = &mut self.acct {
                        acct.handle_answer(answer);
                    }
                }
                Some(command) = dae::recv(&mut dae_commands) => {
                    let verdict = self.dynamic_authorization(&command.request);
                    let _ = command.reply.send(verdict);
                }
                Some(answer) = aaa::recv(self.aaa.as_mut()) => {
                    self.ppp.verify_answer(
                        Instant::now(),
                        answer.key,
                        answer.id,
                        answer.result,
                        &mut self.endpoint,
                    );
                }
            }
            self.flush().await;
        }
        self.shutdown().await;
        Ok(())
    }

    fn publish_snapshot(&mut self) {
        if self.snapshots.is_some() {
            let snapshot = Arc::new(self.snapshot());
            if let Some(tx) = &self.snapshots {
                tx.send_replace(snapshot);
            }
        }
    }

    /// The earliest of the endpoint's, the PPP sessions' and accounting's deadlines.
    fn next_deadline(&mut self) -> Option<Instant> {
        let acct = self.acct.as_ref().and_then(|a| a.core().poll_timeout());
        [self.endpoint.poll_timeout(), self.ppp.poll_timeout(), acct]
            .into_iter()
            .flatten()
            .min()
    }

    fn timeout(&mut self) {
        let now = Instant::now();
        self.endpoint.handle_timeout(
            now,
            &mut metrics::Recorder {
                gate: &mut self.gate,
                telemetry: &mut self.telemetry,
            },
        );
        self.ppp.handle_timeout(now, &mut self.endpoint);
        if let Some(acct) = &mut self.acct {
            let ppp = &self.ppp;
            acct.core_mut()
                .handle_timeout(now, acct::unix_now(), |key| ppp.traffic(key));
        }
    }

    fn datagram(&mut self, peer: SocketAddr, datagram: &[u8]) {
        self.stats.datagrams_in += 1;
        let now = Instant::now();
        let mut gate = metrics::Recorder {
            gate: &mut self.gate,
            telemetry: &mut self.telemetry,
        };
        if let Some(data) = self
            .endpoint
            .handle_datagram(now, peer, datagram, &mut gate)
        {
            self.stats.data_messages += 1;
            self.ppp
                .handle_frame(now, data.key, data.payload, &mut self.endpoint);
        }
        // Book the endpoint's events now, not at the end of the receive batch: a LAC sends
        // the subscriber's first LCP Configure-Request right behind its ICCN, often in the
        // same batch, and the PPP session must exist when it arrives (else it is dropped
        // and LCP waits a restart timer, 3 s).
        while let Some(event) = self.endpoint.poll_event() {
            self.event(now, event);
        }
    }

    /// Sends what PPP and the endpoint have to send and books the endpoint's events, until
    /// neither has more (an event may make PPP send, PPP may make the endpoint send).
    async fn flush(&mut self) {
        loop {
            let now = Instant::now();
            while let Some(tx) = self.ppp.poll_transmit() {
                self.send(&tx.payload, tx.peer).await;
            }
            while let Some(tx) = self.endpoint.poll_transmit(now) {
                self.send(&tx.payload, tx.peer).await;
            }
            let mut events = false;
            while let Some(note) = self.ppp.poll_note() {
                self.telemetry.ppp_note(note);
            }
            while let Some(event) = self.endpoint.poll_event() {
                events = true;
                self.event(now, event);
            }
            self.send_verifications();
            if !events {
                break;
            }
        }
        self.account();
    }

    /// Books the PPP sessions' accounting notes, then syncs the spool and sends.
    fn account(&mut self) {
        let Some(acct) = &mut self.acct else {
            return;
        };
        let local = self.socket.local_addr().ok();
        let now = Instant::now();
        while let Some((tunnel, session, c)) = self
            .ppp
            .dataplane_mut()
            .and_then(|d| d.poll_removed_orphan())
        {
            acct.core_mut()
                .orphan_gone(acct::unix_now(), tunnel, session, &ppp::traffic_of(&c));
        }
        while let Some(note) = self.ppp.poll_acct() {
            let (aaa, endpoint) = (&self.aaa, &self.endpoint);
            acct.note(now, note, |key, id| {
                aaa.as_ref()
                    .map(|a| a.context(key, Some(id.to_owned()), endpoint, local))
                    .unwrap_or_default()
            });
        }
        acct.dispatch();
    }

    /// Hands the sessions' RADIUS verifications to the client (spawned, never awaited).
    fn send_verifications(&mut self) {
        let local = self.socket.local_addr().ok();
        while let Some((key, request, acct_session_id)) = self.ppp.poll_verify() {
            match &mut self.aaa {
                Some(aaa) => {
                    let ctx = aaa.context(key, acct_session_id, &self.endpoint, local);
                    aaa.verify(key, request, &ctx);
                }
                None => warn!(
                    tunnel = key.tunnel,
                    session = key.session,
                    "RADIUS verification without [radius]"
                ),
            }
        }
    }

    async fn send(&mut self, payload: &[u8], peer: SocketAddr) {
        match self.socket.send_to(payload, peer).await {
            Ok(_) => self.stats.datagrams_out += 1,
            Err(e) => {
                self.stats.send_errors += 1;
                warn!(%peer, error = %e, "send failed");
            }
        }
    }

    fn event(&mut self, now: Instant, event: Event) {
        match event {
            Event::TunnelUp {
                tunnel,
                peer,
                peer_tunnel,
                host_name,
            } => {
                self.gate.tunnel_up(tunnel);
                self.telemetry.tunnel_up(now, tunnel);
                info!(tunnel, peer_tunnel, %peer, host_name = %String::from_utf8_lossy(&host_name), "tunnel up");
            }
            Event::TunnelDown { tunnel, reason } => {
                self.telemetry.tunnel_down(tunnel);
                info!(tunnel, ?reason, "tunnel down");
            }
            Event::SessionUp { key, info } => {
                self.gate.session_up(key);
                self.telemetry.session_up(now, key);
                info!(
                    tunnel = key.tunnel,
                    session = key.session,
                    peer_session = info.peer_session,
                    calling = %String::from_utf8_lossy(info.calling_number.as_deref().unwrap_or_default()),
                    "session up"
                );
                let mode = self.gate.proxy_mode(key);
                let aaa = self
                    .aaa
                    .as_ref()
                    .map_or(AaaMode::Local, |a| a.mode_for(self.gate.lac_name(key)));
                self.ppp
                    .session_up_with(now, key, &info, mode, aaa, &mut self.endpoint);
                if let Some(acct) = &self.acct
                    && !acct.accounts(self.gate.lac_name(key))
                {
                    self.ppp.skip_accounting(key);
                }
            }
            Event::SessionDown { key, reason } => {
                info!(
                    tunnel = key.tunnel,
                    session = key.session,
                    ?reason,
                    "session down"
                );
                if let Some(acct) = &mut self.acct {
                    acct.core_mut().l2tp_down(key, &reason);
                }
                self.ppp.session_down(now, key, &mut self.endpoint);
                self.telemetry.session_down(key, &reason);
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
            ppp_sessions = self.ppp.len(),
            "shutting down: LCP Terminate and CDN to every session, StopCCN to every tunnel"
        );
        if let Some(acct) = &mut self.acct {
            acct.core_mut().begin_shutdown();
        }
        self.ppp.close_all(now, &mut self.endpoint);
        for tunnel in tunnels {
            self.endpoint
                .close_tunnel(now, tunnel, STOPCCN_SHUTTING_DOWN);
        }
        self.flush().await;
        let give_up = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        let mut buf = vec![0u8; MAX_DATAGRAM];
        while !self.endpoint.all_idle() {
            let deadline = self.next_deadline();
            tokio::select! {
                _ = tokio::time::sleep_until(give_up) => {
                    warn!("shutdown: not every StopCCN was acknowledged");
                    break;
                }
                received = self.socket.recv_from(&mut buf) => {
                    let Ok((len, peer)) = received else { break };
                    self.datagram(peer, &buf[..len]);
                }
                _ = sleep_until(deadline) => self.timeout(),
            }
            self.flush().await;
        }
        if let Some(acct) = &mut self.acct {
            let ppp = &self.ppp;
            acct.core_mut()
                .close_all(Instant::now(), acct::unix_now(), |key| {
                    ppp.traffic(key).or_else(|| ppp.orphan_traffic(key))
                });
            acct.drain(SHUTDOWN_GRACE).await;
        }
        let counters = self.endpoint.stats();
        info!(
            tunnels_established = counters.tunnels_established,
            sessions_established = counters.sessions_established,
            tunnels_freed = counters.tunnels_freed,
            datagrams_in = self.stats.datagrams_in,
            datagrams_out = self.stats.datagrams_out,
            send_errors = self.stats.send_errors,
            bypassed_dataplane = self.ppp.stats().bypassed_dataplane,
            "xlnsd stopped"
        );
        debug!(stats = ?self.stats, "shell stopped");
    }
}

/// Receive buffer asked for on the control socket. The kernel default (about 208 KiB)
/// overflows when LACs send bursts (a LAC clearing a tunnel sends a CDN per session at
/// once), and every datagram lost there costs the peer a retransmission timeout.
const SOCKET_BUFFER: usize = 8 << 20;

/// Raises the socket's receive buffer to `bytes`: SO_RCVBUFFORCE where we may (root or
/// CAP_NET_ADMIN, past net.core.rmem_max), else SO_RCVBUF (capped by rmem_max). Returns
/// the size the kernel reports.
fn grow_receive_buffer(socket: &UdpSocket, bytes: usize) -> usize {
    use std::os::fd::AsRawFd;
    let fd = socket.as_raw_fd();
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    let set = |option| {
        // SAFETY: fd is a valid socket for the duration of the call; value is a c_int.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                option,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        }
    };
    if set(libc::SO_RCVBUFFORCE) != 0 {
        let _ = set(libc::SO_RCVBUF);
    }
    let mut got: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: got and len are valid for writes of the sizes given.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&mut got as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc == 0 { got.max(0) as usize } else { 0 }
}

/// How often the metrics snapshot is rebuilt.
const SNAPSHOT_INTERVAL: Duration = Duration::from_secs(1);

async fn recv_request(
    requests: &mut Option<mpsc::Receiver<mgmt::Request>>,
) -> Option<mgmt::Request> {
    match requests {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

//! The RADIUS client: a sans-IO core ([`ClientCore`]) and a thin tokio driver
//! ([`RadiusClient`]).
//!
//! The core takes requests ([`ClientCore::submit`]), datagrams
//! ([`ClientCore::handle_datagram`]) and the passing of time
//! ([`ClientCore::handle_timeout`]), and is polled for datagrams to send
//! ([`ClientCore::poll_transmit`]), finished requests ([`ClientCore::poll_event`]) and
//! its next deadline ([`ClientCore::poll_timeout`]). It never touches a socket or a
//! clock. Sockets are named by [`SocketId`]; the driver opens one the first time a
//! [`Transmit`] names it and keeps it for the life of the client (never a socket per
//! request).
//!
//! Rules:
//! * Identifiers: each socket has 256 Identifiers per server (RFC 2865 §3); a request
//!   holds one while it is outstanding on that server. When every socket of a server is
//!   full, another socket is opened (up to [`ClientConfig::max_sockets_per_server`]),
//!   then requests wait in a bounded queue.
//! * A response is matched by socket, Identifier and source address, then verified
//!   with the request's authenticator and the server's secret: Response Authenticator
//!   (RFC 2865 §3) and Message-Authenticator (RFC 2869 §5.14), which is required on
//!   every Access-Accept/Reject/Challenge (BlastRADIUS, CVE-2024-3596) and on
//!   Accounting-Response when [`ClientConfig::require_message_authenticator_accounting`].
//!   Anything else is silently discarded (RFC 2865 §3) and counted; the request keeps
//!   waiting for a valid answer.
//! * Every request carries a Message-Authenticator (RFC 2869 §5.14). User-Password is
//!   given in clear text and hidden per server (RFC 2865 §5.2).
//! * Retransmission to the same server reuses the Identifier and the packet (RFC 2865
//!   §2.5), after `initial_rto`, doubling up to `max_rto`, `max_transmissions` in all.
//!   Then the server has timed out for this request: the request fails over to the next
//!   server of its service that it has not tried, alive ones first. A server that times
//!   out `dead_after` requests in a row is dead for `dead_time` (skipped while another
//!   is alive); any valid response brings it back. When every server was tried the
//!   request fails with [`RequestError::Timeout`].

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

use super::wire::{
    self, AUTHENTICATOR_LEN, Attribute, Code, Packet, Repr, attr, hide_password, sign_request,
    verify_response,
};

/// A server and its shared secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerConfig {
    pub address: SocketAddr,
    pub secret: Vec<u8>,
}

impl core::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "ServerConfig {{ address: {}, secret: <redacted> }}",
            self.address
        )
    }
}

/// Client configuration.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Authentication servers, in order of preference.
    pub auth_servers: Vec<ServerConfig>,
    /// Accounting servers, in order of preference.
    pub acct_servers: Vec<ServerConfig>,
    /// First retransmission timeout.
    pub initial_rto: Duration,
    /// Retransmission timeout cap.
    pub max_rto: Duration,
    /// Transmissions of one request to one server (the first one included).
    pub max_transmissions: u32,
    /// Consecutive request timeouts after which a server is dead.
    pub dead_after: u32,
    /// How long a dead server is skipped.
    pub dead_time: Duration,
    /// Sockets per server (each holds 256 outstanding requests).
    pub max_sockets_per_server: usize,
    /// Requests waiting for an Identifier; beyond it `submit` fails with `QueueFull`.
    pub max_queue: usize,
    /// Require Message-Authenticator on Accounting-Response too (RFC 2866 servers such
    /// as FreeRADIUS 3.2 do not send one; Access responses always require it).
    pub require_message_authenticator_accounting: bool,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            auth_servers: Vec::new(),
            acct_servers: Vec::new(),
            initial_rto: Duration::from_secs(2),
            max_rto: Duration::from_secs(16),
            max_transmissions: 3,
            dead_after: 3,
            dead_time: Duration::from_secs(60),
            max_sockets_per_server: 16,
            max_queue: 65_536,
            require_message_authenticator_accounting: false,
        }
    }
}

/// Which server list a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// Access-Request to `auth_servers`.
    Auth,
    /// Accounting-Request to `acct_servers`.
    Acct,
}

impl Service {
    const fn code(self) -> Code {
        match self {
            Service::Auth => Code::AccessRequest,
            Service::Acct => Code::AccountingRequest,
        }
    }
}

/// A request handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// A client socket, opened by the driver the first time it is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId(pub usize);

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub socket: SocketId,
    pub destination: SocketAddr,
    pub payload: Vec<u8>,
}

/// A verified response.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    /// The server that answered.
    pub server: SocketAddr,
    /// The response.
    pub packet: Repr,
    /// The Request Authenticator of the request it answers (to decrypt MS-MPPE keys,
    /// RFC 2548 §2.4.2).
    pub request_authenticator: [u8; AUTHENTICATOR_LEN],
    /// The server's secret (same use).
    pub secret: Vec<u8>,
}

impl core::fmt::Debug for Response {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Response")
            .field("server", &self.server)
            .field("packet", &self.packet)
            .finish_non_exhaustive()
    }
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// No server is configured for the service.
    #[error("no RADIUS server configured")]
    NoServers,
    /// Every server was tried and none answered validly.
    #[error("no RADIUS server answered")]
    Timeout,
    /// The request cannot be encoded (too long, ...).
    #[error("cannot encode request: {0}")]
    Encode(wire::Error),
    /// Too many requests wait for an Identifier.
    #[error("request queue full")]
    QueueFull,
    /// The driver is gone.
    #[error("RADIUS client stopped")]
    Stopped,
}

/// A finished request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub id: RequestId,
    pub result: Result<Response, RequestError>,
}

/// Counters of the client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub requests: u64,
    pub transmissions: u64,
    pub retransmissions: u64,
    /// A server did not answer one request after all its transmissions.
    pub server_timeouts: u64,
    /// A request moved to another server.
    pub failovers: u64,
    /// Servers declared dead.
    pub servers_marked_dead: u64,
    pub responses: u64,
    pub failed_requests: u64,
    /// Datagrams that are not RADIUS packets.
    pub malformed: u64,
    /// No outstanding request has this socket and Identifier (late or duplicate).
    pub unmatched: u64,
    /// From another address than the request's server.
    pub wrong_source: u64,
    /// A code that does not answer the request.
    pub bad_code: u64,
    /// Wrong Response Authenticator.
    pub bad_authenticator: u64,
    /// Responses without the required Message-Authenticator (BlastRADIUS).
    pub missing_message_authenticator: u64,
    /// Responses with a wrong Message-Authenticator.
    pub bad_message_authenticator: u64,
    /// Requests that waited for an Identifier.
    pub queued: u64,
}

struct SocketState {
    id: SocketId,
    used: [u64; 4],
    next: u8,
}

impl SocketState {
    fn alloc(&mut self) -> Option<u8> {
        for k in 0..=255u8 {
            let i = self.next.wrapping_add(k);
            let (w, b) = (usize::from(i / 64), i % 64);
            if self.used[w] & (1 << b) == 0 {
                self.used[w] |= 1 << b;
                self.next = i.wrapping_add(1);
                return Some(i);
            }
        }
        None
    }

    fn free(&mut self, i: u8) {
        self.used[usize::from(i / 64)] &= !(1 << (i % 64));
    }
}

struct Server {
    config: ServerConfig,
    service: Service,
    consecutive_timeouts: u32,
    dead_until: Option<Instant>,
    sockets: Vec<SocketState>,
}

struct Attempt {
    server: usize,
    socket: usize,
    identifier: u8,
    authenticator: [u8; AUTHENTICATOR_LEN],
    packet: Vec<u8>,
    transmissions: u32,
    rto: Duration,
    deadline: Instant,
}

struct Pending {
    service: Service,
    attributes: Vec<Attribute>,
    tried: Vec<usize>,
    attempt: Option<Attempt>,
}

/// The sans-IO client core (see the module documentation).
pub struct ClientCore {
    config: ClientConfig,
    servers: Vec<Server>,
    pending: HashMap<RequestId, Pending>,
    by_identifier: HashMap<(SocketId, u8), RequestId>,
    timers: BTreeSet<(Instant, RequestId)>,
    queue: VecDeque<RequestId>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Outcome>,
    next_request: u64,
    next_socket: usize,
    rng: StdRng,
    counters: Counters,
}

impl core::fmt::Debug for ClientCore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientCore")
            .field("pending", &self.pending.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl ClientCore {
    /// A core whose Request Authenticators come from the operating system's RNG.
    pub fn new(config: ClientConfig) -> ClientCore {
        ClientCore::with_rng(config, StdRng::from_os_rng())
    }

    /// A core with a seeded RNG (tests).
    pub fn with_seed(config: ClientConfig, seed: u64) -> ClientCore {
        ClientCore::with_rng(config, StdRng::seed_from_u64(seed))
    }

    fn with_rng(config: ClientConfig, rng: StdRng) -> ClientCore {
        let servers = config
            .auth_servers
            .iter()
            .map(|c| (c, Service::Auth))
            .chain(config.acct_servers.iter().map(|c| (c, Service::Acct)))
            .map(|(c, service)| Server {
                config: c.clone(),
                service,
                consecutive_timeouts: 0,
                dead_until: None,
                sockets: Vec::new(),
            })
            .collect();
        ClientCore {
            config,
            servers,
            pending: HashMap::new(),
            by_identifier: HashMap::new(),
            timers: BTreeSet::new(),
            queue: VecDeque::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            next_request: 0,
            next_socket: 0,
            rng,
            counters: Counters::default(),
        }
    }

    /// Counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Requests not finished yet.
    pub fn outstanding(&self) -> usize {
        self.pending.len()
    }

    /// Whether the server at `address` is dead at `now`.
    pub fn is_dead(&self, address: SocketAddr, now: Instant) -> bool {
        self.servers
            .iter()
            .any(|s| s.config.address == address && s.dead_until.is_some_and(|t| t > now))
    }

    /// Submit a request: Access-Request for [`Service::Auth`], Accounting-Request for
    /// [`Service::Acct`]. `attributes` carry User-Password in clear text; any
    /// Message-Authenticator in them is replaced by the client's own. The outcome comes
    /// from [`poll_event`](Self::poll_event), possibly at once.
    pub fn submit(
        &mut self,
        service: Service,
        attributes: Vec<Attribute>,
        now: Instant,
    ) -> RequestId {
        let id = RequestId(self.next_request);
        self.next_request += 1;
        self.counters.requests += 1;
        let attributes = attributes
            .into_iter()
            .filter(|a| a.kind != attr::MESSAGE_AUTHENTICATOR)
            .collect();
        self.pending.insert(
            id,
            Pending {
                service,
                attributes,
                tried: Vec::new(),
                attempt: None,
            },
        );
        if !self.servers.iter().any(|s| s.service == service) {
            self.finish(id, Err(RequestError::NoServers));
        } else if !self.queue.is_empty() {
            self.enqueue(id);
        } else {
            self.start_attempt(id, now);
        }
        id
    }

    fn enqueue(&mut self, id: RequestId) {
        if self.queue.len() >= self.config.max_queue {
            self.finish(id, Err(RequestError::QueueFull));
        } else {
            self.counters.queued += 1;
            self.queue.push_back(id);
        }
    }

    /// The next server for a request: untried alive servers in order, then the untried
    /// dead one that comes back first.
    fn choose_server(&self, p: &Pending, now: Instant) -> Option<usize> {
        let untried = || {
            self.servers
                .iter()
                .enumerate()
                .filter(|(i, s)| s.service == p.service && !p.tried.contains(i))
        };
        untried()
            .find(|(_, s)| s.dead_until.is_none_or(|t| t <= now))
            .or_else(|| untried().min_by_key(|(_, s)| s.dead_until))
            .map(|(i, _)| i)
    }

    fn alloc_identifier(&mut self, server: usize) -> Option<(usize, u8)> {
        let s = &mut self.servers[server];
        for (i, sock) in s.sockets.iter_mut().enumerate() {
            if let Some(ident) = sock.alloc() {
                return Some((i, ident));
            }
        }
        if s.sockets.len() >= self.config.max_sockets_per_server {
            return None;
        }
        let mut sock = SocketState {
            id: SocketId(self.next_socket),
            used: [0; 4],
            next: 0,
        };
        self.next_socket += 1;
        let ident = sock.alloc()?;
        s.sockets.push(sock);
        Some((s.sockets.len() - 1, ident))
    }

    /// Start (or restart on the next server) a request; false if it had to queue.
    fn start_attempt(&mut self, id: RequestId, now: Instant) -> bool {
        let Some(p) = self.pending.get(&id) else {
            return true;
        };
        let service = p.service;
        let Some(server) = self.choose_server(p, now) else {
            self.finish(id, Err(RequestError::Timeout));
            return true;
        };
        let Some((socket, identifier)) = self.alloc_identifier(server) else {
            self.enqueue(id);
            return false;
        };
        let Some(p) = self.pending.get(&id) else {
            return true;
        };
        let mut authenticator = [0u8; AUTHENTICATOR_LEN];
        if service.code().has_random_authenticator() {
            self.rng.fill_bytes(&mut authenticator);
        }
        let secret = &self.servers[server].config.secret;
        let encoded = encode_request(
            service.code(),
            identifier,
            authenticator,
            &p.attributes,
            secret,
        );
        let packet = match encoded {
            Ok(p) => p,
            Err(e) => {
                self.servers[server].sockets[socket].free(identifier);
                self.finish(id, Err(RequestError::Encode(e)));
                return true;
            }
        };
        // Accounting: the MD5 Request Authenticator computed by sign_request.
        let authenticator = Packet::new_unchecked(&packet[..]).authenticator();
        let sid = self.servers[server].sockets[socket].id;
        let rto = self.config.initial_rto;
        let deadline = now + rto;
        self.transmits.push_back(Transmit {
            socket: sid,
            destination: self.servers[server].config.address,
            payload: packet.clone(),
        });
        self.counters.transmissions += 1;
        self.by_identifier.insert((sid, identifier), id);
        self.timers.insert((deadline, id));
        if let Some(p) = self.pending.get_mut(&id) {
            p.tried.push(server);
            p.attempt = Some(Attempt {
                server,
                socket,
                identifier,
                authenticator,
                packet,
                transmissions: 1,
                rto,
                deadline,
            });
        }
        true
    }

    /// Release the Identifier and timer of the request's current attempt.
    fn end_attempt(&mut self, id: RequestId) {
        let Some(a) = self.pending.get_mut(&id).and_then(|p| p.attempt.take()) else {
            return;
        };
        let sock = &mut self.servers[a.server].sockets[a.socket];
        sock.free(a.identifier);
        self.by_identifier.remove(&(sock.id, a.identifier));
        self.timers.remove(&(a.deadline, id));
    }

    fn finish(&mut self, id: RequestId, result: Result<Response, RequestError>) {
        self.end_attempt(id);
        self.pending.remove(&id);
        if result.is_err() {
            self.counters.failed_requests += 1;
        }
        self.events.push_back(Outcome { id, result });
    }

    fn drain_queue(&mut self, now: Instant) {
        while let Some(id) = self.queue.pop_front() {
            if !self.start_attempt(id, now) {
                // start_attempt queued it again at the back: restore the order.
                if let Some(back) = self.queue.pop_back() {
                    self.queue.push_front(back);
                }
                self.counters.queued -= 1;
                break;
            }
        }
    }

    /// A datagram arrived on `socket` from `from`.
    pub fn handle_datagram(
        &mut self,
        socket: SocketId,
        from: SocketAddr,
        bytes: &[u8],
        now: Instant,
    ) {
        let Ok(view) = Packet::new_checked(bytes) else {
            self.counters.malformed += 1;
            return;
        };
        let Some(&id) = self.by_identifier.get(&(socket, view.identifier())) else {
            self.counters.unmatched += 1;
            return;
        };
        let Some(p) = self.pending.get(&id) else {
            self.counters.unmatched += 1;
            return;
        };
        let Some(a) = p.attempt.as_ref() else {
            self.counters.unmatched += 1;
            return;
        };
        let server = &self.servers[a.server];
        if from != server.config.address {
            self.counters.wrong_source += 1;
            return;
        }
        if !p.service.code().accepts_response(view.code()) {
            self.counters.bad_code += 1;
            return;
        }
        let require = match p.service {
            Service::Auth => true,
            Service::Acct => self.config.require_message_authenticator_accounting,
        };
        match verify_response(bytes, &a.authenticator, &server.config.secret, require) {
            Ok(()) => {}
            Err(wire::Error::MissingMessageAuthenticator) => {
                self.counters.missing_message_authenticator += 1;
                tracing::warn!(server = %from, "RADIUS response without Message-Authenticator discarded (BlastRADIUS)");
                return;
            }
            Err(wire::Error::BadMessageAuthenticator) => {
                self.counters.bad_message_authenticator += 1;
                return;
            }
            Err(wire::Error::BadAuthenticator) => {
                self.counters.bad_authenticator += 1;
                return;
            }
            Err(_) => {
                self.counters.malformed += 1;
                return;
            }
        }
        let Ok(packet) = Repr::parse(&view) else {
            self.counters.malformed += 1;
            return;
        };
        let response = Response {
            server: from,
            packet,
            request_authenticator: a.authenticator,
            secret: server.config.secret.clone(),
        };
        let si = a.server;
        self.servers[si].consecutive_timeouts = 0;
        self.servers[si].dead_until = None;
        self.counters.responses += 1;
        self.finish(id, Ok(response));
        self.drain_queue(now);
    }

    /// Time passed: retransmit, fail over, fail.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(deadline, id)) = self.timers.first() {
            if deadline > now {
                break;
            }
            self.timers.remove(&(deadline, id));
            let max = self.config.max_transmissions;
            let max_rto = self.config.max_rto;
            let Some(a) = self.pending.get_mut(&id).and_then(|p| p.attempt.as_mut()) else {
                continue;
            };
            if a.transmissions < max {
                a.transmissions += 1;
                a.rto = (a.rto * 2).min(max_rto);
                a.deadline = now + a.rto;
                let s = &self.servers[a.server];
                self.transmits.push_back(Transmit {
                    socket: s.sockets[a.socket].id,
                    destination: s.config.address,
                    payload: a.packet.clone(),
                });
                self.timers.insert((a.deadline, id));
                self.counters.transmissions += 1;
                self.counters.retransmissions += 1;
                continue;
            }
            let server = a.server;
            // The attempt's timer was removed above; end_attempt's removal is a no-op.
            self.end_attempt(id);
            self.counters.server_timeouts += 1;
            let s = &mut self.servers[server];
            s.consecutive_timeouts += 1;
            if s.consecutive_timeouts >= self.config.dead_after
                && s.dead_until.is_none_or(|t| t <= now)
            {
                s.dead_until = Some(now + self.config.dead_time);
                s.consecutive_timeouts = 0;
                self.counters.servers_marked_dead += 1;
                tracing::warn!(server = %s.config.address, "RADIUS server marked dead");
            }
            self.start_attempt(id, now);
            // Still pending: it moved to another server (sent or queued there); else no
            // server was left and it failed.
            if self.pending.contains_key(&id) {
                self.counters.failovers += 1;
            }
            self.drain_queue(now);
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next finished request.
    pub fn poll_event(&mut self) -> Option<Outcome> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|&(t, _)| t)
    }
}

/// Encode and sign a request: Message-Authenticator first (RFC 2869 §5.14), then the
/// attributes with User-Password hidden (RFC 2865 §5.2).
pub fn encode_request(
    code: Code,
    identifier: u8,
    authenticator: [u8; AUTHENTICATOR_LEN],
    attributes: &[Attribute],
    secret: &[u8],
) -> Result<Vec<u8>, wire::Error> {
    let mut attrs = Vec::with_capacity(attributes.len() + 1);
    attrs.push(Attribute::new(
        attr::MESSAGE_AUTHENTICATOR,
        [0; AUTHENTICATOR_LEN],
    ));
    for a in attributes {
        if a.kind == attr::USER_PASSWORD {
            attrs.push(Attribute::new(
                attr::USER_PASSWORD,
                hide_password(&a.value, secret, &authenticator)?,
            ));
        } else {
            attrs.push(a.clone());
        }
    }
    let repr = Repr {
        code,
        identifier,
        authenticator,
        attributes: attrs,
    };
    let mut bytes = repr.to_bytes()?;
    sign_request(&mut bytes, secret)?;
    Ok(bytes)
}

enum Command {
    Submit {
        service: Service,
        attributes: Vec<Attribute>,
        reply: tokio::sync::oneshot::Sender<Result<Response, RequestError>>,
    },
    Counters(tokio::sync::oneshot::Sender<Counters>),
}

/// The tokio driver: a cloneable handle to a task that owns a [`ClientCore`] and its
/// long-lived UDP sockets (one reader task per socket). Dropping every handle stops the
/// task once the outstanding requests are finished.
#[derive(Debug, Clone)]
pub struct RadiusClient {
    tx: tokio::sync::mpsc::Sender<Command>,
    totals: Arc<Totals>,
}

/// Running totals of one or more client tasks (for `/metrics`, read without a round trip
/// to the task): each task adds its core's increments, so a client replaced on reload
/// ([`RadiusClient::spawn_sharing`]) keeps counting into the same totals and they never
/// go down.
#[derive(Debug, Default)]
pub struct Totals {
    /// [`Counters::retransmissions`].
    pub retransmissions: AtomicU64,
    /// [`Counters::server_timeouts`].
    pub server_timeouts: AtomicU64,
    /// [`Counters::failovers`].
    pub failovers: AtomicU64,
    /// [`Counters::servers_marked_dead`].
    pub servers_marked_dead: AtomicU64,
    /// [`Counters::failed_requests`].
    pub failed_requests: AtomicU64,
}

impl Totals {
    /// Adds what grew from `last` to `now`.
    fn add(&self, last: &Counters, now: &Counters) {
        // Relaxed: independent monotonic counters read for display.
        let add = |total: &AtomicU64, was: u64, is: u64| {
            total.fetch_add(is.wrapping_sub(was), Ordering::Relaxed);
        };
        add(
            &self.retransmissions,
            last.retransmissions,
            now.retransmissions,
        );
        add(
            &self.server_timeouts,
            last.server_timeouts,
            now.server_timeouts,
        );
        add(&self.failovers, last.failovers, now.failovers);
        add(
            &self.servers_marked_dead,
            last.servers_marked_dead,
            now.servers_marked_dead,
        );
        add(
            &self.failed_requests,
            last.failed_requests,
            now.failed_requests,
        );
    }

    /// The value of one total.
    pub fn get(total: &AtomicU64) -> u64 {
        total.load(Ordering::Relaxed)
    }
}

impl RadiusClient {
    /// Spawn the client task on the current tokio runtime.
    pub fn spawn(config: ClientConfig) -> RadiusClient {
        RadiusClient::spawn_sharing(config, Arc::default())
    }

    /// [`RadiusClient::spawn`], counting into `totals` (those of the client it replaces).
    pub fn spawn_sharing(config: ClientConfig, totals: Arc<Totals>) -> RadiusClient {
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(run(ClientCore::new(config), rx, Arc::clone(&totals)));
        RadiusClient { tx, totals }
    }

    /// The running totals (updated by the task after each event it handles).
    pub fn totals(&self) -> &Arc<Totals> {
        &self.totals
    }

    async fn request(
        &self,
        service: Service,
        attributes: Vec<Attribute>,
    ) -> Result<Response, RequestError> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.tx
            .send(Command::Submit {
                service,
                attributes,
                reply,
            })
            .await
            .map_err(|_| RequestError::Stopped)?;
        rx.await.map_err(|_| RequestError::Stopped)?
    }

    /// Send an Access-Request with these attributes (User-Password in clear text) and
    /// wait for the verified Access-Accept, -Reject or -Challenge.
    pub async fn authenticate(&self, attributes: Vec<Attribute>) -> Result<Response, RequestError> {
        self.request(Service::Auth, attributes).await
    }

    /// Send an Accounting-Request and wait for the verified Accounting-Response.
    pub async fn account(&self, attributes: Vec<Attribute>) -> Result<Response, RequestError> {
        self.request(Service::Acct, attributes).await
    }

    /// The core's counters.
    pub async fn counters(&self) -> Result<Counters, RequestError> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.tx
            .send(Command::Counters(reply))
            .await
            .map_err(|_| RequestError::Stopped)?;
        rx.await.map_err(|_| RequestError::Stopped)
    }
}

type Datagram = (SocketId, SocketAddr, Vec<u8>);

async fn run(
    mut core: ClientCore,
    mut commands: tokio::sync::mpsc::Receiver<Command>,
    totals: Arc<Totals>,
) {
    let mut last = Counters::default();
    use tokio::net::UdpSocket;
    let (dg_tx, mut dg_rx) = tokio::sync::mpsc::channel::<Datagram>(4096);
    let mut sockets: HashMap<SocketId, Arc<UdpSocket>> = HashMap::new();
    let mut readers = tokio::task::JoinSet::new();
    let mut replies: HashMap<
        RequestId,
        tokio::sync::oneshot::Sender<Result<Response, RequestError>>,
    > = HashMap::new();
    let mut open = true;
    loop {
        while let Some(t) = core.poll_transmit() {
            let sock = match sockets.get(&t.socket) {
                Some(s) => Arc::clone(s),
                None => {
                    let bind: SocketAddr = if t.destination.is_ipv4() {
                        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
                    } else {
                        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                    };
                    match UdpSocket::bind(bind).await {
                        Ok(s) => {
                            let s = Arc::new(s);
                            sockets.insert(t.socket, Arc::clone(&s));
                            let (reader, tx, sid) = (Arc::clone(&s), dg_tx.clone(), t.socket);
                            readers.spawn(async move {
                                let mut buf = vec![0u8; wire::MAX_PACKET_LEN];
                                loop {
                                    match reader.recv_from(&mut buf).await {
                                        Ok((n, from)) => {
                                            if tx
                                                .send((sid, from, buf[..n].to_vec()))
                                                .await
                                                .is_err()
                                            {
                                                return;
                                            }
                                        }
                                        Err(e) => tracing::debug!(%e, "RADIUS socket receive"),
                                    }
                                }
                            });
                            s
                        }
                        Err(e) => {
                            // Treated as a lost datagram: retransmission retries the bind.
                            tracing::warn!(%e, "RADIUS client cannot bind a socket");
                            continue;
                        }
                    }
                }
            };
            if let Err(e) = sock.send_to(&t.payload, t.destination).await {
                tracing::debug!(%e, destination = %t.destination, "RADIUS send");
            }
        }
        let now = core.counters();
        totals.add(&last, &now);
        last = now;
        while let Some(o) = core.poll_event() {
            if let Some(r) = replies.remove(&o.id) {
                let _ = r.send(o.result);
            }
        }
        if !open && core.outstanding() == 0 {
            break;
        }
        let deadline = core.poll_timeout();
        tokio::select! {
            cmd = commands.recv(), if open => match cmd {
                Some(Command::Submit { service, attributes, reply }) => {
                    let id = core.submit(service, attributes, Instant::now());
                    replies.insert(id, reply);
                }
                Some(Command::Counters(reply)) => {
                    let _ = reply.send(core.counters());
                }
                None => open = false,
            },
            Some((sid, from, bytes)) = dg_rx.recv() => {
                core.handle_datagram(sid, from, &bytes, Instant::now());
            }
            () = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            } => core.handle_timeout(Instant::now()),
        }
    }
    readers.abort_all();
}

#[cfg(test)]
mod tests;

//! The session publisher: xlnsd's side of the shared-memory segment that xlns-dataplane
//! forwards from (ARCHITECTURE.md §2, §4; issue #5).
//!
//! # Contract
//!
//! * [`Publisher::open`] (at start, `[dataplane]` configured): when the segment file
//!   exists and has the configured geometry, xlnsd re-attaches to it
//!   ([`Writer::attach_existing`]) and keeps every session found there forwarding (a
//!   restart of xlnsd never black-holes established sessions, ARCHITECTURE.md §2).
//!   Otherwise (no file, another ABI version or geometry) it creates a fresh segment;
//!   a data plane attached to the old file must then be restarted.
//! * [`Publisher::publish`] (PPP Up, IPCP opened): the session's [`SessionRecord`] (our and
//!   the LAC's tunnel and session ids, the LAC's outer address and port as the endpoint
//!   sees them, our address and port, MTU = the peer's MRU, the subscriber's IPv4 address,
//!   ACFC / PFC as LCP agreed, SEQUENCING when the LAC required it, RFC 2661 §5.4) with its
//!   downstream header template (our access MAC, the LAC's next-hop MAC) is inserted.
//!   A second Up of the same session updates its record in place. The record carries
//!   the session's Framed-Routes (gateway 0.0.0.0 or the subscriber: routed into the
//!   session, the LAC auto-dial case), its Framed-IPv6-Prefix and its
//!   Delegated-IPv6-Prefix ([`SessionParams::apply_reply`]): the segment indexes them
//!   for the downstream lookup and the upstream source check, and xlns-dataplane puts
//!   them into the core side's XDP prefix maps. What does not fit the record (more than
//!   8 routes, IPv6 prefixes longer than /64) is left out with a warning; when another
//!   session holds one of them, the session is published without its routes and
//!   prefixes ([`PublisherStats::prefixes_left_out`]).
//! * The LAC's MAC address comes from the kernel's neighbour table of the access
//!   interface (`/proc/net/arp`): for the LAC's address when it is on link, else for the
//!   gateway of the longest `/proc/net/route` match on that interface. Known MACs are
//!   cached. When there is no complete entry yet, a datagram to the next hop's discard
//!   port makes the kernel resolve it and the session waits (not published) until a
//!   later tick finds the entry. Every tick re-reads the table for the next hops in use
//!   and rewrites the templates of their sessions when a MAC changed. Nothing here blocks
//!   or sleeps: reading `/proc` and sending one datagram are the only I/O.
//! * [`Publisher::withdraw`] (PPP Down, whatever the reason): the session is removed from
//!   the segment and its final counters are returned (the Down log line carries them; the
//!   accounting issue #7 uses them). Its routes and prefixes go with it.
//! * Ticks ([`Publisher::poll_timeout`] / [`Publisher::handle_timeout`], every
//!   [`TICK`]): the writer heartbeat, pending sessions, neighbour refresh, orphans.
//! * IPv4 LACs only: an IPv6 peer's session is not published (counted in
//!   [`PublisherStats::unsupported_peer`]) until the neighbour lookup learns IPv6.
//!
//! # After a restart: orphans
//!
//! Sessions found in the segment at [`Publisher::open`] belong to the previous xlnsd; this
//! one has no tunnel, no PPP and no lease for them ("orphans"). They keep forwarding while
//! their subscribers send or receive traffic. An orphan is removed when
//! * a new session of ours needs its upstream key (our tunnel and session ids) or its
//!   subscriber address (the pool, not knowing the old lease, handed it out again): the new
//!   session wins; or
//! * its counters did not move for [`ORPHAN_IDLE`]: its tunnel is dead. In practice that is
//!   soon after the restart: the LAC's LCP echoes reach this xlnsd, which knows no PPP for
//!   them and does not answer, so the client drops the link within its echo timeout.
//!
//! Accounting (issue #7) closes the previous run's session of an orphan when it is
//! removed, with its final counters ([`Publisher::poll_removed_orphan`]).
//!
//! Taking orphans over (rebuilding their tunnels and PPP state) is the hitless restart of
//! ARCHITECTURE.md §2, not done here.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use tracing::{info, warn};
use xlns_dataplane::fastpath::template::build_template;
use xlns_dataplane::session::{MAX_V6_PREFIX_LEN, SessionRecord, flags};
use xlns_dataplane::shm::{Counters, Geometry, ShmError, SlotId, Writer, monotonic_ns};
use xlns_dataplane::wire::EthernetAddress;
use xlns_dataplane::worker::host;

use crate::config::DataplaneConfig;
use crate::l2tp::endpoint::SessionKey;
use crate::ppp::auth::ReplyAttributes;

/// Interval of the heartbeat, pending-session retries and neighbour refresh.
pub const TICK: Duration = Duration::from_secs(1);
/// An orphan whose counters did not move for this long is removed.
pub const ORPHAN_IDLE: Duration = Duration::from_secs(60);

/// What the publisher needs to know of one session besides its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionParams {
    /// The LAC's outer address and port, as the endpoint sees them.
    pub peer: SocketAddr,
    /// The LAC's tunnel id.
    pub peer_tunnel: u16,
    /// The LAC's session id.
    pub peer_session: u16,
    /// The LAC required sequenced data messages (RFC 2661 §5.4, Sequencing Required AVP).
    pub sequencing: bool,
    /// The peer's MRU (RFC 1661 §6.1).
    pub mtu: u16,
    /// The subscriber's IPv4 address.
    pub subscriber_v4: Ipv4Addr,
    /// We may omit Address and Control (RFC 1661 §6.6).
    pub acfc: bool,
    /// We may compress the Protocol field (RFC 1661 §6.5).
    pub pfc: bool,
    /// Prefixes routed into the session (Framed-Route, RFC 2865 §5.22: the LAC auto-dial
    /// case), host bits zero.
    pub routes: Vec<(Ipv4Addr, u8)>,
    /// The subscriber's IPv6 prefix (Framed-IPv6-Prefix, RFC 3162 §2.3).
    pub ipv6_prefix: Option<(Ipv6Addr, u8)>,
    /// A delegated IPv6 prefix (Delegated-IPv6-Prefix, RFC 4818).
    pub delegated_prefix: Option<(Ipv6Addr, u8)>,
}

impl SessionParams {
    /// Takes the routes and IPv6 prefixes of the session's authorization (RADIUS reply or
    /// local user). A Framed-Route with a gateway other than 0.0.0.0 or the subscriber's
    /// own address routes via that gateway, not into the session: it is left out.
    pub fn apply_reply(&mut self, reply: &ReplyAttributes) {
        self.routes = reply
            .routes
            .iter()
            .filter(|r| {
                r.gateway
                    .is_none_or(|gw| gw.is_unspecified() || gw == self.subscriber_v4)
            })
            .map(|r| (r.prefix.trunc().addr(), r.prefix.prefix_len()))
            .collect();
        self.ipv6_prefix = reply
            .ipv6_prefix
            .map(|n| (n.trunc().addr(), n.prefix_len()));
        self.delegated_prefix = reply
            .delegated_ipv6_prefix
            .map(|n| (n.trunc().addr(), n.prefix_len()));
    }
}

/// The shared-memory record of session `key` (without template): ids, addresses, flags,
/// routes and IPv6 prefixes. What does not fit (more than
/// [`MAX_ROUTES_V4`](xlns_dataplane::session::MAX_ROUTES_V4) routes, prefixes longer than 64
/// bits) is left out and named in the returned list.
pub fn session_record(
    key: SessionKey,
    params: &SessionParams,
    peer: SocketAddrV4,
    local: SocketAddrV4,
) -> (SessionRecord, Vec<String>) {
    let mut rec = SessionRecord {
        local_tunnel: key.tunnel,
        local_session: key.session,
        peer_tunnel: params.peer_tunnel,
        peer_session: params.peer_session,
        flags: flags::HAS_IPV4,
        peer_port: peer.port(),
        local_port: local.port(),
        mtu: params.mtu,
        subscriber_v4: params.subscriber_v4.octets(),
        ..SessionRecord::EMPTY
    };
    rec.peer_addr[..4].copy_from_slice(&peer.ip().octets());
    rec.local_addr[..4].copy_from_slice(&local.ip().octets());
    if params.acfc {
        rec.flags |= flags::ACFC;
    }
    if params.pfc {
        rec.flags |= flags::PFC;
    }
    if params.sequencing {
        rec.flags |= flags::SEQUENCING;
    }
    let mut left_out = Vec::new();
    for &(prefix, len) in &params.routes {
        if !rec.push_route_v4(prefix.octets(), len) {
            left_out.push(format!("route {prefix}/{len}"));
        }
    }
    if let Some((prefix, len)) = params.ipv6_prefix {
        if (1..=MAX_V6_PREFIX_LEN).contains(&len) {
            rec.flags |= flags::HAS_IPV6;
            rec.subscriber_v6_prefix = prefix.octets();
            rec.subscriber_v6_len = len;
        } else {
            left_out.push(format!("IPv6 prefix {prefix}/{len}"));
        }
    }
    if let Some((prefix, len)) = params.delegated_prefix {
        if !rec.push_prefix_v6(prefix.octets(), len) {
            left_out.push(format!("delegated prefix {prefix}/{len}"));
        }
    }
    (rec, left_out)
}

/// `rec` without its routes and IPv6 prefixes (when another session holds one of them).
fn without_prefixes(rec: &SessionRecord) -> SessionRecord {
    SessionRecord {
        flags: rec.flags & !flags::HAS_IPV6,
        subscriber_v6_prefix: [0; 16],
        subscriber_v6_len: 0,
        routes_v4: SessionRecord::EMPTY.routes_v4,
        routes_v4_len: SessionRecord::EMPTY.routes_v4_len,
        routes_v4_count: 0,
        prefixes_v6: SessionRecord::EMPTY.prefixes_v6,
        prefixes_v6_len: SessionRecord::EMPTY.prefixes_v6_len,
        prefixes_v6_count: 0,
        ..*rec
    }
}

/// Counters of the publisher.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublisherStats {
    /// Sessions inserted into the segment.
    pub published: u64,
    /// Records updated in place (second Up, neighbour MAC changed).
    pub updated: u64,
    /// Sessions removed at Down.
    pub withdrawn: u64,
    /// Sessions that waited for the LAC's MAC address.
    pub waited_for_neighbour: u64,
    /// Inserts or updates the segment refused (full, index full).
    pub failures: u64,
    /// Sessions of IPv6 LACs, not published.
    pub unsupported_peer: u64,
    /// Sessions found in the segment at start (left by the previous xlnsd).
    pub adopted: u64,
    /// Orphans removed (idle or displaced by a new session).
    pub orphans_removed: u64,
    /// Routes and IPv6 prefixes left out of records: too many, too long, or held by
    /// another session.
    pub prefixes_left_out: u64,
}

#[derive(Debug, Clone, Copy)]
struct Published {
    slot: SlotId,
    rec: SessionRecord,
    next_hop: Ipv4Addr,
}

#[derive(Debug, Clone, Copy)]
struct Orphan {
    slot: SlotId,
    rec: SessionRecord,
    last: Counters,
    since: Instant,
}

/// The session publisher; see the module documentation.
#[derive(Debug)]
pub struct Publisher {
    writer: Writer,
    interface: String,
    our_mac: EthernetAddress,
    listen: SocketAddr,
    /// Boxed: a [`Published`] holds the record with its header template (about 280
    /// octets a bucket inline); at 1,000,000 sessions the inline table's growth past
    /// 917,504 entries allocated 575 MB and stalled xlnsd about a second copying.
    sessions: HashMap<SessionKey, Box<Published>>,
    /// Waiting for the next hop's MAC: the record without template, and that next hop.
    pending: HashMap<SessionKey, (SessionRecord, Ipv4Addr)>,
    orphans: HashMap<u32, Orphan>,
    neighbours: HashMap<Ipv4Addr, EthernetAddress>,
    next_tick: Instant,
    stats: PublisherStats,
    /// Orphans removed, with their final counters, for accounting
    /// ([`Publisher::poll_removed_orphan`]); at most the orphans adopted at open.
    removed_orphans: std::collections::VecDeque<(u16, u16, Counters)>,
}

impl Publisher {
    /// Opens (re-attaches to, or creates) the segment of `config`; `listen` is the control
    /// socket's address (our outer address and port). See the module documentation.
    pub fn open(
        config: &DataplaneConfig,
        listen: SocketAddr,
        now: Instant,
    ) -> Result<Publisher, io::Error> {
        let our_mac = host::interface_mac(&config.access_interface).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "[dataplane] access_interface {}: {e}",
                    config.access_interface
                ),
            )
        })?;
        let geometry = Geometry {
            max_sessions: config.max_sessions,
            max_workers: config.max_workers,
        };
        let writer = open_writer(&config.shm, geometry).map_err(|e| {
            io::Error::other(format!("[dataplane] shm {}: {e}", config.shm.display()))
        })?;
        let mut orphans = HashMap::new();
        for (slot, rec) in writer.sessions() {
            let last = writer.session_counters(slot).unwrap_or_default();
            orphans.insert(
                rec.upstream_key(),
                Orphan {
                    slot,
                    rec,
                    last,
                    since: now,
                },
            );
        }
        let stats = PublisherStats {
            adopted: orphans.len() as u64,
            ..PublisherStats::default()
        };
        let publisher = Publisher {
            writer,
            interface: config.access_interface.clone(),
            our_mac,
            listen,
            sessions: HashMap::new(),
            pending: HashMap::new(),
            orphans,
            neighbours: HashMap::new(),
            next_tick: now,
            stats,
            removed_orphans: std::collections::VecDeque::new(),
        };
        publisher.writer.heartbeat(monotonic_ns());
        Ok(publisher)
    }

    /// Counters.
    pub fn stats(&self) -> &PublisherStats {
        &self.stats
    }

    /// Sessions of ours in the segment.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether none of ours is in the segment.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Sessions left by the previous xlnsd and still in the segment.
    pub fn orphans(&self) -> usize {
        self.orphans.len()
    }

    /// The counters of the orphan with our tunnel and session ids, if the segment still
    /// holds it.
    pub fn orphan_counters(&self, tunnel: u16, session: u16) -> Option<Counters> {
        let key = (u32::from(tunnel) << 16) | u32::from(session);
        let orphan = self.orphans.get(&key)?;
        self.writer.session_counters(orphan.slot).ok()
    }

    /// The next orphan removed (idle or displaced): our tunnel id, session id and its
    /// final counters (accounting closes the previous run's session with them).
    pub fn poll_removed_orphan(&mut self) -> Option<(u16, u16, Counters)> {
        self.removed_orphans.pop_front()
    }

    /// Whether session `key` is in the segment.
    pub fn is_published(&self, key: SessionKey) -> bool {
        self.sessions.contains_key(&key)
    }

    /// Sessions waiting for their LAC's MAC address.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The writer (geometry, counters).
    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// Publishes session `key` (PPP Up); see the module documentation.
    pub fn publish(&mut self, key: SessionKey, params: &SessionParams) {
        let SocketAddr::V4(peer) = params.peer else {
            self.stats.unsupported_peer += 1;
            warn!(
                tunnel = key.tunnel,
                session = key.session,
                peer = %params.peer,
                "data plane: IPv6 LACs are not published; the session has no fast path"
            );
            return;
        };
        let local = self.local_address(*peer.ip());
        let (rec, left_out) = session_record(
            key,
            params,
            peer,
            SocketAddrV4::new(local, self.listen.port()),
        );
        for what in left_out {
            self.stats.prefixes_left_out += 1;
            warn!(
                tunnel = key.tunnel,
                session = key.session,
                %what,
                "data plane: left out of the session's record (does not fit)"
            );
        }
        let next_hop = next_hop(*peer.ip(), &self.interface);
        match self.neighbour(next_hop) {
            Some(mac) => self.install(key, rec, next_hop, mac),
            None => {
                self.stats.waited_for_neighbour += 1;
                info!(
                    tunnel = key.tunnel,
                    session = key.session,
                    %next_hop,
                    "data plane: waiting for the LAC's MAC address"
                );
                self.pending.insert(key, (rec, next_hop));
            }
        }
    }

    /// Removes session `key` (PPP Down) and returns its final counters, `None` when it was
    /// not in the segment.
    pub fn withdraw(&mut self, key: SessionKey) -> Option<Counters> {
        self.pending.remove(&key);
        let published = self.sessions.remove(&key)?;
        match self.writer.remove(published.slot) {
            Ok(counters) => {
                self.stats.withdrawn += 1;
                Some(counters)
            }
            Err(error) => {
                warn!(tunnel = key.tunnel, session = key.session, %error, "data plane: remove");
                None
            }
        }
    }

    /// The counters of session `key` so far.
    pub fn counters(&self, key: SessionKey) -> Option<Counters> {
        let published = self.sessions.get(&key)?;
        self.writer.session_counters(published.slot).ok()
    }

    /// When [`Publisher::handle_timeout`] is due.
    pub fn poll_timeout(&self) -> Instant {
        self.next_tick
    }

    /// Heartbeat, pending sessions, neighbour refresh, orphans (when due).
    pub fn handle_timeout(&mut self, now: Instant) {
        if now < self.next_tick {
            return;
        }
        self.next_tick = now + TICK;
        self.writer.heartbeat(monotonic_ns());
        self.refresh_neighbours();
        self.expire_orphans(now);
    }

    fn install(
        &mut self,
        key: SessionKey,
        mut rec: SessionRecord,
        next_hop: Ipv4Addr,
        mac: EthernetAddress,
    ) {
        let (template, len) = build_template(&rec, self.our_mac, mac);
        rec.template = template;
        rec.template_len = len;
        if let Some(published) = self.sessions.get_mut(&key) {
            match self.writer.update(published.slot, &rec) {
                Ok(()) => {
                    self.stats.updated += 1;
                    published.rec = rec;
                    published.next_hop = next_hop;
                }
                Err(error) => {
                    self.stats.failures += 1;
                    warn!(tunnel = key.tunnel, session = key.session, %error, "data plane: update");
                }
            }
            return;
        }
        self.displace_orphans(&rec);
        let inserted = match self.writer.insert(&rec) {
            Err(ShmError::DuplicateKey {
                index,
                key: k,
                slot,
            }) if index == "ipv6-prefix" || index == "ipv4-route" => {
                // Another session holds one of its routes or prefixes: forward the
                // session by its address alone rather than not at all.
                self.stats.prefixes_left_out += 1;
                warn!(
                    tunnel = key.tunnel,
                    session = key.session,
                    index,
                    held_by_slot = slot,
                    hash = k,
                    "data plane: a route or IPv6 prefix of this session is another \
                     session's; published without its routes and prefixes"
                );
                rec = without_prefixes(&rec);
                self.writer.insert(&rec)
            }
            other => other,
        };
        match inserted {
            Ok(slot) => {
                self.stats.published += 1;
                info!(
                    tunnel = key.tunnel,
                    session = key.session,
                    slot = slot.0,
                    lac_mac = %mac,
                    "data plane: session published"
                );
                self.sessions.insert(
                    key,
                    Box::new(Published {
                        slot,
                        rec,
                        next_hop,
                    }),
                );
            }
            Err(error) => {
                self.stats.failures += 1;
                warn!(tunnel = key.tunnel, session = key.session, %error, "data plane: insert");
            }
        }
    }

    /// Removes the orphans whose upstream key, subscriber address, routes or IPv6 prefixes
    /// `rec` needs.
    fn displace_orphans(&mut self, rec: &SessionRecord) {
        let taken: Vec<u32> = self
            .orphans
            .iter()
            .filter(|(up, o)| {
                **up == rec.upstream_key()
                    || o.rec.subscriber_v4 == rec.subscriber_v4
                    || o.rec
                        .destinations()
                        .any(|d| rec.destinations().any(|n| n == d))
            })
            .map(|(up, _)| *up)
            .collect();
        for up in taken {
            self.remove_orphan(up, "displaced by a new session");
        }
    }

    fn remove_orphan(&mut self, up: u32, why: &'static str) {
        let Some(orphan) = self.orphans.remove(&up) else {
            return;
        };
        self.stats.orphans_removed += 1;
        match self.writer.remove(orphan.slot) {
            Ok(c) => {
                self.removed_orphans.push_back((
                    orphan.rec.local_tunnel,
                    orphan.rec.local_session,
                    c,
                ));
                info!(
                tunnel = orphan.rec.local_tunnel,
                session = orphan.rec.local_session,
                address = %Ipv4Addr::from(orphan.rec.subscriber_v4),
                up_packets = c.up_packets,
                up_bytes = c.up_bytes,
                down_packets = c.down_packets,
                down_bytes = c.down_bytes,
                why,
                "data plane: orphan removed"
                );
            }
            Err(error) => warn!(%error, "data plane: removing an orphan"),
        }
    }

    fn expire_orphans(&mut self, now: Instant) {
        let mut idle = Vec::new();
        for (up, orphan) in &mut self.orphans {
            let counters = self
                .writer
                .session_counters(orphan.slot)
                .unwrap_or_default();
            if counters != orphan.last {
                orphan.last = counters;
                orphan.since = now;
            } else if now.duration_since(orphan.since) >= ORPHAN_IDLE {
                idle.push(*up);
            }
        }
        for up in idle {
            self.remove_orphan(up, "idle");
        }
    }

    /// The cached MAC of `hop`, else a fresh look at the table (prodding the kernel to
    /// resolve it when it has no complete entry).
    fn neighbour(&mut self, hop: Ipv4Addr) -> Option<EthernetAddress> {
        if let Some(mac) = self.neighbours.get(&hop) {
            return Some(*mac);
        }
        let table = std::fs::read_to_string("/proc/net/arp").unwrap_or_default();
        match host::arp_lookup(&table, hop, Some(&self.interface)) {
            Some(mac) => {
                self.neighbours.insert(hop, mac);
                Some(mac)
            }
            None => {
                prod(hop);
                None
            }
        }
    }

    /// Re-reads the neighbour table for every next hop in use: rewrites the templates of
    /// the sessions behind a changed MAC, installs the pending sessions whose MAC is known.
    fn refresh_neighbours(&mut self) {
        if self.sessions.is_empty() && self.pending.is_empty() {
            return;
        }
        let Ok(table) = std::fs::read_to_string("/proc/net/arp") else {
            return;
        };
        let mut changed = Vec::new();
        for (hop, mac) in &mut self.neighbours {
            if let Some(now_mac) = host::arp_lookup(&table, *hop, Some(&self.interface))
                && now_mac != *mac
            {
                info!(next_hop = %hop, old = %mac, new = %now_mac, "data plane: LAC MAC changed");
                *mac = now_mac;
                changed.push((*hop, now_mac));
            }
        }
        for (hop, mac) in changed {
            let keys: Vec<(SessionKey, SessionRecord)> = self
                .sessions
                .iter()
                .filter(|(_, p)| p.next_hop == hop)
                .map(|(k, p)| (*k, p.rec))
                .collect();
            for (key, rec) in keys {
                self.install(key, rec, hop, mac);
            }
        }
        let waiting: Vec<(SessionKey, SessionRecord, Ipv4Addr)> = self
            .pending
            .iter()
            .map(|(k, (rec, hop))| (*k, *rec, *hop))
            .collect();
        for (key, rec, hop) in waiting {
            let mac = match host::arp_lookup(&table, hop, Some(&self.interface)) {
                Some(mac) => mac,
                None => match self.neighbour(hop) {
                    Some(mac) => mac,
                    None => continue,
                },
            };
            self.neighbours.insert(hop, mac);
            self.pending.remove(&key);
            self.install(key, rec, hop, mac);
        }
    }

    /// Our outer address toward `peer`: the listen address, or, when the socket listens on
    /// every address, the source address the kernel's routing picks (a connected UDP
    /// socket's local address; no datagram is sent).
    fn local_address(&self, peer: Ipv4Addr) -> Ipv4Addr {
        match self.listen.ip() {
            IpAddr::V4(a) if !a.is_unspecified() => a,
            _ => UdpSocket::bind("0.0.0.0:0")
                .and_then(|s| {
                    s.connect(SocketAddrV4::new(peer, self.listen.port()))?;
                    s.local_addr()
                })
                .ok()
                .and_then(|a| match a.ip() {
                    IpAddr::V4(v4) => Some(v4),
                    IpAddr::V6(_) => None,
                })
                .unwrap_or(Ipv4Addr::UNSPECIFIED),
        }
    }
}

/// Re-attach when the file holds a segment of this geometry, else create a fresh one.
fn open_writer(path: &Path, geometry: Geometry) -> Result<Writer, ShmError> {
    if path.exists() {
        match Writer::attach_existing(path) {
            Ok(w) if w.geometry() == geometry => {
                info!(
                    shm = %path.display(),
                    sessions = w.len(),
                    torn = w.torn_on_attach(),
                    "data plane: re-attached to the existing segment"
                );
                return Ok(w);
            }
            Ok(w) => warn!(
                shm = %path.display(),
                found = ?w.geometry(),
                wanted = ?geometry,
                "data plane: the segment has another geometry; creating a fresh one \
                 (restart xlns-dataplane)"
            ),
            Err(error) => warn!(
                shm = %path.display(),
                %error,
                "data plane: cannot re-attach; creating a fresh segment (restart xlns-dataplane)"
            ),
        }
    }
    let w = Writer::create(path, geometry)?;
    info!(
        shm = %path.display(),
        max_sessions = geometry.max_sessions,
        max_workers = geometry.max_workers,
        "data plane: segment created"
    );
    Ok(w)
}

/// The next hop toward `dest` on `interface`: the gateway of the longest matching route of
/// `/proc/net/route` on that interface, or `dest` itself (on link, or no route known).
pub fn next_hop(dest: Ipv4Addr, interface: &str) -> Ipv4Addr {
    let table = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    route_lookup(&table, dest, interface).unwrap_or(dest)
}

/// The gateway for `dest` in a `/proc/net/route` text, restricted to `interface`; `None`
/// when the longest match is on link (gateway 0) or nothing matches.
pub fn route_lookup(table: &str, dest: Ipv4Addr, interface: &str) -> Option<Ipv4Addr> {
    // "Iface Destination Gateway Flags RefCnt Use Metric Mask MTU Window IRTT": each
    // address is the network-order word printed as a native-endian number.
    let hex = |s: &str| {
        u32::from_str_radix(s, 16)
            .ok()
            .map(|v| u32::from_be_bytes(v.to_ne_bytes()))
    };
    let d = u32::from(dest);
    let mut best: Option<(u32, Ipv4Addr)> = None;
    for line in table.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let [iface, dst, gw, _flags, _ref, _use, _metric, mask, ..] = cols.as_slice() else {
            continue;
        };
        if *iface != interface {
            continue;
        }
        let (Some(dst), Some(gw), Some(mask)) = (hex(dst), hex(gw), hex(mask)) else {
            continue;
        };
        if d & mask == dst && best.is_none_or(|(m, _)| mask.count_ones() > m.count_ones()) {
            best = Some((mask, Ipv4Addr::from(gw)));
        }
    }
    best.map(|(_, gw)| gw).filter(|gw| !gw.is_unspecified())
}

/// One datagram to `hop`'s discard port (9): the kernel resolves its MAC to send it.
fn prod(hop: Ipv4Addr) {
    if let Ok(s) = UdpSocket::bind("0.0.0.0:0") {
        let _ = s.set_nonblocking(true);
        let _ = s.send_to(b"", SocketAddrV4::new(hop, 9));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn bucket_size<K, V>(_: fn(&Publisher) -> &HashMap<K, V>) -> usize {
        std::mem::size_of::<(K, V)>()
    }

    #[test]
    fn the_published_table_keeps_records_out_of_its_buckets() {
        // Issue #6 scale: one entry per session, a million of them.
        assert!(std::mem::size_of::<Published>() > 128);
        assert!(bucket_size(|p| &p.sessions) <= 16);
    }

    const ROUTES: &str = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
        eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
        eth0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
        eth0\t0000A8C0\t0200000A\t0003\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
        other\t00000000\t0900000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";

    use crate::ppp::auth::FramedRoute;
    use xlns_dataplane::shm::Reader;

    fn params() -> SessionParams {
        SessionParams {
            peer: "192.0.2.10:50000".parse().unwrap(),
            peer_tunnel: 11,
            peer_session: 12,
            sequencing: false,
            mtu: 1400,
            subscriber_v4: Ipv4Addr::new(100, 64, 0, 5),
            acfc: false,
            pfc: false,
            routes: Vec::new(),
            ipv6_prefix: None,
            delegated_prefix: None,
        }
    }

    fn route(prefix: &str, gateway: Option<&str>) -> FramedRoute {
        FramedRoute {
            prefix: prefix.parse().unwrap(),
            gateway: gateway.map(|g| g.parse().unwrap()),
            metric: None,
        }
    }

    #[test]
    fn reply_routes_and_prefixes_go_into_the_record() {
        let mut p = params();
        let reply = ReplyAttributes {
            routes: vec![
                route("192.168.10.77/24", None),
                route("192.168.20.0/24", Some("0.0.0.0")),
                route("192.168.30.0/24", Some("100.64.0.5")),
                // Via another gateway: not into the session.
                route("192.168.40.0/24", Some("10.0.0.1")),
            ],
            ipv6_prefix: Some("2001:db8:1:5::/64".parse().unwrap()),
            delegated_ipv6_prefix: Some("2001:db8:8000::/48".parse().unwrap()),
            ..ReplyAttributes::default()
        };
        p.apply_reply(&reply);
        let v4 = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(
            p.routes,
            [
                (v4("192.168.10.0"), 24),
                (v4("192.168.20.0"), 24),
                (v4("192.168.30.0"), 24)
            ]
        );
        let key = SessionKey {
            tunnel: 3,
            session: 4,
        };
        let (rec, left_out) = session_record(
            key,
            &p,
            "192.0.2.10:50000".parse().unwrap(),
            "192.0.2.1:1701".parse().unwrap(),
        );
        assert!(left_out.is_empty());
        assert_eq!(rec.upstream_key(), (3 << 16) | 4);
        assert!(rec.has(flags::HAS_IPV4) && rec.has(flags::HAS_IPV6));
        assert_eq!(rec.subscriber_v6_len, 64);
        assert_eq!(rec.routes_v4().count(), 3);
        assert!(rec.routes_v4_contain([192, 168, 30, 9]));
        assert!(
            rec.prefixes_v6_contain(&"2001:db8:8000:1::1".parse::<Ipv6Addr>().unwrap().octets())
        );
        assert_eq!(rec.destinations().count(), 1 + 3 + 2);
        let bare = without_prefixes(&rec);
        assert_eq!(bare.destinations().count(), 1);
        assert_eq!(bare.upstream_key(), rec.upstream_key());

        // Too many routes and a /80: left out and named.
        p.routes = (0..10).map(|i| (Ipv4Addr::new(10, i, 0, 0), 16)).collect();
        p.ipv6_prefix = Some(("2001:db8::".parse().unwrap(), 80));
        let (rec, left_out) = session_record(
            key,
            &p,
            "192.0.2.10:50000".parse().unwrap(),
            "192.0.2.1:1701".parse().unwrap(),
        );
        assert_eq!(rec.routes_v4().count(), 8);
        assert!(!rec.has(flags::HAS_IPV6));
        assert_eq!(left_out.len(), 3, "{left_out:?}");
    }

    /// Two sessions claiming one Framed-Route: the second is published without its
    /// routes and prefixes; withdrawing the first takes its route out of the segment.
    #[test]
    fn a_route_held_by_another_session_is_left_out() {
        let shm = std::env::temp_dir().join(format!("xlns-publisher-test.{}", std::process::id()));
        let config = DataplaneConfig {
            shm: shm.clone(),
            max_sessions: 8,
            max_workers: 1,
            access_interface: "lo".into(),
        };
        let mut publisher =
            Publisher::open(&config, "192.0.2.1:1701".parse().unwrap(), Instant::now()).unwrap();
        let reader = Reader::attach(&shm).unwrap();
        let mut p = params();
        p.routes = vec![(Ipv4Addr::new(192, 168, 10, 0), 24)];
        p.ipv6_prefix = Some(("2001:db8:1::".parse().unwrap(), 64));
        let peer = "192.0.2.10:50000".parse().unwrap();
        let local = "192.0.2.1:1701".parse().unwrap();
        let k1 = SessionKey {
            tunnel: 1,
            session: 1,
        };
        let (rec1, _) = session_record(k1, &p, peer, local);
        let hop = Ipv4Addr::new(192, 0, 2, 10);
        let mac = EthernetAddress([2, 0, 0, 0, 0, 0x0a]);
        publisher.install(k1, rec1, hop, mac);
        let k2 = SessionKey {
            tunnel: 1,
            session: 2,
        };
        p.subscriber_v4 = Ipv4Addr::new(100, 64, 0, 6);
        p.ipv6_prefix = Some(("2001:db8:2::".parse().unwrap(), 64));
        let (rec2, _) = session_record(k2, &p, peer, local);
        publisher.install(k2, rec2, hop, mac);
        assert_eq!(publisher.stats().published, 2);
        assert_eq!(publisher.stats().prefixes_left_out, 1);
        let slot = |k: SessionKey| publisher.sessions[&k].slot;
        assert_eq!(
            reader.lookup_route_v4([192, 168, 10, 9]).map(|x| x.0),
            Some(slot(k1))
        );
        assert_eq!(
            reader.lookup_v4([100, 64, 0, 6]).map(|x| x.0),
            Some(slot(k2))
        );
        assert_eq!(
            reader.lookup_v6("2001:db8:2::1".parse::<Ipv6Addr>().unwrap().octets()),
            None
        );
        assert!(publisher.withdraw(k1).is_some());
        assert_eq!(reader.lookup_route_v4([192, 168, 10, 9]), None);
        assert_eq!(
            reader.lookup_v6("2001:db8:1::1".parse::<Ipv6Addr>().unwrap().octets()),
            None
        );
        drop(reader);
        drop(publisher);
        let _ = std::fs::remove_file(&shm);
    }

    #[test]
    fn routes_pick_the_longest_match_on_the_interface() {
        let a = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        // 10.0.0.0/24 on link.
        assert_eq!(route_lookup(ROUTES, a("10.0.0.7"), "eth0"), None);
        // 192.168.0.0/16 via 10.0.0.2.
        assert_eq!(
            route_lookup(ROUTES, a("192.168.3.4"), "eth0"),
            Some(a("10.0.0.2"))
        );
        // default via 10.0.0.1.
        assert_eq!(
            route_lookup(ROUTES, a("8.8.8.8"), "eth0"),
            Some(a("10.0.0.1"))
        );
        assert_eq!(
            route_lookup(ROUTES, a("8.8.8.8"), "other"),
            Some(a("10.0.0.9"))
        );
        assert_eq!(route_lookup(ROUTES, a("8.8.8.8"), "none"), None);
    }
}

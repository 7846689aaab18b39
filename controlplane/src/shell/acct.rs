//! RADIUS accounting for the shell (issue #7, RFC 2866): a sans-IO core ([`AcctCore`])
//! that turns session events into spooled records and decides what to send when, and a
//! thin tokio wrapper ([`Accounting`]) that sends them through a [`RadiusClient`] of its
//! own and hands the answers back through a bounded channel (one `select!` branch of the
//! shell).
//!
//! # Contract
//!
//! * Enabled when `[radius]` has an `acct_server`, for every session whatever its
//!   authentication (Acct-Authentic says RADIUS or Local), except the sessions of a
//!   `[[lac]]` with `accounting = false` ([`Accounting::accounts`]).
//! * Start when the session is up (IPCP opened, [`AcctCore::session_up`]); Interim-Update
//!   every Acct-Interim-Interval (the Access-Accept's, else `[radius] interim_interval`,
//!   none if neither; at least [`MIN_INTERIM`], RFC 2869 §5.16); Stop when it ends
//!   ([`AcctCore::session_down`]) with the counters and the cause of [`terminate_cause`].
//!   Sessions that never came up get no record.
//! * Sessions left open by a crash (a Start or Interim-Update spooled, no Stop) get a
//!   Stop with Acct-Terminate-Cause NAS-Reboot: at once, with the counters of their last
//!   record; or, when the data plane's segment still forwards them (orphans, see
//!   [`super::dataplane`]), when the data plane removes them, with its final counters
//!   and the session time up to then ([`AcctCore::open_with_orphans`],
//!   [`AcctCore::orphan_gone`]).
//! * Accounting-On when the core opens (after the records replayed from the spool and
//!   the NAS-Reboot Stops written at once), Accounting-Off at a clean
//!   shutdown ([`AcctCore::shutdown`]) after the Stops of the sessions closed by it
//!   (RFC 2866 §5.1). Stops written during a shutdown say Admin-Reboot; sessions whose
//!   PPP did not end within the shutdown's grace get theirs from
//!   [`AcctCore::close_all`].
//! * An Interim-Update not sent yet is dropped when the session's next Interim-Update or
//!   its Stop is written ([`Spool::supersede`]): during an outage a session keeps one.
//! * Every record goes through the [`Spool`] first; a record is sent only after a sync
//!   covered it ([`AcctCore::sync`], once per loop turn of the shell) and is forgotten only
//!   when an Accounting-Response acknowledged it.
//! * Sending ([`AcctCore::poll_request`]): records go in spool order, at most
//!   [`WINDOW`] at once, and never two of the same Acct-Session-Id at once (a session's
//!   Stop never overtakes its Start). The client sends each request once per server
//!   (`max_transmissions` 1, failover to the next server after `[radius] timeout`); when
//!   every server failed the record is sent again later, after a backoff that doubles
//!   from `[radius] timeout` up to `[radius] max_timeout`, one record at a time until a
//!   server answers again. Each sending is a new request: new Identifier, new Request
//!   Authenticator and the Acct-Delay-Time of that moment (RFC 2866 §5.2). A record the
//!   client cannot encode ([`Answer::Unencodable`]) is dropped and counted, never retried.
//! * Delivery is exactly once across outages and `kill -9` as long as no request is in
//!   flight when xlnsd dies; a record the server acknowledged just before the kill, its
//!   ACK entry not yet written, is sent again after the restart (at least once: RADIUS
//!   servers tolerate a duplicate Accounting-Request).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;
use tracing::{info, warn};

use super::metrics::Histogram;
use super::ppp::AcctNote;
use crate::config::{AaaMode, LacConfig, RadiusConfig};
use crate::l2tp::endpoint::{SessionDownReason, SessionKey};
use crate::l2tp::result::{CdnResult, PppDisconnectCode};
use crate::ppp::session::DownReason;
use crate::radius::acct::{
    Authentic, Record, SessionInfo, StatusType, TerminateCause, Traffic, nas_record, session_record,
};
use crate::radius::auth::SessionContext;
use crate::radius::client::{ClientConfig, RadiusClient, RequestError, ServerConfig};
use crate::radius::spool::{Spool, SpoolConfig, SpoolStats};
use crate::radius::wire::Attribute;

/// Records in flight at most.
pub const WINDOW: usize = 64;
/// Shortest Interim-Update interval (RFC 2869 §5.16: "SHOULD NOT be smaller than 60";
/// tests use less, so the floor is lower).
pub const MIN_INTERIM: Duration = Duration::from_secs(1);
/// Answers waiting for the control task at most.
pub const ANSWER_QUEUE: usize = 1024;

/// The wall clock, Unix seconds.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Acct-Terminate-Cause (RFC 2866 §5.10) of a session that went down for `reason`;
/// `l2tp`: why the L2TP session went away when PPP saw its lower layer go down;
/// `shutting_down`: xlnsd is stopping.
///
/// * LCP Terminate-Request from the peer: User-Request ("for example with LCP
///   Terminate").
/// * LCP echo timeout or LCP timers: Lost-Carrier (the link is gone).
/// * Session-Timeout, Idle-Timeout: the same names.
/// * The operator (`clear session`, Disconnect-Request): Admin-Reset; a shutdown:
///   Admin-Reboot.
/// * Authentication failure: User-Error; negotiation refused, no address: Service
///   Unavailable; IPCP gone: Lost-Service.
/// * The L2TP session went away: the LAC's CDN decides. Its PPP Disconnect Cause
///   (RFC 3145 §3) first: normal disconnection (LCP Terminate) is User-Request, echo or
///   LCP timeouts Lost-Carrier, administrative Admin-Reset, authentication failures
///   User-Error; else its Result Code (RFC 2661 §4.4.2): 1 loss of carrier
///   Lost-Carrier, 3 administrative Admin-Reset, 2 general error NAS-Error, others
///   Lost-Service. The tunnel going away: Lost-Service (Admin-Reboot when we shut down);
///   our own CDN: Admin-Reset; setup or protocol errors: NAS-Error.
pub fn terminate_cause(
    reason: &DownReason,
    l2tp: Option<&SessionDownReason>,
    shutting_down: bool,
) -> TerminateCause {
    use TerminateCause as T;
    match reason {
        DownReason::LcpTerminated => T::UserRequest,
        DownReason::EchoTimeout | DownReason::LcpTimeout => T::LostCarrier,
        DownReason::SessionTimeout => T::SessionTimeout,
        DownReason::IdleTimeout => T::IdleTimeout,
        DownReason::Admin if shutting_down => T::AdminReboot,
        DownReason::Admin => T::AdminReset,
        DownReason::AuthFailed => T::UserError,
        DownReason::NegotiationFailed(_)
        | DownReason::ProxyRefused(_)
        | DownReason::AddressUnavailable(_) => T::ServiceUnavailable,
        DownReason::NcpDown { .. } => T::LostService,
        DownReason::LowerDown => match l2tp {
            None => T::LostCarrier,
            Some(SessionDownReason::PeerCdn {
                result, ppp_cause, ..
            }) => {
                let by_cause = ppp_cause.as_ref().and_then(|c| {
                    use PppDisconnectCode as C;
                    match PppDisconnectCode::from_code(c.code)? {
                        C::NormalDisconnection => Some(T::UserRequest),
                        C::EchoTimeout | C::LcpFsmTimeout => Some(T::LostCarrier),
                        C::Administrative => Some(T::AdminReset),
                        C::AuthFailed | C::AuthProtocolUnacceptable | C::AuthFsmTimeout => {
                            Some(T::UserError)
                        }
                        _ => None,
                    }
                });
                by_cause.unwrap_or(match CdnResult::from_code(*result) {
                    Some(CdnResult::LossOfCarrier) => T::LostCarrier,
                    Some(CdnResult::Administrative) => T::AdminReset,
                    Some(CdnResult::GeneralError) => T::NasError,
                    _ => T::LostService,
                })
            }
            Some(SessionDownReason::TunnelDown) if shutting_down => T::AdminReboot,
            Some(SessionDownReason::TunnelDown) => T::LostService,
            Some(SessionDownReason::LocalClose { .. }) => T::AdminReset,
            Some(SessionDownReason::SetupTimeout | SessionDownReason::ProtocolError { .. }) => {
                T::NasError
            }
        },
    }
}

/// Configuration of the core.
#[derive(Debug, Clone)]
pub struct AcctConfig {
    /// NAS-Identifier and NAS-IP-Address of Accounting-On / -Off.
    pub nas: SessionContext,
    /// Interim-Update interval when the Access-Accept has none.
    pub interim_interval: Option<Duration>,
    /// First backoff after every server failed.
    pub retry_initial: Duration,
    /// Backoff cap.
    pub retry_max: Duration,
    /// The spool.
    pub spool: SpoolConfig,
}

impl AcctConfig {
    /// The accounting configuration of `[radius]`.
    pub fn from_radius(config: &RadiusConfig) -> AcctConfig {
        AcctConfig {
            nas: SessionContext {
                nas_identifier: Some(config.nas_identifier.clone()),
                nas_ip_address: config.nas_ip_address,
                ..SessionContext::default()
            },
            interim_interval: config.interim_interval,
            retry_initial: config.timeout,
            retry_max: config.max_timeout,
            spool: SpoolConfig {
                path: config.spool.clone(),
                max_records: config.spool_max_records,
                max_bytes: config.spool_max_bytes,
            },
        }
    }
}

/// Counters of accounting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AcctStats {
    /// Records built, by status: Start, Interim-Update, Stop, On, Off.
    pub starts: u64,
    pub interims: u64,
    pub stops: u64,
    pub ons: u64,
    pub offs: u64,
    /// Accounting-Requests handed to the client (each sending counts).
    pub requests: u64,
    /// Accounting-Responses (records acknowledged).
    pub responses: u64,
    /// Sendings that no server answered.
    pub timeouts: u64,
    /// Records that cannot be encoded (over 4096 octets), dropped.
    pub unencodable: u64,
    /// Records the spool refused (full).
    pub dropped: u64,
}

#[derive(Debug)]
struct Live {
    info: SessionInfo,
    start: Instant,
    interim: Option<Duration>,
    next: Option<Instant>,
}

/// What became of one sending of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// An Accounting-Response acknowledged it.
    Acknowledged,
    /// No server answered (or the client failed): send it again later.
    NoAnswer,
    /// It cannot be encoded: it never will be; dropped.
    Unencodable,
}

impl Answer {
    fn of(result: &Result<crate::radius::client::Response, RequestError>) -> Answer {
        match result {
            Ok(_) => Answer::Acknowledged,
            Err(RequestError::Encode(_)) => Answer::Unencodable,
            Err(_) => Answer::NoAnswer,
        }
    }
}

/// The sans-IO accounting core; see the module documentation.
#[derive(Debug)]
pub struct AcctCore {
    config: AcctConfig,
    spool: Spool,
    sessions: HashMap<SessionKey, Live>,
    timers: BTreeSet<(Instant, SessionKey)>,
    l2tp_reasons: HashMap<SessionKey, SessionDownReason>,
    /// Record sequence number -> its Acct-Session-Id.
    in_flight: HashMap<u64, Vec<u8>>,
    outage: bool,
    backoff: Duration,
    retry_at: Option<Instant>,
    shutting_down: bool,
    boot: u64,
    stats: AcctStats,
    /// Sessions of the previous run that the data plane still forwards (orphans), by
    /// our (tunnel id, session id): their last record, closed by
    /// [`AcctCore::orphan_gone`].
    orphans: HashMap<(u16, u16), Record>,
}

impl AcctCore {
    /// Opens the spool (replaying it, see [`Spool::open`]), closes the sessions the
    /// previous run left open with NAS-Reboot Stops, and appends Accounting-On.
    pub fn open(config: AcctConfig, unix: u64) -> io::Result<AcctCore> {
        AcctCore::open_with_orphans(config, unix, |_, _| false)
    }

    /// [`AcctCore::open`] with a data plane: a session of the previous run that
    /// `is_orphan(tunnel, session)` says the segment still forwards is closed only when
    /// the data plane removes it ([`AcctCore::orphan_gone`]), with its final counters.
    pub fn open_with_orphans(
        config: AcctConfig,
        unix: u64,
        is_orphan: impl Fn(u16, u16) -> bool,
    ) -> io::Result<AcctCore> {
        let mut spool = Spool::open(config.spool.clone())?;
        let recovered = spool.take_recovered();
        let s = spool.stats();
        if s.replayed > 0 || !recovered.is_empty() {
            info!(
                replayed = s.replayed,
                open_sessions = recovered.len(),
                torn_bytes = s.torn_bytes,
                "accounting spool: replaying records of the previous run"
            );
        }
        let mut core = AcctCore {
            orphans: HashMap::new(),
            backoff: config.retry_initial,
            config,
            spool,
            sessions: HashMap::new(),
            timers: BTreeSet::new(),
            l2tp_reasons: HashMap::new(),
            in_flight: HashMap::new(),
            outage: false,
            retry_at: None,
            shutting_down: false,
            boot: unix,
            stats: AcctStats::default(),
        };
        for record in recovered {
            match record.l2tp_key().filter(|(t, s)| is_orphan(*t, *s)) {
                Some(key) => {
                    core.orphans.insert(key, record);
                }
                None => {
                    if let Some(stop) = record.reboot_stop() {
                        core.spool.close_recovered(stop);
                        core.stats.stops += 1;
                    }
                }
            }
        }
        let id = format!("{:08X}00000000", unix as u32);
        core.push(nas_record(
            StatusType::AccountingOn,
            &core.config.nas,
            &id,
            unix,
        ));
        Ok(core)
    }

    fn push(&mut self, record: Record) {
        let status = record.status();
        if matches!(status, Some(StatusType::InterimUpdate | StatusType::Stop))
            && let Some(old) = record
                .session_id()
                .and_then(|id| self.spool.pending_interim(id))
            && !self.in_flight.contains_key(&old)
        {
            self.spool.supersede(old);
        }
        match self.spool.push(record) {
            Ok(_) => match status {
                Some(StatusType::Start) => self.stats.starts += 1,
                Some(StatusType::InterimUpdate) => self.stats.interims += 1,
                Some(StatusType::Stop) => self.stats.stops += 1,
                Some(StatusType::AccountingOn) => self.stats.ons += 1,
                Some(StatusType::AccountingOff) => self.stats.offs += 1,
                None => {}
            },
            Err(error) => {
                self.stats.dropped += 1;
                warn!(
                    status = status.map_or("?", StatusType::label),
                    dropped = self.stats.dropped,
                    %error,
                    "accounting record dropped"
                );
            }
        }
    }

    /// Counters.
    pub fn stats(&self) -> AcctStats {
        self.stats
    }

    /// The spool's counters and gauges.
    pub fn spool_stats(&self) -> SpoolStats {
        self.spool.stats()
    }

    /// The spool.
    pub fn spool(&self) -> &Spool {
        &self.spool
    }

    /// Sessions being accounted.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Records sent and not answered yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Session `key` is up: Start, and the Interim-Update timer (`interim`: the
    /// Access-Accept's Acct-Interim-Interval).
    pub fn session_up(
        &mut self,
        now: Instant,
        unix: u64,
        key: SessionKey,
        info: SessionInfo,
        interim: Option<Duration>,
    ) {
        if self.sessions.contains_key(&key) {
            return;
        }
        self.push(session_record(
            StatusType::Start,
            &info,
            unix,
            None,
            None,
            None,
        ));
        let interim = interim
            .or(self.config.interim_interval)
            .map(|d| d.max(MIN_INTERIM));
        let next = interim.map(|d| now + d);
        if let Some(at) = next {
            self.timers.insert((at, key));
        }
        self.sessions.insert(
            key,
            Live {
                info,
                start: now,
                interim,
                next,
            },
        );
    }

    /// Sessions of the previous run waiting for the data plane to remove them.
    pub fn orphans(&self) -> usize {
        self.orphans.len()
    }

    /// The data plane removed the orphan (`tunnel`, `session`) with these final
    /// counters: its Stop (NAS-Reboot), timed now.
    pub fn orphan_gone(&mut self, unix: u64, tunnel: u16, session: u16, traffic: &Traffic) {
        let Some(record) = self.orphans.remove(&(tunnel, session)) else {
            return;
        };
        let time =
            u64::from(record.session_time().unwrap_or(0)) + unix.saturating_sub(record.event_time);
        let stop = record.reboot_stop_at(unix, Duration::from_secs(time), traffic);
        self.spool.close_recovered(stop);
        self.stats.stops += 1;
    }

    /// The L2TP session `key` went away for `reason` (before PPP reports it down).
    pub fn l2tp_down(&mut self, key: SessionKey, reason: &SessionDownReason) {
        if self.sessions.contains_key(&key) {
            self.l2tp_reasons.insert(key, reason.clone());
        }
    }

    /// Session `key` went down for `reason` with this traffic: Stop.
    pub fn session_down(
        &mut self,
        now: Instant,
        unix: u64,
        key: SessionKey,
        reason: &DownReason,
        traffic: &Traffic,
    ) {
        let l2tp = self.l2tp_reasons.remove(&key);
        let Some(live) = self.sessions.remove(&key) else {
            return;
        };
        if let Some(at) = live.next {
            self.timers.remove(&(at, key));
        }
        let cause = terminate_cause(reason, l2tp.as_ref(), self.shutting_down);
        self.push(session_record(
            StatusType::Stop,
            &live.info,
            unix,
            Some(now.saturating_duration_since(live.start)),
            Some(traffic),
            Some(cause),
        ));
    }

    /// xlnsd is shutting down: Stops from now on say Admin-Reboot.
    pub fn begin_shutdown(&mut self) {
        self.shutting_down = true;
    }

    /// Stops (Admin-Reboot) for the sessions still accounted when a shutdown gives up
    /// waiting for their PPP to end; `traffic`: their counters so far.
    pub fn close_all(
        &mut self,
        now: Instant,
        unix: u64,
        traffic: impl Fn(SessionKey) -> Option<Traffic>,
    ) {
        let mut keys: Vec<SessionKey> = self.sessions.keys().copied().collect();
        keys.sort_by_key(|k| (k.tunnel, k.session));
        self.shutting_down = true;
        for key in keys {
            let t = traffic(key).unwrap_or_default();
            self.session_down(now, unix, key, &DownReason::Admin, &t);
        }
        let mut orphans: Vec<(u16, u16)> = self.orphans.keys().copied().collect();
        orphans.sort_unstable();
        for (tunnel, session) in orphans {
            let key = SessionKey { tunnel, session };
            if let Some(t) = traffic(key) {
                self.orphan_gone(unix, tunnel, session, &t);
            } else if let Some(stop) = self
                .orphans
                .remove(&(tunnel, session))
                .and_then(|r| r.reboot_stop())
            {
                self.spool.close_recovered(stop);
                self.stats.stops += 1;
            }
        }
    }

    /// Appends Accounting-Off (after the sessions' Stops).
    pub fn shutdown(&mut self, unix: u64) {
        self.shutting_down = true;
        let id = format!("{:08X}FFFFFFFF", self.boot as u32);
        self.push(nas_record(
            StatusType::AccountingOff,
            &self.config.nas,
            &id,
            unix,
        ));
    }

    /// When [`AcctCore::handle_timeout`] is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let interim = self.timers.first().map(|(at, _)| *at);
        match (interim, self.retry_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Interim-Updates due at `now` (`traffic`: a session's counters so far), and the
    /// end of a backoff.
    pub fn handle_timeout(
        &mut self,
        now: Instant,
        unix: u64,
        traffic: impl Fn(SessionKey) -> Option<Traffic>,
    ) {
        if self.retry_at.is_some_and(|at| at <= now) {
            self.retry_at = None;
        }
        while let Some(&(at, key)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, key));
            let Some(live) = self.sessions.get_mut(&key) else {
                continue;
            };
            let Some(interval) = live.interim else {
                continue;
            };
            let record = session_record(
                StatusType::InterimUpdate,
                &live.info,
                unix,
                Some(now.saturating_duration_since(live.start)),
                Some(&traffic(key).unwrap_or_default()),
                None,
            );
            let next = now.max(at + interval);
            live.next = Some(next);
            self.timers.insert((next, key));
            self.push(record);
        }
    }

    /// Makes the spool durable; what it held becomes sendable.
    pub fn sync(&mut self) {
        if let Err(error) = self.spool.sync() {
            warn!(%error, "accounting spool: sync failed; records wait");
        }
    }

    /// The next request to send: the record's sequence number and the request's
    /// attributes (Acct-Delay-Time of `unix`). See the module documentation.
    pub fn poll_request(&mut self, now: Instant, unix: u64) -> Option<(u64, Vec<Attribute>)> {
        if self.retry_at.is_some_and(|at| at > now) {
            return None;
        }
        let limit = if self.outage { 1 } else { WINDOW };
        if self.in_flight.len() >= limit {
            return None;
        }
        let mut busy: HashSet<&[u8]> = HashSet::new();
        let mut chosen = None;
        for (scanned, (seq, record)) in self.spool.sendable().enumerate() {
            if scanned >= 4 * WINDOW {
                break;
            }
            let id = record.session_id().unwrap_or_default();
            if self.in_flight.contains_key(&seq) || busy.contains(id) {
                busy.insert(id);
                continue;
            }
            chosen = Some((seq, id.to_vec(), record.request_attributes(unix)));
            break;
        }
        let (seq, id, attributes) = chosen?;
        self.in_flight.insert(seq, id);
        self.stats.requests += 1;
        Some((seq, attributes))
    }

    /// The answer for record `seq`: acknowledged (`true`) or no server answered.
    pub fn handle_response(&mut self, now: Instant, seq: u64, acknowledged: bool) {
        let answer = if acknowledged {
            Answer::Acknowledged
        } else {
            Answer::NoAnswer
        };
        self.handle_answer(now, seq, answer);
    }

    /// What became of the sending of record `seq`.
    pub fn handle_answer(&mut self, now: Instant, seq: u64, answer: Answer) {
        if self.in_flight.remove(&seq).is_none() {
            return;
        }
        if answer == Answer::Unencodable {
            self.stats.unencodable += 1;
            warn!(seq, "accounting record cannot be encoded: dropped");
            self.spool.discard(seq);
            return;
        }
        if answer == Answer::Acknowledged {
            self.stats.responses += 1;
            self.spool.ack(seq);
            if self.outage {
                info!("accounting: a server answers again");
            }
            self.outage = false;
            self.backoff = self.config.retry_initial;
        } else {
            self.stats.timeouts += 1;
            if !self.outage {
                warn!(
                    pending = self.spool.len(),
                    "accounting: no server answers; records stay in the spool"
                );
            }
            self.outage = true;
            self.retry_at = Some(now + self.backoff);
            self.backoff = (self.backoff * 2).min(self.config.retry_max);
        }
    }
}

/// The accounting client configuration of `[radius]`: its accounting servers, one
/// transmission per server (see the module documentation).
pub fn client_config(config: &RadiusConfig) -> ClientConfig {
    ClientConfig {
        auth_servers: Vec::new(),
        acct_servers: config
            .acct_servers
            .iter()
            .map(|s| ServerConfig {
                address: s.address,
                secret: s.secret.as_bytes().to_vec(),
            })
            .collect(),
        initial_rto: config.timeout,
        max_rto: config.max_timeout,
        max_transmissions: 1,
        dead_time: config.dead_time,
        ..ClientConfig::default()
    }
}

/// The tokio side: the core, the client and the answers' channel.
#[derive(Debug)]
pub struct Accounting {
    core: AcctCore,
    client: RadiusClient,
    tx: mpsc::Sender<(u64, Answer)>,
    rx: mpsc::Receiver<(u64, Answer)>,
    /// The `[[lac]]` names with `accounting = false`.
    unaccounted_lacs: HashSet<String>,
    /// Accounting-Request to verified Accounting-Response, of the requests some server
    /// answered.
    round_trip: Arc<Mutex<Histogram>>,
}

impl Accounting {
    /// Opens the spool and spawns the client (on the current tokio runtime).
    /// `is_orphan`: see [`AcctCore::open_with_orphans`].
    pub fn new(
        config: &RadiusConfig,
        lacs: &[LacConfig],
        is_orphan: impl Fn(u16, u16) -> bool,
    ) -> io::Result<Accounting> {
        let core =
            AcctCore::open_with_orphans(AcctConfig::from_radius(config), unix_now(), is_orphan)
                .map_err(|e| {
                    let path = config.spool.as_deref().unwrap_or(std::path::Path::new("-"));
                    io::Error::new(e.kind(), format!("[radius] spool {}: {e}", path.display()))
                })?;
        let (tx, rx) = mpsc::channel(ANSWER_QUEUE);
        Ok(Accounting {
            core,
            client: RadiusClient::spawn(client_config(config)),
            tx,
            rx,
            unaccounted_lacs: lacs
                .iter()
                .filter(|l| !l.accounting)
                .map(|l| l.name.clone())
                .collect(),
            round_trip: Arc::default(),
        })
    }

    /// The client (its running totals for `/metrics`).
    pub fn client(&self) -> &RadiusClient {
        &self.client
    }

    /// Round trips of the Accounting-Requests some server answered (retransmissions and
    /// failovers included).
    pub fn round_trip(&self) -> Histogram {
        self.round_trip
            .lock()
            .map(|h| h.clone())
            .unwrap_or_default()
    }

    /// Whether sessions of the `[[lac]]` named `lac` are accounted (`None`: no entry
    /// matched: yes).
    pub fn accounts(&self, lac: Option<&str>) -> bool {
        lac.is_none_or(|name| !self.unaccounted_lacs.contains(name))
    }

    /// The core.
    pub fn core(&self) -> &AcctCore {
        &self.core
    }

    /// The core, to hand it events.
    pub fn core_mut(&mut self) -> &mut AcctCore {
        &mut self.core
    }

    /// Syncs the spool and sends what may be sent (spawned, never awaited).
    pub fn dispatch(&mut self) {
        self.core.sync();
        let now = Instant::now();
        let unix = unix_now();
        while let Some((seq, attributes)) = self.core.poll_request(now, unix) {
            let client = self.client.clone();
            let tx = self.tx.clone();
            let round_trip = Arc::clone(&self.round_trip);
            tokio::spawn(async move {
                let sent = Instant::now();
                let result = client.account(attributes).await;
                if result.is_ok()
                    && let Ok(mut h) = round_trip.lock()
                {
                    h.observe(sent.elapsed());
                }
                let answer = Answer::of(&result);
                let _ = tx.send((seq, answer)).await;
            });
        }
    }

    /// The next answer; never ends (this holds a sender).
    pub async fn recv(&mut self) -> Option<(u64, Answer)> {
        self.rx.recv().await
    }

    /// An answer from [`Accounting::recv`].
    pub fn handle_answer(&mut self, (seq, answer): (u64, Answer)) {
        self.core.handle_answer(Instant::now(), seq, answer);
    }

    /// Appends Accounting-Off and sends until the spool is empty or `grace` passed.
    pub async fn drain(&mut self, grace: Duration) {
        self.core.shutdown(unix_now());
        let give_up = tokio::time::Instant::now() + grace;
        loop {
            self.dispatch();
            if self.core.spool().is_empty() {
                break;
            }
            let retry = self.core.poll_timeout();
            tokio::select! {
                _ = tokio::time::sleep_until(give_up) => {
                    warn!(
                        pending = self.core.spool().len(),
                        "shutdown: accounting records left in the spool for the next start"
                    );
                    break;
                }
                Some(answer) = self.rx.recv() => self.handle_answer(answer),
                _ = super::sleep_until(retry) => {
                    self.core.handle_timeout(Instant::now(), unix_now(), |_| None);
                }
            }
        }
    }
}

impl Accounting {
    /// Books a note of the PPP sessions at `now`; `context(key, acct_session_id)`: the
    /// session's NAS, station and tunnel attributes.
    pub fn note(
        &mut self,
        now: Instant,
        note: AcctNote,
        context: impl FnOnce(SessionKey, &str) -> SessionContext,
    ) {
        let unix = unix_now();
        match note {
            AcctNote::Up {
                key,
                user,
                address,
                acct_session_id,
                aaa,
                class,
                interim_interval,
            } => {
                let info = SessionInfo {
                    context: context(key, &acct_session_id),
                    acct_session_id,
                    user_name: user,
                    framed_ip_address: Some(address),
                    class,
                    authentic: Some(match aaa {
                        AaaMode::Radius => Authentic::Radius,
                        AaaMode::Local => Authentic::Local,
                    }),
                };
                self.core.session_up(now, unix, key, info, interim_interval);
            }
            AcctNote::Down {
                key,
                reason,
                traffic,
            } => self.core.session_down(now, unix, key, &reason, &traffic),
        }
    }
}

/// [`Accounting::recv`] when there is an [`Accounting`], else never.
pub async fn recv(acct: Option<&mut Accounting>) -> Option<(u64, Answer)> {
    match acct {
        Some(acct) => acct.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;

//! The management socket of xlnsd, for `xlnsctl` (issue #8).
//!
//! # Contract
//!
//! * A Unix stream socket (`[management] socket`); each line a client sends is one JSON
//!   request `{"args": ["show", "sessions", "--user", "alice"]}`, answered by one JSON
//!   line: `{"ok": true, "columns": [...], "rows": [{...}, ...]}` for tables, or
//!   `{"ok": false, "error": "..."}`.
//! * The socket task only parses lines and forwards them to the control task over a
//!   bounded channel ([`Request`]); the control task answers from its own state
//!   ([`Shell::manage`]), so nothing is shared or locked.
//! * Commands: `show tunnels`, `show sessions [--user U] [--address A] [--lac L]
//!   [--tunnel T]`, `show session T/S`, `show pools`, `show workers`,
//!   `show radius` (servers in order of preference, request and spool counters),
//!   `clear session T/S` (LCP Terminate-Request, then CDN result 3), `clear tunnel T`
//!   (StopCCN result 1, RFC 2661 §4.4.2).

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Instant;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info};
use xlns_dataplane::shm::{Counters, DROP_REASONS, Writer};

use super::Shell;
use super::metrics::tunnel_state_label;
use crate::l2tp::endpoint::SessionKey;

/// StopCCN Result Code 1: general request to clear control connection (RFC 2661 §4.4.2).
const STOPCCN_CLEAR: u16 = 1;
/// CDN Result Code 3: call disconnected for administrative reasons (RFC 2661 §4.4.2).
const CDN_ADMIN: u16 = 3;
/// Requests queued for the control task at most.
pub const QUEUE: usize = 16;
/// Longest request line accepted.
const MAX_LINE: usize = 4096;

/// One request for the control task.
#[derive(Debug)]
pub struct Request {
    pub args: Vec<String>,
    pub reply: oneshot::Sender<Value>,
}

/// Per-worker drop counters of the segment: (worker, reason name, count), non-zero only.
pub fn worker_drops(writer: &Writer) -> Vec<(u32, String, u64)> {
    use xlns_dataplane::fastpath::DropReason;
    let mut out = Vec::new();
    let workers = writer.geometry().max_workers;
    for worker in 0..workers {
        let Ok(counters) = writer.drop_counters(worker) else {
            continue;
        };
        for (i, c) in counters.iter().enumerate().take(DROP_REASONS) {
            // Relaxed: a monotonic counter read for display; no other data depends on it.
            let n = c.load(Ordering::Relaxed);
            if n == 0 {
                continue;
            }
            let name = DropReason::ALL
                .get(i)
                .map_or_else(|| format!("reason-{i}"), |r| r.name().to_owned());
            out.push((worker, name, n));
        }
    }
    out
}

/// Subscriber IP packets and bytes each data-plane worker forwarded, both directions:
/// `(worker, totals)` for every worker of the segment's geometry. The sum of the worker's
/// counter column over every slot: the columns are never zeroed (a reused slot gets a new
/// base, not a reset), so each total only grows while the segment exists.
pub fn worker_traffic(writer: &Writer) -> Vec<(u32, Counters)> {
    let seg = writer.segment();
    (0..writer.geometry().max_workers)
        .filter_map(|worker| {
            let column = seg.counter_column(worker)?;
            let mut sum = Counters::default();
            for c in column {
                sum.add(c);
            }
            Some((worker, sum))
        })
        .collect()
}

/// Accepts xlnsctl connections on `path` (an old socket file there is replaced).
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    UnixListener::bind(path)
}

/// Serves the socket: one task per connection, each line forwarded to the control task.
pub async fn serve(listener: UnixListener, requests: mpsc::Sender<Request>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let requests = requests.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read.take(1 << 20)).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let answer = if line.len() > MAX_LINE {
                    json!({"ok": false, "error": "request too long"})
                } else {
                    match serde_json::from_str::<Value>(&line) {
                        Ok(v) => match v.get("args").and_then(Value::as_array) {
                            Some(args) => {
                                let args = args
                                    .iter()
                                    .filter_map(|a| a.as_str().map(str::to_owned))
                                    .collect();
                                ask(&requests, args).await
                            }
                            None => json!({"ok": false, "error": "no \"args\" array"}),
                        },
                        Err(e) => json!({"ok": false, "error": format!("bad JSON: {e}")}),
                    }
                };
                let mut out = answer.to_string();
                out.push('\n');
                if write.write_all(out.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
    }
}

async fn ask(requests: &mpsc::Sender<Request>, args: Vec<String>) -> Value {
    let (reply, answer) = oneshot::channel();
    if requests.send(Request { args, reply }).await.is_err() {
        return json!({"ok": false, "error": "xlnsd is shutting down"});
    }
    answer
        .await
        .unwrap_or_else(|_| json!({"ok": false, "error": "no answer"}))
}

fn error(message: impl Into<String>) -> Value {
    json!({"ok": false, "error": message.into()})
}

fn table(columns: &[&str], rows: Vec<Value>) -> Value {
    json!({"ok": true, "columns": columns, "rows": rows})
}

fn parse_key(s: &str) -> Option<SessionKey> {
    let (t, s) = s.split_once('/')?;
    Some(SessionKey {
        tunnel: t.parse().ok()?,
        session: s.parse().ok()?,
    })
}

const SESSION_COLUMNS: &[&str] = &[
    "tunnel", "session", "state", "lac", "user", "address", "peer", "uptime_s",
];

impl Shell {
    /// Answers one management request (in the control task).
    pub(crate) fn manage(&mut self, args: &[String]) -> Value {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        info!(?args, "management request");
        match args.as_slice() {
            ["show", "tunnels"] => self.show_tunnels(),
            ["show", "sessions", filters @ ..] => self.show_sessions(filters),
            ["show", "session", key] => match parse_key(key) {
                Some(key) => self.show_session(key),
                None => error("expected <tunnel>/<session>"),
            },
            ["show", "pools"] => self.show_pools(),
            ["show", "workers"] => self.show_workers(),
            ["show", "radius"] => self.show_radius(),
            ["clear", "session", key] => match parse_key(key) {
                Some(key) => self.clear_session(key),
                None => error("expected <tunnel>/<session>"),
            },
            ["clear", "tunnel", id] => match id.parse() {
                Ok(id) => self.clear_tunnel(id),
                Err(_) => error("expected a tunnel id"),
            },
            ["reload"] => match self.reload() {
                super::reload::ReloadOutcome::Applied { ignored } => {
                    let message = if ignored.is_empty() {
                        "configuration reloaded".to_owned()
                    } else {
                        format!(
                            "configuration reloaded; applies only at start, not changed: {}",
                            ignored.join(", ")
                        )
                    };
                    json!({ "ok": true, "message": message, "ignored": ignored })
                }
                super::reload::ReloadOutcome::Refused(why) => error(why),
            },
            _ => error(format!("unknown command: {}", args.join(" "))),
        }
    }

    fn show_tunnels(&self) -> Value {
        let mut rows = Vec::new();
        for id in self.endpoint.tunnel_ids() {
            let Some(t) = self.endpoint.tunnel_info(id) else {
                continue;
            };
            rows.push(json!({
                "tunnel": id,
                "peer_tunnel": t.peer_tunnel,
                "state": tunnel_state_label(t.state),
                "lac": self.gate.tunnel_policy(id).unwrap_or("none"),
                "peer": t.peer.to_string(),
                "host_name": String::from_utf8_lossy(&t.peer_host_name),
                "sessions": t.sessions,
                "retransmissions": t.transport.retransmissions,
                "rtt_ms": t.transport.srtt.map(|d| d.as_secs_f64() * 1000.0),
                "cwnd": t.transport.cwnd,
            }));
        }
        table(
            &[
                "tunnel",
                "peer_tunnel",
                "state",
                "lac",
                "peer",
                "host_name",
                "sessions",
                "retransmissions",
                "rtt_ms",
                "cwnd",
            ],
            rows,
        )
    }

    fn session_row(&self, key: SessionKey, now: Instant) -> Value {
        let r = self.telemetry.sessions.get(&key);
        let l2tp = self.endpoint.session_info(key);
        let peer = self
            .endpoint
            .tunnel_info(key.tunnel)
            .map(|t| t.peer.to_string());
        json!({
            "tunnel": key.tunnel,
            "session": key.session,
            "state": self.telemetry.session_state(key, l2tp.map(|(s, _)| s)),
            "lac": self.gate.tunnel_policy(key.tunnel).unwrap_or("none"),
            "user": r.and_then(|r| r.user.clone()),
            "address": r.and_then(|r| r.address).map(|a| a.to_string()),
            "peer": peer,
            "uptime_s": r.and_then(|r| r.up_at).map(|at| now.saturating_duration_since(at).as_secs()),
        })
    }

    fn show_sessions(&self, filters: &[&str]) -> Value {
        let mut user = None;
        let mut address = None;
        let mut lac = None;
        let mut tunnel = None;
        let mut it = filters.iter();
        while let Some(flag) = it.next() {
            let Some(value) = it.next() else {
                return error(format!("{flag} needs a value"));
            };
            match *flag {
                "--user" => user = Some(*value),
                "--address" => address = Some(*value),
                "--lac" => lac = Some(*value),
                "--tunnel" => match value.parse::<u16>() {
                    Ok(t) => tunnel = Some(t),
                    Err(_) => return error("--tunnel needs a tunnel id"),
                },
                other => return error(format!("unknown filter {other}")),
            }
        }
        let now = Instant::now();
        let rows = self
            .telemetry
            .sessions
            .iter()
            .filter(|(key, r)| {
                tunnel.is_none_or(|t| key.tunnel == t)
                    && user.is_none_or(|u| r.user.as_deref() == Some(u))
                    && address
                        .is_none_or(|a| r.address.map(|x| x.to_string()).as_deref() == Some(a))
                    && lac.is_none_or(|l| self.gate.tunnel_policy(key.tunnel) == Some(l))
            })
            .map(|(key, _)| self.session_row(*key, now))
            .collect();
        table(SESSION_COLUMNS, rows)
    }

    fn show_session(&self, key: SessionKey) -> Value {
        let Some(r) = self.telemetry.sessions.get(&key) else {
            return error(format!("no session {}/{}", key.tunnel, key.session));
        };
        let mut row = self.session_row(key, Instant::now());
        if let (Some(obj), Some((_, call))) = (row.as_object_mut(), self.endpoint.session_info(key))
        {
            obj.insert("peer_session".into(), json!(call.peer_session));
            obj.insert("call_serial".into(), json!(call.call_serial));
            obj.insert(
                "calling_number".into(),
                json!(call.calling_number.as_deref().map(String::from_utf8_lossy)),
            );
            obj.insert("sequencing".into(), json!(call.sequencing_required));
        }
        if let Some(obj) = row.as_object_mut() {
            let ms = |a: Instant, b: Option<Instant>| {
                b.map(|b| b.saturating_duration_since(a).as_secs_f64() * 1000.0)
            };
            obj.insert("iccn_ms".into(), json!(ms(r.icrq_at, r.iccn_at)));
            obj.insert("ppp_up_ms".into(), json!(ms(r.icrq_at, r.up_at)));
            obj.insert(
                "acct_session_id".into(),
                json!(self.ppp.acct_session_id(key)),
            );
            if let Some(c) = self.ppp.dataplane().and_then(|d| d.counters(key)) {
                obj.insert("up_packets".into(), json!(c.up_packets));
                obj.insert("up_bytes".into(), json!(c.up_bytes));
                obj.insert("down_packets".into(), json!(c.down_packets));
                obj.insert("down_bytes".into(), json!(c.down_bytes));
            }
        }
        let columns: Vec<String> = row
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        json!({"ok": true, "columns": columns, "rows": [row]})
    }

    fn show_pools(&self) -> Value {
        let rows = self
            .ppp
            .pools()
            .iter()
            .map(|p| {
                let c = p.counters();
                json!({"pool": p.name(), "size": c.size, "used": c.used, "free": p.free(), "exhausted": c.exhausted})
            })
            .collect();
        table(&["pool", "size", "used", "free", "exhausted"], rows)
    }

    fn show_workers(&self) -> Value {
        let Some(dp) = self.ppp.dataplane() else {
            return error("no data plane segment attached ([dataplane] is off)");
        };
        let rows = worker_drops(dp.writer())
            .into_iter()
            .map(|(w, reason, n)| json!({"worker": w, "reason": reason, "drops": n}))
            .collect();
        table(&["worker", "reason", "drops"], rows)
    }

    /// RADIUS authentication and accounting counters, the accounting spool's state.
    fn show_radius(&self) -> Value {
        let Some(aaa) = &self.aaa else {
            return error("RADIUS is off (no [radius])");
        };
        let a = aaa.stats();
        let servers = |list: &[crate::config::RadiusServerConfig]| {
            list.iter()
                .map(|s| s.address.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut row = json!({
            "auth_servers": servers(&aaa.config().auth_servers),
            "acct_servers": servers(&aaa.config().acct_servers),
            "auth_requests": a.requests,
            "auth_accepts": a.accepts,
            "auth_rejects": a.rejects,
            "auth_failures": a.failures,
        });
        if let (Some(acct), Some(o)) = (&self.acct, row.as_object_mut()) {
            let c = acct.core().stats();
            let s = acct.core().spool_stats();
            for (k, v) in [
                ("acct_starts", c.starts),
                ("acct_interims", c.interims),
                ("acct_stops", c.stops),
                ("acct_requests", c.requests),
                ("acct_responses", c.responses),
                ("acct_timeouts", c.timeouts),
                ("acct_in_flight", acct.core().in_flight() as u64),
                ("spool_depth", s.depth),
                ("spool_bytes", s.bytes),
                ("spool_dropped", s.dropped),
                ("spool_replayed", s.replayed),
                ("spool_reboot_stops", s.reboot_stops),
                ("spool_torn_bytes", s.torn_bytes),
                ("spool_file_bytes", s.file_bytes),
                ("spool_superseded", s.superseded),
                ("spool_io_errors", s.io_errors),
            ] {
                o.insert(k.to_owned(), json!(v));
            }
            o.insert("spool_full".to_owned(), json!(s.full));
        }
        let columns: Vec<String> = row
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        json!({"ok": true, "columns": columns, "rows": [row]})
    }

    fn clear_session(&mut self, key: SessionKey) -> Value {
        let now = Instant::now();
        if self.endpoint.session_info(key).is_none() {
            return error(format!("no session {}/{}", key.tunnel, key.session));
        }
        if !self.ppp.close(now, key, &mut self.endpoint) {
            self.endpoint.close_session(now, key, CDN_ADMIN, None);
        }
        debug!(
            tunnel = key.tunnel,
            session = key.session,
            "cleared by operator"
        );
        json!({"ok": true, "message": format!("session {}/{} cleared", key.tunnel, key.session)})
    }

    fn clear_tunnel(&mut self, id: u16) -> Value {
        if self.endpoint.tunnel_info(id).is_none() {
            return error(format!("no tunnel {id}"));
        }
        self.endpoint
            .close_tunnel(Instant::now(), id, STOPCCN_CLEAR);
        json!({"ok": true, "message": format!("tunnel {id} cleared")})
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use xlns_dataplane::fastpath::DropReason;
    use xlns_dataplane::shm::Geometry;

    /// The kernel's drops at the data plane's AF_XDP sockets (the `xsk-*` reasons its
    /// workers add) reach `show workers` and the metrics by name, like the fast path's.
    #[test]
    fn worker_drops_name_the_kernel_drops() {
        let path = std::env::temp_dir().join(format!("xlns-mgmt-drops-{}", std::process::id()));
        let writer = Writer::create(
            &path,
            Geometry {
                max_sessions: 16,
                max_workers: 2,
            },
        )
        .unwrap();
        let column = writer.drop_counters(1).unwrap();
        column[DropReason::XskRxRingFull as usize].store(7, Ordering::Relaxed);
        column[DropReason::XskFillRingEmpty as usize].store(3, Ordering::Relaxed);
        column[DropReason::TxRingFull as usize].store(1, Ordering::Relaxed);
        let rows = worker_drops(&writer);
        let _ = std::fs::remove_file(&path);
        assert_eq!(
            rows,
            [
                (1, "tx-ring-full".to_owned(), 1),
                (1, "xsk-rx-ring-full".to_owned(), 7),
                (1, "xsk-fill-ring-empty".to_owned(), 3),
            ]
        );
    }
}

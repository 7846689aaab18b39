//! The accounting check of the lab (`lab.sh --radius`, issue #7): after the traffic and
//! the teardown, every session's Stop record in FreeRADIUS' `detail` file must carry
//! exactly what the generator sent and received for that session.
//!
//! # What the LNS counts (RFC 2866 §5.3, §5.4, §5.8, §5.9)
//!
//! Acct-Input-Octets / -Packets: the IP packets the subscriber sent into the port (PPP
//! protocol IPv4 or IPv6 that the data plane forwarded, or answered: an echo to the
//! gateway), each counted with its IP length: the inner packet, without the PPP, L2TP,
//! UDP, outer IP and Ethernet headers. Acct-Output-*: the IP packets the data plane sent
//! down the session, counted the same way. PPP control traffic (LCP echoes, IPCP, ...)
//! is not counted: it is the link's own, not the subscriber's service, and neither the
//! Linux PPP interface counters (what pppd and accel-ppp report) count it. So, for the
//! generator's flows:
//!
//! * Input packets / octets = the upstream packets the generator sent for the session /
//!   the sum of their IP lengths (each of them forwarded: the check also requires that
//!   the core-side sink received them all);
//! * Output packets / octets = the downstream packets the LAC-side sink received for the
//!   session / the sum of their inner IP lengths.
//!
//! # Contract
//!
//! [`check`] matches the Stop records to the sessions by Framed-IP-Address, requires
//! exactly one Start and one Stop per Acct-Session-Id with the same Framed-IP-Address,
//! and compares the four counts (Gigawords included). The counts file is the lab's
//! (`xlns-bench lab --counts-out`, [`Counts`]).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::traffic::SessionCount;

/// One session's traffic over the whole lab run (warm-up included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionCounts {
    pub tunnel_id: u16,
    pub session_id: u16,
    pub subscriber: Ipv4Addr,
    pub up: SessionCount,
    pub down: SessionCount,
}

/// Every session's traffic (`xlns-bench lab --counts-out`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub sessions: Vec<SessionCounts>,
}

impl Counts {
    pub fn load(path: &Path) -> std::io::Result<Counts> {
        let text = std::fs::read_to_string(path)?;
        serde_json::from_str(&text).map_err(std::io::Error::other)
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string(self).map_err(std::io::Error::other)?;
        std::fs::write(path, text)
    }
}

/// One record of a FreeRADIUS `detail` file: `Name = value` pairs (quotes removed).
pub type DetailRecord = Vec<(String, String)>;

/// The records of a `detail` file's text (records are separated by blank lines; the
/// first line of each is its time stamp; attributes are tab-indented `Name = value`).
pub fn parse_detail(text: &str) -> Vec<DetailRecord> {
    text.split("\n\n")
        .filter(|r| !r.trim().is_empty())
        .map(|r| {
            r.lines()
                .filter(|l| l.starts_with('\t'))
                .filter_map(|l| {
                    let (k, v) = l.trim().split_once(" = ")?;
                    Some((k.to_owned(), v.trim_matches('"').to_owned()))
                })
                .collect()
        })
        .collect()
}

fn value<'a>(r: &'a DetailRecord, name: &str) -> Option<&'a str> {
    r.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn number(r: &DetailRecord, name: &str) -> u64 {
    value(r, name).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Octets with their Gigawords (RFC 2869 §5.1, §5.2).
fn octets(r: &DetailRecord, octets: &str, gigawords: &str) -> u64 {
    (number(r, gigawords) << 32) + number(r, octets)
}

/// What one Stop record says and what the generator measured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub acct_session_id: String,
    pub address: Ipv4Addr,
    /// (input packets, input octets, output packets, output octets) of the Stop.
    pub stop: [u64; 4],
    /// The same four from the generator: up sent, up sent octets, down received, down
    /// received octets.
    pub generator: [u64; 4],
}

/// The outcome of [`check`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    pub rows: Vec<Row>,
    /// Everything wrong, one line each; empty: every session matched.
    pub errors: Vec<String>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// The summary line and, on failure, the errors.
    pub fn summary(&self, sessions: usize) -> String {
        let matched = self.rows.iter().filter(|r| r.stop == r.generator).count();
        let sum = |i: usize| self.rows.iter().map(|r| r.stop[i]).sum::<u64>();
        let mut out = format!(
            "  accounting  {matched}/{sessions} Stop records equal the generator's counts \
             (input {} packets / {} octets, output {} packets / {} octets in all)\n",
            sum(0),
            sum(1),
            sum(2),
            sum(3)
        );
        for e in &self.errors {
            out.push_str(&format!("  accounting  ERROR {e}\n"));
        }
        out
    }
}

/// Compares the `detail` records with the generator's `counts`; see the module docs.
pub fn check(detail: &[DetailRecord], counts: &Counts) -> Outcome {
    let mut out = Outcome::default();
    // Acct-Session-Id -> (Starts, Stops).
    let mut by_id: BTreeMap<&str, (Vec<&DetailRecord>, Vec<&DetailRecord>)> = BTreeMap::new();
    for r in detail {
        let Some(id) = value(r, "Acct-Session-Id") else {
            continue;
        };
        // Accounting-On / -Off carry an Acct-Session-Id of their own; Interim-Updates
        // are not checked.
        match value(r, "Acct-Status-Type") {
            Some("Start") => by_id.entry(id).or_default().0.push(r),
            Some("Stop") => by_id.entry(id).or_default().1.push(r),
            _ => {}
        }
    }
    let mut by_address: BTreeMap<Ipv4Addr, Vec<(&str, &DetailRecord)>> = BTreeMap::new();
    for (id, (starts, stops)) in &by_id {
        if starts.len() != 1 || stops.len() != 1 {
            out.errors.push(format!(
                "Acct-Session-Id {id}: {} Start and {} Stop records (want one each)",
                starts.len(),
                stops.len()
            ));
            continue;
        }
        let (start, stop) = (starts[0], stops[0]);
        let address = value(stop, "Framed-IP-Address").and_then(|a| a.parse().ok());
        let start_address = value(start, "Framed-IP-Address").and_then(|a| a.parse().ok());
        match address {
            Some(a) if start_address == Some(a) => {
                by_address.entry(a).or_default().push((id, stop))
            }
            _ => out.errors.push(format!(
                "Acct-Session-Id {id}: Framed-IP-Address {start_address:?} in the Start, \
                 {address:?} in the Stop"
            )),
        }
    }
    for s in &counts.sessions {
        let stops = by_address.remove(&s.subscriber).unwrap_or_default();
        let [(id, stop)] = stops.as_slice() else {
            out.errors.push(format!(
                "session {}/{} ({}): {} Stop records with its Framed-IP-Address (want 1)",
                s.tunnel_id,
                s.session_id,
                s.subscriber,
                stops.len()
            ));
            continue;
        };
        let row = Row {
            acct_session_id: (*id).to_owned(),
            address: s.subscriber,
            stop: [
                number(stop, "Acct-Input-Packets"),
                octets(stop, "Acct-Input-Octets", "Acct-Input-Gigawords"),
                number(stop, "Acct-Output-Packets"),
                octets(stop, "Acct-Output-Octets", "Acct-Output-Gigawords"),
            ],
            generator: [
                s.up.sent,
                s.up.sent_octets,
                s.down.received,
                s.down.received_octets,
            ],
        };
        if s.up.received != s.up.sent {
            out.errors.push(format!(
                "session {}/{} ({}): the core-side sink received {} of the {} upstream packets",
                s.tunnel_id, s.session_id, s.subscriber, s.up.received, s.up.sent
            ));
        }
        if row.stop != row.generator {
            out.errors.push(format!(
                "session {}/{} ({}, {id}): Stop input {}/{} output {}/{} (packets/octets), \
                 generator {}/{} and {}/{}",
                s.tunnel_id,
                s.session_id,
                s.subscriber,
                row.stop[0],
                row.stop[1],
                row.stop[2],
                row.stop[3],
                row.generator[0],
                row.generator[1],
                row.generator[2],
                row.generator[3],
            ));
        }
        out.rows.push(row);
    }
    for (address, stops) in by_address {
        for (id, _) in stops {
            out.errors.push(format!(
                "Acct-Session-Id {id}: a Stop for {address}, which is no session of the run"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn record(status: &str, id: &str, addr: &str, counts: [u64; 4]) -> String {
        format!(
            "Fri Nov 27 11:00:00 2026\n\tAcct-Session-Id = \"{id}\"\n\tAcct-Status-Type = {status}\n\
             \tFramed-IP-Address = {addr}\n\tAcct-Input-Packets = {}\n\tAcct-Input-Octets = {}\n\
             \tAcct-Input-Gigawords = 0\n\tAcct-Output-Packets = {}\n\tAcct-Output-Octets = {}\n\n",
            counts[0], counts[1], counts[2], counts[3]
        )
    }

    fn counts(up: (u64, u64), down: (u64, u64)) -> Counts {
        Counts {
            sessions: vec![SessionCounts {
                tunnel_id: 1,
                session_id: 2,
                subscriber: Ipv4Addr::new(100, 64, 0, 1),
                up: SessionCount {
                    sent: up.0,
                    sent_octets: up.1,
                    received: up.0,
                    received_octets: up.1,
                },
                down: SessionCount {
                    sent: down.0,
                    sent_octets: down.1,
                    received: down.0,
                    received_octets: down.1,
                },
            }],
        }
    }

    #[test]
    fn matching_stop_passes_and_a_wrong_count_or_a_duplicate_fails() {
        let text = "t\n\tAcct-Session-Id = \"on\"\n\tAcct-Status-Type = Accounting-On\n\n"
            .to_owned()
            + &record("Start", "a1", "100.64.0.1", [0; 4])
            + &record("Stop", "a1", "100.64.0.1", [10, 1000, 9, 900]);
        let detail = parse_detail(&text);
        let ok = check(&detail, &counts((10, 1000), (9, 900)));
        assert!(ok.ok(), "{:?}", ok.errors);
        assert_eq!(ok.rows[0].acct_session_id, "a1");
        assert!(ok.summary(1).contains("1/1 Stop records equal"));

        let off = check(&detail, &counts((10, 1000), (9, 901)));
        assert_eq!(off.errors.len(), 1, "{:?}", off.errors);

        let dup = text.clone() + &record("Stop", "a1", "100.64.0.1", [10, 1000, 9, 900]);
        let dup = check(&parse_detail(&dup), &counts((10, 1000), (9, 900)));
        assert!(!dup.ok());

        let missing = check(&[], &counts((1, 1), (1, 1)));
        assert!(
            missing.errors[0].contains("0 Stop records"),
            "{:?}",
            missing.errors
        );
    }

    #[test]
    fn gigawords_add_two_to_the_32_octets() {
        let r = parse_detail("t\n\tAcct-Input-Octets = 5\n\tAcct-Input-Gigawords = 2\n");
        assert_eq!(
            octets(&r[0], "Acct-Input-Octets", "Acct-Input-Gigawords"),
            (2 << 32) + 5
        );
    }
}

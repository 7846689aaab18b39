//! The session list the generator sends for: one entry per established session, as JSON
//! (the format the LAC emulator exports its sessions in, and the hardware profiles read).
//!
//! ```json
//! {"sessions":[{"tunnel_id":1,"session_id":1,"peer_tunnel_id":1001,"peer_session_id":1,
//!   "lac_addr":"10.1.0.1","lac_port":1701,"lns_addr":"10.1.0.2","lns_port":1701,
//!   "subscriber":"100.64.0.1","gateway":"100.64.0.1"}]}
//! ```
//!
//! `tunnel_id` / `session_id` are the LNS's ids (what the LAC writes into upstream data
//! messages, RFC 2661 §3.1: the recipient's ids); `peer_*` are the LAC's.

use std::net::Ipv4Addr;
use std::path::Path;

use serde::{Deserialize, Serialize};
use xlns_dataplane::session::{SessionRecord, flags};

/// One established session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficSession {
    pub tunnel_id: u16,
    pub session_id: u16,
    pub peer_tunnel_id: u16,
    pub peer_session_id: u16,
    pub lac_addr: Ipv4Addr,
    pub lac_port: u16,
    pub lns_addr: Ipv4Addr,
    pub lns_port: u16,
    pub subscriber: Ipv4Addr,
    /// The subscriber's gateway (the LNS's IPCP address), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Ipv4Addr>,
}

/// Every session of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionList {
    pub sessions: Vec<TrafficSession>,
}

impl SessionList {
    /// `sessions` sessions spread round-robin over `tunnels` tunnels between `lac` and
    /// `lns` (port 1701 both), subscriber addresses from `first_subscriber` up. Tunnel ids
    /// are 1..=tunnels (the LAC's: 1001..), session ids count from 1 in each tunnel.
    pub fn synthetic(
        sessions: u32,
        tunnels: u16,
        lac: Ipv4Addr,
        lns: Ipv4Addr,
        first_subscriber: Ipv4Addr,
    ) -> Result<SessionList, String> {
        let tunnels = tunnels.max(1);
        let per_tunnel = sessions.div_ceil(u32::from(tunnels));
        if per_tunnel > u32::from(u16::MAX) {
            return Err(format!(
                "{sessions} sessions over {tunnels} tunnels: more than 65535 per tunnel"
            ));
        }
        let base = u32::from(first_subscriber);
        let list = (0..sessions)
            .map(|i| {
                let t = (i % u32::from(tunnels)) as u16;
                let s = (i / u32::from(tunnels)) as u16;
                TrafficSession {
                    tunnel_id: t + 1,
                    session_id: s + 1,
                    peer_tunnel_id: t.wrapping_add(1001),
                    peer_session_id: s + 1,
                    lac_addr: lac,
                    lac_port: 1701,
                    lns_addr: lns,
                    lns_port: 1701,
                    subscriber: Ipv4Addr::from(base.wrapping_add(i)),
                    gateway: None,
                }
            })
            .collect();
        Ok(SessionList { sessions: list })
    }

    pub fn load(path: &Path) -> std::io::Result<SessionList> {
        let text = std::fs::read_to_string(path)?;
        serde_json::from_str(&text).map_err(std::io::Error::other)
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string(self).map_err(std::io::Error::other)?;
        std::fs::write(path, text)
    }
}

impl TrafficSession {
    /// The record xlnsd would publish for this session (IPv4 outer and inner, PPP with
    /// address/control and full protocol, session MTU 1500), without its template.
    pub fn record(&self) -> SessionRecord {
        let mut rec = SessionRecord {
            local_tunnel: self.tunnel_id,
            local_session: self.session_id,
            peer_tunnel: self.peer_tunnel_id,
            peer_session: self.peer_session_id,
            flags: flags::HAS_IPV4,
            peer_port: self.lac_port,
            local_port: self.lns_port,
            mtu: 1500,
            subscriber_v4: self.subscriber.octets(),
            ..SessionRecord::EMPTY
        };
        rec.peer_addr[..4].copy_from_slice(&self.lac_addr.octets());
        rec.local_addr[..4].copy_from_slice(&self.lns_addr.octets());
        rec
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn synthetic_sessions_are_unique_and_round_trip_through_json() {
        let list = SessionList::synthetic(
            1000,
            10,
            Ipv4Addr::new(10, 1, 0, 1),
            Ipv4Addr::new(10, 1, 0, 2),
            Ipv4Addr::new(100, 64, 0, 1),
        )
        .unwrap();
        assert_eq!(list.sessions.len(), 1000);
        let mut keys: Vec<(u16, u16)> = list
            .sessions
            .iter()
            .map(|s| (s.tunnel_id, s.session_id))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), 1000);
        assert!(
            list.sessions
                .iter()
                .all(|s| s.tunnel_id >= 1 && s.tunnel_id <= 10)
        );
        assert_eq!(
            list.sessions[999].subscriber,
            Ipv4Addr::new(100, 64, 3, 232)
        );
        let text = serde_json::to_string(&list).unwrap();
        assert_eq!(serde_json::from_str::<SessionList>(&text).unwrap(), list);
        let rec = list.sessions[0].record();
        assert_eq!((rec.local_tunnel, rec.local_session), (1, 1));
        assert_eq!(rec.peer_addr[..4], [10, 1, 0, 1]);
    }

    #[test]
    fn too_many_sessions_per_tunnel_are_refused() {
        let a = Ipv4Addr::new(10, 1, 0, 1);
        assert!(SessionList::synthetic(70_000, 1, a, a, a).is_err());
    }
}

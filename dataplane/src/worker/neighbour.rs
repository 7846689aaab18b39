//! The core next hop's MAC address, kept current while the data plane runs (issue #5:
//! "refreshed when it changes").
//!
//! * [`NextHopMac`]: the address in one `AtomicU64`, written by the control thread and
//!   read by every worker once per loop iteration (one Relaxed load, no lock, no
//!   per-packet cost). Six octets in one word: a reader never sees half an old and half
//!   a new address.
//! * [`NeighbourRefresh`]: the control thread re-reads the kernel's neighbour table
//!   (`/proc/net/arp`) every [`REFRESH_INTERVAL`] for the configured gateway and
//!   publishes a changed address. When the entry is missing or incomplete (expired,
//!   being re-resolved) the last address stays in use and a datagram to the gateway's
//!   discard port makes the kernel resolve it again. Nothing blocks.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::host::arp_lookup;
use crate::wire::EthernetAddress;

/// How often [`NeighbourRefresh::poll`] reads the neighbour table.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(1);

/// A MAC address shared between one writer and many readers, lock-free.
#[derive(Debug)]
pub struct NextHopMac(AtomicU64);

const fn pack(mac: EthernetAddress) -> u64 {
    let m = mac.0;
    u64::from_le_bytes([m[0], m[1], m[2], m[3], m[4], m[5], 0, 0])
}

const fn unpack(word: u64) -> EthernetAddress {
    let b = word.to_le_bytes();
    EthernetAddress([b[0], b[1], b[2], b[3], b[4], b[5]])
}

impl NextHopMac {
    /// Holding `mac`.
    pub const fn new(mac: EthernetAddress) -> NextHopMac {
        NextHopMac(AtomicU64::new(pack(mac)))
    }

    /// The current address.
    #[inline]
    pub fn load(&self) -> EthernetAddress {
        // Relaxed: an independent value published whole in one word; nothing else is
        // published with it, and a worker picking it up one iteration late is fine.
        unpack(self.0.load(Ordering::Relaxed))
    }

    /// Publishes `mac`; returns whether it differs from the previous address.
    pub fn store(&self, mac: EthernetAddress) -> bool {
        // Relaxed: see `load`. Single writer (the control thread).
        self.0.swap(pack(mac), Ordering::Relaxed) != pack(mac)
    }
}

/// What one refresh found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    /// The entry is there with the address already in use.
    Unchanged,
    /// The entry has a new address, now published.
    Changed(EthernetAddress),
    /// No complete entry: the old address stays; the kernel was asked to resolve.
    Missing,
}

/// Periodic re-resolution of the core gateway's MAC address; see the module
/// documentation.
#[derive(Debug)]
pub struct NeighbourRefresh {
    gateway: Ipv4Addr,
    device: String,
    next_at: Instant,
    prod: Option<UdpSocket>,
    /// Changes published so far.
    pub changes: u64,
    /// Refreshes that found no complete entry.
    pub misses: u64,
}

impl NeighbourRefresh {
    /// Refreshes `gateway` on `device`, the first time at `now + REFRESH_INTERVAL`.
    pub fn new(gateway: Ipv4Addr, device: &str, now: Instant) -> NeighbourRefresh {
        NeighbourRefresh {
            gateway,
            device: device.to_string(),
            next_at: now + REFRESH_INTERVAL,
            prod: None,
            changes: 0,
            misses: 0,
        }
    }

    /// When due, reads `/proc/net/arp` and [`NeighbourRefresh::apply`]s it; `None` when
    /// not due yet.
    pub fn poll(&mut self, now: Instant, target: &NextHopMac) -> io::Result<Option<Refresh>> {
        if now < self.next_at {
            return Ok(None);
        }
        self.next_at = now + REFRESH_INTERVAL;
        let table = std::fs::read_to_string("/proc/net/arp")?;
        Ok(Some(self.apply(&table, target)))
    }

    /// One refresh from the neighbour table text `table` (`/proc/net/arp` format).
    pub fn apply(&mut self, table: &str, target: &NextHopMac) -> Refresh {
        match arp_lookup(table, self.gateway, Some(&self.device)) {
            Some(mac) if target.store(mac) => {
                self.changes += 1;
                Refresh::Changed(mac)
            }
            Some(_) => Refresh::Unchanged,
            None => {
                self.misses += 1;
                self.prod_kernel();
                Refresh::Missing
            }
        }
    }

    /// Any datagram to the gateway makes the kernel resolve it; errors do not matter.
    fn prod_kernel(&mut self) {
        if self.prod.is_none() {
            self.prod = UdpSocket::bind("0.0.0.0:0").ok();
        }
        if let Some(sock) = &self.prod {
            let _ = sock.set_nonblocking(true);
            let _ = sock.send_to(b"", SocketAddrV4::new(self.gateway, 9));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    const A: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
    const B: EthernetAddress = EthernetAddress([2, 0xff, 0xee, 0xdd, 0xcc, 0xbb]);

    fn table(entry: &str) -> String {
        format!(
            "IP address       HW type     Flags       HW address            Mask     Device\n{entry}\n"
        )
    }

    #[test]
    fn next_hop_mac_round_trips_and_reports_changes() {
        let nh = NextHopMac::new(A);
        assert_eq!(nh.load(), A);
        assert!(!nh.store(A));
        assert!(nh.store(B));
        assert_eq!(nh.load(), B);
    }

    #[test]
    fn refresh_publishes_a_changed_entry_and_keeps_the_last_on_a_miss() {
        let gw = Ipv4Addr::new(127, 0, 0, 1);
        let nh = NextHopMac::new(A);
        let mut r = NeighbourRefresh::new(gw, "core0", Instant::now());
        let same = table("127.0.0.1 0x1 0x2 02:00:00:00:00:01 * core0");
        assert_eq!(r.apply(&same, &nh), Refresh::Unchanged);
        let moved = table("127.0.0.1 0x1 0x2 02:ff:ee:dd:cc:bb * core0");
        assert_eq!(r.apply(&moved, &nh), Refresh::Changed(B));
        assert_eq!(nh.load(), B);
        assert_eq!(r.changes, 1);
        // Incomplete (being re-resolved), on another device, or gone: B stays.
        for t in [
            table("127.0.0.1 0x1 0x0 00:00:00:00:00:00 * core0"),
            table("127.0.0.1 0x1 0x2 02:00:00:00:00:01 * other"),
            table(""),
        ] {
            assert_eq!(r.apply(&t, &nh), Refresh::Missing);
            assert_eq!(nh.load(), B);
        }
        assert_eq!(r.misses, 3);
    }

    #[test]
    fn poll_waits_for_its_interval() {
        let now = Instant::now();
        let nh = NextHopMac::new(A);
        let mut r = NeighbourRefresh::new(Ipv4Addr::new(127, 0, 0, 1), "lo", now);
        assert_eq!(r.poll(now, &nh).unwrap(), None);
        assert!(r.poll(now + REFRESH_INTERVAL, &nh).unwrap().is_some());
        assert_eq!(r.poll(now + REFRESH_INTERVAL, &nh).unwrap(), None);
    }

    /// Readers on other threads only ever see one of the published addresses, whole.
    #[test]
    fn readers_never_see_a_torn_address() {
        let nh = Arc::new(NextHopMac::new(A));
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (nh, stop) = (nh.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut seen_b = false;
                    // Until stopped and B seen: the last store is B, so every reader
                    // ends however late it was scheduled (no timing assumption).
                    while !(stop.load(Ordering::Relaxed) && seen_b) {
                        let mac = nh.load();
                        assert!(mac == A || mac == B, "{mac}");
                        seen_b |= mac == B;
                    }
                    seen_b
                })
            })
            .collect();
        for i in 0..20_000 {
            nh.store(if i % 2 == 0 { B } else { A });
        }
        nh.store(B);
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            assert!(r.join().unwrap());
        }
    }
}

//! What the data plane asks the host at start-up: interface indexes and MAC addresses,
//! and the core next hop's MAC address from the kernel's neighbour table.
//!
//! The next hop is resolved at start from `/proc/net/arp` (IPv4). When the gateway has no
//! complete entry yet, a UDP datagram to its discard port (9) makes the kernel resolve
//! it, and the table is read again until the deadline. While running, [`super::neighbour`]
//! re-reads the entry every second and hands a changed address to the workers.

use std::ffi::CString;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use crate::wire::EthernetAddress;

/// `aa:bb:cc:dd:ee:ff` (case-insensitive) as an address.
pub fn parse_mac(text: &str) -> Option<EthernetAddress> {
    let mut mac = [0u8; 6];
    let mut parts = text.trim().split(':');
    for byte in &mut mac {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(EthernetAddress(mac))
}

/// The interface index of `name` in the calling thread's network namespace.
pub fn ifindex(name: &str) -> io::Result<u32> {
    let c = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface name with NUL"))?;
    // SAFETY: a valid C string.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface {name}: {}", io::Error::last_os_error()),
        ));
    }
    Ok(index)
}

/// The MAC address of interface `name` (`/sys/class/net/<name>/address`).
pub fn interface_mac(name: &str) -> io::Result<EthernetAddress> {
    let path = format!("/sys/class/net/{name}/address");
    let text = std::fs::read_to_string(&path)?;
    parse_mac(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{path}: not a MAC address: {text:?}"),
        )
    })
}

/// ATF_COM of <net/if_arp.h>: the entry is complete.
const ATF_COM: u32 = 0x02;

/// The complete entry for `addr` in a `/proc/net/arp` text (optionally on `device`).
pub fn arp_lookup(table: &str, addr: Ipv4Addr, device: Option<&str>) -> Option<EthernetAddress> {
    // "IP address  HW type  Flags  HW address  Mask  Device"
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let [ip, _hw, flags, mac, _mask, dev] = cols.as_slice() else {
            return None;
        };
        let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).ok()?;
        let matches = ip.parse::<Ipv4Addr>().ok()? == addr
            && flags & ATF_COM != 0
            && device.is_none_or(|d| d == *dev);
        matches.then(|| parse_mac(mac)).flatten()
    })
}

/// Resolve `gateway` on `device` through the kernel's neighbour table, prodding the kernel
/// to resolve it, until `timeout`.
pub fn resolve_neighbour(
    gateway: Ipv4Addr,
    device: &str,
    timeout: Duration,
) -> io::Result<EthernetAddress> {
    let deadline = Instant::now() + timeout;
    let prod = UdpSocket::bind("0.0.0.0:0")?;
    loop {
        let table = std::fs::read_to_string("/proc/net/arp")?;
        if let Some(mac) = arp_lookup(&table, gateway, Some(device)) {
            return Ok(mac);
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no ARP entry for {gateway} on {device} after {timeout:?}"),
            ));
        }
        // Any datagram makes the kernel resolve the next hop; errors (no route yet,
        // ECONNREFUSED from an earlier one) do not matter.
        let _ = prod.send_to(b"", SocketAddrV4::new(gateway, 9));
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn macs_parse_strictly() {
        assert_eq!(
            parse_mac("02:aB:00:11:22:ff\n"),
            Some(EthernetAddress([2, 0xab, 0, 0x11, 0x22, 0xff]))
        );
        for bad in [
            "",
            "02:ab:00:11:22",
            "02:ab:00:11:22:ff:00",
            "02:ab:00:11:22:fff",
            "x",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
    }

    #[test]
    fn arp_table_lookup_wants_complete_entries_on_the_device() {
        let table = "IP address       HW type     Flags       HW address            Mask     Device\n\
                     10.0.0.1         0x1         0x2         02:00:00:00:00:01     *        core0\n\
                     10.0.0.2         0x1         0x0         00:00:00:00:00:00     *        core0\n\
                     10.0.0.3         0x1         0x2         02:00:00:00:00:03     *        other\n";
        let a = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(
            arp_lookup(table, a("10.0.0.1"), Some("core0")),
            Some(EthernetAddress([2, 0, 0, 0, 0, 1]))
        );
        assert_eq!(arp_lookup(table, a("10.0.0.2"), Some("core0")), None);
        assert_eq!(arp_lookup(table, a("10.0.0.3"), Some("core0")), None);
        assert!(arp_lookup(table, a("10.0.0.3"), None).is_some());
        assert_eq!(arp_lookup(table, a("10.0.0.9"), None), None);
    }
}

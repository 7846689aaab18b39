//! xlnsd's RADIUS accounting ([`Accounting`] with [`PppSessions`]) against a real
//! FreeRADIUS whose `detail` file is checked: LAC-role endpoints whose subscribers run the
//! client role of the PPP core (virtual clock for PPP and accounting timers, real time for
//! RADIUS), as in `xlnsd_radius.rs`.
//!
//! * Start, Interim-Update and Stop of a RADIUS session with the attributes of issue #7,
//!   the Stop's counts equal to the data plane counters: the session is published into a
//!   real shared-memory segment ([`Publisher`], access interface a veth pair made by the
//!   test with a permanent neighbour entry for the LAC), and the test writes the worker
//!   counter column of its slot as xlns-dataplane would ([`Reader::counters`]).
//! * A session authenticated from the local users file is accounted too (Acct-Authentic
//!   Local); a shutdown closes it with Admin-Reboot and ends with Accounting-Off.
//!
//! The veth pair needs root (CAP_NET_ADMIN); without it the data plane test is skipped
//! with a message.
#![allow(clippy::unwrap_used, clippy::panic)]

#[path = "support/freeradius.rs"]
mod freeradius;
#[path = "support/sim.rs"]
mod sim;

use std::process::Command;
use std::time::Duration;

use freeradius::{DetailRecord, FreeRadius, SECRET, detail_value};
use sim::Sim;
use xlns_controlplane::l2tp::session::OutgoingCall;
use xlns_controlplane::ppp::session::DownReason;
use xlns_dataplane::shm::Reader;

/// The simulation of `support/sim.rs` with the local user of these tests and calls that
/// carry Calling / Called Number and a connect speed.
fn new_sim(config: &str) -> Sim {
    let mut sim = Sim::new(config, "localuser local-pass\n");
    sim.call = OutgoingCall {
        calling_number: Some(b"0612345678".to_vec()),
        called_number: Some(b"4711".to_vec()),
        tx_connect_speed: 100_000_000,
        ..OutgoingCall::default()
    };
    sim
}

fn config(fr: &FreeRadius, lac_aaa: &str, dataplane: &str) -> String {
    format!(
        r#"
[ppp]
auth = ["pap"]
lcp_echo_interval = "30s"
gateway = "10.11.12.1"

[[pool]]
name = "p"
cidr = "10.11.12.0/24"

[radius]
auth = "radius"
nas_identifier = "xlns-acct"
nas_ip_address = "192.0.2.1"
timeout = "500ms"
[[radius.auth_server]]
address = "{}"
secret = "{SECRET}"
[[radius.acct_server]]
address = "{}"
secret = "{SECRET}"

[[lac]]
name = "any"
aaa = "{lac_aaa}"
{dataplane}
"#,
        fr.auth, fr.acct
    )
}

/// The detail records of Acct-Session-Id `id`, by Acct-Status-Type.
fn records_of<'a>(detail: &'a [DetailRecord], id: &str) -> Vec<(&'a str, &'a DetailRecord)> {
    detail
        .iter()
        .filter(|r| detail_value(r, "Acct-Session-Id") == Some(id))
        .map(|r| (detail_value(r, "Acct-Status-Type").unwrap_or("?"), r))
        .collect()
}

fn num(r: &DetailRecord, name: &str) -> u64 {
    detail_value(r, name)
        .unwrap_or_else(|| panic!("no {name} in {r:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number in {r:?}"))
}

/// A veth pair with a permanent neighbour entry for the simulated LAC (192.0.2.2), so
/// that the publisher finds the LAC's MAC; removed on drop.
struct Veth(String);

impl Veth {
    fn create() -> Option<Veth> {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("xac{}x{n}", std::process::id() % 100_000);
        let ip = |args: &[&str]| {
            Command::new("ip")
                .args(args)
                .status()
                .is_ok_and(|s| s.success())
        };
        let _ = ip(&["link", "del", &name]);
        let peer = format!("{name}p");
        if !ip(&["link", "add", &name, "type", "veth", "peer", "name", &peer]) {
            return None;
        }
        let veth = Veth(name.clone());
        assert!(ip(&["link", "set", &name, "up"]));
        assert!(ip(&["link", "set", &peer, "up"]));
        assert!(ip(&[
            "neigh",
            "replace",
            "192.0.2.2",
            "lladdr",
            "02:00:00:00:ac:02",
            "dev",
            &name,
            "nud",
            "permanent",
        ]));
        Some(veth)
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).status();
    }
}

#[test]
fn start_interim_and_stop_reach_freeradius_with_the_data_plane_counters() {
    let Some(fr) = FreeRadius::start("acct-dp") else {
        return;
    };
    let Some(veth) = Veth::create() else {
        eprintln!("cannot create a veth pair (not root?): skipped");
        return;
    };
    let shm = format!("/dev/shm/xlns-acct-test-{}", std::process::id());
    let _ = std::fs::remove_file(&shm);
    let dataplane = format!(
        "[dataplane]\nshm = \"{shm}\"\nmax_sessions = 64\nmax_workers = 2\naccess_interface = \"{}\"\n",
        veth.0
    );
    let mut sim = new_sim(&config(&fr, "radius", &dataplane));
    sim.dial(&[("papuser", "pap-pass")]);
    sim.run_for(Duration::from_secs(5));
    // papuser: Framed-IP-Address 10.11.12.13, Class "class-pap", Acct-Interim-Interval 300.
    let address = std::net::Ipv4Addr::new(10, 11, 12, 13);
    assert_eq!(sim.up_addresses(), vec![address]);
    let key = sim.lns_key(address);
    assert!(sim.ppp.dataplane().unwrap().is_published(key));
    let id = sim.ppp.acct_session_id(key).unwrap().to_owned();

    // The data plane's worker 1 counts traffic for the session's slot.
    let reader = Reader::attach(std::path::Path::new(&shm)).unwrap();
    let (slot, _) = reader.lookup_upstream(key.tunnel, key.session).unwrap();
    let worker = reader.counters(1).unwrap();
    for _ in 0..10 {
        worker.add_upstream(slot, 1_000);
    }
    for _ in 0..4 {
        worker.add_downstream(slot, 1_500);
    }
    sim.run_for(Duration::from_secs(300));
    let detail = fr.detail();
    let recs = records_of(&detail, &id);
    let statuses: Vec<&str> = recs.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, vec!["Start", "Interim-Update"], "{detail:#?}");
    let interim = recs[1].1;
    assert_eq!(num(interim, "Acct-Input-Octets"), 10_000);
    assert_eq!(num(interim, "Acct-Input-Packets"), 10);
    assert_eq!(num(interim, "Acct-Output-Octets"), 6_000);
    assert_eq!(num(interim, "Acct-Output-Packets"), 4);
    assert!(num(interim, "Acct-Session-Time") >= 299);

    // More traffic, one "packet" past 2^32 octets so that the Gigawords show.
    worker.add_upstream(slot, 5 << 32);
    for _ in 0..3 {
        worker.add_downstream(slot, 700);
    }
    sim.run_for(Duration::from_secs(10));
    let lac_key = *sim.clients.keys().next().unwrap();
    sim.clients
        .get_mut(&lac_key)
        .unwrap()
        .close(sim.now, DownReason::Admin);
    sim.run_for(Duration::from_secs(15));
    assert!(sim.ppp.is_empty());

    let detail = fr.detail();
    let recs = records_of(&detail, &id);
    let statuses: Vec<&str> = recs.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        statuses,
        vec!["Start", "Interim-Update", "Stop"],
        "{detail:#?}"
    );
    let (start, stop) = (recs[0].1, recs[2].1);
    let input = 10_000u64 + (5 << 32);
    assert_eq!(num(stop, "Acct-Input-Octets"), input & 0xffff_ffff);
    assert_eq!(num(stop, "Acct-Input-Gigawords"), 5);
    assert_eq!(num(stop, "Acct-Input-Packets"), 11);
    assert_eq!(num(stop, "Acct-Output-Octets"), 6_000 + 2_100);
    assert_eq!(num(stop, "Acct-Output-Gigawords"), 0);
    assert_eq!(num(stop, "Acct-Output-Packets"), 7);
    assert!(num(stop, "Acct-Session-Time") >= 310);
    assert_eq!(
        detail_value(stop, "Acct-Terminate-Cause"),
        Some("User-Request")
    );
    for r in [start, stop] {
        assert_eq!(detail_value(r, "User-Name"), Some("papuser"));
        assert_eq!(detail_value(r, "NAS-Identifier"), Some("xlns-acct"));
        assert_eq!(detail_value(r, "NAS-IP-Address"), Some("192.0.2.1"));
        assert_eq!(num(r, "NAS-Port"), u64::from(key.session));
        assert_eq!(detail_value(r, "NAS-Port-Type"), Some("Virtual"));
        assert_eq!(detail_value(r, "Service-Type"), Some("Framed-User"));
        assert_eq!(detail_value(r, "Framed-Protocol"), Some("PPP"));
        assert_eq!(detail_value(r, "Framed-IP-Address"), Some("10.11.12.13"));
        assert_eq!(detail_value(r, "Class"), Some("0x636c6173732d706170"));
        assert_eq!(detail_value(r, "Acct-Authentic"), Some("RADIUS"));
        assert_eq!(num(r, "Acct-Delay-Time"), 0);
        assert_eq!(detail_value(r, "Tunnel-Type:1"), Some("L2TP"), "{r:?}");
        assert_eq!(
            detail_value(r, "Tunnel-Client-Endpoint:1"),
            Some("192.0.2.2")
        );
        assert_eq!(
            detail_value(r, "Tunnel-Server-Endpoint:1"),
            Some("192.0.2.1")
        );
        assert_eq!(
            detail_value(r, "Tunnel-Assignment-Id:1"),
            Some(key.tunnel.to_string().as_str())
        );
        assert_eq!(detail_value(r, "Calling-Station-Id"), Some("0612345678"));
        assert_eq!(detail_value(r, "Called-Station-Id"), Some("4711"));
        assert_eq!(detail_value(r, "Connect-Info"), Some("100000000"));
        assert_eq!(detail_value(r, "Acct-Session-Id"), Some(id.as_str()));
        assert!(detail_value(r, "Event-Timestamp").is_some());
    }
    let ons = detail
        .iter()
        .filter(|r| detail_value(r, "Acct-Status-Type") == Some("Accounting-On"))
        .count();
    assert_eq!(ons, 1, "Accounting-On at start");
    assert_eq!(
        detail_value(&detail[0], "Acct-Status-Type"),
        Some("Accounting-On"),
        "Accounting-On first"
    );
    drop(worker);
    drop(reader);
    let _ = std::fs::remove_file(&shm);
}

#[test]
fn local_sessions_are_accounted_and_a_shutdown_ends_with_accounting_off() {
    let Some(fr) = FreeRadius::start("acct-local") else {
        return;
    };
    let mut sim = new_sim(&config(&fr, "local", ""));
    sim.dial(&[("localuser", "local-pass")]);
    sim.run_for(Duration::from_secs(5));
    assert_eq!(sim.up_addresses().len(), 1);
    assert_eq!(sim.aaa().stats().requests, 0, "authenticated locally");
    let key = sim.ppp.keys().next().unwrap();
    let id = sim.ppp.acct_session_id(key).unwrap().to_owned();

    // Shutdown as the shell does it: Stops say Admin-Reboot, then Accounting-Off.
    sim.acct().core_mut().begin_shutdown();
    sim.ppp.close_all(sim.now, &mut sim.lns);
    sim.run_for(Duration::from_secs(5));
    assert!(sim.ppp.is_empty());
    {
        let Sim { aaa, acct, .. } = &mut sim;
        let (_, rt) = aaa.as_ref().unwrap();
        rt.block_on(acct.as_mut().unwrap().drain(Duration::from_secs(5)));
    }
    assert!(sim.acct().core().spool().is_empty());

    let detail = fr.detail();
    let recs = records_of(&detail, &id);
    let statuses: Vec<&str> = recs.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, vec!["Start", "Stop"], "{detail:#?}");
    let stop = recs[1].1;
    assert_eq!(detail_value(stop, "User-Name"), Some("localuser"));
    assert_eq!(detail_value(stop, "Acct-Authentic"), Some("Local"));
    assert_eq!(
        detail_value(stop, "Acct-Terminate-Cause"),
        Some("Admin-Reboot")
    );
    assert_eq!(detail_value(stop, "Class"), None);
    // No data plane and no IP traffic through xlnsd's socket: zero counts.
    assert_eq!(num(stop, "Acct-Input-Octets"), 0);
    assert_eq!(num(stop, "Acct-Output-Packets"), 0);
    let last = detail.last().unwrap();
    assert_eq!(
        detail_value(last, "Acct-Status-Type"),
        Some("Accounting-Off")
    );
    assert_eq!(detail_value(last, "NAS-Identifier"), Some("xlns-acct"));
}

#[test]
fn a_lac_with_accounting_false_is_not_accounted() {
    let Some(fr) = FreeRadius::start("acct-off") else {
        return;
    };
    let mut sim = new_sim(&config(&fr, "local", "accounting = false\n"));
    sim.dial(&[("localuser", "local-pass")]);
    sim.run_for(Duration::from_secs(5));
    assert_eq!(sim.up_addresses().len(), 1);
    let lac_key = *sim.clients.keys().next().unwrap();
    sim.clients
        .get_mut(&lac_key)
        .unwrap()
        .close(sim.now, DownReason::Admin);
    sim.run_for(Duration::from_secs(15));
    assert!(sim.ppp.is_empty());
    let statuses: Vec<String> = fr
        .detail()
        .iter()
        .filter_map(|r| detail_value(r, "Acct-Status-Type").map(str::to_owned))
        .collect();
    assert_eq!(statuses, vec!["Accounting-On"], "the NAS only");
    assert_eq!(sim.acct().core().stats().starts, 0);
}

/// xlnsd dies (the simulation is dropped: nothing is closed, as with SIGKILL) while the
/// data plane keeps forwarding a session; the next run closes that session's accounting
/// when the data plane removes the orphan, with its final counters.
#[test]
fn a_session_the_data_plane_outlives_xlnsd_is_stopped_with_its_final_counters() {
    let Some(fr) = FreeRadius::start("acct-orphan") else {
        return;
    };
    let Some(veth) = Veth::create() else {
        eprintln!("cannot create a veth pair (not root?): skipped");
        return;
    };
    let dir = std::env::temp_dir().join(format!("xlns-acct-orphan-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let shm = format!("/dev/shm/xlns-acct-orphan-{}", std::process::id());
    let _ = std::fs::remove_file(&shm);
    let dataplane = format!(
        "[dataplane]\nshm = \"{shm}\"\nmax_sessions = 64\nmax_workers = 2\naccess_interface = \"{}\"\n",
        veth.0
    );
    let config = config(&fr, "radius", &dataplane).replace(
        "timeout = \"500ms\"\n",
        &format!(
            "timeout = \"500ms\"\nspool = \"{}\"\n",
            dir.join("acct.spool").display()
        ),
    );
    let mut sim = new_sim(&config);
    sim.dial(&[("papuser", "pap-pass")]);
    sim.run_for(Duration::from_secs(5));
    let key = sim.lns_key(std::net::Ipv4Addr::new(10, 11, 12, 13));
    let id = sim.ppp.acct_session_id(key).unwrap().to_owned();
    let reader = Reader::attach(std::path::Path::new(&shm)).unwrap();
    let (slot, _) = reader.lookup_upstream(key.tunnel, key.session).unwrap();
    let worker = reader.counters(1).unwrap();
    for _ in 0..10 {
        worker.add_upstream(slot, 1_000);
    }
    for _ in 0..4 {
        worker.add_downstream(slot, 1_500);
    }
    sim.run_for(Duration::from_secs(5));
    drop(sim);

    let mut sim = new_sim(&config);
    assert_eq!(sim.ppp.dataplane().unwrap().orphans(), 1);
    assert_eq!(sim.acct().core().orphans(), 1, "waits for the data plane");
    sim.run_for(Duration::from_secs(1));
    // The data plane still forwards the orphan after the restart.
    for _ in 0..2 {
        worker.add_upstream(slot, 500);
    }
    sim.run_for(Duration::from_secs(10));
    let statuses = |fr: &FreeRadius| -> Vec<String> {
        records_of(&fr.detail(), &id)
            .iter()
            .map(|(s, _)| (*s).to_owned())
            .collect()
    };
    assert_eq!(statuses(&fr), vec!["Start"], "no Stop while it forwards");
    // Idle for ORPHAN_IDLE (60 s): removed, and the Stop goes.
    sim.run_for(Duration::from_secs(70));
    assert_eq!(sim.ppp.dataplane().unwrap().orphans(), 0);
    assert_eq!(sim.acct().core().orphans(), 0);
    assert_eq!(statuses(&fr), vec!["Start", "Stop"]);
    let detail = fr.detail();
    let recs = records_of(&detail, &id);
    let stop = recs[1].1;
    assert_eq!(
        detail_value(stop, "Acct-Terminate-Cause"),
        Some("NAS-Reboot")
    );
    assert_eq!(num(stop, "Acct-Input-Octets"), 11_000);
    assert_eq!(num(stop, "Acct-Input-Packets"), 12);
    assert_eq!(num(stop, "Acct-Output-Octets"), 6_000);
    assert_eq!(num(stop, "Acct-Output-Packets"), 4);
    assert_eq!(detail_value(stop, "User-Name"), Some("papuser"));
    assert_eq!(detail_value(stop, "Class"), Some("0x636c6173732d706170"));
    assert!(detail_value(stop, "Acct-Session-Time").is_some());
    drop(worker);
    drop(reader);
    drop(sim);
    // A third run finds nothing open.
    let mut sim = new_sim(&config);
    assert_eq!(sim.acct().core().orphans(), 0);
    assert_eq!(sim.acct().core().spool().open_sessions(), 0);
    let _ = std::fs::remove_file(&shm);
    let _ = std::fs::remove_dir_all(&dir);
}

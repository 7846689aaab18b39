//! xlnsd's operator interfaces against a running daemon: the test starts xlnsd with a
//! temporary configuration on 127.0.0.1, dials two PPP sessions through a LAC-role
//! [`Endpoint`] over a real UDP socket, then scrapes `/metrics` (checked by
//! `promtool check metrics` when it is installed) and runs every xlnsctl command.
#![allow(clippy::unwrap_used, clippy::panic)]

#[path = "support/live.rs"]
mod live;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use live::{
    DEADLINE, Lac, ctl, ctl_json, free_port, free_udp_port, promtool_check, sample, scrape_until,
    value,
};
use xlns_dataplane::shm::{Reader, SlotId};

struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn metrics_and_xlnsctl_against_a_running_xlnsd() {
    let dir = std::env::temp_dir().join(format!("xlns-mgmt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let l2tp_port = free_port();
    let metrics = format!("127.0.0.1:{}", free_port());
    let socket = dir.join("xlnsd.sock");
    std::fs::write(dir.join("users"), "alice pw1\nbob pw2\n").unwrap();
    std::fs::write(
        dir.join("xlnsd.toml"),
        format!(
            "[l2tp]\nlisten = \"127.0.0.1:{l2tp_port}\"\n\n[ppp]\nauth = [\"pap\"]\ngateway = \"10.9.0.1\"\n\n\
             [[pool]]\nname = \"lab\"\ncidr = \"10.9.0.0/29\"\n\n[[lac]]\nname = \"lab-lac\"\n\n\
             [users]\nfile = \"{}\"\n\n[management]\nmetrics = \"{metrics}\"\nsocket = \"{}\"\n",
            dir.join("users").display(),
            socket.display()
        ),
    )
    .unwrap();
    let _daemon = Daemon(
        Command::new(env!("CARGO_BIN_EXE_xlnsd"))
            .arg("--config")
            .arg(dir.join("xlnsd.toml"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + DEADLINE;
    while !socket.exists() || std::net::TcpStream::connect(&metrics).is_err() {
        assert!(Instant::now() < deadline, "xlnsd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    let lns: SocketAddr = format!("127.0.0.1:{l2tp_port}").parse().unwrap();
    let mut lac = Lac::new(lns);
    lac.dial(&[("alice", "pw1"), ("bob", "pw2")]);
    // The first snapshot with both sessions' setup done.
    let text = scrape_until(&mut [&mut lac], &metrics, |t| {
        sample(t, "xlns_setup_latency_seconds_count{phase=\"ipcp\"}") == Some(2.0)
    });
    assert_eq!(value(&text, "xlns_sessions{state=\"up\"}"), 2.0);
    assert_eq!(value(&text, "xlns_tunnels{state=\"established\"}"), 1.0);
    assert_eq!(value(&text, "xlns_tunnels_by_lac{lac=\"lab-lac\"}"), 1.0);
    assert_eq!(value(&text, "xlns_sessions_by_lac{lac=\"lab-lac\"}"), 2.0);
    assert_eq!(value(&text, "xlns_pool_used{pool=\"lab\"}"), 2.0);
    assert_eq!(
        value(
            &text,
            "xlns_setup_latency_seconds_count{phase=\"icrq_iccn\"}"
        ),
        2.0
    );
    assert_eq!(
        value(
            &text,
            "xlns_setup_latency_seconds_count{phase=\"sccrq_scccn\"}"
        ),
        1.0
    );
    for phase in ["lcp", "auth", "ipcp"] {
        let sample = format!("xlns_setup_latency_seconds_count{{phase=\"{phase}\"}}");
        assert_eq!(value(&text, &sample), 2.0, "{phase}");
    }
    // Control-channel window and round trip of the one tunnel, by LAC: its SCCRP was
    // acknowledged, so the tunnel has a round-trip measurement and a window of at least 1.
    let cwnd = value(&text, "xlns_control_cwnd{lac=\"lab-lac\"}");
    assert!(cwnd >= 1.0, "{cwnd}");
    assert_eq!(value(&text, "xlns_control_cwnd_min{lac=\"lab-lac\"}"), cwnd);
    let srtt_max = value(&text, "xlns_control_srtt_max_seconds{lac=\"lab-lac\"}");
    assert!(srtt_max > 0.0 && srtt_max < 1.0, "{srtt_max}");
    assert_eq!(
        value(&text, "xlns_control_srtt_mean_seconds{lac=\"lab-lac\"}"),
        srtt_max
    );
    assert_eq!(value(&text, "xlns_control_timeouts_total{}"), 0.0);
    promtool_check(&text);

    // xlnsctl: every command.
    let tunnels = ctl_json(&socket, &["show", "tunnels"]);
    assert_eq!(tunnels["rows"].as_array().unwrap().len(), 1);
    let lns_tunnel = tunnels["rows"][0]["tunnel"].as_u64().unwrap();
    assert_eq!(tunnels["rows"][0]["lac"], "lab-lac");
    let (ok, human) = ctl(&socket, &["show", "tunnels"]);
    assert!(ok && human.starts_with("TUNNEL"), "{human}");

    let all = ctl_json(&socket, &["show", "sessions"]);
    assert_eq!(all["rows"].as_array().unwrap().len(), 2);
    let alice = ctl_json(&socket, &["show", "sessions", "--user", "alice"]);
    let rows = alice["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["state"], "up");
    let address = rows[0]["address"].as_str().unwrap().to_owned();
    let session = rows[0]["session"].as_u64().unwrap();
    let by_addr = ctl_json(&socket, &["show", "sessions", "--address", &address]);
    assert_eq!(by_addr["rows"][0]["user"], "alice");
    let t = lns_tunnel.to_string();
    assert_eq!(
        ctl_json(&socket, &["show", "sessions", "--tunnel", &t])["rows"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        ctl_json(&socket, &["show", "sessions", "--lac", "nope"])["rows"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let (ok, human) = ctl(&socket, &["show", "sessions", "--lac", "lab-lac"]);
    assert!(
        ok && human.contains("alice") && human.contains("bob"),
        "{human}"
    );
    let key = format!("{lns_tunnel}/{session}");
    let one = ctl_json(&socket, &["show", "session", &key]);
    assert_eq!(one["rows"][0]["user"], "alice");
    assert!(one["rows"][0]["ppp_up_ms"].as_f64().is_some());
    let pools = ctl_json(&socket, &["show", "pools"]);
    assert_eq!(pools["rows"][0]["pool"], "lab");
    assert_eq!(pools["rows"][0]["used"], 2);
    let (ok, _) = ctl(&socket, &["show", "workers"]);
    assert!(!ok, "no data plane: show workers is an error");

    let (ok, out) = ctl(&socket, &["clear", "session", &key]);
    assert!(ok, "{out}");
    let rows = || {
        ctl_json(&socket, &["show", "sessions"])["rows"]
            .as_array()
            .unwrap()
            .len()
    };
    assert!(
        lac.pump_until(DEADLINE, |_| rows() == 1),
        "alice's session was not cleared"
    );
    let left = ctl_json(&socket, &["show", "sessions"]);
    assert_eq!(left["rows"][0]["user"], "bob");
    // Its PPP went down by the operator's hand and its CDN went out, each counted once.
    scrape_until(&mut [&mut lac], &metrics, |t| {
        sample(t, "xlns_ppp_down_total{reason=\"admin\"}") == Some(1.0)
            && sample(t, "xlns_cdn_total{direction=\"sent\",result=\"3\"}") == Some(1.0)
    });

    let (ok, out) = ctl(&socket, &["clear", "tunnel", &t]);
    assert!(ok, "{out}");
    assert!(
        lac.pump_until(DEADLINE, |_| rows() == 0),
        "the tunnel's sessions were not cleared"
    );
    let (ok, _) = ctl(&socket, &["clear", "tunnel", "9999"]);
    assert!(!ok);
    scrape_until(&mut [&mut lac], &metrics, |t| {
        sample(t, "xlns_stopccn_total{direction=\"sent\",result=\"1\"}") == Some(1.0)
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// Per-worker forwarded packets and bytes: xlnsd sums each worker's counter column of the
/// segment, so what a worker counts (here written as xlns-dataplane would, into slots
/// with and without a session) shows under its worker and direction, and only grows.
#[test]
fn per_worker_packets_and_bytes_follow_the_segment_counters() {
    let l2tp: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
    let shm = std::env::temp_dir().join(format!("xlns-mgmt-dp-shm-{}", std::process::id()));
    let _ = std::fs::remove_file(&shm);
    let daemon = live::Daemon::start(
        "mgmt-dp",
        l2tp,
        &format!(
            "[l2tp]\nlisten = \"{l2tp}\"\n[ppp]\ngateway = \"10.9.0.1\"\n[[pool]]\nname = \"p\"\n\
             cidr = \"10.9.0.0/29\"\n[dataplane]\nshm = \"{}\"\naccess_interface = \"lo\"\n\
             max_sessions = 16\nmax_workers = 2\n",
            shm.display()
        ),
    );
    let wait_scrape = |done: &dyn Fn(&str) -> bool| {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let text = daemon.scrape();
            if done(&text) {
                return text;
            }
            assert!(Instant::now() < deadline, "metrics did not move:\n{text}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let sample = |worker: u32, family: &str, direction: &str| {
        format!("xlns_dataplane_{family}_total{{worker=\"{worker}\",direction=\"{direction}\"}}")
    };
    let text = wait_scrape(&|t| t.contains("# TYPE xlns_dataplane_packets_total counter"));
    for worker in 0..2 {
        for direction in ["upstream", "downstream"] {
            assert_eq!(value(&text, &sample(worker, "packets", direction)), 0.0);
            assert_eq!(value(&text, &sample(worker, "bytes", direction)), 0.0);
        }
    }

    let reader = Reader::attach(&shm).unwrap();
    let w1 = reader.counters(1).unwrap();
    for _ in 0..3 {
        w1.add_upstream(SlotId(0), 100);
    }
    w1.add_upstream(SlotId(15), 60);
    w1.add_downstream(SlotId(7), 1500);
    let w0 = reader.counters(0).unwrap();
    w0.add_downstream(SlotId(3), 40);
    let up1 = sample(1, "packets", "upstream");
    let text = wait_scrape(&|t| {
        t.lines()
            .filter_map(|l| l.strip_prefix(up1.as_str())?.trim().parse::<f64>().ok())
            .any(|v| v == 4.0)
    });
    assert_eq!(value(&text, &sample(1, "bytes", "upstream")), 360.0);
    assert_eq!(value(&text, &sample(1, "packets", "downstream")), 1.0);
    assert_eq!(value(&text, &sample(1, "bytes", "downstream")), 1500.0);
    assert_eq!(value(&text, &sample(0, "packets", "upstream")), 0.0);
    assert_eq!(value(&text, &sample(0, "packets", "downstream")), 1.0);
    assert_eq!(value(&text, &sample(0, "bytes", "downstream")), 40.0);
    promtool_check(&text);
    drop((w0, w1));
    drop(reader);
    drop(daemon);
    let _ = std::fs::remove_file(&shm);
}

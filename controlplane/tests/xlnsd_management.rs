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

use live::{Lac, ctl, ctl_json, free_port, promtool_check, scrape, value};
use xlns_controlplane::l2tp::endpoint::{EndpointConfig, TunnelParams};
use xlns_controlplane::l2tp::session::OutgoingCall;
use xlns_controlplane::ppp::session::Credentials;

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
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() || std::net::TcpStream::connect(&metrics).is_err() {
        assert!(Instant::now() < deadline, "xlnsd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    let lns: SocketAddr = format!("127.0.0.1:{l2tp_port}").parse().unwrap();
    let mut lac = Lac::new(lns);
    lac.pending = ["alice", "bob"]
        .iter()
        .zip(["pw1", "pw2"])
        .map(|(u, p)| Credentials {
            user: u.as_bytes().to_vec(),
            password: p.to_owned(),
        })
        .collect();
    let now = Instant::now();
    let tunnel = lac
        .endpoint
        .open_tunnel(
            now,
            lns,
            TunnelParams::from_config(&EndpointConfig::default()),
        )
        .unwrap();
    for _ in 0..2 {
        lac.endpoint
            .open_session(now, tunnel, OutgoingCall::default())
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while lac.up.len() < 2 {
        assert!(Instant::now() < deadline, "sessions did not come up");
        lac.pump(Duration::from_millis(100));
    }
    // One snapshot period.
    lac.pump(Duration::from_millis(1300));

    let text = scrape(&metrics);
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
    lac.pump(Duration::from_millis(500));
    let left = ctl_json(&socket, &["show", "sessions"]);
    assert_eq!(left["rows"].as_array().unwrap().len(), 1);
    assert_eq!(left["rows"][0]["user"], "bob");
    lac.pump(Duration::from_millis(1200));
    let text = scrape(&metrics);
    assert_eq!(value(&text, "xlns_ppp_down_total{reason=\"admin\"}"), 1.0);
    assert_eq!(
        value(&text, "xlns_cdn_total{direction=\"sent\",result=\"3\"}"),
        1.0
    );

    let (ok, out) = ctl(&socket, &["clear", "tunnel", &t]);
    assert!(ok, "{out}");
    lac.pump(Duration::from_millis(500));
    assert_eq!(
        ctl_json(&socket, &["show", "sessions"])["rows"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let (ok, _) = ctl(&socket, &["clear", "tunnel", "9999"]);
    assert!(!ok);
    lac.pump(Duration::from_millis(1200));
    let text = scrape(&metrics);
    assert_eq!(
        value(&text, "xlns_stopccn_total{direction=\"sent\",result=\"1\"}"),
        1.0
    );
    let _ = std::fs::remove_dir_all(&dir);
}

//! SIGHUP reload of a running xlnsd under live sessions (issue #8).
//!
//! The test starts xlnsd on 127.0.0.1 with one LAC policy, one pool and one user, brings a
//! session up through the LAC of `support/live.rs` over a real UDP socket, then rewrites the
//! configuration and sends SIGHUP:
//!
//! 1. a new user (with a pool of their own), a new pool and a new LAC with a tunnel
//!    secret: the live session stays up, the new user logs in, the new LAC, refused
//!    before, gets an authenticated tunnel;
//! 2. a broken file: refused with `file:line:column: key` in the log and in `xlnsctl
//!    reload`, counted as failed, and the running configuration keeps working;
//! 3. the new LAC and the new pool removed again: their live tunnel and leases stay.
#![allow(clippy::unwrap_used, clippy::panic)]

#[path = "support/live.rs"]
mod live;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use live::{DEADLINE, Lac, ctl_json, free_port, pump_all_until, sample, scrape_until};

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits (pumping the LACs, which keeps their sessions alive) until the metric sample
/// has this value.
fn wait_metric(lacs: &mut [&mut Lac], metrics: &str, name: &str, want: f64) {
    scrape_until(lacs, metrics, |text| sample(text, name) == Some(want));
}

fn sessions(socket: &Path) -> Vec<(String, String, String)> {
    ctl_json(socket, &["show", "sessions"])["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["user"].as_str().unwrap_or("-").to_owned(),
                r["state"].as_str().unwrap_or("-").to_owned(),
                r["address"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect()
}

fn hup(daemon: &Daemon) {
    // SAFETY: kill(2) with the pid of our own child and a valid signal number.
    let rc = unsafe { libc::kill(daemon.0.id() as libc::pid_t, libc::SIGHUP) };
    assert_eq!(rc, 0);
}

struct Files {
    dir: PathBuf,
    l2tp_port: u16,
    metrics: String,
    socket: PathBuf,
}

impl Files {
    fn config(&self) -> PathBuf {
        self.dir.join("xlnsd.toml")
    }

    /// Writes the configuration: the common head, then `tail`.
    fn write(&self, tail: &str) {
        let head = format!(
            "[l2tp]\nlisten = \"127.0.0.1:{}\"\n\n[ppp]\nauth = [\"pap\"]\ngateway = \"10.9.0.1\"\n\n\
             [users]\nfile = \"users\"\n\n[management]\nmetrics = \"{}\"\nsocket = \"{}\"\n\n\
             [[pool]]\nname = \"lab\"\ncidr = \"10.9.0.0/29\"\n\n[[lac]]\nname = \"lab-lac\"\nhost_name = \"lac1\"\n",
            self.l2tp_port,
            self.metrics,
            self.socket.display()
        );
        std::fs::write(self.config(), format!("{head}{tail}")).unwrap();
    }
}

#[test]
fn sighup_reload_under_live_sessions() {
    let dir = std::env::temp_dir().join(format!("xlns-reload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let files = Files {
        l2tp_port: free_port(),
        metrics: format!("127.0.0.1:{}", free_port()),
        socket: dir.join("xlnsd.sock"),
        dir: dir.clone(),
    };
    std::fs::write(dir.join("users"), "alice pw1\n").unwrap();
    files.write("");
    let log = dir.join("xlnsd.log");
    let daemon = Daemon(
        Command::new(env!("CARGO_BIN_EXE_xlnsd"))
            .arg("--config")
            .arg(files.config())
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stderr(std::fs::File::create(&log).unwrap())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + DEADLINE;
    while !files.socket.exists() || TcpStream::connect(&files.metrics).is_err() {
        assert!(Instant::now() < deadline, "xlnsd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let lns: SocketAddr = format!("127.0.0.1:{}", files.l2tp_port).parse().unwrap();

    // Before: alice up through lac1; lac2 (unknown) refused.
    let mut lac1 = Lac::with_host(lns, "lac1", None, 1);
    let t1 = lac1.open_tunnel();
    lac1.call(t1, "alice", "pw1");
    let mut lac2 = Lac::with_host(lns, "lac2", Some("s3cret"), 2);
    lac2.open_tunnel();
    pump_all_until(&mut [&mut lac1, &mut lac2], "alice up, lac2 refused", |l| {
        l[0].up.len() == 1 && l[1].tunnels_down == 1
    });
    assert_eq!(lac2.tunnels_up, 0);
    let alice_addr = *lac1.up.values().next().unwrap();

    // 1. New user carol (pool "extra"), new pool, new LAC "secure" with a secret.
    std::fs::write(
        dir.join("users"),
        "alice pw1\ncarol pw3 pool=extra\ndave pw4\n",
    )
    .unwrap();
    files.write(
        "\n[[pool]]\nname = \"extra\"\ncidr = \"10.10.0.0/29\"\n\n\
         [[lac]]\nname = \"secure\"\nhost_name = \"lac2\"\nsecret = \"s3cret\"\n",
    );
    hup(&daemon);
    wait_metric(
        &mut [&mut lac1],
        &files.metrics,
        "xlns_config_reloads_total{result=\"ok\"}",
        1.0,
    );
    assert_eq!(
        sessions(&files.socket),
        vec![("alice".into(), "up".into(), alice_addr.to_string())],
        "the live session survived the reload"
    );
    lac1.call(t1, "carol", "pw3");
    let mut lac2 = Lac::with_host(lns, "lac2", Some("s3cret"), 3);
    let t2 = lac2.open_tunnel();
    lac2.call(t2, "dave", "pw4");
    pump_all_until(&mut [&mut lac1, &mut lac2], "carol and dave up", |l| {
        l[0].up.len() == 2 && l[1].up.len() == 1
    });
    assert_eq!(lac2.tunnels_up, 1, "the new LAC authenticated its tunnel");
    let carol = *lac1.up.values().find(|a| **a != alice_addr).unwrap();
    assert!(
        carol.octets()[..3] == [10, 10, 0],
        "carol's address {carol} comes from the new pool"
    );
    wait_metric(
        &mut [&mut lac1, &mut lac2],
        &files.metrics,
        "xlns_pool_used{pool=\"extra\"}",
        1.0,
    );

    // 2. A broken file: refused, named, counted; the running configuration stays.
    std::fs::write(
        files.config(),
        std::fs::read_to_string(files.config())
            .unwrap()
            .replace("auth = [\"pap\"]", "auth = [\"pap\"]\nmru = 64"),
    )
    .unwrap();
    hup(&daemon);
    wait_metric(
        &mut [&mut lac1, &mut lac2],
        &files.metrics,
        "xlns_config_reloads_total{result=\"failed\"}",
        1.0,
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let expected = format!(
        "{}:6:7: ppp.mru: must be between 128 and 65535",
        files.config().display()
    );
    assert!(
        text.contains(&expected),
        "{expected} not in the log:\n{text}"
    );
    let answer = ctl_json(&files.socket, &["reload"]);
    assert_eq!(answer["ok"], false);
    assert!(
        answer["error"].as_str().unwrap().starts_with(&expected),
        "{answer}"
    );
    // Still the reloaded configuration: the secure LAC and carol's pool work.
    lac2.call(t2, "dave", "pw4");
    pump_all_until(&mut [&mut lac1, &mut lac2], "second dave up", |l| {
        l[1].up.len() == 2
    });
    assert_eq!(sessions(&files.socket).len(), 4);

    // 3. The new LAC and pool removed: their tunnel and leases stay until they end.
    files.write("");
    let answer = ctl_json(&files.socket, &["reload"]);
    assert_eq!(answer["ok"], true, "{answer}");
    // The first snapshot after the reload.
    let text = scrape_until(&mut [&mut lac1, &mut lac2], &files.metrics, |text| {
        sample(text, "xlns_config_reloads_total{result=\"ok\"}") == Some(2.0)
    });
    assert_eq!(
        sample(&text, "xlns_tunnels_by_lac{lac=\"secure\"}"),
        Some(1.0)
    );
    assert_eq!(sample(&text, "xlns_pool_used{pool=\"extra\"}"), None);
    let all = sessions(&files.socket);
    assert_eq!(all.len(), 4, "{all:?}");
    assert!(all.iter().all(|(_, state, _)| state == "up"), "{all:?}");
    // A new tunnel from lac2 is refused again.
    let mut lac3 = Lac::with_host(lns, "lac2", Some("s3cret"), 4);
    lac3.open_tunnel();
    pump_all_until(
        &mut [&mut lac1, &mut lac2, &mut lac3],
        "lac2 refused",
        |l| l[2].tunnels_down == 1,
    );
    assert_eq!(lac3.tunnels_up, 0);
    // Carol hangs up: her stranded lease is released without complaint.
    let carol_key = lac1.key_of(carol);
    lac1.endpoint
        .close_session(Instant::now(), carol_key, 1, None);
    pump_all_until(&mut [&mut lac1, &mut lac2], "carol down", |_| {
        sessions(&files.socket).len() == 3
    });
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("releasing a lease"), "{text}");
    assert!(
        text.contains("configuration reloaded"),
        "no reload line in the log:\n{text}"
    );
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}

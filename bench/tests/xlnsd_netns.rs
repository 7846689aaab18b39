//! The real xlnsd over real UDP, driven by the LAC role of the same L2TP cores
//! ([`LacDriver`]), each test in a fresh network namespace (RFC 2661 §5.5, §5.7, §7):
//! 100 tunnels x 100 sessions up and down, a LAC that goes silent cleaned up by HELLO, and
//! StopCCN from either side freeing everything.
//!
//! Needs root (network namespaces) and the xlnsd binary next to the test's target
//! directory (`cargo test --workspace` builds it; or `cargo build -p xlns-controlplane
//! --bin xlnsd`; `XLNSD=/path/to/xlnsd` overrides). `XLNS_SKIP_NETNS=1` skips, loudly.
//! Each namespace is deleted by a guard, also when a test fails; xlnsd is killed with it.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use xlns_bench::lac::{LacConfig, LacDriver, Teardown, TunnelState};
use xlns_controlplane::l2tp::endpoint::TunnelDownReason;

const LNS: &str = "127.0.0.1:1701";

/// Admission limits far above what a test asks, so that only the protocol is measured.
const OPEN_ADMISSION: &str = r#"
[admission]
max_tunnel_setups = 100000
max_session_setups = 100000
sccrq_per_second = 1000000
sccrq_burst = 1000000
icrq_per_second = 1000000
icrq_burst = 1000000
"#;

/// Short timers: HELLO after 1 s of silence, a retransmission cycle of
/// 0.1 + 0.2 + 0.4 + 0.8 = 1.5 s, state kept 2 s after StopCCN.
const SHORT_TIMERS: &str = r#"
hello_interval = "1s"
retransmit_initial = "100ms"
retransmit_max_retries = 3
stopccn_wait = "2s"
"#;

fn netns_tests_enabled(test: &str) -> bool {
    if std::env::var("XLNS_SKIP_NETNS").is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED {test}: XLNS_SKIP_NETNS=1");
        return false;
    }
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "{test} needs root (ip netns, setns); run as root or set XLNS_SKIP_NETNS=1 to skip"
    );
    true
}

/// The xlnsd binary: `$XLNSD`, else `target/<profile>/xlnsd` beside this test's
/// `target/<profile>/deps/`.
fn xlnsd_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("XLNSD") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("no target directory above {}", exe.display()));
    let path = profile_dir.join("xlnsd");
    assert!(
        path.is_file(),
        "xlnsd not found at {}: build it first (`cargo test --workspace` does, or \
         `cargo build -p xlns-controlplane --bin xlnsd`), or set XLNSD=/path/to/xlnsd",
        path.display()
    );
    path
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A fresh network namespace with `lo` up, deleted on drop.
#[derive(Debug)]
struct Netns {
    name: String,
}

impl Netns {
    fn new() -> Netns {
        let name = format!(
            "xlns-t3-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        run(Command::new("ip").args(["-n", &ns.name, "link", "set", "lo", "up"]));
        ns
    }

    /// Moves the calling thread into the namespace: sockets it creates afterwards live
    /// there. Call it from a thread of its own.
    fn enter(&self) {
        let path = format!("/var/run/netns/{}", self.name);
        let file = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: a valid namespace fd and flag; affects the calling thread only.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", io::Error::last_os_error());
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let status = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!("warning: could not delete netns {}: {status:?}", self.name);
        }
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (is iproute2 installed?)"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// xlnsd running in a namespace, its stderr in a file; killed on drop.
#[derive(Debug)]
struct Xlnsd {
    child: Child,
    dir: PathBuf,
    log: PathBuf,
}

impl Xlnsd {
    /// Starts xlnsd on [`LNS`] with `l2tp_extra` added to its `[l2tp]` table, and waits
    /// until it listens.
    fn start(ns: &Netns, l2tp_extra: &str) -> Xlnsd {
        let dir = std::env::temp_dir().join(&ns.name);
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("xlnsd.toml");
        std::fs::write(
            &config,
            format!(
                "[l2tp]\nlisten = \"{LNS}\"\nhost_name = \"lns-under-test\"\n\
                 accept_unknown_lacs = true\n{l2tp_extra}\n{OPEN_ADMISSION}"
            ),
        )
        .unwrap();
        let log = dir.join("xlnsd.log");
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name])
            .arg(xlnsd_binary())
            .arg("--config")
            .arg(&config)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut xlnsd = Xlnsd { child, dir, log };
        let up = xlnsd.wait_for(Duration::from_secs(10), |log| {
            log.contains("xlnsd control plane running")
        });
        if !up {
            let status = xlnsd.child.try_wait();
            panic!("xlnsd did not start ({status:?}):\n{}", xlnsd.log_text());
        }
        xlnsd
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Lines whose message is `message` (the text after the target's colon).
    fn lines(&self, message: &str) -> Vec<String> {
        let needle = format!(": {message} ");
        self.log_text()
            .lines()
            .filter(|l| l.contains(&needle) || l.ends_with(&format!(": {message}")))
            .map(str::to_owned)
            .collect()
    }

    fn count(&self, message: &str) -> usize {
        self.lines(message).len()
    }

    /// Polls the log until `pred` holds or `timeout` passes.
    fn wait_for(&self, timeout: Duration, mut pred: impl FnMut(&str) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&self.log_text()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `message` was logged `n` times; returns how long it took.
    fn wait_count(&self, message: &str, n: usize, timeout: Duration) -> Duration {
        let start = Instant::now();
        let needle = format!(": {message} ");
        let ok = self.wait_for(timeout, |log| {
            log.lines().filter(|l| l.contains(&needle)).count() >= n
        });
        assert!(
            ok,
            "xlnsd logged {:?} {} times, expected {n} within {timeout:?}; log tail:\n{}",
            message,
            self.count(message),
            tail(&self.log_text(), 20)
        );
        start.elapsed()
    }

    /// SIGTERM, then waits (bounded) for the exit.
    fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on our own child (`ip netns exec` execs xlnsd in place).
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill: {}", io::Error::last_os_error());
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "xlnsd did not exit within {timeout:?} of SIGTERM:\n{}",
                tail(&self.log_text(), 20)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Xlnsd {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn lns() -> SocketAddr {
    LNS.parse().unwrap()
}

/// The field `key=` of a log line, up to the next space.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(&format!(" {key}="))? + key.len() + 2;
    line[start..].split(' ').next()
}

#[test]
fn hundred_tunnels_by_hundred_sessions_up_and_down() {
    if !netns_tests_enabled("hundred_tunnels_by_hundred_sessions_up_and_down") {
        return;
    }
    let started = Instant::now();
    let ns = Netns::new();
    let xlnsd = Xlnsd::start(&ns, "");
    let report = std::thread::scope(|s| {
        s.spawn(|| {
            ns.enter();
            let config = LacConfig {
                outstanding: 256,
                ..LacConfig::new(lns(), 100, 100)
            };
            let mut lac = LacDriver::bind(config).unwrap();
            assert!(
                lac.establish().unwrap(),
                "setup timed out: {}",
                lac.report()
            );
            assert_eq!((lac.tunnels_up(), lac.sessions_up()), (100, 10_000));
            assert!(
                lac.teardown(Teardown::CdnThenStopCcn).unwrap(),
                "teardown timed out: {}",
                lac.report()
            );
            lac.report()
        })
        .join()
        .unwrap()
    });
    eprintln!("{report}");
    assert_eq!((report.tunnels_up, report.sessions_up), (100, 10_000));
    assert_eq!((report.tunnel_failures, report.session_failures), (0, 0));
    assert_eq!(report.tunnel_setup.count, 100);
    assert_eq!(report.session_setup.count, 10_000);
    assert_eq!(
        report.session_down_reasons.get("local-close-3"),
        Some(&10_000)
    );
    assert_eq!(report.session_down_reasons.len(), 1);
    assert_eq!(report.tunnel_down_reasons.get("local-close-1"), Some(&100));
    assert_eq!(report.tunnel_down_reasons.len(), 1);

    // xlnsd saw every tunnel and session come up and go down, for the LAC's reasons.
    xlnsd.wait_count("tunnel down", 100, Duration::from_secs(10));
    xlnsd.wait_count("session down", 10_000, Duration::from_secs(10));
    assert_eq!(xlnsd.count("tunnel up"), 100);
    assert_eq!(xlnsd.count("session up"), 10_000);
    let sessions_down = xlnsd.lines("session down");
    assert_eq!(sessions_down.len(), 10_000);
    for line in &sessions_down {
        assert!(line.contains("reason=PeerCdn { result: 3,"), "{line}");
    }
    let tunnels_down = xlnsd.lines("tunnel down");
    assert_eq!(tunnels_down.len(), 100);
    for line in &tunnels_down {
        assert!(line.contains("reason=PeerStopCcn { result: 1,"), "{line}");
    }
    let mut keys: Vec<(&str, &str)> = sessions_down
        .iter()
        .map(|l| (field(l, "tunnel").unwrap(), field(l, "session").unwrap()))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), 10_000, "every session down exactly once");
    let elapsed = started.elapsed();
    eprintln!(
        "100 x 100: setup {:.3} s, teardown {:.3} s, whole test {:.3} s",
        report.setup_secs,
        report.teardown.as_ref().map_or(0.0, |t| t.secs),
        elapsed.as_secs_f64()
    );
    assert!(
        elapsed < Duration::from_secs(60),
        "100 x 100 took {elapsed:?}"
    );
}

#[test]
fn silent_lac_is_detected_by_hello_and_cleaned_up() {
    if !netns_tests_enabled("silent_lac_is_detected_by_hello_and_cleaned_up") {
        return;
    }
    let ns = Netns::new();
    let xlnsd = Xlnsd::start(&ns, SHORT_TIMERS);
    let silent_since = std::thread::scope(|s| {
        s.spawn(|| {
            ns.enter();
            let mut lac = LacDriver::bind(LacConfig::new(lns(), 10, 10)).unwrap();
            assert!(lac.establish().unwrap(), "{}", lac.report());
            assert_eq!((lac.tunnels_up(), lac.sessions_up()), (10, 100));
            // Let the last acknowledgements go out, then close the socket: from now on
            // nothing answers (unconnected UDP: xlnsd sees no error either).
            let deadline = Instant::now() + Duration::from_secs(1);
            lac.pump(deadline, LacDriver::all_acked).unwrap();
            drop(lac);
            Instant::now()
        })
        .join()
        .unwrap()
    });
    assert_eq!(xlnsd.count("session up"), 100);
    // HELLO after 1 s of silence (§6.5), then 3 retransmissions of it (§5.8):
    // 1 + 1.5 s, plus the last ZLB's ack delay and scheduling.
    xlnsd.wait_count("tunnel down", 10, Duration::from_secs(8));
    let elapsed = silent_since.elapsed();
    eprintln!(
        "silent LAC: all 10 tunnels down {:.3} s after the LAC went silent",
        elapsed.as_secs_f64()
    );
    assert!(
        elapsed >= Duration::from_secs(2),
        "tunnels down {elapsed:?} after silence: before HELLO + a retransmission cycle"
    );
    let tunnels_down = xlnsd.lines("tunnel down");
    assert_eq!(tunnels_down.len(), 10);
    for line in &tunnels_down {
        assert!(line.contains("reason=HelloTimeout"), "{line}");
    }
    xlnsd.wait_count("session down", 100, Duration::from_secs(1));
    for line in xlnsd.lines("session down") {
        assert!(line.contains("reason=TunnelDown"), "{line}");
    }
    // Everything freed: nothing left for the shutdown to close.
    std::thread::sleep(Duration::from_millis(500));
    let mut xlnsd = xlnsd;
    assert!(xlnsd.terminate(Duration::from_secs(10)).success());
    let shutdown = xlnsd.lines("shutting down:");
    assert_eq!(shutdown.len(), 1, "{}", xlnsd.log_text());
    assert_eq!(field(&shutdown[0], "tunnels"), Some("0"), "{}", shutdown[0]);
    assert_eq!(
        field(&shutdown[0], "sessions"),
        Some("0"),
        "{}",
        shutdown[0]
    );
}

#[test]
fn stopccn_from_either_side_frees_everything() {
    if !netns_tests_enabled("stopccn_from_either_side_frees_everything") {
        return;
    }
    // The LNS shuts down: StopCCN result 6 reaches the LAC on every tunnel (§4.4.2, §5.7).
    {
        let ns = Netns::new();
        let mut xlnsd = Xlnsd::start(&ns, SHORT_TIMERS);
        let (up_tx, up_rx) = mpsc::channel();
        let states = std::thread::scope(|s| {
            let lac = s.spawn(|| {
                ns.enter();
                let mut lac = LacDriver::bind(LacConfig::new(lns(), 20, 10)).unwrap();
                assert!(lac.establish().unwrap(), "{}", lac.report());
                assert_eq!((lac.tunnels_up(), lac.sessions_up()), (20, 200));
                up_tx.send(()).unwrap();
                let deadline = Instant::now() + Duration::from_secs(10);
                let down = lac
                    .pump(deadline, |d| d.all_tunnels_down() && d.all_acked())
                    .unwrap();
                assert!(down, "not every tunnel went down: {}", lac.report());
                assert_eq!(lac.sessions_up(), 0);
                lac.tunnel_states().cloned().collect::<Vec<_>>()
            });
            up_rx.recv_timeout(Duration::from_secs(30)).unwrap();
            let status = xlnsd.terminate(Duration::from_secs(10));
            assert!(status.success(), "{status:?}");
            lac.join().unwrap()
        });
        assert_eq!(states.len(), 20);
        for state in &states {
            assert!(
                matches!(
                    state,
                    TunnelState::Down(TunnelDownReason::PeerStopCcn { result: 6, .. })
                ),
                "{state:?}"
            );
        }
        let log = xlnsd.log_text();
        let shutdown = xlnsd.lines("shutting down:");
        assert_eq!(
            field(&shutdown[0], "tunnels"),
            Some("20"),
            "{}",
            shutdown[0]
        );
        assert_eq!(
            field(&shutdown[0], "sessions"),
            Some("200"),
            "{}",
            shutdown[0]
        );
        assert!(
            !log.contains("not every StopCCN was acknowledged"),
            "{}",
            tail(&log, 10)
        );
        assert_eq!(xlnsd.count("tunnel down"), 20);
        assert_eq!(xlnsd.count("session down"), 200);
        assert_eq!(xlnsd.count("xlnsd stopped"), 1);
    }

    // The LAC clears the tunnels: xlnsd drops every session with them and frees the
    // tunnels after the §5.7 wait (2 s).
    let ns = Netns::new();
    let mut xlnsd = Xlnsd::start(&ns, SHORT_TIMERS);
    let report = std::thread::scope(|s| {
        s.spawn(|| {
            ns.enter();
            let mut lac = LacDriver::bind(LacConfig::new(lns(), 20, 10)).unwrap();
            assert!(lac.establish().unwrap(), "{}", lac.report());
            assert!(
                lac.teardown(Teardown::StopCcnOnly).unwrap(),
                "{}",
                lac.report()
            );
            lac.report()
        })
        .join()
        .unwrap()
    });
    assert_eq!((report.tunnels_up, report.sessions_up), (20, 200));
    assert_eq!(report.tunnel_down_reasons.get("local-close-1"), Some(&20));
    xlnsd.wait_count("tunnel down", 20, Duration::from_secs(5));
    xlnsd.wait_count("session down", 200, Duration::from_secs(1));
    for line in xlnsd.lines("tunnel down") {
        assert!(line.contains("reason=PeerStopCcn { result: 1,"), "{line}");
    }
    for line in xlnsd.lines("session down") {
        assert!(line.contains("reason=TunnelDown"), "{line}");
    }
    std::thread::sleep(Duration::from_millis(2500));
    assert!(xlnsd.terminate(Duration::from_secs(10)).success());
    let shutdown = xlnsd.lines("shutting down:");
    assert_eq!(field(&shutdown[0], "tunnels"), Some("0"), "{}", shutdown[0]);
    assert_eq!(
        field(&shutdown[0], "sessions"),
        Some("0"),
        "{}",
        shutdown[0]
    );
    let stopped = xlnsd.lines("xlnsd stopped");
    assert_eq!(
        field(&stopped[0], "tunnels_freed"),
        Some("20"),
        "{}",
        stopped[0]
    );
    assert_eq!(
        field(&stopped[0], "sessions_established"),
        Some("200"),
        "{}",
        stopped[0]
    );
}

//! The LAC emulator with PPP subscribers ([`LacDriver`] with a [`PppConfig`]) against the
//! real xlnsd over loopback, each test in a fresh network namespace: PAP, CHAP-MD5 and
//! MS-CHAPv2 subscribers come up with pool addresses, answer the LNS's LCP echoes and
//! hang up cleanly; NAS-initiated calls come up from proxy LCP and proxy authentication
//! alone; a wrong password is refused; churn renews sessions; the established sessions
//! export as the traffic generator's JSON.
//!
//! The namespace tests need root; `XLNS_SKIP_NETNS=1` skips them, loudly. One test runs
//! xlnsd on a free loopback port of the current namespace and needs neither. All need the
//! xlnsd binary beside the test's target directory (`cargo build -p xlns-controlplane
//! --bin xlnsd`; `XLNSD=/path` overrides). Run under `flock /tmp/xlns-netns.lock`.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use xlns_bench::lac::{LacConfig, LacDriver, Report, Teardown};
use xlns_bench::subscriber::{AuthMethod, PppConfig};
use xlns_bench::traffic::SessionList;

const GATEWAY: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 1);

/// Every method offered, echoes every second, a /24 pool, user1..user64 / pw1..pw64.
const CONFIG: &str = r#"
[l2tp]
listen = "127.0.0.1:1701"
accept_unknown_lacs = true
[admission]
max_tunnel_setups = 100000
max_session_setups = 100000
sccrq_per_second = 1000000
sccrq_burst = 1000000
icrq_per_second = 1000000
icrq_burst = 1000000
[ppp]
auth = ["mschap-v2", "chap-md5", "pap"]
lcp_echo_interval = "1s"
lcp_echo_failures = 3
gateway = "100.64.0.1"
[[pool]]
name = "p"
cidr = "100.64.0.0/24"
[users]
file = "users"
"#;

fn enabled(test: &str) -> bool {
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

fn xlnsd_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("XLNSD") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().and_then(Path::parent).unwrap().join("xlnsd");
    assert!(
        path.is_file(),
        "xlnsd not found at {}: `cargo build -p xlns-controlplane --bin xlnsd` first, or set \
         XLNSD=/path/to/xlnsd",
        path.display()
    );
    path
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// xlnsd on 127.0.0.1 in a namespace of its own (port 1701) or, without root, in this
/// one (a free port); the namespace and the process go away on drop.
struct Lab {
    ns: Option<String>,
    port: u16,
    dir: PathBuf,
    xlnsd: Child,
}

impl Lab {
    /// In a fresh namespace (root).
    fn start(config: &str) -> Lab {
        let ns = format!(
            "xlns-ppp-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        run(Command::new("ip").args(["netns", "add", &ns]));
        run(Command::new("ip").args(["-n", &ns, "link", "set", "lo", "up"]));
        Lab::spawn(Some(ns), 1701, config)
    }

    /// In this namespace, on a port that was free a moment ago (no root needed).
    fn start_here(config: &str) -> Lab {
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = config.replace("127.0.0.1:1701", &format!("127.0.0.1:{port}"));
        Lab::spawn(None, port, &config)
    }

    fn spawn(ns: Option<String>, port: u16, config: &str) -> Lab {
        let dir = std::env::temp_dir().join(format!(
            "xlns-ppp-{}-{}-{port}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let users: String = (1..=64).map(|i| format!("user{i} pw{i}\n")).collect();
        std::fs::write(dir.join("users"), users).unwrap();
        std::fs::write(dir.join("xlnsd.toml"), config).unwrap();
        let log = dir.join("xlnsd.log");
        let mut command = match &ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(xlnsd_binary());
                c
            }
            None => Command::new(xlnsd_binary()),
        };
        let xlnsd = command
            .arg("--config")
            .arg(dir.join("xlnsd.toml"))
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let lab = Lab {
            ns,
            port,
            dir,
            xlnsd,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !lab.log().contains("xlnsd control plane running") {
            assert!(
                Instant::now() < deadline,
                "xlnsd did not start:\n{}",
                lab.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        lab
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("xlnsd.log")).unwrap_or_default()
    }

    fn lns(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Runs `f` in a thread inside the namespace (the emulator's sockets live there).
    fn in_ns<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| {
                let Some(ns) = &self.ns else {
                    return f();
                };
                let path = format!("/var/run/netns/{ns}");
                let file = File::open(&path).unwrap();
                // SAFETY: a valid namespace fd; affects the calling thread only.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns {path}");
                f()
            })
            .join()
            .unwrap()
        })
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.xlnsd.kill();
        let _ = self.xlnsd.wait();
        if let Some(ns) = &self.ns {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn config(lab: &Lab, tunnels: usize, per_tunnel: usize, ppp: PppConfig) -> LacConfig {
    LacConfig {
        ppp: Some(ppp),
        setup_timeout: Duration::from_secs(30),
        teardown_timeout: Duration::from_secs(20),
        ..LacConfig::new(lab.lns(), tunnels, per_tunnel)
    }
}

fn ppp(auth: AuthMethod, proxy: bool) -> PppConfig {
    PppConfig {
        auth,
        proxy,
        ..PppConfig::chap()
    }
}

/// Establish, export, hold `hold`, tear down; the report after the setup and at the end.
fn session_run(
    lab: &Lab,
    config: LacConfig,
    hold: Duration,
    churn: Option<f64>,
) -> (bool, SessionList, Report, Report, u16) {
    lab.in_ns(move || {
        let mut driver = LacDriver::bind(config).unwrap();
        let port = driver.local_addrs().unwrap()[0].port();
        let established = driver.establish().unwrap();
        let list = driver.established().unwrap();
        let after_setup = driver.report();
        if !hold.is_zero() {
            let stop = AtomicBool::new(false);
            driver.hold(Instant::now() + hold, &stop, churn).unwrap();
            assert_eq!(
                driver.sessions_up(),
                after_setup.sessions_up,
                "sessions lost while held"
            );
        }
        assert!(driver.teardown(Teardown::CdnThenStopCcn).unwrap());
        (established, list, after_setup, driver.report(), port)
    })
}

fn check_list(list: &SessionList, n: usize, tunnels: usize, port: u16, lns_port: u16) {
    assert_eq!(list.sessions.len(), n);
    let mut addresses: Vec<Ipv4Addr> = list.sessions.iter().map(|s| s.subscriber).collect();
    addresses.sort_unstable();
    addresses.dedup();
    assert_eq!(addresses.len(), n, "duplicate addresses");
    for s in &list.sessions {
        assert_eq!(s.subscriber.octets()[..3], [100, 64, 0]);
        assert_ne!(s.subscriber, GATEWAY);
        assert_eq!(s.gateway, Some(GATEWAY));
        assert_eq!(s.lac_addr, Ipv4Addr::LOCALHOST);
        assert_eq!(s.lns_addr, Ipv4Addr::LOCALHOST);
        assert_eq!((s.lac_port, s.lns_port), (port, lns_port));
        assert!(
            s.tunnel_id != 0
                && s.session_id != 0
                && s.peer_tunnel_id != 0
                && s.peer_session_id != 0
        );
    }
    let mut lns_tunnels: Vec<u16> = list.sessions.iter().map(|s| s.tunnel_id).collect();
    lns_tunnels.sort_unstable();
    lns_tunnels.dedup();
    assert_eq!(lns_tunnels.len(), tunnels);
    // The file the generator reads gives the same list back.
    let path = std::env::temp_dir().join(format!("xlns-ppp-sessions-{}.json", std::process::id()));
    list.save(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(text.contains("\"gateway\":\"100.64.0.1\""), "{text}");
    assert_eq!(&serde_json::from_str::<SessionList>(&text).unwrap(), list);
}

#[test]
fn pap_chap_and_mschapv2_subscribers_come_up_answer_echoes_and_hang_up() {
    if !enabled("pap_chap_and_mschapv2_subscribers_come_up_answer_echoes_and_hang_up") {
        return;
    }
    let lab = Lab::start(CONFIG);
    for auth in [AuthMethod::Pap, AuthMethod::Chap, AuthMethod::MsChapV2] {
        let (established, list, setup, end, port) = session_run(
            &lab,
            config(&lab, 3, 5, ppp(auth, false)),
            Duration::from_millis(2500),
            None,
        );
        assert!(established, "{auth:?}: {setup}");
        assert_eq!(
            (setup.sessions_up, setup.session_failures),
            (15, 0),
            "{setup}"
        );
        let p = setup.ppp.as_ref().unwrap();
        for (phase, l) in [
            ("lcp", &p.lcp),
            ("auth", &p.authentication),
            ("ipcp", &p.ipcp),
            ("total", &p.total),
        ] {
            assert_eq!(l.count, 15, "{auth:?} {phase}");
        }
        assert!(p.total.max_us < 2_000_000, "{auth:?}: a restart timer ran");
        assert_eq!(setup.setup_timeline.iter().sum::<u32>(), 15);
        check_list(&list, 15, 3, port, 1701);
        // Echo every second for 2.5 s: at least two answered per session.
        let end_ppp = end.ppp.as_ref().unwrap();
        assert!(
            end_ppp.echo_requests_answered >= 30,
            "{auth:?}: {} echoes",
            end_ppp.echo_requests_answered
        );
        assert_eq!(
            end_ppp.down_reasons,
            BTreeMap::from([("admin".to_owned(), 15)]),
            "{auth:?}: the subscribers hung up"
        );
        assert!(end.teardown.as_ref().unwrap().complete);
    }
    // xlnsd saw every subscriber up and then terminated by its peer, none timed out.
    let log = lab.log();
    assert!(!log.contains("lcp-echo-timeout"), "{log}");
}

#[test]
fn nas_initiated_calls_come_up_from_proxy_lcp_and_proxy_authentication() {
    if !enabled("nas_initiated_calls_come_up_from_proxy_lcp_and_proxy_authentication") {
        return;
    }
    let lab = Lab::start(CONFIG);
    for auth in [AuthMethod::Pap, AuthMethod::Chap, AuthMethod::MsChapV2] {
        let (established, list, setup, end, port) = session_run(
            &lab,
            config(&lab, 2, 5, ppp(auth, true)),
            Duration::ZERO,
            None,
        );
        assert!(established, "{auth:?}: {setup}");
        assert_eq!(setup.sessions_up, 10, "{auth:?}: {setup}");
        let p = setup.ppp.as_ref().unwrap();
        assert!(p.proxy);
        // LCP ran at the LAC before the ICRQ, and the LNS continued from it: no LCP
        // after the ICCN, no renegotiation (RFC 2661 §4.4.5).
        assert_eq!(p.lcp.count, 0, "{auth:?}");
        assert_eq!(p.lcp_renegotiations, 0, "{auth:?}");
        assert_eq!(p.authentication.count, 10, "{auth:?}");
        check_list(&list, 10, 2, port, 1701);
        assert!(end.teardown.as_ref().unwrap().complete);
    }
    // The proxied credentials are what the LNS verifies: a wrong captured password fails.
    let bad = PppConfig {
        password: "wrong%n".to_owned(),
        ..ppp(AuthMethod::Chap, true)
    };
    let (_, list, setup, _, _) = session_run(&lab, config(&lab, 1, 4, bad), Duration::ZERO, None);
    assert_eq!(
        (setup.sessions_up, setup.session_failures),
        (0, 4),
        "{setup}"
    );
    assert!(list.sessions.is_empty());
    assert_eq!(
        setup.ppp.unwrap().down_reasons.get("ppp-auth-failed"),
        Some(&4)
    );
    drop(lab);

    // An LNS whose policy renegotiates LCP: the same calls come up, through a new LCP.
    let lab = Lab::start(&format!(
        "{CONFIG}\n[[lac]]\nname = \"renegotiate\"\nrenegotiate_lcp = true\n"
    ));
    let (_, _, setup, _, _) = session_run(
        &lab,
        config(&lab, 1, 3, ppp(AuthMethod::Chap, true)),
        Duration::ZERO,
        None,
    );
    assert_eq!(setup.sessions_up, 3, "{setup}");
    assert_eq!(setup.ppp.unwrap().lcp_renegotiations, 3);
}

#[test]
fn wrong_password_is_refused_and_churn_renews_sessions() {
    if !enabled("wrong_password_is_refused_and_churn_renews_sessions") {
        return;
    }
    let lab = Lab::start(CONFIG);
    let bad = PppConfig {
        password: "bad%n".to_owned(),
        ..PppConfig::chap()
    };
    let (established, list, setup, _, _) =
        session_run(&lab, config(&lab, 1, 3, bad), Duration::ZERO, None);
    assert!(established, "every setup ended");
    assert_eq!(
        (setup.sessions_up, setup.session_failures),
        (0, 3),
        "{setup}"
    );
    assert!(list.sessions.is_empty());
    assert_eq!(
        setup
            .ppp
            .as_ref()
            .unwrap()
            .down_reasons
            .get("ppp-auth-failed"),
        Some(&3)
    );
    // The LNS cleared the refused calls (CDN).
    assert_eq!(setup.session_down_reasons.values().sum::<usize>(), 3);

    // 10 sessions, 5 renewed per second for 2 s: still 10 up, with new ones among them.
    let (_, _, setup, end, _) = session_run(
        &lab,
        config(&lab, 1, 10, PppConfig::chap()),
        Duration::from_secs(2),
        Some(5.0),
    );
    assert_eq!(setup.sessions_up, 10);
    assert!(end.churned >= 5, "churned {}", end.churned);
    assert_eq!(end.sessions_up as u64, 10 + end.churned, "{end}");
    assert_eq!(end.session_failures, 0, "{end}");
}

/// Without root or namespaces: xlnsd on a free loopback port of this namespace, CHAP
/// subscribers and a NAS-initiated MS-CHAPv2 call up and down, the sessions exported.
#[test]
fn chap_and_proxy_subscribers_over_loopback_without_namespaces() {
    let lab = Lab::start_here(CONFIG);
    let (established, list, setup, end, port) = session_run(
        &lab,
        config(&lab, 2, 4, PppConfig::chap()),
        Duration::from_millis(1500),
        None,
    );
    assert!(established, "{setup}");
    assert_eq!(
        (setup.sessions_up, setup.session_failures),
        (8, 0),
        "{setup}"
    );
    check_list(&list, 8, 2, port, lab.port);
    assert!(end.ppp.as_ref().unwrap().echo_requests_answered >= 8);
    assert!(end.teardown.as_ref().unwrap().complete);

    let (established, list, setup, _, port) = session_run(
        &lab,
        config(&lab, 1, 3, ppp(AuthMethod::MsChapV2, true)),
        Duration::ZERO,
        None,
    );
    assert!(established, "{setup}");
    assert_eq!(setup.sessions_up, 3, "{setup}");
    assert_eq!(setup.ppp.unwrap().lcp_renegotiations, 0);
    check_list(&list, 3, 1, port, lab.port);
}

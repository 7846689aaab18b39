//! The files under deploy/ (issue #8), checked by the tools that read them:
//!
//! * every example configuration passes `xlnsd --check-config`, and those with a
//!   `[dataplane]` section `xlns-dataplane --check-config` too (when that binary is built
//!   next to xlnsd);
//! * the systemd units pass `systemd-analyze verify` (when installed; the binaries'
//!   paths rewritten to the built ones) and ask for the capabilities they need and no
//!   others;
//! * the Prometheus scrape configuration and alert rules pass `promtool check` (when
//!   installed);
//! * the Grafana dashboard is valid JSON, and every metric its queries and the alert
//!   rules use is one a live xlnsd exports (read from a `/metrics` scrape of an xlnsd
//!   started here with a data plane segment, so that the data plane families are there).
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn xlnsd() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_xlnsd"))
}

fn dataplane() -> Option<PathBuf> {
    let p = xlnsd().with_file_name("xlns-dataplane");
    p.exists().then_some(p)
}

fn check_config(binary: &Path, config: &Path) -> (bool, String) {
    let out = Command::new(binary)
        .arg("--config")
        .arg(config)
        .arg("--check-config")
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn tool(name: &str) -> bool {
    Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

#[test]
fn example_configurations_pass_check_config() {
    let mut files = vec![deploy().join("xlnsd.example.toml")];
    for scenario in ["remote-worker", "isp-wholesale", "branch-autodial"] {
        files.push(deploy().join(format!("examples/{scenario}.toml")));
    }
    for entry in std::fs::read_dir(deploy().join("lab/peer-vm")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            files.push(path);
        }
    }
    let dataplane = dataplane();
    if dataplane.is_none() {
        eprintln!("xlns-dataplane not built next to xlnsd: [dataplane] sections not checked by it");
    }
    for file in &files {
        let (ok, out) = check_config(&xlnsd(), file);
        assert!(ok, "xlnsd --check-config {}: {out}", file.display());
        let text = std::fs::read_to_string(file).unwrap();
        let scenario = file.parent().unwrap().ends_with("examples");
        if let Some(dp) = &dataplane
            && (scenario || text.contains("\n[dataplane]"))
            && !file.ends_with("xlnsd.dataplane.toml")
        {
            let (ok, out) = check_config(dp, file);
            assert!(
                ok,
                "xlns-dataplane --check-config {}: {out}",
                file.display()
            );
        }
    }
    // The three scenarios each configure the data plane.
    for scenario in ["remote-worker", "isp-wholesale", "branch-autodial"] {
        let text =
            std::fs::read_to_string(deploy().join(format!("examples/{scenario}.toml"))).unwrap();
        assert!(text.contains("\n[dataplane]\n"), "{scenario}");
    }
}

fn unit(name: &str) -> String {
    std::fs::read_to_string(deploy().join("systemd").join(name)).unwrap()
}

/// The values of `key=` lines of a unit (comments skipped).
fn values(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_owned)
        .collect()
}

#[test]
fn systemd_units_least_privilege_and_verify() {
    let xlnsd_unit = unit("xlnsd.service");
    let dp_unit = unit("xlns-dataplane.service");
    // xlnsd: no capability at all; reload by SIGHUP.
    assert_eq!(values(&xlnsd_unit, "CapabilityBoundingSet"), vec![""]);
    assert_eq!(values(&xlnsd_unit, "AmbientCapabilities"), vec![""]);
    assert_eq!(
        values(&xlnsd_unit, "ExecReload"),
        vec!["/bin/kill -HUP $MAINPID"]
    );
    // The data plane: BPF (and the verifier's pointer arithmetic), XDP attach, AF_XDP
    // sockets, locked UMEM; no reload (SIGHUP would stop it), no CAP_SYS_ADMIN. That
    // each is needed and they are enough: dataplane/tests/least_capabilities.rs.
    let caps = "CAP_BPF CAP_PERFMON CAP_NET_ADMIN CAP_NET_RAW CAP_IPC_LOCK";
    assert_eq!(values(&dp_unit, "CapabilityBoundingSet"), vec![caps]);
    assert_eq!(values(&dp_unit, "AmbientCapabilities"), vec![caps]);
    assert!(values(&dp_unit, "ExecReload").is_empty());
    for u in [&xlnsd_unit, &dp_unit] {
        assert_eq!(values(u, "NoNewPrivileges"), vec!["yes"]);
        assert_eq!(values(u, "ProtectSystem"), vec!["strict"]);
        assert_eq!(values(u, "User"), vec!["xlns"]);
        assert!(
            values(u, "ExecStartPre")
                .iter()
                .any(|c| c.ends_with("--config /etc/xlns/xlns.toml --check-config"))
        );
    }
    if !tool("systemd-analyze") {
        eprintln!("systemd-analyze not installed: units not verified");
        return;
    }
    let dir = std::env::temp_dir().join(format!("xlns-units-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dp_bin = dataplane().unwrap_or_else(xlnsd);
    let mut paths = Vec::new();
    for (name, text) in [
        ("xlnsd.service", &xlnsd_unit),
        ("xlns-dataplane.service", &dp_unit),
    ] {
        let text = text
            .replace("/usr/sbin/xlnsd", &xlnsd().display().to_string())
            .replace("/usr/sbin/xlns-dataplane", &dp_bin.display().to_string());
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        paths.push(path);
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&paths)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Other units installed on the machine may draw warnings; ours may not.
    let ours: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("xlnsd.service") || l.contains("xlns-dataplane.service"))
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success() && ours.is_empty(), "{text}");
}

#[test]
fn prometheus_files_pass_promtool() {
    if !tool("promtool") {
        eprintln!("promtool not installed: Prometheus files not checked");
        return;
    }
    let dir = deploy().join("prometheus");
    for args in [
        ["check", "config", "prometheus.yml"],
        ["check", "rules", "xlns-alerts.yml"],
    ] {
        let out = Command::new("promtool")
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Every sample name a live xlnsd exports: families from `# TYPE`, histograms with their
/// `_bucket`, `_sum` and `_count` series.
fn exported_names() -> BTreeSet<String> {
    let dir = std::env::temp_dir().join(format!("xlns-deploy-metrics-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let port = |_: ()| {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let metrics = format!("127.0.0.1:{}", port(()));
    let config = dir.join("xlnsd.toml");
    std::fs::write(
        &config,
        format!(
            "[l2tp]\nlisten = \"127.0.0.1:{}\"\n[ppp]\ngateway = \"10.9.0.1\"\n[[pool]]\nname = \"p\"\n\
             cidr = \"10.9.0.0/29\"\n[management]\nmetrics = \"{metrics}\"\n\
             [dataplane]\nshm = \"{}\"\naccess_interface = \"lo\"\nmax_sessions = 16\nmax_workers = 2\n",
            port(()),
            dir.join("shm").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(xlnsd())
        .arg("--config")
        .arg(&config)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut text = String::new();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        let Ok(mut s) = TcpStream::connect(&metrics) else {
            continue;
        };
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        // The first snapshot comes after one snapshot period.
        if out.contains("# TYPE xlns_sessions ") {
            text = out;
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
            continue;
        };
        if kind == "histogram" {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{name}{suffix}"));
            }
        } else {
            names.insert(name.to_owned());
        }
    }
    assert!(
        names.contains("xlns_dataplane_drops_total"),
        "no data plane families in the scrape:\n{text}"
    );
    names
}

/// Every `xlns_...` identifier in `text`.
fn used_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("xlns_") {
        let start = i + at;
        let boundary =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        if boundary {
            names.insert(text[start..end].to_owned());
        }
        i = end;
    }
    names
}

#[test]
fn grafana_dashboard_and_alerts_use_exported_metrics() {
    let text = std::fs::read_to_string(deploy().join("grafana/xlns-dashboard.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 10);
    let mut queries = String::new();
    for panel in panels {
        assert!(panel["title"].as_str().is_some_and(|t| !t.is_empty()));
        for target in panel["targets"].as_array().unwrap() {
            queries.push_str(target["expr"].as_str().unwrap());
            queries.push('\n');
        }
    }
    let exported = exported_names();
    let alerts = std::fs::read_to_string(deploy().join("prometheus/xlns-alerts.yml")).unwrap();
    for (what, text) in [("dashboard", &queries), ("alert rules", &alerts)] {
        let used = used_names(text);
        assert!(used.len() >= 5, "{what}: {used:?}");
        let unknown: Vec<_> = used.difference(&exported).collect();
        assert!(
            unknown.is_empty(),
            "{what} uses metrics xlnsd does not export: {unknown:?}\nexported: {exported:?}"
        );
    }
    // The dashboard shows the families the issue asks for.
    let used = used_names(&queries);
    for family in [
        "xlns_sessions",
        "xlns_tunnels",
        "xlns_sessions_by_lac",
        "xlns_setup_latency_seconds_bucket",
        "xlns_control_retransmissions_total",
        "xlns_cdn_total",
        "xlns_pool_used",
        "xlns_dataplane_drops_total",
        "xlns_dataplane_packets_total",
        "xlns_dataplane_bytes_total",
        "xlns_config_reloads_total",
    ] {
        assert!(used.contains(family), "{family} not on the dashboard");
    }
}

/// The Debian package's metadata (`[package.metadata.deb]` of controlplane/Cargo.toml,
/// built with cargo-deb): every asset it names exists (the binaries once built), the
/// units it installs are the ones checked above, the maintainer script keeps the
/// `#DEBHELPER#` hook for the units' snippets. Building the package needs a release
/// build and cargo-deb, too slow for every test run; this check is what CI can afford.
#[test]
fn debian_package_metadata_is_consistent() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(manifest.join("Cargo.toml")).unwrap();
    let cargo: toml::Table = text.parse().unwrap();
    let deb = &cargo["package"]["metadata"]["deb"];
    assert_eq!(deb["name"].as_str(), Some("xlns"));
    let mut targets = BTreeSet::new();
    for asset in deb["assets"].as_array().unwrap() {
        let asset = asset.as_array().unwrap();
        let (source, target) = (asset[0].as_str().unwrap(), asset[1].as_str().unwrap());
        targets.insert(target.to_owned());
        if source.starts_with("target/release/") {
            continue;
        }
        let path = manifest.join(source);
        match source.strip_suffix("/*") {
            Some(dir) => assert!(
                std::fs::read_dir(manifest.join(dir)).unwrap().count() > 0,
                "{source}"
            ),
            None => assert!(path.exists(), "asset {source} does not exist"),
        }
    }
    for wanted in [
        "usr/sbin/",
        "usr/bin/",
        "etc/xlns/xlns.toml",
        "etc/xlns/users",
    ] {
        assert!(targets.contains(wanted), "no asset installs {wanted}");
    }
    let binaries: BTreeSet<&str> = deb["assets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a[0].as_str()?.strip_prefix("target/release/"))
        .collect();
    assert_eq!(
        binaries,
        BTreeSet::from(["xlnsd", "xlns-dataplane", "xlnsctl"])
    );
    for unit in deb["systemd-units"].as_array().unwrap() {
        let name = unit["unit-name"].as_str().unwrap();
        let dir = manifest.join(unit["unit-scripts"].as_str().unwrap());
        assert!(dir.join(format!("{name}.service")).exists(), "{name}");
        assert_eq!(unit["enable"].as_bool(), Some(false), "{name}");
    }
    let scripts = manifest.join(deb["maintainer-scripts"].as_str().unwrap());
    let postinst = std::fs::read_to_string(scripts.join("postinst")).unwrap();
    assert!(postinst.contains("#DEBHELPER#"));
    assert!(postinst.contains("adduser --system --group"));
    // The configuration it installs passes the check with its users file beside it.
    let (ok, out) = check_config(&xlnsd(), &deploy().join("xlnsd.example.toml"));
    assert!(ok, "{out}");
}

/// xlnsd.service grants no capability: xlnsd started as an unprivileged user with every
/// capability dropped (`setpriv` to `nobody` when the test runs as root; as the test's
/// own user otherwise) binds its L2TP socket, serves /metrics and xlnsctl, creates the
/// data plane segment, and reloads on SIGHUP.
#[test]
fn xlnsd_runs_without_capabilities() {
    // SAFETY: no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let dir = std::env::temp_dir().join(format!("xlns-nocap-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let port = || {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let metrics = format!(
        "127.0.0.1:{}",
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    );
    let shm = dir.join("shm");
    let socket = dir.join("xlnsd.sock");
    let config = dir.join("xlnsd.toml");
    std::fs::write(
        &config,
        format!(
            "[l2tp]\nlisten = \"127.0.0.1:{}\"\n[ppp]\ngateway = \"10.9.0.1\"\n[[pool]]\nname = \"p\"\n\
             cidr = \"10.9.0.0/29\"\n[management]\nmetrics = \"{metrics}\"\nsocket = \"{}\"\n\
             [dataplane]\nshm = \"{}\"\naccess_interface = \"lo\"\nmax_sessions = 16\nmax_workers = 1\n",
            port(),
            socket.display(),
            shm.display()
        ),
    )
    .unwrap();
    let mut cmd = if root {
        for path in [&dir, &config] {
            let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: a valid NUL-terminated path.
            assert_eq!(unsafe { libc::chown(c.as_ptr(), 65534, 65534) }, 0);
        }
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--ambient-caps=-all",
            "--bounding-set=-all",
        ])
        .arg(xlnsd());
        c
    } else {
        Command::new(xlnsd())
    };
    let mut child = cmd
        .arg("--config")
        .arg(&config)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() || TcpStream::connect(&metrics).is_err() {
        assert!(
            Instant::now() < deadline,
            "xlnsd did not start without capabilities"
        );
        assert!(child.try_wait().unwrap().is_none(), "xlnsd exited");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(shm.exists(), "no data plane segment");
    let ctl = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_xlnsctl"))
            .arg("--socket")
            .arg(&socket)
            .args(args)
            .output()
            .unwrap()
    };
    assert!(ctl(&["show", "pools"]).status.success());
    // SAFETY: signalling our own child by its pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGHUP) }, 0);
    std::thread::sleep(Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "SIGHUP stopped xlnsd");
    let reload = ctl(&["--json", "reload"]);
    assert!(
        reload.status.success(),
        "{}",
        String::from_utf8_lossy(&reload.stdout)
    );
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

//! `xlns-bench compare` at a small scale: 50 sessions over 2 tunnels with CHAP against
//! l2tpns (with its FreeRADIUS) and against xlnsd + xlns-dataplane, 2 s runs at 1,000
//! pps per direction each way and both, an RFC 2544 search with 1 s trials; then
//! `xlns-bench plot` on the result. Not a performance assertion: both LNSes must bring
//! every session up and forward (nearly) everything both ways, the CPU figures must be
//! sane, the ratios present, and nothing of the run may be left behind.
//!
//! Needs root, l2tpns and FreeRADIUS (Debian packages `l2tpns`, `freeradius`), and the
//! binaries beside this test (`cargo build -p xlns-controlplane --bin xlnsd -p
//! xlns-dataplane --bin xlns-dataplane`). `XLNS_SKIP_NETNS=1` skips, loudly. Run under
//! `flock /tmp/xlns-netns.lock`.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn enabled(test: &str) -> bool {
    if std::env::var("XLNS_SKIP_NETNS").is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED {test}: XLNS_SKIP_NETNS=1");
        return false;
    }
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "{test} needs root (namespaces, XDP, AF_XDP); run as root or set XLNS_SKIP_NETNS=1"
    );
    for p in ["/usr/sbin/l2tpns", "/usr/sbin/freeradius"] {
        assert!(
            Path::new(p).is_file(),
            "{test} needs {p}: apt-get install l2tpns freeradius (or XLNS_SKIP_NETNS=1)"
        );
    }
    true
}

fn bench() -> PathBuf {
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_xlns-bench"));
    let dir = bench.parent().unwrap();
    for b in ["xlnsd", "xlns-dataplane"] {
        assert!(
            dir.join(b).is_file(),
            "{b} not in {}: cargo build -p xlns-controlplane --bin xlnsd -p xlns-dataplane \
             --bin xlns-dataplane (same profile as this test)",
            dir.display()
        );
    }
    bench
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn compare_brings_sessions_up_and_forwards_both_ways_on_both_lnses() {
    if !enabled("compare_brings_sessions_up_and_forwards_both_ways_on_both_lnses") {
        return;
    }
    let tmp = std::env::temp_dir().join(format!("xb-compare-test-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let json = tmp.join("compare.json");
    let child = Command::new(bench())
        .args(["compare", "--tunnels", "2", "--sessions-per-tunnel", "25"])
        .args(["--duration", "2", "--rate", "1000"])
        .args([
            "--search-trial",
            "1",
            "--search-trials",
            "3",
            "--search-max",
            "1500",
        ])
        .arg("--json-out")
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&child.stdout);
    let stderr = String::from_utf8_lossy(&child.stderr);
    assert!(
        child.status.success(),
        "compare failed: {}\n{stdout}\n{stderr}",
        child.status
    );
    assert!(stdout.contains("xlns / l2tpns"), "{stdout}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["sessions"], 50);
    let lnses = report["lnses"].as_array().unwrap();
    assert_eq!(lnses.len(), 2);
    for l in lnses {
        let name = l["lns"].as_str().unwrap();
        assert!(l["error"].is_null(), "{name}: {}", l["error"]);
        let setup = &l["setup"];
        assert_eq!(setup["sessions_up"], 50, "{name}");
        assert_eq!(setup["session_failures"], 0, "{name}");
        assert!(f(&setup["sessions_per_sec"]) > 1.0, "{name}");
        assert!(f(&setup["ppp"]["total"]["p50_us"]) > 0.0, "{name}");
        // The LNS's CPU over the setup: read, not negative; RADIUS's for l2tpns only.
        assert!(f(&l["setup_cpu_s"]) >= 0.0, "{name}");
        assert!(f(&l["setup_cpu_us_per_session"]) >= 0.0, "{name}");
        assert_eq!(l["aaa_setup_cpu_s"].is_null(), name == "xlns", "{name}");
        let runs = l["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 3, "{name}: up, down, both");
        for r in runs {
            let dir = r["direction"].as_str().unwrap();
            let sent = f(&r["sent"]);
            let forwarded = f(&r["forwarded"]);
            // 2 s at 1,000 pps per direction, 50 sessions.
            let per_dir = if dir == "both" { 2.0 } else { 1.0 };
            assert!(
                sent >= 1800.0 * per_dir,
                "{name} {dir}: sent {sent} (the generator fell short)"
            );
            assert!(
                forwarded >= 0.95 * sent,
                "{name} {dir}: forwarded {forwarded} of {sent}"
            );
            assert!(f(&r["forwarded_pps"]) > 900.0 * per_dir, "{name} {dir}");
            let traffic = &r["traffic"];
            for way in ["up", "down"] {
                let d = &traffic[way];
                if (way == "up") == (dir != "down") || dir == "both" {
                    assert!(!d.is_null(), "{name} {dir}: no {way} figures");
                    assert!(
                        f(&d["received"]) > 0.0,
                        "{name} {dir} {way}: nothing came back"
                    );
                    assert!(f(&d["latency"]["p50_us"]) > 0.0, "{name} {dir} {way}");
                    assert_eq!(d["foreign"], 0, "{name} {dir} {way}: foreign frames");
                }
            }
            // The LNS's CPU: user + system read from /proc, never negative, never more
            // than the machine's cores for the run's duration.
            let cpu = f(&r["cpu_s"]);
            let cores = std::thread::available_parallelism().unwrap().get() as f64;
            assert!(
                (0.0..=cores * 3.0).contains(&cpu),
                "{name} {dir}: cpu {cpu} s"
            );
            if let Some(ns) = r["cpu_ns_per_packet"].as_f64() {
                assert!(
                    ns.is_finite() && ns >= 0.0,
                    "{name} {dir}: {ns} ns a packet"
                );
            }
        }
        let searches = l["searches"].as_array().unwrap();
        assert_eq!(searches.len(), 3, "{name}");
        for s in searches {
            let trials = s["trials"].as_array().unwrap();
            assert!(!trials.is_empty() && trials.len() <= 3, "{name}: {s}");
            // Every trial at or below the bound, and the result is a passing trial's rate.
            for t in trials {
                assert!(f(&t["rate_pps"]) <= 1500.0 + 1e-6);
            }
            if let Some(rate) = s["throughput_pps"].as_f64() {
                assert!(
                    trials
                        .iter()
                        .any(|t| t["pass"] == true && f(&t["rate_pps"]) == rate),
                    "{name}: {s}"
                );
            }
        }
        assert!(
            l["rss_kb"]
                .as_object()
                .unwrap()
                .values()
                .all(|v| f(v) > 0.0),
            "{name}: {}",
            l["rss_kb"]
        );
        assert!(!l["end"].is_null(), "{name}: no teardown report");
    }
    let metrics: Vec<&str> = report["ratios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["metric"].as_str().unwrap())
        .collect();
    for m in ["setup_sessions_per_s", "up_pps", "down_pps", "both_pps"] {
        assert!(metrics.contains(&m), "{m} missing from {metrics:?}");
    }
    // At a fixed low rate both forward what they are sent: the ratio is about 1.
    for r in report["ratios"].as_array().unwrap() {
        if r["metric"].as_str().unwrap().ends_with("_pps")
            && !r["metric"].as_str().unwrap().contains("rfc2544")
        {
            let ratio = f(&r["ratio"]);
            assert!((0.9..1.1).contains(&ratio), "{r}");
        }
    }
    // One JSON line per run and setup and ratio on stdout.
    let lines = stdout.lines().filter(|l| l.starts_with('{')).count();
    assert!(lines >= 2 * 4 + metrics.len(), "{stdout}");

    // The plots from the result.
    let out = Command::new(bench())
        .args(["plot", "--out-dir"])
        .arg(&tmp)
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for svg in [
        "throughput-vs-sessions.svg",
        "latency-percentiles.svg",
        "setup-rate.svg",
    ] {
        let text = std::fs::read_to_string(tmp.join(svg)).unwrap();
        assert!(
            text.starts_with("<svg") && text.contains("<polyline"),
            "{svg}"
        );
        assert!(text.contains("l2tpns") && text.contains("xlns"), "{svg}");
    }

    // Nothing left: namespaces and temporary directories of the run.
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let netns = String::from_utf8_lossy(&netns.stdout);
    let leftovers: Vec<String> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("xb-compare-l2tpns-") || n.starts_with("xb-compare-xlns-"))
        .collect();
    std::fs::remove_dir_all(&tmp).unwrap();
    assert!(
        leftovers.is_empty(),
        "temporary directories left: {leftovers:?}"
    );
    assert!(
        !netns.lines().any(|l| l.starts_with("xb-lns-")),
        "namespaces left: {netns}"
    );
}

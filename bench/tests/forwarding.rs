//! Network-namespace test of `xlns-bench forwarding-bench` (ARCHITECTURE.md §7 layer 4):
//! a short run at a low fixed rate must produce sane numbers for the bare forwarder and
//! for xlns-dataplane (packets forwarded both ways, bounded loss, latency percentiles).
//! Not a performance assertion.
//!
//! Needs root and the xlns-dataplane binary beside this test's target directory
//! (`cargo build -p xlns-dataplane --bin xlns-dataplane`, or `XLNS_DATAPLANE=PATH`);
//! `XLNS_SKIP_NETNS=1` skips it.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

fn dataplane_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("XLNS_DATAPLANE") {
        return PathBuf::from(p);
    }
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_xlns-bench"));
    let path = bench.with_file_name("xlns-dataplane");
    assert!(
        path.exists(),
        "{} missing: build it first (cargo build -p xlns-dataplane --bin xlns-dataplane), \
         or set XLNS_DATAPLANE=/path/to/xlns-dataplane",
        path.display()
    );
    path
}

#[test]
fn forwarding_bench_at_a_low_rate_reports_sane_numbers() {
    if std::env::var_os("XLNS_SKIP_NETNS").is_some_and(|v| v == "1") {
        eprintln!("forwarding bench test: SKIPPED (XLNS_SKIP_NETNS=1)");
        return;
    }
    // SAFETY: no preconditions.
    assert!(
        unsafe { libc::geteuid() } == 0,
        "creates network namespaces and loads XDP programs: run as root, or set \
         XLNS_SKIP_NETNS=1 to skip it"
    );
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_xlns-bench"))
        .args(["forwarding-bench", "--sessions", "100", "--tunnels", "4"])
        .args(["--duration", "1", "--rate", "5000", "--json", "--dataplane"])
        .arg(dataplane_bin())
        .args(["--search-trial", "0.5", "--search-trials", "2"])
        .args(["--search-max", "5000"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "forwarding-bench failed: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines = stdout.lines();
    let summary: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    let full: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    let comparisons = summary["comparisons"].as_array().unwrap();
    assert_eq!(comparisons.len(), 3, "{summary}");
    for c in comparisons {
        assert!(c["bare_pps"].as_f64().unwrap() > 0.0, "{c}");
        assert!(c["xlns_pps"].as_f64().unwrap() > 0.0, "{c}");
        assert!(c["ratio"].as_f64().unwrap() > 0.0, "{c}");
    }
    for side in ["bare", "xlns"] {
        for run in full[side].as_array().unwrap() {
            for dir in ["up", "down"] {
                let d = &run[dir];
                if d.is_null() {
                    continue;
                }
                let sent = d["sent"].as_u64().unwrap();
                let received = d["received"].as_u64().unwrap();
                // 5000 pps for 1 s: about 5000 sent.
                assert!((4000..=6000).contains(&sent), "{side} {dir}: sent {sent}");
                assert!(
                    received * 100 >= sent * 95,
                    "{side} {dir}: {received} of {sent} received: {stderr}"
                );
                assert_eq!(d["foreign"].as_u64().unwrap(), 0, "{side} {dir}");
                let lat = &d["latency"];
                assert_eq!(lat["samples"].as_u64().unwrap(), received);
                let (p50, p99) = (
                    lat["p50_us"].as_f64().unwrap(),
                    lat["p99_us"].as_f64().unwrap(),
                );
                assert!(p50 > 0.0 && p50 <= p99, "{side} {dir}: p50 {p50} p99 {p99}");
            }
        }
    }
    // The RFC 2544 searches, bare and xlns: one per direction, at most 2 trials, none
    // above the bound; a throughput is the rate of a passing trial.
    for side in ["bare_searches", "xlns_searches"] {
        let searches = summary[side].as_array().unwrap();
        assert_eq!(searches.len(), 3, "{side}: {summary}");
        for s in searches {
            let trials = s["trials"].as_array().unwrap();
            assert!((1..=2).contains(&trials.len()), "{side}: {s}");
            assert_eq!(trials[0]["rate_pps"].as_f64().unwrap(), 5000.0, "{s}");
            for t in trials {
                assert!(t["rate_pps"].as_f64().unwrap() <= 5000.0, "{s}");
                assert!(t["sent"].as_u64().unwrap() > 0, "{s}");
            }
            if let Some(rate) = s["throughput_pps"].as_f64() {
                assert!(
                    trials
                        .iter()
                        .any(|t| t["pass"] == true && t["rate_pps"].as_f64() == Some(rate)),
                    "{side}: {s}"
                );
            }
        }
    }
    eprintln!("forwarding bench test took {:?}", started.elapsed());
}

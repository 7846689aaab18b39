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
use std::sync::Mutex;
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

/// The tests of this file one at a time: two traffic runs never overlap (both would pin
/// to the same cores).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn enabled(test: &str) -> bool {
    if std::env::var_os("XLNS_SKIP_NETNS").is_some_and(|v| v == "1") {
        eprintln!("{test}: SKIPPED (XLNS_SKIP_NETNS=1)");
        return false;
    }
    // SAFETY: no preconditions.
    assert!(
        unsafe { libc::geteuid() } == 0,
        "creates network namespaces and loads XDP programs: run as root, or set \
         XLNS_SKIP_NETNS=1 to skip it"
    );
    true
}

#[test]
fn forwarding_bench_at_a_low_rate_reports_sane_numbers() {
    if !enabled("forwarding bench test") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
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
        // The data plane's drops during the run, the kernel's at its sockets apart.
        let drops = c["xlns_drops"].as_object().unwrap();
        let kernel: u64 = drops
            .iter()
            .filter(|(k, _)| k.starts_with("xsk-"))
            .map(|(_, v)| v.as_u64().unwrap())
            .sum();
        assert_eq!(c["xlns_kernel_drops"].as_u64().unwrap(), kernel, "{c}");
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

/// Two session counts in one run (`--sessions 20,200 --repeat 2`): one JSON line with the
/// medians and ratios, every count measured in every round, the rounds' order
/// alternating, xlns and the bare forwarder each time. At a low fixed rate everything
/// offered is forwarded, so the ratio is about 1.
#[test]
fn forwarding_bench_several_session_counts_in_one_run() {
    if !enabled("forwarding bench scaling test") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_xlns-bench"))
        .args(["forwarding-bench", "--sessions", "20,200", "--repeat", "2"])
        .args(["--tunnels", "4", "--directions", "both"])
        .args(["--duration", "1", "--rate", "3000", "--json", "--dataplane"])
        .arg(dataplane_bin())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "forwarding-bench failed: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.len(),
        2,
        "one line per direction, then the full report: {stdout}"
    );
    let line = &lines[0];
    assert_eq!(line["direction"], "both", "{line}");
    assert_eq!(line["sessions"], serde_json::json!([20, 200]), "{line}");
    assert_eq!(line["rounds"], 2, "{line}");
    let per_round = line["xlns_pps"].as_array().unwrap();
    assert_eq!(per_round.len(), 2, "{line}");
    for count in per_round {
        let rounds = count.as_array().unwrap();
        assert_eq!(rounds.len(), 2, "{line}");
        for pps in rounds {
            // 3000 pps each way: about 6000 forwarded (less when the generator's core
            // is taken from it for a while: the token bucket does not catch up; at
            // least half, or the count's traffic did not go through).
            let pps = pps.as_f64().unwrap();
            assert!((3000.0..=7000.0).contains(&pps), "{line}: {pps}: {stderr}");
        }
    }
    let ratios = line["ratios"].as_array().unwrap();
    assert_eq!(ratios[0].as_f64().unwrap(), 1.0, "{line}");
    let ratio = line["ratio"].as_f64().unwrap();
    assert_eq!(ratios[1].as_f64().unwrap(), ratio, "{line}");
    let medians: Vec<f64> = line["xlns_median_pps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_f64().unwrap())
        .collect();
    assert_eq!(ratio, medians[1] / medians[0], "{line}");
    assert!((0.5..=2.0).contains(&ratio), "{line}: {stderr}");
    assert_eq!(line["meets_bar"], ratio >= 0.9, "{line}");
    assert_eq!(line["bar"].as_f64().unwrap(), 0.9, "{line}");
    let bare = line["bare_ratios"].as_array().unwrap();
    assert_eq!(bare.len(), 2, "{line}");

    // Interleaved: round 0 counts in order, round 1 reversed; bare then xlns each time.
    let full = &lines[1];
    let order: Vec<(u64, u64, String)> = full["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["round"].as_u64().unwrap(),
                s["sessions"].as_u64().unwrap(),
                s["lns"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: Vec<(u64, u64, String)> = [
        (0, 20, "bare"),
        (0, 20, "xlns"),
        (0, 200, "bare"),
        (0, 200, "xlns"),
        (1, 200, "bare"),
        (1, 200, "xlns"),
        (1, 20, "bare"),
        (1, 20, "xlns"),
    ]
    .into_iter()
    .map(|(r, n, l)| (r, n, l.to_owned()))
    .collect();
    assert_eq!(order, want);
    eprintln!("forwarding bench scaling test took {:?}", started.elapsed());
}

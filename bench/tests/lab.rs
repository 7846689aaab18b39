//! The one-command lab (`deploy/lab/lab.sh`, README "The two commands") with small
//! numbers: 20 sessions over 2 tunnels with CHAP, 3 s of traffic both ways at 1,000 pps
//! per direction, `--keep`; the summary says every session came up and every packet was
//! forwarded each way, /metrics answers from the host while it is kept, and after a
//! Ctrl-C (SIGINT to its process group, as a terminal sends it) nothing is left: no
//! namespace, no veth, no process, no shared-memory segment, no temporary directory.
//!
//! Needs root and the binaries beside this test (`cargo build -p xlns-controlplane --bin
//! xlnsd -p xlns-dataplane --bin xlns-dataplane`; the lab uses `--bin-dir` and builds
//! nothing). `XLNS_SKIP_NETNS=1` skips, loudly. Run under `flock /tmp/xlns-netns.lock`.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

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
    true
}

/// The directory holding xlns-bench, xlnsd and xlns-dataplane.
fn bin_dir() -> PathBuf {
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_xlns-bench"));
    let dir = bench.parent().unwrap().to_path_buf();
    for b in ["xlnsd", "xlns-dataplane"] {
        assert!(
            dir.join(b).is_file(),
            "{b} not in {}: cargo build -p xlns-controlplane --bin xlnsd -p xlns-dataplane \
             --bin xlns-dataplane (same profile as this test)",
            dir.display()
        );
    }
    dir
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// GET /metrics from the host.
fn metrics() -> std::io::Result<String> {
    let mut s =
        TcpStream::connect_timeout(&"10.3.0.2:9101".parse().unwrap(), Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    Ok(body)
}

/// Sends SIGINT to the lab's process group when dropped: a terminal's Ctrl-C.
struct Interrupt(u32);

impl Drop for Interrupt {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group the test created.
        let rc = unsafe { libc::kill(-(self.0 as i32), libc::SIGINT) };
        if rc != 0 {
            eprintln!("SIGINT to the lab: {}", std::io::Error::last_os_error());
        }
    }
}

/// Every line of `(stdout or stderr)` as it comes.
fn lines_of(r: impl Read + Send + 'static, tx: mpsc::Sender<String>) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            eprintln!("  [lab] {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
}

#[test]
fn lab_runs_sessions_and_traffic_then_leaves_nothing_after_ctrl_c() {
    if !enabled("lab_runs_sessions_and_traffic_then_leaves_nothing_after_ctrl_c") {
        return;
    }
    let json = std::env::temp_dir().join(format!("xlns-lab-test-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&json);
    let mut child = Command::new(repo_root().join("lab.sh"))
        .arg("--bin-dir")
        .arg(bin_dir())
        .args(["--no-install", "--sessions", "20", "--tunnels", "2"])
        .args(["--duration", "3", "--rate", "1000", "--keep", "--json"])
        .arg(&json)
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: the SIGINT below reaches it as a terminal's Ctrl-C would.
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = child.id();
    // A failed assertion must not leave the lab running (it keeps until Ctrl-C).
    let guard = Interrupt(pid);
    let (tx, rx) = mpsc::channel();
    lines_of(child.stdout.take().unwrap(), tx.clone());
    lines_of(child.stderr.take().unwrap(), tx);

    let mut output = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    let seen = |output: &[String], what: &str| output.iter().any(|l| l.contains(what));
    // The summary (stdout) and the keep notice (stderr) come through two pipes.
    while !(seen(&output, "keeping the sessions up") && seen(&output, "  drops ")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => output.push(line),
            Err(_) => panic!("the lab never reached --keep:\n{}", output.join("\n")),
        }
    }
    let text = output.join("\n");
    assert!(
        text.contains("20/20 up over 2/2 tunnels (chap), 0 failed"),
        "{text}"
    );
    for dir in ["upstream", "downstream"] {
        let line = output
            .iter()
            .find(|l| l.trim_start().starts_with(dir))
            .unwrap_or_else(|| panic!("no {dir} line:\n{text}"));
        assert!(line.contains("lost 0 ("), "{line}");
    }
    assert!(
        text.contains("xlns-dataplane during the traffic: 0 (kernel, at its AF_XDP sockets: 0) {}"),
        "{text}"
    );
    let tmp = output
        .iter()
        .find_map(|l| l.trim().strip_prefix("logs:"))
        .and_then(|l| l.split(',').next())
        .map(|l| PathBuf::from(l.trim()).parent().unwrap().to_path_buf())
        .unwrap_or_else(|| panic!("no logs line:\n{text}"));
    assert!(tmp.is_dir());

    // Kept: /metrics answers from the host, with every session up.
    let body = metrics().unwrap();
    assert!(body.contains("xlns_sessions{state=\"up\"} 20"), "{body}");

    // Ctrl-C.
    drop(guard);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the lab did not stop after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
        output.push(line);
    }
    let text = output.join("\n");
    assert!(status.success(), "{status:?}:\n{text}");
    assert!(text.contains("teardown"), "{text}");
    assert!(text.contains("cleaned up"), "{text}");

    // The whole result as JSON: every packet each way, the teardown complete.
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    std::fs::remove_file(&json).unwrap();
    assert_eq!(result["setup"]["sessions_up"], 20);
    assert_eq!(result["sessions"], 20);
    for dir in ["up", "down"] {
        let d = &result["traffic"][dir];
        let sent = d["sent"].as_u64().unwrap();
        assert!(sent >= 2_500, "{dir}: {d}");
        assert_eq!(d["received"].as_u64(), Some(sent), "{dir}: {d}");
        assert_eq!(d["lost"], 0);
    }
    assert_eq!(result["end"]["teardown"]["complete"], true);
    assert_eq!(result["end"]["ppp"]["down_reasons"]["admin"], 20);

    // Nothing left behind.
    let netns = String::from_utf8(
        Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let suffix = format!("-{pid}");
    assert!(
        !netns
            .lines()
            .any(|l| l.starts_with("xlab-")
                && l.split_whitespace().next().unwrap().ends_with(&suffix)),
        "{netns}"
    );
    assert!(!Path::new(&format!("/dev/shm/xlns-lab-{pid}")).exists());
    assert!(!tmp.exists(), "{} left", tmp.display());
    let veth = Command::new("ip")
        .args(["link", "show", &format!("xlabm-{pid}")])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!veth.success(), "the management veth is left");
    let needle = tmp.display().to_string();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        assert!(
            !cmdline.contains(&needle),
            "a lab process is left: {}: {cmdline}",
            entry.path().display()
        );
    }
}

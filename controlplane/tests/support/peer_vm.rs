//! Runs the real Linux L2TP client of `../shared/peer-vm` (xl2tpd + pppd with the kernel
//! L2TP driver in a QEMU guest) against xlnsd, for the interop tests
//! (ARCHITECTURE.md §7, layer 5).
//!
//! Include it with `#[path = "support/peer_vm.rs"] mod peer_vm;` (it uses the referee,
//! which the test file includes as `mod referee;` beside it).
//!
//! The harness needs root, `/dev/net/tun` and the guest image (`.ci/run` builds it). When it
//! cannot run, the tests FAIL with the reason, unless `XLNS_SKIP_INTEROP=1` is set.
//! `XLNS_PEER_VM` names the harness directory (default `../shared/peer-vm` beside the
//! repository). Runs are serialised (one lab namespace at a time); artifacts (console log,
//! results, lns.log, capture) stay in `target/interop/<name>/`.

#![allow(dead_code, clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Set to `1` to let the interop tests pass where the guest cannot run.
pub const SKIP_ENV: &str = "XLNS_SKIP_INTEROP";

static LAB: Mutex<()> = Mutex::new(());

/// The outcome of one guest run.
#[derive(Debug)]
pub struct Run {
    /// run.sh's exit status: 0 PASS, 1 FAIL, 2 no summary.
    pub status: i32,
    /// The `PEER-*` result lines.
    pub results: Vec<String>,
    /// xlnsd's stderr.
    pub lns_log: String,
    /// The capture of the lab bridge.
    pub pcap: PathBuf,
    /// Where everything is kept.
    pub out: PathBuf,
}

impl Run {
    /// The value of `key=` in the first result line starting with `tag`.
    pub fn value(&self, tag: &str, key: &str) -> Option<String> {
        let prefix = format!("{key}=");
        self.results
            .iter()
            .filter(|l| l.starts_with(tag))
            .flat_map(|l| l.split_whitespace())
            .find_map(|w| w.strip_prefix(&prefix).map(str::to_owned))
    }

    /// A readable dump for assertion messages.
    pub fn dump(&self) -> String {
        format!(
            "run.sh status {}\nresults:\n{}\nxlnsd log (tail):\n{}\nartifacts: {}",
            self.status,
            self.results.join("\n"),
            tail(&self.lns_log, 40),
            self.out.display()
        )
    }
}

/// `s` without ANSI escape sequences (xlnsd's log colours: `ESC [ ... m`).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn tail(s: &str, lines: usize) -> String {
    let all: Vec<&str> = s.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The harness directory, or `None` (after printing why) when the tests may skip.
pub fn harness() -> Option<PathBuf> {
    let dir = std::env::var_os("XLNS_PEER_VM")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/peer-vm"));
    let problem = if !dir.join("run.sh").exists() {
        Some(format!("no peer-vm harness at {}", dir.display()))
    } else if !is_root() {
        Some("the peer-vm guest needs root".to_owned())
    } else if !Path::new("/dev/net/tun").exists() {
        Some("no /dev/net/tun".to_owned())
    } else {
        None
    };
    match problem {
        None => Some(dir),
        Some(why) if std::env::var(SKIP_ENV).as_deref() == Ok("1") => {
            eprintln!("interop test skipped ({SKIP_ENV}=1): {why}");
            None
        }
        Some(why) => panic!("interop test cannot run: {why} (set {SKIP_ENV}=1 to skip)"),
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The lab topologies of `run.sh --topology`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// The LNS on the lab bridge (xlnsd alone).
    Bridge,
    /// Access and core veths: start.sh starts xlns-dataplane beside xlnsd.
    Dataplane,
}

impl Topology {
    fn name(self) -> &'static str {
        match self {
            Topology::Bridge => "bridge",
            Topology::Dataplane => "dataplane",
        }
    }
}

/// The output directory of run `name` (`target/interop/<name>`).
pub fn out_dir(name: &str) -> PathBuf {
    repo_root().join("target/interop").join(name)
}

/// `target/{release,debug}/<bin>` of the workspace, the first that exists.
pub fn workspace_bin(bin: &str) -> Option<PathBuf> {
    ["release", "debug"]
        .iter()
        .map(|p| repo_root().join("target").join(p).join(bin))
        .find(|p| p.exists())
}

/// Boots one guest against xlnsd started by `deploy/lab/peer-vm/start.sh`, with the
/// given extra `run.sh` arguments, and returns what happened.
pub fn run(harness: &Path, name: &str, args: &[&str]) -> Run {
    run_with(harness, name, Topology::Bridge, args, &[])
}

/// [`run`] in `topology`, with extra environment for start.sh.
pub fn run_with(
    harness: &Path,
    name: &str,
    topology: Topology,
    args: &[&str],
    env: &[(&str, &str)],
) -> Run {
    let _lab = LAB.lock().unwrap_or_else(|e| e.into_inner());
    let out = out_dir(name);
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out).unwrap();
    let pcap = out.join("capture.pcap");
    let start = repo_root().join("deploy/lab/peer-vm/start.sh");
    let output = Command::new(harness.join("run.sh"))
        .arg("--lns-cmd")
        .arg(start.as_os_str())
        .arg("--out")
        .arg(&out)
        .arg("--pcap")
        .arg(&pcap)
        .arg("--timeout")
        .arg("180")
        .arg("--topology")
        .arg(topology.name())
        .args(args)
        .env("PEER_TOPOLOGY", topology.name())
        .envs(env.iter().copied())
        .env("XLNSD", env!("CARGO_BIN_EXE_xlnsd"))
        .env(
            "PEER_VM_ACCEL",
            std::env::var("PEER_VM_ACCEL").unwrap_or("tcg".into()),
        )
        .current_dir(repo_root())
        .output()
        .expect("run.sh starts");
    fs::write(out.join("run.stdout"), &output.stdout).unwrap();
    fs::write(out.join("run.stderr"), &output.stderr).unwrap();
    let results = fs::read_to_string(out.join("results.txt"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| l.starts_with("PEER-"))
        .collect();
    Run {
        status: output.status.code().unwrap_or(-1),
        results,
        lns_log: strip_ansi(&fs::read_to_string(out.join("lns.log")).unwrap_or_default()),
        pcap,
        out,
    }
}

/// The frames of a capture (pcap or pcapng, as tshark writes it), for the referee.
pub fn read_capture(path: &Path) -> Vec<Vec<u8>> {
    use pcap_file::pcapng::{Block, PcapNgReader};
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut frames = Vec::new();
    if bytes.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        let mut reader = PcapNgReader::new(&bytes[..]).expect("pcapng header");
        while let Some(block) = reader.next_block() {
            match block.expect("pcapng block") {
                Block::EnhancedPacket(p) => frames.push(p.data.into_owned()),
                Block::SimplePacket(p) => frames.push(p.data.into_owned()),
                _ => {}
            }
        }
    } else {
        let mut reader = pcap_file::pcap::PcapReader::new(&bytes[..]).expect("pcap header");
        while let Some(packet) = reader.next_packet() {
            frames.push(packet.expect("pcap packet").data.into_owned());
        }
    }
    frames
}

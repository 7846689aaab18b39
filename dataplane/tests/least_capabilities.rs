//! The capabilities deploy/systemd/xlns-dataplane.service grants are enough, and each of
//! them is needed (issue #8). Root only (it creates a network namespace and drops to an
//! unprivileged user with `setpriv`); `XLNS_SKIP_NETNS=1` skips it.
//!
//! The test reads `AmbientCapabilities=` from the unit, creates a namespace with a veth
//! pair and a session segment owned by user `nobody`, and starts xlns-dataplane (one
//! armed, one worker, `--config` with a `[dataplane]` section) as `nobody` with exactly
//! those capabilities and a 64 KiB RLIMIT_MEMLOCK: it must print its ready line. Then
//! once without each capability in turn: it must fail before it is ready. So the unit
//! asks for nothing the data plane does without (CAP_SYS_ADMIN is not in it), and for
//! nothing less than it needs.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use xlns_dataplane::shm::{Geometry, Writer};

const NOBODY: u32 = 65534;

fn enabled(test: &str) -> bool {
    if std::env::var_os("XLNS_SKIP_NETNS").is_some_and(|v| v == "1") {
        let _ = writeln!(io::stderr(), "{test}: SKIPPED (XLNS_SKIP_NETNS=1)");
        return false;
    }
    // SAFETY: no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert!(
        euid == 0,
        "{test} creates a network namespace and drops privileges: run as root, or set \
         XLNS_SKIP_NETNS=1 to skip it"
    );
    true
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The namespace and files; removed on drop.
struct Lab {
    ns: String,
    dir: PathBuf,
    shm: PathBuf,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        let _ = std::fs::remove_file(&self.shm);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `AmbientCapabilities=` of the unit, as setpriv names them (`bpf`, `net_admin`, ...).
fn unit_capabilities() -> Vec<String> {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd/xlns-dataplane.service"),
    )
    .unwrap();
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("AmbientCapabilities="))
        .unwrap();
    line.split_whitespace()
        .map(|c| c.strip_prefix("CAP_").unwrap().to_lowercase())
        .collect()
}

/// Starts the data plane as `nobody` with `caps`; true when it printed its ready line
/// within 20 s, false when it exited first (its stderr is echoed).
fn starts_with(lab: &Lab, caps: &[String]) -> bool {
    let list = |prefix: &str| {
        let mut s = String::from("-all");
        for c in caps {
            s.push_str(&format!(",{prefix}{c}"));
        }
        s
    };
    let mut child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.ns,
            "prlimit",
            "--memlock=65536:65536",
            "--",
        ])
        .args(["setpriv", "--reuid", &NOBODY.to_string(), "--regid"])
        .arg(NOBODY.to_string())
        .args(["--clear-groups", "--inh-caps", &list("+")])
        .args(["--ambient-caps", &list("+"), "--bounding-set", &list("+")])
        .arg(env!("CARGO_BIN_EXE_xlns-dataplane"))
        .arg("--config")
        .arg(lab.dir.join("xlns.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("ready") {
                let _ = tx.send(());
            }
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = writeln!(io::stderr(), "[dataplane] {line}");
        }
    });
    let give_up = Instant::now() + Duration::from_secs(20);
    let ready = loop {
        if rx.recv_timeout(Duration::from_millis(100)).is_ok() {
            break true;
        }
        if child.try_wait().unwrap().is_some() {
            break false;
        }
        assert!(Instant::now() < give_up, "neither ready nor failed in 20 s");
    };
    let _ = child.kill();
    let _ = child.wait();
    ready
}

#[test]
fn unit_capabilities_are_enough_and_each_is_needed() {
    if !enabled("unit_capabilities_are_enough_and_each_is_needed") {
        return;
    }
    let caps = unit_capabilities();
    assert_eq!(caps, ["bpf", "perfmon", "net_admin", "net_raw", "ipc_lock"]);
    let tag = std::process::id();
    let lab = Lab {
        ns: format!("xlns-caps-{tag}"),
        dir: std::env::temp_dir().join(format!("xlns-caps-{tag}")),
        shm: PathBuf::from(format!("/dev/shm/xlns-caps-{tag}")),
    };
    run(Command::new("ip").args(["netns", "add", &lab.ns]));
    run(Command::new("ip").args([
        "-n", &lab.ns, "link", "add", "acc0", "type", "veth", "peer", "name", "lac0",
    ]));
    for dev in ["acc0", "lac0"] {
        run(Command::new("ip").args(["-n", &lab.ns, "link", "set", dev, "up"]));
    }
    // The segment xlnsd would create, owned by the data plane's user.
    let writer = Writer::create(
        &lab.shm,
        Geometry {
            max_sessions: 16,
            max_workers: 1,
        },
    )
    .unwrap();
    std::fs::create_dir_all(&lab.dir).unwrap();
    std::fs::write(
        lab.dir.join("xlns.toml"),
        format!(
            "[ppp]\ngateway = \"10.9.255.254\"\n\n[dataplane]\nshm = \"{}\"\nmax_workers = 1\n\
             access_interface = \"acc0\"\none_armed = true\ncore_next_hop_mac = \"02:00:00:00:00:01\"\n\
             workers = 1\nframes = 4096\nring_size = 1024\nxdp_mode = \"generic\"\n",
            lab.shm.display()
        ),
    )
    .unwrap();
    for path in [&lab.shm, &lab.dir, &lab.dir.join("xlns.toml")] {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::chown(c.as_ptr(), NOBODY, NOBODY) }, 0);
    }

    assert!(
        starts_with(&lab, &caps),
        "xlns-dataplane did not start with the unit's capabilities {caps:?}"
    );
    for missing in &caps {
        let fewer: Vec<String> = caps.iter().filter(|c| *c != missing).cloned().collect();
        assert!(
            !starts_with(&lab, &fewer),
            "xlns-dataplane started without CAP_{}: the unit asks for more than it needs",
            missing.to_uppercase()
        );
    }
    drop(writer);
}

//! `xlns-dataplane --config FILE --check-config` (issue #8): the data plane reads the
//! `[dataplane]` section of the file xlnsd reads (and `[l2tp] listen`, `[ppp] gateway`);
//! each broken row must fail with exit code 2 and an error that begins with
//! `file:line:column: key:`. The rows shared with xlnsd are in
//! controlplane/tests/check_config.rs.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

const GOOD: &str = "[l2tp]\nlisten = \"192.0.2.1:1702\"\nhost_name = \"lns\"\n\n\
                    [ppp]\ngateway = \"100.64.0.1\"\nauth = [\"pap\"]\n\n\
                    [dataplane]\naccess_interface = \"eth1\"\ncore_interface = \"eth2\"\n\
                    core_gateway = \"198.51.100.1\"\nworkers = 2\n";

/// (name, file text, what the error must begin with after `FILE:`).
const ROWS: &[(&str, &str, &str)] = &[
    ("syntax", "[dataplane\n", "1:11: "),
    (
        "no section",
        "[l2tp]\nlisten = \"0.0.0.0:1701\"\n",
        " dataplane: no [dataplane] section",
    ),
    (
        "disabled",
        "[dataplane]\nenabled = false\naccess_interface = \"eth1\"\n",
        "1:1: dataplane.enabled: the data plane is disabled",
    ),
    (
        "missing access interface",
        "\n[dataplane]\ncore_interface = \"eth2\"\n",
        "2:1: dataplane: missing field `access_interface`",
    ),
    (
        "no core interface",
        "[ppp]\ngateway = \"100.64.0.1\"\n\n[dataplane]\naccess_interface = \"eth1\"\n\
         core_gateway = \"198.51.100.1\"\n",
        "4:1: dataplane.core_interface: required",
    ),
    (
        "no next hop",
        "[ppp]\ngateway = \"100.64.0.1\"\n[dataplane]\naccess_interface = \"eth1\"\none_armed = true\n",
        "3:1: dataplane.core_gateway: the core next hop is required",
    ),
    (
        "no gateway",
        "[dataplane]\naccess_interface = \"eth1\"\none_armed = true\ncore_gateway = \"198.51.100.1\"\n",
        "1:1: dataplane.gateway_v4: required",
    ),
    (
        "bad shared gateway",
        "[ppp]\ngateway = \"100.64.0\"\n[dataplane]\naccess_interface = \"eth1\"\n",
        "2:11: ppp.gateway: \"100.64.0\" is not an IPv4 address",
    ),
    (
        "bad shared listen",
        "[l2tp]\nlisten = \"1701\"\n[dataplane]\naccess_interface = \"eth1\"\n",
        "2:10: l2tp.listen: \"1701\" is not an address and port",
    ),
    (
        "bad gateway_v4",
        "[dataplane]\naccess_interface = \"eth1\"\ngateway_v4 = \"::1\"\n",
        "3:14: dataplane.gateway_v4: \"::1\" is not an IPv4 address",
    ),
    (
        "bad icmp source",
        "[dataplane]\naccess_interface = \"eth1\"\nicmp_source_v4 = \"x\"\n",
        "3:18: dataplane.icmp_source_v4: \"x\" is not an IPv4 address",
    ),
    (
        "bad xdp mode",
        "[dataplane]\naccess_interface = \"eth1\"\nxdp_mode = \"skb\"\n",
        "3:12: dataplane.xdp_mode: \"skb\" is not one of \"native\", \"generic\"",
    ),
    (
        "bad stats interval",
        "[dataplane]\naccess_interface = \"eth1\"\nstats_interval = 10\n",
        "3:18: dataplane.stats_interval: invalid type: integer `10`",
    ),
    (
        "frames",
        "[dataplane]\naccess_interface = \"eth1\"\nframes = 8\n",
        "3:10: dataplane.frames: must be between 64 and 1048576",
    ),
    (
        "workers zero",
        "[dataplane]\naccess_interface = \"eth1\"\nworkers = 0\n",
        "3:11: dataplane.workers: must be between 1 and 1024",
    ),
    (
        "unknown key",
        "[dataplane]\naccess_interface = \"eth1\"\nrss = true\n",
        "3:1: dataplane.rss: unknown field `rss`",
    ),
];

fn check(config: &Path, extra: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xlns-dataplane"))
        .arg("--config")
        .arg(config)
        .arg("--check-config")
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xlns-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn every_broken_config_names_file_line_and_key() {
    let dir = temp_dir("dp-check-config");
    let mut failures = Vec::new();
    for (i, (name, text, want)) in ROWS.iter().enumerate() {
        let path = dir.join(format!("case{i}.toml"));
        std::fs::write(&path, text).unwrap();
        let want = format!("xlns-dataplane: {}:{want}", path.display());
        let (code, _, stderr) = check(&path, &[]);
        if code != Some(2) || !stderr.starts_with(&want) {
            failures.push(format!(
                "{name}: exit {code:?}\n  want: {want}\n  got:  {}",
                stderr.trim_end()
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn good_config_and_command_line_overrides() {
    let dir = temp_dir("dp-check-config-ok");
    let path = dir.join("xlns.toml");
    // xlnsd's sections and keys are not the data plane's business: an [admission] key
    // the data plane does not know is ignored here (xlnsd --check-config checks it).
    std::fs::write(&path, format!("{GOOD}\n[admission]\nicrq_burst = 10\n")).unwrap();
    let (code, stdout, stderr) = check(&path, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout,
        "configuration ok: access=eth1 core=eth2 workers=2 shm=/dev/shm/xlns.default\n"
    );
    // Flags override the file.
    let (code, stdout, stderr) = check(
        &path,
        &["--one-armed", "--workers", "3", "--shm", "/dev/shm/xlns.x"],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout,
        "configuration ok: access=eth1 core=(one-armed) workers=3 shm=/dev/shm/xlns.x\n"
    );
    // A flag supplies what the file lacks.
    std::fs::write(
        &path,
        "[dataplane]\naccess_interface = \"eth1\"\none_armed = true\ncore_gateway = \"198.51.100.1\"\n",
    )
    .unwrap();
    let (code, _, stderr) = check(&path, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    let (code, _, stderr) = check(&path, &["--gateway-v4", "100.64.0.1"]);
    assert_eq!(code, Some(0), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

//! `xlnsd --check-config` on broken configurations (issue #8): each row is a file and
//! the exact `file:line:column: key:` its first error must begin with. The rows about
//! `[dataplane]`, the section both processes read, are checked against
//! `xlns-dataplane --check-config` too when that binary is built next to xlnsd (the
//! data plane's own table is in dataplane/tests/check_config.rs).
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// (name, file text, what the error must begin with after `FILE:`, the row is about
/// `[dataplane]` and xlns-dataplane must report it the same way).
const ROWS: &[(&str, &str, &str, bool)] = &[
    ("syntax", "[l2tp\nlisten = 1\n", "1:6: ", false),
    (
        "unknown section",
        "[l2tpp]\nlisten = \"0.0.0.0:1701\"\n",
        "1:2: l2tpp: unknown field `l2tpp`",
        false,
    ),
    (
        "unknown key",
        "[l2tp]\nlisen = \"0.0.0.0:1701\"\n",
        "2:1: l2tp.lisen: unknown field `lisen`",
        false,
    ),
    (
        "wrong type",
        "[l2tp]\nreceive_window = \"16\"\n",
        "2:18: l2tp.receive_window: invalid type: string \"16\"",
        false,
    ),
    (
        "range",
        "[l2tp]\nreceive_window = 0\n",
        "2:18: l2tp.receive_window: must be between 1 and 65535",
        false,
    ),
    (
        "listen without port",
        "[l2tp]\nlisten = \"0.0.0.0\"\n",
        "2:10: l2tp.listen: \"0.0.0.0\" is not an address and port",
        false,
    ),
    (
        "duration without unit",
        "\n[l2tp]\nhello_interval = \"60\"\n",
        "3:18: l2tp.hello_interval: \"60\" is not a duration",
        false,
    ),
    (
        "retransmit cap below RFC 2661 minimum",
        "[l2tp]\nretransmit_cap = \"4s\"\n",
        "2:18: l2tp.retransmit_cap: must be between 8s and 10m",
        false,
    ),
    (
        "stopccn shorter than a cycle",
        "[l2tp]\nstopccn_wait = \"5s\"\n",
        "2:16: l2tp.stopccn_wait: stopccn_wait (5s) is shorter than one retransmission cycle (31s)",
        false,
    ),
    (
        "admission rate",
        "[admission]\nsccrq_per_second = 0\n",
        "2:20: admission.sccrq_per_second: must be between 1 and 1000000",
        false,
    ),
    (
        "lac without name",
        "[[lac]]\nhost_name = \"lac1\"\n",
        "1:1: lac[0]: missing field `name`",
        false,
    ),
    (
        "lac name twice",
        "[[lac]]\nname = \"a\"\n\n[[lac]]\nname = \"a\"\n",
        "5:8: lac[1].name: duplicate",
        false,
    ),
    (
        "lac unknown key",
        "[[lac]]\nname = \"a\"\nsecrett = \"x\"\n",
        "3:1: lac[0].secrett: unknown field `secrett`",
        false,
    ),
    (
        "lac empty secret",
        "[[lac]]\nname = \"a\"\nsecret = \"\"\n",
        "3:10: lac[0].secret: must not be empty",
        false,
    ),
    (
        "lac host name pattern",
        "[[lac]]\nname = \"a\"\nhost_name = \"la*c\"\n",
        "3:13: lac[0].host_name: \"la*c\": '*' is allowed only as the last character",
        false,
    ),
    (
        "lac source host bits",
        "[[lac]]\nname = \"a\"\nsource = [\"192.0.2.0/24\", \"10.0.0.1/8\"]\n",
        "3:27: lac[0].source[1]: \"10.0.0.1/8\" has host bits set",
        false,
    ),
    (
        "lac radius without server",
        "[[lac]]\nname = \"a\"\naaa = \"radius\"\n",
        "3:7: lac[0].aaa: RADIUS authentication needs a [[radius.auth_server]]",
        false,
    ),
    (
        "ppp unknown method",
        "[ppp]\nauth = [\"chap-md5\", \"eap\"]\n",
        "2:21: ppp.auth[1]: unknown authentication method \"eap\"",
        false,
    ),
    (
        "ppp three dns servers",
        "[ppp]\ndns = [\"192.0.2.1\", \"192.0.2.2\", \"192.0.2.3\"]\n",
        "2:7: ppp.dns: at most two servers",
        false,
    ),
    (
        "pool without gateway",
        "[[pool]]\nname = \"p\"\ncidr = \"10.0.0.0/24\"\n",
        "2:8: ppp.gateway: pools need [ppp] gateway",
        false,
    ),
    (
        "pool host bits",
        "[ppp]\ngateway = \"10.0.0.1\"\n[[pool]]\nname = \"p\"\ncidr = \"10.0.0.1/24\"\n",
        "5:8: pool[0].cidr: \"10.0.0.1/24\" has host bits set; did you mean \"10.0.0.0/24\"?",
        false,
    ),
    (
        "default pool unknown",
        "[ppp]\ngateway = \"10.0.0.1\"\ndefault_pool = \"nope\"\n",
        "3:16: ppp.default_pool: no [[pool]] named \"nope\"",
        false,
    ),
    (
        "users file empty",
        "[users]\nfile = \"\"\n",
        "2:8: users.file: must not be empty",
        false,
    ),
    (
        "metrics address",
        "[management]\nmetrics = \"9101\"\n",
        "2:11: management.metrics: \"9101\" is not an address:port",
        false,
    ),
    (
        "radius server address",
        "[radius]\n[[radius.auth_server]]\naddress = \"radius1\"\nsecret = \"s\"\n",
        "3:11: radius.auth_server[0].address: \"radius1\" is not an address:port",
        false,
    ),
    (
        "radius timeout",
        "[radius]\ntimeout = \"0ms\"\n",
        "2:11: radius.timeout: must be between 10ms and 1m",
        false,
    ),
    (
        "dataplane unknown key",
        "[dataplane]\naccess_interface = \"eth1\"\nqueues = 4\n",
        "3:1: dataplane.queues: unknown field `queues`",
        true,
    ),
    (
        "dataplane interface name",
        "[dataplane]\naccess_interface = \"a-very-long-interface\"\n",
        "2:20: dataplane.access_interface: \"a-very-long-interface\" is not an interface name",
        true,
    ),
    (
        "dataplane workers over max_workers",
        "[dataplane]\naccess_interface = \"eth1\"\none_armed = true\nmax_workers = 2\nworkers = 4\n",
        "5:11: dataplane.workers: 4 workers but the segment has counter columns for max_workers = 2",
        true,
    ),
    (
        "dataplane frame size",
        "[dataplane]\naccess_interface = \"eth1\"\nframe_size = 3000\n",
        "3:14: dataplane.frame_size: must be 2048 or 4096",
        true,
    ),
    (
        "dataplane ring size",
        "[dataplane]\naccess_interface = \"eth1\"\nring_size = 1000\n",
        "3:13: dataplane.ring_size: must be a power of two between 64 and 65536",
        true,
    ),
    (
        "dataplane bind mode",
        "[dataplane]\naccess_interface = \"eth1\"\nbind = \"fast\"\n",
        "3:8: dataplane.bind: \"fast\" is not one of \"auto\", \"copy\", \"zerocopy\"",
        true,
    ),
    (
        "dataplane core with one_armed",
        "[dataplane]\naccess_interface = \"eth1\"\none_armed = true\ncore_interface = \"eth2\"\n",
        "4:18: dataplane.core_interface: one_armed = true",
        true,
    ),
    (
        "dataplane next hop mac",
        "[dataplane]\naccess_interface = \"eth1\"\ncore_next_hop_mac = \"02:00:00:00:00\"\n",
        "3:21: dataplane.core_next_hop_mac: \"02:00:00:00:00\" is not a MAC address",
        true,
    ),
    (
        "dataplane vlan",
        "[dataplane]\naccess_interface = \"eth1\"\ncore_vlan = 4095\n",
        "3:13: dataplane.core_vlan: must be between 0 and 4094",
        true,
    ),
    (
        "dataplane cpu",
        "[dataplane]\naccess_interface = \"eth1\"\ncores = [1, -2]\n",
        "3:13: dataplane.cores[1]: must be a CPU number between 0 and 4095",
        true,
    ),
];

fn check(binary: &Path, config: &Path) -> (Option<i32>, String, String) {
    let out = Command::new(binary)
        .arg("--config")
        .arg(config)
        .arg("--check-config")
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
    let xlnsd = PathBuf::from(env!("CARGO_BIN_EXE_xlnsd"));
    let dataplane = xlnsd.with_file_name("xlns-dataplane");
    let dataplane = dataplane.exists().then_some(dataplane);
    if dataplane.is_none() {
        eprintln!(
            "xlns-dataplane not built next to xlnsd: [dataplane] rows checked with xlnsd only"
        );
    }
    let dir = temp_dir("check-config");
    let mut failures = Vec::new();
    for (i, (name, text, want, shared)) in ROWS.iter().enumerate() {
        let path = dir.join(format!("case{i}.toml"));
        std::fs::write(&path, text).unwrap();
        let want = format!("{}:{want}", path.display());
        let mut binaries = vec![("xlnsd", xlnsd.clone())];
        if *shared && let Some(dp) = &dataplane {
            binaries.push(("xlns-dataplane", dp.clone()));
        }
        for (bin, path) in binaries {
            let (code, _, stderr) = check(&path, &dir.join(format!("case{i}.toml")));
            let shown = stderr.strip_prefix(&format!("{bin}: ")).unwrap_or(&stderr);
            if code != Some(2) || !shown.starts_with(&want) {
                failures.push(format!(
                    "{bin} / {name}: exit {code:?}\n  want: {want}\n  got:  {}",
                    stderr.trim_end()
                ));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn missing_users_file_and_good_config() {
    let dir = temp_dir("check-config-ok");
    let config = dir.join("xlnsd.toml");
    std::fs::write(&config, "[users]\nfile = \"users\"\n").unwrap();
    let (code, _, stderr) = check(Path::new(env!("CARGO_BIN_EXE_xlnsd")), &config);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&dir.join("users").display().to_string()),
        "{stderr}"
    );
    std::fs::write(dir.join("users"), "alice secret\n").unwrap();
    let (code, stdout, stderr) = check(Path::new(env!("CARGO_BIN_EXE_xlnsd")), &config);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "configuration ok\n");
    let _ = std::fs::remove_dir_all(&dir);
}

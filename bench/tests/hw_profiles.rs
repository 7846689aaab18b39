//! The hardware profiles build the generator's bytes (issue #6): `bench/trex/xlns_l2tp.py`
//! (the TRex STL profile's frame builder, run here with scapy) and the pcaps that
//! `bench/pktgen/xlns-pktgen.sh` writes from it must equal, frame for frame, what
//! `xlns-bench traffic` writes on AF_XDP for the same sessions JSON (zero filler, stamp
//! with the session's flow, seq 0, tx_ns 0).
//!
//! Needs python3 with scapy (Debian: python3-scapy, installed by .ci/run).
#![allow(clippy::unwrap_used, clippy::panic)]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use xlns_bench::traffic::packet::{FLOW_DOWN, write_downstream, write_upstream};
use xlns_bench::traffic::{Macs, SessionList, Sizes, Stamp};

const MACS: Macs = Macs {
    lac: [0x02, 0x10, 0, 0, 0, 0x01],
    lns_access: [0x02, 0x10, 0, 0, 0, 0x02],
    server: [0x02, 0x10, 0, 0, 0, 0x03],
    lns_core: [0x02, 0x10, 0, 0, 0, 0x04],
};
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 2);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn python() -> &'static str {
    // Debian's interpreter has python3-scapy; a pyenv first on PATH may not.
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

fn mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn mac_args() -> Vec<String> {
    vec![
        "--lac-mac".into(),
        mac(&MACS.lac),
        "--lns-access-mac".into(),
        mac(&MACS.lns_access),
        "--server-mac".into(),
        mac(&MACS.server),
        "--lns-core-mac".into(),
        mac(&MACS.lns_core),
        "--server".into(),
        SERVER.to_string(),
    ]
}

/// Sessions over several tunnels, with ports and ids that are not the defaults.
fn sessions(dir: &Path) -> (SessionList, PathBuf) {
    let mut list = SessionList::synthetic(
        29,
        4,
        Ipv4Addr::new(10, 1, 0, 1),
        Ipv4Addr::new(10, 1, 0, 2),
        Ipv4Addr::new(100, 64, 0, 250),
    )
    .unwrap();
    for (i, s) in list.sessions.iter_mut().enumerate() {
        s.lac_port = 40_000 + i as u16;
        s.session_id = s.session_id.wrapping_mul(977);
        s.tunnel_id = s.tunnel_id.wrapping_mul(4099);
    }
    let path = dir.join("sessions.json");
    list.save(&path).unwrap();
    (list, path)
}

/// The generator's frames: one per session, the i-th taking the i-th size of the cycle.
fn generator_frames(list: &SessionList, up: bool, sizes: Sizes) -> Vec<Vec<u8>> {
    list.sessions
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut buf = vec![0u8; 2048];
            let flow = if up { i as u32 } else { FLOW_DOWN | i as u32 };
            let stamp = Stamp {
                flow,
                seq: 0,
                tx_ns: 0,
            };
            let len = sizes.nth(i as u64);
            let n = if up {
                write_upstream(&mut buf, &MACS, s, SERVER, len, stamp)
            } else {
                write_downstream(&mut buf, &MACS, s, SERVER, len, stamp)
            };
            assert!(n > 0);
            buf.truncate(n);
            buf
        })
        .collect()
}

fn profile_frames(sessions: &Path, up: bool, size: &str) -> Vec<Vec<u8>> {
    let out = Command::new(python())
        .arg(repo().join("bench/trex/xlns_l2tp.py"))
        .arg("--sessions")
        .arg(sessions)
        .args([
            "--direction",
            if up { "up" } else { "down" },
            "--size",
            size,
        ])
        .args(mac_args())
        .arg("--hex")
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "the profile failed (python3-scapy installed?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| unhex(l.trim()))
        .collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn hexs(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xlns-hw-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn trex_profile_builds_the_generators_bytes() {
    let dir = tempdir("trex");
    let (list, path) = sessions(&dir);
    for size in ["64", "1400", "imix"] {
        let sizes = Sizes::parse(size).unwrap();
        for up in [true, false] {
            let ours = generator_frames(&list, up, sizes);
            let theirs = profile_frames(&path, up, size);
            assert_eq!(theirs.len(), ours.len(), "size {size} up {up}");
            for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                assert_eq!(hexs(a), hexs(b), "frame {i}, size {size}, up {up}");
            }
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// Frames of a classic pcap file (little-endian, microsecond, Ethernet), read by hand.
fn pcap_frames(path: &Path) -> Vec<Vec<u8>> {
    let data = std::fs::read(path).unwrap();
    assert_eq!(
        &data[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "a little-endian pcap"
    );
    assert_eq!(u32::from_le_bytes(data[20..24].try_into().unwrap()), 1);
    let mut at = 24;
    let mut frames = Vec::new();
    while at < data.len() {
        let incl = u32::from_le_bytes(data[at + 8..at + 12].try_into().unwrap()) as usize;
        frames.push(data[at + 16..at + 16 + incl].to_vec());
        at += 16 + incl;
    }
    frames
}

#[test]
fn pktgen_pcaps_hold_the_generators_bytes() {
    let dir = tempdir("pktgen");
    let (list, path) = sessions(&dir);
    let out = dir.join("pcaps");
    let status = Command::new("bash")
        .arg(repo().join("bench/pktgen/xlns-pktgen.sh"))
        .arg("pcaps")
        .arg(&path)
        .arg(&out)
        .arg("imix")
        .args(mac_args())
        .status()
        .unwrap();
    assert!(status.success());
    for (up, file) in [(true, "up.pcap"), (false, "down.pcap")] {
        let ours = generator_frames(&list, up, Sizes::Imix);
        assert_eq!(pcap_frames(&out.join(file)), ours, "{file}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

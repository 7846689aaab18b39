//! Compiles `src/bpf/xlns.bpf.c` with clang and generates its libbpf-rs skeleton into
//! `OUT_DIR/xlns.skel.rs` (libbpf-cargo `SkeletonBuilder`).

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "src/bpf/xlns.bpf.c";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets CARGO_CFG_TARGET_ARCH");
    // clang -target bpf does not search Debian's multiarch include directory, where
    // <asm/types.h> lives (../shared/afxdp-notes.md).
    let multiarch = format!("-I/usr/include/{arch}-linux-gnu");
    let local = format!("-I{}", manifest.join("src/bpf").display());

    SkeletonBuilder::new()
        .source(SRC)
        .clang_args([multiarch.as_str(), local.as_str(), "-Wall", "-Werror"])
        .build_and_generate(out.join("xlns.skel.rs"))
        .map_err(|err| format!("building {SRC}: {err:#}"))?;

    println!("cargo:rerun-if-changed=src/bpf");
    Ok(())
}

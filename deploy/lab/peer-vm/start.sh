#!/usr/bin/env bash
# Starts xlns inside the peer-vm lab namespace, for `run.sh --lns-cmd`:
#
#   sudo ../shared/peer-vm/run.sh --lns-cmd deploy/lab/peer-vm/start.sh --auth chap \
#        --user user1 --password pw1
#
# XLNSD names the binary (default: target/release/xlnsd, else target/debug/xlnsd, from the
# repository root); XLNSD_CONFIG the configuration (default: xlnsd.toml beside this script);
# RUST_LOG the log level (default info). Logs go to stderr (run.sh keeps them in lns.log).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
bin=${XLNSD:-}
if [ -z "$bin" ]; then
    for candidate in "$root/target/release/xlnsd" "$root/target/debug/xlnsd"; do
        if [ -x "$candidate" ]; then bin=$candidate; break; fi
    done
fi
[ -n "$bin" ] && [ -x "$bin" ] || { echo "start.sh: no xlnsd binary (cargo build --release)" >&2; exit 1; }
export RUST_LOG=${RUST_LOG:-info}
exec "$bin" --config "${XLNSD_CONFIG:-$here/xlnsd.toml}"

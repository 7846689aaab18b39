#!/usr/bin/env bash
# Starts xlns inside the peer-vm lab namespace, for `run.sh --lns-cmd`:
#
#   sudo ../shared/peer-vm/run.sh --lns-cmd deploy/lab/peer-vm/start.sh --auth chap \
#        --user user1 --password pw1
#
# XLNSD names the binary (default: target/release/xlnsd, else target/debug/xlnsd, from the
# repository root); XLNSD_CONFIG the configuration (default: xlnsd.toml beside this script,
# xlnsd.dataplane.toml with the dataplane topology); RUST_LOG the log level (default info).
# Logs go to stderr (run.sh keeps them in lns.log).
#
# With PEER_TOPOLOGY=dataplane (run.sh --topology dataplane) it also starts xlns-dataplane
# (XLNS_DATAPLANE names the binary, found like xlnsd) on the access and core veths, with the
# shared-memory segment XLNS_SHM (default /dev/shm/xlns.lab, which the dataplane config
# names), and `iperf3 -s` on the server in the core namespace when iperf3 is installed.
# XLNSD_RESTART=1 restarts xlnsd whenever it dies (the restart tests kill -9 it;
# XLNSD_RESTART_DELAY seconds in between, default 2); XLNS_PIDS names a directory where
# the pids of xlnsd (xlnsd.pid, rewritten at each start) and xlns-dataplane are written.
#
# run.sh stops the process group with SIGTERM: every process started here stops and the
# segment file is removed.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)

find_bin() { # name, override
    local name=$1 bin=${2:-}
    if [ -z "$bin" ]; then
        for candidate in "$root/target/release/$name" "$root/target/debug/$name"; do
            if [ -x "$candidate" ]; then bin=$candidate; break; fi
        done
    fi
    [ -n "$bin" ] && [ -x "$bin" ] || { echo "start.sh: no $name binary (cargo build --release)" >&2; exit 1; }
    echo "$bin"
}

xlnsd=$(find_bin xlnsd "${XLNSD:-}")
export RUST_LOG=${RUST_LOG:-info}

if [ "${PEER_TOPOLOGY:-bridge}" != dataplane ]; then
    exec "$xlnsd" --config "${XLNSD_CONFIG:-$here/xlnsd.toml}"
fi

dataplane=$(find_bin xlns-dataplane "${XLNS_DATAPLANE:-}")
shm=${XLNS_SHM:-/dev/shm/xlns.lab}
config=${XLNSD_CONFIG:-$here/xlnsd.dataplane.toml}
pids=${XLNS_PIDS:-}
acc=${PEER_ACC_IF:-lnsacc}
core=${PEER_CORE_IF:-lnscore}
srv=${PEER_SRV_CIDR:-10.255.1.2/24}
srv=${srv%/*}
core_ns=${PEER_CORE_NETNS:-lns-core}
# The LNS's own PPP-side address ([ppp] gateway): the worker answers the clients' pings to it.
gateway=$(sed -n 's/^gateway *= *"\([0-9.]*\)".*/\1/p' "$config" | head -n1)
[ -n "$gateway" ] || { echo "start.sh: no [ppp] gateway in $config" >&2; exit 1; }

# Only the access interface may answer ARP for the access address. With the default
# arp_ignore=0 the kernel answers on every interface that hears the request, and the lab's
# bridge labbr0 (no address, but in this namespace) hears the guest's broadcast request for
# 10.255.0.1 too: the guest gets two replies, labbr0's MAC and lnsacc's, and keeps
# whichever came first. With labbr0's MAC its frames are delivered to this namespace
# through labbr0, never crossing lnsacc: xlnsd still gets the control messages (the
# socket takes 10.255.0.1 on any interface), but the data messages never meet the XDP
# program, and xlnsd drops them (its "reached the control plane" warning) until the
# kernel's next ARP probe from lnsacc corrects the guest's entry, seconds later.
# arp_ignore=1: reply only when the target address is configured on the receiving
# interface. A production LNS whose access address shares a LAN with other interfaces
# needs the same.
sysctl -q -w net.ipv4.conf.all.arp_ignore=1

children=()
stopping=0
cleanup() {
    stopping=1
    # The segment first: run.sh sends SIGKILL to the group shortly after SIGTERM.
    rm -f "$shm"
    for pid in "${children[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -f "$shm"
}
trap cleanup EXIT
trap 'exit 0' TERM INT

rm -f "$shm"
[ -n "$pids" ] && mkdir -p "$pids"

if command -v iperf3 >/dev/null; then
    ip netns exec "$core_ns" iperf3 -s -B "$srv" >/dev/null 2>&1 &
    children+=($!)
fi

# The data plane waits for the segment xlnsd creates; srv0 is on link: it is the next hop.
"$dataplane" --access "$acc" --core "$core" --shm "$shm" --workers 1 --cores 1 \
    --core-gateway "$srv" --gateway-v4 "$gateway" --stats "${XLNS_DATAPLANE_STATS:-5}" >&2 &
dp=$!
children+=($dp)
[ -n "$pids" ] && echo "$dp" >"$pids/xlns-dataplane.pid"

while :; do
    "$xlnsd" --config "$config" &
    lns=$!
    children+=($lns)
    [ -n "$pids" ] && echo "$lns" >"$pids/xlnsd.pid"
    rc=0
    wait "$lns" || rc=$?
    [ "$stopping" = 1 ] && break
    if [ "${XLNSD_RESTART:-0}" != 1 ]; then
        echo "start.sh: xlnsd exited ($rc)" >&2
        exit "$rc"
    fi
    echo "start.sh: xlnsd exited ($rc); restarting in ${XLNSD_RESTART_DELAY:-2} s" >&2
    sleep "${XLNSD_RESTART_DELAY:-2}"
done

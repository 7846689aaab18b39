#!/bin/sh
# L2TP-only setup benchmark over loopback in a fresh network namespace: xlnsd pinned to
# CPU 0, xlns-bench (the LAC driver) pinned to CPU 1. Needs root and a release build:
#   cargo build --release -p xlns-controlplane --bin xlnsd -p xlns-bench
# Usage: bench/scripts/l2tp-setup-netns.sh TUNNELS SESSIONS_PER_TUNNEL [xlns-bench args...]
# Environment: XLNSD_LOG (default "warn": per-session info lines cost xlnsd time),
#              TARGET (default target/release).
set -eu
tunnels=$1 sessions=$2; shift 2
target=${TARGET:-target/release}
ns=xlns-bench-$$
dir=$(mktemp -d)
cat > "$dir/xlnsd.toml" <<TOML
[l2tp]
listen = "127.0.0.1:1701"
accept_unknown_lacs = true
max_tunnels = 65535
max_sessions = 1000000
[admission]
max_tunnel_setups = 1000000
max_session_setups = 1000000
sccrq_per_second = 1000000
sccrq_burst = 1000000
icrq_per_second = 1000000
icrq_burst = 1000000
TOML
ip netns add "$ns"
cleanup() {
    # UDP drops in the namespace (socket buffers full): they show as retransmissions.
    ip netns exec "$ns" nstat -az UdpRcvbufErrors UdpSndbufErrors 2>/dev/null | grep Udp >&2 || true
    kill "$xlnsd" 2>/dev/null || true; wait "$xlnsd" 2>/dev/null || true; ip netns del "$ns"; rm -rf "$dir"; }
ip -n "$ns" link set lo up
NO_COLOR=1 RUST_LOG=${XLNSD_LOG:-warn} ip netns exec "$ns" taskset -c 0 "$target/xlnsd" --config "$dir/xlnsd.toml" 2>"$dir/xlnsd.log" &
xlnsd=$!
trap cleanup EXIT
sleep 0.3
ip netns exec "$ns" taskset -c 1 "$target/xlns-bench" l2tp-setup --lns 127.0.0.1:1701 \
    --tunnels "$tunnels" --sessions-per-tunnel "$sessions" "$@"

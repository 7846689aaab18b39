#!/usr/bin/env bash
# Session scale and setup rate of xlnsd (issue #6: "Setup" and "Scale"), as root:
#
#   bench/scripts/scale.sh setup TUNNELS SESSIONS_PER_TUNNEL [xlns-bench setup args...]
#   bench/scripts/scale.sh lab   TUNNELS SESSIONS_PER_TUNNEL [xlns-bench lab args...]
#
# setup: one network namespace, loopback; xlnsd pinned to CPU 0 (taskset), the LAC
#   emulator (`xlns-bench setup --ppp chap`, local authentication) pinned to CPU 1;
#   every session is L2TP + LCP + CHAP + IPCP; the sessions are held HOLD seconds, then
#   the tunnels are closed (StopCCN).
# lab: the lab topology (namespaces lac / lns / srv, veths), xlnsd and xlns-dataplane
#   in lns (both on CPU 0), `xlns-bench lab` in lac on CPU 1: the sessions come up, then
#   traffic both ways for every established session (PPS per direction, DURATION s).
#   The tunnels come from SOURCES addresses 10.1.0.1.. (port 1701 each: the generator's
#   XDP program takes downstream L2TP for port 1701).
#
# Both write into OUT (default /tmp/xlns-scale-PID, kept): result.json (the emulator's
# JSON), rss.tsv (once a second: VmRSS in KiB of xlnsd, xlns-dataplane and the
# emulator, xlnsd's RssAnon and RssShmem, the load average), summary.txt (RSS before /
# at the peak / per session, the shm segment's size, the load average). VmRSS counts
# the pages of the shared segment a process touched (RssShmem): per-session figures
# take xlnsd's RssAnon, its own heap.
#
# Environment: TARGET (default target/release), OUT, HOLD (default 3 s), SOURCES
# (default 16, lab only), PPS (default 100000), DURATION (default 5), XLNSD_LOG (warn),
# ECHO (LCP echo interval, default 0s: off, so that the emulator measures setup, not
# keepalives).
# Build first: cargo build --release -p xlns-controlplane --bin xlnsd \
#                -p xlns-dataplane --bin xlns-dataplane -p xlns-bench --bin xlns-bench
set -euo pipefail

mode=$1 tunnels=$2 per_tunnel=$3; shift 3
case $mode in setup|lab) ;; *) echo "scale.sh: mode setup or lab" >&2; exit 2 ;; esac
[ "$(id -u)" = 0 ] || { echo "scale.sh: run as root" >&2; exit 2; }
[ "$per_tunnel" -le 65535 ] || { echo "scale.sh: at most 65535 sessions per tunnel" >&2; exit 2; }
target=${TARGET:-target/release}
hold=${HOLD:-3} sources=${SOURCES:-16} pps=${PPS:-100000} duration=${DURATION:-5}
total=$(( tunnels * per_tunnel ))
out=${OUT:-/tmp/xlns-scale-$$}
mkdir -p "$out"
tag=$$
lac=xscale-lac-$tag lns=xscale-lns-$tag srv=xscale-srv-$tag
shm=/dev/shm/xlns-scale-$tag
pids=()

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    for ns in "$lac" "$lns" "$srv"; do ip netns del "$ns" 2>/dev/null || true; done
    rm -f "$shm" "$out/users"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# user1..userN / pw1..pwN; addresses from a /12 (1,048,574, the gateway excluded by xlnsd).
awk -v n="$total" 'BEGIN { for (i = 1; i <= n; i++) printf "user%d pw%d\n", i, i }' >"$out/users"
if [ "$mode" = setup ]; then listen=127.0.0.1:1701; else listen=10.1.0.2:1701; fi
cat >"$out/xlnsd.toml" <<TOML
[l2tp]
listen = "$listen"
host_name = "xlns-scale"
accept_unknown_lacs = true
max_tunnels = 65535
max_sessions = $(( total + 1024 ))
[admission]
max_tunnel_setups = 65535
max_session_setups = $(( total + 1024 ))
sccrq_per_second = 1000000
sccrq_burst = 1000000
icrq_per_second = 1000000
icrq_burst = 1000000
[ppp]
auth = ["chap-md5"]
chap_name = "xlns-scale"
lcp_echo_interval = "${ECHO:-0s}"
gateway = "100.64.0.1"
dns = ["10.2.0.53"]
default_pool = "scale"
[[pool]]
name = "scale"
cidr = "100.64.0.0/12"
[users]
file = "$out/users"
TOML
if [ "$mode" = lab ]; then
    cat >>"$out/xlnsd.toml" <<TOML
[dataplane]
shm = "$shm"
max_sessions = $(( total + 1024 ))
max_workers = 1
access_interface = "acc0"
TOML
fi

for ns in "$lns" $([ "$mode" = lab ] && echo "$lac $srv"); do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
done
if [ "$mode" = lab ]; then
    veth() { # ns_a if_a addr_a ns_b if_b addr_b mtu
        ip -n "$1" link add "$2" type veth peer name "$5" netns "$4"
        for end in "$1 $2 $3" "$4 $5 $6"; do
            read -r ns ifname addr <<<"$end"
            ip netns exec "$ns" ethtool -L "$ifname" rx 1 tx 1 >/dev/null 2>&1 || true
            ip -n "$ns" link set "$ifname" mtu "$7"
            ip -n "$ns" addr add "$addr" dev "$ifname"
            ip -n "$ns" link set "$ifname" up
        done
    }
    veth "$lac" lac0 10.1.0.1/24 "$lns" acc0 10.1.0.2/24 1600
    veth "$lns" core0 10.2.0.1/24 "$srv" srv0 10.2.0.2/24 1500
    ip netns exec "$lac" ethtool -K lac0 tx off >/dev/null
    ip netns exec "$srv" ethtool -K srv0 tx off >/dev/null
    binds=()
    for k in $(seq 1 "$sources"); do
        a=10.1.0.$(( k == 1 ? 1 : k + 9 ))
        [ "$k" = 1 ] || ip -n "$lac" addr add "$a/24" dev lac0
        binds+=(--bind "$a")
    done
    mac() { ip -n "$1" -o link show dev "$2" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p'; }
    acc_mac=$(mac "$lns" acc0) core_mac=$(mac "$lns" core0) srv_mac=$(mac "$srv" srv0)
fi

NO_COLOR=1 RUST_LOG=${XLNSD_LOG:-warn} ip netns exec "$lns" taskset -c 0 \
    "$target/xlnsd" --config "$out/xlnsd.toml" >"$out/xlnsd.log" 2>&1 &
xlnsd=$!
pids+=("$xlnsd")
for _ in $(seq 300); do
    ip netns exec "$lns" ss -Hlun 'sport = :1701' | grep -q . && break
    kill -0 "$xlnsd" 2>/dev/null || { cat "$out/xlnsd.log" >&2; exit 1; }
    sleep 0.1
done
dataplane=""
if [ "$mode" = lab ]; then
    ip netns exec "$lns" taskset -c 0 "$target/xlns-dataplane" --access acc0 --core core0 \
        --shm "$shm" --workers 1 --cores 0 --core-next-hop-mac "$srv_mac" \
        --gateway-v4 100.64.0.1 --bind copy --stats 1 >"$out/dataplane.log" 2>&1 &
    dataplane=$!
    pids+=("$dataplane")
    for _ in $(seq 300); do
        grep -q ready "$out/dataplane.log" && break
        kill -0 "$dataplane" 2>/dev/null || { cat "$out/dataplane.log" >&2; exit 1; }
        sleep 0.1
    done
fi

rss() { awk -v k="${2:-VmRSS}:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
rss_before=$(rss "$xlnsd")
anon_before=$(rss "$xlnsd" RssAnon)
rss_dp_before=$([ -n "$dataplane" ] && rss "$dataplane" || echo 0)

if [ "$mode" = setup ]; then
    ip netns exec "$lns" taskset -c 1 "$target/xlns-bench" setup --lns "$listen" \
        --tunnels "$tunnels" --sessions-per-tunnel "$per_tunnel" --ppp chap \
        --outstanding 256 --setup-timeout 3600 --teardown-timeout 600 --hold "$hold" \
        --teardown stopccn --sessions-out "$out/sessions.json" --json "$@" \
        >"$out/result.json" 2>"$out/bench.err" &
else
    ip netns exec "$lac" taskset -c 1 "$target/xlns-bench" lab --lns "$listen" "${binds[@]}" \
        --bind-port 1701 --sockets "$sources" \
        --tunnels "$tunnels" --sessions-per-tunnel "$per_tunnel" --ppp chap \
        --outstanding 256 --setup-timeout 3600 --teardown-timeout ${TEARDOWN_TIMEOUT:-600} \
        --lac-if lac0 --core-if srv0 --core-netns "$srv" --server 10.2.0.2 \
        --lns-access-mac "$acc_mac" --lns-core-mac "$core_mac" --duration "$duration" \
        --pps "$pps" --cpu 1 --shm "$shm" --json-out "$out/result.json" "$@" \
        >"$out/bench.out" 2>"$out/bench.err" &
fi
bench=$!
pids=("$bench" "${pids[@]}")

# Once a second: elapsed, VmRSS (KiB) of xlnsd / xlns-dataplane / the emulator, load.
# The emulator runs under `ip netns exec` (exec, same pid) and `taskset` (exec too).
printf 't\txlnsd_kib\tdataplane_kib\tbench_kib\tload1\txlnsd_anon_kib\txlnsd_shmem_kib\n' >"$out/rss.tsv"
start=$(date +%s)
while kill -0 "$bench" 2>/dev/null; do
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' $(( $(date +%s) - start )) "$(rss "$xlnsd")" \
        "$([ -n "$dataplane" ] && rss "$dataplane" || echo 0)" "$(rss "$bench")" \
        "$(cut -d' ' -f1 /proc/loadavg)" "$(rss "$xlnsd" RssAnon)" \
        "$(rss "$xlnsd" RssShmem)" >>"$out/rss.tsv"
    sleep 1
done
rc=0
wait "$bench" || rc=$?

peak() { awk -v c="$1" 'NR > 1 && $c > m { m = $c } END { print m + 0 }' "$out/rss.tsv"; }
{
    echo "mode $mode: $tunnels tunnels x $per_tunnel sessions = $total, emulator exit $rc"
    echo "xlnsd VmRSS before $rss_before KiB, peak $(peak 2) KiB, VmHWM $(awk '/^VmHWM/ { print $2 }' /proc/$xlnsd/status) KiB"
    echo "xlnsd RssAnon before $anon_before KiB, peak $(peak 6) KiB; RssShmem peak $(peak 7) KiB"
    echo "xlnsd KiB per session, RssAnon (peak - before) / total: $(awk -v a="$(peak 6)" -v b="$anon_before" -v n="$total" 'BEGIN { printf "%.2f", (a - b) / n }')"
    if [ -n "$dataplane" ]; then
        echo "xlns-dataplane VmRSS before $rss_dp_before KiB, peak $(peak 3) KiB; shm segment $(stat -c %s "$shm") octets apparent, $(du -k "$shm" | cut -f1) KiB resident"
    fi
    echo "emulator VmRSS peak $(peak 4) KiB"
    echo "load average at the end: $(cat /proc/loadavg)"
} | tee "$out/summary.txt"
echo "scale.sh: results in $out" >&2
exit "$rc"

#!/usr/bin/env bash
# The xlns lab, one command (as root, on a fresh Debian 12 machine or any Linux with
# network namespaces, XDP and AF_XDP):
#
#   sudo ./lab.sh [--sessions 400] [--tunnels 4] [--duration 10] [--rate 10000] [--keep]
#
#  ns xlab-lac-PID                  ns xlab-lns-PID                         ns xlab-srv-PID
#  lac0 10.1.0.1 ──veth── acc0 10.1.0.2   xlnsd + xlns-dataplane   core0 10.2.0.1 ──veth── srv0 10.2.0.2
#  LAC emulator (L2TP + PPP, CHAP)         mgmt0 10.3.0.2 ──veth── host xlabm-PID 10.3.0.1
#  traffic generator/sink (AF_XDP) on lac0 and srv0
#
# It installs the build packages it lacks (apt) and Rust (rustup) when there is no cargo,
# builds xlnsd, xlns-dataplane, xlnsctl and xlns-bench (release), creates the namespaces
# and veths, writes xlnsd's configuration from deploy/lab/xlnsd.lab.toml and a users file
# (user1..userN / pw1..pwN), starts xlnsd and xlns-dataplane, then runs
# `xlns-bench lab`: the LAC emulator brings the sessions up (L2TP, LCP, authentication,
# IPCP) over several tunnels, the generator sends upstream L2TP/PPP/IPv4 and downstream
# IPv4 for every session at once with a live progress line, and a summary follows
# (sessions up, setup rate and latency per phase, packets per second each way, loss,
# latency percentiles, data-plane drops). With --keep everything stays up (Prometheus
# /metrics at http://10.3.0.2:9101/metrics from this host, xlnsctl on its socket) until
# Ctrl-C. On exit, error or Ctrl-C it removes the namespaces (and with them the veths),
# the processes, the shared-memory segment and its temporary directory.
#
# Options:
#   --sessions N      sessions in all (rounded up to a multiple of --tunnels; default 400)
#   --tunnels N       tunnels (default 4)
#   --duration S      seconds of traffic (default 10)
#   --rate PPS|max    packets per second per direction (default 10000; max: as fast as
#                     the rig goes)
#   --size N|imix     IP packet size in octets (default 64)
#   --setup-rate R    session opens per second at most (default: unlimited)
#   --auth M          chap (default), pap or mschapv2
#   --proxy           NAS-initiated calls: proxy LCP and proxy authentication AVPs
#   --churn R         sessions closed and reopened per second while traffic runs (a
#                     reopened session has new ids and address: its traffic counts as lost)
#   --keep            keep everything up after the summary, until Ctrl-C
#   --bin-dir DIR     use the binaries in DIR, build nothing (e.g. target/debug)
#   --no-install      never run apt-get or rustup
#   --json FILE       also write the full result as JSON
#   --radius          RADIUS accounting to a FreeRADIUS started in the LNS namespace
#                     (deploy/lab/radiusd.lab.conf, detail file); after the teardown
#                     every session's Stop record must carry exactly the packets and
#                     octets the generator sent up and received down for it (the lab
#                     fails otherwise; xlns-bench acct-check)
# Environment: RUST_LOG for xlnsd (default warn).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

sessions=400 tunnels=4 duration=10 rate=10000 size=64 setup_rate="" auth=chap proxy=0
churn="" keep=0 bin_dir="" install=1 json_out="" radius=0
die() { echo "lab.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
        --sessions) sessions=$2; shift 2 ;;
        --tunnels) tunnels=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --rate) rate=$2; shift 2 ;;
        --size) size=$2; shift 2 ;;
        --setup-rate) setup_rate=$2; shift 2 ;;
        --auth) auth=$2; shift 2 ;;
        --proxy) proxy=1; shift ;;
        --churn) churn=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        --bin-dir) bin_dir=$(cd "$2" && pwd); shift 2 ;;
        --no-install) install=0; shift ;;
        --json) json_out=$2; shift 2 ;;
        --radius) radius=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (--help lists them)" ;;
    esac
done
[[ $sessions =~ ^[0-9]+$ && $sessions -ge 1 ]] || die "--sessions: a positive integer"
[[ $tunnels =~ ^[0-9]+$ && $tunnels -ge 1 ]] || die "--tunnels: a positive integer"
case $auth in chap|pap|mschapv2) ;; *) die "--auth: chap, pap or mschapv2" ;; esac
# A reopened session's traffic is not the generator's: nothing to check its Stop against.
[ "$radius" = 1 ] && [ -n "$churn" ] && die "--radius and --churn do not go together"
[ "$(id -u)" = 0 ] || die "run as root (network namespaces, XDP, AF_XDP): sudo $0 $*"
per_tunnel=$(( (sessions + tunnels - 1) / tunnels ))
total=$(( per_tunnel * tunnels ))
[ "$per_tunnel" -le 65535 ] || die "more than 65535 sessions per tunnel: add --tunnels"
[ "$total" -le 65000 ] || die "at most 65000 sessions (the lab pool is a /16)"

step() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }

# --- what the build and the run need -------------------------------------------------
if [ "$install" = 1 ]; then
    pkgs=(clang llvm m4 make gcc pkg-config libelf-dev zlib1g-dev libpcap-dev iproute2
          ethtool curl ca-certificates util-linux procps)
    [ "$radius" = 1 ] && pkgs+=(freeradius)
    missing=()
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        step "apt-get install ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
fi

build_user=""
if [ -z "$bin_dir" ]; then
    # sudo drops ~/.cargo/bin from PATH: look in the invoking user's home too, and build
    # as that user so that target/ stays theirs.
    cargo=$(command -v cargo || true)
    if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
        user_home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
        if [ -x "$user_home/.cargo/bin/cargo" ]; then
            cargo=$user_home/.cargo/bin/cargo
            build_user=$SUDO_USER
        fi
    fi
    [ -n "$cargo" ] || { [ -x "$HOME/.cargo/bin/cargo" ] && cargo=$HOME/.cargo/bin/cargo; } || true
    if [ -z "$cargo" ]; then
        [ "$install" = 1 ] || die "no cargo (install Rust, or drop --no-install)"
        step "installing Rust (rustup, minimal profile)"
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
        cargo=$HOME/.cargo/bin/cargo
    fi
    step "cargo build --release (xlnsd, xlnsctl, xlns-dataplane, xlns-bench)"
    build=(env "PATH=$(dirname "$cargo"):$PATH" "$cargo" build --release --locked
           --manifest-path "$root/Cargo.toml"
           -p xlns-controlplane --bin xlnsd --bin xlnsctl
           -p xlns-dataplane --bin xlns-dataplane -p xlns-bench --bin xlns-bench)
    if [ -n "$build_user" ]; then
        sudo -u "$build_user" -H "${build[@]}"
    else
        "${build[@]}"
    fi
    bin_dir=$root/target/release
fi
for b in xlnsd xlns-dataplane xlns-bench; do
    [ -x "$bin_dir/$b" ] || die "no $bin_dir/$b"
done

# --- the lab ----------------------------------------------------------------------------
tag=$$
lac=xlab-lac-$tag lns=xlab-lns-$tag srv=xlab-srv-$tag mgmt=xlabm-$tag
shm=/dev/shm/xlns-lab-$tag
dir=$(mktemp -d /tmp/xlns-lab.XXXXXX)
pids=()

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 50); do
        local alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    for ns in "$lac" "$lns" "$srv"; do ip netns del "$ns" 2>/dev/null || true; done
    ip link del "$mgmt" 2>/dev/null || true
    rm -f "$shm"
    rm -rf "$dir"
    echo "lab.sh: cleaned up (namespaces, processes, $shm, $dir)" >&2
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "namespaces $lac $lns $srv"
for ns in "$lac" "$lns" "$srv"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
done
veth() { # ns_a if_a addr_a ns_b if_b addr_b mtu
    local mtu=$7 ns ifname addr
    ip -n "$1" link add "$2" type veth peer name "$5" netns "$4"
    for end in "$1 $2 $3" "$4 $5 $6"; do
        read -r ns ifname addr <<<"$end"
        ip netns exec "$ns" ethtool -L "$ifname" rx 1 tx 1 >/dev/null 2>&1 || true
        ip -n "$ns" link set "$ifname" mtu "$mtu"
        ip -n "$ns" addr add "$addr" dev "$ifname"
        ip -n "$ns" link set "$ifname" up
    done
}
veth "$lac" lac0 10.1.0.1/24 "$lns" acc0 10.1.0.2/24 1600
veth "$lns" core0 10.2.0.1/24 "$srv" srv0 10.2.0.2/24 1500
# The generator hands the veths complete checksums (../shared/afxdp-notes.md).
ip netns exec "$lac" ethtool -K lac0 tx off >/dev/null
ip netns exec "$srv" ethtool -K srv0 tx off >/dev/null
# Management: /metrics reachable from the host.
ip link add "$mgmt" type veth peer name mgmt0 netns "$lns"
ip addr add 10.3.0.1/30 dev "$mgmt"
ip link set "$mgmt" up
ip -n "$lns" addr add 10.3.0.2/30 dev mgmt0
ip -n "$lns" link set mgmt0 up
mac() { ip -n "$1" -o link show dev "$2" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p'; }
acc_mac=$(mac "$lns" acc0) core_mac=$(mac "$lns" core0) srv_mac=$(mac "$srv" srv0)

for i in $(seq 1 "$total"); do echo "user$i pw$i"; done >"$dir/users"
echo_interval=5s
sed -e "s|@MAX_SESSIONS@|$(( total + 1024 ))|g" -e "s|@SHM@|$shm|g" -e "s|@DIR@|$dir|g" \
    -e "s|@ECHO@|$echo_interval|g" "$here/xlnsd.lab.toml" >"$dir/xlnsd.toml"

if [ "$radius" = 1 ]; then
    radius_bin=$(command -v freeradius || command -v radiusd || true)
    [ -n "$radius_bin" ] || die "--radius: no freeradius (apt-get install freeradius)"
    mkdir -p "$dir/radius"
    sed -e "s|@DIR@|$dir/radius|g" "$here/radiusd.lab.conf" >"$dir/radius/radiusd.conf"
    cat >>"$dir/xlnsd.toml" <<EOF2

# lab.sh --radius: accounting to the FreeRADIUS in this namespace; authentication stays
# local (the users file).
[radius]
auth = "local"
nas_identifier = "xlns-lab"
[[radius.acct_server]]
address = "127.0.0.1:1813"
secret = "xlns-lab-secret"
EOF2
    step "FreeRADIUS (accounting, detail file $dir/radius/detail) in $lns"
    setsid ip netns exec "$lns" "$radius_bin" -f -d "$dir/radius" >/dev/null 2>&1 &
    pids+=("$!")
    for _ in $(seq 100); do
        grep -q 'Ready to process requests' "$dir/radius/radiusd.log" 2>/dev/null && break
        sleep 0.1
    done
    grep -q 'Ready to process requests' "$dir/radius/radiusd.log" 2>/dev/null ||
        { cat "$dir/radius/radiusd.log" >&2 2>/dev/null; die "FreeRADIUS not ready in 10 s"; }
fi

step "xlnsd and xlns-dataplane in $lns"
# setsid: Ctrl-C reaches the emulator, which tears its sessions down through a running
# LNS; cleanup stops these two afterwards.
RUST_LOG=${RUST_LOG:-warn} NO_COLOR=1 setsid ip netns exec "$lns" \
    "$bin_dir/xlnsd" --config "$dir/xlnsd.toml" >"$dir/xlnsd.log" 2>&1 &
xlnsd=$!
pids+=("$xlnsd")
for _ in $(seq 100); do
    [ -e "$shm" ] && ip netns exec "$lns" ss -Hlun 'sport = :1701' | grep -q . && break
    kill -0 "$xlnsd" 2>/dev/null || { cat "$dir/xlnsd.log" >&2; die "xlnsd exited"; }
    sleep 0.1
done
ncpu=$(nproc)
dp_cpu=0 gen_cpu=$(( ncpu > 1 ? ncpu - 1 : 0 ))
setsid ip netns exec "$lns" "$bin_dir/xlns-dataplane" --access acc0 --core core0 \
    --shm "$shm" --workers 1 --cores "$dp_cpu" --core-next-hop-mac "$srv_mac" \
    --gateway-v4 100.64.0.1 --bind copy --stats 1 >"$dir/dataplane.log" 2>&1 &
dataplane=$!
pids+=("$dataplane")
for _ in $(seq 300); do
    grep -q ready "$dir/dataplane.log" && break
    kill -0 "$dataplane" 2>/dev/null || { cat "$dir/dataplane.log" >&2; die "xlns-dataplane exited"; }
    sleep 0.1
done
grep -q ready "$dir/dataplane.log" || die "xlns-dataplane not ready in 30 s"

cat >&2 <<EOF
   Prometheus: curl http://10.3.0.2:9101/metrics   (from this host while the lab runs)
   xlnsctl:    $bin_dir/xlnsctl --socket $dir/xlnsd.sock show sessions
   logs:       $dir/xlnsd.log, $dir/dataplane.log
   sessions:   $dir/sessions.json (the established sessions, the traffic generator's JSON)
EOF
step "$total sessions ($tunnels tunnels x $per_tunnel, $auth$([ $proxy = 1 ] && echo ', proxy')), then $duration s of traffic both ways"
args=(lab --lns 10.1.0.2:1701 --bind 10.1.0.1 --bind-port 1701
      --tunnels "$tunnels" --sessions-per-tunnel "$per_tunnel" --ppp "$auth"
      --lac-if lac0 --core-if srv0 --core-netns "$srv" --server 10.2.0.2
      --lns-access-mac "$acc_mac" --lns-core-mac "$core_mac"
      --duration "$duration" --size "$size" --cpu "$gen_cpu" --shm "$shm"
      --sessions-out "$dir/sessions.json" --json-out "$dir/result.json"
      --hint "xlnsctl     $bin_dir/xlnsctl --socket $dir/xlnsd.sock show sessions   (or --json show ...)")
[ "$radius" = 1 ] && args+=(--counts-out "$dir/counts.json"
    --hint "accounting  FreeRADIUS detail file $dir/radius/detail")
[ "$rate" = max ] || args+=(--pps "$rate")
[ -n "$setup_rate" ] && args+=(--rate "$setup_rate")
[ -n "$churn" ] && args+=(--churn "$churn")
[ "$proxy" = 1 ] && args+=(--proxy)
[ "$keep" = 1 ] && args+=(--keep)
# The emulator ends its hold (--keep) on SIGINT / SIGTERM and tears the sessions down
# through the running LNS: Ctrl-C reaches it directly (same process group), a SIGTERM to
# this script is forwarded.
ip netns exec "$lac" "$bin_dir/xlns-bench" "${args[@]}" &
bench=$!
pids=("$bench" "${pids[@]}")
trap 'kill -INT "$bench" 2>/dev/null || true' INT TERM
rc=0
wait "$bench" || rc=$?
while kill -0 "$bench" 2>/dev/null; do
    rc=0
    wait "$bench" || rc=$?
done
trap 'exit 130' INT TERM
# The data plane's own counters (its last stats line, at most a second old).
dp_stats=$(grep 'stats ' "$dir/dataplane.log" | tail -n 1 | sed 's/^xlns-dataplane: stats //')
[ -n "$dp_stats" ] && echo "  data plane  $dp_stats"
[ -n "$json_out" ] && [ -f "$dir/result.json" ] && cp "$dir/result.json" "$json_out"
if [ "$radius" = 1 ]; then
    # The teardown ended every session: xlnsd sends their Stops; wait for them (10 s).
    for _ in $(seq 100); do
        stops=$(grep -c 'Acct-Status-Type = Stop' "$dir/radius/detail" 2>/dev/null || true)
        [ "${stops:-0}" -ge "$total" ] && break
        sleep 0.1
    done
    if [ -f "$dir/counts.json" ]; then
        "$bin_dir/xlns-bench" acct-check --detail "$dir/radius/detail" \
            --counts "$dir/counts.json" || rc=1
    else
        echo "  accounting  no traffic counts (the traffic did not run)" >&2
        rc=1
    fi
fi
if ! kill -0 "$xlnsd" 2>/dev/null; then
    echo "lab.sh: xlnsd died; its log:" >&2
    tail -n 20 "$dir/xlnsd.log" >&2
    rc=1
fi
exit "$rc"

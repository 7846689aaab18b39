#!/usr/bin/env bash
# Send xlns-bench's traffic from a pktgen on real NICs, for the sessions the LAC emulator
# established (its sessions JSON, see bench/trex/xlns_l2tp.py for the format and frames).
#
#   xlns-pktgen.sh pcaps SESSIONS.json OUTDIR [SIZE] [MAC options...]
#       writes OUTDIR/up.pcap and OUTDIR/down.pcap: one frame per session and direction,
#       byte for byte what `xlns-bench traffic` sends (bench/tests/hw_profiles.rs checks it).
#   xlns-pktgen.sh dpdk SESSIONS.json OUTDIR [SIZE]
#       builds the pcaps and prints the Pktgen-DPDK command that replays them: port 0 toward
#       the LNS's access side (upstream, L2TP/PPP), port 1 toward its core side (downstream).
#   xlns-pktgen.sh kernel-down SESSIONS.json DEV DST_MAC [SIZE] [SECONDS]
#       the Linux kernel pktgen (modprobe pktgen) sends downstream UDP to every subscriber
#       address of the JSON (range min..max) out of DEV. The kernel pktgen cannot build the
#       L2TP/PPP upstream frames; use the pcaps with Pktgen-DPDK, tcpreplay or TRex for those.
#       Its payload carries pktgen's own signature instead of xlns-bench's stamp, so the
#       xlns-bench sink counts these packets but cannot time them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
profile="$here/../trex/xlns_l2tp.py"
py=python3
[[ -x /usr/bin/python3 ]] && py=/usr/bin/python3

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

pcaps() {
    local sessions=$1 out=$2 size=${3:-64}; shift $(( $# < 3 ? $# : 3 ))
    mkdir -p "$out"
    "$py" "$profile" --sessions "$sessions" --direction up --size "$size" --pcap "$out/up.pcap" "$@"
    "$py" "$profile" --sessions "$sessions" --direction down --size "$size" --pcap "$out/down.pcap" "$@"
    echo "wrote $out/up.pcap $out/down.pcap"
}

cmd=${1:-}; [[ $# -gt 0 ]] && shift
case "$cmd" in
pcaps)
    [[ $# -ge 2 ]] || usage
    pcaps "$@"
    ;;
dpdk)
    [[ $# -ge 2 ]] || usage
    pcaps "$@"
    echo "pktgen -l 0-4 -n 4 -- -P -m '[1:2].0,[3:4].1' -s 0:$2/up.pcap -s 1:$2/down.pcap"
    echo "then at the pktgen prompt: start all"
    ;;
kernel-down)
    [[ $# -ge 3 ]] || usage
    sessions=$1 dev=$2 dst_mac=$3 size=${4:-64} seconds=${5:-10}
    read -r lo hi < <("$py" - "$sessions" <<'PY'
import ipaddress, json, sys
a = sorted(ipaddress.IPv4Address(s["subscriber"]) for s in json.load(open(sys.argv[1]))["sessions"])
print(a[0], a[-1])
PY
)
    modprobe pktgen
    pg() { echo "$2" > "/proc/net/pktgen/$1"; }
    pg kpktgend_0 "rem_device_all"
    pg kpktgend_0 "add_device $dev"
    # pkt_size counts the Ethernet frame without FCS: 14 + the IP packet.
    pg "$dev" "pkt_size $((14 + size))"
    pg "$dev" "count 0"
    pg "$dev" "delay 0"
    pg "$dev" "dst_min $lo"
    pg "$dev" "dst_max $hi"
    pg "$dev" "flag IPDST_RND"
    pg "$dev" "udp_src_min 5000"
    pg "$dev" "udp_src_max 5000"
    pg "$dev" "udp_dst_min 4000"
    pg "$dev" "udp_dst_max 4000"
    pg "$dev" "dst_mac $dst_mac"
    timeout "$seconds" sh -c 'echo start > /proc/net/pktgen/pgctrl' || true
    grep -A3 '^Result' "/proc/net/pktgen/$dev"
    ;;
*) usage ;;
esac

#!/bin/sh
# peer-vm action for the dataplane topology (run.sh --action): runs in the guest once every
# session is up. Every session pings each of TARGETS (default: the PPP gateway, i.e. the
# LNS's own PPP address, answered by the xlns-dataplane worker, and the server behind the
# LNS, 10.255.1.2) COUNT times at the full MTU with DF set (1372 octets of payload: 1400
# octets of IPv4, pppd's MTU); any loss fails. With IPERF=1, session 1 then runs iperf3 to
# the server in both directions (start.sh runs `iperf3 -s` there), IPERF_SECONDS each.
# ACTION| lines carry the results; `dp-result ... ok` marks each passed check.
set -e
SERVER=${SERVER:-10.255.1.2}
COUNT=${COUNT:-20}
n=1
while [ "$n" -le "${PEER_SESSIONS:-1}" ]; do
    eval "iface=\$PEER_IFACE_$n gw=\$PEER_PEER_$n"
    for target in ${TARGETS:-$gw $SERVER}; do
        out=$(ping -n -q -c "$COUNT" -i 0.05 -W 2 -s 1372 -M do -I "$iface" "$target" || true)
        echo "$out" | tail -n 2
        if echo "$out" | grep -q " 0% packet loss"; then
            echo "dp-result session=$n ping=$target full_mtu ok"
        else
            echo "dp-result session=$n ping=$target full_mtu FAIL"
            exit 1
        fi
    done
    n=$((n + 1))
done
if [ "${IPERF:-}" = 1 ]; then
    iperf3 -c "$SERVER" -t "${IPERF_SECONDS:-3}" -f m --connect-timeout 3000
    echo "dp-result iperf3 upstream ok"
    # iperf3 -s serves one test at a time and may still be closing the first one: its
    # reset is not the data plane's doing, so wait and try once more.
    sleep 1
    iperf3 -c "$SERVER" -R -t "${IPERF_SECONDS:-3}" -f m --connect-timeout 3000 ||
        { sleep 2; iperf3 -c "$SERVER" -R -t "${IPERF_SECONDS:-3}" -f m --connect-timeout 3000; }
    echo "dp-result iperf3 downstream ok"
fi

"""xlns-bench traffic for hardware generators: a TRex STL profile and a frame builder.

The frames are the ones `xlns-bench traffic` sends on AF_XDP (bench/src/traffic/packet.rs),
built here with scapy so that TRex (or anything that reads a pcap: DPDK pktgen, tcpreplay,
a Spirent/IXIA import) sends the same bytes on real NICs:

    upstream   Ether | IPv4 LAC->LNS | UDP lac_port->lns_port (checksum 0)
               | L2TP data header 0x0002 tunnel session (RFC 2661 §3.1, no L/S/O)
               | PPP FF 03 00 21 (RFC 1662 §3.1, RFC 1332 §2) | IPv4 | UDP 4000->5000 | payload
    downstream Ether | IPv4 server->subscriber | UDP 5000->4000 | payload
    payload    zero filler | stamp: flow u32 | seq u64 | tx_ns u64 | "XLNS"  (24 octets, BE)

Sizes are the subscriber's IP packet length (the inner packet upstream, the whole IP packet
downstream), 52..1500 octets, or "imix" (7:4:1 of 64, 594, 1500 in the generator's order).
IPv4 headers: IHL 5, TOS 0, ID 0, DF, TTL 64, checksum filled in; UDP checksums 0 (RFC 768).
The stamp's flow is the session's index in the JSON (bit 31 set downstream), seq and tx_ns
are 0: hardware generators measure latency with their own streams.

The sessions come from the JSON that the LAC emulator writes (`xlns-bench setup ... --sessions-out`):

    {"sessions":[{"tunnel_id":1,"session_id":1,"peer_tunnel_id":1001,"peer_session_id":1,
      "lac_addr":"10.1.0.1","lac_port":1701,"lns_addr":"10.1.0.2","lns_port":1701,
      "subscriber":"100.64.0.1"}]}

TRex:   start -f bench/trex/xlns_l2tp.py -t sessions=/path/sessions.json,direction=up,size=64,
              lac_mac=..,lns_access_mac=..,server_mac=..,lns_core_mac=..,server=10.2.0.2
        (port 0 faces the LNS's access side, port 1 its core side; direction=both uses both)
pcap:   python3 bench/trex/xlns_l2tp.py --sessions s.json --direction up --size 64 --pcap up.pcap
"""

import argparse
import json
import struct
import sys

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

STAMP_LEN = 24
STAMP_MAGIC = 0x584C4E53
FLOW_DOWN = 1 << 31
MIN_IP_LEN = 20 + 8 + STAMP_LEN
MAX_IP_LEN = 1500
SUBSCRIBER_PORT = 4000
SERVER_PORT = 5000
IMIX_CYCLE = [64, 594, 64, 64, 594, 64, 1500, 64, 594, 64, 64, 594]

DEFAULT_MACS = {
    "lac_mac": "02:00:00:00:00:01",
    "lns_access_mac": "02:00:00:00:00:02",
    "server_mac": "02:00:00:00:00:03",
    "lns_core_mac": "02:00:00:00:00:04",
}
DEFAULT_SERVER = "10.2.0.2"


def load_sessions(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)["sessions"]


def sizes(spec):
    """The cycle of IP packet sizes for "64", "1400" or "imix"."""
    if str(spec).lower() == "imix":
        return list(IMIX_CYCLE)
    size = int(spec)
    if not MIN_IP_LEN <= size <= MAX_IP_LEN:
        raise ValueError(f"packet size {size}: between {MIN_IP_LEN} and {MAX_IP_LEN} octets")
    return [size]


def stamp(flow, seq=0, tx_ns=0):
    return struct.pack(">IQQI", flow, seq, tx_ns, STAMP_MAGIC)


def inner_ip(src, dst, sport, dport, ip_len, flow):
    """IPv4 + UDP + zero filler + stamp, `ip_len` octets in all."""
    filler = bytes(ip_len - 20 - 8 - STAMP_LEN)
    return IP(src=src, dst=dst, id=0, flags="DF", ttl=64, tos=0) / UDP(
        sport=sport, dport=dport, chksum=0
    ) / Raw(filler + stamp(flow))


def upstream(session, index, ip_len, macs=None, server=DEFAULT_SERVER):
    """The upstream frame for the session at `index` of the JSON, as the LAC sends it."""
    macs = macs or DEFAULT_MACS
    # RFC 2661 §3.1: T=0 L=0 S=0 O=0 P=0 Ver=2, the recipient's (the LNS's) ids; then PPP
    # address/control FF 03 and protocol 0x0021 (RFC 1662 §3.1, RFC 1332 §2).
    l2tp_ppp = struct.pack(">HHH", 0x0002, session["tunnel_id"], session["session_id"])
    l2tp_ppp += bytes([0xFF, 0x03, 0x00, 0x21])
    inner = inner_ip(session["subscriber"], server, SUBSCRIBER_PORT, SERVER_PORT, ip_len, index)
    return (
        Ether(dst=macs["lns_access_mac"], src=macs["lac_mac"], type=0x0800)
        / IP(src=session["lac_addr"], dst=session["lns_addr"], id=0, flags="DF", ttl=64, tos=0)
        / UDP(sport=session["lac_port"], dport=session["lns_port"], chksum=0)
        / Raw(l2tp_ppp + bytes(inner))
    )


def downstream(session, index, ip_len, macs=None, server=DEFAULT_SERVER):
    """The downstream frame for the session at `index`, as the server behind the LNS sends it."""
    macs = macs or DEFAULT_MACS
    return Ether(dst=macs["lns_core_mac"], src=macs["server_mac"], type=0x0800) / inner_ip(
        server, session["subscriber"], SERVER_PORT, SUBSCRIBER_PORT, ip_len, FLOW_DOWN | index
    )


def frames(sessions, direction, size, macs=None, server=DEFAULT_SERVER):
    """Every frame of one round, in the generator's order: session by session, the n-th
    packet of the round taking the n-th size of the cycle."""
    build = upstream if direction == "up" else downstream
    cycle = sizes(size)
    return [
        build(s, i, cycle[i % len(cycle)], macs, server) for i, s in enumerate(sessions)
    ]


class XlnsL2tp:
    """TRex STL profile: one continuous stream per session and direction, the rate split
    evenly (TRex's -m multiplier scales it). TRex 2.89 and later pass the tunables as an
    argument list (`-t --sessions s.json --size 64`), older ones as key=value pairs
    (`-t sessions=s.json,size=64`); both are read."""

    def get_streams(self, tunables=None, port_id=0, **kwargs):
        from trex_stl_lib.api import STLPktBuilder, STLStream, STLTXCont

        if isinstance(tunables, list):
            a = parser(profile=True).parse_args(tunables)
            t = vars(a)
        else:
            t = dict(DEFAULT_MACS)
            t.update({"direction": "up", "size": "64", "server": DEFAULT_SERVER, "pps": "1e6"})
            t.update(tunables or {})
            t.update({k: v for k, v in kwargs.items() if isinstance(v, str)})
        direction = t["direction"]
        if direction == "both":
            # Port 0 faces the LNS's access side, port 1 its core side.
            direction = "up" if port_id % 2 == 0 else "down"
        pkts = frames(load_sessions(t["sessions"]), direction, t["size"], t, t["server"])
        pps = float(t["pps"]) / max(len(pkts), 1)
        return [STLStream(packet=STLPktBuilder(pkt=p), mode=STLTXCont(pps=pps)) for p in pkts]


def parser(profile=False):
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--sessions", required=True, help="sessions JSON from the LAC emulator")
    ap.add_argument("--direction", choices=["up", "down", "both"] if profile else ["up", "down"],
                    default="up")
    ap.add_argument("--size", default="64", help="IP packet size or imix")
    ap.add_argument("--server", default=DEFAULT_SERVER)
    ap.add_argument("--pps", default="1e6", help="packets per second over all streams")
    for k, v in DEFAULT_MACS.items():
        ap.add_argument("--" + k.replace("_", "-"), dest=k, default=v)
    if not profile:
        out = ap.add_mutually_exclusive_group(required=True)
        out.add_argument("--pcap", help="write the frames to this pcap")
        out.add_argument("--hex", action="store_true", help="print one frame a line in hex")
    return ap


def register():
    return XlnsL2tp()


def main(argv):
    a = parser().parse_args(argv)
    macs = {k: getattr(a, k) for k in DEFAULT_MACS}
    pkts = frames(load_sessions(a.sessions), a.direction, a.size, macs, a.server)
    if a.pcap:
        from scapy.utils import wrpcap

        wrpcap(a.pcap, pkts)
    else:
        for p in pkts:
            print(bytes(p).hex())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* Protocol constants of the XDP program (not shared with Rust). */
#ifndef XLNS_CONSTS_H
#define XLNS_CONSTS_H

/* VLAN tags walked: two (QinQ). */
#define XLNS_VLAN_MAX_DEPTH 2

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif
/* Pre-standard QinQ outer tag. */
#define ETH_P_QINQ_9100 0x9100

/* IPv4 fragment bits (RFC 791 §3.1), as in the kernel's net/ip.h. */
#define IP_MF 0x2000
#define IP_OFFSET 0x1FFF

/* Neighbour discovery ICMPv6 types (RFC 4861 §4): router solicitation .. redirect. */
#define XLNS_ND_FIRST 133
#define XLNS_ND_LAST 137

/* L2TP header flags (RFC 2661 §3.1). */
#define XLNS_L2TP_FLAG_T 0x8000
#define XLNS_L2TP_FLAG_L 0x4000
#define XLNS_L2TP_FLAG_S 0x0800
#define XLNS_L2TP_FLAG_O 0x0200
#define XLNS_L2TP_VERSION_MASK 0x000f
#define XLNS_L2TP_VERSION 2
/* Longest offset pad looked at (longer ones cannot fit a linear XDP buffer). */
#define XLNS_L2TP_MAX_OFFSET_PAD 0x3fff

/* PPP (RFC 1661 §2, RFC 1662 §3.1). */
#define XLNS_PPP_ADDRESS 0xff
#define XLNS_PPP_CONTROL 0x03
#define XLNS_PPP_IPV4 0x0021
#define XLNS_PPP_IPV6 0x0057
/* RFC 1661 §2: 0x8000-0xffff are control protocols (NCPs, LCP, authentication, ...). */
#define XLNS_PPP_CONTROL_PROTOCOLS 0x8000

#endif /* XLNS_CONSTS_H */

/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Constants shared by the XDP program and its Rust loader (ebpf/src/lib.rs).
 *
 * Every value here has a twin in lib.rs; the unit test `common_header_matches_rust`
 * reads this file and fails when the two disagree. Keep one `#define NAME VALUE` per
 * line: that test parses exactly that form.
 */
#ifndef XLNS_COMMON_H
#define XLNS_COMMON_H

/* Role bits of the `xlns_role` rodata (set by the loader before load). */
#define XLNS_ROLE_ACCESS 1
#define XLNS_ROLE_CORE 2

/* Default UDP port of L2TP (RFC 2661 §8.1). */
#define XLNS_L2TP_PORT_DEFAULT 1701

/* Default map sizes (the loader may change them before load). */
#define XLNS_MAX_QUEUES 256
#define XLNS_MAX_PREFIXES_V4 1048576
#define XLNS_MAX_PREFIXES_V6 1048576

/*
 * Index of each counter in the per-CPU `counters` array: one per verdict and reason.
 * Every packet the program sees increments exactly one of them.
 */
/* Access: L2TP data carrying PPP IPv4/IPv6, redirected to the queue's XSK. */
#define XLNS_CNT_REDIRECT_DATA 0
/* Core: destination in a subscriber prefix, redirected to the queue's XSK. */
#define XLNS_CNT_REDIRECT_CORE 1
/* Access: would be redirected, but no XSK is registered for the queue: passed. */
#define XLNS_CNT_PASS_NO_XSK_DATA 2
/* Core: would be redirected, but no XSK is registered for the queue: passed. */
#define XLNS_CNT_PASS_NO_XSK_CORE 3
/* Access: L2TP control message (T bit set, RFC 2661 §3.1). */
#define XLNS_CNT_PASS_CONTROL 4
/* Access: L2TP data carrying a PPP control protocol (0x8000 and above: NCPs, LCP, auth). */
#define XLNS_CNT_PASS_PPP_CONTROL 5
/* Access: L2TP data carrying another PPP network protocol (VJ, MP, compressed, ...). */
#define XLNS_CNT_PASS_PPP_OTHER 6
/* Access: UDP to the L2TP port, but the version is not 2 (L2TPv3 and others). */
#define XLNS_CNT_PASS_L2TP_VERSION 7
/* Access: a first IPv4 fragment to the L2TP port: the kernel reassembles it. */
#define XLNS_CNT_PASS_FRAGMENT 8
/* Neither IPv4 nor IPv6 (ARP, LLDP, ...). */
#define XLNS_CNT_PASS_NON_IP 9
/* IPv6 neighbour discovery (ICMPv6 133-137, RFC 4861 §4). */
#define XLNS_CNT_PASS_ND 10
/* IP traffic that no enabled rule selects (other ports, not in a subscriber prefix). */
#define XLNS_CNT_PASS_OTHER 11
/* Truncated or inconsistent headers: handed to the kernel, which drops or handles them. */
#define XLNS_CNT_PASS_MALFORMED 12
/* Number of counters. */
#define XLNS_CNT_MAX 13

#endif /* XLNS_COMMON_H */

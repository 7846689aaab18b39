/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Maps of the XDP program. Their names are the loader's API (ebpf/src/lib.rs).
 *
 * xsks         XSKMAP, key = RX queue index, value = AF_XDP socket fd (written by the
 *              data plane, one socket per queue).
 * prefixes_v4  LPM trie of subscriber IPv4 prefixes (written by xlnsd, or by the data
 *              plane on its behalf).
 * hosts_v4     hash of subscriber IPv4 addresses: the /32 prefixes, which are most of
 *              them (one per session). A hashed lookup costs the same at any size; a
 *              walk down an LPM trie of 100,000 /32s misses the cache at every level,
 *              and ran on the core interface's receive path for every packet.
 * prefixes_v6  LPM trie of subscriber IPv6 prefixes.
 * counters     per-CPU array of u64, one slot per XLNS_CNT_* reason.
 */
#ifndef XLNS_MAPS_H
#define XLNS_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "xlns_common.h"

/* Key of the LPM tries: prefix length in bits, then the address in network order. */
struct prefix_v4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct prefix_v6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, XLNS_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, XLNS_MAX_PREFIXES_V4);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct prefix_v4_key);
	__type(value, __u32);
} prefixes_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XLNS_MAX_PREFIXES_V4);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32); /* the address in network order */
	__type(value, __u32);
} hosts_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, XLNS_MAX_PREFIXES_V6);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct prefix_v6_key);
	__type(value, __u32);
} prefixes_v6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XLNS_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

#endif /* XLNS_MAPS_H */

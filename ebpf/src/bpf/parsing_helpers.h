/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Cursor-style header parsers, after xdp-tools' headers/xdp/parsing_helpers.h.
 *
 * Each helper takes the cursor, bounds-checks its header once against data_end, advances
 * the cursor past it and returns what the caller needs next. A negative return (or a
 * NULL header pointer) means the header does not fit: the caller counts the frame as
 * malformed and passes it.
 */
#ifndef XLNS_PARSING_HELPERS_H
#define XLNS_PARSING_HELPERS_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <linux/icmpv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "xlns_consts.h"

#define PARSE_TRUNCATED (-1)
#define PARSE_INVALID (-2)

struct hdr_cursor {
	void *pos;
};

/*
 * The verifier learns a packet pointer's range only from a comparison with data_end,
 * never with another packet pointer. So every read is checked against data_end (for
 * the verifier), and against the logical end of the enclosing header's payload (for
 * the protocol: IP Total Length, UDP Length, L2TP Length) where that is shorter.
 */
#define FITS(ptr, len, end, data_end)                                                   \
	((void *)(ptr) + (len) <= (data_end) && (void *)(ptr) + (len) <= (end))

struct vlan_hdr {
	__be16 h_vlan_TCI;
	__be16 h_vlan_encapsulated_proto;
};

static __always_inline int proto_is_vlan(__u16 h_proto)
{
	return h_proto == bpf_htons(ETH_P_8021Q) || h_proto == bpf_htons(ETH_P_8021AD) ||
	       h_proto == bpf_htons(ETH_P_QINQ_9100);
}

/*
 * Ethernet header plus up to XLNS_VLAN_MAX_DEPTH VLAN tags (802.1Q 0x8100, 802.1ad
 * 0x88A8, pre-standard QinQ 0x9100). Returns the inner EtherType (network byte order)
 * or PARSE_TRUNCATED; a frame with more tags than that returns the last TPID, which the
 * caller treats as "not IP".
 */
static __always_inline int parse_ethhdr_vlan(struct hdr_cursor *nh, void *data_end)
{
	struct ethhdr *eth = nh->pos;
	struct vlan_hdr *vlh;
	__u16 h_proto;
	int i;

	if ((void *)(eth + 1) > data_end)
		return PARSE_TRUNCATED;
	nh->pos = eth + 1;
	h_proto = eth->h_proto;

#pragma unroll
	for (i = 0; i < XLNS_VLAN_MAX_DEPTH; i++) {
		if (!proto_is_vlan(h_proto))
			break;
		vlh = nh->pos;
		if ((void *)(vlh + 1) > data_end)
			return PARSE_TRUNCATED;
		h_proto = vlh->h_vlan_encapsulated_proto;
		nh->pos = vlh + 1;
	}
	return h_proto;
}

/*
 * IPv4 header with options (RFC 791 §3.1). Checks the version, IHL >= 5, that the
 * header fits and that Total Length covers the header and fits in the frame. Sets
 * *l4_end to the end of the datagram (Total Length; Ethernet padding is not payload).
 * Returns the protocol number.
 */
static __always_inline int parse_iphdr(struct hdr_cursor *nh, void *data_end,
				       struct iphdr **iphdr, void **l4_end)
{
	struct iphdr *iph = nh->pos;
	__u32 hdrsize, tot_len;

	if ((void *)(iph + 1) > data_end)
		return PARSE_TRUNCATED;
	if (iph->version != 4)
		return PARSE_INVALID;
	hdrsize = iph->ihl * 4;
	if (hdrsize < sizeof(*iph))
		return PARSE_INVALID;
	if (nh->pos + hdrsize > data_end)
		return PARSE_TRUNCATED;
	tot_len = bpf_ntohs(iph->tot_len);
	if (tot_len < hdrsize)
		return PARSE_INVALID;
	if (nh->pos + tot_len > data_end)
		return PARSE_TRUNCATED;
	*l4_end = nh->pos + tot_len;
	nh->pos += hdrsize;
	*iphdr = iph;
	return iph->protocol;
}

/* RFC 791 §3.1: MF set or a non-zero fragment offset. */
static __always_inline int ipv4_is_fragment(const struct iphdr *iph)
{
	return (iph->frag_off & bpf_htons(IP_MF | IP_OFFSET)) != 0;
}

/*
 * IPv6 fixed header (RFC 8200 §3). Extension headers are not walked: the next header
 * is returned as is (a fragment header is reported by the caller as a fragment). Sets
 * *l4_end from Payload Length, which must fit in the frame.
 */
static __always_inline int parse_ip6hdr(struct hdr_cursor *nh, void *data_end,
					struct ipv6hdr **ip6hdr, void **l4_end)
{
	struct ipv6hdr *ip6h = nh->pos;

	if ((void *)(ip6h + 1) > data_end)
		return PARSE_TRUNCATED;
	if (ip6h->version != 6)
		return PARSE_INVALID;
	nh->pos = ip6h + 1;
	if (nh->pos + bpf_ntohs(ip6h->payload_len) > data_end)
		return PARSE_TRUNCATED;
	*l4_end = nh->pos + bpf_ntohs(ip6h->payload_len);
	*ip6hdr = ip6h;
	return ip6h->nexthdr;
}

/*
 * UDP header (RFC 768). The UDP Length must cover the header and fit in the IP payload
 * (`l4_end`). Returns the length of the UDP payload and sets *end to its end.
 */
static __always_inline int parse_udphdr(struct hdr_cursor *nh, void *data_end, void *l4_end,
					struct udphdr **udphdr, void **end)
{
	struct udphdr *h = nh->pos;
	__u32 len;

	if (!FITS(h, sizeof(*h), l4_end, data_end))
		return PARSE_TRUNCATED;
	len = bpf_ntohs(h->len);
	if (len < sizeof(*h))
		return PARSE_INVALID;
	if (nh->pos + len > l4_end)
		return PARSE_TRUNCATED;
	*end = nh->pos + len;
	nh->pos = h + 1;
	*udphdr = h;
	return len - sizeof(*h);
}

/* ICMPv6 type of the message at the cursor, or PARSE_TRUNCATED. Does not advance. */
static __always_inline int peek_icmp6_type(struct hdr_cursor *nh, void *data_end, void *end)
{
	struct icmp6hdr *icmp6h = nh->pos;

	if (!FITS(icmp6h, sizeof(*icmp6h), end, data_end))
		return PARSE_TRUNCATED;
	return icmp6h->icmp6_type;
}

/* Outcome of parse_l2tp: what the UDP payload is. */
enum l2tp_kind {
	L2TP_DATA = 0,
	L2TP_CONTROL = 1,
	L2TP_OTHER_VERSION = 2,
};

/*
 * L2TPv2 header (RFC 2661 §3.1):
 *
 *   |T|L|x|x|S|x|O|P|x|x|x|x|  Ver  |          Length (opt)         |
 *   |           Tunnel ID           |           Session ID          |
 *   |             Ns (opt)          |             Nr (opt)          |
 *   |      Offset Size (opt)        |    Offset pad... (opt)
 *
 * Reads the flags word first: Ver != 2 is L2TP_OTHER_VERSION (L2TPv3 over UDP, RFC 3931
 * §4.1.2.1), T=1 is L2TP_CONTROL (the kernel's socket takes it whatever else it holds).
 * For a data message, walks the optional fields the flags announce and the offset pad
 * ("Offset Size ... specifies the number of octets past the L2TP header at which the
 * payload data is expected to start"), and checks that Length (when present) covers the
 * header and fits in the UDP payload. Leaves the cursor at the PPP frame and sets *end
 * to the end of the L2TP message (Length, else the UDP payload's end).
 */
static __always_inline int parse_l2tp(struct hdr_cursor *nh, void *data_end, void **end)
{
	void *start = nh->pos;
	__u16 *word = nh->pos;
	__u16 flags;
	__u32 hdr_len = 6;

	if (!FITS(word, 2, *end, data_end))
		return PARSE_TRUNCATED;
	flags = bpf_ntohs(*word);
	if ((flags & XLNS_L2TP_VERSION_MASK) != XLNS_L2TP_VERSION)
		return L2TP_OTHER_VERSION;
	if (flags & XLNS_L2TP_FLAG_T)
		return L2TP_CONTROL;

	if (flags & XLNS_L2TP_FLAG_L)
		hdr_len += 2;
	if (flags & XLNS_L2TP_FLAG_S)
		hdr_len += 4;
	if (flags & XLNS_L2TP_FLAG_O)
		hdr_len += 2;
	if (start + hdr_len > *end)
		return PARSE_TRUNCATED;

	if (flags & XLNS_L2TP_FLAG_L) {
		__u16 *length = start + 2;
		__u32 len;

		if (!FITS(length, 2, *end, data_end))
			return PARSE_TRUNCATED;
		len = bpf_ntohs(*length);
		if (len < hdr_len)
			return PARSE_INVALID;
		if (start + len > *end)
			return PARSE_TRUNCATED;
		*end = start + len;
	}

	nh->pos = start + hdr_len;
	if (flags & XLNS_L2TP_FLAG_O) {
		/* Offset Size is the last fixed field: just before the cursor. */
		__u16 *offset_size = start + hdr_len - 2;
		__u32 pad;

		if (!FITS(offset_size, 2, *end, data_end))
			return PARSE_TRUNCATED;
		pad = bpf_ntohs(*offset_size);
		/* No linear XDP buffer is this long, so such a pad is always truncated; the
		 * bound also keeps the cursor's variable offset small enough for the
		 * verifier to range-check reads after it (MAX_PACKET_OFF). */
		if (pad > XLNS_L2TP_MAX_OFFSET_PAD)
			return PARSE_TRUNCATED;
		if (nh->pos + pad > *end)
			return PARSE_TRUNCATED;
		nh->pos += pad;
	}
	return L2TP_DATA;
}

/*
 * PPP in HDLC-like framing as L2TP carries it (RFC 1661 §2, §6.5 and §6.6; RFC 2661
 * §3.1 strips only the HDLC flags and FCS): an optional Address/Control pair FF 03,
 * then the Protocol field, one byte when compressed (its low bit set, RFC 1661 §6.5)
 * or two. Returns the protocol number.
 */
static __always_inline int parse_ppp(struct hdr_cursor *nh, void *data_end, void *end)
{
	__u8 *p = nh->pos;
	__u16 proto;

	if (!FITS(p, 1, end, data_end))
		return PARSE_TRUNCATED;
	if (p[0] == XLNS_PPP_ADDRESS) {
		if (!FITS(p, 2, end, data_end))
			return PARSE_TRUNCATED;
		if (p[1] != XLNS_PPP_CONTROL)
			return PARSE_INVALID;
		p += 2;
		if (!FITS(p, 1, end, data_end))
			return PARSE_TRUNCATED;
	}
	if (p[0] & 1) {
		proto = p[0];
		p += 1;
	} else {
		if (!FITS(p, 2, end, data_end))
			return PARSE_TRUNCATED;
		proto = ((__u16)p[0] << 8) | p[1];
		/* RFC 1661 §2: the least significant byte of a protocol is odd. */
		if (!(proto & 1))
			return PARSE_INVALID;
		p += 2;
	}
	nh->pos = p;
	return proto;
}

#endif /* XLNS_PARSING_HELPERS_H */

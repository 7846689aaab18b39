// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/*
 * The XDP program of xlns (../../../shared/ARCHITECTURE.md §2).
 *
 * One program, `xlns_xdp`, whose role the loader fixes in rodata before load:
 *
 * access  L2TP data messages (T=0, version 2, any L/S/O/P flags, offset padding) sent to
 *         the L2TP port and carrying PPP IPv4 (0x0021) or IPv6 (0x0057), with or without
 *         Address/Control and with a compressed or full protocol field, go to the XSK of
 *         the receiving queue. Everything else goes to the kernel (XDP_PASS): control
 *         messages, PPP control protocols, other PPP protocols, L2TPv3, fragments, ARP,
 *         ND, other traffic, and malformed or truncated headers.
 * core    IPv4/IPv6 packets whose destination lies in a subscriber prefix (LPM tries)
 *         go to the XSK of the receiving queue; everything else to the kernel.
 * both    (one-armed LNS) the access rule first: UDP to the L2TP port is decided by it
 *         alone; any other IP packet is then offered to the core rule.
 *
 * Redirects use bpf_redirect_map(&xsks, rx_queue_index, XDP_PASS): a queue without a
 * socket (data plane not running) falls back to the kernel, and is counted as such.
 * Every frame increments exactly one counter (xlns_common.h).
 */
#include "parsing_helpers.h"
#include "xlns_common.h"
#include "xlns_consts.h"
#include "xlns_maps.h"

/* Set by the loader before load (rodata); these are the defaults. */
const volatile __u32 xlns_role = XLNS_ROLE_ACCESS;
const volatile __u16 xlns_l2tp_port = XLNS_L2TP_PORT_DEFAULT;

static __always_inline int count(__u32 reason, int verdict)
{
	__u64 *value = bpf_map_lookup_elem(&counters, &reason);

	if (value)
		*value += 1;
	return verdict;
}

/* Redirect to the queue's XSK; an empty slot falls back to XDP_PASS. */
static __always_inline int to_xsk(struct xdp_md *ctx, __u32 redirected, __u32 no_xsk)
{
	int verdict = bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);

	return count(verdict == XDP_REDIRECT ? redirected : no_xsk, verdict);
}

static __always_inline int malformed(void)
{
	return count(XLNS_CNT_PASS_MALFORMED, XDP_PASS);
}

/* Result of the access rule for one frame. */
enum access_result {
	/* Not UDP to the L2TP port: the core rule may look at it. */
	ACCESS_NOT_MINE = -1,
};

/*
 * The access rule on an IP packet whose L4 header is at the cursor. Returns an XDP
 * verdict (already counted), or ACCESS_NOT_MINE.
 */
static __always_inline int access_rule(struct xdp_md *ctx, struct hdr_cursor *nh,
				       void *data_end, void *l4_end, int ip_proto, int is_fragment)
{
	struct udphdr *udph;
	void *end;
	int kind, proto;

	/* A non-first IPv4 fragment (ip_proto -1 here) carries no UDP header, so it cannot
	 * be told apart from other traffic; nor can IPv6 behind an extension header. */
	if (ip_proto != IPPROTO_UDP)
		return ACCESS_NOT_MINE;
	if (is_fragment) {
		/* A first fragment: its UDP Length covers the whole datagram, beyond this
		 * fragment, so only the port is read. The kernel reassembles (RFC 791 §3.2). */
		udph = nh->pos;
		if (!FITS(udph, sizeof(*udph), l4_end, data_end))
			return malformed();
		if (udph->dest != bpf_htons(xlns_l2tp_port))
			return ACCESS_NOT_MINE;
		return count(XLNS_CNT_PASS_FRAGMENT, XDP_PASS);
	}
	if (parse_udphdr(nh, data_end, l4_end, &udph, &end) < 0)
		return malformed();
	if (udph->dest != bpf_htons(xlns_l2tp_port))
		return ACCESS_NOT_MINE;

	kind = parse_l2tp(nh, data_end, &end);
	if (kind < 0)
		return malformed();
	if (kind == L2TP_OTHER_VERSION)
		return count(XLNS_CNT_PASS_L2TP_VERSION, XDP_PASS);
	if (kind == L2TP_CONTROL)
		return count(XLNS_CNT_PASS_CONTROL, XDP_PASS);

	proto = parse_ppp(nh, data_end, end);
	if (proto < 0)
		return malformed();
	if (proto == XLNS_PPP_IPV4 || proto == XLNS_PPP_IPV6)
		return to_xsk(ctx, XLNS_CNT_REDIRECT_DATA, XLNS_CNT_PASS_NO_XSK_DATA);
	if (proto >= XLNS_PPP_CONTROL_PROTOCOLS)
		return count(XLNS_CNT_PASS_PPP_CONTROL, XDP_PASS);
	return count(XLNS_CNT_PASS_PPP_OTHER, XDP_PASS);
}

/*
 * The core rule: the IPv4 destination is a subscriber address (hosts_v4) or lies in a
 * subscriber prefix (prefixes_v4, which holds only the prefixes shorter than /32).
 */
static __always_inline int core_rule_v4(struct xdp_md *ctx, const struct iphdr *iph)
{
	struct prefix_v4_key key = { .prefixlen = 32 };
	__u32 daddr = iph->daddr;

	if (bpf_map_lookup_elem(&hosts_v4, &daddr))
		return to_xsk(ctx, XLNS_CNT_REDIRECT_CORE, XLNS_CNT_PASS_NO_XSK_CORE);
	__builtin_memcpy(key.addr, &iph->daddr, sizeof(key.addr));
	if (bpf_map_lookup_elem(&prefixes_v4, &key))
		return to_xsk(ctx, XLNS_CNT_REDIRECT_CORE, XLNS_CNT_PASS_NO_XSK_CORE);
	return count(XLNS_CNT_PASS_OTHER, XDP_PASS);
}

/* The core rule: the IPv6 destination in a subscriber prefix. */
static __always_inline int core_rule_v6(struct xdp_md *ctx, const struct ipv6hdr *ip6h)
{
	struct prefix_v6_key key = { .prefixlen = 128 };

	__builtin_memcpy(key.addr, &ip6h->daddr, sizeof(key.addr));
	if (bpf_map_lookup_elem(&prefixes_v6, &key))
		return to_xsk(ctx, XLNS_CNT_REDIRECT_CORE, XLNS_CNT_PASS_NO_XSK_CORE);
	return count(XLNS_CNT_PASS_OTHER, XDP_PASS);
}

/*
 * Each IP version is handled to its end in its own branch: the verifier tracks the
 * header pointer per path, and would not follow an EtherType test repeated later.
 */
static __always_inline int handle_ipv4(struct xdp_md *ctx, struct hdr_cursor *nh,
				       void *data_end)
{
	struct iphdr *iph;
	void *l4_end;
	int ip_proto, verdict;

	ip_proto = parse_iphdr(nh, data_end, &iph, &l4_end);
	if (ip_proto < 0)
		return malformed();
	if (xlns_role & XLNS_ROLE_ACCESS) {
		/* A non-first fragment has no L4 header at the cursor. */
		if (iph->frag_off & bpf_htons(IP_OFFSET))
			ip_proto = -1;
		verdict = access_rule(ctx, nh, data_end, l4_end, ip_proto, ipv4_is_fragment(iph));
		if (verdict != ACCESS_NOT_MINE)
			return verdict;
	}
	if (xlns_role & XLNS_ROLE_CORE)
		return core_rule_v4(ctx, iph);
	return count(XLNS_CNT_PASS_OTHER, XDP_PASS);
}

static __always_inline int handle_ipv6(struct xdp_md *ctx, struct hdr_cursor *nh,
				       void *data_end)
{
	struct ipv6hdr *ip6h;
	void *l4_end;
	int ip_proto, verdict;

	ip_proto = parse_ip6hdr(nh, data_end, &ip6h, &l4_end);
	if (ip_proto < 0)
		return malformed();
	/* RFC 4861 §4: neighbour discovery always belongs to the kernel. */
	if (ip_proto == IPPROTO_ICMPV6) {
		int type = peek_icmp6_type(nh, data_end, l4_end);

		if (type >= XLNS_ND_FIRST && type <= XLNS_ND_LAST)
			return count(XLNS_CNT_PASS_ND, XDP_PASS);
	}
	if (xlns_role & XLNS_ROLE_ACCESS) {
		/* Extension headers are not walked: a fragment header (or any other) makes
		 * the packet "not UDP" here, and the kernel takes it. */
		verdict = access_rule(ctx, nh, data_end, l4_end, ip_proto, 0);
		if (verdict != ACCESS_NOT_MINE)
			return verdict;
	}
	if (xlns_role & XLNS_ROLE_CORE)
		return core_rule_v6(ctx, ip6h);
	return count(XLNS_CNT_PASS_OTHER, XDP_PASS);
}

SEC("xdp")
int xlns_xdp(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct hdr_cursor nh = { .pos = data };
	int eth_type;

	eth_type = parse_ethhdr_vlan(&nh, data_end);
	if (eth_type < 0)
		return malformed();
	if (eth_type == bpf_htons(ETH_P_IP))
		return handle_ipv4(ctx, &nh, data_end);
	if (eth_type == bpf_htons(ETH_P_IPV6))
		return handle_ipv6(ctx, &nh, data_end);
	return count(XLNS_CNT_PASS_NON_IP, XDP_PASS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

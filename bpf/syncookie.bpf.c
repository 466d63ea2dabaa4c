// SPDX-License-Identifier: GPL-2.0
/*
 * syncookie-agent: stateless SYN cookies of our own design, checked at TC ingress.
 *
 * For a protected destination port:
 *   SYN  -> answer with a SYN-ACK whose ISN is a SipHash cookie (redirected out
 *           of the interface it came in on), drop the SYN: the kernel keeps no
 *           state for it.
 *   ACK  -> if only the listener answers for its 4-tuple, check the cookie
 *           (current and previous secret, current and previous time slot) and
 *           hand the kernel a request socket with bpf_sk_assign_tcp_reqsk();
 *           the kernel then builds the full socket (net/ipv4/syncookies.c,
 *           cookie_bpf_check()).
 * Everything else passes untouched. Every decision on a protected port moves
 * exactly one counter (bpf/syncookie.h, SC_STATS).
 *
 * The cookie format is specified in docs/cookie-format.md; lib/cookie.ts is a
 * bit-exact TypeScript implementation of it.
 */
/* vmlinux.h has a typedef named "config", the name of our map: rename it away */
#define config config___vmlinux
#include "vmlinux.h"
#undef config
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>
#include "syncookie.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the SipHash message words are built for a little-endian target"
#endif

/* "Not ours, carry on": TC_ACT_UNSPEC lets the next tcx program (TCX_NEXT)
 * or the next cls_bpf filter run, and is a pass when there is none.
 * TC_ACT_OK (TCX_PASS) would end the chain and silence everything behind us. */
#define TC_ACT_PASS (-1)
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define PACKET_HOST 0
#define SC_LOOPBACK_IFINDEX 1 /* lo is ifindex 1 in every network namespace */
#define CHECKSUM_COMPLETE 2
#define CHECKSUM_PARTIAL 3
#define SC_TCP_LISTEN 10
#define SC_IPPROTO_TCP 6
#define SC_NEXTHDR_HOP 0
#define SC_NEXTHDR_ROUTING 43
#define SC_NEXTHDR_FRAGMENT 44
#define SC_NEXTHDR_AUTH 51
#define SC_NEXTHDR_DEST 60
#define SC_MAX_EXT_HDRS 8
#define SC_IP_MF 0x2000
#define SC_IP_OFFSET 0x1fff
#define SC_IP_DF 0x4000

#define TCPF_FIN 0x01
#define TCPF_SYN 0x02
#define TCPF_RST 0x04
#define TCPF_ACK 0x10
#define TCPF_ECE 0x40
#define TCPF_CWR 0x80

#define TCPOPT_EOL 0
#define TCPOPT_NOP 1
#define TCPOPT_MSS 2
#define TCPOPT_WINDOW 3
#define TCPOPT_SACK_PERM 4
#define TCPOPT_TIMESTAMP 8
#define TCPOPT_MD5SIG 19
#define TCPOLEN_MD5SIG 18
#define SC_MAX_OPTLEN 40
#define SC_MAX_WSCALE 14

#ifndef barrier_var
#define barrier_var(var) asm volatile("" : "+r"(var))
#endif

extern int bpf_sk_assign_tcp_reqsk(struct __sk_buff *skb, struct sock *sk,
				   struct bpf_tcp_req_attrs *attrs, int attrs__sz) __ksym;
extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sc_config);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SC_SECRET_SLOTS);
	__type(key, __u32);
	__type(value, struct sc_secret);
} secrets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sc_ports);
} ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sc_stats);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SC_ROUTE_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* filled by the table, not by packets */
	__type(key, struct sc_route_key);     /* prefixlen always 128 */
	__type(value, struct sc_route);
} hosts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SC_ROUTE_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* required of an LPM trie */
	__type(key, struct sc_route_key);
	__type(value, struct sc_route);
} routes SEC(".maps");

/* What the parser learnt about a packet. Addresses and ports stay in network
 * byte order, exactly as on the wire: the SipHash message is built from them. */
struct pkt {
	__u32 l4_off;    /* offset of the TCP header from the Ethernet header */
	__u32 l3_extra;  /* bytes of IPv4 options or IPv6 extension headers */
	__u8 v6;
	__u8 fragment;   /* first fragment of a fragmented datagram */
	__u8 bad_ext;    /* IPv6: AH, a routing header with segments left, hop-by-hop not first */
	__u8 pad;
	__u16 ip_len;    /* IPv4 total length, IPv6 payload length (host order) */
	__u16 pad2;
	__be32 saddr[4]; /* IPv4 uses [0] */
	__be32 daddr[4];
	struct tcphdr th;
};

/* TCP options of a SYN (or of a cookie ACK: only the timestamps matter). */
struct tcp_opts {
	__u8 buf[64];    /* a copy: bpf_loop over packet memory does not verify */
	__u32 len;
	__u32 pos;
	__u32 tsval;
	__u32 tsecr;
	__u16 mss;
	__u8 wscale;
	__u8 has_mss;
	__u8 has_wscale;
	__u8 sack;
	__u8 has_ts;
	__u8 bad;
	__u8 md5;        /* a TCP-MD5 signature option (RFC 2385) */
};

/* What the listener's network namespace allows (its sysctls, read live). */
struct netns_opts {
	__u32 rmem2;     /* net.ipv4.tcp_rmem[2] */
	__u32 rcvbuf;    /* the listener's sk_rcvbuf */
	__u8 timestamps;
	__u8 sack;
	__u8 window_scaling;
	__u8 ecn;
	__u8 syncookies;
	__u8 md5_ok;     /* the listener has MD5 keys, or this kernel has no TCP-MD5 */
};

enum parse_result {
	PARSE_TCP,          /* a TCP segment, ports known */
	PARSE_NOT_OURS,     /* not TCP, or we cannot see the ports: pass, no counter */
	PARSE_DROP_HEADERS, /* IPv6 chain too long to reach the TCP header */
	PARSE_DROP_FRAGMENT, /* a first fragment too short for a TCP header */
};

static __always_inline void count(enum sc_stat s)
{
	__u32 k = 0;
	struct sc_stats *st = bpf_map_lookup_elem(&stats, &k);

	/* per-CPU value: no other CPU writes it, a plain increment is enough */
	if (st && s < SC_STAT_COUNT)
		st->counter[s]++;
}

static __always_inline int port_protected(__u16 port)
{
	__u32 k = 0;
	struct sc_ports *p = bpf_map_lookup_elem(&ports, &k);

	if (!p)
		return 0;
	return (p->bits[(port >> 6) & (SC_PORT_WORDS - 1)] >> (port & 63)) & 1;
}

static __always_inline __u8 tcp_flags(const struct tcphdr *th)
{
	return ((const __u8 *)th)[13];
}

/* ---- parsing --------------------------------------------------------- */

static __always_inline int parse_ipv4(struct __sk_buff *skb, struct pkt *p)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	__u32 ihl;

	if ((void *)(ip + 1) > data_end)
		return PARSE_NOT_OURS;
	if (ip->version != 4 || ip->protocol != SC_IPPROTO_TCP)
		return PARSE_NOT_OURS;
	ihl = ip->ihl * 4;
	if (ihl < sizeof(*ip))
		return PARSE_NOT_OURS; /* the kernel drops it (ip_rcv_core) */
	if (bpf_ntohs(ip->frag_off) & SC_IP_OFFSET)
		return PARSE_NOT_OURS; /* later fragments carry no TCP header */
	p->fragment = !!(bpf_ntohs(ip->frag_off) & SC_IP_MF);
	p->saddr[0] = ip->saddr;
	p->daddr[0] = ip->daddr;
	p->ip_len = bpf_ntohs(ip->tot_len);
	p->l3_extra = ihl - sizeof(*ip);
	p->l4_off = sizeof(struct ethhdr) + ihl;
	return PARSE_TCP;
}

/* Walk hop-by-hop, routing, destination-options, fragment and AH headers to
 * TCP. A SYN must not get around the program by its shape (xdp_synproxy
 * could be bypassed with extension headers). */
static __always_inline int parse_ipv6(struct __sk_buff *skb, struct pkt *p)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
	__u32 off = sizeof(struct ethhdr) + sizeof(*ip6);
	__u8 nh;
	int i;

	if ((void *)(ip6 + 1) > data_end)
		return PARSE_NOT_OURS;
	if (ip6->version != 6)
		return PARSE_NOT_OURS;
	__builtin_memcpy(p->saddr, &ip6->saddr, 16);
	__builtin_memcpy(p->daddr, &ip6->daddr, 16);
	p->v6 = 1;
	p->ip_len = bpf_ntohs(ip6->payload_len);
	nh = ip6->nexthdr;

#pragma unroll
	for (i = 0; i < SC_MAX_EXT_HDRS; i++) {
		__u8 h[8];

		if (nh == SC_IPPROTO_TCP)
			break;
		if (nh != SC_NEXTHDR_HOP && nh != SC_NEXTHDR_ROUTING && nh != SC_NEXTHDR_DEST &&
		    nh != SC_NEXTHDR_FRAGMENT && nh != SC_NEXTHDR_AUTH)
			return PARSE_NOT_OURS; /* ESP, no next header, UDP, ICMPv6, ... */
		if (bpf_skb_load_bytes(skb, off, h, sizeof(h)))
			return PARSE_NOT_OURS; /* truncated: the kernel drops it */
		/* hop-by-hop only right after the IPv6 header (ip6_input.c drops
		 * it elsewhere); without a branch: one more per header doubled
		 * the states of every path after it (SC_NEXTHDR_HOP is 0) */
		if (i > 0)
			p->bad_ext |= ((__u32)nh - 1) >> 31;
		if (nh == SC_NEXTHDR_FRAGMENT) {
			if ((((__u16)h[2] << 8) | h[3]) & 0xfff8)
				return PARSE_NOT_OURS; /* not the first fragment */
			p->fragment = h[3] & 1;
			off += 8;
		} else if (nh == SC_NEXTHDR_AUTH) {
			p->bad_ext = 1; /* we cannot sign a SYN-ACK */
			off += ((__u32)h[1] + 2) * 4;
		} else {
			if (nh == SC_NEXTHDR_ROUTING && h[3])
				p->bad_ext = 1; /* segments left: we are not the destination */
			off += ((__u32)h[1] + 1) * 8;
		}
		nh = h[0];
	}
	if (nh != SC_IPPROTO_TCP)
		return PARSE_DROP_HEADERS;
	p->l4_off = off;
	p->l3_extra = off - sizeof(struct ethhdr) - sizeof(*ip6);
	return PARSE_TCP;
}

static __always_inline int parse_packet(struct __sk_buff *skb, struct pkt *p)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	int r;

	if ((void *)(eth + 1) > data_end)
		return PARSE_NOT_OURS;
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		r = parse_ipv4(skb, p);
	else if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		r = parse_ipv6(skb, p);
	else
		return PARSE_NOT_OURS;
	if (r != PARSE_TCP)
		return r;
	/* Every TCP segment gets here: read the header in place when it is in
	 * the linear area, a helper call less per segment (a segment to another
	 * port: 60 -> 42 ns with repeat, 35 for an empty program). The bound
	 * on l4_off is for the verifier (an IPv4 header ends by 74; 8 IPv6
	 * extension headers may reach further, those take bpf_skb_load_bytes()). */
	{
		__u32 off = p->l4_off;
		struct tcphdr *th;

		if (off <= 255) {
			th = data + off;
			if ((void *)(th + 1) <= data_end) {
				__builtin_memcpy(&p->th, th, sizeof(p->th));
				return PARSE_TCP;
			}
		}
	}
	if (bpf_skb_load_bytes(skb, p->l4_off, &p->th, sizeof(p->th))) {
		/* A first fragment that does not hold a whole TCP header hides the
		 * flags (or the ports) in a later fragment: reassembled, it could be
		 * a SYN for the kernel's SYN queue (RFC 1858's tiny fragment). */
		if (p->fragment)
			return PARSE_DROP_FRAGMENT;
		return PARSE_NOT_OURS; /* no room for the ports: the kernel drops it */
	}
	return PARSE_TCP;
}

static long parse_option(__u32 index, void *ctx)
{
	struct tcp_opts *o = ctx;
	__u32 i = o->pos, len = o->len;
	__u8 kind, size;

	if (i >= len || i >= SC_MAX_OPTLEN)
		return 1;
	kind = o->buf[i & 63];
	if (kind == TCPOPT_EOL)
		return 1;
	if (kind == TCPOPT_NOP) {
		o->pos = i + 1;
		return 0;
	}
	if (i + 1 >= len) {
		o->bad = 1;
		return 1;
	}
	size = o->buf[(i + 1) & 63];
	if (size < 2 || i + size > len) {
		o->bad = 1; /* the kernel stops parsing here too; we refuse the segment */
		return 1;
	}
	/* Like tcp_parse_options(): an option of the wrong size is ignored and a
	 * repeated one overrides the earlier one. */
	switch (kind) {
	case TCPOPT_MSS:
		if (size == 4) {
			o->has_mss = 1;
			o->mss = ((__u16)o->buf[(i + 2) & 63] << 8) | o->buf[(i + 3) & 63];
		}
		break;
	case TCPOPT_WINDOW:
		if (size == 3) {
			o->has_wscale = 1;
			o->wscale = o->buf[(i + 2) & 63];
		}
		break;
	case TCPOPT_SACK_PERM:
		if (size == 2)
			o->sack = 1;
		break;
	case TCPOPT_MD5SIG:
		/* tcp_do_parse_auth_options() takes only this size */
		if (size == TCPOLEN_MD5SIG)
			o->md5 = 1;
		break;
	case TCPOPT_TIMESTAMP:
		if (size == 10) {
			o->has_ts = 1;
			o->tsval = ((__u32)o->buf[(i + 2) & 63] << 24) | ((__u32)o->buf[(i + 3) & 63] << 16) |
				   ((__u32)o->buf[(i + 4) & 63] << 8) | o->buf[(i + 5) & 63];
			o->tsecr = ((__u32)o->buf[(i + 6) & 63] << 24) | ((__u32)o->buf[(i + 7) & 63] << 16) |
				   ((__u32)o->buf[(i + 8) & 63] << 8) | o->buf[(i + 9) & 63];
		}
		break;
	}
	o->pos = i + size;
	return 0;
}

/* The options of a Linux client's SYN, exactly: MSS, SACK_PERM, TS, NOP,
 * WS (20 bytes). Recognised as a whole they parse as parse_option() would
 * parse them, without bpf_loop's callback per option (15% of the SYN path). */
static __always_inline int linux_syn_options(struct tcp_opts *o)
{
	const __u8 *b = o->buf;

	if (o->len != 20 || b[0] != TCPOPT_MSS || b[1] != 4 || b[4] != TCPOPT_SACK_PERM || b[5] != 2 ||
	    b[6] != TCPOPT_TIMESTAMP || b[7] != 10 || b[16] != TCPOPT_NOP || b[17] != TCPOPT_WINDOW ||
	    b[18] != 3)
		return 0;
	o->has_mss = 1;
	o->mss = ((__u16)b[2] << 8) | b[3];
	o->sack = 1;
	o->has_ts = 1;
	o->tsval = ((__u32)b[8] << 24) | ((__u32)b[9] << 16) | ((__u32)b[10] << 8) | b[11];
	o->tsecr = ((__u32)b[12] << 24) | ((__u32)b[13] << 16) | ((__u32)b[14] << 8) | b[15];
	o->has_wscale = 1;
	o->wscale = b[19];
	return 1;
}

/* Returns 0, or -1 when the header or its options are truncated/malformed. */
static __always_inline int parse_options(struct __sk_buff *skb, const struct pkt *p,
					 struct tcp_opts *o)
{
	__u64 doff = p->th.doff * 4;
	__u64 len; /* 64-bit: a 32-bit copy would be checked instead of the register passed on */

	if (doff < sizeof(struct tcphdr))
		return -1;
	len = doff - sizeof(struct tcphdr);
	/* keep clang from folding these checks into a mask the verifier reads
	 * as "maybe zero": bpf_skb_load_bytes() needs 1 <= len <= 40 */
	barrier_var(len);
	if (len == 0)
		return 0;
	if (len > SC_MAX_OPTLEN)
		return -1;
	if (bpf_skb_load_bytes(skb, p->l4_off + sizeof(struct tcphdr), o->buf, len))
		return -1; /* options past the end of the packet */
	o->len = len;
	if (linux_syn_options(o))
		return 0;
	bpf_loop(SC_MAX_OPTLEN, parse_option, o, 0);
	return o->bad ? -1 : 0;
}

/* ---- the cookie (docs/cookie-format.md) ------------------------------- */

#define ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                               \
	do {                                                                   \
		v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);     \
		v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                        \
		v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                        \
		v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);     \
	} while (0)

/* SipHash-2-4 of n little-endian 8-byte words (a message of 8n bytes). */
static __always_inline __u64 siphash(const struct sc_secret *key, const __u64 *w, int n)
{
	__u64 v0 = key->k0 ^ 0x736f6d6570736575ULL;
	__u64 v1 = key->k1 ^ 0x646f72616e646f6dULL;
	__u64 v2 = key->k0 ^ 0x6c7967656e657261ULL;
	__u64 v3 = key->k1 ^ 0x7465646279746573ULL;
	__u64 b = (__u64)(n * 8) << 56;
	int i;

#pragma unroll
	for (i = 0; i < 6; i++) {
		if (i >= n)
			break;
		v3 ^= w[i];
		SIPROUND;
		SIPROUND;
		v0 ^= w[i];
	}
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/* The message: client address, server address, client port, server port,
 * client ISN (all as on the wire), then the slot (LE u32) and the data byte.
 * Loading the wire bytes as little-endian words gives exactly that byte
 * string. Returns the number of words. */
static __always_inline int cookie_message(const struct pkt *p, __u32 isn_be, __u32 slot,
					  __u8 data, __u64 *w)
{
	__u64 ports = (__u64)p->th.source | ((__u64)p->th.dest << 16) | ((__u64)isn_be << 32);
	__u64 tail = (__u64)slot | ((__u64)data << 32);

	if (!p->v6) {
		w[0] = (__u64)p->saddr[0] | ((__u64)p->daddr[0] << 32);
		w[1] = ports;
		w[2] = tail;
		return 3;
	}
	w[0] = (__u64)p->saddr[0] | ((__u64)p->saddr[1] << 32);
	w[1] = (__u64)p->saddr[2] | ((__u64)p->saddr[3] << 32);
	w[2] = (__u64)p->daddr[0] | ((__u64)p->daddr[1] << 32);
	w[3] = (__u64)p->daddr[2] | ((__u64)p->daddr[3] << 32);
	w[4] = ports;
	w[5] = tail;
	return 6;
}

/* Global (not inlined) functions are verified once, on their own: the SYN
 * and ACK paths for IPv4 and IPv6 would otherwise multiply the verifier's
 * states (and its load time) several times over. */
__noinline __u64 sc_cookie_hash(const struct sc_secret *key, const struct pkt *p, __u32 isn_be,
				__u32 slot, __u32 data)
{
	__u64 w[6];

	if (!key || !p)
		return 0;
	if (cookie_message(p, isn_be, slot, data, w) == 3)
		return siphash(key, w, 3);
	return siphash(key, w, 6);
}

/* The time slot: CLOCK_TAI (shared by a fleet, unlike the per-host monotonic
 * clock) in ms, >> 16: 65.536 s. */
static __always_inline __u32 current_slot(const struct sc_config *cfg)
{
	__u64 ms = cfg->now_ms_override;

	if (!ms)
		ms = bpf_ktime_get_tai_ns() / 1000000;
	return (__u32)(ms >> SC_SLOT_SHIFT_MS);
}

static __always_inline __u16 mss_from_index(int v6, __u32 idx)
{
	/* #defines, not a .rodata table: clang-14 miscompiled those */
	if (v6)
		return idx == 0 ? SC_MSS6_0 : idx == 1 ? SC_MSS6_1 : idx == 2 ? SC_MSS6_2 : SC_MSS6_3;
	return idx == 0 ? SC_MSS4_0 : idx == 1 ? SC_MSS4_1 : idx == 2 ? SC_MSS4_2 : SC_MSS4_3;
}

/* Largest table entry not above the client's MSS; -1 below the table. */
static __always_inline int mss_index(int v6, __u16 mss)
{
	int i;

	for (i = 3; i >= 0; i--)
		if (mss >= mss_from_index(v6, i))
			return i;
	return -1;
}

/* ---- the listener and its namespace ---------------------------------- */

/* Read the listener netns' sysctls live (CO-RE), so the SYN-ACK never offers
 * an option the kfunc would refuse (-EINVAL leaves the client hanging). */
static __always_inline void read_netns(struct bpf_sock *skc, struct netns_opts *n)
{
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(skc);
	struct sock *sk;
	struct net *net;

	if (!tp)
		return;
	/* tp is a BTF pointer: plain loads, which the verifier turns into
	 * PROBE_MEM loads (CO-RE relocated through vmlinux.h's
	 * preserve_access_index). BPF_CORE_READ() would make each read a
	 * bpf_probe_read_kernel() call: these eight, with the MTU's two, were
	 * a quarter of the SYN path (999 -> 752 ns). */
	sk = &tp->inet_conn.icsk_inet.sk;
	net = sk->__sk_common.skc_net.net;
	n->timestamps = net->ipv4.sysctl_tcp_timestamps;
	n->sack = net->ipv4.sysctl_tcp_sack;
	n->window_scaling = net->ipv4.sysctl_tcp_window_scaling;
	n->ecn = net->ipv4.sysctl_tcp_ecn;
	n->syncookies = net->ipv4.sysctl_tcp_syncookies;
	n->rmem2 = net->ipv4.sysctl_tcp_rmem[2];
	n->rcvbuf = sk->sk_rcvbuf;
	/* tcp_inbound_hash(): a SYN signed with TCP-MD5 for a listener without
	 * keys is dropped (TCPMD5Unexpected). Without CONFIG_TCP_MD5SIG the
	 * field is gone and the kernel ignores the option. */
	if (bpf_core_field_exists(tp->md5sig_info))
		n->md5_ok = tp->md5sig_info != NULL;
	else
		n->md5_ok = 1;
}

/* The window scale the kernel would pick (tcp_select_initial_window()):
 * ilog2(max(rcvbuf, tcp_rmem[2], rmem_max)) - 15, within 0..14. A hard-coded
 * value differs from what the kernel chooses for its own connections. */
static __always_inline __u8 pick_rcv_wscale(const struct netns_opts *n, __u32 rmem_max)
{
	__u32 space = n->rcvbuf, log = 0;

	if (n->rmem2 > space)
		space = n->rmem2;
	if (rmem_max > space)
		space = rmem_max;
	if (space >> 16) { space >>= 16; log += 16; }
	if (space >> 8) { space >>= 8; log += 8; }
	if (space >> 4) { space >>= 4; log += 4; }
	if (space >> 2) { space >>= 2; log += 2; }
	if (space >> 1) { log += 1; }
	if (log <= 15)
		return 0;
	return log - 15 > SC_MAX_WSCALE ? SC_MAX_WSCALE : log - 15;
}

static __always_inline struct bpf_sock *lookup_socket(struct __sk_buff *skb, const struct pkt *p)
{
	struct bpf_sock_tuple t = {};
	__u32 size;

	if (p->v6) {
		__builtin_memcpy(t.ipv6.saddr, p->saddr, 16);
		__builtin_memcpy(t.ipv6.daddr, p->daddr, 16);
		t.ipv6.sport = p->th.source;
		t.ipv6.dport = p->th.dest;
		size = sizeof(t.ipv6);
	} else {
		t.ipv4.saddr = p->saddr[0];
		t.ipv4.daddr = p->daddr[0];
		t.ipv4.sport = p->th.source;
		t.ipv4.dport = p->th.dest;
		size = sizeof(t.ipv4);
	}
	/* established and TIME_WAIT sockets first, then the listener */
	return bpf_skc_lookup_tcp(skb, &t, size, BPF_F_CURRENT_NETNS, 0);
}

/* ---- SYN -> SYN-ACK ---------------------------------------------------- */

static __always_inline int bad_address(struct __sk_buff *skb, const struct pkt *p)
{
	if (skb->pkt_type != PACKET_HOST)
		return 1; /* L2 broadcast/multicast */
	if (p->v6) {
		const __u8 *s = (const __u8 *)p->saddr, *d = (const __u8 *)p->daddr;

		if (s[0] == 0xff || d[0] == 0xff)
			return 1; /* multicast */
		if (!(p->saddr[0] | p->saddr[1] | p->saddr[2] | p->saddr[3]) ||
		    !(p->daddr[0] | p->daddr[1] | p->daddr[2] | p->daddr[3]))
			return 1; /* unspecified */
		if (skb->ifindex != SC_LOOPBACK_IFINDEX &&
		    ((!p->saddr[0] && !p->saddr[1] && !p->saddr[2] && p->saddr[3] == bpf_htonl(1)) ||
		     (!p->daddr[0] && !p->daddr[1] && !p->daddr[2] && p->daddr[3] == bpf_htonl(1))))
			return 1; /* ::1 from the wire (the kernel drops it) */
		/* ::ffff:0:0/96 on the wire: the kernel drops it (ip6_rcv_core()),
		 * and the cookie format has no tuple for it */
		if ((!p->saddr[0] && !p->saddr[1] && p->saddr[2] == bpf_htonl(0xffff)) ||
		    (!p->daddr[0] && !p->daddr[1] && p->daddr[2] == bpf_htonl(0xffff)))
			return 1;
		return 0;
	}
	{
		__u32 s = bpf_ntohl(p->saddr[0]), d = bpf_ntohl(p->daddr[0]);

		if (!s || !d || s == 0xffffffff || d == 0xffffffff)
			return 1;
		if (skb->ifindex != SC_LOOPBACK_IFINDEX && ((s >> 24) == 127 || (d >> 24) == 127))
			return 1; /* 127.0.0.0/8 from the wire (the kernel drops it) */
		if ((s >> 28) == 0xe || (d >> 28) == 0xe)
			return 1; /* 224.0.0.0/4 */
	}
	return 0;
}

/* The lookup key of `a`: struct sc_route_key, built field by field (an
 * initialiser would be a .rodata map of its own). */
static __always_inline void route_key(__u32 k[5], const struct pkt *p, const __be32 *a)
{
	k[0] = 128;
	if (p->v6) {
		k[1] = a[0];
		k[2] = a[1];
		k[3] = a[2];
		k[4] = a[3];
	} else {
		k[1] = 0;
		k[2] = 0;
		k[3] = bpf_htonl(0xffff);
		k[4] = a[0];
	}
}

/* The type of the longest route that covers destination `a` (RTN_LOCAL: the
 * kernel delivers it here), 0 if none does or none that could be local. A
 * flood's SYNs go to few addresses: their hash buckets stay in cache. */
static __always_inline __u32 dst_route_type(const struct pkt *p, const __be32 *a, __u32 flags)
{
	struct sc_route *r;
	__u32 k[5];

	route_key(k, p, a);
	r = bpf_map_lookup_elem(&hosts, k);
	if (r)
		return r->type;
	if (!(flags & SC_CFG_LOCAL_NETS))
		return 0;
	r = bpf_map_lookup_elem(&routes, k);
	return r ? r->type : 0;
}

/* The same for a source, from the LPM trie alone (it holds the one-address
 * routes too): a flood's random sources would each miss the hash in a
 * bucket of their own, a cache miss per SYN; the trie's few nodes stay in
 * cache. */
static __always_inline __u32 src_route_type(const struct pkt *p, const __be32 *a)
{
	struct sc_route *r;
	__u32 k[5];

	route_key(k, p, a);
	r = bpf_map_lookup_elem(&routes, k);
	return r ? r->type : 0;
}

/* net.ipv4.conf.{all,<ingress device>}.accept_local: the kernel takes a
 * packet from one of its own addresses only when either is set. */
static __always_inline int accept_local(struct __sk_buff *skb)
{
	struct sk_buff *kskb = bpf_cast_to_kern_ctx(skb);
	struct net_device *dev = kskb->dev;
	struct in_device *in_dev;
	struct ipv4_devconf *all;

	if (!dev)
		return 0;
	all = dev->nd_net.net->ipv4.devconf_all;
	if (all && all->data[IPV4_DEVCONF_ACCEPT_LOCAL - 1])
		return 1;
	in_dev = dev->ip_ptr;
	return in_dev && in_dev->cnf.data[IPV4_DEVCONF_ACCEPT_LOCAL - 1];
}

/*
 * What the routing decision after us would say (ip_route_input_slow(),
 * ip6_route_input()): with SC_CFG_LOCAL_ONLY, a SYN is answered only for a
 * destination whose route is RTN_LOCAL. Broadcast (the kernel refuses TCP to
 * it), anycast (tcp_v6_conn_request() does too) and addresses that are not
 * this host's (the kernel would forward or drop them; a cookie would make
 * the host answer for others) are dropped. An IPv4 source that is one of our
 * own addresses from anything but lo is a martian (fib_validate_source())
 * unless accept_local is set; IPv6 has no such rule.
 */
static __always_inline int not_local(struct __sk_buff *skb, const struct pkt *p)
{
	struct sc_config *cfg;
	__u32 k = 0, t;

	cfg = bpf_map_lookup_elem(&config, &k);
	if (!cfg || !(cfg->flags & SC_CFG_LOCAL_ONLY))
		return 0;
	t = dst_route_type(p, p->daddr, cfg->flags);
	/* 127.0.0.0/8 is lo's local route (off lo bad_address() dropped it), kept
	 * out of SC_CFG_LOCAL_NETS so that the flag stays clear on most hosts;
	 * 127.255.255.255 is a host route (broadcast) and found above */
	if (t != SC_RTN_LOCAL && !(t == 0 && !p->v6 && (bpf_ntohl(p->daddr[0]) >> 24) == 127))
		return 1;
	if (!p->v6 && skb->ifindex != SC_LOOPBACK_IFINDEX &&
	    src_route_type(p, p->saddr) == SC_RTN_LOCAL && !accept_local(skb))
		return 1;
	return 0;
}

static __always_inline __u16 csum_fold(__u64 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* 32-bit ones' complement sum of two 64-bit word sums: new - old. */
static __always_inline __u32 csum_sub32(__u64 new, __u64 old)
{
	__u64 d;

	new = (new & 0xffffffff) + (new >> 32);
	new = (new & 0xffffffff) + (new >> 32);
	old = (old & 0xffffffff) + (old >> 32);
	old = (old & 0xffffffff) + (old >> 32);
	d = new + (~old & 0xffffffff);
	d = (d & 0xffffffff) + (d >> 32);
	return (__u32)d;
}

/* Sum of the 32-bit words of the first `len` bytes after the Ethernet
 * header (what a CHECKSUM_COMPLETE skb->csum covers). */
__noinline __u64 sc_l3_sum(struct __sk_buff *skb, __u32 len)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u32 *w = data + sizeof(struct ethhdr);
	__u64 sum = 0;
	int i;

	for (i = 0; i < 20; i++) {
		if (i * 4 >= len || (void *)(w + i + 1) > data_end)
			break;
		sum += w[i];
	}
	return sum;
}

struct synack_tcp {
	struct tcphdr th;
	__u8 opts[20]; /* MSS 4 + SACK_PERM/TS 12 + WSCALE 4 */
};

struct pseudo4 {
	__be32 saddr;
	__be32 daddr;
	__u8 zero;
	__u8 proto;
	__be16 len;
};

struct pseudo6 {
	__be32 saddr[4];
	__be32 daddr[4];
	__be32 len;
	__u8 zero[3];
	__u8 proto;
};

/* Writes the options in the kernel's order (tcp_options_write()): MSS,
 * [SACK_PERM,] TIMESTAMP or NOP,NOP,SACK_PERM, then NOP,WSCALE. Every option
 * offered here must be exactly what the ACK's request socket gets. */
static __always_inline __u32 write_synack_options(__u8 *o, __u16 mss, int sack, int ts,
						  __u32 tsval, __u32 tsecr, int ws, __u8 rcv_wscale)
{
	__u32 n = 0;

	o[0] = TCPOPT_MSS; o[1] = 4; o[2] = mss >> 8; o[3] = mss & 0xff;
	n = 4;
	if (ts) {
		if (sack) {
			o[4] = TCPOPT_SACK_PERM; o[5] = 2;
		} else {
			o[4] = TCPOPT_NOP; o[5] = TCPOPT_NOP;
		}
		o[6] = TCPOPT_TIMESTAMP; o[7] = 10;
		*(__be32 *)&o[8] = bpf_htonl(tsval);
		*(__be32 *)&o[12] = bpf_htonl(tsecr);
		n = 16;
	} else if (sack) {
		o[4] = TCPOPT_NOP; o[5] = TCPOPT_NOP; o[6] = TCPOPT_SACK_PERM; o[7] = 2;
		n = 8;
	}
	if (ws) {
		o[n] = TCPOPT_NOP;
		o[n + 1] = TCPOPT_WINDOW;
		o[n + 2] = 3;
		o[n + 3] = rcv_wscale;
		n += 4;
	}
	return n;
}

/* Ones' complement sum of n 32-bit words, folded later by csum_fold(): what
 * bpf_csum_diff() computes, inline (a helper call per header cost more than
 * the adds). */
static __always_inline __u64 csum_words(const __u32 *w, int n, __u64 sum)
{
	int i;

#pragma unroll
	for (i = 0; i < 10; i++)
		if (i < n)
			sum += w[i];
	return sum;
}

/* ---- a SYN the kernel would take? ----------------------------------------
 * The kernel drops a SYN before TCP sees it when the IPv4 header checksum or
 * the IP length is wrong (ip_rcv_core(), ip6_rcv_core()), when an IPv4
 * option is malformed or routes the packet elsewhere (ip_rcv_options()), and
 * when the TCP checksum is wrong (tcp_v4_rcv(), tcp_v6_rcv()). A SYN-ACK for
 * any of those answers a packet that is not a valid SYN. */

#define IPOPT_END 0
#define IPOPT_NOOP 1
#define IPOPT_RR 7
#define IPOPT_TIMESTAMP 68
#define IPOPT_LSRR 131
#define IPOPT_CIPSO 134
#define IPOPT_SSRR 137
#define IPOPT_RA 148
#define IPOPT_TS_TSANDADDR 1
#define IPOPT_TS_PRESPEC 3
#define CHECKSUM_UNNECESSARY 1

/* Per-CPU room for copies the stack has no space for (512 bytes in all, the
 * SYN path uses 400 of them): IPv4 options, then pieces of a segment to sum
 * (512 bytes: what one bpf_csum_diff() sums). */
struct sc_scratch {
	__u8 b[512];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sc_scratch);
} scratch SEC(".maps");

struct ip4_opts {
	__u32 len;      /* the options are copied to scratch.b */
	__u32 pos;
	__u8 rr;
	__u8 ts;
	__u8 bad;
	__u8 pad;
};

/* One option, as ip_options_compile() checks a received one. */
static long parse_ip4_option(__u32 index, void *ctx)
{
	struct ip4_opts *o = ctx;
	__u32 i = o->pos, len = o->len, size, ptr, k = 0;
	struct sc_scratch *s = bpf_map_lookup_elem(&scratch, &k);
	__u8 kind, fl;

	if (!s)
		goto bad;
	if (i >= len || i >= 40)
		return 1;
	kind = s->b[i & 63];
	if (kind == IPOPT_END)
		return 1;
	if (kind == IPOPT_NOOP) {
		o->pos = i + 1;
		return 0;
	}
	if (len - i < 2)
		goto bad;
	size = s->b[(i + 1) & 63];
	if (size < 2 || size > len - i)
		goto bad;
	ptr = s->b[(i + 2) & 63];
	fl = s->b[(i + 3) & 63];
	switch (kind) {
	case IPOPT_LSRR:
	case IPOPT_SSRR:
		/* source routed: dropped (accept_source_route = 0) or passed on
		 * to the next hop; never a SYN for us to answer */
		goto bad;
	case IPOPT_CIPSO:
		/* cipso_v4_validate() refuses a DOI the host has not configured */
		goto bad;
	case IPOPT_RR:
		if (o->rr || size < 3 || ptr < 4 || (ptr <= size && ptr + 3 > size))
			goto bad;
		o->rr = 1;
		break;
	case IPOPT_TIMESTAMP:
		if (o->ts || size < 4 || ptr < 5)
			goto bad;
		if (ptr <= size) {
			if (ptr + 3 > size)
				goto bad;
			if (((fl & 0xf) == IPOPT_TS_TSANDADDR || (fl & 0xf) == IPOPT_TS_PRESPEC) &&
			    ptr + 7 > size)
				goto bad;
		} else if ((fl & 0xf) != IPOPT_TS_PRESPEC && (fl >> 4) == 15) {
			goto bad; /* the overflow counter would wrap */
		}
		o->ts = 1;
		break;
	case IPOPT_RA:
		if (size < 4)
			goto bad;
		break;
	}
	o->pos = i + size;
	return 0;
bad:
	o->bad = 1;
	return 1;
}

static __always_inline int ip4_options_ok(struct __sk_buff *skb, __u64 len)
{
	struct ip4_opts o = {};
	struct sc_scratch *s;
	__u32 k = 0;

	barrier_var(len);
	if (len == 0)
		return 1;
	if (len > 40)
		return 0;
	s = bpf_map_lookup_elem(&scratch, &k);
	if (!s || bpf_skb_load_bytes(skb, sizeof(struct ethhdr) + sizeof(struct iphdr), s->b, len))
		return 0;
	o.len = len;
	bpf_loop(40, parse_ip4_option, &o, 0);
	return !o.bad;
}

struct ip6_opts {
	__u32 end;      /* the extension headers are copied to scratch.b[0..end) */
	__u32 pos;      /* the next header starts here, or the next option */
	__u32 hdr_end;  /* end of the current header */
	__u8 nh;        /* the type of the header at hdr_end */
	__u8 in_tlv;    /* inside a hop-by-hop or destination options header */
	__u8 hop;       /* hop-by-hop */
	__u8 padlen;    /* consecutive padding bytes */
	__u8 count;     /* options that are not padding, in this header */
	__u8 bad;
};

/* One step of ip6_parse_tlv() over the copied extension headers: the start
 * of a header, or one option of a hop-by-hop or destination options header.
 * The kernel drops the datagram for an option whose type's two high bits
 * say so (RFC 8200 4.2: only Jumbo and Home Address are known among those,
 * and neither belongs on a SYN we could answer), for more than 7 bytes of
 * padding in a row, PadN with non-zero bytes, an option past its header,
 * more than 8 options (net.ipv6.max_{hbh,dst}_opts_cnt, default 8), or a
 * Router Alert of a wrong length. */
static long parse_ip6_step(__u32 index, void *ctx)
{
	struct ip6_opts *o = ctx;
	__u32 i = o->pos, k = 0, size, j;
	struct sc_scratch *s = bpf_map_lookup_elem(&scratch, &k);
	__u8 type;

	if (!s)
		goto bad;
	if (i >= o->hdr_end) {
		/* the next header */
		if (i >= o->end || i > 504)
			return 1;
		type = o->nh;
		o->nh = s->b[i & 511];
		if (type == SC_NEXTHDR_FRAGMENT)
			size = 8;
		else if (type == SC_NEXTHDR_AUTH)
			size = ((__u32)s->b[(i + 1) & 511] + 2) * 4;
		else
			size = ((__u32)s->b[(i + 1) & 511] + 1) * 8;
		o->hdr_end = i + size;
		o->hop = type == SC_NEXTHDR_HOP;
		o->in_tlv = o->hop || type == SC_NEXTHDR_DEST;
		o->pos = o->in_tlv ? i + 2 : i + size;
		o->padlen = 0;
		o->count = 0;
		return 0;
	}
	if (i > 511)
		goto bad;
	type = s->b[i & 511];
	if (type == 0) { /* Pad1 */
		if (++o->padlen > 7)
			goto bad;
		o->pos = i + 1;
		return 0;
	}
	if (i + 2 > o->hdr_end)
		goto bad;
	size = (__u32)s->b[(i + 1) & 511] + 2;
	if (i + size > o->hdr_end)
		goto bad;
	if (type == 1) { /* PadN: zeroes only (RFC 4942 2.1.9.5) */
		o->padlen += size;
		if (o->padlen > 7)
			goto bad;
		for (j = 2; j < 8; j++)
			if (j < size && s->b[(i + j) & 511])
				goto bad;
		o->pos = i + size;
		return 0;
	}
	o->padlen = 0;
	if (++o->count > 8 || (type & 0xc0))
		goto bad;
	if (o->hop && type == 5 && size != 4)
		goto bad; /* Router Alert of a wrong length (ipv6_hop_ra()) */
	o->pos = i + size;
	return 0;
bad:
	o->bad = 1;
	return 1;
}

/* The options of the IPv6 extension headers, as ip6_parse_tlv() checks
 * them; headers past 512 bytes are more than this program reads (dropped). */
static __always_inline int ip6_options_ok(struct __sk_buff *skb, const struct pkt *p)
{
	struct ip6_opts o = {};
	struct sc_scratch *s;
	__u32 k = 0;
	__u64 len = p->l3_extra;
	__u8 nh;

	barrier_var(len);
	if (len == 0)
		return 1;
	if (len > 512)
		return 0;
	s = bpf_map_lookup_elem(&scratch, &k);
	if (!s || bpf_skb_load_bytes(skb, sizeof(struct ethhdr) + 6, &nh, 1) ||
	    bpf_skb_load_bytes(skb, sizeof(struct ethhdr) + sizeof(struct ipv6hdr), s->b, len))
		return 0;
	o.end = len;
	o.nh = nh;
	bpf_loop(512, parse_ip6_step, &o, 0);
	return !o.bad;
}

/* The IP layer's checks. Returns the TCP segment length the IP header gives
 * (what the TCP checksum covers: not the Ethernet padding), or -1. */
__noinline int sc_syn_l3_check(struct __sk_buff *skb, const struct pkt *p)
{
	void *data, *data_end;
	__u32 frame, iplen, hl, seglen, *w;
	__u64 sum = 0;
	int i;

	if (!p || skb->len < sizeof(struct ethhdr))
		return -1;
	frame = skb->len - sizeof(struct ethhdr);
	if (p->v6) {
		/* 0 is a jumbogram's (RFC 2675), never a SYN we answer */
		if (!p->ip_len)
			return -1;
		iplen = sizeof(struct ipv6hdr) + p->ip_len;
		hl = sizeof(struct ipv6hdr) + p->l3_extra;
	} else {
		iplen = p->ip_len;
		hl = sizeof(struct iphdr) + p->l3_extra;
		if (hl > 60)
			return -1;
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
		if (data + sizeof(struct ethhdr) + hl > data_end) {
			if (bpf_skb_pull_data(skb, sizeof(struct ethhdr) + hl))
				return -1;
			data = (void *)(long)skb->data;
			data_end = (void *)(long)skb->data_end;
		}
		/* ip_fast_csum(): checked whatever skb->ip_summed says */
		w = data + sizeof(struct ethhdr);
		for (i = 0; i < 15; i++) {
			if (i * 4 >= hl)
				break;
			if ((void *)(w + i + 1) > data_end)
				return -1;
			sum += w[i];
		}
		if (csum_fold(sum) != 0xffff)
			return -1;
		if (!ip4_options_ok(skb, p->l3_extra))
			return -1;
	}
	/* longer than the frame: truncated; shorter than its headers: garbage */
	if (iplen > frame || iplen < hl)
		return -1;
	seglen = iplen - hl;
	if (seglen < sizeof(struct tcphdr) || seglen < p->th.doff * 4)
		return -1;
	return seglen;
}

#define SC_SUM_ERROR (~0ULL) /* no sum of at most 64 KiB of 32-bit words gets there */

struct sum_walk {
	struct __sk_buff *skb;
	__u64 off;
	__u64 len;
	__u64 done;
	__u64 sum;
	int err;
};

/* One 512-byte piece of a segment: copied (the data may be in page
 * fragments), its tail word zero-padded, summed by bpf_csum_diff(). A
 * bounded loop over up to 128 pieces blew the verifier's budget; bpf_loop
 * checks the body once. */
static long sum_piece(__u32 index, void *ctx)
{
	struct sum_walk *w = ctx;
	struct sc_scratch *s;
	__u32 k = 0;
	__u64 n, r; /* 64-bit: a 32-bit copy would be checked instead of the register passed on */

	if (w->done >= w->len)
		return 1;
	s = bpf_map_lookup_elem(&scratch, &k);
	if (!s)
		goto fail;
	n = w->len - w->done;
	if (n > sizeof(s->b))
		n = sizeof(s->b);
	/* two checks, each after a barrier: clang would merge them into one
	 * (n - 1 > 511) that bounds a copy, not n */
	barrier_var(n);
	if (n == 0)
		goto fail;
	barrier_var(n);
	if (n > sizeof(s->b))
		goto fail;
	if (bpf_skb_load_bytes(w->skb, w->off + w->done, s->b, n))
		goto fail;
	r = (n + 3) & ~3ull;
	if (n != r) {
		/* the rest of the last word: left over from before */
		s->b[n & 511] = 0;
		if (n + 1 < r)
			s->b[(n + 1) & 511] = 0;
		if (n + 2 < r)
			s->b[(n + 2) & 511] = 0;
	}
	barrier_var(r);
	if (r == 0)
		goto fail;
	barrier_var(r);
	if (r > sizeof(s->b))
		goto fail;
	/* a 32-bit partial sum (folded to 16 bits on some architectures: the
	 * same ones' complement value either way) */
	w->sum += (__u32)bpf_csum_diff(NULL, 0, (__be32 *)s->b, r, 0);
	w->done += n;
	return 0;
fail:
	w->err = 1;
	return 1;
}

/* Sum of the 32-bit words of the len bytes at off (a trailing partial word
 * padded with zeros). A SYN without data is summed in place; one with data
 * (up to the MTU, 64 KiB on lo) 512 bytes at a time. */
__noinline __u64 sc_segment_sum(struct __sk_buff *skb, __u64 off, __u64 len)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct sum_walk w = {};
	__u64 sum = 0;
	int i;

	barrier_var(off);
	if (len <= 60 && !(len & 3) && off <= 255) {
		__u32 *p = data + off;

		for (i = 0; i < 15; i++) {
			if (i * 4 >= len)
				return sum;
			if ((void *)(p + i + 1) > data_end)
				break;
			sum += p[i];
		}
		if (i == 15)
			return sum;
	}
	w.skb = skb;
	w.off = off;
	w.len = len;
	bpf_loop(128, sum_piece, &w, 0);
	return w.err || w.done < len ? SC_SUM_ERROR : w.sum;
}

/* tcp_v4_rcv()/tcp_v6_rcv() verify the checksum unless the skb says it was:
 * CHECKSUM_UNNECESSARY (a NIC checked it) and CHECKSUM_PARTIAL (a local
 * sender over veth: the check field holds only the pseudo-header sum) skip
 * the work. CHECKSUM_NONE (no offload, AF_PACKET, BPF_PROG_TEST_RUN) and
 * CHECKSUM_COMPLETE are summed here; for COMPLETE the kernel would trust
 * skb->csum, but that sum covers the Ethernet padding too: one rule is
 * simpler, and a SYN is short. */
__noinline int sc_tcp_checksum_ok(struct __sk_buff *skb, const struct pkt *p, __u32 seglen)
{
	struct sk_buff *kskb = bpf_cast_to_kern_ctx(skb);
	__u8 summed = BPF_CORE_READ_BITFIELD(kskb, ip_summed);
	__u64 sum;

	if (!p)
		return 0;
	if (summed == CHECKSUM_UNNECESSARY || summed == CHECKSUM_PARTIAL)
		return 1;
	sum = sc_segment_sum(skb, p->l4_off, seglen);
	if (sum == SC_SUM_ERROR)
		return 0;
	if (p->v6) {
		struct pseudo6 ph = {};

		__builtin_memcpy(ph.saddr, p->saddr, 16);
		__builtin_memcpy(ph.daddr, p->daddr, 16);
		ph.len = bpf_htonl(seglen);
		ph.proto = SC_IPPROTO_TCP;
		sum = csum_words((const __u32 *)&ph, sizeof(ph) / 4, sum);
	} else {
		struct pseudo4 ph = {};

		ph.saddr = p->saddr[0];
		ph.daddr = p->daddr[0];
		ph.proto = SC_IPPROTO_TCP;
		ph.len = bpf_htons(seglen);
		sum = csum_words((const __u32 *)&ph, sizeof(ph) / 4, sum);
	}
	return csum_fold(sum) == 0xffff;
}

/* Turn the SYN into the SYN-ACK in place and send it back out of the device
 * it came in on. The headers are written with direct packet access and their
 * checksums summed inline: bpf_skb_store_bytes() and bpf_csum_diff() were a
 * third of the SYN path. A CHECKSUM_COMPLETE skb (from a NIC) keeps its
 * skb->csum right: what the rewrite changed is added with bpf_csum_update().
 * On output CHECKSUM_COMPLETE means "carries a full checksum", but the skb can
 * be received again (veth peer, bridge with br_netfilter) and a stale
 * skb->csum then fails validation there ("hw csum failure"). */
__noinline int sc_reply_synack(struct __sk_buff *skb, const struct pkt *p, struct synack_tcp *t,
				__u64 tcplen)
{
	struct sk_buff *kskb = bpf_cast_to_kern_ctx(skb);
	__u32 iphl = p->v6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr);
	void *data, *data_end;
	struct ethhdr *eth;
	__u32 *th, len;
	__u64 sum, old = 0;
	int partial, complete, i;

	barrier_var(tcplen);
	if (!p || !t || tcplen < sizeof(struct tcphdr) || tcplen > sizeof(struct tcphdr) + 20)
		return -1;
	/* A SYN sent by a local stack over veth arrives CHECKSUM_PARTIAL: the
	 * check field holds only the pseudo-header sum and whoever transmits
	 * finishes it from csum_start. Keep that contract: such an skb gets the
	 * pseudo-header sum, any other a full checksum. */
	partial = BPF_CORE_READ_BITFIELD(kskb, ip_summed) == CHECKSUM_PARTIAL;

	/* IPv4 options / IPv6 extension headers are not echoed. Removing them
	 * with BPF_ADJ_ROOM_NET moves the headers in front, not the TCP header,
	 * so a CHECKSUM_PARTIAL csum_start stays right. */
	if (p->l3_extra && bpf_skb_adjust_room(skb, -(__s32)p->l3_extra, BPF_ADJ_ROOM_NET, 0))
		return -1;
	len = sizeof(struct ethhdr) + iphl + tcplen;
	/* a SYN is usually exactly as long as its SYN-ACK */
	if (skb->len != len && bpf_skb_change_tail(skb, len, 0))
		return -1;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	if (data + len > data_end) {
		/* not all in the linear area: direct writes need it there */
		if (bpf_skb_pull_data(skb, len))
			return -1;
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
	}
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return -1;
	/* read after the resize: growing an skb turns COMPLETE into NONE */
	complete = BPF_CORE_READ_BITFIELD(kskb, ip_summed) == CHECKSUM_COMPLETE;
	if (complete)
		old = sc_l3_sum(skb, iphl + tcplen);

	if (p->v6) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		struct pseudo6 ph = {};

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		__builtin_memcpy(ph.saddr, p->daddr, 16);
		__builtin_memcpy(ph.daddr, p->saddr, 16);
		ph.len = bpf_htonl(tcplen);
		ph.proto = SC_IPPROTO_TCP;
		sum = csum_words((const __u32 *)&ph, sizeof(ph) / 4, 0);

		*(__be32 *)ip6 = bpf_htonl(0x60000000);
		ip6->payload_len = bpf_htons(tcplen);
		ip6->nexthdr = SC_IPPROTO_TCP;
		ip6->hop_limit = 64;
		__builtin_memcpy(&ip6->saddr, p->daddr, 16);
		__builtin_memcpy(&ip6->daddr, p->saddr, 16);
		th = (__u32 *)(ip6 + 1);
	} else {
		struct iphdr *ipp = (void *)(eth + 1);
		struct pseudo4 ph = {};
		struct iphdr ip = {};

		if ((void *)(ipp + 1) > data_end)
			return -1;
		ph.saddr = p->daddr[0];
		ph.daddr = p->saddr[0];
		ph.proto = SC_IPPROTO_TCP;
		ph.len = bpf_htons(tcplen);
		sum = csum_words((const __u32 *)&ph, sizeof(ph) / 4, 0);

		ip.version = 4;
		ip.ihl = 5;
		ip.tot_len = bpf_htons(sizeof(ip) + tcplen);
		ip.frag_off = bpf_htons(SC_IP_DF);
		ip.ttl = 64;
		ip.protocol = SC_IPPROTO_TCP;
		ip.saddr = p->daddr[0];
		ip.daddr = p->saddr[0];
		ip.check = ~csum_fold(csum_words((const __u32 *)&ip, sizeof(ip) / 4, 0));
		__builtin_memcpy(ipp, &ip, sizeof(ip));
		th = (__u32 *)(ipp + 1);
	}

	t->th.check = 0;
	if (partial)
		t->th.check = csum_fold(sum);
	else
		t->th.check = ~csum_fold(csum_words((const __u32 *)t, tcplen / 4, sum));
	/* word by word: each store has a constant bound the verifier can check */
#pragma unroll
	for (i = 0; i < sizeof(*t) / 4; i++) {
		if (i * 4 >= tcplen)
			break;
		if ((void *)(th + i + 1) > data_end)
			return -1;
		th[i] = ((const __u32 *)t)[i];
	}
	if (complete)
		bpf_csum_update(skb, csum_sub32(sc_l3_sum(skb, iphl + tcplen), old));

	{
		__u8 mac[6];

		__builtin_memcpy(mac, eth->h_source, 6);
		__builtin_memcpy(eth->h_source, eth->h_dest, 6);
		__builtin_memcpy(eth->h_dest, mac, 6);
	}
	return 0;
}

__noinline int sc_handle_syn(struct __sk_buff *skb, const struct pkt *p)
{
	struct tcp_opts o = {};
	struct netns_opts n = {};
	struct synack_tcp t = {};
	struct sc_config *cfg;
	struct sc_secret *key;
	struct bpf_sock *skc;
	__u32 k = 0, slot, cookie, tcplen, mtu;
	__u16 client_mss, adv_mss;
	int idx, ts, sack, ws, ecn, seglen;
	__u8 data, snd_wscale = 0, rcv_wscale = 0;
	__u8 flags;
	__u64 h;

	if (!p)
		return TC_ACT_SHOT;
	flags = tcp_flags(&p->th);
	count(SC_STAT_SYN_RECEIVED);
	if (flags & (TCPF_RST | TCPF_FIN)) {
		count(SC_STAT_SYN_DROP_MALFORMED);
		return TC_ACT_SHOT;
	}
	if (p->fragment) {
		count(SC_STAT_SYN_DROP_FRAGMENT);
		return TC_ACT_SHOT;
	}
	if (p->bad_ext || (p->v6 && !ip6_options_ok(skb, p))) {
		count(SC_STAT_SYN_DROP_HEADERS);
		return TC_ACT_SHOT;
	}
	seglen = sc_syn_l3_check(skb, p);
	if (seglen < 0) {
		count(SC_STAT_SYN_DROP_MALFORMED);
		return TC_ACT_SHOT;
	}
	if (bad_address(skb, p) || not_local(skb, p)) {
		count(SC_STAT_SYN_DROP_ADDRESS);
		return TC_ACT_SHOT;
	}
	if (parse_options(skb, p, &o)) {
		count(SC_STAT_SYN_DROP_MALFORMED);
		return TC_ACT_SHOT;
	}
	client_mss = o.has_mss ? o.mss : (p->v6 ? SC_MSS6_0 : SC_MSS4_0);
	idx = mss_index(p->v6, client_mss);
	if (idx < 0) {
		count(SC_STAT_SYN_DROP_MSS);
		return TC_ACT_SHOT;
	}
	if (!sc_tcp_checksum_ok(skb, p, seglen)) {
		count(SC_STAT_SYN_DROP_MALFORMED);
		return TC_ACT_SHOT;
	}

	/* Look the exact 4-tuple up before minting a cookie: if a TIME_WAIT,
	 * established or request socket owns it, the kernel must see this SYN
	 * (it recycles TIME_WAIT); our cookie ACK would reach that socket and
	 * never complete. */
	skc = lookup_socket(skb, p);
	if (!skc) {
		count(SC_STAT_SYN_NO_LISTENER);
		return TC_ACT_PASS;
	}
	if (skc->state != SC_TCP_LISTEN) {
		bpf_sk_release(skc);
		count(SC_STAT_SYN_EXISTING_SOCKET);
		return TC_ACT_PASS;
	}
	read_netns(skc, &n);
	bpf_sk_release(skc);
	if (o.md5 && !n.md5_ok) {
		count(SC_STAT_SYN_DROP_MALFORMED);
		return TC_ACT_SHOT;
	}
	if (!n.syncookies) {
		/* the kernel would reset our cookie ACK (cookie_v4_check()) */
		count(SC_STAT_SYN_COOKIES_OFF);
		return TC_ACT_PASS;
	}

	cfg = bpf_map_lookup_elem(&config, &k);
	if (!cfg)
		goto error;
	k = cfg->generation % SC_SECRET_SLOTS;
	key = bpf_map_lookup_elem(&secrets, &k);
	if (!key)
		goto error;

	ts = o.has_ts && n.timestamps;
	sack = o.sack && n.sack;
	ws = o.has_wscale && n.window_scaling;
	ecn = (flags & TCPF_ECE) && (flags & TCPF_CWR) && n.ecn;
	if (ws) {
		snd_wscale = o.wscale > SC_MAX_WSCALE ? SC_MAX_WSCALE : o.wscale;
		rcv_wscale = pick_rcv_wscale(&n, cfg->rmem_max);
	}
	data = (idx << SC_COOKIE_MSS_SHIFT) | (ecn ? SC_COOKIE_ECN : 0) | (sack ? SC_COOKIE_SACK : 0) |
	       (ws ? snd_wscale : SC_COOKIE_WSCALE_MASK);
	slot = current_slot(cfg);
	h = sc_cookie_hash(key, p, p->th.seq, slot, data);
	cookie = ((__u32)h & SC_COOKIE_HASH_MASK) | ((slot & 1) << SC_COOKIE_PARITY_BIT) | data;

	/* our MSS: what the device can take */
	{
		struct sk_buff *kskb = bpf_cast_to_kern_ctx(skb);

		mtu = kskb->dev->mtu; /* a trusted BTF pointer: plain loads */
	}
	mtu -= p->v6 ? 60 : 40;
	adv_mss = mtu > 65535 ? 65535 : mtu < SC_MSS4_0 ? SC_MSS4_0 : mtu;

	t.th.source = p->th.dest;
	t.th.dest = p->th.source;
	t.th.seq = bpf_htonl(cookie);
	t.th.ack_seq = bpf_htonl(bpf_ntohl(p->th.seq) + 1);
	t.th.syn = 1;
	t.th.ack = 1;
	t.th.ece = ecn;
	t.th.window = bpf_htons(65535); /* never scaled in a SYN-ACK (RFC 7323) */
	tcplen = sizeof(struct tcphdr) +
		 write_synack_options(t.opts, adv_mss, sack, ts, (__u32)(h >> 32), o.tsval, ws,
				      rcv_wscale);
	t.th.doff = tcplen / 4;

	if (sc_reply_synack(skb, p, &t, tcplen))
		goto error;
	count(SC_STAT_SYN_ACK_SENT);
	return bpf_redirect(skb->ifindex, 0);
error:
	count(SC_STAT_SYN_DROP_ERROR);
	return TC_ACT_SHOT;
}

/* ---- ACK -> request socket --------------------------------------------- */

/* Returns the data byte of a valid cookie, or -1. */
static __always_inline int check_cookie(const struct pkt *p, const struct sc_config *cfg)
{
	__u32 cookie = bpf_ntohl(p->th.ack_seq) - 1;
	__u32 isn_be = bpf_htonl(bpf_ntohl(p->th.seq) - 1);
	__u32 slot = current_slot(cfg);
	__u8 data = cookie & 0xff;
	struct sc_secret *key;
	__u32 k;

	/* the parity bit says which of the two accepted slots minted it */
	if ((slot & 1) != ((cookie >> SC_COOKIE_PARITY_BIT) & 1))
		slot -= 1;

	k = cfg->generation % SC_SECRET_SLOTS;
	key = bpf_map_lookup_elem(&secrets, &k);
	if (key && ((__u32)sc_cookie_hash(key, p, isn_be, slot, data) & SC_COOKIE_HASH_MASK) ==
			   (cookie & SC_COOKIE_HASH_MASK))
		return data;
	if (!(cfg->flags & SC_CFG_HAVE_PREV))
		return -1;
	k = (cfg->generation - 1) % SC_SECRET_SLOTS;
	key = bpf_map_lookup_elem(&secrets, &k);
	if (key && ((__u32)sc_cookie_hash(key, p, isn_be, slot, data) & SC_COOKIE_HASH_MASK) ==
			   (cookie & SC_COOKIE_HASH_MASK))
		return data;
	return -1;
}

/* An ACK we cannot validate may carry the kernel's own cookie (the kernel
 * answered a SYN we handed it, e.g. for a TIME_WAIT tuple, while its SYN
 * queue overflowed). */
static __always_inline int kernel_cookie(const struct pkt *p)
{
	if (p->v6) {
		struct ipv6hdr ip6 = {};

		__builtin_memcpy(&ip6.saddr, p->saddr, 16);
		__builtin_memcpy(&ip6.daddr, p->daddr, 16);
		return bpf_tcp_raw_check_syncookie_ipv6(&ip6, (struct tcphdr *)&p->th) == 0;
	} else {
		struct iphdr ip = {};

		ip.saddr = p->saddr[0];
		ip.daddr = p->daddr[0];
		return bpf_tcp_raw_check_syncookie_ipv4(&ip, (struct tcphdr *)&p->th) == 0;
	}
}

/* The kernel takes its own cookie only within TCP_SYNCOOKIE_VALID (2 min) of
 * the listener's last SYN queue overflow (tcp_synq_no_recent_overflow()):
 * outside that window checking one (a third of an invalid ACK's cost) is
 * wasted, the kernel would refuse it. HZ is not known here: the window is
 * the kernel's for HZ = 1000, which contains it for every HZ. */
static __always_inline int kernel_cookie_recent(struct bpf_sock *skc)
{
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(skc);
	__u32 now = (__u32)bpf_jiffies64(), last;
	struct sock *sk;

	if (!tp)
		return 1;
	sk = &tp->inet_conn.icsk_inet.sk;
	last = tp->rx_opt.ts_recent_stamp;
	if (BPF_CORE_READ_BITFIELD(&sk->__sk_common, skc_reuseport)) {
		struct sock_reuseport *reuse = sk->sk_reuseport_cb;

		if (reuse)
			last = reuse->synq_overflow_ts;
	}
	/* time_between32(now, last - HZ, last + TCP_SYNCOOKIE_VALID) */
	return now - (last - 1000) <= 1000 + 120 * 1000;
}

__noinline int sc_handle_ack(struct __sk_buff *skb, const struct pkt *p)
{
	struct bpf_tcp_req_attrs attrs = {};
	struct tcp_opts o = {};
	struct netns_opts n = {};
	struct sc_config *cfg;
	struct bpf_sock *skc;
	struct tcp_sock *tp;
	__u32 k = 0;
	int data, ret;

	if (!p)
		return TC_ACT_PASS;
	skc = lookup_socket(skb, p);
	if (!skc) {
		count(SC_STAT_PASS_NO_SOCKET);
		return TC_ACT_PASS;
	}
	if (skc->state != SC_TCP_LISTEN) {
		bpf_sk_release(skc);
		count(SC_STAT_PASS_ESTABLISHED);
		return TC_ACT_PASS;
	}

	cfg = bpf_map_lookup_elem(&config, &k);
	if (!cfg)
		goto reject;
	data = check_cookie(p, cfg);
	if (data < 0) {
		if (kernel_cookie_recent(skc) && kernel_cookie(p)) {
			bpf_sk_release(skc);
			count(SC_STAT_ACK_KERNEL_COOKIE);
			return TC_ACT_PASS;
		}
		goto reject;
	}
	if (parse_options(skb, p, &o)) {
		bpf_sk_release(skc);
		count(SC_STAT_ACK_MALFORMED);
		return TC_ACT_SHOT;
	}
	read_netns(skc, &n);

	attrs.mss = mss_from_index(p->v6, (data >> SC_COOKIE_MSS_SHIFT) & 3);
	if ((data & SC_COOKIE_WSCALE_MASK) != SC_COOKIE_WSCALE_MASK) {
		attrs.wscale_ok = 1;
		attrs.snd_wscale = data & SC_COOKIE_WSCALE_MASK;
		/* not in the cookie: recomputed as at SYN time */
		attrs.rcv_wscale = pick_rcv_wscale(&n, cfg->rmem_max);
	}
	attrs.sack_ok = !!(data & SC_COOKIE_SACK);
	attrs.ecn_ok = !!(data & SC_COOKIE_ECN);
	if (o.has_ts) {
		/* The client echoes our TSval only if our SYN-ACK carried one. The
		 * kernel derives the connection's ts offset from rcv_tsecr. */
		attrs.tstamp_ok = 1;
		attrs.rcv_tsval = o.tsval;
		attrs.rcv_tsecr = o.tsecr;
	}

	tp = bpf_skc_to_tcp_sock(skc);
	if (!tp)
		goto failed;
	/* sk must be the listener from bpf_skc_lookup_tcp() (KF_TRUSTED_ARGS) */
	ret = bpf_sk_assign_tcp_reqsk(skb, (struct sock *)tp, &attrs, sizeof(attrs));
	if (ret < 0)
		goto failed;
	bpf_sk_release(skc);
	count(SC_STAT_ACK_ACCEPTED);
	/* Ours and decided: TC_ACT_OK ends the chain, so no program behind us
	 * (another cookie checker with another secret, say) drops it. */
	return TC_ACT_OK;
failed:
	bpf_sk_release(skc);
	count(SC_STAT_ACK_ASSIGN_FAILED);
	return TC_ACT_SHOT;
reject:
	bpf_sk_release(skc);
	count(SC_STAT_ACK_REJECTED);
	return TC_ACT_SHOT;
}

/* Most of what an interface carries is traffic of other ports. A TCP header
 * right after a plain IPv4 (no options) or IPv6 (no extension headers)
 * header has its destination port at a fixed offset: if that port is not
 * protected the segment passes untouched and uncounted, whatever else
 * parse_packet() would find (a later fragment, too, passes either way). */
static __always_inline int other_port(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__be16 *ports;

	if ((void *)(eth + 1) > data_end)
		return 0;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) + 4 > data_end || *(__u8 *)ip != 0x45 || ip->protocol != SC_IPPROTO_TCP)
			return 0;
		ports = (void *)(ip + 1);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) + 4 > data_end || ip6->version != 6 || ip6->nexthdr != SC_IPPROTO_TCP)
			return 0;
		ports = (void *)(ip6 + 1);
	} else {
		return 0;
	}
	return !port_protected(bpf_ntohs(ports[1]));
}

SEC("tc")
int syncookie_ingress(struct __sk_buff *skb)
{
	struct pkt p = {};
	__u8 flags;
	int r;

	if (other_port(skb))
		return TC_ACT_PASS;
	/* keeps clang from reusing skb + offsetof(data_end) computed above:
	 * the verifier refuses a load through a modified ctx pointer */
	barrier_var(skb);
	r = parse_packet(skb, &p);
	if (r == PARSE_NOT_OURS)
		return TC_ACT_PASS;
	if (r == PARSE_DROP_HEADERS) {
		/* we cannot see whether this is a SYN to a protected port */
		count(SC_STAT_SYN_DROP_HEADERS);
		return TC_ACT_SHOT;
	}
	if (r == PARSE_DROP_FRAGMENT) {
		count(SC_STAT_SYN_DROP_FRAGMENT);
		return TC_ACT_SHOT;
	}
	if (!port_protected(bpf_ntohs(p.th.dest)))
		return TC_ACT_PASS;

	flags = tcp_flags(&p.th);
	if (flags & TCPF_SYN) {
		if (flags & TCPF_ACK) {
			count(SC_STAT_PASS_OTHER); /* a SYN-ACK: an outgoing connection */
			return TC_ACT_PASS;
		}
		return sc_handle_syn(skb, &p);
	}
	if ((flags & TCPF_RST) || !(flags & TCPF_ACK) || p.fragment) {
		count(SC_STAT_PASS_OTHER);
		return TC_ACT_PASS;
	}
	return sc_handle_ack(skb, &p);
}

char _license[] SEC("license") = "GPL";

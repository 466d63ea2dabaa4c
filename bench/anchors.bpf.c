// SPDX-License-Identifier: GPL-2.0
/*
 * Anchor programs for `npm run bench`: what the per-packet cost of
 * bpf/syncookie.bpf.c is compared with, test-run on the same packets.
 *
 *   noop          returns TC_ACT_OK: the floor (BPF_PROG_TEST_RUN's own cost)
 *   gen4, gen6    the kernel's SYN cookie maths on a SYN:
 *                 bpf_tcp_raw_gen_syncookie_ipv4/6 (MSS option parse + hash)
 *   check4, check6 the kernel's cookie check on an ACK:
 *                 bpf_tcp_raw_check_syncookie_ipv4/6
 *
 * Headers are read in place (direct packet access): the anchors carry as
 * little besides the helper call as a program can. Packets are Ethernet,
 * then an IPv4 header without options or a bare IPv6 header, then TCP.
 * A packet of another shape returns TC_ACT_UNSPEC (-1), a helper error
 * TC_ACT_SHOT, success TC_ACT_OK: bench/ checks the verdicts.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define TC_ACT_UNSPEC (-1)
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD

SEC("tc")
int noop(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

/* The helpers take th_len as a constant-bounded size of checked packet
 * memory: one branch per legal header length keeps each bound a constant. */
#define FOR_EACH_TCP_LEN(X) X(20) X(24) X(28) X(32) X(36) X(40) X(44) X(48) X(52) X(56) X(60)

SEC("tc")
int gen4(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *th = (void *)(ip + 1);
	__u32 len;
	__s64 r = -1;

	if ((void *)(th + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5)
		return TC_ACT_UNSPEC;
	len = th->doff * 4;
#define GEN4(L)                                                                   \
	if (len == L) {                                                           \
		if ((void *)th + L > data_end)                                    \
			return TC_ACT_UNSPEC;                                     \
		r = bpf_tcp_raw_gen_syncookie_ipv4(ip, th, L);                    \
	}
	FOR_EACH_TCP_LEN(GEN4)
	return r < 0 ? TC_ACT_SHOT : TC_ACT_OK;
}

SEC("tc")
int gen6(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	struct tcphdr *th = (void *)(ip6 + 1);
	__u32 len;
	__s64 r = -1;

	if ((void *)(th + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IPV6) ||
	    ip6->nexthdr != IPPROTO_TCP)
		return TC_ACT_UNSPEC;
	len = th->doff * 4;
#define GEN6(L)                                                                   \
	if (len == L) {                                                           \
		if ((void *)th + L > data_end)                                    \
			return TC_ACT_UNSPEC;                                     \
		r = bpf_tcp_raw_gen_syncookie_ipv6(ip6, th, L);                   \
	}
	FOR_EACH_TCP_LEN(GEN6)
	return r < 0 ? TC_ACT_SHOT : TC_ACT_OK;
}

SEC("tc")
int check4(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *th = (void *)(ip + 1);

	if ((void *)(th + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5)
		return TC_ACT_UNSPEC;
	return bpf_tcp_raw_check_syncookie_ipv4(ip, th) ? TC_ACT_SHOT : TC_ACT_OK;
}

SEC("tc")
int check6(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	struct tcphdr *th = (void *)(ip6 + 1);

	if ((void *)(th + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IPV6) ||
	    ip6->nexthdr != IPPROTO_TCP)
		return TC_ACT_UNSPEC;
	return bpf_tcp_raw_check_syncookie_ipv6(ip6, th) ? TC_ACT_SHOT : TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one header shared by the BPF program (bpf/syncookie.bpf.c), the C++
 * binding (binding/) and, through the binding's layout export, lib/layout.ts.
 *
 * Plain C, fixed-width kernel types, explicit padding, a size check for every
 * struct that crosses the user/kernel boundary. Change a struct here and the
 * TypeScript side refuses to load until lib/layout.ts agrees.
 */
#ifndef SYNCOOKIE_H
#define SYNCOOKIE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Secrets live in a ring of SC_SECRET_SLOTS; the current one is
 * ring[generation % SC_SECRET_SLOTS], the previous one the slot before it.
 * A rotation writes the slot after the current one (which no reader touches),
 * then bumps generation: readers never see a half-written key. */
#define SC_SECRET_SLOTS 4

/* Protected destination ports: one bit per port, bit (port & 63) of
 * bits[port >> 6]. */
#define SC_PORT_WORDS 1024

/* Cookie layout constants (docs/cookie-format.md is the reference). */
#define SC_COOKIE_HASH_MASK 0xfffffe00u /* 23 bits of SipHash output */
#define SC_COOKIE_PARITY_BIT 8          /* low bit of the time slot */
#define SC_COOKIE_MSS_SHIFT 6           /* 2 bits: index into the MSS table */
#define SC_COOKIE_ECN 0x20u
#define SC_COOKIE_SACK 0x10u
#define SC_COOKIE_WSCALE_MASK 0x0fu     /* 15 = the SYN had no window scale */
#define SC_SLOT_SHIFT_MS 16             /* time slot = CLOCK_TAI ms >> 16 (65.536 s) */

/* MSS tables (kept as #defines, not .rodata arrays: see KERNEL-NOTES). */
#define SC_MSS4_0 536
#define SC_MSS4_1 1300
#define SC_MSS4_2 1460
#define SC_MSS4_3 8960
#define SC_MSS6_0 1220
#define SC_MSS6_1 1420
#define SC_MSS6_2 1440
#define SC_MSS6_3 8940

struct sc_secret {
	__u64 k0; /* little-endian bytes 0..7 of the 16-byte key */
	__u64 k1; /* little-endian bytes 8..15 */
};
_Static_assert(sizeof(struct sc_secret) == 16, "sc_secret layout");

#define SC_CFG_HAVE_PREV 0x1u /* ring[generation - 1] holds a valid previous secret */
#define SC_CFG_LOCAL_ONLY 0x2u /* the route maps are filled: answer only SYNs to local addresses */
#define SC_CFG_LOCAL_NETS 0x4u /* a local route for a prefix (not one address, not 127/8) exists */

struct sc_config {
	__u32 generation;      /* current secret: ring[generation % SC_SECRET_SLOTS] */
	__u32 flags;           /* SC_CFG_* */
	__u32 rmem_max;        /* net.core.rmem_max: global, not per netns, so user space copies it */
	__u32 pad;
	__u64 now_ms_override; /* tests only: if non-zero, the clock (ms) instead of CLOCK_TAI */
};
_Static_assert(sizeof(struct sc_config) == 24, "sc_config layout");

struct sc_ports {
	__u64 bits[SC_PORT_WORDS];
};
_Static_assert(sizeof(struct sc_ports) == 8192, "sc_ports layout");

/*
 * The network namespace's routes of the types that decide local delivery
 * (RTN_LOCAL, RTN_BROADCAST, RTN_ANYCAST, RTN_MULTICAST), from every table,
 * kept by lib/routes.ts from rtnetlink. IPv6 addresses; IPv4 is
 * ::ffff:a.b.c.d, prefix 96 + its length. The `routes` LPM trie holds them
 * all; the routes for one address (/32, /128: every interface address, its
 * broadcast) are also in the `hosts` hash, whose hit is the longest match
 * there is. A destination is looked up in the hash, then in the trie only
 * when SC_CFG_LOCAL_NETS says a prefix is local (AnyIP); a source (the
 * IPv4 martian check) in the trie.
 */
#define SC_ROUTE_ENTRIES 65536
#define SC_RTN_LOCAL 2 /* RTN_LOCAL of linux/rtnetlink.h */

struct sc_route_key {
	__u32 prefixlen; /* bits of addr that count, as struct bpf_lpm_trie_key_u8 */
	__u8 addr[16];   /* network byte order */
};
_Static_assert(sizeof(struct sc_route_key) == 20, "sc_route_key layout");

struct sc_route {
	__u32 type; /* RTN_* */
};
_Static_assert(sizeof(struct sc_route) == 4, "sc_route layout");

/*
 * Every verdict and every reason, one counter each. X(ENUM_SUFFIX, tsName).
 * The TypeScript field names are the second column, one to one.
 */
#define SC_STATS(X)                                                          \
	X(SYN_RECEIVED, synReceived)           /* SYN to a protected port */      \
	X(SYN_ACK_SENT, synAckSent)            /* answered with a cookie */       \
	X(SYN_EXISTING_SOCKET, synExistingSocket) /* 4-tuple has a socket (TIME_WAIT, ...): passed to the kernel */ \
	X(SYN_NO_LISTENER, synNoListener)      /* nobody listens: passed, the kernel resets */ \
	X(SYN_COOKIES_OFF, synCookiesOff)      /* net.ipv4.tcp_syncookies = 0 in the netns: passed, unprotected */ \
	X(SYN_DROP_MALFORMED, synDropMalformed) /* truncated header or options, bad flags (SYN+FIN/RST) */ \
	X(SYN_DROP_FRAGMENT, synDropFragment)  /* SYN in an IP fragment */        \
	X(SYN_DROP_HEADERS, synDropHeaders)    /* IPv6 extension headers we do not answer */ \
	X(SYN_DROP_ADDRESS, synDropAddress)    /* not a local unicast destination, bad source, not PACKET_HOST */ \
	X(SYN_DROP_MSS, synDropMss)            /* client MSS below the table (536 v4, 1220 v6) */ \
	X(SYN_DROP_ERROR, synDropError)        /* building or sending the SYN-ACK failed */ \
	X(ACK_ACCEPTED, ackAccepted)           /* valid cookie: request socket assigned */ \
	X(ACK_REJECTED, ackRejected)           /* no listener socket for it and no valid cookie: dropped */ \
	X(ACK_KERNEL_COOKIE, ackKernelCookie)  /* the kernel's own syncookie: passed to the kernel */ \
	X(ACK_ASSIGN_FAILED, ackAssignFailed)  /* bpf_sk_assign_tcp_reqsk() refused: dropped */ \
	X(ACK_MALFORMED, ackMalformed)         /* truncated header or options: dropped */ \
	X(PASS_ESTABLISHED, passEstablished)   /* segment of an existing connection */ \
	X(PASS_NO_SOCKET, passNoSocket)        /* no socket at all: passed, the kernel resets */ \
	X(PASS_OTHER, passOther)               /* RST, SYN-ACK, non-first fragment, ...: passed */

enum sc_stat {
#define SC_STAT_ENUM(name, ts) SC_STAT_##name,
	SC_STATS(SC_STAT_ENUM)
#undef SC_STAT_ENUM
	SC_STAT_COUNT
};

struct sc_stats {
	__u64 counter[SC_STAT_COUNT];
};
_Static_assert(sizeof(struct sc_stats) == SC_STAT_COUNT * 8, "sc_stats layout");

#endif /* SYNCOOKIE_H */

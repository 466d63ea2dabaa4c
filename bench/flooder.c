// SYN flooder for `npm run bench:flood`: spoofed IPv4 SYNs over AF_PACKET,
// sendmmsg() in batches, rate-limited, for a bounded time.
//
//   flooder IFNAME SRC_MAC DST_MAC DST_IP DST_PORT SRC_NET/PREFIX PPS SECONDS
//
// PPS 0 sends as fast as one CPU can. Sources are random addresses of
// SRC_NET/PREFIX (which the caller routes back to where nothing answers),
// random source ports and ISNs; each SYN carries the options a Linux client
// sends (MSS 1460, SACK_PERM, timestamps, window scale 7), checksums computed.
// Prints one JSON line: {"sent":N,"seconds":S,"pps":P,"errors":E}.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define FRAME_LEN (14 + 20 + 40)

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t next_rand(void)
{
	/* xorshift64*: fast, and good enough to spread addresses and ports */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (uint32_t)((rng * 0x2545f4914f6cdd1dull) >> 32);
}

static int parse_mac(const char *s, uint8_t *mac)
{
	return sscanf(s, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4],
		      &mac[5]) == 6 ? 0 : -1;
}

static uint32_t sum16(const uint8_t *p, size_t n, uint32_t acc)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		acc += (uint32_t)p[i] << 8 | p[i + 1];
	return acc;
}

static uint16_t fold(uint32_t acc)
{
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	return (uint16_t)~acc;
}

static void put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v & 0xff; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v >> 16); put16(p + 2, v & 0xffff); }

static void build(uint8_t *f, const uint8_t *smac, const uint8_t *dmac, uint32_t saddr,
		  uint32_t daddr, uint16_t sport, uint16_t dport, uint32_t seq, uint32_t tsval)
{
	uint8_t *ip = f + 14, *th = ip + 20, *o = th + 20;
	uint32_t acc;

	memset(f, 0, FRAME_LEN);
	memcpy(f, dmac, 6);
	memcpy(f + 6, smac, 6);
	put16(f + 12, ETH_P_IP);

	ip[0] = 0x45;
	put16(ip + 2, 20 + 40);
	put16(ip + 4, (uint16_t)next_rand());
	put16(ip + 6, 0x4000); /* DF */
	ip[8] = 64;
	ip[9] = IPPROTO_TCP;
	put32(ip + 12, saddr);
	put32(ip + 16, daddr);
	put16(ip + 10, fold(sum16(ip, 20, 0)));

	put16(th, sport);
	put16(th + 2, dport);
	put32(th + 4, seq);
	th[12] = (40 / 4) << 4;
	th[13] = 0x02; /* SYN */
	put16(th + 14, 64240);
	o[0] = 2, o[1] = 4, put16(o + 2, 1460);          /* MSS */
	o[4] = 4, o[5] = 2;                              /* SACK_PERM */
	o[6] = 8, o[7] = 10, put32(o + 8, tsval);        /* TS (TSecr 0) */
	o[16] = 1, o[17] = 3, o[18] = 3, o[19] = 7;      /* NOP, WS 7 */

	acc = sum16(ip + 12, 8, 0) + IPPROTO_TCP + 40;  /* pseudo header */
	put16(th + 16, fold(sum16(th, 40, acc)));
}

int main(int argc, char **argv)
{
	uint8_t smac[6], dmac[6], frames[BATCH][FRAME_LEN];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_ll sll = {0};
	struct in_addr dst, net;
	uint64_t start, deadline, sent = 0, errors = 0, interval;
	uint32_t daddr, base, span, tsval = 1;
	unsigned long pps, seconds, prefix;
	uint16_t dport;
	char *slash;
	int fd;

	if (argc != 9) {
		fprintf(stderr, "usage: %s IFNAME SRC_MAC DST_MAC DST_IP DST_PORT SRC_NET/PREFIX PPS SECONDS\n", argv[0]);
		return 2;
	}
	if (parse_mac(argv[2], smac) || parse_mac(argv[3], dmac) || inet_pton(AF_INET, argv[4], &dst) != 1) {
		fprintf(stderr, "flooder: bad MAC or address\n");
		return 2;
	}
	dport = (uint16_t)atoi(argv[5]);
	slash = strchr(argv[6], '/');
	if (!slash) {
		fprintf(stderr, "flooder: source range must be NET/PREFIX\n");
		return 2;
	}
	*slash = 0;
	prefix = strtoul(slash + 1, NULL, 10);
	if (inet_pton(AF_INET, argv[6], &net) != 1 || prefix < 8 || prefix > 32) {
		fprintf(stderr, "flooder: bad source range\n");
		return 2;
	}
	pps = strtoul(argv[7], NULL, 10);
	seconds = strtoul(argv[8], NULL, 10);
	if (seconds == 0 || seconds > 120) {
		fprintf(stderr, "flooder: SECONDS must be 1..120\n");
		return 2;
	}
	daddr = ntohl(dst.s_addr);
	span = prefix == 32 ? 1 : 1u << (32 - prefix);
	base = ntohl(net.s_addr) & ~(span - 1);
	rng ^= (uint64_t)getpid() << 32 ^ now_ns();

	fd = socket(AF_PACKET, SOCK_RAW, 0); /* protocol 0: send only, receive nothing */
	if (fd < 0) {
		perror("flooder: socket(AF_PACKET)");
		return 1;
	}
	sll.sll_family = AF_PACKET;
	sll.sll_ifindex = (int)if_nametoindex(argv[1]);
	sll.sll_halen = 6;
	memcpy(sll.sll_addr, dmac, 6);
	if (sll.sll_ifindex == 0 || bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		perror("flooder: bind");
		return 1;
	}
	for (int i = 0; i < BATCH; i++) {
		iov[i].iov_base = frames[i];
		iov[i].iov_len = FRAME_LEN;
		memset(&msgs[i], 0, sizeof(msgs[i]));
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}

	/* Rate limit: batch k may leave no earlier than start + k * interval. */
	interval = pps ? (uint64_t)BATCH * 1000000000ull / pps : 0;
	start = now_ns();
	deadline = start + (uint64_t)seconds * 1000000000ull;
	for (uint64_t k = 0;; k++) {
		uint64_t t = now_ns();
		int n;

		if (t >= deadline)
			break;
		if (interval) {
			uint64_t due = start + k * interval;

			if (due > t) {
				struct timespec ts = {0, 0};
				uint64_t wait = due - t;

				if (wait > 50000) { /* sleep most of it, spin the rest */
					ts.tv_nsec = (long)(wait - 50000);
					nanosleep(&ts, NULL);
				}
				while (now_ns() < due)
					;
			}
		}
		for (int i = 0; i < BATCH; i++)
			build(frames[i], smac, dmac, base + next_rand() % span, daddr,
			      (uint16_t)(1024 + next_rand() % 64512), dport, next_rand(), tsval++);
		n = sendmmsg(fd, msgs, BATCH, 0);
		if (n < 0) {
			if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR) {
				perror("flooder: sendmmsg");
				return 1;
			}
			errors++;
			continue;
		}
		sent += (uint64_t)n;
	}
	{
		double secs = (double)(now_ns() - start) / 1e9;

		printf("{\"sent\":%llu,\"seconds\":%.3f,\"pps\":%.0f,\"errors\":%llu}\n",
		       (unsigned long long)sent, secs, sent / secs, (unsigned long long)errors);
	}
	return 0;
}

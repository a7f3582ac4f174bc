/*
 * bench/helpers/ct_fill.c - fill the conntrack table of the calling network
 * namespace with N UDP entries like the lab's SNATed flows, through batched
 * ctnetlink (hundreds of CREATE requests per sendmsg), for the bulk figure's
 * large sizes: making a million flows with real traffic through the lab would
 * take hours at the pace its software switch allows.
 *
 *   ct_fill N [SPORT [TIMEOUT]]
 *
 * Entry i: UDP 198.51.100.50:(SPORT + i / 50000) -> 203.0.113.254:(10000 + i % 50000),
 * SNAT to 203.0.113.1 (same port), status SEEN_REPLY|ASSURED, TIMEOUT seconds
 * (default 3600). SPORT defaults to 30000 (the bench's live flows use 40000 and
 * up). Prints "created N existed M failed K"; exits 1 if any failed. Bounded by
 * N (at most 4 000 000).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <linux/netfilter/nfnetlink_conntrack.h>

#include "ct_create.h"

#define PER_SEND 256
#define MSG_MAX	 1024
#define MAX_N	 4000000UL

struct counts {
	unsigned long created, existed, failed;
	uint32_t seq_lo, seq_hi;
};

static int err_cb(const struct nlmsghdr *nlh, void *data)
{
	struct counts *c = data;
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	if (nlh->nlmsg_seq < c->seq_lo || nlh->nlmsg_seq > c->seq_hi)
		return MNL_CB_OK;
	if (e->error == 0)
		c->created++;
	else if (e->error == -EEXIST)
		c->existed++;
	else {
		if (c->failed == 0)
			fprintf(stderr, "ct_fill: create: %s\n", strerror(-e->error));
		c->failed++;
	}
	return MNL_CB_OK;
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 4) {
		fprintf(stderr, "usage: ct_fill N [SPORT [TIMEOUT]]\n");
		return 2;
	}
	char *end;
	unsigned long n = strtoul(argv[1], &end, 10);
	unsigned long sport0 = argc > 2 ? strtoul(argv[2], NULL, 10) : 30000;
	unsigned long timeout = argc > 3 ? strtoul(argv[3], NULL, 10) : 3600;
	if (*end || n == 0 || n > MAX_N || sport0 == 0 || sport0 + n / 50000 > 65535 ||
	    timeout == 0) {
		fprintf(stderr, "ct_fill: bad arguments\n");
		return 2;
	}
	struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);
	if (nl == NULL || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		perror("ct_fill: netlink");
		return 1;
	}
	int fd = mnl_socket_get_fd(nl);
	int one = 1, sz = 4 << 20;
	setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz));
	static char buf[PER_SEND * MSG_MAX];
	static char rbuf[1 << 20];
	struct counts c = {0};
	uint32_t seq = (uint32_t)time(NULL);
	struct nf_conntrack *ct = nfct_new();
	if (ct == NULL)
		return 1;
	for (unsigned long i = 0; i < n;) {
		struct mnl_nlmsg_batch *b = mnl_nlmsg_batch_start(buf, sizeof(buf));
		c.seq_lo = seq + 1;
		for (int k = 0; k < PER_SEND && i < n; k++, i++) {
			uint16_t sp = (uint16_t)(sport0 + i / 50000),
				 dp = (uint16_t)(10000 + i % 50000);
			ct_create_put(b, ct, ++seq, sp, dp, (uint32_t)timeout);
		}
		c.seq_hi = seq;
		if (mnl_socket_sendto(nl, mnl_nlmsg_batch_head(b), mnl_nlmsg_batch_size(b)) < 0) {
			perror("ct_fill: send");
			return 1;
		}
		mnl_nlmsg_batch_stop(b);
		/* every reply is queued by the time sendmsg returns */
		for (;;) {
			ssize_t r = recv(fd, rbuf, sizeof(rbuf), MSG_DONTWAIT);
			if (r < 0) {
				if (errno == ENOBUFS) {
					fprintf(stderr, "ct_fill: replies lost (receive buffer)\n");
					continue;
				}
				break;
			}
			/* one acknowledgement (NLMSG_ERROR) per request */
			const struct nlmsghdr *nlh = (const struct nlmsghdr *)rbuf;
			int left = (int)r;
			while (mnl_nlmsg_ok(nlh, left)) {
				if (nlh->nlmsg_type == NLMSG_ERROR)
					err_cb(nlh, &c);
				nlh = mnl_nlmsg_next(nlh, &left);
			}
		}
	}
	nfct_destroy(ct);
	mnl_socket_close(nl);
	printf("created %lu existed %lu failed %lu\n", c.created, c.existed, c.failed);
	return c.failed ? 1 : 0;
}

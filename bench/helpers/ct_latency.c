/*
 * bench/helpers/ct_latency.c - replication latency: create conntrack entries in one
 * network namespace at a fixed rate and time their arrival in another's table.
 *
 *   ct_latency MASTER_NETNS BACKUP_NETNS N RATE [SPORT]
 *
 * MASTER_NETNS and BACKUP_NETNS are paths (/run/netns/NAME). The process opens a
 * ctnetlink socket subscribed to NEW events in the backup's namespace, then a
 * request socket in the master's, and creates N UDP entries there, RATE per
 * second in 1 ms steps, shaped like ct_fill's (the lab's SNATed flows):
 * 198.51.100.50:SPORT -> 203.0.113.254:(10000 + i), SNAT to 203.0.113.1, i < N.
 * Whatever replicates the master's table (carpd, conntrackd) writes them into the
 * backup's; an entry's latency is the time from the request that created it to
 * the NEW event for it in the backup (both CLOCK_MONOTONIC, one machine).
 *
 * Prints one JSON object: n, rate, created, arrived, p50_ms, p99_ms, max_ms,
 * create_s (first to last request). Waits at most 5 s after the last request.
 * Bounded: N <= 50000, RATE <= 100000. Exit 1 if any creation failed or an entry
 * never arrived. With CT_LATENCY_SLOW set, it also prints (stderr), per 100 ms of
 * the run, how many entries took over 2 ms and the slowest: where a tail comes
 * from.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>

#include "ct_create.h"

#define MAX_N	   50000UL
#define MAX_RATE   100000UL
#define MSG_MAX	   1024
#define PER_STEP   256 /* requests per sendmsg at most */
#define DRAIN_NS   (5 * 1000000000LL)
#define DPORT_BASE 10000

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int enter_netns(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
		fprintf(stderr, "ct_latency: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

struct run {
	unsigned long n, created, failed, arrived;
	uint16_t sport;
	int64_t *t_create, *t_arrive;
	struct nf_conntrack *parsed;
};

/* NEW events in the backup: stamp the ones that are ours */
static void read_events(struct run *r, int fd, char *buf, size_t len)
{
	uint32_t src = inet_addr("198.51.100.50");
	for (int i = 0; i < 256; i++) {
		ssize_t got = recv(fd, buf, len, MSG_DONTWAIT);
		if (got < 0) {
			if (errno == ENOBUFS) {
				fprintf(stderr,
					"ct_latency: backup events lost (receive buffer)\n");
				continue;
			}
			return;
		}
		int64_t t = now_ns();
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
		int left = (int)got;
		for (; mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left)) {
			if ((nlh->nlmsg_type & 0xff) != IPCTNL_MSG_CT_NEW)
				continue;
			if (nfct_nlmsg_parse(nlh, r->parsed) < 0)
				continue;
			if (nfct_get_attr_u8(r->parsed, ATTR_L3PROTO) != AF_INET ||
			    nfct_get_attr_u8(r->parsed, ATTR_L4PROTO) != IPPROTO_UDP ||
			    nfct_get_attr_u32(r->parsed, ATTR_IPV4_SRC) != src ||
			    ntohs(nfct_get_attr_u16(r->parsed, ATTR_PORT_SRC)) != r->sport)
				continue;
			unsigned long k = ntohs(nfct_get_attr_u16(r->parsed, ATTR_PORT_DST));
			if (k < DPORT_BASE || k - DPORT_BASE >= r->n)
				continue;
			k -= DPORT_BASE;
			if (r->t_arrive[k] == 0 && r->t_create[k] != 0) {
				r->t_arrive[k] = t;
				r->arrived++;
			}
		}
	}
}

/* acknowledgements of the master's creations */
static void read_acks(struct run *r, int fd, char *buf, size_t len)
{
	for (;;) {
		ssize_t got = recv(fd, buf, len, MSG_DONTWAIT);
		if (got < 0)
			return;
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
		int left = (int)got;
		for (; mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left)) {
			if (nlh->nlmsg_type != NLMSG_ERROR)
				continue;
			const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
			if (e->error == 0) {
				r->created++;
			} else {
				if (r->failed == 0)
					fprintf(stderr, "ct_latency: create: %s\n",
						strerror(-e->error));
				r->failed++;
			}
		}
	}
}

int main(int argc, char **argv)
{
	if (argc < 5 || argc > 6) {
		fprintf(stderr, "usage: ct_latency MASTER_NETNS BACKUP_NETNS N RATE [SPORT]\n");
		return 2;
	}
	char *e1, *e2;
	struct run r = {0};
	r.n = strtoul(argv[3], &e1, 10);
	unsigned long rate = strtoul(argv[4], &e2, 10);
	unsigned long sport = argc > 5 ? strtoul(argv[5], NULL, 10) : 20000;
	if (*e1 || *e2 || r.n == 0 || r.n > MAX_N || rate == 0 || rate > MAX_RATE || sport == 0 ||
	    sport > 65535) {
		fprintf(stderr, "ct_latency: bad arguments\n");
		return 2;
	}
	r.sport = (uint16_t)sport;
	r.t_create = calloc(r.n, sizeof(int64_t));
	r.t_arrive = calloc(r.n, sizeof(int64_t));
	r.parsed = nfct_new();
	static char buf[PER_STEP * MSG_MAX], rbuf[1 << 20];
	if (r.t_create == NULL || r.t_arrive == NULL || r.parsed == NULL)
		return 1;

	int sz = 8 << 20, one = 1;
	if (enter_netns(argv[2]) < 0)
		return 1;
	struct mnl_socket *ev = mnl_socket_open(NETLINK_NETFILTER);
	if (ev == NULL || mnl_socket_bind(ev, NF_NETLINK_CONNTRACK_NEW, MNL_SOCKET_AUTOPID) < 0) {
		perror("ct_latency: backup event socket");
		return 1;
	}
	setsockopt(mnl_socket_get_fd(ev), SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz));
	if (enter_netns(argv[1]) < 0)
		return 1;
	struct mnl_socket *req = mnl_socket_open(NETLINK_NETFILTER);
	if (req == NULL || mnl_socket_bind(req, 0, MNL_SOCKET_AUTOPID) < 0) {
		perror("ct_latency: master request socket");
		return 1;
	}
	int rfd = mnl_socket_get_fd(req), efd = mnl_socket_get_fd(ev);
	setsockopt(rfd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	setsockopt(rfd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz));

	struct nf_conntrack *ct = nfct_new();
	if (ct == NULL)
		return 1;
	uint32_t seq = (uint32_t)time(NULL);
	int64_t t0 = now_ns(), t_last = t0;
	unsigned long i = 0;
	while (i < r.n) {
		/* the entries due by now, at most PER_STEP in one sendmsg */
		unsigned long due =
			(unsigned long)((now_ns() - t0) / 1000 * (int64_t)rate / 1000000) + 1;
		if (due > r.n)
			due = r.n;
		if (due > i) {
			struct mnl_nlmsg_batch *b = mnl_nlmsg_batch_start(buf, sizeof(buf));
			unsigned long first = i;
			for (int k = 0; k < PER_STEP && i < due; k++, i++) {
				ct_create_put(b, ct, ++seq, r.sport, (uint16_t)(DPORT_BASE + i),
					      600);
			}
			int64_t t = now_ns();
			for (unsigned long k = first; k < i; k++)
				r.t_create[k] = t;
			if (mnl_socket_sendto(req, mnl_nlmsg_batch_head(b),
					      mnl_nlmsg_batch_size(b)) < 0) {
				perror("ct_latency: send");
				return 1;
			}
			mnl_nlmsg_batch_stop(b);
			t_last = now_ns();
			read_acks(&r, rfd, rbuf, sizeof(rbuf));
		}
		/* wait for the backup's events until the next 1 ms step */
		int64_t next = t0 + (int64_t)((i + 1) * 1000000000ULL / rate);
		int64_t wait = next - now_ns();
		struct pollfd p = {.fd = efd, .events = POLLIN};
		if (poll(&p, 1, wait > 0 ? (int)((wait + 999999) / 1000000) : 0) > 0)
			read_events(&r, efd, rbuf, sizeof(rbuf));
	}
	while (r.arrived < r.n && now_ns() - t_last < DRAIN_NS) {
		struct pollfd p = {.fd = efd, .events = POLLIN};
		if (poll(&p, 1, 100) > 0)
			read_events(&r, efd, rbuf, sizeof(rbuf));
	}
	read_acks(&r, rfd, rbuf, sizeof(rbuf));

	if (getenv("CT_LATENCY_SLOW") != NULL) {
		/* where the slow ones were: per 100 ms of the run, count over 2 ms and worst */
		for (unsigned long b0 = 0; b0 < r.n; b0 += rate / 10) {
			unsigned long slow = 0;
			int64_t worst = 0;
			for (unsigned long k = b0; k < r.n && k < b0 + rate / 10; k++) {
				int64_t l = r.t_arrive[k] ? r.t_arrive[k] - r.t_create[k] : 0;
				slow += l > 2000000;
				worst = l > worst ? l : worst;
			}
			fprintf(stderr, "%5.1f s: %4lu over 2 ms, worst %.1f ms\n",
				(double)b0 / rate, slow, worst / 1e6);
		}
	}
	int64_t *lat = calloc(r.n, sizeof(int64_t));
	unsigned long m = 0;
	for (unsigned long k = 0; k < r.n && lat; k++)
		if (r.t_arrive[k])
			lat[m++] = r.t_arrive[k] - r.t_create[k];
	double p50 = 0, p99 = 0, max = 0;
	if (m) {
		qsort(lat, m, sizeof(*lat), cmp_i64);
		p50 = lat[m / 2] / 1e6;
		p99 = lat[(m * 99) / 100 < m ? (m * 99) / 100 : m - 1] / 1e6;
		max = lat[m - 1] / 1e6;
	}
	printf("{\"n\":%lu,\"rate\":%lu,\"created\":%lu,\"failed\":%lu,\"arrived\":%lu,"
	       "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"create_s\":%.3f}\n",
	       r.n, rate, r.created, r.failed, r.arrived, p50, p99, max, (t_last - t0) / 1e9);
	free(lat);
	nfct_destroy(ct);
	nfct_destroy(r.parsed);
	mnl_socket_close(req);
	mnl_socket_close(ev);
	free(r.t_create);
	free(r.t_arrive);
	return r.failed || r.arrived < r.n ? 1 : 0;
}

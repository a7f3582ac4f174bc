/* daemon/actmark.c - see actmark.h. The table is installed with libnftables
 * (nft.h: loaded for that and unloaded again, since a resident libnftables and
 * its context cost about 3.5 MiB); the bucket turns, 0.8 a second, are one
 * nf_tables batch each, written here with libmnl. */
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "daemon/actmark.h"
#include "daemon/carpd.h"
#include "daemon/nft.h"

struct actmark {
	struct event *tick_ev;
	struct mnl_socket *nl;
	uint32_t seq;
	uint32_t bit;
	unsigned tick;
	/* what each bucket asks for now: 0 or 1 */
	uint8_t tcp[ACT_BUCKETS], other[ACT_BUCKETS];
	actmark_lost_cb lost;
	void *arg;
	struct actmark_stats st;
};

static int install(struct actmark *am)
{
	char elems_tcp[ACT_BUCKETS * 16], elems_other[ACT_BUCKETS * 16];
	size_t nt = 0, no = 0;
	for (int b = 0; b < ACT_BUCKETS; b++) {
		nt += (size_t)snprintf(elems_tcp + nt, sizeof(elems_tcp) - nt, "%s%d : goto to%u",
				       b ? ", " : "", b, am->tcp[b]);
		no += (size_t)snprintf(elems_other + no, sizeof(elems_other) - no,
				       "%s%d : goto to%u", b ? ", " : "", b, am->other[b]);
	}
	char cmd[2048];
	/* "add" then "delete" clears a table a crashed run left, in the same
	 * transaction as the new one. Priority -150: after conntrack (-200) has
	 * attached the entry. On a connection's first packet the mark goes into its
	 * NEW event (the entry is not confirmed yet), so new connections cost no
	 * event of their own. CARP and pfsync are never marked. The maps "goto",
	 * not "jump": a jump returns, and a TCP packet would then go on through the
	 * other map too and turn the bit twice, an event per packet. */
	int n = snprintf(cmd, sizeof(cmd),
			 "add table inet " ACT_TABLE "\n"
			 "delete table inet " ACT_TABLE "\n"
			 "table inet " ACT_TABLE " {\n"
			 "  chain to0 { ct mark and 0x%08x != 0 ct mark set ct mark and 0x%08x; }\n"
			 "  chain to1 { ct mark and 0x%08x == 0 ct mark set ct mark or 0x%08x; }\n"
			 "  map btcp { typeof ct id : verdict; elements = { %s }; }\n"
			 "  map bother { typeof ct id : verdict; elements = { %s }; }\n"
			 "  chain prerouting {\n"
			 "    type filter hook prerouting priority -150; policy accept;\n"
			 "    meta l4proto { 112, 240 } return\n"
			 "    meta l4proto tcp ct id and %d vmap @btcp\n"
			 "    ct id and %d vmap @bother\n"
			 "  }\n"
			 "  chain output {\n"
			 "    type filter hook output priority -150; policy accept;\n"
			 "    meta l4proto { 112, 240 } return\n"
			 "    meta l4proto tcp ct id and %d vmap @btcp\n"
			 "    ct id and %d vmap @bother\n"
			 "  }\n"
			 "}\n",
			 am->bit, ~am->bit, am->bit, am->bit, elems_tcp, elems_other,
			 ACT_BUCKETS - 1, ACT_BUCKETS - 1, ACT_BUCKETS - 1, ACT_BUCKETS - 1);
	if (n < 0 || (size_t)n >= sizeof(cmd))
		return -1;
	return nft_run_once("activity marks", cmd);
}

/* One element of a bucket map: delete it (verdict NULL) or add it with a goto. */
static void put_elem(char *buf, uint32_t seq, uint16_t msg, const char *map, uint32_t bucket,
		     const char *verdict_chain)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | msg;
	nlh->nlmsg_flags =
		NLM_F_REQUEST | NLM_F_ACK | (msg == NFT_MSG_NEWSETELEM ? NLM_F_CREATE : 0);
	nlh->nlmsg_seq = seq;
	struct nfgenmsg *nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = NFPROTO_INET;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = 0;
	mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, ACT_TABLE);
	mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, map);
	struct nlattr *elems = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
	struct nlattr *elem = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
	struct nlattr *key = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_KEY);
	/* nftables takes ct id for a big-endian integer (its "and 15" keeps the
	 * last byte in memory): keys as it writes them, in network order */
	uint32_t key_be = htonl(bucket);
	mnl_attr_put(nlh, NFTA_DATA_VALUE, sizeof(key_be), &key_be);
	mnl_attr_nest_end(nlh, key);
	if (verdict_chain) {
		struct nlattr *data = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_DATA);
		struct nlattr *verdict = mnl_attr_nest_start(nlh, NFTA_DATA_VERDICT);
		mnl_attr_put_u32(nlh, NFTA_VERDICT_CODE, htonl((uint32_t)NFT_GOTO));
		mnl_attr_put_strz(nlh, NFTA_VERDICT_CHAIN, verdict_chain);
		mnl_attr_nest_end(nlh, verdict);
		mnl_attr_nest_end(nlh, data);
	}
	mnl_attr_nest_end(nlh, elem);
	mnl_attr_nest_end(nlh, elems);
}

static void put_batch(char *buf, uint32_t seq, uint16_t type)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = seq;
	struct nfgenmsg *nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = AF_UNSPEC;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = htons(NFNL_SUBSYS_NFTABLES);
}

/* Turn these buckets (what they ask for flips) in one transaction; 0 or -1. */
static int turn(struct actmark *am, const int *other, size_t nother, const int *tcp, size_t ntcp)
{
	char buf[8192];
	memset(buf, 0, sizeof(buf)); /* the alignment gaps of the nests go out as they are */
	struct mnl_nlmsg_batch *b = mnl_nlmsg_batch_start(buf, sizeof(buf));
	uint32_t first = ++am->seq;
	put_batch(mnl_nlmsg_batch_current(b), first, NFNL_MSG_BATCH_BEGIN);
	mnl_nlmsg_batch_next(b);
	size_t nreq = 0;
	for (int pass = 0; pass < 2; pass++) {
		const int *bk = pass ? tcp : other;
		size_t n = pass ? ntcp : nother;
		uint8_t *want = pass ? am->tcp : am->other;
		const char *map = pass ? "btcp" : "bother";
		for (size_t i = 0; i < n; i++) {
			uint32_t bucket = (uint32_t)bk[i];
			put_elem(mnl_nlmsg_batch_current(b), ++am->seq, NFT_MSG_DELSETELEM, map,
				 bucket, NULL);
			mnl_nlmsg_batch_next(b);
			put_elem(mnl_nlmsg_batch_current(b), ++am->seq, NFT_MSG_NEWSETELEM, map,
				 bucket, want[bk[i]] ^ 1 ? "to1" : "to0");
			mnl_nlmsg_batch_next(b);
			nreq += 2;
		}
	}
	put_batch(mnl_nlmsg_batch_current(b), ++am->seq, NFNL_MSG_BATCH_END);
	mnl_nlmsg_batch_next(b);
	ssize_t sent = mnl_socket_sendto(am->nl, mnl_nlmsg_batch_head(b), mnl_nlmsg_batch_size(b));
	mnl_nlmsg_batch_stop(b);
	if (sent < 0)
		return -1;
	/* one ACK per request; the first error fails the whole transaction */
	int rc = 0;
	size_t acked = 0;
	uint32_t portid = mnl_socket_get_portid(am->nl);
	while (acked < nreq) {
		ssize_t n = mnl_socket_recvfrom(am->nl, buf, sizeof(buf));
		if (n < 0)
			return -1; /* SO_RCVTIMEO: no answer within a second */
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
		int len = (int)n;
		for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
			if (nlh->nlmsg_pid != portid || nlh->nlmsg_seq <= first)
				continue;
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
				acked++;
				if (e->error != 0 && rc == 0) {
					errno = -e->error;
					rc = -1;
					/* an aborted batch answers only the request that failed */
					acked = nreq;
				}
			}
		}
	}
	if (rc == 0) {
		for (size_t i = 0; i < nother; i++)
			am->other[other[i]] ^= 1;
		for (size_t i = 0; i < ntcp; i++)
			am->tcp[tcp[i]] ^= 1;
	}
	return rc;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct actmark *am = arg;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int other[ACT_PER_TICK], tcp[ACT_PER_TICK];
	size_t ntcp = 0;
	for (int i = 0; i < ACT_PER_TICK; i++)
		other[i] = (int)((am->tick * ACT_PER_TICK + (unsigned)i) % ACT_BUCKETS);
	if (am->tick % ACT_TCP_ROUNDS == 0) {
		unsigned t = am->tick / ACT_TCP_ROUNDS;
		for (int i = 0; i < ACT_PER_TICK; i++)
			tcp[ntcp++] = (int)((t * ACT_PER_TICK + (unsigned)i) % ACT_BUCKETS);
	}
	am->tick++;
	if (turn(am, other, ACT_PER_TICK, tcp, ntcp) == 0) {
		am->st.turns++;
	} else {
		/* the table went (nft flush ruleset, a firewall reload): put it back */
		log_warn("activity marks: a bucket turn failed (%s)", strerror(errno));
		am->st.errors++;
		if (install(am) < 0) {
			log_err("activity marks: the nftables table " ACT_TABLE
				" is gone and cannot be put back; reading the conntrack "
				"table periodically instead");
			am->st.active = false;
			am->lost(am->arg);
			return;
		}
		log_warn("activity marks: the nftables table " ACT_TABLE " was put back");
	}
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	am->st.turn_us =
		(uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000);
	struct timeval tv = {ACT_TICK_MS / 1000, (ACT_TICK_MS % 1000) * 1000};
	evtimer_add(am->tick_ev, &tv);
}

struct actmark *actmark_open(struct event_base *base, uint32_t bit, actmark_lost_cb lost, void *arg)
{
	struct actmark *am = calloc(1, sizeof(*am));
	if (am == NULL)
		return NULL;
	am->bit = bit;
	am->lost = lost;
	am->arg = arg;
	am->nl = mnl_socket_open(NETLINK_NETFILTER);
	struct timeval rcv_timeout = {1, 0};
	if (am->nl != NULL && (mnl_socket_bind(am->nl, 0, MNL_SOCKET_AUTOPID) < 0 ||
			       setsockopt(mnl_socket_get_fd(am->nl), SOL_SOCKET, SO_RCVTIMEO,
					  &rcv_timeout, sizeof(rcv_timeout)) < 0)) {
		mnl_socket_close(am->nl);
		am->nl = NULL;
	}
	am->tick_ev = evtimer_new(base, tick_cb, am);
	if (am->nl == NULL || am->tick_ev == NULL || install(am) < 0) {
		log_err("activity marks: no nftables table; reading the conntrack table "
			"periodically instead");
		actmark_close(am);
		return NULL;
	}
	am->st.active = true;
	struct timeval tv = {ACT_TICK_MS / 1000, (ACT_TICK_MS % 1000) * 1000};
	evtimer_add(am->tick_ev, &tv);
	log_info("activity marks: connections that carry traffic turn ct mark bit 0x%08x "
		 "(nftables table inet " ACT_TABLE ")",
		 bit);
	return am;
}

void actmark_close(struct actmark *am)
{
	if (am == NULL)
		return;
	if (am->tick_ev)
		event_free(am->tick_ev);
	if (am->st.active)
		nft_run_once("activity marks", "delete table inet " ACT_TABLE "\n");
	if (am->nl)
		mnl_socket_close(am->nl);
	free(am);
}

void actmark_stats(const struct actmark *am, struct actmark_stats *st)
{
	if (am == NULL) {
		memset(st, 0, sizeof(*st));
		return;
	}
	*st = am->st;
}

/* daemon/defer.c - see defer.h. libnftables installs the queueing rule (nft.h),
 * libnetfilter_queue (its libmnl API) receives the held packets with their
 * conntrack entry and gives the verdicts. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/carpd.h"
#include "daemon/defer.h"
#include "daemon/nft.h"

#define DEFER_TABLE "carpd_defer"

struct defer {
	const struct ct *ct;
	defer_packet_cb cb;
	void *arg;
	struct mnl_socket *nl;
	uint32_t portid;
	uint32_t seq;
	struct event *ev;
	bool table;
	struct defer_stats st;
};

static int install_table(const char *sync_ifname)
{
	char cmd[1024];
	/* "add" then "delete" clears a table a crashed run left, in the same
	 * transaction as the new one. Priority 101: after source NAT (100), so the
	 * entry already holds its translation; before conntrack confirms it. Only
	 * unicast packets are deferred, as in pf; never CARP, pfsync or the sync
	 * link's own traffic. */
	snprintf(cmd, sizeof(cmd),
		 "add table inet " DEFER_TABLE "\n"
		 "delete table inet " DEFER_TABLE "\n"
		 "table inet " DEFER_TABLE " {\n"
		 "  chain postrouting {\n"
		 "    type filter hook postrouting priority 101; policy accept;\n"
		 "    oifname \"%s\" return\n"
		 "    meta l4proto { 112, 240 } return\n"
		 "    meta nfproto ipv4 ip daddr { 224.0.0.0/4, 255.255.255.255 } return\n"
		 "    meta nfproto ipv6 ip6 daddr ff00::/8 return\n"
		 "    ct state new ct direction original queue num %d bypass\n"
		 "  }\n"
		 "}\n",
		 sync_ifname, DEFER_QUEUE);
	return nft_run_once("defer", cmd);
}

static int queue_cb(const struct nlmsghdr *nlh, void *data)
{
	struct defer *d = data;
	struct nlattr *attr[NFQA_MAX + 1] = {0};
	if (nfq_nlmsg_parse(nlh, attr) < 0 || attr[NFQA_PACKET_HDR] == NULL) {
		d->st.unreadable++;
		return MNL_CB_OK;
	}
	const struct nfgenmsg *nfg = mnl_nlmsg_get_payload(nlh);
	const struct nfqnl_msg_packet_hdr *ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
	uint32_t id = ntohl(ph->packet_id);
	struct flow f;
	if (attr[NFQA_CT] != NULL &&
	    ct_flow_from_payload(d->ct, mnl_attr_get_payload(attr[NFQA_CT]),
				 mnl_attr_get_payload_len(attr[NFQA_CT]), nfg->nfgen_family, &f)) {
		d->st.queued++;
		d->cb(d->arg, id, &f);
	} else {
		/* nothing we replicate (or cannot read): let it go at once */
		d->st.unreadable++;
		defer_release(d, id);
	}
	return MNL_CB_OK;
}

static void rx_cb(evutil_socket_t fd, short what, void *arg)
{
	struct defer *d = arg;
	char buf[8192];
	for (int i = 0; i < 64; i++) {
		ssize_t n = mnl_socket_recvfrom(d->nl, buf, sizeof(buf));
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				d->st.errors++; /* ENOBUFS: the kernel let packets pass */
			return;
		}
		if (mnl_cb_run(buf, (size_t)n, 0, d->portid, queue_cb, d) < 0)
			d->st.errors++;
	}
}

/* send a configuration message and wait for the kernel's answer: without
 * nfnetlink_queue the request fails here, with a reason */
static int config_request(struct defer *d, struct nlmsghdr *nlh)
{
	char buf[8192];
	nlh->nlmsg_flags |= NLM_F_ACK;
	nlh->nlmsg_seq = ++d->seq;
	if (mnl_socket_sendto(d->nl, nlh, nlh->nlmsg_len) < 0)
		return -1;
	ssize_t n = mnl_socket_recvfrom(d->nl, buf, sizeof(buf));
	if (n < 0)
		return -1;
	return mnl_cb_run(buf, (size_t)n, d->seq, d->portid, NULL, NULL) < 0 ? -1 : 0;
}

static int queue_config(struct defer *d)
{
	/* zeroed: nfq_nlmsg_cfg_put_cmd() leaves the command's pad byte unwritten
	 * (valgrind saw it sent to the kernel) */
	char buf[512] = {0};
	struct nlmsghdr *nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, DEFER_QUEUE);
	nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_BIND);
	if (config_request(d, nlh) < 0)
		return -1;
	/* metadata only (no payload copy) plus the conntrack entry; fail open: a
	 * full queue lets packets through rather than dropping them */
	memset(buf, 0, sizeof(buf));
	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, DEFER_QUEUE);
	nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_META, 0);
	mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(NFQA_CFG_F_CONNTRACK | NFQA_CFG_F_FAIL_OPEN));
	mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_CONNTRACK | NFQA_CFG_F_FAIL_OPEN));
	return config_request(d, nlh);
}

struct defer *defer_open(struct event_base *base, const struct ct *ct, const char *sync_ifname,
			 defer_packet_cb cb, void *arg)
{
	struct defer *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return NULL;
	d->ct = ct;
	d->cb = cb;
	d->arg = arg;
	d->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (d->nl == NULL || mnl_socket_bind(d->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		log_err("defer: cannot open the NFQUEUE netlink socket: %s", strerror(errno));
		goto fail;
	}
	d->portid = mnl_socket_get_portid(d->nl);
	int fd = mnl_socket_get_fd(d->nl);
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	if (queue_config(d) < 0) {
		log_err("defer: cannot bind NFQUEUE %d: %s — the kernel needs nfnetlink_queue "
			"and nft_queue (CONFIG_NETFILTER_NETLINK_QUEUE, CONFIG_NFT_QUEUE)",
			DEFER_QUEUE, strerror(errno));
		goto fail;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	if (install_table(sync_ifname) != 0)
		goto fail;
	d->table = true;
	d->ev = event_new(base, fd, EV_READ | EV_PERSIST, rx_cb, d);
	if (d->ev == NULL || event_add(d->ev, NULL) < 0)
		goto fail;
	log_info("defer: new connections wait for the peer's INS_ACK (at most %d ms): nftables "
		 "table inet " DEFER_TABLE ", queue %d",
		 20, DEFER_QUEUE);
	return d;
fail:
	defer_close(d);
	return NULL;
}

int defer_release(struct defer *d, uint32_t packet_id)
{
	char buf[256] = {0};
	struct nlmsghdr *nlh = nfq_nlmsg_put(buf, NFQNL_MSG_VERDICT, DEFER_QUEUE);
	nfq_nlmsg_verdict_put(nlh, (int)packet_id, NF_ACCEPT);
	if (mnl_socket_sendto(d->nl, nlh, nlh->nlmsg_len) < 0) {
		d->st.errors++;
		return -1;
	}
	d->st.released++;
	return 0;
}

void defer_close(struct defer *d)
{
	if (d == NULL)
		return;
	if (d->table)
		nft_run_once("defer", "delete table inet " DEFER_TABLE "\n");
	if (d->ev)
		event_free(d->ev);
	/* closing the socket unbinds the queue; the kernel reinjects what was
	 * still held (and "bypass" lets new packets pass) */
	if (d->nl)
		mnl_socket_close(d->nl);
	free(d);
}

const struct defer_stats *defer_stats(const struct defer *d)
{
	return &d->st;
}

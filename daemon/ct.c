/*
 * daemon/ct.c - conntrack <-> struct flow with libnetfilter_conntrack.
 *
 * Three ctnetlink handles: "ev" is subscribed to NEW/UPDATE/DESTROY and read
 * from the event loop; "cmd" creates, updates, deletes and looks up entries;
 * "dump" walks the table. A plain netlink socket ("bfd") carries batched writes:
 * many requests per sendmsg, their replies matched back by sequence number. The dump has its own
 * socket so that a dump callback may inject (a request on a socket that is in the middle of a
 * multipart dump would read dump parts instead of its acknowledgement).
 *
 * Loop avoidance is conntrackd's origin tracking: the kernel stamps every event
 * with the netlink port id of the socket whose request caused it (0 for
 * packets), so events stamped with the port id of "cmd" or "bfd" are our own
 * injections.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack_tcp.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>

#include "daemon/carpd.h"
#include "daemon/ct.h"

/* Event socket buffer: room for a burst of ~20k events while the loop is busy. */
#define CT_RCVBUF (8u << 20)
/* Datagrams read per wakeup, so that an event storm cannot starve the rest of
 * the loop (the event is level-triggered and fires again). */
#define CT_READ_BATCH 64
/* Events are read CT_EV_SLOTS datagrams per recvmmsg(), each in a slot of
 * CT_EV_SLOT bytes (an event is a page or two at most; a longer one is a lost
 * event, which calls for a table read). One recvmsg() per event was half of a
 * sender's system calls when connections come by the thousand a second; on a
 * virtual machine a system call costs microseconds. */
#define CT_EV_SLOTS 16
#define CT_EV_SLOT  (8u << 10)
/* A dump's datagrams are at most 32 KiB. */
#define CT_RBUF_SIZE (64u << 10)
/* A background dump (ct_dump_start) reads this many datagrams (about a hundred
 * entries each, a few tenths of a millisecond) every CT_DUMP_TICK_US: reading
 * back to back kept a core busy for the whole dump, and on a small machine the
 * other processes (the switch, the peer) waited for it. A dump of 100 000 entries
 * takes about a second. The pause after a slice is at least as long as the slice
 * (at most half a core, where an entry costs more: a slower machine, valgrind).
 * No datagram for CT_DUMP_STALL_TICKS ticks ends it. */
#define CT_DUMP_READS	    1
#define CT_DUMP_TICK_US	    1000
#define CT_DUMP_STALL_TICKS 5000
/* Protocols never replicated: CARP/VRRP and pfsync itself (pfsync.md §6.7). */
#define CT_PROTO_CARP	112
#define CT_PROTO_PFSYNC 240

struct ct_prefix {
	uint8_t af;
	uint8_t len;
	uint8_t addr[16];
};

/* Batched writes: entries per batch; each round sends at most one request per
 * entry, so the request buffer holds CT_BATCH_MAX requests of at most
 * CT_BATCH_MSG bytes (a CREATE with every attribute is about 400). */
#define CT_BATCH_MAX	 256
#define CT_BATCH_MSG	 1024
#define CT_BATCH_BUF	 (CT_BATCH_MAX * CT_BATCH_MSG)
#define CT_BATCH_RBUF	 (256u << 10)
#define CT_BATCH_SOCKBUF (8u << 20)
/* requests per entry before it counts as failed (create, lookup, update or
 * delete, create again, ...: ct_inject's two rounds and a lost reply) */
#define CT_BATCH_STEPS 8

enum ct_bstep { CT_B_CREATE, CT_B_GET, CT_B_UPDATE, CT_B_DELETE, CT_B_DONE };

struct ct_bent {
	struct flow f;
	struct flow have;     /* what GET found */
	uint32_t have_status; /* its raw status */
	uint8_t step;	      /* enum ct_bstep */
	uint8_t steps;	      /* requests sent for it */
	bool found, answered, failed;
	int err;
	const char *what;
};

/* What the GET callback fills. */
struct ct_found {
	bool found;
	struct flow flow;
	uint32_t status; /* the kernel's raw IPS_* bits, needed to update status */
};

struct ct {
	struct event_base *base;
	ct_event_cb cb;
	ct_resync_cb resync;
	void *arg;
	struct nfct_handle *ev_h, *cmd_h, *dump_h;
	struct event *ev;
	uint32_t own_portid;
	unsigned char *rbuf;
	struct ct_prefix ignore[CT_MAX_IGNORE];
	size_t nignore;
	struct ct_stats st;
	/* the query in progress on cmd_h / dump_h */
	struct ct_found *get_ctx;
	bool dumping;
	void (*dump_each)(void *arg, const struct flow *f);
	void (*dump_done)(void *arg, int result); /* background dump (ct_dump_start) */
	void *dump_arg;
	struct event *dump_ev;	  /* the background dump's tick */
	int64_t dump_busy_ns;	  /* its time in adump_tick, so far */
	unsigned dump_idle_ticks; /* ticks in a row without a datagram */
	unsigned char *dbuf;
	uint32_t dump_seq;
	time_t overrun_logged;
	uint64_t overrun_unlogged;
	time_t fail_logged;
	/* batched writes (ct_batch_*): a socket of their own, so that a reply
	 * lost to an overrun can never be mistaken for another request's */
	int bfd;
	uint32_t bportid;
	uint32_t bseq;
	struct ct_bent *bents;
	size_t nbents;
	unsigned char *bbuf;
	unsigned char *brbuf;
	size_t bsend_max; /* bytes of requests per sendmsg */
	size_t bfailed;	  /* entries that failed since the last ct_batch_flush */
};

/* ---- conversion: kernel -> flow ------------------------------------------------------ */

static bool proto_has_ports(uint8_t proto)
{
	switch (proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_UDPLITE:
	case IPPROTO_SCTP:
	case IPPROTO_DCCP:
	case IPPROTO_GRE:
		return true;
	default:
		return false;
	}
}

static bool proto_is_icmp(uint8_t proto)
{
	return proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6;
}

/*
 * libnetfilter_conntrack has no getter for the REPLY tuple's ICMP identifier
 * (ATTR_ICMP_ID is the ORIG one); it differs when NAT rewrote the identifier, so
 * read it from the message: CTA_TUPLE_REPLY > CTA_TUPLE_PROTO > CTA_PROTO_ICMP*_ID.
 */
static const struct nlattr *nla_find(const void *start, size_t len, uint16_t type)
{
	const unsigned char *p = start;
	while (len >= NLA_HDRLEN) {
		const struct nlattr *a = (const struct nlattr *)p;
		if (a->nla_len < NLA_HDRLEN || a->nla_len > len)
			return NULL;
		if ((a->nla_type & NLA_TYPE_MASK) == type)
			return a;
		size_t step = NLA_ALIGN(a->nla_len);
		if (step >= len)
			return NULL;
		p += step;
		len -= step;
	}
	return NULL;
}

static bool nlh_reply_icmp_id(const struct nlmsghdr *nlh, uint16_t *id)
{
	size_t hdr = NLMSG_LENGTH(sizeof(struct nfgenmsg));
	if (nlh == NULL || nlh->nlmsg_len < hdr)
		return false;
	const unsigned char *base = (const unsigned char *)nlh + NLMSG_ALIGN(hdr);
	size_t len = nlh->nlmsg_len - NLMSG_ALIGN(hdr);
	const struct nlattr *t = nla_find(base, len, CTA_TUPLE_REPLY);
	if (t == NULL)
		return false;
	const struct nlattr *p = nla_find((const unsigned char *)t + NLA_HDRLEN,
					  t->nla_len - NLA_HDRLEN, CTA_TUPLE_PROTO);
	if (p == NULL)
		return false;
	const void *pd = (const unsigned char *)p + NLA_HDRLEN;
	size_t pl = p->nla_len - NLA_HDRLEN;
	const struct nlattr *i = nla_find(pd, pl, CTA_PROTO_ICMP_ID);
	if (i == NULL)
		i = nla_find(pd, pl, CTA_PROTO_ICMPV6_ID);
	if (i == NULL || i->nla_len < NLA_HDRLEN + sizeof(uint16_t))
		return false;
	uint16_t v;
	memcpy(&v, (const unsigned char *)i + NLA_HDRLEN, sizeof(v));
	*id = ntohs(v);
	return true;
}

static void get_addr(const struct nf_conntrack *nct, uint8_t af, int a4, int a6,
		     union flow_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (af == AF_INET) {
		uint32_t v = nfct_get_attr_u32(nct, a4); /* network order */
		memcpy(&out->v4, &v, sizeof(v));
	} else {
		const void *p = nfct_get_attr(nct, a6);
		if (p != NULL)
			memcpy(&out->v6, p, sizeof(out->v6));
	}
}

/* false: not an IPv4/IPv6 entry (nothing we could carry). */
static bool nct_to_flow(const struct nlmsghdr *nlh, const struct nf_conntrack *nct, struct flow *f,
			uint32_t *raw_status)
{
	memset(f, 0, sizeof(*f));
	uint8_t af = nfct_get_attr_u8(nct, ATTR_ORIG_L3PROTO);
	if (af != AF_INET && af != AF_INET6)
		return false;
	f->af = af;
	f->proto = nfct_get_attr_u8(nct, ATTR_ORIG_L4PROTO);
	get_addr(nct, af, ATTR_ORIG_IPV4_SRC, ATTR_ORIG_IPV6_SRC, &f->orig.src);
	get_addr(nct, af, ATTR_ORIG_IPV4_DST, ATTR_ORIG_IPV6_DST, &f->orig.dst);
	get_addr(nct, af, ATTR_REPL_IPV4_SRC, ATTR_REPL_IPV6_SRC, &f->reply.src);
	get_addr(nct, af, ATTR_REPL_IPV4_DST, ATTR_REPL_IPV6_DST, &f->reply.dst);

	if (proto_is_icmp(f->proto)) {
		uint16_t id = ntohs(nfct_get_attr_u16(nct, ATTR_ICMP_ID));
		uint16_t rid = id;
		nlh_reply_icmp_id(nlh, &rid);
		f->orig.sport = id;
		f->reply.sport = rid;
		f->icmp_type = nfct_get_attr_u8(nct, ATTR_ICMP_TYPE);
		f->icmp_code = nfct_get_attr_u8(nct, ATTR_ICMP_CODE);
	} else if (nfct_attr_is_set(nct, ATTR_ORIG_PORT_SRC) > 0) {
		/* TCP, UDP, UDP-Lite, SCTP, DCCP, GRE keys; other protocols have no
		 * ports and are carried with the addresses alone */
		f->orig.sport = ntohs(nfct_get_attr_u16(nct, ATTR_ORIG_PORT_SRC));
		f->orig.dport = ntohs(nfct_get_attr_u16(nct, ATTR_ORIG_PORT_DST));
		f->reply.sport = ntohs(nfct_get_attr_u16(nct, ATTR_REPL_PORT_SRC));
		f->reply.dport = ntohs(nfct_get_attr_u16(nct, ATTR_REPL_PORT_DST));
	}

	if (f->proto == IPPROTO_TCP && nfct_attr_is_set(nct, ATTR_TCP_STATE) <= 0)
		f->partial |= FLOW_PARTIAL_TCP;
	if (nfct_attr_is_set(nct, ATTR_STATUS) <= 0)
		f->partial |= FLOW_PARTIAL_STATUS;
	if (f->proto == IPPROTO_TCP && nfct_attr_is_set(nct, ATTR_TCP_STATE) > 0) {
		f->tcp_state = nfct_get_attr_u8(nct, ATTR_TCP_STATE);
		uint8_t fo = nfct_get_attr_u8(nct, ATTR_TCP_FLAGS_ORIG);
		uint8_t fr = nfct_get_attr_u8(nct, ATTR_TCP_FLAGS_REPL);
		/* a scale means something only if both sides offered it in the SYNs */
		if ((fo & IP_CT_TCP_FLAG_WINDOW_SCALE) && (fr & IP_CT_TCP_FLAG_WINDOW_SCALE) &&
		    nfct_attr_is_set(nct, ATTR_TCP_WSCALE_ORIG) > 0 &&
		    nfct_attr_is_set(nct, ATTR_TCP_WSCALE_REPL) > 0) {
			f->wscale_known = true;
			f->wscale_orig = nfct_get_attr_u8(nct, ATTR_TCP_WSCALE_ORIG);
			f->wscale_repl = nfct_get_attr_u8(nct, ATTR_TCP_WSCALE_REPL);
		}
	}

	uint32_t status = nfct_get_attr_u32(nct, ATTR_STATUS);
	if (raw_status != NULL)
		*raw_status = status;
	f->status = status & (IPS_SEEN_REPLY | IPS_ASSURED);
	f->timeout = nfct_get_attr_u32(nct, ATTR_TIMEOUT);
	f->mark = nfct_get_attr_u32(nct, ATTR_MARK);
	f->zone = nfct_get_attr_u16(nct, ATTR_ZONE);
	f->packets[0] = nfct_get_attr_u64(nct, ATTR_ORIG_COUNTER_PACKETS);
	f->packets[1] = nfct_get_attr_u64(nct, ATTR_REPL_COUNTER_PACKETS);
	f->bytes[0] = nfct_get_attr_u64(nct, ATTR_ORIG_COUNTER_BYTES);
	f->bytes[1] = nfct_get_attr_u64(nct, ATTR_REPL_COUNTER_BYTES);
	return true;
}

static size_t addr_len(uint8_t af)
{
	return af == AF_INET ? 4 : 16;
}

static bool prefix_match(const struct ct_prefix *p, uint8_t af, const union flow_addr *a)
{
	if (p->af != af)
		return false;
	unsigned full = p->len / 8, rest = p->len % 8;
	if (memcmp(p->addr, a->bytes, full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (p->addr[full] & mask) == (a->bytes[full] & mask);
}

static bool flow_filtered(const struct ct *ct, const struct flow *f)
{
	if (f->proto == CT_PROTO_CARP || f->proto == CT_PROTO_PFSYNC)
		return true;
	/* multicast (IGMP/MLD reports, mDNS, ...): not a connection through the
	 * firewall, nothing a peer could take over */
	if (f->af == AF_INET ? (f->orig.dst.bytes[0] & 0xf0) == 0xe0 : f->orig.dst.bytes[0] == 0xff)
		return true;
	for (size_t i = 0; i < ct->nignore; i++) {
		const struct ct_prefix *p = &ct->ignore[i];
		if (prefix_match(p, f->af, &f->orig.src) || prefix_match(p, f->af, &f->orig.dst) ||
		    prefix_match(p, f->af, &f->reply.src) || prefix_match(p, f->af, &f->reply.dst))
			return true;
	}
	return false;
}

bool ct_flow_from_payload(const struct ct *ct, const void *payload, size_t len, uint8_t l3,
			  struct flow *f)
{
	struct nf_conntrack *nct = nfct_new();
	if (nct == NULL)
		return false;
	bool ok = nfct_payload_parse(payload, len, l3, nct) >= 0 &&
		  nct_to_flow(NULL, nct, f, NULL) && !flow_filtered(ct, f);
	nfct_destroy(nct);
	return ok;
}

/* ---- events ---------------------------------------------------------------------------- */

static int ev_handler(const struct nlmsghdr *nlh, enum nf_conntrack_msg_type type,
		      struct nf_conntrack *nct, void *data)
{
	struct ct *ct = data;
	ct->st.events++;
	/* port id 0 is the kernel itself (packets, timeouts); only a userspace
	 * request carries a socket's port id */
	if (nlh->nlmsg_pid != 0 &&
	    (nlh->nlmsg_pid == ct->own_portid || nlh->nlmsg_pid == ct->bportid)) {
		ct->st.own_events++;
		return NFCT_CB_CONTINUE;
	}
	struct flow f;
	if (!nct_to_flow(nlh, nct, &f, NULL) || flow_filtered(ct, &f)) {
		ct->st.skipped++;
		return NFCT_CB_CONTINUE;
	}
	enum ct_event ev;
	switch (type) {
	case NFCT_T_NEW:
		ev = CT_EV_NEW;
		break;
	case NFCT_T_DESTROY:
		ev = CT_EV_DESTROY;
		break;
	case NFCT_T_UPDATE:
		ev = CT_EV_UPDATE;
		break;
	default:
		ct->st.skipped++;
		return NFCT_CB_CONTINUE;
	}
	if (ct->cb != NULL)
		ct->cb(ct->arg, ev, &f);
	return NFCT_CB_CONTINUE;
}

static void ev_overrun(struct ct *ct)
{
	ct->st.overruns++;
	/* one line per 10 s: under sustained overload every read can overrun */
	time_t now = time(NULL);
	if (now - ct->overrun_logged >= 10) {
		if (ct->overrun_unlogged > 0)
			log_warn("conntrack events lost again (%llu overruns since the last "
				 "report): resyncing",
				 (unsigned long long)ct->overrun_unlogged);
		else
			log_warn("conntrack events lost (event socket buffer overrun): resyncing");
		ct->overrun_logged = now;
		ct->overrun_unlogged = 0;
	} else {
		ct->overrun_unlogged++;
	}
	if (ct->resync != NULL)
		ct->resync(ct->arg);
}

static void ev_readable(evutil_socket_t fd, short what, void *arg)
{
	struct ct *ct = arg;
	struct nfnl_handle *nfnlh = (struct nfnl_handle *)nfct_nfnlh(ct->ev_h);

	for (int read = 0; read < CT_READ_BATCH;) {
		struct sockaddr_nl peer[CT_EV_SLOTS];
		struct iovec iov[CT_EV_SLOTS];
		struct mmsghdr mm[CT_EV_SLOTS];
		for (int i = 0; i < CT_EV_SLOTS; i++) {
			iov[i] = (struct iovec){.iov_base = ct->rbuf + (size_t)i * CT_EV_SLOT,
						.iov_len = CT_EV_SLOT};
			mm[i] = (struct mmsghdr){.msg_hdr = {.msg_name = &peer[i],
							     .msg_namelen = sizeof(peer[i]),
							     .msg_iov = &iov[i],
							     .msg_iovlen = 1}};
		}
		int n = recvmmsg(fd, mm, CT_EV_SLOTS, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno == EINTR) {
				read++;
				continue;
			}
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == ENOBUFS) {
				ev_overrun(ct);
				read++;
				continue;
			}
			ct->st.errors++;
			log_err("conntrack event socket: %s", strerror(errno));
			return;
		}
		for (int i = 0; i < n; i++) {
			const struct msghdr *msg = &mm[i].msg_hdr;
			/* only the kernel may talk to us; a truncated datagram lost events */
			if (mm[i].msg_len == 0 || msg->msg_namelen != sizeof(peer[i]) ||
			    peer[i].nl_pid != 0)
				continue;
			if (msg->msg_flags & MSG_TRUNC) {
				ev_overrun(ct);
				continue;
			}
			nfnl_process(nfnlh, iov[i].iov_base, mm[i].msg_len);
		}
		/* fewer than asked for: the queue was empty (a datagram that comes
		 * now makes the socket readable again) */
		if (n < CT_EV_SLOTS)
			return;
		read += n;
	}
}

/* ---- queries ----------------------------------------------------------------------------- */

static int get_handler(const struct nlmsghdr *nlh, enum nf_conntrack_msg_type type,
		       struct nf_conntrack *nct, void *data)
{
	struct ct *ct = data;
	if (ct->get_ctx != NULL && !ct->get_ctx->found &&
	    nct_to_flow(nlh, nct, &ct->get_ctx->flow, &ct->get_ctx->status))
		ct->get_ctx->found = true;
	return NFCT_CB_CONTINUE;
}

/* one entry of a dump (ct_dump or ct_dump_start) to its each() */
static void dump_report(struct ct *ct, const struct nlmsghdr *nlh, const struct nf_conntrack *nct)
{
	struct flow f;
	if (nct_to_flow(nlh, nct, &f, NULL) && !flow_filtered(ct, &f) && ct->dump_each != NULL)
		ct->dump_each(ct->dump_arg, &f);
}

static int dump_handler(const struct nlmsghdr *nlh, enum nf_conntrack_msg_type type,
			struct nf_conntrack *nct, void *data)
{
	dump_report(data, nlh, nct);
	return NFCT_CB_CONTINUE;
}

int ct_dump(struct ct *ct, void (*each)(void *arg, const struct flow *f), void *arg)
{
	if (ct->dumping) {
		errno = EBUSY;
		return -1;
	}
	ct->dumping = true;
	ct->dump_each = each;
	ct->dump_arg = arg;
	uint32_t family = AF_UNSPEC; /* both families in one dump */
	int r = nfct_query(ct->dump_h, NFCT_Q_DUMP, &family);
	int saved = errno;
	ct->dumping = false;
	ct->dump_each = NULL;
	if (r < 0) {
		ct->st.errors++;
		log_err("conntrack dump: %s", strerror(saved));
		errno = saved;
		return -1;
	}
	return 0;
}

/* ---- background dump ---------------------------------------------------------------------- */

static int adump_msg(const struct nlmsghdr *nlh, void *data)
{
	if ((nlh->nlmsg_type & 0xff) != IPCTNL_MSG_CT_NEW)
		return MNL_CB_OK;
	/* a fresh object per entry, as the library's own callbacks do: parsing into a
	 * used one would keep the attributes the previous entry had and this one lacks */
	struct nf_conntrack *nct = nfct_new();
	if (nct == NULL)
		return MNL_CB_OK;
	if (nfct_nlmsg_parse(nlh, nct) >= 0)
		dump_report(data, nlh, nct);
	nfct_destroy(nct);
	return MNL_CB_OK;
}

static void adump_finish(struct ct *ct, int result)
{
	event_del(ct->dump_ev);
	void (*done)(void *, int) = ct->dump_done;
	void *arg = ct->dump_arg;
	ct->dumping = false;
	ct->dump_each = NULL;
	ct->dump_done = NULL;
	ct->dump_arg = NULL;
	if (done != NULL)
		done(arg, result);
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void adump_fail(struct ct *ct, int err)
{
	ct->st.errors++;
	log_err("conntrack dump: %s", strerror(err));
	adump_finish(ct, -1);
}

/* One slice of a background dump per tick: the kernel fills the next datagram when
 * we read this one and keeps it until the next tick, so the dump takes about a
 * millisecond per hundred entries and never more than a fraction of the CPU. */
static void adump_tick(evutil_socket_t unused, short what, void *arg)
{
	struct ct *ct = arg;
	int fd = nfct_fd(ct->dump_h);
	int64_t t0 = mono_ns();
	for (int i = 0; i < CT_DUMP_READS; i++) {
		struct sockaddr_nl peer;
		struct iovec iov = {.iov_base = ct->dbuf, .iov_len = CT_RBUF_SIZE};
		struct msghdr msg = {.msg_name = &peer,
				     .msg_namelen = sizeof(peer),
				     .msg_iov = &iov,
				     .msg_iovlen = 1};
		ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (++ct->dump_idle_ticks > CT_DUMP_STALL_TICKS) {
				adump_fail(ct, ETIMEDOUT);
				return;
			}
			break;
		}
		if (n <= 0 || (msg.msg_flags & MSG_TRUNC)) {
			adump_fail(ct, n < 0 ? errno : EMSGSIZE);
			return;
		}
		ct->dump_idle_ticks = 0;
		if (msg.msg_namelen != sizeof(peer) || peer.nl_pid != 0)
			continue;
		int r = mnl_cb_run(ct->dbuf, (size_t)n, ct->dump_seq, 0, adump_msg, ct);
		if (r == MNL_CB_STOP) {
			ct->dump_busy_ns += mono_ns() - t0;
			adump_finish(ct, 0);
			return;
		}
		if (r < 0 && errno != EPROTO) { /* EPROTO: a datagram of another request */
			adump_fail(ct, errno);
			return;
		}
	}
	int64_t slice_ns = mono_ns() - t0;
	ct->dump_busy_ns += slice_ns;
	int64_t pause_us = slice_ns / 1000 > CT_DUMP_TICK_US ? slice_ns / 1000 : CT_DUMP_TICK_US;
	if (pause_us > 999999) /* a struct timeval's tv_usec */
		pause_us = 999999;
	struct timeval tick = {0, (suseconds_t)pause_us};
	evtimer_add(ct->dump_ev, &tick);
}

int ct_dump_start(struct ct *ct, void (*each)(void *arg, const struct flow *f),
		  void (*done)(void *arg, int result), void *arg)
{
	if (ct->dumping) {
		errno = EBUSY;
		return -1;
	}
	int fd = nfct_fd(ct->dump_h);
	if (ct->dump_ev == NULL) {
		ct->dbuf = malloc(CT_RBUF_SIZE);
		if (ct->base == NULL || ct->dbuf == NULL) {
			errno = ct->base == NULL ? EINVAL : ENOMEM;
			return -1;
		}
		ct->dump_ev = evtimer_new(ct->base, adump_tick, ct);
		if (ct->dump_ev == NULL) {
			errno = ENOMEM;
			return -1;
		}
		/* the lowest priority, where the loop has more than one: a slice runs
		 * only in a turn where no event, packet or other timer is due */
		int levels = event_base_get_npriorities(ct->base);
		if (levels > 1)
			event_priority_set(ct->dump_ev, levels - 1);
	}
	/* what an earlier request left unread */
	while (recv(fd, ct->dbuf, CT_RBUF_SIZE, MSG_DONTWAIT) > 0)
		;
	unsigned char req[MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(struct nfgenmsg))];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(req);
	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = ct->dump_seq = ct->dump_seq + 1 ? ct->dump_seq + 1 : 1;
	struct nfgenmsg *nfh = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfh));
	nfh->nfgen_family = AF_UNSPEC; /* both families in one dump */
	nfh->version = NFNETLINK_V0;
	nfh->res_id = 0;
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	if (sendto(fd, req, nlh->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0) {
		ct->st.errors++;
		return -1;
	}
	struct timeval now = {0, 0};
	if (evtimer_add(ct->dump_ev, &now) < 0) {
		errno = ENOMEM;
		return -1;
	}
	ct->dump_busy_ns = 0;
	ct->dump_idle_ticks = 0;
	ct->dumping = true;
	ct->dump_each = each;
	ct->dump_done = done;
	ct->dump_arg = arg;
	return 0;
}

bool ct_dump_running(const struct ct *ct)
{
	return ct->dump_done != NULL;
}

uint64_t ct_dump_busy_ms(const struct ct *ct)
{
	return (uint64_t)(ct->dump_busy_ns / 1000000);
}

/* ---- conversion: flow -> kernel ---------------------------------------------------------- */

static int flow_check(const struct flow *f)
{
	if (f->af != AF_INET && f->af != AF_INET6)
		return EAFNOSUPPORT;
	switch (f->proto) {
	case IPPROTO_TCP:
		/* TCP_CONNTRACK_MAX is the kernel's upper bound */
		return f->tcp_state < TCP_CONNTRACK_MAX ? 0 : EINVAL;
	case IPPROTO_UDP:
	case IPPROTO_UDPLITE:
	case IPPROTO_SCTP:
	case IPPROTO_DCCP:
	case IPPROTO_GRE:
		return 0;
	case IPPROTO_ICMP:
		/* the library indexes a table of reply types with this (0..18);
		 * the kernel takes only echo/timestamp/info/mask requests */
		return f->af == AF_INET && f->icmp_type <= 18 ? 0 : EINVAL;
	case IPPROTO_ICMPV6:
		/* same, table indexed by type - 128, 13 entries */
		return f->af == AF_INET6 && f->icmp_type >= 128 && f->icmp_type <= 140 ? 0 : EINVAL;
	default:
		/* the library cannot build a tuple for other protocols */
		return EPROTONOSUPPORT;
	}
}

static void set_addr(struct nf_conntrack *nct, uint8_t af, int a4, int a6, const union flow_addr *a)
{
	if (af == AF_INET)
		nfct_set_attr_u32(nct, a4, a->v4.s_addr);
	else
		nfct_set_attr(nct, a6, &a->v6);
}

/* The lookup key: family, protocol, ORIG tuple, zone. */
static struct nf_conntrack *key_new(const struct flow *f)
{
	struct nf_conntrack *nct = nfct_new();
	if (nct == NULL)
		return NULL;
	/* L3 first: the ICMP type setter looks at it */
	nfct_set_attr_u8(nct, ATTR_ORIG_L3PROTO, f->af);
	nfct_set_attr_u8(nct, ATTR_ORIG_L4PROTO, f->proto);
	set_addr(nct, f->af, ATTR_ORIG_IPV4_SRC, ATTR_ORIG_IPV6_SRC, &f->orig.src);
	set_addr(nct, f->af, ATTR_ORIG_IPV4_DST, ATTR_ORIG_IPV6_DST, &f->orig.dst);
	if (proto_is_icmp(f->proto)) {
		nfct_set_attr_u8(nct, ATTR_ICMP_TYPE, f->icmp_type);
		nfct_set_attr_u8(nct, ATTR_ICMP_CODE, f->icmp_code);
		nfct_set_attr_u16(nct, ATTR_ICMP_ID, htons(f->orig.sport));
	} else {
		nfct_set_attr_u16(nct, ATTR_ORIG_PORT_SRC, htons(f->orig.sport));
		nfct_set_attr_u16(nct, ATTR_ORIG_PORT_DST, htons(f->orig.dport));
	}
	/* zone 0 is the default; leaving it out keeps kernels without zone
	 * support working */
	if (f->zone != 0)
		nfct_set_attr_u16(nct, ATTR_ZONE, f->zone);
	return nct;
}

static bool addr_eq(uint8_t af, const union flow_addr *a, const union flow_addr *b)
{
	return memcmp(a->bytes, b->bytes, addr_len(af)) == 0;
}

/* Source NAT: the answer goes to someone other than the initiator. */
static bool flow_snat(const struct flow *f)
{
	if (!addr_eq(f->af, &f->reply.dst, &f->orig.src))
		return true;
	return proto_has_ports(f->proto) && f->reply.dport != f->orig.sport;
}

/* Destination NAT: the answer comes from someone other than the one addressed. */
static bool flow_dnat(const struct flow *f)
{
	if (!addr_eq(f->af, &f->reply.src, &f->orig.dst))
		return true;
	return proto_has_ports(f->proto) && f->reply.sport != f->orig.dport;
}

/* NAT ports go to the kernel for TCP and UDP only (libnetfilter_conntrack's
 * nfct_build_protonat), so only those can be compared. */
static bool nat_port_proto(uint8_t proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP;
}

/* Does the kernel's REPLY tuple already say what f->reply says? */
static bool reply_matches(const struct flow *want, const struct flow *have)
{
	if (!addr_eq(want->af, &want->reply.src, &have->reply.src) ||
	    !addr_eq(want->af, &want->reply.dst, &have->reply.dst))
		return false;
	if (nat_port_proto(want->proto))
		return want->reply.sport == have->reply.sport &&
		       want->reply.dport == have->reply.dport;
	return true;
}

static void set_tcp(struct nf_conntrack *nct, const struct flow *f)
{
	nfct_set_attr_u8(nct, ATTR_TCP_STATE, f->tcp_state);
	/* pf's sequence windows cannot be loaded into conntrack, so the entry
	 * must not check windows (BE_LIBERAL) until it has relearned them */
	uint8_t flags = IP_CT_TCP_FLAG_BE_LIBERAL | IP_CT_TCP_FLAG_SACK_PERM;
	/* as conntrackd: a closing entry lets a new SYN reuse the tuple */
	if (f->tcp_state == TCP_CONNTRACK_TIME_WAIT || f->tcp_state == TCP_CONNTRACK_CLOSE)
		flags |= IP_CT_TCP_FLAG_CLOSE_INIT;
	if (f->wscale_known) {
		/* the kernel takes the scales only with both WINDOW_SCALE flags */
		flags |= IP_CT_TCP_FLAG_WINDOW_SCALE;
		nfct_set_attr_u8(nct, ATTR_TCP_WSCALE_ORIG, f->wscale_orig & 0x0f);
		nfct_set_attr_u8(nct, ATTR_TCP_WSCALE_REPL, f->wscale_repl & 0x0f);
	}
	nfct_set_attr_u8(nct, ATTR_TCP_FLAGS_ORIG, flags);
	nfct_set_attr_u8(nct, ATTR_TCP_MASK_ORIG, flags);
	nfct_set_attr_u8(nct, ATTR_TCP_FLAGS_REPL, flags);
	nfct_set_attr_u8(nct, ATTR_TCP_MASK_REPL, flags);
}

static uint32_t flow_timeout(const struct flow *f)
{
	return f->timeout ? f->timeout : 1;
}

static int do_query(struct ct *ct, const struct nf_conntrack *nct, enum nf_conntrack_query q)
{
	return nfct_query(ct->cmd_h, q, nct);
}

/*
 * Create. The REPLY tuple is the reverse of ORIG (NFCT_SOPT_SETUP_REPLY) and the
 * NAT goes in as CTA_NAT_SRC/CTA_NAT_DST: the kernel's NAT core then rewrites the
 * REPLY tuple and sets IPS_SRC_NAT/IPS_DST_NAT, which is what makes packets be
 * translated. Sending the translated REPLY tuple instead gives an entry that looks
 * right in `conntrack -L` but translates nothing (the NAT status bits cannot be set
 * through CTA_STATUS), and sending both makes the NAT core see nothing to do.
 */
static struct nf_conntrack *create_obj(const struct flow *f)
{
	struct nf_conntrack *nct = key_new(f);
	if (nct == NULL)
		return NULL;
	nfct_setobjopt(nct, NFCT_SOPT_SETUP_REPLY);
	/* IPS_EXPECTED cannot be set (the kernel refuses it); we only carry these */
	nfct_set_attr_u32(nct, ATTR_STATUS, f->status & (IPS_SEEN_REPLY | IPS_ASSURED));
	nfct_set_attr_u32(nct, ATTR_TIMEOUT, flow_timeout(f));
	if (f->mark != 0)
		nfct_set_attr_u32(nct, ATTR_MARK, f->mark);
	if (f->proto == IPPROTO_TCP)
		set_tcp(nct, f);
	if (flow_snat(f)) {
		set_addr(nct, f->af, ATTR_SNAT_IPV4, ATTR_SNAT_IPV6, &f->reply.dst);
		if (nat_port_proto(f->proto))
			nfct_set_attr_u16(nct, ATTR_SNAT_PORT, htons(f->reply.dport));
	}
	if (flow_dnat(f)) {
		set_addr(nct, f->af, ATTR_DNAT_IPV4, ATTR_DNAT_IPV6, &f->reply.src);
		if (nat_port_proto(f->proto))
			nfct_set_attr_u16(nct, ATTR_DNAT_PORT, htons(f->reply.sport));
	}
	return nct;
}

static int do_create(struct ct *ct, const struct flow *f)
{
	struct nf_conntrack *nct = create_obj(f);
	if (nct == NULL)
		return -1;
	int r = do_query(ct, nct, NFCT_Q_CREATE);
	int saved = errno;
	nfct_destroy(nct);
	errno = saved;
	return r;
}

/* Update in place: no tuples beyond the key, no NAT (the kernel refuses NAT
 * changes on a live entry). status is the kernel's current raw status: the kernel
 * refuses to clear SEEN_REPLY/ASSURED or to flip EXPECTED, so we send it back with
 * our bits added, and only when there is something to add. */
static struct nf_conntrack *update_obj(const struct flow *f, uint32_t status)
{
	struct nf_conntrack *nct = key_new(f);
	if (nct == NULL)
		return NULL;
	uint32_t want = f->status & (IPS_SEEN_REPLY | IPS_ASSURED);
	if (want & ~status)
		nfct_set_attr_u32(nct, ATTR_STATUS, status | want);
	nfct_set_attr_u32(nct, ATTR_TIMEOUT, flow_timeout(f));
	/* 0 means "no mark from the peer": keep what local rules set */
	if (f->mark != 0)
		nfct_set_attr_u32(nct, ATTR_MARK, f->mark);
	if (f->proto == IPPROTO_TCP)
		set_tcp(nct, f);
	return nct;
}

static int do_update(struct ct *ct, const struct flow *f, uint32_t status)
{
	struct nf_conntrack *nct = update_obj(f, status);
	if (nct == NULL)
		return -1;
	int r = do_query(ct, nct, NFCT_Q_UPDATE);
	int saved = errno;
	nfct_destroy(nct);
	errno = saved;
	return r;
}

static int do_destroy(struct ct *ct, const struct flow *f)
{
	struct nf_conntrack *nct = key_new(f);
	if (nct == NULL)
		return -1;
	int r = do_query(ct, nct, NFCT_Q_DESTROY);
	int saved = errno;
	nfct_destroy(nct);
	errno = saved;
	return r;
}

/* 1 found, 0 not there, -1 error */
static int do_get(struct ct *ct, const struct flow *f, struct ct_found *out)
{
	struct nf_conntrack *nct = key_new(f);
	if (nct == NULL)
		return -1;
	memset(out, 0, sizeof(*out));
	ct->get_ctx = out;
	int r = do_query(ct, nct, NFCT_Q_GET);
	int saved = errno;
	ct->get_ctx = NULL;
	nfct_destroy(nct);
	if (r < 0) {
		errno = saved;
		return saved == ENOENT ? 0 : -1;
	}
	if (!out->found) {
		errno = ENOENT;
		return 0;
	}
	return 1;
}

static void inject_failed(struct ct *ct, const struct flow *f, const char *what, int err)
{
	char buf[512];
	ct->st.errors++;
	/* a systematic failure (no NAT support, table full) hits every flow of a
	 * bulk update: one line per second, the rest in the counter */
	time_t now = time(NULL);
	if (now == ct->fail_logged) {
		errno = err;
		return;
	}
	ct->fail_logged = now;
	log_warn("conntrack %s failed: %s%s: %s", what, strerror(err),
		 err == EOPNOTSUPP && (flow_snat(f) || flow_dnat(f))
			 ? " (NAT needs nf_nat and a nat table for this family)"
			 : "",
		 ct_flow_str(f, buf, sizeof(buf)));
	errno = err;
}

int ct_inject(struct ct *ct, const struct flow *f)
{
	int err = flow_check(f);
	if (err != 0) {
		errno = err;
		return -1;
	}
	/* Two rounds: the entry can appear (traffic) or vanish (timeout) between
	 * our lookup and our request. */
	for (int round = 0; round < 2; round++) {
		struct ct_found cur;
		int g = do_get(ct, f, &cur);
		if (g < 0) {
			inject_failed(ct, f, "lookup", errno);
			return -1;
		}
		if (g > 0 && reply_matches(f, &cur.flow)) {
			if (do_update(ct, f, cur.status) == 0) {
				ct->st.updated++;
				return 0;
			}
			if (errno == ENOENT)
				continue;
			/* refused (e.g. a status bit it will not change): replace
			 * the entry, as conntrackd does */
			log_debug("conntrack update refused (%s), replacing the entry",
				  strerror(errno));
		}
		if (g > 0 && do_destroy(ct, f) < 0 && errno != ENOENT) {
			inject_failed(ct, f, "replace (delete)", errno);
			return -1;
		}
		if (do_create(ct, f) == 0) {
			ct->st.injected++;
			return 0;
		}
		if (errno != EEXIST)
			break;
	}
	inject_failed(ct, f, "create", errno);
	return -1;
}

/* ---- batched writes --------------------------------------------------------------------- */

static int batch_open(struct ct *ct)
{
	ct->bfd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	if (ct->bfd < 0)
		return -1;
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	socklen_t sl = sizeof(sa);
	if (bind(ct->bfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(ct->bfd, (struct sockaddr *)&sa, &sl) < 0)
		return -1;
	ct->bportid = sa.nl_pid;
	/* an error reply carries the request's header only, not all of it */
	int one = 1;
	setsockopt(ct->bfd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	/* every reply of a batch is queued before sendmsg returns; the kernel
	 * doubles what it is given. Without CAP_NET_ADMIN the sysctl caps apply and
	 * batch_round() sends less at a time. */
	int sz = CT_BATCH_SOCKBUF / 2;
	if (setsockopt(ct->bfd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
		setsockopt(ct->bfd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	if (setsockopt(ct->bfd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0)
		setsockopt(ct->bfd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	int got = 0;
	socklen_t gl = sizeof(got);
	if (getsockopt(ct->bfd, SOL_SOCKET, SO_SNDBUF, &got, &gl) < 0 || got < 4 * CT_BATCH_MSG)
		got = 4 * CT_BATCH_MSG;
	/* netlink_sendmsg refuses a message longer than sk_sndbuf - 32 */
	ct->bsend_max = (size_t)got - 64 < CT_BATCH_BUF ? (size_t)got - 64 : CT_BATCH_BUF;
	ct->bents = calloc(CT_BATCH_MAX, sizeof(*ct->bents));
	/* zeroed: libnetfilter_conntrack leaves attribute padding unwritten, and the
	 * kernel must not be sent uninitialised heap bytes */
	ct->bbuf = calloc(1, CT_BATCH_BUF);
	ct->brbuf = malloc(CT_BATCH_RBUF);
	if (ct->bents == NULL || ct->bbuf == NULL || ct->brbuf == NULL)
		return -1;
	return 0;
}

/* One request for e at p (room >= CT_BATCH_MSG); its length, 0 on failure. */
static size_t batch_build(struct ct_bent *e, unsigned char *p, uint32_t seq)
{
	struct nf_conntrack *nct;
	/* Writes ask for no acknowledgement: the kernel handles a batch before
	 * sendmsg returns and queues an error for each request that failed, so a
	 * write with no error in a round that lost no reply succeeded
	 * (batch_round()). A reply per request was a tenth of a bulk update's time
	 * on the receiver. A lookup is answered either way. */
	uint16_t type, flags = NLM_F_REQUEST;
	switch (e->step) {
	case CT_B_CREATE:
		nct = create_obj(&e->f);
		type = IPCTNL_MSG_CT_NEW;
		flags |= NLM_F_CREATE | NLM_F_EXCL;
		break;
	case CT_B_GET:
		nct = key_new(&e->f);
		type = IPCTNL_MSG_CT_GET;
		flags |= NLM_F_ACK; /* the entry, then its acknowledgement */
		break;
	case CT_B_UPDATE:
		nct = update_obj(&e->f, e->have_status);
		type = IPCTNL_MSG_CT_NEW;
		break;
	default:
		nct = key_new(&e->f);
		type = IPCTNL_MSG_CT_DELETE;
		break;
	}
	if (nct == NULL)
		return 0;
	size_t hdr = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg));
	memset(p, 0, hdr);
	struct nlmsghdr *nlh = (struct nlmsghdr *)p;
	nlh->nlmsg_len = (uint32_t)hdr;
	nlh->nlmsg_type = (uint16_t)((NFNL_SUBSYS_CTNETLINK << 8) | type);
	nlh->nlmsg_flags = flags;
	nlh->nlmsg_seq = seq;
	struct nfgenmsg *nfh = (struct nfgenmsg *)(p + NLMSG_HDRLEN);
	nfh->nfgen_family = e->f.af;
	nfh->version = NFNETLINK_V0;
	int r = nfct_nlmsg_build(nlh, nct);
	nfct_destroy(nct);
	if (r < 0 || nlh->nlmsg_len > CT_BATCH_MSG)
		return 0;
	return NLMSG_ALIGN(nlh->nlmsg_len);
}

static void batch_fail(struct ct *ct, struct ct_bent *e, const char *what, int err)
{
	e->step = CT_B_DONE;
	ct->bfailed++;
	inject_failed(ct, &e->f, what, err);
}

/* One reply message of the current round. */
static void batch_reply(struct ct *ct, const struct nlmsghdr *nlh, uint32_t base,
			const uint16_t *sent, size_t nsent)
{
	uint32_t k = nlh->nlmsg_seq - base;
	if (k >= nsent)
		return; /* not from this round */
	struct ct_bent *e = &ct->bents[sent[k]];
	if (nlh->nlmsg_type == NLMSG_ERROR) {
		if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(int)))
			return;
		const struct nlmsgerr *ne = NLMSG_DATA(nlh);
		e->answered = true;
		e->err = -ne->error;
		return;
	}
	if (e->step == CT_B_GET &&
	    nlh->nlmsg_type == ((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW)) {
		struct nf_conntrack *nct = nfct_new();
		if (nct != NULL && nfct_nlmsg_parse(nlh, nct) >= 0 &&
		    nct_to_flow(nlh, nct, &e->have, &e->have_status))
			e->found = true;
		if (nct != NULL)
			nfct_destroy(nct);
	}
}

/* What an answered request leads to (ct_inject's decisions, one step at a time). */
static void batch_next(struct ct *ct, struct ct_bent *e)
{
	int err = e->err;
	switch (e->step) {
	case CT_B_CREATE:
		if (err == 0) {
			ct->st.injected++;
			e->step = CT_B_DONE;
		} else if (err == EEXIST) {
			e->step = CT_B_GET;
		} else {
			batch_fail(ct, e, "create", err);
		}
		break;
	case CT_B_GET:
		if (err == 0 && e->found)
			e->step = reply_matches(&e->f, &e->have) ? CT_B_UPDATE : CT_B_DELETE;
		else if (err == 0 || err == ENOENT)
			e->step = CT_B_CREATE;
		else
			batch_fail(ct, e, "lookup", err);
		break;
	case CT_B_UPDATE:
		if (err == 0) {
			ct->st.updated++;
			e->step = CT_B_DONE;
		} else if (err == ENOENT) {
			e->step = CT_B_CREATE;
		} else {
			/* refused (e.g. a status bit it will not change): replace the
			 * entry, as conntrackd does */
			log_debug("conntrack update refused (%s), replacing the entry",
				  strerror(err));
			e->step = CT_B_DELETE;
		}
		break;
	case CT_B_DELETE:
		if (err == 0 || err == ENOENT)
			e->step = CT_B_CREATE;
		else
			batch_fail(ct, e, "replace (delete)", err);
		break;
	default:
		break;
	}
}

/* One request for every pending entry (as many as fit), one sendmsg, then every
 * reply, which the kernel has queued by the time sendmsg returns. An entry whose
 * reply was lost (receive buffer overrun) asks again in the next round. */
static int batch_round(struct ct *ct)
{
	uint16_t sent[CT_BATCH_MAX];
	size_t nsent = 0, len = 0;
	uint32_t base = ct->bseq + 1;
	for (size_t i = 0; i < ct->nbents; i++) {
		struct ct_bent *e = &ct->bents[i];
		if (e->step == CT_B_DONE)
			continue;
		if (len + CT_BATCH_MSG > ct->bsend_max)
			break;
		if (e->steps++ >= CT_BATCH_STEPS) {
			batch_fail(ct, e, e->step == CT_B_CREATE ? "create" : "write",
				   e->err ? e->err : EAGAIN);
			continue;
		}
		size_t n = batch_build(e, ct->bbuf + len, base + (uint32_t)nsent);
		if (n == 0) {
			batch_fail(ct, e, "request", errno ? errno : EINVAL);
			continue;
		}
		e->answered = e->found = false;
		e->err = 0;
		sent[nsent++] = (uint16_t)i;
		len += n;
	}
	if (nsent == 0)
		return 0;
	ct->bseq = base + (uint32_t)nsent - 1;
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	ssize_t w;
	do
		w = sendto(ct->bfd, ct->bbuf, len, 0, (struct sockaddr *)&kernel, sizeof(kernel));
	while (w < 0 && errno == EINTR);
	if (w < 0) {
		int err = errno;
		for (size_t k = 0; k < nsent; k++)
			batch_fail(ct, &ct->bents[sent[k]], "send", err);
		return -1;
	}
	bool lost = false; /* replies lost to an overrun: silence proves nothing */
	for (;;) {
		struct sockaddr_nl peer;
		socklen_t pl = sizeof(peer);
		ssize_t n = recvfrom(ct->bfd, ct->brbuf, CT_BATCH_RBUF, MSG_DONTWAIT,
				     (struct sockaddr *)&peer, &pl);
		if (n < 0) {
			if (errno == ENOBUFS)
				lost = true;
			if (errno == EINTR || errno == ENOBUFS)
				continue;
			break;
		}
		if (pl != sizeof(peer) || peer.nl_pid != 0)
			continue;
		size_t left = (size_t)n;
		for (const struct nlmsghdr *nlh = (const struct nlmsghdr *)ct->brbuf;
		     NLMSG_OK(nlh, left); nlh = NLMSG_NEXT(nlh, left))
			batch_reply(ct, nlh, base, sent, nsent);
	}
	for (size_t k = 0; k < nsent; k++) {
		struct ct_bent *e = &ct->bents[sent[k]];
		if (!e->answered && !lost && e->step != CT_B_GET) {
			e->answered = true; /* no error: done */
			e->err = 0;
		}
		if (e->answered && e->step != CT_B_DONE)
			batch_next(ct, e);
	}
	return 0;
}

static void batch_commit(struct ct *ct);

int ct_batch_add(struct ct *ct, const struct flow *f, bool exists)
{
	int err = flow_check(f);
	if (err != 0) {
		errno = err;
		return -1;
	}
	if (ct->bfd < 0) {
		/* no batch socket: one at a time */
		if (ct_inject(ct, f) < 0)
			ct->bfailed++;
		return 0;
	}
	if (ct->nbents == CT_BATCH_MAX)
		batch_commit(ct);
	struct ct_bent *e = &ct->bents[ct->nbents++];
	memset(e, 0, sizeof(*e));
	e->f = *f;
	e->step = exists ? CT_B_GET : CT_B_CREATE;
	return 0;
}

static void batch_commit(struct ct *ct)
{
	while (ct->nbents > 0) {
		batch_round(ct);
		size_t keep = 0;
		for (size_t i = 0; i < ct->nbents; i++)
			if (ct->bents[i].step != CT_B_DONE)
				ct->bents[keep++] = ct->bents[i];
		ct->nbents = keep;
	}
}

size_t ct_batch_flush(struct ct *ct)
{
	batch_commit(ct);
	size_t failed = ct->bfailed;
	ct->bfailed = 0;
	return failed;
}

int ct_remove(struct ct *ct, const struct flow *f)
{
	int err = flow_check(f);
	if (err != 0) {
		errno = err;
		return -1;
	}
	if (do_destroy(ct, f) < 0) {
		err = errno;
		if (err != ENOENT) {
			ct->st.errors++;
			log_warn("conntrack delete failed: %s", strerror(err));
		}
		errno = err;
		return -1;
	}
	ct->st.removed++;
	return 0;
}

int ct_get(struct ct *ct, const struct flow *key, struct flow *out)
{
	int err = flow_check(key);
	if (err != 0) {
		errno = err;
		return -1;
	}
	struct ct_found cur;
	int r = do_get(ct, key, &cur);
	if (r <= 0) {
		if (r < 0)
			ct->st.errors++;
		return -1;
	}
	*out = cur.flow;
	return 0;
}

int ct_set_ignore(struct ct *ct, int af, const void *addr, uint8_t prefixlen)
{
	if ((af != AF_INET && af != AF_INET6) || prefixlen > addr_len((uint8_t)af) * 8) {
		errno = EINVAL;
		return -1;
	}
	if (ct->nignore >= CT_MAX_IGNORE) {
		errno = ENOSPC;
		return -1;
	}
	struct ct_prefix *p = &ct->ignore[ct->nignore++];
	memset(p, 0, sizeof(*p));
	p->af = (uint8_t)af;
	p->len = prefixlen;
	memcpy(p->addr, addr, addr_len((uint8_t)af));
	return 0;
}

int ct_set_new_events(struct ct *ct, bool on)
{
	if (ct->ev_h == NULL) {
		errno = ENOTCONN;
		return -1;
	}
	int group = NFNLGRP_CONNTRACK_NEW;
	return setsockopt(nfct_fd(ct->ev_h), SOL_NETLINK,
			  on ? NETLINK_ADD_MEMBERSHIP : NETLINK_DROP_MEMBERSHIP, &group,
			  sizeof(group));
}

unsigned ct_set_rcvbuf(struct ct *ct, unsigned bytes)
{
	if (ct->ev_h == NULL)
		return 0;
	/* The kernel doubles what it is given (socket(7), SO_RCVBUF), so ask for
	 * half. nfnl_rcvbufsiz tries SO_RCVBUFFORCE (root, past
	 * net.core.rmem_max) first, then SO_RCVBUF, and returns what it got. */
	unsigned got = nfnl_rcvbufsiz(nfct_nfnlh(ct->ev_h), bytes / 2);
	if (got < bytes)
		log_warn("conntrack event socket buffer is %u bytes, asked for %u", got, bytes);
	else
		log_debug("conntrack event socket buffer: %u bytes", got);
	return got;
}

const struct ct_stats *ct_stats(const struct ct *ct)
{
	return &ct->st;
}

/* ---- open / close ------------------------------------------------------------------------ */

static int ev_open(struct ct *ct)
{
	ct->ev_h = nfct_open(CONNTRACK, NFCT_ALL_CT_GROUPS);
	if (ct->ev_h == NULL)
		return -1;
	int fd = nfct_fd(ct->ev_h);
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	ct_set_rcvbuf(ct, CT_RCVBUF);
	/* The events our own writes cause (a bulk update is thousands) are dropped
	 * in the kernel, before they can fill the socket: a classic BPF filter on
	 * the netlink header's port id (loaded big-endian, hence htonl). One event is
	 * one message per datagram. The check in ev_handler stays as a second line. */
	uint32_t bportid = ct->bportid != 0 ? ct->bportid : ct->own_portid;
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct nlmsghdr, nlmsg_pid)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, htonl(ct->own_portid), 1, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, htonl(bportid), 0, 1),
		BPF_STMT(BPF_RET | BPF_K, 0),
		BPF_STMT(BPF_RET | BPF_K, 0xffffffff),
	};
	struct sock_fprog prog = {.len = sizeof(code) / sizeof(code[0]), .filter = code};
	if (ct->own_portid != 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0)
		log_warn("conntrack: no kernel filter for our own events (%s); filtering them "
			 "here",
			 strerror(errno));
	if (nfct_callback_register2(ct->ev_h, NFCT_T_ALL, ev_handler, ct) < 0)
		return -1;
	ct->rbuf = malloc(CT_EV_SLOTS * CT_EV_SLOT);
	if (ct->rbuf == NULL)
		return -1;
	ct->ev = event_new(ct->base, fd, EV_READ | EV_PERSIST, ev_readable, ct);
	if (ct->ev == NULL || event_add(ct->ev, NULL) < 0)
		return -1;
	return 0;
}

struct ct *ct_open(struct event_base *base, ct_event_cb cb, ct_resync_cb resync, void *arg)
{
	struct ct *ct = calloc(1, sizeof(*ct));
	if (ct == NULL)
		return NULL;
	ct->base = base;
	ct->bfd = -1;
	ct->cb = cb;
	ct->resync = resync;
	ct->arg = arg;
	ct->cmd_h = nfct_open(CONNTRACK, 0);
	ct->dump_h = nfct_open(CONNTRACK, 0);
	if (ct->cmd_h == NULL || ct->dump_h == NULL)
		goto fail;
	/* the port id the kernel puts into events our requests cause */
	ct->own_portid = nfnl_portid(nfct_nfnlh(ct->cmd_h));
	if (nfct_callback_register2(ct->cmd_h, NFCT_T_ALL, get_handler, ct) < 0 ||
	    nfct_callback_register2(ct->dump_h, NFCT_T_ALL, dump_handler, ct) < 0)
		goto fail;
	if (batch_open(ct) < 0) {
		/* ct_batch_add then writes one entry at a time */
		log_warn("conntrack: no socket for batched writes (%s)", strerror(errno));
		if (ct->bfd >= 0)
			close(ct->bfd);
		ct->bfd = -1;
		ct->bportid = 0;
	}
	if (base != NULL && ev_open(ct) < 0)
		goto fail;
	return ct;
fail : {
	int saved = errno;
	log_err("cannot open ctnetlink: %s (is nf_conntrack_netlink available?)", strerror(saved));
	ct_close(ct);
	errno = saved;
	return NULL;
}
}

void ct_close(struct ct *ct)
{
	if (ct == NULL)
		return;
	if (ct->ev != NULL)
		event_free(ct->ev);
	if (ct->dump_ev != NULL)
		event_free(ct->dump_ev);
	free(ct->dbuf);
	if (ct->ev_h != NULL)
		nfct_close(ct->ev_h);
	if (ct->cmd_h != NULL)
		nfct_close(ct->cmd_h);
	if (ct->dump_h != NULL)
		nfct_close(ct->dump_h);
	if (ct->bfd >= 0)
		close(ct->bfd);
	free(ct->bents);
	free(ct->bbuf);
	free(ct->brbuf);
	free(ct->rbuf);
	free(ct);
}

/* ---- kernel checks ------------------------------------------------------------------------ */

static int read_sysctl(const char *name, long *out)
{
	char path[128], buf[32];
	snprintf(path, sizeof(path), "/proc/sys/net/netfilter/%s", name);
	FILE *fp = fopen(path, "r");
	if (fp == NULL)
		return -1;
	char *ok = fgets(buf, sizeof(buf), fp);
	fclose(fp);
	if (ok == NULL)
		return -1;
	*out = strtol(buf, NULL, 10);
	return 0;
}

static void appendf(char *why, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void appendf(char *why, size_t len, const char *fmt, ...)
{
	size_t used = strnlen(why, len);
	if (used + 1 >= len)
		return;
	if (used > 0) {
		snprintf(why + used, len - used, "; ");
		used = strnlen(why, len);
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why + used, len - used, fmt, ap);
	va_end(ap);
}

long ct_sysctl_events(void)
{
	long v;
	return read_sysctl("nf_conntrack_events", &v) == 0 ? v : -1;
}

int ct_check_kernel(char *why, size_t len)
{
	int blockers = 0;
	long v;
	if (why == NULL || len == 0) {
		static char scratch[512];
		why = scratch;
		len = sizeof(scratch);
	}
	why[0] = '\0';
	if (read_sysctl("nf_conntrack_max", &v) < 0) {
		appendf(why, len,
			"nf_conntrack is not loaded in this network namespace "
			"(/proc/sys/net/netfilter/nf_conntrack_max is missing): "
			"modprobe nf_conntrack nf_conntrack_netlink");
		return 1;
	}
	if (read_sysctl("nf_conntrack_events", &v) == 0 && v == 2)
		appendf(why, len,
			"net.netfilter.nf_conntrack_events=2: connections created before carpd "
			"subscribed send no events (not even DESTROY); the periodic dump covers "
			"them, or set it to 1");
	if (read_sysctl("nf_conntrack_events", &v) == 0 && v == 0) {
		appendf(why, len,
			"net.netfilter.nf_conntrack_events=0: the kernel sends no conntrack "
			"events, "
			"local connections cannot be replicated (set it to 1 or 2)");
		blockers++;
	}
	if (read_sysctl("nf_conntrack_tcp_loose", &v) == 0) {
		if (v == 0)
			appendf(why, len,
				"net.netfilter.nf_conntrack_tcp_loose=0: after a failover, TCP "
				"connections that were not injected beforehand are not picked up "
				"mid-stream (their packets are INVALID); injected ones pass. Set "
				"it "
				"to 1 unless every connection is replicated before failover");
		else
			appendf(why, len,
				"net.netfilter.nf_conntrack_tcp_loose=%ld: TCP connections missed "
				"by "
				"replication are picked up mid-stream after a failover",
				v);
	}
	if (read_sysctl("nf_conntrack_acct", &v) == 0 && v == 0)
		appendf(why, len,
			"net.netfilter.nf_conntrack_acct=0: no packet/byte counters (informational "
			"only)");
	/* nf_nat is not checked: it is often built in (no /sys/module entry), and
	 * injecting a NAT flow without it fails with a message that says so */
	return blockers;
}

/* ---- formatting ---------------------------------------------------------------------------- */

const char *ct_tcp_state_name(uint8_t state)
{
	static const char *const names[] = {"NONE",	"SYN_SENT",   "SYN_RECV", "ESTABLISHED",
					    "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT",
					    "CLOSE",	"SYN_SENT2"};
	return state < sizeof(names) / sizeof(names[0]) ? names[state] : "UNKNOWN";
}

static const char *proto_name(uint8_t proto, char *buf, size_t len)
{
	switch (proto) {
	case IPPROTO_TCP:
		return "tcp";
	case IPPROTO_UDP:
		return "udp";
	case IPPROTO_UDPLITE:
		return "udplite";
	case IPPROTO_SCTP:
		return "sctp";
	case IPPROTO_DCCP:
		return "dccp";
	case IPPROTO_GRE:
		return "gre";
	case IPPROTO_ICMP:
		return "icmp";
	case IPPROTO_ICMPV6:
		return "icmpv6";
	default:
		snprintf(buf, len, "%u", proto);
		return buf;
	}
}

const char *ct_flow_str(const struct flow *f, char *buf, size_t len)
{
	char a[4][INET6_ADDRSTRLEN], pn[8];
	int af = f->af == AF_INET6 ? AF_INET6 : AF_INET;
	inet_ntop(af, &f->orig.src, a[0], sizeof(a[0]));
	inet_ntop(af, &f->orig.dst, a[1], sizeof(a[1]));
	inet_ntop(af, &f->reply.src, a[2], sizeof(a[2]));
	inet_ntop(af, &f->reply.dst, a[3], sizeof(a[3]));
	int n = snprintf(buf, len, "proto=%s src=%s dst=%s rsrc=%s rdst=%s",
			 proto_name(f->proto, pn, sizeof(pn)), a[0], a[1], a[2], a[3]);
	size_t used = n < 0 ? 0 : (size_t)n;
#define APPEND(...)                                                                                \
	do {                                                                                       \
		if (used < len) {                                                                  \
			int m = snprintf(buf + used, len - used, __VA_ARGS__);                     \
			used += m < 0 ? 0 : (size_t)m;                                             \
		}                                                                                  \
	} while (0)
	if (proto_is_icmp(f->proto))
		APPEND(" type=%u code=%u id=%u rid=%u", f->icmp_type, f->icmp_code, f->orig.sport,
		       f->reply.sport);
	else
		APPEND(" sport=%u dport=%u rsport=%u rdport=%u", f->orig.sport, f->orig.dport,
		       f->reply.sport, f->reply.dport);
	if (f->proto == IPPROTO_TCP)
		APPEND(" state=%s", ct_tcp_state_name(f->tcp_state));
	if (f->wscale_known)
		APPEND(" wscale=%u,%u", f->wscale_orig, f->wscale_repl);
	APPEND(" status=%s%s%s", f->status & FLOW_SEEN_REPLY ? "SEEN_REPLY" : "",
	       (f->status & FLOW_SEEN_REPLY) && (f->status & FLOW_ASSURED) ? "," : "",
	       f->status & FLOW_ASSURED ? "ASSURED" : (f->status ? "" : "none"));
	APPEND(" timeout=%u mark=%u zone=%u", f->timeout, f->mark, f->zone);
	if (f->packets[0] || f->packets[1])
		APPEND(" packets=%llu,%llu bytes=%llu,%llu", (unsigned long long)f->packets[0],
		       (unsigned long long)f->packets[1], (unsigned long long)f->bytes[0],
		       (unsigned long long)f->bytes[1]);
#undef APPEND
	return buf;
}

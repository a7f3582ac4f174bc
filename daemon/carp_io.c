/*
 * daemon/carp_io.c - protocol 112 on the wire.
 *
 * Receive: one raw socket per parent interface and family, bound to the
 * interface, joined to 224.0.0.18 / ff02::12; every packet is validated by
 * proto/carp and every drop is counted by its carpstats reason.
 * Send: in multicast mode whole Ethernet frames through one AF_PACKET socket, so
 * the source MAC is the virtual MAC 00:00:5e:00:01:<vhid> exactly as FreeBSD
 * sends it (the switch learns where the master is from it); in unicast mode
 * (peer / peer6) through raw IP sockets, routed normally, from the real MAC.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <netinet/ip.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "daemon/carpd.h"

static const struct in_addr carp_group4 = {.s_addr = 0x120000e0}; /* 224.0.0.18, network order */
static const struct in6_addr carp_group6 = {
	.s6_addr = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12}};

#define BADLOG_INTERVAL 10 /* seconds between two log lines about bad packets, per vhid */

static uint64_t random64(void)
{
	uint64_t v = 0;
	if (getrandom(&v, sizeof(v), 0) != sizeof(v)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		v = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_sec;
	}
	return v;
}

/* Rate-limited log about dropped packets: the first one, then one summary
 * line per interval, never one line per packet. */
static void badlog(struct vhid *vh, struct carp_if *cif, const char *fmt, const char *src,
		   const char *why)
{
	time_t now = time(NULL);
	time_t *last = vh ? &vh->badlog_last : &cif->badlog_last;
	uint64_t *supp = vh ? &vh->badlog_suppressed : &cif->badlog_suppressed;
	if (*last && now - *last < BADLOG_INTERVAL) {
		(*supp)++;
		return;
	}
	char where[32];
	if (vh)
		snprintf(where, sizeof(where), "%u@%s", vh->cfg.vhid, vh->cfg.ifname);
	else
		snprintf(where, sizeof(where), "%s", cif->name);
	/* the summary counts every kind: the counters in carpctl status say which */
	if (*supp)
		log_warn("carp: %s: %s from %s: %s (%llu more problems of any kind in the last "
			 "%lds, not logged: see the counters in carpctl status)",
			 where, fmt, src, why, (unsigned long long)*supp, (long)(now - *last));
	else
		log_warn("carp: %s: %s from %s: %s", where, fmt, src, why);
	*last = now;
	*supp = 0;
}

static struct vhid *find_vhid(struct carpd *cd, struct carp_if *cif, uint8_t vhid, int family)
{
	for (size_t i = 0; i < cd->nvhids; i++) {
		struct vhid *vh = cd->vhids[i];
		if (vh->cif != cif || vh->cfg.vhid != vhid)
			continue;
		if ((family == AF_INET && vh->has_v4) || (family == AF_INET6 && vh->has_v6))
			return vh;
	}
	return NULL;
}

static struct vhid *find_vhid_any(struct carpd *cd, struct carp_if *cif, uint8_t vhid)
{
	for (size_t i = 0; i < cd->nvhids; i++)
		if (cd->vhids[i]->cif == cif && cd->vhids[i]->cfg.vhid == vhid)
			return cd->vhids[i];
	return NULL;
}

static void carp_input(struct carp_if *cif, int family, int ttl, const void *srcaddr,
		       const uint8_t *payload, size_t len)
{
	struct carpd *cd = cif->carpd;
	char src[INET6_ADDRSTRLEN];
	inet_ntop(family, srcaddr, src, sizeof(src));

	struct carp_adv adv;
	enum carp_err err = carp_decode(payload, len, &adv);
	if (err == CARP_ERR_BADLEN) {
		cif->counters.badlen++;
		badlog(NULL, cif, "dropped a packet", src, carp_err_explain(err));
		return;
	}
	if (err == CARP_ERR_BADVER) {
		/* Usually a VRRPv3 router (keepalived) sharing the segment. */
		struct vhid *vh = len >= 2 ? find_vhid_any(cd, cif, payload[1]) : NULL;
		if (vh)
			vh->counters.badver++;
		else
			cif->counters.badver++;
		badlog(vh, cif, "dropped a packet", src, carp_err_explain(err));
		return;
	}
	if (err == CARP_ERR_BADSUM) {
		struct vhid *vh = find_vhid_any(cd, cif, adv.vhid);
		if (vh)
			vh->counters.badsum++;
		else
			cif->counters.badsum++;
		badlog(vh, cif, "dropped a packet", src, carp_err_explain(err));
		return;
	}
	struct vhid *vh = find_vhid(cd, cif, adv.vhid, family);
	if (!vh) {
		cif->counters.badvhid++;
		log_debug("carp: %s: advertisement for vhid %u (not configured here) from %s",
			  cif->name, adv.vhid, src);
		return;
	}
	bool multicast = family == AF_INET ? !vh->cfg.has_peer : !vh->cfg.has_peer6;
	if (multicast && ttl != CARP_DFLTTL) {
		vh->counters.badttl++;
		badlog(vh, cif, "TTL/hop limit is not 255", src,
		       "the packet crossed a router or was forged");
		return;
	}
	/* Our own advertisement looped back (a reflecting bridge): we never receive
	 * what we send through AF_PACKET, so the source address tells. No check on
	 * the counter: FreeBSD continues from the peer's counter, so two masters
	 * can legitimately send the same value and would ignore each other forever. */
	if ((family == AF_INET && cif->has_src4 && !memcmp(srcaddr, &cif->src4, 4)) ||
	    (family == AF_INET6 && cif->has_src6 && !memcmp(srcaddr, &cif->src6, 16))) {
		vh->counters.badif++;
		return;
	}
	if (!carp_auth_verify(&vh->auth, &adv)) {
		vh->counters.badauth++;
		badlog(vh, cif, "authentication failed", src,
		       "password or address list differs (every node of a vhid needs the same "
		       "password and the same addresses)");
		return;
	}
	vh->counters.ipackets++;
	vhid_input(vh, family, &adv, src);
}

/* SO_RXQ_OVFL: the kernel's count of packets this socket's full queue dropped,
 * cumulative, in every message; we add what is new to the interface's counter. */
static void count_overflow(struct carp_if *cif, struct msghdr *msg, uint32_t *seen)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SO_RXQ_OVFL)
			continue;
		uint32_t total;
		memcpy(&total, CMSG_DATA(c), sizeof(total));
		if (total != *seen) {
			cif->counters.rcvdrops += (uint32_t)(total - *seen);
			*seen = total;
		}
	}
}

static void recv4_cb(evutil_socket_t fd, short what, void *arg)
{
	struct carp_if *cif = arg;
	uint8_t buf[2048];
	union {
		char buf[CMSG_SPACE(sizeof(uint32_t))];
		struct cmsghdr align;
	} control;
	/* bounded: at most 64 packets per wakeup so one flood cannot starve timers */
	for (int i = 0; i < 64; i++) {
		struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
		struct msghdr msg = {.msg_iov = &iov,
				     .msg_iovlen = 1,
				     .msg_control = control.buf,
				     .msg_controllen = sizeof(control.buf)};
		ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
		if (n < 0)
			return;
		count_overflow(cif, &msg, &cif->ovfl4);
		if (n < 20 || (buf[0] >> 4) != 4) {
			cif->counters.badlen++;
			continue;
		}
		size_t ihl = (size_t)(buf[0] & 0x0f) * 4;
		size_t total = (size_t)buf[2] << 8 | buf[3];
		if (ihl < 20 || (size_t)n < ihl) {
			cif->counters.badlen++;
			continue;
		}
		if (total > (size_t)n || total < ihl)
			total = (size_t)n;
		struct in_addr src;
		memcpy(&src, buf + 12, 4);
		carp_input(cif, AF_INET, buf[8], &src, buf + ihl, total - ihl);
	}
}

static void recv6_cb(evutil_socket_t fd, short what, void *arg)
{
	struct carp_if *cif = arg;
	uint8_t buf[2048];
	union {
		char buf[CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(struct in6_pktinfo)) +
			 CMSG_SPACE(sizeof(uint32_t))];
		struct cmsghdr align;
	} control;
	for (int i = 0; i < 64; i++) {
		struct sockaddr_in6 from;
		struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
		struct msghdr msg = {.msg_name = &from,
				     .msg_namelen = sizeof(from),
				     .msg_iov = &iov,
				     .msg_iovlen = 1,
				     .msg_control = control.buf,
				     .msg_controllen = sizeof(control.buf)};
		ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
		if (n < 0)
			return;
		count_overflow(cif, &msg, &cif->ovfl6);
		int hlim = -1;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
			if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT)
				memcpy(&hlim, CMSG_DATA(c), sizeof(int));
		}
		carp_input(cif, AF_INET6, hlim, &from.sin6_addr, buf, (size_t)n);
	}
}

/* Every vhid of an interface times its advertisements from the same start, so
 * hundreds can arrive in the same millisecond: a queue of 1 MiB (the default is
 * about 200 KiB, a few hundred packets) rides that out while the loop is busy,
 * and what is lost anyway is counted (rcvdrops). */
#define RX_QUEUE_BYTES (1 << 20)
static void rx_queue_setup(int fd)
{
	int bytes = RX_QUEUE_BYTES, one = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
	(void)setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one));
}

static int open_rx4(struct carp_if *cif)
{
	int fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, CARP_PROTO);
	if (fd < 0)
		return -1;
	rx_queue_setup(fd);
	int zero = 0;
	struct ip_mreqn mreq = {.imr_multiaddr = carp_group4, .imr_ifindex = cif->ifindex};
	if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, cif->name, strlen(cif->name)) < 0 ||
	    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_ALL, &zero, sizeof(zero)) < 0 ||
	    setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof(mreq)) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static int open_rx6(struct carp_if *cif)
{
	int fd = socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, CARP_PROTO);
	if (fd < 0)
		return -1;
	rx_queue_setup(fd);
	int one = 1, zero = 0;
	struct ipv6_mreq mreq = {.ipv6mr_multiaddr = carp_group6,
				 .ipv6mr_interface = (unsigned)cif->ifindex};
	if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, cif->name, strlen(cif->name)) < 0 ||
	    setsockopt(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_ALL, &zero, sizeof(zero)) < 0 ||
	    setsockopt(fd, IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, &mreq, sizeof(mreq)) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int carp_if_open(struct carp_if *cif)
{
	struct carpd *cd = cif->carpd;
	int rc = 0;
	carp_if_close(cif);
	if (cif->ifindex <= 0)
		return -1;
	if (cif->uses_v4) {
		cif->fd4 = open_rx4(cif);
		cif->ovfl4 = 0; /* a new socket counts from 0 */
		if (cif->fd4 < 0) {
			log_err("carp: %s: cannot open the IPv4 CARP socket: %s", cif->name,
				strerror(errno));
			rc = -1;
		} else {
			cif->ev4 =
				event_new(cd->base, cif->fd4, EV_READ | EV_PERSIST, recv4_cb, cif);
			event_add(cif->ev4, NULL);
		}
	}
	if (cif->uses_v6) {
		cif->fd6 = open_rx6(cif);
		cif->ovfl6 = 0;
		if (cif->fd6 < 0) {
			log_err("carp: %s: cannot open the IPv6 CARP socket: %s", cif->name,
				strerror(errno));
			rc = -1;
		} else {
			cif->ev6 =
				event_new(cd->base, cif->fd6, EV_READ | EV_PERSIST, recv6_cb, cif);
			event_add(cif->ev6, NULL);
		}
	}
	return rc;
}

void carp_if_close(struct carp_if *cif)
{
	if (cif->ev4)
		event_free(cif->ev4);
	if (cif->ev6)
		event_free(cif->ev6);
	cif->ev4 = cif->ev6 = NULL;
	if (cif->fd4 >= 0)
		close(cif->fd4);
	if (cif->fd6 >= 0)
		close(cif->fd6);
	cif->fd4 = cif->fd6 = -1;
}

struct carp_if *carp_if_get(struct carpd *cd, const char *name)
{
	for (struct carp_if *cif = cd->ifs; cif; cif = cif->next)
		if (!strcmp(cif->name, name))
			return cif;
	struct carp_if *cif = calloc(1, sizeof(*cif));
	if (!cif)
		return NULL;
	cif->carpd = cd;
	snprintf(cif->name, sizeof(cif->name), "%s", name);
	cif->fd4 = cif->fd6 = -1;
	cif->next = cd->ifs;
	cd->ifs = cif;
	link_refresh_if(cd, cif);
	return cif;
}

/* Close and forget interfaces no vhid uses any more (after a reload). */
void carp_if_put_unused(struct carpd *cd)
{
	struct carp_if **pp = &cd->ifs;
	while (*pp) {
		struct carp_if *cif = *pp;
		bool used = false;
		for (size_t i = 0; i < cd->nvhids; i++)
			used |= cd->vhids[i]->cif == cif;
		if (used) {
			pp = &cif->next;
			continue;
		}
		*pp = cif->next;
		carp_if_close(cif);
		if_restore_sysctls(cif);
		free(cif);
	}
}

int carp_io_init(struct carpd *cd)
{
	cd->pkt_fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	cd->uni4_fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_RAW);
	cd->uni6_fd = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, CARP_PROTO);
	if (cd->pkt_fd < 0 || cd->uni4_fd < 0) {
		log_err("cannot open raw sockets: %s (carpd needs CAP_NET_RAW)", strerror(errno));
		return -1;
	}
	if (cd->uni6_fd >= 0) {
		int hops = CARP_DFLTTL, tclass = CARP_TOS;
		setsockopt(cd->uni6_fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &hops, sizeof(hops));
		setsockopt(cd->uni6_fd, IPPROTO_IPV6, IPV6_TCLASS, &tclass, sizeof(tclass));
	}
	return 0;
}

void carp_io_fini(struct carpd *cd)
{
	if (cd->pkt_fd >= 0)
		close(cd->pkt_fd);
	if (cd->uni4_fd >= 0)
		close(cd->uni4_fd);
	if (cd->uni6_fd >= 0)
		close(cd->uni6_fd);
	cd->pkt_fd = cd->uni4_fd = cd->uni6_fd = -1;
}

static int send_frame(struct carpd *cd, struct carp_if *cif, const uint8_t *frame, size_t len,
		      uint16_t ethertype)
{
	struct sockaddr_ll sll = {.sll_family = AF_PACKET,
				  .sll_protocol = htons(ethertype),
				  .sll_ifindex = cif->ifindex,
				  .sll_halen = 6};
	memcpy(sll.sll_addr, frame, 6);
	ssize_t n =
		sendto(cd->pkt_fd, frame, len, MSG_DONTWAIT, (struct sockaddr *)&sll, sizeof(sll));
	return n == (ssize_t)len ? 0 : -1;
}

/* FreeBSD carp_prepare_ad(): a fresh random counter for every packet until a
 * peer has been heard, then the peer's counter + 1, + 1 per packet. */
static uint64_t next_counter(struct vhid *vh)
{
	if (vh->init_counter)
		vh->counter = random64();
	else
		vh->counter++;
	return vh->counter;
}

static void send_one(struct vhid *vh, int family, bool bowout)
{
	struct carpd *cd = vh->carpd;
	struct carp_if *cif = vh->cif;
	struct carp_adv adv;
	uint8_t carp[CARP_HDR_LEN], frame[128], vmac[6];
	int rc;

	carp_adv_init(&adv, vh->cfg.vhid, bowout ? CARP_BOWOUT_ADVBASE : vh->cfg.advbase,
		      bowout ? CARP_BOWOUT_ADVSKEW : vhid_effective_skew(vh), next_counter(vh));
	carp_auth_hmac(&vh->auth, adv.counter, adv.md);
	carp_encode(&adv, carp);
	carp_vmac(vh->cfg.vhid, vmac);

	if (family == AF_INET) {
		struct in_addr src = {0};
		if (cif->has_src4)
			src = cif->src4;
		if (vh->cfg.has_peer) {
			/* unicast: routed by the kernel, real MAC; IP_HDRINCL keeps
			 * FreeBSD's header (TOS 0xE0, DF, TTL 255) */
			uint8_t zero[6] = {0};
			size_t len = carp_build_ipv4(frame, sizeof(frame), zero, zero, src,
						     vh->cfg.peer, carp);
			struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr = vh->cfg.peer};
			rc = sendto(cd->uni4_fd, frame + 14, len - 14, 0, (struct sockaddr *)&to,
				    sizeof(to)) == (ssize_t)(len - 14)
				     ? 0
				     : -1;
		} else {
			uint8_t dmac[6];
			ether_mcast_mac_v4(carp_group4, dmac);
			size_t len = carp_build_ipv4(frame, sizeof(frame), vmac, dmac, src,
						     carp_group4, carp);
			rc = send_frame(cd, cif, frame, len, ETH_P_IP);
		}
	} else {
		struct in6_addr src = IN6ADDR_ANY_INIT;
		if (cif->has_src6)
			src = cif->src6;
		if (vh->cfg.has_peer6) {
			struct sockaddr_in6 to = {.sin6_family = AF_INET6,
						  .sin6_addr = vh->cfg.peer6};
			if (IN6_IS_ADDR_LINKLOCAL(&vh->cfg.peer6))
				to.sin6_scope_id = (uint32_t)cif->ifindex;
			rc = cd->uni6_fd >= 0 && sendto(cd->uni6_fd, carp, sizeof(carp), 0,
							(struct sockaddr *)&to,
							sizeof(to)) == (ssize_t)sizeof(carp)
				     ? 0
				     : -1;
		} else {
			uint8_t dmac[6];
			ether_mcast_mac_v6(&carp_group6, dmac);
			size_t len = carp_build_ipv6(frame, sizeof(frame), vmac, dmac, &src,
						     &carp_group6, carp);
			rc = send_frame(cd, cif, frame, len, ETH_P_IPV6);
		}
	}
	if (rc == 0) {
		vh->counters.opackets++;
	} else {
		vh->counters.oerrors++;
		char who[32];
		snprintf(who, sizeof(who), "%s", family == AF_INET ? "IPv4" : "IPv6");
		badlog(vh, cif, "cannot send advertisement", who, strerror(errno));
	}
}

void carp_send_ad(struct vhid *vh, bool bowout)
{
	if (vh->cif->ifindex <= 0)
		return;
	if (vh->has_v4)
		send_one(vh, AF_INET, bowout);
	if (vh->has_v6)
		send_one(vh, AF_INET6, bowout);
}

/* Offsets of the announcement rounds after taking over: switches and clients
 * that missed the first burst (a busy bridge, a host waking up) catch a later one. */
static const unsigned garp_rounds_ms[] = {0, 500, 2000};

void carp_send_garp(struct vhid *vh)
{
	struct carpd *cd = vh->carpd;
	/* a node that is handing over never speaks for the virtual MAC again */
	if (cd->handing_over)
		return;
	uint8_t vmac[6], frame[128];
	carp_vmac(vh->cfg.vhid, vmac);
	for (size_t i = 0; i < vh->cfg.naddrs; i++) {
		const struct conf_addr *a = &vh->cfg.addrs[i];
		size_t len;
		uint16_t type;
		if (a->family == AF_INET) {
			/* Ethernet source = virtual MAC too, so switches learn the port */
			len = garp_build(frame, sizeof(frame), vmac, vmac, a->addr.v4);
			type = ETH_P_ARP;
		} else {
			len = una_build(frame, sizeof(frame), vmac, &a->addr.v6, &a->addr.v6, true);
			type = ETH_P_IPV6;
		}
		if (len && send_frame(cd, vh->cif, frame, len, type) < 0)
			vh->counters.oerrors++;
	}
	vh->garp_round++;
	size_t nrounds = sizeof(garp_rounds_ms) / sizeof(garp_rounds_ms[0]);
	if ((size_t)vh->garp_round < nrounds) {
		unsigned ms = garp_rounds_ms[vh->garp_round] - garp_rounds_ms[vh->garp_round - 1];
		struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
		evtimer_add(vh->garp_timer, &tv);
	}
}

/*
 * daemon/link.c - link and address state from the kernel, through a libnl
 * cache manager on a non-blocking netlink socket in the event loop. A parent
 * losing its carrier (or going administratively down) puts its vhids in INIT
 * and demotes the node; the first usable address of each parent is the source
 * of its advertisements (FreeBSD's carp_best_ifa()).
 */
#include <errno.h>
#include <netlink/cache.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <string.h>

#include "daemon/carpd.h"

#ifndef IFF_LOWER_UP
#define IFF_LOWER_UP 0x10000 /* carrier; linux/if.h clashes with net/if.h */
#endif

static void refresh_sources(struct carpd *cd, struct carp_if *cif)
{
	bool had4 = cif->has_src4, had6 = cif->has_src6;
	struct in_addr old4 = cif->src4;
	struct in6_addr old6 = cif->src6;
	bool ll_found = false;
	cif->has_src4 = cif->has_src6 = false;
	if (!cd->addr_cache || cif->ifindex <= 0)
		return;
	for (struct nl_object *obj = nl_cache_get_first(cd->addr_cache); obj;
	     obj = nl_cache_get_next(obj)) {
		struct rtnl_addr *ra = (struct rtnl_addr *)obj;
		if (rtnl_addr_get_ifindex(ra) != cif->ifindex)
			continue;
		struct nl_addr *local = rtnl_addr_get_local(ra);
		if (!local)
			continue;
		if (rtnl_addr_get_family(ra) == AF_INET && !cif->has_src4 &&
		    !(rtnl_addr_get_flags(ra) & IFA_F_SECONDARY)) {
			memcpy(&cif->src4, nl_addr_get_binary_addr(local), 4);
			cif->has_src4 = true;
		} else if (rtnl_addr_get_family(ra) == AF_INET6 && !ll_found) {
			struct in6_addr a;
			memcpy(&a, nl_addr_get_binary_addr(local), 16);
			/* FreeBSD ends up using the link-local: it is created first */
			if (IN6_IS_ADDR_LINKLOCAL(&a) || !cif->has_src6) {
				cif->src6 = a;
				cif->has_src6 = true;
				ll_found = IN6_IS_ADDR_LINKLOCAL(&a);
			}
		}
	}
	if (cif->has_src4 != had4 || (had4 && memcmp(&old4, &cif->src4, 4)) ||
	    cif->has_src6 != had6 || (had6 && memcmp(&old6, &cif->src6, 16)))
		log_debug("carp: %s: advertisement sources updated", cif->name);
}

/* The link object of an interface. Not rtnl_link_get_by_name(): the cache also
 * holds per-family objects of the same name (AF_INET6 RTM_NEWLINK messages from
 * IPv6 address configuration, AF_BRIDGE ones) whose flags are not kept current,
 * and the lookup may return one of those: after the first up/down of a link, its
 * carrier changes went unseen. Only the AF_UNSPEC object is the link itself. */
static struct rtnl_link *find_link(struct nl_cache *cache, const char *name)
{
	for (struct nl_object *obj = nl_cache_get_first(cache); obj; obj = nl_cache_get_next(obj)) {
		struct rtnl_link *l = (struct rtnl_link *)obj;
		const char *n = rtnl_link_get_name(l);
		if (n && !strcmp(n, name) && rtnl_link_get_family(l) == AF_UNSPEC) {
			nl_object_get(obj);
			return l;
		}
	}
	return NULL;
}

void link_refresh_if(struct carpd *cd, struct carp_if *cif)
{
	bool was_up = cif->link_up;
	int old_index = cif->ifindex;
	struct rtnl_link *link = cd->link_cache ? find_link(cd->link_cache, cif->name) : NULL;
	if (!link) {
		cif->seen = false;
		cif->link_up = false;
	} else {
		unsigned flags = rtnl_link_get_flags(link);
		cif->seen = true;
		cif->ifindex = rtnl_link_get_ifindex(link);
		cif->link_up = (flags & IFF_UP) && (flags & IFF_LOWER_UP);
		struct nl_addr *ll = rtnl_link_get_addr(link);
		if (ll && nl_addr_get_len(ll) == 6)
			memcpy(cif->mac, nl_addr_get_binary_addr(ll), 6);
		rtnl_link_put(link);
	}
	refresh_sources(cd, cif);
	if (cif->seen && cif->ifindex != old_index && old_index > 0) {
		log_info("carp: %s was re-created (index %d -> %d)", cif->name, old_index,
			 cif->ifindex);
		carp_if_open(cif);
	}
	if (was_up != cif->link_up) {
		log_info("carp: %s link %s", cif->name, cif->link_up ? "up" : "down");
		for (size_t i = 0; i < cd->nvhids; i++)
			if (cd->vhids[i]->cif == cif)
				vhid_link_changed(cd->vhids[i]);
	}
}

static void refresh_all(struct carpd *cd)
{
	for (struct carp_if *cif = cd->ifs; cif; cif = cif->next)
		link_refresh_if(cd, cif);
}

static void cache_change_cb(struct nl_cache *cache, struct nl_object *obj, int action, void *arg)
{
	refresh_all(arg);
}

static void nl_ready_cb(evutil_socket_t fd, short what, void *arg)
{
	struct carpd *cd = arg;
	int err = nl_cache_mngr_data_ready(cd->nl_mngr);
	if (err < 0 && err != -NLE_AGAIN) {
		/* Most likely the socket overran (ENOBUFS): events were lost, so
		 * reload both caches from a fresh dump and re-evaluate everything. */
		cd->nl_resyncs++;
		log_warn("netlink: %s; resynchronising link and address state", nl_geterror(err));
		struct nl_sock *sk = nl_socket_alloc();
		if (sk && nl_connect(sk, NETLINK_ROUTE) == 0) {
			nl_cache_refill(sk, cd->link_cache);
			nl_cache_refill(sk, cd->addr_cache);
		}
		if (sk)
			nl_socket_free(sk);
		refresh_all(cd);
	}
}

int link_init(struct carpd *cd)
{
	int err;
	cd->nl_mon = nl_socket_alloc();
	if (!cd->nl_mon)
		return -1;
	err = nl_cache_mngr_alloc(cd->nl_mon, NETLINK_ROUTE, NL_AUTO_PROVIDE, &cd->nl_mngr);
	if (err < 0) {
		log_err("netlink: %s", nl_geterror(err));
		return -1;
	}
	nl_socket_set_buffer_size(cd->nl_mon, 4 << 20, 0);
	if ((err = nl_cache_mngr_add(cd->nl_mngr, "route/link", cache_change_cb, cd,
				     &cd->link_cache)) < 0 ||
	    (err = nl_cache_mngr_add(cd->nl_mngr, "route/addr", cache_change_cb, cd,
				     &cd->addr_cache)) < 0) {
		log_err("netlink: %s", nl_geterror(err));
		return -1;
	}
	cd->nl_ev = event_new(cd->base, nl_cache_mngr_get_fd(cd->nl_mngr), EV_READ | EV_PERSIST,
			      nl_ready_cb, cd);
	event_add(cd->nl_ev, NULL);
	refresh_all(cd);
	return 0;
}

void link_fini(struct carpd *cd)
{
	if (cd->nl_ev)
		event_free(cd->nl_ev);
	cd->nl_ev = NULL;
	if (cd->nl_mngr)
		nl_cache_mngr_free(cd->nl_mngr); /* frees the caches, not our socket */
	cd->nl_mngr = NULL;
	cd->link_cache = cd->addr_cache = NULL;
	if (cd->nl_mon)
		nl_socket_free(cd->nl_mon);
	cd->nl_mon = NULL;
}

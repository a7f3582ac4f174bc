/*
 * daemon/vip.c - the virtual addresses and the virtual MAC.
 *
 * Each vhid owns a macvlan over its parent interface whose MAC is
 * 00:00:5e:00:01:<vhid> (keepalived's use_vmac, FreeBSD's carp MAC). It stays
 * down while BACKUP, so the parent's filter does not accept the virtual MAC and
 * nothing answers for the addresses; on MASTER it comes up and the addresses are
 * installed on it, so the kernel answers ARP and neighbour solicitations with the
 * virtual MAC and the clients' caches never change on failover. All of it goes
 * through libnl-route-3 on one request socket.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/macvlan.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daemon/carpd.h"

static int sysctl_write(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, value, strlen(value));
	close(fd);
	return n < 0 ? -1 : 0;
}

static int sysctl_read(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

static void sysctl_if(const char *fam, const char *ifname, const char *key, const char *value)
{
	char path[128];
	snprintf(path, sizeof(path), "/proc/sys/net/%s/conf/%s/%s", fam, ifname, key);
	if (sysctl_write(path, value) < 0 && errno != ENOENT)
		log_warn("cannot set %s to %s: %s", path, value, strerror(errno));
}

/*
 * On the parent: answer ARP only for addresses configured on the interface the
 * request came in on (arp_ignore=1), so the parent never answers for a virtual
 * address living on the macvlan, and pick ARP source addresses from the
 * outgoing interface (arp_announce=2). Restored on exit.
 */
int if_prepare_sysctls(struct carp_if *cif)
{
	char path[128];
	if (!cif->sysctl_saved) {
		snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/arp_ignore", cif->name);
		if (sysctl_read(path, cif->saved_arp_ignore, sizeof(cif->saved_arp_ignore)) < 0)
			return -1;
		snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/arp_announce", cif->name);
		if (sysctl_read(path, cif->saved_arp_announce, sizeof(cif->saved_arp_announce)) < 0)
			return -1;
		cif->sysctl_saved = true;
	}
	sysctl_if("ipv4", cif->name, "arp_ignore", "1");
	sysctl_if("ipv4", cif->name, "arp_announce", "2");
	return 0;
}

void if_restore_sysctls(struct carp_if *cif)
{
	if (!cif->sysctl_saved)
		return;
	sysctl_if("ipv4", cif->name, "arp_ignore", cif->saved_arp_ignore);
	sysctl_if("ipv4", cif->name, "arp_announce", cif->saved_arp_announce);
	cif->sysctl_saved = false;
}

int vip_init(struct carpd *cd)
{
	cd->nl_cmd = nl_socket_alloc();
	if (!cd->nl_cmd || nl_connect(cd->nl_cmd, NETLINK_ROUTE) < 0) {
		log_err("cannot open a netlink socket");
		return -1;
	}
	return 0;
}

void vip_fini(struct carpd *cd)
{
	if (cd->nl_cmd)
		nl_socket_free(cd->nl_cmd);
	cd->nl_cmd = NULL;
}

static void vip_name(const struct vhid *vh, char *buf, size_t len)
{
	/* "vh1.lan0"; a long parent name falls back to its ifindex */
	if (snprintf(buf, len, "vh%u.%s", vh->cfg.vhid, vh->cfg.ifname) >= (int)len)
		snprintf(buf, len, "vh%u.if%d", vh->cfg.vhid, vh->cif->ifindex);
}

static int link_set_up(struct carpd *cd, int ifindex, bool up)
{
	struct rtnl_link *orig = rtnl_link_alloc(), *change = rtnl_link_alloc();
	int err = -NLE_NOMEM;
	if (orig && change) {
		rtnl_link_set_ifindex(orig, ifindex);
		if (up)
			rtnl_link_set_flags(change, IFF_UP);
		else
			rtnl_link_unset_flags(change, IFF_UP);
		err = rtnl_link_change(cd->nl_cmd, orig, change, 0);
	}
	rtnl_link_put(orig);
	rtnl_link_put(change);
	return err;
}

static int link_delete_index(struct carpd *cd, int ifindex)
{
	struct rtnl_link *link = rtnl_link_alloc();
	if (!link)
		return -NLE_NOMEM;
	rtnl_link_set_ifindex(link, ifindex);
	int err = rtnl_link_delete(cd->nl_cmd, link);
	rtnl_link_put(link);
	return err;
}

int vip_create(struct vhid *vh)
{
	struct carpd *cd = vh->carpd;
	uint8_t mac[6];
	if (vh->cif->ifindex <= 0)
		return -1;
	carp_vmac(vh->cfg.vhid, mac);
	vip_name(vh, vh->mvname, sizeof(vh->mvname));

	/* A previous run that crashed may have left it behind. */
	struct rtnl_link *old = NULL;
	if (rtnl_link_get_kernel(cd->nl_cmd, 0, vh->mvname, &old) == 0) {
		log_info("carp: %u@%s: removing stale interface %s", vh->cfg.vhid, vh->cfg.ifname,
			 vh->mvname);
		link_delete_index(cd, rtnl_link_get_ifindex(old));
		rtnl_link_put(old);
	}

	struct rtnl_link *link = rtnl_link_macvlan_alloc();
	struct nl_addr *ll = nl_addr_build(AF_LLC, mac, sizeof(mac));
	int err = -NLE_NOMEM;
	if (link && ll) {
		rtnl_link_set_name(link, vh->mvname);
		rtnl_link_set_link(link, vh->cif->ifindex);
		rtnl_link_set_addr(link, ll);
		/* bridge, not private: in private (and VEPA) mode the kernel hands a
		 * multicast frame whose source MAC is one of our macvlans to that
		 * macvlan only, so while two nodes are MASTER each would stop hearing
		 * the other's advertisements (they carry the same virtual MAC) and the
		 * split brain would never heal. */
		rtnl_link_macvlan_set_mode(link, rtnl_link_macvlan_str2mode("bridge"));
		err = rtnl_link_add(cd->nl_cmd, link, NLM_F_CREATE | NLM_F_EXCL);
	}
	nl_addr_put(ll);
	rtnl_link_put(link);
	if (err < 0) {
		log_err("carp: %u@%s: cannot create macvlan %s: %s", vh->cfg.vhid, vh->cfg.ifname,
			vh->mvname, nl_geterror(err));
		return -1;
	}
	struct rtnl_link *got = NULL;
	if (rtnl_link_get_kernel(cd->nl_cmd, 0, vh->mvname, &got) < 0) {
		log_err("carp: %u@%s: macvlan %s vanished", vh->cfg.vhid, vh->cfg.ifname,
			vh->mvname);
		return -1;
	}
	vh->mv_ifindex = rtnl_link_get_ifindex(got);
	rtnl_link_put(got);
	/* No link-local, no SLAAC, no DAD on the virtual interface: it must never
	 * send anything on its own (the switch would learn the virtual MAC on a
	 * BACKUP's port) and its addresses must be usable at once on takeover. */
	sysctl_if("ipv6", vh->mvname, "addr_gen_mode", "1");
	sysctl_if("ipv6", vh->mvname, "accept_dad", "0");
	sysctl_if("ipv6", vh->mvname, "accept_ra", "0");
	sysctl_if("ipv6", vh->mvname, "autoconf", "0");
	sysctl_if("ipv4", vh->mvname, "arp_ignore", "1");
	sysctl_if("ipv4", vh->mvname, "arp_announce", "2");
	/* Client packets reach the macvlan but the route back to them is via the
	 * parent: strict reverse-path filtering would drop them. */
	sysctl_if("ipv4", vh->mvname, "rp_filter", "0");
	if_prepare_sysctls(vh->cif);
	return 0;
}

/* A planned stop keeps the addresses until the new MASTER advertises, for the
 * packets already on their way; but an ARP reply from here (to a broadcast request
 * both nodes hear) would teach the switch this port for the virtual MAC again,
 * and the clients' frames would go nowhere once the macvlan is gone. arp_ignore 8:
 * answer no request on this interface. (No such switch exists for neighbour
 * solicitations; the window is the ~0.1 s of the handover.) */
void vip_mute(struct vhid *vh)
{
	if (vh->mv_ifindex > 0)
		sysctl_if("ipv4", vh->mvname, "arp_ignore", "8");
}

void vip_destroy(struct vhid *vh)
{
	if (vh->mv_ifindex > 0) {
		int err = link_delete_index(vh->carpd, vh->mv_ifindex);
		if (err < 0 && err != -NLE_NODEV && err != -NLE_OBJ_NOTFOUND)
			log_warn("carp: cannot remove %s: %s", vh->mvname, nl_geterror(err));
	}
	vh->mv_ifindex = 0;
	vh->addrs_up = false;
}

/* Does the parent already have an address in the same prefix? Then the prefix
 * route stays on the parent and the virtual address is added without one
 * (noprefixroute), so failover never touches the routing table. */
static bool parent_covers(struct vhid *vh, const struct conf_addr *a)
{
	struct carpd *cd = vh->carpd;
	if (!cd->addr_cache)
		return false;
	bool found = false;
	for (struct nl_object *obj = nl_cache_get_first(cd->addr_cache); obj && !found;
	     obj = nl_cache_get_next(obj)) {
		struct rtnl_addr *ra = (struct rtnl_addr *)obj;
		if (rtnl_addr_get_ifindex(ra) != vh->cif->ifindex ||
		    rtnl_addr_get_family(ra) != a->family)
			continue;
		struct nl_addr *local = rtnl_addr_get_local(ra);
		if (!local || rtnl_addr_get_prefixlen(ra) != a->prefixlen)
			continue;
		unsigned bits = a->prefixlen;
		const uint8_t *p = nl_addr_get_binary_addr(local);
		const uint8_t *q = (const uint8_t *)&a->addr;
		unsigned full = bits / 8, rem = bits % 8;
		if (memcmp(p, q, full) != 0)
			continue;
		if (rem && ((p[full] ^ q[full]) & (0xff << (8 - rem))))
			continue;
		found = true;
	}
	return found;
}

static int addr_op(struct vhid *vh, const struct conf_addr *a, bool add)
{
	struct carpd *cd = vh->carpd;
	struct rtnl_addr *ra = rtnl_addr_alloc();
	struct nl_addr *local = nl_addr_build(a->family, &a->addr, a->family == AF_INET ? 4 : 16);
	int err = -NLE_NOMEM;
	if (ra && local) {
		nl_addr_set_prefixlen(local, a->prefixlen);
		rtnl_addr_set_ifindex(ra, vh->mv_ifindex);
		rtnl_addr_set_family(ra, a->family);
		rtnl_addr_set_local(ra, local);
		rtnl_addr_set_prefixlen(ra, a->prefixlen);
		if (add) {
			unsigned flags = IFA_F_NODAD;
			if (parent_covers(vh, a))
				flags |= IFA_F_NOPREFIXROUTE;
			rtnl_addr_set_flags(ra, flags);
			err = rtnl_addr_add(cd->nl_cmd, ra, NLM_F_REPLACE);
		} else {
			err = rtnl_addr_delete(cd->nl_cmd, ra, 0);
		}
	}
	nl_addr_put(local);
	rtnl_addr_put(ra);
	if (err < 0 && !(add && err == -NLE_EXIST) &&
	    !(!add && (err == -NLE_NOADDR || err == -NLE_NODEV || err == -NLE_OBJ_NOTFOUND))) {
		char buf[INET6_ADDRSTRLEN + 4];
		log_warn("carp: %u@%s: cannot %s %s: %s", vh->cfg.vhid, vh->cfg.ifname,
			 add ? "add" : "remove", conf_addr_str(a, buf, sizeof(buf)),
			 nl_geterror(err));
		return -1;
	}
	return 0;
}

int vip_up(struct vhid *vh)
{
	if (vh->mv_ifindex <= 0)
		return -1;
	int rc = link_set_up(vh->carpd, vh->mv_ifindex, true) < 0 ? -1 : 0;
	for (size_t i = 0; i < vh->cfg.naddrs; i++)
		if (addr_op(vh, &vh->cfg.addrs[i], true) < 0)
			rc = -1;
	vh->addrs_up = true;
	return rc;
}

void vip_down(struct vhid *vh)
{
	if (vh->mv_ifindex <= 0)
		return;
	for (size_t i = 0; i < vh->cfg.naddrs; i++)
		addr_op(vh, &vh->cfg.addrs[i], false);
	link_set_up(vh->carpd, vh->mv_ifindex, false);
	vh->addrs_up = false;
}

static bool addr_in(const struct conf_addr *a, const struct conf_vhid *cfg)
{
	for (size_t i = 0; i < cfg->naddrs; i++) {
		const struct conf_addr *b = &cfg->addrs[i];
		if (a->family == b->family && a->prefixlen == b->prefixlen &&
		    !memcmp(&a->addr, &b->addr, a->family == AF_INET ? 4 : 16))
			return true;
	}
	return false;
}

int vip_sync_addrs(struct vhid *vh, const struct conf_vhid *old)
{
	if (!vh->addrs_up)
		return 0;
	int rc = 0;
	for (size_t i = 0; i < old->naddrs; i++)
		if (!addr_in(&old->addrs[i], &vh->cfg))
			addr_op(vh, &old->addrs[i], false);
	for (size_t i = 0; i < vh->cfg.naddrs; i++)
		if (!addr_in(&vh->cfg.addrs[i], old) && addr_op(vh, &vh->cfg.addrs[i], true) < 0)
			rc = -1;
	return rc;
}

/* At start: a crashed run may have left macvlans with virtual MACs (and their
 * addresses) on our parents; remove them before anything answers for them. */
int64_t vip_unicast_rx(struct vhid *vh)
{
	struct rtnl_link *link = NULL;
	if (vh->mv_ifindex <= 0 ||
	    rtnl_link_get_kernel(vh->carpd->nl_cmd, vh->mv_ifindex, NULL, &link) < 0)
		return -1;
	/* macvlan counts broadcast as multicast; both reach every macvlan anyway */
	uint64_t all = rtnl_link_get_stat(link, RTNL_LINK_RX_PACKETS);
	uint64_t multi = rtnl_link_get_stat(link, RTNL_LINK_MULTICAST);
	rtnl_link_put(link);
	return all >= multi ? (int64_t)(all - multi) : 0;
}

void vip_cleanup_stale(struct carpd *cd)
{
	if (!cd->link_cache)
		return;
	int stale[256];
	size_t nstale = 0;
	for (struct nl_object *obj = nl_cache_get_first(cd->link_cache); obj;
	     obj = nl_cache_get_next(obj)) {
		struct rtnl_link *link = (struct rtnl_link *)obj;
		const char *type = rtnl_link_get_type(link);
		struct nl_addr *ll = rtnl_link_get_addr(link);
		if (!type || strcmp(type, "macvlan") || !ll || nl_addr_get_len(ll) != 6)
			continue;
		const uint8_t *mac = nl_addr_get_binary_addr(ll);
		static const uint8_t prefix[5] = {0x00, 0x00, 0x5e, 0x00, 0x01};
		if (memcmp(mac, prefix, sizeof(prefix)) != 0)
			continue;
		int lower = rtnl_link_get_link(link);
		for (struct carp_if *cif = cd->ifs; cif; cif = cif->next) {
			if (cif->ifindex == lower && nstale < 256) {
				log_info("carp: removing stale virtual MAC interface %s on %s",
					 rtnl_link_get_name(link), cif->name);
				stale[nstale++] = rtnl_link_get_ifindex(link);
			}
		}
	}
	for (size_t i = 0; i < nstale; i++)
		link_delete_index(cd, stale[i]);
}

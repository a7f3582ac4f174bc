/*
 * daemon/carpd.h - the daemon's runtime state: one owner for each piece.
 *
 * struct carpd is the whole node; struct carp_if is one parent interface (its
 * sockets, link state and source addresses); struct vhid is one (vhid, interface)
 * block of the configuration with its state machine, timers and counters.
 * The control socket and the output layer read these structures; only the engine
 * (carp.c), the I/O layer (carp_io.c), the address layer (vip.c) and the link
 * monitor (link.c) write them.
 */
#ifndef CARPD_DAEMON_CARPD_H
#define CARPD_DAEMON_CARPD_H

#include <event2/event.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "daemon/conf.h"
#include "proto/carp.h"

enum carp_state { CARP_STATE_INIT = 0, CARP_STATE_BACKUP, CARP_STATE_MASTER };

/* The FreeBSD carpstats counters we keep, per vhid or per interface. */
struct carp_counters {
	uint64_t ipackets;    /* valid advertisements received (both families) */
	uint64_t opackets;    /* advertisements sent (both families) */
	uint64_t badauth;     /* HMAC mismatch: password or address list differs */
	uint64_t badttl;      /* TTL / hop limit not 255 in multicast mode */
	uint64_t badvhid;     /* no such vhid on the receiving interface and family */
	uint64_t badsum;      /* checksum */
	uint64_t badlen;      /* too short */
	uint64_t badver;      /* version not 2 (VRRPv3 neighbours land here) */
	uint64_t badif;	      /* our own packet looped back (counter we sent) */
	uint64_t oerrors;     /* send failures */
	uint64_t transitions; /* state changes */
	uint64_t conflicts;   /* a second MASTER was heard while we were MASTER */
	uint64_t rcvdrops;    /* lost in our receive socket's queue (SO_RXQ_OVFL) */
};

struct carp_if {
	struct carp_if *next;
	struct carpd *carpd;
	char name[IF_NAMESIZE];
	int ifindex;
	uint8_t mac[6];
	bool link_up;	       /* IFF_UP and carrier (IFF_LOWER_UP) */
	bool seen;	       /* exists in the kernel */
	int fd4, fd6;	       /* raw protocol-112 receive sockets, -1 if unused */
	uint32_t ovfl4, ovfl6; /* the sockets' drop counts seen last (SO_RXQ_OVFL) */
	struct event *ev4, *ev6;
	bool has_src4, has_src6;
	struct in_addr src4;  /* first IPv4 address of the interface (advert source) */
	struct in6_addr src6; /* its IPv6 link-local, else first IPv6 address */
	bool uses_v4, uses_v6;
	struct carp_counters counters; /* drops that cannot be tied to one vhid */
	time_t badlog_last;	       /* log rate limiting, as for a vhid */
	uint64_t badlog_suppressed;
	/* sysctl values we changed and restore on exit */
	char saved_arp_ignore[16], saved_arp_announce[16];
	bool sysctl_saved;
};

struct vhid {
	struct carpd *carpd;
	struct conf_vhid cfg;
	struct carp_if *cif;
	enum carp_state state;
	bool has_v4, has_v6; /* the vhid has addresses of this family */
	struct carp_auth auth;
	uint64_t counter;	  /* FreeBSD sc_counter */
	bool init_counter;	  /* true until a valid peer advertisement was heard */
	bool link_demoted;	  /* our +240 for a down parent is in force */
	struct event *ad_timer;	  /* MASTER: next advertisement */
	struct event *md_timer4;  /* BACKUP: master down, IPv4 */
	struct event *md_timer6;  /* BACKUP: master down, IPv6 */
	struct event *garp_timer; /* MASTER: gratuitous ARP / NA repeats */
	int garp_round;
	/* the macvlan carrying the virtual MAC */
	char mvname[IF_NAMESIZE];
	int mv_ifindex;
	bool addrs_up; /* addresses are installed and the macvlan is up */
	/* what operators look at */
	struct timespec last_transition; /* CLOCK_REALTIME */
	char last_reason[96];
	bool peer_heard;
	int peer_family;
	char peer_addr[INET6_ADDRSTRLEN];
	struct timespec peer_last_heard; /* CLOCK_MONOTONIC */
	uint8_t peer_advbase, peer_advskew;
	bool handover_pending; /* planned stop: bowed out, waiting for the new MASTER */
	struct carp_counters counters;
	/* log rate limiting for bad packets: one line per interval per reason */
	time_t badlog_last;
	uint64_t badlog_suppressed;
};

struct control;
struct hooks;
struct pfsyncd;
struct nl_sock;
struct nl_cache_mngr;
struct nl_cache;

/* The loop's priorities (event_base_priority_init): events get the middle one,
 * libevent's default; the background read of the conntrack table the lowest. */
#define CARPD_PRIO_LEVELS 3

struct carpd {
	struct event_base *base;
	const char *conf_path;
	const char *sock_override; /* -s */
	const char *ro_override;   /* -r: the read-only socket */
	bool foreground;
	struct conf *conf;
	struct vhid **vhids;
	size_t nvhids;
	struct carp_if *ifs;
	/* demotion: FreeBSD's net.inet.carp.demotion; link-down adds +240 per vhid */
	int demotion;	   /* operator part: 'carpctl demote N' */
	int link_demotion; /* automatic part: 240 per vhid whose parent is down */
	bool maintenance;  /* pfSense persistent maintenance mode: advskew 254 */
	bool stopping;
	bool handing_over;	     /* planned stop: MASTERs bowed out, addresses kept */
	struct event *handover_ev;   /* fires when every new MASTER spoke, or at the deadline */
	struct timespec handover_t0; /* CLOCK_MONOTONIC: the stop signal */
	bool drain_started;	     /* the new MASTERs spoke: draining the switch */
	int64_t drain_rx;	     /* unicast frames on our macvlans at the last look */
	/* sockets */
	int pkt_fd;  /* AF_PACKET: multicast adverts, GARP, NA with the virtual MAC */
	int uni4_fd; /* raw IPv4 (IP_HDRINCL) for unicast peers */
	int uni6_fd; /* raw IPv6 for unicast peers */
	/* netlink */
	struct nl_sock *nl_cmd; /* requests: macvlan, addresses */
	struct nl_sock *nl_mon; /* cache manager socket */
	struct nl_cache_mngr *nl_mngr;
	struct nl_cache *link_cache, *addr_cache;
	struct event *nl_ev;
	uint64_t nl_resyncs;
	struct control *control;
	struct hooks *hooks;
	struct pfsyncd *pfsync; /* NULL without a pfsync block */
	struct event *sig_term, *sig_int, *sig_hup, *sig_chld, *watchdog;
	struct timespec started;
};

/* ---- carp.c: the state machine -------------------------------------------- */
const char *carp_state_name(enum carp_state st);
struct vhid *vhid_create(struct carpd *cd, const struct conf_vhid *cfg);
void vhid_destroy(struct vhid *vh, bool planned);
/* Reconfigure in place (SIGHUP) without a transition where possible. */
void vhid_update(struct vhid *vh, const struct conf_vhid *cfg);
/* Start the machine: INIT -> BACKUP if the parent link is up. */
void vhid_start(struct vhid *vh);
void vhid_input(struct vhid *vh, int family, const struct carp_adv *adv, const char *src);
void vhid_link_changed(struct vhid *vh);
void vhid_force(struct vhid *vh, enum carp_state st, const char *reason);
/* clamp(advskew + demotion, 0, 240), what goes on the wire */
uint8_t vhid_effective_skew(const struct vhid *vh);
int carpd_total_demotion(const struct carpd *cd);
/* Milliseconds from t0 (CLOCK_MONOTONIC) to now. */
long long mono_ms_since(const struct timespec *t0);
/* A demotion or maintenance change: every MASTER advertises at once. */
void carpd_demotion_changed(struct carpd *cd);
void carpd_set_maintenance(struct carpd *cd, bool on);
void carpd_adjust_demotion(struct carpd *cd, int delta);
/* Planned stop, first step: every MASTER bows out but keeps its addresses and
 * virtual MAC until the new MASTER's first advertisement is heard (so nothing is
 * lost in between), then cd->handover_ev fires. Returns how many vhids it waits
 * for (0: nothing to hand over, stop at once). */
size_t carpd_begin_handover(struct carpd *cd);

/* ---- carp_io.c: sockets ----------------------------------------------------- */
int carp_io_init(struct carpd *cd);
void carp_io_fini(struct carpd *cd);
int carp_if_open(struct carp_if *cif);
void carp_if_close(struct carp_if *cif);
/* Send one advertisement per family the vhid has; bowout = advbase/advskew 255. */
void carp_send_ad(struct vhid *vh, bool bowout);
void carp_send_garp(struct vhid *vh);
struct carp_if *carp_if_get(struct carpd *cd, const char *name);
void carp_if_put_unused(struct carpd *cd);

/* ---- vip.c: the virtual MAC interface and its addresses ------------------------ */
int vip_init(struct carpd *cd);
void vip_fini(struct carpd *cd);
int vip_create(struct vhid *vh);   /* the macvlan, down, no addresses */
void vip_destroy(struct vhid *vh); /* removes the macvlan (addresses go with it) */
int vip_up(struct vhid *vh);	   /* addresses on, link up */
void vip_down(struct vhid *vh);	   /* addresses off, link down */
void vip_mute(struct vhid *vh);	   /* handing over: the kernel answers no ARP there */
int vip_sync_addrs(struct vhid *vh, const struct conf_vhid *old);
void vip_cleanup_stale(struct carpd *cd);
/* Unicast frames the vhid's macvlan has received (rx_packets - rx_multicast, from
 * the kernel now), -1 when unknown: whether the switch still sends the virtual
 * MAC's traffic here. */
int64_t vip_unicast_rx(struct vhid *vh);
int if_prepare_sysctls(struct carp_if *cif);
void if_restore_sysctls(struct carp_if *cif);

/* ---- link.c: netlink link and address monitoring ------------------------------ */
int link_init(struct carpd *cd);
void link_fini(struct carpd *cd);
void link_refresh_if(struct carpd *cd, struct carp_if *cif);

/* ---- hooks.c: notify program ---------------------------------------------------- */
int hooks_init(struct carpd *cd);
void hooks_fini(struct carpd *cd);
void hooks_run(struct carpd *cd, const struct vhid *vh, enum carp_state from, enum carp_state to,
	       const char *reason);
void hooks_reap(struct carpd *cd);

/* ---- priv.c: capabilities ------------------------------------------------------- */
/* Keep CAP_NET_RAW and CAP_NET_ADMIN (plus CAP_SETUID/CAP_SETGID permitted, not
 * effective, when keep_setid), clear the rest, set no_new_privs; logs what is kept. */
int priv_drop(bool keep_setid);
bool priv_can_setid(void);  /* CAP_SETUID and CAP_SETGID are permitted */
int priv_raise_setid(void); /* make them effective (the hook child, before setuid) */

/* ---- state.c: persistent state (maintenance) -------------------------------------- */
bool state_load_maintenance(const struct conf *conf);
int state_save_maintenance(const struct conf *conf, bool on);

/* ---- log.c ----------------------------------------------------------------------- */
void log_init(bool foreground);
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* notify.c: systemd's notification protocol (sd_notify(3)) without libsystemd.
 * Send "READY=1" and the like to $NOTIFY_SOCKET: 1 sent, 0 no socket, -1 error. */
int carpd_notify(const char *state);
/* $WATCHDOG_USEC when it is meant for this process, else 0 */
uint64_t carpd_watchdog_usec(void);

#endif

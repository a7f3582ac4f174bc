/*
 * daemon/main.c - carpd: arguments, configuration, signals, systemd, the loop.
 *
 *   carpd [-d] [-n] [-f FILE] [-s SOCKET] [-r SOCKET]   (CONTRACT §2, carpd(8))
 */
#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/carpd.h"
#include "daemon/control.h"
#include "daemon/pfsync.h"

static void usage(void)
{
	fprintf(stderr, "usage: carpd [-d] [-n] [-f FILE] [-s SOCKET] [-r SOCKET]\n");
	exit(1);
}

static void print_errors(const struct conf_errors *errs)
{
	for (size_t i = 0; i < errs->count; i++)
		fprintf(stderr, "%s\n", errs->msg[i]);
}

static const char *control_path(const struct carpd *cd, const struct conf *conf)
{
	if (cd->sock_override)
		return cd->sock_override;
	return conf->control_set ? conf->control : CONF_DEFAULT_CONTROL;
}

/* the read-only socket's path, "" for none */
static const char *control_ro_path_of(const struct carpd *cd, const struct conf *conf)
{
	return cd->ro_override ? cd->ro_override : conf->control_ro;
}

static struct vhid *find_runtime(struct carpd *cd, const struct conf_vhid *cfg)
{
	for (size_t i = 0; i < cd->nvhids; i++)
		if (cd->vhids[i]->cfg.vhid == cfg->vhid &&
		    !strcmp(cd->vhids[i]->cfg.ifname, cfg->ifname))
			return cd->vhids[i];
	return NULL;
}

/* Everything that needs more than CAP_NET_RAW and CAP_NET_ADMIN happens here, before
 * priv_drop(): the vhids' sockets and macvlans; vhid_start() comes after. */
static int open_vhids(struct carpd *cd)
{
	cd->vhids = calloc(cd->conf->nvhids ? cd->conf->nvhids : 1, sizeof(*cd->vhids));
	if (!cd->vhids)
		return -1;
	for (size_t i = 0; i < cd->conf->nvhids; i++) {
		struct vhid *vh = vhid_create(cd, &cd->conf->vhids[i]);
		if (!vh)
			return -1;
		cd->vhids[cd->nvhids++] = vh;
	}
	for (struct carp_if *cif = cd->ifs; cif; cif = cif->next) {
		if (!cif->seen) {
			log_err("interface %s does not exist", cif->name);
			return -1;
		}
		if (carp_if_open(cif) < 0)
			return -1;
	}
	vip_cleanup_stale(cd);
	return 0;
}

/* SIGHUP: parse the new file; if it is valid, apply the difference. vhids whose
 * block did not change are not touched at all (no timer reset, no transition). */
static void reload(struct carpd *cd)
{
	struct conf_errors errs = {0};
	carpd_notify("RELOADING=1");
	struct conf *nc = conf_parse_file(cd->conf_path, &errs);
	if (nc && conf_check_system(nc, &errs) > 0) {
		conf_free(nc);
		nc = NULL;
	}
	if (!nc) {
		for (size_t i = 0; i < errs.count; i++)
			log_err("reload refused: %s", errs.msg[i]);
		log_err("reload refused: %s is invalid, the running configuration stays",
			cd->conf_path);
		carpd_notify("READY=1");
		return;
	}
	struct conf *old = cd->conf;
	/* remove vhids that are gone */
	size_t kept = 0;
	for (size_t i = 0; i < cd->nvhids; i++) {
		struct vhid *vh = cd->vhids[i];
		bool present = false;
		for (size_t j = 0; j < nc->nvhids; j++)
			present |= nc->vhids[j].vhid == vh->cfg.vhid &&
				   !strcmp(nc->vhids[j].ifname, vh->cfg.ifname);
		if (present) {
			cd->vhids[kept++] = vh;
		} else {
			log_info("carp: %u@%s: removed from the configuration", vh->cfg.vhid,
				 vh->cfg.ifname);
			vhid_destroy(vh, true);
		}
	}
	cd->nvhids = kept;
	struct vhid **grown = realloc(cd->vhids, (nc->nvhids ? nc->nvhids : 1) * sizeof(*grown));
	if (!grown) {
		log_err("reload: out of memory");
		conf_free(nc);
		return;
	}
	cd->vhids = grown;
	cd->conf = nc;
	for (size_t j = 0; j < nc->nvhids; j++) {
		struct vhid *vh = find_runtime(cd, &nc->vhids[j]);
		if (vh) {
			if (!conf_vhid_equal(&vh->cfg, &nc->vhids[j])) {
				bool opened4 = vh->cif->uses_v4, opened6 = vh->cif->uses_v6;
				vhid_update(vh, &nc->vhids[j]);
				if (vh->cif->uses_v4 != opened4 || vh->cif->uses_v6 != opened6)
					carp_if_open(vh->cif);
			}
			continue;
		}
		vh = vhid_create(cd, &nc->vhids[j]);
		if (!vh) {
			log_err("carp: %u@%s: cannot start", nc->vhids[j].vhid,
				nc->vhids[j].ifname);
			continue;
		}
		cd->vhids[cd->nvhids++] = vh;
		if ((vh->has_v4 && vh->cif->fd4 < 0) || (vh->has_v6 && vh->cif->fd6 < 0))
			carp_if_open(vh->cif);
		log_info("carp: %u@%s: added", vh->cfg.vhid, vh->cfg.ifname);
		vhid_start(vh);
	}
	carp_if_put_unused(cd);
	if (strcmp(control_path(cd, old), control_path(cd, nc))) {
		/* the old socket stays if the new one cannot be opened */
		if (control_open(cd, control_path(cd, nc)) < 0)
			log_err("control socket %s could not be opened", control_path(cd, nc));
	}
	/* Setting a socket's group needs CAP_CHOWN, given up at start: the read-only
	 * socket is opened at start only. */
	if (strcmp(control_ro_path(cd), control_ro_path_of(cd, nc)) ||
	    strcmp(control_ro_group(cd), nc->control_ro_group))
		log_warn("control-ro changed: it takes effect when carpd restarts");
	if (nc->notify_user[0] && !priv_can_setid())
		log_warn("notify-user %s: carpd gave up setuid/setgid at start (no notify-user "
			 "then); the notify program will not run until carpd restarts",
			 nc->notify_user);
	conf_free(old);
	log_info("configuration reloaded from %s", cd->conf_path);
	carpd_notify("READY=1");
}

static void shutdown_all(struct carpd *cd, bool planned)
{
	cd->stopping = true;
	for (size_t i = 0; i < cd->nvhids; i++)
		vhid_destroy(cd->vhids[i], planned);
	cd->nvhids = 0;
	for (struct carp_if *cif = cd->ifs; cif; cif = cif->next)
		if_restore_sysctls(cif);
}

#define DRAIN_STEP_MS 50   /* how often we look for traffic still reaching us */
#define DRAIN_MAX_MS  2000 /* from the signal, whatever the switch does */

static int64_t unicast_rx_total(struct carpd *cd)
{
	int64_t total = 0;
	for (size_t i = 0; i < cd->nvhids; i++) {
		int64_t n = vip_unicast_rx(cd->vhids[i]);
		if (n > 0)
			total += n;
	}
	return total;
}

/*
 * Planned stop, second step: the new MASTERs spoke (or 0.5 s passed). A switch
 * moves the virtual MAC to the new MASTER's port when it learns from its frames,
 * and a software switch with a flow cache (Open vSwitch) can take hundreds of
 * milliseconds to do so: meanwhile the clients' frames still come to us. So we
 * keep our addresses and forward until no unicast frame has reached our macvlans
 * for DRAIN_STEP_MS (at most DRAIN_MAX_MS after the signal), and only then remove
 * them: what the switch still sends us is forwarded, not dropped.
 */
static void handover_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct carpd *cd = arg;
	size_t left = 0;
	for (size_t i = 0; i < cd->nvhids; i++)
		left += cd->vhids[i]->handover_pending;
	if (left) {
		log_warn("handover: %zu vhid(s) heard no new MASTER within 0.5 s (no backup?); "
			 "stopping anyway",
			 left);
	} else {
		int64_t rx = unicast_rx_total(cd);
		long long since = mono_ms_since(&cd->handover_t0);
		if ((!cd->drain_started || rx != cd->drain_rx) && since < DRAIN_MAX_MS) {
			cd->drain_started = true;
			cd->drain_rx = rx;
			struct timeval tv = {0, DRAIN_STEP_MS * 1000};
			evtimer_add(cd->handover_ev, &tv);
			return;
		}
		log_info(
			"handover: no more traffic for the virtual MACs %lld ms after the signal%s",
			since, since >= DRAIN_MAX_MS ? " (limit reached)" : "");
	}
	shutdown_all(cd, false); /* the bow-outs went out already */
	event_base_loopexit(cd->base, NULL);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct carpd *cd = arg;
	switch (sig) {
	case SIGHUP:
		reload(cd);
		break;
	case SIGCHLD:
		hooks_reap(cd);
		break;
	default:
		if (!cd->handing_over && !cd->stopping) {
			carpd_notify("STOPPING=1");
			/* replicated state first, then the addresses */
			pfsyncd_flush(cd);
			clock_gettime(CLOCK_MONOTONIC, &cd->handover_t0);
			size_t n = carpd_begin_handover(cd);
			if (n > 0) {
				/* keep forwarding until the new MASTERs speak (a backup takes
				 * over at once on a bow-out); at most 0.5 s, the whole delay
				 * when there is no backup */
				struct timeval tv = {0, 500000};
				log_info("signal %d: stopping; %zu vhid(s) handed over, addresses "
					 "kept "
					 "until the new MASTER advertises",
					 (int)sig, n);
				evtimer_add(cd->handover_ev, &tv);
				break;
			}
		}
		log_info("signal %d: stopping", (int)sig);
		shutdown_all(cd, true);
		event_base_loopexit(cd->base, NULL);
		break;
	}
}

static void watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	/* The loop ran this timer, so the loop is alive. */
	carpd_notify("WATCHDOG=1");
}

int main(int argc, char **argv)
{
	struct carpd cd = {0};
	bool check_only = false;
	int opt;
	cd.conf_path = CONF_DEFAULT_FILE;
	cd.pkt_fd = cd.uni4_fd = cd.uni6_fd = -1;
	while ((opt = getopt(argc, argv, "dnf:s:r:h")) != -1) {
		switch (opt) {
		case 'd':
			cd.foreground = true;
			break;
		case 'n':
			check_only = true;
			break;
		case 'f':
			cd.conf_path = optarg;
			break;
		case 's':
			cd.sock_override = optarg;
			break;
		case 'r':
			cd.ro_override = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();

	struct conf_errors errs = {0};
	cd.conf = conf_parse_file(cd.conf_path, &errs);
	if (cd.conf)
		conf_check_system(cd.conf, &errs);
	if (!cd.conf || errs.count || check_only) {
		print_errors(&errs);
		conf_free(cd.conf);
		return errs.count ? 1 : 0;
	}

	log_init(cd.foreground);
	signal(SIGPIPE, SIG_IGN);
	/* Precise timers: without the flag libevent reads CLOCK_MONOTONIC_COARSE, which
	 * moves in jiffies (4 ms at HZ=250). A 1 ms timer then fired 1 to 4 ms late: the
	 * pfsync send bursts of a bulk update came every 4.5 ms instead of every 1.1,
	 * and fast mode's advertisement intervals (advskew/256 s) were off by as much. */
	struct event_config *ecfg = event_config_new();
	if (ecfg) {
		event_config_set_flag(ecfg, EVENT_BASE_FLAG_PRECISE_TIMER);
		cd.base = event_base_new_with_config(ecfg);
		event_config_free(ecfg);
	}
	/* Three priorities: every event gets the middle one (libevent's default,
	 * n/2) but the background read of the conntrack table (ct_dump_start), which
	 * gets the lowest and so runs only in loop turns with nothing else to do. */
	if (!cd.base || event_base_priority_init(cd.base, CARPD_PRIO_LEVELS) < 0) {
		log_err("cannot create the event loop");
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &cd.started);
	cd.maintenance = state_load_maintenance(cd.conf);
	if (cd.maintenance)
		log_info("carp: persistent maintenance mode is on (carpctl maintenance off to "
			 "leave)");
	if (carp_io_init(&cd) < 0 || vip_init(&cd) < 0 || link_init(&cd) < 0 ||
	    hooks_init(&cd) < 0) {
		log_err("initialisation failed");
		return 1;
	}
	const char *ro_path = control_ro_path_of(&cd, cd.conf);
	if (ro_path[0] && !strcmp(ro_path, control_path(&cd, cd.conf))) {
		log_err("the read-only socket %s is also the control socket", ro_path);
		return 1;
	}
	if (control_open(&cd, control_path(&cd, cd.conf)) < 0)
		return 1;
	if (ro_path[0] && control_open_ro(&cd, ro_path, cd.conf->control_ro_group) < 0) {
		control_close(&cd);
		return 1;
	}
	/* pfsync first: its bulk request raises the demotion before any vhid runs;
	 * then everything is open and the privileges go, before the first transition
	 * (and so before the first notify program) */
	if (pfsyncd_start(&cd) < 0 || open_vhids(&cd) < 0 ||
	    priv_drop(cd.conf->notify_user[0] != 0) < 0) {
		pfsyncd_stop(&cd);
		shutdown_all(&cd, false);
		control_close(&cd);
		return 1;
	}
	for (size_t i = 0; i < cd.nvhids; i++)
		vhid_start(cd.vhids[i]);

	cd.handover_ev = evtimer_new(cd.base, handover_done_cb, &cd);
	cd.sig_term = evsignal_new(cd.base, SIGTERM, signal_cb, &cd);
	cd.sig_int = evsignal_new(cd.base, SIGINT, signal_cb, &cd);
	cd.sig_hup = evsignal_new(cd.base, SIGHUP, signal_cb, &cd);
	cd.sig_chld = evsignal_new(cd.base, SIGCHLD, signal_cb, &cd);
	event_add(cd.sig_term, NULL);
	event_add(cd.sig_int, NULL);
	event_add(cd.sig_hup, NULL);
	event_add(cd.sig_chld, NULL);

	uint64_t wd_usec = carpd_watchdog_usec();
	if (wd_usec > 0) {
		struct timeval tv = {.tv_sec = (time_t)(wd_usec / 2 / 1000000),
				     .tv_usec = (suseconds_t)(wd_usec / 2 % 1000000)};
		cd.watchdog = event_new(cd.base, -1, EV_PERSIST, watchdog_cb, &cd);
		event_add(cd.watchdog, &tv);
	}
	log_info("carpd %s started: %zu vhid(s), control socket %s%s%s", CARPD_VERSION, cd.nvhids,
		 control_path(&cd, cd.conf), ro_path[0] ? ", read-only socket " : "", ro_path);
	carpd_notify("READY=1");

	event_base_dispatch(cd.base);

	if (!cd.stopping)
		shutdown_all(&cd, true);
	control_close(&cd);
	pfsyncd_stop(&cd);
	hooks_fini(&cd);
	link_fini(&cd);
	vip_fini(&cd);
	carp_io_fini(&cd);
	for (struct carp_if *cif = cd.ifs, *next; cif; cif = next) {
		next = cif->next;
		carp_if_close(cif);
		free(cif);
	}
	event_free(cd.sig_term);
	event_free(cd.sig_int);
	event_free(cd.sig_hup);
	if (cd.handover_ev)
		event_free(cd.handover_ev);
	event_free(cd.sig_chld);
	if (cd.watchdog)
		event_free(cd.watchdog);
	free(cd.vhids);
	conf_free(cd.conf);
	event_base_free(cd.base);
	log_info("stopped");
	return 0;
}

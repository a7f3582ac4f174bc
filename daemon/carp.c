/*
 * daemon/carp.c - the CARP state machine, as FreeBSD's carp(4) runs it.
 *
 * INIT -> BACKUP when the parent link is up; BACKUP -> MASTER when a master-down
 * timer fires (one per address family: 3 x advbase + advskew/256 s), when a slower
 * master is heard and preemption is on, or when the master's advertisement says it
 * will time out (e.g. a bow-out, advbase 255); MASTER -> BACKUP on an equal or
 * better advertisement. Demotion is added to advskew and clamped to 0..240.
 * ../shared/specs/carp.md §3 is the reference for every rule here.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "daemon/carpd.h"

#define LINK_DOWN_DEMOTION  240 /* net.inet.carp.ifdown_demotion_factor */
#define MAINTENANCE_ADVSKEW 254 /* what pfSense's maintenance mode configures */

const char *carp_state_name(enum carp_state st)
{
	switch (st) {
	case CARP_STATE_INIT:
		return "INIT";
	case CARP_STATE_BACKUP:
		return "BACKUP";
	case CARP_STATE_MASTER:
		return "MASTER";
	}
	return "?";
}

int carpd_total_demotion(const struct carpd *cd)
{
	return cd->demotion + cd->link_demotion;
}

long long mono_ms_since(const struct timespec *t0)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0->tv_sec) * 1000LL + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

/* The advskew this node is configured with right now (pfSense maintenance sets 254). */
static unsigned vhid_raw_skew(const struct vhid *vh)
{
	return vh->carpd->maintenance ? MAINTENANCE_ADVSKEW : vh->cfg.advskew;
}

uint8_t vhid_effective_skew(const struct vhid *vh)
{
	long skew = (long)vhid_raw_skew(vh) + carpd_total_demotion(vh->carpd);
	if (skew < 0)
		skew = 0; /* PR 259528: a negative demotion must not wrap */
	if (skew > CARP_MAXSKEW)
		skew = CARP_MAXSKEW;
	return (uint8_t)skew;
}

static void tv_interval(struct timeval *tv, unsigned base_s, unsigned skew)
{
	tv->tv_sec = base_s;
	tv->tv_usec = (suseconds_t)(skew * 1000000u / 256u);
}

static void vhid_prepare_auth(struct vhid *vh)
{
	struct in_addr v4[CARP_MAX_ADDRS];
	struct in6_addr v6[CARP_MAX_ADDRS];
	size_t n4 = 0, n6 = 0;
	for (size_t i = 0; i < vh->cfg.naddrs; i++) {
		if (vh->cfg.addrs[i].family == AF_INET)
			v4[n4++] = vh->cfg.addrs[i].addr.v4;
		else
			v6[n6++] = vh->cfg.addrs[i].addr.v6;
	}
	vh->has_v4 = n4 > 0;
	vh->has_v6 = n6 > 0;
	if (carp_auth_prepare(&vh->auth, vh->cfg.key, vh->cfg.vhid, v4, n4, v6, n6) < 0)
		log_err("vhid %u@%s: too many addresses", vh->cfg.vhid, vh->cfg.ifname);
}

static void set_state(struct vhid *vh, enum carp_state to, const char *reason)
{
	enum carp_state from = vh->state;
	if (from == to)
		return;
	vh->state = to;
	vh->counters.transitions++;
	clock_gettime(CLOCK_REALTIME, &vh->last_transition);
	snprintf(vh->last_reason, sizeof(vh->last_reason), "%s", reason);
	/* FreeBSD's wording: "carp: 1@lan0: BACKUP -> MASTER (master timed out)" */
	log_info("carp: %u@%s: %s -> %s (%s)", vh->cfg.vhid, vh->cfg.ifname, carp_state_name(from),
		 carp_state_name(to), reason);
	hooks_run(vh->carpd, vh, from, to, reason);
}

static void md_timers_stop(struct vhid *vh)
{
	evtimer_del(vh->md_timer4);
	evtimer_del(vh->md_timer6);
}

/* master down = 3 x advbase + own raw advskew / 256 (demotion not included, as in
 * FreeBSD: 3 s always outlast a master's advbase + 255/256 s).
 * Fast mode (advbase 0, OpenBSD's semantics): with advskew 0 too, 3/256 s. There the
 * demotion counts: a demoted master advertises every demoted-skew/256 s, and a backup
 * timing out after its raw skew/256 s would take over between two of them, be pushed
 * back by the next one, and flap until the demotion ends (seen with a node waiting for
 * its bulk update). A demoted backup must be the less eager one anyway. */
static void md_timer_start(struct vhid *vh, int family)
{
	struct timeval tv;
	unsigned skew = vh->cfg.advbase == 0 ? vhid_effective_skew(vh) : vhid_raw_skew(vh);
	tv_interval(&tv, 3u * vh->cfg.advbase, vh->cfg.advbase == 0 && skew == 0 ? 3 : skew);
	if (family == AF_INET && vh->has_v4)
		evtimer_add(vh->md_timer4, &tv);
	if (family == AF_INET6 && vh->has_v6)
		evtimer_add(vh->md_timer6, &tv);
}

/* a BACKUP's master-down timers, started over (its wait or the silence changed) */
static void md_timers_restart(struct vhid *vh)
{
	md_timers_stop(vh);
	md_timer_start(vh, AF_INET);
	md_timer_start(vh, AF_INET6);
}

static void ad_timer_schedule(struct vhid *vh, unsigned skew)
{
	struct timeval tv;
	/* advbase 0 and skew 0: OpenBSD sends every 1/256 s rather than in a loop */
	tv_interval(&tv, vh->cfg.advbase, vh->cfg.advbase == 0 && skew == 0 ? 1 : skew);
	evtimer_add(vh->ad_timer, &tv);
}

/*
 * After an advertisement sent out of turn (a takeover, a demotion change, a
 * reload), every vhid of the node has just spoken at the same moment; timed from
 * there they would keep speaking together, hundreds of packets in the same
 * millisecond, which a software switch's queues drop (the userspace Open vSwitch
 * datapath lost 14% of the advertisements of 255 dual-stack vhids that way). So
 * the next one comes early, at a point of the interval fixed by the vhid number
 * (vhid x 229 mod 256 visits every slot of 256 once), and the regular interval
 * runs from there: the phase is spread, the advertised advbase/advskew (all a
 * backup looks at) do not change, and an early advertisement never lets a backup
 * time out.
 */
static void ad_timer_schedule_spread(struct vhid *vh, unsigned skew)
{
	struct timeval tv;
	tv_interval(&tv, vh->cfg.advbase, vh->cfg.advbase == 0 && skew == 0 ? 1 : skew);
	uint64_t us = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
	unsigned slot = (vh->cfg.vhid * 229u) & 255u;
	us -= us * slot / 256u;
	tv.tv_sec = (time_t)(us / 1000000u);
	tv.tv_usec = (suseconds_t)(us % 1000000u);
	evtimer_add(vh->ad_timer, &tv);
}

static void become_master(struct vhid *vh, const char *reason)
{
	md_timers_stop(vh);
	set_state(vh, CARP_STATE_MASTER, reason);
	/* Addresses first so that answers to the clients' first packets find them,
	 * then the advertisement (it teaches the switch the virtual MAC's new port)
	 * and the gratuitous ARP / unsolicited NA burst. */
	if (vip_up(vh) < 0)
		log_warn("vhid %u@%s: could not install all addresses", vh->cfg.vhid,
			 vh->cfg.ifname);
	carp_send_ad(vh, false);
	vh->garp_round = 0;
	carp_send_garp(vh);
	/* carp_setrun(MASTER): first interval uses the configured advskew */
	ad_timer_schedule_spread(vh, vhid_raw_skew(vh) > CARP_MAXSKEW ? CARP_MAXSKEW
								      : vhid_raw_skew(vh));
}

static void leave_master(struct vhid *vh)
{
	evtimer_del(vh->ad_timer);
	evtimer_del(vh->garp_timer);
	vip_down(vh);
}

static void become_backup(struct vhid *vh, const char *reason)
{
	if (vh->state == CARP_STATE_MASTER)
		leave_master(vh);
	set_state(vh, CARP_STATE_BACKUP, reason);
	md_timers_restart(vh);
}

static void become_init(struct vhid *vh, const char *reason)
{
	if (vh->state == CARP_STATE_MASTER)
		leave_master(vh);
	evtimer_del(vh->ad_timer);
	md_timers_stop(vh);
	set_state(vh, CARP_STATE_INIT, reason);
}

static void md_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct vhid *vh = arg;
	if (vh->state == CARP_STATE_BACKUP)
		become_master(vh, "master timed out");
}

static void ad_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct vhid *vh = arg;
	if (vh->state != CARP_STATE_MASTER)
		return;
	carp_send_ad(vh, false);
	ad_timer_schedule(vh, vhid_effective_skew(vh));
}

static void garp_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct vhid *vh = arg;
	if (vh->state == CARP_STATE_MASTER)
		carp_send_garp(vh);
}

struct vhid *vhid_create(struct carpd *cd, const struct conf_vhid *cfg)
{
	struct vhid *vh = calloc(1, sizeof(*vh));
	if (!vh)
		return NULL;
	vh->carpd = cd;
	vh->cfg = *cfg;
	vh->state = CARP_STATE_INIT;
	vh->init_counter = true;
	vh->mv_ifindex = 0;
	vh->ad_timer = evtimer_new(cd->base, ad_timer_cb, vh);
	vh->md_timer4 = evtimer_new(cd->base, md_timer_cb, vh);
	vh->md_timer6 = evtimer_new(cd->base, md_timer_cb, vh);
	vh->garp_timer = evtimer_new(cd->base, garp_timer_cb, vh);
	snprintf(vh->last_reason, sizeof(vh->last_reason), "configured");
	clock_gettime(CLOCK_REALTIME, &vh->last_transition);
	vhid_prepare_auth(vh);
	vh->cif = carp_if_get(cd, cfg->ifname);
	if (!vh->cif || !vh->ad_timer || !vh->md_timer4 || !vh->md_timer6 || !vh->garp_timer) {
		vhid_destroy(vh, false);
		return NULL;
	}
	if (vh->has_v4)
		vh->cif->uses_v4 = true;
	if (vh->has_v6)
		vh->cif->uses_v6 = true;
	return vh;
}

static void warn_fast_mode(const struct vhid *vh)
{
	if (vh->cfg.advbase == 0)
		log_warn("carp: %u@%s: advbase 0 is fast mode (OpenBSD's semantics: an "
			 "advertisement every advskew/256 s, master down after advskew/256 s): for "
			 "clusters of carpd nodes only, FreeBSD and pfSense peers cannot be "
			 "configured this way",
			 vh->cfg.vhid, vh->cfg.ifname);
}

void vhid_start(struct vhid *vh)
{
	warn_fast_mode(vh);
	if (vip_create(vh) < 0)
		log_warn("vhid %u@%s: cannot create the virtual MAC interface; the vhid stays INIT",
			 vh->cfg.vhid, vh->cfg.ifname);
	vhid_link_changed(vh);
}

void vhid_destroy(struct vhid *vh, bool planned)
{
	if (!vh)
		return;
	if (vh->state == CARP_STATE_MASTER && planned) {
		/* OpenBSD's bow-out: FreeBSD and OpenBSD backups read advbase 255 as
		 * "this master will time out" and take over at once. */
		carp_send_ad(vh, true);
	}
	if (vh->state == CARP_STATE_MASTER)
		leave_master(vh);
	if (vh->link_demoted) {
		vh->carpd->link_demotion -= LINK_DOWN_DEMOTION;
		vh->link_demoted = false;
	}
	if (vh->mv_ifindex > 0 || vh->mvname[0])
		vip_destroy(vh);
	if (vh->ad_timer)
		event_free(vh->ad_timer);
	if (vh->md_timer4)
		event_free(vh->md_timer4);
	if (vh->md_timer6)
		event_free(vh->md_timer6);
	if (vh->garp_timer)
		event_free(vh->garp_timer);
	free(vh);
}

void vhid_update(struct vhid *vh, const struct conf_vhid *cfg)
{
	struct conf_vhid old = vh->cfg;
	vh->cfg = *cfg;
	vhid_prepare_auth(vh);
	if (vh->has_v4)
		vh->cif->uses_v4 = true;
	if (vh->has_v6)
		vh->cif->uses_v6 = true;
	log_info("carp: %u@%s: configuration changed (advbase %u advskew %u, %zu addresses)",
		 vh->cfg.vhid, vh->cfg.ifname, vh->cfg.advbase, vh->cfg.advskew, vh->cfg.naddrs);
	if (old.advbase != 0)
		warn_fast_mode(vh);
	switch (vh->state) {
	case CARP_STATE_MASTER:
		vip_sync_addrs(vh, &old);
		evtimer_del(vh->ad_timer);
		carp_send_ad(vh, false);
		ad_timer_schedule_spread(vh, vhid_effective_skew(vh));
		break;
	case CARP_STATE_BACKUP:
		md_timers_restart(vh);
		break;
	case CARP_STATE_INIT:
		vhid_link_changed(vh);
		break;
	}
}

void vhid_link_changed(struct vhid *vh)
{
	struct carpd *cd = vh->carpd;
	bool usable = vh->cif->link_up && vh->cfg.naddrs > 0 && vh->mv_ifindex > 0;
	if (!usable && vh->state != CARP_STATE_INIT) {
		become_init(vh, vh->cif->link_up ? "virtual MAC interface missing" : "link down");
	}
	if (!vh->cif->link_up && !vh->link_demoted) {
		/* FreeBSD: every vhid on a down parent adds 240 to the node's demotion,
		 * so with preemption the peer takes every vhid of this node. */
		vh->link_demoted = true;
		cd->link_demotion += LINK_DOWN_DEMOTION;
		carpd_demotion_changed(cd);
	} else if (vh->cif->link_up && vh->link_demoted) {
		vh->link_demoted = false;
		cd->link_demotion -= LINK_DOWN_DEMOTION;
		carpd_demotion_changed(cd);
	}
	if (usable && vh->state == CARP_STATE_INIT && !cd->stopping)
		become_backup(vh, "link up");
}

void vhid_force(struct vhid *vh, enum carp_state st, const char *reason)
{
	if (vh->state == CARP_STATE_INIT || st == vh->state)
		return;
	if (st == CARP_STATE_MASTER)
		become_master(vh, reason);
	else if (st == CARP_STATE_BACKUP)
		become_backup(vh, reason);
}

/* (advbase, skew) pairs compare as seconds then 1/256 s: smaller is better. */
static int adv_cmp(unsigned base_a, unsigned skew_a, unsigned base_b, unsigned skew_b)
{
	if (base_a != base_b)
		return base_a < base_b ? -1 : 1;
	if (skew_a != skew_b)
		return skew_a < skew_b ? -1 : 1;
	return 0;
}

/* The new MASTER of a vhid we bowed out of has spoken: once all have, stop. */
static void handover_heard(struct vhid *vh, const struct carp_adv *adv)
{
	struct carpd *cd = vh->carpd;
	if (!vh->handover_pending || adv->advbase == CARP_BOWOUT_ADVBASE)
		return;
	vh->handover_pending = false;
	log_info("carp: %u@%s: the new MASTER is advertising: handover done", vh->cfg.vhid,
		 vh->cfg.ifname);
	for (size_t i = 0; i < cd->nvhids; i++)
		if (cd->vhids[i]->handover_pending)
			return;
	/* 50 ms more: what was already on its way to us (the switch has just
	 * relearned the virtual MAC) is still forwarded */
	struct timeval tv = {0, 50000};
	if (cd->handover_ev) {
		evtimer_del(cd->handover_ev);
		evtimer_add(cd->handover_ev, &tv);
	}
}

size_t carpd_begin_handover(struct carpd *cd)
{
	size_t n = 0;
	cd->handing_over = true;
	for (size_t i = 0; i < cd->nvhids; i++) {
		struct vhid *vh = cd->vhids[i];
		if (vh->state != CARP_STATE_MASTER)
			continue;
		/* no regular advertisement from now on: the bow-out is our last word */
		evtimer_del(vh->ad_timer);
		/* nor a later round of gratuitous ARP / NA (at 0.5 and 2 s after taking
		 * over): sent once the new MASTER has announced itself, it would teach the
		 * switch our port for the virtual MAC again, and when we remove the
		 * macvlan the clients' frames would go nowhere until the new MASTER's
		 * next advertisement (up to advbase later) */
		evtimer_del(vh->garp_timer);
		vip_mute(vh);
		carp_send_ad(vh, true);
		/* a MASTER never hears its (silent) backups, so it cannot know whether
		 * one is there: wait for each, up to the deadline */
		vh->handover_pending = true;
		n++;
	}
	return n;
}

/* The last advertisement of this vhid's master is recent enough to stand for its
 * current state: within its own master-down interval. */
static bool peer_recent(const struct vhid *vh)
{
	long long age_ms = mono_ms_since(&vh->peer_last_heard);
	long long bound_ms = 3000LL * vh->peer_advbase + vh->peer_advskew * 1000LL / 256 + 100;
	return age_ms >= 0 && age_ms <= bound_ms;
}

/*
 * The master of `from` has just raised its advskew by `delta`: in CARP that is a
 * demotion, and a demotion is node-wide (one counter added to every vhid). When
 * the cause is one of the master's links going down, the vhid on that link can
 * no longer tell us: its advertisements stop and its backup would wait for the
 * master-down timer (3 x advbase). So we take the demotion we heard on one
 * link as the master's on every link: each other vhid of ours in BACKUP whose
 * master spoke recently is judged against that master's last advskew plus
 * delta, and with preemption on takes over at once if that makes it better.
 * keepalived's sync groups do the same for VRRP. If the guess is wrong (the
 * other vhid's master is another node, not demoted), that master's next
 * advertisement is better than ours and we step back, as after any election.
 */
static void follow_demotion(struct vhid *from, unsigned delta)
{
	struct carpd *cd = from->carpd;
	if (!cd->conf->preempt || !cd->conf->follow_demotion)
		return;
	for (size_t i = 0; i < cd->nvhids; i++) {
		struct vhid *vh = cd->vhids[i];
		if (vh == from || vh->state != CARP_STATE_BACKUP || !vh->peer_heard ||
		    !peer_recent(vh) || vh->peer_advbase == CARP_BOWOUT_ADVBASE)
			continue;
		unsigned assumed = vh->peer_advskew + delta;
		if (assumed > CARP_MAXSKEW)
			assumed = CARP_MAXSKEW;
		if (adv_cmp(vh->cfg.advbase, vhid_effective_skew(vh), vh->peer_advbase, assumed) >=
		    0)
			continue;
		char reason[sizeof(vh->last_reason)];
		snprintf(reason, sizeof(reason), "master demoted (heard on %u@%s)", from->cfg.vhid,
			 from->cfg.ifname);
		become_master(vh, reason);
	}
}

void vhid_input(struct vhid *vh, int family, const struct carp_adv *adv, const char *src)
{
	struct carpd *cd = vh->carpd;
	if (cd->handing_over) {
		/* stopping: no more elections; just learn that the peer took over */
		handover_heard(vh, adv);
		return;
	}
	/* what this master said last time, for follow_demotion() */
	bool prev_heard = vh->peer_heard && peer_recent(vh) && !strcmp(vh->peer_addr, src);
	unsigned prev_base = vh->peer_advbase, prev_skew = vh->peer_advskew;
	/* FreeBSD stores the peer's counter in every state and continues from it */
	vh->counter = adv->counter;
	vh->init_counter = false;
	vh->peer_heard = true;
	vh->peer_family = family;
	snprintf(vh->peer_addr, sizeof(vh->peer_addr), "%s", src);
	clock_gettime(CLOCK_MONOTONIC, &vh->peer_last_heard);
	vh->peer_advbase = adv->advbase;
	vh->peer_advskew = adv->advskew;

	unsigned lbase = vh->cfg.advbase, lskew = vhid_effective_skew(vh);
	switch (vh->state) {
	case CARP_STATE_INIT:
		break;
	case CARP_STATE_MASTER:
		vh->counters.conflicts++;
		if (adv_cmp(adv->advbase, adv->advskew, lbase, lskew) <= 0) {
			become_backup(vh, "more frequent advertisement received");
		} else {
			/* We stay MASTER: after a partition heals the switch and the
			 * clients may point at the other node, so announce again. */
			if (!evtimer_pending(vh->garp_timer, NULL)) {
				vh->garp_round = 0;
				carp_send_garp(vh);
			}
		}
		break;
	case CARP_STATE_BACKUP:
		if (prev_heard && adv->advbase == prev_base && adv->advskew > prev_skew &&
		    adv->advbase != CARP_BOWOUT_ADVBASE)
			follow_demotion(vh, adv->advskew - prev_skew);
		if (cd->conf->preempt && adv_cmp(lbase, lskew, adv->advbase, adv->advskew) < 0) {
			become_master(vh, "preempting a slower master");
			break;
		}
		if (adv_cmp(3u * lbase, lskew, adv->advbase, adv->advskew) < 0) {
			become_master(vh, adv->advbase == CARP_BOWOUT_ADVBASE &&
							  adv->advskew == CARP_BOWOUT_ADVSKEW
						  ? "master bowed out"
						  : "master will time out");
			break;
		}
		md_timer_start(vh, family);
		break;
	}
}

void carpd_demotion_changed(struct carpd *cd)
{
	/* carp_demote_adj(): every MASTER advertises at once so that peers see the
	 * new skew now, not at the next interval. */
	for (size_t i = 0; i < cd->nvhids; i++) {
		struct vhid *vh = cd->vhids[i];
		if (vh->state == CARP_STATE_BACKUP && vh->cfg.advbase == 0) {
			/* fast mode: a BACKUP's wait includes the demotion (md_timer_start) */
			md_timers_restart(vh);
		}
		if (vh->state != CARP_STATE_MASTER)
			continue;
		evtimer_del(vh->ad_timer);
		carp_send_ad(vh, false);
		ad_timer_schedule_spread(vh, vhid_effective_skew(vh));
	}
}

void carpd_adjust_demotion(struct carpd *cd, int delta)
{
	cd->demotion += delta;
	log_info("carp: demoted by %d to %d", delta, carpd_total_demotion(cd));
	carpd_demotion_changed(cd);
}

void carpd_set_maintenance(struct carpd *cd, bool on)
{
	if (cd->maintenance == on)
		return;
	cd->maintenance = on;
	state_save_maintenance(cd->conf, on);
	log_info("carp: persistent maintenance mode %s", on ? "entered (advskew 254)" : "left");
	carpd_demotion_changed(cd);
	/* A BACKUP's master-down timer depends on its own advskew. */
	for (size_t i = 0; i < cd->nvhids; i++) {
		struct vhid *vh = cd->vhids[i];
		if (vh->state == CARP_STATE_BACKUP) {
			md_timers_restart(vh);
		}
	}
}

/* daemon/output.c - see output.h. */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "daemon/output.h"
#include "daemon/pfsync.h"

void output_json_string(struct evbuffer *out, const char *s)
{
	evbuffer_add(out, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			evbuffer_add_printf(out, "\\%c", *p);
		else if (*p < 0x20)
			evbuffer_add_printf(out, "\\u%04x", *p);
		else
			evbuffer_add(out, p, 1);
	}
	evbuffer_add(out, "\"", 1);
}

static void fmt_time(const struct timespec *ts, char *buf, size_t len)
{
	struct tm tm;
	localtime_r(&ts->tv_sec, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%S%z", &tm);
}

static double since(const struct timespec *mono)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - mono->tv_sec) + (double)(now.tv_nsec - mono->tv_nsec) / 1e9;
}

/* Drops that cannot be tied to one vhid are counted on the interface and shown
 * with each of its vhids (FreeBSD keeps them all global). */
static struct carp_counters merged(const struct vhid *vh)
{
	struct carp_counters c = vh->counters;
	c.badvhid += vh->cif->counters.badvhid;
	c.badlen += vh->cif->counters.badlen;
	c.badsum += vh->cif->counters.badsum;
	c.badver += vh->cif->counters.badver;
	c.rcvdrops += vh->cif->counters.rcvdrops;
	return c;
}

#define COUNTER_FIELDS(X)                                                                          \
	X(ipackets)                                                                                \
	X(opackets)                                                                                \
	X(badauth)                                                                                 \
	X(badttl)                                                                                  \
	X(badvhid)                                                                                 \
	X(badsum)                                                                                  \
	X(badlen)                                                                                  \
	X(badver)                                                                                  \
	X(badif)                                                                                   \
	X(oerrors)                                                                                 \
	X(transitions)                                                                             \
	X(conflicts)                                                                               \
	X(rcvdrops)

void output_status_json(const struct carpd *cd, struct evbuffer *out)
{
	evbuffer_add_printf(
		out,
		"{\"demotion\": %d, \"maintenance\": %s, \"preempt\": %s, \"follow_demotion\": %s, "
		"\"demotion_operator\": %d, \"demotion_link\": %d, \"vhids\": [",
		carpd_total_demotion(cd), cd->maintenance ? "true" : "false",
		cd->conf->preempt ? "true" : "false", cd->conf->follow_demotion ? "true" : "false",
		cd->demotion, cd->link_demotion);
	for (size_t i = 0; i < cd->nvhids; i++) {
		const struct vhid *vh = cd->vhids[i];
		char buf[64];
		evbuffer_add_printf(out, "%s\n  {\"vhid\": %u, \"interface\": ", i ? "," : "",
				    vh->cfg.vhid);
		output_json_string(out, vh->cfg.ifname);
		evbuffer_add_printf(out,
				    ", \"state\": \"%s\", \"advbase\": %u, \"advskew\": %u, "
				    "\"effective_advskew\": %u, \"mode\": \"%s\", "
				    "\"vmac\": \"00:00:5e:00:01:%02x\", \"vmac_interface\": ",
				    carp_state_name(vh->state), vh->cfg.advbase, vh->cfg.advskew,
				    vhid_effective_skew(vh),
				    vh->cfg.has_peer || vh->cfg.has_peer6 ? "unicast" : "multicast",
				    vh->cfg.vhid);
		output_json_string(out, vh->mvname);
		evbuffer_add_printf(out, ", \"addresses\": [");
		for (size_t a = 0; a < vh->cfg.naddrs; a++) {
			evbuffer_add_printf(out, "%s", a ? ", " : "");
			output_json_string(out, conf_addr_str(&vh->cfg.addrs[a], buf, sizeof(buf)));
		}
		fmt_time(&vh->last_transition, buf, sizeof(buf));
		evbuffer_add_printf(out, "], \"last_transition\": \"%s\", \"last_reason\": ", buf);
		output_json_string(out, vh->last_reason);
		if (vh->peer_heard) {
			evbuffer_add_printf(out, ", \"peer\": {\"address\": ");
			output_json_string(out, vh->peer_addr);
			evbuffer_add_printf(out,
					    ", \"advbase\": %u, \"advskew\": %u, "
					    "\"last_heard_s\": %.3f}",
					    vh->peer_advbase, vh->peer_advskew,
					    since(&vh->peer_last_heard));
		} else {
			evbuffer_add_printf(out, ", \"peer\": null");
		}
		struct carp_counters c = merged(vh);
		evbuffer_add_printf(out, ", \"counters\": {");
		const char *sep = "";
#define X(f)                                                                                       \
	evbuffer_add_printf(out, "%s\"" #f "\": %" PRIu64, sep, c.f);                              \
	sep = ", ";
		COUNTER_FIELDS(X)
#undef X
		evbuffer_add_printf(out, "}}");
	}
	evbuffer_add_printf(out, "\n], \"pfsync\": ");
	pfsyncd_status_json(cd, out);
	evbuffer_add_printf(out, "}\n");
}

void output_status_text(const struct carpd *cd, struct evbuffer *out)
{
	evbuffer_add_printf(out, "carpd: demotion %d%s, maintenance %s, preempt %s\n",
			    carpd_total_demotion(cd), cd->link_demotion ? " (link down)" : "",
			    cd->maintenance ? "ON" : "off", cd->conf->preempt ? "yes" : "no");
	evbuffer_add_printf(out, "%-10s %4s  %-7s %-22s %4s %4s  %-19s %-28s %s\n", "INTERFACE",
			    "VHID", "STATE", "ADDRESSES", "BASE", "SKEW", "SINCE", "WHY", "PEER");
	for (size_t i = 0; i < cd->nvhids; i++) {
		const struct vhid *vh = cd->vhids[i];
		char addr[64], when[32], skew[16], peer[96];
		struct tm tm;
		localtime_r(&vh->last_transition.tv_sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		if (vhid_effective_skew(vh) != vh->cfg.advskew)
			snprintf(skew, sizeof(skew), "%u>%u", vh->cfg.advskew,
				 vhid_effective_skew(vh));
		else
			snprintf(skew, sizeof(skew), "%u", vh->cfg.advskew);
		if (vh->peer_heard)
			snprintf(peer, sizeof(peer), "%s %u/%u %.1fs ago", vh->peer_addr,
				 vh->peer_advbase, vh->peer_advskew, since(&vh->peer_last_heard));
		else
			snprintf(peer, sizeof(peer), "-");
		for (size_t a = 0; a < (vh->cfg.naddrs ? vh->cfg.naddrs : 1); a++) {
			if (vh->cfg.naddrs)
				conf_addr_str(&vh->cfg.addrs[a], addr, sizeof(addr));
			else
				snprintf(addr, sizeof(addr), "-");
			if (a == 0)
				evbuffer_add_printf(
					out, "%-10s %4u  %-7s %-22s %4u %4s  %-19s %-28.28s %s\n",
					vh->cfg.ifname, vh->cfg.vhid, carp_state_name(vh->state),
					addr, vh->cfg.advbase, skew, when, vh->last_reason, peer);
			else
				evbuffer_add_printf(out, "%-10s %4s  %-7s %s\n", "", "", "", addr);
		}
	}
	bool header = false;
	for (size_t i = 0; i < cd->nvhids; i++) {
		const struct vhid *vh = cd->vhids[i];
		struct carp_counters c = merged(vh);
		if (!header) {
			evbuffer_add_printf(out, "\n%-10s %4s %9s %9s %7s %7s %7s %7s %7s %7s\n",
					    "INTERFACE", "VHID", "IN", "OUT", "BADAUTH", "BADTTL",
					    "BADVHID", "BADSUM", "BADLEN", "BADVER");
			header = true;
		}
		evbuffer_add_printf(out,
				    "%-10s %4u %9" PRIu64 " %9" PRIu64 " %7" PRIu64 " %7" PRIu64
				    " %7" PRIu64 " %7" PRIu64 " %7" PRIu64 " %7" PRIu64 "\n",
				    vh->cfg.ifname, vh->cfg.vhid, c.ipackets, c.opackets, c.badauth,
				    c.badttl, c.badvhid, c.badsum, c.badlen, c.badver);
	}
	evbuffer_add_printf(out, "\n");
	pfsyncd_status_text(cd, out);
}

void output_metrics(const struct carpd *cd, struct evbuffer *out)
{
	static const enum carp_state states[] = {CARP_STATE_INIT, CARP_STATE_BACKUP,
						 CARP_STATE_MASTER};
	evbuffer_add_printf(out,
			    "# TYPE carpd_demotion gauge\n"
			    "# HELP carpd_demotion Demotion added to every advskew.\n"
			    "carpd_demotion %d\n",
			    carpd_total_demotion(cd));
	evbuffer_add_printf(out,
			    "# TYPE carpd_maintenance gauge\n"
			    "# HELP carpd_maintenance 1 in persistent maintenance mode.\n"
			    "carpd_maintenance %d\n",
			    cd->maintenance ? 1 : 0);
	evbuffer_add_printf(out, "# TYPE carpd_vhid_state gauge\n"
				 "# HELP carpd_vhid_state 1 for the state the vhid is in.\n");
	for (size_t i = 0; i < cd->nvhids; i++)
		for (size_t s = 0; s < 3; s++)
			evbuffer_add_printf(out,
					    "carpd_vhid_state{interface=\"%s\",vhid=\"%u\",state="
					    "\"%s\"} %d\n",
					    cd->vhids[i]->cfg.ifname, cd->vhids[i]->cfg.vhid,
					    carp_state_name(states[s]),
					    cd->vhids[i]->state == states[s]);
	evbuffer_add_printf(
		out, "# TYPE carpd_vhid_advskew gauge\n"
		     "# HELP carpd_vhid_advskew advskew sent on the wire (with demotion).\n");
	for (size_t i = 0; i < cd->nvhids; i++)
		evbuffer_add_printf(out, "carpd_vhid_advskew{interface=\"%s\",vhid=\"%u\"} %u\n",
				    cd->vhids[i]->cfg.ifname, cd->vhids[i]->cfg.vhid,
				    vhid_effective_skew(cd->vhids[i]));
#define X(f)                                                                                       \
	evbuffer_add_printf(out, "# TYPE carpd_vhid_" #f " counter\n");                            \
	for (size_t i = 0; i < cd->nvhids; i++) {                                                  \
		struct carp_counters c = merged(cd->vhids[i]);                                     \
		evbuffer_add_printf(out,                                                           \
				    "carpd_vhid_" #f                                               \
				    "_total{interface=\"%s\",vhid=\"%u\"} %" PRIu64 "\n",          \
				    cd->vhids[i]->cfg.ifname, cd->vhids[i]->cfg.vhid, c.f);        \
	}
	COUNTER_FIELDS(X)
#undef X
	evbuffer_add_printf(out,
			    "# TYPE carpd_netlink_resyncs counter\n"
			    "carpd_netlink_resyncs_total %" PRIu64 "\n",
			    cd->nl_resyncs);
	pfsyncd_metrics(cd, out);
	evbuffer_add_printf(out, "# EOF\n");
}

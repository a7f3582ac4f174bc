/*
 * daemon/priv.c - giving up privileges once everything is open.
 *
 * carpd stays uid 0 (the files it writes later, /proc/sys/net/... and its state
 * directory, are root's) but keeps only two capabilities: CAP_NET_RAW (raw and
 * packet sockets it opens when an interface or a vhid appears) and CAP_NET_ADMIN
 * (netlink: macvlans, addresses, conntrack; SO_BINDTODEVICE; net sysctls). With
 * notify-user it also keeps CAP_SETUID and CAP_SETGID, permitted but not effective:
 * only the forked hook child raises them, for the moment it takes to become that
 * user. Everything else goes from the bounding, permitted, effective and
 * inheritable sets; the ambient set is cleared; no_new_privs is set, so nothing
 * carpd executes can gain a privilege (no setuid binary, no file capability).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>

#include "daemon/carpd.h"

static const cap_value_t keep_effective[] = {CAP_NET_ADMIN, CAP_NET_RAW};
static const cap_value_t keep_setid[] = {CAP_SETGID, CAP_SETUID};

static bool kept(cap_value_t c, bool setid)
{
	for (size_t i = 0; i < 2; i++)
		if (c == keep_effective[i] || (setid && c == keep_setid[i]))
			return true;
	return false;
}

static bool has_flag(cap_t caps, cap_value_t c, cap_flag_t flag)
{
	cap_flag_value_t v = CAP_CLEAR;
	return cap_get_flag(caps, c, flag, &v) == 0 && v == CAP_SET;
}

int priv_drop(bool keep_setid_caps)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		log_err("privileges: cannot set no_new_privs: %s", strerror(errno));
		return -1;
	}
	cap_t cur = cap_get_proc();
	if (!cur) {
		log_err("privileges: cannot read capabilities: %s", strerror(errno));
		return -1;
	}
	bool setpcap = has_flag(cur, CAP_SETPCAP, CAP_EFFECTIVE);
	char left[256] = "";
	cap_value_t max = cap_max_bits();
	for (cap_value_t c = 0; c < max; c++) {
		if (kept(c, keep_setid_caps) || cap_get_bound(c) != 1)
			continue;
		if (setpcap) {
			if (cap_drop_bound(c) < 0) {
				log_err("privileges: cannot drop capability %d from the bounding "
					"set: %s",
					(int)c, strerror(errno));
				cap_free(cur);
				return -1;
			}
		} else if (strlen(left) < sizeof(left) - 32) {
			char *name = cap_to_name(c);
			size_t used = strlen(left);
			snprintf(left + used, sizeof(left) - used, "%s%s", used ? "," : "",
				 name ? name : "?");
			cap_free(name);
		}
	}
	if (left[0])
		log_warn("privileges: no CAP_SETPCAP, so the bounding set keeps %s "
			 "(permitted and effective are reduced all the same)",
			 left);
	/* fails with EINVAL only on kernels without ambient capabilities (< 4.3) */
	if (cap_reset_ambient() < 0 && errno != EINVAL) {
		log_err("privileges: cannot clear the ambient set: %s", strerror(errno));
		cap_free(cur);
		return -1;
	}
	cap_t want = cap_init();
	if (!want) {
		cap_free(cur);
		return -1;
	}
	for (size_t i = 0; i < 2; i++) {
		cap_value_t e = keep_effective[i], s = keep_setid[i];
		if (has_flag(cur, e, CAP_PERMITTED)) {
			cap_set_flag(want, CAP_PERMITTED, 1, &e, CAP_SET);
			cap_set_flag(want, CAP_EFFECTIVE, 1, &e, CAP_SET);
		}
		if (keep_setid_caps && has_flag(cur, s, CAP_PERMITTED))
			cap_set_flag(want, CAP_PERMITTED, 1, &s, CAP_SET);
	}
	cap_free(cur);
	int rc = cap_set_proc(want);
	cap_free(want);
	if (rc < 0) {
		log_err("privileges: cannot set capabilities: %s", strerror(errno));
		return -1;
	}
	cap_t now = cap_get_proc();
	char *text = now ? cap_to_text(now, NULL) : NULL;
	log_info("privileges: kept %s; no_new_privs set%s", text ? text : "?",
		 keep_setid_caps ? " (setuid/setgid permitted only, for notify-user)" : "");
	cap_free(text);
	cap_free(now);
	return 0;
}

bool priv_can_setid(void)
{
	cap_t cur = cap_get_proc();
	if (!cur)
		return false;
	bool ok = has_flag(cur, CAP_SETUID, CAP_PERMITTED) &&
		  has_flag(cur, CAP_SETGID, CAP_PERMITTED);
	cap_free(cur);
	return ok;
}

int priv_raise_setid(void)
{
	cap_t cur = cap_get_proc();
	if (!cur)
		return -1;
	int rc = cap_set_flag(cur, CAP_EFFECTIVE, 2, keep_setid, CAP_SET);
	if (rc == 0)
		rc = cap_set_proc(cur);
	cap_free(cur);
	return rc;
}

/*
 * daemon/conf.h - carpd.conf: the parsed configuration.
 *
 * Grammar (CONTRACT §3; man/carpd.conf.5 is the full reference):
 *   '#' starts a comment; strings are double-quoted; blocks use braces;
 *   statements end at the end of the line.
 * conf_parse_file() never exits: every problem becomes a "FILE:LINE: message"
 * entry in the error list, and the caller decides (carpd -n prints them).
 */
#ifndef CARPD_DAEMON_CONF_H
#define CARPD_DAEMON_CONF_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/carp.h"

#define CONF_DEFAULT_FILE    "/etc/carpd/carpd.conf"
#define CONF_DEFAULT_CONTROL "/run/carpd.sock"
#define CONF_MAX_VHIDS	     1024
#define CONF_MAX_ERRORS	     64

struct conf_addr {
	int family; /* AF_INET or AF_INET6 */
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} addr;
	uint8_t prefixlen;
};

struct conf_vhid {
	uint8_t vhid;		  /* 1..255 */
	char ifname[IF_NAMESIZE]; /* parent interface */
	int line;		  /* where the block starts, for messages */
	struct conf_addr addrs[CARP_MAX_ADDRS];
	size_t naddrs;
	uint8_t advbase;	   /* 1..255 (0 only with the fast-mode option, later) */
	uint8_t advskew;	   /* 0..254 */
	uint8_t key[CARP_KEY_LEN]; /* derived from password (19 bytes kept) */
	char password[128];	   /* as written, for display "set"/"unset" only */
	bool has_password;
	bool has_peer, has_peer6; /* unicast mode per family */
	struct in_addr peer;
	struct in6_addr peer6;
};

#define CONF_ACTIVITY_MARK_DEFAULT 0x80000000u

struct conf_pfsync {
	bool enabled;
	char ifname[IF_NAMESIZE];
	bool has_syncpeer;
	int syncpeer_family;
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} syncpeer;
	uint16_t version; /* 1301 | 1400 | 1500 */
	bool defer;
	/* the conntrack mark bit nftables turns on active connections (actmark.h);
	 * 0: none, the table is scanned instead */
	uint32_t activity_mark;
	int line;
};

struct conf {
	char control[108]; /* control socket path (sun_path size) */
	bool control_set;
	char control_ro[108];	   /* optional read-only control socket, "" = none */
	char control_ro_group[64]; /* its group (mode 0660); "" = mode 0666 */
	int control_ro_line;	   /* where control-ro was given, for messages */
	bool preempt;		   /* default yes */
	bool follow_demotion;	   /* default yes: see vhid_input() */
	uint32_t hostid;	   /* 0 = not set: derived */
	char notify[256];	   /* optional hook program, "" = none */
	char notify_user[64];	   /* optional: run the hook as this user */
	char state_dir[256];	   /* persistent state (maintenance), default /var/lib/carpd */
	struct conf_vhid *vhids;   /* nvhids entries, heap */
	size_t nvhids;
	struct conf_pfsync pfsync;
	char path[256]; /* file name used in messages (conf_check_system) */
};

struct conf_errors {
	size_t count;
	char msg[CONF_MAX_ERRORS][256]; /* "FILE:LINE: message" */
};

/* Parse a whole file. Returns a new conf (free with conf_free) when there were no
 * errors, NULL otherwise; errs always tells why. errs is reset first (errs->count = 0);
 * the messages come sorted by line; errs may be NULL. A file that cannot be read gives
 * one "FILE: cannot open: REASON" message (no line number: there is no line). */
struct conf *conf_parse_file(const char *path, struct conf_errors *errs);
/* Same, from a buffer (name is used in messages); for tests and fuzzing. */
struct conf *conf_parse_buffer(const char *name, const char *text, size_t len,
			       struct conf_errors *errs);
void conf_free(struct conf *conf);

/* Checks against the running system, separate so that parsing stays pure:
 * every interface named exists. Appends to errs; returns the number of problems. */
int conf_check_system(const struct conf *conf, struct conf_errors *errs);

/* true if two vhid blocks would behave identically (used by SIGHUP reload). */
bool conf_vhid_equal(const struct conf_vhid *a, const struct conf_vhid *b);

/* Render an address as "198.51.100.1/24" (buf >= INET6_ADDRSTRLEN + 4). */
const char *conf_addr_str(const struct conf_addr *a, char *buf, size_t len);

#endif

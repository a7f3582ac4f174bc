/* daemon/control.c - see control.h. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/control.h"
#include "daemon/output.h"
#include "daemon/pfsync.h"

#define CONTROL_TIMEOUT_S   5
#define CONTROL_MAX_CLIENTS 64

/* One listening socket: the control socket or the read-only one. */
struct lsock {
	struct carpd *cd;
	struct evconnlistener *listener;
	enum control_access access;
	gid_t gid; /* the socket file's group: its members may use it */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char group[64]; /* read-only socket: the configured group, "" = none */
};

struct control {
	struct lsock main, ro;
	size_t nclients;
	uint64_t requests, errors, denied;
};

static int word_split(char *line, char **words, int max)
{
	int n = 0;
	for (char *tok = strtok(line, " \t"); tok && n < max; tok = strtok(NULL, " \t"))
		words[n++] = tok;
	return strtok(NULL, " \t") ? -1 : n;
}

static void reply_error(struct evbuffer *out, const char *msg)
{
	evbuffer_add_printf(out, "error: %s\n", msg);
}

static struct vhid *find_vhid_arg(struct carpd *cd, const char *arg, char *err, size_t errlen)
{
	char buf[64];
	snprintf(buf, sizeof(buf), "%s", arg);
	char *at = strchr(buf, '@');
	if (at)
		*at++ = 0;
	char *end;
	long v = strtol(buf, &end, 10);
	if (*buf == 0 || *end || v < 1 || v > 255) {
		snprintf(err, errlen, "bad vhid '%.20s': expected 1..255 or VHID@INTERFACE", arg);
		return NULL;
	}
	struct vhid *found = NULL;
	for (size_t i = 0; i < cd->nvhids; i++) {
		struct vhid *vh = cd->vhids[i];
		if (vh->cfg.vhid != v || (at && strcmp(at, vh->cfg.ifname)))
			continue;
		if (found) {
			snprintf(err, errlen,
				 "vhid %ld is on several interfaces: say VHID@INTERFACE", v);
			return NULL;
		}
		found = vh;
	}
	if (!found)
		snprintf(err, errlen, "no vhid %.20s configured", arg);
	return found;
}

/* An allowlist: a request added later is refused on the read-only socket until it
 * is listed here. */
static const char *const read_only_requests[] = {"status", "metrics", "version"};

bool control_request_is_read_only(const char *line)
{
	size_t len = strcspn(line, " \t\r\n");
	for (size_t i = 0; i < sizeof(read_only_requests) / sizeof(read_only_requests[0]); i++)
		if (strlen(read_only_requests[i]) == len &&
		    !strncmp(line, read_only_requests[i], len))
			return true;
	return false;
}

void control_handle(struct carpd *cd, const char *request, struct evbuffer *out)
{
	control_handle_access(cd, request, out, CONTROL_RW);
}

void control_handle_access(struct carpd *cd, const char *request, struct evbuffer *out,
			   enum control_access access)
{
	char line[CONTROL_MAX_REQUEST + 1], err[160];
	char *w[8];
	snprintf(line, sizeof(line), "%s", request);
	line[strcspn(line, "\r\n")] = 0;
	int n = word_split(line, w, 8);
	if (n <= 0) {
		reply_error(out, n < 0 ? "too many words in request" : "empty request");
		return;
	}
	if (access != CONTROL_RW && !control_request_is_read_only(w[0])) {
		reply_error(out, CONTROL_DENIED_RO);
		return;
	}
	if (!strcmp(w[0], "status") && n <= 2) {
		if (n == 1 || !strcmp(w[1], "text")) {
			evbuffer_add_printf(out, "ok\n");
			output_status_text(cd, out);
		} else if (!strcmp(w[1], "json")) {
			evbuffer_add_printf(out, "ok\n");
			output_status_json(cd, out);
		} else {
			reply_error(out, "status takes 'text' or 'json'");
		}
	} else if (!strcmp(w[0], "metrics") && n == 1) {
		evbuffer_add_printf(out, "ok\n");
		output_metrics(cd, out);
	} else if (!strcmp(w[0], "maintenance") && n == 2 &&
		   (!strcmp(w[1], "on") || !strcmp(w[1], "off"))) {
		carpd_set_maintenance(cd, !strcmp(w[1], "on"));
		evbuffer_add_printf(out, "ok\nmaintenance %s\n", cd->maintenance ? "on" : "off");
	} else if (!strcmp(w[0], "demote") && n == 2) {
		char *end;
		errno = 0;
		long v = strtol(w[1], &end, 10);
		if (!*w[1] || *end || errno || v < -100000 || v > 100000) {
			reply_error(out, "demote takes an integer between -100000 and 100000");
			return;
		}
		carpd_adjust_demotion(cd, (int)v);
		evbuffer_add_printf(out, "ok\ndemotion %d\n", carpd_total_demotion(cd));
	} else if (!strcmp(w[0], "state") && n == 3) {
		struct vhid *vh = find_vhid_arg(cd, w[1], err, sizeof(err));
		if (!vh) {
			reply_error(out, err);
			return;
		}
		enum carp_state st;
		if (!strcmp(w[2], "master"))
			st = CARP_STATE_MASTER;
		else if (!strcmp(w[2], "backup"))
			st = CARP_STATE_BACKUP;
		else {
			reply_error(out, "state takes 'master' or 'backup'");
			return;
		}
		if (vh->state == CARP_STATE_INIT) {
			reply_error(out,
				    "the vhid is INIT (link down or no address): cannot force");
			return;
		}
		vhid_force(vh, st, "forced by operator");
		evbuffer_add_printf(out, "ok\n%u@%s %s\n", vh->cfg.vhid, vh->cfg.ifname,
				    carp_state_name(vh->state));
	} else if (!strcmp(w[0], "sync") && n == 2 && !strcmp(w[1], "bulk")) {
		if (pfsyncd_request_bulk(cd) < 0)
			reply_error(out, "pfsync is not configured");
		else
			evbuffer_add_printf(out, "ok\nbulk update requested\n");
	} else if (!strcmp(w[0], "version") && n == 1) {
		evbuffer_add_printf(out, "ok\ncarpd %s\n", CARPD_VERSION);
	} else {
		snprintf(err, sizeof(err), "unknown request '%.40s'", request);
		err[strcspn(err, "\r\n")] = 0;
		reply_error(out, err);
	}
}

struct client {
	struct carpd *cd;
	struct bufferevent *bev;
	enum control_access access;
	bool denied; /* the peer may not use this socket: every request is refused */
	bool answered;
};

static void client_free(struct client *c)
{
	if (c->cd->control)
		c->cd->control->nclients--;
	bufferevent_free(c->bev);
	free(c);
}

static void client_write_cb(struct bufferevent *bev, void *arg)
{
	struct client *c = arg;
	if (c->answered && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		client_free(c);
}

static void client_read_cb(struct bufferevent *bev, void *arg)
{
	struct client *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	if (c->answered) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	size_t n;
	char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF);
	struct evbuffer *out = bufferevent_get_output(bev);
	if (!line) {
		if (evbuffer_get_length(in) > CONTROL_MAX_REQUEST) {
			reply_error(out, c->denied ? CONTROL_DENIED : "request too long");
			c->cd->control->errors++;
			c->answered = true;
		}
		return;
	}
	c->cd->control->requests++;
	if (c->denied) {
		/* answered once the request is read, so that the client's write of its
		 * request never meets a closed socket */
		reply_error(out, CONTROL_DENIED);
		c->cd->control->denied++;
	} else if (n > CONTROL_MAX_REQUEST || memchr(line, 0, n)) {
		reply_error(out, n > CONTROL_MAX_REQUEST ? "request too long" : "NUL in request");
		c->cd->control->errors++;
	} else {
		control_handle_access(c->cd, line, out, c->access);
	}
	free(line);
	c->answered = true;
	bufferevent_disable(bev, EV_READ);
}

static void client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct client *c = arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		client_free(c);
}

/* The control socket's file mode already keeps others out; this is the second
 * lock, which also holds if the mode is loosened by hand: root, or a member (primary
 * or supplementary) of the socket file's group. */
static bool peer_allowed(int fd, gid_t sock_gid, uid_t *uid_out)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof(cred))
		return false;
	*uid_out = cred.uid;
	if (cred.uid == 0 || cred.gid == sock_gid)
		return true;
	gid_t groups[256];
	len = sizeof(groups);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
		return false; /* more than 256 groups, or an old kernel: no */
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == sock_gid)
			return true;
	return false;
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
		      int socklen, void *arg)
{
	struct lsock *ls = arg;
	struct carpd *cd = ls->cd;
	if (cd->control->nclients >= CONTROL_MAX_CLIENTS) {
		close(fd);
		return;
	}
	struct client *c = calloc(1, sizeof(*c));
	struct bufferevent *bev = bufferevent_socket_new(cd->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c || !bev) {
		free(c);
		if (bev)
			bufferevent_free(bev);
		else
			close(fd);
		return;
	}
	c->cd = cd;
	c->bev = bev;
	c->access = ls->access;
	uid_t uid = (uid_t)-1;
	if (ls->access == CONTROL_RW && !peer_allowed(fd, ls->gid, &uid)) {
		c->denied = true;
		log_warn("control: uid %ld refused on %s (not root, not in group %ld)", (long)uid,
			 ls->path, (long)ls->gid);
	}
	cd->control->nclients++;
	struct timeval tmo = {CONTROL_TIMEOUT_S, 0};
	bufferevent_set_timeouts(bev, &tmo, &tmo);
	bufferevent_setcb(bev, client_read_cb, client_write_cb, client_event_cb, c);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void lsock_close(struct lsock *ls)
{
	if (!ls->listener)
		return;
	evconnlistener_free(ls->listener);
	ls->listener = NULL;
	unlink(ls->path);
	ls->path[0] = 0;
}

/* Bind and listen on path with the given mode and group (-1: leave it). */
static int lsock_open(struct carpd *cd, struct lsock *ls, const char *path, mode_t mode, gid_t gid)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_err("control socket path too long: %s", path);
		return -1;
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	/* A socket file left by a crashed run is removed; a live one means another
	 * carpd owns it, and two daemons must never drive the same addresses. */
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		log_err("another carpd is running on %s", path);
		close(fd);
		return -1;
	}
	unlink(path);
	/* Created with no access at all; the mode comes once the group is right. The
	 * group is given by creating the file with that effective gid: that takes
	 * CAP_SETGID, which the unit grants anyway (notify-user), where chown would
	 * take CAP_CHOWN. */
	gid_t egid = getegid();
	if (gid != (gid_t)-1 && setegid(gid) < 0) {
		log_err("cannot create %s with group %ld: %s", path, (long)gid, strerror(errno));
		close(fd);
		return -1;
	}
	mode_t old = umask(0177);
	int rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	int bind_errno = errno;
	umask(old);
	if (gid != (gid_t)-1 && setegid(egid) < 0) {
		log_err("cannot get back to group %ld: %s", (long)egid, strerror(errno));
		abort(); /* never go on with another group's credentials */
	}
	if (rc < 0) {
		log_err("cannot bind control socket %s: %s", path, strerror(bind_errno));
		close(fd);
		return -1;
	}
	struct stat sb;
	errno = 0;
	if (chmod(path, mode) < 0 || stat(path, &sb) < 0 ||
	    (gid != (gid_t)-1 && sb.st_gid != gid)) {
		log_err("cannot give %s mode %o%s: %s", path, (unsigned)mode,
			gid != (gid_t)-1 ? " and its group (a set-group-ID directory?)" : "",
			errno ? strerror(errno) : "wrong group");
		unlink(path);
		close(fd);
		return -1;
	}
	ls->cd = cd;
	ls->gid = sb.st_gid;
	ls->listener = evconnlistener_new(cd->base, accept_cb, ls,
					  LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16, fd);
	if (!ls->listener) {
		unlink(path);
		close(fd);
		return -1;
	}
	snprintf(ls->path, sizeof(ls->path), "%s", path);
	return 0;
}

static struct control *control_get(struct carpd *cd)
{
	if (!cd->control) {
		cd->control = calloc(1, sizeof(*cd->control));
		if (cd->control) {
			cd->control->main.access = CONTROL_RW;
			cd->control->ro.access = CONTROL_RO;
		}
	}
	return cd->control;
}

int control_open(struct carpd *cd, const char *path)
{
	struct control *ctl = control_get(cd);
	if (!ctl)
		return -1;
	/* SIGHUP with a new path: the old socket stays until the new one works */
	struct lsock fresh = {.access = CONTROL_RW};
	if (lsock_open(cd, &fresh, path, 0660, (gid_t)-1) < 0)
		return -1;
	lsock_close(&ctl->main);
	ctl->main = fresh;
	/* accept_cb's argument must be where the socket now lives */
	evconnlistener_set_cb(ctl->main.listener, accept_cb, &ctl->main);
	return 0;
}

int control_open_ro(struct carpd *cd, const char *path, const char *group)
{
	struct control *ctl = control_get(cd);
	if (!ctl)
		return -1;
	gid_t gid = (gid_t)-1;
	if (group && group[0]) {
		struct group *gr = getgrnam(group);
		if (!gr) {
			log_err("control-ro: group %s does not exist", group);
			return -1;
		}
		gid = gr->gr_gid;
	}
	lsock_close(&ctl->ro);
	if (lsock_open(cd, &ctl->ro, path, gid == (gid_t)-1 ? 0666 : 0660, gid) < 0)
		return -1;
	snprintf(ctl->ro.group, sizeof(ctl->ro.group), "%s", group ? group : "");
	return 0;
}

const char *control_ro_path(const struct carpd *cd)
{
	return cd->control ? cd->control->ro.path : "";
}

const char *control_ro_group(const struct carpd *cd)
{
	return cd->control ? cd->control->ro.group : "";
}

void control_close(struct carpd *cd)
{
	if (!cd->control)
		return;
	lsock_close(&cd->control->main);
	lsock_close(&cd->control->ro);
	free(cd->control);
	cd->control = NULL;
}

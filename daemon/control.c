/* daemon/control.c - see control.h. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
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

struct control {
	struct evconnlistener *listener;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	size_t nclients;
	uint64_t requests, errors;
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

void control_handle(struct carpd *cd, const char *request, struct evbuffer *out)
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
			reply_error(out, "request too long");
			c->cd->control->errors++;
			c->answered = true;
		}
		return;
	}
	c->cd->control->requests++;
	if (n > CONTROL_MAX_REQUEST || memchr(line, 0, n)) {
		reply_error(out, n > CONTROL_MAX_REQUEST ? "request too long" : "NUL in request");
		c->cd->control->errors++;
	} else {
		control_handle(c->cd, line, out);
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

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
		      int socklen, void *arg)
{
	struct carpd *cd = arg;
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
	cd->control->nclients++;
	struct timeval tmo = {CONTROL_TIMEOUT_S, 0};
	bufferevent_set_timeouts(bev, &tmo, &tmo);
	bufferevent_setcb(bev, client_read_cb, client_write_cb, client_event_cb, c);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

int control_open(struct carpd *cd, const char *path)
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
	mode_t old = umask(0117);
	int rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (rc < 0) {
		log_err("cannot bind control socket %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	chmod(path, 0660);
	cd->control = calloc(1, sizeof(*cd->control));
	if (!cd->control) {
		close(fd);
		return -1;
	}
	snprintf(cd->control->path, sizeof(cd->control->path), "%s", path);
	cd->control->listener = evconnlistener_new(
		cd->base, accept_cb, cd, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16, fd);
	if (!cd->control->listener) {
		close(fd);
		return -1;
	}
	return 0;
}

void control_close(struct carpd *cd)
{
	if (!cd->control)
		return;
	if (cd->control->listener)
		evconnlistener_free(cd->control->listener);
	unlink(cd->control->path);
	free(cd->control);
	cd->control = NULL;
}

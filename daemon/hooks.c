/*
 * daemon/hooks.c - the optional 'notify' program, run on every transition.
 *
 * Asynchronous: fork + exec, never a shell, so nothing from a packet or a
 * configuration string is ever interpreted. Arguments:
 *   notify-program VHID INTERFACE OLD-STATE NEW-STATE REASON
 * and the same values in CARP_VHID, CARP_INTERFACE, CARP_OLD_STATE,
 * CARP_NEW_STATE, CARP_REASON, CARP_ADDRESSES (space separated) with a clean
 * environment: those and PATH=/usr/sbin:/usr/bin:/sbin:/bin, nothing else. None of
 * it comes from a packet: the vhid, interface and addresses are the configuration's
 * (validated by conf.c), the states and reasons are fixed strings of carp.c.
 * stdin is /dev/null, stdout and stderr a pipe whose lines are logged; every other
 * descriptor is closed. The loop never waits for the program.
 *
 * With 'notify-user' it runs as that user (its primary group, no supplementary
 * groups): the child makes CAP_SETUID/CAP_SETGID effective (carpd keeps them
 * permitted for this alone, see priv.c), switches, and the kernel clears every
 * capability with the switch from uid 0. Without notify-user it runs as root with
 * the daemon's capabilities (CAP_NET_RAW, CAP_NET_ADMIN) and no others; no_new_privs
 * holds in both cases.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/carpd.h"

#define HOOKS_MAX_RUNNING 32

struct hook_run {
	struct hook_run *next;
	pid_t pid;
	struct bufferevent *out;
	char tag[32];
};

struct hooks {
	struct hook_run *running;
	size_t nrunning;
	uint64_t started, failed, dropped;
};

int hooks_init(struct carpd *cd)
{
	cd->hooks = calloc(1, sizeof(*cd->hooks));
	return cd->hooks ? 0 : -1;
}

static void hook_free(struct hook_run *h)
{
	if (h->out)
		bufferevent_free(h->out);
	free(h);
}

void hooks_fini(struct carpd *cd)
{
	if (!cd->hooks)
		return;
	for (struct hook_run *h = cd->hooks->running, *n; h; h = n) {
		n = h->next;
		hook_free(h);
	}
	free(cd->hooks);
	cd->hooks = NULL;
}

static void hook_read_cb(struct bufferevent *bev, void *arg)
{
	struct hook_run *h = arg;
	char *line;
	size_t n;
	while ((line = evbuffer_readln(bufferevent_get_input(bev), &n, EVBUFFER_EOL_ANY))) {
		log_info("notify[%s]: %.200s", h->tag, line);
		free(line);
	}
	/* a program that writes without newlines is cut into 4 KiB pieces */
	struct evbuffer *in = bufferevent_get_input(bev);
	if (evbuffer_get_length(in) > 4096) {
		char buf[4097];
		int got = evbuffer_remove(in, buf, 4096);
		buf[got > 0 ? got : 0] = 0;
		log_info("notify[%s]: %.200s", h->tag, buf);
	}
}

static void hook_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct hook_run *h = arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		hook_read_cb(bev, arg);
		bufferevent_free(h->out);
		h->out = NULL;
	}
}

void hooks_reap(struct carpd *cd)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (!cd->hooks)
			continue;
		for (struct hook_run **pp = &cd->hooks->running; *pp; pp = &(*pp)->next) {
			struct hook_run *h = *pp;
			if (h->pid != pid)
				continue;
			if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
				cd->hooks->failed++;
				log_warn("notify[%s]: exited with status %d", h->tag,
					 WEXITSTATUS(status));
			} else if (WIFSIGNALED(status)) {
				cd->hooks->failed++;
				log_warn("notify[%s]: killed by signal %d", h->tag,
					 WTERMSIG(status));
			}
			*pp = h->next;
			cd->hooks->nrunning--;
			if (h->out)
				hook_read_cb(h->out, h);
			hook_free(h);
			break;
		}
	}
}

void hooks_run(struct carpd *cd, const struct vhid *vh, enum carp_state from, enum carp_state to,
	       const char *reason)
{
	const char *prog = cd->conf->notify;
	if (!prog[0] || !cd->hooks)
		return;
	if (cd->hooks->nrunning >= HOOKS_MAX_RUNNING) {
		cd->hooks->dropped++;
		log_warn("notify: %zu programs still running, not starting another for %u@%s",
			 cd->hooks->nrunning, vh->cfg.vhid, vh->cfg.ifname);
		return;
	}
	uid_t uid = 0;
	gid_t gid = 0;
	bool drop = false;
	if (cd->conf->notify_user[0]) {
		struct passwd *pw = getpwnam(cd->conf->notify_user);
		if (!pw) {
			log_warn("notify: user %s does not exist; not running %s",
				 cd->conf->notify_user, prog);
			cd->hooks->failed++;
			return;
		}
		uid = pw->pw_uid;
		gid = pw->pw_gid;
		drop = true;
		if (uid != 0 && !priv_can_setid()) {
			log_warn("notify: cannot switch to user %s (setuid/setgid were given up "
				 "at start; restart carpd); not running %s",
				 cd->conf->notify_user, prog);
			cd->hooks->failed++;
			return;
		}
	}
	char vhid[8], addrs[1024] = "";
	snprintf(vhid, sizeof(vhid), "%u", vh->cfg.vhid);
	for (size_t i = 0; i < vh->cfg.naddrs; i++) {
		char buf[INET6_ADDRSTRLEN + 8];
		conf_addr_str(&vh->cfg.addrs[i], buf, sizeof(buf));
		size_t used = strlen(addrs);
		snprintf(addrs + used, sizeof(addrs) - used, "%s%s", i ? " " : "", buf);
	}
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		cd->hooks->failed++;
		return;
	}
	pid_t pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		cd->hooks->failed++;
		log_warn("notify: fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		/* child: stdin from /dev/null, stdout+stderr to the pipe, default signals */
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(pfd[1], 1) < 0 ||
		    dup2(pfd[1], 2) < 0)
			_exit(126);
		/* nothing else of the daemon's: sockets, netlink, the control socket */
		if (close_range(3, ~0U, 0) < 0) {
			long max = sysconf(_SC_OPEN_MAX);
			for (long fd = 3; fd < (max > 0 ? max : 65536); fd++)
				close((int)fd);
		}
		if (chdir("/") < 0)
			_exit(126);
		sigset_t all;
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		for (int s = 1; s < 32; s++)
			signal(s, SIG_DFL);
		/* CAP_SETUID/CAP_SETGID are permitted, not effective (priv.c) */
		if (drop && uid != 0 &&
		    (priv_raise_setid() < 0 || setgroups(0, NULL) < 0 || setgid(gid) < 0 ||
		     setuid(uid) < 0 || getuid() != uid || geteuid() != uid || getegid() != gid))
			_exit(126);
		char e_vhid[32], e_if[64], e_old[32], e_new[32], e_reason[160], e_addrs[1100];
		snprintf(e_vhid, sizeof(e_vhid), "CARP_VHID=%s", vhid);
		snprintf(e_if, sizeof(e_if), "CARP_INTERFACE=%s", vh->cfg.ifname);
		snprintf(e_old, sizeof(e_old), "CARP_OLD_STATE=%s", carp_state_name(from));
		snprintf(e_new, sizeof(e_new), "CARP_NEW_STATE=%s", carp_state_name(to));
		snprintf(e_reason, sizeof(e_reason), "CARP_REASON=%s", reason);
		snprintf(e_addrs, sizeof(e_addrs), "CARP_ADDRESSES=%s", addrs);
		char *envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
				e_vhid,
				e_if,
				e_old,
				e_new,
				e_reason,
				e_addrs,
				NULL};
		char *argv[] = {(char *)prog,
				vhid,
				(char *)vh->cfg.ifname,
				(char *)carp_state_name(from),
				(char *)carp_state_name(to),
				(char *)reason,
				NULL};
		execve(prog, argv, envp);
		_exit(127);
	}
	close(pfd[1]);
	struct hook_run *h = calloc(1, sizeof(*h));
	if (!h) {
		close(pfd[0]);
		return;
	}
	h->pid = pid;
	snprintf(h->tag, sizeof(h->tag), "%u@%s", vh->cfg.vhid, vh->cfg.ifname);
	evutil_make_socket_nonblocking(pfd[0]);
	h->out = bufferevent_socket_new(cd->base, pfd[0], BEV_OPT_CLOSE_ON_FREE);
	if (h->out) {
		bufferevent_setcb(h->out, hook_read_cb, NULL, hook_event_cb, h);
		bufferevent_enable(h->out, EV_READ);
	} else {
		close(pfd[0]);
	}
	h->next = cd->hooks->running;
	cd->hooks->running = h;
	cd->hooks->nrunning++;
	cd->hooks->started++;
}

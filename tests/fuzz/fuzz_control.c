// clang-format off
/* fuzz-sources: daemon/control.c daemon/output.c daemon/carp.c daemon/carp_io.c daemon/vip.c daemon/link.c daemon/hooks.c daemon/priv.c daemon/state.c daemon/log.c daemon/conf.c proto/carp.c proto/sha1.c proto/frames.c daemon/pfsync.c daemon/ptab.c daemon/slab.c daemon/ct.c daemon/defer.c daemon/nft.c daemon/actmark.c proto/pfsync.c proto/flow.c */
/* fuzz-libs: -levent -lnl-3 -lnl-route-3 -lnetfilter_conntrack -lnfnetlink -lcap -lnetfilter_queue -lmnl -lnettle -ldl */
/* fuzz-cflags: -I/usr/include/libnl3 -DCARPD_VERSION="fuzz" */
// clang-format on
/*
 * The control request handler with arbitrary request lines, against a daemon
 * state with two configured vhids (no sockets, no kernel objects: the vhids stay
 * INIT). Every request must get "ok\n..." or "error: ...\n", never a crash.
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/carpd.h"
#include "daemon/control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct carpd *daemon_state(void)
{
	static struct carpd cd;
	static int ready;
	if (ready)
		return &cd;
	static char dir[] = "/tmp/carpd-fuzz-control-XXXXXX";
	if (!mkdtemp(dir))
		abort();
	char text[512];
	snprintf(text, sizeof(text),
		 "state-dir \"%s\"\nvhid 1 on lo {\n address 192.0.2.1/24\n}\n"
		 "vhid 2 on lo {\n address 2001:db8::1/64\n advskew 100\n}\n",
		 dir);
	struct conf_errors errs;
	cd.base = event_base_new();
	cd.pkt_fd = cd.uni4_fd = cd.uni6_fd = -1;
	cd.conf = conf_parse_buffer("fuzz.conf", text, strlen(text), &errs);
	if (!cd.conf)
		abort();
	cd.vhids = calloc(cd.conf->nvhids, sizeof(*cd.vhids));
	for (size_t i = 0; i < cd.conf->nvhids; i++)
		cd.vhids[cd.nvhids++] = vhid_create(&cd, &cd.conf->vhids[i]);
	ready = 1;
	return &cd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct carpd *cd = daemon_state();
	char line[CONTROL_MAX_REQUEST + 1];
	size_t n = size < CONTROL_MAX_REQUEST ? size : CONTROL_MAX_REQUEST;
	memcpy(line, data, n);
	line[n] = 0;
	struct evbuffer *out = evbuffer_new();
	control_handle(cd, line, out);
	size_t len = evbuffer_get_length(out);
	char head[8] = {0};
	evbuffer_copyout(out, head, sizeof(head) - 1);
	if (len == 0 || (strncmp(head, "ok\n", 3) && strncmp(head, "error: ", 7)))
		abort();
	/* the same line on the read-only socket: the allowlist decides, nothing changes */
	bool maintenance = cd->maintenance;
	int demotion = cd->demotion;
	evbuffer_drain(out, evbuffer_get_length(out));
	control_handle_access(cd, line, out, CONTROL_RO);
	char ro[4] = {0};
	evbuffer_copyout(out, ro, 3);
	if (cd->maintenance != maintenance || cd->demotion != demotion)
		abort();
	/* the request's first word as the handler sees it: up to CR/LF, split on blanks */
	char first[CONTROL_MAX_REQUEST + 1];
	snprintf(first, sizeof(first), "%s", line);
	first[strcspn(first, "\r\n")] = 0;
	char *w = strtok(first, " \t");
	if (w && !control_request_is_read_only(w) && !strcmp(ro, "ok\n"))
		abort();
	evbuffer_free(out);
	/* keep the state bounded: no demotion overflow across millions of runs */
	cd->demotion = 0;
	return 0;
}

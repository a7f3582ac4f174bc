/*
 * Unit tests of the control request handler: every request and the errors for
 * malformed ones, against a daemon state with no vhids (no sockets, no root).
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/carpd.h"
#include "daemon/control.h"
#include "tap.h"

static char reply[65536];

static const char *ask(struct carpd *cd, const char *req)
{
	struct evbuffer *out = evbuffer_new();
	control_handle(cd, req, out);
	size_t n = evbuffer_get_length(out);
	if (n >= sizeof(reply))
		n = sizeof(reply) - 1;
	evbuffer_remove(out, reply, n);
	reply[n] = 0;
	evbuffer_free(out);
	return reply;
}

static int starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

int main(void)
{
	char dir[] = "/tmp/carpd-test-control-XXXXXX";
	if (!mkdtemp(dir))
		return 1;
	char text[512];
	snprintf(text, sizeof(text), "state-dir \"%s\"\n", dir);
	struct conf_errors errs = {0};
	struct carpd cd = {0};
	cd.base = event_base_new();
	cd.conf = conf_parse_buffer("test.conf", text, strlen(text), &errs);
	CHECK(cd.conf != NULL, "minimal configuration parses");
	if (!cd.conf)
		return tap_done();

	CHECK(starts(ask(&cd, "status"), "ok\ncarpd: demotion 0"), "status renders the table");
	CHECK(starts(ask(&cd, "status text"), "ok\ncarpd:"), "status text");
	const char *j = ask(&cd, "status json");
	CHECK(starts(j, "ok\n{\"demotion\": 0, \"maintenance\": false"),
	      "status json starts right");
	CHECK(strstr(j, "\"pfsync\": null") != NULL, "pfsync is null without a pfsync block");
	CHECK(starts(ask(&cd, "status xml"), "error: "), "status xml refused");
	const char *m = ask(&cd, "metrics");
	CHECK(starts(m, "ok\n# TYPE carpd_demotion gauge"), "metrics start");
	CHECK(strlen(m) > 6 && !strcmp(m + strlen(m) - 6, "# EOF\n"), "metrics end with # EOF");

	CHECK(!strcmp(ask(&cd, "demote 50"), "ok\ndemotion 50\n"), "demote 50");
	CHECK(!strcmp(ask(&cd, "demote -20"), "ok\ndemotion 30\n"), "demote is additive");
	CHECK(starts(ask(&cd, "demote abc"), "error: demote takes an integer"), "demote abc");
	CHECK(starts(ask(&cd, "demote 99999999999"), "error: "), "demote overflow");
	CHECK(starts(ask(&cd, "demote"), "error: "), "demote without value");
	CHECK(cd.demotion == 30, "bad requests leave the demotion alone");

	char path[600];
	snprintf(path, sizeof(path), "%s/maintenance", dir);
	CHECK(!strcmp(ask(&cd, "maintenance on"), "ok\nmaintenance on\n"), "maintenance on");
	CHECK(access(path, F_OK) == 0, "maintenance on is persisted");
	CHECK(state_load_maintenance(cd.conf), "and reads back");
	CHECK(!strcmp(ask(&cd, "maintenance off"), "ok\nmaintenance off\n"), "maintenance off");
	CHECK(access(path, F_OK) != 0, "maintenance off removes the file");
	CHECK(starts(ask(&cd, "maintenance maybe"), "error: "), "maintenance maybe refused");

	CHECK(starts(ask(&cd, "state 1 master"), "error: no vhid 1"), "state on unknown vhid");
	CHECK(starts(ask(&cd, "state 0 master"), "error: bad vhid"), "vhid 0");
	CHECK(starts(ask(&cd, "state 256 backup"), "error: bad vhid"), "vhid 256");
	CHECK(starts(ask(&cd, "state 1@lan0 sideways"), "error: "), "bad state word");
	CHECK(starts(ask(&cd, "sync bulk"), "error: pfsync is not configured"), "sync bulk");
	CHECK(starts(ask(&cd, "version"), "ok\ncarpd "), "version");
	CHECK(starts(ask(&cd, ""), "error: empty request"), "empty request");
	CHECK(starts(ask(&cd, "   \t "), "error: empty request"), "blank request");
	CHECK(starts(ask(&cd, "a b c d e f g h i j"), "error: too many words"), "too many words");
	CHECK(starts(ask(&cd, "frobnicate"), "error: unknown request 'frobnicate'"), "unknown");
	char big[4096];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	CHECK(starts(ask(&cd, big), "error: unknown request"), "oversized request");
	CHECK(starts(ask(&cd, "status\r"), "ok\n"), "CR before LF tolerated");

	/* the read-only socket: the allowlist, and nothing changes */
	struct evbuffer *out = evbuffer_new();
	const char *ro_ok[] = {"status", "status text", "status json", "metrics", "version"};
	for (size_t i = 0; i < sizeof(ro_ok) / sizeof(ro_ok[0]); i++) {
		evbuffer_drain(out, evbuffer_get_length(out));
		control_handle_access(&cd, ro_ok[i], out, CONTROL_RO);
		char head[4] = "";
		evbuffer_copyout(out, head, 3);
		CHECK(!strcmp(head, "ok\n"), ro_ok[i]);
	}
	int demotion = cd.demotion;
	const char *ro_no[] = {"maintenance on", "demote 5", "state 1 master", "sync bulk",
			       "frobnicate",	 "statusx",  "maintenance"};
	for (size_t i = 0; i < sizeof(ro_no) / sizeof(ro_no[0]); i++) {
		evbuffer_drain(out, evbuffer_get_length(out));
		control_handle_access(&cd, ro_no[i], out, CONTROL_RO);
		char got[80] = "";
		evbuffer_copyout(out, got, sizeof(got) - 1);
		char what[80];
		snprintf(what, sizeof(what), "read-only socket refuses '%s'", ro_no[i]);
		CHECK(!strcmp(got, "error: permission denied: read-only socket\n"), what);
	}
	evbuffer_free(out);
	CHECK(!cd.maintenance && cd.demotion == demotion, "refused requests change nothing");
	CHECK(control_request_is_read_only("status") && !control_request_is_read_only("demote"),
	      "control_request_is_read_only");

	conf_free(cd.conf);
	event_base_free(cd.base);
	rmdir(dir);
	return tap_done();
}

/* tests/unit/daemon/test_conf.c - carpd.conf parser: structures, defaults, errors. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/conf.h"
#include "tap.h"

#define NAME "t.conf"

static struct conf_errors errs;

static struct conf *parse(const char *text)
{
	return conf_parse_buffer(NAME, text, strlen(text), &errs);
}

static void dump_errors(void)
{
	for (size_t i = 0; i < errs.count; i++)
		printf("# %s\n", errs.msg[i]);
}

/* true if some message starts with "t.conf:LINE: " and contains sub */
static bool has_err(int line, const char *sub)
{
	char prefix[32];
	snprintf(prefix, sizeof(prefix), NAME ":%d: ", line);
	for (size_t i = 0; i < errs.count; i++)
		if (!strncmp(errs.msg[i], prefix, strlen(prefix)) && strstr(errs.msg[i], sub))
			return true;
	dump_errors();
	return false;
}

/* The file must be rejected with exactly one error, at line, containing sub. */
static void expect_error(const char *text, int line, const char *sub, const char *what)
{
	struct conf *c = parse(text);
	char buf[200];
	snprintf(buf, sizeof(buf), "%s: rejected", what);
	CHECK(c == NULL, buf);
	snprintf(buf, sizeof(buf), "%s: line %d, \"%s\"", what, line, sub);
	CHECK(has_err(line, sub), buf);
	snprintf(buf, sizeof(buf), "%s: exactly one error", what);
	if (!CHECK(errs.count == 1, buf))
		dump_errors();
	conf_free(c);
}

static bool is_addr(const struct conf_addr *a, int family, const char *ip, unsigned plen)
{
	uint8_t want[16];
	if (a->family != family || a->prefixlen != plen || inet_pton(family, ip, want) != 1)
		return false;
	return !memcmp(&a->addr, want, family == AF_INET ? 4 : 16);
}

static bool key_is(const uint8_t key[CARP_KEY_LEN], const char *hex)
{
	uint8_t want[CARP_KEY_LEN] = {0};
	if (tap_unhex(hex, want, sizeof(want)) < 0)
		return false;
	return !memcmp(key, want, CARP_KEY_LEN);
}

/* The example of CONTRACT §3, verbatim. */
static const char contract_example[] =
	"control \"/run/carpd.sock\"        # control socket path\n"
	"preempt yes                       # yes|no, default yes (what pfSense sets)\n"
	"hostid 0x1a2b3c4d                 # pfsync creatorid, nonzero; default: derived and "
	"kept stable\n"
	"\n"
	"vhid 1 on lan0 {                  # one block per (vhid, interface)\n"
	"    address 198.51.100.1/24       # repeatable; IPv4 and/or IPv6\n"
	"    address 2001:db8:1::1/64\n"
	"    advbase 1                     # 1..255 seconds, default 1\n"
	"    advskew 0                     # 0..254, default 0\n"
	"    password \"motdepasseCARP\"     # as FreeBSD ifconfig 'pass': first 19 bytes are the "
	"key\n"
	"    peer 192.0.2.3                # optional: unicast advertisements (FreeBSD 'peer')\n"
	"    peer6 2001:db8::3             # optional: IPv6 unicast peer\n"
	"}\n"
	"\n"
	"pfsync on sync0 {                 # state replication\n"
	"    syncpeer 192.0.2.3            # optional: unicast; default multicast 224.0.0.240\n"
	"    version 1400                  # 1301 | 1400 | 1500; default 1400\n"
	"    defer no                      # yes|no, default no\n"
	"}\n";

static void test_contract_example(void)
{
	struct conf *c = parse(contract_example);
	struct in_addr a4;
	struct in6_addr a6;

	if (!CHECK(c != NULL, "contract example parses")) {
		dump_errors();
		return;
	}
	CHECK(errs.count == 0, "example: no errors");
	CHECK(!strcmp(c->control, "/run/carpd.sock") && c->control_set, "example: control");
	CHECK(c->preempt, "example: preempt yes");
	CHECK(c->hostid == 0x1a2b3c4d, "example: hostid");
	CHECK(c->notify[0] == '\0' && c->notify_user[0] == '\0', "example: no notify");
	CHECK(!strcmp(c->state_dir, "/var/lib/carpd"), "example: default state-dir");
	CHECK(!strcmp(c->path, NAME), "example: path kept for messages");
	CHECK(c->nvhids == 1, "example: one vhid");
	const struct conf_vhid *v = &c->vhids[0];
	CHECK(v->vhid == 1 && !strcmp(v->ifname, "lan0"), "example: vhid 1 on lan0");
	CHECK(v->line == 5, "example: vhid line 5");
	CHECK(v->naddrs == 2, "example: two addresses");
	CHECK(is_addr(&v->addrs[0], AF_INET, "198.51.100.1", 24), "example: 198.51.100.1/24");
	CHECK(is_addr(&v->addrs[1], AF_INET6, "2001:db8:1::1", 64), "example: 2001:db8:1::1/64");
	CHECK(v->advbase == 1 && v->advskew == 0, "example: advbase 1 advskew 0");
	CHECK(v->has_password && !strcmp(v->password, "motdepasseCARP"), "example: password");
	CHECK(key_is(v->key, "6d6f74646570617373654341 5250"), "example: key = password bytes");
	inet_pton(AF_INET, "192.0.2.3", &a4);
	inet_pton(AF_INET6, "2001:db8::3", &a6);
	CHECK(v->has_peer && v->peer.s_addr == a4.s_addr, "example: peer");
	CHECK(v->has_peer6 && !memcmp(&v->peer6, &a6, 16), "example: peer6");
	CHECK(c->pfsync.enabled && !strcmp(c->pfsync.ifname, "sync0"), "example: pfsync on sync0");
	CHECK(c->pfsync.line == 15, "example: pfsync line 15");
	CHECK(c->pfsync.has_syncpeer && c->pfsync.syncpeer_family == AF_INET &&
		      c->pfsync.syncpeer.v4.s_addr == a4.s_addr,
	      "example: syncpeer");
	CHECK(c->pfsync.version == 1400, "example: version 1400");
	CHECK(!c->pfsync.defer, "example: defer no");
	conf_free(c);
}

static void test_defaults(void)
{
	struct conf *c =
		parse("vhid 7 on eth0.10 {\n\taddress 10.0.0.1\n\taddress 2001:db8::7\n}\n");
	uint8_t zero[CARP_KEY_LEN] = {0};

	if (!CHECK(c != NULL, "minimal file parses")) {
		dump_errors();
		return;
	}
	CHECK(!strcmp(c->control, CONF_DEFAULT_CONTROL) && !c->control_set, "default control");
	CHECK(c->preempt, "default preempt yes");
	CHECK(c->follow_demotion, "default follow-demotion yes");
	CHECK(c->hostid == 0, "default hostid 0 (derive)");
	CHECK(c->notify[0] == '\0' && c->notify_user[0] == '\0', "default: no notify");
	CHECK(!strcmp(c->state_dir, "/var/lib/carpd"), "default state-dir");
	CHECK(!c->pfsync.enabled, "default: no pfsync");
	CHECK(c->nvhids == 1 && c->vhids[0].vhid == 7 && !strcmp(c->vhids[0].ifname, "eth0.10"),
	      "vhid 7 on eth0.10");
	const struct conf_vhid *v = &c->vhids[0];
	CHECK(v->advbase == 1 && v->advskew == 0, "default advbase 1, advskew 0");
	{
		struct conf *fast = parse("vhid 1 on a {\n address 192.0.2.1/32\n advbase 0\n}\n");
		CHECK(fast && fast->vhids[0].advbase == 0, "advbase 0 (fast mode) is accepted");
		conf_free(fast);
	}
	CHECK(!v->has_password && !memcmp(v->key, zero, sizeof(zero)), "default: no key");
	CHECK(!v->has_peer && !v->has_peer6, "default: multicast");
	CHECK(is_addr(&v->addrs[0], AF_INET, "10.0.0.1", 32), "IPv4 without prefix is /32");
	CHECK(is_addr(&v->addrs[1], AF_INET6, "2001:db8::7", 128), "IPv6 without prefix is /128");
	conf_free(c);

	c = parse("pfsync on sync0 {\n}\n");
	CHECK(c && c->pfsync.enabled && c->pfsync.version == 1400 && !c->pfsync.defer &&
		      !c->pfsync.has_syncpeer && c->nvhids == 0 &&
		      c->pfsync.activity_mark == 0x80000000u,
	      "empty pfsync block: defaults");
	conf_free(c);

	c = parse("pfsync on sync0 {\n activity-mark none\n}\n");
	CHECK(c && c->pfsync.activity_mark == 0, "activity-mark none: scan the table");
	conf_free(c);
	c = parse("pfsync on sync0 {\n activity-mark 0x40\n}\n");
	CHECK(c && c->pfsync.activity_mark == 0x40, "activity-mark 0x40");
	conf_free(c);
	c = parse("pfsync on sync0 {\n activity-mark 1\n}\n");
	CHECK(c && c->pfsync.activity_mark == 1, "activity-mark 1 (decimal)");
	conf_free(c);

	c = parse("");
	CHECK(c && c->nvhids == 0 && errs.count == 0, "empty file is valid");
	conf_free(c);

	c = parse("preempt no\nfollow-demotion no\nhostid 4294967295\nnotify "
		  "\"/usr/local/bin/hook\"\n"
		  "notify-user \"carp\"\nstate-dir \"/srv/carpd\"\ncontrol \"/tmp/c.sock\"\n"
		  "pfsync on sync0 {\n syncpeer 2001:db8::2\n version 1500\n defer yes\n}\n");
	if (CHECK(c != NULL, "every global statement parses")) {
		CHECK(!c->preempt, "preempt no");
		CHECK(!c->follow_demotion, "follow-demotion no");
		CHECK(c->hostid == 0xffffffffu, "hostid decimal max");
		CHECK(!strcmp(c->notify, "/usr/local/bin/hook"), "notify");
		CHECK(!strcmp(c->notify_user, "carp"), "notify-user");
		CHECK(!strcmp(c->state_dir, "/srv/carpd"), "state-dir");
		CHECK(!strcmp(c->control, "/tmp/c.sock") && c->control_set, "control");
		CHECK(c->pfsync.syncpeer_family == AF_INET6 && c->pfsync.version == 1500 &&
			      c->pfsync.defer,
		      "pfsync IPv6 syncpeer, version 1500, defer yes");
	} else {
		dump_errors();
	}
	conf_free(c);

	c = parse("hostid 0X00000001\nvhid 255 on a {\n address 192.0.2.1/32\n advbase 255\n"
		  " advskew 254\n}\n");
	CHECK(c && c->hostid == 1 && c->vhids[0].vhid == 255 && c->vhids[0].advbase == 255 &&
		      c->vhids[0].advskew == 254,
	      "upper bounds accepted");
	conf_free(c);
}

static void test_errors(void)
{
	const char *v1 = "vhid 1 on lan0 {\n";
	char buf[4096];

	/* unknown statements, with and without a suggestion */
	expect_error("preemt yes\n", 1, "unknown statement \"preemt\" (did you mean \"preempt\"?)",
		     "typo at top level");
	snprintf(buf, sizeof(buf), "%s address 10.0.0.1/24\n adress 10.0.0.2/24\n}\n", v1);
	expect_error(buf, 3,
		     "unknown statement \"adress\" in vhid block (did you mean \"address\"?)",
		     "typo in vhid block");
	expect_error("\n\nfrobnicate 3\n", 3, "unknown statement \"frobnicate\"", "unknown word");
	expect_error("pfsync on sync0 {\n  defr yes\n}\n", 2, "(did you mean \"defer\"?)",
		     "typo in pfsync block");
	expect_error("pfsync on sync0 {\n  activity-mark 0x3\n}\n", 2,
		     "activity-mark: \"0x3\" is not one bit of the conntrack mark",
		     "two mark bits");
	expect_error("pfsync on sync0 {\n  activity-mark 0x100000000\n}\n", 2,
		     "is not one bit of the conntrack mark", "mark bit out of range");
	expect_error("pfsync on sync0 {\n  activity-mark 0\n}\n", 2,
		     "is not one bit of the conntrack mark", "mark 0 (none is spelled none)");
	expect_error("pfsync on sync0 {\n  activity-mark \"none\"\n}\n", 2,
		     "is not one bit of the conntrack mark", "a quoted none is a string");
	expect_error("address 10.0.0.1/24\n", 1, "address is only valid inside a vhid block",
		     "block statement at top level");
	snprintf(buf, sizeof(buf), "%s address 10.0.0.1/24\n preempt no\n}\n", v1);
	expect_error(buf, 3, "preempt is a global statement, not valid inside a vhid block",
		     "global statement in block");

	/* ranges */
	snprintf(buf, sizeof(buf), "%s address 10.0.0.1/24\n advbase 256\n}\n", v1);
	expect_error(buf, 3, "advbase 256 out of range 0..255", "advbase 256");
	snprintf(buf, sizeof(buf), "%s address 10.0.0.1/24\n advskew 255\n}\n", v1);
	expect_error(buf, 3, "advskew 255 out of range 0..254", "advskew 255");
	snprintf(buf, sizeof(buf), "%s address 10.0.0.1/24\n advskew 99999999999999999999999\n}\n",
		 v1);
	expect_error(buf, 3, "out of range 0..254", "advskew overflow");
	snprintf(buf, sizeof(buf), "%s address 10.0.0.1/24\n advskew -1\n}\n", v1);
	expect_error(buf, 3, "advskew: \"-1\" is not a number (expected 0..254)", "advskew -1");
	expect_error("vhid 0 on lan0 {\n address 10.0.0.1\n}\n", 1, "vhid 0 out of range 1..255",
		     "vhid 0");
	expect_error("vhid 256 on lan0 {\n address 10.0.0.1\n}\n", 1,
		     "vhid 256 out of range 1..255", "vhid 256");
	expect_error("hostid 0\n", 1, "hostid 0 out of range 1..0xffffffff", "hostid 0");
	expect_error("hostid 0x100000000\n", 1, "hostid 0x100000000 out of range 1..0xffffffff",
		     "hostid too big");
	expect_error("hostid abc\n", 1, "not a number (decimal or 0x hex)", "hostid garbage");
	expect_error("pfsync on s0 {\n version 1300\n}\n", 2,
		     "version 1300 is not supported (1301, 1400 or 1500)", "pfsync version");
	expect_error("preempt maybe\n", 1, "preempt: expected yes or no, not \"maybe\"", "yes/no");
	expect_error("follow-demotion 1\n", 1, "follow-demotion: expected yes or no, not \"1\"",
		     "follow-demotion yes/no");
	snprintf(buf, sizeof(buf), "%s address 10.0.0.1/33\n}\n", v1);
	expect_error(buf, 2, "prefix length out of range 1..32", "IPv4 prefix");
	snprintf(buf, sizeof(buf), "%s address 2001:db8::1/129\n}\n", v1);
	expect_error(buf, 2, "prefix length out of range 1..128", "IPv6 prefix");
	snprintf(buf, sizeof(buf), "%s address 10.0.0.256/24\n}\n", v1);
	expect_error(buf, 2, "\"10.0.0.256/24\" is not an IPv4 or IPv6 address", "bad address");
	snprintf(buf, sizeof(buf), "%s address 224.0.0.18/24\n}\n", v1);
	expect_error(buf, 2, "224.0.0.18 is a multicast address", "multicast VIP");

	/* interface names */
	expect_error("vhid 1 on abcdefghijklmnop {\n address 10.0.0.1\n}\n", 1,
		     "invalid interface name \"abcdefghijklmnop\" (1..15 characters", "ifname 16");
	expect_error("vhid 1 on lan/0 {\n address 10.0.0.1\n}\n", 1,
		     "invalid interface name \"lan/0\"", "ifname with /");
	expect_error("vhid 1 at lan0 {\n address 10.0.0.1\n}\n", 1,
		     "vhid: expected \"on\", found \"at\"", "vhid without on");
	expect_error("vhid 1 on {\n address 10.0.0.1\n}\n", 1,
		     "vhid: missing interface name after \"on\"", "vhid without interface");
	struct conf *c = parse("vhid 1 on abcdefghijklmno {\n address 10.0.0.1\n}\n");
	CHECK(c != NULL, "15-character interface name accepted");
	conf_free(c);

	/* duplicates */
	expect_error("vhid 1 on lan0 {\n address 10.0.0.1\n}\n\n\nvhid 1 on lan0 {\n"
		     " address 10.0.0.2\n}\n",
		     6, "vhid 1 on lan0 already declared at line 1", "vhid twice");
	c = parse(
		"vhid 1 on lan0 {\n address 10.0.0.1\n}\nvhid 1 on lan1 {\n address 10.0.1.1\n}\n");
	CHECK(c && c->nvhids == 2, "same vhid on two interfaces is fine");
	conf_free(c);
	expect_error("vhid 1 on lan0 {\n address 10.0.0.1/24\n}\nvhid 2 on lan0 {\n"
		     " address 10.0.0.1/32\n}\n",
		     5, "address 10.0.0.1 already used by vhid 1 on lan0 at line 2",
		     "address in two vhids");
	snprintf(buf, sizeof(buf), "%s address 2001:db8::1\n address 2001:DB8:0::1/64\n}\n", v1);
	expect_error(buf, 3, "duplicate address 2001:db8::1 (already given at line 2)",
		     "address twice in one vhid");
	snprintf(buf, sizeof(buf), "%s address 10.0.0.1/24\n advbase 1\n advbase 2\n}\n", v1);
	expect_error(buf, 4, "duplicate advbase (already given at line 3)", "advbase twice");
	expect_error("preempt yes\npreempt no\n", 2, "duplicate preempt (already given at line 1)",
		     "global twice");
	expect_error("pfsync on s0 {\n}\npfsync on s1 {\n}\n", 3,
		     "pfsync already declared at line 1", "pfsync twice");
	snprintf(buf, sizeof(buf),
		 "%s address 10.0.0.1/24\n password \"a\"\n"
		 " pfsense-password \"b\"\n}\n",
		 v1);
	expect_error(buf, 4, "password and pfsense-password are mutually exclusive",
		     "both passwords");

	/* a vhid needs addresses, but not too many */
	expect_error("\nvhid 3 on lan0 {\n advskew 100\n}\n", 2, "vhid 3 on lan0 has no address",
		     "vhid without address");
	size_t o = (size_t)snprintf(buf, sizeof(buf), "%s", v1);
	for (int i = 0; i < CARP_MAX_ADDRS + 2; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, " address 10.1.0.%d/24\n", i + 1);
	snprintf(buf + o, sizeof(buf) - o, "}\n");
	expect_error(buf, CARP_MAX_ADDRS + 2, "vhid 1 on lan0: too many addresses (at most 64)",
		     "65 addresses");

	/* peers */
	snprintf(buf, sizeof(buf), "%s address 10.0.0.1/24\n peer 2001:db8::3\n}\n", v1);
	expect_error(buf, 3, "peer: 2001:db8::3 is an IPv6 address (use peer6 for IPv6)",
		     "IPv6 peer");
	snprintf(buf, sizeof(buf), "%s address 2001:db8::1/64\n peer6 192.0.2.3\n}\n", v1);
	expect_error(buf, 3, "peer6: 192.0.2.3 is an IPv4 address (use peer for IPv4)",
		     "IPv4 peer6");
	snprintf(buf, sizeof(buf), "%s peer 192.0.2.3\n address 2001:db8::1/64\n}\n", v1);
	expect_error(buf, 2, "peer is IPv4 but vhid 1 on lan0 has no IPv4 address",
		     "peer without IPv4 address");
	snprintf(buf, sizeof(buf), "%s address 10.0.0.1/24\n peer6 2001:db8::3\n}\n", v1);
	expect_error(buf, 3, "peer6 is IPv6 but vhid 1 on lan0 has no IPv6 address",
		     "peer6 without IPv6 address");
	snprintf(buf, sizeof(buf), "%s address 10.0.0.1/24\n peer 224.0.0.18\n}\n", v1);
	expect_error(buf, 3, "peer: 224.0.0.18 is a multicast address", "multicast peer");
	snprintf(buf, sizeof(buf), "%s address 2001:db8::1/64\n peer6 ff02::12\n}\n", v1);
	expect_error(buf, 3, "peer6: ff02::12 is a multicast address", "multicast peer6");

	/* missing values, trailing garbage, paths */
	snprintf(buf, sizeof(buf), "%s address 10.0.0.1/24\n advskew\n}\n", v1);
	expect_error(buf, 3, "advskew: missing value (expected 0..254)", "missing value");
	snprintf(buf, sizeof(buf), "%s address 10.0.0.1/24\n advbase 1 2\n}\n", v1);
	expect_error(buf, 3, "advbase: unexpected \"2\" after the value", "trailing garbage");
	expect_error("control\n", 1, "control: missing value", "control without path");
	expect_error("notify \"hook.sh\"\n", 1, "notify: path must be absolute", "relative notify");
	expect_error("state-dir \"var/lib\"\n", 1, "state-dir: path must be absolute",
		     "relative state-dir");
	expect_error("notify-user \"a b\"\n", 1, "notify-user: invalid user name \"a b\"",
		     "bad user name");
	expect_error("vhid 1 on lan0 {\n address 10.0.0.1\n} extra\n", 3,
		     "unexpected \"extra\" after '}'", "garbage after }");
	snprintf(buf, sizeof(buf), "%s address 10.0.0.1/24\n password \"\"\n}\n", v1);
	expect_error(buf, 3, "password: empty password", "empty password");

	/* structure */
	c = parse("vhid 1 on lan0\n  address 10.0.0.1\n");
	CHECK(c == NULL && has_err(1, "vhid: expected '{' at the end of the line") &&
		      has_err(2, "address is only valid inside a vhid block"),
	      "missing {");
	conf_free(c);
	c = parse("vhid 1 on lan0\n{\n  address 10.0.0.1\n}\n");
	CHECK(c == NULL && errs.count == 1 && has_err(1, "expected '{' at the end of the line"),
	      "{ on the next line: one error, block still read");
	conf_free(c);
	expect_error("vhid 1 on lan0 {\n address 10.0.0.1\n\n", 1,
		     "vhid 1 on lan0: missing '}' at end of file", "unterminated block");
	c = parse("vhid 1 on lan0 {\n address 10.0.0.1\nvhid 2 on lan0 {\n address 10.0.0.2\n}\n");
	CHECK(c == NULL && errs.count == 1 &&
		      has_err(1, "vhid 1 on lan0: missing '}' (block not closed before line 3)"),
	      "missing } before the next vhid: one error");
	conf_free(c);
	expect_error("preempt yes\n}\n", 2, "unexpected '}' (no block is open)", "stray }");
	expect_error("control \"/run/x.sock\n", 1, "unterminated string", "unterminated string");
	expect_error("control \"/run/x.sock", 1, "unterminated string", "string at EOF");
	c = conf_parse_buffer(NAME, "preempt yes\nhostid 1\0 2\n", 24, &errs);
	CHECK(c == NULL && has_err(2, "NUL byte in file"), "NUL byte reported");
	conf_free(c);
	memset(buf, 'x', 2000);
	buf[2000] = '\0';
	c = parse(buf);
	CHECK(c == NULL && has_err(1, "word too long (at most 1023 bytes)") &&
		      has_err(1, "unknown statement \"xxxxxxxx"),
	      "2000-byte word");
	conf_free(c);
	buf[0] = '"';
	buf[1999] = '"';
	c = parse(buf);
	CHECK(c == NULL && has_err(1, "string too long (at most 1023 bytes)"), "2000-byte string");
	conf_free(c);
}

static void test_control_ro(void)
{
	struct conf *c = parse("control-ro \"/run/carpd.ro.sock\"\n");
	CHECK(c && !strcmp(c->control_ro, "/run/carpd.ro.sock") && !c->control_ro_group[0] &&
		      c->control_ro_line == 1,
	      "control-ro PATH");
	conf_free(c);
	c = parse("# monitoring\ncontrol-ro \"/run/carpd.ro.sock\" group \"carpmon\"\n");
	CHECK(c && !strcmp(c->control_ro, "/run/carpd.ro.sock") &&
		      !strcmp(c->control_ro_group, "carpmon") && c->control_ro_line == 2,
	      "control-ro PATH group NAME");
	conf_free(c);
	c = parse("control-ro /run/ro.sock group adm\n");
	CHECK(c && !strcmp(c->control_ro, "/run/ro.sock") && !strcmp(c->control_ro_group, "adm"),
	      "control-ro without quotes");
	conf_free(c);
	c = parse("control \"/run/a.sock\"\n");
	CHECK(c && !c->control_ro[0] && !c->control_ro_group[0], "no control-ro by default");
	conf_free(c);

	expect_error("control-ro\n", 1, "control-ro: missing value (expected a quoted path)",
		     "control-ro without path");
	expect_error("\ncontrol-ro \"\"\n", 2, "control-ro: empty path", "control-ro empty");
	expect_error("control-ro \"/run/ro.sock\" owner \"x\"\n", 1,
		     "control-ro: unexpected \"owner\" after the path (expected group NAME)",
		     "control-ro with a word other than group");
	expect_error("control-ro \"/run/ro.sock\" group\n", 1,
		     "control-ro: missing group name after \"group\"",
		     "control-ro group without name");
	expect_error("control-ro \"/run/ro.sock\" group \"a\" extra\n", 1,
		     "control-ro: unexpected \"extra\" after the group name",
		     "control-ro trailing garbage");
	expect_error("control-ro \"/run/ro.sock\" group \"a:b\"\n", 1,
		     "control-ro: invalid group name \"a:b\"", "control-ro bad group");
	expect_error("control-ro \"/run/ro.sock\" group \"-x\"\n", 1,
		     "control-ro: invalid group name \"-x\"", "control-ro group starting with -");
	char longpath[300];
	snprintf(longpath, sizeof(longpath), "control-ro \"/%0120d\"\n", 0);
	expect_error(longpath, 1, "control-ro: path too long (at most 107 bytes)",
		     "control-ro path too long");
	expect_error("control-ro \"/run/a\"\ncontrol-ro \"/run/b\"\n", 2,
		     "duplicate control-ro (already given at line 1)", "control-ro twice");
	expect_error("control \"/run/x.sock\"\n\ncontrol-ro \"/run/x.sock\"\n", 3,
		     "control-ro: \"/run/x.sock\" is already the control socket",
		     "control-ro same as control");
	expect_error("control-ro \"/run/carpd.sock\"\n", 1, "is already the control socket",
		     "control-ro same as the default control socket");
	expect_error("vhid 1 on lan0 {\n address 10.0.0.1\n control-ro \"/run/r\"\n}\n", 3,
		     "control-ro is a global statement, not valid inside a vhid block",
		     "control-ro inside a vhid block");

	/* the group must exist: a system check, with the statement's line */
	c = parse("control-ro \"/run/ro.sock\" group \"carpd-no-such-group\"\n"
		  "vhid 1 on lo {\n address 10.0.0.1\n}\n");
	if (CHECK(c != NULL, "unknown group parses (checked against the system later)")) {
		snprintf(c->path, sizeof(c->path), NAME);
		errs.count = 0;
		CHECK(conf_check_system(c, &errs) == 1, "unknown group: one problem");
		CHECK(has_err(1, "control-ro: group carpd-no-such-group does not exist"),
		      "unknown group: FILE:LINE message");
	}
	conf_free(c);
	c = parse("vhid 1 on carpd-nosuch0 {\n address 10.0.0.1\n}\n"
		  "control-ro \"/run/ro.sock\" group \"carpd-no-such-group\"\n");
	if (CHECK(c != NULL, "unknown group and interface parse")) {
		snprintf(c->path, sizeof(c->path), NAME);
		errs.count = 0;
		CHECK(conf_check_system(c, &errs) == 2 && errs.count == 2 &&
			      strstr(errs.msg[0], NAME ":1: interface") &&
			      strstr(errs.msg[1], NAME ":4: control-ro: group"),
		      "system problems come sorted by line");
	}
	conf_free(c);
	c = parse("control-ro \"/run/ro.sock\" group \"root\"\n");
	errs.count = 0;
	CHECK(c && conf_check_system(c, &errs) == 0, "an existing group passes the system check");
	conf_free(c);
}

static void test_many_errors(void)
{
	const char *text = "preempt perhaps\n"		 /* 1 */
			   "vhid 1 on lan0 {\n"		 /* 2 */
			   "  advbase 300\n"		 /* 3 */
			   "  address 198.51.100.1/24\n" /* 4 */
			   "  advskw 10\n"		 /* 5 */
			   "}\n"			 /* 6 */
			   "vhid 2 on lan0 {\n"		 /* 7 */
			   "  address 198.51.100.1/24\n" /* 8 */
			   "}\n"			 /* 9 */
			   "vhid 3 on lan0 {\n"		 /* 10 */
			   "}\n";			 /* 11 */
	struct conf *c = parse(text);

	CHECK(c == NULL, "several errors: rejected");
	CHECK(errs.count == 5, "several errors: all five reported");
	CHECK(has_err(1, "expected yes or no"), "several errors: line 1");
	CHECK(has_err(3, "advbase 300 out of range"), "several errors: line 3");
	CHECK(has_err(5, "did you mean \"advskew\""), "several errors: line 5");
	CHECK(has_err(8, "already used by vhid 1 on lan0 at line 4"), "several errors: line 8");
	CHECK(has_err(10, "vhid 3 on lan0 has no address"), "several errors: line 10");
	bool sorted = true;
	for (size_t i = 1; i < errs.count; i++)
		sorted &= atoi(strchr(errs.msg[i - 1], ':') + 1) <=
			  atoi(strchr(errs.msg[i], ':') + 1);
	CHECK(sorted, "several errors: sorted by line");
	conf_free(c);

	char big[8192];
	size_t o = 0;
	for (int i = 0; i < 200; i++)
		o += (size_t)snprintf(big + o, sizeof(big) - o, "bogus %d\n", i);
	c = parse(big);
	CHECK(c == NULL && errs.count == CONF_MAX_ERRORS, "error list capped");
	CHECK(strstr(errs.msg[CONF_MAX_ERRORS - 1], "too many errors"), "last entry says so");
	conf_free(c);
}

static void test_lexical(void)
{
	struct conf *c = parse("# leading comment\n"
			       "   # indented comment\n"
			       "control \"/run/a#b.sock\" # '#' in a string is not a comment\n"
			       "vhid 9 on lan0 { # comment after the brace\n"
			       "\taddress 10.0.0.1/8#no space before the comment\n"
			       "\tpassword \"a\\\"b\\\\c d\"\n"
			       "\tadvskew 5 }\n"
			       "vhid 10 on lan0 { address 10.0.0.2\n"
			       "}\n"
			       "pfsync on sync0 {}\n");
	if (!CHECK(c != NULL, "comments, quoting, escapes, braces parse")) {
		dump_errors();
		return;
	}
	CHECK(!strcmp(c->control, "/run/a#b.sock"), "'#' inside a string kept");
	CHECK(c->nvhids == 2 && is_addr(&c->vhids[0].addrs[0], AF_INET, "10.0.0.1", 8),
	      "comment right after a word");
	CHECK(!strcmp(c->vhids[0].password, "a\"b\\c d"), "\\\" and \\\\ escapes");
	CHECK(key_is(c->vhids[0].key, "61 22 62 5c 63 20 64"), "key from the unescaped password");
	CHECK(c->vhids[0].advskew == 5, "'}' after the last statement");
	CHECK(c->vhids[1].naddrs == 1, "statement after '{' on the same line");
	CHECK(c->pfsync.enabled, "empty '{}' block");
	conf_free(c);

	c = parse("vhid 1 on lan0 {\n password \"a\\nb\"\n address 10.0.0.1\n}\n");
	CHECK(c && !strcmp(c->vhids[0].password, "a\\nb"), "other backslashes are kept");
	conf_free(c);

	/* CRLF: the same structures as LF */
	static const char crlf[] = "preempt no\r\nvhid 4 on lan0 {\r\n  address 10.0.0.4/24\r\n"
				   "  password \"x y\"\r\n}\r\n";
	c = parse(crlf);
	if (CHECK(c != NULL, "CRLF file parses")) {
		CHECK(!c->preempt && c->nvhids == 1 && c->vhids[0].vhid == 4 &&
			      is_addr(&c->vhids[0].addrs[0], AF_INET, "10.0.0.4", 24) &&
			      !strcmp(c->vhids[0].password, "x y"),
		      "CRLF: same values as LF");
	} else {
		dump_errors();
	}
	conf_free(c);
	c = parse("preempt no\r\nfoo\r\n");
	CHECK(c == NULL && has_err(2, "unknown statement \"foo\""), "CRLF: line numbers");
	conf_free(c);
}

static void test_passwords(void)
{
	struct conf *c = parse(
		"vhid 1 on lan0 {\n address 10.0.0.1\n pfsense-password \"my pass\\\"word\"\n}\n"
		"vhid 2 on lan0 {\n address 10.0.0.2\n"
		" password \"abcdefghijklmnopqrstuvwxyz\"\n}\n");
	if (!CHECK(c != NULL, "passwords parse")) {
		dump_errors();
		return;
	}
	CHECK(key_is(c->vhids[0].key, "6d79706173735c22776f7264"),
	      "pfsense-password 'my pass\"word' -> key mypass\\\"word");
	CHECK(c->vhids[0].has_password && !strcmp(c->vhids[0].password, "my pass\"word"),
	      "pfsense-password kept as typed");
	CHECK(key_is(c->vhids[1].key, "6162636465666768696a6b6c6d6e6f70717273"),
	      "26-character password: first 19 bytes are the key");
	CHECK(c->vhids[1].key[19] == 0, "key byte 20 is NUL");
	CHECK(!strcmp(c->vhids[1].password, "abcdefghijklmnopqrstuvwxyz"), "password kept whole");
	conf_free(c);

	expect_error("vhid 1 on lan0 {\n address 10.0.0.1\n pfsense-password \"   \"\n}\n", 3,
		     "pfsense-password: empty once pfSense removes the spaces", "spaces only");
}

static void test_file(void)
{
	struct conf *c = conf_parse_file("/nonexistent/carpd.conf", &errs);
	CHECK(c == NULL && errs.count == 1, "missing file: one error");
	CHECK(strstr(errs.msg[0], "/nonexistent/carpd.conf") &&
		      strstr(errs.msg[0], "No such file or directory"),
	      "missing file: clear message");

	char path[] = "/tmp/test_conf.XXXXXX";
	int fd = mkstemp(path);
	if (!CHECK(fd >= 0, "temporary file"))
		return;
	FILE *f = fdopen(fd, "w");
	fputs(contract_example, f);
	fputs("vhid 2 on lan0 {\n advbase 300\n}\n", f);
	fclose(f);
	c = conf_parse_file(path, &errs);
	char want[64];
	snprintf(want, sizeof(want), "%s:21: advbase 300 out of range", path);
	CHECK(c == NULL && errs.count == 2 && !strncmp(errs.msg[1], want, strlen(want)),
	      "file: messages carry the file name and line");
	snprintf(want, sizeof(want), "%s:20: vhid 2 on lan0 has no address", path);
	CHECK(!strcmp(errs.msg[0], want), "file: errors sorted by line");
	conf_free(c);
	f = fopen(path, "w");
	fputs(contract_example, f);
	fclose(f);
	c = conf_parse_file(path, &errs);
	CHECK(c && c->nvhids == 1 && !strcmp(c->path, path), "file: parses, path kept");
	conf_free(c);
	unlink(path);
	c = conf_parse_file("/tmp", &errs);
	CHECK(c == NULL && errs.count == 1, "directory refused");
}

static void test_helpers(void)
{
	struct conf *a = parse(contract_example);
	char buf[INET6_ADDRSTRLEN + 4];

	if (!CHECK(a != NULL, "helpers: example parses"))
		return;
	CHECK(!strcmp(conf_addr_str(&a->vhids[0].addrs[0], buf, sizeof(buf)), "198.51.100.1/24"),
	      "conf_addr_str IPv4");
	CHECK(!strcmp(conf_addr_str(&a->vhids[0].addrs[1], buf, sizeof(buf)), "2001:db8:1::1/64"),
	      "conf_addr_str IPv6");

	struct conf *b = parse("vhid 1 on lan0 {\n address 2001:db8:1::1/64\n"
			       " address 198.51.100.1/24\n password \"motdepasseCARP\"\n"
			       " peer6 2001:db8::3\n peer 192.0.2.3\n}\n");
	CHECK(b && conf_vhid_equal(&a->vhids[0], &b->vhids[0]),
	      "vhid_equal: same settings in another order");
	struct conf_vhid v = a->vhids[0];
	v.line = 99;
	CHECK(conf_vhid_equal(&a->vhids[0], &v), "vhid_equal: line does not matter");
	v.advskew = 100;
	CHECK(!conf_vhid_equal(&a->vhids[0], &v), "vhid_equal: advskew");
	v = a->vhids[0];
	v.advbase = 2;
	CHECK(!conf_vhid_equal(&a->vhids[0], &v), "vhid_equal: advbase");
	v = a->vhids[0];
	v.key[0] ^= 1;
	CHECK(!conf_vhid_equal(&a->vhids[0], &v), "vhid_equal: key");
	v = a->vhids[0];
	v.addrs[0].prefixlen = 25;
	CHECK(!conf_vhid_equal(&a->vhids[0], &v), "vhid_equal: prefix length");
	v = a->vhids[0];
	v.naddrs = 1;
	CHECK(!conf_vhid_equal(&a->vhids[0], &v), "vhid_equal: address removed");
	v = a->vhids[0];
	v.has_peer = false;
	CHECK(!conf_vhid_equal(&a->vhids[0], &v), "vhid_equal: peer removed");
	v = a->vhids[0];
	v.peer6.s6_addr[15] = 4;
	CHECK(!conf_vhid_equal(&a->vhids[0], &v), "vhid_equal: peer6 changed");
	v = a->vhids[0];
	strcpy(v.ifname, "lan1");
	CHECK(!conf_vhid_equal(&a->vhids[0], &v), "vhid_equal: interface");
	conf_free(b);

	/* system check: lo exists everywhere, the others do not */
	b = parse("vhid 1 on lo {\n address 10.0.0.1\n}\n"
		  "vhid 2 on nosuchif0 {\n address 10.0.0.2\n}\n"
		  "vhid 3 on nosuchif0 {\n address 10.0.0.3\n}\n"
		  "pfsync on nosuchif1 {\n}\n");
	if (CHECK(b != NULL, "system check file parses")) {
		errs.count = 0;
		int n = conf_check_system(b, &errs);
		CHECK(n == 2 && errs.count == 2, "two interfaces missing, each reported once");
		CHECK(has_err(4, "interface nosuchif0 does not exist"), "missing vhid interface");
		CHECK(has_err(10, "interface nosuchif1 does not exist"),
		      "missing pfsync interface");
	}
	conf_free(b);
	conf_free(a);
}

int main(void)
{
	test_contract_example();
	test_defaults();
	test_errors();
	test_control_ro();
	test_many_errors();
	test_lexical();
	test_passwords();
	test_file();
	test_helpers();
	return tap_done();
}

/*
 * tests/tools/ct_probe.c - a command-line driver over daemon/ct.c for
 * tests/tools/test_ct.sh (and for poking at a firewall by hand).
 *
 *   ct_probe check
 *   ct_probe dump
 *   ct_probe get    PROTO SRC SPORT DST DPORT [--zone N] [--icmp-type T]
 *   ct_probe remove PROTO SRC SPORT DST DPORT [--zone N] [--icmp-type T]
 *   ct_probe inject PROTO SRC SPORT DST DPORT [options]
 *   ct_probe raw    PROTO SRC SPORT DST DPORT   (the kernel's status and TCP flags,
 *                                                read with libnetfilter_conntrack
 *                                                directly, not through ct.c)
 *   ct_probe events SECONDS [--ignore ADDR/LEN]... [--rcvbuf BYTES] [--burst N]
 *                   [--inject PROTO SRC SPORT DST DPORT [options]]
 *
 * PROTO is tcp, udp, icmp, icmpv6, sctp, udplite, dccp, gre or a number; for ICMP,
 * SPORT is the identifier and DPORT is ignored. inject options:
 *   --snat ADDR [--snat-port N]   reply goes to ADDR (default port: SPORT)
 *   --dnat ADDR [--dnat-port N]   reply comes from ADDR (default port: DPORT)
 *   --state NAME (established, syn_sent, ..., default established)
 *   --timeout N (default 120)   --status none|seen|assured (default assured)
 *   --wscale O,R   --mark N   --zone N   --icmp-type T   --icmp-code C
 * "events --inject" injects the flow itself at 0.3 s, again (an update) at 0.6 s and
 * removes it at 0.9 s, through the same ct handle that listens, so that none of
 * the three may be reported. "--burst N" creates and deletes N UDP flows
 * (198.51.100.60:20000+i -> 203.0.113.254:9) in one go at 0.2 s without reading
 * events in between, through a second handle (the listening one's own writes are
 * filtered out in the kernel); with a small --rcvbuf that overruns the event socket.
 * Output lines are key=value (ct_flow_str); events prints "ready" once
 * subscribed and a "stats ..." line at the end.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

#include "daemon/carpd.h"
#include "daemon/ct.h"

static void usage(void)
{
	fprintf(stderr, "usage: ct_probe check | dump | get|remove|inject|raw PROTO SRC SPORT DST "
			"DPORT [options] | batch N new|known PROTO SRC SPORT DST DPORT [options] | "
			"events SECONDS [--ignore P/L]... [--inject SPEC...]\n");
	exit(2);
}

static void die(const char *what)
{
	fprintf(stderr, "ct_probe: %s: %s\n", what, strerror(errno));
	exit(1);
}

static long num(const char *s, long max)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 0);
	if (errno || *end || v < 0 || v > max) {
		fprintf(stderr, "ct_probe: bad number '%s'\n", s);
		exit(2);
	}
	return v;
}

static uint8_t parse_proto(const char *s)
{
	static const struct {
		const char *name;
		uint8_t proto;
	} names[] = {{"tcp", IPPROTO_TCP},	   {"udp", IPPROTO_UDP},   {"icmp", IPPROTO_ICMP},
		     {"icmpv6", IPPROTO_ICMPV6},   {"sctp", IPPROTO_SCTP}, {"dccp", IPPROTO_DCCP},
		     {"udplite", IPPROTO_UDPLITE}, {"gre", IPPROTO_GRE}};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(s, names[i].name) == 0)
			return names[i].proto;
	return (uint8_t)num(s, 255);
}

static int parse_addr(const char *s, union flow_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, s, &a->v4) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, s, &a->v6) == 1)
		return AF_INET6;
	fprintf(stderr, "ct_probe: bad address '%s'\n", s);
	exit(2);
}

static uint8_t parse_state(const char *s)
{
	for (uint8_t st = 0; st <= FLOW_TCP_SYN_SENT2; st++)
		if (strcasecmp(s, ct_tcp_state_name(st)) == 0)
			return st;
	return (uint8_t)num(s, 255);
}

/* PROTO SRC SPORT DST DPORT [options]; returns how many arguments were used. */
static int parse_flow(int argc, char **argv, struct flow *f)
{
	if (argc < 5)
		usage();
	memset(f, 0, sizeof(*f));
	f->proto = parse_proto(argv[0]);
	int af = parse_addr(argv[1], &f->orig.src);
	if (parse_addr(argv[3], &f->orig.dst) != af) {
		fprintf(stderr, "ct_probe: mixed address families\n");
		exit(2);
	}
	f->af = (uint8_t)af;
	f->orig.sport = (uint16_t)num(argv[2], 65535);
	f->orig.dport = (uint16_t)num(argv[4], 65535);
	bool icmp = f->proto == IPPROTO_ICMP || f->proto == IPPROTO_ICMPV6;
	if (icmp) {
		f->orig.dport = 0;
		f->icmp_type = f->proto == IPPROTO_ICMP ? 8 : 128;
	}
	f->reply.src = f->orig.dst;
	f->reply.dst = f->orig.src;
	f->reply.sport = icmp ? f->orig.sport : f->orig.dport;
	f->reply.dport = icmp ? 0 : f->orig.sport;
	f->tcp_state = f->proto == IPPROTO_TCP ? FLOW_TCP_ESTABLISHED : 0;
	f->status = FLOW_SEEN_REPLY | FLOW_ASSURED;
	f->timeout = 120;

	int i = 5;
	for (; i < argc; i++) {
		const char *o = argv[i];
		if (strcmp(o, "--inject") == 0 || strcmp(o, "--ignore") == 0)
			break;
		if (i + 1 >= argc)
			usage();
		const char *v = argv[++i];
		if (strcmp(o, "--snat") == 0) {
			if (parse_addr(v, &f->reply.dst) != af)
				usage();
		} else if (strcmp(o, "--snat-port") == 0) {
			f->reply.dport = (uint16_t)num(v, 65535);
		} else if (strcmp(o, "--dnat") == 0) {
			if (parse_addr(v, &f->reply.src) != af)
				usage();
		} else if (strcmp(o, "--dnat-port") == 0) {
			f->reply.sport = (uint16_t)num(v, 65535);
		} else if (strcmp(o, "--state") == 0) {
			f->tcp_state = parse_state(v);
		} else if (strcmp(o, "--timeout") == 0) {
			f->timeout = (uint32_t)num(v, 0xffffffffL);
		} else if (strcmp(o, "--status") == 0) {
			if (strcmp(v, "none") == 0)
				f->status = 0;
			else if (strcmp(v, "seen") == 0)
				f->status = FLOW_SEEN_REPLY;
			else if (strcmp(v, "assured") == 0)
				f->status = FLOW_SEEN_REPLY | FLOW_ASSURED;
			else
				usage();
		} else if (strcmp(o, "--wscale") == 0) {
			unsigned wo, wr;
			if (sscanf(v, "%u,%u", &wo, &wr) != 2 || wo > 14 || wr > 14)
				usage();
			f->wscale_known = true;
			f->wscale_orig = (uint8_t)wo;
			f->wscale_repl = (uint8_t)wr;
		} else if (strcmp(o, "--mark") == 0) {
			f->mark = (uint32_t)num(v, 0xffffffffL);
		} else if (strcmp(o, "--zone") == 0) {
			f->zone = (uint16_t)num(v, 65535);
		} else if (strcmp(o, "--icmp-type") == 0) {
			f->icmp_type = (uint8_t)num(v, 255);
		} else if (strcmp(o, "--icmp-code") == 0) {
			f->icmp_code = (uint8_t)num(v, 255);
		} else {
			usage();
		}
	}
	return i;
}

static void print_flow(const char *prefix, const struct flow *f)
{
	char buf[512];
	printf("%s%s\n", prefix, ct_flow_str(f, buf, sizeof(buf)));
	fflush(stdout);
}

static void print_stats(const struct ct *ct)
{
	const struct ct_stats *s = ct_stats(ct);
	printf("stats events=%llu skipped=%llu own=%llu overruns=%llu injected=%llu updated=%llu "
	       "removed=%llu errors=%llu\n",
	       (unsigned long long)s->events, (unsigned long long)s->skipped,
	       (unsigned long long)s->own_events, (unsigned long long)s->overruns,
	       (unsigned long long)s->injected, (unsigned long long)s->updated,
	       (unsigned long long)s->removed, (unsigned long long)s->errors);
	fflush(stdout);
}

static void dump_each(void *arg, const struct flow *f)
{
	(*(unsigned *)arg)++;
	print_flow("", f);
}

/* ---- raw: the kernel's own view, bypassing ct.c ---------------------------------------- */

static int raw_cb(enum nf_conntrack_msg_type type, struct nf_conntrack *nct, void *data)
{
	printf("status=0x%x flags_orig=0x%02x flags_repl=0x%02x wscale_orig=%u wscale_repl=%u\n",
	       nfct_get_attr_u32(nct, ATTR_STATUS), nfct_get_attr_u8(nct, ATTR_TCP_FLAGS_ORIG),
	       nfct_get_attr_u8(nct, ATTR_TCP_FLAGS_REPL),
	       nfct_get_attr_u8(nct, ATTR_TCP_WSCALE_ORIG),
	       nfct_get_attr_u8(nct, ATTR_TCP_WSCALE_REPL));
	*(int *)data = 1;
	return NFCT_CB_CONTINUE;
}

static int cmd_raw(const struct flow *f)
{
	struct nfct_handle *h = nfct_open(CONNTRACK, 0);
	struct nf_conntrack *nct = nfct_new();
	if (h == NULL || nct == NULL)
		die("nfct_open");
	nfct_set_attr_u8(nct, ATTR_ORIG_L3PROTO, f->af);
	nfct_set_attr_u8(nct, ATTR_ORIG_L4PROTO, f->proto);
	if (f->af == AF_INET) {
		nfct_set_attr_u32(nct, ATTR_ORIG_IPV4_SRC, f->orig.src.v4.s_addr);
		nfct_set_attr_u32(nct, ATTR_ORIG_IPV4_DST, f->orig.dst.v4.s_addr);
	} else {
		nfct_set_attr(nct, ATTR_ORIG_IPV6_SRC, &f->orig.src.v6);
		nfct_set_attr(nct, ATTR_ORIG_IPV6_DST, &f->orig.dst.v6);
	}
	nfct_set_attr_u16(nct, ATTR_ORIG_PORT_SRC, htons(f->orig.sport));
	nfct_set_attr_u16(nct, ATTR_ORIG_PORT_DST, htons(f->orig.dport));
	int found = 0;
	nfct_callback_register(h, NFCT_T_ALL, raw_cb, &found);
	int r = nfct_query(h, NFCT_Q_GET, nct);
	nfct_destroy(nct);
	nfct_close(h);
	if (r < 0 || !found) {
		printf("not found\n");
		return 1;
	}
	return 0;
}

/* ---- events ------------------------------------------------------------------------------ */

struct evstate {
	struct ct *ct;
	struct event_base *base;
	struct flow inj;
	int step;
	struct event *timer;
	long burst;
};

static void on_event(void *arg, enum ct_event ev, const struct flow *f)
{
	static const char *const names[] = {"new ", "update ", "destroy "};
	print_flow(names[ev], f);
}

static void on_resync(void *arg)
{
	printf("resync\n");
	fflush(stdout);
}

static void on_inject_timer(evutil_socket_t fd, short what, void *arg)
{
	struct evstate *s = arg;
	int r;
	switch (s->step++) {
	case 0:
		r = ct_inject(s->ct, &s->inj);
		printf("self-inject %s\n", r == 0 ? "ok" : strerror(errno));
		break;
	case 1:
		s->inj.timeout += 30;
		r = ct_inject(s->ct, &s->inj);
		printf("self-update %s\n", r == 0 ? "ok" : strerror(errno));
		break;
	default:
		r = ct_remove(s->ct, &s->inj);
		printf("self-remove %s\n", r == 0 ? "ok" : strerror(errno));
		fflush(stdout);
		return;
	}
	fflush(stdout);
	struct timeval tv = {0, 300000};
	evtimer_add(s->timer, &tv);
}

static void on_burst_timer(evutil_socket_t fd, short what, void *arg)
{
	struct evstate *s = arg;
	struct flow f;
	char *spec[] = {"udp", "198.51.100.60", "0", "203.0.113.254", "9"};
	parse_flow(5, spec, &f);
	long ok = 0;
	struct ct *other = ct_open(NULL, NULL, NULL, NULL);
	if (!other) {
		printf("burst: cannot open a second handle\n");
		return;
	}
	for (long i = 0; i < s->burst; i++) {
		f.orig.sport = f.reply.dport = (uint16_t)(20000 + i);
		ok += ct_inject(other, &f) == 0;
	}
	for (long i = 0; i < s->burst; i++) {
		f.orig.sport = f.reply.dport = (uint16_t)(20000 + i);
		ct_remove(other, &f);
	}
	ct_close(other);
	printf("burst %ld injected\n", ok);
	fflush(stdout);
}

/* batch N new|known FLOW...: N flows (source ports SPORT, SPORT+1, ...; the SNAT
 * port follows) through ct_batch_add/ct_batch_flush; prints what ct_stats counted. */
static int cmd_batch(int argc, char **argv)
{
	if (argc < 3)
		usage();
	long n = num(argv[0], 4096);
	bool known = strcmp(argv[1], "known") == 0;
	if (!known && strcmp(argv[1], "new") != 0)
		usage();
	struct flow f;
	if (parse_flow(argc - 2, argv + 2, &f) != argc - 2)
		usage();
	struct ct *ct = ct_open(NULL, NULL, NULL, NULL);
	if (ct == NULL)
		die("ct_open");
	uint16_t sport = f.orig.sport, nport = f.reply.dport;
	long refused = 0;
	for (long i = 0; i < n; i++) {
		f.orig.sport = (uint16_t)(sport + i);
		f.reply.dport = (uint16_t)(nport + i);
		if (ct_batch_add(ct, &f, known) < 0)
			refused++;
	}
	size_t failed = ct_batch_flush(ct);
	const struct ct_stats *st = ct_stats(ct);
	printf("created %llu updated %llu failed %zu refused %ld\n",
	       (unsigned long long)st->injected, (unsigned long long)st->updated, failed, refused);
	ct_close(ct);
	return failed || refused ? 1 : 0;
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopexit(arg, NULL);
}

static int cmd_events(int argc, char **argv)
{
	if (argc < 1)
		usage();
	long secs = num(argv[0], 3600);
	struct evstate s = {0};
	bool inject = false;
	s.base = event_base_new();
	if (s.base == NULL)
		die("event_base_new");
	s.ct = ct_open(s.base, on_event, on_resync, &s);
	if (s.ct == NULL)
		die("ct_open");
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--ignore") == 0 && i + 1 < argc) {
			char buf[INET6_ADDRSTRLEN + 8];
			snprintf(buf, sizeof(buf), "%s", argv[++i]);
			char *slash = strchr(buf, '/');
			if (slash == NULL)
				usage();
			*slash = '\0';
			union flow_addr a;
			int af = parse_addr(buf, &a);
			if (ct_set_ignore(s.ct, af, &a, (uint8_t)num(slash + 1, 128)) < 0)
				die("ct_set_ignore");
		} else if (strcmp(argv[i], "--rcvbuf") == 0 && i + 1 < argc) {
			ct_set_rcvbuf(s.ct, (unsigned)num(argv[++i], 1L << 30));
		} else if (strcmp(argv[i], "--burst") == 0 && i + 1 < argc) {
			s.burst = num(argv[++i], 40000);
		} else if (strcmp(argv[i], "--inject") == 0) {
			i += parse_flow(argc - i - 1, argv + i + 1, &s.inj);
			inject = true;
		} else {
			usage();
		}
	}
	struct event *stop = evtimer_new(s.base, on_stop, s.base);
	struct timeval tv = {secs, 0};
	evtimer_add(stop, &tv);
	if (inject) {
		s.timer = evtimer_new(s.base, on_inject_timer, &s);
		struct timeval t0 = {0, 300000};
		evtimer_add(s.timer, &t0);
	}
	struct event *burst = NULL;
	if (s.burst > 0) {
		burst = evtimer_new(s.base, on_burst_timer, &s);
		struct timeval t0 = {0, 200000};
		evtimer_add(burst, &t0);
	}
	printf("ready\n");
	fflush(stdout);
	event_base_dispatch(s.base);
	print_stats(s.ct);
	if (s.timer)
		event_free(s.timer);
	if (burst)
		event_free(burst);
	event_free(stop);
	ct_close(s.ct);
	event_base_free(s.base);
	return 0;
}

int main(int argc, char **argv)
{
	log_init(true);
	if (argc < 2)
		usage();
	const char *cmd = argv[1];
	argc -= 2;
	argv += 2;

	if (strcmp(cmd, "check") == 0) {
		char why[1024];
		int r = ct_check_kernel(why, sizeof(why));
		printf("%s: %s\n", r ? "blocked" : "ok", why);
		return r ? 1 : 0;
	}
	if (strcmp(cmd, "events") == 0)
		return cmd_events(argc, argv);
	if (strcmp(cmd, "batch") == 0)
		return cmd_batch(argc, argv);

	struct flow f;
	if (strcmp(cmd, "dump") != 0 && parse_flow(argc, argv, &f) != argc)
		usage();
	if (strcmp(cmd, "raw") == 0)
		return cmd_raw(&f);

	struct ct *ct = ct_open(NULL, NULL, NULL, NULL);
	if (ct == NULL)
		die("ct_open");
	int rc = 0;
	if (strcmp(cmd, "dump") == 0) {
		unsigned n = 0;
		if (ct_dump(ct, dump_each, &n) < 0)
			die("dump");
		printf("total %u\n", n);
	} else if (strcmp(cmd, "get") == 0) {
		struct flow out;
		if (ct_get(ct, &f, &out) < 0) {
			printf("not found\n");
			rc = 1;
		} else {
			print_flow("", &out);
		}
	} else if (strcmp(cmd, "remove") == 0) {
		if (ct_remove(ct, &f) < 0)
			die("remove");
		printf("removed\n");
	} else if (strcmp(cmd, "inject") == 0) {
		if (ct_inject(ct, &f) < 0)
			die("inject");
		const struct ct_stats *s = ct_stats(ct);
		printf("%s\n", s->injected ? "created" : "updated");
	} else {
		usage();
	}
	ct_close(ct);
	return rc;
}

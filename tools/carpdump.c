/*
 * tools/carpdump.c - decode CARP (IP protocol 112) and pfsync (240) from a pcap or
 * pcapng file or a live interface, and check what FreeBSD would check: checksum,
 * HMAC (given the password and the vhid's addresses), TTL.
 *
 *   carpdump (-r FILE | -i IFACE [-c COUNT]) [-p PASSWORD] [-a ADDRESS]... [-j]
 *
 * Interface: CONTRACT.md section 5. One readable line or one JSON object per
 * packet on stdout; everything that is not CARP, VRRP or pfsync is skipped.
 * Exit 0, or 1 on a usage, file or capture error (after printing what was read).
 *
 * This file reads the capture and the options; the decoding of each packet is in
 * carpdump_decode.c.
 */
#include "tools/carpdump_decode.h"

#include "proto/carp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <pcap/pcap.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SNAPLEN	    65535
#define LIVE_FILTER "ip proto 112 or ip proto 240 or ip6 proto 112 or ip6 proto 240"

/* ---- options --------------------------------------------------------------- */

struct opts {
	const char *file;
	const char *iface;
	unsigned long count;	/* 0: no limit */
	struct carpdump_opts d; /* what the decoder needs */
};

static void usage(FILE *f)
{
	fprintf(f, "usage: carpdump (-r FILE | -i IFACE [-c COUNT]) [-p PASSWORD] [-a ADDRESS]... "
		   "[-j]\n"
		   "  -r FILE      read a pcap or pcapng file\n"
		   "  -i IFACE     capture live on IFACE\n"
		   "  -c COUNT     stop after COUNT packets shown\n"
		   "  -p PASSWORD  check the HMAC with this password (\"\" = the empty one)\n"
		   "  -a ADDRESS   one of the vhid's addresses, IPv4 or IPv6 (repeat for each)\n"
		   "  -j           one JSON object per line\n");
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("carpdump: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/* An address as an operator may paste it from a configuration: a "/len" or a
 * "%zone" suffix is accepted and dropped, since neither is part of the HMAC. */
static void add_address(struct carpdump_opts *o, const char *arg)
{
	char buf[INET6_ADDRSTRLEN + 32];
	char *cut;

	if (strlen(arg) >= sizeof(buf))
		die("-a %s: not an IPv4 or IPv6 address", arg);
	strcpy(buf, arg);
	cut = strchr(buf, '/');
	if (cut) {
		if (!cut[1] || strspn(cut + 1, "0123456789") != strlen(cut + 1))
			die("-a %s: not an IPv4 or IPv6 address", arg);
		*cut = '\0';
	}
	cut = strchr(buf, '%');
	if (cut)
		*cut = '\0';
	if (o->n4 + o->n6 >= CARP_MAX_ADDRS)
		die("-a %s: at most %d addresses", arg, CARP_MAX_ADDRS);
	if (inet_pton(AF_INET, buf, &o->v4[o->n4]) == 1)
		o->n4++;
	else if (inet_pton(AF_INET6, buf, &o->v6[o->n6]) == 1)
		o->n6++;
	else
		die("-a %s: not an IPv4 or IPv6 address", arg);
}

static void set_password(struct carpdump_opts *o, const char *pw)
{
	char gui[CARP_KEY_LEN * 2 + 1];

	o->have_password = true;
	carp_key_from_password(pw, o->key);
	if (strlen(pw) > CARP_PASSWORD_MAX)
		fprintf(stderr,
			"carpdump: note: only the first %d bytes of the password are the key, "
			"as with FreeBSD's ifconfig\n",
			CARP_PASSWORD_MAX);
	carp_pfsense_password(pw, gui, sizeof(gui));
	if (strcmp(gui, pw) != 0) {
		carp_key_from_password(gui, o->gui_key);
		o->have_gui_key = memcmp(o->gui_key, o->key, CARP_KEY_LEN) != 0;
	}
}

static void parse_args(struct opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	int ch;

	memset(o, 0, sizeof(*o));
	/* the leading '+' would stop at the first operand; we want options in any order */
	while ((ch = getopt_long(argc, argv, ":r:i:c:p:a:jhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'r':
			if (o->file)
				die("-r given twice");
			o->file = optarg;
			break;
		case 'i':
			if (o->iface)
				die("-i given twice");
			o->iface = optarg;
			break;
		case 'c': {
			char *end;

			errno = 0;
			o->count = strtoul(optarg, &end, 10);
			if (!*optarg || *end || errno || o->count == 0 || optarg[0] == '-')
				die("-c %s: expected a positive number of packets", optarg);
			break;
		}
		case 'p':
			set_password(&o->d, optarg);
			break;
		case 'a':
			add_address(&o->d, optarg);
			break;
		case 'j':
			o->d.json = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("carpdump %s\n", CARPD_VERSION);
			exit(0);
		case ':':
			fprintf(stderr, "carpdump: -%c needs an argument\n", optopt);
			usage(stderr);
			exit(1);
		default:
			if (optopt)
				fprintf(stderr, "carpdump: unknown option -%c\n", optopt);
			else
				fprintf(stderr, "carpdump: unknown option %s\n", argv[optind - 1]);
			usage(stderr);
			exit(1);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "carpdump: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		exit(1);
	}
	if (!o->file == !o->iface) {
		fprintf(stderr, "carpdump: give exactly one of -r FILE and -i IFACE\n");
		usage(stderr);
		exit(1);
	}
	if (o->d.have_password && o->d.n4 + o->d.n6 == 0)
		fprintf(stderr, "carpdump: note: -p without -a: the HMAC covers the vhid's "
				"addresses, so it cannot verify without them\n");
	if (!o->d.have_password && o->d.n4 + o->d.n6 > 0)
		fprintf(stderr, "carpdump: note: -a without -p: the HMAC is not checked "
				"(-p \"\" is the empty password)\n");
}

/* ---- capture --------------------------------------------------------------- */

static pcap_t *volatile g_pcap;
static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
	if (g_pcap)
		pcap_breakloop(g_pcap);
}

static pcap_t *open_live(const char *iface)
{
	char errbuf[PCAP_ERRBUF_SIZE] = "";
	struct bpf_program prog;
	pcap_t *pc;
	int rc;

	pc = pcap_create(iface, errbuf);
	if (!pc)
		die("%s: %s", iface, errbuf);
	pcap_set_snaplen(pc, SNAPLEN);
	/* unicast-mode advertisements to another host are seen only in promiscuous mode */
	pcap_set_promisc(pc, 1);
	pcap_set_timeout(pc, 100);
	/* a line as soon as a packet arrives, not when a buffer fills */
	pcap_set_immediate_mode(pc, 1);
	rc = pcap_activate(pc);
	if (rc < 0)
		die("%s: %s", iface, rc == PCAP_ERROR ? pcap_geterr(pc) : pcap_statustostr(rc));
	if (rc > 0)
		fprintf(stderr, "carpdump: %s: warning: %s\n", iface,
			rc == PCAP_WARNING ? pcap_geterr(pc) : pcap_statustostr(rc));
	if (!carpdump_dlt_supported(pcap_datalink(pc)))
		die("%s: link type %s is not supported", iface,
		    pcap_datalink_val_to_description_or_dlt(pcap_datalink(pc)));
	/* VLAN-tagged frames too where the link type knows them; else the plain filter */
	if (pcap_compile(pc, &prog, "(" LIVE_FILTER ") or (vlan and (" LIVE_FILTER "))", 1,
			 PCAP_NETMASK_UNKNOWN) != 0 &&
	    pcap_compile(pc, &prog, LIVE_FILTER, 1, PCAP_NETMASK_UNKNOWN) != 0)
		die("%s: filter: %s", iface, pcap_geterr(pc));
	if (pcap_setfilter(pc, &prog) != 0)
		die("%s: filter: %s", iface, pcap_geterr(pc));
	pcap_freecode(&prog);
	return pc;
}

int main(int argc, char **argv)
{
	char errbuf[PCAP_ERRBUF_SIZE] = "";
	struct opts o;
	struct carpdump c;
	struct pcap_pkthdr *h;
	const u_char *data;
	unsigned long frame = 0;
	int status = 0, dlt, rc;
	pcap_t *pc;

	parse_args(&o, argc, argv);
	carpdump_init(&c, &o.d, stdout);

	if (o.file) {
		/* handles pcap (either byte order, micro- or nanoseconds) and pcapng */
		pc = pcap_open_offline(o.file, errbuf);
		if (!pc) {
			/* libpcap names the file itself when fopen() fails */
			if (!strncmp(errbuf, o.file, strlen(o.file)))
				die("%s", errbuf);
			die("%s: %s", o.file, errbuf);
		}
		dlt = pcap_datalink(pc);
		if (!carpdump_dlt_supported(dlt))
			die("%s: link type %s is not supported (Ethernet, Linux cooked "
			    "SLL/SLL2 and raw IP are)",
			    o.file, pcap_datalink_val_to_description_or_dlt(dlt));
	} else {
		struct sigaction sa;

		pc = open_live(o.iface);
		dlt = pcap_datalink(pc);
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_signal;
		sigemptyset(&sa.sa_mask);
		g_pcap = pc;
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGHUP, &sa, NULL);
	}

	while (!g_stop && (!o.count || c.shown < o.count)) {
		rc = pcap_next_ex(pc, &h, &data);
		if (rc == 0)
			continue; /* live timeout: look at g_stop again */
		if (rc == PCAP_ERROR_BREAK)
			break;
		if (rc < 0) {
			/* e.g. "truncated dump file": what came before has been shown */
			fflush(stdout);
			fprintf(stderr, "carpdump: %s: %s (after frame %lu)\n",
				o.file ? o.file : o.iface, pcap_geterr(pc), frame);
			status = 1;
			break;
		}
		frame++;
		carpdump_packet(&c, dlt, frame, h, data);
		if (o.iface)
			fflush(stdout);
	}

	if (o.iface) {
		struct pcap_stat st;

		if (pcap_stats(pc, &st) == 0)
			fprintf(stderr, "carpdump: %lu packets shown, %u dropped by the kernel\n",
				c.shown, st.ps_drop);
	}
	g_pcap = NULL;
	pcap_close(pc);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "carpdump: writing the output: %s\n", strerror(errno));
		status = 1;
	}
	return status;
}

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
 * Everything from the capture is untrusted: each layer is given the number of
 * bytes really captured and checks it before every read.
 */
#include "proto/carp.h"
#include "proto/pfsync.h"

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
#include <time.h>

#define PROTO_PFSYNC	240
#define SNAPLEN		65535
#define LIVE_FILTER	"ip proto 112 or ip proto 240 or ip6 proto 112 or ip6 proto 240"
#define MAX_NOTES	12
#define NOTE_LEN	200
#define MAX_VLAN_TAGS	4  /* QinQ and then some; more is not a real frame */
#define MAX_IP6_EXTHDRS 16 /* bounds the walk over a hostile header chain */
#define VRRP_HDR_LEN	8

/* ---- options --------------------------------------------------------------- */

struct opts {
	const char *file;
	const char *iface;
	unsigned long count; /* 0: no limit */
	bool json;
	bool have_password;
	uint8_t key[CARP_KEY_LEN];
	/* the pfSense GUI transform of the password, tried when the plain key fails,
	 * so that an operator who typed the GUI password learns why it differs */
	bool have_gui_key;
	uint8_t gui_key[CARP_KEY_LEN];
	struct in_addr v4[CARP_MAX_ADDRS];
	size_t n4;
	struct in6_addr v6[CARP_MAX_ADDRS];
	size_t n6;
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
static void add_address(struct opts *o, const char *arg)
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

static void set_password(struct opts *o, const char *pw)
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
			set_password(o, optarg);
			break;
		case 'a':
			add_address(o, optarg);
			break;
		case 'j':
			o->json = true;
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
	if (o->have_password && o->n4 + o->n6 == 0)
		fprintf(stderr, "carpdump: note: -p without -a: the HMAC covers the vhid's "
				"addresses, so it cannot verify without them\n");
	if (!o->have_password && o->n4 + o->n6 > 0)
		fprintf(stderr, "carpdump: note: -a without -p: the HMAC is not checked "
				"(-p \"\" is the empty password)\n");
}

/* ---- JSON ------------------------------------------------------------------ */

/*
 * A streaming writer, just enough for flat records with a few arrays. Separators
 * are ", " and ": " like the contract's examples.
 */
struct jw {
	FILE *f;
	int depth;
	bool first[8];
	bool after_key;
};

static void jw_prefix(struct jw *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (!w->first[w->depth])
		fputs(", ", w->f);
	w->first[w->depth] = false;
}

static void jw_open(struct jw *w, char c)
{
	jw_prefix(w);
	fputc(c, w->f);
	if (w->depth < (int)(sizeof(w->first) / sizeof(w->first[0])) - 1)
		w->depth++;
	w->first[w->depth] = true;
}

static void jw_close(struct jw *w, char c)
{
	fputc(c, w->f);
	if (w->depth > 0)
		w->depth--;
}

/* Bytes outside printable ASCII are written as \u00XX (read as Latin-1) so
 * the output is valid JSON whatever a packet or a file name contains. */
static void jw_str(struct jw *w, const char *s)
{
	jw_prefix(w);
	fputc('"', w->f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(w->f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", w->f);
		else if (*p == '\t')
			fputs("\\t", w->f);
		else if (*p < 0x20 || *p >= 0x7f)
			fprintf(w->f, "\\u%04x", *p);
		else
			fputc(*p, w->f);
	}
	fputc('"', w->f);
}

static void jw_key(struct jw *w, const char *k)
{
	jw_str(w, k);
	fputs(": ", w->f);
	w->after_key = true;
}

static void jw_int(struct jw *w, long long v)
{
	jw_prefix(w);
	fprintf(w->f, "%lld", v);
}

static void jw_null(struct jw *w)
{
	jw_prefix(w);
	fputs("null", w->f);
}

/* a number written verbatim (already formatted) */
static void jw_raw(struct jw *w, const char *s)
{
	jw_prefix(w);
	fputs(s, w->f);
}

static void jw_kstr(struct jw *w, const char *k, const char *v)
{
	jw_key(w, k);
	jw_str(w, v);
}

static void jw_kint(struct jw *w, const char *k, long long v)
{
	jw_key(w, k);
	jw_int(w, v);
}

/* ---- what the lower layers found ------------------------------------------- */

struct pkt {
	unsigned long frame; /* 1-based record number, as Wireshark numbers frames */
	struct timeval ts;
	bool has_mac;
	uint8_t mac[6];
	int vlan; /* outermost 802.1Q/802.1ad id, -1 if untagged */
	int af;	  /* AF_INET, AF_INET6 */
	bool has_addrs;
	uint8_t src[16], dst[16];
	char srcs[INET6_ADDRSTRLEN], dsts[INET6_ADDRSTRLEN];
	int ttl; /* TTL or hop limit, -1 if unknown */
	uint8_t proto;
	const uint8_t *payload; /* the IP payload: never more than was captured */
	size_t plen;
	size_t iplen;	      /* payload length the IP header announces (plen may be less) */
	bool snapped;	      /* the capture kept less than the wire carried */
	const char *ip_error; /* why the payload cannot be decoded, or NULL */
	char ip_error_buf[NOTE_LEN];
};

struct notes {
	int n;
	char s[MAX_NOTES][NOTE_LEN];
};

static void note(struct notes *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct notes *n, const char *fmt, ...)
{
	va_list ap;

	if (n->n >= MAX_NOTES)
		return;
	va_start(ap, fmt);
	vsnprintf(n->s[n->n++], NOTE_LEN, fmt, ap);
	va_end(ap);
}

struct ctx {
	const struct opts *o;
	struct jw jw;
	unsigned long shown;
};

static const char *mac_str(const uint8_t m[6], char buf[18])
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
	return buf;
}

static bool dst_is_multicast(const struct pkt *pk)
{
	if (pk->af == AF_INET)
		return (pk->dst[0] & 0xf0) == 0xe0;
	return pk->dst[0] == 0xff;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* The common head of every record: where and when, and what IP said. */
static void begin_record(struct ctx *c, const struct pkt *pk, const char *proto,
			 const char *text_proto)
{
	if (c->o->json) {
		char ts[48];

		c->jw.depth = 0;
		c->jw.first[0] = true;
		c->jw.after_key = false;
		jw_open(&c->jw, '{');
		jw_kstr(&c->jw, "proto", proto);
		jw_kint(&c->jw, "frame", (long long)pk->frame);
		snprintf(ts, sizeof(ts), "%lld.%06ld", (long long)pk->ts.tv_sec,
			 (long)pk->ts.tv_usec);
		jw_key(&c->jw, "time");
		jw_raw(&c->jw, ts);
		if (pk->has_addrs) {
			jw_kstr(&c->jw, "src", pk->srcs);
			jw_kstr(&c->jw, "dst", pk->dsts);
		}
		if (pk->ttl >= 0)
			jw_kint(&c->jw, "ttl", pk->ttl);
		jw_key(&c->jw, "ethersrc");
		if (pk->has_mac) {
			char m[18];

			jw_str(&c->jw, mac_str(pk->mac, m));
		} else {
			jw_null(&c->jw);
		}
		if (pk->vlan >= 0)
			jw_kint(&c->jw, "vlan", pk->vlan);
		return;
	}
	/* tcpdump's default: local time of day with microseconds */
	struct tm tm;
	time_t t = pk->ts.tv_sec;

	if (localtime_r(&t, &tm))
		printf("%02d:%02d:%02d.%06ld ", tm.tm_hour, tm.tm_min, tm.tm_sec,
		       (long)pk->ts.tv_usec);
	if (pk->has_addrs)
		printf("%s > %s: ", pk->srcs, pk->dsts);
	fputs(text_proto, stdout);
	if (pk->vlan >= 0)
		printf(" (vlan %d)", pk->vlan);
}

/* Notes go into the JSON "notes" array, and after "; " on a readable line. */
static void end_record(struct ctx *c, const struct notes *n)
{
	if (c->o->json) {
		jw_key(&c->jw, "notes");
		jw_open(&c->jw, '[');
		for (int i = 0; i < n->n; i++)
			jw_str(&c->jw, n->s[i]);
		jw_close(&c->jw, ']');
		jw_close(&c->jw, '}');
		fputc('\n', stdout);
	} else {
		for (int i = 0; i < n->n; i++)
			printf("; %s", n->s[i]);
		fputc('\n', stdout);
	}
	c->shown++;
}

static void report_error(struct ctx *c, const struct pkt *pk, const char *proto,
			 const char *text_proto, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void report_error(struct ctx *c, const struct pkt *pk, const char *proto,
			 const char *text_proto, const char *fmt, ...)
{
	char msg[NOTE_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	begin_record(c, pk, proto, text_proto);
	if (c->o->json) {
		jw_kstr(&c->jw, "error", msg);
		jw_close(&c->jw, '}');
		fputc('\n', stdout);
	} else {
		if (pk->ttl >= 0)
			printf(" ttl %d", pk->ttl);
		printf(" error: %s\n", msg);
	}
	c->shown++;
}

/* ---- VRRP (also IP protocol 112) ------------------------------------------- */

/* Ones' complement sum of a buffer, for VRRPv3's pseudo-header checksum. */
static uint32_t sum16(uint32_t sum, const uint8_t *p, size_t len)
{
	for (; len > 1; p += 2, len -= 2)
		sum += (uint32_t)(p[0] << 8 | p[1]);
	if (len)
		sum += (uint32_t)p[0] << 8;
	return sum;
}

static bool vrrp3_cksum_ok(const struct pkt *pk)
{
	uint8_t ph[40];
	size_t phlen;
	uint32_t sum;

	/* RFC 5798 5.2.8: the IPv4 or IPv6 pseudo-header, as in TCP/UDP */
	memset(ph, 0, sizeof(ph));
	if (pk->af == AF_INET) {
		memcpy(ph, pk->src, 4);
		memcpy(ph + 4, pk->dst, 4);
		ph[9] = CARP_PROTO;
		ph[10] = (uint8_t)(pk->plen >> 8);
		ph[11] = (uint8_t)pk->plen;
		phlen = 12;
	} else {
		memcpy(ph, pk->src, 16);
		memcpy(ph + 16, pk->dst, 16);
		ph[34] = (uint8_t)(pk->plen >> 8);
		ph[35] = (uint8_t)pk->plen;
		ph[39] = CARP_PROTO;
		phlen = 40;
	}
	sum = sum16(sum16(0, ph, phlen), pk->payload, pk->plen);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}

/* VRRPv2 and v3 share the layout up to byte 3 and list addresses after the
 * 8-byte header; v2 follows them with 8 bytes of (obsolete) authentication data. */
static void print_vrrp(struct ctx *c, const struct pkt *pk, int version)
{
	const uint8_t *p = pk->payload;
	size_t alen = pk->af == AF_INET ? 4 : 16;
	size_t naddr = p[3];
	size_t need = VRRP_HDR_LEN + naddr * alen + (version == 2 ? 8 : 0);
	bool cksum_ok;
	struct notes n = {0};
	char a[INET6_ADDRSTRLEN];

	if (pk->plen < need) {
		report_error(c, pk, "vrrp", "VRRP",
			     "VRRPv%d with %zu addresses needs %zu bytes, only %zu present",
			     version, naddr, need, pk->plen);
		return;
	}
	if (version == 3)
		cksum_ok = vrrp3_cksum_ok(pk);
	else
		cksum_ok = inet_cksum(p, pk->plen) == 0; /* v2: no pseudo-header */
	if (version == 3)
		note(&n, "VRRPv3, not CARP: keepalived or FreeBSD 'carpver 3' on this segment; "
			 "carpd and pfSense's CARP ignore it");
	else
		note(&n, "VRRPv2, not CARP: keepalived or another VRRP router on this segment; "
			 "carpd and pfSense's CARP ignore it");
	if (!cksum_ok)
		note(&n, "%s", carp_err_explain(CARP_ERR_BADSUM));
	if (dst_is_multicast(pk) && pk->ttl != 255)
		note(&n, "ttl %d: VRRP requires 255", pk->ttl);

	begin_record(c, pk, "vrrp", version == 3 ? "VRRPv3" : "VRRPv2");
	if (c->o->json) {
		struct jw *w = &c->jw;

		jw_kint(w, "version", version);
		jw_kint(w, "type", p[0] & 0x0f);
		jw_kint(w, "vrid", p[1]);
		jw_kint(w, "priority", p[2]);
		jw_kint(w, "count", (long long)naddr);
		if (version == 3) {
			jw_kint(w, "interval_cs", get16(p + 4) & 0x0fff);
		} else {
			jw_kint(w, "authtype", p[4]);
			jw_kint(w, "interval", p[5]);
		}
		jw_kstr(w, "cksum", cksum_ok ? "ok" : "bad");
		jw_key(w, "addresses");
		jw_open(w, '[');
		for (size_t i = 0; i < naddr; i++)
			jw_str(w, inet_ntop(pk->af, p + VRRP_HDR_LEN + i * alen, a, sizeof(a)));
		jw_close(w, ']');
	} else {
		printf(" vrid %u prio %u", p[1], p[2]);
		if (version == 3)
			printf(" intvl %ucs", get16(p + 4) & 0x0fff);
		else
			printf(" intvl %us", p[5]);
		printf(" addrs");
		for (size_t i = 0; i < naddr; i++)
			printf("%s%s", i ? "," : " ",
			       inet_ntop(pk->af, p + VRRP_HDR_LEN + i * alen, a, sizeof(a)));
		printf(" ttl %d", pk->ttl);
		if (pk->has_mac) {
			char m[18];

			printf(" src-mac %s", mac_str(pk->mac, m));
		}
		printf(" cksum %s", cksum_ok ? "ok" : "bad");
	}
	end_record(c, &n);
}

/* ---- CARP ------------------------------------------------------------------ */

enum auth_result { AUTH_UNCHECKED, AUTH_OK, AUTH_BAD, AUTH_GUI };

static enum auth_result check_auth(const struct opts *o, const struct carp_adv *adv)
{
	struct carp_auth auth;

	if (!o->have_password)
		return AUTH_UNCHECKED;
	/* the vhid is part of the HMAC, so the context is per packet; cheap enough */
	if (carp_auth_prepare(&auth, o->key, adv->vhid, o->v4, o->n4, o->v6, o->n6) != 0)
		return AUTH_BAD;
	if (carp_auth_verify(&auth, adv))
		return AUTH_OK;
	if (o->have_gui_key &&
	    carp_auth_prepare(&auth, o->gui_key, adv->vhid, o->v4, o->n4, o->v6, o->n6) == 0 &&
	    carp_auth_verify(&auth, adv))
		return AUTH_GUI;
	return AUTH_BAD;
}

static void print_carp_adv(struct ctx *c, const struct pkt *pk, const struct carp_adv *adv,
			   bool cksum_ok)
{
	enum auth_result auth = check_auth(c->o, adv);
	struct notes n = {0};
	char m[18];

	if (!cksum_ok)
		note(&n, "%s", carp_err_explain(CARP_ERR_BADSUM));
	if (auth == AUTH_BAD || auth == AUTH_GUI)
		note(&n, "%s", carp_err_explain(CARP_ERR_BADAUTH));
	if (auth == AUTH_GUI)
		note(&n, "it verifies with the password as pfSense stores it (spaces removed, "
			 "' \" \\ escaped): use pfsense-password in carpd.conf");
	/* FreeBSD checks the TTL only in multicast mode: unicast ads may be routed */
	if (dst_is_multicast(pk) && pk->ttl != CARP_DFLTTL)
		note(&n, "ttl %d: FreeBSD drops multicast advertisements whose TTL is not 255",
		     pk->ttl);
	if (adv->type != CARP_TYPE_ADVERTISEMENT)
		note(&n, "type %u: %s", adv->type, carp_err_explain(CARP_ERR_BADTYPE));
	if (adv->authlen != CARP_AUTHLEN)
		note(&n, "authlen %u: FreeBSD sends 7 (and does not check it)", adv->authlen);
	if (adv->reserved != 0)
		note(&n, "reserved %u: OpenBSD's demotion count; FreeBSD sends 0 and ignores it",
		     adv->reserved);
	if (adv->advbase == CARP_BOWOUT_ADVBASE && adv->advskew == CARP_BOWOUT_ADVSKEW)
		note(&n, "advbase 255 advskew 255: bow-out, the master is leaving");
	else if (adv->advskew == CARP_MAXSKEW)
		note(&n, "advskew 240: demoted to the maximum (pfSense maintenance mode or a "
			 "failed interface)");
	if (pk->has_mac && dst_is_multicast(pk)) {
		uint8_t vmac[6];

		carp_vmac(adv->vhid, vmac);
		if (memcmp(vmac, pk->mac, 6) != 0)
			note(&n,
			     "src-mac is not %s, the virtual MAC FreeBSD sends from "
			     "(another implementation?)",
			     mac_str(vmac, m));
	}

	static const char *const auth_word[] = {"unchecked", "ok", "bad", "bad"};

	begin_record(c, pk, "carp", "CARP");
	if (c->o->json) {
		struct jw *w = &c->jw;
		char counter[24];

		jw_kint(w, "version", adv->version);
		jw_kint(w, "type", adv->type);
		jw_kint(w, "vhid", adv->vhid);
		jw_kint(w, "advbase", adv->advbase);
		jw_kint(w, "advskew", adv->advskew);
		jw_kint(w, "authlen", adv->authlen);
		jw_kint(w, "reserved", adv->reserved);
		snprintf(counter, sizeof(counter), "0x%016llx", (unsigned long long)adv->counter);
		jw_kstr(w, "counter", counter);
		jw_kstr(w, "cksum", cksum_ok ? "ok" : "bad");
		jw_kstr(w, "auth", auth_word[auth]);
	} else {
		printf(" vhid %u advbase %u advskew %u counter 0x%016llx ttl %d", adv->vhid,
		       adv->advbase, adv->advskew, (unsigned long long)adv->counter, pk->ttl);
		if (pk->has_mac)
			printf(" src-mac %s", mac_str(pk->mac, m));
		printf(" cksum %s auth %s", cksum_ok ? "ok" : "bad", auth_word[auth]);
	}
	end_record(c, &n);
}

/* IP protocol 112: CARP, or VRRP, which shares the number. */
static void print_proto112(struct ctx *c, const struct pkt *pk)
{
	const uint8_t *p = pk->payload;
	struct carp_adv adv;
	size_t len = pk->plen;
	enum carp_err err;

	if (pk->ip_error) {
		report_error(c, pk, "carp", "CARP", "%s", pk->ip_error);
		return;
	}
	if (len >= VRRP_HDR_LEN && p[0] >> 4 == 3) {
		print_vrrp(c, pk, 3);
		return;
	}
	/* carp6_input() sums exactly the 36-byte header; IPv4 sums all of ip_len */
	if (pk->af == AF_INET6 && len > CARP_HDR_LEN)
		len = CARP_HDR_LEN;
	memset(&adv, 0, sizeof(adv));
	err = carp_decode(p, len, &adv);
	switch (err) {
	case CARP_OK:
	case CARP_ERR_BADSUM:
		print_carp_adv(c, pk, &adv, err == CARP_OK);
		return;
	case CARP_ERR_BADLEN:
		/* keepalived's VRRPv2 is version 2 type 1 too, but 16 + 4n bytes long */
		if (pk->af == AF_INET && len >= VRRP_HDR_LEN && p[0] == 0x21 && p[3] > 0 &&
		    len == 16 + 4 * (size_t)p[3]) {
			print_vrrp(c, pk, 2);
			return;
		}
		report_error(c, pk, "carp", "CARP", "%zu bytes: %s", len,
			     carp_err_explain(CARP_ERR_BADLEN));
		return;
	case CARP_ERR_BADVER:
		report_error(c, pk, "carp", "CARP", "version %u: neither CARP (2) nor VRRPv3 (3)",
			     p[0] >> 4);
		return;
	default:
		report_error(c, pk, "carp", "CARP", "%s", carp_err_explain(err));
		return;
	}
}

/* ---- pfsync ---------------------------------------------------------------- */

/*
 * IP protocol 240. Only the 20-byte header is decoded for now. The messages
 * are for a proto/pfsync.h decoder: it will be handed the bytes after this header,
 * bounded by the header's len and by what was captured, and fill the "messages"
 * array (and say what it saw on the readable line) where marked below.
 */
/* The messages of a pfsync packet: as JSON objects into the open array when
 * summary is NULL, else as "ACTION xCOUNT" words appended to summary. Returns an
 * explanation when the packet is malformed (what came before is shown). */
static const char *pfsync_messages(struct ctx *c, const uint8_t *p, size_t plen, char *summary)
{
	struct pfsync_iter it;
	uint8_t action;
	uint16_t count;
	const uint8_t *msgs;
	size_t msglen;
	char buf[4096];
	int rc;
	if (pfsync_iter_init(&it, p, plen, NULL) != PFSYNC_OK)
		return pfsync_err_explain(it.err);
	while ((rc = pfsync_iter_next(&it, &action, &count, &msgs, &msglen)) > 0) {
		if (summary) {
			size_t used = strlen(summary);
			snprintf(summary + used, 512 - used, " %s x%u", pfsync_action_name(action),
				 count);
			continue;
		}
		struct jw *w = &c->jw;
		jw_open(w, '{');
		jw_kstr(w, "action", pfsync_action_name(action));
		jw_kint(w, "count", count);
		uint16_t version = pfsync_action_version(action);
		bool states = version != 0;
		bool items = action == PFSYNC_ACT_INS_ACK || action == PFSYNC_ACT_UPD_REQ ||
			     action == PFSYNC_ACT_DEL_C || action == PFSYNC_ACT_UPD_C ||
			     action == PFSYNC_ACT_BUS || action == PFSYNC_ACT_CLR;
		if (states || items) {
			jw_key(w, states ? "states" : "items");
			jw_open(w, '[');
			for (uint16_t i = 0; i < count; i++) {
				const uint8_t *m = msgs + (size_t)i * msglen;
				size_t need = 0;
				if (states) {
					struct pfsync_state st;
					if (pfsync_state_decode(m, msglen, version, &st) ==
					    PFSYNC_OK)
						need = pfsync_state_json(&st, buf, sizeof(buf));
				} else if (action == PFSYNC_ACT_UPD_C) {
					struct pfsync_upd_c u;
					if (pfsync_upd_c_decode(m, msglen, &u) == PFSYNC_OK)
						need = pfsync_upd_c_json(&u, buf, sizeof(buf));
				} else if (action == PFSYNC_ACT_BUS) {
					struct pfsync_bus b;
					if (pfsync_bus_decode(m, msglen, &b) == PFSYNC_OK)
						need = pfsync_bus_json(&b, buf, sizeof(buf));
				} else if (action == PFSYNC_ACT_CLR) {
					struct pfsync_clr cl;
					if (pfsync_clr_decode(m, msglen, &cl) == PFSYNC_OK)
						need = pfsync_clr_json(&cl, buf, sizeof(buf));
				} else {
					struct pfsync_ref r;
					if (pfsync_ref_decode(m, msglen, &r) == PFSYNC_OK)
						need = pfsync_ref_json(&r, buf, sizeof(buf));
				}
				if (need > 0 && need < sizeof(buf))
					jw_raw(w, buf);
				else
					jw_null(w);
			}
			jw_close(w, ']');
		}
		jw_close(w, '}');
	}
	return rc < 0 ? pfsync_err_explain((enum pfsync_err) - rc) : NULL;
}

static void print_pfsync(struct ctx *c, const struct pkt *pk)
{
	const uint8_t *p = pk->payload;
	struct notes n = {0};
	unsigned version, len;

	if (pk->ip_error) {
		report_error(c, pk, "pfsync", "pfsync", "%s", pk->ip_error);
		return;
	}
	if (pk->plen < PFSYNC_HDR_LEN) {
		report_error(c, pk, "pfsync", "pfsync",
			     "%zu bytes: shorter than the 20-byte pfsync header", pk->plen);
		return;
	}
	version = p[0];
	len = get16(p + 2);
	if (version != PFSYNC_VERSION)
		note(&n,
		     "version %u: FreeBSD speaks pfsync version 5 (OpenBSD's 6 is "
		     "incompatible)",
		     version);
	if (len < PFSYNC_HDR_LEN || len > pk->plen)
		note(&n, "len %u does not fit the %zu bytes received: FreeBSD counts badlen", len,
		     pk->plen);
	if (pk->ttl != 255)
		note(&n, "ttl %d: FreeBSD drops pfsync packets whose TTL is not 255", pk->ttl);

	begin_record(c, pk, "pfsync", "pfsync");
	if (c->o->json) {
		struct jw *w = &c->jw;

		jw_kint(w, "version", version);
		jw_kint(w, "len", len);
		jw_key(w, "messages");
		jw_open(w, '[');
		const char *err = pfsync_messages(c, p, pk->plen, NULL);
		jw_close(w, ']');
		if (err)
			jw_kstr(w, "error", err);
	} else {
		char summary[512] = "";
		printf(" version %u len %u ttl %d", version, len, pk->ttl);
		const char *err = pfsync_messages(c, p, pk->plen, summary);
		printf(":%s", summary);
		if (err)
			note(&n, "%s", err);
	}
	end_record(c, &n);
}

/* ---- IP -------------------------------------------------------------------- */

static bool is_ours(uint8_t proto)
{
	return proto == CARP_PROTO || proto == PROTO_PFSYNC;
}

static void ip_error(struct pkt *pk, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ip_error(struct pkt *pk, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(pk->ip_error_buf, sizeof(pk->ip_error_buf), fmt, ap);
	va_end(ap);
	pk->ip_error = pk->ip_error_buf;
}

static void set_addrs(struct pkt *pk, int af, const uint8_t *src, const uint8_t *dst)
{
	size_t alen = af == AF_INET ? 4 : 16;

	pk->af = af;
	memcpy(pk->src, src, alen);
	memcpy(pk->dst, dst, alen);
	inet_ntop(af, src, pk->srcs, sizeof(pk->srcs));
	inet_ntop(af, dst, pk->dsts, sizeof(pk->dsts));
	pk->has_addrs = true;
}

/* The payload is what was captured, cut to what the IP header announces
 * (Ethernet pads short frames); a shortfall is an error for the printers. */
static void set_payload(struct pkt *pk, const uint8_t *p, size_t avail, size_t announced)
{
	pk->payload = p;
	pk->iplen = announced;
	pk->plen = avail < announced ? avail : announced;
	if (avail < announced)
		ip_error(pk,
			 "truncated%s: the IP header announces %zu payload bytes, only %zu "
			 "captured",
			 pk->snapped ? " by the capture's snapshot length" : "", announced, avail);
}

/* Returns false when the packet is not CARP/VRRP/pfsync (or cannot be told). */
static bool parse_ipv4(struct pkt *pk, const uint8_t *p, size_t n)
{
	size_t ihl, tot;
	unsigned frag;

	if (n < 10 || p[0] >> 4 != 4 || !is_ours(p[9]))
		return false;
	pk->af = AF_INET;
	pk->proto = p[9];
	pk->ttl = p[8];
	if (n < 20) {
		ip_error(pk, "truncated: %zu bytes of a 20-byte IPv4 header", n);
		return true;
	}
	set_addrs(pk, AF_INET, p + 12, p + 16);
	ihl = (size_t)(p[0] & 0x0f) * 4;
	tot = get16(p + 2);
	if (ihl < 20) {
		ip_error(pk, "IPv4 header length %zu is below the minimum of 20", ihl);
		return true;
	}
	if (ihl > n) {
		ip_error(pk, "truncated: IPv4 header with options is %zu bytes, only %zu captured",
			 ihl, n);
		return true;
	}
	if (tot < ihl) {
		ip_error(pk, "IPv4 total length %zu is shorter than its %zu-byte header", tot, ihl);
		return true;
	}
	frag = get16(p + 6);
	if (frag & 0x3fff) {
		ip_error(pk, "IPv4 fragment (offset %u%s): not reassembled", (frag & 0x1fff) * 8,
			 frag & 0x2000 ? ", more follow" : "");
		return true;
	}
	set_payload(pk, p + ihl, n - ihl, tot - ihl);
	return true;
}

static bool parse_ipv6(struct pkt *pk, const uint8_t *p, size_t n)
{
	size_t off = 40, avail, end;
	uint8_t nxt;
	bool fragment = false;

	if (n < 40 || p[0] >> 4 != 6)
		return false;
	end = 40 + (size_t)get16(p + 4);
	avail = n < end ? n : end;
	nxt = p[6];
	/* Walk the extension headers to the upper-layer protocol, each one checked
	 * against the bytes at hand before its length byte is trusted. */
	for (int i = 0;; i++) {
		size_t hl;

		if (i >= MAX_IP6_EXTHDRS)
			return false;
		switch (nxt) {
		case 0:	  /* hop-by-hop options */
		case 43:  /* routing */
		case 60:  /* destination options */
		case 135: /* mobility */
		case 139: /* HIP */
		case 140: /* shim6 */
			if (off + 2 > avail)
				return false;
			hl = ((size_t)p[off + 1] + 1) * 8;
			break;
		case 51: /* AH: length in 32-bit words, minus 2 */
			if (off + 2 > avail)
				return false;
			hl = ((size_t)p[off + 1] + 2) * 4;
			break;
		case 44: /* fragment */
			if (off + 8 > avail)
				return false;
			if ((get16(p + off + 2) & 0xfff8) || (p[off + 3] & 1))
				fragment = true;
			hl = 8;
			break;
		default:
			goto upper;
		}
		if (off + hl > avail)
			return false;
		nxt = p[off];
		off += hl;
		if (fragment)
			goto upper; /* the rest is not a header we can read */
	}
upper:
	if (!is_ours(nxt))
		return false;
	pk->proto = nxt;
	pk->ttl = p[7];
	set_addrs(pk, AF_INET6, p + 8, p + 24);
	if (fragment) {
		ip_error(pk, "IPv6 fragment: not reassembled");
		return true;
	}
	if (get16(p + 4) == 0) {
		ip_error(pk, "IPv6 payload length 0 (jumbogram?): not decoded");
		return true;
	}
	set_payload(pk, p + off, n - off, end - off);
	return true;
}

/* ---- link layer ------------------------------------------------------------ */

#define ETH_P_IP_    0x0800
#define ETH_P_IPV6_  0x86dd
#define ETH_P_8021Q  0x8100
#define ETH_P_8021AD 0x88a8
#define ETH_P_QINQ1  0x9100

/* Skip the VLAN tags at p + *off, *type being the EtherType that precedes
 * them; leaves *off at the payload and *type the inner EtherType. False if the
 * tags do not fit in n bytes. */
static bool skip_vlans(struct pkt *pk, const uint8_t *p, size_t n, size_t *off, uint16_t *type)
{
	for (int i = 0; *type == ETH_P_8021Q || *type == ETH_P_8021AD || *type == ETH_P_QINQ1;
	     i++) {
		if (i >= MAX_VLAN_TAGS || *off + 4 > n)
			return false;
		if (pk->vlan < 0)
			pk->vlan = get16(p + *off) & 0x0fff;
		*type = get16(p + *off + 2);
		*off += 4;
	}
	return true;
}

static bool parse_link(struct pkt *pk, int dlt, const uint8_t *p, size_t n)
{
	size_t off;
	uint16_t type;

	switch (dlt) {
	case DLT_EN10MB:
		if (n < 14)
			return false;
		memcpy(pk->mac, p + 6, 6);
		pk->has_mac = true;
		type = get16(p + 12);
		off = 14;
		break;
	case DLT_LINUX_SLL:
		/* pkttype(2) hatype(2) halen(2) addr(8) protocol(2) */
		if (n < 16)
			return false;
		if (get16(p + 2) == 1 && get16(p + 4) == 6) { /* ARPHRD_ETHER */
			memcpy(pk->mac, p + 6, 6);
			pk->has_mac = true;
		}
		type = get16(p + 14);
		off = 16;
		break;
	case DLT_LINUX_SLL2:
		/* protocol(2) reserved(2) ifindex(4) hatype(2) pkttype(1) halen(1) addr(8) */
		if (n < 20)
			return false;
		if (get16(p + 8) == 1 && p[11] == 6) {
			memcpy(pk->mac, p + 12, 6);
			pk->has_mac = true;
		}
		type = get16(p);
		off = 20;
		break;
	case DLT_RAW:
	case DLT_IPV4:
	case DLT_IPV6:
		if (n < 1)
			return false;
		if (p[0] >> 4 == 4)
			return parse_ipv4(pk, p, n);
		if (p[0] >> 4 == 6)
			return parse_ipv6(pk, p, n);
		return false;
	default:
		return false;
	}
	/* cooked captures normally have the tags stripped, but a tag left in place
	 * looks the same there as on Ethernet */
	if (!skip_vlans(pk, p, n, &off, &type))
		return false;
	if (type == ETH_P_IP_)
		return parse_ipv4(pk, p + off, n - off);
	if (type == ETH_P_IPV6_)
		return parse_ipv6(pk, p + off, n - off);
	return false;
}

static bool dlt_supported(int dlt)
{
	return dlt == DLT_EN10MB || dlt == DLT_LINUX_SLL || dlt == DLT_LINUX_SLL2 ||
	       dlt == DLT_RAW || dlt == DLT_IPV4 || dlt == DLT_IPV6;
}

static void handle_packet(struct ctx *c, int dlt, unsigned long frame, const struct pcap_pkthdr *h,
			  const uint8_t *data)
{
	struct pkt pk;

	memset(&pk, 0, sizeof(pk));
	pk.frame = frame;
	pk.ts = h->ts;
	pk.vlan = -1;
	pk.ttl = -1;
	pk.snapped = h->len > h->caplen;
	/* caplen is all that was stored; never trust len (the wire length) */
	if (!parse_link(&pk, dlt, data, h->caplen))
		return;
	if (pk.proto == CARP_PROTO)
		print_proto112(c, &pk);
	else
		print_pfsync(c, &pk);
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
	if (!dlt_supported(pcap_datalink(pc)))
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
	struct ctx c;
	struct pcap_pkthdr *h;
	const u_char *data;
	unsigned long frame = 0;
	int status = 0, dlt, rc;
	pcap_t *pc;

	parse_args(&o, argc, argv);
	memset(&c, 0, sizeof(c));
	c.o = &o;
	c.jw.f = stdout;

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
		if (!dlt_supported(dlt))
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
		handle_packet(&c, dlt, frame, h, data);
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

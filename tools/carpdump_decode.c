/*
 * tools/carpdump_decode.c - carpdump's per-packet decoder (see carpdump_decode.h):
 * link layer, IPv4/IPv6, then CARP, VRRP or pfsync, printed as a readable line
 * or as one JSON object.
 *
 * Everything from the capture is untrusted: each layer is given the number of
 * bytes really captured and checks it before every read.
 */
#include "tools/carpdump_decode.h"

#include "proto/carp.h"
#include "proto/pfsync.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define PROTO_PFSYNC	240
#define MAX_NOTES	12
#define NOTE_LEN	200
#define MAX_VLAN_TAGS	4  /* QinQ and then some; more is not a real frame */
#define MAX_IP6_EXTHDRS 16 /* bounds the walk over a hostile header chain */
#define VRRP_HDR_LEN	8

/* ---- JSON ------------------------------------------------------------------ */

static void jw_prefix(struct carpdump_jw *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (!w->first[w->depth])
		fputs(", ", w->f);
	w->first[w->depth] = false;
}

static void jw_open(struct carpdump_jw *w, char c)
{
	jw_prefix(w);
	fputc(c, w->f);
	if (w->depth < (int)(sizeof(w->first) / sizeof(w->first[0])) - 1)
		w->depth++;
	w->first[w->depth] = true;
}

static void jw_close(struct carpdump_jw *w, char c)
{
	fputc(c, w->f);
	if (w->depth > 0)
		w->depth--;
}

/* Bytes outside printable ASCII are written as \u00XX (read as Latin-1) so
 * the output is valid JSON whatever a packet or a file name contains. */
static void jw_str(struct carpdump_jw *w, const char *s)
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

static void jw_key(struct carpdump_jw *w, const char *k)
{
	jw_str(w, k);
	fputs(": ", w->f);
	w->after_key = true;
}

static void jw_int(struct carpdump_jw *w, long long v)
{
	jw_prefix(w);
	fprintf(w->f, "%lld", v);
}

static void jw_null(struct carpdump_jw *w)
{
	jw_prefix(w);
	fputs("null", w->f);
}

/* a number written verbatim (already formatted) */
static void jw_raw(struct carpdump_jw *w, const char *s)
{
	jw_prefix(w);
	fputs(s, w->f);
}

static void jw_kstr(struct carpdump_jw *w, const char *k, const char *v)
{
	jw_key(w, k);
	jw_str(w, v);
}

static void jw_kint(struct carpdump_jw *w, const char *k, long long v)
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
static void begin_record(struct carpdump *c, const struct pkt *pk, const char *proto,
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
		fprintf(c->out, "%02d:%02d:%02d.%06ld ", tm.tm_hour, tm.tm_min, tm.tm_sec,
			(long)pk->ts.tv_usec);
	if (pk->has_addrs)
		fprintf(c->out, "%s > %s: ", pk->srcs, pk->dsts);
	fputs(text_proto, c->out);
	if (pk->vlan >= 0)
		fprintf(c->out, " (vlan %d)", pk->vlan);
}

/* Notes go into the JSON "notes" array, and after "; " on a readable line. */
static void end_record(struct carpdump *c, const struct notes *n)
{
	if (c->o->json) {
		jw_key(&c->jw, "notes");
		jw_open(&c->jw, '[');
		for (int i = 0; i < n->n; i++)
			jw_str(&c->jw, n->s[i]);
		jw_close(&c->jw, ']');
		jw_close(&c->jw, '}');
		fputc('\n', c->out);
	} else {
		for (int i = 0; i < n->n; i++)
			fprintf(c->out, "; %s", n->s[i]);
		fputc('\n', c->out);
	}
	c->shown++;
}

static void report_error(struct carpdump *c, const struct pkt *pk, const char *proto,
			 const char *text_proto, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void report_error(struct carpdump *c, const struct pkt *pk, const char *proto,
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
		fputc('\n', c->out);
	} else {
		if (pk->ttl >= 0)
			fprintf(c->out, " ttl %d", pk->ttl);
		fprintf(c->out, " error: %s\n", msg);
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
static void print_vrrp(struct carpdump *c, const struct pkt *pk, int version)
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
		struct carpdump_jw *w = &c->jw;

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
		fprintf(c->out, " vrid %u prio %u", p[1], p[2]);
		if (version == 3)
			fprintf(c->out, " intvl %ucs", get16(p + 4) & 0x0fff);
		else
			fprintf(c->out, " intvl %us", p[5]);
		fprintf(c->out, " addrs");
		for (size_t i = 0; i < naddr; i++)
			fprintf(c->out, "%s%s", i ? "," : " ",
				inet_ntop(pk->af, p + VRRP_HDR_LEN + i * alen, a, sizeof(a)));
		fprintf(c->out, " ttl %d", pk->ttl);
		if (pk->has_mac) {
			char m[18];

			fprintf(c->out, " src-mac %s", mac_str(pk->mac, m));
		}
		fprintf(c->out, " cksum %s", cksum_ok ? "ok" : "bad");
	}
	end_record(c, &n);
}

/* ---- CARP ------------------------------------------------------------------ */

enum auth_result { AUTH_UNCHECKED, AUTH_OK, AUTH_BAD, AUTH_GUI };

static enum auth_result check_auth(const struct carpdump_opts *o, const struct carp_adv *adv)
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

static void print_carp_adv(struct carpdump *c, const struct pkt *pk, const struct carp_adv *adv,
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
		struct carpdump_jw *w = &c->jw;
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
		fprintf(c->out, " vhid %u advbase %u advskew %u counter 0x%016llx ttl %d",
			adv->vhid, adv->advbase, adv->advskew, (unsigned long long)adv->counter,
			pk->ttl);
		if (pk->has_mac)
			fprintf(c->out, " src-mac %s", mac_str(pk->mac, m));
		fprintf(c->out, " cksum %s auth %s", cksum_ok ? "ok" : "bad", auth_word[auth]);
	}
	end_record(c, &n);
}

/* IP protocol 112: CARP, or VRRP, which shares the number. */
static void print_proto112(struct carpdump *c, const struct pkt *pk)
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
static const char *pfsync_messages(struct carpdump *c, const uint8_t *p, size_t plen, char *summary)
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
		struct carpdump_jw *w = &c->jw;
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

static void print_pfsync(struct carpdump *c, const struct pkt *pk)
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
		struct carpdump_jw *w = &c->jw;

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
		fprintf(c->out, " version %u len %u ttl %d", version, len, pk->ttl);
		const char *err = pfsync_messages(c, p, pk->plen, summary);
		fprintf(c->out, ":%s", summary);
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

bool carpdump_dlt_supported(int dlt)
{
	return dlt == DLT_EN10MB || dlt == DLT_LINUX_SLL || dlt == DLT_LINUX_SLL2 ||
	       dlt == DLT_RAW || dlt == DLT_IPV4 || dlt == DLT_IPV6;
}

void carpdump_packet(struct carpdump *c, int dlt, unsigned long frame, const struct pcap_pkthdr *h,
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

void carpdump_init(struct carpdump *c, const struct carpdump_opts *o, FILE *out)
{
	memset(c, 0, sizeof(*c));
	c->o = o;
	c->out = out;
	c->jw.f = out;
}

/* fuzz-sources: proto/pfsync.c */
/* fuzz-libs: */
/*
 * tests/fuzz/fuzz_pfsync.c - libFuzzer target for the pfsync codec (proto/pfsync.h).
 *
 * The input is pfsync data (the bytes after the IP header). Besides "no crash,
 * no read past size", it checks what the codec promises:
 *   - the iterator only hands out message runs inside the header's len, and
 *     its results agree with its sticky error;
 *   - every message decodes; re-encoding it gives back the input bytes except
 *     the pad/spare bytes, and decode(encode(x)) == x;
 *   - a state converted to any other format keeps the fields all formats share,
 *     and pfsync_state_fits() agrees with a round trip;
 *   - the JSON of every message is valid JSON and snprintf-like in its length;
 *   - the writer rebuilds the same message stream, and what it writes parses.
 * Any broken promise aborts.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/pfsync.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

/* ---- a strict JSON syntax check (enough for what the codec prints) ------------------ */

struct jp {
	const char *s;
	size_t i, n;
};

static bool j_value(struct jp *p, int depth);

static void j_ws(struct jp *p)
{
	while (p->i < p->n && p->s[p->i] == ' ')
		p->i++;
}

static bool j_lit(struct jp *p, char c)
{
	j_ws(p);
	if (p->i < p->n && p->s[p->i] == c) {
		p->i++;
		return true;
	}
	return false;
}

static bool j_string(struct jp *p)
{
	if (!j_lit(p, '"'))
		return false;
	while (p->i < p->n) {
		unsigned char c = (unsigned char)p->s[p->i++];

		if (c == '"')
			return true;
		if (c < 0x20 || c >= 0x7f) /* the codec escapes all of these */
			return false;
		if (c == '\\') {
			if (p->i >= p->n)
				return false;
			c = (unsigned char)p->s[p->i++];
			if (c == 'u') {
				for (int k = 0; k < 4; k++, p->i++)
					if (p->i >= p->n ||
					    !strchr("0123456789abcdef", p->s[p->i]) || !p->s[p->i])
						return false;
			} else if (!strchr("\"\\nt", c) || !c) {
				return false;
			}
		}
	}
	return false;
}

static bool j_number(struct jp *p)
{
	size_t start;

	j_ws(p);
	if (p->i < p->n && p->s[p->i] == '-')
		p->i++;
	start = p->i;
	while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
		p->i++;
	return p->i > start;
}

static bool j_container(struct jp *p, char open, char close, bool keyed, int depth)
{
	if (!j_lit(p, open))
		return false;
	if (j_lit(p, close))
		return true;
	do {
		if (keyed && (!j_string(p) || !j_lit(p, ':')))
			return false;
		if (!j_value(p, depth + 1))
			return false;
	} while (j_lit(p, ','));
	return j_lit(p, close);
}

static bool j_value(struct jp *p, int depth)
{
	if (depth > 8)
		return false;
	j_ws(p);
	if (p->i >= p->n)
		return false;
	switch (p->s[p->i]) {
	case '{':
		return j_container(p, '{', '}', true, depth);
	case '[':
		return j_container(p, '[', ']', false, depth);
	case '"':
		return j_string(p);
	}
	return j_number(p);
}

/* The rendered length is what snprintf would say; the text is one JSON object. */
static void check_json(size_t need, const char *buf, size_t cap)
{
	struct jp p = {buf, 0, need};

	CHECK(need > 0 && need < cap); /* cap is generous: everything must fit */
	CHECK(strlen(buf) == need);
	CHECK(j_value(&p, 0) && p.i == need);
}

/* Rendering into a short buffer returns the same length and a NUL-terminated prefix. */
static void check_json_short(size_t need, const char *full, size_t got, const char *buf, size_t cap)
{
	CHECK(got == need);
	CHECK(strlen(buf) == (need < cap ? need : cap - 1));
	CHECK(!strncmp(buf, full, strlen(buf)));
}

/* ---- pads: bytes a message leaves as 0 whatever the input held ---------------------- */

static bool is_pad(uint8_t action, size_t i)
{
	switch (pfsync_action_version(action)) {
	case PFSYNC_MSG_VERSION_1301:
		return (i >= 122 && i < 128) || (i >= 154 && i < 160) || i == 235 || i == 236;
	case PFSYNC_MSG_VERSION_1400:
		return (i >= 122 && i < 128) || (i >= 154 && i < 160) || i == 238;
	case PFSYNC_MSG_VERSION_1500:
		return (i >= 122 && i < 128) || (i >= 154 && i < 160) || i >= 357;
	}
	switch (action) {
	case PFSYNC_ACT_UPD_C:
		return (i >= 34 && i < 40) || (i >= 66 && i < 72) || i >= 81;
	case PFSYNC_ACT_BUS:
		return i >= 9;
	}
	return false;
}

/* a == b outside the pads, and b's pads are zero (b was written by the codec) */
static void check_same(uint8_t action, const uint8_t *in, const uint8_t *out, size_t len)
{
	for (size_t i = 0; i < len; i++)
		CHECK(is_pad(action, i) ? out[i] == 0 : out[i] == in[i]);
}

/* ---- per message ------------------------------------------------------------------- */

static char json[8192];
static char jshort[64];

static bool peer_eq(const struct pfsync_state_peer *a, const struct pfsync_state_peer *b)
{
	return a->scrub_flags == b->scrub_flags && a->scrub_ttl == b->scrub_ttl &&
	       a->scrub_flag == b->scrub_flag && a->scrub_ts_mod == b->scrub_ts_mod &&
	       a->seqlo == b->seqlo && a->seqhi == b->seqhi && a->seqdiff == b->seqdiff &&
	       a->max_win == b->max_win && a->mss == b->mss && a->state == b->state &&
	       a->wscale == b->wscale;
}

/* The fields every format carries, compared after a conversion. */
static bool common_equal(const struct pfsync_state *a, const struct pfsync_state *b)
{
	return a->id == b->id && a->creatorid == b->creatorid &&
	       !memcmp(a->ifname, b->ifname, sizeof(a->ifname)) &&
	       !memcmp(a->key[0].addr, b->key[0].addr, sizeof(a->key[0].addr)) &&
	       !memcmp(a->key[1].addr, b->key[1].addr, sizeof(a->key[1].addr)) &&
	       a->key[0].port[0] == b->key[0].port[0] && a->key[0].port[1] == b->key[0].port[1] &&
	       a->key[1].port[0] == b->key[1].port[0] && a->key[1].port[1] == b->key[1].port[1] &&
	       a->key[0].af == b->key[0].af && a->key[0].proto == b->key[0].proto &&
	       peer_eq(&a->src, &b->src) && peer_eq(&a->dst, &b->dst) &&
	       !memcmp(a->rt_addr, b->rt_addr, 16) && a->rule == b->rule &&
	       a->anchor == b->anchor && a->nat_rule == b->nat_rule && a->creation == b->creation &&
	       a->expire == b->expire && a->packets[0] == b->packets[0] &&
	       a->packets[1] == b->packets[1] && a->bytes[0] == b->bytes[0] &&
	       a->bytes[1] == b->bytes[1] && a->direction == b->direction && a->log == b->log &&
	       a->timeout == b->timeout && (uint8_t)a->state_flags == (uint8_t)b->state_flags;
}

static void check_state(uint8_t action, const uint8_t *m, size_t len)
{
	static const uint16_t versions[] = {1301, 1400, 1500};
	uint16_t ver = pfsync_action_version(action);
	struct pfsync_state s, back;
	uint8_t out[PFSYNC_STATE_1500_LEN];
	size_t n;

	CHECK(len == pfsync_state_size(ver));
	CHECK(pfsync_state_decode(m, len, ver, &s) == PFSYNC_OK);
	CHECK(s.version == ver);
	CHECK(!s.ifname[16] && !s.rt_ifname[16] && !s.orig_ifname[16] && !s.tagname[64]);
	CHECK(pfsync_state_decode(m, len - 1, ver, &back) == PFSYNC_ERR_OVERRUN);

	/* round trip in its own format */
	CHECK(pfsync_state_encode(&s, ver, out, len) == len);
	check_same(action, m, out, len);
	CHECK(pfsync_state_decode(out, len, ver, &back) == PFSYNC_OK);
	CHECK(pfsync_state_equal(&s, &back));
	CHECK(pfsync_state_fits(&s, ver));
	(void)pfsync_state_check(&s, true);
	(void)pfsync_state_check(&s, false);

	/* conversions keep what all formats share; fits() agrees with a round trip */
	for (size_t v = 0; v < 3; v++) {
		size_t vl = pfsync_state_size(versions[v]);

		CHECK(pfsync_state_encode(&s, versions[v], out, sizeof(out)) == vl);
		CHECK(pfsync_state_decode(out, vl, versions[v], &back) == PFSYNC_OK);
		CHECK(common_equal(&s, &back));
		CHECK(pfsync_state_fits(&s, versions[v]) == pfsync_state_equal(&s, &back));
	}

	n = pfsync_state_json(&s, json, sizeof(json));
	check_json(n, json, sizeof(json));
	check_json_short(n, json, pfsync_state_json(&s, jshort, sizeof(jshort)), jshort,
			 sizeof(jshort));
	CHECK(pfsync_state_json(&s, NULL, 0) == n);
}

static void check_small(uint8_t action, const uint8_t *m, size_t len)
{
	uint8_t out[PFSYNC_UPD_C_LEN];
	size_t n = 0;

	switch (action) {
	case PFSYNC_ACT_INS_ACK:
	case PFSYNC_ACT_UPD_REQ:
	case PFSYNC_ACT_DEL_C: {
		struct pfsync_ref r;

		CHECK(pfsync_ref_decode(m, len, &r) == PFSYNC_OK);
		CHECK(pfsync_ref_decode(m, len - 1, &r) == PFSYNC_ERR_OVERRUN);
		pfsync_ref_encode(&r, out);
		n = pfsync_ref_json(&r, json, sizeof(json));
		break;
	}
	case PFSYNC_ACT_UPD_C: {
		struct pfsync_upd_c u, back;

		CHECK(pfsync_upd_c_decode(m, len, &u) == PFSYNC_OK);
		CHECK(pfsync_upd_c_decode(m, len - 1, &back) == PFSYNC_ERR_OVERRUN);
		pfsync_upd_c_encode(&u, out);
		CHECK(pfsync_upd_c_decode(out, len, &back) == PFSYNC_OK);
		CHECK(u.id == back.id && u.creatorid == back.creatorid && u.expire == back.expire &&
		      u.timeout == back.timeout && peer_eq(&u.src, &back.src) &&
		      peer_eq(&u.dst, &back.dst));
		(void)pfsync_upd_c_check(&u);
		n = pfsync_upd_c_json(&u, json, sizeof(json));
		break;
	}
	case PFSYNC_ACT_BUS: {
		struct pfsync_bus b;

		CHECK(pfsync_bus_decode(m, len, &b) == PFSYNC_OK);
		pfsync_bus_encode(&b, out);
		n = pfsync_bus_json(&b, json, sizeof(json));
		break;
	}
	case PFSYNC_ACT_CLR: {
		struct pfsync_clr c;

		CHECK(pfsync_clr_decode(m, len, &c) == PFSYNC_OK);
		CHECK(!c.ifname[16]);
		pfsync_clr_encode(&c, out);
		n = pfsync_clr_json(&c, json, sizeof(json));
		break;
	}
	default:
		return;
	}
	check_same(action, m, out, len);
	check_json(n, json, sizeof(json));
}

/* Append one message to the writer as the daemon would, from its decoded form. */
static bool rewrite(struct pfsync_writer *w, uint8_t action, const uint8_t *m, size_t len)
{
	uint16_t ver = pfsync_action_version(action);
	enum pfsync_err e = PFSYNC_OK;

	if (ver) {
		struct pfsync_state s;

		pfsync_state_decode(m, len, ver, &s);
		e = pfsync_writer_add_state(w, action, &s);
	} else {
		switch (action) {
		case PFSYNC_ACT_INS_ACK:
		case PFSYNC_ACT_UPD_REQ:
		case PFSYNC_ACT_DEL_C: {
			struct pfsync_ref r;

			pfsync_ref_decode(m, len, &r);
			e = pfsync_writer_add_ref(w, action, r.id, r.creatorid);
			break;
		}
		case PFSYNC_ACT_UPD_C: {
			struct pfsync_upd_c u;

			pfsync_upd_c_decode(m, len, &u);
			e = pfsync_writer_add_upd_c(w, &u);
			break;
		}
		case PFSYNC_ACT_BUS: {
			struct pfsync_bus b;

			pfsync_bus_decode(m, len, &b);
			e = pfsync_writer_add_bus(w, &b);
			break;
		}
		case PFSYNC_ACT_CLR: {
			struct pfsync_clr c;

			pfsync_clr_decode(m, len, &c);
			e = pfsync_writer_add_clr(w, &c);
			break;
		}
		default:
			return true; /* TDB, EOF: never written */
		}
	}
	CHECK(e == PFSYNC_OK || e == PFSYNC_ERR_FULL);
	return e == PFSYNC_OK;
}

/* A cursor over the messages of a packet, flattening subheaders. */
struct cursor {
	struct pfsync_iter it;
	uint8_t action;
	uint16_t left;
	const uint8_t *next;
	size_t msglen;
};

/* The next writable message (not TDB), or false at the end. */
static bool cursor_next(struct cursor *c, uint8_t *action, const uint8_t **m, size_t *len)
{
	while (c->left == 0) {
		uint16_t count;

		if (pfsync_iter_next(&c->it, &c->action, &count, &c->next, &c->msglen) != 1)
			return false;
		c->left = count;
		if (c->action == PFSYNC_ACT_TDB || c->action == PFSYNC_ACT_EOF)
			c->left = 0;
	}
	*action = c->action;
	*m = c->next;
	*len = c->msglen;
	c->next += c->msglen;
	c->left--;
	return true;
}

static void check_writer(const uint8_t *data, size_t size)
{
	static uint8_t buf[65535];
	struct pfsync_writer w;
	struct cursor in, out;
	uint8_t a1, a2;
	const uint8_t *m1, *m2;
	size_t l1, l2, len;
	unsigned written = 0;
	struct pfsync_hdr h;

	/* the input's own cksum goes into the header, as a relay would */
	memset(&in, 0, sizeof(in));
	if (pfsync_iter_init(&in.it, data, size, &h) != PFSYNC_OK)
		return;
	CHECK(pfsync_writer_begin(&w, buf, sizeof(buf), h.pfcksum) == PFSYNC_OK);
	while (cursor_next(&in, &a1, &m1, &l1) && rewrite(&w, a1, m1, l1))
		written++;
	CHECK(w.nmsgs == written);
	len = pfsync_writer_finish(&w);
	CHECK(len >= 24 && len <= sizeof(buf));
	CHECK(!memcmp(buf + 4, h.pfcksum, 16));

	/* the written packet parses cleanly and holds the same messages */
	memset(&in, 0, sizeof(in));
	memset(&out, 0, sizeof(out));
	pfsync_iter_init(&in.it, data, size, NULL);
	CHECK(pfsync_iter_init(&out.it, buf, len, NULL) == PFSYNC_OK);
	for (unsigned i = 0; i < written; i++) {
		CHECK(cursor_next(&in, &a1, &m1, &l1));
		CHECK(cursor_next(&out, &a2, &m2, &l2));
		CHECK(a1 == a2 && l1 == l2);
		check_same(a1, m1, m2, l1);
	}
	CHECK(!cursor_next(&out, &a2, &m2, &l2));
	CHECK(out.it.err == PFSYNC_OK && out.it.eof && out.it.trailing == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pfsync_iter it;
	struct pfsync_hdr h;
	enum pfsync_err e;
	uint8_t action;
	uint16_t count;
	const uint8_t *msgs;
	size_t msglen;
	int r;

	e = pfsync_iter_init(&it, data, size, &h);
	CHECK(e == pfsync_parse_header(data, size, NULL));
	CHECK(e < PFSYNC_ERR__COUNT);
	if (e == PFSYNC_OK)
		CHECK(h.version == PFSYNC_VERSION && h.len >= 20 && h.len <= size);

	while ((r = pfsync_iter_next(&it, &action, &count, &msgs, &msglen)) == 1) {
		int ml = pfsync_action_msglen(action);

		CHECK(ml >= 0 && (size_t)ml == msglen);
		CHECK(msgs >= data + 20 && (size_t)(msgs - data) + (size_t)count * msglen <= h.len);
		CHECK(strcmp(pfsync_action_name(action), "UNKNOWN") != 0);
		if (action == PFSYNC_ACT_TDB || action == PFSYNC_ACT_EOF)
			continue;
		for (uint16_t i = 0; i < count; i++) {
			const uint8_t *m = msgs + (size_t)i * msglen;

			if (pfsync_action_version(action))
				check_state(action, m, msglen);
			else
				check_small(action, m, msglen);
		}
	}
	if (r < 0) {
		CHECK(-r == (int)it.err && it.err != PFSYNC_OK && it.err < PFSYNC_ERR__COUNT);
		CHECK(pfsync_iter_next(&it, NULL, NULL, NULL, NULL) == r);
		CHECK(pfsync_err_explain(it.err) && pfsync_err_counter(it.err));
	} else {
		CHECK(r == 0 && it.err == PFSYNC_OK && it.done);
		CHECK(it.off + it.trailing == size);
	}

	check_writer(data, size);
	return 0;
}

/*
 * proto/pfsync.c - the pfsync v5 wire codec: header, subheaders, the state
 * formats 1301/1400/1500, the small messages, a packet writer and the JSON
 * carpdump prints. See pfsync.h. Pure: no sockets, no globals, no allocation.
 *
 * Every field is read and written byte by byte (get16/put32...): the wire
 * structs are __packed and a 1400 state has a u16 at an odd offset.
 */
#include "proto/pfsync.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- byte access ------------------------------------------------------------------- */

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

/* A fixed-size wire string: all n bytes kept, then a terminator of our own. */
static void get_str(char *dst, const uint8_t *p, size_t n)
{
	memcpy(dst, p, n);
	dst[n] = '\0';
}

/* ---- errors ------------------------------------------------------------------------ */

const char *pfsync_err_name(enum pfsync_err err)
{
	switch (err) {
	case PFSYNC_OK:
		return "ok";
	case PFSYNC_ERR_TRUNC:
		return "hdrops";
	case PFSYNC_ERR_BADVER:
		return "badver";
	case PFSYNC_ERR_BADLEN:
		return "badlen";
	case PFSYNC_ERR_BADACT:
		return "badact";
	case PFSYNC_ERR_OVERRUN:
		return "overrun";
	case PFSYNC_ERR_BADEOF:
		return "badeof";
	case PFSYNC_ERR_BADFMT:
		return "badfmt";
	case PFSYNC_ERR_BADVAL:
		return "badval";
	case PFSYNC_ERR_FULL:
		return "full";
	case PFSYNC_ERR__COUNT:
		break;
	}
	return "unknown";
}

const char *pfsync_err_counter(enum pfsync_err err)
{
	switch (err) {
	case PFSYNC_ERR_TRUNC:
		return "hdrops";
	case PFSYNC_ERR_BADVER:
	case PFSYNC_ERR_BADFMT:
		return "badver";
	case PFSYNC_ERR_BADLEN:
	case PFSYNC_ERR_OVERRUN:
	case PFSYNC_ERR_BADEOF:
		return "badlen";
	case PFSYNC_ERR_BADACT:
		return "badact";
	case PFSYNC_ERR_BADVAL:
		return "badval";
	case PFSYNC_OK:
	case PFSYNC_ERR_FULL:
	case PFSYNC_ERR__COUNT:
		break;
	}
	return NULL;
}

const char *pfsync_err_explain(enum pfsync_err err)
{
	switch (err) {
	case PFSYNC_OK:
		return "ok";
	case PFSYNC_ERR_TRUNC:
		return "truncated: shorter than the 20-byte pfsync header";
	case PFSYNC_ERR_BADVER:
		return "version BAD: not pfsync version 5 (OpenBSD sends 6 and is not compatible)";
	case PFSYNC_ERR_BADLEN:
		return "length BAD: the header's length is larger than the packet or smaller than "
		       "the header; FreeBSD drops the packet";
	case PFSYNC_ERR_BADACT:
		return "action BAD: unknown to this receiver (a newer format? set 'version' lower "
		       "on the sender) or one FreeBSD never accepts (DEL, INS_F, DEL_F); the rest "
		       "of the packet is discarded";
	case PFSYNC_ERR_OVERRUN:
		return "length BAD: a subheader's count of messages runs past the end of the "
		       "packet; the rest of the packet is discarded";
	case PFSYNC_ERR_BADEOF:
		return "length BAD: bytes follow the EOF subheader (what came before it counts)";
	case PFSYNC_ERR_BADFMT:
		return "format BAD: not a state format version this code knows (1301, 1400, 1500)";
	case PFSYNC_ERR_BADVAL:
		return "value BAD: timeout index, peer state, direction or address family out "
		       "of range; FreeBSD skips this state and goes on";
	case PFSYNC_ERR_FULL:
		return "full: the message does not fit in this packet; send it and start another";
	case PFSYNC_ERR__COUNT:
		break;
	}
	return "unknown error";
}

/* ---- actions ----------------------------------------------------------------------- */

static const char *const action_names[PFSYNC_ACT_MAX] = {
	[PFSYNC_ACT_CLR] = "CLR",	    [PFSYNC_ACT_INS_1301] = "INS_1301",
	[PFSYNC_ACT_INS_ACK] = "INS_ACK",   [PFSYNC_ACT_UPD_1301] = "UPD_1301",
	[PFSYNC_ACT_UPD_C] = "UPD_C",	    [PFSYNC_ACT_UPD_REQ] = "UPD_REQ",
	[PFSYNC_ACT_DEL] = "DEL",	    [PFSYNC_ACT_DEL_C] = "DEL_C",
	[PFSYNC_ACT_INS_F] = "INS_F",	    [PFSYNC_ACT_DEL_F] = "DEL_F",
	[PFSYNC_ACT_BUS] = "BUS",	    [PFSYNC_ACT_TDB] = "TDB",
	[PFSYNC_ACT_EOF] = "EOF",	    [PFSYNC_ACT_INS_1400] = "INS_1400",
	[PFSYNC_ACT_UPD_1400] = "UPD_1400", [PFSYNC_ACT_INS_1500] = "INS_1500",
	[PFSYNC_ACT_UPD_1500] = "UPD_1500",
};

/* -1: FreeBSD defines no message for the code (pfsync_in_error), so its size
 * is unknown and nothing after it can be found. */
static const int action_msglen[PFSYNC_ACT_MAX] = {
	[PFSYNC_ACT_CLR] = PFSYNC_CLR_LEN,
	[PFSYNC_ACT_INS_1301] = PFSYNC_STATE_1301_LEN,
	[PFSYNC_ACT_INS_ACK] = PFSYNC_REF_LEN,
	[PFSYNC_ACT_UPD_1301] = PFSYNC_STATE_1301_LEN,
	[PFSYNC_ACT_UPD_C] = PFSYNC_UPD_C_LEN,
	[PFSYNC_ACT_UPD_REQ] = PFSYNC_REF_LEN,
	[PFSYNC_ACT_DEL] = -1,
	[PFSYNC_ACT_DEL_C] = PFSYNC_REF_LEN,
	[PFSYNC_ACT_INS_F] = -1,
	[PFSYNC_ACT_DEL_F] = -1,
	[PFSYNC_ACT_BUS] = PFSYNC_BUS_LEN,
	[PFSYNC_ACT_TDB] = PFSYNC_TDB_LEN,
	[PFSYNC_ACT_EOF] = 0,
	[PFSYNC_ACT_INS_1400] = PFSYNC_STATE_1400_LEN,
	[PFSYNC_ACT_UPD_1400] = PFSYNC_STATE_1400_LEN,
	[PFSYNC_ACT_INS_1500] = PFSYNC_STATE_1500_LEN,
	[PFSYNC_ACT_UPD_1500] = PFSYNC_STATE_1500_LEN,
};

const char *pfsync_action_name(uint8_t action)
{
	return action < PFSYNC_ACT_MAX ? action_names[action] : "UNKNOWN";
}

int pfsync_action_msglen(uint8_t action)
{
	return action < PFSYNC_ACT_MAX ? action_msglen[action] : -1;
}

uint16_t pfsync_action_version(uint8_t action)
{
	switch (action) {
	case PFSYNC_ACT_INS_1301:
	case PFSYNC_ACT_UPD_1301:
		return PFSYNC_MSG_VERSION_1301;
	case PFSYNC_ACT_INS_1400:
	case PFSYNC_ACT_UPD_1400:
		return PFSYNC_MSG_VERSION_1400;
	case PFSYNC_ACT_INS_1500:
	case PFSYNC_ACT_UPD_1500:
		return PFSYNC_MSG_VERSION_1500;
	}
	return 0;
}

uint8_t pfsync_action_ins(uint16_t version)
{
	switch (version) {
	case PFSYNC_MSG_VERSION_1301:
		return PFSYNC_ACT_INS_1301;
	case PFSYNC_MSG_VERSION_1400:
		return PFSYNC_ACT_INS_1400;
	case PFSYNC_MSG_VERSION_1500:
		return PFSYNC_ACT_INS_1500;
	}
	return 0xff;
}

uint8_t pfsync_action_upd(uint16_t version)
{
	switch (version) {
	case PFSYNC_MSG_VERSION_1301:
		return PFSYNC_ACT_UPD_1301;
	case PFSYNC_MSG_VERSION_1400:
		return PFSYNC_ACT_UPD_1400;
	case PFSYNC_MSG_VERSION_1500:
		return PFSYNC_ACT_UPD_1500;
	}
	return 0xff;
}

size_t pfsync_state_size(uint16_t version)
{
	switch (version) {
	case PFSYNC_MSG_VERSION_1301:
		return PFSYNC_STATE_1301_LEN;
	case PFSYNC_MSG_VERSION_1400:
		return PFSYNC_STATE_1400_LEN;
	case PFSYNC_MSG_VERSION_1500:
		return PFSYNC_STATE_1500_LEN;
	}
	return 0;
}

/* ---- header and iteration ---------------------------------------------------------- */

enum pfsync_err pfsync_parse_header(const uint8_t *pkt, size_t len, struct pfsync_hdr *out)
{
	struct pfsync_hdr h;

	if (len < PFSYNC_HDR_LEN)
		return PFSYNC_ERR_TRUNC;
	h.version = pkt[0];
	h.pad = pkt[1];
	h.len = get16(pkt + 2);
	memcpy(h.pfcksum, pkt + 4, PFSYNC_CKSUM_LEN);
	if (out)
		*out = h;
	if (h.version != PFSYNC_VERSION)
		return PFSYNC_ERR_BADVER;
	if (h.len > len || h.len < PFSYNC_HDR_LEN)
		return PFSYNC_ERR_BADLEN;
	return PFSYNC_OK;
}

enum pfsync_err pfsync_iter_init(struct pfsync_iter *it, const uint8_t *pkt, size_t len,
				 struct pfsync_hdr *hdr)
{
	struct pfsync_hdr h;

	memset(it, 0, sizeof(*it));
	it->pkt = pkt;
	it->len = len;
	it->err = pfsync_parse_header(pkt, len, &h);
	if (hdr && len >= PFSYNC_HDR_LEN)
		*hdr = h;
	if (it->err != PFSYNC_OK) {
		it->done = true;
		return it->err;
	}
	it->end = h.len;
	it->off = PFSYNC_HDR_LEN;
	return PFSYNC_OK;
}

static int iter_fail(struct pfsync_iter *it, enum pfsync_err err)
{
	it->err = err;
	it->done = true;
	return -(int)err;
}

int pfsync_iter_next(struct pfsync_iter *it, uint8_t *action, uint16_t *count, const uint8_t **msgs,
		     size_t *msglen)
{
	uint8_t act;
	uint16_t n;
	int mlen;
	size_t total;

	if (it->err != PFSYNC_OK)
		return -(int)it->err;
	if (it->done)
		return 0;
	if (it->eof) {
		/* FreeBSD's pfsync_in_eof compares with the whole packet, not the
		 * header len: anything after EOF is badlen. */
		it->done = true;
		it->trailing = it->len - it->off;
		return it->trailing ? iter_fail(it, PFSYNC_ERR_BADEOF) : 0;
	}
	/* pfsync_input's loop: stop once fewer than 4 bytes of len remain. */
	if (it->end - it->off < PFSYNC_SUBHDR_LEN) {
		it->done = true;
		it->trailing = it->len - it->off;
		return 0;
	}
	act = it->pkt[it->off];
	n = get16(it->pkt + it->off + 2);
	it->action = act;
	it->count = n;
	if (action)
		*action = act;
	if (count)
		*count = n;
	mlen = pfsync_action_msglen(act);
	if (mlen < 0)
		return iter_fail(it, PFSYNC_ERR_BADACT);
	it->off += PFSYNC_SUBHDR_LEN;
	total = (size_t)n * (size_t)mlen;
	if (total > it->end - it->off)
		return iter_fail(it, PFSYNC_ERR_OVERRUN);
	if (msgs)
		*msgs = it->pkt + it->off;
	if (msglen)
		*msglen = (size_t)mlen;
	it->off += total;
	if (act == PFSYNC_ACT_EOF)
		it->eof = true;
	return 1;
}

/* ---- state peers and keys ---------------------------------------------------------- */

static void peer_decode(const uint8_t *p, struct pfsync_state_peer *d)
{
	d->scrub_flags = get16(p);
	d->scrub_ttl = p[2];
	d->scrub_flag = p[3];
	d->scrub_ts_mod = get32(p + 4);
	d->seqlo = get32(p + 8);
	d->seqhi = get32(p + 12);
	d->seqdiff = get32(p + 16);
	d->max_win = get16(p + 20);
	d->mss = get16(p + 22);
	d->state = p[24];
	d->wscale = p[25];
	/* 26..31: pad */
}

static void peer_encode(const struct pfsync_state_peer *s, uint8_t *p)
{
	put16(p, s->scrub_flags);
	p[2] = s->scrub_ttl;
	p[3] = s->scrub_flag;
	put32(p + 4, s->scrub_ts_mod);
	put32(p + 8, s->seqlo);
	put32(p + 12, s->seqhi);
	put32(p + 16, s->seqdiff);
	put16(p + 20, s->max_win);
	put16(p + 22, s->mss);
	p[24] = s->state;
	p[25] = s->wscale;
	memset(p + 26, 0, 6);
}

static bool peer_equal(const struct pfsync_state_peer *a, const struct pfsync_state_peer *b)
{
	return a->scrub_flags == b->scrub_flags && a->scrub_ttl == b->scrub_ttl &&
	       a->scrub_flag == b->scrub_flag && a->scrub_ts_mod == b->scrub_ts_mod &&
	       a->seqlo == b->seqlo && a->seqhi == b->seqhi && a->seqdiff == b->seqdiff &&
	       a->max_win == b->max_win && a->mss == b->mss && a->state == b->state &&
	       a->wscale == b->wscale;
}

static void key_decode(const uint8_t *p, struct pfsync_state_key *k)
{
	memcpy(k->addr[0], p, PFSYNC_ADDR_LEN);
	memcpy(k->addr[1], p + 16, PFSYNC_ADDR_LEN);
	k->port[0] = get16(p + 32);
	k->port[1] = get16(p + 34);
}

static void key_encode(const struct pfsync_state_key *k, uint8_t *p)
{
	memcpy(p, k->addr[0], PFSYNC_ADDR_LEN);
	memcpy(p + 16, k->addr[1], PFSYNC_ADDR_LEN);
	put16(p + 32, k->port[0]);
	put16(p + 34, k->port[1]);
}

/* ---- states ------------------------------------------------------------------------ */

/* Offsets of the common prefix (spec 3.3), identical in the three formats. */
enum {
	S_ID = 0,
	S_IFNAME = 8,
	S_KEY = 24, /* 2 x 36 */
	S_SRC = 96,
	S_DST = 128,
	S_RT_ADDR = 160,
	S_RULE = 176,
	S_ANCHOR = 180,
	S_NAT_RULE = 184,
	S_CREATION = 188,
	S_EXPIRE = 192,
	S_PACKETS = 196, /* [2][2] u32, hi then lo */
	S_BYTES = 212,
	S_CREATORID = 228,
	S_TAIL = 232,
};

void pfsync_state_defaults(struct pfsync_state *s)
{
	memset(s, 0, sizeof(*s));
	s->version = PFSYNC_MSG_VERSION_1400;
	memcpy(s->ifname, "all", 3);
	s->rule = s->anchor = s->nat_rule = 0xffffffffu;
	s->rtableid = -1;
}

static void prefix_decode(const uint8_t *p, struct pfsync_state *s)
{
	s->id = get64(p + S_ID);
	get_str(s->ifname, p + S_IFNAME, PFSYNC_IFNAMSIZ);
	key_decode(p + S_KEY, &s->key[PFSYNC_SK_WIRE]);
	key_decode(p + S_KEY + 36, &s->key[PFSYNC_SK_STACK]);
	peer_decode(p + S_SRC, &s->src);
	peer_decode(p + S_DST, &s->dst);
	memcpy(s->rt_addr, p + S_RT_ADDR, PFSYNC_ADDR_LEN);
	s->rule = get32(p + S_RULE);
	s->anchor = get32(p + S_ANCHOR);
	s->nat_rule = get32(p + S_NAT_RULE);
	s->creation = get32(p + S_CREATION);
	s->expire = get32(p + S_EXPIRE);
	for (int i = 0; i < 2; i++) {
		/* two u32 halves, each htonl'd: the same as one big-endian u64 */
		s->packets[i] = get64(p + S_PACKETS + 8 * i);
		s->bytes[i] = get64(p + S_BYTES + 8 * i);
	}
	s->creatorid = get32(p + S_CREATORID);
}

static void prefix_encode(const struct pfsync_state *s, uint8_t *p)
{
	put64(p + S_ID, s->id);
	memcpy(p + S_IFNAME, s->ifname, PFSYNC_IFNAMSIZ);
	key_encode(&s->key[PFSYNC_SK_WIRE], p + S_KEY);
	key_encode(&s->key[PFSYNC_SK_STACK], p + S_KEY + 36);
	peer_encode(&s->src, p + S_SRC);
	peer_encode(&s->dst, p + S_DST);
	memcpy(p + S_RT_ADDR, s->rt_addr, PFSYNC_ADDR_LEN);
	put32(p + S_RULE, s->rule);
	put32(p + S_ANCHOR, s->anchor);
	put32(p + S_NAT_RULE, s->nat_rule);
	put32(p + S_CREATION, s->creation);
	put32(p + S_EXPIRE, s->expire);
	for (int i = 0; i < 2; i++) {
		put64(p + S_PACKETS + 8 * i, s->packets[i]);
		put64(p + S_BYTES + 8 * i, s->bytes[i]);
	}
	put32(p + S_CREATORID, s->creatorid);
}

enum pfsync_err pfsync_state_decode(const uint8_t *p, size_t len, uint16_t version,
				    struct pfsync_state *s)
{
	size_t need = pfsync_state_size(version);
	const uint8_t *t = p + S_TAIL;

	if (need == 0)
		return PFSYNC_ERR_BADFMT;
	if (len < need)
		return PFSYNC_ERR_OVERRUN;
	memset(s, 0, sizeof(*s));
	s->version = version;
	prefix_decode(p, s);

	switch (version) {
	case PFSYNC_MSG_VERSION_1301:
		s->key[0].af = s->key[1].af = t[0];
		s->key[0].proto = s->key[1].proto = t[1];
		s->direction = t[2];
		/* t[3..4]: __spare */
		s->log = t[5];
		s->state_flags = t[6]; /* only the low byte exists in 1301 */
		s->timeout = t[7];
		s->sync_flags = t[8];
		s->updates = t[9];
		/* 1301 has no rtable: -1 is pf's "none", not FIB 0 */
		s->rtableid = -1;
		break;
	case PFSYNC_MSG_VERSION_1400:
		s->key[0].af = s->key[1].af = t[0];
		s->key[0].proto = s->key[1].proto = t[1];
		s->direction = t[2];
		s->state_flags = get16(t + 3); /* unaligned on the wire */
		s->log = t[5];
		/* t[6]: __spare */
		s->timeout = t[7];
		s->sync_flags = t[8];
		s->updates = t[9];
		s->qid = get16(t + 10);
		s->pqid = get16(t + 12);
		s->dnpipe = get16(t + 14);
		s->dnrpipe = get16(t + 16);
		s->rtableid = (int32_t)get32(t + 18);
		s->min_ttl = t[22];
		s->set_tos = t[23];
		s->max_mss = get16(t + 24);
		s->set_prio[0] = t[26];
		s->set_prio[1] = t[27];
		s->rt = t[28];
		get_str(s->rt_ifname, t + 29, PFSYNC_IFNAMSIZ);
		break;
	case PFSYNC_MSG_VERSION_1500:
		get_str(s->tagname, t, PFSYNC_TAG_NAMELEN);
		get_str(s->rt_ifname, t + 64, PFSYNC_IFNAMSIZ);
		get_str(s->orig_ifname, t + 80, PFSYNC_IFNAMSIZ);
		s->rtableid = (int32_t)get32(t + 96);
		s->state_flags = get16(t + 100);
		s->qid = get16(t + 102);
		s->pqid = get16(t + 104);
		s->dnpipe = get16(t + 106);
		s->dnrpipe = get16(t + 108);
		s->max_mss = get16(t + 110);
		s->key[PFSYNC_SK_WIRE].af = t[112];
		s->key[PFSYNC_SK_STACK].af = t[113];
		s->rt_af = t[114];
		s->key[PFSYNC_SK_WIRE].proto = t[115];
		s->key[PFSYNC_SK_STACK].proto = t[116];
		s->log = t[117];
		s->timeout = t[118];
		s->direction = t[119];
		s->rt = t[120];
		s->min_ttl = t[121];
		s->set_tos = t[122];
		s->set_prio[0] = t[123];
		s->set_prio[1] = t[124];
		/* t[125..127]: spare */
		break;
	}
	return PFSYNC_OK;
}

size_t pfsync_state_encode(const struct pfsync_state *s, uint16_t version, uint8_t *p, size_t cap)
{
	size_t need = pfsync_state_size(version);
	uint8_t *t = p + S_TAIL;
	const struct pfsync_state_key *kw = &s->key[PFSYNC_SK_WIRE];

	if (need == 0 || cap < need)
		return 0;
	memset(p, 0, need);
	prefix_encode(s, p);

	switch (version) {
	case PFSYNC_MSG_VERSION_1301:
		t[0] = kw->af;
		t[1] = kw->proto;
		t[2] = s->direction;
		t[5] = s->log;
		t[6] = (uint8_t)s->state_flags;
		t[7] = s->timeout;
		t[8] = s->sync_flags;
		t[9] = s->updates;
		break;
	case PFSYNC_MSG_VERSION_1400:
		t[0] = kw->af;
		t[1] = kw->proto;
		t[2] = s->direction;
		put16(t + 3, s->state_flags);
		t[5] = s->log;
		t[7] = s->timeout;
		t[8] = s->sync_flags;
		t[9] = s->updates;
		put16(t + 10, s->qid);
		put16(t + 12, s->pqid);
		put16(t + 14, s->dnpipe);
		put16(t + 16, s->dnrpipe);
		put32(t + 18, (uint32_t)s->rtableid);
		t[22] = s->min_ttl;
		t[23] = s->set_tos;
		put16(t + 24, s->max_mss);
		t[26] = s->set_prio[0];
		t[27] = s->set_prio[1];
		t[28] = s->rt;
		memcpy(t + 29, s->rt_ifname, PFSYNC_IFNAMSIZ);
		break;
	case PFSYNC_MSG_VERSION_1500:
		memcpy(t, s->tagname, PFSYNC_TAG_NAMELEN);
		memcpy(t + 64, s->rt_ifname, PFSYNC_IFNAMSIZ);
		memcpy(t + 80, s->orig_ifname, PFSYNC_IFNAMSIZ);
		put32(t + 96, (uint32_t)s->rtableid);
		put16(t + 100, s->state_flags);
		put16(t + 102, s->qid);
		put16(t + 104, s->pqid);
		put16(t + 106, s->dnpipe);
		put16(t + 108, s->dnrpipe);
		put16(t + 110, s->max_mss);
		t[112] = kw->af;
		t[113] = s->key[PFSYNC_SK_STACK].af;
		t[114] = s->rt_af;
		t[115] = kw->proto;
		t[116] = s->key[PFSYNC_SK_STACK].proto;
		t[117] = s->log;
		t[118] = s->timeout;
		t[119] = s->direction;
		t[120] = s->rt;
		t[121] = s->min_ttl;
		t[122] = s->set_tos;
		t[123] = s->set_prio[0];
		t[124] = s->set_prio[1];
		break;
	}
	return need;
}

static bool key_equal(const struct pfsync_state_key *a, const struct pfsync_state_key *b)
{
	return !memcmp(a->addr, b->addr, sizeof(a->addr)) && a->port[0] == b->port[0] &&
	       a->port[1] == b->port[1] && a->af == b->af && a->proto == b->proto;
}

bool pfsync_state_equal(const struct pfsync_state *a, const struct pfsync_state *b)
{
	return a->id == b->id && a->creatorid == b->creatorid &&
	       !memcmp(a->ifname, b->ifname, sizeof(a->ifname)) &&
	       key_equal(&a->key[0], &b->key[0]) && key_equal(&a->key[1], &b->key[1]) &&
	       peer_equal(&a->src, &b->src) && peer_equal(&a->dst, &b->dst) &&
	       !memcmp(a->rt_addr, b->rt_addr, sizeof(a->rt_addr)) && a->rule == b->rule &&
	       a->anchor == b->anchor && a->nat_rule == b->nat_rule && a->creation == b->creation &&
	       a->expire == b->expire && a->packets[0] == b->packets[0] &&
	       a->packets[1] == b->packets[1] && a->bytes[0] == b->bytes[0] &&
	       a->bytes[1] == b->bytes[1] && a->direction == b->direction &&
	       a->state_flags == b->state_flags && a->log == b->log && a->timeout == b->timeout &&
	       a->sync_flags == b->sync_flags && a->updates == b->updates && a->qid == b->qid &&
	       a->pqid == b->pqid && a->dnpipe == b->dnpipe && a->dnrpipe == b->dnrpipe &&
	       a->rtableid == b->rtableid && a->min_ttl == b->min_ttl && a->set_tos == b->set_tos &&
	       a->max_mss == b->max_mss && a->set_prio[0] == b->set_prio[0] &&
	       a->set_prio[1] == b->set_prio[1] && a->rt == b->rt &&
	       !memcmp(a->rt_ifname, b->rt_ifname, sizeof(a->rt_ifname)) && a->rt_af == b->rt_af &&
	       !memcmp(a->tagname, b->tagname, sizeof(a->tagname)) &&
	       !memcmp(a->orig_ifname, b->orig_ifname, sizeof(a->orig_ifname));
}

bool pfsync_state_fits(const struct pfsync_state *s, uint16_t version)
{
	uint8_t buf[PFSYNC_STATE_1500_LEN];
	struct pfsync_state back;

	if (pfsync_state_encode(s, version, buf, sizeof(buf)) == 0)
		return false;
	if (pfsync_state_decode(buf, sizeof(buf), version, &back) != PFSYNC_OK)
		return false;
	return pfsync_state_equal(s, &back);
}

static bool values_ok(uint8_t timeout, uint8_t src_state, uint8_t dst_state)
{
	return timeout < PFSYNC_PFTM_MAX && src_state <= PFSYNC_TCPS_MAX &&
	       dst_state <= PFSYNC_TCPS_MAX;
}

enum pfsync_err pfsync_state_check(const struct pfsync_state *s, bool insert)
{
	uint8_t af = s->key[PFSYNC_SK_WIRE].af;

	if (!values_ok(s->timeout, s->src.state, s->dst.state))
		return PFSYNC_ERR_BADVAL;
	if (insert &&
	    (s->direction > PFSYNC_DIR_OUT || (af != PFSYNC_AF_INET && af != PFSYNC_AF_INET6)))
		return PFSYNC_ERR_BADVAL;
	return PFSYNC_OK;
}

/* ---- small messages ---------------------------------------------------------------- */

enum pfsync_err pfsync_ref_decode(const uint8_t *p, size_t len, struct pfsync_ref *out)
{
	if (len < PFSYNC_REF_LEN)
		return PFSYNC_ERR_OVERRUN;
	out->id = get64(p);
	out->creatorid = get32(p + 8);
	return PFSYNC_OK;
}

void pfsync_ref_encode(const struct pfsync_ref *m, uint8_t out[PFSYNC_REF_LEN])
{
	put64(out, m->id);
	put32(out + 8, m->creatorid);
}

enum pfsync_err pfsync_upd_c_decode(const uint8_t *p, size_t len, struct pfsync_upd_c *out)
{
	if (len < PFSYNC_UPD_C_LEN)
		return PFSYNC_ERR_OVERRUN;
	memset(out, 0, sizeof(*out));
	out->id = get64(p);
	peer_decode(p + 8, &out->src);
	peer_decode(p + 40, &out->dst);
	out->creatorid = get32(p + 72);
	out->expire = get32(p + 76);
	out->timeout = p[80];
	return PFSYNC_OK;
}

void pfsync_upd_c_encode(const struct pfsync_upd_c *m, uint8_t out[PFSYNC_UPD_C_LEN])
{
	put64(out, m->id);
	peer_encode(&m->src, out + 8);
	peer_encode(&m->dst, out + 40);
	put32(out + 72, m->creatorid);
	put32(out + 76, m->expire);
	out[80] = m->timeout;
	memset(out + 81, 0, 3);
}

enum pfsync_err pfsync_upd_c_check(const struct pfsync_upd_c *m)
{
	return values_ok(m->timeout, m->src.state, m->dst.state) ? PFSYNC_OK : PFSYNC_ERR_BADVAL;
}

enum pfsync_err pfsync_bus_decode(const uint8_t *p, size_t len, struct pfsync_bus *out)
{
	if (len < PFSYNC_BUS_LEN)
		return PFSYNC_ERR_OVERRUN;
	memset(out, 0, sizeof(*out));
	out->creatorid = get32(p);
	out->endtime = get32(p + 4);
	out->status = p[8];
	return PFSYNC_OK;
}

void pfsync_bus_encode(const struct pfsync_bus *m, uint8_t out[PFSYNC_BUS_LEN])
{
	put32(out, m->creatorid);
	put32(out + 4, m->endtime);
	out[8] = m->status;
	memset(out + 9, 0, 3);
}

enum pfsync_err pfsync_clr_decode(const uint8_t *p, size_t len, struct pfsync_clr *out)
{
	if (len < PFSYNC_CLR_LEN)
		return PFSYNC_ERR_OVERRUN;
	get_str(out->ifname, p, PFSYNC_IFNAMSIZ);
	out->creatorid = get32(p + 16);
	return PFSYNC_OK;
}

void pfsync_clr_encode(const struct pfsync_clr *m, uint8_t out[PFSYNC_CLR_LEN])
{
	memcpy(out, m->ifname, PFSYNC_IFNAMSIZ);
	put32(out + 16, m->creatorid);
}

/* ---- writer ------------------------------------------------------------------------ */

enum pfsync_err pfsync_writer_begin(struct pfsync_writer *w, uint8_t *buf, size_t cap,
				    const uint8_t *pfcksum)
{
	memset(w, 0, sizeof(*w));
	/* the header's len is 16 bits: a bigger buffer cannot be described */
	if (cap > 0xffff)
		cap = 0xffff;
	if (cap < PFSYNC_HDR_LEN + PFSYNC_SUBHDR_LEN)
		return PFSYNC_ERR_FULL;
	w->buf = buf;
	w->cap = cap;
	memset(buf, 0, PFSYNC_HDR_LEN);
	buf[0] = PFSYNC_VERSION;
	if (pfcksum)
		memcpy(buf + 4, pfcksum, PFSYNC_CKSUM_LEN);
	w->len = PFSYNC_HDR_LEN;
	return PFSYNC_OK;
}

uint8_t *pfsync_writer_add(struct pfsync_writer *w, uint8_t action)
{
	int mlen = pfsync_action_msglen(action);
	bool open;
	size_t need;
	uint8_t *p;

	/* EOF is finish()'s; TDB is never sent (spec 2.5); the rest have no size */
	if (!w->buf || mlen <= 0 || action == PFSYNC_ACT_TDB)
		return NULL;
	open = !w->subh || w->action != action || w->count == 0xffff ||
	       pfsync_action_version(action) == PFSYNC_MSG_VERSION_1301;
	need = (open ? PFSYNC_SUBHDR_LEN : 0) + (size_t)mlen;
	/* keep 4 bytes for EOF */
	if (w->len + need + PFSYNC_SUBHDR_LEN > w->cap)
		return NULL;
	if (open) {
		w->subh = w->len;
		w->action = action;
		w->count = 0;
		w->buf[w->len] = action;
		w->buf[w->len + 1] = 0;
		w->len += PFSYNC_SUBHDR_LEN;
	}
	p = w->buf + w->len;
	memset(p, 0, (size_t)mlen);
	w->len += (size_t)mlen;
	w->count++;
	put16(w->buf + w->subh + 2, w->count);
	w->nmsgs++;
	return p;
}

enum pfsync_err pfsync_writer_add_state(struct pfsync_writer *w, uint8_t action,
					const struct pfsync_state *s)
{
	uint16_t version = pfsync_action_version(action);
	uint8_t *p;

	if (version == 0)
		return PFSYNC_ERR_BADACT;
	p = pfsync_writer_add(w, action);
	if (!p)
		return PFSYNC_ERR_FULL;
	pfsync_state_encode(s, version, p, pfsync_state_size(version));
	return PFSYNC_OK;
}

enum pfsync_err pfsync_writer_add_ref(struct pfsync_writer *w, uint8_t action, uint64_t id,
				      uint32_t creatorid)
{
	struct pfsync_ref r = {.id = id, .creatorid = creatorid};
	uint8_t *p;

	if (action != PFSYNC_ACT_INS_ACK && action != PFSYNC_ACT_UPD_REQ &&
	    action != PFSYNC_ACT_DEL_C)
		return PFSYNC_ERR_BADACT;
	p = pfsync_writer_add(w, action);
	if (!p)
		return PFSYNC_ERR_FULL;
	pfsync_ref_encode(&r, p);
	return PFSYNC_OK;
}

enum pfsync_err pfsync_writer_add_upd_c(struct pfsync_writer *w, const struct pfsync_upd_c *m)
{
	uint8_t *p = pfsync_writer_add(w, PFSYNC_ACT_UPD_C);

	if (!p)
		return PFSYNC_ERR_FULL;
	pfsync_upd_c_encode(m, p);
	return PFSYNC_OK;
}

enum pfsync_err pfsync_writer_add_bus(struct pfsync_writer *w, const struct pfsync_bus *m)
{
	uint8_t *p = pfsync_writer_add(w, PFSYNC_ACT_BUS);

	if (!p)
		return PFSYNC_ERR_FULL;
	pfsync_bus_encode(m, p);
	return PFSYNC_OK;
}

enum pfsync_err pfsync_writer_add_clr(struct pfsync_writer *w, const struct pfsync_clr *m)
{
	uint8_t *p = pfsync_writer_add(w, PFSYNC_ACT_CLR);

	if (!p)
		return PFSYNC_ERR_FULL;
	pfsync_clr_encode(m, p);
	return PFSYNC_OK;
}

void pfsync_writer_rollback(struct pfsync_writer *w, const struct pfsync_writer *mark)
{
	if (!w->buf || mark->buf != w->buf || mark->len > w->len)
		return;
	*w = *mark;
	/* the subheader open at the mark may have counted messages since */
	if (w->subh)
		put16(w->buf + w->subh + 2, w->count);
}

size_t pfsync_writer_finish(struct pfsync_writer *w)
{
	uint8_t *e;
	size_t len;

	if (!w->buf)
		return 0;
	/* begin() and add() always leave these 4 bytes free */
	e = w->buf + w->len;
	e[0] = PFSYNC_ACT_EOF;
	e[1] = 0;
	put16(e + 2, 1);
	len = w->len + PFSYNC_SUBHDR_LEN;
	put16(w->buf + 2, (uint16_t)len);
	/* a finished writer accepts nothing more until begun again */
	w->buf = NULL;
	w->subh = 0;
	return len;
}

/* ---- JSON -------------------------------------------------------------------------- */

/* snprintf-style accumulation: n counts every byte, whatever fitted. */
struct jbuf {
	char *buf;
	size_t cap;
	size_t n;
};

static void jb_printf(struct jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void jb_printf(struct jbuf *b, const char *fmt, ...)
{
	va_list ap;
	int r;
	bool room = b->buf && b->n < b->cap;

	va_start(ap, fmt);
	r = vsnprintf(room ? b->buf + b->n : NULL, room ? b->cap - b->n : 0, fmt, ap);
	va_end(ap);
	if (r > 0)
		b->n += (size_t)r;
}

static void jb_init(struct jbuf *b, char *buf, size_t len)
{
	b->buf = buf;
	b->cap = len;
	b->n = 0;
	if (buf && len)
		buf[0] = '\0';
}

/* A string of at most max bytes (stops at NUL). Bytes outside printable
 * ASCII become \u00XX (read as Latin-1) so the output is valid JSON whatever
 * a packet holds; the same rule as carpdump's own writer. */
static void jb_str(struct jbuf *b, const char *s, size_t max)
{
	jb_printf(b, "\"");
	for (size_t i = 0; i < max && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			jb_printf(b, "\\%c", c);
		else if (c == '\n')
			jb_printf(b, "\\n");
		else if (c == '\t')
			jb_printf(b, "\\t");
		else if (c < 0x20 || c >= 0x7f)
			jb_printf(b, "\\u%04x", c);
		else
			jb_printf(b, "%c", c);
	}
	jb_printf(b, "\"");
}

static void jb_kstr(struct jbuf *b, const char *key, const char *s, size_t max)
{
	jb_printf(b, ", \"%s\": ", key);
	jb_str(b, s, max);
}

static void jb_addr(struct jbuf *b, uint8_t af, const uint8_t addr[PFSYNC_ADDR_LEN])
{
	char txt[INET6_ADDRSTRLEN];

	if (af == PFSYNC_AF_INET && inet_ntop(AF_INET, addr, txt, sizeof(txt))) {
		jb_printf(b, "\"%s\"", txt);
	} else if (af == PFSYNC_AF_INET6 && inet_ntop(AF_INET6, addr, txt, sizeof(txt))) {
		jb_printf(b, "\"%s\"", txt);
	} else {
		jb_printf(b, "\"");
		for (int i = 0; i < PFSYNC_ADDR_LEN; i++)
			jb_printf(b, "%02x", addr[i]);
		jb_printf(b, "\"");
	}
}

static void jb_af(struct jbuf *b, uint8_t af)
{
	if (af == PFSYNC_AF_INET)
		jb_printf(b, "\"inet\"");
	else if (af == PFSYNC_AF_INET6)
		jb_printf(b, "\"inet6\"");
	else
		jb_printf(b, "%u", af);
}

static void jb_key(struct jbuf *b, const struct pfsync_state_key *k, bool with_af)
{
	jb_printf(b, "{");
	if (with_af) {
		jb_printf(b, "\"af\": ");
		jb_af(b, k->af);
		jb_printf(b, ", \"proto\": %u, ", k->proto);
	}
	jb_printf(b, "\"addr\": [");
	jb_addr(b, k->af, k->addr[0]);
	jb_printf(b, ", ");
	jb_addr(b, k->af, k->addr[1]);
	jb_printf(b, "], \"port\": [%u, %u]}", k->port[0], k->port[1]);
}

static void jb_peer(struct jbuf *b, const struct pfsync_state_peer *p)
{
	jb_printf(b,
		  "{\"state\": %u, \"wscale\": %u, \"seqlo\": %u, \"seqhi\": %u, \"seqdiff\": %u, "
		  "\"max_win\": %u, \"mss\": %u",
		  p->state, p->wscale, p->seqlo, p->seqhi, p->seqdiff, p->max_win, p->mss);
	if (p->scrub_flag || p->scrub_flags || p->scrub_ttl || p->scrub_ts_mod)
		jb_printf(b,
			  ", \"scrub\": {\"flag\": %u, \"flags\": %u, \"ttl\": %u, \"ts_mod\": %u}",
			  p->scrub_flag, p->scrub_flags, p->scrub_ttl, p->scrub_ts_mod);
	jb_printf(b, "}");
}

static void jb_id(struct jbuf *b, uint64_t id, uint32_t creatorid)
{
	jb_printf(b, "\"id\": \"0x%016llx\", \"creatorid\": \"0x%08x\"", (unsigned long long)id,
		  creatorid);
}

size_t pfsync_state_json(const struct pfsync_state *s, char *buf, size_t len)
{
	struct jbuf b;
	const struct pfsync_state_key *kw = &s->key[PFSYNC_SK_WIRE];
	const struct pfsync_state_key *ks = &s->key[PFSYNC_SK_STACK];

	jb_init(&b, buf, len);
	jb_printf(&b, "{");
	jb_id(&b, s->id, s->creatorid);
	jb_printf(&b, ", \"af\": ");
	jb_af(&b, kw->af);
	jb_printf(&b, ", \"proto\": %u, \"direction\": ", kw->proto);
	if (s->direction == PFSYNC_DIR_IN)
		jb_printf(&b, "\"in\"");
	else if (s->direction == PFSYNC_DIR_OUT)
		jb_printf(&b, "\"out\"");
	else
		jb_printf(&b, "%u", s->direction);
	jb_kstr(&b, "ifname", s->ifname, PFSYNC_IFNAMSIZ);
	jb_printf(&b, ", \"timeout\": %u, \"expire\": %u, \"wire\": ", s->timeout, s->expire);
	jb_key(&b, kw, false);
	jb_printf(&b, ", \"stack\": ");
	/* only af-to (NAT64) states have a stack key of another family */
	jb_key(&b, ks, ks->af != kw->af || ks->proto != kw->proto);
	jb_printf(&b, ", \"src\": ");
	jb_peer(&b, &s->src);
	jb_printf(&b, ", \"dst\": ");
	jb_peer(&b, &s->dst);
	/* extra keys */
	jb_printf(&b,
		  ", \"version\": %u, \"state_flags\": %u, \"log\": %u, \"creation\": %u, "
		  "\"packets\": [%llu, %llu], \"bytes\": [%llu, %llu], \"rule\": %d, "
		  "\"anchor\": %d, \"nat_rule\": %d, \"rtableid\": %d, \"rt\": %u",
		  s->version, s->state_flags, s->log, s->creation,
		  (unsigned long long)s->packets[0], (unsigned long long)s->packets[1],
		  (unsigned long long)s->bytes[0], (unsigned long long)s->bytes[1],
		  (int32_t)s->rule, (int32_t)s->anchor, (int32_t)s->nat_rule, s->rtableid, s->rt);
	if (s->rt) {
		/* 1500 says which family the next hop is; earlier formats use the state's */
		jb_printf(&b, ", \"rt_addr\": ");
		jb_addr(&b, s->rt_af ? s->rt_af : kw->af, s->rt_addr);
		jb_kstr(&b, "rt_ifname", s->rt_ifname, PFSYNC_IFNAMSIZ);
	}
	if (s->tagname[0])
		jb_kstr(&b, "tagname", s->tagname, PFSYNC_TAG_NAMELEN);
	if (s->orig_ifname[0])
		jb_kstr(&b, "orig_ifname", s->orig_ifname, PFSYNC_IFNAMSIZ);
	jb_printf(&b, "}");
	return b.n;
}

size_t pfsync_ref_json(const struct pfsync_ref *m, char *buf, size_t len)
{
	struct jbuf b;

	jb_init(&b, buf, len);
	jb_printf(&b, "{");
	jb_id(&b, m->id, m->creatorid);
	jb_printf(&b, "}");
	return b.n;
}

size_t pfsync_upd_c_json(const struct pfsync_upd_c *m, char *buf, size_t len)
{
	struct jbuf b;

	jb_init(&b, buf, len);
	jb_printf(&b, "{");
	jb_id(&b, m->id, m->creatorid);
	jb_printf(&b, ", \"timeout\": %u, \"expire\": %u, \"src\": ", m->timeout, m->expire);
	jb_peer(&b, &m->src);
	jb_printf(&b, ", \"dst\": ");
	jb_peer(&b, &m->dst);
	jb_printf(&b, "}");
	return b.n;
}

size_t pfsync_bus_json(const struct pfsync_bus *m, char *buf, size_t len)
{
	struct jbuf b;

	jb_init(&b, buf, len);
	jb_printf(&b, "{\"creatorid\": \"0x%08x\", \"status\": ", m->creatorid);
	if (m->status == PFSYNC_BUS_START)
		jb_printf(&b, "\"start\"");
	else if (m->status == PFSYNC_BUS_END)
		jb_printf(&b, "\"end\"");
	else
		jb_printf(&b, "%u", m->status);
	jb_printf(&b, ", \"endtime\": %u}", m->endtime);
	return b.n;
}

size_t pfsync_clr_json(const struct pfsync_clr *m, char *buf, size_t len)
{
	struct jbuf b;

	jb_init(&b, buf, len);
	jb_printf(&b, "{\"ifname\": ");
	jb_str(&b, m->ifname, PFSYNC_IFNAMSIZ);
	jb_printf(&b, ", \"creatorid\": \"0x%08x\"}", m->creatorid);
	return b.n;
}

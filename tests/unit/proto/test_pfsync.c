/*
 * tests/unit/proto/test_pfsync.c - proto/pfsync.h against the spec's test
 * vectors (../shared/specs/pfsync.md section 7, byte for byte), round trips of
 * the three state formats, conversions between them, the writer's batching,
 * the JSON carpdump prints, and every way a packet can be malformed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/pfsync.h"
#include "tap.h"

/* ---- helpers ----------------------------------------------------------------------- */

/* hex into out; a malformed vector is a bug in this file, so it stops the run */
static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
	int n = tap_unhex(hex, out, cap);

	if (n < 0) {
		printf("Bail out! bad hex in test vector: %.40s...\n", hex);
		exit(2);
	}
	return (size_t)n;
}

/* "what: detail" into a static buffer, for check names */
static const char *name(const char *what, const char *detail)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "%s: %s", what, detail);
	return buf;
}

/* ---- the spec's vectors (section 7) ------------------------------------------------ */

/* 7.2: IPv4 multicast, INS_1400 + DEL_C, 341 bytes */
static const char EX1[] = "45 10 01 55 00 00 40 00 ff f0 8e b7 0a 00 00 01"
			  "e0 00 00 f0 05 00 01 41 00 00 00 00 00 00 00 00"
			  "00 00 00 00 00 00 00 00 0d 00 00 01 00 00 00 00"
			  "00 00 12 34 61 6c 6c 00 00 00 00 00 00 00 00 00"
			  "00 00 00 00 5d b8 d8 22 00 00 00 00 00 00 00 00"
			  "00 00 00 00 cb 00 71 05 00 00 00 00 00 00 00 00"
			  "00 00 00 00 01 bb f2 30 5d b8 d8 22 00 00 00 00"
			  "00 00 00 00 00 00 00 00 c0 a8 01 64 00 00 00 00"
			  "00 00 00 00 00 00 00 00 01 bb c7 38 00 00 00 00"
			  "00 00 00 00 11 22 33 44 11 22 b3 44 00 00 00 00"
			  "fa f0 05 b4 04 87 00 00 00 00 00 00 00 00 00 00"
			  "00 00 00 00 55 66 77 88 55 66 f7 88 00 00 00 00"
			  "ff ff 05 78 04 88 00 00 00 00 00 00 00 00 00 00"
			  "00 00 00 00 00 00 00 00 00 00 00 00 ff ff ff ff"
			  "ff ff ff ff ff ff ff ff 00 00 00 78 00 01 51 08"
			  "00 00 00 00 00 00 00 0a 00 00 00 00 00 00 00 08"
			  "00 00 00 00 00 00 05 dc 00 00 00 00 00 00 17 70"
			  "0a 0b 0c 0d 02 06 02 00 00 00 00 02 00 00 00 00"
			  "00 00 00 00 00 00 ff ff ff ff 00 00 00 00 00 00"
			  "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
			  "00 07 00 00 01 00 00 00 00 00 00 12 33 0a 0b 0c"
			  "0d 0c 00 00 01";

/* 7.3: the IPv6 header, and the dump's lines the spec prints (0x00-0x4f, 0x150-) */
static const char EX2_IP6[] = "60 00 00 00 01 41 f0 ff fe 80 00 00 00 00 00 00"
			      "00 00 00 00 00 00 00 0a ff 12 00 00 00 00 00 00"
			      "00 00 00 00 00 00 00 f0";
static const char EX2_HEAD[] = "60 00 00 00 01 41 f0 ff fe 80 00 00 00 00 00 00"
			       "00 00 00 00 00 00 00 0a ff 12 00 00 00 00 00 00"
			       "00 00 00 00 00 00 00 f0 05 00 01 41 00 00 00 00"
			       "00 00 00 00 00 00 00 00 00 00 00 00 0d 00 00 01"
			       "00 00 00 00 00 00 12 34 61 6c 6c 00 00 00 00 00";
static const char EX2_TAIL[] = "00 00 00 00 00 07 00 00 01 00 00 00 00 00 00 12"
			       "33 0a 0b 0c 0d 0c 00 00 01";

/* 7.4: bulk request (IPv4, 60 bytes) and BUS END (pfsync only, 40 bytes) */
static const char EX3_REQ[] = "45 10 00 3c 00 00 40 00 ff f0 8f cf 0a 00 00 02"
			      "e0 00 00 f0 05 00 00 28 00 00 00 00 00 00 00 00"
			      "00 00 00 00 00 00 00 00 05 00 00 01 00 00 00 00"
			      "00 00 00 00 00 00 00 00 0c 00 00 01";
static const char EX3_BUS_END[] = "05 00 00 28 00 00 00 00 00 00 00 00 00 00 00 00"
				  "00 00 00 00 0a 00 00 01 0a 0b 0c 0d 00 00 00 03"
				  "02 00 00 00 0c 00 00 01";

/* 7.5: INS_1500: the header and the dump of the tail from 0x160 */
static const char EX4_HDR[] = "05 00 01 94 00000000000000000000000000000000 0f 00 00 01";
static const char EX4_TAIL[] = "ff ff ff ff 00 00 00 00 00 00 00 00 00 00 00 00"
			       "02 02 00 06 06 00 02 02 00 00 00 00 00 00 00 00"
			       "07 00 00 01 00 00 00 00 00 00 12 33 0a 0b 0c 0d"
			       "0c 00 00 01";

/* 7.6: UPD_C + INS_ACK, pfsync only, 128 bytes */
static const char EX5[] = "05 00 00 80 00 00 00 00 00 00 00 00 00 00 00 00"
			  "00 00 00 00 04 00 00 01 00 00 00 00 00 00 12 34"
			  "00 00 00 00 00 00 00 00 11 22 33 44 11 22 b3 44"
			  "00 00 00 00 fa f0 05 b4 04 87 00 00 00 00 00 00"
			  "00 00 00 00 00 00 00 00 55 66 77 88 55 66 f7 88"
			  "00 00 00 00 ff ff 05 78 04 88 00 00 00 00 00 00"
			  "0a 0b 0c 0d 00 00 00 00 02 00 00 00 02 00 00 01"
			  "00 00 00 00 00 00 00 a1 11 22 33 44 0c 00 00 01";

/* The STATE object carpdump prints for Example 1's state. */
static const char EX1_JSON[] =
	"{\"id\": \"0x0000000000001234\", \"creatorid\": \"0x0a0b0c0d\", \"af\": \"inet\", "
	"\"proto\": 6, \"direction\": \"out\", \"ifname\": \"all\", \"timeout\": 2, "
	"\"expire\": 86280, "
	"\"wire\": {\"addr\": [\"93.184.216.34\", \"203.0.113.5\"], \"port\": [443, 62000]}, "
	"\"stack\": {\"addr\": [\"93.184.216.34\", \"192.168.1.100\"], \"port\": [443, 51000]}, "
	"\"src\": {\"state\": 4, \"wscale\": 135, \"seqlo\": 287454020, \"seqhi\": 287486788, "
	"\"seqdiff\": 0, \"max_win\": 64240, \"mss\": 1460}, "
	"\"dst\": {\"state\": 4, \"wscale\": 136, \"seqlo\": 1432778632, \"seqhi\": 1432811400, "
	"\"seqdiff\": 0, \"max_win\": 65535, \"mss\": 1400}, "
	"\"version\": 1400, \"state_flags\": 0, \"log\": 0, \"creation\": 120, "
	"\"packets\": [10, 8], \"bytes\": [1500, 6000], \"rule\": -1, \"anchor\": -1, "
	"\"nat_rule\": -1, \"rtableid\": -1, \"rt\": 0}";

static uint8_t ex1[341];

static void load_ex1(void)
{
	if (unhex(EX1, ex1, sizeof(ex1)) != 341) {
		printf("Bail out! Example 1 is not 341 bytes\n");
		exit(2);
	}
}

static const uint8_t A_93[4] = {93, 184, 216, 34};
static const uint8_t A_203[4] = {203, 0, 113, 5};
static const uint8_t A_192[4] = {192, 168, 1, 100};

static bool v4_is(const uint8_t addr[16], const uint8_t v4[4])
{
	static const uint8_t zero[12];

	return !memcmp(addr, v4, 4) && !memcmp(addr + 4, zero, 12);
}

/* Every field of the common parameters (spec 7.1), as any format decodes them. */
static void check_common_state(const struct pfsync_state *s, const char *what)
{
	static const uint8_t zero16[16];
	const struct pfsync_state_key *w = &s->key[PFSYNC_SK_WIRE], *k = &s->key[PFSYNC_SK_STACK];

	CHECK(s->id == 0x1234, name(what, "id 0x1234"));
	CHECK(s->creatorid == 0x0a0b0c0d, name(what, "creatorid 0x0a0b0c0d"));
	CHECK(!strcmp(s->ifname, "all"), name(what, "ifname all"));
	CHECK(v4_is(w->addr[0], A_93) && v4_is(w->addr[1], A_203),
	      name(what, "wire addr 93.184.216.34, 203.0.113.5"));
	CHECK(w->port[0] == 443 && w->port[1] == 62000, name(what, "wire ports 443, 62000"));
	CHECK(v4_is(k->addr[0], A_93) && v4_is(k->addr[1], A_192),
	      name(what, "stack addr 93.184.216.34, 192.168.1.100"));
	CHECK(k->port[0] == 443 && k->port[1] == 51000, name(what, "stack ports 443, 51000"));
	CHECK(w->af == 2 && k->af == 2 && w->proto == 6 && k->proto == 6,
	      name(what, "af 2, proto 6 on both keys"));
	CHECK(s->src.seqlo == 0x11223344 && s->src.seqhi == 0x1122b344 && s->src.seqdiff == 0,
	      name(what, "src seqlo/seqhi/seqdiff"));
	CHECK(s->src.max_win == 64240 && s->src.mss == 1460, name(what, "src max_win, mss"));
	CHECK(s->src.state == 4 && s->src.wscale == 0x87, name(what, "src ESTABLISHED, wscale"));
	CHECK(s->src.scrub_flags == 0 && s->src.scrub_ttl == 0 && s->src.scrub_flag == 0 &&
		      s->src.scrub_ts_mod == 0,
	      name(what, "src scrub none"));
	CHECK(s->dst.seqlo == 0x55667788 && s->dst.seqhi == 0x5566f788 && s->dst.seqdiff == 0,
	      name(what, "dst seqlo/seqhi/seqdiff"));
	CHECK(s->dst.max_win == 65535 && s->dst.mss == 1400, name(what, "dst max_win, mss"));
	CHECK(s->dst.state == 4 && s->dst.wscale == 0x88, name(what, "dst ESTABLISHED, wscale"));
	CHECK(!memcmp(s->rt_addr, zero16, 16), name(what, "rt_addr 0"));
	CHECK(s->rule == 0xffffffffu && s->anchor == 0xffffffffu && s->nat_rule == 0xffffffffu,
	      name(what, "rule/anchor/nat_rule -1"));
	CHECK(s->creation == 120 && s->expire == 86280, name(what, "creation 120, expire 86280"));
	CHECK(s->packets[0] == 10 && s->packets[1] == 8, name(what, "packets 10/8"));
	CHECK(s->bytes[0] == 1500 && s->bytes[1] == 6000, name(what, "bytes 1500/6000"));
	CHECK(s->direction == PFSYNC_DIR_OUT, name(what, "direction out"));
	CHECK(s->state_flags == 0 && s->log == 0 && s->sync_flags == 0 && s->updates == 0,
	      name(what, "state_flags/log/sync_flags/updates 0"));
	CHECK(s->timeout == 2, name(what, "timeout TCP_ESTABLISHED"));
	CHECK(s->rtableid == -1, name(what, "rtableid -1"));
	CHECK(s->qid == 0 && s->pqid == 0 && s->dnpipe == 0 && s->dnrpipe == 0 && s->min_ttl == 0 &&
		      s->set_tos == 0 && s->max_mss == 0 && s->set_prio[0] == 0 &&
		      s->set_prio[1] == 0 && s->rt == 0 && s->rt_ifname[0] == 0 && s->rt_af == 0,
	      name(what, "queues, tos, mss, prio, rt: 0"));
	CHECK(pfsync_state_check(s, true) == PFSYNC_OK, name(what, "passes FreeBSD's INS checks"));
}

/* The decoded state of Example 1. */
static struct pfsync_state ex1_state(void)
{
	struct pfsync_state s;

	if (pfsync_state_decode(ex1 + 0x2c, 277, 1400, &s) != PFSYNC_OK) {
		printf("Bail out! Example 1's state does not decode\n");
		exit(2);
	}
	return s;
}

static void test_ex1(void)
{
	const uint8_t *pf = ex1 + 20;
	size_t pflen = sizeof(ex1) - 20;
	struct pfsync_hdr h;
	struct pfsync_iter it;
	uint8_t action = 0xee;
	uint16_t count = 0;
	const uint8_t *msgs = NULL;
	size_t msglen = 0;
	struct pfsync_state s;
	struct pfsync_ref r;
	static const uint8_t zero16[16];
	uint8_t out[1500];
	char json[2048];
	size_t n;

	/* IP header as the spec lists it; the codec starts after it */
	CHECK(ex1[0] == 0x45 && ex1[8] == 255 && ex1[9] == PFSYNC_PROTO && ex1[2] == 0x01 &&
		      ex1[3] == 0x55,
	      "ex1: IPv4, TTL 255, proto 240, total length 341");

	CHECK(pfsync_parse_header(pf, pflen, &h) == PFSYNC_OK, "ex1: header parses");
	CHECK(h.version == 5 && h.pad == 0 && h.len == 321, "ex1: version 5, len 321");
	CHECK(!memcmp(h.pfcksum, zero16, 16), "ex1: pfcksum zeros");

	CHECK(pfsync_iter_init(&it, pf, pflen, NULL) == PFSYNC_OK, "ex1: iterator starts");
	CHECK(pfsync_iter_next(&it, &action, &count, &msgs, &msglen) == 1, "ex1: subheader 1");
	CHECK(action == PFSYNC_ACT_INS_1400 && count == 1 && msglen == 277,
	      "ex1: INS_1400, count 1, 277 bytes");
	CHECK(msgs == pf + 0x18, "ex1: state at pfsync offset 0x18 (packet 0x2c)");
	CHECK(pfsync_state_decode(msgs, msglen, 1400, &s) == PFSYNC_OK, "ex1: state decodes");
	CHECK(s.version == 1400, "ex1: version recorded");
	check_common_state(&s, "ex1 state");

	CHECK(pfsync_state_encode(&s, 1400, out, sizeof(out)) == 277, "ex1: re-encode 277 bytes");
	CHECK_BYTES(out, ex1 + 0x2c, 277, "ex1: re-encoded state is byte for byte the vector");

	CHECK(pfsync_iter_next(&it, &action, &count, &msgs, &msglen) == 1, "ex1: subheader 2");
	CHECK(action == PFSYNC_ACT_DEL_C && count == 1 && msglen == 12, "ex1: DEL_C, count 1");
	CHECK(msgs == pf + 0x131, "ex1: DEL_C message at packet 0x145");
	CHECK(pfsync_ref_decode(msgs, msglen, &r) == PFSYNC_OK, "ex1: DEL_C decodes");
	CHECK(r.id == 0x1233 && r.creatorid == 0x0a0b0c0d, "ex1: DEL_C id 0x1233, creatorid");

	CHECK(pfsync_iter_next(&it, &action, &count, &msgs, &msglen) == 1, "ex1: subheader 3");
	CHECK(action == PFSYNC_ACT_EOF && count == 1 && msglen == 0, "ex1: EOF, count 1");
	CHECK(pfsync_iter_next(&it, &action, &count, &msgs, &msglen) == 0, "ex1: then the end");
	CHECK(it.trailing == 0 && it.err == PFSYNC_OK, "ex1: nothing left over");
	CHECK(pfsync_iter_next(&it, NULL, NULL, NULL, NULL) == 0, "ex1: the end stays the end");

	/* the writer rebuilds the pfsync part exactly */
	struct pfsync_writer w;

	CHECK(pfsync_writer_begin(&w, out, PFSYNC_DATA_MAX(1500), NULL) == PFSYNC_OK,
	      "ex1: writer begins");
	CHECK(pfsync_writer_add_state(&w, PFSYNC_ACT_INS_1400, &s) == PFSYNC_OK, "ex1: add INS");
	CHECK(pfsync_writer_add_ref(&w, PFSYNC_ACT_DEL_C, 0x1233, 0x0a0b0c0d) == PFSYNC_OK,
	      "ex1: add DEL_C");
	n = pfsync_writer_finish(&w);
	CHECK(n == 321, "ex1: writer length 321");
	CHECK_BYTES(out, pf, 321, "ex1: writer output is byte for byte the vector");

	n = pfsync_state_json(&s, json, sizeof(json));
	CHECK(n == strlen(EX1_JSON) && !strcmp(json, EX1_JSON), "ex1: STATE JSON");
	if (strcmp(json, EX1_JSON))
		printf("#   got  %s\n#   want %s\n", json, EX1_JSON);
}

static void test_ex2_ipv6(void)
{
	uint8_t pkt[361], head[80], tail[25];
	struct pfsync_iter it;
	struct pfsync_state s;
	uint8_t action;
	uint16_t count;
	const uint8_t *msgs;
	size_t msglen;

	CHECK(unhex(EX2_IP6, pkt, 40) == 40, "ex2: IPv6 header is 40 bytes");
	memcpy(pkt + 40, ex1 + 20, 321);
	CHECK(unhex(EX2_HEAD, head, sizeof(head)) == 80 && unhex(EX2_TAIL, tail, 25) == 25,
	      "ex2: dump lines load");
	CHECK_BYTES(pkt, head, 80, "ex2: first five dump lines match");
	CHECK_BYTES(pkt + 0x150, tail, 25, "ex2: last dump lines match (ends at 361)");
	CHECK(pkt[6] == PFSYNC_PROTO && pkt[7] == 255 && (pkt[4] << 8 | pkt[5]) == 321,
	      "ex2: next header 240, hop limit 255, payload 321");

	CHECK(pfsync_iter_init(&it, pkt + 40, 321, NULL) == PFSYNC_OK, "ex2: header parses");
	CHECK(pfsync_iter_next(&it, &action, &count, &msgs, &msglen) == 1 &&
		      action == PFSYNC_ACT_INS_1400 && count == 1,
	      "ex2: INS_1400");
	CHECK(msgs == pkt + 0x40, "ex2: state at +0x14 of example 1's offset");
	CHECK(pfsync_state_decode(msgs, msglen, 1400, &s) == PFSYNC_OK, "ex2: state decodes");
	check_common_state(&s, "ex2 state");
	CHECK(pfsync_iter_next(&it, &action, &count, &msgs, &msglen) == 1 &&
		      action == PFSYNC_ACT_DEL_C,
	      "ex2: DEL_C");
	CHECK(pfsync_iter_next(&it, &action, &count, &msgs, &msglen) == 1 &&
		      action == PFSYNC_ACT_EOF,
	      "ex2: EOF");
	CHECK(pfsync_iter_next(&it, &action, &count, &msgs, &msglen) == 0, "ex2: end");
}

static void test_ex3_bulk(void)
{
	uint8_t req[60], bus[40], out[64];
	struct pfsync_iter it;
	struct pfsync_hdr h;
	struct pfsync_ref r = {.id = 1, .creatorid = 1};
	struct pfsync_bus b;
	struct pfsync_writer w;
	uint8_t action;
	uint16_t count;
	const uint8_t *msgs;
	size_t msglen;

	CHECK(unhex(EX3_REQ, req, sizeof(req)) == 60, "ex3: request is 60 bytes");
	CHECK(unhex(EX3_BUS_END, bus, sizeof(bus)) == 40, "ex3: BUS END is 40 bytes");

	CHECK(pfsync_iter_init(&it, req + 20, 40, &h) == PFSYNC_OK && h.len == 40,
	      "ex3 request: version 5, len 40");
	CHECK(pfsync_iter_next(&it, &action, &count, &msgs, &msglen) == 1 &&
		      action == PFSYNC_ACT_UPD_REQ && count == 1 && msglen == 12,
	      "ex3 request: UPD_REQ, count 1");
	CHECK(pfsync_ref_decode(msgs, msglen, &r) == PFSYNC_OK && r.id == 0 && r.creatorid == 0,
	      "ex3 request: (0, 0) = send me everything");
	CHECK(pfsync_iter_next(&it, &action, &count, &msgs, &msglen) == 1 &&
		      action == PFSYNC_ACT_EOF && count == 1,
	      "ex3 request: EOF");
	CHECK(pfsync_iter_next(&it, &action, &count, &msgs, &msglen) == 0, "ex3 request: end");

	pfsync_writer_begin(&w, out, sizeof(out), NULL);
	CHECK(pfsync_writer_add_ref(&w, PFSYNC_ACT_UPD_REQ, 0, 0) == PFSYNC_OK,
	      "ex3 request: writer adds UPD_REQ");
	CHECK(pfsync_writer_finish(&w) == 40, "ex3 request: 40 bytes");
	CHECK_BYTES(out, req + 20, 40, "ex3 request: writer output is the vector");

	CHECK(pfsync_iter_init(&it, bus, 40, &h) == PFSYNC_OK && h.len == 40,
	      "ex3 BUS END: header");
	CHECK(pfsync_iter_next(&it, &action, &count, &msgs, &msglen) == 1 &&
		      action == PFSYNC_ACT_BUS && count == 1 && msglen == 12,
	      "ex3 BUS END: BUS, count 1");
	CHECK(pfsync_bus_decode(msgs, msglen, &b) == PFSYNC_OK, "ex3 BUS END: decodes");
	CHECK(b.creatorid == 0x0a0b0c0d && b.endtime == 3 && b.status == PFSYNC_BUS_END,
	      "ex3 BUS END: creatorid, endtime 3, status END");
	CHECK(pfsync_iter_next(&it, &action, &count, &msgs, &msglen) == 1 &&
		      action == PFSYNC_ACT_EOF,
	      "ex3 BUS END: EOF");

	pfsync_writer_begin(&w, out, sizeof(out), NULL);
	CHECK(pfsync_writer_add_bus(&w, &b) == PFSYNC_OK, "ex3 BUS END: writer adds BUS");
	CHECK(pfsync_writer_finish(&w) == 40, "ex3 BUS END: 40 bytes");
	CHECK_BYTES(out, bus, 40, "ex3 BUS END: writer output is the vector");

	/* START: the same but endtime 0 and status 1 */
	b.endtime = 0;
	b.status = PFSYNC_BUS_START;
	pfsync_writer_begin(&w, out, sizeof(out), NULL);
	pfsync_writer_add_bus(&w, &b);
	pfsync_writer_finish(&w);
	bus[0x1f] = 0;
	bus[0x20] = 1;
	CHECK_BYTES(out, bus, 40, "ex3 BUS START: endtime 0, status 1");
}

static void test_ex4_1500(void)
{
	uint8_t want[404], out[404], tail[52];
	size_t off;
	struct pfsync_state s, s15;
	struct pfsync_iter it;
	struct pfsync_hdr h;
	struct pfsync_writer w;
	uint8_t action;
	uint16_t count;
	const uint8_t *msgs;
	size_t msglen;

	/* assemble the 404 bytes the spec describes piece by piece */
	memset(want, 0, sizeof(want));
	off = unhex(EX4_HDR, want, 24);
	CHECK(off == 24, "ex4: header + subheader 24 bytes");
	memcpy(want + 0x18, ex1 + 0x2c, 232); /* common prefix */
	memcpy(want + 0x150, "vtnet0", 6);    /* orig_ifname; tagname, rt_ifname zero */
	CHECK(unhex(EX4_TAIL, tail, sizeof(tail)) == 52, "ex4: tail dump 52 bytes");
	memcpy(want + 0x160, tail, 52);

	CHECK(pfsync_iter_init(&it, want, sizeof(want), &h) == PFSYNC_OK && h.len == 404,
	      "ex4: len 404");
	CHECK(pfsync_iter_next(&it, &action, &count, &msgs, &msglen) == 1 &&
		      action == PFSYNC_ACT_INS_1500 && count == 1 && msglen == 360,
	      "ex4: INS_1500, count 1, 360 bytes");
	CHECK(pfsync_state_decode(msgs, msglen, 1500, &s15) == PFSYNC_OK, "ex4: state decodes");
	check_common_state(&s15, "ex4 state");
	CHECK(s15.version == 1500 && !strcmp(s15.orig_ifname, "vtnet0") && s15.tagname[0] == 0,
	      "ex4: orig_ifname vtnet0, no tag");
	CHECK(s15.key[0].af == 2 && s15.key[1].af == 2 && s15.rt_af == 0 && s15.key[0].proto == 6 &&
		      s15.key[1].proto == 6,
	      "ex4: wire_af, stack_af, rt_af, wire_proto, stack_proto");
	CHECK(pfsync_iter_next(&it, &action, &count, &msgs, &msglen) == 1 &&
		      action == PFSYNC_ACT_DEL_C,
	      "ex4: DEL_C");
	CHECK(pfsync_iter_next(&it, &action, &count, &msgs, &msglen) == 1 &&
		      action == PFSYNC_ACT_EOF,
	      "ex4: EOF");
	CHECK(pfsync_iter_next(&it, &action, &count, &msgs, &msglen) == 0, "ex4: end");

	CHECK(pfsync_state_encode(&s15, 1500, out, sizeof(out)) == 360, "ex4: re-encode 360");
	CHECK_BYTES(out, want + 0x18, 360, "ex4: re-encoded state is the vector");

	/* conversion: Example 1's 1400 state, plus the orig_ifname only 1500 has */
	s = ex1_state();
	CHECK(pfsync_state_fits(&s, 1500), "ex4: the 1400 state fits 1500");
	memcpy(s.orig_ifname, "vtnet0", 7);
	CHECK(pfsync_state_equal(&s, &s15), "ex4: 1400 state + orig_ifname equals the 1500 one");
	CHECK(!pfsync_state_fits(&s, 1400), "ex4: orig_ifname does not fit 1400");
	pfsync_writer_begin(&w, out, sizeof(out), NULL);
	CHECK(pfsync_writer_add_state(&w, PFSYNC_ACT_INS_1500, &s) == PFSYNC_OK,
	      "ex4: writer adds INS_1500");
	pfsync_writer_add_ref(&w, PFSYNC_ACT_DEL_C, 0x1233, 0x0a0b0c0d);
	CHECK(pfsync_writer_finish(&w) == 404, "ex4: writer length 404");
	CHECK_BYTES(out, want, 404, "ex4: 1400 -> 1500 conversion is byte for byte the vector");
}

static void test_ex5_upd_c(void)
{
	uint8_t pkt[128], out[128];
	struct pfsync_iter it;
	struct pfsync_upd_c u;
	struct pfsync_ref r;
	struct pfsync_writer w;
	struct pfsync_state s = ex1_state();
	uint8_t action;
	uint16_t count;
	const uint8_t *msgs;
	size_t msglen;
	char json[1024];

	CHECK(unhex(EX5, pkt, sizeof(pkt)) == 128, "ex5: 128 bytes");
	CHECK(pfsync_iter_init(&it, pkt, sizeof(pkt), NULL) == PFSYNC_OK, "ex5: header");
	CHECK(pfsync_iter_next(&it, &action, &count, &msgs, &msglen) == 1 &&
		      action == PFSYNC_ACT_UPD_C && count == 1 && msglen == 84,
	      "ex5: UPD_C, count 1, 84 bytes");
	CHECK(msgs == pkt + 0x18, "ex5: UPD_C at 0x18");
	CHECK(pfsync_upd_c_decode(msgs, msglen, &u) == PFSYNC_OK, "ex5: UPD_C decodes");
	CHECK(u.id == 0x1234 && u.creatorid == 0x0a0b0c0d, "ex5: id 0x1234, creatorid");
	CHECK(u.expire == 0 && u.timeout == 2, "ex5: expire 0 (as FreeBSD sends it), timeout 2");
	CHECK(u.src.seqlo == s.src.seqlo && u.src.seqhi == s.src.seqhi && u.src.max_win == 64240 &&
		      u.src.mss == 1460 && u.src.state == 4 && u.src.wscale == 0x87,
	      "ex5: src peer as in the state");
	CHECK(u.dst.seqlo == 0x55667788 && u.dst.seqhi == 0x5566f788 && u.dst.max_win == 65535 &&
		      u.dst.mss == 1400 && u.dst.state == 4 && u.dst.wscale == 0x88,
	      "ex5: dst peer as in the state");
	CHECK(pfsync_upd_c_check(&u) == PFSYNC_OK, "ex5: UPD_C passes FreeBSD's checks");
	CHECK(pfsync_iter_next(&it, &action, &count, &msgs, &msglen) == 1 &&
		      action == PFSYNC_ACT_INS_ACK && count == 1 && msglen == 12,
	      "ex5: INS_ACK, count 1");
	CHECK(msgs == pkt + 0x70, "ex5: INS_ACK at 0x70");
	CHECK(pfsync_ref_decode(msgs, msglen, &r) == PFSYNC_OK && r.id == 0xa1 &&
		      r.creatorid == 0x11223344,
	      "ex5: INS_ACK id 0xa1, creatorid 0x11223344");
	CHECK(pfsync_iter_next(&it, &action, &count, &msgs, &msglen) == 1 &&
		      action == PFSYNC_ACT_EOF,
	      "ex5: EOF at 0x7c");
	CHECK(pfsync_iter_next(&it, &action, &count, &msgs, &msglen) == 0, "ex5: end");

	/* an UPD_C built from the state, as pfsync_out_upd_c does */
	memset(&u, 0, sizeof(u));
	u.id = s.id;
	u.src = s.src;
	u.dst = s.dst;
	u.creatorid = s.creatorid;
	u.timeout = s.timeout;
	pfsync_writer_begin(&w, out, sizeof(out), NULL);
	CHECK(pfsync_writer_add_upd_c(&w, &u) == PFSYNC_OK, "ex5: writer adds UPD_C");
	CHECK(pfsync_writer_add_ref(&w, PFSYNC_ACT_INS_ACK, 0xa1, 0x11223344) == PFSYNC_OK,
	      "ex5: writer adds INS_ACK");
	CHECK(pfsync_writer_finish(&w) == 128, "ex5: 128 bytes");
	CHECK_BYTES(out, pkt, 128, "ex5: writer output is the vector");

	pfsync_upd_c_json(&u, json, sizeof(json));
	CHECK(!strcmp(json, "{\"id\": \"0x0000000000001234\", \"creatorid\": \"0x0a0b0c0d\", "
			    "\"timeout\": 2, \"expire\": 0, \"src\": {\"state\": 4, \"wscale\": "
			    "135, \"seqlo\": 287454020, \"seqhi\": 287486788, \"seqdiff\": 0, "
			    "\"max_win\": 64240, \"mss\": 1460}, \"dst\": {\"state\": 4, "
			    "\"wscale\": 136, \"seqlo\": 1432778632, \"seqhi\": 1432811400, "
			    "\"seqdiff\": 0, \"max_win\": 65535, \"mss\": 1400}}"),
	      "ex5: UPD_C JSON");
	pfsync_ref_json(&r, json, sizeof(json));
	CHECK(!strcmp(json, "{\"id\": \"0x00000000000000a1\", \"creatorid\": \"0x11223344\"}"),
	      "ex5: INS_ACK item JSON");
}

/* ---- formats ----------------------------------------------------------------------- */

/* Byte offsets each format leaves as padding or spare (always sent as 0). */
static bool is_pad(uint16_t version, size_t i)
{
	/* the peers' pad[6] at 26..31 of src (96) and dst (128) */
	if ((i >= 96 + 26 && i < 128) || (i >= 128 + 26 && i < 160))
		return true;
	switch (version) {
	case 1301:
		return i == 235 || i == 236;
	case 1400:
		return i == 238;
	case 1500:
		return i >= 357;
	}
	return false;
}

/* A message whose every non-pad byte is nonzero and different from its
 * neighbours: any field read from or written to the wrong place shows. */
static void pattern(uint16_t version, uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = is_pad(version, i) ? 0 : (uint8_t)(i * 7 + 3) | 1;
}

static void test_roundtrip_bytes(void)
{
	static const uint16_t versions[] = {1301, 1400, 1500};

	for (size_t v = 0; v < 3; v++) {
		uint16_t ver = versions[v];
		size_t len = pfsync_state_size(ver);
		uint8_t in[360], out[360];
		struct pfsync_state s, again;
		char what[64];

		snprintf(what, sizeof(what), "%u", ver);
		pattern(ver, in, len);
		CHECK(pfsync_state_decode(in, len, ver, &s) == PFSYNC_OK,
		      name("roundtrip decode", what));
		CHECK(pfsync_state_encode(&s, ver, out, len) == len,
		      name("roundtrip encode", what));
		CHECK_BYTES(out, in, len, name("encode(decode(bytes)) == bytes", what));
		CHECK(pfsync_state_decode(out, len, ver, &again) == PFSYNC_OK &&
			      pfsync_state_equal(&s, &again),
		      name("decode(encode(state)) == state", what));
		CHECK(pfsync_state_fits(&s, ver), name("a decoded state fits its format", what));
		CHECK(s.ifname[16] == 0 && s.rt_ifname[16] == 0 && s.tagname[64] == 0 &&
			      s.orig_ifname[16] == 0,
		      name("strings terminated even when the wire's are not", what));
		CHECK(pfsync_state_decode(in, len - 1, ver, &s) == PFSYNC_ERR_OVERRUN,
		      name("one byte short: overrun", what));
		CHECK(pfsync_state_encode(&s, ver, out, len - 1) == 0,
		      name("encode into a short buffer: 0", what));
	}
}

/* A state with every field set, for the field-level round trips. */
static struct pfsync_state busy_state(void)
{
	struct pfsync_state s;

	pfsync_state_defaults(&s);
	s.id = 0x0123456789abcdefull;
	s.creatorid = 0xdeadbeef;
	memcpy(s.ifname, "lagg0.10", 8);
	for (int k = 0; k < 2; k++) {
		s.key[k].af = PFSYNC_AF_INET6;
		s.key[k].proto = 17;
		for (int a = 0; a < 2; a++) {
			s.key[k].addr[a][0] = 0x20;
			s.key[k].addr[a][1] = 0x01;
			s.key[k].addr[a][2] = 0x0d;
			s.key[k].addr[a][3] = 0xb8;
			s.key[k].addr[a][15] = (uint8_t)(k * 2 + a + 1);
		}
		s.key[k].port[0] = (uint16_t)(53 + k);
		s.key[k].port[1] = (uint16_t)(40000 + k);
	}
	s.src = (struct pfsync_state_peer){0x0001, 64, 1, 0x01020304, 1, 2, 3, 4, 5, 2, 0x8e};
	s.dst = (struct pfsync_state_peer){0x0001, 63, 1, 0x05060708, 6, 7, 8, 9, 10, 2, 0x85};
	s.rt_addr[0] = 0xfe;
	s.rt_addr[1] = 0x80;
	s.rt_addr[15] = 1;
	s.rule = 7;
	s.anchor = 0xffffffff;
	s.nat_rule = 9;
	s.creation = 1000;
	s.expire = 50;
	s.packets[0] = 0x100000001ull;
	s.packets[1] = 2;
	s.bytes[0] = 0xffffffff00000000ull;
	s.bytes[1] = 4;
	s.direction = PFSYNC_DIR_IN;
	s.state_flags = 0x4212; /* DN_IS_PIPE | SETPRIO | ACK | SLOPPY */
	s.log = 3;
	s.timeout = 8;
	s.qid = 11;
	s.pqid = 12;
	s.dnpipe = 13;
	s.dnrpipe = 14;
	s.rtableid = 2;
	s.min_ttl = 15;
	s.set_tos = 0x10;
	s.max_mss = 1380;
	s.set_prio[0] = 3;
	s.set_prio[1] = 5;
	s.rt = 2;
	memcpy(s.rt_ifname, "igb1", 4);
	s.rt_af = PFSYNC_AF_INET6;
	memcpy(s.tagname, "sometag", 7);
	memcpy(s.orig_ifname, "igb0", 4);
	return s;
}

static void test_roundtrip_fields(void)
{
	struct pfsync_state s = busy_state(), back;
	uint8_t buf[360];

	/* 1500 carries everything but sync_flags/updates */
	CHECK(pfsync_state_fits(&s, 1500), "busy state fits 1500");
	CHECK(!pfsync_state_fits(&s, 1400), "busy state loses tag/orig_ifname/rt_af in 1400");
	CHECK(!pfsync_state_fits(&s, 1301), "busy state loses a lot in 1301");

	/* 1400 byte order and the unaligned u16 */
	pfsync_state_encode(&s, 1400, buf, sizeof(buf));
	CHECK(buf[232] == 28 && buf[233] == 17 && buf[234] == 1, "1400: af 28, proto, direction");
	CHECK(buf[235] == 0x42 && buf[236] == 0x12, "1400: state_flags big-endian at odd 235");
	CHECK(buf[237] == 3 && buf[238] == 0 && buf[239] == 8, "1400: log, spare, timeout");
	CHECK(buf[242] == 0 && buf[243] == 11 && buf[249] == 14, "1400: qid .. dnrpipe");
	CHECK(buf[250] == 0 && buf[253] == 2, "1400: rtableid big-endian");
	CHECK(buf[256] == 0x05 && buf[257] == 0x64, "1400: max_mss 1380 big-endian");
	CHECK(buf[258] == 3 && buf[259] == 5 && buf[260] == 2 && !memcmp(buf + 261, "igb1", 5),
	      "1400: set_prio, rt, rt_ifname");
	CHECK(!memcmp(buf, "\x01\x23\x45\x67\x89\xab\xcd\xef", 8), "id big-endian on the wire");
	CHECK(!memcmp(buf + 228, "\xde\xad\xbe\xef", 4), "creatorid big-endian on the wire");
	CHECK(!memcmp(buf + 196, "\x00\x00\x00\x01\x00\x00\x00\x01", 8),
	      "packets[0]: hi word, then lo word");
	CHECK(!memcmp(buf + 96, "\x00\x01\x40\x01\x01\x02\x03\x04", 8),
	      "src scrub: flags, ttl, flag, ts_mod");
	pfsync_state_decode(buf, 277, 1400, &back);
	CHECK(!strcmp(back.tagname, "") && !strcmp(back.orig_ifname, "") && back.rt_af == 0,
	      "1400 -> back: 1500-only fields are empty");
	CHECK(!strcmp(back.rt_ifname, "igb1") && back.rtableid == 2 && back.state_flags == 0x4212,
	      "1400 -> back: rt_ifname, rtableid, state_flags");

	/* 1301: one byte of flags, nothing after updates */
	pfsync_state_encode(&s, 1301, buf, sizeof(buf));
	CHECK(buf[235] == 0 && buf[236] == 0 && buf[237] == 3 && buf[238] == 0x12 && buf[239] == 8,
	      "1301: spare, log, state_flags low byte, timeout");
	pfsync_state_decode(buf, 242, 1301, &back);
	CHECK(back.state_flags == 0x12 && back.rtableid == -1 && back.rt == 0 &&
		      back.max_mss == 0 && back.qid == 0,
	      "1301 -> back: low flags byte, rtableid none, no rt/queues");

	/* 1500 tail offsets */
	s.key[PFSYNC_SK_STACK].af = PFSYNC_AF_INET; /* af-to: the stack side is IPv4 */
	s.key[PFSYNC_SK_STACK].proto = 1;
	pfsync_state_encode(&s, 1500, buf, sizeof(buf));
	CHECK(!memcmp(buf + 232, "sometag", 8) && !memcmp(buf + 296, "igb1", 5) &&
		      !memcmp(buf + 312, "igb0", 5),
	      "1500: tagname, rt_ifname, orig_ifname");
	CHECK(!memcmp(buf + 328, "\x00\x00\x00\x02\x42\x12\x00\x0b\x00\x0c\x00\x0d\x00\x0e\x05\x64",
		      16),
	      "1500: rtableid, state_flags, qid, pqid, dnpipe, dnrpipe, max_mss");
	CHECK(!memcmp(buf + 344, "\x1c\x02\x1c\x11\x01\x03\x08\x01\x02\x0f\x10\x03\x05\x00\x00\x00",
		      16),
	      "1500: wire_af, stack_af, rt_af, protos, log, timeout, direction, rt, ttl, tos, "
	      "prio, spare");
	pfsync_state_decode(buf, 360, 1500, &back);
	CHECK(pfsync_state_equal(&s, &back), "1500: af-to state survives");
	CHECK(!pfsync_state_fits(&s, 1400), "af-to state does not fit 1400");
	s.sync_flags = 0x04;
	CHECK(!pfsync_state_fits(&s, 1500), "sync_flags do not fit 1500");
	CHECK(pfsync_state_encode(&s, 1234, buf, sizeof(buf)) == 0, "unknown format: 0");
	CHECK(pfsync_state_decode(buf, sizeof(buf), 1234, &back) == PFSYNC_ERR_BADFMT,
	      "unknown format: BADFMT");
}

static void test_conversions(void)
{
	struct pfsync_state s = ex1_state(), back;
	uint8_t b1301[242], b1400[277];

	/* with no flags, no log and no 1400 extras, 1301 is a prefix of 1400 */
	CHECK(pfsync_state_fits(&s, 1301), "ex1 state fits 1301");
	CHECK(pfsync_state_encode(&s, 1301, b1301, sizeof(b1301)) == 242, "ex1 as 1301");
	CHECK_BYTES(b1301, ex1 + 0x2c, 242, "ex1 as 1301 = the first 242 bytes of its 1400 form");
	pfsync_state_decode(b1301, sizeof(b1301), 1301, &back);
	check_common_state(&back, "ex1 via 1301");
	CHECK(pfsync_state_encode(&back, 1400, b1400, sizeof(b1400)) == 277 &&
		      !memcmp(b1400, ex1 + 0x2c, 277),
	      "1400 -> 1301 -> 1400 is lossless for ex1");

	/* where 1301 and 1400 differ: the flags word and the log byte */
	s.state_flags = PFSYNC_PFSTATE_ACK | PFSYNC_PFSTATE_SLOPPY;
	s.log = 1;
	pfsync_state_encode(&s, 1301, b1301, sizeof(b1301));
	pfsync_state_encode(&s, 1400, b1400, sizeof(b1400));
	CHECK(b1301[237] == 1 && b1301[238] == 0x12, "1301: log at 237, flags byte at 238");
	CHECK(b1400[235] == 0x00 && b1400[236] == 0x12 && b1400[237] == 1,
	      "1400: flags u16 at 235, log at 237");
	CHECK(pfsync_state_fits(&s, 1301), "low-byte flags fit 1301");
	s.state_flags = 0x4000;
	CHECK(!pfsync_state_fits(&s, 1301), "DN_IS_PIPE does not fit 1301");
	s.state_flags = 0;
	s.rt = 2;
	memcpy(s.rt_ifname, "igb1", 4);
	CHECK(!pfsync_state_fits(&s, 1301) && pfsync_state_fits(&s, 1400) &&
		      pfsync_state_fits(&s, 1500),
	      "route-to: fits 1400 and 1500, not 1301");
}

/* ---- malformed packets --------------------------------------------------------------- */

/* Run the iterator to its end; returns the final result (0 or -err) and the
 * number of subheaders delivered. */
static int walk(const uint8_t *p, size_t len, int *nsub, struct pfsync_iter *it)
{
	uint8_t action;
	uint16_t count;
	const uint8_t *msgs;
	size_t msglen;
	int r;

	*nsub = 0;
	pfsync_iter_init(it, p, len, NULL);
	while ((r = pfsync_iter_next(it, &action, &count, &msgs, &msglen)) == 1) {
		/* whatever is delivered lies inside the buffer */
		if (msgs < p || (size_t)(msgs - p) + (size_t)count * msglen > len)
			return 99;
		(*nsub)++;
	}
	return r;
}

static size_t build(uint8_t *buf, const char *hex)
{
	return unhex(hex, buf, 512);
}

#define HDR(len) "05 00 " len " 00000000000000000000000000000000"

static void test_malformed(void)
{
	uint8_t buf[512] = {0};
	struct pfsync_hdr h;
	struct pfsync_iter it;
	size_t n;
	int nsub, r;

	/* header */
	CHECK(pfsync_parse_header(buf, 0, &h) == PFSYNC_ERR_TRUNC, "empty: truncated (hdrops)");
	n = build(buf, HDR("00 18") "0c 00 00 01");
	CHECK(pfsync_parse_header(buf, 19, &h) == PFSYNC_ERR_TRUNC, "19 bytes: truncated");
	CHECK(pfsync_iter_init(&it, buf, 19, NULL) == PFSYNC_ERR_TRUNC &&
		      pfsync_iter_next(&it, NULL, NULL, NULL, NULL) == -PFSYNC_ERR_TRUNC,
	      "19 bytes: the iterator reports it too");
	CHECK(pfsync_parse_header(buf, n, &h) == PFSYNC_OK && h.len == 24, "header + EOF is fine");
	buf[0] = 6;
	CHECK(pfsync_parse_header(buf, n, &h) == PFSYNC_ERR_BADVER && h.version == 6,
	      "version 6 (OpenBSD): badver, header still shown");
	buf[0] = 4;
	CHECK(pfsync_parse_header(buf, n, &h) == PFSYNC_ERR_BADVER, "version 4: badver");
	buf[0] = 5;
	buf[3] = 25;
	CHECK(pfsync_parse_header(buf, n, &h) == PFSYNC_ERR_BADLEN,
	      "len one more than the packet: badlen");
	buf[2] = 0xff;
	buf[3] = 0xff;
	CHECK(pfsync_parse_header(buf, n, &h) == PFSYNC_ERR_BADLEN, "len 65535: badlen");
	buf[2] = 0;
	buf[3] = 19;
	CHECK(pfsync_parse_header(buf, n, &h) == PFSYNC_ERR_BADLEN, "len 19 < header: badlen");
	buf[3] = 0;
	CHECK(pfsync_parse_header(buf, n, &h) == PFSYNC_ERR_BADLEN, "len 0: badlen");

	/* len exactly the header: nothing to do, like FreeBSD */
	n = build(buf, HDR("00 14"));
	CHECK(walk(buf, n, &nsub, &it) == 0 && nsub == 0, "header only: no subheaders, no error");

	/* len smaller than the packet, no EOF: the rest is ignored (FreeBSD) */
	n = build(buf, HDR("00 24") "05 00 00 01 000000000000000000000000 deadbeef");
	r = walk(buf, n, &nsub, &it);
	CHECK(r == 0 && nsub == 1 && it.trailing == 4, "bytes beyond len without EOF: ignored");

	/* 1-3 bytes inside len that cannot be a subheader: ignored (FreeBSD) */
	n = build(buf, HDR("00 17") "0c 00 00");
	r = walk(buf, n, &nsub, &it);
	CHECK(r == 0 && nsub == 0 && it.trailing == 3, "3 stray bytes inside len: ignored");

	/* EOF then more bytes, inside len or beyond it: badlen (pfsync_in_eof) */
	n = build(buf, HDR("00 1c") "0c 00 00 01 00 00 00 00");
	r = walk(buf, n, &nsub, &it);
	CHECK(r == -PFSYNC_ERR_BADEOF && nsub == 1 && it.trailing == 4,
	      "bytes after EOF inside len: badeof, EOF itself delivered");
	n = build(buf, HDR("00 18") "0c 00 00 01 ff");
	r = walk(buf, n, &nsub, &it);
	CHECK(r == -PFSYNC_ERR_BADEOF && nsub == 1 && it.trailing == 1,
	      "a byte after EOF beyond len: badeof");
	CHECK(!strcmp(pfsync_err_counter(PFSYNC_ERR_BADEOF), "badlen"),
	      "badeof is counted as badlen");

	/* messages must fit in len, even when the buffer holds them */
	n = build(buf, HDR("00 22") "05 00 00 01 000000000000000000000000 0c 00 00 01");
	r = walk(buf, n, &nsub, &it);
	CHECK(r == -PFSYNC_ERR_OVERRUN && nsub == 0 && it.action == PFSYNC_ACT_UPD_REQ,
	      "UPD_REQ cut by len: overrun");

	/* counts that do not fit */
	n = build(buf, HDR("00 18") "0f 00 ff ff");
	r = walk(buf, n, &nsub, &it);
	CHECK(r == -PFSYNC_ERR_OVERRUN && it.count == 0xffff,
	      "INS_1500 count 65535 in 24 bytes: overrun, no overread");
	n = build(buf, HDR("00 24") "07 00 00 02 000000000000000000000000");
	r = walk(buf, n, &nsub, &it);
	CHECK(r == -PFSYNC_ERR_OVERRUN, "DEL_C count 2 with one message: overrun");
	CHECK(pfsync_iter_next(&it, NULL, NULL, NULL, NULL) == -PFSYNC_ERR_OVERRUN,
	      "errors are sticky");
	CHECK(!strcmp(pfsync_err_counter(PFSYNC_ERR_OVERRUN), "badlen"), "overrun counts badlen");

	/* unknown and refused actions */
	n = build(buf, HDR("00 1c") "11 00 00 01 0c 00 00 01");
	r = walk(buf, n, &nsub, &it);
	CHECK(r == -PFSYNC_ERR_BADACT && it.action == 17, "action 17: badact");
	n = build(buf, HDR("00 1c") "ff 00 00 00 0c 00 00 01");
	r = walk(buf, n, &nsub, &it);
	CHECK(r == -PFSYNC_ERR_BADACT && it.action == 0xff, "action 255: badact");
	for (uint8_t a = PFSYNC_ACT_DEL; a <= PFSYNC_ACT_DEL_F; a++) {
		if (a == PFSYNC_ACT_DEL_C)
			continue;
		n = build(buf, HDR("00 2c") "05 00 00 01 000000000000000000000000"
					    "00 00 00 00 0c 00 00 01");
		buf[36] = a; /* the second subheader */
		r = walk(buf, n, &nsub, &it);
		CHECK(r == -PFSYNC_ERR_BADACT && nsub == 1 && it.action == a,
		      name("refused action ends the packet after what came before",
			   pfsync_action_name(a)));
	}

	/* zero-length messages: count 0 is legal and consumes nothing */
	n = build(buf, HDR("00 24") "04 00 00 00 0f 00 00 00 02 00 00 00 0c 00 00 00");
	r = walk(buf, n, &nsub, &it);
	CHECK(r == 0 && nsub == 4, "count 0 subheaders (and EOF count 0) are fine");

	/* TDB: returned with its size so the caller can skip it */
	{
		uint8_t action;
		uint16_t count;
		const uint8_t *msgs;
		size_t msglen;

		memset(buf, 0, sizeof(buf));
		build(buf, HDR("00 7c") "0b 00 00 02");
		buf[24 + 96] = PFSYNC_ACT_EOF;
		buf[24 + 99] = 1;
		pfsync_iter_init(&it, buf, 0x7c, NULL);
		CHECK(pfsync_iter_next(&it, &action, &count, &msgs, &msglen) == 1 &&
			      action == PFSYNC_ACT_TDB && count == 2 && msglen == 48 &&
			      msgs == buf + 24,
		      "TDB x2: skipped by 2 x 48 bytes");
		CHECK(pfsync_iter_next(&it, &action, &count, &msgs, &msglen) == 1 &&
			      action == PFSYNC_ACT_EOF,
		      "TDB: EOF found after it");
		CHECK(pfsync_iter_next(&it, &action, &count, &msgs, &msglen) == 0, "TDB: end");
	}

	/* small decoders refuse short input */
	{
		struct pfsync_ref r1;
		struct pfsync_upd_c u;
		struct pfsync_bus b;
		struct pfsync_clr c;

		memset(buf, 0, sizeof(buf));
		CHECK(pfsync_ref_decode(buf, 11, &r1) == PFSYNC_ERR_OVERRUN, "ref: 11 bytes");
		CHECK(pfsync_upd_c_decode(buf, 83, &u) == PFSYNC_ERR_OVERRUN, "upd_c: 83 bytes");
		CHECK(pfsync_bus_decode(buf, 11, &b) == PFSYNC_ERR_OVERRUN, "bus: 11 bytes");
		CHECK(pfsync_clr_decode(buf, 19, &c) == PFSYNC_ERR_OVERRUN, "clr: 19 bytes");
	}
}

static void test_values(void)
{
	struct pfsync_state s = ex1_state();
	struct pfsync_upd_c u = {.timeout = 2};

	s.timeout = 24;
	CHECK(pfsync_state_check(&s, true) == PFSYNC_OK, "timeout 24 (SCTP_CLOSED) is valid");
	s.timeout = 25;
	CHECK(pfsync_state_check(&s, false) == PFSYNC_ERR_BADVAL, "timeout 25: badval");
	s.timeout = 2;
	s.src.state = 12;
	CHECK(pfsync_state_check(&s, false) == PFSYNC_OK, "peer state 12 (PROXY_DST) is valid");
	s.dst.state = 13;
	CHECK(pfsync_state_check(&s, false) == PFSYNC_ERR_BADVAL, "peer state 13: badval");
	s.dst.state = 4;
	s.direction = 3;
	CHECK(pfsync_state_check(&s, false) == PFSYNC_OK, "direction 3 passes UPD checks");
	CHECK(pfsync_state_check(&s, true) == PFSYNC_ERR_BADVAL, "direction 3 fails INS");
	s.direction = 1;
	s.key[0].af = 10; /* Linux's AF_INET6 sent by mistake */
	CHECK(pfsync_state_check(&s, true) == PFSYNC_ERR_BADVAL, "af 10 fails INS");
	s.key[0].af = PFSYNC_AF_INET6;
	CHECK(pfsync_state_check(&s, true) == PFSYNC_OK, "af 28 passes INS");
	CHECK(pfsync_upd_c_check(&u) == PFSYNC_OK, "UPD_C fine");
	u.src.state = 13;
	CHECK(pfsync_upd_c_check(&u) == PFSYNC_ERR_BADVAL, "UPD_C peer state 13: badval");
	u.src.state = 0;
	u.timeout = 200;
	CHECK(pfsync_upd_c_check(&u) == PFSYNC_ERR_BADVAL, "UPD_C timeout 200: badval");
}

/* ---- writer ------------------------------------------------------------------------ */

static void test_writer(void)
{
	uint8_t buf[1500];
	struct pfsync_writer w;
	struct pfsync_state s = ex1_state();
	struct pfsync_iter it;
	uint8_t action;
	uint16_t count;
	const uint8_t *msgs;
	size_t msglen, n;
	int i;
	static const uint8_t ck[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

	/* MTU batching: 1500 - 40 = 1460 bytes hold 5 states of 277 */
	CHECK(PFSYNC_DATA_MAX(1500) == 1460, "data max for MTU 1500 is 1460");
	pfsync_writer_begin(&w, buf, PFSYNC_DATA_MAX(1500), ck);
	for (i = 0; i < 6; i++)
		if (pfsync_writer_add_state(&w, PFSYNC_ACT_UPD_1400, &s) != PFSYNC_OK)
			break;
	CHECK(i == 5, "MTU 1500: 5 UPD_1400 fit, the 6th is full");
	CHECK(w.nmsgs == 5, "writer counted 5 messages");
	CHECK(pfsync_writer_add_ref(&w, PFSYNC_ACT_DEL_C, 1, 2) == PFSYNC_OK,
	      "but a 12-byte DEL_C still fits");
	n = pfsync_writer_finish(&w);
	CHECK(n == 20 + 4 + 5 * 277 + 4 + 12 + 4 && n <= 1460, "length 1433");
	CHECK(!memcmp(buf + 4, ck, 16), "pfcksum copied into the header");
	pfsync_iter_init(&it, buf, n, NULL);
	CHECK(pfsync_iter_next(&it, &action, &count, &msgs, &msglen) == 1 &&
		      action == PFSYNC_ACT_UPD_1400 && count == 5,
	      "one subheader, count 5");
	CHECK(pfsync_iter_next(&it, &action, &count, &msgs, &msglen) == 1 &&
		      action == PFSYNC_ACT_DEL_C && count == 1,
	      "then DEL_C");
	CHECK(pfsync_iter_next(&it, &action, &count, &msgs, &msglen) == 1 &&
		      action == PFSYNC_ACT_EOF && count == 1,
	      "then EOF count 1");
	CHECK(pfsync_iter_next(&it, &action, &count, &msgs, &msglen) == 0, "and the end");
	CHECK(pfsync_writer_add_ref(&w, PFSYNC_ACT_DEL_C, 1, 2) == PFSYNC_ERR_FULL &&
		      pfsync_writer_finish(&w) == 0,
	      "a finished writer takes nothing more");

	/* action changes open subheaders; 1301 gets one subheader per state */
	pfsync_writer_begin(&w, buf, sizeof(buf), NULL);
	pfsync_writer_add_ref(&w, PFSYNC_ACT_DEL_C, 1, 1);
	pfsync_writer_add_ref(&w, PFSYNC_ACT_DEL_C, 2, 1);
	pfsync_writer_add_ref(&w, PFSYNC_ACT_UPD_REQ, 3, 1);
	pfsync_writer_add_ref(&w, PFSYNC_ACT_DEL_C, 4, 1);
	pfsync_writer_add_state(&w, PFSYNC_ACT_UPD_1301, &s);
	pfsync_writer_add_state(&w, PFSYNC_ACT_UPD_1301, &s);
	n = pfsync_writer_finish(&w);
	{
		static const uint8_t want_a[] = {7, 5, 7, 3, 3, 12};
		static const uint16_t want_c[] = {2, 1, 1, 1, 1, 1};
		int k = 0;
		bool ok = true;

		pfsync_iter_init(&it, buf, n, NULL);
		while (pfsync_iter_next(&it, &action, &count, &msgs, &msglen) == 1) {
			ok = ok && k < 6 && action == want_a[k] && count == want_c[k];
			k++;
		}
		CHECK(ok && k == 6 && it.err == PFSYNC_OK,
		      "DEL_C count 2, UPD_REQ, DEL_C, UPD_1301, UPD_1301 (one subheader each), "
		      "EOF");
	}
	CHECK(n == 20 + 4 + 24 + 4 + 12 + 4 + 12 + 2 * (4 + 242) + 4, "and their length");

	/* exact fit */
	pfsync_writer_begin(&w, buf, 40, NULL);
	CHECK(pfsync_writer_add_ref(&w, PFSYNC_ACT_INS_ACK, 1, 1) == PFSYNC_OK,
	      "40 bytes hold one INS_ACK and EOF");
	CHECK(pfsync_writer_add_ref(&w, PFSYNC_ACT_INS_ACK, 2, 1) == PFSYNC_ERR_FULL,
	      "not a second one");
	CHECK(pfsync_writer_finish(&w) == 40, "exactly 40");
	CHECK(pfsync_writer_begin(&w, buf, 23, NULL) == PFSYNC_ERR_FULL,
	      "23 bytes cannot hold header + EOF");
	CHECK(pfsync_writer_add(&w, PFSYNC_ACT_DEL_C) == NULL, "and take nothing");
	CHECK(pfsync_writer_begin(&w, buf, 24, NULL) == PFSYNC_OK && pfsync_writer_finish(&w) == 24,
	      "24 bytes: an empty packet (header + EOF)");
	CHECK(buf[2] == 0 && buf[3] == 24 && buf[20] == 12 && buf[23] == 1,
	      "empty packet: len 24, EOF count 1");

	/* what the writer refuses */
	pfsync_writer_begin(&w, buf, sizeof(buf), NULL);
	CHECK(pfsync_writer_add(&w, PFSYNC_ACT_EOF) == NULL, "EOF is finish()'s");
	CHECK(pfsync_writer_add(&w, PFSYNC_ACT_TDB) == NULL, "TDB is never sent");
	CHECK(pfsync_writer_add(&w, PFSYNC_ACT_INS_F) == NULL, "INS_F has no message");
	CHECK(pfsync_writer_add(&w, 99) == NULL, "unknown action");
	CHECK(pfsync_writer_add_state(&w, PFSYNC_ACT_DEL_C, &s) == PFSYNC_ERR_BADACT,
	      "add_state with DEL_C: badact");
	CHECK(pfsync_writer_add_ref(&w, PFSYNC_ACT_INS_1400, 1, 1) == PFSYNC_ERR_BADACT,
	      "add_ref with INS_1400: badact");
	CHECK(w.len == 20 && w.nmsgs == 0, "refusals leave the packet untouched");

	/* CLR round trip */
	{
		struct pfsync_clr c = {.creatorid = 0x0a0b0c0d}, back;
		char json[128];

		memcpy(c.ifname, "vtnet1", 6);
		pfsync_writer_add_clr(&w, &c);
		n = pfsync_writer_finish(&w);
		pfsync_iter_init(&it, buf, n, NULL);
		CHECK(pfsync_iter_next(&it, &action, &count, &msgs, &msglen) == 1 &&
			      action == PFSYNC_ACT_CLR && msglen == 20 &&
			      pfsync_clr_decode(msgs, msglen, &back) == PFSYNC_OK &&
			      !strcmp(back.ifname, "vtnet1") && back.creatorid == 0x0a0b0c0d,
		      "CLR round trip");
		pfsync_clr_json(&back, json, sizeof(json));
		CHECK(!strcmp(json, "{\"ifname\": \"vtnet1\", \"creatorid\": \"0x0a0b0c0d\"}"),
		      "CLR JSON");
	}
}

/* ---- names and JSON ---------------------------------------------------------------- */

/* rollback: a group that does not fit leaves the packet exactly as before it */
static void test_writer_rollback(void)
{
	uint8_t a[1500], b[1500];
	struct pfsync_writer w, ref, mark;
	struct pfsync_state s;
	pfsync_state_defaults(&s);
	s.creatorid = 1;
	s.key[0].af = s.key[1].af = PFSYNC_AF_INET;
	s.key[0].proto = s.key[1].proto = 17;
	size_t cap = PFSYNC_DATA_MAX(1500);
	pfsync_writer_begin(&w, a, cap, NULL);
	pfsync_writer_begin(&ref, b, cap, NULL);
	int added = 0;
	for (;;) {
		mark = w;
		s.id = (uint64_t)added + 1;
		bool one = pfsync_writer_add_state(&w, PFSYNC_ACT_INS_1400, &s) == PFSYNC_OK;
		s.id = (uint64_t)added + 2;
		bool two = one && pfsync_writer_add_state(&w, PFSYNC_ACT_INS_1400, &s) == PFSYNC_OK;
		if (!two) {
			CHECK(one, "rollback: the group's first state fit and the second did not");
			pfsync_writer_rollback(&w, &mark);
			break;
		}
		s.id = (uint64_t)added + 1;
		pfsync_writer_add_state(&ref, PFSYNC_ACT_INS_1400, &s);
		s.id = (uint64_t)added + 2;
		pfsync_writer_add_state(&ref, PFSYNC_ACT_INS_1400, &s);
		added += 2;
	}
	CHECK(added >= 2 && added % 2 == 0,
	      "rollback: whole pairs of 1400 states fit in 1500 bytes");
	size_t n = pfsync_writer_finish(&w);
	size_t m = pfsync_writer_finish(&ref);
	CHECK(n == m, "rollback: same length as a packet that never had the half pair");
	CHECK(n == m && memcmp(a, b, n) == 0, "rollback: byte for byte the same packet");
	struct pfsync_iter it;
	uint8_t act;
	uint16_t count;
	const uint8_t *msgs;
	size_t msglen;
	CHECK(pfsync_iter_init(&it, a, n, NULL) == PFSYNC_OK, "rollback: the packet parses");
	CHECK(pfsync_iter_next(&it, &act, &count, &msgs, &msglen) == 1 &&
		      act == PFSYNC_ACT_INS_1400 && count == added,
	      "rollback: one INS_1400 subheader counting only the whole pairs");
}

static void test_names(void)
{
	static const char *const want[] = {
		"CLR", "INS_1301", "INS_ACK",  "UPD_1301", "UPD_C",    "UPD_REQ",
		"DEL", "DEL_C",	   "INS_F",    "DEL_F",	   "BUS",      "TDB",
		"EOF", "INS_1400", "UPD_1400", "INS_1500", "UPD_1500",
	};
	static const int lens[] = {20, 242, 12, 242, 84,  12,  -1,  12, -1,
				   -1, 12,  48, 0,   277, 277, 360, 360};
	bool ok = true, lok = true;

	for (int a = 0; a < 17; a++) {
		ok = ok && !strcmp(pfsync_action_name((uint8_t)a), want[a]);
		lok = lok && pfsync_action_msglen((uint8_t)a) == lens[a];
	}
	CHECK(ok, "action names as CONTRACT section 5 lists them");
	CHECK(lok, "message sizes per action (spec 2.4)");
	CHECK(!strcmp(pfsync_action_name(17), "UNKNOWN") && pfsync_action_msglen(17) == -1,
	      "17 is unknown");
	CHECK(pfsync_action_version(PFSYNC_ACT_INS_1301) == 1301 &&
		      pfsync_action_version(PFSYNC_ACT_UPD_1400) == 1400 &&
		      pfsync_action_version(PFSYNC_ACT_UPD_1500) == 1500 &&
		      pfsync_action_version(PFSYNC_ACT_UPD_C) == 0,
	      "format version of an action");
	CHECK(pfsync_action_ins(1400) == 13 && pfsync_action_upd(1400) == 14 &&
		      pfsync_action_ins(1301) == 1 && pfsync_action_upd(1500) == 16 &&
		      pfsync_action_ins(1) == 0xff,
	      "INS/UPD action of a format");
	CHECK(pfsync_state_size(1301) == 242 && pfsync_state_size(1400) == 277 &&
		      pfsync_state_size(1500) == 360 && pfsync_state_size(0) == 0,
	      "state sizes");

	for (int e = 0; e < PFSYNC_ERR__COUNT; e++) {
		const char *n = pfsync_err_name((enum pfsync_err)e);

		for (int f = 0; f < e; f++)
			ok = ok && strcmp(n, pfsync_err_name((enum pfsync_err)f)) != 0;
		ok = ok && strcmp(pfsync_err_explain((enum pfsync_err)e), "unknown error") != 0;
		ok = ok && (pfsync_err_counter((enum pfsync_err)e) != NULL) ==
				   (e != PFSYNC_OK && e != PFSYNC_ERR_FULL);
	}
	CHECK(ok, "error names unique, each explained, counters where FreeBSD has one");
	CHECK(!strcmp(pfsync_err_name(PFSYNC_ERR_BADLEN), "badlen") &&
		      !strcmp(pfsync_err_name(PFSYNC_ERR_BADVER), "badver") &&
		      !strcmp(pfsync_err_name(PFSYNC_ERR_BADACT), "badact") &&
		      !strcmp(pfsync_err_name(PFSYNC_ERR_TRUNC), "hdrops"),
	      "names after pfsyncstats");
}

static void test_json(void)
{
	struct pfsync_state s = ex1_state();
	char json[2048], small[16];
	size_t need, n;
	struct pfsync_bus b = {.creatorid = 0x0a0b0c0d, .endtime = 3, .status = 2};

	need = pfsync_state_json(&s, NULL, 0);
	CHECK(need == strlen(EX1_JSON), "JSON: NULL buffer returns the length needed");
	n = pfsync_state_json(&s, small, sizeof(small));
	CHECK(n == need && strlen(small) == 15 && !strncmp(small, EX1_JSON, 15),
	      "JSON: truncated like snprintf, NUL terminated");

	/* escaping: whatever the packet holds, the output is JSON */
	memcpy(s.ifname, "a\"b\\c\n\xff", 8);
	pfsync_state_json(&s, json, sizeof(json));
	CHECK(strstr(json, "\"ifname\": \"a\\\"b\\\\c\\n\\u00ff\"") != NULL,
	      "JSON: ifname escaped");
	memset(s.ifname, 'x', 16); /* no NUL on the wire */
	pfsync_state_json(&s, json, sizeof(json));
	CHECK(strstr(json, "\"ifname\": \"xxxxxxxxxxxxxxxx\"") != NULL,
	      "JSON: a 16-byte ifname stops at 16");

	/* IPv6, direction in, route-to, tag, af-to */
	s = busy_state();
	s.key[1].af = PFSYNC_AF_INET;
	s.key[1].proto = 1;
	memset(s.key[1].addr, 0, sizeof(s.key[1].addr));
	s.key[1].addr[0][0] = 10;
	s.key[1].addr[0][3] = 1;
	s.key[1].addr[1][0] = 10;
	s.key[1].addr[1][3] = 2;
	pfsync_state_json(&s, json, sizeof(json));
	CHECK(strstr(json, "\"af\": \"inet6\", \"proto\": 17, \"direction\": \"in\"") != NULL,
	      "JSON: inet6, in");
	CHECK(strstr(json, "\"wire\": {\"addr\": [\"2001:db8::1\", \"2001:db8::2\"], \"port\": "
			   "[53, 40000]}") != NULL,
	      "JSON: IPv6 wire key");
	CHECK(strstr(json, "\"stack\": {\"af\": \"inet\", \"proto\": 1, \"addr\": [\"10.0.0.1\", "
			   "\"10.0.0.2\"], \"port\": [54, 40001]}") != NULL,
	      "JSON: af-to stack key names its own family");
	CHECK(strstr(json, "\"rt\": 2, \"rt_addr\": \"fe80::1\", \"rt_ifname\": \"igb1\", "
			   "\"tagname\": \"sometag\", \"orig_ifname\": \"igb0\"}") != NULL,
	      "JSON: route-to, tag, orig_ifname");
	CHECK(strstr(json, "\"scrub\": {\"flag\": 1, \"flags\": 1, \"ttl\": 64, \"ts_mod\": "
			   "16909060}") != NULL,
	      "JSON: scrub data when present");
	CHECK(strstr(json, "\"packets\": [4294967297, 2]") != NULL, "JSON: 64-bit counters");
	s.key[0].af = 7;
	s.direction = 0;
	pfsync_state_json(&s, json, sizeof(json));
	CHECK(strstr(json, "\"af\": 7, \"proto\": 17, \"direction\": 0") != NULL,
	      "JSON: unknown af and direction as numbers");
	CHECK(strstr(json, "\"addr\": [\"20010db8000000000000000000000001\"") != NULL,
	      "JSON: unknown af's addresses in hex");

	pfsync_bus_json(&b, json, sizeof(json));
	CHECK(!strcmp(json, "{\"creatorid\": \"0x0a0b0c0d\", \"status\": \"end\", \"endtime\": 3}"),
	      "BUS JSON");
	b.status = 9;
	pfsync_bus_json(&b, json, sizeof(json));
	CHECK(strstr(json, "\"status\": 9") != NULL, "BUS JSON: unknown status as a number");
}

static void test_defaults(void)
{
	struct pfsync_state s;

	pfsync_state_defaults(&s);
	CHECK(!strcmp(s.ifname, "all") && s.rule == 0xffffffffu && s.anchor == 0xffffffffu &&
		      s.nat_rule == 0xffffffffu && s.rtableid == -1 && s.rt == 0,
	      "defaults: all, rules -1, rtableid -1");
	CHECK(pfsync_state_fits(&s, 1301) && pfsync_state_fits(&s, 1400) &&
		      pfsync_state_fits(&s, 1500),
	      "defaults fit every format");
}

int main(void)
{
	load_ex1();
	test_ex1();
	test_ex2_ipv6();
	test_ex3_bulk();
	test_ex4_1500();
	test_ex5_upd_c();
	test_roundtrip_bytes();
	test_roundtrip_fields();
	test_conversions();
	test_malformed();
	test_values();
	test_writer();
	test_writer_rollback();
	test_names();
	test_json();
	test_defaults();
	return tap_done();
}

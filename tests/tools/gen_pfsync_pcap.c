/*
 * tests/tools/gen_pfsync_pcap.c - pcap files of pfsync packets for
 * test_wireshark.sh: the test vectors of shared/specs/pfsync.md section 7 and
 * packets made by proto/pfsync.c's writer, covering every action, the three
 * state formats (1301, 1400, 1500), IPv4 and IPv6. The writer's output is
 * checked byte for byte against the spec's vectors before anything is written,
 * so a wrong writer cannot make the dissector's test pass against itself.
 *
 *   gen_pfsync_pcap DIR
 *
 * DIR/valid.pcap  Ethernet; well-formed packets: no decoder may report an error
 * DIR/bad.pcap    Ethernet; each packet is malformed in one way (bad_packets())
 * DIR/warn.pcap   Ethernet; well-formed, but each has one thing FreeBSD would
 *                 not take or a decoder notes (warn_packets())
 * DIR/fuzz.pcap   Ethernet; valid packets cut short, with bytes flipped and
 *                 counts changed (a fixed seed, so the file is always the same)
 */
#include "proto/carp.h"
#include "proto/pfsync.h"

#include <arpa/inet.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BASE_TIME 1700049600 /* 2023-11-15 12:00:00 UTC */
#define MAX_FRAME 1600
#define DATA_MAX  PFSYNC_DATA_MAX(1500)

struct frame {
	uint8_t b[MAX_FRAME];
	size_t len;	/* bytes stored */
	size_t wirelen; /* bytes on the wire (> len: cut by the capture's snaplen) */
};

static void fail(const char *what)
{
	fprintf(stderr, "gen_pfsync_pcap: %s\n", what);
	exit(1);
}

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = 0;
	unsigned v;

	for (const char *p = hex; *p;) {
		if (*p == ' ' || *p == '\n') {
			p++;
			continue;
		}
		if (n >= cap || sscanf(p, "%2x", &v) != 1)
			fail("bad hex in a vector");
		out[n++] = (uint8_t)v;
		p += 2;
	}
	return n;
}

static void same(const uint8_t *got, const uint8_t *want, size_t n, const char *what)
{
	if (memcmp(got, want, n) != 0) {
		fprintf(stderr, "gen_pfsync_pcap: %s differs from the spec's bytes\n", what);
		exit(1);
	}
}

/* ---- the spec's vectors (section 7) ---------------------------------------------- */

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

/* 7.3: the IPv6 header, and the tail of the dump */
static const char EX2_IP6[] = "60 00 00 00 01 41 f0 ff fe 80 00 00 00 00 00 00"
			      "00 00 00 00 00 00 00 0a ff 12 00 00 00 00 00 00"
			      "00 00 00 00 00 00 00 f0";
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

/* ---- states ------------------------------------------------------------------------ */

static void v4addr(uint8_t out[16], const char *s)
{
	memset(out, 0, 16);
	if (inet_pton(AF_INET, s, out) != 1)
		fail("bad IPv4 literal");
}

static void v6addr(uint8_t out[16], const char *s)
{
	if (inet_pton(AF_INET6, s, out) != 1)
		fail("bad IPv6 literal");
}

/* The state of section 7.1: the WAN side of a NATed TCP connection. */
static struct pfsync_state spec_state(void)
{
	struct pfsync_state s;

	pfsync_state_defaults(&s);
	s.id = 0x1234;
	s.creatorid = 0x0a0b0c0d;
	for (int k = 0; k < 2; k++) {
		s.key[k].af = PFSYNC_AF_INET;
		s.key[k].proto = 6;
		v4addr(s.key[k].addr[0], "93.184.216.34");
		s.key[k].port[0] = 443;
	}
	v4addr(s.key[PFSYNC_SK_WIRE].addr[1], "203.0.113.5");
	s.key[PFSYNC_SK_WIRE].port[1] = 62000;
	v4addr(s.key[PFSYNC_SK_STACK].addr[1], "192.168.1.100");
	s.key[PFSYNC_SK_STACK].port[1] = 51000;
	s.src = (struct pfsync_state_peer){.seqlo = 0x11223344,
					   .seqhi = 0x1122b344,
					   .max_win = 64240,
					   .mss = 1460,
					   .state = 4,
					   .wscale = 0x87};
	s.dst = (struct pfsync_state_peer){.seqlo = 0x55667788,
					   .seqhi = 0x5566f788,
					   .max_win = 65535,
					   .mss = 1400,
					   .state = 4,
					   .wscale = 0x88};
	s.creation = 120;
	s.expire = 86280;
	s.packets[0] = 10;
	s.packets[1] = 8;
	s.bytes[0] = 1500;
	s.bytes[1] = 6000;
	s.direction = PFSYNC_DIR_OUT;
	s.timeout = 2;
	return s;
}

/*
 * A state with every field set to something distinct, IPv6 UDP, if-bound,
 * route-to, scrub data on both peers. n varies the id and the ports.
 */
static struct pfsync_state busy_state(unsigned n)
{
	struct pfsync_state s;

	pfsync_state_defaults(&s);
	s.id = 0x0123456789abcdefull + n;
	s.creatorid = 0xdeadbeef;
	memcpy(s.ifname, "lagg0.10", 8);
	for (int k = 0; k < 2; k++) {
		s.key[k].af = PFSYNC_AF_INET6;
		s.key[k].proto = 17;
		v6addr(s.key[k].addr[0], k ? "2001:db8::1:1" : "2001:db8::1");
		v6addr(s.key[k].addr[1], k ? "2001:db8:ffff::2" : "fe80::2");
		s.key[k].port[0] = (uint16_t)(53 + k);
		s.key[k].port[1] = (uint16_t)(40000 + k + n);
	}
	s.src = (struct pfsync_state_peer){0x0001, 64, 1, 0x01020304, 1, 2, 3, 4, 5, 2, 0x8e};
	s.dst = (struct pfsync_state_peer){0x0001, 63, 1, 0x05060708, 6, 7, 8, 9, 10, 2, 0x85};
	v6addr(s.rt_addr, "fe80::1");
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
	s.sync_flags = 0x04;
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

/* An af-to (NAT64) ICMP state: only 1500 can carry it. */
static struct pfsync_state nat64_state(void)
{
	struct pfsync_state s;

	pfsync_state_defaults(&s);
	s.id = 0xa5;
	s.creatorid = 0x11223344;
	s.key[PFSYNC_SK_WIRE].af = PFSYNC_AF_INET6;
	s.key[PFSYNC_SK_WIRE].proto = 58;
	v6addr(s.key[PFSYNC_SK_WIRE].addr[0], "2001:db8::64");
	v6addr(s.key[PFSYNC_SK_WIRE].addr[1], "64:ff9b::c000:201");
	s.key[PFSYNC_SK_WIRE].port[0] = 0x77;
	s.key[PFSYNC_SK_WIRE].port[1] = 128;
	s.key[PFSYNC_SK_STACK].af = PFSYNC_AF_INET;
	s.key[PFSYNC_SK_STACK].proto = 1;
	v4addr(s.key[PFSYNC_SK_STACK].addr[0], "203.0.113.9");
	v4addr(s.key[PFSYNC_SK_STACK].addr[1], "192.0.2.1");
	s.key[PFSYNC_SK_STACK].port[0] = 0x77;
	s.key[PFSYNC_SK_STACK].port[1] = 8;
	s.src.state = 1;
	s.dst.state = 2;
	s.direction = PFSYNC_DIR_IN;
	s.timeout = 9;
	s.expire = 20;
	s.rt = 4;
	s.rt_af = PFSYNC_AF_INET;
	v4addr(s.rt_addr, "198.51.100.1");
	memcpy(s.rt_ifname, "vtnet1", 6);
	return s;
}

/* An address family FreeBSD does not know and an odd direction: decoders print
 * the numbers and the addresses as hex. */
static struct pfsync_state odd_state(void)
{
	struct pfsync_state s = spec_state();

	s.id = 0xfffffffffffffff0ull;
	s.key[0].af = s.key[1].af = 7;
	s.key[0].proto = s.key[1].proto = 132;
	s.direction = 0;
	memcpy(s.ifname, "abcdefghijklmnop", 16); /* all 16 bytes, no NUL */
	return s;
}

/* ---- framing ----------------------------------------------------------------------- */

static void ether(struct frame *f, const uint8_t dmac[6], uint16_t type)
{
	static const uint8_t smac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};

	memcpy(f->b, dmac, 6);
	memcpy(f->b + 6, smac, 6);
	f->b[12] = (uint8_t)(type >> 8);
	f->b[13] = (uint8_t)type;
}

/* Ethernet + IPv4 (TTL 255, DF, TOS lowdelay) to 224.0.0.240 around p */
static void ipv4_packet(struct frame *f, const uint8_t *p, size_t plen)
{
	static const uint8_t dmac[6] = {0x01, 0x00, 0x5e, 0x00, 0x00, 0xf0};
	uint8_t *ip = f->b + 14;
	uint16_t sum;

	if (14 + 20 + plen > sizeof(f->b))
		fail("payload too long");
	memset(f, 0, sizeof(*f));
	ether(f, dmac, 0x0800);
	ip[0] = 0x45;
	ip[1] = 0x10;
	ip[2] = (uint8_t)((20 + plen) >> 8);
	ip[3] = (uint8_t)(20 + plen);
	ip[6] = 0x40;
	ip[8] = 255;
	ip[9] = PFSYNC_PROTO;
	ip[12] = 10;
	ip[15] = 1;
	ip[16] = 224;
	ip[19] = 240;
	sum = inet_cksum(ip, 20);
	ip[10] = (uint8_t)(sum >> 8);
	ip[11] = (uint8_t)sum;
	memcpy(ip + 20, p, plen);
	f->len = f->wirelen = 14 + 20 + plen;
}

/* Ethernet + IPv6 (hop limit 255) fe80::a to ff12::f0 around p */
static void ipv6_packet(struct frame *f, const uint8_t *p, size_t plen)
{
	static const uint8_t dmac[6] = {0x33, 0x33, 0x00, 0x00, 0x00, 0xf0};
	uint8_t *ip = f->b + 14;

	if (14 + 40 + plen > sizeof(f->b))
		fail("payload too long");
	memset(f, 0, sizeof(*f));
	ether(f, dmac, 0x86dd);
	unhex(EX2_IP6, ip, 40);
	ip[4] = (uint8_t)(plen >> 8);
	ip[5] = (uint8_t)plen;
	memcpy(ip + 40, p, plen);
	f->len = f->wirelen = 14 + 40 + plen;
}

static void write_file(const char *dir, const char *name, const struct frame *fs, size_t n)
{
	char path[4096];
	pcap_t *pd = pcap_open_dead(DLT_EN10MB, 65535);
	pcap_dumper_t *dump;

	if (!pd)
		fail("pcap_open_dead");
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	dump = pcap_dump_open(pd, path);
	if (!dump) {
		fprintf(stderr, "gen_pfsync_pcap: %s: %s\n", path, pcap_geterr(pd));
		exit(1);
	}
	for (size_t i = 0; i < n; i++) {
		struct pcap_pkthdr h;

		memset(&h, 0, sizeof(h));
		h.ts.tv_sec = BASE_TIME + (time_t)(i + 1);
		h.ts.tv_usec = (suseconds_t)(1000 * ((i + 1) % 1000));
		h.caplen = (bpf_u_int32)fs[i].len;
		h.len = (bpf_u_int32)fs[i].wirelen;
		pcap_dump((u_char *)dump, &h, fs[i].b);
	}
	if (pcap_dump_flush(dump) != 0)
		fail("writing a pcap file");
	pcap_dump_close(dump);
	pcap_close(pd);
}

/* ---- the packets ------------------------------------------------------------------- */

static struct frame valid[32];
static size_t nvalid;
static struct frame bad[32];
static size_t nbad;

static struct frame warn[8];
static size_t nwarn;

static struct frame *next_warn(void)
{
	if (nwarn >= sizeof(warn) / sizeof(warn[0]))
		fail("too many warn frames");
	return &warn[nwarn++];
}

static struct frame *next_valid(void)
{
	if (nvalid >= sizeof(valid) / sizeof(valid[0]))
		fail("too many valid frames");
	return &valid[nvalid++];
}

static struct frame *next_bad(void)
{
	if (nbad >= sizeof(bad) / sizeof(bad[0]))
		fail("too many bad frames");
	return &bad[nbad++];
}

/* The spec's vectors, each rebuilt with the writer and compared with the spec. */
static void spec_vectors(void)
{
	uint8_t want[512], buf[DATA_MAX], tail[64];
	struct pfsync_writer w;
	struct pfsync_state s = spec_state();
	struct frame *f;
	size_t n;

	/* 7.2 Example 1, IPv4 */
	if (unhex(EX1, want, sizeof(want)) != 341)
		fail("Example 1 is not 341 bytes");
	pfsync_writer_begin(&w, buf, sizeof(buf), NULL);
	if (pfsync_writer_add_state(&w, PFSYNC_ACT_INS_1400, &s) != PFSYNC_OK ||
	    pfsync_writer_add_ref(&w, PFSYNC_ACT_DEL_C, 0x1233, 0x0a0b0c0d) != PFSYNC_OK)
		fail("writer: Example 1");
	n = pfsync_writer_finish(&w);
	if (n != 321)
		fail("writer: Example 1 is not 321 bytes");
	same(buf, want + 20, n, "writer's Example 1");
	f = next_valid();
	ipv4_packet(f, buf, n);
	same(f->b + 14, want, 20, "Example 1's IPv4 header");

	/* 7.3 Example 2: the same over IPv6 */
	f = next_valid();
	ipv6_packet(f, buf, n);
	unhex(EX2_IP6, want, 40);
	same(f->b + 14, want, 40, "Example 2's IPv6 header");
	n = unhex(EX2_TAIL, tail, sizeof(tail));
	same(f->b + f->len - n, tail, n, "Example 2's tail");

	/* 7.4 Example 3: bulk request (its IPv4 header has source 10.0.0.2) */
	if (unhex(EX3_REQ, want, sizeof(want)) != 60)
		fail("Example 3's request is not 60 bytes");
	pfsync_writer_begin(&w, buf, sizeof(buf), NULL);
	pfsync_writer_add_ref(&w, PFSYNC_ACT_UPD_REQ, 0, 0);
	n = pfsync_writer_finish(&w);
	if (n != 40)
		fail("writer: bulk request is not 40 bytes");
	same(buf, want + 20, n, "writer's bulk request");
	f = next_valid();
	memset(f, 0, sizeof(*f));
	ether(f, (const uint8_t[6]){0x01, 0x00, 0x5e, 0x00, 0x00, 0xf0}, 0x0800);
	memcpy(f->b + 14, want, 60);
	f->len = f->wirelen = 14 + 60;

	/* BUS END, and the START the spec describes */
	struct pfsync_bus bus = {.creatorid = 0x0a0b0c0d, .endtime = 3, .status = PFSYNC_BUS_END};
	pfsync_writer_begin(&w, buf, sizeof(buf), NULL);
	pfsync_writer_add_bus(&w, &bus);
	n = pfsync_writer_finish(&w);
	if (unhex(EX3_BUS_END, want, sizeof(want)) != 40 || n != 40)
		fail("BUS END is not 40 bytes");
	same(buf, want, n, "writer's BUS END");
	ipv4_packet(next_valid(), buf, n);
	bus.endtime = 0;
	bus.status = PFSYNC_BUS_START;
	pfsync_writer_begin(&w, buf, sizeof(buf), NULL);
	pfsync_writer_add_bus(&w, &bus);
	n = pfsync_writer_finish(&w);
	ipv6_packet(next_valid(), buf, n);

	/* 7.5 Example 4: INS_1500 of the same state, orig_ifname vtnet0 */
	memset(want, 0, sizeof(want));
	unhex(EX4_HDR, want, 24);
	{
		uint8_t ex1[341];

		unhex(EX1, ex1, sizeof(ex1));
		memcpy(want + 0x18, ex1 + 0x2c, 232);
	}
	memcpy(want + 0x150, "vtnet0", 6);
	if (unhex(EX4_TAIL, tail, sizeof(tail)) != 52)
		fail("Example 4's tail is not 52 bytes");
	memcpy(want + 0x160, tail, 52);
	memcpy(s.orig_ifname, "vtnet0", 7);
	pfsync_writer_begin(&w, buf, sizeof(buf), NULL);
	pfsync_writer_add_state(&w, PFSYNC_ACT_INS_1500, &s);
	pfsync_writer_add_ref(&w, PFSYNC_ACT_DEL_C, 0x1233, 0x0a0b0c0d);
	n = pfsync_writer_finish(&w);
	if (n != 404)
		fail("writer: Example 4 is not 404 bytes");
	same(buf, want, n, "writer's Example 4");
	ipv4_packet(next_valid(), buf, n);

	/* 7.6 Example 5: UPD_C + INS_ACK */
	struct pfsync_upd_c u = {.id = 0x1234, .creatorid = 0x0a0b0c0d, .timeout = 2};
	s = spec_state();
	u.src = s.src;
	u.dst = s.dst;
	pfsync_writer_begin(&w, buf, sizeof(buf), NULL);
	pfsync_writer_add_upd_c(&w, &u);
	pfsync_writer_add_ref(&w, PFSYNC_ACT_INS_ACK, 0xa1, 0x11223344);
	n = pfsync_writer_finish(&w);
	if (unhex(EX5, want, sizeof(want)) != 128 || n != 128)
		fail("Example 5 is not 128 bytes");
	same(buf, want, n, "writer's Example 5");
	ipv6_packet(next_valid(), buf, n);
}

/* What the writer makes: every action it sends, every format, both families. */
static void writer_packets(void)
{
	uint8_t buf[DATA_MAX];
	struct pfsync_writer w;
	struct pfsync_state s;
	size_t n;

#define ADD(call)                                                                                  \
	do {                                                                                       \
		if ((call) != PFSYNC_OK)                                                           \
			fail("writer refused: " #call);                                            \
	} while (0)

	/* INS_1301 and UPD_1301: one subheader per state */
	for (int fam = 0; fam < 2; fam++) {
		pfsync_writer_begin(&w, buf, sizeof(buf), NULL);
		s = busy_state(0);
		s.state_flags = 0x12; /* 1301 carries the low byte only */
		ADD(pfsync_writer_add_state(&w, PFSYNC_ACT_INS_1301, &s));
		s = spec_state();
		ADD(pfsync_writer_add_state(&w, PFSYNC_ACT_UPD_1301, &s));
		s.id++;
		s.direction = PFSYNC_DIR_IN;
		ADD(pfsync_writer_add_state(&w, PFSYNC_ACT_UPD_1301, &s));
		n = pfsync_writer_finish(&w);
		(fam ? ipv6_packet : ipv4_packet)(next_valid(), buf, n);
	}

	/* INS_1400 and UPD_1400 x3 (one subheader, count 3) */
	for (int fam = 0; fam < 2; fam++) {
		pfsync_writer_begin(&w, buf, sizeof(buf), NULL);
		s = busy_state(1);
		ADD(pfsync_writer_add_state(&w, PFSYNC_ACT_INS_1400, &s));
		for (unsigned i = 0; i < 3; i++) {
			s = busy_state(10 + i);
			s.rt = (uint8_t)i; /* none, fastroute, route-to */
			ADD(pfsync_writer_add_state(&w, PFSYNC_ACT_UPD_1400, &s));
		}
		n = pfsync_writer_finish(&w);
		(fam ? ipv6_packet : ipv4_packet)(next_valid(), buf, n);
	}

	/* INS_1500 (everything set) and UPD_1500 (NAT64, then the spec state) */
	for (int fam = 0; fam < 2; fam++) {
		pfsync_writer_begin(&w, buf, sizeof(buf), NULL);
		s = busy_state(2);
		ADD(pfsync_writer_add_state(&w, PFSYNC_ACT_INS_1500, &s));
		s = nat64_state();
		ADD(pfsync_writer_add_state(&w, PFSYNC_ACT_UPD_1500, &s));
		s = spec_state();
		ADD(pfsync_writer_add_state(&w, PFSYNC_ACT_UPD_1500, &s));
		n = pfsync_writer_finish(&w);
		(fam ? ipv6_packet : ipv4_packet)(next_valid(), buf, n);
	}

	/* small messages, in FreeBSD's section order, with a checksum */
	static const uint8_t ck[16] = {0xd4, 0x1d, 0x8c, 0xd9, 0x8f, 0x00, 0xb2, 0x04,
				       0xe9, 0x80, 0x09, 0x98, 0xec, 0xf8, 0x42, 0x7e};
	for (int fam = 0; fam < 2; fam++) {
		struct pfsync_upd_c u = {.id = 0x77, .creatorid = 0xdeadbeef, .timeout = 8};
		struct pfsync_clr c = {.creatorid = 0x0a0b0c0d};

		s = busy_state(3);
		u.src = s.src;
		u.dst = s.dst;
		u.expire = 30; /* FreeBSD sends 0, but a decoder shows what is there */
		pfsync_writer_begin(&w, buf, sizeof(buf), ck);
		ADD(pfsync_writer_add_ref(&w, PFSYNC_ACT_INS_ACK, 1, 0x11223344));
		ADD(pfsync_writer_add_ref(&w, PFSYNC_ACT_INS_ACK, 2, 0x11223344));
		ADD(pfsync_writer_add_upd_c(&w, &u));
		u.id++;
		u.src.scrub_flag = 0;
		u.src.scrub_flags = 0;
		u.src.scrub_ttl = 0;
		u.src.scrub_ts_mod = 0;
		ADD(pfsync_writer_add_upd_c(&w, &u));
		ADD(pfsync_writer_add_ref(&w, PFSYNC_ACT_DEL_C, 0x1233, 0x0a0b0c0d));
		ADD(pfsync_writer_add_ref(&w, PFSYNC_ACT_UPD_REQ, 0x99, 0x55667788));
		ADD(pfsync_writer_add_clr(&w, &c));
		memcpy(c.ifname, "igb1", 4);
		ADD(pfsync_writer_add_clr(&w, &c));
		n = pfsync_writer_finish(&w);
		(fam ? ipv6_packet : ipv4_packet)(next_valid(), buf, n);
	}

	/* odd values: unknown af and direction, a 16-byte ifname, names with bytes
	 * outside printable ASCII (both decoders read them as Latin-1) */
	pfsync_writer_begin(&w, buf, sizeof(buf), NULL);
	s = odd_state();
	ADD(pfsync_writer_add_state(&w, PFSYNC_ACT_UPD_1400, &s));
	{
		struct pfsync_clr c = {.ifname = "\xe9t\x01h\"\\\x7f\xff", .creatorid = 1};

		ADD(pfsync_writer_add_clr(&w, &c));
	}
	n = pfsync_writer_finish(&w);
	ipv4_packet(next_valid(), buf, n);

	/* a full packet: as many DEL_C as an MTU of 1500 holds */
	pfsync_writer_begin(&w, buf, sizeof(buf), NULL);
	for (uint64_t id = 1;
	     pfsync_writer_add_ref(&w, PFSYNC_ACT_DEL_C, id, 0x0a0b0c0d) == PFSYNC_OK; id++)
		;
	n = pfsync_writer_finish(&w);
	ipv6_packet(next_valid(), buf, n);

	/* an empty packet: header and EOF */
	pfsync_writer_begin(&w, buf, sizeof(buf), NULL);
	n = pfsync_writer_finish(&w);
	ipv4_packet(next_valid(), buf, n);

	/* TDB: the writer never sends it (spec 2.5), so it is put in by hand */
	pfsync_writer_begin(&w, buf, sizeof(buf), NULL);
	ADD(pfsync_writer_add_ref(&w, PFSYNC_ACT_DEL_C, 5, 0x0a0b0c0d));
	n = pfsync_writer_finish(&w);
	{
		uint8_t tdb[4 + PFSYNC_TDB_LEN] = {PFSYNC_ACT_TDB, 0, 0, 1, 0x00, 0x00, 0x10, 0x01};
		size_t at = n - PFSYNC_SUBHDR_LEN; /* before EOF */

		tdb[4 + 4] = 16;    /* sockaddr_in: sin_len */
		tdb[4 + 5] = 2;	    /* AF_INET */
		tdb[4 + 8] = 10;    /* 10.0.0.2 */
		tdb[4 + 11] = 2;    /* ... */
		tdb[4 + 35] = 0x2a; /* rpl 42 */
		tdb[4 + 43] = 0x80; /* cur_bytes 128 */
		tdb[4 + 44] = 50;   /* IPPROTO_ESP */
		tdb[4 + 45] = 1;    /* updates */
		memmove(buf + at + sizeof(tdb), buf + at, PFSYNC_SUBHDR_LEN);
		memcpy(buf + at, tdb, sizeof(tdb));
		n += sizeof(tdb);
		buf[2] = (uint8_t)(n >> 8);
		buf[3] = (uint8_t)n;
	}
	ipv4_packet(next_valid(), buf, n);
#undef ADD
}

/* A packet from raw pfsync bytes, and its header len set to the size (or to len). */
static void raw(struct frame *f, bool v6, const uint8_t *p, size_t n)
{
	(v6 ? ipv6_packet : ipv4_packet)(f, p, n);
}

/* Malformed packets: each one is wrong in one way and every decoder must say so. */
static void bad_packets(void)
{
	uint8_t ex1[341], buf[DATA_MAX];
	const uint8_t *pf = ex1 + 20; /* Example 1's pfsync part, 321 bytes */
	struct pfsync_writer w;
	struct frame *f;
	size_t n;

	unhex(EX1, ex1, sizeof(ex1));

	/* 1: shorter than the pfsync header */
	raw(next_bad(), false, pf, 10);
	/* 2: version 6 (OpenBSD) */
	memcpy(buf, pf, 321);
	buf[0] = 6;
	raw(next_bad(), true, buf, 321);
	/* 3: header len larger than the packet */
	memcpy(buf, pf, 321);
	buf[2] = 0x02;
	raw(next_bad(), false, buf, 321);
	/* 4: header len smaller than the header */
	memcpy(buf, pf, 321);
	buf[2] = 0;
	buf[3] = 10;
	raw(next_bad(), false, buf, 321);
	/* 5: a count that does not fit: DEL_C count 3, one message there */
	memcpy(buf, pf, 321);
	buf[0x141 - 20 + 3] = 3;
	raw(next_bad(), true, buf, 321);
	/* 6, 7, 8, 9: DEL, INS_F, DEL_F and an unknown action (17) */
	static const uint8_t acts[] = {PFSYNC_ACT_DEL, PFSYNC_ACT_INS_F, PFSYNC_ACT_DEL_F,
				       PFSYNC_ACT_MAX};
	for (size_t i = 0; i < sizeof(acts); i++) {
		memcpy(buf, pf, 321);
		buf[0x141 - 20] = acts[i];
		raw(next_bad(), i & 1, buf, 321);
	}
	/* 10: a byte after EOF (the header len ends at EOF) */
	pfsync_writer_begin(&w, buf, sizeof(buf), NULL);
	pfsync_writer_add_ref(&w, PFSYNC_ACT_DEL_C, 1, 1);
	n = pfsync_writer_finish(&w);
	buf[n] = 0xee;
	raw(next_bad(), false, buf, n + 1);
	/* 11: the header len cuts through the INS_1400 state (all bytes are there) */
	memcpy(buf, pf, 321);
	buf[2] = 0;
	buf[3] = 200;
	raw(next_bad(), false, buf, 321);
	/* 12: cut by the capture's snaplen (the IP header is whole, the rest is not) */
	f = next_bad();
	ipv4_packet(f, pf, 321);
	f->len = 14 + 20 + 100;
	/* 13: truncated on the wire: the IP header announces more than there is */
	f = next_bad();
	ipv6_packet(f, pf, 321);
	f->len = f->wirelen = 14 + 40 + 150;
	/* 14: a 1301 state whose subheader count is 0xffff */
	pfsync_writer_begin(&w, buf, sizeof(buf), NULL);
	{
		struct pfsync_state s = spec_state();

		pfsync_writer_add_state(&w, PFSYNC_ACT_INS_1301, &s);
	}
	n = pfsync_writer_finish(&w);
	buf[20 + 2] = 0xff;
	buf[20 + 3] = 0xff;
	raw(next_bad(), true, buf, n);
	/* 15: UPD_1500 with a state one byte short and no EOF */
	pfsync_writer_begin(&w, buf, sizeof(buf), NULL);
	{
		struct pfsync_state s = nat64_state();

		pfsync_writer_add_state(&w, PFSYNC_ACT_UPD_1500, &s);
	}
	n = pfsync_writer_finish(&w) - PFSYNC_SUBHDR_LEN - 1;
	buf[2] = (uint8_t)(n >> 8);
	buf[3] = (uint8_t)n;
	raw(next_bad(), false, buf, n);
}

/*
 * Well-formed packets FreeBSD would still not take whole: each one has one
 * thing decoders warn about, no error.
 */
static void warn_packets(void)
{
	uint8_t buf[DATA_MAX];
	struct pfsync_writer w;
	struct pfsync_state s;
	struct frame *f;
	size_t n;

	/* 1: an insert of an unknown address family (badval) */
	pfsync_writer_begin(&w, buf, sizeof(buf), NULL);
	s = odd_state();
	pfsync_writer_add_state(&w, PFSYNC_ACT_INS_1400, &s);
	n = pfsync_writer_finish(&w);
	ipv4_packet(next_warn(), buf, n);
	/* 2: an update with a timeout index of 25 (badval) */
	pfsync_writer_begin(&w, buf, sizeof(buf), NULL);
	s = spec_state();
	s.timeout = PFSYNC_PFTM_MAX;
	pfsync_writer_add_state(&w, PFSYNC_ACT_UPD_1500, &s);
	n = pfsync_writer_finish(&w);
	ipv6_packet(next_warn(), buf, n);
	/* 3: UPD_C with a peer state of 13 (badval) */
	struct pfsync_upd_c u = {.id = 1, .creatorid = 2, .timeout = 2};
	u.src.state = 13;
	pfsync_writer_begin(&w, buf, sizeof(buf), NULL);
	pfsync_writer_add_upd_c(&w, &u);
	n = pfsync_writer_finish(&w);
	ipv4_packet(next_warn(), buf, n);
	/* 4: TTL 64 (FreeBSD's badttl) */
	pfsync_writer_begin(&w, buf, sizeof(buf), NULL);
	pfsync_writer_add_ref(&w, PFSYNC_ACT_DEL_C, 3, 4);
	n = pfsync_writer_finish(&w);
	f = next_warn();
	ipv4_packet(f, buf, n);
	f->b[14 + 8] = 64;
	f->b[14 + 10] = f->b[14 + 11] = 0;
	uint16_t sum = inet_cksum(f->b + 14, 20);
	f->b[14 + 10] = (uint8_t)(sum >> 8);
	f->b[14 + 11] = (uint8_t)sum;
	/* 5: hop limit 1 */
	f = next_warn();
	ipv6_packet(f, buf, n);
	f->b[14 + 7] = 1;
	/* 6: no EOF, and 3 bytes after the last message inside the header len
	 * (FreeBSD stops when fewer than 4 are left) */
	n -= PFSYNC_SUBHDR_LEN;
	memset(buf + n, 0, 3);
	n += 3;
	buf[2] = (uint8_t)(n >> 8);
	buf[3] = (uint8_t)n;
	ipv4_packet(next_warn(), buf, n);
}

/* xorshift64*: the same numbers on every machine */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(uint32_t below)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32) % below;
}

/* Mutations of the valid packets; each keeps a well-formed IP header whose
 * length matches the frame, so only pfsync is damaged. */
static void fuzz_packets(struct frame *out, size_t nout)
{
	for (size_t i = 0; i < nout; i++) {
		const struct frame *src = &valid[rnd((uint32_t)nvalid)];
		bool v6 = src->b[12] == 0x86;
		size_t iph = v6 ? 40 : 20;
		size_t plen = src->len - 14 - iph;
		uint8_t p[DATA_MAX];

		memcpy(p, src->b + 14 + iph, plen);
		switch (rnd(4)) {
		case 0: /* cut short, header len kept or fixed; never to 0 bytes, as
			 * Wireshark's IP dissectors hand an empty payload to no one */
			plen = 1 + rnd((uint32_t)plen);
			if (plen >= 4 && rnd(2)) {
				p[2] = (uint8_t)(plen >> 8);
				p[3] = (uint8_t)plen;
			}
			break;
		case 1: /* a few random bytes */
			for (uint32_t k = 1 + rnd(4); k > 0; k--)
				p[rnd((uint32_t)plen)] = (uint8_t)rnd(256);
			break;
		case 2: /* a subheader count (the first, usually) */
			if (plen > 24)
				p[20 + 3] = (uint8_t)rnd(5);
			break;
		default: /* an action code */
			if (plen > 24)
				p[20] = (uint8_t)rnd(20);
			break;
		}
		(v6 ? ipv6_packet : ipv4_packet)(&out[i], p, plen);
	}
}

int main(int argc, char **argv)
{
	static struct frame fz[1000];

	if (argc != 2) {
		fprintf(stderr, "usage: gen_pfsync_pcap DIR\n");
		return 1;
	}
	spec_vectors();
	writer_packets();
	bad_packets();
	warn_packets();
	fuzz_packets(fz, sizeof(fz) / sizeof(fz[0]));
	write_file(argv[1], "valid.pcap", valid, nvalid);
	write_file(argv[1], "bad.pcap", bad, nbad);
	write_file(argv[1], "warn.pcap", warn, nwarn);
	write_file(argv[1], "fuzz.pcap", fz, sizeof(fz) / sizeof(fz[0]));
	return 0;
}

/*
 * tests/tools/gen_pcap.c - writes the pcap files test_carpdump.sh decodes, built
 * from the test vectors of shared/specs/carp.md section 6 with proto/'s own
 * builders, each checked byte for byte against the spec before it is written (so
 * a wrong builder cannot make carpdump's test pass against itself).
 *
 *   gen_pcap DIR
 *
 * DIR/vectors.pcap  Ethernet, the frames listed in frames[] below, in that order
 *                   (frame numbers start at 1, like Wireshark's)
 * DIR/sll.pcap      Linux cooked (SLL): TV2
 * DIR/sll2.pcap     Linux cooked v2 (SLL2): TV2
 * DIR/raw.pcap      raw IP: TV1, TV4
 * Timestamps: 2023-11-15 12:00:00 UTC + frame number seconds + frame number ms.
 */
#include "proto/carp.h"

#include <arpa/inet.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BASE_TIME 1700049600 /* 2023-11-15 12:00:00 UTC */
#define MAX_FRAME 256

struct frame {
	uint8_t b[MAX_FRAME];
	size_t len;	/* bytes stored */
	size_t wirelen; /* bytes on the wire (> len: cut by the capture's snaplen) */
};

static void fail(const char *what)
{
	fprintf(stderr, "gen_pcap: %s\n", what);
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

/* a frame built here must be the spec's, byte for byte */
static void expect(const struct frame *f, const char *name, const char *hex)
{
	uint8_t want[MAX_FRAME];
	size_t n = unhex(hex, want, sizeof(want));

	if (n != f->len || memcmp(want, f->b, n) != 0) {
		fprintf(stderr, "gen_pcap: %s differs from the spec's frame\n", name);
		exit(1);
	}
}

static struct in_addr v4(const char *s)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		fail("bad IPv4 literal");
	return a;
}

static struct in6_addr v6(const char *s)
{
	struct in6_addr a;

	if (inet_pton(AF_INET6, s, &a) != 1)
		fail("bad IPv6 literal");
	return a;
}

/* the 36-byte header of an advertisement, HMAC included */
static void carp_hdr(uint8_t out[CARP_HDR_LEN], const char *password, uint8_t vhid, uint8_t advbase,
		     uint8_t advskew, uint64_t counter, const struct in_addr *a4, size_t n4,
		     const struct in6_addr *a6, size_t n6)
{
	uint8_t key[CARP_KEY_LEN];
	struct carp_auth auth;
	struct carp_adv adv;

	carp_key_from_password(password, key);
	if (carp_auth_prepare(&auth, key, vhid, a4, n4, a6, n6) != 0)
		fail("carp_auth_prepare");
	carp_adv_init(&adv, vhid, advbase, advskew, counter);
	carp_auth_hmac(&auth, counter, adv.md);
	carp_encode(&adv, out);
}

static void ipv4_frame(struct frame *f, uint8_t vhid, const uint8_t carp[CARP_HDR_LEN],
		       const char *src)
{
	uint8_t vmac[6], mcast[6];

	carp_vmac(vhid, vmac);
	ether_mcast_mac_v4(v4("224.0.0.18"), mcast);
	f->len = carp_build_ipv4(f->b, sizeof(f->b), vmac, mcast, v4(src), v4("224.0.0.18"), carp);
	f->wirelen = f->len;
	if (!f->len)
		fail("carp_build_ipv4");
}

static void ipv6_frame(struct frame *f, uint8_t vhid, const uint8_t carp[CARP_HDR_LEN],
		       const char *src)
{
	struct in6_addr s = v6(src), d = v6("ff02::12");
	uint8_t vmac[6], mcast[6];

	carp_vmac(vhid, vmac);
	ether_mcast_mac_v6(&d, mcast);
	f->len = carp_build_ipv6(f->b, sizeof(f->b), vmac, mcast, &s, &d, carp);
	f->wirelen = f->len;
	if (!f->len)
		fail("carp_build_ipv6");
}

static void ip4_fix_cksum(uint8_t *ip)
{
	size_t ihl = (size_t)(ip[0] & 0x0f) * 4;
	uint16_t sum;

	ip[10] = 0;
	ip[11] = 0;
	sum = inet_cksum(ip, ihl);
	ip[10] = (uint8_t)(sum >> 8);
	ip[11] = (uint8_t)sum;
}

/* insert n bytes at off */
static void insert(struct frame *f, size_t off, const uint8_t *bytes, size_t n)
{
	if (f->len + n > sizeof(f->b))
		fail("frame too long");
	memmove(f->b + off + n, f->b + off, f->len - off);
	memcpy(f->b + off, bytes, n);
	f->len += n;
	f->wirelen = f->len;
}

/* Ethernet + IPv4 (TTL 255, DF) around an arbitrary payload */
static void ipv4_packet(struct frame *f, uint8_t proto, const char *src, const char *dst,
			const uint8_t *payload, size_t plen)
{
	static const uint8_t smac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
	uint8_t dmac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x03};
	struct in_addr s = v4(src), d = v4(dst);
	uint8_t *ip = f->b + 14;

	if (14 + 20 + plen > sizeof(f->b))
		fail("payload too long");
	if ((ntohl(d.s_addr) >> 28) == 0xe)
		ether_mcast_mac_v4(d, dmac);
	memcpy(f->b, dmac, 6);
	memcpy(f->b + 6, smac, 6);
	f->b[12] = 0x08;
	f->b[13] = 0x00;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	ip[2] = (uint8_t)((20 + plen) >> 8);
	ip[3] = (uint8_t)(20 + plen);
	ip[6] = 0x40;
	ip[8] = 255;
	ip[9] = proto;
	memcpy(ip + 12, &s.s_addr, 4);
	memcpy(ip + 16, &d.s_addr, 4);
	ip4_fix_cksum(ip);
	memcpy(ip + 20, payload, plen);
	f->len = f->wirelen = 14 + 20 + plen;
}

static void write_file(const char *dir, const char *name, int dlt, const struct frame *fs, size_t n)
{
	char path[4096];
	pcap_t *pd = pcap_open_dead(dlt, 65535);
	pcap_dumper_t *dump;

	if (!pd)
		fail("pcap_open_dead");
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	dump = pcap_dump_open(pd, path);
	if (!dump) {
		fprintf(stderr, "gen_pcap: %s: %s\n", path, pcap_geterr(pd));
		exit(1);
	}
	for (size_t i = 0; i < n; i++) {
		struct pcap_pkthdr h;

		memset(&h, 0, sizeof(h));
		h.ts.tv_sec = BASE_TIME + (time_t)(i + 1);
		h.ts.tv_usec = (suseconds_t)(1000 * (i + 1));
		h.caplen = (bpf_u_int32)fs[i].len;
		h.len = (bpf_u_int32)fs[i].wirelen;
		pcap_dump((u_char *)dump, &h, fs[i].b);
	}
	if (pcap_dump_flush(dump) != 0)
		fail("writing a pcap file");
	pcap_dump_close(dump);
	pcap_close(pd);
}

/* Ethernet frame -> Linux cooked header (as received, from the frame's source) */
static void to_sll(struct frame *out, const struct frame *in, bool v2)
{
	uint8_t *h = out->b;
	size_t hl = v2 ? 20 : 16;

	memset(out, 0, sizeof(*out));
	if (v2) {
		memcpy(h, in->b + 12, 2); /* protocol */
		h[7] = 2;		  /* ifindex */
		h[9] = 1;		  /* ARPHRD_ETHER */
		h[10] = 2;		  /* PACKET_MULTICAST */
		h[11] = 6;
		memcpy(h + 12, in->b + 6, 6);
	} else {
		h[1] = 2; /* PACKET_MULTICAST */
		h[3] = 1; /* ARPHRD_ETHER */
		h[5] = 6;
		memcpy(h + 6, in->b + 6, 6);
		memcpy(h + 14, in->b + 12, 2);
	}
	memcpy(out->b + hl, in->b + 14, in->len - 14);
	out->len = out->wirelen = hl + in->len - 14;
}

static void to_raw(struct frame *out, const struct frame *in)
{
	memset(out, 0, sizeof(*out));
	memcpy(out->b, in->b + 14, in->len - 14);
	out->len = out->wirelen = in->len - 14;
}

/* frame numbers in vectors.pcap; test_carpdump.sh relies on them */
enum {
	F_TV1 = 1,	/* TV1: empty password, vhid 1, VIP 192.0.2.1, from 192.0.2.202 */
	F_TV2,		/* TV2: foobar, advskew 100, VIP 192.0.2.254, from 192.0.2.2 */
	F_UDP,		/* UDP/53, skipped */
	F_TV4,		/* TV4 over IPv6: pfsense, vhid 10, fe80::2 > ff02::12 */
	F_BADSUM,	/* TV2 with its checksum damaged (the HMAC still verifies) */
	F_TRUNC,	/* TV1 cut after 20 CARP bytes, on the wire */
	F_VRRP3,	/* TV8: VRRPv3 vrid 1 prio 100 */
	F_TTL64,	/* TV1 with TTL 64 */
	F_PFSYNC,	/* pfsync v5, header + EOF, len 24 */
	F_PFSYNC_SHORT, /* pfsync, 10 bytes */
	F_VLAN,		/* TV1 in an 802.1Q tag, vlan 100 */
	F_IPOPT,	/* TV1 with an IPv4 Router Alert option (IHL 6) */
	F_HBH,		/* TV4 with an IPv6 hop-by-hop header */
	F_TV7,		/* TV7: foobar, advskew 240 (maintenance mode) */
	F_SNAP,		/* TV1 cut to 60 bytes by the capture's snaplen */
	F_TV3,		/* TV3: secret, vhid 5, three VIPs, from 10.0.0.2 */
	F_VRRP2,	/* VRRPv2 vrid 7 (keepalived), one address */
	F_COUNT
};

int main(int argc, char **argv)
{
	static struct frame f[F_COUNT]; /* indexed by frame number: f[0] is not written */
	uint8_t hdr[CARP_HDR_LEN];

	if (argc != 2) {
		fprintf(stderr, "usage: gen_pcap DIR\n");
		return 1;
	}

	/* TV1 */
	struct in_addr tv1_vip = v4("192.0.2.1");
	carp_hdr(hdr, "", 1, 1, 0, 0x0000000000000001ULL, &tv1_vip, 1, NULL, 0);
	ipv4_frame(&f[F_TV1], 1, hdr, "192.0.2.202");
	expect(&f[F_TV1], "TV1",
	       "01 00 5e 00 00 12 00 00 5e 00 01 01 08 00 45 e0 00 38 00 00 40 00 ff 70 d7 98"
	       "c0 00 02 ca e0 00 00 12 21 01 00 07 00 01 4c 43 00 00 00 00 00 00 00 01 d8 2c"
	       "3c fd e0 ce 97 84 6d ff aa 2e 3f 83 07 99 62 83 43 67");

	/* TV2 */
	struct in_addr tv2_vip = v4("192.0.2.254");
	carp_hdr(hdr, "foobar", 1, 1, 100, 0x1122334455667788ULL, &tv2_vip, 1, NULL, 0);
	ipv4_frame(&f[F_TV2], 1, hdr, "192.0.2.2");
	expect(&f[F_TV2], "TV2",
	       "01 00 5e 00 00 12 00 00 5e 00 01 01 08 00 45 e0 00 38 00 00 40 00 ff 70 d8 60"
	       "c0 00 02 02 e0 00 00 12 21 01 64 07 00 01 85 03 11 22 33 44 55 66 77 88 93 e8"
	       "13 d5 53 4a 2b e8 ec 9c a4 d4 e0 71 7b 6b 33 83 9c db");

	/* a DNS query: not ours */
	static const uint8_t udp[] = {0x13, 0x88, 0x00, 0x35, 0x00, 0x0c,
				      0x00, 0x00, 0xca, 0xfe, 0x01, 0x00};
	ipv4_packet(&f[F_UDP], 17, "192.0.2.2", "192.0.2.3", udp, sizeof(udp));

	/* TV4 */
	struct in_addr tv4_v4 = v4("198.51.100.10");
	struct in6_addr tv4_v6[2] = {v6("2001:db8::10"), v6("fe80::1")};
	carp_hdr(hdr, "pfsense", 10, 2, 50, 0x0000000100000002ULL, &tv4_v4, 1, tv4_v6, 2);
	ipv6_frame(&f[F_TV4], 10, hdr, "fe80::2");
	expect(&f[F_TV4], "TV4",
	       "33 33 00 00 00 12 00 00 5e 00 01 0a 86 dd 6e 00 00 00 00 24 70 ff"
	       "fe 80 00 00 00 00 00 00 00 00 00 00 00 00 00 02"
	       "ff 02 00 00 00 00 00 00 00 00 00 00 00 00 00 12"
	       "21 0a 32 07 00 02 38 c7 00 00 00 01 00 00 00 02 42 2c 3e 7d 2c 11 78 96 7e a4 45"
	       "22 28 2d 19 fe a5 88 a3 56");

	/* bad checksum: the checksum field itself, so nothing else changes */
	f[F_BADSUM] = f[F_TV2];
	f[F_BADSUM].b[14 + 20 + 6] ^= 0x01;

	/* truncated on the wire: the IP header still says 56 */
	f[F_TRUNC] = f[F_TV1];
	f[F_TRUNC].len = f[F_TRUNC].wirelen = 14 + 20 + 20;

	/* TV8, straight from the spec: there is no VRRP builder */
	f[F_VRRP3].len = f[F_VRRP3].wirelen = unhex(
		"01 00 5e 00 00 12 00 00 5e 00 01 01 08 00 45 e0 00 20 00 00 40 00 ff 70 d7 b0"
		"c0 00 02 ca e0 00 00 12 31 01 64 01 00 64 05 3e c0 00 02 01",
		f[F_VRRP3].b, MAX_FRAME);

	f[F_TTL64] = f[F_TV1];
	f[F_TTL64].b[14 + 8] = 64;
	ip4_fix_cksum(f[F_TTL64].b + 14);

	static const uint8_t pfsync[24] = {5, 0, 0, 24, [20] = 12, [23] = 1}; /* EOF, count 1 */
	ipv4_packet(&f[F_PFSYNC], 240, "192.0.2.2", "224.0.0.240", pfsync, sizeof(pfsync));
	ipv4_packet(&f[F_PFSYNC_SHORT], 240, "192.0.2.2", "224.0.0.240", pfsync, 10);

	static const uint8_t tag[4] = {0x81, 0x00, 0x00, 100}; /* TPID, PCP 0, vid 100 */
	f[F_VLAN] = f[F_TV1];
	insert(&f[F_VLAN], 12, tag, sizeof(tag));

	static const uint8_t ra[4] = {0x94, 0x04, 0x00, 0x00}; /* Router Alert */
	f[F_IPOPT] = f[F_TV1];
	insert(&f[F_IPOPT], 14 + 20, ra, sizeof(ra));
	f[F_IPOPT].b[14] = 0x46;
	f[F_IPOPT].b[14 + 3] = 60;
	ip4_fix_cksum(f[F_IPOPT].b + 14);

	/* hop-by-hop: next header 112, length 0 (8 bytes), a PadN option of 4 */
	static const uint8_t hbh[8] = {112, 0, 1, 4, 0, 0, 0, 0};
	f[F_HBH] = f[F_TV4];
	insert(&f[F_HBH], 14 + 40, hbh, sizeof(hbh));
	f[F_HBH].b[14 + 5] = 36 + 8; /* payload length */
	f[F_HBH].b[14 + 6] = 0;	     /* next header: hop-by-hop */

	/* TV7 */
	carp_hdr(hdr, "foobar", 1, 1, 240, 0x1122334455667789ULL, &tv2_vip, 1, NULL, 0);
	ipv4_frame(&f[F_TV7], 1, hdr, "192.0.2.2");
	uint8_t tv7[CARP_HDR_LEN];
	unhex("2101f0070001a0611122334455667789d6a9564958fccffe1eff7857d5e2fbe1c16ebcc5", tv7,
	      sizeof(tv7));
	if (memcmp(tv7, f[F_TV7].b + 34, CARP_HDR_LEN) != 0)
		fail("TV7 differs from the spec's header");

	f[F_SNAP] = f[F_TV1];
	f[F_SNAP].len = 60;

	/* TV3: addresses in configuration order; the HMAC sorts them */
	struct in_addr tv3_vips[3] = {v4("10.0.0.20"), v4("192.168.1.1"), v4("10.0.0.3")};
	carp_hdr(hdr, "secret", 5, 1, 0, 0xfedcba9876543210ULL, tv3_vips, 3, NULL, 0);
	ipv4_frame(&f[F_TV3], 5, hdr, "10.0.0.2");
	uint8_t tv3[CARP_HDR_LEN];
	unhex("21050007000121c0fedcba98765432104b6ac71a6fe1b17675177a422a21bc0b55d1fc22", tv3,
	      sizeof(tv3));
	if (memcmp(tv3, f[F_TV3].b + 34, CARP_HDR_LEN) != 0)
		fail("TV3 differs from the spec's header");

	/* VRRPv2 (RFC 3768): vrid 7, prio 100, 1 address, no auth, 1 s, 192.0.2.7 */
	uint8_t vrrp2[20] = {0x21, 7, 100, 1, 0, 1, 0, 0, 192, 0, 2, 7};
	uint16_t s2 = inet_cksum(vrrp2, sizeof(vrrp2));
	vrrp2[6] = (uint8_t)(s2 >> 8);
	vrrp2[7] = (uint8_t)s2;
	ipv4_packet(&f[F_VRRP2], 112, "192.0.2.5", "224.0.0.18", vrrp2, sizeof(vrrp2));

	write_file(argv[1], "vectors.pcap", DLT_EN10MB, f + 1, F_COUNT - 1);

	struct frame one[2];
	to_sll(&one[0], &f[F_TV2], false);
	write_file(argv[1], "sll.pcap", DLT_LINUX_SLL, one, 1);
	to_sll(&one[0], &f[F_TV2], true);
	write_file(argv[1], "sll2.pcap", DLT_LINUX_SLL2, one, 1);
	to_raw(&one[0], &f[F_TV1]);
	to_raw(&one[1], &f[F_TV4]);
	write_file(argv[1], "raw.pcap", DLT_RAW, one, 2);
	return 0;
}

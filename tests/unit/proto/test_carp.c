/*
 * tests/unit/proto/test_carp.c - proto/carp.h against the spec's test vectors
 * (../shared/specs/carp.md section 6, TV1-TV8) and the ways a packet can be bad.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/carp.h"
#include "tap.h"

/* ---- helpers --------------------------------------------------------------- */

/* hex into out; a malformed vector is a bug in this file, so it stops the run */
static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
	int n = tap_unhex(hex, out, cap);

	if (n < 0) {
		printf("Bail out! bad hex in test vector: %s\n", hex);
		exit(2);
	}
	return (size_t)n;
}

static struct in_addr ip4(const char *s)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1) {
		printf("Bail out! bad IPv4 address %s\n", s);
		exit(2);
	}
	return a;
}

static struct in6_addr ip6(const char *s)
{
	struct in6_addr a;

	if (inet_pton(AF_INET6, s, &a) != 1) {
		printf("Bail out! bad IPv6 address %s\n", s);
		exit(2);
	}
	return a;
}

/* "what: detail" into a static buffer, for check names */
static const char *name(const char *what, const char *detail)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "%s: %s", what, detail);
	return buf;
}

/* Prepare an auth context from address strings (NULL-terminated lists). */
static int prepare(struct carp_auth *auth, const uint8_t key[CARP_KEY_LEN], uint8_t vhid,
		   const char *const *v4s, const char *const *v6s)
{
	struct in_addr v4[CARP_MAX_ADDRS + 1];
	struct in6_addr v6[CARP_MAX_ADDRS + 1];
	size_t n4 = 0, n6 = 0;

	for (; v4s && v4s[n4]; n4++)
		v4[n4] = ip4(v4s[n4]);
	for (; v6s && v6s[n6]; n6++)
		v6[n6] = ip6(v6s[n6]);
	return carp_auth_prepare(auth, key, vhid, v4, n4, v6, n6);
}

/* The HMAC message prefix (without the counter) prepared for the given lists. */
static bool msg_is(const struct carp_auth *auth, const char *hex)
{
	uint8_t want[sizeof(auth->msg)];
	size_t n = unhex(hex, want, sizeof(want));

	return auth->msg_len == n && memcmp(auth->msg, want, n) == 0;
}

/* ---- TV1-TV7 --------------------------------------------------------------- */

struct tv {
	const char *id;
	const char *password; /* through carp_key_from_password() (ifconfig 'pass') */
	const char *key;      /* the 20-byte sc_key it must give */
	uint8_t vhid, advbase, advskew;
	uint64_t counter;
	const char *v4[4];
	const char *v6[4];
	const char *msg; /* HMAC msg incl. counter; NULL where the spec does not list it */
	const char *hmac;
	const char *carp;
};

static const struct tv tvs[] = {
	{"TV1",
	 "",
	 "0000000000000000000000000000000000000000",
	 1,
	 1,
	 0,
	 0x0000000000000001ULL,
	 {"192.0.2.1"},
	 {NULL},
	 "020101 c0000201 0000000000000001",
	 "d82c3cfde0ce97846dffaa2e3f83079962834367",
	 "2101000700014c430000000000000001d82c3cfde0ce97846dffaa2e3f83079962834367"},
	{"TV2",
	 "foobar",
	 "666f6f6261720000000000000000000000000000",
	 1,
	 1,
	 100,
	 0x1122334455667788ULL,
	 {"192.0.2.254"},
	 {NULL},
	 "020101 c00002fe 1122334455667788",
	 "93e813d5534a2be8ec9ca4d4e0717b6b33839cdb",
	 "2101640700018503112233445566778893e813d5534a2be8ec9ca4d4e0717b6b33839cdb"},
	{"TV3",
	 "secret",
	 "7365637265740000000000000000000000000000",
	 5,
	 1,
	 0,
	 0xfedcba9876543210ULL,
	 {"10.0.0.20", "192.168.1.1", "10.0.0.3"},
	 {NULL},
	 "020105 0a000003 0a000014 c0a80101 fedcba9876543210",
	 "4b6ac71a6fe1b17675177a422a21bc0b55d1fc22",
	 "21050007000121c0fedcba98765432104b6ac71a6fe1b17675177a422a21bc0b55d1fc22"},
	{"TV4",
	 "pfsense",
	 "706673656e736500000000000000000000000000",
	 10,
	 2,
	 50,
	 0x0000000100000002ULL,
	 {"198.51.100.10"},
	 {"2001:db8::10", "fe80::1"},
	 "02010a c633640a 20010db8000000000000000000000010 fe800000000000000000000000000001 "
	 "0000000100000002",
	 "422c3e7d2c1178967ea44522282d19fea588a356",
	 "210a3207000238c70000000100000002422c3e7d2c1178967ea44522282d19fea588a356"},
	{"TV5",
	 "ThisIsAVeryLongPassword123",
	 "54686973497341566572794c6f6e675061737300",
	 3,
	 1,
	 0,
	 0x0102030405060708ULL,
	 {"203.0.113.5"},
	 {NULL},
	 NULL,
	 "ee64bd1f442aac9ef2292240be305a2d43d0bf29",
	 "21030007000102d10102030405060708ee64bd1f442aac9ef2292240be305a2d43d0bf29"},
	/* TV6's password is what ifconfig receives once pfSense has mangled the GUI
	 * string; the GUI side is tested in test_tv6_pfsense() */
	{"TV6",
	 "mypass\\\"word",
	 "6d79706173735c22776f72640000000000000000",
	 7,
	 1,
	 0,
	 0x00000000deadbeefULL,
	 {"192.0.2.77"},
	 {NULL},
	 NULL,
	 "888f352b227b14d2a1f677ac30fe4d3334a5aefe",
	 "210700070001d0d200000000deadbeef888f352b227b14d2a1f677ac30fe4d3334a5aefe"},
	/* TV7: advskew 254 configured, 240 on the wire (the clamp is the daemon's) */
	{"TV7",
	 "foobar",
	 "666f6f6261720000000000000000000000000000",
	 1,
	 1,
	 240,
	 0x1122334455667789ULL,
	 {"192.0.2.254"},
	 {NULL},
	 NULL,
	 "d6a9564958fccffe1eff7857d5e2fbe1c16ebcc5",
	 "2101f0070001a0611122334455667789d6a9564958fccffe1eff7857d5e2fbe1c16ebcc5"},
};

static void test_vector(const struct tv *tv)
{
	uint8_t key[CARP_KEY_LEN], want_key[CARP_KEY_LEN];
	uint8_t md[CARP_MD_LEN], want_md[CARP_MD_LEN];
	uint8_t carp[CARP_HDR_LEN], want_carp[CARP_HDR_LEN];
	struct carp_auth auth;
	struct carp_adv adv, dec;

	unhex(tv->key, want_key, sizeof(want_key));
	unhex(tv->hmac, want_md, sizeof(want_md));
	unhex(tv->carp, want_carp, sizeof(want_carp));

	carp_key_from_password(tv->password, key);
	CHECK_BYTES(key, want_key, CARP_KEY_LEN, name(tv->id, "key from password"));

	CHECK(prepare(&auth, key, tv->vhid, tv->v4, tv->v6) == 0, name(tv->id, "auth prepared"));
	if (tv->msg) {
		/* the spec's HMAC msg is the prefix followed by the 8 counter bytes */
		uint8_t want_msg[sizeof(auth.msg)], ctr[8];
		size_t n = unhex(tv->msg, want_msg, sizeof(want_msg));

		for (int i = 0; i < 8; i++)
			ctr[i] = (uint8_t)(tv->counter >> (56 - 8 * i));
		CHECK(auth.msg_len + 8 == n, name(tv->id, "HMAC message length"));
		CHECK_BYTES(auth.msg, want_msg, auth.msg_len < n ? auth.msg_len : n,
			    name(tv->id, "HMAC message (sorted addresses)"));
		CHECK_BYTES(ctr, want_msg + n - 8, 8, name(tv->id, "HMAC message counter"));
	}

	carp_auth_hmac(&auth, tv->counter, md);
	CHECK_BYTES(md, want_md, CARP_MD_LEN, name(tv->id, "HMAC"));

	carp_adv_init(&adv, tv->vhid, tv->advbase, tv->advskew, tv->counter);
	memcpy(adv.md, md, CARP_MD_LEN);
	adv.cksum = 0xdead; /* encode must not read it */
	carp_encode(&adv, carp);
	CHECK_BYTES(carp, want_carp, CARP_HDR_LEN, name(tv->id, "CARP header encoded"));

	memset(&dec, 0xa5, sizeof(dec));
	CHECK(carp_decode(want_carp, CARP_HDR_LEN, &dec) == CARP_OK, name(tv->id, "decodes OK"));
	CHECK(dec.version == 2 && dec.type == 1 && dec.vhid == tv->vhid &&
		      dec.advskew == tv->advskew && dec.authlen == 7 && dec.reserved == 0 &&
		      dec.advbase == tv->advbase && dec.counter == tv->counter,
	      name(tv->id, "decoded fields"));
	CHECK(dec.cksum == (uint16_t)(want_carp[6] << 8 | want_carp[7]),
	      name(tv->id, "decoded checksum as on the wire"));
	CHECK_BYTES(dec.md, want_md, CARP_MD_LEN, name(tv->id, "decoded HMAC"));
	CHECK(carp_auth_verify(&auth, &dec), name(tv->id, "verifies"));
	CHECK(inet_cksum(want_carp, CARP_HDR_LEN) == 0, name(tv->id, "checksum sums to zero"));
}

static const uint8_t mac_ipv4_group[6] = {0x01, 0x00, 0x5e, 0x00, 0x00, 0x12};

static void test_tv1_tv2_frames(void)
{
	static const struct {
		const char *id, *src, *carp, *frame;
	} f[] = {
		{"TV1", "192.0.2.202",
		 "2101000700014c430000000000000001d82c3cfde0ce97846dffaa2e3f83079962834367",
		 "01 00 5e 00 00 12 00 00 5e 00 01 01 08 00 45 e0 00 38 00 00 40 00 ff 70 d7 98"
		 "c0 00 02 ca e0 00 00 12 21 01 00 07 00 01 4c 43 00 00 00 00 00 00 00 01 d8 2c"
		 "3c fd e0 ce 97 84 6d ff aa 2e 3f 83 07 99 62 83 43 67"},
		{"TV2", "192.0.2.2",
		 "2101640700018503112233445566778893e813d5534a2be8ec9ca4d4e0717b6b33839cdb",
		 "01 00 5e 00 00 12 00 00 5e 00 01 01 08 00 45 e0 00 38 00 00 40 00 ff 70 d8 60"
		 "c0 00 02 02 e0 00 00 12 21 01 64 07 00 01 85 03 11 22 33 44 55 66 77 88 93 e8"
		 "13 d5 53 4a 2b e8 ec 9c a4 d4 e0 71 7b 6b 33 83 9c db"},
	};

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		uint8_t carp[CARP_HDR_LEN], want[CARP_IPV4_FRAME_LEN], buf[128], vmac[6], dmac[6];
		size_t n;

		unhex(f[i].carp, carp, sizeof(carp));
		CHECK(unhex(f[i].frame, want, sizeof(want)) == CARP_IPV4_FRAME_LEN,
		      name(f[i].id, "vector is 70 bytes"));
		carp_vmac(1, vmac);
		ether_mcast_mac_v4(ip4("224.0.0.18"), dmac);
		CHECK_BYTES(dmac, mac_ipv4_group, 6,
			    name(f[i].id, "224.0.0.18 -> 01:00:5e:00:00:12"));
		memset(buf, 0xee, sizeof(buf));
		n = carp_build_ipv4(buf, sizeof(buf), vmac, dmac, ip4(f[i].src), ip4("224.0.0.18"),
				    carp);
		CHECK(n == CARP_IPV4_FRAME_LEN, name(f[i].id, "IPv4 frame length 70"));
		CHECK_BYTES(buf, want, CARP_IPV4_FRAME_LEN, name(f[i].id, "IPv4 frame"));
		CHECK(buf[CARP_IPV4_FRAME_LEN] == 0xee, name(f[i].id, "nothing written past 70"));
		CHECK(inet_cksum(buf + 14, 20) == 0,
		      name(f[i].id, "IPv4 header checksum verifies"));
		CHECK(carp_build_ipv4(buf, CARP_IPV4_FRAME_LEN - 1, vmac, dmac, ip4(f[i].src),
				      ip4("224.0.0.18"), carp) == 0,
		      name(f[i].id, "cap 69 refused"));
		CHECK(carp_build_ipv4(buf, CARP_IPV4_FRAME_LEN, vmac, dmac, ip4(f[i].src),
				      ip4("224.0.0.18"), carp) == CARP_IPV4_FRAME_LEN,
		      name(f[i].id, "cap 70 is enough"));
	}
}

static void test_tv4_frame(void)
{
	static const char *frame =
		"33 33 00 00 00 12 00 00 5e 00 01 0a 86 dd 6e 00 00 00 00 24 70 ff"
		"fe 80 00 00 00 00 00 00 00 00 00 00 00 00 00 02  ff 02 00 00 00 00 00 00 00 00 00 "
		"00 00 00 00 12"
		"21 0a 32 07 00 02 38 c7 00 00 00 01 00 00 00 02 42 2c 3e 7d 2c 11 78 96 7e a4 45 "
		"22 "
		"28 2d 19 fe a5 88 a3 56";
	uint8_t carp[CARP_HDR_LEN], want[CARP_IPV6_FRAME_LEN], buf[128], vmac[6], dmac[6];
	struct in6_addr src = ip6("fe80::2"), group = ip6("ff02::12");
	static const uint8_t want_dmac[6] = {0x33, 0x33, 0x00, 0x00, 0x00, 0x12};

	unhex("210a3207000238c70000000100000002422c3e7d2c1178967ea44522282d19fea588a356", carp,
	      sizeof(carp));
	CHECK(unhex(frame, want, sizeof(want)) == CARP_IPV6_FRAME_LEN, "TV4: vector is 90 bytes");
	carp_vmac(10, vmac);
	ether_mcast_mac_v6(&group, dmac);
	CHECK_BYTES(dmac, want_dmac, 6, "TV4: ff02::12 -> 33:33:00:00:00:12");
	memset(buf, 0xee, sizeof(buf));
	CHECK(carp_build_ipv6(buf, sizeof(buf), vmac, dmac, &src, &group, carp) ==
		      CARP_IPV6_FRAME_LEN,
	      "TV4: IPv6 frame length 90");
	CHECK_BYTES(buf, want, CARP_IPV6_FRAME_LEN, "TV4: IPv6 frame");
	CHECK(buf[CARP_IPV6_FRAME_LEN] == 0xee, "TV4: nothing written past 90");
	CHECK(carp_build_ipv6(buf, CARP_IPV6_FRAME_LEN - 1, vmac, dmac, &src, &group, carp) == 0,
	      "TV4: cap 89 refused");
}

/* TV5's note: a full 20-byte key (netlink) keeps the 20th byte. */
static void test_tv5_20byte_key(void)
{
	static const char *v4[] = {"203.0.113.5", NULL};
	uint8_t key[CARP_KEY_LEN], md[CARP_MD_LEN], want[CARP_MD_LEN];
	struct carp_auth auth;

	memcpy(key, "ThisIsAVeryLongPassw", CARP_KEY_LEN);
	prepare(&auth, key, 3, v4, NULL);
	carp_auth_hmac(&auth, 0x0102030405060708ULL, md);
	unhex("0c9b570b3d0d44f08ffb1875583718a74381aedd", want, sizeof(want));
	CHECK_BYTES(md, want, CARP_MD_LEN, "TV5: 20-byte netlink key HMAC");

	/* and the 26-byte password through ifconfig drops everything after byte 19 */
	carp_key_from_password("ThisIsAVeryLongPassword123", key);
	CHECK(key[19] == 0 && memcmp(key, "ThisIsAVeryLongPass", 19) == 0,
	      "TV5: password truncated to 19 bytes + NUL");
}

/* TV6: the GUI string goes through pfSense's transform; the raw one is wrong. */
static void test_tv6_pfsense(void)
{
	static const char *v4[] = {"192.0.2.77", NULL};
	uint8_t key[CARP_KEY_LEN], md[CARP_MD_LEN], want[CARP_MD_LEN], carp[CARP_HDR_LEN];
	char typed[64];
	struct carp_auth auth;
	struct carp_adv adv;

	CHECK(carp_pfsense_password("my pass\"word", typed, sizeof(typed)) == 12,
	      "TV6: transformed length 12");
	CHECK(strcmp(typed, "mypass\\\"word") == 0, "TV6: GUI 'my pass\"word' -> 'mypass\\\"word'");
	carp_key_from_password(typed, key);
	unhex("6d79706173735c22776f72640000000000000000", want, CARP_KEY_LEN);
	CHECK_BYTES(key, want, CARP_KEY_LEN, "TV6: key from the transformed GUI password");

	/* the raw GUI string as key */
	carp_key_from_password("my pass\"word", key);
	prepare(&auth, key, 7, v4, NULL);
	carp_auth_hmac(&auth, 0x00000000deadbeefULL, md);
	unhex("82612fc6321aada5ee384a8f6e8b8693bde5fc2d", want, sizeof(want));
	CHECK_BYTES(md, want, CARP_MD_LEN, "TV6: raw GUI key gives the 'wrong' HMAC");

	unhex("210700070001d0d200000000deadbeef888f352b227b14d2a1f677ac30fe4d3334a5aefe", carp,
	      sizeof(carp));
	CHECK(carp_decode(carp, sizeof(carp), &adv) == CARP_OK, "TV6: pfSense ad decodes");
	CHECK(!carp_auth_verify(&auth, &adv), "TV6: pfSense ad fails under the raw GUI key");
}

/* TV7: advskew is not in the HMAC - TV2's context verifies TV7's ad. */
static void test_tv7_skew_not_hashed(void)
{
	static const char *v4[] = {"192.0.2.254", NULL};
	uint8_t key[CARP_KEY_LEN], carp[CARP_HDR_LEN];
	struct carp_auth auth;
	struct carp_adv adv;

	carp_key_from_password("foobar", key);
	prepare(&auth, key, 1, v4, NULL);
	unhex("2101f0070001a0611122334455667789d6a9564958fccffe1eff7857d5e2fbe1c16ebcc5", carp,
	      sizeof(carp));
	carp_decode(carp, sizeof(carp), &adv);
	CHECK(adv.advskew == 240, "TV7: advskew 240 on the wire");
	adv.advskew = 0;
	adv.advbase = 9;
	adv.authlen = 0;
	adv.reserved = 3;
	adv.type = 5;
	CHECK(carp_auth_verify(&auth, &adv), "TV7: skew, base, authlen, reserved, type not hashed");
	adv.vhid = 2; /* the vhid comes from the context, not from the packet */
	CHECK(carp_auth_verify(&auth, &adv), "TV7: verify uses the context's vhid");
}

static void test_tv8_vrrp(void)
{
	static const char *frame = "01 00 5e 00 00 12 00 00 5e 00 01 01 08 00 45 e0 00 20 00 00 40 "
				   "00 ff 70 d7 b0 c0 00 02 ca e0 00 00 12 31 01 64 01 00 64 05 "
				   "3e c0 00 02 01";
	uint8_t buf[64];
	struct carp_adv adv;
	size_t n = unhex(frame, buf, sizeof(buf));

	CHECK(n == 46, "TV8: frame is 46 bytes");
	CHECK(carp_decode(buf + 34, n - 34, &adv) == CARP_ERR_BADVER, "TV8: VRRPv3 is BADVER");
	CHECK(carp_decode(buf + 34, 8, &adv) == CARP_ERR_BADVER, "TV8: 8 bytes of VRRPv3: BADVER");
	CHECK(carp_decode(buf + 34, 7, &adv) == CARP_ERR_BADLEN, "TV8: 7 bytes: BADLEN first");
}

/* ---- keys and the pfSense transform ------------------------------------------ */

static void test_pfsense_transform(void)
{
	static const struct {
		const char *gui, *want;
	} t[] = {
		{"foobar", "foobar"},
		{"a b  c ", "abc"},		  /* every space, wherever it is */
		{"tab\there", "tab\there"},	  /* only ASCII spaces */
		{"it's", "it\\'s"},		  /* ' escaped */
		{"say \"hi\"", "say\\\"hi\\\""},  /* " escaped */
		{"back\\slash", "back\\\\slash"}, /* \ escaped */
		{"   ", ""},			  /* spaces only: empty */
		{"", ""},
		{"$`!;&|", "$`!;&|"}, /* shell characters: escapeshellarg() quotes, no change */
	};
	char out[64];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		size_t n = carp_pfsense_password(t[i].gui, out, sizeof(out));

		CHECK(strcmp(out, t[i].want) == 0 && n == strlen(t[i].want),
		      name("pfSense transform", t[i].gui));
	}

	/* truncation and return value like snprintf */
	memset(out, 'x', sizeof(out));
	CHECK(carp_pfsense_password("abcdefgh", out, 5) == 8, "pfSense: returns the full length");
	CHECK(strcmp(out, "abcd") == 0 && out[5] == 'x', "pfSense: truncated to outlen-1, NUL");
	CHECK(carp_pfsense_password("abc'", out, 5) == 5, "pfSense: escape counted");
	CHECK(strcmp(out, "abc\\") == 0, "pfSense: truncation may split an escape");
	out[0] = 'x';
	CHECK(carp_pfsense_password("a b", out, 1) == 2 && out[0] == '\0',
	      "pfSense: outlen 1 gives an empty string");
	CHECK(carp_pfsense_password("a b'c", NULL, 0) == 5, "pfSense: outlen 0 only measures");
	CHECK(carp_pfsense_password(NULL, out, sizeof(out)) == 0 && out[0] == '\0',
	      "pfSense: NULL is empty");

	/* long GUI password: escapes count towards ifconfig's 19 bytes */
	char typed[CARP_PASSWORD_MAX + 1];
	uint8_t key[CARP_KEY_LEN], want[CARP_KEY_LEN] = {0};
	CHECK(carp_pfsense_password("a\"b\"c\"d\"e\"f\"g\"h\"i", typed, sizeof(typed)) == 25,
	      "pfSense: 17 characters + 8 escapes");
	carp_key_from_password(typed, key);
	memcpy(want, "a\\\"b\\\"c\\\"d\\\"e\\\"f\\\"g", 19);
	CHECK_BYTES(key, want, CARP_KEY_LEN, "pfSense: escaped password cut at 19 bytes");
}

static void test_keys(void)
{
	uint8_t key[CARP_KEY_LEN], zero[CARP_KEY_LEN] = {0}, want[CARP_KEY_LEN] = {0};

	memset(key, 0xff, sizeof(key));
	carp_key_from_password("", key);
	CHECK_BYTES(key, zero, CARP_KEY_LEN, "key: empty password is the zero key");
	memset(key, 0xff, sizeof(key));
	carp_key_from_password(NULL, key);
	CHECK_BYTES(key, zero, CARP_KEY_LEN, "key: NULL is the zero key");
	carp_key_from_password("0123456789abcdefghi", key);
	memcpy(want, "0123456789abcdefghi", 19);
	CHECK_BYTES(key, want, CARP_KEY_LEN, "key: 19 bytes kept");
	carp_key_from_password("0123456789abcdefghiJ", key);
	CHECK_BYTES(key, want, CARP_KEY_LEN, "key: 20th byte dropped (strlcpy)");
	memset(want, 0, sizeof(want));
	carp_key_from_password("a", key);
	want[0] = 'a';
	CHECK_BYTES(key, want, CARP_KEY_LEN, "key: NUL padded");
}

/* ---- the header codec -------------------------------------------------------- */

static const char *tv2_carp = "2101640700018503112233445566778893e813d5534a2be8ec9ca4d4e0717b"
			      "6b33839cdb";

static void test_cksum(void)
{
	static const uint8_t rfc1071[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
	static const uint8_t odd[] = {0x01};
	static const uint8_t carry[] = {0xff, 0xff, 0x00, 0x01};

	CHECK(inet_cksum(rfc1071, sizeof(rfc1071)) == (uint16_t)~0xddf2, "cksum: RFC 1071 example");
	CHECK(inet_cksum(odd, 1) == 0xfeff, "cksum: odd length pads with zero");
	CHECK(inet_cksum(rfc1071, 0) == 0xffff, "cksum: empty");
	CHECK(inet_cksum(carry, sizeof(carry)) == 0xfffe, "cksum: end-around carry");
}

static void test_encode(void)
{
	struct carp_adv adv;
	uint8_t out[CARP_HDR_LEN];

	memset(&adv, 0x5a, sizeof(adv));
	carp_adv_init(&adv, 200, 3, 17, 0x0123456789abcdefULL);
	CHECK(adv.version == 2 && adv.type == 1 && adv.vhid == 200 && adv.advbase == 3 &&
		      adv.advskew == 17 && adv.authlen == 7 && adv.reserved == 0 &&
		      adv.counter == 0x0123456789abcdefULL,
	      "adv_init: FreeBSD's constants and the given values");
	CHECK(adv.md[0] == 0 && adv.md[19] == 0 && adv.cksum == 0, "adv_init: the rest zeroed");

	/* fields are taken as given, e.g. OpenBSD's demote count in the reserved byte */
	adv.version = 3;
	adv.type = 0x0f;
	adv.reserved = 0x42;
	adv.authlen = 0;
	carp_encode(&adv, out);
	CHECK(out[0] == 0x3f && out[3] == 0 && out[4] == 0x42, "encode: fields as given");
	CHECK(out[8] == 0x01 && out[15] == 0xef, "encode: counter big-endian");
	CHECK(inet_cksum(out, CARP_HDR_LEN) == 0, "encode: checksum over the 36 bytes");

	/* round trip through decode */
	struct carp_adv dec;
	carp_adv_init(&adv, 255, 255, 240, UINT64_MAX);
	for (int i = 0; i < CARP_MD_LEN; i++)
		adv.md[i] = (uint8_t)(i * 13);
	carp_encode(&adv, out);
	CHECK(carp_decode(out, sizeof(out), &dec) == CARP_OK, "round trip: decodes");
	CHECK(dec.version == adv.version && dec.type == adv.type && dec.vhid == adv.vhid &&
		      dec.advskew == adv.advskew && dec.authlen == adv.authlen &&
		      dec.reserved == adv.reserved && dec.advbase == adv.advbase &&
		      dec.counter == adv.counter && memcmp(dec.md, adv.md, CARP_MD_LEN) == 0,
	      "round trip: same fields");
	CHECK(dec.cksum == (uint16_t)(out[6] << 8 | out[7]), "round trip: checksum as written");
}

static void test_decode_errors(void)
{
	uint8_t p[64], q[64];
	struct carp_adv adv;

	unhex(tv2_carp, p, sizeof(p));

	CHECK(carp_decode(p, 0, &adv) == CARP_ERR_BADLEN, "decode: length 0 is BADLEN");
	CHECK(carp_decode(NULL, 0, &adv) == CARP_ERR_BADLEN, "decode: NULL is BADLEN");
	CHECK(carp_decode(p, 7, &adv) == CARP_ERR_BADLEN, "decode: length 7 is BADLEN");
	CHECK(carp_decode(p, 8, &adv) == CARP_ERR_BADLEN, "decode: length 8 (v2) is BADLEN");
	CHECK(carp_decode(p, 35, &adv) == CARP_ERR_BADLEN, "decode: length 35 is BADLEN");
	CHECK(carp_decode(p, 36, &adv) == CARP_OK, "decode: length 36 is OK");

	/* the version is checked before the CARP length, after the 8-byte one */
	memcpy(q, p, 36);
	q[0] = 0x11;
	CHECK(carp_decode(q, 36, &adv) == CARP_ERR_BADVER, "decode: version 1 is BADVER");
	q[0] = 0x31;
	CHECK(carp_decode(q, 35, &adv) == CARP_ERR_BADVER, "decode: version 3, 35 bytes: BADVER");
	q[0] = 0xf1;
	CHECK(carp_decode(q, 36, &adv) == CARP_ERR_BADVER, "decode: version 15 is BADVER");
	q[0] = 0x01;
	CHECK(carp_decode(q, 7, &adv) == CARP_ERR_BADLEN, "decode: 7 bytes, version 0: BADLEN");

	/* checksum: a flipped bit anywhere */
	for (size_t i = 0; i < 36; i++) {
		memcpy(q, p, 36);
		q[i] ^= (uint8_t)(1u << (i % 8));
		if (i == 0)
			q[0] ^= 0x03; /* stay on version 2: flip the type bits instead */
		if (carp_decode(q, 36, &adv) != CARP_ERR_BADSUM) {
			char what[64];
			snprintf(what, sizeof(what), "decode: flipped bit in byte %zu is BADSUM",
				 i);
			CHECK(0, what);
			goto flipped_done;
		}
	}
	CHECK(1, "decode: a flipped bit in any byte is BADSUM");
flipped_done:

	/* on BADSUM the fields are still filled, for logging */
	memcpy(q, p, 36);
	q[20] ^= 0xff;
	memset(&adv, 0, sizeof(adv));
	CHECK(carp_decode(q, 36, &adv) == CARP_ERR_BADSUM, "decode: broken md is BADSUM");
	CHECK(adv.vhid == 1 && adv.advskew == 100 && adv.cksum == 0x8503 &&
		      adv.counter == 0x1122334455667788ULL,
	      "decode: BADSUM still fills the fields");

	/* type is not checked (FreeBSD neither); a fixed-up checksum decodes OK */
	struct carp_adv a2;
	carp_decode(p, 36, &a2);
	a2.type = 2;
	carp_encode(&a2, q);
	CHECK(carp_decode(q, 36, &adv) == CARP_OK && adv.type == 2, "decode: type 2 accepted");

	/* Oversize payloads: the checksum spans all len bytes (current FreeBSD IPv4). */
	memcpy(q, p, 36);
	q[36] = 0;
	CHECK(carp_decode(q, 37, &adv) == CARP_OK, "decode: trailing zero byte still sums OK");
	q[36] = 0x01;
	CHECK(carp_decode(q, 37, &adv) == CARP_ERR_BADSUM, "decode: trailing byte breaks the sum");
	/* a sender that pads and sums the whole payload is accepted */
	memcpy(q, p, 36);
	q[36] = 0x12;
	q[37] = 0x34;
	q[38] = 0x56;
	q[39] = 0x78;
	q[6] = q[7] = 0;
	uint16_t s = inet_cksum(q, 40);
	q[6] = (uint8_t)(s >> 8);
	q[7] = (uint8_t)s;
	CHECK(carp_decode(q, 40, &adv) == CARP_OK, "decode: 40 bytes summed as a whole are OK");
	CHECK(adv.cksum == s && adv.counter == 0x1122334455667788ULL,
	      "decode: oversize payload fields");
	CHECK(carp_decode(q, 36, &adv) == CARP_ERR_BADSUM,
	      "decode: the same header cut to 36 bytes is BADSUM");
	q[39] ^= 0x01;
	CHECK(carp_decode(q, 40, &adv) == CARP_ERR_BADSUM, "decode: changed trailing byte BADSUM");
}

/* ---- the HMAC context -------------------------------------------------------- */

static void test_auth_sets(void)
{
	static const char *tv3[] = {"10.0.0.20", "192.168.1.1", "10.0.0.3", NULL};
	static const char *tv3_missing[] = {"10.0.0.20", "10.0.0.3", NULL};
	static const char *tv3_extra[] = {"10.0.0.20", "192.168.1.1", "10.0.0.3", "10.0.0.4", NULL};
	static const char *tv3_dups[] = {"10.0.0.3",	"10.0.0.20", "192.168.1.1", "10.0.0.20",
					 "192.168.1.1", "10.0.0.3",  "10.0.0.3",    NULL};
	static const char *tv3_sentinels[] = {"0.0.0.0",     "10.0.0.20", "255.255.255.255",
					      "192.168.1.1", "10.0.0.3",  NULL};
	static const char *tv4_v4[] = {"198.51.100.10", NULL};
	static const char *tv4_v6[] = {"2001:db8::10", "fe80::1", NULL};
	static const char *tv4_v6_scoped[] = {"fe80:7::1", "2001:db8::10", "fe80::1",
					      "2001:db8::10", NULL};
	static const char *tv4_v6_missing[] = {"2001:db8::10", NULL};
	static const char *tv4_v6_other_ll[] = {"2001:db8::10", "fe80::2", NULL};
	uint8_t key[CARP_KEY_LEN], carp[CARP_HDR_LEN];
	struct carp_auth auth;
	struct carp_adv adv;

	/* TV3's advertisement against other address sets */
	carp_key_from_password("secret", key);
	unhex("21050007000121c0fedcba98765432104b6ac71a6fe1b17675177a422a21bc0b55d1fc22", carp,
	      sizeof(carp));
	carp_decode(carp, sizeof(carp), &adv);
	prepare(&auth, key, 5, tv3, NULL);
	CHECK(carp_auth_verify(&auth, &adv), "auth: TV3 verifies");
	prepare(&auth, key, 5, tv3_missing, NULL);
	CHECK(!carp_auth_verify(&auth, &adv), "auth: one address missing fails");
	prepare(&auth, key, 5, tv3_extra, NULL);
	CHECK(!carp_auth_verify(&auth, &adv), "auth: one address too many fails");
	prepare(&auth, key, 5, tv3_dups, NULL);
	CHECK(msg_is(&auth, "020105 0a000003 0a000014 c0a80101"), "auth: duplicates hashed once");
	CHECK(carp_auth_verify(&auth, &adv), "auth: duplicates verify like TV3");
	prepare(&auth, key, 5, tv3_sentinels, NULL);
	CHECK(msg_is(&auth, "020105 0a000003 0a000014 c0a80101"),
	      "auth: 0.0.0.0 and 255.255.255.255 never hashed (FreeBSD's sort sentinels)");
	prepare(&auth, key, 6, tv3, NULL);
	CHECK(!carp_auth_verify(&auth, &adv), "auth: another vhid fails");
	carp_key_from_password("Secret", key);
	prepare(&auth, key, 5, tv3, NULL);
	CHECK(!carp_auth_verify(&auth, &adv), "auth: wrong key fails");
	carp_key_from_password("secret", key);
	prepare(&auth, key, 5, tv3, NULL);
	adv.counter++;
	CHECK(!carp_auth_verify(&auth, &adv), "auth: another counter fails");
	adv.counter--;
	adv.md[19] ^= 1;
	CHECK(!carp_auth_verify(&auth, &adv), "auth: changed md fails");

	/* TV4: IPv6, link-local scope bytes, de-duplication */
	carp_key_from_password("pfsense", key);
	unhex("210a3207000238c70000000100000002422c3e7d2c1178967ea44522282d19fea588a356", carp,
	      sizeof(carp));
	carp_decode(carp, sizeof(carp), &adv);
	prepare(&auth, key, 10, tv4_v4, tv4_v6);
	CHECK(carp_auth_verify(&auth, &adv), "auth: TV4 verifies");
	prepare(&auth, key, 10, tv4_v4, tv4_v6_scoped);
	CHECK(carp_auth_verify(&auth, &adv),
	      "auth: KAME scope id in bytes 2-3 ignored, IPv6 duplicates hashed once");
	prepare(&auth, key, 10, tv4_v4, tv4_v6_missing);
	CHECK(!carp_auth_verify(&auth, &adv), "auth: link-local VIP missing fails");
	prepare(&auth, key, 10, tv4_v4, tv4_v6_other_ll);
	CHECK(!carp_auth_verify(&auth, &adv), "auth: different link-local VIP fails");
	prepare(&auth, key, 10, NULL, tv4_v6);
	CHECK(!carp_auth_verify(&auth, &adv), "auth: IPv4 VIP missing from the IPv6 ad fails");
}

static void test_auth_scopes(void)
{
	static const struct {
		const char *addr, *hashed;
	} t[] = {
		{"fe80:1234::1", "fe800000000000000000000000000001"}, /* link-local */
		{"febf:ffff::1", "febf0000000000000000000000000001"}, /* still fe80::/10 */
		{"fec0:1234::1", "fec01234000000000000000000000001"}, /* site-local: kept */
		{"ff02:5::1", "ff020000000000000000000000000001"},    /* link-local multicast */
		{"ff01:5::1", "ff010000000000000000000000000001"},    /* interface-local */
		{"ff12:5::1", "ff120000000000000000000000000001"},    /* flags do not matter */
		{"ff05:5::1", "ff050005000000000000000000000001"},    /* site multicast: kept */
		{"2001:db8:5::1", "20010db8000500000000000000000001"},
	};
	uint8_t key[CARP_KEY_LEN] = {0};
	struct carp_auth auth;
	char want[128];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const char *v6[] = {t[i].addr, NULL};

		prepare(&auth, key, 1, NULL, v6);
		snprintf(want, sizeof(want), "020101 %s", t[i].hashed);
		CHECK(msg_is(&auth, want), name("auth: scope bytes", t[i].addr));
	}

	/* IPv6 order is memcmp after zeroing; :: and all-ones are FreeBSD's sentinels */
	const char *v6[] = {
		"ff02::1",    "fe80:9::2", "::",      "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
		"2001:db8::", "::1",	   "fe80::1", NULL};
	prepare(&auth, key, 1, NULL, v6);
	CHECK(msg_is(&auth, "020101 00000000000000000000000000000001 "
			    "20010db8000000000000000000000000 fe800000000000000000000000000001 "
			    "fe800000000000000000000000000002 ff020000000000000000000000000001"),
	      "auth: IPv6 sorted by memcmp, :: and ffff...ffff never hashed");

	/* IPv4 numeric, not textual or by bytes in host order */
	const char *v4[] = {"10.0.0.1", "9.255.255.255", "1.2.3.4", "10.0.0.0", "128.0.0.1", NULL};
	prepare(&auth, key, 1, v4, v6 + 7);
	CHECK(msg_is(&auth, "020101 01020304 09ffffff 0a000000 0a000001 80000001"),
	      "auth: IPv4 sorted numerically");

	/* no addresses at all: just the three constant bytes */
	prepare(&auth, key, 42, NULL, NULL);
	CHECK(msg_is(&auth, "02012a"), "auth: empty address set");
}

static void test_auth_limits(void)
{
	struct in_addr v4[CARP_MAX_ADDRS + 1];
	struct in6_addr v6[CARP_MAX_ADDRS + 1];
	uint8_t key[CARP_KEY_LEN] = {1}, md[CARP_MD_LEN], carp[CARP_HDR_LEN];
	struct carp_auth auth;
	struct carp_adv adv;

	for (unsigned i = 0; i <= CARP_MAX_ADDRS; i++) {
		/* reverse order, so the sort has work to do */
		v4[i].s_addr = htonl(0x0a000000u + CARP_MAX_ADDRS + 1 - i);
		memset(&v6[i], 0, sizeof(v6[i]));
		v6[i].s6_addr[0] = 0x20;
		v6[i].s6_addr[15] = (uint8_t)(CARP_MAX_ADDRS + 1 - i);
	}

	CHECK(carp_auth_prepare(&auth, key, 1, v4, CARP_MAX_ADDRS, NULL, 0) == 0,
	      "limits: 64 IPv4 addresses accepted");
	CHECK(auth.msg_len == 3 + 4 * CARP_MAX_ADDRS, "limits: 64 IPv4 addresses hashed");
	CHECK(auth.msg[3] == 10 && auth.msg[6] == 2, "limits: smallest first");
	CHECK(carp_auth_prepare(&auth, key, 1, NULL, 0, v6, CARP_MAX_ADDRS) == 0,
	      "limits: 64 IPv6 addresses accepted");
	CHECK(auth.msg_len == 3 + 16 * CARP_MAX_ADDRS, "limits: 64 IPv6 addresses hashed");

	/* the largest message still authenticates */
	carp_adv_init(&adv, 1, 1, 0, 77);
	carp_auth_hmac(&auth, 77, adv.md);
	carp_encode(&adv, carp);
	carp_decode(carp, sizeof(carp), &adv);
	CHECK(carp_auth_verify(&auth, &adv), "limits: 64 IPv6 addresses verify");

	CHECK(carp_auth_prepare(&auth, key, 1, v4, CARP_MAX_ADDRS + 1, NULL, 0) == -1,
	      "limits: 65 IPv4 addresses refused");
	CHECK(carp_auth_prepare(&auth, key, 1, NULL, 0, v6, CARP_MAX_ADDRS + 1) == -1,
	      "limits: 65 IPv6 addresses refused");
	CHECK(carp_auth_prepare(&auth, key, 1, v4, 40, v6, 25) == -1,
	      "limits: 40 + 25 addresses refused");
	CHECK(carp_auth_prepare(&auth, key, 1, v4, 40, v6, 24) == 0,
	      "limits: 40 + 24 addresses accepted");
	CHECK(auth.msg_len == 3 + 40 * 4 + 24 * 16, "limits: 40 + 24 addresses hashed");
	size_t before = auth.msg_len;
	memcpy(md, auth.msg, sizeof(md));
	CHECK(carp_auth_prepare(&auth, key, 1, v4, SIZE_MAX, v6, 2) == -1,
	      "limits: n4 + n6 wrapping around refused");
	CHECK(auth.msg_len == before && memcmp(md, auth.msg, sizeof(md)) == 0,
	      "limits: a refused set leaves the context alone");

	/* inputs are not modified */
	CHECK(v4[0].s_addr == htonl(0x0a000041u) && v6[0].s6_addr[15] == 65,
	      "limits: inputs untouched");
}

/* ---- error names --------------------------------------------------------------- */

static void test_err_names(void)
{
	static const char *names[] = {"ok",	 "badlen",  "badver", "badsum",
				      "badauth", "badvhid", "badttl", "badtype"};
	bool all = true;

	for (int e = 0; e < CARP_ERR__COUNT; e++) {
		all &= strcmp(carp_err_name((enum carp_err)e), names[e]) == 0;
		all &= carp_err_explain((enum carp_err)e)[0] != '\0';
	}
	CHECK(all, "err: names match the carpstats counters, each has an explanation");
	CHECK(strstr(carp_err_explain(CARP_ERR_BADAUTH), "password") != NULL,
	      "err: badauth mentions the password");
	CHECK(strcmp(carp_err_name(CARP_ERR__COUNT), "unknown") == 0, "err: out of range");
}

/* ---- GARP and NA ---------------------------------------------------------------- */

static void test_macs(void)
{
	uint8_t mac[6];
	static const uint8_t vmac255[6] = {0x00, 0x00, 0x5e, 0x00, 0x01, 0xff};
	static const uint8_t ssdp[6] = {0x01, 0x00, 0x5e, 0x7f, 0xff, 0xfa};
	static const uint8_t high[6] = {0x01, 0x00, 0x5e, 0x00, 0x00, 0x01};
	static const uint8_t sol[6] = {0x33, 0x33, 0xff, 0x00, 0x12, 0x34};
	struct in6_addr g = ip6("ff02::1:ff00:1234");

	carp_vmac(255, mac);
	CHECK_BYTES(mac, vmac255, 6, "vmac: 00:00:5e:00:01:ff");
	ether_mcast_mac_v4(ip4("239.255.255.250"), mac);
	CHECK_BYTES(mac, ssdp, 6, "mcast v4: low 23 bits");
	ether_mcast_mac_v4(ip4("224.128.0.1"), mac);
	CHECK_BYTES(mac, high, 6, "mcast v4: bit 24 dropped");
	ether_mcast_mac_v6(&g, mac);
	CHECK_BYTES(mac, sol, 6, "mcast v6: 33:33 + low 32 bits");
}

static void test_garp(void)
{
	static const uint8_t eth[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
	uint8_t vmac[6], buf[64], want[42];

	/* computed independently (Python) from the layout in the spec, section 3.7 */
	unhex("ffffffffffff 525400123456 0806 0001 0800 06 04 0001 00005e000101 c0000201 "
	      "000000000000 c0000201",
	      want, sizeof(want));
	carp_vmac(1, vmac);
	memset(buf, 0xee, sizeof(buf));
	CHECK(garp_build(buf, sizeof(buf), eth, vmac, ip4("192.0.2.1")) == 42, "garp: 42 bytes");
	CHECK_BYTES(buf, want, sizeof(want), "garp: frame");
	CHECK(buf[42] == 0xee, "garp: nothing written past 42");
	CHECK(memcmp(buf, "\xff\xff\xff\xff\xff\xff", 6) == 0, "garp: broadcast");
	CHECK(memcmp(buf + 6, eth, 6) == 0, "garp: Ethernet source is the real MAC");
	CHECK(buf[20] == 0 && buf[21] == 1, "garp: op 1 (request)");
	CHECK(memcmp(buf + 22, vmac, 6) == 0, "garp: sender hardware address is the VMAC");
	CHECK(memcmp(buf + 28, buf + 38, 4) == 0, "garp: spa == tpa == VIP");
	CHECK(garp_build(buf, 41, eth, vmac, ip4("192.0.2.1")) == 0, "garp: cap 41 refused");
}

/* ICMPv6 checksum recomputed here with a flat pseudo-header buffer. */
static bool icmp6_sum_ok(const uint8_t *frame)
{
	uint8_t ph[40 + 32];

	memcpy(ph, frame + 14 + 8, 32); /* source and destination */
	memset(ph + 32, 0, 8);
	ph[35] = frame[14 + 5]; /* payload length, low byte */
	ph[39] = frame[14 + 6]; /* next header */
	memcpy(ph + 40, frame + 54, 32);
	return inet_cksum(ph, sizeof(ph)) == 0;
}

static void test_una(void)
{
	struct in6_addr src = ip6("fe80::2"), vip = ip6("2001:db8::1");
	uint8_t vmac[6], buf[128], want[86];

	/* computed independently (Python), and tshark says "Checksum: 0xcb61 [correct]" */
	unhex("333300000001 00005e000101 86dd 6000000000203aff fe800000000000000000000000000002 "
	      "ff020000000000000000000000000001 8800cb61 20000000 20010db8000000000000000000000001 "
	      "0201 00005e000101",
	      want, sizeof(want));
	carp_vmac(1, vmac);
	memset(buf, 0xee, sizeof(buf));
	CHECK(una_build(buf, sizeof(buf), vmac, &src, &vip, false) == 86, "una: 86 bytes");
	CHECK_BYTES(buf, want, sizeof(want), "una: frame");
	CHECK(buf[86] == 0xee, "una: nothing written past 86");
	CHECK(memcmp(buf + 6, vmac, 6) == 0, "una: Ethernet source is the VMAC");
	CHECK(buf[14 + 7] == 255, "una: hop limit 255");
	CHECK(buf[54] == 136 && buf[55] == 0, "una: type 136 code 0");
	CHECK(buf[58] == 0x20, "una: O=1 R=0 S=0");
	CHECK(memcmp(buf + 62, &vip, 16) == 0, "una: target is the VIP");
	CHECK(buf[78] == 2 && buf[79] == 1 && memcmp(buf + 80, vmac, 6) == 0,
	      "una: target link-layer address option = VMAC");
	CHECK(icmp6_sum_ok(buf), "una: ICMPv6 checksum with pseudo-header verifies");

	CHECK(una_build(buf, sizeof(buf), vmac, &src, &vip, true) == 86, "una router: 86 bytes");
	CHECK(buf[58] == 0xa0, "una router: R=1 O=1 S=0");
	CHECK(buf[56] == 0x4b && buf[57] == 0x61, "una router: checksum 0x4b61");
	CHECK(icmp6_sum_ok(buf), "una router: checksum verifies");

	/* another source and target: the checksum follows */
	src = ip6("2001:db8::fffe");
	vip = ip6("fe80::abcd:1");
	una_build(buf, sizeof(buf), vmac, &src, &vip, false);
	CHECK(icmp6_sum_ok(buf), "una: checksum verifies for other addresses");
	CHECK(una_build(buf, 85, vmac, &src, &vip, false) == 0, "una: cap 85 refused");
}

int main(void)
{
	for (size_t i = 0; i < sizeof(tvs) / sizeof(tvs[0]); i++)
		test_vector(&tvs[i]);
	test_tv1_tv2_frames();
	test_tv4_frame();
	test_tv5_20byte_key();
	test_tv6_pfsense();
	test_tv7_skew_not_hashed();
	test_tv8_vrrp();
	test_pfsense_transform();
	test_keys();
	test_cksum();
	test_encode();
	test_decode_errors();
	test_auth_sets();
	test_auth_scopes();
	test_auth_limits();
	test_err_names();
	test_macs();
	test_garp();
	test_una();
	return tap_done();
}

/* fuzz-sources: proto/carp.c proto/sha1.c proto/frames.c */
/* fuzz-libs: -lnettle */
/*
 * tests/fuzz/fuzz_carp.c - libFuzzer target for the CARP codec (proto/carp.h).
 *
 * The input is a CARP payload (the bytes after the IP header). Besides "no crash,
 * no read past len", it checks what decode promises:
 *   - the result agrees with the length/version rules, in FreeBSD's order;
 *   - a decoded header re-encodes to the input's first 36 bytes (the checksum
 *     bytes too when the 36-byte checksum was right);
 *   - the HMAC against a fixed context is consistent with carp_auth_hmac();
 *   - the same header survives the IPv4 and IPv6 frame builders.
 * The input is then reused as an address list and as a GUI password, to fuzz
 * carp_auth_prepare()'s sort and the pfSense transform. Any broken promise aborts.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/carp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

/* TV4's context: key "pfsense", vhid 10, one IPv4 and two IPv6 addresses. */
static const struct carp_auth *fixed_auth(void)
{
	static struct carp_auth auth;
	static bool ready;

	if (!ready) {
		uint8_t key[CARP_KEY_LEN];
		struct in_addr v4 = {.s_addr = 0};
		struct in6_addr v6[2];

		memcpy(&v4.s_addr, "\xc6\x33\x64\x0a", 4); /* 198.51.100.10 */
		memset(v6, 0, sizeof(v6));
		memcpy(v6[0].s6_addr, "\x20\x01\x0d\xb8", 4); /* 2001:db8::10 */
		v6[0].s6_addr[15] = 0x10;
		v6[1].s6_addr[0] = 0xfe; /* fe80::1 */
		v6[1].s6_addr[1] = 0x80;
		v6[1].s6_addr[15] = 0x01;
		carp_key_from_password("pfsense", key);
		CHECK(carp_auth_prepare(&auth, key, 10, &v4, 1, v6, 2) == 0);
		ready = true;
	}
	return &auth;
}

static void check_decode(const uint8_t *data, size_t size)
{
	struct carp_adv adv, again;
	enum carp_err err = carp_decode(data, size, &adv);
	uint8_t out[CARP_HDR_LEN], md[CARP_MD_LEN], frame[128];

	/* the documented order: 8 bytes, version 2, 36 bytes, checksum */
	if (size < 8) {
		CHECK(err == CARP_ERR_BADLEN);
		return;
	}
	if (data[0] >> 4 != CARP_VERSION) {
		CHECK(err == CARP_ERR_BADVER);
		return;
	}
	if (size < CARP_HDR_LEN) {
		CHECK(err == CARP_ERR_BADLEN);
		return;
	}
	CHECK(err == (inet_cksum(data, size) == 0 ? CARP_OK : CARP_ERR_BADSUM));

	/* OK and BADSUM both fill adv: every field must come back out unchanged */
	CHECK(adv.cksum == (uint16_t)(data[6] << 8 | data[7]));
	carp_encode(&adv, out);
	CHECK(inet_cksum(out, CARP_HDR_LEN) == 0);
	CHECK(memcmp(out, data, 6) == 0);
	CHECK(memcmp(out + 8, data + 8, CARP_HDR_LEN - 8) == 0);
	if (inet_cksum(data, CARP_HDR_LEN) == 0) {
		/* The 36-byte checksum was right, so encode must find the same value;
		 * ones' complement has two zeros, and 0xffff verifies wherever the
		 * computed checksum is 0x0000. */
		bool same = out[6] == data[6] && out[7] == data[7];
		bool minus_zero = out[6] == 0 && out[7] == 0 && data[6] == 0xff && data[7] == 0xff;

		CHECK(same || minus_zero);
	}

	/* the HMAC: verify is exactly "md equals carp_auth_hmac()" */
	const struct carp_auth *auth = fixed_auth();
	carp_auth_hmac(auth, adv.counter, md);
	CHECK(carp_auth_verify(auth, &adv) == (memcmp(md, adv.md, CARP_MD_LEN) == 0));
	again = adv;
	memcpy(again.md, md, CARP_MD_LEN);
	CHECK(carp_auth_verify(auth, &again));

	/* through the frame builders and back */
	static const uint8_t mac[6] = {0x00, 0x00, 0x5e, 0x00, 0x01, 0x01};
	struct in_addr src4 = {.s_addr = 0}, dst4 = {.s_addr = 0};
	struct in6_addr src6, dst6;
	memset(&src6, 0, sizeof(src6));
	memset(&dst6, 0, sizeof(dst6));
	CHECK(carp_build_ipv4(frame, sizeof(frame), mac, mac, src4, dst4, out) ==
	      CARP_IPV4_FRAME_LEN);
	CHECK(inet_cksum(frame + 14, 20) == 0);
	CHECK(carp_decode(frame + 34, CARP_HDR_LEN, &again) == CARP_OK);
	CHECK(memcmp(frame + 34, out, CARP_HDR_LEN) == 0);
	CHECK(carp_build_ipv6(frame, sizeof(frame), mac, mac, &src6, &dst6, out) ==
	      CARP_IPV6_FRAME_LEN);
	CHECK(memcmp(frame + 54, out, CARP_HDR_LEN) == 0);
}

/* Does the prefix of a prepared message look like FreeBSD's: constants, then
 * strictly ascending IPv4 values, then strictly ascending IPv6 values? */
static void check_prepared(const struct carp_auth *a, uint8_t vhid, size_t k4, size_t k6)
{
	CHECK(a->msg_len == 3 + 4 * k4 + 16 * k6);
	CHECK(a->msg[0] == 2 && a->msg[1] == 1 && a->msg[2] == vhid);
	for (size_t i = 1; i < k4; i++)
		CHECK(memcmp(a->msg + 3 + 4 * (i - 1), a->msg + 3 + 4 * i, 4) < 0);
	const uint8_t *v6 = a->msg + 3 + 4 * k4;
	for (size_t i = 1; i < k6; i++)
		CHECK(memcmp(v6 + 16 * (i - 1), v6 + 16 * i, 16) < 0);
	for (size_t i = 0; i < k6; i++) {
		const uint8_t *x = v6 + 16 * i;
		bool scoped = (x[0] == 0xfe && (x[1] & 0xc0) == 0x80) ||
			      (x[0] == 0xff && ((x[1] & 0x0f) == 1 || (x[1] & 0x0f) == 2));
		CHECK(!scoped || (x[2] == 0 && x[3] == 0));
	}
}

/* Byte 0 gives the IPv4 count, byte 1 the IPv6 count (either may exceed the
 * limit on purpose), the rest the addresses. */
static void check_addresses(const uint8_t *data, size_t size)
{
	struct in_addr v4[80], r4[80];
	struct in6_addr v6[80], r6[80];
	struct carp_auth a, b;
	uint8_t key[CARP_KEY_LEN] = {0};

	if (size < 3)
		return;
	size_t n4 = data[0] % 80, n6 = data[1] % 80;
	uint8_t vhid = data[2];
	data += 3;
	size -= 3;
	if (n4 * 4 + n6 * 16 > size)
		return;
	memcpy(v4, data, n4 * 4);
	memcpy(v6, data + n4 * 4, n6 * 16);

	int rc = carp_auth_prepare(&a, key, vhid, v4, n4, v6, n6);
	CHECK(rc == (n4 + n6 > CARP_MAX_ADDRS ? -1 : 0));
	if (rc)
		return;

	/* expected counts: distinct values, minus FreeBSD's two sentinels each */
	size_t k4 = 0, k6 = 0;
	for (size_t i = 0; i < n4; i++) {
		bool dup = false;
		for (size_t j = 0; j < i; j++)
			dup |= v4[j].s_addr == v4[i].s_addr;
		if (!dup && v4[i].s_addr != 0 && v4[i].s_addr != 0xffffffffu)
			k4++;
	}
	uint8_t norm[80][16];
	static const uint8_t zeros[16], ones[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
						    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	for (size_t i = 0; i < n6; i++) {
		uint8_t *x = norm[i];
		bool dup = false;

		memcpy(x, v6[i].s6_addr, 16);
		if ((x[0] == 0xfe && (x[1] & 0xc0) == 0x80) ||
		    (x[0] == 0xff && ((x[1] & 0x0f) == 1 || (x[1] & 0x0f) == 2)))
			x[2] = x[3] = 0;
		for (size_t j = 0; j < i; j++)
			dup |= memcmp(norm[j], x, 16) == 0;
		if (!dup && memcmp(x, zeros, 16) != 0 && memcmp(x, ones, 16) != 0)
			k6++;
	}
	check_prepared(&a, vhid, k4, k6);

	/* the order of the configuration does not matter */
	for (size_t i = 0; i < n4; i++)
		r4[i] = v4[n4 - 1 - i];
	for (size_t i = 0; i < n6; i++)
		r6[i] = v6[n6 - 1 - i];
	CHECK(carp_auth_prepare(&b, key, vhid, r4, n4, r6, n6) == 0);
	CHECK(a.msg_len == b.msg_len && memcmp(a.msg, b.msg, a.msg_len) == 0);
}

static void check_password(const uint8_t *data, size_t size)
{
	char gui[64], out[160], small[8];
	uint8_t key[CARP_KEY_LEN];
	size_t n = size < sizeof(gui) - 1 ? size : sizeof(gui) - 1;

	memcpy(gui, data, n);
	gui[n] = '\0';
	size_t need = carp_pfsense_password(gui, out, sizeof(out));
	CHECK(need < sizeof(out) && strlen(out) == need); /* at most 2 x 63 bytes */
	CHECK(strchr(out, ' ') == NULL);
	size_t len = carp_pfsense_password(gui, small, sizeof(small));
	CHECK(len == need && strlen(small) == (need < sizeof(small) ? need : sizeof(small) - 1));
	CHECK(strncmp(small, out, strlen(small)) == 0);
	CHECK(carp_pfsense_password(gui, NULL, 0) == need);

	carp_key_from_password(out, key);
	size_t k = need < CARP_PASSWORD_MAX ? need : CARP_PASSWORD_MAX;
	CHECK(memcmp(key, out, k) == 0);
	for (size_t i = k; i < CARP_KEY_LEN; i++)
		CHECK(key[i] == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_decode(data, size);
	check_addresses(data, size);
	check_password(data, size);
	return 0;
}

/* proto/sha1.c: HMAC-SHA1 (over Nettle) against RFC 2202; the constant-time compare. */
#include <stdio.h>
#include <string.h>

#include "proto/sha1.h"
#include "tap.h"

int main(void)
{
	/* RFC 2202 section 3 */
	static const struct {
		const char *key_hex;
		size_t key_repeat; /* the key byte repeated (0: key_hex as it is) */
		const char *msg;
		size_t msg_repeat;
		const char *md_hex;
	} h[] = {
		{"0b", 20, "Hi There", 1, "b617318655057264e28bc0b6fb378c8ef146be00"},
		{"4a656665", 0, "what do ya want for nothing?", 1,
		 "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"},
		{"aa", 20, "\xdd", 50, "125d7342b9ac11cd91a39af48aa17b4f63f175d3"},
		{"0c", 20, "Test With Truncation", 1, "4c1a03424b55e07fe7f27be1d58bb9324a9a5a04"},
		{"aa", 80, "Test Using Larger Than Block-Size Key - Hash Key First", 1,
		 "aa4ae5e15272d00e95705637ce8a3b55ed402112"},
		{"aa", 80,
		 "Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data", 1,
		 "e8e99d0f45237d786d6bbaa7965c7808bbff1a91"},
	};
	for (size_t i = 0; i < sizeof(h) / sizeof(h[0]); i++) {
		uint8_t key[80], msg[128], md[SHA1_LEN], want[SHA1_LEN];
		size_t klen, mlen = 0;
		if (h[i].key_repeat) {
			tap_unhex(h[i].key_hex, key, 1);
			memset(key, key[0], h[i].key_repeat);
			klen = h[i].key_repeat;
		} else {
			klen = (size_t)tap_unhex(h[i].key_hex, key, sizeof(key));
		}
		for (size_t r = 0; r < h[i].msg_repeat; r++) {
			memcpy(msg + mlen, h[i].msg, strlen(h[i].msg));
			mlen += strlen(h[i].msg);
		}
		tap_unhex(h[i].md_hex, want, sizeof(want));
		hmac_sha1(key, klen, msg, mlen, md);
		char what[64];
		snprintf(what, sizeof(what), "hmac-sha1 RFC 2202 case %zu", i + 1);
		CHECK_BYTES(md, want, SHA1_LEN, what);
	}

	uint8_t a[20] = {1, 2, 3}, b[20] = {1, 2, 3};
	CHECK(memcmp_consttime(a, b, sizeof(a)) == 0, "memcmp_consttime: equal");
	b[19] = 1;
	CHECK(memcmp_consttime(a, b, sizeof(a)) != 0, "memcmp_consttime: differ");
	return tap_done();
}

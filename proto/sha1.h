/*
 * proto/sha1.h - SHA-1 (FIPS 180-4) and HMAC-SHA1 (RFC 2104), for the CARP
 * advertisement's HMAC only.
 *
 * carpd used OpenSSL's HMAC() for this one digest; in OpenSSL 3 that loads the
 * provider machinery, and libcrypto then was 3.4 MiB of carpd's 8.4 MiB resident
 * memory (its low-level SHA1_* functions are deprecated). Pure code, no
 * allocation; checked against the FIPS 180 / RFC 3174 and RFC 2202 vectors
 * (tests/unit/proto/test_sha1.c) and CARP's own (test_carp.c).
 */
#ifndef CARPD_PROTO_SHA1_H
#define CARPD_PROTO_SHA1_H

#include <stddef.h>
#include <stdint.h>

#define SHA1_LEN   20
#define SHA1_BLOCK 64

struct sha1 {
	uint32_t h[5];
	uint64_t len; /* bytes hashed so far */
	uint8_t buf[SHA1_BLOCK];
	size_t nbuf;
};

void sha1_init(struct sha1 *c);
void sha1_update(struct sha1 *c, const void *data, size_t len);
void sha1_final(struct sha1 *c, uint8_t md[SHA1_LEN]);

/* md = HMAC-SHA1(key, msg) */
void hmac_sha1(const void *key, size_t keylen, const void *msg, size_t msglen,
	       uint8_t md[SHA1_LEN]);

/* 0 if the n bytes are equal, in time independent of where they differ */
int memcmp_consttime(const void *a, const void *b, size_t n);

#endif

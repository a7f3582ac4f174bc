/*
 * proto/sha1.h - HMAC-SHA1 (RFC 2104) for the CARP advertisement's HMAC, over
 * GNU Nettle.
 *
 * carpd first used OpenSSL's HMAC(). In OpenSSL 3 that loads the provider
 * machinery, and merely linking libcrypto relocates megabytes of its data: 3.4 MiB
 * of carpd's 8.4 MiB resident memory was libcrypto (bench/RESULTS.md, footprint).
 * Nettle, GnuTLS's crypto library, does the same digest for about 0.4 MiB, with
 * no global state. Checked against the RFC 2202 vectors
 * (tests/unit/proto/test_sha1.c) and CARP's own (test_carp.c).
 */
#ifndef CARPD_PROTO_SHA1_H
#define CARPD_PROTO_SHA1_H

#include <stddef.h>
#include <stdint.h>

#define SHA1_LEN 20

/* md = HMAC-SHA1(key, msg) */
void hmac_sha1(const void *key, size_t keylen, const void *msg, size_t msglen,
	       uint8_t md[SHA1_LEN]);

/* 0 if the n bytes are equal, in time independent of where they differ */
int memcmp_consttime(const void *a, const void *b, size_t n);

#endif

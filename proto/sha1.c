/* proto/sha1.c - see sha1.h. */
#include "proto/sha1.h"

#include <nettle/hmac.h>
#include <nettle/memops.h>

void hmac_sha1(const void *key, size_t keylen, const void *msg, size_t msglen, uint8_t md[SHA1_LEN])
{
	struct hmac_sha1_ctx ctx;
	hmac_sha1_set_key(&ctx, keylen, key);
	hmac_sha1_update(&ctx, msglen, msg);
	hmac_sha1_digest(&ctx, SHA1_LEN, md);
}

int memcmp_consttime(const void *a, const void *b, size_t n)
{
	return memeql_sec(a, b, n) ? 0 : 1;
}

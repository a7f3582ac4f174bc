/*
 * proto/carp.c - the 36-byte CARP header, its checksum, keys and the HMAC.
 * See carp.h; the Ethernet/IP frame builders live in frames.c.
 * Pure: no sockets, no globals, no allocation of our own.
 */
#include "proto/carp.h"

#include <string.h>

#include "proto/sha1.h"

const char *carp_err_name(enum carp_err err)
{
	switch (err) {
	case CARP_OK:
		return "ok";
	case CARP_ERR_BADLEN:
		return "badlen";
	case CARP_ERR_BADVER:
		return "badver";
	case CARP_ERR_BADSUM:
		return "badsum";
	case CARP_ERR_BADAUTH:
		return "badauth";
	case CARP_ERR_BADVHID:
		return "badvhid";
	case CARP_ERR_BADTTL:
		return "badttl";
	case CARP_ERR_BADTYPE:
		return "badtype";
	case CARP_ERR__COUNT:
		break;
	}
	return "unknown";
}

const char *carp_err_explain(enum carp_err err)
{
	switch (err) {
	case CARP_OK:
		return "ok";
	case CARP_ERR_BADLEN:
		return "length BAD: shorter than the 36-byte CARP header";
	case CARP_ERR_BADVER:
		return "version BAD: not CARP version 2 (version 3 is VRRPv3, e.g. keepalived)";
	case CARP_ERR_BADSUM:
		return "checksum BAD: corrupt packet";
	case CARP_ERR_BADAUTH:
		return "auth BAD: password or address list differs";
	case CARP_ERR_BADVHID:
		return "vhid BAD: no such vhid on this interface";
	case CARP_ERR_BADTTL:
		return "ttl BAD: multicast advertisements must have TTL 255 (crossed a router?)";
	case CARP_ERR_BADTYPE:
		return "type BAD: not an advertisement (FreeBSD ignores the type)";
	case CARP_ERR__COUNT:
		break;
	}
	return "unknown error";
}

/* ---- checksum -------------------------------------------------------------- */

uint16_t inet_cksum(const void *data, size_t len)
{
	const uint8_t *p = data;
	/* 64 bits cannot overflow for any buffer that fits in memory, so the
	 * end-around carries can all be folded in once at the end. */
	uint64_t sum = 0;

	for (; len > 1; p += 2, len -= 2)
		sum += (uint32_t)p[0] << 8 | p[1];
	if (len)
		sum += (uint32_t)p[0] << 8; /* odd length: pad with a zero byte */
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* ---- header codec ---------------------------------------------------------- */

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

void carp_adv_init(struct carp_adv *adv, uint8_t vhid, uint8_t advbase, uint8_t advskew,
		   uint64_t counter)
{
	memset(adv, 0, sizeof(*adv));
	adv->version = CARP_VERSION;
	adv->type = CARP_TYPE_ADVERTISEMENT;
	adv->vhid = vhid;
	adv->advskew = advskew;
	adv->authlen = CARP_AUTHLEN;
	adv->reserved = 0;
	adv->advbase = advbase;
	adv->counter = counter;
}

void carp_encode(const struct carp_adv *adv, uint8_t out[CARP_HDR_LEN])
{
	uint16_t sum;

	out[0] = (uint8_t)((adv->version & 0x0f) << 4 | (adv->type & 0x0f));
	out[1] = adv->vhid;
	out[2] = adv->advskew;
	out[3] = adv->authlen;
	out[4] = adv->reserved;
	out[5] = adv->advbase;
	out[6] = 0;
	out[7] = 0;
	put64(out + 8, adv->counter);
	memcpy(out + 16, adv->md, CARP_MD_LEN);
	/* over the 36 bytes only, no pseudo-header, for IPv4 and IPv6 alike */
	sum = inet_cksum(out, CARP_HDR_LEN);
	out[6] = (uint8_t)(sum >> 8);
	out[7] = (uint8_t)sum;
}

enum carp_err carp_decode(const uint8_t *payload, size_t len, struct carp_adv *adv)
{
	/* FreeBSD first asks for a VRRPv3-sized header (8 bytes) so it can read the
	 * version, and only then for the full CARP header. */
	if (!payload || len < 8)
		return CARP_ERR_BADLEN;
	if (payload[0] >> 4 != CARP_VERSION)
		return CARP_ERR_BADVER;
	if (len < CARP_HDR_LEN)
		return CARP_ERR_BADLEN;

	adv->version = payload[0] >> 4;
	adv->type = payload[0] & 0x0f;
	adv->vhid = payload[1];
	adv->advskew = payload[2];
	adv->authlen = payload[3];
	adv->reserved = payload[4];
	adv->advbase = payload[5];
	adv->cksum = (uint16_t)(payload[6] << 8 | payload[7]);
	adv->counter = get64(payload + 8);
	memcpy(adv->md, payload + 16, CARP_MD_LEN);

	/* Current FreeBSD sums everything up to ip_len for IPv4, so trailing bytes
	 * count; a sender that pads must fix the checksum up (we never pad). */
	if (inet_cksum(payload, len) != 0)
		return CARP_ERR_BADSUM;
	return CARP_OK;
}

/* ---- keys ------------------------------------------------------------------ */

void carp_key_from_password(const char *password, uint8_t key[CARP_KEY_LEN])
{
	memset(key, 0, CARP_KEY_LEN);
	if (!password)
		return;
	/* ifconfig strlcpy()s into a 20-byte buffer: 19 bytes and the NUL */
	memcpy(key, password, strnlen(password, CARP_PASSWORD_MAX));
}

/* Stores c while there is room for the NUL and counts it regardless, which gives
 * snprintf()'s truncation and return value. */
static void emit(char *out, size_t outlen, size_t *need, char c)
{
	if (outlen > 0 && *need < outlen - 1)
		out[*need] = c;
	(*need)++;
}

size_t carp_pfsense_password(const char *gui_password, char *out, size_t outlen)
{
	size_t need = 0;

	for (const char *p = gui_password; p && *p; p++) {
		/* str_replace(" ", "", ...): only ASCII spaces, not tabs */
		if (*p == ' ')
			continue;
		/* addslashes(): ' " and \ get a backslash (NUL cannot occur in a C string) */
		if (*p == '\'' || *p == '"' || *p == '\\')
			emit(out, outlen, &need, '\\');
		emit(out, outlen, &need, *p);
	}
	if (outlen > 0)
		out[need < outlen ? need : outlen - 1] = '\0';
	return need;
}

/* ---- HMAC ------------------------------------------------------------------ */

/* IN6_IS_SCOPE_EMBED() of FreeBSD's kernel: link-local unicast (fe80::/10) and
 * interface-local (ffx1) or link-local (ffx2) multicast, whatever the flags. KAME
 * keeps the zone id in bytes 2-3 of such addresses, and carp zeroes them. */
static bool v6_scope_embedded(const uint8_t a[16])
{
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
		return true;
	return a[0] == 0xff && ((a[1] & 0x0f) == 0x01 || (a[1] & 0x0f) == 0x02);
}

static uint32_t v4_value(const struct in_addr *a)
{
	const uint8_t *b = (const uint8_t *)&a->s_addr;

	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

int carp_auth_prepare(struct carp_auth *auth, const uint8_t key[CARP_KEY_LEN], uint8_t vhid,
		      const struct in_addr *v4, size_t n4, const struct in6_addr *v6, size_t n6)
{
	uint8_t *m;

	/* written so that n4 + n6 cannot wrap around */
	if (n4 > CARP_MAX_ADDRS || n6 > CARP_MAX_ADDRS - n4)
		return -1;

	memcpy(auth->key, key, CARP_KEY_LEN);
	m = auth->msg;
	/* constants, not the received values */
	*m++ = CARP_VERSION;
	*m++ = CARP_TYPE_ADVERTISEMENT;
	*m++ = vhid;

	/*
	 * carp_hmac_prepare()'s selection sort, reproduced exactly rather than with
	 * qsort(): each round hashes the smallest address strictly greater than the
	 * previous one and strictly smaller than the all-ones start value, starting
	 * from zero. So duplicates are hashed once, and 0.0.0.0 / 255.255.255.255
	 * (:: / ffff:...:ffff) are never hashed - nonsense VIPs, but a peer
	 * configured with one must still agree with us.
	 */
	for (uint32_t last = 0;;) {
		uint32_t cur = UINT32_MAX;
		bool found = false;

		for (size_t i = 0; i < n4; i++) {
			uint32_t v = v4_value(&v4[i]);

			if (v > last && v < cur) {
				cur = v;
				found = true;
			}
		}
		if (!found)
			break;
		*m++ = (uint8_t)(cur >> 24); /* network order, as the kernel hashes s_addr */
		*m++ = (uint8_t)(cur >> 16);
		*m++ = (uint8_t)(cur >> 8);
		*m++ = (uint8_t)cur;
		last = cur;
	}

	uint8_t last6[16];
	memset(last6, 0x00, sizeof(last6));
	for (;;) {
		uint8_t cur6[16];
		bool found = false;

		memset(cur6, 0xff, sizeof(cur6));
		for (size_t i = 0; i < n6; i++) {
			uint8_t a[16];

			memcpy(a, v6[i].s6_addr, 16);
			if (v6_scope_embedded(a)) {
				a[2] = 0;
				a[3] = 0;
			}
			if (memcmp(a, last6, 16) > 0 && memcmp(a, cur6, 16) < 0) {
				memcpy(cur6, a, 16);
				found = true;
			}
		}
		if (!found)
			break;
		memcpy(m, cur6, 16);
		m += 16;
		memcpy(last6, cur6, 16);
	}

	auth->msg_len = (size_t)(m - auth->msg);
	return 0;
}

/* false only if the prefix is too long (carp_auth_prepare never makes one) */
static bool auth_hmac(const struct carp_auth *auth, uint64_t counter, uint8_t md[CARP_MD_LEN])
{
	/* auth is const and HMAC() is one-shot, so the prefix is copied next to the
	 * counter; msg[] already reserves the 8 bytes for it. */
	uint8_t msg[sizeof(auth->msg)];

	if (auth->msg_len > sizeof(msg) - 8)
		return false;
	memcpy(msg, auth->msg, auth->msg_len);
	put64(msg + auth->msg_len, counter);
	/* HMAC zero-pads the key to the 64-byte block, so passing all 20 bytes (NULs
	 * included) is what the kernel's hand-made ipad/opad computes. */
	hmac_sha1(auth->key, CARP_KEY_LEN, msg, auth->msg_len + 8, md);
	return true;
}

void carp_auth_hmac(const struct carp_auth *auth, uint64_t counter, uint8_t md[CARP_MD_LEN])
{
	if (!auth_hmac(auth, counter, md))
		memset(md, 0, CARP_MD_LEN);
}

bool carp_auth_verify(const struct carp_auth *auth, const struct carp_adv *adv)
{
	uint8_t md[CARP_MD_LEN];

	/* a failed computation must not compare equal to an all-zero md */
	if (!auth_hmac(auth, adv->counter, md))
		return false;
	/* FreeBSD uses bcmp(); constant time costs nothing here */
	return memcmp_consttime(md, adv->md, CARP_MD_LEN) == 0;
}

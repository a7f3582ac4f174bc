/* proto/carp.c - see carp.h. Pure: no sockets, no globals, no allocation. */
#include "proto/carp.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

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

uint16_t inet_cksum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t sum = 0;
	while (len > 1) {
		sum += (uint32_t)p[0] << 8 | p[1];
		p += 2;
		len -= 2;
	}
	if (len)
		sum += (uint32_t)p[0] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

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
	out[0] = (uint8_t)((adv->version & 0x0f) << 4 | (adv->type & 0x0f));
	out[1] = adv->vhid;
	out[2] = adv->advskew;
	out[3] = adv->authlen;
	out[4] = adv->reserved;
	out[5] = adv->advbase;
	out[6] = out[7] = 0;
	put64(out + 8, adv->counter);
	memcpy(out + 16, adv->md, CARP_MD_LEN);
	put16(out + 6, inet_cksum(out, CARP_HDR_LEN));
}

enum carp_err carp_decode(const uint8_t *payload, size_t len, struct carp_adv *adv)
{
	/* FreeBSD's order: the VRRPv3-sized minimum, the version, the CARP size,
	 * then the checksum over everything up to the IP length. */
	if (!payload || len < 8)
		return CARP_ERR_BADLEN;
	if ((payload[0] >> 4) != CARP_VERSION)
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
	if (inet_cksum(payload, len) != 0)
		return CARP_ERR_BADSUM;
	return CARP_OK;
}

void carp_key_from_password(const char *password, uint8_t key[CARP_KEY_LEN])
{
	memset(key, 0, CARP_KEY_LEN);
	if (!password)
		return;
	size_t n = strnlen(password, CARP_PASSWORD_MAX);
	memcpy(key, password, n);
}

size_t carp_pfsense_password(const char *gui, char *out, size_t outlen)
{
	size_t need = 0;
	for (const char *p = gui; p && *p; p++) {
		if (*p == ' ')
			continue;
		if (*p == '\'' || *p == '"' || *p == '\\') {
			if (outlen && need + 1 < outlen)
				out[need] = '\\';
			need++;
		}
		if (outlen && need + 1 < outlen)
			out[need] = *p;
		need++;
	}
	if (outlen)
		out[need < outlen ? need : outlen - 1] = 0;
	return need;
}

/* IN6_IS_SCOPE_EMBED: link-local unicast, interface- and link-local multicast */
static int v6_scope_embedded(const uint8_t a[16])
{
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
		return 1;
	if (a[0] == 0xff && ((a[1] & 0x0f) == 0x01 || (a[1] & 0x0f) == 0x02))
		return 1;
	return 0;
}

int carp_auth_prepare(struct carp_auth *auth, const uint8_t key[CARP_KEY_LEN], uint8_t vhid,
		      const struct in_addr *v4, size_t n4, const struct in6_addr *v6, size_t n6)
{
	if (n4 + n6 > CARP_MAX_ADDRS)
		return -1;
	memcpy(auth->key, key, CARP_KEY_LEN);
	uint8_t *m = auth->msg;
	*m++ = CARP_VERSION;
	*m++ = CARP_TYPE_ADVERTISEMENT;
	*m++ = vhid;
	/* FreeBSD's selection sort: repeatedly the smallest value strictly greater
	 * than the previous one, so duplicates are hashed once. */
	uint64_t prev = 0;
	int have_prev = 0;
	for (;;) {
		uint64_t best = UINT64_MAX;
		int found = 0;
		for (size_t i = 0; i < n4; i++) {
			const uint8_t *b = (const uint8_t *)&v4[i];
			uint64_t v = (uint64_t)b[0] << 24 | (uint64_t)b[1] << 16 | (uint64_t)b[2] << 8 | b[3];
			if ((!have_prev || v > prev) && (!found || v < best)) {
				best = v;
				found = 1;
			}
		}
		if (!found)
			break;
		m[0] = (uint8_t)(best >> 24);
		m[1] = (uint8_t)(best >> 16);
		m[2] = (uint8_t)(best >> 8);
		m[3] = (uint8_t)best;
		m += 4;
		prev = best;
		have_prev = 1;
	}
	uint8_t last[16];
	have_prev = 0;
	for (;;) {
		uint8_t best[16];
		int found = 0;
		for (size_t i = 0; i < n6; i++) {
			uint8_t a[16];
			memcpy(a, &v6[i], 16);
			if (v6_scope_embedded(a))
				a[2] = a[3] = 0;
			if ((!have_prev || memcmp(a, last, 16) > 0) &&
			    (!found || memcmp(a, best, 16) < 0)) {
				memcpy(best, a, 16);
				found = 1;
			}
		}
		if (!found)
			break;
		memcpy(m, best, 16);
		m += 16;
		memcpy(last, best, 16);
		have_prev = 1;
	}
	auth->msg_len = (size_t)(m - auth->msg);
	return 0;
}

void carp_auth_hmac(const struct carp_auth *auth, uint64_t counter, uint8_t md[CARP_MD_LEN])
{
	uint8_t msg[sizeof(auth->msg)];
	unsigned int mdlen = CARP_MD_LEN;
	memcpy(msg, auth->msg, auth->msg_len);
	put64(msg + auth->msg_len, counter);
	/* HMAC-SHA1 zero-pads the key to the block size, so the 20-byte NUL-padded
	 * key gives what the kernel's hand-rolled ipad/opad gives. */
	if (!HMAC(EVP_sha1(), auth->key, CARP_KEY_LEN, msg, auth->msg_len + 8, md, &mdlen))
		memset(md, 0, CARP_MD_LEN);
}

bool carp_auth_verify(const struct carp_auth *auth, const struct carp_adv *adv)
{
	uint8_t md[CARP_MD_LEN];
	carp_auth_hmac(auth, adv->counter, md);
	return memcmp(md, adv->md, CARP_MD_LEN) == 0;
}

void carp_vmac(uint8_t vhid, uint8_t mac[6])
{
	static const uint8_t prefix[5] = {0x00, 0x00, 0x5e, 0x00, 0x01};
	memcpy(mac, prefix, 5);
	mac[5] = vhid;
}

void ether_mcast_mac_v4(struct in_addr group, uint8_t mac[6])
{
	const uint8_t *g = (const uint8_t *)&group;
	mac[0] = 0x01;
	mac[1] = 0x00;
	mac[2] = 0x5e;
	mac[3] = g[1] & 0x7f;
	mac[4] = g[2];
	mac[5] = g[3];
}

void ether_mcast_mac_v6(const struct in6_addr *group, uint8_t mac[6])
{
	mac[0] = 0x33;
	mac[1] = 0x33;
	memcpy(mac + 2, group->s6_addr + 12, 4);
}

static void put_ether(uint8_t *buf, const uint8_t dst[6], const uint8_t src[6], uint16_t type)
{
	memcpy(buf, dst, 6);
	memcpy(buf + 6, src, 6);
	put16(buf + 12, type);
}

size_t carp_build_ipv4(uint8_t *buf, size_t cap, const uint8_t src_mac[6],
		       const uint8_t dst_mac[6], struct in_addr src, struct in_addr dst,
		       const uint8_t carp[CARP_HDR_LEN])
{
	if (cap < CARP_IPV4_FRAME_LEN)
		return 0;
	put_ether(buf, dst_mac, src_mac, 0x0800);
	uint8_t *ip = buf + 14;
	ip[0] = 0x45;
	ip[1] = CARP_TOS;
	put16(ip + 2, 20 + CARP_HDR_LEN);
	put16(ip + 4, 0);      /* ID 0: atomic datagram (RFC 6864), as FreeBSD */
	put16(ip + 6, 0x4000); /* DF */
	ip[8] = CARP_DFLTTL;
	ip[9] = CARP_PROTO;
	put16(ip + 10, 0);
	memcpy(ip + 12, &src, 4);
	memcpy(ip + 16, &dst, 4);
	put16(ip + 10, inet_cksum(ip, 20));
	memcpy(ip + 20, carp, CARP_HDR_LEN);
	return CARP_IPV4_FRAME_LEN;
}

size_t carp_build_ipv6(uint8_t *buf, size_t cap, const uint8_t src_mac[6],
		       const uint8_t dst_mac[6], const struct in6_addr *src,
		       const struct in6_addr *dst, const uint8_t carp[CARP_HDR_LEN])
{
	if (cap < CARP_IPV6_FRAME_LEN)
		return 0;
	put_ether(buf, dst_mac, src_mac, 0x86dd);
	uint8_t *ip = buf + 14;
	ip[0] = 0x60 | (CARP_TOS >> 4);
	ip[1] = (uint8_t)((CARP_TOS & 0x0f) << 4);
	ip[2] = ip[3] = 0;
	put16(ip + 4, CARP_HDR_LEN);
	ip[6] = CARP_PROTO;
	ip[7] = CARP_DFLTTL;
	memcpy(ip + 8, src, 16);
	memcpy(ip + 24, dst, 16);
	memcpy(ip + 40, carp, CARP_HDR_LEN);
	return CARP_IPV6_FRAME_LEN;
}

size_t garp_build(uint8_t *buf, size_t cap, const uint8_t eth_src[6], const uint8_t vmac[6],
		  struct in_addr vip)
{
	static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	if (cap < 42)
		return 0;
	put_ether(buf, bcast, eth_src, 0x0806);
	uint8_t *a = buf + 14;
	put16(a, 1);          /* hardware: Ethernet */
	put16(a + 2, 0x0800); /* protocol: IPv4 */
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, 1); /* request, as FreeBSD's arp_announce_ifaddr() */
	memcpy(a + 8, vmac, 6);
	memcpy(a + 14, &vip, 4);
	memset(a + 18, 0, 6);
	memcpy(a + 24, &vip, 4);
	return 42;
}

size_t una_build(uint8_t *buf, size_t cap, const uint8_t vmac[6], const struct in6_addr *src,
		 const struct in6_addr *vip, bool router)
{
	static const uint8_t allnodes[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
	static const uint8_t allnodes_mac[6] = {0x33, 0x33, 0, 0, 0, 1};
	const size_t icmp_len = 32; /* 24 NA + 8 target link-layer address option */
	if (cap < 14 + 40 + icmp_len)
		return 0;
	put_ether(buf, allnodes_mac, vmac, 0x86dd);
	uint8_t *ip = buf + 14;
	memset(ip, 0, 40);
	ip[0] = 0x60;
	put16(ip + 4, (uint16_t)icmp_len);
	ip[6] = 58;  /* ICMPv6 */
	ip[7] = 255; /* RFC 4861: hop limit 255 or the NA is ignored */
	memcpy(ip + 8, src, 16);
	memcpy(ip + 24, allnodes, 16);
	uint8_t *icmp = ip + 40;
	memset(icmp, 0, icmp_len);
	icmp[0] = 136;                      /* neighbour advertisement */
	icmp[4] = (uint8_t)((router ? 0x80 : 0) | 0x20); /* R, O=1, S=0 */
	memcpy(icmp + 8, vip, 16);
	icmp[24] = 2; /* target link-layer address */
	icmp[25] = 1; /* length in units of 8 bytes */
	memcpy(icmp + 26, vmac, 6);
	/* checksum over the pseudo-header (src, dst, length, next header) + message */
	uint8_t pseudo[40 + 32];
	memcpy(pseudo, src, 16);
	memcpy(pseudo + 16, allnodes, 16);
	pseudo[32] = pseudo[33] = 0;
	put16(pseudo + 34, (uint16_t)icmp_len);
	pseudo[36] = pseudo[37] = pseudo[38] = 0;
	pseudo[39] = 58;
	memcpy(pseudo + 40, icmp, icmp_len);
	put16(icmp + 2, inet_cksum(pseudo, sizeof(pseudo)));
	return 14 + 40 + icmp_len;
}

/*
 * proto/carp.h - the CARP v2 wire format as FreeBSD's carp(4) speaks it.
 *
 * Pure code: no sockets, no globals, no allocation. Every function works on
 * caller-provided buffers so it can be unit-tested and fuzzed directly.
 * Reference: ../shared/specs/carp.md (sections 1, 2 and 6).
 */
#ifndef CARPD_PROTO_CARP_H
#define CARPD_PROTO_CARP_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CARP_PROTO		112 /* IP protocol number */
#define CARP_HDR_LEN		36  /* the advertisement is always exactly 36 bytes */
#define CARP_VERSION		2
#define CARP_TYPE_ADVERTISEMENT 1
#define CARP_AUTHLEN		7  /* counter + md, in 32-bit words; what FreeBSD sends */
#define CARP_KEY_LEN		20 /* sc_key: the raw key, NUL padded */
#define CARP_PASSWORD_MAX	19 /* ifconfig 'pass' keeps at most 19 bytes (strlcpy) */
#define CARP_MD_LEN		20 /* SHA1 digest */
#define CARP_MAX_ADDRS		64 /* addresses one vhid may carry (both families together) */
#define CARP_DFLTTL		255
#define CARP_TOS		0xE0 /* DSCP CS7 << 2 */
#define CARP_MAXSKEW		240  /* advskew + demotion is clamped to 0..240 on the wire */
#define CARP_BOWOUT_ADVBASE	255  /* OpenBSD-style bow-out advertisement on planned stop */
#define CARP_BOWOUT_ADVSKEW	255

#define CARP_IPV4_FRAME_LEN (14 + 20 + CARP_HDR_LEN) /* 70 */
#define CARP_IPV6_FRAME_LEN (14 + 40 + CARP_HDR_LEN) /* 90 */

/* A decoded advertisement, host byte order. */
struct carp_adv {
	uint8_t version; /* high nibble of byte 0 */
	uint8_t type;	 /* low nibble of byte 0 */
	uint8_t vhid;
	uint8_t advskew;
	uint8_t authlen;
	uint8_t reserved; /* OpenBSD's demote count; FreeBSD sends 0 and ignores it */
	uint8_t advbase;
	uint16_t cksum; /* as found on the wire (decode) / as computed (encode) */
	uint64_t counter;
	uint8_t md[CARP_MD_LEN];
};

/*
 * Validation results. Each rejection maps to one FreeBSD carpstats counter
 * (see carp_err_counter()), so the daemon can count every drop by reason.
 */
enum carp_err {
	CARP_OK = 0,
	CARP_ERR_BADLEN,  /* payload shorter than 36 bytes (carps_badlen) */
	CARP_ERR_BADVER,  /* version is not 2 (carps_badver); 3 is VRRPv3 */
	CARP_ERR_BADSUM,  /* checksum does not verify (carps_badsum) */
	CARP_ERR_BADAUTH, /* HMAC differs: password or address list (carps_badauth) */
	CARP_ERR_BADVHID, /* no such vhid here (carps_badvhid) */
	CARP_ERR_BADTTL,  /* TTL / hop limit is not 255 in multicast mode (carps_badttl) */
	CARP_ERR_BADTYPE, /* type is not 1; FreeBSD does not check it, we only report it */
	CARP_ERR__COUNT
};

/* Short counter-style name: "badlen", "badver", ... ("ok" for CARP_OK). */
const char *carp_err_name(enum carp_err err);
/* A sentence an operator understands, e.g. "auth BAD: password or address list differs". */
const char *carp_err_explain(enum carp_err err);

/* RFC 1071 Internet checksum over len bytes (returns the value to store, network order
 * semantics: write it with the high byte first). */
uint16_t inet_cksum(const void *data, size_t len);

/*
 * Encode adv into out[36]. Version, type, authlen and reserved are taken from adv
 * as given (callers normally use carp_adv_init()); the checksum is computed over the
 * 36 bytes and written; adv->cksum is not read.
 */
void carp_encode(const struct carp_adv *adv, uint8_t out[CARP_HDR_LEN]);

/* Fill adv with FreeBSD's constants: version 2, type 1, authlen 7, reserved 0. */
void carp_adv_init(struct carp_adv *adv, uint8_t vhid, uint8_t advbase, uint8_t advskew,
		   uint64_t counter);

/*
 * Decode a CARP payload (the bytes after the IP header). Checks, in FreeBSD's
 * order: len >= 8 else BADLEN; version nibble 2 else BADVER; len >= 36 else BADLEN;
 * the checksum over all len bytes else BADSUM. On success (and on BADSUM, so a
 * decoder can still show the fields) *adv is filled. Never reads past len.
 */
enum carp_err carp_decode(const uint8_t *payload, size_t len, struct carp_adv *adv);

/* ---- keys ------------------------------------------------------------------ */

/* key = password truncated to 19 bytes, NUL padded to 20 (ifconfig 'pass'). "" = zero key. */
void carp_key_from_password(const char *password, uint8_t key[CARP_KEY_LEN]);

/*
 * pfSense's GUI transform (interface_carp_configure(): addslashes(str_replace(" ", ""))):
 * remove every ASCII space, put a backslash before each ', " and \. Writes a
 * NUL-terminated string into out (truncated to outlen-1 bytes) and returns the full
 * length the result needs (like snprintf). Feed the result to carp_key_from_password().
 */
size_t carp_pfsense_password(const char *gui_password, char *out, size_t outlen);

/* ---- HMAC ------------------------------------------------------------------ */

/*
 * The HMAC context of one vhid: key plus the message prefix FreeBSD hashes
 * (02 01 vhid, IPv4 addresses sorted numerically and de-duplicated, IPv6 addresses
 * with bytes 2-3 zeroed when link-local-scoped, sorted by memcmp, de-duplicated).
 * Prepared once when the key or the address set changes.
 */
struct carp_auth {
	uint8_t key[CARP_KEY_LEN];
	size_t msg_len; /* bytes used in msg, before the counter */
	uint8_t msg[3 + CARP_MAX_ADDRS * 16 + 8];
};

/* Returns 0, or -1 if n4 + n6 > CARP_MAX_ADDRS. Inputs are not modified. */
int carp_auth_prepare(struct carp_auth *auth, const uint8_t key[CARP_KEY_LEN], uint8_t vhid,
		      const struct in_addr *v4, size_t n4, const struct in6_addr *v6, size_t n6);

/* md = HMAC-SHA1(key, prefix || counter as 8 big-endian bytes). */
void carp_auth_hmac(const struct carp_auth *auth, uint64_t counter, uint8_t md[CARP_MD_LEN]);

/* true if adv->md is the HMAC of adv->counter under auth. */
bool carp_auth_verify(const struct carp_auth *auth, const struct carp_adv *adv);

/* ---- whole frames ---------------------------------------------------------- */

/* 00:00:5e:00:01:<vhid> */
void carp_vmac(uint8_t vhid, uint8_t mac[6]);

/*
 * Build Ethernet + IPv4 + CARP as FreeBSD emits it: TOS 0xE0, ID 0, DF, TTL 255,
 * protocol 112, total length 56, header checksum. dst_mac is normally
 * 01:00:5e:00:00:12 for 224.0.0.18. Returns CARP_IPV4_FRAME_LEN, or 0 if cap is too small.
 */
size_t carp_build_ipv4(uint8_t *buf, size_t cap, const uint8_t src_mac[6], const uint8_t dst_mac[6],
		       struct in_addr src, struct in_addr dst, const uint8_t carp[CARP_HDR_LEN]);

/* Ethernet + IPv6 (traffic class 0xE0, hop limit 255, next header 112) + CARP.
 * Returns CARP_IPV6_FRAME_LEN, or 0 if cap is too small. */
size_t carp_build_ipv6(uint8_t *buf, size_t cap, const uint8_t src_mac[6], const uint8_t dst_mac[6],
		       const struct in6_addr *src, const struct in6_addr *dst,
		       const uint8_t carp[CARP_HDR_LEN]);

/* Multicast MAC for an IPv4 / IPv6 multicast group (01:00:5e:… / 33:33:…). */
void ether_mcast_mac_v4(struct in_addr group, uint8_t mac[6]);
void ether_mcast_mac_v6(const struct in6_addr *group, uint8_t mac[6]);

/*
 * Gratuitous ARP request as FreeBSD sends on takeover: Ethernet dst broadcast,
 * Ethernet src = eth_src, op 1, sha = vmac, spa = tpa = vip, tha = 0.
 * Returns 42 (14 + 28), or 0 if cap is too small.
 */
size_t garp_build(uint8_t *buf, size_t cap, const uint8_t eth_src[6], const uint8_t vmac[6],
		  struct in_addr vip);

/*
 * Unsolicited neighbour advertisement: Ethernet src vmac, dst 33:33:00:00:00:01,
 * IPv6 src = src, dst ff02::1, hop limit 255, ICMPv6 type 136 with flags O=1 R=0 S=0
 * (R=1 if router), target = vip, option Target Link-Layer Address = vmac.
 * ICMPv6 checksum with the pseudo-header. Returns 86 (14 + 40 + 32), or 0 if cap is too small.
 */
size_t una_build(uint8_t *buf, size_t cap, const uint8_t vmac[6], const struct in6_addr *src,
		 const struct in6_addr *vip, bool router);

#endif

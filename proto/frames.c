/*
 * proto/frames.c - whole Ethernet frames: CARP over IPv4 and IPv6, the
 * gratuitous ARP and the unsolicited neighbour advertisement sent on takeover.
 * See carp.h. Pure: no sockets, no globals, no allocation.
 */
#include "proto/carp.h"

#include <string.h>

#define ETHER_LEN 14
#define IP4_HLEN  20
#define IP6_HLEN  40
#define ARP_LEN	  28
#define NA_LEN	  32 /* 24-byte neighbour advertisement + 8-byte target link-layer option */

static const uint8_t allnodes6[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* Ones' complement sum without the final complement, so that a pseudo-header
 * and a message can be summed in pieces. Every piece but the last must have an
 * even length. */
static uint32_t sum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	for (; len > 1; p += 2, len -= 2)
		sum += (uint32_t)p[0] << 8 | p[1];
	if (len)
		sum += (uint32_t)p[0] << 8;
	return sum;
}

static uint16_t sum_finish(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void put_ether(uint8_t *buf, const uint8_t dst[6], const uint8_t src[6], uint16_t type)
{
	memcpy(buf, dst, 6);
	memcpy(buf + 6, src, 6);
	put16(buf + 12, type);
}

/* version 6, traffic class tc, flow label 0 */
static void put_ip6(uint8_t *ip, uint8_t tc, uint16_t plen, uint8_t nxt, const void *src,
		    const void *dst)
{
	ip[0] = (uint8_t)(0x60 | tc >> 4);
	ip[1] = (uint8_t)(tc << 4);
	ip[2] = 0;
	ip[3] = 0;
	put16(ip + 4, plen);
	ip[6] = nxt;
	ip[7] = 255; /* CARP_DFLTTL; and RFC 4861 drops an NA with any other hop limit */
	memcpy(ip + 8, src, 16);
	memcpy(ip + 24, dst, 16);
}

void carp_vmac(uint8_t vhid, uint8_t mac[6])
{
	mac[0] = 0x00;
	mac[1] = 0x00;
	mac[2] = 0x5e;
	mac[3] = 0x00;
	mac[4] = 0x01;
	mac[5] = vhid;
}

void ether_mcast_mac_v4(struct in_addr group, uint8_t mac[6])
{
	const uint8_t *g = (const uint8_t *)&group.s_addr;

	/* RFC 1112: the low 23 bits of the group */
	mac[0] = 0x01;
	mac[1] = 0x00;
	mac[2] = 0x5e;
	mac[3] = g[1] & 0x7f;
	mac[4] = g[2];
	mac[5] = g[3];
}

void ether_mcast_mac_v6(const struct in6_addr *group, uint8_t mac[6])
{
	/* RFC 2464: 33:33 and the low 32 bits of the group */
	mac[0] = 0x33;
	mac[1] = 0x33;
	memcpy(mac + 2, group->s6_addr + 12, 4);
}

size_t carp_build_ipv4(uint8_t *buf, size_t cap, const uint8_t src_mac[6], const uint8_t dst_mac[6],
		       struct in_addr src, struct in_addr dst, const uint8_t carp[CARP_HDR_LEN])
{
	uint8_t *ip;

	if (!buf || cap < CARP_IPV4_FRAME_LEN)
		return 0;
	ip = buf + ETHER_LEN;
	put_ether(buf, dst_mac, src_mac, 0x0800);
	ip[0] = 0x45; /* version 4, no options */
	ip[1] = CARP_TOS;
	put16(ip + 2, IP4_HLEN + CARP_HDR_LEN);
	/* ID 0: DF makes it an atomic datagram, and FreeBSD's ip_fillid() then
	 * leaves the ID zero (RFC 6864) */
	put16(ip + 4, 0);
	put16(ip + 6, 0x4000); /* DF, offset 0 */
	ip[8] = CARP_DFLTTL;
	ip[9] = CARP_PROTO;
	put16(ip + 10, 0);
	memcpy(ip + 12, &src.s_addr, 4);
	memcpy(ip + 16, &dst.s_addr, 4);
	put16(ip + 10, sum_finish(sum_add(0, ip, IP4_HLEN)));
	memcpy(ip + IP4_HLEN, carp, CARP_HDR_LEN);
	return CARP_IPV4_FRAME_LEN;
}

size_t carp_build_ipv6(uint8_t *buf, size_t cap, const uint8_t src_mac[6], const uint8_t dst_mac[6],
		       const struct in6_addr *src, const struct in6_addr *dst,
		       const uint8_t carp[CARP_HDR_LEN])
{
	if (!buf || cap < CARP_IPV6_FRAME_LEN)
		return 0;
	put_ether(buf, dst_mac, src_mac, 0x86dd);
	put_ip6(buf + ETHER_LEN, CARP_TOS, CARP_HDR_LEN, CARP_PROTO, src->s6_addr, dst->s6_addr);
	/* the CARP checksum has no pseudo-header, even over IPv6: copied as is */
	memcpy(buf + ETHER_LEN + IP6_HLEN, carp, CARP_HDR_LEN);
	return CARP_IPV6_FRAME_LEN;
}

size_t garp_build(uint8_t *buf, size_t cap, const uint8_t eth_src[6], const uint8_t vmac[6],
		  struct in_addr vip)
{
	static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	uint8_t *a;

	if (!buf || cap < ETHER_LEN + ARP_LEN)
		return 0;
	a = buf + ETHER_LEN;
	put_ether(buf, bcast, eth_src, 0x0806);
	put16(a, 1);	      /* hardware type Ethernet */
	put16(a + 2, 0x0800); /* protocol type IPv4 */
	a[4] = 6;
	a[5] = 4;
	/* a request, not a reply: FreeBSD's arp_announce_ifaddr() sends requests */
	put16(a + 6, 1);
	memcpy(a + 8, vmac, 6); /* sha: the VMAC, so neighbours learn it */
	memcpy(a + 14, &vip.s_addr, 4);
	memset(a + 18, 0, 6);
	memcpy(a + 24, &vip.s_addr, 4);
	return ETHER_LEN + ARP_LEN;
}

size_t una_build(uint8_t *buf, size_t cap, const uint8_t vmac[6], const struct in6_addr *src,
		 const struct in6_addr *vip, bool router)
{
	static const uint8_t allnodes_mac[6] = {0x33, 0x33, 0x00, 0x00, 0x00, 0x01};
	uint8_t pseudo[8], *icmp;
	uint32_t sum;

	if (!buf || cap < ETHER_LEN + IP6_HLEN + NA_LEN)
		return 0;
	icmp = buf + ETHER_LEN + IP6_HLEN;
	put_ether(buf, allnodes_mac, vmac, 0x86dd);
	put_ip6(buf + ETHER_LEN, 0, NA_LEN, IPPROTO_ICMPV6, src->s6_addr, allnodes6);

	memset(icmp, 0, NA_LEN);
	icmp[0] = 136; /* neighbour advertisement, code 0 */
	/* O=1 so caches holding the previous master's MAC are overwritten; S=0 as
	 * nobody solicited it; R only when the VIP is a router address */
	icmp[4] = (uint8_t)((router ? 0x80 : 0x00) | 0x20);
	memcpy(icmp + 8, vip->s6_addr, 16);
	icmp[24] = 2; /* option: target link-layer address */
	icmp[25] = 1; /* length in units of 8 bytes */
	memcpy(icmp + 26, vmac, 6);

	/* RFC 8200 pseudo-header: source, destination, upper-layer length (32 bits),
	 * three zero bytes and the next header */
	sum = sum_add(0, src->s6_addr, 16);
	sum = sum_add(sum, allnodes6, 16);
	memset(pseudo, 0, sizeof(pseudo));
	pseudo[3] = NA_LEN;
	pseudo[7] = IPPROTO_ICMPV6;
	sum = sum_add(sum, pseudo, sizeof(pseudo));
	sum = sum_add(sum, icmp, NA_LEN);
	put16(icmp + 2, sum_finish(sum));
	return ETHER_LEN + IP6_HLEN + NA_LEN;
}

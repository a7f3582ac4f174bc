/*
 * proto/flow.h - the neutral connection model both sides map to.
 *
 * A flow is one Linux conntrack entry in conntrack's own terms: an ORIG tuple
 * (as the first packet looked before any NAT), a REPLY tuple (as the answer looks
 * on the wire, which carries the NAT), a TCP state in conntrack numbering and a
 * remaining timeout. daemon/ct.c converts flows to and from the kernel;
 * proto/flow.c converts flows to and from pf states (pfsync). Pure data.
 */
#ifndef CARPD_PROTO_FLOW_H
#define CARPD_PROTO_FLOW_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

union flow_addr {
	struct in_addr v4;
	struct in6_addr v6;
	uint8_t bytes[16];
};

struct flow_tuple {
	union flow_addr src, dst;
	uint16_t sport, dport; /* host order; ICMP: sport = identifier, dport = 0 */
};

/* conntrack's TCP states (CTA_PROTOINFO_TCP_STATE) */
enum flow_tcp_state {
	FLOW_TCP_NONE = 0,
	FLOW_TCP_SYN_SENT = 1,
	FLOW_TCP_SYN_RECV = 2,
	FLOW_TCP_ESTABLISHED = 3,
	FLOW_TCP_FIN_WAIT = 4,
	FLOW_TCP_CLOSE_WAIT = 5,
	FLOW_TCP_LAST_ACK = 6,
	FLOW_TCP_TIME_WAIT = 7,
	FLOW_TCP_CLOSE = 8,
	FLOW_TCP_SYN_SENT2 = 9,
};

/* conntrack status bits we carry (IPS_*) */
#define FLOW_SEEN_REPLY 0x0002u
#define FLOW_ASSURED 0x0004u

struct flow {
	uint8_t af;    /* AF_INET or AF_INET6 */
	uint8_t proto; /* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_ICMPV6, ... */
	struct flow_tuple orig, reply;
	uint8_t icmp_type, icmp_code; /* of the ORIG direction (echo request: 8 / 128) */
	uint8_t tcp_state;            /* enum flow_tcp_state */
	bool wscale_known;            /* both window scale factors are known */
	uint8_t wscale_orig, wscale_repl;
	uint32_t status;              /* FLOW_SEEN_REPLY | FLOW_ASSURED */
	uint32_t timeout;             /* seconds left */
	uint32_t mark;
	uint16_t zone;
	uint64_t packets[2], bytes[2]; /* ORIG, REPLY; informational (needs nf_conntrack_acct) */
};

#endif

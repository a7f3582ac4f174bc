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
#define FLOW_ASSURED	0x0004u

struct flow {
	uint8_t af;    /* AF_INET or AF_INET6 */
	uint8_t proto; /* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_ICMPV6, ... */
	struct flow_tuple orig, reply;
	uint8_t icmp_type, icmp_code; /* of the ORIG direction (echo request: 8 / 128) */
	uint8_t tcp_state;	      /* enum flow_tcp_state */
	bool wscale_known;	      /* both window scale factors are known */
	uint8_t wscale_orig, wscale_repl;
	uint32_t status;  /* FLOW_SEEN_REPLY | FLOW_ASSURED */
	uint32_t timeout; /* seconds left */
	uint32_t mark;
	uint16_t zone;
	uint64_t packets[2], bytes[2]; /* ORIG, REPLY; informational (needs nf_conntrack_acct) */
	/* FLOW_PARTIAL_*: what a conntrack event did not carry. The kernel puts the
	 * TCP state in an event only when it changed (IPCT_PROTOINFO): an event for
	 * a mark change has none, and its tcp_state and wscale fields here mean
	 * nothing. A dump carries everything. */
	uint8_t partial;
};
#define FLOW_PARTIAL_TCP    0x01u /* tcp_state, wscale_* */
#define FLOW_PARTIAL_STATUS 0x02u /* status */

/* ---- the pf side: one pf state as pfsync carries it, decoded ---------------------- */

#define PF_DIR_IN      1
#define PF_DIR_OUT     2
#define PF_SK_WIRE     0
#define PF_SK_STACK    1
#define PF_WSCALE_FLAG 0x80
#define PF_WSCALE_MASK 0x0f
#define PFSTATE_SLOPPY 0x0002
#define PFSTATE_ACK    0x0010

/* BSD TCPS_* as pf keeps them per peer */
enum pf_tcps {
	PF_TCPS_CLOSED = 0,
	PF_TCPS_SYN_SENT = 2,
	PF_TCPS_ESTABLISHED = 4,
	PF_TCPS_CLOSING = 7,
	PF_TCPS_FIN_WAIT_2 = 9,
	PF_TCPS_TIME_WAIT = 10,
	PF_TCPS_PROXY_SRC = 11,
};

/* pf timeout indexes (PFTM_*) */
enum pf_timeout {
	PFTM_TCP_FIRST_PACKET = 0,
	PFTM_TCP_OPENING = 1,
	PFTM_TCP_ESTABLISHED = 2,
	PFTM_TCP_CLOSING = 3,
	PFTM_TCP_FIN_WAIT = 4,
	PFTM_TCP_CLOSED = 5,
	PFTM_UDP_FIRST_PACKET = 6,
	PFTM_UDP_SINGLE = 7,
	PFTM_UDP_MULTIPLE = 8,
	PFTM_ICMP_FIRST_PACKET = 9,
	PFTM_ICMP_ERROR_REPLY = 10,
	PFTM_OTHER_FIRST_PACKET = 11,
	PFTM_OTHER_SINGLE = 12,
	PFTM_OTHER_MULTIPLE = 13,
	PFTM_MAX = 25,
};

struct pf_key {
	union flow_addr addr[2];
	uint16_t port[2]; /* host order */
};

struct pf_peer {
	uint8_t state;	/* TCPS_* for TCP, PFUDPS_* / PFOTHERS_* (0, 1, 2) otherwise */
	uint8_t wscale; /* shift | PF_WSCALE_FLAG */
};

/* The fields of a pf state that have a Linux meaning; ids in host order. */
struct pf_view {
	uint64_t id;
	uint32_t creatorid;
	uint8_t af; /* Linux AF_INET / AF_INET6 */
	uint8_t proto;
	uint8_t direction; /* PF_DIR_IN / PF_DIR_OUT */
	char ifname[16];
	struct pf_key key[2]; /* PF_SK_WIRE, PF_SK_STACK */
	struct pf_peer src, dst;
	uint8_t timeout; /* PFTM_* */
	uint32_t expire; /* seconds left */
	uint16_t state_flags;
};

/* pf's default timeout in seconds for a PFTM_* index (0 for an unknown index). */
uint32_t pf_default_timeout(uint8_t index);

/*
 * Split one conntrack flow into the pf states pf would hold for it (spec §6.4):
 * without NAT or with SNAT: IN (wire = stack = ORIG) and OUT (stack = ORIG,
 * wire = post-NAT); with DNAT: IN (wire = ORIG, stack = the real server) and OUT.
 * id and creatorid are left 0. Returns the number of states (1 or 2), or 0 if the
 * flow cannot be expressed (both SNAT and DNAT, or an unsupported protocol).
 */
int flow_to_pf(const struct flow *f, struct pf_view out[2]);

/*
 * The key a pf state is grouped by on receive: the pre-translation initiator
 * tuple (ORIG candidate), and the tuple after this state's translation.
 */
void pf_orig_candidate(const struct pf_view *s, struct flow_tuple *orig, struct flow_tuple *post);

/*
 * Merge one or two pf states of the same connection (first: the one whose ORIG
 * candidate is the connection's; second: the one that continues it, or NULL)
 * into a conntrack flow. Returns 0, or -1 if the state has nothing conntrack
 * can hold (unknown af, synproxy in progress).
 */
int pf_to_flow(const struct pf_view *first, const struct pf_view *second, struct flow *f);

/* conntrack TCP state <-> pf peer states and timeout index (spec §6.3) */
void flow_tcp_to_pf(uint8_t ct_state, struct pf_peer *src, struct pf_peer *dst, uint8_t *timeout);
int pf_tcp_to_flow(const struct pf_peer *src, const struct pf_peer *dst); /* -1: skip */

#endif

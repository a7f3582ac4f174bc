/*
 * bench/helpers/ct_create.h - the CREATE request ct_fill and ct_latency write into
 * a netlink batch: a UDP entry like the lab's SNATed flows,
 * 198.51.100.50:SPORT -> 203.0.113.254:DPORT, SNAT to 203.0.113.1 (same port),
 * status SEEN_REPLY|ASSURED, TIMEOUT seconds, acknowledged.
 */
#ifndef CARPD_BENCH_CT_CREATE_H
#define CARPD_BENCH_CT_CREATE_H

#include <arpa/inet.h>
#include <stdint.h>

#include <libmnl/libmnl.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>

/* ct: a scratch object (every attribute it reads is set here); the batch must
 * have room for one more request (a few hundred bytes) */
static inline void ct_create_put(struct mnl_nlmsg_batch *b, struct nf_conntrack *ct, uint32_t seq,
				 uint16_t sport, uint16_t dport, uint32_t timeout)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(mnl_nlmsg_batch_current(b));
	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK;
	nlh->nlmsg_seq = seq;
	struct nfgenmsg *nfh = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfh));
	nfh->nfgen_family = AF_INET;
	nfh->version = NFNETLINK_V0;
	nfh->res_id = 0;
	nfct_set_attr_u8(ct, ATTR_L3PROTO, AF_INET);
	nfct_set_attr_u8(ct, ATTR_L4PROTO, IPPROTO_UDP);
	nfct_set_attr_u32(ct, ATTR_IPV4_SRC, inet_addr("198.51.100.50"));
	nfct_set_attr_u32(ct, ATTR_IPV4_DST, inet_addr("203.0.113.254"));
	nfct_set_attr_u16(ct, ATTR_PORT_SRC, htons(sport));
	nfct_set_attr_u16(ct, ATTR_PORT_DST, htons(dport));
	nfct_setobjopt(ct, NFCT_SOPT_SETUP_REPLY);
	nfct_set_attr_u32(ct, ATTR_SNAT_IPV4, inet_addr("203.0.113.1"));
	nfct_set_attr_u16(ct, ATTR_SNAT_PORT, htons(sport));
	nfct_set_attr_u32(ct, ATTR_STATUS, IPS_SEEN_REPLY | IPS_ASSURED);
	nfct_set_attr_u32(ct, ATTR_TIMEOUT, timeout);
	nfct_nlmsg_build(nlh, ct);
	mnl_nlmsg_batch_next(b);
}

#endif

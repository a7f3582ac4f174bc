/* proto/flow.c - conntrack flows <-> pf states (../shared/specs/pfsync.md §6). Pure. */
#include "proto/flow.h"

#include <string.h>
#include <sys/socket.h>

static const uint32_t pf_timeouts[] = {
	[PFTM_TCP_FIRST_PACKET] = 120, [PFTM_TCP_OPENING] = 30,	     [PFTM_TCP_ESTABLISHED] = 86400,
	[PFTM_TCP_CLOSING] = 900,      [PFTM_TCP_FIN_WAIT] = 45,     [PFTM_TCP_CLOSED] = 90,
	[PFTM_UDP_FIRST_PACKET] = 60,  [PFTM_UDP_SINGLE] = 30,	     [PFTM_UDP_MULTIPLE] = 60,
	[PFTM_ICMP_FIRST_PACKET] = 20, [PFTM_ICMP_ERROR_REPLY] = 10, [PFTM_OTHER_FIRST_PACKET] = 60,
	[PFTM_OTHER_SINGLE] = 30,      [PFTM_OTHER_MULTIPLE] = 60,
};

uint32_t pf_default_timeout(uint8_t index)
{
	return index < sizeof(pf_timeouts) / sizeof(pf_timeouts[0]) ? pf_timeouts[index] : 0;
}

static bool is_icmp(uint8_t proto)
{
	return proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6;
}

static size_t alen(uint8_t af)
{
	return af == AF_INET6 ? 16 : 4;
}

static bool addr_eq(uint8_t af, const union flow_addr *a, const union flow_addr *b)
{
	return memcmp(a->bytes, b->bytes, alen(af)) == 0;
}

/* spec §6.3, "synthesizing pf peer states from conntrack" */
void flow_tcp_to_pf(uint8_t ct_state, struct pf_peer *src, struct pf_peer *dst, uint8_t *timeout)
{
	static const struct {
		uint8_t src, dst, timeout;
	} map[] = {
		[FLOW_TCP_NONE] = {PF_TCPS_SYN_SENT, PF_TCPS_CLOSED, PFTM_TCP_FIRST_PACKET},
		[FLOW_TCP_SYN_SENT] = {PF_TCPS_SYN_SENT, PF_TCPS_CLOSED, PFTM_TCP_FIRST_PACKET},
		[FLOW_TCP_SYN_RECV] = {PF_TCPS_SYN_SENT, PF_TCPS_SYN_SENT, PFTM_TCP_OPENING},
		[FLOW_TCP_ESTABLISHED] = {PF_TCPS_ESTABLISHED, PF_TCPS_ESTABLISHED,
					  PFTM_TCP_ESTABLISHED},
		[FLOW_TCP_FIN_WAIT] = {PF_TCPS_CLOSING, PF_TCPS_ESTABLISHED, PFTM_TCP_CLOSING},
		[FLOW_TCP_CLOSE_WAIT] = {PF_TCPS_FIN_WAIT_2, PF_TCPS_ESTABLISHED, PFTM_TCP_CLOSING},
		[FLOW_TCP_LAST_ACK] = {PF_TCPS_FIN_WAIT_2, PF_TCPS_CLOSING, PFTM_TCP_CLOSING},
		[FLOW_TCP_TIME_WAIT] = {PF_TCPS_FIN_WAIT_2, PF_TCPS_FIN_WAIT_2, PFTM_TCP_FIN_WAIT},
		[FLOW_TCP_CLOSE] = {PF_TCPS_TIME_WAIT, PF_TCPS_TIME_WAIT, PFTM_TCP_CLOSED},
		[FLOW_TCP_SYN_SENT2] = {PF_TCPS_SYN_SENT, PF_TCPS_SYN_SENT, PFTM_TCP_OPENING},
	};
	uint8_t i = ct_state < sizeof(map) / sizeof(map[0]) ? ct_state : FLOW_TCP_NONE;
	src->state = map[i].src;
	dst->state = map[i].dst;
	*timeout = map[i].timeout;
}

/* spec §6.3, pf src:dst -> conntrack */
int pf_tcp_to_flow(const struct pf_peer *src, const struct pf_peer *dst)
{
	unsigned s = src->state, d = dst->state;
	if (s >= PF_TCPS_PROXY_SRC || d >= PF_TCPS_PROXY_SRC)
		return -1; /* synproxy in progress: nothing Linux can continue */
	if (s == PF_TCPS_TIME_WAIT && d == PF_TCPS_TIME_WAIT)
		return FLOW_TCP_CLOSE;
	if (s >= PF_TCPS_FIN_WAIT_2 && d >= PF_TCPS_FIN_WAIT_2)
		return FLOW_TCP_TIME_WAIT;
	if (s >= PF_TCPS_CLOSING && d >= PF_TCPS_CLOSING)
		return FLOW_TCP_LAST_ACK;
	if ((s >= PF_TCPS_FIN_WAIT_2 && d <= PF_TCPS_ESTABLISHED) ||
	    (d >= PF_TCPS_FIN_WAIT_2 && s <= PF_TCPS_ESTABLISHED))
		return FLOW_TCP_CLOSE_WAIT;
	if (s >= PF_TCPS_CLOSING || d >= PF_TCPS_CLOSING)
		return FLOW_TCP_FIN_WAIT;
	if (s >= PF_TCPS_ESTABLISHED && d >= PF_TCPS_ESTABLISHED)
		return FLOW_TCP_ESTABLISHED;
	if (d == PF_TCPS_CLOSED)
		return FLOW_TCP_SYN_SENT;
	return FLOW_TCP_SYN_RECV;
}

static void set_key(struct pf_key *k, const union flow_addr *a0, uint16_t p0,
		    const union flow_addr *a1, uint16_t p1)
{
	memset(k, 0, sizeof(*k));
	k->addr[0] = *a0;
	k->addr[1] = *a1;
	k->port[0] = p0;
	k->port[1] = p1;
}

int flow_to_pf(const struct flow *f, struct pf_view out[2])
{
	const struct flow_tuple *o = &f->orig, *r = &f->reply;
	if (f->af != AF_INET && f->af != AF_INET6)
		return 0;
	bool icmp = is_icmp(f->proto);
	/* ICMP: pf keys carry the identifier in both ports */
	uint16_t osp = o->sport, odp = icmp ? o->sport : o->dport;
	uint16_t rsp = icmp ? o->sport : r->sport, rdp = icmp ? o->sport : r->dport;
	bool snat = !addr_eq(f->af, &r->dst, &o->src) || (!icmp && r->dport != o->sport);
	bool dnat = !addr_eq(f->af, &r->src, &o->dst) || (!icmp && r->sport != o->dport);
	if (snat && dnat)
		return 0; /* rdr + nat together: not verified against pfSense (spec §6.4) */

	struct pf_view base;
	memset(&base, 0, sizeof(base));
	base.af = f->af;
	base.proto = f->proto;
	strcpy(base.ifname, "all"); /* floating states, pfSense's default policy */
	bool replied = f->status & FLOW_SEEN_REPLY;
	switch (f->proto) {
	case IPPROTO_TCP:
		flow_tcp_to_pf(f->tcp_state, &base.src, &base.dst, &base.timeout);
		if (f->wscale_known) {
			base.src.wscale = PF_WSCALE_FLAG | (f->wscale_orig & PF_WSCALE_MASK);
			base.dst.wscale = PF_WSCALE_FLAG | (f->wscale_repl & PF_WSCALE_MASK);
		}
		/* Linux cannot give pf its sequence windows: let pf track sloppily */
		base.state_flags = PFSTATE_SLOPPY;
		break;
	case IPPROTO_UDP:
		base.src.state = replied ? 2 : 1;
		base.dst.state = replied ? 2 : 0;
		base.timeout = replied ? PFTM_UDP_MULTIPLE : PFTM_UDP_FIRST_PACKET;
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		base.src.state = replied ? 2 : 1;
		base.dst.state = replied ? 2 : 0;
		base.timeout = replied ? PFTM_ICMP_ERROR_REPLY : PFTM_ICMP_FIRST_PACKET;
		break;
	default:
		base.src.state = replied ? 2 : 1;
		base.dst.state = replied ? 2 : 0;
		base.timeout = replied ? PFTM_OTHER_MULTIPLE : PFTM_OTHER_FIRST_PACKET;
		break;
	}
	uint32_t cap = pf_default_timeout(base.timeout);
	/* never more than the receiver's timeout: pf's import arithmetic would wrap */
	base.expire = f->timeout < cap ? f->timeout : cap;

	out[0] = base;
	out[1] = base;
	if (!dnat) {
		/* IN on the inside: wire = stack = ORIG */
		out[0].direction = PF_DIR_IN;
		set_key(&out[0].key[PF_SK_WIRE], &o->src, osp, &o->dst, odp);
		out[0].key[PF_SK_STACK] = out[0].key[PF_SK_WIRE];
		/* OUT on the outside: stack = ORIG, wire = after SNAT */
		out[1].direction = PF_DIR_OUT;
		set_key(&out[1].key[PF_SK_STACK], &o->dst, odp, &o->src, osp);
		set_key(&out[1].key[PF_SK_WIRE], &r->src, rsp, &r->dst, rdp);
	} else {
		/* IN on the outside: wire = ORIG (public address), stack = the real server */
		out[0].direction = PF_DIR_IN;
		set_key(&out[0].key[PF_SK_WIRE], &o->src, osp, &o->dst, odp);
		set_key(&out[0].key[PF_SK_STACK], &r->dst, rdp, &r->src, rsp);
		/* OUT on the inside: wire = stack, client <- server */
		out[1].direction = PF_DIR_OUT;
		set_key(&out[1].key[PF_SK_WIRE], &r->src, rsp, &r->dst, rdp);
		out[1].key[PF_SK_STACK] = out[1].key[PF_SK_WIRE];
	}
	return 2;
}

static void tuple_from_key(const struct pf_key *k, int first, struct flow_tuple *t)
{
	int second = !first;
	memset(t, 0, sizeof(*t));
	t->src = k->addr[first];
	t->sport = k->port[first];
	t->dst = k->addr[second];
	t->dport = k->port[second];
}

void pf_orig_candidate(const struct pf_view *s, struct flow_tuple *orig, struct flow_tuple *post)
{
	if (s->direction == PF_DIR_OUT) {
		tuple_from_key(&s->key[PF_SK_STACK], 1, orig);
		tuple_from_key(&s->key[PF_SK_WIRE], 1, post);
	} else {
		tuple_from_key(&s->key[PF_SK_WIRE], 0, orig);
		tuple_from_key(&s->key[PF_SK_STACK], 0, post);
	}
}

int pf_to_flow(const struct pf_view *first, const struct pf_view *second, struct flow *f)
{
	struct flow_tuple orig, post, orig2, post2;
	if (first->af != AF_INET && first->af != AF_INET6)
		return -1;
	memset(f, 0, sizeof(*f));
	f->af = first->af;
	f->proto = first->proto;
	pf_orig_candidate(first, &orig, &post);
	if (second) {
		pf_orig_candidate(second, &orig2, &post2);
		post = post2;
	}
	f->orig = orig;
	f->reply.src = post.dst;
	f->reply.dst = post.src;
	f->reply.sport = post.dport;
	f->reply.dport = post.sport;
	const struct pf_view *s = first;
	bool replied = s->dst.state >= 1;
	switch (s->proto) {
	case IPPROTO_TCP: {
		int st = pf_tcp_to_flow(&s->src, &s->dst);
		if (st < 0)
			return -1;
		f->tcp_state = (uint8_t)st;
		if ((s->src.wscale & PF_WSCALE_FLAG) && (s->dst.wscale & PF_WSCALE_FLAG)) {
			f->wscale_known = true;
			f->wscale_orig = s->src.wscale & PF_WSCALE_MASK;
			f->wscale_repl = s->dst.wscale & PF_WSCALE_MASK;
		}
		replied = st >= FLOW_TCP_SYN_RECV;
		if (st >= FLOW_TCP_ESTABLISHED && st != FLOW_TCP_SYN_SENT2)
			f->status |= FLOW_ASSURED;
		break;
	}
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		f->icmp_type = s->proto == IPPROTO_ICMP ? 8 : 128; /* echo request */
		f->orig.dport = f->reply.dport = 0;
		f->reply.sport = f->orig.sport;
		break;
	default:
		if (s->src.state >= 2 && s->dst.state >= 2)
			f->status |= FLOW_ASSURED;
		break;
	}
	if (replied)
		f->status |= FLOW_SEEN_REPLY;
	f->timeout = s->expire ? s->expire : pf_default_timeout(s->timeout);
	if (!f->timeout)
		f->timeout = 60;
	return 0;
}

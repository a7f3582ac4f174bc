/* proto/flow.c: conntrack flows <-> pf states, spec §6.1-6.4. */
#include <arpa/inet.h>
#include <string.h>

#include "flow_tuple.h"
#include "proto/flow.h"
#include "tap.h"

static int same_tuple(const struct flow_tuple *a, const struct flow_tuple *b)
{
	return !memcmp(&a->src, &b->src, 16) && !memcmp(&a->dst, &b->dst, 16) &&
	       a->sport == b->sport && a->dport == b->dport;
}

int main(void)
{
	struct flow f, g;
	struct pf_view s[2];

	/* The lab's case: LAN client -> WAN host through SNAT to the WAN VIP. */
	memset(&f, 0, sizeof(f));
	f.af = AF_INET;
	f.proto = IPPROTO_TCP;
	tuple(&f.orig, AF_INET, "198.51.100.50", 40001, "203.0.113.254", 443);
	tuple(&f.reply, AF_INET, "203.0.113.254", 443, "203.0.113.1", 40001);
	f.tcp_state = FLOW_TCP_ESTABLISHED;
	f.status = FLOW_SEEN_REPLY | FLOW_ASSURED;
	f.wscale_known = true;
	f.wscale_orig = 7;
	f.wscale_repl = 9;
	f.timeout = 432000;
	CHECK(flow_to_pf(&f, s) == 2, "SNAT flow -> two pf states");
	CHECK(s[0].direction == PF_DIR_IN && s[1].direction == PF_DIR_OUT, "IN then OUT");
	CHECK(!memcmp(&s[0].key[0], &s[0].key[1], sizeof(s[0].key[0])), "IN: wire == stack");
	struct in_addr a;
	inet_pton(AF_INET, "203.0.113.1", &a);
	CHECK(!memcmp(&s[1].key[PF_SK_WIRE].addr[1], &a, 4) &&
		      s[1].key[PF_SK_WIRE].port[1] == 40001,
	      "OUT wire addr1:port1 is the NAT address (CONTRACT §5 example)");
	inet_pton(AF_INET, "198.51.100.50", &a);
	CHECK(!memcmp(&s[1].key[PF_SK_STACK].addr[1], &a, 4), "OUT stack addr1 is the client");
	CHECK(s[0].src.state == PF_TCPS_ESTABLISHED && s[0].dst.state == PF_TCPS_ESTABLISHED,
	      "ESTABLISHED:ESTABLISHED");
	CHECK(s[0].timeout == PFTM_TCP_ESTABLISHED, "timeout index TCP_ESTABLISHED");
	CHECK(s[0].expire == 86400, "expire clamped to pf's 86400 (Linux says 432000)");
	CHECK(s[0].src.wscale == (0x80 | 7) && s[0].dst.wscale == (0x80 | 9), "window scale");
	CHECK(s[0].state_flags & PFSTATE_SLOPPY, "TCP states are sloppy");
	CHECK(!strcmp(s[0].ifname, "all"), "floating state");

	struct flow_tuple o0, p0, o1, p1;
	pf_orig_candidate(&s[0], &o0, &p0);
	pf_orig_candidate(&s[1], &o1, &p1);
	CHECK(same_tuple(&o0, &f.orig), "IN's ORIG candidate is the ORIG tuple");
	CHECK(same_tuple(&p0, &o1), "IN's post tuple is OUT's ORIG candidate (chaining)");
	CHECK(pf_to_flow(&s[0], &s[1], &g) == 0, "merge back");
	CHECK(same_tuple(&g.orig, &f.orig) && same_tuple(&g.reply, &f.reply), "tuples round-trip");
	CHECK(g.tcp_state == FLOW_TCP_ESTABLISHED, "TCP state round-trips");
	CHECK(g.status == (FLOW_SEEN_REPLY | FLOW_ASSURED), "status");
	CHECK(g.wscale_known && g.wscale_orig == 7 && g.wscale_repl == 9, "wscale round-trips");
	CHECK(g.timeout == 86400, "timeout from expire");

	/* DNAT (port forward): WAN host -> 203.0.113.1:8080 forwarded to 198.51.100.50:80 */
	memset(&f, 0, sizeof(f));
	f.af = AF_INET;
	f.proto = IPPROTO_TCP;
	tuple(&f.orig, AF_INET, "203.0.113.254", 50000, "203.0.113.1", 8080);
	tuple(&f.reply, AF_INET, "198.51.100.50", 80, "203.0.113.254", 50000);
	f.tcp_state = FLOW_TCP_SYN_RECV;
	f.timeout = 60;
	CHECK(flow_to_pf(&f, s) == 2, "DNAT flow -> two pf states");
	CHECK(pf_to_flow(&s[0], &s[1], &g) == 0 && same_tuple(&g.orig, &f.orig) &&
		      same_tuple(&g.reply, &f.reply),
	      "DNAT round-trips");
	CHECK(g.tcp_state == FLOW_TCP_SYN_RECV, "SYN_RECV round-trips");
	CHECK(s[0].expire == 30, "expire clamped to TCP_OPENING's 30 s");

	/* SNAT and DNAT together: not expressed */
	tuple(&f.reply, AF_INET, "198.51.100.50", 80, "203.0.113.9", 50000);
	CHECK(flow_to_pf(&f, s) == 0, "SNAT+DNAT refused");

	/* IPv6 ICMP echo without NAT */
	memset(&f, 0, sizeof(f));
	f.af = AF_INET6;
	f.proto = IPPROTO_ICMPV6;
	tuple(&f.orig, AF_INET6, "2001:db8:1::50", 77, "2001:db8:2::254", 0);
	tuple(&f.reply, AF_INET6, "2001:db8:2::254", 77, "2001:db8:1::50", 0);
	f.status = FLOW_SEEN_REPLY;
	f.timeout = 25;
	CHECK(flow_to_pf(&f, s) == 2, "ICMPv6 flow");
	CHECK(s[0].key[0].port[0] == 77 && s[0].key[0].port[1] == 77, "ICMP id in both ports");
	CHECK(s[0].timeout == PFTM_ICMP_ERROR_REPLY && s[0].expire == 10, "ICMP timeout clamp");
	CHECK(pf_to_flow(&s[0], &s[1], &g) == 0 && same_tuple(&g.orig, &f.orig) &&
		      same_tuple(&g.reply, &f.reply) && g.icmp_type == 128,
	      "ICMPv6 round-trips");

	/* UDP, one state only (traffic to the firewall itself) */
	memset(&f, 0, sizeof(f));
	f.af = AF_INET;
	f.proto = IPPROTO_UDP;
	tuple(&f.orig, AF_INET, "198.51.100.50", 5353, "198.51.100.2", 53);
	tuple(&f.reply, AF_INET, "198.51.100.2", 53, "198.51.100.50", 5353);
	f.timeout = 30;
	CHECK(flow_to_pf(&f, s) == 2 && s[0].src.state == 1 && s[0].dst.state == 0 &&
		      s[0].timeout == PFTM_UDP_FIRST_PACKET,
	      "UDP before a reply");
	CHECK(pf_to_flow(&s[0], NULL, &g) == 0 && same_tuple(&g.reply, &f.reply) && !g.status,
	      "a single IN state is a whole flow");

	/* TCP state table, both directions (spec §6.3) */
	for (uint8_t st = FLOW_TCP_SYN_SENT; st <= FLOW_TCP_CLOSE; st++) {
		struct pf_peer ps, pd;
		uint8_t tmo;
		flow_tcp_to_pf(st, &ps, &pd, &tmo);
		CHECK(pf_tcp_to_flow(&ps, &pd) == st, "TCP state round trip");
	}
	struct pf_peer proxy = {.state = PF_TCPS_PROXY_SRC}, est = {.state = PF_TCPS_ESTABLISHED};
	CHECK(pf_tcp_to_flow(&proxy, &est) == -1, "synproxy states are skipped");
	CHECK(pf_default_timeout(200) == 0, "unknown timeout index");
	return tap_done();
}

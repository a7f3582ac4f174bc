/* daemon/pfsync.c keeps connections packed: a local one as the flow fields its pf
 * states follow from (lflow_build / lflow_views), a learned state as its pf_view's
 * fields at their family's size (rstate_store / rstate_view). Unpacking must give
 * back exactly what was packed. The file is included to reach its static
 * functions. */
#include "daemon/pfsync.c"

#include <arpa/inet.h>

#include "flow_tuple.h"
#include "tap.h"

static struct flow mk(int af, uint8_t proto, const char *os, uint16_t osp, const char *od,
		      uint16_t odp, const char *rs, uint16_t rsp, const char *rd, uint16_t rdp)
{
	struct flow f;
	memset(&f, 0, sizeof(f));
	f.af = (uint8_t)af;
	f.proto = proto;
	tuple(&f.orig, af, os, osp, od, odp);
	tuple(&f.reply, af, rs, rsp, rd, rdp);
	f.tcp_state = FLOW_TCP_ESTABLISHED;
	f.status = FLOW_SEEN_REPLY | FLOW_ASSURED;
	f.wscale_known = true;
	f.wscale_orig = 7;
	f.wscale_repl = 2;
	f.timeout = 1234;
	return f;
}

/* the pf_view bytes a peer sees (view_to_state keeps alen bytes of addresses) */
static bool views_equal(const struct pf_view *a, const struct pf_view *b)
{
	struct pfsync_state x, y;
	view_to_state(a, &x);
	view_to_state(b, &y);
	return !memcmp(&x, &y, sizeof(x));
}

int main(void)
{
	struct pfsyncd ps;
	memset(&ps, 0, sizeof(ps));
	ps.creatorid = 0x0000f001;
	ps.next_id = 1000;
	ptab_init(&ps.lids, offsetof(struct lflow, id), sizeof(uint64_t));
	for (int v6 = 0; v6 < 2; v6++) {
		slab_init(&ps.lflow_slab[v6], lflow_size(v6 ? AF_INET6 : AF_INET));
		slab_init(&ps.rstate_slab[v6], rstate_size(v6 ? AF_INET6 : AF_INET));
	}
	slab_init(&ps.rflow_slab, sizeof(struct rflow));

	struct {
		const char *name;
		struct flow f;
	} cases[] = {
		{"no NAT", mk(AF_INET, IPPROTO_TCP, "198.51.100.50", 40001, "203.0.113.254", 443,
			      "203.0.113.254", 443, "198.51.100.50", 40001)},
		{"SNAT", mk(AF_INET, IPPROTO_TCP, "198.51.100.50", 40001, "203.0.113.254", 443,
			    "203.0.113.254", 443, "203.0.113.1", 61000)},
		{"DNAT", mk(AF_INET, IPPROTO_UDP, "203.0.113.254", 5353, "203.0.113.1", 8053,
			    "198.51.100.10", 53, "203.0.113.254", 5353)},
		{"SNAT port only", mk(AF_INET, IPPROTO_UDP, "198.51.100.50", 40001, "203.0.113.254",
				      53, "203.0.113.254", 53, "198.51.100.50", 40002)},
		{"ICMP SNAT", mk(AF_INET, IPPROTO_ICMP, "198.51.100.50", 77, "203.0.113.254", 0,
				 "203.0.113.254", 77, "203.0.113.1", 0)},
		{"IPv6 DNAT", mk(AF_INET6, IPPROTO_TCP, "2001:db8:2::254", 5000, "2001:db8:2::1",
				 80, "2001:db8:1::10", 8080, "2001:db8:2::254", 5000)},
		{"IPv6 ICMPv6", mk(AF_INET6, IPPROTO_ICMPV6, "2001:db8:1::50", 9, "2001:db8:2::254",
				   0, "2001:db8:2::254", 9, "2001:db8:1::50", 0)},
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		char what[96];
		/* as long as its family needs, as carpd allocates it */
		struct lflow *lfp = lflow_alloc(&ps, cases[c].f.af);
		if (!CHECK(lfp != NULL, "memory for an lflow"))
			continue;
		fkey_of(&cases[c].f, &lfp->key);
		bool built = lflow_build(&ps, lfp, &cases[c].f);
		struct pf_view want[2], got[2];
		int n = flow_to_pf(&cases[c].f, want);
		for (int i = 0; i < n; i++) {
			want[i].id = lfp->id + (uint64_t)i;
			want[i].creatorid = ps.creatorid;
		}
		int m = built ? lflow_views(&ps, lfp, got) : 0;
		snprintf(what, sizeof(what), "lflow %s: %d states, as flow_to_pf makes them",
			 cases[c].name, n);
		CHECK(built && n == 2 && m == n && views_equal(&want[0], &got[0]) &&
			      views_equal(&want[1], &got[1]),
		      what);
		snprintf(what, sizeof(what), "lflow %s: ids in a pair, the first even",
			 cases[c].name);
		CHECK(lfp->id % 2 == 0 && ptab_find(&ps.lids, &lfp->id) == lfp, what);
		ptab_del(&ps.lids, lfp);
		lflow_release(&ps, lfp);

		/* the same states learned by a peer */
		for (int i = 0; i < n; i++) {
			struct rstate *rs = rstate_alloc(&ps, want[i].af);
			rs->id = want[i].id;
			rs->creatorid = want[i].creatorid;
			snprintf(what, sizeof(what),
				 "rstate %s, state %d: allocated with its family", cases[c].name,
				 i);
			CHECK(rs->v6 == (want[i].af == AF_INET6), what);
			snprintf(want[i].ifname, sizeof(want[i].ifname), "%s",
				 i ? "vtnet0.100" : "all");
			want[i].state_flags = 0x1234;
			bool stored = rstate_store(&ps, rs, &want[i]);
			struct pf_view back;
			rstate_view(&ps, rs, &back);
			snprintf(what, sizeof(what), "rstate %s, state %d: unpacked as packed",
				 cases[c].name, i);
			CHECK(stored && !memcmp(&back, &want[i], sizeof(back)), what);
			/* the tuples the tables are keyed by, read straight from the
			 * packed keys (rs_tuple) as from the view (pf_orig_candidate) */
			struct flow_tuple vo, vp, ro, rp;
			pf_orig_candidate(&want[i], &vo, &vp);
			rs_tuple(rs, false, &ro);
			rs_tuple(rs, true, &rp);
			snprintf(what, sizeof(what),
				 "rstate %s, state %d: its ORIG candidate and translation",
				 cases[c].name, i);
			CHECK(tuple_eq(&vo, &ro) && tuple_eq(&vp, &rp) &&
				      rstate_same_keys(rs, &want[i]),
			      what);
			rstate_release(&ps, rs);
		}
	}
	CHECK(ps.nifnames == 2, "interface names interned: two distinct ones");

	/* one interface name too many is refused and counted */
	ps.ifnames = realloc(ps.ifnames, RSTATE_IFNAMES_MAX * sizeof(*ps.ifnames));
	for (size_t i = 2; i < RSTATE_IFNAMES_MAX; i++) {
		memset(ps.ifnames[i], 0, sizeof(ps.ifnames[i]));
		snprintf(ps.ifnames[i], sizeof(ps.ifnames[i]), "if%zu", i);
	}
	ps.nifnames = RSTATE_IFNAMES_MAX;
	struct rstate *rs = rstate_alloc(&ps, AF_INET);
	struct pf_view v;
	memset(&v, 0, sizeof(v));
	v.af = AF_INET;
	snprintf(v.ifname, sizeof(v.ifname), "new0");
	rs->v6 = 0;
	uint64_t before = ps.c.not_mappable;
	CHECK(!rstate_store(&ps, rs, &v) && ps.c.not_mappable == before + 1,
	      "an interface name beyond the table's limit: refused, counted");
	/* peer values beyond what the packed state holds: refused, counted */
	snprintf(v.ifname, sizeof(v.ifname), "if2");
	before = ps.c.badval;
	v.src.state = 16;
	CHECK(!rstate_store(&ps, rs, &v) && ps.c.badval == before + 1,
	      "a peer state above 15: refused, counted");
	v.src.state = 4;
	v.dst.wscale = 0x40;
	CHECK(!rstate_store(&ps, rs, &v) && ps.c.badval == before + 2,
	      "a window scale with an unknown bit: refused, counted");
	/* the largest values that fit come back as they went */
	v.dst.wscale = PF_WSCALE_FLAG | 14;
	v.src.state = 13; /* PF_TCPS_PROXY_DST */
	v.direction = 2;
	v.proto = IPPROTO_TCP;
	v.timeout = 255;
	v.expire = 0xfffffffe;
	v.state_flags = 0xffff;
	struct pf_view back;
	CHECK(rstate_store(&ps, rs, &v), "the largest packed values: stored");
	rstate_view(&ps, rs, &back);
	CHECK(!memcmp(&back, &v, sizeof(back)) && rs->ifname == 2,
	      "the largest packed values: unpacked as packed");
	rstate_release(&ps, rs);

	/* a learned DNAT connection: its first state translates and waits in the
	 * index of half-known translations for the state that continues it; the
	 * entry goes when the connection completes or is forgotten, found again
	 * by the states' keys (the connection keeps no pointer to it), even after
	 * a peer changed the keys of a state it had sent */
	ptab_init(&ps.lflows, offsetof(struct lflow, key), sizeof(struct fkey));
	ptab_init(&ps.rstates, offsetof(struct rstate, id), RSTATE_KEYLEN);
	ptab_init_derived(&ps.rflows, sizeof(struct fkey), rflow_key);
	ptab_init(&ps.tombs, offsetof(struct tomb, key), sizeof(struct fkey));
	struct flow dnat = mk(AF_INET, IPPROTO_UDP, "203.0.113.254", 5353, "203.0.113.1", 8053,
			      "198.51.100.10", 53, "203.0.113.254", 5353);
	struct pf_view st[2];
	int nst = flow_to_pf(&dnat, st);
	for (int i = 0; i < nst; i++) {
		st[i].creatorid = 0x0000f002;
		st[i].id = 0x100 + (uint64_t)i;
	}
	CHECK(nst == 2, "DNAT: two pf states");
	learned_update(&ps, &st[0], true);
	CHECK(ps.rflows.n == 1 && HASH_COUNT(ps.rposts) == 1,
	      "DNAT, first state learned: one connection, waiting in the half-known index");
	learned_update(&ps, &st[1], true);
	struct rstate *r0 = ptab_find(&ps.rstates, &(struct sid){.id = 0x100, .creatorid = 0xf002});
	CHECK(ps.rflows.n == 1 && HASH_COUNT(ps.rposts) == 0 && r0 && r0->rf &&
		      r0->rf->second != NULL,
	      "DNAT, second state learned: one connection of two states, no longer half-known");
	rflow_drop(&ps, r0->rf, false);
	CHECK(ps.rflows.n == 0 && ps.rstates.n == 0, "the connection forgotten with its states");

	learned_update(&ps, &st[0], true);
	struct pf_view moved = st[0];
	moved.key[0].port[0] = htons(5354); /* pf never does this */
	moved.key[1].port[0] = htons(5354);
	learned_update(&ps, &moved, false);
	r0 = ptab_find(&ps.rstates, &(struct sid){.id = 0x100, .creatorid = 0xf002});
	CHECK(r0 && r0->rf && HASH_COUNT(ps.rposts) == 1,
	      "a state whose keys a peer changed: still half-known");
	/* the connection is keyed by its first state's keys, which changed: made
	 * again from the state, found by the new key, not by the old one */
	struct fkey newk, oldk;
	struct flow_tuple to, tp;
	pf_orig_candidate(&moved, &to, &tp);
	fkey_tuple(AF_INET, IPPROTO_UDP, &to, &newk);
	pf_orig_candidate(&st[0], &to, &tp);
	fkey_tuple(AF_INET, IPPROTO_UDP, &to, &oldk);
	CHECK(r0 && ps.rflows.n == 1 && ptab_find(&ps.rflows, &newk) == r0->rf &&
		      ptab_find(&ps.rflows, &oldk) == NULL,
	      "a state whose keys a peer changed: its connection found by the new keys only");
	rflow_drop(&ps, r0->rf, false);
	CHECK(ps.rflows.n == 0 && HASH_COUNT(ps.rposts) == 0,
	      "forgotten: its half-known entry went with it (no entry left pointing at it)");
	struct ptab_iter it = {0};
	for (struct rstate *left; (left = ptab_next(&ps.rstates, &it)) != NULL;)
		rstate_release(&ps, left);
	ptab_clear(&ps.rstates);
	CHECK(ps.rstate_slab[0].live == 0 && ps.rstate_slab[1].live == 0 &&
		      ps.rflow_slab.live == 0 && ps.lflow_slab[0].live == 0 &&
		      ps.lflow_slab[1].live == 0,
	      "every connection and state given back to its slab");
	for (int v6 = 0; v6 < 2; v6++) {
		slab_destroy(&ps.lflow_slab[v6]);
		slab_destroy(&ps.rstate_slab[v6]);
	}
	slab_destroy(&ps.rflow_slab);
	ptab_clear(&ps.rflows);
	ptab_clear(&ps.lflows);
	ptab_clear(&ps.tombs);

	free(ps.dirty.v); /* commit_dirty() is not run: no kernel here */
	free(ps.ifnames);
	ptab_clear(&ps.lids);
	return tap_done();
}

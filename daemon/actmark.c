/* daemon/actmark.c - see actmark.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/actmark.h"
#include "daemon/carpd.h"
#include "daemon/nft.h"

struct actmark {
	struct event *tick_ev;
	struct nft_runner *nft;
	uint32_t bit;
	unsigned tick;
	/* what each bucket asks for now: 0 or 1 */
	uint8_t tcp[ACT_BUCKETS], other[ACT_BUCKETS];
	actmark_lost_cb lost;
	void *arg;
	struct actmark_stats st;
};

static int install(struct actmark *am)
{
	char elems_tcp[ACT_BUCKETS * 16], elems_other[ACT_BUCKETS * 16];
	size_t nt = 0, no = 0;
	for (int b = 0; b < ACT_BUCKETS; b++) {
		nt += (size_t)snprintf(elems_tcp + nt, sizeof(elems_tcp) - nt, "%s%d : goto to%u",
				       b ? ", " : "", b, am->tcp[b]);
		no += (size_t)snprintf(elems_other + no, sizeof(elems_other) - no,
				       "%s%d : goto to%u", b ? ", " : "", b, am->other[b]);
	}
	char cmd[2048];
	/* "add" then "delete" clears a table a crashed run left, in the same
	 * transaction as the new one. Priority -150: after conntrack (-200) has
	 * attached the entry. On a connection's first packet the mark goes into its
	 * NEW event (the entry is not confirmed yet), so new connections cost no
	 * event of their own. CARP and pfsync are never marked. The maps "goto",
	 * not "jump": a jump returns, and a TCP packet would then go on through the
	 * other map too and turn the bit twice, an event per packet. */
	int n = snprintf(cmd, sizeof(cmd),
			 "add table inet " ACT_TABLE "\n"
			 "delete table inet " ACT_TABLE "\n"
			 "table inet " ACT_TABLE " {\n"
			 "  chain to0 { ct mark and 0x%08x != 0 ct mark set ct mark and 0x%08x; }\n"
			 "  chain to1 { ct mark and 0x%08x == 0 ct mark set ct mark or 0x%08x; }\n"
			 "  map btcp { typeof ct id : verdict; elements = { %s }; }\n"
			 "  map bother { typeof ct id : verdict; elements = { %s }; }\n"
			 "  chain prerouting {\n"
			 "    type filter hook prerouting priority -150; policy accept;\n"
			 "    meta l4proto { 112, 240 } return\n"
			 "    meta l4proto tcp ct id and %d vmap @btcp\n"
			 "    ct id and %d vmap @bother\n"
			 "  }\n"
			 "  chain output {\n"
			 "    type filter hook output priority -150; policy accept;\n"
			 "    meta l4proto { 112, 240 } return\n"
			 "    meta l4proto tcp ct id and %d vmap @btcp\n"
			 "    ct id and %d vmap @bother\n"
			 "  }\n"
			 "}\n",
			 am->bit, ~am->bit, am->bit, am->bit, elems_tcp, elems_other,
			 ACT_BUCKETS - 1, ACT_BUCKETS - 1, ACT_BUCKETS - 1, ACT_BUCKETS - 1);
	if (n < 0 || (size_t)n >= sizeof(cmd))
		return -1;
	return nft_runner_run(am->nft, cmd);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct actmark *am = arg;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	char cmd[1024];
	size_t n = 0;
	/* one transaction: a bucket is never without its element */
	for (int i = 0; i < ACT_PER_TICK; i++) {
		int b = (int)((am->tick * ACT_PER_TICK + (unsigned)i) % ACT_BUCKETS);
		am->other[b] ^= 1;
		n += (size_t)snprintf(cmd + n, sizeof(cmd) - n,
				      "delete element inet " ACT_TABLE " bother { %d }\n"
				      "add element inet " ACT_TABLE " bother { %d : goto to%u }\n",
				      b, b, am->other[b]);
	}
	if (am->tick % ACT_TCP_ROUNDS == 0) {
		for (int i = 0; i < ACT_PER_TICK; i++) {
			unsigned t = am->tick / ACT_TCP_ROUNDS;
			int b = (int)((t * ACT_PER_TICK + (unsigned)i) % ACT_BUCKETS);
			am->tcp[b] ^= 1;
			n += (size_t)snprintf(cmd + n, sizeof(cmd) - n,
					      "delete element inet " ACT_TABLE " btcp { %d }\n"
					      "add element inet " ACT_TABLE
					      " btcp { %d : goto to%u }\n",
					      b, b, am->tcp[b]);
		}
	}
	am->tick++;
	if (nft_runner_run(am->nft, cmd) == 0) {
		am->st.turns++;
	} else {
		/* the table went (nft flush ruleset, a firewall reload): put it back */
		am->st.errors++;
		if (install(am) < 0) {
			log_err("activity marks: the nftables table " ACT_TABLE
				" is gone and cannot be put back; reading the conntrack "
				"table periodically instead");
			am->st.active = false;
			am->lost(am->arg);
			return;
		}
		log_warn("activity marks: the nftables table " ACT_TABLE " was put back");
	}
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	am->st.turn_us =
		(uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000);
	struct timeval tv = {ACT_TICK_MS / 1000, (ACT_TICK_MS % 1000) * 1000};
	evtimer_add(am->tick_ev, &tv);
}

struct actmark *actmark_open(struct event_base *base, uint32_t bit, actmark_lost_cb lost, void *arg)
{
	struct actmark *am = calloc(1, sizeof(*am));
	if (am == NULL)
		return NULL;
	am->bit = bit;
	am->lost = lost;
	am->arg = arg;
	am->nft = nft_runner_new("activity marks");
	am->tick_ev = evtimer_new(base, tick_cb, am);
	if (am->nft == NULL || am->tick_ev == NULL || install(am) < 0) {
		log_err("activity marks: no nftables table; reading the conntrack table "
			"periodically instead");
		actmark_close(am);
		return NULL;
	}
	am->st.active = true;
	struct timeval tv = {ACT_TICK_MS / 1000, (ACT_TICK_MS % 1000) * 1000};
	evtimer_add(am->tick_ev, &tv);
	log_info("activity marks: connections that carry traffic turn ct mark bit 0x%08x "
		 "(nftables table inet " ACT_TABLE ")",
		 bit);
	return am;
}

void actmark_close(struct actmark *am)
{
	if (am == NULL)
		return;
	if (am->tick_ev)
		event_free(am->tick_ev);
	if (am->nft) {
		if (am->st.active)
			nft_runner_run(am->nft, "delete table inet " ACT_TABLE "\n");
		nft_runner_free(am->nft);
	}
	free(am);
}

void actmark_stats(const struct actmark *am, struct actmark_stats *st)
{
	if (am == NULL) {
		memset(st, 0, sizeof(*st));
		return;
	}
	*st = am->st;
}

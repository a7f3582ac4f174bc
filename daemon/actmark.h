/* daemon/actmark.h - activity marks: conntrack events for connections that carry
 * traffic.
 *
 * pf refreshes a state's expiry at the peers with every update it sends; to do
 * the same carpd must learn which connections carry traffic. Linux sends a
 * conntrack event when something about an entry changes, never for a packet that
 * only pushes its timeout on. Without help carpd has to read the whole table
 * again and again (the "scan", REFRESH_S in pfsync.c), which costs the daemon and
 * the kernel about 3 µs per entry held, on every scan.
 *
 * With help: an nftables table, "inet carpd_activity", turns one bit of the
 * conntrack mark (the activity mark, 0x80000000 by default) to the value its
 * bucket currently asks for, on the first packet that passes after the bucket's
 * value changed. The mark's change is a conntrack event with the entry's new
 * timeout, which carpd handles like any other update. Connections are spread
 * over 16 buckets by their conntrack id; carpd turns 4 buckets over every
 * ACT_TICK_MS (one nf_tables transaction, about 0.12 ms), so a connection that
 * carries traffic shows up once per round of the buckets (5 s; 30 s for TCP,
 * whose pf timeouts are long and whose state changes are events anyway), and
 * the events of a round come in 4 waves, not one large one. An idle connection costs nothing; no
 * per-connection memory is kept, in the kernel or here.
 *
 * The other bits of the mark are left alone; rules that test the mark should mask
 * the activity bit out ("ct mark and 0x7fffffff ..."). 'activity-mark none'
 * (carpd.conf) turns this off and goes back to the scan.
 */
#ifndef CARPD_ACTMARK_H
#define CARPD_ACTMARK_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

#define ACT_TABLE      "carpd_activity"
#define ACT_BUCKETS    16
#define ACT_PER_TICK   4    /* buckets turned at a time: one nftables transaction */
#define ACT_ROUND_MS   5000 /* every bucket turned once: non-TCP connections */
#define ACT_TCP_ROUNDS 6    /* TCP buckets turn every 6th tick: 30 s a round */
#define ACT_TICK_MS    (ACT_ROUND_MS / (ACT_BUCKETS / ACT_PER_TICK))

struct actmark;

/* Called when the table could not be kept (removed by someone and not put back):
 * the caller goes back to scanning. */
typedef void (*actmark_lost_cb)(void *arg);

/* Install the table for this mark bit (one bit set); NULL with a logged reason. */
struct actmark *actmark_open(struct event_base *base, uint32_t bit, actmark_lost_cb lost,
			     void *arg);
/* Remove the table and free. */
void actmark_close(struct actmark *am);

struct actmark_stats {
	uint64_t turns;	  /* bucket turns done */
	uint64_t errors;  /* turns nftables refused (the table is then put back) */
	uint64_t turn_us; /* the last turn's cost, in µs of wall time */
	bool active;
};
void actmark_stats(const struct actmark *am, struct actmark_stats *st);

#endif

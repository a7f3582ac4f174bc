/* daemon/defer.h - pfsync defer mode on Linux (pfsync.md §4.5).
 *
 * FreeBSD holds the first packet of a new connection until the peer has
 * acknowledged the state (INS_ACK) or 20 ms have passed, so that an
 * active-active or asymmetric peer knows the connection before its reply can
 * arrive there. Linux has no such hook in conntrack; NFQUEUE is the way to hold a
 * packet in the kernel while userspace decides. carpd installs its own nftables
 * table, "inet carpd_defer", whose one rule queues the packets that create a
 * connection — in postrouting after source NAT, so the conntrack entry attached
 * to the packet already carries its translation — to queue DEFER_QUEUE with
 * "bypass" (if carpd is not listening, packets pass). The table is removed when
 * carpd stops.
 */
#ifndef CARPD_DEFER_H
#define CARPD_DEFER_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

#include "daemon/ct.h"

#define DEFER_QUEUE 240 /* NFQUEUE number carpd listens on */

struct defer;

/* A held packet: its queue id and the flow it creates. */
typedef void (*defer_packet_cb)(void *arg, uint32_t packet_id, const struct flow *f);

/* Install the nftables table (never for traffic leaving through sync_ifname) and
 * bind the queue; NULL with errno and a logged reason on failure. */
struct defer *defer_open(struct event_base *base, const struct ct *ct, const char *sync_ifname,
			 defer_packet_cb cb, void *arg);
/* Let a held packet go on. */
int defer_release(struct defer *d, uint32_t packet_id);
/* Remove the table (held packets are released by the kernel) and close. */
void defer_close(struct defer *d);

struct defer_stats {
	uint64_t queued, released, unreadable, errors;
};
const struct defer_stats *defer_stats(const struct defer *d);

#endif

/*
 * daemon/pfsync.h - the state replicator: FreeBSD's pfsync over IP protocol 240,
 * mapped onto Linux conntrack (../shared/specs/pfsync.md §4 and §6).
 *
 * Local conntrack entries (events, activity marks, table scans) become pf states with our
 * creatorid (hostid) and go out as INS / UPD_C / DEL_C; pf states from peers are
 * merged into conntrack entries and written through to the kernel at once, so a
 * node that becomes MASTER already has every connection. At start the node asks
 * for a bulk update and keeps its CARP demotion raised (+240) until the bulk
 * has ended or timed out, as FreeBSD does.
 */
#ifndef CARPD_DAEMON_PFSYNC_H
#define CARPD_DAEMON_PFSYNC_H

#include <event2/buffer.h>
#include <stdint.h>

struct carpd;

struct pfsync_counters {
	uint64_t ipackets, opackets;
	uint64_t badttl, badver, badlen, badact, badif, badval, badstate, stale;
	uint64_t ins_in, upd_in, del_in, ureq_in, clr_in, bus_in, ack_in;
	uint64_t ins_out, upd_out, updc_out, del_out, ureq_out, ack_out, bus_out;
	uint64_t own_creator; /* states carrying our own creatorid: never re-imported */
	uint64_t inject_errors, not_mappable;
	uint64_t oerrors;
	uint64_t collisions; /* a peer's state for a connection we track as our own */
	uint64_t deferred, defer_acked, defer_timeouts; /* defer mode */
	uint64_t dumps; /* refresh dumps of the conntrack table completed */
	/* events for a connection we do not know that do not carry its state (left
	 * to the next scan) */
	uint64_t partial_events;
	/* bulk update flow control (INS_ACK of progress): acknowledgements that
	 * moved our window as a sender, that matched no packet in flight while we
	 * sent one (the window cannot move: the slow pace follows), and that we
	 * sent as a receiver */
	uint64_t bulk_acked, bulk_acks_unmatched, bulk_acks_sent;
};

int pfsyncd_start(struct carpd *cd);
void pfsyncd_stop(struct carpd *cd);
/* carpctl sync bulk: ask the peers for their whole table again */
int pfsyncd_request_bulk(struct carpd *cd);
/* send what is queued now (planned stop: the peers get every state before the
 * addresses move) */
void pfsyncd_flush(struct carpd *cd);
/* "pfsync": {...} of status -j (CONTRACT §4), the text block and metrics */
void pfsyncd_status_json(const struct carpd *cd, struct evbuffer *out);
void pfsyncd_status_text(const struct carpd *cd, struct evbuffer *out);
void pfsyncd_metrics(const struct carpd *cd, struct evbuffer *out);

#endif

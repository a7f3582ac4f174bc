/*
 * daemon/ct.h - the conntrack layer: the kernel's connection table as flows.
 *
 * One struct ct owns four ctnetlink sockets: an event subscription (NEW, UPDATE,
 * DESTROY, IPv4 and IPv6) read from the libevent loop, a command socket for
 * create/update/delete/get, one for batched writes (ct_batch_add), and a dump
 * socket. Everything the rest of the daemon
 * sees is a struct flow (proto/flow.h); libnetfilter_conntrack stays in ct.c.
 *
 * Injection is write-through (conntrackd's DisableExternalCache): a flow from the
 * peer goes into the kernel at once. Events that our own injections cause are
 * recognised by the netlink port id of the command or batch socket and never reported,
 * so learned flows are not announced back to the peer.
 */
#ifndef CARPD_DAEMON_CT_H
#define CARPD_DAEMON_CT_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/flow.h"

struct ct;

enum ct_event { CT_EV_NEW, CT_EV_UPDATE, CT_EV_DESTROY };

/* f is only valid during the call. */
typedef void (*ct_event_cb)(void *arg, enum ct_event ev, const struct flow *f);
/* Events were lost (the socket buffer overran): the caller should schedule a full
 * ct_dump() (from a timer rather than from inside this call, so that a burst of
 * overruns costs one dump). */
typedef void (*ct_resync_cb)(void *arg);

/* base NULL: no event subscription (inject/dump/get only; cb and resync unused).
 * Returns NULL with errno set if ctnetlink cannot be opened. Opening the event
 * socket makes the kernel load nf_conntrack_netlink (and nf_conntrack) on demand. */
struct ct *ct_open(struct event_base *base, ct_event_cb cb, ct_resync_cb resync, void *arg);
/* Not from inside one of its own callbacks. */
void ct_close(struct ct *ct);

/* Never report flows with an address (either tuple, either side) inside this
 * prefix, e.g. the sync network. Up to CT_MAX_IGNORE prefixes; applies to events
 * and dumps. Returns -1 (EINVAL, ENOSPC) on a bad prefix or a full table. */
#define CT_MAX_IGNORE 8
int ct_set_ignore(struct ct *ct, int af, const void *addr, uint8_t prefixlen);

/* Stop (false) or resume (true) the events of new connections. Every entry
 * carpd writes makes one, which the kernel builds for any listener before our
 * filter drops it: a quarter of a bulk update's time on the receiver. Whoever
 * stops them reads the table afterwards for the connections it missed.
 * Returns 0 or -1 with errno. */
int ct_set_new_events(struct ct *ct, bool on);

/* Receive buffer of the event socket (default 8 MiB); a bigger one rides out
 * longer stalls of the loop before events are lost. Returns the size in force. */
unsigned ct_set_rcvbuf(struct ct *ct, unsigned bytes);

/* The whole table, IPv4 and IPv6, synchronously; each() sees every flow that is
 * not filtered (IP protocols 112 and 240, ignored prefixes). each() may call
 * ct_get/ct_inject/ct_remove but not ct_dump. Returns 0 or -1 with errno. */
int ct_dump(struct ct *ct, void (*each)(void *arg, const struct flow *f), void *arg);
/* The whole table in the background: a datagram (about a hundred entries) per
 * millisecond, from a timer of the loop's lowest priority (a million entries take
 * seconds, and CARP must not wait for them). each()
 * sees every flow as with ct_dump() and may call anything but a dump; then
 * done(arg, 0, or -1 on error) once. Connections created or destroyed while it
 * runs may or may not be in it. Needs an event base. Returns 0 when started, -1
 * with errno (EBUSY: a dump is running). ct_close() ends it without done(). */
int ct_dump_start(struct ct *ct, void (*each)(void *arg, const struct flow *f),
		  void (*done)(void *arg, int result), void *arg);
bool ct_dump_running(const struct ct *ct);
/* Time the last (or the running) background dump spent reading and in each(): its
 * cost, without the pauses between its slices. */
uint64_t ct_dump_busy_ms(const struct ct *ct);

/* Write-through: create the entry; if one with the same ORIG tuple (and zone)
 * exists, update its state, status, timeout and mark. NAT cannot change on a live
 * entry, so if the existing REPLY tuple differs from f->reply the entry is
 * destroyed and created again. The NAT is derived from f->reply: reply.dst !=
 * orig.src (or the port differs) is SNAT, reply.src != orig.dst is DNAT.
 * Supported protocols: TCP, UDP, UDP-Lite, SCTP, DCCP, GRE, ICMP (echo,
 * timestamp, info, mask), ICMPv6 (echo, node info); others fail with
 * EPROTONOSUPPORT. NAT of ports is applied for TCP and UDP only (a
 * libnetfilter_conntrack limit); ICMP identifiers are never translated.
 * Returns 0 or -1 with errno (EOPNOTSUPP for NAT usually means nf_nat is not
 * loaded or no NAT table exists for that family). */
int ct_inject(struct ct *ct, const struct flow *f);
/* Batched write-through: ct_inject()'s semantics (and counters) for many flows
 * with a few netlink round trips instead of two per flow. ct_batch_add() queues
 * f (copied); every CT_BATCH_MAX (256) entries, and at ct_batch_flush(), the
 * queue goes to the kernel as one sendmsg of requests, then one more per
 * remaining step (lookup, update, replace) of the entries that need it.
 * exists: the caller believes the entry is in the kernel (it wrote it before):
 * look it up first instead of trying to create it; either guess is corrected.
 * ct_batch_add returns -1 with errno only for a flow that cannot be written
 * (flow_check, as ct_inject), 0 once queued. ct_batch_flush writes what is
 * queued and returns how many entries failed since the previous flush (each also
 * counted in ct_stats().errors and logged as ct_inject does). When it returns,
 * every entry that did not fail is in the kernel. Events of batched writes are
 * our own (not reported). Not from a ct_dump() callback. */
int ct_batch_add(struct ct *ct, const struct flow *f, bool exists);
size_t ct_batch_flush(struct ct *ct);
/* Delete by ORIG tuple (and zone). -1 with errno ENOENT if there was none (not
 * counted as an error). */
int ct_remove(struct ct *ct, const struct flow *f);
/* Lookup by ORIG tuple (and zone) of key. 0 found (out filled), -1 not found
 * (errno ENOENT) or error. */
int ct_get(struct ct *ct, const struct flow *key, struct flow *out);

struct ct_stats {
	uint64_t events;     /* event messages received */
	uint64_t skipped;    /* events not reported: protocol 112/240, ignored prefix, odd */
	uint64_t own_events; /* events caused by our own injections (not reported) */
	uint64_t overruns;   /* ENOBUFS on the event socket (events lost, resync asked) */
	uint64_t injected;   /* entries created */
	uint64_t updated;    /* entries updated in place */
	uint64_t removed;    /* entries deleted by ct_remove */
	uint64_t errors;     /* failed kernel requests */
};
const struct ct_stats *ct_stats(const struct ct *ct);

/* Kernel settings, for one clear message at start. Always writes a summary of
 * what the operator should know into why (e.g. nf_conntrack_tcp_loose); returns 0
 * if nothing blocks, nonzero for a real blocker (nf_conntrack missing, events
 * disabled). Reads /proc/sys/net/netfilter of the calling network namespace; call
 * it after ct_open(), which loads the modules on demand. */
/* net.netfilter.nf_conntrack_events (1: every entry sends events; 2: only those
 * created while someone listened), -1 if unreadable */
long ct_sysctl_events(void);
int ct_check_kernel(char *why, size_t len);

/* A flow from a conntrack entry nested in another netlink message (NFQUEUE's
 * NFQA_CT); false when it cannot be read or is one we never replicate. */
bool ct_flow_from_payload(const struct ct *ct, const void *payload, size_t len, uint8_t l3,
			  struct flow *f);

/* One line, key=value, for logs and tools: "proto=tcp src=... dst=... sport=...". */
const char *ct_flow_str(const struct flow *f, char *buf, size_t len);
const char *ct_tcp_state_name(uint8_t state);

#endif

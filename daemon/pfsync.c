/* daemon/pfsync.c - see pfsync.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netlink/route/link.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uthash.h>

#include "daemon/actmark.h"
#include "daemon/carpd.h"
#include "daemon/ct.h"
#include "daemon/defer.h"
#include "daemon/output.h"
#include "daemon/pfsync.h"
#include "daemon/ptab.h"
#include "daemon/slab.h"
#include "proto/flow.h"
#include "proto/pfsync.h"

#define PFSYNC_TTL     PFSYNC_DFLTTL
#define PFSYNC_TOS     0x10
#define PFSYNC_MTU_MIN 1280  /* IPv6's minimum; a smaller sync link is not supported */
#define PFSYNC_MTU_MAX 65535 /* the IP total length */
#define FLUSH_DELAY_MS 1000  /* FreeBSD batches updates for at most 1 s */
/* New connections and their state changes wait at most this long (FreeBSD: 1 s
 * unless the packet fills). A connection is then on the peers about a millisecond
 * after it began, so a master that dies loses none that began a second before;
 * events read in one wakeup still share packets, and a packet that fills goes
 * at once. Refreshes and deletions keep FreeBSD's 1 s. */
#define SOON_DELAY_MS 1
#define REFRESH_S     5	 /* conntrack dump: missed events, refreshes to peers */
#define REFRESH_MAX_S 30 /* ... at most this far apart however long a dump takes */
/* With activity marks (actmark.h) the kernel tells which connections carry
 * traffic, and the dump only looks for what events may have missed without
 * saying so (events lost to a full socket buffer are said, ENOBUFS, and call for
 * a dump at once): a safety net, rarely. At 300 s it overlapped the latency
 * benchmark's runs and took its p99 from 2 to 56 ms. */
#define MARKED_SCAN_S	 1800
#define SWEEP_S		 5   /* learned states left alone by their partner: see sweep_cb() */
#define DUMP_COST_FACTOR 20  /* ... and 20 times what one costs apart at least */
#define BULK_RETRY_S	 5   /* bulkfail timer */
#define BULK_MAX_TRIES	 12  /* then pretend success, as FreeBSD does (~60 s) */
#define SYNC_DEMOTION	 240 /* net.pfsync.carp_demotion_factor */
/* What one send burst may hold, then flush_cb pauses 1 ms (FreeBSD sends one
 * packet a tick during a bulk update: 100 000 states take it minutes). A software
 * switch spends per packet, the receiver per byte (its conntrack writes):
 * - at most BURST_PACKETS packets: the userspace OVS of a 2-core VM forwarded 64
 *   a millisecond of 1500 bytes without loss (a 100 000-state update in 1.2 s
 *   instead of 3.3 s at 16);
 * - at most BURST_BYTES bytes, and in a bulk update at most BULK_WINDOW bytes
 *   that the receiver has not acknowledged yet. pfsync has no flow control, and a
 *   state lost in a bulk update is not asked for again; what the receiver has not
 *   written to conntrack yet waits in its receive buffer, which a sender at full
 *   speed overruns: on the same VM a receiver writes about 80 MB of pfsync states
 *   a second, and a 1 000 000-state update at 96 MB/s lost 13-15% of them. A
 *   carpd receiving a bulk update acknowledges its progress with INS_ACK messages
 *   (every BULK_ACK_BYTES it has written; pf ignores an INS_ACK for a state it
 *   does not defer), and the sender keeps at most BULK_WINDOW bytes ahead of the
 *   last one. A receiver that does not acknowledge (pf) gets BURST_SLOW_*, the
 *   pace of carpd before: about 22 MB/s. */
#define BURST_PACKETS	   64
#define BURST_BYTES	   (96 * 1000)
#define BURST_SLOW_PACKETS 16
#define BURST_SLOW_BYTES   (16 * 1500)
#define BULK_WINDOW	   (4u << 20)
#define BULK_ACK_BYTES	   (128u << 10)
#define BULK_RING	   4096 /* packets in flight the window tracks */
#define BULK_ACK_STALL_MS  200	/* no acknowledgement this long: the slow pace */
/* the receive buffer: a bulk update can come faster than we write it to
 * conntrack. A carpd sender stays within BULK_WINDOW of what we acknowledged,
 * but its first bursts and a sender that knows no window do not; before the
 * window, 8 MiB lost 14% of a 100 000-state update (70 MB) sent at full speed.
 * It is a bound, not an allocation: memory is used only while packets wait. */
#define SOCKBUF_BYTES (32 << 20)
/* Reading: RX_SLOTS datagrams a system call, each in a slot as large as an IP
 * packet can be (the buffer is allocated once; only what packets fill is ever
 * touched), at most RX_BATCH a wakeup. */
#define RX_SLOTS  16
#define RX_SLOT	  65536
#define RX_BATCH  64
#define DEFER_MS  20   /* net.pfsync.defer_delay */
#define DEFER_MAX 1024 /* held packets; the oldest goes when full (FreeBSD: 128 a bucket) */

/* A queue of entries (a stack: the last in goes out first, as a list pushed
 * and popped at its head would). Not a pointer in each entry: a queue holds a
 * few of them at a time, the tables hold them all, and 8 bytes in every
 * replicated connection is more than its array ever takes. */
struct pvec {
	void **v;
	size_t n, cap;
};

#define PVEC_KEEP 1024 /* entries an emptied queue keeps room for */

/* false when out of memory (the entry is not queued) */
static bool pvec_push(struct pvec *q, void *e)
{
	if (q->n == q->cap) {
		size_t ncap = q->cap ? q->cap * 2 : 64;
		void **nv = realloc(q->v, ncap * sizeof(*nv));
		if (!nv)
			return false;
		q->v = nv;
		q->cap = ncap;
	}
	q->v[q->n++] = e;
	return true;
}

static void *pvec_top(const struct pvec *q)
{
	return q->n ? q->v[q->n - 1] : NULL;
}

/* Remove e, keeping the others' order: from the top, where the latest are. */
static void pvec_remove(struct pvec *q, const void *e)
{
	for (size_t i = q->n; i-- > 0;)
		if (q->v[i] == e) {
			memmove(&q->v[i], &q->v[i + 1], (q->n - i - 1) * sizeof(*q->v));
			q->n--;
			return;
		}
}

/* an empty queue gives back what a burst (a bulk update) made it take */
static void pvec_trim(struct pvec *q)
{
	if (q->n == 0 && q->cap > PVEC_KEEP) {
		free(q->v);
		*q = (struct pvec){0};
	}
}

/* the identity of a conntrack entry: af, protocol and ORIG tuple */
struct fkey {
	uint8_t af, proto;
	uint16_t zone;
	struct flow_tuple t;
};

_Static_assert(sizeof(struct flow_tuple) == 36, "struct flow_tuple has padding");
_Static_assert(sizeof(struct fkey) == 4 + sizeof(struct flow_tuple), "struct fkey has padding");

/* a hash key: uthash compares it byte for byte, so no implicit padding (an
 * initializer leaves padding bytes undefined) */
struct sid {
	uint64_t id;
	uint32_t creatorid;
	uint32_t zero; /* explicit padding, always 0 */
};
_Static_assert(sizeof(struct sid) == 16, "struct sid has padding");

/* the bytes of an address of this family: what the packed structures keep */
static size_t af_alen(uint8_t af)
{
	return af == AF_INET6 ? 16 : 4;
}

/* a local conntrack entry and the pf states we announce for it. Not the states
 * themselves: they follow from the key and what the conntrack entry had when it
 * was last read (lflow_views()), which keeps a connection at a fraction of two
 * struct pf_view: 72 bytes for IPv4 (malloc's 80-byte chunk: 73 would take 96),
 * 84 for IPv6. */
struct lflow {
	struct fkey key;    /* ps->lflows is by key, ps->lids by id (UPD_REQ lookups) */
	uint64_t id;	    /* of the first state; the second's is id + 1 */
	uint32_t timeout;   /* the flow fields flow_to_pf() reads, as last read */
	uint32_t last_sent; /* now_s() */
	/* now_s() plus the timeout the kernel held at the last dump or event: a dump
	 * that finds a later expiry saw traffic (see dump_each) */
	uint32_t deadline;
	uint16_t xport;
	uint8_t tcp_state, status;
	uint8_t wscale_orig : 4, wscale_repl : 4; /* shifts: at most 14 */
	bool wscale_known : 1, xdnat : 1;
	bool q_ins : 1, q_upd : 1, q_full : 1, seen : 1;
	bool ack : 1; /* defer: the INS asks for INS_ACK */
	/* found by a dump, no event seen yet: with nf_conntrack_events=2 an entry
	 * created before carpd listened sends none, activity marks included */
	bool noev : 1;
	bool queued : 1; /* in ps->lq */
	uint8_t nstates : 2;
	uint8_t pftm; /* the first state's PFTM_* timeout index */
	/* of the REPLY tuple only the end a NAT may have changed: with xdnat its
	 * source, else its destination (the other end is the ORIG tuple's, reversed:
	 * flow_to_pf() maps no flow with both); as long as key.af needs */
	uint8_t xaddr[];
};
_Static_assert((FLOW_SEEN_REPLY | FLOW_ASSURED) <= UINT8_MAX, "lflow.status is 8 bits");
_Static_assert(offsetof(struct lflow, xaddr) == 68, "struct lflow is packed as it says");

static size_t lflow_size(uint8_t af)
{
	return offsetof(struct lflow, xaddr) + af_alen(af);
}

struct rflow;
/* a pf state learned from a peer: a struct pf_view packed (rstate_view() and
 * rstate_store() convert), its interface name interned in ps->ifnames and its
 * addresses as long as its family needs (4 x 4 bytes for IPv4, not 4 x 16). 56
 * bytes for IPv4 (malloc's 64-byte chunk; 64 bytes took an 80-byte one), 104 for
 * IPv6: a learned connection is two of them. */
struct rstate {
	/* the key in ps->rstates: the first RSTATE_KEYLEN bytes of a struct sid, without its
	 * padding */
	uint64_t id;
	uint32_t creatorid;
	union {
		uint32_t expire;      /* while rf is set */
		uint32_t orphaned_at; /* now_s() when rf became NULL: the other state of its
					 connection went first; its own DEL_C normally
					 follows (an update that takes it back stores
					 expire again) */
	};
	struct rflow *rf;
	uint16_t state_flags;
	uint8_t proto, timeout;
	/* index into ps->ifnames; AF_INET6 or AF_INET; PF_IN or PF_OUT; the peers'
	 * pf_peer.state (TCPS_*, at most PF_TCPS_PROXY_DST) and wscale (shift, and
	 * PF_WSCALE_FLAG as bit 4) */
	uint32_t ifname : 11, v6 : 1, direction : 2, src_state : 4, dst_state : 4, src_ws : 5,
		dst_ws : 5;
	uint16_t port[2][2]; /* key[k].port[i] */
	uint8_t addr[];	     /* key[k].addr[i] at (2k + i) * alen */
};
_Static_assert(offsetof(struct rstate, addr) == 40, "struct rstate is packed as it says");

#define RSTATE_KEYLEN 12 /* id and creatorid */
_Static_assert(offsetof(struct rstate, creatorid) == offsetof(struct rstate, id) + 8 &&
		       offsetof(struct sid, creatorid) == offsetof(struct sid, id) + 8 &&
		       offsetof(struct sid, id) == 0,
	       "struct rstate's key is laid out as the start of struct sid");
#define RSTATE_IFNAMES_MAX 2048 /* distinct interface names learned states carry */

/* index of half-known translations: a first state that translates and waits for
 * the state continuing it (DNAT), keyed by its translated tuple. Allocated only
 * while an rflow waits, not in every rflow. */
struct rpost {
	UT_hash_handle hh;
	struct fkey key;
	struct rflow *rf;
};

/* a conntrack entry built from learned states: first carries the ORIG tuple, second
 * (if any) the translation that follows it. 32 bytes (malloc's 48-byte chunk): no
 * key, no queue links (struct pvec). */
struct rflow {
	/* in ps->rflows by the key of first's ORIG candidate (rflow_key(): holding it
	 * took 40 bytes in every learned connection, and a chunk of malloc's twice
	 * as large); first is never NULL */
	struct rstate *first, *second;
	bool dirty : 1; /* in ps->dirty */
	/* it has an entry in ps->rposts (rflow_post() finds it: a pointer here made
	 * every learned connection 16 bytes bigger for the rare half-known DNAT) */
	bool posted : 1;
	bool written : 1; /* sent to the kernel before: update rather than create */
	/* traffic went through our copy since the peer last updated it (we are, or
	 * were, the one forwarding it): we announce its changes and its end under
	 * the creator's ids, as pf does for states it imported */
	bool active : 1;
	bool queued : 1, q_full : 1, seen : 1; /* queued: in ps->rq */
	uint32_t last_sent;		       /* now_s() */
	/* now_s() plus the timeout the kernel held at the last dump, event or write
	 * (as struct lflow's) */
	uint32_t deadline;
};
_Static_assert(sizeof(struct rflow) <= 40, "struct rflow fits malloc's 48-byte chunk");

/* A connection we forgot (it ended, or its peer deleted it) while a refresh dump
 * was running: the dump may still show it, from a datagram the kernel filled
 * before the entry went, and must not take it for a connection whose events were
 * missed (it would be sent again as new, and the peer would write it back). */
struct tomb {
	struct fkey key;
};

struct pfsyncd;
/* the refresh dump in progress */
struct dump_ctx {
	struct pfsyncd *ps;
	time_t now; /* when it began */
};

struct pfsyncd {
	struct carpd *cd;
	struct conf_pfsync cfg;
	/* the entries there is one of per replicated connection (slab.h): local
	 * connections and learned states by family ([1]: IPv6), learned connections */
	struct slab lflow_slab[2], rstate_slab[2], rflow_slab;
	uint32_t creatorid;
	uint64_t next_id;
	uint64_t id_base; /* ids above it were made by this run (echo detection) */
	int ifindex;
	int fd;
	int family;
	struct event *rx_ev, *flush_ev, *refresh_ev, *bulk_ev, *sweep_ev;
	struct actmark *am; /* activity marks, or NULL: scan the table (REFRESH_S) */
	bool orphans;	    /* learned states may be waiting for sweep_cb() */
	size_t n_noev;	    /* struct lflow with noev */
	struct ct *ct;
	/* the tables that grow with the connections (see ptab.h) */
	struct ptab lflows;   /* struct lflow by key */
	struct ptab rstates;  /* struct rstate by id and creatorid */
	struct ptab rflows;   /* struct rflow by key */
	struct rpost *rposts; /* see struct rpost */
	uint8_t *rxbuf;	      /* RX_SLOTS * RX_SLOT bytes */
	/* connections to announce: local ones (struct lflow), learned ones (struct
	 * rflow) */
	struct pvec lq, rq;
	struct ptab lids;    /* struct lflow by id */
	struct ptab tombs;   /* struct tomb by key, while a refresh dump runs */
	char (*ifnames)[16]; /* interned pf_view.ifname of learned states */
	size_t nifnames;
	struct pvec dirty; /* struct rflow to write to the kernel (commit_dirty()) */
	/* small queues of ids */
	struct sid *delq, *ureqq, *ackq;
	size_t ndel, nureq, nack, capdel, capureq, capack;
	bool bus_start, bus_end;
	time_t bulk_received_at;
	uint64_t bulk_received_ms; /* now_ms(), for the log */
	/* our own bulk request */
	enum { BULK_NONE, BULK_PENDING, BULK_DONE } bulk;
	int bulk_tries;
	size_t mtu; /* of the sync interface, as last read (sync_mtu()) */
	uint64_t mtu_read_ms;
	/* the send timer: when it is due (CLOCK_MONOTONIC ms), whether flush_cb set it
	 * for its pause between bursts, and the bytes of states queued since the
	 * last flush (a packet's worth sends at once) */
	uint64_t flush_due_ms;
	bool pacing;
	uint64_t pace_us; /* when the last paced burst began (now_us()) */
	/* answering a bulk update: the bytes sent and acknowledged (see BULK_WINDOW),
	 * and for each packet in flight its last state and the bytes sent with it */
	struct bulk_window {
		bool on, acked;
		uint64_t sent, acked_bytes, last_ack_ms;
		struct bw_mark {
			struct sid s;
			uint64_t sent;
		} * ring;
		size_t head, n;
		struct sid last; /* the last state put in the packet being built */
		bool have_last;
	} bw;
	/* receiving a bulk update: its last state, and the bytes since the last
	 * acknowledgement */
	struct sid bulk_rx_last;
	bool bulk_rx_have_last;
	struct sid bulk_ack_sent; /* the last acknowledgement queued, at ackq[bulk_ack_at] until
				     sent */
	size_t bulk_ack_at;
	size_t bulk_rx_unacked;
	size_t qbytes;
	/* the refresh dump (in the background, see refresh_cb) */
	struct dump_ctx dump_ctx;
	struct timespec dump_t0;
	int64_t last_dump_ms;	   /* how long the last completed one took, -1: none yet */
	int64_t last_dump_busy_ms; /* of which reading and handling its entries */
	bool refresh_again;	   /* events were lost while it ran: one more at once */
	/* An entry was found by the current (or last) dump when its seen bit equals
	 * this; a dump starts by flipping it, which makes every entry unseen at once
	 * (clearing the bit entry by entry blocked the loop for tens of ms at a
	 * million connections, long enough to miss a fast-mode advertisement). */
	bool seen_phase;
	bool bulk_answer_pending; /* a peer's bulk request waits for our first dump */
	time_t bulk_sent_at;
	bool bulk_started;	/* BUS START of the update we asked for came */
	bool bulk_reasked;	/* asked again when a peer's own request showed it up */
	time_t bulk_rearmed_at; /* states of it arrived: the fail timer restarted */
	bool demoted;
	bool new_events_off; /* while a bulk update comes in: see new_events() */
	bool dumped;	     /* the kernel's table was read once (after our bulk update) */
	/* defer mode: packets held until INS_ACK or DEFER_MS */
	struct defer *defer;
	struct held {
		uint32_t packet_id;
		uint64_t id; /* the state whose INS_ACK releases it */
		struct timespec deadline;
	} held[DEFER_MAX];
	size_t nheld;
	struct event *defer_ev;
	struct timespec peer_last_heard;
	bool peer_heard;
	/* the last sender, as received (formatted for status only: inet_ntop() per
	 * packet was a printf for every packet) */
	uint8_t peer_addr[16];
	struct pfsync_counters c;
};

static struct lflow *lflow_alloc(struct pfsyncd *ps, uint8_t af)
{
	return slab_alloc(&ps->lflow_slab[af == AF_INET6]);
}

static void lflow_release(struct pfsyncd *ps, struct lflow *lf)
{
	slab_free(&ps->lflow_slab[lf->key.af == AF_INET6], lf);
}

/* zeroed but for its family */
static struct rstate *rstate_alloc(struct pfsyncd *ps, uint8_t af)
{
	struct rstate *rs = slab_alloc(&ps->rstate_slab[af == AF_INET6]);
	if (rs)
		rs->v6 = af == AF_INET6;
	return rs;
}

static void rstate_release(struct pfsyncd *ps, struct rstate *rs)
{
	slab_free(&ps->rstate_slab[rs->v6], rs);
}

static time_t now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static void fkey_of(const struct flow *f, struct fkey *k)
{
	memset(k, 0, sizeof(*k));
	k->af = f->af;
	k->proto = f->proto;
	k->zone = f->zone;
	k->t = f->orig;
}

/* the key of a tuple taken from a pf state: as fkey_of() makes it from the kernel's
 * flow, where an ICMP tuple's dport is 0 (pf puts the identifier in both ports) */
static void fkey_tuple(uint8_t af, uint8_t proto, const struct flow_tuple *t, struct fkey *k)
{
	memset(k, 0, sizeof(*k));
	k->af = af;
	k->proto = proto;
	k->t = *t;
	if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6)
		k->t.dport = 0;
}

/* ---- learned states, packed ----------------------------------------------------- */

static uint8_t rs_af(const struct rstate *rs)
{
	return rs->v6 ? AF_INET6 : AF_INET;
}

/* a packed peer back as pf has it (rs_ws() undone) */
static struct pf_peer rs_peer(unsigned state, unsigned ws)
{
	return (struct pf_peer){
		.state = (uint8_t)state,
		.wscale = (uint8_t)((ws & PF_WSCALE_MASK) | (ws & 0x10 ? PF_WSCALE_FLAG : 0))};
}

/* a peer's window scale as rstate packs it (the shift, PF_WSCALE_FLAG as bit 4),
 * or -1 when the peer's state or window scale does not fit its bits */
static int rs_ws(const struct pf_peer *p)
{
	if (p->state > 15 || (p->wscale & ~(PF_WSCALE_MASK | PF_WSCALE_FLAG)))
		return -1;
	return (p->wscale & PF_WSCALE_MASK) | (p->wscale & PF_WSCALE_FLAG ? 0x10 : 0);
}

/* the peers of a learned state (the ones rstate_store() accepted) */
static void rs_set_peers(struct rstate *rs, const struct pf_peer *src, const struct pf_peer *dst)
{
	rs->src_state = src->state & 15;
	rs->src_ws = (unsigned)rs_ws(src) & 31;
	rs->dst_state = dst->state & 15;
	rs->dst_ws = (unsigned)rs_ws(dst) & 31;
}

static size_t rstate_size(uint8_t af)
{
	return offsetof(struct rstate, addr) + 4 * af_alen(af);
}

static void rstate_view(const struct pfsyncd *ps, const struct rstate *rs, struct pf_view *v)
{
	size_t alen = af_alen(rs_af(rs));
	memset(v, 0, sizeof(*v));
	v->id = rs->id;
	v->creatorid = rs->creatorid;
	v->af = rs_af(rs);
	v->proto = rs->proto;
	v->direction = rs->direction;
	memcpy(v->ifname, ps->ifnames[rs->ifname], sizeof(v->ifname));
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < 2; i++) {
			memcpy(v->key[k].addr[i].bytes, rs->addr + (size_t)(2 * k + i) * alen,
			       alen);
			v->key[k].port[i] = rs->port[k][i];
		}
	v->src = rs_peer(rs->src_state, rs->src_ws);
	v->dst = rs_peer(rs->dst_state, rs->dst_ws);
	v->timeout = rs->timeout;
	v->expire = rs->expire; /* an orphan's is its orphaned_at: only its keys are read */
	v->state_flags = rs->state_flags;
}

/* pf_orig_candidate() of a learned state, read from its packed keys: its ORIG
 * candidate, or (post) its translation */
static void rs_tuple(const struct rstate *rs, bool post, struct flow_tuple *t)
{
	size_t alen = af_alen(rs_af(rs));
	bool out = rs->direction == PF_DIR_OUT;
	int k = out == post ? PF_SK_WIRE : PF_SK_STACK;
	int src = out ? 1 : 0, dst = !src;
	memset(t, 0, sizeof(*t));
	memcpy(t->src.bytes, rs->addr + (size_t)(2 * k + src) * alen, alen);
	memcpy(t->dst.bytes, rs->addr + (size_t)(2 * k + dst) * alen, alen);
	t->sport = rs->port[k][src];
	t->dport = rs->port[k][dst];
}

/* Does v have the keys rs holds (same family)? What rs_tuple() reads. */
static bool rstate_same_keys(const struct rstate *rs, const struct pf_view *v)
{
	size_t alen = af_alen(rs_af(rs));
	if (rs->proto != v->proto || rs->direction != v->direction)
		return false;
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < 2; i++)
			if (rs->port[k][i] != v->key[k].port[i] ||
			    memcmp(rs->addr + (size_t)(2 * k + i) * alen, v->key[k].addr[i].bytes,
				   alen))
				return false;
	return true;
}

/* the key of a learned connection in ps->rflows (see ptab_init_derived()) */
static const void *rflow_key(const void *e, void *buf)
{
	const struct rflow *rf = e;
	struct fkey *k = buf;
	struct flow_tuple orig;
	rs_tuple(rf->first, false, &orig);
	fkey_tuple(rs_af(rf->first), rf->first->proto, &orig, k);
	return k;
}
_Static_assert(sizeof(struct fkey) <= PTAB_KEY_MAX, "an rflow key fits the table's buffer");

/* what rflow_key() reads beyond the connection: its first state's keys */
static void rflow_prefetch(const void *e)
{
	const struct rflow *rf = e;
	__builtin_prefetch(rf->first);
	__builtin_prefetch((const uint8_t *)rf->first + offsetof(struct rstate, addr));
}

/* Pack v into rs, which has its family (rstate_alloc()); false, counted, when its
 * interface name is one too many or a field does not fit its packed size. */
static bool rstate_store(struct pfsyncd *ps, struct rstate *rs, const struct pf_view *v)
{
	if (rs_ws(&v->src) < 0 || rs_ws(&v->dst) < 0 || v->direction > 3) {
		ps->c.badval++;
		return false;
	}
	size_t n;
	for (n = 0; n < ps->nifnames; n++)
		if (!memcmp(ps->ifnames[n], v->ifname, sizeof(v->ifname)))
			break;
	if (n == ps->nifnames) {
		char(*grown)[16] = n < RSTATE_IFNAMES_MAX
					   ? realloc(ps->ifnames, (n + 1) * sizeof(*grown))
					   : NULL;
		if (!grown) {
			ps->c.not_mappable++;
			return false;
		}
		ps->ifnames = grown;
		memcpy(grown[n], v->ifname, sizeof(grown[n]));
		ps->nifnames++;
	}
	size_t alen = af_alen(rs_af(rs));
	rs->ifname = (uint32_t)n & 2047;
	rs->proto = v->proto;
	rs->direction = v->direction & 3;
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < 2; i++) {
			memcpy(rs->addr + (size_t)(2 * k + i) * alen, v->key[k].addr[i].bytes,
			       alen);
			rs->port[k][i] = v->key[k].port[i];
		}
	rs_set_peers(rs, &v->src, &v->dst);
	rs->timeout = v->timeout;
	rs->expire = v->expire;
	rs->state_flags = v->state_flags;
	return true;
}

/* the conntrack entry a learned connection's states make */
static int rflow_to_flow(const struct pfsyncd *ps, const struct rflow *rf, struct flow *f)
{
	struct pf_view a, b;
	rstate_view(ps, rf->first, &a);
	if (rf->second)
		rstate_view(ps, rf->second, &b);
	return pf_to_flow(&a, rf->second ? &b : NULL, f);
}

/* ---- queues -------------------------------------------------------------------- */

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t now_ms(void)
{
	return now_us() / 1000;
}

/* The send timer fires within delay_ms, or sooner if it was due sooner. While
 * flush_cb pauses between bursts, its own 1 ms timer stands. */
static void schedule_flush_within(struct pfsyncd *ps, unsigned delay_ms)
{
	if (ps->pacing && evtimer_pending(ps->flush_ev, NULL))
		return;
	uint64_t due = now_ms() + delay_ms;
	if (evtimer_pending(ps->flush_ev, NULL) && ps->flush_due_ms <= due)
		return;
	struct timeval tv = {(time_t)(delay_ms / 1000), (suseconds_t)(delay_ms % 1000) * 1000};
	evtimer_del(ps->flush_ev);
	evtimer_add(ps->flush_ev, &tv);
	ps->flush_due_ms = due;
}

static void schedule_flush(struct pfsyncd *ps, bool now)
{
	schedule_flush_within(ps, now ? 0 : FLUSH_DELAY_MS);
}

/* bytes of pf state messages were queued: a packet's worth goes at once (as
 * FreeBSD sends a packet as soon as it is full), the rest within delay_ms */
static void queued_bytes(struct pfsyncd *ps, size_t bytes, unsigned delay_ms)
{
	size_t mtu = ps->mtu ? ps->mtu : 1500;
	ps->qbytes += bytes;
	/* IP header, pfsync header, a few subheaders */
	schedule_flush_within(ps, ps->qbytes + 100 >= mtu ? 0 : delay_ms);
}

static void sidq_push(struct sid **q, size_t *n, size_t *cap, uint32_t creatorid, uint64_t id)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		struct sid *nq = realloc(*q, ncap * sizeof(**q));
		if (!nq)
			return;
		*q = nq;
		*cap = ncap;
	}
	(*q)[(*n)++] = (struct sid){.id = id, .creatorid = creatorid};
}

static void tomb_add(struct pfsyncd *ps, const struct fkey *k)
{
	if (ps->ct == NULL || !ct_dump_running(ps->ct) || ptab_find(&ps->tombs, k))
		return;
	struct tomb *t = malloc(sizeof(*t));
	if (t == NULL)
		return;
	t->key = *k;
	if (ptab_add(&ps->tombs, t) < 0)
		free(t);
}

/* soon: a new connection or a change of its state (SOON_DELAY_MS), not a refresh */
static void lflow_enqueue(struct pfsyncd *ps, struct lflow *lf, bool soon)
{
	if (!lf->queued) {
		if (!pvec_push(&ps->lq, lf)) {
			log_warn("pfsync: out of memory: a connection waits for the next refresh");
			return;
		}
		lf->queued = true;
		size_t msg = lf->q_ins || lf->q_full ? pfsync_state_size(ps->cfg.version)
						     : PFSYNC_UPD_C_LEN;
		queued_bytes(ps, lf->nstates * msg, soon ? SOON_DELAY_MS : FLUSH_DELAY_MS);
	} else if (soon) {
		schedule_flush_within(ps, SOON_DELAY_MS);
	}
}

/* ---- local flows (conntrack -> peers) -------------------------------------------------- */

/* The pf states of a local connection, as lflow_build() last saw it; returns
 * their number. */
static int lflow_views(const struct pfsyncd *ps, const struct lflow *lf, struct pf_view st[2])
{
	struct flow f;
	memset(&f, 0, sizeof(f));
	f.af = lf->key.af;
	f.proto = lf->key.proto;
	f.zone = lf->key.zone;
	f.orig = lf->key.t;
	if (lf->xdnat) {
		memcpy(f.reply.src.bytes, lf->xaddr, af_alen(lf->key.af));
		f.reply.sport = lf->xport;
		f.reply.dst = f.orig.src;
		f.reply.dport = f.orig.sport;
	} else {
		f.reply.src = f.orig.dst;
		f.reply.sport = f.orig.dport;
		memcpy(f.reply.dst.bytes, lf->xaddr, af_alen(lf->key.af));
		f.reply.dport = lf->xport;
	}
	f.tcp_state = lf->tcp_state;
	f.wscale_known = lf->wscale_known;
	f.wscale_orig = lf->wscale_orig;
	f.wscale_repl = lf->wscale_repl;
	f.status = lf->status;
	f.timeout = lf->timeout;
	int n = flow_to_pf(&f, st);
	if (n > lf->nstates)
		n = lf->nstates;
	for (int i = 0; i < n; i++) {
		st[i].id = lf->id + (uint64_t)i;
		st[i].creatorid = ps->creatorid;
	}
	return n;
}

static bool lflow_build(struct pfsyncd *ps, struct lflow *lf, const struct flow *f)
{
	struct pf_view st[2];
	int n = flow_to_pf(f, st);
	if (n <= 0) {
		ps->c.not_mappable++;
		return false;
	}
	if (!lf->nstates) {
		/* ids in pairs, the first even: one index entry finds both states, and
		 * the ids the peers know this connection by stay */
		lf->id = (ps->next_id + 2) & ~(uint64_t)1;
		ps->next_id = lf->id + 1;
		if (ptab_add(&ps->lids, lf) < 0)
			log_warn("pfsync: out of memory: an UPD_REQ for %016llx will go unanswered",
				 (unsigned long long)lf->id);
	}
	/* ICMP: flow_to_pf() reads no REPLY port */
	bool icmp = f->proto == IPPROTO_ICMP || f->proto == IPPROTO_ICMPV6;
	lf->xdnat = memcmp(&f->reply.src, &f->orig.dst, af_alen(f->af)) ||
		    (!icmp && f->reply.sport != f->orig.dport);
	memcpy(lf->xaddr, (lf->xdnat ? &f->reply.src : &f->reply.dst)->bytes, af_alen(lf->key.af));
	lf->xport = lf->xdnat ? f->reply.sport : f->reply.dport;
	lf->timeout = f->timeout;
	lf->tcp_state = f->tcp_state;
	lf->wscale_known = f->wscale_known;
	lf->wscale_orig = f->wscale_orig & 0x0f; /* the kernel's are at most 14 */
	lf->wscale_repl = f->wscale_repl & 0x0f;
	lf->status = (uint8_t)(f->status & (FLOW_SEEN_REPLY | FLOW_ASSURED));
	lf->nstates = (uint8_t)n & 3; /* 0 to 2 */
	lf->pftm = st[0].timeout;
	return true;
}

/* how often an active connection is refreshed to the peers: well within pf's
 * timeout for its state, at most every 30 s */
static time_t refresh_period(uint8_t pf_timeout_index)
{
	uint32_t period = pf_default_timeout(pf_timeout_index) / 3;
	return period > 30 || period == 0 ? 30 : (time_t)period;
}

/* what the peers' copy of a local connection holds, but for its expiry */
static uint64_t lflow_sig(const struct lflow *lf)
{
	return (uint64_t)lf->tcp_state | (uint64_t)lf->status << 8 |
	       (uint64_t)lf->wscale_orig << 16 | (uint64_t)lf->wscale_repl << 24 |
	       (uint64_t)lf->wscale_known << 32 | (uint64_t)lf->pftm << 40 |
	       (uint64_t)lf->nstates << 48;
}

static struct lflow *local_new(struct pfsyncd *ps, const struct flow *event)
{
	struct fkey k;
	struct lflow *lf;
	fkey_of(event, &k);
	lf = ptab_find(&ps->lflows, &k);
	/* what the event left out is what we last read */
	struct flow merged = *event;
	const struct flow *f = &merged;
	if (lf && (event->partial & FLOW_PARTIAL_TCP)) {
		merged.tcp_state = lf->tcp_state;
		merged.wscale_known = lf->wscale_known;
		merged.wscale_orig = lf->wscale_orig;
		merged.wscale_repl = lf->wscale_repl;
	}
	if (lf && (event->partial & FLOW_PARTIAL_STATUS))
		merged.status = lf->status;
	if (lf == NULL && event->partial) {
		/* a connection we do not know, and an event that does not say its
		 * state: the next table scan reads it whole */
		ps->c.partial_events++;
		return NULL;
	}
	if (lf) {
		/* A change of state goes out within SOON_DELAY_MS. An event that
		 * changes nothing the peers hold (the activity mark turned: traffic
		 * passed, see actmark.h; or someone else's mark or label) is a refresh:
		 * sent once per refresh_period(), in the 1 s batch. */
		uint64_t before = lflow_sig(lf);
		time_t now = now_s();
		if (lf->noev) {
			lf->noev = false;
			ps->n_noev--;
		}
		if (lflow_build(ps, lf, f)) {
			if (lflow_sig(lf) != before) {
				lf->q_upd = true;
				lflow_enqueue(ps, lf, true);
			} else if (now - lf->last_sent >= refresh_period(lf->pftm)) {
				lf->q_upd = true;
				lflow_enqueue(ps, lf, false);
			}
		}
		lf->deadline = (uint32_t)(now + f->timeout);
		return lf;
	}
	lf = lflow_alloc(ps, f->af);
	if (!lf)
		return NULL;
	lf->key = k;
	if (!lflow_build(ps, lf, f)) {
		lflow_release(ps, lf);
		return NULL;
	}
	lf->q_ins = true;
	lf->seen = ps->seen_phase; /* a dump that runs now may have passed it already */
	lf->deadline = (uint32_t)(now_s() + f->timeout);
	if (ptab_add(&ps->lflows, lf) < 0) {
		ptab_del(&ps->lids, lf);
		lflow_release(ps, lf);
		return NULL;
	}
	lflow_enqueue(ps, lf, true);
	return lf;
}

static void lflow_free(struct pfsyncd *ps, struct lflow *lf, bool announce)
{
	if (announce && !lf->q_ins) {
		for (int i = 0; i < lf->nstates; i++)
			sidq_push(&ps->delq, &ps->ndel, &ps->capdel, ps->creatorid,
				  lf->id + (uint64_t)i);
		schedule_flush(ps, false);
	}
	/* An INS still queued for a connection that is already gone: send nothing at
	 * all, as FreeBSD does. */
	if (lf->queued)
		pvec_remove(&ps->lq, lf);
	if (lf->noev)
		ps->n_noev--;
	tomb_add(ps, &lf->key);
	ptab_del(&ps->lids, lf);
	ptab_del(&ps->lflows, lf);
	lflow_release(ps, lf);
}

static void local_destroy(struct pfsyncd *ps, const struct flow *f)
{
	struct fkey k;
	struct lflow *lf;
	fkey_of(f, &k);
	lf = ptab_find(&ps->lflows, &k);
	if (lf)
		lflow_free(ps, lf, true);
}

/* Is this conntrack entry one we wrote for a peer? (The portid filter in ct.c
 * drops the events of our own writes; the kernel's own later updates of those
 * entries — a timeout refresh, a TCP state change — come back as ordinary
 * events and must not be announced under our creatorid either.) */
static struct rflow *find_learned(struct pfsyncd *ps, const struct flow *f)
{
	struct fkey k;
	struct rflow *rf;
	fkey_of(f, &k);
	rf = ptab_find(&ps->rflows, &k);
	return rf;
}

static void learned_kernel_event(struct pfsyncd *ps, struct rflow *rf, enum ct_event ev,
				 const struct flow *f);

static void ct_event(void *arg, enum ct_event ev, const struct flow *f)
{
	struct pfsyncd *ps = arg;
	struct rflow *rf = find_learned(ps, f);
	if (rf) {
		learned_kernel_event(ps, rf, ev, f);
		return;
	}
	if (ev == CT_EV_DESTROY)
		local_destroy(ps, f);
	else
		local_new(ps, f);
}

static void ct_resync(void *arg)
{
	struct pfsyncd *ps = arg;
	/* the next refresh dump re-reads everything */
	struct timeval tv = {0, 0};
	evtimer_del(ps->refresh_ev);
	evtimer_add(ps->refresh_ev, &tv);
}

static void learned_dump_each(struct pfsyncd *ps, struct rflow *rf, const struct flow *f,
			      time_t now);

static void dump_each(void *arg, const struct flow *f)
{
	struct dump_ctx *dc = arg;
	struct pfsyncd *ps = dc->ps;
	struct rflow *rf = find_learned(ps, f);
	if (rf) {
		learned_dump_each(ps, rf, f, dc->now);
		return;
	}
	struct fkey k;
	struct lflow *lf;
	fkey_of(f, &k);
	lf = ptab_find(&ps->lflows, &k);
	if (!lf) {
		if (ps->tombs.n && ptab_find(&ps->tombs, &k))
			return;	       /* gone since the kernel wrote this part of the dump */
		lf = local_new(ps, f); /* an event we missed */
		if (lf) {	       /* local_new() marked it seen */
			lf->noev = true;
			ps->n_noev++;
		}
		return;
	}
	lf->seen = ps->seen_phase;
	/* conntrack sends no event per packet: a timeout that went up since the last
	 * dump means the connection carried traffic; tell the peers so that their copy
	 * does not expire (pf refreshes a state's expiry on every UPD / UPD_C). */
	bool active = (int64_t)dc->now + f->timeout + 1 > (int64_t)lf->deadline;
	if (active && dc->now - lf->last_sent >= refresh_period(lf->pftm)) {
		if (lflow_build(ps, lf, f)) {
			lf->q_upd = true;
			lflow_enqueue(ps, lf, false);
		}
	}
	lf->deadline = (uint32_t)(dc->now + f->timeout);
}

static void rflow_drop(struct pfsyncd *ps, struct rflow *rf, bool announce);
static void rstate_free(struct pfsyncd *ps, struct rstate *rs);

static void answer_bulk(struct pfsyncd *ps);

static void refresh_done(void *arg, int result)
{
	struct pfsyncd *ps = ((struct dump_ctx *)arg)->ps;
	struct lflow *lf;
	struct rflow *rf;
	struct ptab_iter it = {0};
	if (result == 0) {
		/* gone from the kernel without a DESTROY event we saw (connections
		 * that began during the dump were marked seen when they began) */
		while ((lf = ptab_next(&ps->lflows, &it)))
			if (lf->seen != ps->seen_phase)
				lflow_free(ps, lf, true);
		/* learned entries the kernel no longer holds (expired, or never written):
		 * forgotten, so memory follows the kernel; if the peer still has the
		 * connection, its next update asks us for it again (UPD_C -> UPD_REQ) */
		it = (struct ptab_iter){0};
		while ((rf = ptab_next(&ps->rflows, &it))) {
			if (rf->seen == ps->seen_phase)
				continue;
			if (!rf->dirty)
				rflow_drop(ps, rf, rf->active);
			else
				rf->seen = ps->seen_phase; /* unseen again at the next flip */
		}
	}
	/* (a failed dump sweeps nothing: what it did not reach counts as seen in
	 * the next one and is checked by the one after) */
	ptab_free_all(&ps->tombs); /* the dump is over: nothing stale can come any more */
	/* A dump costs about 3 µs of the daemon's time per entry (in slices a
	 * millisecond apart, between which the loop runs; the kernel's side is most
	 * of it): dumps start DUMP_COST_FACTOR times that cost apart, so that they
	 * take at most 5% of a core, REFRESH_S at least, REFRESH_MAX_S at most (within
	 * pf's timeouts, see refresh_period()) unless one lasts longer; with activity
	 * marks, MARKED_SCAN_S apart. Events lost meanwhile (ct_resync) call for the
	 * next one at once. */
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	int64_t took_ms = (int64_t)(t1.tv_sec - ps->dump_t0.tv_sec) * 1000 +
			  (t1.tv_nsec - ps->dump_t0.tv_nsec) / 1000000;
	int64_t busy_ms = (int64_t)ct_dump_busy_ms(ps->ct);
	if (result == 0) {
		ps->c.dumps++;
		ps->last_dump_ms = took_ms;
		ps->last_dump_busy_ms = busy_ms;
	}
	int64_t period_ms = busy_ms * DUMP_COST_FACTOR;
	/* connections that may send no events still need the scan to be refreshed */
	bool marked = ps->am && (ps->n_noev == 0 || ct_sysctl_events() == 1);
	int64_t min_ms = (marked ? MARKED_SCAN_S : REFRESH_S) * 1000;
	int64_t max_ms = (marked ? MARKED_SCAN_S : REFRESH_MAX_S) * 1000;
	if (period_ms < min_ms)
		period_ms = min_ms;
	if (period_ms > max_ms && !marked)
		period_ms = max_ms;
	int64_t next_ms = period_ms > took_ms ? period_ms - took_ms : 0;
	if (ps->refresh_again)
		next_ms = 0;
	if (ps->bulk_answer_pending) {
		ps->bulk_answer_pending = false;
		log_info("pfsync: answering the bulk request: %u connections (%u local, %u "
			 "learned)",
			 (unsigned)ps->lflows.n + (unsigned)ps->rflows.n, (unsigned)ps->lflows.n,
			 (unsigned)ps->rflows.n);
		answer_bulk(ps);
	}
	ps->refresh_again = false;
	struct timeval tv = {(time_t)(next_ms / 1000), (suseconds_t)(next_ms % 1000) * 1000};
	evtimer_add(ps->refresh_ev, &tv);
}

/* Learned states whose partner was deleted and whose own DEL_C never came. */
static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct pfsyncd *ps = arg;
	struct rstate *rs;
	struct ptab_iter it = {0};
	time_t now = now_s();
	if (!ps->orphans)
		return;
	bool left = false;
	while ((rs = ptab_next(&ps->rstates, &it))) {
		if (rs->rf)
			continue;
		if (now - rs->orphaned_at >= SWEEP_S)
			rstate_free(ps, rs);
		else
			left = true;
	}
	ps->orphans = left;
}

/* The activity marks' table went and could not be put back: scan again. */
static void actmark_lost(void *arg)
{
	struct pfsyncd *ps = arg;
	actmark_close(ps->am);
	ps->am = NULL;
	if (!ct_dump_running(ps->ct)) {
		struct timeval tv = {0, 0};
		evtimer_del(ps->refresh_ev);
		evtimer_add(ps->refresh_ev, &tv);
	}
}

static void refresh_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pfsyncd *ps = arg;
	if (ct_dump_running(ps->ct)) {
		ps->refresh_again = true; /* events were lost during this dump */
		return;
	}
	ps->seen_phase = !ps->seen_phase; /* every entry unseen */
	ps->dump_ctx = (struct dump_ctx){ps, now_s()};
	clock_gettime(CLOCK_MONOTONIC, &ps->dump_t0);
	/* in the background: the loop goes on between slices of the table */
	if (ct_dump_start(ps->ct, dump_each, refresh_done, &ps->dump_ctx) < 0) {
		log_err("conntrack dump: %s", strerror(errno));
		refresh_done(&ps->dump_ctx, -1);
	}
}

/* ---- learned states (peers -> conntrack) ------------------------------------------- */

static bool tuple_eq(const struct flow_tuple *a, const struct flow_tuple *b)
{
	return !memcmp(a, b, sizeof(*a));
}

static void rflow_mark(struct pfsyncd *ps, struct rflow *rf)
{
	if (!rf->dirty) {
		if (!pvec_push(&ps->dirty, rf)) {
			log_warn("pfsync: out of memory: a learned connection waits for its "
				 "next update");
			return;
		}
		rf->dirty = true;
	}
}

/* The key in ps->rposts of a learned state: its translated tuple; false when it
 * translates nothing. */
static bool post_key(const struct rstate *rs, struct fkey *k)
{
	struct flow_tuple fo, fp;
	rs_tuple(rs, false, &fo);
	rs_tuple(rs, true, &fp);
	if (tuple_eq(&fo, &fp))
		return false;
	fkey_tuple(rs_af(rs), rs->proto, &fp, k);
	return true;
}

/* The entry of rf in ps->rposts: keyed by the translated tuple of the state that
 * was its first when it was made, which is still its first or, since a state
 * went in front of it, its second. */
static struct rpost *rflow_post(struct pfsyncd *ps, const struct rflow *rf)
{
	const struct rstate *st[2] = {rf->first, rf->second};
	for (int i = 0; i < 2; i++) {
		struct fkey k;
		struct rpost *p;
		if (!st[i] || !post_key(st[i], &k))
			continue;
		HASH_FIND(hh, ps->rposts, &k, sizeof(k), p);
		if (p && p->rf == rf)
			return p;
	}
	/* a peer changed the keys of a state it had sent (pf never does): look
	 * through them all rather than leave an entry pointing at a freed rf */
	struct rpost *p, *tmp;
	HASH_ITER(hh, ps->rposts, p, tmp)
	{
		if (p->rf == rf)
			return p;
	}
	return NULL;
}

static void rflow_unpost(struct pfsyncd *ps, struct rflow *rf)
{
	if (!rf->posted)
		return;
	struct rpost *p = rflow_post(ps, rf);
	if (p) {
		HASH_DEL(ps->rposts, p);
		free(p);
	}
	rf->posted = false;
}

static void rflow_unlink(struct pfsyncd *ps, struct rflow *rf, bool remove_entry)
{
	if (remove_entry && rf->first && ps->ct) {
		struct flow f;
		if (rflow_to_flow(ps, rf, &f) == 0)
			ct_remove(ps->ct, &f);
	}
	time_t now = now_s();
	if (rf->first) {
		rf->first->rf = NULL;
		rf->first->orphaned_at = now;
		ps->orphans = true;
	}
	if (rf->second) {
		rf->second->rf = NULL;
		rf->second->orphaned_at = now;
		ps->orphans = true;
	}
	if (rf->dirty)
		pvec_remove(&ps->dirty, rf);
	if (rf->queued)
		pvec_remove(&ps->rq, rf);
	rflow_unpost(ps, rf);
	struct fkey key;
	rflow_key(rf, &key);
	tomb_add(ps, &key);
	ptab_del(&ps->rflows, rf);
	slab_free(&ps->rflow_slab, rf);
}

static void rflow_reindex_post(struct pfsyncd *ps, struct rflow *rf)
{
	rflow_unpost(ps, rf);
	struct fkey k;
	if (rf->second || !rf->first || !post_key(rf->first, &k))
		return;
	struct rpost *p = malloc(sizeof(*p));
	if (!p)
		return; /* not indexed: its second state starts a connection of its own */
	p->key = k;
	p->rf = rf;
	HASH_ADD(hh, ps->rposts, key, sizeof(p->key), p);
	rf->posted = true;
}

static void rstate_free(struct pfsyncd *ps, struct rstate *rs)
{
	if (!rs)
		return;
	ptab_del(&ps->rstates, rs);
	rstate_release(ps, rs);
}

/* Forget a learned connection and its states (the kernel entry is already gone or
 * is left to expire). announce: tell the peers with DEL_C, as any pf node that
 * unlinks a synced state does — only when the connection ran through us, so a
 * backup's copy expiring never removes the live state on the master. */
static void rflow_drop(struct pfsyncd *ps, struct rflow *rf, bool announce)
{
	struct rstate *st[2] = {rf->first, rf->second};
	log_debug("pfsync: forgetting learned %016llx+%016llx%s",
		  st[0] ? (unsigned long long)st[0]->id : 0ULL,
		  st[1] ? (unsigned long long)st[1]->id : 0ULL, announce ? " (DEL_C)" : "");
	for (int i = 0; i < 2; i++) {
		if (!st[i])
			continue;
		if (announce) {
			sidq_push(&ps->delq, &ps->ndel, &ps->capdel, st[i]->creatorid, st[i]->id);
			schedule_flush(ps, false);
		}
	}
	rflow_unlink(ps, rf, false);
	rstate_free(ps, st[0]);
	rstate_free(ps, st[1]);
}

static void rflow_enqueue(struct pfsyncd *ps, struct rflow *rf, bool full)
{
	rf->q_full |= full;
	if (!rf->queued) {
		if (!pvec_push(&ps->rq, rf)) {
			log_warn("pfsync: out of memory: a learned connection waits for the "
				 "next refresh");
			return;
		}
		rf->queued = true;
		size_t msg = full ? pfsync_state_size(ps->cfg.version) : PFSYNC_UPD_C_LEN;
		queued_bytes(ps, (rf->first ? msg : 0) + (rf->second ? msg : 0), FLUSH_DELAY_MS);
	}
	if (full)
		schedule_flush(ps, true);
}

/* Take the kernel's view of a learned connection into its pf states (TCP peer
 * states, timeout index), keeping the creator's ids. */
static void learned_refresh_views(struct rflow *rf, const struct flow *f)
{
	struct pf_view st[2];
	int n = flow_to_pf(f, st);
	struct rstate *rs[2] = {rf->first, rf->second};
	for (int i = 0; i < 2 && i < n; i++) {
		if (!rs[i])
			continue;
		if (rs_ws(&st[i].src) < 0 || rs_ws(&st[i].dst) < 0)
			continue; /* cannot happen: flow_to_pf() makes pf's values */
		rs_set_peers(rs[i], &st[i].src, &st[i].dst);
		rs[i]->timeout = st[i].timeout;
		rs[i]->expire = 0;
	}
}

/* The kernel changed or removed an entry we wrote for a peer: our own writes are
 * filtered out in ct.c, so this is traffic through this node (after a failover) or
 * its expiry here. */
static void learned_kernel_event(struct pfsyncd *ps, struct rflow *rf, enum ct_event ev,
				 const struct flow *f)
{
	char buf[256];
	log_debug("pfsync: kernel %s for learned %s", ev == CT_EV_DESTROY ? "DESTROY" : "UPDATE",
		  ct_flow_str(f, buf, sizeof(buf)));
	if (ev == CT_EV_DESTROY) {
		rflow_drop(ps, rf, rf->active);
		return;
	}
	rf->active = true;
	/* a change of TCP state or timeout class goes out; an event that changes
	 * nothing else (the activity mark turned) is a refresh, once per
	 * refresh_period() */
	struct rstate *r0 = rf->first;
	uint8_t before[3] = {r0 ? r0->src_state : 0, r0 ? r0->dst_state : 0, r0 ? r0->timeout : 0};
	/* an event without the TCP state or status (a mark change) leaves the
	 * states as they are */
	if (!f->partial)
		learned_refresh_views(rf, f);
	time_t now = now_s();
	bool changed = r0 && (before[0] != r0->src_state || before[1] != r0->dst_state ||
			      before[2] != r0->timeout);
	rf->deadline = (uint32_t)(now + f->timeout);
	if (changed || !r0 || now - rf->last_sent >= refresh_period(r0->timeout))
		rflow_enqueue(ps, rf, false);
}

/* A learned connection in the periodic dump: conntrack sends no event for packets
 * that change nothing but the timeout, so a timeout higher than what we wrote or
 * last saw means traffic through this node; refresh it to the peers like a local
 * one. */
static void learned_dump_each(struct pfsyncd *ps, struct rflow *rf, const struct flow *f,
			      time_t now)
{
	rf->seen = ps->seen_phase;
	bool traffic = (int64_t)now + f->timeout > (int64_t)rf->deadline + 1;
	if (traffic)
		rf->active = true;
	if (rf->active && traffic && rf->first &&
	    now - rf->last_sent >= refresh_period(rf->first->timeout)) {
		learned_refresh_views(rf, f);
		rflow_enqueue(ps, rf, false);
	}
	rf->deadline = (uint32_t)(now + f->timeout);
}

static struct rflow *rflow_new(struct pfsyncd *ps, struct rstate *first)
{
	struct rflow *rf = slab_alloc(&ps->rflow_slab);
	if (!rf)
		return NULL;
	rf->seen = ps->seen_phase; /* a dump that runs now may have passed it already */
	rf->first = first;	   /* its key */
	if (ptab_add(&ps->rflows, rf) < 0) {
		slab_free(&ps->rflow_slab, rf);
		return NULL;
	}
	first->rf = rf;
	rflow_reindex_post(ps, rf);
	return rf;
}

/* Attach a learned state to the conntrack entry it belongs to (spec §6.1): states
 * of one connection chain, the post-translation tuple of one being the ORIG
 * candidate of the next. */
static void rstate_attach(struct pfsyncd *ps, struct rstate *rs)
{
	struct flow_tuple orig, post;
	struct fkey k;
	struct rflow *rf;
	rs_tuple(rs, false, &orig);
	rs_tuple(rs, true, &post);
	fkey_tuple(rs_af(rs), rs->proto, &orig, &k);
	if (rs->rf) {
		rflow_mark(ps, rs->rf);
		return;
	}
	rf = ptab_find(&ps->rflows, &k);
	if (rf) {
		struct flow_tuple fo, fp;
		rs_tuple(rf->first, false, &fo);
		rs_tuple(rf->first, true, &fp);
		if (!rf->second && tuple_eq(&fp, &orig)) {
			/* SNAT: IN (no translation) then OUT (the NAT) share the ORIG tuple */
			rf->second = rs;
			rs->rf = rf;
			if (tuple_eq(&post, &orig) && !tuple_eq(&fp, &fo)) {
				rf->second = rf->first; /* the untranslated one goes first */
				rf->first = rs;
			}
		} else if (!rf->second && tuple_eq(&post, &orig) && tuple_eq(&fo, &fp) == false) {
			rf->second = rf->first;
			rf->first = rs;
			rs->rf = rf;
		} else {
			/* a state for the same connection replacing one we knew */
			log_debug("pfsync: %016llx replaces %016llx", (unsigned long long)rs->id,
				  (unsigned long long)rf->first->id);
			rflow_unlink(ps, rf, false);
			rf = rflow_new(ps, rs);
		}
		if (rf) {
			rflow_reindex_post(ps, rf);
			rflow_mark(ps, rf);
		}
		return;
	}
	/* DNAT: this state continues one whose translated tuple is our ORIG (an
	 * index lookup, not a scan: a bulk update brings states by the thousand) */
	struct rpost *p;
	struct rflow *it;
	HASH_FIND(hh, ps->rposts, &k, sizeof(k), p);
	it = p ? p->rf : NULL;
	if (it && !it->second) {
		it->second = rs;
		rs->rf = it;
		rflow_reindex_post(ps, it);
		rflow_mark(ps, it);
		return;
	}
	/* or one we already have continues this one: its ORIG is our translation */
	if (!tuple_eq(&orig, &post)) {
		struct fkey pk;
		fkey_tuple(rs_af(rs), rs->proto, &post, &pk);
		it = ptab_find(&ps->rflows, &pk);
		if (it && !it->second) {
			ptab_del(&ps->rflows, it);
			it->second = it->first;
			it->first = rs;
			rs->rf = it;		   /* its key is now k */
			ptab_add(&ps->rflows, it); /* cannot fail right after a ptab_del() */
			rflow_reindex_post(ps, it);
			rflow_mark(ps, it);
			return;
		}
	}
	rf = rflow_new(ps, rs);
	if (rf)
		rflow_mark(ps, rf);
}

/* Write every changed learned connection into the kernel: at the end of a receive
 * burst (never in the middle of a packet, so the two states of a NATed connection
 * arrive as one entry), in batches of netlink requests. When it returns, every
 * entry that could be written is in the kernel. */
static void commit_dirty(struct pfsyncd *ps)
{
	while (ps->dirty.n) {
		struct rflow *rf = ps->dirty.v[--ps->dirty.n];
		rf->dirty = false;
		struct flow f;
		if (!rf->first || rflow_to_flow(ps, rf, &f) < 0) {
			ps->c.not_mappable++;
			continue;
		}
		rf->deadline = (uint32_t)(now_s() + f.timeout);
		if (ct_batch_add(ps->ct, &f, rf->written) < 0) {
			ps->c.inject_errors++;
			char buf[256];
			log_debug("pfsync: cannot write %s: %s", ct_flow_str(&f, buf, sizeof(buf)),
				  strerror(errno));
			continue;
		}
		rf->written = true;
	}
	pvec_trim(&ps->dirty);
	ps->c.inject_errors += ct_batch_flush(ps->ct);
}

/* A state carrying our creatorid made by this run is an echo of our own: never
 * re-imported. One from before a restart (a lower id) is a connection the peer
 * kept for us while we were down: taken back like any peer's state. */
static bool own_echo(const struct pfsyncd *ps, uint32_t creatorid, uint64_t id)
{
	return creatorid == ps->creatorid && id > ps->id_base;
}

static void learned_update(struct pfsyncd *ps, const struct pf_view *v, bool insert)
{
	if (own_echo(ps, v->creatorid, v->id)) {
		ps->c.own_creator++; /* our own states reflected back: never re-import */
		return;
	}
	if (!v->creatorid) {
		ps->c.badval++;
		return;
	}
	struct sid k = {.id = v->id, .creatorid = v->creatorid};
	struct rstate *rs;
	rs = ptab_find(&ps->rstates, &k);
	/* a peer's state for a connection our own kernel tracks as ours: the same key
	 * twice, which pf refuses too (pf_state_insert fails); ours stays */
	struct flow_tuple orig, post;
	struct fkey fk;
	struct lflow *lf;
	pf_orig_candidate(v, &orig, &post);
	fkey_tuple(v->af, v->proto, &orig, &fk);
	lf = ptab_find(&ps->lflows, &fk);
	if (lf) {
		ps->c.collisions++;
		return;
	}
	bool fresh = !rs;
	if (fresh) {
		rs = rstate_alloc(ps, v->af);
		if (!rs)
			return;
		rs->id = k.id;
		rs->creatorid = k.creatorid;
	} else if (rs_af(rs) != v->af) {
		/* its packed addresses have the size of its family; pf never changes
		 * the keys of a state it has (an update only moves peers and timers) */
		ps->c.badval++;
		return;
	} else if (!insert && v->proto == IPPROTO_TCP &&
		   (rs->src_state > v->src.state || rs->dst_state > v->dst.state)) {
		/* FreeBSD's stale rule: states only move forward */
		ps->c.stale++;
		return;
	}
	log_debug("pfsync: %s %08x/%016llx", insert ? "INS" : "UPD", v->creatorid,
		  (unsigned long long)v->id);
	if (!fresh && rs->rf && !rstate_same_keys(rs, v)) {
		/* pf never does this; the connection we built is not this one any more
		 * (and its key in ps->rflows, made from its first state, must not change
		 * under the table): gone, and this state attached again below */
		log_debug("pfsync: %08x/%016llx changed its keys", v->creatorid,
			  (unsigned long long)v->id);
		rflow_unlink(ps, rs->rf, true);
	}
	if (!rstate_store(ps, rs, v)) {
		if (fresh)
			rstate_release(ps, rs);
		return;
	}
	if (fresh && ptab_add(&ps->rstates, rs) < 0) {
		rstate_release(ps, rs);
		return;
	}
	if (!v->expire)
		rs->expire = pf_default_timeout(v->timeout); /* UPD refreshes fully */
	rstate_attach(ps, rs);
	if (rs->rf)
		rs->rf->active = false; /* the peer carries it now */
}

static void learned_delete(struct pfsyncd *ps, uint32_t creatorid, uint64_t id)
{
	struct sid k = {.id = id, .creatorid = creatorid};
	struct rstate *rs;
	rs = ptab_find(&ps->rstates, &k);
	log_debug("pfsync: DEL_C %08x/%016llx: %s", creatorid, (unsigned long long)id,
		  !rs	   ? "unknown"
		  : rs->rf ? "connection removed"
			   : "orphan forgotten");
	if (!rs) {
		if (creatorid != ps->creatorid)
			ps->c.badstate++;
		return;
	}
	/* either state gone: the NAT is gone, and the connection with it; the other
	 * state stays known (orphaned) until its own DEL_C, or the next sweep */
	if (rs->rf)
		rflow_unlink(ps, rs->rf, true);
	rstate_free(ps, rs);
}

static void learned_clear(struct pfsyncd *ps, uint32_t creatorid)
{
	struct rstate *rs;
	struct ptab_iter it = {0};
	while ((rs = ptab_next(&ps->rstates, &it))) {
		if (rs->creatorid != creatorid)
			continue;
		if (rs->rf)
			rflow_unlink(ps, rs->rf, true);
		ptab_del(&ps->rstates, rs);
		rstate_release(ps, rs);
	}
}

/* ---- CARP coupling -------------------------------------------------------------------- */

static void set_demoted(struct pfsyncd *ps, bool on)
{
	if (ps->demoted == on)
		return;
	ps->demoted = on;
	carpd_adjust_demotion(ps->cd, on ? SYNC_DEMOTION : -SYNC_DEMOTION);
}

/* While a bulk update comes in, the kernel need not tell us of the connections
 * we write: the events of new connections stop from its BUS START to its end (or
 * until it stalls), and a table read then finds what began meanwhile. The
 * receiver of a 100 000-state update spent a quarter of its time having the
 * kernel build events that our filter then dropped (ct_set_new_events()). */
static void new_events(struct pfsyncd *ps, bool on)
{
	if (ps->ct == NULL || on != ps->new_events_off)
		return;
	if (ct_set_new_events(ps->ct, on) < 0) {
		log_debug("pfsync: conntrack new-connection events %s: %s", on ? "on" : "off",
			  strerror(errno));
		if (!on)
			return; /* they stay on: nothing to catch up */
	}
	ps->new_events_off = !on;
	if (on && ps->dumped) {
		/* before the first read, bulk_done() starts it */
		struct timeval now = {0, 0};
		evtimer_del(ps->refresh_ev);
		evtimer_add(ps->refresh_ev, &now);
	}
}

static void bulk_done(struct pfsyncd *ps, const char *why)
{
	evtimer_del(ps->bulk_ev);
	ps->bulk = BULK_DONE;
	set_demoted(ps, false);
	new_events(ps, true);
	log_info("pfsync: %s", why);
	if (!ps->dumped) {
		/* Only now read what the kernel already holds: connections the peers
		 * told us about in the bulk update keep their creator's ids (after a
		 * restart, the ones we created before it too); the rest are ours. */
		ps->dumped = true;
		struct timeval now = {0, 0};
		evtimer_del(ps->refresh_ev);
		evtimer_add(ps->refresh_ev, &now);
	}
}

static void send_bulk_request(struct pfsyncd *ps)
{
	sidq_push(&ps->ureqq, &ps->nureq, &ps->capureq, 0, 0);
	ps->bulk_sent_at = now_s();
	schedule_flush(ps, true);
	struct timeval tv = {BULK_RETRY_S, 0};
	evtimer_add(ps->bulk_ev, &tv);
}

static void bulk_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pfsyncd *ps = arg;
	if (ps->bulk != BULK_PENDING)
		return;
	new_events(ps, true); /* the update stalled: back to events until it resumes */
	if (++ps->bulk_tries >= BULK_MAX_TRIES) {
		log_warn("pfsync: failed to receive bulk update after %d tries; lifting the "
			 "demotion anyway",
			 ps->bulk_tries);
		bulk_done(ps, "bulk update timed out");
		return;
	}
	send_bulk_request(ps);
}

static void flush_cb(evutil_socket_t fd, short what, void *arg);

void pfsyncd_flush(struct carpd *cd)
{
	struct pfsyncd *ps = cd->pfsync;
	if (!ps)
		return;
	evtimer_del(ps->flush_ev);
	flush_cb(-1, 0, ps);
}

int pfsyncd_request_bulk(struct carpd *cd)
{
	struct pfsyncd *ps = cd->pfsync;
	if (!ps)
		return -1;
	ps->bulk = BULK_PENDING;
	ps->bulk_tries = 0;
	ps->bulk_started = false;
	ps->bulk_reasked = false;
	set_demoted(ps, true);
	send_bulk_request(ps);
	log_info("pfsync: bulk update requested (CARP demoted by %d until it completes)",
		 SYNC_DEMOTION);
	return 0;
}

/* Answer UPD_REQ(0,0): BUS START, a full update of every state we hold (ours and
 * learned, as pf does), BUS END. */
static void answer_bulk(struct pfsyncd *ps)
{
	ps->bulk_received_at = now_s();
	ps->bulk_received_ms = now_ms();
	if (ps->bw.ring == NULL)
		ps->bw.ring = malloc(BULK_RING * sizeof(*ps->bw.ring));
	struct bw_mark *ring = ps->bw.ring;
	ps->bw = (struct bulk_window){.on = ring != NULL, .ring = ring};
	ps->bus_start = true;
	struct lflow *lf;
	struct ptab_iter it = {0};
	while ((lf = ptab_next(&ps->lflows, &it))) {
		lf->q_full = true;
		lflow_enqueue(ps, lf, false);
	}
	struct rflow *rf;
	it = (struct ptab_iter){0};
	while ((rf = ptab_next(&ps->rflows, &it)))
		rflow_enqueue(ps, rf, true);
	ps->bus_end = true;
	schedule_flush(ps, true);
}

/* ---- defer mode (pfsync.md §4.5) ------------------------------------------------------ */

static int64_t ts_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

static void held_release(struct pfsyncd *ps, size_t i)
{
	defer_release(ps->defer, ps->held[i].packet_id);
	ps->held[i] = ps->held[--ps->nheld];
}

static void defer_timer_arm(struct pfsyncd *ps)
{
	evtimer_del(ps->defer_ev);
	if (!ps->nheld)
		return;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	int64_t first = INT64_MAX;
	for (size_t i = 0; i < ps->nheld; i++)
		if (ts_ns(&ps->held[i].deadline) < first)
			first = ts_ns(&ps->held[i].deadline);
	int64_t wait = first - ts_ns(&now);
	if (wait < 0)
		wait = 0;
	struct timeval tv = {(time_t)(wait / 1000000000),
			     (suseconds_t)(wait % 1000000000 / 1000) + 1};
	evtimer_add(ps->defer_ev, &tv);
}

static void defer_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pfsyncd *ps = arg;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	for (size_t i = 0; i < ps->nheld;) {
		if (ts_ns(&ps->held[i].deadline) <= ts_ns(&now)) {
			ps->c.defer_timeouts++; /* no INS_ACK in time: pf sends it anyway */
			held_release(ps, i);
		} else {
			i++;
		}
	}
	defer_timer_arm(ps);
}

/* The packet that creates a connection, held in the kernel: announce the
 * connection now, asking for INS_ACK, and let the packet go when it comes. */
static void defer_packet(void *arg, uint32_t packet_id, const struct flow *f)
{
	struct pfsyncd *ps = arg;
	if (find_learned(ps, f)) {
		defer_release(ps->defer, packet_id);
		return;
	}
	struct lflow *lf = local_new(ps, f);
	if (!lf || !lf->q_ins) {
		/* not replicable, or its INS already went: nothing to wait for */
		defer_release(ps->defer, packet_id);
		return;
	}
	if (ps->nheld == DEFER_MAX) {
		ps->c.defer_timeouts++;
		held_release(ps, 0);
	}
	lf->ack = true;
	struct held *h = &ps->held[ps->nheld++];
	h->packet_id = packet_id;
	h->id = lf->id;
	clock_gettime(CLOCK_MONOTONIC, &h->deadline);
	h->deadline.tv_nsec += DEFER_MS * 1000000L;
	if (h->deadline.tv_nsec >= 1000000000L) {
		h->deadline.tv_sec++;
		h->deadline.tv_nsec -= 1000000000L;
	}
	ps->c.deferred++;
	schedule_flush(ps, true); /* the INS goes out at once */
	defer_timer_arm(ps);
}

/* A receiver's progress through our bulk update (BULK_WINDOW). */
static void bulk_window_ack(struct pfsyncd *ps, const struct pfsync_ref *r, bool count_miss)
{
	struct bulk_window *bw = &ps->bw;
	for (size_t i = 0; i < bw->n; i++) {
		struct bw_mark *m = &bw->ring[(bw->head + BULK_RING - bw->n + i) % BULK_RING];
		if (m->s.id != r->id || m->s.creatorid != r->creatorid)
			continue;
		bw->acked_bytes = m->sent;
		bw->n -= i + 1; /* it and the older ones */
		bw->acked = true;
		bw->last_ack_ms = now_ms();
		ps->c.bulk_acked++;
		if (ps->pacing) {
			/* the window may have been full: send on now */
			evtimer_del(ps->flush_ev);
			ps->pacing = false;
			schedule_flush(ps, true);
			ps->pacing = true; /* flush_cb keeps its pace */
		}
		return;
	}
	/* not the last state of a packet in flight: a receiver that acknowledges
	 * otherwise than carpd does, or a fault of ours (a mark that was not the
	 * packet's last state made every acknowledgement miss) */
	if (count_miss)
		ps->c.bulk_acks_unmatched++;
}

static void in_ins_ack(struct pfsyncd *ps, const struct pfsync_ref *r)
{
	bool any = false;
	if (r->creatorid == ps->creatorid && ps->defer) {
		for (size_t i = 0; i < ps->nheld;) {
			if (ps->held[i].id == r->id) {
				held_release(ps, i);
				any = true;
			} else {
				i++;
			}
		}
		if (any) {
			ps->c.defer_acked++;
			defer_timer_arm(ps);
		}
	}
	if (ps->bw.on)
		bulk_window_ack(ps, r, !any); /* a defer acknowledgement may match nothing */
}

/* ---- the wire ------------------------------------------------------------------------- */

static void flush_cb(evutil_socket_t fd, short what, void *arg);
static int handle_packet(struct pfsyncd *ps, const uint8_t *p, size_t len);

/* ---- pf_view (proto/flow) <-> pfsync_state (proto/pfsync) -------------------------------------
 */

static void view_to_state(const struct pf_view *v, struct pfsync_state *s)
{
	size_t alen = af_alen(v->af);
	pfsync_state_defaults(s);
	s->id = v->id;
	s->creatorid = v->creatorid;
	_Static_assert(sizeof(s->ifname) > sizeof(v->ifname), "room for the NUL");
	memset(s->ifname, 0, sizeof(s->ifname)); /* over the default "all" */
	memcpy(s->ifname, v->ifname, strnlen(v->ifname, sizeof(v->ifname)));
	for (int k = 0; k < 2; k++) {
		memcpy(s->key[k].addr[0], v->key[k].addr[0].bytes, alen);
		memcpy(s->key[k].addr[1], v->key[k].addr[1].bytes, alen);
		s->key[k].port[0] = v->key[k].port[0];
		s->key[k].port[1] = v->key[k].port[1];
		s->key[k].af = v->af == AF_INET6 ? PFSYNC_AF_INET6 : PFSYNC_AF_INET;
		s->key[k].proto = v->proto;
	}
	s->src.state = v->src.state;
	s->src.wscale = v->src.wscale;
	s->dst.state = v->dst.state;
	s->dst.wscale = v->dst.wscale;
	s->direction = v->direction;
	s->timeout = v->timeout;
	s->expire = v->expire;
	s->state_flags = v->state_flags;
}

static int state_to_view(const struct pfsync_state *s, struct pf_view *v)
{
	memset(v, 0, sizeof(*v));
	uint8_t af = s->key[PFSYNC_SK_WIRE].af;
	if (af != s->key[PFSYNC_SK_STACK].af || s->key[0].proto != s->key[1].proto)
		return -1; /* af-to (NAT64): nothing conntrack can hold */
	if (af == PFSYNC_AF_INET)
		v->af = AF_INET;
	else if (af == PFSYNC_AF_INET6)
		v->af = AF_INET6;
	else
		return -1;
	size_t alen = af_alen(v->af);
	v->id = s->id;
	v->creatorid = s->creatorid;
	v->proto = s->key[0].proto;
	v->direction = s->direction;
	memcpy(v->ifname, s->ifname, sizeof(v->ifname) - 1);
	v->ifname[sizeof(v->ifname) - 1] = 0;
	for (int k = 0; k < 2; k++) {
		memcpy(v->key[k].addr[0].bytes, s->key[k].addr[0], alen);
		memcpy(v->key[k].addr[1].bytes, s->key[k].addr[1], alen);
		v->key[k].port[0] = s->key[k].port[0];
		v->key[k].port[1] = s->key[k].port[1];
	}
	v->src.state = s->src.state;
	v->src.wscale = s->src.wscale;
	v->dst.state = s->dst.state;
	v->dst.wscale = s->dst.wscale;
	v->timeout = s->timeout;
	v->expire = s->expire;
	v->state_flags = s->state_flags;
	return 0;
}

static bool wire_add_sid(struct pfsync_writer *w, uint8_t action, const struct sid *s)
{
	return pfsync_writer_add_ref(w, action, s->id, s->creatorid) == PFSYNC_OK;
}

static bool wire_add_bus(struct pfsyncd *ps, struct pfsync_writer *w, uint8_t status)
{
	struct pfsync_bus b = {.creatorid = ps->creatorid, .status = status};
	if (status == PFSYNC_BUS_END)
		b.endtime = (uint32_t)(now_s() - ps->bulk_received_at);
	return pfsync_writer_add_bus(w, &b) == PFSYNC_OK;
}

enum wire_kind { WIRE_INS, WIRE_UPD, WIRE_UPD_C };

/* One pf state on the wire, counted: INS or full UPD in the configured format, or
 * UPD_C. false when it does not fit in this packet. */
static bool wire_add_view(struct pfsyncd *ps, struct pfsync_writer *w, const struct pf_view *v,
			  enum wire_kind kind, uint16_t extra_flags)
{
	struct pfsync_state s;
	enum pfsync_err err;
	view_to_state(v, &s);
	s.state_flags |= extra_flags;
	if (kind == WIRE_UPD_C) {
		struct pfsync_upd_c u = {.id = s.id,
					 .src = s.src,
					 .dst = s.dst,
					 .creatorid = s.creatorid,
					 .timeout = s.timeout};
		err = pfsync_writer_add_upd_c(w, &u);
		if (err == PFSYNC_OK)
			ps->c.updc_out++;
	} else {
		uint8_t act = kind == WIRE_INS ? pfsync_action_ins(ps->cfg.version)
					       : pfsync_action_upd(ps->cfg.version);
		err = pfsync_writer_add_state(w, act, &s);
		if (err == PFSYNC_OK)
			kind == WIRE_INS ? ps->c.ins_out++ : ps->c.upd_out++;
	}
	return err == PFSYNC_OK;
}

/* One queued local connection: INS when new, full UPD when asked for (UPD_REQ or
 * bulk), UPD_C otherwise. Both states of a connection go into one packet or, when
 * they do not fit together, into the next one: a receiver that commits per packet
 * never sees half a NAT. */
static bool wire_add_lflow(struct pfsyncd *ps, struct pfsync_writer *w, struct lflow *lf)
{
	struct pfsync_writer mark = *w;
	struct pfsync_counters counted = ps->c;
	enum wire_kind kind = lf->q_ins ? WIRE_INS : lf->q_full ? WIRE_UPD : WIRE_UPD_C;
	uint16_t flags = lf->q_ins && lf->ack ? PFSYNC_PFSTATE_ACK : 0;
	struct pf_view st[2];
	int n = lflow_views(ps, lf, st);
	for (int i = 0; i < n; i++)
		if (!wire_add_view(ps, w, &st[i], kind, flags)) {
			/* the first state went in and comes out again: not sent */
			pfsync_writer_rollback(w, &mark);
			ps->c = counted;
			return false;
		}
	if (n > 0) {
		ps->bw.last = (struct sid){.id = st[n - 1].id, .creatorid = st[n - 1].creatorid};
		ps->bw.have_last = true;
	}
	return true;
}

/* A learned connection we announce: a full UPD when asked, UPD_C otherwise, always
 * under its creator's ids; one packet for both states, as above. */
static bool wire_add_rflow(struct pfsyncd *ps, struct pfsync_writer *w, struct rflow *rf)
{
	struct pfsync_writer mark = *w;
	struct pfsync_counters counted = ps->c;
	struct rstate *rs[2] = {rf->first, rf->second};
	struct sid last = {0};
	bool any = false;
	for (int i = 0; i < 2; i++) {
		if (!rs[i])
			continue;
		struct pf_view v;
		rstate_view(ps, rs[i], &v);
		if (rf->q_full)
			v.expire = 0; /* the receiver refreshes it to its full timeout */
		if (!wire_add_view(ps, w, &v, rf->q_full ? WIRE_UPD : WIRE_UPD_C, 0)) {
			pfsync_writer_rollback(w, &mark);
			ps->c = counted;
			return false;
		}
		last = (struct sid){.id = v.id, .creatorid = v.creatorid};
		any = true;
	}
	/* only once both went in: a first state whose partner did not fit goes
	 * again in the next packet, and marking this packet with it made every
	 * acknowledgement of a bulk update of learned states miss (the sender then
	 * fell back to the slow pace: 3.3 s instead of 1 s for 100 000) */
	if (any) {
		ps->bw.last = last;
		ps->bw.have_last = true;
	}
	return true;
}

static void count_err(struct pfsyncd *ps, enum pfsync_err err)
{
	switch (err) {
	case PFSYNC_ERR_BADVER:
	case PFSYNC_ERR_BADFMT:
		ps->c.badver++;
		break;
	case PFSYNC_ERR_BADACT:
		ps->c.badact++;
		break;
	case PFSYNC_ERR_BADVAL:
		ps->c.badval++;
		break;
	default:
		ps->c.badlen++;
		break;
	}
}

/* A full state from a peer (INS or UPD of any version). */
/* A big bulk update takes longer than the fail timer (FreeBSD scales it with the
 * state limit): while its states keep coming, it has not failed. */
static void bulk_progress(struct pfsyncd *ps)
{
	if (ps->bulk != BULK_PENDING || !ps->bulk_started)
		return;
	time_t now = now_s();
	if (now == ps->bulk_rearmed_at)
		return;
	ps->bulk_rearmed_at = now;
	struct timeval tv = {BULK_RETRY_S + 4, 0};
	evtimer_del(ps->bulk_ev);
	evtimer_add(ps->bulk_ev, &tv);
}

static void in_state(struct pfsyncd *ps, const struct pfsync_state *s, bool insert)
{
	bulk_progress(ps);
	struct pf_view v;
	if (pfsync_state_check(s, insert) != PFSYNC_OK) {
		ps->c.badval++;
		return;
	}
	if (state_to_view(s, &v) < 0) {
		ps->c.not_mappable++;
		return;
	}
	learned_update(ps, &v, insert);
	if (ps->bulk == BULK_PENDING && ps->bulk_started) {
		ps->bulk_rx_last = (struct sid){.id = s->id, .creatorid = s->creatorid};
		ps->bulk_rx_have_last = true;
	}
	/* defer mode on the sender: it holds the packet until we acknowledge */
	if (insert && (s->state_flags & PFSYNC_PFSTATE_ACK))
		sidq_push(&ps->ackq, &ps->nack, &ps->capack, s->creatorid, s->id);
}

static void in_upd_c(struct pfsyncd *ps, const struct pfsync_upd_c *u)
{
	if (own_echo(ps, u->creatorid, u->id)) {
		ps->c.own_creator++;
		return;
	}
	struct sid k = {.id = u->id, .creatorid = u->creatorid};
	struct rstate *rs;
	rs = ptab_find(&ps->rstates, &k);
	if (!rs) {
		/* unknown state: ask for all of it */
		sidq_push(&ps->ureqq, &ps->nureq, &ps->capureq, u->creatorid, u->id);
		return;
	}
	struct pf_view v;
	rstate_view(ps, rs, &v);
	v.src.state = u->src.state;
	v.src.wscale = u->src.wscale;
	v.dst.state = u->dst.state;
	v.dst.wscale = u->dst.wscale;
	v.timeout = u->timeout;
	v.expire = 0; /* UPD_C refreshes to the full timeout of its index */
	learned_update(ps, &v, false);
}

static void in_ureq(struct pfsyncd *ps, const struct pfsync_ref *r)
{
	if (r->id == 0 && r->creatorid == 0) {
		if (ps->bulk == BULK_DONE && ps->c.dumps == 0) {
			/* our first read of the kernel's table is under way (it follows our
			 * own bulk update): the answer waits for it, or it would lack every
			 * connection of that table. Not while our own bulk update is
			 * pending: two nodes started together would wait for each other. */
			if (!ps->bulk_answer_pending)
				log_info("pfsync: bulk update requested by a peer: answering once "
					 "the kernel's table is read");
			ps->bulk_answer_pending = true;
			return;
		}
		log_info("pfsync: bulk update requested by a peer: sending %u connections "
			 "(%u local, %u learned)",
			 (unsigned)ps->lflows.n + (unsigned)ps->rflows.n, (unsigned)ps->lflows.n,
			 (unsigned)ps->rflows.n);
		answer_bulk(ps);
		/* Two nodes started together: our request went out before the peer
		 * listened, and the retry is BULK_RETRY_S away, all of it demoted. The
		 * peer's request shows it is up now: ask once more at once (once per
		 * bulk update, or two pending peers would ask each other forever). */
		if (ps->bulk == BULK_PENDING && !ps->bulk_started && !ps->bulk_reasked) {
			ps->bulk_reasked = true;
			log_info("pfsync: the peer is up (it asked for a bulk update): asking "
				 "for ours again now");
			send_bulk_request(ps);
		}
		return;
	}
	if (r->creatorid == ps->creatorid) {
		struct lflow *l;
		uint64_t first = r->id & ~(uint64_t)1;
		l = ptab_find(&ps->lids, &first);
		if (l && r->id - first < l->nstates) {
			l->q_full = true;
			lflow_enqueue(ps, l, false);
			schedule_flush(ps, true);
			return;
		}
	}
	/* a state we learned: any pf node answers for every state it holds */
	struct sid k = {.id = r->id, .creatorid = r->creatorid};
	struct rstate *rs;
	rs = ptab_find(&ps->rstates, &k);
	if (rs && rs->rf) {
		rflow_enqueue(ps, rs->rf, true);
		return;
	}
	ps->c.badstate++;
}

static void in_bus(struct pfsyncd *ps, const struct pfsync_bus *b)
{
	if (ps->bulk != BULK_PENDING)
		return; /* FreeBSD ignores BUS unless its own request is outstanding */
	if (b->status == PFSYNC_BUS_START) {
		struct timeval tv = {BULK_RETRY_S + 4, 0};
		evtimer_del(ps->bulk_ev);
		evtimer_add(ps->bulk_ev, &tv);
		ps->bulk_started = true;
		ps->bulk_rearmed_at = now_s();
		log_info("pfsync: bulk update: receiving (BUS START)");
		new_events(ps, false);
	} else if (b->status == PFSYNC_BUS_END) {
		/* the demotion lifts only once every state is in the kernel */
		commit_dirty(ps);
		char why[96];
		snprintf(why, sizeof(why), "bulk update done: %u states learned",
			 (unsigned)ps->rflows.n);
		bulk_done(ps, why);
	}
}

static int handle_packet(struct pfsyncd *ps, const uint8_t *p, size_t len)
{
	struct pfsync_iter it;
	uint8_t action;
	uint16_t count;
	const uint8_t *msgs;
	size_t msglen;
	enum pfsync_err err = pfsync_iter_init(&it, p, len, NULL);
	if (err != PFSYNC_OK) {
		count_err(ps, err);
		return -1;
	}
	int rc;
	while ((rc = pfsync_iter_next(&it, &action, &count, &msgs, &msglen)) > 0) {
		for (uint16_t i = 0; i < count; i++) {
			const uint8_t *m = msgs + (size_t)i * msglen;
			switch (action) {
			case PFSYNC_ACT_INS_1301:
			case PFSYNC_ACT_INS_1400:
			case PFSYNC_ACT_INS_1500:
			case PFSYNC_ACT_UPD_1301:
			case PFSYNC_ACT_UPD_1400:
			case PFSYNC_ACT_UPD_1500: {
				struct pfsync_state s;
				bool insert = action == PFSYNC_ACT_INS_1301 ||
					      action == PFSYNC_ACT_INS_1400 ||
					      action == PFSYNC_ACT_INS_1500;
				if (pfsync_state_decode(m, msglen, pfsync_action_version(action),
							&s) != PFSYNC_OK) {
					ps->c.badlen++;
					break;
				}
				insert ? ps->c.ins_in++ : ps->c.upd_in++;
				in_state(ps, &s, insert);
				break;
			}
			case PFSYNC_ACT_UPD_C: {
				struct pfsync_upd_c u;
				if (pfsync_upd_c_decode(m, msglen, &u) != PFSYNC_OK ||
				    pfsync_upd_c_check(&u) != PFSYNC_OK) {
					ps->c.badval++;
					break;
				}
				ps->c.upd_in++;
				in_upd_c(ps, &u);
				break;
			}
			case PFSYNC_ACT_UPD_REQ: {
				struct pfsync_ref r;
				if (pfsync_ref_decode(m, msglen, &r) == PFSYNC_OK) {
					ps->c.ureq_in++;
					in_ureq(ps, &r);
				}
				break;
			}
			case PFSYNC_ACT_DEL_C: {
				struct pfsync_ref r;
				if (pfsync_ref_decode(m, msglen, &r) == PFSYNC_OK) {
					ps->c.del_in++;
					learned_delete(ps, r.creatorid, r.id);
				}
				break;
			}
			case PFSYNC_ACT_INS_ACK: {
				struct pfsync_ref r;
				if (pfsync_ref_decode(m, msglen, &r) == PFSYNC_OK) {
					ps->c.ack_in++;
					in_ins_ack(ps, &r);
				}
				break;
			}
			case PFSYNC_ACT_BUS: {
				struct pfsync_bus b;
				if (pfsync_bus_decode(m, msglen, &b) == PFSYNC_OK) {
					ps->c.bus_in++;
					in_bus(ps, &b);
				}
				break;
			}
			case PFSYNC_ACT_CLR: {
				struct pfsync_clr c;
				if (pfsync_clr_decode(m, msglen, &c) == PFSYNC_OK) {
					ps->c.clr_in++;
					learned_clear(ps, c.creatorid);
				}
				break;
			}
			default: /* TDB and EOF: nothing to do */
				break;
			}
		}
	}
	if (rc < 0) {
		count_err(ps, (enum pfsync_err) - rc);
		return 0; /* what came before the bad part was applied */
	}
	return 0;
}

/* one datagram of the pfsync socket: for IPv4 with its IP header (a raw socket) */
static void rx_one(struct pfsyncd *ps, const uint8_t *buf, size_t len,
		   const struct sockaddr_storage *from)
{
	ps->c.ipackets++;
	const uint8_t *p = buf;
	int ttl;
	const void *src;
	if (ps->family == AF_INET) {
		if (len < 20) {
			ps->c.badlen++;
			return;
		}
		size_t ihl = (size_t)(buf[0] & 0x0f) * 4;
		size_t total = (size_t)buf[2] << 8 | buf[3];
		if (ihl < 20 || ihl > len) {
			ps->c.badlen++;
			return;
		}
		if (total < len && total >= ihl)
			len = total;
		ttl = buf[8];
		src = buf + 12;
		p += ihl;
		len -= ihl;
	} else {
		ttl = PFSYNC_TTL; /* IPV6_UNICAST/MULTICAST hop limit checked by cmsg below */
		src = &((const struct sockaddr_in6 *)from)->sin6_addr;
	}
	/* the only anti-spoofing pfsync has: the sender is on the link */
	if (ttl != PFSYNC_TTL) {
		ps->c.badttl++;
		return;
	}
	if (handle_packet(ps, p, len) < 0)
		return;
	if (ps->bulk == BULK_PENDING && ps->bulk_started)
		ps->bulk_rx_unacked += len;
	ps->peer_heard = true;
	clock_gettime(CLOCK_MONOTONIC, &ps->peer_last_heard);
	memcpy(ps->peer_addr, src, ps->family == AF_INET ? 4 : 16);
}

static void rx_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pfsyncd *ps = arg;
	/* RX_SLOTS datagrams a system call (recvmmsg): one recvfrom() per packet,
	 * and one more to find the queue empty, were most of a receiver's system
	 * calls when connections come by the thousand a second */
	for (int read = 0; read < RX_BATCH;) {
		struct sockaddr_storage from[RX_SLOTS];
		struct iovec iov[RX_SLOTS];
		struct mmsghdr mm[RX_SLOTS];
		for (int i = 0; i < RX_SLOTS; i++) {
			iov[i] = (struct iovec){.iov_base = ps->rxbuf + (size_t)i * RX_SLOT,
						.iov_len = RX_SLOT};
			mm[i] = (struct mmsghdr){.msg_hdr = {.msg_name = &from[i],
							     .msg_namelen = sizeof(from[i]),
							     .msg_iov = &iov[i],
							     .msg_iovlen = 1}};
		}
		int n = recvmmsg(fd, mm, RX_SLOTS, MSG_DONTWAIT, NULL);
		if (n < 0 && errno == EINTR) {
			read++;
			continue;
		}
		if (n <= 0)
			break;
		for (int i = 0; i < n; i++)
			rx_one(ps, iov[i].iov_base, mm[i].msg_len, &from[i]);
		if (n < RX_SLOTS)
			break; /* the queue was empty */
		read += n;
	}
	/* the burst's learned connections, in batches */
	commit_dirty(ps);
	/* written: tell the sender of a bulk update how far we are (BULK_WINDOW) */
	if (ps->bulk_rx_have_last && ps->bulk_rx_unacked >= BULK_ACK_BYTES &&
	    ps->bulk == BULK_PENDING) {
		/* only the newest progress counts: one still queued (the loop ran us
		 * again before the flush) is overwritten, else the sender got both in
		 * one packet, newest first, and matched the older to nothing */
		struct sid *q = ps->bulk_ack_at < ps->nack ? &ps->ackq[ps->bulk_ack_at] : NULL;
		if (q && q->id == ps->bulk_ack_sent.id &&
		    q->creatorid == ps->bulk_ack_sent.creatorid) {
			*q = ps->bulk_rx_last;
		} else {
			ps->bulk_ack_at = ps->nack;
			sidq_push(&ps->ackq, &ps->nack, &ps->capack, ps->bulk_rx_last.creatorid,
				  ps->bulk_rx_last.id);
		}
		ps->bulk_ack_sent = ps->bulk_rx_last;
		ps->bulk_rx_unacked = 0;
		ps->bulk_rx_have_last = false;
		ps->c.bulk_acks_sent++;
	}
	if (ps->nack || ps->nureq || ps->bus_start)
		schedule_flush(ps, true);
}

/* The packets of one flush go out TX_SLOTS at a time (sendmmsg): a system call
 * per packet was a third of a sender's when connections come by the thousand a
 * second. One event loop: the slots are not shared. */
#define TX_SLOTS 8
static uint8_t tx_buf[TX_SLOTS][PFSYNC_MTU_MAX];
static size_t tx_len[TX_SLOTS];
static unsigned tx_n;

/* send the packets built so far */
static void tx_flush(struct pfsyncd *ps)
{
	union {
		struct sockaddr_in v4;
		struct sockaddr_in6 v6;
	} to;
	socklen_t tolen;
	memset(&to, 0, sizeof(to));
	if (ps->family == AF_INET) {
		to.v4.sin_family = AF_INET;
		to.v4.sin_addr.s_addr = ps->cfg.has_syncpeer ? ps->cfg.syncpeer.v4.s_addr
							     : htonl(0xe00000f0); /* 224.0.0.240 */
		tolen = sizeof(to.v4);
	} else {
		to.v6.sin6_family = AF_INET6;
		to.v6.sin6_scope_id = (uint32_t)ps->ifindex;
		if (ps->cfg.has_syncpeer)
			to.v6.sin6_addr = ps->cfg.syncpeer.v6;
		else
			inet_pton(AF_INET6, "ff12::f0", &to.v6.sin6_addr);
		tolen = sizeof(to.v6);
	}
	struct iovec iov[TX_SLOTS];
	struct mmsghdr mm[TX_SLOTS];
	for (unsigned i = 0; i < tx_n; i++) {
		iov[i] = (struct iovec){.iov_base = tx_buf[i], .iov_len = tx_len[i]};
		mm[i] = (struct mmsghdr){.msg_hdr = {.msg_name = &to,
						     .msg_namelen = tolen,
						     .msg_iov = &iov[i],
						     .msg_iovlen = 1}};
	}
	/* sendmmsg stops at the first packet that fails: counted (as before, a
	 * packet is not sent twice), and the rest tried */
	for (unsigned at = 0; at < tx_n;) {
		int n = sendmmsg(ps->fd, mm + at, tx_n - at, 0);
		if (n <= 0) {
			ps->c.oerrors++;
			at++;
			continue;
		}
		for (int i = 0; i < n; i++)
			if (mm[at + (unsigned)i].msg_len == tx_len[at + (unsigned)i])
				ps->c.opackets++;
			else
				ps->c.oerrors++;
		at += (unsigned)n;
	}
	tx_n = 0;
}

/* The size of the packets we send: the sync interface's MTU, as the event loop's
 * netlink link cache holds it (no system call per flush, and an MTU an operator
 * lowers is seen at once: a second-old reading sent jumbo packets, refused
 * (EMSGSIZE), for up to a second after the MTU went down, which lost most of a
 * bulk update; e2e/test_pfsync_bulk failed one run in two). FreeBSD sizes its
 * packets by pfsync0's MTU (1500 unless set, at most the syncdev's); a
 * jumbo-frame sync link carries six times fewer packets for a bulk update, and a
 * link below 1500 (a tunnel) no longer refuses every full packet (we send with DF
 * set). Without the cache's entry, an ioctl, at most once a second. */
static size_t sync_mtu(struct pfsyncd *ps)
{
	size_t mtu = 0;
	struct rtnl_link *link =
		ps->cd->link_cache ? rtnl_link_get(ps->cd->link_cache, ps->ifindex) : NULL;
	if (link) {
		mtu = rtnl_link_get_mtu(link);
		rtnl_link_put(link);
	}
	uint64_t now = now_ms();
	if (mtu == 0 && ps->mtu && now - ps->mtu_read_ms < 1000)
		return ps->mtu;
	if (mtu == 0) {
		ps->mtu_read_ms = now;
		struct ifreq ifr = {0};
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ps->cfg.ifname);
		mtu = 1500;
		if (ioctl(ps->fd, SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu > 0)
			mtu = (size_t)ifr.ifr_mtu;
	}
	if (mtu < PFSYNC_MTU_MIN)
		mtu = PFSYNC_MTU_MIN;
	if (mtu > PFSYNC_MTU_MAX)
		mtu = PFSYNC_MTU_MAX;
	if (mtu != ps->mtu) {
		log_info("pfsync: packets of up to %zu bytes (the MTU of %s)", mtu, ps->cfg.ifname);
		ps->mtu = mtu;
	}
	return mtu;
}

/* flush_cb pauses 1 ms between bursts */
static void pace_pause(struct pfsyncd *ps)
{
	struct timeval tv = {0, 1000};
	evtimer_del(ps->flush_ev);
	evtimer_add(ps->flush_ev, &tv);
	ps->flush_due_ms = now_ms() + 1;
	ps->pacing = true;
}

static void flush_burst(struct pfsyncd *ps);

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pfsyncd *ps = arg;
	flush_burst(ps);
	tx_flush(ps);
}

/* build what is queued into packets (tx_buf), as much as the pace allows */
static void flush_burst(struct pfsyncd *ps)
{
	size_t cap = sync_mtu(ps) - (ps->family == AF_INET ? 20 : 40);
	/* BURST_PACKETS a millisecond on average: a pause that lasted longer (timer
	 * slack, the loop busy elsewhere) is made up, up to a burst more */
	uint64_t t_us = now_us();
	unsigned allowed = BURST_PACKETS;
	size_t allowed_bytes = BURST_BYTES;
	if (ps->pacing) {
		uint64_t el = t_us - ps->pace_us;
		if (el > 2000)
			el = 2000;
		allowed = (unsigned)(el * BURST_PACKETS / 1000);
		allowed_bytes = (size_t)(el * BURST_BYTES / 1000);
	}
	struct bulk_window *bw = &ps->bw;
	if (bw->on && bw->acked && now_ms() - bw->last_ack_ms > BULK_ACK_STALL_MS &&
	    bw->sent - bw->acked_bytes + cap > BULK_WINDOW) {
		log_info("pfsync: bulk update: the receiver stopped acknowledging; slower pace");
		bw->acked = false;
	}
	if (bw->on && !bw->acked) {
		/* a receiver that does not acknowledge (yet) */
		allowed = allowed * BURST_SLOW_PACKETS / BURST_PACKETS;
		allowed_bytes = allowed_bytes * BURST_SLOW_BYTES / BURST_BYTES;
	}
	if (allowed < 1)
		allowed = 1;
	if (allowed_bytes < cap)
		allowed_bytes = cap;
	if (bw->on && bw->acked) {
		uint64_t ahead = bw->sent - bw->acked_bytes;
		size_t room = ahead >= BULK_WINDOW ? 0 : (size_t)(BULK_WINDOW - ahead);
		if (room < allowed_bytes)
			allowed_bytes = room;
		if (bw->n + allowed > BULK_RING)
			allowed = bw->n >= BULK_RING ? 0 : (unsigned)(BULK_RING - bw->n);
		if (allowed_bytes < cap || allowed == 0) {
			/* the window is full: its next acknowledgement sends on, or this
			 * timer checks for a stall */
			pace_pause(ps);
			ps->pace_us = t_us;
			return;
		}
	}
	ps->pace_us = t_us;
	ps->pacing = false;
	ps->qbytes = 0; /* what is queued now goes in this flush or its next burst */
	bool more = true;
	unsigned burst = 0; /* packets */
	size_t burst_bytes = 0;
	uint32_t now = (uint32_t)now_s();
	while (more) {
		if (burst >= allowed || burst_bytes + cap > allowed_bytes) {
			/* a bulk update is thousands of packets: let the receiver (and a
			 * software switch between us) drain, and our own loop breathe */
			pace_pause(ps);
			return;
		}
		if (tx_n == TX_SLOTS)
			tx_flush(ps);
		struct pfsync_writer w;
		if (pfsync_writer_begin(&w, tx_buf[tx_n], cap, NULL) != PFSYNC_OK)
			return;
		more = false;
		bool any = false;
		/* BUS START goes first, in its own right; BUS END after the last state */
		if (ps->bus_start) {
			if (!wire_add_bus(ps, &w, 1))
				goto full;
			ps->bus_start = false;
			ps->c.bus_out++;
			any = true;
		}
		while (ps->nack) {
			struct sid *s = &ps->ackq[ps->nack - 1];
			if (!wire_add_sid(&w, PFSYNC_ACT_INS_ACK, s))
				goto full;
			ps->nack--;
			ps->c.ack_out++;
			any = true;
		}
		for (struct lflow *lf; (lf = pvec_top(&ps->lq)) != NULL;) {
			if (!wire_add_lflow(ps, &w, lf))
				goto full;
			ps->lq.n--;
			lf->queued = false;
			lf->q_ins = lf->q_upd = lf->q_full = lf->ack = false;
			lf->last_sent = now;
			any = true;
		}
		for (struct rflow *rf; (rf = pvec_top(&ps->rq)) != NULL;) {
			if (!wire_add_rflow(ps, &w, rf))
				goto full;
			ps->rq.n--;
			rf->queued = false;
			rf->q_full = false;
			rf->last_sent = now;
			any = true;
		}
		while (ps->ndel) {
			if (!wire_add_sid(&w, PFSYNC_ACT_DEL_C, &ps->delq[ps->ndel - 1]))
				goto full;
			ps->ndel--;
			ps->c.del_out++;
			any = true;
		}
		while (ps->nureq) {
			if (!wire_add_sid(&w, PFSYNC_ACT_UPD_REQ, &ps->ureqq[ps->nureq - 1]))
				goto full;
			ps->nureq--;
			ps->c.ureq_out++;
			any = true;
		}
		if (ps->bus_end) {
			if (!wire_add_bus(ps, &w, 2))
				goto full;
			ps->bus_end = false;
			ps->bw.on = false;
			free(ps->bw.ring); /* 96 KiB, only while a bulk update goes out */
			ps->bw.ring = NULL;
			ps->c.bus_out++;
			log_info("pfsync: bulk update sent in %llu ms",
				 (unsigned long long)(now_ms() - ps->bulk_received_ms));
			any = true;
		}
		goto send;
	full:
		more = true;
	send:
		if (any) {
			size_t len = pfsync_writer_finish(&w);
			tx_len[tx_n++] = len;
			burst++;
			burst_bytes += len;
			if (bw->on) {
				bw->sent += len;
				if (bw->have_last) {
					bw->ring[bw->head] = (struct bw_mark){bw->last, bw->sent};
					bw->head = (bw->head + 1) % BULK_RING;
					if (bw->n < BULK_RING)
						bw->n++;
				}
			}
			bw->have_last = false;
		} else if (more) {
			/* one message larger than a packet: cannot happen with 1280 */
			break;
		}
	}
	pvec_trim(&ps->lq);
	pvec_trim(&ps->rq);
}

/* ---- start, stop, status ----------------------------------------------------------------- */

static uint32_t derive_hostid(void)
{
	/* stable across restarts: from the machine id, as pf's default hostid is
	 * random but kept; never 0 */
	uint32_t h = 2166136261u;
	FILE *f = fopen("/etc/machine-id", "r");
	if (f) {
		int ch;
		while ((ch = fgetc(f)) != EOF && ch != '\n')
			h = (h ^ (uint32_t)ch) * 16777619u;
		fclose(f);
	} else if (getrandom(&h, sizeof(h), 0) != sizeof(h)) {
		h = (uint32_t)time(NULL);
	}
	return h ? h : 1;
}

static int open_socket(struct pfsyncd *ps)
{
	int one = 1, zero = 0, ttl = PFSYNC_TTL, tos = PFSYNC_TOS;
	ps->family = ps->cfg.has_syncpeer ? ps->cfg.syncpeer_family : AF_INET;
	ps->rxbuf = malloc((size_t)RX_SLOTS * RX_SLOT);
	if (!ps->rxbuf)
		return -1;
	ps->fd = socket(ps->family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, PFSYNC_PROTO);
	if (ps->fd < 0)
		return -1;
	if (setsockopt(ps->fd, SOL_SOCKET, SO_BINDTODEVICE, ps->cfg.ifname,
		       strlen(ps->cfg.ifname)) < 0)
		return -1;
	/* a bulk update comes as a burst of packets; FORCE needs CAP_NET_ADMIN, which
	 * we hold; without it the plain sysctl-capped size is still better than the
	 * default */
	int bufsz = SOCKBUF_BYTES;
	if (setsockopt(ps->fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufsz, sizeof(bufsz)) < 0)
		setsockopt(ps->fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
	if (setsockopt(ps->fd, SOL_SOCKET, SO_SNDBUFFORCE, &bufsz, sizeof(bufsz)) < 0)
		setsockopt(ps->fd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
	if (ps->family == AF_INET) {
		struct ip_mreqn mreq = {.imr_ifindex = ps->ifindex};
		mreq.imr_multiaddr.s_addr = htonl(0xe00000f0);
		int pmtu = IP_PMTUDISC_DO;
		setsockopt(ps->fd, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl));
		setsockopt(ps->fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof(ttl));
		setsockopt(ps->fd, IPPROTO_IP, IP_TOS, &tos, sizeof(tos));
		setsockopt(ps->fd, IPPROTO_IP, IP_MULTICAST_LOOP, &zero, sizeof(zero));
		setsockopt(ps->fd, IPPROTO_IP, IP_MULTICAST_ALL, &zero, sizeof(zero));
		setsockopt(ps->fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof(pmtu));
		setsockopt(ps->fd, IPPROTO_IP, IP_MULTICAST_IF, &mreq, sizeof(mreq));
		if (!ps->cfg.has_syncpeer &&
		    setsockopt(ps->fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof(mreq)) < 0)
			return -1;
	} else {
		struct ipv6_mreq mreq = {.ipv6mr_interface = (unsigned)ps->ifindex};
		inet_pton(AF_INET6, "ff12::f0", &mreq.ipv6mr_multiaddr);
		setsockopt(ps->fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof(ttl));
		setsockopt(ps->fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &ttl, sizeof(ttl));
		setsockopt(ps->fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &zero, sizeof(zero));
		setsockopt(ps->fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &ps->ifindex, sizeof(int));
		setsockopt(ps->fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &one, sizeof(one));
		if (IN6_IS_ADDR_MULTICAST(&ps->cfg.syncpeer.v6) &&
		    setsockopt(ps->fd, IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, &mreq, sizeof(mreq)) < 0)
			return -1;
	}
	return 0;
}

int pfsyncd_start(struct carpd *cd)
{
	if (!cd->conf->pfsync.enabled)
		return 0;
	struct pfsyncd *ps = calloc(1, sizeof(*ps));
	if (!ps)
		return -1;
	for (int v6 = 0; v6 < 2; v6++) {
		slab_init(&ps->lflow_slab[v6], lflow_size(v6 ? AF_INET6 : AF_INET));
		slab_init(&ps->rstate_slab[v6], rstate_size(v6 ? AF_INET6 : AF_INET));
	}
	slab_init(&ps->rflow_slab, sizeof(struct rflow));
	ptab_init(&ps->lflows, offsetof(struct lflow, key), sizeof(struct fkey));
	ptab_init(&ps->lids, offsetof(struct lflow, id), sizeof(uint64_t));
	ptab_init(&ps->rstates, offsetof(struct rstate, id), RSTATE_KEYLEN);
	ptab_init_derived(&ps->rflows, sizeof(struct fkey), rflow_key);
	ptab_set_prefetch(&ps->rflows, rflow_prefetch);
	ptab_init(&ps->tombs, offsetof(struct tomb, key), sizeof(struct fkey));
	ps->cd = cd;
	ps->cfg = cd->conf->pfsync;
	ps->fd = -1;
	ps->creatorid = cd->conf->hostid ? cd->conf->hostid : derive_hostid();
	ps->last_dump_ms = -1;
	ps->last_dump_busy_ms = -1;
	/* ids: unique per state, and not reused by a restarted daemon */
	ps->next_id = (uint64_t)time(NULL) << 24;
	ps->id_base = ps->next_id;
	ps->ifindex = (int)if_nametoindex(ps->cfg.ifname);
	cd->pfsync = ps;
	if (!ps->ifindex || open_socket(ps) < 0) {
		log_err("pfsync: cannot open protocol 240 on %s: %s", ps->cfg.ifname,
			strerror(errno));
		pfsyncd_stop(cd);
		return -1;
	}
	ps->ct = ct_open(cd->base, ct_event, ct_resync, ps);
	if (!ps->ct) {
		log_err("pfsync: cannot open conntrack netlink: %s", strerror(errno));
		pfsyncd_stop(cd);
		return -1;
	}
	char why[512];
	if (ct_check_kernel(why, sizeof(why)) != 0) {
		log_err("pfsync: %s", why);
		pfsyncd_stop(cd);
		return -1;
	}
	if (why[0])
		log_info("pfsync: %s", why);
	/* never replicate the sync network's own traffic */
	struct ifaddrs *ifa0 = NULL;
	if (getifaddrs(&ifa0) == 0) {
		for (struct ifaddrs *ifa = ifa0; ifa; ifa = ifa->ifa_next) {
			if (!ifa->ifa_addr || strcmp(ifa->ifa_name, ps->cfg.ifname) ||
			    (ifa->ifa_addr->sa_family != AF_INET &&
			     ifa->ifa_addr->sa_family != AF_INET6))
				continue;
			int af = ifa->ifa_addr->sa_family;
			const void *a =
				af == AF_INET
					? (const void *)&((struct sockaddr_in *)ifa->ifa_addr)
						  ->sin_addr
					: (const void *)&((struct sockaddr_in6 *)ifa->ifa_addr)
						  ->sin6_addr;
			uint8_t plen = af == AF_INET ? 24 : 64;
			if (ifa->ifa_netmask) {
				const uint8_t *m =
					af == AF_INET
						? (const uint8_t *)&(
							  (struct sockaddr_in *)ifa->ifa_netmask)
							  ->sin_addr
						: (const uint8_t *)&(
							  (struct sockaddr_in6 *)ifa->ifa_netmask)
							  ->sin6_addr;
				plen = 0;
				for (int i = 0; i < (af == AF_INET ? 4 : 16); i++)
					plen += (uint8_t)__builtin_popcount(m[i]);
			}
			if (af == AF_INET6 && IN6_IS_ADDR_LINKLOCAL((const struct in6_addr *)a))
				continue;
			ct_set_ignore(ps->ct, af, a, plen);
		}
		freeifaddrs(ifa0);
	}
	ps->rx_ev = event_new(cd->base, ps->fd, EV_READ | EV_PERSIST, rx_cb, ps);
	ps->flush_ev = evtimer_new(cd->base, flush_cb, ps);
	ps->refresh_ev = evtimer_new(cd->base, refresh_cb, ps);
	ps->bulk_ev = evtimer_new(cd->base, bulk_timer_cb, ps);
	ps->defer_ev = evtimer_new(cd->base, defer_timer_cb, ps);
	ps->sweep_ev = event_new(cd->base, -1, EV_PERSIST, sweep_cb, ps);
	event_add(ps->rx_ev, NULL);
	struct timeval sweep_tv = {SWEEP_S, 0};
	event_add(ps->sweep_ev, &sweep_tv);
	if (ps->cfg.activity_mark)
		ps->am = actmark_open(cd->base, ps->cfg.activity_mark, actmark_lost, ps);
	if (ps->cfg.defer) {
		ps->defer = defer_open(cd->base, ps->ct, ps->cfg.ifname, defer_packet, ps);
		if (!ps->defer)
			log_err("pfsync: defer mode is configured but unavailable (see above): new "
				"connections are not held for the peer");
	}
	/* the first dump (what exists) waits for the bulk update: see bulk_done() */
	log_info("pfsync: on %s, version %u, creatorid 0x%08x, %s", ps->cfg.ifname, ps->cfg.version,
		 ps->creatorid, ps->cfg.has_syncpeer ? "unicast" : "multicast");
	pfsyncd_request_bulk(cd);
	return 0;
}

void pfsyncd_stop(struct carpd *cd)
{
	struct pfsyncd *ps = cd->pfsync;
	if (!ps)
		return;
	struct ptab_iter it = {0};
	for (struct lflow *lf; (lf = ptab_next(&ps->lflows, &it)) != NULL;)
		lflow_release(ps, lf); /* (still in the table: the iteration goes on) */
	ptab_clear(&ps->lflows);
	ptab_clear(&ps->lids);
	struct rpost *p, *ptmp;
	HASH_ITER(hh, ps->rposts, p, ptmp)
	{
		HASH_DEL(ps->rposts, p);
		free(p);
	}
	it = (struct ptab_iter){0};
	for (struct rflow *rf; (rf = ptab_next(&ps->rflows, &it)) != NULL;)
		slab_free(&ps->rflow_slab, rf);
	ptab_clear(&ps->rflows);
	it = (struct ptab_iter){0};
	for (struct rstate *rs; (rs = ptab_next(&ps->rstates, &it)) != NULL;)
		rstate_release(ps, rs);
	ptab_clear(&ps->rstates);
	ptab_free_all(&ps->tombs);
	for (int v6 = 0; v6 < 2; v6++) {
		slab_destroy(&ps->lflow_slab[v6]);
		slab_destroy(&ps->rstate_slab[v6]);
	}
	slab_destroy(&ps->rflow_slab);
	if (ps->demoted)
		cd->demotion -= SYNC_DEMOTION;
	if (ps->defer) {
		while (ps->nheld)
			held_release(ps, 0);
		defer_close(ps->defer);
	}
	if (ps->defer_ev)
		event_free(ps->defer_ev);
	actmark_close(ps->am);
	if (ps->ct)
		ct_close(ps->ct);
	struct event *evs[] = {ps->rx_ev, ps->flush_ev, ps->refresh_ev, ps->bulk_ev, ps->sweep_ev};
	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
		if (evs[i])
			event_free(evs[i]);
	if (ps->fd >= 0)
		close(ps->fd);
	free(ps->rxbuf);
	free(ps->lq.v);
	free(ps->rq.v);
	free(ps->dirty.v);
	free(ps->delq);
	free(ps->ureqq);
	free(ps->ackq);
	free(ps->bw.ring);
	free(ps->ifnames);
	free(ps);
	cd->pfsync = NULL;
}

static const char *bulk_name(const struct pfsyncd *ps)
{
	return ps->bulk == BULK_PENDING ? "pending" : ps->bulk == BULK_DONE ? "done" : "none";
}

void pfsyncd_status_json(const struct carpd *cd, struct evbuffer *out)
{
	const struct pfsyncd *ps = cd->pfsync;
	if (!ps) {
		evbuffer_add_printf(out, "null");
		return;
	}
	evbuffer_add_printf(out, "{\"interface\": ");
	output_json_string(out, ps->cfg.ifname);
	evbuffer_add_printf(out,
			    ", \"version\": %u, \"creatorid\": \"0x%08x\", \"states\": %u, "
			    "\"states_local\": %u, \"states_learned\": %u, \"bulk\": \"%s\", ",
			    ps->cfg.version, ps->creatorid,
			    (unsigned)ps->lflows.n + (unsigned)ps->rflows.n, (unsigned)ps->lflows.n,
			    (unsigned)ps->rflows.n, bulk_name(ps));
	if (ps->peer_heard) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		char peer[INET6_ADDRSTRLEN] = "?";
		inet_ntop(ps->family, ps->peer_addr, peer, sizeof(peer));
		evbuffer_add_printf(out, "\"peer\": {\"address\": ");
		output_json_string(out, peer);
		evbuffer_add_printf(out, ", \"last_heard_s\": %.3f}, ",
				    (double)(now.tv_sec - ps->peer_last_heard.tv_sec) +
					    (double)(now.tv_nsec - ps->peer_last_heard.tv_nsec) /
						    1e9);
	} else {
		evbuffer_add_printf(out, "\"peer\": null, ");
	}
	evbuffer_add_printf(out, "\"last_dump_ms\": %lld, \"last_dump_busy_ms\": %lld, ",
			    (long long)ps->last_dump_ms, (long long)ps->last_dump_busy_ms);
	if (ps->am) {
		struct actmark_stats as;
		actmark_stats(ps->am, &as);
		evbuffer_add_printf(
			out,
			"\"activity_mark\": {\"bit\": \"0x%08x\", \"turns\": %llu, "
			"\"errors\": %llu, \"last_turn_us\": %llu, \"without_events\": %zu}, ",
			ps->cfg.activity_mark, (unsigned long long)as.turns,
			(unsigned long long)as.errors, (unsigned long long)as.turn_us, ps->n_noev);
	} else {
		evbuffer_add_printf(out, "\"activity_mark\": null, ");
	}
	evbuffer_add_printf(out,
			    "\"defer\": {\"configured\": %s, \"active\": %s, \"held\": %zu, "
			    "\"deferred\": %llu, \"acked\": %llu, \"timeouts\": %llu}, ",
			    ps->cfg.defer ? "true" : "false", ps->defer ? "true" : "false",
			    ps->nheld, (unsigned long long)ps->c.deferred,
			    (unsigned long long)ps->c.defer_acked,
			    (unsigned long long)ps->c.defer_timeouts);
	const struct ct_stats *cs = ps->ct ? ct_stats(ps->ct) : NULL;
	evbuffer_add_printf(
		out,
		"\"counters\": {\"ipackets\": %llu, \"opackets\": %llu, \"badttl\": %llu, "
		"\"badver\": %llu, \"badlen\": %llu, \"badact\": %llu, \"badval\": %llu, "
		"\"badstate\": %llu, \"stale\": %llu, \"own_creator\": %llu, "
		"\"inject_errors\": %llu, \"not_mappable\": %llu, \"oerrors\": %llu, "
		"\"collisions\": %llu, \"ct_overruns\": %llu, \"dumps\": %llu, \"partial_events\": "
		"%llu, \"bulk_acked\": %llu, \"bulk_acks_unmatched\": %llu, \"bulk_acks_sent\": "
		"%llu, "
		"\"ins_in\": %llu, \"upd_in\": %llu, \"del_in\": %llu, \"ureq_in\": %llu, "
		"\"clr_in\": %llu, \"bus_in\": %llu, \"ack_in\": %llu, \"ins_out\": %llu, "
		"\"upd_out\": %llu, \"updc_out\": %llu, \"del_out\": %llu, \"ureq_out\": %llu, "
		"\"ack_out\": %llu, \"bus_out\": %llu}}",
		(unsigned long long)ps->c.ipackets, (unsigned long long)ps->c.opackets,
		(unsigned long long)ps->c.badttl, (unsigned long long)ps->c.badver,
		(unsigned long long)ps->c.badlen, (unsigned long long)ps->c.badact,
		(unsigned long long)ps->c.badval, (unsigned long long)ps->c.badstate,
		(unsigned long long)ps->c.stale, (unsigned long long)ps->c.own_creator,
		(unsigned long long)ps->c.inject_errors, (unsigned long long)ps->c.not_mappable,
		(unsigned long long)ps->c.oerrors, (unsigned long long)ps->c.collisions,
		(unsigned long long)(cs ? cs->overruns : 0), (unsigned long long)ps->c.dumps,
		(unsigned long long)ps->c.partial_events, (unsigned long long)ps->c.bulk_acked,
		(unsigned long long)ps->c.bulk_acks_unmatched,
		(unsigned long long)ps->c.bulk_acks_sent, (unsigned long long)ps->c.ins_in,
		(unsigned long long)ps->c.upd_in, (unsigned long long)ps->c.del_in,
		(unsigned long long)ps->c.ureq_in, (unsigned long long)ps->c.clr_in,
		(unsigned long long)ps->c.bus_in, (unsigned long long)ps->c.ack_in,
		(unsigned long long)ps->c.ins_out, (unsigned long long)ps->c.upd_out,
		(unsigned long long)ps->c.updc_out, (unsigned long long)ps->c.del_out,
		(unsigned long long)ps->c.ureq_out, (unsigned long long)ps->c.ack_out,
		(unsigned long long)ps->c.bus_out);
}

void pfsyncd_status_text(const struct carpd *cd, struct evbuffer *out)
{
	const struct pfsyncd *ps = cd->pfsync;
	if (!ps) {
		evbuffer_add_printf(out, "pfsync: not configured\n");
		return;
	}
	evbuffer_add_printf(
		out,
		"pfsync: %s version %u creatorid 0x%08x, bulk %s, states %u local + %u "
		"learned, in %llu out %llu, drops ttl %llu ver %llu len %llu act %llu\n",
		ps->cfg.ifname, ps->cfg.version, ps->creatorid, bulk_name(ps),
		(unsigned)ps->lflows.n, (unsigned)ps->rflows.n, (unsigned long long)ps->c.ipackets,
		(unsigned long long)ps->c.opackets, (unsigned long long)ps->c.badttl,
		(unsigned long long)ps->c.badver, (unsigned long long)ps->c.badlen,
		(unsigned long long)ps->c.badact);
}

void pfsyncd_metrics(const struct carpd *cd, struct evbuffer *out)
{
	const struct pfsyncd *ps = cd->pfsync;
	if (!ps)
		return;
	evbuffer_add_printf(out,
			    "# TYPE carpd_pfsync_states gauge\n"
			    "carpd_pfsync_states{origin=\"local\"} %u\n"
			    "carpd_pfsync_states{origin=\"learned\"} %u\n",
			    (unsigned)ps->lflows.n, (unsigned)ps->rflows.n);
	evbuffer_add_printf(out,
			    "# TYPE carpd_pfsync_bulk_pending gauge\n"
			    "carpd_pfsync_bulk_pending %d\n",
			    ps->bulk == BULK_PENDING);
#define M(name)                                                                                    \
	evbuffer_add_printf(out,                                                                   \
			    "# TYPE carpd_pfsync_" #name " counter\n"                              \
			    "carpd_pfsync_" #name "_total %llu\n",                                 \
			    (unsigned long long)ps->c.name)
	M(ipackets);
	M(opackets);
	M(badttl);
	M(badver);
	M(badlen);
	M(badact);
	M(badval);
	M(badstate);
	M(stale);
	M(own_creator);
	M(inject_errors);
	M(not_mappable);
	M(oerrors);
	M(collisions);
	M(deferred);
	M(defer_acked);
	M(defer_timeouts);
	M(dumps);
	M(partial_events);
	M(bulk_acked);
	M(bulk_acks_unmatched);
	M(bulk_acks_sent);
#undef M
#define MSG(dir, name, field)                                                                      \
	evbuffer_add_printf(out,                                                                   \
			    "carpd_pfsync_messages_total{direction=\"" dir "\",action=\"" name     \
			    "\"} %llu\n",                                                          \
			    (unsigned long long)ps->c.field)
	evbuffer_add_printf(out, "# TYPE carpd_pfsync_messages counter\n");
	MSG("in", "INS", ins_in);
	MSG("in", "UPD", upd_in);
	MSG("in", "DEL_C", del_in);
	MSG("in", "UPD_REQ", ureq_in);
	MSG("in", "CLR", clr_in);
	MSG("in", "BUS", bus_in);
	MSG("in", "INS_ACK", ack_in);
	MSG("out", "INS", ins_out);
	MSG("out", "UPD", upd_out);
	MSG("out", "UPD_C", updc_out);
	MSG("out", "DEL_C", del_out);
	MSG("out", "UPD_REQ", ureq_out);
	MSG("out", "INS_ACK", ack_out);
	MSG("out", "BUS", bus_out);
#undef MSG
}

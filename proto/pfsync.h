/*
 * proto/pfsync.h - the pfsync wire format as FreeBSD's pfsync(4) speaks it
 * (protocol version 5; state message formats 1301, 1400 and 1500).
 *
 * Pure code: no sockets, no globals, no allocation. Every function works on
 * caller-provided buffers, never reads past the length it is given and never
 * casts wire bytes to structs (nothing on the wire is aligned).
 * Reference: ../shared/specs/pfsync.md, sections 1-3 and 7.
 *
 * Buffers handed to the parser hold the pfsync data only: from the 20-byte
 * pfsync header to the end of the IP payload, trimmed to the IP length (so not
 * including Ethernet padding: a 44-byte pfsync datagram is padded on the wire).
 *
 * Byte order in the decoded structs is host order throughout. On the wire,
 * every multi-byte number is big-endian (network order), including `id`
 * (FreeBSD creates it with htobe64(), and pfctl prints be64toh(id)) and
 * `creatorid`; addresses stay as the 16 bytes of a struct pf_addr.
 */
#ifndef CARPD_PROTO_PFSYNC_H
#define CARPD_PROTO_PFSYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PFSYNC_PROTO	   240 /* IP protocol number (IANA never assigned it) */
#define PFSYNC_VERSION	   5   /* OpenBSD's 6 is a different protocol */
#define PFSYNC_DFLTTL	   255 /* TTL / hop limit, sent and required */
#define PFSYNC_HDR_LEN	   20  /* struct pfsync_header */
#define PFSYNC_SUBHDR_LEN  4   /* struct pfsync_subheader */
#define PFSYNC_CKSUM_LEN   16  /* pfcksum: MD5 of the loaded rulesets (PF_MD5_DIGEST_LENGTH) */
#define PFSYNC_IFNAMSIZ	   16  /* IFNAMSIZ on FreeBSD */
#define PFSYNC_TAG_NAMELEN 64  /* PF_TAG_NAME_SIZE */
#define PFSYNC_ADDR_LEN	   16  /* struct pf_addr */

/*
 * FreeBSD sizes a pfsync packet to the MTU of pfsync0 minus a 40-byte IP
 * template even for IPv4 (PFSYNC_MINPKT), so the pfsync data of one packet is
 * at most mtu - 40 bytes: give that to pfsync_writer_begin().
 */
#define PFSYNC_DATA_MAX(mtu) ((size_t)(mtu)-40)

/* Action codes (struct pfsync_subheader.action), FreeBSD 15 numbering. */
enum pfsync_action {
	PFSYNC_ACT_CLR = 0,	  /* clear a creator's states: struct pfsync_clr */
	PFSYNC_ACT_INS_1301 = 1,  /* insert state, 1301 layout */
	PFSYNC_ACT_INS_ACK = 2,	  /* ack of an insert (defer mode) */
	PFSYNC_ACT_UPD_1301 = 3,  /* full update, 1301 layout */
	PFSYNC_ACT_UPD_C = 4,	  /* compressed update */
	PFSYNC_ACT_UPD_REQ = 5,	  /* request a full update; (0, 0) = bulk */
	PFSYNC_ACT_DEL = 6,	  /* no FreeBSD message: rejected (badact) */
	PFSYNC_ACT_DEL_C = 7,	  /* compressed delete */
	PFSYNC_ACT_INS_F = 8,	  /* fragment insert: never implemented, rejected */
	PFSYNC_ACT_DEL_F = 9,	  /* fragment delete: never implemented, rejected */
	PFSYNC_ACT_BUS = 10,	  /* bulk update status */
	PFSYNC_ACT_TDB = 11,	  /* IPsec replay counters: skipped */
	PFSYNC_ACT_EOF = 12,	  /* end of frame */
	PFSYNC_ACT_INS_1400 = 13, /* FreeBSD 14 */
	PFSYNC_ACT_UPD_1400 = 14,
	PFSYNC_ACT_INS_1500 = 15, /* FreeBSD 15 */
	PFSYNC_ACT_UPD_1500 = 16,
	PFSYNC_ACT_MAX = 17 /* first unknown code (13 on FreeBSD <= 13, 15 on 14.x) */
};

/* Message sizes in bytes. */
#define PFSYNC_CLR_LEN	      20
#define PFSYNC_REF_LEN	      12 /* INS_ACK, UPD_REQ, DEL_C share one layout */
#define PFSYNC_UPD_C_LEN      84
#define PFSYNC_BUS_LEN	      12
#define PFSYNC_TDB_LEN	      48
#define PFSYNC_PEER_LEN	      32
#define PFSYNC_STATE_1301_LEN 242
#define PFSYNC_STATE_1400_LEN 277
#define PFSYNC_STATE_1500_LEN 360

/* State message format versions (ifconfig pfsync0 version N). */
#define PFSYNC_MSG_VERSION_1301 1301
#define PFSYNC_MSG_VERSION_1400 1400
#define PFSYNC_MSG_VERSION_1500 1500

/* BUS status */
#define PFSYNC_BUS_START 1
#define PFSYNC_BUS_END	 2

/* Values as FreeBSD puts them on the wire (not Linux's). */
#define PFSYNC_AF_INET	 2
#define PFSYNC_AF_INET6	 28 /* Linux's AF_INET6 is 10: translate */
#define PFSYNC_DIR_IN	 1
#define PFSYNC_DIR_OUT	 2
#define PFSYNC_SK_WIRE	 0    /* key[] index: addresses as on the state's interface */
#define PFSYNC_SK_STACK	 1    /* key[] index: addresses as the stack sees them (NAT) */
#define PFSYNC_PFTM_MAX	 25   /* timeout index limit on FreeBSD 14/15 (20 on 13) */
#define PFSYNC_TCPS_MAX	 12   /* highest peer state FreeBSD accepts (PF_TCPS_PROXY_DST) */
#define PFSYNC_WSCALE_F	 0x80 /* peer sent the window scale option */
#define PFSYNC_WSCALE_M	 0x0f /* the shift */
#define PFSYNC_SCRUB_VAL 0x01 /* scrub_flag: scrub data present */

/* state_flags (PFSTATE_*); 1301 carries only the low byte */
#define PFSYNC_PFSTATE_SLOPPY 0x0002
#define PFSYNC_PFSTATE_NOSYNC 0x0008
#define PFSYNC_PFSTATE_ACK    0x0010 /* sender defers the packet until INS_ACK */

/*
 * Errors. Each one FreeBSD also detects maps to the struct pfsyncstats
 * counter it bumps there (pfsync_err_counter()), so the daemon can count
 * every drop by reason.
 */
enum pfsync_err {
	PFSYNC_OK = 0,
	PFSYNC_ERR_TRUNC,   /* shorter than the 20-byte header (hdrops) */
	PFSYNC_ERR_BADVER,  /* header version is not 5 (badver) */
	PFSYNC_ERR_BADLEN,  /* header len > bytes received, or < 20 (badlen) */
	PFSYNC_ERR_BADACT,  /* action >= 17, or DEL / INS_F / DEL_F (badact) */
	PFSYNC_ERR_OVERRUN, /* count x message size runs past the end of the data (badlen) */
	PFSYNC_ERR_BADEOF,  /* bytes after the EOF subheader (badlen) */
	PFSYNC_ERR_BADFMT,  /* no such state format version (badver) */
	PFSYNC_ERR_BADVAL,  /* a value FreeBSD rejects: timeout, peer state, af... (badval) */
	PFSYNC_ERR_FULL,    /* writer: the message does not fit in this packet */
	PFSYNC_ERR__COUNT
};

/* Short, unique name: "hdrops", "badver", "badlen", "badact", "overrun", ... */
const char *pfsync_err_name(enum pfsync_err err);
/* The FreeBSD pfsyncstats counter the error is counted under ("badlen" for
 * OVERRUN and BADEOF, ...); NULL for PFSYNC_OK and PFSYNC_ERR_FULL. */
const char *pfsync_err_counter(enum pfsync_err err);
/* A sentence for an operator: what is wrong and what FreeBSD does with it. */
const char *pfsync_err_explain(enum pfsync_err err);

/* ---- actions ----------------------------------------------------------------------- */

/* "CLR", "INS_1301", ... "UPD_1500" (CONTRACT section 5); "UNKNOWN" for codes >= 17. */
const char *pfsync_action_name(uint8_t action);
/* Size of one message of the action; 0 for EOF; -1 when FreeBSD defines none
 * (DEL, INS_F, DEL_F) or the code is unknown: such a subheader ends parsing. */
int pfsync_action_msglen(uint8_t action);
/* 1301, 1400 or 1500 for the INS/UPD actions carrying a full state, else 0. */
uint16_t pfsync_action_version(uint8_t action);
/* The INS / UPD action for a state format version; 0xff for an unknown version. */
uint8_t pfsync_action_ins(uint16_t version);
uint8_t pfsync_action_upd(uint16_t version);
/* Message size of a state format version; 0 for an unknown version. */
size_t pfsync_state_size(uint16_t version);

/* ---- header and iteration ---------------------------------------------------------- */

struct pfsync_hdr {
	uint8_t version;
	uint8_t pad;
	uint16_t len; /* pfsync bytes from the header through EOF (host order) */
	uint8_t pfcksum[PFSYNC_CKSUM_LEN];
};

/*
 * Parse the 20-byte header. In FreeBSD's order: len < 20 -> TRUNC; version != 5
 * -> BADVER; hdr.len > len -> BADLEN; and, stricter than FreeBSD (which then
 * silently processes nothing), hdr.len < 20 -> BADLEN. *out is filled whenever
 * 20 bytes were there, so a decoder can show what it saw.
 */
enum pfsync_err pfsync_parse_header(const uint8_t *pkt, size_t len, struct pfsync_hdr *out);

struct pfsync_iter {
	const uint8_t *pkt;
	size_t len;	     /* bytes in the buffer */
	size_t end;	     /* header len: the end of the pfsync data */
	size_t off;	     /* next subheader */
	enum pfsync_err err; /* sticky: the first error met */
	bool done;
	bool eof;	/* an EOF subheader was seen */
	uint8_t action; /* the last subheader read (also the one an error is about) */
	uint16_t count;
	size_t trailing; /* at the end: bytes after the last message that were not
			  * read (beyond header len, or 1-3 bytes inside it, no EOF) */
};

/* Parse the header (see pfsync_parse_header; hdr may be NULL) and set up the
 * iterator. On an error, pfsync_iter_next() returns that error. */
enum pfsync_err pfsync_iter_init(struct pfsync_iter *it, const uint8_t *pkt, size_t len,
				 struct pfsync_hdr *hdr);

/*
 * The next subheader: its action and count, and its messages as one run of
 * count * msglen bytes at *msgs (msglen from pfsync_action_msglen(); for EOF
 * msglen is 0). Returns 1 for a subheader, 0 at the end, or -err. An EOF
 * subheader is returned (carpdump shows it); the call after it returns 0, or
 * -PFSYNC_ERR_BADEOF if bytes follow it. Like FreeBSD, parsing stops when fewer
 * than 4 bytes of the header len remain; unlike FreeBSD, messages must lie
 * within the header len, not merely within the buffer. Errors are sticky: a
 * count that does not fit is an error, never an overread. TDB messages are
 * returned for the caller to skip; DEL, INS_F, DEL_F and unknown codes give
 * -PFSYNC_ERR_BADACT with it->action set, because nothing tells their size.
 */
int pfsync_iter_next(struct pfsync_iter *it, uint8_t *action, uint16_t *count, const uint8_t **msgs,
		     size_t *msglen);

/* ---- states ------------------------------------------------------------------------ */

/* struct pfsync_state_key, plus the af/proto pf keeps per key (1500 sends both). */
struct pfsync_state_key {
	uint8_t addr[2][PFSYNC_ADDR_LEN]; /* pf_addr bytes; IPv4 in bytes 0-3 */
	uint16_t port[2];		  /* host order; ICMP: id and id or type */
	uint8_t af;			  /* FreeBSD AF_*: 2 or 28 */
	uint8_t proto;
};

/* struct pf_state_peer_export */
struct pfsync_state_peer {
	uint16_t scrub_flags;  /* pfss_flags: only PFSS_TIMESTAMP 0x0001 is exported */
	uint8_t scrub_ttl;     /* pfss_ttl */
	uint8_t scrub_flag;    /* PFSYNC_SCRUB_VAL: scrub data present */
	uint32_t scrub_ts_mod; /* timestamp modulation; SCTP: verification tag */
	uint32_t seqlo;
	uint32_t seqhi;
	uint32_t seqdiff;
	uint16_t max_win;
	uint16_t mss;
	uint8_t state;	/* TCPS_* 0-10, 11/12 synproxy; UDP/other 0-2 */
	uint8_t wscale; /* PFSYNC_WSCALE_F | shift */
};

/*
 * One pf state, whatever format it came in or goes out as. Strings keep all
 * their wire bytes (NUL padded, not necessarily NUL terminated on the wire);
 * the extra last byte is always 0 after a decode. Fields a format lacks are
 * 0 after decoding it and ignored when encoding it.
 */
struct pfsync_state {
	uint16_t version; /* format decoded from: 1301, 1400 or 1500 (informational) */
	uint64_t id;	  /* be64toh of the wire bytes: what pfctl -ss -vv prints */
	uint32_t creatorid;
	char ifname[PFSYNC_IFNAMSIZ + 1];    /* "all" for floating states */
	struct pfsync_state_key key[2];	     /* PFSYNC_SK_WIRE, PFSYNC_SK_STACK */
	struct pfsync_state_peer src, dst;   /* initiator, responder */
	uint8_t rt_addr[PFSYNC_ADDR_LEN];    /* route-to next hop */
	uint32_t rule, anchor, nat_rule;     /* 0xffffffff = none */
	uint32_t creation;		     /* age in seconds */
	uint32_t expire;		     /* seconds left */
	uint64_t packets[2], bytes[2];	     /* [0] initiator -> responder */
	uint8_t direction;		     /* PFSYNC_DIR_IN / _OUT */
	uint16_t state_flags;		     /* PFSTATE_*; 8 bits in 1301 */
	uint8_t log;			     /* PF_LOG* */
	uint8_t timeout;		     /* PFTM_* index */
	uint8_t sync_flags;		     /* 1301/1400 only */
	uint8_t updates;		     /* 1301/1400 only, unused by FreeBSD */
	uint16_t qid, pqid, dnpipe, dnrpipe; /* 1400/1500 */
	int32_t rtableid;		     /* 1400/1500; -1 = none */
	uint8_t min_ttl, set_tos;	     /* 1400/1500 */
	uint16_t max_mss;		     /* 1400/1500 */
	uint8_t set_prio[2];		     /* 1400/1500 */
	uint8_t rt; /* 1400/1500: 0 none, 2 route-to, 3 dup-to, 4 reply-to */
	char rt_ifname[PFSYNC_IFNAMSIZ + 1];   /* 1400/1500 */
	uint8_t rt_af;			       /* 1500 */
	char tagname[PFSYNC_TAG_NAMELEN + 1];  /* 1500 */
	char orig_ifname[PFSYNC_IFNAMSIZ + 1]; /* 1500 */
};

/*
 * What a Linux-made state should carry unless it knows better (spec 6.4):
 * everything 0, ifname "all", rule/anchor/nat_rule 0xffffffff, rtableid -1,
 * version 1400.
 */
void pfsync_state_defaults(struct pfsync_state *s);

/*
 * Decode one state message of the given format from p (len >= its size).
 * 1301/1400: key[].af and key[].proto both get the single af/proto; 1500:
 * wire_af/wire_proto go to key[WIRE], stack_af/stack_proto to key[STACK].
 * Returns PFSYNC_OK, PFSYNC_ERR_BADFMT or PFSYNC_ERR_OVERRUN (len too small).
 * No validation beyond that: see pfsync_state_check().
 */
enum pfsync_err pfsync_state_decode(const uint8_t *p, size_t len, uint16_t version,
				    struct pfsync_state *out);

/*
 * Encode s in the given format into out. Returns the bytes written (the
 * format's size), or 0 for an unknown format or a cap that is too small.
 * Formats drop what they cannot carry (1301: the high byte of state_flags and
 * everything after `updates`; 1301/1400: the stack key's af/proto, which take
 * the wire key's). pfsync_state_fits() tells whether anything is lost.
 */
size_t pfsync_state_encode(const struct pfsync_state *s, uint16_t version, uint8_t *out,
			   size_t cap);

/* true when every field (version aside) survives an encode/decode in that format. */
bool pfsync_state_fits(const struct pfsync_state *s, uint16_t version);

/* Field-by-field equality, version aside; strings compared on all their bytes. */
bool pfsync_state_equal(const struct pfsync_state *a, const struct pfsync_state *b);

/*
 * FreeBSD's receive checks (pfsync_in_ins / pfsync_in_upd): timeout <
 * PFTM_MAX (25) and both peer states <= 12; for an insert also direction <=
 * OUT and af (wire af for 1500) 2 or 28. PFSYNC_OK or PFSYNC_ERR_BADVAL.
 */
enum pfsync_err pfsync_state_check(const struct pfsync_state *s, bool insert);

/* ---- small messages ---------------------------------------------------------------- */

/* INS_ACK, UPD_REQ and DEL_C: (id, creatorid). UPD_REQ (0, 0) is a bulk request. */
struct pfsync_ref {
	uint64_t id;
	uint32_t creatorid;
};

struct pfsync_upd_c {
	uint64_t id;
	struct pfsync_state_peer src, dst;
	uint32_t creatorid;
	uint32_t expire; /* FreeBSD sends 0 and ignores it */
	uint8_t timeout;
};

struct pfsync_bus {
	uint32_t creatorid;
	uint32_t endtime; /* seconds since the bulk request arrived; START: 0 */
	uint8_t status;	  /* PFSYNC_BUS_START / PFSYNC_BUS_END */
};

struct pfsync_clr {
	char ifname[PFSYNC_IFNAMSIZ + 1]; /* "" = every interface */
	uint32_t creatorid;
};

/* Decoders: PFSYNC_OK, or PFSYNC_ERR_OVERRUN when len is below the message size. */
enum pfsync_err pfsync_ref_decode(const uint8_t *p, size_t len, struct pfsync_ref *out);
enum pfsync_err pfsync_upd_c_decode(const uint8_t *p, size_t len, struct pfsync_upd_c *out);
enum pfsync_err pfsync_bus_decode(const uint8_t *p, size_t len, struct pfsync_bus *out);
enum pfsync_err pfsync_clr_decode(const uint8_t *p, size_t len, struct pfsync_clr *out);

/* Encoders: write exactly the message size (pads zeroed); the caller provides it. */
void pfsync_ref_encode(const struct pfsync_ref *m, uint8_t out[PFSYNC_REF_LEN]);
void pfsync_upd_c_encode(const struct pfsync_upd_c *m, uint8_t out[PFSYNC_UPD_C_LEN]);
void pfsync_bus_encode(const struct pfsync_bus *m, uint8_t out[PFSYNC_BUS_LEN]);
void pfsync_clr_encode(const struct pfsync_clr *m, uint8_t out[PFSYNC_CLR_LEN]);

/* UPD_C validity (pfsync_in_upd_c): timeout < 25, peer states <= 12. */
enum pfsync_err pfsync_upd_c_check(const struct pfsync_upd_c *m);

/* ---- writer ------------------------------------------------------------------------ */

/*
 * Builds one packet's pfsync data in a caller buffer of at most cap bytes
 * (PFSYNC_DATA_MAX(mtu)). Messages are appended in the order given; a new
 * subheader opens when the action changes (or a count reaches 65535), else
 * the open one's count grows. 1301 states always get a subheader each:
 * FreeBSD 14 mis-steps through multi-message 1301 subheaders (spec 2.4).
 * Room for the final EOF subheader is always kept, so finish cannot fail.
 */
struct pfsync_writer {
	uint8_t *buf;
	size_t cap;
	size_t len;	/* bytes written so far, EOF not included */
	size_t subh;	/* offset of the open subheader; 0 = none */
	uint8_t action; /* its action */
	uint16_t count; /* its count */
	unsigned nmsgs; /* messages in the packet */
};

/*
 * Start a packet: header with version 5 and pfcksum (NULL = 16 zero bytes,
 * what a Linux sender should send: spec 2.2). PFSYNC_ERR_FULL if cap cannot
 * hold even the header and EOF (24 bytes).
 */
enum pfsync_err pfsync_writer_begin(struct pfsync_writer *w, uint8_t *buf, size_t cap,
				    const uint8_t *pfcksum);

/*
 * Reserve room for one message of the action (zeroed) and return it, or NULL
 * when it would not fit (send this packet and begin another) or the action
 * has no fixed size or is EOF. Use the typed helpers below when possible.
 */
uint8_t *pfsync_writer_add(struct pfsync_writer *w, uint8_t action);

/* Typed adds: PFSYNC_OK, PFSYNC_ERR_FULL, or PFSYNC_ERR_BADACT for an action
 * that does not carry that message (add_state: INS_x / UPD_x; add_ref:
 * INS_ACK / UPD_REQ / DEL_C). */
enum pfsync_err pfsync_writer_add_state(struct pfsync_writer *w, uint8_t action,
					const struct pfsync_state *s);
enum pfsync_err pfsync_writer_add_ref(struct pfsync_writer *w, uint8_t action, uint64_t id,
				      uint32_t creatorid);
enum pfsync_err pfsync_writer_add_upd_c(struct pfsync_writer *w, const struct pfsync_upd_c *m);
enum pfsync_err pfsync_writer_add_bus(struct pfsync_writer *w, const struct pfsync_bus *m);
enum pfsync_err pfsync_writer_add_clr(struct pfsync_writer *w, const struct pfsync_clr *m);

/* Undo everything added since *mark (a copy of the writer taken earlier), so
 * that a group of messages that belong together (the two states of a NATed
 * connection) goes into one packet or none. */
void pfsync_writer_rollback(struct pfsync_writer *w, const struct pfsync_writer *mark);

/* Append EOF (count 1, as FreeBSD) and set the header len; returns the packet
 * length. The writer must be begun again before reuse. */
size_t pfsync_writer_finish(struct pfsync_writer *w);

/* ---- JSON (carpdump) --------------------------------------------------------------- */

/*
 * The STATE object of CONTRACT section 5, one line, ", " and ": " separators:
 * {"id": "0x%016llx", "creatorid": "0x%08x", "af": "inet"|"inet6", "proto": N,
 *  "direction": "in"|"out", "ifname": "...", "timeout": N, "expire": N,
 *  "wire": {"addr": [a, b], "port": [p, q]}, "stack": {...},
 *  "src": {"state": N, ...}, "dst": {...}, ...extra keys}
 * An unknown af or direction is printed as a number; addresses of an unknown
 * af as 32 hex digits. Like snprintf: writes at most len bytes including the
 * NUL and returns the length the whole object needs.
 */
size_t pfsync_state_json(const struct pfsync_state *s, char *buf, size_t len);

/* {"id": "0x…", "creatorid": "0x…"}: the items of INS_ACK, UPD_REQ, DEL_C. */
size_t pfsync_ref_json(const struct pfsync_ref *m, char *buf, size_t len);
/* {"id", "creatorid", "timeout", "expire", "src": {...}, "dst": {...}} */
size_t pfsync_upd_c_json(const struct pfsync_upd_c *m, char *buf, size_t len);
/* {"creatorid", "status": "start"|"end"|N, "endtime"} */
size_t pfsync_bus_json(const struct pfsync_bus *m, char *buf, size_t len);
/* {"ifname", "creatorid"} */
size_t pfsync_clr_json(const struct pfsync_clr *m, char *buf, size_t len);

#endif

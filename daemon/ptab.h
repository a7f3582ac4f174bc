/* daemon/ptab.h - a hash table of pointers, for the tables of daemon/pfsync.c
 * that grow with the number of replicated connections.
 *
 * uthash put a 56-byte handle in every entry (plus its buckets); this table keeps
 * one pointer per slot (open addressing, linear probing, at most 3/4 full, so 11 to
 * 21 bytes an entry) and reads each entry's key where the entry holds it: key_len
 * bytes at key_off, compared byte for byte (so keys have no padding), or as a
 * function makes it from the entry (ptab_init_derived()). The hash is
 * seeded at random per table. Nothing is allocated until the first entry.
 *
 * A slot also holds 19 bits of its entry's hash, in the top 16 bits of the
 * address, which user-space addresses on 64-bit Linux leave zero, and in its low
 * 3, which 8-byte alignment leaves zero (malloc() and slab.h give at least that): a probe reads an
 * entry (a cache miss, then a key compare) only when those bits match, so a lookup that misses
 * rarely touches any entry, and the table grows without reading its entries (up to 2^19 slots; past
 * that the tag holds other bits of the hash and growing reads the keys, see ptab.c). Should an
 * address ever use those bits, the table drops the tags and works as without them.
 *
 * A table that grows does not stop the caller while it moves its entries: it
 * doubles, and the entries move to the new array a few at each later ptab_add()
 * (lookups meanwhile search both arrays; see ptab.c).
 */
#ifndef CARPD_PTAB_H
#define CARPD_PTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ptab {
	uintptr_t *slot; /* 0, or an entry's address with its tag (ptab_at) */
	size_t cap;	 /* 0 or a power of 2 */
	size_t n;	 /* entries, in both arrays */
	/* while the table grows: the array before, emptied into slot[] a few
	 * slots at each ptab_add() (see ptab.c), or NULL */
	uintptr_t *old;
	size_t old_cap, old_n; /* its slots, the entries still in it */
	size_t old_first;      /* the first of its slots moved */
	size_t old_next;       /* the next of its slots to move */
	size_t old_left;       /* its slots still to move */
	uintptr_t *next;       /* the array it will grow into, mapped ahead, or NULL */
	size_t next_touched;   /* its bytes faulted in so far */
	size_t next_adds;      /* entries added since it was mapped */
	uint8_t *retired;      /* an old array moved out, unmapped piecewise, or NULL */
	size_t retired_bytes;  /* what is left of it */
	size_t key_off, key_len;
	const void *(*key_fn)(const void *entry, void *buf); /* see ptab_init_derived() */
	void (*prefetch_fn)(const void *entry);		     /* see ptab_set_prefetch() */
	uint64_t seed;
	bool untagged; /* an address used the tag bits: no tags (see above) */
};

void ptab_init(struct ptab *t, size_t key_off, size_t key_len);
/* A table whose entries do not hold their key but make it: key() writes an
 * entry's key_len bytes (at most PTAB_KEY_MAX) into buf, or returns where the
 * entry keeps them. The table calls it to hash an entry it adds, moves or
 * deletes, and to compare one a probe meets, so an entry's key must not change
 * while it is in the table: ptab_del() it first, ptab_add() it again after. */
#define PTAB_KEY_MAX 64
void ptab_init_derived(struct ptab *t, size_t key_len,
		       const void *(*key)(const void *entry, void *buf));
/* For a table of derived keys: prefetch() asks for the memory beyond the entry
 * that key() will read (__builtin_prefetch), so that growing a large table, which
 * reads every key, waits for fewer cache misses. The entry itself is in the cache
 * when it is called. */
void ptab_set_prefetch(struct ptab *t, void (*prefetch)(const void *entry));
/* the entry with this key, or NULL */
void *ptab_find(const struct ptab *t, const void *key);
/* Add an entry whose key is not in the table yet: 0, or -1 when out of memory
 * (never right after a ptab_del(): the table only grows when it is 3/4 full and
 * only shrinks, to a minimum it keeps, when it is empty). */
int ptab_add(struct ptab *t, void *e);
/* Remove this entry (by its key and identity); nothing if it is not there. */
void ptab_del(struct ptab *t, const void *e);
/* Forget every entry (not freed) and the slots. */
void ptab_clear(struct ptab *t);
/* The entry in slot i (i < cap) of the current array, or NULL (while the table
 * grows, some entries are still in the old one: ptab_next() sees both). */
void *ptab_at(const struct ptab *t, size_t i);
/* free() every entry, then ptab_clear(): for a table that owns its entries. */
void ptab_free_all(struct ptab *t);
/* Drop the tags for good: what ptab_add() does when an address uses their bits
 * (for tests, which have no such address). */
void ptab_untag(struct ptab *t);

/*
 * Iteration, in slot order:
 *     struct ptab_iter it = {0};
 *     for (struct x *e; (e = ptab_next(t, &it)) != NULL;) ...
 * The loop may ptab_del() the entry it is at (and no other entry of the same
 * table), never ptab_add() (which moves entries while the table grows). An entry can then be
 * visited twice (one that wrapped around the end of the slots moves back behind it), none is
 * skipped.
 */
struct ptab_iter {
	size_t i;
	void *cur;
};
void *ptab_next(const struct ptab *t, struct ptab_iter *it);

#endif

/* daemon/ptab.c against a plain array: random adds, finds and deletes, and
 * deletion while iterating. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/ptab.h"
#include "tap.h"

/* 8-byte aligned (24 bytes), as daemon/slab.c hands them out: the table keeps 3
 * bits of tag in the low bits of the address */
struct ent {
	void *pad; /* the key not at offset 0 */
	uint32_t key[3];
	int live;
};
_Static_assert(sizeof(struct ent) == 24, "half the entries are not 16-byte aligned");

#define N 5000

static struct ent ents[N];

static uint64_t rnd_state = 88172645463325252ULL;
static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/* entries that hold no key: the table makes it from what they hold */
struct dent {
	_Alignas(16) uint32_t a;
	uint16_t b;
};
static size_t key_calls;
static const void *dent_key(const void *e, void *buf)
{
	const struct dent *d = e;
	uint32_t *k = buf;
	k[0] = d->a;
	k[1] = d->b;
	k[2] = d->a ^ 0x5a5a5a5au;
	key_calls++;
	return k;
}

static void derived_keys(void)
{
	enum { DN = 20000 };
	struct dent *d = calloc(DN, sizeof(*d));
	if (!CHECK(d != NULL, "memory for the derived-key table"))
		return;
	struct ptab t;
	ptab_init_derived(&t, 3 * sizeof(uint32_t), dent_key);
	int bad = 0;
	for (int i = 0; i < DN; i++) {
		d[i].a = (uint32_t)i * 2654435761u;
		d[i].b = (uint16_t)(i % 5);
		bad += ptab_add(&t, &d[i]) != 0;
	}
	CHECK(bad == 0 && t.n == DN && key_calls >= DN,
	      "derived keys: every entry added, by its key");
	for (int i = 0; i < DN; i += 3)
		ptab_del(&t, &d[i]);
	for (int i = 0; i < DN; i++) {
		uint32_t k[3];
		dent_key(&d[i], k);
		bad += ptab_find(&t, k) != (i % 3 ? &d[i] : NULL);
	}
	/* a key that matches an entry's a and b but not what the table makes */
	uint32_t wrong[3] = {d[1].a, d[1].b, d[1].a};
	CHECK(bad == 0 && t.n == DN - (DN + 2) / 3 && ptab_find(&t, wrong) == NULL,
	      "derived keys: found by the key made, the deleted ones not");
	/* an entry whose key changes: out of the table, changed, back in */
	uint32_t old[3];
	dent_key(&d[1], old);
	ptab_del(&t, &d[1]);
	d[1].b = 99;
	uint32_t now[3];
	dent_key(&d[1], now);
	CHECK(ptab_add(&t, &d[1]) == 0 && ptab_find(&t, now) == &d[1] && ptab_find(&t, old) == NULL,
	      "derived keys: a changed key, deleted and added again, found by the new one only");
	ptab_clear(&t);
	free(d);
}

/* entries whose key is elsewhere (as a learned connection's is in its first
 * state): growing past 2^19 slots reads every key, with a prefetch callback */
struct pent {
	const uint32_t *key; /* 3 words */
};
static size_t prefetch_calls, prefetch_bad;
static const void *pent_key(const void *e, void *buf)
{
	(void)buf;
	return ((const struct pent *)e)->key;
}
static void pent_prefetch(const void *e)
{
	const struct pent *p = e;
	prefetch_calls++;
	if (p->key == NULL)
		prefetch_bad++;
	else
		__builtin_prefetch(p->key);
}

static void derived_keys_grown(void)
{
	enum { PN = 400000 }; /* past 3/4 of 2^19 slots: the table grows to 2^20 */
	struct pent *e = calloc(PN, sizeof(*e));
	uint32_t *keys = calloc(PN, 3 * sizeof(*keys));
	if (!CHECK(e != NULL && keys != NULL, "memory for the grown derived-key table")) {
		free(e);
		free(keys);
		return;
	}
	struct ptab t;
	ptab_init_derived(&t, 3 * sizeof(uint32_t), pent_key);
	ptab_set_prefetch(&t, pent_prefetch);
	int bad = 0;
	for (int i = 0; i < PN; i++) {
		/* keys out of the entries' order, as states are allocated apart */
		uint32_t *k = &keys[3 * (size_t)((i * 7919u) % PN)];
		k[0] = (uint32_t)i * 2654435761u;
		k[1] = (uint32_t)i;
		k[2] = 0xc0ffee;
		e[i].key = k;
		bad += ptab_add(&t, &e[i]) != 0;
	}
	for (int i = 0; i < PN; i += 7)
		ptab_del(&t, &e[i]);
	for (int i = 0; i < PN; i++)
		bad += ptab_find(&t, e[i].key) != (i % 7 ? &e[i] : NULL);
	CHECK(bad == 0 && t.cap == ((size_t)1 << 20) && t.n == PN - (PN + 6) / 7,
	      "derived keys elsewhere, grown past 2^19 slots: every entry found, the deleted not");
	CHECK(prefetch_calls > 0 && prefetch_bad == 0,
	      "growing past 2^19 slots asked the prefetch callback, with entries only");
	ptab_clear(&t);
	free(e);
	free(keys);
}

/* growth is incremental: right after the table doubles most entries are still
 * in the old array, and every operation stays right while they move, with
 * deletions in both arrays and iterations in the middle of a move */
static void grows_while_churning(bool untagged)
{
	enum { CN = 60000 };
	struct ent *c = calloc(CN, sizeof(*c));
	if (!CHECK(c != NULL, "memory for the churned table"))
		return;
	for (int i = 0; i < CN; i++) {
		c[i].key[0] = (uint32_t)i * 2654435761u;
		c[i].key[1] = (uint32_t)i >> 3;
	}
	struct ptab t;
	ptab_init(&t, offsetof(struct ent, key), sizeof(c[0].key));
	if (untagged)
		ptab_untag(&t);
	size_t live = 0, growths = 0, incremental = 0, moving_rounds = 0, iterations = 0;
	size_t big_growths = 0, mapped_ahead = 0, check_at = 0;
	int bad = 0;
	for (int round = 0; round < 400000; round++) {
		struct ent *e = &c[rnd() % CN];
		size_t cap = t.cap;
		/* mapped ahead and every page of it faulted in */
		const uintptr_t *ahead =
			t.next && t.next_touched >= 2 * t.cap * sizeof(uintptr_t) ? t.next : NULL;
		if (!e->live && rnd() % 5 < 3) {
			bad += ptab_add(&t, e) != 0;
			e->live = 1;
			live++;
			if (t.cap != cap && cap >= 1024) {
				growths++;
				/* the add that doubled it moved at most a few steps' worth */
				incremental += t.old != NULL && t.old_n > t.n / 2;
				/* a full check and an iteration once the move is under way */
				check_at = (size_t)round + 16;
				/* arrays of 64 KiB and more were mapped and faulted in ahead */
				if (t.cap * sizeof(uintptr_t) >= ((size_t)64 << 10)) {
					big_growths++;
					mapped_ahead += ahead != NULL && t.slot == ahead;
				}
			}
		} else if (e->live) {
			ptab_del(&t, e);
			e->live = 0;
			live--;
		}
		moving_rounds += t.old != NULL;
		if (round % 97 == 0)
			for (int k = 0; k < 50; k++) {
				struct ent *f = &c[rnd() % CN];
				bad += ptab_find(&t, f->key) != (f->live ? f : NULL);
			}
		if (t.old != NULL && (size_t)round == check_at) {
			/* every entry where it should be, in one array or the other */
			for (int i = 0; i < CN; i++)
				bad += ptab_find(&t, c[i].key) != (c[i].live ? &c[i] : NULL);
			/* iterate both arrays, deleting every fifth entry met */
			iterations++;
			unsigned char *seen = calloc(CN, 1);
			struct ptab_iter it = {0};
			size_t met = 0;
			for (struct ent *x; seen && (x = ptab_next(&t, &it)) != NULL;) {
				int idx = (int)(x - c);
				if (seen[idx]++)
					continue;
				if (++met % 5 == 0) {
					ptab_del(&t, x);
					x->live = 0;
					live--;
				}
			}
			for (int i = 0; seen && i < CN; i++)
				bad += c[i].live && !seen[i];
			free(seen);
		}
	}
	for (int i = 0; i < CN; i++)
		bad += ptab_find(&t, c[i].key) != (c[i].live ? &c[i] : NULL);
	char what[128];
	snprintf(what, sizeof(what), "%s: each of %zu growths left most entries to move later",
		 untagged ? "untagged" : "tagged", growths);
	CHECK(growths >= 4 && incremental == growths, what);
#if !defined(__SANITIZE_ADDRESS__) /* (there, arrays are malloc()'s: nothing ahead) */
	snprintf(what, sizeof(what),
		 "%s: the %zu arrays of 64 KiB and more were mapped and faulted in ahead",
		 untagged ? "untagged" : "tagged", big_growths);
	CHECK(big_growths >= 2 && mapped_ahead == big_growths, what);
#endif
	snprintf(what, sizeof(what), "%s: operations and iterations ran while entries moved",
		 untagged ? "untagged" : "tagged");
	CHECK(moving_rounds > 1000 && iterations == growths, what);
	snprintf(what, sizeof(what), "%s: every find, count and iteration right through the moves",
		 untagged ? "untagged" : "tagged");
	CHECK(bad == 0 && t.n == live, what);
	/* adds alone finish a move: the old array goes */
	for (int i = 0; i < CN && t.old != NULL; i++)
		if (!c[i].live) {
			bad += ptab_add(&t, &c[i]) != 0;
			c[i].live = 1;
		}
	snprintf(what, sizeof(what), "%s: adds end the move, the old array freed",
		 untagged ? "untagged" : "tagged");
	CHECK(t.old == NULL && t.old_n == 0 && bad == 0, what);
	ptab_clear(&t);
	free(c);
}

int main(void)
{
	derived_keys();
	derived_keys_grown();
	grows_while_churning(false);
	grows_while_churning(true);
	struct ptab t;
	ptab_init(&t, offsetof(struct ent, key), sizeof(ents[0].key));
	for (int i = 0; i < N; i++) {
		ents[i].key[0] = (uint32_t)i;
		ents[i].key[1] = (uint32_t)(i % 7); /* keys that differ in few bits */
		ents[i].key[2] = 0;
	}
	CHECK(ptab_find(&t, ents[0].key) == NULL, "empty: nothing found");
	ptab_del(&t, &ents[0]); /* not there: nothing happens */

	size_t live = 0;
	int bad_find = 0, bad_add = 0;
	for (int round = 0; round < 200000; round++) {
		struct ent *e = &ents[rnd() % N];
		if (!e->live) {
			if (ptab_add(&t, e) < 0)
				bad_add++;
			e->live = 1;
			live++;
		} else if (rnd() % 3 == 0) {
			ptab_del(&t, e);
			e->live = 0;
			live--;
		}
		if (round % 1000 == 0)
			for (int i = 0; i < N; i++)
				bad_find += ptab_find(&t, ents[i].key) !=
					    (ents[i].live ? &ents[i] : NULL);
		if (round == 100000) {
			/* halfway: the slots carry tags (64-bit), then the table drops them
			 * as it would for an address that uses their bits */
			size_t tagged = 0;
			for (size_t i = 0; i < t.cap; i++)
				tagged += t.slot[i] != 0 && t.slot[i] != (uintptr_t)ptab_at(&t, i);
			CHECK(sizeof(uintptr_t) < 8 || tagged > t.n / 2,
			      "slots hold tags beside the addresses");
			ptab_untag(&t);
			bad_find = 0;
			for (int i = 0; i < N; i++)
				bad_find += ptab_find(&t, ents[i].key) !=
					    (ents[i].live ? &ents[i] : NULL);
			CHECK(bad_find == 0 && t.untagged, "without tags: every entry found");
		}
	}
	CHECK(bad_add == 0, "add never failed");
	CHECK(bad_find == 0, "find agrees with the reference after random adds and deletes");
	CHECK(t.n == live, "count agrees");

	/* iterate, deleting every other entry met: each live entry seen at least once */
	int *seen = calloc(N, sizeof(*seen));
	struct ptab_iter it = {0};
	size_t kept = 0;
	for (struct ent *e; (e = ptab_next(&t, &it)) != NULL;) {
		int idx = (int)(e - ents);
		if (seen[idx]++)
			continue; /* a second visit (wrap-around) */
		if (idx % 2) {
			ptab_del(&t, e);
			e->live = 0;
		} else {
			kept++;
		}
	}
	int missed = 0;
	for (int i = 0; i < N; i++)
		missed += ents[i].live && !seen[i];
	CHECK(missed == 0, "iteration with deletion skips no entry");
	CHECK(t.n == kept, "deleted while iterating: count agrees");
	bad_find = 0;
	for (int i = 0; i < N; i++)
		bad_find += ptab_find(&t, ents[i].key) != (ents[i].live ? &ents[i] : NULL);
	CHECK(bad_find == 0, "find agrees after deleting while iterating");

	/* delete everything while iterating: the table ends empty, slots freed */
	memset(&it, 0, sizeof(it));
	for (struct ent *e; (e = ptab_next(&t, &it)) != NULL;) {
		ptab_del(&t, e);
		e->live = 0;
	}
	CHECK(t.n == 0 && t.cap == 64, "all deleted while iterating: empty, back to 64 slots");
	CHECK(ptab_add(&t, &ents[1]) == 0 && ptab_find(&t, ents[1].key) == &ents[1],
	      "an emptied table takes entries again");
	free(seen);
	ptab_clear(&t);

	/* a large table, tagged: it grows past 2^19 slots, where the tags no longer
	 * say where an entry belongs and growing reads the keys again; deletions
	 * shift slots by their tags below that size and by their keys above it */
	enum { BIG = 900000 };
	struct ent *big = calloc(BIG, sizeof(*big));
	if (CHECK(big != NULL, "memory for the large table")) {
		ptab_init(&t, offsetof(struct ent, key), sizeof(big[0].key));
		int big_bad = 0;
		size_t caps_seen = 0, last_cap = 0;
		for (int i = 0; i < BIG; i++) {
			big[i].key[0] = (uint32_t)i * 2654435761u;
			big[i].key[1] = (uint32_t)i;
			big_bad += ptab_add(&t, &big[i]) != 0;
			if (t.cap != last_cap) {
				caps_seen++;
				last_cap = t.cap;
			}
			/* delete every tenth entry as we go: shifts at every size */
			if (i % 10 == 9) {
				ptab_del(&t, &big[i - 1]);
				big[i - 1].live = -1;
			}
		}
		for (int i = 0; i < BIG; i++)
			big_bad += ptab_find(&t, big[i].key) != (big[i].live < 0 ? NULL : &big[i]);
		CHECK(!t.untagged, "8-byte aligned entries keep their tags");
		CHECK(t.cap > ((size_t)1 << 20) && caps_seen > 10,
		      "the table grew through every size past 2^19 slots");
		CHECK(big_bad == 0 && t.n == BIG - BIG / 10,
		      "large table: every entry found, the deleted ones not");
		ptab_clear(&t);
		free(big);
	}
	return tap_done();
}

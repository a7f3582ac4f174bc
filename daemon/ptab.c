/* daemon/ptab.c - see ptab.h. */
#include "daemon/ptab.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define PTAB_MIN 64

void ptab_init(struct ptab *t, size_t key_off, size_t key_len)
{
	memset(t, 0, sizeof(*t));
	t->key_off = key_off;
	t->key_len = key_len;
	if (getrandom(&t->seed, sizeof(t->seed), GRND_NONBLOCK) != sizeof(t->seed))
		t->seed = (uint64_t)(uintptr_t)t * 0x9e3779b97f4a7c15ULL;
}

static uint64_t hash(const struct ptab *t, const void *key)
{
	const uint8_t *p = key;
	size_t len = t->key_len;
	uint64_t h = t->seed ^ (len * 0x9e3779b97f4a7c15ULL), w;
	for (; len >= 8; p += 8, len -= 8) {
		memcpy(&w, p, 8);
		h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
		h ^= h >> 31;
	}
	w = 0;
	memcpy(&w, p, len);
	h = (h ^ w) * 0x94d049bb133111ebULL;
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ULL;
	return h ^ (h >> 32);
}

static const void *key_of(const struct ptab *t, const void *e)
{
	return (const uint8_t *)e + t->key_off;
}

static size_t home(const struct ptab *t, const void *e)
{
	return (size_t)hash(t, key_of(t, e)) & (t->cap - 1);
}

void *ptab_find(const struct ptab *t, const void *key)
{
	if (!t->n)
		return NULL;
	size_t mask = t->cap - 1;
	for (size_t i = (size_t)hash(t, key) & mask;; i = (i + 1) & mask) {
		void *e = t->slot[i];
		if (e == NULL)
			return NULL;
		if (!memcmp(key_of(t, e), key, t->key_len))
			return e;
	}
}

static void put(struct ptab *t, void *e)
{
	size_t mask = t->cap - 1, i = home(t, e);
	while (t->slot[i])
		i = (i + 1) & mask;
	t->slot[i] = e;
}

int ptab_add(struct ptab *t, void *e)
{
	if (t->n + 1 > t->cap / 4 * 3) {
		size_t ncap = t->cap ? t->cap * 2 : PTAB_MIN;
		void **ns = calloc(ncap, sizeof(*ns));
		if (ns == NULL)
			return -1;
		void **old = t->slot;
		size_t ocap = t->cap;
		t->slot = ns;
		t->cap = ncap;
		for (size_t i = 0; i < ocap; i++)
			if (old[i])
				put(t, old[i]);
		free(old);
	}
	put(t, e);
	t->n++;
	return 0;
}

void ptab_del(struct ptab *t, const void *e)
{
	if (!t->n)
		return;
	size_t mask = t->cap - 1, i = home(t, e);
	while (t->slot[i] != e) {
		if (t->slot[i] == NULL)
			return;
		i = (i + 1) & mask;
	}
	/* backward shift: the entries after the hole that may sit in it move up, so
	 * that no probe sequence crosses an empty slot */
	for (size_t j = i;;) {
		t->slot[i] = NULL;
		for (;;) {
			j = (j + 1) & mask;
			if (t->slot[j] == NULL)
				goto done;
			size_t h = home(t, t->slot[j]);
			/* movable unless its home lies cyclically in (i, j] */
			bool stays = i <= j ? (h > i && h <= j) : (h > i || h <= j);
			if (!stays)
				break;
		}
		t->slot[i] = t->slot[j];
		i = j;
	}
done:
	/* an emptied table gives its memory back, but for PTAB_MIN slots: an entry
	 * deleted and added again (a new key) never needs an allocation */
	if (--t->n == 0 && t->cap > PTAB_MIN) {
		void **ns = calloc(PTAB_MIN, sizeof(*ns));
		if (ns) {
			free(t->slot);
			t->slot = ns;
			t->cap = PTAB_MIN;
		}
	}
}

void ptab_clear(struct ptab *t)
{
	free(t->slot);
	t->slot = NULL;
	t->cap = 0;
	t->n = 0;
}

void *ptab_next(const struct ptab *t, struct ptab_iter *it)
{
	/* the entry we were at is still there: go on after it; it was deleted:
	 * look at its slot again, where a later entry may have moved */
	if (it->cur != NULL && it->i < t->cap && t->slot[it->i] == it->cur)
		it->i++;
	for (; it->i < t->cap; it->i++)
		if (t->slot[it->i]) {
			it->cur = t->slot[it->i];
			return it->cur;
		}
	it->cur = NULL;
	return NULL;
}

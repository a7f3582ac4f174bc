/* daemon/ptab.c - see ptab.h. */
#include "daemon/ptab.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>

#define PTAB_MIN 64

/* the tag: 19 bits of the hash. Its top 16 are kept in the address's top 16
 * bits (zero in user-space addresses on 64-bit Linux: 47 or 48 bits, 56 only for
 * a program that asks for it); the next 3 in the address's low 3 bits (zero in
 * what malloc() returns, 16-byte aligned, and in slab.h's objects, 8-byte
 * aligned). None where addresses are 32 bits.
 *
 * Up to 2^19 slots the tag is the hash's top 19 bits. A slot's home is the hash's
 * top bits too, so the tag alone says where an entry belongs: growing the table,
 * and the shifts of a deletion, move slots without reading a single entry
 * (rehashing 200 000 entries by their keys stalled the loop for 60 ms); its bits
 * below the home's tell apart the entries of one home.
 *
 * Past 2^19 slots the top 19 bits are the same for neighbouring homes, and a probe
 * compared the key of almost every entry it met: a cache miss each, a sixth of
 * the time of a receiver learning 1 000 000 connections. There the tag is the 19
 * bits right below the home's, which tell apart any two entries a probe meets;
 * growing and deletion read the keys, as they must past 2^19 anyway. */
#if UINTPTR_MAX == UINT64_MAX
#define TAG_SHIFT   48
#define TAG_HI_MASK (~(uintptr_t)0 << TAG_SHIFT)
#define TAG_LO_BITS 3
#define TAG_LO_MASK (((uintptr_t)1 << TAG_LO_BITS) - 1)
#define TAG_MASK    (TAG_HI_MASK | TAG_LO_MASK)
#define TAG_BITS    (64 - TAG_SHIFT + TAG_LO_BITS)
#else
#define TAG_MASK 0
#define TAG_BITS 0
#endif

/* Slot arrays of this size or more are mapped and unmapped directly. From
 * malloc() they stayed in the heap once freed: glibc raises its mmap threshold to
 * the size of any mapped chunk freed, and from then on a table that doubled left
 * its old array behind (a quarter of the slots' memory: 26 bytes a connection on
 * each node at 20 000 connections); mapped, the old array goes back at once. With
 * AddressSanitizer, malloc() still, for its checks. */
#define SLOTS_MMAP_BYTES ((size_t)64 << 10)
#if defined(__SANITIZE_ADDRESS__)
#define SLOTS_NEVER_MMAP 1
#endif

static uintptr_t *slots_alloc(size_t cap)
{
#ifndef SLOTS_NEVER_MMAP
	size_t bytes = cap * sizeof(uintptr_t);
	if (bytes >= SLOTS_MMAP_BYTES) {
		void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			       0);
		return m == MAP_FAILED ? NULL : m; /* zeroed */
	}
#endif
	return calloc(cap, sizeof(uintptr_t));
}

static void slots_free(uintptr_t *slots, size_t cap)
{
#ifndef SLOTS_NEVER_MMAP
	if (slots && cap * sizeof(uintptr_t) >= SLOTS_MMAP_BYTES) {
		munmap(slots, cap * sizeof(uintptr_t));
		return;
	}
#endif
	free(slots);
}

static unsigned cap_bits(const struct ptab *t)
{
	return (unsigned)__builtin_ctzll((unsigned long long)t->cap);
}

static uintptr_t tag_of(const struct ptab *t, uint64_t h)
{
#if TAG_BITS
	unsigned bits = cap_bits(t);
	if (bits > TAG_BITS)
		h <<= bits; /* the bits below the home's */
	return t->untagged ? 0
			   : ((uintptr_t)h & TAG_HI_MASK) |
				     ((uintptr_t)(h >> (TAG_SHIFT - TAG_LO_BITS)) & TAG_LO_MASK);
#else
	(void)t;
	(void)h;
	return 0;
#endif
}

static void *addr_of(const struct ptab *t, uintptr_t s)
{
	return (void *)(t->untagged ? s : s & ~TAG_MASK);
}

void ptab_init(struct ptab *t, size_t key_off, size_t key_len)
{
	memset(t, 0, sizeof(*t));
	t->key_off = key_off;
	t->key_len = key_len;
	if (getrandom(&t->seed, sizeof(t->seed), GRND_NONBLOCK) != sizeof(t->seed))
		t->seed = (uint64_t)(uintptr_t)t * 0x9e3779b97f4a7c15ULL;
}

void ptab_set_prefetch(struct ptab *t, void (*prefetch)(const void *entry))
{
	t->prefetch_fn = prefetch;
}

void ptab_init_derived(struct ptab *t, size_t key_len,
		       const void *(*key)(const void *entry, void *buf))
{
	if (key_len > PTAB_KEY_MAX)
		abort(); /* a caller that cannot work: PTAB_KEY_MAX is what home() makes room for */
	ptab_init(t, 0, key_len);
	t->key_fn = key;
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

/* the key of an entry: where it holds it, or made in buf (PTAB_KEY_MAX bytes) */
static const void *key_of(const struct ptab *t, const void *e, void *buf)
{
	return t->key_fn ? t->key_fn(e, buf) : (const uint8_t *)e + t->key_off;
}

/* room for a key made by key_fn */
#define KEY_BUF(name) _Alignas(max_align_t) unsigned char name[PTAB_KEY_MAX]

/* the home slot of a hash: its top bits */
static size_t home_of_hash(const struct ptab *t, uint64_t h)
{
	unsigned bits = cap_bits(t);
	return bits ? (size_t)(h >> (64 - bits)) : 0;
}

static size_t home(const struct ptab *t, const void *e)
{
	KEY_BUF(buf);
	return home_of_hash(t, hash(t, key_of(t, e, buf)));
}

/* the home of the entry in this slot, from its tag when the tag has the bits */
static size_t slot_home(const struct ptab *t, uintptr_t s)
{
#if TAG_BITS
	unsigned bits = cap_bits(t);
	if (!t->untagged && bits <= TAG_BITS) {
		uint32_t top =
			(uint32_t)(s >> TAG_SHIFT) << TAG_LO_BITS | (uint32_t)(s & TAG_LO_MASK);
		return (size_t)(top >> (TAG_BITS - bits));
	}
#endif
	return home(t, addr_of(t, s));
}

void *ptab_find(const struct ptab *t, const void *key)
{
	if (!t->n)
		return NULL;
	size_t mask = t->cap - 1;
	uint64_t h = hash(t, key);
	uintptr_t tag = tag_of(t, h);
	for (size_t i = home_of_hash(t, h);; i = (i + 1) & mask) {
		uintptr_t s = t->slot[i];
		if (s == 0)
			return NULL;
		if ((s & TAG_MASK) != tag)
			continue;
		void *e = addr_of(t, s);
		KEY_BUF(buf);
		if (!memcmp(key_of(t, e, buf), key, t->key_len))
			return e;
	}
}

static void put_hashed(struct ptab *t, void *e, uint64_t h)
{
	size_t mask = t->cap - 1, i = home_of_hash(t, h);
	while (t->slot[i])
		i = (i + 1) & mask;
	t->slot[i] = (uintptr_t)e | tag_of(t, h);
}

static void put(struct ptab *t, void *e)
{
	KEY_BUF(buf);
	put_hashed(t, e, hash(t, key_of(t, e, buf)));
}

/* Rehashing reads every entry's key, a cache miss each in a large table, then
 * writes it at a random place of the new array, another; met one at a time they
 * took 87, 178 and 353 ms at 393 000, 786 000 and 1 570 000 entries
 * (bench/helpers/ptab_grow.c; 67, 139 and 267 ms pipelined), and the event loop
 * stood still meanwhile. So the old slots go in chunks, as a pipeline: the entries of the chunk
 * after next are asked for
 * (__builtin_prefetch), the next chunk's further key memory (ptab_set_prefetch),
 * and this chunk's keys are hashed and their new slots asked for before any is
 * written. */
#define REHASH_CHUNK 32

static size_t chunk_end(size_t base, size_t ocap)
{
	return base + REHASH_CHUNK < ocap ? base + REHASH_CHUNK : ocap;
}

/* ask for the keys of the entries in old slots [from, to) */
static void prefetch_keys(const struct ptab *t, const uintptr_t *old, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		if (old[i])
			__builtin_prefetch((const uint8_t *)addr_of(t, old[i]) + t->key_off);
}

/* every entry of the table before it grew, by its key */
static void rehash_all(struct ptab *t, const uintptr_t *old, size_t ocap)
{
	prefetch_keys(t, old, 0, chunk_end(0, ocap));
	prefetch_keys(t, old, chunk_end(0, ocap), chunk_end(REHASH_CHUNK, ocap));
	for (size_t base = 0; base < ocap; base += REHASH_CHUNK) {
		size_t end = chunk_end(base, ocap), next_end = chunk_end(end, ocap);
		prefetch_keys(t, old, next_end, chunk_end(next_end, ocap));
		if (t->prefetch_fn)
			for (size_t i = end; i < next_end; i++)
				if (old[i])
					t->prefetch_fn(addr_of(t, old[i]));
		void *e[REHASH_CHUNK];
		uint64_t h[REHASH_CHUNK];
		size_t n = 0;
		for (size_t i = base; i < end; i++) {
			if (!old[i])
				continue;
			KEY_BUF(buf);
			e[n] = addr_of(t, old[i]);
			h[n] = hash(t, key_of(t, e[n], buf));
			__builtin_prefetch(&t->slot[home_of_hash(t, h[n])], 1);
			n++;
		}
		for (size_t k = 0; k < n; k++)
			put_hashed(t, e[k], h[k]);
	}
}

/* a slot of the table before it grew, moved as it is (same tag) */
static void put_slot(struct ptab *t, uintptr_t s)
{
	size_t mask = t->cap - 1, i = slot_home(t, s);
	while (t->slot[i])
		i = (i + 1) & mask;
	t->slot[i] = s;
}

/* from now on without tags: an address uses their bits */
void ptab_untag(struct ptab *t)
{
	for (size_t i = 0; i < t->cap; i++)
		t->slot[i] = (uintptr_t)addr_of(t, t->slot[i]);
	t->untagged = true;
}

int ptab_add(struct ptab *t, void *e)
{
	if (!t->untagged && ((uintptr_t)e & TAG_MASK) != 0)
		ptab_untag(t);
	if (t->n + 1 > t->cap / 4 * 3) {
		size_t ncap = t->cap ? t->cap * 2 : PTAB_MIN;
		uintptr_t *ns = slots_alloc(ncap);
		if (ns == NULL)
			return -1;
		uintptr_t *old = t->slot;
		size_t ocap = t->cap;
		t->slot = ns;
		t->cap = ncap;
		/* past 2^19 slots a tag depends on the size: each is made again */
		bool retag = cap_bits(t) > TAG_BITS && !t->untagged;
		if (retag)
			rehash_all(t, old, ocap);
		else
			for (size_t i = 0; i < ocap; i++)
				if (old[i])
					put_slot(t, old[i]);
		slots_free(old, ocap);
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
	while (addr_of(t, t->slot[i]) != e) {
		if (t->slot[i] == 0)
			return;
		i = (i + 1) & mask;
	}
	/* backward shift: the entries after the hole that may sit in it move up, so
	 * that no probe sequence crosses an empty slot */
	for (size_t j = i;;) {
		t->slot[i] = 0;
		for (;;) {
			j = (j + 1) & mask;
			if (t->slot[j] == 0)
				goto done;
			size_t h = slot_home(t, t->slot[j]);
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
		uintptr_t *ns = slots_alloc(PTAB_MIN);
		if (ns) {
			slots_free(t->slot, t->cap);
			t->slot = ns;
			t->cap = PTAB_MIN;
		}
	}
}

void ptab_clear(struct ptab *t)
{
	slots_free(t->slot, t->cap);
	t->slot = NULL;
	t->cap = 0;
	t->n = 0;
}

void *ptab_at(const struct ptab *t, size_t i)
{
	return i < t->cap ? addr_of(t, t->slot[i]) : NULL;
}

void ptab_free_all(struct ptab *t)
{
	for (size_t i = 0; i < t->cap; i++)
		free(addr_of(t, t->slot[i]));
	ptab_clear(t);
}

void *ptab_next(const struct ptab *t, struct ptab_iter *it)
{
	/* the entry we were at is still there: go on after it; it was deleted:
	 * look at its slot again, where a later entry may have moved */
	if (it->cur != NULL && it->i < t->cap && addr_of(t, t->slot[it->i]) == it->cur)
		it->i++;
	for (; it->i < t->cap; it->i++)
		if (t->slot[it->i]) {
			it->cur = addr_of(t, t->slot[it->i]);
			return it->cur;
		}
	it->cur = NULL;
	return NULL;
}

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

/* unmap up to max bytes of the array that was moved out, from its end */
static void release_retired(struct ptab *t, size_t max)
{
#ifndef SLOTS_NEVER_MMAP
	size_t len = t->retired_bytes < max ? t->retired_bytes : max;
	if (len == 0)
		return;
	t->retired_bytes -= len;
	munmap(t->retired + t->retired_bytes, len);
	if (t->retired_bytes == 0)
		t->retired = NULL;
#else
	(void)t;
	(void)max;
#endif
}

static unsigned bits_of(size_t cap)
{
	return cap ? (unsigned)__builtin_ctzll((unsigned long long)cap) : 0;
}

/* the tag of a hash in an array of 2^bits slots */
static uintptr_t tag_of(const struct ptab *t, unsigned bits, uint64_t h)
{
#if TAG_BITS
	if (bits > TAG_BITS)
		h <<= bits; /* the bits below the home's */
	return t->untagged ? 0
			   : ((uintptr_t)h & TAG_HI_MASK) |
				     ((uintptr_t)(h >> (TAG_SHIFT - TAG_LO_BITS)) & TAG_LO_MASK);
#else
	(void)t;
	(void)bits;
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

static uint64_t hash_entry(const struct ptab *t, const void *e)
{
	KEY_BUF(buf);
	return hash(t, key_of(t, e, buf));
}

/* the home slot of a hash in an array of 2^bits slots: its top bits */
static size_t home_of_hash(unsigned bits, uint64_t h)
{
	return bits ? (size_t)(h >> (64 - bits)) : 0;
}

/* the home of the entry in this slot of an array of 2^bits slots, from its tag
 * when the tag has the bits */
static size_t slot_home(const struct ptab *t, unsigned bits, uintptr_t s)
{
#if TAG_BITS
	if (!t->untagged && bits <= TAG_BITS) {
		uint32_t top =
			(uint32_t)(s >> TAG_SHIFT) << TAG_LO_BITS | (uint32_t)(s & TAG_LO_MASK);
		return (size_t)(top >> (TAG_BITS - bits));
	}
#endif
	return home_of_hash(bits, hash_entry(t, addr_of(t, s)));
}

/* the entry with this key (of hash h) in an array of cap slots, or NULL */
static void *find_in(const struct ptab *t, const uintptr_t *slot, size_t cap, const void *key,
		     uint64_t h)
{
	size_t mask = cap - 1;
	unsigned bits = bits_of(cap);
	uintptr_t tag = tag_of(t, bits, h);
	for (size_t i = home_of_hash(bits, h);; i = (i + 1) & mask) {
		uintptr_t s = slot[i];
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

/* While the table grows: may an entry of hash h still be in the old array? Not
 * when its home there has moved: the moves go by whole runs of slots (see
 * grow_step()), so an entry sits in the same run as its home. A lookup that
 * misses (every new connection's) then reads one array, not two. */
static bool maybe_old(const struct ptab *t, uint64_t h)
{
	size_t mask = t->old_cap - 1;
	size_t since_first = (home_of_hash(bits_of(t->old_cap), h) - t->old_first) & mask;
	size_t moved = (t->old_next - t->old_first) & mask;
	return since_first >= moved;
}

void *ptab_find(const struct ptab *t, const void *key)
{
	if (!t->n)
		return NULL;
	uint64_t h = hash(t, key);
	if (t->old == NULL || !maybe_old(t, h))
		return find_in(t, t->slot, t->cap, key, h);
	/* the array that holds more entries first */
	bool old_fuller = t->old_n > t->n - t->old_n;
	void *e =
		find_in(t, old_fuller ? t->old : t->slot, old_fuller ? t->old_cap : t->cap, key, h);
	if (e == NULL)
		e = find_in(t, old_fuller ? t->slot : t->old, old_fuller ? t->cap : t->old_cap, key,
			    h);
	return e;
}

/* into the current array: an entry of hash h */
static void put_hashed(struct ptab *t, void *e, uint64_t h)
{
	unsigned bits = bits_of(t->cap);
	size_t mask = t->cap - 1, i = home_of_hash(bits, h);
	while (t->slot[i])
		i = (i + 1) & mask;
	t->slot[i] = (uintptr_t)e | tag_of(t, bits, h);
}

/* into the current array: a slot of the old one, moved as it is (same tag) */
static void put_slot(struct ptab *t, uintptr_t s)
{
	size_t mask = t->cap - 1, i = slot_home(t, bits_of(t->cap), s);
	while (t->slot[i])
		i = (i + 1) & mask;
	t->slot[i] = s;
}

/*
 * Growing. The table doubles when it is 3/4 full; the entries of the old array
 * then move to the new one a few at a time, GROW_STEP old slots at each later
 * ptab_add(), and lookups meanwhile search both arrays. Moved all at once they
 * stood the event loop still: 87, 178 and 353 ms at 393 000, 786 000 and 1 570 000
 * entries (bench/helpers/ptab_grow.c; 67, 139 and 267 ms pipelined), 20 to 30 ms
 * already at 200 000 entries on the virtual machines of bench/RESULTS.md, where
 * each 4 KiB page of the new array touched for the first time costs the
 * hypervisor 15 to 30 us. At GROW_STEP slots per entry added, the old array is
 * empty when the new one is under half full, long before it grows in turn.
 *
 * The old array empties in slot order, starting after a slot that was empty when
 * it grew (there is one: it was at most 3/4 full), and a step stops only before
 * an empty slot: so every entry left in it sits, as linear probing wants, after
 * its home with no empty slot between (nothing is added to it any more, and a
 * deletion's backward shift keeps that true).
 *
 * Up to 2^19 slots an entry's tag says where it belongs and a move reads no entry;
 * past that the tag holds other bits of the hash and a move reads the key. Those
 * moves are pipelined: a step ends asking for the entries the step after next
 * will move (__builtin_prefetch) and for what the next one's lead to
 * (ptab_set_prefetch()), and a step's new slots are asked for before any is
 * written.
 */
#define GROW_STEP 16

/* whether a move reads the entry's key (else it goes by the slot's tag) */
static bool moves_read_keys(const struct ptab *t)
{
	return bits_of(t->cap) > TAG_BITS || t->untagged;
}

/* the move is over (its array freed or retired by the caller) */
static void forget_old(struct ptab *t)
{
	t->old = NULL;
	t->old_cap = t->old_n = t->old_first = t->old_next = t->old_left = 0;
}

/* move the entries of old slots [from, from + count) (count <= GROW_STEP, no
 * wrapping) to the current array */
static void move_slots(struct ptab *t, size_t from, size_t count)
{
	uintptr_t *old = t->old;
	if (!moves_read_keys(t)) {
		for (size_t i = from; i < from + count; i++)
			if (old[i]) {
				put_slot(t, old[i]);
				old[i] = 0;
				t->old_n--;
			}
		return;
	}
	void *e[GROW_STEP];
	uint64_t h[GROW_STEP];
	size_t n = 0;
	unsigned bits = bits_of(t->cap);
	for (size_t i = from; i < from + count; i++) {
		if (!old[i])
			continue;
		e[n] = addr_of(t, old[i]);
		h[n] = hash_entry(t, e[n]);
		__builtin_prefetch(&t->slot[home_of_hash(bits, h[n])], 1);
		old[i] = 0;
		n++;
	}
	for (size_t k = 0; k < n; k++)
		put_hashed(t, e[k], h[k]);
	t->old_n -= n;
}

/* ask for what the next two steps will read: the entries of the one after next,
 * and what the next one's entries (asked for by the step before) lead to */
static void prefetch_steps(const struct ptab *t)
{
	if (!moves_read_keys(t))
		return; /* moves by tags: the slots alone, read in order */
	size_t mask = t->old_cap - 1;
	for (size_t k = 0; k < GROW_STEP; k++) {
		uintptr_t s = t->old[(t->old_next + GROW_STEP + k) & mask];
		if (s)
			__builtin_prefetch((const uint8_t *)addr_of(t, s) + t->key_off);
	}
	if (t->prefetch_fn)
		for (size_t k = 0; k < GROW_STEP; k++) {
			uintptr_t s = t->old[(t->old_next + k) & mask];
			if (s)
				t->prefetch_fn(addr_of(t, s));
		}
}

/* Unmapping an array of 8 MiB took 11 ms on the virtual machines of
 * bench/RESULTS.md (16 MiB: 17 ms): a moved-out array goes back to the system
 * RETIRE_BYTES at each later ptab_add(). */
#define RETIRE_BYTES ((size_t)256 << 10)

static void retire(struct ptab *t, uintptr_t *slots, size_t cap)
{
#ifndef SLOTS_NEVER_MMAP
	size_t bytes = cap * sizeof(uintptr_t);
	if (bytes > RETIRE_BYTES) {
		release_retired(t, SIZE_MAX); /* (one at a time: never two in practice) */
		t->retired = (uint8_t *)slots;
		t->retired_bytes = bytes;
		return;
	}
#endif
	slots_free(slots, cap);
}

/* move at least budget old slots (all: SIZE_MAX), and on to an empty one */
static void grow_step(struct ptab *t, size_t budget)
{
	size_t mask = t->old_cap - 1;
	while (t->old_left > 0 && (budget > 0 || t->old[t->old_next] != 0)) {
		size_t count = budget > GROW_STEP ? GROW_STEP : budget ? budget : 1;
		if (count > t->old_left)
			count = t->old_left;
		if (count > t->old_cap - t->old_next)
			count = t->old_cap - t->old_next; /* to the end, then from 0 */
		move_slots(t, t->old_next, count);
		t->old_next = (t->old_next + count) & mask;
		t->old_left -= count;
		budget -= budget > count ? count : budget;
	}
	if (t->old_left == 0) {
		retire(t, t->old, t->old_cap);
		forget_old(t);
		return;
	}
	prefetch_steps(t);
}

/* The array the table will grow into is mapped ahead, from 5/8 full, and its
 * pages touched one every PREFAULT_ADDS entries added: on the virtual machines
 * of bench/RESULTS.md the first write to a 4 KiB page costs 20 to 45 us, and the
 * moves that follow a growth write all over the new array at once (a 2 MiB
 * array, 512 pages, stalled the loop for 10 to 15 ms). A page each add was too
 * much where adds come in bursts (a receiver's three per connection: 70 ms of
 * page faults in a row at 10 000 connections/s); one every 16 spreads them over
 * 1/16 of the slots' adds, and the array is in place at 11/16 full, before the
 * table grows at 3/4 (a page holds 512 slots, the array twice as many as the
 * table has). Only for mapped arrays. */
#define PAGE_BYTES    ((size_t)4096)
#define PREFAULT_ADDS 16

static void prefault_next(struct ptab *t)
{
#ifndef SLOTS_NEVER_MMAP
	size_t bytes = 2 * t->cap * sizeof(uintptr_t);
	if (t->next == NULL) {
		if (bytes < SLOTS_MMAP_BYTES || t->n + 1 <= t->cap / 8 * 5)
			return;
		if ((t->next = slots_alloc(2 * t->cap)) == NULL)
			return; /* grow() tries again */
		t->next_touched = 0;
		t->next_adds = 0;
	}
	if (t->next_touched < bytes && t->next_adds++ % PREFAULT_ADDS == 0) {
		/* a write: a read would map the shared zero page */
		*(volatile uint8_t *)((uint8_t *)t->next + t->next_touched) = 0;
		t->next_touched += PAGE_BYTES;
	}
#else
	(void)t;
#endif
}

/* the array mapped ahead, given back (the table emptied) */
static void drop_next(struct ptab *t)
{
	if (t->next)
		slots_free(t->next, 2 * t->cap);
	t->next = NULL;
	t->next_touched = 0;
}

/* the current array becomes the old one, a new one twice its size current */
static int grow(struct ptab *t)
{
	if (t->old)
		grow_step(t, SIZE_MAX); /* (not reached at GROW_STEP slots per add) */
	size_t ncap = t->cap ? t->cap * 2 : PTAB_MIN;
	uintptr_t *ns = t->next ? t->next : slots_alloc(ncap);
	t->next = NULL;
	t->next_touched = 0;
	if (ns == NULL)
		return -1;
	if (t->n == 0) {
		slots_free(t->slot, t->cap);
	} else {
		size_t empty = 0;
		while (t->slot[empty])
			empty++; /* there is one: the array is at most 3/4 full */
		t->old = t->slot;
		t->old_cap = t->cap;
		t->old_n = t->n;
		t->old_first = t->old_next = (empty + 1) & (t->cap - 1);
		t->old_left = t->cap - 1;
	}
	t->slot = ns;
	t->cap = ncap;
	return 0;
}

/* from now on without tags: an address uses their bits */
void ptab_untag(struct ptab *t)
{
	for (size_t i = 0; i < t->cap; i++)
		t->slot[i] = (uintptr_t)addr_of(t, t->slot[i]);
	for (size_t i = 0; i < t->old_cap; i++)
		t->old[i] = (uintptr_t)addr_of(t, t->old[i]);
	t->untagged = true;
}

int ptab_add(struct ptab *t, void *e)
{
	if (!t->untagged && ((uintptr_t)e & TAG_MASK) != 0)
		ptab_untag(t);
	if (t->n + 1 > t->cap / 4 * 3 && grow(t) < 0)
		return -1;
	put_hashed(t, e, hash_entry(t, e));
	t->n++;
	if (t->old)
		grow_step(t, GROW_STEP);
	else if (t->retired)
		release_retired(t, RETIRE_BYTES);
	prefault_next(t);
	return 0;
}

/* delete entry e from an array of cap slots: whether it was there */
static bool del_in(struct ptab *t, uintptr_t *slot, size_t cap, const void *e, uint64_t h)
{
	unsigned bits = bits_of(cap);
	size_t mask = cap - 1, i = home_of_hash(bits, h);
	while (addr_of(t, slot[i]) != e) {
		if (slot[i] == 0)
			return false;
		i = (i + 1) & mask;
	}
	/* backward shift: the entries after the hole that may sit in it move up, so
	 * that no probe sequence crosses an empty slot */
	for (size_t j = i;;) {
		slot[i] = 0;
		for (;;) {
			j = (j + 1) & mask;
			if (slot[j] == 0)
				return true;
			size_t hj = slot_home(t, bits, slot[j]);
			/* movable unless its home lies cyclically in (i, j] */
			bool stays = i <= j ? (hj > i && hj <= j) : (hj > i || hj <= j);
			if (!stays)
				break;
		}
		slot[i] = slot[j];
		i = j;
	}
}

void ptab_del(struct ptab *t, const void *e)
{
	if (!t->n)
		return;
	uint64_t h = hash_entry(t, e);
	if (!del_in(t, t->slot, t->cap, e, h)) {
		if (t->old == NULL || !maybe_old(t, h) || !del_in(t, t->old, t->old_cap, e, h))
			return;
		t->old_n--;
	}
	/* an emptied table gives its memory back, but for PTAB_MIN slots: an entry
	 * deleted and added again (a new key) never needs an allocation */
	if (--t->n == 0) {
		drop_next(t);
		slots_free(t->old, t->old_cap);
		forget_old(t);
		if (t->cap > PTAB_MIN) {
			uintptr_t *ns = slots_alloc(PTAB_MIN);
			if (ns) {
				slots_free(t->slot, t->cap);
				t->slot = ns;
				t->cap = PTAB_MIN;
			}
		}
	}
}

void ptab_clear(struct ptab *t)
{
	release_retired(t, SIZE_MAX);
	drop_next(t);
	slots_free(t->slot, t->cap);
	slots_free(t->old, t->old_cap);
	forget_old(t);
	t->slot = NULL;
	t->cap = t->n = 0;
}

void *ptab_at(const struct ptab *t, size_t i)
{
	return i < t->cap ? addr_of(t, t->slot[i]) : NULL;
}

void ptab_free_all(struct ptab *t)
{
	struct ptab_iter it = {0};
	for (void *e; (e = ptab_next(t, &it)) != NULL;)
		free(e);
	ptab_clear(t);
}

/* slot i of both arrays, the old one's first */
static uintptr_t slot_at(const struct ptab *t, size_t i)
{
	return i < t->old_cap ? t->old[i] : t->slot[i - t->old_cap];
}

void *ptab_next(const struct ptab *t, struct ptab_iter *it)
{
	size_t end = t->old_cap + t->cap;
	/* the entry we were at is still there: go on after it; it was deleted:
	 * look at its slot again, where a later entry may have moved */
	if (it->cur != NULL && it->i < end && addr_of(t, slot_at(t, it->i)) == it->cur)
		it->i++;
	for (; it->i < end; it->i++) {
		uintptr_t s = slot_at(t, it->i);
		if (s) {
			it->cur = addr_of(t, s);
			return it->cur;
		}
	}
	it->cur = NULL;
	return NULL;
}

/* daemon/slab.c: objects of every size handed out zeroed, 8-byte aligned, apart
 * from each other; freed ones reused; emptied blocks given back but one. Against
 * a plain array of what is live, with random allocations and frees. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/slab.h"
#include "tap.h"

#if defined(__SANITIZE_ADDRESS__)
#define POOLED 0 /* every object is its own malloc() there (slab.h) */
#else
#define POOLED 1
#endif

#define N 20000

static uint64_t rnd_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

static void fill(uint8_t *p, size_t len, unsigned i)
{
	for (size_t k = 0; k < len; k++)
		p[k] = (uint8_t)(i + k);
}

static bool holds(const uint8_t *p, size_t len, unsigned i)
{
	for (size_t k = 0; k < len; k++)
		if (p[k] != (uint8_t)(i + k))
			return false;
	return true;
}

int main(void)
{
	static const size_t sizes[] = {1, 32, 56, 72, 84, 104, SLAB_MAX_SIZE};
	static uint8_t *obj[N];
	for (size_t z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++) {
		struct slab s;
		char what[128];
		slab_init(&s, sizes[z]);
		size_t size = sizes[z];
		snprintf(what, sizeof(what), "size %zu: rounded to 8 bytes, room for a link", size);
		CHECK(s.size % 8 == 0 && s.size >= size && s.size >= sizeof(void *) &&
			      s.size < size + 8 + sizeof(void *),
		      what);

		int bad_zero = 0, bad_align = 0, bad_keep = 0;
		for (unsigned i = 0; i < N; i++) {
			obj[i] = slab_alloc(&s);
			if (!obj[i])
				continue;
			for (size_t k = 0; k < size; k++)
				bad_zero += obj[i][k] != 0;
			bad_align += ((uintptr_t)obj[i] & 7) != 0;
			fill(obj[i], size, i);
		}
		for (unsigned i = 0; i < N; i++)
			bad_keep += obj[i] == NULL || !holds(obj[i], size, i);
		snprintf(what, sizeof(what),
			 "size %zu: %d objects zeroed, 8-byte aligned, none overlapping another",
			 size, N);
		CHECK(bad_zero == 0 && bad_align == 0 && bad_keep == 0 && s.live == N, what);
		size_t full_blocks = s.blocks;
		if (POOLED) {
			snprintf(what, sizeof(what), "size %zu: blocks hold what they should",
				 size);
			CHECK(full_blocks == (N + s.per_block - 1) / s.per_block, what);
		}

		/* random frees and allocations: what is live keeps its bytes, what
		 * comes back is zeroed */
		bad_zero = bad_keep = 0;
		for (unsigned r = 0; r < 4 * N; r++) {
			unsigned i = (unsigned)(rnd() % N);
			if (obj[i]) {
				if (!holds(obj[i], size, i))
					bad_keep++;
				slab_free(&s, obj[i]);
				obj[i] = NULL;
			} else {
				obj[i] = slab_alloc(&s);
				if (!obj[i])
					continue;
				for (size_t k = 0; k < size; k++)
					bad_zero += obj[i][k] != 0;
				fill(obj[i], size, i);
			}
		}
		size_t live = 0;
		for (unsigned i = 0; i < N; i++)
			if (obj[i]) {
				live++;
				bad_keep += !holds(obj[i], size, i);
			}
		snprintf(what, sizeof(what), "size %zu: random frees and allocations", size);
		CHECK(bad_zero == 0 && bad_keep == 0 && s.live == live, what);
		if (POOLED) {
			snprintf(what, sizeof(what),
				 "size %zu: freed objects reused before new blocks", size);
			CHECK(s.blocks <= full_blocks, what);
		}

		for (unsigned i = 0; i < N; i++) {
			slab_free(&s, obj[i]);
			obj[i] = NULL;
		}
		snprintf(what, sizeof(what), "size %zu: all freed, one block kept", size);
		CHECK(s.live == 0 && s.blocks == (POOLED ? 1 : 0), what);
		/* and it serves again */
		uint8_t *again = slab_alloc(&s);
		snprintf(what, sizeof(what), "size %zu: an emptied slab serves again", size);
		CHECK(again != NULL && s.live == 1, what);
		slab_free(&s, again);
		slab_destroy(&s);
		CHECK(s.blocks == 0 && s.live == 0, "destroyed: no block left");
	}

	/* destroy gives back blocks still holding objects (full and partial) */
	struct slab s;
	slab_init(&s, 56);
	if (POOLED) {
		for (unsigned i = 0; i < 3 * s.per_block / 2; i++)
			obj[i] = slab_alloc(&s);
		CHECK(s.blocks == 2, "one full block and one partial");
		slab_destroy(&s);
		CHECK(s.blocks == 0 && s.live == 0 && s.avail == NULL && s.full == NULL,
		      "destroyed with objects live: every block given back");
	}
	return tap_done();
}

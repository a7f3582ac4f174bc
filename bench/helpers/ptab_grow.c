/*
 * bench/helpers/ptab_grow.c - how long carpd's tables (daemon/ptab.c) stall
 * the event loop when they grow, and how fast they find, at the sizes a large
 * bulk update reaches. No network: run it on a quiet machine.
 *
 *   ptab_grow [N [RUNS]]
 *
 * N entries (default 2 000 000, at most 8 000 000) of 56 bytes from a slab (as
 * learned states are), keyed by 12 bytes held in the entry, added in a shuffled
 * order; then every one looked up. Each run prints every growth that took over
 * 20 ms with the size it grew to (none since growth is incremental: a growth
 * only maps the new array, later adds move the entries), the longest
 * ptab_add() and how many took over 1 ms (a preemption, or on a virtual machine a
 * page fault or an munmap()'s TLB flush), and the totals.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "daemon/ptab.h"
#include "daemon/slab.h"

struct ent {
	uint64_t id;
	uint32_t creatorid;
	uint8_t rest[44]; /* 56 bytes, an IPv4 learned state */
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rnd_state = 0x2545f4914f6cdd1dULL;
static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 2000000;
	int runs = argc > 2 ? atoi(argv[2]) : 1;
	if (n < 1 || n > 8000000 || runs < 1 || runs > 100) {
		fprintf(stderr, "usage: ptab_grow [N (1..8000000) [RUNS (1..100)]]\n");
		return 2;
	}
	struct ent **order = malloc(n * sizeof(*order));
	if (order == NULL)
		return 1;
	for (int r = 1; r <= runs; r++) {
		struct slab s;
		struct ptab t;
		slab_init(&s, sizeof(struct ent));
		ptab_init(&t, offsetof(struct ent, id), 12);
		for (size_t i = 0; i < n; i++) {
			order[i] = slab_alloc(&s);
			if (order[i] == NULL)
				return 1;
			order[i]->id = i * 2654435761u;
			order[i]->creatorid = 0xf001;
		}
		for (size_t i = n - 1; i > 0; i--) {
			size_t j = (size_t)(rnd() % (i + 1));
			struct ent *x = order[i];
			order[i] = order[j];
			order[j] = x;
		}
		double t0 = now_s(), grow = 0, longest = 0;
		size_t longest_at = 0, over_1ms = 0, growths = 0;
		for (size_t i = 0; i < n; i++) {
			size_t cap = t.cap;
			double a = now_s();
			if (ptab_add(&t, order[i]) < 0)
				return 1;
			double d = now_s() - a;
			if (t.cap != cap) {
				grow += d;
				growths++;
				if (d > 0.020)
					printf("run %d: grew to %zu slots at %zu entries: %.1f "
					       "ms\n",
					       r, t.cap, i, d * 1e3);
			}
			if (d > longest) {
				longest = d;
				longest_at = i;
			}
			over_1ms += d > 0.001;
		}
		printf("run %d: longest add %.2f ms (at %zu entries), %zu adds over 1 ms, "
		       "%zu growths took %.3f ms in all\n",
		       r, longest * 1e3, longest_at, over_1ms, growths, grow * 1e3);
		double added = now_s() - t0, f0 = now_s();
		size_t found = 0;
		for (size_t i = 0; i < n; i++)
			found += ptab_find(&t, order[i]) == order[i];
		printf("run %d: %zu added in %.3f s (growing %.3f s), found %zu in %.3f s\n", r, n,
		       added, grow, found, now_s() - f0);
		ptab_clear(&t);
		for (size_t i = 0; i < n; i++)
			slab_free(&s, order[i]);
		slab_destroy(&s);
	}
	free(order);
	return 0;
}

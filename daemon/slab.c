/* daemon/slab.c - see slab.h. */
#include "daemon/slab.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#define SLAB_PER_OBJECT_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLAB_PER_OBJECT_MALLOC 1
#endif
#endif

#if !defined(SLAB_PER_OBJECT_MALLOC) && defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define SLAB_VALGRIND 1
#endif
#endif
/* memcheck is told of a slab as a memory pool: objects are its chunks (a use
 * after free, a leak, a read of what was never written are seen as with
 * malloc()), free memory is not to be touched but by the slab itself */
#ifndef SLAB_VALGRIND
#define VALGRIND_CREATE_MEMPOOL(pool, rz, zeroed) ((void)0)
#define VALGRIND_DESTROY_MEMPOOL(pool)		  ((void)0)
#define VALGRIND_MEMPOOL_ALLOC(pool, addr, size)  ((void)0)
#define VALGRIND_MEMPOOL_FREE(pool, addr)	  ((void)0)
#define VALGRIND_MAKE_MEM_NOACCESS(addr, len)	  ((void)0)
#define VALGRIND_MAKE_MEM_UNDEFINED(addr, len)	  ((void)0)
#define VALGRIND_MAKE_MEM_DEFINED(addr, len)	  ((void)0)
#endif

/* A block is aligned on its size, so that an object's block is its address with
 * the low bits cleared. 64 KiB: a thousand learned states; the page tables map
 * it as the objects are used. */
#define SLAB_BLOCK ((size_t)64 << 10)

struct slab_block {
	struct slab_block *prev, *next; /* in slab.avail, or slab.full when it has no room */
	void *free;			/* freed objects, each holding the next's address */
	unsigned used;			/* objects handed out */
	unsigned fresh;			/* objects never handed out yet: the last ones */
};
#define SLAB_HDR ((sizeof(struct slab_block) + 15) & ~(size_t)15)

void slab_init(struct slab *s, size_t size)
{
	memset(s, 0, sizeof(*s));
	if (size < sizeof(void *))
		size = sizeof(void *);
	if (size > SLAB_MAX_SIZE)
		abort(); /* a caller that cannot work */
	s->size = (size + 7) & ~(size_t)7;
	s->per_block = (unsigned)((SLAB_BLOCK - SLAB_HDR) / s->size);
	VALGRIND_CREATE_MEMPOOL(s, 0, 1);
}

#ifdef SLAB_PER_OBJECT_MALLOC

void *slab_alloc(struct slab *s)
{
	void *p = calloc(1, s->size);
	if (p)
		s->live++;
	return p;
}

void slab_free(struct slab *s, void *p)
{
	if (p) {
		s->live--;
		free(p);
	}
}

void slab_destroy(struct slab *s)
{
	/* every object is its own allocation: the owner frees them */
	s->live = 0;
}

#else

static struct slab_block *block_of(const void *p)
{
	return (struct slab_block *)((uintptr_t)p & ~(uintptr_t)(SLAB_BLOCK - 1));
}

static void list_add(struct slab_block **head, struct slab_block *b)
{
	b->prev = NULL;
	b->next = *head;
	if (*head)
		(*head)->prev = b;
	*head = b;
}

static void list_del(struct slab_block **head, struct slab_block *b)
{
	if (b->prev)
		b->prev->next = b->next;
	else
		*head = b->next;
	if (b->next)
		b->next->prev = b->prev;
	b->prev = b->next = NULL;
}

static bool block_full(const struct slab_block *b)
{
	return b->free == NULL && b->fresh == 0;
}

/* SLAB_BLOCK bytes aligned on SLAB_BLOCK: twice as much mapped, the rest unmapped */
static struct slab_block *block_new(struct slab *s)
{
	size_t len = 2 * SLAB_BLOCK;
	uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	uint8_t *start =
		(uint8_t *)(((uintptr_t)m + SLAB_BLOCK - 1) & ~(uintptr_t)(SLAB_BLOCK - 1));
	if (start > m)
		munmap(m, (size_t)(start - m));
	if (start + SLAB_BLOCK < m + len)
		munmap(start + SLAB_BLOCK, (size_t)(m + len - (start + SLAB_BLOCK)));
	struct slab_block *b = (struct slab_block *)start;
	b->fresh = s->per_block; /* mmap() zeroed the rest */
	VALGRIND_MAKE_MEM_NOACCESS(start + SLAB_HDR, SLAB_BLOCK - SLAB_HDR);
	s->blocks++;
	list_add(&s->avail, b);
	return b;
}

void *slab_alloc(struct slab *s)
{
	struct slab_block *b = s->avail;
	if (b == NULL && (b = block_new(s)) == NULL)
		return NULL;
	uint8_t *p;
	bool zeroed;
	if (b->free) {
		p = b->free;
		VALGRIND_MAKE_MEM_DEFINED(p, sizeof(void *));
		memcpy(&b->free, p, sizeof(void *));
		zeroed = false;
	} else {
		/* fresh objects are taken from the block's start; mmap() zeroed them
		 * (writing zeros again over memory never touched was a twelfth of a
		 * receiver's time in a bulk update) */
		p = (uint8_t *)b + SLAB_HDR + (size_t)(s->per_block - b->fresh) * s->size;
		b->fresh--;
		zeroed = true;
	}
	b->used++;
	s->live++;
	if (block_full(b)) {
		list_del(&s->avail, b);
		list_add(&s->full, b);
	}
	VALGRIND_MEMPOOL_ALLOC(s, p, s->size);
	if (!zeroed)
		memset(p, 0, s->size);
	return p;
}

void slab_free(struct slab *s, void *p)
{
	if (p == NULL)
		return;
	struct slab_block *b = block_of(p);
	VALGRIND_MEMPOOL_FREE(s, p);
	VALGRIND_MAKE_MEM_UNDEFINED(p, sizeof(void *));
	memcpy(p, &b->free, sizeof(void *));
	VALGRIND_MAKE_MEM_NOACCESS(p, s->size);
	if (block_full(b)) {
		list_del(&s->full, b);
		list_add(&s->avail, b);
	}
	b->free = p;
	b->used--;
	s->live--;
	/* an empty block goes back, unless it is the only one with room: a table
	 * that empties and fills again around a few entries would map and unmap */
	if (b->used == 0 && (b->prev || b->next)) {
		list_del(&s->avail, b);
		munmap(b, SLAB_BLOCK);
		s->blocks--;
	}
}

void slab_destroy(struct slab *s)
{
	struct slab_block **lists[] = {&s->avail, &s->full};
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		while (*lists[i]) {
			struct slab_block *b = *lists[i];
			list_del(lists[i], b);
			munmap(b, SLAB_BLOCK);
			s->blocks--;
		}
	s->live = 0;
	VALGRIND_DESTROY_MEMPOOL(s);
}

#endif

/* daemon/slab.h - fixed-size objects carved from 64 KiB blocks, for the entries
 * of daemon/pfsync.c that there is one of per replicated connection.
 *
 * malloc() puts an 8-byte header before every chunk and rounds chunks to 16
 * bytes: a 56-byte learned state took 64 bytes, a 32-byte learned connection 48,
 * a 72-byte local connection 80 (and the allocator's own bookkeeping took a
 * tenth of a receiver's time). Here an object takes its size rounded to 8 bytes,
 * nothing more; a block's objects are handed out in address order the first time
 * (pages are touched as they are used) and freed objects are reused first. A
 * block that empties goes back to the system unless it is the slab's last one
 * with free room, so a table that shrinks gives its memory back.
 *
 * Objects are 8-byte aligned (ptab.h keeps 3 bits of tag in an address's low
 * bits) and come zeroed. Built with AddressSanitizer, every object is its own
 * malloc() so that the sanitizer sees each use after free; under valgrind the
 * slab describes its objects to memcheck (client requests, no-ops otherwise).
 */
#ifndef CARPD_SLAB_H
#define CARPD_SLAB_H

#include <stddef.h>

struct slab_block;
struct slab {
	size_t size;		  /* of an object: a multiple of 8 */
	unsigned per_block;	  /* objects in a block */
	struct slab_block *avail; /* blocks with a free object (doubly linked) */
	struct slab_block *full;  /* blocks without */
	size_t blocks, live;	  /* blocks held, objects handed out */
};

/* size: of an object, at most SLAB_MAX_SIZE */
#define SLAB_MAX_SIZE 1024
void slab_init(struct slab *s, size_t size);
/* a zeroed object, or NULL (out of memory) */
void *slab_alloc(struct slab *s);
/* give back an object of this slab (NULL: nothing) */
void slab_free(struct slab *s, void *p);
/* give back every block, whatever they still hold (with AddressSanitizer, where
 * objects are malloc()'s, the owner must have freed them) */
void slab_destroy(struct slab *s);

#endif

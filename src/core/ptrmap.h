/*
 * ptrmap.h — block address -> size, for the allocation counter (--alloc).
 *
 * An allocator's free(p) does not say how big p was, and the blocks we
 * count belong to allocators we only wrap (pymalloc, glibc malloc, or
 * whatever was installed before us), so the size of a freed block comes
 * from here: every block allocated while counting is remembered until it is
 * freed. A free of an address that is not in the map is a block from before
 * profiling began (its size is unknown and not counted).
 *
 * Open addressing with linear probing and backward-shift deletion (no
 * tombstones: a lookup of an absent address, the common case for frees of
 * old blocks, stops at the first empty slot). The table lives in its own
 * mmap'd pages, never in malloc'd memory: it is used inside allocator hooks,
 * where calling malloc would recurse. It doubles at half load, up to
 * `max_entries`; past that, insertions are refused and counted (bounded
 * memory).
 *
 * Not thread-safe: the caller serialises (alloc.c uses the GIL for the
 * PyMem/PyObject domains and a spin lock for the raw domain).
 */
#ifndef CPYPROF_CORE_PTRMAP_H
#define CPYPROF_CORE_PTRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cp_ptrmap_ent {
    uintptr_t key; /* 0: empty */
    uint64_t size;
} cp_ptrmap_ent;

typedef struct cp_ptrmap {
    cp_ptrmap_ent *ents; /* mmap'd; NULL until the first insertion */
    size_t cap;          /* slots, a power of two, 0 when empty */
    size_t count;        /* entries */
    size_t max_entries;  /* limit on count */
    uint64_t refused;    /* insertions refused: the limit, or no memory */
} cp_ptrmap;

/** An empty map holding at most max_entries addresses. Allocates nothing. */
void cp_ptrmap_init(cp_ptrmap *m, size_t max_entries);

/** Remembers key -> size. Returns 1 if added, 2 if the key was there
 *  already (its old size goes to *old, then replaced), 0 if refused (full:
 *  counted in `refused`). key must not be 0. */
int cp_ptrmap_put(cp_ptrmap *m, uintptr_t key, uint64_t size, uint64_t *old);

/** Removes key; true (and its size in *size) if it was there. */
bool cp_ptrmap_take(cp_ptrmap *m, uintptr_t key, uint64_t *size);

/** Frees the table; the map becomes empty (same limit). */
void cp_ptrmap_clear(cp_ptrmap *m);

#endif

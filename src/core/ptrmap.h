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

/** Slot of a key in a table of mask + 1 slots. */
static inline size_t cp_ptrmap_slot(uintptr_t key, size_t mask)
{
    /* Blocks are at least 16-byte aligned: drop the zero bits, then a
     * Fibonacci multiply spreads neighbouring addresses. */
    uint64_t h = (uint64_t)(key >> 4) * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 20) & mask;
}

/** Doubles the table (or makes the first one). false when out of memory. */
bool cp_ptrmap_grow(cp_ptrmap *m);

/** Remembers key -> size. Returns 1 if added, 2 if the key was there
 *  already (its old size goes to *old, then replaced), 0 if refused (full:
 *  counted in `refused`). key must not be 0. Inline: it runs on every
 *  counted allocation. */
static inline int cp_ptrmap_put(cp_ptrmap *m, uintptr_t key, uint64_t size, uint64_t *old)
{
    if (__builtin_expect(m->count >= m->max_entries || (m->count + 1) * 2 > m->cap, 0)) {
        if (m->count >= m->max_entries || !cp_ptrmap_grow(m)) {
            /* no room for a new key; an existing one can still be replaced */
            for (size_t s = m->cap ? cp_ptrmap_slot(key, m->cap - 1) : 0; m->cap && m->ents[s].key;
                 s = (s + 1) & (m->cap - 1))
                if (m->ents[s].key == key) {
                    *old = m->ents[s].size;
                    m->ents[s].size = size;
                    return 2;
                }
            m->refused++;
            return 0;
        }
    }
    size_t mask = m->cap - 1;
    size_t s = cp_ptrmap_slot(key, mask);
    for (; m->ents[s].key; s = (s + 1) & mask) {
        if (m->ents[s].key == key) {
            *old = m->ents[s].size;
            m->ents[s].size = size;
            return 2;
        }
    }
    m->ents[s].key = key;
    m->ents[s].size = size;
    m->count++;
    return 1;
}

/** Removes key; true (and its size in *size) if it was there. Backward
 *  shift: later entries of the run move back into the hole when their home
 *  slot does not lie (cyclically) between the hole and them (Knuth 6.4,
 *  algorithm R), so there are no tombstones. */
static inline bool cp_ptrmap_take(cp_ptrmap *m, uintptr_t key, uint64_t *size)
{
    if (!m->count || !key) /* most frees: the shadow had the block, the map is empty */
        return false;
    size_t mask = m->cap - 1;
    size_t s = cp_ptrmap_slot(key, mask);
    while (m->ents[s].key != key) {
        if (!m->ents[s].key)
            return false;
        s = (s + 1) & mask;
    }
    *size = m->ents[s].size;
    size_t hole = s;
    for (size_t j = (s + 1) & mask; m->ents[j].key; j = (j + 1) & mask) {
        size_t home = cp_ptrmap_slot(m->ents[j].key, mask);
        bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (!stays) {
            m->ents[hole] = m->ents[j];
            hole = j;
        }
    }
    m->ents[hole].key = 0;
    m->ents[hole].size = 0;
    m->count--;
    return true;
}

/** Frees the table; the map becomes empty (same limit). */
void cp_ptrmap_clear(cp_ptrmap *m);

#endif

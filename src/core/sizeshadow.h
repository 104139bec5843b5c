/*
 * sizeshadow.h — block address -> size for blocks below 64 KiB at 16-byte
 * aligned addresses: the fast path of the allocation counter's size
 * lookup (ptrmap.h keeps the rest).
 *
 * Why: a hash map keyed by address scatters neighbouring blocks over the
 * whole table, so with many live blocks every allocation and every free
 * misses the cache (measured: +400% on a loop that builds a list of 200k
 * small objects). Allocators hand out neighbouring addresses in a row
 * (pymalloc carves a 16 KiB pool into equal blocks; malloc splits its top
 * chunk), so a "shadow" of the address space keeps the sizes of
 * neighbouring blocks in neighbouring bytes: per 16 KiB region of address
 * space, an array of 1024 u16, one per 16-byte granule, holding size + 1
 * of the block that starts there (0: none). Two live blocks never start in
 * the same granule: both are 16-byte aligned and at least 1 byte long.
 *
 * Regions are found through an open-addressing table, in front of which
 * sits a direct-mapped cache of CP_SHADOW_CACHE entries indexed by the low
 * bits of the region number: a program's allocations interleave a few dozen
 * pools (one per size class), which a one-entry cache missed three times in
 * four (measured: 36 instructions per miss on alloc_heavy), while a pymalloc
 * arena's 64 consecutive pools fall in distinct entries. A region number
 * maps to exactly one entry, so the cache also remembers "no region here"
 * (arr NULL; frees of blocks from before start) and the entry is simply
 * overwritten when that region is made. Regions are never removed until
 * the shadow is cleared; the arrays come from one
 * MAP_NORESERVE reservation, so only touched pages use memory (2 KiB per
 * region seen). Past `max_regions` a block is refused and the caller uses
 * the hash map. mmap only, never malloc (this runs inside allocator hooks).
 * Not thread-safe: the caller serialises, as for ptrmap.
 */
#ifndef CPYPROF_CORE_SIZESHADOW_H
#define CPYPROF_CORE_SIZESHADOW_H

#include "core/ptrmap.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CP_SHADOW_REGION_BITS 14
#define CP_SHADOW_GRANULE_BITS 4
#define CP_SHADOW_SLOTS (1u << (CP_SHADOW_REGION_BITS - CP_SHADOW_GRANULE_BITS))
#define CP_SHADOW_MAX_SIZE 65534u /* sizes stored as size + 1 in a u16 */

typedef struct cp_shadow_ent {
    uintptr_t key; /* region number + 1; 0: empty */
    uint32_t index;
    uint32_t pad;
} cp_shadow_ent;

#define CP_SHADOW_CACHE 256u /* entries of the region cache, a power of two */

/* An entry's tag is the region's base address (low 14 bits 0) when arr
 * is its array, or the base with bit 4 set (CP_SHADOW_ABSENT) when the
 * region is known not to exist (arr NULL); cp_shadow_init marks every
 * entry absent. The fast path masks the granule bits (4..13) out of the
 * address and compares the rest with the tag: one compare tests the
 * region, the 16-byte alignment (bits 0..3 must be 0) and that arr is
 * set (an absent tag has bit 4, which the masked address never has). */
#define CP_SHADOW_ABSENT ((uintptr_t)1 << CP_SHADOW_GRANULE_BITS)
#define CP_SHADOW_GRANULE_MASK                                                                     \
    ((uintptr_t)(CP_SHADOW_SLOTS - 1) << CP_SHADOW_GRANULE_BITS) /* bits 4..13 */

typedef struct cp_shadow_cached {
    uintptr_t tag;
    uint16_t *arr; /* NULL: no region (yet) for that tag */
} cp_shadow_cached;

typedef struct cp_shadow {
    cp_shadow_ent *tab; /* 2 * max_regions slots, mmap'd on first use */
    size_t mask;
    uint16_t *arrays; /* max_regions * CP_SHADOW_SLOTS, reserved on first use */
    uint32_t nregions, max_regions;
    bool failed; /* the reservation failed: refuse everything */
    cp_shadow_cached cache[CP_SHADOW_CACHE];
} cp_shadow;

/** An empty shadow for at most max_regions regions (a power of two).
 *  Allocates nothing. */
void cp_shadow_init(cp_shadow *s, uint32_t max_regions);

/** Frees everything; the shadow is empty again (same limit). */
void cp_shadow_clear(cp_shadow *s);

/** Slow path of region lookup: the table. */
uint16_t *cp_shadow_region_slow(cp_shadow *s, uintptr_t key, bool create);

/* p 16-byte aligned. */
static inline __attribute__((always_inline)) uint16_t *cp_shadow_region(cp_shadow *s, uintptr_t p,
                                                                        bool create)
{
    uintptr_t base = p & ~(((uintptr_t)1 << CP_SHADOW_REGION_BITS) - 1);
    const cp_shadow_cached *c = &s->cache[(p >> CP_SHADOW_REGION_BITS) & (CP_SHADOW_CACHE - 1)];
    if (__builtin_expect(c->tag == base, 1))
        return c->arr;
    if (c->tag == (base | CP_SHADOW_ABSENT) && !create)
        return NULL;
    return cp_shadow_region_slow(s, (p >> CP_SHADOW_REGION_BITS) + 1, create);
}

/** Fast path for the allocator wrappers: the slot of p if p is aligned
 *  and its region is in the region cache, else NULL (then use
 *  cp_sizes_put / cp_sizes_take). Reads and writes nothing else. */
static inline __attribute__((always_inline)) uint16_t *cp_shadow_slot_cached(cp_shadow *s,
                                                                             uintptr_t p)
{
    const cp_shadow_cached *c = &s->cache[(p >> CP_SHADOW_REGION_BITS) & (CP_SHADOW_CACHE - 1)];
    if (c->tag != (p & ~CP_SHADOW_GRANULE_MASK)) /* see cp_shadow_cached */
        return NULL;
    uint16_t *arr = c->arr;
    if (!arr)
        __builtin_unreachable(); /* a matching tag has its array: the caller's NULL test goes */
    return &arr[(p >> CP_SHADOW_GRANULE_BITS) & (CP_SHADOW_SLOTS - 1)];
}

/** Remembers p -> size. 1: added; 2: a block was recorded at p already
 *  (its size in *old, replaced); 0: not handled here (unaligned, too big,
 *  or no room): use the hash map. */
static inline __attribute__((always_inline)) int cp_shadow_put(cp_shadow *s, uintptr_t p,
                                                               uint64_t size, uint64_t *old)
{
    if ((p & ((1u << CP_SHADOW_GRANULE_BITS) - 1)) || size > CP_SHADOW_MAX_SIZE)
        return 0;
    uint16_t *arr = cp_shadow_region(s, p, true);
    if (!arr)
        return 0;
    uint16_t *e = &arr[(p >> CP_SHADOW_GRANULE_BITS) & (CP_SHADOW_SLOTS - 1)];
    uint16_t was = *e;
    *e = (uint16_t)(size + 1);
    if (was) {
        *old = (uint64_t)was - 1;
        return 2;
    }
    return 1;
}

/** Forgets p; true (and its size) if a block was recorded there. */
static inline __attribute__((always_inline)) bool cp_shadow_take(cp_shadow *s, uintptr_t p,
                                                                 uint64_t *size)
{
    if (p & ((1u << CP_SHADOW_GRANULE_BITS) - 1))
        return false;
    uint16_t *arr = cp_shadow_region(s, p, false);
    if (!arr)
        return false;
    uint16_t *e = &arr[(p >> CP_SHADOW_GRANULE_BITS) & (CP_SHADOW_SLOTS - 1)];
    if (!*e)
        return false;
    *size = (uint64_t)*e - 1;
    *e = 0;
    return true;
}

/** The sizes of counted blocks: the shadow where it can, the hash map for
 *  the others. A block recorded at p whose free we missed is reported
 *  replaced (2) when the new block goes to the same structure, or when it
 *  was small and the new one is big; a big one followed by a small one is
 *  not seen (checking the map on every small block would cost the cache
 *  miss the shadow avoids) and stays in the map until p is freed big. */
/** Out-of-line parts of cp_sizes_put / cp_sizes_take (the hash map). */
int cp_sizes_put_slow(cp_shadow *sh, cp_ptrmap *m, uintptr_t p, uint64_t n, uint64_t *old);
bool cp_sizes_take_slow(cp_ptrmap *m, uintptr_t p, uint64_t *n);

/* Inlined in the allocator wrappers: the shadow's fast path is a dozen
 * instructions, a call would add a third to it. */
static inline __attribute__((always_inline)) int
cp_sizes_put(cp_shadow *sh, cp_ptrmap *m, uintptr_t p, uint64_t n, uint64_t *old)
{
    int r = cp_shadow_put(sh, p, n, old);
    if (__builtin_expect(r != 0, 1))
        return r;
    return cp_sizes_put_slow(sh, m, p, n, old);
}

static inline __attribute__((always_inline)) bool cp_sizes_take(cp_shadow *sh, cp_ptrmap *m,
                                                                uintptr_t p, uint64_t *n)
{
    if (__builtin_expect(cp_shadow_take(sh, p, n), 1))
        return true;
    return m->count && cp_sizes_take_slow(m, p, n);
}

#endif

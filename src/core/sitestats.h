/*
 * sitestats.h — allocation counters per "site" of one thread (--alloc).
 *
 * A site is a small integer: a call-tree node index + 1 in the
 * deterministic mode (inline transport), a function id + 1 otherwise; 0
 * means "no Python frame". Counters live in 4096-site chunks mapped with
 * mmap on first use (never malloc: this runs inside allocator hooks) and
 * never moved or freed until the run ends, so the dump can read them while
 * a late hook still writes (values may be off by the allocation in flight).
 * Only the owning thread writes its counters.
 */
#ifndef CPYPROF_CORE_SITESTATS_H
#define CPYPROF_CORE_SITESTATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CP_SITES_CHUNK_BITS 12
#define CP_SITES_CHUNK (1u << CP_SITES_CHUNK_BITS)
#define CP_SITES_MAX_CHUNKS 4097u /* 16M sites + 1: one per tree node, and site 0 */

typedef struct cp_site_counts {
    uint64_t allocs;
    uint64_t alloc_bytes;
    uint64_t frees;
    uint64_t free_bytes;
} cp_site_counts;

typedef struct cp_sitestats {
    _Atomic(cp_site_counts *) chunks[CP_SITES_MAX_CHUNKS];
    uint64_t refused; /* counts not kept: site out of range or no memory */
} cp_sitestats;

/** A new empty table (mmap'd), or NULL. */
cp_sitestats *cp_sites_new(void);
void cp_sites_free(cp_sitestats *s);

/** Slow path of cp_sites_get: maps the chunk. NULL if out of range or
 *  memory (counted). */
cp_site_counts *cp_sites_grow(cp_sitestats *s, uint32_t site);

/** The counters of `site`, made on first use; NULL when refused. */
static inline cp_site_counts *cp_sites_get(cp_sitestats *s, uint32_t site)
{
    uint32_t c = site >> CP_SITES_CHUNK_BITS;
    cp_site_counts *chunk =
        c < CP_SITES_MAX_CHUNKS ? atomic_load_explicit(&s->chunks[c], memory_order_relaxed) : NULL;
    if (__builtin_expect(chunk != NULL, 1))
        return &chunk[site & (CP_SITES_CHUNK - 1)];
    return cp_sites_grow(s, site);
}

/** The counters of `site` if it was ever used (else NULL); for readers. */
static inline const cp_site_counts *cp_sites_peek(cp_sitestats *s, uint32_t site)
{
    uint32_t c = site >> CP_SITES_CHUNK_BITS;
    if (c >= CP_SITES_MAX_CHUNKS)
        return NULL;
    cp_site_counts *chunk = atomic_load_explicit(&s->chunks[c], memory_order_acquire);
    return chunk ? &chunk[site & (CP_SITES_CHUNK - 1)] : NULL;
}

/** The site whose counters are at c (a pointer cp_sites_get returned), or
 *  UINT32_MAX if c is not in this table. For the dump (a scan of the
 *  chunk pointers): the hot path remembers the peak's counters, not its
 *  site number. */
uint32_t cp_sites_index_of(cp_sitestats *s, const cp_site_counts *c);

/** Sites below this bound may have counters (chunks used * chunk size). */
uint32_t cp_sites_bound(cp_sitestats *s);

static inline bool cp_site_counts_zero(const cp_site_counts *c)
{
    return !c || (c->allocs | c->frees) == 0;
}

#endif

/* sitestats.c — see sitestats.h. */
#include "core/sitestats.h"

#include <sys/mman.h>

static void *map_zeroed(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

cp_sitestats *cp_sites_new(void)
{
    return map_zeroed(sizeof(cp_sitestats));
}

void cp_sites_free(cp_sitestats *s)
{
    if (!s)
        return;
    for (uint32_t c = 0; c < CP_SITES_MAX_CHUNKS; c++) {
        cp_site_counts *chunk = atomic_load(&s->chunks[c]);
        if (chunk)
            munmap(chunk, CP_SITES_CHUNK * sizeof(cp_site_counts));
    }
    munmap(s, sizeof *s);
}

cp_site_counts *cp_sites_grow(cp_sitestats *s, uint32_t site)
{
    uint32_t c = site >> CP_SITES_CHUNK_BITS;
    if (c >= CP_SITES_MAX_CHUNKS) {
        s->refused++;
        return NULL;
    }
    /* Only the owning thread makes chunks: no race on the slot. */
    cp_site_counts *chunk = map_zeroed(CP_SITES_CHUNK * sizeof(cp_site_counts));
    if (!chunk) {
        s->refused++;
        return NULL;
    }
    atomic_store_explicit(&s->chunks[c], chunk, memory_order_release);
    return &chunk[site & (CP_SITES_CHUNK - 1)];
}

uint32_t cp_sites_bound(cp_sitestats *s)
{
    uint32_t last = 0;
    for (uint32_t c = 0; c < CP_SITES_MAX_CHUNKS; c++)
        if (atomic_load_explicit(&s->chunks[c], memory_order_acquire))
            last = c + 1;
    return last << CP_SITES_CHUNK_BITS; /* at most 4097 << 12: fits */
}

uint32_t cp_sites_index_of(cp_sitestats *s, const cp_site_counts *c)
{
    if (!s || !c)
        return UINT32_MAX;
    for (uint32_t i = 0; i < CP_SITES_MAX_CHUNKS; i++) {
        const cp_site_counts *chunk = atomic_load_explicit(&s->chunks[i], memory_order_acquire);
        if (chunk && c >= chunk && c < chunk + CP_SITES_CHUNK)
            return (i << CP_SITES_CHUNK_BITS) | (uint32_t)(c - chunk);
    }
    return UINT32_MAX;
}

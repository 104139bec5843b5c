/* sizeshadow.c — see sizeshadow.h. */
#include "core/sizeshadow.h"
#include "core/reserve.h"

#include <string.h>
#include <sys/mman.h>

void cp_shadow_init(cp_shadow *s, uint32_t max_regions)
{
    memset(s, 0, sizeof *s);
    s->max_regions = max_regions;
    for (uint32_t i = 0; i < CP_SHADOW_CACHE; i++)
        s->cache[i].tag = CP_SHADOW_ABSENT; /* region 0, absent: never a hit */
}

void cp_shadow_clear(cp_shadow *s)
{
    if (s->tab)
        munmap(s->tab, 2 * (size_t)s->max_regions * sizeof *s->tab);
    if (s->arrays)
        munmap(s->arrays, (size_t)s->max_regions * CP_SHADOW_SLOTS * sizeof(uint16_t));
    cp_shadow_init(s, s->max_regions);
}

static bool ensure_reserved(cp_shadow *s)
{
    if (s->tab)
        return true;
    if (s->failed || !s->max_regions)
        return false;
    size_t tab_bytes = 2 * (size_t)s->max_regions * sizeof *s->tab;
    size_t arr_bytes = (size_t)s->max_regions * CP_SHADOW_SLOTS * sizeof(uint16_t);
    s->tab = cp_reserve(tab_bytes, false);
    s->arrays = s->tab ? cp_reserve(arr_bytes, false) : NULL;
    if (!s->arrays) {
        if (s->tab)
            munmap(s->tab, tab_bytes);
        s->tab = NULL;
        s->failed = true;
        return false;
    }
    s->mask = 2 * (size_t)s->max_regions - 1;
    return true;
}

uint16_t *cp_shadow_region_slow(cp_shadow *s, uintptr_t key, bool create)
{
    if (!ensure_reserved(s))
        return NULL;
    uintptr_t base = (key - 1) << CP_SHADOW_REGION_BITS;
    cp_shadow_cached *c = &s->cache[(key - 1) & (CP_SHADOW_CACHE - 1)];
    size_t i = (size_t)(((uint64_t)key * 0x9E3779B97F4A7C15ull) >> 24) & s->mask;
    while (s->tab[i].key) {
        if (s->tab[i].key == key) {
            uint16_t *arr = s->arrays + (size_t)s->tab[i].index * CP_SHADOW_SLOTS;
            *c = (cp_shadow_cached){base, arr};
            return arr;
        }
        i = (i + 1) & s->mask;
    }
    if (!create || s->nregions >= s->max_regions) {
        /* Remember the miss; a later create of this key lands in the same
         * entry and replaces it. (A create refused for want of room is
         * remembered too: the table never shrinks until cleared.) */
        *c = (cp_shadow_cached){base | CP_SHADOW_ABSENT, NULL};
        return NULL; /* the table stays at most half full */
    }
    s->tab[i].key = key;
    s->tab[i].index = s->nregions++;
    uint16_t *arr = s->arrays + (size_t)s->tab[i].index * CP_SHADOW_SLOTS;
    *c = (cp_shadow_cached){base, arr};
    return arr;
}

int cp_sizes_put_slow(cp_shadow *sh, cp_ptrmap *m, uintptr_t p, uint64_t n, uint64_t *old)
{
    if (cp_shadow_take(sh, p, old)) {
        uint64_t ignored;
        return cp_ptrmap_put(m, p, n, &ignored) ? 2 : 0;
    }
    return cp_ptrmap_put(m, p, n, old);
}

bool cp_sizes_take_slow(cp_ptrmap *m, uintptr_t p, uint64_t *n)
{
    return cp_ptrmap_take(m, p, n);
}

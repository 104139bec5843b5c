/* sizeshadow.c — see sizeshadow.h. */
#include "core/sizeshadow.h"

#include <string.h>
#include <sys/mman.h>

void cp_shadow_init(cp_shadow *s, uint32_t max_regions)
{
    memset(s, 0, sizeof *s);
    s->max_regions = max_regions;
}

void cp_shadow_clear(cp_shadow *s)
{
    if (s->tab)
        munmap(s->tab, 2 * (size_t)s->max_regions * sizeof *s->tab);
    if (s->arrays)
        munmap(s->arrays, (size_t)s->max_regions * CP_SHADOW_SLOTS * sizeof(uint16_t));
    cp_shadow_init(s, s->max_regions);
}

static void *reserve(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static bool ensure_reserved(cp_shadow *s)
{
    if (s->tab)
        return true;
    if (s->failed || !s->max_regions)
        return false;
    size_t tab_bytes = 2 * (size_t)s->max_regions * sizeof *s->tab;
    size_t arr_bytes = (size_t)s->max_regions * CP_SHADOW_SLOTS * sizeof(uint16_t);
    s->tab = reserve(tab_bytes);
    s->arrays = s->tab ? reserve(arr_bytes) : NULL;
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
    size_t i = (size_t)(((uint64_t)key * 0x9E3779B97F4A7C15ull) >> 24) & s->mask;
    while (s->tab[i].key) {
        if (s->tab[i].key == key) {
            uint16_t *arr = s->arrays + (size_t)s->tab[i].index * CP_SHADOW_SLOTS;
            s->last_key = key;
            s->last_arr = arr;
            return arr;
        }
        i = (i + 1) & s->mask;
    }
    if (!create || s->nregions >= s->max_regions)
        return NULL; /* the table stays at most half full */
    s->tab[i].key = key;
    s->tab[i].index = s->nregions++;
    uint16_t *arr = s->arrays + (size_t)s->tab[i].index * CP_SHADOW_SLOTS;
    s->last_key = key;
    s->last_arr = arr;
    return arr;
}

/*
 * ptrmap.c — see ptrmap.h. Linear probing; deletion shifts later entries of
 * the same run back so that no tombstones are needed (Knuth 6.4, algorithm R).
 */
#include "core/ptrmap.h"

#include <string.h>
#include <sys/mman.h>

#define MIN_CAP 4096u

static cp_ptrmap_ent *map_table(size_t cap)
{
    void *p = mmap(NULL, cap * sizeof(cp_ptrmap_ent), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void cp_ptrmap_init(cp_ptrmap *m, size_t max_entries)
{
    memset(m, 0, sizeof *m);
    m->max_entries = max_entries;
}

void cp_ptrmap_clear(cp_ptrmap *m)
{
    if (m->ents)
        munmap(m->ents, m->cap * sizeof(cp_ptrmap_ent));
    size_t max = m->max_entries;
    cp_ptrmap_init(m, max);
}

bool cp_ptrmap_grow(cp_ptrmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : MIN_CAP;
    cp_ptrmap_ent *t = map_table(cap);
    if (!t)
        return false;
    size_t mask = cap - 1;
    for (size_t i = 0; i < m->cap; i++) {
        uintptr_t k = m->ents[i].key;
        if (!k)
            continue;
        size_t s = cp_ptrmap_slot(k, mask);
        while (t[s].key)
            s = (s + 1) & mask;
        t[s] = m->ents[i];
    }
    if (m->ents)
        munmap(m->ents, m->cap * sizeof(cp_ptrmap_ent));
    m->ents = t;
    m->cap = cap;
    return true;
}

/*
 * ptrmap.c — see ptrmap.h. Linear probing; deletion shifts later entries of
 * the same run back so that no tombstones are needed (Knuth 6.4, algorithm R).
 */
#include "core/ptrmap.h"

#include <string.h>
#include <sys/mman.h>

#define MIN_CAP 4096u

static inline size_t slot_of(uintptr_t key, size_t mask)
{
    /* Blocks are at least 16-byte aligned: drop the zero bits, then a
     * Fibonacci multiply spreads neighbouring addresses. */
    uint64_t h = (uint64_t)(key >> 4) * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 20) & mask;
}

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

/* Doubles the table (or makes the first one). false when out of memory. */
static bool grow(cp_ptrmap *m)
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
        size_t s = slot_of(k, mask);
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

int cp_ptrmap_put(cp_ptrmap *m, uintptr_t key, uint64_t size, uint64_t *old)
{
    if (m->cap) {
        size_t mask = m->cap - 1;
        for (size_t s = slot_of(key, mask); m->ents[s].key; s = (s + 1) & mask) {
            if (m->ents[s].key == key) {
                *old = m->ents[s].size;
                m->ents[s].size = size;
                return 2;
            }
        }
    }
    if (m->count >= m->max_entries || ((m->count + 1) * 2 > m->cap && !grow(m))) {
        m->refused++;
        return 0;
    }
    size_t mask = m->cap - 1;
    size_t s = slot_of(key, mask);
    while (m->ents[s].key)
        s = (s + 1) & mask;
    m->ents[s].key = key;
    m->ents[s].size = size;
    m->count++;
    return 1;
}

bool cp_ptrmap_take(cp_ptrmap *m, uintptr_t key, uint64_t *size)
{
    if (!m->cap || !key)
        return false;
    size_t mask = m->cap - 1;
    size_t s = slot_of(key, mask);
    while (m->ents[s].key != key) {
        if (!m->ents[s].key)
            return false;
        s = (s + 1) & mask;
    }
    *size = m->ents[s].size;
    /* Backward shift: move later entries of this run into the hole when
     * their home slot does not lie (cyclically) between the hole and them. */
    size_t hole = s;
    for (size_t j = (s + 1) & mask; m->ents[j].key; j = (j + 1) & mask) {
        size_t home = slot_of(m->ents[j].key, mask);
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

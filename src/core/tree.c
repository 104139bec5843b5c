/* tree.c — node storage and the (parent, key) hash of a per-thread call tree. */
#include "core/tree.h"

#include <stdlib.h>
#include <string.h>

static inline uint32_t tree_hash(uint32_t parent, uint64_t key)
{
    /* Keys are pointers or small ids: mix well so sequential values spread. */
    uint64_t x = key ^ ((uint64_t)parent * 0x9E3779B97F4A7C15ull);
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (uint32_t)x;
}

int cp_tree_init(cp_tree *t)
{
    memset(t, 0, sizeof *t);
    t->root_hint = NULL;
    t->mask = 1024 - 1;
    t->slots = calloc(t->mask + 1, sizeof *t->slots);
    t->chunks[0] = calloc(CP_TREE_CHUNK, sizeof(cp_tree_node));
    if (!t->slots || !t->chunks[0]) {
        cp_tree_destroy(t);
        return -1;
    }
    return 0;
}

void cp_tree_destroy(cp_tree *t)
{
    for (size_t i = 0; i < CP_TREE_MAX_CHUNKS && t->chunks[i]; i++) {
        free(t->chunks[i]);
        t->chunks[i] = NULL;
    }
    free(t->slots);
    t->slots = NULL;
    atomic_store(&t->count, 0);
}

/* Doubles the hash. The owner is the only user of the hash, so no reader
 * can see the old array being freed. */
static int tree_grow(cp_tree *t)
{
    uint32_t nmask = t->mask * 2 + 1;
    uint32_t *ns = calloc((size_t)nmask + 1, sizeof *ns);
    if (!ns)
        return -1;
    uint32_t n = atomic_load_explicit(&t->count, memory_order_relaxed);
    for (uint32_t i = 0; i < n; i++) {
        cp_tree_node *nd = cp_tree_at(t, i);
        uint32_t s = tree_hash(nd->parent, nd->key) & nmask;
        while (ns[s])
            s = (s + 1) & nmask;
        ns[s] = i + 1;
    }
    free(t->slots);
    t->slots = ns;
    t->mask = nmask;
    return 0;
}

cp_tree_node *cp_tree_child_slow(cp_tree *t, cp_tree_node *parent, uint64_t key, uint32_t func)
{
    uint32_t pidx = parent ? parent->index : CP_TREE_ROOT;
    cp_tree_node **hint = parent ? &parent->hint : &t->root_hint;
    uint32_t s = tree_hash(pidx, key) & t->mask;
    for (;;) {
        uint32_t v = t->slots[s];
        if (!v)
            break;
        cp_tree_node *nd = cp_tree_at(t, v - 1);
        if (nd->key == key && nd->parent == pidx) {
            if (*hint)
                (*hint)->succ = nd;
            *hint = nd;
            return nd;
        }
        s = (s + 1) & t->mask;
    }
    if (func == CP_TREE_ROOT)
        return NULL;

    uint32_t n = atomic_load_explicit(&t->count, memory_order_relaxed);
    uint32_t chunk = n >> CP_TREE_CHUNK_BITS;
    /* A hash that could not grow must keep free slots or probes never end. */
    if (chunk >= CP_TREE_MAX_CHUNKS || (uint64_t)(n + 2) > t->mask) {
        t->full++;
        return NULL;
    }
    if (!t->chunks[chunk]) {
        t->chunks[chunk] = calloc(CP_TREE_CHUNK, sizeof(cp_tree_node));
        if (!t->chunks[chunk]) {
            t->full++;
            return NULL;
        }
    }
    cp_tree_node *nd = cp_tree_at(t, n);
    nd->key = key;
    nd->parent = pidx;
    nd->func = func;
    nd->calls = 0;
    nd->ticks = 0;
    nd->hint = NULL;
    nd->succ = NULL;
    nd->index = n;
    /* Publish: a reader that sees count > n sees the fields above. */
    atomic_store_explicit(&t->count, n + 1, memory_order_release);

    t->slots[s] = n + 1;
    if ((uint64_t)(n + 1) * 2 > (uint64_t)t->mask + 1)
        tree_grow(t); /* on failure the hash keeps working until nearly full */
    if (*hint)
        (*hint)->succ = nd;
    *hint = nd;
    return nd;
}

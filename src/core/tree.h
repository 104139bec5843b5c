/*
 * tree.h — a per-thread aggregated call tree, updated inline by the
 * deterministic profile hook.
 *
 * A node is "function F reached by this path": it counts calls and the
 * inclusive ticks spent. The owner thread is the only writer (with the GIL
 * held, or the writer thread for the ring transport). Another thread may read
 * nodes without any lock while the owner runs (the SIGTERM dump): nodes live
 * in fixed chunks that are never moved or freed while profiling, and a node
 * is published by a release store of `count` after its fields are set, so a
 * reader sees either a finished node or none. Counters of a published node
 * may be read torn by one call; that is accepted for an emergency dump.
 *
 * Child lookup: each node remembers its most recently entered child (`hint`)
 * and each child the sibling entered after it last time (`succ`). A loop
 * whose body calls A, B, C in turn therefore hits on the second compare at
 * worst; anything else goes to an open-addressing hash on (parent, key). The
 * hash is private to the owner and may be reallocated.
 */
#ifndef CPYPROF_CORE_TREE_H
#define CPYPROF_CORE_TREE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CP_TREE_ROOT 0xFFFFFFFFu
#define CP_TREE_CHUNK_BITS 12 /* 4096 nodes per chunk */
#define CP_TREE_CHUNK (1u << CP_TREE_CHUNK_BITS)
#define CP_TREE_MAX_CHUNKS 4096 /* 16M nodes at most */

typedef struct cp_tree_node {
    uint64_t key;    /* caller-defined identity of the callee (never 0) */
    uint32_t parent; /* node index or CP_TREE_ROOT */
    uint32_t func;   /* function id, resolved once when the node is made */
    uint64_t calls;
    uint64_t ticks;            /* inclusive, summed over completed calls */
    struct cp_tree_node *hint; /* most recently entered child, or NULL */
    struct cp_tree_node *succ; /* the sibling entered right after this node last time */
    uint32_t index;            /* this node's index */
    uint32_t pad;
} cp_tree_node;

typedef struct cp_tree {
    cp_tree_node *chunks[CP_TREE_MAX_CHUNKS];
    _Atomic uint32_t count;  /* published nodes */
    cp_tree_node *root_hint; /* most recently entered root, or NULL */
    /* owner-private hash: slot -> node index + 1 (0 = empty) */
    uint32_t *slots;
    uint32_t mask;
    uint64_t full; /* lookups refused because the tree hit its limit */
} cp_tree;

/** Initialises an empty tree (allocates the first chunk and the hash).
 *  Returns 0 or -1 (out of memory). */
int cp_tree_init(cp_tree *t);

/** Frees everything. */
void cp_tree_destroy(cp_tree *t);

/** Node by index (index < count). */
static inline cp_tree_node *cp_tree_at(const cp_tree *t, uint32_t i)
{
    return &t->chunks[i >> CP_TREE_CHUNK_BITS][i & (CP_TREE_CHUNK - 1)];
}

/** Published node count, for readers on other threads. */
static inline uint32_t cp_tree_count(const cp_tree *t)
{
    return atomic_load_explicit(&t->count, memory_order_acquire);
}

/** Slow path: hash lookup of (parent, key), and creation if `func` is not
 *  CP_TREE_ROOT. Returns the node, or NULL if absent (func == CP_TREE_ROOT)
 *  or if the tree is full (counted in `full`). Remembers the result as the
 *  parent's hint. */
cp_tree_node *cp_tree_child_slow(cp_tree *t, cp_tree_node *parent, uint64_t key, uint32_t func);

/** Hot path: the child of `parent` (NULL for a root) with `key`, or NULL if
 *  there is none yet. A call in a loop hits the parent's hint: two loads and
 *  a compare. */
static inline cp_tree_node *cp_tree_predict(cp_tree *t, cp_tree_node *parent, uint64_t key)
{
    cp_tree_node **hp = parent ? &parent->hint : &t->root_hint;
    cp_tree_node *h = *hp;
    if (__builtin_expect(h != NULL, 1)) {
        if (h->key == key)
            return h;
        cp_tree_node *s = h->succ;
        if (s && s->key == key) {
            *hp = s;
            return s;
        }
    }
    return NULL;
}

static inline cp_tree_node *cp_tree_find(cp_tree *t, cp_tree_node *parent, uint64_t key)
{
    cp_tree_node *h = cp_tree_predict(t, parent, key);
    return h ? h : cp_tree_child_slow(t, parent, key, CP_TREE_ROOT);
}

/** Finds or adds the child of `parent` with `key`; `func` names it if new.
 *  NULL only when the tree is full. */
static inline cp_tree_node *cp_tree_enter(cp_tree *t, cp_tree_node *parent, uint64_t key,
                                          uint32_t func)
{
    cp_tree_node *h = cp_tree_predict(t, parent, key);
    return h ? h : cp_tree_child_slow(t, parent, key, func);
}

#endif

/*
 * model.c — flat table, tree walk, labels and the merged tree (model.h).
 *
 * Trees come from files and can be deep (recursion) and large: nothing here
 * recurses on the C stack, and every array is sized by the node count.
 */
#include "report/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int set_oom(char *err, size_t errlen)
{
    if (err && errlen)
        snprintf(err, errlen, "out of memory while building the profile's views");
    return -1;
}

/* ---- tree walk ----------------------------------------------------------- */

int cp_tree_walk(const cp_thread *t, cp_walk_fn fn, void *ctx)
{
    size_t n = t->n_nodes;
    if (n == 0)
        return 0;
    /* Children in CSR form: kids[start[k] .. start[k+1]) are node k's
     * children, in index order; slot n stands for the (virtual) root. */
    uint32_t *start = calloc(n + 2, sizeof *start);
    uint32_t *pos = malloc((n + 1) * sizeof *pos);
    uint32_t *kids = malloc(n * sizeof *kids);
    uint32_t *path = malloc(n * sizeof *path);
    uint32_t *cursor = malloc(n * sizeof *cursor);
    int r = -1;
    if (!start || !pos || !kids || !path || !cursor)
        goto out;
    for (size_t i = 0; i < n; i++) {
        uint32_t p = t->nodes[i].parent;
        start[(p == CPYPROF_NONE ? n : p) + 1]++;
    }
    for (size_t k = 0; k <= n; k++)
        start[k + 1] += start[k];
    memcpy(pos, start, (n + 1) * sizeof *pos);
    for (size_t i = 0; i < n; i++) {
        uint32_t p = t->nodes[i].parent;
        kids[pos[p == CPYPROF_NONE ? n : p]++] = (uint32_t)i;
    }

    r = 0;
    for (uint32_t k = start[n]; k < start[n + 1] && r == 0; k++) {
        size_t depth = 1;
        path[0] = kids[k];
        cursor[0] = start[kids[k]];
        r = fn(ctx, t, path, depth, false);
        while (depth > 0 && r == 0) {
            uint32_t node = path[depth - 1];
            if (cursor[depth - 1] < start[node + 1]) {
                uint32_t child = kids[cursor[depth - 1]++];
                path[depth] = child;
                cursor[depth] = start[child];
                depth++;
                r = fn(ctx, t, path, depth, false);
            } else {
                r = fn(ctx, t, path, depth, true);
                depth--;
            }
        }
    }
out:
    free(start);
    free(pos);
    free(kids);
    free(path);
    free(cursor);
    return r;
}

/* Per node of th (which has nodes), the sum of its children's total_ns:
 * what a node's total has beyond it is its self time (the flat and the line
 * tables). calloc'd; NULL when out of memory. */
static uint64_t *child_totals(const cp_thread *th)
{
    uint64_t *sum = calloc(th->n_nodes, sizeof *sum);
    for (size_t i = 0; sum && i < th->n_nodes; i++) {
        uint32_t par = th->nodes[i].parent;
        if (par != CPYPROF_NONE)
            sum[par] += th->nodes[i].total_ns;
    }
    return sum;
}

/* ---- flat table ----------------------------------------------------------- */

typedef struct flat_ctx {
    cp_func_stats *rows; /* indexed by func */
    uint32_t *on_path;   /* per func: how many of its nodes are on the path */
    uint64_t *child_sum; /* per node of the current thread */
} flat_ctx;

static int flat_visit(void *vctx, const cp_thread *t, const uint32_t *path, size_t depth,
                      bool leave)
{
    flat_ctx *c = vctx;
    uint32_t i = path[depth - 1];
    const cp_node *nd = &t->nodes[i];
    if (leave) {
        c->on_path[nd->func]--;
        return 0;
    }
    cp_func_stats *s = &c->rows[nd->func];
    if (c->on_path[nd->func]++ == 0)
        s->total_ns += nd->total_ns;
    s->calls += nd->calls;
    if (nd->total_ns > c->child_sum[i])
        s->self_ns += nd->total_ns - c->child_sum[i];
    s->func = 1; /* marks "seen"; replaced by the index when compacting */
    return 0;
}

int cp_flat_build(const cp_profile *p, long thread, cp_flat *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    flat_ctx c = {0};
    size_t nf = p->n_funcs ? p->n_funcs : 1;
    c.rows = calloc(nf, sizeof *c.rows);
    c.on_path = calloc(nf, sizeof *c.on_path);
    int r = 0;
    if (!c.rows || !c.on_path)
        r = -1;
    for (size_t t = 0; t < p->n_threads && r == 0; t++) {
        if (thread >= 0 && (size_t)thread != t)
            continue;
        const cp_thread *th = &p->threads[t];
        if (th->n_nodes == 0)
            continue;
        c.child_sum = child_totals(th);
        if (!c.child_sum) {
            r = -1;
            break;
        }
        r = cp_tree_walk(th, flat_visit, &c);
        free(c.child_sum);
    }
    if (r == 0) {
        size_t n = 0;
        for (size_t f = 0; f < p->n_funcs; f++) {
            if (c.rows[f].func) {
                c.rows[n] = c.rows[f];
                c.rows[n++].func = (uint32_t)f;
            }
        }
        out->rows = c.rows;
        out->n = n;
        c.rows = NULL;
    }
    free(c.rows);
    free(c.on_path);
    return r ? set_oom(err, errlen) : 0;
}

void cp_flat_free(cp_flat *f)
{
    free(f->rows);
    memset(f, 0, sizeof *f);
}

/* ---- line table ------------------------------------------------------------ */

static uint64_t line_key(const cp_node *nd)
{
    return (uint64_t)nd->func << 32 | nd->line;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct lines_ctx {
    cp_line_stats *rows; /* indexed by key index */
    uint32_t *on_path;   /* per key: how many of its nodes are on the path */
    uint32_t *key_of;    /* per node of the current thread */
    uint64_t *child_sum; /* per node of the current thread */
} lines_ctx;

static int lines_visit(void *vctx, const cp_thread *t, const uint32_t *path, size_t depth,
                       bool leave)
{
    lines_ctx *c = vctx;
    uint32_t i = path[depth - 1];
    uint32_t k = c->key_of[i];
    const cp_node *nd = &t->nodes[i];
    if (leave) {
        c->on_path[k]--;
        return 0;
    }
    cp_line_stats *s = &c->rows[k];
    if (c->on_path[k]++ == 0)
        s->total += nd->total_ns;
    if (nd->total_ns > c->child_sum[i])
        s->self += nd->total_ns - c->child_sum[i];
    return 0;
}

int cp_lines_build(const cp_profile *p, long thread, cp_lines *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    size_t total_nodes = 0;
    for (size_t t = 0; t < p->n_threads; t++)
        if (thread < 0 || (size_t)thread == t)
            total_nodes += p->threads[t].n_nodes;
    uint64_t *keys = malloc((total_nodes ? total_nodes : 1) * sizeof *keys);
    if (!keys)
        return set_oom(err, errlen);
    size_t nk = 0;
    for (size_t t = 0; t < p->n_threads; t++)
        if (thread < 0 || (size_t)thread == t)
            for (size_t i = 0; i < p->threads[t].n_nodes; i++)
                keys[nk++] = line_key(&p->threads[t].nodes[i]);
    qsort(keys, nk, sizeof *keys, cmp_u64);
    size_t nu = 0;
    for (size_t i = 0; i < nk; i++)
        if (nu == 0 || keys[nu - 1] != keys[i])
            keys[nu++] = keys[i];

    lines_ctx c = {0};
    c.rows = calloc(nu ? nu : 1, sizeof *c.rows);
    c.on_path = calloc(nu ? nu : 1, sizeof *c.on_path);
    int r = c.rows && c.on_path ? 0 : -1;
    for (size_t k = 0; k < nu && r == 0; k++) {
        c.rows[k].func = (uint32_t)(keys[k] >> 32);
        c.rows[k].line = (uint32_t)keys[k];
    }
    for (size_t t = 0; t < p->n_threads && r == 0; t++) {
        if (thread >= 0 && (size_t)thread != t)
            continue;
        const cp_thread *th = &p->threads[t];
        if (th->n_nodes == 0)
            continue;
        c.child_sum = child_totals(th);
        c.key_of = malloc(th->n_nodes * sizeof *c.key_of);
        if (!c.child_sum || !c.key_of) {
            free(c.child_sum);
            free(c.key_of);
            r = -1;
            break;
        }
        for (size_t i = 0; i < th->n_nodes; i++) {
            uint64_t key = line_key(&th->nodes[i]);
            const uint64_t *hit = bsearch(&key, keys, nu, sizeof *keys, cmp_u64);
            c.key_of[i] = (uint32_t)(hit - keys);
        }
        r = cp_tree_walk(th, lines_visit, &c);
        free(c.child_sum);
        free(c.key_of);
    }
    free(keys);
    free(c.on_path);
    if (r) {
        free(c.rows);
        return set_oom(err, errlen);
    }
    out->rows = c.rows;
    out->n = nu;
    return 0;
}

void cp_lines_free(cp_lines *l)
{
    free(l->rows);
    memset(l, 0, sizeof *l);
}

/* ---- labels --------------------------------------------------------------- */

const char *cp_func_name(const cp_profile *p, uint32_t func)
{
    const char *s = func < p->n_funcs ? cp_profile_string(p, p->funcs[func].name) : NULL;
    return s ? s : "?";
}

const char *cp_func_file(const cp_profile *p, uint32_t func)
{
    const char *s = func < p->n_funcs ? cp_profile_string(p, p->funcs[func].file) : NULL;
    return s ? s : "?";
}

char *cp_func_location(const cp_profile *p, uint32_t func, char *buf, size_t n)
{
    const char *file = func < p->n_funcs ? cp_profile_string(p, p->funcs[func].file) : NULL;
    if (n)
        buf[0] = '\0';
    if (!file || p->funcs[func].kind == CPYPROF_FUNC_SPECIAL)
        return buf;
    if (p->funcs[func].kind == CPYPROF_FUNC_PYTHON)
        snprintf(buf, n, "%s:%u", file, p->funcs[func].line);
    else
        snprintf(buf, n, "%s", file);
    return buf;
}

size_t cp_func_label(const cp_profile *p, uint32_t func, char *buf, size_t n)
{
    const char *name = cp_func_name(p, func);
    const char *file = func < p->n_funcs ? cp_profile_string(p, p->funcs[func].file) : NULL;
    int r;
    if (!file || p->funcs[func].kind == CPYPROF_FUNC_SPECIAL)
        r = snprintf(buf, n, "%s", name);
    else if (p->funcs[func].kind == CPYPROF_FUNC_PYTHON)
        r = snprintf(buf, n, "%s (%s:%u)", name, file, p->funcs[func].line);
    else
        r = snprintf(buf, n, "%s (%s)", name, file);
    return r < 0 ? 0 : (size_t)r;
}

char *cp_thread_name(const cp_profile *p, size_t thread, char *buf, size_t n)
{
    const char *s = cp_profile_string(p, p->threads[thread].rec.name);
    if (s && *s)
        snprintf(buf, n, "%s", s);
    else
        snprintf(buf, n, "#%u", p->threads[thread].rec.id);
    return buf;
}

/* ---- merged tree ----------------------------------------------------------- */

/* Folded stacks use ';' between frames and one line per stack, so neither
 * may occur inside a label. */
static void sanitize(char *s)
{
    for (; *s; s++) {
        if (*s == ';')
            *s = ',';
        else if ((unsigned char)*s < 0x20 || *s == 0x7F)
            *s = ' ';
    }
}

typedef struct label_entry {
    char *label, *name, *detail;
    int kind;
    uint32_t owner; /* func index, or n_funcs + thread index */
} label_entry;

static int cmp_label(const void *a, const void *b)
{
    return strcmp(((const label_entry *)a)->label, ((const label_entry *)b)->label);
}

static char *xprintf(const char *fmt, const char *a)
{
    int n = snprintf(NULL, 0, fmt, a);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s)
        snprintf(s, (size_t)n + 1, fmt, a);
    return s;
}

/* Labels for every function (and thread), sorted and deduplicated into
 * m->frames; frame_of[owner] gets each owner's frame index. */
static int build_frames(const cp_profile *p, bool per_thread, cp_merged *m, uint32_t *frame_of)
{
    size_t n_owners = p->n_funcs + (per_thread ? p->n_threads : 0);
    label_entry *e = calloc(n_owners ? n_owners : 1, sizeof *e);
    if (!e)
        return -1;
    int r = 0;
    char tmp[512];
    for (size_t i = 0; i < n_owners && r == 0; i++) {
        e[i].owner = (uint32_t)i;
        if (i < p->n_funcs) {
            uint32_t f = (uint32_t)i;
            size_t len = cp_func_label(p, f, NULL, 0);
            e[i].label = malloc(len + 1);
            if (e[i].label)
                cp_func_label(p, f, e[i].label, len + 1);
            e[i].name = xprintf("%s", cp_func_name(p, f));
            cp_func_location(p, f, tmp, sizeof tmp);
            e[i].detail = tmp[0] ? xprintf("%s", tmp) : NULL;
            e[i].kind = (int)p->funcs[f].kind;
            if (!e[i].label || !e[i].name || (tmp[0] && !e[i].detail))
                r = -1;
        } else {
            size_t t = i - p->n_funcs;
            e[i].label = xprintf("thread %s", cp_thread_name(p, t, tmp, sizeof tmp));
            e[i].name = e[i].label ? xprintf("%s", e[i].label) : NULL;
            e[i].kind = CPYPROF_FUNC_SPECIAL;
            if (!e[i].label || !e[i].name)
                r = -1;
        }
        if (e[i].label)
            sanitize(e[i].label);
    }
    if (r == 0) {
        qsort(e, n_owners, sizeof *e, cmp_label);
        m->frames = malloc((n_owners ? n_owners : 1) * sizeof *m->frames);
        if (!m->frames)
            r = -1;
    }
    for (size_t i = 0; i < n_owners; i++) {
        bool dup =
            r == 0 && m->n_frames > 0 && strcmp(m->frames[m->n_frames - 1].label, e[i].label) == 0;
        if (r == 0 && !dup)
            m->frames[m->n_frames++] = (cp_mframe){
                e[i].label,
                e[i].name,
                e[i].detail,
                e[i].kind,
                e[i].owner < p->n_funcs ? e[i].owner : CPYPROF_NONE,
                e[i].owner < p->n_funcs ? CPYPROF_NONE : (uint32_t)(e[i].owner - p->n_funcs),
            };
        else {
            free(e[i].label);
            free(e[i].name);
            free(e[i].detail);
        }
        if (r == 0)
            frame_of[e[i].owner] = (uint32_t)(m->n_frames - 1);
    }
    free(e);
    return r;
}

/* Open-addressing map from (parent, frame) to a merged node. */
typedef struct node_map {
    uint64_t *keys; /* parent << 32 | frame; UINT64_MAX = empty */
    uint32_t *vals;
    size_t cap, used;
} node_map;

static size_t map_slot(const node_map *h, uint64_t key)
{
    size_t i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 17) & (h->cap - 1);
    while (h->keys[i] != UINT64_MAX && h->keys[i] != key)
        i = (i + 1) & (h->cap - 1);
    return i;
}

static int map_grow(node_map *h)
{
    node_map g = {.cap = h->cap ? h->cap * 2 : 1024};
    g.keys = malloc(g.cap * sizeof *g.keys);
    g.vals = malloc(g.cap * sizeof *g.vals);
    if (!g.keys || !g.vals) {
        free(g.keys);
        free(g.vals);
        return -1;
    }
    memset(g.keys, 0xFF, g.cap * sizeof *g.keys);
    for (size_t i = 0; i < h->cap; i++) {
        if (h->keys[i] != UINT64_MAX) {
            size_t s = map_slot(&g, h->keys[i]);
            g.keys[s] = h->keys[i];
            g.vals[s] = h->vals[i];
        }
    }
    g.used = h->used;
    free(h->keys);
    free(h->vals);
    *h = g;
    return 0;
}

typedef struct merge_state {
    cp_merged *m;
    size_t cap;
    node_map map;
} merge_state;

/* The child of `parent` with `frame`, created if needed; CPYPROF_NONE when
 * out of memory. */
static uint32_t child_of(merge_state *s, uint32_t parent, uint32_t frame)
{
    if ((s->map.used + 1) * 2 > s->map.cap && map_grow(&s->map))
        return CPYPROF_NONE;
    uint64_t key = (uint64_t)parent << 32 | frame;
    size_t slot = map_slot(&s->map, key);
    if (s->map.keys[slot] == key)
        return s->map.vals[slot];
    cp_merged *m = s->m;
    if (m->n == s->cap) {
        size_t cap = s->cap * 2;
        cp_mnode *nn = realloc(m->nodes, cap * sizeof *nn);
        if (!nn)
            return CPYPROF_NONE;
        m->nodes = nn;
        s->cap = cap;
    }
    uint32_t idx = (uint32_t)m->n++;
    m->nodes[idx] = (cp_mnode){.parent = parent,
                               .frame = frame,
                               .first_child = CPYPROF_NONE,
                               .next_sibling = CPYPROF_NONE};
    s->map.keys[slot] = key;
    s->map.vals[slot] = idx;
    s->map.used++;
    return idx;
}

typedef struct link_entry {
    uint32_t parent, frame, node;
} link_entry;

static int cmp_link(const void *a, const void *b)
{
    const link_entry *x = a, *y = b;
    if (x->parent != y->parent)
        return x->parent < y->parent ? -1 : 1;
    if (x->frame != y->frame)
        return x->frame < y->frame ? -1 : 1;
    return 0;
}

/* Totals bottom-up, depths top-down, and sibling lists in label order (frame
 * indices are in label order already). */
static int finish_merged(cp_merged *m)
{
    for (size_t i = 0; i < m->n; i++)
        m->nodes[i].total_ns = m->nodes[i].self_ns;
    for (size_t i = m->n; i-- > 1;)
        m->nodes[m->nodes[i].parent].total_ns += m->nodes[i].total_ns;
    for (size_t i = 1; i < m->n; i++)
        m->nodes[i].depth = m->nodes[m->nodes[i].parent].depth + 1;
    if (m->n < 2)
        return 0;
    link_entry *l = malloc((m->n - 1) * sizeof *l);
    if (!l)
        return -1;
    for (size_t i = 1; i < m->n; i++)
        l[i - 1] = (link_entry){m->nodes[i].parent, m->nodes[i].frame, (uint32_t)i};
    qsort(l, m->n - 1, sizeof *l, cmp_link);
    for (size_t k = m->n - 1; k-- > 0;) {
        cp_mnode *par = &m->nodes[l[k].parent];
        m->nodes[l[k].node].next_sibling = par->first_child;
        par->first_child = l[k].node;
    }
    free(l);
    return 0;
}

int cp_merged_build(const cp_profile *p, bool per_thread, cp_merged *m, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    merge_state s = {.m = m, .cap = 1024};
    size_t n_owners = p->n_funcs + p->n_threads;
    uint32_t *frame_of = malloc((n_owners ? n_owners : 1) * sizeof *frame_of);
    uint32_t *map_nodes = NULL;
    m->nodes = malloc(s.cap * sizeof *m->nodes);
    int r = -1;
    if (!frame_of || !m->nodes || build_frames(p, per_thread, m, frame_of))
        goto out;
    m->nodes[0] = (cp_mnode){.parent = CPYPROF_NONE,
                             .frame = CPYPROF_NONE,
                             .first_child = CPYPROF_NONE,
                             .next_sibling = CPYPROF_NONE};
    m->n = 1;
    for (size_t t = 0; t < p->n_threads; t++) {
        const cp_thread *th = &p->threads[t];
        if (th->n_nodes == 0)
            continue;
        uint32_t base = 0;
        if (per_thread && (base = child_of(&s, 0, frame_of[p->n_funcs + t])) == CPYPROF_NONE)
            goto out;
        free(map_nodes);
        map_nodes = malloc(th->n_nodes * sizeof *map_nodes);
        if (!map_nodes)
            goto out;
        /* Parents come before their children, so one pass in index order
         * always finds the parent's merged node already made. */
        uint64_t *child_sum = calloc(th->n_nodes, sizeof *child_sum);
        if (!child_sum)
            goto out;
        for (size_t i = 0; i < th->n_nodes; i++)
            if (th->nodes[i].parent != CPYPROF_NONE)
                child_sum[th->nodes[i].parent] += th->nodes[i].total_ns;
        for (size_t i = 0; i < th->n_nodes; i++) {
            const cp_node *nd = &th->nodes[i];
            uint32_t par = nd->parent == CPYPROF_NONE ? base : map_nodes[nd->parent];
            uint32_t mi = child_of(&s, par, frame_of[nd->func]);
            if (mi == CPYPROF_NONE) {
                free(child_sum);
                goto out;
            }
            map_nodes[i] = mi;
            m->nodes[mi].calls += nd->calls;
            if (nd->total_ns > child_sum[i])
                m->nodes[mi].self_ns += nd->total_ns - child_sum[i];
        }
        free(child_sum);
    }
    r = finish_merged(m);
out:
    free(frame_of);
    free(map_nodes);
    free(s.map.keys);
    free(s.map.vals);
    if (r) {
        cp_merged_free(m);
        return set_oom(err, errlen);
    }
    return 0;
}

void cp_merged_preorder(const cp_merged *m, uint32_t *order)
{
    if (m->n == 0)
        return;
    size_t k = 0;
    uint32_t n = 0;
    for (;;) {
        order[k++] = n;
        if (m->nodes[n].first_child != CPYPROF_NONE) {
            n = m->nodes[n].first_child;
            continue;
        }
        while (n != 0 && m->nodes[n].next_sibling == CPYPROF_NONE)
            n = m->nodes[n].parent;
        if (n == 0)
            return;
        n = m->nodes[n].next_sibling;
    }
}

void cp_merged_free(cp_merged *m)
{
    for (size_t i = 0; i < m->n_frames; i++) {
        free(m->frames[i].label);
        free(m->frames[i].name);
        free(m->frames[i].detail);
    }
    free(m->frames);
    free(m->nodes);
    memset(m, 0, sizeof *m);
}

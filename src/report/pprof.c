/*
 * pprof.c — profile.proto encoding of a loaded profile (see pprof.h).
 *
 * Field numbers (perftools.profiles): Profile: sample_type 1, sample 2,
 * mapping 3, location 4, function 5, string_table 6, time_nanos 9,
 * duration_nanos 10, period_type 11, period 12, comment 13,
 * default_sample_type 14. ValueType: type 1, unit 2 (string indices).
 * Sample: location_id 1, value 2 (packed), label 3. Label: key 1, str 2.
 * Mapping: id 1, filename 5, has_functions 7, has_filenames 8,
 * has_line_numbers 9. Location: id 1, mapping_id 2, line 4. Line:
 * function_id 1, line 2. Function: id 1, name 2, system_name 3,
 * filename 4, start_line 5.
 */
#include "report/pprof.h"
#include "report/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- string table: "" is index 0 ------------------------------------------ */

typedef struct strtab {
    const char **s;
    size_t *len;
    size_t n, cap;
    uint32_t *slots; /* open addressing: index + 1, 0 = empty */
    size_t nslots;
    bool oom;
} strtab;

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

static bool st_rehash(strtab *t, size_t nslots)
{
    uint32_t *slots = calloc(nslots, sizeof *slots);
    if (!slots)
        return false;
    for (size_t i = 0; i < t->n; i++) {
        size_t k = hash_bytes(t->s[i], t->len[i]) & (nslots - 1);
        while (slots[k])
            k = (k + 1) & (nslots - 1);
        slots[k] = (uint32_t)i + 1;
    }
    free(t->slots);
    t->slots = slots;
    t->nslots = nslots;
    return true;
}

/* The index of string s (the table keeps its own copy). */
static uint64_t st_id(strtab *t, const char *s)
{
    if (!s)
        s = "";
    size_t n = strlen(s);
    if (t->oom)
        return 0;
    if ((t->n + 1) * 2 > t->nslots && !st_rehash(t, t->nslots ? t->nslots * 2 : 1024))
        goto oom;
    size_t k = hash_bytes(s, n) & (t->nslots - 1);
    for (; t->slots[k]; k = (k + 1) & (t->nslots - 1)) {
        uint32_t i = t->slots[k] - 1;
        if (t->len[i] == n && memcmp(t->s[i], s, n) == 0)
            return i;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        const char **ns = realloc(t->s, cap * sizeof *ns);
        if (!ns)
            goto oom;
        t->s = ns;
        size_t *nl = realloc(t->len, cap * sizeof *nl);
        if (!nl)
            goto oom;
        t->len = nl;
        t->cap = cap;
    }
    char *copy = malloc(n + 1);
    if (!copy)
        goto oom;
    memcpy(copy, s, n + 1);
    t->s[t->n] = copy;
    t->len[t->n] = n;
    t->slots[k] = (uint32_t)++t->n;
    return t->n - 1;
oom:
    t->oom = true;
    return 0;
}

static void st_free(strtab *t)
{
    for (size_t i = 0; i < t->n; i++)
        free((char *)t->s[i]);
    free(t->s);
    free(t->len);
    free(t->slots);
}

/* ---- locations: one per (function, line) ---------------------------------- */

typedef struct loctab {
    uint64_t *keys; /* func << 32 | line, + 1 so that 0 means empty */
    uint32_t *ids;
    size_t n, nslots;
    bool oom;
} loctab;

/* Location id (from 1) of (func, line); *fresh says it is new. */
static uint64_t loc_id(loctab *t, uint32_t func, uint32_t line, bool *fresh)
{
    *fresh = false;
    if (t->oom)
        return 0;
    if ((t->n + 1) * 2 > t->nslots) {
        size_t ns = t->nslots ? t->nslots * 2 : 1024;
        uint64_t *keys = calloc(ns, sizeof *keys);
        uint32_t *ids = calloc(ns, sizeof *ids);
        if (!keys || !ids) {
            free(keys);
            free(ids);
            t->oom = true;
            return 0;
        }
        for (size_t i = 0; i < t->nslots; i++)
            if (t->keys[i]) {
                size_t k = (t->keys[i] * 0x9E3779B97F4A7C15ull >> 20) & (ns - 1);
                while (keys[k])
                    k = (k + 1) & (ns - 1);
                keys[k] = t->keys[i];
                ids[k] = t->ids[i];
            }
        free(t->keys);
        free(t->ids);
        t->keys = keys;
        t->ids = ids;
        t->nslots = ns;
    }
    uint64_t key = ((uint64_t)func << 32 | line) + 1;
    size_t k = (key * 0x9E3779B97F4A7C15ull >> 20) & (t->nslots - 1);
    for (; t->keys[k]; k = (k + 1) & (t->nslots - 1))
        if (t->keys[k] == key)
            return t->ids[k];
    t->keys[k] = key;
    t->ids[k] = (uint32_t)++t->n;
    *fresh = true;
    return t->n;
}

/* ---- the profile ---------------------------------------------------------- */

static void value_type(cp_pb *out, uint32_t field, strtab *st, const char *type, const char *unit)
{
    cp_pb m = {0};
    cp_pb_uint(&m, 1, st_id(st, type));
    cp_pb_uint(&m, 2, st_id(st, unit));
    cp_pb_bytes(out, field, m.data, m.len);
    out->oom |= m.oom;
    cp_pb_free(&m);
}

typedef struct enc {
    const cp_profile *p;
    strtab st;
    loctab lt;
    cp_pb samples, locs, msg, sub;
    uint64_t *path;
    size_t path_cap;
    uint64_t thread_key;
    bool unknown_used; /* a node's function was not defined: function n_funcs + 1 */
} enc;

/* A tree as the encoder sees it: node i has a parent (< i or NONE), a
 * function index (into p->funcs, or n_funcs for "[unknown]") and a line. */
typedef struct tree_view {
    size_t n;
    uint32_t (*parent)(const struct tree_view *tv, size_t i);
    uint32_t (*func)(const struct tree_view *tv, size_t i);
    uint32_t (*line)(const struct tree_view *tv, size_t i);
    const void *nodes;
    const cp_profile *p;
    bool sampled;
} tree_view;

/* One Sample: the path from node i to its root (locations made as they
 * are first seen), the values, the thread label. */
static bool emit(enc *e, const tree_view *tv, size_t i, const uint64_t *values, size_t nv,
                 uint64_t thread_name)
{
    size_t depth = 0;
    for (uint32_t k = (uint32_t)i; k != CPYPROF_NONE && k < tv->n;) {
        if (depth == e->path_cap) {
            size_t cap = e->path_cap ? e->path_cap * 2 : 256;
            uint64_t *np = realloc(e->path, cap * sizeof *np);
            if (!np)
                return false;
            e->path = np;
            e->path_cap = cap;
        }
        uint32_t func = tv->func(tv, k), line = tv->line(tv, k);
        if (func >= e->p->n_funcs) {
            func = (uint32_t)e->p->n_funcs;
            e->unknown_used = true;
        }
        bool fresh;
        uint64_t id = loc_id(&e->lt, func, line, &fresh);
        if (fresh) { /* Location {id, mapping_id, line {function_id, line}} */
            cp_pb_reset(&e->msg);
            cp_pb_reset(&e->sub);
            cp_pb_uint(&e->sub, 1, (uint64_t)func + 1);
            cp_pb_uint(&e->sub, 2, line);
            cp_pb_uint(&e->msg, 1, id);
            cp_pb_uint(&e->msg, 2, 1);
            cp_pb_bytes(&e->msg, 4, e->sub.data, e->sub.len);
            cp_pb_bytes(&e->locs, 4, e->msg.data, e->msg.len);
        }
        e->path[depth++] = id;
        uint32_t parent = tv->parent(tv, k);
        k = parent < k ? parent : CPYPROF_NONE;
    }
    cp_pb_reset(&e->msg);
    cp_pb_packed(&e->msg, 1, e->path, depth);
    cp_pb_packed(&e->msg, 2, values, nv);
    cp_pb_reset(&e->sub);
    cp_pb_uint(&e->sub, 1, e->thread_key);
    cp_pb_uint(&e->sub, 2, thread_name);
    cp_pb_bytes(&e->msg, 3, e->sub.data, e->sub.len);
    cp_pb_bytes(&e->samples, 2, e->msg.data, e->msg.len);
    return !(e->samples.oom || e->msg.oom || e->sub.oom || e->locs.oom || e->lt.oom);
}

/* The call/sample trees (cp_node: function indices). */
static uint32_t node_parent(const tree_view *tv, size_t i)
{
    return ((const cp_node *)tv->nodes)[i].parent;
}
static uint32_t node_func(const tree_view *tv, size_t i)
{
    return ((const cp_node *)tv->nodes)[i].func;
}
static uint32_t node_line(const tree_view *tv, size_t i)
{
    const cp_node *nd = &((const cp_node *)tv->nodes)[i];
    if (tv->sampled && nd->line)
        return nd->line; /* the line the sampled frame was executing */
    return nd->func < tv->p->n_funcs ? tv->p->funcs[nd->func].line : 0;
}

/* The allocation trees (file function ids, resolved here). */
static uint32_t alloc_parent(const tree_view *tv, size_t i)
{
    return ((const struct cpyprof_alloc_node_rec *)tv->nodes)[i].parent;
}
static uint32_t alloc_func(const tree_view *tv, size_t i)
{
    long f =
        cp_profile_func_index(tv->p, ((const struct cpyprof_alloc_node_rec *)tv->nodes)[i].func);
    return f >= 0 ? (uint32_t)f : CPYPROF_NONE;
}
static uint32_t alloc_line(const tree_view *tv, size_t i)
{
    uint32_t f = alloc_func(tv, i);
    return f < tv->p->n_funcs ? tv->p->funcs[f].line : 0;
}

int cp_pprof_encode(const cp_profile *p, const cp_alloc_data *alloc, cp_pb *out, char *err,
                    size_t errlen)
{
    cp_pb_reset(out);
    enc e = {.p = p};
    uint64_t *childsum = NULL;
    int rc = -1;
    st_id(&e.st, ""); /* index 0 */

    bool sampled = p->samples;
    bool with_alloc = alloc && alloc->present;
    size_t nv = with_alloc ? 4 : 2;
    const char *clock = cp_profile_meta(p, "sample_clock");
    const char *time_type =
        sampled ? (clock && strcmp(clock, "wall") == 0 ? "wall" : "cpu") : "wall";
    uint64_t period = 0;
    if (sampled) {
        const char *rate = cp_profile_meta(p, "sample_rate");
        unsigned long long hz = rate ? strtoull(rate, NULL, 10) : 0;
        period = hz ? 1000000000ull / hz : 0;
    }
    value_type(out, 1, &e.st, sampled ? "samples" : "calls", "count");
    value_type(out, 1, &e.st, time_type, "nanoseconds");
    if (with_alloc) {
        value_type(out, 1, &e.st, "alloc_objects", "count");
        value_type(out, 1, &e.st, "alloc_space", "bytes");
    }
    e.thread_key = st_id(&e.st, "thread");

    for (size_t t = 0; t < p->n_threads; t++) {
        const cp_thread *th = &p->threads[t];
        if (th->n_nodes == 0)
            continue;
        char name[256];
        uint64_t thread_name = st_id(&e.st, cp_thread_name(p, t, name, sizeof name));
        childsum = calloc(th->n_nodes, sizeof *childsum);
        if (!childsum)
            goto oom;
        for (size_t i = 0; i < th->n_nodes; i++)
            if (th->nodes[i].parent != CPYPROF_NONE && th->nodes[i].parent < i)
                childsum[th->nodes[i].parent] += th->nodes[i].total_ns;
        tree_view tv = {th->n_nodes, node_parent, node_func, node_line, th->nodes, p, sampled};
        for (size_t i = 0; i < th->n_nodes; i++) {
            const cp_node *nd = &th->nodes[i];
            uint64_t self = nd->total_ns > childsum[i] ? nd->total_ns - childsum[i] : 0;
            uint64_t values[4] = {0, 0, 0, 0};
            values[0] = sampled ? self : nd->calls;
            values[1] = sampled ? self * period : self;
            if ((values[0] || values[1]) && !emit(&e, &tv, i, values, nv, thread_name))
                goto oom;
        }
        free(childsum);
        childsum = NULL;
    }
    for (size_t t = 0; with_alloc && t < alloc->n_threads; t++) {
        const cp_alloc_thread *at = &alloc->threads[t];
        long ti = cp_profile_thread_index(p, at->thread_id);
        char name[256];
        uint64_t thread_name =
            st_id(&e.st, ti >= 0 ? cp_thread_name(p, (size_t)ti, name, sizeof name) : "?");
        tree_view tv = {at->n_nodes, alloc_parent, alloc_func, alloc_line, at->nodes, p, false};
        for (size_t i = 0; i < at->n_nodes; i++) {
            uint64_t values[4] = {0, 0, at->nodes[i].allocs, at->nodes[i].alloc_bytes};
            if ((values[2] || values[3]) && !emit(&e, &tv, i, values, nv, thread_name))
                goto oom;
        }
    }
    cp_pb *msg = &e.msg;
    strtab *st = &e.st;
    /* The samples and locations, already framed as fields 2 and 4. */
    cp_pb_raw(out, e.samples.data, e.samples.len);
    cp_pb_raw(out, e.locs.data, e.locs.len);
    /* Mapping: the interpreter. */
    const char *exe = cp_profile_meta(p, "python_executable");
    cp_pb_reset(msg);
    cp_pb_uint(msg, 1, 1);
    cp_pb_uint(msg, 5, st_id(st, exe ? exe : "python"));
    cp_pb_uint(msg, 7, 1);
    cp_pb_uint(msg, 8, 1);
    cp_pb_uint(msg, 9, sampled ? 1 : 0);
    cp_pb_bytes(out, 3, msg->data, msg->len);
    /* Functions: id = index + 1. */
    for (size_t i = 0; i < p->n_funcs; i++) {
        const struct cpyprof_func_rec *f = &p->funcs[i];
        const char *name = cp_profile_string(p, f->name);
        cp_pb_reset(msg);
        cp_pb_uint(msg, 1, (uint64_t)i + 1);
        uint64_t nid = st_id(st, name ? name : "[unknown]");
        cp_pb_uint(msg, 2, nid);
        cp_pb_uint(msg, 3, nid);
        cp_pb_uint(msg, 4, st_id(st, cp_profile_string(p, f->file)));
        cp_pb_uint(msg, 5, f->line);
        cp_pb_bytes(out, 5, msg->data, msg->len);
    }
    if (e.unknown_used) { /* the function of nodes whose function is not defined */
        cp_pb_reset(msg);
        cp_pb_uint(msg, 1, (uint64_t)p->n_funcs + 1);
        uint64_t nid = st_id(st, "[unknown]");
        cp_pb_uint(msg, 2, nid);
        cp_pb_uint(msg, 3, nid);
        cp_pb_bytes(out, 5, msg->data, msg->len);
    }
    const char *start = cp_profile_meta(p, "start_unix_ns");
    if (start)
        cp_pb_uint(out, 9, strtoull(start, NULL, 10));
    if (p->has_trailer && p->trailer.duration_ns > 0)
        cp_pb_uint(out, 10, (uint64_t)p->trailer.duration_ns);
    if (sampled) {
        value_type(out, 11, st, time_type, "nanoseconds");
        cp_pb_uint(out, 12, period);
    }
    cp_pb_uint(out, 13, st_id(st, "cpyprof"));
    cp_pb_uint(out, 14, st_id(st, time_type));
    /* The string table last: every string is interned by now. */
    for (size_t i = 0; i < st->n; i++)
        cp_pb_bytes(out, 6, st->s[i], st->len[i]);
    if (out->oom || st->oom || msg->oom)
        goto oom;
    rc = 0;
    goto done;
oom:
    snprintf(err, errlen, "out of memory while encoding the pprof profile");
done:
    st_free(&e.st);
    free(e.lt.keys);
    free(e.lt.ids);
    cp_pb_free(&e.samples);
    cp_pb_free(&e.locs);
    cp_pb_free(&e.msg);
    cp_pb_free(&e.sub);
    free(e.path);
    free(childsum);
    return rc;
}

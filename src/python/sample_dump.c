/*
 * sample_dump.c — writing sampled stacks: one SAMPLES chunk per thread, and
 * before them the names of the functions the writer made from CODE entries
 * (code objects sampled before they were registered).
 *
 * Runs where cp_dump_profile runs: with the GIL (stop, atexit; the writer
 * thread is joined) or on the writer thread after SIGTERM (the trees and the
 * private table belong to the writer thread, so it is their only user). It
 * never writes the symbol table, which GIL holders may still be appending
 * to: a private function equal to a registered one (same name, file, first
 * line, read from the published part of the table) takes its id; the others
 * get new ids after the `nstrings`/`nfuncs` already written. Native frames
 * (--native) are private functions of kind BUILTIN: name = symbol, file =
 * object basename, line 0, so reports show them as "deflate (libz.so.1)".
 */
#include "python/sample.h"

#include "cpyprof/format.h"

#include <stdlib.h>
#include <string.h>

/* (name, file, line) of the registered Python functions, for lookups. */
typedef struct known {
    uint32_t *slots; /* func id + 1 */
    uint32_t mask;
} known;

static uint64_t hash3(const char *a, uint32_t al, const char *b, uint32_t bl, uint32_t line)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint32_t i = 0; i < al; i++)
        h = (h ^ (unsigned char)a[i]) * 0x100000001b3ull;
    h ^= 0xff;
    for (uint32_t i = 0; i < bl; i++)
        h = (h ^ (unsigned char)b[i]) * 0x100000001b3ull;
    return (h ^ line) * 0x9E3779B97F4A7C15ull;
}

static const char *sym(uint32_t id, uint32_t ns, uint32_t *len)
{
    if (id >= ns) {
        *len = 0;
        return "";
    }
    return cp_symtab_str(&cp_g.syms, id, len);
}

static int known_build(known *k, uint32_t ns, uint32_t nf)
{
    uint32_t cap = 64;
    while (cap < nf * 2u + 2)
        cap *= 2;
    k->slots = calloc(cap, sizeof *k->slots);
    k->mask = cap - 1;
    if (!k->slots)
        return -1;
    for (uint32_t i = 0; i < nf; i++) {
        const cp_func_info *f = cp_symtab_get_func(&cp_g.syms, i);
        if (f->kind != CPYPROF_FUNC_PYTHON)
            continue;
        uint32_t nl, fl;
        const char *n = sym(f->name, ns, &nl), *fi = sym(f->file, ns, &fl);
        uint32_t j = (uint32_t)hash3(n, nl, fi, fl, f->line) & k->mask;
        while (k->slots[j])
            j = (j + 1) & k->mask;
        k->slots[j] = i + 1;
    }
    return 0;
}

static uint32_t known_find(const known *k, uint32_t ns, const cp_sfunc *s)
{
    uint32_t nl = (uint32_t)strlen(s->name), fl = (uint32_t)strlen(s->file);
    uint32_t j = (uint32_t)hash3(s->name, nl, s->file, fl, s->line) & k->mask;
    for (; k->slots[j]; j = (j + 1) & k->mask) {
        const cp_func_info *f = cp_symtab_get_func(&cp_g.syms, k->slots[j] - 1);
        uint32_t a, b;
        const char *n = sym(f->name, ns, &a), *fi = sym(f->file, ns, &b);
        if (f->line == s->line && a == nl && b == fl && memcmp(n, s->name, nl) == 0 &&
            memcmp(fi, s->file, fl) == 0)
            return k->slots[j] - 1;
    }
    return CPYPROF_NONE;
}

static int put(uint32_t type, cp_buf *b, char *err, size_t errlen)
{
    if (b->oom) {
        snprintf(err, errlen, "out of memory while writing samples");
        return -1;
    }
    return cp_writer_chunk(&cp_g.writer, type, b->data, b->len, err, errlen);
}

/* Maps private ids to file ids; writes STRINGS/FUNCS for the new ones. */
static uint32_t *map_private(uint32_t ns, uint32_t nf, int *rc, char *err, size_t errlen)
{
    const cp_sfuncs *sf = cp_sample_private_funcs();
    uint32_t *map = calloc(sf->n ? sf->n : 1, sizeof *map);
    known k = {0};
    if (!map || (sf->n && known_build(&k, ns, nf) != 0)) {
        free(map);
        snprintf(err, errlen, "out of memory while writing samples");
        *rc = -1;
        return NULL;
    }
    uint32_t fresh = 0;
    for (uint32_t i = 0; i < sf->n; i++) {
        /* native frames (--native) are never in the symbol table */
        map[i] = sf->items[i].kind == CPYPROF_FUNC_PYTHON ? known_find(&k, ns, &sf->items[i])
                                                          : CPYPROF_NONE;
        if (map[i] == CPYPROF_NONE)
            map[i] = nf + fresh++;
    }
    free(k.slots);
    if (fresh == 0)
        return map;
    cp_buf s, f;
    cp_buf_init(&s);
    cp_buf_init(&f);
    cp_buf_u32(&s, ns);
    cp_buf_u32(&s, fresh * 2);
    cp_buf_u32(&f, fresh);
    uint32_t next = 0;
    for (uint32_t i = 0; i < sf->n; i++) {
        if (map[i] < nf)
            continue;
        cp_buf_lstr(&s, sf->items[i].name, strlen(sf->items[i].name));
        cp_buf_lstr(&s, sf->items[i].file, strlen(sf->items[i].file));
        cp_buf_u32(&f, map[i]);
        cp_buf_u32(&f, ns + 2 * next);
        cp_buf_u32(&f, ns + 2 * next + 1);
        cp_buf_u32(&f, sf->items[i].line);
        cp_buf_u32(&f, sf->items[i].kind);
        cp_buf_u32(&f, 0);
        next++;
    }
    *rc = put(CPYPROF_CHUNK_STRINGS, &s, err, errlen);
    if (*rc == 0)
        *rc = put(CPYPROF_CHUNK_FUNCS, &f, err, errlen);
    cp_buf_free(&s);
    cp_buf_free(&f);
    return map;
}

static int write_thread_samples(const cp_thread *th, const uint32_t *map, uint32_t nprivate,
                                uint32_t nf, char *err, size_t errlen)
{
    const cp_tree *t = &th->sample->agg.tree;
    uint32_t count = cp_tree_count(t);
    cp_buf b;
    cp_buf_init(&b);
    cp_buf_u32(&b, th->id);
    cp_buf_u32(&b, count);
    for (uint32_t i = 0; i < count; i++) {
        const cp_tree_node *n = cp_tree_at(t, i);
        uint32_t func = n->func;
        if (func & CP_SAMPLE_PRIVATE_ID) {
            uint32_t k = func & ~CP_SAMPLE_PRIVATE_ID;
            func = k < nprivate ? map[k] : CPYPROF_NONE;
        } else if (func >= nf) {
            func = CPYPROF_NONE; /* registered after the FUNCS chunk: cannot happen */
        }
        if (func == CPYPROF_NONE)
            func = 0; /* keep the tree well-formed; reported under function 0 */
        cp_buf_u32(&b, n->parent == CP_TREE_ROOT ? CPYPROF_NONE : n->parent);
        cp_buf_u32(&b, func);
        cp_buf_u32(&b, cp_sagg_node_line(n));
        cp_buf_u32(&b, 0);
        cp_buf_u64(&b, n->calls);
        cp_buf_u64(&b, n->ticks);
    }
    int rc = put(CPYPROF_CHUNK_SAMPLES, &b, err, errlen);
    cp_buf_free(&b);
    return rc;
}

/* A second META chunk, at the end (the first is written at start): counts
 * known only now. Readers keep the union of META chunks. */
static int write_end_meta(char *err, size_t errlen)
{
    char v[32];
    cp_buf b;
    cp_buf_init(&b);
    uint64_t n = atomic_load(&cp_sample_handler_count);
    snprintf(v, sizeof v, "%llu", (unsigned long long)n);
    cp_buf_meta(&b, "sample_handler_calls", v);
    snprintf(
        v, sizeof v, "%llu",
        (unsigned long long)cp_clock_delta_ns(&cp_g.clock, atomic_load(&cp_sample_handler_ticks)));
    cp_buf_meta(&b, "sample_handler_ns", v);
    snprintf(v, sizeof v, "%llu", (unsigned long long)atomic_load(&cp_sample_names_copied));
    cp_buf_meta(&b, "sample_names_copied", v);
    if (cp_g.cfg.clock != CP_CLOCK_WALL)
        goto out;
    snprintf(v, sizeof v, "%llu", (unsigned long long)atomic_load(&cp_sample_wall_signals));
    cp_buf_meta(&b, "sample_wall_signals", v);
    snprintf(v, sizeof v, "%llu", (unsigned long long)atomic_load(&cp_sample_wall_repeats));
    cp_buf_meta(&b, "sample_wall_repeats", v);
    snprintf(v, sizeof v, "%llu", (unsigned long long)atomic_load(&cp_sample_wall_cpu_reads));
    cp_buf_meta(&b, "sample_wall_cpu_reads", v);
    snprintf(v, sizeof v, "%llu", (unsigned long long)atomic_load(&cp_sample_wall_writer_unparks));
    cp_buf_meta(&b, "sample_wall_writer_unparks", v);
out:;
    int rc = put(CPYPROF_CHUNK_META, &b, err, errlen);
    cp_buf_free(&b);
    return rc;
}

int cp_sample_dump(uint32_t nstrings, uint32_t nfuncs, char *err, size_t errlen)
{
    int rc = write_end_meta(err, errlen);
    if (rc != 0)
        return -1;
    uint32_t *map = map_private(nstrings, nfuncs, &rc, err, errlen);
    if (!map)
        return -1;
    uint32_t np = cp_sample_private_funcs()->n;
    /* Threads in id order, like the THREAD chunks. */
    uint32_t nth = 0;
    for (cp_thread *t = atomic_load(&cp_g.threads); t; t = t->next)
        nth++;
    for (uint32_t id = 0; rc == 0 && id < nth; id++)
        for (cp_thread *t = atomic_load(&cp_g.threads); t; t = t->next)
            if (t->id == id && t->sample && nfuncs > 0) {
                /* wall clock: periods counted after the thread's last
                 * drained sample (sample_wall.c) */
                cp_sagg_repeat(&t->sample->agg, atomic_exchange(&t->sample->leftover, 0));
                rc = write_thread_samples(t, map, np, nfuncs, err, errlen);
            }
    free(map);
    return rc;
}

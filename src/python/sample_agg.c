/*
 * sample_agg.c — sample records to stack trees, on the writer thread.
 * See sample_agg.h. Python-free (unit-tested in tests/unit/test_sample_agg.c).
 */
#include "python/sample_agg.h"

#include "cpyprof/format.h"

#include <stdlib.h>
#include <string.h>

/* ---- private function table ------------------------------------------------ */

void cp_sfuncs_init(cp_sfuncs *f)
{
    memset(f, 0, sizeof *f);
}

void cp_sfuncs_destroy(cp_sfuncs *f)
{
    for (uint32_t i = 0; i < f->n; i++) {
        free(f->items[i].name);
        free(f->items[i].file);
    }
    free(f->items);
    free(f->slots);
    memset(f, 0, sizeof *f);
}

static uint64_t fnv(uint64_t h, const char *s, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t sfunc_hash(const char *name, uint32_t nlen, const char *file, uint32_t flen,
                           uint32_t line, uint32_t kind)
{
    uint64_t h = fnv(0xcbf29ce484222325ull, name, nlen);
    h = fnv(h ^ 0xff, file, flen);
    return (h ^ line ^ ((uint64_t)kind << 40)) * 0x9E3779B97F4A7C15ull;
}

static char *dupn(const char *s, uint32_t n)
{
    char *d = malloc((size_t)n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static int sfuncs_rehash(cp_sfuncs *f, uint32_t nslots)
{
    uint32_t *s = calloc(nslots, sizeof *s);
    if (!s)
        return -1;
    for (uint32_t i = 0; i < f->n; i++) {
        const cp_sfunc *it = &f->items[i];
        uint64_t h = sfunc_hash(it->name, (uint32_t)strlen(it->name), it->file,
                                (uint32_t)strlen(it->file), it->line, it->kind);
        uint32_t j = (uint32_t)h & (nslots - 1);
        while (s[j])
            j = (j + 1) & (nslots - 1);
        s[j] = i + 1;
    }
    free(f->slots);
    f->slots = s;
    f->mask = nslots - 1;
    return 0;
}

uint32_t cp_sfuncs_intern(cp_sfuncs *f, const char *name, uint32_t nlen, const char *file,
                          uint32_t flen, uint32_t line)
{
    return cp_sfuncs_intern_kind(f, name, nlen, file, flen, line, CPYPROF_FUNC_PYTHON);
}

uint32_t cp_sfuncs_intern_kind(cp_sfuncs *f, const char *name, uint32_t nlen, const char *file,
                               uint32_t flen, uint32_t line, uint32_t kind)
{
    if (!f->slots && sfuncs_rehash(f, 64) != 0)
        return CPYPROF_NONE;
    uint64_t h = sfunc_hash(name, nlen, file, flen, line, kind);
    uint32_t j = (uint32_t)h & f->mask;
    while (f->slots[j]) {
        const cp_sfunc *it = &f->items[f->slots[j] - 1];
        if (it->line == line && it->kind == kind && strlen(it->name) == nlen &&
            memcmp(it->name, name, nlen) == 0 && strlen(it->file) == flen &&
            memcmp(it->file, file, flen) == 0)
            return CP_SAMPLE_PRIVATE_ID | (f->slots[j] - 1);
        j = (j + 1) & f->mask;
    }
    if (f->n >= 0x7FFFFFF0u)
        return CPYPROF_NONE;
    if (f->n == f->cap) {
        uint32_t cap = f->cap ? f->cap * 2 : 64;
        cp_sfunc *it = realloc(f->items, cap * sizeof *it);
        if (!it)
            return CPYPROF_NONE;
        f->items = it;
        f->cap = cap;
    }
    cp_sfunc *it = &f->items[f->n];
    it->name = dupn(name, nlen);
    it->file = dupn(file, flen);
    it->line = line;
    it->kind = kind;
    if (!it->name || !it->file) {
        free(it->name);
        free(it->file);
        return CPYPROF_NONE;
    }
    f->slots[j] = ++f->n;
    if ((uint64_t)f->n * 2 > (uint64_t)f->mask + 1 && sfuncs_rehash(f, (f->mask + 1) * 2) != 0) {
        /* Still usable: the table is at most full, lookups still end. */
        if (f->n > f->mask) {
            f->n--;
            f->slots[j] = 0;
            return CPYPROF_NONE;
        }
    }
    return CP_SAMPLE_PRIVATE_ID | (f->n - 1);
}

/* ---- aggregation ----------------------------------------------------------- */

static cp_sagg_native_fn native_fn;

void cp_sagg_set_native(cp_sagg_native_fn fn)
{
    native_fn = fn;
}

int cp_sagg_init(cp_sagg *a, cp_sfuncs *funcs, uint32_t truncated_fid)
{
    memset(a, 0, sizeof *a);
    a->funcs = funcs;
    a->truncated_fid = truncated_fid;
    return cp_tree_init(&a->tree);
}

void cp_sagg_destroy(cp_sagg *a)
{
    cp_tree_destroy(&a->tree);
}

static inline uint64_t node_key(uint32_t func, uint32_t line)
{
    return (((uint64_t)(line & 0x7FFFFFFFu) << 32) | func) + 1;
}

static void commit(cp_sagg *a)
{
    a->in_sample = false;
    if (a->have == 0)
        return; /* no Python frame (a thread between two calls into Python) */
    cp_tree_node *n = NULL;
    if ((a->flags & CP_SAMPLE_F_TRUNCATED) && a->truncated_fid != CPYPROF_NONE) {
        n = cp_tree_enter(&a->tree, NULL, node_key(a->truncated_fid, 0), a->truncated_fid);
        if (!n) {
            a->lost += a->weight;
            return;
        }
    }
    for (uint32_t i = a->have; i-- > 0;) { /* outermost first */
        const cp_sagg_frame *f = &a->frames[i];
        n = cp_tree_enter(&a->tree, n, node_key(f->func, f->line), f->func);
        if (!n) {
            a->lost += a->weight;
            return;
        }
    }
    n->calls += a->weight;
    if (a->flags & CP_SAMPLE_F_GIL)
        n->ticks += a->weight;
    a->samples += a->weight;
    a->last_ok = true;
}

void cp_sagg_repeat(cp_sagg *a, uint64_t count)
{
    if (!a->last_ok || count == 0 || a->in_sample)
        return; /* no complete previous sample: nothing to repeat */
    uint64_t w = a->weight;
    a->weight = count;
    commit(a);
    a->weight = w;
}

static void push_frame(cp_sagg *a, uint32_t func, uint32_t line)
{
    a->frames[a->have].func = func;
    a->frames[a->have].line = line;
    a->have++;
    if (a->have == a->want)
        commit(a);
}

static void abandon(cp_sagg *a)
{
    a->in_sample = false;
    a->in_code = false;
    a->malformed++;
}

void cp_sagg_feed(cp_sagg *a, const cp_record *r)
{
    uint32_t kind = cp_srec_kind(r->kind);
    if (kind == CP_SREC_REPEAT) {
        if (a->in_sample)
            abandon(a);
        cp_sagg_repeat(a, r->c);
        return;
    }
    if (kind == CP_SREC_SAMPLE) {
        if (a->in_sample)
            abandon(a);
        a->last_ok = false; /* frames[] is about to be overwritten */
        a->in_sample = true;
        a->in_code = false;
        a->want = r->a > CP_SAMPLE_MAX_FRAMES ? CP_SAMPLE_MAX_FRAMES : r->a;
        a->have = 0;
        a->flags = (uint32_t)r->b;
        a->weight = r->c ? r->c : 1;
        if (a->want == 0)
            commit(a);
        return;
    }
    if (!a->in_sample)
        return; /* the rest of an abandoned sample */
    if (a->in_code != (kind == CP_SREC_TEXT)) {
        abandon(a);
        return;
    }
    switch (kind) {
    case CP_SREC_FRAME:
        push_frame(a, r->a, (uint32_t)r->b);
        break;
    case CP_SREC_CODE:
        a->code_first = r->a;
        a->code_line = (uint32_t)r->b;
        a->name_len = (uint32_t)(r->b >> 32) & 0xFFFFu;
        a->file_len = (uint32_t)(r->b >> 48) & 0xFFFFu;
        if (a->name_len > CP_SAMPLE_NAME_MAX || a->file_len > CP_SAMPLE_FILE_MAX) {
            abandon(a);
            return;
        }
        a->text_have = 0;
        a->in_code = true;
        break;
    case CP_SREC_TEXT:
        a->text_have += cp_srec_text_unpack(r, a->text + a->text_have);
        break;
    case CP_SREC_NATIVE: {
        uint32_t id = native_fn ? native_fn(a->funcs, r->b) : CPYPROF_NONE;
        if (id != CPYPROF_NONE) {
            push_frame(a, id, 0);
        } else if (--a->want == a->have) { /* left out: one entry fewer */
            commit(a);
        }
        break;
    }
    default:
        abandon(a);
        return;
    }
    if (a->in_code && a->text_have >= a->name_len + a->file_len) {
        a->in_code = false;
        uint32_t id = cp_sfuncs_intern(a->funcs, a->text, a->name_len, a->text + a->name_len,
                                       a->file_len, a->code_first);
        if (id == CPYPROF_NONE) {
            abandon(a);
            return;
        }
        push_frame(a, id, a->code_line);
    }
}

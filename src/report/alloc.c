/* alloc.c — see alloc.h. */
#include "report/alloc.h"

#include "report/chunks.h"
#include "report/model.h"
#include "report/text.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Sums of counts a damaged file may make overflow: saturate, so that a
 * parent's inclusive value never drops below a child's. */
static inline uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a + b < a ? UINT64_MAX : a + b;
}

#define RUN_SIZE 72
#define NODE_SIZE 40
#define GC_SIZE 48

/* ---- parsing ------------------------------------------------------------------ */

static int parse_thread(cp_alloc_data *a, const uint8_t *d, uint64_t n, char *err, size_t errlen)
{
    if (n < 8) {
        snprintf(err, errlen, "ALLOC thread chunk too short (%" PRIu64 " bytes)", n);
        return -1;
    }
    cp_alloc_thread t = {.thread_id = cp_rd32(d), .n_nodes = cp_rd32(d + 4)};
    if (n != 8 + (uint64_t)NODE_SIZE * t.n_nodes) {
        snprintf(err, errlen, "ALLOC thread chunk size %" PRIu64 " does not match its %u nodes", n,
                 t.n_nodes);
        return -1;
    }
    if (t.n_nodes) {
        t.nodes = malloc((size_t)t.n_nodes * sizeof *t.nodes);
        if (!t.nodes) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    const uint8_t *q = d + 8;
    for (uint32_t i = 0; i < t.n_nodes; i++, q += NODE_SIZE) {
        struct cpyprof_alloc_node_rec *r = &t.nodes[i];
        r->parent = cp_rd32(q);
        r->func = cp_rd32(q + 4);
        r->allocs = cp_rd64(q + 8);
        r->alloc_bytes = cp_rd64(q + 16);
        r->frees = cp_rd64(q + 24);
        r->free_bytes = cp_rd64(q + 32);
        if (r->parent != CPYPROF_NONE && r->parent >= i) {
            snprintf(err, errlen, "ALLOC node %u has a bad parent", i);
            free(t.nodes);
            return -1;
        }
    }
    cp_alloc_thread *nt = realloc(a->threads, (a->n_threads + 1) * sizeof *nt);
    if (!nt) {
        free(t.nodes);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    a->threads = nt;
    a->threads[a->n_threads++] = t;
    return 0;
}

static int parse_gc(cp_alloc_data *a, const uint8_t *d, uint64_t n, char *err, size_t errlen)
{
    if (n < 16) {
        snprintf(err, errlen, "GC chunk too short (%" PRIu64 " bytes)", n);
        return -1;
    }
    uint32_t count = cp_rd32(d);
    if (n != 16 + (uint64_t)GC_SIZE * count) {
        snprintf(err, errlen, "GC chunk size %" PRIu64 " does not match its %u records", n, count);
        return -1;
    }
    struct cpyprof_gc_rec *r = realloc(a->gc, (a->n_gc + count + 1) * sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    a->gc = r;
    a->gc_present = true;
    a->gc_dropped += cp_rd64(d + 8);
    const uint8_t *q = d + 16;
    for (uint32_t i = 0; i < count; i++, q += GC_SIZE) {
        struct cpyprof_gc_rec *g = &a->gc[a->n_gc++];
        g->start_ns = (int64_t)cp_rd64(q);
        g->duration_ns = (int64_t)cp_rd64(q + 8);
        g->generation = cp_rd32(q + 16);
        g->thread_id = cp_rd32(q + 20);
        g->func = cp_rd32(q + 24);
        g->reserved = 0;
        g->collected = cp_rd64(q + 32);
        g->uncollectable = cp_rd64(q + 40);
    }
    return 0;
}

static int parse_live(cp_alloc_data *a, const uint8_t *d, uint64_t n, char *err, size_t errlen)
{
    if (n < 4 || (n - 4) % 16 || (n - 4) / 16 != cp_rd32(d)) {
        snprintf(err, errlen,
                 "ALLOC live-bytes chunk of %" PRIu64 " bytes does not match its count", n);
        return -1;
    }
    uint32_t count = cp_rd32(d);
    struct cpyprof_alloc_live_rec *r = realloc(a->live, (a->n_live + count + 1) * sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    a->live = r;
    const uint8_t *q = d + 4;
    for (uint32_t i = 0; i < count; i++, q += 16) {
        a->live[a->n_live].time_ns = (int64_t)cp_rd64(q);
        a->live[a->n_live].live_bytes = cp_rd64(q + 8);
        a->n_live++;
    }
    return 0;
}

int cp_alloc_parse(const void *data, size_t size, cp_alloc_data *a, char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    a->run.peak_thread = a->run.peak_node = CPYPROF_NONE; /* until a run record says */
    cp_chunk_walk w;
    if (cp_chunk_walk_begin(&w, data, size, err, errlen))
        return -1;
    static const uint32_t types[] = {CPYPROF_CHUNK_ALLOC, CPYPROF_CHUNK_GC};
    cp_chunk c;
    while (cp_chunk_next(&w, types, 2, &c)) {
        uint32_t type = c.type;
        const uint8_t *p = c.payload;
        uint64_t len = c.len;
        const char *what = type == CPYPROF_CHUNK_GC ? "GC" : "ALLOC";
        if (!c.crc_ok) {
            snprintf(err, errlen, "%s chunk with a CRC mismatch", what);
            goto bad;
        }
        if (type == CPYPROF_CHUNK_GC) {
            if (parse_gc(a, p, len, err, errlen) != 0)
                goto bad;
            continue;
        }
        if (len < 4) {
            snprintf(err, errlen, "ALLOC chunk too short");
            goto bad;
        }
        uint32_t kind = cp_rd32(p);
        if (kind == CPYPROF_ALLOC_RUN) {
            if (len != 4 + RUN_SIZE) {
                snprintf(err, errlen, "ALLOC run chunk of %" PRIu64 " bytes", len);
                goto bad;
            }
            const uint8_t *q = p + 4;
            a->present = true;
            a->run.flags = cp_rd32(q);
            a->run.peak_thread = cp_rd32(q + 4);
            a->run.peak_node = cp_rd32(q + 8);
            a->run.peak_bytes = cp_rd64(q + 16);
            a->run.live_bytes = cp_rd64(q + 24);
            a->run.other_allocs = cp_rd64(q + 32);
            a->run.other_alloc_bytes = cp_rd64(q + 40);
            a->run.other_frees = cp_rd64(q + 48);
            a->run.other_free_bytes = cp_rd64(q + 56);
            a->run.frees_untracked = cp_rd64(q + 64);
        } else if (kind == CPYPROF_ALLOC_THREAD) {
            if (parse_thread(a, p + 4, len - 4, err, errlen) != 0)
                goto bad;
            a->present = true; /* even if the run record was lost */
        } else if (kind == CPYPROF_ALLOC_LIVE) {
            if (parse_live(a, p + 4, len - 4, err, errlen) != 0)
                goto bad;
        } /* other kinds: a newer writer's, skipped */
    }
    return 0;
bad:
    cp_alloc_free(a);
    return -1;
}

static int parse_image(const void *data, size_t size, void *out, char *err, size_t errlen)
{
    return cp_alloc_parse(data, size, out, err, errlen);
}

int cp_alloc_load(const char *path, cp_alloc_data *a, char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    return cp_profile_parse_file(path, parse_image, a, err, errlen);
}

void cp_alloc_free(cp_alloc_data *a)
{
    for (size_t i = 0; i < a->n_threads; i++)
        free(a->threads[i].nodes);
    free(a->threads);
    free(a->gc);
    free(a->live);
    memset(a, 0, sizeof *a);
}

/* ---- tables ------------------------------------------------------------------- */

/* Index of func in rows[0..*n) (linear probing on a side hash), adding it. */
typedef struct func_index {
    uint32_t *slots; /* row + 1, 0 = empty */
    size_t mask;
} func_index;

static long row_of(func_index *ix, cp_alloc_func *rows, size_t *n, uint32_t func)
{
    size_t s = (func * 0x9E3779B1u) & ix->mask;
    while (ix->slots[s]) {
        if (rows[ix->slots[s] - 1].func == func)
            return ix->slots[s] - 1;
        s = (s + 1) & ix->mask;
    }
    memset(&rows[*n], 0, sizeof rows[*n]);
    rows[*n].func = func;
    ix->slots[s] = (uint32_t)(*n + 1);
    return (long)(*n)++;
}

static int by_bytes(const void *x, const void *y)
{
    const cp_alloc_func *a = x, *b = y;
    if (a->alloc_bytes != b->alloc_bytes)
        return a->alloc_bytes < b->alloc_bytes ? 1 : -1;
    if (a->allocs != b->allocs)
        return a->allocs < b->allocs ? 1 : -1;
    return a->func < b->func ? -1 : a->func > b->func;
}

int cp_alloc_funcs(const cp_alloc_data *a, cp_alloc_func **rows_out, size_t *n_out)
{
    *rows_out = NULL;
    *n_out = 0;
    size_t total = 0;
    for (size_t t = 0; t < a->n_threads; t++)
        total += a->threads[t].n_nodes;
    size_t cap = 16;
    while (cap < total * 2)
        cap *= 2;
    cp_alloc_func *rows = calloc(total ? total : 1, sizeof *rows);
    func_index ix = {calloc(cap, sizeof(uint32_t)), cap - 1};
    if (!rows || !ix.slots) {
        free(rows);
        free(ix.slots);
        return -1;
    }
    size_t n = 0;
    for (size_t t = 0; t < a->n_threads; t++) {
        const cp_alloc_thread *th = &a->threads[t];
        /* inclusive bytes per node, children after parents: sum backwards */
        uint32_t nn = th->n_nodes;
        uint64_t *incl = calloc(nn ? nn : 1, sizeof *incl);
        uint32_t *row = calloc(nn ? nn : 1, sizeof *row);
        uint32_t *first = malloc((nn + 1) * sizeof *first); /* [nn]: the roots */
        uint32_t *next = malloc((nn ? nn : 1) * sizeof *next);
        uint32_t *stack = malloc((2 * (size_t)nn + 1) * sizeof *stack);
        uint32_t *active = calloc(total ? total : 1, sizeof *active); /* per row */
        if (!incl || !row || !first || !next || !stack || !active) {
            free(incl);
            free(row);
            free(first);
            free(next);
            free(stack);
            free(active);
            free(rows);
            free(ix.slots);
            return -1;
        }
        for (uint32_t i = 0; i <= nn; i++)
            first[i] = CPYPROF_NONE;
        for (uint32_t i = nn; i-- > 0;) {
            const struct cpyprof_alloc_node_rec *r = &th->nodes[i];
            incl[i] = sat_add(incl[i], r->alloc_bytes);
            uint32_t up = r->parent == CPYPROF_NONE ? nn : r->parent;
            if (r->parent != CPYPROF_NONE)
                incl[r->parent] = sat_add(incl[r->parent], incl[i]);
            next[i] = first[up];
            first[up] = i;
        }
        for (uint32_t i = 0; i < nn; i++) {
            const struct cpyprof_alloc_node_rec *r = &th->nodes[i];
            row[i] = (uint32_t)row_of(&ix, rows, &n, r->func);
            cp_alloc_func *rw = &rows[row[i]];
            rw->allocs = sat_add(rw->allocs, r->allocs);
            rw->alloc_bytes = sat_add(rw->alloc_bytes, r->alloc_bytes);
            rw->frees = sat_add(rw->frees, r->frees);
            rw->free_bytes = sat_add(rw->free_bytes, r->free_bytes);
        }
        /* Depth-first, counting each function's active occurrences: only an
         * outermost one adds its inclusive bytes (as total_ns does). */
        size_t sp = 0;
        for (uint32_t c = first[nn]; c != CPYPROF_NONE; c = next[c])
            stack[sp++] = c * 2;
        while (sp > 0) {
            uint32_t e = stack[--sp], i = e / 2;
            if (e & 1) {
                active[row[i]]--;
                continue;
            }
            if (active[row[i]]++ == 0)
                rows[row[i]].alloc_bytes_total = sat_add(rows[row[i]].alloc_bytes_total, incl[i]);
            stack[sp++] = e | 1;
            for (uint32_t c = first[i]; c != CPYPROF_NONE; c = next[c])
                stack[sp++] = c * 2;
        }
        free(row);
        free(first);
        free(next);
        free(stack);
        free(active);
        free(incl);
    }
    free(ix.slots);
    qsort(rows, n, sizeof *rows, by_bytes);
    *rows_out = rows;
    *n_out = n;
    return 0;
}

static int gc_by_time(const void *x, const void *y)
{
    const cp_gc_func *a = x, *b = y;
    if (a->ns != b->ns)
        return a->ns < b->ns ? 1 : -1;
    return a->func < b->func ? -1 : a->func > b->func;
}

int cp_gc_funcs(const cp_alloc_data *a, cp_gc_func **rows_out, size_t *n_out)
{
    *rows_out = NULL;
    *n_out = 0;
    cp_gc_func *rows = calloc(a->n_gc ? a->n_gc : 1, sizeof *rows);
    if (!rows)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < a->n_gc; i++) {
        const struct cpyprof_gc_rec *g = &a->gc[i];
        size_t j = 0;
        while (j < n && rows[j].func != g->func) /* few distinct functions */
            j++;
        if (j == n)
            rows[n++].func = g->func;
        rows[j].collections++;
        rows[j].ns += g->duration_ns > 0 ? (uint64_t)g->duration_ns : 0;
    }
    qsort(rows, n, sizeof *rows, gc_by_time);
    *rows_out = rows;
    *n_out = n;
    return 0;
}

/* ---- text --------------------------------------------------------------------- */

static const char *label_of(const cp_profile *p, uint32_t fid, char *buf, size_t n)
{
    long i = fid == CPYPROF_NONE ? -1 : cp_profile_func_index(p, fid);
    if (i < 0) {
        snprintf(buf, n, "%s", fid == CPYPROF_NONE ? "[no Python frame]" : "[unknown]");
        return buf;
    }
    cp_func_label(p, (uint32_t)i, buf, n);
    return buf;
}

/* "1.5 MB" style, or plain bytes below 10 kB. */
static char *fmt_bytes(uint64_t b, char *buf, size_t n)
{
    if (b < 10000)
        snprintf(buf, n, "%" PRIu64 " B", b);
    else if (b < 10000000)
        snprintf(buf, n, "%.1f kB", (double)b / 1e3);
    else if (b < 10000000000ull)
        snprintf(buf, n, "%.1f MB", (double)b / 1e6);
    else
        snprintf(buf, n, "%.1f GB", (double)b / 1e9);
    return buf;
}

static const cp_alloc_thread *thread_of(const cp_alloc_data *a, uint32_t id)
{
    for (size_t t = 0; t < a->n_threads; t++)
        if (a->threads[t].thread_id == id)
            return &a->threads[t];
    return NULL;
}

static void print_peak_stack(FILE *out, const cp_profile *p, const cp_alloc_data *a)
{
    const cp_alloc_thread *th = thread_of(a, a->run.peak_thread);
    if (!th || a->run.peak_node >= th->n_nodes)
        return;
    fputs("  stack at the peak (innermost first):\n", out);
    char buf[512];
    int shown = 0;
    for (uint32_t q = a->run.peak_node; q != CPYPROF_NONE && shown < 64;
         q = th->nodes[q].parent, shown++)
        fprintf(out, "    %s\n", label_of(p, th->nodes[q].func, buf, sizeof buf));
}

void cp_alloc_print(FILE *out, const cp_profile *p, const cp_alloc_data *a, size_t limit)
{
    char b1[32], b2[32], b3[32], lb[512];
    if (a->present) {
        cp_alloc_func *rows;
        size_t n;
        if (cp_alloc_funcs(a, &rows, &n) != 0) {
            fputs("\nAllocations: out of memory\n", out);
            return;
        }
        uint64_t allocs = a->run.other_allocs, bytes = a->run.other_alloc_bytes;
        uint64_t frees = a->run.other_frees, freed = a->run.other_free_bytes;
        for (size_t i = 0; i < n; i++) {
            allocs += rows[i].allocs;
            bytes += rows[i].alloc_bytes;
            frees += rows[i].frees;
            freed += rows[i].free_bytes;
        }
        fprintf(out, "\nAllocations (%s): %" PRIu64 " allocations, %s; %" PRIu64 " frees, %s\n",
                a->run.flags & CPYPROF_ALLOC_NATIVE ? "PyMem allocators and native malloc"
                                                    : "PyMem allocators",
                allocs, fmt_bytes(bytes, b1, sizeof b1), frees, fmt_bytes(freed, b2, sizeof b2));
        fprintf(out, "  peak %s, still allocated at the end %s",
                fmt_bytes(a->run.peak_bytes, b1, sizeof b1),
                fmt_bytes(a->run.live_bytes, b2, sizeof b2));
        if (a->run.frees_untracked)
            fprintf(out, "; %" PRIu64 " frees of blocks from before the start (not counted)",
                    a->run.frees_untracked);
        fputc('\n', out);
        if (a->run.other_allocs || a->run.other_frees)
            fprintf(out,
                    "  threads not profiled: %" PRIu64 " allocations (%s), %" PRIu64
                    " frees (%s)\n",
                    a->run.other_allocs, fmt_bytes(a->run.other_alloc_bytes, b1, sizeof b1),
                    a->run.other_frees, fmt_bytes(a->run.other_free_bytes, b2, sizeof b2));
        print_peak_stack(out, p, a);
        fprintf(out, "\n%12s %14s %12s %14s %15s %14s  %s\n", "allocs", "bytes", "frees",
                "freed bytes", "net bytes", "total bytes", "function");
        size_t shown = 0;
        for (size_t i = 0; i < n && (!limit || shown < limit); i++) {
            const cp_alloc_func *r = &rows[i];
            if (!r->allocs && !r->frees)
                continue;
            int64_t net = (int64_t)(r->alloc_bytes - r->free_bytes);
            fprintf(out,
                    "%12" PRIu64 " %14" PRIu64 " %12" PRIu64 " %14" PRIu64 " %+15" PRId64
                    " %14" PRIu64 "  %s\n",
                    r->allocs, r->alloc_bytes, r->frees, r->free_bytes, net, r->alloc_bytes_total,
                    label_of(p, r->func, lb, sizeof lb));
            shown++;
        }
        if (limit && n > shown)
            fprintf(out, "(%zu more functions; --limit 0 shows all)\n", n - shown);
        free(rows);
    }
    if (a->gc_present) {
        uint64_t total = 0, collected = 0, uncollectable = 0, gens[3] = {0, 0, 0};
        for (size_t i = 0; i < a->n_gc; i++) {
            const struct cpyprof_gc_rec *g = &a->gc[i];
            total += g->duration_ns > 0 ? (uint64_t)g->duration_ns : 0;
            collected += g->collected;
            uncollectable += g->uncollectable;
            gens[g->generation < 3 ? g->generation : 2]++;
        }
        fprintf(out,
                "\nGarbage collections: %zu (generation 0: %" PRIu64 ", 1: %" PRIu64 ", 2: %" PRIu64
                "), %s in total; %" PRIu64 " objects collected, %" PRIu64 " uncollectable\n",
                a->n_gc, gens[0], gens[1], gens[2], cp_fmt_ns(total, b3, sizeof b3), collected,
                uncollectable);
        if (a->gc_dropped)
            fprintf(out, "  %" PRIu64 " more collections were not recorded (table full)\n",
                    a->gc_dropped);
        cp_gc_func *rows;
        size_t n;
        if (a->n_gc && cp_gc_funcs(a, &rows, &n) == 0) {
            fprintf(out, "\n%12s %12s  %s\n", "collections", "time", "running function");
            for (size_t i = 0; i < n && (!limit || i < limit); i++)
                fprintf(out, "%12" PRIu64 " %12s  %s\n", rows[i].collections,
                        cp_fmt_ns(rows[i].ns, b3, sizeof b3),
                        label_of(p, rows[i].func, lb, sizeof lb));
            free(rows);
        }
    }
}

/* ---- JSON --------------------------------------------------------------------- */

static void json_func(FILE *out, const cp_profile *p, uint32_t fid)
{
    long i = fid == CPYPROF_NONE ? -1 : cp_profile_func_index(p, fid);
    const char *name = i >= 0 ? cp_profile_string(p, p->funcs[i].name) : NULL;
    const char *file = i >= 0 ? cp_profile_string(p, p->funcs[i].file) : NULL;
    fputs("\"name\": ", out);
    if (!name)
        name = fid == CPYPROF_NONE ? "[no Python frame]" : "[unknown]";
    cp_json_string(out, name, strlen(name));
    fputs(", \"file\": ", out);
    if (file)
        cp_json_string(out, file, strlen(file));
    else
        fputs("null", out);
    fprintf(out, ", \"line\": %u", i >= 0 ? p->funcs[i].line : 0);
}

void cp_alloc_print_json(FILE *out, const cp_profile *p, const cp_alloc_data *a)
{
    if (a->present) {
        fprintf(out,
                ",\n  \"alloc\": {\"native\": %s, \"per_function\": %s, \"peak_bytes\": %" PRIu64
                ", \"live_bytes\": %" PRIu64 ", \"other_allocs\": %" PRIu64
                ", \"other_alloc_bytes\": %" PRIu64 ", \"other_frees\": %" PRIu64
                ", \"other_free_bytes\": %" PRIu64 ", \"frees_untracked\": %" PRIu64,
                a->run.flags & CPYPROF_ALLOC_NATIVE ? "true" : "false",
                a->run.flags & CPYPROF_ALLOC_PER_FUNCTION ? "true" : "false", a->run.peak_bytes,
                a->run.live_bytes, a->run.other_allocs, a->run.other_alloc_bytes,
                a->run.other_frees, a->run.other_free_bytes, a->run.frees_untracked);
        fputs(", \"peak_stack\": [", out);
        const cp_alloc_thread *th = thread_of(a, a->run.peak_thread);
        if (th && a->run.peak_node < th->n_nodes) {
            int k = 0;
            for (uint32_t q = a->run.peak_node; q != CPYPROF_NONE && k < 4096;
                 q = th->nodes[q].parent, k++) {
                fputs(k ? ", {" : "{", out);
                json_func(out, p, th->nodes[q].func);
                fputc('}', out);
            }
        }
        fputs("],\n    \"functions\": [", out);
        cp_alloc_func *rows;
        size_t n;
        if (cp_alloc_funcs(a, &rows, &n) == 0) {
            for (size_t i = 0; i < n; i++) {
                const cp_alloc_func *r = &rows[i];
                fputs(i ? ",\n      {" : "\n      {", out);
                json_func(out, p, r->func);
                fprintf(out,
                        ", \"allocs\": %" PRIu64 ", \"alloc_bytes\": %" PRIu64
                        ", \"frees\": %" PRIu64 ", \"free_bytes\": %" PRIu64
                        ", \"net_bytes\": %" PRId64 ", \"alloc_bytes_total\": %" PRIu64 "}",
                        r->allocs, r->alloc_bytes, r->frees, r->free_bytes,
                        (int64_t)(r->alloc_bytes - r->free_bytes), r->alloc_bytes_total);
            }
            if (n)
                fputs("\n    ", out);
            free(rows);
        }
        fputs("]}", out);
    }
    if (a->gc_present) {
        uint64_t total = 0;
        for (size_t i = 0; i < a->n_gc; i++)
            total += a->gc[i].duration_ns > 0 ? (uint64_t)a->gc[i].duration_ns : 0;
        fprintf(out,
                ",\n  \"gc\": {\"collections\": %zu, \"total_ns\": %" PRIu64
                ", \"dropped\": %" PRIu64 ", \"records\": [",
                a->n_gc, total, a->gc_dropped);
        for (size_t i = 0; i < a->n_gc; i++) {
            const struct cpyprof_gc_rec *g = &a->gc[i];
            fprintf(out,
                    "%s\n      {\"start_ns\": %" PRId64 ", \"duration_ns\": %" PRId64
                    ", \"generation\": %u, \"collected\": %" PRIu64 ", \"uncollectable\": %" PRIu64
                    ", ",
                    i ? "," : "", g->start_ns, g->duration_ns, g->generation, g->collected,
                    g->uncollectable);
            json_func(out, p, g->func);
            fputc('}', out);
        }
        fputs(a->n_gc ? "\n    ]}" : "]}", out);
    }
}

/* ---- flamegraph --------------------------------------------------------------- */

static const char *flame_name(const cp_profile *p, uint32_t fid, const char **detail, char *dbuf,
                              size_t dn, int *kind)
{
    *detail = NULL;
    *kind = CPYPROF_FUNC_SPECIAL;
    long i = fid == CPYPROF_NONE ? -1 : cp_profile_func_index(p, fid);
    if (i < 0)
        return "[unknown]";
    const struct cpyprof_func_rec *f = &p->funcs[i];
    *kind = (int)f->kind;
    const char *name = cp_profile_string(p, f->name);
    const char *file = cp_profile_string(p, f->file);
    if (file && dbuf) {
        if (f->kind == CPYPROF_FUNC_PYTHON)
            snprintf(dbuf, dn, "%s:%u", file, f->line);
        else
            snprintf(dbuf, dn, "%s", file);
        *detail = dbuf;
    }
    return name ? name : "[unknown]";
}

int cp_alloc_flame(const cp_profile *p, const cp_alloc_data *a, int metric, cp_flame_node **out,
                   size_t *n, char **names, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    *names = NULL;
    if (!a->present) {
        snprintf(err, errlen, "the profile has no allocation data (record with --alloc)");
        return -1;
    }
    size_t total = 1 + a->n_threads;
    for (size_t i = 0; i < a->n_threads; i++)
        total += a->threads[i].n_nodes;
    cp_flame_node *nodes = calloc(total, sizeof *nodes);
    const size_t per = 320;
    char *text = calloc(total, per);
    if (!nodes || !text) {
        free(nodes);
        free(text);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t k = 0;
    nodes[k++] = (cp_flame_node){"all", NULL, UINT32_MAX, 0, CPYPROF_FUNC_SPECIAL};
    for (size_t i = 0; i < a->n_threads; i++) {
        const cp_alloc_thread *t = &a->threads[i];
        uint32_t nn = t->n_nodes;
        uint64_t *incl = calloc(nn ? nn : 1, sizeof *incl);
        uint32_t *pos = calloc(nn ? nn : 1, sizeof *pos);
        if (!incl || !pos) {
            free(incl);
            free(pos);
            free(nodes);
            free(text);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        uint64_t sum = 0;
        for (uint32_t j = nn; j-- > 0;) {
            const struct cpyprof_alloc_node_rec *r = &t->nodes[j];
            incl[j] = sat_add(incl[j], metric == CP_ALLOC_COUNT ? r->allocs : r->alloc_bytes);
            if (r->parent != CPYPROF_NONE)
                incl[r->parent] = sat_add(incl[r->parent], incl[j]);
            else
                sum = sat_add(sum, incl[j]);
        }
        if (sum == 0) {
            free(incl);
            free(pos);
            continue;
        }
        char *label = text + k * per;
        long ti = cp_profile_thread_index(p, t->thread_id);
        char tn[256];
        if (ti >= 0)
            cp_thread_name(p, (size_t)ti, tn, sizeof tn);
        else
            snprintf(tn, sizeof tn, "#%u", t->thread_id);
        snprintf(label, per, "thread %s", tn);
        size_t tk = k;
        nodes[k++] = (cp_flame_node){label, NULL, 0, sum, CPYPROF_FUNC_SPECIAL};
        nodes[0].total = sat_add(nodes[0].total, sum);
        for (uint32_t j = 0; j < nn; j++) {
            const struct cpyprof_alloc_node_rec *r = &t->nodes[j];
            if (incl[j] == 0)
                continue;
            const char *detail;
            int fk;
            const char *name = flame_name(p, r->func, &detail, text + k * per, per, &fk);
            /* a node with value has a parent with value, drawn before it */
            uint32_t parent = r->parent == CPYPROF_NONE ? (uint32_t)tk : pos[r->parent];
            pos[j] = (uint32_t)k;
            nodes[k++] = (cp_flame_node){name, detail, parent, incl[j], fk};
        }
        free(incl);
        free(pos);
    }
    if (nodes[0].total == 0) {
        free(nodes);
        free(text);
        snprintf(err, errlen, "the profile's allocation trees are empty");
        return -1;
    }
    *out = nodes;
    *n = k;
    *names = text;
    return 0;
}

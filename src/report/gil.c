/* gil.c — see gil.h. */
#include "report/gil.h"

#include "report/chunks.h"
#include "report/text.h"

#include <stdlib.h>
#include <string.h>

#define RUN_SIZE 48
#define THREAD_SIZE 72
#define NODE_SIZE 32

static int parse_thread(cp_gil_data *g, const uint8_t *d, uint64_t n, char *err, size_t errlen)
{
    if (n < THREAD_SIZE) {
        snprintf(err, errlen, "GIL thread chunk too short (%llu bytes)", (unsigned long long)n);
        return -1;
    }
    cp_gil_thread t;
    memset(&t, 0, sizeof t);
    t.rec.thread_id = cp_rd32(d);
    t.rec.nbuckets = cp_rd32(d + 4);
    t.rec.native_tid = cp_rd64(d + 8);
    t.rec.hold_ns = cp_rd64(d + 16);
    t.rec.wait_ns = cp_rd64(d + 24);
    t.rec.acquisitions = cp_rd64(d + 32);
    t.rec.max_hold_ns = cp_rd64(d + 40);
    t.rec.max_wait_ns = cp_rd64(d + 48);
    t.rec.samples_held = cp_rd64(d + 56);
    t.rec.nnodes = cp_rd32(d + 64);
    uint64_t nb = t.rec.nbuckets, nn = t.rec.nnodes;
    if (nb > CP_GIL_HIST_MAX || n != THREAD_SIZE + 16 * nb + NODE_SIZE * nn) {
        snprintf(err, errlen,
                 "GIL thread chunk size %llu does not match its %llu buckets and "
                 "%llu nodes",
                 (unsigned long long)n, (unsigned long long)nb, (unsigned long long)nn);
        return -1;
    }
    const uint8_t *q = d + THREAD_SIZE;
    for (uint64_t i = 0; i < nb; i++)
        t.hold_hist[i] = cp_rd64(q + 8 * i);
    q += 8 * nb;
    for (uint64_t i = 0; i < nb; i++)
        t.wait_hist[i] = cp_rd64(q + 8 * i);
    q += 8 * nb;
    if (nn) {
        t.nodes = malloc(nn * sizeof *t.nodes);
        if (!t.nodes) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    for (uint64_t i = 0; i < nn; i++, q += NODE_SIZE) {
        struct cpyprof_gil_node_rec *r = &t.nodes[i];
        r->parent = cp_rd32(q);
        r->func = cp_rd32(q + 4);
        r->kind = cp_rd32(q + 8);
        r->count = cp_rd64(q + 16);
        r->ns = cp_rd64(q + 24);
        if (r->kind > 1 ||
            (r->parent != CPYPROF_NONE && (r->parent >= i || t.nodes[r->parent].kind != r->kind))) {
            snprintf(err, errlen, "GIL stack node %llu has a bad parent or kind",
                     (unsigned long long)i);
            free(t.nodes);
            return -1;
        }
    }
    cp_gil_thread *nt = realloc(g->threads, (g->n_threads + 1) * sizeof *nt);
    if (!nt) {
        free(t.nodes);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    g->threads = nt;
    g->threads[g->n_threads++] = t;
    return 0;
}

int cp_gil_parse(const void *data, size_t size, cp_gil_data *g, char *err, size_t errlen)
{
    memset(g, 0, sizeof *g);
    cp_chunk_walk w;
    if (cp_chunk_walk_begin(&w, data, size, err, errlen))
        return -1;
    static const uint32_t types[] = {CPYPROF_CHUNK_GIL};
    cp_chunk c;
    while (cp_chunk_next(&w, types, 1, &c)) {
        const uint8_t *p = c.payload;
        uint64_t len = c.len;
        if (!c.crc_ok) {
            snprintf(err, errlen, "GIL chunk with a CRC mismatch");
            goto bad;
        }
        if (len < 4) {
            snprintf(err, errlen, "GIL chunk too short");
            goto bad;
        }
        uint32_t kind = cp_rd32(p);
        if (kind == CPYPROF_GIL_RUN) {
            if (len != 4 + RUN_SIZE) {
                snprintf(err, errlen, "GIL run chunk of %llu bytes", (unsigned long long)len);
                goto bad;
            }
            g->present = true;
            g->run.method = cp_rd32(p + 4);
            g->run.duration_ns = (int64_t)cp_rd64(p + 12);
            g->run.switches = cp_rd64(p + 20);
            g->run.samples = cp_rd64(p + 28);
            g->run.samples_locked = cp_rd64(p + 36);
            g->run.stacks_dropped = cp_rd64(p + 44);
        } else if (kind == CPYPROF_GIL_THREAD) {
            if (parse_thread(g, p + 4, len - 4, err, errlen) != 0)
                goto bad;
        } /* other kinds: a newer writer's, skipped */
    }
    return 0;
bad:
    cp_gil_free(g);
    return -1;
}

static int parse_image(const void *data, size_t size, void *out, char *err, size_t errlen)
{
    return cp_gil_parse(data, size, out, err, errlen);
}

int cp_gil_load(const char *path, cp_gil_data *g, char *err, size_t errlen)
{
    memset(g, 0, sizeof *g);
    return cp_profile_parse_file(path, parse_image, g, err, errlen);
}

void cp_gil_free(cp_gil_data *g)
{
    for (size_t i = 0; i < g->n_threads; i++)
        free(g->threads[i].nodes);
    free(g->threads);
    memset(g, 0, sizeof *g);
}

/* ---- names -------------------------------------------------------------------- */

const char *cp_gil_thread_name(const cp_profile *p, const cp_gil_thread *t, char *buf, size_t n)
{
    long i = t->rec.thread_id == CPYPROF_NONE ? -1 : cp_profile_thread_index(p, t->rec.thread_id);
    const char *name = i >= 0 ? cp_profile_string(p, p->threads[i].rec.name) : NULL;
    if (name && *name)
        snprintf(buf, n, "%s", name);
    else if (i >= 0)
        snprintf(buf, n, "thread %u", t->rec.thread_id);
    else if (t->rec.native_tid)
        snprintf(buf, n, "native tid %llu", (unsigned long long)t->rec.native_tid);
    else
        snprintf(buf, n, "an exited thread");
    return buf;
}

static const char *func_name(const cp_profile *p, uint32_t fid, const char **detail, char *dbuf,
                             size_t dn)
{
    if (detail)
        *detail = NULL;
    long i = fid == CPYPROF_NONE ? -1 : cp_profile_func_index(p, fid);
    if (i < 0)
        return "[unknown]";
    const struct cpyprof_func_rec *f = &p->funcs[i];
    const char *name = cp_profile_string(p, f->name);
    const char *file = cp_profile_string(p, f->file);
    if (detail && file && dbuf) {
        snprintf(dbuf, dn, "%s:%u", file, f->line);
        *detail = dbuf;
    }
    return name ? name : "[unknown]";
}

const char *cp_gil_top_holder(const cp_profile *p, const cp_gil_thread *t, char *buf, size_t n)
{
    /* The innermost frame with the most hold time charged to it; a real
     * function wins over the markers ([no Python frame] is a thread's start
     * or end, [unregistered] a frame we could not name). */
    uint32_t best = CPYPROF_NONE;
    bool best_real = false;
    for (uint32_t i = 0; i < t->rec.nnodes; i++) {
        const struct cpyprof_gil_node_rec *r = &t->nodes[i];
        if (r->kind != 1 || r->ns == 0)
            continue;
        long fi = r->func == CPYPROF_NONE ? -1 : cp_profile_func_index(p, r->func);
        bool real = fi >= 0 && p->funcs[fi].kind != CPYPROF_FUNC_SPECIAL;
        if (best == CPYPROF_NONE || (real && !best_real) ||
            (real == best_real && r->ns > t->nodes[best].ns)) {
            best = i;
            best_real = real;
        }
    }
    if (best == CPYPROF_NONE)
        return NULL;
    char d[512];
    const char *detail;
    const char *name = func_name(p, t->nodes[best].func, &detail, d, sizeof d);
    if (detail)
        snprintf(buf, n, "%s (%s)", name, detail);
    else
        snprintf(buf, n, "%s", name);
    return buf;
}

/* ---- table and advice ----------------------------------------------------------- */

static double pct(uint64_t part, int64_t whole)
{
    return whole > 0 ? 100.0 * (double)part / (double)whole : 0.0;
}

static void fmt_time(char *buf, size_t n, uint64_t ns)
{
    if (ns >= 1000000000ull)
        snprintf(buf, n, "%.2fs", (double)ns / 1e9);
    else if (ns >= 1000000ull)
        snprintf(buf, n, "%.1fms", (double)ns / 1e6);
    else
        snprintf(buf, n, "%.1fus", (double)ns / 1e3);
}

static uint64_t total_hold(const cp_gil_data *g)
{
    uint64_t s = 0;
    for (size_t i = 0; i < g->n_threads; i++)
        s += g->threads[i].rec.hold_ns;
    return s;
}

static void add_line(char *buf, size_t n, size_t *len, const char *text)
{
    if (*len >= n)
        return;
    int w = snprintf(buf + *len, n - *len, "%s\n", text);
    if (w > 0)
        *len += (size_t)w < n - *len ? (size_t)w : n - *len - 1;
}

int cp_gil_advice(const cp_profile *p, const cp_gil_data *g, char *buf, size_t n)
{
    size_t len = 0;
    int found = 0;
    if (n)
        buf[0] = '\0';
    if (!g->present)
        return 0;
    int64_t dur = g->run.duration_ns;
    double busy = pct(total_hold(g), dur);
    char line[1024], name[256], fn[600], t1[32];
    bool exact = g->run.method == CPYPROF_GIL_EXACT;

    /* Contention: several threads each waiting more than half the time. */
    int fighters = 0;
    for (size_t i = 0; exact && i < g->n_threads; i++)
        if (pct(g->threads[i].rec.wait_ns, dur) > 50.0)
            fighters++;
    if (fighters >= 2) {
        snprintf(line, sizeof line,
                 "threads fight over the GIL: %d threads each waited for it more than half of "
                 "the time while it was %.0f%% busy; only one runs Python at a time. For "
                 "CPU-bound work consider processes (multiprocessing, "
                 "ProcessPoolExecutor) or releasing the GIL in C (an extension or a library "
                 "that does it, like numpy, zlib or hashlib).",
                 fighters, busy);
        add_line(buf, n, &len, line);
        found++;
    }
    if (busy < 20.0) {
        snprintf(line, sizeof line,
                 "GIL mostly idle (%.0f%% busy): threads are I/O-bound or waiting; the GIL is "
                 "not what limits this program.",
                 busy);
        add_line(buf, n, &len, line);
        found++;
    }
    for (size_t i = 0; exact && i < g->n_threads; i++) {
        const cp_gil_thread *t = &g->threads[i];
        if (t->rec.max_hold_ns <= 50000000ull)
            continue;
        /* A long hold matters when someone else waited long meanwhile;
         * holding the GIL with nobody asking for it is normal. */
        bool blocked_other = false;
        for (size_t j = 0; j < g->n_threads; j++)
            if (j != i && g->threads[j].rec.max_wait_ns > 50000000ull)
                blocked_other = true;
        if (!blocked_other)
            continue;
        fmt_time(t1, sizeof t1, t->rec.max_hold_ns);
        const char *where = cp_gil_top_holder(p, t, fn, sizeof fn);
        snprintf(line, sizeof line,
                 "%s held the GIL for up to %s at once%s%s, while other threads waited "
                 "over 50 ms for it (a long C call that keeps the GIL?).",
                 cp_gil_thread_name(p, t, name, sizeof name), t1, where ? ", mostly in " : "",
                 where ? where : "");
        add_line(buf, n, &len, line);
        found++;
    }
    if (!found) {
        snprintf(line, sizeof line,
                 "no GIL problem stands out (%.0f%% busy, no thread waiting more than half of "
                 "the time, no hold above 50 ms).",
                 busy);
        add_line(buf, n, &len, line);
    }
    return found;
}

/* Durations of all threads' holds and waits in decades (from the log2
 * buckets: a bucket goes to the decade of its lower bound). */
static void print_histograms(FILE *out, const cp_gil_data *g)
{
    static const char *const label[] = {"<1us",   "1-10us",   "10-100us", "0.1-1ms",
                                        "1-10ms", "10-100ms", "0.1-1s",   ">=1s"};
    enum { NDEC = sizeof label / sizeof *label };
    uint64_t dec[2][NDEC] = {{0}}, total[2] = {0, 0};
    for (size_t i = 0; i < g->n_threads; i++) {
        const cp_gil_thread *t = &g->threads[i];
        for (uint32_t b = 0; b < t->rec.nbuckets && b < CP_GIL_HIST_MAX; b++) {
            uint64_t lo = b == 0 ? 0 : (uint64_t)1 << (b - 1);
            int d = 0;
            for (uint64_t lim = 1000; d < NDEC - 1 && lo >= lim; lim *= 10)
                d++;
            dec[0][d] += t->hold_hist[b];
            dec[1][d] += t->wait_hist[b];
            total[0] += t->hold_hist[b];
            total[1] += t->wait_hist[b];
        }
    }
    fprintf(out, "\n%-6s", "");
    for (int d = 0; d < NDEC; d++)
        fprintf(out, " %9s", label[d]);
    for (int k = 0; k < 2; k++) {
        fprintf(out, "\n%-6s", k ? "waits" : "holds");
        for (int d = 0; d < NDEC; d++)
            fprintf(out, " %8.1f%%", total[k] ? 100.0 * (double)dec[k][d] / (double)total[k] : 0.0);
    }
    fprintf(out, "\n");
}

void cp_gil_print(FILE *out, const cp_profile *p, const cp_gil_data *g)
{
    int64_t dur = g->run.duration_ns;
    bool exact = g->run.method == CPYPROF_GIL_EXACT;
    double secs = dur > 0 ? (double)dur / 1e9 : 0;
    if (exact)
        fprintf(out, "GIL accounting: exact (every transition), %.2fs\n", secs);
    else
        fprintf(out, "GIL accounting: sampled (hold shares only, %llu reads, %.0f/s), %.2fs\n",
                (unsigned long long)g->run.samples, secs > 0 ? (double)g->run.samples / secs : 0.0,
                secs);
    fprintf(out, "GIL busy: %.1f%% of wall time   switches: %llu (%.0f/s)\n\n",
            pct(total_hold(g), dur), (unsigned long long)g->run.switches,
            secs > 0 ? (double)g->run.switches / secs : 0.0);
    fprintf(out, "%-24s %9s %7s %9s %7s %9s %12s %12s\n", "thread", "hold s", "hold%", "wait s",
            "wait%", "acquired", "longest hold", "longest wait");
    char name[256], h[32], w[32];
    for (size_t i = 0; i < g->n_threads; i++) {
        const cp_gil_thread *t = &g->threads[i];
        cp_gil_thread_name(p, t, name, sizeof name);
        if (exact) {
            fmt_time(h, sizeof h, t->rec.max_hold_ns);
            fmt_time(w, sizeof w, t->rec.max_wait_ns);
            fprintf(out, "%-24.24s %9.3f %6.1f%% %9.3f %6.1f%% %9llu %12s %12s\n", name,
                    (double)t->rec.hold_ns / 1e9, pct(t->rec.hold_ns, dur),
                    (double)t->rec.wait_ns / 1e9, pct(t->rec.wait_ns, dur),
                    (unsigned long long)t->rec.acquisitions, h, w);
        } else {
            fprintf(out, "%-24.24s %9.3f %6.1f%% %9s %7s %9s %12s %12s\n", name,
                    (double)t->rec.hold_ns / 1e9, pct(t->rec.hold_ns, dur), "-", "-", "-", "-",
                    "-");
        }
    }
    if (exact)
        print_histograms(out, g);
    if (g->run.stacks_dropped)
        fprintf(out, "\n%llu GIL stacks dropped (node pool full)\n",
                (unsigned long long)g->run.stacks_dropped);
    char advice[4096];
    cp_gil_advice(p, g, advice, sizeof advice);
    fprintf(out, "\nReading:\n");
    for (char *s = advice, *e; *s; s = e + 1) {
        e = strchr(s, '\n');
        if (!e)
            break;
        fprintf(out, "  - %.*s\n", (int)(e - s), s);
    }
}

/* Names (threads, functions, files) come from the profiled program: any
 * bytes. cp_json_string escapes them so that the output always parses. */
static void json_str(FILE *out, const char *s)
{
    cp_json_string(out, s, strlen(s));
}

void cp_gil_print_json(FILE *out, const cp_profile *p, const cp_gil_data *g)
{
    int64_t dur = g->run.duration_ns;
    fprintf(out, "{\"schema\": \"cpyprof.gil/1\", \"method\": \"%s\", \"duration_ns\": %lld, ",
            g->run.method == CPYPROF_GIL_EXACT ? "exact" : "sample", (long long)dur);
    fprintf(out, "\"busy\": %.6f, \"switches\": %llu, \"samples\": %llu, \"threads\": [",
            dur > 0 ? (double)total_hold(g) / (double)dur : 0.0,
            (unsigned long long)g->run.switches, (unsigned long long)g->run.samples);
    char name[256], fn[600];
    for (size_t i = 0; i < g->n_threads; i++) {
        const cp_gil_thread *t = &g->threads[i];
        fprintf(out, "%s{\"thread_id\": ", i ? ", " : "");
        if (t->rec.thread_id == CPYPROF_NONE)
            fprintf(out, "null");
        else
            fprintf(out, "%u", t->rec.thread_id);
        fprintf(out, ", \"name\": ");
        json_str(out, cp_gil_thread_name(p, t, name, sizeof name));
        fprintf(out,
                ", \"native_tid\": %llu, \"hold_ns\": %llu, \"wait_ns\": %llu, "
                "\"acquisitions\": %llu, \"max_hold_ns\": %llu, \"max_wait_ns\": %llu, "
                "\"samples_held\": %llu, \"top_holder\": ",
                (unsigned long long)t->rec.native_tid, (unsigned long long)t->rec.hold_ns,
                (unsigned long long)t->rec.wait_ns, (unsigned long long)t->rec.acquisitions,
                (unsigned long long)t->rec.max_hold_ns, (unsigned long long)t->rec.max_wait_ns,
                (unsigned long long)t->rec.samples_held);
        const char *top = cp_gil_top_holder(p, t, fn, sizeof fn);
        if (top)
            json_str(out, top);
        else
            fprintf(out, "null");
        for (int k = 0; k < 2; k++) {
            fprintf(out, ", \"%s\": [", k ? "wait_hist" : "hold_hist");
            for (uint32_t b = 0; b < t->rec.nbuckets; b++)
                fprintf(out, "%s%llu", b ? ", " : "",
                        (unsigned long long)(k ? t->wait_hist[b] : t->hold_hist[b]));
            fprintf(out, "]");
        }
        fprintf(out, "}");
    }
    fprintf(out, "], \"advice\": [");
    char advice[4096];
    cp_gil_advice(p, g, advice, sizeof advice);
    int k = 0;
    for (char *s = advice, *e; *s; s = e + 1) {
        e = strchr(s, '\n');
        if (!e)
            break;
        *e = '\0';
        fprintf(out, "%s", k++ ? ", " : "");
        json_str(out, s);
    }
    fprintf(out, "]}\n");
}

/* ---- flamegraph ------------------------------------------------------------------ */

int cp_gil_flame(const cp_profile *p, const cp_gil_data *g, uint32_t kind, cp_flame_node **out,
                 size_t *n, char **names, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    *names = NULL;
    if (!g->present || g->run.method != CPYPROF_GIL_EXACT) {
        snprintf(err, errlen,
                 "the profile has no GIL stacks (record with --gil, not --gil=sample)");
        return -1;
    }
    size_t total = 1 + g->n_threads;
    for (size_t i = 0; i < g->n_threads; i++)
        total += g->threads[i].rec.nnodes;
    cp_flame_node *nodes = calloc(total, sizeof *nodes);
    /* Text per node: thread labels and file:line details. */
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
    for (size_t i = 0; i < g->n_threads; i++) {
        const cp_gil_thread *t = &g->threads[i];
        uint32_t nn = t->rec.nnodes;
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
            const struct cpyprof_gil_node_rec *r = &t->nodes[j];
            if (r->kind != kind)
                continue;
            incl[j] += r->ns;
            if (r->parent != CPYPROF_NONE)
                incl[r->parent] += incl[j];
            else
                sum += incl[j];
        }
        if (sum == 0) {
            free(incl);
            free(pos);
            continue;
        }
        char *label = text + k * per;
        char tn[256];
        snprintf(label, per, "thread %s", cp_gil_thread_name(p, t, tn, sizeof tn));
        size_t tk = k;
        nodes[k++] = (cp_flame_node){label, NULL, 0, sum, CPYPROF_FUNC_SPECIAL};
        nodes[0].total += sum;
        for (uint32_t j = 0; j < nn; j++) {
            const struct cpyprof_gil_node_rec *r = &t->nodes[j];
            if (r->kind != kind || incl[j] == 0)
                continue;
            const char *detail;
            char *dbuf = text + k * per;
            const char *name = func_name(p, r->func, &detail, dbuf, per);
            long fi = r->func == CPYPROF_NONE ? -1 : cp_profile_func_index(p, r->func);
            int fk = fi >= 0 ? (int)p->funcs[fi].kind : CPYPROF_FUNC_SPECIAL;
            uint32_t parent = r->parent == CPYPROF_NONE ? (uint32_t)tk : pos[r->parent];
            pos[j] = (uint32_t)k;
            nodes[k++] = (cp_flame_node){name, detail, parent, incl[j], fk};
        }
        free(incl);
        free(pos);
    }
    *out = nodes;
    *n = k;
    *names = text;
    return 0;
}

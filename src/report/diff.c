/*
 * diff.c — `cpyprof diff`: runs reduced to per-function metric values, the
 * two sides compared, rules applied (the method is described in diff.h).
 *
 * Adding a metric: one line in `metrics` below (its source and the field of
 * that source's per-function row). A new source (a new chunk type) needs an
 * extractor in run_extract().
 */
#include "report/diff.h"
#include "report/alloc.h"
#include "report/gil.h"
#include "report/model.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Where a metric's per-function value comes from. SRC_PROGRAM is not per
 * function: one value for the whole run (META), compared in one row. */
enum { SRC_FLAT, SRC_ALLOC, SRC_GIL, SRC_PROGRAM, SRC_COUNT };
static const char *const source_names[SRC_COUNT] = {"call tree", "allocation (--alloc)",
                                                    "GIL (record --gil=exact)", "instructions"};

/* The GIL source's per-function row. */
typedef struct gil_func {
    uint64_t wait_ns;
} gil_func;

static const struct {
    cp_diff_metric m;
    int source;
    size_t offset; /* of a uint64_t in the source's row */
} metrics[] = {
    {{"calls", NULL, CP_UNIT_COUNT, false, "calls of the function (exact)"},
     SRC_FLAT,
     offsetof(cp_func_stats, calls)},
    {{"self", "time", CP_UNIT_NS, true, "time in the function itself, callees excluded"},
     SRC_FLAT,
     offsetof(cp_func_stats, self_ns)},
    {{"total", "time", CP_UNIT_NS, true, "time in the function and its callees"},
     SRC_FLAT,
     offsetof(cp_func_stats, total_ns)},
    {{"alloc-count", "alloc", CP_UNIT_COUNT, false, "allocations made by the function itself"},
     SRC_ALLOC,
     offsetof(cp_alloc_func, allocs)},
    {{"alloc-bytes", "alloc", CP_UNIT_BYTES, false, "bytes allocated by the function itself"},
     SRC_ALLOC,
     offsetof(cp_alloc_func, alloc_bytes)},
    {{"gil-wait", "gil", CP_UNIT_NS, true, "time waiting for the GIL in the function"},
     SRC_GIL,
     offsetof(gil_func, wait_ns)},
    /* stays last: INSTR_METRIC */
    {{"instructions", NULL, CP_UNIT_COUNT, false,
      "user-space instructions of the whole run (hardware counter)"},
     SRC_PROGRAM,
     0},
};
#define NMETRICS (sizeof metrics / sizeof *metrics)

static cp_diff_metric metric_view[NMETRICS];

const cp_diff_metric *cp_diff_metrics(void)
{
    for (size_t i = 0; i < NMETRICS; i++)
        metric_view[i] = metrics[i].m;
    return metric_view;
}

size_t cp_diff_nmetrics(void)
{
    return NMETRICS;
}

int cp_diff_metric_index(const char *name)
{
    for (size_t i = 0; i < NMETRICS; i++)
        if (strcmp(metrics[i].m.name, name) == 0)
            return (int)i;
    return -1;
}

/* ---- runs ------------------------------------------------------------- */

typedef struct run_entry {
    char *key;  /* "FILE:QUALNAME" or "QUALNAME" */
    char *name; /* qualname */
    char *file; /* file key, "" when none */
    uint64_t v[NMETRICS];
} run_entry;

typedef struct run {
    char *name;
    run_entry *e; /* sorted by key, keys unique */
    size_t n;
    bool has[SRC_COUNT];
    uint64_t instructions; /* META instructions, when has[SRC_PROGRAM] */
    char *instr_why;       /* else why not (META instructions_unavailable) */
} run;

struct cp_diff {
    run *runs[2];
    size_t n_runs[2];
    bool samples; /* the runs are sampled profiles (set by the first run) */
    bool samples_known;
    bool active[NMETRICS]; /* the metric's source is in every run of both sides */
    cp_diff_row *rows;
    size_t n_rows;
    long instr_row;     /* index of the instructions row, or -1 */
    char *instr_why[2]; /* per side: why instructions are not compared, or NULL */
    char *notes;
    size_t notes_len;
};

static void note(cp_diff *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#include <stdarg.h>
static void note(cp_diff *d, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = strlen(line);
    if (d->notes && strstr(d->notes, line)) /* once */
        return;
    char *t = realloc(d->notes, d->notes_len + len + 2);
    if (!t)
        return;
    d->notes = t;
    memcpy(d->notes + d->notes_len, line, len);
    d->notes_len += len;
    d->notes[d->notes_len++] = '\n';
    d->notes[d->notes_len] = 0;
}

cp_diff *cp_diff_new(void)
{
    cp_diff *d = calloc(1, sizeof(cp_diff));
    if (d)
        d->instr_row = -1;
    return d;
}

static void run_free(run *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->e[i].key);
        free(r->e[i].name);
        free(r->e[i].file);
    }
    free(r->e);
    free(r->name);
    free(r->instr_why);
}

void cp_diff_free(cp_diff *d)
{
    if (!d)
        return;
    for (int s = 0; s < 2; s++) {
        for (size_t i = 0; i < d->n_runs[s]; i++)
            run_free(&d->runs[s][i]);
        free(d->runs[s]);
    }
    free(d->rows);
    free(d->instr_why[0]);
    free(d->instr_why[1]);
    free(d->notes);
    free(d);
}

char *cp_diff_file_key(const char *file, const char *cwd, char *buf, size_t n)
{
    if (!file)
        file = "";
    size_t cl = cwd ? strlen(cwd) : 0;
    while (cl > 1 && cwd[cl - 1] == '/')
        cl--;
    if (cl > 0 && file[0] == '/' && strncmp(file, cwd, cl) == 0 && file[cl] == '/') {
        snprintf(buf, n, "%s", file + cl + 1);
        return buf;
    }
    static const char *const cuts[] = {"/site-packages/", "/dist-packages/"};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        const char *at = strstr(file, cuts[i]);
        if (at) {
            snprintf(buf, n, "%s", at + strlen(cuts[i]));
            return buf;
        }
    }
    /* the standard library: ".../lib/python3.11/threading.py" */
    const char *at = strstr(file, "/lib/python3.");
    if (at) {
        const char *slash = strchr(at + strlen("/lib/python3."), '/');
        if (slash) {
            snprintf(buf, n, "%s", slash + 1);
            return buf;
        }
    }
    snprintf(buf, n, "%s", file);
    return buf;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const run_entry *)a)->key, ((const run_entry *)b)->key);
}

/* Adds `v` to metric slots of source `src` of function index `fi`. */
static void add_source_row(run_entry *by_func, size_t n_funcs, long fi, int src, const void *row)
{
    if (fi < 0 || (size_t)fi >= n_funcs)
        return;
    for (size_t m = 0; m < NMETRICS; m++)
        if (metrics[m].source == src) {
            uint64_t x;
            memcpy(&x, (const char *)row + metrics[m].offset, sizeof x);
            by_func[fi].v[m] += x;
        }
}

/* The run's instruction count (META instructions, written at the end of a
 * run by src/python/hwcount.c), or why there is none. A value that is not a
 * plain decimal number counts as missing, with that said. */
static int run_instructions(run *r, const cp_profile *p)
{
    const char *v = cp_profile_meta(p, "instructions");
    char why[512];
    if (v) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(v, &end, 10);
        if (v[0] >= '0' && v[0] <= '9' && *end == 0 && errno == 0) {
            r->instructions = n;
            r->has[SRC_PROGRAM] = true;
            return 0;
        }
        snprintf(why, sizeof why, "META instructions '%.40s' is not a number", v);
    } else {
        const char *u = cp_profile_meta(p, "instructions_unavailable");
        snprintf(why, sizeof why, "%s",
                 u ? u : "the profile does not record them (made by an older cpyprof?)");
    }
    r->instr_why = strdup(why);
    return r->instr_why ? 0 : -1;
}

/* Reduces a loaded profile (and its ALLOC/GIL data) to run entries. */
static int run_extract(run *r, const cp_profile *p, const cp_alloc_data *a, const cp_gil_data *g,
                       char *err, size_t errlen)
{
    size_t nf = p->n_funcs;
    run_entry *by_func = calloc(nf ? nf : 1, sizeof *by_func);
    bool *used = calloc(nf ? nf : 1, sizeof *used);
    cp_flat flat = {0};
    cp_alloc_func *arows = NULL;
    size_t an = 0;
    int rc = -1;
    if (!by_func || !used)
        goto oom;
    if (cp_flat_build(p, -1, &flat, err, errlen))
        goto out;
    r->has[SRC_FLAT] = true;
    for (size_t i = 0; i < flat.n; i++) {
        add_source_row(by_func, nf, flat.rows[i].func, SRC_FLAT, &flat.rows[i]);
        used[flat.rows[i].func] = true;
    }
    if (a && a->present) {
        r->has[SRC_ALLOC] = true;
        if (cp_alloc_funcs(a, &arows, &an))
            goto oom;
        for (size_t i = 0; i < an; i++) {
            long fi = arows[i].func == CPYPROF_NONE ? -1 : cp_profile_func_index(p, arows[i].func);
            add_source_row(by_func, nf, fi, SRC_ALLOC, &arows[i]);
            if (fi >= 0)
                used[fi] = true;
        }
    }
    if (g && g->present && g->run.method == CPYPROF_GIL_EXACT) {
        r->has[SRC_GIL] = true;
        for (size_t t = 0; t < g->n_threads; t++)
            for (uint32_t k = 0; k < g->threads[t].rec.nnodes; k++) {
                const struct cpyprof_gil_node_rec *nd = &g->threads[t].nodes[k];
                if (nd->kind != 0 || nd->func == CPYPROF_NONE)
                    continue;
                long fi = cp_profile_func_index(p, nd->func);
                gil_func row = {nd->ns};
                add_source_row(by_func, nf, fi, SRC_GIL, &row);
                if (fi >= 0)
                    used[fi] = true;
            }
    }
    /* keys, then entries sorted by key with equal keys merged */
    const char *cwd = cp_profile_meta(p, "cwd");
    size_t n = 0;
    for (size_t i = 0; i < nf; i++) {
        if (!used[i])
            continue;
        char fk[4096];
        const char *name = cp_func_name(p, (uint32_t)i);
        const char *file = p->funcs[i].file == CPYPROF_NONE ? "" : cp_func_file(p, (uint32_t)i);
        cp_diff_file_key(file, cwd, fk, sizeof fk);
        size_t kl = strlen(fk) + strlen(name) + 2;
        run_entry *e = &by_func[n];
        uint64_t v[NMETRICS];
        memcpy(v, by_func[i].v, sizeof v);
        e->key = malloc(kl);
        e->name = strdup(name);
        e->file = strdup(fk);
        memcpy(e->v, v, sizeof v);
        n++;
        if (!e->key || !e->name || !e->file) {
            r->e = by_func;
            r->n = n;
            by_func = NULL;
            goto oom;
        }
        snprintf(e->key, kl, "%s%s%s", fk, fk[0] ? ":" : "", name);
    }
    qsort(by_func, n, sizeof *by_func, cmp_entry);
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (w > 0 && strcmp(by_func[w - 1].key, by_func[i].key) == 0) {
            for (size_t m = 0; m < NMETRICS; m++)
                by_func[w - 1].v[m] += by_func[i].v[m];
            free(by_func[i].key);
            free(by_func[i].name);
            free(by_func[i].file);
            continue;
        }
        by_func[w++] = by_func[i];
    }
    r->e = by_func;
    r->n = w;
    by_func = NULL;
    rc = 0;
    goto out;
oom:
    snprintf(err, errlen, "out of memory while comparing profiles");
out:
    free(by_func);
    free(used);
    free(arows);
    cp_flat_free(&flat);
    return rc;
}

int cp_diff_add_mem(cp_diff *d, int side, const void *data, size_t size, const char *name,
                    char *err, size_t errlen)
{
    cp_profile p;
    cp_alloc_data a;
    cp_gil_data g;
    char e[1024];
    if (cp_profile_load_mem(&p, data, size, name, err, errlen))
        return -1;
    if (cp_alloc_parse(data, size, &a, e, sizeof e)) {
        snprintf(err, errlen, "%s: %s", name, e);
        cp_profile_free(&p);
        return -1;
    }
    if (cp_gil_parse(data, size, &g, e, sizeof e)) {
        snprintf(err, errlen, "%s: %s", name, e);
        cp_alloc_free(&a);
        cp_profile_free(&p);
        return -1;
    }
    int rc = -1;
    if (d->samples_known && p.samples != d->samples) {
        snprintf(err, errlen,
                 "%s: a %s profile cannot be compared with %s ones (record all runs in the "
                 "same --mode)",
                 name, p.samples ? "sampled" : "traced", d->samples ? "sampled" : "traced");
        goto out;
    }
    d->samples = p.samples;
    d->samples_known = true;
    if (cp_profile_warning(&p, e, sizeof e))
        note(d, "%s: %s", name, e);
    run *t = realloc(d->runs[side], (d->n_runs[side] + 1) * sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory while comparing profiles");
        goto out;
    }
    d->runs[side] = t;
    run *r = &t[d->n_runs[side]];
    memset(r, 0, sizeof *r);
    r->name = strdup(name);
    if (!r->name || run_instructions(r, &p)) {
        run_free(r);
        snprintf(err, errlen, "out of memory while comparing profiles");
        goto out;
    }
    if (run_extract(r, &p, &a, &g, err, errlen)) {
        run_free(r);
        goto out;
    }
    d->n_runs[side]++;
    rc = 0;
out:
    cp_gil_free(&g);
    cp_alloc_free(&a);
    cp_profile_free(&p);
    return rc;
}

int cp_diff_add_file(cp_diff *d, int side, const char *path, char *err, size_t errlen)
{
    uint8_t *buf;
    size_t n;
    if (cp_profile_read_file(path, &buf, &n, err, errlen))
        return -1;
    int rc = cp_diff_add_mem(d, side, buf, n, path, err, errlen);
    free(buf);
    return rc;
}

size_t cp_diff_runs(const cp_diff *d, int side)
{
    return d->n_runs[side];
}

const char *cp_diff_run_name(const cp_diff *d, int side, size_t i)
{
    return i < d->n_runs[side] ? d->runs[side][i].name : NULL;
}

cp_diff_unit cp_diff_unit_of(const cp_diff *d, size_t metric)
{
    cp_diff_unit u = metrics[metric].m.unit;
    return u == CP_UNIT_NS && d->samples && metrics[metric].source == SRC_FLAT ? CP_UNIT_SAMPLES
                                                                               : u;
}

/* ---- comparison ----------------------------------------------------------- */

/* The rule for a row: a rule with a pattern beats one without; among equals
 * the last given wins. -1 when none applies. */
static int pick_rule(const cp_diff_options *o, size_t m, const char *name, const char *file)
{
    int best = -1;
    bool best_pattern = false;
    for (size_t i = 0; i < o->n_rules; i++) {
        const cp_diff_rule *r = &o->rules[i];
        if (!cp_diff_rule_covers(r, m) || !cp_diff_rule_matches(r, name, file))
            continue;
        if (metrics[m].source == SRC_PROGRAM && r->pattern[0])
            continue; /* a whole-run value belongs to no function */
        bool pat = r->pattern[0] != 0;
        if (best < 0 || pat || !best_pattern) {
            best = (int)i;
            best_pattern = pat;
        }
    }
    return best;
}

static void judge(cp_diff *d, const cp_diff_options *o, cp_diff_row *row, const double *b,
                  size_t nb, const double *nw, size_t nn)
{
    const cp_diff_metric *mt = &metrics[row->metric].m;
    row->rule = pick_rule(o, row->metric, row->name, row->file);
    if (row->rule < 0)
        return;
    const cp_diff_rule *r = &o->rules[row->rule];
    bool exceeds = r->relative
                       ? (row->base == 0 ? row->delta > 0 : row->delta > row->base * r->limit / 100)
                       : row->delta > r->limit;
    if (!mt->timing) {
        row->verdict = exceeds ? CP_VERDICT_FAIL : CP_VERDICT_OK;
        return;
    }
    bool big_enough = row->delta >= o->min_time_ns || cp_diff_unit_of(d, row->metric) != CP_UNIT_NS;
    if (!exceeds || !big_enough) {
        row->verdict = CP_VERDICT_OK;
        return;
    }
    double alpha = 1 - o->confidence;
    if (nb < 2 || nn < 2 || cp_mann_whitney_min_p(nb, nn) > alpha) {
        row->verdict = o->threshold_only ? CP_VERDICT_FAIL : CP_VERDICT_NOT_ASSESSED;
        return;
    }
    double *shifted = malloc(nb * sizeof *shifted);
    if (!shifted) {
        row->verdict = CP_VERDICT_NOT_ASSESSED;
        return;
    }
    for (size_t i = 0; i < nb; i++)
        shifted[i] = r->relative ? b[i] * (1 + r->limit / 100) : b[i] + r->limit;
    row->p_rule = cp_mann_whitney_greater(shifted, nb, nw, nn);
    free(shifted);
    /* decided with the other tested rows in holm() */
    row->verdict = CP_VERDICT_OK;
    row->tested_ = true;
}

static int cmp_p_rule(const void *a, const void *b)
{
    double x = (*(cp_diff_row *const *)a)->p_rule, y = (*(cp_diff_row *const *)b)->p_rule;
    return (x > y) - (x < y);
}

/* Holm-Bonferroni over the rows tested: a comparison tests many functions
 * at once, and without a correction one of them is "significant" by chance
 * now and then. Sorted by p, the i-th smallest (from 0) of m fails while
 * p <= alpha / (m - i); the first that does not stops the walk. The
 * family-wise false-flag rate of a comparison is then at most 1 - confidence.
 * Returns -1 when out of memory. */
static int holm(cp_diff *d, double alpha)
{
    size_t m = 0;
    for (size_t i = 0; i < d->n_rows; i++)
        m += d->rows[i].tested_;
    if (!m)
        return 0;
    size_t nb = d->n_runs[CP_DIFF_BASE], nn = d->n_runs[CP_DIFF_NEW];
    if (cp_mann_whitney_min_p(nb, nn) > alpha / (double)m) {
        /* no outcome of the runs could pass the correction: say so, and
         * how many runs would */
        size_t need = 2;
        while (need < 50 && cp_mann_whitney_min_p(need, need) > alpha / (double)m)
            need++;
        note(d,
             "%zu BASE and %zu NEW runs cannot show a change in %zu functions at %.4g%% "
             "confidence (Holm correction; the smallest p is %.3g): those time rules are not "
             "assessed; record at least %zu runs per side",
             nb, nn, m, (1 - alpha) * 100, cp_mann_whitney_min_p(nb, nn), need);
        for (size_t i = 0; i < d->n_rows; i++)
            if (d->rows[i].tested_)
                d->rows[i].verdict = CP_VERDICT_NOT_ASSESSED;
        return 0;
    }
    cp_diff_row **v = malloc(m * sizeof *v);
    if (!v)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < d->n_rows; i++)
        if (d->rows[i].tested_)
            v[k++] = &d->rows[i];
    qsort(v, m, sizeof *v, cmp_p_rule);
    for (size_t i = 0; i < m && v[i]->p_rule <= alpha / (double)(m - i); i++)
        v[i]->verdict = CP_VERDICT_FAIL;
    free(v);
    return 0;
}

/* A zeroed row at the end of d->rows (capacity *cap), or NULL. */
static cp_diff_row *new_row(cp_diff *d, size_t *cap)
{
    if (d->n_rows == *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        cp_diff_row *t = realloc(d->rows, nc * sizeof *t);
        if (!t)
            return NULL;
        d->rows = t;
        *cap = nc;
    }
    cp_diff_row *row = &d->rows[d->n_rows++];
    memset(row, 0, sizeof *row);
    return row;
}

/* "instructions", the last line of the metric table */
#define INSTR_METRIC (NMETRICS - 1)

/* Whether every run of both sides counted instructions (d->active), and per
 * side why not (d->instr_why, one line: the first missing run's reason). */
static void instructions_sides(cp_diff *d, const cp_diff_options *o)
{
    size_t missing[2] = {0, 0};
    const char *why[2] = {NULL, NULL};
    for (int s = 0; s < 2; s++) {
        free(d->instr_why[s]);
        d->instr_why[s] = NULL;
        for (size_t i = 0; i < d->n_runs[s]; i++)
            if (!d->runs[s][i].has[SRC_PROGRAM]) {
                missing[s]++;
                if (!why[s])
                    why[s] = d->runs[s][i].instr_why;
            }
    }
    d->active[INSTR_METRIC] = !missing[0] && !missing[1];
    if (d->active[INSTR_METRIC])
        return;
    char side[2][600];
    for (int s = 0; s < 2; s++) {
        const char *name = s ? "NEW" : "BASE";
        if (!missing[s])
            side[s][0] = 0;
        else if (missing[s] == d->n_runs[s])
            snprintf(side[s], sizeof side[s], "%s (%s)", name, why[s]);
        else
            snprintf(side[s], sizeof side[s], "%zu of %zu %s runs (%s)", missing[s], d->n_runs[s],
                     name, why[s]);
        d->instr_why[s] = missing[s] ? strdup(why[s]) : NULL;
    }
    bool ruled = false;
    for (size_t i = 0; i < o->n_rules; i++)
        ruled |= cp_diff_rule_covers(&o->rules[i], INSTR_METRIC) && !o->rules[i].pattern[0];
    const char *tail = ruled ? ": instruction rules are not checked" : "";
    if (missing[0] && missing[1] && strcmp(why[0], why[1]) == 0 && missing[0] == d->n_runs[0] &&
        missing[1] == d->n_runs[1])
        note(d, "instructions: not available in BASE or NEW (%s)%s", why[0], tail);
    else if (missing[0] && missing[1])
        note(d, "instructions: not available in %s nor in %s%s", side[0], side[1], tail);
    else
        note(d, "instructions: not available in %s%s", missing[0] ? side[0] : side[1], tail);
}

/* The one instructions row (whole run, key "(program)"): the first row, so
 * rows stay sorted by key ('(' sorts before file names). */
static int add_instructions_row(cp_diff *d, const cp_diff_options *o, size_t *cap, double *vb,
                                double *vn)
{
    size_t nb = d->n_runs[CP_DIFF_BASE], nn = d->n_runs[CP_DIFF_NEW];
    for (size_t i = 0; i < nb; i++)
        vb[i] = (double)d->runs[CP_DIFF_BASE][i].instructions;
    for (size_t i = 0; i < nn; i++)
        vn[i] = (double)d->runs[CP_DIFF_NEW][i].instructions;
    cp_diff_row *row = new_row(d, cap);
    if (!row)
        return -1;
    row->key = row->name = CP_DIFF_PROGRAM;
    row->file = "";
    row->metric = INSTR_METRIC;
    row->base = cp_median(vb, nb);
    row->new_ = cp_median(vn, nn);
    row->delta = row->new_ - row->base;
    row->change = row->base != 0 ? row->delta / row->base : row->delta > 0 ? INFINITY : 0;
    row->p = row->p_rule = NAN;
    row->rule = -1;
    judge(d, o, row, vb, nb, vn, nn);
    d->instr_row = (long)(d->n_rows - 1);
    return 0;
}

typedef struct ref {
    const run_entry *e;
    int side;
    size_t run;
} ref;

static int cmp_ref(const void *a, const void *b)
{
    const ref *x = a, *y = b;
    int c = strcmp(x->e->key, y->e->key);
    if (c)
        return c;
    if (x->side != y->side)
        return x->side - y->side;
    return (x->run > y->run) - (x->run < y->run);
}

int cp_diff_compute(cp_diff *d, const cp_diff_options *o, char *err, size_t errlen)
{
    size_t nb = d->n_runs[CP_DIFF_BASE], nn = d->n_runs[CP_DIFF_NEW];
    if (nb == 0 || nn == 0) {
        snprintf(err, errlen, "nothing to compare: %s has no profile", nb ? "NEW" : "BASE");
        return -1;
    }
    free(d->rows);
    d->rows = NULL;
    d->n_rows = 0;
    d->instr_row = -1;
    /* a metric is compared when its source is in every run */
    for (int src = 0; src < SRC_PROGRAM; src++) {
        size_t have[2] = {0, 0};
        for (int s = 0; s < 2; s++)
            for (size_t i = 0; i < d->n_runs[s]; i++)
                have[s] += d->runs[s][i].has[src];
        bool all = have[0] == nb && have[1] == nn;
        for (size_t m = 0; m < NMETRICS; m++)
            if (metrics[m].source == src)
                d->active[m] = all;
        if (!all && have[0] + have[1] > 0)
            note(d,
                 "%s data is in %zu of %zu BASE and %zu of %zu NEW runs: its metrics are "
                 "not compared",
                 source_names[src], have[0], nb, have[1], nn);
    }
    instructions_sides(d, o);
    double alpha = 1 - o->confidence;
    bool any_timing_rule = false;
    for (size_t i = 0; i < o->n_rules; i++)
        for (size_t m = 0; m < NMETRICS; m++)
            if (metrics[m].m.timing && d->active[m] && cp_diff_rule_covers(&o->rules[i], m))
                any_timing_rule = true;
    if (any_timing_rule && (nb < 2 || nn < 2)) {
        if (o->threshold_only)
            note(d, "one run on a side: significance cannot be assessed; time rules compare the "
                    "single values (--threshold-only)");
        else
            note(d, "one run on a side: significance cannot be assessed, so time rules cannot "
                    "fail (record several runs per side, or pass --threshold-only)");
    } else if (any_timing_rule && cp_mann_whitney_min_p(nb, nn) > alpha) {
        note(d,
             "%zu BASE and %zu NEW runs cannot reach %.4g%% confidence (the smallest p is "
             "%.3g): time rules cannot fail; record more runs per side",
             nb, nn, o->confidence * 100, cp_mann_whitney_min_p(nb, nn));
    }

    size_t total = 0;
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < d->n_runs[s]; i++)
            total += d->runs[s][i].n;
    ref *refs = malloc((total ? total : 1) * sizeof *refs);
    double *vb = malloc(nb * sizeof *vb), *vn = malloc(nn * sizeof *vn);
    double *sb = malloc(nb * sizeof *sb), *sn = malloc(nn * sizeof *sn);
    size_t cap = 0;
    int rc = -1;
    if (!refs || !vb || !vn || !sb || !sn)
        goto oom;
    size_t k = 0;
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < d->n_runs[s]; i++)
            for (size_t j = 0; j < d->runs[s][i].n; j++)
                refs[k++] = (ref){&d->runs[s][i].e[j], s, i};
    qsort(refs, total, sizeof *refs, cmp_ref);
    if (d->active[INSTR_METRIC] && add_instructions_row(d, o, &cap, vb, vn))
        goto oom;
    for (size_t g = 0; g < total;) {
        size_t h = g;
        while (h < total && strcmp(refs[h].e->key, refs[g].e->key) == 0)
            h++;
        for (size_t m = 0; m < NMETRICS; m++) {
            if (!d->active[m] || metrics[m].source == SRC_PROGRAM)
                continue;
            memset(vb, 0, nb * sizeof *vb);
            memset(vn, 0, nn * sizeof *vn);
            bool any = false;
            for (size_t x = g; x < h; x++) {
                double v = (double)refs[x].e->v[m];
                (refs[x].side == CP_DIFF_BASE ? vb : vn)[refs[x].run] = v;
                any |= v != 0;
            }
            if (!any)
                continue;
            cp_diff_row *row = new_row(d, &cap);
            if (!row)
                goto oom;
            row->key = refs[g].e->key;
            row->name = refs[g].e->name;
            row->file = refs[g].e->file;
            row->metric = m;
            memcpy(sb, vb, nb * sizeof *sb);
            memcpy(sn, vn, nn * sizeof *sn);
            row->base = cp_median(sb, nb);
            row->new_ = cp_median(sn, nn);
            row->delta = row->new_ - row->base;
            row->change = row->base != 0 ? row->delta / row->base : row->delta > 0 ? INFINITY : 0;
            row->p = row->p_rule = NAN;
            if (metrics[m].m.timing && nb >= 2 && nn >= 2)
                row->p = row->delta >= 0 ? cp_mann_whitney_greater(vb, nb, vn, nn)
                                         : cp_mann_whitney_greater(vn, nn, vb, nb);
            row->rule = -1;
            judge(d, o, row, vb, nb, vn, nn);
        }
        g = h;
    }
    if (holm(d, alpha))
        goto oom;
    rc = 0;
    goto out;
oom:
    snprintf(err, errlen, "out of memory while comparing profiles");
out:
    free(refs);
    free(vb);
    free(vn);
    free(sb);
    free(sn);
    return rc;
}

const cp_diff_row *cp_diff_rows(const cp_diff *d, size_t *n)
{
    *n = d->n_rows;
    return d->rows;
}

size_t cp_diff_failures(const cp_diff *d)
{
    size_t f = 0;
    for (size_t i = 0; i < d->n_rows; i++)
        f += d->rows[i].verdict == CP_VERDICT_FAIL;
    return f;
}

const cp_diff_row *cp_diff_instructions(const cp_diff *d, const char **why_base,
                                        const char **why_new)
{
    if (why_base)
        *why_base = d->instr_why[CP_DIFF_BASE];
    if (why_new)
        *why_new = d->instr_why[CP_DIFF_NEW];
    return d->instr_row >= 0 ? &d->rows[d->instr_row] : NULL;
}

const char *cp_diff_notes(const cp_diff *d)
{
    return d->notes ? d->notes : "";
}

/* samples_table.c — see samples_table.h. */
#include "report/samples_table.h"

#include "report/text.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static double pct(uint64_t x, uint64_t total)
{
    return total ? 100.0 * (double)x / (double)total : 0;
}

uint64_t cp_sample_period_ns(const cp_profile *p)
{
    const char *rate = cp_profile_meta(p, "sample_rate");
    if (!rate)
        return 0;
    char *end;
    errno = 0;
    unsigned long long hz = strtoull(rate, &end, 10);
    if (errno || end == rate || *end || hz == 0)
        return 0;
    return 1000000000ull / hz;
}

typedef struct lines_sort_ctx {
    const cp_profile *p;
    cp_sort_key key;
} lines_sort_ctx;

static int cmp_u(uint64_t a, uint64_t b)
{
    return a < b ? -1 : a > b;
}

static int cmp_line_rows(const void *va, const void *vb, void *vctx)
{
    const cp_line_stats *a = va, *b = vb;
    const lines_sort_ctx *c = vctx;
    int r = 0;
    if (c->key == CP_SORT_TOTAL)
        r = cmp_u(b->total, a->total) ? cmp_u(b->total, a->total) : cmp_u(b->self, a->self);
    else if (c->key != CP_SORT_NAME)
        r = cmp_u(b->self, a->self) ? cmp_u(b->self, a->self) : cmp_u(b->total, a->total);
    if (r)
        return r;
    if (a->func != b->func) {
        char la[512], lb[512];
        cp_func_label(c->p, a->func, la, sizeof la);
        cp_func_label(c->p, b->func, lb, sizeof lb);
        r = strcmp(la, lb);
        if (r)
            return r;
    }
    if (a->line != b->line)
        return cmp_u(a->line, b->line);
    return cmp_u(a->func, b->func);
}

void cp_lines_sort(cp_lines *l, const cp_profile *p, cp_sort_key key)
{
    lines_sort_ctx c = {p, key};
    if (l->n > 1)
        qsort_r(l->rows, l->n, sizeof *l->rows, cmp_line_rows, &c);
}

static int write_lines(FILE *out, const cp_profile *p, long thread, cp_sort_key key, size_t limit,
                       uint64_t total, char *err, size_t errlen)
{
    cp_lines l;
    if (cp_lines_build(p, thread, &l, err, errlen))
        return -1;
    cp_lines_sort(&l, p, key);
    size_t shown = limit && limit < l.n ? limit : l.n;
    fprintf(out, "\nlines: %zu (showing %zu, sorted by %s)\n", l.n, shown, cp_sort_key_name(key));
    fprintf(out, "%7s %7s %10s %10s %7s  %s\n", "self%", "total%", "self", "total", "line",
            "function");
    char label[1024];
    for (size_t i = 0; i < shown; i++) {
        const cp_line_stats *s = &l.rows[i];
        cp_func_label(p, s->func, label, sizeof label);
        fprintf(out, "%6.2f%% %6.2f%% %10llu %10llu %7u  %s\n", pct(s->self, total),
                pct(s->total, total), (unsigned long long)s->self, (unsigned long long)s->total,
                s->line, cp_one_line(label));
    }
    cp_lines_free(&l);
    return 0;
}

int cp_samples_table_write(FILE *out, const cp_profile *p, const cp_table_options *o, char *err,
                           size_t errlen)
{
    char buf[4096];
    size_t len;
    const char *argv = cp_profile_meta_len(p, "argv", &len);
    const char *clock = cp_profile_meta(p, "sample_clock");
    const char *rate = cp_profile_meta(p, "sample_rate");
    if (o->source)
        fprintf(out, "profile:  %s\n", o->source);
    fprintf(out, "command:  %s\n",
            argv ? cp_one_line(cp_argv_join(argv, len, buf, sizeof buf)) : "?");
    fprintf(out, "duration: %s",
            p->has_trailer
                ? cp_fmt_ns((uint64_t)(p->trailer.duration_ns > 0 ? p->trailer.duration_ns : 0),
                            buf, sizeof buf)
                : "unknown");
    fprintf(out, "   threads: %zu   mode: sample (%s clock, %s Hz)\n", p->n_threads,
            clock ? clock : "?", rate ? rate : "?");
    if (p->has_trailer)
        fprintf(out, "dropped:  %llu records\n", (unsigned long long)p->trailer.events_dropped);
    if (cp_profile_warning(p, buf, sizeof buf))
        fprintf(out, "warning: %s\n", buf);
    size_t n_tables = o->per_thread ? p->n_threads : 1;
    cp_sort_key key = o->sort == CP_SORT_TOTAL || o->sort == CP_SORT_NAME ? o->sort : CP_SORT_SELF;
    for (size_t t = 0; t < n_tables; t++) {
        long thread = o->per_thread ? (long)t : -1;
        cp_flat f;
        if (cp_flat_build(p, thread, &f, err, errlen))
            return -1;
        cp_flat_sort(&f, p, key);
        uint64_t total = 0; /* every sample has exactly one innermost frame */
        for (size_t i = 0; i < f.n; i++)
            total += f.rows[i].self_ns;
        fputc('\n', out);
        if (o->per_thread)
            cp_table_thread_heading(out, p, t);
        size_t shown = o->limit && o->limit < f.n ? o->limit : f.n;
        fprintf(out, "samples: %llu   functions: %zu (showing %zu, sorted by %s)\n",
                (unsigned long long)total, f.n, shown, cp_sort_key_name(key));
        fprintf(out, "%7s %7s %10s %10s  %s\n", "self%", "total%", "self", "total", "function");
        char label[1024];
        for (size_t i = 0; i < shown; i++) {
            const cp_func_stats *s = &f.rows[i];
            cp_func_label(p, s->func, label, sizeof label);
            fprintf(out, "%6.2f%% %6.2f%% %10llu %10llu  %s\n", pct(s->self_ns, total),
                    pct(s->total_ns, total), (unsigned long long)s->self_ns,
                    (unsigned long long)s->total_ns, cp_one_line(label));
        }
        cp_flat_free(&f);
        if (o->lines && write_lines(out, p, thread, key, o->limit, total, err, errlen))
            return -1;
    }
    return cp_flush_checked(out, "cannot write the report", err, errlen);
}

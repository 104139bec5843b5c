/* table.c — sorting the flat table and the text report (see table.h). */
#include "report/table.h"
#include "report/text.h"

#include <stdlib.h>
#include <string.h>

static const char *const sort_names[] = {
    [CP_SORT_CALLS] = "calls",
    [CP_SORT_SELF] = "self",
    [CP_SORT_TOTAL] = "total",
    [CP_SORT_SELF_PER_CALL] = "self-per-call",
    [CP_SORT_TOTAL_PER_CALL] = "total-per-call",
    [CP_SORT_NAME] = "name",
};

int cp_sort_key_parse(const char *text, cp_sort_key *out)
{
    for (size_t i = 0; i < sizeof sort_names / sizeof *sort_names; i++) {
        if (strcmp(text, sort_names[i]) == 0) {
            *out = (cp_sort_key)i;
            return 0;
        }
    }
    return -1;
}

const char *cp_sort_key_name(cp_sort_key key)
{
    return (size_t)key < sizeof sort_names / sizeof *sort_names ? sort_names[key] : "?";
}

static uint64_t per_call(uint64_t ns, uint64_t calls)
{
    return calls ? ns / calls : 0;
}

static uint64_t sort_value(const cp_func_stats *s, cp_sort_key key)
{
    switch (key) {
    case CP_SORT_CALLS:
        return s->calls;
    case CP_SORT_SELF:
        return s->self_ns;
    case CP_SORT_TOTAL:
        return s->total_ns;
    case CP_SORT_SELF_PER_CALL:
        return per_call(s->self_ns, s->calls);
    case CP_SORT_TOTAL_PER_CALL:
        return per_call(s->total_ns, s->calls);
    default:
        return 0;
    }
}

typedef struct sort_ctx {
    const cp_profile *p;
    cp_sort_key key;
} sort_ctx;

/* Name, then file, then line: the label order without building labels. */
static int cmp_by_name(const cp_profile *p, uint32_t a, uint32_t b)
{
    int c = strcmp(cp_func_name(p, a), cp_func_name(p, b));
    if (c == 0)
        c = strcmp(cp_func_file(p, a), cp_func_file(p, b));
    if (c == 0 && p->funcs[a].line != p->funcs[b].line)
        c = p->funcs[a].line < p->funcs[b].line ? -1 : 1;
    if (c == 0 && a != b)
        c = a < b ? -1 : 1;
    return c;
}

static int cmp_rows(const void *va, const void *vb, void *vctx)
{
    const cp_func_stats *a = va, *b = vb;
    const sort_ctx *c = vctx;
    if (c->key != CP_SORT_NAME) {
        uint64_t x = sort_value(a, c->key), y = sort_value(b, c->key);
        if (x != y)
            return x > y ? -1 : 1;
    }
    return cmp_by_name(c->p, a->func, b->func);
}

void cp_flat_sort(cp_flat *f, const cp_profile *p, cp_sort_key key)
{
    sort_ctx c = {p, key};
    if (f->n > 1)
        qsort_r(f->rows, f->n, sizeof *f->rows, cmp_rows, &c);
}

/* ---- text ------------------------------------------------------------------- */

void cp_table_thread_heading(FILE *out, const cp_profile *p, size_t thread)
{
    char name[256];
    fprintf(out, "thread %u: %s (native tid %llu)\n", p->threads[thread].rec.id,
            cp_one_line(cp_thread_name(p, thread, name, sizeof name)),
            (unsigned long long)p->threads[thread].rec.native_tid);
}

static void write_header(FILE *out, const cp_profile *p, const cp_table_options *o)
{
    char buf[4096];
    size_t len;
    const char *argv = cp_profile_meta_len(p, "argv", &len);
    const char *mode = cp_profile_meta(p, "mode");
    if (o->source)
        fprintf(out, "profile:  %s\n", o->source);
    fprintf(out, "command:  %s\n",
            argv ? cp_one_line(cp_argv_join(argv, len, buf, sizeof buf)) : "?");
    if (p->has_trailer)
        fprintf(out, "duration: %s",
                cp_fmt_ns((uint64_t)(p->trailer.duration_ns > 0 ? p->trailer.duration_ns : 0), buf,
                          sizeof buf));
    else
        fprintf(out, "duration: unknown");
    fprintf(out, "   threads: %zu   mode: %s\n", p->n_threads, mode ? mode : "?");
    if (p->has_trailer)
        fprintf(out, "dropped:  %llu records\n", (unsigned long long)p->trailer.events_dropped);
    else
        fprintf(out, "dropped:  unknown (no trailer)\n");
    /* hardware counters: shown when measured; when not (most VMs), META
     * instructions_unavailable says why (report --json) */
    const char *instructions = cp_profile_meta(p, "instructions");
    if (instructions)
        fprintf(out, "instructions: %.40s (user space, the thread that started profiling)\n",
                instructions);
    if (cp_profile_warning(p, buf, sizeof buf))
        fprintf(out, "warning: %s\n", buf);
}

static void write_rows(FILE *out, const cp_profile *p, const cp_flat *f, const cp_table_options *o)
{
    size_t shown = o->limit && o->limit < f->n ? o->limit : f->n;
    fprintf(out, "functions: %zu (showing %zu, sorted by %s)\n", f->n, shown,
            cp_sort_key_name(o->sort));
    fprintf(out, "%10s %10s %10s %10s %10s  %s\n", "calls", "self", "total", "self/call",
            "total/call", "function");
    char a[32], b[32], c[32], d[32];
    char label[1024];
    for (size_t i = 0; i < shown; i++) {
        const cp_func_stats *s = &f->rows[i];
        cp_func_label(p, s->func, label, sizeof label);
        bool calls = s->calls > 0;
        fprintf(out, "%10llu %10s %10s %10s %10s  %s\n", (unsigned long long)s->calls,
                cp_fmt_ns(s->self_ns, a, sizeof a), cp_fmt_ns(s->total_ns, b, sizeof b),
                calls ? cp_fmt_ns(per_call(s->self_ns, s->calls), c, sizeof c) : "-",
                calls ? cp_fmt_ns(per_call(s->total_ns, s->calls), d, sizeof d) : "-",
                cp_one_line(label));
    }
}

int cp_table_write(FILE *out, const cp_profile *p, const cp_table_options *o, char *err,
                   size_t errlen)
{
    write_header(out, p, o);
    size_t n_tables = o->per_thread ? p->n_threads : 1;
    for (size_t t = 0; t < n_tables; t++) {
        cp_flat f;
        if (cp_flat_build(p, o->per_thread ? (long)t : -1, &f, err, errlen))
            return -1;
        cp_flat_sort(&f, p, o->sort);
        fputc('\n', out);
        if (o->per_thread)
            cp_table_thread_heading(out, p, t);
        write_rows(out, p, &f, o);
        cp_flat_free(&f);
    }
    return cp_flush_checked(out, "cannot write the report", err, errlen);
}

/*
 * report_json.c — `cpyprof report --json` (schema "cpyprof.report/1").
 *
 * The layout is part of the contract (docs/format.md, "report --json"):
 * scripts and CI compare it, so keys keep their order, every function sits
 * on one line, and a change of meaning needs a new schema name.
 */
#include "report/samples_table.h"
#include "report/alloc.h"
#include "report/table.h"
#include "report/text.h"

#include <string.h>

static void json_str_or_null(FILE *out, const char *s)
{
    if (s)
        cp_json_string(out, s, strlen(s));
    else
        fputs("null", out);
}

static const char *kind_name(uint32_t kind)
{
    switch (kind) {
    case CPYPROF_FUNC_PYTHON:
        return "python";
    case CPYPROF_FUNC_BUILTIN:
        return "builtin";
    case CPYPROF_FUNC_SPECIAL:
        return "special";
    default:
        return "unknown";
    }
}

/* Every key once, where it first appears, with its last value. */
static void write_meta(FILE *out, const cp_profile *p)
{
    fputs("  \"meta\": {", out);
    bool first = true;
    for (size_t i = 0; i < p->n_meta; i++) {
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = strcmp(p->meta[k].key, p->meta[i].key) == 0;
        if (seen)
            continue;
        size_t len;
        const char *v = cp_profile_meta_len(p, p->meta[i].key, &len);
        fputs(first ? "" : ", ", out);
        first = false;
        cp_json_string(out, p->meta[i].key, strlen(p->meta[i].key));
        fputs(": ", out);
        cp_json_string(out, v, len);
    }
    fputs("},\n", out);
}

static int write_lines(FILE *out, const cp_profile *p, long thread, const cp_table_options *o,
                       const char *indent, char *err, size_t errlen)
{
    cp_lines l;
    if (cp_lines_build(p, thread, &l, err, errlen))
        return -1;
    cp_lines_sort(&l, p, o->sort);
    size_t shown = o->limit && o->limit < l.n ? o->limit : l.n;
    fputc('[', out);
    for (size_t i = 0; i < shown; i++) {
        const cp_line_stats *s = &l.rows[i];
        const struct cpyprof_func_rec *fn = &p->funcs[s->func];
        fprintf(out, "%s\n%s  {\"name\": ", i ? "," : "", indent);
        json_str_or_null(out, cp_profile_string(p, fn->name));
        fputs(", \"file\": ", out);
        json_str_or_null(out, cp_profile_string(p, fn->file));
        fprintf(out,
                ", \"first_line\": %u, \"line\": %u, \"samples_self\": %llu, "
                "\"samples_total\": %llu}",
                fn->line, s->line, (unsigned long long)s->self, (unsigned long long)s->total);
    }
    if (shown)
        fprintf(out, "\n%s", indent);
    fputc(']', out);
    cp_lines_free(&l);
    return 0;
}

static uint64_t total_samples(const cp_profile *p)
{
    uint64_t n = 0;
    for (size_t t = 0; t < p->n_threads; t++) {
        const cp_thread *th = &p->threads[t];
        for (size_t i = 0; i < th->n_nodes; i++)
            if (th->nodes[i].parent == CPYPROF_NONE)
                n += th->nodes[i].total_ns;
    }
    return n;
}

static int write_functions(FILE *out, const cp_profile *p, long thread, const cp_table_options *o,
                           const char *indent, char *err, size_t errlen)
{
    cp_flat f;
    if (cp_flat_build(p, thread, &f, err, errlen))
        return -1;
    cp_flat_sort(&f, p, o->sort);
    size_t shown = o->limit && o->limit < f.n ? o->limit : f.n;
    fputc('[', out);
    for (size_t i = 0; i < shown; i++) {
        const cp_func_stats *s = &f.rows[i];
        const struct cpyprof_func_rec *fn = &p->funcs[s->func];
        fprintf(out, "%s\n%s  {\"name\": ", i ? "," : "", indent);
        json_str_or_null(out, cp_profile_string(p, fn->name));
        fputs(", \"file\": ", out);
        json_str_or_null(out, cp_profile_string(p, fn->file));
        if (p->samples) {
            /* self_ns/total_ns hold sample counts here: times are estimated
             * as samples x the sampling interval. */
            uint64_t period = cp_sample_period_ns(p);
            fprintf(out,
                    ", \"line\": %u, \"kind\": \"%s\", \"calls\": 0, \"self_ns\": %llu, "
                    "\"total_ns\": %llu, \"samples_self\": %llu, \"samples_total\": %llu}",
                    fn->line, kind_name(fn->kind), (unsigned long long)(s->self_ns * period),
                    (unsigned long long)(s->total_ns * period), (unsigned long long)s->self_ns,
                    (unsigned long long)s->total_ns);
        } else {
            fprintf(out,
                    ", \"line\": %u, \"kind\": \"%s\", \"calls\": %llu, \"self_ns\": %llu, "
                    "\"total_ns\": %llu}",
                    fn->line, kind_name(fn->kind), (unsigned long long)s->calls,
                    (unsigned long long)s->self_ns, (unsigned long long)s->total_ns);
        }
    }
    if (shown)
        fprintf(out, "\n%s", indent);
    fputc(']', out);
    cp_flat_free(&f);
    return 0;
}

int cp_report_json_write(FILE *out, const cp_profile *p, const cp_table_options *o, char *err,
                         size_t errlen)
{
    fputs("{\n  \"schema\": \"cpyprof.report/1\",\n", out);
    write_meta(out, p);
    fputs("  \"threads\": [", out);
    for (size_t t = 0; t < p->n_threads; t++) {
        const struct cpyprof_thread_rec *r = &p->threads[t].rec;
        fprintf(out, "%s\n    {\"id\": %u, \"name\": ", t ? "," : "", r->id);
        json_str_or_null(out, cp_profile_string(p, r->name));
        fprintf(out, ", \"ident\": %llu, \"native_tid\": %llu", (unsigned long long)r->ident,
                (unsigned long long)r->native_tid);
        if (o->per_thread) {
            fputs(", \"functions\": ", out);
            if (write_functions(out, p, (long)t, o, "    ", err, errlen))
                return -1;
            if (p->samples && o->lines) {
                fputs(", \"lines\": ", out);
                if (write_lines(out, p, (long)t, o, "    ", err, errlen))
                    return -1;
            }
        }
        fputc('}', out);
    }
    fputs(p->n_threads ? "\n  ],\n" : "],\n", out);
    fprintf(out, "  \"dropped\": %llu,\n", (unsigned long long)p->trailer.events_dropped);
    fprintf(out, "  \"truncated\": %s,\n", p->truncated ? "true" : "false");
    if (p->has_trailer)
        fprintf(out, "  \"duration_ns\": %lld,\n", (long long)p->trailer.duration_ns);
    else
        fputs("  \"duration_ns\": null,\n", out);
    if (p->samples)
        fprintf(out, "  \"samples\": %llu,\n", (unsigned long long)total_samples(p));
    fputs("  \"functions\": ", out);
    if (write_functions(out, p, -1, o, "  ", err, errlen))
        return -1;
    if (p->samples && o->lines) {
        fputs(",\n  \"lines\": ", out);
        if (write_lines(out, p, -1, o, "  ", err, errlen))
            return -1;
    }
    if (o->alloc)
        cp_alloc_print_json(out, p, o->alloc);
    fputs("\n}\n", out);
    return cp_flush_checked(out, "cannot write the report", err, errlen);
}

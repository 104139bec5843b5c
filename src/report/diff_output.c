/*
 * diff_output.c — `cpyprof diff` as text, Markdown (a pull-request comment),
 * JSON (schema cpyprof.diff/1, docs/format.md) and JUnit XML (one test case
 * per rule, for CI test-report viewers).
 */
#include "report/diff.h"
#include "report/text.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int cp_diff_format_parse(const char *text, cp_diff_format *out)
{
    static const char *const names[] = {"text", "markdown", "json", "junit"};
    for (int i = 0; i < 4; i++)
        if (strcmp(text, names[i]) == 0) {
            *out = (cp_diff_format)i;
            return 0;
        }
    return -1;
}

char *cp_diff_fmt_value(const cp_diff *d, size_t metric, double v, char *buf, size_t n)
{
    const char *sign = v < 0 ? "-" : "";
    double a = fabs(v);
    switch (cp_diff_unit_of(d, metric)) {
    case CP_UNIT_NS: {
        char t[64];
        snprintf(buf, n, "%s%s", sign, cp_fmt_ns((uint64_t)llround(a), t, sizeof t));
        break;
    }
    case CP_UNIT_BYTES:
        if (a < 10000)
            snprintf(buf, n, "%s%.0f B", sign, a);
        else if (a < 10e6)
            snprintf(buf, n, "%s%.1f KiB", sign, a / 1024);
        else
            snprintf(buf, n, "%s%.1f MiB", sign, a / (1024 * 1024));
        break;
    default:
        snprintf(buf, n, a == floor(a) ? "%s%.0f" : "%s%.1f", sign, a);
        break;
    }
    return buf;
}

static char *fmt_change(const cp_diff_row *r, char *buf, size_t n)
{
    if (isinf(r->change))
        snprintf(buf, n, "new");
    else if (r->new_ == 0 && r->base != 0)
        snprintf(buf, n, "gone");
    else
        snprintf(buf, n, "%+.1f%%", r->change * 100);
    return buf;
}

static char *fmt_p(double p, char *buf, size_t n)
{
    if (isnan(p))
        snprintf(buf, n, "-");
    else if (p < 0.001)
        snprintf(buf, n, "<0.001");
    else
        snprintf(buf, n, "%.3f", p);
    return buf;
}

static char *label(const cp_diff_row *r, char *buf, size_t n)
{
    if (r->file[0])
        snprintf(buf, n, "%s (%s)", r->name, r->file);
    else
        snprintf(buf, n, "%s", r->name);
    return buf;
}

/* Rows that changed (times: by at least min_time), largest relative change first (appearing
 * functions first, then by |change|, then by |delta|, then by key). */
static int cmp_change(const void *a, const void *b)
{
    const cp_diff_row *x = *(const cp_diff_row *const *)a, *y = *(const cp_diff_row *const *)b;
    double cx = fabs(x->change), cy = fabs(y->change);
    if (cx != cy)
        return cx < cy ? 1 : -1;
    double dx = fabs(x->delta), dy = fabs(y->delta);
    if (dx != dy)
        return dx < dy ? 1 : -1;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->metric > y->metric) - (x->metric < y->metric);
}

static const cp_diff_row **changed_rows(const cp_diff *d, const cp_diff_options *o, size_t *n)
{
    size_t nr;
    const cp_diff_row *rows = cp_diff_rows(d, &nr);
    const cp_diff_row **v = malloc((nr ? nr : 1) * sizeof *v);
    *n = 0;
    if (!v)
        return NULL;
    for (size_t i = 0; i < nr; i++)
        if (rows[i].delta != 0 &&
            (cp_diff_unit_of(d, rows[i].metric) != CP_UNIT_NS ||
             fabs(rows[i].delta) >= o->min_time_ns || rows[i].verdict == CP_VERDICT_FAIL))
            v[(*n)++] = &rows[i]; /* time changes under --min-time are noise */
    qsort(v, *n, sizeof *v, cmp_change);
    return v;
}

static const char *verdict_name(cp_diff_verdict v)
{
    static const char *const names[] = {[CP_VERDICT_NONE] = "none",
                                        [CP_VERDICT_OK] = "ok",
                                        [CP_VERDICT_NOT_ASSESSED] = "not-assessed",
                                        [CP_VERDICT_FAIL] = "fail"};
    return (unsigned)v < sizeof names / sizeof *names ? names[v] : "none";
}

static void method_line(FILE *out, const cp_diff *d, const cp_diff_options *o)
{
    char t[64];
    fprintf(out,
            "times: one-sided Mann-Whitney U test at %.4g%% confidence against BASE grown by "
            "the rule's limit; changes under %s never fail%s\n",
            o->confidence * 100, cp_fmt_ns((uint64_t)o->min_time_ns, t, sizeof t),
            o->threshold_only ? "; --threshold-only: medians compared without a test" : "");
}

static void runs_line(FILE *out, const cp_diff *d, int side, const char *what)
{
    size_t n = cp_diff_runs(d, side);
    fprintf(out, "%s: %zu run%s (", what, n, n == 1 ? "" : "s");
    for (size_t i = 0; i < n && i < 4; i++)
        fprintf(out, "%s%s", i ? ", " : "", cp_diff_run_name(d, side, i));
    fprintf(out, "%s)\n", n > 4 ? ", ..." : "");
}

static void row_values(const cp_diff *d, const cp_diff_row *r, char *b, char *nw, char *ch, char *p,
                       size_t n)
{
    cp_diff_fmt_value(d, r->metric, r->base, b, n);
    cp_diff_fmt_value(d, r->metric, r->new_, nw, n);
    fmt_change(r, ch, n);
    fmt_p(isnan(r->p_rule) ? r->p : r->p_rule, p, n);
}

/* The whole-run instruction counts, when both sides have them: `fmt` takes
 * BASE, NEW and the change. */
static void instructions_line(FILE *out, const cp_diff *d, const char *fmt)
    __attribute__((format(printf, 3, 0)));
static void instructions_line(FILE *out, const cp_diff *d, const char *fmt)
{
    const cp_diff_row *ir = cp_diff_instructions(d, NULL, NULL);
    if (!ir)
        return;
    char b[64], n[64], c[64];
    fprintf(out, fmt, cp_diff_fmt_value(d, ir->metric, ir->base, b, sizeof b),
            cp_diff_fmt_value(d, ir->metric, ir->new_, n, sizeof n), fmt_change(ir, c, sizeof c));
}

static void write_text(FILE *out, const cp_diff *d, const cp_diff_options *o, size_t limit)
{
    size_t nr;
    const cp_diff_row *rows = cp_diff_rows(d, &nr);
    const cp_diff_metric *mt = cp_diff_metrics();
    fprintf(out, "cpyprof diff\n");
    runs_line(out, d, CP_DIFF_BASE, "BASE");
    runs_line(out, d, CP_DIFF_NEW, "NEW ");
    method_line(out, d, o);
    fprintf(out, "rules:");
    for (size_t i = 0; i < o->n_rules; i++)
        fprintf(out, " %s", o->rules[i].text);
    fprintf(out, "%s\n", o->n_rules ? "" : " none (report only)");
    instructions_line(out, d, "instructions: %s -> %s (%s; user space, whole run)\n");
    const char *notes = cp_diff_notes(d);
    for (const char *s = notes; *s;) {
        const char *e = strchr(s, '\n');
        fprintf(out, "note: %.*s\n", (int)(e - s), s);
        s = e + 1;
    }
    char b[64], nw[64], ch[64], p[64], lb[4200];
    size_t fails = cp_diff_failures(d), na = 0;
    for (size_t i = 0; i < nr; i++)
        na += rows[i].verdict == CP_VERDICT_NOT_ASSESSED;
    if (fails) {
        fprintf(out, "\nREGRESSIONS (%zu):\n", fails);
        for (size_t i = 0; i < nr; i++) {
            const cp_diff_row *r = &rows[i];
            if (r->verdict != CP_VERDICT_FAIL)
                continue;
            row_values(d, r, b, nw, ch, p, sizeof b);
            fprintf(out, "  FAIL %-11s %s: %s -> %s (%s%s%s) breaks %s\n", mt[r->metric].name,
                    label(r, lb, sizeof lb), b, nw, ch,
                    isnan(r->p_rule) ? "" : ", p=", isnan(r->p_rule) ? "" : p,
                    o->rules[r->rule].text);
        }
    }
    if (na) {
        fprintf(out, "\nNOT ASSESSED (%zu: above the limit, but too few runs to test):\n", na);
        for (size_t i = 0; i < nr; i++) {
            const cp_diff_row *r = &rows[i];
            if (r->verdict != CP_VERDICT_NOT_ASSESSED)
                continue;
            row_values(d, r, b, nw, ch, p, sizeof b);
            fprintf(out, "  ?    %-11s %s: %s -> %s (%s) rule %s\n", mt[r->metric].name,
                    label(r, lb, sizeof lb), b, nw, ch, o->rules[r->rule].text);
        }
    }
    size_t nc;
    const cp_diff_row **ch_rows = changed_rows(d, o, &nc);
    if (ch_rows && nc) {
        size_t shown = limit && limit < nc ? limit : nc;
        fprintf(out, "\nLargest changes (%zu of %zu):\n", shown, nc);
        fprintf(out, "  %-11s %12s %12s %9s %7s  %s\n", "metric", "base", "new", "change", "p",
                "function");
        for (size_t i = 0; i < shown; i++) {
            const cp_diff_row *r = ch_rows[i];
            row_values(d, r, b, nw, ch, p, sizeof b);
            fprintf(out, "  %-11s %12s %12s %9s %7s  %s\n", mt[r->metric].name, b, nw, ch,
                    fmt_p(r->p, p, sizeof p), label(r, lb, sizeof lb));
        }
    } else
        fprintf(out, "\nNo function changed.\n");
    free(ch_rows);
    fprintf(out, "\n%s\n",
            fails ? "result: FAIL (a rule is broken)"
                  : (o->n_rules ? "result: OK (every rule holds)" : "result: OK (no rules)"));
}

/* Markdown table cells: no '|' or newline; the rest is shown as code. */
static void md_cell(FILE *out, const char *s)
{
    fputc('`', out);
    for (; *s; s++) {
        if (*s == '|')
            fputs("\\|", out);
        else if (*s == '`')
            fputc('\'', out);
        else if (*s == '\n' || *s == '\r')
            fputc(' ', out);
        else
            fputc(*s, out);
    }
    fputc('`', out);
}

static void md_row(FILE *out, const cp_diff *d, const cp_diff_options *o, const cp_diff_row *r,
                   const char *mark)
{
    char b[64], nw[64], ch[64], p[64], lb[4200];
    row_values(d, r, b, nw, ch, p, sizeof b);
    fprintf(out, "| %s | ", mark);
    md_cell(out, label(r, lb, sizeof lb));
    fprintf(out, " | %s | %s | %s | %s | %s | ", cp_diff_metrics()[r->metric].name, b, nw, ch, p);
    if (r->rule >= 0)
        md_cell(out, o->rules[r->rule].text);
    fputs(" |\n", out);
}

static void write_markdown(FILE *out, const cp_diff *d, const cp_diff_options *o, size_t limit)
{
    size_t nr;
    const cp_diff_row *rows = cp_diff_rows(d, &nr);
    size_t fails = cp_diff_failures(d);
    if (fails)
        fprintf(out, "### cpyprof diff: :x: %zu regression%s\n\n", fails, fails == 1 ? "" : "s");
    else
        fprintf(out, "### cpyprof diff: :white_check_mark: no regression\n\n");
    fprintf(out,
            "BASE: %zu run%s, NEW: %zu run%s. Times: one-sided Mann-Whitney U test, %.4g%% "
            "confidence.",
            cp_diff_runs(d, 0), cp_diff_runs(d, 0) == 1 ? "" : "s", cp_diff_runs(d, 1),
            cp_diff_runs(d, 1) == 1 ? "" : "s", o->confidence * 100);
    fprintf(out, " Rules:");
    for (size_t i = 0; i < o->n_rules; i++) {
        fputc(' ', out);
        md_cell(out, o->rules[i].text);
    }
    fprintf(out, "%s\n\n", o->n_rules ? "" : " none");
    instructions_line(out, d, "Instructions (user space, whole run): %s → %s (%s)\n\n");
    const char *notes = cp_diff_notes(d);
    for (const char *s = notes; *s;) {
        const char *e = strchr(s, '\n');
        fprintf(out, "> %.*s\n", (int)(e - s), s);
        s = e + 1;
    }
    if (*notes)
        fputc('\n', out);
    static const char head[] = "|   | Function | Metric | Base | New | Change | p | Rule |\n"
                               "|---|----------|--------|-----:|----:|-------:|--:|------|\n";
    bool any = false;
    for (size_t i = 0; i < nr; i++) {
        if (rows[i].verdict != CP_VERDICT_FAIL && rows[i].verdict != CP_VERDICT_NOT_ASSESSED)
            continue;
        if (!any)
            fputs(head, out);
        any = true;
        md_row(out, d, o, &rows[i], rows[i].verdict == CP_VERDICT_FAIL ? ":x:" : ":grey_question:");
    }
    if (any)
        fputc('\n', out);
    size_t nc;
    const cp_diff_row **ch_rows = changed_rows(d, o, &nc);
    if (ch_rows && nc) {
        size_t shown = limit && limit < nc ? limit : nc;
        fprintf(out, "<details><summary>Largest changes (%zu of %zu)</summary>\n\n%s", shown, nc,
                head);
        for (size_t i = 0; i < shown; i++)
            md_row(out, d, o, ch_rows[i],
                   ch_rows[i]->verdict == CP_VERDICT_FAIL ? ":x:"
                   : ch_rows[i]->delta > 0                ? ":small_red_triangle:"
                                                          : ":small_red_triangle_down:");
        fprintf(out, "\n</details>\n");
    } else
        fprintf(out, "No function changed.\n");
    free(ch_rows);
}

static void json_num(FILE *out, double v)
{
    if (isnan(v) || isinf(v))
        fputs("null", out);
    else if (v == floor(v) && fabs(v) < 9e15)
        fprintf(out, "%.0f", v);
    else
        fprintf(out, "%.12g", v);
}

static void json_str(FILE *out, const char *s)
{
    cp_json_string(out, s, strlen(s));
}

static const char *unit_name(cp_diff_unit u)
{
    static const char *const names[] = {[CP_UNIT_COUNT] = "count",
                                        [CP_UNIT_NS] = "ns",
                                        [CP_UNIT_BYTES] = "bytes",
                                        [CP_UNIT_SAMPLES] = "samples"};
    return (unsigned)u < sizeof names / sizeof *names ? names[u] : "count";
}

/* {"available": true, "base": N, "new": N, "change": x, "verdict": v, "rule": r}
 * or {"available": false, "base_unavailable": why|null, "new_unavailable": why|null} */
static void json_instructions(FILE *out, const cp_diff *d, const cp_diff_options *o)
{
    const char *why[2];
    const cp_diff_row *ir = cp_diff_instructions(d, &why[0], &why[1]);
    if (ir) {
        fputs("{\"available\": true, \"base\": ", out);
        json_num(out, ir->base);
        fputs(", \"new\": ", out);
        json_num(out, ir->new_);
        fputs(", \"change\": ", out);
        json_num(out, ir->change);
        fprintf(out, ", \"verdict\": \"%s\", \"rule\": ", verdict_name(ir->verdict));
        if (ir->rule >= 0)
            json_str(out, o->rules[ir->rule].text);
        else
            fputs("null", out);
        fputc('}', out);
        return;
    }
    fputs("{\"available\": false", out);
    for (int s = 0; s < 2; s++) {
        fprintf(out, ", \"%s_unavailable\": ", s ? "new" : "base");
        if (why[s])
            json_str(out, why[s]);
        else
            fputs("null", out);
    }
    fputc('}', out);
}

static void write_json(FILE *out, const cp_diff *d, const cp_diff_options *o)
{
    fputs("{\n  \"schema\": \"cpyprof.diff/1\",\n", out);
    for (int s = 0; s < 2; s++) {
        fprintf(out, "  \"%s\": [", s ? "new" : "base");
        for (size_t i = 0; i < cp_diff_runs(d, s); i++) {
            fputs(i ? ", " : "", out);
            json_str(out, cp_diff_run_name(d, s, i));
        }
        fputs("],\n", out);
    }
    fprintf(out, "  \"test\": \"mann-whitney-u\",\n  \"confidence\": ");
    json_num(out, o->confidence);
    fprintf(out, ",\n  \"min_time_ns\": ");
    json_num(out, o->min_time_ns);
    fprintf(out, ",\n  \"threshold_only\": %s,\n  \"rules\": [",
            o->threshold_only ? "true" : "false");
    for (size_t i = 0; i < o->n_rules; i++) {
        const cp_diff_rule *r = &o->rules[i];
        fputs(i ? ",\n    {" : "\n    {", out);
        fputs("\"text\": ", out);
        json_str(out, r->text);
        fputs(", \"metric\": ", out);
        json_str(out, r->metric);
        fprintf(out, ", \"relative\": %s, \"limit\": ", r->relative ? "true" : "false");
        json_num(out, r->limit);
        fputs(", \"pattern\": ", out);
        json_str(out, r->pattern);
        fputc('}', out);
    }
    fprintf(out, "%s],\n  \"failures\": %zu,\n  \"notes\": [", o->n_rules ? "\n  " : "",
            cp_diff_failures(d));
    bool first = true;
    for (const char *s = cp_diff_notes(d); *s;) {
        const char *e = strchr(s, '\n');
        fputs(first ? "" : ", ", out);
        first = false;
        cp_json_string(out, s, (size_t)(e - s));
        s = e + 1;
    }
    fputs("],\n  \"instructions\": ", out);
    json_instructions(out, d, o);
    fputs(",\n  \"rows\": [", out);
    size_t nr;
    const cp_diff_row *rows = cp_diff_rows(d, &nr);
    for (size_t i = 0; i < nr; i++) {
        const cp_diff_row *r = &rows[i];
        fputs(i ? ",\n    {" : "\n    {", out);
        fputs("\"key\": ", out);
        json_str(out, r->key);
        fputs(", \"function\": ", out);
        json_str(out, r->name);
        fputs(", \"file\": ", out);
        json_str(out, r->file);
        fprintf(out, ", \"metric\": \"%s\", \"unit\": \"%s\", \"base\": ",
                cp_diff_metrics()[r->metric].name, unit_name(cp_diff_unit_of(d, r->metric)));
        json_num(out, r->base);
        fputs(", \"new\": ", out);
        json_num(out, r->new_);
        fputs(", \"delta\": ", out);
        json_num(out, r->delta);
        fputs(", \"change\": ", out);
        json_num(out, r->change);
        fputs(", \"p\": ", out);
        json_num(out, r->p);
        fputs(", \"p_rule\": ", out);
        json_num(out, r->p_rule);
        fprintf(out, ", \"verdict\": \"%s\", \"rule\": ", verdict_name(r->verdict));
        if (r->rule >= 0)
            json_str(out, o->rules[r->rule].text);
        else
            fputs("null", out);
        fputc('}', out);
    }
    fprintf(out, "%s]\n}\n", nr ? "\n  " : "");
}

static void xml_text(FILE *out, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '<')
            fputs("&lt;", out);
        else if (c == '>')
            fputs("&gt;", out);
        else if (c == '&')
            fputs("&amp;", out);
        else if (c == '"')
            fputs("&quot;", out);
        else if (c < 0x20 && c != '\n' && c != '\t')
            fputc('?', out); /* not allowed in XML 1.0 */
        else
            fputc(c, out);
    }
}

static void junit_property(FILE *out, const char *name, const char *value)
{
    fprintf(out, "      <property name=\"%s\" value=\"", name);
    xml_text(out, value);
    fputs("\"/>\n", out);
}

/* The instruction counts (or why there are none) as suite properties. */
static void junit_properties(FILE *out, const cp_diff *d)
{
    const char *why[2];
    const cp_diff_row *ir = cp_diff_instructions(d, &why[0], &why[1]);
    char v[64];
    fputs("    <properties>\n", out);
    if (ir) {
        junit_property(out, "instructions.base",
                       cp_diff_fmt_value(d, ir->metric, ir->base, v, sizeof v));
        junit_property(out, "instructions.new",
                       cp_diff_fmt_value(d, ir->metric, ir->new_, v, sizeof v));
        junit_property(out, "instructions.change", fmt_change(ir, v, sizeof v));
    } else
        for (int s = 0; s < 2; s++)
            if (why[s])
                junit_property(out,
                               s ? "instructions.new.unavailable" : "instructions.base.unavailable",
                               why[s]);
    fputs("    </properties>\n", out);
}

static void write_junit(FILE *out, const cp_diff *d, const cp_diff_options *o)
{
    size_t nr;
    const cp_diff_row *rows = cp_diff_rows(d, &nr);
    size_t ncases = o->n_rules ? o->n_rules : 1, nfail = 0;
    for (size_t i = 0; i < o->n_rules; i++)
        for (size_t k = 0; k < nr; k++)
            if (rows[k].rule == (int)i && rows[k].verdict == CP_VERDICT_FAIL) {
                nfail++;
                break;
            }
    fprintf(out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<testsuites>\n"
            "  <testsuite name=\"cpyprof diff\" tests=\"%zu\" failures=\"%zu\" errors=\"0\">\n",
            ncases, nfail);
    junit_properties(out, d);
    if (!o->n_rules)
        fputs("    <testcase classname=\"cpyprof.diff\" name=\"no rules\"/>\n", out);
    char b[64], nw[64], ch[64], p[64], lb[4200];
    for (size_t i = 0; i < o->n_rules; i++) {
        fputs("    <testcase classname=\"cpyprof.diff\" name=\"", out);
        xml_text(out, o->rules[i].text);
        fputs("\"", out);
        size_t f = 0;
        for (size_t k = 0; k < nr; k++)
            f += rows[k].rule == (int)i && rows[k].verdict == CP_VERDICT_FAIL;
        if (!f) {
            fputs("/>\n", out);
            continue;
        }
        if (f == 1 && o->rules[i].pattern[0] == 0 &&
            strcmp(o->rules[i].metric, "instructions") == 0)
            fputs(">\n      <failure message=\"the whole run broke ", out);
        else
            fprintf(out, ">\n      <failure message=\"%zu function%s broke ", f, f == 1 ? "" : "s");
        xml_text(out, o->rules[i].text);
        fputs("\">", out);
        for (size_t k = 0; k < nr; k++) {
            const cp_diff_row *r = &rows[k];
            if (r->rule != (int)i || r->verdict != CP_VERDICT_FAIL)
                continue;
            row_values(d, r, b, nw, ch, p, sizeof b);
            char line[4600];
            snprintf(line, sizeof line, "%s %s: %s -> %s (%s%s%s)\n",
                     cp_diff_metrics()[r->metric].name, label(r, lb, sizeof lb), b, nw, ch,
                     isnan(r->p_rule) ? "" : ", p=", isnan(r->p_rule) ? "" : p);
            xml_text(out, line);
        }
        fputs("</failure>\n    </testcase>\n", out);
    }
    const char *notes = cp_diff_notes(d);
    if (*notes) {
        fputs("    <system-out>", out);
        xml_text(out, notes);
        fputs("</system-out>\n", out);
    }
    fputs("  </testsuite>\n</testsuites>\n", out);
}

void cp_diff_write(FILE *out, const cp_diff *d, const cp_diff_options *o, cp_diff_format fmt,
                   size_t limit)
{
    switch (fmt) {
    case CP_DIFF_MARKDOWN:
        write_markdown(out, d, o, limit);
        break;
    case CP_DIFF_JSON:
        write_json(out, d, o);
        break;
    case CP_DIFF_JUNIT:
        write_junit(out, d, o);
        break;
    default:
        write_text(out, d, o, limit);
        break;
    }
}

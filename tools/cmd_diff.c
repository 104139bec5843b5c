/*
 * cmd_diff.c — `cpyprof diff`: compare profiles function by function and
 * fail on regressions (the method is in src/report/diff.h).
 *
 * Exit codes (not those of the other subcommands: CI must tell "slower"
 * from "broken input"): 0 no rule broken, 1 a rule broken, 2 usage error or
 * unreadable profile.
 *
 * The arguments are parsed by hand: --base and --new take every following
 * argument up to the next option, and a quoted glob ('runs/base-*') is
 * expanded here so the same command works from a shell or a YAML file.
 */
#include "cli.h"
#include "report/diff.h"

#include <glob.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
    printf("Usage: cpyprof diff BASE NEW [OPTIONS]     (each a file, or a quoted glob of runs)\n"
           "       cpyprof diff --base FILE... --new FILE... [OPTIONS]\n"
           "Compare profiles function by function: calls, self and total time, and when the\n"
           "profiles have them allocations (--alloc) and GIL wait (--gil=exact). Several\n"
           "runs per side (files, or quoted globs such as 'base-*.cpyprof') make times\n"
           "comparable with statistics.\n\n"
           "  --fail-on RULE      METRIC:+LIMIT[:PATTERN]; repeatable. Exit 1 when NEW exceeds\n"
           "                      BASE by more than LIMIT, e.g. time:+10%%, calls:+0,\n"
           "                      alloc-bytes:+5%%, self:+2ms, calls:+0:mymod.py:*,\n"
           "                      instructions:+2%%\n"
           "  --format F          text (default), markdown (a pull-request comment), json\n"
           "                      (schema cpyprof.diff/1), junit (XML, one test per rule)\n"
           "  -o, --output FILE   write there instead of standard output\n"
           "  --confidence C      of the statistical test, 0.5..0.9999 or 50%%..99.99%%\n"
           "                      (default 0.95)\n"
           "  --min-time T        time changes smaller than T never fail (default 100us;\n"
           "                      units ns, us, ms, s)\n"
           "  --threshold-only    time rules compare medians even with one run per side\n"
           "                      (no significance test: noisy)\n"
           "  -n, --limit N       changed rows listed in text and markdown (default 20; 0 all)\n"
           "  -h, --help          this help\n\n"
           "Metrics (a rule may name a metric, a family (second column), or 'all'):\n");
    const cp_diff_metric *m = cp_diff_metrics();
    for (size_t i = 0; i < cp_diff_nmetrics(); i++)
        printf("  %-12s %-8s %s\n", m[i].name, m[i].family ? m[i].family : "", m[i].what);
    printf("\n"
           "Counters (calls, alloc-*) compare exactly: the median of each side's runs.\n"
           "Times are flagged only when significant AND above the limit: a one-sided\n"
           "Mann-Whitney U test of NEW against BASE grown by the limit, at the given\n"
           "confidence, and a median change above the limit and --min-time. With one run\n"
           "on a side significance cannot be assessed: time rules are reported as 'not\n"
           "assessed' and do not fail (unless --threshold-only). 3 runs per side reach\n"
           "95%% confidence only when every NEW run is slower than every BASE run; use 5\n"
           "or more. Functions are matched by FILE:QUALNAME, FILE relative to the\n"
           "profiled program's working directory, so checkouts in different places\n"
           "compare. PATTERN is an fnmatch pattern on QUALNAME or FILE:QUALNAME.\n"
           "instructions is one value per run (META instructions: user-space instructions\n"
           "of the thread that started profiling, from a hardware counter), compared like\n"
           "a counter when every run of both sides has it (e.g. instructions:+2%%; no\n"
           "PATTERN); else a note says which side lacks it and why.\n\n"
           "Exit status: 0 no rule broken, 1 a rule broken, 2 usage error or unreadable\n"
           "profile.\n\n"
           "Example:\n"
           "  cpyprof diff main.cpyprof pr.cpyprof --fail-on calls:+0\n"
           "  cpyprof diff --base 'main-*.cpyprof' --new 'pr-*.cpyprof' \\\n"
           "      --fail-on time:+10%% --format markdown -o comment.md\n");
}

typedef struct list {
    char **v;
    size_t n, cap;
} list;

static int push(list *l, const char *s)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 8;
        char **t = realloc(l->v, nc * sizeof *t);
        if (!t)
            return -1;
        l->v = t;
        l->cap = nc;
    }
    l->v[l->n] = strdup(s);
    return l->v[l->n] ? (int)(l->n++, 0) : -1;
}

static void list_free(list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

/* A name with glob characters is expanded (sorted); one without is kept as
 * is, so a missing file gets the reader's message. */
static int add_path(list *l, const char *arg)
{
    if (!strpbrk(arg, "*?[") || strcmp(arg, "-") == 0)
        return push(l, arg) ? CLI_USAGE : CLI_OK;
    glob_t g;
    int r = glob(arg, 0, NULL, &g);
    if (r == GLOB_NOMATCH) {
        cli_error("diff: no profile matches '%s'", arg);
        return CLI_USAGE;
    }
    if (r != 0) {
        cli_error("diff: cannot expand '%s'", arg);
        return CLI_USAGE;
    }
    for (size_t i = 0; i < g.gl_pathc; i++)
        if (push(l, g.gl_pathv[i])) {
            globfree(&g);
            return CLI_USAGE;
        }
    globfree(&g);
    return CLI_OK;
}

/* "100us", "2ms", "0" -> ns; false when malformed. */
static bool parse_time(const char *s, double *ns)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || v < 0)
        return false;
    double scale = strcmp(end, "ns") == 0 || *end == 0 ? 1
                   : strcmp(end, "us") == 0            ? 1e3
                   : strcmp(end, "ms") == 0            ? 1e6
                   : strcmp(end, "s") == 0             ? 1e9
                                                       : -1;
    if (scale < 0)
        return false;
    *ns = v * scale;
    return true;
}

static bool parse_confidence(const char *s, double *c)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s)
        return false;
    if (strcmp(end, "%") == 0)
        v /= 100;
    else if (*end)
        return false;
    if (!(v >= 0.5 && v <= 0.9999))
        return false;
    *c = v;
    return true;
}

int cmd_diff(int argc, char **argv)
{
    list sides[2] = {{0}}, pos[2] = {{0}};
    size_t n_pos = 0; /* positional arguments: BASE and NEW, each a file or a glob */
    cp_diff_rule *rules = NULL;
    size_t n_rules = 0;
    cp_diff_options o = {.confidence = 0.95, .min_time_ns = 100e3};
    cp_diff_format fmt = CP_DIFF_TEXT;
    const char *output = "-";
    size_t limit = 20;
    int rc = CLI_USAGE;
    int collecting = -1; /* after --base / --new: the side taking file names */
    cp_diff *d = NULL;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || strcmp(a, "-") == 0) {
            if (collecting < 0 && n_pos++ >= 2)
                continue; /* too many: counted, reported below */
            if (add_path(collecting >= 0 ? &sides[collecting] : &pos[n_pos - 1], a) != CLI_OK)
                goto out;
            continue;
        }
        collecting = -1;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            help();
            rc = CLI_OK;
            goto out;
        }
        if (strcmp(a, "--base") == 0 || strcmp(a, "--new") == 0) {
            collecting = a[2] == 'b' ? CP_DIFF_BASE : CP_DIFF_NEW;
            continue;
        }
        if (strcmp(a, "--threshold-only") == 0) {
            o.threshold_only = true;
            continue;
        }
        /* options with a value: "--opt VALUE" or "--opt=VALUE" */
        static const char *const valued[] = {"--fail-on",    "--format",   "-o", "--output",
                                             "--confidence", "--min-time", "-n", "--limit"};
        const char *opt = NULL, *val = NULL;
        for (size_t k = 0; k < sizeof valued / sizeof *valued && !opt; k++) {
            size_t l = strlen(valued[k]);
            if (strcmp(a, valued[k]) == 0) {
                opt = valued[k];
                if (i + 1 >= argc) {
                    rc = cli_usage("diff", "option '%s' needs a value", a);
                    goto out;
                }
                val = argv[++i];
            } else if (strncmp(a, valued[k], l) == 0 && a[l] == '=' && valued[k][1] == '-') {
                opt = valued[k];
                val = a + l + 1;
            }
        }
        if (!opt) {
            rc = cli_usage("diff", "unknown option '%s'", a);
            goto out;
        }
        if (strcmp(opt, "--fail-on") == 0) {
            cp_diff_rule *t = realloc(rules, (n_rules + 1) * sizeof *t);
            if (!t) {
                rc = CLI_USAGE; /* out of memory: never "a rule broke" */
                goto out;
            }
            rules = t;
            char err[600];
            if (cp_diff_rule_parse(val, &rules[n_rules], err, sizeof err)) {
                rc = cli_usage("diff", "--fail-on: %s", err);
                goto out;
            }
            n_rules++;
        } else if (strcmp(opt, "--format") == 0) {
            if (cp_diff_format_parse(val, &fmt)) {
                rc = cli_usage("diff",
                               "--format: '%s' is not a format (expected text, "
                               "markdown, json, junit)",
                               val);
                goto out;
            }
        } else if (strcmp(opt, "-o") == 0 || strcmp(opt, "--output") == 0) {
            output = val;
        } else if (strcmp(opt, "--confidence") == 0) {
            if (!parse_confidence(val, &o.confidence)) {
                rc = cli_usage("diff",
                               "--confidence: '%s' is not in 0.5..0.9999 (or 50%%..99.99%%)", val);
                goto out;
            }
        } else if (strcmp(opt, "--min-time") == 0) {
            if (!parse_time(val, &o.min_time_ns)) {
                rc = cli_usage("diff", "--min-time: '%s' is not a time (e.g. 100us, 2ms, 0)", val);
                goto out;
            }
        } else {
            unsigned long long n;
            if (!cli_parse_uint(val, 0, SIZE_MAX, &n)) {
                rc = cli_usage("diff", "--limit: '%s' is not a number (0 = all)", val);
                goto out;
            }
            limit = (size_t)n;
        }
    }
    if (sides[0].n || sides[1].n) {
        if (n_pos) {
            rc = cli_usage("diff", "unexpected argument '%s' (files go after --base or --new)",
                           pos[0].v[0]);
            goto out;
        }
        if (!sides[0].n || !sides[1].n) {
            rc = cli_usage("diff", "missing the %s profiles", sides[0].n ? "--new" : "--base");
            goto out;
        }
    } else {
        if (n_pos < 2) {
            rc = cli_usage("diff", "missing the %s profile", n_pos ? "NEW" : "BASE");
            goto out;
        }
        if (n_pos > 2) {
            rc = cli_usage("diff",
                           "expected BASE and NEW, got %zu files (use --base FILE... "
                           "--new FILE... for several runs, or quote two globs)",
                           n_pos);
            goto out;
        }
        /* BASE and NEW: a quoted glob each ('base-*.cpyprof') is a set of runs */
        sides[0] = pos[0];
        sides[1] = pos[1];
        pos[0] = pos[1] = (list){0};
    }
    o.rules = rules;
    o.n_rules = n_rules;
    d = cp_diff_new();
    if (!d) {
        cli_error("diff: out of memory");
        rc = CLI_USAGE;
        goto out;
    }
    char err[1200];
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < sides[s].n; i++)
            if (cp_diff_add_file(d, s, sides[s].v[i], err, sizeof err)) {
                cli_error("%s", err);
                rc = CLI_USAGE;
                goto out;
            }
    if (cp_diff_compute(d, &o, err, sizeof err)) {
        cli_error("diff: %s", err);
        rc = CLI_USAGE;
        goto out;
    }
    FILE *f = cli_open_output(output);
    if (!f) {
        rc = CLI_USAGE;
        goto out;
    }
    cp_diff_write(f, d, &o, fmt, limit);
    if (cli_close_output(f, output) != CLI_OK) {
        rc = CLI_USAGE;
        goto out;
    }
    rc = cp_diff_failures(d) ? CLI_FAIL : CLI_OK;
out:
    cp_diff_free(d);
    free(rules);
    list_free(&sides[0]);
    list_free(&sides[1]);
    list_free(&pos[0]);
    list_free(&pos[1]);
    return rc;
}

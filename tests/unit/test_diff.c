/*
 * test_diff.c — `cpyprof diff`: the Mann-Whitney test against known exact
 * values, rule parsing, and comparisons of synthetic profiles with seeded
 * noise (deterministic: a fixed xorshift seed, so nothing here depends on
 * timing luck):
 *   - a function made 20x slower, and one calling a helper 10x more, are
 *     flagged by name; nothing else is;
 *   - the same program compared with itself, 20 comparisons of 5 vs 5 noisy
 *     runs (and a long run of 2000 to measure the false-flag rate), is
 *     never flagged;
 *   - one run per side: time rules are "not assessed", counters still fail.
 */
#include "profile_builder.h"
#include "report/diff.h"
#include "report/flame_diff.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- statistics ----------------------------------------------------------- */

START_TEST(mann_whitney_exact_values)
{
    double x[] = {1, 2, 3}, y[] = {4, 5, 6};
    /* all y above all x: one arrangement of C(6,3) = 20 */
    ck_assert_double_eq_tol(cp_mann_whitney_greater(x, 3, y, 3), 1.0 / 20, 1e-12);
    ck_assert_double_eq_tol(cp_mann_whitney_min_p(3, 3), 1.0 / 20, 1e-12);
    ck_assert_double_eq_tol(cp_mann_whitney_min_p(5, 5), 1.0 / 252, 1e-12);
    /* reversed: every arrangement has U >= 0 */
    ck_assert_double_eq_tol(cp_mann_whitney_greater(y, 3, x, 3), 1.0, 1e-12);
    /* U = 8 of 9 (one x above one y): arrangements with U >= 8 are U=8, U=9: 2/20 */
    double x2[] = {1, 2, 5}, y2[] = {3, 6, 7};
    ck_assert_double_eq_tol(cp_mann_whitney_greater(x2, 3, y2, 3), 2.0 / 20, 1e-12);
    /* 5 vs 5 fully separated: 1/252 */
    double a[] = {10, 11, 12, 13, 14}, b[] = {20, 21, 22, 23, 24};
    ck_assert_double_eq_tol(cp_mann_whitney_greater(a, 5, b, 5), 1.0 / 252, 1e-12);
    /* interleaved halves: p near 0.5 */
    double c[] = {1, 3, 5, 7, 9}, e[] = {2, 4, 6, 8, 10};
    double p = cp_mann_whitney_greater(c, 5, e, 5);
    ck_assert(p > 0.3 && p < 0.6);
    /* empty side */
    ck_assert_double_eq(cp_mann_whitney_greater(a, 0, b, 5), 1.0);
}
END_TEST

START_TEST(mann_whitney_normal_matches_exact)
{
    /* 30 vs 30 without ties: exact; the same with one tie forces the normal
     * approximation; they agree closely */
    double x[30], y[30], yt[30];
    for (int i = 0; i < 30; i++) {
        x[i] = i * 2.0;
        y[i] = i * 2.0 + 9.5; /* shifted up */
        yt[i] = y[i];
    }
    yt[0] = x[29]; /* a tie across the sides */
    double pe = cp_mann_whitney_greater(x, 30, y, 30);
    double pn = cp_mann_whitney_greater(x, 30, yt, 30);
    ck_assert_msg(pe > 0 && pe < 0.2, "exact p %g", pe);
    ck_assert_msg(fabs(pe - pn) < 0.02, "exact %g vs normal %g", pe, pn);
    /* all equal: no evidence */
    double z[4] = {5, 5, 5, 5};
    ck_assert_double_eq(cp_mann_whitney_greater(z, 4, z, 4), 1.0);
}
END_TEST

START_TEST(median_values)
{
    double a[] = {5, 1, 3};
    ck_assert_double_eq(cp_median(a, 3), 3);
    double b[] = {4, 1, 3, 2};
    ck_assert_double_eq(cp_median(b, 4), 2.5);
    ck_assert_double_eq(cp_median(b, 0), 0);
}
END_TEST

/* ---- rules ------------------------------------------------------------------ */

START_TEST(rule_parse)
{
    cp_diff_rule r;
    char err[512];
    ck_assert_int_eq(cp_diff_rule_parse("time:+10%", &r, err, sizeof err), 0);
    ck_assert_str_eq(r.metric, "time");
    ck_assert(r.relative);
    ck_assert_double_eq(r.limit, 10);
    ck_assert_str_eq(r.pattern, "");
    ck_assert_int_eq(cp_diff_rule_parse("calls:+0", &r, err, sizeof err), 0);
    ck_assert(!r.relative);
    ck_assert_double_eq(r.limit, 0);
    ck_assert_int_eq(cp_diff_rule_parse("self:+2ms:app.py:Cls.*", &r, err, sizeof err), 0);
    ck_assert_double_eq(r.limit, 2e6);
    ck_assert_str_eq(r.pattern, "app.py:Cls.*");
    ck_assert_int_eq(cp_diff_rule_parse("alloc-bytes:+5%", &r, err, sizeof err), 0);
    ck_assert_int_eq(cp_diff_rule_parse("calls:+3k", &r, err, sizeof err), 0);
    ck_assert_double_eq(r.limit, 3000);

    ck_assert_int_eq(cp_diff_rule_parse("time", &r, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "METRIC:+LIMIT"));
    ck_assert_int_eq(cp_diff_rule_parse("speed:+1%", &r, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "unknown metric 'speed'"));
    ck_assert_int_eq(cp_diff_rule_parse("time:10%", &r, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "'+'"));
    ck_assert_int_eq(cp_diff_rule_parse("calls:+2ms", &r, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "unknown unit 'ms'"));
    ck_assert_int_eq(cp_diff_rule_parse("time:+x", &r, err, sizeof err), -1);
    ck_assert_int_eq(cp_diff_rule_parse("time:+1%:", &r, err, sizeof err), -1);
}
END_TEST

START_TEST(rule_covers_and_matches)
{
    cp_diff_rule r;
    char err[512];
    ck_assert_int_eq(cp_diff_rule_parse("time:+10%:*.slow", &r, err, sizeof err), 0);
    ck_assert(cp_diff_rule_covers(&r, (size_t)cp_diff_metric_index("self")));
    ck_assert(cp_diff_rule_covers(&r, (size_t)cp_diff_metric_index("total")));
    ck_assert(!cp_diff_rule_covers(&r, (size_t)cp_diff_metric_index("calls")));
    ck_assert(cp_diff_rule_matches(&r, "Job.slow", "app.py"));
    ck_assert(!cp_diff_rule_matches(&r, "Job.fast", "app.py"));
    ck_assert_int_eq(cp_diff_rule_parse("all:+0:lib/*:*", &r, err, sizeof err), 0);
    ck_assert(cp_diff_rule_covers(&r, (size_t)cp_diff_metric_index("alloc-bytes")));
    ck_assert(cp_diff_rule_matches(&r, "f", "lib/x.py"));
    ck_assert(!cp_diff_rule_matches(&r, "f", "app.py"));
}
END_TEST

START_TEST(file_keys)
{
    char b[256];
    ck_assert_str_eq(cp_diff_file_key("/home/ci/repo/pkg/m.py", "/home/ci/repo", b, sizeof b),
                     "pkg/m.py");
    ck_assert_str_eq(cp_diff_file_key("/home/ci/repo/pkg/m.py", "/home/ci/repo/", b, sizeof b),
                     "pkg/m.py");
    ck_assert_str_eq(cp_diff_file_key("/home/ci/repo2/m.py", "/home/ci/repo", b, sizeof b),
                     "/home/ci/repo2/m.py");
    ck_assert_str_eq(
        cp_diff_file_key("/v/lib/python3.11/site-packages/req/api.py", "/x", b, sizeof b),
        "req/api.py");
    ck_assert_str_eq(cp_diff_file_key("/usr/lib/python3.11/threading.py", NULL, b, sizeof b),
                     "threading.py");
    ck_assert_str_eq(cp_diff_file_key("builtins", "/x", b, sizeof b), "builtins");
}
END_TEST

/* ---- synthetic profiles ------------------------------------------------------ */

static uint64_t rng_state;

static double uniform(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return ((double)(rng_state >> 11) + 0.5) / 9007199254740992.0;
}

/* A lognormal factor with median 1 and spread sigma (0.1 ~ 10%). */
static double noise(double sigma)
{
    double u1 = uniform(), u2 = uniform();
    double z = sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
    return exp(sigma * z);
}

enum { F_MAIN, F_WORK, F_SLOW, F_HELPER, F_FAST, NF };

/* An extra META entry for the next runs built (instructions tests); NULL = none. */
static const char *extra_meta_key, *extra_meta_value;

/*
 * One run of the program
 *   main -> work -> slow      (10 calls)
 *                -> helper    (100 calls, or helper_calls)
 *        -> fast              (5 calls)
 * Self times in ns: main 1 ms, work 2 ms, slow 5 ms x slow_factor, helper
 * 3 ms (scaled with its calls), fast 4 ms, each times noise(sigma).
 */
static void build_run(cp_buf *out, double sigma, double slow_factor, uint64_t helper_calls)
{
    static const char *const str[] = {"main",   "app.py", "work",      "slow",
                                      "helper", "fast",   "MainThread"};
    static const struct cpyprof_func_rec fn[] = {
        {.id = F_MAIN, .name = 0, .file = 1, .line = 1},
        {.id = F_WORK, .name = 2, .file = 1, .line = 5},
        {.id = F_SLOW, .name = 3, .file = 1, .line = 9},
        {.id = F_HELPER, .name = 4, .file = 1, .line = 12},
        {.id = F_FAST, .name = 5, .file = 1, .line = 15},
    };
    struct cpyprof_thread_rec th = {.id = 0, .name = 6, .end_ns = -1, .flags = CPYPROF_THREAD_MAIN};
    double self[NF] = {1e6, 2e6, 5e6 * slow_factor, 3e6 * (double)helper_calls / 100, 4e6};
    for (int i = 0; i < NF; i++)
        self[i] *= noise(sigma);
    uint64_t s[NF];
    for (int i = 0; i < NF; i++)
        s[i] = (uint64_t)self[i];
    uint64_t work = s[F_WORK] + s[F_SLOW] + s[F_HELPER];
    tb_node nodes[] = {
        {CPYPROF_NONE, F_MAIN, 1, s[F_MAIN] + work + s[F_FAST]},
        {0, F_WORK, 1, work},
        {1, F_SLOW, 10, s[F_SLOW]},
        {1, F_HELPER, helper_calls, s[F_HELPER]},
        {0, F_FAST, 5, s[F_FAST]},
    };
    cp_buf f, b;
    tb_begin(&f);
    cp_buf_init(&b);
    cp_buf_meta(&b, "mode", "trace");
    cp_buf_meta(&b, "cwd", "/somewhere");
    if (extra_meta_key)
        cp_buf_meta(&b, extra_meta_key, extra_meta_value);
    tb_chunk(&f, CPYPROF_CHUNK_META, &b);
    cp_buf_free(&b);
    tb_strings(&f, 0, str, 7);
    tb_funcs(&f, fn, NF);
    tb_thread(&f, &th);
    tb_tree(&f, 0, nodes, 5);
    struct cpyprof_trailer_rec tr = {.threads = 1};
    tb_trailer(&f, &tr);
    *out = f;
}

static void add_run(cp_diff *d, int side, double sigma, double slow_factor, uint64_t helper_calls)
{
    cp_buf f;
    build_run(&f, sigma, slow_factor, helper_calls);
    char err[512];
    ck_assert_msg(cp_diff_add_mem(d, side, f.data, f.len, side ? "new" : "base", err, sizeof err) ==
                      0,
                  "%s", err);
    cp_buf_free(&f);
}

static cp_diff_options opts(cp_diff_rule *rules, size_t n)
{
    return (cp_diff_options){
        .confidence = 0.95, .min_time_ns = 100e3, .rules = rules, .n_rules = n};
}

static void parse_rules(cp_diff_rule *r, const char *const *text, size_t n)
{
    char err[512];
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(cp_diff_rule_parse(text[i], &r[i], err, sizeof err) == 0, "%s", err);
}

/* The options with rules text[0..n-1], parsed into r. */
static cp_diff_options with_rules(cp_diff_rule *r, const char *const *text, size_t n)
{
    parse_rules(r, text, n);
    return opts(r, n);
}

/* n runs a side, alternately BASE and NEW (the order the seeded noise is
 * drawn in): BASE as built by default, NEW with slow x new_slow and
 * new_calls calls of helper. */
static void add_pairs(cp_diff *d, int n, double sigma, double new_slow, uint64_t new_calls)
{
    for (int i = 0; i < n; i++) {
        add_run(d, CP_DIFF_BASE, sigma, 1, 100);
        add_run(d, CP_DIFF_NEW, sigma, new_slow, new_calls);
    }
}

/* The failing rows as "metric name" lines. */
static void failures(const cp_diff *d, char *buf, size_t n)
{
    size_t nr, len = 0;
    const cp_diff_row *rows = cp_diff_rows(d, &nr);
    buf[0] = 0;
    for (size_t i = 0; i < nr; i++)
        if (rows[i].verdict == CP_VERDICT_FAIL)
            len += (size_t)snprintf(buf + len, n - len, "%s %s\n",
                                    cp_diff_metrics()[rows[i].metric].name, rows[i].name);
}

START_TEST(slowed_function_flagged_by_name)
{
    rng_state = 0x9E3779B97F4A7C15ull;
    cp_diff_rule rules[2];
    static const char *const text[] = {"self:+10%", "calls:+0"};
    cp_diff_options o = with_rules(rules, text, 2);
    /* 20 comparisons, each 5 vs 5 runs with 25% noise: slow is 20x slower */
    for (int k = 0; k < 20; k++) {
        cp_diff *d = cp_diff_new();
        add_pairs(d, 5, 0.25, 20, 100);
        char err[512], f[1024];
        ck_assert_int_eq(cp_diff_compute(d, &o, err, sizeof err), 0);
        failures(d, f, sizeof f);
        ck_assert_str_eq(f, "self slow\n");
        cp_diff_free(d);
    }
}
END_TEST

START_TEST(more_calls_flagged_by_name)
{
    rng_state = 12345;
    cp_diff_rule rules[2];
    static const char *const text[] = {"calls:+0", "time:+10%"};
    cp_diff_options o = with_rules(rules, text, 2);
    cp_diff *d = cp_diff_new();
    add_pairs(d, 6, 0.05, 1, 1000); /* helper called 10x more */
    char err[512], f[1024];
    ck_assert_int_eq(cp_diff_compute(d, &o, err, sizeof err), 0);
    failures(d, f, sizeof f);
    /* calls exactly; helper's self and the totals above it (work, main) by time */
    ck_assert_str_eq(f, "calls helper\nself helper\ntotal helper\ntotal main\ntotal work\n");
    size_t nr;
    const cp_diff_row *rows = cp_diff_rows(d, &nr);
    bool seen = false;
    for (size_t i = 0; i < nr; i++)
        if (strcmp(rows[i].name, "helper") == 0 && rows[i].metric == 0) {
            ck_assert_str_eq(rows[i].key, "app.py:helper");
            ck_assert_double_eq(rows[i].base, 100);
            ck_assert_double_eq(rows[i].new_, 1000);
            seen = true;
        }
    ck_assert(seen);
    cp_diff_free(d);
}
END_TEST

/* Counts the self-vs-self comparisons that flag anything. */
static size_t self_vs_self(int comparisons, int runs, double sigma, const cp_diff_options *o)
{
    size_t flagged = 0;
    for (int k = 0; k < comparisons; k++) {
        cp_diff *d = cp_diff_new();
        add_pairs(d, runs, sigma, 1, 100);
        char err[512];
        ck_assert_int_eq(cp_diff_compute(d, o, err, sizeof err), 0);
        flagged += cp_diff_failures(d) > 0;
        cp_diff_free(d);
    }
    return flagged;
}

START_TEST(same_program_never_flagged)
{
    rng_state = 0xC0FFEEull;
    cp_diff_rule rules[2];
    static const char *const text[] = {"time:+10%", "calls:+0"};
    cp_diff_options o = with_rules(rules, text, 2);
    /* the bar: 20 comparisons of noisy repeated runs, never flagged */
    ck_assert_uint_eq(self_vs_self(20, 5, 0.10, &o), 0);
    ck_assert_uint_eq(self_vs_self(20, 10, 0.10, &o), 0);
    /* and the rate over many: 2000 comparisons x 10 time rows with 10%
     * noise (a noisy machine) flag none; testing against BASE x 1.10 rather
     * than BASE is what keeps it so (see diff.h) */
    size_t many = self_vs_self(2000, 5, 0.10, &o);
    ck_assert_msg(many <= 20, "%zu comparisons of 2000 flagged (bound: 1%%)", many);
    fprintf(stderr,
            "same_program_never_flagged: %zu of 2000 self-vs-self comparisons (5 vs 5 "
            "runs, 10%% noise, time:+10%%) flagged\n",
            many);
}
END_TEST

START_TEST(real_change_with_same_noise_is_found)
{
    rng_state = 77;
    cp_diff_rule rules[1];
    static const char *const text[] = {"self:+10%:slow"};
    cp_diff_options o = with_rules(rules, text, 1);
    int found = 0;
    for (int k = 0; k < 20; k++) {
        cp_diff *d = cp_diff_new();
        add_pairs(d, 10, 0.10, 1.5, 100);
        char err[512];
        ck_assert_int_eq(cp_diff_compute(d, &o, err, sizeof err), 0);
        found += cp_diff_failures(d) == 1;
        cp_diff_free(d);
    }
    ck_assert_int_eq(found, 20);
}
END_TEST

START_TEST(single_run_times_not_assessed)
{
    rng_state = 5;
    cp_diff_rule rules[2];
    static const char *const text[] = {"time:+10%", "calls:+0"};
    cp_diff_options o = with_rules(rules, text, 2);
    cp_diff *d = cp_diff_new();
    add_run(d, CP_DIFF_BASE, 0, 1, 100);
    add_run(d, CP_DIFF_NEW, 0, 20, 100);
    char err[512], f[1024];
    ck_assert_int_eq(cp_diff_compute(d, &o, err, sizeof err), 0);
    ck_assert_uint_eq(cp_diff_failures(d), 0);
    ck_assert_ptr_nonnull(strstr(cp_diff_notes(d), "significance cannot be assessed"));
    size_t nr, na = 0;
    const cp_diff_row *rows = cp_diff_rows(d, &nr);
    for (size_t i = 0; i < nr; i++)
        na += rows[i].verdict == CP_VERDICT_NOT_ASSESSED;
    ck_assert_uint_eq(na, 4); /* self slow, total slow/work/main */
    /* --threshold-only: the single values decide */
    o.threshold_only = true;
    ck_assert_int_eq(cp_diff_compute(d, &o, err, sizeof err), 0);
    failures(d, f, sizeof f);
    ck_assert_str_eq(f, "total main\nself slow\ntotal slow\ntotal work\n");
    cp_diff_free(d);
}
END_TEST

START_TEST(three_runs_too_few)
{
    rng_state = 9;
    cp_diff_rule rules[1];
    static const char *const text[] = {"time:+10%"};
    cp_diff_options o = with_rules(rules, text, 1);
    o.confidence = 0.99;
    cp_diff *d = cp_diff_new();
    add_pairs(d, 3, 0.01, 20, 100);
    char err[512];
    ck_assert_int_eq(cp_diff_compute(d, &o, err, sizeof err), 0);
    ck_assert_uint_eq(cp_diff_failures(d), 0);
    ck_assert_ptr_nonnull(strstr(cp_diff_notes(d), "cannot reach 99% confidence"));
    /* at 95%, 3 vs 3 reaches p = 0.05 for one function, not for the 4 that
     * exceed the limit here (slow, and the totals of work and main) */
    o.confidence = 0.95;
    ck_assert_int_eq(cp_diff_compute(d, &o, err, sizeof err), 0);
    ck_assert_uint_eq(cp_diff_failures(d), 0);
    ck_assert_msg(strstr(cp_diff_notes(d), "record at least 5 runs per side"), "%s",
                  cp_diff_notes(d));
    /* 6 vs 6 does (5 would) */
    add_pairs(d, 3, 0.01, 20, 100);
    ck_assert_int_eq(cp_diff_compute(d, &o, err, sizeof err), 0);
    ck_assert_uint_eq(cp_diff_failures(d), 4);
    cp_diff_free(d);
}
END_TEST

START_TEST(pattern_rule_beats_general_rule)
{
    rng_state = 11;
    cp_diff_rule rules[2];
    /* slow is allowed to grow 50x; everything else nothing */
    static const char *const text[] = {"self:+5000%:slow", "self:+10%"};
    cp_diff_options o = with_rules(rules, text, 2);
    cp_diff *d = cp_diff_new();
    add_pairs(d, 5, 0.02, 20, 100);
    char err[512];
    ck_assert_int_eq(cp_diff_compute(d, &o, err, sizeof err), 0);
    ck_assert_uint_eq(cp_diff_failures(d), 0);
    cp_diff_free(d);
}
END_TEST

static char *write_to_string(const cp_diff *d, const cp_diff_options *o, cp_diff_format fmt)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cp_diff_write(f, d, o, fmt, 20);
    fclose(f);
    return buf;
}

START_TEST(outputs_name_the_function)
{
    rng_state = 3;
    cp_diff_rule rules[2];
    static const char *const text[] = {"calls:+0", "self:+10%"};
    cp_diff_options o = with_rules(rules, text, 2);
    cp_diff *d = cp_diff_new();
    add_pairs(d, 5, 0.02, 1, 1000);
    char err[512];
    ck_assert_int_eq(cp_diff_compute(d, &o, err, sizeof err), 0);
    char *t = write_to_string(d, &o, CP_DIFF_TEXT);
    ck_assert_ptr_nonnull(strstr(t, "FAIL calls       helper (app.py): 100 -> 1000 (+900.0%) "
                                    "breaks calls:+0"));
    ck_assert_ptr_nonnull(strstr(t, "result: FAIL"));
    free(t);
    t = write_to_string(d, &o, CP_DIFF_MARKDOWN);
    ck_assert_ptr_nonnull(strstr(t, "### cpyprof diff: :x: 2 regressions"));
    ck_assert_ptr_nonnull(strstr(t, "| :x: | `helper (app.py)` | calls | 100 | 1000 | +900.0% | - "
                                    "| `calls:+0` |"));
    free(t);
    t = write_to_string(d, &o, CP_DIFF_JSON);
    ck_assert_ptr_nonnull(strstr(t, "\"schema\": \"cpyprof.diff/1\""));
    ck_assert_ptr_nonnull(strstr(t, "{\"key\": \"app.py:helper\", \"function\": \"helper\", "
                                    "\"file\": \"app.py\", \"metric\": \"calls\", \"unit\": "
                                    "\"count\", \"base\": 100, \"new\": 1000, \"delta\": 900, "
                                    "\"change\": 9, \"p\": null, \"p_rule\": null, \"verdict\": "
                                    "\"fail\", \"rule\": \"calls:+0\"}"));
    ck_assert_ptr_nonnull(strstr(t, "\"failures\": 2,"));
    free(t);
    t = write_to_string(d, &o, CP_DIFF_JUNIT);
    ck_assert_ptr_nonnull(strstr(t, "<testsuite name=\"cpyprof diff\" tests=\"2\" failures=\"2\""));
    ck_assert_ptr_nonnull(strstr(t, "<failure message=\"1 function broke calls:+0\">calls helper "
                                    "(app.py): 100 -&gt; 1000 (+900.0%)"));
    free(t);
    cp_diff_free(d);
}
END_TEST

START_TEST(mixing_sampled_and_traced_refused)
{
    cp_diff *d = cp_diff_new();
    add_run(d, CP_DIFF_BASE, 0, 1, 100);
    /* the same image with a SAMPLES chunk instead of TREE would be sampled;
     * the sample profile builder is elsewhere: check the empty-side error */
    char err[512];
    cp_diff_options o = opts(NULL, 0);
    ck_assert_int_eq(cp_diff_compute(d, &o, err, sizeof err), -1);
    ck_assert_str_eq(err, "nothing to compare: NEW has no profile");
    ck_assert_int_eq(cp_diff_add_mem(d, CP_DIFF_NEW, "junk", 4, "junk.cpyprof", err, sizeof err),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "junk.cpyprof"));
    cp_diff_free(d);
}
END_TEST

/* flame --diff: NEW's stacks found in BASE, coloured by change */
START_TEST(flame_diff_colours_by_change)
{
    cp_buf fb, fn;
    build_run(&fb, 0, 1, 100);
    build_run(&fn, 0, 20, 100); /* slow: 20x */
    cp_profile b, n;
    TB_LOAD(&b, &fb);
    TB_LOAD(&n, &fn);
    cp_merged bm, nm;
    char err[256];
    ck_assert_int_eq(cp_merged_build(&b, false, &bm, err, sizeof err), 0);
    ck_assert_int_eq(cp_merged_build(&n, false, &nm, err, sizeof err), 0);
    uint32_t order[16];
    ck_assert_uint_le(nm.n, 16);
    cp_merged_preorder(&nm, order);
    cp_flame_node nodes[16];
    uint32_t pos[16];
    for (size_t k = 0; k < nm.n; k++)
        pos[order[k]] = (uint32_t)k;
    for (size_t k = 0; k < nm.n; k++) {
        const cp_mnode *x = &nm.nodes[order[k]];
        nodes[k] = (cp_flame_node){k ? nm.frames[x->frame].name : "all",
                                   k ? nm.frames[x->frame].detail : NULL,
                                   k ? pos[x->parent] : UINT32_MAX, x->total_ns, 0};
    }
    cp_flame_base bases[16];
    ck_assert_int_eq(cp_flame_diff_fill(&b, &bm, &n, &nm, order, bases, err, sizeof err), 0);
    int seen = 0;
    for (size_t k = 0; k < nm.n; k++) {
        ck_assert(bases[k].present);
        if (strcmp(nodes[k].name, "slow") == 0) {
            ck_assert_uint_eq(bases[k].value, 5000000);
            ck_assert_uint_eq(nodes[k].total, 100000000);
            seen++;
        }
        if (strcmp(nodes[k].name, "fast") == 0) {
            ck_assert_uint_eq(bases[k].value, nodes[k].total);
            seen++;
        }
    }
    ck_assert_int_eq(seen, 2);
    char *svg = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&svg, &len);
    cp_svg_options o = {.title = "t", .unit = "ns"};
    ck_assert_int_eq(cp_svg_write_diff(f, nodes, nm.n, bases, &o, err, sizeof err), 0);
    fclose(f);
    /* slow: 20x is full red; fast: unchanged grey; tooltips with BASE */
    ck_assert_ptr_nonnull(strstr(svg, "<title>slow\napp.py:9\n100.00 ms (90.91%)\nBASE: 5.00 ms "
                                      "(+1900.00%)</title>"));
    const char *slow = strstr(svg, "<title>slow");
    ck_assert_ptr_nonnull(strstr(slow, "fill=\"rgb(225,45,45)\""));
    const char *fast = strstr(svg, "<title>fast");
    const char *fill = strstr(fast, "fill=\"");
    ck_assert_int_eq(strncmp(fill, "fill=\"rgb(225,225,225)\"", 23), 0);
    free(svg);
    cp_merged_free(&bm);
    cp_merged_free(&nm);
    cp_profile_free(&b);
    cp_profile_free(&n);
    cp_buf_free(&fb);
    cp_buf_free(&fn);
}
END_TEST

/* Adds a run whose META holds instructions = n (or, n == 0, the reason
 * this VM gives for having none). */
static void add_run_instr(cp_diff *d, int side, uint64_t n)
{
    char v[32];
    snprintf(v, sizeof v, "%llu", (unsigned long long)n);
    extra_meta_key = n ? "instructions" : "instructions_unavailable";
    extra_meta_value = n ? v
                         : "perf_event_open(instructions): No such file or directory (no "
                           "hardware counters, as in many virtual machines)";
    add_run(d, side, 0.05, 1, 100);
    extra_meta_key = extra_meta_value = NULL;
}

static const cp_diff_row *instr_row(const cp_diff *d)
{
    const cp_diff_row *r = cp_diff_instructions(d, NULL, NULL);
    if (r) {
        ck_assert_str_eq(r->key, CP_DIFF_PROGRAM);
        ck_assert_str_eq(cp_diff_metrics()[r->metric].name, "instructions");
    }
    return r;
}

START_TEST(instructions_compared_as_counter)
{
    rng_state = 21;
    cp_diff_rule rules[3];
    static const char *const text[] = {"instructions:+2%", "calls:+0", "time:+10%"};
    cp_diff_options o = with_rules(rules, text, 3);
    /* 5 runs a side, counts jittering by a few thousand around 1e9 / 1.03e9 */
    static const uint64_t base[] = {1000002000, 999998000, 1000000000, 1000001000, 999999000};
    cp_diff *d = cp_diff_new();
    for (int i = 0; i < 5; i++) {
        add_run_instr(d, CP_DIFF_BASE, base[i]);
        add_run_instr(d, CP_DIFF_NEW, base[i] + 30000000);
    }
    char err[512], f[1024];
    ck_assert_int_eq(cp_diff_compute(d, &o, err, sizeof err), 0);
    failures(d, f, sizeof f);
    ck_assert_str_eq(f, "instructions (program)\n"); /* and nothing else: same calls, times */
    const cp_diff_row *r = instr_row(d);
    ck_assert_ptr_nonnull(r);
    ck_assert_double_eq(r->base, 1000000000); /* medians */
    ck_assert_double_eq(r->new_, 1030000000);
    ck_assert_int_eq(r->verdict, CP_VERDICT_FAIL);
    ck_assert_str_eq(o.rules[r->rule].text, "instructions:+2%");
    ck_assert_ptr_null(strstr(cp_diff_notes(d), "instructions"));

    char *t = write_to_string(d, &o, CP_DIFF_TEXT);
    ck_assert_ptr_nonnull(
        strstr(t, "instructions: 1000000000 -> 1030000000 (+3.0%; user space, whole run)\n"));
    ck_assert_ptr_nonnull(strstr(t, "FAIL instructions (program): 1000000000 -> 1030000000 "
                                    "(+3.0%) breaks instructions:+2%"));
    free(t);
    t = write_to_string(d, &o, CP_DIFF_MARKDOWN);
    ck_assert_ptr_nonnull(
        strstr(t, "Instructions (user space, whole run): 1000000000 → 1030000000 (+3.0%)"));
    ck_assert_ptr_nonnull(strstr(t, "| :x: | `(program)` | instructions | 1000000000 | "
                                    "1030000000 | +3.0% | - | `instructions:+2%` |"));
    free(t);
    t = write_to_string(d, &o, CP_DIFF_JSON);
    ck_assert_ptr_nonnull(strstr(t, "\"instructions\": {\"available\": true, \"base\": "
                                    "1000000000, \"new\": 1030000000, \"change\": 0.03, "
                                    "\"verdict\": \"fail\", \"rule\": \"instructions:+2%\"}"));
    free(t);
    t = write_to_string(d, &o, CP_DIFF_JUNIT);
    ck_assert_ptr_nonnull(strstr(t, "<property name=\"instructions.base\" value=\"1000000000\"/>"));
    ck_assert_ptr_nonnull(strstr(t, "<property name=\"instructions.change\" value=\"+3.0%\"/>"));
    ck_assert_ptr_nonnull(strstr(t, "<failure message=\"the whole run broke instructions:+2%\">"
                                    "instructions (program): 1000000000 -&gt; 1030000000"));
    free(t);

    /* +5% holds; a general rule covers it, one with a pattern does not */
    static const char *const loose[] = {"instructions:+5%", "all:+0:nothing*"};
    o = with_rules(rules, loose, 2);
    ck_assert_int_eq(cp_diff_compute(d, &o, err, sizeof err), 0);
    ck_assert_uint_eq(cp_diff_failures(d), 0);
    ck_assert_int_eq(instr_row(d)->verdict, CP_VERDICT_OK);
    static const char *const all[] = {"all:+1%"};
    o = with_rules(rules, all, 1);
    ck_assert_int_eq(cp_diff_compute(d, &o, err, sizeof err), 0);
    ck_assert_int_eq(instr_row(d)->verdict, CP_VERDICT_FAIL);
    static const char *const pat[] = {"all:+1%:*"};
    o = with_rules(rules, pat, 1);
    ck_assert_int_eq(cp_diff_compute(d, &o, err, sizeof err), 0);
    ck_assert_int_eq(instr_row(d)->verdict, CP_VERDICT_NONE);
    cp_diff_free(d);
}
END_TEST

START_TEST(instructions_missing_noted)
{
    rng_state = 22;
    cp_diff_rule rules[1];
    static const char *const text[] = {"instructions:+0"};
    cp_diff_options o = with_rules(rules, text, 1);
    char err[512];
    /* NEW from a machine without counters: not compared, said why, never a failure */
    cp_diff *d = cp_diff_new();
    add_run_instr(d, CP_DIFF_BASE, 1000);
    add_run_instr(d, CP_DIFF_NEW, 0);
    ck_assert_int_eq(cp_diff_compute(d, &o, err, sizeof err), 0);
    ck_assert_ptr_null(instr_row(d));
    ck_assert_uint_eq(cp_diff_failures(d), 0);
    const char *why_b, *why_n;
    cp_diff_instructions(d, &why_b, &why_n);
    ck_assert_ptr_null(why_b);
    ck_assert_str_eq(why_n, "perf_event_open(instructions): No such file or directory (no "
                            "hardware counters, as in many virtual machines)");
    ck_assert_str_eq(cp_diff_notes(d),
                     "instructions: not available in NEW (perf_event_open(instructions): No "
                     "such file or directory (no hardware counters, as in many virtual "
                     "machines)): instruction rules are not checked\n");
    char *t = write_to_string(d, &o, CP_DIFF_JSON);
    ck_assert_ptr_nonnull(strstr(t, "\"instructions\": {\"available\": false, "
                                    "\"base_unavailable\": null, \"new_unavailable\": "
                                    "\"perf_event_open(instructions): No such file"));
    free(t);
    t = write_to_string(d, &o, CP_DIFF_JUNIT);
    ck_assert_ptr_nonnull(strstr(t, "<property name=\"instructions.new.unavailable\" "
                                    "value=\"perf_event_open(instructions): No such file"));
    free(t);
    cp_diff_free(d);

    /* one BASE run of three without, and a profile older than the counter */
    d = cp_diff_new();
    add_run_instr(d, CP_DIFF_BASE, 1000);
    add_run_instr(d, CP_DIFF_BASE, 0);
    add_run_instr(d, CP_DIFF_BASE, 1000);
    add_run(d, CP_DIFF_NEW, 0.05, 1, 100);
    o = opts(NULL, 0);
    ck_assert_int_eq(cp_diff_compute(d, &o, err, sizeof err), 0);
    ck_assert_ptr_null(instr_row(d));
    ck_assert_msg(strstr(cp_diff_notes(d),
                         "instructions: not available in 1 of 3 BASE runs "
                         "(perf_event_open(instructions): No such file or directory (no "
                         "hardware counters, as in many virtual machines)) nor in NEW (the "
                         "profile does not record them (made by an older cpyprof?))\n"),
                  "%s", cp_diff_notes(d));
    cp_diff_free(d);

    /* instructions are per run: a pattern makes no sense */
    cp_diff_rule r;
    ck_assert_int_eq(cp_diff_rule_parse("instructions:+1%:app.py:*", &r, err, sizeof err), -1);
    ck_assert_str_eq(err, "'instructions:+1%:app.py:*': instructions are counted for the whole "
                          "run, not per function: drop ':app.py:*'");
    ck_assert_int_eq(cp_diff_rule_parse("instructions:+2M", &r, err, sizeof err), 0);
    ck_assert_double_eq(r.limit, 2e6);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("diff");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, mann_whitney_exact_values);
    tcase_add_test(tc, mann_whitney_normal_matches_exact);
    tcase_add_test(tc, median_values);
    tcase_add_test(tc, rule_parse);
    tcase_add_test(tc, rule_covers_and_matches);
    tcase_add_test(tc, file_keys);
    tcase_add_test(tc, slowed_function_flagged_by_name);
    tcase_add_test(tc, more_calls_flagged_by_name);
    tcase_add_test(tc, same_program_never_flagged);
    tcase_add_test(tc, real_change_with_same_noise_is_found);
    tcase_add_test(tc, single_run_times_not_assessed);
    tcase_add_test(tc, three_runs_too_few);
    tcase_add_test(tc, pattern_rule_beats_general_rule);
    tcase_add_test(tc, outputs_name_the_function);
    tcase_add_test(tc, mixing_sampled_and_traced_refused);
    tcase_add_test(tc, flame_diff_colours_by_change);
    tcase_add_test(tc, instructions_compared_as_counter);
    tcase_add_test(tc, instructions_missing_noted);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}

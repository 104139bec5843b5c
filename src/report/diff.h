/*
 * diff.h — comparing profiles function by function (`cpyprof diff`).
 *
 * Two sides, BASE and NEW, each one or more runs (profile files) of the same
 * program. Every run is reduced to per-function values of the metrics in
 * the metric table (diff.c, one line per metric): calls, self and total
 * time, allocations and allocated bytes (--alloc profiles), GIL wait time
 * (--gil profiles). Functions are matched across runs by a key that does not
 * depend on the checkout directory: "FILE:QUALNAME", FILE made relative to
 * the profiled process's working directory (META cwd) or cut after
 * site-packages/ or lib/python3.X/ (see cp_diff_file_key).
 *
 * A side's value of a metric is the median over its runs (a function missing
 * from a run counts 0 there). Rules (`--fail-on METRIC:+LIMIT[:PATTERN]`)
 * decide what is a regression:
 *
 *   - counters (calls, alloc-count, alloc-bytes) are exact: the rule breaks
 *     when NEW's median exceeds BASE's by more than the limit;
 *   - times (self, total, gil-wait) vary from run to run: the rule breaks
 *     only when NEW is larger than BASE grown by the limit with statistical
 *     significance: a one-sided Mann-Whitney U test of "NEW runs are larger
 *     than BASE runs x (1 + limit)" (or BASE + limit for an absolute limit)
 *     at the chosen confidence (default 95%) with the Holm-Bonferroni
 *     correction over all the rows tested in the comparison, AND the medians
 *     differ by more than the limit AND by at least min_time. Testing against the shifted
 *     BASE (not against BASE itself) keeps changes within the limit from
 *     being flagged by chance; a program compared with itself is flagged with
 *     a probability far below 1 - confidence. With one run on a side there is
 *     no test: time rules are reported as "not assessed" (never a failure)
 *     unless threshold_only is set, which compares the single values.
 *
 * Hardware instruction counts (META `instructions`, src/python/hwcount.c)
 * are one value per run, not per function: the metric "instructions" has a
 * single row, key and name CP_DIFF_PROGRAM, compared like a counter (median
 * against median) when every run of both sides has the count, and taking
 * only rules without a pattern. When a side lacks it, a note says which
 * and why (the profile's `instructions_unavailable`).
 */
#ifndef CPYPROF_REPORT_DIFF_H
#define CPYPROF_REPORT_DIFF_H

#include "report/profile.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- the metric table -------------------------------------------------- */

typedef enum cp_diff_unit {
    CP_UNIT_COUNT,
    CP_UNIT_NS,
    CP_UNIT_BYTES,
    CP_UNIT_SAMPLES
} cp_diff_unit;

typedef struct cp_diff_metric {
    const char *name;   /* as in rules: "calls", "self", "alloc-bytes" */
    const char *family; /* a rule on the family covers it: "time", "alloc", "gil" */
    cp_diff_unit unit;  /* CP_UNIT_NS becomes CP_UNIT_SAMPLES for sampled profiles */
    bool timing;        /* varies between runs: judged with the statistical test */
    const char *what;   /* one line for --help and the docs */
} cp_diff_metric;

/** The metrics, in display order; cp_diff_nmetrics() of them. */
const cp_diff_metric *cp_diff_metrics(void);
size_t cp_diff_nmetrics(void);

/** Index of the metric called `name`, or -1. */
int cp_diff_metric_index(const char *name);

/* ---- rules --------------------------------------------------------------- */

typedef struct cp_diff_rule {
    char text[256];    /* as given, e.g. "time:+10%:app.py:*" */
    char metric[32];   /* a metric name, a family name, or "all" */
    bool relative;     /* limit is a percentage */
    double limit;      /* percent, or an absolute amount in the metric's base unit */
    char pattern[200]; /* fnmatch pattern on QUALNAME or FILE:QUALNAME; "" = every function */
} cp_diff_rule;

/** Parses METRIC:+LIMIT[:PATTERN]. LIMIT is N% (relative to BASE) or an
 *  amount: a count (k, M, G suffixes = 10^3, 10^6, 10^9), or a time with a
 *  unit (ns, us, ms, s) for time metrics. Returns 0, or -1 with err. */
int cp_diff_rule_parse(const char *text, cp_diff_rule *r, char *err, size_t errlen);

/** Whether rule r covers metric m (by name, family or "all"). */
bool cp_diff_rule_covers(const cp_diff_rule *r, size_t m);

/** Whether rule r's pattern matches a function (QUALNAME or FILE:QUALNAME). */
bool cp_diff_rule_matches(const cp_diff_rule *r, const char *name, const char *file);

/* ---- the comparison ------------------------------------------------------ */

enum { CP_DIFF_BASE = 0, CP_DIFF_NEW = 1 };

typedef enum cp_diff_verdict {
    CP_VERDICT_NONE = 0,     /* no rule covers this value */
    CP_VERDICT_OK,           /* a rule covers it and holds */
    CP_VERDICT_NOT_ASSESSED, /* a time rule with too few runs to test */
    CP_VERDICT_FAIL,         /* the rule is broken */
} cp_diff_verdict;

/** One (function, metric) pair with a value on either side. */
typedef struct cp_diff_row {
    const char *key;  /* "FILE:QUALNAME" (or QUALNAME when there is no file) */
    const char *name; /* qualname */
    const char *file; /* normalised file, "" when none */
    size_t metric;
    double base, new_; /* medians over the runs */
    double delta;      /* new_ - base */
    double change;     /* delta / base (fraction); INFINITY when base is 0 and delta > 0 */
    double p;          /* one-sided p of the change's direction (timing, >= 2 runs each); NAN */
    double p_rule;     /* p of the rule's test (see above); NAN when not tested */
    cp_diff_verdict verdict;
    int rule;     /* index into the rules that decided the verdict, or -1 */
    bool tested_; /* private: p_rule goes through the Holm correction */
} cp_diff_row;

typedef struct cp_diff_options {
    double confidence;   /* 0.5..0.9999, default 0.95 */
    double min_time_ns;  /* a time change smaller than this never fails (default 100 us) */
    bool threshold_only; /* time rules compare medians even without enough runs */
    const cp_diff_rule *rules;
    size_t n_rules;
} cp_diff_options;

typedef struct cp_diff cp_diff;

/** A new, empty comparison; NULL when out of memory. */
cp_diff *cp_diff_new(void);
void cp_diff_free(cp_diff *d);

/** Adds one run to `side` from a file image (its call trees, and its ALLOC
 *  and GIL chunks if any). `name` names it in messages. Returns 0, or -1
 *  with err (corrupt profile; mixing sampled and traced profiles). A
 *  truncated profile is kept; its warning is appended to the diff's notes. */
int cp_diff_add_mem(cp_diff *d, int side, const void *data, size_t size, const char *name,
                    char *err, size_t errlen);

/** Same from a path. */
int cp_diff_add_file(cp_diff *d, int side, const char *path, char *err, size_t errlen);

/** Number of runs on a side. */
size_t cp_diff_runs(const cp_diff *d, int side);

/** Compares the sides and applies the rules. Returns 0 or -1 with err. */
int cp_diff_compute(cp_diff *d, const cp_diff_options *o, char *err, size_t errlen);

/** The rows after cp_diff_compute: by key, then metric order. */
const cp_diff_row *cp_diff_rows(const cp_diff *d, size_t *n);

/** Rows whose verdict is CP_VERDICT_FAIL. */
size_t cp_diff_failures(const cp_diff *d);

/** The key and name of the whole-run row (instructions). */
#define CP_DIFF_PROGRAM "(program)"

/** The instructions row after cp_diff_compute, or NULL when a side lacks
 *  the count; then *why_base / *why_new (either may be NULL) say why for
 *  each side lacking it (NULL for a side that has it). */
const cp_diff_row *cp_diff_instructions(const cp_diff *d, const char **why_base,
                                        const char **why_new);

/** Notes for the reader (truncated inputs, runs too few to test, ...), one
 *  per line, or "". */
const char *cp_diff_notes(const cp_diff *d);

/** The unit of a metric in this comparison (ns or samples for times). */
cp_diff_unit cp_diff_unit_of(const cp_diff *d, size_t metric);

/** Values of metric/key per run, for output; NULL when unknown. */
const char *cp_diff_run_name(const cp_diff *d, int side, size_t run);

/** The file key of `file` for a process whose working directory was `cwd`
 *  (may be NULL): relative to cwd when under it, else the part after
 *  ".../site-packages/", ".../dist-packages/" or ".../lib/pythonX.Y/", else
 *  as is. Writes into buf; returns buf. */
char *cp_diff_file_key(const char *file, const char *cwd, char *buf, size_t n);

/* ---- outputs (diff_output.c) --------------------------------------------- */

typedef enum cp_diff_format {
    CP_DIFF_TEXT,
    CP_DIFF_MARKDOWN,
    CP_DIFF_JSON,
    CP_DIFF_JUNIT
} cp_diff_format;

/** Parses "text", "markdown", "json", "junit". 0 or -1. */
int cp_diff_format_parse(const char *text, cp_diff_format *out);

/** Writes the comparison. `limit`: changed rows shown in text and Markdown
 *  (0 = all); failures are always all shown. JSON (schema cpyprof.diff/1)
 *  and JUnit carry everything. */
void cp_diff_write(FILE *out, const cp_diff *d, const cp_diff_options *o, cp_diff_format fmt,
                   size_t limit);

/** Formats a value of a metric: "1.50ms", "1234", "12.0KiB". Returns buf. */
char *cp_diff_fmt_value(const cp_diff *d, size_t metric, double v, char *buf, size_t n);

/* ---- statistics (diff_stats.c) ------------------------------------------- */

/** Median of v[0..n-1] (sorts v). 0 for n == 0. */
double cp_median(double *v, size_t n);

/** One-sided Mann-Whitney U test: the probability, if X and Y came from the
 *  same distribution, of a U statistic at least as large as observed, where
 *  U counts pairs with y > x (ties 1/2). Exact (all arrangements) when
 *  there are no ties and nx, ny <= 50; else the normal approximation with
 *  tie and continuity corrections. 1.0 when either side is empty. */
double cp_mann_whitney_greater(const double *x, size_t nx, const double *y, size_t ny);

/** The smallest p the test can give for sizes nx, ny (1 / C(nx+ny, nx)). */
double cp_mann_whitney_min_p(size_t nx, size_t ny);

#endif

/*
 * diff_rules.c — `--fail-on METRIC:+LIMIT[:PATTERN]` rules (see diff.h).
 *
 * The pattern is everything after the second ':' so it may itself hold
 * colons ("calls:+0:app.py:Cls.*"). It is matched with fnmatch(3) (no flags:
 * '*' also crosses '/') against the qualified name and against
 * "FILE:QUALNAME", FILE being the normalised file key.
 */
#include "report/diff.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool is_family_or_metric(const char *name)
{
    if (strcmp(name, "all") == 0)
        return true;
    const cp_diff_metric *m = cp_diff_metrics();
    for (size_t i = 0; i < cp_diff_nmetrics(); i++)
        if (strcmp(m[i].name, name) == 0 || (m[i].family && strcmp(m[i].family, name) == 0))
            return true;
    return false;
}

static bool covers_time(const char *metric)
{
    if (strcmp(metric, "all") == 0)
        return true;
    const cp_diff_metric *m = cp_diff_metrics();
    for (size_t i = 0; i < cp_diff_nmetrics(); i++)
        if ((strcmp(m[i].name, metric) == 0 || (m[i].family && strcmp(m[i].family, metric) == 0)) &&
            m[i].unit == CP_UNIT_NS)
            return true;
    return false;
}

static void metric_list(char *buf, size_t n)
{
    size_t len = 0;
    buf[0] = 0;
    const cp_diff_metric *m = cp_diff_metrics();
    for (size_t i = 0; i < cp_diff_nmetrics() && len < n; i++)
        len += (size_t)snprintf(buf + len, n - len, "%s%s", i ? ", " : "", m[i].name);
    if (len < n)
        snprintf(buf + len, n - len, "; families time, alloc, gil; all");
}

int cp_diff_rule_parse(const char *text, cp_diff_rule *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    if (strlen(text) >= sizeof r->text) {
        snprintf(err, errlen, "rule too long (at most %zu bytes)", sizeof r->text - 1);
        return -1;
    }
    snprintf(r->text, sizeof r->text, "%s", text);
    const char *c1 = strchr(text, ':');
    if (!c1) {
        snprintf(err, errlen,
                 "'%s' is not a rule: expected METRIC:+LIMIT[:PATTERN], e.g. "
                 "time:+10%% or calls:+0",
                 text);
        return -1;
    }
    size_t mlen = (size_t)(c1 - text);
    if (mlen == 0 || mlen >= sizeof r->metric) {
        snprintf(err, errlen, "'%s': missing or overlong metric name before ':'", text);
        return -1;
    }
    memcpy(r->metric, text, mlen);
    r->metric[mlen] = 0;
    if (!is_family_or_metric(r->metric)) {
        char list[400];
        metric_list(list, sizeof list);
        snprintf(err, errlen, "'%s': unknown metric '%s' (expected %s)", text, r->metric, list);
        return -1;
    }
    const char *lim = c1 + 1;
    const char *c2 = strchr(lim, ':');
    size_t llen = c2 ? (size_t)(c2 - lim) : strlen(lim);
    char limit[64];
    if (llen == 0 || llen >= sizeof limit || lim[0] != '+') {
        snprintf(err, errlen,
                 "'%s': the limit must start with '+' (an allowed increase), e.g. "
                 "+10%% or +0",
                 text);
        return -1;
    }
    memcpy(limit, lim + 1, llen - 1);
    limit[llen - 1] = 0;
    if (!isdigit((unsigned char)limit[0]) && limit[0] != '.') {
        snprintf(err, errlen, "'%s': '%s' is not a number", text, limit);
        return -1;
    }
    errno = 0;
    char *end;
    double v = strtod(limit, &end);
    if (errno || !isfinite(v) || v < 0) {
        snprintf(err, errlen, "'%s': '%s' is not a number", text, limit);
        return -1;
    }
    double scale = 1;
    bool ok = true;
    if (strcmp(end, "%") == 0)
        r->relative = true;
    else if (*end == 0)
        scale = 1;
    else if (strcmp(end, "k") == 0)
        scale = 1e3;
    else if (strcmp(end, "M") == 0)
        scale = 1e6;
    else if (strcmp(end, "G") == 0)
        scale = 1e9;
    else if (covers_time(r->metric)) {
        if (strcmp(end, "ns") == 0)
            scale = 1;
        else if (strcmp(end, "us") == 0)
            scale = 1e3;
        else if (strcmp(end, "ms") == 0)
            scale = 1e6;
        else if (strcmp(end, "s") == 0)
            scale = 1e9;
        else
            ok = false;
    } else
        ok = false;
    if (!ok) {
        snprintf(err, errlen, "'%s': unknown unit '%s' (expected %%, k, M, G%s)", text, end,
                 covers_time(r->metric) ? ", or ns, us, ms, s for times" : "");
        return -1;
    }
    r->limit = v * scale;
    if (c2) {
        if (strlen(c2 + 1) == 0 || strlen(c2 + 1) >= sizeof r->pattern) {
            snprintf(err, errlen, "'%s': empty or overlong function pattern", text);
            return -1;
        }
        snprintf(r->pattern, sizeof r->pattern, "%s", c2 + 1);
        if (strcmp(r->metric, "instructions") == 0) {
            snprintf(err, errlen,
                     "'%s': instructions are counted for the whole run, not per function: "
                     "drop ':%s'",
                     text, r->pattern);
            return -1;
        }
    }
    return 0;
}

bool cp_diff_rule_covers(const cp_diff_rule *r, size_t m)
{
    const cp_diff_metric *t = &cp_diff_metrics()[m];
    return strcmp(r->metric, "all") == 0 || strcmp(r->metric, t->name) == 0 ||
           (t->family && strcmp(r->metric, t->family) == 0);
}

bool cp_diff_rule_matches(const cp_diff_rule *r, const char *name, const char *file)
{
    if (!r->pattern[0])
        return true;
    if (fnmatch(r->pattern, name, 0) == 0)
        return true;
    if (!file || !file[0])
        return false;
    char buf[4096];
    snprintf(buf, sizeof buf, "%s:%s", file, name);
    return fnmatch(r->pattern, buf, 0) == 0;
}

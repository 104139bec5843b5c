/*
 * table.h — the top-functions report, as text (`cpyprof report`) and as
 * JSON (`cpyprof report --json`, schema "cpyprof.report/1", documented in
 * docs/format.md, section "report --json").
 */
#ifndef CPYPROF_REPORT_TABLE_H
#define CPYPROF_REPORT_TABLE_H

#include "report/model.h"
#include "report/profile.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum cp_sort_key {
    CP_SORT_CALLS,
    CP_SORT_SELF,
    CP_SORT_TOTAL,
    CP_SORT_SELF_PER_CALL,
    CP_SORT_TOTAL_PER_CALL,
    CP_SORT_NAME,
} cp_sort_key;

/** Parses "calls", "self", "total", "self-per-call", "total-per-call",
 *  "name". Returns 0 or -1. */
int cp_sort_key_parse(const char *text, cp_sort_key *out);

/** The text form of a key, as accepted by cp_sort_key_parse. */
const char *cp_sort_key_name(cp_sort_key key);

/** Sorts rows: numbers descending, names ascending; ties by label, then by
 *  function index, so the order is fully determined. */
void cp_flat_sort(cp_flat *f, const cp_profile *p, cp_sort_key key);

typedef struct cp_table_options {
    const char *source; /* the profile's name, shown in the header */
    cp_sort_key sort;   /* default CP_SORT_SELF */
    size_t limit;       /* rows per table; 0 = all */
    bool per_thread;    /* one table per thread instead of all merged */
    bool lines;         /* sampled profiles: rows per (function, line) too */
    /* ALLOC/GC data (report/alloc.h) for the JSON report, or NULL */
    const struct cp_alloc_data *alloc;
} cp_table_options;

/** With `per_thread`: the line heading the table of thread index `thread`,
 *  "thread ID: NAME (native tid N)"; the same in the traced and the sampled
 *  tables (cp_samples_table_write). */
void cp_table_thread_heading(FILE *out, const cp_profile *p, size_t thread);

/** Writes the text report: a header (profile, command, duration, threads,
 *  mode, dropped records, truncation warning) and the table(s). Returns 0
 *  or -1 with err set. */
int cp_table_write(FILE *out, const cp_profile *p, const cp_table_options *o, char *err,
                   size_t errlen);

/** Writes the JSON report (schema "cpyprof.report/1"). `limit` applies to
 *  each "functions" list; with `per_thread` every thread object also gets
 *  its own "functions". Returns 0 or -1 with err set. */
int cp_report_json_write(FILE *out, const cp_profile *p, const cp_table_options *o, char *err,
                         size_t errlen);

#endif

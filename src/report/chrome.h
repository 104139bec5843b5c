/*
 * chrome.h — a timeline profile as Chrome Trace Event JSON (the "JSON Array
 * Format" with a top-level object), which Perfetto UI (ui.perfetto.dev) and
 * chrome://tracing open.
 *
 * One process; per thread a thread_name metadata event ("MainThread (tid
 * N)") and a sort index, then one complete event ("ph":"X") per call:
 * name = qualified name, cat = python | builtin | special, args = {file,
 * line} and "synthesized": true for frames whose begin or end the profiler
 * made (active at start, open at stop, cut by a drop). Times are µs with ns
 * precision ("ts":1234.567). A profile recorded with --gil (exact) adds,
 * per thread, a track "GIL held — NAME (tid N)" (its own "tid",
 * 2000000000 + the file's thread id) with one complete event "GIL held"
 * (cat gil) per hold. Events are written when their call ends, so
 * they are not in ts order: both viewers sort.
 *
 * Streamed: memory is one TIMELINE chunk, the function table and each
 * thread's open stack.
 */
#ifndef CPYPROF_REPORT_CHROME_H
#define CPYPROF_REPORT_CHROME_H

#include "report/alloc.h"
#include "report/timeline.h"

#include <stdbool.h>
#include <stdio.h>

typedef struct cp_tl_filter {
    uint64_t min_duration_ns; /* calls shorter than this are left out; 0: keep all */
    uint32_t max_depth;       /* calls deeper than this are left out (1 = outermost); 0: no limit */
    const char *const *include; /* globs (fnmatch): keep only functions whose file or name match */
    size_t n_include;
    const char *const *exclude; /* globs: leave out functions whose file or name match */
    size_t n_exclude;
} cp_tl_filter;

typedef struct cp_chrome_stats {
    uint64_t events;     /* TIMELINE records read */
    uint64_t slices;     /* complete events written */
    uint64_t filtered;   /* calls left out by the filter */
    uint64_t unmatched;  /* ENDs with no open BEGIN (a damaged or hand-made file) */
    uint64_t closed_eof; /* calls still open at the end of a thread's timeline (truncated file) */
    uint64_t gc;         /* garbage collections written */
    uint64_t gil;        /* GIL hold slices written */
    uint64_t counters;   /* live-bytes counter points written */
} cp_chrome_stats;

/** True if function `func` (index into p->funcs) passes the include and
 *  exclude globs of `f` (not the duration or depth limits). */
bool cp_tl_filter_keeps(const cp_profile *p, uint32_t func, const cp_tl_filter *f);

/** Writes the whole timeline of `t` to `out`. title names the process.
 *  With `gc` holding GC records (profile recorded with --alloc), each
 *  collection is a complete event on the track of the thread that ran it
 *  (name "gc (generation N)", cat "gc", args collected/uncollectable) and a
 *  counter track "gc collected objects" sums what they freed; its live-bytes
 *  series (ALLOC kind 3) becomes the counter track "allocated memory"
 *  (cat "alloc", args "live bytes"). Returns 0 or -1 with err set. */
int cp_chrome_write(FILE *out, cp_tl_file *t, const char *title, const cp_tl_filter *f,
                    const cp_alloc_data *gc, cp_chrome_stats *st, char *err, size_t errlen);

#endif

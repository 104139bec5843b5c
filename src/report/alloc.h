/*
 * alloc.h — the ALLOC and GC chunks of a profile (docs/format.md): loading,
 * the per-function allocation table, the GC summary, JSON, and the
 * allocation trees as flamegraph input.
 *
 * The reader (profile.h) skips these chunks; this module walks the same
 * file again for them, with the same distrust: lengths checked against the
 * bytes there, CRCs checked, node parents checked, and a cut-short file
 * keeps what is complete.
 */
#ifndef CPYPROF_REPORT_ALLOC_H
#define CPYPROF_REPORT_ALLOC_H

#include "report/profile.h"
#include "report/svg.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/** One thread's allocation nodes (parents checked: < own index or NONE). */
typedef struct cp_alloc_thread {
    uint32_t thread_id; /* the file's thread id */
    struct cpyprof_alloc_node_rec *nodes;
    uint32_t n_nodes;
} cp_alloc_thread;

typedef struct cp_alloc_data {
    bool present; /* a RUN record was found */
    struct cpyprof_alloc_run_rec run;
    cp_alloc_thread *threads;
    size_t n_threads;
    bool gc_present; /* a GC chunk was found */
    struct cpyprof_gc_rec *gc;
    size_t n_gc;
    uint64_t gc_dropped;
    struct cpyprof_alloc_live_rec *live; /* live-bytes series (timeline mode), time order */
    size_t n_live;
} cp_alloc_data;

/** Parses the ALLOC and GC chunks of a profile file image. A file without
 *  them yields present == gc_present == false and 0. Returns -1 with a
 *  message for a chunk that contradicts its size or a bad parent. */
int cp_alloc_parse(const void *data, size_t size, cp_alloc_data *a, char *err, size_t errlen);

/** Same from a path. */
int cp_alloc_load(const char *path, cp_alloc_data *a, char *err, size_t errlen);

void cp_alloc_free(cp_alloc_data *a);

/** Per-function sums over all threads. Self values (the function was the
 *  innermost frame); alloc_bytes_total: bytes allocated in the function and
 *  everything it called, each outermost activation once (as total_ns). */
typedef struct cp_alloc_func {
    uint32_t func; /* file function id, CPYPROF_NONE for none */
    uint64_t allocs, alloc_bytes, frees, free_bytes;
    uint64_t alloc_bytes_total;
} cp_alloc_func;

/** Builds the table, sorted by allocated bytes (descending), then by
 *  function id. *rows is malloc'd. 0 or -1 (out of memory). */
int cp_alloc_funcs(const cp_alloc_data *a, cp_alloc_func **rows, size_t *n);

/** Collections per function (the innermost Python function when each
 *  began), sorted by time (descending). */
typedef struct cp_gc_func {
    uint32_t func;
    uint64_t collections;
    uint64_t ns;
} cp_gc_func;
int cp_gc_funcs(const cp_alloc_data *a, cp_gc_func **rows, size_t *n);

/** Prints the allocation section and the GC summary of `cpyprof report`
 *  (nothing when the profile has neither); `limit` rows per table, 0 = all. */
void cp_alloc_print(FILE *out, const cp_profile *p, const cp_alloc_data *a, size_t limit);

/** The JSON members `"alloc": {...}` and `"gc": {...}` (those present),
 *  each preceded by ",\n  ". Documented in docs/format.md. */
void cp_alloc_print_json(FILE *out, const cp_profile *p, const cp_alloc_data *a);

/** Metrics of the allocation flamegraph. */
enum cp_alloc_metric { CP_ALLOC_BYTES = 0, CP_ALLOC_COUNT = 1 };

/** Builds flamegraph nodes (pre-order, node 0 "all", inclusive values) from
 *  the allocation trees of all threads, one tower per thread under a
 *  "thread NAME" frame. Names point into `p`, `names` (a buffer the caller
 *  frees) or static text. Returns 0 or -1 (no data, or out of memory:
 *  message in err). */
int cp_alloc_flame(const cp_profile *p, const cp_alloc_data *a, int metric, cp_flame_node **out,
                   size_t *n, char **names, char *err, size_t errlen);

#endif

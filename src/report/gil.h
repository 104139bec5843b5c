/*
 * gil.h — the GIL chunks of a profile (docs/format.md, CPYPROF_CHUNK_GIL):
 * loading, the per-thread table, a reading in plain words, and the wait /
 * hold stack trees as flamegraph input.
 *
 * The reader (profile.h) skips GIL chunks; this module walks the same file
 * again for them, with the same distrust: lengths checked against the bytes
 * there, CRCs checked, and a cut-short file keeps what is complete.
 */
#ifndef CPYPROF_REPORT_GIL_H
#define CPYPROF_REPORT_GIL_H

#include "report/profile.h"
#include "report/svg.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CP_GIL_HIST_MAX 64 /* most buckets a file may carry */

/** One thread's GIL data. */
typedef struct cp_gil_thread {
    struct cpyprof_gil_thread_rec rec;
    uint64_t hold_hist[CP_GIL_HIST_MAX];
    uint64_t wait_hist[CP_GIL_HIST_MAX];
    struct cpyprof_gil_node_rec *nodes; /* parents checked: < own index, same kind */
} cp_gil_thread;

typedef struct cp_gil_data {
    bool present; /* a RUN record was found */
    struct cpyprof_gil_run_rec run;
    cp_gil_thread *threads;
    size_t n_threads;
} cp_gil_data;

/** Parses the GIL chunks of a profile file image. A file without them
 *  yields present == false and 0. Returns -1 with a message for a GIL chunk
 *  that contradicts its size. */
int cp_gil_parse(const void *data, size_t size, cp_gil_data *g, char *err, size_t errlen);

/** Same from a path. */
int cp_gil_load(const char *path, cp_gil_data *g, char *err, size_t errlen);

void cp_gil_free(cp_gil_data *g);

/** The display name of a thread ("MainThread", "Thread-2 (work)", or
 *  "native tid N"). */
const char *cp_gil_thread_name(const cp_profile *p, const cp_gil_thread *t, char *buf, size_t n);

/** The function of the hold tree with the most hold time of thread `t`,
 *  or NULL. Writes "name (file:line)" into buf. */
const char *cp_gil_top_holder(const cp_profile *p, const cp_gil_thread *t, char *buf, size_t n);

/** Prints the per-thread table and the reading in plain words. */
void cp_gil_print(FILE *out, const cp_profile *p, const cp_gil_data *g);

/** The same as JSON (schema cpyprof.gil/1): method, duration_ns, busy
 *  (fraction), switches, threads [{thread_id, name, native_tid, hold_ns,
 *  wait_ns, acquisitions, max_hold_ns, max_wait_ns, samples_held,
 *  top_holder, hold_hist, wait_hist}], advice [text]. hold_hist/wait_hist
 *  are the log2 bucket counts (bucket b >= 1: [2^(b-1), 2^b) ns). */
void cp_gil_print_json(FILE *out, const cp_profile *p, const cp_gil_data *g);

/** Writes the reading in plain words (one finding per line) into buf;
 *  returns the number of findings. Exposed for tests. */
int cp_gil_advice(const cp_profile *p, const cp_gil_data *g, char *buf, size_t n);

/** Builds flamegraph nodes (pre-order, node 0 "all", inclusive ns) from the
 *  wait (kind 0) or hold (kind 1) trees of all threads, one tower per
 *  thread under a "thread NAME" frame. Names point into `p`, `names` (a
 *  buffer the caller frees) or static text. Returns 0 or -1 (out of
 *  memory, or no such data: message in err). */
int cp_gil_flame(const cp_profile *p, const cp_gil_data *g, uint32_t kind, cp_flame_node **out,
                 size_t *n, char **names, char *err, size_t errlen);

#endif

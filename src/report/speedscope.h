/*
 * speedscope.h — export to speedscope's JSON file format.
 *
 * The output follows https://www.speedscope.app/file-format-schema.json:
 * one shared frame table and one "sampled" profile per thread, each sample
 * being a stack of frame indices (root first) with a weight. The file opens
 * in https://www.speedscope.app or an offline copy of speedscope.
 *
 * The input is deliberately plain so any aggregation can feed it: the caller
 * owns all memory, nothing is modified, and the writer keeps no state.
 */
#ifndef CPYPROF_REPORT_SPEEDSCOPE_H
#define CPYPROF_REPORT_SPEEDSCOPE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/** One entry of the shared frame table. */
typedef struct cp_ss_frame {
    const char *name; /* "qualname"; NULL is written as "(unknown)" */
    const char *file; /* source file; NULL or "" leaves "file" out */
    uint32_t line;    /* first line; 0 leaves "line" out */
} cp_ss_frame;

/** One sample: a stack and its weight. */
typedef struct cp_ss_sample {
    const uint32_t *stack; /* indices into the frame table, root first */
    size_t depth;          /* number of entries in stack; may be 0 */
    uint64_t weight;       /* in the profile's unit (ns, or a count) */
} cp_ss_sample;

/** One thread: becomes one speedscope profile. */
typedef struct cp_ss_thread {
    const char *name; /* e.g. "MainThread (tid 4242)"; NULL gives "thread <i>" */
    const cp_ss_sample *samples;
    size_t nsamples;
} cp_ss_thread;

/** What the weights measure: speedscope's "unit" field. */
typedef enum cp_ss_unit {
    CP_SS_UNIT_NONE = 0,    /* "none": sample or call counts */
    CP_SS_UNIT_NANOSECONDS, /* "nanoseconds": wall or CPU time */
    CP_SS_UNIT_BYTES,       /* "bytes": allocation profiles */
} cp_ss_unit;

typedef struct cp_ss_options {
    const char *name;     /* the profile group's name (title); NULL leaves it out */
    const char *exporter; /* e.g. "cpyprof 0.1.0"; NULL leaves it out */
    cp_ss_unit unit;
} cp_ss_options;

/**
 * Writes the speedscope JSON document for `threads` (in the order given)
 * over the frame table `frames`. Strings are JSON-escaped and invalid UTF-8
 * is replaced by U+FFFD. Each profile's startValue is 0 and its endValue
 * the sum of its weights. opt may be NULL (unit "none", no name).
 *
 * Returns 0, or -1 with a message in err: a stack entry outside the frame
 * table ("bad sample: thread 1 sample 3 refers to frame 9 of 5"), a NULL
 * array where entries were announced (nothing is written for bad input:
 * it is checked first), or a write error (the output may then hold part of
 * the document).
 */
int cp_speedscope_write(FILE *out, const cp_ss_frame *frames, size_t nframes,
                        const cp_ss_thread *threads, size_t nthreads, const cp_ss_options *opt,
                        char *err, size_t errlen);

#endif

/*
 * convert.h — the exporters behind `cpyprof convert --to FORMAT`.
 *
 * Each one writes a whole loaded profile to `out` and returns 0, or -1 with
 * a one-line message in err. cmd_convert.c lists them by name.
 */
#ifndef CPYPROF_TOOLS_CONVERT_H
#define CPYPROF_TOOLS_CONVERT_H

#include "report/chrome.h"
#include "report/profile.h"

#include <stdbool.h>
#include <stdio.h>

typedef struct convert_options {
    bool per_thread;     /* --threads: keep threads apart where the format merges them */
    const char *source;  /* the profile's path, for titles */
    cp_tl_filter filter; /* --min-duration, --max-depth, --include, --exclude (chrome) */
} convert_options;

typedef int (*exporter_fn)(FILE *out, const cp_profile *p, const convert_options *o, char *err,
                           size_t errlen);

/** An exporter that reads the profile itself (streaming, for files larger
 *  than memory). */
typedef int (*stream_exporter_fn)(FILE *out, const char *path, const convert_options *o, char *err,
                                  size_t errlen);

/** speedscope JSON: one sampled profile per thread, weights in ns (trace)
 *  or sample counts, unit "none" (sampled profiles). */
int export_speedscope(FILE *out, const cp_profile *p, const convert_options *o, char *err,
                      size_t errlen);

/** pprof: a gzipped profile.proto (report/pprof.h). */
int export_pprof(FILE *out, const cp_profile *p, const convert_options *o, char *err,
                 size_t errlen);

#endif

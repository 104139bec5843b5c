/*
 * cpyprof/cpyprof.h — the C API of libcpyprof.so.
 *
 * The library profiles the CPython 3.11 interpreter it is loaded into. It is
 * activated either by LD_PRELOAD (settings from CPYPROF_* environment
 * variables, see docs/usage.md) or by calling cpyprof_start() — which is what
 * the Python module `cpyprof` does. Every function here must be called with
 * the GIL held. None of them exits or prints on stdout; failures return -1
 * with a one-line message in `err`.
 */
#ifndef CPYPROF_CPYPROF_H
#define CPYPROF_CPYPROF_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CPYPROF_API __attribute__((visibility("default")))

/** A setting: key as in CPYPROF_<KEY> lower-cased ("mode", "builtins",
 *  "max_depth", "ring_size", "transport", "quiet", "rate", "clock", "idle",
 *  "native"), value as text. */
typedef struct cpyprof_option {
    const char *key;
    const char *value;
} cpyprof_option;

/** Starts profiling the whole process (every thread, and threads started
 *  later) into `output`. Returns 0; or -1 with `err` set and *err_kind set to
 *  1 for a bad setting, 2 for an unwritable output, 3 for anything else
 *  (already running, unsupported interpreter). */
CPYPROF_API int cpyprof_start(const char *output, const cpyprof_option *options, size_t noptions,
                              int *err_kind, char *err, size_t errlen);

/** Stops profiling and writes the profile. Returns 0, 1 if not running, or
 *  -1 with `err` set (the file could not be written completely). */
CPYPROF_API int cpyprof_stop(char *err, size_t errlen);

/** 1 while profiling, else 0. */
CPYPROF_API int cpyprof_is_running(void);

/** The output path of the current (or last) run; "" if none. */
CPYPROF_API const char *cpyprof_output(void);

/** The path of the loaded libcpyprof.so. */
CPYPROF_API const char *cpyprof_library_path(void);

/** The release, e.g. "0.1.0". */
CPYPROF_API const char *cpyprof_version(void);

#ifdef __cplusplus
}
#endif
#endif

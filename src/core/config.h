/*
 * config.h — the profiler's settings, and the one parser for them.
 *
 * The same keys come from three places, all through cp_config_set():
 *   - the environment (CPYPROF_OUTPUT, CPYPROF_MODE, ...: key = suffix after
 *     CPYPROF_, lower-cased), read by cp_config_from_env() when the library is
 *     preloaded;
 *   - `cpyprof record` options, which the CLI turns into that environment;
 *   - keyword arguments of cpyprof.start() in Python.
 * A bad value yields a one-line message naming the key, the value and what is
 * accepted. No allocation: usable from a library constructor.
 */
#ifndef CPYPROF_CORE_CONFIG_H
#define CPYPROF_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CP_PATH_MAX 4096

typedef enum cp_mode {
    CP_MODE_TRACE = 0,    /* deterministic: every call, aggregated call tree */
    CP_MODE_SAMPLE = 1,   /* timer-driven stack sampling */
    CP_MODE_TIMELINE = 2, /* every call and return as a timestamped event (trace mode's tree too) */
} cp_mode;

typedef enum cp_keep {
    CP_KEEP_ALL = 0,  /* timeline streaming: every event goes to the file */
    CP_KEEP_LAST = 1, /* timeline flight recorder: only the newest events survive */
} cp_keep;

typedef enum cp_sample_clock {
    CP_CLOCK_CPU = 0,  /* per-thread CPU time */
    CP_CLOCK_WALL = 1, /* wall-clock time */
} cp_sample_clock;

typedef enum cp_transport {
    CP_TRANSPORT_INLINE = 0, /* hooks update a per-thread tree directly */
    CP_TRANSPORT_RING = 1,   /* hooks push call/return records; writer aggregates */
} cp_transport;

typedef enum cp_gil_mode {
    CP_GIL_OFF = 0,    /* no GIL accounting */
    CP_GIL_EXACT = 1,  /* every GIL transition (GOT-redirected pthread_mutex_lock/unlock) */
    CP_GIL_SAMPLE = 2, /* the writer thread reads the GIL's holder gil_rate_hz times a second */
} cp_gil_mode;

typedef enum cp_alloc_mode {
    CP_ALLOC_OFF = 0,    /* no allocation counting */
    CP_ALLOC_ON = 1,     /* PyMem RAW/MEM/OBJ allocators wrapped; GC collections */
    CP_ALLOC_NATIVE = 2, /* also malloc/free of native code (GOT patching) */
} cp_alloc_mode;

typedef struct cp_config {
    char output[CP_PATH_MAX]; /* "output": profile path; default "cpyprof.out" */
    cp_mode mode;             /* "mode": trace | sample | timeline; default trace */
    bool builtins;            /* "builtins": profile C functions too; default 1 */
    uint32_t max_depth;       /* "max_depth": deepest tracked stack; default 2048, 16..100000 */
    uint64_t ring_bytes; /* "ring_size": per-thread ring, bytes, suffix K/M/G; default 1M, 4K..1G */
    cp_transport transport; /* "transport": inline | ring; default inline */
    bool quiet;             /* "quiet": no messages on stderr except errors; default 0 */
    /* sampling */
    uint32_t rate_hz;      /* "rate": samples/s per thread; default 100, 1..10000 */
    cp_sample_clock clock; /* "clock": cpu | wall; default cpu */
    bool idle;             /* "idle": keep samples of idle threads (wall); default 1 */
    bool native;           /* "native": native frames too; default 0 */
    /* GIL accounting (src/python/gil*.c) */
    cp_gil_mode gil;      /* "gil": off | exact | sample (1/0 etc. too); default off */
    uint32_t gil_rate_hz; /* "gil_rate": gil=sample's reads per second; default 100, 1..1000 */
    /* allocations (src/python/alloc.c, gc.c) */
    cp_alloc_mode alloc; /* "alloc": off | on | native (1/0 etc. too); default off */
    /* timeline mode (src/python/timeline.c) */
    uint64_t buffer_bytes; /* "buffer": per-thread event buffer, K/M/G; default 4M, 64K..1G */
    cp_keep keep;          /* "keep": all (streaming) | last (flight recorder); default all */
    /* child processes (docs/usage.md "Child processes") */
    bool subprocesses; /* "subprocesses": every Python child profiles too, each into its own
                          file (cp_output_path); default 0 */
} cp_config;

/** Fills `c` with the defaults. */
void cp_config_defaults(cp_config *c);

/** Sets one key ("output", "mode", ..., as documented on the fields; '-' is
 *  accepted for '_') from text. Booleans accept 1/0, true/false, yes/no,
 *  on/off. Returns 0, or -1 with a one-line message in err, e.g.
 *  "CPYPROF_RATE: 'fast' is not a number (expected 1..10000 samples per second)".
 *  `origin_prefix` is put before the key in messages ("CPYPROF_" for the
 *  environment, "--" for the CLI, "" for Python); NULL means "". */
int cp_config_set(cp_config *c, const char *key, const char *value, const char *origin_prefix,
                  char *err, size_t errlen);

/** Reads every CPYPROF_<KEY> variable known to cp_config_set from `envp`
 *  (a NULL-terminated "NAME=value" array, e.g. environ). Unknown CPYPROF_*
 *  names are errors too (typos must not pass silently), except the names in
 *  the "reserved" list (CPYPROF_PID, CPYPROF_LIBRARY, CPYPROF_BUILD_DIR,
 *  CPYPROF_ACTIVE), which belong to the launcher and tools.
 *  Stops at the first error. Returns 0 or -1 with err set. */
int cp_config_from_env(cp_config *c, char *const *envp, char *err, size_t errlen);

/** Parses a size with an optional K/M/G suffix (powers of 1024). */
int cp_parse_size(const char *text, uint64_t *out);

/** The file this process writes: `c->output` itself, or with subprocesses
 *  on, one file per process: ".PID" goes before the last extension of the
 *  file name ("out.cpyprof" -> "out.1234.cpyprof", "prof" -> "prof.1234"),
 *  and an output that ends in '/' names a directory that gets
 *  "cpyprof.PID.out". Returns 0, or -1 with err set when the result does
 *  not fit in n bytes. No allocation (runs in a forked child). */
int cp_output_path(const cp_config *c, long pid, char *buf, size_t n, char *err, size_t errlen);

/** The names of all keys, NULL-terminated (for --help and errors). */
extern const char *const cp_config_keys[];

#endif

/*
 * alloc.h — allocation counting (option alloc): the PyMem RAW, MEM and OBJ
 * allocators wrapped while profiling, counts and bytes of allocations and
 * frees per call-tree node (or per function), the peak, and the ALLOC
 * chunks. See alloc.c for every hazard, docs/usage.md for what is counted.
 */
#ifndef CPYPROF_PYTHON_ALLOC_H
#define CPYPROF_PYTHON_ALLOC_H

#include "python/pyapi.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CP_TLS_IE __attribute__((tls_model("initial-exec")))

struct cp_thread;
struct cp_sitestats;
struct cp_site_counts;

/** Per-thread state of the allocation counter, one TLS block so that the
 *  wrappers compute its address once per call. Private to alloc.c except
 *  `busy` (cp_alloc_busy below). */
typedef struct cp_alloc_tls {
    uint32_t miss_gen; /* epoch when this thread was looked up and not found */
    uint32_t seen;     /* the profiler's thread count at that lookup */
    /* gen: epoch when it was found counting; stamp: the code cache's;
     * busy: see cp_alloc_busy. One 64-bit compare with the layer's key
     * (whose busy bit is 0) tests all three on the sampling mode's fast
     * path. stamp has 31 bits, as alloc.c's copies of it. */
    union {
        struct {
            uint32_t gen;
            uint32_t stamp : 31;
            uint32_t busy : 1;
        };
        uint64_t gen_stamp;
    };
    struct cp_thread *th;
    struct cp_sitestats *sites;
    /* sampling mode: the last code object and its counters (alloc.c) */
    const void *code;
    struct cp_site_counts *counts;
    /* code's first traceable instruction: an innermost frame of `code`
     * whose prev_instr is below it is incomplete (see gil_where_fast) */
    const void *code_first;
} cp_alloc_tls_t;

extern __thread cp_alloc_tls_t cp_alloc_tls CP_TLS_IE;

/** Non-zero while this thread is inside one of our allocator wrappers or
 *  inside the profiler's own work (registering a function): allocations
 *  made then are forwarded without being counted. */
#define cp_alloc_busy (cp_alloc_tls.busy)

/** Makes a thread's counters (GIL held, when the thread state is made). 0
 *  or -1 (out of memory). Does nothing when alloc is off. */
int cp_alloc_thread_init(struct cp_thread *th);
/** Frees them (after stop). */
void cp_alloc_thread_free(struct cp_thread *th);

/** Wraps the allocators (GIL held, after the threads are attached). Never
 *  fails the run: logs one line and goes on without allocation data. */
void cp_alloc_start(void);

/** Stops counting and restores the allocators that are still ours (GIL
 *  held). Safe when counting never started. */
void cp_alloc_stop(void);

/** sys._debugmallocstats (syswrap.c) prints pymalloc's statistics only
 *  while the object allocator is pymalloc itself. If the OBJ domain's
 *  allocator is one of our layers, sets the allocator under our layers
 *  (kept in `saved` the one to put back) and returns true. GIL held; the
 *  caller allocates nothing before cp_alloc_obj_rewrap. */
bool cp_alloc_obj_unwrap(PyMemAllocatorEx *saved);
void cp_alloc_obj_rewrap(const PyMemAllocatorEx *saved);

/** Writes the ALLOC chunks (after cp_alloc_stop, before the dump that
 *  writes the trailer, GIL held). 0, or -1 with err. */
int cp_alloc_dump(char *err, size_t errlen);

/** The same from the SIGTERM dump (writer thread, no GIL, counting still
 *  running on the program's threads): counters are read as they are (off
 *  by the allocations in flight), nothing is freed or reset, so a wrapper
 *  still running finds everything in place. */
int cp_alloc_dump_nogil(char *err, size_t errlen);

/** co_extra free function (profiler.c registers it with the slot): a code
 *  object that carried co_extra is being freed, so per-thread caches keyed
 *  by code object address are stale. GIL held. */
void cp_alloc_code_extra_freed(void *extra);

/** The calling thread's profiler state, or NULL (a thread the profiler
 *  does not know). Any thread, with or without the GIL. */
struct cp_thread *cp_alloc_current_thread(void);

/** Bytes held by the counted blocks now (0 when not counting). Any
 *  thread: a relaxed read of counters the wrappers update, so a value may
 *  lag by the allocation in flight. */
uint64_t cp_alloc_live_bytes(void);

/** alloc_series.c: the live-bytes series of timeline mode (ALLOC kind 3).
 *  tick: the writer thread, every pass of its loop (takes a point at most
 *  every 10 ms). flush: takes a last point and writes the points not yet
 *  written; only from the thread that writes the dump, after the writer's
 *  loop has ended (stop) or on the writer thread itself (SIGTERM). */
void cp_alloc_series_tick(void);
int cp_alloc_series_flush(char *err, size_t errlen);

/* ---- for alloc_native.c: counting blocks of the raw kind (any thread) ---- */

/** Non-zero while native allocations are counted (alloc=native). */
extern _Atomic int cp_alloc_native_live;

/** Counts a new block p of n bytes / the free of p (its size from the map),
 *  charged to the calling thread's current site. Any thread, GIL or not. */
void cp_alloc_raw_new(void *p, size_t n);
void cp_alloc_raw_free(void *p);

/** A realloc through fn(ctx, ptr, n), counted as a free and an allocation;
 *  busy is set during fn. */
typedef void *(*cp_realloc_fn)(void *ctx, void *ptr, size_t n);
void *cp_alloc_raw_realloc(cp_realloc_fn fn, void *ctx, void *ptr, size_t n);

/** alloc_native.c: redirects malloc & co in every loaded object (and in
 *  objects loaded later), with the GIL; puts them back at stop. */
void cp_alloc_native_start(void);
void cp_alloc_native_stop(void);
/** Fork child: the re-scan lock may have been held by another thread. */
void cp_alloc_native_atfork_child(void);

#endif

/*
 * sample.h — sampling mode (CPYPROF_MODE=sample): per-thread timers, the
 * signal handler that records Python stacks into each thread's ring, the
 * writer-side aggregation and the SAMPLES chunks. docs/architecture.md,
 * "Sampling", explains the design and every hazard.
 */
#ifndef CPYPROF_PYTHON_SAMPLE_H
#define CPYPROF_PYTHON_SAMPLE_H

#include "python/profiler.h"
#include "python/sample_agg.h"

#include <signal.h>
#include <sys/types.h>
#include <stdbool.h>
#include <time.h>

/** Per-thread sampling state (cp_thread.sample). */
typedef struct cp_sample_thread {
    int slot;    /* index in the handler's slot table, -1 when none */
    cp_sagg agg; /* writer side */
    /* Repeats (wall clock) still counted when the thread's slot was
     * released: added to its last sample by the dump, after the last drain. */
    _Atomic uint64_t leftover;
} cp_sample_thread;

/* sample_timer.c: start/stop and per-thread timers (GIL held unless noted) */
/** Picks the signal, installs the handlers, registers the code objects on
 *  every stack. Before any thread is attached. */
int cp_sample_start(char *err, size_t errlen);
/** Deletes every timer and waits until no handler is running; restores the
 *  signal dispositions. After this no handler touches any cp_thread. */
void cp_sample_stop(void);
/** Makes th's sampling state and timer. `on_self`: called on the thread
 *  itself (then the timer is also deleted when the thread exits). */
int cp_sample_thread_attach(cp_thread *th, PyThreadState *ts, bool on_self, char *err,
                            size_t errlen);
void cp_sample_thread_free(cp_thread *th);
/** Fork child: the handler must do nothing (async-signal-safe). */
void cp_sample_atfork_child(void);
/** Writer thread, every iteration: asks the main thread (pending call) to
 *  register code objects the handler saw unregistered. */
void cp_sample_tick(void);
/** Registers (co_extra ids) the code objects on every thread's stack. GIL. */
void cp_sample_register_stacks(void);

/* sample_signal.c */
int cp_sample_signal_install(char *err, size_t errlen); /* picks and installs */
void cp_sample_signal_remove(void);
int cp_sample_signo(void);
/** Set by the handler when it copied a name (unregistered code). */
extern _Atomic int cp_sample_want_register;
/** 1 while sampling runs: handlers do nothing when 0. */
extern _Atomic int cp_sample_live;
/** The nominal period, set at start (cpu clock jitter). */
extern long cp_sample_period_ns;
/** Clock ticks spent in the handler taking samples, and how many it took. */
extern _Atomic uint64_t cp_sample_handler_ticks, cp_sample_handler_count;

/* sample_slots (sample_timer.c): what the handler knows of each thread */
#define CP_SAMPLE_SLOTS 4096
typedef struct cp_sample_slot {
    _Atomic(cp_thread *) th;
    PyThreadState *tstate;
    _Atomic uint32_t gen; /* bumped at every reuse: stale signals are ignored */
    _Atomic int active;   /* handlers running on this slot */
    timer_t timer;
    _Atomic int has_timer;
    /* wall clock (sample_wall.c): the thread's kernel id and CPU clock, for
     * the sampler thread; set before th is published */
    pid_t tid;
    clockid_t cpu_clock;
    bool has_cpu_clock;
    /* Periods skipped because the thread had not run: gen << 32 | count.
     * Added by the sampler thread, taken by the thread's own handler (or by
     * release_slot), both by compare-and-swap on the generation. */
    _Atomic uint64_t repeats;
    /* The thread's last sample: gen << 2 | CP_SLOT_LAST_*; written by its
     * handler. Repeats are counted only after a sample of this generation. */
    _Atomic uint32_t last;
    /* cpu mode jitter, touched only by the thread's handler after attach:
     * xorshift state, and the absolute expiry (ns of the thread's CPU
     * clock) of the last arming */
    uint32_t rng;
    int64_t deadline;
} cp_sample_slot;
#define CP_SLOT_LAST_KEPT 1u    /* published: repeats add to it */
#define CP_SLOT_LAST_DROPPED 2u /* dropped by --no-idle: repeats are too */
extern cp_sample_slot cp_sample_slots[CP_SAMPLE_SLOTS];
/** Slots ever claimed (the sampler thread scans [0, hwm)). */
extern _Atomic int cp_sample_slots_hwm;

/** Takes the slot's repeat count if it belongs to generation gen. */
uint64_t cp_sample_take_repeats(cp_sample_slot *sl, uint32_t gen);

/* sample_wall.c: the wall-clock sampler thread */
#define CP_WALL_MAX_WEIGHT 1000 /* periods one wall sample may stand for */
int cp_sample_wall_start(char *err, size_t errlen);
void cp_sample_wall_stop(void);
void cp_sample_wall_atfork_child(void);
/** Periods the wall sampler signalled / counted as repeats (this run). */
extern _Atomic uint64_t cp_sample_wall_signals, cp_sample_wall_repeats;

/* sample_agg glue (sample_timer.c): writer side */
void cp_sample_feed(cp_thread *th, const cp_record *r);

/** The writer-made function table (sample_timer.c), for the dump. */
const cp_sfuncs *cp_sample_private_funcs(void);

/* sample_dump.c: SAMPLES chunks (+ STRINGS/FUNCS for writer-made
 * functions whose ids start at nstrings/nfuncs, the counts already written). */
int cp_sample_dump(uint32_t nstrings, uint32_t nfuncs, char *err, size_t errlen);

#endif

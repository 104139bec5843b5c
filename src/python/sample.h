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

/* The handler's cache of line numbers (one thread's handler only; our
 * signal does not nest). PyCode_Addr2Line scans the code's location table
 * from its start: ~1700 instructions per frame, most of a Python-only
 * sample. A hit needs the same code object address, location table
 * address, first line, qualified name address and instruction offset: a
 * code object that died and another allocated at its address would have
 * to reuse the address of its table and name too to be confused. */
#define CP_LINE_CACHE 128 /* entries, a power of 2 */
typedef struct cp_line_entry {
    const void *code, *table, *qualname;
    int32_t first, addr, line;
} cp_line_entry;

/** Per-thread sampling state (cp_thread.sample). */
typedef struct cp_sample_thread {
    cp_line_entry lines[CP_LINE_CACHE]; /* the thread's handler only */
    int slot;                           /* index in the handler's slot table, -1 when none */
    cp_sagg agg;                        /* writer side */
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
/** Frames whose names the handler copied (code not registered yet), and
 *  the wall clock's reads of a thread's CPU clock in the handler (one per
 *  sample whose Python position did not move, one per unpark). */
extern _Atomic uint64_t cp_sample_names_copied, cp_sample_wall_cpu_reads;

/* sample_slots (sample_timer.c): what the handler knows of each thread */
#define CP_SAMPLE_SLOTS 4096
typedef struct cp_sample_slot {
    _Atomic(cp_thread *) th;
    PyThreadState *tstate;
    _Atomic uint32_t gen; /* bumped at every reuse: stale signals are ignored */
    _Atomic int active;   /* handlers running on this slot */
    timer_t timer;
    _Atomic int has_timer;
    /* wall clock (sample_wall.c): the wake timer on the thread's CPU clock
     * (armed while parked), the CPU clock itself, set before th is
     * published */
    timer_t wake_timer;
    _Atomic int has_wake_timer;
    pid_t tid;
    clockid_t cpu_clock;
    bool has_cpu_clock;
    /* CLOCK_MONOTONIC ns when the thread parked, 0 when not parked,
     * CP_PARK_UNPARKING while the writer unparks it; taken by
     * compare-and-swap (the handler at unpark, the writer, release_slot) */
    _Atomic int64_t parked_ns;
    /* its CPU clock then (written by the handler, read by the writer's
     * cp_sample_wall_observe), and the parked_ns it belongs to, stored
     * after it (the writer reads park_cpu only when the tag is parked_ns) */
    _Atomic int64_t park_cpu, park_tag;
    /* Set by the writer when it unparked the thread (cp_sample_wall_observe):
     * periods the thread ran meanwhile, added to the weight of its next
     * sample, and "re-arm the period timer from now" (both taken by
     * exchange in the handler) */
    _Atomic uint64_t carry;
    _Atomic int resync;
    int64_t last_cpu;    /* its CPU clock at the end of its previous handler, -1: none */
    uint64_t last_pos;   /* its Python position at its previous sample, 0: unknown
                          * (sample_signal.c, position_of; handler only) */
    uint32_t wall_count; /* samples since attach (handler only): re-arm every 8th */
    /* Periods counted while the thread was parked: gen << 32 | count.
     * Added by its handler at unpark, taken by its handler at the next
     * sample (or by release_slot), both by compare-and-swap on the
     * generation. */
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
#define CP_PARK_UNPARKING (-1)
#define CP_SLOT_LAST_KEPT 1u    /* published: repeats add to it */
#define CP_SLOT_LAST_DROPPED 2u /* dropped by --no-idle: repeats are too */
extern cp_sample_slot cp_sample_slots[CP_SAMPLE_SLOTS];
/* A timer's sigval: gen * CP_SAMPLE_SLOTS + slot, plus CP_SIGVAL_WAKE for
 * the wall clock's wake timer. */
#define CP_SIGVAL_WAKE 0x40000000u
#define CP_SAMPLE_GENS (0x3FFFFFFFu / CP_SAMPLE_SLOTS)

/** Takes the slot's repeat count if it belongs to generation gen. */
uint64_t cp_sample_take_repeats(cp_sample_slot *sl, uint32_t gen);

/* sample_wall.c: wall clock, parking threads that do not run (all
 * async-signal-safe; called by the slot's own handler unless noted) */
/** CPU time a parked thread runs before its wake timer fires: 20 us, or a
 *  tenth of the period above 5 kHz. */
int64_t cp_sample_wall_idle_ns(void);
/** CPU time since its previous sample under which a thread parks: a tenth
 *  of the period (at least idle_ns); sample_wall.c says why. */
int64_t cp_sample_wall_park_ns(void);
/** Arms the period timer at from_ns + a jittered period. */
void cp_sample_wall_rearm(cp_sample_slot *sl, int64_t from_ns);
/** After a sample from the period timer: parks the thread (true) if it
 *  used less than the idle CPU time since its previous sample; false: the
 *  caller re-arms the period timer. */
bool cp_sample_wall_after(cp_sample_slot *sl, uint32_t gen, int64_t entry_cpu);
/** The wake timer fired: counts the parked periods as repeats and returns
 *  the weight of the sample to take now (0: was not parked). */
uint64_t cp_sample_wall_unpark(cp_sample_slot *sl, uint32_t gen, int64_t entry_cpu);
/** This thread's CPU clock (ns), -1 if unreadable. */
int64_t cp_sample_wall_cpu_ns(void);
/** release_slot (any thread): the periods of a parked interval still open,
 *  for the thread's leftover. */
uint64_t cp_sample_wall_release(cp_sample_slot *sl);
/** Writer thread, every loop: unparks the parked threads whose CPU clock
 *  shows that they ran (their wake timer may fire much later). */
void cp_sample_wall_observe(void);
/** The handler, before a period sample: the weight the writer's unpark
 *  left for it (periods the thread ran while still parked), and whether
 *  the period timer must be re-armed from now (*resync). */
uint64_t cp_sample_wall_carry(cp_sample_slot *sl, bool *resync);
/** Slots ever claimed: indexes below this (sample_timer.c). */
extern _Atomic int cp_sample_slots_hwm;
/** Real samples taken / periods counted as repeats, wall clock (this run). */
extern _Atomic uint64_t cp_sample_wall_signals, cp_sample_wall_repeats;
/** Parked threads the writer found running and unparked (this run). */
extern _Atomic uint64_t cp_sample_wall_writer_unparks;

/* sample_agg glue (sample_timer.c): writer side */
void cp_sample_feed(cp_thread *th, const cp_record *r);

/** The writer-made function table (sample_timer.c), for the dump. */
const cp_sfuncs *cp_sample_private_funcs(void);

/* sample_dump.c: SAMPLES chunks (+ STRINGS/FUNCS for writer-made
 * functions whose ids start at nstrings/nfuncs, the counts already written). */
int cp_sample_dump(uint32_t nstrings, uint32_t nfuncs, char *err, size_t errlen);

#endif

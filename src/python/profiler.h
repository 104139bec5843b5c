/*
 * profiler.h — the one global state of the in-process profiler, and the
 * per-thread state the hooks write to.
 *
 * All mutation of this state happens with the GIL held (start, stop, the
 * profile hook, thread registration) except: the writer thread drains rings
 * and, for the ring transport, owns the trees; and the SIGTERM dump reads
 * everything from the writer thread without the GIL (see dump.c for why that
 * is memory-safe).
 */
#ifndef CPYPROF_PYTHON_PROFILER_H
#define CPYPROF_PYTHON_PROFILER_H

#include "python/py311.h"

#include "core/clock.h"
#include "core/config.h"
#include "core/fdsafe.h"
#include "core/ring.h"
#include "core/symtab.h"
#include "core/tree.h"
#include "core/writer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/** One entry of a thread's shadow stack. */
typedef struct cp_frame_entry {
    cp_tree_node *node; /* tree node (inline transport) */
    uint64_t t0;        /* ticks at entry */
    const void *what;   /* the _PyInterpreterFrame, or the PyMethodDef of a C call */
    uint32_t fid;       /* function id (ring transport) */
    uint32_t is_c;      /* a C function entry */
} cp_frame_entry;

/** Per-thread state: a Python object so that it can be the `obj` argument
 *  of PyEval_SetProfile (the hook then finds its thread in one load). */
typedef struct cp_thread {
    PyObject_HEAD struct cp_thread *next; /* global list, newest first */
    uint32_t id;                          /* index in the profile file */
    uint32_t flags;                       /* CPYPROF_THREAD_* */
    uint64_t ident;                       /* threading.get_ident() */
    uint64_t native_tid;
    uint64_t ts_id;       /* PyThreadState.id: never reused, unlike the tid (alloc.c) */
    uintptr_t tstate_key; /* its PyThreadState's address: a key only (gil=sample) */
    uint32_t name;        /* string id or CPYPROF_NONE */
    int64_t start_ns;
    /* shadow stack (hook side) */
    cp_frame_entry *stack;
    uint32_t depth;
    uint32_t max_depth;
    uint64_t overflow;      /* untracked frames currently above max_depth */
    uint64_t untracked;     /* calls not recorded (depth limit, full tree) */
    uint64_t tl_tail_cache; /* timeline streaming hook: the last ring tail it read */
    /* sys.setprofile called from Python code while our hook is this
     * thread's (syswrap.c): CP_SYS_ARMED from its C_CALL to its C_RETURN,
     * CP_SYS_DEFERRED once the wrapper left the swap to that C_RETURN, with
     * the program's function in sys_profile_pending (a reference). */
    uint32_t sys_setprofile;
    PyObject *sys_profile_pending;
    /* The frame object last taken from a suspending generator
     * (cp_genframe_suspended), kept until the next one: call_trace still
     * writes to it after our callback returns. Unreachable by the program. */
    PyObject *gen_frame_taken;
    cp_tree tree; /* written by the hook (inline) or the writer (ring) */
    cp_ring ring; /* hook -> writer thread */
    /* The hook reads ring.slots and ring.mask at every event, the writer
     * writes the fields below at every event: a line apart, or each event
     * would move that line between their cores. */
    char writer_pad[64];
    /* ring transport: the writer's view of this thread's stack */
    struct {
        cp_tree_node *node;
        uint64_t t0;
        uint32_t fid; /* timeline mode: the function, for the END the writer emits */
        uint32_t hd;  /* timeline mode: the hook's depth of this frame (1 = outermost) */
    } * agg;
    uint32_t agg_depth;
    /* timeline mode, writer side (timeline.c): TIMELINE records not yet written */
    cp_buf tl_out;
    uint32_t tl_n;
    uint64_t tl_written, tl_synth, tl_recorded;
    int64_t tl_first_ns, tl_last_ns;
    uint64_t tl_first_ticks, tl_last_ticks; /* of the first/last record written */
    uint32_t tl_gil;                        /* GIL events: 0 none yet, 1 held, 2 not held */
    /* sampling mode (sample.h), NULL otherwise */
    struct cp_sample_thread *sample;
    /* allocation counters (alloc.c), NULL unless alloc is on */
    struct cp_sitestats *alloc;
} cp_thread;

enum cp_sys_setprofile_state { CP_SYS_NONE = 0, CP_SYS_ARMED = 1, CP_SYS_DEFERRED = 2 };
enum cp_run_state { CP_OFF = 0, CP_RUNNING = 1, CP_STOPPING = 2 };
enum cp_activation { CP_ACT_NONE = 0, CP_ACT_PRELOAD = 1, CP_ACT_IMPORT = 2 };

typedef struct cp_profiler {
    _Atomic int state;  /* enum cp_run_state */
    volatile int inert; /* hooks return at once (stopping, forked child) */
    int activation;     /* enum cp_activation */
    cp_config cfg;
    cp_clock clock;
    cp_symtab syms;
    cp_writer writer;
    _Atomic(cp_thread *) threads;
    uint32_t nthreads;
    uint32_t generation;       /* bumped at every start: stale co_extra ids are ignored */
    Py_ssize_t co_extra_index; /* -1 until requested (once per process) */
    _Atomic int dumped;        /* the profile was written (at most once per run) */
    /* writer thread */
    pthread_t writer_tid;
    bool writer_running;
    _Atomic int writer_quit;
    uint64_t events_written;
    _Atomic bool tl_gil; /* timeline mode with gil=exact running: GIL events in the timelines */
    /* SIGTERM */
    bool term_handler_installed;
    /* once-per-process registrations */
    bool atexit_registered;
    bool atfork_registered;
    /* a forked child still holds the parent's run state (freed at start) */
    bool stale_run_state;
    /* subprocesses: a forked child restarts its own run after the fork
     * (set by the atfork child handler, consumed by the after_in_child hook) */
    pid_t run_pid; /* the process the run belongs to (signal handlers in a fresh fork) */
    bool follow_fork;
    bool clock_from_parent;      /* the next start rebases the clock, no calibration */
    bool os_exit_wrapped;        /* os._exit writes the profile first (subprocesses) */
    char path[CP_PATH_MAX + 32]; /* the file of this process (cp_output_path) */
    /* untracked calls of threads whose state was dropped */
    uint64_t write_errors;
} cp_profiler;

extern cp_profiler cp_g;

/* trace.c */
int cp_trace_hook(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg);
int cp_trace_hook_ring(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg);
/** The hook for the current configuration (one per transport, so the hot
 *  path does not test the transport on every event). */
Py_tracefunc cp_trace_current_hook(void);
/** True if `f` is one of our hooks. */
int cp_trace_is_ours(Py_tracefunc f);
/** Pushes the frames a thread is executing (outermost first), as if they
 *  had just been called. GIL held. */
void cp_trace_prefill(cp_thread *th, cp_iframe *innermost);

/* timeline_hook.c: the timeline mode hooks (streaming and flight recorder) */
/** A timeline slot: the thread's ring memory seen as 16-byte slots (twice
 *  as many as 32-byte records; ring head and tail count slots), in both
 *  bounds. info as in struct cpyprof_tl_rec, with the hook's depth: a BEGIN
 *  carries the new frame's depth, an END the depth after the return. */
typedef struct cp_tl_slot {
    uint64_t ticks;
    uint32_t fid;
    uint32_t info;
} cp_tl_slot;
static inline uint64_t cp_tl_slot_mask(const cp_ring *r)
{
    return r->mask * 2 + 1; /* 2 x capacity slots, a power of two */
}
int cp_tl_hook_stream(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg);
int cp_tl_hook_last(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg);
/** Records a frame active at start as a synthesized BEGIN. GIL held. */
void cp_tl_prefill_enter(cp_thread *th, uint32_t fid, const void *frame, uint64_t now);
/** Hook-internal event kind of a GIL transition (slot kind CPYPROF_TL_GIL,
 *  fid CPYPROF_TL_GIL_ACQUIRED or CPYPROF_TL_GIL_RELEASED). */
#define CP_REC_TL_GIL 0x4701u
/** A GIL transition of the calling thread (state `ts`) at `ticks`, into its
 *  timeline if it has one (gil.c, inside the interpreter's mutex calls:
 *  lock-free, allocation-free, async-signal-safe). */
void cp_tl_gil_event(PyThreadState *ts, bool acquired, uint64_t ticks);

/* timeline.c: the writer side of timeline mode */
/** Streaming: turns the slots waiting in th's ring into TIMELINE records
 *  and tree updates, reading them in place (writer thread, or the dump). */
void cp_tl_drain(cp_thread *th);
/** Writes the thread's pending TIMELINE records as one chunk. */
void cp_tl_flush(cp_thread *th);
/** At the dump, before THREAD/TREE chunks: flight recorder windows, ends of
 *  open frames at `now`, TIMELINE_INFO chunks. */
int cp_tl_dump(uint64_t now, bool have_gil, char *err, size_t errlen);

/** RETURN event of a generator or coroutine frame (trace.c, timeline_hook.c):
 *  if it is a yield, the frame object the event made is taken back from the
 *  generator (cp311_detach_gen_frame_object) unless the program has a
 *  trace function (which sees the frames itself). `f` is the frame's
 *  interpreter frame, read by the caller first: a detached frame object
 *  points to its own empty one. GIL held. */
void cp_genframe_suspended(cp_thread *th, PyFrameObject *frame);
static inline void cp_genframe_return(cp_thread *th, PyFrameObject *frame, const cp_iframe *f)
{
    if (__builtin_expect(cp311_iframe_is_generator(f), 0))
        cp_genframe_suspended(th, frame);
}

/* names.c: function ids, GIL held */
uint32_t cp_names_code(PyCodeObject *co); /* registers or returns the id */
uint32_t cp_names_cfunc(PyObject *cfunc); /* a PyCFunctionObject */
/** The id of a code object from its co_extra slot; registers on a miss. */
static inline uint32_t cp_code_id(PyCodeObject *co)
{
    uintptr_t x = (uintptr_t)cp311_code_extra(co, cp_g.co_extra_index);
    if ((uint32_t)(x >> 32) == cp_g.generation)
        return (uint32_t)x;
    return cp_names_code(co);
}
void cp_names_reset(void);
uint32_t cp_names_string(const char *s);

/* threads.c */
int cp_threads_init_type(void);
cp_thread *cp_thread_new(PyThreadState *ts, uint32_t flags, char *err, size_t errlen);
int cp_threads_attach_all(char *err, size_t errlen); /* existing threads + new ones */
/* newthreads.c: threads started later, through _thread.start_new_thread */
int cp_newthreads_hook(char *err, size_t errlen);
void cp_newthreads_unhook(void);
void cp_threads_detach_all(void);
void cp_threads_refresh_names(void);
void cp_threads_free_all(void);

/* cthreads.c: threads entering Python from C (PyGILState_Ensure) */
void cp_cthreads_start(void);
void cp_cthreads_stop(void);

/* drain.c: the writer thread */
int cp_writer_thread_start(char *err, size_t errlen);
/** Ends the writer's loop (no more draining). When the writer owns the
 *  file's descriptor alone (cp_writer.route) it stays, writing the chunks
 *  the caller hands it, until cp_writer_thread_join; otherwise it is joined
 *  here. With the GIL. */
void cp_writer_thread_stop(void);
void cp_writer_thread_join(void);
/** True on the writer thread when it has a descriptor table of its own. */
bool cp_writer_has_private_fds(void);
int cp_take_pending_term(void); /* a SIGTERM came in while stopping */
/** Wakes the writer thread (a futex: no descriptor, no effect across a
 *  fork; nearly free when a wake is already pending). `c` says why, for
 *  readers of the code only. Async-signal-safe. */
void cp_wake_writer(char c);
void cp_note_term(void); /* async-signal-safe: a SIGTERM for the writer thread to handle */
void cp_drain_all(void); /* moves every ring's records into trees / event chunks */

/* dump.c */
int cp_dump_profile(int end_reason, int end_signal, bool have_gil, char *err, size_t errlen);
int cp_write_meta(char *err, size_t errlen);

/* profiler.c */
int cp_profiler_start(const cp_config *cfg, int activation, char *err, size_t errlen);
int cp_profiler_stop(int end_reason, char *err, size_t errlen);
void cp_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif

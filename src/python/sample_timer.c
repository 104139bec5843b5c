/*
 * sample_timer.c — sampling's run control: one POSIX timer per thread
 * (timer_create with SIGEV_THREAD_ID, so the signal lands on that thread),
 * the slot table the handler finds threads through, start/stop, and the
 * registration of code objects with the GIL.
 *
 * Clocks: cpu = the thread's CPU-time clock (pthread_getcpuclockid of the
 * thread; ticks only while it runs, limited by the kernel tick), wall =
 * CLOCK_MONOTONIC (also interrupts sleeping threads: SA_RESTART on our side,
 * PEP 475 retries in CPython).
 *
 * Timer lifetime: deleted at stop; for threads attached on themselves
 * (started after profiling began) also at thread exit, by a pthread key
 * destructor, so thread churn does not pile up timers. Threads that existed
 * at start keep theirs until stop (the kernel stops delivering to a thread
 * that exited).
 *
 * Slots: the timer's sigval is slot index + generation * CP_SAMPLE_SLOTS.
 * Slots are claimed with the GIL held and released by the thread-exit
 * destructor or at stop; the generation is bumped on release, so a signal
 * queued before is ignored. The table is static: never freed, so a late
 * handler never reads freed memory.
 */
#include "python/sample.h"

#include "native/unwind.h"

#include "python/sample_py311.h"

#include <internal/pycore_interp.h>

#include "cpyprof/format.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

cp_sample_slot cp_sample_slots[CP_SAMPLE_SLOTS];
_Atomic int cp_sample_slots_hwm;
static cp_sfuncs sfuncs; /* writer-only */
static uint32_t truncated_fid = CPYPROF_NONE;
static pthread_key_t exit_key;
static bool exit_key_made;
static int64_t last_register_ns;
/* The main thread's state and its interpreter, noted at start (GIL held):
 * the writer's pending calls only run on the main thread (poke_main). */
static PyThreadState *main_tstate;
static PyInterpreterState *main_interp;

uint64_t cp_sample_take_repeats(cp_sample_slot *sl, uint32_t gen)
{
    uint64_t v = atomic_load(&sl->repeats);
    do {
        if ((uint32_t)(v >> 32) != gen || (uint32_t)v == 0)
            return 0;
    } while (!atomic_compare_exchange_weak(&sl->repeats, &v, (uint64_t)gen << 32));
    return (uint32_t)v;
}

static void release_slot(int i)
{
    cp_sample_slot *sl = &cp_sample_slots[i];
    cp_thread *th = atomic_load(&sl->th);
    uint32_t gen = atomic_load(&sl->gen);
    /* First no new handler of this slot (seq_cst: a handler announces
     * itself in `active` before it reads th and gen), then none still
     * running. cp_sample_stop runs this on another thread while the slot's
     * thread may be in its handler, e.g. unparking: it adds the parked
     * periods to the repeat word, then publishes them with a new sample.
     * Taking the repeats before that handler is done let it publish the new
     * sample after the take, and the dump added the periods parked on the
     * old stack to the new one (the aggregator's last sample). On the
     * thread itself (the key destructor) no handler of its own runs here:
     * one that interrupts this returns before it goes on. Handlers never
     * block, so the wait is a few instructions of another thread, as in
     * cp_sample_stop's own wait. */
    atomic_store(&sl->th, NULL);
    atomic_fetch_add(&sl->gen, 1);
    while (atomic_load(&sl->active))
        sched_yield();
    /* Repeats not taken by a handler (wall clock; the word still carries
     * the old generation) and a parked thread's open interval: all of them
     * repeat the last sample the thread published, which the dump adds
     * them to after the last drain. */
    uint64_t n = cp_sample_take_repeats(sl, gen);
    n += cp_sample_wall_release(sl);
    if (th && th->sample && n && atomic_load(&sl->last) == (gen << 2 | CP_SLOT_LAST_KEPT))
        atomic_fetch_add(&th->sample->leftover, n);
    /* Read the id before releasing: once has_timer is 0 the slot may be
     * claimed again (GIL side) and sl->timer overwritten. */
    timer_t t = sl->timer, w = sl->wake_timer;
    if (atomic_exchange(&sl->has_timer, 0))
        timer_delete(t);
    if (atomic_exchange(&sl->has_wake_timer, 0))
        timer_delete(w);
}

/* pthread key destructor: the thread is exiting (its Python state is gone). */
static void on_thread_exit(void *v)
{
    int i = (int)(intptr_t)v - 1;
    if (i >= 0 && i < CP_SAMPLE_SLOTS)
        release_slot(i);
}

static int claim_slot(void)
{
    for (int i = 0; i < CP_SAMPLE_SLOTS; i++) {
        cp_sample_slot *sl = &cp_sample_slots[i];
        if (atomic_load(&sl->th) == NULL && !atomic_load(&sl->has_timer) &&
            !atomic_load(&sl->has_wake_timer))
            return i;
    }
    return -1;
}

/* --native, threads that existed at start (other than the starting one):
 * libunwind must be warmed up on the thread itself, outside any handler
 * (native/unwind.h), and only Python code we can run there is a profile
 * hook. This one-shot C hook, set on the thread's state with the GIL held
 * (the thread is not running Python meanwhile), warms libunwind at the
 * thread's next Python call or return and removes itself; until then the
 * thread's samples have Python frames only. Not set when the thread already
 * has a profile function (the program's own: never replaced). */
static int native_warmup_hook(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg)
{
    (void)obj;
    (void)frame;
    (void)what;
    (void)arg;
    cp_unwind_thread_init();
    cp311_set_profile(PyThreadState_Get(), NULL, NULL);
    return 0;
}

static void arm_native_warmup(PyThreadState *ts)
{
    if (ts == PyThreadState_Get() || ts->c_profilefunc != NULL)
        return;
    cp311_set_profile(ts, native_warmup_hook, NULL); /* py311.h: why not _PyEval_SetProfile */
}

int cp_sample_thread_attach(cp_thread *th, PyThreadState *ts, bool on_self, char *err,
                            size_t errlen)
{
    cp_sample_thread *st = calloc(1, sizeof *st);
    if (!st || cp_sagg_init(&st->agg, &sfuncs, truncated_fid) != 0) {
        free(st);
        snprintf(err, errlen, "out of memory for the sampling state");
        return -1;
    }
    st->slot = -1;
    th->sample = st;
    int i = claim_slot();
    if (i < 0) {
        if (!cp_g.cfg.quiet)
            cp_log("more than %d threads: thread %u is not sampled", CP_SAMPLE_SLOTS, th->id);
        return 0;
    }
    cp_sample_slot *sl = &cp_sample_slots[i];
    if (atomic_load(&cp_sample_slots_hwm) <= i)
        atomic_store(&cp_sample_slots_hwm, i + 1); /* claims hold the GIL: one at a time */
    clockid_t clk = CLOCK_MONOTONIC;
    int crc = pthread_getcpuclockid((pthread_t)cp311_tstate_ident(ts), &clk);
    if (crc != 0 && cp_g.cfg.clock == CP_CLOCK_CPU) {
        snprintf(err, errlen, "cannot get the CPU clock of thread %u: %s", th->id, strerror(crc));
        return -1;
    }
    sl->tstate = ts;
    sl->rng = (th->id + 1) * 2654435761u | 1u;
    if (on_self && exit_key_made)
        pthread_setspecific(exit_key, (void *)(intptr_t)(i + 1));
    if (on_self && cp_g.cfg.native)
        cp_unwind_thread_init(); /* libunwind's first use allocates: not in the handler */
    else if (cp_g.cfg.native)
        arm_native_warmup(ts);
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = cp_sample_signo();
    uint32_t gen = atomic_load(&sl->gen) % CP_SAMPLE_GENS;
    atomic_store(&sl->gen, gen);
    sev.sigev_value.sival_int = (int)(gen * CP_SAMPLE_SLOTS + (uint32_t)i);
    sev._sigev_un._tid = (pid_t)th->native_tid;
    bool wall = cp_g.cfg.clock == CP_CLOCK_WALL;
    /* wall: the period timer on CLOCK_MONOTONIC; cpu: on the thread's CPU
     * clock. */
    clockid_t period_clk = wall ? CLOCK_MONOTONIC : clk;
    if (timer_create(period_clk, &sev, &sl->timer) != 0) {
        snprintf(err, errlen, "cannot create the sampling timer of thread %u: %s", th->id,
                 strerror(errno));
        return -1;
    }
    atomic_store(&sl->has_timer, 1);
    sl->tid = (pid_t)th->native_tid;
    sl->cpu_clock = clk;
    sl->has_cpu_clock = crc == 0;
    sl->last_cpu = -1;
    sl->last_pos = 0;
    atomic_store(&sl->parked_ns, 0);
    atomic_store(&sl->park_tag, 0);
    atomic_store(&sl->carry, 0);
    atomic_store(&sl->resync, 0);
    atomic_store(&sl->repeats, (uint64_t)gen << 32);
    atomic_store(&sl->last, 0);
    if (wall && crc == 0) {
        /* The wake timer of a parked thread (sample_wall.c). Without it (no
         * CPU clock) the thread is simply never parked. */
        sev.sigev_value.sival_int = (int)(CP_SIGVAL_WAKE | (gen * CP_SAMPLE_SLOTS + (uint32_t)i));
        if (timer_create(clk, &sev, &sl->wake_timer) == 0)
            atomic_store(&sl->has_wake_timer, 1);
    }
    atomic_store(&sl->th, th);
    st->slot = i;
    /* First expiry spread over one period so threads are not in lockstep. */
    long period = 1000000000L / (long)cp_g.cfg.rate_hz;
    long first = period / 2 + (long)((th->id * 7919u) % (unsigned long)(period / 2 + 1));
    /* Absolute on the thread's CPU clock: the handler re-arms each expiry
     * at deadline + a jittered period (sample_signal.c), so the mean rate
     * stays `rate` even though CPU timers fire at the next tick. */
    struct timespec now;
    if (clock_gettime(period_clk, &now) != 0) {
        snprintf(err, errlen, "cannot read the CPU clock of thread %u: %s", th->id,
                 strerror(errno));
        return -1;
    }
    sl->deadline = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec + first;
    struct itimerspec its = {.it_interval = {period / 1000000000L, period % 1000000000L},
                             .it_value = {sl->deadline / 1000000000, sl->deadline % 1000000000}};
    if (timer_settime(sl->timer, TIMER_ABSTIME, &its, NULL) != 0) {
        snprintf(err, errlen, "cannot start the sampling timer: %s", strerror(errno));
        return -1;
    }
    return 0;
}

void cp_sample_thread_free(cp_thread *th)
{
    cp_sample_thread *st = th->sample;
    if (!st)
        return;
    cp_sagg_destroy(&st->agg);
    free(st);
    th->sample = NULL;
}

/* ---- code registration (GIL held) ------------------------------------------ */

/* A code object and the code objects among its constants (the functions,
 * lambdas, comprehensions and generator expressions defined in it), to
 * `depth` levels: a comprehension is entered and left many times a second
 * and is rarely on a stack at the moment of a registration, but the
 * function that contains it is. Those constants live as long as `co`. */
static void register_code(PyCodeObject *co, int depth)
{
    if (!co || Py_TYPE(co) != &PyCode_Type)
        return;
    (void)cp_code_id(co);
    PyObject *consts = co->co_consts;
    if (depth <= 0 || !consts || !PyTuple_Check(consts))
        return;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(consts); i++) {
        PyObject *c = PyTuple_GET_ITEM(consts, i);
        if (Py_TYPE(c) == &PyCode_Type)
            register_code((PyCodeObject *)c, depth - 1);
    }
}

void cp_sample_register_stacks(void)
{
    PyThreadState *me = PyThreadState_Get();
    PyInterpreterState *interp = PyThreadState_GetInterpreter(me);
    for (PyThreadState *ts = PyInterpreterState_ThreadHead(interp); ts; ts = PyThreadState_Next(ts))
        for (cp_iframe *f = cp311_tstate_frame(ts); f; f = cp311_iframe_previous(f))
            if (cp311_iframe_complete(f))
                register_code(cp311_iframe_code(f), 2);
}

static int pending_register(void *unused)
{
    (void)unused;
    if (atomic_load(&cp_g.state) == CP_RUNNING && !cp_g.inert && cp_g.cfg.mode == CP_MODE_SAMPLE &&
        atomic_load(&cp_sample_live))
        cp_sample_register_stacks();
    return 0;
}

/* Writer thread, right after Py_AddPendingCall. In 3.11 Py_AddPendingCall
 * computes the interpreter's eval_breaker with "can the *calling* thread
 * run pending calls", i.e. is it the main thread (COMPUTE_EVAL_BREAKER,
 * Python/ceval.c): from our writer thread it never sets the flag, so the
 * call waited until something else recomputed it on the main thread (take_gil
 * does, at a GIL hand-over). A program with one thread ran it only at exit:
 * the code objects on its stacks were never registered and every sample
 * copied their names (measured: ~45% of the walk's instructions on
 * bench/workloads.py alloc_heavy, 27 ring records per sample instead of 7).
 * So set eval_breaker ourselves, only while the main thread holds the GIL:
 * its next check runs the pending calls and recomputes the flag. Another
 * thread that saw it (the GIL changed hands in between) finds nothing it
 * may run, at most until its next GIL hand-over, where take_gil recomputes
 * the flag (bpo-40010). The same relaxed store CPython makes from any thread. */
static void poke_main(void)
{
    PyThreadState *mt = main_tstate;
    if (!mt || !main_interp)
        return;
    const struct _gil_runtime_state *g = &_PyRuntime.ceval.gil;
    if (_Py_atomic_load_relaxed(&g->locked) &&
        (PyThreadState *)_Py_atomic_load_relaxed(&g->last_holder) == mt)
        _Py_atomic_store_relaxed(&main_interp->ceval.eval_breaker, 1);
}

void cp_sample_tick(void)
{
    if (cp_g.cfg.mode != CP_MODE_SAMPLE)
        return;
    cp_sample_wall_observe();
    if (!atomic_load(&cp_sample_want_register))
        return;
    int64_t now = cp_monotonic_ns();
    if (now - last_register_ns < 50000000) /* at most 20 per second */
        return;
    last_register_ns = now;
    atomic_store(&cp_sample_want_register, 0);
    /* Runs on the main thread with the GIL at its next eval-breaker check.
     * Py_AddPendingCall may be called from any thread without the GIL. */
    if (Py_AddPendingCall(pending_register, NULL) != 0)
        atomic_store(&cp_sample_want_register, 1);
    else
        poke_main();
}

/* ---- writer glue ------------------------------------------------------------ */

void cp_sample_feed(cp_thread *th, const cp_record *r)
{
    if (th->sample)
        cp_sagg_feed(&th->sample->agg, r);
}

/* ---- start / stop ----------------------------------------------------------- */

int cp_sample_start(char *err, size_t errlen)
{
    if (!exit_key_made && pthread_key_create(&exit_key, on_thread_exit) == 0)
        exit_key_made = true;
    cp_sfuncs_destroy(&sfuncs);
    cp_sfuncs_init(&sfuncs);
    uint32_t name = cp_names_string("[truncated]");
    truncated_fid = cp_symtab_func(&cp_g.syms, name, CPYPROF_NONE, 0, CPYPROF_FUNC_SPECIAL);
    if (truncated_fid == UINT32_MAX)
        truncated_fid = CPYPROF_NONE;
    atomic_store(&cp_sample_want_register, 0);
    last_register_ns = 0;
    cp_sample_register_stacks();
    /* The main thread's state (the GIL is held: the list is stable). */
    main_tstate = NULL;
    main_interp = _PyRuntime.interpreters.main;
    if (main_interp)
        for (PyThreadState *ts = PyInterpreterState_ThreadHead(main_interp); ts;
             ts = PyThreadState_Next(ts))
            if (cp311_tstate_ident(ts) == _PyRuntime.main_thread)
                main_tstate = ts;
    cp_sample_period_ns = 1000000000L / (long)cp_g.cfg.rate_hz;
    atomic_store(&cp_sample_handler_ticks, 0);
    atomic_store(&cp_sample_handler_count, 0);
    atomic_store(&cp_sample_names_copied, 0);
    atomic_store(&cp_sample_wall_cpu_reads, 0);
    if (cp_sample_signal_install(err, errlen) != 0)
        return -1;
    atomic_store(&cp_sample_wall_signals, 0);
    atomic_store(&cp_sample_wall_repeats, 0);
    atomic_store(&cp_sample_wall_writer_unparks, 0);
    return 0;
}

void cp_sample_stop(void)
{
    atomic_store(&cp_sample_live, 0); /* seq_cst: pairs with the handler's entry */
    for (int i = 0; i < CP_SAMPLE_SLOTS; i++)
        if (atomic_load(&cp_sample_slots[i].th) || atomic_load(&cp_sample_slots[i].has_timer) ||
            atomic_load(&cp_sample_slots[i].has_wake_timer))
            release_slot(i);
    /* Wait for handlers already past the live check (other threads). */
    for (int i = 0; i < CP_SAMPLE_SLOTS; i++)
        while (atomic_load(&cp_sample_slots[i].active))
            sched_yield();
    cp_sample_signal_remove();
}

void cp_sample_atfork_child(void)
{
    atomic_store(&cp_sample_live, 0);
    /* POSIX timers are not inherited and the child numbers its own from 0
     * again: forget the parent's, or a later stop would timer_delete the
     * child's timers (or the program's) by the parent's ids. Flag stores
     * only: this runs right after fork. */
    for (int i = 0; i < CP_SAMPLE_SLOTS; i++) {
        cp_sample_slot *sl = &cp_sample_slots[i];
        atomic_store(&sl->th, NULL);
        atomic_store(&sl->has_timer, 0);
        atomic_store(&sl->has_wake_timer, 0);
        atomic_store(&sl->parked_ns, 0);
        atomic_store(&sl->active, 0);
        atomic_fetch_add(&sl->gen, 1);
    }
}

/* Private functions made by the writer: for sample_dump.c. */
const cp_sfuncs *cp_sample_private_funcs(void)
{
    return &sfuncs;
}

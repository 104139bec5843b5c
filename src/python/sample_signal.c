/*
 * sample_signal.c — the sampling signal handler and its fault guard.
 *
 * Signal choice: a real-time signal, SIGRTMAX downwards, the first whose
 * disposition is SIG_DFL (unused by the program). Real-time signals are
 * queued per timer and carry the timer's sigval, so the program's SIGALRM,
 * SIGPROF and itimers stay untouched. SA_RESTART, so a sampled thread
 * blocked in a system call resumes it instead of failing with EINTR
 * (calls that never restart, like select/poll/sleep, are retried by CPython
 * itself since PEP 475).
 *
 * Hazards, all handled here:
 *  - async-signal safety: the handler only reads memory, calls the clock,
 *    pthread_getspecific (a lock-free array read in glibc),
 *    PyCode_Addr2Line (pure reads, see sample_py311.h), and writes into the
 *    thread's own ring; no malloc, no lock, no other Python API;
 *  - the right thread: the timer targets one kernel thread (SIGEV_THREAD_ID)
 *    and its sigval names a slot; the handler walks the stack of its OWN
 *    thread state (gilstate TSS key), and only if it is the slot's, never the
 *    GIL holder's;
 *  - stop: the handler announces itself in slot->active before reading
 *    cp_sample_live (both sequentially consistent); stop clears live, then
 *    waits until every active count is 0, so no handler touches a cp_thread
 *    after cp_sample_stop returns (Dekker-style handshake);
 *  - stale signals (queued before a timer was deleted or a slot reused) carry
 *    an old slot generation and are ignored;
 *  - a bad pointer during the walk: sigsetjmp before the walk; the SIGSEGV/
 *    SIGBUS handler, installed for the whole run, siglongjmps back if this
 *    thread is mid-walk (thread-local flag) and otherwise chains to the
 *    program's previous handler or the default action;
 *  - a partial sample: records are written into free ring slots and the head
 *    is published once at the end; a ring without room for the whole sample
 *    drops it (counted in the ring's drop count, per record);
 *  - errno is saved and restored;
 *  - native frames (--native, native/unwind.h for libunwind's hazards):
 *    captured first, under the same fault guard, only on threads where
 *    libunwind was warmed up outside any handler; merged with the Python
 *    frames here (see merge below), at most CP_SAMPLE_MAX_FRAMES entries in
 *    all. The addresses are named later, on the writer thread.
 */
#include "python/sample.h"

#include "python/sample_py311.h"
#include "native/unwind.h"

#include <errno.h>
#include <setjmp.h>
#include <string.h>
#include <unistd.h>

_Atomic int cp_sample_want_register;
_Atomic int cp_sample_live;
long cp_sample_period_ns;
_Atomic uint64_t cp_sample_handler_ticks, cp_sample_handler_count;
_Atomic uint64_t cp_sample_names_copied, cp_sample_wall_cpu_reads;

static int sample_sig = -1;
static struct sigaction old_sample, old_segv, old_bus;
static bool fault_installed;

/* Non-NULL while this thread walks its stack. initial-exec: a dynamic TLS
 * access could call __tls_get_addr, which may allocate (not signal-safe). */
static __thread sigjmp_buf *walk_jmp __attribute__((tls_model("initial-exec")));

int cp_sample_signo(void)
{
    return sample_sig;
}

/* ---- ring writing without partial samples ----------------------------------- */

typedef struct sring {
    cp_ring *r;
    uint64_t head, room, n;
} sring;

static inline bool sr_put(sring *s, const cp_record *rec)
{
    if (s->n >= s->room)
        return false;
    s->r->slots[(s->head + s->n) & s->r->mask] = *rec;
    s->n++;
    return true;
}

/* ---- the walk --------------------------------------------------------------- */

/* Copies a code object's names as a CODE entry plus TEXT records. */
static bool put_code(sring *s, PyCodeObject *co, int line)
{
    Py_ssize_t nl = 1, fl = 1;
    const char *name = cp311s_str_utf8(co->co_qualname, &nl);
    const char *file = cp311s_str_utf8(co->co_filename, &fl);
    if (!name) {
        name = "?";
        nl = 1;
    }
    if (!file) {
        file = "?";
        fl = 1;
    }
    if (nl > CP_SAMPLE_NAME_MAX)
        nl = CP_SAMPLE_NAME_MAX;
    if (fl > CP_SAMPLE_FILE_MAX)
        fl = CP_SAMPLE_FILE_MAX;
    cp_record r = {.kind = CP_SREC_CODE,
                   .a = (uint32_t)co->co_firstlineno,
                   .b = (uint32_t)line | ((uint64_t)nl << 32) | ((uint64_t)fl << 48),
                   .c = (uint64_t)(uintptr_t)co};
    if (!sr_put(s, &r))
        return false;
    /* name then file as one byte stream, 28 bytes per record */
    char chunk[CP_SREC_TEXT_BYTES];
    uint32_t total = (uint32_t)(nl + fl), done = 0;
    while (done < total) {
        uint32_t k = 0;
        for (; k < CP_SREC_TEXT_BYTES && done + k < total; k++) {
            uint32_t i = done + k;
            chunk[k] = i < (uint32_t)nl ? name[i] : file[i - (uint32_t)nl];
        }
        cp_srec_text_pack(&r, chunk, k);
        if (!sr_put(s, &r))
            return false;
        done += k;
    }
    atomic_store_explicit(&cp_sample_want_register, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&cp_sample_names_copied, 1, memory_order_relaxed);
    return true;
}

/* Native frames captured for the current sample, and the merge cursor. */
typedef struct natives {
    const uint64_t *ips;
    int n, next;
} natives;

static bool put_native(sring *s, uint64_t ip, uint32_t *n)
{
    cp_record r = {.kind = CP_SREC_NATIVE, .a = 0, .b = ip};
    if (!sr_put(s, &r))
        return false;
    (*n)++;
    return true;
}

/* Merge, innermost first. In 3.11 one C-level _PyEval_EvalFrameDefault
 * call runs a run of Python frames (Python-to-Python calls are inlined);
 * the outermost frame of each run has is_entry set. So: emit the native
 * frames up to the next one inside the eval loop, replace that one by the
 * Python frames up to and including the next is_entry frame, and so on.
 * Native frames between two eval loops (a C extension called from Python)
 * thus sit under the Python function that called them. Returns false when
 * the ring is full. */
static bool natives_until_eval(sring *s, natives *nv, uint32_t *n, bool *truncated)
{
    while (nv->next < nv->n && !cp_unwind_in_eval(nv->ips[nv->next])) {
        if (*n == CP_SAMPLE_MAX_FRAMES) {
            *truncated = true;
            return true;
        }
        if (!put_native(s, nv->ips[nv->next], n))
            return false;
        nv->next++;
    }
    if (nv->next < nv->n)
        nv->next++; /* the eval frame itself: replaced by its Python frames */
    return true;
}

/* The line of instruction offset `addr` in `co`, through the thread's
 * cache (sample.h, cp_line_entry). */
static int line_of(cp_line_entry *lines, PyCodeObject *co, int addr)
{
    if (!lines)
        return PyCode_Addr2Line(co, addr);
    uintptr_t h = ((uintptr_t)co >> 4) ^ ((uintptr_t)(uint32_t)addr * 0x9E3779B1u);
    cp_line_entry *e = &lines[(h ^ (h >> 13)) & (CP_LINE_CACHE - 1)];
    if (e->code == co && e->addr == addr && e->table == co->co_linetable &&
        e->first == co->co_firstlineno && e->qualname == co->co_qualname)
        return e->line;
    int line = PyCode_Addr2Line(co, addr);
    e->code = co;
    e->table = co->co_linetable;
    e->qualname = co->co_qualname;
    e->first = co->co_firstlineno;
    e->addr = addr;
    e->line = line;
    return line;
}

/* Where the thread is in Python: its innermost frame and the instruction
 * that frame executes, hashed (never 0). Two samples with different
 * positions prove the thread ran Python code in between (only the thread
 * itself moves its frames), which the wall clock uses to skip reading the
 * thread's CPU clock (on_wall). Equal positions prove nothing (a loop
 * around time.sleep comes back to the same instruction). */
static uint64_t position_of(const cp_iframe *f)
{
    if (!f)
        return 1;
    uint64_t h = (uint64_t)(uintptr_t)f * 0x9E3779B97F4A7C15u;
    h ^= (uint64_t)(uintptr_t)f->prev_instr;
    return h ? h : 2;
}

/* Walks this thread's frames into the ring. Returns false when the ring had
 * no room (the sample is dropped). */
static bool walk(sring *s, PyThreadState *ts, natives *nv, cp_line_entry *lines, uint32_t *nframes,
                 bool *truncated, uint64_t *position)
{
    uint32_t n = 0;
    cp_iframe *f = cp311_tstate_frame(ts);
    *position = position_of(f);
    Py_ssize_t xi = cp_g.co_extra_index;
    uint32_t gen = cp_g.generation;
    bool segment_start = true; /* the next Python frame begins an eval call */
    for (; f; f = cp311_iframe_previous(f)) {
        if (nv && segment_start) {
            if (!natives_until_eval(s, nv, &n, truncated))
                return false;
            segment_start = false;
        }
        if (f->is_entry)
            segment_start = true; /* also for a skipped incomplete frame */
        if (!cp311_iframe_complete(f))
            continue;
        if (n == CP_SAMPLE_MAX_FRAMES) {
            *truncated = true;
            break;
        }
        PyCodeObject *co = cp311_iframe_code(f);
        if (!co || Py_TYPE(co) != &PyCode_Type) {
            *truncated = true; /* garbage: keep what we have */
            break;
        }
        int line = line_of(lines, co, cp311s_frame_addr(f));
        uintptr_t x = (uintptr_t)cp311_code_extra(co, xi);
        if ((uint32_t)(x >> 32) == gen && x != 0) {
            cp_record r = {.kind = CP_SREC_FRAME, .a = (uint32_t)x, .b = (uint32_t)line};
            if (!sr_put(s, &r))
                return false;
        } else if (!put_code(s, co, line)) {
            return false;
        }
        n++;
    }
    /* Below the outermost eval call: main, Py_RunMain, thread start... */
    while (nv && !*truncated && nv->next < nv->n) {
        if (n == CP_SAMPLE_MAX_FRAMES) {
            *truncated = true;
            break;
        }
        uint64_t ip = nv->ips[nv->next++];
        if (!cp_unwind_in_eval(ip) && !put_native(s, ip, &n))
            return false;
    }
    *nframes = n;
    return true;
}

/* The walk under the fault guard, in a function of its own so that no
 * caller variable lives across sigsetjmp (-Wclobbered). Returns false when
 * the walk faulted (the sample is dropped) or the ring was full. */
static __attribute__((noinline)) bool guarded_walk(sring *s, PyThreadState *ts, const void *uc,
                                                   cp_line_entry *lines, uint32_t *nframes,
                                                   bool *truncated, uint64_t *position)
{
    sigjmp_buf jb;
    volatile bool ok = false;
    if (sigsetjmp(jb, 0) == 0) {
        walk_jmp = &jb;
        atomic_signal_fence(memory_order_seq_cst);
        /* Native stack first (1 KiB of this stack), then the Python walk
         * merges both. */
        uint64_t ips[CP_UNWIND_MAX];
        natives nv = {ips, 0, 0};
        bool native = cp_g.cfg.native && cp_unwind_thread_ready();
        if (native)
            nv.n = cp_unwind_capture(ips, uc);
        ok = walk(s, ts, native ? &nv : NULL, lines, nframes, truncated, position);
    } /* else: faulted mid-walk, ok stays false */
    walk_jmp = NULL;
    atomic_signal_fence(memory_order_seq_cst);
    return ok;
}

/* Takes one sample of this thread into its ring. *position (when not NULL)
 * gets the thread's Python position (position_of), or 0 when the walk did
 * not run or faulted. */
static void take_sample(cp_sample_slot *sl, uint32_t gen, cp_thread *th, uint64_t weight,
                        const void *uc, uint64_t *position)
{
    uint64_t pos_unused;
    if (!position)
        position = &pos_unused;
    *position = 0;
    if (cp311s_own_tstate() != sl->tstate)
        return; /* not this slot's thread state (ended, or reused) */
    cp_ring *r = &th->ring;
    if (r->busy) { /* interrupted a push on this ring: drop */
        atomic_fetch_add_explicit(&r->dropped, 1, memory_order_relaxed);
        return;
    }
    r->busy = 1;
    atomic_signal_fence(memory_order_seq_cst);
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    sring s = {r, head, (r->mask + 1) - (head - tail), 0};
    /* Periods counted as repeats of our previous sample while this thread
     * was parked (wall clock, sample_wall.c): published first, so they add
     * to that sample. */
    uint64_t reps = cp_sample_take_repeats(sl, gen);
    bool ok = true;
    if (reps && atomic_load(&sl->last) == (gen << 2 | CP_SLOT_LAST_KEPT)) {
        cp_record rep = {.kind = CP_SREC_REPEAT, .c = reps};
        ok = sr_put(&s, &rep);
    }
    uint64_t hdr_at = s.n;
    cp_record hdr = {.ticks = cp_clock_ticks(&cp_g.clock), .kind = CP_SREC_SAMPLE, .c = weight};
    ok = ok && sr_put(&s, &hdr);
    bool truncated = false;
    uint32_t nframes = 0;
    if (ok)
        ok = guarded_walk(&s, sl->tstate, uc, th->sample ? th->sample->lines : NULL, &nframes,
                          &truncated, position);
    if (ok) {
        hdr.a = nframes;
        hdr.b = (cp311s_holds_gil(sl->tstate) ? CP_SAMPLE_F_GIL : 0) |
                (truncated ? CP_SAMPLE_F_TRUNCATED : 0);
        uint32_t last = CP_SLOT_LAST_KEPT;
        if (!cp_g.cfg.idle && cp_g.cfg.clock == CP_CLOCK_WALL && !(hdr.b & CP_SAMPLE_F_GIL)) {
            s.n = hdr_at; /* idle=0: drop samples of threads not holding the GIL */
            last = CP_SLOT_LAST_DROPPED;
        } else {
            r->slots[(head + hdr_at) & r->mask] = hdr;
        }
        if (s.n) {
            /* Release: the whole sample is visible before the new head. */
            atomic_store_explicit(&r->head, head + s.n, memory_order_release);
            uint64_t p = atomic_load_explicit(&r->pushed, memory_order_relaxed);
            atomic_store_explicit(&r->pushed, p + s.n, memory_order_relaxed);
            /* Crossed a quarter of the ring: wake the writer rather than
             * wait for its 50 ms period (drain.c). cp_wake_writer is an
             * atomic exchange and a futex wake: async-signal-safe; errno
             * is restored by on_sample. */
            uint64_t quarter = (r->mask >> 2) + 1;
            if (head / quarter != (head + s.n) / quarter)
                cp_wake_writer('W');
        }
        atomic_store(&sl->last, gen << 2 | last);
    } else {
        *position = 0; /* a fault may have left it half-computed: unknown */
        atomic_fetch_add_explicit(&r->dropped, s.n ? s.n : 1, memory_order_relaxed);
        atomic_store(&sl->last, 0); /* no repeats of a sample not taken */
    }
    atomic_signal_fence(memory_order_seq_cst);
    r->busy = 0;
}

/* cpu clock: the next expiry is drawn uniformly from [3/4, 5/4] of the
 * period (the mean stays one period, so each sample still weighs one
 * period). CPU-time timers only fire at the kernel tick; a fixed period
 * that is a near multiple of the tick samples the same phase of a periodic
 * program run after run, and the shares scatter (bench/README.md,
 * "Jitter"). timer_settime is async-signal-safe; the slot's timer is only
 * deleted after its th is cleared (checked by the caller), by this thread
 * itself or by cp_sample_stop, which creates no timer meanwhile. */
static void rearm_jittered(cp_sample_slot *sl, uint64_t overrun)
{
    long period = cp_sample_period_ns;
    if (period <= 0 || !atomic_load(&sl->has_timer))
        return;
    uint32_t x = sl->rng ? sl->rng : 1u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    sl->rng = x;
    /* From the last deadline, not from now: the tick delay before this
     * handler ran is not added to the next period (the mean stays one
     * period); periods already counted as overruns are skipped. A deadline
     * already past fires at the next tick. */
    sl->deadline += (int64_t)period * (int64_t)overrun + period * 3 / 4 +
                    (int64_t)(x % (uint32_t)(period / 2 + 1));
    struct itimerspec its = {.it_interval = {period / 1000000000L, period % 1000000000L},
                             .it_value = {sl->deadline / 1000000000, sl->deadline % 1000000000}};
    (void)timer_settime(sl->timer, TIMER_ABSTIME, &its, NULL);
}

/* Timer expiry (SI_TIMER): one of our per-thread timers (sample_timer.c);
 * anything else is not ours. */
static bool from_sampler(const siginfo_t *si)
{
    return si->si_code == SI_TIMER;
}

/* Wall clock (sample_wall.c). The period timer: sample, then park the
 * thread if it did not run since its previous sample, else re-arm. The wake
 * timer (a parked thread ran): count the parked periods, sample with the
 * weight of the CPU time run, re-arm the period timer. The writer thread
 * may unpark a thread that ran first (its wake timer can fire late), then
 * the next period sample carries the weight. Expiries queued before a park
 * or an unpark are stale and ignored. */
static int64_t end_cpu(int64_t entry_cpu, uint64_t tick0)
{
    if (entry_cpu < 0)
        return -1;
    uint64_t dt = cp_clock_ticks(&cp_g.clock) - tick0;
    return entry_cpu + (int64_t)((double)dt * cp_g.clock.ns_per_tick);
}

static void on_wall(cp_sample_slot *sl, uint32_t gen, cp_thread *th, bool wake, uint64_t overrun,
                    const void *uc)
{
    uint64_t tick0 = cp_clock_ticks(&cp_g.clock);
    if (wake) {
        /* CPU-clock read: a system call (the vDSO does not do thread
         * clocks), ~0.65 us on the development VM. */
        int64_t entry_cpu = cp_sample_wall_cpu_ns();
        atomic_fetch_add_explicit(&cp_sample_wall_cpu_reads, 1, memory_order_relaxed);
        uint64_t w = cp_sample_wall_unpark(sl, gen, entry_cpu);
        if (w == 0)
            return;
        take_sample(sl, gen, th, w, uc, &sl->last_pos);
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        cp_sample_wall_rearm(sl, (int64_t)now.tv_sec * 1000000000 + now.tv_nsec);
        atomic_fetch_add_explicit(&cp_sample_wall_signals, 1, memory_order_relaxed);
        sl->last_cpu = end_cpu(entry_cpu, tick0);
        return;
    }
    if (atomic_load(&sl->parked_ns) != 0)
        return; /* queued before the park, or the writer is unparking it */
    /* After the writer unparked the thread (sample_wall.c,
     * cp_sample_wall_observe): the periods it ran while still parked, and
     * a new phase for the timer the writer armed. */
    bool resync = false;
    uint64_t carried = cp_sample_wall_carry(sl, &resync);
    uint64_t pos = 0;
    take_sample(sl, gen, th, 1 + overrun + carried, uc, &pos);
    /* Did the thread run since its previous sample? If its Python position
     * moved, it did (only the thread moves its own frames): no CPU-clock
     * read, and no park. Otherwise (same position, or unknown) the CPU
     * clock decides: read after the walk, with the walk's duration by the
     * TSC clock taken off, so that the comparison is from the end of the
     * previous handler to the start of this one (the handlers' own time is
     * not the program's). If the thread was preempted in the handler, the
     * TSC overestimates both corrections, so the comparison errs towards
     * parking, which the wake timer (or the writer) corrects. A thread whose
     * position moved but that ran under park_ns is not parked: it is
     * sampled again next period (a real sample, the right weight). After a
     * moved sample its CPU time is unknown, so a thread that then stops
     * parks one period later than it would with a read every period. */
    bool moved = pos != 0 && sl->last_pos != 0 && pos != sl->last_pos;
    sl->last_pos = pos;
    int64_t entry_cpu = -1, now_cpu = -1;
    uint64_t tick1 = 0;
    if (!moved) {
        tick1 = cp_clock_ticks(&cp_g.clock);
        now_cpu = cp_sample_wall_cpu_ns();
        atomic_fetch_add_explicit(&cp_sample_wall_cpu_reads, 1, memory_order_relaxed);
        if (now_cpu >= 0)
            entry_cpu = now_cpu - (int64_t)((double)(tick1 - tick0) * cp_g.clock.ns_per_tick);
    }
    if (!cp_sample_wall_after(sl, gen, entry_cpu)) {
        /* timer_settime on the CLOCK_MONOTONIC timer: the kernel's interval
         * re-arms the timer, and a new jittered phase is drawn every 8th
         * sample only (the deadline is followed meanwhile). It cost ~10 us
         * in the handler under load on the development VM, 0.5 us quiet. */
        if (resync) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            cp_sample_wall_rearm(sl, (int64_t)now.tv_sec * 1000000000 + now.tv_nsec);
        } else if ((++sl->wall_count & 7) == 0) {
            rearm_jittered(sl, overrun);
        } else {
            sl->deadline += (int64_t)cp_sample_period_ns * (int64_t)(1 + overrun);
        }
        sl->last_cpu = moved ? -1 : end_cpu(now_cpu, tick1);
    }
}

static void on_sample(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    int saved = errno;
    if (si && from_sampler(si)) {
        uint32_t v = (uint32_t)si->si_value.sival_int;
        bool wake = (v & CP_SIGVAL_WAKE) != 0;
        v &= ~CP_SIGVAL_WAKE;
        cp_sample_slot *sl = &cp_sample_slots[v % CP_SAMPLE_SLOTS];
        uint32_t gen = v / CP_SAMPLE_SLOTS;
        atomic_fetch_add(&sl->active, 1); /* seq_cst: pairs with cp_sample_stop */
        if (atomic_load(&cp_sample_live) && atomic_load(&sl->gen) == gen) {
            cp_thread *th = atomic_load(&sl->th);
            /* periods beyond one that this sample weighs */
            uint64_t overrun = si->si_overrun > 0 ? (uint64_t)si->si_overrun : 0;
            if (th) {
                /* Time in the handler (clock ticks: rdtsc when usable), for
                 * the cost of one sample reported in the closing META. */
                uint64_t t0 = cp_clock_ticks(&cp_g.clock);
                if (cp_g.cfg.clock == CP_CLOCK_WALL) {
                    on_wall(sl, gen, th, wake, overrun, uc);
                } else {
                    take_sample(sl, gen, th, 1 + overrun, uc, NULL);
                    rearm_jittered(sl, overrun);
                }
                uint64_t t1 = cp_clock_ticks(&cp_g.clock);
                atomic_fetch_add_explicit(&cp_sample_handler_ticks, t1 - t0, memory_order_relaxed);
                atomic_fetch_add_explicit(&cp_sample_handler_count, 1, memory_order_relaxed);
            }
        }
        atomic_fetch_sub(&sl->active, 1);
    }
    errno = saved;
}

/* ---- fault guard ------------------------------------------------------------ */

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    sigjmp_buf *jb = walk_jmp;
    if (jb) {
        walk_jmp = NULL;
        siglongjmp(*jb, 1);
    }
    /* Not ours: behave as if we were never installed. */
    const struct sigaction *old = sig == SIGSEGV ? &old_segv : &old_bus;
    if ((old->sa_flags & SA_SIGINFO) && old->sa_sigaction) {
        old->sa_sigaction(sig, si, uc);
        return;
    }
    if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
        old->sa_handler(sig);
        return;
    }
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(sig, &dfl, NULL);
    if (si && si->si_code <= 0) /* sent by kill(): no fault to re-execute */
        raise(sig);
    /* a real fault re-executes on return and now gets the default action */
}

/* ---- install / remove ------------------------------------------------------- */

int cp_sample_signal_install(char *err, size_t errlen)
{
    int sig = -1;
    for (int s = SIGRTMAX; s >= SIGRTMIN; s--) {
        struct sigaction cur;
        if (sigaction(s, NULL, &cur) == 0 && !(cur.sa_flags & SA_SIGINFO) &&
            cur.sa_handler == SIG_DFL) {
            sig = s;
            break;
        }
    }
    if (sig < 0) {
        snprintf(err, errlen,
                 "sampling needs a free real-time signal and the program uses all "
                 "of SIGRTMIN..SIGRTMAX");
        return -1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sample;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, &old_sample) != 0) {
        snprintf(err, errlen, "cannot install the sampling signal handler: %s", strerror(errno));
        return -1;
    }
    sample_sig = sig;
    if (cp_g.cfg.native) {
        /* Off the hot path, before any handler runs: the eval loop's range,
         * a fresh address cache (ids of the previous run's function table
         * are stale), the writer's resolver, and this thread's libunwind. */
        cp_unwind_reset();
        if (cp_unwind_eval_init() != 0 && !cp_g.cfg.quiet)
            cp_log("--native: _PyEval_EvalFrameDefault not found: Python frames are put "
                   "above all native frames");
        cp_sagg_set_native(cp_unwind_frame_id);
        cp_unwind_thread_init();
    } else {
        cp_sagg_set_native(NULL);
    }
    struct sigaction fa;
    memset(&fa, 0, sizeof fa);
    fa.sa_sigaction = on_fault;
    fa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&fa.sa_mask);
    if (sigaction(SIGSEGV, &fa, &old_segv) == 0 && sigaction(SIGBUS, &fa, &old_bus) == 0)
        fault_installed = true;
    atomic_store(&cp_sample_live, 1);
    return 0;
}

static void restore_if_ours(int sig, const struct sigaction *old, void *ours)
{
    struct sigaction cur;
    if (sigaction(sig, NULL, &cur) == 0 && (void *)cur.sa_sigaction == ours)
        sigaction(sig, old, NULL);
}

void cp_sample_signal_remove(void)
{
    if (sample_sig < 0)
        return;
    /* SIG_IGN first: discards any sample signal still queued, which the
     * default action (terminate) would otherwise turn into a kill. */
    struct sigaction ign;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    struct sigaction cur;
    if (sigaction(sample_sig, NULL, &cur) == 0 && cur.sa_sigaction == on_sample) {
        sigaction(sample_sig, &ign, NULL);
        sigaction(sample_sig, &old_sample, NULL);
    }
    if (fault_installed) {
        restore_if_ours(SIGSEGV, &old_segv, (void *)on_fault);
        restore_if_ours(SIGBUS, &old_bus, (void *)on_fault);
        fault_installed = false;
    }
    sample_sig = -1;
}

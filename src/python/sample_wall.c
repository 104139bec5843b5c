/*
 * sample_wall.c — the wall-clock sampler thread (CPYPROF_CLOCK=wall).
 *
 * Why not one CLOCK_MONOTONIC timer per thread: every thread, also one
 * asleep or blocked waiting for the GIL, then gets a signal every period and
 * walks its stack; waking a blocked thread costs a context switch and the
 * walk, and with several threads that was most of sampling's overhead at
 * 1 kHz. Instead one native thread wakes every period (clock_nanosleep,
 * absolute deadlines) and, for every sampled thread:
 *  - reads the thread's CPU-time clock (pthread_getcpuclockid, obtained at
 *    attach); when the thread used less than idle_ns of CPU since the last
 *    sample that actually interrupted it, and that sample was taken, its
 *    Python stack cannot have changed (running Python code, even to return
 *    from a frame, takes CPU), so the period is counted as a repeat of that
 *    sample: one compare-and-swap on the slot's repeat counter, no signal;
 *  - otherwise sends the sampling signal to that thread
 *    (rt_tgsigqueueinfo: the kernel thread id, and the slot index and
 *    generation as the value, like a timer's sigval), and the thread's own
 *    handler walks its stack as before.
 * Repeats never touch the thread's ring from this thread (the rings are
 * single-producer): the thread's handler takes the count at its next sample
 * and publishes a REPEAT record before it, in the same publication; counts
 * left when the slot is released go to cp_sample_thread.leftover, which the
 * dump adds after the last drain. Both take the count by compare-and-swap on
 * the slot generation, so a count is taken once and never crosses to the
 * next thread that reuses the slot.
 *
 * Semantics kept: a sleeper is still sampled every period (as repeats), with
 * the GIL flag of its last real sample; with --no-idle a repeat of a sample
 * that was dropped (no GIL) is dropped too. A thread's first sample is always
 * a real one. The threshold errs towards interrupting: a thread that woke to
 * retry the GIL a few times (microseconds each) is interrupted again once the
 * retries add up to idle_ns.
 *
 * Jitter: each period is drawn uniformly from [3/4, 5/4] of the nominal one
 * (mean unchanged, so weights stay one period each), so samples do not lock
 * onto a periodic pattern of the program or of the kernel tick. When this
 * thread falls behind by more than a period (machine overloaded: it is an
 * ordinary thread and must be scheduled, where a kernel timer was not), it
 * skips to the present and that round's samples and repeats weigh the
 * periods missed (at most CP_WALL_MAX_WEIGHT). A thread that lives entirely
 * inside such a gap is not sampled at all.
 *
 * The thread blocks every signal (the program's signals keep going to its
 * own threads) and is never visible to Python. Fork: the child has no such
 * thread; cp_sample_atfork_child stops sampling there.
 */
#include "python/sample.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static pthread_t wall_thread;
static bool wall_running;
static _Atomic int wall_quit;
/* sampler-thread-only: CPU time of each slot's thread at its last signal */
static int64_t seen_cpu[CP_SAMPLE_SLOTS];
static uint32_t seen_gen[CP_SAMPLE_SLOTS];
static bool seen_valid[CP_SAMPLE_SLOTS];

/* Counters for the tests and the bench (relaxed, read at the end). */
_Atomic uint64_t cp_sample_wall_signals, cp_sample_wall_repeats;

static uint32_t xorshift(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

static bool add_repeat(cp_sample_slot *sl, uint32_t gen, uint32_t weight)
{
    uint64_t v = atomic_load(&sl->repeats);
    do {
        if ((uint32_t)(v >> 32) != gen)
            return false; /* slot reused meanwhile */
    } while (!atomic_compare_exchange_weak(&sl->repeats, &v, v + weight));
    return true;
}

static void send_sample_signal(int i, uint32_t gen, pid_t tid, uint32_t weight)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = cp_sample_signo();
    si.si_code = SI_QUEUE;
    si.si_pid = getpid();
    si.si_uid = getuid();
    si.si_value.sival_int = (int)(gen * CP_SAMPLE_SLOTS + (uint32_t)i);
    /* The weight (periods this sample stands for, > 1 when this thread fell
     * behind) in si_errno: outside the union, copied as given by the kernel
     * for a signal queued within the process; the handler reads it only
     * for SI_QUEUE from its own pid and bounds it. */
    si.si_errno = (int)weight;
    /* ESRCH (the thread just exited) and EAGAIN (signal queue full) are
     * both a skipped sample. A tid reused by another thread of ours is
     * harmless: its handler finds another thread state and does nothing. */
    if (syscall(SYS_rt_tgsigqueueinfo, getpid(), tid, si.si_signo, &si) == 0)
        atomic_fetch_add_explicit(&cp_sample_wall_signals, 1, memory_order_relaxed);
}

static void sample_slot(int i, int64_t idle_ns, uint32_t weight)
{
    cp_sample_slot *sl = &cp_sample_slots[i];
    uint32_t gen = atomic_load(&sl->gen);
    if (!atomic_load(&sl->th))
        return;
    pid_t tid = sl->tid;
    clockid_t clk = sl->cpu_clock;
    bool has_clk = sl->has_cpu_clock;
    if (atomic_load(&sl->gen) != gen || !atomic_load(&sl->th))
        return; /* released or reused while we read: next period */
    int64_t cpu = -1;
    struct timespec ts;
    if (has_clk && clock_gettime(clk, &ts) == 0)
        cpu = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    if (cpu >= 0 && seen_valid[i] && seen_gen[i] == gen && cpu - seen_cpu[i] < idle_ns &&
        (atomic_load(&sl->last) >> 2) == gen && add_repeat(sl, gen, weight)) {
        atomic_fetch_add_explicit(&cp_sample_wall_repeats, weight, memory_order_relaxed);
        return;
    }
    seen_cpu[i] = cpu;
    seen_gen[i] = gen;
    seen_valid[i] = cpu >= 0;
    send_sample_signal(i, gen, tid, weight);
}

static void add_ns(struct timespec *t, int64_t ns)
{
    int64_t v = t->tv_nsec + ns;
    t->tv_sec += v / 1000000000;
    t->tv_nsec = v % 1000000000;
}

static void *wall_main(void *arg)
{
    (void)arg;
    int64_t period = 1000000000 / (int64_t)cp_g.cfg.rate_hz;
    /* 20 us, or a tenth of the period at rates above 5 kHz */
    int64_t idle_ns = period / 10 < 20000 ? period / 10 : 20000;
    uint32_t rng = (uint32_t)getpid() * 2654435761u | 1u;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    while (!atomic_load_explicit(&wall_quit, memory_order_relaxed)) {
        add_ns(&next, period * 3 / 4 + (int64_t)(xorshift(&rng) % (uint32_t)(period / 2 + 1)));
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t late =
            (int64_t)(now.tv_sec - next.tv_sec) * 1000000000 + (now.tv_nsec - next.tv_nsec);
        uint32_t weight = 1;
        if (late > period) { /* fell behind: skip to the present, and the
                              * samples stand for the periods missed */
            weight += (uint32_t)(late / period < CP_WALL_MAX_WEIGHT ? late / period
                                                                    : CP_WALL_MAX_WEIGHT - 1);
            next = now;
        }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
            ;
        if (atomic_load_explicit(&wall_quit, memory_order_relaxed) || !atomic_load(&cp_sample_live))
            continue;
        int hwm = atomic_load(&cp_sample_slots_hwm);
        for (int i = 0; i < hwm; i++)
            sample_slot(i, idle_ns, weight);
    }
    return NULL;
}

int cp_sample_wall_start(char *err, size_t errlen)
{
    memset(seen_valid, 0, sizeof seen_valid);
    atomic_store(&wall_quit, 0);
    atomic_store(&cp_sample_wall_signals, 0);
    atomic_store(&cp_sample_wall_repeats, 0);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&wall_thread, NULL, wall_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the wall-clock sampling thread: %s", strerror(rc));
        return -1;
    }
    wall_running = true;
    return 0;
}

/* Fork child: the thread does not exist there; never join it. */
void cp_sample_wall_atfork_child(void)
{
    wall_running = false;
}

void cp_sample_wall_stop(void)
{
    if (!wall_running)
        return;
    atomic_store(&wall_quit, 1);
    pthread_join(wall_thread, NULL);
    wall_running = false;
}

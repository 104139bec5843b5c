/*
 * sample_wall.c — the wall clock (CPYPROF_CLOCK=wall) without a sampler
 * thread: per-thread timers, and threads that do not run are "parked".
 *
 * History, and why: one CLOCK_MONOTONIC timer per thread woke every
 * sleeping or GIL-waiting thread every period to walk its unchanged stack.
 * A sampler thread that read each thread's CPU clock and signalled only the
 * threads that had run fixed that, but cost a wake-up of its own every
 * period: ~20 us of CPU per wake-up on the development VM (a program that
 * only sleeps used 2.4% of a core at 1 kHz), plus an inter-processor
 * signal to the sampled thread; at 1 kHz that was most of the overhead.
 *
 * Now each thread has two timers, both aimed at the thread itself
 * (SIGEV_THREAD_ID), both created at attach (sample_timer.c):
 *  - the *period* timer on CLOCK_MONOTONIC, periodic, re-armed by the
 *    handler at a jittered absolute deadline every 8th sample
 *    (timer_settime on it costs ~10 us in a handler on the development
 *    VM); armed from the thread itself, its hrtimer fires on the CPU that
 *    runs the thread, which is interrupted in place (no other thread wakes
 *    up);
 *  - the *wake* timer on the thread's CPU-time clock, armed only while the
 *    thread is parked.
 * After each sample the handler reads its own CPU clock. If the thread used
 * less than park_ns (a tenth of the period) of CPU since its previous
 * sample (it slept or waited), it parks: the period timer is disarmed and
 * the wake timer armed at idle_ns (20 us) more CPU time. A parked thread
 * gets no signal while it does not run. When it has run idle_ns of CPU the
 * kernel fires the wake timer (at a scheduler tick while the thread is
 * running: no wake-up either); the handler then counts the parked periods
 * as repeats of the sample taken just before parking (its stack cannot
 * have changed without CPU time: running Python code, even returning from
 * a frame, takes CPU), takes a new sample weighted by the CPU time run
 * since (at most a tick late), and re-arms the period timer.
 *   parked periods = round((wall time parked - CPU time run) / period)
 *   new sample weight = max(1, round(CPU time run / period))
 * Periods still parked when the slot is released (thread exit, stop) go to
 * the thread's leftover, which the dump adds after the last drain. The
 * repeat word and parked_ns are taken by exchange/compare-and-swap, so the
 * handler and release_slot (another thread, at stop) never both count one
 * interval, and release_slot takes them only once no handler of the slot
 * runs any more, so they repeat the thread's last published sample. A
 * thread that existed at start and exits while parked without passing
 * through the key destructor is counted until its CPU clock can no longer
 * be read (then nothing more is counted).
 *
 * Why park_ns is a tenth of the period and not idle_ns: the CPU time from
 * the end of one handler to the start of the next excludes the handlers'
 * own instructions (sample_signal.c brackets them), but it includes what
 * interrupting a sleeping thread costs outside the handler: the kernel's
 * wake-up, signal delivery and sigreturn, and the interrupted call's
 * return and retry (time.sleep: EINTR, the GIL taken and dropped, the
 * deadline recomputed, clock_nanosleep again). Measured on the development
 * VM for a thread in time.sleep at 200 Hz: 10-99 us per period, median
 * 22-49 us, more while other processes load the machine. Against the
 * former 20 us threshold a sleeper parked only when one period happened to
 * cost less, and in about half the runs it was sampled every period until
 * it woke (test_sampling_wall.py, test_repeats_follow_the_stack). A tenth
 * of the period (500 us at 200 Hz, 100 us at 1 kHz, 10 us at 10 kHz) is
 * far above that cost at the usual rates; a thread that really used that
 * much CPU is still counted right, since parking only changes how its
 * periods are counted: it unparks at its next tick with idle_ns more CPU
 * and that sample weighs the CPU it ran (at most a tick late). The wake
 * timer stays at idle_ns: a parked thread gets no signals, so its CPU time
 * is the program's own.
 *
 * Semantics as before: a sleeper is sampled every period (as repeats, with
 * the GIL flag of its last real sample); with --no-idle a repeat of a
 * dropped sample is dropped too; a thread's first sample is a real one.
 */
#include "python/sample.h"

#include <time.h>

/* Counters for the tests and the bench (relaxed, read at the end). */
_Atomic uint64_t cp_sample_wall_signals, cp_sample_wall_repeats;

static int64_t ts_ns(const struct timespec *t)
{
    return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

static struct timespec ns_ts(int64_t ns)
{
    struct timespec t = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    return t;
}

/* async-signal-safe: clock_gettime */
static int64_t mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return ts_ns(&t);
}

static int64_t clock_ns(clockid_t c)
{
    struct timespec t;
    return clock_gettime(c, &t) == 0 ? ts_ns(&t) : -1;
}

int64_t cp_sample_wall_idle_ns(void)
{
    /* 20 us, or a tenth of the period at rates above 5 kHz */
    long p = cp_sample_period_ns;
    return p / 10 < 20000 ? p / 10 : 20000;
}

int64_t cp_sample_wall_park_ns(void)
{
    /* a tenth of the period: far above the cost of interrupting a sleeper
     * (see the top), never below idle_ns */
    int64_t p = cp_sample_period_ns / 10, idle = cp_sample_wall_idle_ns();
    return p > idle ? p : idle;
}

static void add_repeats(cp_sample_slot *sl, uint32_t gen, uint64_t n)
{
    uint64_t v = atomic_load(&sl->repeats);
    do {
        if ((uint32_t)(v >> 32) != gen)
            return; /* slot reused meanwhile */
    } while (!atomic_compare_exchange_weak(&sl->repeats, &v, v + n));
    atomic_fetch_add_explicit(&cp_sample_wall_repeats, n, memory_order_relaxed);
}

/* Periods of a parked interval that are repeats (see the top). */
static uint64_t parked_periods(int64_t parked_ns, int64_t now, int64_t ran)
{
    long period = cp_sample_period_ns;
    int64_t idle = now - parked_ns - (ran > 0 ? ran : 0);
    if (idle <= 0 || period <= 0)
        return 0;
    return (uint64_t)((idle + period / 2) / period);
}

void cp_sample_wall_rearm(cp_sample_slot *sl, int64_t from_ns)
{
    long period = cp_sample_period_ns;
    uint32_t x = sl->rng ? sl->rng : 1u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    sl->rng = x;
    sl->deadline = from_ns + period * 3 / 4 + (int64_t)(x % (uint32_t)(period / 2 + 1));
    struct itimerspec its = {.it_interval = {period / 1000000000L, period % 1000000000L},
                             .it_value = ns_ts(sl->deadline)};
    (void)timer_settime(sl->timer, TIMER_ABSTIME, &its, NULL);
}

int64_t cp_sample_wall_cpu_ns(void)
{
    return clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

bool cp_sample_wall_after(cp_sample_slot *sl, uint32_t gen, int64_t entry_cpu)
{
    int64_t prev = sl->last_cpu;
    atomic_fetch_add_explicit(&cp_sample_wall_signals, 1, memory_order_relaxed);
    int64_t idle_ns = cp_sample_wall_idle_ns();
    /* The thread's CPU time from the end of its previous handler to the
     * start of this one: the handlers' own time is not the program's, but
     * the cost of being interrupted is in it (see the top: park_ns). */
    if (entry_cpu < 0 || prev < 0 || entry_cpu - prev >= cp_sample_wall_park_ns() ||
        (atomic_load(&sl->last) >> 2) != gen || !atomic_load(&sl->has_wake_timer))
        return false; /* ran (or unknown): the caller re-arms the period timer */
    /* Park: parked_ns first (a wake signal finds it), then the timers; the
     * wake timer counts from the CPU time after them. */
    atomic_store(&sl->parked_ns, mono_ns());
    struct itimerspec off = {{0, 0}, {0, 0}};
    (void)timer_settime(sl->timer, 0, &off, NULL);
    int64_t cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    sl->park_cpu = cpu >= 0 ? cpu : entry_cpu;
    struct itimerspec w = {{0, 0}, ns_ts(sl->park_cpu + idle_ns)};
    (void)timer_settime(sl->wake_timer, TIMER_ABSTIME, &w, NULL);
    return true;
}

uint64_t cp_sample_wall_unpark(cp_sample_slot *sl, uint32_t gen, int64_t entry_cpu)
{
    int64_t p = atomic_exchange(&sl->parked_ns, 0);
    if (p == 0)
        return 0; /* not parked (a stale wake), or release_slot took it */
    int64_t now = mono_ns();
    int64_t ran = entry_cpu >= 0 ? entry_cpu - sl->park_cpu : 0;
    uint64_t reps = parked_periods(p, now, ran);
    if (reps)
        add_repeats(sl, gen, reps);
    long period = cp_sample_period_ns;
    uint64_t w = ran > 0 && period > 0 ? (uint64_t)((ran + period / 2) / period) : 0;
    return w ? w : 1;
}

uint64_t cp_sample_wall_release(cp_sample_slot *sl)
{
    int64_t p = atomic_exchange(&sl->parked_ns, 0);
    if (p == 0)
        return 0;
    int64_t cpu = clock_ns(sl->cpu_clock);
    if (cpu < 0)
        return 0; /* the thread is gone: when is unknown, count nothing */
    uint64_t n = parked_periods(p, mono_ns(), cpu - sl->park_cpu);
    atomic_fetch_add_explicit(&cp_sample_wall_repeats, n, memory_order_relaxed);
    return n;
}

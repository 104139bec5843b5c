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
 * since (a tick late on an idle machine; much later on a loaded one, so
 * the writer unparks too: cp_sample_wall_observe), and re-arms the period
 * timer.
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
 * periods are counted: it unparks once it has run idle_ns more CPU (wake
 * timer or writer) and that sample weighs the CPU it ran. The wake timer
 * stays at idle_ns: a parked thread gets no signals, so its CPU time is the
 * program's own.
 *
 * Semantics as before: a sleeper is sampled every period (as repeats, with
 * the GIL flag of its last real sample); with --no-idle a repeat of a
 * dropped sample is dropped too; a thread's first sample is a real one.
 */
#include "python/sample.h"

#include <time.h>

/* Counters for the tests and the bench (relaxed, read at the end). */
_Atomic uint64_t cp_sample_wall_signals, cp_sample_wall_repeats, cp_sample_wall_writer_unparks;

static int64_t ts_ns(const struct timespec *t)
{
    return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

static struct timespec ns_ts(int64_t ns)
{
    struct timespec t = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    return t;
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

/* Periods in ran ns of CPU time, rounded: what an unparked thread's next
 * sample weighs (0 when it ran under half a period). */
static uint64_t periods_run(int64_t ran)
{
    long period = cp_sample_period_ns;
    return ran > 0 && period > 0 ? (uint64_t)((ran + period / 2) / period) : 0;
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
     * wake timer counts from the CPU time after them. The tag last: the
     * writer reads park_cpu only once it names this park. */
    int64_t t = cp_monotonic_ns();
    atomic_store(&sl->parked_ns, t);
    struct itimerspec off = {{0, 0}, {0, 0}};
    (void)timer_settime(sl->timer, 0, &off, NULL);
    int64_t cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    if (cpu < 0)
        cpu = entry_cpu;
    atomic_store(&sl->park_cpu, cpu);
    atomic_store(&sl->park_tag, t);
    struct itimerspec w = {{0, 0}, ns_ts(cpu + idle_ns)};
    (void)timer_settime(sl->wake_timer, TIMER_ABSTIME, &w, NULL);
    return true;
}

/* Takes the park of a thread: the parked_ns it began at, 0 when it was not
 * parked (or the writer or release_slot is taking it). */
static int64_t take_park(cp_sample_slot *sl)
{
    int64_t p = atomic_load(&sl->parked_ns);
    do {
        if (p <= 0)
            return 0;
    } while (!atomic_compare_exchange_weak(&sl->parked_ns, &p, 0));
    return p;
}

/* Writer thread (cp_sample_tick, every loop: at most 50 ms apart, drain.c).
 *
 * Why: the wake timer of a parked thread fires only when the kernel checks
 * the thread's CPU timers, at a scheduler tick that finds it running. On
 * the development VM (kernel 6.18) a thread sharing its CPU with busy
 * processes is rarely running at a tick: a CPU-time timer armed 20 us
 * ahead fired after 2-50 ms of CPU and 12-360 ms of wall time with two to
 * eight busy processes on its CPU, and often not within 150 ms of CPU when
 * the thread made system calls often (measured with a small C program:
 * timer_create on the thread's CPU clock, then a sleep, then a loop). All
 * that time, spent running or waiting for the CPU at new stacks, was
 * counted as repeats of the stack the thread parked on: a 0.5 s nap at
 * 200 Hz counted 126-254 periods instead of ~100 with 8 busy processes on
 * the CPU (7 of 8 runs), and the stacks after it went unsampled.
 *
 * So the writer reads the CPU clock of every parked thread (clock_gettime
 * on the thread's CPU clock: a system call of the writer, no descriptor,
 * nothing done in the program's threads) and unparks those that ran
 * idle_ns since they parked, as their wake handler would: the parked
 * periods minus the CPU time run are repeats of the sample before the park,
 * the periods run are carried to the thread's next sample, the wake timer
 * is disarmed and the period timer armed one period from now; the handler
 * re-arms it with a jittered phase at that sample (resync). A thread is
 * thus sampled again at most a writer loop after it runs (plus the
 * writer's own wait for a CPU), and at most that much of its time is
 * counted on the old stack.
 *
 * Hazards: the slot's timers must be alive while the writer uses them. The
 * writer announces itself in the slot's `active` count, as a handler does,
 * and then checks th and the generation (all seq_cst); release_slot clears
 * th and bumps the generation, waits for `active` to reach 0, and only then
 * deletes the timers. While the writer works, parked_ns is
 * CP_PARK_UNPARKING: a period expiry is ignored (as if still parked), a
 * wake expiry takes nothing (take_park), so the thread cannot park again
 * and have its new wake timer disarmed by the writer. park_cpu is written
 * by the handler after parked_ns, so it is read only once park_tag (stored
 * after it) names this park. */
void cp_sample_wall_observe(void)
{
    if (cp_g.cfg.clock != CP_CLOCK_WALL || !atomic_load(&cp_sample_live))
        return;
    int64_t idle_ns = cp_sample_wall_idle_ns();
    long period = cp_sample_period_ns;
    int n = atomic_load(&cp_sample_slots_hwm);
    for (int i = 0; i < n && i < CP_SAMPLE_SLOTS; i++) {
        cp_sample_slot *sl = &cp_sample_slots[i];
        int64_t p = atomic_load(&sl->parked_ns);
        /* not parked, or its park_cpu not written yet */
        if (p <= 0 || atomic_load(&sl->park_tag) != p)
            continue;
        atomic_fetch_add(&sl->active, 1); /* seq_cst: pairs with release_slot */
        uint32_t gen = atomic_load(&sl->gen);
        if (atomic_load(&cp_sample_live) && atomic_load(&sl->th) && atomic_load(&sl->has_timer) &&
            atomic_load(&sl->has_wake_timer) && atomic_load(&sl->park_tag) == p) {
            int64_t pc = atomic_load(&sl->park_cpu);
            int64_t cpu = clock_ns(sl->cpu_clock);
            int64_t expect = p;
            if (cpu >= 0 && cpu - pc >= idle_ns &&
                atomic_compare_exchange_strong(&sl->parked_ns, &expect, CP_PARK_UNPARKING)) {
                int64_t ran = cpu - pc;
                uint64_t reps = parked_periods(p, cp_monotonic_ns(), ran);
                if (reps)
                    add_repeats(sl, gen, reps);
                uint64_t w = periods_run(ran);
                if (w)
                    atomic_fetch_add(&sl->carry, w);
                struct itimerspec off = {{0, 0}, {0, 0}};
                (void)timer_settime(sl->wake_timer, 0, &off, NULL);
                atomic_store(&sl->resync, 1);
                struct itimerspec its = {{period / 1000000000L, period % 1000000000L},
                                         {period / 1000000000L, period % 1000000000L}};
                (void)timer_settime(sl->timer, 0, &its, NULL);
                atomic_store(&sl->parked_ns, 0);
                atomic_fetch_add_explicit(&cp_sample_wall_writer_unparks, 1, memory_order_relaxed);
            }
        }
        atomic_fetch_sub(&sl->active, 1);
    }
}

uint64_t cp_sample_wall_carry(cp_sample_slot *sl, bool *resync)
{
    /* loads first: the exchanges (locked instructions) only after an unpark */
    *resync = atomic_load(&sl->resync) && atomic_exchange(&sl->resync, 0);
    return atomic_load(&sl->carry) ? atomic_exchange(&sl->carry, 0) : 0;
}

uint64_t cp_sample_wall_unpark(cp_sample_slot *sl, uint32_t gen, int64_t entry_cpu)
{
    int64_t p = take_park(sl);
    if (p == 0)
        return 0; /* not parked (a stale wake), or the writer or release_slot took it */
    int64_t now = cp_monotonic_ns();
    int64_t ran = entry_cpu >= 0 ? entry_cpu - atomic_load(&sl->park_cpu) : 0;
    uint64_t reps = parked_periods(p, now, ran);
    if (reps)
        add_repeats(sl, gen, reps);
    uint64_t w = periods_run(ran);
    return w ? w : 1;
}

uint64_t cp_sample_wall_release(cp_sample_slot *sl)
{
    int64_t p = take_park(sl);
    if (p == 0)
        return 0;
    int64_t cpu = clock_ns(sl->cpu_clock);
    if (cpu < 0)
        return 0; /* the thread is gone: when is unknown, count nothing */
    uint64_t n = parked_periods(p, cp_monotonic_ns(), cpu - atomic_load(&sl->park_cpu));
    atomic_fetch_add_explicit(&cp_sample_wall_repeats, n, memory_order_relaxed);
    return n;
}

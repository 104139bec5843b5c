/*
 * clock.h — the profiler's time source.
 *
 * Hot paths read raw ticks (cp_clock_ticks): the TSC through rdtsc when it is
 * invariant (constant rate, does not stop in idle states), otherwise
 * CLOCK_MONOTONIC in ns. Ticks are converted to ns off the hot path with a
 * calibration measured once at start-up against CLOCK_MONOTONIC.
 *
 * Why not clock_gettime everywhere: rdtsc costs ~10 ns here against ~23 ns for
 * a vDSO clock_gettime, and the deterministic mode reads the clock twice per
 * call. CLOCK_THREAD_CPUTIME_ID is a real syscall (~500 ns): never per event.
 */
#ifndef CPYPROF_CORE_CLOCK_H
#define CPYPROF_CORE_CLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

typedef struct cp_clock {
    bool use_tsc;       /* ticks are TSC cycles (else ns of CLOCK_MONOTONIC) */
    uint64_t tick0;     /* ticks at calibration end: the profile's time zero */
    int64_t ns0;        /* CLOCK_MONOTONIC ns at tick0 */
    double ns_per_tick; /* 1.0 when !use_tsc */
    uint64_t hz;        /* ticks per second (rounded) */
} cp_clock;

/** Reads a clock in ns (CLOCK_MONOTONIC unless a test passes another). */
typedef int64_t (*cp_ns_source)(void *ctx);
/** Reads a tick counter (rdtsc unless a test passes another). */
typedef uint64_t (*cp_tick_source)(void *ctx);

static inline uint64_t cp_rdtsc(void)
{
#if defined(__x86_64__) || defined(__i386__)
    uint32_t lo, hi;
    __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
#endif
}

static inline int64_t cp_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/** True if the CPU reports an invariant TSC (CPUID 0x80000007 EDX bit 8). */
bool cp_tsc_is_invariant(void);

/** Calibrates `c` against CLOCK_MONOTONIC over about `window_ms` ms (>= 1).
 *  Uses the TSC if it is invariant and `allow_tsc`, else the monotonic clock.
 *  Sets the profile's time zero to now. Returns 0 or -1 (never fails when
 *  falling back to the monotonic clock). */
int cp_clock_calibrate(cp_clock *c, unsigned window_ms, bool allow_tsc);

/** The same with injected sources (unit tests use fake clocks): reads
 *  (tick, ns) pairs at the start and once `ns` has advanced by window_ms, and
 *  derives the rate. Returns -1 if the ticks did not advance. */
int cp_clock_calibrate_with(cp_clock *c, unsigned window_ms, cp_tick_source ticks, void *tick_ctx,
                            cp_ns_source ns, void *ns_ctx);

/** Hot path: the current tick count. */
static inline uint64_t cp_clock_ticks(const cp_clock *c)
{
    return c->use_tsc ? cp_rdtsc() : (uint64_t)cp_monotonic_ns();
}

/** Converts a tick count to ns since the profile's time zero (may be
 *  negative for ticks before it). */
int64_t cp_clock_to_ns(const cp_clock *c, uint64_t ticks);

/** Moves the time zero of a calibrated clock to now, keeping its rate: a
 *  forked child's profile starts at the fork without the calibration's
 *  sleep (the TSC rate is the parent's). */
void cp_clock_rebase(cp_clock *c);

/** Converts a tick difference to ns. */
uint64_t cp_clock_delta_ns(const cp_clock *c, uint64_t dticks);

#endif

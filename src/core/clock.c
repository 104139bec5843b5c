/*
 * clock.c — TSC detection, calibration against CLOCK_MONOTONIC, and tick to
 * ns conversion (see clock.h).
 *
 * Calibration reads a (ticks, ns) pair, waits until the ns clock has advanced
 * by the window, reads a second pair, and takes the ratio. Each pair is read
 * ticks first, then ns, always in that order, so a fake pair of clocks that
 * advance in lockstep gives an exact ratio; with real clocks the skew within
 * a pair is tens of ns against a window of milliseconds.
 */
#include "core/clock.h"

#include <errno.h>
#include <math.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

bool cp_tsc_is_invariant(void)
{
#if defined(__x86_64__) || defined(__i386__)
    unsigned eax, ebx, ecx, edx;
    /* __get_cpuid checks the highest supported extended leaf itself and
     * returns 0 if 0x80000007 is not available. */
    if (!__get_cpuid(0x80000007u, &eax, &ebx, &ecx, &edx))
        return false;
    return (edx & (1u << 8)) != 0; /* "Invariant TSC" */
#else
    return false;
#endif
}

static uint64_t real_ticks(void *ctx)
{
    (void)ctx;
    return cp_rdtsc();
}

static int64_t real_ns(void *ctx)
{
    (void)ctx;
    return cp_monotonic_ns();
}

/* Sleeps about `ns` nanoseconds (restarting after signals), so a real
 * calibration does not burn a CPU for the whole window. */
static void sleep_ns(int64_t ns)
{
    struct timespec req = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    struct timespec rem;
    while (nanosleep(&req, &rem) != 0 && errno == EINTR)
        req = rem;
}

/* Gives up on an ns source that stops advancing (a broken fake, or a clock
 * that never moves) instead of spinning forever. */
enum { CP_MAX_STALLED_READS = 10000000 };

/* One (ticks, ns) pair read as the tightest of 16 ns-ticks-ns brackets: ns
 * is the bracket's midpoint, so the pair is off by at most half of the
 * shortest bracket (tens of ns) rather than by a preemption. */
static void bracket_read(cp_tick_source ticks, void *tick_ctx, cp_ns_source ns, void *ns_ctx,
                         uint64_t *t_out, int64_t *n_out)
{
    int64_t best = INT64_MAX;
    for (int i = 0; i < 16; i++) {
        int64_t a = ns(ns_ctx);
        uint64_t t = ticks(tick_ctx);
        int64_t b = ns(ns_ctx);
        if (b >= a && b - a < best) {
            best = b - a;
            *t_out = t;
            *n_out = a + (b - a) / 2;
        }
    }
}

/* The calibration proper. `pre_sleep` (may be NULL) is called once between
 * the two pairs with the window length in ns; only real clocks use it. */
static int calibrate(cp_clock *c, unsigned window_ms, cp_tick_source ticks, void *tick_ctx,
                     cp_ns_source ns, void *ns_ctx, void (*pre_sleep)(int64_t))
{
    int64_t window_ns = (int64_t)(window_ms ? window_ms : 1) * 1000000;

    uint64_t t0b = 0;
    int64_t n0b = 0;
    if (pre_sleep != NULL)
        bracket_read(ticks, tick_ctx, ns, ns_ctx, &t0b, &n0b);
    uint64_t t0 = ticks(tick_ctx);
    int64_t n0 = ns(ns_ctx);
    if (pre_sleep != NULL)
        pre_sleep(window_ns);

    uint64_t t1;
    int64_t n1, last = n0;
    long stalled = 0;
    for (;;) {
        t1 = ticks(tick_ctx);
        n1 = ns(ns_ctx);
        if (n1 - n0 >= window_ns)
            break;
        if (n1 < n0)
            return -1; /* the ns clock went backwards: not monotonic */
        if (n1 == last && ++stalled > CP_MAX_STALLED_READS)
            return -1;
        if (n1 != last)
            stalled = 0;
        last = n1;
    }
    if (t1 <= t0)
        return -1; /* ticks did not advance */

    uint64_t dt = t1 - t0;
    int64_t dn = n1 - n0;
    if (pre_sleep != NULL) {
        /* Real clocks: a thread preempted between reading the ticks and the
         * ns of an endpoint skews a short window by up to a scheduling
         * quantum (seen as a 200 ms sleep measured as 199.9 ms on a busy
         * machine). Re-read both endpoints as the tightest of several
         * ns-ticks-ns brackets; the sleep between them stays the window. */
        uint64_t bt1;
        int64_t bn1;
        bracket_read(ticks, tick_ctx, ns, ns_ctx, &bt1, &bn1);
        if (bt1 > t0b && bn1 > n0b) {
            dt = bt1 - t0b;
            dn = bn1 - n0b;
            t1 = bt1;
            n1 = bn1;
        }
    }
    c->use_tsc = true;
    c->tick0 = t1;
    c->ns0 = n1;
    c->ns_per_tick = (double)dn / (double)dt;
    c->hz = (uint64_t)llroundl((long double)dt * 1e9L / (long double)dn);
    return 0;
}

int cp_clock_calibrate_with(cp_clock *c, unsigned window_ms, cp_tick_source ticks, void *tick_ctx,
                            cp_ns_source ns, void *ns_ctx)
{
    return calibrate(c, window_ms, ticks, tick_ctx, ns, ns_ctx, NULL);
}

/* Ticks are CLOCK_MONOTONIC ns: nothing to measure. */
static void use_monotonic(cp_clock *c)
{
    int64_t now = cp_monotonic_ns();
    c->use_tsc = false;
    c->tick0 = (uint64_t)now;
    c->ns0 = now;
    c->ns_per_tick = 1.0;
    c->hz = 1000000000u;
}

int cp_clock_calibrate(cp_clock *c, unsigned window_ms, bool allow_tsc)
{
    if (allow_tsc && cp_tsc_is_invariant() &&
        calibrate(c, window_ms, real_ticks, NULL, real_ns, NULL, sleep_ns) == 0) {
        return 0;
    }
    /* No usable TSC (not invariant, not allowed, or it did not advance). */
    use_monotonic(c);
    return 0;
}

void cp_clock_rebase(cp_clock *c)
{
    if (!c->use_tsc) {
        use_monotonic(c);
        return;
    }
    c->tick0 = cp_rdtsc();
    c->ns0 = cp_monotonic_ns();
}

uint64_t cp_clock_delta_ns(const cp_clock *c, uint64_t dticks)
{
    if (!c->use_tsc || c->ns_per_tick == 1.0)
        return dticks; /* ticks are ns: exact */
    /* A 64-bit tick count times a double overflows nothing in long double
     * and, where long double has a 64-bit (x86) or wider (aarch64 quad)
     * mantissa, holds the count exactly, so ns stay exact over hours of
     * ticks. Where long double is just double, the error is still below a
     * microsecond for days. Clamp the rare result beyond uint64. */
    long double ns = (long double)dticks * (long double)c->ns_per_tick;
    if (ns >= 18446744073709551615.0L)
        return UINT64_MAX;
    return (uint64_t)roundl(ns);
}

int64_t cp_clock_to_ns(const cp_clock *c, uint64_t ticks)
{
    /* Signed distance from the time zero, computed on magnitudes so neither
     * the subtraction nor the conversion can overflow. */
    if (ticks >= c->tick0) {
        uint64_t ns = cp_clock_delta_ns(c, ticks - c->tick0);
        return ns > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)ns;
    }
    uint64_t ns = cp_clock_delta_ns(c, c->tick0 - ticks);
    return ns > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)ns;
}

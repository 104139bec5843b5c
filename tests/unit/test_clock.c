/* test_clock.c — calibration with fake clocks (exact), conversions of large
 * values, the monotonic fallback, and a plausibility check of the real TSC. */
#include "core/clock.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>

/* A fake pair of clocks in lockstep: every read of the ns clock moves time
 * forward by `step` ns after returning; the tick counter reports the current
 * time times num/den without moving it. */
typedef struct fake_time {
    int64_t now_ns;
    int64_t step;
    uint64_t num, den;
    uint64_t tick_base;
    unsigned ns_reads;
} fake_time;

static int64_t fake_ns(void *ctx)
{
    fake_time *f = ctx;
    int64_t t = f->now_ns;
    f->now_ns += f->step;
    f->ns_reads++;
    return t;
}

static uint64_t fake_ticks(void *ctx)
{
    fake_time *f = ctx;
    return f->tick_base + (uint64_t)f->now_ns * f->num / f->den;
}

static uint64_t frozen_ticks(void *ctx)
{
    (void)ctx;
    return 42;
}

START_TEST(test_fake_3ghz_exact)
{
    fake_time f = {.now_ns = 5000000000ll, .step = 1000, .num = 3, .den = 1};
    cp_clock c;
    ck_assert_int_eq(cp_clock_calibrate_with(&c, 10, fake_ticks, &f, fake_ns, &f), 0);
    ck_assert(c.use_tsc);
    ck_assert_uint_eq(c.hz, 3000000000ull);
    ck_assert(c.ns_per_tick == 1.0 / 3.0);
    /* The time zero is the end of the window, as a consistent pair. */
    ck_assert_int_eq(c.ns0, 5000000000ll + 10000000);
    ck_assert_uint_eq(c.tick0, (uint64_t)c.ns0 * 3);
    ck_assert_int_eq(cp_clock_to_ns(&c, c.tick0), 0);
}
END_TEST

START_TEST(test_fake_2_5ghz_with_offset)
{
    /* 2.5 GHz, ticks not starting at zero, a step that does not divide the
     * window (the loop overshoots to 10.000003 ms; the ratio stays exact). */
    fake_time f = {.now_ns = 0, .step = 7, .num = 5, .den = 2, .tick_base = 123456789};
    cp_clock c;
    ck_assert_int_eq(cp_clock_calibrate_with(&c, 10, fake_ticks, &f, fake_ns, &f), 0);
    ck_assert_uint_eq(c.hz, 2500000000ull);
    ck_assert(c.ns_per_tick == 0.4);
    ck_assert_int_ge(c.ns0, 10000000);
    ck_assert_int_lt(c.ns0, 10000007);
    ck_assert_uint_eq(cp_clock_delta_ns(&c, 2500000000ull), 1000000000ull);
    ck_assert_int_eq(cp_clock_to_ns(&c, c.tick0 + 5), 2);
}
END_TEST

START_TEST(test_window_is_respected)
{
    fake_time f = {.now_ns = 0, .step = 1000000, .num = 1, .den = 1};
    cp_clock c;
    ck_assert_int_eq(cp_clock_calibrate_with(&c, 50, fake_ticks, &f, fake_ns, &f), 0);
    ck_assert_int_eq(c.ns0, 50000000);
    ck_assert_uint_eq(f.ns_reads, 51); /* the start read, then 1 ms per read */
    /* A zero window is taken as 1 ms. */
    fake_time g = {.now_ns = 0, .step = 1000, .num = 1, .den = 1};
    ck_assert_int_eq(cp_clock_calibrate_with(&c, 0, fake_ticks, &g, fake_ns, &g), 0);
    ck_assert_int_eq(c.ns0, 1000000);
}
END_TEST

START_TEST(test_ticks_not_advancing_fails)
{
    fake_time f = {.now_ns = 0, .step = 1000};
    cp_clock c = {.use_tsc = false, .ns_per_tick = 1.0, .hz = 1000000000};
    ck_assert_int_eq(cp_clock_calibrate_with(&c, 5, frozen_ticks, NULL, fake_ns, &f), -1);
    /* A failed calibration leaves the clock as it was. */
    ck_assert(!c.use_tsc);
    ck_assert(c.ns_per_tick == 1.0);
}
END_TEST

START_TEST(test_big_values_exact)
{
    fake_time f = {.now_ns = 0, .step = 1000, .num = 3, .den = 1};
    cp_clock c;
    ck_assert_int_eq(cp_clock_calibrate_with(&c, 10, fake_ticks, &f, fake_ns, &f), 0);

    const uint64_t ten_hours_ns = 10ull * 3600 * 1000000000ull; /* 3.6e13 */
    const uint64_t ten_hours_ticks = ten_hours_ns * 3;          /* 1.08e14 */
    ck_assert_uint_eq(cp_clock_delta_ns(&c, ten_hours_ticks), ten_hours_ns);
    ck_assert_uint_eq(cp_clock_delta_ns(&c, ten_hours_ticks + 3), ten_hours_ns + 1);
    ck_assert_int_eq(cp_clock_to_ns(&c, c.tick0 + ten_hours_ticks), (int64_t)ten_hours_ns);
    ck_assert_int_eq(cp_clock_to_ns(&c, c.tick0 - 3000), -1000);

    /* 100 years of ticks (9.5e18, near the top of uint64): no overflow,
     * right to well within a microsecond. */
    const uint64_t century_ns = 100ull * 365 * 86400 * 1000000000ull; /* 3.15e18 */
    uint64_t got = cp_clock_delta_ns(&c, century_ns * 3);
    ck_assert_uint_le(got > century_ns ? got - century_ns : century_ns - got, 1000);
    uint64_t max_ns = cp_clock_delta_ns(&c, UINT64_MAX);
    uint64_t want = UINT64_MAX / 3; /* 6148914691236517205 */
    ck_assert_uint_le(max_ns > want ? max_ns - want : want - max_ns, 1000);

    /* A slow clock (ticks longer than a ns) saturates instead of wrapping. */
    cp_clock slow = {.use_tsc = true, .tick0 = 0, .ns_per_tick = 4.0, .hz = 250000000};
    ck_assert_uint_eq(cp_clock_delta_ns(&slow, UINT64_MAX), UINT64_MAX);
    ck_assert_int_eq(cp_clock_to_ns(&slow, UINT64_MAX), INT64_MAX);
    slow.tick0 = UINT64_MAX;
    ck_assert_int_eq(cp_clock_to_ns(&slow, 0), INT64_MIN);
}
END_TEST

START_TEST(test_monotonic_fallback)
{
    cp_clock c;
    int64_t before = cp_monotonic_ns();
    ck_assert_int_eq(cp_clock_calibrate(&c, 5, false), 0);
    int64_t after = cp_monotonic_ns();
    ck_assert(!c.use_tsc);
    ck_assert(c.ns_per_tick == 1.0);
    ck_assert_uint_eq(c.hz, 1000000000ull);
    ck_assert_int_ge(c.ns0, before);
    ck_assert_int_le(c.ns0, after);
    ck_assert_uint_eq(c.tick0, (uint64_t)c.ns0);
    /* Ticks are ns: conversions are the identity, for any size. */
    ck_assert_int_eq(cp_clock_to_ns(&c, c.tick0 + 12345), 12345);
    ck_assert_int_eq(cp_clock_to_ns(&c, c.tick0 - 12345), -12345);
    ck_assert_uint_eq(cp_clock_delta_ns(&c, 1ull << 63), 1ull << 63);
    ck_assert_uint_eq(cp_clock_delta_ns(&c, UINT64_MAX), UINT64_MAX);
    uint64_t t = cp_clock_ticks(&c);
    ck_assert_uint_ge(t, c.tick0);
}
END_TEST

START_TEST(test_real_calibration_plausible)
{
    cp_clock a, b;
    ck_assert_int_eq(cp_clock_calibrate(&a, 20, true), 0);
    ck_assert_int_eq(cp_clock_calibrate(&b, 20, true), 0);
    ck_assert_int_eq(a.use_tsc, cp_tsc_is_invariant());
    ck_assert_int_eq(b.use_tsc, a.use_tsc);
    if (a.use_tsc) {
        ck_assert_uint_gt(a.hz, 100000000ull);
        ck_assert(fabs((double)a.hz - (double)b.hz) < 0.05 * (double)a.hz);
        ck_assert(fabs(a.ns_per_tick * (double)a.hz - 1e9) < 1e9 * 1e-6);
    } else {
        ck_assert(a.ns_per_tick == 1.0);
    }

    /* Ticks converted to ns agree with CLOCK_MONOTONIC over a 20 ms sleep. */
    uint64_t t0 = cp_clock_ticks(&a);
    int64_t n0 = cp_monotonic_ns();
    struct timespec req = {0, 20000000};
    nanosleep(&req, NULL);
    uint64_t t1 = cp_clock_ticks(&a);
    int64_t n1 = cp_monotonic_ns();
    double by_ticks = (double)cp_clock_delta_ns(&a, t1 - t0);
    double by_mono = (double)(n1 - n0);
    ck_assert(fabs(by_ticks - by_mono) < 0.05 * by_mono);
    ck_assert_int_gt(cp_clock_to_ns(&a, t1), cp_clock_to_ns(&a, t0));
}
END_TEST

static Suite *clock_suite(void)
{
    Suite *s = suite_create("clock");
    TCase *fake = tcase_create("fake");
    tcase_add_test(fake, test_fake_3ghz_exact);
    tcase_add_test(fake, test_fake_2_5ghz_with_offset);
    tcase_add_test(fake, test_window_is_respected);
    tcase_add_test(fake, test_ticks_not_advancing_fails);
    tcase_add_test(fake, test_big_values_exact);
    suite_add_tcase(s, fake);
    TCase *real = tcase_create("real");
    tcase_add_test(real, test_monotonic_fallback);
    tcase_add_test(real, test_real_calibration_plausible);
    suite_add_tcase(s, real);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(clock_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

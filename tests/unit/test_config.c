/* test_config.c — defaults, every key with good and bad values, the exact
 * messages, environment parsing, sizes and boundaries. */
#include "core/config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERRLEN 512

#define KNOWN_ENV                                                                                  \
    "CPYPROF_OUTPUT, CPYPROF_MODE, CPYPROF_BUILTINS, CPYPROF_MAX_DEPTH, CPYPROF_RING_SIZE, "       \
    "CPYPROF_TRANSPORT, CPYPROF_QUIET, CPYPROF_RATE, CPYPROF_CLOCK, CPYPROF_IDLE, "                \
    "CPYPROF_NATIVE, "                                                                             \
    "CPYPROF_GIL, CPYPROF_ALLOC, CPYPROF_BUFFER, CPYPROF_KEEP, CPYPROF_SUBPROCESSES, "             \
    "CPYPROF_GIL_RATE"
#define BOOL_EXPECT "(expected 1/0, true/false, yes/no, on/off)"
#define RING_EXPECT "(expected 4K..1G bytes, with an optional K, M or G suffix)"

static cp_config cfg;
static char err[ERRLEN];

static void setup(void)
{
    cp_config_defaults(&cfg);
    memset(err, 'x', sizeof err - 1);
    err[sizeof err - 1] = '\0';
}

/* Sets key=value from the environment origin; expects success. */
static void set_ok(const char *key, const char *value)
{
    int rc = cp_config_set(&cfg, key, value, "CPYPROF_", err, sizeof err);
    ck_assert_msg(rc == 0, "%s=%s failed: %s", key, value, err);
}

/* Expects failure with exactly `msg`, and the config unchanged. */
static void set_bad(const char *prefix, const char *key, const char *value, const char *msg)
{
    cp_config before = cfg;
    ck_assert_int_eq(cp_config_set(&cfg, key, value, prefix, err, sizeof err), -1);
    ck_assert_str_eq(err, msg);
    ck_assert_int_eq(memcmp(&before, &cfg, sizeof cfg), 0);
}

START_TEST(test_defaults)
{
    ck_assert_str_eq(cfg.output, "cpyprof.out");
    ck_assert_int_eq(cfg.mode, CP_MODE_TRACE);
    ck_assert(cfg.builtins);
    ck_assert_uint_eq(cfg.max_depth, 2048);
    ck_assert_uint_eq(cfg.ring_bytes, 1024 * 1024);
    ck_assert_int_eq(cfg.transport, CP_TRANSPORT_INLINE);
    ck_assert(!cfg.quiet);
    ck_assert_uint_eq(cfg.rate_hz, 100);
    ck_assert_int_eq(cfg.clock, CP_CLOCK_CPU);
    ck_assert(cfg.idle);
    ck_assert(!cfg.native);
}
END_TEST

START_TEST(test_alloc_values)
{
    ck_assert_int_eq(cfg.alloc, CP_ALLOC_OFF);
    static const struct {
        const char *text;
        cp_alloc_mode want;
    } ok[] = {{"on", CP_ALLOC_ON},        {"NATIVE", CP_ALLOC_NATIVE}, {"off", CP_ALLOC_OFF},
              {"1", CP_ALLOC_ON},         {"yes", CP_ALLOC_ON},        {"false", CP_ALLOC_OFF},
              {"native", CP_ALLOC_NATIVE}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        set_ok("alloc", ok[i].text);
        ck_assert_int_eq(cfg.alloc, ok[i].want);
    }
    set_bad("--", "alloc", "sometimes",
            "--alloc: 'sometimes' is not valid (expected off, on or native (or 1/0, true/false, "
            "yes/no))");
    ck_assert_int_eq(cfg.alloc, CP_ALLOC_NATIVE); /* unchanged by the bad value */
}
END_TEST

START_TEST(test_keys_list)
{
    static const char *const want[] = {
        "output", "mode",   "builtins", "max_depth",    "ring_size", "transport",
        "quiet",  "rate",   "clock",    "idle",         "native",    "gil",
        "alloc",  "buffer", "keep",     "subprocesses", "gil_rate"};
    size_t n = 0;
    while (cp_config_keys[n])
        n++;
    ck_assert_uint_eq(n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n; i++)
        ck_assert_str_eq(cp_config_keys[i], want[i]);
    /* Every listed key is accepted by cp_config_set (as a known key). */
    for (size_t i = 0; i < n; i++) {
        cp_config_set(&cfg, cp_config_keys[i], "", "", err, sizeof err);
        ck_assert_ptr_null(strstr(err, "unknown setting"));
    }
}
END_TEST

START_TEST(test_output)
{
    set_ok("output", "/tmp/x.cpyprof");
    ck_assert_str_eq(cfg.output, "/tmp/x.cpyprof");
    set_bad("CPYPROF_", "output", "", "CPYPROF_OUTPUT: empty value (expected a file path)");
    set_bad("--", "output", "", "--output: empty value (expected a file path)");

    char longest[CP_PATH_MAX];
    memset(longest, 'a', sizeof longest - 1);
    longest[sizeof longest - 1] = '\0';
    set_ok("output", longest);
    ck_assert_str_eq(cfg.output, longest);

    char too_long[CP_PATH_MAX + 1];
    memset(too_long, 'b', sizeof too_long - 1);
    too_long[sizeof too_long - 1] = '\0';
    set_bad("", "output", too_long, "output: path too long (4096 bytes, at most 4095)");
    set_bad("CPYPROF_", "output", NULL, "CPYPROF_OUTPUT: missing value");
}
END_TEST

START_TEST(test_mode_transport_clock)
{
    set_ok("mode", "sample");
    ck_assert_int_eq(cfg.mode, CP_MODE_SAMPLE);
    set_ok("mode", "TRACE");
    ck_assert_int_eq(cfg.mode, CP_MODE_TRACE);
    set_bad("CPYPROF_", "mode", "fast",
            "CPYPROF_MODE: 'fast' is not valid (expected trace, sample or timeline)");
    set_bad("--", "mode", "", "--mode: '' is not valid (expected trace, sample or timeline)");
    set_ok("mode", "Timeline");
    ck_assert_int_eq(cfg.mode, CP_MODE_TIMELINE);
    set_ok("mode", "trace");

    set_ok("transport", "ring");
    ck_assert_int_eq(cfg.transport, CP_TRANSPORT_RING);
    set_ok("transport", "Inline");
    ck_assert_int_eq(cfg.transport, CP_TRANSPORT_INLINE);
    set_bad("CPYPROF_", "transport", "pipe",
            "CPYPROF_TRANSPORT: 'pipe' is not valid (expected inline or ring)");

    set_ok("clock", "wall");
    ck_assert_int_eq(cfg.clock, CP_CLOCK_WALL);
    set_ok("clock", "cpu");
    ck_assert_int_eq(cfg.clock, CP_CLOCK_CPU);
    set_bad("", "clock", "walltime", "clock: 'walltime' is not valid (expected cpu or wall)");
}
END_TEST

START_TEST(test_booleans)
{
    static const char *const keys[] = {"builtins", "quiet", "idle", "native"};
    static const char *const yes[] = {"1", "true", "TRUE", "yes", "Yes", "on", "ON"};
    static const char *const no[] = {"0", "false", "False", "no", "NO", "off", "Off"};
    for (size_t k = 0; k < 4; k++) {
        bool *field = k == 0   ? &cfg.builtins
                      : k == 1 ? &cfg.quiet
                      : k == 2 ? &cfg.idle
                               : &cfg.native;
        for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
            *field = false;
            set_ok(keys[k], yes[i]);
            ck_assert(*field);
        }
        for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
            *field = true;
            set_ok(keys[k], no[i]);
            ck_assert(!*field);
        }
    }
    set_bad("CPYPROF_", "quiet", "maybe", "CPYPROF_QUIET: 'maybe' is not a boolean " BOOL_EXPECT);
    set_bad("CPYPROF_", "native", "2", "CPYPROF_NATIVE: '2' is not a boolean " BOOL_EXPECT);
    set_bad("--", "builtins", "", "--builtins: '' is not a boolean " BOOL_EXPECT);
    set_bad("", "idle", " yes", "idle: ' yes' is not a boolean " BOOL_EXPECT);
    set_bad("", "idle", "yess", "idle: 'yess' is not a boolean " BOOL_EXPECT);
}
END_TEST

START_TEST(test_rate)
{
    set_ok("rate", "1");
    ck_assert_uint_eq(cfg.rate_hz, 1);
    set_ok("rate", "10000");
    ck_assert_uint_eq(cfg.rate_hz, 10000);
    set_ok("rate", "0250");
    ck_assert_uint_eq(cfg.rate_hz, 250);
    set_bad("CPYPROF_", "rate", "fast",
            "CPYPROF_RATE: 'fast' is not a number (expected 1..10000 samples per second)");
    set_bad("CPYPROF_", "rate", "0",
            "CPYPROF_RATE: '0' is out of range (expected 1..10000 samples per second)");
    set_bad("CPYPROF_", "rate", "10001",
            "CPYPROF_RATE: '10001' is out of range (expected 1..10000 samples per second)");
    set_bad("CPYPROF_", "rate", "-5",
            "CPYPROF_RATE: '-5' is out of range (expected 1..10000 samples per second)");
    set_bad("--", "rate", "99999999999999999999999",
            "--rate: '99999999999999999999999' is out of range (expected 1..10000 samples per "
            "second)");
    set_bad("", "rate", "", "rate: '' is not a number (expected 1..10000 samples per second)");
    set_bad("", "rate", "100 ",
            "rate: '100 ' is not a number (expected 1..10000 samples per second)");
    set_bad("", "rate", "+100",
            "rate: '+100' is not a number (expected 1..10000 samples per second)");
    set_bad("", "rate", "0x10",
            "rate: '0x10' is not a number (expected 1..10000 samples per second)");
    set_bad("", "rate", "1e3",
            "rate: '1e3' is not a number (expected 1..10000 samples per second)");
    set_bad("", "rate", "-", "rate: '-' is not a number (expected 1..10000 samples per second)");
}
END_TEST

START_TEST(test_gil_rate)
{
    ck_assert_uint_eq(cfg.gil_rate_hz, 100);
    set_ok("gil_rate", "1");
    ck_assert_uint_eq(cfg.gil_rate_hz, 1);
    set_ok("gil-rate", "1000");
    ck_assert_uint_eq(cfg.gil_rate_hz, 1000);
    set_bad("CPYPROF_", "gil_rate", "0",
            "CPYPROF_GIL_RATE: '0' is out of range (expected 1..1000 reads per second)");
    set_bad("--", "gil-rate", "1001",
            "--gil-rate: '1001' is out of range (expected 1..1000 reads per second)");
    set_bad("", "gil_rate", "often",
            "gil_rate: 'often' is not a number (expected 1..1000 reads per second)");
    ck_assert_uint_eq(cfg.gil_rate_hz, 1000); /* unchanged by the bad values */
}
END_TEST

START_TEST(test_max_depth)
{
    set_ok("max_depth", "16");
    ck_assert_uint_eq(cfg.max_depth, 16);
    set_ok("max-depth", "100000");
    ck_assert_uint_eq(cfg.max_depth, 100000);
    set_bad("CPYPROF_", "max_depth", "15",
            "CPYPROF_MAX_DEPTH: '15' is out of range (expected 16..100000 frames)");
    set_bad("--", "max_depth", "100001",
            "--max-depth: '100001' is out of range (expected 16..100000 frames)");
    set_bad("", "max-depth", "deep",
            "max-depth: 'deep' is not a number (expected 16..100000 frames)");
    /* uint32 wraparound must not sneak a value into range. */
    set_bad("", "max_depth", "4294967312",
            "max_depth: '4294967312' is out of range (expected 16..100000 frames)");
}
END_TEST

START_TEST(test_ring_size)
{
    set_ok("ring_size", "4K");
    ck_assert_uint_eq(cfg.ring_bytes, 4096);
    set_ok("ring_size", "4096");
    ck_assert_uint_eq(cfg.ring_bytes, 4096);
    set_ok("ring-size", "1G");
    ck_assert_uint_eq(cfg.ring_bytes, 1ull << 30);
    set_ok("ring_size", "2mb");
    ck_assert_uint_eq(cfg.ring_bytes, 2ull << 20);
    set_ok("ring_size", "1048576B");
    ck_assert_uint_eq(cfg.ring_bytes, 1ull << 20);
    set_bad("CPYPROF_", "ring_size", "4095",
            "CPYPROF_RING_SIZE: '4095' is out of range " RING_EXPECT);
    set_bad("CPYPROF_", "ring_size", "3K", "CPYPROF_RING_SIZE: '3K' is out of range " RING_EXPECT);
    set_bad("--", "ring_size", "1025M", "--ring-size: '1025M' is out of range " RING_EXPECT);
    set_bad("--", "ring-size", "2G", "--ring-size: '2G' is out of range " RING_EXPECT);
    set_bad("", "ring_size", "0", "ring_size: '0' is out of range " RING_EXPECT);
    set_bad("", "ring_size", "-4K", "ring_size: '-4K' is out of range " RING_EXPECT);
    set_bad("", "ring_size", "big", "ring_size: 'big' is not a size " RING_EXPECT);
    set_bad("", "ring_size", "4KiB", "ring_size: '4KiB' is not a size " RING_EXPECT);
    set_bad("", "ring_size", "4T", "ring_size: '4T' is not a size " RING_EXPECT);
    set_bad("", "ring_size", "1.5M", "ring_size: '1.5M' is not a size " RING_EXPECT);
    set_bad("", "ring_size", "", "ring_size: '' is not a size " RING_EXPECT);
    set_bad("", "ring_size", "K", "ring_size: 'K' is not a size " RING_EXPECT);
}
END_TEST

START_TEST(test_timeline_buffer_keep)
{
    ck_assert_uint_eq(cfg.buffer_bytes, 4ull << 20);
    ck_assert_int_eq(cfg.keep, CP_KEEP_ALL);
    set_ok("buffer", "64K");
    ck_assert_uint_eq(cfg.buffer_bytes, 64ull << 10);
    set_ok("buffer", "1G");
    ck_assert_uint_eq(cfg.buffer_bytes, 1ull << 30);
    set_bad("--", "buffer", "32K",
            "--buffer: '32K' is out of range (expected 64K..1G bytes, with an optional K, M or "
            "G suffix)");
    set_bad("CPYPROF_", "buffer", "lots",
            "CPYPROF_BUFFER: 'lots' is not a size (expected 64K..1G bytes, with an optional K, "
            "M or G suffix)");
    set_ok("keep", "LAST");
    ck_assert_int_eq(cfg.keep, CP_KEEP_LAST);
    set_ok("keep", "all");
    ck_assert_int_eq(cfg.keep, CP_KEEP_ALL);
    set_bad("--", "keep", "first", "--keep: 'first' is not valid (expected all or last)");
}
END_TEST

START_TEST(test_parse_size)
{
    static const struct {
        const char *text;
        uint64_t value;
    } good[] = {
        {"0", 0},
        {"1", 1},
        {"123B", 123},
        {"1k", 1024},
        {"1K", 1024},
        {"1KB", 1024},
        {"1kb", 1024},
        {"3M", 3ull << 20},
        {"3Mb", 3ull << 20},
        {"5G", 5ull << 30},
        {"5gB", 5ull << 30},
        {"18446744073709551615", UINT64_MAX},
        {"17179869183G", 17179869183ull << 30}, /* largest G that fits */
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint64_t v = 12345;
        ck_assert_msg(cp_parse_size(good[i].text, &v) == 0, "'%s' rejected", good[i].text);
        ck_assert_uint_eq(v, good[i].value);
    }
    static const char *const bad[] = {
        "",
        "K",
        "B",
        "-1",
        "+1",
        " 1",
        "1 ",
        "1KK",
        "1BB",
        "1KiB",
        "1T",
        "1.0",
        "0x10",
        "18446744073709551616",
        "17179869184G",
        "16777216T",
        NULL,
    };
    for (size_t i = 0; bad[i]; i++) {
        uint64_t v = 777;
        ck_assert_msg(cp_parse_size(bad[i], &v) == -1, "'%s' accepted", bad[i]);
        ck_assert_uint_eq(v, 777);
    }
    uint64_t v;
    ck_assert_int_eq(cp_parse_size(NULL, &v), -1);
}
END_TEST

START_TEST(test_unknown_key)
{
    set_bad("CPYPROF_", "raet", "5", "CPYPROF_RAET: unknown setting (known: " KNOWN_ENV ")");
    set_bad("--", "ring_sise", "5",
            "--ring-sise: unknown setting (known: --output, --mode, --builtins, --max-depth, "
            "--ring-size, --transport, --quiet, --rate, --clock, --idle, --native, --gil, --alloc, "
            "--buffer, --keep, --subprocesses, --gil-rate)");
    set_bad(NULL, "Raet", "5",
            "Raet: unknown setting (known: output, mode, builtins, max_depth, ring_size, "
            "transport, quiet, rate, clock, idle, native, gil, alloc, buffer, keep, subprocesses, "
            "gil_rate)");
    set_bad("", "", "5",
            ": unknown setting (known: output, mode, builtins, max_depth, ring_size, "
            "transport, quiet, rate, clock, idle, native, gil, alloc, buffer, keep, subprocesses, "
            "gil_rate)");
}
END_TEST

START_TEST(test_key_spelling)
{
    /* '-' for '_', any case. */
    set_ok("MAX-DEPTH", "100");
    ck_assert_uint_eq(cfg.max_depth, 100);
    set_ok("Ring_Size", "8K");
    ck_assert_uint_eq(cfg.ring_bytes, 8192);
    /* Messages spell the key the way its origin does. */
    set_bad("CPYPROF_", "max-depth", "x",
            "CPYPROF_MAX_DEPTH: 'x' is not a number (expected 16..100000 frames)");
    set_bad("--", "MAX_DEPTH", "x",
            "--max-depth: 'x' is not a number (expected 16..100000 frames)");
    set_bad("", "Max-Depth", "x", "Max-Depth: 'x' is not a number (expected 16..100000 frames)");
    set_bad("py:", "max_depth", "x",
            "py:max_depth: 'x' is not a number (expected 16..100000 frames)");
}
END_TEST

START_TEST(test_message_is_one_line_and_bounded)
{
    /* Control characters never reach the message; long values are cut. */
    set_bad("", "rate", "1\n2",
            "rate: '1?2' is not a number (expected 1..10000 samples per second)");
    char value[300];
    memset(value, 'z', sizeof value - 1);
    value[sizeof value - 1] = '\0';
    ck_assert_int_eq(cp_config_set(&cfg, "mode", value, "", err, sizeof err), -1);
    ck_assert_ptr_null(strchr(err, '\n'));
    ck_assert_uint_lt(strlen(err), 150);
    ck_assert_ptr_nonnull(strstr(err, "zzz...'"));

    /* A small buffer is truncated, NUL-terminated, never overrun. */
    char small[16];
    memset(small, '#', sizeof small);
    ck_assert_int_eq(cp_config_set(&cfg, "rate", "fast", "CPYPROF_", small, 12), -1);
    ck_assert_str_eq(small, "CPYPROF_RAT");
    ck_assert_int_eq(small[12], '#');
    /* No buffer at all is allowed. */
    ck_assert_int_eq(cp_config_set(&cfg, "rate", "fast", "", NULL, 0), -1);
    ck_assert_int_eq(cp_config_set(&cfg, "rate", "7", "", NULL, 0), 0);
    ck_assert_uint_eq(cfg.rate_hz, 7);
}
END_TEST

START_TEST(test_env_good)
{
    char *const env[] = {
        "HOME=/root",
        "CPYPROF_OUTPUT=/tmp/p.out",
        "CPYPROF_MODE=sample",
        "CPYPROF_RATE=997",
        "CPYPROF_CLOCK=wall",
        "CPYPROF_RING_SIZE=64K",
        "CPYPROF_MAX_DEPTH=300",
        "CPYPROF_TRANSPORT=ring",
        "CPYPROF_QUIET=yes",
        "CPYPROF_BUILTINS=off",
        "CPYPROF_IDLE=0",
        "CPYPROF_NATIVE=true",
        "CPYPROF_PID=1234",
        "CPYPROF_LIBRARY=/x/libcpyprof.so",
        "CPYPROF_BUILD_DIR=/x/build",
        "CPYPROF_ACTIVE=1",
        "CPYPROFX=1",   /* not our prefix */
        "CPYPROF_NOEQ", /* malformed entry: ignored */
        "PATH=/bin",
        NULL,
    };
    ck_assert_int_eq(cp_config_from_env(&cfg, env, err, sizeof err), 0);
    ck_assert_str_eq(err, "");
    ck_assert_str_eq(cfg.output, "/tmp/p.out");
    ck_assert_int_eq(cfg.mode, CP_MODE_SAMPLE);
    ck_assert_uint_eq(cfg.rate_hz, 997);
    ck_assert_int_eq(cfg.clock, CP_CLOCK_WALL);
    ck_assert_uint_eq(cfg.ring_bytes, 64 * 1024);
    ck_assert_uint_eq(cfg.max_depth, 300);
    ck_assert_int_eq(cfg.transport, CP_TRANSPORT_RING);
    ck_assert(cfg.quiet);
    ck_assert(!cfg.builtins);
    ck_assert(!cfg.idle);
    ck_assert(cfg.native);
}
END_TEST

START_TEST(test_env_empty_and_null)
{
    char *const env[] = {NULL};
    ck_assert_int_eq(cp_config_from_env(&cfg, env, err, sizeof err), 0);
    ck_assert_int_eq(cp_config_from_env(&cfg, NULL, err, sizeof err), 0);
    ck_assert_str_eq(cfg.output, "cpyprof.out");
}
END_TEST

START_TEST(test_env_errors)
{
    char *const typo[] = {"CPYPROF_RATE=50", "CPYPROF_RAET=100", "CPYPROF_MODE=sample", NULL};
    ck_assert_int_eq(cp_config_from_env(&cfg, typo, err, sizeof err), -1);
    ck_assert_str_eq(err, "CPYPROF_RAET: unknown setting (known: " KNOWN_ENV ")");
    /* Stops at the first error: what came before is applied, after is not. */
    ck_assert_uint_eq(cfg.rate_hz, 50);
    ck_assert_int_eq(cfg.mode, CP_MODE_TRACE);

    cp_config_defaults(&cfg);
    char *const bad_value[] = {"CPYPROF_RATE=fast", NULL};
    ck_assert_int_eq(cp_config_from_env(&cfg, bad_value, err, sizeof err), -1);
    ck_assert_str_eq(err,
                     "CPYPROF_RATE: 'fast' is not a number (expected 1..10000 samples per second)");

    char *const empty_out[] = {"CPYPROF_OUTPUT=", NULL};
    ck_assert_int_eq(cp_config_from_env(&cfg, empty_out, err, sizeof err), -1);
    ck_assert_str_eq(err, "CPYPROF_OUTPUT: empty value (expected a file path)");

    /* Reserved names are exact: a near miss is still a typo. */
    char *const near[] = {"CPYPROF_PIDS=1", NULL};
    ck_assert_int_eq(cp_config_from_env(&cfg, near, err, sizeof err), -1);
    ck_assert_str_eq(err, "CPYPROF_PIDS: unknown setting (known: " KNOWN_ENV ")");

    char *const bare[] = {"CPYPROF_=1", NULL};
    ck_assert_int_eq(cp_config_from_env(&cfg, bare, err, sizeof err), -1);
    ck_assert_str_eq(err, "CPYPROF_: unknown setting (known: " KNOWN_ENV ")");

    /* A very long name is cut in the message, and still unknown. */
    static char long_name[200];
    memcpy(long_name, "CPYPROF_", 8);
    memset(long_name + 8, 'Q', 150);
    strcpy(long_name + 158, "=1");
    char *const longer[] = {long_name, NULL};
    ck_assert_int_eq(cp_config_from_env(&cfg, longer, err, sizeof err), -1);
    char want[ERRLEN];
    char qs[65];
    memset(qs, 'Q', 64);
    qs[64] = '\0';
    snprintf(want, sizeof want, "CPYPROF_%s...: unknown setting (known: " KNOWN_ENV ")", qs);
    ck_assert_str_eq(err, want);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_keys_list);
    tcase_add_test(tc, test_alloc_values);
    tcase_add_test(tc, test_output);
    tcase_add_test(tc, test_mode_transport_clock);
    tcase_add_test(tc, test_timeline_buffer_keep);
    tcase_add_test(tc, test_booleans);
    tcase_add_test(tc, test_rate);
    tcase_add_test(tc, test_gil_rate);
    tcase_add_test(tc, test_max_depth);
    tcase_add_test(tc, test_ring_size);
    tcase_add_test(tc, test_parse_size);
    tcase_add_test(tc, test_unknown_key);
    tcase_add_test(tc, test_key_spelling);
    tcase_add_test(tc, test_message_is_one_line_and_bounded);
    tcase_add_test(tc, test_env_good);
    tcase_add_test(tc, test_env_empty_and_null);
    tcase_add_test(tc, test_env_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* test_speedscope.c — the speedscope JSON writer (src/report/speedscope.c). */
#include "report/speedscope.h"

#include <check.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const cp_ss_frame frames[] = {
    {"main", "app.py", 1},
    {"we\"ird\\ \n\t\x01 \xff \xe2\x80\xa8 caf\xc3\xa9", NULL, 0},
    {"len", "<builtin>", 0},
    {NULL, "", 7},
};

static const uint32_t st_main[] = {0};
static const uint32_t st_weird[] = {0, 1};
static const uint32_t st_len[] = {0, 1, 2};
static const uint32_t st_unknown[] = {3};

static const cp_ss_sample main_samples[] = {
    {st_weird, 2, 10},
    {st_len, 3, 20},
    {st_main, 1, 5},
};
static const cp_ss_sample other_samples[] = {
    {st_unknown, 1, 1}, {NULL, 0, 2}, /* an empty stack: time outside any frame */
};

static const cp_ss_thread threads[] = {
    {"MainThread (tid 7)", main_samples, 3},
    {NULL, other_samples, 2},
    {"idle", NULL, 0},
};

static const char expected[] =
    "{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\","
    "\"exporter\":\"cpyprof test\",\"name\":\"app \\\"1\\\"\",\"activeProfileIndex\":0,\n"
    "\"shared\":{\"frames\":[\n"
    "{\"name\":\"main\",\"file\":\"app.py\",\"line\":1},\n"
    "{\"name\":\"we\\\"ird\\\\ \\n\\t\\u0001 \\ufffd \\u2028 caf\xc3\xa9\"},\n"
    "{\"name\":\"len\",\"file\":\"<builtin>\"},\n"
    "{\"name\":\"(unknown)\",\"line\":7}]},\n"
    "\"profiles\":[\n"
    "{\"type\":\"sampled\",\"name\":\"MainThread (tid 7)\",\"unit\":\"nanoseconds\","
    "\"startValue\":0,\"endValue\":35,\n"
    "\"samples\":[[0,1],[0,1,2],[0]],\n"
    "\"weights\":[10,20,5]},\n"
    "{\"type\":\"sampled\",\"name\":\"thread 1\",\"unit\":\"nanoseconds\","
    "\"startValue\":0,\"endValue\":3,\n"
    "\"samples\":[[3],[]],\n"
    "\"weights\":[1,2]},\n"
    "{\"type\":\"sampled\",\"name\":\"idle\",\"unit\":\"nanoseconds\","
    "\"startValue\":0,\"endValue\":0,\n"
    "\"samples\":[],\n"
    "\"weights\":[]}]}\n";

static const cp_ss_options opts = {"app \"1\"", "cpyprof test", CP_SS_UNIT_NANOSECONDS};

static char *render(const cp_ss_frame *f, size_t nf, const cp_ss_thread *t, size_t nt,
                    const cp_ss_options *opt, int *rc, char *err, size_t errlen)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(out);
    *rc = cp_speedscope_write(out, f, nf, t, nt, opt, err, errlen);
    fclose(out);
    return buf;
}

/* Parses the document with Python's json module and checks the structure
 * speedscope's schema requires. Skipped when python3 is not installed. */
static void check_with_python(const char *doc, size_t nframes)
{
    if (system("command -v python3 >/dev/null 2>&1") != 0)
        return;
    char path[] = "/tmp/test_speedscope_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    fputs(doc, f);
    fclose(f);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "python3 -c '"
             "import json, sys\n"
             "d = json.load(open(sys.argv[1], encoding=\"utf-8\"))\n"
             "assert d[\"$schema\"] == \"https://www.speedscope.app/file-format-schema.json\"\n"
             "fr = d[\"shared\"][\"frames\"]\n"
             "assert len(fr) == int(sys.argv[2])\n"
             "assert all(isinstance(x[\"name\"], str) for x in fr)\n"
             "for p in d[\"profiles\"]:\n"
             "    assert p[\"type\"] == \"sampled\" and isinstance(p[\"name\"], str)\n"
             "    assert p[\"unit\"] in (\"none\", \"nanoseconds\", \"bytes\")\n"
             "    assert p[\"startValue\"] == 0 and p[\"endValue\"] == sum(p[\"weights\"])\n"
             "    assert len(p[\"samples\"]) == len(p[\"weights\"])\n"
             "    assert all(0 <= i < len(fr) for s in p[\"samples\"] for i in s)\n"
             "' %s %zu",
             path, nframes);
    int rc = system(cmd);
    unlink(path);
    ck_assert_msg(rc == 0, "python3 rejected the document");
}

START_TEST(test_exact_json)
{
    char err[256] = "";
    int rc;
    char *json = render(frames, 4, threads, 3, &opts, &rc, err, sizeof err);
    ck_assert_msg(rc == 0, "failed: %s", err);
    ck_assert_str_eq(json, expected);
    check_with_python(json, 4);
    free(json);
}
END_TEST

START_TEST(test_defaults_and_empty)
{
    char err[256] = "";
    int rc;
    /* no options: unit "none", no name or exporter */
    const cp_ss_thread one[] = {{"t", main_samples, 1}};
    char *json = render(frames, 2, one, 1, NULL, &rc, err, sizeof err);
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(json,
                     "{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\","
                     "\"activeProfileIndex\":0,\n"
                     "\"shared\":{\"frames\":[\n"
                     "{\"name\":\"main\",\"file\":\"app.py\",\"line\":1},\n"
                     "{\"name\":\"we\\\"ird\\\\ \\n\\t\\u0001 \\ufffd \\u2028 caf\xc3\xa9\"}]},\n"
                     "\"profiles\":[\n"
                     "{\"type\":\"sampled\",\"name\":\"t\",\"unit\":\"none\","
                     "\"startValue\":0,\"endValue\":10,\n"
                     "\"samples\":[[0,1]],\n"
                     "\"weights\":[10]}]}\n");
    check_with_python(json, 2);
    free(json);

    /* nothing at all: still a valid document */
    json = render(NULL, 0, NULL, 0, NULL, &rc, err, sizeof err);
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(json, "{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\",\n"
                           "\"shared\":{\"frames\":[]},\n"
                           "\"profiles\":[]}\n");
    check_with_python(json, 0);
    free(json);

    /* bytes */
    cp_ss_options o = {NULL, NULL, CP_SS_UNIT_BYTES};
    json = render(frames, 4, threads, 1, &o, &rc, err, sizeof err);
    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_nonnull(strstr(json, "\"unit\":\"bytes\""));
    free(json);
}
END_TEST

START_TEST(test_invalid_utf8_variants)
{
    /* overlong '/', a lone continuation byte, a truncated sequence at the
     * end, an encoded surrogate, a code point past U+10FFFF, and a valid
     * 4-byte sequence that must pass through */
    const cp_ss_frame f[] = {
        {"a\xc0\xaf b\x80 c\xed\xa0\x80 d\xf4\x90\x80\x80 e\xf0\x9f\x90\x8d f\xe2\x82", NULL, 0},
    };
    char err[256] = "";
    int rc;
    char *json = render(f, 1, NULL, 0, NULL, &rc, err, sizeof err);
    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_nonnull(strstr(json,
                                 "{\"name\":\"a\\ufffd\\ufffd b\\ufffd c\\ufffd\\ufffd\\ufffd "
                                 "d\\ufffd\\ufffd\\ufffd\\ufffd e\xf0\x9f\x90\x8d "
                                 "f\\ufffd\\ufffd\"}"));
    check_with_python(json, 1);
    free(json);
}
END_TEST

START_TEST(test_bad_input)
{
    char err[256] = "";
    int rc;
    static const uint32_t bad_stack[] = {0, 9};
    const cp_ss_sample bad_samples[] = {
        {st_main, 1, 1}, {st_main, 1, 1}, {st_main, 1, 1}, {bad_stack, 2, 1}};
    const cp_ss_thread t[] = {{"ok", main_samples, 3}, {"bad", bad_samples, 4}};
    char *json = render(frames, 4, t, 2, &opts, &rc, err, sizeof err);
    ck_assert_int_eq(rc, -1);
    ck_assert_str_eq(err, "bad sample: thread 1 sample 3 refers to frame 9 of 4");
    ck_assert_str_eq(json, ""); /* checked before anything is written */
    free(json);

    const cp_ss_sample no_stack[] = {{NULL, 2, 1}};
    const cp_ss_thread t2[] = {{"x", no_stack, 1}};
    json = render(frames, 4, t2, 1, &opts, &rc, err, sizeof err);
    ck_assert_int_eq(rc, -1);
    ck_assert_str_eq(err, "bad sample: thread 0 sample 0 has no stack");
    free(json);

    json = render(NULL, 3, NULL, 0, &opts, &rc, err, sizeof err);
    ck_assert_int_eq(rc, -1);
    ck_assert_ptr_nonnull(strstr(err, "no frame table"));
    free(json);
}
END_TEST

START_TEST(test_write_error)
{
    FILE *full = fopen("/dev/full", "w");
    if (!full)
        return; /* no /dev/full here: nothing to test */
    char err[256] = "";
    ck_assert_int_eq(cp_speedscope_write(full, frames, 4, threads, 3, &opts, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "write error") != NULL, "message: %s", err);
    fclose(full);
}
END_TEST

START_TEST(test_large_profile)
{
    /* enough output to pass through stdio's buffer many times */
    enum { NS = 20000 };
    cp_ss_sample *s = calloc(NS, sizeof *s);
    ck_assert_ptr_nonnull(s);
    for (size_t i = 0; i < NS; i++)
        s[i] = (cp_ss_sample){st_len, 3, i + 1};
    const cp_ss_thread t[] = {{"big", s, NS}};
    char err[256] = "";
    int rc;
    char *json = render(frames, 4, t, 1, &opts, &rc, err, sizeof err);
    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_nonnull(strstr(json, "\"endValue\":200010000,"));
    check_with_python(json, 4);
    free(json);

    FILE *full = fopen("/dev/full", "w");
    if (full) {
        ck_assert_int_eq(cp_speedscope_write(full, frames, 4, t, 1, &opts, err, sizeof err), -1);
        fclose(full);
    }
    free(s);
}
END_TEST

static Suite *speedscope_suite(void)
{
    Suite *s = suite_create("speedscope");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_exact_json);
    tcase_add_test(tc, test_defaults_and_empty);
    tcase_add_test(tc, test_invalid_utf8_variants);
    tcase_add_test(tc, test_bad_input);
    tcase_add_test(tc, test_write_error);
    tcase_add_test(tc, test_large_profile);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(speedscope_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

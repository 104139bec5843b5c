/*
 * test_table.c — the top-functions table: sort keys, limits, the text
 * layout and the JSON schema "cpyprof.report/1", checked as exact text.
 */
#include "report/table.h"
#include "report/text.h"
#include "profile_builder.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

typedef int (*writer_fn)(FILE *, const cp_profile *, const cp_table_options *, char *, size_t);

static char *render(writer_fn fn, const cp_profile *p, const cp_table_options *o)
{
    char *text = NULL;
    size_t len = 0;
    char err[256];
    FILE *out = open_memstream(&text, &len);
    ck_assert_msg(fn(out, p, o, err, sizeof err) == 0, "%s", err);
    fclose(out);
    return text;
}

/* The order of function indices for one sort key, as "i,j,k,". */
static void order(const cp_profile *p, cp_sort_key key, const char *want)
{
    cp_flat f;
    char err[256], got[64] = "";
    ck_assert_int_eq(cp_flat_build(p, -1, &f, err, sizeof err), 0);
    cp_flat_sort(&f, p, key);
    for (size_t i = 0; i < f.n; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%u,", f.rows[i].func);
    ck_assert_msg(strcmp(got, want) == 0, "sort %s: got %s, want %s", cp_sort_key_name(key), got,
                  want);
    cp_flat_free(&f);
}

START_TEST(sorting)
{
    cp_buf f;
    cp_profile p;
    tb_sample(&f, true);
    TB_LOAD(&p, &f);
    /* funcs: 0 main, 1 fib, 2 len, 3 [truncated] */
    order(&p, CP_SORT_CALLS, "1,2,0,3,");
    order(&p, CP_SORT_SELF, "1,2,0,3,");
    order(&p, CP_SORT_TOTAL, "0,1,2,3,");
    order(&p, CP_SORT_SELF_PER_CALL, "0,1,2,3,");  /* 170, 88, 25, 0 */
    order(&p, CP_SORT_TOTAL_PER_CALL, "0,1,2,3,"); /* 1000, 112, 25, 0 */
    order(&p, CP_SORT_NAME, "3,1,2,0,");           /* [truncated] fib len main */

    const char *names[] = {"calls", "self", "total", "self-per-call", "total-per-call", "name"};
    for (int i = 0; i < 6; i++) {
        cp_sort_key k;
        ck_assert_int_eq(cp_sort_key_parse(names[i], &k), 0);
        ck_assert_int_eq(k, i);
        ck_assert_str_eq(cp_sort_key_name(k), names[i]);
    }
    cp_sort_key k;
    ck_assert_int_eq(cp_sort_key_parse("fast", &k), -1);
    cp_profile_free(&p);
    cp_buf_free(&f);
}
END_TEST

START_TEST(text_table)
{
    cp_buf f;
    cp_profile p;
    tb_sample(&f, true);
    TB_LOAD(&p, &f);
    cp_table_options o = {.source = "sample.cpyprof", .sort = CP_SORT_SELF, .limit = 30};
    char *text = render(cp_table_write, &p, &o);
    ck_assert_str_eq(text,
                     "profile:  sample.cpyprof\n"
                     "command:  python3 app.py 'it'\\''s here'\n"
                     "duration: 2.50ms   threads: 2   mode: trace\n"
                     "dropped:  3 records\n"
                     "\n"
                     "functions: 4 (showing 4, sorted by self)\n"
                     "     calls       self      total  self/call total/call  function\n"
                     "         8      710ns      900ns       88ns      112ns  fib (app.py:5)\n"
                     "         7      180ns      180ns       25ns       25ns  len (builtins)\n"
                     "         1      170ns     1.00us      170ns     1.00us  main (app.py:1)\n"
                     "         0       40ns       40ns          -          -  [truncated]\n");
    free(text);

    o.per_thread = true;
    o.limit = 1;
    o.sort = CP_SORT_CALLS;
    text = render(cp_table_write, &p, &o);
    ck_assert_str_eq(text,
                     "profile:  sample.cpyprof\n"
                     "command:  python3 app.py 'it'\\''s here'\n"
                     "duration: 2.50ms   threads: 2   mode: trace\n"
                     "dropped:  3 records\n"
                     "\n"
                     "thread 0: MainThread (native tid 100)\n"
                     "functions: 3 (showing 1, sorted by calls)\n"
                     "     calls       self      total  self/call total/call  function\n"
                     "         7      180ns      180ns       25ns       25ns  len (builtins)\n"
                     "\n"
                     "thread 1: worker;1 x (native tid 101)\n"
                     "functions: 2 (showing 1, sorted by calls)\n"
                     "     calls       self      total  self/call total/call  function\n"
                     "         2       60ns      100ns       30ns       50ns  fib (app.py:5)\n");
    free(text);
    cp_profile_free(&p);
    cp_buf_free(&f);
}
END_TEST

START_TEST(text_truncated)
{
    cp_buf f;
    cp_profile p;
    char err[256];
    tb_sample(&f, false);
    ck_assert_int_eq(cp_profile_load_mem(&p, f.data, f.len - 5, "t.cpyprof", err, sizeof err), 0);
    cp_table_options o = {.sort = CP_SORT_TOTAL, .limit = 0};
    char *text = render(cp_table_write, &p, &o);
    ck_assert_str_eq(text,
                     "command:  python3 app.py 'it'\\''s here'\n"
                     "duration: unknown   threads: 2   mode: trace\n"
                     "dropped:  unknown (no trailer)\n"
                     "warning: profile is truncated (chunk 7 (TREE) at offset 671 cut short: 75 "
                     "of 80 bytes): kept 6 chunks, 671 of 762 bytes\n"
                     "\n"
                     "functions: 3 (showing 3, sorted by total)\n"
                     "     calls       self      total  self/call total/call  function\n"
                     "         1      170ns     1.00us      170ns     1.00us  main (app.py:1)\n"
                     "         6      650ns      800ns      108ns      133ns  fib (app.py:5)\n"
                     "         7      180ns      180ns       25ns       25ns  len (builtins)\n");
    free(text);
    cp_profile_free(&p);
    cp_buf_free(&f);
}
END_TEST

START_TEST(json_report)
{
    cp_buf f;
    cp_profile p;
    tb_sample(&f, true);
    TB_LOAD(&p, &f);
    cp_table_options o = {.sort = CP_SORT_CALLS, .limit = 2};
    char *text = render(cp_report_json_write, &p, &o);
    ck_assert_str_eq(
        text,
        "{\n"
        "  \"schema\": \"cpyprof.report/1\",\n"
        "  \"meta\": {\"cpyprof_version\": \"0.1.0\", \"mode\": \"trace\", \"argv\": "
        "\"python3\\u0000app.py\\u0000it's here\"},\n"
        "  \"threads\": [\n"
        "    {\"id\": 0, \"name\": \"MainThread\", \"ident\": 140000, \"native_tid\": 100},\n"
        "    {\"id\": 1, \"name\": \"worker;1\\nx\", \"ident\": 140001, \"native_tid\": 101}\n"
        "  ],\n"
        "  \"dropped\": 3,\n"
        "  \"truncated\": false,\n"
        "  \"duration_ns\": 2500000,\n"
        "  \"functions\": [\n"
        "    {\"name\": \"fib\", \"file\": \"app.py\", \"line\": 5, \"kind\": \"python\", "
        "\"calls\": 8, \"self_ns\": 710, \"total_ns\": 900},\n"
        "    {\"name\": \"len\", \"file\": \"builtins\", \"line\": 0, \"kind\": \"builtin\", "
        "\"calls\": 7, \"self_ns\": 180, \"total_ns\": 180}\n"
        "  ]\n"
        "}\n");
    free(text);

    o.per_thread = true;
    o.limit = 1;
    o.sort = CP_SORT_NAME;
    text = render(cp_report_json_write, &p, &o);
    ck_assert_str_eq(
        text,
        "{\n"
        "  \"schema\": \"cpyprof.report/1\",\n"
        "  \"meta\": {\"cpyprof_version\": \"0.1.0\", \"mode\": \"trace\", \"argv\": "
        "\"python3\\u0000app.py\\u0000it's here\"},\n"
        "  \"threads\": [\n"
        "    {\"id\": 0, \"name\": \"MainThread\", \"ident\": 140000, \"native_tid\": 100, "
        "\"functions\": [\n"
        "      {\"name\": \"fib\", \"file\": \"app.py\", \"line\": 5, \"kind\": \"python\", "
        "\"calls\": 6, \"self_ns\": 650, \"total_ns\": 800}\n"
        "    ]},\n"
        "    {\"id\": 1, \"name\": \"worker;1\\nx\", \"ident\": 140001, \"native_tid\": 101, "
        "\"functions\": [\n"
        "      {\"name\": \"[truncated]\", \"file\": null, \"line\": 0, \"kind\": \"special\", "
        "\"calls\": 0, \"self_ns\": 40, \"total_ns\": 40}\n"
        "    ]}\n"
        "  ],\n"
        "  \"dropped\": 3,\n"
        "  \"truncated\": false,\n"
        "  \"duration_ns\": 2500000,\n"
        "  \"functions\": [\n"
        "    {\"name\": \"[truncated]\", \"file\": null, \"line\": 0, \"kind\": \"special\", "
        "\"calls\": 0, \"self_ns\": 40, \"total_ns\": 40}\n"
        "  ]\n"
        "}\n");
    free(text);
    cp_profile_free(&p);
    cp_buf_free(&f);
}
END_TEST

START_TEST(json_empty)
{
    cp_buf f;
    cp_profile p;
    tb_begin(&f);
    TB_LOAD(&p, &f);
    cp_table_options o = {.sort = CP_SORT_SELF};
    char *text = render(cp_report_json_write, &p, &o);
    ck_assert_str_eq(text, "{\n"
                           "  \"schema\": \"cpyprof.report/1\",\n"
                           "  \"meta\": {},\n"
                           "  \"threads\": [],\n"
                           "  \"dropped\": 0,\n"
                           "  \"truncated\": true,\n"
                           "  \"duration_ns\": null,\n"
                           "  \"functions\": []\n"
                           "}\n");
    free(text);
    cp_profile_free(&p);
    cp_buf_free(&f);
}
END_TEST

static char *json_of(const char *s, size_t n)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    cp_json_string(out, s, n);
    fclose(out);
    return text;
}

START_TEST(text_helpers)
{
    char buf[64];
    ck_assert_str_eq(cp_fmt_ns(0, buf, sizeof buf), "0ns");
    ck_assert_str_eq(cp_fmt_ns(999, buf, sizeof buf), "999ns");
    ck_assert_str_eq(cp_fmt_ns(1234, buf, sizeof buf), "1.23us");
    ck_assert_str_eq(cp_fmt_ns(45600000, buf, sizeof buf), "45.60ms");
    ck_assert_str_eq(cp_fmt_ns(3000000000ull, buf, sizeof buf), "3.00s");

    char *j = json_of("a\"b\\c\x01\xc3\xa9\xff\xe2\x82", 11);
    ck_assert_str_eq(j, "\"a\\\"b\\\\c\\u0001\xc3\xa9\\ufffd\\ufffd\\ufffd\"");
    free(j);

    ck_assert_str_eq(cp_argv_join("a\0b c\0", 6, buf, sizeof buf), "a 'b c'");
    ck_assert_str_eq(cp_argv_join("", 0, buf, sizeof buf), "");
    ck_assert_str_eq(cp_argv_join("x\0\0y", 4, buf, sizeof buf), "x '' y");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("table");
    TCase *tc = tcase_create("table");
    tcase_add_test(tc, sorting);
    tcase_add_test(tc, text_table);
    tcase_add_test(tc, text_truncated);
    tcase_add_test(tc, json_report);
    tcase_add_test(tc, json_empty);
    tcase_add_test(tc, text_helpers);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

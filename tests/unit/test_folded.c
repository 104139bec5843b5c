/* test_folded.c — exact folded-stack text for the sample profile. */
#include "report/folded.h"
#include "profile_builder.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

static char *folded(const cp_profile *p, bool per_thread)
{
    char *text = NULL;
    size_t len = 0;
    char err[256];
    FILE *out = open_memstream(&text, &len);
    ck_assert_msg(cp_folded_write(out, p, per_thread, err, sizeof err) == 0, "%s", err);
    fclose(out);
    return text;
}

START_TEST(merged_threads)
{
    cp_buf f;
    cp_profile p;
    tb_sample(&f, true);
    TB_LOAD(&p, &f);
    char *text = folded(&p, false);
    ck_assert_str_eq(text, "fib (app.py:5) 60\n"
                           "fib (app.py:5);fib (app.py:5);[truncated] 40\n"
                           "main (app.py:1) 170\n"
                           "main (app.py:1);fib (app.py:5) 200\n"
                           "main (app.py:1);fib (app.py:5);fib (app.py:5) 300\n"
                           "main (app.py:1);fib (app.py:5);fib (app.py:5);fib (app.py:5) 150\n"
                           "main (app.py:1);fib (app.py:5);fib (app.py:5);fib (app.py:5);"
                           "len (builtins) 50\n"
                           "main (app.py:1);fib (app.py:5);len (builtins) 100\n"
                           "main (app.py:1);len (builtins) 30\n");
    free(text);
    cp_profile_free(&p);
    cp_buf_free(&f);
}
END_TEST

/* Per thread: the ';' and the newline of "worker;1\nx" are replaced. */
START_TEST(per_thread)
{
    cp_buf f;
    cp_profile p;
    tb_sample(&f, true);
    TB_LOAD(&p, &f);
    char *text = folded(&p, true);
    ck_assert_str_eq(text, "thread MainThread;main (app.py:1) 170\n"
                           "thread MainThread;main (app.py:1);fib (app.py:5) 200\n"
                           "thread MainThread;main (app.py:1);fib (app.py:5);fib (app.py:5) 300\n"
                           "thread MainThread;main (app.py:1);fib (app.py:5);fib (app.py:5);"
                           "fib (app.py:5) 150\n"
                           "thread MainThread;main (app.py:1);fib (app.py:5);fib (app.py:5);"
                           "fib (app.py:5);len (builtins) 50\n"
                           "thread MainThread;main (app.py:1);fib (app.py:5);len (builtins) 100\n"
                           "thread MainThread;main (app.py:1);len (builtins) 30\n"
                           "thread worker,1 x;fib (app.py:5) 60\n"
                           "thread worker,1 x;fib (app.py:5);fib (app.py:5);[truncated] 40\n");
    free(text);
    cp_profile_free(&p);
    cp_buf_free(&f);
}
END_TEST

/* Identical stacks from different threads and TREE chunks become one line;
 * an empty profile gives empty output. */
START_TEST(merge_and_empty)
{
    const char *s[] = {"f", "a.py"};
    struct cpyprof_func_rec fn = {.id = 0, .name = 0, .file = 1, .line = 2};
    tb_node n[] = {{CPYPROF_NONE, 0, 1, 10}};
    struct cpyprof_trailer_rec tr = {0};
    cp_buf f;
    tb_begin(&f);
    tb_strings(&f, 0, s, 2);
    tb_funcs(&f, &fn, 1);
    tb_tree(&f, 0, n, 1);
    tb_tree(&f, 0, n, 1);
    tb_tree(&f, 5, n, 1);
    tb_trailer(&f, &tr);
    cp_profile p;
    TB_LOAD(&p, &f);
    char *text = folded(&p, false);
    ck_assert_str_eq(text, "f (a.py:2) 30\n");
    free(text);
    text = folded(&p, true);
    ck_assert_str_eq(text, "thread #0;f (a.py:2) 20\nthread #5;f (a.py:2) 10\n");
    free(text);
    cp_profile_free(&p);
    cp_buf_free(&f);

    tb_begin(&f);
    tb_trailer(&f, &tr);
    TB_LOAD(&p, &f);
    text = folded(&p, false);
    ck_assert_str_eq(text, "");
    free(text);
    cp_profile_free(&p);
    cp_buf_free(&f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("folded");
    TCase *tc = tcase_create("folded");
    tcase_add_test(tc, merged_threads);
    tcase_add_test(tc, per_thread);
    tcase_add_test(tc, merge_and_empty);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

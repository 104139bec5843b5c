/* test_outpath.c — one file per process with subprocesses on (cp_output_path). */
#include "core/config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char buf[CP_PATH_MAX];
static char err[256];

static const char *path_of(const char *output, bool subprocesses, long pid)
{
    cp_config c;
    cp_config_defaults(&c);
    ck_assert_int_eq(cp_config_set(&c, "output", output, "", err, sizeof err), 0);
    c.subprocesses = subprocesses;
    ck_assert_int_eq(cp_output_path(&c, pid, buf, sizeof buf, err, sizeof err), 0);
    return buf;
}

START_TEST(test_off_is_unchanged)
{
    ck_assert_str_eq(path_of("out.cpyprof", false, 42), "out.cpyprof");
    ck_assert_str_eq(path_of("/x/y/", false, 42), "/x/y/");
}
END_TEST

START_TEST(test_pid_before_extension)
{
    ck_assert_str_eq(path_of("out.cpyprof", true, 1234), "out.1234.cpyprof");
    ck_assert_str_eq(path_of("cpyprof.out", true, 7), "cpyprof.7.out");
    ck_assert_str_eq(path_of("/tmp/a.b/prof", true, 7), "/tmp/a.b/prof.7");
    ck_assert_str_eq(path_of("/tmp/a.b/p.tar.gz", true, 7), "/tmp/a.b/p.tar.7.gz");
    ck_assert_str_eq(path_of("dir/.hidden", true, 9), "dir/.hidden.9");
    ck_assert_str_eq(path_of("prof", true, 9), "prof.9");
}
END_TEST

START_TEST(test_directory)
{
    ck_assert_str_eq(path_of("/no/such/dir/", true, 55), "/no/such/dir/cpyprof.55.out");
    char tmpl[] = "/tmp/cpyprof-outpath-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(tmpl));
    char want[256];
    snprintf(want, sizeof want, "%s/cpyprof.56.out", tmpl);
    ck_assert_str_eq(path_of(tmpl, true, 56), want); /* an existing directory, no '/' */
    rmdir(tmpl);
}
END_TEST

START_TEST(test_too_long)
{
    cp_config c;
    cp_config_defaults(&c);
    memset(c.output, 'a', sizeof c.output - 1);
    c.output[sizeof c.output - 1] = '\0';
    c.subprocesses = true;
    ck_assert_int_eq(cp_output_path(&c, 1, buf, sizeof buf, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "too long"));
}
END_TEST

START_TEST(test_config_key)
{
    cp_config c;
    cp_config_defaults(&c);
    ck_assert(!c.subprocesses);
    char *env[] = {"CPYPROF_SUBPROCESSES=1", NULL};
    ck_assert_int_eq(cp_config_from_env(&c, env, err, sizeof err), 0);
    ck_assert(c.subprocesses);
    ck_assert_int_eq(cp_config_set(&c, "subprocesses", "maybe", "--", err, sizeof err), -1);
    ck_assert_str_eq(err, "--subprocesses: 'maybe' is not a boolean (expected 1/0, true/false, "
                          "yes/no, on/off)");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("outpath");
    TCase *tc = tcase_create("outpath");
    tcase_add_test(tc, test_off_is_unchanged);
    tcase_add_test(tc, test_pid_before_extension);
    tcase_add_test(tc, test_directory);
    tcase_add_test(tc, test_too_long);
    tcase_add_test(tc, test_config_key);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* test_symbols.c — the native symbolizer (src/native/symbols.c, compiled
 * into this test directly; linked with libelf and libdl). */
#include "../../src/native/symbols.c"

#include <check.h>
#include <stdint.h>
#include <sys/mman.h>

static cp_symbols S;

static void teardown(void)
{
    cp_symbols_destroy(&S);
}

/* A static function: only in this binary's .symtab, not its .dynsym. */
static __attribute__((noinline)) int local_function_for_test(int x)
{
    return x * 3 + 1;
}

START_TEST(libc_exported)
{
    char name[256], obj[256];
    uintptr_t a = (uintptr_t)&qsort + 4;
    ck_assert_int_eq(cp_symbols_resolve(&S, a, name, sizeof name, obj, sizeof obj), 1);
    ck_assert_str_eq(name, "qsort");
    ck_assert_msg(strncmp(obj, "libc.so", 7) == 0, "object %s", obj);
}
END_TEST

START_TEST(self_static)
{
    char name[256], obj[256];
    ck_assert_int_eq(local_function_for_test(1), 4);
    uintptr_t a = (uintptr_t)&local_function_for_test + 1;
    ck_assert_int_eq(cp_symbols_resolve(&S, a, name, sizeof name, obj, sizeof obj), 1);
    ck_assert_str_eq(name, "local_function_for_test");
    ck_assert_str_eq(obj, "test_symbols");
    /* the cache answers the same the second time */
    ck_assert_int_eq(cp_symbols_resolve(&S, a, name, sizeof name, obj, sizeof obj), 1);
    ck_assert_str_eq(name, "local_function_for_test");
    uintptr_t lo, hi;
    ck_assert_int_eq(cp_symbols_range(&S, a, &lo, &hi), 0);
    ck_assert_uint_eq(lo, (uintptr_t)&local_function_for_test);
    ck_assert_uint_gt(hi, a);
}
END_TEST

START_TEST(unknown_address)
{
    char name[256], obj[256];
    /* anonymous memory: in no object */
    void *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(p, MAP_FAILED);
    ck_assert_int_eq(cp_symbols_resolve(&S, (uintptr_t)p + 16, name, sizeof name, obj, sizeof obj),
                     0);
    char want[64];
    snprintf(want, sizeof want, "0x%llx", (unsigned long long)((uintptr_t)p + 16));
    ck_assert_str_eq(name, want);
    munmap(p, 4096);
}
END_TEST

START_TEST(object_offset_fallback)
{
    /* An address inside libc's ELF header page: in the object, in no
     * function symbol -> "libc.so.6+0x10". */
    char name[256], obj[256];
    Dl_info info;
    ck_assert(dladdr((void *)&qsort, &info));
    uintptr_t a = (uintptr_t)info.dli_fbase + 0x10;
    ck_assert_int_eq(cp_symbols_resolve(&S, a, name, sizeof name, obj, sizeof obj), 0);
    char want[300];
    snprintf(want, sizeof want, "%s+0x10", obj);
    ck_assert_str_eq(name, want);
    ck_assert_msg(strncmp(obj, "libc.so", 7) == 0, "object %s", obj);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("symbols");
    TCase *tc = tcase_create("resolve");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, libc_exported);
    tcase_add_test(tc, self_static);
    tcase_add_test(tc, unknown_address);
    tcase_add_test(tc, object_offset_fallback);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

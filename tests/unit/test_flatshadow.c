/* test_flatshadow.c — the allocation counter's flat size shadow
 * (core/flatshadow.h): slots of aligned addresses in their window's array,
 * none for unaligned addresses, addresses above 47 bits, windows past the
 * limit, or before init / after clear. */
#include "core/flatshadow.h"

#include <check.h>
#include <stdlib.h>

#define GIB ((uintptr_t)1 << CP_FLAT_WINDOW_BITS)

START_TEST(test_slots_per_window)
{
    cp_flat f;
    ck_assert(cp_flat_init(&f));
    const uintptr_t a = 0x7f1234560000ull, b = 0x555555554000ull;
    ck_assert_ptr_null(cp_flat_slot(&f, a)); /* no window yet */
    uint16_t *ea = cp_flat_slot_make(&f, a);
    ck_assert_ptr_nonnull(ea);
    ck_assert_uint_eq(*ea, 0);
    *ea = 100;
    ck_assert_ptr_eq(cp_flat_slot(&f, a), ea);
    /* neighbouring granules are neighbouring slots */
    ck_assert_ptr_eq(cp_flat_slot(&f, a + 16), ea + 1);
    ck_assert_ptr_eq(cp_flat_slot(&f, a - 16), ea - 1);
    /* the window's first and last granules */
    uintptr_t w0 = a & ~(GIB - 1);
    ck_assert_ptr_eq(cp_flat_slot(&f, w0) + (a - w0) / 16, ea);
    ck_assert_ptr_nonnull(cp_flat_slot(&f, w0 + GIB - 16));
    ck_assert_ptr_null(cp_flat_slot(&f, w0 + GIB)); /* the next window: none yet */
    uint16_t *eb = cp_flat_slot_make(&f, b);
    ck_assert_ptr_nonnull(eb);
    ck_assert_uint_eq(*eb, 0); /* another window's array */
    *eb = 7;
    ck_assert_uint_eq(*cp_flat_slot(&f, a), 100);
    ck_assert_uint_eq(*cp_flat_slot(&f, b), 7);
    ck_assert_uint_eq(f.nwindows, 2);
    cp_flat_clear(&f);
    ck_assert_ptr_null(cp_flat_slot(&f, a));
    ck_assert_ptr_null(cp_flat_slot_make(&f, a));
    ck_assert_ptr_null(cp_flat_slot_make(&f, 0));
}
END_TEST

START_TEST(test_no_slot)
{
    cp_flat f;
    ck_assert(cp_flat_init(&f));
    const uintptr_t a = 0x7f1234560000ull;
    ck_assert_ptr_nonnull(cp_flat_slot_make(&f, a));
    for (uintptr_t off = 1; off < 16; off++)
        ck_assert_ptr_null(cp_flat_slot_make(&f, a + off));        /* unaligned */
    ck_assert_ptr_null(cp_flat_slot_make(&f, (uintptr_t)1 << 47)); /* above 47 bits */
    ck_assert_ptr_null(cp_flat_slot_make(&f, UINTPTR_MAX & ~(uintptr_t)15));
    ck_assert_uint_eq(f.nwindows, 1);
    cp_flat_clear(&f);
}
END_TEST

START_TEST(test_window_limit)
{
    cp_flat f;
    ck_assert(cp_flat_init(&f));
    for (uintptr_t w = 1; w <= CP_FLAT_MAX_WINDOWS; w++)
        ck_assert_ptr_nonnull(cp_flat_slot_make(&f, w * GIB + 32));
    ck_assert_ptr_null(cp_flat_slot_make(&f, (CP_FLAT_MAX_WINDOWS + 1) * GIB));
    ck_assert_ptr_nonnull(cp_flat_slot(&f, 3 * GIB)); /* the others stay */
    cp_flat_clear(&f);
    ck_assert_uint_eq(f.nwindows, 0);
}
END_TEST

START_TEST(test_before_init)
{
    /* what alloc.c's static initialiser leaves: nothing has a slot */
    cp_flat f = CP_FLAT_NONE;
    ck_assert_ptr_null(cp_flat_slot(&f, 0x7f1234560000ull));
    ck_assert_ptr_null(cp_flat_slot_make(&f, 0x7f1234560000ull));
    ck_assert_ptr_null(cp_flat_slot(&f, 0)); /* the one address the mask lets through */
    ck_assert_ptr_null(cp_flat_slot_make(&f, 0));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("flatshadow");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_slots_per_window);
    tcase_add_test(tc, test_no_slot);
    tcase_add_test(tc, test_window_limit);
    tcase_add_test(tc, test_before_init);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

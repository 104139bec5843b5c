/* test_tree.c — the per-thread call tree, the symbol table and the
 * interpreter check (core units the profile hook relies on). */
#include "core/pycheck.h"
#include "core/symtab.h"
#include "core/tree.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t enter(cp_tree *t, uint32_t parent, uint64_t key, uint32_t func)
{
    cp_tree_node *p = parent == CP_TREE_ROOT ? NULL : cp_tree_at(t, parent);
    cp_tree_node *n = cp_tree_enter(t, p, key, func);
    ck_assert_ptr_nonnull(n);
    n->calls++;
    return n->index;
}

static uint32_t find(cp_tree *t, uint32_t parent, uint64_t key)
{
    cp_tree_node *n = cp_tree_find(t, parent == CP_TREE_ROOT ? NULL : cp_tree_at(t, parent), key);
    return n ? n->index : CP_TREE_ROOT;
}

START_TEST(tree_paths_are_distinct_nodes)
{
    cp_tree t;
    ck_assert_int_eq(cp_tree_init(&t), 0);
    uint32_t main_ = enter(&t, CP_TREE_ROOT, 10, 1);
    uint32_t a1 = enter(&t, main_, 20, 2);
    uint32_t b = enter(&t, a1, 30, 3);
    uint32_t a2 = enter(&t, main_, 20, 2); /* same path again: same node */
    uint32_t c = enter(&t, main_, 40, 4);
    uint32_t a_under_c = enter(&t, c, 20, 2); /* same function, other path */
    ck_assert_uint_eq(a1, a2);
    ck_assert_uint_ne(a1, a_under_c);
    ck_assert_uint_eq(cp_tree_count(&t), 5);
    ck_assert_uint_eq(cp_tree_at(&t, a1)->calls, 2);
    ck_assert_uint_eq(cp_tree_at(&t, b)->parent, a1);
    ck_assert_uint_eq(cp_tree_at(&t, a_under_c)->parent, c);
    ck_assert_uint_eq(cp_tree_at(&t, a_under_c)->func, 2);
    /* parents always precede children: the file format relies on it */
    for (uint32_t i = 0; i < cp_tree_count(&t); i++) {
        uint32_t p = cp_tree_at(&t, i)->parent;
        ck_assert(p == CP_TREE_ROOT || p < i);
    }
    cp_tree_destroy(&t);
}
END_TEST

START_TEST(tree_grows_past_chunks_and_hash)
{
    cp_tree t;
    ck_assert_int_eq(cp_tree_init(&t), 0);
    /* A wide and deep tree: 3 chunks of nodes, many hash doublings. */
    uint32_t parent = CP_TREE_ROOT;
    for (uint32_t i = 0; i < 5000; i++)
        parent = enter(&t, parent, 1000 + i, i);
    for (uint32_t i = 0; i < 7000; i++)
        enter(&t, 0, 2 * (uint64_t)i + 100001, i);
    ck_assert_uint_eq(cp_tree_count(&t), 12000);
    /* Every node is found again, with its function. */
    parent = CP_TREE_ROOT;
    for (uint32_t i = 0; i < 5000; i++) {
        uint32_t n = find(&t, parent, 1000 + i);
        ck_assert_uint_ne(n, CP_TREE_ROOT);
        ck_assert_uint_eq(cp_tree_at(&t, n)->func, i);
        parent = n;
    }
    for (uint32_t i = 0; i < 7000; i++)
        ck_assert_uint_ne(find(&t, 0, 2 * (uint64_t)i + 100001), CP_TREE_ROOT);
    ck_assert_uint_eq(find(&t, 0, 999999), CP_TREE_ROOT);
    ck_assert_uint_eq(t.full, 0);
    cp_tree_destroy(&t);
}
END_TEST

START_TEST(symtab_interns_and_numbers_densely)
{
    cp_symtab s;
    ck_assert_int_eq(cp_symtab_init(&s), 0);
    ck_assert_uint_eq(cp_symtab_string(&s, "fib", 3), 0);
    ck_assert_uint_eq(cp_symtab_string(&s, "app.py", 6), 1);
    ck_assert_uint_eq(cp_symtab_string(&s, "fibonacci", 3), 0); /* "fib" again */
    char name[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(name, sizeof name, "f%d", i);
        ck_assert_uint_eq(cp_symtab_string(&s, name, strlen(name)), (uint32_t)i + 2);
    }
    ck_assert_uint_eq(cp_symtab_string(&s, "f123", 4), 125);
    uint32_t len;
    ck_assert_str_eq(cp_symtab_str(&s, 125, &len), "f123");
    ck_assert_uint_eq(len, 4);
    ck_assert_uint_eq(cp_symtab_func(&s, 0, 1, 7, 0), 0);
    ck_assert_uint_eq(cp_symtab_func(&s, 0, 1, 9, 0), 1); /* functions are not interned */
    ck_assert_uint_eq(cp_symtab_get_func(&s, 1)->line, 9);
    ck_assert_uint_eq(cp_symtab_nfuncs(&s), 2);
    cp_symtab_destroy(&s);
}
END_TEST

START_TEST(pycheck_accepts_311_only)
{
    char err[256];
    cp_python_facts ok = {"3.11.2 (main, Apr 28 2025) [GCC 12.2.0]", false, 1000, 1000};
    ck_assert_int_eq(cp_python_supported(&ok, err, sizeof err), 0);

    cp_python_facts newer = {"3.12.1 (main) [GCC]", false, -1, 1000};
    ck_assert_int_eq(cp_python_supported(&newer, err, sizeof err), -1);
    ck_assert_str_eq(err, "unsupported Python 3.12.1: this cpyprof supports CPython 3.11 only");

    cp_python_facts dbg = {"3.11.2 (main) [GCC]", true, 1000, 1000};
    ck_assert_int_eq(cp_python_supported(&dbg, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "debug build"));

    cp_python_facts layout = {"3.11.4", false, 1200, 1000};
    ck_assert_int_eq(cp_python_supported(&layout, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "_PyRuntime is 1200 bytes"));

    cp_python_facts odd = {"3.110.0", false, -1, 1000};
    ck_assert_int_eq(cp_python_supported(&odd, err, sizeof err), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tree");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, tree_paths_are_distinct_nodes);
    tcase_add_test(tc, tree_grows_past_chunks_and_hash);
    tcase_add_test(tc, symtab_interns_and_numbers_densely);
    tcase_add_test(tc, pycheck_accepts_311_only);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

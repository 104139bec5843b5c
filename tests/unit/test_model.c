/*
 * test_model.c — the flat table, the tree walk and the merged tree on
 * hand-made trees with recursion, where inclusive time is easy to count
 * twice by mistake.
 */
#include "report/model.h"
#include "profile_builder.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cp_func_stats *row(const cp_flat *f, uint32_t func)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->rows[i].func == func)
            return &f->rows[i];
    ck_abort_msg("function %u not in the table", func);
    return NULL;
}

#define CHECK_ROW(f, func, c, s, t)                                                                \
    do {                                                                                           \
        const cp_func_stats *r_ = row((f), (func));                                                \
        ck_assert_uint_eq(r_->calls, (c));                                                         \
        ck_assert_uint_eq(r_->self_ns, (s));                                                       \
        ck_assert_uint_eq(r_->total_ns, (t));                                                      \
    } while (0)

START_TEST(flat_recursive)
{
    cp_buf f;
    cp_profile p;
    cp_flat flat;
    char err[256];
    tb_sample(&f, true);
    TB_LOAD(&p, &f);

    /* thread 0 alone: fib -> fib -> fib counts its outermost 800 only */
    ck_assert_int_eq(cp_flat_build(&p, 0, &flat, err, sizeof err), 0);
    ck_assert_uint_eq(flat.n, 3);
    CHECK_ROW(&flat, 0, 1, 170, 1000);
    CHECK_ROW(&flat, 1, 6, 650, 800);
    CHECK_ROW(&flat, 2, 7, 180, 180);
    cp_flat_free(&flat);

    ck_assert_int_eq(cp_flat_build(&p, 1, &flat, err, sizeof err), 0);
    ck_assert_uint_eq(flat.n, 2);
    CHECK_ROW(&flat, 1, 2, 60, 100);
    CHECK_ROW(&flat, 3, 0, 40, 40);
    cp_flat_free(&flat);

    /* all threads */
    ck_assert_int_eq(cp_flat_build(&p, -1, &flat, err, sizeof err), 0);
    ck_assert_uint_eq(flat.n, 4);
    CHECK_ROW(&flat, 0, 1, 170, 1000);
    CHECK_ROW(&flat, 1, 8, 710, 900);
    CHECK_ROW(&flat, 2, 7, 180, 180);
    CHECK_ROW(&flat, 3, 0, 40, 40);
    uint64_t self = 0;
    for (size_t i = 0; i < flat.n; i++)
        self += flat.rows[i].self_ns;
    ck_assert_uint_eq(self, 1100); /* self times add up to the roots' totals */
    cp_flat_free(&flat);
    cp_profile_free(&p);
    cp_buf_free(&f);
}
END_TEST

/* a -> b -> a -> b: mutual recursion; and a child whose total exceeds its
 * parent's (a damaged tree) must not make self time negative. */
START_TEST(flat_mutual_recursion_and_clamp)
{
    const char *s[] = {"a", "b", "m"};
    struct cpyprof_func_rec fn[] = {{.id = 10, .name = 0, .file = 2, .line = 1},
                                    {.id = 20, .name = 1, .file = 2, .line = 2}};
    tb_node n[] = {{CPYPROF_NONE, 10, 1, 100},
                   {0, 20, 1, 90},
                   {1, 10, 1, 60},
                   {2, 20, 1, 70} /* > 60 */,
                   {CPYPROF_NONE, 20, 1, 5}};
    struct cpyprof_trailer_rec tr = {0};
    cp_buf f;
    tb_begin(&f);
    tb_strings(&f, 0, s, 3);
    tb_funcs(&f, fn, 2);
    tb_tree(&f, 0, n, 5);
    tb_trailer(&f, &tr);
    cp_profile p;
    TB_LOAD(&p, &f);
    cp_flat flat;
    char err[256];
    ck_assert_int_eq(cp_flat_build(&p, -1, &flat, err, sizeof err), 0);
    /* a: nodes 0, 2: self 10 + 0 (clamped: 60 - 70), total 100 (node 2 is
     * below node 0) */
    CHECK_ROW(&flat, 0, 2, 10, 100);
    /* b: nodes 1, 3, 4: self 30 + 70 + 5, total 90 + 5 (node 3 is below 1) */
    CHECK_ROW(&flat, 1, 3, 105, 95);
    cp_flat_free(&flat);
    cp_profile_free(&p);
    cp_buf_free(&f);
}
END_TEST

typedef struct walk_log {
    char text[512];
    int stop_after;
    int visits;
} walk_log;

static int log_visit(void *ctx, const cp_thread *t, const uint32_t *path, size_t depth, bool leave)
{
    walk_log *w = ctx;
    size_t len = strlen(w->text);
    snprintf(w->text + len, sizeof w->text - len, "%s%u/%zu ", leave ? "-" : "+", path[depth - 1],
             depth);
    if (!leave && depth > 1)
        ck_assert_uint_eq(t->nodes[path[depth - 1]].parent, path[depth - 2]);
    return ++w->visits == w->stop_after ? 7 : 0;
}

START_TEST(tree_walk_order)
{
    cp_buf f;
    cp_profile p;
    tb_sample(&f, true);
    TB_LOAD(&p, &f);
    walk_log w = {.stop_after = -1};
    ck_assert_int_eq(cp_tree_walk(&p.threads[0], log_visit, &w), 0);
    ck_assert_str_eq(w.text, "+0/1 +1/2 +2/3 +3/4 +4/5 -4/5 -3/4 -2/3 +5/3 -5/3 -1/2 +6/2 -6/2 "
                             "-0/1 ");
    walk_log stop = {.stop_after = 3};
    ck_assert_int_eq(cp_tree_walk(&p.threads[0], log_visit, &stop), 7);
    ck_assert_str_eq(stop.text, "+0/1 +1/2 +2/3 ");
    cp_profile_free(&p);
    cp_buf_free(&f);
}
END_TEST

/* A 100000-deep recursion: no stack overflow, outermost-only total. */
START_TEST(deep_tree)
{
    enum { DEPTH = 100000 };
    const char *s[] = {"r", "f.py"};
    struct cpyprof_func_rec fn = {.id = 0, .name = 0, .file = 1, .line = 3};
    tb_node *n = malloc(DEPTH * sizeof *n);
    for (uint32_t i = 0; i < DEPTH; i++)
        n[i] = (tb_node){i ? i - 1 : CPYPROF_NONE, 0, 1, (uint64_t)(DEPTH - i)};
    struct cpyprof_trailer_rec tr = {0};
    cp_buf f;
    tb_begin(&f);
    tb_strings(&f, 0, s, 2);
    tb_funcs(&f, &fn, 1);
    tb_tree(&f, 0, n, DEPTH);
    tb_trailer(&f, &tr);
    free(n);
    cp_profile p;
    TB_LOAD(&p, &f);
    cp_flat flat;
    char err[256];
    ck_assert_int_eq(cp_flat_build(&p, -1, &flat, err, sizeof err), 0);
    CHECK_ROW(&flat, 0, DEPTH, DEPTH, DEPTH);
    cp_flat_free(&flat);
    cp_merged m;
    ck_assert_int_eq(cp_merged_build(&p, false, &m, err, sizeof err), 0);
    ck_assert_uint_eq(m.n, DEPTH + 1);
    ck_assert_uint_eq(m.nodes[DEPTH].depth, DEPTH);
    ck_assert_uint_eq(m.nodes[0].total_ns, DEPTH);
    cp_merged_free(&m);
    cp_profile_free(&p);
    cp_buf_free(&f);
}
END_TEST

START_TEST(merged_tree)
{
    cp_buf f;
    cp_profile p;
    cp_merged m;
    char err[256];
    tb_sample(&f, true);
    TB_LOAD(&p, &f);
    ck_assert_int_eq(cp_merged_build(&p, false, &m, err, sizeof err), 0);
    ck_assert_uint_eq(m.nodes[0].total_ns, 1100);
    /* 4 function frames; labels sorted */
    ck_assert_uint_eq(m.n_frames, 4);
    ck_assert_str_eq(m.frames[0].label, "[truncated]");
    ck_assert_str_eq(m.frames[1].label, "fib (app.py:5)");
    ck_assert_str_eq(m.frames[2].label, "len (builtins)");
    ck_assert_str_eq(m.frames[3].label, "main (app.py:1)");
    ck_assert_str_eq(m.frames[1].name, "fib");
    ck_assert_str_eq(m.frames[1].detail, "app.py:5");
    ck_assert_ptr_null(m.frames[0].detail);
    uint32_t *order = malloc(m.n * sizeof *order);
    cp_merged_preorder(&m, order);
    ck_assert_uint_eq(order[0], 0);
    /* first child of the root: fib (thread 1's root) before main */
    const cp_mnode *a = &m.nodes[order[1]];
    ck_assert_str_eq(m.frames[a->frame].label, "fib (app.py:5)");
    ck_assert_uint_eq(a->total_ns, 100);
    ck_assert_uint_eq(a->self_ns, 60);
    for (size_t k = 1; k < m.n; k++) /* pre-order: parent before child */
        for (size_t j = k; j < m.n; j++)
            ck_assert_uint_ne(order[j], m.nodes[order[k]].parent);
    free(order);
    cp_merged_free(&m);

    ck_assert_int_eq(cp_merged_build(&p, true, &m, err, sizeof err), 0);
    ck_assert_uint_eq(m.n_frames, 6);
    ck_assert_str_eq(m.frames[4].label, "thread MainThread");
    ck_assert_str_eq(m.frames[5].label, "thread worker,1 x");
    ck_assert_str_eq(m.frames[5].name, "thread worker;1\nx");
    ck_assert_uint_eq(m.nodes[m.nodes[0].first_child].total_ns, 1000);
    cp_merged_free(&m);
    cp_profile_free(&p);
    cp_buf_free(&f);
}
END_TEST

START_TEST(labels)
{
    cp_buf f;
    cp_profile p;
    char buf[64];
    tb_sample(&f, true);
    TB_LOAD(&p, &f);
    cp_func_label(&p, 0, buf, sizeof buf);
    ck_assert_str_eq(buf, "main (app.py:1)");
    cp_func_label(&p, 2, buf, sizeof buf);
    ck_assert_str_eq(buf, "len (builtins)");
    cp_func_label(&p, 3, buf, sizeof buf);
    ck_assert_str_eq(buf, "[truncated]");
    ck_assert_uint_eq(cp_func_label(&p, 0, buf, 4), strlen("main (app.py:1)"));
    ck_assert_str_eq(cp_func_location(&p, 2, buf, sizeof buf), "builtins");
    ck_assert_str_eq(cp_thread_name(&p, 0, buf, sizeof buf), "MainThread");
    ck_assert_str_eq(cp_func_name(&p, 99), "?");
    cp_profile_free(&p);
    cp_buf_free(&f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("model");
    tcase_add_test(tc, flat_recursive);
    tcase_add_test(tc, flat_mutual_recursion_and_clamp);
    tcase_add_test(tc, tree_walk_order);
    tcase_add_test(tc, deep_tree);
    tcase_add_test(tc, merged_tree);
    tcase_add_test(tc, labels);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

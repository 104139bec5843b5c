/* test_alloc_report.c — the ALLOC and GC chunks as the tools read them:
 * parsing, the per-function table (self values, outermost-only totals in
 * recursion), the flamegraph nodes, the GC summary, and refusal of chunks
 * that contradict themselves. */
#include "profile_builder.h"
#include "report/alloc.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

static void alloc_node(cp_buf *b, uint32_t parent, uint32_t func, uint64_t allocs, uint64_t bytes,
                       uint64_t frees, uint64_t freed)
{
    cp_buf_u32(b, parent);
    cp_buf_u32(b, func);
    cp_buf_u64(b, allocs);
    cp_buf_u64(b, bytes);
    cp_buf_u64(b, frees);
    cp_buf_u64(b, freed);
}

/* Thread 0: main (0) -> fib (1) -> fib (1) -> len (2), fib's recursion
 * allocating; a run record naming node 2 as the peak; two collections. */
static void build(cp_buf *f, bool bad_parent, bool trailer)
{
    tb_sample(f, false);
    cp_buf b;
    cp_buf_init(&b);
    cp_buf_u32(&b, CPYPROF_ALLOC_THREAD);
    cp_buf_u32(&b, 0);
    cp_buf_u32(&b, 4);
    alloc_node(&b, CPYPROF_NONE, 0, 1, 10, 0, 0);
    alloc_node(&b, 0, 1, 2, 100, 0, 0);
    alloc_node(&b, bad_parent ? 2 : 1, 1, 3, 1000, 1, 50);
    alloc_node(&b, 2, 2, 1, 5, 4, 400);
    tb_chunk(f, CPYPROF_CHUNK_ALLOC, &b);
    cp_buf_u32(&b, CPYPROF_ALLOC_RUN);
    cp_buf_u32(&b, 0);
    cp_buf_u32(&b, 0); /* peak thread */
    cp_buf_u32(&b, 2); /* peak node */
    cp_buf_u32(&b, 0);
    cp_buf_u64(&b, 1100);
    cp_buf_u64(&b, 665);
    for (int i = 0; i < 5; i++)
        cp_buf_u64(&b, (uint64_t)i);
    tb_chunk(f, CPYPROF_CHUNK_ALLOC, &b);
    cp_buf_u32(&b, 2);
    cp_buf_u32(&b, 0);
    cp_buf_u64(&b, 7);
    for (uint32_t i = 0; i < 2; i++) {
        cp_buf_i64(&b, 1000 * (int64_t)i);
        cp_buf_i64(&b, 300 + 100 * (int64_t)i);
        cp_buf_u32(&b, i * 2);
        cp_buf_u32(&b, 0);
        cp_buf_u32(&b, 1);
        cp_buf_u32(&b, 0);
        cp_buf_u64(&b, 10 + i);
        cp_buf_u64(&b, i);
    }
    tb_chunk(f, CPYPROF_CHUNK_GC, &b);
    cp_buf_free(&b);
    if (trailer) {
        struct cpyprof_trailer_rec tr = {.threads = 2, .duration_ns = 2500000};
        tb_trailer(f, &tr);
    }
}

START_TEST(test_parse_and_table)
{
    cp_buf f;
    build(&f, false, true);
    cp_alloc_data a;
    char err[256];
    ck_assert_int_eq(cp_alloc_parse(f.data, f.len, &a, err, sizeof err), 0);
    ck_assert(a.present && a.gc_present);
    ck_assert_uint_eq(a.n_threads, 1);
    ck_assert_uint_eq(a.threads[0].n_nodes, 4);
    ck_assert_uint_eq(a.run.peak_bytes, 1100);
    ck_assert_uint_eq(a.run.live_bytes, 665);
    ck_assert_uint_eq(a.run.frees_untracked, 4);
    ck_assert_uint_eq(a.n_gc, 2);
    ck_assert_uint_eq(a.gc_dropped, 7);
    ck_assert_int_eq(a.gc[1].duration_ns, 400);
    ck_assert_uint_eq(a.gc[1].generation, 2);

    cp_alloc_func *rows;
    size_t n;
    ck_assert_int_eq(cp_alloc_funcs(&a, &rows, &n), 0);
    ck_assert_uint_eq(n, 3);
    /* by bytes: fib 1100, main 10, len 5 */
    ck_assert_uint_eq(rows[0].func, 1);
    ck_assert_uint_eq(rows[0].allocs, 5);
    ck_assert_uint_eq(rows[0].alloc_bytes, 1100);
    ck_assert_uint_eq(rows[0].frees, 1);
    ck_assert_uint_eq(rows[0].alloc_bytes_total, 1105); /* outer fib only */
    ck_assert_uint_eq(rows[1].func, 0);
    ck_assert_uint_eq(rows[1].alloc_bytes_total, 1115);
    ck_assert_uint_eq(rows[2].func, 2);
    ck_assert_uint_eq(rows[2].free_bytes, 400);
    free(rows);

    cp_gc_func *g;
    ck_assert_int_eq(cp_gc_funcs(&a, &g, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(g[0].collections, 2);
    ck_assert_uint_eq(g[0].ns, 700);
    free(g);

    cp_profile p;
    TB_LOAD(&p, &f);
    cp_flame_node *nodes;
    char *names;
    ck_assert_int_eq(cp_alloc_flame(&p, &a, CP_ALLOC_BYTES, &nodes, &n, &names, err, sizeof err),
                     0);
    ck_assert_uint_eq(n, 6); /* all, thread, 4 nodes */
    ck_assert_uint_eq(nodes[0].total, 1115);
    ck_assert_str_eq(nodes[2].name, "main");
    ck_assert_uint_eq(nodes[4].total, 1005);
    ck_assert_uint_eq(nodes[5].parent, 4);
    free(nodes);
    free(names);
    ck_assert_int_eq(cp_alloc_flame(&p, &a, CP_ALLOC_COUNT, &nodes, &n, &names, err, sizeof err),
                     0);
    ck_assert_uint_eq(nodes[0].total, 7);
    free(nodes);
    free(names);

    /* text and JSON print without trouble, with the peak stack */
    char *text = NULL;
    size_t tl = 0;
    FILE *out = open_memstream(&text, &tl);
    cp_alloc_print(out, &p, &a, 0);
    cp_alloc_print_json(out, &p, &a);
    fclose(out);
    ck_assert_ptr_nonnull(strstr(text, "stack at the peak"));
    ck_assert_ptr_nonnull(strstr(text, "Garbage collections: 2 (generation 0: 1, 1: 0, 2: 1)"));
    ck_assert_ptr_nonnull(strstr(text, "\"peak_stack\": [{\"name\": \"fib\""));
    free(text);
    cp_profile_free(&p);
    cp_alloc_free(&a);
    cp_buf_free(&f);
}
END_TEST

START_TEST(test_refuses_bad_parent_and_sizes)
{
    cp_buf f;
    build(&f, true, true);
    cp_alloc_data a;
    char err[256];
    ck_assert_int_eq(cp_alloc_parse(f.data, f.len, &a, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "ALLOC node 2 has a bad parent"));
    cp_buf_free(&f);

    /* a thread chunk whose count claims more nodes than it holds */
    tb_begin(&f);
    cp_buf b;
    cp_buf_init(&b);
    cp_buf_u32(&b, CPYPROF_ALLOC_THREAD);
    cp_buf_u32(&b, 0);
    cp_buf_u32(&b, 1000000);
    alloc_node(&b, CPYPROF_NONE, 0, 1, 1, 0, 0);
    tb_chunk(&f, CPYPROF_CHUNK_ALLOC, &b);
    ck_assert_int_eq(cp_alloc_parse(f.data, f.len, &a, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "does not match"));
    cp_buf_free(&f);

    /* a GC chunk one byte short */
    tb_begin(&f);
    cp_buf_u32(&b, 1);
    cp_buf_u32(&b, 0);
    cp_buf_u64(&b, 0);
    for (int i = 0; i < 47; i++)
        cp_buf_bytes(&b, "x", 1);
    tb_chunk(&f, CPYPROF_CHUNK_GC, &b);
    ck_assert_int_eq(cp_alloc_parse(f.data, f.len, &a, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "GC chunk size"));
    cp_buf_free(&b);
    cp_buf_free(&f);
}
END_TEST

START_TEST(test_truncated_keeps_what_is_complete)
{
    cp_buf f;
    build(&f, false, false);
    cp_alloc_data a;
    char err[256];
    /* cut inside the GC chunk: the ALLOC chunks survive */
    ck_assert_int_eq(cp_alloc_parse(f.data, f.len - 10, &a, err, sizeof err), 0);
    ck_assert(a.present);
    ck_assert(!a.gc_present);
    cp_alloc_free(&a);
    /* a flipped byte: CRC mismatch */
    f.data[f.len - 5] ^= 1;
    ck_assert_int_eq(cp_alloc_parse(f.data, f.len, &a, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "GC chunk with a CRC mismatch"));
    cp_buf_free(&f);
}
END_TEST

START_TEST(test_no_alloc_data)
{
    cp_buf f;
    tb_sample(&f, true);
    cp_alloc_data a;
    char err[256];
    ck_assert_int_eq(cp_alloc_parse(f.data, f.len, &a, err, sizeof err), 0);
    ck_assert(!a.present && !a.gc_present);
    cp_profile p;
    TB_LOAD(&p, &f);
    cp_flame_node *nodes;
    size_t n;
    char *names;
    ck_assert_int_eq(cp_alloc_flame(&p, &a, CP_ALLOC_BYTES, &nodes, &n, &names, err, sizeof err),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "record with --alloc"));
    cp_profile_free(&p);
    cp_buf_free(&f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("alloc_report");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_parse_and_table);
    tcase_add_test(tc, test_refuses_bad_parent_and_sizes);
    tcase_add_test(tc, test_truncated_keeps_what_is_complete);
    tcase_add_test(tc, test_no_alloc_data);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* test_sample_agg.c — sample records to stack trees (src/python/sample_agg.c,
 * which is Python-free and compiled into this test directly). */
#include "../../src/python/sample_agg.c"

#include <check.h>

static cp_sfuncs F;
static cp_sagg A;

static void setup(void)
{
    cp_sfuncs_init(&F);
    ck_assert_int_eq(cp_sagg_init(&A, &F, 99), 0);
}

static void teardown(void)
{
    cp_sagg_destroy(&A);
    cp_sfuncs_destroy(&F);
}

static void sample(uint32_t n, uint32_t flags, uint64_t w)
{
    cp_record r = {.kind = CP_SREC_SAMPLE, .a = n, .b = flags, .c = w};
    cp_sagg_feed(&A, &r);
}

static void frame(uint32_t fid, uint32_t line)
{
    cp_record r = {.kind = CP_SREC_FRAME, .a = fid, .b = line};
    cp_sagg_feed(&A, &r);
}

static void code(const char *name, const char *file, uint32_t first, uint32_t line)
{
    uint32_t nl = (uint32_t)strlen(name), fl = (uint32_t)strlen(file);
    cp_record r = {
        .kind = CP_SREC_CODE, .a = first, .b = line | ((uint64_t)nl << 32) | ((uint64_t)fl << 48)};
    cp_sagg_feed(&A, &r);
    char all[2048];
    memcpy(all, name, nl);
    memcpy(all + nl, file, fl);
    for (uint32_t done = 0; done < nl + fl; done += CP_SREC_TEXT_BYTES) {
        uint32_t k = nl + fl - done < CP_SREC_TEXT_BYTES ? nl + fl - done : CP_SREC_TEXT_BYTES;
        cp_srec_text_pack(&r, all + done, k);
        cp_sagg_feed(&A, &r);
    }
}

/* Self samples of the node reached by fids (outermost first), or -1. */
static long self_of(const uint32_t *fids, size_t n, uint64_t *gil)
{
    uint32_t parent = CP_TREE_ROOT;
    long found = -1;
    for (size_t d = 0; d < n; d++) {
        found = -1;
        for (uint32_t i = 0; i < cp_tree_count(&A.tree); i++) {
            cp_tree_node *nd = cp_tree_at(&A.tree, i);
            if (nd->parent == parent && nd->func == fids[d]) {
                found = i;
                break;
            }
        }
        if (found < 0)
            return -1;
        parent = (uint32_t)found;
    }
    cp_tree_node *nd = cp_tree_at(&A.tree, (uint32_t)found);
    if (gil)
        *gil = nd->ticks;
    return (long)nd->calls;
}

START_TEST(test_frames_innermost_first)
{
    sample(3, CP_SAMPLE_F_GIL, 1);
    frame(3, 30); /* innermost */
    frame(2, 20);
    frame(1, 10);
    sample(2, 0, 2);
    frame(2, 21);
    frame(1, 10);
    uint32_t p[] = {1, 2, 3};
    uint64_t gil;
    ck_assert_int_eq(self_of(p, 3, &gil), 1);
    ck_assert_uint_eq(gil, 1);
    ck_assert_int_eq(self_of(p, 2, &gil), 0); /* 2 at line 20: not a leaf */
    bool seen21 = false;
    for (uint32_t i = 0; i < cp_tree_count(&A.tree); i++) {
        cp_tree_node *nd = cp_tree_at(&A.tree, i);
        if (nd->func == 2 && cp_sagg_node_line(nd) == 21) {
            ck_assert_uint_eq(nd->calls, 2);
            ck_assert_uint_eq(nd->ticks, 0);
            seen21 = true;
        }
    }
    ck_assert(seen21);
    ck_assert_uint_eq(A.samples, 3);
    ck_assert_uint_eq(cp_tree_count(&A.tree), 4); /* 1, 2@20, 3, 2@21 */
}
END_TEST

static void repeat(uint64_t n)
{
    cp_record r = {.kind = CP_SREC_REPEAT, .c = n};
    cp_sagg_feed(&A, &r);
}

/* REPEAT adds the previous complete sample again, with its GIL flag; never
 * a half-fed or abandoned one, and nothing before the first sample. */
START_TEST(test_repeat_previous_sample)
{
    repeat(5); /* nothing to repeat yet */
    ck_assert_uint_eq(A.samples, 0);
    sample(2, CP_SAMPLE_F_GIL, 1);
    frame(2, 20);
    frame(1, 10);
    repeat(4);
    uint32_t p[] = {1, 2};
    uint64_t gil;
    ck_assert_int_eq(self_of(p, 2, &gil), 5);
    ck_assert_uint_eq(gil, 5);
    sample(2, 0, 1);
    frame(3, 30); /* half a sample, then a repeat: abandoned, not repeated */
    repeat(7);
    ck_assert_int_eq(self_of(p, 2, NULL), 5);
    ck_assert_uint_eq(A.malformed, 1);
    cp_sagg_repeat(&A, 3); /* the end-of-run flush: still nothing */
    ck_assert_uint_eq(A.samples, 5);
    sample(1, 0, 1);
    frame(4, 40);
    cp_sagg_repeat(&A, 2);
    uint32_t q[] = {4};
    ck_assert_int_eq(self_of(q, 1, &gil), 3); /* the latest stack, without the GIL */
    ck_assert_uint_eq(gil, 0);
    ck_assert_uint_eq(A.samples, 8);
}
END_TEST

START_TEST(test_code_text_interned)
{
    const char *longfile = "/a/very/long/path/that/needs/more/than/one/text/record/mod.py";
    sample(2, 0, 1);
    code("Klass.method", longfile, 5, 7);
    frame(1, 10);
    sample(1, 0, 1);
    code("Klass.method", longfile, 5, 7);
    ck_assert_uint_eq(F.n, 1);
    ck_assert_str_eq(F.items[0].name, "Klass.method");
    ck_assert_str_eq(F.items[0].file, longfile);
    ck_assert_uint_eq(F.items[0].line, 5);
    uint32_t p[] = {1, CP_SAMPLE_PRIVATE_ID};
    ck_assert_int_eq(self_of(p, 2, NULL), 1);
    uint32_t q[] = {CP_SAMPLE_PRIVATE_ID};
    ck_assert_int_eq(self_of(q, 1, NULL), 1);
}
END_TEST

START_TEST(test_truncated_marker_at_root)
{
    sample(1, CP_SAMPLE_F_TRUNCATED, 1);
    frame(5, 1);
    uint32_t p[] = {99, 5};
    ck_assert_int_eq(self_of(p, 2, NULL), 1);
}
END_TEST

START_TEST(test_malformed_sequences_dropped)
{
    sample(3, 0, 1);
    frame(1, 1);
    sample(1, 0, 1); /* interrupts the first: it is abandoned */
    frame(2, 2);
    cp_record t;
    cp_srec_text_pack(&t, "xx", 2);
    cp_sagg_feed(&A, &t); /* stray text outside a sample */
    sample(1, 0, 1);
    cp_sagg_feed(&A, &t); /* text where a frame is expected */
    ck_assert_uint_eq(A.malformed, 2);
    ck_assert_uint_eq(A.samples, 1);
    uint32_t p[] = {2};
    ck_assert_int_eq(self_of(p, 1, NULL), 1);
}
END_TEST

START_TEST(test_text_pack_roundtrip)
{
    cp_record r;
    const char *s = "0123456789abcdefghijklmnopqr"; /* 28 */
    cp_srec_text_pack(&r, s, 28);
    char out[28];
    ck_assert_uint_eq(cp_srec_text_unpack(&r, out), 28);
    ck_assert(memcmp(out, s, 28) == 0);
    ck_assert(cp_srec_is_sample(r.kind));
    ck_assert(!cp_srec_is_sample(CPYPROF_EV_CALL));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sample_agg");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_frames_innermost_first);
    tcase_add_test(tc, test_code_text_interned);
    tcase_add_test(tc, test_repeat_previous_sample);
    tcase_add_test(tc, test_truncated_marker_at_root);
    tcase_add_test(tc, test_malformed_sequences_dropped);
    tcase_add_test(tc, test_text_pack_roundtrip);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

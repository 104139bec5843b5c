/* test_pprof.c — the protobuf wire encoder (exact bytes) and the pprof
 * encoding of the shared sample profile, read back with a minimal decoder:
 * the string table starts with "", every sample has two values, and the
 * values add up to the profile's calls and time. */
#include "report/pprof.h"
#include "report/protobuf.h"
#include "profile_builder.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rd_varint(const uint8_t *b, size_t n, size_t *i)
{
    uint64_t v = 0;
    for (int shift = 0; *i < n && shift < 64; shift += 7) {
        uint8_t c = b[(*i)++];
        v |= (uint64_t)(c & 0x7F) << shift;
        if (!(c & 0x80))
            return v;
    }
    ck_abort_msg("varint cut short");
    return 0;
}

START_TEST(varints_and_fields)
{
    cp_pb b = {0};
    cp_pb_varint(&b, 0);
    cp_pb_varint(&b, 1);
    cp_pb_varint(&b, 300);
    cp_pb_varint(&b, UINT64_MAX);
    static const uint8_t want[] = {0x00, 0x01, 0xAC, 0x02, 0xFF, 0xFF, 0xFF,
                                   0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
    ck_assert_uint_eq(b.len, sizeof want);
    ck_assert_mem_eq(b.data, want, sizeof want);
    cp_pb_reset(&b);
    cp_pb_uint(&b, 1, 150);         /* 08 96 01 */
    cp_pb_bytes(&b, 6, "ab", 2);    /* 32 02 61 62 */
    uint64_t v[] = {3, 270, 86942}; /* packed: 22 06 03 8E 02 9E A7 05 */
    cp_pb_packed(&b, 4, v, 3);
    cp_pb_packed(&b, 5, v, 0); /* nothing */
    static const uint8_t want2[] = {0x08, 0x96, 0x01, 0x32, 0x02, 0x61, 0x62, 0x22,
                                    0x06, 0x03, 0x8E, 0x02, 0x9E, 0xA7, 0x05};
    ck_assert_uint_eq(b.len, sizeof want2);
    ck_assert_mem_eq(b.data, want2, sizeof want2);
    cp_pb_free(&b);
}
END_TEST

START_TEST(profile_totals)
{
    cp_buf f;
    tb_sample(&f, true);
    cp_profile p;
    char err[256];
    ck_assert_int_eq(cp_profile_load_mem(&p, f.data, f.len, "t", err, sizeof err), 0);
    cp_pb pb = {0};
    ck_assert_int_eq(cp_pprof_encode(&p, NULL, &pb, err, sizeof err), 0);
    size_t i = 0, n_strings = 0, n_samples = 0, n_types = 0, n_funcs = 0;
    uint64_t sum[2] = {0, 0};
    bool first_empty = false;
    while (i < pb.len) {
        uint64_t key = rd_varint(pb.data, pb.len, &i);
        /* varint fields: 9, 10, 12, 13, 14; the others are length-delimited */
        uint64_t field = key >> 3;
        bool scalar = field == 9 || field == 10 || field == 12 || field == 13 || field == 14;
        ck_assert_uint_eq(key & 7, scalar ? 0 : 2);
        if ((key & 7) == 0) {
            rd_varint(pb.data, pb.len, &i);
            continue;
        }
        size_t len = rd_varint(pb.data, pb.len, &i), end = i + len;
        ck_assert_uint_le(end, pb.len);
        switch (key >> 3) {
        case 1:
            n_types++;
            break;
        case 5:
            n_funcs++;
            break;
        case 6:
            if (n_strings++ == 0)
                first_empty = len == 0;
            break;
        case 2: { /* Sample: find field 2 (packed values) */
            n_samples++;
            size_t j = i;
            while (j < end) {
                uint64_t k = rd_varint(pb.data, end, &j);
                size_t l = rd_varint(pb.data, end, &j), e = j + l;
                if (k == (2 << 3 | 2)) {
                    int vi = 0;
                    while (j < e) {
                        ck_assert_int_lt(vi, 2);
                        sum[vi++] += rd_varint(pb.data, e, &j);
                    }
                    ck_assert_int_eq(vi, 2);
                }
                j = e;
            }
            break;
        }
        default:
            break;
        }
        i = end;
    }
    ck_assert(first_empty);
    ck_assert_uint_eq(n_types, 2);
    ck_assert_uint_eq(n_funcs, p.n_funcs);
    ck_assert_uint_eq(n_samples, 10);
    ck_assert_uint_eq(sum[0], 16);   /* every call */
    ck_assert_uint_eq(sum[1], 1100); /* the two threads' time: 1000 + 100 */
    cp_pb_free(&pb);
    cp_profile_free(&p);
    cp_buf_free(&f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pprof");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, varints_and_fields);
    tcase_add_test(tc, profile_totals);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

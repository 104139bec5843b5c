/* test_ptrmap.c — the address -> size map of the allocation counter
 * (against a reference model under random operations, backward-shift
 * deletion in wrapped runs, the size limit), and the per-site counters. */
#include "core/ptrmap.h"
#include "core/sitestats.h"
#include "core/sizeshadow.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_put_take_basic)
{
    cp_ptrmap m;
    cp_ptrmap_init(&m, 100);
    uint64_t sz = 0, old = 0;
    ck_assert(!cp_ptrmap_take(&m, 0x1000, &sz)); /* empty map, no table yet */
    ck_assert_int_eq(cp_ptrmap_put(&m, 0x1000, 32, &old), 1);
    ck_assert_int_eq(cp_ptrmap_put(&m, 0x1000, 48, &old), 2);
    ck_assert_uint_eq(old, 32);
    ck_assert_uint_eq(m.count, 1);
    ck_assert(cp_ptrmap_take(&m, 0x1000, &sz));
    ck_assert_uint_eq(sz, 48);
    ck_assert(!cp_ptrmap_take(&m, 0x1000, &sz));
    ck_assert_uint_eq(m.count, 0);
    cp_ptrmap_clear(&m);
    ck_assert_uint_eq(m.max_entries, 100);
}
END_TEST

/* xorshift: a fixed sequence, the same on every run */
static uint64_t rnd_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

START_TEST(test_random_against_model)
{
    enum { KEYS = 20000, OPS = 400000 };
    uint64_t *model = calloc(KEYS, sizeof *model); /* 0: absent */
    cp_ptrmap m;
    cp_ptrmap_init(&m, KEYS);
    size_t live = 0;
    for (int op = 0; op < OPS; op++) {
        uint64_t r = rnd();
        size_t k = (size_t)(r % KEYS);
        /* 16-byte aligned addresses in a few clusters, as malloc gives */
        uintptr_t key = ((uintptr_t)(k % 7) << 32) + (uintptr_t)(k + 1) * 16;
        uint64_t sz, old;
        if ((r >> 32) & 1) {
            uint64_t v = (r >> 40) + 1;
            int rc = cp_ptrmap_put(&m, key, v, &old);
            ck_assert_int_eq(rc, model[k] ? 2 : 1);
            if (model[k])
                ck_assert_uint_eq(old, model[k]);
            else
                live++;
            model[k] = v;
        } else {
            bool had = cp_ptrmap_take(&m, key, &sz);
            ck_assert_int_eq(had, model[k] != 0);
            if (had) {
                ck_assert_uint_eq(sz, model[k]);
                model[k] = 0;
                live--;
            }
        }
        ck_assert_uint_eq(m.count, live);
    }
    for (size_t k = 0; k < KEYS; k++) { /* every survivor is still found */
        uintptr_t key = ((uintptr_t)(k % 7) << 32) + (uintptr_t)(k + 1) * 16;
        uint64_t sz;
        ck_assert_int_eq(cp_ptrmap_take(&m, key, &sz), model[k] != 0);
    }
    ck_assert_uint_eq(m.count, 0);
    ck_assert_uint_eq(m.refused, 0);
    cp_ptrmap_clear(&m);
    free(model);
}
END_TEST

START_TEST(test_limit_refuses_and_counts)
{
    cp_ptrmap m;
    cp_ptrmap_init(&m, 10);
    uint64_t old;
    for (uintptr_t i = 1; i <= 10; i++)
        ck_assert_int_eq(cp_ptrmap_put(&m, i * 16, i, &old), 1);
    ck_assert_int_eq(cp_ptrmap_put(&m, 11 * 16, 11, &old), 0);
    ck_assert_uint_eq(m.refused, 1);
    ck_assert_int_eq(cp_ptrmap_put(&m, 5 * 16, 50, &old), 2); /* replacing still works */
    uint64_t sz;
    ck_assert(cp_ptrmap_take(&m, 3 * 16, &sz));
    ck_assert_int_eq(cp_ptrmap_put(&m, 11 * 16, 11, &old), 1); /* room again */
    cp_ptrmap_clear(&m);
}
END_TEST

START_TEST(test_growth_keeps_entries)
{
    cp_ptrmap m;
    cp_ptrmap_init(&m, 1u << 20);
    uint64_t old, sz;
    for (uintptr_t i = 1; i <= 100000; i++)
        ck_assert_int_eq(cp_ptrmap_put(&m, i * 48, i * 3, &old), 1);
    ck_assert_uint_ge(m.cap, 200000);
    for (uintptr_t i = 100000; i >= 1; i--) {
        ck_assert(cp_ptrmap_take(&m, i * 48, &sz));
        ck_assert_uint_eq(sz, i * 3);
    }
    ck_assert_uint_eq(m.count, 0);
    cp_ptrmap_clear(&m);
}
END_TEST

START_TEST(test_sites)
{
    cp_sitestats *s = cp_sites_new();
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_null(cp_sites_peek(s, 5));
    ck_assert_uint_eq(cp_sites_bound(s), 0);
    cp_site_counts *c = cp_sites_get(s, 5);
    c->allocs = 3;
    ck_assert_ptr_eq(cp_sites_peek(s, 5), c);
    ck_assert_uint_eq(cp_sites_bound(s), CP_SITES_CHUNK);
    cp_site_counts *far = cp_sites_get(s, 3 * CP_SITES_CHUNK + 7);
    ck_assert_ptr_nonnull(far);
    ck_assert_uint_eq(cp_sites_bound(s), 4 * CP_SITES_CHUNK);
    ck_assert(cp_site_counts_zero(cp_sites_peek(s, 6)));
    ck_assert(!cp_site_counts_zero(cp_sites_peek(s, 5)));
    ck_assert_ptr_null(cp_sites_get(s, CP_SITES_MAX_CHUNKS * CP_SITES_CHUNK)); /* out of range */
    ck_assert_uint_eq(s->refused, 1);
    ck_assert_ptr_nonnull(cp_sites_get(s, CP_SITES_MAX_CHUNKS * CP_SITES_CHUNK - 1));
    cp_sites_free(s);
}
END_TEST

START_TEST(test_shadow_against_model)
{
    /* blocks of many sizes in a few regions, aligned and not, as a
     * shadow + map pair is used by the allocation counter */
    enum { KEYS = 30000, OPS = 300000 };
    uint64_t *model = calloc(KEYS, sizeof *model); /* size + 1, 0: absent */
    cp_shadow sh;
    cp_shadow_init(&sh, 64);
    cp_ptrmap m;
    cp_ptrmap_init(&m, KEYS);
    for (int op = 0; op < OPS; op++) {
        uint64_t r = rnd();
        size_t k = (size_t)(r % KEYS);
        /* 16-byte granules over ~100 regions (more than the shadow holds),
         * every 7th key unaligned */
        uintptr_t key = 0x7f0000000000ull + (uintptr_t)k * 16 * 53 + (k % 7 == 0 ? 8 : 0);
        uint64_t size = (r >> 40) % 3 == 0 ? 70000 + (r >> 50) : (r >> 44) % 600;
        uint64_t got, old = 0;
        if ((r >> 33) & 1) {
            /* a live address is only handed out again after its free,
             * except here and there (a free we did not see) */
            bool missed_free = model[k] && (r >> 60) == 0 &&
                               (model[k] - 1 > CP_SHADOW_MAX_SIZE) == (size > CP_SHADOW_MAX_SIZE);
            if (model[k] && !missed_free) {
                ck_assert(cp_sizes_take(&sh, &m, key, &got));
                ck_assert_uint_eq(got, model[k] - 1);
                model[k] = 0;
            }
            int rc = cp_sizes_put(&sh, &m, key, size, &old);
            ck_assert_int_eq(rc, model[k] ? 2 : 1);
            if (model[k])
                ck_assert_uint_eq(old, model[k] - 1);
            model[k] = size + 1;
        } else {
            bool had = cp_sizes_take(&sh, &m, key, &got);
            ck_assert_int_eq(had, model[k] != 0);
            if (had)
                ck_assert_uint_eq(got, model[k] - 1);
            model[k] = 0;
        }
    }
    ck_assert_uint_le(sh.nregions, 64);
    cp_shadow_clear(&sh);
    uint64_t got;
    ck_assert(!cp_shadow_take(&sh, 0x7f0000000000ull, &got));
    cp_ptrmap_clear(&m);
    free(model);
}
END_TEST

START_TEST(test_shadow_region_cache)
{
    /* The region cache is direct-mapped: regions CP_SHADOW_CACHE apart
     * share an entry, and a miss remembered for a region (a free of a block
     * from before start) must not hide the region once it is made. */
    cp_shadow sh;
    cp_shadow_init(&sh, 64);
    const uintptr_t region = (uintptr_t)1 << CP_SHADOW_REGION_BITS;
    const uintptr_t a = 0x7f0000000000ull, b = a + CP_SHADOW_CACHE * region;
    uint64_t got, old;
    ck_assert(!cp_shadow_take(&sh, a, &got)); /* miss remembered */
    ck_assert_int_eq(cp_shadow_put(&sh, a + 16, 10, &old), 1);
    ck_assert_int_eq(cp_shadow_put(&sh, b + 32, 20, &old), 1); /* same entry */
    ck_assert(!cp_shadow_take(&sh, b, &got));
    ck_assert(cp_shadow_take(&sh, a + 16, &got)); /* back from the table */
    ck_assert_uint_eq(got, 10);
    ck_assert(!cp_shadow_take(&sh, a + 16, &got));
    ck_assert(cp_shadow_take(&sh, b + 32, &got));
    ck_assert_uint_eq(got, 20);
    ck_assert_uint_eq(sh.nregions, 2);
    cp_shadow_clear(&sh);
    ck_assert(!cp_shadow_take(&sh, b + 32, &got)); /* the cache went with the clear */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ptrmap");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_put_take_basic);
    tcase_add_test(tc, test_random_against_model);
    tcase_add_test(tc, test_limit_refuses_and_counts);
    tcase_add_test(tc, test_growth_keeps_entries);
    tcase_add_test(tc, test_sites);
    tcase_add_test(tc, test_shadow_against_model);
    tcase_add_test(tc, test_shadow_region_cache);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

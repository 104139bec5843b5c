/* test_gil.c — GIL accounting's pure parts: log2 buckets, the per-thread
 * state machine driven by a fake GIL mutex and a fake clock, the GIL chunk
 * parser and the plain-words reading. */
#include "profile_builder.h"
#include "python/gil_sm.h"
#include "report/gil.h"

#include "core/config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* ---- buckets ---------------------------------------------------------------- */

START_TEST(test_buckets)
{
    ck_assert_uint_eq(cp_gil_bucket(0), 0);
    ck_assert_uint_eq(cp_gil_bucket(1), 1);
    ck_assert_uint_eq(cp_gil_bucket(2), 2);
    ck_assert_uint_eq(cp_gil_bucket(3), 2);
    ck_assert_uint_eq(cp_gil_bucket(4), 3);
    ck_assert_uint_eq(cp_gil_bucket(1023), 10);
    ck_assert_uint_eq(cp_gil_bucket(1024), 11);
    ck_assert_uint_eq(cp_gil_bucket(5000000), 23); /* 5 ms: 2^22 <= 5e6 < 2^23 */
    ck_assert_uint_eq(cp_gil_bucket(UINT64_MAX), CP_GIL_NBUCKETS - 1);
    /* every duration lies below its bucket's limit and at/above the previous one */
    for (uint64_t ns = 1; ns < (1ull << 36); ns = ns * 3 + 1) {
        uint32_t b = cp_gil_bucket(ns);
        ck_assert_uint_lt(ns, cp_gil_bucket_limit(b));
        ck_assert_uint_ge(ns, cp_gil_bucket_limit(b - 1));
    }
}
END_TEST

/* ---- the state machine with a fake GIL -------------------------------------- */

/* A fake GIL as take_gil/drop_gil drive it: which thread locks and unlocks
 * its mutex, what `locked` and `last_holder` say at each unlock. */
typedef struct fake_gil {
    int locked;
    int holder; /* thread index */
    uint64_t now;
} fake_gil;

static void take(fake_gil *g, cp_gil_acct *a, int me, uint64_t wait)
{
    uint64_t d;
    cp_gil_on_lock(a, g->now);
    g->now += wait; /* blocked in cond_timedwait */
    g->locked = 1;
    g->holder = me;
    cp_gil_on_unlock(a, g->locked, g->holder == me, 0, g->now, 0, &d);
}

static void drop(fake_gil *g, cp_gil_acct *a, int me)
{
    uint64_t d;
    ck_assert_int_eq(cp_gil_on_lock(a, g->now), CP_GIL_EV_NONE); /* holder: not a wait */
    g->locked = 0;
    ck_assert_int_eq(cp_gil_on_unlock(a, g->locked, g->holder == me, 0, g->now, 0, &d),
                     CP_GIL_EV_RELEASED);
}

START_TEST(test_state_machine)
{
    fake_gil g = {0, -1, 1000};
    cp_gil_acct a[2];
    memset(a, 0, sizeof a);
    take(&g, &a[0], 0, 0); /* uncontended */
    ck_assert(a[0].holding);
    ck_assert_uint_eq(a[0].acquisitions, 1);
    ck_assert_uint_eq(a[0].wait_ns, 0);
    /* thread 1 starts waiting while 0 holds */
    uint64_t d;
    ck_assert_int_eq(cp_gil_on_lock(&a[1], g.now), CP_GIL_EV_WAIT);
    /* An unlock by thread 1 with locked == 1 and holder 0 (take_gil's exit
     * path of a thread killed at finalisation) changes nothing. */
    ck_assert_int_eq(cp_gil_on_unlock(&a[1], 1, 0, 0, g.now, 0, &d), CP_GIL_EV_NONE);
    ck_assert(a[1].waiting);
    g.now += 5000; /* 0 holds 5 us */
    drop(&g, &a[0], 0);
    ck_assert_uint_eq(a[0].hold_ns, 5000);
    ck_assert_uint_eq(a[0].max_hold_ns, 5000);
    g.now += 100;
    g.locked = 1;
    g.holder = 1;
    ck_assert_int_eq(cp_gil_on_unlock(&a[1], 1, 1, 0, g.now, 0, &d), CP_GIL_EV_ACQUIRED);
    ck_assert_uint_eq(d, 5100);
    ck_assert_uint_eq(a[1].wait_ns, 5100);
    ck_assert_uint_eq(a[1].wait_hist[cp_gil_bucket(5100)], 1);
    g.now += 7;
    drop(&g, &a[1], 1);
    ck_assert_uint_eq(a[1].hold_ns, 7);
    ck_assert_uint_eq(a[1].hold_hist[cp_gil_bucket(7)], 1);
    /* unlocking an unheld, unlocked GIL's mutex: nothing */
    ck_assert_int_eq(cp_gil_on_unlock(&a[0], 0, 0, 0, g.now, 0, &d), CP_GIL_EV_NONE);
}
END_TEST

START_TEST(test_open_intervals)
{
    cp_gil_acct a;
    memset(&a, 0, sizeof a);
    uint64_t d, h, w, mh, mw;
    /* a thread already waiting when accounting began (at 100) */
    ck_assert_int_eq(cp_gil_on_unlock(&a, 1, 1, 0, 400, 100, &d), CP_GIL_EV_ACQUIRED);
    ck_assert_uint_eq(d, 300);
    /* holding at the end: counted up to the end */
    cp_gil_totals_at(&a, 1400, &h, &w, &mh, &mw);
    ck_assert_uint_eq(h, 1000);
    ck_assert_uint_eq(mh, 1000);
    ck_assert_uint_eq(w, 300);
    /* the starting thread */
    cp_gil_acct s;
    memset(&s, 0, sizeof s);
    cp_gil_start_holding(&s, 50);
    ck_assert_int_eq(cp_gil_on_unlock(&s, 0, 1, 0, 80, 0, &d), CP_GIL_EV_RELEASED);
    ck_assert_uint_eq(d, 30);
    /* waiting at the end */
    cp_gil_on_lock(&s, 100);
    cp_gil_totals_at(&s, 160, &h, &w, &mh, &mw);
    ck_assert_uint_eq(w, 60);
    ck_assert_uint_eq(h, 30);
}
END_TEST

/* A forced switch: after drop_gil releases, the thread waits on
 * switch_cond (taking switch_mutex) and then calls take_gil; the wait counts
 * from the switch_mutex lock. */
START_TEST(test_forced_switch)
{
    cp_gil_acct a;
    memset(&a, 0, sizeof a);
    uint64_t d;
    cp_gil_start_holding(&a, 0);
    cp_gil_on_lock(&a, 100); /* drop_gil */
    ck_assert_int_eq(cp_gil_on_unlock(&a, 0, 1, 0, 100, 0, &d), CP_GIL_EV_RELEASED);
    ck_assert_int_eq(cp_gil_on_switch_lock(&a, 110), CP_GIL_EV_WAIT);
    ck_assert_int_eq(cp_gil_on_lock(&a, 500), CP_GIL_EV_NONE);        /* take_gil: keeps 110 */
    ck_assert_int_eq(cp_gil_on_switch_lock(&a, 900), CP_GIL_EV_NONE); /* take_gil's _ready */
    ck_assert_int_eq(cp_gil_on_unlock(&a, 1, 1, 0, 1000, 0, &d), CP_GIL_EV_ACQUIRED);
    ck_assert_uint_eq(d, 890);
    /* a voluntary release (I/O) takes no switch_mutex: the wait starts at take_gil */
    cp_gil_on_lock(&a, 1100);
    cp_gil_on_unlock(&a, 0, 1, 0, 1100, 0, &d);
    cp_gil_on_lock(&a, 5000);
    ck_assert_int_eq(cp_gil_on_unlock(&a, 1, 1, 0, 5040, 0, &d), CP_GIL_EV_ACQUIRED);
    ck_assert_uint_eq(d, 40);
    ck_assert_uint_eq(a.wait_ns, 930);
    ck_assert_uint_eq(a.hold_ns, 100 + 100);
    /* released on a drop request: waiting from the release, even if the
     * thread is preempted before it reaches take_gil or switch_mutex */
    cp_gil_on_lock(&a, 6000);
    ck_assert_int_eq(cp_gil_on_unlock(&a, 0, 1, 1, 6040, 0, &d), CP_GIL_EV_RELEASED);
    ck_assert_uint_eq(d, 1000);
    ck_assert(a.waiting);
    ck_assert_int_eq(cp_gil_on_switch_lock(&a, 7000), CP_GIL_EV_NONE);
    ck_assert_int_eq(cp_gil_on_lock(&a, 9000), CP_GIL_EV_NONE);
    ck_assert_int_eq(cp_gil_on_unlock(&a, 1, 1, 0, 9040, 0, &d), CP_GIL_EV_ACQUIRED);
    ck_assert_uint_eq(d, 3000);
}
END_TEST

/* Four threads round-robin with a 5 ms switch interval: each holds 1/4. */
START_TEST(test_round_robin_shares)
{
    fake_gil g = {0, -1, 0};
    cp_gil_acct a[4];
    memset(a, 0, sizeof a);
    for (int t = 0; t < 4; t++)
        cp_gil_on_lock(&a[t], 0); /* everyone starts waiting at 0 */
    for (int round = 0; round < 100; round++)
        for (int t = 0; t < 4; t++) {
            uint64_t d;
            g.locked = 1;
            g.holder = t;
            cp_gil_on_unlock(&a[t], 1, 1, 0, g.now, 0, &d);
            g.now += 5000000;
            drop(&g, &a[t], t);
            cp_gil_on_lock(&a[t], g.now);
        }
    for (int t = 0; t < 4; t++) {
        uint64_t h, w, mh, mw;
        cp_gil_totals_at(&a[t], g.now, &h, &w, &mh, &mw);
        ck_assert_uint_eq(h * 4, g.now);
        ck_assert_uint_eq(h + w, g.now);
        ck_assert_uint_eq(a[t].acquisitions, 100);
        ck_assert_uint_eq(mh, 5000000);
    }
}
END_TEST

/* ---- config ---------------------------------------------------------------- */

START_TEST(test_config_gil)
{
    cp_config c;
    char err[256];
    cp_config_defaults(&c);
    ck_assert_int_eq(c.gil, CP_GIL_OFF);
    const char *vals[] = {"exact", "1", "yes", "sample", "off", "0"};
    const int want[] = {CP_GIL_EXACT,  CP_GIL_EXACT, CP_GIL_EXACT,
                        CP_GIL_SAMPLE, CP_GIL_OFF,   CP_GIL_OFF};
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(cp_config_set(&c, "gil", vals[i], "CPYPROF_", err, sizeof err), 0);
        ck_assert_int_eq(c.gil, want[i]);
    }
    ck_assert_int_eq(cp_config_set(&c, "gil", "always", "CPYPROF_", err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "CPYPROF_GIL"));
    ck_assert_ptr_nonnull(strstr(err, "exact"));
}
END_TEST

/* ---- the chunk and the reading ---------------------------------------------- */

static void gil_run(cp_buf *f, int64_t dur)
{
    cp_buf p;
    cp_buf_init(&p);
    cp_buf_u32(&p, CPYPROF_GIL_RUN);
    cp_buf_u32(&p, CPYPROF_GIL_EXACT);
    cp_buf_u32(&p, 0);
    cp_buf_i64(&p, dur);
    for (int i = 0; i < 4; i++)
        cp_buf_u64(&p, 10);
    tb_chunk(f, CPYPROF_CHUNK_GIL, &p);
    cp_buf_free(&p);
}

static void gil_thread(cp_buf *f, uint32_t id, uint64_t hold, uint64_t wait, uint64_t maxh,
                       uint32_t hold_func)
{
    cp_buf p;
    cp_buf_init(&p);
    cp_buf_u32(&p, CPYPROF_GIL_THREAD);
    cp_buf_u32(&p, id);
    cp_buf_u32(&p, 2); /* buckets */
    cp_buf_u64(&p, 1000 + id);
    cp_buf_u64(&p, hold);
    cp_buf_u64(&p, wait);
    cp_buf_u64(&p, 7);
    cp_buf_u64(&p, maxh);
    cp_buf_u64(&p, wait / 10); /* longest wait */
    cp_buf_u64(&p, 0);
    cp_buf_u32(&p, 2); /* nodes */
    cp_buf_u32(&p, 0);
    for (int i = 0; i < 4; i++)
        cp_buf_u64(&p, (uint64_t)i);
    /* a hold root and its child */
    uint32_t parents[2] = {CPYPROF_NONE, 0};
    for (int i = 0; i < 2; i++) {
        cp_buf_u32(&p, parents[i]);
        cp_buf_u32(&p, hold_func);
        cp_buf_u32(&p, 1);
        cp_buf_u32(&p, 0);
        cp_buf_u64(&p, 1);
        cp_buf_u64(&p, hold / 2);
    }
    tb_chunk(f, CPYPROF_CHUNK_GIL, &p);
    cp_buf_free(&p);
}

/* A profile of three threads fighting over the GIL, the first named
 * main_name, running crunch (app.py:10). */
static void three_threads_profile(cp_buf *f, const char *main_name)
{
    cp_buf_init(f);
    tb_begin(f);
    const char *strs[] = {"crunch", "app.py", main_name};
    tb_strings(f, 0, strs, 3);
    struct cpyprof_func_rec fr = {0, 0, 1, 10, CPYPROF_FUNC_PYTHON, 0};
    tb_funcs(f, &fr, 1);
    for (uint32_t t = 0; t < 3; t++) {
        struct cpyprof_thread_rec tr = {t, t == 0 ? 2 : CPYPROF_NONE, t, 1000 + t, 0, -1, 0, 0};
        tb_thread(f, &tr);
    }
    gil_run(f, 1000000000);
    gil_thread(f, 0, 300000000, 600000000, 80000000, 0); /* holds 80 ms once */
    gil_thread(f, 1, 300000000, 650000000, 10000000, 0);
    gil_thread(f, 2, 300000000, 700000000, 10000000, 0);
    struct cpyprof_trailer_rec tr = {0};
    tb_trailer(f, &tr);
}

/* Loads the profile in f and its GIL data (both must load). */
static void load_gil(const cp_buf *f, cp_profile *p, cp_gil_data *g)
{
    char err[256];
    ck_assert_int_eq(cp_profile_load_mem(p, f->data, f->len, "mem", err, sizeof err), 0);
    ck_assert_int_eq(cp_gil_parse(f->data, f->len, g, err, sizeof err), 0);
}

/* `cpyprof gil --json`'s text for p and g (malloc'd). */
static char *gil_json_text(const cp_profile *p, const cp_gil_data *g)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mf = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(mf);
    cp_gil_print_json(mf, p, g);
    fclose(mf);
    return text;
}

START_TEST(test_parse_and_advice)
{
    cp_buf f;
    three_threads_profile(&f, "MainThread");

    cp_profile p;
    char err[256];
    cp_gil_data g;
    load_gil(&f, &p, &g);
    ck_assert(g.present);
    ck_assert_uint_eq(g.n_threads, 3);
    ck_assert_uint_eq(g.threads[1].rec.hold_ns, 300000000);
    ck_assert_uint_eq(g.threads[0].wait_hist[1], 3);
    ck_assert_uint_eq(g.threads[0].rec.nnodes, 2);
    char buf[4096];
    int n = cp_gil_advice(&p, &g, buf, sizeof buf);
    ck_assert_int_eq(n, 2);
    ck_assert_ptr_nonnull(strstr(buf, "fight over the GIL: 3 threads"));
    ck_assert_ptr_nonnull(strstr(buf, "MainThread held the GIL for up to 80.0ms"));
    ck_assert_ptr_nonnull(strstr(buf, "crunch (app.py:10)"));
    ck_assert_ptr_null(strstr(buf, "mostly idle"));
    /* the table, with the decade histograms of the buckets 0..3 of each
     * thread (counts 0,1 hold / 2,3 wait: all below 1 us) */
    char *text = NULL;
    size_t tlen = 0;
    FILE *mf = open_memstream(&text, &tlen);
    cp_gil_print(mf, &p, &g);
    fclose(mf);
    ck_assert_ptr_nonnull(strstr(text, "GIL busy: 90.0% of wall time"));
    ck_assert_ptr_nonnull(strstr(text, "holds     100.0%"));
    ck_assert_ptr_nonnull(strstr(text, "MainThread"));
    ck_assert_ptr_nonnull(strstr(text, "Reading:\n  - threads fight over the GIL"));
    free(text);
    text = gil_json_text(&p, &g);
    ck_assert_ptr_nonnull(strstr(text, "\"hold_hist\": [0, 1]"));
    ck_assert_ptr_nonnull(strstr(text, "\"top_holder\": \"crunch (app.py:10)\""));
    free(text);
    cp_flame_node *nodes;
    size_t nn;
    char *names;
    ck_assert_int_eq(cp_gil_flame(&p, &g, 1, &nodes, &nn, &names, err, sizeof err), 0);
    ck_assert_uint_eq(nn, 1 + 3 * 3);
    ck_assert_uint_eq(nodes[0].total, 3 * 300000000ull);
    ck_assert_str_eq(nodes[1].name, "thread MainThread");
    ck_assert_str_eq(nodes[2].name, "crunch");
    ck_assert_uint_eq(nodes[2].total, 300000000);
    free(nodes);
    free(names);
    /* no wait stacks: an empty graph (only "all") */
    ck_assert_int_eq(cp_gil_flame(&p, &g, 0, &nodes, &nn, &names, err, sizeof err), 0);
    ck_assert_uint_eq(nn, 1);
    free(nodes);
    free(names);
    cp_gil_free(&g);

    /* a cut-short GIL chunk: the parser keeps what came before */
    ck_assert_int_eq(cp_gil_parse(f.data, f.len - 100, &g, err, sizeof err), 0);
    cp_gil_free(&g);
    cp_profile_free(&p);
    cp_buf_free(&f);
}
END_TEST

/* A thread name is the program's: any bytes, from a hostile file too. The
 * JSON stays valid: control characters escaped, a byte that is not UTF-8
 * replaced (U+FFFD). */
START_TEST(test_json_names_any_bytes)
{
    cp_buf f;
    three_threads_profile(&f, "Main\xffThr\"ead\n\x7f");
    cp_profile p;
    cp_gil_data g;
    load_gil(&f, &p, &g);
    char *text = gil_json_text(&p, &g);
    ck_assert_ptr_nonnull(strstr(text, "\"name\": \"Main\\ufffdThr\\\"ead\\n\\u007f\""));
    ck_assert_ptr_null(strchr(text, 0xff));
    free(text);
    cp_gil_free(&g);
    cp_profile_free(&p);
    cp_buf_free(&f);
}
END_TEST

START_TEST(test_idle)
{
    cp_buf f;
    cp_buf_init(&f);
    tb_begin(&f);
    gil_run(&f, 1000000000);
    gil_thread(&f, 0, 50000000, 1000000, 1000000, 0);
    cp_gil_data g;
    char err[256], buf[2048];
    ck_assert_int_eq(cp_gil_parse(f.data, f.len, &g, err, sizeof err), 0);
    cp_profile p;
    memset(&p, 0, sizeof p);
    ck_assert_int_eq(cp_gil_advice(&p, &g, buf, sizeof buf), 1);
    ck_assert_ptr_nonnull(strstr(buf, "GIL mostly idle (5% busy)"));
    cp_gil_free(&g);
    cp_buf_free(&f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gil");
    TCase *tc = tcase_create("gil");
    tcase_add_test(tc, test_buckets);
    tcase_add_test(tc, test_state_machine);
    tcase_add_test(tc, test_open_intervals);
    tcase_add_test(tc, test_forced_switch);
    tcase_add_test(tc, test_round_robin_shares);
    tcase_add_test(tc, test_config_gil);
    tcase_add_test(tc, test_parse_and_advice);
    tcase_add_test(tc, test_json_names_any_bytes);
    tcase_add_test(tc, test_idle);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

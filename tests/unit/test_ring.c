/* test_ring.c — the SPSC record ring: order, wraparound, drops, re-entrancy,
 * and a real producer/consumer pair on two threads. */
#include "core/ring.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

/* Every field of a record is a distinct function of its sequence number, so
 * a torn or stale slot shows up as a mismatch. */
static cp_record make_rec(uint64_t seq)
{
    cp_record r;
    r.ticks = seq;
    r.kind = (uint32_t)(seq * 2654435761u) ^ 0x5a5a5a5au;
    r.a = ~(uint32_t)seq;
    r.b = seq * 0x9E3779B97F4A7C15ull;
    r.c = (seq << 17) ^ 0xC0FFEE0123456789ull ^ (seq >> 7);
    return r;
}

static bool rec_ok(const cp_record *r)
{
    cp_record want = make_rec(r->ticks);
    return r->kind == want.kind && r->a == want.a && r->b == want.b && r->c == want.c;
}

START_TEST(test_capacity_rounding)
{
    static const size_t asked[] = {0, 1, 15, 16, 17, 31, 32, 33, 1000, 1024, 1025, 65536};
    static const size_t got[] = {16, 16, 16, 16, 32, 32, 32, 64, 1024, 1024, 2048, 65536};
    for (size_t i = 0; i < sizeof asked / sizeof asked[0]; i++) {
        cp_ring r;
        ck_assert_int_eq(cp_ring_init(&r, asked[i]), 0);
        ck_assert_uint_eq(cp_ring_capacity(&r), got[i]);
        ck_assert_uint_eq(cp_ring_used(&r), 0);
        ck_assert_uint_eq(cp_ring_dropped(&r), 0);
        cp_ring_destroy(&r);
    }
}
END_TEST

START_TEST(test_init_too_large_fails)
{
    cp_ring r;
    errno = 0;
    ck_assert_int_eq(cp_ring_init(&r, SIZE_MAX), -1);
    ck_assert_int_ne(errno, 0);
    errno = 0;
    ck_assert_int_eq(cp_ring_init(&r, SIZE_MAX / 2 + 2), -1);
    ck_assert_int_ne(errno, 0);
}
END_TEST

START_TEST(test_push_pop_order)
{
    cp_ring r;
    ck_assert_int_eq(cp_ring_init(&r, 64), 0);
    cp_record out[64];
    ck_assert_uint_eq(cp_ring_pop(&r, out, 64), 0); /* empty */

    for (uint64_t i = 0; i < 10; i++) {
        cp_record rec = make_rec(i);
        ck_assert(cp_ring_push(&r, &rec));
    }
    ck_assert_uint_eq(cp_ring_used(&r), 10);

    /* A partial pop takes the oldest first. */
    ck_assert_uint_eq(cp_ring_pop(&r, out, 3), 3);
    for (uint64_t i = 0; i < 3; i++) {
        ck_assert_uint_eq(out[i].ticks, i);
        ck_assert(rec_ok(&out[i]));
    }
    ck_assert_uint_eq(cp_ring_used(&r), 7);
    ck_assert_uint_eq(cp_ring_pop(&r, out, 64), 7);
    for (uint64_t i = 0; i < 7; i++) {
        ck_assert_uint_eq(out[i].ticks, i + 3);
        ck_assert(rec_ok(&out[i]));
    }
    ck_assert_uint_eq(cp_ring_pop(&r, out, 64), 0);
    ck_assert_uint_eq(cp_ring_pop(&r, out, 0), 0);
    ck_assert_uint_eq(atomic_load(&r.pushed), 10);
    ck_assert_uint_eq(cp_ring_dropped(&r), 0);
    cp_ring_destroy(&r);
    ck_assert_ptr_null(r.slots);
}
END_TEST

START_TEST(test_wraparound_many_times)
{
    cp_ring r;
    ck_assert_int_eq(cp_ring_init(&r, 16), 0);
    cp_record out[16];
    uint64_t next_push = 0, next_pop = 0;
    /* Uneven batch sizes walk the indices across the array end at every
     * offset; 100k records is ~6000 trips round a 16-slot ring. */
    for (unsigned round = 0; next_push < 100000; round++) {
        unsigned batch = 1 + round % 16;
        for (unsigned i = 0; i < batch; i++) {
            cp_record rec = make_rec(next_push++);
            ck_assert(cp_ring_push(&r, &rec));
        }
        size_t n = cp_ring_pop(&r, out, 1 + (round * 7) % 16);
        for (size_t i = 0; i < n; i++) {
            ck_assert_uint_eq(out[i].ticks, next_pop++);
            ck_assert(rec_ok(&out[i]));
        }
        /* Drain fully now and then so the ring never overflows. */
        while ((n = cp_ring_pop(&r, out, 16)) > 0) {
            for (size_t i = 0; i < n; i++) {
                ck_assert_uint_eq(out[i].ticks, next_pop++);
                ck_assert(rec_ok(&out[i]));
            }
        }
    }
    ck_assert_uint_eq(next_pop, next_push);
    ck_assert_uint_eq(cp_ring_dropped(&r), 0);
    cp_ring_destroy(&r);
}
END_TEST

START_TEST(test_full_ring_drops_exactly)
{
    cp_ring r;
    ck_assert_int_eq(cp_ring_init(&r, 16), 0);
    for (uint64_t i = 0; i < 16; i++) {
        cp_record rec = make_rec(i);
        ck_assert(cp_ring_push(&r, &rec));
    }
    ck_assert_uint_eq(cp_ring_used(&r), 16);
    for (uint64_t i = 16; i < 16 + 37; i++) {
        cp_record rec = make_rec(i);
        ck_assert(!cp_ring_push(&r, &rec));
    }
    ck_assert_uint_eq(cp_ring_dropped(&r), 37);
    ck_assert_uint_eq(atomic_load(&r.pushed), 16);

    /* One slot freed: exactly one more push fits, the next is dropped. */
    cp_record out[16];
    ck_assert_uint_eq(cp_ring_pop(&r, out, 1), 1);
    ck_assert_uint_eq(out[0].ticks, 0);
    cp_record rec = make_rec(100);
    ck_assert(cp_ring_push(&r, &rec));
    ck_assert(!cp_ring_push(&r, &rec));
    ck_assert_uint_eq(cp_ring_dropped(&r), 38);

    /* The survivors are the first 16 minus the one popped, then 100. */
    ck_assert_uint_eq(cp_ring_pop(&r, out, 16), 16);
    for (uint64_t i = 0; i < 15; i++)
        ck_assert_uint_eq(out[i].ticks, i + 1);
    ck_assert_uint_eq(out[15].ticks, 100);
    ck_assert(rec_ok(&out[15]));
    cp_ring_destroy(&r);
}
END_TEST

START_TEST(test_reentrant_push_dropped)
{
    cp_ring r;
    ck_assert_int_eq(cp_ring_init(&r, 16), 0);
    cp_record rec = make_rec(1);
    /* What a signal handler sees when it interrupts a push in progress. */
    r.busy = 1;
    ck_assert(!cp_ring_push(&r, &rec));
    ck_assert(!cp_ring_push(&r, &rec));
    ck_assert_uint_eq(cp_ring_dropped(&r), 2);
    ck_assert_uint_eq(cp_ring_used(&r), 0);
    ck_assert_int_eq(r.busy, 1); /* a refused push leaves the owner's flag alone */
    r.busy = 0;
    ck_assert(cp_ring_push(&r, &rec));
    ck_assert_int_eq(r.busy, 0);
    ck_assert_uint_eq(cp_ring_used(&r), 1);
    cp_ring_destroy(&r);
}
END_TEST

/* --- two threads ------------------------------------------------------------ */

enum { N_RECORDS = 5000000 };

typedef struct spsc_ctx {
    cp_ring ring;
    atomic_bool done;
    uint8_t *pushed_ok; /* producer: 1 where the push succeeded */
    uint8_t *received;  /* consumer: 1 where the record arrived */
    uint64_t n_received;
    uint64_t n_bad;       /* corrupt records */
    uint64_t n_unordered; /* sequence not strictly increasing */
} spsc_ctx;

static void *consumer_main(void *arg)
{
    spsc_ctx *ctx = arg;
    cp_record buf[256];
    uint64_t last = 0;
    bool first = true;
    for (;;) {
        /* Read `done` before popping: once it is set, the pop after it sees
         * every record the producer published. */
        bool finished = atomic_load_explicit(&ctx->done, memory_order_acquire);
        size_t n = cp_ring_pop(&ctx->ring, buf, sizeof buf / sizeof buf[0]);
        for (size_t i = 0; i < n; i++) {
            uint64_t seq = buf[i].ticks;
            if (!rec_ok(&buf[i]) || seq >= N_RECORDS) {
                ctx->n_bad++;
                continue;
            }
            if (!first && seq <= last)
                ctx->n_unordered++;
            first = false;
            last = seq;
            ctx->received[seq] = 1;
            ctx->n_received++;
        }
        if (n == 0 && finished)
            break;
    }
    return NULL;
}

START_TEST(test_concurrent_producer_consumer)
{
    spsc_ctx *ctx = calloc(1, sizeof *ctx);
    ck_assert_ptr_nonnull(ctx);
    ctx->pushed_ok = calloc(N_RECORDS, 1);
    ctx->received = calloc(N_RECORDS, 1);
    ck_assert_ptr_nonnull(ctx->pushed_ok);
    ck_assert_ptr_nonnull(ctx->received);
    /* Small enough to fill now and then (drops), large enough to pass most. */
    ck_assert_int_eq(cp_ring_init(&ctx->ring, 4096), 0);
    atomic_init(&ctx->done, false);

    pthread_t consumer;
    ck_assert_int_eq(pthread_create(&consumer, NULL, consumer_main, ctx), 0);
    uint64_t ok = 0;
    for (uint64_t seq = 0; seq < N_RECORDS; seq++) {
        cp_record rec = make_rec(seq);
        if (cp_ring_push(&ctx->ring, &rec)) {
            ctx->pushed_ok[seq] = 1;
            ok++;
        }
    }
    atomic_store_explicit(&ctx->done, true, memory_order_release);
    ck_assert_int_eq(pthread_join(consumer, NULL), 0);

    uint64_t dropped = cp_ring_dropped(&ctx->ring);
    ck_assert_uint_eq(ctx->n_bad, 0);
    ck_assert_uint_eq(ctx->n_unordered, 0);
    ck_assert_uint_eq(ctx->n_received + dropped, N_RECORDS);
    ck_assert_uint_eq(ctx->n_received, ok);
    ck_assert_uint_eq(atomic_load(&ctx->ring.pushed), ok);
    /* Exactly the records whose push succeeded arrived, no others. */
    ck_assert_int_eq(memcmp(ctx->pushed_ok, ctx->received, N_RECORDS), 0);
    ck_assert_uint_eq(cp_ring_used(&ctx->ring), 0);

    cp_ring_destroy(&ctx->ring);
    free(ctx->pushed_ok);
    free(ctx->received);
    free(ctx);
}
END_TEST

/* --- a real signal handler pushing into the producer's ring ----------------- */

static cp_ring *sig_ring;
static volatile sig_atomic_t sig_seq;      /* handler's own sequence */
static volatile sig_atomic_t sig_accepted; /* handler pushes that succeeded */

#define SIG_TAG (1ull << 62) /* marks handler records in `ticks` */

static void on_alarm(int signo)
{
    (void)signo;
    int saved = errno;
    cp_record rec = make_rec(SIG_TAG | (uint64_t)sig_seq);
    sig_seq = sig_seq + 1;
    if (cp_ring_push(sig_ring, &rec))
        sig_accepted = sig_accepted + 1;
    errno = saved;
}

typedef struct sig_ctx {
    cp_ring ring;
    atomic_bool done;
    uint64_t main_recs, sig_recs, bad, unordered;
} sig_ctx;

static void *sig_consumer_main(void *arg)
{
    sig_ctx *ctx = arg;
    cp_record buf[128];
    uint64_t last_main = 0, last_sig = 0;
    bool first_main = true, first_sig = true;
    for (;;) {
        bool finished = atomic_load_explicit(&ctx->done, memory_order_acquire);
        size_t n = cp_ring_pop(&ctx->ring, buf, 128);
        for (size_t i = 0; i < n; i++) {
            if (!rec_ok(&buf[i])) {
                ctx->bad++;
                continue;
            }
            bool from_sig = (buf[i].ticks & SIG_TAG) != 0;
            uint64_t seq = buf[i].ticks & ~SIG_TAG;
            uint64_t *last = from_sig ? &last_sig : &last_main;
            bool *first = from_sig ? &first_sig : &first_main;
            if (!*first && seq <= *last)
                ctx->unordered++;
            *first = false;
            *last = seq;
            if (from_sig)
                ctx->sig_recs++;
            else
                ctx->main_recs++;
        }
        if (n == 0 && finished)
            break;
    }
    return NULL;
}

START_TEST(test_signal_handler_pushes_midstream)
{
    sig_ctx *ctx = calloc(1, sizeof *ctx);
    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_eq(cp_ring_init(&ctx->ring, 1024), 0);
    atomic_init(&ctx->done, false);
    sig_ring = &ctx->ring;
    sig_seq = 0;
    sig_accepted = 0;

    /* Only this (producer) thread may run the handler: the consumer thread
     * is created with SIGALRM blocked. */
    sigset_t alrm, old;
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, &alrm, &old), 0);
    pthread_t consumer;
    ck_assert_int_eq(pthread_create(&consumer, NULL, sig_consumer_main, ctx), 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGALRM, &sa, NULL), 0);
    ck_assert_int_eq(pthread_sigmask(SIG_UNBLOCK, &alrm, NULL), 0);

    struct itimerval it = {.it_interval = {0, 50}, .it_value = {0, 50}};
    ck_assert_int_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
    uint64_t main_ok = 0, seq = 0;
    /* Push until plenty of signals landed (bounded so a slow box still ends). */
    while ((sig_seq < 2000 && seq < 200000000ull) || seq < 1000000) {
        cp_record rec = make_rec(seq++);
        if (cp_ring_push(&ctx->ring, &rec))
            main_ok++;
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    ck_assert_int_eq(setitimer(ITIMER_REAL, &off, NULL), 0);
    ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, &alrm, NULL), 0);

    atomic_store_explicit(&ctx->done, true, memory_order_release);
    ck_assert_int_eq(pthread_join(consumer, NULL), 0);
    ck_assert_int_eq(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);

    ck_assert_uint_gt(sig_seq, 0);
    ck_assert_uint_eq(ctx->bad, 0);
    ck_assert_uint_eq(ctx->unordered, 0);
    ck_assert_uint_eq(ctx->main_recs, main_ok);
    ck_assert_uint_eq(ctx->sig_recs, (uint64_t)sig_accepted);
    ck_assert_uint_eq(main_ok + (uint64_t)sig_accepted + cp_ring_dropped(&ctx->ring),
                      seq + (uint64_t)sig_seq);
    cp_ring_destroy(&ctx->ring);
    free(ctx);
}
END_TEST

static Suite *ring_suite(void)
{
    Suite *s = suite_create("ring");
    TCase *basic = tcase_create("basic");
    tcase_add_test(basic, test_capacity_rounding);
    tcase_add_test(basic, test_init_too_large_fails);
    tcase_add_test(basic, test_push_pop_order);
    tcase_add_test(basic, test_wraparound_many_times);
    tcase_add_test(basic, test_full_ring_drops_exactly);
    tcase_add_test(basic, test_reentrant_push_dropped);
    suite_add_tcase(s, basic);

    TCase *threads = tcase_create("threads");
    tcase_set_timeout(threads, 60);
    tcase_add_test(threads, test_concurrent_producer_consumer);
    tcase_add_test(threads, test_signal_handler_pushes_midstream);
    suite_add_tcase(s, threads);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ring_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

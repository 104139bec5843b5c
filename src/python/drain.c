/*
 * drain.c — the writer thread: empties every thread's ring every 10 ms (or
 * when woken), turns call/return records into call-tree updates (ring
 * transport) or TIMELINE chunks and tree updates (timeline mode, timeline.c)
 * and writes other events to the file as EVENTS chunks.
 *
 * Hazards:
 *  - it is not a Python thread and never takes the GIL; it reads the thread
 *    list, which is only ever prepended to with a release store;
 *  - it blocks every signal, so the program's signals keep going to the
 *    program's threads;
 *  - the SIGTERM handler only sets a flag and wakes it (a futex: no
 *    descriptor); the dump and the re-raise happen here, outside signal
 *    context;
 *  - it owns the profile file's descriptor in a descriptor table of its own
 *    (unshare(CLONE_FILES), below): the program's close(), closerange() and
 *    dup2() cannot touch it, a fork or exec of the program cannot inherit it,
 *    and the program sees no descriptor of ours. Chunks written by other
 *    threads (at stop) are handed to it (cp_writer.route) and it writes them.
 */
#include "python/alloc.h"
#include "python/gil.h"
#include "python/profiler.h"
#include "python/hwcount.h"
#include "python/sample.h"

#include "cpyprof/format.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sched.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define DRAIN_BATCH 1024

static _Atomic int term_pending;

/* Ring transport: the writer's copy of the thread's stack. */
static void agg_close_top(cp_thread *th, uint64_t ticks)
{
    th->agg_depth--;
    cp_tree_node *n = th->agg[th->agg_depth].node;
    if (n)
        n->ticks += ticks - th->agg[th->agg_depth].t0;
}

static void agg_call(cp_thread *th, const cp_record *r)
{
    uint32_t d = (uint32_t)r->b; /* depth after the call */
    if (d == 0 || d > th->max_depth)
        return;
    while (th->agg_depth >= d) /* RETURNs were dropped */
        agg_close_top(th, r->ticks);
    cp_tree_node *parent = th->agg_depth ? th->agg[th->agg_depth - 1].node : NULL;
    uint64_t key = ((uint64_t)r->a << 1) | 1u;
    cp_tree_node *n = NULL;
    if (parent || th->agg_depth == 0) /* under an untracked node: untracked */
        n = cp_tree_enter(&th->tree, parent, key, r->a);
    if (n)
        n->calls++;
    else
        th->untracked++;
    th->agg[th->agg_depth].node = n;
    th->agg[th->agg_depth].t0 = r->ticks;
    th->agg_depth++;
}

static void agg_return(cp_thread *th, const cp_record *r)
{
    uint32_t d = (uint32_t)r->b; /* depth after the return */
    while (th->agg_depth > d + 1)
        agg_close_top(th, r->ticks);
    if (th->agg_depth == d + 1)
        agg_close_top(th, r->ticks);
}

static void write_events(cp_thread *th, const cp_record *ev, uint32_t n)
{
    if (n == 0 || cp_g.writer.fd < 0)
        return;
    cp_buf b;
    cp_buf_init(&b);
    cp_buf_u32(&b, th->id);
    cp_buf_u32(&b, n);
    for (uint32_t i = 0; i < n; i++) {
        cp_buf_i64(&b, cp_clock_to_ns(&cp_g.clock, ev[i].ticks));
        cp_buf_u32(&b, ev[i].kind);
        cp_buf_u32(&b, ev[i].a);
        cp_buf_u64(&b, ev[i].b);
        cp_buf_u64(&b, ev[i].c);
    }
    char err[256];
    if (!b.oom &&
        cp_writer_chunk(&cp_g.writer, CPYPROF_CHUNK_EVENTS, b.data, b.len, err, sizeof err) == 0)
        cp_g.events_written += n;
    cp_buf_free(&b);
}

void cp_drain_all(void)
{
    static cp_record batch[DRAIN_BATCH];
    static cp_record other[DRAIN_BATCH];
    bool timeline = cp_g.cfg.mode == CP_MODE_TIMELINE;
    /* The flight recorder's rings are overwritten in a circle and read only
     * by the dump (timeline.c): never drain them. */
    if (timeline && cp_g.cfg.keep == CP_KEEP_LAST)
        return;
    for (cp_thread *th = atomic_load_explicit(&cp_g.threads, memory_order_acquire); th;
         th = th->next) {
        if (timeline) { /* 16-byte slots, read in place (timeline.c) */
            cp_tl_drain(th);
            cp_tl_flush(th);
            continue;
        }
        size_t n;
        while ((n = cp_ring_pop(&th->ring, batch, DRAIN_BATCH)) > 0) {
            uint32_t no = 0;
            for (size_t i = 0; i < n; i++) {
                const cp_record *r = &batch[i];
                if (r->kind == CPYPROF_EV_CALL)
                    agg_call(th, r);
                else if (r->kind == CPYPROF_EV_RETURN)
                    agg_return(th, r);
                else if (cp_srec_is_sample(r->kind))
                    cp_sample_feed(th, r);
                else
                    other[no++] = *r;
            }
            write_events(th, other, no);
        }
    }
}

static void handle_term(void)
{
    char err[512];
    if (cp_dump_profile(CPYPROF_END_SIGNAL, SIGTERM, false, err, sizeof err) != 0)
        cp_log("%s", err);
    /* Die as the program would have without us. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGTERM, &sa, NULL);
    kill(getpid(), SIGTERM);
}

/* ---- waking ---------------------------------------------------------------
 * A futex word, not a pipe: no descriptor the program could close or reuse,
 * nothing a forked child could use to wake its parent's writer (a private
 * futex is keyed by the address space), and a wake costs nothing when one is
 * already pending. */
static _Atomic uint32_t wake_word;

void cp_wake_writer(char c)
{
    (void)c;
    if (atomic_exchange(&wake_word, 1) == 0)
        syscall(SYS_futex, &wake_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Waits up to timeout_us; true when woken by cp_wake_writer (or a wake was
 * already pending), false when the time ran out. */
static bool wait_for_wake(int64_t timeout_us)
{
    struct timespec ts = {(time_t)(timeout_us / 1000000), (long)(timeout_us % 1000000) * 1000};
    if (atomic_load(&wake_word) == 0 && timeout_us > 0)
        syscall(SYS_futex, &wake_word, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
    return atomic_exchange(&wake_word, 0) != 0;
}

void cp_note_term(void)
{
    atomic_store(&term_pending, 1);
}

/* ---- the writer thread's own descriptor table ----------------------------- */

/* Handshake and hand-over between the writer thread and the others. The
 * mutex is re-initialised at every start: a fork may have copied it locked. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool ready;   /* the writer has set up its table (private or not) */
    bool serving; /* the writer's loop is over; it carries out requests */
    bool exit;    /* the last request is done: the writer may end */
    int op;       /* a request (CP_WRITER_OP_*), 0 when none */
    bool done;
    uint32_t type;
    const void *payload;
    size_t n;
    char *err;
    size_t errlen;
    int rc;
} hand;

static __thread bool on_private_fds; /* this thread is the writer, table unshared */

bool cp_writer_has_private_fds(void)
{
    return on_private_fds;
}

/* Another thread's chunk or close, carried out by the writer thread (the only
 * one that has the descriptor). Blocks until done. Called with the GIL by
 * stop: the writer never takes the GIL, so this cannot deadlock. */
static int route_to_writer(cp_writer *w, int op, uint32_t type, const void *payload, size_t n,
                           char *err, size_t errlen)
{
    pthread_mutex_lock(&hand.mu);
    if (!hand.serving) { /* not between its loop and its end: no one to ask */
        pthread_mutex_unlock(&hand.mu);
        if (op == CP_WRITER_OP_CLOSE)
            return 0;
        w->errors++;
        if (err && errlen)
            snprintf(err, errlen, "cannot write profile '%s': the writer thread has ended",
                     w->path);
        return -1;
    }
    while (hand.op) /* one request at a time */
        pthread_cond_wait(&hand.cv, &hand.mu);
    hand.op = op;
    hand.type = type;
    hand.payload = payload;
    hand.n = n;
    hand.err = err;
    hand.errlen = errlen;
    hand.done = false;
    pthread_cond_broadcast(&hand.cv);
    while (!hand.done)
        pthread_cond_wait(&hand.cv, &hand.mu);
    int rc = hand.rc;
    hand.op = 0;
    pthread_cond_broadcast(&hand.cv);
    pthread_mutex_unlock(&hand.mu);
    return rc;
}

/* After the loop: carry out the stop's writes until told to end. */
static void serve_requests(void)
{
    pthread_mutex_lock(&hand.mu);
    hand.serving = true;
    pthread_cond_broadcast(&hand.cv);
    while (!hand.exit) {
        if (hand.op && !hand.done) {
            if (hand.op == CP_WRITER_OP_CHUNK)
                hand.rc = cp_writer_chunk(&cp_g.writer, hand.type, hand.payload, hand.n, hand.err,
                                          hand.errlen);
            else
                hand.rc = cp_writer_close(&cp_g.writer, hand.err, hand.errlen);
            hand.done = true;
            pthread_cond_broadcast(&hand.cv);
            continue;
        }
        pthread_cond_wait(&hand.cv, &hand.mu);
    }
    hand.serving = false;
    pthread_mutex_unlock(&hand.mu);
}

/* close_range(lo, hi), or one by one without it (Linux < 5.9). */
static void close_span(unsigned lo, unsigned hi)
{
    if (lo > hi || syscall(SYS_close_range, lo, hi, 0) == 0)
        return;
    struct rlimit rl;
    unsigned top = 1u << 20;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < top)
        top = (unsigned)rl.rlim_cur;
    for (unsigned fd = lo; fd <= hi && fd < top; fd++)
        close((int)fd);
}

/* keep[]: ascending, non-negative */
static void close_all_but(const int *keep, int nkeep)
{
    unsigned lo = 0;
    for (int i = 0; i < nkeep; i++) {
        if ((unsigned)keep[i] > lo)
            close_span(lo, (unsigned)keep[i] - 1);
        lo = (unsigned)keep[i] + 1;
    }
    close_span(lo, ~0u);
}

/* Gives this thread a descriptor table of its own holding only the profile
 * file (and the instruction counter), so the program cannot close, reuse or
 * leak them. Not possible (a seccomp filter may refuse unshare): the shared
 * table, with the identity checks of core/writer.c and core/fdsafe.c. */
static bool make_fds_private(void)
{
    if (cp_g.writer.fd < 0 || unshare(CLONE_FILES) != 0)
        return false;
    /* The copy holds every descriptor of the program at this moment: close
     * them at once (a pipe's reader waits for its last writer to close). */
    int keep[2], n = 0;
    int hw = cp_hw_fd();
    keep[n++] = cp_g.writer.fd;
    if (hw >= 0 && hw != cp_g.writer.fd)
        keep[n++] = hw;
    if (n == 2 && keep[0] > keep[1]) {
        int t = keep[0];
        keep[0] = keep[1];
        keep[1] = t;
    }
    close_all_but(keep, n);
    on_private_fds = true;
    cp_g.writer.owner = pthread_self();
    cp_g.writer.route = route_to_writer;
    return true;
}

/* The writer's period. Each wake-up of an idle thread costs ~25 us of CPU
 * on the development VM (measured with a program that only sleeps: 100
 * wake-ups a second were 0.25-0.5% of a core), which sampling at 100 Hz
 * cannot hide in its 1% budget. Sample mode needs no 10 ms tick: its
 * handler wakes the writer every quarter ring (sample_signal.c), as the
 * ring transport's hook does, so 50 ms only bounds the latency of name
 * registration. 10 ms in the other modes. */
static int64_t period_us(void)
{
    return cp_g.cfg.mode == CP_MODE_SAMPLE ? 50000 : 10000;
}

static void *writer_main(void *unused)
{
    (void)unused;
    pthread_setname_np(pthread_self(), "cpyprof-writer");
    bool priv = make_fds_private();
    pthread_mutex_lock(&hand.mu);
    hand.ready = true;
    pthread_cond_broadcast(&hand.cv);
    pthread_mutex_unlock(&hand.mu);
    int64_t next_drain = cp_monotonic_ns() / 1000 + period_us();
    while (!atomic_load(&cp_g.writer_quit)) {
        int64_t left = next_drain - cp_monotonic_ns() / 1000;
        bool woken = wait_for_wake(cp_gil_writer_tick(left > 0 ? left : 0));
        int64_t now = cp_monotonic_ns() / 1000;
        /* A wake-up that was only for a gil=sample read (due before the
         * period ends): the read happens at the top of the loop, the
         * drain waits for its own time. */
        if (!woken && now < next_drain && !atomic_load(&term_pending))
            continue;
        next_drain = now + period_us();
        cp_drain_all();
        cp_sample_tick();
        cp_alloc_series_tick();
        if (atomic_load(&term_pending) && atomic_load(&cp_g.state) == CP_RUNNING) {
            handle_term();
            break;
        }
    }
    if (priv) {
        cp_hw_snapshot(); /* before serving: the dump may run on another thread */
        serve_requests();
    }
    return NULL;
}

int cp_writer_thread_start(char *err, size_t errlen)
{
    pthread_mutex_init(&hand.mu, NULL);
    pthread_cond_init(&hand.cv, NULL);
    hand.ready = hand.serving = hand.exit = hand.done = false;
    hand.op = 0;
    atomic_store(&cp_g.writer_quit, 0);
    atomic_store(&term_pending, 0);
    atomic_store(&wake_word, 0);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* inherited by the new thread */
    int rc = pthread_create(&cp_g.writer_tid, NULL, writer_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the writer thread: %s", strerror(rc));
        return -1;
    }
    pthread_mutex_lock(&hand.mu);
    while (!hand.ready)
        pthread_cond_wait(&hand.cv, &hand.mu);
    pthread_mutex_unlock(&hand.mu);
    if (cp_g.writer.route) {
        /* The writer has its copy: drop ours, unless the number is not ours
         * any more (a C thread of the program closed and reused it). */
        if (cp_fd_same(cp_g.writer.fd, &cp_g.writer.id))
            close(cp_g.writer.fd);
        cp_hw_hand_to_writer(); /* the instruction counter's too */
    }
    cp_g.writer_running = true;
    return 0;
}

void cp_writer_thread_stop(void)
{
    if (!cp_g.writer_running)
        return;
    atomic_store(&cp_g.writer_quit, 1);
    cp_wake_writer('Q');
    if (!cp_g.writer.route) {
        /* Shared table: the caller writes the rest itself, after the join.
         * Hazard: called with the GIL held. The writer never takes the GIL,
         * so joining cannot deadlock. */
        pthread_join(cp_g.writer_tid, NULL);
        cp_g.writer_running = false;
        return;
    }
    /* Private table: wait until the loop is over (no more draining), then the
     * writer carries out the caller's writes until cp_writer_thread_join. */
    pthread_mutex_lock(&hand.mu);
    while (!hand.serving)
        pthread_cond_wait(&hand.cv, &hand.mu);
    pthread_mutex_unlock(&hand.mu);
}

void cp_writer_thread_join(void)
{
    if (!cp_g.writer_running)
        return;
    pthread_mutex_lock(&hand.mu);
    hand.exit = true;
    pthread_cond_broadcast(&hand.cv);
    pthread_mutex_unlock(&hand.mu);
    pthread_join(cp_g.writer_tid, NULL);
    cp_g.writer_running = false;
    /* The descriptor went with the writer's table; nothing to route to. */
    cp_g.writer.route = NULL;
    cp_g.writer.fd = -1;
}

int cp_take_pending_term(void)
{
    return atomic_exchange(&term_pending, 0);
}

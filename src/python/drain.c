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
 *  - the SIGTERM handler only writes a byte to wake_fds[1]; the dump and the
 *    re-raise happen here, outside signal context.
 */
#include "python/profiler.h"
#include "python/sample.h"

#include "cpyprof/format.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
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
    if (!b.oom && cp_writer_chunk(&cp_g.writer, CPYPROF_CHUNK_EVENTS, b.data, b.len, err,
                                  sizeof err) == 0)
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
        size_t n;
        while ((n = cp_ring_pop(&th->ring, batch, DRAIN_BATCH)) > 0) {
            uint32_t no = 0;
            if (timeline) {
                no = (uint32_t)cp_tl_feed_many(th, batch, n, other);
                n = 0; /* handled */
            }
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
        if (timeline)
            cp_tl_flush(th);
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

/* The pipe's numbers are not ours any more: forget them, never close them. */
static void disown_wake_pipe(void)
{
    cp_g.wake_fds[1] = -1;
    cp_g.wake_fds[0] = -1;
}

void cp_wake_writer(char c)
{
    int fd = cp_g.wake_fds[1];
    if (fd >= 0 && cp_fd_same(fd, &cp_g.wake_id)) {
        ssize_t w = write(fd, &c, 1);
        (void)w;
    }
}

void cp_note_term(void)
{
    atomic_store(&term_pending, 1);
}

static void *writer_main(void *unused)
{
    (void)unused;
    pthread_setname_np(pthread_self(), "cpyprof-writer");
    while (!atomic_load(&cp_g.writer_quit)) {
        /* A program that closes every descriptor closes our pipe too, and
         * may reuse its numbers: stop using it (the hot paths' writes check
         * for -1; they and the SIGTERM flag fall back on the 10 ms poll). */
        if (cp_g.wake_fds[0] >= 0 && !cp_fd_same(cp_g.wake_fds[0], &cp_g.wake_id))
            disown_wake_pipe();
        struct pollfd p = {.fd = cp_g.wake_fds[0], .events = POLLIN};
        int r = poll(&p, 1, 10);
        if (r > 0 && (p.revents & POLLIN) && cp_g.wake_fds[0] >= 0) {
            char buf[64];
            ssize_t n = read(cp_g.wake_fds[0], buf, sizeof buf);
            for (ssize_t i = 0; i < n; i++)
                if (buf[i] == 'T')
                    atomic_store(&term_pending, 1);
        }
        cp_drain_all();
        cp_sample_tick();
        if (atomic_load(&term_pending) && atomic_load(&cp_g.state) == CP_RUNNING) {
            handle_term();
            break;
        }
    }
    return NULL;
}

int cp_writer_thread_start(char *err, size_t errlen)
{
    if (pipe2(cp_g.wake_fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        snprintf(err, errlen, "cannot start the writer thread: %s", strerror(errno));
        return -1;
    }
    cp_g.wake_fds[0] = cp_fd_move_high(cp_g.wake_fds[0]);
    cp_g.wake_fds[1] = cp_fd_move_high(cp_g.wake_fds[1]);
    cp_fd_identify(cp_g.wake_fds[0], &cp_g.wake_id); /* both ends: one pipe inode */
    atomic_store(&cp_g.writer_quit, 0);
    atomic_store(&term_pending, 0);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* inherited by the new thread */
    int rc = pthread_create(&cp_g.writer_tid, NULL, writer_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        close(cp_g.wake_fds[0]);
        close(cp_g.wake_fds[1]);
        cp_g.wake_fds[0] = cp_g.wake_fds[1] = -1;
        snprintf(err, errlen, "cannot start the writer thread: %s", strerror(rc));
        return -1;
    }
    cp_g.writer_running = true;
    return 0;
}

/* Returns whether a SIGTERM arrived that the writer did not handle. */
void cp_writer_thread_stop(void)
{
    if (!cp_g.writer_running)
        return;
    atomic_store(&cp_g.writer_quit, 1);
    bool ours = cp_g.wake_fds[0] >= 0 && cp_fd_same(cp_g.wake_fds[0], &cp_g.wake_id);
    if (ours) {
        char c = 'Q';
        ssize_t w = write(cp_g.wake_fds[1], &c, 1);
        (void)w;
    }
    /* Hazard: called with the GIL held. The writer never takes the GIL, so
     * joining cannot deadlock. Without the pipe it notices writer_quit within
     * its 10 ms poll. */
    pthread_join(cp_g.writer_tid, NULL);
    cp_g.writer_running = false;
    if (ours && cp_fd_same(cp_g.wake_fds[0], &cp_g.wake_id)) {
        char buf[64];
        ssize_t n;
        while ((n = read(cp_g.wake_fds[0], buf, sizeof buf)) > 0)
            for (ssize_t i = 0; i < n; i++)
                if (buf[i] == 'T')
                    atomic_store(&term_pending, 1);
        close(cp_g.wake_fds[0]);
        close(cp_g.wake_fds[1]);
    }
    cp_g.wake_fds[0] = cp_g.wake_fds[1] = -1;
}

int cp_take_pending_term(void)
{
    return atomic_exchange(&term_pending, 0);
}

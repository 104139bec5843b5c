/*
 * timeline.c — the writer side of timeline mode: CALL/RETURN records from a
 * thread's ring become TIMELINE chunks (docs/format.md) and, on the way,
 * updates of the thread's call tree (so report, flame and pprof work on a
 * timeline profile too).
 *
 * Nesting is made here, once, for every reader: the writer keeps its own copy
 * of each thread's stack (th->agg: tree node, start ticks, function, the
 * hook's depth) and emits an END for every frame it closes. A RETURN closes
 * the entry of its depth; a CALL or RETURN that shows entries above its depth
 * still open (their RETURN was dropped, a C function's C_RETURN never came,
 * a C-entered thread came back with a fresh stack) closes them first, with
 * SYNTH ends at that time. A RETURN with no matching entry (its CALL was
 * dropped, or came before the flight recorder's window) emits nothing —
 * except in the flight recorder window, where the frames that were already
 * open when the window starts get SYNTH begins at the window's first time
 * (their functions are known from their RETURNs). Frames still open at the
 * dump get SYNTH ends at the dump time.
 *
 * Runs on the writer thread (streaming), or in the dump (stop/atexit with
 * the GIL, or SIGTERM on the writer thread without it). Never on the hot
 * path; it may allocate.
 */
#include "python/profiler.h"

#include "cpyprof/format.h"

#include <stdlib.h>
#include <string.h>

enum { TL_CHUNK_RECORDS = 65536 }; /* records per TIMELINE chunk at most (1 MiB) */
enum { TL_SIGTERM_MARGIN = 1024 }; /* oldest ring records skipped without the GIL */
enum { TL_DRAIN_BATCH = 4096 };    /* slots read before the tail is given back */

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "TIMELINE records are written as little-endian structs");
_Static_assert(sizeof(struct cpyprof_tl_rec) == 16, "TIMELINE records are 16 bytes");

/* Ticks to ns without long double and roundl per event (cp_clock_to_ns):
 * ns = (ticks - tick0) x ns_per_tick in 64.64 fixed point, exact to far
 * below a ns over days. Set up once per run (tl_clock_gen). Times before
 * tick0 (none in practice: hooks start after calibration) go through
 * cp_clock_to_ns. */
static uint32_t tl_clock_gen;
static unsigned __int128 tl_mult; /* ns per tick x 2^64 */

static inline int64_t tl_ns(uint64_t ticks)
{
    if (tl_clock_gen != cp_g.generation) {
        long double m = cp_g.clock.use_tsc ? (long double)cp_g.clock.ns_per_tick : 1.0L;
        tl_mult = (unsigned __int128)(m * 18446744073709551616.0L); /* x 2^64 */
        tl_clock_gen = cp_g.generation;
    }
    if (ticks < cp_g.clock.tick0)
        return cp_clock_to_ns(&cp_g.clock, ticks);
    unsigned __int128 ns =
        ((unsigned __int128)(ticks - cp_g.clock.tick0) * tl_mult + ((unsigned __int128)1 << 63)) >>
        64;
    return ns > (unsigned __int128)INT64_MAX ? INT64_MAX : (int64_t)ns;
}

static void tl_put_slow(cp_thread *th, const uint8_t rec[16])
{
    cp_buf_bytes(&th->tl_out, rec, 16);
}

/* Appends one TIMELINE record (little-endian, as the format says). Hot on
 * the writer thread: one per event, so the common case writes straight
 * into the buffer's spare room. */
static inline void tl_put(cp_thread *th, uint64_t ticks, uint32_t fid, uint32_t info)
{
    if (th->tl_n == 0) {
        cp_buf_reset(&th->tl_out);
        cp_buf_u32(&th->tl_out, th->id);
        cp_buf_u32(&th->tl_out, 0); /* count, patched by cp_tl_flush */
    }
    int64_t ns = tl_ns(ticks);
    /* The file is little-endian, as this host (checked below): the record
     * is the struct's bytes. */
    struct cpyprof_tl_rec rec = {.time_ns = ns, .func = fid, .info = info};
    cp_buf *b = &th->tl_out;
    if (__builtin_expect(b->cap - b->len >= sizeof rec && !b->oom, 1)) {
        memcpy(b->data + b->len, &rec, sizeof rec);
        b->len += sizeof rec;
    } else {
        tl_put_slow(th, (const uint8_t *)&rec);
    }
    th->tl_n++;
    if (th->tl_first_ns < 0) {
        th->tl_first_ns = ns;
        th->tl_first_ticks = ticks;
    }
    th->tl_last_ns = ns;
    th->tl_last_ticks = ticks;
    if (info & CPYPROF_TL_SYNTH)
        th->tl_synth++;
    if (th->tl_n >= TL_CHUNK_RECORDS)
        cp_tl_flush(th);
}

void cp_tl_flush(cp_thread *th)
{
    if (th->tl_n == 0)
        return;
    cp_buf *b = &th->tl_out;
    if (!b->oom && b->len >= 8) {
        for (int i = 0; i < 4; i++)
            b->data[4 + i] = (uint8_t)(th->tl_n >> (8 * i));
        char err[256];
        if (cp_g.writer.fd >= 0 && cp_writer_chunk(&cp_g.writer, CPYPROF_CHUNK_TIMELINE, b->data,
                                                   b->len, err, sizeof err) == 0) {
            th->tl_written += th->tl_n;
            cp_g.events_written += th->tl_n;
        }
    } else {
        cp_g.writer.errors++;
    }
    th->tl_n = 0;
    cp_buf_reset(b);
}

/* Closes the writer's innermost open frame at `ticks`. */
static void tl_close_top(cp_thread *th, uint64_t ticks, uint32_t flags)
{
    uint32_t i = --th->agg_depth;
    cp_tree_node *n = th->agg[i].node;
    if (n && ticks > th->agg[i].t0)
        n->ticks += ticks - th->agg[i].t0;
    tl_put(th, ticks, th->agg[i].fid, CPYPROF_TL_INFO(CPYPROF_TL_END, flags, i + 1));
}

/* A call of `fid` at hook depth d (1 = outermost). The depth limit is the
 * configuration's, not th->max_depth: that field shares a line with the
 * hook's stack depth, written at every event. */
static void tl_call(cp_thread *th, uint64_t ticks, uint32_t fid, uint32_t d, uint32_t synth)
{
    uint32_t max_depth = cp_g.cfg.max_depth;
    if (d == 0 || d > max_depth)
        return;
    while (th->agg_depth && th->agg[th->agg_depth - 1].hd >= d)
        tl_close_top(th, ticks, CPYPROF_TL_SYNTH);
    if (th->agg_depth >= max_depth) /* cannot happen: hd grows strictly */
        return;
    cp_tree_node *parent = th->agg_depth ? th->agg[th->agg_depth - 1].node : NULL;
    cp_tree_node *n = NULL;
    if (parent || th->agg_depth == 0) /* under an untracked node: untracked */
        n = cp_tree_enter(&th->tree, parent, ((uint64_t)fid << 1) | 1u, fid);
    if (n)
        n->calls++;
    else
        th->untracked++;
    uint32_t i = th->agg_depth++;
    th->agg[i].node = n;
    th->agg[i].t0 = ticks;
    th->agg[i].fid = fid;
    th->agg[i].hd = d;
    tl_put(th, ticks, fid, CPYPROF_TL_INFO(CPYPROF_TL_BEGIN, synth & CPYPROF_TL_SYNTH, i + 1));
}

/* A return of `fid` to hook depth d (the depth after the return). */
static void tl_return(cp_thread *th, uint64_t ticks, uint32_t fid, uint32_t d)
{
    d += 1; /* the hook's depth of the frame that returns */
    while (th->agg_depth && th->agg[th->agg_depth - 1].hd > d)
        tl_close_top(th, ticks, CPYPROF_TL_SYNTH);
    if (th->agg_depth && th->agg[th->agg_depth - 1].hd == d)
        tl_close_top(th, ticks, th->agg[th->agg_depth - 1].fid == fid ? 0 : CPYPROF_TL_SYNTH);
}

/* GIL events (gil=exact). The file promises, per thread, ACQUIRED and
 * RELEASED in turn, starting with ACQUIRED, times never decreasing. The
 * profile hooks run only with the GIL held, so a real (not SYNTH: the
 * frames of other threads pre-filled at start are not) call or return of
 * a thread not known to hold the GIL means that its ACQUIRE was not seen:
 * it took the GIL before its profile hook was set (a new thread), before
 * the flight recorder's window, or the ACQUIRE was dropped. It gets a
 * SYNTH ACQUIRED at that event. A RELEASE without a hold is then left out;
 * an ACQUIRE while held (its RELEASE was dropped) first closes the hold at
 * the thread's last event, when it last ran. */
static inline void tl_gil_running(cp_thread *th, uint64_t ticks, uint32_t synth, bool gil_on)
{
    if (__builtin_expect(gil_on && th->tl_gil != 1, 0) && !synth) {
        tl_put(th, ticks, CPYPROF_TL_GIL_ACQUIRED,
               CPYPROF_TL_INFO(CPYPROF_TL_GIL, CPYPROF_TL_SYNTH, 0));
        th->tl_gil = 1;
    }
}

static void tl_gil(cp_thread *th, uint64_t ticks, uint32_t what)
{
    if (what == CPYPROF_TL_GIL_ACQUIRED) {
        if (th->tl_gil == 1)
            tl_put(th, th->tl_last_ticks, CPYPROF_TL_GIL_RELEASED,
                   CPYPROF_TL_INFO(CPYPROF_TL_GIL, CPYPROF_TL_SYNTH, 0));
        tl_put(th, ticks, CPYPROF_TL_GIL_ACQUIRED, CPYPROF_TL_INFO(CPYPROF_TL_GIL, 0, 0));
        th->tl_gil = 1;
        return;
    }
    if (th->tl_gil != 1)
        return;
    tl_put(th, ticks, CPYPROF_TL_GIL_RELEASED, CPYPROF_TL_INFO(CPYPROF_TL_GIL, 0, 0));
    th->tl_gil = 2;
}

/* At the dump: a hold still open ends at the thread's last event (a thread
 * that ended dropped its last hold after its profile hook was gone). */
static void tl_gil_close(cp_thread *th)
{
    if (th->tl_gil == 1)
        tl_put(th, th->tl_last_ticks, CPYPROF_TL_GIL_RELEASED,
               CPYPROF_TL_INFO(CPYPROF_TL_GIL, CPYPROF_TL_SYNTH, 0));
    th->tl_gil = 2;
}

/* One slot of a thread's ring (streaming or flight recorder). */
static inline void tl_feed_slot(cp_thread *th, const cp_tl_slot *sl, bool gil_on)
{
    uint32_t kind = sl->info & CPYPROF_TL_KIND_MASK;
    uint32_t depth = sl->info >> CPYPROF_TL_DEPTH_SHIFT;
    if (kind == CPYPROF_TL_BEGIN) {
        uint32_t synth = sl->info & CPYPROF_TL_SYNTH;
        tl_gil_running(th, sl->ticks, synth, gil_on);
        tl_call(th, sl->ticks, sl->fid, depth, synth);
    } else if (kind == CPYPROF_TL_END) {
        tl_gil_running(th, sl->ticks, 0, gil_on);
        tl_return(th, sl->ticks, sl->fid, depth);
    } else if (kind == CPYPROF_TL_GIL) {
        tl_gil(th, sl->ticks, sl->fid);
    }
}

/* Streaming. The slots between tail and head are the hook's to leave
 * alone until tail moves past them (release, after reading), so they are
 * read in place, in batches: one tail store per batch, not per event. */
void cp_tl_drain(cp_thread *th)
{
    const cp_tl_slot *slots = (const cp_tl_slot *)th->ring.slots;
    uint64_t mask = cp_tl_slot_mask(&th->ring);
    uint64_t tail = atomic_load_explicit(&th->ring.tail, memory_order_relaxed);
    bool gil_on = atomic_load_explicit(&cp_g.tl_gil, memory_order_relaxed);
    for (;;) {
        uint64_t head = atomic_load_explicit(&th->ring.head, memory_order_acquire);
        if (head == tail)
            break;
        uint64_t end = head - tail > TL_DRAIN_BATCH ? tail + TL_DRAIN_BATCH : head;
        th->tl_recorded += end - tail;
        for (; tail != end; tail++)
            tl_feed_slot(th, &slots[tail & mask], gil_on);
        atomic_store_explicit(&th->ring.tail, tail, memory_order_release);
    }
}

/* Flight recorder: the newest records of the thread's ring, oldest first.
 * Frames open when the window starts are known from their RETURNs in the
 * window: each RETURN that goes below every depth seen so far ends a frame
 * begun before the window. They get SYNTH begins at the window's first time,
 * outermost first. */
static void tl_feed_window(cp_thread *th, bool have_gil)
{
    const cp_tl_slot *slots = (const cp_tl_slot *)th->ring.slots;
    uint64_t mask = cp_tl_slot_mask(&th->ring);
    uint64_t head = atomic_load_explicit(&th->ring.head, memory_order_acquire);
    uint64_t cap = mask + 1;
    uint64_t n = head < cap ? head : cap;
    /* Without the GIL (SIGTERM dump) the hook may still be writing: the slot
     * it writes next is the oldest one; leave a margin. */
    if (!have_gil)
        n = n > TL_SIGTERM_MARGIN ? n - TL_SIGTERM_MARGIN : 0;
    uint64_t start = head - n;
    th->tl_recorded = head;
    if (n == 0)
        return;
#define SLOT(i) (&slots[(i)&mask])
#define IS_CALL(sl) (((sl)->info & CPYPROF_TL_KIND_MASK) == CPYPROF_TL_BEGIN)
#define IS_GIL(sl) (((sl)->info & CPYPROF_TL_KIND_MASK) == CPYPROF_TL_GIL)
#define DEPTH(sl) ((sl)->info >> CPYPROF_TL_DEPTH_SHIFT)
    /* Hook depths: a BEGIN carries the new frame's depth, an END the depth
     * after the return (as the streaming records). */
    /* The first call or return gives the depth at the window start. */
    const cp_tl_slot *first = SLOT(start);
    uint64_t fc = start;
    while (fc < head && IS_GIL(SLOT(fc)))
        fc++;
    const cp_tl_slot *firstc = fc < head ? SLOT(fc) : first;
    uint32_t d0 = IS_GIL(firstc) ? 0 : IS_CALL(firstc) ? DEPTH(firstc) - 1 : DEPTH(firstc) + 1;
    if (d0 > th->max_depth)
        d0 = th->max_depth;
    /* open[k]: function of the frame at depth k + 1 open at the window start. */
    uint32_t *open = calloc(d0 + 1, sizeof *open);
    uint32_t m = d0, lowest = d0;
    for (uint64_t i = start; open && i < head; i++) {
        const cp_tl_slot *sl = SLOT(i);
        if (!IS_CALL(sl) && !IS_GIL(sl) && DEPTH(sl) < m && DEPTH(sl) + 1 <= d0) {
            m = DEPTH(sl);
            open[m] = sl->fid;
            lowest = m;
        }
    }
    uint64_t t0 = first->ticks;
    for (uint32_t k = lowest; open && k < d0; k++) {
        tl_call(th, t0, open[k], k + 1, CPYPROF_TL_SYNTH);
    }
    free(open);
    bool gil_on = atomic_load_explicit(&cp_g.tl_gil, memory_order_relaxed);
    for (uint64_t i = start; i < head; i++)
        tl_feed_slot(th, SLOT(i), gil_on);
#undef SLOT
#undef IS_CALL
#undef IS_GIL
#undef DEPTH
}

static int write_info(const cp_thread *th, char *err, size_t errlen)
{
    bool last = cp_g.cfg.keep == CP_KEEP_LAST;
    uint64_t head = atomic_load_explicit(&th->ring.head, memory_order_relaxed);
    cp_buf b;
    cp_buf_init(&b);
    cp_buf_u32(&b, th->id);
    cp_buf_u32(&b, last ? CPYPROF_TL_KEEP_LAST : CPYPROF_TL_KEEP_ALL);
    uint64_t dropped = last ? 0 : cp_ring_dropped(&th->ring);
    cp_buf_u64(&b, th->tl_recorded + dropped);
    cp_buf_u64(&b, th->tl_written);
    cp_buf_u64(&b, dropped);
    uint64_t slots = cp_tl_slot_mask(&th->ring) + 1;
    cp_buf_u64(&b, last && head > slots ? head - slots : 0);
    cp_buf_u64(&b, th->tl_synth);
    cp_buf_i64(&b, th->tl_first_ns);
    cp_buf_i64(&b, th->tl_last_ns);
    int rc = -1;
    if (b.oom)
        snprintf(err, errlen, "out of memory while writing the profile");
    else
        rc = cp_writer_chunk(&cp_g.writer, CPYPROF_CHUNK_TIMELINE_INFO, b.data, b.len, err, errlen);
    cp_buf_free(&b);
    return rc;
}

int cp_tl_dump(uint64_t now, bool have_gil, char *err, size_t errlen)
{
    int rc = 0;
    for (cp_thread *th = atomic_load_explicit(&cp_g.threads, memory_order_acquire); th;
         th = th->next) {
        if (cp_g.cfg.keep == CP_KEEP_LAST)
            tl_feed_window(th, have_gil);
        tl_gil_close(th);
        while (th->agg_depth)
            tl_close_top(th, now, CPYPROF_TL_SYNTH);
        cp_tl_flush(th);
        if (rc == 0)
            rc = write_info(th, err, errlen);
    }
    return rc;
}

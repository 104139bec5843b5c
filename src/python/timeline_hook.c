/*
 * timeline_hook.c — the profile hooks of timeline mode: every call and
 * return becomes one 16-byte slot (cp_tl_slot: ticks, function,
 * kind|flags|depth) in the thread's ring memory. Two ways to bound it
 * (config "keep"):
 *
 *  - all (streaming): a single-producer single-consumer ring of slots; the
 *    writer thread (drain.c, timeline.c) reads them in place, encodes them
 *    into TIMELINE chunks and builds the call tree. A full ring drops the
 *    event and counts it; the hook never waits. Every quarter ring the hook
 *    wakes the writer.
 *  - last (flight recorder): the same slots overwritten in a circle; nobody
 *    drains them; the dump reads the newest ones (timeline.c).
 *    Memory is the ring, fixed and touched at thread start (threads.c), so
 *    the hook takes no page faults.
 *
 * Same stack rules as the trace hooks (trace.c): generator resume/yield are
 * call/return, an exception unwinding a frame still gives its RETURN, a
 * RETURN for a frame not on the shadow stack (begun before profiling and not
 * pre-filled) is ignored, a RETURN below the top closes the entries above it.
 * The depth carried by each record lets the writer keep its own copy of the
 * stack in step after drops, so the file always nests.
 *
 * Hazard: the flight recorder's plain overwrite has no re-entrancy guard;
 * nothing else pushes into a timeline thread's ring from a signal handler
 * (sampling is another mode), and the thread-start record is not pushed in
 * that mode (threads.c).
 */
#include "python/profiler.h"
#include "python/syswrap.h"
#include "python/trace_stack.h"

#include "cpyprof/format.h"

#include <unistd.h>

#define ALWAYS_INLINE inline __attribute__((always_inline))

static ALWAYS_INLINE uint32_t tl_slot_kind(uint32_t kind)
{
    return kind == CPYPROF_EV_CALL     ? CPYPROF_TL_BEGIN
           : kind == CPYPROF_EV_RETURN ? CPYPROF_TL_END
                                       : CPYPROF_TL_GIL;
}

static ALWAYS_INLINE void tl_emit(cp_thread *th, uint64_t now, uint32_t kind, uint32_t fid,
                                  uint32_t depth, uint32_t flags, bool last)
{
    /* Both bounds: 16-byte slots (cp_tl_slot, profiler.h), head counted in
     * slots. Only this thread writes head. */
    cp_tl_slot *slots = (cp_tl_slot *)th->ring.slots;
    uint64_t mask = cp_tl_slot_mask(&th->ring);
    uint64_t head = atomic_load_explicit(&th->ring.head, memory_order_relaxed);
    if (!last) {
        /* Streaming: the SPSC protocol of ring.c, inlined, without its
         * re-entrancy guard (no signal handler pushes into a timeline
         * thread's ring: sampling is another mode) and without the
         * `pushed` count (the writer counts what it drains). The writer's
         * tail is read only when a cached copy says the ring is full, so
         * the line the writer stores it in is not pulled over at every
         * event. Acquire on tail pairs with the writer's release after it
         * read the slots; release on head publishes the slot. */
        if (UNLIKELY(head - th->tl_tail_cache > mask)) {
            th->tl_tail_cache = atomic_load_explicit(&th->ring.tail, memory_order_acquire);
            if (head - th->tl_tail_cache > mask) {
                atomic_fetch_add_explicit(&th->ring.dropped, 1, memory_order_relaxed);
                return;
            }
        }
    }
    /* The flight recorder overwrites in a circle; nobody drains it and the
     * dump reads it after the hooks are gone (or, after SIGTERM, leaves a
     * margin). */
    cp_tl_slot *sl = &slots[head & mask];
    sl->ticks = now;
    sl->fid = fid;
    sl->info = CPYPROF_TL_INFO(tl_slot_kind(kind), flags, depth);
    atomic_store_explicit(&th->ring.head, head + 1, memory_order_release);
    /* Every quarter ring, wake the writer rather than wait for its 10 ms
     * tick: a call-heavy thread fills a ring in a few ms. Not from the GIL
     * wrappers (they keep errno, and must not make system calls). */
    if (!last && UNLIKELY(((head + 1) & (mask >> 2)) == 0) && kind != CP_REC_TL_GIL &&
        cp_g.writer_running) {
        cp_wake_writer('W');
    }
}

static ALWAYS_INLINE void tl_enter(cp_thread *th, uint32_t fid, bool is_c, const void *what,
                                   uint64_t now, uint32_t flags, bool last)
{
    cp_frame_entry *e = push_slot(th);
    if (!e)
        return;
    e->fid = fid;
    e->is_c = is_c;
    e->what = what;
    th->depth++;
    tl_emit(th, now, CPYPROF_EV_CALL, fid, th->depth, flags, last);
}

static ALWAYS_INLINE void tl_leave_top(cp_thread *th, uint64_t now, bool last)
{
    cp_frame_entry *e = &th->stack[--th->depth];
    tl_emit(th, now, CPYPROF_EV_RETURN, e->fid, th->depth, 0, last);
}

static ALWAYS_INLINE int tl_hook(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg,
                                 bool last)
{
    cp_thread *th = (cp_thread *)obj;
    if (UNLIKELY(cp_g.inert))
        return 0;
    uint64_t now = cp_clock_ticks(&cp_g.clock);
    switch (what) {
    case PyTrace_CALL: {
        cp_iframe *f = cp311_frame_iframe(frame);
        tl_enter(th, cp_code_id(cp311_iframe_code(f)), false, f, now, 0, last);
        break;
    }
    case PyTrace_RETURN: {
        cp_iframe *f = cp311_frame_iframe(frame); /* before the frame object is detached */
        cp_genframe_return(th, frame, f);         /* a yield: no frame object left behind */
        if (UNLIKELY(th->overflow)) {
            th->overflow--;
            break;
        }
        if (LIKELY(th->depth && th->stack[th->depth - 1].what == f)) {
            tl_leave_top(th, now, last);
            break;
        }
        uint32_t i = find_frame(th, f);
        while (i && th->depth >= i)
            tl_leave_top(th, now, last);
        break;
    }
    case PyTrace_C_CALL:
        cp_sys_c_call(th, arg);
        if (cp_g.cfg.builtins && PyCFunction_Check(arg))
            tl_enter(th, cp_names_cfunc(arg), true, ((PyCFunctionObject *)arg)->m_ml, now, 0, last);
        break;
    case PyTrace_C_RETURN:
    case PyTrace_C_EXCEPTION:
        if (UNLIKELY(th->sys_setprofile)) /* the return of sys.setprofile: syswrap.c */
            return cp_sys_setprofile_returned(th, last ? cp_tl_hook_last : cp_tl_hook_stream, frame,
                                              what, arg);
        if (!cp_g.cfg.builtins || !PyCFunction_Check(arg))
            break;
        if (UNLIKELY(th->overflow)) {
            th->overflow--;
            break;
        }
        if (th->depth && th->stack[th->depth - 1].is_c &&
            th->stack[th->depth - 1].what == ((PyCFunctionObject *)arg)->m_ml)
            tl_leave_top(th, now, last);
        break;
    default:
        break;
    }
    return 0;
}

int cp_tl_hook_stream(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg)
{
    return tl_hook(obj, frame, what, arg, false);
}

int cp_tl_hook_last(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg)
{
    return tl_hook(obj, frame, what, arg, true);
}

void cp_tl_prefill_enter(cp_thread *th, uint32_t fid, const void *frame, uint64_t now)
{
    tl_enter(th, fid, false, frame, now, CPYPROF_TL_SYNTH, cp_g.cfg.keep == CP_KEEP_LAST);
}

/* Called from the GIL wrappers (gil.c), on the thread that took or dropped
 * the GIL, inside the interpreter's pthread_mutex_unlock: no lock, no
 * allocation, no Python, errno untouched (the writer is not woken: its 10 ms wait
 * drains). The thread's ring stays single-producer: the profile hook
 * runs only while the thread holds the GIL, between two transitions, so it
 * never interleaves with this push on the same thread. The thread is found
 * through its thread state's profile function, which only ours set to a
 * timeline hook; a thread without one (not profiled yet, or ending:
 * PyThreadState_Clear resets it) records nothing. */
void cp_tl_gil_event(PyThreadState *ts, bool acquired, uint64_t ticks)
{
    if (!ts || cp_g.inert)
        return;
    Py_tracefunc f = ts->c_profilefunc;
    cp_thread *th = (cp_thread *)ts->c_profileobj;
    if (!th)
        return;
    uint32_t what = acquired ? CPYPROF_TL_GIL_ACQUIRED : CPYPROF_TL_GIL_RELEASED;
    if (f == cp_tl_hook_last)
        tl_emit(th, ticks, CP_REC_TL_GIL, what, 0, 0, true);
    else if (f == cp_tl_hook_stream)
        tl_emit(th, ticks, CP_REC_TL_GIL, what, 0, 0, false);
}

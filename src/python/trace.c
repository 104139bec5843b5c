/*
 * trace.c — the deterministic profile hooks (PyEval_SetProfile).
 *
 * They run on every Python call/return and every C-function call/return,
 * with the GIL held, on the thread that makes the call, and must stay a few
 * ns above an empty hook: the thread's state comes in `obj`, time is one
 * rdtsc, the callee's node is usually the parent's remembered child (two
 * loads and a compare), and nothing is allocated except when a call-tree node
 * or a function is first seen. One hook per transport so that the transport
 * is not tested on every event.
 *
 * Stack rules (docs/usage.md, "How calls are counted"):
 *  - a generator/coroutine resume is a call and a yield is a return (the
 *    legacy profile events say so), so suspended time is not counted;
 *  - every frame gets a RETURN even when an exception unwinds through it;
 *  - a RETURN whose frame is not on top first closes any entries above it
 *    (a C call whose C_RETURN never came); a RETURN for a frame that is not
 *    on the stack at all (it began before profiling and was not pre-filled)
 *    is ignored; a C_RETURN closes only a matching C entry;
 *  - past max_depth, calls are counted as untracked and not recorded.
 */
#include "python/profiler.h"
#include "python/syswrap.h"
#include "python/trace_stack.h"

#include "cpyprof/format.h"

#include <unistd.h>

#define CP_KEY_PY(fid) (((uint64_t)(fid) << 1) | 1u) /* odd: never a pointer */
#define CP_KEY_C(ml) ((uint64_t)(uintptr_t)(ml))     /* PyMethodDef*, even */

/* ---- inline transport: update the tree here -------------------------------- */

static inline void inl_enter(cp_thread *th, cp_tree_node *node, bool is_c, const void *what,
                             uint64_t now)
{
    cp_frame_entry *e = &th->stack[th->depth++];
    node->calls++;
    e->node = node;
    e->t0 = now;
    e->what = what;
    e->is_c = is_c;
}

static inline void inl_leave_top(cp_thread *th, uint64_t now)
{
    cp_frame_entry *e = &th->stack[--th->depth];
    e->node->ticks += now - e->t0;
}

static inline cp_tree_node *parent_node(const cp_thread *th)
{
    return th->depth ? th->stack[th->depth - 1].node : NULL;
}

static inline void inl_call_py(cp_thread *th, cp_iframe *f, uint64_t now)
{
    if (!push_slot(th))
        return;
    uint32_t fid = cp_code_id(cp311_iframe_code(f));
    cp_tree_node *n = cp_tree_enter(&th->tree, parent_node(th), CP_KEY_PY(fid), fid);
    if (UNLIKELY(!n)) { /* tree full */
        th->overflow++;
        th->untracked++;
        return;
    }
    inl_enter(th, n, false, f, now);
}

static void inl_return_slow(cp_thread *th, const void *f, uint64_t now)
{
    uint32_t i = find_frame(th, f);
    if (i == 0)
        return;
    while (th->depth >= i)
        inl_leave_top(th, now);
}

int cp_trace_hook(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg)
{
    cp_thread *th = (cp_thread *)obj;
    if (UNLIKELY(cp_g.inert))
        return 0;
    uint64_t now = cp_clock_ticks(&cp_g.clock);
    switch (what) {
    case PyTrace_CALL:
        inl_call_py(th, cp311_frame_iframe(frame), now);
        break;
    case PyTrace_RETURN: {
        cp_iframe *f = cp311_frame_iframe(frame); /* before the frame object is detached */
        cp_genframe_return(th, frame, f);         /* a yield: no frame object left behind */
        if (UNLIKELY(th->overflow)) {
            th->overflow--;
            break;
        }
        if (LIKELY(th->depth && th->stack[th->depth - 1].what == f))
            inl_leave_top(th, now);
        else
            inl_return_slow(th, f, now);
        break;
    }
    case PyTrace_C_CALL: {
        cp_sys_c_call(th, arg);
        if (!cp_g.cfg.builtins || !PyCFunction_Check(arg) || !push_slot(th))
            break;
        PyMethodDef *ml = ((PyCFunctionObject *)arg)->m_ml;
        cp_tree_node *parent = parent_node(th);
        cp_tree_node *n = cp_tree_find(&th->tree, parent, CP_KEY_C(ml));
        if (UNLIKELY(!n))
            n = cp_tree_child_slow(&th->tree, parent, CP_KEY_C(ml), cp_names_cfunc(arg));
        if (UNLIKELY(!n)) {
            th->overflow++;
            th->untracked++;
            break;
        }
        inl_enter(th, n, true, ml, now);
        break;
    }
    case PyTrace_C_RETURN:
    case PyTrace_C_EXCEPTION:
        if (UNLIKELY(th->sys_setprofile)) /* the return of sys.setprofile: syswrap.c */
            return cp_sys_setprofile_returned(th, cp_trace_hook, frame, what, arg);
        if (!cp_g.cfg.builtins || !PyCFunction_Check(arg))
            break;
        if (UNLIKELY(th->overflow)) {
            th->overflow--;
            break;
        }
        /* Only a matching C entry: a C function that began before
         * profiling (the start() call itself) has none. */
        if (th->depth && th->stack[th->depth - 1].is_c &&
            th->stack[th->depth - 1].what == ((PyCFunctionObject *)arg)->m_ml)
            inl_leave_top(th, now);
        break;
    default:
        break;
    }
    return 0;
}

/* ---- ring transport: ship records, the writer thread aggregates ------------ */

static inline void ring_event(cp_thread *th, uint64_t now, uint32_t kind, uint32_t fid,
                              uint32_t depth)
{
    cp_record r = {.ticks = now, .kind = kind, .a = fid, .b = depth, .c = 0};
    cp_ring_push(&th->ring, &r);
    /* Every quarter ring, wake the writer rather than wait for its 10 ms
     * tick: a call-heavy thread fills a ring in a few ms. One futex wake per
     * thousands of records. */
    uint64_t head = atomic_load_explicit(&th->ring.head, memory_order_relaxed);
    if (UNLIKELY((head & (th->ring.mask >> 2)) == 0) && cp_g.writer_running) {
        cp_wake_writer('W');
    }
}

static inline void ring_enter(cp_thread *th, uint32_t fid, bool is_c, const void *what,
                              uint64_t now)
{
    cp_frame_entry *e = push_slot(th);
    if (!e)
        return;
    e->fid = fid;
    e->is_c = is_c;
    e->what = what;
    th->depth++;
    ring_event(th, now, CPYPROF_EV_CALL, fid, th->depth);
}

static inline void ring_leave_top(cp_thread *th, uint64_t now)
{
    cp_frame_entry *e = &th->stack[--th->depth];
    ring_event(th, now, CPYPROF_EV_RETURN, e->fid, th->depth);
}

int cp_trace_hook_ring(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg)
{
    cp_thread *th = (cp_thread *)obj;
    if (UNLIKELY(cp_g.inert))
        return 0;
    uint64_t now = cp_clock_ticks(&cp_g.clock);
    switch (what) {
    case PyTrace_CALL: {
        cp_iframe *f = cp311_frame_iframe(frame);
        ring_enter(th, cp_code_id(cp311_iframe_code(f)), false, f, now);
        break;
    }
    case PyTrace_RETURN: {
        cp_iframe *f = cp311_frame_iframe(frame); /* before the frame object is detached */
        cp_genframe_return(th, frame, f);         /* a yield: no frame object left behind */
        if (UNLIKELY(th->overflow)) {
            th->overflow--;
            break;
        }
        uint32_t i = find_frame(th, f);
        while (i && th->depth >= i)
            ring_leave_top(th, now);
        break;
    }
    case PyTrace_C_CALL:
        cp_sys_c_call(th, arg);
        if (cp_g.cfg.builtins && PyCFunction_Check(arg))
            ring_enter(th, cp_names_cfunc(arg), true, ((PyCFunctionObject *)arg)->m_ml, now);
        break;
    case PyTrace_C_RETURN:
    case PyTrace_C_EXCEPTION:
        if (UNLIKELY(th->sys_setprofile)) /* the return of sys.setprofile: syswrap.c */
            return cp_sys_setprofile_returned(th, cp_trace_hook_ring, frame, what, arg);
        if (!cp_g.cfg.builtins || !PyCFunction_Check(arg))
            break;
        if (UNLIKELY(th->overflow)) {
            th->overflow--;
            break;
        }
        if (th->depth && th->stack[th->depth - 1].is_c &&
            th->stack[th->depth - 1].what == ((PyCFunctionObject *)arg)->m_ml)
            ring_leave_top(th, now);
        break;
    default:
        break;
    }
    return 0;
}

Py_tracefunc cp_trace_current_hook(void)
{
    if (cp_g.cfg.mode == CP_MODE_TIMELINE)
        return cp_g.cfg.keep == CP_KEEP_LAST ? cp_tl_hook_last : cp_tl_hook_stream;
    return cp_g.cfg.transport == CP_TRANSPORT_RING ? cp_trace_hook_ring : cp_trace_hook;
}

int cp_trace_is_ours(Py_tracefunc f)
{
    return f == cp_trace_hook || f == cp_trace_hook_ring || f == cp_tl_hook_stream ||
           f == cp_tl_hook_last;
}

void cp_trace_prefill(cp_thread *th, cp_iframe *innermost)
{
    enum { MAXW = 4096 };
    cp_iframe *frames[MAXW];
    size_t n = 0;
    for (cp_iframe *f = innermost; f && n < MAXW; f = cp311_iframe_previous(f)) {
        if (cp311_iframe_complete(f))
            frames[n++] = f;
    }
    uint64_t now = cp_clock_ticks(&cp_g.clock);
    while (n > 0) {
        cp_iframe *f = frames[--n];
        if (cp_g.cfg.mode == CP_MODE_TIMELINE)
            cp_tl_prefill_enter(th, cp_code_id(cp311_iframe_code(f)), f, now);
        else if (cp_g.cfg.transport == CP_TRANSPORT_RING)
            ring_enter(th, cp_code_id(cp311_iframe_code(f)), false, f, now);
        else
            inl_call_py(th, f, now);
    }
}

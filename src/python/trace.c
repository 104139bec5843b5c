/*
 * trace.c — the deterministic profile hook (PyEval_SetProfile).
 *
 * Runs on every Python call/return and every C-function call/return, with
 * the GIL held, on the thread that makes the call. It must stay a few ns
 * above an empty hook: the thread's state comes in `obj`, time is one rdtsc,
 * the callee's node is usually the parent's remembered child, and nothing is
 * allocated except when a new call-tree node or function is first seen.
 *
 * Stack rules (docs/usage.md, "How calls are counted"):
 *  - a generator/coroutine resume is a call and a yield is a return (the
 *    legacy profile events say so), so suspended time is not counted;
 *  - every frame gets a RETURN even when an exception unwinds through it;
 *  - a RETURN whose frame is not on top first closes any C entries above it
 *    (a C call whose C_RETURN never came) and any Python entries above it;
 *    a RETURN for a frame that is not on the stack at all (it started before
 *    profiling and was not pre-filled) is ignored;
 *  - past max_depth, calls are counted as untracked and not recorded.
 */
#include "python/profiler.h"

#include "cpyprof/format.h"

#define CP_KEY_PY(fid) (((uint64_t)(fid) << 1) | 1u) /* odd: never a pointer */
#define CP_KEY_C(ml) ((uint64_t)(uintptr_t)(ml))     /* PyMethodDef*, even */

static inline void ring_event(cp_thread *th, uint64_t now, uint32_t kind, uint32_t fid,
                              uint32_t depth)
{
    cp_record r = {.ticks = now, .kind = kind, .a = fid, .b = depth, .c = 0};
    cp_ring_push(&th->ring, &r);
}

/* Enters a callee: finds or makes its node below the current top. */
static inline void enter(cp_thread *th, uint64_t key, uint32_t fid, bool is_c, const void *what,
                         uint64_t now)
{
    if (th->depth >= th->max_depth) {
        th->overflow++;
        th->untracked++;
        return;
    }
    cp_frame_entry *e = &th->stack[th->depth];
    if (cp_g.cfg.transport == CP_TRANSPORT_RING) {
        e->node = fid;
        ring_event(th, now, CPYPROF_EV_CALL, fid, th->depth + 1);
    } else {
        uint32_t parent = th->depth ? th->stack[th->depth - 1].node : CP_TREE_ROOT;
        uint32_t n = cp_tree_find(&th->tree, parent, key);
        if (n == CP_TREE_ROOT) {
            n = cp_tree_add(&th->tree, parent, key, fid);
            if (n == CP_TREE_ROOT) { /* the tree is full */
                th->overflow++;
                th->untracked++;
                return;
            }
        }
        cp_tree_at(&th->tree, n)->calls++;
        e->node = n;
    }
    e->is_c = is_c;
    e->t0 = now;
    e->what = what;
    th->depth++;
}

/* Leaves the top entry. */
static inline void leave_top(cp_thread *th, uint64_t now)
{
    cp_frame_entry *e = &th->stack[--th->depth];
    if (cp_g.cfg.transport == CP_TRANSPORT_RING)
        ring_event(th, now, CPYPROF_EV_RETURN, e->node, th->depth);
    else
        cp_tree_at(&th->tree, e->node)->ticks += now - e->t0;
}

static inline uint32_t code_fid(PyCodeObject *co)
{
    return cp_code_id(co);
}

static void on_py_return(cp_thread *th, const cp_iframe *f, uint64_t now)
{
    if (th->overflow) {
        th->overflow--;
        return;
    }
    if (th->depth && th->stack[th->depth - 1].what == f) {
        leave_top(th, now);
        return;
    }
    /* Not on top: look for it below; if present close everything above. */
    uint32_t i = th->depth;
    while (i > 0 && th->stack[i - 1].what != f)
        i--;
    if (i == 0)
        return; /* began before profiling: nothing to close */
    while (th->depth >= i)
        leave_top(th, now);
}

int cp_trace_hook(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg)
{
    cp_thread *th = (cp_thread *)obj;
    if (__builtin_expect(cp_g.inert, 0))
        return 0;
    uint64_t now = cp_clock_ticks(&cp_g.clock);
    switch (what) {
    case PyTrace_CALL: {
        cp_iframe *f = cp311_frame_iframe(frame);
        uint32_t fid = code_fid(cp311_iframe_code(f));
        enter(th, CP_KEY_PY(fid), fid, false, f, now);
        break;
    }
    case PyTrace_RETURN:
        on_py_return(th, cp311_frame_iframe(frame), now);
        break;
    case PyTrace_C_CALL:
        if (cp_g.cfg.builtins && PyCFunction_Check(arg)) {
            PyMethodDef *ml = ((PyCFunctionObject *)arg)->m_ml;
            if (cp_g.cfg.transport == CP_TRANSPORT_RING) {
                enter(th, CP_KEY_C(ml), cp_names_cfunc(arg), true, ml, now);
            } else {
                /* The function id is needed only when the node is new. */
                uint32_t parent = th->depth ? th->stack[th->depth - 1].node : CP_TREE_ROOT;
                uint32_t fid = CP_TREE_ROOT;
                if (th->depth < th->max_depth &&
                    cp_tree_find(&th->tree, parent, CP_KEY_C(ml)) == CP_TREE_ROOT)
                    fid = cp_names_cfunc(arg);
                enter(th, CP_KEY_C(ml), fid, true, ml, now);
            }
        }
        break;
    case PyTrace_C_RETURN:
    case PyTrace_C_EXCEPTION:
        if (cp_g.cfg.builtins && PyCFunction_Check(arg)) {
            if (th->overflow) {
                th->overflow--;
                break;
            }
            PyMethodDef *ml = ((PyCFunctionObject *)arg)->m_ml;
            /* Only close a matching C entry: a C function that started
             * before profiling (e.g. the start() call itself) has none. */
            if (th->depth && th->stack[th->depth - 1].is_c && th->stack[th->depth - 1].what == ml)
                leave_top(th, now);
        }
        break;
    default:
        break;
    }
    return 0;
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
        uint32_t fid = code_fid(cp311_iframe_code(f));
        enter(th, CP_KEY_PY(fid), fid, false, f, now);
    }
}
